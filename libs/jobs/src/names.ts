/**
 * Queue and job names. Their values are persisted in Redis: never rename one without a migration
 * plan (drain the old queue or re-enqueue from the database, which is the source of truth).
 */
export enum QueueName {
  Index = 'vna-index',
}

export enum JobName {
  IndexInstance = 'index-instance',
}

/** Every job the archive enqueues, as one discriminated union. Payloads carry ids only. */
export type JobItem = {
  name: JobName.IndexInstance;
  data: { instanceId: string; version: number };
};

export const QUEUE_FOR_JOB: Record<JobName, QueueName> = {
  [JobName.IndexInstance]: QueueName.Index,
};

/** Deduplication id per job, so re-enqueueing from the database is harmless. (No ':' in BullMQ ids.) */
export function jobIdFor(job: JobItem): string {
  switch (job.name) {
    case JobName.IndexInstance:
      return `index-${job.data.instanceId}-v${job.data.version}`;
  }
}
