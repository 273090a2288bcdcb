import { JobName, type JobItem, QueueName } from '#vna/jobs';
import { OnWorkerEvent, Processor, WorkerHost } from '@nestjs/bullmq';
import { Logger } from '@nestjs/common';
import type { Job } from 'bullmq';
import { ExpiryService } from './expiry.service.js';
import { PurgeService } from './purge.service.js';

/**
 * Thin: one switch, one service call per job name; an unknown name throws. A purge whose worker
 * was killed is stalled: with a short lock it is handed to a live worker within seconds, and it
 * resumes from its journal.
 */
@Processor(QueueName.Retention, { stalledInterval: 5000, lockDuration: 10_000, concurrency: 2 })
export class RetentionProcessor extends WorkerHost {
  private readonly logger = new Logger(RetentionProcessor.name);

  constructor(
    private readonly expiry: ExpiryService,
    private readonly purges: PurgeService,
  ) {
    super();
  }

  async process(job: Job<JobItem['data'], unknown, JobItem['name']>): Promise<unknown> {
    const item = { name: job.name, data: job.data } as JobItem;
    switch (item.name) {
      case JobName.RetentionEvaluate:
        return this.expiry.handleEvaluate();
      case JobName.RetentionEvaluateStudy:
        return this.expiry.handleEvaluateStudy(item.data);
      case JobName.RetentionPurge:
        return this.purges.handlePurge(item.data.purgeId);
      default:
        throw new Error(`unknown job ${String(job.name)} on queue ${QueueName.Retention}`);
    }
  }

  @OnWorkerEvent('completed')
  onCompleted(job: Job<JobItem['data'], unknown, JobItem['name']>) {
    if (job.name === JobName.RetentionEvaluate) {
      this.expiry.afterEvaluate().catch((e) => this.logger.warn(`post-sweep check failed: ${e}`));
    }
  }

  @OnWorkerEvent('failed')
  onFailed(job: Job<JobItem['data'], unknown, JobItem['name']> | undefined, error: Error) {
    this.logger.error(`${job?.name ?? 'job'} ${job?.id ?? ''} failed: ${error.message}`);
  }
}
