/**
 * Enumeration of a legacy archive's studies in self-splitting StudyDate windows, over any source
 * that answers a STUDY-level query (C-FIND, QIDO-RS). Pure logic: the source is a `StudyFinder`.
 *
 * - A window is asked with a cap (`maxResultsPerQuery`). An answer over the cap, or one the
 *   source itself cut short (C-FIND final status Cancel that we did not ask for; QIDO more than
 *   `limit` or a Warning header), is "too large": the window is split in two halves and each is
 *   asked, recursively, down to a single day.
 * - A single day still too large is asked without our cap (C-FIND: every answer is read; QIDO:
 *   paged with `offset`). When the source still cuts it short (its own limit), the day is
 *   reported as a warning of the enumeration: it cannot be split further by date.
 * - Scope without a date range: one date-less query first; when it fits under the cap it is the
 *   whole listing. Otherwise the windows cover 19000101-99991231, and a date-less sweep (read
 *   without the cap, keeping only studies without a valid date in that range) catches the
 *   studies a date range never matches: PS3.4 range matching does not match an empty StudyDate,
 *   and "empty value matching" ("") is optional and rarely supported. A sweep the source cuts
 *   short is reported as a warning.
 */
import type { DicomDict } from '#vna/dimse';
import { type MigrationScope, type SourceStudy, Tags } from './scope.js';

/** Default cap of answers per query (source.maxResultsPerQuery). */
export const DEFAULT_MAX_RESULTS_PER_QUERY = 1000;
/** Date range of the windows when the scope leaves a side open. */
export const FIRST_DAY = '19000101';
export const LAST_DAY = '99991231';

export interface DayRange {
  /** YYYYMMDD, inclusive. */
  from: string;
  /** YYYYMMDD, inclusive. */
  to: string;
}

export interface FindAnswer {
  studies: SourceStudy[];
  /** More answers than the cap, or the source stopped before the end. */
  truncated: boolean;
}

export interface StudyFinder {
  /**
   * The studies answering one STUDY-level identifier. With a cap: stop after more than `cap`
   * answers (truncated). Without (null): every answer the source gives (paging where it can);
   * truncated only when the source itself says it stopped early. `keep`, when given, is the only
   * part of the answer wanted: a finder may drop the other studies as they arrive (the date-less
   * sweep of a large archive keeps only the few without a usable date), and callers filter again.
   */
  find(query: DicomDict, cap: number | null, keep?: (s: SourceStudy) => boolean): Promise<FindAnswer>;
}

export interface EnumerationResult {
  /** The answers, when no EnumerationProgress keeps them (then empty: a large listing is not held in memory). */
  studies: SourceStudy[];
  queries: number;
  /** Windows split because their answer was too large. */
  splits: number;
  warnings: string[];
}

/**
 * Where an enumeration keeps what it has finished, so that a run restarted after a crash skips it
 * (the migration ledger). A step is one query of the enumeration, named by the identifier's index
 * and its window: `0:undated`, `0:20240101-20240131`, `0:sweep`.
 */
export interface EnumerationProgress {
  /** 'done': answered (its studies are kept), not asked again; 'split': known too large, split without asking. */
  state(step: string): 'done' | 'split' | undefined;
  /** A step answered: its studies (perhaps none) and what it could not be sure of, kept durably. */
  done(step: string, studies: SourceStudy[], warning?: string): Promise<void>;
  /** A step found too large (it is split, or a single day is asked without the cap). */
  split(step: string): Promise<void>;
}

const DAY_MS = 86_400_000;

function dayNumber(d: string): number {
  return Date.UTC(Number(d.slice(0, 4)), Number(d.slice(4, 6)) - 1, Number(d.slice(6, 8))) / DAY_MS;
}

function dayString(n: number): string {
  const d = new Date(n * DAY_MS);
  return `${String(d.getUTCFullYear()).padStart(4, '0')}${String(d.getUTCMonth() + 1).padStart(2, '0')}${String(d.getUTCDate()).padStart(2, '0')}`;
}

/** The two halves of a range of more than one day (the first half holds the middle day). */
export function splitRange(r: DayRange): [DayRange, DayRange] {
  const a = dayNumber(r.from);
  const b = dayNumber(r.to);
  if (b <= a) throw new Error(`cannot split the single day ${r.from}`);
  const mid = Math.floor((a + b) / 2);
  return [
    { from: r.from, to: dayString(mid) },
    { from: dayString(mid + 1), to: r.to },
  ];
}

