import { LocationStatus } from '#vna/catalog';
import { Injectable } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import type { DataSource } from 'typeorm';
import { type CurrentCopy, toCurrentCopy } from './move.repository.js';

export enum StudyRestoreState {
  Scheduled = 'SCHEDULED',
  InProcess = 'IN_PROCESS',
  Completed = 'COMPLETED',
  Failed = 'FAILED',
}

/** Restore states with work left (at most one per study: partial unique index). */
export const ACTIVE_RESTORE_STATES = [StudyRestoreState.Scheduled, StudyRestoreState.InProcess] as const;

export interface RestoreRow {
  id: string;
  studyIuid: string;
  state: StudyRestoreState;
  requestedBy: string;
  sourceTiers: string[];
  instancesTotal: number;
  instancesRestored: number;
  bytesTotal: number;
  bytesRestored: number;
  attempts: number;
  error: string | null;
  createdAt: Date;
  startedAt: Date | null;
  updatedAt: Date;
  completedAt: Date | null;
  /** The RestoreObject stage of copies on archive-class (GLACIER, DEEP_ARCHIVE) tiers; null when there is none. */
  archive: ArchiveStage | null;
}

/** Where the S3 RestoreObject stage of a restore stands (study_restore.archive_*). */
export interface ArchiveStage {
  /** When every object's restore request had been sent. */
  requestedAt: Date;
  /** When the objects are polled (HEAD) next; null once all were readable. */
  nextPollAt: Date | null;
  polls: number;
  /** Objects not yet readable at the last poll (all of them before the first). */
  waiting: number;
}

const RESTORE_COLUMNS = `id, study_iuid, state, requested_by, source_tiers, instances_total, instances_restored, bytes_total::text AS bytes_total,
  bytes_restored::text AS bytes_restored, attempts, error, created_at, started_at, updated_at, completed_at,
  archive_requested_at, archive_next_poll_at, archive_polls, archive_waiting`;

function toRestore(r: Record<string, unknown>): RestoreRow {
  return {
    id: String(r.id),
    studyIuid: String(r.study_iuid),
    state: r.state as StudyRestoreState,
    requestedBy: String(r.requested_by),
    sourceTiers: r.source_tiers as string[],
    instancesTotal: Number(r.instances_total),
    instancesRestored: Number(r.instances_restored),
    bytesTotal: Number(r.bytes_total),
    bytesRestored: Number(r.bytes_restored),
    attempts: Number(r.attempts),
    error: (r.error as string | null) ?? null,
    createdAt: r.created_at as Date,
    startedAt: (r.started_at as Date | null) ?? null,
    updatedAt: r.updated_at as Date,
    completedAt: (r.completed_at as Date | null) ?? null,
    archive: r.archive_requested_at
      ? {
          requestedAt: r.archive_requested_at as Date,
          nextPollAt: (r.archive_next_poll_at as Date | null) ?? null,
          polls: Number(r.archive_polls),
          waiting: Number(r.archive_waiting),
        }
      : null,
  };
}

/** An instance whose current copy is on an offline tier and has no usable restored copy. */
export interface OfflineCopy extends CurrentCopy {
  transferSyntaxUid: string;
  version: number;
}

/** A restored (or half-written) copy, as the sweeper and the restore job see it. */
export interface RestoredCopy {
  id: string;
  storageId: string;
  objectKey: string;
}


/** The study_restore journal and restored location rows. Only this class touches them. */
@Injectable()
export class RestoreRepository {
  constructor(@InjectDataSource() private readonly db: DataSource) {}

  async studyExists(studyIuid: string): Promise<boolean> {
    const rows: unknown[] = await this.db.query(`SELECT 1 FROM instance WHERE study_iuid = $1 LIMIT 1`, [studyIuid]);
    return rows.length > 0;
  }

