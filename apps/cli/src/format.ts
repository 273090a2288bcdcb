/** Text for people: durations, rates, the progress line, the summary, tables. Pure functions. */
import type { Migration, Report } from './api.js';

export const TERMINAL = ['COMPLETED', 'FAILED', 'CANCELED'];

/** 0 → "0s", 75 → "1m15s", 3725 → "1h02m05s"; null → "?". */
export function duration(seconds: number | null | undefined): string {
  if (seconds === null || seconds === undefined || !Number.isFinite(seconds)) return '?';
  const s = Math.max(0, Math.round(seconds));
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const r = s % 60;
  if (h) return `${h}h${String(m).padStart(2, '0')}m${String(r).padStart(2, '0')}s`;
  if (m) return `${m}m${String(r).padStart(2, '0')}s`;
  return `${r}s`;
}

/** MB = 10^6 bytes, as in docs/BENCHMARKS.md. */
export const mb = (bytes: number | null | undefined): string => (bytes === null || bytes === undefined ? '?' : (bytes / 1e6).toFixed(1));

export const num = (x: number | null | undefined, digits = 1): string => (x === null || x === undefined ? '?' : x.toFixed(digits));

/** Instances the job has dealt with: finished studies' counts plus what the open studies already have here. */
export function processed(m: Migration): number {
  const i = m.figures.instances;
  return i.migrated + i.skipped + i.failed + i.inProgress;
}

/** One plain line (non-TTY watch, status). */
export function progressLine(m: Migration): string {
  const f = m.figures;
  const s = f.studies;
  return [
    `migration ${m.id} ${m.state}:`,
    `studies ${s.done + s.skipped + s.failed}/${s.expected} (done ${s.done}, skipped ${s.skipped}, failed ${s.failed}, in progress ${s.inProgress}),`,
    `instances ${processed(m)}/${f.instances.expected},`,
    `${num(f.recent.instancesPerSecond)} inst/s ${mb(f.recent.bytesPerSecond)} MB/s (last ${f.recent.windowSeconds}s),`,
    `ETA ${duration(f.etaSeconds)}, elapsed ${duration(f.elapsedSeconds)}`,
  ].join(' ');
}

/** The values the TTY bar shows (cli-progress payload tokens; not named like its own {eta}, {duration}, {value}, {total}). */
export function barPayload(m: Migration): Record<string, string> {
  const f = m.figures;
  const s = f.studies;
  return {
    state: m.state,
    studies: `${s.done + s.skipped + s.failed}/${s.expected}`,
    failed: String(s.failed),
    rate: num(f.recent.instancesPerSecond),
    mbps: mb(f.recent.bytesPerSecond),
    remaining_time: duration(f.etaSeconds),
    elapsed_time: duration(f.elapsedSeconds),
  };
}

/** The end of a watch (and `status`): what the job did, with overall rates. */
export function summary(m: Migration): string {
  const f = m.figures;
  const lines = [
    `migration ${m.id} "${m.name}": ${m.state} after ${duration(f.elapsedSeconds)}`,
    `  studies:   ${f.studies.expected} expected, ${f.studies.done} done, ${f.studies.skipped} skipped, ${f.studies.failed} failed, ${f.studies.pending} pending, ${f.studies.inProgress} in progress`,
    `  instances: ${f.instances.expected} expected, ${f.instances.migrated} migrated, ${f.instances.skipped} skipped, ${f.instances.failed} failed, ${f.instances.inProgress} in progress`,
    `  bytes:     ${f.bytes} (${mb(f.bytes)} MB); overall ${num(f.instancesPerSecond)} inst/s, ${mb(f.bytesPerSecond)} MB/s; last ${f.recent.windowSeconds}s ${num(f.recent.instancesPerSecond)} inst/s, ${mb(f.recent.bytesPerSecond)} MB/s`,
  ];
  if (m.lastError) lines.push(`  last error: ${m.lastError}`);
  return lines.join('\n');
}

function table(head: string[], rows: string[][]): string {
  const width = head.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (r: string[]) => r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(width[i]!))).join('  ').trimEnd();
  return [line(head), ...rows.map(line)].join('\n');
}

export function listTable(jobs: Migration[]): string {
  if (!jobs.length) return 'no migrations';
  return table(
    ['ID', 'STATE', 'STUDIES', 'INSTANCES', 'INST/S', 'MB/S', 'ETA', 'CREATED', 'NAME'],
    jobs.map((m) => [
      m.id, m.state, `${m.figures.studies.done + m.figures.studies.skipped + m.figures.studies.failed}/${m.figures.studies.expected}`,
      `${processed(m)}/${m.figures.instances.expected}`, num(m.figures.recent.instancesPerSecond), mb(m.figures.recent.bytesPerSecond),
      duration(m.figures.etaSeconds), m.createdAt, m.name,
    ]),
  );
}

export function reportTable(r: Report): string {
  const rows = r.studies.map((s) => [
    String(s.seq), s.state, s.studyIuid || s.filePath, `${s.expectedInstances ?? '?'}`, String(s.migratedInstances), String(s.skippedInstances),
    String(s.failedInstances), String(s.bytes), String(s.attempts), (s.lastError ?? '').replace(/\s+/g, ' ').slice(0, 120),
  ]);
  return `${summary(r.migration)}\n\n${table(['SEQ', 'STATE', 'STUDY', 'EXPECTED', 'MIGRATED', 'SKIPPED', 'FAILED', 'BYTES', 'ATTEMPTS', 'LAST ERROR'], rows)}`;
}
