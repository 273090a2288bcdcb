import { LocationRepository, LocationStatus, type RetrievableInstance, type RetrievableLocation } from '#vna/catalog';
import {
  type CheckAlgorithm,
  type ObjectStat,
  type PooledBytes,
  STORAGE_REGISTRY,
  StorageNotFoundError,
  type StorageRegistry,
  warmHashing,
  xxh64Hex,
  Xxh64Hash,
} from '#vna/storage';
import { VNA_CONFIG, type VnaConfig } from '#vna/config';
import { Inject, Injectable, Logger, type OnApplicationBootstrap, type OnApplicationShutdown, Optional } from '@nestjs/common';
import { createHash } from 'node:crypto';
import { type Readable, Transform, type TransformCallback } from 'node:stream';

/** Why an object could not be served. */
export class ObjectUnavailableError extends Error {
  constructor(
    readonly sopIuid: string,
    /** `offline`: the copy is on an offline tier (restore first); not a fault, nothing is marked. */
    readonly reason: 'no-location' | 'missing' | 'corrupt' | 'offline',
    message: string,
  ) {
    super(message);
    this.name = 'ObjectUnavailableError';
  }
}

/** A verified object's bytes, perhaps in pooled memory (see ObjectReaderService.readVerified). */
export interface VerifiedBytes {
  bytes: Buffer;
  release(): void;
}

/** What a copy is checked against when read: its XXH64 where recorded (ten times cheaper), else its SHA-256. */
export interface ReadCheck {
  algorithm: CheckAlgorithm;
  expected: string;
}

export function readCheckOf(loc: Pick<RetrievableLocation, 'sha256' | 'xxh64'>): ReadCheck {
  return loc.xxh64 ? { algorithm: 'xxh64', expected: loc.xxh64 } : { algorithm: 'sha256', expected: loc.sha256 };
}

const ALGORITHM_NAME: Record<CheckAlgorithm, string> = { xxh64: 'XXH64', sha256: 'SHA-256' };
/** Check values learnt from SHA-256-verified reads are written this often, and at most this many wait. */
const CHECK_VALUE_FLUSH_MS = 2000;
const MAX_PENDING_CHECK_VALUES = 10_000;

/**
 * Opens stored objects for retrieval. Every byte served is checked against the recorded size and
 * check value (XXH64, or SHA-256 for copies recorded without one) as it flows: a mismatch errors
 * the stream at its end (the caller must abort what it was sending, never complete it) and marks
 * the location CORRUPT; an absent object is MISSING.
 */
@Injectable()
export class ObjectReaderService implements OnApplicationBootstrap, OnApplicationShutdown {
  private readonly logger = new Logger(ObjectReaderService.name);
  /** Tiers with availability `offline` (VNA_TIERS): never read directly. */
  private readonly offline: ReadonlySet<string>;
  /** XXH64 of copies recorded without one, learnt from reads verified by SHA-256, not yet written. */
  private learnt = new Map<string, { locationId: string; sha256: string; xxh64: string }>();
  private learntTimer?: NodeJS.Timeout;

  constructor(
    @Inject(STORAGE_REGISTRY) private readonly storages: StorageRegistry,
    private readonly locations: LocationRepository,
    @Optional() @Inject(VNA_CONFIG) config?: VnaConfig,
  ) {
    this.offline = new Set((config?.tiers ?? []).filter((t) => t.availability === 'offline').map((t) => t.id));
  }

  /**
   * Throws ObjectUnavailableError (`offline`) when the instance's copy is on an offline tier:
   * such a copy must be restored (moved to an online or nearline tier) before it is read, so
   * retrieval answers as for an unavailable object and marks nothing.
   */
  assertNotOffline(inst: RetrievableInstance): void {
    const loc = inst.location;
    if (loc && this.offline.has(loc.storageId)) {
      throw new ObjectUnavailableError(
        inst.sopIuid,
        'offline',
        `stored object of ${inst.sopIuid} is on the offline tier ${loc.storageId} and not restored (POST /api/studies/${inst.studyIuid}/restore, or retrieve again later)`,
      );
    }
  }

  /** Start the hashing threads now: a thread's start-up (tens of ms) is not paid by the first retrieval. */
  async onApplicationBootstrap(): Promise<void> {
    // Without threads, hashing falls back to the event loop: a slower start, not a failure.
    await warmHashing().catch((e: unknown) => this.logger.warn(`hashing threads did not start: ${String(e)}`));
  }

