import { CatalogModule } from '#vna/catalog';
import { Module } from '@nestjs/common';
import { CFindHandler } from './cfind.handler.js';
import { QidoController } from './qido.controller.js';
import { QueryService } from './query.service.js';

/** Query role: QIDO-RS and the C-FIND handler. */
@Module({
  imports: [CatalogModule],
  controllers: [QidoController],
  providers: [QueryService, CFindHandler],
  exports: [QueryService, CFindHandler],
})
export class QueryModule {}
