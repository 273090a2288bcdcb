import { Transform, type TransformCallback } from 'node:stream';

/**
 * Passes bytes through unchanged while walking the element structure of a data set (or a whole
 * Part 10 file), so a truncated or malformed object is detected at the end of the stream without
 * buffering it: every element, item and sequence must end exactly where its length says.
 * Values are skipped, never decoded. Deflated data sets cannot be walked and are passed as is.
 */
export class DicomStructureError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'DicomStructureError';
  }
}

const LONG_VRS = new Set(['OB', 'OD', 'OF', 'OL', 'OV', 'OW', 'SQ', 'SV', 'UC', 'UN', 'UR', 'UT', 'UV']);
const UNDEFINED = 0xffffffff;
const DEFLATED = '1.2.840.10008.1.2.1.99';

type Ctx =
  /** Elements until the item delimiter (undefined-length item) or end of stream (top level). */
  | { kind: 'items-elements'; implicit: boolean; topLevel: boolean }
  /** Items until the sequence delimiter (undefined-length SQ/UN or encapsulated pixel data). */
  | { kind: 'sequence'; implicit: boolean; fragments: boolean };

export interface StructureCheckOptions {
  /** 'part10': preamble + DICM + meta group first; 'dataset': a bare data set in `transferSyntaxUid`. */
  mode: 'part10' | 'dataset';
  transferSyntaxUid?: string;
}

export class DicomStructureCheck extends Transform {
  private buf: Buffer = Buffer.alloc(0);
  private skip = 0;
  private phase: 'preamble' | 'meta' | 'dataset' | 'off';
  private implicit = false;
  private littleEndian = true;
  private stack: Ctx[] = [];
  private metaTs = '';
  private captureTs = false;
  /** Bytes seen in total, for error messages. */
  private offset = 0;
  private elements = 0;

  constructor(private readonly options: StructureCheckOptions) {
    super();
    if (options.mode === 'part10') this.phase = 'preamble';
    else this.startDataset(options.transferSyntaxUid ?? '');
  }

  /** Transfer syntax read from the file meta (part10 mode). */
  get transferSyntaxUid(): string {
    return this.options.mode === 'part10' ? this.metaTs : (this.options.transferSyntaxUid ?? '');
  }

  private startDataset(ts: string) {
    if (ts === DEFLATED || ts === '') {
      this.phase = 'off';
      return;
    }
    this.phase = 'dataset';
    this.implicit = ts === '1.2.840.10008.1.2';
    this.littleEndian = ts !== '1.2.840.10008.1.2.2';
    this.stack = [{ kind: 'items-elements', implicit: this.implicit, topLevel: true }];
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    try {
      this.consume(chunk);
    } catch (e) {
      cb(e as Error);
      return;
    }
    cb(null, chunk);
  }

  override _flush(cb: TransformCallback): void {
    try {
      this.finish();
    } catch (e) {
      cb(e as Error);
      return;
    }
    cb();
  }

  /** Check the next bytes without piping (throws DicomStructureError). */
  update(chunk: Buffer): void {
    this.consume(chunk);
  }

  /** All bytes seen: throws DicomStructureError when the object ended early. */
  finish(): void {
    if (this.phase === 'off') return;
    if (this.phase === 'preamble') throw new DicomStructureError('not a DICOM Part 10 file: shorter than its preamble');
    if (this.skip > 0) {
      throw new DicomStructureError(`truncated: the data set ends ${this.skip} bytes before its last element's value does`);
    }
    if (this.buf.length > 0) throw new DicomStructureError(`truncated: ${this.buf.length} bytes of an incomplete element header at the end`);
    if (this.phase === 'meta') throw new DicomStructureError('truncated: the file ends inside its file meta group');
    if (this.stack.length !== 1) throw new DicomStructureError('truncated: the data set ends inside a sequence or item');
    if (this.elements === 0) throw new DicomStructureError('empty data set');
  }

  private consume(chunk: Buffer) {
    let data = chunk;
    this.offset += chunk.length;
    while (data.length > 0 && this.phase !== 'off') {
      if (this.skip > 0) {
        const n = Math.min(this.skip, data.length);
        if (this.captureTs) this.metaTs += data.subarray(0, n).toString('latin1');
        this.skip -= n;
        data = data.subarray(n);
        if (this.skip === 0 && this.captureTs) {
          this.captureTs = false;
          this.metaTs = this.metaTs.replace(/[\0 ]+$/, '');
        }
        continue;
      }
      this.buf = this.buf.length ? Buffer.concat([this.buf, data]) : data;
      data = Buffer.alloc(0);
      this.step();
      // `step` leaves unconsumed bytes in buf; anything it set to skip is taken from buf first.
      if (this.skip > 0 && this.buf.length > 0) {
        data = this.buf;
        this.buf = Buffer.alloc(0);
      }
    }
  }

