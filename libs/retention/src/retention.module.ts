import { JsonBodyMiddleware } from '#vna/admin';
import { JobsModule } from '#vna/jobs';
import { type MiddlewareConsumer, Module, type NestModule } from '@nestjs/common';
import { AuditRepository } from './audit.repository.js';
import { AuditController, HoldsController, PurgesController, RulesController, StudyRetentionController } from './controllers.js';
import { ExpiryService } from './expiry.service.js';
import { HoldsRepository } from './holds.repository.js';
import { HoldsService } from './holds.service.js';
import { PurgeService } from './purge.service.js';
import { PurgesRepository } from './purges.repository.js';
import { RetentionProcessor } from './retention.processor.js';
import { RetentionSweeperService } from './retention-sweeper.service.js';
import { RulesRepository } from './rules.repository.js';
import { RulesService } from './rules.service.js';
import { StudiesRepository } from './studies.repository.js';

/**
 * Retention (always loaded, like the admin API): rules, expiries, legal holds, purges, audit.
 * Needs VNA_CONFIG and STORAGE_REGISTRY (CoreModule) and the DataSource.
 */
@Module({
  imports: [JobsModule],
  controllers: [RulesController, PurgesController, StudyRetentionController, HoldsController, AuditController],
  providers: [
    AuditRepository, RulesRepository, StudiesRepository, HoldsRepository, PurgesRepository,
    ExpiryService, RulesService, HoldsService, PurgeService, RetentionProcessor, RetentionSweeperService,
  ],
  exports: [ExpiryService, PurgeService],
})
export class RetentionModule implements NestModule {
  configure(consumer: MiddlewareConsumer) {
    consumer.apply(JsonBodyMiddleware).forRoutes(RulesController, PurgesController, HoldsController);
  }
}
