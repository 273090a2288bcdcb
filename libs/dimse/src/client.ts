/**
 * DICOM SCU: opens an association and runs C-ECHO, C-STORE (byte-preserving, streamed), C-FIND,
 * C-MOVE and C-GET. Used for C-MOVE sub-operations and for migration jobs.
 */
import { connect, type Socket } from 'node:net';
import type { Readable } from 'node:stream';
import {
  Association,
  AssociationAbortedError,
  type IncomingDataset,
  type NegotiatedContext,
  type ResponseStream,
} from './association.js';
import { type Command, CommandField, commandName, Priority } from './command.js';
import { type AssociationInfo, type DicomDict, DimseError, type DimseStatus, DimseStatusCode } from './contract.js';
import { decodeDataset, encodeDataset } from './dataset.js';
import { consoleLogger, type DimseLogger, errorMessage } from './logger.js';
import {
  AbortSource,
  emptyUserInformation,
  PduType,
  type PresentationContextProposal,
  PresentationContextResult,
  type RoleSelection,
  validateAeTitle,
} from './pdu.js';
import { type StoreHandler, performStore } from './store-scp.js';
import { statusCategory } from './status.js';
import {
  APPLICATION_CONTEXT_NAME,
  DEFAULT_IMPLEMENTATION_CLASS_UID,
  DEFAULT_IMPLEMENTATION_VERSION_NAME,
  SopClass,
} from './uids.js';

export interface ProposedContext {
  abstractSyntax: string;
  transferSyntaxes: string[];
  /**
   * Role selection for this SOP class (only sent when given). For C-GET, propose storage classes
   * with `{ scuRole: false, scpRole: true }` (or both true).
   */
  roles?: { scuRole: boolean; scpRole: boolean };
}

export interface DimseClientOptions {
  host: string;
  port: number;
  callingAeTitle: string;
  calledAeTitle: string;
  /** Presentation contexts to propose (at most 128). */
  contexts: ProposedContext[];
  /** Largest P-DATA-TF PDU we accept. Default 256 KiB. */
  maxPduLength?: number;
  /** TCP connect timeout, ms. Default 15 s. */
  connectTimeoutMs?: number;
  /** ARTIM (association accept / release), ms. Default 30 s. */
  artimTimeoutMs?: number;
  /** Timeout for each DIMSE response (between pending responses too), ms; 0 = none. Default 0. */
  dimseTimeoutMs?: number;
  /** Abort after this long without activity or operation; 0 = never (default). */
  idleTimeoutMs?: number;
  /** Propose an asynchronous operations window (several operations outstanding). */
  asyncOperations?: { maxInvoked: number; maxPerformed: number };
  implementationClassUid?: string;
  implementationVersionName?: string;
  logger?: DimseLogger;
  /** Incoming C-STORE sub-operations of C-GET (requires storage contexts with the SCP role). */
  onStore?: StoreHandler;
}

export interface StoreOptions {
  priority?: number;
  moveOriginatorAeTitle?: string;
  moveOriginatorMessageId?: number;
  /** A Buffer data set: called once the socket no longer refers to its bytes (pooled memory). */
  datasetWritten?: () => void;
}

export interface QueryOptions {
  priority?: number;
  /** Aborting sends C-CANCEL; the operation then ends with the SCP's Cancel response. */
  signal?: AbortSignal;
  /** Called with the final response's status (e.g. Cancel 0xFE00 from an SCP that stopped at its own result limit). */
  onFinalStatus?: (status: number) => void;
}

export interface RetrieveProgress {
  remaining?: number;
  completed: number;
  failed: number;
  warning: number;
}

export interface RetrieveResult extends RetrieveProgress {
  status: number;
  errorComment?: string;
  /** (0008,0058) Failed SOP Instance UID List of the final response. */
  failedSopInstanceUids: string[];
}

export interface RetrieveOptions extends QueryOptions {
  onProgress?(progress: RetrieveProgress): void;
}

const MAX_CONTEXTS = 128;

