import { VNA_CONFIG, type VnaConfig } from '#vna/config';
import { PeriodicTask } from '#vna/jobs';
import { Inject, Injectable, Logger, type OnApplicationBootstrap, type OnApplicationShutdown } from '@nestjs/common';
import { StudyRestoreService } from './study-restore.service.js';

/**
 * Tiering role: deletes expired restored copies, at start-up and then every quarter of
 * VNA_RESTORE_KEEP_S (at least every second, at most every VNA_RECONCILE_INTERVAL_S).
 */
@Injectable()
export class RestoreSweeperService implements OnApplicationBootstrap, OnApplicationShutdown {
  private readonly logger = new Logger(RestoreSweeperService.name);
  private readonly task: PeriodicTask;

  constructor(
    private readonly restores: StudyRestoreService,
    @Inject(VNA_CONFIG) private readonly config: VnaConfig,
  ) {
    this.task = new PeriodicTask({
      everyMs: Math.max(1000, Math.min(this.config.reconcileIntervalMs, Math.floor(this.config.restore.keepMs / 4))),
      run: async () => {
        const n = await this.restores.sweepExpired();
        if (n) this.logger.log(`deleted ${n} expired restored cop${n === 1 ? 'y' : 'ies'}`);
      },
      onError: (e) => this.logger.warn(`restore sweep failed (will retry): ${e.message}`),
    });
  }

  onApplicationBootstrap() {
    this.task.start();
  }

  onApplicationShutdown() {
    return this.task.stop();
  }
}
