import { HOT_TIER_ID, VNA_CONFIG, type VnaConfig } from '#vna/config';
import {
  newObjectVersion,
  objectDigest,
  objectKeyFor,
  STORAGE_REGISTRY,
  type StorageBackend,
  StorageNotFoundError,
  type StorageRegistry,
  StorageUnsupportedError,
} from '#vna/storage';
import { Inject, Injectable, Logger } from '@nestjs/common';
import { setTimeout as sleep } from 'node:timers/promises';
import { type ArchiveTier, RestoreDeferredError, runArchiveStage } from './archive-stage.js';
import { MoveRepository } from './move.repository.js';
import { type OfflineCopy, RestoreRepository, type RestoreRow, StudyRestoreState } from './restore.repository.js';
import { restoreKeyFor } from './restore-key.js';
import { StudyBusyError } from './study-move.service.js';

/** Attempts (job runs) of one restore before it fails. */
export const MAX_RESTORE_ATTEMPTS = 8;
/** Instances of one restore copied at once. */
export const RESTORE_PARALLELISM = 4;

/** The bytes read from the offline tier are not what the location records: retrying will not help. */
export class RestoreIntegrityError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'RestoreIntegrityError';
  }
}

/**
 * Restores studies from offline tiers into the hot tier's restore area: for every instance whose
 * current copy is offline, a RESTORING location row is journaled with a new key, the offline object
 * is read into writeTemp and checked against the recorded size and SHA-256, committed under that
 * key, read back and verified, and only then the row becomes RESTORED with its expiry. The offline
 * copy stays the copy of record (its row is never changed). A crash leaves RESTORING rows, whose
 * objects the next run deletes before it copies again.
 */
@Injectable()
export class StudyRestoreService {
  private readonly logger = new Logger(StudyRestoreService.name);
  private readonly offlineTiers: string[];
  /** Offline tiers of an archive storage class (GLACIER, DEEP_ARCHIVE), with their poll schedule. */
  private readonly archiveSchedules = new Map<string, { pollMs: number; pollMaxMs: number }>();

  constructor(
    private readonly restores: RestoreRepository,
    private readonly moves: MoveRepository,
    @Inject(STORAGE_REGISTRY) private readonly storages: StorageRegistry,
    @Inject(VNA_CONFIG) private readonly config: VnaConfig,
  ) {
    this.offlineTiers = config.tiers.filter((t) => t.availability === 'offline').map((t) => t.id);
    for (const t of config.tiers) {
      if (t.kind === 's3' && t.s3.archive) this.archiveSchedules.set(t.id, { pollMs: t.s3.archive.pollMs, pollMaxMs: t.s3.archive.pollMaxMs });
    }
  }

  /** The restore job: every unfinished restore of the study, under the study's tiering lock (no move runs meanwhile). */
  async handleStudyRestore({ studyIuid }: { studyIuid: string }): Promise<void> {
    const locked = await this.moves.withStudyLock(studyIuid, async () => {
      for (const restore of await this.restores.unfinishedForStudy(studyIuid)) await this.run(restore);
    });
    if (!locked) throw new StudyBusyError(studyIuid);
  }

  private async run(restore: RestoreRow): Promise<void> {
    if (!(await this.archiveReady(restore))) return;
    const attempts = await this.restores.begin(restore.id);
    if (attempts === 0) return;
    if (attempts > MAX_RESTORE_ATTEMPTS) {
      await this.fail(restore, `gave up after ${MAX_RESTORE_ATTEMPTS} attempts; last error: ${restore.error ?? 'none'}`);
      return;
    }
    if (!(await this.restores.studyIsActive(restore.studyIuid))) {
      await this.fail(restore, `study ${restore.studyIuid} is not active (being purged or gone); nothing restored`);
      return;
    }
    const hot = this.storages.get(HOT_TIER_ID);
    try {
      // A crashed run may have left objects at the keys of its RESTORING rows: deleted, then copied anew.
      for (const half of await this.restores.restoringOf(restore.studyIuid)) {
        if (this.storages.has(half.storageId)) await this.storages.get(half.storageId).delete(half.objectKey);
        await this.restores.deleteRow(half.id);
      }
      const todo = await this.restores.offlineCopies(restore.studyIuid, this.offlineTiers, this.config.restore.marginMs);
      await this.restores.setPlan(restore.id, {
        sourceTiers: [...new Set(todo.map((c) => c.storageId))].sort(),
        instancesTotal: todo.length,
        bytesTotal: todo.reduce((a, c) => a + c.sizeBytes, 0),
      });
      await this.copyAll(restore, todo, hot);
    } catch (e) {
      if (e instanceof RestoreIntegrityError) {
        await this.fail(restore, e.message);
        return;
      }
      await this.restores.noteError(restore.id, (e as Error).message);
      throw e; // transient: retried by BullMQ, then by the reconciler
    }
    await this.restores.finish(restore.id, StudyRestoreState.Completed, null);
    this.logger.log(`restore ${restore.id}: study ${restore.studyIuid} is readable from ${hot.id} until its restored copies expire`);
  }

