/**
 * Capacity watermarks of the hot tier: which studies the lifecycle policy allows to leave hot
 * early, and how many of them (least recently accessed first) bring the usage below the low
 * watermark. Pure code, no I/O.
 */
import { firstMatch, type LifecycleRule, type RuleMatch, type StudyFacts } from '../policy/rules.js';

/** Rule conditions that depend on time: a full hot tier may move a study before they hold. */
const TIME_CONDITIONS = ['minStudyAgeDays', 'minDaysSinceIngest', 'minDaysSinceLastAccess'] as const;

function withoutTimeConditions(rule: LifecycleRule): LifecycleRule {
  const match: RuleMatch = { ...rule.match };
  for (const k of TIME_CONDITIONS) delete match[k];
  return { ...rule, match };
}

export type DemotionVerdict =
  | { allowed: true; rule: string; targetTier: string }
  /** `pinned`: the policy keeps the study on hot; `no-rule`: no rule would ever move it. */
  | { allowed: false; reason: 'pinned' | 'no-rule' };

/**
 * Whether the watermark may demote the study, and where to:
 * 1. the policy's verdict now (first matching rule, every condition): a colder tier → that tier
 *    (the study is due anyway); `hot` → pinned, never demoted;
 * 2. otherwise the first rule that matches when its time conditions (study age, days since ingest,
 *    days since last access) are left out: a colder tier → that tier (the move the policy will
 *    make later, made early); `hot` → pinned;
 * 3. no rule → not demoted: the policy never moves such a study, so neither does the watermark.
 * Demoting only where the policy would send the study anyway means the next policy evaluation
 * never moves it back.
 */
export function demotionVerdict(rules: LifecycleRule[], s: StudyFacts, hotTier: string, now: Date): DemotionVerdict {
  const rule = firstMatch(rules, s, now) ?? firstMatch(rules.map(withoutTimeConditions), s, now);
  if (!rule) return { allowed: false, reason: 'no-rule' };
  if (rule.targetTier === hotTier) return { allowed: false, reason: 'pinned' };
  return { allowed: true, rule: rule.name, targetTier: rule.targetTier };
}

export interface WatermarkLevels {
  capacityBytes: number;
  /** Percentages. */
  highWatermark: number;
  lowWatermark: number;
}

export const bytesAt = (capacityBytes: number, percent: number) => Math.floor((capacityBytes * percent) / 100);

export type WatermarkState = 'above-high' | 'between' | 'below-low';

/** Above the high watermark (strictly), below the low one (strictly), or between. */
export function watermarkState(usedBytes: number, l: WatermarkLevels): WatermarkState {
  if (usedBytes > bytesAt(l.capacityBytes, l.highWatermark)) return 'above-high';
  if (usedBytes < bytesAt(l.capacityBytes, l.lowWatermark)) return 'below-low';
  return 'between';
}

export interface PlannedDemotion {
  studyIuid: string;
  rule: string;
  targetTier: string;
  /** Bytes of the study's current copies on hot (what the move frees there). */
  bytes: number;
  /** Last retrieval, or null if never retrieved (then ordered by ingest). */
  lastAccessAt: Date | null;
}

/**
 * Offered studies in order (least recently accessed first, see CapacityRepository), it picks the
 * ones the policy allows until the projected usage is below the low watermark. Only when the
 * usage is above the high watermark; bytes already leaving hot (moves in flight) count as gone.
 */
export class DemotionPlanner {
  readonly demotions: PlannedDemotion[] = [];
  readonly skipped = { pinned: 0, noRule: 0 };
  readonly triggered: boolean;
  private projected: number;
  private readonly lowBytes: number;

  constructor(
    private readonly rules: LifecycleRule[],
    private readonly hotTier: string,
    levels: WatermarkLevels,
    usedBytes: number,
    leavingBytes: number,
    private readonly now: Date,
  ) {
    this.triggered = watermarkState(usedBytes, levels) === 'above-high';
    this.projected = usedBytes - leavingBytes;
    this.lowBytes = bytesAt(levels.capacityBytes, levels.lowWatermark);
  }

  /** Projected usage once the planned demotions and the moves in flight are done. */
  get projectedBytes(): number {
    return this.projected;
  }

  /** True while more studies are needed. */
  get wantsMore(): boolean {
    return this.triggered && this.projected >= this.lowBytes;
  }

  /** Considers one study (settled, not moving: the caller filters those). Returns wantsMore. */
  offer(s: StudyFacts): boolean {
    if (!this.wantsMore) return false;
    const bytes = s.bytesByTier[this.hotTier] ?? 0;
    if (bytes <= 0) return true;
    const verdict = demotionVerdict(this.rules, s, this.hotTier, this.now);
    if (!verdict.allowed) {
      if (verdict.reason === 'pinned') this.skipped.pinned++;
      else this.skipped.noRule++;
      return true;
    }
    this.demotions.push({ studyIuid: s.studyIuid, rule: verdict.rule, targetTier: verdict.targetTier, bytes, lastAccessAt: s.lastAccessAt });
    this.projected -= bytes;
    return this.wantsMore;
  }
}
