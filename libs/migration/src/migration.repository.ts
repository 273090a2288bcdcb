import { MigrationState, MigrationStudyState } from '#vna/catalog';
import { Injectable } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import type { DataSource } from 'typeorm';
import type { LedgerGroup, LedgerRow, LedgerState, MigrationActivity } from './report.js';
import type { MigrationScope, SourceStudy, StudyOrder } from './scope.js';
import type { TimeWindow } from './time-windows.js';

/** A finished step of a job's enumeration (EnumerationProgress), kept in migration_job.enumeration_progress. */
export interface EnumerationStep {
  step: string;
  state: 'done' | 'split';
  warning?: string;
}

export type DimseMigrationSource = { kind: 'dimse'; aeTitle: string; host: string; port: number; retrieve: 'move' | 'get'; maxResultsPerQuery?: number };
export type DicomwebMigrationSource = { kind: 'dicomweb'; baseUrl: string; headers?: Record<string, string>; maxResultsPerQuery?: number };
/** A folder: every file under it; with `dicomdir` (a file name in it), the files that DICOMDIR references. */
export type FolderMigrationSource = { kind: 'folder'; path: string; dicomdir?: string };
export type MigrationSource = DimseMigrationSource | DicomwebMigrationSource | FolderMigrationSource;

export interface MigrationThrottle {
  maxAssociations: number;
  /** null: unlimited. */
  maxInstancesPerSecond: number | null;
  /** When the job may run; empty: always. */
  windows: TimeWindow[];
  /** IANA time zone of the windows. */
  timeZone: string;
}

export interface MigrationJob {
  id: string;
  name: string;
  source: MigrationSource;
  scope: MigrationScope;
  order: StudyOrder;
  throttle: MigrationThrottle;
  state: MigrationState;
  attempts: number;
  lastError: string | null;
  createdAt: Date;
  updatedAt: Date;
  startedAt: Date | null;
  finishedAt: Date | null;
}

export interface NewMigrationJob {
  name: string;
  source: MigrationSource;
  scope: MigrationScope;
  order: StudyOrder;
  throttle: MigrationThrottle;
}

export interface LedgerEntry extends LedgerRow {
  migrationId: string;
}

type Row = Record<string, unknown>;

/** TypeORM answers an UPDATE ... RETURNING with [rows, affected]; a SELECT or INSERT with rows. */
function rowsOf(result: unknown): Row[] {
  if (Array.isArray(result) && result.length === 2 && Array.isArray(result[0]) && typeof result[1] === 'number') return result[0] as Row[];
  return result as Row[];
}

const TERMINAL_STUDY = [MigrationStudyState.Done, MigrationStudyState.Failed, MigrationStudyState.Skipped];
const OPEN_STUDY = [MigrationStudyState.Pending, MigrationStudyState.Retrieving, MigrationStudyState.Verifying];

function toJob(r: Row): MigrationJob {
  return {
    id: String(r.id),
    name: r.name as string,
    source: r.source as MigrationSource,
    scope: r.scope as MigrationScope,
    order: r.study_order as StudyOrder,
    throttle: {
      maxAssociations: r.max_associations as number,
      maxInstancesPerSecond: r.max_instances_per_second === null ? null : Number(r.max_instances_per_second),
      windows: (r.windows as TimeWindow[] | null) ?? [],
      timeZone: (r.time_zone as string | null) ?? 'UTC',
    },
    state: r.state as MigrationState,
    attempts: r.attempts as number,
    lastError: (r.last_error as string | null) ?? null,
    createdAt: r.created_at as Date,
    updatedAt: r.updated_at as Date,
    startedAt: (r.started_at as Date | null) ?? null,
    finishedAt: (r.finished_at as Date | null) ?? null,
  };
}

