/**
 * The `vna` command-line tool (the built dist/apps/cli/src/main.js, run as a child process, so its
 * output is not a terminal) against the real archive and a real Orthanc as the legacy archive:
 * `migrate start --watch` exits 0 with a summary whose counts are the API's and the archive's;
 * the report (CSV to a file) is the API's; pause / resume / throttle / cancel through the CLI
 * change what the API reports; a job with a failed study ends `watch` with exit code 3 and names
 * the study; bad arguments and API refusals give a clear message and their exit codes.
 */
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Archive, datasetBytes, freePort, type GeneratedFile, generateStudies, ROOT, run, type RunResult, sha256, sleep, type StudySpec } from './support/archive.js';
import { archivedDatasets, legacyStudy } from './support/migration.js';
import { Orthanc } from './support/orthanc.js';

const CLI = path.join(ROOT, 'dist/apps/cli/src/main.js');

interface Figures {
  studies: Record<string, number>;
  instances: Record<string, number>;
  bytes: number;
  elapsedSeconds: number;
  recent: { windowSeconds: number; instancesPerSecond: number | null; bytesPerSecond: number | null };
  etaSeconds: number | null;
}
interface Job {
  id: string;
  state: string;
  throttle: { maxInstancesPerSecond: number | null; maxAssociations: number };
  figures: Figures;
}

async function getJob(a: Archive, id: string): Promise<Job> {
  const r = await fetch(`${a.http}/api/migrations/${id}`);
  expect(r.status).toBe(200);
  return (await r.json()) as Job;
}

const study = (patientId: string, date: string, series: Array<[string, number]>): StudySpec => legacyStudy(patientId, date, series, 'Cli');

