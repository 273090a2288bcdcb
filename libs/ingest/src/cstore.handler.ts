import { type DimseStatus, DimseStatusCode, type StoreRequest } from '#vna/dimse';
import { Injectable, Logger } from '@nestjs/common';
import type { Readable } from 'node:stream';
import { IngestError } from './ingest.errors.js';
import { IngestService } from './ingest.service.js';
import { failureReasonFor } from './status-map.js';

/** C-STORE SCP: one call into IngestService; statuses mapped here, at the DIMSE edge. */
@Injectable()
export class CStoreHandler {
  private readonly logger = new Logger(CStoreHandler.name);

  constructor(private readonly ingest: IngestService) {}

  async onStore(req: StoreRequest, dataset: Readable): Promise<DimseStatus> {
    try {
      await this.ingest.store({
        data: dataset,
        kind: 'dataset',
        sopClassUid: req.affectedSopClassUid,
        sopInstanceUid: req.affectedSopInstanceUid,
        transferSyntaxUid: req.transferSyntaxUid,
        sourceAe: req.association.callingAeTitle,
      });
      return { status: DimseStatusCode.Success };
    } catch (e) {
      if (e instanceof IngestError) {
        this.logger.warn(`C-STORE ${req.affectedSopInstanceUid} from ${req.association.callingAeTitle} refused: ${e.message}`);
        return { status: failureReasonFor(e.code), errorComment: e.message.slice(0, 64) };
      }
      this.logger.error(`C-STORE ${req.affectedSopInstanceUid} failed: ${(e as Error).stack}`);
      return { status: DimseStatusCode.OutOfResources, errorComment: String((e as Error).message).slice(0, 64) };
    }
  }
}
