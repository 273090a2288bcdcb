import { LocationRepository, LocationStatus, type RetrievableInstance, type RetrieveScope } from '#vna/catalog';
import { STORAGE_REGISTRY, type StorageRegistry } from '#vna/storage';
import { Inject, Injectable, Logger } from '@nestjs/common';
import type { Writable } from 'node:stream';
import { AccessTrackerService } from '../access-tracker.service.js';
import { ObjectReaderService, ObjectUnavailableError, type VerifiedBytes } from '../object-reader.service.js';
import {
  type MediaRange,
  negotiateBulk,
  negotiateDicom,
  negotiateJson,
  negotiatePixels,
  NotAcceptableError,
} from './accept.js';
import { copyStream, multipartContentType, MultipartWriter, newBoundary, writeChunk } from './multipart.js';
import { type ByteRange, ObjectIndexError } from './object-index.js';
import { ObjectIndexService } from './object-index.service.js';
import { RestorePendingError, RestoreWaitService } from '../restore-wait.service.js';

export enum WadoErrorCode {
  BadRequest = 'BAD_REQUEST',
  NotFound = 'NOT_FOUND',
  /** Known to the index but no readable copy (missing/corrupt; marked for repair). */
  Gone = 'GONE',
  NotAcceptable = 'NOT_ACCEPTABLE',
  /** The object cannot be handled this way (e.g. frames of a deflated object). */
  Unsupported = 'UNSUPPORTED',
  /** On an offline tier, its restore not done within VNA_RESTORE_WAIT_S (503 + Retry-After). */
  RestorePending = 'RESTORE_PENDING',
}

export class WadoError extends Error {
  constructor(
    readonly code: WadoErrorCode,
    message: string,
    /** RestorePending: seconds for Retry-After. */
    readonly retryAfterS?: number,
  ) {
    super(message);
    this.name = 'WadoError';
  }
}

/**
 * What to send: everything that can fail cleanly (lookups, negotiation, availability) is decided
 * before a plan exists; `write` streams the body. An error from `write` happens after the status
 * line was sent: the caller must destroy the response so the client sees a broken transfer.
 */
export interface ResponsePlan {
  status: number;
  headers: Record<string, string>;
  write(out: Writable): Promise<void>;
}

export interface InstanceRef {
  studyUid: string;
  seriesUid: string;
  sopUid: string;
}

/** Buffered frames/values up to this size; larger bulk values are streamed (checked at their end). */
const BUFFER_MAX = 32 * 1024 * 1024;
const PROBE_CONCURRENCY = 16;
/** Study/series retrieval: objects up to this size are read and verified whole before their part is written. */
const WADO_IN_MEMORY_MAX_BYTES = 8 * 1024 * 1024;
/** How many objects are read and verified ahead of the one being written (memory: bounded by both limits). */
const WADO_LOOKAHEAD = 3;
/** Written parts may queue in the response up to this many bytes before we wait for the client (backpressure). */
const WADO_QUEUE_MAX_BYTES = 8 * 1024 * 1024;
const WARNING_LIST_MAX = 10;
const JSON_FLUSH = 256 * 1024;

/** WADO-RS / WADO-URI (PS3.18 10.4, 9): the stored bytes, unchanged, or a reason why not. */
@Injectable()
export class WadoService {
  private readonly logger = new Logger(WadoService.name);

  constructor(
    private readonly locations: LocationRepository,
    private readonly reader: ObjectReaderService,
    private readonly indexes: ObjectIndexService,
    private readonly tracker: AccessTrackerService,
    @Inject(STORAGE_REGISTRY) private readonly storages: StorageRegistry,
    private readonly restoreWait: RestoreWaitService,
  ) {}

