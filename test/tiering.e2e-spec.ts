/**
 * Lifecycle tiering (issue 4): tiers from VNA_TIERS (hot and cold on the filesystem, warm on a
 * real S3-compatible server), whole-study moves through the API with the per-instance locations,
 * the source objects gone, and retrieval (QIDO-RS, WADO-RS, C-GET) byte-identical after each move;
 * a damaged copy at the target fails the move and keeps the source; kill -9 in the middle of a
 * move and a restart finish it with every instance readable throughout.
 */
import { Client } from 'minio';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  Archive,
  datasetBytes,
  freePort,
  generateStudies,
  type GeneratedFile,
  run,
  sha256,
  sleep,
  storeResponses,
  tiersEnv,
  uid,
} from './support/archive.js';
import { cgetStudyDigests, wadoStudyDigests } from './support/retrieve.js';
import { startS3rver, type S3rverHandle } from './support/s3rver.js';
import { api } from './support/tiering.js';

let s3: S3rverHandle;
let client: Client;
let archive: Archive;
const started: Archive[] = [];
/** SOP Instance UID -> SHA-256 of the data set sent. */
const sent = new Map<string, string>();

interface LocationsView {
  studyInstanceUid: string;
  tiers: Record<string, number>;
  instances: Array<{
    sopInstanceUid: string;
    tier: string | null;
    locations: Array<{ tier: string; key: string; size: number; sha256: string; status: string }>;
  }>;
}

interface MoveView {
  id: string;
  state: string;
  error: string | null;
  targetTier: string;
  sourceTiers: string[];
  instancesTotal: number;
  instancesMoved: number;
  bytesMoved: number;
  attempts: number;
}

function env(extra: Record<string, string> = {}): Record<string, string> {
  return {
    ...tiersEnv([
      { id: 'hot', kind: 'fs', path: 'storage/hot', availability: 'online', pricePerGbMonth: 0.1 },
      {
        id: 'warm', kind: 's3', endpoint: `http://${s3.endPoint}:${s3.port}`, bucket: s3.bucket, prefix: 'warm/',
        accessKey: s3.accessKey, secretKey: s3.secretKey, availability: 'nearline', pricePerGbMonth: 0.02,
      },
      { id: 'cold', kind: 'fs', path: 'storage/cold', availability: 'nearline', pricePerGbMonth: 0.004 },
    ]),
    VNA_TIERING_CONCURRENCY: '2',
    ...extra,
  };
}

async function waitMove(a: Archive, id: string, timeoutMs = 120_000): Promise<MoveView> {
  const t0 = Date.now();
  let last: MoveView | undefined;
  while (Date.now() - t0 < timeoutMs) {
    last = (await api<MoveView>(a, `/api/storage/moves/${id}`)).body;
    if (['COMPLETED', 'FAILED', 'ABORTED'].includes(last.state)) return last;
    await sleep(100);
  }
  throw new Error(`move ${id} did not finish: ${JSON.stringify(last)}\n${a.logTail()}`);
}

async function requestMove(a: Archive, study: string, targetTier: string): Promise<MoveView> {
  const r = await api<{ moveId: string }>(a, `/api/studies/${study}/move`, { method: 'POST', body: { targetTier } });
  expect(r.status, JSON.stringify(r.body)).toBe(202);
  return waitMove(a, r.body.moveId);
}

async function locations(a: Archive, study: string): Promise<LocationsView> {
  const r = await api<LocationsView>(a, `/api/studies/${study}/locations`);
  expect(r.status).toBe(200);
  return r.body;
}

async function bucketObject(key: string): Promise<Buffer | null> {
  try {
    const chunks: Buffer[] = [];
    for await (const c of await client.getObject(s3.bucket, `warm/${key}`)) chunks.push(c as Buffer);
    return Buffer.concat(chunks);
  } catch (e) {
    if ((e as { code?: string }).code === 'NoSuchKey' || (e as { code?: string }).code === 'NotFound') return null;
    throw e;
  }
}

async function bucketNames(prefix: string): Promise<string[]> {
  const names: string[] = [];
  for await (const o of client.listObjectsV2(s3.bucket, prefix, true)) names.push((o as { name: string }).name);
  return names;
}

/** The bytes of an object on a tier (fs path or the bucket), or null if absent. */
async function objectBytes(a: Archive, tier: string, key: string): Promise<Buffer | null> {
  if (tier === 'warm') return bucketObject(key);
  const file = path.join(a.dataDir, 'storage', tier, key);
  return existsSync(file) ? readFileSync(file) : null;
}