  async onApplicationShutdown(): Promise<void> {
    clearTimeout(this.learntTimer);
    await this.flushCheckValues();
  }

  /**
   * Writes the XXH64 values learnt since the last flush (batched, never on a retrieval's path):
   * a copy recorded before XXH64 existed is checked by SHA-256 once, and by XXH64 from then on.
   */
  async flushCheckValues(): Promise<void> {
    this.learntTimer = undefined;
    const batch = [...this.learnt.values()];
    this.learnt = new Map();
    // Lost on a database error: the copy's next SHA-256-verified read learns it again.
    await this.locations.recordCheckValues(batch).catch((e) => this.logger.warn(`check values not recorded: ${(e as Error).message}`));
  }

  private learnCheckValue(loc: RetrievableLocation, xxh64: string): void {
    if (this.learnt.size >= MAX_PENDING_CHECK_VALUES) return;
    this.learnt.set(loc.id, { locationId: loc.id, sha256: loc.sha256, xxh64 });
    if (!this.learntTimer) {
      this.learntTimer = setTimeout(() => void this.flushCheckValues(), CHECK_VALUE_FLUSH_MS);
      this.learntTimer.unref();
    }
  }

  /** Open the whole object (Part 10 file as stored), verified. */
  async open(inst: RetrievableInstance): Promise<Readable> {
    const { loc, storage } = this.readable(inst);
    let stream: Readable;
    try {
      const stat = await storage.stat(loc.objectKey);
      if (!stat) throw new StorageNotFoundError(loc.storageId, loc.objectKey);
      if (stat.size !== loc.sizeBytes) throw await this.wrongSize(inst, stat.size);
      stream = await storage.read(loc.objectKey);
    } catch (e) {
      if (!(e instanceof StorageNotFoundError)) throw e;
      const moved = await this.relocated(inst);
      if (moved) return this.open(moved);
      throw await this.missing(inst, e);
    }
    const check = readCheckOf(loc);
    const verify = new DigestCheck(
      loc.sizeBytes,
      check,
      (actual) => this.wrongDigest(inst, actual.size, check.algorithm, actual.digest),
      check.algorithm === 'sha256' ? (xxh64) => this.learnCheckValue(loc, xxh64) : undefined,
    );
    stream.on('error', (e) => verify.destroy(e));
    return stream.pipe(verify);
  }

  /**
   * The whole object (Part 10 file as stored) in one buffer, verified (size and check value) before
   * it is returned: nothing of a corrupt object ever reaches the caller. For objects that fit in
   * memory (callers bound the size and how many are held at once). On a filesystem tier a hashing
   * thread opens the file, checks its size, reads it and hashes it (`readWholeHashed`), and the
   * bytes sit in pooled memory that is reused once the caller calls `release()`: call it when
   * nothing refers to the bytes any more (for a socket, in the write's callback), never before; an
   * error path may skip it (the memory is then not reused). Other backends (S3): the verified
   * stream, collected.
   */
  async readVerified(inst: RetrievableInstance): Promise<VerifiedBytes> {
    const { loc, storage } = this.readable(inst);
    if (!storage.readWholeHashed) {
      // The verified stream fails on a mismatch itself (and follows a moved copy).
      const chunks: Buffer[] = [];
      for await (const chunk of await this.open(inst)) chunks.push(chunk as Buffer);
      return { bytes: Buffer.concat(chunks), release: () => undefined };
    }
    const check = readCheckOf(loc);
    let got: PooledBytes | ObjectStat;
    try {
      got = await storage.readWholeHashed(loc.objectKey, loc.sizeBytes, check.algorithm);
    } catch (e) {
      if (!(e instanceof StorageNotFoundError)) throw e;
      const moved = await this.relocated(inst);
      if (moved) return this.readVerified(moved);
      throw await this.missing(inst, e);
    }
    if (!('bytes' in got)) throw await this.wrongSize(inst, got.size);
    if (got.digest !== check.expected) {
      got.release();
      throw await this.wrongDigest(inst, loc.sizeBytes, check.algorithm, got.digest);
    }
    if (check.algorithm === 'sha256') this.learnCheckValue(loc, xxh64Hex(got.bytes));
    return { bytes: got.bytes, release: got.release };
  }

  private readable(inst: RetrievableInstance) {
    const loc = inst.location;
    if (!loc) throw new ObjectUnavailableError(inst.sopIuid, 'no-location', `no readable copy of ${inst.sopIuid} is recorded`);
    this.assertNotOffline(inst);
    return { loc, storage: this.storages.get(loc.storageId) };
  }

