/**
 * Retention policy evaluation: pure functions, no I/O. A rule matches a study when every criterion
 * it has matches (AND); its retention ends at the latest of its periods' ends; when several rules
 * match, the one that keeps the study longest wins. Unknown never shortens retention: a period
 * whose anchor date is unknown (no StudyDate, no PatientBirthDate) keeps the study indefinitely.
 * Dates are civil dates (YYYY-MM-DD, UTC).
 */

export enum Anchor {
  /** StudyDate (0008,0020). */
  StudyDate = 'STUDY_DATE',
  /** When the archive first indexed the study. */
  IngestDate = 'INGEST_DATE',
  /** The last retrieval (WADO, C-MOVE, C-GET); the ingest date when never retrieved. */
  LastAccess = 'LAST_ACCESS',
  /** PatientBirthDate (0010,0030): "until the patient is N". */
  PatientBirth = 'PATIENT_BIRTH',
}

export enum RuleAction {
  Delete = 'delete',
  FlagForReview = 'flag-for-review',
}

export interface RetentionPeriod {
  anchor: Anchor;
  years: number;
  months?: number;
  days?: number;
}

/** Criteria of a rule; absent ones are not checked. Lists match when any of the study's values is listed. */
export interface RuleCriteria {
  modalities?: string[];
  sourceAes?: string[];
  institutions?: string[];
  sopClassUids?: string[];
  /** StudyDescription with DICOM wildcards (* and ?), case-insensitive, whole value. */
  studyDescription?: string;
  /** Patient age at the study date, in whole years: minPatientAge <= age. */
  minPatientAge?: number;
  /** Patient age at the study date, in whole years: age < maxPatientAge. */
  maxPatientAge?: number;
}

export interface RuleDefinition {
  criteria: RuleCriteria;
  /** At least one; the study is kept until the latest of their ends. */
  periods: RetentionPeriod[];
  action: RuleAction;
  /** Purge batches made only of studies of autoPurge rules need no approval. */
  autoPurge: boolean;
}

export interface Rule extends RuleDefinition {
  id: string;
  version: number;
  name: string;
}

/** What rules look at, for one study. */
export interface StudyFacts {
  /** DICOM DA (YYYYMMDD) or ''. */
  studyDate: string;
  /** DICOM DA or ''. */
  patientBirthDate: string;
  studyDescription: string;
  ingestedAt: Date;
  lastAccessAt: Date | null;
  modalities: string[];
  sourceAes: string[];
  institutions: string[];
  sopClassUids: string[];
}

export interface PeriodEvaluation extends RetentionPeriod {
  /** The anchor's date, or null when unknown. */
  from: string | null;
  /** from + period; null (indefinite) when the anchor is unknown. */
  until: string | null;
}

export interface RuleEvaluation {
  ruleId: string;
  version: number;
  name: string;
  matched: boolean;
  /** The first criterion that did not match. */
  mismatch?: string;
  periods: PeriodEvaluation[];
  /** The latest period end; null = indefinite. Only for matched rules. */
  endsOn: string | null;
  action: RuleAction;
  autoPurge: boolean;
}

export interface Expiry {
  /** null: never expires (no rule matches, or the winning rule keeps it indefinitely). */
  expiresOn: string | null;
  winner: RuleEvaluation | null;
  evaluations: RuleEvaluation[];
}

interface CivilDate {
  y: number;
  m: number; // 1-12
  d: number;
}

const pad = (n: number, w = 2) => String(n).padStart(w, '0');
const iso = (c: CivilDate) => `${pad(c.y, 4)}-${pad(c.m)}-${pad(c.d)}`;
const daysInMonth = (y: number, m: number) => new Date(Date.UTC(y, m, 0)).getUTCDate();

/** A DICOM DA value (YYYYMMDD) as a civil date, or null when empty or not a real date. */
export function parseDicomDate(value: string): CivilDate | null {
  const m = /^(\d{4})(\d{2})(\d{2})$/.exec(value.trim());
  if (!m) return null;
  const c = { y: Number(m[1]), m: Number(m[2]), d: Number(m[3]) };
  if (c.m < 1 || c.m > 12 || c.d < 1 || c.d > daysInMonth(c.y, c.m)) return null;
  return c;
}

/** The UTC civil date of an instant. */
export function dateOf(t: Date): CivilDate {
  return { y: t.getUTCFullYear(), m: t.getUTCMonth() + 1, d: t.getUTCDate() };
}

export function toIsoDate(t: Date): string {
  return iso(dateOf(t));
}

/**
 * date + years/months/days. When the day does not exist in the target month (29 February in a
 * common year, 31 in a 30-day month) the result is the first day of the next month: retention
 * ends a day later rather than earlier.
 */
export function addPeriod(date: CivilDate, years: number, months = 0, days = 0): CivilDate {
  const total = date.m - 1 + months;
  let y = date.y + years + Math.floor(total / 12);
  let m = (((total % 12) + 12) % 12) + 1;
  let d = date.d;
  if (d > daysInMonth(y, m)) {
    d = 1;
    m += 1;
    if (m > 12) {
      m = 1;
      y += 1;
    }
  }
  // setUTCFullYear (unlike Date.UTC) keeps years 0-99 as they are, and carries extra days over.
  const t = new Date(0);
  t.setUTCFullYear(y, m - 1, d + days);
  return dateOf(t);
}

