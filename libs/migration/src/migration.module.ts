import { AdminModule, JsonBodyMiddleware } from '#vna/admin';
import { CatalogModule } from '#vna/catalog';
import { IngestModule } from '#vna/ingest';
import { JobsModule } from '#vna/jobs';
import { type MiddlewareConsumer, Module, type NestModule, RequestMethod } from '@nestjs/common';
import { MigrationController } from './migration.controller.js';
import { MigrationProcessor } from './migration.processor.js';
import { MigrationReconcilerService } from './migration-reconciler.service.js';
import { MigrationRepository } from './migration.repository.js';
import { MigrationRunnerService } from './migration-runner.service.js';
import { MigrationService } from './migration.service.js';

/**
 * Migration jobs from legacy archives (loaded with the ingest role: migrated objects enter through
 * IngestService, and C-MOVE answers arrive at this process's DIMSE listener). Needs VNA_CONFIG.
 */
@Module({
  imports: [CatalogModule, JobsModule, IngestModule, AdminModule],
  controllers: [MigrationController],
  providers: [MigrationRepository, MigrationRunnerService, MigrationService, MigrationProcessor, MigrationReconcilerService],
  exports: [MigrationService],
})
export class MigrationModule implements NestModule {
  configure(consumer: MiddlewareConsumer) {
    // Bodies only where there are any: pause/resume/cancel take none (no Content-Type needed).
    consumer
      .apply(JsonBodyMiddleware)
      .forRoutes({ path: 'api/migrations', method: RequestMethod.POST }, { path: 'api/migrations/:id', method: RequestMethod.PATCH });
  }
}
