import {
  type DicomJsonDataset,
  type Filter,
  LEVEL_DEPTH,
  QueryError,
  QueryLevel,
  QueryRepository,
  type QuerySpec,
  ATTRIBUTE_BY_TAG,
} from '#vna/catalog';
import { isValidUid } from '#vna/dicom';
import { Injectable } from '@nestjs/common';
import { resolveTag, vrOf } from './dictionary.js';

/** QIDO-RS default return attributes per level (PS3.18 Tables 10.6.3-3 .. 10.6.3-5). */
export const QIDO_DEFAULTS: Record<Exclude<QueryLevel, QueryLevel.Patient>, string[]> = {
  [QueryLevel.Study]: [
    '00080005', '00080020', '00080030', '00080050', '00080056', '00080061', '00080090', '00081190',
    '00100010', '00100020', '00100030', '00100040', '0020000D', '00200010', '00201206', '00201208',
  ],
  [QueryLevel.Series]: ['00080005', '00080060', '0008103E', '00081190', '0020000E', '00200011', '00201209', '00400244', '00400245'],
  [QueryLevel.Image]: ['00080005', '00080016', '00080018', '00080056', '00081190', '00200013', '00280010', '00280011', '00280008'],
};

const RESERVED_QIDO_PARAMS = new Set(['limit', 'offset', 'includefield', 'fuzzymatching', 'orderby', 'accept', 'charset']);
const DATE_RE = /^\d{8}$/;
const TIME_RE = /^\d{2}(\d{2}(\d{2}(\.\d{1,6})?)?)?$/;
const MAX_LIMIT = 10_000;

export interface QidoScope {
  studyUid?: string;
  seriesUid?: string;
}

export interface QidoResult {
  datasets: DicomJsonDataset[];
  /** True when the server's maximum page size cut the result. */
  truncated: boolean;
}

/** Turns QIDO-RS parameters and C-FIND identifiers into index queries, and shapes the answers. */
@Injectable()
export class QueryService {
  constructor(private readonly repo: QueryRepository) {}

  // ---------------------------------------------------------------- QIDO-RS

  /** Parse QIDO-RS query parameters; throws QueryError naming the offending parameter. */
  parseQido(level: Exclude<QueryLevel, QueryLevel.Patient>, params: Record<string, unknown>, scope: QidoScope): QuerySpec {
    const filters: Filter[] = [];
    const returnTags: string[] = [];
    let includeAll = false;
    let limit: number | undefined;
    let offset: number | undefined;

    for (const [rawKey, rawValue] of Object.entries(params)) {
      const values = (Array.isArray(rawValue) ? rawValue : [rawValue]).map(String);
      const key = rawKey.trim();
      const lower = key.toLowerCase();
      if (lower === 'limit' || lower === 'offset') {
        const v = values[values.length - 1]!;
        if (!/^\d+$/.test(v)) throw new QueryError(`parameter "${key}" must be a non-negative integer, got "${v}"`, key);
        const n = Number(v);
        if (lower === 'limit') limit = n;
        else offset = n;
        continue;
      }
      if (lower === 'includefield') {
        for (const item of values.flatMap((v) => v.split(','))) {
          const f = item.trim();
          if (!f) continue;
          if (f === 'all') includeAll = true;
          else {
            const tag = resolveTag(f);
            if (!tag) throw new QueryError(`includefield: unknown attribute "${f}"`, 'includefield');
            returnTags.push(tag);
          }
        }
        continue;
      }
      if (lower === 'fuzzymatching') {
        if (!values.every((v) => v === 'true' || v === 'false')) {
          throw new QueryError('parameter "fuzzymatching" must be true or false', key);
        }
        continue;
      }
      if (RESERVED_QIDO_PARAMS.has(lower)) continue;
      const tag = resolveTag(key);
      if (!tag) throw new QueryError(`unknown query parameter "${key}"`, key);
      for (const v of values) {
        const f = this.parseMatch(tag, v, ',', key);
        if (f) filters.push(f);
      }
      returnTags.push(tag);
    }
    if (scope.studyUid) filters.push(this.uidFilter('0020000D', scope.studyUid, 'StudyInstanceUID'));
    if (scope.seriesUid) filters.push(this.uidFilter('0020000E', scope.seriesUid, 'SeriesInstanceUID'));
    if (limit !== undefined && limit > MAX_LIMIT) limit = MAX_LIMIT;
    return { level, filters, returnTags, includeAll, includeDefaults: true, limit: limit ?? MAX_LIMIT, offset };
  }