  /**
   * The archive stage (archive-stage.ts) for copies on GLACIER / DEEP_ARCHIVE tiers: true once they
   * are all readable (or there are none), false if the restore ended (failed); throws
   * RestoreDeferredError while S3 is still restoring. Polls do not use attempts; failed requests do.
   */
  private async archiveReady(restore: RestoreRow): Promise<boolean> {
    if (!this.archiveSchedules.size) return true;
    const next = restore.archive?.nextPollAt;
    if (next && next.getTime() > Date.now()) throw new RestoreDeferredError(next.getTime());
    const offline = await this.restores.offlineCopies(restore.studyIuid, this.offlineTiers, this.config.restore.marginMs);
    const archived = offline.filter((c) => this.archiveSchedules.has(c.storageId) && this.storages.has(c.storageId));
    if (!archived.length) return true;
    if (!(await this.restores.studyIsActive(restore.studyIuid))) return true; // the copy stage fails it
    if (!(await this.restores.markInProcess(restore.id))) return false;
    if (restore.archive === null) {
      await this.restores.setPlan(restore.id, {
        sourceTiers: [...new Set(offline.map((c) => c.storageId))].sort(),
        instancesTotal: offline.length,
        bytesTotal: offline.reduce((a, c) => a + c.sizeBytes, 0),
      });
    }
    const tierOf = (id: string): ArchiveTier => ({ access: this.storages.get(id).archive!, schedule: this.archiveSchedules.get(id)! });
    try {
      await runArchiveStage(restore.id, restore.archive, archived, tierOf, this.restores);
      if (restore.archive === null || restore.archive.nextPollAt !== null) {
        this.logger.log(`restore ${restore.id}: the ${archived.length} archived object(s) of study ${restore.studyIuid} are readable; copying`);
      }
      return true;
    } catch (e) {
      if (e instanceof RestoreDeferredError) {
        if (restore.archive === null) {
          this.logger.log(`restore ${restore.id}: restore requested for ${archived.length} archived object(s) of study ${restore.studyIuid}; first poll at ${new Date(e.until).toISOString()}`);
        }
        throw e;
      }
      const message = (e as Error).message;
      if (e instanceof StorageUnsupportedError || e instanceof StorageNotFoundError) {
        await this.fail(restore, `archive restore: ${message}`);
        return false;
      }
      const attempts = await this.restores.noteFailedAttempt(restore.id, `archive restore: ${message}`);
      if (attempts >= MAX_RESTORE_ATTEMPTS) {
        await this.fail(restore, `gave up after ${attempts} attempts; last error: archive restore: ${message}`);
        return false;
      }
      throw e;
    }
  }

  private async fail(restore: RestoreRow, reason: string): Promise<void> {
    this.logger.error(`restore ${restore.id} of study ${restore.studyIuid} FAILED: ${reason}`);
    await this.restores.finish(restore.id, StudyRestoreState.Failed, reason);
  }

