import { type VnaConfig, VNA_CONFIG } from '#vna/config';
import {
  type AssociationDecision,
  type AssociationInfo,
  DimseServer,
  type DimseServiceHandlers,
} from '#vna/dimse';
import { CStoreHandler } from '#vna/ingest';
import { CFindHandler } from '#vna/query';
import { Inject, Injectable, Logger, type OnApplicationBootstrap, type OnApplicationShutdown, Optional } from '@nestjs/common';

/**
 * The process's DICOM listener. It serves whatever roles this process runs: C-STORE when the
 * ingest role is present, C-FIND when the query role is, C-ECHO always.
 */
@Injectable()
export class DimseListenerService implements OnApplicationBootstrap, OnApplicationShutdown {
  private readonly logger = new Logger('DIMSE');
  private server?: DimseServer;

  constructor(
    @Inject(VNA_CONFIG) private readonly config: VnaConfig,
    @Optional() private readonly store?: CStoreHandler,
    @Optional() private readonly find?: CFindHandler,
  ) {}

  async onApplicationBootstrap() {
    const handlers: DimseServiceHandlers = {
      onAssociationRequest: (info) => this.decide(info),
    };
    if (this.store) handlers.onStore = (req, data) => this.store!.onStore(req, data);
    if (this.find) handlers.onFind = (req, signal) => this.find!.onFind(req, signal, this.config.aeTitle);
    this.server = new DimseServer({
      aeTitle: this.config.aeTitle,
      port: this.config.dimsePort,
      handlers,
      logger: this.logger,
    });
    await this.server.listen();
    this.logger.log(`DICOM ${this.config.aeTitle} listening on port ${this.config.dimsePort}`);
  }

  async onApplicationShutdown() {
    await this.server?.close();
  }

  private decide(info: AssociationInfo): AssociationDecision {
    if (info.calledAeTitle.trim() !== this.config.aeTitle) {
      this.logger.warn(`association from ${info.callingAeTitle}@${info.remoteAddress} rejected: called AE "${info.calledAeTitle}" is not ${this.config.aeTitle}`);
      return { accept: false, result: 1, source: 1, reason: 7 };
    }
    const allowed = this.config.acceptedCallingAets;
    if (allowed.length && !allowed.includes(info.callingAeTitle.trim())) {
      this.logger.warn(`association from unknown calling AE ${info.callingAeTitle}@${info.remoteAddress} rejected`);
      return { accept: false, result: 1, source: 1, reason: 3 };
    }
    return { accept: true };
  }
}
