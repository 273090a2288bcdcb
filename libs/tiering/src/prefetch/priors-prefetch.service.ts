import { VNA_CONFIG, type VnaConfig } from '#vna/config';
import { PREFETCH_RESTORE_PRIORITY } from '#vna/jobs';
import { Inject, Injectable, Logger } from '@nestjs/common';
import { RestoreRequestService } from '../restore-request.service.js';
import { TieringError } from '../tiering.errors.js';
import { PriorsPrefetchRepository } from './priors-prefetch.repository.js';

/** `requested_by` of the restores the prefetch asks for (study_restore). */
export const PREFETCH_REQUESTER = 'priors-prefetch';

/**
 * Priors prefetch (VNA_PRIORS_PREFETCH): radiologists read a new study against the patient's
 * earlier ones, so when a new study is indexed, the patient's VNA_PRIORS_COUNT most recent priors
 * (VNA_PRIORS_SAME_MODALITY: sharing a modality with it) are looked up, and those whose copies
 * are on offline tiers are restored through the journaled restore requests, at a priority below
 * restores someone waits for. Runs once per new study (priors_prefetch); never part of indexing:
 * the indexer only enqueues the job.
 */
@Injectable()
export class PriorsPrefetchService {
  private readonly logger = new Logger(PriorsPrefetchService.name);
  private readonly hasOfflineTiers: boolean;

  constructor(
    private readonly repo: PriorsPrefetchRepository,
    private readonly restores: RestoreRequestService,
    @Inject(VNA_CONFIG) private readonly config: VnaConfig,
  ) {
    this.hasOfflineTiers = config.tiers.some((t) => t.availability === 'offline');
  }

  async handlePriorsPrefetch({ studyIuid }: { studyIuid: string }): Promise<void> {
    const { enabled, count, sameModality } = this.config.priorsPrefetch;
    if (!enabled || !this.hasOfflineTiers) return;
    if ((await this.repo.claim(studyIuid)) === 'done') return;
    const study = await this.repo.newStudy(studyIuid);
    if (!study || study.patientId === '') {
      // Without a PatientID there is no patient to find priors of (every such study shares the empty ID).
      await this.repo.finish(studyIuid, { priors: [], restored: [], error: study ? 'no PatientID' : 'study not indexed' }, { skipped: study ? 'no PatientID' : 'study not indexed' });
      return;
    }
    const priors = await this.repo.priors(studyIuid, { count, sameModality });
    const restored: string[] = [];
    const restoreIds: string[] = [];
    for (const prior of priors) {
      try {
        const r = await this.restores.request(prior.studyIuid, PREFETCH_REQUESTER, { priority: PREFETCH_RESTORE_PRIORITY });
        if (r.kind === 'scheduled') {
          restored.push(prior.studyIuid);
          restoreIds.push(r.restore.id);
        }
      } catch (e) {
        if (!(e instanceof TieringError)) throw e; // a prior purged meanwhile: nothing to restore
      }
    }
    const finished = await this.repo.finish(studyIuid, { priors: priors.map((p) => p.studyIuid), restored, error: null }, {
      patientId: study.patientId,
      issuer: study.issuer,
      rule: { count, sameModality, modalities: study.modalities },
      priors: priors.map((p) => ({ studyInstanceUid: p.studyIuid, studyDate: p.studyDate, modalities: p.modalities })),
      restoresRequested: restored.map((s, i) => ({ studyInstanceUid: s, restoreId: restoreIds[i] })),
    });
    if (finished && priors.length) {
      this.logger.log(
        `priors prefetch for study ${studyIuid} (patient ${study.patientId}${study.issuer ? `^${study.issuer}` : ''}): ` +
          `${priors.length} prior(s), ${restored.length} restore(s) requested${restored.length ? `: ${restored.join(', ')}` : ''}`,
      );
    }
  }

  /** Unfinished prefetches (for the tiering reconciler). */
  pending(): Promise<string[]> {
    return this.repo.pending();
  }
}
