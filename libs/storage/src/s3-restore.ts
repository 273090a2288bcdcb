/**
 * The S3 side of archive storage classes (GLACIER, DEEP_ARCHIVE): objects of these classes cannot be
 * read (GET answers 403 InvalidObjectState) until a RestoreObject request (`POST /{key}?restore`)
 * has made a temporary readable copy, which HEAD reports in `x-amz-restore`:
 * `ongoing-request="true"` while it is being made, then
 * `ongoing-request="false", expiry-date="Fri, 21 Dec 2012 00:00:00 GMT"` until it expires.
 * Pure functions here (request body, header parsing, state); the requests are in S3Storage.
 */
import { createHash } from 'node:crypto';

/** Storage classes whose objects must be restored before they are read (GLACIER_IR is read directly). */
export const S3_ARCHIVE_CLASSES = ['GLACIER', 'DEEP_ARCHIVE'] as const;

/** GlacierJobParameters/Tier of a RestoreObject request. */
export type S3RestoreRetrieval = 'Expedited' | 'Standard' | 'Bulk';

/** What a RestoreObject request does for one object. */
export interface ArchiveRestoreRequest {
  /** Days the restored copy stays readable (1 or more). */
  days: number;
  retrieval: S3RestoreRetrieval;
}

/** Where one object of an archive-class tier stands (from HEAD). */
export type ArchiveObjectState =
  /** Not of an archive class (e.g. the tier's class changed), or restored: GET works. */
  | { state: 'readable'; expiresAt: Date | null }
  /** Archive class, no restore requested (or its restored copy expired): a RestoreObject request is needed. */
  | { state: 'archived' }
  /** A restore is under way. */
  | { state: 'restoring' };

/** The answer to a RestoreObject request. */
export type RestoreRequestOutcome =
  /** 202 Accepted: the restore started. */
  | 'accepted'
  /** 409 RestoreAlreadyInProgress. */
  | 'in-progress'
  /** 200 OK: a restored copy exists already (its expiry was extended). */
  | 'restored'
  /** 403 InvalidObjectState: the object is not of an archive class, it can be read as it is. */
  | 'not-archived';

/** The RestoreRequest XML body (namespace http://s3.amazonaws.com/doc/2006-03-01/). */
export function restoreRequestXml({ days, retrieval }: ArchiveRestoreRequest): string {
  if (!Number.isSafeInteger(days) || days < 1) throw new RangeError(`restore days must be an integer of at least 1, got ${days}`);
  if (!['Expedited', 'Standard', 'Bulk'].includes(retrieval)) throw new RangeError(`unknown retrieval tier ${JSON.stringify(retrieval)}`);
  return (
    '<?xml version="1.0" encoding="UTF-8"?>' +
    '<RestoreRequest xmlns="http://s3.amazonaws.com/doc/2006-03-01/">' +
    `<Days>${days}</Days>` +
    `<GlacierJobParameters><Tier>${retrieval}</Tier></GlacierJobParameters>` +
    '</RestoreRequest>'
  );
}

/** Base64 MD5 of a request body (Content-MD5, which RestoreObject asks for). */
export function contentMd5(body: string | Buffer): string {
  return createHash('md5').update(body).digest('base64');
}

/** A parsed `x-amz-restore` header. */
export interface RestoreHeader {
  ongoing: boolean;
  /** When the restored copy expires (only once the restore is done). */
  expiresAt: Date | null;
}

/**
 * Parses `x-amz-restore`: `ongoing-request="true"` or
 * `ongoing-request="false", expiry-date="Fri, 21 Dec 2012 00:00:00 GMT"`. Null when absent;
 * throws on a value without a valid `ongoing-request`.
 */
export function parseRestoreHeader(value: string | string[] | undefined): RestoreHeader | null {
  if (value === undefined) return null;
  const text = Array.isArray(value) ? value.join(', ') : value;
  if (text.trim() === '') return null;
  const fields = new Map<string, string>();
  for (const m of text.matchAll(/([a-z-]+)\s*=\s*"([^"]*)"/gi)) fields.set(m[1]!.toLowerCase(), m[2]!);
  const ongoing = fields.get('ongoing-request')?.toLowerCase();
  if (ongoing !== 'true' && ongoing !== 'false') throw new Error(`x-amz-restore header without ongoing-request: ${JSON.stringify(text)}`);
  const expiry = fields.get('expiry-date');
  const expiresAt = expiry === undefined ? null : new Date(expiry);
  if (expiresAt !== null && Number.isNaN(expiresAt.getTime())) throw new Error(`x-amz-restore header with a bad expiry-date: ${JSON.stringify(text)}`);
  return { ongoing: ongoing === 'true', expiresAt };
}

/** The state of one object from its HEAD headers (`x-amz-storage-class` absent = STANDARD). */
export function archiveObjectState(headers: { storageClass?: string; restore?: string | string[] }, now = new Date()): ArchiveObjectState {
  const cls = (headers.storageClass ?? 'STANDARD').toUpperCase();
  const restore = parseRestoreHeader(headers.restore);
  if (!(S3_ARCHIVE_CLASSES as readonly string[]).includes(cls)) return { state: 'readable', expiresAt: null };
  if (restore === null) return { state: 'archived' };
  if (restore.ongoing) return { state: 'restoring' };
  // Expired but not yet removed by S3 counts as archived: the copy may vanish any moment.
  if (restore.expiresAt !== null && restore.expiresAt.getTime() <= now.getTime()) return { state: 'archived' };
  return { state: 'readable', expiresAt: restore.expiresAt };
}
