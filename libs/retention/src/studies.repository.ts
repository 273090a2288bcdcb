import { Injectable } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import type { DataSource } from 'typeorm';
import type { Sql } from './audit.repository.js';
import type { RuleAction, StudyFacts } from './expiry.js';

/** SQL condition: an active legal hold covers study `s` of patient `p`. */
export const HELD = `EXISTS (SELECT 1 FROM legal_hold h WHERE h.released_at IS NULL
  AND (h.study_iuid = s.study_iuid OR (h.patient_id = p.patient_id AND (h.issuer IS NULL OR h.issuer = p.issuer))))`;

export interface StudyFactsRow {
  studyFk: string;
  studyIuid: string;
  state: string;
  patientId: string;
  issuer: string;
  sizeBytes: string;
  numInstances: number;
  facts: StudyFacts;
  /** study.updated_at / last_access_at as PostgreSQL text: written back exactly (no µs lost). */
  basisUpdatedAt: string;
  basisLastAccessAt: string | null;
}

export interface ComputedExpiry {
  studyFk: string;
  expiresOn: string | null;
  ruleId: string | null;
  ruleVersion: number | null;
  action: RuleAction | null;
  autoPurge: boolean;
  basisUpdatedAt: string;
  basisLastAccessAt: string | null;
}

export interface ExpiredStudy {
  studyFk: string;
  studyInstanceUid: string;
  patientId: string;
  issuer: string;
  studyDate: string;
  studyDescription: string;
  modalities: string[];
  sizeBytes: number;
  numInstances: number;
  expiresOn: string;
  rule: { id: string; version: number; name: string | null; action: RuleAction; autoPurge: boolean };
}

/** Facts the rules look at, for some studies (by id), in one statement. */
export async function loadFacts(sql: Sql, studyFks: string[]): Promise<StudyFactsRow[]> {
  if (!studyFks.length) return [];
  const rows: Array<Record<string, unknown>> = await sql.query(
    `SELECT s.id, s.study_iuid, s.retention_state, s.study_date, s.study_description, s.modalities, s.sop_classes,
            s.size_bytes, s.num_instances, s.created_at, s.last_access_at,
            s.updated_at::text AS basis_updated, s.last_access_at::text AS basis_access,
            p.patient_id, p.issuer, p.birth_date,
            coalesce((SELECT array_agg(DISTINCT i.source_ae) FROM instance i WHERE i.study_iuid = s.study_iuid AND i.source_ae <> ''), '{}') AS source_aes,
            coalesce((SELECT array_agg(DISTINCT se.institution_name) FROM series se WHERE se.study_fk = s.id AND se.institution_name <> ''), '{}') AS institutions
       FROM study s JOIN patient p ON p.id = s.patient_fk
      WHERE s.id = ANY($1::bigint[]) ORDER BY s.id`,
    [studyFks],
  );
  return rows.map((r) => ({
    studyFk: String(r.id),
    studyIuid: String(r.study_iuid),
    state: String(r.retention_state),
    patientId: String(r.patient_id),
    issuer: String(r.issuer),
    sizeBytes: String(r.size_bytes),
    numInstances: Number(r.num_instances),
    basisUpdatedAt: String(r.basis_updated),
    basisLastAccessAt: r.basis_access === null ? null : String(r.basis_access),
    facts: {
      studyDate: String(r.study_date),
      patientBirthDate: String(r.birth_date),
      studyDescription: String(r.study_description),
      ingestedAt: r.created_at as Date,
      lastAccessAt: (r.last_access_at as Date | null) ?? null,
      modalities: r.modalities as string[],
      sourceAes: r.source_aes as string[],
      institutions: r.institutions as string[],
      sopClassUids: r.sop_classes as string[],
    },
  }));
}

/** study_retention: each study's computed expiry and what it was computed from. */
@Injectable()
export class StudiesRepository {
  constructor(@InjectDataSource() private readonly db: DataSource) {}

  private static readonly STALE = `s.retention_state = 'ACTIVE' AND (sr.study_fk IS NULL OR sr.rules_revision <> $1::bigint
    OR sr.basis_updated_at <> s.updated_at OR sr.basis_last_access_at IS DISTINCT FROM s.last_access_at)`;

  /** Active studies whose expiry is missing or was computed from other rules or study data, after `afterId`. */
  async stale(revision: string, afterId: string, limit: number): Promise<string[]> {
    const rows: Array<{ id: string }> = await this.db.query(
      `SELECT s.id FROM study s LEFT JOIN study_retention sr ON sr.study_fk = s.id
        WHERE ${StudiesRepository.STALE} AND s.id > $2::bigint ORDER BY s.id LIMIT $3`,
      [revision, afterId, limit],
    );
    return rows.map((r) => String(r.id));
  }

  /** The study's id when its expiry is stale, else null. */
  async staleStudy(revision: string, studyIuid: string): Promise<string | null> {
    const rows: Array<{ id: string }> = await this.db.query(
      `SELECT s.id FROM study s LEFT JOIN study_retention sr ON sr.study_fk = s.id WHERE ${StudiesRepository.STALE} AND s.study_iuid = $2`,
      [revision, studyIuid],
    );
    return rows[0] ? String(rows[0].id) : null;
  }

  async countStale(revision: string): Promise<number> {
    const [r]: Array<{ n: number }> = await this.db.query(
      `SELECT count(*)::int AS n FROM study s LEFT JOIN study_retention sr ON sr.study_fk = s.id WHERE ${StudiesRepository.STALE}`,
      [revision],
    );
    return r!.n;
  }

