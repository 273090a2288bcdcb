/**
 * Encoder/decoder between small DICOM datasets (identifiers, command sets) and the DICOM JSON
 * model used by the contract (`DicomDict`, PS3.18 F.2). Large datasets (C-STORE) never go through
 * here: they are streamed as received.
 *
 * Conventions of the decoded form (PS3.18 F.2):
 * - an element with a zero-length value has no `Value` (findscu's empty return keys);
 * - strings are Unicode (decoded with Specific Character Set); (0008,0005) keeps its original value;
 * - IS/DS are numbers (a value that is not a valid number is kept as its string);
 * - PN values are `{ Alphabetic, Ideographic?, Phonetic? }`;
 * - AT values are 8-hex-digit tags; bulk VRs (OB, OW, UN, ...) are `InlineBinary` (base64);
 * - SQ values are arrays of `DicomDict` items (an empty item is `{}`).
 *
 * The encoder accepts the same form, plus dcmjs conveniences (strings for PN, ArrayBuffer/Uint8Array
 * bulk values, numbers as strings), and picks a character set that can represent all strings.
 */
import type { DicomDict } from './contract.js';
import { decodeText, encodeText, isAscii, parseCharsets } from './charset.js';
import { lookupVr } from './dictionary.js';
import { isBigEndian, isImplicitVr, TransferSyntax } from './uids.js';

export type DicomElement = DicomDict[string];

export class DatasetError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'DatasetError';
  }
}

const UNDEFINED_LENGTH = 0xffffffff;
const ITEM = 0xfffee000;
const ITEM_DELIMITATION = 0xfffee00d;
const SEQUENCE_DELIMITATION = 0xfffee0dd;

/** VRs with a 4-byte length (and 2 reserved bytes) in explicit VR. */
const LONG_VRS = new Set(['OB', 'OD', 'OF', 'OL', 'OV', 'OW', 'SQ', 'SV', 'UC', 'UN', 'UR', 'UT', 'UV']);
const KNOWN_VRS = new Set([
  'AE', 'AS', 'AT', 'CS', 'DA', 'DS', 'DT', 'FD', 'FL', 'IS', 'LO', 'LT', 'OB', 'OD', 'OF', 'OL', 'OV',
  'OW', 'PN', 'SH', 'SL', 'SQ', 'SS', 'ST', 'SV', 'TM', 'UC', 'UI', 'UL', 'UN', 'UR', 'US', 'UT', 'UV',
]);
/** String VRs whose value may hold several values separated by backslashes. */
const MULTI_STRING_VRS = new Set(['AE', 'AS', 'CS', 'DA', 'DS', 'DT', 'IS', 'LO', 'PN', 'SH', 'TM', 'UC', 'UI']);
/** String VRs with a single value (backslash is an ordinary character). */
const SINGLE_STRING_VRS = new Set(['LT', 'ST', 'UT', 'UR']);
/** String VRs affected by Specific Character Set. */
const CHARSET_VRS = new Set(['LO', 'LT', 'PN', 'SH', 'ST', 'UC', 'UT']);
const BULK_VRS = new Set(['OB', 'OD', 'OF', 'OL', 'OV', 'OW', 'UN']);
const NUMBER_SIZES: Record<string, number> = { US: 2, SS: 2, UL: 4, SL: 4, FL: 4, FD: 8, SV: 8, UV: 8, AT: 4 };

interface Syntax {
  implicit: boolean;
  littleEndian: boolean;
}

export function syntaxOf(transferSyntaxUid: string): Syntax {
  if (transferSyntaxUid === TransferSyntax.DeflatedExplicitVRLittleEndian) {
    throw new DatasetError('deflated datasets are not supported for identifiers');
  }
  return { implicit: isImplicitVr(transferSyntaxUid), littleEndian: !isBigEndian(transferSyntaxUid) };
}

export function tagKey(group: number, element: number): string {
  // >>> 0: groups from 8000 up would otherwise make a negative number.
  return (((group << 16) | element) >>> 0).toString(16).toUpperCase().padStart(8, '0');
}

