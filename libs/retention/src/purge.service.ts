import { type VnaConfig, VNA_CONFIG } from '#vna/config';
import { JobName, JobQueueService } from '#vna/jobs';
import { STORAGE_REGISTRY, type StorageRegistry } from '#vna/storage';
import { Inject, Injectable, Logger } from '@nestjs/common';
import { setTimeout as sleep } from 'node:timers/promises';
import { computeExpiry, isExpired, RuleAction } from './expiry.js';
import { ExpiryService, todayUtc } from './expiry.service.js';
import { RetentionError, RetentionErrorCode } from './http.js';
import {
  type DeletedCopy,
  type PurgeBatch,
  type PurgeEntry,
  PurgesRepository,
  PurgeState,
  PurgeStudyState,
  type StartDecision,
} from './purges.repository.js';
import { type ExpiredStudy, StudiesRepository } from './studies.repository.js';

/** Journal instances read per round while deleting copies. */
const INSTANCE_BATCH = 100;
/** A study whose instances keep gaining copies while being purged is retried this often, then the job fails (and retries later). */
const FINISH_ATTEMPTS = 5;

/**
 * Purges: batches built from the expired list, approved (or auto-approved), then run from their
 * journal so that a crash at any point resumes where it stopped:
 *   study PENDING --(one transaction: re-check rules and holds, study PURGING, journal of its instances)--> PURGING
 *   instance PENDING --(every copy on every storage its location rows name deleted, absence checked)--> OBJECTS_DELETED
 *   study --(one transaction: location, instance, empty series/study/patient rows deleted; audited)--> DELETED
 */
/** Who creates the batches of auto-purge rules (the retention sweeper). */
export const AUTO_PURGE_CREATOR = 'retention-auto-purge';

@Injectable()
export class PurgeService {
  private readonly logger = new Logger('RetentionPurge');

  constructor(
    private readonly purges: PurgesRepository,
    private readonly studies: StudiesRepository,
    private readonly expiry: ExpiryService,
    private readonly jobs: JobQueueService,
    @Inject(STORAGE_REGISTRY) private readonly storages: StorageRegistry,
    @Inject(VNA_CONFIG) private readonly config: VnaConfig,
  ) {}

  /** Expired, unheld studies not yet in a purge batch (expiries brought up to date first). */
  async expired(limit: number, offset: number) {
    await this.expiry.handleEvaluate();
    const today = todayUtc();
    const page = await this.studies.expired(today, limit, offset);
    return { today, total: page.total, limit, offset, items: page.items.map(publicExpired), maxPerRun: this.config.retention.purgeMaxPerRun };
  }

  /** A batch from the current expired list (all `delete` studies, or exactly the listed ones), at most VNA_PURGE_MAX_PER_RUN. */
  async create(actor: string, studyUids: string[] | undefined) {
    await this.expiry.handleEvaluate();
    const today = todayUtc();
    const all: ExpiredStudy[] = [];
    for (let offset = 0; ; offset += 1000) {
      const page = await this.studies.expired(today, 1000, offset);
      all.push(...page.items);
      if (page.items.length < 1000) break;
    }
    let candidates: ExpiredStudy[];
    if (studyUids) {
      const byUid = new Map(all.map((s) => [s.studyInstanceUid, s]));
      const missing = [...new Set(studyUids)].filter((u) => !byUid.has(u));
      if (missing.length) {
        throw new RetentionError(
          RetentionErrorCode.Invalid,
          `studyInstanceUids: not in the expired list (not expired, held, or already in a batch): ${missing.slice(0, 20).join(', ')}`,
        );
      }
      candidates = [...new Set(studyUids)].map((u) => byUid.get(u)!);
    } else {
      // flag-for-review studies are purged only when named explicitly (after review).
      candidates = all.filter((s) => s.rule.action === RuleAction.Delete);
    }
    if (!candidates.length) throw new RetentionError(RetentionErrorCode.Conflict, 'no expired study to purge');
    const max = this.config.retention.purgeMaxPerRun;
    const chosen = candidates.slice(0, max);
    const requiresApproval = !chosen.every((s) => s.rule.autoPurge && s.rule.action === RuleAction.Delete);
    const id = await this.purges.create(actor, chosen, max, candidates.length - chosen.length, requiresApproval);
    this.logger.log(`purge ${id}: ${chosen.length} study(ies) by ${actor}${requiresApproval ? ', awaiting approval' : ', auto-approved'}`);
    if (!requiresApproval) await this.enqueue(id);
    return this.report(id);
  }

