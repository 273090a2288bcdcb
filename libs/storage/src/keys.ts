/**
 * Key rules shared by all backends. Keys map to file paths (FsStorage) and object names (S3Storage);
 * the same rules apply to both so objects can move between tiers unchanged.
 */
import { randomUUID } from 'node:crypto';
import { InvalidStorageKeyError } from './contract.js';

/** Directory / key prefix reserved for temporary objects. */
export const TEMP_DIR = '.tmp';

const MAX_KEY_BYTES = 1024; // S3 limit
const MAX_SEGMENT_BYTES = 255; // NAME_MAX of common filesystems
// eslint-disable-next-line no-control-regex
const CONTROL_CHARS = /[\u0000-\u001f\u007f]/;
/** Characters allowed in a key segment: safe in file names, URLs and S3 copy-source headers. */
const SEGMENT_CHARS = /^[A-Za-z0-9._-]+$/;
const TEMP_KEY = /^\.tmp\/[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

/**
 * Throws InvalidStorageKeyError unless `key` is a safe relative key: non-empty, '/'-separated
 * segments, none empty, "." or ".."; no leading '/', backslash, NUL or other control character;
 * segments made of [A-Za-z0-9._-] only; at most 1024 bytes and 255 bytes per segment; not inside the
 * reserved ".tmp/" area.
 */
export function assertValidKey(key: string): void {
  if (typeof key !== 'string' || key.length === 0) {
    throw new InvalidStorageKeyError(String(key), 'empty or not a string');
  }
  if (key.includes('\0')) throw new InvalidStorageKeyError(key, 'contains NUL');
  if (key.includes('\\')) throw new InvalidStorageKeyError(key, 'contains a backslash');
  if (CONTROL_CHARS.test(key)) throw new InvalidStorageKeyError(key, 'contains a control character');
  if (key.startsWith('/')) throw new InvalidStorageKeyError(key, 'absolute path');
  if (Buffer.byteLength(key, 'utf8') > MAX_KEY_BYTES) {
    throw new InvalidStorageKeyError(key, `longer than ${MAX_KEY_BYTES} bytes`);
  }
  const segments = key.split('/');
  for (const segment of segments) {
    if (segment === '') throw new InvalidStorageKeyError(key, 'empty path segment');
    if (segment === '.' || segment === '..') {
      throw new InvalidStorageKeyError(key, 'relative path segment ("." or "..")');
    }
    if (Buffer.byteLength(segment, 'utf8') > MAX_SEGMENT_BYTES) {
      throw new InvalidStorageKeyError(key, `path segment longer than ${MAX_SEGMENT_BYTES} bytes`);
    }
    if (!SEGMENT_CHARS.test(segment)) {
      throw new InvalidStorageKeyError(key, 'characters other than A-Z a-z 0-9 . _ - in a segment');
    }
  }
  if (segments[0] === TEMP_DIR) {
    throw new InvalidStorageKeyError(key, `the ${TEMP_DIR}/ area is reserved for temporary objects`);
  }
}

/** A fresh temporary key: ".tmp/<uuid>". */
export function newTempKey(): string {
  return `${TEMP_DIR}/${randomUUID()}`;
}

/** Throws InvalidStorageKeyError unless `tempKey` is a key made by `newTempKey`. */
export function assertValidTempKey(tempKey: string): void {
  if (typeof tempKey !== 'string' || !TEMP_KEY.test(tempKey)) {
    throw new InvalidStorageKeyError(String(tempKey), 'not a temporary key of this library');
  }
}

/** Validates a byte range of `read`; returns null when it means the whole object. */
export function normalizeRange(
  range: { start: number; end?: number } | undefined,
): { start: number; end?: number } | null {
  if (range === undefined) return null;
  const { start, end } = range;
  if (!Number.isSafeInteger(start) || start < 0) {
    throw new RangeError(`invalid range start ${start}`);
  }
  if (end !== undefined && (!Number.isSafeInteger(end) || end < start)) {
    throw new RangeError(`invalid range end ${end} (start ${start})`);
  }
  if (start === 0 && end === undefined) return null;
  return end === undefined ? { start } : { start, end };
}

export function assertValidAge(olderThanMs: number): void {
  if (!Number.isFinite(olderThanMs) || olderThanMs < 0) {
    throw new RangeError(`olderThanMs must be a finite number >= 0, got ${olderThanMs}`);
  }
}
