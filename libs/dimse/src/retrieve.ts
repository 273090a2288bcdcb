/**
 * C-MOVE and C-GET on the SCP side: ask the handler for a plan, then run one C-STORE
 * sub-operation per item (on a new association to the move destination, or on the requesting
 * association for C-GET), sending the stored bytes unchanged.
 */
import type { Readable } from 'node:stream';
import type { Association, NegotiatedContext } from './association.js';
import { DimseClient, type ProposedContext } from './client.js';
import { type Command, CommandField, commandName, Priority } from './command.js';
import {
  type AssociationInfo,
  type DicomDict,
  DimseError,
  type DimseServiceHandlers,
  type DimseStatus,
  DimseStatusCode,
  type RetrieveItem,
  type RetrievePlan,
  type RetrieveRequest,
} from './contract.js';
import { decodeDataset, encodeDataset } from './dataset.js';
import { type DimseLogger, errorMessage, errorStack } from './logger.js';
import { Part10Error, parsePart10Header, stripPart10Header } from './part10.js';
import { statusCategory, statusFromError } from './status.js';
import { TransferSyntax } from './uids.js';

export interface RetrieveArgs {
  association: Association;
  info: AssociationInfo;
  context: NegotiatedContext;
  command: Command;
  identifierBytes: Buffer | undefined;
  signal: AbortSignal;
  handlers: DimseServiceHandlers;
  log: DimseLogger;
  /** Our AE title (calling AE of C-MOVE sub-associations). */
  aeTitle: string;
  maxPduLength: number;
  subOperationTimeoutMs: number;
  connectTimeoutMs: number;
  /** Least time between two pending responses during the sub-operations, ms (0: after each). */
  pendingIntervalMs: number;
  artimTimeoutMs: number;
  implementationClassUid: string;
  implementationVersionName: string;
}

interface Counts {
  remaining: number;
  completed: number;
  failed: number;
  warning: number;
}

/** Sends one item; returns the C-STORE status or throws. */
interface SubOperationSender {
  /** `datasetWritten`: see Association.send (a Buffer data set in pooled memory). */
  send(item: RetrieveItem, transferSyntaxUid: string, dataset: Readable | Buffer, datasetWritten?: () => void): Promise<DimseStatus>;
  close(): Promise<void>;
}

/** Above this many unread bytes on the requesting association, pending responses are skipped. */
const PENDING_BACKLOG_MAX_BYTES = 256 * 1024;

