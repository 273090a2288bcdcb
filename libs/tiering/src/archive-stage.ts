/**
 * The first stage of a restore from an archive-class tier (S3 GLACIER, DEEP_ARCHIVE): such objects
 * cannot be read until S3 has restored them. For every copy still archived (HEAD) a RestoreObject
 * request is sent; then
 * the objects are polled (HEAD, `x-amz-restore`) with a growing pause until each one is readable,
 * and only then the ordinary copy into the hot tier's restore area runs. Between polls the job
 * does not hold a worker: it throws RestoreDeferredError and goes back to the delayed set. The
 * stage's state is in the study_restore row (archive_*), so a killed process resumes polling
 * where it stood; a request sent twice is harmless (S3 answers 409 RestoreAlreadyInProgress or 200).
 */
import type { ArchiveAccess, ArchiveObjectState } from '#vna/storage';
import type { ArchiveStage } from './restore.repository.js';

/** The restore job is to run again at `until` (ms since the epoch); nothing is half-done. */
export class RestoreDeferredError extends Error {
  constructor(readonly until: number) {
    super(`restore waits for the archive until ${new Date(until).toISOString()}`);
    this.name = 'RestoreDeferredError';
  }
}

/** Requests and HEADs in flight at once per restore. */
export const ARCHIVE_PARALLELISM = 8;

export interface PollSchedule {
  /** Pause before the first poll. */
  pollMs: number;
  /** Longest pause between polls. */
  pollMaxMs: number;
}

/** Pause before poll number `polls` (0 = the first, right after the requests): doubling, capped. */
export function archivePollDelayMs(polls: number, schedule: PollSchedule): number {
  return Math.min(schedule.pollMaxMs, schedule.pollMs * 2 ** Math.min(polls, 30));
}

/** One copy on an archive-class tier. */
export interface ArchivedObject {
  storageId: string;
  objectKey: string;
}

/** What the stage writes to the journal (RestoreRepository implements it). */
export interface ArchiveJournal {
  noteArchiveRequested(id: string, nextPollAt: Date, waiting: number): Promise<void>;
  noteArchivePoll(id: string, nextPollAt: Date | null, waiting: number): Promise<void>;
}

export interface ArchiveTier {
  access: ArchiveAccess;
  schedule: PollSchedule;
}

/**
 * Runs the stage for one restore: resolves once every object is readable, or throws
 * RestoreDeferredError with the time of the next poll. `stage` is the journal's state (null: no
 * request sent yet). Storage errors propagate (the caller counts them as attempts).
 */
export async function runArchiveStage(
  restoreId: string,
  stage: ArchiveStage | null,
  objects: ArchivedObject[],
  tierOf: (storageId: string) => ArchiveTier,
  journal: ArchiveJournal,
  now: () => number = Date.now,
): Promise<void> {
  if (!objects.length) return;
  const schedule = slowestSchedule(objects, tierOf);
  if (stage === null) {
    // HEAD first: objects readable already (restored meanwhile, or committed before the tier had
    // its archive class) need no request, and one being restored needs no second one.
    const before = await eachLimited(objects, (o) => tierOf(o.storageId).access.archiveState(o.objectKey));
    const toRequest = objects.filter((_, i) => before[i]!.state === 'archived');
    const outcomes = await eachLimited(toRequest, (o) => tierOf(o.storageId).access.requestRestore(o.objectKey));
    const waiting =
      before.filter((st) => st.state === 'restoring').length + outcomes.filter((r) => r === 'accepted' || r === 'in-progress').length;
    if (waiting === 0) {
      // Every object was restored already (or is not archived): nothing to wait for.
      const at = new Date(now());
      await journal.noteArchiveRequested(restoreId, at, 0);
      await journal.noteArchivePoll(restoreId, null, 0);
      return;
    }
    const next = now() + archivePollDelayMs(0, schedule);
    await journal.noteArchiveRequested(restoreId, new Date(next), waiting);
    throw new RestoreDeferredError(next);
  }
  if (stage.nextPollAt !== null && stage.nextPollAt.getTime() > now()) throw new RestoreDeferredError(stage.nextPollAt.getTime());
  const states = await eachLimited(objects, (o) => tierOf(o.storageId).access.archiveState(o.objectKey));
  // Archived again: its restored copy expired before it was copied, or its request was lost.
  const again = objects.filter((_, i) => states[i]!.state === 'archived');
  await eachLimited(again, (o) => tierOf(o.storageId).access.requestRestore(o.objectKey));
  const waiting = states.filter((s: ArchiveObjectState) => s.state !== 'readable').length;
  if (waiting === 0) {
    await journal.noteArchivePoll(restoreId, null, 0);
    return;
  }
  const next = now() + archivePollDelayMs(stage.polls + 1, schedule);
  await journal.noteArchivePoll(restoreId, new Date(next), waiting);
  throw new RestoreDeferredError(next);
}

/** The objects of one restore may span archive tiers: poll at the pace of the slowest. */
function slowestSchedule(objects: ArchivedObject[], tierOf: (storageId: string) => ArchiveTier): PollSchedule {
  let pollMs = 0;
  let pollMaxMs = 0;
  for (const id of new Set(objects.map((o) => o.storageId))) {
    const s = tierOf(id).schedule;
    pollMs = Math.max(pollMs, s.pollMs);
    pollMaxMs = Math.max(pollMaxMs, s.pollMaxMs);
  }
  return { pollMs, pollMaxMs: Math.max(pollMs, pollMaxMs) };
}

/** fn over every item, ARCHIVE_PARALLELISM at once; results in order; the first error rejects once all settled. */
async function eachLimited<T, R>(items: T[], fn: (item: T) => Promise<R>): Promise<R[]> {
  const out = new Array<R>(items.length);
  let next = 0;
  let failure: unknown;
  const worker = async () => {
    while (failure === undefined && next < items.length) {
      const i = next++;
      try {
        out[i] = await fn(items[i]!);
      } catch (e) {
        failure ??= e;
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(ARCHIVE_PARALLELISM, items.length) }, worker));
  if (failure !== undefined) throw failure;
  return out;
}
