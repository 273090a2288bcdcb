/**
 * VNA_ADMIN_TOKEN: the admin API under /api needs the bearer token; readiness and DICOMweb stay
 * open; the `vna` command-line tool sends the token from its environment.
 */
import { randomBytes } from 'node:crypto';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Archive, ROOT, run } from './support/archive.js';

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