export async function performRetrieve(args: RetrieveArgs): Promise<void> {
  const { association, context, command, log, signal } = args;
  const isMove = command.commandField === CommandField.C_MOVE_RQ;
  const name = commandName(command.commandField);
  const respond = (status: number, counts: Counts | undefined, opts: { errorComment?: string; failedUids?: string[]; pending?: boolean } = {}) => {
    const failedUids = opts.failedUids ?? [];
    const identifier =
      failedUids.length > 0 ? encodeDataset({ '00080058': { vr: 'UI', Value: failedUids } }, context.transferSyntax) : undefined;
    const includeRemaining = opts.pending || status === DimseStatusCode.Cancel;
    return association.send(
      context,
      {
        commandField: isMove ? CommandField.C_MOVE_RSP : CommandField.C_GET_RSP,
        hasDataset: identifier !== undefined,
        messageIdBeingRespondedTo: command.messageId ?? 0,
        affectedSopClassUid: command.affectedSopClassUid ?? context.abstractSyntax,
        status,
        ...(opts.errorComment ? { errorComment: opts.errorComment } : {}),
        ...(counts
          ? {
              ...(includeRemaining ? { remaining: counts.remaining } : {}),
              completed: counts.completed,
              failed: counts.failed,
              warning: counts.warning,
            }
          : {}),
      },
      identifier,
    );
  };

  const handler = isMove ? args.handlers.onMove : args.handlers.onGet;
  if (!handler) return respond(DimseStatusCode.UnableToProcess, undefined, { errorComment: `${name} not supported` });
  let identifier: DicomDict;
  try {
    if (!args.identifierBytes) throw new Error(`${name} without identifier`);
    identifier = decodeDataset(args.identifierBytes, context.transferSyntax);
  } catch (e) {
    log.warn(`[${association.id}] ${name} identifier rejected: ${errorMessage(e)}`);
    return respond(DimseStatusCode.DataSetDoesNotMatchSopClass, undefined, { errorComment: errorMessage(e) });
  }
  if (isMove && !command.moveDestination) {
    return respond(DimseStatusCode.MoveDestinationUnknown, undefined, { errorComment: 'no Move Destination' });
  }
  const req: RetrieveRequest = {
    association: args.info,
    messageId: command.messageId ?? 0,
    affectedSopClassUid: command.affectedSopClassUid ?? context.abstractSyntax,
    priority: command.priority ?? Priority.Medium,
    identifier,
    ...(isMove ? { moveDestination: command.moveDestination } : {}),
  };

  let plan: RetrievePlan;
  try {
    plan = await handler(req, signal);
  } catch (e) {
    if (signal.aborted && association.state !== 'closed') return respond(DimseStatusCode.Cancel, zero());
    const status = statusFromError(e, DimseStatusCode.MoveOutOfResourcesCalc, DimseStatusCode.UnableToProcess);
    if (!(e instanceof DimseError)) log.error(`[${association.id}] ${name} handler failed: ${errorMessage(e)}`, errorStack(e));
    return respond(status.status, undefined, status.errorComment ? { errorComment: status.errorComment } : {});
  }
  const items = plan.items ?? [];
  if (signal.aborted) return respond(DimseStatusCode.Cancel, { ...zero(), remaining: items.length });
  if (isMove && !plan.destination) {
    return respond(DimseStatusCode.MoveDestinationUnknown, undefined, { errorComment: `unknown destination ${command.moveDestination}` });
  }
  if (items.length === 0) return respond(DimseStatusCode.Success, zero());
  let failureComment: string | undefined;
  if (plan.beforeSubOperations) {
    try {
      failureComment = await plan.beforeSubOperations(
        () => respond(DimseStatusCode.Pending, { ...zero(), remaining: items.length }, { pending: true }),
        signal,
      );
    } catch (e) {
      if (signal.aborted && association.state !== 'closed') return respond(DimseStatusCode.Cancel, { ...zero(), remaining: items.length });
      const status = statusFromError(e, DimseStatusCode.MoveOutOfResourcesCalc, DimseStatusCode.UnableToProcess);
      if (!(e instanceof DimseError)) log.error(`[${association.id}] ${name} preparation failed: ${errorMessage(e)}`, errorStack(e));
      return respond(status.status, undefined, status.errorComment ? { errorComment: status.errorComment } : {});
    }
    if (signal.aborted) return respond(DimseStatusCode.Cancel, { ...zero(), remaining: items.length });
  }

  const sender: SubOperationSender = isMove
    ? new MoveSender(args, plan.destination!, items)
    : new GetSender(association, args.subOperationTimeoutMs, command.priority ?? Priority.Medium);
  const counts: Counts = { remaining: items.length, completed: 0, failed: 0, warning: 0 };
  const failedUids: string[] = [];
  let canceled = false;
  // A pending response is queued (in order, by the association's send lock) without waiting for
  // its write: the next sub-operation starts at once. A failed write shows up as a closed
  // association below. Pending responses are optional (PS3.4 C.4.2.3, C.4.3.3), so they are
  // spaced at least pendingIntervalMs apart (each one costs the requester, which for C-GET is the
  // receiver too, as much work as a small C-STORE), and none is added while the requester leaves
  // earlier ones unread: a peer that stops reading cannot make a long C-MOVE buffer responses
  // without bound. The next one sent carries the counts.
  let lastPendingAt = -Infinity;
  const sendPending = () => {
    const now = performance.now();
    if (now - lastPendingAt < args.pendingIntervalMs || association.unsentBytes > PENDING_BACKLOG_MAX_BYTES) return;
    lastPendingAt = now;
    respond(DimseStatusCode.Pending, { ...counts }, { pending: true }).catch((e: unknown) =>
      log.debug?.(`[${association.id}] pending response not sent: ${errorMessage(e)}`),
    );
  };
  try {
    for (const item of items) {
      if (signal.aborted) {
        canceled = true;
        break;
      }
      const result = await runSubOperation(item, sender);
      counts.remaining--;
      const category = result instanceof Error ? 'failure' : statusCategory(result.status);
      if (category === 'success') counts.completed++;
      else if (category === 'warning') counts.warning++;
      else {
        counts.failed++;
        failedUids.push(item.sopInstanceUid);
        log.warn(
          `[${association.id}] ${name} sub-operation for ${item.sopInstanceUid} failed: ${
            result instanceof Error ? result.message : `status 0x${result.status.toString(16)} ${result.errorComment ?? ''}`
          }`,
        );
      }
      try {
        args.handlers.onSubOperationResult?.(req, item, result);
      } catch (e) {
        log.error(`[${association.id}] onSubOperationResult failed: ${errorMessage(e)}`, errorStack(e));
      }
      if (association.state === 'closed') throw new Error('association closed during sub-operations');
      if (counts.remaining > 0) sendPending();
    }
  } finally {
    await sender.close().catch((e: unknown) => log.debug?.(`sub-association close failed: ${errorMessage(e)}`));
  }
  let status: number;
  if (canceled) status = DimseStatusCode.Cancel;
  else if (counts.failed === 0 && counts.warning === 0) status = DimseStatusCode.Success;
  else if (counts.completed === 0 && counts.warning === 0) status = DimseStatusCode.MoveOutOfResourcesSubOps;
  else status = DimseStatusCode.SubOpsWarning;
  await respond(status, counts, { failedUids, ...(failureComment && counts.failed > 0 ? { errorComment: failureComment } : {}) });
}

