import { Injectable } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import type { DataSource, EntityManager } from 'typeorm';

/** Something that runs SQL: the DataSource or a transaction's EntityManager. */
export type Sql = Pick<DataSource | EntityManager, 'query'>;

export enum AuditType {
  RuleCreated = 'RETENTION_RULE_CREATED',
  RuleUpdated = 'RETENTION_RULE_UPDATED',
  RuleDeleted = 'RETENTION_RULE_DELETED',
  HoldPlaced = 'LEGAL_HOLD_PLACED',
  HoldReleased = 'LEGAL_HOLD_RELEASED',
  PurgeCreated = 'PURGE_CREATED',
  PurgeApproved = 'PURGE_APPROVED',
  PurgeRejected = 'PURGE_REJECTED',
  StudyPurgeStarted = 'STUDY_PURGE_STARTED',
  StudyPurgeSkipped = 'STUDY_PURGE_SKIPPED',
  StudyPurged = 'STUDY_PURGED',
  PurgeCompleted = 'PURGE_COMPLETED',
}

export interface AuditEventInput {
  type: AuditType;
  actor: string;
  studyIuid?: string | null;
  sopIuid?: string | null;
  detail: Record<string, unknown>;
}

export interface AuditEvent {
  id: string;
  at: string;
  type: string;
  studyInstanceUid: string | null;
  sopInstanceUid: string | null;
  actor: string;
  detail: Record<string, unknown>;
}

export interface AuditFilter {
  types?: string[];
  studyIuid?: string;
  actor?: string;
  from?: string;
  to?: string;
}

/** The append-only audit_event table (a trigger refuses UPDATE and DELETE). */
@Injectable()
export class AuditRepository {
  constructor(@InjectDataSource() private readonly db: DataSource) {}

  /** Append an event, inside the caller's transaction when given one. */
  async append(e: AuditEventInput, sql: Sql = this.db): Promise<void> {
    await sql.query(`INSERT INTO audit_event (type, study_iuid, sop_iuid, actor, detail) VALUES ($1, $2, $3, $4, $5)`, [
      e.type, e.studyIuid ?? null, e.sopIuid ?? null, e.actor, e.detail,
    ]);
  }

  private where(f: AuditFilter, params: unknown[]): string {
    const w: string[] = ['true'];
    const add = (v: unknown) => {
      params.push(v);
      return `$${params.length}`;
    };
    if (f.types?.length) w.push(`type = ANY(${add(f.types)}::text[])`);
    if (f.studyIuid) w.push(`study_iuid = ${add(f.studyIuid)}`);
    if (f.actor) w.push(`actor = ${add(f.actor)}`);
    if (f.from) w.push(`at >= ${add(f.from)}::timestamptz`);
    if (f.to) w.push(`at <= ${add(f.to)}::timestamptz`);
    return w.join(' AND ');
  }

  async list(f: AuditFilter, limit: number, offset: number): Promise<{ total: number; items: AuditEvent[] }> {
    const params: unknown[] = [];
    const where = this.where(f, params);
    const [{ n }]: Array<{ n: number }> = await this.db.query(`SELECT count(*)::int AS n FROM audit_event WHERE ${where}`, params);
    const rows: RawAudit[] = await this.db.query(
      `SELECT id, at, type, study_iuid, sop_iuid, actor, detail FROM audit_event WHERE ${where}
        ORDER BY id LIMIT ${Number(limit)} OFFSET ${Number(offset)}`,
      params,
    );
    return { total: n, items: rows.map(toEvent) };
  }

  /** Every matching event in order, read in pages (for exports). */
  async *iterate(f: AuditFilter): AsyncGenerator<AuditEvent> {
    let after = '0';
    for (;;) {
      const params: unknown[] = [];
      const where = this.where(f, params);
      params.push(after);
      const rows: RawAudit[] = await this.db.query(
        `SELECT id, at, type, study_iuid, sop_iuid, actor, detail FROM audit_event WHERE ${where} AND id > $${params.length}::bigint
          ORDER BY id LIMIT 1000`,
        params,
      );
      for (const r of rows) yield toEvent(r);
      if (rows.length < 1000) return;
      after = String(rows[rows.length - 1]!.id);
    }
  }
}

interface RawAudit {
  id: string;
  at: Date;
  type: string;
  study_iuid: string | null;
  sop_iuid: string | null;
  actor: string;
  detail: Record<string, unknown>;
}

function toEvent(r: RawAudit): AuditEvent {
  return {
    id: String(r.id),
    at: new Date(r.at).toISOString(),
    type: r.type,
    studyInstanceUid: r.study_iuid,
    sopInstanceUid: r.sop_iuid,
    actor: r.actor,
    detail: r.detail,
  };
}