/** The DA value of a range: a single date, or from-to. */
export function rangeValue(r: DayRange): string {
  return r.from === r.to ? r.from : `${r.from}-${r.to}`;
}

const VALID_DAY = /^\d{4}(0[1-9]|1[0-2])(0[1-9]|[12]\d|3[01])$/;

/**
 * Ask `ask` for a range; a too-large answer splits the range in halves (earlier half first),
 * down to single days, which are asked once more without the cap.
 */
export async function enumerateRange(
  root: DayRange,
  ask: (r: DayRange, capped: boolean) => Promise<FindAnswer>,
  progress?: EnumerationProgress,
  prefix = '0',
): Promise<EnumerationResult> {
  const out: EnumerationResult = { studies: [], queries: 0, splits: 0, warnings: [] };
  const stack: DayRange[] = [root];
  while (stack.length) {
    const r = stack.pop()!;
    const step = `${prefix}:${r.from}-${r.to}`;
    const known = progress?.state(step);
    if (known === 'done') continue;
    if (known !== 'split') {
      out.queries++;
      const a = await ask(r, true);
      if (!a.truncated) {
        await answered(out, progress, step, a.studies);
        continue;
      }
      await progress?.split(step);
    }
    if (r.from === r.to) {
      out.queries++;
      const all = await ask(r, false);
      const warning = all.truncated
        ? `the source cut short its answer for the single day ${r.from} (its own result limit): studies of that day may be missing`
        : undefined;
      await answered(out, progress, step, all.studies, warning);
      continue;
    }
    out.splits++;
    const [first, second] = splitRange(r);
    stack.push(second, first);
  }
  return out;
}

/** A step's answer: kept by the progress when there is one (the ledger), else in the result. */
async function answered(out: EnumerationResult, progress: EnumerationProgress | undefined, step: string, studies: SourceStudy[], warning?: string) {
  if (warning) out.warnings.push(warning);
  if (progress) await progress.done(step, studies, warning);
  else out.studies.push(...studies);
}

function withDate(q: DicomDict, value: string): DicomDict {
  return { ...q, [Tags.StudyDate]: value ? { vr: 'DA', Value: [value] } : { vr: 'DA' } };
}

/**
 * Every study answering the scope's STUDY-level identifiers (scope.ts studyQueries), each asked
 * in self-splitting date windows. Answers are not merged or filtered here (planStudies does).
 */
export async function enumerateStudies(
  finder: StudyFinder,
  queries: DicomDict[],
  scope: MigrationScope,
  cap: number,
  progress?: EnumerationProgress,
): Promise<EnumerationResult> {
  const total: EnumerationResult = { studies: [], queries: 0, splits: 0, warnings: [] };
  const add = (r: EnumerationResult) => {
    total.studies.push(...r.studies);
    total.queries += r.queries;
    total.splits += r.splits;
    total.warnings.push(...r.warnings);
  };
  const dated = Boolean(scope.studyDateFrom || scope.studyDateTo);
  const root: DayRange = { from: scope.studyDateFrom ?? FIRST_DAY, to: scope.studyDateTo ?? LAST_DAY };
  for (const [k, q] of queries.entries()) {
    if (!dated) {
      const step = `${k}:undated`;
      const known = progress?.state(step);
      if (known === 'done') continue;
      if (known !== 'split') {
        total.queries++;
        const first = await finder.find(withDate(q, ''), cap);
        if (!first.truncated) {
          await answered(total, progress, step, first.studies);
          continue;
        }
        await progress?.split(step);
      }
    }
    add(await enumerateRange(root, (r, capped) => finder.find(withDate(q, rangeValue(r)), capped ? cap : null), progress, String(k)));
    if (!dated && progress?.state(`${k}:sweep`) !== 'done') {
      // Studies no date range matches: no StudyDate, or one that is not a date in the windows.
      total.queries++;
      const outside = (s: SourceStudy) => !VALID_DAY.test(s.studyDate) || s.studyDate < root.from || s.studyDate > root.to;
      const sweep = await finder.find(withDate(q, ''), null, outside);
      const warning = sweep.truncated
        ? 'the source cut short its answer to a query without StudyDate (its own result limit): studies without a StudyDate may be missing'
        : undefined;
      await answered(total, progress, `${k}:sweep`, sweep.studies.filter(outside), warning);
    }
  }
  return total;
}
