/**
 * Queue and job names. Their values are persisted in Redis: never rename one without a migration
 * plan (drain the old queue or re-enqueue from the database, which is the source of truth).
 */
export enum QueueName {
  Index = 'vna-index',
  /** Retention: expiry recomputation and purges. */
  Retention = 'vna-retention',
  /** Study moves between storage tiers (issue 4); the study_move journal is the source of truth. */
  Tiering = 'vna-tiering',
  /** Migration jobs from legacy archives; the ledger (migration_study) is the source of truth. */
  Migration = 'vna-migration',
}

export enum JobName {
  /** Index every RECEIVED instance of one study, in batches. */
  IndexStudy = 'index-study',
  /** Recompute the expiry of every study whose inputs (rules, study, last access) changed. */
  RetentionEvaluate = 'retention-evaluate',
  /** Recompute one study's expiry (after its instances were indexed). */
  RetentionEvaluateStudy = 'retention-evaluate-study',
  /** Run (or resume) one approved purge batch from its journal. */
  RetentionPurge = 'retention-purge',
  /** Run (resume, or clean up after) every unfinished move of one study from the study_move journal. */
  StudyMove = 'study-move',
  /** Evaluate the lifecycle policy and enqueue the moves it calls for (run by a job scheduler). */
  LifecycleEvaluate = 'lifecycle-evaluate',
  /** Enumerate a migration job's studies at its source into the ledger (C-FIND). */
  MigrationEnumerate = 'migration-enumerate',
  /** Retrieve and verify one ledger row (one source study) of a migration job. */
  MigrationStudy = 'migration-study',
  /** Restore (or resume restoring) a study's offline copies into the hot tier, from the study_restore journal. */
  StudyRestore = 'study-restore',
  /** Check the hot tier's capacity watermarks and journal the demotions they call for (run by a job scheduler). */
  CapacityCheck = 'capacity-check',
  /** A new study was indexed: restore its patient's most recent priors from offline tiers ahead of need. */
  PriorsPrefetch = 'priors-prefetch',
}

/** Every job the archive enqueues, as one discriminated union. Payloads carry ids only. */
export type JobItem =
  | { name: JobName.IndexStudy; data: { studyIuid: string } }
  /** No payload: the job finds stale studies in the database. */
  | { name: JobName.RetentionEvaluate; data: Record<string, never> }
  | { name: JobName.RetentionEvaluateStudy; data: { studyIuid: string } }
  | { name: JobName.RetentionPurge; data: { purgeId: string } }
  | { name: JobName.StudyMove; data: { studyIuid: string } }
  | { name: JobName.LifecycleEvaluate; data: Record<string, never> }
  | { name: JobName.MigrationEnumerate; data: { migrationId: string } }
  | { name: JobName.MigrationStudy; data: { ledgerId: string } }
  | { name: JobName.StudyRestore; data: { studyIuid: string } }
  | { name: JobName.CapacityCheck; data: Record<string, never> }
  /** studyIuid: the new study (its priors are looked up in the database). */
  | { name: JobName.PriorsPrefetch; data: { studyIuid: string } };

/** The payload of one job name (processors narrow `job.data` with it after switching on `job.name`). */
export type JobData<N extends JobName> = Extract<JobItem, { name: N }>['data'];

export const QUEUE_FOR_JOB: Record<JobName, QueueName> = {
  [JobName.IndexStudy]: QueueName.Index,
  [JobName.RetentionEvaluate]: QueueName.Retention,
  [JobName.RetentionEvaluateStudy]: QueueName.Retention,
  [JobName.RetentionPurge]: QueueName.Retention,
  [JobName.StudyMove]: QueueName.Tiering,
  [JobName.LifecycleEvaluate]: QueueName.Tiering,
  [JobName.MigrationEnumerate]: QueueName.Migration,
  [JobName.MigrationStudy]: QueueName.Migration,
  [JobName.StudyRestore]: QueueName.Tiering,
  [JobName.CapacityCheck]: QueueName.Tiering,
  [JobName.PriorsPrefetch]: QueueName.Tiering,
};

