/** S3Storage specifics, against a real s3rver: upload strategy, fault injection, pinned minio internals. */
import { createHash, randomBytes } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { Readable } from 'node:stream';
import { type BucketItem, Client } from 'minio';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type S3rverHandle, startS3rver } from '../../../test/support/s3rver.js';
import { type S3StorageConfig, StorageIntegrityError, StorageNotFoundError, StorageUnsupportedError } from './contract.js';
import { MINIO_CLIENT_METHODS_USED, S3Storage, type S3StorageOptions } from './s3-storage.js';

const MiB = 1024 * 1024;
const PART = 5 * MiB;

let server: S3rverHandle;
let counter = 0;

beforeAll(async () => {
  server = await startS3rver();
}, 60_000);
afterAll(() => server?.stop(), 60_000);

function config(overrides: Partial<S3StorageConfig> = {}): S3StorageConfig {
  counter++;
  return {
    id: 'warm',
    kind: 's3',
    endPoint: server.endPoint,
    port: server.port,
    useSSL: false,
    accessKey: server.accessKey,
    secretKey: server.secretKey,
    region: 'us-east-1',
    bucket: server.bucket,
    prefix: `s${counter}/`,
    pathStyle: true,
    ...overrides,
  };
}

function rawClient(): Client {
  return new Client({
    endPoint: server.endPoint,
    port: server.port,
    useSSL: false,
    accessKey: server.accessKey,
    secretKey: server.secretKey,
    region: 'us-east-1',
    pathStyle: true,
  });
}

interface Calls {
  initiate: string[];
  parts: number[];
  complete: number;
  abort: string[];
}

/** A storage whose client records multipart calls; `inject` may throw to simulate failures. */
async function instrumented(
  options: Omit<S3StorageOptions, 'clientHook'> & {
    inject?: (call: 'uploadPart' | 'complete' | 'statObject', detail: { partNumber?: number; name?: string }) => void;
    overrides?: Partial<S3StorageConfig>;
  } = {},
): Promise<{ storage: S3Storage; calls: Calls; warnings: string[] }> {
  const calls: Calls = { initiate: [], parts: [], complete: 0, abort: [] };
  const warnings: string[] = [];
  const storage = new S3Storage(config(options.overrides), {
    partSize: options.partSize ?? PART,
    maxServerSideCopyBytes: options.maxServerSideCopyBytes,
    logger: { warn: (message) => warnings.push(message) },
    clientHook(client) {
      // Prove the write path never needs ListMultipartUploads (which s3rver lacks anyway).
      client.findUploadId = async () => {
        throw new Error('S3Storage must not call findUploadId');
      };
      const initiate = client.initiateNewMultipartUpload.bind(client);
      client.initiateNewMultipartUpload = async (bucket, name, headers) => {
        const id = await initiate(bucket, name, headers);
        calls.initiate.push(id);
        return id;
      };
      const uploadPart = client.uploadPart.bind(client);
      client.uploadPart = async (partConfig, payload) => {
        options.inject?.('uploadPart', { partNumber: partConfig.partNumber });
        calls.parts.push(partConfig.partNumber);
        return uploadPart(partConfig, payload);
      };
      const complete = client.completeMultipartUpload.bind(client);
      client.completeMultipartUpload = async (bucket, name, uploadId, etags) => {
        options.inject?.('complete', {});
        calls.complete++;
        return complete(bucket, name, uploadId, etags);
      };
      const abort = client.abortMultipartUpload.bind(client);
      client.abortMultipartUpload = async (bucket, name, uploadId) => {
        calls.abort.push(uploadId);
        return abort(bucket, name, uploadId);
      };
      const statObject = client.statObject.bind(client);
      client.statObject = async (bucket, name, opts) => {
        const info = await statObject(bucket, name, opts);
        options.inject?.('statObject', { name });
        return info;
      };
    },
  });
  await storage.init();
  return { storage, calls, warnings };
}

function sha256(data: Buffer): string {
  return createHash('sha256').update(data).digest('hex');
}

