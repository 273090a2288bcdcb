/**
 * One DICOM association over one TCP connection: the upper layer state machine (PS3.8 9.2),
 * P-DATA message assembly, DIMSE message sending with fragmentation and backpressure, and
 * request/response correlation. Used by both the server (acceptor) and the client (requestor).
 *
 * Error isolation: anything going wrong inside an association (malformed PDU, protocol violation,
 * exception in a hook) aborts this association only.
 */
import { randomUUID } from 'node:crypto';
import type { Socket } from 'node:net';
import { Readable } from 'node:stream';
import { type Command, CommandError, commandName, decodeCommand, encodeCommand, isPending, isResponse } from './command.js';
import { type DimseLogger, errorMessage } from './logger.js';
import {
  AbortReason,
  AbortSource,
  type AssociateAcPdu,
  type AssociateRjPdu,
  type AssociateRqPdu,
  encodePdu,
  type PDataTfPdu,
  type Pdu,
  pDataHeader,
  PduError,
  PduReader,
  PduType,
} from './pdu.js';

/** A presentation context as negotiated (accepted contexts only). */
export interface NegotiatedContext {
  id: number;
  abstractSyntax: string;
  transferSyntax: string;
  /** The association requestor may act as SCU for this SOP class (default true). */
  requestorIsScu: boolean;
  /** The association requestor may act as SCP for this SOP class (role selection, e.g. C-GET). */
  requestorIsScp: boolean;
}

/** The association ended abnormally (A-ABORT, connection loss, protocol error, timeout). */
export class AssociationAbortedError extends Error {
  constructor(
    message: string,
    readonly source?: number,
    readonly reason?: number,
  ) {
    super(message);
    this.name = 'AssociationAbortedError';
  }
}

/** The association was rejected by the peer (A-ASSOCIATE-RJ). */
export class AssociationRejectedError extends Error {
  constructor(
    readonly result: number,
    readonly source: number,
    readonly reason: number,
  ) {
    super(`association rejected (result ${result}, source ${source}, reason ${reason})`);
    this.name = 'AssociationRejectedError';
  }
}

/** A dataset source stream failed while a message was being sent. */
export class DatasetSourceError extends Error {
  constructor(
    message: string,
    override readonly cause: unknown,
    /** True if part of the message was already on the wire (the association was then aborted). */
    readonly messageStarted: boolean,
  ) {
    super(message);
    this.name = 'DatasetSourceError';
  }
}

export interface DimseResponse {
  context: NegotiatedContext;
  command: Command;
  dataset?: Buffer;
}

export type AssociationState =
  | 'awaiting-rq'
  | 'awaiting-local-response'
  | 'awaiting-ac'
  | 'established'
  | 'release-requested'
  | 'awaiting-release-rp'
  | 'closing'
  | 'closed';

export interface AssociationHooks {
  /** Acceptor: an A-ASSOCIATE-RQ arrived. Must call accept() or reject() (or abort()). */
  onAssociateRequest?(rq: AssociateRqPdu): void | Promise<void>;
  /**
   * A request message arrived. For streamed datasets this is called as soon as the command is
   * complete, with a Readable receiving the data set fragments; otherwise the data set is buffered.
   */
  onRequest(context: NegotiatedContext, command: Command, dataset: IncomingDataset | Buffer | undefined): void;
  /** Whether the data set of this request is streamed (C-STORE-RQ) rather than buffered. */
  streamsDataset(context: NegotiatedContext, command: Command): boolean;
  /** True while operations are running (the idle timeout then does not apply). */
  isBusy?(): boolean;
  /** The association is over; `error` is undefined after a normal release. */
  onClosed?(error: Error | undefined): void;
}

export interface AssociationOptions {
  role: 'acceptor' | 'requestor';
  /** Largest P-DATA-TF PDU we announce and accept. */
  maxPduLength: number;
  /** ARTIM timer (association establishment / release), ms. */
  artimTimeoutMs: number;
  /** Abort when nothing happens for this long and no operation is running; 0 = never. */
  idleTimeoutMs: number;
  /** Largest buffered (non-streamed) data set, bytes. */
  maxBufferedDatasetBytes: number;
  logger: DimseLogger;
}

/** Streamed data set of an incoming message (C-STORE): the socket pauses while it is full. */
export class IncomingDataset extends Readable {
  private complete = false;
  private discarding = false;
  private receivedResolve!: () => void;
  private receivedReject!: (e: Error) => void;
  /** Settles when the last fragment has arrived (or rejects when the association ends before). */
  readonly received: Promise<void>;
  bytesReceived = 0;