  /** Journal a restore, or return the study's unfinished one (`created: false`). */
  async schedule(studyIuid: string, requestedBy: string): Promise<{ restore: RestoreRow; created: boolean }> {
    for (;;) {
      const inserted: Array<Record<string, unknown>> = await this.db.query(
        `INSERT INTO study_restore (study_iuid, requested_by) VALUES ($1, $2)
         ON CONFLICT (study_iuid) WHERE state IN ('SCHEDULED', 'IN_PROCESS') DO NOTHING
         RETURNING ${RESTORE_COLUMNS}`,
        [studyIuid, requestedBy],
      );
      if (inserted[0]) return { restore: toRestore(inserted[0]), created: true };
      const existing: Array<Record<string, unknown>> = await this.db.query(
        `SELECT ${RESTORE_COLUMNS} FROM study_restore WHERE study_iuid = $1 AND state = ANY($2::text[])`,
        [studyIuid, ACTIVE_RESTORE_STATES],
      );
      if (existing[0]) return { restore: toRestore(existing[0]), created: false };
      // finished between the two statements: journal a new one
    }
  }

  async get(id: string): Promise<RestoreRow | undefined> {
    const rows: Array<Record<string, unknown>> = await this.db.query(`SELECT ${RESTORE_COLUMNS} FROM study_restore WHERE id = $1`, [id]);
    return rows[0] ? toRestore(rows[0]) : undefined;
  }

  /** The newest restore of each study (any state). */
  async latestForStudies(studyIuids: string[]): Promise<Map<string, RestoreRow>> {
    const rows: Array<Record<string, unknown>> = await this.db.query(
      `SELECT DISTINCT ON (study_iuid) ${RESTORE_COLUMNS} FROM study_restore WHERE study_iuid = ANY($1::text[]) ORDER BY study_iuid, id DESC`,
      [studyIuids],
    );
    return new Map(rows.map((r) => [String(r.study_iuid), toRestore(r)]));
  }

  async unfinishedForStudy(studyIuid: string): Promise<RestoreRow[]> {
    const rows: Array<Record<string, unknown>> = await this.db.query(
      `SELECT ${RESTORE_COLUMNS} FROM study_restore WHERE study_iuid = $1 AND state = ANY($2::text[]) ORDER BY id`,
      [studyIuid, ACTIVE_RESTORE_STATES],
    );
    return rows.map(toRestore);
  }

  /** Studies with an unfinished restore (the reconciler enqueues them). */
  async studiesWithWork(): Promise<string[]> {
    const rows: Array<{ study_iuid: string }> = await this.db.query(
      `SELECT DISTINCT study_iuid FROM study_restore WHERE state = ANY($1::text[])`,
      [ACTIVE_RESTORE_STATES],
    );
    return rows.map((r) => r.study_iuid);
  }

  /** IN_PROCESS and one more attempt; returns the attempt count. */
  async begin(id: string): Promise<number> {
    const [rows]: [Array<{ attempts: number }>, number] = await this.db.query(
      `UPDATE study_restore SET state = 'IN_PROCESS', attempts = attempts + 1, started_at = coalesce(started_at, now()), updated_at = now()
        WHERE id = $1 AND state = ANY($2::text[]) RETURNING attempts`,
      [id, ACTIVE_RESTORE_STATES],
    );
    return rows[0]?.attempts ?? 0;
  }

  /** IN_PROCESS without using an attempt (the archive stage: a poll is not an attempt). False if the restore is over. */
  async markInProcess(id: string): Promise<boolean> {
    const [, n]: [unknown, number] = await this.db.query(
      `UPDATE study_restore SET state = 'IN_PROCESS', started_at = coalesce(started_at, now()), updated_at = now()
        WHERE id = $1 AND state = ANY($2::text[])`,
      [id, ACTIVE_RESTORE_STATES],
    );
    return n > 0;
  }

  /** A failed step of the archive stage counts as an attempt; returns the attempt count. */
  async noteFailedAttempt(id: string, error: string): Promise<number> {
    const [rows]: [Array<{ attempts: number }>, number] = await this.db.query(
      `UPDATE study_restore SET attempts = attempts + 1, error = $2, updated_at = now() WHERE id = $1 RETURNING attempts`,
      [id, error],
    );
    return rows[0]?.attempts ?? 0;
  }

