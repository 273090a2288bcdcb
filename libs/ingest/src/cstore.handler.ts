import { type AssociationInfo, type DimseStatus, DimseStatusCode, type StoreRequest } from '#vna/dimse';
import { Injectable, Logger } from '@nestjs/common';
import type { Readable } from 'node:stream';
import { IngestError } from './ingest.errors.js';
import { IngestService } from './ingest.service.js';
import { failureReasonFor } from './status-map.js';

/** C-STORE SCP: one call into IngestService; statuses mapped here, at the DIMSE edge. */
@Injectable()
export class CStoreHandler {
  private readonly logger = new Logger(CStoreHandler.name);

  /** Instances stored per study on each open association: indexed at once and audited when it ends. */
  private readonly studiesByAssociation = new Map<string, Map<string, number>>();

  constructor(private readonly ingest: IngestService) {}

  async onStore(req: StoreRequest, dataset: Readable): Promise<DimseStatus> {
    try {
      const result = await this.ingest.store({
        data: dataset,
        kind: 'dataset',
        sopClassUid: req.affectedSopClassUid,
        sopInstanceUid: req.affectedSopInstanceUid,
        transferSyntaxUid: req.transferSyntaxUid,
        sourceAe: req.association.callingAeTitle,
      });
      const id = req.association.id;
      const studies = this.studiesByAssociation.get(id) ?? new Map<string, number>();
      studies.set(result.studyInstanceUid, (studies.get(result.studyInstanceUid) ?? 0) + 1);
      this.studiesByAssociation.set(id, studies);
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

  onAssociationClosed(info: AssociationInfo): void {
    const studies = this.studiesByAssociation.get(info.id);
    if (!studies) return;
    this.studiesByAssociation.delete(info.id);
    void this.ingest.senderDone(studies, { actor: info.callingAeTitle, via: 'C-STORE' });
  }
}
