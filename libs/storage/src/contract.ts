/**
 * Storage backends behind one interface (filesystem, S3-compatible through the `minio` client).
 *
 * Writes are two-step: `writeTemp` streams bytes to a temporary object and resolves only when they
 * are durable there (fsync of file and directory; completed PUT for S3), with the size and SHA-256
 * computed on the way. Then `commit` moves it to its final key (durably), or `revoke` deletes it.
 * A crash between the two steps leaves only temporary objects, which `sweepTemp` removes.
 */
import type { Readable } from 'node:stream';
import type { PooledBytes } from './hash-pool.js';
import type { CheckAlgorithm } from './xxh64.js';
import type { ArchiveObjectState, ArchiveRestoreRequest, RestoreRequestOutcome } from './s3-restore.js';

export type StorageKind = 'fs' | 's3';

export interface TempObject {
  /** Backend-specific key of the temporary object. */
  readonly tempKey: string;
  readonly size: number;
  /** Lower-case hex SHA-256 of the bytes written. */
  readonly sha256: string;
  /** XXH64 of the bytes written (16 lower-case hex digits): what reads are checked against. */
  readonly xxh64: string;
  /**
   * The first bytes written (up to `headBytes` of WriteOptions), kept in memory so the caller can
   * parse the DICOM header without reading the object back.
   */
  readonly head: Buffer;
}

export interface WriteOptions {
  /** How many leading bytes to keep in `TempObject.head` (default 0). */
  headBytes?: number;
  /** Optional bytes written before the stream (e.g. a Part 10 preamble + file meta group). */
  prefix?: Buffer;
  /**
   * Sees every chunk of the stream (not the prefix) in order, and its end, before the object is
   * made durable; an exception from it fails the write (e.g. a structure check of the bytes).
   * Cheaper than piping through a Transform.
   */
  inspect?: ByteInspector;
}

export interface ByteInspector {
  update(chunk: Buffer): void;
  finish(): void;
}

export interface CopiedTemp {
  readonly tempKey: string;
  readonly size: number;
}

export interface ObjectStat {
  size: number;
}

export interface StorageBackend {
  /** Short, never-changing id of this storage (e.g. "hot", "warm", "cold"). */
  readonly id: string;
  readonly kind: StorageKind;

  writeTemp(data: Readable, options?: WriteOptions): Promise<TempObject>;
  /** Move a temporary object to `key`, durably. Must not overwrite an existing different object. */
  commit(tempKey: string, key: string): Promise<void>;
  /** Delete a temporary object; a missing one is not an error. */
  revoke(tempKey: string): Promise<void>;
  /** Stream a temporary (not yet committed) object, e.g. to read more of a header than `head` kept. */
  readTemp(tempKey: string, range?: { start: number; end?: number }): Promise<Readable>;

  /** Stream an object, optionally a byte range [start, end] inclusive. Rejects NotFound if absent. */
  read(key: string, range?: { start: number; end?: number }): Promise<Readable>;
  /** Size of an object, or null if absent. */
  stat(key: string): Promise<ObjectStat | null>;
  /**
   * Optional fast path for small objects (retrieval): the whole object read into pooled memory and
   * hashed off the event loop with `check` (the caller compares the digest with the recorded
   * one), when its size is `expectedSize`; `{ size }` without reading when its size differs.
   * Rejects NotFound if absent. The caller must `release()` the memory once nothing refers to the
   * bytes any more. Backends without it are read through `stat` + `read`.
   */
  readWholeHashed?(key: string, expectedSize: number, check: CheckAlgorithm): Promise<PooledBytes | ObjectStat>;
  /**
   * Optional fast path for copying an object of another backend into a temporary object of this
   * one (a tier move between two filesystems): the bytes never pass through the event loop
   * (copy_file_range in the kernel), and the temporary object is durable, as after writeTemp.
   * No digest is computed: the caller verifies the committed copy. Resolves null when this
   * backend cannot copy from `source` directly; rejects NotFound if the source object is absent.
   */
  copyTempFrom?(source: StorageBackend, sourceKey: string): Promise<CopiedTemp | null>;
  /**
   * Optional: size and SHA-256 of a committed object computed where it is cheapest (a filesystem
   * reads and hashes it on a hashing thread, off the event loop). Null if the object is absent.
   */
  digest?(key: string): Promise<{ size: number; sha256: string } | null>;
  /** Delete an object; a missing one is not an error. */
  delete(key: string): Promise<void>;

