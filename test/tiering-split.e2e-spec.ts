/**
 * The tiering worker as its own process (apps/tiering, VNA_ROLES without tiering in the archive):
 * kill -9 of the tiering process while it copies, and again right after the switch (before the
 * source objects are deleted); each time every instance has an intact OK copy, and a new tiering process finishes
 * the move with no copy left behind.
 */
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { Archive, datasetBytes, generateStudies, run, sha256, sleep, storeResponses, tiersEnv, uid, xxh64 } from './support/archive.js';
import { wadoStudyDigests } from './support/retrieve.js';

const started: Archive[] = [];
afterAll(async () => {
  for (const a of started) await a.stop();
});

const TIERS = tiersEnv([
  { id: 'hot', kind: 'fs', path: 'storage/hot', availability: 'online' },
  { id: 'cold', kind: 'fs', path: 'storage/cold', availability: 'nearline' },
]);

interface MoveView {
  state: string;
  instancesMoved: number;
  instancesTotal: number;
  attempts: number;
}

function filesUnder(dir: string): string[] {
  if (!existsSync(dir)) return [];
  return readdirSync(dir, { recursive: true, withFileTypes: true })
    .filter((d) => d.isFile() && !path.join(d.parentPath, d.name).includes(`${path.sep}.tmp`))
    .map((d) => path.join(d.parentPath, d.name));
}

/** Every instance of the study has a newest OK location whose object exists with its recorded digest. */
async function expectEveryInstanceIntact(a: Archive, study: string, digests: Map<string, string>) {
  const rows = await a.db.query(
    `SELECT i.sop_iuid, l.storage_id, l.object_key, l.sha256, l.xxh64 FROM instance i
       JOIN LATERAL (SELECT * FROM location WHERE instance_fk = i.id AND status = 'OK' ORDER BY version DESC, id DESC LIMIT 1) l ON true
      WHERE i.study_iuid = $1`,
    [study],
  );
  expect(rows.rowCount).toBe(digests.size);
  for (const r of rows.rows) {
    const file = path.join(a.dataDir, 'storage', r.storage_id, r.object_key);
    expect(existsSync(file), `${r.sop_iuid} at ${r.storage_id}`).toBe(true);
    const bytes = readFileSync(file);
    expect(sha256(bytes)).toBe(r.sha256);
    // The moved copy carries the check value that retrieval verifies: it must be the bytes' own.
    expect(xxh64(bytes)).toBe(r.xxh64);
    expect(sha256(datasetBytes(bytes))).toBe(digests.get(r.sop_iuid));
  }
  return rows.rows as Array<{ storage_id: string }>;
}