  /**
   * Study, series or instance retrieval as multipart/related; type="application/dicom".
   *
   * Availability policy: before the status line, every object's presence and size are checked
   * (a stat per object, bounded concurrency). Objects found missing or with the wrong size are
   * marked for repair and left out; the response is 206 with a Warning naming them, so a client
   * knows the set is incomplete (PS3.18 partial content). If none remain: 410 with the reason.
   * Once the body has started nothing can be reported any more: an object that fails while
   * streaming (its SHA-256 is only known at its end; or it vanished since the check) makes the
   * archive destroy the response. The client then sees a broken transfer (no closing boundary,
   * no terminating chunk), never a completed multipart holding altered or silently missing objects.
   */
  async retrieve(scope: RetrieveScope, accept: MediaRange[], what: string): Promise<ResponsePlan> {
    const found = await this.locations.findRetrievable(scope);
    if (!found.length) throw new WadoError(WadoErrorCode.NotFound, `${what} is not in the archive`);
    this.touch(found);
    // 406 before anything is sent, also when only some instances are in another syntax.
    this.negotiate(() => negotiateDicom(accept, found.map((i) => i.transferSyntaxUid)));
    // Copies on an offline tier: their restore is requested and awaited (VNA_RESTORE_WAIT_S), or 503.
    const instances = await this.online(found, () => this.locations.findRetrievable(scope));
    const problems = await this.probe(instances);
    const available = instances.filter((i) => !problems.has(i.sopIuid));
    if (!available.length) {
      throw new WadoError(WadoErrorCode.Gone, `no stored object of ${what} can be read: ${this.describe(problems)}; marked for repair`);
    }
    const boundary = newBoundary();
    const headers: Record<string, string> = { 'Content-Type': multipartContentType('application/dicom', boundary) };
    if (problems.size) {
      headers.Warning = `299 VNA "${problems.size} of ${instances.length} instances could not be read and are left out: ${this.describe(problems)}; marked for repair"`;
    }
    return {
      status: problems.size ? 206 : 200,
      headers,
      write: async (out) => {
        const mp = new MultipartWriter(out, 'application/dicom', boundary);
        // Objects that fit in memory are read and verified whole, up to WADO_LOOKAHEAD of them
        // ahead of the one being written: a part is written only once its object checked out,
        // so a corrupt object's bytes are never sent. Larger objects stream, their last chunk
        // held back until their digest checks out.
        const small = (k: number) => available[k]!.location!.sizeBytes <= WADO_IN_MEMORY_MAX_BYTES;
        const loads = new Map<number, Promise<VerifiedBytes>>();
        const load = (k: number) => {
          let p = loads.get(k);
          if (!p) {
            p = this.reader.readVerified(available[k]!);
            p.catch(() => undefined); // awaited below, in order
            loads.set(k, p);
          }
          return p;
        };
        for (let k = 0; k < available.length; k++) {
          const inst = available[k]!;
          for (let j = k; j <= k + WADO_LOOKAHEAD && j < available.length && small(j); j++) void load(j);
          const headers = { 'Content-Type': `application/dicom; transfer-syntax=${inst.transferSyntaxUid}` };
          if (small(k)) {
            const body = await load(k);
            loads.delete(k);
            await mp.part(headers, body.bytes, WADO_QUEUE_MAX_BYTES, body.release);
          } else {
            await mp.part(headers, await this.reader.open(inst));
          }
        }
        await mp.end();
      },
    };
  }

  /**
   * DICOM JSON of every instance in scope, from the index only (never object storage), streamed
   * as one JSON array. Each bulk element's empty BulkDataURI becomes
   * `{base}/studies/{s}/series/{se}/instances/{i}/bulkdata/{tag path}`, where the tag path is the
   * element's tag, preceded by `{sequence tag}/{item index, 0-based}/` for each enclosing
   * sequence item (e.g. `7FE00010`, `00880200/0/7FE00010`).
   */
  async metadata(scope: RetrieveScope, accept: MediaRange[], base: string, what: string): Promise<ResponsePlan> {
    this.negotiate(() => negotiateJson(accept));
    const rows = await this.locations.findMetadata(scope);
    if (!rows.length) throw new WadoError(WadoErrorCode.NotFound, `${what} is not in the archive`);
    for (const study of new Set(rows.map((r) => r.studyIuid))) this.tracker.touch(study);
    return {
      status: 200,
      headers: { 'Content-Type': 'application/dicom+json' },
      write: async (out) => {
        let pending = '[';
        for (let k = 0; k < rows.length; k++) {
          const r = rows[k]!;
          const url = `${base}/studies/${r.studyIuid}/series/${r.seriesIuid}/instances/${r.sopIuid}/bulkdata/`;
          setBulkDataUris(r.metadata, url, '');
          pending += (k ? ',' : '') + JSON.stringify(r.metadata);
          if (pending.length >= JSON_FLUSH) {
            await writeChunk(out, pending);
            pending = '';
          }
        }
        await writeChunk(out, `${pending}]`);
      },
    };
  }

