import { PeriodicTask } from '#vna/jobs';
import { Inject, Injectable, Logger, type OnApplicationBootstrap, type OnApplicationShutdown } from '@nestjs/common';
import { IndexerService } from './indexer.service.js';

export const RECONCILE_INTERVAL_MS = Symbol('RECONCILE_INTERVAL_MS');

/** Runs the indexer's reconciliation at start-up and then every interval. */
@Injectable()
export class ReconcilerService implements OnApplicationBootstrap, OnApplicationShutdown {
  private readonly logger = new Logger(ReconcilerService.name);
  private readonly task: PeriodicTask;

  constructor(
    private readonly indexer: IndexerService,
    @Inject(RECONCILE_INTERVAL_MS) intervalMs: number,
  ) {
    this.task = new PeriodicTask({
      everyMs: intervalMs,
      run: () => this.indexer.reconcile(),
      onError: (e) => this.logger.warn(`reconcile failed (will retry): ${e.message}`),
    });
  }

  onApplicationBootstrap() {
    this.task.start();
  }

  onApplicationShutdown() {
    return this.task.stop();
  }
}
