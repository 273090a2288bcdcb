import { Injectable } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import type { DataSource } from 'typeorm';

/** One entry of the append-only audit trail (`audit_event`; `GET /api/audit` reads it). */
export interface AuditEntry {
  type: string;
  actor: string;
  studyIuid?: string | null;
  sopIuid?: string | null;
  detail: Record<string, unknown>;
}

/** Appends audit events; several in one statement. */
@Injectable()
export class AuditEventRepository {
  constructor(@InjectDataSource() private readonly db: DataSource) {}

  async append(entries: AuditEntry[]): Promise<void> {
    if (!entries.length) return;
    const params: unknown[] = [];
    const rows = entries.map((e) => {
      params.push(e.type, e.actor, e.studyIuid ?? null, e.sopIuid ?? null, e.detail);
      const n = params.length;
      return `($${n - 4}, $${n - 3}, $${n - 2}, $${n - 1}, $${n})`;
    });
    await this.db.query(`INSERT INTO audit_event (type, actor, study_iuid, sop_iuid, detail) VALUES ${rows.join(', ')}`, params);
  }
}
