/**
 * Migration from a DICOMweb legacy archive: a real Orthanc with Debian's DICOMweb plugin
 * (QIDO-RS, WADO-RS; HTTP Basic authentication, given to the job as source.headers), loaded
 * with generated studies (storescu). The DICOMweb migration must give exact counts and
 * byte-identical objects (the whole Part 10 file = Orthanc's stored file); a second job
 * duplicates nothing. Enumeration in self-splitting date windows: with a small
 * maxResultsPerQuery (QIDO and C-FIND), and against an Orthanc that cuts its own answers short
 * (LimitFindResults), every study is found, undated ones included. A paused throttled job
 * stops between instances. An unreachable source, a wrong base URL and missing credentials fail
 * the job with the reason.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Archive, datasetBytes, freePort, type GeneratedFile, generateStudies, sha256, sleep, type StudySpec } from './support/archive.js';
import { api, archivedDatasets, instanceCount, type Json, legacyStudy, pauseAfterFirstInstance, waitState } from './support/migration.js';
import { Orthanc } from './support/orthanc.js';

const USER = 'legacy';
const PASSWORD = 'pw-for-tests';
const AUTH = { Authorization: `Basic ${Buffer.from(`${USER}:${PASSWORD}`).toString('base64')}` };

/** The "(N queries, S date windows split)" of the enumeration's log line of a job. */
function enumerationLog(a: Archive, id: string): { queries: number; splits: number } {
  const m = new RegExp(`migration ${id} "[^"]*": \\d+ studies in scope at .* \\((\\d+) queries, (\\d+) date windows split\\)`).exec(readFileSync(a.logFile, 'utf8'));
  expect(m, `enumeration log line of migration ${id}`).not.toBeNull();
  return { queries: Number(m![1]), splits: Number(m![2]) };
}