  constructor(
    private readonly owner: Association,
    highWaterMark: number,
  ) {
    super({ highWaterMark });
    this.received = new Promise<void>((resolve, reject) => {
      this.receivedResolve = resolve;
      this.receivedReject = reject;
    });
    // Nobody may be waiting on `received`: never let it become an unhandled rejection.
    this.received.catch(() => undefined);
  }

  /** All fragments received. */
  get isComplete(): boolean {
    return this.complete;
  }

  /** @internal */
  pushFragment(data: Buffer): void {
    this.bytesReceived += data.length;
    if (this.discarding || this.destroyed) return;
    if (!this.push(data)) this.owner.pauseInput(this);
  }

  /** @internal */
  finishFragments(): void {
    this.complete = true;
    if (!this.discarding && !this.destroyed) this.push(null);
    this.owner.resumeInput(this);
    this.receivedResolve();
  }

  /** @internal: the association ended before the last fragment. */
  failFragments(error: Error): void {
    if (this.complete) return;
    this.receivedReject(error);
    this.owner.resumeInput(this);
    if (!this.destroyed) this.destroy(error);
  }

  override _read(): void {
    this.owner.resumeInput(this);
  }

  override _destroy(error: Error | null, callback: (error?: Error | null) => void): void {
    // The consumer gave up: drop the remaining fragments instead of blocking the association.
    if (!this.complete) this.discarding = true;
    this.owner.resumeInput(this);
    callback(error);
  }
}

/** Responses to one request, as an async iterable; ends after the final (non-pending) response. */
export class ResponseStream implements AsyncIterable<DimseResponse> {
  private items: DimseResponse[] = [];
  private done = false;
  private error: Error | undefined;
  private wake: (() => void) | undefined;
  private timer: NodeJS.Timeout | undefined;

  private armed = false;

  constructor(
    readonly messageId: number,
    private readonly timeoutMs: number,
    private readonly onTimeout: () => void,
  ) {}

  /** @internal: the request is on the wire; start the response timer. */
  start(): void {
    this.armed = true;
    this.arm();
  }

  private arm(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    if (this.armed && this.timeoutMs > 0 && !this.done && !this.error) {
      this.timer = setTimeout(() => this.onTimeout(), this.timeoutMs);
      this.timer.unref?.();
    }
  }

  /** @internal */
  push(r: DimseResponse, final: boolean): void {
    this.items.push(r);
    if (final) this.done = true;
    this.arm();
    this.notify();
  }

  /** @internal */
  fail(e: Error): void {
    if (this.done) return;
    this.error = e;
    if (this.timer) clearTimeout(this.timer);
    this.notify();
  }

  private notify(): void {
    const w = this.wake;
    this.wake = undefined;
    w?.();
  }

  async *[Symbol.asyncIterator](): AsyncIterator<DimseResponse> {
    for (;;) {
      const next = this.items.shift();
      if (next) {
        yield next;
        continue;
      }
      if (this.done) return;
      if (this.error) throw this.error;
      await new Promise<void>((resolve) => (this.wake = resolve));
    }
  }

  /** Waits for the final response (pending responses are passed to `onPending`). */
  async final(onPending?: (r: DimseResponse) => void): Promise<DimseResponse> {
    let last: DimseResponse | undefined;
    for await (const r of this) {
      if (isPending(r.command.status ?? 0)) onPending?.(r);
      last = r;
    }
    if (!last) throw new AssociationAbortedError('no response received');
    return last;
  }
}

interface IncomingMessage {
  contextId: number;
  commandParts: Buffer[];
  commandLength: number;
  command?: Command;
  stream?: IncomingDataset;
  datasetParts?: Buffer[];
  datasetLength: number;
}

const MAX_COMMAND_BYTES = 1024 * 1024;
/** P-DATA PDUs we send when the peer announces no limit. */
const UNLIMITED_SEND_PDU = 1024 * 1024;

export class Association {
  readonly id = randomUUID();
  state: AssociationState;
  readonly contexts = new Map<number, NegotiatedContext>();
  /** Max P-DATA-TF length the peer accepts (0 = unlimited). */
  peerMaxPduLength = 0;
  callingAeTitle = '';
  calledAeTitle = '';
  peerImplementationClassUid?: string;
  peerImplementationVersionName?: string;
  /** Negotiated asynchronous operations window (1/1 when not negotiated). */
  maxOpsInvoked = 1;
  maxOpsPerformed = 1;
  readonly remoteAddress: string;
  readonly remotePort: number;
  readonly closed: Promise<Error | undefined>;

