import { type VnaConfig, VNA_CONFIG } from '#vna/config';
import { PeriodicTask } from '#vna/jobs';
import { Inject, Injectable, Logger, type OnApplicationBootstrap, type OnModuleDestroy } from '@nestjs/common';
import { ExpiryService } from './expiry.service.js';
import { PurgeService } from './purge.service.js';

/**
 * The database is the source of truth: at start-up and every VNA_RETENTION_INTERVAL_S, ask for an
 * expiry sweep (stale expiries: rules, new instances, last access) and re-enqueue every approved,
 * unfinished purge — so a lost queue or a process killed mid-purge always resumes — and create
 * the batch of the expired studies of auto-purge rules (run without approval).
 */
@Injectable()
export class RetentionSweeperService implements OnApplicationBootstrap, OnModuleDestroy {
  private readonly logger = new Logger('RetentionSweeper');
  private readonly task: PeriodicTask;

  constructor(
    private readonly expiry: ExpiryService,
    private readonly purges: PurgeService,
    @Inject(VNA_CONFIG) private readonly config: VnaConfig,
  ) {
    this.task = new PeriodicTask({
      everyMs: this.config.retention.intervalMs,
      run: (startup) => this.sweep(startup),
      onError: (e) => this.logger.warn(`retention sweep failed: ${e.message}`),
    });
  }

  onApplicationBootstrap() {
    this.task.start();
  }

  onModuleDestroy() {
    return this.task.stop();
  }

  private async sweep(startup: boolean): Promise<void> {
    await this.expiry.requestEvaluation();
    const n = await this.purges.resumeUnfinished();
    if (n && startup) this.logger.log(`${n} unfinished purge(s) re-enqueued`);
    // Rules explicitly marked autoPurge need nobody to create or approve their batches.
    const auto = this.config.retention.autoPurge ? await this.purges.createAutoPurge() : undefined;
    if (auto) this.logger.log(`auto-purge batch ${auto} created`);
  }
}
