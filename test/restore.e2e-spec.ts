/**
 * Restores from an offline tier (issue 4, offline part): tiers hot (fs) and cold (fs, offline).
 * A study moved to cold is restored into hot when retrieved (WADO-RS, WADO-URI, C-GET, C-MOVE wait
 * for it) or on POST /api/studies/{uid}/restore; the bytes served are the ones sent, the cold copy
 * stays the copy of record, GET locations shows the restored copies with their expiry. With
 * VNA_RESTORE_WAIT_S=0 the first retrieval answers 503 + Retry-After and a later one succeeds;
 * expired restored copies are swept; a restore killed with kill -9 completes after a restart.
 */
import { type ChildProcess, spawn } from 'node:child_process';
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
  xxh64,
} from './support/archive.js';
import { canConnect, folderDigests, retrieveOutcome, wadoStudyDigests } from './support/retrieve.js';
import { api, moveStudy, until } from './support/tiering.js';

const started: Archive[] = [];
/** SOP Instance UID -> SHA-256 of the data set sent. */
const sent = new Map<string, string>();

interface LocationsView {
  tiers: Record<string, number>;
  restored: { instances: number; expiresAt: string | null };
  instances: Array<{
    sopInstanceUid: string;
    tier: string | null;
    restored: { tier: string; expiresAt: string } | null;
    locations: Array<{ tier: string; key: string; sha256: string; status: string; expiresAt?: string }>;
  }>;
}

interface RestoreView {
  id: string;
  state: string;
  error: string | null;
  instancesTotal: number;
  instancesRestored: number;
  sourceTiers: string[];
  attempts: number;
}

function env(extra: Record<string, string> = {}): Record<string, string> {
  return {
    ...tiersEnv([
      { id: 'hot', kind: 'fs', path: 'storage/hot', availability: 'online' },
      { id: 'cold', kind: 'fs', path: 'storage/cold', availability: 'offline' },
    ]),
    VNA_LIFECYCLE_INTERVAL_S: '0',
    ...extra,
  };
}

async function storeStudy(a: Archive, patientId: string, instances: number): Promise<{ study: string; files: GeneratedFile[] }> {
  const work = mkdtempSync(path.join(tmpdir(), 'vna-restore-'));
  const study = uid();
  const files = await generateStudies(work, [
    {
      patientId, patientName: `Restore^${patientId}`, studyUid: study, studyDate: '20240115',
      series: [
        { seriesUid: uid(), modality: 'CT', instances: Math.ceil(instances / 2), rows: 64, cols: 64 },
        { seriesUid: uid(), modality: 'MR', instances: Math.floor(instances / 2), rows: 64, cols: 64 },
      ],
    },
  ]);
  const r = await run('storescu', ['-v', '+sd', '+r', ...a.dcmArgs(), work]);
  expect(storeResponses(r.stderr).ok, r.stderr).toBe(instances);
  for (const f of files) sent.set(f.sopInstanceUid, sha256(datasetBytes(readFileSync(f.path))));
  rmSync(work, { recursive: true, force: true });
  return { study, files };
}

async function moveToCold(a: Archive, study: string, count: number): Promise<void> {
  await moveStudy(a, study, 'cold');
  expect((await api<LocationsView>(a, `/api/studies/${study}/locations`)).body.tiers).toEqual({ cold: count });
}

function expected(files: GeneratedFile[]): Map<string, string> {
  return new Map(files.map((f) => [f.sopInstanceUid, sent.get(f.sopInstanceUid)!]));
}

/** Every file under the hot tier's restore area. */
function restoreAreaFiles(a: Archive): string[] {
  const dir = path.join(a.dataDir, 'storage/hot/restored');
  if (!existsSync(dir)) return [];
  return readdirSync(dir, { recursive: true, withFileTypes: true })
    .filter((d) => d.isFile())
    .map((d) => path.relative(path.join(a.dataDir, 'storage/hot'), path.join(d.parentPath, d.name)))
    .sort();
}

async function restoredRows(
  a: Archive,
  study?: string,
): Promise<Array<{ status: string; storage_id: string; object_key: string; sha256: string; xxh64: string | null }>> {
  const r = await a.db.query(
    `SELECT l.status, l.storage_id, l.object_key, l.sha256, l.xxh64 FROM location l JOIN instance i ON i.id = l.instance_fk
      WHERE l.status IN ('RESTORING', 'RESTORED') ${study ? 'AND i.study_iuid = $1' : ''} ORDER BY l.object_key`,
    study ? [study] : [],
  );
  return r.rows;
}

