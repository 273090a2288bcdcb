import { createHash } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { DicomStructureCheck } from './structure-check.js';

const DIR = '/usr/lib/python3/dist-packages/pydicom/data/test_files';

async function check(bytes: Buffer, chunk = 1000): Promise<{ ok: boolean; error?: string; sha: string }> {
  const chunks: Buffer[] = [];
  for (let i = 0; i < bytes.length; i += chunk) chunks.push(bytes.subarray(i, i + chunk));
  const hash = createHash('sha256');
  try {
    await pipeline(
      Readable.from(chunks),
      new DicomStructureCheck({ mode: 'part10' }),
      new Writable({ write(c, _e, cb) { hash.update(c); cb(); } }),
    );
    return { ok: true, sha: hash.digest('hex') };
  } catch (e) {
    return { ok: false, error: (e as Error).message, sha: '' };
  }
}

const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

describe('DicomStructureCheck', () => {
  const good = readdirSync(DIR).filter((f) => f.endsWith('.dcm') && !/truncated|no_meta|NoMeta|badVR|meta_missing|JPEG2000-embedded|UN_sequence|rtstruct/.test(f));

  it.each(good)('accepts and passes through %s unchanged', async (f) => {
    const bytes = readFileSync(`${DIR}/${f}`);
    for (const chunk of [7, 4096]) {
      const r = await check(bytes, chunk);
      expect(r.error).toBeUndefined();
      expect(r.sha).toBe(sha(bytes));
    }
  });

  it.each(['MR_truncated.dcm', 'rtplan_truncated.dcm'])('rejects the truncated file %s', async (f) => {
    const r = await check(readFileSync(`${DIR}/${f}`));
    expect(r.ok).toBe(false);
    expect(r.error).toMatch(/truncated|ends/);
  });

  it('rejects a file cut anywhere inside its data set', async () => {
    const bytes = readFileSync(`${DIR}/CT_small.dcm`);
    for (const cut of [140, 1000 + 0 * bytes.length, bytes.length - 1, bytes.length - 100, bytes.length - 5001]) {
      const r = await check(bytes.subarray(0, cut));
      expect(r.ok, `cut at ${cut}`).toBe(false);
    }
  });

  it('rejects non-DICOM bytes', async () => {
    expect((await check(Buffer.from('hello world, this is not DICOM'.repeat(10)))).ok).toBe(false);
    expect((await check(Buffer.alloc(50))).ok).toBe(false);
  });
});
