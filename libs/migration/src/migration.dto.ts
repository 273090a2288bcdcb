import { IsAeTitle, IsHost } from '#vna/admin';
import { isValidUid } from '#vna/dicom';
import { Transform, Type } from 'class-transformer';
import {
  ArrayMaxSize,
  ArrayMinSize,
  IsArray,
  IsDefined,
  IsIn,
  IsInt,
  IsNumber,
  IsObject,
  IsOptional,
  IsString,
  Length,
  Matches,
  Max,
  Min,
  IsUrl,
  ValidateBy,
  ValidateIf,
  ValidateNested,
  type ValidationOptions,
} from 'class-validator';

import { HHMM, isTimeZone } from './time-windows.js';

const trim = ({ value }: { value: unknown }) => (typeof value === 'string' ? value.trim() : value);

function IsDicomUidEach(options?: ValidationOptions): PropertyDecorator {
  return ValidateBy(
    {
      name: 'isDicomUidEach',
      validator: {
        validate: (v: unknown) => Array.isArray(v) && v.every((u) => typeof u === 'string' && isValidUid(u)),
        defaultMessage: (a) => `${a?.property} must be a list of DICOM UIDs`,
      },
    },
    options,
  );
}

const isDimse = (o: { kind?: unknown }) => o.kind === 'dimse';
const isDicomweb = (o: { kind?: unknown }) => o.kind === 'dicomweb';
const isFolder = (o: { kind?: unknown }) => o.kind === 'folder';

