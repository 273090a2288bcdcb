import { LocationRepository, LocationStatus, type RetrievableInstance } from '#vna/catalog';
import { STORAGE_REGISTRY, StorageNotFoundError, type StorageRegistry } from '#vna/storage';
import { Inject, Injectable, Logger } from '@nestjs/common';
import { createHash } from 'node:crypto';
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

  /** Log and record an unreadable location (MISSING or CORRUPT, audited) so repair can find it. */
  async markUnavailable(inst: RetrievableInstance, status: LocationStatus.Missing | LocationStatus.Corrupt, detail: string) {
    this.logger.error(`${status} object for ${inst.sopIuid} at ${inst.location?.storageId}:${inst.location?.objectKey}: ${detail}`);
    await this.locations.markUnreadable(inst.location!.id, status, detail).catch((e) => this.logger.error(`cannot mark location: ${e}`));
  }
}

/**
 * Pass-through that hashes what flows and, at the end, fails unless size and SHA-256 are the
 * expected ones. `onMismatch` records the problem and returns the error the stream fails with.
 */
export class DigestCheck extends Transform {
  private readonly hash = createHash('sha256');
  private size = 0;

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
    cb(null, chunk);
  }

  override _flush(cb: TransformCallback) {
    const sha256 = this.hash.digest('hex');
    if (this.size === this.expectedSize && sha256 === this.expectedSha256) return cb();
    void this.onMismatch({ size: this.size, sha256 }).then(
      (e) => cb(e),
      (e: unknown) => cb(e instanceof Error ? e : new Error(String(e))),
    );
  }
}
