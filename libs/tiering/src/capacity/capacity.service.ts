import { AuditEventRepository } from '#vna/catalog';
import { HOT_TIER_ID, type TierConfig, VNA_CONFIG, type VnaConfig } from '#vna/config';
import { Inject, Injectable, Logger } from '@nestjs/common';
import { MoveRepository } from '../move.repository.js';
import { DEFAULT_SETTLE_MINUTES } from '../policy/lifecycle.service.js';
import { type AccessCursor, PolicyRepository } from '../policy/policy.repository.js';
import { TieringError, TieringErrorCode } from '../tiering.errors.js';
import { TieringService, type TierView } from '../tiering.service.js';
import { CapacityRepository, type FilesystemUsage, WATERMARK_REQUESTER } from './capacity.repository.js';
import { bytesAt, DemotionPlanner, type PlannedDemotion, watermarkState, type WatermarkState } from './watermarks.js';

const CANDIDATES_BATCH = 200;

/** The watermark state of the hot tier (GET /api/storage/tiers, the capacity check). */
export interface CapacityView {
  /** `config`: capacityBytes of VNA_TIERS; `filesystem`: the size of the tier's filesystem (statfs). */
  capacityBytes: number;
  capacitySource: 'config' | 'filesystem';
  /** `database`: bytes of the objects the archive keeps there (with capacityBytes); `filesystem`: statfs (without). */
  usedBytes: number;
  usedSource: 'database' | 'filesystem';
  usedPercent: number;
  highWatermark: number;
  lowWatermark: number;
  highBytes: number;
  lowBytes: number;
  state: WatermarkState;
  /** Unfinished moves the capacity check journaled. */
  demotionsInFlight: number;
  /** Bytes unfinished moves away from hot will free (counted as gone by the next check). */
  leavingBytes: number;
  /** Always the database's figure, whichever measure decides. */
  databaseBytes: number;
  /** fs tiers: what statfs says of the filesystem. */
  filesystem?: FilesystemUsage;
}

export interface CapacityCheckResult {
  dryRun: boolean;
  tier: string;
  checkedAt: Date;
  policyVersion: number;
  before: CapacityView;
  /** Usage once the planned demotions and the moves in flight are done. */
  projectedBytes: number;
  /** Least recently accessed first. Without dryRun each has the id of its journaled move. */
  demotions: Array<PlannedDemotion & { moveId?: string }>;
  /** Studies passed over: still receiving (settle time), moving or restoring, kept on hot by the policy, matched by no rule. */
  skipped: { settling: number; moving: number; pinned: number; noRule: number };
  /** False if the allowed studies were not enough to go below the low watermark. */
  reachesLow: boolean;
  /** Without dryRun: studies whose move could not be journaled (a move elsewhere began meanwhile, or a purge). */
  conflicts?: string[];
}

/**
 * Capacity watermarks of the hot tier. Above the high watermark, the least recently accessed
 * studies that the lifecycle policy allows to leave hot (watermarks.ts: demotionVerdict) are moved
 * to the tier the policy names — journaled moves like any other (requested_by
 * `capacity-watermark (<rule>)`) — until the projected usage is below the low watermark.
 */
@Injectable()
export class CapacityService {
  private readonly logger = new Logger(CapacityService.name);

  constructor(
    private readonly capacity: CapacityRepository,
    private readonly policies: PolicyRepository,
    private readonly moves: MoveRepository,
    private readonly tiering: TieringService,
    private readonly audit: AuditEventRepository,
    @Inject(VNA_CONFIG) private readonly config: VnaConfig,
  ) {}

  private hot(): TierConfig & { capacity: NonNullable<TierConfig['capacity']> } {
    const hot = this.config.tiers.find((t) => t.id === HOT_TIER_ID);
    if (!hot?.capacity) {
      throw new TieringError(TieringErrorCode.NoWatermarks, `the "${HOT_TIER_ID}" tier has no capacity watermarks (VNA_TIERS: highWatermark, lowWatermark)`);
    }
    return hot as TierConfig & { capacity: NonNullable<TierConfig['capacity']> };
  }

  /** True if the hot tier has watermarks. */
  configured(): boolean {
    return this.config.tiers.some((t) => t.id === HOT_TIER_ID && t.capacity);
  }

  /**
   * The hot tier's watermark state. With capacityBytes the usage is the database's bytes (what
   * the archive stores and controls); without (a filesystem tier), statfs decides: the
   * filesystem's size and its used bytes, whatever fills it.
   */
  async status(): Promise<CapacityView> {
    const hot = this.hot();
    const { capacityBytes, highWatermark, lowWatermark } = hot.capacity;
    const byStatfs = capacityBytes === undefined;
    const [{ storedBytes: databaseBytes, leavingBytes }, demotionsInFlight, filesystem] = await Promise.all([
      this.capacity.usage(hot.id, byStatfs),
      this.capacity.demotionsInFlight(),
      hot.kind === 'fs' ? this.capacity.filesystem(hot.path) : Promise.resolve(undefined),
    ]);
    const capacity = capacityBytes ?? filesystem!.sizeBytes;
    const usedBytes = byStatfs ? filesystem!.usedBytes : databaseBytes;
    const levels = { capacityBytes: capacity, highWatermark, lowWatermark };
    return {
      capacityBytes: capacity,
      capacitySource: byStatfs ? 'filesystem' : 'config',
      usedBytes,
      usedSource: byStatfs ? 'filesystem' : 'database',
      usedPercent: capacity > 0 ? Math.round((usedBytes / capacity) * 10_000) / 100 : 0,
      highWatermark,
      lowWatermark,
      highBytes: bytesAt(capacity, highWatermark),
      lowBytes: bytesAt(capacity, lowWatermark),
      state: watermarkState(usedBytes, levels),
      demotionsInFlight,
      leavingBytes,
      databaseBytes,
      ...(filesystem ? { filesystem } : {}),
    };
  }