  private async copyAll(restore: RestoreRow, todo: OfflineCopy[], hot: StorageBackend): Promise<void> {
    let next = 0;
    let failure: Error | undefined;
    const worker = async () => {
      while (failure === undefined && next < todo.length) {
        const copy = todo[next++]!;
        try {
          await this.restoreOne(restore, copy, hot);
        } catch (e) {
          const error = e instanceof Error ? e : new Error(String(e));
          if (!isIntegrity(failure)) failure = error;
        }
      }
    };
    // Every copy in flight is awaited before the error propagates (no commit races the clean-up).
    await Promise.all(Array.from({ length: Math.min(RESTORE_PARALLELISM, todo.length) }, worker));
    if (failure !== undefined) throw failure;
  }

  private async restoreOne(restore: RestoreRow, copy: OfflineCopy, hot: StorageBackend): Promise<void> {
    if (!this.storages.has(copy.storageId)) throw new Error(`offline tier "${copy.storageId}" of ${copy.sopIuid} is not configured in this process`);
    const source = this.storages.get(copy.storageId);
    const key = restoreKeyFor(
      objectKeyFor({ studyUid: copy.studyIuid, seriesUid: copy.seriesIuid, sopInstanceUid: copy.sopIuid, version: newObjectVersion() }),
    );
    const keepMs = this.config.restore.keepMs;
    const locationId = await this.restores.addRestoring(copy, hot.id, key, keepMs);
    let stream;
    try {
      stream = await source.read(copy.objectKey);
    } catch (e) {
      await this.restores.deleteRow(locationId);
      if (e instanceof StorageNotFoundError) throw new RestoreIntegrityError(`offline copy of ${copy.sopIuid} is missing in ${copy.storageId}`);
      throw e;
    }
    const temp = await hot.writeTemp(stream);
    if (temp.size !== copy.sizeBytes || temp.sha256 !== copy.sha256) {
      await hot.revoke(temp.tempKey);
      await this.restores.deleteRow(locationId);
      throw new RestoreIntegrityError(
        `offline copy of ${copy.sopIuid} in ${copy.storageId} reads ${temp.size} bytes with SHA-256 ${temp.sha256}; recorded ${copy.sizeBytes} bytes, ${copy.sha256}`,
      );
    }
    await hot.commit(temp.tempKey, key);
    const back = await objectDigest(hot, key);
    if (back === null || back.size !== copy.sizeBytes || back.sha256 !== copy.sha256) {
      await hot.delete(key);
      await this.restores.deleteRow(locationId);
      const found = back === null ? 'no object' : `${back.size} bytes with SHA-256 ${back.sha256}`;
      throw new Error(`restored copy of ${copy.sopIuid} at ${hot.id}:${key} reads back ${found}; expected ${copy.sizeBytes} bytes, ${copy.sha256}`);
    }
    if (!(await this.restores.markRestored(locationId, keepMs))) {
      // The sweeper removed the row meanwhile (an expiry shorter than the copy took): no orphan left.
      await hot.delete(key);
      throw new Error(`restored copy of ${copy.sopIuid} expired before it was recorded; VNA_RESTORE_KEEP_S is too short`);
    }
    await this.restores.noteRestored(restore.id, copy.sizeBytes);
    if (this.config.tieringFault === 'slow-copy') await sleep(150);
  }

  /**
   * Deletes expired restored copies: the row first (in one statement, only if still expired past
   * the grace), then its object. Retrieval never chooses a row that is about to expire, and a row
   * is never left naming a deleted object; a crash between the two steps can leave an unnamed
   * object in the restore area (wasted space, never read).
   */
  async sweepExpired(): Promise<number> {
    let swept = 0;
    for (;;) {
      const batch = await this.restores.expired(this.config.restore.marginMs, 200);
      if (!batch.length) return swept;
      for (const copy of batch) {
        if (!(await this.restores.deleteIfExpired(copy.id, this.config.restore.marginMs))) continue;
        if (this.storages.has(copy.storageId) && (await this.restores.otherReferences(copy.id, copy.storageId, copy.objectKey)) === 0) {
          await this.storages.get(copy.storageId).delete(copy.objectKey);
        }
        swept++;
      }
      if (batch.length < 200) return swept;
    }
  }
}

function isIntegrity(e: Error | undefined): boolean {
  return e instanceof RestoreIntegrityError;
}
