import { LocationStatus, StudyMoveItemState, StudyMoveState } from '#vna/catalog';
import { Injectable } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import { TieringError, TieringErrorCode } from './tiering.errors.js';
import type { DataSource } from 'typeorm';

/** Rows per statement when many items are planned at once. */
const ITEM_BATCH = 1000;

/** Move states in which the move still has work to do (at most one per study). */
export const ACTIVE_MOVE_STATES = [StudyMoveState.Scheduled, StudyMoveState.Copying, StudyMoveState.Switched] as const;
/** Item states whose target object is not referenced by any location and must be deleted on failure. */
const UNREFERENCED_TARGET_STATES = [StudyMoveItemState.Pending, StudyMoveItemState.Copied, StudyMoveItemState.Stale];

export interface MoveRow {
  id: string;
  studyIuid: string;
  sourceTiers: string[];
  targetTier: string;
  state: StudyMoveState;
  error: string | null;
  requestedBy: string;
  instancesTotal: number;
  instancesMoved: number;
  bytesTotal: number;
  bytesMoved: number;
  attempts: number;
  createdAt: Date;
  updatedAt: Date;
  startedAt: Date | null;
  switchedAt: Date | null;
  completedAt: Date | null;
}

export interface MoveItemRow {
  id: string;
  instanceFk: string;
  sourceLocationFk: string;
  sourceStorageId: string;
  sourceKey: string;
  targetStorageId: string;
  targetKey: string;
  sizeBytes: number;
  sha256: string;
  state: StudyMoveItemState;
}

/** An instance's current (newest OK) copy, as a move sees it. */
export interface CurrentCopy {
  instanceId: string;
  sopIuid: string;
  seriesIuid: string;
  studyIuid: string;
  locationId: string;
  storageId: string;
  objectKey: string;
  sizeBytes: number;
  sha256: string;
}

/** A row of `instance` joined with its chosen location (`loc_id`, ...) -> CurrentCopy. */
export function toCurrentCopy(r: Record<string, unknown>): CurrentCopy {
  return {
    instanceId: String(r.id),
    sopIuid: String(r.sop_iuid),
    seriesIuid: String(r.series_iuid),
    studyIuid: String(r.study_iuid),
    locationId: String(r.loc_id),
    storageId: String(r.storage_id),
    objectKey: String(r.object_key),
    sizeBytes: Number(r.size_bytes),
    sha256: String(r.sha256),
  };
}

export interface TierUsage {
  storageId: string;
  studies: number;
  instances: number;
  bytes: number;
}

export interface StudyLocationRow {
  sopIuid: string;
  seriesIuid: string;
  instanceStatus: string;
  location: {
    id: string;
    storageId: string;
    objectKey: string;
    sizeBytes: number;
    sha256: string;
    status: LocationStatus;
    version: number;
    /** Restored copies only. */
    expiresAt?: Date | null;
  } | null;
}

const MOVE_COLUMNS = `id, study_iuid, source_tiers, target_tier, state, error, requested_by, instances_total, instances_moved,
  bytes_total, bytes_moved, attempts, created_at, updated_at, started_at, switched_at, completed_at`;

function toMove(r: Record<string, unknown>): MoveRow {
  return {
    id: String(r.id),
    studyIuid: String(r.study_iuid),
    sourceTiers: r.source_tiers as string[],
    targetTier: String(r.target_tier),
    state: r.state as StudyMoveState,
    error: (r.error as string | null) ?? null,
    requestedBy: String(r.requested_by),
    instancesTotal: Number(r.instances_total),
    instancesMoved: Number(r.instances_moved),
    bytesTotal: Number(r.bytes_total),
    bytesMoved: Number(r.bytes_moved),
    attempts: Number(r.attempts),
    createdAt: r.created_at as Date,
    updatedAt: r.updated_at as Date,
    startedAt: (r.started_at as Date | null) ?? null,
    switchedAt: (r.switched_at as Date | null) ?? null,
    completedAt: (r.completed_at as Date | null) ?? null,
  };
}

function toItem(r: Record<string, unknown>): MoveItemRow {
  return {
    id: String(r.id),
    instanceFk: String(r.instance_fk),
    sourceLocationFk: String(r.source_location_fk),
    sourceStorageId: String(r.source_storage_id),
    sourceKey: String(r.source_key),
    targetStorageId: String(r.target_storage_id),
    targetKey: String(r.target_key),
    sizeBytes: Number(r.size_bytes),
    sha256: String(r.sha256),
    state: r.state as StudyMoveItemState,
  };
}