/** Builds proposals for storage SOP classes, each with the given transfer syntaxes. */
export function storageContexts(sopClasses: readonly string[], transferSyntaxes: readonly string[], roles?: ProposedContext['roles']): ProposedContext[] {
  return sopClasses.map((abstractSyntax) => ({ abstractSyntax, transferSyntaxes: [...transferSyntaxes], ...(roles ? { roles } : {}) }));
}

export class DimseClient {
  private readonly log: DimseLogger;
  private inFlight = 0;
  private readonly slotWaiters: (() => void)[] = [];
  private readonly info: AssociationInfo;

  private constructor(
    readonly association: Association,
    private readonly options: DimseClientOptions,
  ) {
    this.log = options.logger ?? consoleLogger;
    this.info = {
      id: association.id,
      callingAeTitle: options.callingAeTitle,
      calledAeTitle: options.calledAeTitle,
      remoteAddress: association.remoteAddress,
      remotePort: association.remotePort,
    };
  }

  /** Connects and negotiates; rejects with AssociationRejectedError / AssociationAbortedError / socket errors. */
  static async connect(options: DimseClientOptions): Promise<DimseClient> {
    validateAeTitle(options.callingAeTitle);
    validateAeTitle(options.calledAeTitle);
    if (options.contexts.length === 0) throw new Error('no presentation contexts to propose');
    if (options.contexts.length > MAX_CONTEXTS) throw new Error(`at most ${MAX_CONTEXTS} presentation contexts can be proposed`);
    const log = options.logger ?? consoleLogger;
    const maxPduLength = options.maxPduLength ?? 256 * 1024;
    const socket = await openSocket(options.host, options.port, options.connectTimeoutMs ?? 15_000);
    let client: DimseClient | undefined;
    const association = new Association(
      socket,
      {
        role: 'requestor',
        maxPduLength,
        artimTimeoutMs: options.artimTimeoutMs ?? 30_000,
        idleTimeoutMs: options.idleTimeoutMs ?? 0,
        maxBufferedDatasetBytes: 64 * 1024 * 1024,
        logger: log,
      },
      {
        onRequest: (ctx, cmd, ds) => client?.onRequest(ctx, cmd, ds),
        streamsDataset: (_ctx, cmd) => cmd.commandField === CommandField.C_STORE_RQ,
        isBusy: () => (client ? client.inFlight > 0 : false),
      },
    );
    client = new DimseClient(association, options);
    const proposals: PresentationContextProposal[] = options.contexts.map((c, i) => ({
      id: 2 * i + 1,
      abstractSyntax: c.abstractSyntax,
      transferSyntaxes: c.transferSyntaxes,
    }));
    const roles: RoleSelection[] = [];
    const seenRoles = new Set<string>();
    for (const c of options.contexts) {
      if (c.roles && !seenRoles.has(c.abstractSyntax)) {
        seenRoles.add(c.abstractSyntax);
        roles.push({ sopClassUid: c.abstractSyntax, scuRole: c.roles.scuRole, scpRole: c.roles.scpRole });
      }
    }
    const ac = await association.request({
      type: PduType.AssociateRq,
      protocolVersion: 1,
      calledAeTitle: options.calledAeTitle,
      callingAeTitle: options.callingAeTitle,
      applicationContext: APPLICATION_CONTEXT_NAME,
      presentationContexts: proposals,
      userInformation: {
        ...emptyUserInformation(),
        maxPduLength,
        implementationClassUid: options.implementationClassUid ?? DEFAULT_IMPLEMENTATION_CLASS_UID,
        implementationVersionName: options.implementationVersionName ?? DEFAULT_IMPLEMENTATION_VERSION_NAME,
        roleSelections: roles,
        ...(options.asyncOperations ? { asyncOperations: options.asyncOperations } : {}),
      },
    });
    const answeredRoles = new Map(ac.userInformation.roleSelections.map((r) => [r.sopClassUid, r]));
    const contexts: NegotiatedContext[] = [];
    for (const result of ac.presentationContexts) {
      if (result.result !== PresentationContextResult.Acceptance) continue;
      const proposal = proposals.find((p) => p.id === result.id);
      if (!proposal || !proposal.transferSyntaxes.includes(result.transferSyntax)) continue;
      const proposedRole = seenRoles.has(proposal.abstractSyntax);
      const answer = answeredRoles.get(proposal.abstractSyntax);
      // Without an answer to a proposed role selection, the default roles apply (PS3.7 D.3.3.4).
      const requestorIsScu = proposedRole && answer ? answer.scuRole : true;
      const requestorIsScp = proposedRole && answer ? answer.scpRole : false;
      contexts.push({ id: result.id, abstractSyntax: proposal.abstractSyntax, transferSyntax: result.transferSyntax, requestorIsScu, requestorIsScp });
    }
    const window = ac.userInformation.asyncOperations;
    association.setContexts(contexts, options.asyncOperations && window ? window : undefined);
    if (contexts.length === 0) {
      await association.release().catch(() => association.abort());
      throw new AssociationAbortedError('no presentation context accepted');
    }
    return client;
  }

