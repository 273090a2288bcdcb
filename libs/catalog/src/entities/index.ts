import {
  Column,
  Entity,
  Index,
  JoinColumn,
  ManyToOne,
  PrimaryGeneratedColumn,
  type Relation,
} from 'typeorm';
import { ApplicationEntityEntity } from './application-entity.js';
import { RETENTION_ENTITIES, type StudyRetentionState } from './retention.js';
import { LifecyclePolicyEntity } from './lifecycle-policy.js';
import { StudyMoveEntity, StudyMoveItemEntity } from './study-move.js';
import { MigrationInstanceEntity, MigrationJobEntity, MigrationStudyEntity } from './migration.js';

export * from './application-entity.js';
export * from './retention.js';
export * from './study-move.js';
export * from './lifecycle-policy.js';
export * from './migration.js';

/** A patient is identified by PatientID plus IssuerOfPatientID: two sources with the same MRN stay apart. */
@Entity({ name: 'patient' })
export class PatientEntity {
  @PrimaryGeneratedColumn({ type: 'bigint' }) id: string;
  @Column({ name: 'patient_id', type: 'text' }) patientId: string;
  @Column({ type: 'text' }) issuer: string;
  @Column({ name: 'patient_name', type: 'text' }) patientName: string;
  @Column({ name: 'patient_name_norm', type: 'text' }) patientNameNorm: string;
  @Column({ name: 'birth_date', type: 'text' }) birthDate: string;
  @Column({ type: 'text' }) sex: string;
  @Column({ type: 'jsonb' }) attrs: Record<string, unknown>;
  @Column({ name: 'created_at', type: 'timestamptz' }) createdAt: Date;
  @Column({ name: 'updated_at', type: 'timestamptz' }) updatedAt: Date;
}

@Entity({ name: 'study' })
export class StudyEntity {
  @PrimaryGeneratedColumn({ type: 'bigint' }) id: string;
  @Column({ name: 'patient_fk', type: 'bigint' }) patientFk: string;
  @ManyToOne(() => PatientEntity) @JoinColumn({ name: 'patient_fk' }) patient?: Relation<PatientEntity>;
  @Index({ unique: true }) @Column({ name: 'study_iuid', type: 'text' }) studyIuid: string;
  @Column({ name: 'study_date', type: 'text' }) studyDate: string;
  @Column({ name: 'study_time', type: 'text' }) studyTime: string;
  @Column({ name: 'accession_number', type: 'text' }) accessionNumber: string;
  @Column({ name: 'study_id', type: 'text' }) studyId: string;
  @Column({ name: 'study_description', type: 'text' }) studyDescription: string;
  @Column({ name: 'referring_physician', type: 'text' }) referringPhysician: string;
  @Column({ type: 'text', array: true }) modalities: string[];
  @Column({ name: 'sop_classes', type: 'text', array: true }) sopClasses: string[];
  @Column({ name: 'num_series', type: 'integer' }) numSeries: number;
  @Column({ name: 'num_instances', type: 'integer' }) numInstances: number;
  @Column({ name: 'size_bytes', type: 'bigint' }) sizeBytes: string;
  @Column({ type: 'jsonb' }) attrs: Record<string, unknown>;
  @Column({ name: 'last_access_at', type: 'timestamptz', nullable: true }) lastAccessAt: Date | null;
  /** ACTIVE, or PURGING while a retention purge deletes it (hidden from QIDO, C-FIND, WADO). */
  @Column({ name: 'retention_state', type: 'text' }) retentionState: StudyRetentionState;
  @Column({ name: 'created_at', type: 'timestamptz' }) createdAt: Date;
  @Column({ name: 'updated_at', type: 'timestamptz' }) updatedAt: Date;
}

@Entity({ name: 'series' })
export class SeriesEntity {
  @PrimaryGeneratedColumn({ type: 'bigint' }) id: string;
  @Column({ name: 'study_fk', type: 'bigint' }) studyFk: string;
  @ManyToOne(() => StudyEntity) @JoinColumn({ name: 'study_fk' }) study?: Relation<StudyEntity>;
  @Column({ name: 'series_iuid', type: 'text' }) seriesIuid: string;
  @Column({ type: 'text' }) modality: string;
  @Column({ name: 'series_number', type: 'integer', nullable: true }) seriesNumber: number | null;
  @Column({ name: 'series_description', type: 'text' }) seriesDescription: string;
  @Column({ name: 'body_part', type: 'text' }) bodyPart: string;
  @Column({ name: 'institution_name', type: 'text' }) institutionName: string;
  @Column({ name: 'station_name', type: 'text' }) stationName: string;
  @Column({ name: 'performed_start_date', type: 'text' }) performedStartDate: string;
  @Column({ name: 'performed_start_time', type: 'text' }) performedStartTime: string;
  @Column({ name: 'num_instances', type: 'integer' }) numInstances: number;
  @Column({ name: 'size_bytes', type: 'bigint' }) sizeBytes: string;
  @Column({ type: 'jsonb' }) attrs: Record<string, unknown>;
}