  private readonly reader: PduReader;
  private readonly pausers = new Set<IncomingDataset>();
  private socketPaused = false;
  private pumping = false;
  private artim: NodeJS.Timeout | undefined;
  private sendChain: Promise<void> = Promise.resolve();
  private incoming: IncomingMessage | undefined;
  private readonly pending = new Map<number, ResponseStream>();
  private messageIdCounter = 0;
  private drainWaiters: { resolve: () => void; reject: (e: Error) => void }[] = [];
  private closedResolve!: (e: Error | undefined) => void;
  private associateResponse:
    | { resolve: (ac: AssociateAcPdu) => void; reject: (e: Error) => void }
    | undefined;
  private releaseResponse: { resolve: () => void; reject: (e: Error) => void } | undefined;
  private readonly hooks: AssociationHooks;
  private readonly log: DimseLogger;

  constructor(
    private readonly socket: Socket,
    private readonly options: AssociationOptions,
    hooks: AssociationHooks,
  ) {
    this.hooks = hooks;
    this.log = options.logger;
    this.state = options.role === 'acceptor' ? 'awaiting-rq' : 'awaiting-ac';
    this.remoteAddress = socket.remoteAddress ?? '';
    this.remotePort = socket.remotePort ?? 0;
    // Peers must respect our announced maximum; some round it differently or ignore it, so accept
    // up to 4x (at least 4 MiB) before calling the PDU insane. Only one PDU is buffered at a time.
    this.reader = new PduReader(Math.max(options.maxPduLength * 4, 4 * 1024 * 1024));
    this.closed = new Promise((resolve) => (this.closedResolve = resolve));
    socket.setNoDelay(true);
    socket.setKeepAlive(true, 60_000);
    socket.on('data', (chunk: Buffer) => this.onData(chunk));
    socket.on('error', (e) => this.log.debug?.(`[${this.id}] socket error: ${errorMessage(e)}`));
    socket.on('close', () => this.terminate(this.state === 'closing' ? undefined : new AssociationAbortedError('connection closed by peer')));
    socket.on('drain', () => {
      const waiters = this.drainWaiters;
      this.drainWaiters = [];
      for (const w of waiters) w.resolve();
    });
    if (options.idleTimeoutMs > 0) {
      socket.on('timeout', () => {
        if (this.state === 'closed') return;
        if (this.hooks.isBusy?.() || this.pending.size > 0 || this.incoming) {
          socket.setTimeout(options.idleTimeoutMs); // re-arm: only idleness of the peer counts
          return;
        }
        this.log.warn(`[${this.id}] idle timeout: aborting association`);
        this.abort(AbortSource.ServiceProvider, AbortReason.NotSpecified);
      });
      socket.setTimeout(options.idleTimeoutMs);
    }
    if (options.role === 'acceptor') this.startArtim('A-ASSOCIATE-RQ');
  }

  /** Bytes written to the socket that the peer has not taken yet (a peer that stops reading grows it). */
  get unsentBytes(): number {
    return this.socket.writableLength;
  }

  get isEstablished(): boolean {
    return this.state === 'established';
  }

  /** The association is over or going away: nothing more can be sent. */
  get isEnding(): boolean {
    return this.state === 'closed' || this.state === 'closing' || this.state === 'release-requested';
  }

  /** Largest PDV data in P-DATA PDUs we send. */
  private maxPdvData(): number {
    const max = this.peerMaxPduLength > 0 ? Math.min(this.peerMaxPduLength, UNLIMITED_SEND_PDU) : UNLIMITED_SEND_PDU;
    return Math.max(max - 6, 1);
  }

  // -------------------------------------------------------------------------------------------
  // Timers
  // -------------------------------------------------------------------------------------------

  private startArtim(what: string, onExpiry?: () => void): void {
    this.stopArtim();
    this.artim = setTimeout(() => {
      this.artim = undefined;
      if (onExpiry) onExpiry();
      else {
        this.log.warn(`[${this.id}] ARTIM timeout waiting for ${what}`);
        this.terminate(new AssociationAbortedError(`ARTIM timeout waiting for ${what}`));
      }
    }, this.options.artimTimeoutMs);
    this.artim.unref?.();
  }

  private stopArtim(): void {
    if (this.artim) clearTimeout(this.artim);
    this.artim = undefined;
  }

  // -------------------------------------------------------------------------------------------
  // Reading
  // -------------------------------------------------------------------------------------------

  private onData(chunk: Buffer): void {
    if (this.state === 'closed') return;
    this.reader.push(chunk);
    this.pump();
  }

