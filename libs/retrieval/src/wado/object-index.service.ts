import { LocationStatus, type RetrievableInstance } from '#vna/catalog';
import { STORAGE_REGISTRY, StorageNotFoundError, type StorageRegistry } from '#vna/storage';
import { Inject, Injectable } from '@nestjs/common';
import { createHash } from 'node:crypto';
import type { Readable } from 'node:stream';
import { DigestCheck, ObjectReaderService, ObjectUnavailableError } from '../object-reader.service.js';
import { type ByteRange, indexObject, type ObjectIndex } from './object-index.js';

/** How long an index (and the verification it stands for) is trusted before the object is re-read. */
const TTL_MS = 10 * 60_000;
/** Cache bounds: ranges held in total (≈150 bytes each) and objects. */
const MAX_RANGES = 500_000;
const MAX_OBJECTS = 20_000;
/** Gaps up to this size between wanted ranges are read through rather than split into two reads. */
const MERGE_GAP = 64 * 1024;

/**
 * Byte maps of stored objects (frames, fragments, bulk elements), cached in memory, and verified
 * ranged reads through them.
 *
 * An index is built from one full read through ObjectReaderService (size and SHA-256 checked
 * against the location row); it is cached only if that read verified. Each ranged read afterwards
 * is checked against the range's SHA-256 taken in that pass, so a frame served from a range is
 * exactly the verified bytes; a mismatch marks the location CORRUPT.
 */
@Injectable()
export class ObjectIndexService {
  private readonly cache = new Map<string, { index: ObjectIndex; at: number }>();
  private readonly building = new Map<string, Promise<ObjectIndex>>();
  private held = 0;

  constructor(
    @Inject(STORAGE_REGISTRY) private readonly storages: StorageRegistry,
    private readonly reader: ObjectReaderService,
  ) {}

  private key(inst: RetrievableInstance): string {
    const loc = inst.location;
    if (!loc) throw new ObjectUnavailableError(inst.sopIuid, 'no-location', `no readable copy of ${inst.sopIuid} is recorded`);
    this.reader.assertNotOffline(inst);
    return `${loc.id}:${loc.sha256}`;
  }

  /** The object's byte map (from cache, or one verified full read). */
  async get(inst: RetrievableInstance): Promise<ObjectIndex> {
    const key = this.key(inst);
    const hit = this.cache.get(key);
    if (hit && Date.now() - hit.at < TTL_MS) {
      this.cache.delete(key);
      this.cache.set(key, hit); // LRU order
      return hit.index;
    }
    if (hit) this.evict(key);
    let pending = this.building.get(key);
    if (!pending) {
      pending = (async () => indexObject(await this.reader.open(inst)))();
      this.building.set(key, pending);
      void pending.then(
        (index) => this.remember(key, index),
        () => undefined,
      ).finally(() => this.building.delete(key));
    }
    return pending;
  }

  private remember(key: string, index: ObjectIndex) {
    this.cache.set(key, { index, at: Date.now() });
    this.held += index.size;
    for (const k of this.cache.keys()) {
      if (this.held <= MAX_RANGES && this.cache.size <= MAX_OBJECTS) break;
      this.evict(k);
    }
  }

  private evict(key: string) {
    const e = this.cache.get(key);
    if (!e) return;
    this.cache.delete(key);
    this.held -= e.index.size;
  }

  /** Reads `ranges` (in file order) into one buffer, concatenated, each range verified. */
  async read(inst: RetrievableInstance, ranges: ByteRange[]): Promise<Buffer> {
    const out: Buffer[] = [];
    let i = 0;
    while (i < ranges.length) {
      // One ranged read for a run of ranges separated by small gaps (fragment item headers).
      let j = i;
      while (j + 1 < ranges.length && ranges[j + 1]!.offset >= ranges[j]!.offset + ranges[j]!.length &&
        ranges[j + 1]!.offset - (ranges[j]!.offset + ranges[j]!.length) <= MERGE_GAP) j++;
      const start = ranges[i]!.offset;
      const end = ranges[j]!.offset + ranges[j]!.length;
      const bytes = await this.readSpan(inst, start, end);
      for (let k = i; k <= j; k++) {
        const r = ranges[k]!;
        const slice = bytes.subarray(r.offset - start, r.offset - start + r.length);
        if (slice.length !== r.length || createHash('sha256').update(slice).digest('hex') !== r.sha256) {
          await this.corrupt(inst, `bytes ${r.offset}..${r.offset + r.length - 1} differ from the verified read`);
        }
        out.push(slice);
      }
      i = j + 1;
    }
    return out.length === 1 ? out[0]! : Buffer.concat(out);
  }

  /** A stream of one range, failing at its end if the bytes differ (for values too large to buffer). */
  async stream(inst: RetrievableInstance, range: ByteRange): Promise<Readable> {
    const source = await this.open(inst, range.offset, range.offset + range.length);
    const check = new DigestCheck(range.length, { algorithm: 'sha256', expected: range.sha256 }, () =>
      this.corrupt(inst, `bytes ${range.offset}..${range.offset + range.length - 1} differ from the verified read`).catch((e: Error) => e),
    );
    source.on('error', (e) => check.destroy(e));
    return source.pipe(check);
  }

  private async open(inst: RetrievableInstance, start: number, end: number): Promise<Readable> {
    const loc = inst.location!;
    try {
      return await this.storages.get(loc.storageId).read(loc.objectKey, { start, end: end - 1 });
    } catch (e) {
      if (e instanceof StorageNotFoundError) {
        // A tier move may have switched the copy (same bytes, same map) and deleted this one.
        const moved = await this.reader.relocated(inst);
        if (moved?.location) return this.open(moved, start, end);
        this.evict(this.key(inst));
        await this.reader.markUnavailable(inst, LocationStatus.Missing, e.message);
        throw new ObjectUnavailableError(inst.sopIuid, 'missing', `stored object of ${inst.sopIuid} is missing`);
      }
      if (e instanceof RangeError) return this.corrupt(inst, e.message);
      throw e;
    }
  }

  private async readSpan(inst: RetrievableInstance, start: number, end: number): Promise<Buffer> {
    const chunks: Buffer[] = [];
    for await (const c of await this.open(inst, start, end)) chunks.push(c as Buffer);
    return Buffer.concat(chunks);
  }

  private async corrupt(inst: RetrievableInstance, detail: string): Promise<never> {
    this.evict(this.key(inst));
    await this.reader.markUnavailable(inst, LocationStatus.Corrupt, detail);
    throw new ObjectUnavailableError(inst.sopIuid, 'corrupt', `stored object of ${inst.sopIuid} is corrupt: ${detail}`);
  }


}

