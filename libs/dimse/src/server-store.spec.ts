import { copyFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DimseError, DimseStatusCode } from './contract.js';
import { datasetOfFile, type Fixture, makeFixtures, run, runOk, sha256, storescuProposalOption, tempDir } from './testing/dcmtk.js';
import { startTestServer, type TestServer } from './testing/harness.js';

describe('DimseServer with dcmtk SCUs: C-ECHO and C-STORE', () => {
  let dir: { path: string; remove(): Promise<void> };
  let fixtures: Fixture[];
  let t: TestServer;

  beforeAll(async () => {
    dir = await tempDir();
    fixtures = await makeFixtures(dir.path);
    t = await startTestServer(dir.path, (store) => ({
      onStore: async (req, dataset) => {
        // Refuse one instance with a handler status, and fail on others in various ways.
        if (req.affectedSopInstanceUid === '2.25.999.1') {
          dataset.resume();
          return { status: DimseStatusCode.DuplicateSopInstance, errorComment: 'already stored elsewhere' };
        }
        if (req.affectedSopInstanceUid === '2.25.999.2') throw new Error('database exploded');
        if (req.affectedSopInstanceUid === '2.25.999.3') throw new DimseError(0xa900, 'does not match');
        if (req.affectedSopInstanceUid === '2.25.999.4') throw Object.assign(new Error('no space left'), { code: 'ENOSPC' });
        return store(req, dataset);
      },
    }));
  });

  afterAll(async () => {
    await t?.close();
    await dir?.remove();
  });

  it('answers C-ECHO from echoscu', async () => {
    const r = await run('echoscu', ['-v', '-aec', 'VNA', '127.0.0.1', String(t.port)]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr + r.stdout).toMatch(/Received Echo Response \(Success\)/);
  });

  it('receives every fixture byte-for-byte in its own transfer syntax', async () => {
    for (const f of fixtures) {
      const r = await run('storescu', ['-v', storescuProposalOption(f.transferSyntaxUid), '-aec', 'VNA', '127.0.0.1', String(t.port), f.path]);
      expect(r.code, `${f.name}: ${r.stderr}`).toBe(0);
    }
    for (const f of fixtures) {
      const got = t.received.get(f.sopInstanceUid);
      expect(got, f.name).toBeDefined();
      expect(got!.request.transferSyntaxUid, f.name).toBe(f.transferSyntaxUid);
      expect(got!.request.affectedSopClassUid, f.name).toBe(f.sopClassUid);
      expect(got!.request.association.callingAeTitle).toBe('STORESCU');
      expect(got!.length, f.name).toBe(f.datasetLength);
      expect(got!.sha256, f.name).toBe(f.datasetSha256);
    }
  });

  it('sends several files on one association', async () => {
    const explicit = fixtures.filter((f) => f.transferSyntaxUid === '1.2.840.10008.1.2.1');
    for (const f of explicit) t.received.delete(f.sopInstanceUid);
    const r = await run('storescu', ['-xe', '-aec', 'VNA', '127.0.0.1', String(t.port), ...explicit.map((f) => f.path)]);
    expect(r.code, r.stderr).toBe(0);
    for (const f of explicit) expect(t.received.get(f.sopInstanceUid)?.sha256, f.name).toBe(f.datasetSha256);
  });

  it('stores from many associations in parallel', async () => {
    const base = fixtures.find((f) => f.name === 'CT_small.dcm')!;
    const associations = 8;
    const perAssociation = 4;
    const jobs: Promise<unknown>[] = [];
    const expected = new Map<string, string>();
    for (let a = 0; a < associations; a++) {
      const files: string[] = [];
      for (let i = 0; i < perAssociation; i++) {
        const uid = `2.25.77${a}${i}${Date.now() % 100000}`;
        const path = join(dir.path, `par-${a}-${i}.dcm`);
        await copyFile(base.path, path);
        await runOk('dcmodify', ['-q', '-nb', '-m', `(0008,0018)=${uid}`, path]);
        files.push(path);
        expected.set(uid, sha256((await datasetOfFile(path)).dataset));
      }
      jobs.push(runOk('storescu', ['-xe', '-aet', `SCU${a}`, '-aec', 'VNA', '127.0.0.1', String(t.port), ...files]));
    }
    await Promise.all(jobs);
    for (const [uid, sha] of expected) {
      const got = t.received.get(uid);
      expect(got, uid).toBeDefined();
      expect(got!.sha256).toBe(sha);
    }
    const callers = new Set([...expected.keys()].map((u) => t.received.get(u)!.request.association.id));
    expect(callers.size).toBe(associations);
  });

  it('answers with the handler status, error comment and failure mapping', async () => {
    const base = fixtures.find((f) => f.name === 'CT_small.dcm')!;
    const expectations: [string, RegExp, RegExp][] = [
      ['2.25.999.1', /Status\s+: 0x0111/i, /already stored elsewhere/],
      ['2.25.999.2', /Status\s+: 0xc000/i, /database exploded/],
      ['2.25.999.3', /Status\s+: 0xa900/i, /does not match/],
      ['2.25.999.4', /Status\s+: 0xa700/i, /no space left/],
    ];
    for (const [uid, status, comment] of expectations) {
      const path = join(dir.path, `fail-${uid}.dcm`);
      await copyFile(base.path, path);
      await runOk('dcmodify', ['-q', '-nb', '-m', `(0008,0018)=${uid}`, path]);
      const r = await run('storescu', ['-d', '-xe', '-aec', 'VNA', '127.0.0.1', String(t.port), path]);
      const out = r.stdout + r.stderr;
      expect(out, uid).toMatch(status);
      expect(out, uid).toMatch(comment);
    }
    // The server is still fine.
    const echo = await run('echoscu', ['-aec', 'VNA', '127.0.0.1', String(t.port)]);
    expect(echo.code).toBe(0);
  });
});