  /** @internal: a streamed data set is full; stop reading the socket. */
  pauseInput(by: IncomingDataset): void {
    this.pausers.add(by);
    this.updateFlow();
  }

  /** @internal */
  resumeInput(by: IncomingDataset): void {
    if (this.pausers.delete(by)) this.updateFlow();
  }

  private updateFlow(): void {
    if (this.pausers.size > 0) {
      if (!this.socketPaused) {
        this.socketPaused = true;
        this.socket.pause();
      }
    } else if (this.socketPaused) {
      this.socketPaused = false;
      if (this.state !== 'closed') {
        this.socket.resume();
        setImmediate(() => this.pump());
      }
    }
  }

  private pump(): void {
    if (this.pumping) return;
    this.pumping = true;
    try {
      while (this.state !== 'closed' && this.pausers.size === 0) {
        const pdu = this.reader.next();
        if (!pdu) break;
        this.handlePdu(pdu);
      }
    } catch (e) {
      this.protocolFailure(e);
    } finally {
      this.pumping = false;
    }
  }

  private protocolFailure(e: unknown): void {
    const reason = e instanceof PduError ? e.abortReason : AbortReason.NotSpecified;
    this.log.warn(`[${this.id}] aborting association: ${errorMessage(e)}`);
    this.abort(AbortSource.ServiceProvider, reason, e instanceof Error ? e : undefined);
  }

  private handlePdu(pdu: Pdu): void {
    if (pdu.type === PduType.Abort) {
      this.log.debug?.(`[${this.id}] A-ABORT received (source ${pdu.source}, reason ${pdu.reason})`);
      this.terminate(new AssociationAbortedError(`association aborted by peer (source ${pdu.source}, reason ${pdu.reason})`, pdu.source, pdu.reason));
      return;
    }
    switch (this.state) {
      case 'awaiting-rq':
        if (pdu.type !== PduType.AssociateRq) throw new PduError(`unexpected PDU type ${pdu.type} before A-ASSOCIATE-RQ`, AbortReason.UnexpectedPdu);
        this.stopArtim();
        this.state = 'awaiting-local-response';
        this.callingAeTitle = pdu.callingAeTitle;
        this.calledAeTitle = pdu.calledAeTitle;
        this.peerMaxPduLength = pdu.userInformation.maxPduLength ?? 0;
        this.peerImplementationClassUid = pdu.userInformation.implementationClassUid;
        this.peerImplementationVersionName = pdu.userInformation.implementationVersionName;
        Promise.resolve()
          .then(() => this.hooks.onAssociateRequest?.(pdu))
          .catch((e: unknown) => {
            this.log.error(`[${this.id}] association request handling failed: ${errorMessage(e)}`);
            this.abort(AbortSource.ServiceProvider, AbortReason.NotSpecified);
          });
        return;
      case 'awaiting-ac':
        if (pdu.type === PduType.AssociateAc) {
          this.stopArtim();
          this.peerMaxPduLength = pdu.userInformation.maxPduLength ?? 0;
          this.peerImplementationClassUid = pdu.userInformation.implementationClassUid;
          this.peerImplementationVersionName = pdu.userInformation.implementationVersionName;
          this.state = 'established';
          const waiter = this.associateResponse;
          this.associateResponse = undefined;
          waiter?.resolve(pdu);
          return;
        }
        if (pdu.type === PduType.AssociateRj) {
          this.stopArtim();
          const waiter = this.associateResponse;
          this.associateResponse = undefined;
          waiter?.reject(new AssociationRejectedError(pdu.result, pdu.source, pdu.reason));
          this.state = 'closing';
          this.socket.end();
          this.terminate(undefined);
          return;
        }
        throw new PduError(`unexpected PDU type ${pdu.type} while awaiting A-ASSOCIATE-AC`, AbortReason.UnexpectedPdu);
      case 'established':
        if (pdu.type === PduType.PDataTf) return this.onPData(pdu);
        if (pdu.type === PduType.ReleaseRq) return this.onReleaseRq();
        throw new PduError(`unexpected PDU type ${pdu.type} on established association`, AbortReason.UnexpectedPdu);
      case 'awaiting-release-rp':
        if (pdu.type === PduType.PDataTf) return this.onPData(pdu);
        if (pdu.type === PduType.ReleaseRp) {
          this.stopArtim();
          this.state = 'closing';
          this.socket.end();
          const waiter = this.releaseResponse;
          this.releaseResponse = undefined;
          waiter?.resolve();
          this.terminate(undefined);
          return;
        }
        if (pdu.type === PduType.ReleaseRq) {
          // Release collision (PS3.8 9.2.5): as requestor, answer and keep waiting for our RP.
          void this.writeRaw([encodePdu({ type: PduType.ReleaseRp })]).catch(() => undefined);
          return;
        }
        throw new PduError(`unexpected PDU type ${pdu.type} while awaiting A-RELEASE-RP`, AbortReason.UnexpectedPdu);
      case 'awaiting-local-response':
      case 'release-requested':
        throw new PduError(`unexpected PDU type ${pdu.type} in state ${this.state}`, AbortReason.UnexpectedPdu);
      case 'closing':
      case 'closed':
        return;
    }
  }

