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

/** S3 storage classes a tier may name (`x-amz-storage-class` of the objects committed there). */
export const S3_STORAGE_CLASSES = [
  'STANDARD',
  'REDUCED_REDUNDANCY',
  'STANDARD_IA',
  'ONEZONE_IA',
  'INTELLIGENT_TIERING',
  'GLACIER_IR',
  'GLACIER',
  'DEEP_ARCHIVE',
] as const;
export type S3StorageClass = (typeof S3_STORAGE_CLASSES)[number];

/**
 * Storage classes whose objects cannot be read until restored with the S3 RestoreObject request
 * (GLACIER_IR is read directly). A tier of such a class is offline by nature.
 */
export const ARCHIVE_STORAGE_CLASSES: readonly S3StorageClass[] = ['GLACIER', 'DEEP_ARCHIVE'];

export function isArchiveStorageClass(storageClass: string | undefined): boolean {
  return storageClass !== undefined && (ARCHIVE_STORAGE_CLASSES as readonly string[]).includes(storageClass);
}

/** Retrieval options of a RestoreObject request (GlacierJobParameters/Tier). DEEP_ARCHIVE has no Expedited. */
export const ARCHIVE_RETRIEVALS = ['Expedited', 'Standard', 'Bulk'] as const;
export type ArchiveRetrieval = (typeof ARCHIVE_RETRIEVALS)[number];

/** First poll of a restore's objects after the restore request, by retrieval option (seconds). */
export const DEFAULT_RESTORE_POLL_S: Record<ArchiveRetrieval, number> = { Expedited: 30, Standard: 600, Bulk: 1800 };

/** How an archive-class tier's objects are restored before they are copied to the hot tier. */
export interface ArchiveRestoreSettings {
  /** GlacierJobParameters/Tier of the RestoreObject request. */
  retrieval: ArchiveRetrieval;
  /** Days the temporary restored object stays readable in the bucket (the archive copies it at once). */
  days: number;
  /** First poll (HEAD of each object) this long after the request; then doubling, up to pollMaxMs. */
  pollMs: number;
  pollMaxMs: number;
}

export interface S3TierSettings {
  endPoint: string;
  port?: number;
  useSSL: boolean;
  accessKey: string;
  secretKey: string;
  region: string;
  bucket: string;
  prefix: string;
  /** `x-amz-storage-class` of committed objects; absent = the bucket's default (STANDARD). */
  storageClass?: S3StorageClass;
  /** Set for an archive storage class (GLACIER, DEEP_ARCHIVE): objects are restored before they are read. */
  archive?: ArchiveRestoreSettings;
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

  /** s3 only: storage class of the objects committed to this tier. */
  @IsOptional() @IsIn([...S3_STORAGE_CLASSES], { message: `storageClass must be one of ${S3_STORAGE_CLASSES.join(', ')}` })
  storageClass?: string;

  /** Archive classes only: RestoreObject retrieval option (default Standard). */
  @IsOptional() @IsIn([...ARCHIVE_RETRIEVALS], { message: `restoreRetrieval must be one of ${ARCHIVE_RETRIEVALS.join(', ')}` })
  restoreRetrieval?: string;

  /** Archive classes only: days the restored object stays readable in the bucket (default 1). */
  @IsOptional() @IsInt({ message: 'restoreDays must be an integer' }) @Min(1) @Max(30)
  restoreDays?: number;

  /** Archive classes only: seconds from the restore request to the first poll (default by retrieval: 30, 600, 1800). */
  @IsOptional() @IsInt({ message: 'restorePollS must be an integer' }) @Min(1) @Max(86_400)
  restorePollS?: number;

  /** Archive classes only: longest pause between polls (default 4 × restorePollS). */
  @IsOptional() @IsInt({ message: 'restorePollMaxS must be an integer' }) @Min(1) @Max(86_400)
  restorePollMaxS?: number;

  /** Optional for an archive storage class (then offline); required otherwise. */
  @ValidateIf((o: TierSpec) => o.availability !== undefined || !isArchiveStorageClass(o.storageClass))
  @IsIn([...TIER_AVAILABILITIES], { message: `availability must be one of ${TIER_AVAILABILITIES.join(', ')}` })
  availability?: string;

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

const RESTORE_FIELDS = ['restoreRetrieval', 'restoreDays', 'restorePollS', 'restorePollMaxS'] as const;

/** Problems of the storage class fields of one entry (each `field: message`). */
function storageClassProblems(spec: TierSpec, archival: boolean): string[] {
  const out: string[] = [];
  if (spec.storageClass !== undefined && spec.kind !== 's3') out.push('storageClass: is only for s3 tiers');
  if (!archival) {
    for (const f of RESTORE_FIELDS) {
      if (spec[f] !== undefined) out.push(`${f}: is only for the archive storage classes ${ARCHIVE_STORAGE_CLASSES.join(', ')}`);
    }
    return out;
  }
  if (spec.availability !== undefined && spec.availability !== 'offline') {
    out.push(`availability: must be "offline" for storageClass ${spec.storageClass} (its objects are restored before they are read)`);
  }
  if (spec.storageClass === 'DEEP_ARCHIVE' && spec.restoreRetrieval === 'Expedited') {
    out.push('restoreRetrieval: DEEP_ARCHIVE has no Expedited retrieval (Standard or Bulk)');
  }
  if (spec.restorePollS !== undefined && spec.restorePollMaxS !== undefined && spec.restorePollMaxS < spec.restorePollS) {
    out.push('restorePollMaxS: must not be less than restorePollS');
  }
  return out;
}

function archiveSettings(spec: TierSpec): ArchiveRestoreSettings {
  const retrieval = (spec.restoreRetrieval ?? 'Standard') as ArchiveRetrieval;
  const maxS = spec.restorePollMaxS;
  const pollS = spec.restorePollS ?? Math.min(DEFAULT_RESTORE_POLL_S[retrieval], maxS ?? Infinity);
  return { retrieval, days: spec.restoreDays ?? 1, pollMs: pollS * 1000, pollMaxMs: (maxS ?? 4 * pollS) * 1000 };
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
    const archival = isArchiveStorageClass(spec.storageClass);
    const classProblems = storageClassProblems(spec, archival);
    if (classProblems.length) {
      problems.push(...classProblems.map((m) => `${where}.${m}`));
      return;
    }
    const availability = (spec.availability ?? 'offline') as TierAvailability;
    const capacity = tierCapacity({ ...spec, availability }, where);
    if (capacity.problems.length) {
      problems.push(...capacity.problems);
      return;
    }
    const base = {
      id: spec.id,
      availability,
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
          ...(spec.storageClass ? { storageClass: spec.storageClass as S3StorageClass } : {}),
          ...(archival ? { archive: archiveSettings(spec) } : {}),
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
