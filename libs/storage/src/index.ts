export * from './contract.js';
export { FsStorage, type FsStorageOptions } from './fs-storage.js';
export {
  S3Storage,
  type S3StorageOptions,
  DEFAULT_PART_SIZE,
  MINIO_CLIENT_METHODS_USED,
  S3_MAX_COPY_OBJECT_SIZE,
  S3_MAX_PART_SIZE,
  S3_MAX_PARTS,
  S3_MIN_PART_SIZE,
} from './s3-storage.js';
export { createStorage, type CreateStorageOptions, StorageRegistry, UnknownStorageError } from './registry.js';
export {
  InvalidUidError,
  isValidUid,
  newObjectVersion,
  objectKeyFor,
  type ObjectKeyParts,
} from './object-key.js';
export { assertValidKey, assertValidTempKey } from './keys.js';
export { MAX_HEAD_BYTES } from './meter.js';
export { STORAGE_REGISTRY } from './tokens.js';
export { type PooledBytes, readFileHashed, sha256OfFile, warmHashing } from './hash-pool.js';
export {
  type ArchiveObjectState,
  archiveObjectState,
  type ArchiveRestoreRequest,
  parseRestoreHeader,
  type RestoreHeader,
  type RestoreRequestOutcome,
  restoreRequestXml,
  S3_ARCHIVE_CLASSES,
  type S3RestoreRetrieval,
} from './s3-restore.js';
export { type Digest, objectDigest, streamDigest } from './digest.js';
export { type CheckAlgorithm, xxh64Hex, Xxh64Hash } from './xxh64.js';
