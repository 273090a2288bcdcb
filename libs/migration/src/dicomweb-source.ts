/**
 * The legacy archive as a DICOMweb origin server (PS3.18): QIDO-RS to list its studies (in
 * self-splitting date windows, date-windows.ts) and each study's instances, WADO-RS to retrieve
 * them as multipart/related; type="application/dicom" with transfer-syntax=* (the objects as the
 * source stored them). Node's fetch (undici) with streamed bodies: each part streams into the
 * caller's handler as it arrives, with backpressure; a study is never held in memory.
 */
import type { DicomDict } from '#vna/dimse';
import Dicer from 'dicer';
import { PassThrough, Readable } from 'node:stream';
import type { ReadableStream as WebReadableStream } from 'node:stream/web';
import { DEFAULT_MAX_RESULTS_PER_QUERY, type EnumerationProgress, type EnumerationResult, enumerateStudies, type FindAnswer } from './date-windows.js';
import { MigrationSourceError, type SourceInstance } from './dimse-source.js';
import { firstValue, type MigrationScope, parseStudy, type SourceStudy, studyQueries, Tags } from './scope.js';

export interface DicomwebSourceConfig {
  kind: 'dicomweb';
  /** The DICOMweb root, e.g. https://pacs.example.org/dicom-web (no trailing slash needed). */
  baseUrl: string;
  /** Extra request headers (e.g. Authorization). */
  headers?: Record<string, string>;
  /** Studies per QIDO-RS answer before its date window is split (date-windows.ts); default 1000. */
  maxResultsPerQuery?: number;
}

export class DicomwebSourceError extends MigrationSourceError {
  override name = 'DicomwebSourceError';
}

/** Accept of WADO-RS retrieves: Part 10 objects, each in the transfer syntax the source stored. */
export const WADO_ACCEPT = 'multipart/related; type="application/dicom"; transfer-syntax=*';
const QIDO_ACCEPT = 'application/dicom+json, application/json';
/** Attributes of the STUDY-level query that parseStudy reads and a server may leave out by default. */
const STUDY_FIELDS = [Tags.StudyTime, Tags.ModalitiesInStudy, Tags.NumberOfStudyRelatedInstances, Tags.AccessionNumber, Tags.PatientID];
const INSTANCE_FIELDS = [Tags.SeriesInstanceUID, Tags.SOPClassUID];
/** Page size of instance listings (studies are paged by maxResultsPerQuery). */
const PAGE = 1000;
/** A PS3.18 10.6.3.2 Warning: the server returned fewer results than there are. */
const MORE_RESULTS = /additional results|exceed|maximum|truncat|limit/i;

/** Query parameters of a STUDY-level identifier: its keys with values (matching), the rest as includefield. */
export function qidoParams(q: DicomDict): URLSearchParams {
  const p = new URLSearchParams();
  for (const [tag, el] of Object.entries(q)) {
    if (tag === Tags.QueryRetrieveLevel) continue;
    const v = el.Value?.[0];
    if (v !== undefined && v !== null && String(v) !== '') p.append(tag, String(v));
  }
  for (const f of STUDY_FIELDS) if (!p.has(f)) p.append('includefield', f);
  return p;
}

/** The boundary of a multipart/related Content-Type; null when it is not one. */
export function multipartBoundary(contentType: string | null): string | null {
  const ct = contentType ?? '';
  if (!/^\s*multipart\/related/i.test(ct)) return null;
  return /boundary="?([^";]+)"?/i.exec(ct)?.[1]?.trim() ?? null;
}

export class DicomwebSource {
  private readonly base: string;

  constructor(private readonly source: DicomwebSourceConfig) {
    this.base = source.baseUrl.replace(/\/+$/, '');
  }

  /** How objects from this source are tagged (instance.source_ae, the audit trail's actor). */
  get sourceAe(): string {
    return `dicomweb:${new URL(this.base).host}`.slice(0, 64);
  }

  get describe(): string {
    return this.base;
  }

