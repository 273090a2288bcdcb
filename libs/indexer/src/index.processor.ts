import { type JobData, JobName, type JobItem, QueueName } from '#vna/jobs';
import { OnWorkerEvent, Processor, WorkerHost } from '@nestjs/bullmq';
import { Inject, Logger, type OnApplicationBootstrap } from '@nestjs/common';
import type { Job } from 'bullmq';
import { IndexerService } from './indexer.service.js';

export const INDEXER_CONCURRENCY = Symbol('INDEXER_CONCURRENCY');

/** Thin: one switch, one service call per job name; an unknown name throws. */
// A job whose worker died (kill -9) is "stalled": BullMQ hands it to another worker once its lock
// lapses. Check often, so a study whose job was running at a crash is indexed within seconds.
@Processor(QueueName.Index, { stalledInterval: 5000 })
export class IndexProcessor extends WorkerHost implements OnApplicationBootstrap {
  private readonly logger = new Logger(IndexProcessor.name);

  constructor(
    private readonly indexer: IndexerService,
    @Inject(INDEXER_CONCURRENCY) private readonly concurrency: number,
  ) {
    super();
  }

  onApplicationBootstrap() {
    this.worker.concurrency = this.concurrency;
  }

  async process(job: Job<JobItem['data'], unknown, JobItem['name']>): Promise<unknown> {
    switch (job.name) {
      case JobName.IndexStudy:
        return this.indexer.handleIndexStudy(job.data as JobData<JobName.IndexStudy>);
      default:
        throw new Error(`unknown job ${String(job.name)} on queue ${QueueName.Index}`);
    }
  }

  @OnWorkerEvent('completed')
  onCompleted(job: Job<JobItem['data'], unknown, JobItem['name']>) {
    if (job.name === JobName.IndexStudy) {
      this.indexer.afterIndexStudy((job.data as JobData<JobName.IndexStudy>).studyIuid).catch((e) => this.logger.warn(`post-index check failed: ${e}`));
    }
  }
}
