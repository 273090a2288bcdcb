import { JobName, JobQueueService } from '#vna/jobs';
import { Injectable, Logger } from '@nestjs/common';
import { computeExpiry, isExpired, toIsoDate, ageOn, parseDicomDate } from './expiry.js';
import { HoldsRepository } from './holds.repository.js';
import { RetentionError, RetentionErrorCode } from './http.js';
import { RulesRepository, type RuleSet } from './rules.repository.js';
import { type ComputedExpiry, StudiesRepository } from './studies.repository.js';

/** Studies evaluated per statement pair (facts read, expiries written). */
const BATCH = 200;

export const todayUtc = () => toIsoDate(new Date());

/** Each study's expiry: the background recomputation and the per-study explanation. */
@Injectable()
export class ExpiryService {
  private readonly logger = new Logger('RetentionExpiry');

  constructor(
    private readonly rules: RulesRepository,
    private readonly studies: StudiesRepository,
    private readonly holds: HoldsRepository,
    private readonly jobs: JobQueueService,
  ) {}

  /** Ask for a recomputation (the job is deduplicated and coalesced). */
  async requestEvaluation(): Promise<void> {
    await this.jobs.queue({ name: JobName.RetentionEvaluate, data: {} });
  }

  /**
   * Recompute every stale expiry (missing, or computed under other rules or older study data),
   * in batches; one pass visits each study at most once. Returns how many were computed.
   */
  async handleEvaluate(): Promise<number> {
    let after = '0';
    let total = 0;
    for (;;) {
      const set = await this.rules.ruleSet();
      const ids = await this.studies.stale(set.revision, after, BATCH);
      if (!ids.length) break;
      await this.compute(set, ids);
      total += ids.length;
      after = ids[ids.length - 1]!;
    }
    if (total) this.logger.log(`retention expiry computed for ${total} study(ies)`);
    return total;
  }

  /** One study's expiry, when stale (its instances were just indexed). */
  async handleEvaluateStudy({ studyIuid }: { studyIuid: string }): Promise<boolean> {
    const set = await this.rules.ruleSet();
    const id = await this.studies.staleStudy(set.revision, studyIuid);
    if (id) await this.compute(set, [id]);
    return id !== null;
  }

  private async compute(set: RuleSet, ids: string[]): Promise<void> {
    const rows = await this.studies.facts(ids);
    await this.studies.save(
      set.revision,
      rows.map((r): ComputedExpiry => {
        const e = computeExpiry(set.rules, r.facts);
        return {
          studyFk: r.studyFk,
          expiresOn: e.expiresOn,
          ruleId: e.winner?.ruleId ?? null,
          ruleVersion: e.winner?.version ?? null,
          action: e.winner?.action ?? null,
          autoPurge: e.winner?.autoPurge ?? false,
          basisUpdatedAt: r.basisUpdatedAt,
          basisLastAccessAt: r.basisLastAccessAt,
        };
      }),
    );
  }

  /** After a sweep left the queue: a change that arrived while it ran could not enqueue (its id was taken). */
  async afterEvaluate(): Promise<void> {
    const set = await this.rules.ruleSet();
    if ((await this.studies.countStale(set.revision)) > 0) {
      await this.jobs.queue({ name: JobName.RetentionEvaluate, data: {} }, { coalesce: false });
    }
  }

  /** GET /api/studies/{uid}/retention: every rule's verdict and end date, the winner, holds, what is stored. */
  async explain(studyIuid: string) {
    const fk = await this.studies.findStudyFk(studyIuid);
    if (!fk) throw new RetentionError(RetentionErrorCode.NotFound, `study ${studyIuid} is not in the archive`);
    const [row] = await this.studies.facts([fk]);
    if (!row) throw new RetentionError(RetentionErrorCode.NotFound, `study ${studyIuid} is not in the archive`);
    const set = await this.rules.ruleSet();
    const e = computeExpiry(set.rules, row.facts);
    const holds = await this.holds.covering(studyIuid, row.patientId, row.issuer);
    const today = todayUtc();
    const birth = parseDicomDate(row.facts.patientBirthDate);
    const studyDate = parseDicomDate(row.facts.studyDate);
    return {
      studyInstanceUid: studyIuid,
      state: row.state,
      today,
      facts: {
        ...row.facts,
        patientId: row.patientId,
        issuer: row.issuer,
        ingestedAt: row.facts.ingestedAt.toISOString(),
        lastAccessAt: row.facts.lastAccessAt?.toISOString() ?? null,
        patientAgeAtStudy: birth && studyDate ? ageOn(birth, studyDate) : null,
        sizeBytes: Number(row.sizeBytes),
        numInstances: row.numInstances,
      },
      rules: e.evaluations,
      winner: e.winner && { ruleId: e.winner.ruleId, version: e.winner.version, name: e.winner.name, endsOn: e.winner.endsOn, action: e.winner.action },
      expiresOn: e.expiresOn,
      expired: isExpired(e.expiresOn, today),
      held: holds.length > 0,
      holds,
      stored: await this.studies.stored(fk, set.revision),
      purge: await this.studies.openPurge(studyIuid),
    };
  }
}
