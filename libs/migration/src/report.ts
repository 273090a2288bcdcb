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
  /**
   * `migrated`/`skipped`/`failed` count finished studies; `inProgress`: instances of unfinished
   * studies already in the archive (stored by this job, or there before it); `remaining`:
   * expected instances of unfinished studies not in the archive yet.
   */
  instances: { expected: number; migrated: number; skipped: number; failed: number; inProgress: number; remaining: number };
  bytes: number;
  /** Migrated instances per second between the first study's start and the last study's end (or now). */
  instancesPerSecond: number | null;
  bytesPerSecond: number | null;
  /** Seconds since the job was created, until it finished (or now). */
  elapsedSeconds: number;
  /**
   * Instances (and bytes) the archive received for this job in the last `windowSeconds` before
   * now (or before the job finished), per second; the window is shorter while the job is younger.
   * From the database (instances' receive times), so it is right with several processes.
   */
  recent: { windowSeconds: number; instancesPerSecond: number | null; bytesPerSecond: number | null };
  /** Remaining instances / the recent rate, while the job is SCHEDULED or RUNNING; null when unknown. */
  etaSeconds: number | null;
}

/** What the database says about a job's recent work (MigrationRepository.activity). */
export interface MigrationActivity {
  /** The end of the window: the job's finish, or the database's now. */
  until: Date;
  /** The earliest started_at of the job's ledger rows (null: nothing started yet). */
  firstStartedAt: Date | null;
  /** Instances (and their bytes) received for the job within [until - window, until]. */
  windowInstances: number;
  windowBytes: number;
  /** Instances of unfinished, started rows already in the archive but not yet accounted in the row's counts. */
  inProgressInstances: number;
}

export interface JobTimes {
  state: string;
  createdAt: Date;
  finishedAt: Date | null;
}

/** How far back the recent rate looks. */
export const RATE_WINDOW_SECONDS = 60;

/** The ledger rows of one state, summed (what `figuresOf` needs; SQL gives it without loading the rows). */
export interface LedgerGroup {
  state: LedgerState;
  studies: number;
  expected: number;
  /** Rows without an expected count. */
  unknownExpected: number;
  migrated: number;
  skipped: number;
  failed: number;
  bytes: number;
  firstStartedAt: Date | null;
  lastFinishedAt: Date | null;
  /** A row started and not finished. */
  openStarted: boolean;
}

/** Sums rows by state (the same as MigrationRepository.ledgerGroups does in SQL). */
export function groupRows(rows: LedgerRow[]): LedgerGroup[] {
  const by = new Map<LedgerState, LedgerGroup>();
  for (const r of rows) {
    let g = by.get(r.state);
    if (!g) {
      g = { state: r.state, studies: 0, expected: 0, unknownExpected: 0, migrated: 0, skipped: 0, failed: 0, bytes: 0, firstStartedAt: null, lastFinishedAt: null, openStarted: false };
      by.set(r.state, g);
    }
    g.studies++;
    g.expected += r.expectedInstances ?? 0;
    if (r.expectedInstances === null) g.unknownExpected++;
    g.migrated += r.migratedInstances;
    g.skipped += r.skippedInstances;
    g.failed += r.failedInstances;
    g.bytes += r.bytes;
    if (r.startedAt && (!g.firstStartedAt || r.startedAt < g.firstStartedAt)) g.firstStartedAt = r.startedAt;
    if (r.finishedAt && (!g.lastFinishedAt || r.finishedAt > g.lastFinishedAt)) g.lastFinishedAt = r.finishedAt;
    if (r.startedAt && !r.finishedAt) g.openStarted = true;
  }
  return [...by.values()];
}

/**
 * A job's figures from its ledger rows, plus (given the job's times and the database's activity)
 * elapsed time, the recent rate and the ETA.
 */
export function figures(rows: LedgerRow[], now = new Date(), job?: JobTimes, activity?: MigrationActivity, windowSeconds = RATE_WINDOW_SECONDS): MigrationFigures {
  return figuresOf(groupRows(rows), now, job, activity, windowSeconds);
}

const OPEN_STATES: LedgerState[] = ['pending', 'retrieving', 'verifying'];

/** The figures from the ledger summed by state (see `figures`). */
export function figuresOf(groups: LedgerGroup[], now = new Date(), job?: JobTimes, activity?: MigrationActivity, windowSeconds = RATE_WINDOW_SECONDS): MigrationFigures {
  const f: MigrationFigures = {
    studies: { expected: 0, pending: 0, inProgress: 0, done: 0, skipped: 0, failed: 0 },
    instances: { expected: 0, migrated: 0, skipped: 0, failed: 0, inProgress: 0, remaining: 0 },
    bytes: 0,
    instancesPerSecond: null,
    bytesPerSecond: null,
    elapsedSeconds: 0,
    recent: { windowSeconds, instancesPerSecond: null, bytesPerSecond: null },
    etaSeconds: null,
  };
  let openExpected = 0;
  let openUnknown = false;
  let start: number | null = null;
  let end: number | null = null;
  let open = false;
  for (const g of groups) {
    f.studies.expected += g.studies;
    switch (g.state) {
      case 'pending':
        f.studies.pending += g.studies;
        break;
      case 'retrieving':
      case 'verifying':
        f.studies.inProgress += g.studies;
        break;
      case 'done':
        f.studies.done += g.studies;
        break;
      case 'skipped':
        f.studies.skipped += g.studies;
        break;
      case 'failed':
        f.studies.failed += g.studies;
        break;
    }
    f.instances.expected += g.expected;
    f.instances.migrated += g.migrated;
    f.instances.skipped += g.skipped;
    f.instances.failed += g.failed;
    f.bytes += g.bytes;
    if (g.firstStartedAt) start = Math.min(start ?? Infinity, g.firstStartedAt.getTime());
    if (g.lastFinishedAt) end = Math.max(end ?? -Infinity, g.lastFinishedAt.getTime());
    if (g.openStarted) open = true;
    if (OPEN_STATES.includes(g.state)) {
      openExpected += g.expected;
      if (g.unknownExpected > 0) openUnknown = true;
    }
  }
  if (start !== null) {
    const stop = open || end === null ? now.getTime() : end;
    const seconds = Math.max(0.001, (stop - start) / 1000);
    f.instancesPerSecond = round(f.instances.migrated / seconds);
    f.bytesPerSecond = round(f.bytes / seconds);
  }
  f.instances.inProgress = activity?.inProgressInstances ?? 0;
  f.instances.remaining = Math.max(0, openExpected - f.instances.inProgress);
  if (job) {
    const until = job.finishedAt ?? activity?.until ?? now;
    f.elapsedSeconds = round(Math.max(0, until.getTime() - job.createdAt.getTime()) / 1000);
  }
  if (activity?.firstStartedAt) {
    // The window, shortened to the time the job has been moving (at least 1 s, so the first instances do not spike it).
    const span = Math.min(windowSeconds, Math.max(1, (activity.until.getTime() - activity.firstStartedAt.getTime()) / 1000));
    f.recent.instancesPerSecond = round(activity.windowInstances / span);
    f.recent.bytesPerSecond = round(activity.windowBytes / span);
  }
  if (job && !openUnknown && (job.state === 'RUNNING' || job.state === 'SCHEDULED')) {
    const rate = f.recent.instancesPerSecond;
    if (f.studies.expected > 0 && f.instances.remaining === 0 && job.state === 'RUNNING') f.etaSeconds = 0;
    else if (rate && rate > 0) f.etaSeconds = Math.round(f.instances.remaining / rate);
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
