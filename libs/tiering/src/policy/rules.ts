/**
 * Lifecycle rules: pure matching and cost projection (no I/O). A policy is an ordered list of
 * rules; the first rule whose every condition holds for a study (AND) decides its target tier.
 */

export interface RuleMatch {
  /** Any of these modalities in the study. */
  modalities?: string[];
  /** Any instance received from one of these calling AE titles. */
  sourceAes?: string[];
  /** Any series from one of these institutions (InstitutionName, exact). */
  institutions?: string[];
  /** Days since the StudyDate at least this. A study without a StudyDate never matches. */
  minStudyAgeDays?: number;
  /** Days since the study was first received at least this. */
  minDaysSinceIngest?: number;
  /** Days since the last retrieval at least this (never retrieved: counted from ingest). */
  minDaysSinceLastAccess?: number;
  /** Patient age at the study (years, from BirthDate and StudyDate); unknown never matches. */
  minPatientAgeYears?: number;
  maxPatientAgeYears?: number;
  /** Study size in bytes. */
  minStudyBytes?: number;
  maxStudyBytes?: number;
}

export interface LifecycleRule {
  name: string;
  match: RuleMatch;
  targetTier: string;
}

/** What the rules look at, per study (from the index). */
export interface StudyFacts {
  studyIuid: string;
  modalities: string[];
  sourceAes: string[];
  institutions: string[];
  /** DICOM DA (YYYYMMDD) or ''. */
  studyDate: string;
  /** DICOM DA (YYYYMMDD) or ''. */
  patientBirthDate: string;
  createdAt: Date;
  lastAccessAt: Date | null;
  sizeBytes: number;
  /** Bytes of the study's current copies per tier (a spread study has several). */
  bytesByTier: Record<string, number>;
}

const DAY_MS = 86_400_000;

/** A DICOM DA as a UTC date, or null when absent or malformed. */
export function parseDicomDate(da: string): Date | null {
  const m = /^(\d{4})(\d{2})(\d{2})$/.exec(da.trim());
  if (!m) return null;
  const d = new Date(Date.UTC(Number(m[1]), Number(m[2]) - 1, Number(m[3])));
  return d.getUTCMonth() === Number(m[2]) - 1 ? d : null;
}

/** Whole years between two dates (age on `at` of someone born on `birth`). */
export function ageInYears(birth: Date, at: Date): number {
  let years = at.getUTCFullYear() - birth.getUTCFullYear();
  const beforeBirthday =
    at.getUTCMonth() < birth.getUTCMonth() || (at.getUTCMonth() === birth.getUTCMonth() && at.getUTCDate() < birth.getUTCDate());
  if (beforeBirthday) years--;
  return years;
}

const daysBetween = (from: Date, to: Date) => (to.getTime() - from.getTime()) / DAY_MS;
const anyOf = (wanted: string[] | undefined, have: string[]) => wanted === undefined || wanted.some((w) => have.includes(w));

/** Every condition of `match` holds for the study (conditions left out hold). */
export function matches(match: RuleMatch, s: StudyFacts, now: Date): boolean {
  if (!anyOf(match.modalities, s.modalities)) return false;
  if (!anyOf(match.sourceAes, s.sourceAes)) return false;
  if (!anyOf(match.institutions, s.institutions)) return false;
  const studyDate = parseDicomDate(s.studyDate);
  if (match.minStudyAgeDays !== undefined && (studyDate === null || daysBetween(studyDate, now) < match.minStudyAgeDays)) return false;
  if (match.minDaysSinceIngest !== undefined && daysBetween(s.createdAt, now) < match.minDaysSinceIngest) return false;
  if (match.minDaysSinceLastAccess !== undefined && daysBetween(s.lastAccessAt ?? s.createdAt, now) < match.minDaysSinceLastAccess) return false;
  if (match.minPatientAgeYears !== undefined || match.maxPatientAgeYears !== undefined) {
    const birth = parseDicomDate(s.patientBirthDate);
    if (birth === null || studyDate === null) return false;
    const age = ageInYears(birth, studyDate);
    if (match.minPatientAgeYears !== undefined && age < match.minPatientAgeYears) return false;
    if (match.maxPatientAgeYears !== undefined && age > match.maxPatientAgeYears) return false;
  }
  if (match.minStudyBytes !== undefined && s.sizeBytes < match.minStudyBytes) return false;
  if (match.maxStudyBytes !== undefined && s.sizeBytes > match.maxStudyBytes) return false;
  return true;
}

