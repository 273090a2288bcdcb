import { LocationRepository, LocationStatus, type RetrievableInstance } from '#vna/catalog';
import { STORAGE_REGISTRY, StorageNotFoundError, type StorageRegistry } from '#vna/storage';
import { Inject, Injectable, Logger } from '@nestjs/common';
import { createHash, webcrypto } from 'node:crypto';
import { type Readable, Transform, type TransformCallback } from 'node:stream';

/** Why an object could not be served. */
export class ObjectUnavailableError extends Error {
  constructor(
    readonly sopIuid: string,
    readonly reason: 'no-location' | 'missing' | 'corrupt',
    message: string,
  ) {
    super(message);
    this.name = 'ObjectUnavailableError';
  }
}

/**
 * Opens stored objects for retrieval. Every stream is checked against the recorded size and
 * SHA-256 as it flows: a mismatch errors the stream at its end (the caller must abort what it was
 * sending, never complete it) and marks the location CORRUPT; an absent object is MISSING.
 */
@Injectable()
export class ObjectReaderService {
  private readonly logger = new Logger(ObjectReaderService.name);

  constructor(
    @Inject(STORAGE_REGISTRY) private readonly storages: StorageRegistry,
    private readonly locations: LocationRepository,
  ) {}

  /** Open the whole object (Part 10 file as stored), verified. */
  async open(inst: RetrievableInstance): Promise<Readable> {
    const loc = inst.location;
    if (!loc) throw new ObjectUnavailableError(inst.sopIuid, 'no-location', `no readable copy of ${inst.sopIuid} is recorded`);
    const storage = this.storages.get(loc.storageId);
    let stream: Readable;
    try {
      const stat = await storage.stat(loc.objectKey);
      if (!stat) throw new StorageNotFoundError(loc.storageId, loc.objectKey);
      if (stat.size !== loc.sizeBytes) {
        await this.markUnavailable(inst, LocationStatus.Corrupt, `size ${stat.size} in storage, ${loc.sizeBytes} recorded`);
        throw new ObjectUnavailableError(inst.sopIuid, 'corrupt', `stored object of ${inst.sopIuid} has the wrong size`);
      }
      stream = await storage.read(loc.objectKey);
    } catch (e) {
      if (e instanceof StorageNotFoundError) {
        await this.markUnavailable(inst, LocationStatus.Missing, e.message);
        throw new ObjectUnavailableError(inst.sopIuid, 'missing', `stored object of ${inst.sopIuid} is missing`);
      }
      throw e;
    }
    const verify = new DigestCheck(loc.sizeBytes, loc.sha256, async (actual) => {
      const detail = `read ${actual.size} bytes with SHA-256 ${actual.sha256}; recorded ${loc.sizeBytes} bytes, ${loc.sha256}`;
      await this.markUnavailable(inst, LocationStatus.Corrupt, detail);
      return new ObjectUnavailableError(inst.sopIuid, 'corrupt', `stored object of ${inst.sopIuid} is corrupt: ${detail}`);
    });
    stream.on('error', (e) => verify.destroy(e));
    return stream.pipe(verify);
  }