  private async request(path: string, accept: string, signal?: AbortSignal): Promise<Response> {
    const url = `${this.base}${path}`;
    let res: Response;
    try {
      res = await fetch(url, { headers: { ...(this.source.headers ?? {}), Accept: accept }, signal });
    } catch (e) {
      if (signal?.aborted) throw e;
      // undici says "fetch failed"; the cause says why (ECONNREFUSED, ENOTFOUND, certificate...).
      const cause = (e as { cause?: { code?: string; message?: string } }).cause;
      throw new Error(`GET ${url}: ${cause?.code ?? ''}${cause?.code && cause.message ? ' ' : ''}${cause?.message ?? (e as Error).message}`);
    }
    if (!res.ok) {
      const text = (await res.text().catch(() => '')).replace(/\s+/g, ' ').trim().slice(0, 200);
      // A 4xx will not pass by itself (bad base URL, credentials, unknown study), except timeouts and rate limits.
      const permanent = res.status >= 400 && res.status < 500 && res.status !== 408 && res.status !== 429;
      throw new DicomwebSourceError(`GET ${url}: HTTP ${res.status} ${res.statusText}${text ? ` (${text})` : ''}`, permanent);
    }
    return res;
  }

  /** One QIDO-RS page: its DICOM JSON objects, and whether the server says there are more. */
  private async qidoPage(path: string, params: URLSearchParams, limit: number, offset: number): Promise<{ items: DicomDict[]; more: boolean }> {
    const p = new URLSearchParams(params);
    p.set('limit', String(limit));
    if (offset) p.set('offset', String(offset));
    const res = await this.request(`${path}?${p.toString()}`, QIDO_ACCEPT);
    const warning = res.headers.get('warning') ?? '';
    const text = res.status === 204 ? '' : await res.text();
    let items: unknown = [];
    if (text.trim()) {
      try {
        items = JSON.parse(text);
      } catch {
        throw new DicomwebSourceError(`GET ${this.base}${path}: the QIDO-RS answer is not JSON`);
      }
    }
    if (!Array.isArray(items)) throw new DicomwebSourceError(`GET ${this.base}${path}: the QIDO-RS answer is not a JSON array`);
    return { items: items as DicomDict[], more: MORE_RESULTS.test(warning) };
  }

  /**
   * A QIDO-RS listing: with a cap, one request for cap + 1 results (truncated when more came or
   * the server warns of more); without, every page (limit/offset) until a short page without a
   * Warning. A server that ignores offset (the same page again) ends the listing as truncated.
   */
  private async qido(
    path: string,
    params: URLSearchParams,
    cap: number | null,
    key: (d: DicomDict) => string,
    pageSize = PAGE,
    keep?: (d: DicomDict) => boolean,
  ): Promise<{ items: DicomDict[]; truncated: boolean }> {
    if (cap !== null) {
      const page = await this.qidoPage(path, params, cap + 1, 0);
      return { items: page.items.slice(0, cap + 1), truncated: page.items.length > cap || page.more };
    }
    const out: DicomDict[] = [];
    const seen = new Set<string>();
    for (let offset = 0; ; ) {
      const page = await this.qidoPage(path, params, pageSize, offset);
      let fresh = 0;
      for (const d of page.items) {
        const k = key(d);
        if (seen.has(k)) continue;
        seen.add(k);
        fresh++;
        if (!keep || keep(d)) out.push(d);
      }
      if (page.items.length === 0) return { items: out, truncated: false };
      if (fresh === 0) return { items: out, truncated: true };
      if (page.items.length < pageSize && !page.more) return { items: out, truncated: false };
      offset += page.items.length;
    }
  }

  /** The studies of the scope: QIDO-RS /studies in self-splitting date windows. */
  async findStudies(scope: MigrationScope, progress?: EnumerationProgress): Promise<EnumerationResult> {
    const max = this.source.maxResultsPerQuery ?? DEFAULT_MAX_RESULTS_PER_QUERY;
    const finder = {
      find: async (q: DicomDict, cap: number | null, keep?: (s: SourceStudy) => boolean): Promise<FindAnswer> => {
        // Read to the end: pages of maxResultsPerQuery (limit/offset).
        const wanted = keep && ((d: DicomDict) => { const s = parseStudy(d); return s !== null && keep(s); });
        const r = await this.qido('/studies', qidoParams(q), cap, (d) => firstValue(d, Tags.StudyInstanceUID), max, wanted);
        return { studies: r.items.map(parseStudy).filter((s): s is SourceStudy => s !== null), truncated: r.truncated };
      },
    };
    return enumerateStudies(finder, studyQueries(scope), scope, max, progress);
  }

