import { CatalogModule } from '#vna/catalog';
import { Module } from '@nestjs/common';
import { AccessTrackerService } from './access-tracker.service.js';
import { ObjectReaderService } from './object-reader.service.js';

/** Retrieval role: WADO-RS/URI, C-MOVE/C-GET handlers and what they share. Needs STORAGE_REGISTRY. */
@Module({
  imports: [CatalogModule],
  providers: [ObjectReaderService, AccessTrackerService],
  exports: [ObjectReaderService, AccessTrackerService],
})
export class RetrievalModule {}
