/**
 * SHA-256 off the event loop: a small pool of hashing threads that take a buffer's memory
 * (transferred, not copied) and hand it back with its digest. Retrieval verifies objects with it,
 * tiering its copies.
 */
import { createHash } from 'node:crypto';
import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';

/** Below this size a SHA-256 on the event loop is cheaper than a round trip to a hashing thread. */
const HASH_OFF_THREAD_MIN = 128 * 1024;

/**
 * SHA-256 of `bytes` (lower-case hex). Large buffers are hashed on a worker thread: the buffer's
 * memory is transferred there and back (no copy), so the event loop only sends and receives a
 * message while the digest runs in parallel with it. The returned `bytes` hold the same bytes and
 * replace the argument, which is detached once handed over. Resolves undefined if the hashing
 * thread failed: the argument's bytes are then gone, and the caller must read the object again.
 */
export async function sha256Of(bytes: Buffer): Promise<{ bytes: Buffer; sha256: string } | undefined> {
  if (bytes.length >= HASH_OFF_THREAD_MIN && ownsArrayBuffer(bytes)) {
    const hashed = await hashWorkers()
      .hash(bytes.buffer as ArrayBuffer)
      .catch(() => undefined);
    return hashed && { bytes: Buffer.from(hashed.buffer), sha256: hashed.sha256 };
  }
  return { bytes, sha256: sha256InPlace(bytes) };
}

/** SHA-256 on the event loop (lower-case hex). */
export function sha256InPlace(bytes: Buffer): string {
  return createHash('sha256').update(bytes).digest('hex');
}

function ownsArrayBuffer(b: Buffer): boolean {
  return b.buffer instanceof ArrayBuffer && b.byteOffset === 0 && b.byteLength === b.buffer.byteLength;
}

const WORKER_SOURCE = `
const { parentPort } = require('node:worker_threads');
const { createHash } = require('node:crypto');
const { openSync, readSync, closeSync } = require('node:fs');
const chunk = Buffer.allocUnsafe(1024 * 1024);
function hashFile(path) {
  const fd = openSync(path, 'r');
  try {
    const hash = createHash('sha256');
    let size = 0;
    for (;;) {
      const n = readSync(fd, chunk, 0, chunk.length, null);
      if (n === 0) break;
      hash.update(chunk.subarray(0, n));
      size += n;
    }
    return { size, sha256: hash.digest('hex') };
  } finally {
    closeSync(fd);
  }
}
parentPort.on('message', ({ id, buffer, path }) => {
  if (path !== undefined) {
    try {
      parentPort.postMessage({ id, file: hashFile(path) });
    } catch (e) {
      parentPort.postMessage({ id, fileError: { code: e && e.code, message: String(e && e.message) } });
    }
    return;
  }
  const sha256 = createHash('sha256').update(new Uint8Array(buffer)).digest('hex');
  parentPort.postMessage({ id, buffer, sha256 }, [buffer]);
});
`;

type WorkerReply =
  | { id: number; buffer: ArrayBuffer; sha256: string }
  | { id: number; file: { size: number; sha256: string } }
  | { id: number; fileError: { code?: string; message: string } };

interface HashSlot {
  worker: Worker;
  pending: number;
}

interface HashJob {
  slot: HashSlot;
  resolve: (r: WorkerReply) => void;
  reject: (e: Error) => void;
}

/** A small pool of hashing threads (started on first use; never keeps the process alive). */
class HashWorkers {
  private readonly slots: HashSlot[] = [];
  private readonly jobs = new Map<number, HashJob>();
  private nextId = 1;

  constructor(private readonly size: number) {}

  /** Start every thread and hash once on each, so the first real hash finds them running. */
  async warm(): Promise<void> {
    while (this.slots.length < this.size) this.slots.push(this.startSlot());
    await Promise.all(this.slots.map((slot) => this.hashOn(slot, new ArrayBuffer(64))));
  }

  hash(buffer: ArrayBuffer): Promise<{ buffer: ArrayBuffer; sha256: string }> {
    return this.hashOn(this.slot(), buffer);
  }

  /** Size and SHA-256 of a file, read and hashed on the thread. Rejects with the errno code set. */
  async hashFile(path: string): Promise<{ size: number; sha256: string }> {
    const reply = await this.post(this.slot(), { path });
    if ('file' in reply) return reply.file;
    if ('fileError' in reply) throw Object.assign(new Error(reply.fileError.message), { code: reply.fileError.code });
    throw new Error('BUG: hashing thread answered a file hash with a buffer');
  }

  private async hashOn(slot: HashSlot, buffer: ArrayBuffer): Promise<{ buffer: ArrayBuffer; sha256: string }> {
    const reply = await this.post(slot, { buffer }, [buffer]);
    if ('buffer' in reply) return reply;
    throw new Error('BUG: hashing thread answered a buffer hash without the buffer');
  }

  private post(slot: HashSlot, message: { buffer?: ArrayBuffer; path?: string }, transfer: ArrayBuffer[] = []): Promise<WorkerReply> {
    return new Promise((resolve, reject) => {
      const id = this.nextId++;
      this.jobs.set(id, { slot, resolve, reject });
      slot.pending++;
      try {
        slot.worker.postMessage({ id, ...message }, transfer);
      } catch (e) {
        this.settle(id)?.reject(e instanceof Error ? e : new Error(String(e)));
      }
    });
  }

  private settle(id: number): HashJob | undefined {
    const job = this.jobs.get(id);
    if (!job) return undefined;
    this.jobs.delete(id);
    job.slot.pending--;
    return job;
  }

  private slot(): HashSlot {
    const idle = this.slots.find((w) => w.pending === 0);
    if (idle) return idle;
    if (this.slots.length >= this.size) return this.slots.reduce((a, b) => (b.pending < a.pending ? b : a));
    const slot = this.startSlot();
    this.slots.push(slot);
    return slot;
  }

  private startSlot(): HashSlot {
    const slot: HashSlot = { worker: new Worker(WORKER_SOURCE, { eval: true }), pending: 0 };
    slot.worker.unref();
    slot.worker.on('message', (m: WorkerReply) => this.settle(m.id)?.resolve(m));
    const fail = (e: Error) => {
      const i = this.slots.indexOf(slot);
      if (i >= 0) this.slots.splice(i, 1);
      for (const [id, job] of this.jobs) if (job.slot === slot) this.settle(id)?.reject(e);
    };
    slot.worker.on('error', fail);
    slot.worker.on('exit', (code) => fail(new Error(`hashing thread exited with code ${code}`)));
    return slot;
  }
}

let pool: HashWorkers | undefined;
function hashWorkers(): HashWorkers {
  pool ??= new HashWorkers(Math.max(1, Math.min(2, availableParallelism() - 1)));
  return pool;
}


/** Start the hashing threads now, so the first hash does not pay for a thread's start-up. */
export function warmHashing(): Promise<void> {
  return hashWorkers().warm();
}

/**
 * Size and SHA-256 of a file, read and hashed on a hashing thread (the event loop only sends the
 * path). Rejects like fs does (`code` ENOENT for a missing file), or if the thread failed.
 */
export function sha256OfFile(path: string): Promise<{ size: number; sha256: string }> {
  return hashWorkers().hashFile(path);
}
