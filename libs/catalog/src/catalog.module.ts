import { AuditEventRepository } from './audit-event.repository.js';
import { Module } from '@nestjs/common';
import { IndexRepository } from './index.repository.js';
import { InstanceRepository } from './instance.repository.js';
import { QueryRepository } from './query.repository.js';
import { LocationRepository } from './location.repository.js';
import { AeRepository } from './ae.repository.js';

/** Repositories over the metadata index. The DataSource itself is provided by the app (DatabaseModule). */
@Module({
  providers: [InstanceRepository, IndexRepository, QueryRepository, LocationRepository, AeRepository, AuditEventRepository],
  exports: [InstanceRepository, IndexRepository, QueryRepository, LocationRepository, AeRepository, AuditEventRepository],
})
export class CatalogModule {}
