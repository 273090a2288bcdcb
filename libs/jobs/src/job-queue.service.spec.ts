import { Queue } from 'bullmq';
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { JobQueueService } from './job-queue.service.js';
import { JobName, PREFETCH_RESTORE_PRIORITY, PRIORS_PREFETCH_DELAY_MS } from './names.js';

// Against the real Redis of the test machine (test/run.sh starts it where absent).
const REDIS = new URL(process.env.VNA_TEST_REDIS_URL ?? 'redis://127.0.0.1:6379');

describe('JobQueueService (real Redis)', () => {
  let queue: Queue;
  const study = () => `1.2.826.0.1.3680043.10.${parseInt(randomBytes(4).toString('hex'), 16)}`;

  beforeAll(() => {
    queue = new Queue(`vna-index-spec-${randomBytes(4).toString('hex')}`, {
      connection: { host: REDIS.hostname, port: Number(REDIS.port || 6379), db: 15 },
    });
  });
  afterAll(async () => {
    await queue.obliterate({ force: true });
    await queue.close();
  });

  it('adds an index job with the configured delay, and a second add within half the delay stays in the process', async () => {
    const jobs = new JobQueueService(queue, { indexStudyMs: 60_000 });
    const studyIuid = study();
    await jobs.queue({ name: JobName.IndexStudy, data: { studyIuid } });
    const job = await queue.getJob(`index-study-${studyIuid}`);
    expect(await job?.getState()).toBe('delayed');
    expect(job?.opts.delay).toBe(60_000);

    await job!.remove();
    await jobs.queue({ name: JobName.IndexStudy, data: { studyIuid } });
    expect(await queue.getJob(`index-study-${studyIuid}`)).toBeUndefined(); // coalesced, Redis not asked
    await jobs.queue({ name: JobName.IndexStudy, data: { studyIuid } }, { coalesce: false });
    expect(await (await queue.getJob(`index-study-${studyIuid}`))?.getState()).toBe('delayed');
  });

  it('runNow promotes a delayed job, and adds a missing one without delay', async () => {
    const jobs = new JobQueueService(queue, { indexStudyMs: 60_000 });
    const delayed = study();
    const missing = study();
    await jobs.queue({ name: JobName.IndexStudy, data: { studyIuid: delayed } });
    await jobs.runNow([
      { name: JobName.IndexStudy, data: { studyIuid: delayed } },
      { name: JobName.IndexStudy, data: { studyIuid: missing } },
    ]);
    expect(await (await queue.getJob(`index-study-${delayed}`))?.getState()).toBe('waiting');
    expect(await (await queue.getJob(`index-study-${missing}`))?.getState()).toBe('waiting');
    // After runNow the next add reaches Redis again (the job id exists: a no-op there).
    await jobs.queue({ name: JobName.IndexStudy, data: { studyIuid: delayed } });
    expect(await (await queue.getJob(`index-study-${delayed}`))?.getState()).toBe('waiting');
  });

  it('a prefetch restore waits at its lower priority; an on-demand request raises it; a priors prefetch job is delayed', async () => {
    const tiering = new Queue(`vna-tiering-spec-${randomBytes(4).toString('hex')}`, {
      connection: { host: REDIS.hostname, port: Number(REDIS.port || 6379), db: 15 },
    });
    try {
      const jobs = new JobQueueService(queue, { indexStudyMs: 60_000 }, undefined, tiering);
      const studyIuid = study();
      const restore = { name: JobName.StudyRestore, data: { studyIuid } } as const;
      await jobs.queue(restore, { coalesce: false, priority: PREFETCH_RESTORE_PRIORITY });
      const job = await tiering.getJob(`study-restore-${studyIuid}`);
      expect(job?.priority).toBe(PREFETCH_RESTORE_PRIORITY);
      expect(await job?.getState()).toBe('prioritized');
      await jobs.queue(restore, { coalesce: false }); // same id: a no-op in Redis
      expect((await tiering.getJob(`study-restore-${studyIuid}`))?.priority).toBe(PREFETCH_RESTORE_PRIORITY);
      await jobs.raisePriority(restore);
      expect((await tiering.getJob(`study-restore-${studyIuid}`))?.priority).toBe(1);

      const fresh = study();
      await jobs.queue({ name: JobName.PriorsPrefetch, data: { studyIuid: fresh } });
      const prefetch = await tiering.getJob(`priors-prefetch-${fresh}`);
      expect(await prefetch?.getState()).toBe('delayed');
      expect(prefetch?.opts.delay).toBe(PRIORS_PREFETCH_DELAY_MS);
    } finally {
      await tiering.obliterate({ force: true });
      await tiering.close();
    }
  });
});
