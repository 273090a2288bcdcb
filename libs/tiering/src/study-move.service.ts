import { LocationRepository, LocationStatus, StudyMoveItemState, StudyMoveState } from '#vna/catalog';
import { VNA_CONFIG, type VnaConfig } from '#vna/config';
import {
  type CopiedTemp,
  newObjectVersion,
  objectKeyFor,
  objectDigest,
  streamDigest,
  STORAGE_REGISTRY,
  type StorageBackend,
  StorageNotFoundError,
  type StorageRegistry,
} from '#vna/storage';
import { Inject, Injectable, Logger } from '@nestjs/common';
import { Readable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import { type CurrentCopy, type MoveItemRow, type MoveRow, MoveRepository } from './move.repository.js';

/** A move that must stop and roll back: the bytes at the source or the target are not what is recorded. */
export class MoveIntegrityError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'MoveIntegrityError';
  }
}

function isIntegrityError(e: Error | undefined): boolean {
  return e instanceof MoveIntegrityError;
}

/** Another worker holds the study's move lock: try again later. */
export class StudyBusyError extends Error {
  constructor(studyIuid: string) {
    super(`moves of study ${studyIuid} are being worked on by another worker`);
    this.name = 'StudyBusyError';
  }
}

/**
 * A switched move whose sources may not be deleted yet (SOURCE_DELETE_GRACE_MS): its job is to run
 * again at `until` (ms since the epoch) instead of sleeping in a worker slot meanwhile. Nothing is
 * half-done when this is thrown: the move is SWITCHED and the study lock is released.
 */
export class MoveDeferredError extends Error {
  constructor(readonly until: number) {
    super(`source deletion deferred until ${new Date(until).toISOString()}`);
    this.name = 'MoveDeferredError';
  }
}

/** A grace shorter than this is slept in the job rather than deferred. */
const DEFER_MIN_MS = 100;

/** Instances of one move copied at once. */
export const COPY_PARALLELISM = 4;
/** Verified copies marked COPIED per statement, at most; and at least this often (progress stays live). */
const COPIED_BATCH = 32;
const COPIED_FLUSH_MS = 250;
/** Attempts (job runs) of one move before it fails and rolls back. */
export const MAX_MOVE_ATTEMPTS = 8;
/**
 * After the switch, source objects are deleted only this long after it, so a retrieval that looked
 * up the old location just before the switch usually still finds it. It need not: every reader
 * that finds a copy missing looks up the current location and reads that one
 * (ObjectReaderService.relocated), and a file already open stays readable after its unlink.
 */
export const SOURCE_DELETE_GRACE_MS = 250;

/**
 * Moves whole studies between tiers: copy every instance's current copy to the target (a verified
 * read of the source into writeTemp, commit under a new key, read back and verify size and
 * SHA-256), switch the location rows in one transaction, and only then delete the source
 * objects. The study_move journal and its items say at any moment what exists where, so a
 * crashed move resumes (or rolls back) from the database alone.
 */
@Injectable()
export class StudyMoveService {
  private readonly logger = new Logger(StudyMoveService.name);

  constructor(
    private readonly moves: MoveRepository,
    private readonly locations: LocationRepository,
    @Inject(STORAGE_REGISTRY) private readonly storages: StorageRegistry,
    @Inject(VNA_CONFIG) private readonly config: VnaConfig,
  ) {}

  /**
   * The tiering job: every move of the study with work left, oldest first. With `deferGrace`, a
   * move switched less than SOURCE_DELETE_GRACE_MS ago throws MoveDeferredError (the caller
   * re-runs the job when the grace is over) instead of sleeping it out while holding a worker slot.
   */
  async handleStudyMove({ studyIuid }: { studyIuid: string }, { deferGrace = false }: { deferGrace?: boolean } = {}): Promise<void> {
    const locked = await this.moves.withStudyLock(studyIuid, async () => {
      for (const move of await this.moves.unfinishedForStudy(studyIuid)) await this.run(move, deferGrace);
    });
    if (!locked) throw new StudyBusyError(studyIuid);
  }