// ---------------------------------------------------------------------------------------------
// Decoding
// ---------------------------------------------------------------------------------------------

interface DecodeOptions {
  /** Maximum nesting depth of sequences (guards against hostile input). Default 16. */
  maxDepth?: number;
}

export interface PartialDecodeOptions extends DecodeOptions {
  /** Where to start reading (default 0). */
  start?: number;
  /** Stop before the first top-level element whose tag (as a uint32) this returns true for. */
  stopAt: (tag: number) => boolean;
  /** Character sets in force before the first element (default: the default repertoire). */
  charsets?: string[];
}

/** Decodes a bare dataset (no Part 10 header) in the given transfer syntax. */
export function decodeDataset(bytes: Uint8Array, transferSyntaxUid: string, options: DecodeOptions = {}): DicomDict {
  const buf = Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const reader = new Reader(buf, syntaxOf(transferSyntaxUid), options.maxDepth ?? 16);
  const { dict } = reader.readDataset(0, buf.length, [''], 0);
  return dict;
}

/**
 * Decodes the top-level elements from `start` up to (not including) the first one `stopAt`
 * selects, or to the end of `bytes`. `stopped` tells which; `next` is the offset reached (the
 * stopping element's tag). Throws DatasetError when the bytes end inside an element before that.
 */
export function decodeDatasetUntil(
  bytes: Buffer,
  transferSyntaxUid: string,
  options: PartialDecodeOptions,
): { dict: DicomDict; next: number; stopped: boolean } {
  const reader = new Reader(bytes, syntaxOf(transferSyntaxUid), options.maxDepth ?? 16, options.stopAt);
  const { dict, next, stopped } = reader.readDataset(options.start ?? 0, bytes.length, options.charsets ?? [''], 0);
  return { dict, next, stopped: stopped ?? false };
}

class Reader {
  constructor(
    private readonly buf: Buffer,
    private readonly syntax: Syntax,
    private readonly maxDepth: number,
    private readonly stopAt?: (tag: number) => boolean,
  ) {}

  private u16(off: number, le = this.syntax.littleEndian): number {
    this.need(off, 2);
    return le ? this.buf.readUInt16LE(off) : this.buf.readUInt16BE(off);
  }
  private u32(off: number, le = this.syntax.littleEndian): number {
    this.need(off, 4);
    return le ? this.buf.readUInt32LE(off) : this.buf.readUInt32BE(off);
  }
  private need(off: number, n: number): void {
    if (off + n > this.buf.length) throw new DatasetError(`truncated dataset at offset ${off}`);
  }

