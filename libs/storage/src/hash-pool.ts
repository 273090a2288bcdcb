/**
 * Hashing off the event loop: a small pool of hashing threads that read and hash files. Retrieval
 * reads its objects through them into pooled memory and checks them there (readFileHashed, with
 * the recorded XXH64, or SHA-256 where none is recorded), tiering hashes its copies with SHA-256
 * (sha256OfFile). A buffer's memory can also be hashed there (transferred and handed back); the
 * pool uses that to start its threads.
 */
import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';
import { type CheckAlgorithm, XXHASH_MODULE } from './xxh64.js';

const WORKER_SOURCE = `
const { parentPort, workerData } = require('node:worker_threads');
const { createHash } = require('node:crypto');
const { xxh64 } = require(workerData.xxhashModule);
const { openSync, readSync, closeSync, fstatSync } = require('node:fs');
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
// Reads the whole file into the shared memory it was given (the file must be \`size\` bytes) and
// hashes it there (\`check\`: xxh64 or sha256): the event loop sends a path and gets back a
// digest, never touching the bytes.
function readInto(path, shared, size, check) {
  const fd = openSync(path, 'r');
  try {
    const info = fstatSync(fd);
    if (!info.isFile()) return { notFile: true };
    if (info.size !== size) return { size: info.size };
    const view = new Uint8Array(shared, 0, size);
    let filled = 0;
    while (filled < size) {
      const n = readSync(fd, view, filled, size - filled, filled);
      if (n === 0) return { size: filled };
      filled += n;
    }
    // The same 16-digit form as xxh64Hex (xxh64.ts), which this thread cannot import.
    const digest = check === 'xxh64'
      ? xxh64(view).toString(16).padStart(16, '0')
      : createHash('sha256').update(view).digest('hex');
    return { size, digest };
  } finally {
    closeSync(fd);
  }
}
parentPort.on('message', ({ id, buffer, path, shared, size, check }) => {
  if (shared !== undefined) {
    try {
      parentPort.postMessage({ id, read: readInto(path, shared, size, check) });
    } catch (e) {
      parentPort.postMessage({ id, fileError: { code: e && e.code, message: String(e && e.message) } });
    }
    return;
  }
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
  | { id: number; read: ReadReply }
  | { id: number; file: { size: number; sha256: string } }
  | { id: number; fileError: { code?: string; message: string } };

/** What a thread answers to a whole-file read: `digest` only when the file had the expected size. */
interface ReadReply {
  size: number;
  digest?: string;
  notFile?: boolean;
}

interface HashSlot {
  worker: Worker;
  pending: number;
}

interface HashJob {
  slot: HashSlot;
  resolve: (r: WorkerReply) => void;
  reject: (e: Error) => void;
}

/** The error for a reply that is not the answer asked for: the file's errno error, or a bug. */
function failure(reply: WorkerReply, asked: string): Error {
  if ('fileError' in reply) return Object.assign(new Error(reply.fileError.message), { code: reply.fileError.code });
  return new Error(`BUG: hashing thread answered ${asked} with something else`);
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

  /** Size and SHA-256 of a file, read and hashed on the thread. Rejects with the errno code set. */
  async hashFile(path: string): Promise<{ size: number; sha256: string }> {
    const reply = await this.post(this.slot(), { path });
    if ('file' in reply) return reply.file;
    throw failure(reply, 'a file hash');
  }

  /** Read a file of `size` bytes into `shared` and hash it, on the thread. Rejects with the errno code set. */
  async readInto(path: string, shared: SharedArrayBuffer, size: number, check: CheckAlgorithm): Promise<ReadReply> {
    const reply = await this.post(this.slot(), { path, shared, size, check });
    if ('read' in reply) return reply.read;
    throw failure(reply, 'a read');
  }

  private async hashOn(slot: HashSlot, buffer: ArrayBuffer): Promise<{ buffer: ArrayBuffer; sha256: string }> {
    const reply = await this.post(slot, { buffer }, [buffer]);
    if ('buffer' in reply) return reply;
    throw new Error('BUG: hashing thread answered a buffer hash without the buffer');
  }

  private post(
    slot: HashSlot,
    message: { buffer?: ArrayBuffer; path?: string; shared?: SharedArrayBuffer; size?: number; check?: CheckAlgorithm },
    transfer: ArrayBuffer[] = [],
  ): Promise<WorkerReply> {
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
    const slot: HashSlot = { worker: new Worker(WORKER_SOURCE, { eval: true, workerData: { xxhashModule: XXHASH_MODULE } }), pending: 0 };
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
  pool ??= new HashWorkers(Math.max(2, Math.min(4, availableParallelism() - 1)));
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

/**
 * Reusable shared memory for whole-object reads (retrieval): objects are read into it by a
 * hashing thread, sent from it, and the memory goes back here once the send is done. Reusing it
 * spares the garbage collector hundreds of MB per study retrieval (fresh 0.5 MB buffers per
 * object cost a third of the event loop in a WADO-RS profile). Memory is handed out in size
 * classes (powers of two and their 1.5 multiples); at most POOL_MAX_BYTES are kept idle.
 */
class SharedSlabs {
  private readonly idle = new Map<number, SharedArrayBuffer[]>();
  private idleBytes = 0;

  constructor(private readonly maxIdleBytes: number) {}

  take(size: number): SharedArrayBuffer {
    const cls = SharedSlabs.sizeClass(size);
    const free = this.idle.get(cls);
    const slab = free?.pop();
    if (slab) {
      this.idleBytes -= cls;
      return slab;
    }
    return new SharedArrayBuffer(cls);
  }

  give(slab: SharedArrayBuffer): void {
    const cls = slab.byteLength;
    if (cls !== SharedSlabs.sizeClass(cls) || this.idleBytes + cls > this.maxIdleBytes) return; // dropped: the GC frees it
    let free = this.idle.get(cls);
    if (!free) this.idle.set(cls, (free = []));
    free.push(slab);
    this.idleBytes += cls;
  }

  static sizeClass(size: number): number {
    let cls = 64 * 1024;
    for (;;) {
      if (size <= cls) return cls;
      if (size <= cls * 1.5) return cls * 1.5;
      cls *= 2;
    }
  }
}

const POOL_MAX_BYTES = 64 * 1024 * 1024;
let slabs: SharedSlabs | undefined;

/**
 * Bytes of a whole object read into pooled memory, with their digest (of the algorithm asked
 * for, lower-case hex). `release()` hands the
 * memory back for reuse: call it once nothing refers to `bytes` any more (for a socket: in the
 * write's callback, when the kernel has the bytes), never before. Calling it twice is harmless;
 * not calling it only costs the reuse.
 */
export interface PooledBytes {
  bytes: Buffer;
  digest: string;
  release(): void;
}

/**
 * Read a whole file of `expectedSize` bytes into pooled memory and hash it (`check`), both on a
 * hashing thread: the event loop neither reads nor hashes nor allocates. Resolves `{ size }` when the
 * file has another size (nothing read), `null` when the path is not a regular file. Rejects like
 * fs does (`code` ENOENT for a missing file), or if the thread failed.
 */
export async function readFileHashed(
  path: string,
  expectedSize: number,
  check: CheckAlgorithm,
): Promise<PooledBytes | { size: number } | null> {
  slabs ??= new SharedSlabs(POOL_MAX_BYTES);
  const pool = slabs;
  const shared = pool.take(Math.max(1, expectedSize));
  let got: ReadReply;
  try {
    got = await hashWorkers().readInto(path, shared, expectedSize, check);
  } catch (e) {
    // A failed thread may have stopped in the middle of writing: this memory is not reused.
    if ((e as NodeJS.ErrnoException).code) pool.give(shared);
    throw e;
  }
  if (got.notFile) {
    pool.give(shared);
    return null;
  }
  if (got.digest === undefined) {
    pool.give(shared);
    return { size: got.size };
  }
  let released = false;
  return {
    bytes: Buffer.from(shared, 0, expectedSize),
    digest: got.digest,
    release: () => {
      if (released) return;
      released = true;
      pool.give(shared);
    },
  };
}
