import { Injectable } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import { type DataSource, QueryFailedError } from 'typeorm';
import { AuditRepository, AuditType, type Sql } from './audit.repository.js';
import { RetentionError, RetentionErrorCode } from './http.js';
import { loadRuleSet, type RuleSet } from './rules.repository.js';
import { type ExpiredStudy, HELD, loadFacts, type StudyFactsRow } from './studies.repository.js';

export enum PurgeState {
  AwaitingApproval = 'AWAITING_APPROVAL',
  Approved = 'APPROVED',
  Running = 'RUNNING',
  Completed = 'COMPLETED',
  /** Refused by a reviewer before approval: nothing deleted, its studies offered again. */
  Rejected = 'REJECTED',
}

/** Journal state of one study of a batch: PENDING -> PURGING (hidden, objects being deleted) -> DELETED; or SKIPPED. */
export enum PurgeStudyState {
  Pending = 'PENDING',
  Purging = 'PURGING',
  Deleted = 'DELETED',
  Skipped = 'SKIPPED',
}

/** Journal state of one instance: PENDING -> OBJECTS_DELETED (every copy gone) -> DONE (rows gone). */
export enum PurgeInstanceState {
  Pending = 'PENDING',
  ObjectsDeleted = 'OBJECTS_DELETED',
  Done = 'DONE',
}

/** The approver recorded for batches that need no approval (every study from an autoPurge delete rule). */
export const AUTO_PURGE_ACTOR = 'auto-purge';

export interface PurgeBatch {
  id: string;
  state: PurgeState;
  requiresApproval: boolean;
  createdBy: string;
  createdAt: string;
  approvedBy: string | null;
  approvedAt: string | null;
  rejectedBy: string | null;
  rejectedAt: string | null;
  rejectReason: string | null;
  startedAt: string | null;
  completedAt: string | null;
  maxPerRun: number;
  leftOut: number;
}

export interface PurgeEntry {
  id: string;
  purgeId: string;
  studyFk: string;
  studyInstanceUid: string;
  patientId: string;
  issuer: string;
  studyDate: string;
  sizeBytes: number;
  numInstances: number;
  expiresOn: string;
  ruleId: string;
  ruleVersion: number;
  autoPurge: boolean;
  state: PurgeStudyState;
  note: string | null;
  startedAt: string | null;
  completedAt: string | null;
}

/** One copy of an instance, as deleted. */
export interface DeletedCopy {
  locationId: string;
  storageId: string;
  objectKey: string;
  sha256: string;
  sizeBytes: number;
  status: string;
  /** The storage answered "absent" after the delete. */
  verifiedAbsent: boolean;
}

export interface JournalInstance {
  id: string;
  purgeStudyId: string;
  instanceFk: string;
  sopInstanceUid: string;
  seriesInstanceUid: string;
  sha256: string;
  sizeBytes: number;
  state: PurgeInstanceState;
  copies: DeletedCopy[];
}

export interface CurrentLocation {
  id: string;
  instanceFk: string;
  storageId: string;
  objectKey: string;
  sha256: string;
  sizeBytes: number;
  status: string;
}

const iso = (v: unknown) => (v ? new Date(v as Date).toISOString() : null);

const toBatch = (r: Record<string, unknown>): PurgeBatch => ({
  id: String(r.id),
  state: r.state as PurgeState,
  requiresApproval: Boolean(r.requires_approval),
  createdBy: String(r.created_by),
  createdAt: iso(r.created_at)!,
  approvedBy: (r.approved_by as string | null) ?? null,
  approvedAt: iso(r.approved_at),
  rejectedBy: (r.rejected_by as string | null) ?? null,
  rejectedAt: iso(r.rejected_at),
  rejectReason: (r.reject_reason as string | null) ?? null,
  startedAt: iso(r.started_at),
  completedAt: iso(r.completed_at),
  maxPerRun: Number(r.max_per_run),
  leftOut: Number(r.left_out),
});