export enum InstanceStatus {
  /** Durable in storage and recorded; waiting for the indexer. */
  Received = 'RECEIVED',
  /** Linked to patient/study/series; visible to queries. */
  Indexed = 'INDEXED',
}

@Entity({ name: 'instance' })
export class InstanceEntity {
  @PrimaryGeneratedColumn({ type: 'bigint' }) id: string;
  @Column({ name: 'sop_iuid', type: 'text' }) sopIuid: string;
  @Column({ name: 'sop_class_uid', type: 'text' }) sopClassUid: string;
  @Column({ name: 'study_iuid', type: 'text' }) studyIuid: string;
  @Column({ name: 'series_iuid', type: 'text' }) seriesIuid: string;
  @Column({ name: 'series_fk', type: 'bigint', nullable: true }) seriesFk: string | null;
  @Column({ type: 'text' }) status: InstanceStatus;
  @Column({ type: 'integer' }) version: number;
  @Column({ name: 'transfer_syntax_uid', type: 'text' }) transferSyntaxUid: string;
  @Column({ name: 'instance_number', type: 'integer', nullable: true }) instanceNumber: number | null;
  @Column({ name: 'num_frames', type: 'integer', nullable: true }) numFrames: number | null;
  @Column({ name: 'size_bytes', type: 'bigint' }) sizeBytes: string;
  @Column({ type: 'text' }) sha256: string;
  @Column({ name: 'source_ae', type: 'text' }) sourceAe: string;
  @Column({ type: 'jsonb' }) metadata: Record<string, unknown>;
  @Column({ name: 'received_at', type: 'timestamptz' }) receivedAt: Date;
  @Column({ name: 'indexed_at', type: 'timestamptz', nullable: true }) indexedAt: Date | null;
}

export enum LocationStatus {
  Ok = 'OK',
  /** An older version, kept after a re-send with different bytes (audit trail). */
  Replaced = 'REPLACED',
  Missing = 'MISSING',
  Corrupt = 'CORRUPT',
  /** A restore's copy being written (key planned; never read); cleaned up if its restore crashed. */
  Restoring = 'RESTORING',
  /** A verified copy restored from an offline tier, read instead of it until `expires_at`. */
  Restored = 'RESTORED',
}

/** One row per stored object (dcm4chee's Location): storage id, key, size, digest, status. */
@Entity({ name: 'location' })
export class LocationEntity {
  @PrimaryGeneratedColumn({ type: 'bigint' }) id: string;
  @Column({ name: 'instance_fk', type: 'bigint' }) instanceFk: string;
  @Column({ name: 'storage_id', type: 'text' }) storageId: string;
  @Column({ name: 'object_key', type: 'text' }) objectKey: string;
  @Column({ name: 'size_bytes', type: 'bigint' }) sizeBytes: string;
  @Column({ type: 'text' }) sha256: string;
  /** XXH64 of the same bytes (16 hex digits), what reads are checked against; null on copies recorded before it. */
  @Column({ type: 'text', nullable: true }) xxh64: string | null;
  @Column({ name: 'transfer_syntax_uid', type: 'text' }) transferSyntaxUid: string;
  @Column({ type: 'integer' }) version: number;
  @Column({ type: 'text' }) status: LocationStatus;
  /** RESTORING/RESTORED copies only: when the restored copy stops being read and is swept. */
  @Column({ name: 'expires_at', type: 'timestamptz', nullable: true }) expiresAt: Date | null;
  @Column({ name: 'created_at', type: 'timestamptz' }) createdAt: Date;
  @Column({ name: 'updated_at', type: 'timestamptz' }) updatedAt: Date;
}

@Entity({ name: 'audit_event' })
export class AuditEventEntity {
  @PrimaryGeneratedColumn({ type: 'bigint' }) id: string;
  @Column({ type: 'timestamptz' }) at: Date;
  @Column({ type: 'text' }) type: string;
  @Column({ name: 'study_iuid', type: 'text', nullable: true }) studyIuid: string | null;
  @Column({ name: 'sop_iuid', type: 'text', nullable: true }) sopIuid: string | null;
  @Column({ type: 'text' }) actor: string;
  @Column({ type: 'jsonb' }) detail: Record<string, unknown>;
}

export const CATALOG_ENTITIES = [
  PatientEntity,
  StudyEntity,
  SeriesEntity,
  InstanceEntity,
  LocationEntity,
  AuditEventEntity,
  ApplicationEntityEntity,
  ...RETENTION_ENTITIES,
  StudyMoveEntity,
  StudyMoveItemEntity,
  LifecyclePolicyEntity,
  MigrationJobEntity,
  MigrationStudyEntity,
  MigrationInstanceEntity,
];