  /**
   * Reads elements from `start` until `end`, or until an item delimitation tag when `end` is
   * undefined-length (returns the offset after the delimiter).
   */
  readDataset(
    start: number,
    end: number | undefined,
    inheritedCharsets: string[],
    depth: number,
    syntax: Syntax = this.syntax,
  ): { dict: DicomDict; next: number; stopped?: boolean } {
    const dict: DicomDict = {};
    let charsets = inheritedCharsets;
    let off = start;
    const limit = end ?? this.buf.length;
    const stopAt = depth === 0 ? this.stopAt : undefined;
    while (off < limit) {
      const le = syntax.littleEndian;
      const group = this.u16(off, le);
      const element = this.u16(off + 2, le);
      const tag = ((group << 16) | element) >>> 0;
      if (stopAt?.(tag)) return { dict, next: off, stopped: true };
      if (tag === ITEM_DELIMITATION) {
        if (end !== undefined) throw new DatasetError('unexpected item delimitation');
        return { dict, next: off + 8 };
      }
      if (group === 0xfffe) throw new DatasetError(`unexpected delimiter (FFFE,${element.toString(16)}) at ${off}`);
      let vr: string;
      let length: number;
      let valueStart: number;
      if (syntax.implicit) {
        length = this.u32(off + 4, le);
        vr = lookupVr(group, element, length === UNDEFINED_LENGTH);
        valueStart = off + 8;
      } else {
        this.need(off + 4, 2);
        vr = this.buf.toString('latin1', off + 4, off + 6);
        if (!KNOWN_VRS.has(vr)) throw new DatasetError(`invalid VR "${vr}" for ${tagKey(group, element)}`);
        if (LONG_VRS.has(vr)) {
          length = this.u32(off + 8, le);
          valueStart = off + 12;
        } else {
          length = this.u16(off + 6, le);
          valueStart = off + 8;
        }
      }
      const key = tagKey(group, element);
      if (vr === 'SQ' || (vr === 'UN' && length === UNDEFINED_LENGTH)) {
        if (depth >= this.maxDepth) throw new DatasetError('sequences nested too deeply');
        // An undefined-length UN is a sequence encoded in implicit VR little endian (PS3.5 6.2.2).
        const itemSyntax: Syntax = vr === 'UN' ? { implicit: true, littleEndian: true } : syntax;
        const { items, next } = this.readSequence(valueStart, length, charsets, depth + 1, itemSyntax);
        dict[key] = items.length > 0 ? { vr: 'SQ', Value: items } : { vr: 'SQ' };
        off = next;
        continue;
      }
      if (length === UNDEFINED_LENGTH) {
        // Encapsulated data (fragments): keep the raw value bytes up to the sequence delimiter.
        const next = this.skipFragments(valueStart, syntax);
        dict[key] = { vr, InlineBinary: this.buf.subarray(valueStart, next - 8).toString('base64') };
        off = next;
        continue;
      }
      this.need(valueStart, length);
      const value = this.buf.subarray(valueStart, valueStart + length);
      // UN in an explicit VR data set (a sender that did not know the attribute): decode it as
      // the VR the dictionary gives (PS3.5 6.2.2), so that e.g. a StudyDate sent as UN is a date.
      const known = vr === 'UN' && !syntax.implicit ? lookupVr(group, element) : vr;
      if (known === 'SQ' && length > 0) {
        if (depth >= this.maxDepth) throw new DatasetError('sequences nested too deeply');
        const { items } = this.readSequence(valueStart, length, charsets, depth + 1, { implicit: true, littleEndian: true });
        dict[key] = items.length > 0 ? { vr: 'SQ', Value: items } : { vr: 'SQ' };
        off = valueStart + length;
        continue;
      }
      const el = decodeValue(known === 'SQ' ? 'UN' : known, value, charsets, syntax.littleEndian);
      dict[key] = el;
      if (key === '00080005') charsets = parseCharsets(el.Value);
      off = valueStart + length;
    }
    if (end !== undefined && off !== end) throw new DatasetError('element overruns its container');
    if (end === undefined && start !== 0) throw new DatasetError('missing item delimitation');
    return { dict, next: off };
  }

  private readSequence(
    start: number,
    length: number,
    charsets: string[],
    depth: number,
    syntax: Syntax,
  ): { items: DicomDict[]; next: number } {
    const items: DicomDict[] = [];
    const undefinedLength = length === UNDEFINED_LENGTH;
    const end = undefinedLength ? undefined : start + length;
    if (end !== undefined) this.need(start, length);
    let off = start;
    for (;;) {
      if (end !== undefined && off >= end) {
        if (off !== end) throw new DatasetError('sequence item overruns its sequence');
        return { items, next: off };
      }
      const group = this.u16(off, syntax.littleEndian);
      const element = this.u16(off + 2, syntax.littleEndian);
      const tag = ((group << 16) | element) >>> 0;
      const itemLength = this.u32(off + 4, syntax.littleEndian);
      if (tag === SEQUENCE_DELIMITATION) {
        if (!undefinedLength) throw new DatasetError('sequence delimiter in a defined-length sequence');
        return { items, next: off + 8 };
      }
      if (tag !== ITEM) throw new DatasetError(`expected an item tag in sequence at ${off}`);
      if (itemLength === UNDEFINED_LENGTH) {
        const { dict, next } = this.readDataset(off + 8, undefined, charsets, depth, syntax);
        items.push(dict);
        off = next;
      } else {
        const { dict } = this.readDataset(off + 8, off + 8 + itemLength, charsets, depth, syntax);
        items.push(dict);
        off = off + 8 + itemLength;
      }
    }
  }