  private onPData(pdu: PDataTfPdu): void {
    for (const pdv of pdu.pdvs) {
      const context = this.contexts.get(pdv.contextId);
      if (!context) throw new PduError(`PDV for presentation context ${pdv.contextId}, which is not accepted`, AbortReason.UnexpectedPduParameter);
      let msg = this.incoming;
      if (pdv.isCommand) {
        if (msg?.command) throw new PduError('command fragment received while a data set was expected', AbortReason.UnexpectedPduParameter);
        if (!msg) {
          msg = { contextId: pdv.contextId, commandParts: [], commandLength: 0, datasetLength: 0 };
          this.incoming = msg;
        } else if (msg.contextId !== pdv.contextId) {
          throw new PduError('command fragments on different presentation contexts', AbortReason.UnexpectedPduParameter);
        }
        msg.commandParts.push(pdv.data);
        msg.commandLength += pdv.data.length;
        if (msg.commandLength > MAX_COMMAND_BYTES) throw new PduError('command set too large');
        if (!pdv.isLast) continue;
        let command: Command;
        try {
          command = decodeCommand(Buffer.concat(msg.commandParts, msg.commandLength));
        } catch (e) {
          throw new PduError(e instanceof CommandError ? e.message : `malformed command: ${errorMessage(e)}`);
        }
        msg.commandParts = [];
        this.log.debug?.(`[${this.id}] received ${commandName(command.commandField)} (context ${context.id})`);
        if (!command.hasDataset) {
          this.incoming = undefined;
          this.dispatch(context, command, undefined);
          continue;
        }
        msg.command = command;
        if (!isResponse(command.commandField) && this.hooks.streamsDataset(context, command)) {
          msg.stream = new IncomingDataset(this, Math.max(this.options.maxPduLength * 4, 1024 * 1024));
          this.dispatch(context, command, msg.stream);
        } else {
          msg.datasetParts = [];
        }
        continue;
      }
      // Data set fragment
      if (!msg?.command) throw new PduError('data set fragment without a preceding command', AbortReason.UnexpectedPduParameter);
      if (msg.contextId !== pdv.contextId) throw new PduError('data set fragment on another presentation context', AbortReason.UnexpectedPduParameter);
      if (msg.stream) {
        msg.stream.pushFragment(pdv.data);
      } else {
        msg.datasetLength += pdv.data.length;
        if (msg.datasetLength > this.options.maxBufferedDatasetBytes) throw new PduError('data set too large for a buffered message');
        msg.datasetParts!.push(pdv.data);
      }
      if (pdv.isLast) {
        this.incoming = undefined;
        if (msg.stream) msg.stream.finishFragments();
        else this.dispatch(context, msg.command, Buffer.concat(msg.datasetParts!, msg.datasetLength));
      }
    }
  }

  private dispatch(context: NegotiatedContext, command: Command, dataset: IncomingDataset | Buffer | undefined): void {
    if (isResponse(command.commandField)) {
      const id = command.messageIdBeingRespondedTo ?? -1;
      const stream = this.pending.get(id);
      if (!stream) {
        this.log.warn(`[${this.id}] ignoring ${commandName(command.commandField)} for unknown message id ${id}`);
        return;
      }
      const final = !isPending(command.status ?? 0);
      if (final) this.pending.delete(id);
      stream.push({ context, command, dataset: Buffer.isBuffer(dataset) ? dataset : undefined }, final);
      return;
    }
    this.hooks.onRequest(context, command, dataset);
  }

  private onReleaseRq(): void {
    this.state = 'release-requested';
    if (this.incoming?.stream) this.incoming.stream.failFragments(new AssociationAbortedError('release requested during a data set'));
    this.incoming = undefined;
    // Answer once the responses being sent are on the wire (messages are never interleaved).
    void this.withSendLock(async () => {
      if (this.state !== 'release-requested') return;
      await this.writeRaw([encodePdu({ type: PduType.ReleaseRp })]);
      this.state = 'closing';
      this.socket.end();
      this.startArtim('transport close', () => this.socket.destroy());
      for (const p of this.pending.values()) p.fail(new AssociationAbortedError('association released'));
      this.pending.clear();
    }).catch((e: unknown) => this.terminate(e instanceof Error ? e : new Error(String(e))));
  }