const toEntry = (r: Record<string, unknown>): PurgeEntry => ({
  id: String(r.id),
  purgeId: String(r.purge_fk),
  studyFk: String(r.study_fk),
  studyInstanceUid: String(r.study_iuid),
  patientId: String(r.patient_id),
  issuer: String(r.issuer),
  studyDate: String(r.study_date),
  sizeBytes: Number(r.size_bytes),
  numInstances: Number(r.num_instances),
  expiresOn: String(r.expires_on_text),
  ruleId: String(r.rule_id),
  ruleVersion: Number(r.rule_version),
  autoPurge: Boolean(r.auto_purge),
  state: r.state as PurgeStudyState,
  note: (r.note as string | null) ?? null,
  startedAt: iso(r.started_at),
  completedAt: iso(r.completed_at),
});

const toJournal = (r: Record<string, unknown>): JournalInstance => ({
  id: String(r.id),
  purgeStudyId: String(r.purge_study_fk),
  instanceFk: String(r.instance_fk),
  sopInstanceUid: String(r.sop_iuid),
  seriesInstanceUid: String(r.series_iuid),
  sha256: String(r.sha256),
  sizeBytes: Number(r.size_bytes),
  state: r.state as PurgeInstanceState,
  copies: r.locations as DeletedCopy[],
});

const ENTRY_COLUMNS = `*, expires_on::text AS expires_on_text`;

/** Decides, inside the transaction that would start a study's purge, whether to skip it (the reason) or go on (null). */
export type StartDecision = (study: StudyFactsRow | null, held: boolean, rules: RuleSet, instances: number) => string | null;

/** Purge batches and their journal (retention_purge, retention_purge_study, retention_purge_instance). */
@Injectable()
export class PurgesRepository {
  constructor(
    @InjectDataSource() private readonly db: DataSource,
    private readonly audit: AuditRepository,
  ) {}

  /** A batch from a snapshot of expired studies; approved at once when it needs no approval. */
  async create(actor: string, studies: ExpiredStudy[], maxPerRun: number, leftOut: number, requiresApproval: boolean): Promise<string> {
    try {
      return await this.db.transaction(async (tx) => {
        const [batch]: Array<{ id: string }> = await tx.query(
          `INSERT INTO retention_purge (state, requires_approval, created_by, max_per_run, left_out, approved_by, approved_at)
           VALUES ($1, $2, $3, $4, $5, $6, CASE WHEN $2 THEN NULL ELSE now() END) RETURNING id`,
          [requiresApproval ? PurgeState.AwaitingApproval : PurgeState.Approved, requiresApproval, actor, maxPerRun, leftOut,
            requiresApproval ? null : AUTO_PURGE_ACTOR],
        );
        const id = String(batch!.id);
        const col = <T>(f: (s: ExpiredStudy) => T) => studies.map(f);
        await tx.query(
          `INSERT INTO retention_purge_study (purge_fk, study_fk, study_iuid, patient_id, issuer, study_date, size_bytes,
             num_instances, expires_on, rule_id, rule_version, auto_purge, state)
           SELECT $1, * , $13 FROM unnest($2::bigint[], $3::text[], $4::text[], $5::text[], $6::text[], $7::bigint[], $8::int[],
             $9::date[], $10::bigint[], $11::int[], $12::bool[])`,
          [id, col((s) => s.studyFk), col((s) => s.studyInstanceUid), col((s) => s.patientId), col((s) => s.issuer),
            col((s) => s.studyDate), col((s) => s.sizeBytes), col((s) => s.numInstances), col((s) => s.expiresOn),
            col((s) => s.rule.id), col((s) => s.rule.version), col((s) => s.rule.autoPurge), PurgeStudyState.Pending],
        );
        const rules = [...new Map(studies.map((s) => [`${s.rule.id}/${s.rule.version}`, s.rule])).values()];
        await this.audit.append({
          type: AuditType.PurgeCreated, actor,
          detail: { purgeId: id, requiresApproval, leftOut, maxPerRun, rules, studies: studies.map((s) => s.studyInstanceUid) },
        }, tx);
        if (!requiresApproval) {
          await this.audit.append({ type: AuditType.PurgeApproved, actor: AUTO_PURGE_ACTOR, detail: { purgeId: id, rules, reason: 'every rule involved is autoPurge' } }, tx);
        }
        return id;
      });
    } catch (e) {
      if (e instanceof QueryFailedError && (e.driverError as { code?: string })?.code === '23505') {
        throw new RetentionError(RetentionErrorCode.Conflict, 'a study of this batch is already in an unfinished purge batch');
      }
      throw e;
    }
  }

