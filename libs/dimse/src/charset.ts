/**
 * Specific Character Set (0008,0005) handling for the small datasets the DIMSE layer decodes and
 * encodes itself (identifiers). PS3.3 C.12.1.1.2, PS3.5 6.1.
 *
 * Decoding supports the single-byte sets, UTF-8, GB18030/GBK and ISO 2022 code extensions
 * (Japanese, Korean, Chinese, Latin/Cyrillic/... G1 sets). Encoding supports ASCII, the single-byte
 * sets and UTF-8: a value that cannot be represented in the declared set makes the encoder switch the
 * dataset to ISO_IR 192 (UTF-8), which every recipient that supports character sets must accept.
 */

import { TextDecoder } from 'node:util';

const ESC = 0x1b;

interface SingleByteSet {
  kind: 'single';
  /** WHATWG encoding label used for the upper half (0x80-0xFF), or 'latin1' for exact ISO 8859-1. */
  label: string;
}
interface MultiByteSet {
  kind: 'multi';
  label: string;
}
type DefinedSet = SingleByteSet | MultiByteSet;

/** Single-byte and Unicode sets without code extensions (value 1 without "ISO 2022"). */
const PLAIN_SETS: Record<string, DefinedSet> = {
  '': { kind: 'single', label: 'ascii' },
  ISO_IR_6: { kind: 'single', label: 'ascii' },
  ISO_IR_100: { kind: 'single', label: 'latin1' },
  ISO_IR_101: { kind: 'single', label: 'iso-8859-2' },
  ISO_IR_109: { kind: 'single', label: 'iso-8859-3' },
  ISO_IR_110: { kind: 'single', label: 'iso-8859-4' },
  ISO_IR_144: { kind: 'single', label: 'iso-8859-5' },
  ISO_IR_127: { kind: 'single', label: 'iso-8859-6' },
  ISO_IR_126: { kind: 'single', label: 'iso-8859-7' },
  ISO_IR_138: { kind: 'single', label: 'iso-8859-8' },
  ISO_IR_148: { kind: 'single', label: 'iso-8859-9' },
  ISO_IR_203: { kind: 'single', label: 'iso-8859-15' },
  ISO_IR_166: { kind: 'single', label: 'windows-874' },
  ISO_IR_13: { kind: 'multi', label: 'shift_jis' },
  ISO_IR_192: { kind: 'multi', label: 'utf-8' },
  GB18030: { kind: 'multi', label: 'gb18030' },
  GBK: { kind: 'multi', label: 'gbk' },
};

/** G1 single-byte sets designated by ISO 2022 escape sequences "ESC - F". */
const G1_96_SETS: Record<number, string> = {
  0x41: 'latin1', // ESC - A  ISO-IR 100
  0x42: 'iso-8859-2', // ESC - B  ISO-IR 101
  0x43: 'iso-8859-3', // ESC - C  ISO-IR 109
  0x44: 'iso-8859-4', // ESC - D  ISO-IR 110
  0x4c: 'iso-8859-5', // ESC - L  ISO-IR 144
  0x47: 'iso-8859-6', // ESC - G  ISO-IR 127
  0x46: 'iso-8859-7', // ESC - F  ISO-IR 126
  0x48: 'iso-8859-8', // ESC - H  ISO-IR 138
  0x4d: 'iso-8859-9', // ESC - M  ISO-IR 148
  0x62: 'iso-8859-15', // ESC - b  ISO-IR 203
  0x54: 'windows-874', // ESC - T  ISO-IR 166
};

/** Initial G1 designation for "ISO 2022 IR nnn" defined terms. */
const ISO2022_INITIAL_G1: Record<string, G1State> = {
  'ISO_2022_IR_100': { kind: 'single', label: 'latin1' },
  'ISO_2022_IR_101': { kind: 'single', label: 'iso-8859-2' },
  'ISO_2022_IR_109': { kind: 'single', label: 'iso-8859-3' },
  'ISO_2022_IR_110': { kind: 'single', label: 'iso-8859-4' },
  'ISO_2022_IR_144': { kind: 'single', label: 'iso-8859-5' },
  'ISO_2022_IR_127': { kind: 'single', label: 'iso-8859-6' },
  'ISO_2022_IR_126': { kind: 'single', label: 'iso-8859-7' },
  'ISO_2022_IR_138': { kind: 'single', label: 'iso-8859-8' },
  'ISO_2022_IR_148': { kind: 'single', label: 'iso-8859-9' },
  'ISO_2022_IR_203': { kind: 'single', label: 'iso-8859-15' },
  'ISO_2022_IR_166': { kind: 'single', label: 'windows-874' },
  'ISO_2022_IR_13': { kind: 'katakana' },
  'ISO_2022_IR_149': { kind: 'double', label: 'euc-kr' },
  'ISO_2022_IR_58': { kind: 'double', label: 'gbk' },
};

