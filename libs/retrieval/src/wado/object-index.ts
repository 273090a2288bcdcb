/**
 * Byte map of a stored Part 10 object, built in one sequential pass over the (verified) stream:
 * where each long element value, each frame of the top-level pixel data and each encapsulated
 * fragment lies in the file, with the SHA-256 of each of those ranges. Values are skipped (hashed
 * on the way), never decoded, except the few small attributes needed for frame math.
 *
 * With the map, frames and bulk data are served by ranged reads of just their bytes, and every
 * ranged read is checked against the range digest taken from a pass whose whole-object SHA-256
 * matched the recorded one: nothing is served that was not verified.
 */
import { createHash, type Hash } from 'node:crypto';
import { parsePart10Header } from '#vna/dimse';
import dcmjs from 'dcmjs';
import { DEFLATED, EXPLICIT_BE, IMPLICIT_LE } from './accept.js';

export interface ByteRange {
  /** Offset in the stored file. */
  offset: number;
  length: number;
  /** Lower-case hex SHA-256 of the bytes. */
  sha256: string;
}

export interface ObjectIndex {
  transferSyntaxUid: string;
  /** Top-level pixel data: null when the object has none. */
  pixel: { encapsulated: boolean; numberOfFrames: number } | null;
  /** Each frame's pieces in order (native: one range; encapsulated: the frame's fragments). */
  frames: ByteRange[][];
  /** When frames cannot be delimited (bulk data of the pixel data still works): why. */
  framesError?: string;
  /** Values longer than BULK_MIN bytes by tag path ("7FE00010", "00880200/0/7FE00010"); upper-case hex. */
  bulk: Map<string, ByteRange>;
  /** Number of ranges held (for cache accounting). */
  size: number;
}

export class ObjectIndexError extends Error {
  constructor(
    message: string,
    readonly unsupported = false,
  ) {
    super(message);
    this.name = 'ObjectIndexError';
  }
}

/** Values longer than this get a BulkDataURI in the metadata (libs/dicom keeps ≤ 1024 bytes inline). */
export const BULK_MIN = 1024;

const LONG_VRS = new Set(['OB', 'OD', 'OF', 'OL', 'OV', 'OW', 'SQ', 'SV', 'UC', 'UN', 'UR', 'UT', 'UV']);
const UNDEFINED = 0xffffffff;
const PIXEL_DATA = 0x7fe00010;
const EXTENDED_OFFSET_TABLE = 0x7fe00001;
const FRAME_ATTRS = new Set([0x00280002, 0x00280008, 0x00280010, 0x00280011, 0x00280100]);

type Sink = (chunk: Buffer, offset: number) => void;

/** Pull-based reader over an async byte stream, tracking the absolute offset. */
class ByteReader {
  private buf: Buffer = Buffer.alloc(0);
  private pos = 0;
  private done = false;
  constructor(private readonly it: AsyncIterator<Buffer | string>) {}

  get offset(): number {
    return this.pos;
  }

  private async fill(n: number): Promise<boolean> {
    while (this.buf.length < n && !this.done) {
      const r = await this.it.next();
      if (r.done) this.done = true;
      else {
        const c = typeof r.value === 'string' ? Buffer.from(r.value, 'latin1') : r.value;
        this.buf = this.buf.length ? Buffer.concat([this.buf, c]) : c;
      }
    }
    return this.buf.length >= n;
  }

  async atEnd(): Promise<boolean> {
    return !(await this.fill(1));
  }

  /** Up to n bytes without consuming them. */
  async peek(n: number): Promise<Buffer> {
    await this.fill(n);
    return this.buf.subarray(0, n);
  }

  async read(n: number): Promise<Buffer> {
    if (!(await this.fill(n))) throw new ObjectIndexError(`object ends inside an element at offset ${this.pos}`);
    const b = this.buf.subarray(0, n);
    this.buf = this.buf.subarray(n);
    this.pos += n;
    return b;
  }

  async skip(n: number, sink?: Sink): Promise<void> {
    while (n > 0) {
      if (!this.buf.length && !(await this.fill(1))) throw new ObjectIndexError(`object ends inside a value at offset ${this.pos}`);
      const take = Math.min(n, this.buf.length);
      sink?.(this.buf.subarray(0, take), this.pos);
      this.buf = this.buf.subarray(take);
      this.pos += take;
      n -= take;
    }
  }

