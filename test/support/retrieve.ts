/** Retrieval helpers for e2e specs: a whole study through WADO-RS or C-GET, as SOP UID -> SHA-256 of each data set. */
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { type Archive, datasetBytes, metaValue, run, sha256 } from './archive.js';

/** WADO-RS of a whole study (stored transfer syntax): status and SOP Instance UID -> digest of each part's data set. */
export async function wadoStudyDigests(a: Archive, study: string): Promise<{ status: number; digests: Map<string, string> }> {
  const r = await fetch(`${a.http}/dicom-web/studies/${study}`, { headers: { Accept: 'multipart/related; type="application/dicom"; transfer-syntax=*' } });
  const digests = new Map<string, string>();
  if (r.status !== 200) return { status: r.status, digests };
  const body = Buffer.from(await r.arrayBuffer());
  const boundary = /boundary="?([^";]+)"?/.exec(r.headers.get('content-type') ?? '')![1]!;
  for (const p of body.toString('latin1').split(`--${boundary}`).slice(1, -1)) {
    const raw = Buffer.from(p, 'latin1');
    const part = raw.subarray(raw.indexOf('\r\n\r\n') + 4, raw.length - 2);
    digests.set(metaValue(part, 0x0003)!, sha256(datasetBytes(part)));
  }
  return { status: r.status, digests };
}

/** C-GET of a whole study with getscu: exit code and SOP Instance UID -> digest of each file's data set. */
export async function cgetStudyDigests(a: Archive, study: string): Promise<{ code: number; stderr: string; digests: Map<string, string> }> {
  const dir = mkdtempSync(path.join(tmpdir(), 'vna-get-'));
  const g = await run('getscu', ['-S', '-od', dir, '-k', 'QueryRetrieveLevel=STUDY', '-k', `StudyInstanceUID=${study}`, ...a.dcmArgs('GETSCU')]);
  const digests = new Map<string, string>();
  for (const f of readdirSync(dir)) {
    const b = readFileSync(path.join(dir, f));
    digests.set(metaValue(b, 0x0003)!, sha256(datasetBytes(b)));
  }
  rmSync(dir, { recursive: true, force: true });
  return { code: g.code, stderr: g.stderr, digests };
}
