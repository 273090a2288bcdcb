import { AeRepository, LocationRepository, type RetrievableInstance, type RetrieveScope } from '#vna/catalog';
import type { DicomDict, DimseStatus, RetrieveItem, RetrievePlan } from '#vna/dimse';
import { Injectable, Logger } from '@nestjs/common';
import { Readable } from 'node:stream';
import { AccessTrackerService } from './access-tracker.service.js';
import { ObjectReaderService, ObjectUnavailableError, type VerifiedBytes } from './object-reader.service.js';
import { RestorePendingError, RestoreWaitService } from './restore-wait.service.js';
import { InvalidRetrieveIdentifierError, retrieveModelOf, toRetrieveQuery } from './retrieve-scope.js';

export enum RetrieveErrorCode {
  /** The identifier breaks the hierarchical retrieve rules (0xA900). */
  InvalidIdentifier = 'INVALID_IDENTIFIER',
  /** Valid identifier, nothing stored matches it (0xC000). */
  NoMatch = 'NO_MATCH',
  /** C-MOVE destination not registered, or not allowed as a destination (0xA801). */
  UnknownDestination = 'UNKNOWN_DESTINATION',
}

export class RetrieveError extends Error {
  constructor(
    readonly code: RetrieveErrorCode,
    message: string,
  ) {
    super(message);
    this.name = 'RetrieveError';
  }
}

/**
 * Objects up to this size are read whole into memory and verified (size + SHA-256) before their
 * first byte is sent, so a corrupt object fails its own sub-operation cleanly instead of breaking
 * off a data set mid-message. Larger objects are streamed: see `LargeObjects`.
 */
export const VERIFY_IN_MEMORY_MAX_BYTES = 8 * 1024 * 1024;

/**
 * While one object is on the wire, up to this many of the next (in-memory sized) objects are
 * already being read and verified. Memory stays bounded: at most (1 + LOOKAHEAD) objects of at
 * most VERIFY_IN_MEMORY_MAX_BYTES each per retrieve, whatever the study's size.
 */
export const LOOKAHEAD = 2;

/**
 * How objects above VERIFY_IN_MEMORY_MAX_BYTES are sent.
 * - `verify-first` (C-GET): a verification pass, then the verified stream. A mismatch found while
 *   sending would have to abort the requestor's own association (and lose the rest of the study).
 * - `stream` (C-MOVE): one verified stream whose last chunk is held back until the digest checks
 *   out; a mismatch then errors the data set before its last PDV, which aborts only our own
 *   sub-association to the destination (re-opened for the next object). The destination never
 *   receives a complete object with altered bytes; the sub-operation counts as failed.
 */
export type LargeObjects = 'verify-first' | 'stream';

export interface MoveDestination {
  aeTitle: string;
  host: string;
  port: number;
}

/**
 * C-MOVE / C-GET: resolves what to send (from the index only) and how to open each object
 * (verified stream from storage). The DIMSE layer runs the sub-operations; object bytes are never
 * read here before a sub-operation asks for them, so the plan is cheap even for huge studies.
 */
/** Who asks for a C-MOVE / C-GET, for the audit trail. */
export interface RetrievalCaller {
  actor: string;
  via: 'C-MOVE' | 'C-GET';
  destination?: string;
}

@Injectable()
export class DimseRetrieveService {
  private readonly logger = new Logger('DimseRetrieve');

  constructor(
    private readonly locations: LocationRepository,
    private readonly aes: AeRepository,
    private readonly reader: ObjectReaderService,
    private readonly access: AccessTrackerService,
    private readonly restoreWait: RestoreWaitService,
  ) {}