describe('tiering as its own process', () => {
  it('survives kill -9 while copying and right after the switch (sources not yet deleted); a new tiering process completes the move', async () => {
    const archive = await Archive.start({ env: { ...TIERS, VNA_ROLES: 'ingest,indexer,retrieval' } });
    started.push(archive);
    const work = mkdtempSync(path.join(tmpdir(), 'vna-split-tier-'));
    const study = uid();
    const files = await generateStudies(work, [
      { patientId: 'SPLIT-T', patientName: 'Split^Tier', studyUid: study, studyDate: '20240401', series: [{ seriesUid: uid(), modality: 'CT', instances: 30, rows: 128, cols: 128 }] },
    ]);
    const r = await run('storescu', ['-v', '+sd', '+r', ...archive.dcmArgs(), work]);
    expect(storeResponses(r.stderr).ok).toBe(30);
    await archive.waitIndexed(30);
    const digests = new Map(files.map((f) => [f.sopInstanceUid, sha256(datasetBytes(readFileSync(f.path)))]));

    // No tiering process yet: the move is journaled and waits.
    const req = await fetch(`${archive.http}/api/studies/${study}/move`, {
      method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ targetTier: 'cold' }),
    });
    expect(req.status).toBe(202);
    const { moveId } = (await req.json()) as { moveId: string };
    const move = async () => (await fetch(`${archive.http}/api/storage/moves/${moveId}`).then((x) => x.json())) as MoveView;
    await sleep(1000);
    expect(await move()).toMatchObject({ state: 'SCHEDULED', attempts: 0 });

    // 1. kill -9 while copying.
    let tiering = await Archive.start({ app: 'tiering', env: { ...TIERS, VNA_TIERING_FAULT: 'slow-copy' }, reuse: archive });
    started.push(tiering);
    for (let i = 0; i < 500; i++) {
      const m = await move();
      if (m.state === 'COPYING' && m.instancesMoved >= 5) break;
      await sleep(20);
    }
    expect(await move()).toMatchObject({ state: 'COPYING' });
    await tiering.kill9();
    const whileCopying = await expectEveryInstanceIntact(archive, study, digests);
    expect(whileCopying.every((x) => x.storage_id === 'hot')).toBe(true);
    // Meanwhile the target loses one verified copy and another is damaged: the next attempt must
    // notice before relying on them.
    const copied = await archive.db.query(`SELECT target_key FROM study_move_item WHERE move_fk = $1 AND state = 'COPIED' ORDER BY id LIMIT 2`, [moveId]);
    expect(copied.rowCount).toBe(2);
    rmSync(path.join(archive.dataDir, 'storage/cold', copied.rows[0].target_key));
    const damaged = path.join(archive.dataDir, 'storage/cold', copied.rows[1].target_key);
    const bytes = readFileSync(damaged);
    bytes[bytes.length - 10] ^= 0x55;
    writeFileSync(damaged, bytes);

    // 2. kill -9 right after the switch (in the grace period before the sources are deleted).
    tiering = await Archive.start({ app: 'tiering', env: { ...TIERS, VNA_TIERING_FAULT: 'slow-copy' }, reuse: archive });
    started.push(tiering);
    for (let i = 0; i < 1500 && (await move()).state !== 'SWITCHED'; i++) await sleep(10);
    expect(await move()).toMatchObject({ state: 'SWITCHED', instancesMoved: 30 });
    await tiering.kill9();
    const afterSwitch = await expectEveryInstanceIntact(archive, study, digests);
    expect(afterSwitch.every((x) => x.storage_id === 'cold')).toBe(true);

    // 3. A new tiering process finishes it.
    tiering = await Archive.start({ app: 'tiering', env: TIERS, reuse: archive });
    started.push(tiering);
    for (let i = 0; i < 600 && (await move()).state !== 'COMPLETED'; i++) await sleep(100);
    const done = await move();
    expect(done).toMatchObject({ state: 'COMPLETED', instancesTotal: 30, instancesMoved: 30 });
    expect(done.attempts).toBeGreaterThanOrEqual(2);
    await expectEveryInstanceIntact(archive, study, digests);
    expect(filesUnder(path.join(archive.dataDir, 'storage/cold'))).toHaveLength(30);
    expect(filesUnder(path.join(archive.dataDir, 'storage/hot'))).toEqual([]);
    const items = await archive.db.query(`SELECT state, count(*)::int AS n FROM study_move_item GROUP BY state ORDER BY state`);
    expect(items.rows.find((x) => x.state === 'DONE')?.n).toBe(30);
    expect(items.rows.filter((x) => !['DONE', 'REVOKED'].includes(x.state))).toEqual([]);

    // Served from cold by the archive process, bytes unchanged.
    const wado = await wadoStudyDigests(archive, study);
    expect(wado.status).toBe(200);
    expect(wado.digests).toEqual(digests);
  });

  it('an instance re-sent with other bytes during a move keeps its new version where it landed; the stale copy is deleted', async () => {
    const archive = await Archive.start({ env: { ...TIERS, VNA_TIERING_FAULT: 'slow-copy' } });
    started.push(archive);
    const work = mkdtempSync(path.join(tmpdir(), 'vna-stale-'));
    const study = uid();
    const series = uid();
    const files = await generateStudies(work, [
      { patientId: 'STALE', patientName: 'Stale^Copy', studyUid: study, studyDate: '20240401', series: [{ seriesUid: series, modality: 'CT', instances: 20, rows: 64, cols: 64 }] },
    ]);
    expect(storeResponses((await run('storescu', ['-v', '+sd', '+r', ...archive.dcmArgs(), work])).stderr).ok).toBe(20);
    await archive.waitIndexed(20);
    const last = files[files.length - 1]!; // copied last (instances are copied in id order)
    const req = await fetch(`${archive.http}/api/studies/${study}/move`, {
      method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ targetTier: 'cold' }),
    });
    const { moveId } = (await req.json()) as { moveId: string };
    const move = async () => (await fetch(`${archive.http}/api/storage/moves/${moveId}`).then((x) => x.json())) as MoveView & { state: string };
    for (let i = 0; i < 500 && (await move()).instancesMoved < 3; i++) await sleep(20);
    // While the move copies, the last instance is re-sent with different bytes (a new version in hot).
    const work2 = mkdtempSync(path.join(tmpdir(), 'vna-stale2-'));
    const [resent] = await generateStudies(work2, [
      { patientId: 'STALE', patientName: 'Stale^Copy', studyUid: study, studyDate: '20240401', series: [{ seriesUid: series, modality: 'CT', instances: 1, rows: 32, cols: 32, sopUids: [last.sopInstanceUid] }] },
    ]);
    expect(storeResponses((await run('storescu', ['-v', ...archive.dcmArgs(), resent!.path])).stderr).ok).toBe(1);
    expect((await move()).state).toBe('COPYING');
    for (let i = 0; i < 600 && (await move()).state !== 'COMPLETED'; i++) await sleep(100);
    expect(await move()).toMatchObject({ state: 'COMPLETED' });

    const rows = await archive.db.query(
      `SELECT i.sop_iuid, l.storage_id, l.status, l.version, l.object_key, l.sha256 FROM instance i JOIN location l ON l.instance_fk = i.id
        WHERE i.study_iuid = $1 ORDER BY i.id, l.id`, [study]);
    const ofLast = rows.rows.filter((r) => r.sop_iuid === last.sopInstanceUid);
    // The old version stays REPLACED in hot (audit trail, as ingest keeps it); the new version is OK in hot.
    expect(ofLast.map((r) => [r.storage_id, r.status, r.version])).toEqual([['hot', 'REPLACED', 1], ['hot', 'OK', 2]]);
    const newBytes = readFileSync(path.join(archive.dataDir, 'storage/hot', ofLast[1].object_key));
    expect(sha256(datasetBytes(newBytes))).toBe(sha256(datasetBytes(readFileSync(resent!.path))));
    const others = rows.rows.filter((r) => r.sop_iuid !== last.sopInstanceUid);
    expect(others).toHaveLength(19);
    expect(others.every((r) => r.storage_id === 'cold' && r.status === 'OK')).toBe(true);
    // The copy of the old version made for the move was deleted: cold holds exactly the 19 moved objects.
    expect(filesUnder(path.join(archive.dataDir, 'storage/cold'))).toHaveLength(19);
    const items = await archive.db.query(`SELECT state, count(*)::int AS n FROM study_move_item WHERE move_fk = $1 GROUP BY state ORDER BY state`, [moveId]);
    expect(items.rows).toEqual([{ state: 'DONE', n: 19 }, { state: 'REVOKED', n: 1 }]);
    const spread = (await fetch(`${archive.http}/api/studies/${study}/locations`).then((x) => x.json())) as { tiers: Record<string, number> };
    expect(spread.tiers).toEqual({ cold: 19, hot: 1 });
  });
});