  /** Frames of one instance, as stored (PS3.18 10.4.1.1.4). */
  async frames(ref: InstanceRef, numbers: number[], accept: MediaRange[]): Promise<ResponsePlan> {
    const inst = await this.instance(ref);
    const index = await this.index(inst);
    if (!index.pixel) throw new WadoError(WadoErrorCode.NotFound, `instance ${ref.sopUid} has no pixel data`);
    if (index.framesError) throw new WadoError(WadoErrorCode.Unsupported, `frames of instance ${ref.sopUid} cannot be served: ${index.framesError}`);
    const count = index.frames.length;
    const beyond = numbers.filter((n) => n > count);
    if (beyond.length) {
      throw new WadoError(WadoErrorCode.NotFound, `frame ${beyond.join(', ')} out of range: instance ${ref.sopUid} has ${count} frame(s)`);
    }
    const partType = this.negotiate(() => negotiatePixels(accept, index.transferSyntaxUid));
    return this.bufferedParts(inst, partType, numbers.map((n) => index.frames[n - 1]!));
  }

  /** A bulk data element's value, by the tag path the metadata handed out. */
  async bulkdata(ref: InstanceRef, tagPath: string, accept: MediaRange[]): Promise<ResponsePlan> {
    const path = tagPath.replace(/^\/+|\/+$/g, '').toUpperCase();
    if (!/^([0-9A-F]{8}\/\d+\/)*[0-9A-F]{8}$/.test(path)) {
      throw new WadoError(WadoErrorCode.BadRequest, `invalid bulk data path "${tagPath}": expected TAG or SEQTAG/ITEM/…/TAG (8 hex digits each)`);
    }
    const inst = await this.instance(ref);
    const index = await this.index(inst);
    if (path === '7FE00010' && index.pixel) {
      const partType = this.negotiate(() => negotiatePixels(accept, index.transferSyntaxUid));
      if (index.pixel.encapsulated) {
        // Encapsulated pixel data: one part per frame, each frame's fragments as stored.
        if (index.framesError) throw new WadoError(WadoErrorCode.Unsupported, `pixel data of ${ref.sopUid} cannot be served: ${index.framesError}`);
        return this.bufferedParts(inst, partType, index.frames);
      }
      return this.valuePart(inst, partType, index.bulk.get(path)!);
    }
    const range = index.bulk.get(path);
    if (!range) throw new WadoError(WadoErrorCode.NotFound, `instance ${ref.sopUid} has no bulk data element ${path}`);
    const partType = this.negotiate(() => negotiateBulk(accept, index.transferSyntaxUid));
    return this.valuePart(inst, partType, range);
  }