  /** Every restore request was sent: the first poll is due at `nextPollAt`. */
  async noteArchiveRequested(id: string, nextPollAt: Date, waiting: number): Promise<void> {
    await this.db.query(
      `UPDATE study_restore SET archive_requested_at = now(), archive_next_poll_at = $2, archive_polls = 0, archive_waiting = $3, updated_at = now()
        WHERE id = $1`,
      [id, nextPollAt, waiting],
    );
  }

  /** One poll done: `waiting` objects not readable yet, next poll at `nextPollAt` (null: all readable). */
  async noteArchivePoll(id: string, nextPollAt: Date | null, waiting: number): Promise<void> {
    await this.db.query(
      `UPDATE study_restore SET archive_next_poll_at = $2, archive_polls = archive_polls + 1, archive_waiting = $3, updated_at = now() WHERE id = $1`,
      [id, nextPollAt, waiting],
    );
  }

  async setPlan(id: string, plan: { sourceTiers: string[]; instancesTotal: number; bytesTotal: number }): Promise<void> {
    await this.db.query(
      `UPDATE study_restore SET source_tiers = $2, instances_total = $3, bytes_total = $4, instances_restored = 0, bytes_restored = 0, updated_at = now()
        WHERE id = $1`,
      [id, plan.sourceTiers, plan.instancesTotal, plan.bytesTotal],
    );
  }

  async noteRestored(id: string, bytes: number): Promise<void> {
    await this.db.query(
      `UPDATE study_restore SET instances_restored = instances_restored + 1, bytes_restored = bytes_restored + $2, updated_at = now() WHERE id = $1`,
      [id, bytes],
    );
  }

  async noteError(id: string, error: string): Promise<void> {
    await this.db.query(`UPDATE study_restore SET error = $2, updated_at = now() WHERE id = $1`, [id, error]);
  }

  async finish(id: string, state: StudyRestoreState.Completed | StudyRestoreState.Failed, error: string | null): Promise<void> {
    await this.db.query(
      `UPDATE study_restore SET state = $2, error = coalesce($3, error), completed_at = now(), updated_at = now()
        WHERE id = $1 AND state = ANY($4::text[])`,
      [id, state, error, ACTIVE_RESTORE_STATES],
    );
  }

  async studyIsActive(studyIuid: string): Promise<boolean> {
    const rows: Array<{ retention_state: string }> = await this.db.query(`SELECT retention_state FROM study WHERE study_iuid = $1`, [studyIuid]);
    return rows[0]?.retention_state === 'ACTIVE';
  }

  /**
   * Instances of the study whose current copy (newest OK location) is on one of `offlineTiers` and
   * has no restored copy of that version that retrieval still reads (more than `marginMs` left).
   */
  async offlineCopies(studyIuid: string, offlineTiers: string[], marginMs: number): Promise<OfflineCopy[]> {
    const rows: Array<Record<string, unknown>> = await this.db.query(
      `SELECT i.id, i.sop_iuid, i.series_iuid, i.study_iuid,
              l.id AS loc_id, l.storage_id, l.object_key, l.size_bytes, l.sha256, l.transfer_syntax_uid, l.version
         FROM instance i
         JOIN LATERAL (
           SELECT id, storage_id, object_key, size_bytes, sha256, transfer_syntax_uid, version FROM location
            WHERE instance_fk = i.id AND status = '${LocationStatus.Ok}' ORDER BY version DESC, id DESC LIMIT 1
         ) l ON true
        WHERE i.study_iuid = $1 AND l.storage_id = ANY($2::text[])
          AND NOT EXISTS (SELECT 1 FROM location r WHERE r.instance_fk = i.id AND r.status = '${LocationStatus.Restored}'
                           AND r.version = l.version AND r.expires_at > now() + $3 * interval '1 millisecond')
        ORDER BY i.id`,
      [studyIuid, offlineTiers, marginMs],
    );
    return rows.map((r) => ({
      ...toCurrentCopy(r),
      transferSyntaxUid: String(r.transfer_syntax_uid),
      version: Number(r.version),
    }));
  }