function toLedger(r: Row): LedgerEntry {
  return {
    id: String(r.id),
    migrationId: String(r.migration_fk),
    seq: r.seq as number,
    studyIuid: r.study_iuid as string,
    filePath: r.file_path as string,
    studyDate: r.study_date as string,
    patientId: r.patient_id as string,
    accessionNumber: r.accession_number as string,
    state: r.state as MigrationStudyState,
    expectedInstances: (r.expected_instances as number | null) ?? null,
    migratedInstances: r.migrated_instances as number,
    skippedInstances: r.skipped_instances as number,
    failedInstances: r.failed_instances as number,
    bytes: Number(r.bytes),
    attempts: r.attempts as number,
    lastError: (r.last_error as string | null) ?? null,
    nextAttemptAt: (r.next_attempt_at as Date | null) ?? null,
    startedAt: (r.started_at as Date | null) ?? null,
    finishedAt: (r.finished_at as Date | null) ?? null,
  };
}

/** The migration tables (migration_job, migration_study = the ledger, migration_instance). */
@Injectable()
export class MigrationRepository {
  constructor(@InjectDataSource() private readonly db: DataSource) {}

  async create(job: NewMigrationJob): Promise<MigrationJob> {
    const rows = rowsOf(await this.db.query(
      `INSERT INTO migration_job (name, source, scope, study_order, max_associations, max_instances_per_second, windows, time_zone)
       VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING *`,
      [job.name, JSON.stringify(job.source), JSON.stringify(job.scope), job.order, job.throttle.maxAssociations, job.throttle.maxInstancesPerSecond,
        JSON.stringify(job.throttle.windows), job.throttle.timeZone],
    ));
    return toJob(rows[0]!);
  }

  async list(): Promise<MigrationJob[]> {
    return ((await this.db.query(`SELECT * FROM migration_job ORDER BY id`)) as Row[]).map(toJob);
  }

  async get(id: string): Promise<MigrationJob | null> {
    const rows = rowsOf(await this.db.query(`SELECT * FROM migration_job WHERE id = $1`, [id]));
    return rows[0] ? toJob(rows[0]) : null;
  }

  async listByState(states: MigrationState[]): Promise<MigrationJob[]> {
    return ((await this.db.query(`SELECT * FROM migration_job WHERE state = ANY($1) ORDER BY id`, [states])) as Row[]).map(toJob);
  }

  /** Change the state if it is one of `from`; the job after the change, or null when it was not allowed. */
  async transition(id: string, from: MigrationState[], to: MigrationState, extra: { error?: string | null } = {}): Promise<MigrationJob | null> {
    const finished = [MigrationState.Canceled, MigrationState.Completed, MigrationState.Failed].includes(to);
    const rows = rowsOf(await this.db.query(
      `UPDATE migration_job SET state = $3, updated_at = now(),
              finished_at = CASE WHEN $4::boolean THEN now() ELSE NULL END,
              last_error = CASE WHEN $5::boolean THEN $6::text ELSE last_error END
        WHERE id = $1 AND state = ANY($2) RETURNING *`,
      [id, from, to, finished, 'error' in extra, extra.error ?? null],
    ));
    return rows[0] ? toJob(rows[0]) : null;
  }

  async setThrottle(id: string, t: Partial<MigrationThrottle>): Promise<MigrationJob | null> {
    const rows = rowsOf(await this.db.query(
      `UPDATE migration_job SET updated_at = now(),
              max_associations = COALESCE($2::int, max_associations),
              max_instances_per_second = CASE WHEN $3::boolean THEN $4::double precision ELSE max_instances_per_second END,
              windows = COALESCE($5::jsonb, windows),
              time_zone = COALESCE($6::text, time_zone)
        WHERE id = $1 RETURNING *`,
      [id, t.maxAssociations ?? null, 'maxInstancesPerSecond' in t, t.maxInstancesPerSecond ?? null,
        t.windows ? JSON.stringify(t.windows) : null, t.timeZone ?? null],
    ));
    return rows[0] ? toJob(rows[0]) : null;
  }

