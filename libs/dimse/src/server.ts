/**
 * DICOM SCP: accepts associations and serves C-ECHO, C-STORE, C-FIND, C-MOVE and C-GET through
 * the archive's `DimseServiceHandlers`.
 */
import { createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { Association, type IncomingDataset, type NegotiatedContext } from './association.js';
import { type Command, CommandField, commandName } from './command.js';
import {
  type AssociationDecision,
  type AssociationInfo,
  type DicomDict,
  DimseError,
  type DimseServiceHandlers,
  DimseStatusCode,
  type FindRequest,
} from './contract.js';
import { DatasetError, decodeDataset, encodeDataset } from './dataset.js';
import { consoleLogger, type DimseLogger, errorMessage, errorStack } from './logger.js';
import {
  AbortReason,
  AbortSource,
  type AssociateRqPdu,
  emptyUserInformation,
  PduType,
  PresentationContextResult,
  type PresentationContextResultItem,
  type RoleSelection,
  validateAeTitle,
} from './pdu.js';
import { performRetrieve } from './retrieve.js';
import { statusFromError } from './status.js';
import { performStore } from './store-scp.js';
import {
  APPLICATION_CONTEXT_NAME,
  COMMAND_TRANSFER_SYNTAXES,
  DEFAULT_IMPLEMENTATION_CLASS_UID,
  DEFAULT_IMPLEMENTATION_VERSION_NAME,
  FIND_SOP_CLASSES,
  GET_SOP_CLASSES,
  isStorageSopClass,
  MOVE_SOP_CLASSES,
  SopClass,
  STORAGE_TRANSFER_SYNTAXES,
} from './uids.js';

export const DEFAULT_MAX_PDU_LENGTH = 256 * 1024;

export interface DimseServerOptions {
  aeTitle: string;
  port: number;
  /** Interface to bind (default: all). */
  host?: string;
  /** Largest P-DATA-TF PDU we accept (announced to peers). Default 256 KiB. */
  maxPduLength?: number;
  handlers: DimseServiceHandlers;
  logger?: DimseLogger;
  /**
   * Storage SOP classes to accept. Default: every standard Storage SOP class (STORAGE_SOP_CLASSES,
   * plus any UID under the storage root 1.2.840.10008.5.1.4.1.1).
   */
  acceptedSopClasses?: readonly string[] | ((sopClassUid: string) => boolean);
  /** Transfer syntaxes accepted for storage contexts (default STORAGE_TRANSFER_SYNTAXES). */
  storageTransferSyntaxes?: readonly string[];
  /** ARTIM timeout (association request / release), ms. Default 30 s. */
  artimTimeoutMs?: number;
  /** Abort associations idle for this long with no operation running; 0 = never. Default 10 min. */
  idleTimeoutMs?: number;
  /** Concurrent associations; beyond, requests are rejected (transient, local limit). Default 256. */
  maxAssociations?: number;
  /** Largest asynchronous operations window granted (operations performed concurrently). Default 16. */
  maxAsyncOperations?: number;
  implementationClassUid?: string;
  implementationVersionName?: string;
  /** C-MOVE sub-associations: DIMSE timeout for each C-STORE response, ms. Default 10 min. */
  subOperationTimeoutMs?: number;
  /** C-MOVE sub-associations: TCP connect timeout, ms. Default 15 s. */
  connectTimeoutMs?: number;
  /**
   * C-MOVE/C-GET: least time between two pending responses, ms (0: one after every sub-operation
   * but the last). Default 100 ms.
   */
  pendingIntervalMs?: number;
}

type ResolvedOptions = Required<Omit<DimseServerOptions, 'host' | 'logger' | 'acceptedSopClasses' | 'handlers'>> & {
  host?: string;
  logger: DimseLogger;
  acceptsStorage: (uid: string) => boolean;
  handlers: DimseServiceHandlers;
};

type Service = 'verification' | 'find' | 'move' | 'get' | 'storage';

export class DimseServer {
  private readonly options: ResolvedOptions;
  private server: Server | undefined;
  private readonly sessions = new Set<ScpSession>();

  constructor(options: DimseServerOptions) {
    validateAeTitle(options.aeTitle);
    const accepted = options.acceptedSopClasses;
    let acceptsStorage: (uid: string) => boolean = isStorageSopClass;
    if (typeof accepted === 'function') acceptsStorage = accepted;
    else if (accepted) {
      const set = new Set(accepted);
      acceptsStorage = (uid) => set.has(uid);
    }
    this.options = {
      aeTitle: options.aeTitle.trim(),
      port: options.port,
      host: options.host,
      maxPduLength: options.maxPduLength ?? DEFAULT_MAX_PDU_LENGTH,
      handlers: options.handlers,
      logger: options.logger ?? consoleLogger,
      acceptsStorage,
      storageTransferSyntaxes: options.storageTransferSyntaxes ?? STORAGE_TRANSFER_SYNTAXES,
      artimTimeoutMs: options.artimTimeoutMs ?? 30_000,
      idleTimeoutMs: options.idleTimeoutMs ?? 600_000,
      maxAssociations: options.maxAssociations ?? 256,
      maxAsyncOperations: options.maxAsyncOperations ?? 16,
      implementationClassUid: options.implementationClassUid ?? DEFAULT_IMPLEMENTATION_CLASS_UID,
      implementationVersionName: options.implementationVersionName ?? DEFAULT_IMPLEMENTATION_VERSION_NAME,
      subOperationTimeoutMs: options.subOperationTimeoutMs ?? 600_000,
      connectTimeoutMs: options.connectTimeoutMs ?? 15_000,
      pendingIntervalMs: options.pendingIntervalMs ?? 100,
    };
    if (this.options.maxPduLength < 4096) throw new Error('maxPduLength must be at least 4096');
  }

  get aeTitle(): string {
    return this.options.aeTitle;
  }

  /** Number of open associations. */
  get associationCount(): number {
    return this.sessions.size;
  }

  /** Starts listening; resolves with the bound address (port 0 picks a free port). */
  async listen(): Promise<AddressInfo> {
    if (this.server) throw new Error('already listening');
    const server = createServer({ noDelay: true, pauseOnConnect: false }, (socket) => this.onConnection(socket));
    server.on('error', (e) => this.options.logger.error(`DIMSE listener error: ${errorMessage(e)}`));
    this.server = server;
    await new Promise<void>((resolve, reject) => {
      const onError = (e: Error) => reject(e);
      server.once('error', onError);
      server.listen(this.options.port, this.options.host, () => {
        server.off('error', onError);
        resolve();
      });
    });
    return server.address() as AddressInfo;
  }

  /** The bound address (after listen()). */
  address(): AddressInfo | undefined {
    const a = this.server?.address();
    return a && typeof a === 'object' ? a : undefined;
  }

  /**
   * Stops accepting connections, lets open associations finish for up to `graceMs` (default 10 s),
   * then aborts the rest.
   */
  async close(graceMs = 10_000): Promise<void> {
    const server = this.server;
    this.server = undefined;
    const closed = server ? new Promise<void>((resolve) => server.close(() => resolve())) : Promise.resolve();
    const sessions = [...this.sessions];
    if (sessions.length) {
      const all = Promise.all(sessions.map((s) => s.association.closed));
      let timer: NodeJS.Timeout | undefined;
      const timeout = new Promise<void>((resolve) => (timer = setTimeout(resolve, graceMs)));
      await Promise.race([all, timeout]);
      if (timer) clearTimeout(timer);
      for (const s of this.sessions) s.association.abort(AbortSource.ServiceProvider, AbortReason.NotSpecified);
    }
    await closed;
  }

  private onConnection(socket: Socket): void {
    try {
      const session = new ScpSession(socket, this.options, this.sessions.size >= this.options.maxAssociations);
      this.sessions.add(session);
      void session.association.closed.then(() => this.sessions.delete(session));
    } catch (e) {
      this.options.logger.error(`failed to set up association: ${errorMessage(e)}`, errorStack(e));
      socket.destroy();
    }
  }
}

function classify(abstractSyntax: string, acceptsStorage: (uid: string) => boolean): Service | undefined {
  if (abstractSyntax === SopClass.Verification) return 'verification';
  if (FIND_SOP_CLASSES.includes(abstractSyntax)) return 'find';
  if (MOVE_SOP_CLASSES.includes(abstractSyntax)) return 'move';
  if (GET_SOP_CLASSES.includes(abstractSyntax)) return 'get';
  if (acceptsStorage(abstractSyntax)) return 'storage';
  return undefined;
}

/** One accepted connection. */
class ScpSession {
  readonly association: Association;
  private info: AssociationInfo;
  private readonly log: DimseLogger;
  private readonly handlers: DimseServiceHandlers;
  private running = 0;
  private readonly queue: (() => Promise<void>)[] = [];
  private readonly cancels = new Map<number, AbortController>();
  private concurrency = 1;

  constructor(
    socket: Socket,
    private readonly options: ResolvedOptions,
    private readonly overLimit: boolean,
  ) {
    this.log = options.logger;
    this.handlers = options.handlers;
    this.association = new Association(
      socket,
      {
        role: 'acceptor',
        maxPduLength: options.maxPduLength,
        artimTimeoutMs: options.artimTimeoutMs,
        idleTimeoutMs: options.idleTimeoutMs,
        maxBufferedDatasetBytes: 64 * 1024 * 1024,
        logger: options.logger,
      },
      {
        onAssociateRequest: (rq) => this.onAssociateRequest(rq),
        onRequest: (ctx, cmd, ds) => this.onRequest(ctx, cmd, ds),
        streamsDataset: (_ctx, cmd) => cmd.commandField === CommandField.C_STORE_RQ,
        isBusy: () => this.running > 0 || this.queue.length > 0,
        onClosed: (e) => this.onClosed(e),
      },
    );
    this.info = {
      id: this.association.id,
      callingAeTitle: '',
      calledAeTitle: '',
      remoteAddress: this.association.remoteAddress,
      remotePort: this.association.remotePort,
    };
  }

  private onClosed(e: Error | undefined): void {
    for (const c of this.cancels.values()) c.abort(e ?? new Error('association closed'));
    this.cancels.clear();
    this.queue.length = 0;
    if (e) this.log.log(`[${this.info.id}] association with ${this.info.callingAeTitle || this.info.remoteAddress} ended: ${e.message}`);
    else this.log.debug?.(`[${this.info.id}] association with ${this.info.callingAeTitle} released`);
    try {
      this.handlers.onAssociationClosed?.(this.info, e);
    } catch (err) {
      this.log.warn(`[${this.info.id}] association-closed handler failed: ${errorMessage(err)}`);
    }
  }

  // -------------------------------------------------------------------------------------------
  // Negotiation
  // -------------------------------------------------------------------------------------------

  private async onAssociateRequest(rq: AssociateRqPdu): Promise<void> {
    const a = this.association;
    this.info = { ...this.info, callingAeTitle: rq.callingAeTitle, calledAeTitle: rq.calledAeTitle };
    const reject = async (result: 1 | 2, source: 1 | 2 | 3, reason: number, why: string) => {
      this.log.warn(`[${a.id}] association from ${rq.callingAeTitle}@${this.info.remoteAddress} rejected: ${why}`);
      await a.reject({ result, source, reason });
    };
    if (this.overLimit) return reject(2, 3, 2, 'too many associations');
    if ((rq.protocolVersion & 1) === 0) return reject(1, 2, 2, 'protocol version not supported');
    if (rq.applicationContext !== APPLICATION_CONTEXT_NAME) return reject(1, 1, 2, `application context ${rq.applicationContext} not supported`);
    let decision: AssociationDecision = { accept: true };
    if (this.handlers.onAssociationRequest) {
      try {
        decision = await this.handlers.onAssociationRequest(this.info);
      } catch (e) {
        this.log.error(`[${a.id}] onAssociationRequest failed: ${errorMessage(e)}`, errorStack(e));
        return reject(2, 1, 1, 'association handler failed');
      }
    }
    if (!decision.accept) return reject(decision.result, decision.source, decision.reason, 'refused by handler');

    const { results, contexts, roles } = this.negotiateContexts(rq);
    const proposedWindow = rq.userInformation.asyncOperations;
    let asyncWindow: { maxInvoked: number; maxPerformed: number } | undefined;
    if (proposedWindow) {
      const ours = this.options.maxAsyncOperations;
      asyncWindow = {
        maxInvoked: proposedWindow.maxInvoked === 0 ? ours : Math.min(proposedWindow.maxInvoked, ours),
        // We invoke at most one C-STORE sub-operation at a time on the requestor.
        maxPerformed: 1,
      };
      this.concurrency = Math.max(1, asyncWindow.maxInvoked);
    }
    const userInformation = {
      ...emptyUserInformation(),
      maxPduLength: this.options.maxPduLength,
      implementationClassUid: this.options.implementationClassUid,
      implementationVersionName: this.options.implementationVersionName,
      roleSelections: roles,
      ...(asyncWindow ? { asyncOperations: asyncWindow } : {}),
    };
    await a.accept(
      {
        type: PduType.AssociateAc,
        protocolVersion: 1,
        calledAeTitle: rq.calledAeTitle || this.options.aeTitle,
        callingAeTitle: rq.callingAeTitle,
        applicationContext: APPLICATION_CONTEXT_NAME,
        presentationContexts: results,
        userInformation,
      },
      contexts,
      asyncWindow,
    );
    this.log.debug?.(
      `[${a.id}] association accepted from ${rq.callingAeTitle}@${this.info.remoteAddress}: ${contexts.length}/${results.length} contexts`,
    );
  }

  private negotiateContexts(rq: AssociateRqPdu): {
    results: PresentationContextResultItem[];
    contexts: NegotiatedContext[];
    roles: RoleSelection[];
  } {
    const h = this.handlers;
    const results: PresentationContextResultItem[] = [];
    const contexts: NegotiatedContext[] = [];
    const proposedRoles = new Map(rq.userInformation.roleSelections.map((r) => [r.sopClassUid, r]));
    const roleAnswers = new Map<string, RoleSelection>();
    const seen = new Set<number>();
    for (const pc of rq.presentationContexts) {
      const reject = (result: number) => results.push({ id: pc.id, result, transferSyntax: pc.transferSyntaxes[0] ?? '1.2.840.10008.1.2' });
      if (seen.has(pc.id) || pc.id % 2 === 0) {
        reject(PresentationContextResult.NoReason);
        continue;
      }
      seen.add(pc.id);
      const service = classify(pc.abstractSyntax, this.options.acceptsStorage);
      const proposedRole = proposedRoles.get(pc.abstractSyntax);
      // Roles of the requestor: default SCU only; role selection may ask for SCP (C-GET storage).
      let requestorIsScu = proposedRole ? proposedRole.scuRole : true;
      let requestorIsScp = proposedRole ? proposedRole.scpRole : false;
      let supported: boolean;
      switch (service) {
        case 'verification':
          supported = true;
          break;
        case 'find':
          supported = !!h.onFind;
          break;
        case 'move':
          supported = !!h.onMove;
          break;
        case 'get':
          supported = !!h.onGet;
          break;
        case 'storage':
          requestorIsScu = requestorIsScu && !!h.onStore;
          requestorIsScp = requestorIsScp && !!h.onGet;
          supported = requestorIsScu || requestorIsScp;
          break;
        default:
          supported = false;
      }
      if (service !== 'storage') requestorIsScp = false;
      if (!supported) {
        reject(service ? PresentationContextResult.UserRejection : PresentationContextResult.AbstractSyntaxNotSupported);
        continue;
      }
      const allowed = service === 'storage' ? this.options.storageTransferSyntaxes : COMMAND_TRANSFER_SYNTAXES;
      // The first proposed syntax we support: the sender's preference, so its bytes are kept.
      const ts = pc.transferSyntaxes.find((t) => allowed.includes(t));
      if (!ts) {
        reject(PresentationContextResult.TransferSyntaxesNotSupported);
        continue;
      }
      if (!requestorIsScu && !requestorIsScp) {
        reject(PresentationContextResult.UserRejection);
        continue;
      }
      if (proposedRole) roleAnswers.set(pc.abstractSyntax, { sopClassUid: pc.abstractSyntax, scuRole: requestorIsScu, scpRole: requestorIsScp });
      results.push({ id: pc.id, result: PresentationContextResult.Acceptance, transferSyntax: ts });
      contexts.push({ id: pc.id, abstractSyntax: pc.abstractSyntax, transferSyntax: ts, requestorIsScu, requestorIsScp });
    }
    // Answer every proposed role selection item (unsupported ones with both roles refused).
    for (const r of rq.userInformation.roleSelections) {
      if (!roleAnswers.has(r.sopClassUid)) roleAnswers.set(r.sopClassUid, { sopClassUid: r.sopClassUid, scuRole: false, scpRole: false });
    }
    return { results, contexts, roles: [...roleAnswers.values()] };
  }

  // -------------------------------------------------------------------------------------------
  // Operations
  // -------------------------------------------------------------------------------------------

  private enqueue(op: () => Promise<void>, name: string): void {
    this.queue.push(async () => {
      try {
        await op();
      } catch (e) {
        if (this.association.isEnding) {
          this.log.debug?.(`[${this.info.id}] ${name} ended with the association: ${errorMessage(e)}`);
          return;
        }
        // Per-association error isolation: an unexpected failure aborts this association only.
        this.log.error(`[${this.info.id}] ${name} failed: ${errorMessage(e)}`, errorStack(e));
        this.association.abort(AbortSource.ServiceProvider, AbortReason.NotSpecified);
      }
    });
    this.drain();
  }

  private drain(): void {
    while (this.running < this.concurrency && this.queue.length > 0) {
      const op = this.queue.shift()!;
      this.running++;
      void op().finally(() => {
        this.running--;
        this.drain();
      });
    }
  }

  private onRequest(context: NegotiatedContext, command: Command, dataset: IncomingDataset | Buffer | undefined): void {
    const name = commandName(command.commandField);
    switch (command.commandField) {
      case CommandField.C_ECHO_RQ:
        this.enqueue(() => this.echo(context, command), name);
        return;
      case CommandField.C_STORE_RQ:
        this.enqueue(
          () =>
            performStore({
              association: this.association,
              info: this.info,
              context,
              command,
              dataset: dataset as IncomingDataset,
              handler: this.handlers.onStore ? (req, ds) => this.handlers.onStore!(req, ds) : undefined,
              log: this.log,
            }),
          name,
        );
        return;
      case CommandField.C_FIND_RQ:
      case CommandField.C_MOVE_RQ:
      case CommandField.C_GET_RQ: {
        const controller = new AbortController();
        const messageId = command.messageId ?? 0;
        this.cancels.set(messageId, controller);
        const run =
          command.commandField === CommandField.C_FIND_RQ
            ? () => this.find(context, command, dataset as Buffer | undefined, controller.signal)
            : () =>
                performRetrieve({
                  association: this.association,
                  info: this.info,
                  context,
                  command,
                  identifierBytes: dataset as Buffer | undefined,
                  signal: controller.signal,
                  handlers: this.handlers,
                  log: this.log,
                  aeTitle: this.options.aeTitle,
                  maxPduLength: this.options.maxPduLength,
                  subOperationTimeoutMs: this.options.subOperationTimeoutMs,
                  connectTimeoutMs: this.options.connectTimeoutMs,
                  pendingIntervalMs: this.options.pendingIntervalMs,
                  artimTimeoutMs: this.options.artimTimeoutMs,
                  implementationClassUid: this.options.implementationClassUid,
                  implementationVersionName: this.options.implementationVersionName,
                });
        this.enqueue(async () => {
          try {
            await run();
          } finally {
            if (this.cancels.get(messageId) === controller) this.cancels.delete(messageId);
          }
        }, name);
        return;
      }
      case CommandField.C_CANCEL_RQ: {
        const controller = this.cancels.get(command.messageIdBeingRespondedTo ?? -1);
        this.log.debug?.(`[${this.info.id}] C-CANCEL for message ${command.messageIdBeingRespondedTo}${controller ? '' : ' (no such operation)'}`);
        controller?.abort(new DimseError(DimseStatusCode.Cancel, 'canceled by SCU'));
        return;
      }
      default:
        if (dataset && !Buffer.isBuffer(dataset)) dataset.destroy();
        this.enqueue(
          () =>
            this.association.send(context, {
              commandField: command.commandField | 0x8000,
              hasDataset: false,
              messageIdBeingRespondedTo: command.messageId ?? 0,
              ...(command.affectedSopClassUid ? { affectedSopClassUid: command.affectedSopClassUid } : {}),
              status: 0x0211, // Unrecognized operation
            }),
          name,
        );
    }
  }

  private async echo(context: NegotiatedContext, command: Command): Promise<void> {
    await this.association.send(context, {
      commandField: CommandField.C_ECHO_RSP,
      hasDataset: false,
      messageIdBeingRespondedTo: command.messageId ?? 0,
      affectedSopClassUid: command.affectedSopClassUid ?? SopClass.Verification,
      status: DimseStatusCode.Success,
    });
  }

  private async find(context: NegotiatedContext, command: Command, identifierBytes: Buffer | undefined, signal: AbortSignal): Promise<void> {
    const respond = (status: number, errorComment?: string, identifier?: Buffer) =>
      this.association.send(
        context,
        {
          commandField: CommandField.C_FIND_RSP,
          hasDataset: identifier !== undefined,
          messageIdBeingRespondedTo: command.messageId ?? 0,
          affectedSopClassUid: command.affectedSopClassUid ?? context.abstractSyntax,
          status,
          ...(errorComment ? { errorComment } : {}),
        },
        identifier,
      );
    if (!this.handlers.onFind) return respond(DimseStatusCode.UnableToProcess, 'C-FIND not supported');
    let identifier: DicomDict;
    try {
      if (!identifierBytes) throw new DatasetError('C-FIND-RQ without identifier');
      identifier = decodeDataset(identifierBytes, context.transferSyntax);
    } catch (e) {
      this.log.warn(`[${this.info.id}] C-FIND identifier rejected: ${errorMessage(e)}`);
      return respond(DimseStatusCode.DataSetDoesNotMatchSopClass, errorMessage(e));
    }
    const req: FindRequest = {
      association: this.info,
      messageId: command.messageId ?? 0,
      affectedSopClassUid: command.affectedSopClassUid ?? context.abstractSyntax,
      priority: command.priority ?? 0,
      identifier,
    };
    let final: { status: number; errorComment?: string };
    try {
      for await (const match of this.handlers.onFind(req, signal)) {
        if (signal.aborted) break;
        let bytes: Buffer;
        try {
          bytes = encodeDataset(match, context.transferSyntax);
        } catch (e) {
          throw new DimseError(DimseStatusCode.UnableToProcess, `cannot encode a match: ${errorMessage(e)}`);
        }
        await respond(DimseStatusCode.Pending, undefined, bytes);
      }
      final = signal.aborted ? { status: DimseStatusCode.Cancel } : { status: DimseStatusCode.Success };
    } catch (e) {
      if (this.association.isEnding) throw e;
      if (signal.aborted) final = { status: DimseStatusCode.Cancel };
      else {
        final = statusFromError(e, DimseStatusCode.UnableToProcess, DimseStatusCode.UnableToProcess);
        if (!(e instanceof DimseError)) this.log.error(`[${this.info.id}] C-FIND handler failed: ${errorMessage(e)}`, errorStack(e));
      }
    }
    await respond(final.status, final.errorComment);
  }
}