  private skipFragments(start: number, syntax: Syntax): number {
    let off = start;
    for (;;) {
      const group = this.u16(off, syntax.littleEndian);
      const element = this.u16(off + 2, syntax.littleEndian);
      const tag = ((group << 16) | element) >>> 0;
      const len = this.u32(off + 4, syntax.littleEndian);
      if (tag === SEQUENCE_DELIMITATION) return off + 8;
      if (tag !== ITEM || len === UNDEFINED_LENGTH) throw new DatasetError('invalid encapsulated fragment');
      this.need(off + 8, len);
      off += 8 + len;
    }
  }
}

function trimString(vr: string, s: string): string {
  if (vr === 'UI') return s.replace(/[\0 ]+$/, '');
  if (SINGLE_STRING_VRS.has(vr)) return s.replace(/[\0 ]+$/, '');
  return s.replace(/\0+$/, '').trim();
}

function decodeValue(vr: string, value: Buffer, charsets: string[], le: boolean): DicomElement {
  if (value.length === 0) return { vr };
  if (BULK_VRS.has(vr)) return { vr, InlineBinary: value.toString('base64') };
  const size = NUMBER_SIZES[vr];
  if (size) {
    if (value.length % size !== 0) throw new DatasetError(`${vr} value length ${value.length} is not a multiple of ${size}`);
    const out: unknown[] = [];
    for (let off = 0; off < value.length; off += size) out.push(readNumber(vr, value, off, le));
    return { vr, Value: out };
  }
  const text = CHARSET_VRS.has(vr) ? decodeText(value, charsets, vr === 'PN') : value.toString('latin1');
  if (SINGLE_STRING_VRS.has(vr)) {
    const s = trimString(vr, text);
    return s === '' ? { vr } : { vr, Value: [s] };
  }
  if (!MULTI_STRING_VRS.has(vr)) return { vr, InlineBinary: value.toString('base64') };
  const parts = text.split('\\').map((p) => trimString(vr, p));
  if (parts.length === 1 && parts[0] === '') return { vr };
  const values = parts.map((p): unknown => {
    if (p === '') return null;
    if (vr === 'PN') return parsePersonName(p);
    if (vr === 'IS' || vr === 'DS') {
      const n = Number(p);
      return Number.isFinite(n) && /^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/.test(p) ? n : p;
    }
    return p;
  });
  return { vr, Value: values };
}

function parsePersonName(p: string): Record<string, string> {
  const [alphabetic, ideographic, phonetic] = p.split('=');
  const pn: Record<string, string> = {};
  if (alphabetic) pn.Alphabetic = alphabetic.trim();
  if (ideographic) pn.Ideographic = ideographic.trim();
  if (phonetic) pn.Phonetic = phonetic.trim();
  return pn;
}

function readNumber(vr: string, b: Buffer, off: number, le: boolean): unknown {
  switch (vr) {
    case 'US':
      return le ? b.readUInt16LE(off) : b.readUInt16BE(off);
    case 'SS':
      return le ? b.readInt16LE(off) : b.readInt16BE(off);
    case 'UL':
      return le ? b.readUInt32LE(off) : b.readUInt32BE(off);
    case 'SL':
      return le ? b.readInt32LE(off) : b.readInt32BE(off);
    case 'FL':
      return le ? b.readFloatLE(off) : b.readFloatBE(off);
    case 'FD':
      return le ? b.readDoubleLE(off) : b.readDoubleBE(off);
    case 'SV':
    case 'UV': {
      const big = vr === 'SV' ? (le ? b.readBigInt64LE(off) : b.readBigInt64BE(off)) : le ? b.readBigUInt64LE(off) : b.readBigUInt64BE(off);
      return big >= BigInt(Number.MIN_SAFE_INTEGER) && big <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(big) : big.toString();
    }
    case 'AT': {
      const g = le ? b.readUInt16LE(off) : b.readUInt16BE(off);
      const e = le ? b.readUInt16LE(off + 2) : b.readUInt16BE(off + 2);
      return tagKey(g, e);
    }
    default:
      throw new DatasetError(`not a numeric VR: ${vr}`);
  }
}

