/**
 * Lifecycle policy (issue 4): versioned rules through /api/lifecycle/policy (400 naming the field),
 * a dry-run evaluation that plans moves with per-tier bytes and monthly costs and moves nothing,
 * the settle time, a real evaluation that enqueues the moves, and the BullMQ job scheduler running
 * it on its own. Default tiers (hot, warm, cold on the filesystem).
 */
import { existsSync, mkdtempSync, readdirSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Archive, datasetBytes, generateStudies, run, sha256, sleep, storeResponses, uid } from './support/archive.js';
import { multipartDigests, WADO_ACCEPT } from './support/retrieve.js';
import { api as archiveApi, type ApiInit } from './support/tiering.js';

let archive: Archive;
const started: Archive[] = [];
/** The study the job scheduler moved to cold (offline by default). */
let scheduled: { study: string; digests: Map<string, string> } | undefined;

const api = <T>(p: string, init?: ApiInit) => archiveApi<T>(archive, p, init);

async function store(modality: string, instances: number): Promise<{ study: string; bytes: number; digests: Map<string, string> }> {
  const work = mkdtempSync(path.join(tmpdir(), 'vna-lc-'));
  const study = uid();
  const files = await generateStudies(work, [
    { patientId: `LC-${modality}`, patientName: 'Life^Cycle', studyUid: study, studyDate: '20200301', series: [{ seriesUid: uid(), modality, instances }] },
  ]);
  const r = await run('storescu', ['-v', '+sd', '+r', ...archive.dcmArgs(), work]);
  expect(storeResponses(r.stderr).ok).toBe(instances);
  const digests = new Map(files.map((f) => [f.sopInstanceUid, sha256(datasetBytes(readFileSync(f.path)))]));
  const size = await archive.db.query(`SELECT sum(size_bytes)::bigint AS n FROM instance WHERE study_iuid = $1`, [study]);
  return { study, bytes: Number(size.rows[0].n), digests };
}

async function tiersOf(study: string): Promise<Record<string, number>> {
  return (await api<{ tiers: Record<string, number> }>(`/api/studies/${study}/locations`)).body.tiers;
}

async function waitOn(study: string, tier: string, count: number, timeoutMs = 60_000) {
  const t0 = Date.now();
  while (Date.now() - t0 < timeoutMs) {
    if (JSON.stringify(await tiersOf(study)) === JSON.stringify({ [tier]: count })) return;
    await sleep(200);
  }
  throw new Error(`study ${study} not on ${tier}: ${JSON.stringify(await tiersOf(study))}\n${archive.logTail()}`);
}

interface Plan {
  dryRun: boolean;
  policyVersion: number;
  studiesEvaluated: number;
  skipped: { settling: number; moving: number };
  moves: Array<{ studyIuid: string; rule: string; from: string[]; to: string; bytes: number }>;
  tiers: Array<{ tier: string; bytesBefore: number; bytesAfter: number; monthlyCostBefore: number; monthlyCostAfter: number }>;
  totals: { bytesMoved: number; monthlyCostBefore: number; monthlyCostAfter: number };
  enqueued?: Array<{ studyIuid: string; moveId: string }>;
}

