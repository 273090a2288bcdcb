/** A job's figures and its per-study report (JSON and CSV). Pure functions over ledger rows. */

export type LedgerState = 'pending' | 'retrieving' | 'verifying' | 'done' | 'failed' | 'skipped';

export interface LedgerRow {
  id: string;
  seq: number;
  studyIuid: string;
  /** Folder sources: the file (relative to the folder). */
  filePath: string;
  studyDate: string;
  patientId: string;
  accessionNumber: string;
  state: LedgerState;
  expectedInstances: number | null;
  migratedInstances: number;
  skippedInstances: number;
  failedInstances: number;
  bytes: number;
  attempts: number;
  lastError: string | null;
  nextAttemptAt: Date | null;
  startedAt: Date | null;
  finishedAt: Date | null;
}

export interface MigrationFigures {
  studies: { expected: number; pending: number; inProgress: number; done: number; skipped: number; failed: number };
  instances: { expected: number; migrated: number; skipped: number; failed: number };
  bytes: number;
  /** Migrated instances per second between the first study's start and the last study's end (or now). */
  instancesPerSecond: number | null;
  bytesPerSecond: number | null;
}

export function figures(rows: LedgerRow[], now = new Date()): MigrationFigures {
  const f: MigrationFigures = {
    studies: { expected: rows.length, pending: 0, inProgress: 0, done: 0, skipped: 0, failed: 0 },
    instances: { expected: 0, migrated: 0, skipped: 0, failed: 0 },
    bytes: 0,
    instancesPerSecond: null,
    bytesPerSecond: null,
  };
  let start: number | null = null;
  let end: number | null = null;
  let open = false;
  for (const r of rows) {
    switch (r.state) {
      case 'pending':
        f.studies.pending++;
        break;
      case 'retrieving':
      case 'verifying':
        f.studies.inProgress++;
        break;
      case 'done':
        f.studies.done++;
        break;
      case 'skipped':
        f.studies.skipped++;
        break;
      case 'failed':
        f.studies.failed++;
        break;
    }
    f.instances.expected += r.expectedInstances ?? 0;
    f.instances.migrated += r.migratedInstances;
    f.instances.skipped += r.skippedInstances;
    f.instances.failed += r.failedInstances;
    f.bytes += r.bytes;
    if (r.startedAt) start = Math.min(start ?? Infinity, r.startedAt.getTime());
    if (r.finishedAt) end = Math.max(end ?? -Infinity, r.finishedAt.getTime());
    if (r.startedAt && !r.finishedAt) open = true;
  }
  if (start !== null) {
    const stop = open || end === null ? now.getTime() : end;
    const seconds = Math.max(0.001, (stop - start) / 1000);
    f.instancesPerSecond = round(f.instances.migrated / seconds);
    f.bytesPerSecond = round(f.bytes / seconds);
  }
  return f;
}

const round = (x: number) => Math.round(x * 100) / 100;

export const CSV_COLUMNS = [
  'seq', 'study_instance_uid', 'file_path', 'study_date', 'patient_id', 'accession_number', 'state',
  'expected_instances', 'migrated_instances', 'skipped_instances', 'failed_instances', 'bytes',
  'attempts', 'started_at', 'finished_at', 'last_error',
] as const;

/** RFC 4180 field: quoted when it holds a comma, quote, CR or LF; a leading =,+,-,@ is prefixed with ' (spreadsheet formulas). */
export function csvField(value: unknown): string {
  let s = value === null || value === undefined ? '' : value instanceof Date ? value.toISOString() : String(value);
  if (/^[=+\-@]/.test(s)) s = `'${s}`;
  return /[",\r\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
}

export function reportCsv(rows: LedgerRow[]): string {
  const lines = [CSV_COLUMNS.join(',')];
  for (const r of rows) {
    lines.push(
      [r.seq, r.studyIuid, r.filePath, r.studyDate, r.patientId, r.accessionNumber, r.state, r.expectedInstances, r.migratedInstances,
        r.skippedInstances, r.failedInstances, r.bytes, r.attempts, r.startedAt, r.finishedAt, r.lastError]
        .map(csvField)
        .join(','),
    );
  }
  return `${lines.join('\r\n')}\r\n`;
}
