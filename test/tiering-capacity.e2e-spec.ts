/**
 * Hot-tier capacity watermarks and promotion on access (issue 4). Filesystem tiers hot (a small
 * capacityBytes with high/low watermarks), warm (nearline) and cold (offline); studies generated
 * with pydicom and sent with storescu; access order set by real WADO-RS retrievals.
 * - Above the high watermark, a capacity check demotes exactly the least recently accessed
 *   studies the lifecycle policy allows (MR is kept on hot by a rule, US matches no rule: both
 *   stay) until the usage is below the low watermark; every object byte-identical through WADO-RS,
 *   QIDO-RS still finds every study; GET /api/storage/tiers reports the watermark state.
 * - With promoteOnAccess on warm, a WADO-RS or C-GET retrieval of a demoted study brings it back
 *   to hot (journaled move), bytes unchanged, and the lifecycle policy leaves it there.
 * - The scheduled check (VNA_CAPACITY_INTERVAL_S) demotes on its own.
 */
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Archive, datasetBytes, generateStudies, run, sha256, sleep, storeResponses, tiersEnv, uid } from './support/archive.js';
import { cgetStudyDigests, wadoStudyDigests } from './support/retrieve.js';
import { api as archiveApi, type ApiInit, until as archiveUntil } from './support/tiering.js';

const CAPACITY = 1_000_000;
let archive: Archive;
const started: Archive[] = [];

interface Stored {
  study: string;
  modality: string;
  digests: Map<string, string>;
}
/** In ingest order: MR, MR, US, then CT 0..6. */
const studies: Stored[] = [];
const ct = () => studies.filter((s) => s.modality === 'CT');
/** The CT studies least recently accessed first (set in the first test). */
let ctByAccess: Stored[] = [];
let demoted: string[] = [];

interface CapacityView {
  capacityBytes: number;
  capacitySource: string;
  usedBytes: number;
  usedSource: string;
  highWatermark: number;
  lowWatermark: number;
  highBytes: number;
  lowBytes: number;
  state: string;
  demotionsInFlight: number;
  databaseBytes: number;
  filesystem?: { sizeBytes: number; usedBytes: number; freeBytes: number };
}
interface TierView {
  id: string;
  bytes: number;
  studies: number;
  promoteOnAccess: boolean;
  capacity?: CapacityView;
}
interface CheckResult {
  dryRun: boolean;
  before: CapacityView;
  projectedBytes: number;
  demotions: Array<{ studyIuid: string; rule: string; targetTier: string; bytes: number; moveId?: string }>;
  skipped: { settling: number; moving: number; pinned: number; noRule: number };
  reachesLow: boolean;
}

function env(warm: Record<string, unknown> = {}, hot: Record<string, unknown> = {}, extra: Record<string, string> = {}): Record<string, string> {
  return {
    ...tiersEnv([
      { id: 'hot', kind: 'fs', path: 'storage/hot', availability: 'online', capacityBytes: CAPACITY, highWatermark: 50, lowWatermark: 35, ...hot },
      { id: 'warm', kind: 'fs', path: 'storage/warm', availability: 'nearline', ...warm },
      { id: 'cold', kind: 'fs', path: 'storage/cold', availability: 'offline' },
    ]),
    VNA_LIFECYCLE_INTERVAL_S: '0',
    VNA_CAPACITY_INTERVAL_S: '0',
    ...extra,
  };
}

const api = <T>(p: string, init?: ApiInit) => archiveApi<T>(archive, p, init);
/** Polls `probe` until it returns a value other than undefined (no fixed sleeps in assertions). */
const until = <T>(what: string, probe: () => Promise<T | undefined>) => archiveUntil(what, archive, probe, 120_000);

async function tiersOf(study: string): Promise<Record<string, number>> {
  return (await api<{ tiers: Record<string, number> }>(`/api/studies/${study}/locations`)).body.tiers;
}

async function hotCapacity(): Promise<CapacityView> {
  const tiers = (await api<TierView[]>('/api/storage/tiers')).body;
  return tiers.find((t) => t.id === 'hot')!.capacity!;
}

/** Waits until no move is unfinished. */
async function movesSettled() {
  await until('moves to finish', async () => {
    const r = await archive.db.query(`SELECT count(*)::int AS n FROM study_move WHERE state IN ('SCHEDULED', 'COPYING', 'SWITCHED')`);
    return r.rows[0].n === 0 ? true : undefined;
  });
}