  /** Every instance of a study at the source (QIDO-RS /studies/{uid}/instances, read to the end). */
  async listInstances(studyIuid: string): Promise<SourceInstance[]> {
    const params = new URLSearchParams();
    for (const f of INSTANCE_FIELDS) params.append('includefield', f);
    const r = await this.qido(`/studies/${encodeURIComponent(studyIuid)}/instances`, params, null, (d) => firstValue(d, Tags.SOPInstanceUID));
    const out: SourceInstance[] = [];
    for (const d of r.items) {
      const sopIuid = firstValue(d, Tags.SOPInstanceUID);
      if (sopIuid) out.push({ sopIuid, seriesIuid: firstValue(d, Tags.SeriesInstanceUID), sopClassUid: firstValue(d, Tags.SOPClassUID) });
    }
    if (r.truncated) throw new DicomwebSourceError(`the source's instance listing of study ${studyIuid} repeats itself (it ignores offset): cannot count its instances`);
    return out;
  }

  /**
   * WADO-RS: the whole study (one request), or these instances (one request each). Each part
   * goes to `onPart` in order, after `beforeEach` resolves (throttle, pause/cancel); the next
   * part is read only when `onPart` has consumed the previous one. An error of `beforeEach` or
   * `onPart` ends the transfer (the request is aborted) and is thrown.
   */
  async retrieve(
    studyIuid: string,
    instances: SourceInstance[] | null,
    onPart: (body: Readable, contentType: string) => Promise<void>,
    beforeEach: () => Promise<void>,
  ): Promise<void> {
    const study = `/studies/${encodeURIComponent(studyIuid)}`;
    if (!instances) return this.fetchParts(study, onPart, beforeEach);
    for (const i of instances) {
      await this.fetchParts(`${study}/series/${encodeURIComponent(i.seriesIuid)}/instances/${encodeURIComponent(i.sopIuid)}`, onPart, beforeEach);
    }
  }

  private async fetchParts(path: string, onPart: (body: Readable, contentType: string) => Promise<void>, beforeEach: () => Promise<void>): Promise<void> {
    const abort = new AbortController();
    const res = await this.request(path, WADO_ACCEPT, abort.signal);
    const boundary = multipartBoundary(res.headers.get('content-type'));
    if (!boundary || !res.body) {
      await res.body?.cancel().catch(() => undefined);
      throw new DicomwebSourceError(`GET ${this.base}${path}: expected multipart/related with a boundary, got "${res.headers.get('content-type') ?? 'no Content-Type'}"`);
    }
    const parser = new Dicer({ boundary });
    let failure: unknown;
    let chain = Promise.resolve();
    parser.on('part', (part) => {
      // Bytes wait here (1 MiB at most, then backpressure) until the previous part is stored.
      const body = new PassThrough({ highWaterMark: 1024 * 1024 });
      body.on('error', () => undefined); // reported through onPart
      let contentType = '';
      const headers = new Promise<void>((r) => {
        part.once('header', (h: Record<string, string[]>) => {
          contentType = (h['content-type']?.[0] ?? '').toLowerCase();
          r();
        });
        part.once('end', () => r());
        part.once('error', () => r());
      });
      part.on('error', (e: Error) => body.destroy(e));
      part.pipe(body);
      chain = chain.then(async () => {
        if (failure !== undefined) {
          body.resume();
          return;
        }
        try {
          await headers;
          await beforeEach();
          await onPart(body, contentType);
        } catch (e) {
          failure ??= e;
          body.resume();
          abort.abort();
        }
      });
    });
    try {
      // Dicer emits 'finish' itself once its last part has ended (stream.pipeline does not see
      // it as finished): listen for it, as STOW-RS does.
      await new Promise<void>((resolve, reject) => {
        const body = Readable.fromWeb(res.body as WebReadableStream<Uint8Array>);
        parser.once('finish', () => resolve());
        parser.once('error', reject);
        body.once('error', reject);
        body.pipe(parser);
      });
    } catch (e) {
      await chain;
      if (failure !== undefined) throw failure;
      throw new Error(`GET ${this.base}${path}: the transfer broke off: ${(e as Error).message}`);
    }
    await chain;
    if (failure !== undefined) throw failure;
  }
}