// ---------------------------------------------------------------------------------------------
// Encoding
// ---------------------------------------------------------------------------------------------

class Writer {
  private chunks: Buffer[] = [];
  length = 0;
  constructor(readonly littleEndian: boolean) {}
  push(b: Buffer): void {
    this.chunks.push(b);
    this.length += b.length;
  }
  u16(n: number): void {
    const b = Buffer.allocUnsafe(2);
    if (this.littleEndian) b.writeUInt16LE(n);
    else b.writeUInt16BE(n);
    this.push(b);
  }
  u32(n: number): void {
    const b = Buffer.allocUnsafe(4);
    if (this.littleEndian) b.writeUInt32LE(n >>> 0);
    else b.writeUInt32BE(n >>> 0);
    this.push(b);
  }
  toBuffer(): Buffer {
    return Buffer.concat(this.chunks, this.length);
  }
}

export function parseTagKey(key: string): { group: number; element: number } {
  if (!/^[0-9A-Fa-f]{8}$/.test(key)) throw new DatasetError(`invalid tag key "${key}"`);
  const n = parseInt(key, 16);
  return { group: n >>> 16, element: n & 0xffff };
}

function normalizeVr(vr: string | undefined, group: number, element: number): string {
  if (vr && KNOWN_VRS.has(vr)) return vr;
  switch (vr) {
    case 'xs':
    case 'US or SS':
      return 'US';
    case 'ox':
    case 'OB or OW':
      return 'OB';
    default:
      return lookupVr(group, element);
  }
}

/** Collects every string the encoder will write through Specific Character Set. */
function collectTexts(dict: DicomDict, out: string[]): void {
  for (const [key, el] of Object.entries(dict)) {
    if (!el || key === '00080005') continue;
    const vr = el.vr;
    if (vr === 'SQ') {
      for (const item of el.Value ?? []) if (item && typeof item === 'object') collectTexts(item as DicomDict, out);
      continue;
    }
    if (!CHARSET_VRS.has(vr)) continue;
    for (const v of el.Value ?? []) {
      if (typeof v === 'string') out.push(v);
      else if (v && typeof v === 'object') {
        for (const part of Object.values(v as Record<string, unknown>)) if (typeof part === 'string') out.push(part);
      }
    }
  }
}

/**
 * Decides the character set for encoding `dict`: keeps the declared one when every string can be
 * encoded in it, otherwise switches to ISO_IR 192 (UTF-8). Returns the (possibly rewritten) dict.
 */
function withEncodableCharset(dict: DicomDict): { dict: DicomDict; charsets: string[] } {
  const declared = dict['00080005'];
  const charsets = parseCharsets(declared?.Value);
  const texts: string[] = [];
  collectTexts(dict, texts);
  if (texts.every((t) => isAscii(t) || encodeText(t, charsets) !== null)) return { dict, charsets };
  return { dict: { ...dict, '00080005': { vr: 'CS', Value: ['ISO_IR 192'] } }, charsets: ['ISO_IR_192'] };
}

/** Encodes a dataset (DICOM JSON model) as a bare dataset in the given transfer syntax. */
export function encodeDataset(dict: DicomDict, transferSyntaxUid: string): Buffer {
  const syntax = syntaxOf(transferSyntaxUid);
  const { dict: effective, charsets } = withEncodableCharset(dict);
  const w = new Writer(syntax.littleEndian);
  writeDataset(w, effective, syntax, charsets, true);
  return w.toBuffer();
}