/** The study_move journal, its items, and the location switch. Only this class touches those tables. */
@Injectable()
export class MoveRepository {
  constructor(@InjectDataSource() private readonly db: DataSource) {}

  async studyExists(studyIuid: string): Promise<boolean> {
    const rows: unknown[] = await this.db.query(`SELECT 1 FROM instance WHERE study_iuid = $1 LIMIT 1`, [studyIuid]);
    return rows.length > 0;
  }

  /**
   * Journal a move, or return the study's unfinished one (`created: false`) — a study has at most
   * one unfinished move (partial unique index).
   */
  async schedule(studyIuid: string, targetTier: string, requestedBy: string): Promise<{ move: MoveRow; created: boolean }> {
    // Under a share lock of the study row: a retention purge starts a study (row lock, PURGING)
    // only when it has no unfinished move, so a purge and a move of one study never overlap.
    const inserted: Array<Record<string, unknown>> = await this.db.transaction(async (tx) => {
      const study: Array<{ retention_state: string }> = await tx.query(
        `SELECT retention_state FROM study WHERE study_iuid = $1 FOR SHARE`,
        [studyIuid],
      );
      if (study[0] && study[0].retention_state !== 'ACTIVE') {
        throw new TieringError(TieringErrorCode.StudyPurging, `study ${studyIuid} is being purged by retention; it is not moved`);
      }
      return tx.query(
        `INSERT INTO study_move (study_iuid, target_tier, requested_by) VALUES ($1, $2, $3)
         ON CONFLICT (study_iuid) WHERE state IN ('SCHEDULED', 'COPYING', 'SWITCHED') DO NOTHING
         RETURNING ${MOVE_COLUMNS}`,
        [studyIuid, targetTier, requestedBy],
      );
    });
    if (inserted[0]) return { move: toMove(inserted[0]), created: true };
    const existing: Array<Record<string, unknown>> = await this.db.query(
      `SELECT ${MOVE_COLUMNS} FROM study_move WHERE study_iuid = $1 AND state = ANY($2::text[])`,
      [studyIuid, ACTIVE_MOVE_STATES],
    );
    if (!existing[0]) return this.schedule(studyIuid, targetTier, requestedBy); // finished meanwhile
    return { move: toMove(existing[0]), created: false };
  }

  async get(id: string): Promise<MoveRow | undefined> {
    const rows: Array<Record<string, unknown>> = await this.db.query(`SELECT ${MOVE_COLUMNS} FROM study_move WHERE id = $1`, [id]);
    return rows[0] ? toMove(rows[0]) : undefined;
  }

  /** Moves of a study with work left: unfinished ones, and failed ones whose target copies are not all deleted. */
  async unfinishedForStudy(studyIuid: string): Promise<MoveRow[]> {
    const rows: Array<Record<string, unknown>> = await this.db.query(
      `SELECT ${MOVE_COLUMNS} FROM study_move m
        WHERE m.study_iuid = $1 AND (m.state = ANY($2::text[])
           OR EXISTS (SELECT 1 FROM study_move_item it WHERE it.move_fk = m.id AND it.state = ANY($3::text[])))
        ORDER BY m.id`,
      [studyIuid, ACTIVE_MOVE_STATES, UNREFERENCED_TARGET_STATES],
    );
    return rows.map(toMove);
  }

  /** Studies the reconciler must (re-)enqueue. */
  async studiesWithWork(): Promise<string[]> {
    const rows: Array<{ study_iuid: string }> = await this.db.query(
      `SELECT DISTINCT m.study_iuid FROM study_move m
        WHERE m.state = ANY($1::text[])
           OR (m.state IN ('FAILED', 'ABORTED', 'COMPLETED')
               AND EXISTS (SELECT 1 FROM study_move_item it WHERE it.move_fk = m.id AND it.state = ANY($2::text[])))`,
      [ACTIVE_MOVE_STATES, [...UNREFERENCED_TARGET_STATES, StudyMoveItemState.Switched]],
    );
    return rows.map((r) => r.study_iuid);
  }

