import { PeriodicTask } from '#vna/jobs';
import type { StorageBackend } from '#vna/storage';
import { Inject, Injectable, Logger, type OnApplicationBootstrap, type OnApplicationShutdown } from '@nestjs/common';
import { HOT_STORAGE } from './tokens.js';

/** A temporary object this old cannot belong to a store still in progress. */
const STALE_AFTER_MS = 6 * 60 * 60 * 1000;
const EVERY_MS = 60 * 60 * 1000;

/**
 * Removes temporary objects left in the hot tier by a crash between write and commit (never
 * acknowledged, so never anyone's data). At start-up and hourly.
 */
@Injectable()
export class TempSweeperService implements OnApplicationBootstrap, OnApplicationShutdown {
  private readonly logger = new Logger(TempSweeperService.name);
  private readonly task: PeriodicTask;

  constructor(@Inject(HOT_STORAGE) private readonly hot: StorageBackend) {
    this.task = new PeriodicTask({
      everyMs: EVERY_MS,
      run: () => this.sweep(),
      // sweep() reports its own failures.
      onError: () => undefined,
    });
  }

  onApplicationBootstrap() {
    this.task.start();
  }

  onApplicationShutdown() {
    return this.task.stop();
  }

  async sweep(): Promise<number> {
    try {
      const n = await this.hot.sweepTemp(STALE_AFTER_MS);
      if (n) this.logger.warn(`removed ${n} stale temporary object(s) from storage ${this.hot.id}`);
      return n;
    } catch (e) {
      this.logger.warn(`temporary-object sweep of ${this.hot.id} failed: ${(e as Error).message}`);
      return 0;
    }
  }
}