/** The first rule matching the study, or undefined. */
export function firstMatch(rules: LifecycleRule[], s: StudyFacts, now: Date): LifecycleRule | undefined {
  return rules.find((r) => matches(r.match, s, now));
}

export interface PlannedMove {
  studyIuid: string;
  rule: string;
  /** Tiers the study's current copies are on (more than one if spread). */
  from: string[];
  to: string;
  /** Bytes that move (those not already on the target). */
  bytes: number;
}

export interface TierTotals {
  tier: string;
  bytesBefore: number;
  bytesAfter: number;
  monthlyCostBefore: number;
  monthlyCostAfter: number;
}

export interface LifecyclePlan {
  moves: PlannedMove[];
  tiers: TierTotals[];
  totals: { bytesMoved: number; monthlyCostBefore: number; monthlyCostAfter: number };
}

const GB = 1e9;
/** Costs are rounded to 10^-9 of the currency unit (enough for a single small study, no float noise). */
const cents = (x: number) => Math.round(x * 1e9) / 1e9;

/**
 * The moves the rules call for and what each tier holds and costs per month before and after
 * them (bytes / 10^9 × the tier's price per GB-month). A study already wholly on its rule's
 * target is not moved.
 */
export function planMoves(
  rules: LifecycleRule[],
  studies: StudyFacts[],
  prices: Array<{ id: string; pricePerGbMonth: number }>,
  now: Date,
): LifecyclePlan {
  const before = new Map(prices.map((p) => [p.id, 0]));
  const after = new Map(prices.map((p) => [p.id, 0]));
  const moves: PlannedMove[] = [];
  for (const s of studies) {
    for (const [tier, bytes] of Object.entries(s.bytesByTier)) {
      before.set(tier, (before.get(tier) ?? 0) + bytes);
      after.set(tier, (after.get(tier) ?? 0) + bytes);
    }
    const rule = firstMatch(rules, s, now);
    if (!rule) continue;
    const moving = Object.entries(s.bytesByTier).filter(([tier]) => tier !== rule.targetTier);
    if (!moving.length) continue;
    const bytes = moving.reduce((a, [, b]) => a + b, 0);
    for (const [tier, b] of moving) after.set(tier, after.get(tier)! - b);
    after.set(rule.targetTier, (after.get(rule.targetTier) ?? 0) + bytes);
    moves.push({ studyIuid: s.studyIuid, rule: rule.name, from: Object.keys(s.bytesByTier).sort(), to: rule.targetTier, bytes });
  }
  const price = new Map(prices.map((p) => [p.id, p.pricePerGbMonth]));
  const tiers = [...before.keys()].map((tier) => ({
    tier,
    bytesBefore: before.get(tier)!,
    bytesAfter: after.get(tier)!,
    monthlyCostBefore: cents((before.get(tier)! / GB) * (price.get(tier) ?? 0)),
    monthlyCostAfter: cents((after.get(tier)! / GB) * (price.get(tier) ?? 0)),
  }));
  return {
    moves,
    tiers,
    totals: {
      bytesMoved: moves.reduce((a, m) => a + m.bytes, 0),
      monthlyCostBefore: cents(tiers.reduce((a, t) => a + t.monthlyCostBefore, 0)),
      monthlyCostAfter: cents(tiers.reduce((a, t) => a + t.monthlyCostAfter, 0)),
    },
  };
}