  private async run(move: MoveRow, deferGrace: boolean): Promise<void> {
    switch (move.state) {
      case StudyMoveState.Failed:
      case StudyMoveState.Aborted:
      case StudyMoveState.Completed:
        await this.revokeTargetCopies(move);
        return;
      case StudyMoveState.Scheduled:
      case StudyMoveState.Copying:
        if (!(await this.copyPhase(move))) return;
        break;
      case StudyMoveState.Switched:
        break;
    }
    await this.deleteSources(move, deferGrace);
    await this.moves.complete(move.id);
    this.logger.log(`move ${move.id}: study ${move.studyIuid} is on ${move.targetTier}`);
  }

  /** Copies and switches. False if the move ended (failed, aborted) instead of switching. */
  private async copyPhase(move: MoveRow): Promise<boolean> {
    if (!this.storages.has(move.targetTier)) {
      await this.stop(move, StudyMoveState.Aborted, `target tier "${move.targetTier}" is not configured (VNA_TIERS)`);
      return false;
    }
    const attempts = await this.moves.beginCopying(move.id);
    if (attempts === 0) return true; // switched meanwhile
    if (attempts > MAX_MOVE_ATTEMPTS) {
      await this.stop(move, StudyMoveState.Failed, `gave up after ${MAX_MOVE_ATTEMPTS} attempts; last error: ${move.error ?? 'none'}`);
      return false;
    }
    try {
      await this.copyAll(move);
    } catch (e) {
      if (e instanceof MoveIntegrityError) {
        await this.stop(move, StudyMoveState.Failed, e.message);
        return false;
      }
      await this.moves.noteError(move.id, (e as Error).message);
      throw e; // transient (storage or database unreachable): the job is retried
    }
    const switched = await this.moves.switchLocations(move.id, 'tiering');
    if (switched !== false) this.logger.log(`move ${move.id}: ${switched} instance(s) of ${move.studyIuid} switched to ${move.targetTier}`);
    return true;
  }

