/**
 * S3 storage classes per tier (issue 4), against s3rver: hot on the filesystem, `ia` an S3 tier
 * with storageClass STANDARD_IA (nearline), `glacier` an S3 tier with storageClass GLACIER (offline
 * by nature). Moved objects carry the tier's `x-amz-storage-class` (temporary objects do not); a
 * STANDARD_IA study is read directly. A restore from the GLACIER tier starts with the S3
 * RestoreObject request — which s3rver does not implement (it checks the request's signature and
 * then answers NotImplemented): the restore fails naming it, and WADO-RS answers 503 with the
 * reason. Objects committed to a tier before it was declared GLACIER read as standard on HEAD:
 * their restore runs the archive stage (journaled, no request, nothing to wait for) and completes.
 * The full GLACIER round trip (restore accepted, polls, copy) is NOT exercised here: no
 * S3 server available to the tests implements RestoreObject (see the unit tests of the stage).
 */
import { Client } from 'minio';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Archive, datasetBytes, generateStudies, run, sha256, storeResponses, tiersEnv, uid } from './support/archive.js';
import { multipartDigests, WADO_ACCEPT } from './support/retrieve.js';
import { type S3rverHandle, startS3rver } from './support/s3rver.js';
import { api, moveStudy, until } from './support/tiering.js';

let s3: S3rverHandle;
let archive: Archive;
let client: Client;
const sent = new Map<string, string>();

async function storeStudy(patientId: string): Promise<{ study: string; sops: string[] }> {
  const work = mkdtempSync(path.join(tmpdir(), 'vna-class-'));
  const study = uid();
  const files = await generateStudies(work, [
    { patientId, patientName: `Class^${patientId}`, studyUid: study, studyDate: '20240401', series: [{ seriesUid: uid(), modality: 'CT', instances: 3, rows: 32, cols: 32 }] },
  ]);
  const r = await run('storescu', ['-v', '+sd', '+r', ...archive.dcmArgs(), work]);
  expect(storeResponses(r.stderr).ok, r.stderr).toBe(3);
  for (const f of files) sent.set(f.sopInstanceUid, sha256(datasetBytes(readFileSync(f.path))));
  rmSync(work, { recursive: true, force: true });
  return { study, sops: files.map((f) => f.sopInstanceUid) };
}

async function objectsOf(study: string): Promise<Array<{ storage_id: string; object_key: string; sha256: string }>> {
  return (await archive.db.query(
    `SELECT l.storage_id, l.object_key, l.sha256 FROM location l JOIN instance i ON i.id = l.instance_fk WHERE i.study_iuid = $1 AND l.status = 'OK' ORDER BY l.id`,
    [study],
  )).rows;
}

async function listAll(prefix: string): Promise<string[]> {
  const names: string[] = [];
  for await (const o of client.listObjectsV2(s3.bucket, prefix, true)) names.push((o as { name: string }).name);
  return names;
}

/** VNA_TIERS: hot (fs), ia (STANDARD_IA), glacier (GLACIER), late (offline; its class as given). */
function tiersWith(lateClass?: string): string {
  const s3tier = { kind: 's3', endpoint: `http://${s3.endPoint}:${s3.port}`, bucket: s3.bucket, accessKey: s3.accessKey, secretKey: s3.secretKey };
  return tiersEnv([
    { id: 'hot', kind: 'fs', path: 'storage/hot', availability: 'online' },
    { id: 'ia', ...s3tier, prefix: 'ia/', storageClass: 'STANDARD_IA', availability: 'nearline' },
    { id: 'glacier', ...s3tier, prefix: 'glacier/', storageClass: 'GLACIER', restoreRetrieval: 'Bulk', restorePollS: 5 },
    { id: 'late', ...s3tier, prefix: 'late/', availability: 'offline', ...(lateClass ? { storageClass: lateClass } : {}) },
  ]).VNA_TIERS!;
}

