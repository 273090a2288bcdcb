import { Injectable } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import type { DataSource, EntityManager } from 'typeorm';
import { InstanceStatus, LocationStatus } from './entities/index.js';

export interface ReceivedObject {
  sopIuid: string;
  sopClassUid: string;
  studyIuid: string;
  seriesIuid: string;
  transferSyntaxUid: string;
  sizeBytes: number;
  sha256: string;
  /** XXH64 of the stored bytes (the check value reads verify). */
  xxh64: string;
  sourceAe: string;
  metadata: Record<string, unknown>;
  instanceNumber: number | null;
  numFrames: number | null;
  storageId: string;
  objectKey: string;
}

export type RecordOutcome =
  | { kind: 'created'; instanceId: string; version: number }
  | { kind: 'replaced'; instanceId: string; version: number; previousSha256: string }
  /** Same UID, same bytes: nothing recorded; the caller deletes its copy. */
  | { kind: 'identical'; instanceId: string }
  /** Same UID under another study: refused. */
  | { kind: 'study-conflict'; instanceId: string; existingStudyIuid: string };

/** The instance and location tables: what ingest records and the indexer links. */
@Injectable()
export class InstanceRepository {
  constructor(@InjectDataSource() private readonly db: DataSource) {}

  /**
   * Record a durable object in one transaction: a new instance, or a new version of an existing
   * one (the previous location is kept as REPLACED and an audit event written). Concurrent
   * stores of the same SOP Instance UID serialize on the row lock.
   */
  async recordReceived(obj: ReceivedObject, version: number): Promise<RecordOutcome> {
    // Fast path, one round trip: a first-time instance and its location in one atomic statement.
    const created: Array<{ id: string }> = await this.db.query(
      `WITH ins AS (
         INSERT INTO instance (sop_iuid, sop_class_uid, study_iuid, series_iuid, status, version, transfer_syntax_uid,
           instance_number, num_frames, size_bytes, sha256, source_ae, metadata)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)
         ON CONFLICT (sop_iuid) DO NOTHING RETURNING id)
       INSERT INTO location (instance_fk, storage_id, object_key, size_bytes, sha256, xxh64, transfer_syntax_uid, version, status)
       SELECT id, $14, $15, $10, $11, $17, $7, $6, $16 FROM ins RETURNING instance_fk AS id`,
      [obj.sopIuid, obj.sopClassUid, obj.studyIuid, obj.seriesIuid, InstanceStatus.Received, version,
        obj.transferSyntaxUid, obj.instanceNumber, obj.numFrames, obj.sizeBytes, obj.sha256, obj.sourceAe, obj.metadata,
        obj.storageId, obj.objectKey, LocationStatus.Ok, obj.xxh64],
    );
    if (created[0]) return { kind: 'created', instanceId: created[0].id, version };
    // The UID exists: decide under its row lock (identical, conflict, or a new version).
    for (let attempt = 0; ; attempt++) {
      try {
        return await this.db.transaction((tx) => this.recordIn(tx, obj, version));
      } catch (e) {
        // Two first-time stores of one UID raced on the unique index: retry sees the winner's row.
        if (attempt < 2 && (e as { code?: string }).code === '23505') continue;
        throw e;
      }
    }
  }

  private async recordIn(tx: EntityManager, obj: ReceivedObject, version: number): Promise<RecordOutcome> {
    const existing: Array<{ id: string; study_iuid: string; sha256: string; version: number }> = await tx.query(
      'SELECT id, study_iuid, sha256, version FROM instance WHERE sop_iuid = $1 FOR UPDATE',
      [obj.sopIuid],
    );
    const cur = existing[0];
    if (cur) {
      if (cur.study_iuid !== obj.studyIuid) {
        return { kind: 'study-conflict', instanceId: cur.id, existingStudyIuid: cur.study_iuid };
      }
      if (cur.sha256 === obj.sha256) return { kind: 'identical', instanceId: cur.id };
      const newVersion = Math.max(cur.version + 1, version);
      await tx.query(
        `UPDATE instance SET sop_class_uid = $2, series_iuid = $3, status = $4, version = $5,
           transfer_syntax_uid = $6, instance_number = $7, num_frames = $8, size_bytes = $9, sha256 = $10,
           source_ae = $11, metadata = $12, received_at = now(), indexed_at = NULL
         WHERE id = $1`,
        [cur.id, obj.sopClassUid, obj.seriesIuid, InstanceStatus.Received, newVersion, obj.transferSyntaxUid,
          obj.instanceNumber, obj.numFrames, obj.sizeBytes, obj.sha256, obj.sourceAe, obj.metadata],
      );
      await tx.query(
        `UPDATE location SET status = $2, updated_at = now() WHERE instance_fk = $1 AND status = $3`,
        [cur.id, LocationStatus.Replaced, LocationStatus.Ok],
      );
      await this.insertLocation(tx, cur.id, obj, newVersion);
      await tx.query(
        `INSERT INTO audit_event (type, study_iuid, sop_iuid, actor, detail) VALUES ('INSTANCE_REPLACED', $1, $2, $3, $4)`,
        [obj.studyIuid, obj.sopIuid, obj.sourceAe,
          { previousVersion: cur.version, previousSha256: cur.sha256, version: newVersion, sha256: obj.sha256 }],
      );
      return { kind: 'replaced', instanceId: cur.id, version: newVersion, previousSha256: cur.sha256 };
    }
    const inserted: Array<{ id: string }> = await tx.query(
      `INSERT INTO instance (sop_iuid, sop_class_uid, study_iuid, series_iuid, status, version, transfer_syntax_uid,
         instance_number, num_frames, size_bytes, sha256, source_ae, metadata)
       VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13) RETURNING id`,
      [obj.sopIuid, obj.sopClassUid, obj.studyIuid, obj.seriesIuid, InstanceStatus.Received, version,
        obj.transferSyntaxUid, obj.instanceNumber, obj.numFrames, obj.sizeBytes, obj.sha256, obj.sourceAe, obj.metadata],
    );
    const id = inserted[0]!.id;
    await this.insertLocation(tx, id, obj, version);
    return { kind: 'created', instanceId: id, version };
  }

  private async insertLocation(tx: EntityManager, instanceId: string, obj: ReceivedObject, version: number) {
    await tx.query(
      `INSERT INTO location (instance_fk, storage_id, object_key, size_bytes, sha256, xxh64, transfer_syntax_uid, version, status)
       VALUES ($1, $2, $3, $4, $5, $9, $6, $7, $8)`,
      [instanceId, obj.storageId, obj.objectKey, obj.sizeBytes, obj.sha256, obj.transferSyntaxUid, version, LocationStatus.Ok, obj.xxh64],
    );
  }

  async countByStatus(): Promise<Record<string, number>> {
    const rows: Array<{ status: string; n: string }> = await this.db.query(
      'SELECT status, count(*) AS n FROM instance GROUP BY status',
    );
    return Object.fromEntries(rows.map((r) => [r.status, Number(r.n)]));
  }
}