describe('migration from a DICOMweb legacy archive (Orthanc + DICOMweb plugin)', () => {
  let orthanc: Orthanc;
  let genDir: string;
  let files: GeneratedFile[];
  let studies: StudySpec[];
  const expected = new Map<string, string>();
  const archives: Archive[] = [];

  const web = (extra: Record<string, unknown> = {}) => ({ kind: 'dicomweb', baseUrl: orthanc.dicomWebRoot, headers: AUTH, ...extra });

  async function startArchive(): Promise<Archive> {
    const a = await Archive.start();
    archives.push(a);
    await orthanc.setModality('vna', a.aeTitle, '127.0.0.1', a.dicomPort);
    return a;
  }

  const instancesOf = (s: StudySpec) => s.series.reduce((t, se) => t + se.instances, 0);

  beforeAll(async () => {
    genDir = mkdtempSync(path.join(tmpdir(), 'vna-migration-web-gen-'));
    studies = [
      legacyStudy('W1', '20240105', [['CT', 10], ['CT', 8]]),
      legacyStudy('W2', '20230310', [['MR', 6], ['MR', 6], ['MR', 6]]),
      legacyStudy('W3', '20220101', [['CR', 5]]),
      legacyStudy('W4', '20250101', [['CT', 12]]),
      // Same day as W1: a single day over a cap of 1 or 2.
      legacyStudy('W5', '20240105', [['CT', 3]]),
      legacyStudy('W6', '20240105', [['US', 2]]),
      // No StudyDate: no date range matches it.
      legacyStudy('W7', '', [['CR', 2]]),
    ];
    files = await generateStudies(genDir, studies);
    for (const f of files) expected.set(f.sopInstanceUid, sha256(datasetBytes(readFileSync(f.path))));
    orthanc = await Orthanc.start({ dicomWeb: true, users: { [USER]: PASSWORD } });
    await orthanc.store(files.map((f) => f.path));
    const stats = await orthanc.statistics();
    expect(stats).toMatchObject({ CountStudies: studies.length, CountInstances: files.length });
  });

  afterAll(async () => {
    for (const a of archives) await a.stop();
    await orthanc?.stop();
    if (genDir) rmSync(genDir, { recursive: true, force: true });
  });

  it('rejects an invalid DICOMweb source with 400 naming the field', async () => {
    const a = await startArchive();
    const post = (source: unknown) => api(a, 'POST', '/api/migrations', { name: 'x', source });
    const cases: Array<[unknown, string]> = [
      [{ kind: 'dicomweb' }, 'source.baseUrl'],
      [{ kind: 'dicomweb', baseUrl: 'ftp://127.0.0.1/dicom-web' }, 'source.baseUrl'],
      [{ kind: 'dicomweb', baseUrl: 'not a url' }, 'source.baseUrl'],
      [{ kind: 'dicomweb', baseUrl: `http://${USER}:${PASSWORD}@127.0.0.1/dicom-web` }, 'source.baseUrl'],
      [{ kind: 'dicomweb', baseUrl: orthanc.dicomWebRoot, headers: { Authorization: 42 } }, 'source.headers'],
      [{ kind: 'dicomweb', baseUrl: orthanc.dicomWebRoot, headers: { 'Bad Name': 'x' } }, 'source.headers'],
      [{ kind: 'dicomweb', baseUrl: orthanc.dicomWebRoot, headers: { Accept: 'text/html' } }, 'source.headers'],
      [{ kind: 'dicomweb', baseUrl: orthanc.dicomWebRoot, maxResultsPerQuery: 0 }, 'source.maxResultsPerQuery'],
      [{ kind: 'dimse', aeTitle: 'LEGACY', host: '127.0.0.1', port: 104, retrieve: 'get', maxResultsPerQuery: 1.5 }, 'source.maxResultsPerQuery'],
      [{ kind: 'wado', baseUrl: orthanc.dicomWebRoot }, 'source.kind'],
    ];
    for (const [source, field] of cases) {
      const r = await post(source);
      expect(r.status, JSON.stringify(source)).toBe(400);
      expect(JSON.stringify(r.json.message), JSON.stringify(source)).toContain(field);
    }
    expect((await api(a, 'GET', '/api/migrations')).json).toEqual([]);
  });

  it('QIDO-RS + WADO-RS: every study done, exact counts, byte-identical files; the credentials are not shown; a second job duplicates nothing', async () => {
    const a = archives[0]!;
    const created = await api(a, 'POST', '/api/migrations', { name: 'orthanc by dicomweb', source: web(), order: 'oldest-first' });
    expect(created.status).toBe(201);
    expect((created.json.source as Json).headers).toEqual({ Authorization: '***' });
    const id = String(created.json.id);
    const job = await waitState(a, id, ['COMPLETED', 'FAILED']);
    expect(job.state, JSON.stringify(job)).toBe('COMPLETED');
    expect(job.lastError).toBeNull();
    const fig = job.figures as { studies: Json; instances: Json; bytes: number };
    expect(fig.studies).toMatchObject({ expected: studies.length, done: studies.length, failed: 0, pending: 0 });
    expect(fig.instances).toMatchObject({ expected: files.length, migrated: files.length, skipped: 0, failed: 0 });
    // Seven studies under the default cap of 1000: one date-less QIDO query.
    expect(enumerationLog(a, id)).toEqual({ queries: 1, splits: 0 });

    const report = await api(a, 'GET', `/api/migrations/${id}/report`);
    expect(((report.json.migration as Json).source as Json).headers).toEqual({ Authorization: '***' });
    const rows = report.json.studies as Json[];
    expect(rows.map((r) => r.state)).toEqual(studies.map(() => 'done'));
    // Oldest first; the undated study first of all.
    expect(rows[0]!.studyIuid).toBe(studies[6]!.studyUid);
    for (const r of rows) {
      const n = instancesOf(studies.find((s) => s.studyUid === r.studyIuid)!);
      expect(r).toMatchObject({ expectedInstances: n, migratedInstances: n, skippedInstances: 0 });
    }

    expect(await archivedDatasets(a)).toEqual(expected);
    // transfer-syntax=*: the whole file as Orthanc stored it, meta header included.
    const whole = await archivedDatasets(a, true);
    for (const f of files) expect(whole.get(f.sopInstanceUid), f.sopInstanceUid).toBe(sha256(readFileSync(await orthanc.storedFileOf(f.sopInstanceUid))));
    const host = new URL(orthanc.http).host;
    const src = await a.db.query(`SELECT source_ae, count(*)::int AS n FROM instance GROUP BY source_ae`);
    expect(src.rows).toEqual([{ source_ae: `dicomweb:${host}`, n: files.length }]);
    const audit = await a.db.query(`SELECT count(*)::int AS n, sum((detail->>'instances')::int)::int AS i FROM audit_event WHERE type = 'STUDY_RECEIVED' AND detail->>'via' = 'WADO-RS'`);
    expect(audit.rows[0]).toEqual({ n: studies.length, i: files.length });

    const again = await api(a, 'POST', '/api/migrations', { name: 'orthanc by dicomweb again', source: web() });
    const job2 = await waitState(a, String(again.json.id), ['COMPLETED', 'FAILED']);
    expect(job2.state).toBe('COMPLETED');
    expect((job2.figures as { studies: Json }).studies).toMatchObject({ expected: studies.length, skipped: studies.length, done: 0 });
    expect((job2.figures as { instances: Json }).instances).toMatchObject({ migrated: 0, skipped: files.length });
    const counts = await a.db.query(`SELECT (SELECT count(*)::int FROM instance) AS i, (SELECT count(*)::int FROM location) AS l`);
    expect(counts.rows[0]).toEqual({ i: files.length, l: files.length });
  });

  it('a small maxResultsPerQuery splits the date windows (QIDO-RS and C-FIND): every study found, undated included; throttled WADO-RS per instance', async () => {
    const a = await startArchive();
    const viaWeb = await api(a, 'POST', '/api/migrations', {
      name: 'split qido', source: web({ maxResultsPerQuery: 2 }), throttle: { maxInstancesPerSecond: 200 },
    });
    expect(viaWeb.status).toBe(201);
    const id = String(viaWeb.json.id);
    const job = await waitState(a, id, ['COMPLETED', 'FAILED']);
    expect(job.state, JSON.stringify(job)).toBe('COMPLETED');
    expect(job.lastError).toBeNull();
    expect((job.figures as { studies: Json }).studies).toMatchObject({ expected: studies.length, done: studies.length });
    expect((job.figures as { instances: Json }).instances).toMatchObject({ expected: files.length, migrated: files.length });
    const web1 = enumerationLog(a, id);
    expect(web1.splits).toBeGreaterThan(0);
    const rows = (await api(a, 'GET', `/api/migrations/${id}/report`)).json.studies as Json[];
    expect(rows.map((r) => r.studyIuid).sort()).toEqual(studies.map((s) => s.studyUid).sort());
    expect(await archivedDatasets(a)).toEqual(expected);

    // The same source over C-FIND (C-CANCEL after 2 answers, then split) with C-GET: all already here.
    const viaDimse = await api(a, 'POST', '/api/migrations', {
      name: 'split c-find', source: { kind: 'dimse', aeTitle: orthanc.aeTitle, host: '127.0.0.1', port: orthanc.dicomPort, retrieve: 'get', maxResultsPerQuery: 2 },
    });
    const id2 = String(viaDimse.json.id);
    const job2 = await waitState(a, id2, ['COMPLETED', 'FAILED']);
    expect(job2.state, JSON.stringify(job2)).toBe('COMPLETED');
    expect((job2.figures as { studies: Json }).studies).toMatchObject({ expected: studies.length, skipped: studies.length });
    expect((job2.figures as { instances: Json }).instances).toMatchObject({ expected: files.length, skipped: files.length, migrated: 0 });
    expect(enumerationLog(a, id2).splits).toBeGreaterThan(0);
    const rows2 = (await api(a, 'GET', `/api/migrations/${id2}/report`)).json.studies as Json[];
    expect(rows2.map((r) => r.studyIuid).sort()).toEqual(studies.map((s) => s.studyUid).sort());

    // A date range in the scope: only its windows (the undated study is not in it).
    const ranged = await api(a, 'POST', '/api/migrations', {
      name: 'split range', source: web({ maxResultsPerQuery: 1 }), scope: { studyDateFrom: '20230101', studyDateTo: '20241231' },
    });
    const job3 = await waitState(a, String(ranged.json.id), ['COMPLETED', 'FAILED']);
    expect(job3.state).toBe('COMPLETED');
    const rows3 = (await api(a, 'GET', `/api/migrations/${String(ranged.json.id)}/report`)).json.studies as Json[];
    expect(rows3.map((r) => r.studyIuid).sort()).toEqual([studies[0]!, studies[1]!, studies[4]!, studies[5]!].map((s) => s.studyUid).sort());
    expect(enumerationLog(a, String(ranged.json.id)).splits).toBeGreaterThan(0);
  });

  it('pausing a throttled DICOMweb migration stops between instances; resume completes the study exactly', async () => {
    const a = await startArchive();
    const w3 = studies[2]!;
    const created = await api(a, 'POST', '/api/migrations', {
      name: 'slow web', source: web(), order: 'list', scope: { studyInstanceUids: [w3.studyUid] }, throttle: { maxInstancesPerSecond: 2 },
    });
    const id = String(created.json.id);
    await pauseAfterFirstInstance(a, id);
    expect(await instanceCount(a)).toBeLessThan(instancesOf(w3));
    await api(a, 'PATCH', `/api/migrations/${id}`, { throttle: { maxInstancesPerSecond: null } });
    expect((await api(a, 'POST', `/api/migrations/${id}/resume`)).status).toBe(200);
    const job = await waitState(a, id, ['COMPLETED', 'FAILED']);
    expect(job.state).toBe('COMPLETED');
    expect((job.figures as { instances: Json }).instances).toMatchObject({ expected: 5, migrated: 5, skipped: 0 });
    const w3Files = files.filter((f) => f.path.includes(w3.studyUid));
    expect(await archivedDatasets(a)).toEqual(new Map(w3Files.map((f) => [f.sopInstanceUid, expected.get(f.sopInstanceUid)!])));
  });

  it('an Orthanc that cuts its own answers short (LimitFindResults): C-FIND sees its Cancel status and splits, a study whose series listing is cut short fails; QIDO splits under a cap below the limit', async () => {
    // At most two studies a day, so every single-day window fits the source's limit.
    const dated = studies.filter((s) => s.studyDate && s !== studies[5]);
    const datedFiles = files.filter((f) => dated.some((s) => f.path.includes(s.studyUid)));
    const limited = await Orthanc.start({ dicomWeb: true, limitFindResults: 2 });
    try {
      await limited.store(datedFiles.map((f) => f.path));
      const a = await Archive.start();
      archives.push(a);
      await limited.setModality('vna', a.aeTitle, '127.0.0.1', a.dicomPort);
      const expectedHere = new Map(datedFiles.map((f) => [f.sopInstanceUid, expected.get(f.sopInstanceUid)!]));

      const viaFind = await api(a, 'POST', '/api/migrations', {
        name: 'limited c-find', source: { kind: 'dimse', aeTitle: limited.aeTitle, host: '127.0.0.1', port: limited.dicomPort, retrieve: 'move' },
      });
      const id = String(viaFind.json.id);
      const job = await waitState(a, id, ['COMPLETED', 'FAILED']);
      // Every study found; W2's three series are more than Orthanc's SERIES-level answer holds
      // (Cancel after two): its instances cannot be counted, so it fails instead of passing short.
      expect(job.state, JSON.stringify(job)).toBe('FAILED');
      expect(enumerationLog(a, id).splits).toBeGreaterThan(0);
      const rows = (await api(a, 'GET', `/api/migrations/${id}/report`)).json.studies as Json[];
      expect(rows.map((r) => r.studyIuid).sort()).toEqual(dated.map((s) => s.studyUid).sort());
      const w2 = studies[1]!;
      for (const r of rows) {
        if (r.studyIuid === w2.studyUid) {
          expect(r).toMatchObject({ state: 'failed', migratedInstances: 0 });
          expect(String(r.lastError)).toContain('cut short its SERIES-level C-FIND answer');
        } else {
          expect(r.state).toBe('done');
        }
      }
      // The date-less sweep for undated studies was cut short by the source's limit: said so.
      expect(readFileSync(a.logFile, 'utf8')).toContain('studies without a StudyDate may be missing');
      expect(await archivedDatasets(a)).toEqual(new Map([...expectedHere].filter(([sop]) => !datedFiles.find((f) => f.sopInstanceUid === sop)!.path.includes(w2.studyUid))));

      // QIDO-RS: a cap below Orthanc's limit splits the windows; the instance listing (instance
      // level, not limited) is whole, so W2 comes too. A date range: no date-less sweep.
      const viaWeb = await api(a, 'POST', '/api/migrations', {
        name: 'limited qido', source: { kind: 'dicomweb', baseUrl: limited.dicomWebRoot, maxResultsPerQuery: 1 }, scope: { studyDateFrom: '19000101' },
      });
      const id2 = String(viaWeb.json.id);
      const job2 = await waitState(a, id2, ['COMPLETED', 'FAILED']);
      expect(job2.state, JSON.stringify(job2)).toBe('COMPLETED');
      expect(job2.lastError).toBeNull();
      expect((job2.figures as { studies: Json }).studies).toMatchObject({ expected: dated.length, done: 1, skipped: dated.length - 1 });
      expect((job2.figures as { instances: Json }).instances).toMatchObject({ expected: datedFiles.length, migrated: instancesOf(w2) });
      expect(enumerationLog(a, id2).splits).toBeGreaterThan(0);
      expect(await archivedDatasets(a)).toEqual(expectedHere);
    } finally {
      await limited.stop();
    }
  });

  it('an unreachable source, a wrong base URL and missing credentials fail the job with the reason', async () => {
    const a = await startArchive();
    const closed = await freePort();
    const cases: Array<[Record<string, unknown>, RegExp]> = [
      [{ kind: 'dicomweb', baseUrl: `${orthanc.http}/no-such-root`, headers: AUTH }, /HTTP 404/],
      [{ kind: 'dicomweb', baseUrl: orthanc.dicomWebRoot }, /HTTP 401/],
      [{ kind: 'dicomweb', baseUrl: `http://127.0.0.1:${closed}/dicom-web` }, /ECONNREFUSED/],
    ];
    for (const [source, reason] of cases) {
      const created = await api(a, 'POST', '/api/migrations', { name: `failing ${String(source.baseUrl)}`, source });
      expect(created.status).toBe(201);
      const id = String(created.json.id);
      const job = await waitState(a, id, ['COMPLETED', 'FAILED']);
      expect(job.state).toBe('FAILED');
      expect(String(job.lastError)).toMatch(/^enumeration at http:\/\/127\.0\.0\.1:\d+\/\S+ failed: GET /);
      expect(String(job.lastError)).toMatch(reason);
      const report = await api(a, 'GET', `/api/migrations/${id}/report`);
      expect((report.json.migration as Json).lastError).toBe(job.lastError);
      expect(report.json.studies).toEqual([]);
    }
    // 4xx fail at once; the unreachable source after its attempts.
    const attempts = await a.db.query(`SELECT name, attempts FROM migration_job ORDER BY id`);
    expect(attempts.rows.map((r: { attempts: number }) => r.attempts)).toEqual([1, 1, 5]);
    expect((await a.db.query(`SELECT count(*)::int AS n FROM instance`)).rows[0].n).toBe(0);
  });
});
