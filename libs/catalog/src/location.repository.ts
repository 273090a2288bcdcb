import { VNA_CONFIG, type VnaConfig } from '#vna/config';
import { Inject, Injectable, Optional } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import type { DataSource } from 'typeorm';
import { LocationStatus } from './entities/index.js';

/** One instance to retrieve, with its current readable copy. */
/** A copy retrieval reads, with what it is checked against. */
export interface RetrievableLocation {
  id: string;
  storageId: string;
  objectKey: string;
  sizeBytes: number;
  sha256: string;
  /** Null on copies recorded before XXH64 was: they are checked by SHA-256. */
  xxh64: string | null;
}

export interface RetrievableInstance {
  instanceId: string;
  sopIuid: string;
  sopClassUid: string;
  studyIuid: string;
  seriesIuid: string;
  transferSyntaxUid: string;
  numFrames: number | null;
  /** The location to read; null when no readable copy is recorded (all MISSING/CORRUPT). */
  location: RetrievableLocation | null;
}

export interface RetrieveScope {
  studyUid?: string;
  seriesUid?: string;
  sopUids?: string[];
  patientId?: string;
  patientIssuer?: string;
}

/**
 * The copies retrieval may read: OK ones, and restored copies of an offline one until `marginMs`
 * before they expire (the sweeper deletes a restored object only `marginMs` after its expiry, so
 * a reader that picked it does not find it gone).
 */
function readable(marginMs: number): string {
  // A restored copy only of the instance's current version: never an older version's bytes
  // (of an instance re-sent with other bytes) when the current copy is unreadable.
  return `(status = '${LocationStatus.Ok}' OR (status = '${LocationStatus.Restored}' AND expires_at > now() + interval '${Math.floor(marginMs)} milliseconds'
    AND version = (SELECT iv.version FROM instance iv WHERE iv.id = location.instance_fk)))`;
}
/** Without a configuration (unit tests), the smallest margin restoreMarginMs gives. */
const DEFAULT_MARGIN_MS = 1000;
/** Newest version first; of one version, a restored copy (online) before the copy of record (offline). */
const PREFERENCE = `version DESC, (status = '${LocationStatus.Restored}') DESC, id DESC`;

/** Reads what retrieval needs: instances of a scope and their readable locations. */
@Injectable()
export class LocationRepository {
  private readonly readable: string;

  constructor(
    @InjectDataSource() private readonly db: DataSource,
    @Optional() @Inject(VNA_CONFIG) config?: VnaConfig,
  ) {
    this.readable = readable(config?.restore.marginMs ?? DEFAULT_MARGIN_MS);
  }

  /**
   * Instances in a scope (indexed ones), in series/instance order, each with its newest OK
   * location (or an unexpired restored copy of it). Never reads object storage.
   */
  async findRetrievable(scope: RetrieveScope): Promise<RetrievableInstance[]> {
    // A study being purged (retention_state PURGING) is not retrievable from its first step.
    const where: string[] = ['i.series_fk IS NOT NULL', `s.retention_state = 'ACTIVE'`];
    const params: unknown[] = [];
    const add = (v: unknown) => {
      params.push(v);
      return `$${params.length}`;
    };
    if (scope.studyUid) where.push(`i.study_iuid = ${add(scope.studyUid)}`);
    if (scope.seriesUid) where.push(`i.series_iuid = ${add(scope.seriesUid)}`);
    if (scope.sopUids?.length) where.push(`i.sop_iuid = ANY(${add(scope.sopUids)}::text[])`);
    if (scope.patientId !== undefined) {
      where.push(`s.patient_fk IN (SELECT id FROM patient WHERE patient_id = ${add(scope.patientId)}
        ${scope.patientIssuer !== undefined ? `AND issuer = ${add(scope.patientIssuer)}` : ''})`);
    }
    const rows: Array<Record<string, unknown>> = await this.db.query(
      `SELECT i.id, i.sop_iuid, i.sop_class_uid, i.study_iuid, i.series_iuid, i.transfer_syntax_uid, i.num_frames,
              l.id AS loc_id, l.storage_id, l.object_key, l.size_bytes, l.sha256, l.xxh64
         FROM instance i
         JOIN series se ON se.id = i.series_fk
         JOIN study s ON s.id = se.study_fk
         LEFT JOIN LATERAL (
           SELECT id, storage_id, object_key, size_bytes, sha256, xxh64 FROM location
            WHERE instance_fk = i.id AND ${this.readable} ORDER BY ${PREFERENCE} LIMIT 1
         ) l ON true
        WHERE ${where.join(' AND ')}
        ORDER BY s.id, se.series_number NULLS LAST, se.id, i.instance_number NULLS LAST, i.id`,
      params,
    );
    return rows.map((r) => ({
      instanceId: String(r.id),
      sopIuid: String(r.sop_iuid),
      sopClassUid: String(r.sop_class_uid),
      studyIuid: String(r.study_iuid),
      seriesIuid: String(r.series_iuid),
      transferSyntaxUid: String(r.transfer_syntax_uid),
      numFrames: r.num_frames === null ? null : Number(r.num_frames),
      location: r.loc_id
        ? {
            id: String(r.loc_id),
            storageId: String(r.storage_id),
            objectKey: String(r.object_key),
            sizeBytes: Number(r.size_bytes),
            sha256: String(r.sha256),
            xxh64: r.xxh64 === null ? null : String(r.xxh64),
          }
        : null,
    }));
  }

