import { AuditEventRepository } from '#vna/catalog';
import { HOT_TIER_ID, VNA_CONFIG, type VnaConfig } from '#vna/config';
import { Inject, Injectable, Logger } from '@nestjs/common';
import { DEFAULT_SETTLE_MINUTES } from '../policy/lifecycle.service.js';
import { PolicyRepository } from '../policy/policy.repository.js';
import { TieringError, TieringErrorCode } from '../tiering.errors.js';
import { TieringService } from '../tiering.service.js';
import { CapacityRepository, PROMOTION_REQUESTER } from './capacity.repository.js';
import { CapacityService } from './capacity.service.js';

/**
 * Promotion on access: a study retrieved while some of its current copies are on a tier with
 * `promoteOnAccess` gets a journaled move back to hot (requested_by `promote-on-access`). Called
 * by the access tracker after its batched flush, never on a retrieval's path.
 */
@Injectable()
export class PromotionService {
  private readonly logger = new Logger(PromotionService.name);
  private readonly tiers: string[];

  constructor(
    private readonly capacity: CapacityRepository,
    private readonly watermarks: CapacityService,
    private readonly policies: PolicyRepository,
    private readonly tiering: TieringService,
    private readonly audit: AuditEventRepository,
    @Inject(VNA_CONFIG) config: VnaConfig,
  ) {
    this.tiers = config.tiers.filter((t) => t.promoteOnAccess).map((t) => t.id);
  }

  /** True if any tier has promoteOnAccess. */
  enabled(): boolean {
    return this.tiers.length > 0;
  }

  /**
   * Journals and enqueues the promotion of each accessed study that qualifies: current copies on
   * a promoting tier, no unfinished move or restore, settled (the policy's settleMinutes), and the
   * hot tier not above its high watermark. Returns the promoted studies.
   */
  async afterAccess(studyUids: string[], now = new Date()): Promise<string[]> {
    if (!this.enabled() || !studyUids.length) return [];
    const policy = await this.policies.latest();
    const settledBefore = new Date(now.getTime() - (policy?.settleMinutes ?? DEFAULT_SETTLE_MINUTES) * 60_000);
    const due = await this.capacity.promotable(studyUids, this.tiers, settledBefore);
    if (!due.length) return [];
    if (this.watermarks.configured()) {
      const hot = await this.watermarks.status();
      if (hot.state === 'above-high') {
        this.logger.warn(`${due.length} stud${due.length === 1 ? 'y' : 'ies'} not promoted: the hot tier is above its high watermark (${hot.usedPercent}%)`);
        return [];
      }
    }
    const promoted: string[] = [];
    for (const { studyIuid, fromTiers } of due) {
      try {
        const { move, created } = await this.tiering.requestMove(studyIuid, HOT_TIER_ID, PROMOTION_REQUESTER);
        if (!created) continue;
        promoted.push(studyIuid);
        await this.audit.append([{ type: 'STUDY_PROMOTION', actor: PROMOTION_REQUESTER, studyIuid, detail: { moveId: move.id, fromTiers, targetTier: HOT_TIER_ID } }]);
      } catch (e) {
        // Another move began meanwhile, or a purge: not promoted this time.
        if (!(e instanceof TieringError) || (e.code !== TieringErrorCode.MoveInProgress && e.code !== TieringErrorCode.StudyPurging)) throw e;
      }
    }
    if (promoted.length) this.logger.log(`promoted on access to ${HOT_TIER_ID}: ${promoted.join(', ')}`);
    return promoted;
  }
}