  /** Consume the rest (so a verifying source reaches its end check). */
  async drain(): Promise<void> {
    this.buf = Buffer.alloc(0);
    while (!this.done) {
      const r = await this.it.next();
      if (r.done) this.done = true;
    }
  }
}

/** Hashes consecutive sub-ranges [offset, offset+length) of the bytes fed to it. */
export class RangeHasher {
  private readonly hashes: Hash[];
  private i = 0;
  constructor(private readonly ranges: Array<{ offset: number; length: number }>) {
    this.hashes = ranges.map(() => createHash('sha256'));
  }

  readonly sink: Sink = (chunk, offset) => {
    let at = offset;
    let rest = chunk;
    while (rest.length && this.i < this.ranges.length) {
      const r = this.ranges[this.i]!;
      const end = r.offset + r.length;
      if (at >= end) {
        this.i++;
        continue;
      }
      if (at < r.offset) {
        const gap = Math.min(r.offset - at, rest.length);
        rest = rest.subarray(gap);
        at += gap;
        continue;
      }
      const take = Math.min(end - at, rest.length);
      this.hashes[this.i]!.update(rest.subarray(0, take));
      rest = rest.subarray(take);
      at += take;
    }
  };

  digests(): ByteRange[] {
    return this.ranges.map((r, k) => ({ offset: r.offset, length: r.length, sha256: this.hashes[k]!.digest('hex') }));
  }
}

interface Fragment extends ByteRange {
  /** Offset of the fragment's item tag (Basic/Extended Offset Table offsets point there). */
  itemOffset: number;
  /** First bytes of the value (JPEG SOI detection). */
  head: Buffer;
}

const hex8 = (tag: number) => tag.toString(16).toUpperCase().padStart(8, '0');

function dictionaryVr(tag: number): string | undefined {
  const key = `(${hex8(tag).slice(0, 4)},${hex8(tag).slice(4)})`;
  return dcmjs.data.DicomMetaDictionary.dictionary[key]?.vr;
}

class Walker {
  private readonly little: boolean;
  private readonly attrs = new Map<number, number>();
  readonly bulk = new Map<string, ByteRange>();
  frames: ByteRange[][] = [];
  framesError?: string;
  pixel: ObjectIndex['pixel'] = null;
  private eot?: Buffer;

  constructor(
    private readonly r: ByteReader,
    readonly ts: string,
  ) {
    this.little = ts !== EXPLICIT_BE;
  }

  private u16(b: Buffer, o: number) {
    return this.little ? b.readUInt16LE(o) : b.readUInt16BE(o);
  }
  private u32(b: Buffer, o: number) {
    return this.little ? b.readUInt32LE(o) : b.readUInt32BE(o);
  }

  /** Elements until `end` (absolute), an item delimiter (end null, nested) or EOF (top level). */
  async elements(implicit: boolean, end: number | null, path: string, top: boolean): Promise<void> {
    for (;;) {
      if (end !== null && this.r.offset >= end) return;
      if (top && (await this.r.atEnd())) return;
      const h = await this.r.read(8);
      const tag = ((this.u16(h, 0) << 16) | this.u16(h, 2)) >>> 0;
      if (tag === 0xfffee00d) return; // item delimiter (length 0 already read)
      let vr: string | undefined;
      let length: number;
      if (implicit) {
        length = this.u32(h, 4);
        vr = dictionaryVr(tag);
      } else {
        vr = h.toString('latin1', 4, 6);
        if (!/^[A-Z]{2}$/.test(vr)) throw new ObjectIndexError(`invalid VR at offset ${this.r.offset - 8}`);
        if (LONG_VRS.has(vr)) length = this.u32(await this.r.read(4), 0);
        else length = this.u16(h, 6);
      }
      const tagPath = `${path}${hex8(tag)}`;
      const valueOffset = this.r.offset;
      if (length === UNDEFINED) {
        if (tag === PIXEL_DATA || vr === 'OB' || vr === 'OW') await this.encapsulated(top && tag === PIXEL_DATA);
        // SQ, UN or an unknown implicit element: items (UN content is implicit VR LE, PS3.5 6.2.2).
        else await this.sequence(implicit || vr === 'UN', null, `${tagPath}/`);
      } else if (vr === 'SQ') {
        await this.sequence(implicit, valueOffset + length, `${tagPath}/`);
      } else if (top && FRAME_ATTRS.has(tag) && length <= 16) {
        const v = await this.r.read(length);
        const n = tag === 0x00280008 ? Number.parseInt(v.toString('latin1').trim(), 10) : length >= 2 ? this.u16(v, 0) : NaN;
        if (Number.isFinite(n)) this.attrs.set(tag, n);
      } else if (top && tag === EXTENDED_OFFSET_TABLE && length <= 64 * 1024 * 1024) {
        this.eot = Buffer.from(await this.r.read(length));
      } else if (top && tag === PIXEL_DATA) {
        await this.nativePixels(valueOffset, length);
      } else if (length > BULK_MIN) {
        const h2 = new RangeHasher([{ offset: valueOffset, length }]);
        await this.r.skip(length, h2.sink);
        this.bulk.set(tagPath, h2.digests()[0]!);
      } else {
        await this.r.skip(length);
      }
    }
  }

