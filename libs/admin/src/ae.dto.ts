import { Transform } from 'class-transformer';
import { IsBoolean, IsInt, IsOptional, IsString, Max, MaxLength, Min } from 'class-validator';
import { IsAeTitle, IsHost } from './validators.js';

const trim = ({ value }: { value: unknown }) => (typeof value === 'string' ? value.trim() : value);

/** POST /api/aes: a peer AE and what it may do. Permissions default to true. */
export class CreateAeDto {
  @Transform(trim) @IsAeTitle()
  aeTitle: string;

  @Transform(trim) @IsHost()
  host: string;

  @IsInt() @Min(1) @Max(65535)
  port: number;

  @IsOptional() @IsString() @MaxLength(256)
  description?: string;

  /** May send C-STORE to the archive (enforced with VNA_REQUIRE_KNOWN_AES=true). */
  @IsOptional() @IsBoolean()
  allowStore?: boolean;

  /** May query with C-FIND (enforced with VNA_REQUIRE_KNOWN_AES=true). */
  @IsOptional() @IsBoolean()
  allowFind?: boolean;

  /** May issue C-MOVE / C-GET (enforced with VNA_REQUIRE_KNOWN_AES=true). */
  @IsOptional() @IsBoolean()
  allowRetrieve?: boolean;

  /** May be named as a C-MOVE destination (always enforced). */
  @IsOptional() @IsBoolean()
  allowMoveDestination?: boolean;
}