  private async missing(inst: RetrievableInstance, e: StorageNotFoundError): Promise<ObjectUnavailableError> {
    await this.markUnavailable(inst, LocationStatus.Missing, e.message);
    return new ObjectUnavailableError(inst.sopIuid, 'missing', `stored object of ${inst.sopIuid} is missing`);
  }

  private async wrongSize(inst: RetrievableInstance, size: number): Promise<ObjectUnavailableError> {
    await this.markUnavailable(inst, LocationStatus.Corrupt, `size ${size} in storage, ${inst.location!.sizeBytes} recorded`);
    return new ObjectUnavailableError(inst.sopIuid, 'corrupt', `stored object of ${inst.sopIuid} has the wrong size`);
  }

  private async wrongDigest(inst: RetrievableInstance, size: number, algorithm: CheckAlgorithm, digest: string): Promise<ObjectUnavailableError> {
    const loc = inst.location!;
    const recorded = algorithm === 'xxh64' ? `${ALGORITHM_NAME.xxh64} ${loc.xxh64} (SHA-256 ${loc.sha256})` : `${ALGORITHM_NAME.sha256} ${loc.sha256}`;
    const detail = `read ${size} bytes with ${ALGORITHM_NAME[algorithm]} ${digest}; recorded ${loc.sizeBytes} bytes, ${recorded}`;
    await this.markUnavailable(inst, LocationStatus.Corrupt, detail);
    return new ObjectUnavailableError(inst.sopIuid, 'corrupt', `stored object of ${inst.sopIuid} is corrupt: ${detail}`);
  }

  /**
   * The instance with its current copy when that is not the one just found missing: a tier move
   * switched the locations and deleted the source after the caller looked the location up.
   */
  async relocated(inst: RetrievableInstance): Promise<RetrievableInstance | undefined> {
    const current = await this.locations.currentLocation(inst.instanceId);
    return current && current.id !== inst.location?.id ? { ...inst, location: current } : undefined;
  }

  /** Log and record an unreadable location (MISSING or CORRUPT, audited) so repair can find it. */
  async markUnavailable(inst: RetrievableInstance, status: LocationStatus.Missing | LocationStatus.Corrupt, detail: string) {
    this.logger.error(`${status} object for ${inst.sopIuid} at ${inst.location?.storageId}:${inst.location?.objectKey}: ${detail}`);
    await this.locations.markUnreadable(inst.location!.id, status, detail).catch((e) => this.logger.error(`cannot mark location: ${e}`));
  }
}

/**
 * Pass-through that hashes what flows and, at the end, fails unless size and digest (`check`) are
 * the expected ones. `onMismatch` records the problem and returns the error the stream fails with;
 * `onVerified`, if given, gets the XXH64 of bytes that passed a SHA-256 check.
 * The last chunk is held back until the digest checks out: a consumer never receives the
 * complete bytes of an object whose digest is wrong (it gets an error instead of the last chunk).
 */
export class DigestCheck extends Transform {
  private readonly hash: { update(chunk: Buffer): unknown; hex(): string };
  private readonly learn: Xxh64Hash | undefined;
  private size = 0;
  private held: Buffer | undefined;

  constructor(
    private readonly expectedSize: number,
    private readonly check: ReadCheck,
    private readonly onMismatch: (actual: { size: number; digest: string }) => Promise<Error>,
    private readonly onVerified?: (xxh64: string) => void,
  ) {
    super();
    if (check.algorithm === 'xxh64') {
      this.hash = new Xxh64Hash();
    } else {
      const sha = createHash('sha256');
      this.hash = { update: (chunk) => sha.update(chunk), hex: () => sha.digest('hex') };
      if (onVerified) this.learn = new Xxh64Hash();
    }
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback) {
    this.size += chunk.length;
    this.hash.update(chunk);
    this.learn?.update(chunk);
    const previous = this.held;
    this.held = chunk;
    cb(null, previous);
  }

  override _flush(cb: TransformCallback) {
    const digest = this.hash.hex();
    const last = this.held;
    this.held = undefined;
    if (this.size === this.expectedSize && digest === this.check.expected) {
      if (this.learn) this.onVerified?.(this.learn.hex());
      return cb(null, last);
    }
    void this.onMismatch({ size: this.size, digest }).then(
      (e) => cb(e),
      (e: unknown) => cb(e instanceof Error ? e : new Error(String(e))),
    );
  }
}