  /**
   * The newest OK location of one instance now (null if none). Retrieval asks when the object it
   * planned to read is gone: a tier move may have switched the instance to a new copy meanwhile.
   */
  async currentLocation(instanceId: string): Promise<RetrievableLocation | null> {
    const rows: Array<{ id: string; storage_id: string; object_key: string; size_bytes: string; sha256: string; xxh64: string | null }> = await this.db.query(
      `SELECT id, storage_id, object_key, size_bytes, sha256, xxh64 FROM location
        WHERE instance_fk = $1 AND ${this.readable} ORDER BY ${PREFERENCE} LIMIT 1`,
      [instanceId],
    );
    const r = rows[0];
    return r
      ? { id: String(r.id), storageId: r.storage_id, objectKey: r.object_key, sizeBytes: Number(r.size_bytes), sha256: r.sha256, xxh64: r.xxh64 }
      : null;
  }

  /** Instance metadata (DICOM JSON without bulk data) for a scope, from the index only. */
  async findMetadata(scope: RetrieveScope): Promise<Array<{ sopIuid: string; seriesIuid: string; studyIuid: string; metadata: Record<string, unknown> }>> {
    const where: string[] = ['i.series_fk IS NOT NULL', `s.retention_state = 'ACTIVE'`];
    const params: unknown[] = [];
    if (scope.studyUid) {
      params.push(scope.studyUid);
      where.push(`i.study_iuid = $${params.length}`);
    }
    if (scope.seriesUid) {
      params.push(scope.seriesUid);
      where.push(`i.series_iuid = $${params.length}`);
    }
    if (scope.sopUids?.length) {
      params.push(scope.sopUids);
      where.push(`i.sop_iuid = ANY($${params.length}::text[])`);
    }
    const rows: Array<{ sop_iuid: string; series_iuid: string; study_iuid: string; metadata: Record<string, unknown> }> =
      await this.db.query(
        `SELECT i.sop_iuid, i.series_iuid, i.study_iuid, i.metadata FROM instance i
           JOIN series se ON se.id = i.series_fk JOIN study s ON s.id = se.study_fk
          WHERE ${where.join(' AND ')} ORDER BY i.series_iuid, i.instance_number NULLS LAST, i.id`,
        params,
      );
    return rows.map((r) => ({ sopIuid: r.sop_iuid, seriesIuid: r.series_iuid, studyIuid: r.study_iuid, metadata: r.metadata }));
  }

  /**
   * Records the XXH64 of copies that had none, computed from bytes just verified against their
   * SHA-256 (a copy recorded before XXH64 existed gets it on its first read). Only where the
   * SHA-256 is still the one verified and no XXH64 is recorded yet. Returns how many were set.
   */
  async recordCheckValues(values: ReadonlyArray<{ locationId: string; sha256: string; xxh64: string }>): Promise<number> {
    if (values.length === 0) return 0;
    const [, n]: [unknown, number] = await this.db.query(
      `UPDATE location l SET xxh64 = u.xxh64
         FROM unnest($1::bigint[], $2::text[], $3::text[]) AS u(id, sha256, xxh64)
        WHERE l.id = u.id AND l.sha256 = u.sha256 AND l.xxh64 IS NULL`,
      [values.map((v) => v.locationId), values.map((v) => v.sha256), values.map((v) => v.xxh64)],
    );
    return n;
  }

  /** Mark a location unreadable (MISSING or CORRUPT) so repair can find it; audited. */
  async markUnreadable(locationId: string, status: LocationStatus.Missing | LocationStatus.Corrupt, detail: string): Promise<void> {
    await this.db.transaction(async (tx) => {
      // TypeORM answers an UPDATE ... RETURNING with [rows, affectedCount].
      const [rows]: [Array<{ sop_iuid: string; study_iuid: string }>, number] = await tx.query(
        // A restored copy keeps its status and is expired instead: the sweeper deletes it, the
        // copy of record (offline) is untouched, and the next retrieval restores it again.
        `UPDATE location l SET status = CASE WHEN l.status = 'OK' THEN $2 ELSE l.status END,
                expires_at = CASE WHEN l.status = 'RESTORED' THEN now() - interval '1 day' ELSE l.expires_at END, updated_at = now()
           FROM instance i
          WHERE l.id = $1 AND i.id = l.instance_fk AND l.status IN ('OK', 'RESTORED') RETURNING i.sop_iuid, i.study_iuid`,
        [locationId, status],
      );
      if (rows[0]) {
        await tx.query(
          `INSERT INTO audit_event (type, study_iuid, sop_iuid, actor, detail) VALUES ($1, $2, $3, 'retrieval', $4)`,
          [`LOCATION_${status}`, rows[0].study_iuid, rows[0].sop_iuid, { locationId, detail }],
        );
      }
    });
  }

  /** Record that studies were accessed now (one statement for a batch). */
  async touchStudies(studyUids: string[]): Promise<void> {
    if (!studyUids.length) return;
    await this.db.query(`UPDATE study SET last_access_at = now() WHERE study_iuid = ANY($1::text[])`, [studyUids]);
  }
}
