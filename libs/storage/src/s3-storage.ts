/**
 * S3-compatible backend on the `minio` client. Object names are `<prefix><key>`; temporary objects
 * are `<prefix>.tmp/<uuid>`.
 *
 * Uploads do not use `Client.putObject` on streams: with an unknown size it buffers parts of
 * 528 MiB in memory, calls ListMultipartUploads first (to resume foreign uploads of the same name)
 * and never settles when the source stream errors (minio 8.0.7). Instead this backend buffers up to
 * `partSize` bytes: a smaller object goes up in one PUT (`putObject` of a Buffer), a larger one as a
 * multipart upload driven here (initiate, parts with Content-MD5, complete; abort on any error).
 * Every write and every commit ends with a size check by HEAD (statObject).
 */
import { createHash, randomUUID } from 'node:crypto';
import type { Readable } from 'node:stream';
import { type BucketItem, type BucketItemStat, Client, type ClientOptions, CopyDestinationOptions, CopySourceOptions } from 'minio';
import {
  type ArchiveAccess,
  type ObjectStat,
  type S3StorageConfig,
  type StorageBackend,
  StorageConflictError,
  StorageIntegrityError,
  type StorageLogger,
  StorageNotFoundError,
  StorageUnsupportedError,
  type TempObject,
  type WriteOptions,
} from './contract.js';
import {
  assertValidAge,
  assertValidKey,
  assertValidTempKey,
  newTempKey,
  normalizeRange,
  TEMP_DIR,
} from './keys.js';
import { ByteMeter, checkWriteOptions, discard, meteredBytes } from './meter.js';
import {
  type ArchiveObjectState,
  archiveObjectState,
  type ArchiveRestoreRequest,
  contentMd5,
  type RestoreRequestOutcome,
  restoreRequestXml,
  S3_ARCHIVE_CLASSES,
} from './s3-restore.js';

const MiB = 1024 * 1024;
const GiB = 1024 * MiB;
/** S3 limits. */
export const S3_MIN_PART_SIZE = 5 * MiB;
export const S3_MAX_PART_SIZE = 5 * GiB;
export const S3_MAX_PARTS = 10_000;
export const S3_MAX_COPY_OBJECT_SIZE = 5 * GiB;
/** Above this a Buffer given to `putObject` would make minio 8 switch to its own multipart upload. */
const MAX_SINGLE_PUT = 64 * MiB;
export const DEFAULT_PART_SIZE = 16 * MiB;

/**
 * Members of the minio 8 `Client` this backend relies on beyond its documented API (they are public
 * in its type declarations, some marked @internal). Checked at construction; pinned by a test.
 */
export const MINIO_CLIENT_METHODS_USED = [
  'initiateNewMultipartUpload',
  'uploadPart',
  'completeMultipartUpload',
  'abortMultipartUpload',
  'listIncompleteUploadsQuery',
  // RestoreObject (POST ?restore) and the raw HEAD for x-amz-restore: minio 8 has neither, so they
  // go through its signed request primitive.
  'makeRequestAsync',
] as const;

export interface S3StorageOptions {
  logger?: StorageLogger;
  /**
   * Called once with the minio client right after it is made. For tests only (instrumentation,
   * fault injection); never set by `createStorage` unless a caller passes it explicitly.
   */
  clientHook?: (client: Client) => void;
  /**
   * Bytes per part of multipart uploads, in [5 MiB, 64 MiB] (default 16 MiB). Smaller objects go
   * up in a single PUT. Memory per concurrent write: up to about two parts. After every 1000 parts
   * the part size doubles, so the 10,000-part limit allows objects far beyond S3's 5 TiB.
   */
  partSize?: number;
  /**
   * Objects larger than this are committed by streaming them through this process (download +
   * multipart upload, size and SHA-256 checked) instead of a server-side CopyObject, which S3
   * limits to 5 GiB. Default and maximum 5 GiB.
   */
  maxServerSideCopyBytes?: number;
}

const NOT_FOUND_CODES = new Set(['NoSuchKey', 'NotFound', 'NoSuchObject']);

function s3Code(err: unknown): string | undefined {
  if (typeof err === 'object' && err !== null && 'code' in err && typeof err.code === 'string') {
    return err.code;
  }
  return undefined;
}

function isNotFound(err: unknown): boolean {
  const code = s3Code(err);
  return code !== undefined && NOT_FOUND_CODES.has(code);
}

