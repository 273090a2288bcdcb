import { Injectable } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import type { DataSource } from 'typeorm';
import type { LifecycleRule, StudyFacts } from './rules.js';

export interface PolicyVersion {
  version: number;
  rules: LifecycleRule[];
  settleMinutes: number;
  createdBy: string;
  createdAt: Date;
}

export interface StudyFactsRow extends StudyFacts {
  /** Newest received_at of the study's instances: studies still receiving are left alone. */
  lastReceivedAt: Date;
}

const toPolicy = (r: Record<string, unknown>): PolicyVersion => ({
  version: Number(r.version),
  rules: r.rules as LifecycleRule[],
  settleMinutes: Number(r.settle_minutes),
  createdBy: String(r.created_by),
  createdAt: r.created_at as Date,
});

/** lifecycle_policy (append-only versions) and the per-study facts the rules look at. */
@Injectable()
export class PolicyRepository {
  constructor(@InjectDataSource() private readonly db: DataSource) {}

  async latest(): Promise<PolicyVersion | undefined> {
    const rows: Array<Record<string, unknown>> = await this.db.query(`SELECT * FROM lifecycle_policy ORDER BY version DESC LIMIT 1`);
    return rows[0] ? toPolicy(rows[0]) : undefined;
  }

  async byVersion(version: number): Promise<PolicyVersion | undefined> {
    const rows: Array<Record<string, unknown>> = await this.db.query(`SELECT * FROM lifecycle_policy WHERE version = $1`, [version]);
    return rows[0] ? toPolicy(rows[0]) : undefined;
  }

  async versions(): Promise<Array<Omit<PolicyVersion, 'rules'> & { rules: number }>> {
    const rows: Array<Record<string, unknown>> = await this.db.query(
      `SELECT version, jsonb_array_length(rules) AS rules, settle_minutes, created_by, created_at FROM lifecycle_policy ORDER BY version`,
    );
    return rows.map((r) => ({ ...toPolicy({ ...r, rules: [] }), rules: Number(r.rules) }));
  }

  /** Saves a new version (the next number; a concurrent save gets the one after). */
  async save(rules: LifecycleRule[], settleMinutes: number, createdBy: string): Promise<PolicyVersion> {
    for (let attempt = 0; ; attempt++) {
      try {
        // The version and its audit event (the append-only trail of /api/audit) in one statement.
        const rows: Array<Record<string, unknown>> = await this.db.query(
          `WITH v AS (
             INSERT INTO lifecycle_policy (version, rules, settle_minutes, created_by)
             SELECT coalesce(max(version), 0) + 1, $1::jsonb, $2, $3 FROM lifecycle_policy RETURNING *),
           a AS (
             INSERT INTO audit_event (type, actor, detail)
             SELECT 'LIFECYCLE_POLICY_SAVED', $3, jsonb_build_object('version', v.version, 'rules', v.rules, 'settleMinutes', v.settle_minutes) FROM v)
           SELECT * FROM v`,
          [JSON.stringify(rules), settleMinutes, createdBy],
        );
        return toPolicy(rows[0]!);
      } catch (e) {
        if (attempt < 3 && (e as { code?: string }).code === '23505') continue;
        throw e;
      }
    }
  }

  /** Facts of indexed studies with id > `afterId`, in id order, `limit` at a time. */
  async studyFacts(afterId: string, limit: number): Promise<Array<StudyFactsRow & { id: string }>> {
    const rows: Array<Record<string, unknown>> = await this.db.query(
      `${factsSelect()} WHERE s.id > $1 AND s.retention_state = 'ACTIVE' ORDER BY s.id LIMIT $2`,
      [afterId, limit],
    );
    return rows.map(toFacts);
  }

