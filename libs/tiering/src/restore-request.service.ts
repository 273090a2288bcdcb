import { VNA_CONFIG, type VnaConfig } from '#vna/config';
import { JobName, JobQueueService } from '#vna/jobs';
import { Inject, Injectable, Logger } from '@nestjs/common';
import { RestoreRepository, type RestoreRow } from './restore.repository.js';
import { TieringError, TieringErrorCode } from './tiering.errors.js';

export type RestoreRequestResult =
  | { kind: 'scheduled'; restore: RestoreRow; created: boolean; instancesOffline: number }
  | { kind: 'nothing-offline' };

/**
 * Asks for restores (the API, and retrieval of an offline study): journals one in study_restore
 * and enqueues its job. The journal is the source of truth; a lost job is re-enqueued by the
 * tiering reconciler.
 */
@Injectable()
export class RestoreRequestService {
  private readonly logger = new Logger(RestoreRequestService.name);
  private readonly offlineTiers: string[];
  private readonly marginMs: number;

  constructor(
    private readonly restores: RestoreRepository,
    private readonly jobs: JobQueueService,
    @Inject(VNA_CONFIG) config: VnaConfig,
  ) {
    this.marginMs = config.restore.marginMs;
    this.offlineTiers = config.tiers.filter((t) => t.availability === 'offline').map((t) => t.id);
  }

  isOffline(storageId: string): boolean {
    return this.offlineTiers.includes(storageId);
  }

  /** `priority`: BullMQ priority of the restore job (default 1; the priors prefetch asks for less). */
  async request(studyIuid: string, requestedBy: string, { priority }: { priority?: number } = {}): Promise<RestoreRequestResult> {
    if (!(await this.restores.studyExists(studyIuid))) {
      throw new TieringError(TieringErrorCode.UnknownStudy, `study ${studyIuid} is not in the archive`);
    }
    const offline = this.offlineTiers.length ? await this.restores.offlineCopies(studyIuid, this.offlineTiers, this.marginMs) : [];
    if (!offline.length) return { kind: 'nothing-offline' };
    const { restore, created } = await this.restores.schedule(studyIuid, requestedBy);
    const job = { name: JobName.StudyRestore, data: { studyIuid } } as const;
    try {
      await this.jobs.queue(job, { coalesce: false, priority });
      // Asked for by someone who waits: a prefetch's restore of this study queued earlier at a lower priority overtakes the others.
      if (priority === undefined && !created) await this.jobs.raisePriority(job);
    } catch (e) {
      this.logger.warn(`restore ${restore.id} journaled, not yet enqueued: ${(e as Error).message}`);
    }
    if (created) this.logger.log(`restore ${restore.id} of study ${studyIuid} requested by ${requestedBy}: ${offline.length} instance(s) offline`);
    return { kind: 'scheduled', restore, created, instancesOffline: offline.length };
  }

  get(id: string): Promise<RestoreRow | undefined> {
    return /^\d{1,18}$/.test(id) ? this.restores.get(id) : Promise.resolve(undefined);
  }

  latestForStudies(studyIuids: string[]): Promise<Map<string, RestoreRow>> {
    return this.restores.latestForStudies(studyIuids);
  }
}
