import { HOT_TIER_ID, type TierConfig, type VnaConfig, VNA_CONFIG } from '#vna/config';
import { HOT_STORAGE, StowLimits } from '#vna/ingest';
import { INDEXER_CONCURRENCY, RECONCILE_INTERVAL_MS } from '#vna/indexer';
import { JOB_DELAYS, type JobDelays } from '#vna/jobs';
import { createStorage, FsStorage, S3Storage, STORAGE_REGISTRY, type StorageBackend, type StorageConfig, StorageRegistry } from '#vna/storage';
import { type DynamicModule, Global, Logger, Module } from '@nestjs/common';

export const RETRIEVE_AE_TITLE = Symbol('RETRIEVE_AE_TITLE');

/** The storage backend configuration of a tier (its storage id is the tier id). */
export function tierStorageConfig(tier: TierConfig): StorageConfig {
  return tier.kind === 'fs'
    ? { id: tier.id, kind: 'fs', path: tier.path }
    : {
        id: tier.id, kind: 's3', endPoint: tier.s3.endPoint, port: tier.s3.port, useSSL: tier.s3.useSSL,
        accessKey: tier.s3.accessKey, secretKey: tier.s3.secretKey, region: tier.s3.region,
        bucket: tier.s3.bucket, prefix: tier.s3.prefix, pathStyle: true,
        ...(tier.s3.storageClass ? { storageClass: tier.s3.storageClass } : {}),
        ...(tier.s3.archive ? { archiveRestore: { days: tier.s3.archive.days, retrieval: tier.s3.archive.retrieval } } : {}),
      };
}

/**
 * A tier other than hot: registered even when it cannot be prepared at boot (bucket check, root
 * directory), so an unreachable warm or cold tier never keeps ingest and retrieval from starting;
 * moves to or from it fail (and are retried) until it answers.
 */
async function otherTier(tier: TierConfig): Promise<StorageBackend> {
  const cfg = tierStorageConfig(tier);
  const logger = new Logger('Storage');
  const backend = cfg.kind === 'fs' ? new FsStorage(cfg, { logger }) : new S3Storage(cfg, { logger });
  await backend.init().catch((e: unknown) => {
    logger.error(`tier ${tier.id} could not be prepared at start-up (${(e as Error).message}); moves to or from it fail until it answers`);
  });
  return backend;
}

/** Process-wide providers built from the validated configuration. */
@Global()
@Module({})
export class CoreModule {
  static forRoot(config: VnaConfig): DynamicModule {
    return {
      module: CoreModule,
      providers: [
        { provide: VNA_CONFIG, useValue: config },
        {
          // The `hot` tier: where ingest writes every new instance.
          provide: HOT_STORAGE,
          useFactory: (): Promise<StorageBackend> => createStorage(tierStorageConfig(config.tiers.find((t) => t.id === HOT_TIER_ID)!)),
        },
        {
          // Every tier by its storage id (VNA_TIERS); retrieval reads locations through it.
          provide: STORAGE_REGISTRY,
          inject: [HOT_STORAGE],
          useFactory: async (hot: StorageBackend) => {
            const registry = new StorageRegistry([hot]);
            for (const tier of config.tiers) if (tier.id !== hot.id) registry.register(await otherTier(tier));
            return registry;
          },
        },
        { provide: StowLimits, useValue: new StowLimits(config.stowMaxBytes) },
        { provide: RECONCILE_INTERVAL_MS, useValue: config.reconcileIntervalMs },
        { provide: INDEXER_CONCURRENCY, useValue: config.indexerConcurrency },
        { provide: JOB_DELAYS, useValue: { indexStudyMs: config.indexDelayMs } satisfies JobDelays },
        { provide: RETRIEVE_AE_TITLE, useValue: config.aeTitle },
      ],
      exports: [VNA_CONFIG, HOT_STORAGE, STORAGE_REGISTRY, StowLimits, RECONCILE_INTERVAL_MS, INDEXER_CONCURRENCY, JOB_DELAYS, RETRIEVE_AE_TITLE],
    };
  }
}
