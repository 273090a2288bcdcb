import type { ArchiveAccess, ArchiveObjectState, RestoreRequestOutcome } from '#vna/storage';
import { describe, expect, it } from 'vitest';
import { type ArchiveJournal, archivePollDelayMs, type ArchivedObject, RestoreDeferredError, runArchiveStage } from './archive-stage.js';
import type { ArchiveStage } from './restore.repository.js';

/** An archive tier's objects as S3 would report them, and the requests it got. */
class Bucket implements ArchiveAccess {
  readonly storageClass = 'GLACIER';
  readonly request = { days: 1, retrieval: 'Standard' as const };
  readonly requests: string[] = [];
  readonly heads: string[] = [];
  constructor(readonly objects: Map<string, ArchiveObjectState['state']>) {}
  async requestRestore(key: string): Promise<RestoreRequestOutcome> {
    this.requests.push(key);
    const s = this.objects.get(key);
    if (s === 'archived') {
      this.objects.set(key, 'restoring');
      return 'accepted';
    }
    return s === 'restoring' ? 'in-progress' : 'restored';
  }
  async archiveState(key: string): Promise<ArchiveObjectState> {
    this.heads.push(key);
    const s = this.objects.get(key)!;
    return s === 'readable' ? { state: 'readable', expiresAt: null } : { state: s };
  }
}

/** The study_restore row's archive columns. */
class Journal implements ArchiveJournal {
  stage: ArchiveStage | null = null;
  async noteArchiveRequested(_id: string, nextPollAt: Date, waiting: number) {
    this.stage = { requestedAt: new Date(0), nextPollAt, polls: 0, waiting };
  }
  async noteArchivePoll(_id: string, nextPollAt: Date | null, waiting: number) {
    this.stage = { ...this.stage!, nextPollAt, polls: this.stage!.polls + 1, waiting };
  }
}

const schedule = { pollMs: 60_000, pollMaxMs: 240_000 };
const objs = (...keys: string[]): ArchivedObject[] => keys.map((objectKey) => ({ storageId: 'glacier', objectKey }));

async function deferredUntil(p: Promise<void>): Promise<number> {
  try {
    await p;
  } catch (e) {
    if (e instanceof RestoreDeferredError) return e.until;
    throw e;
  }
  throw new Error('expected the stage to defer');
}

describe('archive restore stage', () => {
  it('polls with a doubling pause, capped', () => {
    expect([0, 1, 2, 3, 4, 50].map((n) => archivePollDelayMs(n, schedule))).toEqual([60_000, 120_000, 240_000, 240_000, 240_000, 240_000]);
  });

  it('requests every object once, defers to the first poll, polls until all are readable, then resolves', async () => {
    const bucket = new Bucket(new Map([['a', 'archived'], ['b', 'archived'], ['c', 'archived']]));
    const journal = new Journal();
    let now = 1_000_000;
    const run = () => runArchiveStage('7', journal.stage, objs('a', 'b', 'c'), () => ({ access: bucket, schedule }), journal, () => now);

    expect(await deferredUntil(run())).toBe(now + 60_000);
    expect(bucket.requests.sort()).toEqual(['a', 'b', 'c']);
    bucket.heads.length = 0;
    expect(journal.stage).toMatchObject({ polls: 0, waiting: 3, nextPollAt: new Date(now + 60_000) });

    // Before the poll is due (a reconciler's or a retrieval's enqueue): no request, no HEAD.
    now += 30_000;
    expect(await deferredUntil(run())).toBe(1_060_000);
    expect(bucket.requests).toHaveLength(3);
    expect(bucket.heads).toHaveLength(0);

    // First poll: one of three is ready; the next pause doubles.
    now = 1_060_000;
    bucket.objects.set('a', 'readable');
    expect(await deferredUntil(run())).toBe(now + 120_000);
    expect(journal.stage).toMatchObject({ polls: 1, waiting: 2 });
    expect(bucket.heads.sort()).toEqual(['a', 'b', 'c']);
    expect(bucket.requests).toHaveLength(3); // restoring objects are not requested again

    now += 120_000;
    bucket.objects.set('b', 'readable');
    bucket.objects.set('c', 'readable');
    await run();
    expect(journal.stage).toMatchObject({ polls: 2, waiting: 0, nextPollAt: null });
    expect(bucket.requests).toHaveLength(3);
  });

  it('requests again an object whose restored copy expired (or whose request was lost)', async () => {
    const bucket = new Bucket(new Map([['a', 'archived'], ['b', 'archived']]));
    const journal = new Journal();
    let now = 0;
    const run = () => runArchiveStage('7', journal.stage, objs('a', 'b'), () => ({ access: bucket, schedule }), journal, () => now);
    await deferredUntil(run());
    bucket.objects.set('a', 'readable');
    bucket.objects.set('b', 'archived'); // e.g. expired before it was copied
    now = 60_000;
    await deferredUntil(run());
    expect(bucket.requests.sort()).toEqual(['a', 'b', 'b']);
    expect(journal.stage).toMatchObject({ waiting: 1 });
  });

  it('requests only what HEAD shows archived; resolves at once when all are readable; does nothing without objects', async () => {
    const mixed = new Bucket(new Map([['a', 'readable'], ['b', 'restoring'], ['c', 'archived']]));
    const j = new Journal();
    expect(await deferredUntil(runArchiveStage('7', null, objs('a', 'b', 'c'), () => ({ access: mixed, schedule }), j, () => 0))).toBe(60_000);
    expect(mixed.requests).toEqual(['c']);
    expect(j.stage).toMatchObject({ waiting: 2 });

    const bucket = new Bucket(new Map([['a', 'readable']]));
    const journal = new Journal();
    await runArchiveStage('7', null, objs('a'), () => ({ access: bucket, schedule }), journal, () => 5);
    expect(bucket.requests).toEqual([]);
    expect(journal.stage).toMatchObject({ waiting: 0, nextPollAt: null });
    const empty = new Journal();
    await runArchiveStage('7', null, [], () => ({ access: bucket, schedule }), empty);
    expect(empty.stage).toBeNull();
  });

  it('a failed request fails the stage after every request in flight settled, journaling nothing', async () => {
    const bucket = new Bucket(new Map([['a', 'archived'], ['b', 'archived']]));
    bucket.requestRestore = async (key: string) => {
      if (key === 'b') throw new Error('AccessDenied');
      return 'accepted';
    };
    const journal = new Journal();
    await expect(runArchiveStage('7', null, objs('a', 'b'), () => ({ access: bucket, schedule }), journal)).rejects.toThrow('AccessDenied');
    expect(journal.stage).toBeNull(); // the next run requests again (harmless)
  });
});