  // -------------------------------------------------------------------------------------------
  // Association establishment (called by server/client)
  // -------------------------------------------------------------------------------------------

  /** Acceptor: send A-ASSOCIATE-AC and enter the established state. */
  async accept(ac: AssociateAcPdu, contexts: NegotiatedContext[], asyncWindow?: { maxInvoked: number; maxPerformed: number }): Promise<void> {
    if (this.state !== 'awaiting-local-response') throw new Error(`cannot accept in state ${this.state}`);
    for (const c of contexts) this.contexts.set(c.id, c);
    if (asyncWindow) {
      this.maxOpsInvoked = asyncWindow.maxInvoked;
      this.maxOpsPerformed = asyncWindow.maxPerformed;
    }
    this.state = 'established';
    await this.writeRaw([encodePdu(ac)]);
    // PDUs may have arrived right behind the request.
    setImmediate(() => this.pump());
  }

  /** Acceptor: send A-ASSOCIATE-RJ and close. */
  async reject(rj: Omit<AssociateRjPdu, 'type'>): Promise<void> {
    if (this.state !== 'awaiting-local-response') throw new Error(`cannot reject in state ${this.state}`);
    this.state = 'closing';
    await this.writeRaw([encodePdu({ type: PduType.AssociateRj, ...rj })]).catch(() => undefined);
    this.socket.end();
    this.startArtim('transport close', () => this.socket.destroy());
  }

  /** Requestor: send A-ASSOCIATE-RQ and wait for the answer. */
  async request(rq: AssociateRqPdu): Promise<AssociateAcPdu> {
    if (this.state !== 'awaiting-ac') throw new Error(`cannot request in state ${this.state}`);
    const answer = new Promise<AssociateAcPdu>((resolve, reject) => (this.associateResponse = { resolve, reject }));
    answer.catch(() => undefined); // observed below; never an unhandled rejection if the write fails
    this.startArtim('A-ASSOCIATE-AC', () => {
      const waiter = this.associateResponse;
      this.associateResponse = undefined;
      const e = new AssociationAbortedError('timeout waiting for A-ASSOCIATE-AC');
      waiter?.reject(e);
      this.abort(AbortSource.ServiceUser, 0, e);
    });
    await this.writeRaw([encodePdu(rq)]);
    return answer;
  }

  /** Requestor: record the accepted contexts (after request() resolved). */
  setContexts(contexts: NegotiatedContext[], asyncWindow?: { maxInvoked: number; maxPerformed: number }): void {
    for (const c of contexts) this.contexts.set(c.id, c);
    if (asyncWindow) {
      this.maxOpsInvoked = asyncWindow.maxInvoked;
      this.maxOpsPerformed = asyncWindow.maxPerformed;
    }
    setImmediate(() => this.pump());
  }

  /** Requestor: orderly release (waits for messages being sent, then A-RELEASE-RQ/RP). */
  async release(): Promise<void> {
    if (this.state === 'closed' || this.state === 'closing') return;
    if (this.state !== 'established') throw new Error(`cannot release in state ${this.state}`);
    await this.withSendLock(async () => {
      if (this.state !== 'established') return;
      const done = new Promise<void>((resolve, reject) => (this.releaseResponse = { resolve, reject }));
      done.catch(() => undefined);
      this.state = 'awaiting-release-rp';
      await this.writeRaw([encodePdu({ type: PduType.ReleaseRq })]);
      this.startArtim('A-RELEASE-RP', () => {
        const waiter = this.releaseResponse;
        this.releaseResponse = undefined;
        waiter?.reject(new AssociationAbortedError('timeout waiting for A-RELEASE-RP'));
        this.abort(AbortSource.ServiceUser, 0);
      });
      await done;
    });
  }

  /** Sends A-ABORT (when possible) and closes the connection. */
  abort(source: number = AbortSource.ServiceUser, reason = 0, cause?: Error): void {
    if (this.state === 'closed') return;
    const error = cause instanceof AssociationAbortedError ? cause : new AssociationAbortedError(cause ? `association aborted: ${cause.message}` : 'association aborted', source, reason);
    if (!this.socket.destroyed && this.socket.writable && this.state !== 'closing') {
      try {
        this.socket.write(encodePdu({ type: PduType.Abort, source, reason }));
      } catch {
        // ignore: the connection is going away anyway
      }
    }
    this.state = 'closing';
    this.socket.end();
    const t = setTimeout(() => this.socket.destroy(), 1000);
    t.unref?.();
    this.terminate(error);
  }

