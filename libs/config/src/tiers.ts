/**
 * Storage tiers (VNA_TIERS): where a study's objects can live. Each tier is one StorageBackend,
 * registered under its id in STORAGE_REGISTRY; `location.storage_id` names it, so a tier id is
 * short and must never change once objects were written there. New instances always land in the
 * tier with id `hot`.
 */
import { plainToInstance } from 'class-transformer';
import { IsBoolean, IsIn, IsInt, IsNotEmpty, IsNumber, IsOptional, IsString, Matches, Max, Min, ValidateIf, validateSync } from 'class-validator';
import path from 'node:path';
import { type TierCapacity, tierCapacity } from './tier-capacity.js';

export const TIER_AVAILABILITIES = ['online', 'nearline', 'offline'] as const;
/** dcm4chee's Availability: ONLINE (read at once), NEARLINE (read, slower), OFFLINE (restore first). */
export type TierAvailability = (typeof TIER_AVAILABILITIES)[number];

/** The tier every new instance is written to (the ingest's HOT_STORAGE). */
export const HOT_TIER_ID = 'hot';

export interface S3TierSettings {
  endPoint: string;
  port?: number;
  useSSL: boolean;
  accessKey: string;
  secretKey: string;
  region: string;
  bucket: string;
  prefix: string;
}

interface TierBase {
  id: string;
  availability: TierAvailability;
  /** Price of one GB (10^9 bytes) stored for a month, in the operator's currency. */
  pricePerGbMonth: number;
  /** Capacity watermarks (the hot tier only; see tier-capacity.ts). */
  capacity?: TierCapacity;
  /** A study read from this tier is moved back to hot (online/nearline tiers other than hot). */
  promoteOnAccess?: boolean;
}

export type TierConfig = (TierBase & { kind: 'fs'; path: string }) | (TierBase & { kind: 's3'; s3: S3TierSettings });

const TIER_ID = /^[a-z][a-z0-9_-]{0,15}$/;
const BUCKET = /^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/;

const isS3 = (o: TierSpec) => o.kind === 's3';

/** One VNA_TIERS entry as written by the operator (validated with class-validator). */
class TierSpec {
  @Matches(TIER_ID, { message: 'id must be 1-16 characters of a-z 0-9 _ -, starting with a letter' })
  id: string;

  @IsIn(['fs', 's3'], { message: 'kind must be "fs" or "s3"' })
  kind: string;

  /** fs: the directory (relative paths are under VNA_DATA_DIR). */
  @ValidateIf((o: TierSpec) => o.kind === 'fs') @IsString() @IsNotEmpty()
  path?: string;

