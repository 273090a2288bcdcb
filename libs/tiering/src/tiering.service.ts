import { type TierAvailability, VNA_CONFIG, type VnaConfig } from '#vna/config';
import { JobName, JobQueueService } from '#vna/jobs';
import { Inject, Injectable, Logger } from '@nestjs/common';
import { studyLocationsView, type StudyLocationsView } from './locations-view.js';
import { type MoveRow, MoveRepository } from './move.repository.js';
import { TieringError, TieringErrorCode } from './tiering.errors.js';

export interface TierView {
  id: string;
  kind: 'fs' | 's3';
  availability: TierAvailability;
  pricePerGbMonth: number;
  /** S3 tiers with a storage class: `x-amz-storage-class` of their objects. */
  storageClass?: string;
  studies: number;
  instances: number;
  bytes: number;
  movesInFlight: number;
}

/** What the tiering HTTP API asks: tiers and their use, a study's locations, moves. */
@Injectable()
export class TieringService {
  private readonly logger = new Logger(TieringService.name);

  constructor(
    private readonly moves: MoveRepository,
    private readonly jobs: JobQueueService,
    @Inject(VNA_CONFIG) private readonly config: VnaConfig,
  ) {}

  tierIds(): string[] {
    return this.config.tiers.map((t) => t.id);
  }

  async tiers(): Promise<TierView[]> {
    const [usage, inFlight] = await Promise.all([this.moves.tierUsage(), this.moves.movesInFlight()]);
    const byId = new Map(usage.map((u) => [u.storageId, u]));
    return this.config.tiers.map((t) => ({
      id: t.id,
      kind: t.kind,
      availability: t.availability,
      pricePerGbMonth: t.pricePerGbMonth,
      ...(t.kind === 's3' && t.s3.storageClass ? { storageClass: t.s3.storageClass } : {}),
      studies: byId.get(t.id)?.studies ?? 0,
      instances: byId.get(t.id)?.instances ?? 0,
      bytes: byId.get(t.id)?.bytes ?? 0,
      movesInFlight: inFlight.get(t.id) ?? 0,
    }));
  }

  async studyLocations(studyIuid: string): Promise<StudyLocationsView> {
    const rows = await this.moves.studyLocations(studyIuid);
    if (!rows.length) throw new TieringError(TieringErrorCode.UnknownStudy, `study ${studyIuid} is not in the archive`);
    return studyLocationsView(studyIuid, rows);
  }

  /**
   * Journal a move of the whole study to `targetTier` and enqueue it. The study's unfinished move
   * to the same tier is returned as is; one to another tier is a conflict.
   */
  async requestMove(studyIuid: string, targetTier: string, requestedBy: string): Promise<{ move: MoveRow; created: boolean }> {
    if (!this.tierIds().includes(targetTier)) {
      throw new TieringError(TieringErrorCode.UnknownTier, `targetTier must be one of ${this.tierIds().join(', ')}`);
    }
    if (!(await this.moves.studyExists(studyIuid))) {
      throw new TieringError(TieringErrorCode.UnknownStudy, `study ${studyIuid} is not in the archive`);
    }
    const result = await this.moves.schedule(studyIuid, targetTier, requestedBy);
    if (!result.created && result.move.targetTier !== targetTier) {
      throw new TieringError(
        TieringErrorCode.MoveInProgress,
        `study ${studyIuid} is being moved to ${result.move.targetTier} (move ${result.move.id}); try again when it is done`,
      );
    }
    // The journal is the source of truth: if Redis does not answer, the reconciler enqueues it later.
    await this.jobs.queue({ name: JobName.StudyMove, data: { studyIuid } }, { coalesce: false }).catch((e: unknown) => {
      this.logger.warn(`move ${result.move.id} journaled, not yet enqueued: ${(e as Error).message}`);
    });
    return result;
  }

  async move(id: string): Promise<MoveRow | undefined> {
    return /^\d{1,18}$/.test(id) ? this.moves.get(id) : undefined;
  }
}