  /** SCHEDULED/COPYING → COPYING, one more attempt. Returns the attempts so far. */
  async beginCopying(id: string): Promise<number> {
    const [rows]: [Array<{ attempts: number }>, number] = await this.db.query(
      `UPDATE study_move SET state = 'COPYING', attempts = attempts + 1, started_at = coalesce(started_at, now()), updated_at = now()
        WHERE id = $1 AND state IN ('SCHEDULED', 'COPYING') RETURNING attempts`,
      [id],
    );
    return rows[0]?.attempts ?? 0;
  }

  async noteError(id: string, error: string): Promise<void> {
    await this.db.query(`UPDATE study_move SET error = $2, updated_at = now() WHERE id = $1`, [id, error]);
  }

  /** Ends a move that has not switched: FAILED or ABORTED with the reason. False if it had switched. */
  async failBeforeSwitch(id: string, state: StudyMoveState.Failed | StudyMoveState.Aborted, error: string): Promise<boolean> {
    const [rows]: [unknown[], number] = await this.db.query(
      `UPDATE study_move SET state = $2, error = $3, completed_at = now(), updated_at = now()
        WHERE id = $1 AND state IN ('SCHEDULED', 'COPYING') RETURNING id`,
      [id, state, error],
    );
    return rows.length > 0;
  }

  async complete(id: string): Promise<void> {
    await this.db.query(
      `UPDATE study_move SET state = 'COMPLETED', completed_at = now(), updated_at = now() WHERE id = $1 AND state = 'SWITCHED'`,
      [id],
    );
  }

  /** Each instance of the study with its newest OK location (what retrieval would read). */
  async currentCopies(studyIuid: string): Promise<CurrentCopy[]> {
    const rows: Array<Record<string, unknown>> = await this.db.query(
      `SELECT i.id, i.sop_iuid, i.series_iuid, i.study_iuid, l.id AS loc_id, l.storage_id, l.object_key, l.size_bytes, l.sha256
         FROM instance i
         JOIN LATERAL (
           SELECT id, storage_id, object_key, size_bytes, sha256 FROM location
            WHERE instance_fk = i.id AND status = 'OK' ORDER BY version DESC, id DESC LIMIT 1
         ) l ON true
        WHERE i.study_iuid = $1 ORDER BY i.id`,
      [studyIuid],
    );
    return rows.map(toCurrentCopy);
  }

  async items(moveId: string, states: readonly StudyMoveItemState[]): Promise<MoveItemRow[]> {
    const rows: Array<Record<string, unknown>> = await this.db.query(
      `SELECT * FROM study_move_item WHERE move_fk = $1 AND state = ANY($2::text[]) ORDER BY id`,
      [moveId, states],
    );
    return rows.map(toItem);
  }

  /**
   * Plans many copies in one statement (ids in the order given): every target key is journaled
   * before anything is written there.
   */
  async addItems(moveId: string, planned: ReadonlyArray<{ copy: CurrentCopy; targetKey: string }>, targetStorageId: string): Promise<string[]> {
    const ids: string[] = [];
    for (let i = 0; i < planned.length; i += ITEM_BATCH) {
      const part = planned.slice(i, i + ITEM_BATCH);
      const rows: Array<{ id: string; target_key: string }> = await this.db.query(
        `INSERT INTO study_move_item (move_fk, instance_fk, source_location_fk, source_storage_id, source_key,
           target_storage_id, target_key, size_bytes, sha256)
         SELECT $1, u.instance_fk, u.location_fk, u.storage_id, u.source_key, $2, u.target_key, u.size_bytes, u.sha256
           FROM unnest($3::bigint[], $4::bigint[], $5::text[], $6::text[], $7::text[], $8::bigint[], $9::text[])
             AS u(instance_fk, location_fk, storage_id, source_key, target_key, size_bytes, sha256)
         RETURNING id, target_key`,
        [
          moveId,
          targetStorageId,
          part.map((p) => p.copy.instanceId),
          part.map((p) => p.copy.locationId),
          part.map((p) => p.copy.storageId),
          part.map((p) => p.copy.objectKey),
          part.map((p) => p.targetKey),
          part.map((p) => p.copy.sizeBytes),
          part.map((p) => p.copy.sha256),
        ],
      );
      // RETURNING's order is not promised: map back by the (unique) target key.
      const byKey = new Map(rows.map((r) => [r.target_key, String(r.id)]));
      ids.push(...part.map((p) => byKey.get(p.targetKey)!));
    }
    return ids;
  }