function writeDataset(w: Writer, dict: DicomDict, syntax: Syntax, charsets: string[], topLevel: boolean): void {
  const keys = Object.keys(dict)
    .filter((k) => dict[k] !== undefined && dict[k] !== null)
    .map((k) => ({ key: k, ...parseTagKey(k) }))
    .sort((a, b) => a.group - b.group || a.element - b.element);
  let cs = charsets;
  for (const { key, group, element } of keys) {
    // Group lengths other than the command group are optional and would be stale: drop them.
    if (element === 0x0000 && group !== 0x0000) continue;
    if (group === 0x0002 && topLevel) continue;
    const el = dict[key];
    const vr = normalizeVr(el.vr, group, element);
    if (key === '00080005' && !topLevel) cs = parseCharsets(el.Value);
    writeElement(w, group, element, vr, el, syntax, cs);
  }
}

function writeHeader(w: Writer, group: number, element: number, vr: string, length: number, syntax: Syntax): void {
  w.u16(group);
  w.u16(element);
  if (syntax.implicit) {
    w.u32(length);
    return;
  }
  w.push(Buffer.from(vr, 'latin1'));
  if (LONG_VRS.has(vr)) {
    w.u16(0);
    w.u32(length);
  } else {
    if (length > 0xffff) throw new DatasetError(`value of ${tagKey(group, element)} (${vr}) too long: ${length}`);
    w.u16(length);
  }
}

function writeElement(
  w: Writer,
  group: number,
  element: number,
  vr: string,
  el: DicomElement,
  syntax: Syntax,
  charsets: string[],
): void {
  if (vr === 'SQ') {
    const items = (el.Value ?? []) as unknown[];
    const body = new Writer(syntax.littleEndian);
    for (const item of items) {
      const itemWriter = new Writer(syntax.littleEndian);
      writeDataset(itemWriter, (item ?? {}) as DicomDict, syntax, charsets, false);
      body.u16(0xfffe);
      body.u16(0xe000);
      body.u32(itemWriter.length);
      body.push(itemWriter.toBuffer());
    }
    writeHeader(w, group, element, vr, body.length, syntax);
    w.push(body.toBuffer());
    return;
  }
  const value = encodeValue(vr, el, charsets, syntax.littleEndian, group, element);
  writeHeader(w, group, element, vr, value.length, syntax);
  w.push(value);
}

function toBytes(v: unknown): Buffer | null {
  if (Buffer.isBuffer(v)) return v;
  if (v instanceof Uint8Array) return Buffer.from(v.buffer, v.byteOffset, v.byteLength);
  if (v instanceof ArrayBuffer) return Buffer.from(v);
  if (ArrayBuffer.isView(v)) return Buffer.from(v.buffer, v.byteOffset, v.byteLength);
  return null;
}

function formatDecimal(v: unknown): string {
  if (typeof v === 'string') return v.trim();
  if (typeof v !== 'number' || !Number.isFinite(v)) throw new DatasetError(`invalid DS value ${String(v)}`);
  let s = String(v);
  if (s.length <= 16) return s;
  for (let p = 15; p > 0; p--) {
    s = v.toPrecision(p).replace(/(\.\d*?)0+(e|$)/, '$1$2').replace(/\.(e|$)/, '$1');
    if (s.length <= 16) return s;
  }
  throw new DatasetError(`DS value ${v} cannot be represented in 16 characters`);
}

function personNameString(v: unknown): string {
  if (typeof v === 'string') return v;
  if (v && typeof v === 'object') {
    const pn = v as Record<string, unknown>;
    const groups = [pn.Alphabetic, pn.Ideographic, pn.Phonetic].map((g) => (typeof g === 'string' ? g : ''));
    while (groups.length > 1 && groups[groups.length - 1] === '') groups.pop();
    return groups.join('=');
  }
  return '';
}