  /** RESTORING rows of a study: copies a crashed run may have left half-done. */
  async restoringOf(studyIuid: string): Promise<RestoredCopy[]> {
    const rows: Array<{ id: string; storage_id: string; object_key: string }> = await this.db.query(
      `SELECT l.id, l.storage_id, l.object_key FROM location l JOIN instance i ON i.id = l.instance_fk
        WHERE i.study_iuid = $1 AND l.status = '${LocationStatus.Restoring}'`,
      [studyIuid],
    );
    return rows.map((r) => ({ id: String(r.id), storageId: r.storage_id, objectKey: r.object_key }));
  }

  /** Plans a restored copy (RESTORING: never read) before its object is written. */
  async addRestoring(copy: OfflineCopy, storageId: string, objectKey: string, keepMs: number): Promise<string> {
    const rows: Array<{ id: string }> = await this.db.query(
      // The restored copy is verified against the offline copy's SHA-256, so its check value is the offline copy's.
      `INSERT INTO location (instance_fk, storage_id, object_key, size_bytes, sha256, xxh64, transfer_syntax_uid, version, status, expires_at)
       VALUES ($1, $2, $3, $4, $5, (SELECT xxh64 FROM location WHERE id = $9 AND sha256 = $5), $6, $7, '${LocationStatus.Restoring}',
               now() + $8 * interval '1 millisecond') RETURNING id`,
      [copy.instanceId, storageId, objectKey, copy.sizeBytes, copy.sha256, copy.transferSyntaxUid, copy.version, keepMs, copy.locationId],
    );
    return String(rows[0]!.id);
  }

  /** The copy is committed and verified: retrieval reads it from now until its expiry (counted from now). */
  async markRestored(locationId: string, keepMs: number): Promise<boolean> {
    const [, n]: [unknown, number] = await this.db.query(
      `UPDATE location SET status = '${LocationStatus.Restored}', expires_at = now() + $2 * interval '1 millisecond', updated_at = now()
        WHERE id = $1 AND status = '${LocationStatus.Restoring}'`,
      [locationId, keepMs],
    );
    return n > 0;
  }

  /** Deletes a restored copy's row only if it is still expired past the grace (one statement: no race with markRestored). */
  async deleteIfExpired(locationId: string, graceMs: number): Promise<boolean> {
    const [, n]: [unknown, number] = await this.db.query(
      `DELETE FROM location WHERE id = $1 AND status IN ('${LocationStatus.Restoring}', '${LocationStatus.Restored}')
          AND expires_at < now() - $2 * interval '1 millisecond'`,
      [locationId, graceMs],
    );
    return n > 0;
  }

  async deleteRow(locationId: string): Promise<void> {
    await this.db.query(`DELETE FROM location WHERE id = $1 AND status IN ('${LocationStatus.Restoring}', '${LocationStatus.Restored}')`, [
      locationId,
    ]);
  }

  /**
   * Restored copies expired more than `graceMs` ago (retrieval stopped choosing them 5 s before
   * their expiry, so no reader still holds them), and RESTORING rows whose restore is long over.
   */
  async expired(graceMs: number, limit: number): Promise<RestoredCopy[]> {
    const rows: Array<{ id: string; storage_id: string; object_key: string }> = await this.db.query(
      `SELECT id, storage_id, object_key FROM location
        WHERE status IN ('${LocationStatus.Restoring}', '${LocationStatus.Restored}') AND expires_at < now() - $1 * interval '1 millisecond'
        ORDER BY expires_at LIMIT $2`,
      [graceMs, limit],
    );
    return rows.map((r) => ({ id: String(r.id), storageId: r.storage_id, objectKey: r.object_key }));
  }

  /** How many other location rows name this object (a restored key is never shared; defence in depth). */
  async otherReferences(locationId: string, storageId: string, objectKey: string): Promise<number> {
    const rows: Array<{ n: number }> = await this.db.query(
      `SELECT count(*)::int AS n FROM location WHERE storage_id = $1 AND object_key = $2 AND id <> $3`,
      [storageId, objectKey, locationId],
    );
    return rows[0]?.n ?? 0;
  }
}