  /** Several verified copies at once: COPIED, and the move's progress counts them. */
  async markCopiedMany(moveId: string, itemIds: readonly string[]): Promise<void> {
    if (itemIds.length === 0) return;
    await this.db.query(
      `WITH it AS (UPDATE study_move_item SET state = 'COPIED', updated_at = now()
                    WHERE id = ANY($2::bigint[]) AND move_fk = $1 AND state = 'PENDING' RETURNING size_bytes)
       UPDATE study_move SET instances_moved = instances_moved + (SELECT count(*) FROM it),
              bytes_moved = bytes_moved + (SELECT coalesce(sum(size_bytes), 0) FROM it), updated_at = now()
        WHERE id = $1`,
      [moveId, itemIds],
    );
  }

  /** The subset of these object keys of a storage that some location row names (whatever its status): those must not be deleted. */
  async referencedKeys(storageId: string, objectKeys: readonly string[]): Promise<Set<string>> {
    if (objectKeys.length === 0) return new Set();
    const rows: Array<{ object_key: string }> = await this.db.query(
      `SELECT object_key FROM location WHERE storage_id = $1 AND object_key = ANY($2::text[])`,
      [storageId, objectKeys],
    );
    return new Set(rows.map((r) => r.object_key));
  }

  async setItemsState(ids: readonly string[], state: StudyMoveItemState): Promise<void> {
    if (ids.length === 0) return;
    await this.db.query(`UPDATE study_move_item SET state = $2, updated_at = now() WHERE id = ANY($1::bigint[])`, [ids, state]);
  }

  async deleteItems(ids: readonly string[]): Promise<void> {
    if (ids.length === 0) return;
    await this.db.query(`DELETE FROM study_move_item WHERE id = ANY($1::bigint[])`, [ids]);
  }

  async setPlan(moveId: string, plan: { sourceTiers: string[]; instancesTotal: number; bytesTotal: number; instancesMoved: number; bytesMoved: number }) {
    await this.db.query(
      `UPDATE study_move SET source_tiers = $2, instances_total = $3, bytes_total = $4, instances_moved = $5, bytes_moved = $6, updated_at = now()
        WHERE id = $1`,
      [moveId, plan.sourceTiers, plan.instancesTotal, plan.bytesTotal, plan.instancesMoved, plan.bytesMoved],
    );
  }

  /**
   * The switch, in one transaction: for every verified copy whose source location is still the
   * instance's OK location, insert the target location (OK, same version and transfer syntax) and
   * delete the source location row; the item becomes SWITCHED (source object to delete). A copy
   * whose source changed meanwhile (re-sent, marked unreadable) becomes STALE (copy to delete).
   * Returns how many instances switched; false if the move was not COPYING.
   */
  async switchLocations(moveId: string, actor: string): Promise<number | false> {
    return this.db.transaction(async (tx) => {
      const moves: Array<{ state: string; study_iuid: string; target_tier: string }> = await tx.query(
        `SELECT state, study_iuid, target_tier FROM study_move WHERE id = $1 FOR UPDATE`,
        [moveId],
      );
      if (moves[0]?.state !== StudyMoveState.Copying) return false;
      const valid: Array<{ id: string }> = await tx.query(
        `SELECT it.id FROM study_move_item it JOIN location l ON l.id = it.source_location_fk AND l.status = 'OK'
          WHERE it.move_fk = $1 AND it.state = 'COPIED' FOR UPDATE OF l`,
        [moveId],
      );
      const ids = valid.map((r) => String(r.id));
      await tx.query(
        `INSERT INTO location (instance_fk, storage_id, object_key, size_bytes, sha256, xxh64, transfer_syntax_uid, version, status)
         SELECT it.instance_fk, it.target_storage_id, it.target_key, it.size_bytes, it.sha256,
                -- the copy's bytes were verified against the same SHA-256: the source's check value is theirs
                CASE WHEN l.sha256 = it.sha256 THEN l.xxh64 END, l.transfer_syntax_uid, l.version, 'OK'
           FROM study_move_item it JOIN location l ON l.id = it.source_location_fk
          WHERE it.id = ANY($1::bigint[])`,
        [ids],
      );
      await tx.query(
        `DELETE FROM location WHERE id IN (SELECT source_location_fk FROM study_move_item WHERE id = ANY($1::bigint[]))`,
        [ids],
      );
      await tx.query(
        `UPDATE study_move_item SET state = CASE WHEN id = ANY($2::bigint[]) THEN 'SWITCHED' ELSE 'STALE' END, updated_at = now()
          WHERE move_fk = $1 AND state = 'COPIED'`,
        [moveId, ids],
      );
      await tx.query(
        `UPDATE study_move SET state = 'SWITCHED', switched_at = now(), error = NULL, updated_at = now() WHERE id = $1`,
        [moveId],
      );
      await tx.query(
        `INSERT INTO audit_event (type, study_iuid, actor, detail) VALUES ('STUDY_MOVED', $1, $2, $3)`,
        [moves[0].study_iuid, actor, { moveId, targetTier: moves[0].target_tier, instances: ids.length }],
      );
      return ids.length;
    });
  }

