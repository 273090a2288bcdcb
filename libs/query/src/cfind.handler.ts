import { type DicomJsonDataset, QueryError } from '#vna/catalog';
import { type DicomDict, DimseError, DimseStatusCode, type FindRequest } from '#vna/dimse';
import { Injectable, Logger } from '@nestjs/common';
import { QueryService } from './query.service.js';

const PATIENT_ROOT_FIND = '1.2.840.10008.5.1.4.1.2.1.1';

/** C-FIND SCP (Study Root and Patient Root): one call into QueryService; statuses mapped here. */
@Injectable()
export class CFindHandler {
  private readonly logger = new Logger(CFindHandler.name);

  constructor(private readonly query: QueryService) {}

  async *onFind(req: FindRequest, signal: AbortSignal, retrieveAeTitle: string): AsyncIterable<DicomDict> {
    const patientRoot = req.affectedSopClassUid === PATIENT_ROOT_FIND;
    try {
      for await (const ds of this.query.cfind(req.identifier as DicomJsonDataset, patientRoot, retrieveAeTitle)) {
        if (signal.aborted) return;
        yield ds as DicomDict;
      }
    } catch (e) {
      if (e instanceof QueryError) {
        this.logger.warn(`C-FIND from ${req.association.callingAeTitle} refused: ${e.message}`);
        throw new DimseError(DimseStatusCode.DataSetDoesNotMatchSopClass, e.message.slice(0, 64));
      }
      this.logger.error(`C-FIND failed: ${(e as Error).stack}`);
      throw new DimseError(DimseStatusCode.UnableToProcess, String((e as Error).message).slice(0, 64));
    }
  }
}
