/**
 * The default start with no configuration: embedded PostgreSQL under VNA_DATA_DIR and, when no
 * Redis answers at REDIS_URL, a redis-server from PATH with AOF in VNA_DATA_DIR. A kill -9 and a
 * restart keep every acknowledged instance.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { chmodSync, createWriteStream, existsSync, mkdtempSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { freePort, generateStudies, ROOT, run, sleep, storeResponses, uid } from './support/archive.js';

const children: ChildProcess[] = [];
afterAll(async () => {
  for (const c of children) if (c.exitCode === null) c.kill('SIGTERM');
  await sleep(3000);
});

async function startDefault(dataDir: string, httpPort: number, dimsePort: number, redisPort: number): Promise<ChildProcess> {
  const log = createWriteStream(path.join(dataDir, `run-${Date.now()}.log`));
  const child = spawn(process.execPath, [path.join(ROOT, 'dist/apps/vna/src/main.js')], {
    cwd: ROOT,
    // Nothing but ports (so the test does not collide with a running archive) and the data dir.
    env: {
      PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '/tmp', VNA_DATA_DIR: dataDir,
      VNA_HTTP_PORT: String(httpPort), VNA_DIMSE_PORT: String(dimsePort), REDIS_URL: `redis://127.0.0.1:${redisPort}`,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  child.stdout!.pipe(log);
  child.stderr!.pipe(log);
  children.push(child);
  for (let i = 0; i < 900; i++) {
    if (child.exitCode !== null) throw new Error(`archive exited with ${child.exitCode}`);
    try {
      if ((await fetch(`http://127.0.0.1:${httpPort}/api/health`)).status === 200) return child;
    } catch {
      // not yet
    }
    await sleep(100);
  }
  throw new Error('embedded archive not ready in 90 s');
}

describe('default start, no configuration', () => {
  it('runs on embedded PostgreSQL and a redis-server it starts, and survives kill -9', async () => {
    const dataDir = mkdtempSync(path.join(tmpdir(), 'vna-default-'));
    chmodSync(dataDir, 0o755); // run as root, the embedded PostgreSQL runs as "postgres" and must reach it
    const [http, dimse, redis] = [await freePort(), await freePort(), await freePort()];
    let child = await startDefault(dataDir, http, dimse, redis);
    expect(existsSync(path.join(dataDir, 'postgres', 'PG_VERSION'))).toBe(true);
    expect(existsSync(path.join(dataDir, 'redis'))).toBe(true);

    const work = mkdtempSync(path.join(tmpdir(), 'vna-default-data-'));
    const study = uid();
    const files = await generateStudies(work, [
      { patientId: 'EMB1', patientName: 'Embedded^Default', studyUid: study, studyDate: '20240501', series: [{ seriesUid: uid(), modality: 'CT', instances: 3 }] },
    ]);
    const r = await run('storescu', ['-v', '-aec', 'VNA', '127.0.0.1', String(dimse), ...files.map((f) => f.path)]);
    expect(storeResponses(r.stderr).ok, r.stderr).toBe(3);

    const gone = new Promise((res) => child.once('exit', res));
    child.kill('SIGKILL');
    await gone;
    child = await startDefault(dataDir, http, dimse, redis);
    let found: unknown[] = [];
    for (let i = 0; i < 300 && found.length < 3; i++) {
      found = await fetch(`http://127.0.0.1:${http}/dicom-web/studies/${study}/instances`).then((x) => x.json() as Promise<unknown[]>);
      if (found.length < 3) await sleep(200);
    }
    expect(found).toHaveLength(3);
    const log = readFileSync(path.join(dataDir, readdirLatest(dataDir)), 'utf8');
    expect(log).toMatch(/stopped the embedded PostgreSQL left running/);

    const stopped = new Promise((res) => child.once('exit', res));
    child.kill('SIGTERM');
    expect(await stopped).toBe(0);
    // The redis-server started before the kill -9 outlived it (and was reused): stop it.
    await run('redis-cli', ['-p', String(redis), 'shutdown', 'nosave']);
  });
});

function readdirLatest(dir: string): string {
  return readdirSync(dir).filter((f) => f.startsWith('run-')).sort((a, b) => statSync(path.join(dir, b)).mtimeMs - statSync(path.join(dir, a)).mtimeMs)[0]!;
}
