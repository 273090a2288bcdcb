import type { RetrievableInstance } from '#vna/catalog';
import { VNA_CONFIG, type VnaConfig } from '#vna/config';
import { RestoreRequestService, StudyRestoreState, TieringError } from '#vna/tiering';
import { Inject, Injectable, Logger } from '@nestjs/common';
import { setTimeout as sleep } from 'node:timers/promises';
import { retryAfterSeconds } from './restore-wait.js';

/** How often a waiting retrieval looks at the database (the source of truth) again. */
export const RESTORE_POLL_MS = 250;

/** The restore a retrieval asked for is not done within VNA_RESTORE_WAIT_S (or failed). */
export class RestorePendingError extends Error {
  constructor(
    readonly retryAfterS: number,
    /** The restore failed (a new request will try again). */
    readonly failed: boolean,
    message: string,
  ) {
    super(message);
    this.name = 'RestorePendingError';
  }
}

export interface WaitOptions {
  /** Re-reads the instances (their current readable copies) from the database. */
  refresh: () => Promise<RetrievableInstance[]>;
  /** Called when the wait starts and then about once a second (C-MOVE/C-GET send a pending response). */
  onWait?: () => Promise<void>;
  signal?: AbortSignal;
}

/**
 * Retrieval of instances whose copies are on an offline tier: requests the restore of their
 * studies (journaled, enqueued), then waits up to VNA_RESTORE_WAIT_S for them, polling the
 * database, and returns the instances with their restored copies. Nothing is signalled in memory:
 * any process may run the restore.
 */
@Injectable()
export class RestoreWaitService {
  private readonly logger = new Logger(RestoreWaitService.name);
  readonly waitMs: number;

  constructor(
    private readonly restores: RestoreRequestService,
    @Inject(VNA_CONFIG) config: VnaConfig,
  ) {
    this.waitMs = config.restore.waitMs;
  }

  offline(instances: RetrievableInstance[]): RetrievableInstance[] {
    return instances.filter((i) => i.location && this.restores.isOffline(i.location.storageId));
  }

  /**
   * `instances` unchanged when none is offline; otherwise the refreshed instances once none is,
   * or RestorePendingError when the wait is over (at once with VNA_RESTORE_WAIT_S=0).
   */
  async online(instances: RetrievableInstance[], options: WaitOptions): Promise<RetrievableInstance[]> {
    let offline = this.offline(instances);
    if (!offline.length) return instances;
    const studies = [...new Set(offline.map((i) => i.studyIuid))];
    await this.request(studies);
    const started = Date.now();
    const deadline = started + this.waitMs;
    let lastWaitCall = started - 1000; // the first pending response goes out at once
    for (;;) {
      const current = await options.refresh();
      offline = this.offline(current);
      if (!offline.length) {
        if (Date.now() - started > RESTORE_POLL_MS) this.logger.log(`served ${studies.join(', ')} after waiting ${Date.now() - started} ms for a restore`);
        return current;
      }
      const waiting = [...new Set(offline.map((i) => i.studyIuid))];
      const latest = await this.restores.latestForStudies(waiting);
      const failed = waiting.filter((s) => latest.get(s)?.state === StudyRestoreState.Failed);
      // Finished but something is still offline (an instance arrived, a copy expired): ask again.
      const finished = waiting.filter((s) => latest.get(s)?.state === StudyRestoreState.Completed);
      if (finished.length) await this.request(finished);
      const progress = latest.get(waiting[0]!);
      const retryAfterS = retryAfterSeconds(progress, new Date());
      if (failed.length === waiting.length) {
        const reason = failed.map((s) => `restore ${latest.get(s)!.id} of study ${s} failed: ${latest.get(s)!.error ?? 'unknown error'}`).join('; ');
        throw new RestorePendingError(retryAfterS, true, `${offline.length} instance(s) are on an offline tier and could not be restored (${reason}); a new request retries`);
      }
      const now = Date.now();
      if (now >= deadline || options.signal?.aborted) {
        const what = progress ? `restore ${progress.id} (${progress.state}, ${progress.instancesRestored} of ${progress.instancesTotal} copied)` : 'a restore';
        throw new RestorePendingError(
          retryAfterS,
          false,
          `${offline.length} instance(s) are on an offline tier; ${what} is under way and was not done within VNA_RESTORE_WAIT_S=${this.waitMs / 1000}; retry in ${retryAfterS} s`,
        );
      }
      if (options.onWait && now - lastWaitCall >= 1000) {
        lastWaitCall = now;
        await options.onWait();
      }
      await sleep(Math.min(RESTORE_POLL_MS, deadline - now));
    }
  }

  private async request(studies: string[]): Promise<void> {
    for (const study of studies) {
      try {
        await this.restores.request(study, 'retrieval');
      } catch (e) {
        if (!(e instanceof TieringError)) throw e; // a study gone meanwhile: nothing to restore
      }
    }
  }
}
