import { Column, Entity, PrimaryGeneratedColumn } from 'typeorm';

/** Journal states of a study move (dcm4chee task vocabulary). */
export enum StudyMoveState {
  /** Journaled, waiting for the tiering worker. */
  Scheduled = 'SCHEDULED',
  /** Copies are being written to the target tier and verified; the source locations stay OK. */
  Copying = 'COPYING',
  /** The location rows point at the verified copies (one transaction); source objects being deleted. */
  Switched = 'SWITCHED',
  Completed = 'COMPLETED',
  /** Stopped before the switch (digest/size mismatch, too many attempts); target copies revoked, sources kept. */
  Failed = 'FAILED',
  /** Given up because it cannot apply any more (e.g. the target tier is no longer configured). */
  Aborted = 'ABORTED',
}

/** Per-instance bookkeeping of a move. */
export enum StudyMoveItemState {
  /** Target key planned; an object may or may not exist there. */
  Pending = 'PENDING',
  /** The copy at the target was read back and matches size and SHA-256. */
  Copied = 'COPIED',
  /** The target location is the instance's OK location now; the source object is still to delete. */
  Switched = 'SWITCHED',
  /** The source location changed meanwhile (re-sent, marked unreadable): the copy is to delete. */
  Stale = 'STALE',
  /** Source object deleted. */
  Done = 'DONE',
  /** Target copy deleted (move failed, or stale). */
  Revoked = 'REVOKED',
}

@Entity({ name: 'study_move' })
export class StudyMoveEntity {
  @PrimaryGeneratedColumn({ type: 'bigint' }) id: string;
  @Column({ name: 'study_iuid', type: 'text' }) studyIuid: string;
  @Column({ name: 'source_tiers', type: 'text', array: true }) sourceTiers: string[];
  @Column({ name: 'target_tier', type: 'text' }) targetTier: string;
  @Column({ type: 'text' }) state: StudyMoveState;
  @Column({ type: 'text', nullable: true }) error: string | null;
  @Column({ name: 'requested_by', type: 'text' }) requestedBy: string;
  @Column({ name: 'instances_total', type: 'integer' }) instancesTotal: number;
  @Column({ name: 'instances_moved', type: 'integer' }) instancesMoved: number;
  @Column({ name: 'bytes_total', type: 'bigint' }) bytesTotal: string;
  @Column({ name: 'bytes_moved', type: 'bigint' }) bytesMoved: string;
  @Column({ type: 'integer' }) attempts: number;
  @Column({ name: 'created_at', type: 'timestamptz' }) createdAt: Date;
  @Column({ name: 'updated_at', type: 'timestamptz' }) updatedAt: Date;
  @Column({ name: 'started_at', type: 'timestamptz', nullable: true }) startedAt: Date | null;
  @Column({ name: 'switched_at', type: 'timestamptz', nullable: true }) switchedAt: Date | null;
  @Column({ name: 'completed_at', type: 'timestamptz', nullable: true }) completedAt: Date | null;
}

@Entity({ name: 'study_move_item' })
export class StudyMoveItemEntity {
  @PrimaryGeneratedColumn({ type: 'bigint' }) id: string;
  @Column({ name: 'move_fk', type: 'bigint' }) moveFk: string;
  @Column({ name: 'instance_fk', type: 'bigint' }) instanceFk: string;
  @Column({ name: 'source_location_fk', type: 'bigint' }) sourceLocationFk: string;
  @Column({ name: 'source_storage_id', type: 'text' }) sourceStorageId: string;
  @Column({ name: 'source_key', type: 'text' }) sourceKey: string;
  @Column({ name: 'target_storage_id', type: 'text' }) targetStorageId: string;
  @Column({ name: 'target_key', type: 'text' }) targetKey: string;
  @Column({ name: 'size_bytes', type: 'bigint' }) sizeBytes: string;
  @Column({ type: 'text' }) sha256: string;
  @Column({ type: 'text' }) state: StudyMoveItemState;
  @Column({ name: 'updated_at', type: 'timestamptz' }) updatedAt: Date;
}