  private terminate(error: Error | undefined): void {
    if (this.state === 'closed') return;
    this.state = 'closed';
    this.stopArtim();
    const e = error ?? new AssociationAbortedError('association closed');
    if (this.incoming?.stream) this.incoming.stream.failFragments(e);
    this.incoming = undefined;
    for (const p of this.pending.values()) p.fail(e);
    this.pending.clear();
    const drains = this.drainWaiters;
    this.drainWaiters = [];
    for (const w of drains) w.reject(e);
    this.associateResponse?.reject(e);
    this.associateResponse = undefined;
    if (error) this.releaseResponse?.reject(e);
    else this.releaseResponse?.resolve();
    this.releaseResponse = undefined;
    if (!this.socket.destroyed) {
      if (error) this.socket.destroy();
      else {
        const t = setTimeout(() => this.socket.destroy(), 2000);
        t.unref?.();
      }
    }
    this.closedResolve(error);
    try {
      this.hooks.onClosed?.(error);
    } catch (hookError) {
      this.log.error(`[${this.id}] onClosed hook failed: ${errorMessage(hookError)}`);
    }
  }

  // -------------------------------------------------------------------------------------------
  // Writing
  // -------------------------------------------------------------------------------------------

  /** `written` is called once the socket no longer refers to `buffers` (the last write's callback, also on error). */
  private writeRaw(buffers: Buffer[], written?: () => void): Promise<void> {
    if (this.socket.destroyed || !this.socket.writable) {
      return Promise.reject(new AssociationAbortedError('connection is closed'));
    }
    let ok = true;
    if (buffers.length > 1) this.socket.cork();
    const last = buffers.length - 1;
    for (let i = 0; i <= last; i++) ok = i === last && written ? this.socket.write(buffers[i]!, () => written()) : this.socket.write(buffers[i]!);
    if (buffers.length > 1) this.socket.uncork();
    if (ok) return Promise.resolve();
    return new Promise<void>((resolve, reject) => this.drainWaiters.push({ resolve, reject }));
  }

  private async withSendLock<T>(fn: () => Promise<T>): Promise<T> {
    const previous = this.sendChain;
    let release!: () => void;
    this.sendChain = new Promise<void>((r) => (release = r));
    await previous;
    try {
      return await fn();
    } finally {
      release();
    }
  }

  private writePdv(contextId: number, isCommand: boolean, isLast: boolean, parts: Buffer[], length: number): Promise<void> {
    return this.writeRaw([pDataHeader(contextId, isCommand, isLast, length), ...parts]);
  }

  /**
   * Sends one DIMSE message. The data set may be a Buffer or a byte stream (sent as-is, fragmented
   * to the peer's maximum PDU length, pulled with backpressure). If the stream fails before
   * anything was sent, the association stays usable; if it fails mid-message, the association is
   * aborted (a DIMSE message cannot be cut short). Either way DatasetSourceError is thrown.
   * `datasetWritten` (a Buffer data set) is called once the socket no longer refers to its bytes,
   * so pooled memory can be reused; it is not called when nothing of the data set was written.
   */
  async send(context: NegotiatedContext, command: Command, dataset?: Buffer | Readable | AsyncIterable<Buffer>, datasetWritten?: () => void): Promise<void> {
    if (this.state !== 'established' && this.state !== 'awaiting-release-rp') {
      throw new AssociationAbortedError(`association is not established (${this.state})`);
    }
    const cmd: Command = { ...command, hasDataset: dataset !== undefined };
    const commandBytes = encodeCommand(cmd);
    await this.withSendLock(async () => {
      if (this.state !== 'established' && this.state !== 'awaiting-release-rp' && this.state !== 'release-requested') {
        throw new AssociationAbortedError(`association is not established (${this.state})`);
      }
      const max = this.maxPdvData();
      let iterator: AsyncIterator<unknown> | undefined;
      let first: IteratorResult<unknown> | undefined;
      if (dataset !== undefined && !Buffer.isBuffer(dataset)) {
        // Pull the first chunk before committing the command to the wire.
        iterator = (dataset as AsyncIterable<unknown>)[Symbol.asyncIterator]();
        try {
          first = await iterator.next();
        } catch (e) {
          throw new DatasetSourceError(`data set source failed: ${errorMessage(e)}`, e, false);
        }
        if ((this.state as AssociationState) === 'closed') throw new AssociationAbortedError('association closed');
      }
      // The command and a data set at hand go out in one corked write: one system call, and the
      // peer finds the whole message in its socket instead of waking once for the command.
      const out: Buffer[] = [];
      for (let off = 0; off < commandBytes.length; off += max) {
        const part = commandBytes.subarray(off, off + max);
        out.push(pDataHeader(context.id, true, off + max >= commandBytes.length, part.length), part);
      }
      if (dataset === undefined || !Buffer.isBuffer(dataset)) {
        await this.writeRaw(out);
        this.log.debug?.(`[${this.id}] sent ${commandName(cmd.commandField)} (context ${context.id})`);
        if (dataset !== undefined) await this.sendStream(context.id, iterator!, first!, max);
        return;
      }
      if (dataset.length === 0) out.push(pDataHeader(context.id, false, true, 0));
      for (let off = 0; off < dataset.length; off += max) {
        const part = dataset.subarray(off, off + max);
        out.push(pDataHeader(context.id, false, off + max >= dataset.length, part.length), part);
      }
      this.log.debug?.(`[${this.id}] sending ${commandName(cmd.commandField)} with its data set (context ${context.id})`);
      await this.writeRaw(out, dataset.length > 0 ? datasetWritten : undefined);
    });
  }

