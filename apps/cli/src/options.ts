/**
 * Command-line options → request bodies of the migration API. Only the shape is checked here
 * (AE@host:port, HH:MM-HH:MM, numbers, one source); the archive validates the values and answers
 * 400 naming the field.
 */
import { InvalidArgumentError } from 'commander';

export interface DimseAddress {
  aeTitle: string;
  host: string;
  port: number;
}

/** `AE@host:port`, the host possibly an IPv6 address in brackets (`PACS@[::1]:104`). */
export function parseDimse(value: string): DimseAddress {
  const m = /^([^@]{1,16})@(\[[^\]]+\]|[^:@[\]]+):(\d{1,5})$/.exec(value.trim());
  if (!m) throw new InvalidArgumentError(`expected AE@host:port (e.g. PACS@10.0.0.5:104), got "${value}"`);
  const port = Number(m[3]);
  if (port < 1 || port > 65535) throw new InvalidArgumentError(`port ${m[3]} is not 1-65535`);
  return { aeTitle: m[1]!, host: m[2]!.replace(/^\[|\]$/g, ''), port };
}

export interface Window {
  start: string;
  end: string;
}

/** `HH:MM-HH:MM` (an end before the start runs over midnight). */
export function parseWindow(value: string): Window {
  const m = /^(\d{2}:\d{2})-(\d{2}:\d{2})$/.exec(value.trim());
  if (!m) throw new InvalidArgumentError(`expected HH:MM-HH:MM (e.g. 20:00-06:00), got "${value}"`);
  return { start: m[1]!, end: m[2]! };
}

/** YYYY-MM-DD or YYYYMMDD → YYYYMMDD (the API's DICOM date). */
export function parseDate(value: string): string {
  const v = value.trim();
  const m = /^(\d{4})-?(\d{2})-?(\d{2})$/.exec(v);
  if (!m) throw new InvalidArgumentError(`expected a date YYYY-MM-DD, got "${value}"`);
  return `${m[1]}${m[2]}${m[3]}`;
}

export function parseIntArg(value: string): number {
  if (!/^\d+$/.test(value.trim())) throw new InvalidArgumentError(`expected a whole number, got "${value}"`);
  return Number(value);
}

/** A rate in instances per second, or `none` (unlimited). */
export function parseRate(value: string): number | null {
  if (value.trim().toLowerCase() === 'none') return null;
  const n = Number(value);
  if (value.trim() === '' || !Number.isFinite(n)) throw new InvalidArgumentError(`expected instances per second (a number) or "none", got "${value}"`);
  return n;
}

/** `Name: value` (an HTTP header for a DICOMweb source). */
export function parseHeader(value: string): [string, string] {
  const i = value.indexOf(':');
  if (i < 1) throw new InvalidArgumentError(`expected "Name: value", got "${value}"`);
  return [value.slice(0, i).trim(), value.slice(i + 1).trim()];
}

export const collect = <T>(parse: (v: string) => T) => (value: string, previous: T[] | undefined): T[] => [...(previous ?? []), parse(value)];

export interface StartOptions {
  name?: string;
  dimse?: DimseAddress;
  retrieve?: string;
  folder?: string;
  dicomweb?: string;
  header?: Array<[string, string]>;
  from?: string;
  to?: string;
  modality?: string[];
  patientId?: string[];
  accession?: string[];
  study?: string[];
  order?: string;
  maxAssociations?: number;
  rate?: number | null;
  window?: Window[];
  tz?: string;
}

export class UsageError extends Error {
  override name = 'UsageError';
}

/** The body of POST /api/migrations. */
export function createBody(o: StartOptions): Record<string, unknown> {
  const sources = [o.dimse && '--dimse', o.folder && '--folder', o.dicomweb && '--dicomweb'].filter(Boolean);
  if (sources.length !== 1) throw new UsageError(sources.length ? `give one source, not ${sources.join(' and ')}` : 'give a source: --dimse AE@host:port, --folder PATH or --dicomweb URL');
  let source: Record<string, unknown>;
  if (o.dimse) source = { kind: 'dimse', ...o.dimse, retrieve: o.retrieve ?? 'move' };
  else if (o.folder) source = { kind: 'folder', path: o.folder };
  else source = { kind: 'dicomweb', baseUrl: o.dicomweb, ...(o.header?.length ? { headers: Object.fromEntries(o.header) } : {}) };
  if (o.retrieve !== undefined && !o.dimse) throw new UsageError('--retrieve applies to a --dimse source only');
  const scope: Record<string, unknown> = {};
  if (o.from) scope.studyDateFrom = o.from;
  if (o.to) scope.studyDateTo = o.to;
  if (o.modality?.length) scope.modalities = o.modality.map((m) => m.toUpperCase());
  if (o.patientId?.length) scope.patientIds = o.patientId;
  if (o.accession?.length) scope.accessionNumbers = o.accession;
  if (o.study?.length) scope.studyInstanceUids = o.study;
  const throttle = throttleBody(o);
  const name = o.name ?? defaultName(source);
  return {
    name,
    source,
    ...(Object.keys(scope).length ? { scope } : {}),
    ...(o.order ? { order: o.order } : {}),
    ...(Object.keys(throttle).length ? { throttle } : {}),
  };
}

/** The throttle of POST (only what was given) or of PATCH /api/migrations/{id}. */
export function throttleBody(o: Pick<StartOptions, 'maxAssociations' | 'rate' | 'window' | 'tz'> & { always?: boolean }): Record<string, unknown> {
  const t: Record<string, unknown> = {};
  if (o.maxAssociations !== undefined) t.maxAssociations = o.maxAssociations;
  if (o.rate !== undefined) t.maxInstancesPerSecond = o.rate;
  if (o.always) t.windows = [];
  else if (o.window?.length) t.windows = o.window;
  if (o.tz !== undefined) t.timeZone = o.tz;
  return t;
}

function defaultName(source: Record<string, unknown>): string {
  const what = source.kind === 'dimse' ? `${String(source.aeTitle)}@${String(source.host)}:${String(source.port)}` : String(source.path ?? source.baseUrl);
  return `migration from ${what}`.slice(0, 200);
}