  /** A registered AE allowed to receive C-MOVE sub-operations. */
  async resolveDestination(aeTitle: string): Promise<MoveDestination> {
    const title = aeTitle.trim();
    const ae = title ? await this.aes.findByTitle(title) : null;
    if (!ae) throw new RetrieveError(RetrieveErrorCode.UnknownDestination, `move destination "${title}" is not a known AE`);
    if (!ae.allowMoveDestination) {
      throw new RetrieveError(RetrieveErrorCode.UnknownDestination, `AE "${title}" is not allowed as a move destination`);
    }
    return { aeTitle: ae.aeTitle, host: ae.host, port: ae.port };
  }

  /**
   * The items of a retrieve request, in study/series/instance order. Instances without a
   * readable copy, and requested SOP Instance UIDs that match nothing, become items whose open()
   * fails: they count as failed sub-operations and appear in the Failed SOP Instance UID List.
   */
  async plan(
    identifier: DicomDict,
    sopClassUid: string,
    largeObjects: LargeObjects = 'verify-first',
    who?: RetrievalCaller,
  ): Promise<RetrieveItem[]> {
    return (await this.planWithRestore(identifier, sopClassUid, largeObjects, who)).items;
  }

  /**
   * The plan, and when some of its instances are on an offline tier, `beforeSubOperations`: it
   * requests their restore and waits for it (VNA_RESTORE_WAIT_S, pending responses meanwhile),
   * then the items read the restored copies; what is still offline then fails its sub-operation.
   * `who` (the caller) is written to the audit trail per study.
   */
  async planWithRestore(
    identifier: DicomDict,
    sopClassUid: string,
    largeObjects: LargeObjects = 'verify-first',
    who?: RetrievalCaller,
  ): Promise<Pick<RetrievePlan, 'items' | 'beforeSubOperations'>> {
    const model = retrieveModelOf(sopClassUid);
    if (!model) throw new RetrieveError(RetrieveErrorCode.InvalidIdentifier, `${sopClassUid} is not a retrieve SOP class`);
    let query;
    try {
      query = toRetrieveQuery(identifier, model);
    } catch (e) {
      if (e instanceof InvalidRetrieveIdentifierError) throw new RetrieveError(RetrieveErrorCode.InvalidIdentifier, e.message);
      throw e;
    }
    const resolve = async (): Promise<RetrievableInstance[]> => {
      const all: RetrievableInstance[] = [];
      const seen = new Set<string>();
      for (const scope of query.scopes) {
        assertNarrow(scope);
        for (const inst of await this.locations.findRetrievable(scope)) {
          if (seen.has(inst.instanceId)) continue;
          seen.add(inst.instanceId);
          all.push(inst);
        }
      }
      return all;
    };
    const found = await resolve();
    if (!found.length) throw new RetrieveError(RetrieveErrorCode.NoMatch, `no stored instance matches the ${query.level} level identifier`);

    const perStudy = new Map<string, number>();
    for (const i of found) perStudy.set(i.studyIuid, (perStudy.get(i.studyIuid) ?? 0) + 1);
    for (const [studyUid, instances] of perStudy) {
      this.access.touch(studyUid);
      if (who) this.access.retrieved({ actor: who.actor, studyIuid: studyUid, detail: { via: who.via, instances, ...(who.destination ? { destination: who.destination } : {}) } });
    }
    // Sub-operations run one after another; while one object is on the wire, the next small ones
    // are already being read and verified (at most LOOKAHEAD held ahead).
    const small = (k: number) => (found[k]!.location?.sizeBytes ?? Infinity) <= VERIFY_IN_MEMORY_MAX_BYTES;
    const loads = new Map<number, Promise<VerifiedBytes | Readable>>();
    const load = (k: number): Promise<VerifiedBytes | Readable> => {
      let p = loads.get(k);
      if (!p) {
        p = small(k) ? this.reader.readVerified(found[k]!) : this.openLarge(found[k]!, largeObjects);
        p.catch(() => undefined); // delivered to whoever awaits it
        loads.set(k, p);
      }
      return p;
    };
    const items: RetrieveItem[] = found.map((inst, k) => ({
      sopClassUid: inst.sopClassUid,
      sopInstanceUid: inst.sopIuid,
      transferSyntaxUid: inst.transferSyntaxUid,
      isPart10: true,
      open: () => {
        const current = load(k);
        loads.delete(k);
        // The reads ahead start once this object is on its way (after the current I/O callbacks):
        // handing a read to a storage thread can cost the event loop its core for a while on a
        // busy host, and that must not delay the send the peer is waiting for.
        setImmediate(() => {
          for (let j = k + 1; j <= k + LOOKAHEAD && j < found.length && small(j); j++) void load(j); // rejections kept for whoever awaits them
        });
        return current;
      },
    }));
    if (query.sopUids) {
      const have = new Set(found.map((i) => i.sopIuid));
      for (const sop of query.sopUids.filter((u) => !have.has(u))) {
        items.push({
          // Never sent: borrowing a matched instance's class keeps C-MOVE from proposing an unknown one.
          sopClassUid: found[0]!.sopClassUid,
          sopInstanceUid: sop,
          transferSyntaxUid: found[0]!.transferSyntaxUid,
          isPart10: true,
          open: () => Promise.reject(new ObjectUnavailableError(sop, 'no-location', `no stored instance ${sop} in the requested scope`)),
        });
      }
    }
    if (!this.restoreWait.offline(found).length) return { items };
    const beforeSubOperations = async (sendPending: () => Promise<void>, signal: AbortSignal): Promise<string | undefined> => {
      try {
        const current = new Map((await this.restoreWait.online(found, { refresh: resolve, onWait: sendPending, signal })).map((i) => [i.instanceId, i]));
        // Same instances (items were made from `found`), now with their restored copies.
        found.forEach((inst, k) => (found[k] = current.get(inst.instanceId) ?? inst));
        return undefined;
      } catch (e) {
        if (!(e instanceof RestorePendingError)) throw e;
        this.logger.warn(`retrieve of offline instances: ${e.message}`);
        // Those sub-operations fail (their copies are still offline); the rest is sent.
        const current = new Map((await resolve()).map((i) => [i.instanceId, i]));
        found.forEach((inst, k) => (found[k] = current.get(inst.instanceId) ?? inst));
        return e.failed ? 'restore from offline tier failed; retry later' : 'restore from offline tier in progress; retry later';
      }
    };
    return { items, beforeSubOperations };
  }