async function collect(stream: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

function streamOf(data: Buffer, chunkSize = 256 * 1024): Readable {
  function* chunks() {
    for (let i = 0; i < data.length; i += chunkSize) yield data.subarray(i, i + chunkSize);
  }
  return Readable.from(chunks(), { objectMode: false });
}

function listAll(client: Client, prefix: string): Promise<string[]> {
  return new Promise((resolve, reject) => {
    const names: string[] = [];
    const stream = client.listObjectsV2(server.bucket, prefix, true);
    stream.on('data', (item: BucketItem) => {
      if (item.name !== undefined) names.push(item.name);
    });
    stream.on('error', reject);
    stream.on('end', () => resolve(names.sort()));
  });
}

describe('S3Storage', () => {
  it('pins minio 8.0.7 and the client internals it relies on', async () => {
    const pkg = JSON.parse(
      await readFile(new URL('../../../node_modules/minio/package.json', import.meta.url), 'utf8'),
    ) as { version: string };
    // On a minio upgrade: re-check S3Storage.upload() against the new Client (putObject of a
    // Buffer must stay a single PUT up to 64 MiB; uploadPart/complete/abort signatures), then update.
    expect(pkg.version, 'minio version changed: re-verify S3Storage before updating this pin').toBe('8.0.7');
    for (const method of MINIO_CLIENT_METHODS_USED) {
      expect(typeof Client.prototype[method], `minio Client.${method}`).toBe('function');
    }
  });

  it('uploads objects smaller than a part in one PUT and larger ones in parts', async () => {
    const sizes = [0, 1, PART - 1, PART, PART + 1, 2 * PART, 2 * PART + 1, 3 * PART - 7];
    for (const size of sizes) {
      const { storage, calls } = await instrumented();
      const data = randomBytes(size);
      const temp = await storage.writeTemp(streamOf(data, 100_000 + (size % 7)));
      expect(temp.sha256, `size ${size}`).toBe(sha256(data));
      const expectedParts = size < PART ? 0 : Math.ceil(size / PART);
      expect(calls.initiate.length, `size ${size}`).toBe(size < PART ? 0 : 1);
      expect(calls.parts, `size ${size}`).toEqual(Array.from({ length: expectedParts }, (_, i) => i + 1));
      expect(calls.complete, `size ${size}`).toBe(size < PART ? 0 : 1);
      await storage.commit(temp.tempKey, 'obj');
      expect(sha256(await collect(await storage.read('obj'))), `size ${size}`).toBe(sha256(data));
    }
  }, 120_000);

  it('a failed part aborts the multipart upload and leaves no object', async () => {
    const failure = new Error('injected part failure');
    const { storage, calls, warnings } = await instrumented({
      inject(call, { partNumber }) {
        if (call === 'uploadPart' && partNumber === 2) throw failure;
      },
    });
    const source = streamOf(randomBytes(4 * PART));
    await expect(storage.writeTemp(source)).rejects.toBe(failure);
    expect(source.destroyed).toBe(true);
    expect(calls.initiate).toHaveLength(1);
    expect(calls.abort).toEqual(calls.initiate);
    // s3rver has no AbortMultipartUpload: the failed abort is reported, not thrown.
    expect(warnings.some((w) => w.includes('could not abort multipart upload'))).toBe(true);
    expect(await listAll(rawClient(), storage.prefix)).toEqual([]);
    expect(await storage.sweepTemp(0)).toBe(0);
  });

  it('a failed completion aborts the multipart upload too', async () => {
    const failure = new Error('injected completion failure');
    const { storage, calls } = await instrumented({
      inject(call) {
        if (call === 'complete') throw failure;
      },
    });
    await expect(storage.writeTemp(streamOf(randomBytes(PART + 10)))).rejects.toBe(failure);
    expect(calls.abort).toEqual(calls.initiate);
    expect(await listAll(rawClient(), storage.prefix)).toEqual([]);
  });

  it('writeTemp fails with StorageIntegrityError, and removes the object, if the stored size differs', async () => {
    const { storage } = await instrumented({
      inject(call) {
        if (call === 'statObject') throw Object.assign(new Error('stat says no'), { code: 'NotFound' });
      },
    });
    await expect(storage.writeTemp(streamOf(randomBytes(1000)))).rejects.toBeInstanceOf(StorageIntegrityError);
    expect(await listAll(rawClient(), storage.prefix)).toEqual([]);
  });

  it('commits by streaming through the client above maxServerSideCopyBytes', async () => {
    const { storage, calls } = await instrumented({ maxServerSideCopyBytes: 0 });
    const data = randomBytes(2 * PART + 3);
    const temp = await storage.writeTemp(streamOf(data));
    expect(calls.initiate).toHaveLength(1);
    await storage.commit(temp.tempKey, 'copied/obj');
    expect(calls.initiate).toHaveLength(2); // the copy was a multipart upload of its own
    expect(sha256(await collect(await storage.read('copied/obj')))).toBe(sha256(data));
    expect(await listAll(rawClient(), storage.prefix)).toEqual([`${storage.prefix}copied/obj`]);
  });

  it('a commit whose copy has the wrong size removes the copy and keeps the temporary object', async () => {
    let target = '';
    const { storage } = await instrumented({
      inject(call, { name }) {
        if (call === 'statObject' && name === target) throw Object.assign(new Error('gone'), { code: 'NotFound' });
      },
    });
    const data = randomBytes(1000);
    const temp = await storage.writeTemp(streamOf(data));
    target = `${storage.prefix}bad/copy`;
    await expect(storage.commit(temp.tempKey, 'bad/copy')).rejects.toBeInstanceOf(StorageIntegrityError);
    const names = await listAll(rawClient(), storage.prefix);
    expect(names).toEqual([`${storage.prefix}${temp.tempKey}`]);
    target = '';
    await storage.commit(temp.tempKey, 'good/copy');
    expect(sha256(await collect(await storage.read('good/copy')))).toBe(sha256(data));
  });

  it('stores objects under the configured prefix and temporaries under <prefix>.tmp/', async () => {
    const { storage } = await instrumented({ overrides: { prefix: 'vna/archive/' } });
    const temp = await storage.writeTemp(streamOf(randomBytes(10)));
    const raw = rawClient();
    expect(await listAll(raw, 'vna/archive/')).toEqual([`vna/archive/${temp.tempKey}`]);
    await storage.commit(temp.tempKey, 'a/b/c');
    expect(await listAll(raw, 'vna/archive/')).toEqual(['vna/archive/a/b/c']);
    await storage.delete('a/b/c');
  });

  it('init creates a missing bucket; health fails without one', async () => {
    const bucket = `fresh-${Date.now()}`;
    const missing = new S3Storage(config({ bucket }));
    await expect(missing.health()).rejects.toThrow(/does not exist/);
    await missing.init();
    await missing.init(); // idempotent
    expect(await rawClient().bucketExists(bucket)).toBe(true);
    await missing.health();
  });

  it('sweepTemp works on servers without ListMultipartUploads and says so once', async () => {
    const { storage, warnings } = await instrumented();
    expect(await storage.sweepTemp(0)).toBe(0);
    expect(await storage.sweepTemp(0)).toBe(0);
    expect(warnings.filter((w) => w.includes('lifecycle rule'))).toHaveLength(1);
  });

  it('reads missing objects as StorageNotFoundError, also for ranges', async () => {
    const { storage } = await instrumented();
    await expect(storage.read('x/y', { start: 3 })).rejects.toBeInstanceOf(StorageNotFoundError);
  });

  it('validates its configuration', () => {
    expect(() => new S3Storage(config({ prefix: 'vna' }))).toThrow(/end with "\/"/);
    expect(() => new S3Storage(config({ prefix: '../x/' }))).toThrow();
    expect(() => new S3Storage(config(), { partSize: MiB })).toThrow(RangeError);
    expect(() => new S3Storage(config(), { partSize: 65 * MiB })).toThrow(RangeError);
    expect(() => new S3Storage(config(), { maxServerSideCopyBytes: 6 * 1024 * MiB })).toThrow(RangeError);
  });

  it('commits objects with the tier storage class; temporary objects stay in the standard class', async () => {
    const raw = rawClient();
    for (const maxServerSideCopyBytes of [undefined, 0]) {
      const storage = new S3Storage(config({ storageClass: 'STANDARD_IA' }), { maxServerSideCopyBytes });
      await storage.init();
      const data = randomBytes(1000);
      const temp = await storage.writeTemp(streamOf(data));
      const tempStat = await raw.statObject(server.bucket, `${storage.prefix}${temp.tempKey}`);
      expect(tempStat.metaData['x-amz-storage-class']).toBeUndefined();
      await storage.commit(temp.tempKey, 'aa/bb/one.dcm');
      const stat = await raw.statObject(server.bucket, `${storage.prefix}aa/bb/one.dcm`);
      expect(stat.metaData['x-amz-storage-class'], `maxServerSideCopyBytes ${maxServerSideCopyBytes}`).toBe('STANDARD_IA');
      expect(sha256(await collect(await storage.read('aa/bb/one.dcm')))).toBe(sha256(data));
      expect(storage.archive).toBeUndefined();
    }
  });

  it('GLACIER: objects are committed archived; the RestoreObject request reaches the server signed (s3rver does not implement it)', async () => {
    const storage = new S3Storage(config({ storageClass: 'GLACIER', archiveRestore: { days: 2, retrieval: 'Bulk' } }));
    await storage.init();
    expect(storage.archive).toMatchObject({ storageClass: 'GLACIER', request: { days: 2, retrieval: 'Bulk' } });
    const data = randomBytes(5000);
    const temp = await storage.writeTemp(streamOf(data));
    await storage.commit(temp.tempKey, 'cc/dd/two.dcm');
    expect(await storage.stat('cc/dd/two.dcm')).toEqual({ size: 5000 });
    // HEAD: x-amz-storage-class GLACIER and no x-amz-restore: a restore must be requested.
    expect(await storage.archive!.archiveState('cc/dd/two.dcm')).toEqual({ state: 'archived' });
    await expect(storage.archive!.archiveState('cc/dd/missing.dcm')).rejects.toBeInstanceOf(StorageNotFoundError);
    // s3rver checks the signature first (a bad one would be SignatureDoesNotMatch), then refuses
    // POST ?restore as not implemented: the archive reports it as unsupported, never retried.
    const refused = await storage.archive!.requestRestore('cc/dd/two.dcm').catch((e: unknown) => e);
    expect(refused).toBeInstanceOf(StorageUnsupportedError);
    expect((refused as Error).message).toMatch(/POST \?restore.*(NotImplemented|MethodNotAllowed)/);
    // GLACIER_IR is read directly: no archive access.
    expect(new S3Storage(config({ storageClass: 'GLACIER_IR' })).archive).toBeUndefined();
  });
});
