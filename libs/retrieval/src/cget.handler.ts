import type { DimseStatus, RetrieveItem, RetrievePlan, RetrieveRequest } from '#vna/dimse';
import { Injectable, Logger } from '@nestjs/common';
import { DimseRetrieveService, RetrieveError } from './dimse-retrieve.service.js';
import { toDimseError } from './retrieve-status.js';

/**
 * C-GET SCP: the items from one service; the DIMSE layer sends them on the requesting association.
 * No transcoding: an object goes only over a context the requestor accepted in its stored syntax.
 */
@Injectable()
export class CGetHandler {
  private readonly logger = new Logger(CGetHandler.name);

  constructor(private readonly retrieve: DimseRetrieveService) {}

  async onGet(req: RetrieveRequest, _signal: AbortSignal): Promise<RetrievePlan> {
    const from = req.association.callingAeTitle;
    try {
      const plan = await this.retrieve.planWithRestore(req.identifier, req.affectedSopClassUid, 'verify-first', { actor: req.association.callingAeTitle, via: 'C-GET' });
      this.logger.log(`C-GET from ${from}: ${plan.items.length} instance(s)${plan.beforeSubOperations ? ', some restored first' : ''}`);
      return plan;
    } catch (e) {
      if (e instanceof RetrieveError) this.logger.warn(`C-GET from ${from} refused: ${e.message}`);
      throw toDimseError(e);
    }
  }

  onSubOperationResult(req: RetrieveRequest, item: RetrieveItem, result: DimseStatus | Error): void {
    this.retrieve.reportSubOperation('C-GET', req.association.callingAeTitle, item, result);
  }
}