/** Every file under a directory, recursively (the .tmp area excluded). */
function filesUnder(dir: string): string[] {
  if (!existsSync(dir)) return [];
  return readdirSync(dir, { recursive: true, withFileTypes: true })
    .filter((d) => d.isFile() && !path.join(d.parentPath, d.name).includes(`${path.sep}.tmp`))
    .map((d) => path.join(d.parentPath, d.name));
}

async function storeStudy(a: Archive, patientId: string, instances: number, rows = 64): Promise<{ study: string; files: GeneratedFile[] }> {
  const work = mkdtempSync(path.join(tmpdir(), 'vna-tier-'));
  const study = uid();
  const files = await generateStudies(work, [
    {
      patientId, patientName: `Tier^${patientId}`, studyUid: study, studyDate: '20240115',
      series: [
        { seriesUid: uid(), modality: 'CT', instances: Math.ceil(instances / 2), rows, cols: rows },
        { seriesUid: uid(), modality: 'MR', instances: Math.floor(instances / 2), rows, cols: rows },
      ],
    },
  ]);
  const r = await run('storescu', ['-v', '+sd', '+r', ...a.dcmArgs(), work]);
  expect(storeResponses(r.stderr).ok, r.stderr).toBe(instances);
  for (const f of files) sent.set(f.sopInstanceUid, sha256(datasetBytes(readFileSync(f.path))));
  return { study, files };
}

/** WADO-RS of the whole study: SOP UID -> data set digest of each part. */
async function wadoDigests(a: Archive, study: string): Promise<Map<string, string>> {
  const r = await wadoStudyDigests(a, study);
  expect(r.status).toBe(200);
  return r.digests;
}

/** C-GET of the whole study with getscu: SOP UID -> data set digest of each file received. */
async function cgetDigests(a: Archive, study: string): Promise<Map<string, string>> {
  const g = await cgetStudyDigests(a, study);
  expect(g.code, g.stderr).toBe(0);
  return g.digests;
}

function expected(files: GeneratedFile[]): Map<string, string> {
  return new Map(files.map((f) => [f.sopInstanceUid, sent.get(f.sopInstanceUid)!]));
}

/** Every instance's current copy is on `tier`, exactly one location each, its object intact there. */
async function expectAllOn(a: Archive, study: string, tier: string, files: GeneratedFile[]): Promise<LocationsView> {
  const view = await locations(a, study);
  expect(view.tiers).toEqual({ [tier]: files.length });
  for (const inst of view.instances) {
    expect(inst.tier).toBe(tier);
    expect(inst.locations).toHaveLength(1);
    const loc = inst.locations[0]!;
    expect(loc).toMatchObject({ tier, status: 'OK' });
    const bytes = await objectBytes(a, tier, loc.key);
    expect(bytes, `${inst.sopInstanceUid} on ${tier}`).not.toBeNull();
    expect(sha256(bytes!)).toBe(loc.sha256);
    expect(sha256(datasetBytes(bytes!))).toBe(sent.get(inst.sopInstanceUid));
  }
  return view;
}

