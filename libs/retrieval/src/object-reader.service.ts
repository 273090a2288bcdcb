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
        await this.mark(inst, LocationStatus.Corrupt, `size ${stat.size} in storage, ${loc.sizeBytes} recorded`);
        throw new ObjectUnavailableError(inst.sopIuid, 'corrupt', `stored object of ${inst.sopIuid} has the wrong size`);
      }
      stream = await storage.read(loc.objectKey);
    } catch (e) {
      if (e instanceof StorageNotFoundError) {
        await this.mark(inst, LocationStatus.Missing, e.message);
        throw new ObjectUnavailableError(inst.sopIuid, 'missing', `stored object of ${inst.sopIuid} is missing`);
      }
      throw e;
    }
    const verify = new DigestCheck(loc.sizeBytes, loc.sha256, async (detail) => {
      await this.mark(inst, LocationStatus.Corrupt, detail);
    }, inst.sopIuid);
    stream.on('error', (e) => verify.destroy(e));
    return stream.pipe(verify);
  }

  private async mark(inst: RetrievableInstance, status: LocationStatus.Missing | LocationStatus.Corrupt, detail: string) {
    this.logger.error(`${status} object for ${inst.sopIuid} at ${inst.location?.storageId}:${inst.location?.objectKey}: ${detail}`);
    await this.locations.markUnreadable(inst.location!.id, status, detail).catch((e) => this.logger.error(`cannot mark location: ${e}`));
  }
}

/** Pass-through that fails at the end when size or SHA-256 differ from the recorded ones. */
class DigestCheck extends Transform {
  private readonly hash = createHash('sha256');
  private size = 0;

  constructor(
    private readonly expectedSize: number,
    private readonly expectedSha256: string,
    private readonly onMismatch: (detail: string) => Promise<void>,
    private readonly sopIuid: string,
  ) {
    super();
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback) {
    this.size += chunk.length;
    this.hash.update(chunk);
    cb(null, chunk);
  }

  override _flush(cb: TransformCallback) {
    const digest = this.hash.digest('hex');
    if (this.size === this.expectedSize && digest === this.expectedSha256) return cb();
    const detail = `read ${this.size} bytes with SHA-256 ${digest}; recorded ${this.expectedSize} bytes, ${this.expectedSha256}`;
    void this.onMismatch(detail).finally(() =>
      cb(new ObjectUnavailableError(this.sopIuid, 'corrupt', `stored object of ${this.sopIuid} is corrupt: ${detail}`)),
    );
  }
}
