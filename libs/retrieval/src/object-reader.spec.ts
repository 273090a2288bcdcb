/** ObjectReaderService: verified whole-object reads and the held-back last chunk of verified streams. */
import { LocationStatus, type LocationRepository, type RetrievableInstance } from '#vna/catalog';
import { FsStorage, type StorageRegistry, xxh64Hex } from '#vna/storage';
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
let learnt: Array<{ locationId: string; sha256: string; xxh64: string }>;
let reader: ObjectReaderService;
/** What LocationRepository.currentLocation answers (a tier move may have switched the instance). */
let current: RetrievableInstance['location'];

beforeEach(async () => {
  base = await mkdtemp(join(tmpdir(), 'vna-reader-spec-'));
  storage = new FsStorage({ id: 'hot', kind: 'fs', path: base, fsync: false });
  await storage.init();
  marked = [];
  learnt = [];
  current = null;
  const locations = {
    markUnreadable: async (id: string, status: LocationStatus) => void marked.push({ id, status }),
    recordCheckValues: async (values: typeof learnt) => void learnt.push(...values),
    currentLocation: async () => current,
  } as unknown as LocationRepository;
  reader = new ObjectReaderService({ get: () => storage } as unknown as StorageRegistry, locations);
});
afterEach(async () => {
  await rm(base, { recursive: true, force: true });
});

/** Stores `data` and returns its instance; `recorded` overrides what the catalogue says (xxh64 null: a copy recorded before XXH64). */
async function put(data: Buffer, recorded: { size?: number; sha256?: string; xxh64?: string | null } = {}): Promise<RetrievableInstance> {
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
    location: {
      id: 'L1',
      storageId: 'hot',
      objectKey: KEY,
      sizeBytes: recorded.size ?? data.length,
      sha256: recorded.sha256 ?? sha256(data),
      xxh64: recorded.xxh64 === undefined ? xxh64Hex(data) : recorded.xxh64,
    },
  };
}

describe('ObjectReaderService.readVerified', () => {
  it.each([100, 200 * 1024, 3 * 1024 * 1024])('returns the exact bytes of a %i-byte object', async (n) => {
    const data = randomBytes(n);
    expect((await reader.readVerified(await put(data))).bytes.equals(data)).toBe(true);
    expect(marked).toEqual([]);
  });

  it('a copy recorded without XXH64 is checked by SHA-256', async () => {
    const data = randomBytes(300 * 1024);
    expect((await reader.readVerified(await put(data, { xxh64: null }))).bytes.equals(data)).toBe(true);
    await expect(reader.readVerified(await put(data, { xxh64: null, sha256: sha256(randomBytes(10)) }))).rejects.toMatchObject({
      reason: 'corrupt',
      message: expect.stringContaining('SHA-256'),
    });
    expect(marked).toEqual([{ id: 'L1', status: LocationStatus.Corrupt }]);
  });

  it('a copy without XXH64 gets it from its first SHA-256-verified read (whole or streamed); a corrupt one does not', async () => {
    const data = randomBytes(300 * 1024);
    const inst = await put(data, { xxh64: null });
    await reader.readVerified(inst);
    for await (const _ of await reader.open(inst)) void _;
    await reader.flushCheckValues();
    expect(learnt).toEqual([{ locationId: 'L1', sha256: sha256(data), xxh64: xxh64Hex(data) }]);
    learnt = [];
    const bad = await put(data, { xxh64: null, sha256: sha256(randomBytes(10)) });
    await expect(reader.readVerified(bad)).rejects.toMatchObject({ reason: 'corrupt' });
    await expect(
      (async () => {
        for await (const _ of await reader.open(bad)) void _;
      })(),
    ).rejects.toMatchObject({ reason: 'corrupt' });
    // A copy that has its XXH64 learns nothing.
    await reader.readVerified(await put(data));
    await reader.flushCheckValues();
    expect(learnt).toEqual([]);
  });

  it('a copy with XXH64 is checked by it: one flipped bit is CORRUPT (no bytes returned), whole or streamed', async () => {
    const data = randomBytes(300 * 1024);
    const inst = await put(data);
    const flipped = Buffer.from(data);
    flipped[123_456] ^= 0x10;
    await writeFile(join(base, KEY), flipped);
    await expect(reader.readVerified(inst)).rejects.toMatchObject({ reason: 'corrupt', message: expect.stringContaining('XXH64') });
    await expect(
      (async () => {
        for await (const _ of await reader.open(inst)) void _;
      })(),
    ).rejects.toMatchObject({ reason: 'corrupt' });
    expect(marked).toEqual([
      { id: 'L1', status: LocationStatus.Corrupt },
      { id: 'L1', status: LocationStatus.Corrupt },
    ]);
  });

  it('XXH64 alone decides: a wrong recorded XXH64 fails even though the SHA-256 matches', async () => {
    const data = randomBytes(300 * 1024);
    const inst = await put(data, { xxh64: xxh64Hex(randomBytes(10)) });
    await expect(reader.readVerified(inst)).rejects.toMatchObject({ reason: 'corrupt' });
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
    const check = new DigestCheck(data.length, { algorithm: 'sha256', expected: sha256(data) }, async () => new Error('unexpected'));
    const got: Buffer[] = [];
    for await (const c of Readable.from(chunks(data, 7000)).pipe(check)) got.push(c as Buffer);
    expect(Buffer.concat(got).equals(data)).toBe(true);
  });

  it('holds the last chunk back: on a mismatch the consumer never gets the complete bytes', async () => {
    const data = randomBytes(100_000);
    const altered = Buffer.from(data);
    altered[altered.length - 10] ^= 1;
    const check = new DigestCheck(data.length, { algorithm: 'xxh64', expected: xxh64Hex(data) }, async () => new Error('digest mismatch'));
    let received = 0;
    await expect(
      (async () => {
        for await (const c of Readable.from(chunks(altered, 7000)).pipe(check)) received += (c as Buffer).length;
      })(),
    ).rejects.toThrow('digest mismatch');
    expect(received).toBeLessThan(data.length);
  });

  it.each(['sha256', 'xxh64'] as const)('readWholeHashed (%s) agrees with the hash on the event loop and hands back the same bytes; several at once, each answer matched to its read', async (algorithm) => {
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
    const got = await Promise.all(objects.map((o) => storage.readWholeHashed(o.key, o.data.length, algorithm)));
    got.forEach((r, i) => {
      if (!('bytes' in r)) throw new Error(`object ${i}: size ${r.size}`);
      expect(r.digest).toBe(algorithm === 'xxh64' ? xxh64Hex(objects[i]!.data) : sha256(objects[i]!.data));
      expect(r.bytes.equals(objects[i]!.data)).toBe(true);
      r.release();
    });
  });
});