const cmp = (a: CivilDate, b: CivilDate) => a.y - b.y || a.m - b.m || a.d - b.d;

/** Whole years of age on `on` (the birthday counts as for addPeriod: 29 Feb -> 1 Mar in common years). */
export function ageOn(birth: CivilDate, on: CivilDate): number {
  let n = on.y - birth.y;
  if (cmp(addPeriod(birth, n), on) > 0) n -= 1;
  return n;
}

/** DICOM wildcard match (* any run, ? one character), case-insensitive, whole value. */
export function wildcardMatch(pattern: string, value: string): boolean {
  const re = pattern
    .trim()
    .toUpperCase()
    .replace(/[.+^${}()|[\]\\]/g, '\\$&')
    .replace(/\*/g, '.*')
    .replace(/\?/g, '.');
  return new RegExp(`^${re}$`, 's').test(value.trim().toUpperCase());
}

const norm = (s: string) => s.trim().toUpperCase();
const anyOf = (wanted: string[], have: string[], fold: (s: string) => string) => {
  const set = new Set(have.map(fold));
  return wanted.some((w) => set.has(fold(w)));
};

/** Null when the rule matches, else the first criterion that does not. */
export function mismatch(criteria: RuleCriteria, s: StudyFacts): string | null {
  if (criteria.modalities?.length && !anyOf(criteria.modalities, s.modalities, norm)) return 'modalities';
  if (criteria.sourceAes?.length && !anyOf(criteria.sourceAes, s.sourceAes, (x) => x.trim())) return 'sourceAes';
  if (criteria.institutions?.length && !anyOf(criteria.institutions, s.institutions, norm)) return 'institutions';
  if (criteria.sopClassUids?.length && !anyOf(criteria.sopClassUids, s.sopClassUids, (x) => x.trim())) return 'sopClassUids';
  if (criteria.studyDescription !== undefined && !wildcardMatch(criteria.studyDescription, s.studyDescription)) return 'studyDescription';
  if (criteria.minPatientAge !== undefined || criteria.maxPatientAge !== undefined) {
    const birth = parseDicomDate(s.patientBirthDate);
    const study = parseDicomDate(s.studyDate);
    // Unknown age matches no age criterion.
    if (!birth || !study) return criteria.minPatientAge !== undefined ? 'minPatientAge' : 'maxPatientAge';
    const age = ageOn(birth, study);
    if (criteria.minPatientAge !== undefined && age < criteria.minPatientAge) return 'minPatientAge';
    if (criteria.maxPatientAge !== undefined && age >= criteria.maxPatientAge) return 'maxPatientAge';
  }
  return null;
}

function anchorDate(anchor: Anchor, s: StudyFacts): CivilDate | null {
  switch (anchor) {
    case Anchor.StudyDate:
      return parseDicomDate(s.studyDate);
    case Anchor.PatientBirth:
      return parseDicomDate(s.patientBirthDate);
    case Anchor.IngestDate:
      return dateOf(s.ingestedAt);
    case Anchor.LastAccess:
      return dateOf(s.lastAccessAt && s.lastAccessAt > s.ingestedAt ? s.lastAccessAt : s.ingestedAt);
  }
}

/** ISO dates compare as strings; null is "indefinite" (later than any date). */
function later(a: string | null, b: string | null): string | null {
  if (a === null || b === null) return null;
  return a >= b ? a : b;
}

export function evaluateRule(rule: Rule, s: StudyFacts): RuleEvaluation {
  const miss = mismatch(rule.criteria, s);
  const periods = rule.periods.map((p): PeriodEvaluation => {
    const from = anchorDate(p.anchor, s);
    return { ...p, from: from && iso(from), until: from && iso(addPeriod(from, p.years, p.months ?? 0, p.days ?? 0)) };
  });
  const endsOn = miss ? null : periods.map((p) => p.until).reduce<string | null>((a, b) => later(a, b), periods[0]?.until ?? null);
  return {
    ruleId: rule.id,
    version: rule.version,
    name: rule.name,
    matched: !miss,
    ...(miss ? { mismatch: miss } : {}),
    periods,
    endsOn,
    action: rule.action,
    autoPurge: rule.autoPurge,
  };
}

/** The study's expiry under a set of rules: the longest retention of the matching rules wins. */
export function computeExpiry(rules: Rule[], s: StudyFacts): Expiry {
  const evaluations = rules.map((r) => evaluateRule(r, s));
  let winner: RuleEvaluation | null = null;
  for (const e of evaluations) {
    if (!e.matched) continue;
    if (!winner) {
      winner = e;
      continue;
    }
    const w = winner.endsOn;
    const c = e.endsOn;
    // Longer wins; on a tie, review beats delete (a human looks first), then the lower rule id.
    const longer = (c === null && w !== null) || (c !== null && w !== null && c > w);
    const tie = c === w;
    if (longer || (tie && e.action === RuleAction.FlagForReview && winner.action === RuleAction.Delete)) winner = e;
  }
  return { expiresOn: winner ? winner.endsOn : null, winner, evaluations };
}

/** Has a study with this expiry expired on `today` (YYYY-MM-DD)? It may be purged from its expiry date on. */
export function isExpired(expiresOn: string | null, today: string): boolean {
  return expiresOn !== null && expiresOn <= today;
}