  /** Items of a sequence until `end` (defined length) or the sequence delimiter. */
  private async sequence(implicit: boolean, end: number | null, path: string): Promise<void> {
    for (let index = 0; ; index++) {
      if (end !== null && this.r.offset >= end) return;
      const h = await this.r.read(8);
      const tag = ((this.u16(h, 0) << 16) | this.u16(h, 2)) >>> 0;
      const length = this.u32(h, 4);
      if (tag === 0xfffee0dd) return;
      if (tag !== 0xfffee000) throw new ObjectIndexError(`expected an item at offset ${this.r.offset - 8}`);
      await this.elements(implicit, length === UNDEFINED ? null : this.r.offset + length, `${path}${index}/`, false);
    }
  }

  private frameGeometry(): { frames: number; frameBytes: number | null } {
    const frames = Math.max(this.attrs.get(0x00280008) ?? 1, 1);
    const rows = this.attrs.get(0x00280010);
    const cols = this.attrs.get(0x00280011);
    const spp = this.attrs.get(0x00280002) ?? 1;
    const bits = this.attrs.get(0x00280100);
    if (!rows || !cols || !bits) return { frames, frameBytes: null };
    const frameBits = rows * cols * spp * bits;
    return { frames, frameBytes: frameBits % 8 === 0 ? frameBits / 8 : null };
  }

  private async nativePixels(valueOffset: number, length: number): Promise<void> {
    const { frames, frameBytes } = this.frameGeometry();
    this.pixel = { encapsulated: false, numberOfFrames: frames };
    const whole = new RangeHasher([{ offset: valueOffset, length }]);
    let perFrame: RangeHasher | undefined;
    if (frameBytes === null) {
      this.framesError = 'frames of this pixel data do not start on byte boundaries (or Rows/Columns/Bits Allocated are absent)';
    } else if (frameBytes * frames > length) {
      this.framesError = `pixel data holds ${length} bytes, less than ${frames} frame(s) of ${frameBytes} bytes`;
    } else {
      perFrame = new RangeHasher(Array.from({ length: frames }, (_, k) => ({ offset: valueOffset + k * frameBytes, length: frameBytes })));
    }
    await this.r.skip(length, (c, o) => {
      whole.sink(c, o);
      perFrame?.sink(c, o);
    });
    this.bulk.set(hex8(PIXEL_DATA), whole.digests()[0]!);
    if (perFrame) this.frames = perFrame.digests().map((d) => [d]);
  }

  /** Encapsulated pixel data: offset table item, then fragments until the sequence delimiter. */
  private async encapsulated(record: boolean): Promise<void> {
    const fragments: Fragment[] = [];
    let bot: Buffer | undefined;
    for (let index = 0; ; index++) {
      const itemOffset = this.r.offset;
      const h = await this.r.read(8);
      const tag = ((this.u16(h, 0) << 16) | this.u16(h, 2)) >>> 0;
      const length = this.u32(h, 4);
      if (tag === 0xfffee0dd) break;
      if (tag !== 0xfffee000 || length === UNDEFINED) throw new ObjectIndexError(`expected a fragment item at offset ${itemOffset}`);
      if (!record) {
        await this.r.skip(length);
        continue;
      }
      if (index === 0) {
        bot = Buffer.from(await this.r.read(length));
        continue;
      }
      const offset = this.r.offset;
      const head = Buffer.from(await this.r.peek(Math.min(length, 4)));
      const hasher = new RangeHasher([{ offset, length }]);
      await this.r.skip(length, hasher.sink);
      fragments.push({ ...hasher.digests()[0]!, itemOffset, head });
    }
    if (!record) return;
    const frames = Math.max(this.attrs.get(0x00280008) ?? 1, 1);
    this.pixel = { encapsulated: true, numberOfFrames: frames };
    const strip = (f: Fragment): ByteRange => ({ offset: f.offset, length: f.length, sha256: f.sha256 });
    try {
      this.frames = framesOfFragments(fragments, frames, this.offsets(bot, frames, 4) ?? this.offsets(this.eot, frames, 8), this.ts).map((fr) =>
        fr.map(strip),
      );
    } catch (e) {
      this.framesError = (e as Error).message;
    }
    // The pixel data's bulk data of an encapsulated object is served frame by frame.
  }

