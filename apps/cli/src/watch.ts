/**
 * Follow a migration until it ends: a live bar (cli-progress) on a terminal, a plain line every
 * few seconds otherwise. Every figure shown is the API's (GET /api/migrations/{id}); nothing is
 * estimated here.
 */
import cliProgress from 'cli-progress';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Migration, VnaApi } from './api.js';
import { barPayload, processed, progressLine, TERMINAL } from './format.js';

export interface WatchOptions {
  /** A bar (terminal) or plain lines. */
  tty: boolean;
  /** How often the API is asked (ms). */
  pollMs: number;
  /** Plain mode: a line at most this often (ms), and at every state change. */
  lineMs: number;
  out: NodeJS.WritableStream;
  signal?: AbortSignal;
}

/** Polls until the job is COMPLETED, FAILED or CANCELED (or the signal aborts); returns the last view. */
export async function watch(api: VnaApi, id: string, o: WatchOptions): Promise<Migration> {
  let m = await api.get(id);
  if (o.tty) return watchBar(api, id, m, o);
  let lastLine = -Infinity;
  let lastState = '';
  for (;;) {
    const now = performance.now();
    if (TERMINAL.includes(m.state) || m.state !== lastState || now - lastLine >= o.lineMs) {
      o.out.write(`${new Date().toISOString()} ${progressLine(m)}\n`);
      lastLine = now;
      lastState = m.state;
    }
    if (TERMINAL.includes(m.state) || o.signal?.aborted) return m;
    await sleep(o.pollMs, undefined, { signal: o.signal }).catch(() => undefined);
    if (o.signal?.aborted) return m;
    m = await api.get(id);
  }
}

async function watchBar(api: VnaApi, id: string, first: Migration, o: WatchOptions): Promise<Migration> {
  const bar = new cliProgress.SingleBar(
    {
      format: `migration ${id} |{bar}| {percentage}% {value}/{total} inst | studies {studies} (failed {failed}) | {rate} inst/s {mbps} MB/s | ETA {remaining_time} | {elapsed_time} | {state}`,
      stream: o.out,
      emptyOnZero: true,
      hideCursor: true,
      fps: 5,
    },
    cliProgress.Presets.shades_classic,
  );
  let m = first;
  bar.start(m.figures.instances.expected, processed(m), barPayload(m));
  try {
    while (!TERMINAL.includes(m.state) && !o.signal?.aborted) {
      await sleep(o.pollMs, undefined, { signal: o.signal }).catch(() => undefined);
      if (o.signal?.aborted) break;
      m = await api.get(id);
      bar.setTotal(m.figures.instances.expected);
      bar.update(processed(m), barPayload(m));
    }
  } finally {
    bar.stop();
  }
  return m;
}