describe('lifecycle tiering', () => {
  beforeAll(async () => {
    s3 = await startS3rver({ bucket: 'vna-warm' });
    client = new Client({ endPoint: s3.endPoint, port: s3.port, useSSL: false, accessKey: s3.accessKey, secretKey: s3.secretKey, region: 'us-east-1', pathStyle: true });
    archive = await Archive.start({ env: env() });
    started.push(archive);
  });
  afterAll(async () => {
    for (const a of started) await a.stop();
    await s3?.stop();
  });

  it('moves a study hot -> warm (S3) -> cold -> hot; sources are deleted and retrieval stays byte-identical', async () => {
    const { study, files } = await storeStudy(archive, 'TIER-1', 6);
    await archive.waitIndexed(6);
    const before = await expectAllOn(archive, study, 'hot', files);
    const tiers0 = (await api<Array<{ id: string; instances: number; studies: number }>>(archive, '/api/storage/tiers')).body;
    expect(tiers0.map((t) => t.id)).toEqual(['hot', 'warm', 'cold']);
    expect(tiers0[0]).toMatchObject({ id: 'hot', kind: 'fs', availability: 'online', pricePerGbMonth: 0.1, studies: 1, instances: 6, movesInFlight: 0 });
    expect(tiers0[1]).toMatchObject({ id: 'warm', kind: 's3', availability: 'nearline', instances: 0 });

    let previous = before;
    let previousTier = 'hot';
    for (const tier of ['warm', 'cold', 'hot']) {
      const move = await requestMove(archive, study, tier);
      expect(move, JSON.stringify(move)).toMatchObject({ state: 'COMPLETED', targetTier: tier, sourceTiers: [previousTier], instancesTotal: 6, instancesMoved: 6 });
      const now = await expectAllOn(archive, study, tier, files);
      for (const inst of now.instances) {
        const old = previous.instances.find((i) => i.sopInstanceUid === inst.sopInstanceUid)!.locations[0]!;
        expect(inst.locations[0]!.sha256).toBe(old.sha256);
        expect(inst.locations[0]!.key).not.toBe(old.key);
        // The source object is gone from disk / the bucket.
        expect(await objectBytes(archive, previousTier, old.key), `${previousTier}:${old.key}`).toBeNull();
      }
      const qido = await fetch(`${archive.http}/dicom-web/studies?StudyInstanceUID=${study}`).then((x) => x.json() as Promise<unknown[]>);
      expect(qido).toHaveLength(1);
      expect(await wadoDigests(archive, study)).toEqual(expected(files));
      expect(await cgetDigests(archive, study)).toEqual(expected(files));
      previous = now;
      previousTier = tier;
    }
    // Nothing left behind: no objects in the bucket, no files of the study on cold.
    expect(await bucketNames('warm/')).toEqual([]);
    expect(filesUnder(path.join(archive.dataDir, 'storage/cold'))).toEqual([]);
    const tiers1 = (await api<Array<{ id: string; instances: number }>>(archive, '/api/storage/tiers')).body;
    expect(tiers1.map((t) => [t.id, t.instances])).toEqual([['hot', 6], ['warm', 0], ['cold', 0]]);
    // A move to where the study already is completes with nothing to do.
    expect(await requestMove(archive, study, 'hot')).toMatchObject({ state: 'COMPLETED', instancesTotal: 0 });
  });

  it('a late instance of a study on warm lands in hot (spread) until the next move settles it', async () => {
    const { study, files } = await storeStudy(archive, 'TIER-2', 4);
    await archive.waitIndexed(10);
    await requestMove(archive, study, 'warm');
    // The same study receives one more instance: it goes to hot.
    const work = mkdtempSync(path.join(tmpdir(), 'vna-tier-late-'));
    const late = await generateStudies(work, [
      { patientId: 'TIER-2', patientName: 'Tier^TIER-2', studyUid: study, studyDate: '20240115', series: [{ seriesUid: uid(), modality: 'CT', instances: 1 }] },
    ]);
    const r = await run('storescu', ['-v', ...archive.dcmArgs(), late[0]!.path]);
    expect(storeResponses(r.stderr).ok).toBe(1);
    sent.set(late[0]!.sopInstanceUid, sha256(datasetBytes(readFileSync(late[0]!.path))));
    await archive.waitIndexed(11);
    expect((await locations(archive, study)).tiers).toEqual({ warm: 4, hot: 1 });
    const move = await requestMove(archive, study, 'warm');
    expect(move).toMatchObject({ state: 'COMPLETED', sourceTiers: ['hot'], instancesTotal: 1 });
    await expectAllOn(archive, study, 'warm', [...files, ...late]);
    expect(await wadoDigests(archive, study)).toEqual(expected([...files, ...late]));
  });

  it('rejects an unknown target tier, a bad body and unknown studies, naming the field', async () => {
    const { rows } = await archive.db.query(`SELECT study_iuid FROM study LIMIT 1`);
    const study = rows[0].study_iuid as string;
    const bad = async (body: unknown) => api<{ message: unknown }>(archive, `/api/studies/${study}/move`, { method: 'POST', body });
    const unknownTier = await bad({ targetTier: 'tape' });
    expect(unknownTier.status).toBe(400);
    expect(JSON.stringify(unknownTier.body.message)).toMatch(/targetTier must be one of hot, warm, cold/);
    const missing = await bad({});
    expect(missing.status).toBe(400);
    expect(JSON.stringify(missing.body.message)).toContain('targetTier');
    const extra = await bad({ targetTier: 'warm', priority: 1 });
    expect(extra.status).toBe(400);
    expect(JSON.stringify(extra.body.message)).toContain('priority');
    expect((await bad({ targetTier: 7 })).status).toBe(400);
    const nowhere = uid();
    expect((await api(archive, `/api/studies/${nowhere}/move`, { method: 'POST', body: { targetTier: 'warm' } })).status).toBe(404);
    expect((await api(archive, `/api/studies/${nowhere}/locations`)).status).toBe(404);
    expect((await api(archive, `/api/studies/not-a-uid/locations`)).status).toBe(400);
    expect((await api(archive, `/api/storage/moves/999999`)).status).toBe(404);
    expect((await api(archive, `/api/storage/moves/abc`)).status).toBe(404);
    // Nothing was journaled by the refused requests.
    const n = await archive.db.query(`SELECT count(*)::int AS n FROM study_move WHERE target_tier = 'tape' OR study_iuid = $1`, [nowhere]);
    expect(n.rows[0].n).toBe(0);
  });

  it('a study being purged by retention is never moved (409), and nothing is journaled', async () => {
    const { rows } = await archive.db.query(`SELECT study_iuid FROM study ORDER BY id DESC LIMIT 1`);
    const study = rows[0].study_iuid as string;
    // What a purge's first step does (retention e2e covers the purge itself).
    await archive.db.query(`UPDATE study SET retention_state = 'PURGING' WHERE study_iuid = $1`, [study]);
    try {
      const before = (await archive.db.query(`SELECT count(*)::int AS n FROM study_move WHERE study_iuid = $1`, [study])).rows[0].n;
      const r = await api<{ message: unknown }>(archive, `/api/studies/${study}/move`, { method: 'POST', body: { targetTier: 'warm' } });
      expect(r.status).toBe(409);
      expect(JSON.stringify(r.body.message)).toMatch(/being purged/);
      const after = (await archive.db.query(`SELECT count(*)::int AS n FROM study_move WHERE study_iuid = $1`, [study])).rows[0].n;
      expect(after).toBe(before);
    } finally {
      await archive.db.query(`UPDATE study SET retention_state = 'ACTIVE' WHERE study_iuid = $1`, [study]);
    }
  });

  it('kill -9 in the middle of a move: every instance stays readable, and after a restart the move completes', async () => {
    await archive.stop();
    const slow = await Archive.start({ env: env({ VNA_TIERING_FAULT: 'slow-copy' }), reuse: archive });
    started.push(slow);
    const { study, files } = await storeStudy(slow, 'TIER-KILL', 40, 128);
    await slow.waitIndexed(51);
    const r = await api<{ moveId: string }>(slow, `/api/studies/${study}/move`, { method: 'POST', body: { targetTier: 'cold' } });
    expect(r.status).toBe(202);
    const id = r.body.moveId;
    let mid: MoveView | undefined;
    for (let i = 0; i < 600; i++) {
      mid = (await api<MoveView>(slow, `/api/storage/moves/${id}`)).body;
      if (mid.state === 'COPYING' && mid.instancesMoved >= 10) break;
      await sleep(20);
    }
    expect(mid).toMatchObject({ state: 'COPYING' });
    await slow.kill9();

    // While nothing runs: every instance has an OK location whose object exists and is intact.
    const rows = await slow.db.query(
      `SELECT i.sop_iuid, l.storage_id, l.object_key, l.sha256 FROM instance i
         JOIN LATERAL (SELECT * FROM location WHERE instance_fk = i.id AND status = 'OK' ORDER BY version DESC, id DESC LIMIT 1) l ON true
        WHERE i.study_iuid = $1`,
      [study],
    );
    expect(rows.rowCount).toBe(40);
    for (const row of rows.rows) {
      const bytes = await objectBytes(slow, row.storage_id, row.object_key);
      expect(bytes, `${row.sop_iuid} unreadable after kill -9`).not.toBeNull();
      expect(sha256(bytes!)).toBe(row.sha256);
    }

    const again = await Archive.start({ env: env(), reuse: slow });
    started.push(again);
    archive = again;
    const done = await waitMove(again, id);
    expect(done, JSON.stringify(done)).toMatchObject({ state: 'COMPLETED', instancesTotal: 40, instancesMoved: 40 });
    expect(done.attempts).toBeGreaterThanOrEqual(2);
    await expectAllOn(again, study, 'cold', files);
    // No orphan copies from the interrupted attempt, no source objects left.
    expect(filesUnder(path.join(again.dataDir, 'storage/cold'))).toHaveLength(40);
    const studyDir = (await again.db.query(`SELECT object_key FROM location l JOIN instance i ON i.id = l.instance_fk WHERE i.study_iuid = $1 LIMIT 1`, [study])).rows[0].object_key
      .split('/').slice(0, 3).join('/');
    expect(filesUnder(path.join(again.dataDir, 'storage/hot', studyDir))).toEqual([]);
    expect(await wadoDigests(again, study)).toEqual(expected(files));
  });

  it('a copy that does not match at the target fails the move, deletes the copy and keeps the source', async () => {
    await archive.stop();
    const faulty = await Archive.start({ env: env({ VNA_TIERING_FAULT: 'corrupt-after-copy' }), reuse: archive });
    started.push(faulty);
    archive = faulty;
    const { study, files } = await storeStudy(faulty, 'TIER-BAD', 4);
    await faulty.waitIndexed(55);
    const before = await expectAllOn(faulty, study, 'hot', files);
    for (const tier of ['warm', 'cold']) {
      const move = await requestMove(faulty, study, tier);
      expect(move.state).toBe('FAILED');
      expect(move.error).toMatch(/does not match: read back/);
      const after = await expectAllOn(faulty, study, 'hot', files);
      expect(after.instances.map((i) => i.locations[0]!.key)).toEqual(before.instances.map((i) => i.locations[0]!.key));
    }
    const bucketOfStudy = (await bucketNames('warm/')).filter((n) => n.includes(study));
    expect(bucketOfStudy).toEqual([]);
    expect(filesUnder(path.join(faulty.dataDir, 'storage/cold')).filter((f) => f.includes(study))).toEqual([]);
    const items = await faulty.db.query(
      `SELECT it.state, count(*)::int AS n FROM study_move_item it JOIN study_move m ON m.id = it.move_fk WHERE m.study_iuid = $1 GROUP BY it.state`,
      [study],
    );
    // Each move made up to COPY_PARALLELISM (4) copies before the first mismatch stopped it; all deleted.
    expect(items.rows).toHaveLength(1);
    expect(items.rows[0].state).toBe('REVOKED');
    expect(items.rows[0].n).toBeGreaterThanOrEqual(2);
    expect(items.rows[0].n).toBeLessThanOrEqual(8);
    expect(await wadoDigests(faulty, study)).toEqual(expected(files));
    expect(await cgetDigests(faulty, study)).toEqual(expected(files));
  });
});

