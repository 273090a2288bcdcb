import { InjectQueue } from '@nestjs/bullmq';
import { Injectable } from '@nestjs/common';
import type { Queue } from 'bullmq';
import { type JobItem, jobDelayFor, jobIdFor, QUEUE_FOR_JOB, QueueName } from './names.js';

/** The one typed way to enqueue jobs. Retry/backoff and dedup ids are set here. */
@Injectable()
export class JobQueueService {
  private readonly queues: Record<QueueName, Queue>;

  constructor(@InjectQueue(QueueName.Index) index: Queue) {
    this.queues = { [QueueName.Index]: index };
  }

  async queue(job: JobItem): Promise<void> {
    await this.queueAll([job]);
  }

  async queueAll(jobs: JobItem[]): Promise<void> {
    const byQueue = new Map<QueueName, JobItem[]>();
    for (const job of jobs) {
      const q = QUEUE_FOR_JOB[job.name];
      byQueue.set(q, [...(byQueue.get(q) ?? []), job]);
    }
    for (const [q, items] of byQueue) {
      await this.queues[q].addBulk(
        items.map((job) => ({
          name: job.name,
          data: job.data,
          opts: {
            jobId: jobIdFor(job),
            delay: jobDelayFor(job),
            attempts: 10,
            backoff: { type: 'exponential', delay: 1000 },
            removeOnComplete: true,
            removeOnFail: true,
          },
        })),
      );
    }
  }

  /** Jobs waiting or running in a queue (for tests and health). */
  async pending(q: QueueName): Promise<number> {
    const c = await this.queues[q].getJobCounts('waiting', 'active', 'delayed', 'prioritized');
    return Object.values(c).reduce((a, b) => a + b, 0);
  }
}
