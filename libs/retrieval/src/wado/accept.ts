/**
 * Accept-header negotiation for WADO-RS/URI (PS3.18 8.7). The archive never transcodes: every
 * negotiation either finds a representation of the bytes as stored or fails with a reason (406).
 */

export interface MediaRange {
  /** Lower-case "type/subtype" (may be a wildcard). */
  mediaType: string;
  /** Lower-case parameter names; values unquoted (`type` lower-cased, UIDs as given). */
  params: Record<string, string>;
  q: number;
}

/** The representation could not be produced: answered 406 with `message`. */
export class NotAcceptableError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'NotAcceptableError';
  }
}

export const EXPLICIT_LE = '1.2.840.10008.1.2.1';
export const IMPLICIT_LE = '1.2.840.10008.1.2';
export const EXPLICIT_BE = '1.2.840.10008.1.2.2';
export const DEFLATED = '1.2.840.10008.1.2.1.99';
const NATIVE = new Set([IMPLICIT_LE, EXPLICIT_LE, EXPLICIT_BE, DEFLATED]);

export function isNativeSyntax(ts: string): boolean {
  return NATIVE.has(ts);
}

/** Splits on `sep` outside double quotes. */
function splitOutsideQuotes(s: string, sep: string): string[] {
  const out: string[] = [];
  let cur = '';
  let quoted = false;
  for (const ch of s) {
    if (ch === '"') quoted = !quoted;
    if (ch === sep && !quoted) {
      out.push(cur);
      cur = '';
    } else cur += ch;
  }
  out.push(cur);
  return out;
}

/** Parses an Accept header into media ranges, best first (stable for equal q); q=0 dropped. Absent/empty = any. */
export function parseAccept(header: string | string[] | undefined): MediaRange[] {
  const text = (Array.isArray(header) ? header.join(',') : (header ?? '')).trim();
  if (!text) return [{ mediaType: '*/*', params: {}, q: 1 }];
  const ranges: MediaRange[] = [];
  for (const raw of splitOutsideQuotes(text, ',')) {
    const [typePart, ...paramParts] = splitOutsideQuotes(raw, ';');
    const mediaType = (typePart ?? '').trim().toLowerCase();
    if (!mediaType) continue;
    const params: Record<string, string> = {};
    let q = 1;
    for (const p of paramParts) {
      const eq = p.indexOf('=');
      if (eq < 0) continue;
      const name = p.slice(0, eq).trim().toLowerCase();
      let value = p.slice(eq + 1).trim();
      if (value.startsWith('"') && value.endsWith('"') && value.length >= 2) value = value.slice(1, -1);
      if (name === 'q') {
        const n = Number(value);
        q = Number.isFinite(n) ? Math.min(Math.max(n, 0), 1) : 1;
      } else params[name] = name === 'type' ? value.toLowerCase() : value;
    }
    if (q > 0) ranges.push({ mediaType, params, q });
  }
  return ranges.map((r, i) => ({ r, i })).sort((a, b) => b.r.q - a.r.q || a.i - b.i).map((x) => x.r);
}

function describe(ranges: MediaRange[]): string {
  return ranges
    .map((r) => [r.mediaType, ...Object.entries(r.params).map(([k, v]) => `${k}=${v}`)].join('; '))
    .join(', ');
}

/** True when the range allows a multipart/related response whose parts are `partType`. */
function multipartOf(r: MediaRange, partType: string, typeDefault: string): boolean {
  if (r.mediaType === '*/*' || r.mediaType === 'multipart/*') return true;
  if (r.mediaType !== 'multipart/related') return false;
  return (r.params.type ?? typeDefault) === partType;
}

/**
 * WADO-RS retrieve (application/dicom parts). For each stored transfer syntax returns whether some
 * acceptable range allows it; throws NotAcceptableError naming what cannot be produced.
 *
 * `transfer-syntax` absent is served as stored (not Explicit VR LE as PS3.18 defaults to): the
 * Part 10 file names its own syntax in its meta header, so the client can never misread it; a
 * client that asks for a specific syntax that differs gets 406.
 */
export function negotiateDicom(ranges: MediaRange[], storedSyntaxes: Iterable<string>): void {
  const dicomRanges = ranges.filter((r) => multipartOf(r, 'application/dicom', 'application/dicom'));
  if (!dicomRanges.length) {
    throw new NotAcceptableError(
      `cannot produce ${describe(ranges)}; WADO-RS retrieve answers multipart/related; type="application/dicom"`,
    );
  }
  const missing: string[] = [];
  for (const ts of new Set(storedSyntaxes)) {
    if (!dicomRanges.some((r) => syntaxAllowed(r.params['transfer-syntax'], ts, ts))) missing.push(ts);
  }
  if (missing.length) {
    const asked = [...new Set(dicomRanges.map((r) => r.params['transfer-syntax']).filter(Boolean))].join(', ');
    throw new NotAcceptableError(
      `requested transfer syntax ${asked} is not how the object(s) are stored (${missing.join(', ')}); ` +
        `the archive does not transcode: ask for transfer-syntax=* or the stored syntax`,
    );
  }
}

