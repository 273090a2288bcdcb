import { VNA_CONFIG, type VnaConfig } from '#vna/config';
import { Inject, Injectable, Logger } from '@nestjs/common';
import { CapacityRepository } from '../capacity/capacity.repository.js';
import { MoveRepository } from '../move.repository.js';
import { TieringError, TieringErrorCode } from '../tiering.errors.js';
import { TieringService } from '../tiering.service.js';
import type { LifecyclePolicyDto } from './policy.dto.js';
import { type PolicyVersion, PolicyRepository } from './policy.repository.js';
import { type LifecyclePlan, type LifecycleRule, planMoves, type StudyFacts } from './rules.js';

const FACTS_BATCH = 500;
export const DEFAULT_SETTLE_MINUTES = 60;

export interface EvaluationResult extends LifecyclePlan {
  dryRun: boolean;
  policyVersion: number;
  evaluatedAt: Date;
  studiesEvaluated: number;
  /**
   * Studies not considered: still receiving (settle time), with an unfinished move, or promoted
   * on access within VNA_PROMOTE_KEEP_S (left on hot).
   */
  skipped: { settling: number; moving: number; promoted: number };
  /** Without dryRun: the moves journaled (or already unfinished to the same tier). */
  enqueued?: Array<{ studyIuid: string; moveId: string }>;
  /** Without dryRun: studies whose unfinished move goes elsewhere (left alone). */
  conflicts?: string[];
}

/** The lifecycle policy: versioned rules, evaluation into a plan with costs, and the moves it calls for. */
@Injectable()
export class LifecycleService {
  private readonly logger = new Logger(LifecycleService.name);

  constructor(
    private readonly policies: PolicyRepository,
    private readonly moves: MoveRepository,
    private readonly tiering: TieringService,
    private readonly capacity: CapacityRepository,
    @Inject(VNA_CONFIG) private readonly config: VnaConfig,
  ) {}

  /** The policy in force (version 0 with no rules until one is saved), or an earlier version. */
  async policy(version?: number): Promise<PolicyVersion | undefined> {
    if (version !== undefined) return this.policies.byVersion(version);
    return (await this.policies.latest()) ?? { version: 0, rules: [], settleMinutes: DEFAULT_SETTLE_MINUTES, createdBy: '', createdAt: new Date(0) };
  }

  versions() {
    return this.policies.versions();
  }

  /** Saves the policy as a new version. Every rule's target must be a configured tier. */
  async save(dto: LifecyclePolicyDto, by: string): Promise<PolicyVersion> {
    const tiers = this.tiering.tierIds();
    dto.rules.forEach((r, i) => {
      if (!tiers.includes(r.targetTier)) {
        throw new TieringError(TieringErrorCode.UnknownTier, `rules.${i}.targetTier must be one of ${tiers.join(', ')}`);
      }
    });
    const rules: LifecycleRule[] = dto.rules.map((r) => ({ name: r.name, match: { ...r.match }, targetTier: r.targetTier }));
    const saved = await this.policies.save(rules, dto.settleMinutes ?? DEFAULT_SETTLE_MINUTES, by);
    this.logger.log(`lifecycle policy version ${saved.version} saved by ${by} (${rules.length} rules)`);
    return saved;
  }

  /** Evaluates the policy in force over every indexed study; without dryRun, journals and enqueues the moves. */
  async evaluate({ dryRun }: { dryRun: boolean }, now = new Date()): Promise<EvaluationResult> {
    const policy = (await this.policy())!;
    const settleBefore = now.getTime() - policy.settleMinutes * 60_000;
    const candidates: StudyFacts[] = [];
    const skipped = { settling: 0, moving: 0, promoted: 0 };
    let studiesEvaluated = 0;
    const inFlight = new Set(await this.moves.studiesWithWork());
    const promoted = await this.capacity.promotedSince(new Date(now.getTime() - this.config.promoteKeepMs));
    for (let after = '0'; ; ) {
      const batch = await this.policies.studyFacts(after, FACTS_BATCH);
      if (!batch.length) break;
      after = batch[batch.length - 1]!.id;
      for (const s of batch) {
        studiesEvaluated++;
        if (s.lastReceivedAt.getTime() > settleBefore) skipped.settling++;
        else if (inFlight.has(s.studyIuid)) skipped.moving++;
        else if (promoted.has(s.studyIuid)) skipped.promoted++;
        else candidates.push(s);
      }
    }
    // Costs from the tiers' configured prices.
    const plan = planMoves(policy.rules, candidates, this.config.tiers, now);
    const result: EvaluationResult = { dryRun, policyVersion: policy.version, evaluatedAt: now, studiesEvaluated, skipped, ...plan };
    if (dryRun) return result;
    result.enqueued = [];
    result.conflicts = [];
    for (const m of plan.moves) {
      try {
        const { move } = await this.tiering.requestMove(m.studyIuid, m.to, `lifecycle-policy v${policy.version} (${m.rule})`);
        result.enqueued.push({ studyIuid: m.studyIuid, moveId: move.id });
      } catch (e) {
        if (e instanceof TieringError && e.code === TieringErrorCode.MoveInProgress) result.conflicts.push(m.studyIuid);
        else throw e;
      }
    }
    if (plan.moves.length) this.logger.log(`lifecycle policy v${policy.version}: ${result.enqueued.length} moves enqueued`);
    return result;
  }

  /** The scheduled job. */
  async handleEvaluate(): Promise<void> {
    await this.evaluate({ dryRun: false });
  }
}