  /**
   * Approve a batch awaiting approval. Four eyes: whoever created the batch cannot approve it
   * (Conflict), so one mistaken rule plus one person never deletes anything.
   */
  async approve(id: string, actor: string): Promise<PurgeBatch> {
    return this.db.transaction(async (tx) => {
      const current = await this.batch(id, tx);
      if (current && current.state === PurgeState.AwaitingApproval && current.createdBy === actor) {
        throw new RetentionError(RetentionErrorCode.Conflict, `purge ${id} was created by ${actor}; another person must approve it`);
      }
      const [rows]: [Array<Record<string, unknown>>, number] = await tx.query(
        `UPDATE retention_purge SET state = $2, approved_by = $3, approved_at = now() WHERE id = $1 AND state = $4 RETURNING *`,
        [id, PurgeState.Approved, actor, PurgeState.AwaitingApproval],
      );
      if (!rows[0]) {
        const b = await this.batch(id, tx);
        if (!b) throw new RetentionError(RetentionErrorCode.NotFound, `purge ${id} does not exist`);
        throw new RetentionError(RetentionErrorCode.Conflict, `purge ${id} is ${b.state}, not ${PurgeState.AwaitingApproval}`);
      }
      const studies: Array<{ study_iuid: string }> = await tx.query(`SELECT study_iuid FROM retention_purge_study WHERE purge_fk = $1 ORDER BY id`, [id]);
      await this.audit.append({ type: AuditType.PurgeApproved, actor, detail: { purgeId: id, studies: studies.map((s) => s.study_iuid) } }, tx);
      return toBatch(rows[0]);
    });
  }

  /** Reject a batch awaiting approval: its studies are released (SKIPPED) for later batches; nothing is deleted. */
  async reject(id: string, actor: string, reason: string): Promise<PurgeBatch> {
    return this.db.transaction(async (tx) => {
      const [rows]: [Array<Record<string, unknown>>, number] = await tx.query(
        `UPDATE retention_purge SET state = $2, rejected_by = $3, rejected_at = now(), reject_reason = $4 WHERE id = $1 AND state = $5 RETURNING *`,
        [id, PurgeState.Rejected, actor, reason, PurgeState.AwaitingApproval],
      );
      if (!rows[0]) {
        const b = await this.batch(id, tx);
        if (!b) throw new RetentionError(RetentionErrorCode.NotFound, `purge ${id} does not exist`);
        throw new RetentionError(RetentionErrorCode.Conflict, `purge ${id} is ${b.state}, not ${PurgeState.AwaitingApproval}`);
      }
      await tx.query(`UPDATE retention_purge_study SET state = $2, note = $3, completed_at = now() WHERE purge_fk = $1 AND state = $4`, [
        id, PurgeStudyState.Skipped, `batch rejected by ${actor}: ${reason}`, PurgeStudyState.Pending,
      ]);
      await this.audit.append({ type: AuditType.PurgeRejected, actor, detail: { purgeId: id, reason } }, tx);
      return toBatch(rows[0]);
    });
  }

  async batch(id: string, sql: Sql = this.db): Promise<PurgeBatch | null> {
    const rows: Array<Record<string, unknown>> = await sql.query(`SELECT * FROM retention_purge WHERE id = $1`, [id]);
    return rows[0] ? toBatch(rows[0]) : null;
  }

