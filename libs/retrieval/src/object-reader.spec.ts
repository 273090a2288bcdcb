/** ObjectReaderService: verified whole-object reads and the held-back last chunk of verified streams. */
import { LocationStatus, type LocationRepository, type RetrievableInstance } from '#vna/catalog';
import { FsStorage, type StorageRegistry } from '#vna/storage';
import { createHash, randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
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

describe('ObjectReaderService.readVerified', () => {
  it.each([100, 200 * 1024, 3 * 1024 * 1024])('returns the exact bytes of a %i-byte object', async (n) => {
    const data = randomBytes(n);
    expect((await reader.readVerified(await put(data))).bytes.equals(data)).toBe(true);
    expect(marked).toEqual([]);
  });

  it('a digest mismatch is an error (no bytes returned), marked CORRUPT', async () => {
    const data = randomBytes(300 * 1024);
    const inst = await put(data, { sha256: sha256(randomBytes(10)) });
    await expect(reader.readVerified(inst)).rejects.toMatchObject({ reason: 'corrupt' });
    expect(marked).toEqual([{ id: 'L1', status: LocationStatus.Corrupt }]);
  });

  it('a size mismatch is CORRUPT without reading; an absent object MISSING; no location: no-location', async () => {
    const inst = await put(randomBytes(1000), { size: 999 });
    await expect(reader.readVerified(inst)).rejects.toMatchObject({ reason: 'corrupt' });
    await rm(join(base, KEY));
    await expect(reader.readVerified(inst)).rejects.toMatchObject({ reason: 'missing' });
    expect(marked.map((m) => m.status)).toEqual([LocationStatus.Corrupt, LocationStatus.Missing]);
    await expect(reader.readVerified({ ...inst, location: null })).rejects.toBeInstanceOf(ObjectUnavailableError);
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
    expect((await reader.readVerified(inst)).bytes.equals(data)).toBe(true);
    const streamed: Buffer[] = [];
    for await (const c of await reader.open(inst)) streamed.push(c as Buffer);
    expect(Buffer.concat(streamed).equals(data)).toBe(true);
    expect(marked).toEqual([]);
    // The current copy missing too: MISSING, marked once, on the current copy.
    await rm(join(base, movedKey));
    await expect(reader.readVerified(inst)).rejects.toMatchObject({ reason: 'missing' });
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

  it('readWholeHashed agrees with createHash and hands back the same bytes; several at once, each answer matched to its read', async () => {
    const sizes = [0, 1000, 200 * 1024, 1024 * 1024, ...Array.from({ length: 12 }, (_, i) => 300 * 1024 + i)];
    const objects = await Promise.all(
      sizes.map(async (n, i) => {
        const key = `ab/cd/9.9/${i}/x.dcm`;
        const data = randomBytes(n);
        await mkdir(join(base, `ab/cd/9.9/${i}`), { recursive: true });
        await writeFile(join(base, key), data);
        return { key, data };
      }),
    );
    const got = await Promise.all(objects.map((o) => storage.readWholeHashed(o.key, o.data.length)));
    got.forEach((r, i) => {
      if (!('bytes' in r)) throw new Error(`object ${i}: size ${r.size}`);
      expect(r.sha256).toBe(sha256(objects[i]!.data));
      expect(r.bytes.equals(objects[i]!.data)).toBe(true);
      r.release();
    });
  });
});