function describe(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

export class S3Storage implements StorageBackend {
  readonly id: string;
  readonly kind = 's3' as const;
  readonly bucket: string;
  /** Key prefix inside the bucket ("" or ending with "/"). */
  readonly prefix: string;
  private readonly client: Client;
  private readonly region: string | undefined;
  private readonly partSize: number;
  private readonly maxServerSideCopyBytes: number;
  private readonly logger: StorageLogger | undefined;
  private warnedNoListUploads = false;
  /** `x-amz-storage-class` sent with every commit (undefined: the bucket's default). */
  readonly storageClass: string | undefined;
  readonly archive?: ArchiveAccess;

  constructor(config: S3StorageConfig, options: S3StorageOptions = {}) {
    if (config.kind !== 's3') throw new TypeError(`S3Storage needs kind "s3", got ${String(config.kind)}`);
    if (!config.id) throw new TypeError('storage id is required');
    if (!config.bucket) throw new TypeError(`storage ${config.id}: bucket is required`);
    const prefix = config.prefix ?? '';
    if (prefix !== '') {
      if (!prefix.endsWith('/')) {
        throw new TypeError(`storage ${config.id}: prefix must end with "/", got ${JSON.stringify(prefix)}`);
      }
      assertValidKey(prefix.slice(0, -1));
    }
    const partSize = options.partSize ?? DEFAULT_PART_SIZE;
    if (!Number.isSafeInteger(partSize) || partSize < S3_MIN_PART_SIZE || partSize > MAX_SINGLE_PUT) {
      throw new RangeError(`partSize must be an integer in [${S3_MIN_PART_SIZE}, ${MAX_SINGLE_PUT}], got ${partSize}`);
    }
    const maxCopy = options.maxServerSideCopyBytes ?? S3_MAX_COPY_OBJECT_SIZE;
    if (!Number.isSafeInteger(maxCopy) || maxCopy < 0 || maxCopy > S3_MAX_COPY_OBJECT_SIZE) {
      throw new RangeError(`maxServerSideCopyBytes must be in [0, ${S3_MAX_COPY_OBJECT_SIZE}], got ${maxCopy}`);
    }

    this.id = config.id;
    this.bucket = config.bucket;
    this.prefix = prefix;
    this.region = config.region;
    this.partSize = partSize;
    this.maxServerSideCopyBytes = maxCopy;
    this.logger = options.logger;
    this.storageClass = config.storageClass;
    if ((S3_ARCHIVE_CLASSES as readonly string[]).includes(config.storageClass ?? '')) {
      const request: ArchiveRestoreRequest = config.archiveRestore ?? { days: 1, retrieval: 'Standard' };
      restoreRequestXml(request); // validates days and retrieval now rather than at the first restore
      this.archive = {
        storageClass: config.storageClass!,
        request,
        requestRestore: (key) => this.requestRestore(key, request),
        archiveState: (key) => this.archiveState(key),
      };
    }

    const clientOptions: ClientOptions = {
      endPoint: config.endPoint,
      accessKey: config.accessKey,
      secretKey: config.secretKey,
    };
    if (config.port !== undefined) clientOptions.port = config.port;
    if (config.useSSL !== undefined) clientOptions.useSSL = config.useSSL;
    if (config.region !== undefined) clientOptions.region = config.region;
    if (config.pathStyle !== undefined) clientOptions.pathStyle = config.pathStyle;
    this.client = new Client(clientOptions);
    for (const method of MINIO_CLIENT_METHODS_USED) {
      if (typeof this.client[method] !== 'function') {
        throw new Error(`minio Client.${method} is missing: this minio version is not supported by S3Storage`);
      }
    }
    options.clientHook?.(this.client);
  }

  /** Creates the bucket if it does not exist. */
  async init(): Promise<void> {
    if (await this.client.bucketExists(this.bucket)) return;
    try {
      await this.client.makeBucket(this.bucket, this.region ?? '');
    } catch (err) {
      const code = s3Code(err);
      if (code !== 'BucketAlreadyOwnedByYou' && code !== 'BucketAlreadyExists') throw err;
      if (!(await this.client.bucketExists(this.bucket))) throw err;
    }
  }

  async writeTemp(data: Readable, options?: WriteOptions): Promise<TempObject> {
    let checked: ReturnType<typeof checkWriteOptions>;
    try {
      checked = checkWriteOptions(options);
    } catch (err) {
      discard(data);
      throw err;
    }
    const tempKey = newTempKey();
    const name = this.objectName(tempKey);
    const meter = new ByteMeter(checked.headBytes);
    try {
      await this.upload(name, meteredBytes(data, checked.prefix, meter, checked.inspect));
      await this.verifySize(name, tempKey, meter.size);
      return meter.result(tempKey);
    } catch (err) {
      discard(data);
      await this.removeQuietly(name);
      throw err;
    }
  }

  async commit(tempKey: string, key: string): Promise<void> {
    assertValidTempKey(tempKey);
    assertValidKey(key);
    const source = this.objectName(tempKey);
    const target = this.objectName(key);
    // Keys are unique per write, so "exists" means a caller bug or a replayed commit: refuse.
    if ((await this.statRaw(target)) !== null) throw new StorageConflictError(this.id, key);
    const sourceStat = await this.statRaw(source);
    if (sourceStat === null) throw new StorageNotFoundError(this.id, tempKey);

    try {
      if (sourceStat.size <= this.maxServerSideCopyBytes) {
        // CopyObject gives the copy the STANDARD class unless told otherwise; REPLACE so that
        // servers which copy the source's metadata (s3rver) also record the class.
        const dest = this.storageClass
          ? new CopyDestinationOptions({ Bucket: this.bucket, Object: target, MetadataDirective: 'REPLACE', Headers: this.classHeaders() })
          : new CopyDestinationOptions({ Bucket: this.bucket, Object: target });
        await this.client.copyObject(new CopySourceOptions({ Bucket: this.bucket, Object: source }), dest);
      } else {
        await this.copyThroughClient(source, target);
      }
      const copied = await this.statRaw(target);
      if (copied === null || copied.size !== sourceStat.size) {
        throw new StorageIntegrityError(
          this.id,
          key,
          `copy of ${sourceStat.size} bytes has ${copied === null ? 'vanished' : `${copied.size} bytes`}`,
        );
      }
    } catch (err) {
      // The target did not exist before: whatever is there now is a failed copy.
      if (isNotFound(err)) {
        await this.removeQuietly(target);
        throw new StorageNotFoundError(this.id, tempKey);
      }
      await this.removeQuietly(target);
      throw err;
    }
    await this.removeQuietly(source); // a leftover is removed by sweepTemp
  }

  async revoke(tempKey: string): Promise<void> {
    assertValidTempKey(tempKey);
    try {
      await this.client.removeObject(this.bucket, this.objectName(tempKey));
    } catch (err) {
      if (!isNotFound(err)) throw err;
    }
  }

  async read(key: string, range?: { start: number; end?: number }): Promise<Readable> {
    assertValidKey(key);
    return this.readName(this.objectName(key), key, range);
  }

  async readTemp(tempKey: string, range?: { start: number; end?: number }): Promise<Readable> {
    assertValidTempKey(tempKey);
    return this.readName(this.objectName(tempKey), tempKey, range);
  }

  private async readName(name: string, key: string, range?: { start: number; end?: number }): Promise<Readable> {
    const wanted = normalizeRange(range);
    try {
      if (wanted === null) return await this.client.getObject(this.bucket, name);
      const length = wanted.end === undefined ? 0 : wanted.end - wanted.start + 1;
      return await this.client.getPartialObject(this.bucket, name, wanted.start, length);
    } catch (err) {
      if (isNotFound(err)) throw new StorageNotFoundError(this.id, key);
      if (s3Code(err) === 'InvalidObjectState') {
        throw new Error(`object ${key} in storage ${this.id} is archived (${this.storageClass ?? 'archive class'}): it must be restored before it is read`);
      }
      if (s3Code(err) === 'InvalidRange') {
        throw new RangeError(`range ${JSON.stringify(range)} is not satisfiable for ${key}`);
      }
      throw err;
    }
  }

  async stat(key: string): Promise<ObjectStat | null> {
    assertValidKey(key);
    const info = await this.statRaw(this.objectName(key));
    return info === null ? null : { size: info.size };
  }

  async delete(key: string): Promise<void> {
    assertValidKey(key);
    try {
      await this.client.removeObject(this.bucket, this.objectName(key));
    } catch (err) {
      if (!isNotFound(err)) throw err;
    }
  }

  async sweepTemp(olderThanMs: number): Promise<number> {
    assertValidAge(olderThanMs);
    const cutoff = Date.now() - olderThanMs;
    const tempPrefix = `${this.prefix}${TEMP_DIR}/`;
    const stale = await this.listNames(tempPrefix, (item) => item.lastModified.getTime() <= cutoff);
    let removed = 0;
    for (const name of stale) {
      await this.client.removeObject(this.bucket, name);
      removed++;
    }
    return removed + (await this.abortStaleUploads(tempPrefix, cutoff));
  }

  async health(): Promise<void> {
    if (!(await this.client.bucketExists(this.bucket))) {
      throw new Error(`storage ${this.id}: bucket ${this.bucket} does not exist`);
    }
    const name = `${this.prefix}${TEMP_DIR}/health-${randomUUID()}`;
    await this.client.putObject(this.bucket, name, Buffer.from(`vna storage probe ${name}\n`));
    await this.client.removeObject(this.bucket, name);
  }

  private objectName(key: string): string {
    return this.prefix + key;
  }

  private classHeaders(): Record<string, string> {
    return this.storageClass ? { 'x-amz-storage-class': this.storageClass } : {};
  }

  /**
   * RestoreObject: `POST /{key}?restore` with a RestoreRequest body (Days, GlacierJobParameters
   * Tier), signed by the minio client. 202 = started, 200 = a restored copy exists already,
   * 409 RestoreAlreadyInProgress, 403 InvalidObjectState = not archived (readable as it is).
   */
  private async requestRestore(key: string, request: ArchiveRestoreRequest): Promise<RestoreRequestOutcome> {
    assertValidKey(key);
    const body = restoreRequestXml(request);
    try {
      const res = await this.client.makeRequestAsync(
        {
          method: 'POST',
          bucketName: this.bucket,
          objectName: this.objectName(key),
          query: 'restore',
          headers: { 'Content-Type': 'application/xml', 'Content-MD5': contentMd5(body) },
        },
        body,
        [200, 202],
      );
      res.resume();
      return res.statusCode === 202 ? 'accepted' : 'restored';
    } catch (err) {
      const code = s3Code(err);
      if (code === 'RestoreAlreadyInProgress') return 'in-progress';
      if (code === 'InvalidObjectState') return 'not-archived';
      if (isNotFound(err)) throw new StorageNotFoundError(this.id, key);
      const detail = `restore request (POST ?restore) for ${key} failed: ${code ? `${code}: ` : ''}${describe(err)}`;
      if (code === 'NotImplemented' || code === 'MethodNotAllowed') throw new StorageUnsupportedError(this.id, detail);
      throw new Error(`storage ${this.id}: ${detail}`);
    }
  }

  /** HEAD: `x-amz-storage-class` and `x-amz-restore` (minio's statObject drops the latter). */
  private async archiveState(key: string): Promise<ArchiveObjectState> {
    assertValidKey(key);
    try {
      const res = await this.client.makeRequestAsync({ method: 'HEAD', bucketName: this.bucket, objectName: this.objectName(key) }, '', [200]);
      res.resume();
      const h = res.headers;
      return archiveObjectState({ storageClass: h['x-amz-storage-class'] as string | undefined, restore: h['x-amz-restore'] });
    } catch (err) {
      if (isNotFound(err)) throw new StorageNotFoundError(this.id, key);
      throw err;
    }
  }

  private partSizeFor(partNumber: number): number {
    const doublings = Math.floor((partNumber - 1) / 1000);
    return Math.min(this.partSize * 2 ** doublings, S3_MAX_PART_SIZE);
  }

  /**
   * Uploads `chunks` to `name`: one PUT if they fit in the first part, else a multipart upload with
   * one part in flight while the next is read. Aborts the multipart upload on any error.
   */
  private async upload(name: string, chunks: AsyncIterable<Buffer>, headers: Record<string, string> = {}): Promise<void> {
    let uploadId: string | undefined;
    let nextPart = 1;
    const parts: { part: number; etag: string }[] = [];
    let inflight: Promise<void> | undefined;
    let buffered: Buffer[] = [];
    let bufferedBytes = 0;

    const sendPart = async (body: Buffer): Promise<void> => {
      if (inflight !== undefined) await inflight;
      const part = nextPart++;
      if (part > S3_MAX_PARTS) throw new RangeError(`object ${name} needs more than ${S3_MAX_PARTS} parts`);
      uploadId ??= await this.client.initiateNewMultipartUpload(this.bucket, name, { ...headers });
      const id = uploadId;
      const sending = this.putPart(name, id, part, body).then((etag) => {
        parts.push({ part, etag });
      });
      sending.catch(() => undefined); // surfaced by the next await of `inflight`
      inflight = sending;
    };

    try {
      for await (const chunk of chunks) {
        buffered.push(chunk);
        bufferedBytes += chunk.length;
        while (bufferedBytes >= this.partSizeFor(nextPart)) {
          const size = this.partSizeFor(nextPart);
          const all = buffered.length === 1 ? buffered[0] : Buffer.concat(buffered, bufferedBytes);
          const rest = all.subarray(size);
          buffered = rest.length > 0 ? [rest] : [];
          bufferedBytes = rest.length;
          await sendPart(all.subarray(0, size));
        }
      }
      const last = Buffer.concat(buffered, bufferedBytes);
      buffered = [];
      if (uploadId === undefined) {
        await this.client.putObject(this.bucket, name, last, last.length, { ...headers });
        return;
      }
      if (last.length > 0) await sendPart(last);
      await inflight;
      parts.sort((a, b) => a.part - b.part);
      await this.client.completeMultipartUpload(this.bucket, name, uploadId, parts);
    } catch (err) {
      if (inflight !== undefined) await inflight.catch(() => undefined);
      if (uploadId !== undefined) await this.abortQuietly(name, uploadId);
      throw err;
    }
  }

  private async putPart(name: string, uploadId: string, partNumber: number, body: Buffer): Promise<string> {
    const md5 = createHash('md5').update(body).digest('base64');
    const result = await this.client.uploadPart(
      { bucketName: this.bucket, objectName: name, uploadID: uploadId, partNumber, headers: { 'Content-MD5': md5 } },
      body,
    );
    if (!result.etag) throw new Error(`storage ${this.id}: no ETag for part ${partNumber} of ${name}`);
    return result.etag;
  }

  /**
   * Copy for objects too large for CopyObject: stream the object down and up again through the
   * tested upload path. The caller checks the resulting size.
   */
  private async copyThroughClient(source: string, target: string): Promise<void> {
    const download = await this.client.getObject(this.bucket, source);
    try {
      await this.upload(target, meteredBytes(download, undefined, new ByteMeter(0)), this.classHeaders());
    } finally {
      discard(download);
    }
  }

  private async verifySize(name: string, key: string, expected: number): Promise<void> {
    const info = await this.statRaw(name);
    if (info === null || info.size !== expected) {
      throw new StorageIntegrityError(
        this.id,
        key,
        `sent ${expected} bytes but the server has ${info === null ? 'no object' : `${info.size} bytes`}`,
      );
    }
  }

  private async statRaw(name: string): Promise<BucketItemStat | null> {
    try {
      return await this.client.statObject(this.bucket, name);
    } catch (err) {
      if (isNotFound(err)) return null;
      throw err;
    }
  }

  private listNames(prefix: string, keep: (item: BucketItem & { name: string; lastModified: Date }) => boolean): Promise<string[]> {
    return new Promise((resolve, reject) => {
      const names: string[] = [];
      const stream = this.client.listObjectsV2(this.bucket, prefix, true);
      stream.on('data', (item: BucketItem) => {
        if (item.name !== undefined && item.lastModified !== undefined && keep(item)) names.push(item.name);
      });
      stream.on('error', reject);
      stream.on('end', () => resolve(names));
    });
  }

  /** Aborts multipart uploads under the temporary prefix initiated before `cutoff`. */
  private async abortStaleUploads(tempPrefix: string, cutoff: number): Promise<number> {
    let keyMarker = '';
    let uploadIdMarker = '';
    let aborted = 0;
    for (;;) {
      let page: Awaited<ReturnType<Client['listIncompleteUploadsQuery']>>;
      try {
        page = await this.client.listIncompleteUploadsQuery(this.bucket, tempPrefix, keyMarker, uploadIdMarker, '');
      } catch (err) {
        if (s3Code(err) !== 'NotImplemented') throw err;
        if (!this.warnedNoListUploads) {
          this.warnedNoListUploads = true;
          this.logger?.warn(
            `storage ${this.id}: the server does not list multipart uploads; abandoned uploads under ` +
              `${tempPrefix} must be expired by a bucket lifecycle rule`,
          );
        }
        return aborted;
      }
      for (const upload of page.uploads) {
        if (upload.initiated.getTime() <= cutoff) {
          await this.client.abortMultipartUpload(this.bucket, upload.key, upload.uploadId);
          aborted++;
        }
      }
      if (!page.isTruncated) return aborted;
      keyMarker = page.nextKeyMarker;
      uploadIdMarker = page.nextUploadIdMarker;
    }
  }

  private async abortQuietly(name: string, uploadId: string): Promise<void> {
    try {
      await this.client.abortMultipartUpload(this.bucket, name, uploadId);
    } catch (err) {
      this.logger?.warn(`storage ${this.id}: could not abort multipart upload ${uploadId} of ${name}: ${describe(err)}`);
    }
  }

  private async removeQuietly(name: string): Promise<void> {
    try {
      await this.client.removeObject(this.bucket, name);
    } catch (err) {
      if (!isNotFound(err)) this.logger?.warn(`storage ${this.id}: could not remove ${name}: ${describe(err)}`);
    }
  }
}