  async list(limit: number, offset: number): Promise<PurgeBatch[]> {
    const rows: Array<Record<string, unknown>> = await this.db.query(`SELECT * FROM retention_purge ORDER BY id DESC LIMIT $1 OFFSET $2`, [limit, offset]);
    return rows.map(toBatch);
  }

  /** Batches approved and not finished: what start-up and the sweep (re-)enqueue. */
  async unfinished(): Promise<string[]> {
    const rows: Array<{ id: string }> = await this.db.query(
      `SELECT id FROM retention_purge WHERE state IN ($1, $2) ORDER BY id`,
      [PurgeState.Approved, PurgeState.Running],
    );
    return rows.map((r) => String(r.id));
  }

  async markRunning(id: string): Promise<boolean> {
    const [, n]: [unknown, number] = await this.db.query(
      `UPDATE retention_purge SET state = $2, started_at = coalesce(started_at, now()) WHERE id = $1 AND state IN ($2, $3)`,
      [id, PurgeState.Running, PurgeState.Approved],
    );
    return n > 0;
  }

  async entries(purgeId: string): Promise<PurgeEntry[]> {
    const rows: Array<Record<string, unknown>> = await this.db.query(
      `SELECT ${ENTRY_COLUMNS} FROM retention_purge_study WHERE purge_fk = $1 ORDER BY id`,
      [purgeId],
    );
    return rows.map(toEntry);
  }

  async nextOpenEntry(purgeId: string): Promise<PurgeEntry | null> {
    const rows: Array<Record<string, unknown>> = await this.db.query(
      `SELECT ${ENTRY_COLUMNS} FROM retention_purge_study WHERE purge_fk = $1 AND state IN ($2, $3) ORDER BY id LIMIT 1`,
      [purgeId, PurgeStudyState.Pending, PurgeStudyState.Purging],
    );
    return rows[0] ? toEntry(rows[0]) : null;
  }

