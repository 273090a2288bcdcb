import { AdminModule } from '#vna/admin';
import { CatalogModule, catalogDataSourceOptions } from '#vna/catalog';
import type { Role, VnaConfig } from '#vna/config';
import { IndexerModule } from '#vna/indexer';
import { IngestModule } from '#vna/ingest';
import { JobsModule } from '#vna/jobs';
import { MigrationModule } from '#vna/migration';
import { QueryModule } from '#vna/query';
import { RetentionModule } from '#vna/retention';
import { RetrievalModule } from '#vna/retrieval';
import { TieringApiModule, TieringModule } from '#vna/tiering';
import { BullModule } from '@nestjs/bullmq';
import { type DynamicModule, Module } from '@nestjs/common';
import { TypeOrmModule } from '@nestjs/typeorm';
import { DimseListenerService } from './dimse-listener.service.js';
import { HealthController } from './health.controller.js';
import type { Runtime } from './runtime.js';
import { CoreModule } from './storage.module.js';

const ROLE_MODULES: Record<Role, DynamicModule['imports']> = {
  ingest: [IngestModule, MigrationModule],
  indexer: [IndexerModule],
  retrieval: [QueryModule, RetrievalModule],
  tiering: [TieringModule],
};

/** Composition root shared by every app: the roles decide which feature modules are loaded. */
@Module({})
export class VnaAppModule {
  static forRoot(config: VnaConfig, runtime: Runtime): DynamicModule {
    const redis = new URL(runtime.redisUrl);
    const roleImports = [...config.roles].flatMap((r) => ROLE_MODULES[r] ?? []);
    const dimse = config.roles.has('ingest') || config.roles.has('retrieval');
    return {
      module: VnaAppModule,
      imports: [
        CoreModule.forRoot(config),
        TypeOrmModule.forRoot(catalogDataSourceOptions(runtime.databaseUrl)),
        BullModule.forRoot({
          connection: {
            host: redis.hostname,
            port: Number(redis.port || 6379),
            password: redis.password || undefined,
            username: redis.username || undefined,
            db: redis.pathname.length > 1 ? Number(redis.pathname.slice(1)) : 0,
            maxRetriesPerRequest: null,
          },
        }),
        CatalogModule,
        JobsModule,
        AdminModule,
        RetentionModule,
        TieringApiModule,
        ...roleImports,
      ],
      controllers: [HealthController],
      providers: dimse ? [DimseListenerService] : [],
    };
  }
}
