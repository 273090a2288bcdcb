import { Module } from '@nestjs/common';
import { IndexRepository } from './index.repository.js';
import { InstanceRepository } from './instance.repository.js';
import { QueryRepository } from './query.repository.js';

/** Repositories over the metadata index. The DataSource itself is provided by the app (DatabaseModule). */
@Module({
  providers: [InstanceRepository, IndexRepository, QueryRepository],
  exports: [InstanceRepository, IndexRepository, QueryRepository],
})
export class CatalogModule {}
