import { MigrationState } from '#vna/catalog';
import { type VnaConfig, VNA_CONFIG } from '#vna/config';
import { JobName, JobQueueService, PeriodicTask } from '#vna/jobs';
import { Inject, Injectable, Logger, type OnApplicationBootstrap, type OnApplicationShutdown } from '@nestjs/common';
import { MigrationRepository } from './migration.repository.js';
import { MigrationRunnerService } from './migration-runner.service.js';

/**
 * The database is the source of truth: at start-up and every VNA_RECONCILE_INTERVAL_S, the
 * enumeration of every SCHEDULED job and every open ledger row (pending/retrieving/verifying) of
 * every RUNNING job is enqueued again. Dedup job ids make this a no-op for jobs still in Redis.
 */
@Injectable()
export class MigrationReconcilerService implements OnApplicationBootstrap, OnApplicationShutdown {
  private readonly logger = new Logger('MigrationReconciler');
  private readonly task: PeriodicTask;

  constructor(
    private readonly repo: MigrationRepository,
    private readonly jobs: JobQueueService,
    private readonly runner: MigrationRunnerService,
    @Inject(VNA_CONFIG) private readonly config: VnaConfig,
  ) {
    this.task = new PeriodicTask({
      everyMs: this.config.reconcileIntervalMs,
      run: () => this.reconcile(),
      onError: (e) => this.logger.warn(`migration reconcile failed (will retry): ${e.message}`),
    });
  }

  onApplicationBootstrap() {
    this.task.start();
  }

  onApplicationShutdown() {
    return this.task.stop();
  }

  async reconcile(): Promise<void> {
    for (const job of await this.repo.listByState([MigrationState.Scheduled, MigrationState.Running])) {
      if (job.state === MigrationState.Scheduled) {
        await this.jobs.queue({ name: JobName.MigrationEnumerate, data: { migrationId: job.id } }, { coalesce: false });
      } else {
        await this.runner.enqueueOpenRows(job.id);
        await this.repo.completeIfDone(job.id);
      }
    }
  }
}