  get isOpen(): boolean {
    return this.association.isEstablished;
  }

  get contexts(): NegotiatedContext[] {
    return [...this.association.contexts.values()];
  }

  /** Resolves when the association ends (undefined after a release, else the error). */
  get closed(): Promise<Error | undefined> {
    return this.association.closed;
  }

  /** An accepted context for the SOP class (and transfer syntax, if given) where we may act as SCU. */
  findContext(abstractSyntax: string, transferSyntax?: string): NegotiatedContext | undefined {
    for (const c of this.association.contexts.values()) {
      if (c.abstractSyntax === abstractSyntax && c.requestorIsScu && (!transferSyntax || c.transferSyntax === transferSyntax)) return c;
    }
    return undefined;
  }

  private requireContext(abstractSyntax: string, transferSyntax?: string): NegotiatedContext {
    const c = this.findContext(abstractSyntax, transferSyntax);
    if (!c) {
      throw new DimseError(
        DimseStatusCode.SopClassNotSupported,
        `no accepted presentation context for ${abstractSyntax}${transferSyntax ? ` with ${transferSyntax}` : ''}`,
      );
    }
    return c;
  }

  private async acquire(): Promise<() => void> {
    const window = this.association.maxOpsInvoked === 0 ? 64 : this.association.maxOpsInvoked;
    while (this.inFlight >= window) await new Promise<void>((r) => this.slotWaiters.push(r));
    this.inFlight++;
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.inFlight--;
      this.slotWaiters.shift()?.();
    };
  }

  async echo(): Promise<DimseStatus> {
    const context = this.requireContext(SopClass.Verification);
    const release = await this.acquire();
    try {
      const responses = await this.association.sendRequest(
        context,
        { commandField: CommandField.C_ECHO_RQ, hasDataset: false, affectedSopClassUid: SopClass.Verification },
        undefined,
        this.options.dimseTimeoutMs ?? 0,
      );
      const r = await responses.final();
      return toStatus(r.command);
    } finally {
      release();
    }
  }

  /**
   * C-STORE of a data set exactly as given (no Part 10 header): the bytes are sent unchanged in
   * `transferSyntaxUid`, which must be the syntax of an accepted context for the SOP class.
   * A failing stream rejects with DatasetSourceError (and aborts the association if part of the
   * message was already sent).
   */
  async store(
    sopClassUid: string,
    sopInstanceUid: string,
    transferSyntaxUid: string,
    dataset: Readable | Buffer,
    options: StoreOptions = {},
  ): Promise<DimseStatus> {
    let context: NegotiatedContext;
    try {
      context = this.requireContext(sopClassUid, transferSyntaxUid);
    } catch (e) {
      if (!Buffer.isBuffer(dataset)) dataset.destroy();
      throw e;
    }
    const release = await this.acquire();
    try {
      const responses = await this.association.sendRequest(
        context,
        {
          commandField: CommandField.C_STORE_RQ,
          hasDataset: true,
          affectedSopClassUid: sopClassUid,
          affectedSopInstanceUid: sopInstanceUid,
          priority: options.priority ?? Priority.Medium,
          ...(options.moveOriginatorAeTitle ? { moveOriginatorAeTitle: options.moveOriginatorAeTitle } : {}),
          ...(options.moveOriginatorMessageId !== undefined ? { moveOriginatorMessageId: options.moveOriginatorMessageId } : {}),
        },
        dataset,
        this.options.dimseTimeoutMs ?? 0,
        options.datasetWritten,
      );
      const r = await responses.final();
      return toStatus(r.command);
    } catch (e) {
      if (!Buffer.isBuffer(dataset) && !dataset.destroyed) dataset.destroy();
      throw e;
    } finally {
      release();
    }
  }

  /**
   * C-FIND: yields the identifiers of the pending responses. A failure status rejects with
   * DimseError; aborting `signal` sends C-CANCEL and ends the iteration at the Cancel response.
   */
  async *find(sopClassUid: string, identifier: DicomDict, options: QueryOptions = {}): AsyncGenerator<DicomDict> {
    const context = this.requireContext(sopClassUid);
    const release = await this.acquire();
    let cleanup: (() => void) | undefined;
    let finished = false;
    let cancel: (() => void) | undefined;
    let responses: ResponseStream | undefined;
    try {
      const messageId = this.association.nextMessageId();
      cancel = () => this.sendCancel(context, messageId);
      responses = await this.association.sendRequest(
        context,
        {
          commandField: CommandField.C_FIND_RQ,
          hasDataset: true,
          messageId,
          affectedSopClassUid: sopClassUid,
          priority: options.priority ?? Priority.Medium,
        },
        encodeDataset(identifier, context.transferSyntax),
        this.options.dimseTimeoutMs ?? 0,
      );
      cleanup = this.cancelOnAbort(context, messageId, options.signal);
      for await (const r of responses) {
        const status = r.command.status ?? 0;
        const category = statusCategory(status);
        if (category === 'pending') {
          if (r.dataset) yield decodeDataset(r.dataset, context.transferSyntax);
          continue;
        }
        finished = true;
        options.onFinalStatus?.(status);
        if (category === 'failure') throw new DimseError(status, r.command.errorComment ?? `C-FIND failed with status 0x${status.toString(16)}`);
        return;
      }
      finished = true;
    } finally {
      cleanup?.();
      if (!finished && responses && this.association.isEstablished) {
        // The caller stopped iterating early: cancel, and wait for the final response so the
        // operation is really over before its slot is reused.
        cancel?.();
        try {
          for await (const _ of responses) void _;
        } catch {
          // association gone
        }
      }
      release();
    }
  }

  private sendCancel(context: NegotiatedContext, messageId: number): void {
    void this.association
      .send(context, { commandField: CommandField.C_CANCEL_RQ, hasDataset: false, messageIdBeingRespondedTo: messageId })
      .catch((e: unknown) => this.log.debug?.(`C-CANCEL not sent: ${errorMessage(e)}`));
  }

  private cancelOnAbort(context: NegotiatedContext, messageId: number, signal: AbortSignal | undefined): (() => void) | undefined {
    if (!signal) return undefined;
    const onAbort = () => this.sendCancel(context, messageId);
    if (signal.aborted) onAbort();
    else signal.addEventListener('abort', onAbort, { once: true });
    return () => signal.removeEventListener('abort', onAbort);
  }

  /** C-MOVE: the SCP sends the matching objects to `moveDestination`. */
  async move(sopClassUid: string, moveDestination: string, identifier: DicomDict, options: RetrieveOptions = {}): Promise<RetrieveResult> {
    return this.retrieve(CommandField.C_MOVE_RQ, sopClassUid, identifier, options, moveDestination);
  }

  /** C-GET: the SCP sends the matching objects on this association, to `options.onStore` of the client. */
  async get(sopClassUid: string, identifier: DicomDict, options: RetrieveOptions = {}): Promise<RetrieveResult> {
    return this.retrieve(CommandField.C_GET_RQ, sopClassUid, identifier, options);
  }

  private async retrieve(
    commandField: number,
    sopClassUid: string,
    identifier: DicomDict,
    options: RetrieveOptions,
    moveDestination?: string,
  ): Promise<RetrieveResult> {
    const context = this.requireContext(sopClassUid);
    const release = await this.acquire();
    let cleanup: (() => void) | undefined;
    try {
      const messageId = this.association.nextMessageId();
      const responses = await this.association.sendRequest(
        context,
        {
          commandField,
          hasDataset: true,
          messageId,
          affectedSopClassUid: sopClassUid,
          priority: options.priority ?? Priority.Medium,
          ...(moveDestination !== undefined ? { moveDestination } : {}),
        },
        encodeDataset(identifier, context.transferSyntax),
        this.options.dimseTimeoutMs ?? 0,
      );
      cleanup = this.cancelOnAbort(context, messageId, options.signal);
      const final = await responses.final((pending) => options.onProgress?.(progressOf(pending.command)));
      const failedUids: string[] = [];
      if (final.dataset) {
        try {
          const ds = decodeDataset(final.dataset, context.transferSyntax);
          for (const v of ds['00080058']?.Value ?? []) if (typeof v === 'string') failedUids.push(v);
        } catch (e) {
          this.log.warn(`undecodable identifier in final ${commandName(final.command.commandField)}: ${errorMessage(e)}`);
        }
      }
      return {
        status: final.command.status ?? 0,
        ...(final.command.errorComment ? { errorComment: final.command.errorComment } : {}),
        ...progressOf(final.command),
        failedSopInstanceUids: failedUids,
      };
    } finally {
      cleanup?.();
      release();
    }
  }

  private onRequest(context: NegotiatedContext, command: Command, dataset: IncomingDataset | Buffer | undefined): void {
    if (command.commandField === CommandField.C_STORE_RQ && dataset && !Buffer.isBuffer(dataset)) {
      const handler = context.requestorIsScp ? this.options.onStore : undefined;
      void performStore({ association: this.association, info: this.info, context, command, dataset, handler, log: this.log }).catch(
        (e: unknown) => {
          if (this.association.state === 'closed') return;
          this.log.error(`incoming C-STORE failed: ${errorMessage(e)}`);
          this.association.abort(AbortSource.ServiceUser, 0);
        },
      );
      return;
    }
    if (dataset && !Buffer.isBuffer(dataset)) dataset.destroy();
    this.log.warn(`unexpected ${commandName(command.commandField)} from the SCP`);
    void this.association
      .send(context, {
        commandField: command.commandField | 0x8000,
        hasDataset: false,
        messageIdBeingRespondedTo: command.messageId ?? 0,
        status: 0x0211,
      })
      .catch(() => undefined);
  }

  /** Orderly release (A-RELEASE). */
  async release(): Promise<void> {
    await this.association.release();
  }

  /** A-ABORT. */
  abort(): void {
    this.association.abort(AbortSource.ServiceUser, 0);
  }
}

function toStatus(command: Command): DimseStatus {
  return command.errorComment !== undefined
    ? { status: command.status ?? 0, errorComment: command.errorComment }
    : { status: command.status ?? 0 };
}

function progressOf(command: Command): RetrieveProgress {
  return {
    ...(command.remaining !== undefined ? { remaining: command.remaining } : {}),
    completed: command.completed ?? 0,
    failed: command.failed ?? 0,
    warning: command.warning ?? 0,
  };
}

function openSocket(host: string, port: number, timeoutMs: number): Promise<Socket> {
  return new Promise<Socket>((resolve, reject) => {
    const socket = connect({ host, port, noDelay: true });
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error(`connection to ${host}:${port} timed out`));
    }, timeoutMs);
    timer.unref?.();
    const onError = (e: Error) => {
      clearTimeout(timer);
      reject(e);
    };
    socket.once('error', onError);
    socket.once('connect', () => {
      clearTimeout(timer);
      socket.off('error', onError);
      resolve(socket);
    });
  });
}
