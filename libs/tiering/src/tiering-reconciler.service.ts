import { VNA_CONFIG, type VnaConfig } from '#vna/config';
import { JobName, JobQueueService, PeriodicTask } from '#vna/jobs';
import { Inject, Injectable, Logger, type OnApplicationBootstrap, type OnApplicationShutdown } from '@nestjs/common';
import { MoveRepository } from './move.repository.js';
import { RestoreRepository } from './restore.repository.js';
import { PriorsPrefetchService } from './prefetch/priors-prefetch.service.js';

/**
 * The queue is only a trigger: at start-up and every VNA_RECONCILE_INTERVAL_S, every study with an
 * unfinished move (or a failed one whose copies are not all deleted) or unfinished restore is
 * enqueued again. The job id
 * is per study, so a job that waits or runs already makes this a no-op.
 */
@Injectable()
export class TieringReconcilerService implements OnApplicationBootstrap, OnApplicationShutdown {
  private readonly logger = new Logger(TieringReconcilerService.name);
  private readonly task: PeriodicTask;

  constructor(
    private readonly moves: MoveRepository,
    private readonly restores: RestoreRepository,
    private readonly prefetch: PriorsPrefetchService,
    private readonly jobs: JobQueueService,
    @Inject(VNA_CONFIG) private readonly config: VnaConfig,
  ) {
    this.task = new PeriodicTask({
      everyMs: this.config.reconcileIntervalMs,
      run: async () => {
        const n = await this.reconcile();
        if (n) this.logger.log(`re-enqueued the moves and restores of ${n} stud${n === 1 ? 'y' : 'ies'}`);
      },
      onError: (e) => this.logger.warn(`tiering reconcile failed (will retry): ${e.message}`),
    });
  }

  onApplicationBootstrap() {
    this.task.start();
  }

  onApplicationShutdown() {
    return this.task.stop();
  }

  async reconcile(): Promise<number> {
    const studies = await this.moves.studiesWithWork();
    if (studies.length) {
      await this.jobs.queueAll(studies.map((studyIuid) => ({ name: JobName.StudyMove, data: { studyIuid } })), { coalesce: false });
    }
    const restoring = await this.restores.studiesWithWork();
    if (restoring.length) {
      await this.jobs.queueAll(restoring.map((studyIuid) => ({ name: JobName.StudyRestore, data: { studyIuid } })), { coalesce: false });
    }
    // A priors prefetch journaled but not finished (its worker died): run again.
    const prefetching = await this.prefetch.pending();
    if (prefetching.length) {
      await this.jobs.queueAll(prefetching.map((studyIuid) => ({ name: JobName.PriorsPrefetch, data: { studyIuid } })), { coalesce: false });
    }
    return studies.length + restoring.length + prefetching.length;
  }
}
