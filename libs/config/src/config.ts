/**
 * Every environment variable the archive reads is read here, validated at boot, and a bad value
 * stops the process with a message naming the variable. No `process.env` anywhere else.
 */
import 'reflect-metadata';
import { plainToInstance, Transform } from 'class-transformer';
import {
  IsBoolean,
  IsIn,
  IsInt,
  IsOptional,
  IsString,
  Matches,
  Max,
  Min,
  getMetadataStorage,
  isFQDN,
  isIP,
  validateSync,
} from 'class-validator';
import path from 'node:path';
import { DEFAULT_HOT_PRICE, defaultTiers, HOT_TIER_ID, parseTiers, type TierConfig } from './tiers.js';

/** A shared secret (VNA_ADMIN_TOKEN, VNA_DICOMWEB_TOKEN): 16-256 printable ASCII characters, no spaces. */
const TOKEN = /^[\x21-\x7e]{16,256}$/;

const toInt = ({ value }: { value: unknown }) =>
  value === undefined || value === '' ? undefined : /^-?\d+$/.test(String(value)) ? Number(value) : value;
const toBool = ({ value }: { value: unknown }) => {
  if (value === undefined || value === '') return undefined;
  const v = String(value).toLowerCase();
  if (['1', 'true', 'yes', 'on'].includes(v)) return true;
  if (['0', 'false', 'no', 'off'].includes(v)) return false;
  return value;
};

/** Roles a process can run. `all` runs every role (the default all-in-one archive). */
export const ROLES = ['ingest', 'indexer', 'retrieval', 'tiering'] as const;
export type Role = (typeof ROLES)[number];

export class EnvironmentVariables {
  /** Root for embedded PostgreSQL, filesystem tiers and the embedded Redis' AOF. */
  @IsOptional() @IsString()
  VNA_DATA_DIR?: string;

  /** PostgreSQL URL; when absent an embedded PostgreSQL is started under VNA_DATA_DIR. */
  @IsOptional() @Matches(/^postgres(ql)?:\/\/.+/, { message: 'DATABASE_URL must be a postgres:// URL' })
  DATABASE_URL?: string;

  @IsOptional() @Matches(/^rediss?:\/\/.+/, { message: 'REDIS_URL must be a redis:// URL' })
  REDIS_URL?: string;

  /** Start a redis-server from PATH (AOF in VNA_DATA_DIR) when none answers at REDIS_URL. */
  @IsOptional() @Transform(toBool) @IsBoolean()
  VNA_EMBEDDED_REDIS?: boolean;

  @IsOptional() @Matches(/^[\x20-\x5b\x5d-\x7e]{1,16}$/, { message: 'VNA_AE_TITLE must be 1-16 printable ASCII characters without backslash' })
  VNA_AE_TITLE?: string;

  @IsOptional() @Transform(toInt) @IsInt() @Min(1) @Max(65535)
  VNA_DIMSE_PORT?: number;

  @IsOptional() @Transform(toInt) @IsInt() @Min(1) @Max(65535)
  VNA_HTTP_PORT?: number;

  /**
   * C-MOVE/C-GET: at most one pending response per this many ms (0: after every sub-operation).
   * A sub-operation slower than this is still followed by one, so a requester never waits longer
   * between responses than for one sub-operation.
   */
  @IsOptional() @Transform(toInt) @IsInt() @Min(0) @Max(60_000)
  VNA_DIMSE_PENDING_INTERVAL_MS?: number;

  @IsOptional() @IsString()
  VNA_HTTP_HOST?: string;

  /**
   * Bearer token the admin API (/api, except GET /api/health) requires when set. Unset: the admin
   * API is open (a warning at boot), as on a loopback-only or firewalled test install.
   */
  @IsOptional() @Matches(TOKEN, { message: 'VNA_ADMIN_TOKEN must be 16-256 printable ASCII characters without spaces' })
  VNA_ADMIN_TOKEN?: string;

  /**
   * Token DICOMweb (/dicom-web, /wado) requires when set: Bearer, or HTTP Basic with it as the
   * password. Unset: DICOMweb is open (a warning at boot).
   */
  @IsOptional() @Matches(TOKEN, { message: 'VNA_DICOMWEB_TOKEN must be 16-256 printable ASCII characters without spaces' })
  VNA_DICOMWEB_TOKEN?: string;