  async rateOf(id: string): Promise<number | null> {
    const rows = rowsOf(await this.db.query(`SELECT max_instances_per_second AS r FROM migration_job WHERE id = $1`, [id]));
    return rows[0]?.r === null || rows[0]?.r === undefined ? null : Number(rows[0].r);
  }

  async enumerationFailed(id: string, error: string, attempts: number, final: boolean): Promise<void> {
    await this.db.query(
      `UPDATE migration_job SET attempts = $2, last_error = $3, updated_at = now(),
              state = CASE WHEN $4::boolean AND state = 'SCHEDULED' THEN 'FAILED' ELSE state END,
              finished_at = CASE WHEN $4::boolean AND state = 'SCHEDULED' THEN now() ELSE finished_at END
        WHERE id = $1`,
      [id, attempts, error, final],
    );
  }

  /** The steps an earlier run of this job's enumeration finished (see EnumerationProgress). */
  async enumerationProgress(id: string): Promise<EnumerationStep[]> {
    const rows = rowsOf(await this.db.query(`SELECT enumeration_progress AS p FROM migration_job WHERE id = $1`, [id]));
    return (rows[0]?.p as EnumerationStep[] | undefined) ?? [];
  }

  /**
   * One enumeration step into the ledger: its studies (idempotent on (job, study UID); the first
   * answer of a study is kept, unnumbered until the listing is complete) and the step itself, in
   * one transaction, so a restarted enumeration neither asks it again nor loses its studies.
   */
  async recordEnumerationStep(id: string, step: EnumerationStep, studies: SourceStudy[]): Promise<void> {
    await this.db.transaction(async (m) => {
      for (let i = 0; i < studies.length; i += 500) {
        const chunk = studies.slice(i, i + 500);
        await m.query(
          `INSERT INTO migration_study (migration_fk, seq, study_iuid, study_date, study_time, patient_id, accession_number, expected_instances)
           SELECT $1, 0, s.uid, s.date, s.time, s.pid, s.acc, s.n
             FROM unnest($2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::int[]) AS s(uid, date, time, pid, acc, n)
           ON CONFLICT (migration_fk, study_iuid, file_path) DO NOTHING`,
          [id, chunk.map((s) => s.studyIuid), chunk.map((s) => s.studyDate), chunk.map((s) => s.studyTime), chunk.map((s) => s.patientId),
            chunk.map((s) => s.accessionNumber), chunk.map((s) => s.numInstances)],
        );
      }
      await m.query(
        `UPDATE migration_job SET enumeration_progress = enumeration_progress || $2::jsonb, updated_at = now() WHERE id = $1`,
        [id, JSON.stringify([step])],
      );
    });
  }

  /** The studies an enumeration put into the ledger, with their order keys. */
  async ledgerStudies(id: string): Promise<Array<{ studyIuid: string; studyDate: string; studyTime: string }>> {
    const rows = rowsOf(await this.db.query(
      `SELECT study_iuid, study_date, study_time FROM migration_study WHERE migration_fk = $1 AND file_path = ''`,
      [id],
    ));
    return rows.map((r) => ({ studyIuid: String(r.study_iuid), studyDate: String(r.study_date), studyTime: String(r.study_time) }));
  }

  /**
   * The listing is complete: the job's studies are numbered in the order given (planStudies),
   * then SCHEDULED → RUNNING (a job paused meanwhile stays paused). `warning` is kept as
   * last_error (else cleared).
   */
  async finishEnumeration(id: string, orderedStudyUids: string[], warning: string | null): Promise<MigrationJob | null> {
    return this.db.transaction(async (m) => {
      for (let i = 0; i < orderedStudyUids.length; i += 5000) {
        const chunk = orderedStudyUids.slice(i, i + 5000);
        await m.query(
          `UPDATE migration_study s SET seq = o.seq
             FROM unnest($2::text[], $3::int[]) AS o(uid, seq)
            WHERE s.migration_fk = $1 AND s.file_path = '' AND s.study_iuid = o.uid`,
          [id, chunk, chunk.map((_, k) => i + k + 1)],
        );
      }
      const rows = rowsOf(await m.query(
        `UPDATE migration_job SET started_at = COALESCE(started_at, now()), updated_at = now(), last_error = $2,
                state = CASE WHEN state = 'SCHEDULED' THEN 'RUNNING' ELSE state END
          WHERE id = $1 RETURNING *`,
        [id, warning],
      ));
      return rows[0] ? toJob(rows[0]) : null;
    });
  }