  /**
   * Runs `fn` holding a PostgreSQL advisory lock for the study's moves (released when `fn` ends or
   * the process dies), so two workers never work on one study. Returns false, without running
   * `fn`, if another session holds it.
   */
  async withStudyLock(studyIuid: string, fn: () => Promise<void>): Promise<boolean> {
    const runner = this.db.createQueryRunner();
    await runner.connect();
    try {
      const key = `study-move:${studyIuid}`;
      const got: Array<{ ok: boolean }> = await runner.query(`SELECT pg_try_advisory_lock(hashtextextended($1, 0)) AS ok`, [key]);
      if (!got[0]?.ok) return false;
      try {
        await fn();
      } finally {
        await runner.query(`SELECT pg_advisory_unlock(hashtextextended($1, 0))`, [key]);
      }
      return true;
    } finally {
      await runner.release();
    }
  }

  // --- read models of the HTTP API ---

  async tierUsage(): Promise<TierUsage[]> {
    const rows: Array<{ storage_id: string; studies: number; instances: number; bytes: string }> = await this.db.query(
      `SELECT l.storage_id, count(DISTINCT i.study_iuid)::int AS studies, count(*)::int AS instances, coalesce(sum(l.size_bytes), 0)::text AS bytes
         FROM location l JOIN instance i ON i.id = l.instance_fk
        WHERE l.status = 'OK' GROUP BY l.storage_id`,
    );
    return rows.map((r) => ({ storageId: r.storage_id, studies: r.studies, instances: r.instances, bytes: Number(r.bytes) }));
  }

  /** Unfinished moves per target tier. */
  async movesInFlight(): Promise<Map<string, number>> {
    const rows: Array<{ target_tier: string; n: number }> = await this.db.query(
      `SELECT target_tier, count(*)::int AS n FROM study_move WHERE state = ANY($1::text[]) GROUP BY target_tier`,
      [ACTIVE_MOVE_STATES],
    );
    return new Map(rows.map((r) => [r.target_tier, r.n]));
  }

  async studyLocations(studyIuid: string): Promise<StudyLocationRow[]> {
    const rows: Array<Record<string, unknown>> = await this.db.query(
      `SELECT i.sop_iuid, i.series_iuid, i.status AS instance_status,
              l.id AS loc_id, l.storage_id, l.object_key, l.size_bytes, l.sha256, l.status AS loc_status, l.version, l.expires_at
         FROM instance i LEFT JOIN location l ON l.instance_fk = i.id
        WHERE i.study_iuid = $1
        ORDER BY i.series_iuid, i.instance_number NULLS LAST, i.id, l.id`,
      [studyIuid],
    );
    return rows.map((r) => ({
      sopIuid: String(r.sop_iuid),
      seriesIuid: String(r.series_iuid),
      instanceStatus: String(r.instance_status),
      location: r.loc_id
        ? {
            id: String(r.loc_id),
            storageId: String(r.storage_id),
            objectKey: String(r.object_key),
            sizeBytes: Number(r.size_bytes),
            sha256: String(r.sha256),
            status: r.loc_status as LocationStatus,
            version: Number(r.version),
            expiresAt: (r.expires_at as Date | null) ?? null,
          }
        : null,
    }));
  }
}
