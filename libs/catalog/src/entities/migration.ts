import { Column, Entity, PrimaryColumn, PrimaryGeneratedColumn } from 'typeorm';

/** A migration job's state (dcm4chee's task states, plus PAUSED). */
export enum MigrationState {
  Scheduled = 'SCHEDULED',
  Running = 'RUNNING',
  Paused = 'PAUSED',
  Canceled = 'CANCELED',
  Completed = 'COMPLETED',
  Failed = 'FAILED',
}

/** A ledger row's state: one source study on its way into the archive. */
export enum MigrationStudyState {
  Pending = 'pending',
  Retrieving = 'retrieving',
  Verifying = 'verifying',
  Done = 'done',
  Failed = 'failed',
  Skipped = 'skipped',
}

/** A migration job: where from, which studies, in which order, how fast. */
@Entity({ name: 'migration_job' })
export class MigrationJobEntity {
  @PrimaryGeneratedColumn({ type: 'bigint' }) id: string;
  @Column({ type: 'text' }) name: string;
  @Column({ type: 'jsonb' }) source: Record<string, unknown>;
  @Column({ type: 'jsonb' }) scope: Record<string, unknown>;
  @Column({ name: 'study_order', type: 'text' }) studyOrder: string;
  @Column({ name: 'max_associations', type: 'integer' }) maxAssociations: number;
  @Column({ name: 'max_instances_per_second', type: 'double precision', nullable: true }) maxInstancesPerSecond: number | null;
  /** Time windows the job may run in (`[{start: 'HH:MM', end: 'HH:MM'}]`, in time_zone); empty: always. */
  @Column({ type: 'jsonb' }) windows: Array<{ start: string; end: string }>;
  @Column({ name: 'time_zone', type: 'text' }) timeZone: string;
  @Column({ type: 'text' }) state: MigrationState;
  @Column({ type: 'integer' }) attempts: number;
  @Column({ name: 'last_error', type: 'text', nullable: true }) lastError: string | null;
  @Column({ name: 'created_at', type: 'timestamptz' }) createdAt: Date;
  @Column({ name: 'updated_at', type: 'timestamptz' }) updatedAt: Date;
  @Column({ name: 'started_at', type: 'timestamptz', nullable: true }) startedAt: Date | null;
  @Column({ name: 'finished_at', type: 'timestamptz', nullable: true }) finishedAt: Date | null;
}

/** The migration ledger: one row per source study of a job. */
@Entity({ name: 'migration_study' })
export class MigrationStudyEntity {
  @PrimaryGeneratedColumn({ type: 'bigint' }) id: string;
  @Column({ name: 'migration_fk', type: 'bigint' }) migrationFk: string;
  @Column({ type: 'integer' }) seq: number;
  @Column({ name: 'study_iuid', type: 'text' }) studyIuid: string;
  /** Folder sources: the file, relative to the folder (one row per file). */
  @Column({ name: 'file_path', type: 'text' }) filePath: string;
  @Column({ name: 'study_date', type: 'text' }) studyDate: string;
  @Column({ name: 'patient_id', type: 'text' }) patientId: string;
  @Column({ name: 'accession_number', type: 'text' }) accessionNumber: string;
  @Column({ type: 'text' }) state: MigrationStudyState;
  @Column({ name: 'expected_instances', type: 'integer', nullable: true }) expectedInstances: number | null;
  @Column({ name: 'migrated_instances', type: 'integer' }) migratedInstances: number;
  @Column({ name: 'skipped_instances', type: 'integer' }) skippedInstances: number;
  @Column({ name: 'failed_instances', type: 'integer' }) failedInstances: number;
  @Column({ type: 'bigint' }) bytes: string;
  @Column({ type: 'integer' }) attempts: number;
  @Column({ name: 'last_error', type: 'text', nullable: true }) lastError: string | null;
  @Column({ name: 'next_attempt_at', type: 'timestamptz', nullable: true }) nextAttemptAt: Date | null;
  @Column({ name: 'started_at', type: 'timestamptz', nullable: true }) startedAt: Date | null;
  @Column({ name: 'finished_at', type: 'timestamptz', nullable: true }) finishedAt: Date | null;
  @Column({ name: 'updated_at', type: 'timestamptz' }) updatedAt: Date;
}

/** An instance a ledger row accounted for: migrated by it, or already in the archive (skipped). */
@Entity({ name: 'migration_instance' })
export class MigrationInstanceEntity {
  @PrimaryColumn({ name: 'study_fk', type: 'bigint' }) studyFk: string;
  @PrimaryColumn({ name: 'sop_iuid', type: 'text' }) sopIuid: string;
  @Column({ type: 'text' }) outcome: 'migrated' | 'skipped';
  @Column({ name: 'size_bytes', type: 'bigint' }) sizeBytes: string;
  @Column({ name: 'stored_at', type: 'timestamptz' }) storedAt: Date;
}