  private async copyAll(move: MoveRow): Promise<void> {
    const target = this.storages.get(move.targetTier);
    // A PENDING item may have left an object at its key (a crash between commit and verify; since
    // every item is journaled before the copies start, that may be most of them).
    await this.discardItems(target, await this.moves.items(move.id, [StudyMoveItemState.Pending]));
    // Copies verified by an earlier attempt are verified again before anything relies on them
    // (the target may have lost or changed them meanwhile); a bad one is deleted and copied anew.
    const stale: MoveItemRow[] = [];
    for (const item of await this.moves.items(move.id, [StudyMoveItemState.Copied])) {
      const back = await this.verifiedAt(target, item.targetKey, item);
      if (back?.size === item.sizeBytes && back.sha256 === item.sha256) continue;
      this.logger.warn(`move ${move.id}: copy ${target.id}:${item.targetKey} from an earlier attempt no longer matches; copying again`);
      stale.push(item);
    }
    await this.discardItems(target, stale);
    const copied = await this.moves.items(move.id, [StudyMoveItemState.Copied]);
    const done = new Set(copied.map((i) => i.instanceFk));
    const todo = (await this.moves.currentCopies(move.studyIuid)).filter(
      (c) => c.storageId !== move.targetTier && !done.has(c.instanceId),
    );
    const copiedBytes = copied.reduce((a, i) => a + i.sizeBytes, 0);
    await this.moves.setPlan(move.id, {
      sourceTiers: [...new Set([...copied.map((i) => i.sourceStorageId), ...todo.map((c) => c.storageId)])].sort(),
      instancesTotal: copied.length + todo.length,
      bytesTotal: copiedBytes + todo.reduce((a, c) => a + c.sizeBytes, 0),
      instancesMoved: copied.length,
      bytesMoved: copiedBytes,
    });
    // Every copy is journaled (PENDING, with its target key) before any is written.
    const planned = todo.map((copy) => ({
      copy,
      targetKey: objectKeyFor({ studyUid: copy.studyIuid, seriesUid: copy.seriesIuid, sopInstanceUid: copy.sopIuid, version: newObjectVersion() }),
    }));
    const itemIds = await this.moves.addItems(move.id, planned, target.id);
    // Verified copies become COPIED in batches: one lost to a crash stays PENDING, and the next
    // attempt deletes its copy and copies it again.
    let verified: string[] = [];
    let flushedAt = performance.now();
    const flush = async () => {
      const ids = verified;
      verified = [];
      flushedAt = performance.now();
      await this.moves.markCopiedMany(move.id, ids);
    };
    // COPY_PARALLELISM copies at once. On the first error no new copy starts, and every copy in
    // flight is awaited before the error propagates: a rollback must never race a commit.
    let next = 0;
    let failure: Error | undefined;
    const worker = async () => {
      while (failure === undefined && next < planned.length) {
        const n = next++;
        const { copy, targetKey } = planned[n]!;
        try {
          await this.copyOne(copy, target, targetKey);
          verified.push(itemIds[n]!);
          if (verified.length >= COPIED_BATCH || performance.now() - flushedAt >= COPIED_FLUSH_MS) await flush();
          if (this.config.tieringFault === 'slow-copy') await sleep(150);
        } catch (e) {
          const error = e instanceof Error ? e : new Error(String(e));
          // An integrity error wins over a transient one: it decides that the move fails.
          if (!isIntegrityError(failure) && (failure === undefined || isIntegrityError(error))) failure = error;
        }
      }
    };
    await Promise.all(Array.from({ length: Math.min(COPY_PARALLELISM, planned.length) }, worker));
    try {
      await flush();
    } catch (e) {
      failure ??= e instanceof Error ? e : new Error(String(e));
    }
    if (failure !== undefined) throw failure;
  }

  /** Deletes the items' target objects that no location names, then the items themselves. */
  private async discardItems(target: StorageBackend, items: MoveItemRow[]): Promise<void> {
    if (!items.length) return;
    const referenced = await this.moves.referencedKeys(target.id, items.map((i) => i.targetKey));
    await forEachLimited(items, COPY_PARALLELISM, async (item) => {
      if (!referenced.has(item.targetKey)) await target.delete(item.targetKey);
    });
    await this.moves.deleteItems(items.map((i) => i.id));
  }