  /** A folder's files into the ledger (one row per file, idempotent), then SCHEDULED → RUNNING. */
  async recordFiles(id: string, files: string[]): Promise<MigrationJob | null> {
    return this.db.transaction(async (m) => {
      for (let i = 0; i < files.length; i += 500) {
        const chunk = files.slice(i, i + 500);
        await m.query(
          `INSERT INTO migration_study (migration_fk, seq, study_iuid, file_path, expected_instances)
           SELECT $1, f.seq, '', f.path, 1 FROM unnest($2::int[], $3::text[]) AS f(seq, path)
           ON CONFLICT (migration_fk, study_iuid, file_path) DO NOTHING`,
          [id, chunk.map((_, k) => i + k + 1), chunk],
        );
      }
      const rows = rowsOf(await m.query(
        `UPDATE migration_job SET started_at = COALESCE(started_at, now()), updated_at = now(), last_error = NULL,
                state = CASE WHEN state = 'SCHEDULED' THEN 'RUNNING' ELSE state END
          WHERE id = $1 RETURNING *`,
        [id],
      ));
      return rows[0] ? toJob(rows[0]) : null;
    });
  }

  /** A file stored: its instance accounted for, the row done (new or replaced) or skipped (identical). */
  async finishFile(ledgerId: string, r: { studyIuid: string; sopIuid: string; size: number; migrated: boolean }): Promise<void> {
    await this.db.transaction(async (m) => {
      await m.query(
        `INSERT INTO migration_instance (study_fk, sop_iuid, outcome, size_bytes, stored_at) VALUES ($1, $2, $3, $4, now())
         ON CONFLICT DO NOTHING`,
        [ledgerId, r.sopIuid, r.migrated ? 'migrated' : 'skipped', r.size],
      );
      await m.query(
        `UPDATE migration_study SET study_iuid = $2, state = $3, expected_instances = 1,
                migrated_instances = $4, skipped_instances = $5, failed_instances = 0, bytes = $6,
                started_at = COALESCE(started_at, now()), last_error = NULL, next_attempt_at = NULL, finished_at = now(), updated_at = now()
          WHERE id = $1`,
        [ledgerId, r.studyIuid, r.migrated ? 'done' : 'skipped', r.migrated ? 1 : 0, r.migrated ? 0 : 1, r.migrated ? r.size : 0],
      );
    });
  }

  async ledger(id: string): Promise<LedgerEntry[]> {
    return ((await this.db.query(`SELECT * FROM migration_study WHERE migration_fk = $1 ORDER BY seq, id`, [id])) as Row[]).map(toLedger);
  }

  /** The ledger summed by state in PostgreSQL (the figures without loading every row; see report.groupRows). */
  async ledgerGroups(id: string): Promise<LedgerGroup[]> {
    const rows = (await this.db.query(
      `SELECT state, count(*)::int AS studies, COALESCE(sum(expected_instances), 0)::bigint AS expected,
              count(*) FILTER (WHERE expected_instances IS NULL)::int AS unknown_expected,
              sum(migrated_instances)::bigint AS migrated, sum(skipped_instances)::bigint AS skipped, sum(failed_instances)::bigint AS failed,
              sum(bytes)::bigint AS bytes, min(started_at) AS first_started_at, max(finished_at) AS last_finished_at,
              bool_or(started_at IS NOT NULL AND finished_at IS NULL) AS open_started
         FROM migration_study WHERE migration_fk = $1 GROUP BY state`,
      [id],
    )) as Row[];
    return rows.map((r) => ({
      state: r.state as LedgerState,
      studies: r.studies as number,
      expected: Number(r.expected),
      unknownExpected: r.unknown_expected as number,
      migrated: Number(r.migrated),
      skipped: Number(r.skipped),
      failed: Number(r.failed),
      bytes: Number(r.bytes),
      firstStartedAt: (r.first_started_at as Date | null) ?? null,
      lastFinishedAt: (r.last_finished_at as Date | null) ?? null,
      openStarted: r.open_started === true,
    }));
  }

