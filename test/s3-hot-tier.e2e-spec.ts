/**
 * The archive with its hot tier on a real S3-compatible server (s3rver): C-STORE and STOW-RS land
 * in the bucket under UID-derived keys, with the recorded digest, and queries see them.
 */
import { Client } from 'minio';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Archive, datasetBytes, generateStudies, type GeneratedFile, multipart, run, sha256, storeResponses, uid, xxh64 } from './support/archive.js';
import { startS3rver, type S3rverHandle } from './support/s3rver.js';

let s3: S3rverHandle;
let archive: Archive;
let client: Client;
let study = '';
let sent: GeneratedFile[] = [];

async function getObject(key: string): Promise<Buffer> {
  const stream = await client.getObject(s3.bucket, key);
  const chunks: Buffer[] = [];
  for await (const c of stream) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

describe('S3 hot tier', () => {
  beforeAll(async () => {
    s3 = await startS3rver({ bucket: 'vna-hot' });
    archive = await Archive.start({
      env: {
        VNA_HOT_STORAGE: 's3', S3_ENDPOINT: `http://${s3.endPoint}:${s3.port}`, S3_ACCESS_KEY: s3.accessKey,
        S3_SECRET_KEY: s3.secretKey, S3_BUCKET: s3.bucket, S3_PREFIX: 'archive/',
      },
    });
    client = new Client({ endPoint: s3.endPoint, port: s3.port, useSSL: false, accessKey: s3.accessKey, secretKey: s3.secretKey, region: 'us-east-1', pathStyle: true });
  });
  afterAll(async () => {
    await archive?.stop();
    await s3?.stop();
  });

  it('stores over C-STORE and STOW-RS into the bucket, byte for byte', async () => {
    const work = mkdtempSync(path.join(tmpdir(), 'vna-s3-'));
    study = uid();
    const files = await generateStudies(work, [
      { patientId: 'S3-1', patientName: 'Bucket^Bob', studyUid: study, studyDate: '20240301', series: [{ seriesUid: uid(), modality: 'CT', instances: 4, rows: 64, cols: 64 }] },
    ]);
    const r = await run('storescu', ['-v', ...archive.dcmArgs(), ...files.slice(0, 2).map((f) => f.path)]);
    expect(storeResponses(r.stderr).ok, r.stderr).toBe(2);
    const { body, contentType } = multipart(files.slice(2).map((f) => ({ type: 'application/dicom', body: readFileSync(f.path) })));
    const stow = await fetch(`${archive.http}/dicom-web/studies/${study}`, { method: 'POST', headers: { 'Content-Type': contentType }, body });
    expect(stow.status).toBe(200);
    await archive.waitIndexed(4);

    const rows = await archive.db.query(
      `SELECT i.sop_iuid, l.storage_id, l.object_key, l.sha256, l.xxh64, l.size_bytes FROM instance i JOIN location l ON l.instance_fk = i.id`,
    );
    expect(rows.rowCount).toBe(4);
    sent = files;
    for (const row of rows.rows) {
      expect(row.storage_id).toBe('hot');
      const obj = await getObject(`archive/${row.object_key}`);
      expect(sha256(obj)).toBe(row.sha256);
      expect(xxh64(obj)).toBe(row.xxh64);
      expect(obj.length).toBe(Number(row.size_bytes));
      const sent = files.find((f) => f.sopInstanceUid === row.sop_iuid)!;
      expect(sha256(datasetBytes(obj))).toBe(sha256(datasetBytes(readFileSync(sent.path))));
    }
    // No temporary objects left behind.
    const names: string[] = [];
    for await (const o of client.listObjectsV2(s3.bucket, 'archive/.tmp/', true)) names.push((o as { name: string }).name);
    expect(names).toEqual([]);

    const q = await fetch(`${archive.http}/dicom-web/studies/${study}/instances`).then((x) => x.json() as Promise<unknown[]>);
    expect(q).toHaveLength(4);
    const health = await fetch(`${archive.http}/api/health`).then((x) => x.json() as Promise<{ checks: Record<string, string> }>);
    expect(health.checks['storage:hot']).toBe('up');
  });

  it('serves the objects back from the bucket over WADO-RS and C-GET, bytes unchanged', async () => {
    const stored = await archive.db.query(`SELECT l.sha256 FROM location l JOIN instance i ON i.id = l.instance_fk WHERE i.study_iuid = $1`, [study]);
    const r = await fetch(`${archive.http}/dicom-web/studies/${study}`, {
      headers: { Accept: 'multipart/related; type="application/dicom"; transfer-syntax=*' },
    });
    expect(r.status).toBe(200);
    const body = Buffer.from(await r.arrayBuffer());
    const boundary = /boundary="?([^";]+)"?/.exec(r.headers.get('content-type') ?? '')![1]!;
    const parts = body.toString('latin1').split(`--${boundary}`).slice(1, -1).map((p) => {
      const raw = Buffer.from(p, 'latin1');
      const start = raw.indexOf('\r\n\r\n') + 4;
      return raw.subarray(start, raw.length - 2);
    });
    expect(parts).toHaveLength(4);
    expect(parts.map(sha256).sort()).toEqual(stored.rows.map((x) => x.sha256).sort());

    const dir = mkdtempSync(path.join(tmpdir(), 'vna-s3-get-'));
    const g = await run('getscu', ['-S', '-od', dir, '-k', 'QueryRetrieveLevel=STUDY', '-k', `StudyInstanceUID=${study}`, ...archive.dcmArgs()]);
    expect(g.code, g.stderr).toBe(0);
    const { readdirSync } = await import('node:fs');
    const got = readdirSync(dir).map((f) => sha256(datasetBytes(readFileSync(path.join(dir, f)))));
    expect(got.sort()).toEqual(sent.map((f) => sha256(datasetBytes(readFileSync(f.path)))).sort());
  });
});

describe('configuration', () => {
  it('a bad value stops the process with a message naming the variable', async () => {
    const r = await run(process.execPath, [path.join(import.meta.dirname, '../dist/apps/vna/src/main.js')], {
      env: { VNA_DIMSE_PORT: 'eleven', VNA_HOT_STORAGE: 's3', DATABASE_URL: 'mysql://nope' },
    });
    expect(r.code).toBe(78);
    expect(r.stderr).toContain('VNA_DIMSE_PORT');
    expect(r.stderr).toContain('DATABASE_URL');
    expect(r.stderr).toContain('S3_ENDPOINT is required when VNA_HOT_STORAGE=s3');
  });
});
