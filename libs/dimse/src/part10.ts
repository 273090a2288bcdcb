/**
 * DICOM Part 10 file header (PS3.10 7.1): 128-byte preamble, "DICM", File Meta Information
 * (group 0002, always explicit VR little endian). Stripping it yields the data set bytes exactly as
 * stored; building it lets the archive write received data sets as standard files without touching
 * the data set bytes.
 */
import { Readable } from 'node:stream';
import { DEFAULT_IMPLEMENTATION_CLASS_UID, DEFAULT_IMPLEMENTATION_VERSION_NAME } from './uids.js';

export class Part10Error extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'Part10Error';
  }
}

export interface Part10Info {
  /** (0002,0010) Transfer Syntax UID: the encoding of the data set bytes that follow. */
  transferSyntaxUid: string;
  /** (0002,0002) Media Storage SOP Class UID */
  sopClassUid: string;
  /** (0002,0003) Media Storage SOP Instance UID */
  sopInstanceUid: string;
  implementationClassUid?: string;
  implementationVersionName?: string;
  sourceAeTitle?: string;
  /** Bytes of preamble + prefix + meta group, i.e. the offset of the data set in the file. */
  headerLength: number;
}

export interface Part10Stripped extends Part10Info {
  /** The data set bytes (everything after the meta group), streamed with backpressure. */
  datasetStream: Readable;
}

const LONG_VRS = new Set(['OB', 'OD', 'OF', 'OL', 'OV', 'OW', 'SQ', 'SV', 'UC', 'UN', 'UR', 'UT', 'UV']);
const PREFIX_OFFSET = 128;
const META_START = 132;

function str(b: Buffer): string {
  return b.toString('latin1').replace(/[\0 ]+$/, '').trim();
}

/**
 * Parses the Part 10 header at the start of `buf`. Returns null if more bytes are needed (unless
 * `final`, i.e. the buffer holds the whole file). Throws Part10Error if it is not a Part 10 file.
 *
 * The meta group is walked element by element (it is explicit VR little endian whatever the data
 * set syntax); when (0002,0000) is present and consistent with the elements, the header ends
 * exactly where it says (this matters for deflated data sets, whose first bytes are not a tag).
 */
export function parsePart10Header(buf: Buffer, final = false): Part10Info | null {
  if (buf.length < META_START) {
    if (final) throw new Part10Error('file too short for a DICOM Part 10 header');
    return null;
  }
  if (buf.toString('latin1', PREFIX_OFFSET, META_START) !== 'DICM') {
    throw new Part10Error('not a DICOM Part 10 file: "DICM" prefix missing at offset 128');
  }
  const values = new Map<number, Buffer>();
  let off = META_START;
  let groupEnd: number | undefined;
  for (;;) {
    if (off + 8 > buf.length) {
      if (final) break;
      return null;
    }
    const group = buf.readUInt16LE(off);
    if (group !== 0x0002) break;
    const element = buf.readUInt16LE(off + 2);
    const vr = buf.toString('latin1', off + 4, off + 6);
    let length: number;
    let valueStart: number;
    if (LONG_VRS.has(vr)) {
      if (off + 12 > buf.length) {
        if (final) throw new Part10Error('truncated file meta information');
        return null;
      }
      length = buf.readUInt32LE(off + 8);
      valueStart = off + 12;
    } else if (/^[A-Z]{2}$/.test(vr)) {
      length = buf.readUInt16LE(off + 6);
      valueStart = off + 8;
    } else {
      throw new Part10Error(`invalid VR in file meta information at offset ${off}`);
    }
    if (length === 0xffffffff) throw new Part10Error('undefined length in file meta information');
    if (valueStart + length > buf.length) {
      if (final) throw new Part10Error('truncated file meta information');
      return null;
    }
    const value = buf.subarray(valueStart, valueStart + length);
    values.set(element, value);
    if (element === 0x0000 && vr === 'UL' && length === 4) groupEnd = valueStart + 4 + value.readUInt32LE(0);
    off = valueStart + length;
    if (groupEnd !== undefined && off === groupEnd) break;
    if (groupEnd !== undefined && off > groupEnd) groupEnd = undefined; // wrong group length: ignore it
  }
  const ts = values.get(0x0010);
  if (!ts) throw new Part10Error('file meta information without Transfer Syntax UID (0002,0010)');
  const opt = (e: number): string | undefined => {
    const v = values.get(e);
    return v ? str(v) : undefined;
  };
  return {
    transferSyntaxUid: str(ts),
    sopClassUid: opt(0x0002) ?? '',
    sopInstanceUid: opt(0x0003) ?? '',
    implementationClassUid: opt(0x0012),
    implementationVersionName: opt(0x0013),
    sourceAeTitle: opt(0x0016),
    headerLength: off,
  };
}

export interface StripOptions {
  /** Refuse headers larger than this (default 1 MiB): guards against non-DICOM input. */
  maxHeaderBytes?: number;
}