  /** Comma-separated roles (ingest,indexer,retrieval,tiering) or "all". */
  @IsOptional() @Matches(/^(all|(ingest|indexer|retrieval|tiering)(,(ingest|indexer|retrieval|tiering))*)$/, {
    message: 'VNA_ROLES must be "all" or a comma-separated list of ingest, indexer, retrieval, tiering',
  })
  VNA_ROLES?: string;

  /** Hot tier backend: fs (default, under VNA_DATA_DIR/storage/hot) or s3. */
  @IsOptional() @IsIn(['fs', 's3'])
  VNA_HOT_STORAGE?: 'fs' | 's3';

  @IsOptional() @IsString()
  VNA_HOT_PATH?: string;

  @IsOptional() @Matches(/^https?:\/\/[^/]+/, { message: 'S3_ENDPOINT must be an http(s)://host[:port] URL' })
  S3_ENDPOINT?: string;
  @IsOptional() @IsString()
  S3_ACCESS_KEY?: string;
  @IsOptional() @IsString()
  S3_SECRET_KEY?: string;
  @IsOptional() @IsString()
  S3_REGION?: string;
  @IsOptional() @Matches(/^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/, { message: 'S3_BUCKET must be a valid bucket name' })
  S3_BUCKET?: string;
  @IsOptional() @IsString()
  S3_PREFIX?: string;

  /** Maximum STOW-RS request body in bytes (default 4 GiB). */
  @IsOptional() @Transform(toInt) @IsInt() @Min(1024)
  VNA_STOW_MAX_BYTES?: number;

  /** Indexer worker concurrency. */
  @IsOptional() @Transform(toInt) @IsInt() @Min(1) @Max(256)
  VNA_INDEXER_CONCURRENCY?: number;

  /** How long an index job waits for more instances of its study before it runs (ms). */
  @IsOptional() @Transform(toInt) @IsInt() @Min(0) @Max(60_000)
  VNA_INDEX_DELAY_MS?: number;

  /** Seconds between reconciler passes (re-enqueue received-but-unindexed instances). */
  @IsOptional() @Transform(toInt) @IsInt() @Min(1)
  VNA_RECONCILE_INTERVAL_S?: number;

  /** Comma-separated list of AE titles allowed to call; empty = any (promiscuous). */
  @IsOptional() @IsString()
  VNA_ACCEPTED_CALLING_AETS?: string;

  @IsOptional() @IsIn(['error', 'warn', 'log', 'debug', 'verbose'])
  VNA_LOG_LEVEL?: string;

  /** Worker processes sharing the DICOM and HTTP ports (Node cluster); 1 = this process only. */
  @IsOptional() @Transform(toInt) @IsInt() @Min(1) @Max(64)
  VNA_WORKERS?: number;

  /**
   * Known AEs seeded into the registry at boot: comma-separated `AETITLE@host:port`
   * (e.g. `PACS1@10.0.0.5:104,VIEWER@[::1]:11113`). Existing titles get the configured host/port;
   * their permissions stay as set through /api/aes.
   */
  @IsOptional() @IsString()
  VNA_AES?: string;

  /** Accept associations only from AEs in the registry and enforce their per-operation permissions. */
  @IsOptional() @Transform(toBool) @IsBoolean()
  VNA_REQUIRE_KNOWN_AES?: boolean;

  /** Retention: most studies one purge batch may delete (a guard against a mistaken rule). */
  @IsOptional() @Transform(toInt) @IsInt() @Min(1) @Max(1_000_000)
  VNA_PURGE_MAX_PER_RUN?: number;

  /**
   * Retention: the sweeper itself creates (and runs, without approval) the batches of expired
   * studies whose rule is a `delete` rule marked `autoPurge`. `false`: such batches wait for
   * `POST /api/retention/purges` (then still without approval).
   */
  @IsOptional() @Transform(toBool) @IsBoolean()
  VNA_AUTO_PURGE?: boolean;

  /** Retention: seconds between sweeps that recompute stale expiries and resume unfinished purges. */
  @IsOptional() @Transform(toInt) @IsInt() @Min(1) @Max(86_400)
  VNA_RETENTION_INTERVAL_S?: number;