  /**
   * A job's recent work, from the database only (right with several processes): the instances
   * received for it in the last `windowSeconds` before now (or before the job finished) — the
   * finished rows' `migration_instance.stored_at` (= the archive's `received_at`) and, for rows
   * still open, the archive's instances of the study not accounted yet — and how many such
   * unaccounted instances the open rows have. Only rows finished within the window or still open
   * are read (an instance is stored before its row finishes).
   */
  async activity(id: string, windowSeconds: number): Promise<MigrationActivity | null> {
    const rows = rowsOf(await this.db.query(
      `WITH w AS (
         SELECT j.id, COALESCE(j.finished_at, now()) AS until, COALESCE(j.finished_at, now()) - make_interval(secs => $2) AS since
           FROM migration_job j WHERE j.id = $1),
       r AS (
         SELECT s.id, s.study_iuid, s.state, s.started_at FROM migration_study s, w
          WHERE s.migration_fk = w.id AND (s.finished_at IS NULL OR s.finished_at >= w.since)),
       acc AS (
         SELECT mi.stored_at AS at, mi.size_bytes AS b FROM r JOIN migration_instance mi ON mi.study_fk = r.id
          WHERE mi.outcome = 'migrated' AND r.state IN ('done', 'failed', 'skipped')),
       live AS (
         SELECT i.received_at AS at, i.size_bytes AS b FROM r JOIN instance i ON i.study_iuid = r.study_iuid
          WHERE r.state = ANY($3) AND r.started_at IS NOT NULL AND r.study_iuid <> ''
            AND NOT EXISTS (SELECT 1 FROM migration_instance mi WHERE mi.study_fk = r.id AND mi.sop_iuid = i.sop_iuid)),
       openskip AS (
         SELECT count(*)::int AS n FROM r JOIN migration_instance mi ON mi.study_fk = r.id WHERE r.state = ANY($3)),
       recent AS (
         SELECT at, b FROM acc UNION ALL SELECT at, b FROM live)
       SELECT w.until,
              (SELECT min(started_at) FROM migration_study WHERE migration_fk = w.id) AS first_started_at,
              (SELECT count(*)::int FROM recent WHERE at > w.since AND at <= w.until) AS window_instances,
              (SELECT COALESCE(sum(b), 0)::bigint FROM recent WHERE at > w.since AND at <= w.until) AS window_bytes,
              ((SELECT count(*)::int FROM live) + (SELECT n FROM openskip)) AS in_progress
         FROM w`,
      [id, windowSeconds, OPEN_STUDY],
    ));
    const r = rows[0];
    if (!r) return null;
    return {
      until: r.until as Date,
      firstStartedAt: (r.first_started_at as Date | null) ?? null,
      windowInstances: r.window_instances as number,
      windowBytes: Number(r.window_bytes),
      inProgressInstances: r.in_progress as number,
    };
  }

  async ledgerRow(ledgerId: string): Promise<LedgerEntry | null> {
    const rows = rowsOf(await this.db.query(`SELECT * FROM migration_study WHERE id = $1`, [ledgerId]));
    return rows[0] ? toLedger(rows[0]) : null;
  }

  /**
   * The lowest seq above `above` of the job's rows that wait their turn (pending, not waiting out
   * a retry), leaving out `except` (rows that hold a slot): the row the migration order says goes
   * next.
   */
  async lowestDueSeq(id: string, except: number[], above: number): Promise<number | null> {
    const rows = rowsOf(await this.db.query(
      `SELECT min(seq) AS seq FROM migration_study
        WHERE migration_fk = $1 AND state = 'pending' AND (next_attempt_at IS NULL OR next_attempt_at <= now())
          AND NOT (seq = ANY($2::int[])) AND seq > $3`,
      [id, except, Math.max(above, -2147483648)],
    ));
    const seq = rows[0]?.seq;
    return seq === null || seq === undefined ? null : Number(seq);
  }

