/**
 * Resumable enumeration (issue 6, "Restarts"): a real Orthanc holding 60 one-instance studies, one
 * a month over five years, listed with maxResultsPerQuery 1 so the job's C-FIND date windows split
 * hundreds of times. The archive is killed with SIGKILL while it is still listing; after a restart
 * the listing goes on from the windows it had finished (none is asked twice), and the job ends
 * with every study exactly once, in the job's order, and every object byte-identical.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Archive, datasetBytes, type GeneratedFile, generateStudies, sha256, sleep } from './support/archive.js';
import { api, archivedDatasets, legacyStudy, waitState } from './support/migration.js';
import { Orthanc } from './support/orthanc.js';

const STUDIES = 60;

describe('migration enumeration killed part-way', () => {
  let orthanc: Orthanc;
  let genDir: string;
  let files: GeneratedFile[];
  const expected = new Map<string, string>();
  const archives: Archive[] = [];
  const dates: string[] = [];

  beforeAll(async () => {
    genDir = mkdtempSync(path.join(tmpdir(), 'vna-migration-enum-'));
    for (let k = 0; k < STUDIES; k++) dates.push(`${2019 + Math.floor(k / 12)}${String((k % 12) + 1).padStart(2, '0')}15`);
    files = await generateStudies(
      genDir,
      dates.map((d, k) => {
        const s = legacyStudy(`E${k}`, d, [['CR', 1]]);
        return { ...s, series: s.series.map((se) => ({ ...se, rows: 16, cols: 16 })) };
      }),
    );
    for (const f of files) expected.set(f.sopInstanceUid, sha256(datasetBytes(readFileSync(f.path))));
    orthanc = await Orthanc.start();
    await orthanc.store(files.map((f) => f.path));
    expect((await orthanc.statistics()).CountStudies).toBe(STUDIES);
  });

  afterAll(async () => {
    for (const a of archives) await a.stop();
    await orthanc?.stop();
    if (genDir) rmSync(genDir, { recursive: true, force: true });
  });

  async function startArchive(reuse?: Archive): Promise<Archive> {
    const a = await Archive.start(reuse ? { reuse } : {});
    archives.push(a);
    await orthanc.setModality('vna', a.aeTitle, '127.0.0.1', a.dicomPort);
    return a;
  }

  it('kill -9 while listing, restart: the listing resumes (no window asked twice), every study once, newest first, objects byte-identical', async () => {
    const a = await startArchive();
    const created = await api(a, 'POST', '/api/migrations', {
      name: 'listing killed',
      order: 'newest-first',
      source: { kind: 'dimse', aeTitle: orthanc.aeTitle, host: '127.0.0.1', port: orthanc.dicomPort, retrieve: 'move', maxResultsPerQuery: 1 },
    });
    expect(created.status, created.text).toBe(201);
    const id = String(created.json.id);
    const progress = async (db: Archive) =>
      (await db.db.query(`SELECT state, jsonb_array_length(enumeration_progress)::int AS steps FROM migration_job WHERE id = $1`, [id])).rows[0] as {
        state: string;
        steps: number;
      };
    let p = await progress(a);
    for (let i = 0; i < 4000 && p.steps < 10; i++) {
      await sleep(5);
      p = await progress(a);
    }
    await a.kill9();
    p = await progress(a);
    // Killed while listing: some windows finished, the job not yet running.
    expect(p.state).toBe('SCHEDULED');
    expect(p.steps).toBeGreaterThanOrEqual(10);
    const ledgerBefore = (await a.db.query(`SELECT count(*)::int AS n FROM migration_study WHERE migration_fk = $1`, [id])).rows[0].n as number;
    expect(ledgerBefore).toBeLessThan(STUDIES);
    await a.db.end();

    const b = await startArchive(a);
    const job = await waitState(b, id, ['COMPLETED', 'FAILED'], 240_000);
    expect(job.state, JSON.stringify(job)).toBe('COMPLETED');
    expect((job.figures as { studies: Record<string, unknown> }).studies).toMatchObject({ expected: STUDIES, done: STUDIES, failed: 0 });
    // No step of the listing was asked (and recorded) twice.
    const steps = (await b.db.query(
      `SELECT count(*)::int AS n, count(DISTINCT e->>'step')::int AS distinct_steps FROM migration_job, jsonb_array_elements(enumeration_progress) e WHERE id = $1`,
      [id],
    )).rows[0] as { n: number; distinct_steps: number };
    expect(steps.n).toBeGreaterThan(p.steps);
    expect(steps.distinct_steps).toBe(steps.n);
    // Every study once, numbered newest first.
    const ledger = (await b.db.query(`SELECT seq, study_date FROM migration_study WHERE migration_fk = $1 ORDER BY seq`, [id])).rows as Array<{ seq: number; study_date: string }>;
    expect(ledger.map((r) => r.seq)).toEqual(Array.from({ length: STUDIES }, (_, k) => k + 1));
    expect(ledger.map((r) => r.study_date)).toEqual([...dates].sort().reverse());
    expect(await archivedDatasets(b)).toEqual(expected);
  });
});
