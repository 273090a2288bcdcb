/**
 * Queue and job names. Their values are persisted in Redis: never rename one without a migration
 * plan (drain the old queue or re-enqueue from the database, which is the source of truth).
 */
export enum QueueName {
  Index = 'vna-index',
}

export enum JobName {
  /** Index every RECEIVED instance of one study, in batches. */
  IndexStudy = 'index-study',
}

/** Every job the archive enqueues, as one discriminated union. Payloads carry ids only. */
export type JobItem = {
  name: JobName.IndexStudy;
  data: { studyIuid: string };
};

export const QUEUE_FOR_JOB: Record<JobName, QueueName> = {
  [JobName.IndexStudy]: QueueName.Index,
};

/**
 * Deduplication id per job, so re-enqueueing is harmless: while a study's index job waits, new
 * instances of that study ride on it. (No ':' in BullMQ ids.)
 */
export function jobIdFor(job: JobItem): string {
  switch (job.name) {
    case JobName.IndexStudy:
      return `index-study-${job.data.studyIuid}`;
  }
}

/**
 * Delay before a job runs (ms). Index jobs need none: instances arriving while a study's job runs
 * are picked up by its next batch, so bursts batch by themselves.
 */
export function jobDelayFor(job: JobItem): number {
  switch (job.name) {
    case JobName.IndexStudy:
      return 0;
  }
}
