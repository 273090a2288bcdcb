import { IsNotEmpty, IsString, MaxLength } from 'class-validator';

/** POST /api/studies/{uid}/move. The tier must be one of VNA_TIERS (checked by the service). */
export class MoveStudyDto {
  @IsString() @IsNotEmpty() @MaxLength(16)
  targetTier: string;
}