  /**
   * Test only: a purge waits this long after each instance, so an end-to-end test can kill the
   * process mid-purge. 0 (the default) in production.
   */
  @IsOptional() @Transform(toInt) @IsInt() @Min(0) @Max(10_000)
  VNA_PURGE_TEST_PAUSE_MS?: number;
  /** Storage tiers, a JSON array (see tiers.ts); default hot/warm/cold on the filesystem. */
  @IsOptional() @IsString()
  VNA_TIERS?: string;

  /** Study moves run at once per tiering process. */
  @IsOptional() @Transform(toInt) @IsInt() @Min(1) @Max(64)
  VNA_TIERING_CONCURRENCY?: number;

  /**
   * TEST ONLY fault injection in the tiering worker: `corrupt-after-copy` damages each copy at
   * the target after it is committed and before it is verified (the move must fail and keep the
   * source); `slow-copy` waits 150 ms after each instance copied by a move or a restore (so a test
   * can kill one midway, or see a retrieval wait for a restore). Never set it in production.
   */
  @IsOptional() @IsIn(['corrupt-after-copy', 'slow-copy'])
  VNA_TIERING_FAULT?: 'corrupt-after-copy' | 'slow-copy';

  /** Seconds between scheduled lifecycle policy evaluations (which enqueue moves); 0 = never. */
  @IsOptional() @Transform(toInt) @IsInt() @Min(0)
  VNA_LIFECYCLE_INTERVAL_S?: number;

  /**
   * How long a retrieval (WADO-RS/URI, C-MOVE/C-GET) of a study on an offline tier waits for the
   * restore it requests before it answers 503 + Retry-After (or fails the sub-operations); 0 = not at all.
   */
  @IsOptional() @Transform(toInt) @IsInt() @Min(0) @Max(3600)
  VNA_RESTORE_WAIT_S?: number;

  /** How long a restored copy (in the hot tier) is kept and read before the sweeper deletes it. */
  @IsOptional() @Transform(toInt) @IsInt() @Min(5) @Max(365 * 86_400)
  VNA_RESTORE_KEEP_S?: number;

  /** Seconds between capacity checks of the hot tier's watermarks (tiering role); 0 = only on request. */
  @IsOptional() @Transform(toInt) @IsInt() @Min(0) @Max(86_400)
  VNA_CAPACITY_INTERVAL_S?: number;

  /** A study promoted on access is left on hot by the lifecycle policy this long (seconds). */
  @IsOptional() @Transform(toInt) @IsInt() @Min(0) @Max(3650 * 86_400)
  VNA_PROMOTE_KEEP_S?: number;
  /**
   * Priors prefetch: when a new study of a patient is indexed, that patient's most recent prior
   * studies whose copies are on offline tiers are restored ahead of need. on/off.
   */
  @IsOptional() @Transform(toBool) @IsBoolean({ message: 'VNA_PRIORS_PREFETCH must be on or off (true/false)' })
  VNA_PRIORS_PREFETCH?: boolean;

  /** Priors prefetch: how many of the most recent priors (by study date) are wanted. */
  @IsOptional() @Transform(toInt) @IsInt() @Min(1) @Max(100)
  VNA_PRIORS_COUNT?: number;

  /** Priors prefetch: only priors sharing a modality with the new study. */
  @IsOptional() @Transform(toBool) @IsBoolean({ message: 'VNA_PRIORS_SAME_MODALITY must be true or false' })
  VNA_PRIORS_SAME_MODALITY?: boolean;
}

/** An AE title: 1-16 characters of the default repertoire, no backslash, no control characters (PS3.5 AE). */
export const AE_TITLE_PATTERN = /^[\x20-\x5b\x5d-\x7e]{1,16}$/;

/** A valid AE title once trimmed (leading/trailing spaces are not significant). */
export function isAeTitle(value: unknown): value is string {
  return typeof value === 'string' && value.trim().length > 0 && AE_TITLE_PATTERN.test(value.trim());
}

/** A host name (RFC 1123, single label allowed) or an IPv4/IPv6 address. */
export function isHost(value: unknown): value is string {
  return typeof value === 'string' && value.length <= 253 && (isIP(value) || isFQDN(value, { require_tld: false, allow_underscores: true }));
}

export interface ConfiguredAe {
  aeTitle: string;
  host: string;
  port: number;
}