  /** Ledger rows still to do (pending/retrieving/verifying), in migration order. */
  async openRows(id: string): Promise<string[]> {
    const rows = rowsOf(await this.db.query(
      `SELECT id FROM migration_study WHERE migration_fk = $1 AND state = ANY($2) ORDER BY seq, id`,
      [id, OPEN_STUDY],
    ));
    return rows.map((r) => String(r.id));
  }

  /** A new attempt at a row: attempts + 1, state retrieving. Returns the attempt number. */
  async beginAttempt(ledgerId: string): Promise<number> {
    const rows = rowsOf(await this.db.query(
      `UPDATE migration_study SET attempts = attempts + 1, state = 'retrieving', next_attempt_at = NULL, updated_at = now()
        WHERE id = $1 RETURNING attempts`,
      [ledgerId],
    ));
    return (rows[0]?.attempts as number | undefined) ?? 0;
  }

  /**
   * First start of a row (once, atomically with its started_at): the source's instances already
   * in the archive are recorded as skipped, so what the job then stores counts as migrated, across
   * restarts too.
   */
  async baseline(ledgerId: string, studyIuid: string, sopIuids: string[]): Promise<void> {
    await this.db.transaction(async (m) => {
      const first = rowsOf(await m.query(
        `UPDATE migration_study SET started_at = now() WHERE id = $1 AND started_at IS NULL RETURNING id`,
        [ledgerId],
      ));
      if (!first.length) return;
      await m.query(
        `INSERT INTO migration_instance (study_fk, sop_iuid, outcome, size_bytes, stored_at)
         SELECT $1, i.sop_iuid, 'skipped', i.size_bytes, now() FROM instance i
          WHERE i.study_iuid = $2 AND i.sop_iuid = ANY($3)
         ON CONFLICT DO NOTHING`,
        [ledgerId, studyIuid, sopIuids],
      );
    });
  }

  /** The given SOP Instance UIDs of a study that the archive does not hold (read from the database). */
  async missingInArchive(studyIuid: string, sopIuids: string[]): Promise<string[]> {
    const rows = rowsOf(await this.db.query(
      `SELECT u AS sop FROM unnest($2::text[]) AS u
        WHERE NOT EXISTS (SELECT 1 FROM instance i WHERE i.sop_iuid = u AND i.study_iuid = $1)`,
      [studyIuid, sopIuids],
    ));
    return rows.map((r) => r.sop as string);
  }

  async setState(ledgerId: string, state: MigrationStudyState): Promise<void> {
    await this.db.query(`UPDATE migration_study SET state = $2, updated_at = now() WHERE id = $1`, [ledgerId, state]);
  }

  /**
   * Verified: every source instance is in the archive. The ones not yet accounted for become
   * 'migrated' (stored_at = when the archive received them), and the row's figures are summed
   * from migration_instance; done, or skipped when the job migrated nothing new.
   */
  async finish(ledgerId: string, studyIuid: string, sopIuids: string[]): Promise<LedgerEntry | null> {
    return this.db.transaction(async (m) => {
      await m.query(
        `INSERT INTO migration_instance (study_fk, sop_iuid, outcome, size_bytes, stored_at)
         SELECT $1, i.sop_iuid, 'migrated', i.size_bytes, i.received_at FROM instance i
          WHERE i.study_iuid = $2 AND i.sop_iuid = ANY($3)
         ON CONFLICT DO NOTHING`,
        [ledgerId, studyIuid, sopIuids],
      );
      const rows = rowsOf(await m.query(
        `WITH f AS (
           SELECT count(*) FILTER (WHERE outcome = 'migrated')::int AS migrated,
                  count(*) FILTER (WHERE outcome = 'skipped')::int AS skipped,
                  COALESCE(sum(size_bytes) FILTER (WHERE outcome = 'migrated'), 0) AS bytes
             FROM migration_instance WHERE study_fk = $1 AND sop_iuid = ANY($2))
         UPDATE migration_study s SET
                state = CASE WHEN f.migrated > 0 THEN 'done' ELSE 'skipped' END,
                expected_instances = $3, migrated_instances = f.migrated, skipped_instances = f.skipped,
                failed_instances = 0, bytes = f.bytes, last_error = NULL, next_attempt_at = NULL,
                finished_at = now(), updated_at = now()
           FROM f WHERE s.id = $1 RETURNING s.*`,
        [ledgerId, sopIuids, sopIuids.length],
      ));
      return rows[0] ? toLedger(rows[0]) : null;
    });
  }

