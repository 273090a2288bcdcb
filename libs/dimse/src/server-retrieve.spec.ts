import { createReadStream } from 'node:fs';
import { mkdir, readdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { DimseClient } from './client.js';
import { DimseError, DimseStatusCode, type DimseStatus, type RetrieveItem, type RetrieveRequest } from './contract.js';
import { datasetOfFile, type Daemon, type Fixture, freePort, makeFixtures, run, sha256, startDaemon, tempDir } from './testing/dcmtk.js';
import { startTestServer, type TestServer } from './testing/harness.js';
import { SopClass, TransferSyntax } from './uids.js';

/** Data set SHA-256 of every file in `dir`, keyed by SOP Instance UID (from each file's meta). */
async function receivedFiles(dir: string): Promise<Map<string, { sha: string; ts: string }>> {
  const out = new Map<string, { sha: string; ts: string }>();
  for (const f of await readdir(dir)) {
    const d = await datasetOfFile(join(dir, f));
    out.set(d.sopInstanceUid, { sha: sha256(d.dataset), ts: d.transferSyntaxUid });
  }
  return out;
}

/** An association to the archive under test that may ask for Study Root C-MOVEs. */
function connectMover(port: number): Promise<DimseClient> {
  return DimseClient.connect({
    host: '127.0.0.1',
    port,
    callingAeTitle: 'MOVER',
    calledAeTitle: 'VNA',
    contexts: [{ abstractSyntax: SopClass.StudyRootMove, transferSyntaxes: [TransferSyntax.ExplicitVRLittleEndian] }],
  });
}

function fileItem(f: Fixture): RetrieveItem {
  return {
    sopClassUid: f.sopClassUid,
    sopInstanceUid: f.sopInstanceUid,
    transferSyntaxUid: f.transferSyntaxUid,
    isPart10: true,
    open: async () => createReadStream(f.path, { highWaterMark: 16 * 1024 }),
  };
}

describe('DimseServer C-MOVE and C-GET', () => {
  let dir: { path: string; remove(): Promise<void> };
  let fixtures: Fixture[];
  let t: TestServer;
  let scp: Daemon;
  let scpPort: number;
  let scpDir: string;
  let items: RetrieveItem[] = [];
  const subResults: { req: RetrieveRequest; uid: string; result: DimseStatus | Error }[] = [];
  const moveRequests: RetrieveRequest[] = [];
  let moveSignal: AbortSignal | undefined;

  beforeAll(async () => {
    dir = await tempDir();
    fixtures = await makeFixtures(dir.path);
    scpPort = await freePort();
    scpDir = join(dir.path, 'storescp');
    await mkdir(scpDir);
    scp = await startDaemon('storescp', ['+B', '+xa', '-aet', 'DEST', '-od', scpDir, String(scpPort)], scpPort);
    t = await startTestServer(dir.path, {
      onMove: async (req, signal) => {
        moveSignal = signal;
        moveRequests.push(req);
        if (req.moveDestination !== 'DEST') throw new DimseError(DimseStatusCode.MoveDestinationUnknown, `unknown AE ${req.moveDestination}`);
        return { destination: { aeTitle: 'DEST', host: '127.0.0.1', port: scpPort }, items };
      },
      onGet: async () => ({ items }),
      onSubOperationResult: (req, item, result) => subResults.push({ req, uid: item.sopInstanceUid, result }),
    }, { pendingIntervalMs: 0 });
  });

  beforeEach(async () => {
    subResults.length = 0;
    for (const f of await readdir(scpDir)) await import('node:fs/promises').then((fs) => fs.rm(join(scpDir, f)));
  });

  afterAll(async () => {
    await t?.close();
    await scp?.stop();
    await dir?.remove();
  });

  it('C-MOVE sends every item unchanged to storescp (Part 10 and bare data sets)', async () => {
    // One item as a bare data set (no Part 10 header).
    const bare = fixtures[0];
    const barePath = join(dir.path, 'bare.ds');
    await writeFile(barePath, (await datasetOfFile(bare.path)).dataset);
    items = [
      ...fixtures.slice(1).map(fileItem),
      { ...fileItem(bare), isPart10: false, open: async () => createReadStream(barePath) },
    ];
    const r = await run('movescu', ['-v', '-S', '-aec', 'VNA', '-aem', 'DEST', '-k', 'QueryRetrieveLevel=STUDY', '-k', 'StudyInstanceUID=1.2.3', '127.0.0.1', String(t.port)]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout + r.stderr).toMatch(/Received Final Move Response \(Success\)/);
    expect(moveRequests.at(-1)!.identifier['0020000D']).toEqual({ vr: 'UI', Value: ['1.2.3'] });
    expect(moveRequests.at(-1)!.affectedSopClassUid).toBe(SopClass.StudyRootMove);

    const got = await receivedFiles(scpDir);
    for (const f of fixtures) {
      expect(got.get(f.sopInstanceUid)?.ts, f.name).toBe(f.transferSyntaxUid);
      expect(got.get(f.sopInstanceUid)?.sha, f.name).toBe(f.datasetSha256);
    }
    expect(subResults).toHaveLength(fixtures.length);
    expect(subResults.every((s) => !(s.result instanceof Error) && s.result.status === 0)).toBe(true);
  });

  it('C-MOVE to an unknown destination answers 0xA801', async () => {
    const r = await run('movescu', ['-d', '-S', '-aec', 'VNA', '-aem', 'NOBODY', '-k', 'QueryRetrieveLevel=STUDY', '-k', 'StudyInstanceUID=1.2.3', '127.0.0.1', String(t.port)]);
    expect(r.stdout + r.stderr).toMatch(/Status\s+: 0xa801/i);
  });

  it('C-MOVE counts failures (open rejects, stream breaks mid-way) and re-opens the sub-association', async () => {
    const good = fixtures.filter((f) => f.transferSyntaxUid === TransferSyntax.ExplicitVRLittleEndian);
    const brokenUid = '2.25.555.1';
    const missingUid = '2.25.555.2';
    items = [
      fileItem(good[0]),
      { ...fileItem(good[0]), sopInstanceUid: missingUid, open: async () => Promise.reject(new Error('object missing in storage')) },
      {
        ...fileItem(good[0]),
        sopInstanceUid: brokenUid,
        isPart10: false,
        open: async () =>
          Readable.from(
            (async function* () {
              yield Buffer.alloc(300_000, 1);
              await new Promise((r) => setTimeout(r, 20));
              throw new Error('disk read error');
            })(),
          ),
      },
      ...good.slice(1).map(fileItem),
    ];
    const client = await connectMover(t.port);
    const progress: number[] = [];
    const result = await client.move(SopClass.StudyRootMove, 'DEST', { '00080052': { vr: 'CS', Value: ['STUDY'] } }, {
      onProgress: (p) => progress.push(p.remaining ?? -1),
    });
    await client.release();
    expect(result.status).toBe(DimseStatusCode.SubOpsWarning);
    expect(result.completed).toBe(good.length);
    expect(result.failed).toBe(2);
    expect(result.warning).toBe(0);
    expect(result.failedSopInstanceUids.sort()).toEqual([brokenUid, missingUid].sort());
    expect(progress).toEqual(Array.from({ length: items.length - 1 }, (_, i) => items.length - 1 - i));
    const got = await receivedFiles(scpDir);
    for (const f of good) expect(got.get(f.sopInstanceUid)?.sha, f.name).toBe(f.datasetSha256);
    expect(got.has(brokenUid)).toBe(false);
    const errors = subResults.filter((s) => s.result instanceof Error).map((s) => s.uid);
    expect(errors.sort()).toEqual([brokenUid, missingUid].sort());
  });

  it('spaces pending responses pendingIntervalMs apart: the first after one sub-operation, then none within the interval', async () => {
    const good = fixtures.filter((f) => f.transferSyntaxUid === TransferSyntax.ExplicitVRLittleEndian);
    // Each object twice: at least four sub-operations, so one pending response differs from one per sub-operation.
    items = [...good, ...good].map(fileItem);
    expect(items.length).toBeGreaterThan(3);
    const spaced = await startTestServer(dir.path, {
      onMove: async () => ({ destination: { aeTitle: 'DEST', host: '127.0.0.1', port: scpPort }, items }),
      onGet: async () => ({ items }),
    }, { pendingIntervalMs: 60_000 });
    try {
      const client = await connectMover(spaced.port);
      const progress: { remaining?: number; completed: number }[] = [];
      const result = await client.move(SopClass.StudyRootMove, 'DEST', { '00080052': { vr: 'CS', Value: ['STUDY'] } }, {
        onProgress: (p) => progress.push({ remaining: p.remaining, completed: p.completed }),
      });
      await client.release();
      expect([result.status, result.completed, result.failed]).toEqual([DimseStatusCode.Success, items.length, 0]);
      expect(progress).toEqual([{ remaining: items.length - 1, completed: 1 }]);

      // C-GET (getscu): the same, on the requesting association.
      const out = join(dir.path, 'getscu-spaced');
      await mkdir(out, { recursive: true });
      const r = await run('getscu', ['-v', '-S', '+B', '-aec', 'VNA', '-od', out, '-k', 'QueryRetrieveLevel=STUDY', '127.0.0.1', String(spaced.port)]);
      expect(r.code, r.stdout + r.stderr).toBe(0);
      expect((r.stdout + r.stderr).match(/Received C-GET Response \(Pending\)/g) ?? []).toHaveLength(1);
      expect([...(await receivedFiles(out)).keys()].sort()).toEqual(good.map((f) => f.sopInstanceUid).sort());
    } finally {
      await spaced.close();
    }
  });

  it('C-CANCEL during a C-MOVE stops the sub-operations: final Cancel (0xFE00) with the counts and the remaining ones', async () => {
    const good = fixtures.filter((f) => f.transferSyntaxUid === TransferSyntax.ExplicitVRLittleEndian);
    const controller = new AbortController();
    // Eight sub-operations; the second one's open cancels and waits until the archive got the C-CANCEL.
    items = Array.from({ length: 8 }, (_, i) => {
      const item = fileItem(good[i % good.length]!);
      const open = async () => {
        controller.abort();
        for (let k = 0; k < 1000 && !moveSignal?.aborted; k++) await new Promise((r) => setTimeout(r, 10));
        expect(moveSignal?.aborted).toBe(true);
        return item.open();
      };
      return i === 1 ? { ...item, open } : item;
    });
    const client = await connectMover(t.port);
    const result = await client.move(SopClass.StudyRootMove, 'DEST', { '00080052': { vr: 'CS', Value: ['STUDY'] } }, { signal: controller.signal });
    await client.release();
    expect(result.status).toBe(DimseStatusCode.Cancel);
    // The sub-operation under way when the cancel arrived completes; none starts after it.
    expect([result.completed, result.failed, result.warning, result.remaining]).toEqual([2, 0, 0, 6]);
    expect(subResults).toHaveLength(2);
  });

  it('C-MOVE with every sub-operation failing answers 0xA702', async () => {
    items = [{ ...fileItem(fixtures[0]), open: async () => Promise.reject(new Error('gone')) }];
    const client = await connectMover(t.port);
    const result = await client.move(SopClass.StudyRootMove, 'DEST', { '00080052': { vr: 'CS', Value: ['STUDY'] } });
    await client.release();
    expect(result.status).toBe(DimseStatusCode.MoveOutOfResourcesSubOps);
    expect(result.failed).toBe(1);
    expect(result.failedSopInstanceUids).toEqual([fixtures[0].sopInstanceUid]);
  });

  it('C-GET sends the items on the same association to getscu', async () => {
    const uncompressed = fixtures.filter((f) => f.transferSyntaxUid === TransferSyntax.ExplicitVRLittleEndian);
    items = uncompressed.map(fileItem);
    const out = join(dir.path, 'getscu');
    await mkdir(out, { recursive: true });
    const r = await run('getscu', ['-v', '-S', '+B', '-aec', 'VNA', '-od', out, '-k', 'QueryRetrieveLevel=STUDY', '-k', 'StudyInstanceUID=1.2.3', '127.0.0.1', String(t.port)]);
    expect(r.code, r.stdout + r.stderr).toBe(0);
    expect(r.stdout + r.stderr).toMatch(/Received C-GET Response \(Success\)/);
    const got = await receivedFiles(out);
    for (const f of uncompressed) expect(got.get(f.sopInstanceUid)?.sha, f.name).toBe(f.datasetSha256);
    expect(subResults).toHaveLength(uncompressed.length);
  });

  it('C-GET counts items whose syntax the SCU did not accept as failed', async () => {
    const implicit = fixtures.find((f) => f.transferSyntaxUid === TransferSyntax.ImplicitVRLittleEndian)!;
    const explicit = fixtures.find((f) => f.transferSyntaxUid === TransferSyntax.ExplicitVRLittleEndian)!;
    items = [fileItem(explicit), fileItem(implicit)];
    const out = join(dir.path, 'getscu2');
    await mkdir(out, { recursive: true });
    // +xe: getscu accepts explicit VR little endian first; the implicit item cannot be sent as-is.
    const r = await run('getscu', ['-d', '-S', '+B', '-aec', 'VNA', '-od', out, '-k', 'QueryRetrieveLevel=STUDY', '127.0.0.1', String(t.port)]);
    expect(r.stdout + r.stderr).toMatch(/Status\s+: 0xb000/i);
    const got = await receivedFiles(out);
    expect(got.get(explicit.sopInstanceUid)?.sha).toBe(explicit.datasetSha256);
    expect(got.has(implicit.sopInstanceUid)).toBe(false);
  });
});
