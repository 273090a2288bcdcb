import { JobName, type JobItem, QueueName } from '#vna/jobs';
import { Processor, WorkerHost } from '@nestjs/bullmq';
import { Inject, type OnApplicationBootstrap } from '@nestjs/common';
import type { Job } from 'bullmq';
import { IndexerService } from './indexer.service.js';

/** Thin: one switch, one service call per job name; an unknown name throws. */
export const INDEXER_CONCURRENCY = Symbol('INDEXER_CONCURRENCY');

@Processor(QueueName.Index)
export class IndexProcessor extends WorkerHost implements OnApplicationBootstrap {
  constructor(
    private readonly indexer: IndexerService,
    @Inject(INDEXER_CONCURRENCY) private readonly concurrency: number,
  ) {
    super();
  }

  onApplicationBootstrap() {
    this.worker.concurrency = this.concurrency;
  }

  async process(job: Job<JobItem['data'], void, JobItem['name']>): Promise<void> {
    switch (job.name) {
      case JobName.IndexInstance:
        return this.indexer.handleIndexInstance(job.data);
      default:
        throw new Error(`unknown job ${String(job.name)} on queue ${QueueName.Index}`);
    }
  }
}
