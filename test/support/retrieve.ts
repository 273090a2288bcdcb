/**
 * Retrieval helpers for e2e specs: a whole study through WADO-RS or C-GET, as SOP UID -> SHA-256 of
 * each data set; the digests of a multipart body or of a folder of received files; the final
 * response of a `movescu -d` / `getscu -d` run.
 */
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { type Archive, datasetBytes, metaValue, run, sha256 } from './archive.js';

/** Accept of a WADO-RS request for the objects as stored. */
export const WADO_ACCEPT = { Accept: 'multipart/related; type="application/dicom"; transfer-syntax=*' };

/** A multipart/related body of Part 10 objects: SOP Instance UID -> digest of each part's data set. */
export function multipartDigests(body: Buffer, contentType: string): Map<string, string> {
  const boundary = /boundary="?([^";]+)"?/.exec(contentType)![1]!;
  const out = new Map<string, string>();
  for (const p of body.toString('latin1').split(`--${boundary}`).slice(1, -1)) {
    const raw = Buffer.from(p, 'latin1');
    const part = raw.subarray(raw.indexOf('\r\n\r\n') + 4, raw.length - 2);
    out.set(metaValue(part, 0x0003)!, sha256(datasetBytes(part)));
  }
  return out;
}

/**
 * WADO-RS of a whole study (stored transfer syntax): status, Retry-After, the body as text when not
 * 200, and SOP Instance UID -> digest of each part's data set (empty when not 200).
 */
export async function wadoStudyDigests(
  a: Archive,
  study: string,
): Promise<{ status: number; retryAfter: string | null; text: string; digests: Map<string, string> }> {
  const r = await fetch(`${a.http}/dicom-web/studies/${study}`, { headers: WADO_ACCEPT });
  const body = Buffer.from(await r.arrayBuffer());
  return {
    status: r.status,
    retryAfter: r.headers.get('retry-after'),
    text: r.status === 200 ? '' : body.toString('utf8'),
    digests: r.status === 200 ? multipartDigests(body, r.headers.get('content-type') ?? '') : new Map(),
  };
}

/** SOP Instance UID -> data set digest of every Part 10 file in `dir` (what a getscu or storescp received). */
export function folderDigests(dir: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const f of readdirSync(dir)) {
    const b = readFileSync(path.join(dir, f));
    out.set(metaValue(b, 0x0003)!, sha256(datasetBytes(b)));
  }
  return out;
}

/** C-GET of a whole study with getscu: exit code and SOP Instance UID -> digest of each file's data set. */
export async function cgetStudyDigests(a: Archive, study: string): Promise<{ code: number; stderr: string; digests: Map<string, string> }> {
  const dir = mkdtempSync(path.join(tmpdir(), 'vna-get-'));
  const g = await run('getscu', ['-S', '-od', dir, '-k', 'QueryRetrieveLevel=STUDY', '-k', `StudyInstanceUID=${study}`, ...a.dcmArgs('GETSCU')]);
  const digests = folderDigests(dir);
  rmSync(dir, { recursive: true, force: true });
  return { code: g.code, stderr: g.stderr, digests };
}

/** The outcome of a C-MOVE / C-GET run with `movescu -d` / `getscu -d`. */
export interface RetrieveOutcome {
  code: number;
  /** Final DIMSE status of the C-MOVE/C-GET. */
  status: number | null;
  completed: number;
  failed: number;
  warning: number;
  /** Pending responses. */
  pending: number;
  /** Pending responses sent before any sub-operation finished (e.g. while a restore ran). */
  pendingBeforeFirst: number;
  out: string;
}

function suboperations(block: string, label: string): number {
  const m = new RegExp(`${label} Suboperations\\s*: (\\d+|none)`).exec(block);
  return m && m[1] !== 'none' ? Number(m[1]) : 0;
}

/** Parse `movescu -d` / `getscu -d` output: the last C-MOVE/C-GET RSP block is the final response. */
export function retrieveOutcome(r: { code: number; stdout: string; stderr: string }, kind: 'MOVE' | 'GET'): RetrieveOutcome {
  const out = r.stderr + r.stdout;
  const blocks = out.split(`Message Type                  : C-${kind} RSP`).slice(1);
  const last = blocks.at(-1) ?? '';
  const st = /DIMSE Status\s*: 0x([0-9a-fA-F]{4})/.exec(last);
  const pending = blocks.filter((b) => /DIMSE Status\s*: 0xff00/i.test(b));
  return {
    code: r.code,
    status: st ? parseInt(st[1]!, 16) : null,
    completed: suboperations(last, 'Completed'),
    failed: suboperations(last, 'Failed'),
    warning: suboperations(last, 'Warning'),
    pending: pending.length,
    pendingBeforeFirst: pending.filter(
      (b) => /Remaining Suboperations\s*: (\d+)/.exec(b) && suboperations(b, 'Completed') === 0 && suboperations(b, 'Failed') === 0,
    ).length,
    out,
  };
}

/** Whether something listens on 127.0.0.1:port. */
export function canConnect(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect(port, '127.0.0.1');
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
  });
}
