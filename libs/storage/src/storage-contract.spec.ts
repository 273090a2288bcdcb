/**
 * One behavioural suite, run against FsStorage (temporary directory) and S3Storage (a real s3rver).
 * Every test gets a fresh, isolated backend (own root directory / own key prefix).
 */
import { createHash, randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type S3rverHandle, startS3rver } from '../../../test/support/s3rver.js';
import {
  InvalidStorageKeyError,
  type StorageBackend,
  type StorageConfig,
  StorageConflictError,
  StorageNotFoundError,
} from './contract.js';
import { createStorage } from './registry.js';
import { xxh64Hex } from './xxh64.js';

const MiB = 1024 * 1024;
const TEMP_KEY = /^\.tmp\/[0-9a-f-]{36}$/;

interface Harness {
  readonly name: string;
  /** s3rver 3.7.1 answers `Range: bytes=0-0` with the whole object (it tests `end || Infinity`). */
  readonly rangeEndZeroBroken: boolean;
  setup(): Promise<void>;
  teardown(): Promise<void>;
  /** A fresh backend; `again` re-opens the previous one (same root / prefix) as a new instance. */
  make(options?: { partSize?: number; again?: boolean }): Promise<StorageBackend>;
}

function fsHarness(): Harness {
  const roots: string[] = [];
  let last: StorageConfig | undefined;
  return {
    name: 'FsStorage',
    rangeEndZeroBroken: false,
    async setup() {},
    async teardown() {
      await Promise.all(roots.map((root) => rm(root, { recursive: true, force: true })));
    },
    async make(options) {
      if (options?.again && last) return createStorage(last);
      const root = await mkdtemp(join(tmpdir(), 'vna-fs-storage-'));
      roots.push(root);
      last = { id: 'hot', kind: 'fs', path: join(root, 'store') };
      return createStorage(last);
    },
  };
}

function s3Harness(): Harness {
  let server: S3rverHandle | undefined;
  let counter = 0;
  let last: StorageConfig | undefined;
  let lastPartSize: number | undefined;
  return {
    name: 'S3Storage',
    rangeEndZeroBroken: true,
    async setup() {
      server = await startS3rver();
    },
    async teardown() {
      await server?.stop();
    },
    async make(options) {
      if (!server) throw new Error('s3rver not started');
      if (options?.again && last) return createStorage(last, { partSize: lastPartSize });
      counter++;
      last = {
        id: 'warm',
        kind: 's3',
        endPoint: server.endPoint,
        port: server.port,
        useSSL: false,
        accessKey: server.accessKey,
        secretKey: server.secretKey,
        region: 'us-east-1',
        bucket: server.bucket,
        prefix: `t${counter}/`,
        pathStyle: true,
      };
      // Small parts by default so that ordinary tests also exercise multipart uploads.
      lastPartSize = options?.partSize ?? 5 * MiB;
      return createStorage(last, { partSize: lastPartSize });
    },
  };
}

function sha256(data: Buffer): string {
  return createHash('sha256').update(data).digest('hex');
}