  /** A transient failure: back to pending, retried at `nextAttemptAt`. */
  async retryLater(ledgerId: string, error: string, nextAttemptAt: Date): Promise<void> {
    await this.db.query(
      `UPDATE migration_study SET state = 'pending', last_error = $2, next_attempt_at = $3, updated_at = now() WHERE id = $1`,
      [ledgerId, error, nextAttemptAt],
    );
  }

  /** A file that is not an object to import (a DICOMDIR met in a folder): skipped, with the reason, no instance expected. */
  async skipFile(ledgerId: string, reason: string): Promise<void> {
    await this.db.query(
      `UPDATE migration_study SET state = 'skipped', last_error = $2, expected_instances = 0, next_attempt_at = NULL,
              finished_at = now(), updated_at = now() WHERE id = $1`,
      [ledgerId, reason],
    );
  }

  async fail(ledgerId: string, error: string, expected: number | null, failedInstances: number): Promise<void> {
    await this.db.query(
      `UPDATE migration_study SET state = 'failed', last_error = $2, expected_instances = COALESCE($3, expected_instances),
              failed_instances = $4, next_attempt_at = NULL, finished_at = now(), updated_at = now() WHERE id = $1`,
      [ledgerId, error, expected, failedInstances],
    );
  }

  /** RUNNING → COMPLETED (or FAILED when a study failed) once no ledger row is open. */
  async completeIfDone(id: string): Promise<MigrationJob | null> {
    const rows = rowsOf(await this.db.query(
      `UPDATE migration_job j SET
              state = CASE WHEN EXISTS (SELECT 1 FROM migration_study s WHERE s.migration_fk = j.id AND s.state = 'failed')
                           THEN 'FAILED' ELSE 'COMPLETED' END,
              last_error = CASE WHEN EXISTS (SELECT 1 FROM migration_study s WHERE s.migration_fk = j.id AND s.state = 'failed')
                           THEN 'some studies failed: see the report' ELSE j.last_error END,
              finished_at = now(), updated_at = now()
        WHERE j.id = $1 AND j.state = 'RUNNING'
          AND NOT EXISTS (SELECT 1 FROM migration_study s WHERE s.migration_fk = j.id AND s.state = ANY($2))
        RETURNING *`,
      [id, OPEN_STUDY],
    ));
    return rows[0] ? toJob(rows[0]) : null;
  }

  /** Instances accounted for by a job (for tests and reports). */
  async instancesOf(id: string): Promise<Array<{ sopIuid: string; outcome: string; storedAt: Date }>> {
    const rows = rowsOf(await this.db.query(
      `SELECT mi.sop_iuid, mi.outcome, mi.stored_at FROM migration_instance mi JOIN migration_study s ON s.id = mi.study_fk
        WHERE s.migration_fk = $1 ORDER BY mi.stored_at`,
      [id],
    ));
    return rows.map((r) => ({ sopIuid: r.sop_iuid as string, outcome: r.outcome as string, storedAt: r.stored_at as Date }));
  }
}

export const TERMINAL_STUDY_STATES = TERMINAL_STUDY;