  /**
   * WADO-URI (PS3.18 9): application/dicom as stored; image/jpeg only when the object is a
   * single-frame JPEG Baseline image, whose frame is returned as is (the archive does not render).
   */
  async wadoUri(ref: InstanceRef, contentTypes: string[], transferSyntax: string | undefined): Promise<ResponsePlan> {
    const inst = await this.instance(ref);
    const reasons: string[] = [];
    for (const ct of contentTypes) {
      if (ct === 'application/dicom' || ct === '*/*') {
        if (transferSyntax && transferSyntax !== '*' && transferSyntax !== inst.transferSyntaxUid) {
          reasons.push(`object is stored in ${inst.transferSyntaxUid}, not ${transferSyntax}; the archive does not transcode`);
          continue;
        }
        const stream = await this.open(inst);
        return {
          status: 200,
          headers: {
            'Content-Type': 'application/dicom',
            'Content-Length': String(inst.location!.sizeBytes),
            'Content-Disposition': `attachment; filename="${inst.sopIuid}.dcm"`,
          },
          write: (out) => copyStream(stream, out),
        };
      }
      if (ct === 'image/jpeg' || ct === 'image/*') {
        if (inst.transferSyntaxUid !== '1.2.840.10008.1.2.4.50') {
          reasons.push(`image/jpeg needs rendering: the object is stored in ${inst.transferSyntaxUid} and the archive does not render`);
          continue;
        }
        const index = await this.index(inst);
        if (!index.pixel || index.framesError || index.frames.length !== 1) {
          reasons.push('image/jpeg is only served for single-frame JPEG Baseline objects (returned as stored)');
          continue;
        }
        const body = await this.readVerified(inst, index.frames[0]!);
        return {
          status: 200,
          headers: { 'Content-Type': 'image/jpeg', 'Content-Length': String(body.length) },
          write: (out) => writeChunk(out, body),
        };
      }
      reasons.push(`contentType ${ct} is not supported (application/dicom, or image/jpeg for single-frame JPEG Baseline objects)`);
    }
    throw new WadoError(WadoErrorCode.NotAcceptable, reasons.join('; '));
  }

  // ---------------------------------------------------------------------------------------------

  private touch(instances: RetrievableInstance[]) {
    for (const study of new Set(instances.map((i) => i.studyIuid))) this.tracker.touch(study);
  }

  private negotiate<T>(f: () => T): T {
    try {
      return f();
    } catch (e) {
      if (e instanceof NotAcceptableError) throw new WadoError(WadoErrorCode.NotAcceptable, e.message);
      throw e;
    }
  }

  private async instance(ref: InstanceRef): Promise<RetrievableInstance> {
    const scope = { studyUid: ref.studyUid, seriesUid: ref.seriesUid, sopUids: [ref.sopUid] };
    const [found] = await this.locations.findRetrievable(scope);
    if (!found) {
      throw new WadoError(WadoErrorCode.NotFound, `instance ${ref.sopUid} of series ${ref.seriesUid} in study ${ref.studyUid} is not in the archive`);
    }
    this.tracker.touch(found.studyIuid);
    const [inst] = await this.online([found], () => this.locations.findRetrievable(scope));
    return inst ?? found;
  }

  /** The instances with readable copies, after waiting for the restore of any offline ones (503 when not done in time). */
  private async online(instances: RetrievableInstance[], refresh: () => Promise<RetrievableInstance[]>): Promise<RetrievableInstance[]> {
    try {
      return await this.restoreWait.online(instances, { refresh });
    } catch (e) {
      if (e instanceof RestorePendingError) throw new WadoError(WadoErrorCode.RestorePending, e.message, e.retryAfterS);
      throw e;
    }
  }

  private async open(inst: RetrievableInstance) {
    try {
      return await this.reader.open(inst);
    } catch (e) {
      throw this.unavailable(e);
    }
  }

  private async index(inst: RetrievableInstance) {
    try {
      return await this.indexes.get(inst);
    } catch (e) {
      if (e instanceof ObjectIndexError) {
        if (e.unsupported) throw new WadoError(WadoErrorCode.Unsupported, `instance ${inst.sopIuid}: ${e.message}`);
        throw new Error(`cannot map the stored object of ${inst.sopIuid}: ${e.message}`);
      }
      throw this.unavailable(e);
    }
  }

  private async readVerified(inst: RetrievableInstance, ranges: ByteRange[]) {
    try {
      return await this.indexes.read(inst, ranges);
    } catch (e) {
      throw this.unavailable(e);
    }
  }

  private unavailable(e: unknown): unknown {
    if (e instanceof ObjectUnavailableError) {
      return new WadoError(WadoErrorCode.Gone, `${e.message} (reason: ${e.reason})${e.reason === 'offline' ? '' : '; marked for repair'}`);
    }
    return e;
  }