describe('S3 storage classes per tier', () => {
  beforeAll(async () => {
    s3 = await startS3rver({ bucket: 'vna-classes' });
    archive = await Archive.start({
      env: {
        VNA_TIERS: tiersWith(),
        VNA_LIFECYCLE_INTERVAL_S: '0',
        VNA_RESTORE_WAIT_S: '0',
      },
    });
    client = new Client({ endPoint: s3.endPoint, port: s3.port, useSSL: false, accessKey: s3.accessKey, secretKey: s3.secretKey, region: 'us-east-1', pathStyle: true });
  });
  afterAll(async () => {
    await archive?.stop();
    await s3?.stop();
  });

  it('lists the GLACIER tier as offline', async () => {
    const tiers = (await api<Array<{ id: string; kind: string; availability: string; storageClass?: string }>>(archive, '/api/storage/tiers')).body;
    expect(tiers.map((t) => [t.id, t.kind, t.availability, t.storageClass])).toEqual([
      ['hot', 'fs', 'online', undefined],
      ['ia', 's3', 'nearline', 'STANDARD_IA'],
      ['glacier', 's3', 'offline', 'GLACIER'],
      ['late', 's3', 'offline', undefined],
    ]);
  });

  it('a study moved to the STANDARD_IA tier is stored with that class and served from it byte for byte', async () => {
    const { study, sops } = await storeStudy('CLS-IA');
    await archive.waitIndexed(3);
    await moveStudy(archive, study, 'ia');
    const rows = await objectsOf(study);
    expect(rows.map((r) => r.storage_id)).toEqual(['ia', 'ia', 'ia']);
    for (const row of rows) {
      const stat = await client.statObject(s3.bucket, `ia/${row.object_key}`);
      expect(stat.metaData['x-amz-storage-class']).toBe('STANDARD_IA');
      const chunks: Buffer[] = [];
      for await (const c of await client.getObject(s3.bucket, `ia/${row.object_key}`)) chunks.push(c as Buffer);
      expect(sha256(Buffer.concat(chunks))).toBe(row.sha256);
    }
    expect(await listAll('ia/.tmp/')).toEqual([]);
    const r = await fetch(`${archive.http}/dicom-web/studies/${study}`, { headers: WADO_ACCEPT });
    expect(r.status).toBe(200);
    expect(multipartDigests(Buffer.from(await r.arrayBuffer()), r.headers.get('content-type') ?? '')).toEqual(new Map(sops.map((s) => [s, sent.get(s)!])));
  });

  it('objects committed to the tier before it became GLACIER are restored without a RestoreObject request (HEAD shows them readable)', async () => {
    // Restart with the same tiers but `late` (offline, standard class so far) declared GLACIER.
    const { study, sops } = await storeStudy('CLS-LATE');
    await archive.waitIndexed(6);
    await moveStudy(archive, study, 'late');
    const first = archive;
    await first.stop();
    archive = await Archive.start({ reuse: first, env: { ...first.env, VNA_TIERS: tiersWith('GLACIER') } });
    const req = await api<{ restoreId: string }>(archive, `/api/studies/${study}/restore`, { method: 'POST' });
    expect(req.status).toBe(202);
    const done = await until('restore from the late GLACIER tier', archive, async () => {
      const v = (await api<{ state: string; error: string | null; instancesRestored: number; archive: { polls: number; waiting: number; nextPollAt: string | null } | null }>(
        archive, `/api/storage/restores/${req.body.restoreId}`,
      )).body;
      return v.state === 'FAILED' || v.state === 'COMPLETED' ? v : undefined;
    });
    expect(done.state, done.error ?? '').toBe('COMPLETED');
    expect(done.instancesRestored).toBe(3);
    // The archive stage ran (HEAD of each object: standard class, readable) and waited for nothing.
    expect(done.archive).toMatchObject({ polls: 1, waiting: 0, nextPollAt: null });
    const r = await fetch(`${archive.http}/dicom-web/studies/${study}`, { headers: WADO_ACCEPT });
    expect(r.status).toBe(200);
    expect(multipartDigests(Buffer.from(await r.arrayBuffer()), r.headers.get('content-type') ?? '')).toEqual(new Map(sops.map((x) => [x, sent.get(x)!])));
  });

  it('a study moved to the GLACIER tier is stored archived; its restore sends RestoreObject, which s3rver refuses: FAILED, WADO 503', async () => {
    const { study } = await storeStudy('CLS-GL');
    await archive.waitIndexed(9);
    await moveStudy(archive, study, 'glacier');
    const rows = await objectsOf(study);
    expect(rows.map((r) => r.storage_id)).toEqual(['glacier', 'glacier', 'glacier']);
    for (const row of rows) {
      const stat = await client.statObject(s3.bucket, `glacier/${row.object_key}`);
      expect(stat.metaData['x-amz-storage-class']).toBe('GLACIER');
    }
    expect(await listAll('glacier/.tmp/')).toEqual([]);

    const req = await api<{ restoreId: string; state: string; instancesOffline: number }>(archive, `/api/studies/${study}/restore`, { method: 'POST' });
    expect(req.status).toBe(202);
    expect(req.body.instancesOffline).toBe(3);
    const done = await until('restore from the GLACIER tier', archive, async () => {
      const v = (await api<{ state: string; error: string | null; instancesRestored: number; archive: unknown }>(archive, `/api/storage/restores/${req.body.restoreId}`)).body;
      return v.state === 'FAILED' || v.state === 'COMPLETED' ? v : undefined;
    });
    // The honest outcome on s3rver: the RestoreObject request reached it (signed; a bad signature
    // would be SignatureDoesNotMatch) and was refused as not implemented. Nothing was copied.
    expect(done.state).toBe('FAILED');
    expect(done.error).toMatch(/archive restore: .*POST \?restore.*(NotImplemented|MethodNotAllowed)/);
    expect(done.instancesRestored).toBe(0);
    expect(done.archive).toBeNull();
    const restored = await archive.db.query(
      `SELECT count(*)::int AS n FROM location l JOIN instance i ON i.id = l.instance_fk WHERE i.study_iuid = $1 AND l.status IN ('RESTORING', 'RESTORED')`,
      [study],
    );
    expect(restored.rows[0].n).toBe(0);

    const w = await fetch(`${archive.http}/dicom-web/studies/${study}`, { headers: WADO_ACCEPT });
    expect(w.status).toBe(503);
    expect(w.headers.get('retry-after')).not.toBeNull();
  });
});