describe('vna CLI: migrations', () => {
  let orthanc: Orthanc;
  let genDir: string;
  let files: GeneratedFile[];
  let studies: StudySpec[];
  const archives: Archive[] = [];

  const vna = (a: Archive, ...args: string[]): Promise<RunResult> => run(process.execPath, [CLI, '--url', a.http, ...args]);
  const dimse = () => `${orthanc.aeTitle}@127.0.0.1:${orthanc.dicomPort}`;

  async function startArchive(): Promise<Archive> {
    const a = await Archive.start();
    archives.push(a);
    await orthanc.setModality('vna', a.aeTitle, '127.0.0.1', a.dicomPort);
    return a;
  }

  beforeAll(async () => {
    genDir = mkdtempSync(path.join(tmpdir(), 'vna-cli-gen-'));
    studies = [
      study('C1', '20240105', [['CT', 8], ['CT', 6]]),
      study('C2', '20230310', [['MR', 5], ['MR', 5]]),
      study('C3', '20220101', [['CR', 4]]),
    ];
    files = await generateStudies(genDir, studies);
    orthanc = await Orthanc.start({ dicomWeb: true });
    await orthanc.store(files.map((f) => f.path));
    expect((await orthanc.statistics()).CountInstances).toBe(files.length);
  });

  afterAll(async () => {
    for (const a of archives) await a.stop();
    await orthanc?.stop();
    if (genDir) rmSync(genDir, { recursive: true, force: true });
  });

  it('bad arguments and API refusals: a clear message and exit codes 2 (usage) / 1 (refused, unreachable)', async () => {
    const a = await startArchive();
    const badAddress = await vna(a, 'migrate', 'start', '--dimse', 'LEGACY-4242');
    expect(badAddress.code).toBe(2);
    expect(badAddress.stderr).toContain(`option '--dimse <AE@host:port>' argument 'LEGACY-4242' is invalid. expected AE@host:port`);
    const noSource = await vna(a, 'migrate', 'start', '--name', 'x');
    expect(noSource.code).toBe(2);
    expect(noSource.stderr).toContain('error: give a source: --dimse AE@host:port, --folder PATH or --dicomweb URL');
    const badRetrieve = await vna(a, 'migrate', 'start', '--dimse', dimse(), '--retrieve', 'copy');
    expect(badRetrieve.code).toBe(2);
    expect(badRetrieve.stderr).toContain(`argument 'copy' is invalid. Allowed choices are move, get.`);
    // shape fine, value refused by the archive: 400 naming the field
    const badDate = await vna(a, 'migrate', 'start', '--dimse', dimse(), '--from', '2024-13-45');
    expect(badDate.code).toBe(1);
    expect(badDate.stderr).toMatch(/^error: 400 Bad Request: .*scope\.studyDateFrom must be a date YYYYMMDD/m);
    const badZone = await vna(a, 'migrate', 'start', '--dimse', dimse(), '--window', '20:00-06:00', '--tz', 'Mars/Olympus');
    expect(badZone.code).toBe(1);
    expect(badZone.stderr).toContain('throttle.timeZone must be an IANA time zone');
    const badFolder = await vna(a, 'migrate', 'start', '--folder', 'relative/dir');
    expect(badFolder.code).toBe(1);
    expect(badFolder.stderr).toContain('source.path must be an absolute path');
    // --dicomweb is passed through as {kind: 'dicomweb', baseUrl}: the archive judges it (a bad URL: 400 naming the source field)
    const badWeb = await vna(a, 'migrate', 'start', '--dicomweb', 'not a url');
    expect(badWeb.code).toBe(1);
    expect(badWeb.stderr).toMatch(/^error: 400 Bad Request: .*source\./m);
    const unknown = await vna(a, 'migrate', 'status', '999999');
    expect(unknown.code).toBe(1);
    expect(unknown.stderr).toContain('error: 404 Not Found: migration 999999 does not exist');
    const nothing = await vna(a, 'migrate', 'throttle', '1');
    expect(nothing.code).toBe(2);
    expect(nothing.stderr).toContain('give at least one of --rate');
    const closed = await freePort();
    const down = await run(process.execPath, [CLI, 'migrate', 'list'], { env: { VNA_URL: `http://127.0.0.1:${closed}` } });
    expect(down.code).toBe(1);
    expect(down.stderr).toContain(`error: cannot reach the archive at http://127.0.0.1:${closed}: ECONNREFUSED`);
    // none of these created a job
    const list = await vna(a, 'migrate', 'list', '--json');
    expect(list.code).toBe(0);
    expect(JSON.parse(list.stdout)).toEqual([]);
  });

  it('start --watch (C-MOVE): exit 0, plain progress lines, a summary with the API\'s and the archive\'s counts; the report is the API\'s', async () => {
    const a = archives[0]!;
    const r = await vna(a, 'migrate', 'start', '--name', 'cli move', '--dimse', dimse(), '--retrieve', 'move', '--order', 'oldest-first', '--watch', '--interval', '1');
    expect(r.code, r.stderr).toBe(0);
    const id = /^migration (\d+) "cli move" created \(SCHEDULED\)$/m.exec(r.stdout)?.[1];
    expect(id).toBeDefined();
    const job = await getJob(a, id!);
    expect(job.state).toBe('COMPLETED');
    const n = files.length;
    expect(job.figures.instances).toMatchObject({ expected: n, migrated: n, skipped: 0, failed: 0, inProgress: 0, remaining: 0 });
    const inArchive = (await a.db.query(`SELECT count(*)::int AS n, sum(size_bytes)::bigint AS b FROM instance`)).rows[0] as { n: number; b: string };
    expect(inArchive.n).toBe(n);
    expect(job.figures.bytes).toBe(Number(inArchive.b));
    // plain (non-TTY) lines, the last one the final state, then the summary with the same figures
    const lines = r.stdout.split('\n').filter((l) => / migration \d+ [A-Z]+: studies /.test(l));
    expect(lines.length).toBeGreaterThanOrEqual(1);
    expect(lines.at(-1)).toContain(`migration ${id} COMPLETED: studies 3/3 (done 3, skipped 0, failed 0, in progress 0), instances ${n}/${n},`);
    expect(r.stdout).toContain(`migration ${id} "cli move": COMPLETED after `);
    expect(r.stdout).toContain(`  studies:   3 expected, 3 done, 0 skipped, 0 failed, 0 pending, 0 in progress`);
    expect(r.stdout).toContain(`  instances: ${n} expected, ${n} migrated, 0 skipped, 0 failed, 0 in progress`);
    expect(r.stdout).toContain(`  bytes:     ${job.figures.bytes} (${(job.figures.bytes / 1e6).toFixed(1)} MB);`);
    // the figures (summed by state in PostgreSQL) are the report's rows summed
    const report = (await (await fetch(`${a.http}/api/migrations/${id}/report`)).json()) as { studies: Array<Record<string, number>> };
    const sum = (k: string) => report.studies.reduce((t, x) => t + x[k]!, 0);
    expect([sum('expectedInstances'), sum('migratedInstances'), sum('skippedInstances'), sum('bytes')])
      .toEqual([job.figures.instances.expected, job.figures.instances.migrated, job.figures.instances.skipped, job.figures.bytes]);
    // a finished job: elapsed until its end, a rate over its last minute (from the instances' receive times), no ETA
    expect(job.figures.elapsedSeconds).toBeGreaterThan(0);
    expect(job.figures.recent.windowSeconds).toBe(60);
    expect(job.figures.recent.instancesPerSecond).toBeGreaterThan(0);
    expect(job.figures.etaSeconds).toBeNull();
    const times = (await a.db.query(`SELECT min(received_at) AS first, max(received_at) AS last FROM instance`)).rows[0] as { first: Date; last: Date };
    const jobRow = (await a.db.query(`SELECT finished_at FROM migration_job WHERE id = $1`, [id])).rows[0] as { finished_at: Date };
    if (jobRow.finished_at.getTime() - times.first.getTime() <= 60_000) {
      // every instance arrived within the window: the rate is all instances over the time since the first study started
      const started = (await a.db.query(`SELECT min(started_at) AS s FROM migration_study WHERE migration_fk = $1`, [id])).rows[0] as { s: Date };
      const span = Math.max(1, (jobRow.finished_at.getTime() - started.s.getTime()) / 1000);
      expect(job.figures.recent.instancesPerSecond).toBeCloseTo(n / span, 1);
    }

    // on a terminal (util-linux `script` gives it one): the cli-progress bar with the API's figures, then the summary
    const tty = await run('script', ['-qefc', `${process.execPath} ${CLI} --url ${a.http} migrate watch ${id}`, '/dev/null']);
    expect(tty.code).toBe(0);
    expect(tty.stdout).toMatch(new RegExp(`migration ${id} \\|█{40}\\| 100% ${n}/${n} inst \\| studies 3/3 \\(failed 0\\) \\| [0-9.]+ inst/s [0-9.]+ MB/s \\| ETA \\? \\| \\S+ \\| COMPLETED`));
    expect(tty.stdout).toContain(`  instances: ${n} expected, ${n} migrated, 0 skipped, 0 failed, 0 in progress`);

    // status --json is the API's answer
    const status = await vna(a, 'migrate', 'status', id!, '--json');
    expect(status.code).toBe(0);
    expect(JSON.parse(status.stdout)).toEqual(await getJob(a, id!));

    // report --csv -o FILE: the API's CSV, one line per study
    const out = path.join(genDir, 'report.csv');
    const rep = await vna(a, 'migrate', 'report', id!, '--csv', '-o', out);
    expect(rep.code).toBe(0);
    expect(rep.stderr).toContain(`report of migration ${id} written to ${out}`);
    const csv = readFileSync(out, 'utf8');
    expect(csv).toBe(await (await fetch(`${a.http}/api/migrations/${id}/report?format=csv`)).text());
    const rows = csv.trim().split('\r\n');
    expect(rows).toHaveLength(4);
    // oldest first: C3, C2, C1
    expect(rows.slice(1).map((l) => l.split(',')[1])).toEqual([studies[2]!.studyUid, studies[1]!.studyUid, studies[0]!.studyUid]);
    expect(rows.slice(1).map((l) => l.split(',')[6])).toEqual(['done', 'done', 'done']);
    // the table: the summary, then one line per study with its counts
    const table = await vna(a, 'migrate', 'report', id!);
    expect(table.code).toBe(0);
    expect(table.stdout).toMatch(new RegExp(`^1\\s+done\\s+${studies[2]!.studyUid.replace(/\./g, '\\.')}\\s+4\\s+4\\s+0\\s+0\\s`, 'm'));
    // list: the job with its counts
    const list = await vna(a, 'migrate', 'list');
    expect(list.stdout).toMatch(new RegExp(`^${id}\\s+COMPLETED\\s+3/3\\s+${n}/${n}\\s`, 'm'));
  });

  it('start --watch (DICOMweb): --dicomweb URL migrates by QIDO-RS + WADO-RS; exit 0, every object byte for byte', async () => {
    const a = await startArchive();
    const r = await vna(a, 'migrate', 'start', '--name', 'cli web', '--dicomweb', orthanc.dicomWebRoot, '--watch', '--interval', '1');
    expect(r.code, r.stderr).toBe(0);
    const id = /^migration (\d+) "cli web" created \(SCHEDULED\)$/m.exec(r.stdout)?.[1];
    expect(id).toBeDefined();
    const job = await getJob(a, id!);
    const n = files.length;
    expect(job.state).toBe('COMPLETED');
    expect(job.figures.instances).toMatchObject({ expected: n, migrated: n, skipped: 0, failed: 0, inProgress: 0, remaining: 0 });
    expect(r.stdout).toContain(`  instances: ${n} expected, ${n} migrated, 0 skipped, 0 failed, 0 in progress`);
    const sent = new Map(files.map((f) => [f.sopInstanceUid, sha256(datasetBytes(readFileSync(f.path)))]));
    expect(await archivedDatasets(a)).toEqual(sent);
  });

  it('pause / resume / throttle / cancel through the CLI change the state the API reports; watch of a canceled job exits 4', async () => {
    const a = await startArchive();
    const created = await vna(a, 'migrate', 'start', '--name', 'slow', '--dimse', dimse(), '--retrieve', 'move', '--rate', '2', '--max-associations', '1', '--json');
    expect(created.code).toBe(0);
    const job = JSON.parse(created.stdout) as Job;
    expect(job.throttle).toMatchObject({ maxInstancesPerSecond: 2, maxAssociations: 1 });
    const id = job.id;
    // wait for progress the API can rate: a few instances stored
    let running: Job | undefined;
    for (let i = 0; i < 1200; i++) {
      const j = await getJob(a, id);
      if (j.state === 'RUNNING' && j.figures.instances.inProgress + j.figures.instances.migrated >= 3 && j.figures.etaSeconds !== null) {
        running = j;
        break;
      }
      await sleep(50);
    }
    expect(running, 'the job made no rated progress').toBeDefined();
    // ETA = remaining instances / recent rate, the rate from the instances received in the last minute
    const f = running!.figures;
    expect(f.recent.instancesPerSecond).toBeGreaterThan(0);
    expect(f.instances.remaining).toBe(f.instances.expected - f.instances.migrated - f.instances.skipped - f.instances.failed - f.instances.inProgress);
    expect(f.etaSeconds).toBe(Math.round(f.instances.remaining / f.recent.instancesPerSecond!));

    const paused = await vna(a, 'migrate', 'pause', id);
    expect(paused.code).toBe(0);
    expect(paused.stdout.trim()).toBe(`migration ${id} is PAUSED`);
    expect((await getJob(a, id)).state).toBe('PAUSED');
    // paused: the rows settle (the study in progress stops between instances); status shows the API's counts
    let settled: Job | undefined;
    for (let i = 0; i < 400 && !settled; i++) {
      const open = (await a.db.query(`SELECT count(*)::int AS n FROM migration_study WHERE migration_fk = $1 AND state IN ('retrieving', 'verifying')`, [id])).rows[0].n as number;
      if (open === 0) settled = await getJob(a, id);
      else await sleep(50);
    }
    expect(settled).toBeDefined();
    const i = settled!.figures.instances;
    const stored = (await a.db.query(`SELECT count(*)::int AS n FROM instance`)).rows[0].n as number;
    expect(i.migrated + i.skipped + i.inProgress).toBe(stored);
    const st = await vna(a, 'migrate', 'status', id);
    expect(st.code).toBe(0);
    expect(st.stdout).toContain(`migration ${id} PAUSED: studies ${settled!.figures.studies.done}/3 `);
    expect(st.stdout).toContain(`, instances ${stored}/${files.length}, `);
    expect(st.stdout).toContain(`, ETA ?, `);
    const again = await vna(a, 'migrate', 'pause', id);
    expect(again.code).toBe(1);
    expect(again.stderr).toContain(`error: 409 Conflict: migration ${id} is PAUSED: cannot pause`);

    const throttled = await vna(a, 'migrate', 'throttle', id, '--rate', '50', '--max-associations', '2');
    expect(throttled.code).toBe(0);
    expect(throttled.stdout.trim()).toBe(`migration ${id}: max 2 associations, 50 inst/s, windows always (UTC)`);
    expect((await getJob(a, id)).throttle).toMatchObject({ maxInstancesPerSecond: 50, maxAssociations: 2 });
    const slow = await vna(a, 'migrate', 'throttle', id, '--rate', '1');
    expect(slow.code).toBe(0);
    expect((await getJob(a, id)).throttle.maxInstancesPerSecond).toBe(1);

    const resumed = await vna(a, 'migrate', 'resume', id);
    expect(resumed.code).toBe(0);
    expect(resumed.stdout.trim()).toBe(`migration ${id} is RUNNING`);
    expect((await getJob(a, id)).state).toBe('RUNNING');

    const canceled = await vna(a, 'migrate', 'cancel', id);
    expect(canceled.code).toBe(0);
    expect(canceled.stdout.trim()).toBe(`migration ${id} is CANCELED`);
    const after = await getJob(a, id);
    expect(after.state).toBe('CANCELED');
    expect(after.figures.etaSeconds).toBeNull();
    const watched = await vna(a, 'migrate', 'watch', id);
    expect(watched.code).toBe(4);
    expect(watched.stdout).toContain(`migration ${id} "slow": CANCELED after `);
    expect(watched.stdout).toContain(`  studies:   3 expected, `);
    // the job stored fewer than all instances
    const atEnd = (await a.db.query(`SELECT count(*)::int AS n FROM instance`)).rows[0].n as number;
    expect(atEnd).toBeGreaterThanOrEqual(3);
    expect(atEnd).toBeLessThan(files.length);
  });

  it('a job with a failed study: watch exits 3 and names the study and its reason', async () => {
    const a = archives[0]!;
    const dir = path.join(genDir, 'folder');
    mkdirSync(dir);
    const fresh = await generateStudies(path.join(genDir, 'folder-gen'), [study('F1', '20200101', [['CT', 2]])]);
    fresh.forEach((f, k) => copyFileSync(f.path, path.join(dir, `f${k}.dcm`)));
    writeFileSync(path.join(dir, 'notes.txt'), 'not DICOM');
    const r = await vna(a, 'migrate', 'start', '--name', 'folder', '--folder', dir, '--watch');
    expect(r.code, r.stdout + r.stderr).toBe(3);
    const id = /^migration (\d+) "folder" created/m.exec(r.stdout)?.[1];
    const job = await getJob(a, id!);
    expect(job.state).toBe('FAILED');
    expect(job.figures.studies).toMatchObject({ expected: 3, done: 2, failed: 1 });
    expect(r.stdout).toContain(`migration ${id} "folder": FAILED after `);
    expect(r.stdout).toContain('  studies:   3 expected, 2 done, 0 skipped, 1 failed, 0 pending, 0 in progress');
    expect(r.stdout).toContain('  failed studies (1):');
    expect(r.stdout).toMatch(/^ {4}notes\.txt: not stored: /m);
  });
});
