import { AeOperation, AeRegistryService } from '#vna/admin';
import { type VnaConfig, VNA_CONFIG } from '#vna/config';
import {
  type AssociationDecision,
  type AssociationInfo,
  type DimseLogger,
  DimseError,
  DimseServer,
  type DimseServiceHandlers,
} from '#vna/dimse';
import { CStoreHandler } from '#vna/ingest';
import { CFindHandler } from '#vna/query';
import { CGetHandler, CMoveHandler } from '#vna/retrieval';
import { Inject, Injectable, Logger, type OnApplicationBootstrap, type OnApplicationShutdown, Optional } from '@nestjs/common';

/** PS3.7 C.5: Refused: Not Authorized. */
const NOT_AUTHORIZED = 0x0124;

/**
 * The process's DICOM listener. It serves whatever roles this process runs: C-STORE when the
 * ingest role is present, C-FIND/C-MOVE/C-GET when the retrieval role is, C-ECHO always.
 *
 * Who may associate: the called AE must be ours; VNA_ACCEPTED_CALLING_AETS, when set, lists the
 * calling AEs accepted. By default that is all (promiscuous). With VNA_REQUIRE_KNOWN_AES=true the
 * calling AE must also be registered (/api/aes, VNA_AES), and each C-STORE / C-FIND / C-MOVE+C-GET
 * is refused with 0x0124 unless the AE's allowStore / allowFind / allowRetrieve grants it.
 */
@Injectable()
export class DimseListenerService implements OnApplicationBootstrap, OnApplicationShutdown {
  private readonly logger = new Logger('DIMSE');
  private server?: DimseServer;

  constructor(
    @Inject(VNA_CONFIG) private readonly config: VnaConfig,
    private readonly registry: AeRegistryService,
    @Optional() private readonly store?: CStoreHandler,
    @Optional() private readonly find?: CFindHandler,
    @Optional() private readonly move?: CMoveHandler,
    @Optional() private readonly get?: CGetHandler,
  ) {}

  async onApplicationBootstrap() {
    const handlers: DimseServiceHandlers = {
      onAssociationRequest: (info) => this.decide(info),
    };
    if (this.store) {
      handlers.onStore = (req, data) => this.store!.onStore(req, data);
      handlers.onAssociationClosed = (info) => this.store!.onAssociationClosed(info);
    }
    if (this.find) handlers.onFind = (req, signal) => this.find!.onFind(req, signal, this.config.aeTitle);
    if (this.move) handlers.onMove = (req, signal) => this.move!.onMove(req, signal);
    if (this.get) handlers.onGet = (req, signal) => this.get!.onGet(req, signal);
    if (this.move || this.get) {
      handlers.onSubOperationResult = (req, item, result) =>
        req.moveDestination !== undefined ? this.move?.onSubOperationResult(req, item, result) : this.get?.onSubOperationResult(req, item, result);
    }
    if (this.registry.requireKnown) this.enforcePermissions(handlers);
    this.server = new DimseServer({
      aeTitle: this.config.aeTitle,
      port: this.config.dimsePort,
      pendingIntervalMs: this.config.pendingIntervalMs,
      handlers,
      logger: this.dimseLogger(),
    });
    await this.server.listen();
    this.logger.log(
      `DICOM ${this.config.aeTitle} listening on port ${this.config.dimsePort}${this.registry.requireKnown ? ' (registered AEs only)' : ''}`,
    );
  }

  /**
   * The DIMSE layer's logger. Without debug logging it has no `debug`, so the layer's per-message
   * debug lines (`log.debug?.(…)`) are not even formatted: a C-MOVE sends hundreds per second.
   */
  private dimseLogger(): DimseLogger {
    const logger = this.logger;
    return {
      log: (m) => logger.log(m),
      warn: (m) => logger.warn(m),
      error: (m, trace) => logger.error(m, trace),
      ...(Logger.isLevelEnabled('debug') ? { debug: (m: string) => logger.debug(m) } : {}),
    };
  }

  async onApplicationShutdown() {
    await this.server?.close();
  }

  private async decide(info: AssociationInfo): Promise<AssociationDecision> {
    if (info.calledAeTitle.trim() !== this.config.aeTitle) {
      this.logger.warn(`association from ${info.callingAeTitle}@${info.remoteAddress} rejected: called AE "${info.calledAeTitle}" is not ${this.config.aeTitle}`);
      return { accept: false, result: 1, source: 1, reason: 7 };
    }
    const allowed = this.config.acceptedCallingAets;
    if (allowed.length && !allowed.includes(info.callingAeTitle.trim())) {
      this.logger.warn(`association from unknown calling AE ${info.callingAeTitle}@${info.remoteAddress} rejected`);
      return { accept: false, result: 1, source: 1, reason: 3 };
    }
    if (this.registry.requireKnown) {
      let known: boolean;
      try {
        known = await this.registry.mayAssociate(info.callingAeTitle);
      } catch (e) {
        this.logger.error(`association from ${info.callingAeTitle}@${info.remoteAddress} rejected: AE registry unavailable: ${(e as Error).message}`);
        return { accept: false, result: 2, source: 1, reason: 1 };
      }
      if (!known) {
        this.logger.warn(`association from unregistered calling AE ${info.callingAeTitle}@${info.remoteAddress} rejected (VNA_REQUIRE_KNOWN_AES)`);
        return { accept: false, result: 1, source: 1, reason: 3 };
      }
    }
    return { accept: true };
  }

  /** VNA_REQUIRE_KNOWN_AES: each operation needs the calling AE's permission (0x0124 otherwise). */
  private enforcePermissions(h: DimseServiceHandlers) {
    const refuse = (ae: string, what: string) => {
      this.logger.warn(`${what} from ${ae} refused: not permitted for this AE`);
      return `${what} not permitted for ${ae.trim()}`.slice(0, 64);
    };
    const { onStore, onFind, onMove, onGet } = h;
    if (onStore) {
      h.onStore = async (req, data) => {
        if (await this.registry.isPermitted(req.association.callingAeTitle, AeOperation.Store)) return onStore(req, data);
        return { status: NOT_AUTHORIZED, errorComment: refuse(req.association.callingAeTitle, 'C-STORE') };
      };
    }
    if (onFind) {
      const registry = this.registry;
      h.onFind = async function* (req, signal) {
        if (!(await registry.isPermitted(req.association.callingAeTitle, AeOperation.Find))) {
          throw new DimseError(NOT_AUTHORIZED, refuse(req.association.callingAeTitle, 'C-FIND'));
        }
        yield* onFind(req, signal);
      };
    }
    const guardRetrieve = (name: string, fn: NonNullable<DimseServiceHandlers['onMove']>): NonNullable<DimseServiceHandlers['onMove']> =>
      async (req, signal) => {
        if (!(await this.registry.isPermitted(req.association.callingAeTitle, AeOperation.Retrieve))) {
          throw new DimseError(NOT_AUTHORIZED, refuse(req.association.callingAeTitle, name));
        }
        return fn(req, signal);
      };
    if (onMove) h.onMove = guardRetrieve('C-MOVE', onMove);
    if (onGet) h.onGet = guardRetrieve('C-GET', onGet);
  }
}