  private async sendStream(contextId: number, iterator: AsyncIterator<unknown>, first: IteratorResult<unknown>, max: number): Promise<void> {
    let parts: Buffer[] = [];
    let length = 0;
    let result = first;
    try {
      for (;;) {
        if (result.done) break;
        const value = result.value;
        const chunk = Buffer.isBuffer(value) ? value : typeof value === 'string' ? Buffer.from(value) : Buffer.from(value as Uint8Array);
        parts.push(chunk);
        length += chunk.length;
        // Keep at least one byte back so the last PDV is never empty. Every PDU that the bytes
        // at hand fill goes out in one corked write (one system call, not one per PDU).
        if (length > max) {
          const out: Buffer[] = [];
          while (length > max) {
            const take: Buffer[] = [];
            let taken = 0;
            while (taken < max) {
              const p = parts[0]!;
              const want = max - taken;
              if (p.length <= want) {
                take.push(p);
                taken += p.length;
                parts.shift();
              } else {
                take.push(p.subarray(0, want));
                parts[0] = p.subarray(want);
                taken += want;
              }
            }
            length -= taken;
            out.push(pDataHeader(contextId, false, false, taken), ...take);
          }
          await this.writeRaw(out);
        }
        if (this.state === 'closed') throw new AssociationAbortedError('association closed');
        try {
          result = await iterator.next();
        } catch (e) {
          throw new DatasetSourceError(`data set source failed mid-message: ${errorMessage(e)}`, e, true);
        }
      }
    } catch (e) {
      await iterator.return?.().catch(() => undefined);
      if (e instanceof DatasetSourceError) {
        this.log.warn(`[${this.id}] ${e.message}: aborting association`);
        this.abort(AbortSource.ServiceUser, 0);
      }
      throw e;
    }
    await this.writePdv(contextId, false, true, parts, length);
    parts = [];
  }

  /** Next free message id (1..65535). */
  nextMessageId(): number {
    for (let i = 0; i < 65535; i++) {
      this.messageIdCounter = (this.messageIdCounter % 65535) + 1;
      if (!this.pending.has(this.messageIdCounter)) return this.messageIdCounter;
    }
    throw new Error('no free message id');
  }

  /**
   * Sends a request and returns its responses. `timeoutMs` (0 = none) aborts the association when
   * no response arrives in time after the request was sent.
   */
  async sendRequest(
    context: NegotiatedContext,
    command: Command,
    dataset?: Buffer | Readable | AsyncIterable<Buffer>,
    timeoutMs = 0,
    datasetWritten?: () => void,
  ): Promise<ResponseStream> {
    const messageId = command.messageId ?? this.nextMessageId();
    const stream = new ResponseStream(messageId, timeoutMs, () => {
      this.log.warn(`[${this.id}] DIMSE timeout waiting for the response to message ${messageId}`);
      this.abort(AbortSource.ServiceUser, 0, new AssociationAbortedError('DIMSE timeout'));
    });
    this.pending.set(messageId, stream);
    try {
      await this.send(context, { ...command, messageId }, dataset, datasetWritten);
    } catch (e) {
      this.pending.delete(messageId);
      throw e;
    }
    stream.start();
    return stream;
  }
}
