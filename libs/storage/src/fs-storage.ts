/**
 * Filesystem backend. Layout under the root directory:
 *   <root>/<key>           committed objects (key segments are directories)
 *   <root>/.tmp/<uuid>     temporary objects (tempKey ".tmp/<uuid>")
 *
 * Durability: a temporary file is fsynced, and so is `.tmp/`, before `writeTemp` resolves. `commit`
 * hard-links the temporary file to its key (link() fails if the key exists, so nothing is ever
 * overwritten), fsyncs every directory from the key's parent up to the root, and only then unlinks
 * the temporary name: at every moment the bytes have at least one durable name.
 */
import { randomUUID } from 'node:crypto';
import type { Stats } from 'node:fs';
import { constants as fsConstants } from 'node:fs';
import { copyFile, type FileHandle, link, lstat, mkdir, open, readdir, rename, rmdir, stat, unlink } from 'node:fs/promises';
import { dirname, isAbsolute, join, resolve, sep } from 'node:path';
import type { Readable } from 'node:stream';
import {
  type CopiedTemp,
  type FsStorageConfig,
  type ObjectStat,
  type StorageBackend,
  StorageConflictError,
  StorageIntegrityError,
  type StorageLogger,
  StorageNotFoundError,
  type TempObject,
  type WriteOptions,
} from './contract.js';
import {
  assertValidAge,
  assertValidKey,
  assertValidTempKey,
  newTempKey,
  normalizeRange,
  TEMP_DIR,
} from './keys.js';
import { type PooledBytes, readFileHashed, sha256OfFile } from './hash-pool.js';
import { ByteMeter, checkWriteOptions, chunkToBuffer, discard } from './meter.js';
import type { CheckAlgorithm } from './xxh64.js';

export interface FsStorageOptions {
  logger?: StorageLogger;
}

/** Errors of link() meaning "this filesystem has no hard links": fall back to check + rename. */
const NO_HARDLINKS = new Set(['EPERM', 'ENOTSUP', 'EOPNOTSUPP', 'ENOSYS']);
const COMMIT_ATTEMPTS = 5;
const WRITE_BATCH = 1024 * 1024;
const KNOWN_DIRS_MAX = 100_000;

/**
 * Writes all of `buffers` (`length` bytes) at the current position; writev() may write fewer bytes
 * than asked, so the rest is written again. Returns the bytes written.
 */
async function writevFully(handle: FileHandle, buffers: Buffer[], length: number): Promise<number> {
  let pending = buffers;
  let left = length;
  while (left > 0) {
    const { bytesWritten } = await handle.writev(pending);
    if (bytesWritten <= 0) throw new Error('writev() made no progress');
    left -= bytesWritten;
    if (left === 0) break;
    let skip = bytesWritten;
    const rest: Buffer[] = [];
    for (const b of pending) {
      if (skip >= b.length) {
        skip -= b.length;
        continue;
      }
      rest.push(skip > 0 ? b.subarray(skip) : b);
      skip = 0;
    }
    pending = rest;
  }
  return length;
}

function errnoCode(err: unknown): string | undefined {
  if (typeof err === 'object' && err !== null && 'code' in err && typeof err.code === 'string') {
    return err.code;
  }
  return undefined;
}

function isMissing(err: unknown): boolean {
  const code = errnoCode(err);
  return code === 'ENOENT' || code === 'ENOTDIR';
}

async function statOrNull(path: string): Promise<Stats | null> {
  try {
    return await lstat(path);
  } catch (err) {
    if (isMissing(err)) return null;
    throw err;
  }
}

/** Bytes per read when streaming an object out. */
const READ_CHUNK = 1024 * 1024;

export class FsStorage implements StorageBackend {
  readonly id: string;
  readonly kind = 'fs' as const;
  /** Absolute root directory. */
  readonly root: string;
  private readonly tempDir: string;
  private readonly fsync: boolean;
  private readonly logger: StorageLogger | undefined;
  /** Directories that existed at a recent commit (skips a mkdir per object). */
  private readonly knownDirs = new Set<string>();