function zero(): Counts {
  return { remaining: 0, completed: 0, failed: 0, warning: 0 };
}

/** Opens the item, strips a Part 10 header, sends it; any error is returned as the result. */
async function runSubOperation(item: RetrieveItem, sender: SubOperationSender): Promise<DimseStatus | Error> {
  let stream: Readable | undefined;
  try {
    const opened = await item.open();
    let ts = item.transferSyntaxUid;
    const pooled = !Buffer.isBuffer(opened) && 'bytes' in opened ? opened : undefined;
    const whole = pooled ? pooled.bytes : Buffer.isBuffer(opened) ? opened : undefined;
    if (whole) {
      let dataset = whole;
      if (item.isPart10) {
        const info = parsePart10Header(whole, true);
        if (!info) throw new Part10Error('no Part 10 header');
        dataset = whole.subarray(info.headerLength);
        ts = info.transferSyntaxUid;
      }
      return await sender.send(item, ts, dataset, pooled?.release);
    }
    stream = opened as Readable;
    if (item.isPart10) {
      const stripped = await stripPart10Header(stream);
      stream = stripped.datasetStream;
      // The bytes are encoded in the syntax their own header declares.
      if (stripped.transferSyntaxUid) ts = stripped.transferSyntaxUid;
    }
    return await sender.send(item, ts, stream);
  } catch (e) {
    return e instanceof Error ? e : new Error(String(e));
  } finally {
    if (stream && !stream.destroyed && !stream.readableEnded) stream.destroy();
  }
}

/** C-GET: C-STORE sub-operations on the requesting association (the SCU acts as storage SCP). */
class GetSender implements SubOperationSender {
  constructor(
    private readonly association: Association,
    private readonly timeoutMs: number,
    private readonly priority: number,
  ) {}

  async send(item: RetrieveItem, transferSyntaxUid: string, dataset: Readable | Buffer, datasetWritten?: () => void): Promise<DimseStatus> {
    let context: NegotiatedContext | undefined;
    for (const c of this.association.contexts.values()) {
      if (c.abstractSyntax === item.sopClassUid && c.transferSyntax === transferSyntaxUid && c.requestorIsScp) {
        context = c;
        break;
      }
    }
    if (!context) {
      throw new DimseError(
        DimseStatusCode.SopClassNotSupported,
        `no presentation context with SCP role for ${item.sopClassUid} in ${transferSyntaxUid}`,
      );
    }
    const responses = await this.association.sendRequest(
      context,
      {
        commandField: CommandField.C_STORE_RQ,
        hasDataset: true,
        affectedSopClassUid: item.sopClassUid,
        affectedSopInstanceUid: item.sopInstanceUid,
        priority: this.priority,
      },
      dataset,
      this.timeoutMs,
      datasetWritten,
    );
    const r = await responses.final();
    return r.command.errorComment !== undefined
      ? { status: r.command.status ?? 0, errorComment: r.command.errorComment }
      : { status: r.command.status ?? 0 };
  }

  async close(): Promise<void> {
    // The association belongs to the requestor.
  }
}