  /**
   * One part per group of ranges (a frame). The first part is read and verified before the status
   * line, so an unreadable object is a clean error; a later failure destroys the response.
   */
  private async bufferedParts(inst: RetrievableInstance, partType: string, groups: ByteRange[][]): Promise<ResponsePlan> {
    const first = await this.readVerified(inst, groups[0]!);
    const boundary = newBoundary();
    const type = partType.split(';')[0]!;
    return {
      status: 200,
      headers: { 'Content-Type': multipartContentType(type, boundary) },
      write: async (out) => {
        const mp = new MultipartWriter(out, type, boundary);
        for (let k = 0; k < groups.length; k++) {
          const body = k === 0 ? first : await this.indexes.read(inst, groups[k]!);
          await mp.part({ 'Content-Type': partType }, body);
        }
        await mp.end();
      },
    };
  }

  /** One value in one part: buffered and verified up front when small, streamed and checked at its end otherwise. */
  private async valuePart(inst: RetrievableInstance, partType: string, range: ByteRange): Promise<ResponsePlan> {
    if (range.length <= BUFFER_MAX) return this.bufferedParts(inst, partType, [[range]]);
    const boundary = newBoundary();
    const type = partType.split(';')[0]!;
    const stream = await this.indexes.stream(inst, range).catch((e) => Promise.reject(this.unavailable(e)));
    return {
      status: 200,
      headers: { 'Content-Type': multipartContentType(type, boundary) },
      write: async (out) => {
        const mp = new MultipartWriter(out, type, boundary);
        await mp.part({ 'Content-Type': partType }, stream);
        await mp.end();
      },
    };
  }

  /** Presence and size of each object, before anything is sent; unreadable ones are marked. */
  private async probe(instances: RetrievableInstance[]): Promise<Map<string, string>> {
    const problems = new Map<string, string>();
    let next = 0;
    const worker = async () => {
      while (next < instances.length) {
        const k = next++;
        // At most twice: a copy found gone may have been switched by a tier move since the lookup.
        for (let inst = instances[k]!, relocated = false; ; ) {
          const loc = inst.location;
          if (!loc) {
            problems.set(inst.sopIuid, 'no readable copy');
            break;
          }
          try {
            this.reader.assertNotOffline(inst);
          } catch {
            problems.set(inst.sopIuid, `on offline tier ${loc.storageId}, not marked`);
            break;
          }
          const stat = await this.storages.get(loc.storageId).stat(loc.objectKey);
          if (stat && stat.size === loc.sizeBytes) break;
          if (!stat && !relocated) {
            const moved = await this.reader.relocated(inst);
            if (moved) {
              instances[k] = inst = moved;
              relocated = true;
              continue;
            }
          }
          const status = stat ? LocationStatus.Corrupt : LocationStatus.Missing;
          problems.set(inst.sopIuid, status.toLowerCase());
          await this.reader.markUnavailable(
            inst,
            status,
            stat ? `size ${stat.size} in storage, ${loc.sizeBytes} recorded` : `object ${loc.objectKey} not found in storage ${loc.storageId}`,
          );
          break;
        }
      }
    };
    await Promise.all(Array.from({ length: Math.min(PROBE_CONCURRENCY, instances.length) }, worker));
    return problems;
  }

  private describe(problems: Map<string, string>): string {
    const list = [...problems].slice(0, WARNING_LIST_MAX).map(([sop, why]) => `${sop} (${why})`);
    if (problems.size > WARNING_LIST_MAX) list.push(`and ${problems.size - WARNING_LIST_MAX} more`);
    return list.join(', ');
  }
}

type Json = Record<string, { vr?: string; Value?: unknown[]; BulkDataURI?: string }>;

/** Fills every empty BulkDataURI with `url` + tag path (sequence items: TAG/index/…). In place. */
export function setBulkDataUris(ds: Record<string, unknown>, url: string, prefix: string): void {
  for (const [tag, el] of Object.entries(ds as Json)) {
    if (!el || typeof el !== 'object') continue;
    if (el.BulkDataURI === '') el.BulkDataURI = `${url}${prefix}${tag.toUpperCase()}`;
    else if (el.vr === 'SQ' && Array.isArray(el.Value)) {
      el.Value.forEach((item, i) => {
        if (item && typeof item === 'object') setBulkDataUris(item as Record<string, unknown>, url, `${prefix}${tag.toUpperCase()}/${i}/`);
      });
    }
  }
}