  constructor(config: FsStorageConfig, options: FsStorageOptions = {}) {
    if (config.kind !== 'fs') throw new TypeError(`FsStorage needs kind "fs", got ${String(config.kind)}`);
    if (!config.id) throw new TypeError('storage id is required');
    if (!config.path) throw new TypeError(`storage ${config.id}: path is required`);
    this.id = config.id;
    this.root = resolve(config.path);
    this.tempDir = join(this.root, TEMP_DIR);
    this.fsync = config.fsync ?? true;
    this.logger = options.logger;
  }

  /** Creates the root and temporary directories (idempotent). */
  async init(): Promise<void> {
    const created = await mkdir(this.tempDir, { recursive: true });
    if (created !== undefined) {
      await this.syncDirChain(this.tempDir, created === this.tempDir ? this.root : dirname(created));
    }
  }

  async writeTemp(data: Readable, options?: WriteOptions): Promise<TempObject> {
    let checked: ReturnType<typeof checkWriteOptions>;
    try {
      checked = checkWriteOptions(options);
    } catch (err) {
      discard(data);
      throw err;
    }
    const tempKey = newTempKey();
    const path = this.tempPath(tempKey);
    const meter = new ByteMeter(checked.headBytes);
    let handle: FileHandle | undefined;
    try {
      handle = await open(path, 'wx');
    } catch (err) {
      discard(data);
      throw err;
    }
    try {
      // Small chunks (network reads) are batched into writes of about WRITE_BATCH bytes, written
      // with writev (no copy into one buffer).
      let batch: Buffer[] = [];
      let batchBytes = 0;
      let written = 0;
      const prefix = checked.prefix;
      if (prefix !== undefined) {
        meter.update(prefix);
        batch.push(prefix);
        batchBytes = prefix.length;
      }
      const inspect = checked.inspect;
      for await (const chunk of data as AsyncIterable<unknown>) {
        const buffer = chunkToBuffer(chunk);
        if (buffer.length === 0) continue;
        inspect?.update(buffer);
        meter.update(buffer);
        batch.push(buffer);
        batchBytes += buffer.length;
        if (batchBytes >= WRITE_BATCH) {
          written += await writevFully(handle, batch, batchBytes);
          batch = [];
          batchBytes = 0;
        }
      }
      inspect?.finish();
      if (batchBytes > 0) written += await writevFully(handle, batch, batchBytes);
      if (written !== meter.size) {
        throw new StorageIntegrityError(this.id, tempKey, `wrote ${written} bytes but ${meter.size} were received`);
      }
      if (this.fsync) await handle.sync();
      await handle.close();
      handle = undefined;
      // The temporary name itself need not survive a crash (an uncommitted object is garbage);
      // commit() makes the final name durable by syncing the target directory.
      return meter.result(tempKey);
    } catch (err) {
      discard(data);
      if (handle !== undefined) await handle.close().catch(() => undefined);
      await unlink(path).catch((cleanupErr: unknown) => {
        if (!isMissing(cleanupErr)) this.warn(`could not remove temporary file ${path}`, cleanupErr);
      });
      throw err;
    }
  }

  async copyTempFrom(source: StorageBackend, sourceKey: string): Promise<CopiedTemp | null> {
    if (!(source instanceof FsStorage)) return null;
    assertValidKey(sourceKey);
    const tempKey = newTempKey();
    const path = this.tempPath(tempKey);
    try {
      // COPYFILE_EXCL: never onto an existing name. libuv copies with copy_file_range/sendfile.
      await copyFile(source.keyPath(sourceKey), path, fsConstants.COPYFILE_EXCL);
    } catch (err) {
      await unlink(path).catch(() => undefined);
      if (isMissing(err) && (await statOrNull(source.keyPath(sourceKey))) === null) throw new StorageNotFoundError(source.id, sourceKey);
      throw err;
    }
    let handle: FileHandle | undefined;
    try {
      handle = await open(path, 'r');
      const info = await handle.stat();
      if (this.fsync) await handle.sync();
      return { tempKey, size: info.size };
    } catch (err) {
      await unlink(path).catch(() => undefined);
      throw err;
    } finally {
      await handle?.close().catch(() => undefined);
    }
  }

