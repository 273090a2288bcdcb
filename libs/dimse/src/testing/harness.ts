/**
 * Test support: a DimseServer whose C-STORE handler writes data sets to a directory while hashing
 * them, recording what it received.
 */
import { createHash } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { join } from 'node:path';
import { Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { DimseServiceHandlers, StoreRequest } from '../contract.js';
import { type DimseLogger, silentLogger } from '../logger.js';
import { DimseServer, type DimseServerOptions } from '../server.js';

export interface ReceivedObject {
  request: StoreRequest;
  sha256: string;
  length: number;
  path: string;
}

export interface TestServer {
  server: DimseServer;
  port: number;
  aeTitle: string;
  received: Map<string, ReceivedObject>;
  storeCalls: number;
  close(): Promise<void>;
}

/** Logger collecting messages (tests can assert on warnings/errors). */
export function memoryLogger(): DimseLogger & { lines: string[] } {
  const lines: string[] = [];
  return {
    lines,
    log: (m) => lines.push(`log ${m}`),
    warn: (m) => lines.push(`warn ${m}`),
    error: (m) => lines.push(`error ${m}`),
  };
}

/** A C-STORE handler that writes each data set to `dir` and records its SHA-256 in `received`. */
export function hashingStoreHandler(dir: string, received: Map<string, ReceivedObject>): NonNullable<DimseServiceHandlers['onStore']> {
  return async (req, dataset) => {
    const hash = createHash('sha256');
    let length = 0;
    const path = join(dir, `${req.affectedSopInstanceUid}.ds`);
    await pipeline(
      dataset,
      new Transform({
        transform(chunk: Buffer, _enc, cb) {
          hash.update(chunk);
          length += chunk.length;
          cb(null, chunk);
        },
      }),
      createWriteStream(path),
    );
    received.set(req.affectedSopInstanceUid, { request: req, sha256: hash.digest('hex'), length, path });
    return { status: 0 };
  };
}

export async function startTestServer(
  dir: string,
  handlers: Partial<DimseServiceHandlers> | ((store: NonNullable<DimseServiceHandlers['onStore']>) => Partial<DimseServiceHandlers>) = {},
  options: Partial<DimseServerOptions> = {},
): Promise<TestServer> {
  const received = new Map<string, ReceivedObject>();
  const state = { storeCalls: 0 };
  const hashing = hashingStoreHandler(dir, received);
  const onStore: NonNullable<DimseServiceHandlers['onStore']> = (req, ds) => {
    state.storeCalls++;
    return hashing(req, ds);
  };
  const extra = typeof handlers === 'function' ? handlers(onStore) : handlers;
  const server = new DimseServer({
    aeTitle: 'VNA',
    port: 0,
    host: '127.0.0.1',
    logger: silentLogger,
    ...options,
    handlers: { onStore, ...extra },
  });
  const address = await server.listen();
  return {
    server,
    port: address.port,
    aeTitle: 'VNA',
    received,
    get storeCalls() {
      return state.storeCalls;
    },
    close: () => server.close(2000),
  };
}