describe('an unreachable tier', () => {
  it('does not keep the archive from starting or storing; a move to it waits with the error journaled and the source untouched', async () => {
    const closed = await freePort();
    const a = await Archive.start({
      env: tiersEnv([
        { id: 'hot', kind: 'fs', path: 'storage/hot', availability: 'online' },
        { id: 'warm', kind: 's3', endpoint: `http://127.0.0.1:${closed}`, bucket: 'vna-nowhere', accessKey: 'k', secretKey: 's', availability: 'nearline' },
      ]),
    });
    try {
      await unreachableTierChecks(a);
    } finally {
      await a.stop();
    }
  });
});

async function unreachableTierChecks(a: Archive) {
  const { study, files } = await storeStudy(a, 'TIER-DOWN', 2);
  await a.waitIndexed(2);
  const r = await api<{ moveId: string }>(a, `/api/studies/${study}/move`, { method: 'POST', body: { targetTier: 'warm' } });
  expect(r.status).toBe(202);
  let move: MoveView | undefined;
  for (let i = 0; i < 100; i++) {
    move = (await api<MoveView>(a, `/api/storage/moves/${r.body.moveId}`)).body;
    if (move.attempts >= 2 && move.error) break;
    await sleep(100);
  }
  expect(move).toMatchObject({ state: 'COPYING' });
  expect(move!.attempts).toBeGreaterThanOrEqual(2);
  expect(move!.error).toMatch(/ECONNREFUSED|connect/);
  const view = await locations(a, study);
  expect(view.tiers).toEqual({ hot: 2 });
  expect(await wadoDigests(a, study)).toEqual(expected(files));
}

describe('tier configuration', () => {
  it('a bad VNA_TIERS stops the process with a message naming VNA_TIERS and the field', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'vna-tier-cfg-'));
    mkdirSync(dir, { recursive: true });
    const r = await run(process.execPath, [path.join(import.meta.dirname, '../dist/apps/vna/src/main.js')], {
      env: {
        VNA_DATA_DIR: dir,
        VNA_TIERS: JSON.stringify([{ id: 'hot', kind: 'fs', path: 'h', availability: 'online' }, { id: 'warm', kind: 's3', availability: 'sometimes' }]),
      },
    });
    expect(r.code).toBe(78);
    expect(r.stderr).toContain('VNA_TIERS[1].availability');
    expect(r.stderr).toContain('VNA_TIERS[1].endpoint');
  });
});