  /**
   * The whole object (Part 10 file as stored) in one buffer, verified (size and SHA-256) before
   * it is returned: nothing of a corrupt object ever reaches the caller. For objects that fit in
   * memory (callers bound the size and how many are held at once). On a filesystem tier this is
   * one open, one fstat and one read; the SHA-256 runs on the thread pool, off the event loop.
   */
  async readWhole(inst: RetrievableInstance): Promise<Buffer> {
    const loc = inst.location;
    if (!loc) throw new ObjectUnavailableError(inst.sopIuid, 'no-location', `no readable copy of ${inst.sopIuid} is recorded`);
    const storage = this.storages.get(loc.storageId);
    let bytes: Buffer;
    try {
      if (storage.readWhole) {
        const got = await storage.readWhole(loc.objectKey, loc.sizeBytes);
        if (!Buffer.isBuffer(got)) {
          await this.markUnavailable(inst, LocationStatus.Corrupt, `size ${got.size} in storage, ${loc.sizeBytes} recorded`);
          throw new ObjectUnavailableError(inst.sopIuid, 'corrupt', `stored object of ${inst.sopIuid} has the wrong size`);
        }
        bytes = got;
      } else {
        // No fast path (e.g. S3): the verified stream, collected (it fails on a mismatch itself).
        const chunks: Buffer[] = [];
        for await (const chunk of await this.open(inst)) chunks.push(chunk as Buffer);
        return Buffer.concat(chunks);
      }
    } catch (e) {
      if (e instanceof StorageNotFoundError) {
        await this.markUnavailable(inst, LocationStatus.Missing, e.message);
        throw new ObjectUnavailableError(inst.sopIuid, 'missing', `stored object of ${inst.sopIuid} is missing`);
      }
      throw e;
    }
    const sha256 = await sha256Hex(bytes);
    if (sha256 !== loc.sha256) {
      const detail = `read ${bytes.length} bytes with SHA-256 ${sha256}; recorded ${loc.sizeBytes} bytes, ${loc.sha256}`;
      await this.markUnavailable(inst, LocationStatus.Corrupt, detail);
      throw new ObjectUnavailableError(inst.sopIuid, 'corrupt', `stored object of ${inst.sopIuid} is corrupt: ${detail}`);
    }
    return bytes;
  }

  /** Log and record an unreadable location (MISSING or CORRUPT, audited) so repair can find it. */
  async markUnavailable(inst: RetrievableInstance, status: LocationStatus.Missing | LocationStatus.Corrupt, detail: string) {
    this.logger.error(`${status} object for ${inst.sopIuid} at ${inst.location?.storageId}:${inst.location?.objectKey}: ${detail}`);
    await this.locations.markUnreadable(inst.location!.id, status, detail).catch((e) => this.logger.error(`cannot mark location: ${e}`));
  }
}

/** Below this size a SHA-256 on the event loop is cheaper than a thread-pool round trip. */
const HASH_OFF_THREAD_MIN = 128 * 1024;

/** Lower-case hex SHA-256; large buffers are hashed on the thread pool (WebCrypto). */
export async function sha256Hex(bytes: Buffer): Promise<string> {
  if (bytes.length < HASH_OFF_THREAD_MIN) return createHash('sha256').update(bytes).digest('hex');
  return Buffer.from(await webcrypto.subtle.digest('SHA-256', bytes)).toString('hex');
}

/**
 * Pass-through that hashes what flows and, at the end, fails unless size and SHA-256 are the
 * expected ones. `onMismatch` records the problem and returns the error the stream fails with.
 * The last chunk is held back until the digest checks out: a consumer never receives the
 * complete bytes of an object whose digest is wrong (it gets an error instead of the last chunk).
 */
export class DigestCheck extends Transform {
  private readonly hash = createHash('sha256');
  private size = 0;
  private held: Buffer | undefined;

  constructor(
    private readonly expectedSize: number,
    private readonly expectedSha256: string,
    private readonly onMismatch: (actual: { size: number; sha256: string }) => Promise<Error>,
  ) {
    super();
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback) {
    this.size += chunk.length;
    this.hash.update(chunk);
    const previous = this.held;
    this.held = chunk;
    cb(null, previous);
  }

  override _flush(cb: TransformCallback) {
    const sha256 = this.hash.digest('hex');
    const last = this.held;
    this.held = undefined;
    if (this.size === this.expectedSize && sha256 === this.expectedSha256) return cb(null, last);
    void this.onMismatch({ size: this.size, sha256 }).then(
      (e) => cb(e),
      (e: unknown) => cb(e instanceof Error ? e : new Error(String(e))),
    );
  }
}
