import { Injectable } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import type { DataSource } from 'typeorm';
import { AuditRepository, AuditType, type Sql } from './audit.repository.js';
import type { Rule, RuleDefinition } from './expiry.js';
import { RetentionError, RetentionErrorCode } from './http.js';

export interface StoredRule extends Rule {
  deleted: boolean;
  createdBy: string;
  createdAt: string;
  updatedBy: string;
  updatedAt: string;
}

export interface RuleVersion {
  revision: string;
  version: number;
  change: 'CREATED' | 'UPDATED' | 'DELETED';
  name: string;
  definition: RuleDefinition;
  actor: string;
  at: string;
}

export interface RuleSet {
  rules: Rule[];
  /** The newest change of any rule: expiries computed under another revision are stale. */
  revision: string;
}

interface RawRule {
  id: string;
  version: number;
  name: string;
  definition: RuleDefinition;
  deleted: boolean;
  created_by: string;
  created_at: Date;
  updated_by: string;
  updated_at: Date;
}

const toRule = (r: RawRule): StoredRule => ({
  id: String(r.id),
  version: r.version,
  name: r.name,
  criteria: r.definition.criteria ?? {},
  periods: r.definition.periods,
  action: r.definition.action,
  autoPurge: r.definition.autoPurge,
  deleted: r.deleted,
  createdBy: r.created_by,
  createdAt: new Date(r.created_at).toISOString(),
  updatedBy: r.updated_by,
  updatedAt: new Date(r.updated_at).toISOString(),
});

/** The current rule set in one statement (one snapshot): rules and the revision they make up. */
export async function loadRuleSet(sql: Sql): Promise<RuleSet> {
  const rows: Array<RawRule & { revision: string }> = await sql.query(
    `SELECT r.*, (SELECT coalesce(max(revision), 0) FROM retention_rule_version)::text AS revision
       FROM (SELECT 1) one LEFT JOIN retention_rule r ON NOT r.deleted ORDER BY r.id`,
  );
  return { rules: rows.filter((r) => r.id !== null).map(toRule), revision: rows[0]?.revision ?? '0' };
}

/** retention_rule (current versions) and retention_rule_version (every version, append-only). */
@Injectable()
export class RulesRepository {
  constructor(
    @InjectDataSource() private readonly db: DataSource,
    private readonly audit: AuditRepository,
  ) {}

  async list(includeDeleted: boolean): Promise<StoredRule[]> {
    const rows: RawRule[] = await this.db.query(
      `SELECT * FROM retention_rule ${includeDeleted ? '' : 'WHERE NOT deleted'} ORDER BY id`,
    );
    return rows.map(toRule);
  }

  async get(id: string): Promise<(StoredRule & { history: RuleVersion[] }) | null> {
    const rows: RawRule[] = await this.db.query(`SELECT * FROM retention_rule WHERE id = $1`, [id]);
    if (!rows[0]) return null;
    const history: Array<{ revision: string; version: number; change: RuleVersion['change']; name: string; definition: RuleDefinition; actor: string; at: Date }> =
      await this.db.query(`SELECT * FROM retention_rule_version WHERE rule_id = $1 ORDER BY version`, [id]);
    return {
      ...toRule(rows[0]),
      history: history.map((h) => ({ ...h, revision: String(h.revision), at: new Date(h.at).toISOString() })),
    };
  }

  ruleSet(): Promise<RuleSet> {
    return loadRuleSet(this.db);
  }

  async create(name: string, def: RuleDefinition, actor: string): Promise<StoredRule> {
    return this.db.transaction(async (tx) => {
      const [row]: RawRule[] = await tx.query(
        `INSERT INTO retention_rule (version, name, definition, created_by, updated_by) VALUES (1, $1, $2, $3, $3) RETURNING *`,
        [name, def, actor],
      );
      await this.addVersion(tx, row!, 'CREATED', actor);
      await this.audit.append({ type: AuditType.RuleCreated, actor, detail: { ruleId: String(row!.id), version: 1, name, definition: def } }, tx);
      return toRule(row!);
    });
  }

  async update(id: string, name: string, def: RuleDefinition, actor: string): Promise<StoredRule> {
    return this.db.transaction(async (tx) => {
      const prev = await this.locked(tx, id);
      // TypeORM answers an UPDATE with [rows, affectedCount].
      const [[row]]: [RawRule[], number] = await tx.query(
        `UPDATE retention_rule SET version = version + 1, name = $2, definition = $3, updated_by = $4, updated_at = now()
          WHERE id = $1 RETURNING *`,
        [id, name, def, actor],
      );
      await this.addVersion(tx, row!, 'UPDATED', actor);
      await this.audit.append({
        type: AuditType.RuleUpdated, actor,
        detail: { ruleId: id, version: row!.version, name, definition: def, previous: { version: prev.version, name: prev.name, definition: prev.definition } },
      }, tx);
      return toRule(row!);
    });
  }

  async delete(id: string, actor: string): Promise<StoredRule> {
    return this.db.transaction(async (tx) => {
      await this.locked(tx, id);
      // TypeORM answers an UPDATE with [rows, affectedCount].
      const [[row]]: [RawRule[], number] = await tx.query(
        `UPDATE retention_rule SET version = version + 1, deleted = true, updated_by = $2, updated_at = now() WHERE id = $1 RETURNING *`,
        [id, actor],
      );
      await this.addVersion(tx, row!, 'DELETED', actor);
      await this.audit.append({ type: AuditType.RuleDeleted, actor, detail: { ruleId: id, version: row!.version, name: row!.name, definition: row!.definition } }, tx);
      return toRule(row!);
    });
  }

  private async locked(tx: Sql, id: string): Promise<RawRule> {
    const rows: RawRule[] = await tx.query(`SELECT * FROM retention_rule WHERE id = $1 FOR UPDATE`, [id]);
    if (!rows[0] || rows[0].deleted) throw new RetentionError(RetentionErrorCode.NotFound, `retention rule ${id} does not exist`);
    return rows[0];
  }

  private async addVersion(tx: Sql, row: RawRule, change: RuleVersion['change'], actor: string): Promise<void> {
    await tx.query(
      `INSERT INTO retention_rule_version (rule_id, version, change, name, definition, actor) VALUES ($1, $2, $3, $4, $5, $6)`,
      [row.id, row.version, change, row.name, row.definition, actor],
    );
  }
}
