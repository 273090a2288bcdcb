import { Column, Entity, PrimaryColumn, PrimaryGeneratedColumn } from 'typeorm';

/** A study is ACTIVE, or PURGING from the transaction that starts its purge until its rows are gone. */
export enum StudyRetentionState {
  Active = 'ACTIVE',
  Purging = 'PURGING',
}

/** The current version of a retention rule (every version is kept in retention_rule_version). */
@Entity({ name: 'retention_rule' })
export class RetentionRuleEntity {
  @PrimaryGeneratedColumn({ type: 'bigint' }) id: string;
  @Column({ type: 'integer' }) version: number;
  @Column({ type: 'text' }) name: string;
  @Column({ type: 'jsonb' }) definition: Record<string, unknown>;
  @Column({ type: 'boolean' }) deleted: boolean;
  @Column({ name: 'created_by', type: 'text' }) createdBy: string;
  @Column({ name: 'created_at', type: 'timestamptz' }) createdAt: Date;
  @Column({ name: 'updated_by', type: 'text' }) updatedBy: string;
  @Column({ name: 'updated_at', type: 'timestamptz' }) updatedAt: Date;
}

/** Append-only history of rule changes; `revision` orders every change of every rule. */
@Entity({ name: 'retention_rule_version' })
export class RetentionRuleVersionEntity {
  @PrimaryGeneratedColumn({ type: 'bigint' }) revision: string;
  @Column({ name: 'rule_id', type: 'bigint' }) ruleId: string;
  @Column({ type: 'integer' }) version: number;
  @Column({ type: 'text' }) change: 'CREATED' | 'UPDATED' | 'DELETED';
  @Column({ type: 'text' }) name: string;
  @Column({ type: 'jsonb' }) definition: Record<string, unknown>;
  @Column({ type: 'text' }) actor: string;
  @Column({ type: 'timestamptz' }) at: Date;
}

/** A study's computed expiry (null: never) and the rule version that set it. */
@Entity({ name: 'study_retention' })
export class StudyRetentionEntity {
  @PrimaryColumn({ name: 'study_fk', type: 'bigint' }) studyFk: string;
  @Column({ name: 'expires_on', type: 'date', nullable: true }) expiresOn: string | null;
  @Column({ name: 'rule_id', type: 'bigint', nullable: true }) ruleId: string | null;
  @Column({ name: 'rule_version', type: 'integer', nullable: true }) ruleVersion: number | null;
  @Column({ type: 'text', nullable: true }) action: string | null;
  @Column({ name: 'auto_purge', type: 'boolean' }) autoPurge: boolean;
  @Column({ name: 'rules_revision', type: 'bigint' }) rulesRevision: string;
  @Column({ name: 'basis_updated_at', type: 'timestamptz' }) basisUpdatedAt: Date;
  @Column({ name: 'basis_last_access_at', type: 'timestamptz', nullable: true }) basisLastAccessAt: Date | null;
  @Column({ name: 'computed_at', type: 'timestamptz' }) computedAt: Date;
}

/** A legal hold on a patient (PatientID + issuer) or on one study; released holds are kept. */
@Entity({ name: 'legal_hold' })
export class LegalHoldEntity {
  @PrimaryGeneratedColumn({ type: 'bigint' }) id: string;
  @Column({ name: 'patient_id', type: 'text', nullable: true }) patientId: string | null;
  @Column({ type: 'text', nullable: true }) issuer: string | null;
  @Column({ name: 'study_iuid', type: 'text', nullable: true }) studyIuid: string | null;
  @Column({ name: 'case_reference', type: 'text' }) caseReference: string;
  @Column({ type: 'text' }) reason: string;
  @Column({ name: 'placed_by', type: 'text' }) placedBy: string;
  @Column({ name: 'placed_at', type: 'timestamptz' }) placedAt: Date;
  @Column({ name: 'released_by', type: 'text', nullable: true }) releasedBy: string | null;
  @Column({ name: 'released_at', type: 'timestamptz', nullable: true }) releasedAt: Date | null;
  @Column({ name: 'release_reason', type: 'text', nullable: true }) releaseReason: string | null;
}

