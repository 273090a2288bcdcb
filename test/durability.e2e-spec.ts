/**
 * Durability: an acknowledged instance survives kill -9 of the archive and the loss of every
 * Redis job; the database is the source of truth and the reconciler rebuilds the queue from it.
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, utimesSync, writeFileSync } from 'node:fs';
import { randomUUID } from 'node:crypto';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { Archive, datasetBytes, generateStudies, run, sha256, sleep, storeResponses, uid } from './support/archive.js';

const started: Archive[] = [];
afterAll(async () => {
  for (const a of started) await a.stop();
});

describe('durability', () => {
  it('instances received while no indexer runs are indexed after kill -9 and a Redis flush', async () => {
    const work = mkdtempSync(path.join(tmpdir(), 'vna-dur-'));
    const files = await generateStudies(work, [
      { patientId: 'D1', patientName: 'Durable^One', studyUid: uid(), studyDate: '20240201', series: [{ seriesUid: uid(), modality: 'CT', instances: 6 }] },
    ]);
    const a = await Archive.start({ env: { VNA_ROLES: 'ingest,retrieval' } });
    started.push(a);
    const r = await run('storescu', ['-v', '+sd', '+r', ...a.dcmArgs(), work]);
    expect(storeResponses(r.stderr).ok).toBe(6);
    const received = await a.db.query(`SELECT count(*)::int AS n FROM instance WHERE status = 'RECEIVED'`);
    expect(received.rows[0].n).toBe(6);
    await a.kill9();
    await run('redis-cli', ['-u', a.redisUrl, 'FLUSHDB']);
    // What a crash mid-write leaves: a temporary object, hours old, never acknowledged.
    const tmpDir = path.join(a.dataDir, 'storage/hot/.tmp');
    mkdirSync(tmpDir, { recursive: true });
    const stale = path.join(tmpDir, randomUUID());
    writeFileSync(stale, 'half an object');
    const old = new Date(Date.now() - 7 * 3600_000);
    utimesSync(stale, old, old);
    const fresh = path.join(tmpDir, randomUUID());
    writeFileSync(fresh, 'a store in progress');

    const b = await Archive.start({ reuse: a });
    started.push(b);
    await b.waitIndexed(6);
    for (let i = 0; i < 50 && existsSync(stale); i++) await sleep(100);
    expect(existsSync(stale)).toBe(false);
    expect(existsSync(fresh)).toBe(true);
    const q = await fetch(`${b.http}/dicom-web/studies?PatientID=D1`).then((x) => x.json() as Promise<any>);
    expect(q[0]['00201208'].Value[0]).toBe(6);
  });

  it('every instance acknowledged before kill -9 is readable and intact afterwards', async () => {
    const work = mkdtempSync(path.join(tmpdir(), 'vna-dur2-'));
    const files = await generateStudies(work, [
      { patientId: 'D2', patientName: 'Durable^Two', studyUid: uid(), studyDate: '20240202', series: [{ seriesUid: uid(), modality: 'CT', instances: 150, rows: 256, cols: 256 }] },
    ]);
    const a = await Archive.start();
    started.push(a);
    // storescu in the background; kill the archive while it is sending.
    const child = spawn('storescu', ['-v', '+sd', '+r', ...a.dcmArgs(), work], { env: { ...process.env, TCP_NODELAY: '1' } });
    // Listen for the end now: storescu may end before the archive is killed (then 'close' is past).
    const closed = new Promise((r) => child.once('close', r));
    let log = '';
    child.stderr.on('data', (d) => (log += d));
    child.stdout.on('data', (d) => (log += d));
    for (let i = 0; i < 1200 && storeResponses(log).ok < 20 && child.exitCode === null; i++) await sleep(25);
    await a.kill9();
    // storescu ends when its association breaks; never wait on it forever.
    const guard = setTimeout(() => child.kill('SIGKILL'), 30_000);
    await closed;
    clearTimeout(guard);
    // Which instances did storescu see acknowledged?
    const acked = new Set<string>();
    let current = '';
    for (const line of log.split('\n')) {
      const m = /Sending Store Request.*|Sending file: (.*)/.exec(line);
      if (m?.[1]) current = m[1].trim();
      if (line.includes('Received Store Response (Success)') && current) acked.add(current);
    }
    expect(acked.size).toBeGreaterThan(0);
    expect(acked.size).toBeLessThan(150);

    const b = await Archive.start({ reuse: a });
    started.push(b);
    const byPath = new Map(files.map((f) => [f.path, f.sopInstanceUid]));
    for (const p of acked) {
      const sop = byPath.get(p);
      expect(sop, p).toBeDefined();
      const row = await b.db.query(
        `SELECT l.object_key, l.sha256 FROM instance i JOIN location l ON l.instance_fk = i.id AND l.status = 'OK' WHERE i.sop_iuid = $1`, [sop]);
      expect(row.rowCount, `acknowledged ${sop} lost`).toBe(1);
      const stored = readFileSync(path.join(b.dataDir, 'storage/hot', row.rows[0].object_key));
      expect(sha256(stored)).toBe(row.rows[0].sha256);
      expect(sha256(datasetBytes(stored))).toBe(sha256(datasetBytes(readFileSync(p))));
    }
    const n = (await b.db.query(`SELECT count(*)::int AS n FROM instance`)).rows[0].n;
    await b.waitIndexed(n);
  });
});