  /**
   * Start one study's purge, in one transaction under the study's row lock: `decide` sees the
   * study as it is now (rules, holds); then the study becomes PURGING (hidden from every query and
   * retrieval at commit) and the journal lists every instance of it. Returns false when skipped.
   */
  async startStudy(batch: PurgeBatch, entry: PurgeEntry, decide: StartDecision): Promise<boolean> {
    return this.db.transaction(async (tx) => {
      // Another runner of this batch may have started the study meanwhile: then go on with it.
      const [own]: Array<{ state: string }> = await tx.query(`SELECT state FROM retention_purge_study WHERE id = $1 FOR UPDATE`, [entry.id]);
      if (own?.state === PurgeStudyState.Purging) return true;
      if (own?.state !== PurgeStudyState.Pending) return false;
      const locked: Array<{ id: string }> = await tx.query(
        `SELECT id FROM study WHERE id = $1 AND study_iuid = $2 AND retention_state = 'ACTIVE' FOR UPDATE`,
        [entry.studyFk, entry.studyInstanceUid],
      );
      // A tier move of the study still running: purge it in a later batch, never while its
      // copies are being made (the move journals its study under a share lock of this row).
      const moving: unknown[] = locked[0]
        ? await tx.query(`SELECT 1 FROM study_move WHERE study_iuid = $1 AND state IN ('SCHEDULED', 'COPYING', 'SWITCHED') LIMIT 1`, [entry.studyInstanceUid])
        : [];
      if (moving.length > 0) {
        const note = 'a tier move of the study is unfinished; offered again in a later batch';
        await tx.query(`UPDATE retention_purge_study SET state = $2, note = $3, completed_at = now() WHERE id = $1`, [entry.id, PurgeStudyState.Skipped, note]);
        await this.audit.append({ type: AuditType.StudyPurgeSkipped, actor: AUTO_PURGE_ACTOR, studyIuid: entry.studyInstanceUid, detail: { purgeId: batch.id, reason: note } }, tx);
        return false;
      }
      const study = locked[0] ? ((await loadFacts(tx, [entry.studyFk]))[0] ?? null) : null;
      const held = study
        ? ((await tx.query(`SELECT 1 FROM study s JOIN patient p ON p.id = s.patient_fk WHERE s.id = $1 AND ${HELD}`, [entry.studyFk])) as unknown[]).length > 0
        : false;
      // Every instance with the study's UID, indexed or not: what the journal would list.
      const [{ n: instances }]: Array<{ n: number }> = await tx.query(`SELECT count(*)::int AS n FROM instance WHERE study_iuid = $1`, [entry.studyInstanceUid]);
      const skip = decide(study, held, await loadRuleSet(tx), instances);
      if (skip !== null) {
        await tx.query(`UPDATE retention_purge_study SET state = $2, note = $3, completed_at = now() WHERE id = $1`, [entry.id, PurgeStudyState.Skipped, skip]);
        await this.audit.append({ type: AuditType.StudyPurgeSkipped, actor: AUTO_PURGE_ACTOR, studyIuid: entry.studyInstanceUid, detail: { purgeId: batch.id, reason: skip } }, tx);
        return false;
      }
      await tx.query(`UPDATE study SET retention_state = 'PURGING' WHERE id = $1`, [entry.studyFk]);
      const journal: Array<{ id: string }> = await tx.query(
        `INSERT INTO retention_purge_instance (purge_study_fk, instance_fk, sop_iuid, series_iuid, sha256, size_bytes, state)
         SELECT $1, id, sop_iuid, series_iuid, sha256, size_bytes, $3 FROM instance WHERE study_iuid = $2 ORDER BY id RETURNING id`,
        [entry.id, entry.studyInstanceUid, PurgeInstanceState.Pending],
      );
      const n = journal.length;
      await tx.query(`UPDATE retention_purge_study SET state = $2, started_at = now() WHERE id = $1`, [entry.id, PurgeStudyState.Purging]);
      await this.audit.append({
        type: AuditType.StudyPurgeStarted, actor: batch.approvedBy ?? AUTO_PURGE_ACTOR, studyIuid: entry.studyInstanceUid,
        detail: { purgeId: batch.id, instances: n, rule: { id: entry.ruleId, version: entry.ruleVersion } },
      }, tx);
      return true;
    });
  }

  /** Journal instances of a study whose copies are still to delete. */
  async pendingInstances(entryId: string, limit: number): Promise<JournalInstance[]> {
    const rows: Array<Record<string, unknown>> = await this.db.query(
      `SELECT * FROM retention_purge_instance WHERE purge_study_fk = $1 AND state = $2 ORDER BY id LIMIT $3`,
      [entryId, PurgeInstanceState.Pending, limit],
    );
    return rows.map(toJournal);
  }

  /** Every location row of an instance, whatever its status or storage. */
  async locationsOf(instanceFk: string): Promise<CurrentLocation[]> {
    const rows: Array<Record<string, unknown>> = await this.db.query(
      `SELECT id, instance_fk, storage_id, object_key, sha256, size_bytes, status FROM location WHERE instance_fk = $1 ORDER BY id`,
      [instanceFk],
    );
    return rows.map((r) => ({
      id: String(r.id), instanceFk: String(r.instance_fk), storageId: String(r.storage_id), objectKey: String(r.object_key),
      sha256: String(r.sha256), sizeBytes: Number(r.size_bytes), status: String(r.status),
    }));
  }

  async markObjectsDeleted(journalId: string, copies: DeletedCopy[]): Promise<void> {
    // Only from PENDING: a second runner of the batch (a job handed on while the first still ran)
    // never overwrites what the first recorded.
    await this.db.query(`UPDATE retention_purge_instance SET state = $2, locations = $3 WHERE id = $1 AND state = $4`, [
      journalId, PurgeInstanceState.ObjectsDeleted, JSON.stringify(copies), PurgeInstanceState.Pending,
    ]);
  }