type G0State = 'ascii' | 'romaji' | 'jisx0208' | 'jisx0212';
type G1State =
  | { kind: 'none' }
  | { kind: 'single'; label: string }
  | { kind: 'katakana' }
  | { kind: 'double'; label: string };

const decoders = new Map<string, TextDecoder>();
function decoder(label: string): TextDecoder {
  let d = decoders.get(label);
  if (!d) {
    d = new TextDecoder(label);
    decoders.set(label, d);
  }
  return d;
}

function normalizeTerm(term: string): string {
  return term.trim().toUpperCase().replace(/[ -]/g, '_');
}

/** Normalized defined terms of a (0008,0005) value. */
export function parseCharsets(value: readonly unknown[] | undefined): string[] {
  if (!value || value.length === 0) return [''];
  return value.map((v) => normalizeTerm(typeof v === 'string' ? v : ''));
}

function usesCodeExtensions(charsets: readonly string[]): boolean {
  return charsets.some((c) => c.startsWith('ISO_2022'));
}

function decodeSingleByte(bytes: Uint8Array, label: string): string {
  if (label === 'latin1' || label === 'ascii') return Buffer.from(bytes).toString('latin1');
  return decoder(label).decode(bytes);
}

/**
 * Decodes a text value. With ISO 2022 code extensions, designations revert to the initial state at
 * value delimiters and control characters, and for person names at component/group delimiters.
 */
export function decodeText(bytes: Uint8Array, charsets: readonly string[], isPersonName = false): string {
  if (bytes.length === 0) return '';
  if (!usesCodeExtensions(charsets)) {
    const set = PLAIN_SETS[charsets[0] ?? ''] ?? PLAIN_SETS[''];
    if (set.kind === 'single') return decodeSingleByte(bytes, set.label);
    return decoder(set.label).decode(bytes);
  }
  return decodeIso2022(bytes, charsets, isPersonName);
}

function decodeIso2022(bytes: Uint8Array, charsets: readonly string[], isPersonName: boolean): string {
  const first = charsets[0] ?? '';
  const initialG0: G0State = first === 'ISO_2022_IR_13' || first === 'ISO_IR_13' ? 'romaji' : 'ascii';
  let initialG1: G1State = { kind: 'none' };
  const plainFirst = PLAIN_SETS[first];
  if (ISO2022_INITIAL_G1[first]) initialG1 = ISO2022_INITIAL_G1[first];
  else if (plainFirst && plainFirst.kind === 'single' && plainFirst.label !== 'ascii') {
    initialG1 = { kind: 'single', label: plainFirst.label };
  } else if (first === 'ISO_IR_13') initialG1 = { kind: 'katakana' };

  let g0 = initialG0 as G0State;
  let g1 = initialG1 as G1State;
  let out = '';
  let i = 0;
  while (i < bytes.length) {
    const b = bytes[i];
    if (b === ESC) {
      const esc = applyEscape(bytes, i);
      if (esc) {
        if (esc.g0) g0 = esc.g0;
        if (esc.g1) g1 = esc.g1;
        i += esc.length;
        continue;
      }
      out += '\u001b';
      i++;
      continue;
    }
    if (b < 0x80) {
      if (g0 === 'jisx0208' || g0 === 'jisx0212') {
        if (b < 0x21 || i + 1 >= bytes.length) {
          out += String.fromCharCode(b);
          i++;
        } else {
          const pair = [bytes[i] | 0x80, bytes[i + 1] | 0x80];
          const seq = g0 === 'jisx0212' ? [0x8f, ...pair] : pair;
          out += decoder('euc-jp').decode(Uint8Array.from(seq));
          i += 2;
        }
        continue;
      }
      if (g0 === 'romaji' && b === 0x5c) out += '\u00a5';
      else if (g0 === 'romaji' && b === 0x7e) out += '\u203e';
      else out += String.fromCharCode(b);
      // Delimiters reset the designations to the initial state (PS3.5 6.1.2.5.3).
      if (b === 0x0d || b === 0x0a || b === 0x09 || b === 0x0c || b === 0x5c || (isPersonName && (b === 0x5e || b === 0x3d))) {
        g0 = initialG0;
        g1 = initialG1;
      }
      i++;
      continue;
    }
    // G1 (high half)
    const g1Now: G1State = g1;
    switch (g1Now.kind) {
      case 'single':
        out += decodeSingleByte(Uint8Array.of(b), g1Now.label);
        i++;
        break;
      case 'katakana':
        out += b >= 0xa1 && b <= 0xdf ? String.fromCharCode(0xff61 + (b - 0xa1)) : '\ufffd';
        i++;
        break;
      case 'double':
        if (i + 1 < bytes.length) {
          out += decoder(g1Now.label).decode(bytes.subarray(i, i + 2));
          i += 2;
        } else {
          out += '\ufffd';
          i++;
        }
        break;
      default:
        out += Buffer.from([b]).toString('latin1');
        i++;
    }
  }
  return out;
}