async function store(modality: string, n: number): Promise<Stored> {
  const work = mkdtempSync(path.join(tmpdir(), 'vna-cap-'));
  const study = uid();
  const files = await generateStudies(work, [
    {
      patientId: `CAP-${studies.length}`, patientName: 'Capacity^Test', studyUid: study, studyDate: '20240101',
      series: [{ seriesUid: uid(), modality, instances: n, rows: 128, cols: 128 }],
    },
  ]);
  const r = await run('storescu', ['-v', '+sd', '+r', ...archive.dcmArgs(), work]);
  expect(storeResponses(r.stderr).ok, r.stderr).toBe(n);
  const s = { study, modality, digests: new Map(files.map((f) => [f.sopInstanceUid, sha256(datasetBytes(readFileSync(f.path)))])) };
  studies.push(s);
  // One study at a time: their ingest times (study.created_at) follow the order of sending.
  await archive.waitIndexed(studies.reduce((a, x) => a + x.digests.size, 0));
  return s;
}

/** A WADO-RS retrieval, then wait until the access tracker recorded it (it flushes every 2 s). */
async function access(s: Stored, after: Date | null): Promise<Date> {
  const got = await wadoStudyDigests(archive, s.study);
  expect(got.digests).toEqual(s.digests);
  return until(`access time of ${s.study}`, async () => {
    const r = await archive.db.query(`SELECT last_access_at FROM study WHERE study_iuid = $1`, [s.study]);
    const at = r.rows[0].last_access_at as Date | null;
    return at && (!after || at > after) ? at : undefined;
  });
}

const POLICY = {
  rules: [
    { name: 'mr-stays-hot', match: { modalities: ['MR'] }, targetTier: 'hot' },
    // Ten years: no study here is that old, so the policy itself moves nothing; the watermark may.
    { name: 'ct-old-warm', match: { modalities: ['CT'], minStudyAgeDays: 3650 }, targetTier: 'warm' },
  ],
  settleMinutes: 0,
};