  /**
   * The sweeper's part of auto-purge: a batch of the expired studies whose winning rule is a
   * `delete` rule explicitly marked `autoPurge` (at most VNA_PURGE_MAX_PER_RUN), run without
   * approval. Returns the batch id, or undefined when there is nothing to purge.
   */
  async createAutoPurge(): Promise<string | undefined> {
    await this.expiry.handleEvaluate();
    const today = todayUtc();
    const auto: string[] = [];
    for (let offset = 0; ; offset += 1000) {
      const page = await this.studies.expired(today, 1000, offset);
      for (const s of page.items) if (s.rule.autoPurge && s.rule.action === RuleAction.Delete) auto.push(s.studyInstanceUid);
      if (page.items.length < 1000) break;
    }
    if (!auto.length) return undefined;
    const report = await this.create(AUTO_PURGE_CREATOR, auto.slice(0, this.config.retention.purgeMaxPerRun));
    return report.id;
  }

  async approve(id: string, actor: string) {
    await this.purges.approve(id, actor);
    this.logger.log(`purge ${id} approved by ${actor}`);
    await this.enqueue(id);
    return this.report(id);
  }

  async reject(id: string, actor: string, reason: string) {
    await this.purges.reject(id, actor, reason);
    this.logger.log(`purge ${id} rejected by ${actor}`);
    return this.report(id);
  }

  list(limit: number, offset: number): Promise<PurgeBatch[]> {
    return this.purges.list(limit, offset);
  }

  /** The batch report; once COMPLETED, the deletion certificate. */
  async report(id: string) {
    const batch = await this.purges.batch(id);
    if (!batch) throw new RetentionError(RetentionErrorCode.NotFound, `purge ${id} does not exist`);
    const entries = await this.purges.entries(id);
    const journal = await this.purges.journal(entries.map((e) => e.id));
    const byEntry = new Map<string, typeof journal>();
    for (const j of journal) byEntry.set(j.purgeStudyId, [...(byEntry.get(j.purgeStudyId) ?? []), j]);
    const count = (s: PurgeStudyState) => entries.filter((e) => e.state === s).length;
    return {
      ...batch,
      summary: {
        studies: entries.length,
        deleted: count(PurgeStudyState.Deleted),
        skipped: count(PurgeStudyState.Skipped),
        pending: count(PurgeStudyState.Pending) + count(PurgeStudyState.Purging),
        sizeBytes: entries.reduce((a, e) => a + e.sizeBytes, 0),
        deletedBytes: entries.filter((e) => e.state === PurgeStudyState.Deleted).reduce((a, e) => a + e.sizeBytes, 0),
      },
      studies: entries.map((e) => ({
        studyInstanceUid: e.studyInstanceUid,
        patientId: e.patientId,
        issuer: e.issuer,
        studyDate: e.studyDate,
        expiresOn: e.expiresOn,
        rule: { id: e.ruleId, version: e.ruleVersion, autoPurge: e.autoPurge },
        sizeBytes: e.sizeBytes,
        numInstances: e.numInstances,
        state: e.state,
        note: e.note,
        startedAt: e.startedAt,
        completedAt: e.completedAt,
        instances: (byEntry.get(e.id) ?? []).map((j) => ({
          sopInstanceUid: j.sopInstanceUid,
          seriesInstanceUid: j.seriesInstanceUid,
          sha256: j.sha256,
          sizeBytes: j.sizeBytes,
          state: j.state,
          copies: j.copies,
        })),
      })),
    };
  }

  /** Re-enqueue every approved, unfinished batch (start-up and the periodic sweep): the journal says where each stopped. */
  async resumeUnfinished(): Promise<number> {
    const ids = await this.purges.unfinished();
    for (const id of ids) await this.enqueue(id);
    return ids.length;
  }

  private async enqueue(id: string): Promise<void> {
    await this.jobs.queue({ name: JobName.RetentionPurge, data: { purgeId: id } }, { coalesce: false });
  }

