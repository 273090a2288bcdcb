import { CatalogModule } from '#vna/catalog';
import { JobsModule } from '#vna/jobs';
import { Module } from '@nestjs/common';
import { CStoreHandler } from './cstore.handler.js';
import { IngestService } from './ingest.service.js';
import { StowController } from './stow.controller.js';
import { TempSweeperService } from './temp-sweeper.service.js';

/** Ingest role: C-STORE SCP handler and STOW-RS. Needs HOT_STORAGE and StowLimits from the app. */
@Module({
  imports: [CatalogModule, JobsModule],
  controllers: [StowController],
  providers: [IngestService, CStoreHandler, TempSweeperService],
  exports: [IngestService, CStoreHandler],
})
export class IngestModule {}
