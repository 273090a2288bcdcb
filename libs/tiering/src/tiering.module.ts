import { JsonBodyMiddleware } from '#vna/admin';
import { CatalogModule } from '#vna/catalog';
import { JobsModule } from '#vna/jobs';
import { type MiddlewareConsumer, Module, type NestModule, RequestMethod } from '@nestjs/common';
import { LifecycleSchedulerService } from './policy/lifecycle-scheduler.service.js';
import { LifecycleController } from './policy/lifecycle.controller.js';
import { LifecycleService } from './policy/lifecycle.service.js';
import { PolicyRepository } from './policy/policy.repository.js';
import { MoveRepository } from './move.repository.js';
import { StudyMoveService } from './study-move.service.js';
import { StorageTiersController, StudyTieringController } from './tiering.controller.js';
import { TieringProcessor } from './tiering.processor.js';
import { TieringReconcilerService } from './tiering-reconciler.service.js';
import { TieringService } from './tiering.service.js';
import { RestoreRepository } from './restore.repository.js';
import { RestoreRequestService } from './restore-request.service.js';
import { StudyRestoreService } from './study-restore.service.js';
import { RestoreSweeperService } from './restore-sweeper.service.js';
import { CapacityRepository } from './capacity/capacity.repository.js';
import { CapacitySchedulerService } from './capacity/capacity-scheduler.service.js';
import { CapacityService } from './capacity/capacity.service.js';
import { PromotionService } from './capacity/promotion.service.js';
import { PriorsPrefetchRepository } from './prefetch/priors-prefetch.repository.js';
import { PriorsPrefetchService } from './prefetch/priors-prefetch.service.js';

/** Restore requests and their journal: used by the tiering API and by retrieval (which waits for restores). */
@Module({
  imports: [CatalogModule, JobsModule],
  providers: [RestoreRepository, RestoreRequestService],
  exports: [RestoreRepository, RestoreRequestService],
})
export class RestoreClientModule {}

/**
 * Tiering API (always loaded, like the admin API): tiers, a study's locations, move requests, the
 * lifecycle policy and its evaluation. Needs VNA_CONFIG.
 */
@Module({
  imports: [CatalogModule, JobsModule, RestoreClientModule],
  controllers: [StorageTiersController, StudyTieringController, LifecycleController],
  providers: [MoveRepository, TieringService, PolicyRepository, LifecycleService, CapacityRepository, CapacityService, PromotionService],
  exports: [TieringService, LifecycleService, CapacityService, PromotionService],
})
export class TieringApiModule implements NestModule {
  configure(consumer: MiddlewareConsumer) {
    // POST /api/lifecycle/evaluate has no body: only the routes that take one parse it.
    // POST /api/studies/{uid}/restore takes no body either.
    consumer
      .apply(JsonBodyMiddleware)
      .exclude({ path: 'api/studies/:uid/restore', method: RequestMethod.POST })
      .forRoutes(StudyTieringController, { path: 'api/lifecycle/policy', method: RequestMethod.PUT });
  }
}

/**
 * Tiering role: the vna-tiering worker (study moves, scheduled policy evaluations), its reconciler
 * and the evaluation scheduler. Needs VNA_CONFIG and STORAGE_REGISTRY.
 */
@Module({
  imports: [CatalogModule, JobsModule, TieringApiModule, RestoreClientModule],
  providers: [
    MoveRepository,
    StudyMoveService,
    StudyRestoreService,
    TieringProcessor,
    TieringReconcilerService,
    RestoreSweeperService,
    LifecycleSchedulerService,
    CapacitySchedulerService,
    PriorsPrefetchRepository,
    PriorsPrefetchService,
  ],
  exports: [StudyMoveService, StudyRestoreService],
})
export class TieringModule {}
