import { domainErrorFilter } from '#vna/admin';
import { BadRequestException, ConflictException, NotFoundException } from '@nestjs/common';

/** Domain errors of the tiering API, mapped to HTTP at the controllers (TieringErrorFilter). */
export enum TieringErrorCode {
  UnknownTier = 'UNKNOWN_TIER',
  UnknownStudy = 'UNKNOWN_STUDY',
  MoveInProgress = 'MOVE_IN_PROGRESS',
  /** The study is being purged by retention: it is never moved meanwhile. */
  StudyPurging = 'STUDY_PURGING',
  /** A capacity check was requested but the hot tier has no watermarks (VNA_TIERS). */
  NoWatermarks = 'NO_WATERMARKS',
}

export class TieringError extends Error {
  constructor(
    readonly code: TieringErrorCode,
    message: string,
  ) {
    super(message);
    this.name = 'TieringError';
  }
}

/** Tiering errors -> HTTP (the tiering and lifecycle controllers). */
export const TieringErrorFilter = domainErrorFilter(TieringError, {
  [TieringErrorCode.UnknownTier]: BadRequestException,
  [TieringErrorCode.UnknownStudy]: NotFoundException,
  [TieringErrorCode.MoveInProgress]: ConflictException,
  [TieringErrorCode.StudyPurging]: ConflictException,
  [TieringErrorCode.NoWatermarks]: ConflictException,
});
