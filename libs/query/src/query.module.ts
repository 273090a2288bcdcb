import { CatalogModule } from '#vna/catalog';
import { Module } from '@nestjs/common';
import { QueryService } from './query.service.js';

@Module({ imports: [CatalogModule], providers: [QueryService], exports: [QueryService] })
export class QueryModule {}
