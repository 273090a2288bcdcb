/**
 * Folder and DICOMDIR imports (migration source `{kind: 'folder', path}`), against the real
 * archive process: the pydicom test files as a legacy export (odd encodings, non-DICOM files,
 * DICOMDIRs), and a DICOMDIR file-set. The list of files a DICOMDIR references comes from
 * pydicom (an independent reader), the bytes from the files themselves.
 */
import { cpSync, mkdtempSync, readdirSync, readFileSync, renameSync, rmSync, statSync, unlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { Archive, datasetBytes, run, sha256 } from './support/archive.js';
import { api, archivedDatasets, type Json, waitState } from './support/migration.js';

const PYDICOM_FILES = '/usr/lib/python3/dist-packages/pydicom/data/test_files';
const DICOMDIR_SET = path.join(PYDICOM_FILES, 'dicomdirtests');

function filesUnder(dir: string): string[] {
  return (readdirSync(dir, { recursive: true }) as string[]).filter((f) => statSync(path.join(dir, f)).isFile()).sort();
}

/** pydicom's reading of a DICOMDIR: the Referenced File IDs of its records, in order, each once. */
async function referencedByPydicom(dicomdir: string): Promise<string[]> {
  const r = await run('/usr/bin/python3', [
    '-c',
    `import pydicom, sys, json
ds = pydicom.dcmread(sys.argv[1])
out = []
for rec in ds.DirectoryRecordSequence:
    v = rec.get('ReferencedFileID')
    if v is None: continue
    p = '/'.join(v) if isinstance(v, pydicom.multival.MultiValue) else str(v)
    if p not in out: out.append(p)
print(json.dumps(out))`,
    dicomdir,
  ]);
  expect(r.code, r.stderr).toBe(0);
  return JSON.parse(r.stdout) as string[];
}

/** The files pydicom reads as DICOMDIRs (file meta: Media Storage Directory Storage). */
async function dicomdirsByPydicom(root: string, files: string[]): Promise<string[]> {
  const r = await run('/usr/bin/python3', [
    '-c',
    `import pydicom, sys, json, os
out = []
for f in json.loads(sys.stdin.read()):
    try:
        meta = pydicom.filereader.read_file_meta_info(os.path.join(sys.argv[1], f))
    except Exception:
        continue
    if str(meta.get('MediaStorageSOPClassUID', '')) == '1.2.840.10008.1.3.10': out.append(f)
print(json.dumps(sorted(out)))`,
    root,
  ], { input: Buffer.from(JSON.stringify(files)) });
  expect(r.code, r.stderr).toBe(0);
  return JSON.parse(r.stdout) as string[];
}

/** The SOP Instance UID each done row of a job stored. */
async function storedSops(a: Archive, id: string): Promise<Map<string, string>> {
  const r = await a.db.query(
    `SELECT s.file_path, mi.sop_iuid FROM migration_study s JOIN migration_instance mi ON mi.study_fk = s.id WHERE s.migration_fk = $1`,
    [id],
  );
  return new Map((r.rows as Array<{ file_path: string; sop_iuid: string }>).map((x) => [x.file_path, x.sop_iuid]));
}

async function runImport(a: Archive, name: string, p: string): Promise<{ job: Json; rows: Json[]; id: string }> {
  const created = await api(a, 'POST', '/api/migrations', { name, source: { kind: 'folder', path: p } });
  expect(created.status, created.text).toBe(201);
  const id = String(created.json.id);
  const job = await waitState(a, id, ['COMPLETED', 'FAILED']);
  const rows = (await api(a, 'GET', `/api/migrations/${id}/report`)).json.studies as Json[];
  return { job, rows, id };
}

describe('folder and DICOMDIR imports', () => {
  let a: Archive;
  let work: string;
  const archives: Archive[] = [];
  // A fresh archive per test: the DICOMDIR set's files are among the pydicom test files too.
  beforeEach(async () => {
    a = await Archive.start();
    archives.push(a);
  });
  beforeAll(() => {
    work = mkdtempSync(path.join(tmpdir(), 'vna-migration-dicomdir-'));
  });
  afterAll(async () => {
    for (const x of archives) await x.stop();
    if (work) rmSync(work, { recursive: true, force: true });
  });

  it('the pydicom test files: every file accounted for; DICOMDIRs skipped, unreadable ones failed with reasons, the rest stored byte for byte', async () => {
    const files = filesUnder(PYDICOM_FILES);
    const { job, rows, id } = await runImport(a, 'pydicom test files', PYDICOM_FILES);
    expect(rows.map((r) => r.filePath).sort()).toEqual(files);
    const byState = (s: string) => rows.filter((r) => r.state === s);
    expect(byState('done').length + byState('skipped').length + byState('failed').length).toBe(files.length);
    // Exactly the DICOMDIRs (pydicom's own test file-sets, as pydicom reads them) are skipped as such,
    // with the reason; other skipped rows are files identical to one stored before them.
    const dicomdirs = await dicomdirsByPydicom(PYDICOM_FILES, files);
    expect(dicomdirs.length).toBeGreaterThan(5);
    const asDicomdir = byState('skipped').filter((r) => /^DICOMDIR/.test(String(r.lastError)));
    expect(asDicomdir.map((r) => r.filePath).sort()).toEqual(dicomdirs);
    const identical = byState('skipped').filter((r) => !/^DICOMDIR/.test(String(r.lastError)));
    // Failures carry their reason; the job says some failed.
    expect(byState('failed').length).toBeGreaterThan(0);
    for (const r of byState('failed')) expect(String(r.lastError)).toMatch(/^(not stored|unreadable): ./);
    expect(job.state).toBe('FAILED');
    // What was stored is the files' bytes: each archived SOP's data set is that of a file stored for it
    // (the test files reuse some SOP Instance UIDs across encodings: the archive keeps one current version).
    const done = byState('done');
    expect(done.length).toBeGreaterThan(50);
    const sops = await storedSops(a, id);
    for (const r of identical) expect(sops.has(String(r.filePath)), `identical file ${r.filePath} is accounted for`).toBe(true);
    const candidates = new Map<string, Set<string>>();
    for (const r of [...done, ...identical]) {
      const sop = sops.get(String(r.filePath));
      expect(sop, `no instance recorded for ${r.filePath}`).toBeDefined();
      const set = candidates.get(sop!) ?? new Set<string>();
      set.add(sha256(datasetBytes(readFileSync(path.join(PYDICOM_FILES, String(r.filePath))))));
      candidates.set(sop!, set);
    }
    const archived = await archivedDatasets(a);
    expect([...archived.keys()].sort()).toEqual([...candidates.keys()].sort());
    for (const [sop, digest] of archived) expect(candidates.get(sop)!.has(digest), `archived bytes of ${sop}`).toBe(true);
  });

  it('a DICOMDIR: exactly the files it references, found case-insensitively; a missing one fails with its reason; a re-run duplicates nothing', async () => {
    const set = path.join(work, 'cd');
    cpSync(DICOMDIR_SET, set, { recursive: true });
    const referenced = await referencedByPydicom(path.join(set, 'DICOMDIR'));
    expect(referenced.length).toBe(31);
    // A copy made on a case-folding system: one directory in lower case; and one file lost.
    renameSync(path.join(set, '77654033', 'CR1'), path.join(set, '77654033', 'cr1'));
    const lost = referenced[referenced.length - 1]!;
    unlinkSync(path.join(set, lost));
    const expectedPaths = referenced.map((p) => p.replace(/^77654033\/CR1\//, '77654033/cr1/'));

    const bad = await api(a, 'POST', '/api/migrations', { name: 'not a dicomdir', source: { kind: 'folder', path: path.join(set, '98892001', 'CT2N', '6293') } });
    expect(bad.status).toBe(400);
    expect(JSON.stringify(bad.json.message)).toMatch(/source\.path .* is a file but not a DICOMDIR/);

    const first = await runImport(a, 'file-set', path.join(set, 'DICOMDIR'));
    expect(first.rows.map((r) => r.filePath)).toEqual(expectedPaths);
    const failed = first.rows.filter((r) => r.state === 'failed');
    expect(failed.map((r) => r.filePath)).toEqual([lost]);
    expect(String(failed[0]!.lastError)).toMatch(/^unreadable: .*ENOENT/);
    const done = first.rows.filter((r) => r.state === 'done');
    expect(done).toHaveLength(30);
    const sops = await storedSops(a, first.id);
    for (const r of done) {
      const sop = sops.get(String(r.filePath))!;
      const archived = await a.db.query(`SELECT l.object_key FROM instance i JOIN location l ON l.instance_fk = i.id AND l.status = 'OK' WHERE i.sop_iuid = $1`, [sop]);
      expect(archived.rows).toHaveLength(1);
      const bytes = readFileSync(path.join(a.dataDir, 'storage/hot', archived.rows[0].object_key as string));
      expect(sha256(datasetBytes(bytes))).toBe(sha256(datasetBytes(readFileSync(path.join(set, String(r.filePath))))));
    }
    const before = (await a.db.query(`SELECT count(*)::int AS n FROM location`)).rows[0].n as number;
    const second = await runImport(a, 'file-set again', path.join(set, 'DICOMDIR'));
    expect(second.rows.filter((r) => r.state === 'skipped')).toHaveLength(30);
    expect((await a.db.query(`SELECT count(*)::int AS n FROM location`)).rows[0].n).toBe(before);
  });
});