  async qido(
    level: Exclude<QueryLevel, QueryLevel.Patient>,
    spec: QuerySpec,
    scope: QidoScope,
    baseUrl: string,
  ): Promise<QidoResult> {
    // Fetch one more than asked to know whether the server limit cut the answer.
    const datasets = await this.repo.search({ ...spec, limit: (spec.limit ?? MAX_LIMIT) + 1 });
    const truncated = datasets.length > (spec.limit ?? MAX_LIMIT);
    if (truncated) datasets.pop();

    // Defaults of the level, plus those of the levels above when the query is not scoped to them.
    const keep = new Set<string>(QIDO_DEFAULTS[level]);
    if (level !== QueryLevel.Study && !scope.studyUid) QIDO_DEFAULTS[QueryLevel.Study].forEach((t) => keep.add(t));
    if (level === QueryLevel.Image && !scope.seriesUid) QIDO_DEFAULTS[QueryLevel.Series].forEach((t) => keep.add(t));
    if (level !== QueryLevel.Study) keep.add('0020000D');
    if (level === QueryLevel.Image) keep.add('0020000E');
    spec.returnTags.forEach((t) => keep.add(t));

    return {
      truncated,
      datasets: datasets.map((ds) => {
        const out: DicomJsonDataset = {};
        for (const [tag, el] of Object.entries(ds)) {
          if (spec.includeAll || keep.has(tag)) out[tag] = el;
        }
        out['00080056'] = { vr: 'CS', Value: ['ONLINE'] };
        out['00081190'] = { vr: 'UR', Value: [retrieveUrl(baseUrl, level, ds)] };
        if (!out['00080005'] && needsUtf8(out)) out['00080005'] = { vr: 'CS', Value: ['ISO_IR 192'] };
        return sortDataset(out);
      }),
    };
  }

  // ---------------------------------------------------------------- C-FIND

  /**
   * Parse a C-FIND identifier. `patientRoot` selects the information model: the Patient Root
   * model allows PATIENT level, the Study Root model does not.
   */
  parseCFind(identifier: DicomJsonDataset, patientRoot: boolean): { spec: QuerySpec; requested: string[] } {
    const levelValue = String(identifier['00080052']?.Value?.[0] ?? '').trim().toUpperCase();
    const levels: Record<string, QueryLevel> = {
      PATIENT: QueryLevel.Patient, STUDY: QueryLevel.Study, SERIES: QueryLevel.Series, IMAGE: QueryLevel.Image,
    };
    const level = levels[levelValue];
    if (!level) throw new QueryError(`invalid Query/Retrieve Level "${levelValue}"`, '00080052');
    if (level === QueryLevel.Patient && !patientRoot) {
      throw new QueryError('PATIENT level is not part of the Study Root information model', '00080052');
    }
    const filters: Filter[] = [];
    const requested: string[] = [];
    for (const [tag, el] of Object.entries(identifier)) {
      if (tag === '00080052' || tag === '00080005' || tag.startsWith('0002')) continue;
      const def = ATTRIBUTE_BY_TAG.get(tag);
      // Keys below the query level cannot be matched at this level: ignore them (PS3.4 C.2.2.1).
      if (def && LEVEL_DEPTH[def.level] > LEVEL_DEPTH[level]) continue;
      requested.push(tag);
      if (el.vr === 'SQ') continue; // sequence matching: returned, not matched
      const value = elementString(el);
      if (value === '') continue; // universal matching
      const f = this.parseMatch(tag, value, '\\', tag);
      if (f) filters.push(f);
    }
    return { spec: { level, filters, returnTags: requested, includeAll: false, includeDefaults: false }, requested };
  }

  async *cfind(identifier: DicomJsonDataset, patientRoot: boolean, retrieveAeTitle: string): AsyncIterable<DicomJsonDataset> {
    const { spec, requested } = this.parseCFind(identifier, patientRoot);
    const pageSize = 500;
    for (let offset = 0; ; offset += pageSize) {
      const page = await this.repo.search({ ...spec, limit: pageSize, offset });
      for (const ds of page) {
        const out: DicomJsonDataset = { '00080052': { vr: 'CS', Value: [spec.level] } };
        for (const tag of requested) out[tag] = ds[tag] ?? { vr: identifier[tag]?.vr ?? vrOf(tag) };
        // Unique keys of the levels above are always returned (hierarchical model).
        const keys = ['0020000D', '0020000E', '00080018'].slice(0, LEVEL_DEPTH[spec.level]);
        if (spec.level !== QueryLevel.Patient) for (const k of keys) out[k] = ds[k] ?? { vr: 'UI' };
        if (spec.level === QueryLevel.Patient && !out['00100020']) out['00100020'] = ds['00100020'] ?? { vr: 'LO' };
        out['00080054'] = { vr: 'AE', Value: [retrieveAeTitle] };
        if (needsUtf8(out)) out['00080005'] = { vr: 'CS', Value: ['ISO_IR 192'] };
        yield sortDataset(out);
      }
      if (page.length < pageSize) return;
    }
  }