  /** Run or resume one batch. Idempotent: every step checks the journal first. */
  async handlePurge(purgeId: string): Promise<void> {
    let batch = await this.purges.batch(purgeId);
    if (!batch || (batch.state !== PurgeState.Approved && batch.state !== PurgeState.Running)) return;
    const entries = await this.purges.entries(purgeId);
    if (entries.length > batch.maxPerRun) {
      throw new Error(`purge ${purgeId} lists ${entries.length} studies, more than its limit ${batch.maxPerRun}; not run`);
    }
    if (!(await this.purges.markRunning(purgeId))) return;
    batch = (await this.purges.batch(purgeId))!;
    this.logger.log(`purge ${purgeId} running (approved by ${batch.approvedBy})`);
    for (;;) {
      const entry = await this.purges.nextOpenEntry(purgeId);
      if (!entry) break;
      if (entry.state === PurgeStudyState.Pending && !(await this.purges.startStudy(batch, entry, this.decision(entry)))) {
        this.logger.warn(`purge ${purgeId}: study ${entry.studyInstanceUid} skipped`);
        continue;
      }
      await this.purgeStudy(batch, entry);
    }
    await this.purges.complete(batch);
    this.logger.log(`purge ${purgeId} completed`);
  }

  /** Re-checked under the study's lock when its purge starts: unchanged since the snapshot, not held, still expired under the approved rule version. */
  private decision(entry: PurgeEntry): StartDecision {
    return (study, held, rules, instances) => {
      if (!study) return 'the study is no longer in the archive';
      if (held) return 'a legal hold covers the study';
      // Only what was approved: a study that gained or lost instances since the snapshot waits for a new batch.
      if (instances !== entry.numInstances || Number(study.sizeBytes) !== entry.sizeBytes) {
        return `the study changed since the batch was made (${entry.numInstances} -> ${instances} instances, ${entry.sizeBytes} -> ${study.sizeBytes} bytes)`;
      }
      const e = computeExpiry(rules.rules, study.facts);
      if (!isExpired(e.expiresOn, todayUtc())) return `not expired any more (now expires ${e.expiresOn ?? 'never'})`;
      if (e.winner?.ruleId !== entry.ruleId || e.winner.version !== entry.ruleVersion) {
        return `its retention is now set by rule ${e.winner?.ruleId} v${e.winner?.version}, not the approved rule ${entry.ruleId} v${entry.ruleVersion}`;
      }
      return null;
    };
  }

  private async purgeStudy(batch: PurgeBatch, entry: PurgeEntry): Promise<void> {
    const pause = this.config.retention.purgeTestPauseMs;
    for (let attempt = 0; attempt < FINISH_ATTEMPTS; attempt++) {
      for (;;) {
        const pending = await this.purges.pendingInstances(entry.id, INSTANCE_BATCH);
        if (!pending.length) break;
        for (const j of pending) {
          const copies: DeletedCopy[] = [];
          for (const l of await this.purges.locationsOf(j.instanceFk)) {
            // Every copy on every storage its rows name; an unknown storage id fails the job (retried), never skipped.
            const storage = this.storages.get(l.storageId);
            await storage.delete(l.objectKey);
            if ((await storage.stat(l.objectKey)) !== null) {
              throw new Error(`object ${l.objectKey} is still in storage ${l.storageId} after its delete`);
            }
            copies.push({ locationId: l.id, storageId: l.storageId, objectKey: l.objectKey, sha256: l.sha256, sizeBytes: l.sizeBytes, status: l.status, verifiedAbsent: true });
          }
          await this.purges.markObjectsDeleted(j.id, copies);
          if (pause > 0) await sleep(pause);
        }
      }
      if (await this.purges.finishStudy(batch, entry)) {
        this.logger.log(`purge ${batch.id}: study ${entry.studyInstanceUid} deleted`);
        return;
      }
    }
    throw new Error(`purge ${batch.id}: study ${entry.studyInstanceUid} kept gaining copies while being purged; will retry`);
  }
}

function publicExpired(s: ExpiredStudy) {
  const { studyFk: _fk, ...rest } = s;
  return rest;
}
