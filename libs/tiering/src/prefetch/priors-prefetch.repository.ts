import { Injectable } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import type { DataSource } from 'typeorm';

/** The new study whose priors are looked for, with its patient's identity. */
export interface NewStudy {
  studyIuid: string;
  patientId: string;
  issuer: string;
  studyDate: string;
  modalities: string[];
}

/** A prior study of the same patient. */
export interface Prior {
  studyIuid: string;
  studyDate: string;
  modalities: string[];
}

export interface PriorsQuery {
  count: number;
  sameModality: boolean;
}

/** priors_prefetch (one row per new study) and the priors query. Only this class touches priors_prefetch. */
@Injectable()
export class PriorsPrefetchRepository {
  constructor(@InjectDataSource() private readonly db: DataSource) {}

  /**
   * Claims the study's prefetch: 'new' when this call journaled it, 'pending' when an earlier run
   * journaled it and did not finish (it is run again: every step is idempotent), 'done' otherwise.
   */
  async claim(studyIuid: string): Promise<'new' | 'pending' | 'done'> {
    const inserted: unknown[] = await this.db.query(
      `INSERT INTO priors_prefetch (study_iuid) VALUES ($1) ON CONFLICT (study_iuid) DO NOTHING RETURNING study_iuid`,
      [studyIuid],
    );
    if (inserted.length) return 'new';
    const rows: Array<{ state: string }> = await this.db.query(`SELECT state FROM priors_prefetch WHERE study_iuid = $1`, [studyIuid]);
    return rows[0]?.state === 'PENDING' ? 'pending' : 'done';
  }

  async newStudy(studyIuid: string): Promise<NewStudy | undefined> {
    const rows: Array<{ study_iuid: string; patient_id: string; issuer: string; study_date: string; modalities: string[] }> = await this.db.query(
      `SELECT s.study_iuid, p.patient_id, p.issuer, s.study_date, s.modalities
         FROM study s JOIN patient p ON p.id = s.patient_fk WHERE s.study_iuid = $1`,
      [studyIuid],
    );
    const r = rows[0];
    return r && { studyIuid: r.study_iuid, patientId: r.patient_id, issuer: r.issuer, studyDate: r.study_date, modalities: r.modalities };
  }

  /**
   * The patient's (PatientID + IssuerOfPatientID: one patient row) `count` most recent other
   * studies by study date and time, not dated after the new study, not being purged; with
   * `sameModality`, only those sharing a modality with it. Undated studies come last.
   */
  async priors(studyIuid: string, { count, sameModality }: PriorsQuery): Promise<Prior[]> {
    const rows: Array<{ study_iuid: string; study_date: string; modalities: string[] }> = await this.db.query(
      `WITH n AS (SELECT id, patient_fk, study_date, modalities FROM study WHERE study_iuid = $1)
       SELECT p.study_iuid, p.study_date, p.modalities
         FROM study p JOIN n ON p.patient_fk = n.patient_fk AND p.id <> n.id
        WHERE p.retention_state = 'ACTIVE'
          AND (n.study_date = '' OR p.study_date = '' OR p.study_date <= n.study_date)
          AND (NOT $2 OR p.modalities && n.modalities)
        ORDER BY p.study_date DESC, p.study_time DESC, p.id DESC
        LIMIT $3`,
      [studyIuid, sameModality, count],
    );
    return rows.map((r) => ({ studyIuid: r.study_iuid, studyDate: r.study_date, modalities: r.modalities }));
  }

  /**
   * DONE with what was chosen and what was restored, and the audit event, in one transaction.
   * False (nothing written) if another run finished it first.
   */
  async finish(studyIuid: string, result: { priors: string[]; restored: string[]; error: string | null }, audit: Record<string, unknown>): Promise<boolean> {
    return this.db.transaction(async (tx) => {
      const [, n]: [unknown, number] = await tx.query(
        `UPDATE priors_prefetch SET state = 'DONE', priors = $2, restored = $3, error = $4, completed_at = now()
          WHERE study_iuid = $1 AND state = 'PENDING'`,
        [studyIuid, result.priors, result.restored, result.error],
      );
      if (n === 0) return false;
      await tx.query(`INSERT INTO audit_event (type, actor, study_iuid, sop_iuid, detail) VALUES ('PRIORS_PREFETCH', 'priors-prefetch', $1, NULL, $2)`, [
        studyIuid,
        audit,
      ]);
      return true;
    });
  }

  /** Prefetches journaled and not finished (a crashed run): the tiering reconciler enqueues them again. */
  async pending(limit = 500): Promise<string[]> {
    const rows: Array<{ study_iuid: string }> = await this.db.query(
      `SELECT study_iuid FROM priors_prefetch WHERE state = 'PENDING' ORDER BY created_at LIMIT $1`,
      [limit],
    );
    return rows.map((r) => r.study_iuid);
  }
}
