import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdir, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DimseClient, storageContexts } from './client.js';
import { type DicomDict, DimseError, type RetrieveItem } from './contract.js';
import { stripPart10Header } from './part10.js';
import { datasetOfFile, type Daemon, type Fixture, freePort, makeFixtures, sha256, startDaemon, tempDir } from './testing/dcmtk.js';
import { startTestServer, type TestServer } from './testing/harness.js';
import { SopClass, TransferSyntax } from './uids.js';

describe('DimseClient', () => {
  let dir: { path: string; remove(): Promise<void> };
  let fixtures: Fixture[];
  let t: TestServer;
  let scp: Daemon;
  let scpPort: number;
  let scpDir: string;
  let running = 0;
  let maxRunning = 0;
  let items: RetrieveItem[] = [];

  beforeAll(async () => {
    dir = await tempDir();
    fixtures = await makeFixtures(dir.path, ['CT_small.dcm', 'MR_small_implicit.dcm', 'SC_rgb_jpeg_dcmtk.dcm', 'test-SR.dcm']);
    scpPort = await freePort();
    scpDir = join(dir.path, 'storescp');
    await mkdir(scpDir);
    scp = await startDaemon('storescp', ['+B', '+xa', '-aet', 'DCMTK', '-od', scpDir, String(scpPort)], scpPort);
    t = await startTestServer(dir.path, (store) => ({
      onStore: async (req, ds) => {
        running++;
        maxRunning = Math.max(maxRunning, running);
        try {
          await new Promise((r) => setTimeout(r, 20));
          return await store(req, ds);
        } finally {
          running--;
        }
      },
      onFind: async function* (req, signal) {
        const n = Number(req.identifier['00100020']?.Value?.[0] ?? 3);
        for (let i = 0; i < n && !signal.aborted; i++) {
          await new Promise((r) => setTimeout(r, 5));
          yield { '00100020': { vr: 'LO', Value: [`P${i}`] }, '00100010': { vr: 'PN', Value: [{ Alphabetic: `Doe^${i}` }] } };
        }
        if (req.identifier['00100020']?.Value?.[0] === 'FAIL') throw new DimseError(0xc123, 'nope');
      },
      onGet: async () => ({ items }),
    }));
  });

  afterAll(async () => {
    await t?.close();
    await scp?.stop();
    await dir?.remove();
  });

  const connectToServer = (extra: Partial<Parameters<typeof DimseClient.connect>[0]> = {}) =>
    DimseClient.connect({
      host: '127.0.0.1',
      port: t.port,
      callingAeTitle: 'CLIENT',
      calledAeTitle: 'VNA',
      contexts: [
        { abstractSyntax: SopClass.Verification, transferSyntaxes: [TransferSyntax.ImplicitVRLittleEndian] },
        { abstractSyntax: SopClass.StudyRootFind, transferSyntaxes: [TransferSyntax.ExplicitVRLittleEndian] },
        ...storageContexts([SopClass.CTImageStorage], [TransferSyntax.ExplicitVRLittleEndian]),
      ],
      ...extra,
    });

  it('echoes, stores and finds against the server', async () => {
    const client = await connectToServer();
    expect(await client.echo()).toEqual({ status: 0 });
    const ct = fixtures[0];
    const file = await stripPart10Header(createReadStream(ct.path));
    expect(await client.store(file.sopClassUid, file.sopInstanceUid, file.transferSyntaxUid, file.datasetStream)).toEqual({ status: 0 });
    expect(t.received.get(ct.sopInstanceUid)?.sha256).toBe(ct.datasetSha256);
    const matches: DicomDict[] = [];
    for await (const m of client.find(SopClass.StudyRootFind, { '00100020': { vr: 'LO', Value: ['4'] } })) matches.push(m);
    expect(matches.map((m) => m['00100010'].Value?.[0])).toEqual([0, 1, 2, 3].map((i) => ({ Alphabetic: `Doe^${i}` })));
    await expect(async () => {
      for await (const _ of client.find(SopClass.StudyRootFind, { '00100020': { vr: 'LO', Value: ['FAIL'] } })) void _;
    }).rejects.toMatchObject({ status: 0xc123 });
    await client.release();
    expect(await client.closed).toBeUndefined();
  });

  it('cancels a C-FIND with an AbortSignal', async () => {
    const client = await connectToServer();
    const controller = new AbortController();
    const got: DicomDict[] = [];
    for await (const m of client.find(SopClass.StudyRootFind, { '00100020': { vr: 'LO', Value: ['1000'] } }, { signal: controller.signal })) {
      got.push(m);
      if (got.length === 3) controller.abort();
    }
    expect(got.length).toBeGreaterThanOrEqual(3);
    expect(got.length).toBeLessThan(100);
    expect(await client.echo()).toEqual({ status: 0 });
    await client.release();
  });

  it('cancels a C-FIND when the consumer stops iterating early', async () => {
    const client = await connectToServer();
    let n = 0;
    for await (const _ of client.find(SopClass.StudyRootFind, { '00100020': { vr: 'LO', Value: ['1000'] } })) {
      void _;
      if (++n === 2) break;
    }
    expect(n).toBe(2);
    const again: DicomDict[] = [];
    for await (const m of client.find(SopClass.StudyRootFind, { '00100020': { vr: 'LO', Value: ['2'] } })) again.push(m);
    expect(again).toHaveLength(2);
    await client.release();
  });

  it('runs operations concurrently within a negotiated asynchronous operations window', async () => {
    const ct = fixtures[0];
    const { dataset } = await datasetOfFile(ct.path);
    for (const [window, expectConcurrent] of [
      [undefined, false],
      [{ maxInvoked: 8, maxPerformed: 1 }, true],
    ] as const) {
      maxRunning = 0;
      const client = await connectToServer(window ? { asyncOperations: window } : {});
      expect(client.association.maxOpsInvoked).toBe(window ? 8 : 1);
      const statuses = await Promise.all(
        Array.from({ length: 16 }, (_, i) => client.store(SopClass.CTImageStorage, `2.25.4242${i}`, TransferSyntax.ExplicitVRLittleEndian, dataset)),
      );
      expect(statuses.every((s) => s.status === 0)).toBe(true);
      await client.release();
      if (expectConcurrent) expect(maxRunning).toBeGreaterThan(1);
      else expect(maxRunning).toBe(1);
      for (let i = 0; i < 16; i++) expect(t.received.get(`2.25.4242${i}`)?.sha256).toBe(ct.datasetSha256);
    }
  });

  it('stores byte-exact to dcmtk storescp, proposing each stored syntax', async () => {
    const client = await DimseClient.connect({
      host: '127.0.0.1',
      port: scpPort,
      callingAeTitle: 'VNA',
      calledAeTitle: 'DCMTK',
      contexts: [
        { abstractSyntax: SopClass.Verification, transferSyntaxes: [TransferSyntax.ImplicitVRLittleEndian] },
        ...fixtures.map((f) => ({ abstractSyntax: f.sopClassUid, transferSyntaxes: [f.transferSyntaxUid] })),
      ],
    });
    expect((await client.echo()).status).toBe(0);
    for (const f of fixtures) {
      const file = await stripPart10Header(createReadStream(f.path, { highWaterMark: 1000 }));
      const status = await client.store(file.sopClassUid, file.sopInstanceUid, file.transferSyntaxUid, file.datasetStream);
      expect(status.status, f.name).toBe(0);
    }
    await client.release();
    const received = new Map<string, string>();
    for (const name of await readdir(scpDir)) {
      const d = await datasetOfFile(join(scpDir, name));
      received.set(d.sopInstanceUid, sha256(d.dataset));
    }
    for (const f of fixtures) expect(received.get(f.sopInstanceUid), f.name).toBe(f.datasetSha256);
  });

  it('receives C-GET sub-operations through onStore', async () => {
    const explicit = fixtures.filter((f) => f.transferSyntaxUid === TransferSyntax.ExplicitVRLittleEndian);
    items = explicit.map((f) => ({
      sopClassUid: f.sopClassUid,
      sopInstanceUid: f.sopInstanceUid,
      transferSyntaxUid: f.transferSyntaxUid,
      isPart10: true,
      open: async () => createReadStream(f.path),
    }));
    const got = new Map<string, string>();
    const client = await DimseClient.connect({
      host: '127.0.0.1',
      port: t.port,
      callingAeTitle: 'GETTER',
      calledAeTitle: 'VNA',
      contexts: [
        { abstractSyntax: SopClass.StudyRootGet, transferSyntaxes: [TransferSyntax.ExplicitVRLittleEndian] },
        ...storageContexts([...new Set(explicit.map((f) => f.sopClassUid))], [TransferSyntax.ExplicitVRLittleEndian], { scuRole: false, scpRole: true }),
      ],
      onStore: async (req, ds) => {
        const h = createHash('sha256');
        for await (const c of ds) h.update(c as Buffer);
        got.set(req.affectedSopInstanceUid, h.digest('hex'));
        return { status: 0 };
      },
    });
    const progress: number[] = [];
    const result = await client.get(SopClass.StudyRootGet, { '00080052': { vr: 'CS', Value: ['STUDY'] } }, { onProgress: (p) => progress.push(p.completed) });
    await client.release();
    expect(result).toMatchObject({ status: 0, completed: explicit.length, failed: 0, warning: 0, failedSopInstanceUids: [] });
    expect(progress).toEqual(Array.from({ length: explicit.length - 1 }, (_, i) => i + 1));
    for (const f of explicit) expect(got.get(f.sopInstanceUid), f.name).toBe(f.datasetSha256);
  });

  it('refuses to store in a syntax that was not accepted, without touching the association', async () => {
    const client = await connectToServer();
    await expect(
      client.store(SopClass.CTImageStorage, '2.25.1', TransferSyntax.JPEGBaseline, Buffer.alloc(10)),
    ).rejects.toBeInstanceOf(DimseError);
    expect(await client.echo()).toEqual({ status: 0 });
    client.abort();
    expect(await client.closed).toBeInstanceOf(Error);
  });
});