  async commit(tempKey: string, key: string): Promise<void> {
    assertValidTempKey(tempKey);
    assertValidKey(key);
    const source = this.tempPath(tempKey);
    const target = this.keyPath(key);
    const targetDir = dirname(target);

    // Directories created here must reach disk too: sync from the target up to the parent of the
    // first directory created (mkdir returns it); an existing chain needs only the target synced.
    let syncUpTo = targetDir;
    for (let attempt = 1; ; attempt++) {
      // A directory this process committed into before is normally still there; when a delete
      // removed it meanwhile, link() fails with ENOENT and the next attempt creates it.
      if (attempt > 1 || !this.knownDirs.has(targetDir)) {
        const created = await mkdir(targetDir, { recursive: true });
        if (created !== undefined) syncUpTo = created === this.root ? this.root : dirname(created);
      }
      try {
        await link(source, target);
        break;
      } catch (err) {
        const code = errnoCode(err);
        if (code === 'EEXIST') {
          // A retried commit after a crash between link() and unlink() finds its own link.
          if (await this.sameFile(source, target)) break;
          if ((await statOrNull(source)) === null) throw new StorageNotFoundError(this.id, tempKey);
          throw new StorageConflictError(this.id, key);
        }
        if (code === 'ENOENT') {
          if ((await statOrNull(source)) === null) throw new StorageNotFoundError(this.id, tempKey);
          // The target directory vanished (a concurrent delete removed it as empty): retry.
          if (attempt < COMMIT_ATTEMPTS) continue;
        }
        if (code !== undefined && NO_HARDLINKS.has(code)) {
          await this.renameNoReplace(source, target, tempKey, key);
          await this.syncDirChain(targetDir, syncUpTo);
          return;
        }
        throw err;
      }
    }
    await this.syncDirChain(targetDir, syncUpTo);
    if (this.knownDirs.size >= KNOWN_DIRS_MAX) this.knownDirs.clear();
    this.knownDirs.add(targetDir);
    try {
      await unlink(source);
    } catch (err) {
      // The object is committed; a leftover temporary name is removed by sweepTemp.
      if (!isMissing(err)) this.warn(`could not remove temporary file ${source}`, err);
    }
  }

  async revoke(tempKey: string): Promise<void> {
    assertValidTempKey(tempKey);
    try {
      await unlink(this.tempPath(tempKey));
    } catch (err) {
      if (!isMissing(err)) throw err;
    }
  }

  async read(key: string, range?: { start: number; end?: number }): Promise<Readable> {
    assertValidKey(key);
    return this.readPath(this.keyPath(key), key, range);
  }

  async readTemp(tempKey: string, range?: { start: number; end?: number }): Promise<Readable> {
    assertValidTempKey(tempKey);
    return this.readPath(this.tempPath(tempKey), tempKey, range);
  }

  private async readPath(path: string, key: string, range?: { start: number; end?: number }): Promise<Readable> {
    const wanted = normalizeRange(range);
    let handle: FileHandle;
    try {
      handle = await open(path, 'r');
    } catch (err) {
      if (isMissing(err) || errnoCode(err) === 'EISDIR') throw new StorageNotFoundError(this.id, key);
      throw err;
    }
    try {
      const info = await handle.stat();
      if (!info.isFile()) throw new StorageNotFoundError(this.id, key);
      if (wanted !== null && wanted.start >= info.size) {
        throw new RangeError(`range start ${wanted.start} is beyond the end of ${key} (size ${info.size})`);
      }
      return handle.createReadStream({
        start: wanted?.start ?? 0,
        end: wanted?.end,
        autoClose: true,
        // Each read is a thread-pool round trip: large reads keep retrieval off that latency.
        highWaterMark: READ_CHUNK,
      });
    } catch (err) {
      await handle.close().catch(() => undefined);
      throw err;
    }
  }

  async readWholeHashed(key: string, expectedSize: number, check: CheckAlgorithm): Promise<PooledBytes | ObjectStat> {
    assertValidKey(key);
    let got: PooledBytes | ObjectStat | null;
    try {
      got = await readFileHashed(this.keyPath(key), expectedSize, check);
    } catch (err) {
      if (isMissing(err) || errnoCode(err) === 'EISDIR') throw new StorageNotFoundError(this.id, key);
      throw err;
    }
    if (got === null) throw new StorageNotFoundError(this.id, key);
    return got;
  }