/** A purge batch: a snapshot of expired studies, approved (or auto-approved) before it runs. */
@Entity({ name: 'retention_purge' })
export class RetentionPurgeEntity {
  @PrimaryGeneratedColumn({ type: 'bigint' }) id: string;
  @Column({ type: 'text' }) state: string;
  @Column({ name: 'requires_approval', type: 'boolean' }) requiresApproval: boolean;
  @Column({ name: 'created_by', type: 'text' }) createdBy: string;
  @Column({ name: 'created_at', type: 'timestamptz' }) createdAt: Date;
  @Column({ name: 'approved_by', type: 'text', nullable: true }) approvedBy: string | null;
  @Column({ name: 'approved_at', type: 'timestamptz', nullable: true }) approvedAt: Date | null;
  @Column({ name: 'rejected_by', type: 'text', nullable: true }) rejectedBy: string | null;
  @Column({ name: 'rejected_at', type: 'timestamptz', nullable: true }) rejectedAt: Date | null;
  @Column({ name: 'reject_reason', type: 'text', nullable: true }) rejectReason: string | null;
  @Column({ name: 'started_at', type: 'timestamptz', nullable: true }) startedAt: Date | null;
  @Column({ name: 'completed_at', type: 'timestamptz', nullable: true }) completedAt: Date | null;
  @Column({ name: 'max_per_run', type: 'integer' }) maxPerRun: number;
  @Column({ name: 'left_out', type: 'integer' }) leftOut: number;
}

/** The purge journal, per study. */
@Entity({ name: 'retention_purge_study' })
export class RetentionPurgeStudyEntity {
  @PrimaryGeneratedColumn({ type: 'bigint' }) id: string;
  @Column({ name: 'purge_fk', type: 'bigint' }) purgeFk: string;
  @Column({ name: 'study_fk', type: 'bigint' }) studyFk: string;
  @Column({ name: 'study_iuid', type: 'text' }) studyIuid: string;
  @Column({ name: 'patient_id', type: 'text' }) patientId: string;
  @Column({ type: 'text' }) issuer: string;
  @Column({ name: 'study_date', type: 'text' }) studyDate: string;
  @Column({ name: 'size_bytes', type: 'bigint' }) sizeBytes: string;
  @Column({ name: 'num_instances', type: 'integer' }) numInstances: number;
  @Column({ name: 'expires_on', type: 'date' }) expiresOn: string;
  @Column({ name: 'rule_id', type: 'bigint' }) ruleId: string;
  @Column({ name: 'rule_version', type: 'integer' }) ruleVersion: number;
  @Column({ name: 'auto_purge', type: 'boolean' }) autoPurge: boolean;
  @Column({ type: 'text' }) state: string;
  @Column({ type: 'text', nullable: true }) note: string | null;
  @Column({ name: 'started_at', type: 'timestamptz', nullable: true }) startedAt: Date | null;
  @Column({ name: 'completed_at', type: 'timestamptz', nullable: true }) completedAt: Date | null;
}

/** The purge journal, per instance: its copies (storage id, key, digest) once deleted. */
@Entity({ name: 'retention_purge_instance' })
export class RetentionPurgeInstanceEntity {
  @PrimaryGeneratedColumn({ type: 'bigint' }) id: string;
  @Column({ name: 'purge_study_fk', type: 'bigint' }) purgeStudyFk: string;
  @Column({ name: 'instance_fk', type: 'bigint' }) instanceFk: string;
  @Column({ name: 'sop_iuid', type: 'text' }) sopIuid: string;
  @Column({ name: 'series_iuid', type: 'text' }) seriesIuid: string;
  @Column({ type: 'text' }) sha256: string;
  @Column({ name: 'size_bytes', type: 'bigint' }) sizeBytes: string;
  @Column({ type: 'text' }) state: string;
  @Column({ type: 'jsonb' }) locations: Array<Record<string, unknown>>;
}

export const RETENTION_ENTITIES = [
  RetentionRuleEntity,
  RetentionRuleVersionEntity,
  StudyRetentionEntity,
  LegalHoldEntity,
  RetentionPurgeEntity,
  RetentionPurgeStudyEntity,
  RetentionPurgeInstanceEntity,
];
