import { Type } from 'class-transformer';
import {
  ArrayMaxSize,
  ArrayNotEmpty,
  IsArray,
  IsIn,
  IsInt,
  IsNotEmpty,
  IsObject,
  IsOptional,
  IsString,
  Max,
  MaxLength,
  Min,
  ValidateNested,
} from 'class-validator';

const MAX_DAYS = 365 * 200;

/** Conditions of one rule; all given ones must hold (AND). */
export class RuleMatchDto {
  @IsOptional() @IsArray() @ArrayNotEmpty() @IsString({ each: true }) @MaxLength(16, { each: true })
  modalities?: string[];

  @IsOptional() @IsArray() @ArrayNotEmpty() @IsString({ each: true }) @MaxLength(16, { each: true })
  sourceAes?: string[];

  @IsOptional() @IsArray() @ArrayNotEmpty() @IsString({ each: true }) @MaxLength(64, { each: true })
  institutions?: string[];

  @IsOptional() @IsInt() @Min(0) @Max(MAX_DAYS)
  minStudyAgeDays?: number;

  @IsOptional() @IsInt() @Min(0) @Max(MAX_DAYS)
  minDaysSinceIngest?: number;

  @IsOptional() @IsInt() @Min(0) @Max(MAX_DAYS)
  minDaysSinceLastAccess?: number;

  @IsOptional() @IsInt() @Min(0) @Max(200)
  minPatientAgeYears?: number;

  @IsOptional() @IsInt() @Min(0) @Max(200)
  maxPatientAgeYears?: number;

  @IsOptional() @IsInt() @Min(0)
  minStudyBytes?: number;

  @IsOptional() @IsInt() @Min(0)
  maxStudyBytes?: number;
}

export class LifecycleRuleDto {
  @IsString() @IsNotEmpty() @MaxLength(64)
  name: string;

  @IsObject() @ValidateNested() @Type(() => RuleMatchDto)
  match: RuleMatchDto;

  /** One of the VNA_TIERS ids (checked by the service). */
  @IsString() @IsNotEmpty() @MaxLength(16)
  targetTier: string;
}

/** PUT /api/lifecycle/policy: the ordered rules (first match wins) and the settle time. */
export class LifecyclePolicyDto {
  @IsArray() @ArrayMaxSize(200) @ValidateNested({ each: true }) @Type(() => LifecycleRuleDto)
  rules: LifecycleRuleDto[];

  /** Studies that received an instance within this many minutes are not moved (default 60). */
  @IsOptional() @IsInt() @Min(0) @Max(7 * 24 * 60)
  settleMinutes?: number;
}

/** POST /api/lifecycle/evaluate?dryRun=true|false */
export class EvaluateQueryDto {
  @IsOptional() @IsIn(['true', 'false'], { message: 'dryRun must be true or false' })
  dryRun?: string;
}
