/** Size and SHA-256 of stored bytes, computed where it is cheapest. */
import { createHash } from 'node:crypto';
import type { Readable } from 'node:stream';
import { type StorageBackend, StorageNotFoundError } from './contract.js';

export interface Digest {
  size: number;
  /** Lower-case hex SHA-256. */
  sha256: string;
}

/** Size and SHA-256 of everything a stream yields. */
export async function streamDigest(data: Readable): Promise<Digest> {
  const hash = createHash('sha256');
  let size = 0;
  for await (const chunk of data) {
    hash.update(chunk as Buffer);
    size += (chunk as Buffer).length;
  }
  return { size, sha256: hash.digest('hex') };
}

/**
 * Size and SHA-256 of a committed object, or null if it is absent: the backend's own `digest`
 * where it has one (a filesystem hashes the file on a hashing thread), else the object streamed.
 */
export async function objectDigest(storage: StorageBackend, key: string): Promise<Digest | null> {
  try {
    if (storage.digest) return await storage.digest(key);
    return await streamDigest(await storage.read(key));
  } catch (e) {
    if (e instanceof StorageNotFoundError) return null;
    throw e;
  }
}