/** Parse VNA_AES; each problem names the entry. */
export function parseAeList(value: string | undefined): { aes: ConfiguredAe[]; problems: string[] } {
  const aes: ConfiguredAe[] = [];
  const problems: string[] = [];
  const seen = new Set<string>();
  for (const entry of (value ?? '').split(',').map((s) => s.trim()).filter(Boolean)) {
    const m = /^(.+)@(\[[0-9A-Fa-f:.]+\]|[^:@\[\]]+):(\d{1,5})$/.exec(entry);
    if (!m) {
      problems.push(`VNA_AES: "${entry}" is not AETITLE@host:port`);
      continue;
    }
    const aeTitle = m[1]!.trim();
    const host = m[2]!.startsWith('[') ? m[2]!.slice(1, -1) : m[2]!;
    const port = Number(m[3]);
    if (!isAeTitle(aeTitle)) problems.push(`VNA_AES: "${entry}": AE title must be 1-16 characters without backslash or control characters`);
    else if (!isHost(host)) problems.push(`VNA_AES: "${entry}": "${host}" is not a host name or IP address`);
    else if (port < 1 || port > 65535) problems.push(`VNA_AES: "${entry}": port must be 1-65535`);
    else if (seen.has(aeTitle)) problems.push(`VNA_AES: "${aeTitle}" is listed twice`);
    else {
      seen.add(aeTitle);
      aes.push({ aeTitle, host, port });
    }
  }
  return { aes, problems };
}

export interface S3Settings {
  endPoint: string;
  port?: number;
  useSSL: boolean;
  accessKey: string;
  secretKey: string;
  region: string;
  bucket: string;
  prefix: string;
}

export interface VnaConfig {
  dataDir: string;
  databaseUrl?: string;
  redisUrl: string;
  embeddedRedis: boolean;
  aeTitle: string;
  dimsePort: number;
  /** VNA_DIMSE_PENDING_INTERVAL_MS: least time between C-MOVE/C-GET pending responses. */
  pendingIntervalMs: number;
  httpPort: number;
  httpHost: string;
  /** VNA_ADMIN_TOKEN: required on the admin API when set. */
  adminToken: string | undefined;
  /** VNA_DICOMWEB_TOKEN: required on DICOMweb when set. */
  dicomwebToken: string | undefined;
  roles: Set<Role>;
  hotStorage: { kind: 'fs'; path: string } | { kind: 's3'; s3: S3Settings };
  stowMaxBytes: number;
  indexerConcurrency: number;
  /** VNA_INDEX_DELAY_MS: an index job waits this long, so a study's instances index in batches. */
  indexDelayMs: number;
  reconcileIntervalMs: number;
  acceptedCallingAets: string[];
  logLevel: string;
  /** VNA_WORKERS: processes sharing the DICOM and HTTP ports. */
  workers: number;
  /** VNA_AES: AEs upserted into the registry at boot. */
  knownAes: ConfiguredAe[];
  /** VNA_REQUIRE_KNOWN_AES: only registered AEs may associate, each limited to its permissions. */
  requireKnownAes: boolean;
  /** Retention settings (VNA_PURGE_MAX_PER_RUN, VNA_RETENTION_INTERVAL_S, VNA_PURGE_TEST_PAUSE_MS). */
  retention: { purgeMaxPerRun: number; intervalMs: number; purgeTestPauseMs: number; autoPurge: boolean };
  /** VNA_TIERS: every storage tier; the one with id `hot` is where ingest writes. */
  tiers: TierConfig[];
  /** VNA_TIERING_CONCURRENCY: study moves at once per tiering process. */
  tieringConcurrency: number;
  /** VNA_TIERING_FAULT: test-only fault injection of the tiering worker. */
  tieringFault?: 'corrupt-after-copy' | 'slow-copy';
  /** VNA_LIFECYCLE_INTERVAL_S in ms: scheduled policy evaluations (0 = off). */
  lifecycleIntervalMs: number;
  /**
   * VNA_RESTORE_WAIT_S / VNA_RESTORE_KEEP_S in ms, and `marginMs` (restoreMarginMs): retrieval
   * stops choosing a restored copy this long before it expires, the sweeper deletes it only this
   * long after.
   */
  restore: { waitMs: number; keepMs: number; marginMs: number };
  /** VNA_CAPACITY_INTERVAL_S in ms: scheduled capacity checks of the hot tier (0 = off). */
  capacityIntervalMs: number;
  /** VNA_PROMOTE_KEEP_S in ms: the lifecycle policy leaves a study promoted on access on hot this long. */
  promoteKeepMs: number;
  /** VNA_PRIORS_PREFETCH, VNA_PRIORS_COUNT, VNA_PRIORS_SAME_MODALITY. */
  priorsPrefetch: PriorsPrefetchSettings;
}

