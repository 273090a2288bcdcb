import { type VnaConfig, VNA_CONFIG } from '#vna/config';
import { HOT_STORAGE, StowLimits } from '#vna/ingest';
import { INDEXER_CONCURRENCY, RECONCILE_INTERVAL_MS } from '#vna/indexer';
import { JOB_DELAYS, type JobDelays } from '#vna/jobs';
import { createStorage, STORAGE_REGISTRY, type StorageBackend, StorageRegistry } from '#vna/storage';
import { type DynamicModule, Global, Module } from '@nestjs/common';

export const RETRIEVE_AE_TITLE = Symbol('RETRIEVE_AE_TITLE');

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
          provide: HOT_STORAGE,
          useFactory: async (): Promise<StorageBackend> => {
            const hot = config.hotStorage;
            return hot.kind === 'fs'
              ? createStorage({ id: 'hot', kind: 'fs', path: hot.path })
              : createStorage({
                  id: 'hot', kind: 's3', endPoint: hot.s3.endPoint, port: hot.s3.port, useSSL: hot.s3.useSSL,
                  accessKey: hot.s3.accessKey, secretKey: hot.s3.secretKey, region: hot.s3.region,
                  bucket: hot.s3.bucket, prefix: hot.s3.prefix, pathStyle: true,
                });
          },
        },
        {
          // Every tier by its storage id; retrieval reads locations through it.
          provide: STORAGE_REGISTRY,
          inject: [HOT_STORAGE],
          useFactory: (hot: StorageBackend) => new StorageRegistry([hot]),
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