  // ---------------------------------------------------------------- matching rules

  /** One matching value -> filter (PS3.4 C.2.2.2): single, wildcard, range, UID list. */
  private parseMatch(tag: string, raw: string, listSeparator: string, name: string): Filter | null {
    const value = raw.trim();
    if (value === '' || value === '*') return null;
    const def = ATTRIBUTE_BY_TAG.get(tag);
    const vr = def?.vr ?? vrOf(tag);
    if (vr === 'UI') {
      const uids = value.split(listSeparator === ',' ? /[,\\]/ : /\\/).map((u) => u.trim()).filter(Boolean);
      for (const u of uids) if (!isValidUid(u)) throw new QueryError(`"${name}" has an invalid UID "${u}"`, name);
      return uids.length === 1 ? { tag, kind: 'single', value: uids[0]! } : { tag, kind: 'list', values: uids };
    }
    if (vr === 'DA' || vr === 'TM' || vr === 'DT') {
      const check = (v: string) => {
        const clean = v.replace(/[-:]/g, '');
        const ok = vr === 'DA' ? DATE_RE.test(clean) : vr === 'TM' ? TIME_RE.test(v.replace(/:/g, '')) : /^\d{4,14}/.test(v);
        if (!ok) throw new QueryError(`"${name}" has an invalid ${vr} value "${v}"`, name);
        return vr === 'TM' ? v.replace(/:/g, '') : clean;
      };
      const dash = vr === 'DA' ? value.indexOf('-') : value.indexOf('-');
      // QIDO also accepts ISO dates (2020-01-01): only treat '-' as a range when not inside a date.
      const isoDate = /^\d{4}-\d{2}-\d{2}$/.test(value);
      if (dash >= 0 && !isoDate) {
        const from = value.slice(0, dash).trim();
        const to = value.slice(dash + 1).trim();
        if (!from && !to) throw new QueryError(`"${name}" has an empty range`, name);
        return { tag, kind: 'range', from: from ? check(from) : '', to: to ? check(to) : '' };
      }
      return { tag, kind: 'single', value: check(value) };
    }
    if (def?.match === 'cs-array' || def?.match === 'int' || def?.match === 'count') {
      const values = value.split(listSeparator === ',' ? /[,\\]/ : /\\/).map((v) => v.trim()).filter(Boolean);
      return values.length === 1 ? { tag, kind: 'single', value: values[0]! } : { tag, kind: 'list', values };
    }
    if (/[*?]/.test(value)) return { tag, kind: 'wildcard', value };
    if (listSeparator === '\\' && value.includes('\\') && vr !== 'PN') {
      return { tag, kind: 'list', values: value.split('\\').map((v) => v.trim()) };
    }
    return { tag, kind: 'single', value };
  }

  private uidFilter(tag: string, uid: string, name: string): Filter {
    if (!isValidUid(uid)) throw new QueryError(`invalid ${name} "${uid}"`, name);
    return { tag, kind: 'single', value: uid };
  }
}

function elementString(el: { vr: string; Value?: unknown[] }): string {
  const values = (el.Value ?? []).map((v) =>
    v && typeof v === 'object' ? String((v as { Alphabetic?: string }).Alphabetic ?? '') : v === null || v === undefined ? '' : String(v),
  );
  return values.join('\\');
}

function retrieveUrl(base: string, level: QueryLevel, ds: DicomJsonDataset): string {
  const uid = (tag: string) => String(ds[tag]?.Value?.[0] ?? '');
  let url = `${base}/studies/${uid('0020000D')}`;
  if (level === QueryLevel.Series || level === QueryLevel.Image) url += `/series/${uid('0020000E')}`;
  if (level === QueryLevel.Image) url += `/instances/${uid('00080018')}`;
  return url;
}

function needsUtf8(ds: DicomJsonDataset): boolean {
  return Object.values(ds).some((el) =>
    (el.Value ?? []).some((v) => {
      const s = v && typeof v === 'object' ? (v as { Alphabetic?: string }).Alphabetic : v;
      return typeof s === 'string' && /[^\x00-\x7f]/.test(s);
    }),
  );
}

function sortDataset(ds: DicomJsonDataset): DicomJsonDataset {
  return Object.fromEntries(Object.entries(ds).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
}