  /** Parse headers available in `buf`; stops when more bytes are needed or a value must be skipped. */
  private step() {
    while (this.skip === 0 && this.phase !== 'off') {
      if (this.phase === 'preamble') {
        if (this.buf.length < 132) return;
        if (this.buf.toString('latin1', 128, 132) !== 'DICM') throw new DicomStructureError('not a DICOM Part 10 file (no DICM prefix)');
        this.buf = this.buf.subarray(132);
        this.phase = 'meta';
        continue;
      }
      if (this.phase === 'meta') {
        if (this.buf.length < 8) return;
        const group = this.buf.readUInt16LE(0);
        if (group !== 0x0002) {
          if (!this.metaTs) throw new DicomStructureError('file meta has no Transfer Syntax UID (0002,0010)');
          this.startDataset(this.metaTs);
          continue;
        }
        const element = this.buf.readUInt16LE(2);
        const vr = this.buf.toString('latin1', 4, 6);
        let headerLen = 8;
        let len: number;
        if (LONG_VRS.has(vr)) {
          if (this.buf.length < 12) return;
          len = this.buf.readUInt32LE(8);
          headerLen = 12;
        } else len = this.buf.readUInt16LE(6);
        if (len === UNDEFINED) throw new DicomStructureError('undefined length in the file meta group');
        this.buf = this.buf.subarray(headerLen);
        this.skip = len;
        if (element === 0x0010) {
          this.captureTs = true;
          this.metaTs = '';
        }
        if (this.skip > 0 && this.buf.length) return;
        continue;
      }
      if (!this.readElement()) return;
    }
  }

  private u16(off: number) {
    return this.littleEndian ? this.buf.readUInt16LE(off) : this.buf.readUInt16BE(off);
  }
  private u32(off: number) {
    return this.littleEndian ? this.buf.readUInt32LE(off) : this.buf.readUInt32BE(off);
  }

  /** One element/item header in the current context. Returns false when more bytes are needed. */
  private readElement(): boolean {
    const ctx = this.stack[this.stack.length - 1]!;
    if (this.buf.length < 8) return false;
    const group = this.u16(0);
    const element = this.u16(2);

    if (group === 0xfffe) {
      const len = this.u32(4);
      this.buf = this.buf.subarray(8);
      if (element === 0xe0dd) {
        if (ctx.kind !== 'sequence') throw new DicomStructureError('sequence delimiter outside a sequence');
        this.stack.pop();
        return true;
      }
      if (element === 0xe00d) {
        if (ctx.kind !== 'items-elements' || ctx.topLevel) throw new DicomStructureError('item delimiter outside an item');
        this.stack.pop();
        return true;
      }
      if (element === 0xe000) {
        if (ctx.kind !== 'sequence') throw new DicomStructureError('item outside a sequence');
        if (len === UNDEFINED) {
          if (ctx.fragments) throw new DicomStructureError('undefined-length pixel data fragment');
          this.stack.push({ kind: 'items-elements', implicit: ctx.implicit, topLevel: false });
        } else this.skip = len;
        return true;
      }
      throw new DicomStructureError(`unexpected delimitation tag (FFFE,${element.toString(16).toUpperCase()})`);
    }
    if (ctx.kind === 'sequence') throw new DicomStructureError(`element (${hex(group)},${hex(element)}) where an item was expected`);

    let vr = '';
    let len: number;
    let headerLen = 8;
    if (!ctx.implicit && ctx.topLevel && this.elements === 0 && !/^[A-Z]{2}$/.test(this.buf.toString('latin1', 4, 6))) {
      // Some writers label an implicit VR data set as explicit; readers (dcmtk, pydicom) fall back.
      ctx.implicit = true;
      this.implicit = true;
    }
    if (ctx.implicit) {
      len = this.u32(4);
    } else {
      vr = this.buf.toString('latin1', 4, 6);
      if (!/^[A-Z]{2}$/.test(vr)) throw new DicomStructureError(`invalid VR at (${hex(group)},${hex(element)})`);
      if (LONG_VRS.has(vr)) {
        if (this.buf.length < 12) return false;
        len = this.u32(8);
        headerLen = 12;
      } else len = this.u16(6);
    }
    this.buf = this.buf.subarray(headerLen);
    this.elements++;
    if (len === UNDEFINED) {
      const isPixel = group === 0x7fe0 && element === 0x0010;
      if (vr === 'SQ' || (ctx.implicit && !isPixel)) {
        this.stack.push({ kind: 'sequence', implicit: ctx.implicit, fragments: false });
      } else if (vr === 'UN') {
        // UN with undefined length: a sequence encoded in implicit VR little endian (PS3.5 6.2.2).
        this.stack.push({ kind: 'sequence', implicit: true, fragments: false });
      } else if (isPixel || vr === 'OB' || vr === 'OW') {
        this.stack.push({ kind: 'sequence', implicit: ctx.implicit, fragments: true });
      } else {
        throw new DicomStructureError(`undefined length for VR ${vr} at (${hex(group)},${hex(element)})`);
      }
      return true;
    }
    this.skip = len;
    return true;
  }
}

function hex(n: number): string {
  return n.toString(16).toUpperCase().padStart(4, '0');
}
