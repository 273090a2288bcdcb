import { VNA_CONFIG, type VnaConfig } from '#vna/config';
import { type JobData, JobName, type JobItem, QueueName } from '#vna/jobs';
import { Processor, WorkerHost } from '@nestjs/bullmq';
import { Inject, type OnApplicationBootstrap } from '@nestjs/common';
import { DelayedError, type Job } from 'bullmq';
import { RestoreDeferredError } from './archive-stage.js';
import { CapacityService } from './capacity/capacity.service.js';
import { LifecycleService } from './policy/lifecycle.service.js';
import { PriorsPrefetchService } from './prefetch/priors-prefetch.service.js';
import { MoveDeferredError, StudyMoveService } from './study-move.service.js';
import { StudyRestoreService } from './study-restore.service.js';

/**
 * Thin: one switch, one service call per job name; an unknown name throws. A job whose worker
 * died (kill -9) is stalled; a short lock makes another worker (or the restarted one) take it
 * within seconds, and the journal tells it where the move stood.
 */
@Processor(QueueName.Tiering, { stalledInterval: 5000, lockDuration: 10_000 })
export class TieringProcessor extends WorkerHost implements OnApplicationBootstrap {
  constructor(
    private readonly moves: StudyMoveService,
    private readonly lifecycle: LifecycleService,
    private readonly restores: StudyRestoreService,
    private readonly capacity: CapacityService,
    private readonly prefetch: PriorsPrefetchService,
    @Inject(VNA_CONFIG) private readonly config: VnaConfig,
  ) {
    super();
  }

  onApplicationBootstrap() {
    this.worker.concurrency = this.config.tieringConcurrency;
  }

  async process(job: Job<JobItem['data'], unknown, JobItem['name']>, token?: string): Promise<unknown> {
    switch (job.name) {
      case JobName.StudyMove:
        try {
          return await this.moves.handleStudyMove(job.data as JobData<JobName.StudyMove>, { deferGrace: token !== undefined });
        } catch (e) {
          // A switched move waits out its grace before the sources are deleted: the job goes back
          // to the delayed set (same id, no attempt used) so its worker slot copies another study meanwhile.
          if (!(e instanceof MoveDeferredError) || token === undefined) throw e;
          await job.moveToDelayed(e.until, token);
          throw new DelayedError();
        }
      case JobName.LifecycleEvaluate:
        return this.lifecycle.handleEvaluate();
      case JobName.StudyRestore:
        try {
          return await this.restores.handleStudyRestore(job.data as JobData<JobName.StudyRestore>);
        } catch (e) {
          // Waiting for S3 to restore archived objects (hours for GLACIER): back to the delayed set
          // until the next poll, so the worker slot serves other jobs meanwhile.
          if (!(e instanceof RestoreDeferredError) || token === undefined) throw e;
          await job.moveToDelayed(e.until, token);
          throw new DelayedError();
        }
      case JobName.PriorsPrefetch:
        return this.prefetch.handlePriorsPrefetch(job.data as JobData<JobName.PriorsPrefetch>);
      case JobName.CapacityCheck:
        return this.capacity.handleCheck();
      default:
        throw new Error(`unknown job ${String(job.name)} on queue ${QueueName.Tiering}`);
    }
  }
}
