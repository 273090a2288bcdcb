import type { StorageBackend, StorageConfig } from './contract.js';
import { FsStorage, type FsStorageOptions } from './fs-storage.js';
import { S3Storage, type S3StorageOptions } from './s3-storage.js';

/** Options for `createStorage`; backend-specific members are ignored by the other backend. */
export type CreateStorageOptions = FsStorageOptions & S3StorageOptions;

/**
 * Makes the backend described by `config` and prepares it (FS: creates the root and `.tmp/`;
 * S3: creates the bucket if absent). Does not run `health()`.
 */
export async function createStorage(
  config: StorageConfig,
  options: CreateStorageOptions = {},
): Promise<StorageBackend> {
  switch (config.kind) {
    case 'fs': {
      const storage = new FsStorage(config, { logger: options.logger });
      await storage.init();
      return storage;
    }
    case 's3': {
      const storage = new S3Storage(config, options);
      await storage.init();
      return storage;
    }
    default: {
      const unknown: never = config;
      throw new TypeError(`unknown storage kind ${JSON.stringify((unknown as { kind?: unknown }).kind)}`);
    }
  }
}

export class UnknownStorageError extends Error {
  constructor(
    readonly storageId: string,
    readonly known: readonly string[],
  ) {
    super(`unknown storage id ${JSON.stringify(storageId)} (configured: ${known.join(', ') || 'none'})`);
    this.name = 'UnknownStorageError';
  }
}

/** The configured backends by id. */
export class StorageRegistry {
  private readonly backends = new Map<string, StorageBackend>();

  constructor(backends: Iterable<StorageBackend> = []) {
    for (const backend of backends) this.register(backend);
  }

  /** Creates (and initialises) one backend per config; ids must be unique. */
  static async fromConfigs(
    configs: readonly StorageConfig[],
    options: CreateStorageOptions = {},
  ): Promise<StorageRegistry> {
    const registry = new StorageRegistry();
    for (const config of configs) {
      if (registry.has(config.id)) throw new Error(`duplicate storage id ${JSON.stringify(config.id)}`);
      registry.register(await createStorage(config, options));
    }
    return registry;
  }

  register(backend: StorageBackend): void {
    if (this.backends.has(backend.id)) throw new Error(`duplicate storage id ${JSON.stringify(backend.id)}`);
    this.backends.set(backend.id, backend);
  }

  has(id: string): boolean {
    return this.backends.has(id);
  }

  /** The backend with this id; throws UnknownStorageError if none. */
  get(id: string): StorageBackend {
    const backend = this.backends.get(id);
    if (backend === undefined) throw new UnknownStorageError(id, this.ids());
    return backend;
  }

  ids(): string[] {
    return [...this.backends.keys()];
  }

  all(): StorageBackend[] {
    return [...this.backends.values()];
  }
}
