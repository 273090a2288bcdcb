/**
 * Helpers of the tiering e2e tests: JSON API calls, waiting on database/API conditions (never on
 * time alone), study moves, BullMQ job presence.
 */
import { type Archive, run, sleep } from './archive.js';

/** A JSON API request: method (GET), JSON body, and who makes the change (`X-User`). */
export interface ApiInit {
  method?: string;
  body?: unknown;
  user?: string;
}

/** A JSON API call: status and the parsed body (undefined when empty). */
export async function api<T>(a: Archive, p: string, init?: ApiInit): Promise<{ status: number; body: T }> {
  const headers: Record<string, string> = {};
  if (init?.body !== undefined) headers['Content-Type'] = 'application/json';
  if (init?.user) headers['X-User'] = init.user;
  const r = await fetch(`${a.http}${p}`, { method: init?.method ?? 'GET', headers, body: init?.body === undefined ? undefined : JSON.stringify(init.body) });
  const text = await r.text();
  return { status: r.status, body: (text ? JSON.parse(text) : undefined) as T };
}

/** Polls `fn` until it returns a value (not undefined); fails with the archive's log tail after `timeoutMs`. */
export async function until<T>(what: string, a: Archive, fn: () => Promise<T | undefined>, timeoutMs = 60_000): Promise<T> {
  const t0 = Date.now();
  while (Date.now() - t0 < timeoutMs) {
    const v = await fn();
    if (v !== undefined) return v;
    await sleep(100);
  }
  throw new Error(`${what}: not in time\n${a.logTail()}`);
}

/** POST /api/studies/{uid}/move and wait for the move to complete. */
export async function moveStudy(a: Archive, study: string, targetTier: string): Promise<void> {
  const r = await api<{ moveId: string }>(a, `/api/studies/${study}/move`, { method: 'POST', body: { targetTier } });
  if (r.status !== 202) throw new Error(`move of ${study} to ${targetTier}: ${r.status} ${JSON.stringify(r.body)}`);
  await until(`move of ${study} to ${targetTier}`, a, async () => {
    const m = (await api<{ state: string; error: string | null }>(a, `/api/storage/moves/${r.body.moveId}`)).body;
    if (m.state === 'FAILED' || m.state === 'ABORTED') throw new Error(`move of ${study} ${m.state}: ${m.error}`);
    return m.state === 'COMPLETED' ? m : undefined;
  });
}

/** Whether a BullMQ job with this id exists (waiting, delayed, running) in the archive's Redis; completed jobs are removed. */
export async function jobExists(a: Archive, queue: string, jobId: string): Promise<boolean> {
  const r = await run('redis-cli', ['-u', a.redisUrl, 'EXISTS', `bull:${queue}:${jobId}`]);
  return r.stdout.trim() === '1';
}
