/** ObjectReaderService: verified whole-object reads and the held-back last chunk of verified streams. */
import { LocationStatus, type LocationRepository, type RetrievableInstance } from '#vna/catalog';
import { FsStorage, type StorageRegistry } from '#vna/storage';
import { createHash, randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { sha256Of } from '#vna/storage';
import { DigestCheck, ObjectReaderService, ObjectUnavailableError } from './object-reader.service.js';

const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex');
const KEY = 'ab/cd/1.2/3.4/5.6.v1.dcm';

let base: string;
let storage: FsStorage;
let marked: Array<{ id: string; status: LocationStatus }>;
let reader: ObjectReaderService;
/** What LocationRepository.currentLocation answers (a tier move may have switched the instance). */
let current: RetrievableInstance['location'];

beforeEach(async () => {
  base = await mkdtemp(join(tmpdir(), 'vna-reader-spec-'));
  storage = new FsStorage({ id: 'hot', kind: 'fs', path: base, fsync: false });
  await storage.init();
  marked = [];
  current = null;
  const locations = {
    markUnreadable: async (id: string, status: LocationStatus) => void marked.push({ id, status }),
    currentLocation: async () => current,
  } as unknown as LocationRepository;
  reader = new ObjectReaderService({ get: () => storage } as unknown as StorageRegistry, locations);
});
afterEach(async () => {
  await rm(base, { recursive: true, force: true });
});

async function put(data: Buffer, recorded: { size?: number; sha256?: string } = {}): Promise<RetrievableInstance> {
  await mkdir(join(base, 'ab/cd/1.2/3.4'), { recursive: true });
  await writeFile(join(base, KEY), data);
  return {
    instanceId: '1',
    sopIuid: '5.6',
    sopClassUid: '1.2.840.10008.5.1.4.1.1.2',
    studyIuid: '1.2',
    seriesIuid: '3.4',
    transferSyntaxUid: '1.2.840.10008.1.2.1',
    numFrames: 1,
    location: { id: 'L1', storageId: 'hot', objectKey: KEY, sizeBytes: recorded.size ?? data.length, sha256: recorded.sha256 ?? sha256(data) },
  };
}

describe('ObjectReaderService.readWhole', () => {
  it.each([100, 200 * 1024, 3 * 1024 * 1024])('returns the exact bytes of a %i-byte object', async (n) => {
    const data = randomBytes(n);
    expect((await reader.readWhole(await put(data))).equals(data)).toBe(true);
    expect(marked).toEqual([]);
  });

  it('a digest mismatch is an error (no bytes returned), marked CORRUPT', async () => {
    const data = randomBytes(300 * 1024);
    const inst = await put(data, { sha256: sha256(randomBytes(10)) });
    await expect(reader.readWhole(inst)).rejects.toMatchObject({ reason: 'corrupt' });
    expect(marked).toEqual([{ id: 'L1', status: LocationStatus.Corrupt }]);
  });

  it('a size mismatch is CORRUPT without reading; an absent object MISSING; no location: no-location', async () => {
    const inst = await put(randomBytes(1000), { size: 999 });
    await expect(reader.readWhole(inst)).rejects.toMatchObject({ reason: 'corrupt' });
    await rm(join(base, KEY));
    await expect(reader.readWhole(inst)).rejects.toMatchObject({ reason: 'missing' });
    expect(marked.map((m) => m.status)).toEqual([LocationStatus.Corrupt, LocationStatus.Missing]);
    await expect(reader.readWhole({ ...inst, location: null })).rejects.toBeInstanceOf(ObjectUnavailableError);
  });
});

describe('ObjectReaderService after a tier move', () => {
  it('an object gone because its instance was switched to a new copy is read from that copy, nothing marked', async () => {
    const data = randomBytes(5000);
    const inst = await put(data);
    // The move: a new copy at another key becomes the OK location, the old object is deleted.
    const movedKey = 'ab/cd/1.2/3.4/5.6.v2.dcm';
    await writeFile(join(base, movedKey), data);
    await rm(join(base, KEY));
    current = { ...inst.location!, id: 'L2', objectKey: movedKey };
    expect((await reader.readWhole(inst)).equals(data)).toBe(true);
    const streamed: Buffer[] = [];
    for await (const c of await reader.open(inst)) streamed.push(c as Buffer);
    expect(Buffer.concat(streamed).equals(data)).toBe(true);
    expect(marked).toEqual([]);
    // The current copy missing too: MISSING, marked once, on the current copy.
    await rm(join(base, movedKey));
    await expect(reader.readWhole(inst)).rejects.toMatchObject({ reason: 'missing' });
    expect(marked).toEqual([{ id: 'L2', status: LocationStatus.Missing }]);
  });
});

describe('DigestCheck', () => {
  const chunks = (data: Buffer, size: number) => {
    const out: Buffer[] = [];
    for (let off = 0; off < data.length; off += size) out.push(data.subarray(off, off + size));
    return out;
  };

  it('passes every byte through when size and digest match', async () => {
    const data = randomBytes(100_000);
    const check = new DigestCheck(data.length, sha256(data), async () => new Error('unexpected'));
    const got: Buffer[] = [];
    for await (const c of Readable.from(chunks(data, 7000)).pipe(check)) got.push(c as Buffer);
    expect(Buffer.concat(got).equals(data)).toBe(true);
  });

  it('holds the last chunk back: on a mismatch the consumer never gets the complete bytes', async () => {
    const data = randomBytes(100_000);
    const altered = Buffer.from(data);
    altered[altered.length - 10] ^= 1;
    const check = new DigestCheck(data.length, sha256(data), async () => new Error('digest mismatch'));
    let received = 0;
    await expect(
      (async () => {
        for await (const c of Readable.from(chunks(altered, 7000)).pipe(check)) received += (c as Buffer).length;
      })(),
    ).rejects.toThrow('digest mismatch');
    expect(received).toBeLessThan(data.length);
  });

  it('sha256Of agrees with createHash on and off the event loop, and hands back the same bytes', async () => {
    for (const n of [0, 1000, 200 * 1024, 1024 * 1024]) {
      const b = Buffer.allocUnsafe(n);
      randomBytes(n).copy(b);
      const expected = sha256(b);
      const copy = Buffer.from(b);
      const r = await sha256Of(b);
      expect(r?.sha256).toBe(expected);
      expect(r?.bytes.equals(copy)).toBe(true);
    }
    // Several at once (a pool of threads, answers matched to their jobs).
    const many = Array.from({ length: 12 }, (_, i) => Buffer.alloc(300 * 1024 + i, i));
    const sums = many.map((b) => sha256(b));
    expect((await Promise.all(many.map((b) => sha256Of(b)))).map((r) => r?.sha256)).toEqual(sums);
  });
});