  /**
   * The last step of a study, in one transaction: the rows of every journal instance (location,
   * instance), then series, study and patient left empty. A location recorded after its copies
   * were deleted (e.g. a tier copy made meanwhile) sends that instance back to PENDING instead.
   * Instances that arrived after the purge started are kept: the study becomes ACTIVE again with them.
   * Returns false when instances went back to PENDING.
   */
  async finishStudy(batch: PurgeBatch, entry: PurgeEntry): Promise<boolean> {
    return this.db.transaction(async (tx) => {
      // Finished by another runner of this batch meanwhile: nothing left to do (and no second audit event).
      const [own]: Array<{ state: string }> = await tx.query(`SELECT state FROM retention_purge_study WHERE id = $1 FOR UPDATE`, [entry.id]);
      if (own?.state !== PurgeStudyState.Purging) return true;
      const journal = ((await tx.query(
        `SELECT * FROM retention_purge_instance WHERE purge_study_fk = $1 AND state = $2 ORDER BY id FOR UPDATE`,
        [entry.id, PurgeInstanceState.ObjectsDeleted],
      )) as Array<Record<string, unknown>>).map(toJournal);
      const ids = journal.map((j) => j.instanceFk);
      // Locked like ingest locks an instance it re-versions: no location can be added until commit.
      // Instances before the study: the indexer's lock order.
      await tx.query(`SELECT id FROM instance WHERE id = ANY($1::bigint[]) ORDER BY id FOR UPDATE`, [ids]);
      const study: Array<{ id: string; patient_fk: string }> = await tx.query(`SELECT id, patient_fk FROM study WHERE id = $1 FOR UPDATE`, [entry.studyFk]);
      const current: Array<{ id: string; instance_fk: string }> = await tx.query(
        `SELECT id, instance_fk FROM location WHERE instance_fk = ANY($1::bigint[])`,
        [ids],
      );
      const deleted = new Set(journal.flatMap((j) => j.copies.map((c) => c.locationId)));
      const again = [...new Set(current.filter((l) => !deleted.has(String(l.id))).map((l) => String(l.instance_fk)))];
      if (again.length) {
        await tx.query(`UPDATE retention_purge_instance SET state = $3 WHERE purge_study_fk = $1 AND instance_fk = ANY($2::bigint[])`, [
          entry.id, again, PurgeInstanceState.Pending,
        ]);
        return false;
      }
      await tx.query(`DELETE FROM location WHERE id = ANY($1::bigint[])`, [[...deleted]]);
      await tx.query(`DELETE FROM instance WHERE id = ANY($1::bigint[])`, [ids]);
      await tx.query(`UPDATE retention_purge_instance SET state = $2 WHERE purge_study_fk = $1 AND state = $3`, [
        entry.id, PurgeInstanceState.Done, PurgeInstanceState.ObjectsDeleted,
      ]);
      let note: string | null = null;
      if (study[0]) {
        await tx.query(`DELETE FROM series se WHERE se.study_fk = $1 AND NOT EXISTS (SELECT 1 FROM instance i WHERE i.series_fk = se.id)`, [entry.studyFk]);
        const [{ n }]: Array<{ n: number }> = await tx.query(`SELECT count(*)::int AS n FROM instance WHERE study_iuid = $1`, [entry.studyInstanceUid]);
        if (n === 0) {
          await tx.query(`DELETE FROM study WHERE id = $1`, [entry.studyFk]);
          await tx.query(`DELETE FROM patient p WHERE p.id = $1 AND NOT EXISTS (SELECT 1 FROM study s WHERE s.patient_fk = p.id)`, [study[0].patient_fk]);
        } else {
          note = `${n} instance(s) received after the purge started were kept; the study is visible again with them`;
          await refreshAggregates(tx, entry.studyFk);
          await tx.query(`UPDATE study SET retention_state = 'ACTIVE', updated_at = now() WHERE id = $1`, [entry.studyFk]);
        }
      }
      await tx.query(`UPDATE retention_purge_study SET state = $2, note = $3, completed_at = now() WHERE id = $1`, [entry.id, PurgeStudyState.Deleted, note]);
      const all = ((await tx.query(`SELECT * FROM retention_purge_instance WHERE purge_study_fk = $1 ORDER BY id`, [entry.id])) as Array<Record<string, unknown>>).map(toJournal);
      await this.audit.append({
        type: AuditType.StudyPurged, actor: batch.approvedBy ?? AUTO_PURGE_ACTOR, studyIuid: entry.studyInstanceUid,
        detail: {
          purgeId: batch.id,
          rule: { id: entry.ruleId, version: entry.ruleVersion },
          expiresOn: entry.expiresOn,
          approvedBy: batch.approvedBy,
          approvedAt: batch.approvedAt,
          patientId: entry.patientId,
          issuer: entry.issuer,
          note,
          instances: all.map((j) => ({
            sopInstanceUid: j.sopInstanceUid, seriesInstanceUid: j.seriesInstanceUid, sha256: j.sha256, sizeBytes: j.sizeBytes,
            copies: j.copies.map((c) => ({ storageId: c.storageId, objectKey: c.objectKey, sha256: c.sha256, status: c.status })),
          })),
        },
      }, tx);
      return true;
    });
  }

