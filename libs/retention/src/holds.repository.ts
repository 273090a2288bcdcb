import { Injectable } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import type { DataSource } from 'typeorm';
import { AuditRepository, AuditType } from './audit.repository.js';
import { RetentionError, RetentionErrorCode } from './http.js';

export interface LegalHold {
  id: string;
  patientId: string | null;
  issuer: string | null;
  studyInstanceUid: string | null;
  caseReference: string;
  reason: string;
  placedBy: string;
  placedAt: string;
  releasedBy: string | null;
  releasedAt: string | null;
  releaseReason: string | null;
  active: boolean;
}

export interface NewHold {
  patientId?: string;
  issuer?: string;
  studyInstanceUid?: string;
  caseReference: string;
  reason: string;
}

const toHold = (r: Record<string, unknown>): LegalHold => ({
  id: String(r.id),
  patientId: (r.patient_id as string | null) ?? null,
  issuer: (r.issuer as string | null) ?? null,
  studyInstanceUid: (r.study_iuid as string | null) ?? null,
  caseReference: String(r.case_reference),
  reason: String(r.reason),
  placedBy: String(r.placed_by),
  placedAt: new Date(r.placed_at as Date).toISOString(),
  releasedBy: (r.released_by as string | null) ?? null,
  releasedAt: r.released_at ? new Date(r.released_at as Date).toISOString() : null,
  releaseReason: (r.release_reason as string | null) ?? null,
  active: r.released_at === null,
});

/** legal_hold: holds name identifiers (patient or study), so they also cover studies received later. */
@Injectable()
export class HoldsRepository {
  constructor(
    @InjectDataSource() private readonly db: DataSource,
    private readonly audit: AuditRepository,
  ) {}

  /**
   * Place a hold. The studies it covers are locked first (FOR UPDATE), the same lock a purge
   * takes to start a study: a hold committed before that sees the study untouched and the purge
   * skips it; a study already PURGING is reported back (its purge has started and continues).
   */
  async place(h: NewHold, actor: string): Promise<{ hold: LegalHold; covers: string[]; alreadyPurging: string[] }> {
    return this.db.transaction(async (tx) => {
      const studies: Array<{ study_iuid: string; retention_state: string }> = h.studyInstanceUid
        ? await tx.query(`SELECT study_iuid, retention_state FROM study WHERE study_iuid = $1 FOR UPDATE`, [h.studyInstanceUid])
        : await tx.query(
            `SELECT s.study_iuid, s.retention_state FROM study s JOIN patient p ON p.id = s.patient_fk
              WHERE p.patient_id = $1 AND ($2::text IS NULL OR p.issuer = $2) ORDER BY s.id FOR UPDATE OF s`,
            [h.patientId, h.issuer ?? null],
          );
      const [row]: Array<Record<string, unknown>> = await tx.query(
        `INSERT INTO legal_hold (patient_id, issuer, study_iuid, case_reference, reason, placed_by)
         VALUES ($1, $2, $3, $4, $5, $6) RETURNING *`,
        [h.patientId ?? null, h.patientId !== undefined ? (h.issuer ?? null) : null, h.studyInstanceUid ?? null, h.caseReference, h.reason, actor],
      );
      const hold = toHold(row!);
      const covers = studies.map((s) => s.study_iuid);
      const alreadyPurging = studies.filter((s) => s.retention_state !== 'ACTIVE').map((s) => s.study_iuid);
      await this.audit.append({
        type: AuditType.HoldPlaced, actor, studyIuid: h.studyInstanceUid ?? null,
        detail: { holdId: hold.id, patientId: hold.patientId, issuer: hold.issuer, caseReference: h.caseReference, reason: h.reason, covers, alreadyPurging },
      }, tx);
      return { hold, covers, alreadyPurging };
    });
  }

  async list(f: { active?: boolean; patientId?: string; studyIuid?: string }): Promise<LegalHold[]> {
    const where: string[] = ['true'];
    const params: unknown[] = [];
    if (f.active !== undefined) where.push(f.active ? 'released_at IS NULL' : 'released_at IS NOT NULL');
    if (f.patientId) {
      params.push(f.patientId);
      where.push(`patient_id = $${params.length}`);
    }
    if (f.studyIuid) {
      params.push(f.studyIuid);
      where.push(`study_iuid = $${params.length}`);
    }
    const rows: Array<Record<string, unknown>> = await this.db.query(`SELECT * FROM legal_hold WHERE ${where.join(' AND ')} ORDER BY id`, params);
    return rows.map(toHold);
  }

  async get(id: string): Promise<LegalHold | null> {
    const rows: Array<Record<string, unknown>> = await this.db.query(`SELECT * FROM legal_hold WHERE id = $1`, [id]);
    return rows[0] ? toHold(rows[0]) : null;
  }

  /** Active holds covering a study (by its UID and its patient's identity). */
  async covering(studyIuid: string, patientId: string, issuer: string): Promise<LegalHold[]> {
    const rows: Array<Record<string, unknown>> = await this.db.query(
      `SELECT * FROM legal_hold WHERE released_at IS NULL
          AND (study_iuid = $1 OR (patient_id = $2 AND (issuer IS NULL OR issuer = $3))) ORDER BY id`,
      [studyIuid, patientId, issuer],
    );
    return rows.map(toHold);
  }

  async release(id: string, actor: string, reason: string | undefined): Promise<LegalHold> {
    return this.db.transaction(async (tx) => {
      const [rows]: [Array<Record<string, unknown>>, number] = await tx.query(
        `UPDATE legal_hold SET released_by = $2, released_at = now(), release_reason = $3
          WHERE id = $1 AND released_at IS NULL RETURNING *`,
        [id, actor, reason ?? null],
      );
      if (!rows[0]) {
        const exists: unknown[] = await tx.query(`SELECT 1 FROM legal_hold WHERE id = $1`, [id]);
        if (exists.length) throw new RetentionError(RetentionErrorCode.Conflict, `legal hold ${id} is already released`);
        throw new RetentionError(RetentionErrorCode.NotFound, `legal hold ${id} does not exist`);
      }
      const hold = toHold(rows[0]);
      await this.audit.append({
        type: AuditType.HoldReleased, actor, studyIuid: hold.studyInstanceUid,
        detail: { holdId: id, patientId: hold.patientId, issuer: hold.issuer, caseReference: hold.caseReference, releaseReason: reason ?? null },
      }, tx);
      return hold;
    });
  }
}
