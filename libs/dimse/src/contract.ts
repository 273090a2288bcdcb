/**
 * The contract between the DIMSE network layer and the archive's services.
 *
 * The network layer owns associations, PDUs, command sets and status codes. The archive plugs in
 * a `DimseServiceHandlers` implementation; handlers never see sockets or PDUs.
 *
 * Datasets that the archive stores or sends are byte streams exactly as received (no re-encoding).
 * Small identifiers (C-FIND/C-MOVE/C-GET) are exchanged as dcmjs "denaturalized" dictionaries
 * (`{ '00100010': { vr: 'PN', Value: [...] } }`, the DICOM JSON model); the layer decodes and
 * encodes them in the negotiated transfer syntax.
 */
import type { Readable } from 'node:stream';

/** A dcmjs denaturalized dataset: tag (8 upper-case hex digits) -> element in DICOM JSON form. */
export type DicomDict = Record<string, { vr: string; Value?: unknown[]; InlineBinary?: string }>;

export interface AssociationInfo {
  /** Unique id of this association, for logs. */
  readonly id: string;
  readonly callingAeTitle: string;
  readonly calledAeTitle: string;
  readonly remoteAddress: string;
  readonly remotePort: number;
}

/** Answer to an association request. */
export type AssociationDecision =
  | { accept: true }
  | {
      accept: false;
      /** PS3.8 A-ASSOCIATE-RJ: result 1 permanent / 2 transient; source 1 user, 3 presentation */
      result: 1 | 2;
      source: 1 | 2 | 3;
      /** reason/diag, e.g. 3 = calling AE title not recognized, 7 = called AE title not recognized */
      reason: number;
    };

export interface StoreRequest {
  association: AssociationInfo;
  messageId: number;
  affectedSopClassUid: string;
  affectedSopInstanceUid: string;
  /** Transfer syntax of the accepted presentation context: the dataset bytes are in this syntax. */
  transferSyntaxUid: string;
  priority: number;
  moveOriginatorAeTitle?: string;
  moveOriginatorMessageId?: number;
}

/** DIMSE status plus optional error comment (0000,0902) and offending element. */
export interface DimseStatus {
  status: number;
  errorComment?: string;
}

export interface FindRequest {
  association: AssociationInfo;
  messageId: number;
  /** e.g. 1.2.840.10008.5.1.4.1.2.2.1 (Study Root FIND) or 1.2.840.10008.5.1.4.1.2.1.1 (Patient Root) */
  affectedSopClassUid: string;
  priority: number;
  identifier: DicomDict;
}

export interface RetrieveRequest {
  association: AssociationInfo;
  messageId: number;
  affectedSopClassUid: string;
  priority: number;
  identifier: DicomDict;
  /** C-MOVE only: the destination AE title. */
  moveDestination?: string;
}

/** One object a C-MOVE/C-GET sends: its stored bytes (Part 10 file or bare dataset) and its syntax. */
export interface RetrieveItem {
  sopClassUid: string;
  sopInstanceUid: string;
  transferSyntaxUid: string;
  /**
   * Opens the object's bytes: a full Part 10 file (preamble + meta) or a bare dataset, as the
   * `isPart10` flag says. The layer strips the Part 10 header before sending. A Buffer is sent
   * in one write; a stream is sent as it is read (an error of the stream before its end fails the
   * sub-operation, and aborts the association if part of the data set was already sent).
   * A PooledDataset is sent like a Buffer, and released once written.
   */
  open(): Promise<Readable | Buffer | PooledDataset>;
  isPart10: boolean;
}

/**
 * Bytes in memory that is reused once `release()` is called: the layer calls it when the socket no
 * longer refers to them (after the last write of the data set), and never if nothing was written.
 */
export interface PooledDataset {
  bytes: Buffer;
  release(): void;
}