  async complete(batch: PurgeBatch): Promise<void> {
    await this.db.transaction(async (tx) => {
      const [rows]: [Array<Record<string, unknown>>, number] = await tx.query(
        `UPDATE retention_purge SET state = $2, completed_at = now() WHERE id = $1 AND state = $3 RETURNING *`,
        [batch.id, PurgeState.Completed, PurgeState.Running],
      );
      if (!rows[0]) return;
      const counts: Array<{ state: string; n: number; bytes: string }> = await tx.query(
        `SELECT state, count(*)::int AS n, coalesce(sum(size_bytes), 0)::text AS bytes FROM retention_purge_study WHERE purge_fk = $1 GROUP BY state`,
        [batch.id],
      );
      await this.audit.append({
        type: AuditType.PurgeCompleted, actor: batch.approvedBy ?? AUTO_PURGE_ACTOR,
        detail: { purgeId: batch.id, studies: Object.fromEntries(counts.map((c) => [c.state, { count: c.n, sizeBytes: Number(c.bytes) }])) },
      }, tx);
    });
  }

  /** Journal instances of some batch entries (for the report). */
  async journal(entryIds: string[]): Promise<JournalInstance[]> {
    if (!entryIds.length) return [];
    const rows: Array<Record<string, unknown>> = await this.db.query(
      `SELECT * FROM retention_purge_instance WHERE purge_study_fk = ANY($1::bigint[]) ORDER BY id`,
      [entryIds],
    );
    return rows.map(toJournal);
  }
}

/** Series and study aggregates after some instances left (same definitions as the indexer's). */
async function refreshAggregates(tx: Sql, studyFk: string): Promise<void> {
  await tx.query(
    `UPDATE series se SET num_instances = a.n, size_bytes = a.size
       FROM (SELECT series_fk, count(*) AS n, coalesce(sum(size_bytes), 0) AS size FROM instance
              WHERE series_fk IN (SELECT id FROM series WHERE study_fk = $1) GROUP BY series_fk) a
      WHERE se.id = a.series_fk`,
    [studyFk],
  );
  await tx.query(
    `UPDATE study SET (num_series, num_instances, size_bytes, modalities, sop_classes) =
       (SELECT count(DISTINCT se.id), coalesce(sum(se.num_instances), 0), coalesce(sum(se.size_bytes), 0),
               coalesce(array_agg(DISTINCT se.modality) FILTER (WHERE se.modality <> ''), '{}'),
               coalesce((SELECT array_agg(DISTINCT i.sop_class_uid) FROM instance i
                          JOIN series x ON x.id = i.series_fk WHERE x.study_fk = $1), '{}')
          FROM series se WHERE se.study_fk = $1)
     WHERE id = $1`,
    [studyFk],
  );
}
