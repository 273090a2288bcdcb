import { Inject, Injectable, Logger, type OnApplicationBootstrap, type OnApplicationShutdown } from '@nestjs/common';
import { IndexerService } from './indexer.service.js';

export const RECONCILE_INTERVAL_MS = Symbol('RECONCILE_INTERVAL_MS');

/** Runs the indexer's reconciliation at start-up and then every interval. */
@Injectable()
export class ReconcilerService implements OnApplicationBootstrap, OnApplicationShutdown {
  private readonly logger = new Logger(ReconcilerService.name);
  private timer?: NodeJS.Timeout;
  private running?: Promise<unknown>;

  constructor(
    private readonly indexer: IndexerService,
    @Inject(RECONCILE_INTERVAL_MS) private readonly intervalMs: number,
  ) {}

  onApplicationBootstrap() {
    this.tick();
    this.timer = setInterval(() => this.tick(), this.intervalMs);
    this.timer.unref();
  }

  async onApplicationShutdown() {
    clearInterval(this.timer);
    await this.running;
  }

  private tick() {
    if (this.running) return;
    this.running = this.indexer
      .reconcile()
      .catch((e) => this.logger.warn(`reconcile failed (will retry): ${(e as Error).message}`))
      .finally(() => (this.running = undefined));
  }
}