  /** A large object's verified stream (see LargeObjects). */
  private async openLarge(inst: RetrievableInstance, mode: LargeObjects): Promise<Readable> {
    if (mode === 'verify-first') {
      // Verification pass first (cheap on a local tier; the page cache serves the second read),
      // then the verified stream again (still checked, in case it changed meanwhile).
      for await (const _ of await this.reader.open(inst)) {
        // discard
      }
    }
    return this.reader.open(inst);
  }

  /** Log failed sub-operations; objects unavailable in storage were already marked for repair by the reader. */
  reportSubOperation(operation: string, callingAeTitle: string, item: RetrieveItem, result: DimseStatus | Error): void {
    if (result instanceof ObjectUnavailableError) {
      this.logger.error(`${operation} from ${callingAeTitle}: ${item.sopInstanceUid} not sent (${result.reason}): ${result.message}`);
    } else if (result instanceof Error) {
      this.logger.warn(`${operation} from ${callingAeTitle}: ${item.sopInstanceUid} not sent: ${result.message}`);
    } else if (result.status !== 0) {
      this.logger.warn(
        `${operation} from ${callingAeTitle}: ${item.sopInstanceUid} answered 0x${result.status.toString(16).padStart(4, '0')}${result.errorComment ? ` (${result.errorComment})` : ''}`,
      );
    }
  }
}

/** Defence in depth: a scope without any key would select the whole archive. */
function assertNarrow(scope: RetrieveScope): void {
  if (!scope.studyUid && !scope.seriesUid && !scope.sopUids?.length && scope.patientId === undefined) {
    throw new Error('refusing an unrestricted retrieve scope');
  }
}
