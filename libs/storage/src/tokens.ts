/** Nest injection token for the process's StorageRegistry (every configured tier by id). */
export const STORAGE_REGISTRY = Symbol('STORAGE_REGISTRY');
