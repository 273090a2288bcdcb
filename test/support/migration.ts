/**
 * Helpers of the migration e2e tests: the admin API, waiting for a job's state, the SHA-256 of
 * every archived object, and generated legacy studies.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { expect } from 'vitest';
import { type Archive, datasetBytes, sha256, sleep, type StudySpec, uid } from './archive.js';

export interface Json {
  [k: string]: unknown;
}

export async function api(a: Archive, method: string, p: string, body?: unknown): Promise<{ status: number; json: Json; text: string; type: string }> {
  const r = await fetch(`${a.http}${p}`, {
    method,
    headers: body === undefined ? {} : { 'Content-Type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await r.text();
  let json: Json = {};
  try {
    json = JSON.parse(text) as Json;
  } catch {
    // CSV and empty bodies
  }
  return { status: r.status, json, text, type: r.headers.get('content-type') ?? '' };
}

export async function waitState(a: Archive, id: string, states: string[], timeoutMs = 180_000): Promise<Json> {
  const t0 = Date.now();
  let last: Json = {};
  while (Date.now() - t0 < timeoutMs) {
    const r = await api(a, 'GET', `/api/migrations/${id}`);
    last = r.json;
    if (states.includes(last.state as string)) return last;
    await sleep(200);
  }
  throw new Error(`migration ${id} not in ${states.join('/')} after ${timeoutMs} ms: ${JSON.stringify(last)}\n${a.logTail()}`);
}

/** How many instances the archive holds. */
export async function instanceCount(a: Archive): Promise<number> {
  return (await a.db.query(`SELECT count(*)::int AS n FROM instance`)).rows[0].n as number;
}

/**
 * For a job of one study: waits until its first instance is in the archive, pauses the job (the
 * answer says PAUSED) and waits until its ledger row is back to `pending`.
 */
export async function pauseAfterFirstInstance(a: Archive, id: string): Promise<void> {
  for (let i = 0; i < 2400 && (await instanceCount(a)) < 1; i++) await sleep(25);
  expect((await api(a, 'POST', `/api/migrations/${id}/pause`)).json.state).toBe('PAUSED');
  let row: { state: string } = { state: '' };
  for (let i = 0; i < 600; i++) {
    row = (await a.db.query(`SELECT state FROM migration_study WHERE migration_fk = $1`, [id])).rows[0];
    if (row.state === 'pending') break;
    await sleep(50);
  }
  expect(row.state).toBe('pending');
}

/** SHA-256 of every OK location in the archive, by SOP Instance UID (duplicates fail): of the data set, or (`whole`) of the whole file. */
export async function archivedDatasets(a: Archive, whole = false): Promise<Map<string, string>> {
  const r = await a.db.query(
    `SELECT i.sop_iuid, l.object_key FROM instance i JOIN location l ON l.instance_fk = i.id AND l.status = 'OK'`,
  );
  const out = new Map<string, string>();
  for (const row of r.rows as Array<{ sop_iuid: string; object_key: string }>) {
    expect(out.has(row.sop_iuid), `two OK locations for ${row.sop_iuid}`).toBe(false);
    const bytes = readFileSync(path.join(a.dataDir, 'storage/hot', row.object_key));
    out.set(row.sop_iuid, sha256(whole ? bytes : datasetBytes(bytes)));
  }
  return out;
}

/** A generated legacy study: one series per [modality, instances]; the patient is named `<family>^<patientId>`. */
export const legacyStudy = (patientId: string, date: string, series: Array<[string, number]>, family = 'Legacy'): StudySpec => ({
  patientId,
  patientName: `${family}^${patientId}`,
  studyUid: uid(),
  studyDate: date,
  accession: `ACC${patientId}`,
  series: series.map(([modality, instances], k) => ({ seriesUid: uid(), modality, number: k + 1, instances })),
});
