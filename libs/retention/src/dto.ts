import { Transform, Type } from 'class-transformer';
import {
  ArrayMaxSize,
  ArrayMinSize,
  IsArray,
  IsBoolean,
  IsEnum,
  IsIn,
  IsInt,
  IsISO8601,
  IsObject,
  IsOptional,
  IsString,
  Length,
  Matches,
  Max,
  MaxLength,
  Min,
  ValidateIf,
  ValidateNested,
} from 'class-validator';
import { Anchor, RuleAction } from './expiry.js';
import { IsAeTitleValue, IsDicomUid, IsExclusiveWith, IsGreaterThanSibling, IsNonZeroPeriod } from './validators.js';

const toInt = ({ value }: { value: unknown }) => (typeof value === 'string' && /^\d+$/.test(value) ? Number(value) : value);

export class PeriodDto {
  @IsEnum(Anchor, { message: `anchor must be one of ${Object.values(Anchor).join(', ')}` })
  anchor: Anchor;

  @IsInt() @Min(0) @Max(200) @IsNonZeroPeriod()
  years: number;

  @IsOptional() @IsInt() @Min(0) @Max(2400)
  months?: number;

  @IsOptional() @IsInt() @Min(0) @Max(73_000)
  days?: number;
}

/** What a rule matches; every present criterion must match (AND). Lists match any of the study's values. */
export class CriteriaDto {
  @IsOptional() @IsArray() @ArrayMinSize(1) @ArrayMaxSize(64) @Matches(/^[A-Z0-9_ ]{1,16}$/i, { each: true, message: 'modalities must hold DICOM modality codes (CS, 1-16 characters)' })
  modalities?: string[];

  @IsOptional() @IsArray() @ArrayMinSize(1) @ArrayMaxSize(256) @IsAeTitleValue({ each: true })
  sourceAes?: string[];

  @IsOptional() @IsArray() @ArrayMinSize(1) @ArrayMaxSize(256) @IsString({ each: true }) @Length(1, 64, { each: true })
  institutions?: string[];

  @IsOptional() @IsArray() @ArrayMinSize(1) @ArrayMaxSize(256) @IsDicomUid({ each: true })
  sopClassUids?: string[];

  /** StudyDescription pattern with * and ? wildcards, case-insensitive. */
  @IsOptional() @IsString() @Length(1, 64)
  studyDescription?: string;

  /** Patient age at the study date, whole years: minPatientAge <= age. */
  @IsOptional() @IsInt() @Min(0) @Max(150)
  minPatientAge?: number;

  /** Patient age at the study date, whole years: age < maxPatientAge. */
  @IsOptional() @IsInt() @Min(1) @Max(200) @IsGreaterThanSibling('minPatientAge')
  maxPatientAge?: number;
}

/** POST / PUT /api/retention/rules: a whole rule (PUT replaces it with a new version). */
export class RuleDto {
  @IsString() @Length(1, 128)
  name: string;

  @IsOptional() @IsObject() @ValidateNested() @Type(() => CriteriaDto)
  criteria?: CriteriaDto;

  /** Retention runs until the latest of these periods' ends. */
  @IsArray() @ArrayMinSize(1) @ArrayMaxSize(8) @ValidateNested({ each: true }) @Type(() => PeriodDto)
  periods: PeriodDto[];

  @IsEnum(RuleAction, { message: `action must be one of ${Object.values(RuleAction).join(', ')}` })
  action: RuleAction;

  /** A purge batch whose studies all come from autoPurge delete rules needs no approval. */
  @IsOptional() @IsBoolean()
  autoPurge?: boolean;
}

/** POST /api/legal-holds: on a patient (patientId [+ issuer]) or on one study. */
export class LegalHoldDto {
  // Checked when given, and when studyInstanceUid is missing too (one of the two is required).
  @ValidateIf((o: LegalHoldDto) => o.patientId !== undefined || o.studyInstanceUid === undefined)
  @IsString() @Length(1, 64) @IsExclusiveWith('studyInstanceUid')
  patientId?: string;

  /** IssuerOfPatientID; absent: the hold covers the PatientID under every issuer. */
  @IsOptional() @IsString() @MaxLength(64)
  issuer?: string;

  @ValidateIf((o: LegalHoldDto) => o.studyInstanceUid !== undefined)
  @IsDicomUid() @IsExclusiveWith('patientId')
  studyInstanceUid?: string;

  @IsString() @Length(1, 128)
  caseReference: string;

  @IsString() @Length(1, 2000)
  reason: string;
}

export class ReleaseHoldQueryDto {
  @IsOptional() @IsString() @Length(1, 2000)
  reason?: string;
}

export class ListHoldsQueryDto {
  @IsOptional() @IsIn(['true', 'false'])
  active?: 'true' | 'false';

  @IsOptional() @IsString() @Length(1, 64)
  patientId?: string;

  @IsOptional() @IsDicomUid()
  studyInstanceUid?: string;
}

/** POST /api/retention/purges: a batch from the current expired list (or the listed subset of it). */
export class CreatePurgeDto {
  /** Only these expired studies; flag-for-review studies can be purged only when listed here. */
  @IsOptional() @IsArray() @ArrayMinSize(1) @ArrayMaxSize(100_000) @IsDicomUid({ each: true })
  studyInstanceUids?: string[];
}

/** POST /api/retention/purges/{id}/reject. */
export class RejectPurgeDto {
  @IsString() @Length(1, 2000)
  reason: string;
}

export class PageQueryDto {
  @IsOptional() @Transform(toInt) @IsInt() @Min(1) @Max(10_000)
  limit?: number;

  @IsOptional() @Transform(toInt) @IsInt() @Min(0)
  offset?: number;
}

export enum AuditFormat {
  Json = 'json',
  Ndjson = 'ndjson',
  Csv = 'csv',
}

/** GET /api/audit filters. `type` may list several types, comma-separated. */
export class AuditQueryDto extends PageQueryDto {
  @IsOptional() @Matches(/^[A-Z_]{1,64}(,[A-Z_]{1,64})*$/, { message: 'type must be one or more event types (A_B,C_D)' })
  type?: string;

  @IsOptional() @IsDicomUid()
  study?: string;

  @IsOptional() @IsString() @Length(1, 128)
  actor?: string;

  @IsOptional() @IsISO8601({ strict: true }, { message: 'from must be an ISO 8601 date or date-time' })
  from?: string;

  @IsOptional() @IsISO8601({ strict: true }, { message: 'to must be an ISO 8601 date or date-time' })
  to?: string;

  @IsOptional() @IsEnum(AuditFormat, { message: 'format must be json, ndjson or csv' })
  format?: AuditFormat;
}