describe('lifecycle policy', () => {
  beforeAll(async () => {
    archive = await Archive.start({ env: { VNA_LIFECYCLE_INTERVAL_S: '0' } });
    started.push(archive);
  });
  afterAll(async () => {
    for (const a of started) await a.stop();
  });

  it('refuses an invalid policy with 400 naming the field, and nothing is saved', async () => {
    const put = (body: unknown) => api<{ message: unknown }>('/api/lifecycle/policy', { method: 'PUT', body });
    const cases: Array<[unknown, string]> = [
      [{ rules: [{ name: 'a', match: {}, targetTier: 'tape' }] }, 'rules.0.targetTier must be one of hot, warm, cold'],
      [{ rules: [{ name: 'a', match: { minStudyAgeDays: -1 }, targetTier: 'warm' }] }, 'rules.0.match.minStudyAgeDays'],
      [{ rules: [{ name: 'a', match: { modalities: 'CT' }, targetTier: 'warm' }] }, 'rules.0.match.modalities'],
      [{ rules: [{ name: 'a', match: { colour: 'red' }, targetTier: 'warm' }] }, 'colour'],
      [{ rules: [{ match: {}, targetTier: 'warm' }] }, 'rules.0.name'],
      [{ rules: 'all to cold' }, 'rules'],
      [{ rules: [], settleMinutes: 'soon' }, 'settleMinutes'],
    ];
    for (const [body, field] of cases) {
      const r = await put(body);
      expect(r.status, JSON.stringify(body)).toBe(400);
      expect(JSON.stringify(r.body.message)).toContain(field);
    }
    expect((await api<{ version: number; rules: unknown[] }>('/api/lifecycle/policy')).body).toMatchObject({ version: 0, rules: [] });
    const dry = await api<{ message: unknown }>('/api/lifecycle/evaluate?dryRun=maybe', { method: 'POST' });
    expect(dry.status).toBe(400);
    expect(JSON.stringify(dry.body.message)).toContain('dryRun');
  });

  it('keeps every version with who and when; plans with costs in a dry run; then enqueues the moves', async () => {
    const ct = await store('CT', 3);
    const mr = await store('MR', 2);
    await archive.waitIndexed(5);
    const rules = [
      { name: 'ct-cold', match: { modalities: ['CT'], minDaysSinceIngest: 0 }, targetTier: 'cold' },
      { name: 'mr-warm', match: { modalities: ['MR'], minStudyAgeDays: 365 }, targetTier: 'warm' },
    ];
    const v1 = await api<{ version: number; createdBy: string }>('/api/lifecycle/policy', {
      method: 'PUT', user: 'alice', body: { rules: [{ name: 'all-warm', match: {}, targetTier: 'warm' }], settleMinutes: 5 },
    });
    expect(v1.status).toBe(200);
    expect(v1.body).toMatchObject({ version: 1, createdBy: 'alice' });
    const v2 = await api<{ version: number }>('/api/lifecycle/policy', { method: 'PUT', user: 'bob', body: { rules, settleMinutes: 60 } });
    expect(v2.body.version).toBe(2);
    expect((await api<{ rules: Array<{ name: string }> }>('/api/lifecycle/policy?version=1')).body.rules.map((r) => r.name)).toEqual(['all-warm']);
    expect((await api<{ version: number; createdBy: string }>('/api/lifecycle/policy')).body).toMatchObject({ version: 2, createdBy: 'bob' });
    const versions = (await api<Array<{ version: number; createdBy: string; rules: number }>>('/api/lifecycle/policy/versions')).body;
    expect(versions.map((v) => [v.version, v.createdBy, v.rules])).toEqual([[1, 'alice', 1], [2, 'bob', 2]]);
    // Each version is in the audit trail too, with who saved it.
    const audit = await archive.db.query(`SELECT actor, detail FROM audit_event WHERE type = 'LIFECYCLE_POLICY_SAVED' ORDER BY id`);
    expect(audit.rows.map((r: { actor: string; detail: { version: number } }) => [r.actor, r.detail.version])).toEqual([['alice', 1], ['bob', 2]]);
    await expect(archive.db.query(`UPDATE lifecycle_policy SET created_by = 'mallory'`)).rejects.toThrow(/never changed or deleted/);
    await expect(archive.db.query(`DELETE FROM lifecycle_policy`)).rejects.toThrow(/never changed or deleted/);

    // Settle time: both studies received just now.
    const settling = (await api<Plan>('/api/lifecycle/evaluate?dryRun=true', { method: 'POST' })).body;
    expect(settling).toMatchObject({ dryRun: true, policyVersion: 2, studiesEvaluated: 2, skipped: { settling: 2, moving: 0 }, moves: [] });

    await api('/api/lifecycle/policy', { method: 'PUT', body: { rules, settleMinutes: 0 } });
    const plan = (await api<Plan>('/api/lifecycle/evaluate?dryRun=true', { method: 'POST' })).body;
    expect(plan.policyVersion).toBe(3);
    expect(plan.moves.sort((a, b) => a.to.localeCompare(b.to))).toEqual([
      { studyIuid: ct.study, rule: 'ct-cold', from: ['hot'], to: 'cold', bytes: ct.bytes },
      { studyIuid: mr.study, rule: 'mr-warm', from: ['hot'], to: 'warm', bytes: mr.bytes },
    ]);
    const total = ct.bytes + mr.bytes;
    const cost = (bytes: number, price: number) => Math.round((bytes / 1e9) * price * 1e9) / 1e9;
    expect(plan.tiers).toEqual([
      { tier: 'hot', bytesBefore: total, bytesAfter: 0, monthlyCostBefore: cost(total, 0.023), monthlyCostAfter: 0 },
      { tier: 'warm', bytesBefore: 0, bytesAfter: mr.bytes, monthlyCostBefore: 0, monthlyCostAfter: cost(mr.bytes, 0.0125) },
      { tier: 'cold', bytesBefore: 0, bytesAfter: ct.bytes, monthlyCostBefore: 0, monthlyCostAfter: cost(ct.bytes, 0.004) },
    ]);
    expect(plan.totals.bytesMoved).toBe(total);
    expect(plan.totals.monthlyCostAfter).toBeLessThan(plan.totals.monthlyCostBefore);
    // A dry run moves nothing and journals nothing.
    expect(await tiersOf(ct.study)).toEqual({ hot: 3 });
    expect((await archive.db.query(`SELECT count(*)::int AS n FROM study_move`)).rows[0].n).toBe(0);

    const real = (await api<Plan>('/api/lifecycle/evaluate', { method: 'POST' })).body;
    expect(real.dryRun).toBe(false);
    expect(real.enqueued).toHaveLength(2);
    await waitOn(ct.study, 'cold', 3);
    await waitOn(mr.study, 'warm', 2);
    const moves = await archive.db.query(`SELECT state, requested_by FROM study_move ORDER BY id`);
    expect(moves.rows.map((m) => m.requested_by).sort()).toEqual(['lifecycle-policy v3 (ct-cold)', 'lifecycle-policy v3 (mr-warm)']);
    // Bytes unchanged on the new tiers.
    const rows = await archive.db.query(
      `SELECT i.sop_iuid, l.storage_id, l.object_key FROM instance i JOIN location l ON l.instance_fk = i.id WHERE i.study_iuid = $1`, [ct.study]);
    for (const r of rows.rows) {
      const file = path.join(archive.dataDir, 'storage', r.storage_id, r.object_key);
      expect(existsSync(file)).toBe(true);
      expect(sha256(datasetBytes(readFileSync(file)))).toBe(ct.digests.get(r.sop_iuid));
    }
    for (let i = 0; i < 50 && (await archive.db.query(`SELECT 1 FROM study_move WHERE state <> 'COMPLETED'`)).rowCount; i++) await sleep(100);
    // Settled: the next evaluation plans nothing.
    expect((await api<Plan>('/api/lifecycle/evaluate?dryRun=true', { method: 'POST' })).body.moves).toEqual([]);
  });

  it('the job scheduler evaluates the policy on its own (VNA_LIFECYCLE_INTERVAL_S)', async () => {
    const ct = await store('CT', 2);
    await archive.waitIndexed(7);
    expect(await tiersOf(ct.study)).toEqual({ hot: 2 });
    await archive.stop();
    archive = await Archive.start({ env: { VNA_LIFECYCLE_INTERVAL_S: '2' }, reuse: archive });
    started.push(archive);
    await waitOn(ct.study, 'cold', 2);
    const m = await archive.db.query(`SELECT requested_by FROM study_move m WHERE study_iuid = $1`, [ct.study]);
    expect(m.rows[0].requested_by).toBe('lifecycle-policy v3 (ct-cold)');
    scheduled = ct;
  });

  // Changed with restores (issue 4, offline part): retrieval of a study on the offline tier no
  // longer answers 410 / sends nothing; it restores the study into hot and then serves it.
  it('retrieval of a study on the offline tier restores it first (cold stays the copy of record); after a move to hot it is served again', async () => {
    const { study, digests } = scheduled!;
    // The scheduler's move has switched; let it finish (a move to another tier meanwhile is a 409).
    for (let i = 0; i < 100 && (await archive.db.query(`SELECT 1 FROM study_move WHERE study_iuid = $1 AND state <> 'COMPLETED'`, [study])).rowCount; i++) {
      await sleep(100);
    }
    const conflict = (await archive.db.query(`SELECT state FROM study_move WHERE study_iuid = $1`, [study])).rows;
    expect(conflict).toEqual([{ state: 'COMPLETED' }]);
    const wado = () => fetch(`${archive.http}/dicom-web/studies/${study}`, { headers: WADO_ACCEPT });
    const digestsOf = async (res: Response) => multipartDigests(Buffer.from(await res.arrayBuffer()), res.headers.get('content-type') ?? '');
    const restored = await wado();
    expect(restored.status).toBe(200);
    expect(await digestsOf(restored)).toEqual(digests);
    const dir = mkdtempSync(path.join(tmpdir(), 'vna-lc-get-'));
    await run('getscu', ['-S', '-od', dir, '-k', 'QueryRetrieveLevel=STUDY', '-k', `StudyInstanceUID=${study}`, ...archive.dcmArgs('GETSCU')]);
    expect(readdirSync(dir)).toHaveLength(2);
    const statuses = await archive.db.query(
      `SELECT l.status, l.storage_id FROM location l JOIN instance i ON i.id = l.instance_fk WHERE i.study_iuid = $1 ORDER BY l.status, l.id`, [study]);
    expect(statuses.rows).toEqual([
      { status: 'OK', storage_id: 'cold' }, { status: 'OK', storage_id: 'cold' },
      { status: 'RESTORED', storage_id: 'hot' }, { status: 'RESTORED', storage_id: 'hot' },
    ]);

    const r = await api<{ moveId: string }>(`/api/studies/${study}/move`, { method: 'POST', body: { targetTier: 'hot' } });
    expect(r.status).toBe(202);
    await waitOn(study, 'hot', 2);
    const back = await wado();
    expect(back.status).toBe(200);
    expect(await digestsOf(back)).toEqual(digests);
  });
});