  @ValidateIf(isS3) @Matches(/^https?:\/\/[^/?#]+\/?$/, { message: 'endpoint must be an http(s)://host[:port] URL' })
  endpoint?: string;

  @ValidateIf(isS3) @Matches(BUCKET, { message: 'bucket must be a valid bucket name' })
  bucket?: string;

  @IsOptional() @IsString()
  prefix?: string;

  @ValidateIf(isS3) @IsString() @IsNotEmpty()
  accessKey?: string;

  @ValidateIf(isS3) @IsString() @IsNotEmpty()
  secretKey?: string;

  @IsOptional() @IsString() @IsNotEmpty()
  region?: string;

  @IsIn([...TIER_AVAILABILITIES], { message: `availability must be one of ${TIER_AVAILABILITIES.join(', ')}` })
  availability: string;

  @IsOptional() @IsNumber({ allowNaN: false, allowInfinity: false }, { message: 'pricePerGbMonth must be a number' }) @Min(0)
  pricePerGbMonth?: number;

  // Capacity watermarks and promotion on access (rules between the fields: tier-capacity.ts).
  @IsOptional() @IsInt({ message: 'capacityBytes must be a whole number of bytes' }) @Min(1)
  capacityBytes?: number;

  @IsOptional() @IsNumber({ allowNaN: false, allowInfinity: false }, { message: 'highWatermark must be a percentage (0-100)' }) @Min(0) @Max(100)
  highWatermark?: number;

  @IsOptional() @IsNumber({ allowNaN: false, allowInfinity: false }, { message: 'lowWatermark must be a percentage (0-100)' }) @Min(0) @Max(100)
  lowWatermark?: number;

  @IsOptional() @IsBoolean({ message: 'promoteOnAccess must be true or false' })
  promoteOnAccess?: boolean;
}

/** The tiers when VNA_TIERS is not set: hot (as configured by VNA_HOT_*), warm and cold on the filesystem. */
export function defaultTiers(dataDir: string, hot: TierConfig): TierConfig[] {
  return [
    hot,
    { id: 'warm', kind: 'fs', path: path.join(dataDir, 'storage', 'warm'), availability: 'nearline', pricePerGbMonth: 0.0125 },
    { id: 'cold', kind: 'fs', path: path.join(dataDir, 'storage', 'cold'), availability: 'offline', pricePerGbMonth: 0.004 },
  ];
}

/** Default price of the hot tier (when it comes from VNA_HOT_STORAGE rather than VNA_TIERS). */
export const DEFAULT_HOT_PRICE = 0.023;

/**
 * Parse VNA_TIERS (a JSON array). Every problem names VNA_TIERS, the entry and the field, e.g.
 * `VNA_TIERS[1].availability must be one of online, nearline, offline`.
 */
export function parseTiers(value: string, dataDir: string): { tiers: TierConfig[]; problems: string[] } {
  const problems: string[] = [];
  let raw: unknown;
  try {
    raw = JSON.parse(value);
  } catch (e) {
    return { tiers: [], problems: [`VNA_TIERS is not valid JSON: ${(e as Error).message}`] };
  }
  if (!Array.isArray(raw) || raw.length === 0) {
    return { tiers: [], problems: ['VNA_TIERS must be a non-empty JSON array of tiers'] };
  }
  const tiers: TierConfig[] = [];
  const seen = new Set<string>();
  raw.forEach((entry: unknown, i) => {
    const where = `VNA_TIERS[${i}]`;
    if (typeof entry !== 'object' || entry === null || Array.isArray(entry)) {
      problems.push(`${where} must be an object`);
      return;
    }
    const spec = plainToInstance(TierSpec, entry);
    const errors = validateSync(spec, { whitelist: true, forbidNonWhitelisted: true });
    if (errors.length) {
      for (const e of errors) {
        for (const m of Object.values(e.constraints ?? {})) {
          problems.push(`${where}.${e.property}: ${m.startsWith(e.property) ? m.slice(e.property.length).trim() : m}`);
        }
      }
      return;
    }
    if (seen.has(spec.id)) {
      problems.push(`${where}.id: "${spec.id}" is used by another tier`);
      return;
    }
    seen.add(spec.id);
    const capacity = tierCapacity(spec, where);
    if (capacity.problems.length) {
      problems.push(...capacity.problems);
      return;
    }
    const base = {
      id: spec.id,
      availability: spec.availability as TierAvailability,
      pricePerGbMonth: spec.pricePerGbMonth ?? 0,
      ...(capacity.capacity ? { capacity: capacity.capacity } : {}),
      ...(capacity.promoteOnAccess ? { promoteOnAccess: true } : {}),
    };
    if (spec.kind === 'fs') {
      tiers.push({ ...base, kind: 'fs', path: path.resolve(dataDir, spec.path!) });
    } else {
      const u = new URL(spec.endpoint!);
      tiers.push({
        ...base,
        kind: 's3',
        s3: {
          endPoint: u.hostname,
          port: u.port ? Number(u.port) : undefined,
          useSSL: u.protocol === 'https:',
          accessKey: spec.accessKey!,
          secretKey: spec.secretKey!,
          region: spec.region ?? 'us-east-1',
          bucket: spec.bucket!,
          prefix: spec.prefix ?? '',
        },
      });
    }
  });
  if (!problems.length) {
    const hot = tiers.find((t) => t.id === HOT_TIER_ID);
    if (!hot) problems.push(`VNA_TIERS must define a tier with id "${HOT_TIER_ID}" (new instances are written there)`);
    else if (hot.availability !== 'online') problems.push(`VNA_TIERS: the "${HOT_TIER_ID}" tier must be online`);
    const fsPaths = new Map<string, string>();
    for (const t of tiers) {
      if (t.kind !== 'fs') continue;
      const other = fsPaths.get(t.path);
      if (other) problems.push(`VNA_TIERS: tiers "${other}" and "${t.id}" have the same path ${t.path}`);
      fsPaths.set(t.path, t.id);
    }
  }
  return { tiers: problems.length ? [] : tiers, problems };
}
