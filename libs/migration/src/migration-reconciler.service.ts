import { MigrationState } from '#vna/catalog';
import { type VnaConfig, VNA_CONFIG } from '#vna/config';
import { JobName, JobQueueService } from '#vna/jobs';
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
  private timer?: NodeJS.Timeout;
  private running?: Promise<unknown>;

  constructor(
    private readonly repo: MigrationRepository,
    private readonly jobs: JobQueueService,
    private readonly runner: MigrationRunnerService,
    @Inject(VNA_CONFIG) private readonly config: VnaConfig,
  ) {}

  onApplicationBootstrap() {
    this.tick();
    this.timer = setInterval(() => this.tick(), this.config.reconcileIntervalMs);
    this.timer.unref();
  }

  async onApplicationShutdown() {
    clearInterval(this.timer);
    await this.running;
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

  private tick() {
    if (this.running) return;
    this.running = this.reconcile()
      .catch((e) => this.logger.warn(`migration reconcile failed (will retry): ${(e as Error).message}`))
      .finally(() => (this.running = undefined));
  }
}