export interface PriorsPrefetchSettings {
  enabled: boolean;
  /** The most recent `count` priors (by study date) are the ones wanted. */
  count: number;
  /** Only priors with a modality in common with the new study. */
  sameModality: boolean;
}

export class ConfigError extends Error {
  constructor(readonly problems: string[]) {
    super(`Invalid configuration:\n  - ${problems.join('\n  - ')}`);
    this.name = 'ConfigError';
  }
}

/** Parse and validate an environment; throws ConfigError naming every bad variable. */
export function loadConfig(env: NodeJS.ProcessEnv = process.env): VnaConfig {
  const raw: Record<string, string | undefined> = {};
  for (const key of knownKeys()) raw[key] = env[key];
  const vars = plainToInstance(EnvironmentVariables, raw);
  const errors = validateSync(vars, { skipMissingProperties: false });
  const problems = errors.flatMap((e) =>
    Object.values(e.constraints ?? {}).map((m) => (m.startsWith(e.property) ? m : `${e.property}: ${m}`)),
  );

  const hotKind = vars.VNA_HOT_STORAGE ?? 'fs';
  let s3: S3Settings | undefined;
  if (hotKind === 's3') {
    for (const k of ['S3_ENDPOINT', 'S3_ACCESS_KEY', 'S3_SECRET_KEY', 'S3_BUCKET'] as const) {
      if (!vars[k]) problems.push(`${k} is required when VNA_HOT_STORAGE=s3`);
    }
    if (vars.S3_ENDPOINT && /^https?:\/\//.test(vars.S3_ENDPOINT)) {
      const u = new URL(vars.S3_ENDPOINT);
      s3 = {
        endPoint: u.hostname,
        port: u.port ? Number(u.port) : undefined,
        useSSL: u.protocol === 'https:',
        accessKey: vars.S3_ACCESS_KEY ?? '',
        secretKey: vars.S3_SECRET_KEY ?? '',
        region: vars.S3_REGION ?? 'us-east-1',
        bucket: vars.S3_BUCKET ?? '',
        prefix: vars.S3_PREFIX ?? '',
      };
    }
  }
  const configuredAes = parseAeList(vars.VNA_AES);
  problems.push(...configuredAes.problems);
  const dataDir = path.resolve(vars.VNA_DATA_DIR ?? 'var');
  let tiers: TierConfig[] = [];
  if (vars.VNA_TIERS !== undefined && vars.VNA_TIERS !== '') {
    if (vars.VNA_HOT_STORAGE !== undefined || vars.VNA_HOT_PATH !== undefined) {
      problems.push('VNA_TIERS and VNA_HOT_STORAGE/VNA_HOT_PATH are both set: configure the "hot" tier in VNA_TIERS only');
    }
    const parsed = parseTiers(vars.VNA_TIERS, dataDir);
    problems.push(...parsed.problems);
    tiers = parsed.tiers;
  }
  if (problems.length) throw new ConfigError(problems);

  const roles = !vars.VNA_ROLES || vars.VNA_ROLES === 'all' ? new Set<Role>(ROLES) : new Set(vars.VNA_ROLES.split(',') as Role[]);
  const hotStorage: VnaConfig['hotStorage'] =
    hotKind === 's3' && s3 ? { kind: 's3', s3 } : { kind: 'fs', path: path.resolve(vars.VNA_HOT_PATH ?? path.join(dataDir, 'storage', 'hot')) };
  if (!tiers.length) {
    const hot: TierConfig =
      hotStorage.kind === 'fs'
        ? { id: HOT_TIER_ID, kind: 'fs', path: hotStorage.path, availability: 'online', pricePerGbMonth: DEFAULT_HOT_PRICE }
        : { id: HOT_TIER_ID, kind: 's3', s3: hotStorage.s3, availability: 'online', pricePerGbMonth: DEFAULT_HOT_PRICE };
    tiers = defaultTiers(dataDir, hot);
  }
  const hotTier = tiers.find((t) => t.id === HOT_TIER_ID)!;
  return {
    dataDir,
    databaseUrl: vars.DATABASE_URL,
    redisUrl: vars.REDIS_URL ?? 'redis://127.0.0.1:6379',
    embeddedRedis: vars.VNA_EMBEDDED_REDIS ?? true,
    aeTitle: vars.VNA_AE_TITLE ?? 'VNA',
    dimsePort: vars.VNA_DIMSE_PORT ?? 11112,
    pendingIntervalMs: vars.VNA_DIMSE_PENDING_INTERVAL_MS ?? 100,
    httpPort: vars.VNA_HTTP_PORT ?? 8080,
    httpHost: vars.VNA_HTTP_HOST ?? '0.0.0.0',
    adminToken: vars.VNA_ADMIN_TOKEN,
    dicomwebToken: vars.VNA_DICOMWEB_TOKEN,
    roles,
    hotStorage: hotTier.kind === 'fs' ? { kind: 'fs', path: hotTier.path } : { kind: 's3', s3: hotTier.s3 },
    stowMaxBytes: vars.VNA_STOW_MAX_BYTES ?? 4 * 1024 ** 3,
    indexerConcurrency: vars.VNA_INDEXER_CONCURRENCY ?? 8,
    indexDelayMs: vars.VNA_INDEX_DELAY_MS ?? 500,
    reconcileIntervalMs: (vars.VNA_RECONCILE_INTERVAL_S ?? 60) * 1000,
    acceptedCallingAets: (vars.VNA_ACCEPTED_CALLING_AETS ?? '').split(',').map((s) => s.trim()).filter(Boolean),
    logLevel: vars.VNA_LOG_LEVEL ?? 'log',
    workers: vars.VNA_WORKERS ?? 1,
    knownAes: configuredAes.aes,
    requireKnownAes: vars.VNA_REQUIRE_KNOWN_AES ?? false,
    retention: {
      purgeMaxPerRun: vars.VNA_PURGE_MAX_PER_RUN ?? 100,
      intervalMs: (vars.VNA_RETENTION_INTERVAL_S ?? 300) * 1000,
      purgeTestPauseMs: vars.VNA_PURGE_TEST_PAUSE_MS ?? 0,
      autoPurge: vars.VNA_AUTO_PURGE ?? true,
    },
    tiers,
    tieringConcurrency: vars.VNA_TIERING_CONCURRENCY ?? 2,
    tieringFault: vars.VNA_TIERING_FAULT,
    lifecycleIntervalMs: (vars.VNA_LIFECYCLE_INTERVAL_S ?? 3600) * 1000,
    restore: restoreSettings(vars.VNA_RESTORE_WAIT_S ?? 30, vars.VNA_RESTORE_KEEP_S ?? 86_400),
    capacityIntervalMs: (vars.VNA_CAPACITY_INTERVAL_S ?? 60) * 1000,
    promoteKeepMs: (vars.VNA_PROMOTE_KEEP_S ?? 7 * 86_400) * 1000,
    priorsPrefetch: {
      enabled: vars.VNA_PRIORS_PREFETCH ?? false,
      count: vars.VNA_PRIORS_COUNT ?? 2,
      sameModality: vars.VNA_PRIORS_SAME_MODALITY ?? false,
    },
  };
}

function knownKeys(): string[] {
  const metas = getMetadataStorage().getTargetValidationMetadatas(EnvironmentVariables, '', true, false);
  return [...new Set(metas.map((m) => m.propertyName))];
}

/**
 * A tenth of the keep time, between 1 s and 10 min: long enough for a retrieval that chose a
 * restored copy to finish reading it before the sweeper may delete it.
 */
export function restoreMarginMs(keepMs: number): number {
  return Math.min(600_000, Math.max(1000, Math.floor(keepMs / 10)));
}

function restoreSettings(waitS: number, keepS: number): VnaConfig['restore'] {
  const keepMs = keepS * 1000;
  return { waitMs: waitS * 1000, keepMs, marginMs: restoreMarginMs(keepMs) };
}

/** Injection token for the validated configuration. */
export const VNA_CONFIG = Symbol('VNA_CONFIG');