/** What a retrieve handler resolves to: the destination (C-MOVE) and the items to send. */
export interface RetrievePlan {
  /** C-MOVE: where to open the store association. Undefined for C-GET. */
  destination?: { aeTitle: string; host: string; port: number };
  items: RetrieveItem[];
  /**
   * Optional: runs after the plan and before the first sub-operation (e.g. waiting for objects to
   * be restored from an offline tier). `sendPending` sends a Pending response (all sub-operations
   * remaining) so the requestor knows the retrieve is alive. It may resolve to a comment (at most 64
   * characters are sent) put on the final response when sub-operations failed.
   */
  beforeSubOperations?(sendPending: () => Promise<void>, signal: AbortSignal): Promise<string | undefined>;
}

export interface DimseServiceHandlers {
  /** Decide whether to accept an association from this calling/called AE pair. */
  onAssociationRequest?(info: AssociationInfo): AssociationDecision | Promise<AssociationDecision>;

  /**
   * C-STORE. `dataset` streams the data set bytes (no Part 10 header) as P-DATA fragments arrive,
   * with backpressure: the socket is paused while the handler does not read. The handler must
   * consume or destroy the stream and resolve to the response status only once the object is
   * durable. If the sender aborts mid-dataset, `dataset` errors and the handler should revoke.
   */
  onStore?(req: StoreRequest, dataset: Readable): Promise<DimseStatus>;

  /**
   * C-FIND. Yields matches (identifiers to return as pending responses). The layer sends the final
   * Success, or Cancel (0xFE00) if the SCU sent C-CANCEL (then `signal` aborts), or the status
   * thrown as a DimseError.
   */
  onFind?(req: FindRequest, signal: AbortSignal): AsyncIterable<DicomDict>;

  /** C-MOVE: resolve the destination and items; the layer runs the sub-operations. */
  onMove?(req: RetrieveRequest, signal: AbortSignal): Promise<RetrievePlan>;

  /** C-GET: resolve the items; the layer sends them as C-STORE sub-operations on this association. */
  onGet?(req: RetrieveRequest, signal: AbortSignal): Promise<RetrievePlan>;

  /** Called after each sub-operation of a C-MOVE/C-GET (for access tracking and failure marking). */
  onSubOperationResult?(req: RetrieveRequest, item: RetrieveItem, status: DimseStatus | Error): void;

  /** The association ended (released, aborted or lost: `error` set for the latter two). */
  onAssociationClosed?(info: AssociationInfo, error: Error | undefined): void;
}

/** Thrown by handlers to answer with a specific DIMSE failure status. */
export class DimseError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
    this.name = 'DimseError';
  }
}

/** Status codes used by the archive (PS3.4 / PS3.7). */
export enum DimseStatusCode {
  Success = 0x0000,
  Pending = 0xff00,
  PendingWarning = 0xff01,
  Cancel = 0xfe00,
  Warning = 0xb000,
  /** C-STORE warning: coercion of data elements */
  WarningCoercion = 0xb000,
  /** C-STORE warning: elements discarded */
  WarningElementsDiscarded = 0xb006,
  /** C-STORE: out of resources */
  OutOfResources = 0xa700,
  /** C-MOVE: out of resources, unable to calculate number of matches */
  MoveOutOfResourcesCalc = 0xa701,
  /** C-MOVE: out of resources, unable to perform sub-operations */
  MoveOutOfResourcesSubOps = 0xa702,
  /** C-MOVE: move destination unknown */
  MoveDestinationUnknown = 0xa801,
  /** Data set does not match SOP class / identifier does not match SOP class */
  DataSetDoesNotMatchSopClass = 0xa900,
  /** Cannot understand (C-STORE 0xC000-0xCFFF) */
  CannotUnderstand = 0xc000,
  /** Unable to process (C-FIND/C-MOVE/C-GET 0xC000-0xCFFF) */
  UnableToProcess = 0xc001,
  /** Refused: SOP class not supported */
  SopClassNotSupported = 0x0122,
  /** Duplicate SOP Instance (used for a UID re-used under another study) */
  DuplicateSopInstance = 0x0111,
  /** Sub-operations complete, one or more failures */
  SubOpsWarning = 0xb000,
  NoSuchObjectInstance = 0x0112,
  ProcessingFailure = 0x0110,
}