  async digest(key: string): Promise<{ size: number; sha256: string } | null> {
    assertValidKey(key);
    try {
      return await sha256OfFile(this.keyPath(key));
    } catch (err) {
      if (isMissing(err) || errnoCode(err) === 'EISDIR') return null;
      throw err;
    }
  }

  async stat(key: string): Promise<ObjectStat | null> {
    assertValidKey(key);
    try {
      const info = await stat(this.keyPath(key));
      return info.isFile() ? { size: info.size } : null;
    } catch (err) {
      if (isMissing(err)) return null;
      throw err;
    }
  }

  async delete(key: string): Promise<void> {
    assertValidKey(key);
    const path = this.keyPath(key);
    try {
      await unlink(path);
    } catch (err) {
      if (isMissing(err)) return;
      throw err;
    }
    // Remove directories left empty (a concurrent commit into one of them retries its mkdir).
    for (let dir = dirname(path); dir !== this.root && dir.startsWith(this.root + sep); dir = dirname(dir)) {
      try {
        await rmdir(dir);
      } catch {
        break; // not empty, already gone or not removable: stop here
      }
    }
  }

  async sweepTemp(olderThanMs: number): Promise<number> {
    assertValidAge(olderThanMs);
    const cutoff = Date.now() - olderThanMs;
    let names: string[];
    try {
      names = await readdir(this.tempDir);
    } catch (err) {
      if (isMissing(err)) return 0;
      throw err;
    }
    let removed = 0;
    for (const name of names) {
      const path = join(this.tempDir, name);
      const info = await statOrNull(path);
      if (info === null || !info.isFile() || info.mtimeMs > cutoff) continue;
      try {
        await unlink(path);
        removed++;
      } catch (err) {
        if (!isMissing(err)) throw err;
      }
    }
    return removed;
  }

  async health(): Promise<void> {
    const probe = join(this.tempDir, `health-${randomUUID()}`);
    const payload = Buffer.from(`vna storage probe ${probe}\n`);
    const handle = await open(probe, 'wx+');
    try {
      await handle.writeFile(payload);
      if (this.fsync) await handle.sync();
      const back = Buffer.alloc(payload.length);
      await handle.read(back, 0, back.length, 0);
      if (!back.equals(payload)) throw new Error(`storage ${this.id}: probe file read back differently`);
    } finally {
      await handle.close().catch(() => undefined);
      await unlink(probe).catch(() => undefined);
    }
  }

  /** Absolute path of a committed key (validated by the caller). */
  private keyPath(key: string): string {
    const path = join(this.root, ...key.split('/'));
    if (!path.startsWith(this.root + sep) || isAbsolute(key)) {
      throw new Error(`BUG: key ${key} resolved outside the storage root`);
    }
    return path;
  }

  private tempPath(tempKey: string): string {
    return join(this.root, ...tempKey.split('/'));
  }

  private async sameFile(a: string, b: string): Promise<boolean> {
    const [sa, sb] = await Promise.all([statOrNull(a), statOrNull(b)]);
    return sa !== null && sb !== null && sa.dev === sb.dev && sa.ino === sb.ino;
  }

  /** For filesystems without hard links: rename, after checking that nothing is at the target. */
  private async renameNoReplace(source: string, target: string, tempKey: string, key: string): Promise<void> {
    if ((await statOrNull(target)) !== null) throw new StorageConflictError(this.id, key);
    try {
      await rename(source, target);
    } catch (err) {
      if (isMissing(err) && (await statOrNull(source)) === null) {
        throw new StorageNotFoundError(this.id, tempKey);
      }
      throw err;
    }
  }

  private async syncDir(dir: string): Promise<void> {
    const handle = await open(dir, 'r');
    try {
      await handle.sync();
    } finally {
      await handle.close();
    }
  }

  /** fsync `from` and each parent directory up to and including `to`. */
  private async syncDirChain(from: string, to: string): Promise<void> {
    if (!this.fsync) return;
    for (let dir = from; ; dir = dirname(dir)) {
      await this.syncDir(dir);
      if (dir === to || dirname(dir) === dir) break;
    }
  }

  private warn(message: string, err: unknown): void {
    const detail = err instanceof Error ? err.message : String(err);
    this.logger?.warn(`storage ${this.id}: ${message}: ${detail}`);
  }
}
