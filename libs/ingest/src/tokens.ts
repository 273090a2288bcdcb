/** Injection token of the hot-tier StorageBackend that ingest writes to. */
export const HOT_STORAGE = Symbol('HOT_STORAGE');
