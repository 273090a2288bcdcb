/** Top-level folder of the hot tier's restore area: restored copies never share a key with ingest's objects. */
export const RESTORE_AREA = 'restored';

/** The key of a restored copy in the hot tier: the restore area, then the UID-derived key. */
export function restoreKeyFor(objectKey: string): string {
  if (!objectKey || objectKey.startsWith('/')) throw new TypeError(`invalid object key ${JSON.stringify(objectKey)}`);
  return `${RESTORE_AREA}/${objectKey}`;
}

/** True for keys in the restore area. */
export function isRestoreKey(key: string): boolean {
  return key.startsWith(`${RESTORE_AREA}/`);
}
