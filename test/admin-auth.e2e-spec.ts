/**
 * VNA_ADMIN_TOKEN: the admin API under /api needs the bearer token; readiness and DICOMweb stay
 * open; the `vna` command-line tool sends the token from its environment.
 * VNA_DICOMWEB_TOKEN: STOW-RS, QIDO-RS, WADO-RS and WADO-URI need it (Bearer or Basic); DIMSE and
 * the admin API are not affected.
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Archive, datasetBytes, generateStudies, type GeneratedFile, multipart, ROOT, run, sha256, sleep, uid } from './support/archive.js';

const CLI = path.join(ROOT, 'dist/apps/cli/src/main.js');
const TOKEN = `vna-${randomBytes(16).toString('hex')}`;

describe('admin API token (VNA_ADMIN_TOKEN)', () => {
  let archive: Archive;
  const call = (p: string, init: { method?: string; token?: string; body?: unknown } = {}) =>
    fetch(`${archive.http}${p}`, {
      method: init.method ?? 'GET',
      headers: {
        ...(init.token ? { Authorization: `Bearer ${init.token}` } : {}),
        ...(init.body ? { 'Content-Type': 'application/json' } : {}),
      },
      body: init.body ? JSON.stringify(init.body) : undefined,
    });

  beforeAll(async () => {
    archive = await Archive.start({ env: { VNA_ADMIN_TOKEN: TOKEN } });
  });
  afterAll(async () => {
    await archive?.stop();
  });

  it('refuses the admin API without the token (401, WWW-Authenticate, a reason) and with a wrong one; nothing changes', async () => {
    const none = await call('/api/aes');
    expect(none.status).toBe(401);
    expect(none.headers.get('www-authenticate')).toBe('Bearer realm="vna-admin"');
    expect(((await none.json()) as { message: string }).message).toContain('Authorization: Bearer');
    const wrong = await call('/api/aes', { token: `${TOKEN}x` });
    expect(wrong.status).toBe(401);
    expect(((await wrong.json()) as { message: string }).message).toContain('not the one');
    for (const p of ['/api/migrations', '/api/retention/rules', '/api/storage/tiers', '/api/lifecycle/policy', '/api/legal-holds']) {
      expect((await call(p)).status, p).toBe(401);
    }
    // A write without the token does not happen.
    const post = await call('/api/aes', { method: 'POST', body: { aeTitle: 'NOTOKEN', host: '127.0.0.1', port: 104 } });
    expect(post.status).toBe(401);
    const list = (await (await call('/api/aes', { token: TOKEN })).json()) as Array<{ aeTitle: string }>;
    expect(list.map((a) => a.aeTitle)).not.toContain('NOTOKEN');
  });

  it('serves the admin API with the token; a delete without it is refused and the AE stays', async () => {
    const created = await call('/api/aes', { method: 'POST', token: TOKEN, body: { aeTitle: 'WITHTOKEN', host: '127.0.0.1', port: 104 } });
    expect(created.status).toBe(201);
    expect((await call('/api/aes/WITHTOKEN', { method: 'DELETE' })).status).toBe(401);
    const list = (await (await call('/api/aes', { token: TOKEN })).json()) as Array<{ aeTitle: string }>;
    expect(list.map((a) => a.aeTitle)).toContain('WITHTOKEN');
    expect((await call('/api/aes/WITHTOKEN', { method: 'DELETE', token: TOKEN })).status).toBeLessThan(300);
  });

  it('leaves readiness and DICOMweb open', async () => {
    expect((await call('/api/health')).status).toBe(200);
    const qido = await call('/dicom-web/studies');
    expect([200, 204]).toContain(qido.status);
  });

  it('the CLI sends VNA_ADMIN_TOKEN (or --token); without it, it reports the 401', async () => {
    const without = await run(process.execPath, [CLI, '--url', archive.http, 'migrate', 'list', '--json'], { env: { VNA_ADMIN_TOKEN: '' } });
    expect(without.code).not.toBe(0);
    expect(without.stderr).toContain('401');
    const viaEnv = await run(process.execPath, [CLI, '--url', archive.http, 'migrate', 'list', '--json'], { env: { VNA_ADMIN_TOKEN: TOKEN } });
    expect(viaEnv.code, viaEnv.stderr).toBe(0);
    expect(JSON.parse(viaEnv.stdout)).toEqual([]);
    const viaFlag = await run(process.execPath, [CLI, '--url', archive.http, '--token', TOKEN, 'migrate', 'list', '--json'], { env: { VNA_ADMIN_TOKEN: '' } });
    expect(viaFlag.code, viaFlag.stderr).toBe(0);
  });
});

describe('DICOMweb token (VNA_DICOMWEB_TOKEN)', () => {
  const WEB_TOKEN = `web-${randomBytes(16).toString('hex')}`;
  let archive: Archive;
  let files: GeneratedFile[];
  let study: string;
  let series: string;
  const basic = (user: string, password: string) => `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`;
  const get = (p: string, authorization?: string, accept?: string) =>
    fetch(`${archive.http}${p}`, { headers: { ...(authorization ? { Authorization: authorization } : {}), ...(accept ? { Accept: accept } : {}) } });
  const instances = async () => (await archive.db.query(`SELECT count(*)::int AS n FROM instance`)).rows[0].n as number;

  beforeAll(async () => {
    archive = await Archive.start({ env: { VNA_DICOMWEB_TOKEN: WEB_TOKEN } });
    study = uid();
    series = uid();
    const dir = mkdtempSync(path.join(tmpdir(), 'vna-webauth-'));
    files = await generateStudies(dir, [
      { patientId: 'WEBAUTH', patientName: 'Web^Auth', studyUid: study, studyDate: '20240105', series: [{ seriesUid: series, modality: 'CT', instances: 3 }] },
    ]);
    // DIMSE is not behind the DICOMweb token.
    const r = await run('storescu', ['-v', ...archive.dcmArgs(), ...files.slice(0, 2).map((f) => f.path)]);
    expect(r.code, r.stderr).toBe(0);
    for (let i = 0; i < 100 && (await get(`/dicom-web/studies/${study}/instances`, `Bearer ${WEB_TOKEN}`).then((x) => x.json() as Promise<unknown[]>).catch(() => [])).length < 2; i++) await sleep(100);
  });
  afterAll(async () => {
    await archive?.stop();
  });

  it('refuses QIDO-RS, WADO-RS and WADO-URI without the token or with a wrong one: 401, a challenge, no patient data', async () => {
    const wado = `/wado?requestType=WADO&studyUID=${study}&seriesUID=${series}&objectUID=${files[0]!.sopInstanceUid}&contentType=application/dicom`;
    for (const p of [`/dicom-web/studies?PatientID=WEBAUTH`, `/dicom-web/studies/${study}`, `/dicom-web/studies/${study}/metadata`, wado]) {
      const none = await get(p);
      expect(none.status, p).toBe(401);
      expect(none.headers.get('www-authenticate')).toBe('Bearer realm="vna-dicomweb", Basic realm="vna-dicomweb"');
      const body = await none.text();
      expect(body).toContain('VNA_DICOMWEB_TOKEN');
      expect(body).not.toContain('WEBAUTH');
      const wrong = await get(p, `Bearer ${WEB_TOKEN}x`);
      expect(wrong.status, p).toBe(401);
      expect(((await wrong.json()) as { message: string }).message).toContain('not the one');
      expect((await get(p, basic('pacs', 'guess'))).status, p).toBe(401);
    }
  });

  it('serves them with the token, as Bearer or as the password of Basic; the bytes are the stored ones', async () => {
    const q = await get(`/dicom-web/studies?PatientID=WEBAUTH`, `Bearer ${WEB_TOKEN}`, 'application/dicom+json');
    expect(q.status).toBe(200);
    const found = (await q.json()) as Array<Record<string, { Value?: unknown[] }>>;
    expect(found.map((s) => s['0020000D']?.Value?.[0])).toEqual([study]);

    const f = files[0]!;
    const wado = await get(`/wado?requestType=WADO&studyUID=${study}&seriesUID=${series}&objectUID=${f.sopInstanceUid}&contentType=application/dicom`, basic('any-user', WEB_TOKEN));
    expect(wado.status).toBe(200);
    expect(sha256(datasetBytes(Buffer.from(await wado.arrayBuffer())))).toBe(sha256(datasetBytes(readFileSync(f.path))));

    const rs = await get(`/dicom-web/studies/${study}/series`, basic('', WEB_TOKEN), 'application/dicom+json');
    expect(rs.status).toBe(200);
  });

  it('STOW-RS without the token stores nothing; with it, it stores', async () => {
    const before = await instances();
    const f = files[2]!;
    const { body, contentType } = multipart([{ type: 'application/dicom', body: readFileSync(f.path) }]);
    const refused = await fetch(`${archive.http}/dicom-web/studies`, { method: 'POST', headers: { 'Content-Type': contentType }, body });
    expect(refused.status).toBe(401);
    await sleep(500);
    expect(await instances()).toBe(before);
    const stored = await fetch(`${archive.http}/dicom-web/studies`, { method: 'POST', headers: { 'Content-Type': contentType, Authorization: `Bearer ${WEB_TOKEN}` }, body });
    expect(stored.status).toBe(200);
    expect(await instances()).toBe(before + 1);
  });

  it('lets CORS preflights through; the admin API and readiness do not need the DICOMweb token', async () => {
    const pre = await fetch(`${archive.http}/dicom-web/studies`, { method: 'OPTIONS' });
    expect(pre.status).not.toBe(401);
    expect((await get('/api/health')).status).toBe(200);
    expect((await get('/api/aes')).status).toBe(200);
  });
});
