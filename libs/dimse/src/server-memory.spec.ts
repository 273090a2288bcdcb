import { createHash } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { once } from 'node:events';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DimseClient } from './client.js';
import { encodeDataset } from './dataset.js';
import { buildPart10Header, stripPart10Header } from './part10.js';
import { run, tempDir } from './testing/dcmtk.js';
import { startTestServer, type TestServer } from './testing/harness.js';
import { SopClass, TransferSyntax } from './uids.js';

const PIXEL_BYTES = 200 * 1024 * 1024;

/** Writes a ~200 MB Secondary Capture Part 10 file; returns the SHA-256 of its data set. */
async function writeBigFile(path: string, sopInstanceUid: string): Promise<string> {
  const ts = TransferSyntax.ExplicitVRLittleEndian;
  const small = encodeDataset(
    {
      '00080016': { vr: 'UI', Value: [SopClass.SecondaryCaptureImageStorage] },
      '00080018': { vr: 'UI', Value: [sopInstanceUid] },
      '00080060': { vr: 'CS', Value: ['OT'] },
      '00100010': { vr: 'PN', Value: [{ Alphabetic: 'Big^Object' }] },
      '00100020': { vr: 'LO', Value: ['BIG'] },
      '0020000D': { vr: 'UI', Value: ['2.25.1000'] },
      '0020000E': { vr: 'UI', Value: ['2.25.1001'] },
      '00280002': { vr: 'US', Value: [1] },
      '00280004': { vr: 'CS', Value: ['MONOCHROME2'] },
      '00280010': { vr: 'US', Value: [10240] },
      '00280011': { vr: 'US', Value: [10240] },
      '00280100': { vr: 'US', Value: [16] },
      '00280101': { vr: 'US', Value: [16] },
      '00280102': { vr: 'US', Value: [15] },
      '00280103': { vr: 'US', Value: [0] },
    },
    ts,
  );
  const pixelHeader = Buffer.alloc(12);
  pixelHeader.writeUInt16LE(0x7fe0, 0);
  pixelHeader.writeUInt16LE(0x0010, 2);
  pixelHeader.write('OW', 4, 'latin1');
  pixelHeader.writeUInt32LE(PIXEL_BYTES, 8);
  const hash = createHash('sha256');
  const out = createWriteStream(path);
  const write = async (b: Buffer, toHash = true) => {
    if (toHash) hash.update(b);
    if (!out.write(b)) await once(out, 'drain');
  };
  await write(buildPart10Header({ sopClassUid: SopClass.SecondaryCaptureImageStorage, sopInstanceUid, transferSyntaxUid: ts }), false);
  await write(small);
  await write(pixelHeader);
  const block = Buffer.alloc(1024 * 1024);
  for (let i = 0; i < PIXEL_BYTES / block.length; i++) {
    block.fill(i & 0xff);
    block.writeUInt32LE(i, 0);
    await write(block);
  }
  out.end();
  await once(out, 'finish');
  return hash.digest('hex');
}

describe('streaming: a 200 MB data set does not grow the heap', () => {
  let dir: { path: string; remove(): Promise<void> };
  let t: TestServer;
  let bigPath: string;
  let bigSha: string;
  const uid = '2.25.200200200';

  beforeAll(async () => {
    dir = await tempDir();
    bigPath = join(dir.path, 'big.dcm');
    bigSha = await writeBigFile(bigPath, uid);
    t = await startTestServer(dir.path);
  }, 120_000);

  afterAll(async () => {
    await t?.close();
    await dir?.remove();
  });

  async function measure<T>(fn: () => Promise<T>): Promise<{ result: T; rssDelta: number; heapDelta: number; externalDelta: number }> {
    (globalThis as { gc?: () => void }).gc?.();
    const base = process.memoryUsage();
    let peak = { rss: base.rss, heap: base.heapUsed, external: base.external + base.arrayBuffers };
    const timer = setInterval(() => {
      const m = process.memoryUsage();
      peak = {
        rss: Math.max(peak.rss, m.rss),
        heap: Math.max(peak.heap, m.heapUsed),
        external: Math.max(peak.external, m.external + m.arrayBuffers),
      };
    }, 20);
    try {
      const result = await fn();
      return {
        result,
        rssDelta: peak.rss - base.rss,
        heapDelta: peak.heap - base.heapUsed,
        externalDelta: peak.external - (base.external + base.arrayBuffers),
      };
    } finally {
      clearInterval(timer);
    }
  }

  it('receives it from storescu with bounded memory', async () => {
    const m = await measure(() => run('storescu', ['-xe', '-aec', 'VNA', '127.0.0.1', String(t.port), bigPath], { timeoutMs: 120_000 }));
    expect(m.result.code, m.result.stderr).toBe(0);
    const got = t.received.get(uid);
    expect(got?.length).toBeGreaterThan(PIXEL_BYTES);
    expect(got?.sha256).toBe(bigSha);
    console.log(`storescu: rss +${(m.rssDelta / 1048576).toFixed(1)} MiB, heap+external +${((m.heapDelta + m.externalDelta) / 1048576).toFixed(1)} MiB`);
    // A buffering implementation would grow by > 200 MB here. Heap + external also count garbage
    // (socket chunks) that the GC has not collected yet, hence the looser bound.
    expect(m.rssDelta).toBeLessThan(64 * 1024 * 1024);
    expect(m.heapDelta + m.externalDelta).toBeLessThan(PIXEL_BYTES / 2);
  }, 120_000);

  it('sends it with DimseClient (file stream, Part 10 header stripped) with bounded memory', async () => {
    t.received.delete(uid);
    const m = await measure(async () => {
      const client = await DimseClient.connect({
        host: '127.0.0.1',
        port: t.port,
        callingAeTitle: 'MIGRATOR',
        calledAeTitle: 'VNA',
        contexts: [{ abstractSyntax: SopClass.SecondaryCaptureImageStorage, transferSyntaxes: [TransferSyntax.ExplicitVRLittleEndian] }],
      });
      const file = await stripPart10Header(createReadStream(bigPath));
      const status = await client.store(file.sopClassUid, file.sopInstanceUid, file.transferSyntaxUid, file.datasetStream);
      await client.release();
      return status;
    });
    console.log(`DimseClient: rss +${(m.rssDelta / 1048576).toFixed(1)} MiB, heap+external +${((m.heapDelta + m.externalDelta) / 1048576).toFixed(1)} MiB`);
    expect(m.result.status).toBe(0);
    expect(t.received.get(uid)?.sha256).toBe(bigSha);
    expect(m.rssDelta).toBeLessThan(64 * 1024 * 1024);
    expect(m.heapDelta + m.externalDelta).toBeLessThan(PIXEL_BYTES / 2);
  }, 120_000);
});
