import { VNA_CONFIG, type VnaConfig } from '#vna/config';
import { Inject, Injectable, Logger, type OnApplicationBootstrap, type OnApplicationShutdown } from '@nestjs/common';
import { StudyRestoreService } from './study-restore.service.js';

/**
 * Tiering role: deletes expired restored copies, at start-up and then every quarter of
 * VNA_RESTORE_KEEP_S (at least every second, at most every VNA_RECONCILE_INTERVAL_S).
 */
@Injectable()
export class RestoreSweeperService implements OnApplicationBootstrap, OnApplicationShutdown {
  private readonly logger = new Logger(RestoreSweeperService.name);
  private timer?: NodeJS.Timeout;
  private running?: Promise<unknown>;

  constructor(
    private readonly restores: StudyRestoreService,
    @Inject(VNA_CONFIG) private readonly config: VnaConfig,
  ) {}

  onApplicationBootstrap() {
    this.tick();
    const every = Math.max(1000, Math.min(this.config.reconcileIntervalMs, Math.floor(this.config.restore.keepMs / 4)));
    this.timer = setInterval(() => this.tick(), every);
    this.timer.unref();
  }

  async onApplicationShutdown() {
    clearInterval(this.timer);
    await this.running;
  }

  private tick() {
    if (this.running) return;
    this.running = this.restores
      .sweepExpired()
      .then((n) => n && this.logger.log(`deleted ${n} expired restored cop${n === 1 ? 'y' : 'ies'}`))
      .catch((e) => this.logger.warn(`restore sweep failed (will retry): ${(e as Error).message}`))
      .finally(() => (this.running = undefined));
  }
}