  /**
   * Facts of the ACTIVE studies with an OK location on `storageId`, least recently accessed first
   * (last retrieval, or ingest when never retrieved; then ingest; then id), after `cursor`.
   * The capacity check's candidates.
   */
  async studyFactsByAccess(storageId: string, cursor: AccessCursor | undefined, limit: number): Promise<Array<StudyFactsRow & { id: string; cursor: AccessCursor }>> {
    const c = cursor ?? { accessedAt: '-infinity', createdAt: '-infinity', id: '0' };
    const rows: Array<Record<string, unknown>> = await this.db.query(
      `SELECT f.*, f.sort_access::text AS c_access, f.created_at::text AS c_created FROM (
         ${factsSelect('coalesce(s.last_access_at, s.created_at) AS sort_access,')}
          WHERE s.retention_state = 'ACTIVE'
            AND (coalesce(s.last_access_at, s.created_at), s.created_at, s.id) > ($2::timestamptz, $3::timestamptz, $4::bigint)
            AND EXISTS (SELECT 1 FROM instance i3 JOIN location l3 ON l3.instance_fk = i3.id
                         WHERE i3.study_iuid = s.study_iuid AND l3.storage_id = $1 AND l3.status = 'OK')
          ORDER BY coalesce(s.last_access_at, s.created_at), s.created_at, s.id LIMIT $5) f
        ORDER BY f.sort_access, f.created_at, f.id`,
      [storageId, c.accessedAt, c.createdAt, c.id, limit],
    );
    return rows.map((r) => ({ ...toFacts(r), cursor: { accessedAt: String(r.c_access), createdAt: String(r.c_created), id: String(r.id) } }));
  }
}

/** Keyset position in the least-recently-accessed order (timestamps as PostgreSQL text: exact to the microsecond). */
export interface AccessCursor {
  accessedAt: string;
  createdAt: string;
  id: string;
}

/** The SELECT … FROM of the facts the rules look at (`extra`: more columns first). */
const factsSelect = (extra = '') => `SELECT ${extra} s.id, s.study_iuid, s.modalities, s.study_date, s.created_at, s.last_access_at, coalesce(p.birth_date, '') AS birth_date,
              coalesce((SELECT array_agg(DISTINCT se.institution_name) FROM series se
                         WHERE se.study_fk = s.id AND se.institution_name <> ''), '{}') AS institutions,
              ia.source_aes, ia.last_received_at,
              (SELECT coalesce(jsonb_object_agg(t.storage_id, t.bytes), '{}'::jsonb) FROM (
                 SELECT l.storage_id, sum(l.size_bytes)::bigint AS bytes FROM instance i2
                   JOIN LATERAL (SELECT storage_id, size_bytes FROM location
                                  WHERE instance_fk = i2.id AND status = 'OK' ORDER BY version DESC, id DESC LIMIT 1) l ON true
                  WHERE i2.study_iuid = s.study_iuid GROUP BY l.storage_id) t) AS bytes_by_tier
         FROM study s
         LEFT JOIN patient p ON p.id = s.patient_fk
         CROSS JOIN LATERAL (
           SELECT coalesce(array_agg(DISTINCT i.source_ae) FILTER (WHERE i.source_ae <> ''), '{}') AS source_aes,
                  max(i.received_at) AS last_received_at
             FROM instance i WHERE i.study_iuid = s.study_iuid) ia`;

function toFacts(r: Record<string, unknown>): StudyFactsRow & { id: string } {
  const bytesByTier = Object.fromEntries(Object.entries(r.bytes_by_tier as Record<string, string | number>).map(([k, v]) => [k, Number(v)]));
  return {
    id: String(r.id),
    studyIuid: String(r.study_iuid),
    modalities: r.modalities as string[],
    sourceAes: r.source_aes as string[],
    institutions: r.institutions as string[],
    studyDate: String(r.study_date),
    patientBirthDate: String(r.birth_date),
    createdAt: r.created_at as Date,
    lastAccessAt: (r.last_access_at as Date | null) ?? null,
    sizeBytes: Object.values(bytesByTier).reduce((a, b) => a + b, 0),
    bytesByTier,
    lastReceivedAt: (r.last_received_at as Date | null) ?? (r.created_at as Date),
  };
}
