import { type JobData, JobName, type JobItem, QueueName } from '#vna/jobs';
import { Processor, WorkerHost } from '@nestjs/bullmq';
import type { Job } from 'bullmq';
import { MigrationRunnerService } from './migration-runner.service.js';

/** Ledger rows migrated at once per process (each also limited by its job's maxAssociations). */
export const MIGRATION_WORKER_CONCURRENCY = 4;

/**
 * Thin: one switch, one service call per job name; an unknown name throws. A job whose worker was
 * killed is handed out again once its lock lapses (15 s), checked every 5 s.
 */
@Processor(QueueName.Migration, { concurrency: MIGRATION_WORKER_CONCURRENCY, lockDuration: 15_000, stalledInterval: 5000 })
export class MigrationProcessor extends WorkerHost {
  constructor(private readonly runner: MigrationRunnerService) {
    super();
  }

  async process(job: Job<JobItem['data'], unknown, JobItem['name']>): Promise<unknown> {
    switch (job.name) {
      case JobName.MigrationEnumerate:
        return this.runner.handleEnumerate(job.data as JobData<JobName.MigrationEnumerate>);
      case JobName.MigrationStudy:
        return this.runner.handleStudy(job.data as JobData<JobName.MigrationStudy>);
      default:
        throw new Error(`unknown job ${String(job.name)} on queue ${QueueName.Migration}`);
    }
  }
}
