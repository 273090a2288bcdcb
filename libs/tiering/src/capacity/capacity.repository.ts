import { Injectable } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import { statfs } from 'node:fs/promises';
import type { DataSource } from 'typeorm';
import { ACTIVE_MOVE_STATES } from '../move.repository.js';
import { ACTIVE_RESTORE_STATES } from '../restore.repository.js';

/** `requested_by` of the moves the capacity check journals (followed by the rule's name). */
export const WATERMARK_REQUESTER = 'capacity-watermark';
/** `requested_by` of the moves journaled by promotion on access. */
export const PROMOTION_REQUESTER = 'promote-on-access';

export interface FilesystemUsage {
  sizeBytes: number;
  usedBytes: number;
  /** Available to the archive's (unprivileged) process. */
  freeBytes: number;
}

/** What the capacity check and promotion on access read: bytes per tier, moves in flight, the filesystem. */
@Injectable()
export class CapacityRepository {
  constructor(@InjectDataSource() private readonly db: DataSource) {}

  /**
   * Bytes of the objects the archive keeps on a tier: every location row there except MISSING
   * (copies of record, older versions kept after a re-send, restored copies, restores in progress).
   */
  /**
   * The tier's stored bytes (every location row there but MISSING ones) and the bytes that
   * unfinished moves away from it will free: the OK copies there of studies with a move to another
   * tier that has not switched yet, and (`withSwitched`) the sources of switched items not deleted
   * yet (still on disk for a filesystem measured by statfs; gone from the database already).
   * One statement, so one snapshot: a switch committing between two separate reads would count a
   * study's bytes as neither stored-and-leaving nor gone.
   */
  async usage(storageId: string, withSwitched: boolean): Promise<{ storedBytes: number; leavingBytes: number }> {
    const rows: Array<{ stored: string; leaving: string }> = await this.db.query(
      `SELECT
         (SELECT coalesce(sum(size_bytes), 0) FROM location WHERE storage_id = $1 AND status <> 'MISSING')::text AS stored,
         ((SELECT coalesce(sum(l.size_bytes), 0) FROM study_move m
            JOIN instance i ON i.study_iuid = m.study_iuid
            JOIN location l ON l.instance_fk = i.id AND l.storage_id = $1 AND l.status = 'OK'
           WHERE m.state IN ('SCHEDULED', 'COPYING') AND m.target_tier <> $1)
         + CASE WHEN $2 THEN (SELECT coalesce(sum(it.size_bytes), 0) FROM study_move m
            JOIN study_move_item it ON it.move_fk = m.id AND it.state = 'SWITCHED' AND it.source_storage_id = $1
           WHERE m.state = 'SWITCHED') ELSE 0 END)::text AS leaving`,
      [storageId, withSwitched],
    );
    return { storedBytes: Number(rows[0]!.stored), leavingBytes: Number(rows[0]!.leaving) };
  }

  /** Unfinished moves journaled by the capacity check. */
  async demotionsInFlight(): Promise<number> {
    const rows: Array<{ n: number }> = await this.db.query(
      `SELECT count(*)::int AS n FROM study_move WHERE state = ANY($1::text[]) AND requested_by LIKE $2`,
      [ACTIVE_MOVE_STATES, `${WATERMARK_REQUESTER}%`],
    );
    return rows[0]!.n;
  }

  /** Studies with an unfinished restore (never moved meanwhile). */
  async studiesRestoring(): Promise<Set<string>> {
    const rows: Array<{ study_iuid: string }> = await this.db.query(
      `SELECT DISTINCT study_iuid FROM study_restore WHERE state = ANY($1::text[])`,
      [ACTIVE_RESTORE_STATES],
    );
    return new Set(rows.map((r) => r.study_iuid));
  }

  /** Studies promoted on access since `since` (the lifecycle policy leaves them on hot). */
  async promotedSince(since: Date): Promise<Set<string>> {
    const rows: Array<{ study_iuid: string }> = await this.db.query(
      `SELECT DISTINCT study_iuid FROM study_move
        WHERE requested_by = $1 AND created_at > $2 AND target_tier = 'hot' AND state NOT IN ('FAILED', 'ABORTED')`,
      [PROMOTION_REQUESTER, since],
    );
    return new Set(rows.map((r) => r.study_iuid));
  }

  /**
   * Of the given studies, those to promote: ACTIVE, some instance's current copy (newest OK
   * location) on one of `tiers`, no unfinished move or restore, and no instance received since
   * `settledBefore`.
   */
  async promotable(studyUids: string[], tiers: string[], settledBefore: Date): Promise<Array<{ studyIuid: string; fromTiers: string[] }>> {
    if (!studyUids.length || !tiers.length) return [];
    const rows: Array<{ study_iuid: string; from_tiers: string[] }> = await this.db.query(
      `SELECT s.study_iuid, c.from_tiers FROM study s
         CROSS JOIN LATERAL (
           SELECT array_agg(DISTINCT l.storage_id ORDER BY l.storage_id) AS from_tiers, max(i.received_at) AS last_received_at
             FROM instance i
             JOIN LATERAL (SELECT storage_id FROM location WHERE instance_fk = i.id AND status = 'OK'
                            ORDER BY version DESC, id DESC LIMIT 1) l ON true
            WHERE i.study_iuid = s.study_iuid) c
        WHERE s.study_iuid = ANY($1::text[]) AND s.retention_state = 'ACTIVE'
          AND c.from_tiers && $2::text[]
          AND c.last_received_at <= $3
          AND NOT EXISTS (SELECT 1 FROM study_move m WHERE m.study_iuid = s.study_iuid AND m.state = ANY($4::text[]))
          AND NOT EXISTS (SELECT 1 FROM study_restore r WHERE r.study_iuid = s.study_iuid AND r.state = ANY($5::text[]))`,
      [studyUids, tiers, settledBefore, ACTIVE_MOVE_STATES, ACTIVE_RESTORE_STATES],
    );
    return rows.map((r) => ({ studyIuid: r.study_iuid, fromTiers: r.from_tiers }));
  }

  /**
   * Runs `fn` holding a PostgreSQL advisory lock named `name` (one capacity check at a time across
   * processes); returns undefined without running it if another session holds the lock.
   */
  async exclusively<T>(name: string, fn: () => Promise<T>): Promise<T | undefined> {
    const runner = this.db.createQueryRunner();
    await runner.connect();
    try {
      const got: Array<{ ok: boolean }> = await runner.query(`SELECT pg_try_advisory_lock(hashtextextended($1, 0)) AS ok`, [name]);
      if (!got[0]?.ok) return undefined;
      try {
        return await fn();
      } finally {
        await runner.query(`SELECT pg_advisory_unlock(hashtextextended($1, 0))`, [name]);
      }
    } finally {
      await runner.release();
    }
  }

  /** The filesystem holding `dir` (statfs): its size, what is used, what is free. */
  async filesystem(dir: string): Promise<FilesystemUsage> {
    const s = await statfs(dir);
    return { sizeBytes: s.blocks * s.bsize, usedBytes: (s.blocks - s.bfree) * s.bsize, freeBytes: s.bavail * s.bsize };
  }
}