function pad(buf: Buffer, vr: string): Buffer {
  if (buf.length % 2 === 0) return buf;
  return Buffer.concat([buf, Buffer.from([vr === 'UI' ? 0x00 : 0x20])]);
}

function encodeValue(
  vr: string,
  el: DicomElement,
  charsets: string[],
  le: boolean,
  group: number,
  element: number,
): Buffer {
  if (BULK_VRS.has(vr)) {
    if (typeof el.InlineBinary === 'string') return pad(Buffer.from(el.InlineBinary, 'base64'), 'OB');
    const parts = (el.Value ?? []).map(toBytes).filter((b): b is Buffer => b !== null);
    return pad(Buffer.concat(parts), 'OB');
  }
  const values = el.Value ?? [];
  const size = NUMBER_SIZES[vr];
  if (size) {
    const out = Buffer.alloc(size * values.length);
    values.forEach((v, i) => writeNumber(vr, out, i * size, v, le, group, element));
    return out;
  }
  if (values.length === 0) return Buffer.alloc(0);
  let text: string;
  if (SINGLE_STRING_VRS.has(vr)) text = values[0] == null ? '' : String(values[0]);
  else {
    text = values
      .map((v) => {
        if (v === null || v === undefined) return '';
        if (vr === 'PN') return personNameString(v);
        if (vr === 'DS') return formatDecimal(v);
        if (vr === 'IS') return typeof v === 'number' ? String(Math.trunc(v)) : String(v).trim();
        return String(v);
      })
      .join('\\');
  }
  let bytes: Buffer;
  if (CHARSET_VRS.has(vr)) {
    const encoded = encodeText(text, charsets);
    if (!encoded) throw new DatasetError(`cannot encode ${tagKey(group, element)} in ${charsets.join('\\')}`);
    bytes = encoded;
  } else {
    if (!isAscii(text)) throw new DatasetError(`non-ASCII characters in ${vr} element ${tagKey(group, element)}`);
    bytes = Buffer.from(text, 'latin1');
  }
  return pad(bytes, vr);
}

function writeNumber(vr: string, b: Buffer, off: number, v: unknown, le: boolean, group: number, element: number): void {
  if (vr === 'AT') {
    const { group: g, element: e } = parseTagKey(String(v));
    if (le) {
      b.writeUInt16LE(g, off);
      b.writeUInt16LE(e, off + 2);
    } else {
      b.writeUInt16BE(g, off);
      b.writeUInt16BE(e, off + 2);
    }
    return;
  }
  const n = typeof v === 'string' ? Number(v) : (v as number);
  if ((vr !== 'SV' && vr !== 'UV' && typeof n !== 'number') || (typeof n === 'number' && Number.isNaN(n))) {
    throw new DatasetError(`invalid ${vr} value ${String(v)} in ${tagKey(group, element)}`);
  }
  switch (vr) {
    case 'US':
      le ? b.writeUInt16LE(n, off) : b.writeUInt16BE(n, off);
      break;
    case 'SS':
      le ? b.writeInt16LE(n, off) : b.writeInt16BE(n, off);
      break;
    case 'UL':
      le ? b.writeUInt32LE(n, off) : b.writeUInt32BE(n, off);
      break;
    case 'SL':
      le ? b.writeInt32LE(n, off) : b.writeInt32BE(n, off);
      break;
    case 'FL':
      le ? b.writeFloatLE(n, off) : b.writeFloatBE(n, off);
      break;
    case 'FD':
      le ? b.writeDoubleLE(n, off) : b.writeDoubleBE(n, off);
      break;
    case 'SV': {
      const big = BigInt(typeof v === 'bigint' ? v : String(v));
      le ? b.writeBigInt64LE(big, off) : b.writeBigInt64BE(big, off);
      break;
    }
    case 'UV': {
      const big = BigInt(typeof v === 'bigint' ? v : String(v));
      le ? b.writeBigUInt64LE(big, off) : b.writeBigUInt64BE(big, off);
      break;
    }
  }
}
