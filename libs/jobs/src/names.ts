/**
 * Queue and job names. Their values are persisted in Redis: never rename one without a migration
 * plan (drain the old queue or re-enqueue from the database, which is the source of truth).
 */
export enum QueueName {
  Index = 'vna-index',
  Migration = 'vna-migration',
}

export enum JobName {
  /** Index every RECEIVED instance of one study, in batches. */
  IndexStudy = 'index-study',
  /** Enumerate a migration job's studies at its source into the ledger (C-FIND). */
  MigrationEnumerate = 'migration-enumerate',
  /** Retrieve and verify one ledger row (one source study) of a migration job. */
  MigrationStudy = 'migration-study',
}

/** Every job the archive enqueues, as one discriminated union. Payloads carry ids only. */
export type JobItem =
  | { name: JobName.IndexStudy; data: { studyIuid: string } }
  | { name: JobName.MigrationEnumerate; data: { migrationId: string } }
  | { name: JobName.MigrationStudy; data: { ledgerId: string } };

/** The payload of one job name. */
export type JobData<N extends JobName> = Extract<JobItem, { name: N }>['data'];

export const QUEUE_FOR_JOB: Record<JobName, QueueName> = {
  [JobName.IndexStudy]: QueueName.Index,
  [JobName.MigrationEnumerate]: QueueName.Migration,
  [JobName.MigrationStudy]: QueueName.Migration,
};

/**
 * Deduplication id per job, so re-enqueueing is harmless: while a study's index job waits, new
 * instances of that study ride on it. (No ':' in BullMQ ids.)
 */
export function jobIdFor(job: JobItem): string {
  switch (job.name) {
    case JobName.IndexStudy:
      return `index-study-${job.data.studyIuid}`;
    case JobName.MigrationEnumerate:
      return `migration-enumerate-${job.data.migrationId}`;
    case JobName.MigrationStudy:
      return `migration-study-${job.data.ledgerId}`;
  }
}

/** Delays before jobs run (ms), from the configuration (VNA_INDEX_DELAY_MS). */
export interface JobDelays {
  /**
   * An index job waits this long before it runs, so the instances of a study that arrive
   * meanwhile ride on it (its job id is taken) and are indexed in one batch: a study sent at
   * hundreds of instances per second costs a few index transactions instead of one per instance.
   */
  indexStudyMs: number;
}

export const DEFAULT_JOB_DELAYS: JobDelays = { indexStudyMs: 500 };

/** Injection token for the JobDelays of this process. */
export const JOB_DELAYS = Symbol('JOB_DELAYS');

export function jobDelayFor(job: JobItem, delays: JobDelays): number {
  switch (job.name) {
    case JobName.IndexStudy:
      return delays.indexStudyMs;
    case JobName.MigrationEnumerate:
    case JobName.MigrationStudy:
      return 0;
  }
}