  /** Remove temporary objects older than `olderThanMs` (left by a crash). Returns how many. */
  sweepTemp(olderThanMs: number): Promise<number>;
  /** Throws if the storage cannot be reached or written. */
  health(): Promise<void>;

  /**
   * Set when committed objects are of an archive storage class (S3 GLACIER, DEEP_ARCHIVE): they
   * cannot be read until `requestRestore` made them readable, which `archiveState` tells. Temporary
   * objects are always readable (they are written in the standard class).
   */
  readonly archive?: ArchiveAccess;
}

/** Restore of objects of an archive storage class (see s3-restore.ts). */
export interface ArchiveAccess {
  /** The storage class committed objects get. */
  readonly storageClass: string;
  /** What a restore request asks for (days, retrieval option). */
  readonly request: ArchiveRestoreRequest;
  /** Asks for a readable copy of `key` (S3 RestoreObject). Rejects NotFound if absent. */
  requestRestore(key: string): Promise<RestoreRequestOutcome>;
  /** Whether `key` can be read now (HEAD). Rejects NotFound if absent. */
  archiveState(key: string): Promise<ArchiveObjectState>;
}

export class StorageNotFoundError extends Error {
  constructor(
    readonly storageId: string,
    readonly key: string,
  ) {
    super(`object ${key} not found in storage ${storageId}`);
    this.name = 'StorageNotFoundError';
  }
}

export interface FsStorageConfig {
  id: string;
  kind: 'fs';
  /** Root directory; created if absent. */
  path: string;
  /** fsync files and directories (default true; tests may not turn it off). */
  fsync?: boolean;
}

export interface S3StorageConfig {
  id: string;
  kind: 's3';
  endPoint: string;
  port?: number;
  useSSL?: boolean;
  accessKey: string;
  secretKey: string;
  region?: string;
  bucket: string;
  /** Key prefix inside the bucket (e.g. "vna/"). */
  prefix?: string;
  pathStyle?: boolean;
  /** `x-amz-storage-class` of committed objects (temporary objects stay in the standard class). */
  storageClass?: string;
  /** For an archive storage class (GLACIER, DEEP_ARCHIVE): what restore requests ask for (default 1 day, Standard). */
  archiveRestore?: ArchiveRestoreRequest;
}

export type StorageConfig = FsStorageConfig | S3StorageConfig;

/** `commit` refused because an object already exists at the target key (keys are never reused). */
export class StorageConflictError extends Error {
  constructor(
    readonly storageId: string,
    readonly key: string,
  ) {
    super(`object ${key} already exists in storage ${storageId}; refusing to overwrite it`);
    this.name = 'StorageConflictError';
  }
}

/** A key (or temporary key) that is malformed or could escape the storage root. */
export class InvalidStorageKeyError extends Error {
  constructor(
    readonly key: string,
    readonly reason: string,
  ) {
    super(`invalid storage key ${JSON.stringify(key)}: ${reason}`);
    this.name = 'InvalidStorageKeyError';
  }
}

/** A written or copied object does not match what was sent (size mismatch after upload or copy). */
export class StorageIntegrityError extends Error {
  constructor(
    readonly storageId: string,
    readonly key: string,
    message: string,
  ) {
    super(`integrity check failed for ${key} in storage ${storageId}: ${message}`);
    this.name = 'StorageIntegrityError';
  }
}

/** The server does not implement a request the archive needs (e.g. RestoreObject): retrying will not help. */
export class StorageUnsupportedError extends Error {
  constructor(
    readonly storageId: string,
    message: string,
  ) {
    super(`storage ${storageId} does not support this: ${message}`);
    this.name = 'StorageUnsupportedError';
  }
}

/** Minimal logger shape (Nest's `Logger` satisfies it); used for best-effort clean-up failures. */
export interface StorageLogger {
  warn(message: string): void;
}
