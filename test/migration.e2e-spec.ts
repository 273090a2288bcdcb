/**
 * Migration jobs from a legacy archive: a real Orthanc loaded with generated studies (storescu),
 * the real archive as a process. C-MOVE and C-GET migrations must give exact counts (ledger rows
 * done = studies in Orthanc, archive instances = Orthanc's) and byte-identical objects (SHA-256
 * of each stored data set = SHA-256 of the data set of the file sent to Orthanc); a second job
 * duplicates nothing; kill -9 mid-migration and a restart reach the exact total; the measured
 * rate stays under the instances-per-second limit, also after it is lowered with PATCH.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Archive, datasetBytes, freePort, type GeneratedFile, generateStudies, run, sha256, sleep, type StudySpec } from './support/archive.js';
import { api, archivedDatasets, instanceCount, type Json, legacyStudy, pauseAfterFirstInstance, waitState } from './support/migration.js';
import { Orthanc } from './support/orthanc.js';

const study = legacyStudy;

describe('migration from a legacy archive (Orthanc)', () => {
  let orthanc: Orthanc;
  let genDir: string;
  let files: GeneratedFile[];
  const expected = new Map<string, string>();
  let studies: StudySpec[];
  const archives: Archive[] = [];

  const source = (retrieve: 'move' | 'get') => ({ kind: 'dimse', aeTitle: orthanc.aeTitle, host: '127.0.0.1', port: orthanc.dicomPort, retrieve });

  async function startArchive(reuse?: Archive): Promise<Archive> {
    const a = await Archive.start(reuse ? { reuse } : {});
    archives.push(a);
    // The archive is the C-MOVE destination; its DIMSE port changes with every start.
    await orthanc.setModality('vna', a.aeTitle, '127.0.0.1', a.dicomPort);
    return a;
  }

  beforeAll(async () => {
    genDir = mkdtempSync(path.join(tmpdir(), 'vna-migration-gen-'));
    studies = [
      study('M1', '20240105', [['CT', 10], ['CT', 8]]),
      study('M2', '20230310', [['MR', 6], ['MR', 6], ['MR', 6]]),
      study('M3', '20220101', [['CR', 5]]),
      study('M4', '20250101', [['CT', 12]]),
    ];
    files = await generateStudies(genDir, studies);
    for (const f of files) expected.set(f.sopInstanceUid, sha256(datasetBytes(readFileSync(f.path))));
    orthanc = await Orthanc.start();
    await orthanc.store(files.map((f) => f.path));
    const stats = await orthanc.statistics();
    expect(stats.CountStudies).toBe(4);
    expect(stats.CountInstances).toBe(files.length);
  });

  afterAll(async () => {
    for (const a of archives) await a.stop();
    await orthanc?.stop();
    if (genDir) rmSync(genDir, { recursive: true, force: true });
  });

  it('rejects an invalid job with 400 naming the field, an unknown one with 404', async () => {
    const a = await startArchive();
    const noPort = await api(a, 'POST', '/api/migrations', { name: 'x', source: { kind: 'dimse', aeTitle: 'LEGACY', host: '127.0.0.1', retrieve: 'move' } });
    expect(noPort.status).toBe(400);
    expect(JSON.stringify(noPort.json.message)).toContain('source.port');
    const badRetrieve = await api(a, 'POST', '/api/migrations', { name: 'x', source: { ...source('move'), retrieve: 'copy' } });
    expect(badRetrieve.status).toBe(400);
    expect(JSON.stringify(badRetrieve.json.message)).toContain('source.retrieve');
    const noSource = await api(a, 'POST', '/api/migrations', { name: 'x' });
    expect(noSource.status).toBe(400);
    expect(JSON.stringify(noSource.json.message)).toContain('source');
    const badDate = await api(a, 'POST', '/api/migrations', { name: 'x', source: source('move'), scope: { studyDateFrom: '2024-01-01' } });
    expect(badDate.status).toBe(400);
    expect(JSON.stringify(badDate.json.message)).toContain('studyDateFrom');
    const listNoUids = await api(a, 'POST', '/api/migrations', { name: 'x', source: source('move'), order: 'list' });
    expect(listNoUids.status).toBe(400);
    expect(JSON.stringify(listNoUids.json.message)).toContain('scope.studyInstanceUids');
    const badRate = await api(a, 'POST', '/api/migrations', { name: 'x', source: source('move'), throttle: { maxInstancesPerSecond: 0 } });
    expect(badRate.status).toBe(400);
    expect(JSON.stringify(badRate.json.message)).toContain('throttle.maxInstancesPerSecond');
    expect((await api(a, 'GET', '/api/migrations/999999')).status).toBe(404);
    expect((await api(a, 'POST', '/api/migrations/999999/pause')).status).toBe(404);
    expect((await api(a, 'GET', '/api/migrations')).json).toEqual([]);
  });

  it('C-MOVE: every study done, exact counts, byte-identical objects; a second job duplicates nothing', async () => {
    const a = archives[0]!;
    const created = await api(a, 'POST', '/api/migrations', { name: 'orthanc by move', source: source('move'), order: 'oldest-first' });
    expect(created.status).toBe(201);
    expect(created.json.state).toBe('SCHEDULED');
    const id = String(created.json.id);
    const job = await waitState(a, id, ['COMPLETED', 'FAILED']);
    expect(job.state).toBe('COMPLETED');
    const fig = job.figures as { studies: Json; instances: Json; bytes: number };
    expect(fig.studies).toMatchObject({ expected: 4, done: 4, failed: 0, pending: 0 });
    expect(fig.instances).toMatchObject({ expected: files.length, migrated: files.length, skipped: 0, failed: 0 });

    const report = await api(a, 'GET', `/api/migrations/${id}/report`);
    const rows = report.json.studies as Array<Json>;
    expect(rows.map((r) => r.state)).toEqual(['done', 'done', 'done', 'done']);
    // oldest first: M3 (2022), M2 (2023), M1 (2024), M4 (2025)
    expect(rows.map((r) => r.studyIuid)).toEqual([studies[2]!.studyUid, studies[1]!.studyUid, studies[0]!.studyUid, studies[3]!.studyUid]);
    for (const r of rows) {
      const s = studies.find((x) => x.studyUid === r.studyIuid)!;
      const n = s.series.reduce((t, se) => t + se.instances, 0);
      expect(r).toMatchObject({ expectedInstances: n, migratedInstances: n, skippedInstances: 0 });
    }

    const stored = await archivedDatasets(a);
    expect(stored.size).toBe((await orthanc.statistics()).CountInstances);
    expect(stored).toEqual(expected);
    const src = await a.db.query(`SELECT source_ae, count(*)::int AS n FROM instance GROUP BY source_ae`);
    expect(src.rows).toEqual([{ source_ae: orthanc.aeTitle, n: files.length }]);
    const linked = await a.db.query(
      `SELECT count(*)::int AS n, sum(mi.size_bytes)::bigint AS bytes FROM migration_instance mi JOIN migration_study s ON s.id = mi.study_fk
        WHERE s.migration_fk = $1 AND mi.outcome = 'migrated'`, [id]);
    expect(linked.rows[0].n).toBe(files.length);
    expect(Number(linked.rows[0].bytes)).toBe(fig.bytes);

    // The same job again (a second job over the same source): nothing is stored twice.
    const again = await api(a, 'POST', '/api/migrations', { name: 'orthanc again', source: source('get') });
    const id2 = String(again.json.id);
    const job2 = await waitState(a, id2, ['COMPLETED', 'FAILED']);
    expect(job2.state).toBe('COMPLETED');
    expect((job2.figures as { studies: Json }).studies).toMatchObject({ expected: 4, skipped: 4, done: 0 });
    expect((job2.figures as { instances: Json }).instances).toMatchObject({ migrated: 0, skipped: files.length });
    const counts = await a.db.query(`SELECT (SELECT count(*)::int FROM instance) AS i, (SELECT count(*)::int FROM location) AS l`);
    expect(counts.rows[0]).toEqual({ i: files.length, l: files.length });
    const csv = await api(a, 'GET', `/api/migrations/${id2}/report?format=csv`);
    expect(csv.status).toBe(200);
    expect(csv.type).toContain('text/csv');
    const lines = csv.text.trim().split('\r\n');
    expect(lines[0]).toMatch(/^seq,study_instance_uid,/);
    expect(lines).toHaveLength(5);
    expect(lines.slice(1).every((l) => l.includes(',skipped,'))).toBe(true);
    // a finished job cannot be paused
    expect((await api(a, 'POST', `/api/migrations/${id2}/pause`)).status).toBe(409);
  });

  it('C-GET: exact counts and byte-identical objects', async () => {
    const a = await startArchive();
    const created = await api(a, 'POST', '/api/migrations', { name: 'orthanc by get', source: source('get'), throttle: { maxAssociations: 1 } });
    expect(created.status).toBe(201);
    const id = String(created.json.id);
    const job = await waitState(a, id, ['COMPLETED', 'FAILED']);
    expect(job.state).toBe('COMPLETED');
    expect((job.figures as { studies: Json }).studies).toMatchObject({ expected: 4, done: 4 });
    expect((job.figures as { instances: Json }).instances).toMatchObject({ migrated: files.length, skipped: 0, failed: 0 });
    const stored = await archivedDatasets(a);
    expect(stored.size).toBe((await orthanc.statistics()).CountInstances);
    expect(stored).toEqual(expected);
    await a.stop();
  });

  it('C-GET with scope, pause and resume: only studies in scope, newest first, nothing moves while paused, rate under the limit', async () => {
    const R = 5;
    const a = await startArchive();
    const created = await api(a, 'POST', '/api/migrations', {
      name: 'CT since 2024', source: source('get'), scope: { modalities: ['CT'], studyDateFrom: '20240101' },
      throttle: { maxInstancesPerSecond: R, maxAssociations: 1 },
    });
    expect(created.status).toBe(201);
    const id = String(created.json.id);
    let n = 0;
    for (let i = 0; i < 2400 && n < 1; i++) {
      n = (await a.db.query(`SELECT count(*)::int AS n FROM instance`)).rows[0].n as number;
      if (n < 1) await sleep(25);
    }
    const paused = await api(a, 'POST', `/api/migrations/${id}/pause`);
    expect(paused.status).toBe(200);
    expect(paused.json.state).toBe('PAUSED');
    // The study in progress finishes; the next one does not start.
    for (let i = 0; i < 600; i++) {
      const open = await a.db.query(`SELECT count(*)::int AS n FROM migration_study WHERE migration_fk = $1 AND state IN ('retrieving', 'verifying')`, [id]);
      if (open.rows[0].n === 0) break;
      await sleep(50);
    }
    const m4 = studies[3]!;
    const m1 = studies[0]!;
    const ledger = async () =>
      Object.fromEntries(((await a.db.query(`SELECT study_iuid, state FROM migration_study WHERE migration_fk = $1`, [id])).rows as Array<{ study_iuid: string; state: string }>).map((r) => [r.study_iuid, r.state]));
    // newest first: M4 (2025) before M1 (2024); M2 (MR) and M3 (2022) are out of scope
    expect(await ledger()).toEqual({ [m4.studyUid]: 'done', [m1.studyUid]: 'pending' });
    const whilePaused = (await a.db.query(`SELECT count(*)::int AS n FROM instance`)).rows[0].n as number;
    expect(whilePaused).toBe(12);
    await sleep(1500);
    expect((await a.db.query(`SELECT count(*)::int AS n FROM instance`)).rows[0].n).toBe(whilePaused);

    const resumed = await api(a, 'POST', `/api/migrations/${id}/resume`);
    expect(resumed.status).toBe(200);
    expect(resumed.json.state).toBe('RUNNING');
    const job = await waitState(a, id, ['COMPLETED', 'FAILED']);
    expect(job.state).toBe('COMPLETED');
    expect(await ledger()).toEqual({ [m4.studyUid]: 'done', [m1.studyUid]: 'done' });
    const inScope = files.filter((f) => [m1.studyUid, m4.studyUid].some((u) => f.path.includes(u)));
    expect(inScope).toHaveLength(30);
    const stored = await archivedDatasets(a);
    expect(stored).toEqual(new Map(inScope.map((f) => [f.sopInstanceUid, expected.get(f.sopInstanceUid)!])));

    const times = ((await a.db.query(`SELECT received_at FROM instance ORDER BY received_at`)).rows as Array<{ received_at: Date }>).map((r) => r.received_at.getTime());
    let excess = -Infinity;
    for (let i = 0; i < times.length; i++)
      for (let j = i; j < times.length; j++) excess = Math.max(excess, j - i + 1 - R * ((times[j]! - times[i]!) / 1000));
    expect(excess).toBeLessThanOrEqual(1 + R * 1.0); // 1 s of record-time variation, as below
    await a.stop();
  });

  it('an unreachable source: the enumeration is retried with backoff, then the job FAILED with the reason', async () => {
    const a = archives[0]!;
    const closed = await freePort();
    const created = await api(a, 'POST', '/api/migrations', { name: 'nowhere', source: { ...source('move'), port: closed } });
    const id = String(created.json.id);
    const job = await waitState(a, id, ['FAILED'], 120_000);
    expect(job.lastError).toContain(`127.0.0.1:${closed}`);
    expect(job.attempts).toBe(5);
    expect((await api(a, 'POST', `/api/migrations/${id}/resume`)).status).toBe(409);
  });

  it('kill -9 mid-migration (throttled C-MOVE), restart: exact total; the rate stays under the limit, also after PATCH', async () => {
    const R1 = 20;
    const R2 = 4;
    const a = await startArchive();
    const created = await api(a, 'POST', '/api/migrations', {
      name: 'throttled', source: source('move'), throttle: { maxInstancesPerSecond: R1, maxAssociations: 2 },
    });
    const id = String(created.json.id);
    let n = 0;
    for (let i = 0; i < 1200 && n < 10; i++) {
      n = (await a.db.query(`SELECT count(*)::int AS n FROM instance`)).rows[0].n as number;
      if (n < 10) await sleep(25);
    }
    expect(n).toBeGreaterThanOrEqual(10);
    await a.kill9();
    const before = (await a.db.query(`SELECT count(*)::int AS n FROM instance`)).rows[0].n as number;
    expect(before).toBeLessThan(files.length);
    await a.db.end();

    const b = await startArchive(a);
    const patched = await api(b, 'PATCH', `/api/migrations/${id}`, { throttle: { maxInstancesPerSecond: R2 } });
    expect(patched.status).toBe(200);
    expect((patched.json.throttle as Json).maxInstancesPerSecond).toBe(R2);
    const patchAt = ((await b.db.query(`SELECT now() AS t`)).rows[0].t as Date).getTime();
    const job = await waitState(b, id, ['COMPLETED', 'FAILED'], 240_000);
    expect(job.state).toBe('COMPLETED');
    expect((job.figures as { studies: Json }).studies).toMatchObject({ expected: 4, done: 4, failed: 0 });
    expect((job.figures as { instances: Json }).instances).toMatchObject({ migrated: files.length, skipped: 0 });
    const stored = await archivedDatasets(b);
    expect(stored).toEqual(expected);
    const counts = await b.db.query(`SELECT (SELECT count(*)::int FROM instance) AS i, (SELECT count(*)::int FROM location WHERE status = 'OK') AS l`);
    expect(counts.rows[0]).toEqual({ i: files.length, l: files.length });

    // Rate: in any window of the recorded receive times, count <= rate * window + slack. The
    // slack allows the bucket's one token per process start and up to 1 s of variation in the
    // time from a token to the record of its object (recorded times, not wall-clock sleeps; a
    // loaded machine delays records by hundreds of ms). Unthrottled, the 53 objects would arrive
    // within a fraction of a second and break either bound by far.
    const times = ((await b.db.query(`SELECT received_at FROM instance ORDER BY received_at`)).rows as Array<{ received_at: Date }>).map((r) =>
      r.received_at.getTime(),
    );
    const worst = (ts: number[], rate: number) => {
      let excess = -Infinity;
      for (let i = 0; i < ts.length; i++)
        for (let j = i; j < ts.length; j++) excess = Math.max(excess, j - i + 1 - rate * ((ts[j]! - ts[i]!) / 1000));
      return excess;
    };
    expect(worst(times, R1)).toBeLessThanOrEqual(2 + R1 * 1.0);
    const afterPatch = times.filter((t) => t > patchAt + 1500);
    expect(afterPatch.length).toBeGreaterThan(10);
    expect(worst(afterPatch, R2)).toBeLessThanOrEqual(1 + R2 * 1.0);
  });

  it('an object the archive refuses (its SOP Instance UID is already in another study): fetched once more, then the study fails with the reason', async () => {
    const m3 = studies[2]!;
    const m3Files = files.filter((f) => f.path.includes(m3.studyUid));
    const clash = m3Files[2]!.sopInstanceUid;
    const a = await startArchive();
    // The archive already holds an object with that SOP Instance UID, in another study.
    const other = study('OTHER', '20200101', [['CT', 1]]);
    other.series[0]!.sopUids = [clash];
    const [otherFile] = await generateStudies(genDir, [other]);
    const sent = await run('storescu', [...a.dcmArgs(), otherFile!.path]);
    expect(sent.code).toBe(0);
    const otherSha = sha256(datasetBytes(readFileSync(otherFile!.path)));

    const created = await api(a, 'POST', '/api/migrations', {
      name: 'one study with a UID clash', source: source('move'), order: 'list', scope: { studyInstanceUids: [m3.studyUid] },
    });
    const id = String(created.json.id);
    const job = await waitState(a, id, ['COMPLETED', 'FAILED']);
    expect(job.state).toBe('FAILED');
    const rows = (await api(a, 'GET', `/api/migrations/${id}/report`)).json.studies as Json[];
    expect(rows).toHaveLength(1);
    expect(rows[0]).toMatchObject({ studyIuid: m3.studyUid, state: 'failed', expectedInstances: 5, failedInstances: 1, attempts: 1 });
    expect(rows[0]!.lastError).toContain('after a re-fetch');
    expect(rows[0]!.lastError).toContain(clash);
    expect(readFileSync(a.logFile, 'utf8')).toContain('fetching again');
    // The four others are stored intact, and the archive's own object with that UID is unchanged.
    const stored = await archivedDatasets(a);
    expect(stored).toEqual(
      new Map([
        ...m3Files.filter((f) => f.sopInstanceUid !== clash).map((f) => [f.sopInstanceUid, expected.get(f.sopInstanceUid)!] as const),
        [clash, otherSha] as const,
      ]),
    );
    await a.stop();
  });
  it('folder source: every file through the ingest pipeline, non-DICOM and truncated files failed with their reasons; a re-run skips', async () => {
    const a = await startArchive();
    const dir = mkdtempSync(path.join(tmpdir(), 'vna-migration-folder-'));
    try {
      const folderStudy = study('F1', '20210202', [['CT', 3], ['MR', 3]]);
      const good = await generateStudies(path.join(dir, 'export'), [folderStudy]);
      writeFileSync(path.join(dir, 'notes.txt'), 'not a DICOM file\n');
      const whole = readFileSync(good[0]!.path);
      writeFileSync(path.join(dir, 'export', 'truncated.dcm'), whole.subarray(0, whole.length - 100));
      const bad = await api(a, 'POST', '/api/migrations', { name: 'nowhere', source: { kind: 'folder', path: path.join(dir, 'missing') } });
      expect(bad.status).toBe(400);
      expect(JSON.stringify(bad.json.message)).toContain('source.path');
      const relative = await api(a, 'POST', '/api/migrations', { name: 'relative', source: { kind: 'folder', path: 'export' } });
      expect(relative.status).toBe(400);
      expect(JSON.stringify(relative.json.message)).toContain('source.path');

      const run1 = async () => {
        const created = await api(a, 'POST', '/api/migrations', { name: 'folder import', source: { kind: 'folder', path: dir } });
        expect(created.status).toBe(201);
        const id = String(created.json.id);
        const job = await waitState(a, id, ['COMPLETED', 'FAILED']);
        expect(job.state).toBe('FAILED');
        const rows = (await api(a, 'GET', `/api/migrations/${id}/report`)).json.studies as Json[];
        expect(rows).toHaveLength(8);
        const failed = rows.filter((r) => r.state === 'failed');
        expect(failed.map((r) => r.filePath).sort()).toEqual(['export/truncated.dcm', 'notes.txt']);
        for (const r of failed) expect(r.lastError).toMatch(/^not stored: /);
        return { job, rows };
      };
      const first = await run1();
      expect(first.rows.filter((r) => r.state === 'done')).toHaveLength(6);
      expect((first.job.figures as { instances: Json }).instances).toMatchObject({ migrated: 6, skipped: 0, failed: 2 });
      const stored = await archivedDatasets(a);
      expect(stored).toEqual(new Map(good.map((f) => [f.sopInstanceUid, sha256(datasetBytes(readFileSync(f.path)))])));
      for (const r of first.rows.filter((x) => x.state === 'done')) expect(r.studyIuid).toBe(folderStudy.studyUid);

      const second = await run1();
      expect(second.rows.filter((r) => r.state === 'skipped')).toHaveLength(6);
      expect((second.job.figures as { instances: Json }).instances).toMatchObject({ migrated: 0, skipped: 6, failed: 2 });
      const counts = await a.db.query(`SELECT (SELECT count(*)::int FROM instance) AS i, (SELECT count(*)::int FROM location) AS l`);
      expect(counts.rows[0]).toEqual({ i: 6, l: 6 });
    } finally {
      rmSync(dir, { recursive: true, force: true });
      await a.stop();
    }
  });
  it('time windows: outside its window a job migrates nothing; a PATCHed window lets it run', async () => {
    const a = await startArchive();
    const hhmm = (d: Date) => d.toISOString().slice(11, 16);
    const now = Date.now();
    // A window that starts 2 hours from now and lasts one hour (UTC).
    const later = { start: hhmm(new Date(now + 2 * 3600_000)), end: hhmm(new Date(now + 3 * 3600_000)) };
    const bad = await api(a, 'POST', '/api/migrations', { name: 'x', source: source('move'), throttle: { windows: [{ start: '25:00', end: '06:00' }] } });
    expect(bad.status).toBe(400);
    expect(JSON.stringify(bad.json.message)).toContain('throttle.windows.0.start');
    const badTz = await api(a, 'POST', '/api/migrations', { name: 'x', source: source('move'), throttle: { timeZone: 'Mars/Olympus' } });
    expect(badTz.status).toBe(400);
    expect(JSON.stringify(badTz.json.message)).toContain('throttle.timeZone');

    const created = await api(a, 'POST', '/api/migrations', { name: 'nights only', source: source('move'), throttle: { windows: [later], timeZone: 'UTC' } });
    expect(created.status).toBe(201);
    const id = String(created.json.id);
    await waitState(a, id, ['RUNNING']);
    // Several reconciler passes (every 2 s here) offer the rows; none may start.
    await sleep(5000);
    const ledger = await a.db.query(`SELECT state, attempts FROM migration_study WHERE migration_fk = $1`, [id]);
    expect(ledger.rows).toHaveLength(4);
    expect(ledger.rows.every((r: { state: string; attempts: number }) => r.state === 'pending' && r.attempts === 0)).toBe(true);
    expect((await a.db.query(`SELECT count(*)::int AS n FROM instance`)).rows[0].n).toBe(0);

    const patched = await api(a, 'PATCH', `/api/migrations/${id}`, { throttle: { windows: [{ start: '00:00', end: '00:00' }] } });
    expect(patched.status).toBe(200);
    expect((patched.json.throttle as Json).windows).toEqual([{ start: '00:00', end: '00:00' }]);
    const job = await waitState(a, id, ['COMPLETED', 'FAILED']);
    expect(job.state).toBe('COMPLETED');
    expect(await archivedDatasets(a)).toEqual(expected);
    await a.stop();
  });
  it('pausing a throttled C-MOVE stops between instances; resume completes the study exactly', async () => {
    const a = await startArchive();
    const m3 = studies[2]!;
    const created = await api(a, 'POST', '/api/migrations', {
      name: 'slow', source: source('move'), order: 'list', scope: { studyInstanceUids: [m3.studyUid] }, throttle: { maxInstancesPerSecond: 2 },
    });
    const id = String(created.json.id);
    await pauseAfterFirstInstance(a, id);
    const stoppedAt = await instanceCount(a);
    expect(stoppedAt).toBeLessThan(5);
    await api(a, 'PATCH', `/api/migrations/${id}`, { throttle: { maxInstancesPerSecond: null } });
    expect((await api(a, 'POST', `/api/migrations/${id}/resume`)).status).toBe(200);
    const job = await waitState(a, id, ['COMPLETED', 'FAILED']);
    expect(job.state).toBe('COMPLETED');
    expect((job.figures as { instances: Json }).instances).toMatchObject({ expected: 5, migrated: 5, skipped: 0 });
    const m3Files = files.filter((f) => f.path.includes(m3.studyUid));
    expect(await archivedDatasets(a)).toEqual(new Map(m3Files.map((f) => [f.sopInstanceUid, expected.get(f.sopInstanceUid)!])));
    await a.stop();
  });
});