  /**
   * One capacity check (one at a time across processes: a PostgreSQL advisory lock; a check
   * that finds it held returns undefined). Without dryRun the demotions are journaled and enqueued.
   */
  async check({ dryRun }: { dryRun: boolean }, now = new Date()): Promise<CapacityCheckResult | undefined> {
    const hot = this.hot();
    return this.capacity.exclusively(`capacity-check:${hot.id}`, () => this.checkLocked(hot, dryRun, now));
  }

  private async checkLocked(hot: ReturnType<CapacityService['hot']>, dryRun: boolean, now: Date): Promise<CapacityCheckResult> {
    const before = await this.status();
    const policy = await this.policies.latest();
    const rules = policy?.rules ?? [];
    const settleBefore = now.getTime() - (policy?.settleMinutes ?? DEFAULT_SETTLE_MINUTES) * 60_000;
    const levels = { capacityBytes: before.capacityBytes, highWatermark: before.highWatermark, lowWatermark: before.lowWatermark };
    const planner = new DemotionPlanner(rules, hot.id, levels, before.usedBytes, before.leavingBytes, now);
    const skipped = { settling: 0, moving: 0 };
    if (planner.wantsMore) {
      const [moving, restoring] = await Promise.all([this.moves.studiesWithWork(), this.capacity.studiesRestoring()]);
      const busy = new Set([...moving, ...restoring]);
      let cursor: AccessCursor | undefined;
      while (planner.wantsMore) {
        const batch = await this.policies.studyFactsByAccess(hot.id, cursor, CANDIDATES_BATCH);
        if (!batch.length) break;
        cursor = batch[batch.length - 1]!.cursor;
        for (const s of batch) {
          if (!planner.wantsMore) break;
          if (s.lastReceivedAt.getTime() > settleBefore) skipped.settling++;
          else if (busy.has(s.studyIuid)) skipped.moving++;
          else planner.offer(s);
        }
      }
    }
    const result: CapacityCheckResult = {
      dryRun,
      tier: hot.id,
      checkedAt: now,
      policyVersion: policy?.version ?? 0,
      before,
      projectedBytes: planner.projectedBytes,
      demotions: planner.demotions,
      skipped: { ...skipped, ...planner.skipped },
      reachesLow: !planner.triggered || planner.projectedBytes < before.lowBytes,
    };
    if (planner.triggered && !result.reachesLow) {
      this.logger.warn(
        `hot tier above its high watermark (${before.usedBytes} of ${before.capacityBytes} bytes): the lifecycle policy allows too few studies to leave it ` +
          `to go below ${before.lowWatermark}% (projected ${planner.projectedBytes} bytes; ${result.skipped.pinned} kept on hot by a rule, ${result.skipped.noRule} matched by none)`,
      );
    }
    if (dryRun || !planner.demotions.length) return result;
    result.conflicts = [];
    for (const d of result.demotions) {
      try {
        const { move, created } = await this.tiering.requestMove(d.studyIuid, d.targetTier, `${WATERMARK_REQUESTER} (${d.rule})`);
        d.moveId = move.id;
        if (!created) continue;
        await this.audit.append([
          {
            type: 'CAPACITY_DEMOTION',
            actor: WATERMARK_REQUESTER,
            studyIuid: d.studyIuid,
            detail: {
              moveId: move.id, fromTier: hot.id, targetTier: d.targetTier, rule: d.rule, policyVersion: result.policyVersion, bytes: d.bytes,
              usedBytes: before.usedBytes, usedSource: before.usedSource, capacityBytes: before.capacityBytes,
              highWatermark: before.highWatermark, lowWatermark: before.lowWatermark,
            },
          },
        ]);
      } catch (e) {
        if (e instanceof TieringError && (e.code === TieringErrorCode.MoveInProgress || e.code === TieringErrorCode.StudyPurging)) result.conflicts.push(d.studyIuid);
        else throw e;
      }
    }
    this.logger.log(
      `hot tier at ${before.usedPercent}% (${before.usedBytes} of ${before.capacityBytes} bytes, high ${before.highWatermark}%): ` +
        `${result.demotions.length} stud${result.demotions.length === 1 ? 'y' : 'ies'} demoted (${result.demotions.reduce((a, d) => a + d.bytes, 0)} bytes), ` +
        `projected ${planner.projectedBytes} bytes (low ${before.lowWatermark}% = ${before.lowBytes})`,
    );
    return result;
  }

  /**
   * GET /api/storage/tiers: each tier with `promoteOnAccess`, and the hot tier with its
   * watermark state (`capacity`) when it has watermarks.
   */
  async withCapacity(tiers: TierView[]): Promise<Array<TierView & { promoteOnAccess: boolean; capacity?: CapacityView | { error: string } }>> {
    const capacity = this.configured() ? await this.status().catch((e: Error) => ({ error: e.message })) : undefined;
    return tiers.map((t) => ({
      ...t,
      promoteOnAccess: this.config.tiers.find((c) => c.id === t.id)?.promoteOnAccess ?? false,
      ...(t.id === HOT_TIER_ID && capacity ? { capacity } : {}),
    }));
  }

  /** The scheduled job (capacity-check). Does nothing when hot has no watermarks. */
  async handleCheck(): Promise<void> {
    if (!this.configured()) return;
    await this.check({ dryRun: false });
  }
}