async function collect(stream: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

async function digestOf(stream: Readable): Promise<{ sha256: string; size: number }> {
  const hash = createHash('sha256');
  let size = 0;
  for await (const chunk of stream) {
    hash.update(chunk as Buffer);
    size += (chunk as Buffer).length;
  }
  return { sha256: hash.digest('hex'), size };
}

/** A byte stream of `data` cut into chunks of `chunkSize`, like network input. */
function streamOf(data: Buffer, chunkSize = 64 * 1024): Readable {
  function* chunks() {
    for (let i = 0; i < data.length; i += chunkSize) yield data.subarray(i, i + chunkSize);
  }
  return Readable.from(chunks(), { objectMode: false });
}

/** `size` random bytes generated on the fly (never held in memory); digest known at the end. */
function generated(size: number): { stream: Readable; expected: () => { sha256: string; size: number } } {
  const hash = createHash('sha256');
  let produced = 0;
  async function* chunks() {
    while (produced < size) {
      const chunk = randomBytes(Math.min(MiB, size - produced));
      hash.update(chunk);
      produced += chunk.length;
      yield chunk;
    }
  }
  let digest: string | undefined;
  return {
    stream: Readable.from(chunks(), { objectMode: false }),
    expected: () => {
      if (produced !== size) throw new Error('generator not finished');
      digest ??= hash.digest('hex');
      return { sha256: digest, size };
    },
  };
}

/** Emits `before` random bytes, then fails. */
function failingStream(before: number, error: Error): Readable {
  let sent = 0;
  return new Readable({
    read() {
      if (sent < before) {
        const chunk = randomBytes(Math.min(256 * 1024, before - sent));
        sent += chunk.length;
        this.push(chunk);
      } else {
        setImmediate(() => this.destroy(error));
      }
    },
  });
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe.each([fsHarness(), s3Harness()])('StorageBackend contract: $name', (harness) => {
  beforeAll(() => harness.setup(), 60_000);
  afterAll(() => harness.teardown(), 60_000);

  it('writes, commits and reads back the same bytes (SHA-256 computed independently)', async () => {
    const storage = await harness.make();
    const data = randomBytes(300_000);
    const temp = await storage.writeTemp(streamOf(data));
    expect(temp.tempKey).toMatch(TEMP_KEY);
    expect(temp.size).toBe(data.length);
    expect(temp.sha256).toBe(sha256(data));
    expect(temp.xxh64).toBe(xxh64Hex(data));
    expect(temp.head.length).toBe(0);

    await storage.commit(temp.tempKey, 'ab/cd/1.2.3/1.2.3.4/1.2.3.4.5.v1.dcm');
    const back = await collect(await storage.read('ab/cd/1.2.3/1.2.3.4/1.2.3.4.5.v1.dcm'));
    expect(sha256(back)).toBe(sha256(data));
    expect(back.equals(data)).toBe(true);
    expect(await storage.stat('ab/cd/1.2.3/1.2.3.4/1.2.3.4.5.v1.dcm')).toEqual({ size: data.length });

    // A new instance on the same root / prefix sees the committed object.
    const reopened = await harness.make({ again: true });
    expect(sha256(await collect(await reopened.read('ab/cd/1.2.3/1.2.3.4/1.2.3.4.5.v1.dcm')))).toBe(sha256(data));
    expect(await storage.sweepTemp(0)).toBe(0); // commit left no temporary object
  });

  it('reads a temporary object before commit, whole or a range', async () => {
    const storage = await harness.make();
    const data = randomBytes(200_000);
    const temp = await storage.writeTemp(streamOf(data), { headBytes: 1000 });
    expect((await collect(await storage.readTemp(temp.tempKey))).equals(data)).toBe(true);
    expect((await collect(await storage.readTemp(temp.tempKey, { start: 1000, end: 4999 }))).equals(data.subarray(1000, 5000))).toBe(true);
    await expect(storage.readTemp('ab/cd/not-a-temp-key')).rejects.toThrow();
    await storage.revoke(temp.tempKey);
    await expect(storage.readTemp(temp.tempKey)).rejects.toBeInstanceOf(StorageNotFoundError);
  });

  it('round-trips an empty object', async () => {
    const storage = await harness.make();
    const temp = await storage.writeTemp(Readable.from([], { objectMode: false }), { headBytes: 10 });
    expect(temp).toMatchObject({ size: 0, sha256: sha256(Buffer.alloc(0)) });
    expect(temp.head.length).toBe(0);
    await storage.commit(temp.tempKey, 'empty');
    expect(await storage.stat('empty')).toEqual({ size: 0 });
    expect((await collect(await storage.read('empty'))).length).toBe(0);
  });

  it('keeps the first headBytes bytes, however the stream is chunked', async () => {
    const storage = await harness.make();
    const data = randomBytes(10_000);
    const temp = await storage.writeTemp(streamOf(data, 7), { headBytes: 132 });
    expect(temp.head.equals(data.subarray(0, 132))).toBe(true);

    const small = randomBytes(50);
    const whole = await storage.writeTemp(streamOf(small), { headBytes: 4096 });
    expect(whole.head.equals(small)).toBe(true);
    await storage.revoke(temp.tempKey);
    await storage.revoke(whole.tempKey);
  });

  it('writes prefix bytes first; size, digest and head cover prefix + stream', async () => {
    const storage = await harness.make();
    const prefix = Buffer.concat([Buffer.alloc(128), Buffer.from('DICM'), randomBytes(60)]);
    const data = randomBytes(5_000);
    const temp = await storage.writeTemp(streamOf(data, 1000), { prefix, headBytes: 200 });
    const expected = Buffer.concat([prefix, data]);
    expect(temp.size).toBe(expected.length);
    expect(temp.sha256).toBe(sha256(expected));
    expect(temp.head.equals(expected.subarray(0, 200))).toBe(true);
    await storage.commit(temp.tempKey, 'p/obj');
    expect((await collect(await storage.read('p/obj'))).equals(expected)).toBe(true);
  });

  it('serves byte ranges [start, end] inclusive', async () => {
    const storage = await harness.make();
    const data = randomBytes(100_000);
    const temp = await storage.writeTemp(streamOf(data));
    await storage.commit(temp.tempKey, 'r/obj');

    const range = async (start: number, end?: number) =>
      collect(await storage.read('r/obj', end === undefined ? { start } : { start, end }));
    expect((await range(10, 19)).equals(data.subarray(10, 20))).toBe(true);
    if (!harness.rangeEndZeroBroken) expect((await range(0, 0)).equals(data.subarray(0, 1))).toBe(true);
    expect((await range(0, 1)).equals(data.subarray(0, 2))).toBe(true);
    expect((await range(0)).equals(data)).toBe(true);
    expect((await range(99_000)).equals(data.subarray(99_000))).toBe(true);
    expect((await range(99_999, 99_999)).equals(data.subarray(99_999))).toBe(true);
    expect((await range(50_000, 10_000_000)).equals(data.subarray(50_000))).toBe(true); // end clamps
    await expect(storage.read('r/obj', { start: 100_000 })).rejects.toBeInstanceOf(RangeError);
    await expect(storage.read('r/obj', { start: 10, end: 5 })).rejects.toBeInstanceOf(RangeError);
    await expect(storage.read('r/obj', { start: -1 })).rejects.toBeInstanceOf(RangeError);
  });

  it('stat: size of committed objects, null when absent', async () => {
    const storage = await harness.make();
    expect(await storage.stat('s/missing')).toBeNull();
    const temp = await storage.writeTemp(streamOf(randomBytes(1234)));
    expect(await storage.stat('s/obj')).toBeNull();
    await storage.commit(temp.tempKey, 's/obj');
    expect(await storage.stat('s/obj')).toEqual({ size: 1234 });
    expect(await storage.stat('s')).toBeNull(); // a "directory" is not an object
  });

  it('revoke removes the temporary object and leaves nothing behind', async () => {
    const storage = await harness.make();
    const temp = await storage.writeTemp(streamOf(randomBytes(20_000)));
    await storage.revoke(temp.tempKey);
    await storage.revoke(temp.tempKey); // a missing one is not an error
    expect(await storage.sweepTemp(0)).toBe(0);
    await expect(storage.commit(temp.tempKey, 'never')).rejects.toBeInstanceOf(StorageNotFoundError);
    expect(await storage.stat('never')).toBeNull();
  });

  it('commit refuses to overwrite an existing object and leaves it intact', async () => {
    const storage = await harness.make();
    const first = randomBytes(4000);
    const second = randomBytes(4000);
    const t1 = await storage.writeTemp(streamOf(first));
    await storage.commit(t1.tempKey, 'c/obj');
    const t2 = await storage.writeTemp(streamOf(second));
    const refused = storage.commit(t2.tempKey, 'c/obj');
    await expect(refused).rejects.toBeInstanceOf(StorageConflictError);
    await expect(refused).rejects.toMatchObject({ storageId: storage.id, key: 'c/obj' });
    expect((await collect(await storage.read('c/obj'))).equals(first)).toBe(true);
    // The refused temporary object is still there, for the caller to revoke.
    await storage.commit(t2.tempKey, 'c/other');
    expect((await collect(await storage.read('c/other'))).equals(second)).toBe(true);
  });

  it('commit of a committed temporary key fails with StorageNotFoundError', async () => {
    const storage = await harness.make();
    const temp = await storage.writeTemp(streamOf(randomBytes(100)));
    await storage.commit(temp.tempKey, 'once/a');
    await expect(storage.commit(temp.tempKey, 'once/b')).rejects.toBeInstanceOf(StorageNotFoundError);
    expect(await storage.stat('once/b')).toBeNull();
  });

  it('delete removes an object; deleting a missing one is not an error', async () => {
    const storage = await harness.make();
    const temp = await storage.writeTemp(streamOf(randomBytes(100)));
    await storage.commit(temp.tempKey, 'd/e/obj');
    const keep = await storage.writeTemp(streamOf(randomBytes(100)));
    await storage.commit(keep.tempKey, 'd/keep');
    await storage.delete('d/e/obj');
    expect(await storage.stat('d/e/obj')).toBeNull();
    await expect(storage.read('d/e/obj')).rejects.toBeInstanceOf(StorageNotFoundError);
    await storage.delete('d/e/obj');
    expect(await storage.stat('d/keep')).toEqual({ size: 100 });
    // The key can be written again after deletion.
    const again = await storage.writeTemp(streamOf(randomBytes(10)));
    await storage.commit(again.tempKey, 'd/e/obj');
    expect(await storage.stat('d/e/obj')).toEqual({ size: 10 });
  });

  it('sweepTemp removes stale temporary objects only', async () => {
    const storage = await harness.make();
    const committed = await storage.writeTemp(streamOf(randomBytes(100)));
    await storage.commit(committed.tempKey, 'w/committed');
    const stale = await storage.writeTemp(streamOf(randomBytes(100)));
    await sleep(2500); // S3 LastModified has a resolution of one second
    const fresh = await storage.writeTemp(streamOf(randomBytes(100)));

    expect(await storage.sweepTemp(1500)).toBe(1);
    await expect(storage.commit(stale.tempKey, 'w/stale')).rejects.toBeInstanceOf(StorageNotFoundError);
    await storage.commit(fresh.tempKey, 'w/fresh');
    expect(await storage.stat('w/fresh')).toEqual({ size: 100 });
    expect(await storage.stat('w/committed')).toEqual({ size: 100 });
    expect(await storage.sweepTemp(0)).toBe(0);
    await expect(storage.sweepTemp(-1)).rejects.toBeInstanceOf(RangeError);
  });

  it('a source stream failing mid-write rejects writeTemp and leaves no temporary object', async () => {
    const storage = await harness.make();
    // 12 MiB: on S3 (5 MiB parts) two parts are uploaded before the failure.
    for (const before of [0, 1000, 12 * MiB]) {
      const boom = new Error(`source failed after ${before} bytes`);
      await expect(storage.writeTemp(failingStream(before, boom), { headBytes: 10 })).rejects.toBe(boom);
    }
    expect(await storage.sweepTemp(0)).toBe(0);
  }, 60_000);

  it('rejects streams of strings (an encoding guess could alter data)', async () => {
    const storage = await harness.make();
    const source = Readable.from(['not', 'bytes']);
    await expect(storage.writeTemp(source)).rejects.toThrow(/bytes/);
    expect(source.destroyed).toBe(true);
    expect(await storage.sweepTemp(0)).toBe(0);
  });

  it('round-trips a large (~150 MB) object generated as a stream, with matching digest', async () => {
    const storage = await harness.make({ partSize: 16 * MiB }); // default part size: ~10 parts on S3
    const size = 150 * MiB + 12_345;
    const source = generated(size);
    const temp = await storage.writeTemp(source.stream, { headBytes: 1024 });
    const expected = source.expected();
    expect(temp.size).toBe(expected.size);
    expect(temp.sha256).toBe(expected.sha256);
    await storage.commit(temp.tempKey, 'big/obj');
    expect(await storage.stat('big/obj')).toEqual({ size });
    expect(await digestOf(await storage.read('big/obj'))).toEqual(expected);
    const tail = await collect(await storage.read('big/obj', { start: size - 1000 }));
    expect(tail.length).toBe(1000);
    await storage.delete('big/obj');
  }, 300_000);

  it('maps absent objects to StorageNotFoundError', async () => {
    const storage = await harness.make();
    const missing = storage.read('nope/x');
    await expect(missing).rejects.toBeInstanceOf(StorageNotFoundError);
    await expect(missing).rejects.toMatchObject({ storageId: storage.id, key: 'nope/x' });
    await expect(storage.read('nope/x', { start: 5, end: 10 })).rejects.toBeInstanceOf(StorageNotFoundError);
    await expect(
      storage.commit('.tmp/00000000-0000-4000-8000-000000000000', 'nope/y'),
    ).rejects.toBeInstanceOf(StorageNotFoundError);
    await storage.revoke('.tmp/00000000-0000-4000-8000-000000000000');
    await storage.delete('nope/x');
    expect(await storage.stat('nope/x')).toBeNull();
  });

  it('rejects keys that could escape the storage or alias other keys', async () => {
    const storage = await harness.make();
    const temp = await storage.writeTemp(streamOf(randomBytes(10)));
    const bad = [
      '',
      '../escape',
      'a/../../escape',
      'a/./b',
      '/etc/passwd',
      'a\\b',
      '..\\escape',
      'a\0b',
      'a//b',
      'a/',
      'a/b c',
      'a\nb',
      '.tmp/x',
      temp.tempKey,
      'x'.repeat(256),
    ];
    for (const key of bad) {
      await expect(storage.read(key), key).rejects.toBeInstanceOf(InvalidStorageKeyError);
      await expect(storage.stat(key), key).rejects.toBeInstanceOf(InvalidStorageKeyError);
      await expect(storage.delete(key), key).rejects.toBeInstanceOf(InvalidStorageKeyError);
      await expect(storage.commit(temp.tempKey, key), key).rejects.toBeInstanceOf(InvalidStorageKeyError);
    }
    for (const tempKey of ['../x', '.tmp/../../x', 'ab/cd', '.tmp/not-a-uuid', '/tmp/x']) {
      await expect(storage.revoke(tempKey), tempKey).rejects.toBeInstanceOf(InvalidStorageKeyError);
      await expect(storage.commit(tempKey, 'ok'), tempKey).rejects.toBeInstanceOf(InvalidStorageKeyError);
    }
    // The temporary object survived all of this.
    await storage.commit(temp.tempKey, 'ok');
    expect(await storage.stat('ok')).toEqual({ size: 10 });
  });

  it('rejects invalid write options', async () => {
    const storage = await harness.make();
    await expect(storage.writeTemp(streamOf(Buffer.alloc(1)), { headBytes: -1 })).rejects.toBeInstanceOf(RangeError);
    await expect(storage.writeTemp(streamOf(Buffer.alloc(1)), { headBytes: 1.5 })).rejects.toBeInstanceOf(RangeError);
    expect(await storage.sweepTemp(0)).toBe(0);
  });

  it('health passes and leaves nothing behind', async () => {
    const storage = await harness.make();
    await storage.health();
    expect(await storage.sweepTemp(0)).toBe(0);
  });

  it('handles concurrent writes and commits', async () => {
    const storage = await harness.make();
    const items = Array.from({ length: 20 }, (_, i) => ({ key: `conc/s/${i}`, data: randomBytes(10_000 + i) }));
    await Promise.all(
      items.map(async ({ key, data }) => {
        const temp = await storage.writeTemp(streamOf(data, 999));
        await storage.commit(temp.tempKey, key);
      }),
    );
    for (const { key, data } of items) {
      expect(sha256(await collect(await storage.read(key)))).toBe(sha256(data));
    }
  });
});