describe('hot-tier capacity watermarks and promotion on access', () => {
  beforeAll(async () => {
    archive = await Archive.start({ env: env() });
    started.push(archive);
  });
  afterAll(async () => {
    for (const a of started) await a.stop();
  });

  it('reports the watermark state; without a lifecycle policy no study leaves hot', async () => {
    // Ten studies of 2 instances (~33 KB each): MR and US first (the least recently used), then CT.
    for (const m of ['MR', 'MR', 'US', 'CT', 'CT', 'CT', 'CT', 'CT', 'CT', 'CT']) await store(m, 2);
    const cap = await hotCapacity();
    const stored = await archive.db.query(`SELECT sum(size_bytes)::bigint AS n FROM location WHERE storage_id = 'hot'`);
    expect(cap).toMatchObject({
      capacityBytes: CAPACITY, capacitySource: 'config', usedSource: 'database', usedBytes: Number(stored.rows[0].n),
      highWatermark: 50, lowWatermark: 35, highBytes: 500_000, lowBytes: 350_000, state: 'above-high', demotionsInFlight: 0,
    });
    expect(cap.filesystem!.sizeBytes).toBeGreaterThan(0);
    // No lifecycle policy yet: the default settle time (60 min) holds every study, and no rule would allow one anyway.
    const none = (await api<CheckResult>('/api/storage/capacity/check?dryRun=true', { method: 'POST' })).body;
    expect(none).toMatchObject({ dryRun: true, demotions: [], reachesLow: false, skipped: { settling: 10, moving: 0, pinned: 0, noRule: 0 } });
    expect((await api<{ message: unknown }>('/api/storage/capacity/check?dryRun=soon', { method: 'POST' })).status).toBe(400);
  });

  it('above the high watermark, demotes exactly the least recently accessed allowed studies until usage is below the low one', async () => {
    expect((await api('/api/lifecycle/policy', { method: 'PUT', body: POLICY })).status).toBe(200);
    // Access order of the CT studies: #1 never; then 3, 0, 5, 2, 6, 4 (4 is the most recent).
    const c = ct();
    let last: Date | null = null;
    for (const i of [3, 0, 5, 2, 6, 4]) last = await access(c[i]!, last);
    ctByAccess = [c[1]!, c[3]!, c[0]!, c[5]!, c[2]!, c[6]!, c[4]!];

    // What the watermark must pick: walk the CT studies in access order until below 35 %.
    const sizes = new Map<string, number>();
    for (const s of studies) {
      const r = await archive.db.query(
        `SELECT sum(l.size_bytes)::bigint AS n FROM location l JOIN instance i ON i.id = l.instance_fk WHERE i.study_iuid = $1 AND l.storage_id = 'hot'`, [s.study]);
      sizes.set(s.study, Number(r.rows[0].n));
    }
    const before = await hotCapacity();
    expect(before.state).toBe('above-high');
    let projected = before.usedBytes;
    const want: string[] = [];
    for (const s of ctByAccess) {
      if (projected < 350_000) break;
      want.push(s.study);
      projected -= sizes.get(s.study)!;
    }
    expect(projected).toBeLessThan(350_000);
    // The scenario is meaningful: some CT studies go, the most recently accessed ones stay.
    expect(want.length).toBeGreaterThanOrEqual(3);
    expect(want.length).toBeLessThan(ctByAccess.length);

    const dry = (await api<CheckResult>('/api/storage/capacity/check?dryRun=true', { method: 'POST' })).body;
    expect(dry.demotions.map((d) => d.studyIuid)).toEqual(want);
    expect(dry.demotions.every((d) => d.targetTier === 'warm' && d.rule === 'ct-old-warm')).toBe(true);
    expect(dry.demotions.map((d) => d.bytes)).toEqual(want.map((u) => sizes.get(u)));
    // Passed over: 2 MR (kept on hot by mr-stays-hot) and the US study (no rule), all less recently used.
    expect(dry.skipped).toEqual({ settling: 0, moving: 0, pinned: 2, noRule: 1 });
    expect(dry).toMatchObject({ projectedBytes: projected, reachesLow: true });
    expect((await archive.db.query(`SELECT count(*)::int AS n FROM study_move`)).rows[0].n).toBe(0);

    const real = (await api<CheckResult>('/api/storage/capacity/check', { method: 'POST' })).body;
    expect(real.dryRun).toBe(false);
    expect(real.demotions.map((d) => d.studyIuid)).toEqual(want);
    expect(real.demotions.every((d) => d.moveId)).toBe(true);
    // A check while they run demotes nothing more: the bytes leaving hot count as gone.
    expect((await api<CheckResult>('/api/storage/capacity/check?dryRun=true', { method: 'POST' })).body.demotions).toEqual([]);
    await movesSettled();
    demoted = want;

    const moves = await archive.db.query(`SELECT study_iuid, state, target_tier, requested_by FROM study_move ORDER BY id`);
    expect(moves.rows.map((m) => m.study_iuid).sort()).toEqual([...want].sort());
    expect(moves.rows.every((m) => m.state === 'COMPLETED' && m.target_tier === 'warm' && m.requested_by === 'capacity-watermark (ct-old-warm)')).toBe(true);
    const audit = await archive.db.query(`SELECT study_iuid, actor, detail FROM audit_event WHERE type = 'CAPACITY_DEMOTION' ORDER BY id`);
    expect(audit.rows.map((a) => a.study_iuid)).toEqual(want);
    expect(audit.rows[0].detail).toMatchObject({ fromTier: 'hot', targetTier: 'warm', capacityBytes: CAPACITY, highWatermark: 50, lowWatermark: 35 });

    for (const s of studies) {
      const n = s.digests.size;
      expect(await tiersOf(s.study), `${s.modality} ${s.study}`).toEqual(want.includes(s.study) ? { warm: n } : { hot: n });
    }
    const after = await hotCapacity();
    expect(after).toMatchObject({ usedBytes: projected, state: 'below-low', demotionsInFlight: 0 });
    expect(after.usedBytes).toBeLessThan(after.lowBytes);
    const warm = (await api<TierView[]>('/api/storage/tiers')).body.find((t) => t.id === 'warm')!;
    expect(warm).toMatchObject({ studies: want.length, bytes: want.reduce((a, u) => a + sizes.get(u)!, 0), promoteOnAccess: false });

    // Every object byte-identical through WADO-RS; QIDO-RS finds every study.
    for (const s of studies) expect((await wadoStudyDigests(archive, s.study)).digests).toEqual(s.digests);
    const qido = await fetch(`${archive.http}/dicom-web/studies?PatientName=Capacity*&limit=100`, { headers: { Accept: 'application/dicom+json' } });
    const found = ((await qido.json()) as Array<Record<string, { Value: string[] }>>).map((r) => r['0020000D']!.Value[0]);
    expect(found.sort()).toEqual(studies.map((s) => s.study).sort());
    // Below the low watermark: nothing more to do.
    expect((await api<CheckResult>('/api/storage/capacity/check', { method: 'POST' })).body.demotions).toEqual([]);
  });

  it('with promoteOnAccess, a WADO-RS or C-GET retrieval brings a warm study back to hot; the policy leaves it there', async () => {
    await archive.stop();
    archive = await Archive.start({ env: env({ promoteOnAccess: true }), reuse: archive });
    started.push(archive);
    expect((await api<TierView[]>('/api/storage/tiers')).body.find((t) => t.id === 'warm')!.promoteOnAccess).toBe(true);
    const [viaWado, viaCget] = [studies.find((s) => s.study === demoted[0])!, studies.find((s) => s.study === demoted[1])!];

    // Served from warm at once (promotion never delays a retrieval), then moved to hot.
    expect((await wadoStudyDigests(archive, viaWado.study)).digests).toEqual(viaWado.digests);
    const got = await cgetStudyDigests(archive, viaCget.study);
    expect(got.code, got.stderr).toBe(0);
    expect(got.digests).toEqual(viaCget.digests);
    for (const s of [viaWado, viaCget]) {
      await until(`promotion of ${s.study}`, async () => (JSON.stringify(await tiersOf(s.study)) === JSON.stringify({ hot: s.digests.size }) ? true : undefined));
    }
    await movesSettled();
    const promotions = await archive.db.query(
      `SELECT study_iuid, state, target_tier FROM study_move WHERE requested_by = 'promote-on-access' ORDER BY study_iuid`);
    expect(promotions.rows).toEqual(
      [viaWado.study, viaCget.study].sort().map((u) => ({ study_iuid: u, state: 'COMPLETED', target_tier: 'hot' })),
    );
    const audited = await archive.db.query(`SELECT study_iuid FROM audit_event WHERE type = 'STUDY_PROMOTION' ORDER BY study_iuid`);
    expect(audited.rows.map((r) => r.study_iuid)).toEqual([viaWado.study, viaCget.study].sort());
    for (const s of [viaWado, viaCget]) expect((await wadoStudyDigests(archive, s.study)).digests).toEqual(s.digests);
    // One promotion per study, no more (the job id and the journal dedupe per study).
    expect((await archive.db.query(`SELECT count(*)::int AS n FROM study_move WHERE requested_by = 'promote-on-access'`)).rows[0].n).toBe(2);

    // A policy that sends every CT to warm at once plans the other CT studies on hot, not the promoted ones.
    await api('/api/lifecycle/policy', { method: 'PUT', body: { rules: [{ name: 'ct-warm', match: { modalities: ['CT'] }, targetTier: 'warm' }], settleMinutes: 0 } });
    const plan = (await api<{ moves: Array<{ studyIuid: string }>; skipped: { promoted: number } }>('/api/lifecycle/evaluate?dryRun=true', { method: 'POST' })).body;
    const onHotCt = ct().filter((s) => !demoted.includes(s.study)).map((s) => s.study);
    expect(plan.moves.map((m) => m.studyIuid).sort()).toEqual(onHotCt.sort());
    expect(plan.skipped.promoted).toBe(2);
    await api('/api/lifecycle/policy', { method: 'PUT', body: POLICY });
  });

  it('the scheduled check (VNA_CAPACITY_INTERVAL_S) demotes on its own', async () => {
    // Lower watermarks: the CT studies on hot (the promoted ones too) must go; MR and US stay.
    await archive.stop();
    archive = await Archive.start({ env: env({}, { highWatermark: 40, lowWatermark: 25 }, { VNA_CAPACITY_INTERVAL_S: '2' }), reuse: archive });
    started.push(archive);
    await until('the scheduled check to bring hot below its low watermark', async () => {
      const c = await hotCapacity();
      return c.state === 'below-low' && c.demotionsInFlight === 0 ? c : undefined;
    });
    await movesSettled();
    for (const s of studies) {
      expect(await tiersOf(s.study), `${s.modality} ${s.study}`).toEqual(s.modality === 'CT' ? { warm: s.digests.size } : { hot: s.digests.size });
      expect((await wadoStudyDigests(archive, s.study)).digests).toEqual(s.digests);
    }
  });
});
