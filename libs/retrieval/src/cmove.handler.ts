import type { DimseStatus, RetrieveItem, RetrievePlan, RetrieveRequest } from '#vna/dimse';
import { Injectable, Logger } from '@nestjs/common';
import { DimseRetrieveService, RetrieveError } from './dimse-retrieve.service.js';
import { toDimseError } from './retrieve-status.js';

/** C-MOVE SCP (Patient Root, Study Root, ...): destination and items from one service; statuses mapped here. */
@Injectable()
export class CMoveHandler {
  private readonly logger = new Logger(CMoveHandler.name);

  constructor(private readonly retrieve: DimseRetrieveService) {}

  async onMove(req: RetrieveRequest, _signal: AbortSignal): Promise<RetrievePlan> {
    const from = req.association.callingAeTitle;
    try {
      const destination = await this.retrieve.resolveDestination(req.moveDestination ?? '');
      const plan = await this.retrieve.planWithRestore(req.identifier, req.affectedSopClassUid, 'stream', { actor: from, via: 'C-MOVE', destination: destination.aeTitle });
      this.logger.log(
        `C-MOVE from ${from} to ${destination.aeTitle}@${destination.host}:${destination.port}: ${plan.items.length} instance(s)${plan.beforeSubOperations ? ', some restored first' : ''}`,
      );
      return { destination, ...plan };
    } catch (e) {
      if (e instanceof RetrieveError) this.logger.warn(`C-MOVE from ${from} to ${req.moveDestination ?? '?'} refused: ${e.message}`);
      throw toDimseError(e);
    }
  }

  onSubOperationResult(req: RetrieveRequest, item: RetrieveItem, result: DimseStatus | Error): void {
    this.retrieve.reportSubOperation(`C-MOVE to ${req.moveDestination ?? '?'}`, req.association.callingAeTitle, item, result);
  }
}