/**
 * Reads the Part 10 header from `source` and returns its fields plus a stream of the data set
 * bytes that follow, unchanged. Only the header is buffered. Destroying `datasetStream` destroys
 * `source`; an error of `source` errors `datasetStream`.
 */
export async function stripPart10Header(source: Readable, options: StripOptions = {}): Promise<Part10Stripped> {
  const maxHeaderBytes = options.maxHeaderBytes ?? 1024 * 1024;
  const iterator = (source as AsyncIterable<Buffer | string>)[Symbol.asyncIterator]();
  const chunks: Buffer[] = [];
  let length = 0;
  let info: Part10Info | null = null;
  let ended = false;
  try {
    while (!info) {
      const r = await iterator.next();
      if (r.done) ended = true;
      else {
        const chunk = typeof r.value === 'string' ? Buffer.from(r.value, 'latin1') : r.value;
        chunks.push(chunk);
        length += chunk.length;
      }
      const buf = chunks.length === 1 ? chunks[0] : Buffer.concat(chunks, length);
      if (chunks.length > 1) {
        chunks.length = 0;
        chunks.push(buf);
      }
      info = parsePart10Header(buf ?? Buffer.alloc(0), ended);
      if (!info && length > maxHeaderBytes) throw new Part10Error(`Part 10 header larger than ${maxHeaderBytes} bytes`);
      if (!info && ended) throw new Part10Error('unexpected end of file in Part 10 header');
    }
  } catch (e) {
    await iterator.return?.().catch(() => undefined);
    source.destroy();
    throw e;
  }
  const rest = chunks.length ? chunks[0].subarray(info.headerLength) : Buffer.alloc(0);
  async function* datasetBytes(): AsyncGenerator<Buffer> {
    try {
      if (rest.length) yield rest;
      if (ended) return;
      for (;;) {
        const r = await iterator.next();
        if (r.done) return;
        yield typeof r.value === 'string' ? Buffer.from(r.value, 'latin1') : r.value;
      }
    } finally {
      await iterator.return?.().catch(() => undefined);
    }
  }
  const datasetStream = Readable.from(datasetBytes(), { objectMode: false, highWaterMark: 64 * 1024 });
  return { ...info, datasetStream };
}

export interface Part10HeaderFields {
  sopClassUid: string;
  sopInstanceUid: string;
  transferSyntaxUid: string;
  implementationClassUid?: string;
  implementationVersionName?: string;
  /** (0002,0016) Source Application Entity Title: the AE that sent the object. */
  sourceAeTitle?: string;
}

function element(elementNumber: number, vr: string, value: Buffer): Buffer {
  const longVr = LONG_VRS.has(vr);
  const head = Buffer.alloc(longVr ? 12 : 8);
  head.writeUInt16LE(0x0002, 0);
  head.writeUInt16LE(elementNumber, 2);
  head.write(vr, 4, 'latin1');
  if (longVr) head.writeUInt32LE(value.length, 8);
  else {
    if (value.length > 0xffff) throw new Part10Error(`meta element (0002,${elementNumber.toString(16)}) too long`);
    head.writeUInt16LE(value.length, 6);
  }
  return Buffer.concat([head, value]);
}

function textValue(s: string, padByte: number): Buffer {
  // eslint-disable-next-line no-control-regex
  if (/[^\x20-\x7e]/.test(s)) throw new Part10Error(`invalid characters in meta value "${s}"`);
  const b = Buffer.from(s, 'latin1');
  return b.length % 2 ? Buffer.concat([b, Buffer.from([padByte])]) : b;
}

/**
 * Builds preamble + "DICM" + File Meta Information (explicit VR LE with a correct group length).
 * Concatenated with the received data set bytes, it forms a standard Part 10 file.
 */
export function buildPart10Header(fields: Part10HeaderFields): Buffer {
  const uid = (s: string) => textValue(s.replace(/[\0 ]+$/, '').trim(), 0x00);
  const elements: Buffer[] = [
    element(0x0001, 'OB', Buffer.from([0x00, 0x01])),
    element(0x0002, 'UI', uid(fields.sopClassUid)),
    element(0x0003, 'UI', uid(fields.sopInstanceUid)),
    element(0x0010, 'UI', uid(fields.transferSyntaxUid)),
    element(0x0012, 'UI', uid(fields.implementationClassUid ?? DEFAULT_IMPLEMENTATION_CLASS_UID)),
  ];
  const versionName = fields.implementationVersionName ?? DEFAULT_IMPLEMENTATION_VERSION_NAME;
  if (versionName) elements.push(element(0x0013, 'SH', textValue(versionName.slice(0, 16), 0x20)));
  if (fields.sourceAeTitle?.trim()) elements.push(element(0x0016, 'AE', textValue(fields.sourceAeTitle.trim().slice(0, 16), 0x20)));
  const body = Buffer.concat(elements);
  const groupLength = Buffer.alloc(4);
  groupLength.writeUInt32LE(body.length);
  const prefix = Buffer.alloc(META_START);
  prefix.write('DICM', PREFIX_OFFSET, 'latin1');
  return Buffer.concat([prefix, element(0x0000, 'UL', groupLength), body]);
}
