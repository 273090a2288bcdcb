import { CatalogModule } from '#vna/catalog';
import { JobsModule } from '#vna/jobs';
import { Module } from '@nestjs/common';
import { IndexProcessor } from './index.processor.js';
import { IndexerService } from './indexer.service.js';
import { ReconcilerService } from './reconciler.service.js';

/** Indexer role: the index queue's worker and the reconciler. Needs RECONCILE_INTERVAL_MS from the app. */
@Module({
  imports: [CatalogModule, JobsModule],
  providers: [IndexerService, IndexProcessor, ReconcilerService],
  exports: [IndexerService],
})
export class IndexerModule {}
