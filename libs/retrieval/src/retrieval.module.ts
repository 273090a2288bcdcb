import { CatalogModule } from '#vna/catalog';
import { RestoreClientModule, TieringApiModule } from '#vna/tiering';
import { Module } from '@nestjs/common';
import { AccessTrackerService } from './access-tracker.service.js';
import { CGetHandler } from './cget.handler.js';
import { CMoveHandler } from './cmove.handler.js';
import { DimseRetrieveService } from './dimse-retrieve.service.js';
import { ObjectReaderService } from './object-reader.service.js';
import { RestoreWaitService } from './restore-wait.service.js';
import { ObjectIndexService } from './wado/object-index.service.js';
import { WadoRsController } from './wado/wado-rs.controller.js';
import { WadoUriController } from './wado/wado-uri.controller.js';
import { WadoService } from './wado/wado.service.js';

/** Retrieval role: WADO-RS/URI, C-MOVE/C-GET handlers and what they share. Needs STORAGE_REGISTRY. */
@Module({
  imports: [CatalogModule, RestoreClientModule, TieringApiModule],
  controllers: [WadoRsController, WadoUriController],
  providers: [
    ObjectReaderService,
    AccessTrackerService,
    DimseRetrieveService,
    CMoveHandler,
    CGetHandler,
    ObjectIndexService,
    WadoService,
    RestoreWaitService,
  ],
  exports: [ObjectReaderService, AccessTrackerService, DimseRetrieveService, CMoveHandler, CGetHandler, ObjectIndexService],
})
export class RetrievalModule {}