  facts(studyFks: string[]): Promise<StudyFactsRow[]> {
    return loadFacts(this.db, studyFks);
  }

  /** Upsert computed expiries in one statement. */
  async save(revision: string, rows: ComputedExpiry[]): Promise<void> {
    if (!rows.length) return;
    const col = <K extends keyof ComputedExpiry>(k: K) => rows.map((r) => r[k]);
    await this.db.query(
      `INSERT INTO study_retention (study_fk, expires_on, rule_id, rule_version, action, auto_purge, rules_revision,
         basis_updated_at, basis_last_access_at, computed_at)
       SELECT v.study_fk, v.expires_on, v.rule_id, v.rule_version, v.action, v.auto_purge, $1::bigint, v.bu, v.ba, now()
         FROM unnest($2::bigint[], $3::date[], $4::bigint[], $5::int[], $6::text[], $7::bool[], $8::timestamptz[], $9::timestamptz[])
           AS v(study_fk, expires_on, rule_id, rule_version, action, auto_purge, bu, ba)
         JOIN study s ON s.id = v.study_fk
       ON CONFLICT (study_fk) DO UPDATE SET expires_on = EXCLUDED.expires_on, rule_id = EXCLUDED.rule_id,
         rule_version = EXCLUDED.rule_version, action = EXCLUDED.action, auto_purge = EXCLUDED.auto_purge,
         rules_revision = EXCLUDED.rules_revision, basis_updated_at = EXCLUDED.basis_updated_at,
         basis_last_access_at = EXCLUDED.basis_last_access_at, computed_at = now()`,
      [revision, col('studyFk'), col('expiresOn'), col('ruleId'), col('ruleVersion'), col('action'), col('autoPurge'),
        col('basisUpdatedAt'), col('basisLastAccessAt')],
    );
  }

  async findStudyFk(studyIuid: string): Promise<string | null> {
    const rows: Array<{ id: string }> = await this.db.query(`SELECT id FROM study WHERE study_iuid = $1`, [studyIuid]);
    return rows[0] ? String(rows[0].id) : null;
  }

  async stored(studyFk: string, revision: string): Promise<Record<string, unknown> | null> {
    const rows: Array<Record<string, unknown>> = await this.db.query(
      `SELECT sr.expires_on::text AS expires_on, sr.rule_id::text AS rule_id, sr.rule_version, sr.action, sr.auto_purge,
              sr.computed_at, NOT (${StudiesRepository.STALE}) AS current
         FROM study_retention sr JOIN study s ON s.id = sr.study_fk WHERE sr.study_fk = $2`,
      [revision, studyFk],
    );
    const r = rows[0];
    if (!r) return null;
    return {
      expiresOn: r.expires_on, ruleId: r.rule_id, ruleVersion: r.rule_version, action: r.action, autoPurge: r.auto_purge,
      computedAt: new Date(r.computed_at as Date).toISOString(), current: r.current,
    };
  }

  /** The open (PENDING/PURGING) purge entry of a study, if any. */
  async openPurge(studyIuid: string): Promise<{ purgeId: string; state: string } | null> {
    const rows: Array<{ purge_fk: string; state: string }> = await this.db.query(
      `SELECT purge_fk, state FROM retention_purge_study WHERE study_iuid = $1 AND state IN ('PENDING', 'PURGING')`,
      [studyIuid],
    );
    return rows[0] ? { purgeId: String(rows[0].purge_fk), state: rows[0].state } : null;
  }

  /** Active, unheld studies whose stored expiry is on or before `today`, not already in an open purge. */
  async expired(today: string, limit: number, offset: number, sql: Sql = this.db): Promise<{ total: number; items: ExpiredStudy[] }> {
    const from = `FROM study_retention sr JOIN study s ON s.id = sr.study_fk JOIN patient p ON p.id = s.patient_fk
      LEFT JOIN retention_rule r ON r.id = sr.rule_id
     WHERE sr.expires_on <= $1::date AND s.retention_state = 'ACTIVE' AND NOT ${HELD}
       AND NOT EXISTS (SELECT 1 FROM retention_purge_study ps WHERE ps.study_iuid = s.study_iuid AND ps.state IN ('PENDING', 'PURGING'))`;
    const [{ n }]: Array<{ n: number }> = await sql.query(`SELECT count(*)::int AS n ${from}`, [today]);
    const rows: Array<Record<string, unknown>> = await sql.query(
      `SELECT s.id, s.study_iuid, p.patient_id, p.issuer, s.study_date, s.study_description, s.modalities, s.size_bytes,
              s.num_instances, sr.expires_on::text AS expires_on, sr.rule_id::text AS rule_id, sr.rule_version, r.name,
              sr.action, sr.auto_purge
         ${from} ORDER BY sr.expires_on, s.id LIMIT $2 OFFSET $3`,
      [today, limit, offset],
    );
    return {
      total: n,
      items: rows.map((r) => ({
        studyFk: String(r.id),
        studyInstanceUid: String(r.study_iuid),
        patientId: String(r.patient_id),
        issuer: String(r.issuer),
        studyDate: String(r.study_date),
        studyDescription: String(r.study_description),
        modalities: r.modalities as string[],
        sizeBytes: Number(r.size_bytes),
        numInstances: Number(r.num_instances),
        expiresOn: String(r.expires_on),
        rule: {
          id: String(r.rule_id), version: Number(r.rule_version), name: (r.name as string | null) ?? null,
          action: r.action as RuleAction, autoPurge: Boolean(r.auto_purge),
        },
      })),
    };
  }
}
