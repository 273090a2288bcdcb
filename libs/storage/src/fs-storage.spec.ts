/** FsStorage specifics: on-disk layout, fsync calls, crash-retry of commit, directory pruning. */
import { createHash, randomBytes } from 'node:crypto';
import { link, mkdir, mkdtemp, open, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { InvalidStorageKeyError, StorageConflictError } from './contract.js';
import { FsStorage } from './fs-storage.js';

let base: string;
let root: string;
let storage: FsStorage;

beforeEach(async () => {
  base = await mkdtemp(join(tmpdir(), 'vna-fs-spec-'));
  root = join(base, 'nested', 'store');
  storage = new FsStorage({ id: 'hot', kind: 'fs', path: root });
  await storage.init();
});
afterEach(async () => {
  vi.restoreAllMocks();
  await rm(base, { recursive: true, force: true });
});

function bytes(data: Buffer): Readable {
  return Readable.from([data], { objectMode: false });
}

const sha256 = (data: Buffer) => createHash('sha256').update(data).digest('hex');

describe('FsStorage', () => {
  it('creates its root and .tmp/ on init, and keeps objects at <root>/<key>', async () => {
    expect((await stat(join(root, '.tmp'))).isDirectory()).toBe(true);
    const data = randomBytes(2000);
    const temp = await storage.writeTemp(bytes(data));
    expect(await readdir(join(root, '.tmp'))).toEqual([temp.tempKey.slice('.tmp/'.length)]);
    await storage.commit(temp.tempKey, 'ab/cd/1.2/3.4/5.6.v.dcm');
    expect(sha256(await readFile(join(root, 'ab/cd/1.2/3.4/5.6.v.dcm')))).toBe(sha256(data));
    expect(await readdir(join(root, '.tmp'))).toEqual([]);
  });

  it('copyTempFrom: copies an object of another filesystem backend into a durable temporary object; digest hashes it off the event loop', async () => {
    const other = new FsStorage({ id: 'warm', kind: 'fs', path: join(base, 'warm') });
    await other.init();
    const data = randomBytes(300_000);
    const temp = await storage.writeTemp(bytes(data));
    await storage.commit(temp.tempKey, 'ab/cd/1.2/3.4/5.6.v.dcm');
    const probe = await open(join(base, 'probe'), 'w');
    const proto = Object.getPrototypeOf(probe) as { sync(): Promise<void> };
    await probe.close();
    const sync = vi.spyOn(proto, 'sync');
    const copied = await other.copyTempFrom(storage, 'ab/cd/1.2/3.4/5.6.v.dcm');
    expect(copied?.size).toBe(data.length);
    expect(sync.mock.calls.length).toBe(1);
    await other.commit(copied!.tempKey, 'ab/cd/1.2/3.4/5.6.w.dcm');
    expect(sha256(await readFile(join(base, 'warm', 'ab/cd/1.2/3.4/5.6.w.dcm')))).toBe(sha256(data));
    // the source is untouched
    expect(sha256(await readFile(join(root, 'ab/cd/1.2/3.4/5.6.v.dcm')))).toBe(sha256(data));
    await expect(other.copyTempFrom(storage, 'ab/cd/1.2/3.4/absent.dcm')).rejects.toThrow(/not found in storage hot/);
    expect(await readdir(join(base, 'warm', '.tmp'))).toEqual([]);
    expect(await other.digest('ab/cd/1.2/3.4/5.6.w.dcm')).toEqual({ size: data.length, sha256: sha256(data) });
    expect(await other.digest('ab/cd/1.2/3.4/absent.dcm')).toBeNull();
    const notFs = { id: 's3', kind: 's3' } as unknown as FsStorage;
    expect(await other.copyTempFrom(notFs, 'ab/cd/1.2/3.4/5.6.v.dcm')).toBeNull();
  });

  it('fsyncs the temporary file and directories before resolving', async () => {
    const probe = await open(join(base, 'probe'), 'w');
    const proto = Object.getPrototypeOf(probe) as { sync(): Promise<void> };
    await probe.close();
    const sync = vi.spyOn(proto, 'sync');
    const temp = await storage.writeTemp(bytes(randomBytes(100)));
    expect(sync.mock.calls.length).toBe(1); // the file (its temporary name need not survive a crash)
    sync.mockClear();
    await storage.commit(temp.tempKey, 'a/b/c');
    // a/b (new entry), a and the root (new directories)
    expect(sync.mock.calls.length).toBe(3);
    sync.mockClear();
    const again = await storage.writeTemp(bytes(randomBytes(100)));
    sync.mockClear();
    await storage.commit(again.tempKey, 'a/b/d');
    // existing directories: only the one that got the new entry
    expect(sync.mock.calls.length).toBe(1);
  });

  it('a commit retried after a crash between link and unlink succeeds', async () => {
    const data = randomBytes(500);
    const temp = await storage.writeTemp(bytes(data));
    await mkdir(join(root, 'x'), { recursive: true });
    await link(join(root, temp.tempKey), join(root, 'x/y')); // what the crashed commit did
    await storage.commit(temp.tempKey, 'x/y');
    expect(await readdir(join(root, '.tmp'))).toEqual([]);
    expect(sha256(await readFile(join(root, 'x/y')))).toBe(sha256(data));
  });

  it('refuses to commit over a directory or an unrelated file', async () => {
    const first = await storage.writeTemp(bytes(Buffer.from('first')));
    await storage.commit(first.tempKey, 'dir/file');
    const second = await storage.writeTemp(bytes(Buffer.from('second')));
    await expect(storage.commit(second.tempKey, 'dir')).rejects.toBeInstanceOf(StorageConflictError);
    await writeFile(join(root, 'planted'), 'not ours');
    await expect(storage.commit(second.tempKey, 'planted')).rejects.toBeInstanceOf(StorageConflictError);
    expect(await readFile(join(root, 'planted'), 'utf8')).toBe('not ours');
  });

  it('delete prunes directories left empty, never the root or .tmp/', async () => {
    for (const key of ['p/q/r/one', 'p/two']) {
      const temp = await storage.writeTemp(bytes(Buffer.from(key)));
      await storage.commit(temp.tempKey, key);
    }
    await storage.delete('p/q/r/one');
    expect((await readdir(root)).sort()).toEqual(['.tmp', 'p']);
    expect(await readdir(join(root, 'p'))).toEqual(['two']);
    await storage.delete('p/two');
    expect(await readdir(root)).toEqual(['.tmp']);
  });

  it('never reaches outside its root', async () => {
    await writeFile(join(base, 'nested', 'secret'), 'outside');
    await expect(storage.read('../secret')).rejects.toBeInstanceOf(InvalidStorageKeyError);
    await expect(storage.delete('../secret')).rejects.toBeInstanceOf(InvalidStorageKeyError);
    await expect(storage.revoke('.tmp/../../secret')).rejects.toBeInstanceOf(InvalidStorageKeyError);
    expect(await readFile(join(base, 'nested', 'secret'), 'utf8')).toBe('outside');
  });

  it('closes the file when a read stream is destroyed early', async () => {
    const temp = await storage.writeTemp(bytes(randomBytes(1024 * 1024)));
    await storage.commit(temp.tempKey, 'r');
    const stream = await storage.read('r', { start: 10 });
    const closed = new Promise((resolve) => stream.once('close', resolve));
    stream.destroy();
    await closed;
    // No lingering handle: the object can be deleted and its directory pruned on any platform.
    await storage.delete('r');
    expect(await storage.stat('r')).toBeNull();
  });

  it('health leaves no probe file behind', async () => {
    await storage.health();
    expect(await readdir(join(root, '.tmp'))).toEqual([]);
  });

  it('health fails when the root is gone', async () => {
    await rm(root, { recursive: true, force: true });
    await expect(storage.health()).rejects.toThrow();
  });

  it('removes the temporary file when the write fails', async () => {
    const source = new Readable({
      read() {
        this.push(randomBytes(3 * 1024 * 1024));
        this.destroy(new Error('network reset'));
      },
    });
    await expect(storage.writeTemp(source)).rejects.toThrow('network reset');
    expect(await readdir(join(root, '.tmp'))).toEqual([]);
  });
});
