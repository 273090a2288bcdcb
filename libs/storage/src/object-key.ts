import { isValidUid as isDicomUid } from '#vna/dicom';
/**
 * Object keys of stored DICOM instances, derived only from UIDs (never from patient data):
 *
 *   <h1>/<h2>/<studyUid>/<seriesUid>/<sopInstanceUid>.<version>.dcm
 *
 * h1/h2 are the first two bytes (hex) of SHA-1(studyUid), spreading studies over 65,536
 * directories while keeping a study's objects together. `version` is unique per write, so a
 * re-sent instance gets a new key and never overwrites the bytes stored before.
 */
import { createHash, randomBytes } from 'node:crypto';

export interface ObjectKeyParts {
  studyUid: string;
  seriesUid: string;
  sopInstanceUid: string;
  /** Unique per write: use `newObjectVersion()`. Lower-case letters and digits, 1 to 32 chars. */
  version: string;
}

/** UID syntax (PS3.5 9.1, without the no-leading-zero rule) is checked by #vna/dicom isValidUid. */
const MAX_UID_LENGTH = 64;
/** Lower case only: keys must not collide on case-insensitive filesystems. */
const VERSION = /^[0-9a-z]{1,32}$/;

export class InvalidUidError extends Error {
  constructor(
    readonly field: string,
    readonly value: string,
  ) {
    super(`invalid ${field} ${JSON.stringify(value)}: expected a DICOM UID of at most ${MAX_UID_LENGTH} characters`);
    this.name = 'InvalidUidError';
  }
}

export function isValidUid(value: unknown): value is string {
  return typeof value === 'string' && isDicomUid(value);
}

function checkUid(field: string, value: string): void {
  if (!isValidUid(value)) throw new InvalidUidError(field, String(value));
}

export function objectKeyFor(parts: ObjectKeyParts): string {
  const { studyUid, seriesUid, sopInstanceUid, version } = parts;
  checkUid('studyUid', studyUid);
  checkUid('seriesUid', seriesUid);
  checkUid('sopInstanceUid', sopInstanceUid);
  if (typeof version !== 'string' || !VERSION.test(version)) {
    throw new TypeError(`invalid object version ${JSON.stringify(version)}: expected 1 to 32 of [0-9a-z]`);
  }
  const hash = createHash('sha1').update(studyUid, 'ascii').digest('hex');
  return `${hash.slice(0, 2)}/${hash.slice(2, 4)}/${studyUid}/${seriesUid}/${sopInstanceUid}.${version}.dcm`;
}

/**
 * A new version token: milliseconds since the epoch in base 36 (sortable by time for the next
 * ~2,000 years at 9 characters) followed by 64 random bits in hex. 25 characters, [0-9a-z].
 */
export function newObjectVersion(now: number = Date.now()): string {
  return now.toString(36).padStart(9, '0') + randomBytes(8).toString('hex');
}