/** Decodes the escape sequence at `i` (designation of G0 or G1), or null if not recognized. */
function applyEscape(bytes: Uint8Array, i: number): { length: number; g0?: G0State; g1?: G1State } | null {
  const b1 = bytes[i + 1];
  const b2 = bytes[i + 2];
  const b3 = bytes[i + 3];
  if (b1 === 0x28) {
    // ESC ( F : 94-set into G0
    if (b2 === 0x42) return { length: 3, g0: 'ascii' };
    if (b2 === 0x4a) return { length: 3, g0: 'romaji' };
  } else if (b1 === 0x29 && b2 === 0x49) {
    // ESC ) I : JIS X 0201 katakana into G1
    return { length: 3, g1: { kind: 'katakana' } };
  } else if (b1 === 0x2d && b2 !== undefined && G1_96_SETS[b2]) {
    return { length: 3, g1: { kind: 'single', label: G1_96_SETS[b2] } };
  } else if (b1 === 0x24) {
    if (b2 === 0x42) return { length: 3, g0: 'jisx0208' }; // ESC $ B
    if (b2 === 0x28 && b3 === 0x44) return { length: 4, g0: 'jisx0212' }; // ESC $ ( D
    if (b2 === 0x29 && b3 === 0x43) return { length: 4, g1: { kind: 'double', label: 'euc-kr' } }; // ESC $ ) C
    if (b2 === 0x29 && b3 === 0x41) return { length: 4, g1: { kind: 'double', label: 'gbk' } }; // ESC $ ) A
  }
  return null;
}

/** Encoders for the single-byte sets: Unicode char -> byte, built from the decoders. */
const reverseTables = new Map<string, Map<string, number>>();
function reverseTable(label: string): Map<string, number> {
  let table = reverseTables.get(label);
  if (!table) {
    table = new Map();
    for (let b = 0x80; b <= 0xff; b++) {
      const ch = decodeSingleByte(Uint8Array.of(b), label);
      if (ch !== '\ufffd' && !table.has(ch)) table.set(ch, b);
    }
    reverseTables.set(label, table);
  }
  return table;
}

export function isAscii(s: string): boolean {
  // eslint-disable-next-line no-control-regex
  return /^[\x00-\x7f]*$/.test(s);
}

/**
 * Encodes `text` in the declared character set, or returns null if it cannot be represented
 * (the caller then switches the dataset to UTF-8).
 */
export function encodeText(text: string, charsets: readonly string[]): Buffer | null {
  if (isAscii(text)) return Buffer.from(text, 'latin1');
  if (usesCodeExtensions(charsets) || charsets.length > 1) return null;
  const set = PLAIN_SETS[charsets[0] ?? ''];
  if (!set) return null;
  if (set.kind === 'multi') return set.label === 'utf-8' ? Buffer.from(text, 'utf8') : null;
  if (set.label === 'ascii') return null;
  if (set.label === 'latin1') {
    for (const ch of text) if (ch.codePointAt(0)! > 0xff) return null;
    return Buffer.from(text, 'latin1');
  }
  const table = reverseTable(set.label);
  const out: number[] = [];
  for (const ch of text) {
    const cp = ch.codePointAt(0)!;
    if (cp < 0x80) out.push(cp);
    else {
      const b = table.get(ch);
      if (b === undefined) return null;
      out.push(b);
    }
  }
  return Buffer.from(out);
}
