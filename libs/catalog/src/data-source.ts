import type { DataSourceOptions } from 'typeorm';
import { CATALOG_ENTITIES } from './entities/index.js';
import { InitialSchema1732370000000 } from './migrations/1732370000000-InitialSchema.js';
import { ApplicationEntities1795449133777 } from './migrations/1795449133777-ApplicationEntities.js';
import { Retention1796090000000 } from './migrations/1796090000000-Retention.js';
import { StudyMoves1796111219790 } from './migrations/1796111219790-StudyMoves.js';
import { LifecyclePolicy1796112000000 } from './migrations/1796112000000-LifecyclePolicy.js';
import { StudyRestores1796200000000 } from './migrations/1796200000000-StudyRestores.js';
import { MigrationJobs1796300000000 } from './migrations/1796300000000-MigrationJobs.js';
import { PriorsPrefetchArchiveRestore1796420000000 } from './migrations/1796420000000-PriorsPrefetchArchiveRestore.js';
import { MigrationEnumerationProgress1796500000000 } from './migrations/1796500000000-MigrationEnumerationProgress.js';
import { LocationXxh641796600000000 } from './migrations/1796600000000-LocationXxh64.js';

/** Migrations run from this one place, in order, at boot. Never edit a landed migration. */
export const CATALOG_MIGRATIONS = [
  InitialSchema1732370000000,
  ApplicationEntities1795449133777,
  Retention1796090000000,
  StudyMoves1796111219790,
  LifecyclePolicy1796112000000,
  StudyRestores1796200000000,
  MigrationJobs1796300000000,
  PriorsPrefetchArchiveRestore1796420000000,
  MigrationEnumerationProgress1796500000000,
  LocationXxh641796600000000,
];

export function catalogDataSourceOptions(url: string): DataSourceOptions {
  return {
    type: 'postgres',
    url,
    entities: CATALOG_ENTITIES,
    migrations: CATALOG_MIGRATIONS,
    migrationsRun: true,
    migrationsTransactionMode: 'each',
    synchronize: false,
    extra: { max: 20 },
  };
}