const MAX_CONTEXTS = 128;
const FALLBACK_SYNTAXES = [TransferSyntax.ExplicitVRLittleEndian, TransferSyntax.ImplicitVRLittleEndian];

interface Batch {
  contexts: ProposedContext[];
}

/** C-MOVE: C-STORE sub-operations on an association to the destination (re-opened after an abort). */
class MoveSender implements SubOperationSender {
  private client: DimseClient | undefined;
  private clientBatch = -1;
  private unreachable: Error | undefined;
  private readonly batches: Batch[] = [];
  private readonly batchOf = new Map<RetrieveItem, number>();

  constructor(
    private readonly args: RetrieveArgs,
    private readonly destination: { aeTitle: string; host: string; port: number },
    items: readonly RetrieveItem[],
  ) {
    // One context per distinct (SOP class, stored syntax), plus an explicit/implicit LE fallback
    // per SOP class; beyond 128 contexts, items are sent over successive associations.
    let keys = new Set<string>();
    let classes = new Set<string>();
    let batch: Batch = { contexts: [] };
    for (const item of items) {
      const key = `${item.sopClassUid}|${item.transferSyntaxUid}`;
      const needed = (keys.has(key) ? 0 : 1) + (classes.has(item.sopClassUid) ? 0 : 1);
      if (batch.contexts.length + needed > MAX_CONTEXTS) {
        this.batches.push(batch);
        batch = { contexts: [] };
        keys = new Set();
        classes = new Set();
      }
      if (!keys.has(key)) {
        keys.add(key);
        batch.contexts.push({ abstractSyntax: item.sopClassUid, transferSyntaxes: [item.transferSyntaxUid] });
      }
      if (!classes.has(item.sopClassUid)) {
        classes.add(item.sopClassUid);
        batch.contexts.push({ abstractSyntax: item.sopClassUid, transferSyntaxes: [...FALLBACK_SYNTAXES] });
      }
      this.batchOf.set(item, this.batches.length);
    }
    if (batch.contexts.length) this.batches.push(batch);
  }

  private async clientFor(batchIndex: number): Promise<DimseClient> {
    if (this.client && (this.clientBatch !== batchIndex || !this.client.isOpen)) {
      const old = this.client;
      this.client = undefined;
      if (old.isOpen) await old.release().catch(() => old.abort());
    }
    if (this.client) return this.client;
    if (this.unreachable) throw this.unreachable;
    const a = this.args;
    try {
      this.client = await DimseClient.connect({
        host: this.destination.host,
        port: this.destination.port,
        callingAeTitle: a.aeTitle,
        calledAeTitle: this.destination.aeTitle,
        contexts: this.batches[batchIndex].contexts,
        maxPduLength: a.maxPduLength,
        connectTimeoutMs: a.connectTimeoutMs,
        artimTimeoutMs: a.artimTimeoutMs,
        dimseTimeoutMs: a.subOperationTimeoutMs,
        implementationClassUid: a.implementationClassUid,
        implementationVersionName: a.implementationVersionName,
        logger: a.log,
      });
      this.clientBatch = batchIndex;
      return this.client;
    } catch (e) {
      // Do not hammer an unreachable destination once per item: the remaining items fail.
      this.unreachable = new Error(`move destination ${this.destination.aeTitle}@${this.destination.host}:${this.destination.port} unavailable: ${errorMessage(e)}`);
      throw this.unreachable;
    }
  }

  async send(item: RetrieveItem, transferSyntaxUid: string, dataset: Readable | Buffer, datasetWritten?: () => void): Promise<DimseStatus> {
    const client = await this.clientFor(this.batchOf.get(item) ?? 0);
    if (!client.findContext(item.sopClassUid, transferSyntaxUid)) {
      throw new DimseError(
        DimseStatusCode.SopClassNotSupported,
        `${this.destination.aeTitle} accepted no context for ${item.sopClassUid} in ${transferSyntaxUid}`,
      );
    }
    return client.store(item.sopClassUid, item.sopInstanceUid, transferSyntaxUid, dataset, {
      priority: this.args.command.priority ?? Priority.Medium,
      moveOriginatorAeTitle: this.args.info.callingAeTitle,
      moveOriginatorMessageId: this.args.command.messageId ?? 0,
      datasetWritten,
    });
  }

  async close(): Promise<void> {
    const c = this.client;
    this.client = undefined;
    if (c?.isOpen) await c.release().catch(() => c.abort());
  }
}