/** RFC 9110 field-name token. */
const HEADER_NAME = /^[!#$%&'*+.^_`|~0-9A-Za-z-]{1,256}$/;
/** Headers the source client sets itself. */
const RESERVED_HEADERS = new Set(['accept', 'host', 'content-length', 'transfer-encoding', 'connection']);

function IsRequestHeaders(options?: ValidationOptions): PropertyDecorator {
  return ValidateBy(
    {
      name: 'isRequestHeaders',
      validator: {
        validate: (v: unknown) =>
          typeof v === 'object' && v !== null && !Array.isArray(v) && Object.keys(v).length <= 32 &&
          Object.entries(v).every(([k, x]) => HEADER_NAME.test(k) && !RESERVED_HEADERS.has(k.toLowerCase()) &&
            typeof x === 'string' && x.length <= 8192 && !/[\r\n\0]/.test(x)),
        defaultMessage: (a) =>
          `${a?.property} must be an object of at most 32 HTTP headers (name: string value, no line breaks; not Accept, Host, Content-Length, Transfer-Encoding, Connection)`,
      },
    },
    options,
  );
}

function HasNoCredentials(options?: ValidationOptions): PropertyDecorator {
  return ValidateBy(
    {
      name: 'hasNoCredentials',
      validator: {
        validate: (v: unknown) => typeof v === 'string' && !/^[a-z][a-z0-9+.-]*:\/\/[^/?#]*@/i.test(v),
        defaultMessage: (a) => `${a?.property} must not hold credentials (put them into source.headers, e.g. Authorization)`,
      },
    },
    options,
  );
}

/**
 * Where to migrate from: a legacy archive reached over DIMSE (`aeTitle`, `host`, `port`,
 * `retrieve`), a DICOMweb origin server (`baseUrl`, optional `headers`), or a folder of DICOM
 * files on this host (`path`).
 */
export class MigrationSourceDto {
  @IsIn(['dimse', 'dicomweb', 'folder'], { message: 'source.kind must be "dimse", "dicomweb" or "folder"' })
  kind: 'dimse' | 'dicomweb' | 'folder';

  @ValidateIf(isDimse) @Transform(trim) @IsAeTitle()
  aeTitle?: string;

  @ValidateIf(isDimse) @Transform(trim) @IsHost()
  host?: string;

  @ValidateIf(isDimse) @IsInt() @Min(1) @Max(65535)
  port?: number;

  /** move: C-MOVE to this archive's AE title (the source must know it as a destination); get: C-GET. */
  @ValidateIf(isDimse) @IsIn(['move', 'get'])
  retrieve?: 'move' | 'get';

  /** dicomweb: the DICOMweb root of the source (QIDO-RS /studies, WADO-RS /studies/{uid} below it). */
  @ValidateIf(isDicomweb) @Transform(trim) @IsString() @Length(1, 2048)
  @IsUrl({ protocols: ['http', 'https'], require_protocol: true, require_tld: false, allow_underscores: true }, { message: 'baseUrl must be an http:// or https:// URL' })
  @HasNoCredentials()
  baseUrl?: string;

  /** dicomweb: request headers sent with every request (e.g. {"Authorization": "Bearer ..."}); never shown by the API. */
  @ValidateIf(isDicomweb) @IsOptional() @IsObject() @IsRequestHeaders()
  headers?: Record<string, string>;

  /** dimse, dicomweb: answers per query before its date window is split in two (default 1000). */
  @ValidateIf((o: { kind?: unknown }) => isDimse(o) || isDicomweb(o)) @IsOptional() @IsInt() @Min(1) @Max(100_000)
  maxResultsPerQuery?: number;

  /** folder: an absolute path on the archive's host: a folder (every file under it is imported) or a DICOMDIR (the files it references). */
  @ValidateIf(isFolder) @IsString() @Matches(/^\//, { message: 'path must be an absolute path' }) @Length(1, 4096)
  path?: string;
}

const DATE = /^\d{4}(0[1-9]|1[0-2])(0[1-9]|[12]\d|3[01])$/;

export class MigrationScopeDto {
  @IsOptional() @Matches(DATE, { message: 'studyDateFrom must be a date YYYYMMDD' })
  studyDateFrom?: string;

  @IsOptional() @Matches(DATE, { message: 'studyDateTo must be a date YYYYMMDD' })
  studyDateTo?: string;

  @IsOptional() @IsArray() @ArrayMaxSize(64) @Matches(/^[A-Z0-9_]{1,16}$/, { each: true, message: 'modalities must be modality codes (e.g. CT, MR)' })
  modalities?: string[];

  @IsOptional() @IsArray() @ArrayMaxSize(10_000) @IsString({ each: true }) @Length(1, 64, { each: true })
  patientIds?: string[];

  @IsOptional() @IsArray() @ArrayMaxSize(10_000) @IsString({ each: true }) @Length(1, 16, { each: true })
  accessionNumbers?: string[];

  @IsOptional() @IsArray() @ArrayMinSize(1) @ArrayMaxSize(100_000) @IsDicomUidEach()
  studyInstanceUids?: string[];
}

export class TimeWindowDto {
  @Matches(HHMM, { message: 'start must be HH:MM (00:00-23:59)' })
  start: string;

  @Matches(HHMM, { message: 'end must be HH:MM (00:00-23:59)' })
  end: string;
}

function IsTimeZone(options?: ValidationOptions): PropertyDecorator {
  return ValidateBy(
    { name: 'isTimeZone', validator: { validate: (v: unknown) => isTimeZone(v), defaultMessage: (a) => `${a?.property} must be an IANA time zone (e.g. Europe/Berlin)` } },
    options,
  );
}

export class MigrationThrottleDto {
  /** Run only inside these windows (e.g. nights: [{start: '20:00', end: '06:00'}]); [] = always. */
  @IsOptional() @IsArray() @ArrayMaxSize(24) @ValidateNested({ each: true }) @Type(() => TimeWindowDto)
  windows?: TimeWindowDto[];

  /** Time zone of the windows (default UTC). */
  @IsOptional() @IsTimeZone()
  timeZone?: string;

  /** Associations the job may hold open at the source at once (default 2). */
  @IsOptional() @IsInt() @Min(1) @Max(64)
  maxAssociations?: number;

  /** Instances per second at most; null or absent: unlimited. */
  @IsOptional() @ValidateIf((_, v) => v !== null) @IsNumber({ allowNaN: false, allowInfinity: false }) @Min(0.1) @Max(100_000)
  maxInstancesPerSecond?: number | null;
}

/** POST /api/migrations */
export class CreateMigrationDto {
  @Transform(trim) @IsString() @Length(1, 200)
  name: string;

  @IsDefined() @ValidateNested() @Type(() => MigrationSourceDto)
  source: MigrationSourceDto;

  @IsOptional() @ValidateNested() @Type(() => MigrationScopeDto)
  scope?: MigrationScopeDto;

  /** newest-first (default), oldest-first, or list (the order of scope.studyInstanceUids). */
  @IsOptional() @IsIn(['newest-first', 'oldest-first', 'list'])
  order?: 'newest-first' | 'oldest-first' | 'list';

  @IsOptional() @ValidateNested() @Type(() => MigrationThrottleDto)
  throttle?: MigrationThrottleDto;
}

/** PATCH /api/migrations/{id}: a new throttle, applied to the running job within a second. */
export class UpdateMigrationDto {
  @IsDefined() @ValidateNested() @Type(() => MigrationThrottleDto)
  throttle: MigrationThrottleDto;
}