describe('restores from an offline tier', () => {
  let archive: Archive;

  beforeAll(async () => {
    // slow-copy: 150 ms per instance copied, so a restore takes long enough to be waited for and killed.
    archive = await Archive.start({ env: env({ VNA_RESTORE_WAIT_S: '60', VNA_TIERING_FAULT: 'slow-copy' }) });
    started.push(archive);
  });
  afterAll(async () => {
    for (const a of started) await a.stop();
  });

  it('WADO-RS of a cold study waits for its restore and returns the bytes sent; cold stays the copy of record, locations show the expiry', async () => {
    const { study, files } = await storeStudy(archive, 'RST-1', 4);
    await archive.waitIndexed(4);
    await moveToCold(archive, study, 4);
    const coldKeys = (await api<LocationsView>(archive, `/api/studies/${study}/locations`)).body.instances.map((i) => i.locations[0]!.key).sort();

    const r = await wadoStudyDigests(archive, study);
    expect(r.status, r.text).toBe(200);
    expect(r.digests).toEqual(expected(files));

    const view = (await api<LocationsView>(archive, `/api/studies/${study}/locations`)).body;
    expect(view.tiers).toEqual({ cold: 4 }); // the copy of record
    expect(view.restored.instances).toBe(4);
    const expiry = Date.parse(view.restored.expiresAt!);
    expect(expiry - Date.now()).toBeGreaterThan(23 * 3600_000); // VNA_RESTORE_KEEP_S default: 24 h
    expect(expiry - Date.now()).toBeLessThanOrEqual(24 * 3600_000);
    for (const inst of view.instances) {
      expect(inst.tier).toBe('cold');
      expect(inst.restored).toMatchObject({ tier: 'hot' });
      const cold = inst.locations.find((l) => l.tier === 'cold')!;
      const hot = inst.locations.find((l) => l.tier === 'hot')!;
      expect(cold).toMatchObject({ status: 'OK' });
      expect(hot).toMatchObject({ status: 'RESTORED', sha256: cold.sha256 });
      expect(hot.key.startsWith('restored/')).toBe(true);
      // Both objects are there, byte for byte what was sent.
      for (const [tier, key] of [['cold', cold.key], ['hot', hot.key]] as const) {
        const bytes = readFileSync(path.join(archive.dataDir, 'storage', tier, key));
        expect(sha256(bytes)).toBe(cold.sha256);
        expect(sha256(datasetBytes(bytes))).toBe(sent.get(inst.sopInstanceUid));
      }
    }
    expect(view.instances.map((i) => i.locations.find((l) => l.tier === 'cold')!.key).sort()).toEqual(coldKeys);
    const journal = await until('restore completed', archive, async () => {
      const q = await archive.db.query(`SELECT state, requested_by, instances_total, instances_restored FROM study_restore WHERE study_iuid = $1`, [study]);
      return q.rows[0]?.state === 'COMPLETED' ? q : undefined;
    });
    expect(journal.rows).toEqual([{ state: 'COMPLETED', requested_by: 'retrieval', instances_total: 4, instances_restored: 4 }]);

    // Served from the restored copies from now on, with no new restore.
    expect((await wadoStudyDigests(archive, study)).digests).toEqual(expected(files));
    expect((await archive.db.query(`SELECT count(*)::int AS n FROM study_restore WHERE study_iuid = $1`, [study])).rows[0].n).toBe(1);
  });

  it('an instance re-sent with other bytes after its study was restored is served in its new version, never the restored old one', async () => {
    const { study, files } = await storeStudy(archive, 'RST-9', 2);
    await archive.waitIndexed(6);
    await moveToCold(archive, study, 2);
    expect((await wadoStudyDigests(archive, study)).digests).toEqual(expected(files));
    const target = files[0]!;
    const series = (await archive.db.query(`SELECT series_iuid FROM instance WHERE sop_iuid = $1`, [target.sopInstanceUid])).rows[0].series_iuid as string;
    const work = mkdtempSync(path.join(tmpdir(), 'vna-restore-resend-'));
    const [again] = await generateStudies(work, [
      {
        patientId: 'RST-9', patientName: 'Restore^RST-9', studyUid: study, studyDate: '20240115',
        series: [{ seriesUid: series, modality: 'CT', instances: 1, rows: 32, cols: 32, sopUids: [target.sopInstanceUid] }],
      },
    ]);
    const newDigest = sha256(datasetBytes(readFileSync(again!.path)));
    expect(newDigest).not.toBe(sent.get(target.sopInstanceUid));
    const r = await run('storescu', ['-v', ...archive.dcmArgs(), again!.path]);
    expect(storeResponses(r.stderr).ok, r.stderr).toBe(1);
    rmSync(work, { recursive: true, force: true });
    await archive.waitIndexed(6);
    const got = (await wadoStudyDigests(archive, study)).digests;
    expect(got.get(target.sopInstanceUid)).toBe(newDigest);
    expect(got.get(files[1]!.sopInstanceUid)).toBe(sent.get(files[1]!.sopInstanceUid));
    const view = (await api<LocationsView>(archive, `/api/studies/${study}/locations`)).body;
    const inst = view.instances.find((i) => i.sopInstanceUid === target.sopInstanceUid)!;
    expect(inst.tier).toBe('hot');
    expect(inst.restored).toBeNull();
    sent.set(target.sopInstanceUid, newDigest);
  });

  it('WADO-URI of an instance of a cold study restores it and returns it as stored', async () => {
    const { study, files } = await storeStudy(archive, 'RST-2', 2);
    await archive.waitIndexed(8);
    await moveToCold(archive, study, 2);
    const f = files[0]!;
    const series = (await archive.db.query(`SELECT series_iuid FROM instance WHERE sop_iuid = $1`, [f.sopInstanceUid])).rows[0].series_iuid as string;
    const r = await fetch(`${archive.http}/wado?requestType=WADO&studyUID=${study}&seriesUID=${series}&objectUID=${f.sopInstanceUid}&contentType=application/dicom`);
    expect(r.status).toBe(200);
    expect(sha256(datasetBytes(Buffer.from(await r.arrayBuffer())))).toBe(sent.get(f.sopInstanceUid));
  });

  it('POST /api/studies/{uid}/restore journals a restore (202), GET locations shows the restored copies; nothing offline is 200, unknown 404', async () => {
    const { study, files } = await storeStudy(archive, 'RST-3', 4);
    await archive.waitIndexed(12);
    await moveToCold(archive, study, 4);
    const r = await api<{ restoreId: string; state: string; created: boolean; instancesOffline: number }>(archive, `/api/studies/${study}/restore`, { method: 'POST' });
    expect(r.status, JSON.stringify(r.body)).toBe(202);
    expect(r.body).toMatchObject({ state: 'SCHEDULED', created: true, instancesOffline: 4 });
    // The same request while it runs returns that restore.
    const again = await api<{ restoreId: string; created: boolean }>(archive, `/api/studies/${study}/restore`, { method: 'POST' });
    expect([200, 202]).toContain(again.status);
    if (again.status === 202) expect(again.body).toMatchObject({ restoreId: r.body.restoreId, created: false });
    const done = await until('restore', archive, async () => {
      const v = (await api<RestoreView>(archive, `/api/storage/restores/${r.body.restoreId}`)).body;
      return ['COMPLETED', 'FAILED'].includes(v.state) ? v : undefined;
    });
    expect(done).toMatchObject({ state: 'COMPLETED', error: null, instancesTotal: 4, instancesRestored: 4, sourceTiers: ['cold'], attempts: 1 });
    const view = (await api<LocationsView>(archive, `/api/studies/${study}/locations`)).body;
    expect(view.restored.instances).toBe(4);
    for (const inst of view.instances) {
      const hot = inst.locations.find((l) => l.status === 'RESTORED')!;
      expect(hot.tier).toBe('hot');
      expect(Date.parse(hot.expiresAt!)).toBeGreaterThan(Date.now() + 23 * 3600_000);
      expect(inst.restored?.expiresAt).toBe(hot.expiresAt);
    }
    const nothing = await api<{ state: string }>(archive, `/api/studies/${study}/restore`, { method: 'POST' });
    expect(nothing.status).toBe(200);
    expect(nothing.body.state).toBe('NOTHING_OFFLINE');
    expect((await api(archive, `/api/studies/${uid()}/restore`, { method: 'POST' })).status).toBe(404);
    expect((await api(archive, `/api/studies/not-a-uid/restore`, { method: 'POST' })).status).toBe(400);
    expect((await api(archive, `/api/storage/restores/999999999`)).status).toBe(404);
    expect((await wadoStudyDigests(archive, study)).digests).toEqual(expected(files));
  });

  it('C-GET of a cold study sends pending responses while it is restored, then every object byte for byte', async () => {
    const { study, files } = await storeStudy(archive, 'RST-4', 10);
    await archive.waitIndexed(22);
    await moveToCold(archive, study, 10);
    const dir = mkdtempSync(path.join(tmpdir(), 'vna-restore-get-'));
    const g = await run('getscu', ['-d', '-S', '+B', '-od', dir, '-k', 'QueryRetrieveLevel=STUDY', '-k', `StudyInstanceUID=${study}`, ...archive.dcmArgs('GETSCU')]);
    const o = retrieveOutcome(g, 'GET');
    expect(o.status, o.out.slice(-3000)).toBe(0);
    expect(o.completed).toBe(10);
    expect(o.failed).toBe(0);
    // A pending response came before any sub-operation (while the restore ran).
    expect(o.pendingBeforeFirst).toBeGreaterThanOrEqual(1);
    expect(folderDigests(dir)).toEqual(expected(files));
    rmSync(dir, { recursive: true, force: true });
  });

  it('C-MOVE of a cold study to a storescp restores it and sends every object byte for byte', async () => {
    const { study, files } = await storeStudy(archive, 'RST-5', 6);
    await archive.waitIndexed(28);
    await moveToCold(archive, study, 6);
    const port = await freePort();
    const dir = mkdtempSync(path.join(tmpdir(), 'vna-restore-scp-'));
    mkdirSync(dir, { recursive: true });
    const scp: ChildProcess = spawn('storescp', ['-aet', 'RSTDEST', '-od', dir, '+xa', '+B', String(port)], { env: { ...process.env, TCP_NODELAY: '1' } });
    try {
      for (let i = 0; i < 100 && !(await canConnect(port)); i++) await sleep(50);
      const reg = await api(archive, '/api/aes', { method: 'POST', body: { aeTitle: 'RSTDEST', host: '127.0.0.1', port } });
      expect(reg.status).toBe(201);
      const m = await run('movescu', ['-d', '-S', '-aem', 'RSTDEST', '-k', 'QueryRetrieveLevel=STUDY', '-k', `StudyInstanceUID=${study}`, ...archive.dcmArgs('MOVESCU')]);
      const o = retrieveOutcome(m, 'MOVE');
      expect(o.status, o.out.slice(-3000)).toBe(0);
      expect(o.completed).toBe(6);
      expect(o.failed).toBe(0);
      expect(folderDigests(dir)).toEqual(expected(files));
    } finally {
      scp.kill('SIGTERM');
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('a restore killed with kill -9 completes after a restart: every copy verified, none half-written, nothing left unnamed', async () => {
    const { study, files } = await storeStudy(archive, 'RST-6', 40);
    await archive.waitIndexed(68);
    await moveToCold(archive, study, 40);
    const r = await api<{ restoreId: string }>(archive, `/api/studies/${study}/restore`, { method: 'POST' });
    expect(r.status).toBe(202);
    await until('restore under way', archive, async () => {
      const v = await archive.db.query(`SELECT instances_restored FROM study_restore WHERE id = $1`, [r.body.restoreId]);
      return v.rows[0].instances_restored >= 8 ? true : undefined;
    });
    await archive.kill9();
    const mid = await archive.db.query(`SELECT state, instances_restored FROM study_restore WHERE id = $1`, [r.body.restoreId]);
    expect(mid.rows[0].state).toBe('IN_PROCESS');
    expect(mid.rows[0].instances_restored).toBeLessThan(40);

    const restarted = await Archive.start({ env: archive.env, reuse: archive });
    started.push(restarted);
    archive = restarted;
    const done = await until('restore after restart', archive, async () => {
      const v = (await api<RestoreView>(archive, `/api/storage/restores/${r.body.restoreId}`)).body;
      return ['COMPLETED', 'FAILED'].includes(v.state) ? v : undefined;
    });
    expect(done.state, JSON.stringify(done)).toBe('COMPLETED');
    expect(done.attempts).toBeGreaterThanOrEqual(2);
    const rows = await restoredRows(archive, study);
    expect(rows.map((x) => x.status)).toEqual(Array(40).fill('RESTORED'));
    for (const row of rows) {
      const bytes = readFileSync(path.join(archive.dataDir, 'storage/hot', row.object_key));
      expect(sha256(bytes)).toBe(row.sha256);
      expect(xxh64(bytes)).toBe(row.xxh64);
    }
    // Every file in the restore area is named by a location row (nothing half-written left over).
    const named = (await restoredRows(archive)).map((x) => x.object_key).sort();
    expect(restoreAreaFiles(archive)).toEqual(named);
    expect((await wadoStudyDigests(archive, study)).digests).toEqual(expected(files));
  });
});

describe('restores without waiting, and their expiry', () => {
  let archive: Archive;

  beforeAll(async () => {
    archive = await Archive.start({ env: env({ VNA_RESTORE_WAIT_S: '0', VNA_RESTORE_KEEP_S: '8', VNA_TIERING_FAULT: 'slow-copy' }) });
    started.push(archive);
  });
  afterAll(async () => {
    for (const a of started) await a.stop();
  });

  it('VNA_RESTORE_WAIT_S=0: the first WADO-RS answers 503 + Retry-After, a later one the bytes sent; expired copies are swept and a new restore serves it again', async () => {
    const { study, files } = await storeStudy(archive, 'RST-7', 6);
    await archive.waitIndexed(6);
    await moveToCold(archive, study, 6);

    const first = await wadoStudyDigests(archive, study);
    expect(first.status).toBe(503);
    expect(Number(first.retryAfter)).toBeGreaterThanOrEqual(1);
    expect(first.text).toContain('offline tier');
    const served = await until('WADO-RS after the restore', archive, async () => {
      const r = await wadoStudyDigests(archive, study);
      if (r.status === 503) {
        expect(r.retryAfter).not.toBeNull();
        return undefined;
      }
      return r;
    });
    expect(served.status).toBe(200);
    expect(served.digests).toEqual(expected(files));
    // Served as soon as every copy is restored; the journal says COMPLETED right after.
    const restores = await until('restore completed', archive, async () => {
      const q = await archive.db.query(`SELECT state FROM study_restore WHERE study_iuid = $1`, [study]);
      return q.rows.every((x: { state: string }) => x.state === 'COMPLETED') ? q.rows : undefined;
    });
    expect(restores).toEqual([{ state: 'COMPLETED' }]); // one restore, however many requests asked
    const keys = (await restoredRows(archive, study)).map((x) => x.object_key);
    expect(keys).toHaveLength(6);
    expect(restoreAreaFiles(archive)).toEqual([...keys].sort());

    // VNA_RESTORE_KEEP_S=8: the rows go, then their objects; the cold copies stay.
    await until('sweep', archive, async () => ((await restoredRows(archive, study)).length === 0 ? true : undefined), 40_000);
    await until('objects deleted', archive, async () => (restoreAreaFiles(archive).length === 0 ? true : undefined), 10_000);
    const view = (await api<LocationsView>(archive, `/api/studies/${study}/locations`)).body;
    expect(view.tiers).toEqual({ cold: 6 });
    expect(view.restored).toEqual({ instances: 0, expiresAt: null });
    for (const inst of view.instances) expect(inst.locations.map((l) => [l.tier, l.status])).toEqual([['cold', 'OK']]);

    // Readable again through another restore.
    expect((await wadoStudyDigests(archive, study)).status).toBe(503);
    const again = await until('WADO-RS after the second restore', archive, async () => {
      const r = await wadoStudyDigests(archive, study);
      return r.status === 200 ? r : undefined;
    });
    expect(again.digests).toEqual(expected(files));
    await until('second restore completed', archive, async () => {
      const q = await archive.db.query(`SELECT state FROM study_restore WHERE study_iuid = $1`, [study]);
      return q.rows.every((x: { state: string }) => x.state === 'COMPLETED') ? true : undefined;
    });
    expect((await archive.db.query(`SELECT state FROM study_restore WHERE study_iuid = $1 ORDER BY id`, [study])).rows).toEqual([
      { state: 'COMPLETED' },
      { state: 'COMPLETED' },
    ]);
  });

  it('VNA_RESTORE_WAIT_S=0: C-GET of a cold study fails its sub-operations with a comment while the restore runs', async () => {
    const { study } = await storeStudy(archive, 'RST-8', 6);
    await archive.waitIndexed(12);
    await moveToCold(archive, study, 6);
    const dir = mkdtempSync(path.join(tmpdir(), 'vna-restore-get0-'));
    const g = await run('getscu', ['-d', '-S', '+B', '-od', dir, '-k', 'QueryRetrieveLevel=STUDY', '-k', `StudyInstanceUID=${study}`, ...archive.dcmArgs('GETSCU')]);
    const o = retrieveOutcome(g, 'GET');
    expect(o.completed + o.failed).toBe(6);
    expect(o.failed).toBeGreaterThanOrEqual(1);
    expect(o.status).not.toBe(0);
    expect(o.out).toContain('restore from offline tier in progress');
    // What was sent (if any instance was restored meanwhile) is byte for byte what was stored.
    for (const [sop, digest] of folderDigests(dir)) expect(digest).toBe(sent.get(sop));
    rmSync(dir, { recursive: true, force: true });
  });
});