function syntaxAllowed(asked: string | undefined, stored: string, whenAbsent: string | null): boolean {
  if (asked === '*') return true;
  if (asked === undefined) return whenAbsent === stored;
  return asked === stored;
}

/** The image media type of an encapsulated syntax's frames (PS3.18 Table 8.7.3-2), else octet-stream. */
export function frameMediaType(ts: string): string {
  switch (ts) {
    case '1.2.840.10008.1.2.4.50':
    case '1.2.840.10008.1.2.4.51':
    case '1.2.840.10008.1.2.4.57':
    case '1.2.840.10008.1.2.4.70':
      return 'image/jpeg';
    case '1.2.840.10008.1.2.4.80':
    case '1.2.840.10008.1.2.4.81':
      return 'image/jls';
    case '1.2.840.10008.1.2.4.90':
    case '1.2.840.10008.1.2.4.91':
      return 'image/jp2';
    case '1.2.840.10008.1.2.4.92':
    case '1.2.840.10008.1.2.4.93':
      return 'image/jpx';
    default:
      return 'application/octet-stream';
  }
}

/**
 * Frames / pixel-data bulk data: picks the part media type for pixel data stored in `ts`, as stored.
 * Returns the Content-Type of each part (with its transfer-syntax parameter).
 *
 * - application/octet-stream: `transfer-syntax` absent means Explicit VR Little Endian
 *   (uncompressed, PS3.18): allowed for native little-endian pixel data only, since raw frame bytes
 *   do not say how they are encoded. `*` or the stored syntax: as stored.
 * - image/jpeg, image/jls, image/jp2, image/jpx: the stored syntax's type; `transfer-syntax`
 *   absent, `*` or the stored one (the bitstream is self-describing).
 * - any (*∕*, multipart/*, no type): the natural type of the stored syntax.
 */
export function negotiatePixels(ranges: MediaRange[], ts: string): string {
  const image = frameMediaType(ts);
  const littleNative = ts === EXPLICIT_LE || ts === IMPLICIT_LE;
  const labelled = (type: string, syntax: string) => `${type}; transfer-syntax=${syntax}`;
  for (const r of ranges) {
    const wildcard = r.mediaType === '*/*' || r.mediaType === 'multipart/*' || (r.mediaType === 'multipart/related' && !r.params.type);
    const asked = r.params['transfer-syntax'];
    if (wildcard) {
      if (asked === undefined || asked === '*' || asked === ts || (littleNative && asked === EXPLICIT_LE)) {
        return littleNative ? labelled('application/octet-stream', EXPLICIT_LE) : labelled(image, ts);
      }
      continue;
    }
    if (r.mediaType !== 'multipart/related') continue;
    const type = r.params.type;
    if (type === 'application/octet-stream') {
      if (littleNative && (asked === undefined || asked === EXPLICIT_LE || asked === '*' || asked === ts)) {
        return labelled('application/octet-stream', EXPLICIT_LE);
      }
      if (!littleNative && (asked === '*' || asked === ts)) return labelled('application/octet-stream', ts);
    } else if (type === image && image !== 'application/octet-stream' && (asked === undefined || asked === '*' || asked === ts)) {
      return labelled(image, ts);
    }
  }
  const natural = littleNative ? 'application/octet-stream' : image;
  throw new NotAcceptableError(
    `pixel data is stored in ${ts} and the archive does not transcode; cannot produce ${describe(ranges)}; ` +
      `ask for multipart/related; type="${natural}"${littleNative ? '' : `; transfer-syntax=${ts}`} (or transfer-syntax=*)`,
  );
}

/** Other bulk data (not pixel data): octet-stream, bytes as stored. */
export function negotiateBulk(ranges: MediaRange[], ts: string): string {
  for (const r of ranges) {
    if (multipartOf(r, 'application/octet-stream', 'application/octet-stream')) {
      const asked = r.params['transfer-syntax'];
      const little = ts !== EXPLICIT_BE;
      if ((asked === undefined && little) || asked === '*' || asked === ts || (little && asked === EXPLICIT_LE)) {
        return `application/octet-stream; transfer-syntax=${little ? EXPLICIT_LE : ts}`;
      }
    }
  }
  throw new NotAcceptableError(
    `cannot produce ${describe(ranges)} for this bulk data element (stored in ${ts}); ask for multipart/related; type="application/octet-stream"`,
  );
}

/** DICOM JSON metadata. */
export function negotiateJson(ranges: MediaRange[]): void {
  const ok = ranges.some((r) => ['*/*', 'application/*', 'application/dicom+json', 'application/json'].includes(r.mediaType));
  if (!ok) throw new NotAcceptableError(`cannot produce ${describe(ranges)}; metadata is served as application/dicom+json`);
}
