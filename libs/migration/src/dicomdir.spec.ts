import { cpSync, mkdtempSync, renameSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { DicomdirError, dicomdirFiles, isDicomdir } from './dicomdir.js';

// pydicom's test file-sets; the expected lists were read with pydicom (test/migration-folder.e2e-spec.ts does that live).
const SETS = '/usr/lib/python3/dist-packages/pydicom/data/test_files/dicomdirtests';
const work = mkdtempSync(path.join(tmpdir(), 'vna-dicomdir-spec-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));

describe('DICOMDIR', () => {
  it.each(['DICOMDIR', 'DICOMDIR-implicit', 'DICOMDIR-bigEnd', 'DICOMDIR-reordered', 'DICOMDIR-nopatient'])('%s: the 31 referenced files, in record order', async (name) => {
    const f = path.join(SETS, name);
    expect(await isDicomdir(f)).toBe(true);
    const files = await dicomdirFiles(f);
    expect(files).toHaveLength(31);
    expect(files.slice(0, 3)).toEqual(['77654033/CR1/6154', '77654033/CR2/6247', '77654033/CR3/6278']);
    expect(new Set(files).size).toBe(31);
  });

  it('an empty DICOMDIR references nothing; the TINY_ALPHA set 50 files', async () => {
    expect(await dicomdirFiles(path.join(SETS, 'DICOMDIR-empty.dcm'))).toEqual([]);
    const tiny = await dicomdirFiles(path.join(SETS, 'TINY_ALPHA/DICOMDIR'));
    expect(tiny).toHaveLength(50);
    expect(tiny[0]).toBe('PT000000/ST000000/SE000000/IM000000');
  });

  it('matches file IDs case-insensitively when the exact name is absent', async () => {
    const set = path.join(work, 'set');
    cpSync(SETS, set, { recursive: true });
    renameSync(path.join(set, '77654033', 'CR2'), path.join(set, '77654033', 'cr2'));
    const files = await dicomdirFiles(path.join(set, 'DICOMDIR'));
    expect(files[1]).toBe('77654033/cr2/6247');
  });

  it('an image is not a DICOMDIR', async () => {
    const image = path.join(SETS, '77654033/CR1/6154');
    expect(await isDicomdir(image)).toBe(false);
    await expect(dicomdirFiles(image)).rejects.toBeInstanceOf(DicomdirError);
  });
});