/**
 * Deduplication id per job, so re-enqueueing is harmless: while a study's index job waits, new
 * instances of that study ride on it. (No ':' in BullMQ ids.)
 */
export function jobIdFor(job: JobItem): string {
  switch (job.name) {
    case JobName.IndexStudy:
      return `index-study-${job.data.studyIuid}`;
    case JobName.RetentionEvaluate:
      return 'retention-evaluate';
    case JobName.RetentionEvaluateStudy:
      return `retention-evaluate-study-${job.data.studyIuid}`;
    case JobName.RetentionPurge:
      return `retention-purge-${job.data.purgeId}`;
    case JobName.StudyMove:
      return `study-move-${job.data.studyIuid}`;
    case JobName.LifecycleEvaluate:
      return 'lifecycle-evaluate';
    case JobName.MigrationEnumerate:
      return `migration-enumerate-${job.data.migrationId}`;
    case JobName.MigrationStudy:
      return `migration-study-${job.data.ledgerId}`;
    case JobName.StudyRestore:
      return `study-restore-${job.data.studyIuid}`;
    case JobName.CapacityCheck:
      return 'capacity-check';
    case JobName.PriorsPrefetch:
      return `priors-prefetch-${job.data.studyIuid}`;
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

export const RETENTION_EVALUATE_DELAY_MS = 1000;

/**
 * A priors prefetch waits this long after the new study's first index batch, so the batches that
 * follow ride on it (same job id) and the study's modalities are complete when its priors are chosen.
 */
export const PRIORS_PREFETCH_DELAY_MS = 2000;

/**
 * BullMQ priority of restores requested by the priors prefetch: after restores someone waits for
 * (1: a viewer, a C-MOVE), before study moves (10).
 */
export const PREFETCH_RESTORE_PRIORITY = 5;

export const DEFAULT_JOB_DELAYS: JobDelays = { indexStudyMs: 500 };

/** Injection token for the JobDelays of this process. */
export const JOB_DELAYS = Symbol('JOB_DELAYS');

export function jobDelayFor(job: JobItem, delays: JobDelays): number {
  switch (job.name) {
    case JobName.IndexStudy:
      return delays.indexStudyMs;
    case JobName.RetentionEvaluate:
    case JobName.RetentionEvaluateStudy:
      // Coalesces a burst of changes (a study's index batches, several rule edits) into one run.
      return RETENTION_EVALUATE_DELAY_MS;
    case JobName.RetentionPurge:
      return 0;
    case JobName.PriorsPrefetch:
      return PRIORS_PREFETCH_DELAY_MS;
    case JobName.StudyMove:
    case JobName.LifecycleEvaluate:
    case JobName.MigrationEnumerate:
    case JobName.MigrationStudy:
    case JobName.StudyRestore:
    case JobName.CapacityCheck:
      return 0;
  }
}

/**
 * BullMQ priority (1 = highest; jobs without one run before any prioritized job). A restore has
 * someone waiting for it (a viewer, a C-MOVE), so it runs before queued study moves.
 */
export function jobPriorityFor(job: JobItem): number | undefined {
  switch (job.name) {
    case JobName.StudyRestore:
      return 1;
    case JobName.PriorsPrefetch:
      return PREFETCH_RESTORE_PRIORITY;
    case JobName.StudyMove:
      return 10;
    case JobName.IndexStudy:
    case JobName.RetentionEvaluate:
    case JobName.RetentionEvaluateStudy:
    case JobName.RetentionPurge:
    case JobName.LifecycleEvaluate:
    case JobName.MigrationEnumerate:
    case JobName.MigrationStudy:
    case JobName.CapacityCheck:
      return undefined;
  }
}