  /**
   * Source → a durable temporary copy at the target → commit → read back and verify size and
   * SHA-256 against the recorded ones. Between two filesystems the bytes are copied by the kernel
   * (`copyTempFrom`) and verified once, at the target; otherwise they stream through writeTemp,
   * checked against the recorded digest on the way, and are verified again at the target.
   */
  private async copyOne(copy: CurrentCopy, target: StorageBackend, key: string): Promise<void> {
    const source = this.storages.get(copy.storageId);
    const sourceMissing = async (e: StorageNotFoundError) => {
      await this.locations.markUnreadable(copy.locationId, LocationStatus.Missing, `tiering: ${e.message}`);
      return new MoveIntegrityError(`source object of ${copy.sopIuid} is missing in ${copy.storageId}`);
    };
    const sourceCorrupt = async (found: { size: number; sha256?: string }) => {
      const detail = `read ${found.size} bytes${found.sha256 ? ` with SHA-256 ${found.sha256}` : ''} from ${copy.storageId}; recorded ${copy.sizeBytes} bytes, ${copy.sha256}`;
      await this.locations.markUnreadable(copy.locationId, LocationStatus.Corrupt, `tiering: ${detail}`);
      return new MoveIntegrityError(`source object of ${copy.sopIuid} is corrupt: ${detail}`);
    };
    let direct: CopiedTemp | null = null;
    if (target.copyTempFrom) {
      try {
        direct = await target.copyTempFrom(source, copy.objectKey);
      } catch (e) {
        if (e instanceof StorageNotFoundError) throw await sourceMissing(e);
        throw e;
      }
    }
    if (direct) {
      if (direct.size !== copy.sizeBytes) {
        await target.revoke(direct.tempKey);
        throw await sourceCorrupt({ size: direct.size });
      }
      await target.commit(direct.tempKey, key);
    } else {
      let stream: Readable;
      try {
        stream = await source.read(copy.objectKey);
      } catch (e) {
        if (e instanceof StorageNotFoundError) throw await sourceMissing(e);
        throw e;
      }
      const temp = await target.writeTemp(stream);
      if (temp.size !== copy.sizeBytes || temp.sha256 !== copy.sha256) {
        await target.revoke(temp.tempKey);
        throw await sourceCorrupt(temp);
      }
      if (target.archive) {
        // An archive-class object (GLACIER) cannot be read back once committed: the temporary
        // object (standard class) is read back and checked instead, before the server-side copy.
        const staged = await streamDigest(await target.readTemp(temp.tempKey));
        if (staged.size !== copy.sizeBytes || staged.sha256 !== copy.sha256) {
          await target.revoke(temp.tempKey);
          throw new MoveIntegrityError(`staged copy of ${copy.sopIuid} at ${target.id} reads back ${staged.size} bytes with SHA-256 ${staged.sha256}; expected ${copy.sizeBytes} bytes, ${copy.sha256}`);
        }
      }
      await target.commit(temp.tempKey, key);
    }
    if (this.config.tieringFault === 'corrupt-after-copy') await this.damage(target, key);
    const back = await this.verifiedAt(target, key, copy);
    if (back === null || back.size !== copy.sizeBytes || back.sha256 !== copy.sha256) {
      await target.delete(key);
      // A kernel copy was not checked on the way: find out whether the source is what is wrong.
      if (direct) {
        const at = await objectDigest(source, copy.objectKey);
        if (at === null) throw await sourceMissing(new StorageNotFoundError(source.id, copy.objectKey));
        if (at.size !== copy.sizeBytes || at.sha256 !== copy.sha256) throw await sourceCorrupt(at);
      }
      const found = back === null ? 'no object' : `${back.size} bytes with SHA-256 ${back.sha256}`;
      throw new MoveIntegrityError(
        `copy of ${copy.sopIuid} at ${target.id} does not match: read back ${found}; expected ${copy.sizeBytes} bytes, ${copy.sha256}`,
      );
    }
  }

  /**
   * The committed copy's size and digest as read back; for an archive-class target only its size
   * (HEAD), paired with the expected digest (its bytes were checked before the server-side copy).
   */
  private async verifiedAt(target: StorageBackend, key: string, expected: { sizeBytes: number; sha256: string }): Promise<{ size: number; sha256: string } | null> {
    if (!target.archive) return objectDigest(target, key);
    const stat = await target.stat(key);
    return stat && { size: stat.size, sha256: stat.size === expected.sizeBytes ? expected.sha256 : 'unknown (archived)' };
  }

  /** VNA_TIERING_FAULT=corrupt-after-copy (tests only): one byte of the committed copy flipped. */
  private async damage(storage: StorageBackend, key: string): Promise<void> {
    const chunks: Buffer[] = [];
    for await (const chunk of await storage.read(key)) chunks.push(chunk as Buffer);
    const bytes = Buffer.concat(chunks);
    bytes[bytes.length >> 1] ^= 0xff;
    await storage.delete(key);
    const temp = await storage.writeTemp(Readable.from([bytes]));
    await storage.commit(temp.tempKey, key);
    this.logger.warn(`VNA_TIERING_FAULT: damaged ${storage.id}:${key}`);
  }