  private offsets(table: Buffer | undefined, frames: number, width: 4 | 8): number[] | undefined {
    if (!table?.length) return undefined;
    const n = table.length / width;
    if (!Number.isInteger(n) || n !== frames) return undefined;
    return Array.from({ length: n }, (_, k) =>
      width === 4 ? this.u32(table, k * 4) : Number(this.little ? table.readBigUInt64LE(k * 8) : table.readBigUInt64BE(k * 8)),
    );
  }
}

/**
 * Groups fragments into frames (PS3.5 A.4): one frame = all fragments; an offset table (offsets of
 * each frame's first item relative to the first fragment's item); one fragment per frame; or, for
 * JPEG family syntaxes, a new frame at each fragment starting with an SOI marker.
 */
export function framesOfFragments<F extends { itemOffset: number; head: Buffer }>(
  fragments: F[],
  frames: number,
  offsets: number[] | undefined,
  ts: string,
): F[][] {
  if (!fragments.length) throw new ObjectIndexError('encapsulated pixel data without fragments');
  if (frames === 1) return [fragments];
  if (offsets) {
    const base = fragments[0]!.itemOffset;
    const out: F[][] = offsets.map(() => []);
    for (const f of fragments) {
      const rel = f.itemOffset - base;
      let k = -1;
      for (let j = 0; j < offsets.length; j++) if (offsets[j]! <= rel) k = j;
      if (k < 0) throw new ObjectIndexError('offset table does not match the fragments');
      out[k]!.push(f);
    }
    if (out.some((fr) => !fr.length)) throw new ObjectIndexError('offset table names a frame without fragments');
    return out;
  }
  if (fragments.length === frames) return fragments.map((f) => [f]);
  if (/^1\.2\.840\.10008\.1\.2\.4\.(5\d|70)$/.test(ts)) {
    const out: F[][] = [];
    for (const f of fragments) {
      if (f.head[0] === 0xff && f.head[1] === 0xd8) out.push([f]);
      else if (out.length) out[out.length - 1]!.push(f);
      else throw new ObjectIndexError('first fragment does not start a JPEG frame');
    }
    if (out.length === frames) return out;
  }
  throw new ObjectIndexError(`cannot delimit ${frames} frames in ${fragments.length} fragments without an offset table`, true);
}

/**
 * Builds the index of a Part 10 object from its byte stream (read to its end, so that a verifying
 * stream gets to check the digest). Deflated data sets cannot be mapped to file offsets.
 */
export async function indexObject(source: AsyncIterable<Buffer | string>): Promise<ObjectIndex> {
  const it = source[Symbol.asyncIterator]();
  const r = new ByteReader(it);
  try {
    let want = 4096;
    let info;
    for (;;) {
      const head = await r.peek(want);
      info = parsePart10Header(head, head.length < want);
      if (info) break;
      if (want >= 4 * 1024 * 1024) throw new ObjectIndexError('Part 10 header larger than 4 MiB');
      want *= 2;
    }
    const ts = info.transferSyntaxUid;
    if (ts === DEFLATED) throw new ObjectIndexError('the object is stored deflated: frames and bulk data cannot be located in it', true);
    await r.skip(info.headerLength);
    const w = new Walker(r, ts);
    await w.elements(ts === IMPLICIT_LE, null, '', true);
    const size = w.bulk.size + w.frames.reduce((n, f) => n + f.length, 0);
    return { transferSyntaxUid: ts, pixel: w.pixel, frames: w.frames, framesError: w.framesError, bulk: w.bulk, size };
  } catch (e) {
    // Still read to the end: a corrupt object must be reported as such, not as unparsable.
    await r.drain();
    throw e;
  } finally {
    await it.return?.();
  }
}
