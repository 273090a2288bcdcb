import { InjectQueue } from '@nestjs/bullmq';
import { Inject, Injectable, Optional } from '@nestjs/common';
import type { Queue } from 'bullmq';
import { DEFAULT_JOB_DELAYS, JOB_DELAYS, type JobDelays, type JobItem, jobDelayFor, jobIdFor, jobPriorityFor, QUEUE_FOR_JOB, QueueName } from './names.js';

const RUN_NOW_ATTEMPTS = 100;
const RUN_NOW_POLL_MS = 20;

export interface QueueOptions {
  /**
   * `false` always reaches Redis: for callers that know the job with this id may have just run
   * (the indexer's post-job check) or may be lost (the reconciler).
   */
  coalesce?: boolean;
  /** BullMQ priority instead of the job name's (jobPriorityFor), e.g. a prefetch's restore. */
  priority?: number;
}

/** The one typed way to enqueue jobs. Retry/backoff and dedup ids are set here. */
@Injectable()
export class JobQueueService {
  private readonly queues: Partial<Record<QueueName, Queue>>;
  private readonly delays: JobDelays;
  /**
   * Delayed dedup jobs this process added, by job id, with the time they become due. A job added
   * with delay D cannot start before it is due, and it reads its work from the database when it
   * runs; so until then a second add of the same id is a no-op that need not reach Redis. Only
   * the first half of the delay is used, as a margin against timer and clock slack.
   */
  private readonly dueAt = new Map<string, number>();

  constructor(
    @InjectQueue(QueueName.Index) index: Queue,
    @Optional() @Inject(JOB_DELAYS) delays?: JobDelays,
    @Optional() @InjectQueue(QueueName.Retention) retention?: Queue,
    @Optional() @InjectQueue(QueueName.Tiering) tiering?: Queue,
    @Optional() @InjectQueue(QueueName.Migration) migration?: Queue,
  ) {
    this.queues = { [QueueName.Index]: index, [QueueName.Retention]: retention, [QueueName.Tiering]: tiering, [QueueName.Migration]: migration };
    this.delays = delays ?? DEFAULT_JOB_DELAYS;
  }

  /**
   * `coalesce: false` always reaches Redis: for callers that know the job with this id may have
   * just run (the indexer's post-job check) or may be lost (the reconciler).
   */
  async queue(job: JobItem, options: QueueOptions = {}): Promise<void> {
    await this.queueAll([job], options);
  }

  async queueAll(all: JobItem[], { coalesce = true, priority }: QueueOptions = {}): Promise<void> {
    const now = performance.now();
    const jobs = all.filter((job) => {
      const delay = jobDelayFor(job, this.delays);
      if (delay <= 0) return true;
      if (!coalesce) {
        this.dueAt.set(jobIdFor(job), now + delay);
        return true;
      }
      const id = jobIdFor(job);
      const due = this.dueAt.get(id);
      if (due !== undefined && now < due - delay / 2) return false;
      this.dueAt.set(id, now + delay);
      return true;
    });
    if (this.dueAt.size > 10_000) {
      for (const [id, due] of this.dueAt) if (due <= now) this.dueAt.delete(id);
    }
    const byQueue = new Map<QueueName, JobItem[]>();
    for (const job of jobs) {
      const q = QUEUE_FOR_JOB[job.name];
      byQueue.set(q, [...(byQueue.get(q) ?? []), job]);
    }
    try {
      for (const [q, items] of byQueue) await this.add(q, items, priority);
    } catch (e) {
      for (const job of jobs) this.dueAt.delete(jobIdFor(job));
      throw e;
    }
  }

  private async add(q: QueueName, items: JobItem[], priority?: number): Promise<void> {
    await this.queue_(q).addBulk(items.map((job) => ({ name: job.name, data: job.data, opts: this.options(job, priority) })));
  }

  private queue_(q: QueueName): Queue {
    const queue = this.queues[q];
    if (!queue) throw new Error(`queue ${q} is not registered in this process`);
    return queue;
  }

  private options(job: JobItem, priorityOverride?: number) {
    const priority = priorityOverride ?? jobPriorityFor(job);
    return {
      jobId: jobIdFor(job),
      ...(priority === undefined ? {} : { priority }),
      delay: jobDelayFor(job, this.delays),
      attempts: 10,
      backoff: { type: 'exponential' as const, delay: 1000 },
      removeOnComplete: true,
      removeOnFail: true,
    };
  }

  /**
   * Run these jobs now instead of when their delay ends: a delayed job is promoted, a missing one
   * added without delay. Used when a sender is done (its association ended, its STOW request was
   * answered), so what it sent becomes queryable at once instead of after the batching delay.
   */
  async runNow(jobs: JobItem[]): Promise<void> {
    await Promise.all(jobs.map((job) => this.runOneNow(job)));
  }

  private async runOneNow(job: JobItem): Promise<void> {
    const id = jobIdFor(job);
    this.dueAt.delete(id);
    const q = this.queue_(QUEUE_FOR_JOB[job.name]);
    for (let attempt = 0; attempt < RUN_NOW_ATTEMPTS; attempt++) {
      const existing = await q.getJob(id);
      if (!existing) {
        await q.add(job.name, job.data, { ...this.options(job), delay: 0 });
        return;
      }
      const state = await existing.getState();
      if (state === 'delayed') {
        // A job that left the delayed state meanwhile makes promote() fail; it runs anyway.
        await existing.promote().catch(() => undefined);
        return;
      }
      // Running: its last batch may have missed the sender's last objects, and what follows it
      // is a delayed job; wait for that one to promote it.
      if (state !== 'active') return;
      await new Promise((r) => setTimeout(r, RUN_NOW_POLL_MS));
    }
  }

  /**
   * Run `job` every `everyMs` through a BullMQ job scheduler with this id (created or updated;
   * `everyMs` 0 removes it). Schedulers live in Redis and are re-applied at every start.
   */
  async scheduleEvery(schedulerId: string, job: JobItem, everyMs: number): Promise<void> {
    const q = this.queue_(QUEUE_FOR_JOB[job.name]);
    if (everyMs <= 0) {
      await q.removeJobScheduler(schedulerId);
      return;
    }
    await q.upsertJobScheduler(schedulerId, { every: everyMs }, {
      name: job.name,
      data: job.data,
      opts: { attempts: 3, backoff: { type: 'exponential', delay: 1000 }, removeOnComplete: true, removeOnFail: true },
    });
  }

  /**
   * The job with this id, if it waits with a lower priority (a larger number) than its job name's,
   * gets that priority: a restore someone now waits for overtakes the prefetches queued before it.
   * A job running, delayed or gone is left alone. Best effort: a job that starts meanwhile runs anyway.
   */
  async raisePriority(job: JobItem): Promise<void> {
    const wanted = jobPriorityFor(job);
    if (wanted === undefined) return;
    const existing = await this.queue_(QUEUE_FOR_JOB[job.name]).getJob(jobIdFor(job));
    if (!existing || (existing.priority ?? 0) <= wanted) return;
    const state = await existing.getState();
    if (state === 'prioritized' || state === 'waiting') await existing.changePriority({ priority: wanted }).catch(() => undefined);
  }

  /** Jobs waiting or running in a queue (for tests and health). */
  async pending(q: QueueName): Promise<number> {
    const c = await this.queue_(q).getJobCounts('waiting', 'active', 'delayed', 'prioritized');
    return Object.values(c).reduce((a, b) => a + b, 0);
  }
}