  /** Ends a move before its switch and deletes every copy it made; the sources stay as they are. */
  private async stop(move: MoveRow, state: StudyMoveState.Failed | StudyMoveState.Aborted, reason: string): Promise<void> {
    if (await this.moves.failBeforeSwitch(move.id, state, reason)) {
      this.logger.error(`move ${move.id} of study ${move.studyIuid} to ${move.targetTier} ${state}: ${reason}`);
    }
    await this.revokeTargetCopies(move);
  }

  /** Deletes target copies that no location references (items PENDING, COPIED or STALE). */
  private async revokeTargetCopies(move: MoveRow): Promise<void> {
    const items = await this.moves.items(move.id, [StudyMoveItemState.Pending, StudyMoveItemState.Copied, StudyMoveItemState.Stale]);
    const revoked: string[] = [];
    for (const [storageId, group] of groupBy(items, (i) => i.targetStorageId)) {
      if (!this.storages.has(storageId)) continue; // tier gone: nothing this process can delete
      const storage = this.storages.get(storageId);
      const referenced = await this.moves.referencedKeys(storageId, group.map((i) => i.targetKey));
      await forEachLimited(group, COPY_PARALLELISM, async (item) => {
        if (!referenced.has(item.targetKey)) await storage.delete(item.targetKey);
        revoked.push(item.id);
      });
    }
    await this.moves.setItemsState(revoked, StudyMoveItemState.Revoked);
  }

  /** After the switch: source objects deleted (and stale copies), each only if no location names it. */
  private async deleteSources(move: MoveRow, deferGrace: boolean): Promise<void> {
    const current = await this.moves.get(move.id);
    const wait = (current?.switchedAt?.getTime() ?? 0) + SOURCE_DELETE_GRACE_MS - Date.now();
    if (deferGrace && wait > DEFER_MIN_MS) throw new MoveDeferredError(Date.now() + wait);
    if (wait > 0) await sleep(wait);
    const items = await this.moves.items(move.id, [StudyMoveItemState.Switched]);
    for (const [sourceStorageId, group] of groupBy(items, (i) => i.sourceStorageId)) {
      const referenced = await this.moves.referencedKeys(sourceStorageId, group.map((i) => i.sourceKey));
      const done: string[] = [];
      try {
        await forEachLimited(group, COPY_PARALLELISM, async (item) => {
          // Last guard before the irreversible step: the copy the location now names is there, whole.
          const there = await this.storages.get(item.targetStorageId).stat(item.targetKey);
          if (there?.size !== item.sizeBytes) {
            const error = `copy ${item.targetStorageId}:${item.targetKey} is ${there ? `${there.size} bytes` : 'missing'} after the switch; source ${item.sourceStorageId}:${item.sourceKey} kept`;
            await this.moves.noteError(move.id, error);
            throw new Error(error);
          }
          if (!referenced.has(item.sourceKey)) await this.storages.get(item.sourceStorageId).delete(item.sourceKey);
          done.push(item.id);
        });
      } finally {
        // Items whose source is gone are DONE even when another one failed (a re-run skips them).
        await this.moves.setItemsState(done, StudyMoveItemState.Done);
      }
    }
    await this.revokeTargetCopies(move);
  }
}

function groupBy<T>(items: readonly T[], key: (item: T) => string): Map<string, T[]> {
  const groups = new Map<string, T[]>();
  for (const item of items) {
    const k = key(item);
    const group = groups.get(k);
    if (group) group.push(item);
    else groups.set(k, [item]);
  }
  return groups;
}

/**
 * `fn` over every item, at most `limit` at once. On the first error no new call starts; the calls
 * in flight are awaited, then the error is thrown.
 */
async function forEachLimited<T>(items: readonly T[], limit: number, fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  let failure: unknown;
  let failed = false;
  const worker = async () => {
    while (!failed && next < items.length) {
      try {
        await fn(items[next++]!);
      } catch (e) {
        if (!failed) failure = e;
        failed = true;
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  if (failed) throw failure;
}
