import { JsonBodyMiddleware } from '#vna/admin';
import { CatalogModule } from '#vna/catalog';
import { JobsModule } from '#vna/jobs';
import { type MiddlewareConsumer, Module, type NestModule } from '@nestjs/common';
import { MoveRepository } from './move.repository.js';
import { StudyMoveService } from './study-move.service.js';
import { StorageTiersController, StudyTieringController } from './tiering.controller.js';
import { TieringProcessor } from './tiering.processor.js';
import { TieringReconcilerService } from './tiering-reconciler.service.js';
import { TieringService } from './tiering.service.js';

/** Tiering API (always loaded, like the admin API): tiers, a study's locations, move requests. Needs VNA_CONFIG. */
@Module({
  imports: [CatalogModule, JobsModule],
  controllers: [StorageTiersController, StudyTieringController],
  providers: [MoveRepository, TieringService],
  exports: [TieringService],
})
export class TieringApiModule implements NestModule {
  configure(consumer: MiddlewareConsumer) {
    consumer.apply(JsonBodyMiddleware).forRoutes(StudyTieringController);
  }
}

/** Tiering role: the vna-tiering worker (study moves) and its reconciler. Needs VNA_CONFIG and STORAGE_REGISTRY. */
@Module({
  imports: [CatalogModule, JobsModule],
  providers: [MoveRepository, StudyMoveService, TieringProcessor, TieringReconcilerService],
  exports: [StudyMoveService],
})
export class TieringModule {}
