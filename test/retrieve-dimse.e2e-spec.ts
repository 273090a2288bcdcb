/**
 * DIMSE retrieval against the running archive: the AE registry (/api/aes, VNA_AES), C-MOVE to a
 * dcmtk storescp (Study Root STUDY/SERIES/IMAGE, Patient Root PATIENT), C-GET with getscu, the
 * pydicom test files, missing and corrupt objects, and VNA_REQUIRE_KNOWN_AES. Every received file's
 * data set must be byte-identical (SHA-256) to what was stored.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, unlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  Archive,
  datasetBytes,
  freePort,
  type GeneratedFile,
  generateStudies,
  run,
  sha256,
  sleep,
  storeResponses,
  uid,
  PYDICOM_TEST_FILES,
  pydicomFilesByStorescuFlag,
  generatedStudyUid,
  metaValue,
} from './support/archive.js';
import { canConnect, retrieveOutcome } from './support/retrieve.js';

const PYDICOM_FILES = PYDICOM_TEST_FILES;

/** A dcmtk storescp writing exactly what it receives (+B) into its own directory. */
class StoreScp {
  child?: ChildProcess;
  log = '';
  constructor(
    readonly aeTitle: string,
    readonly port: number,
    readonly dir: string,
  ) {}

  async start() {
    mkdirSync(this.dir, { recursive: true });
    this.child = spawn('storescp', ['-aet', this.aeTitle, '-od', this.dir, '+xa', '+B', String(this.port)], {
      env: { ...process.env, TCP_NODELAY: '1' },
    });
    this.child.stdout!.on('data', (d) => (this.log += d));
    this.child.stderr!.on('data', (d) => (this.log += d));
    for (let i = 0; i < 100; i++) {
      if (await canConnect(this.port)) return;
      await sleep(50);
    }
    throw new Error(`storescp ${this.aeTitle} did not start: ${this.log}`);
  }

  /** Received files by SOP Instance UID (from their meta header), then the directory emptied. */
  take(): Map<string, Buffer> {
    const out = new Map<string, Buffer>();
    for (const f of readdirSync(this.dir)) {
      const b = readFileSync(path.join(this.dir, f));
      out.set(metaValue(b, 0x0003) ?? f, b);
      unlinkSync(path.join(this.dir, f));
    }
    return out;
  }

  stop() {
    this.child?.kill('SIGTERM');
  }
}

let archive: Archive;
let work: string;
let dest1: StoreScp;
let seeded: StoreScp;
/** SOP Instance UID -> data set SHA-256 of the file sent. */
const sent = new Map<string, string>();
let studyA: { study: string; ct: string; mr: string; files: GeneratedFile[] };
let studyB: { study: string; files: GeneratedFile[] };

const keys = (k: Record<string, string>) => Object.entries(k).flatMap(([n, v]) => ['-k', `${n}=${v}`]);

async function move(dest: string, k: Record<string, string>, model: '-S' | '-P' = '-S', callingAe = 'MOVESCU') {
  const r = await run('movescu', ['-d', model, '-aem', dest, ...keys(k), ...archive.dcmArgs(callingAe)]);
  return retrieveOutcome(r, 'MOVE');
}

async function get(dir: string, k: Record<string, string>, model: '-S' | '-P' = '-S', extra: string[] = []) {
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  const r = await run('getscu', ['-d', model, '+B', '-od', dir, ...extra, ...keys(k), ...archive.dcmArgs('GETSCU')]);
  const files = new Map<string, Buffer>();
  for (const f of readdirSync(dir)) {
    const b = readFileSync(path.join(dir, f));
    files.set(metaValue(b, 0x0003) ?? f, b);
  }
  return { ...retrieveOutcome(r, 'GET'), files };
}

/** Every received data set equals the one sent for that SOP Instance UID. */
function expectSameBytes(received: Map<string, Buffer>, expectedUids: string[]) {
  expect([...received.keys()].sort()).toEqual([...expectedUids].sort());
  for (const [sop, file] of received) expect(sha256(datasetBytes(file)), sop).toBe(sent.get(sop));
}

async function storeFiles(files: GeneratedFile[], callingAe = 'STORESCU') {
  const r = await run('storescu', ['-v', ...archive.dcmArgs(callingAe), ...files.map((f) => f.path)]);
  expect(storeResponses(r.stderr).ok, r.stderr).toBe(files.length);
  for (const f of files) sent.set(f.sopInstanceUid, sha256(datasetBytes(readFileSync(f.path))));
}

async function count(sql: string, params: unknown[] = []): Promise<number> {
  return (await archive.db.query(`SELECT count(*)::int AS n FROM (${sql}) x`, params)).rows[0].n;
}

describe('C-MOVE / C-GET SCP and the AE registry', () => {
  beforeAll(async () => {
    work = mkdtempSync(path.join(tmpdir(), 'vna-retrieve-'));
    const seedPort = await freePort();
    archive = await Archive.start({ env: { VNA_AES: `SEEDDEST@127.0.0.1:${seedPort}`, VNA_DIMSE_PENDING_INTERVAL_MS: '0' } });
    dest1 = new StoreScp('DEST1', await freePort(), path.join(work, 'dest1'));
    seeded = new StoreScp('SEEDDEST', seedPort, path.join(work, 'seeded'));
    await Promise.all([dest1.start(), seeded.start()]);

    const a = { study: uid(), ct: uid(), mr: uid() };
    const b = { study: uid() };
    const files = await generateStudies(path.join(work, 'gen'), [
      {
        patientId: 'PAT-A', patientName: 'Retrieve^Alice', studyUid: a.study, studyDate: '20240301',
        series: [
          { seriesUid: a.ct, modality: 'CT', number: 1, instances: 3 },
          { seriesUid: a.mr, modality: 'MR', number: 2, instances: 2, rows: 32, cols: 32 },
        ],
      },
      { patientId: 'PAT-A', patientName: 'Retrieve^Alice', studyUid: b.study, studyDate: '20240302', series: [{ seriesUid: uid(), modality: 'CT', instances: 2 }] },
    ]);
    studyA = { ...a, files: files.slice(0, 5) };
    studyB = { study: b.study, files: files.slice(5) };
    await storeFiles(files);
    await archive.waitIndexed(7);
  });

  afterAll(async () => {
    dest1?.stop();
    seeded?.stop();
    await archive?.stop();
  });

  it('REST /api/aes: seeded from VNA_AES; create, list, get, delete; 400 names the field; 409 on duplicate; 404 unknown', async () => {
    const api = `${archive.http}/api/aes`;
    const post = (body: unknown, type = 'application/json') =>
      fetch(api, { method: 'POST', headers: { 'Content-Type': type }, body: typeof body === 'string' ? body : JSON.stringify(body) });

    let r = await fetch(api);
    expect(r.status).toBe(200);
    expect(await r.json()).toEqual([
      expect.objectContaining({ aeTitle: 'SEEDDEST', host: '127.0.0.1', port: seeded.port, source: 'config', allowMoveDestination: true }),
    ]);

    r = await post({ aeTitle: ' DEST1 ', host: '127.0.0.1', port: dest1.port, description: 'test storescp' });
    expect(r.status).toBe(201);
    expect(await r.json()).toMatchObject({
      aeTitle: 'DEST1', host: '127.0.0.1', port: dest1.port, description: 'test storescp',
      allowStore: true, allowFind: true, allowRetrieve: true, allowMoveDestination: true, source: 'api',
    });
    r = await post({ aeTitle: 'DEST1', host: 'other.example.org', port: 104 });
    expect(r.status).toBe(409);
    expect(((await r.json()) as { message: string }).message).toMatch(/DEST1.*already registered/);

    const invalid: Array<[unknown, RegExp]> = [
      [{ aeTitle: 'A_TITLE_LONGER_THAN_16', host: 'h', port: 104 }, /aeTitle/],
      [{ aeTitle: 'BACK\\SLASH', host: 'h', port: 104 }, /aeTitle/],
      [{ aeTitle: 'CTRL\u0001', host: 'h', port: 104 }, /aeTitle/],
      [{ aeTitle: '   ', host: 'h', port: 104 }, /aeTitle/],
      [{ host: 'h', port: 104 }, /aeTitle/],
      [{ aeTitle: 'X', host: 'not a host!', port: 104 }, /host/],
      [{ aeTitle: 'X', port: 104 }, /host/],
      [{ aeTitle: 'X', host: 'h', port: 0 }, /port/],
      [{ aeTitle: 'X', host: 'h', port: 65536 }, /port/],
      [{ aeTitle: 'X', host: 'h', port: '104' }, /port/],
      [{ aeTitle: 'X', host: 'h', port: 104, allowStore: 'yes' }, /allowStore/],
      [{ aeTitle: 'X', host: 'h', port: 104, sneaky: 1 }, /sneaky/],
    ];
    for (const [body, field] of invalid) {
      r = await post(body);
      expect(r.status, JSON.stringify(body)).toBe(400);
      expect(JSON.stringify(((await r.json()) as { message: string[] }).message), JSON.stringify(body)).toMatch(field);
    }
    r = await post('{not json');
    expect(r.status).toBe(400);
    r = await post('{}', 'text/plain');
    expect(r.status).toBe(415);

    r = await post({ aeTitle: 'TEMP AE', host: '::1', port: 4242, allowRetrieve: false });
    expect(r.status).toBe(201);
    r = await fetch(`${api}/${encodeURIComponent('TEMP AE')}`);
    expect(r.status).toBe(200);
    expect(await r.json()).toMatchObject({ aeTitle: 'TEMP AE', host: '::1', port: 4242, allowRetrieve: false, allowStore: true });
    r = await fetch(api);
    expect(((await r.json()) as Array<{ aeTitle: string }>).map((a) => a.aeTitle)).toEqual(['DEST1', 'SEEDDEST', 'TEMP AE']);
    r = await fetch(`${api}/${encodeURIComponent('TEMP AE')}`, { method: 'DELETE' });
    expect(r.status).toBe(204);
    r = await fetch(`${api}/${encodeURIComponent('TEMP AE')}`);
    expect(r.status).toBe(404);
    r = await fetch(`${api}/${encodeURIComponent('TEMP AE')}`, { method: 'DELETE' });
    expect(r.status).toBe(404);
    r = await fetch(`${api}/NOBODY`);
    expect(r.status).toBe(404);
    expect(((await r.json()) as { message: string }).message).toMatch(/NOBODY/);
  });

  it('C-MOVE Study Root at STUDY, SERIES and IMAGE level sends the stored bytes, with pending counts', async () => {
    // STUDY level: the whole study, one pending response per sub-operation but the last.
    let o = await move('DEST1', { QueryRetrieveLevel: 'STUDY', StudyInstanceUID: studyA.study });
    expect(o.status, o.out.slice(-3000)).toBe(0x0000);
    expect([o.completed, o.failed, o.warning]).toEqual([5, 0, 0]);
    expect(o.pending).toBe(4);
    expect(o.out).toMatch(/Remaining Suboperations\s*: 4/);
    expectSameBytes(dest1.take(), studyA.files.map((f) => f.sopInstanceUid));

    // STUDY level with a list of Study Instance UIDs.
    o = await move('DEST1', { QueryRetrieveLevel: 'STUDY', StudyInstanceUID: `${studyA.study}\\${studyB.study}` });
    expect([o.status, o.completed, o.failed]).toEqual([0, 7, 0]);
    expectSameBytes(dest1.take(), [...studyA.files, ...studyB.files].map((f) => f.sopInstanceUid));

    // SERIES level.
    o = await move('DEST1', { QueryRetrieveLevel: 'SERIES', StudyInstanceUID: studyA.study, SeriesInstanceUID: studyA.mr });
    expect([o.status, o.completed, o.failed]).toEqual([0, 2, 0]);
    expectSameBytes(dest1.take(), studyA.files.slice(3).map((f) => f.sopInstanceUid));

    // IMAGE level with two SOP Instance UIDs.
    const two = studyA.files.slice(0, 2).map((f) => f.sopInstanceUid);
    o = await move('DEST1', { QueryRetrieveLevel: 'IMAGE', StudyInstanceUID: studyA.study, SeriesInstanceUID: studyA.ct, SOPInstanceUID: two.join('\\') });
    expect([o.status, o.completed, o.failed]).toEqual([0, 2, 0]);
    expectSameBytes(dest1.take(), two);

    // The study's access time is recorded (batched).
    for (let i = 0; i < 50; i++) {
      if ((await count(`SELECT 1 FROM study WHERE study_iuid = $1 AND last_access_at IS NOT NULL`, [studyA.study])) === 1) break;
      await sleep(200);
    }
    expect(await count(`SELECT 1 FROM study WHERE study_iuid = $1 AND last_access_at IS NOT NULL`, [studyA.study])).toBe(1);
  });

  it('C-MOVE Patient Root: PATIENT level (to the VNA_AES destination) and STUDY level', async () => {
    let o = await move('SEEDDEST', { QueryRetrieveLevel: 'PATIENT', PatientID: 'PAT-A' }, '-P');
    expect([o.status, o.completed, o.failed], o.out.slice(-2000)).toEqual([0, 7, 0]);
    expectSameBytes(seeded.take(), [...studyA.files, ...studyB.files].map((f) => f.sopInstanceUid));

    o = await move('SEEDDEST', { QueryRetrieveLevel: 'STUDY', PatientID: 'PAT-A', StudyInstanceUID: studyB.study }, '-P');
    expect([o.status, o.completed, o.failed]).toEqual([0, 2, 0]);
    expectSameBytes(seeded.take(), studyB.files.map((f) => f.sopInstanceUid));
  });

  it('refuses what it cannot do: unknown destination 0xA801, unknown UID 0xC000, bad identifier 0xA900', async () => {
    let o = await move('NOSUCHAE', { QueryRetrieveLevel: 'STUDY', StudyInstanceUID: studyA.study });
    expect(o.status).toBe(0xa801);
    expect(o.out).toMatch(/Move Destination Unknown|MoveDestinationUnknown/i);

    o = await move('DEST1', { QueryRetrieveLevel: 'STUDY', StudyInstanceUID: uid() });
    expect(o.status! & 0xf000).toBe(0xc000);
    expect([o.completed, o.failed]).toEqual([0, 0]);

    // SERIES level without a Series Instance UID would select the whole study: refused.
    o = await move('DEST1', { QueryRetrieveLevel: 'SERIES', StudyInstanceUID: studyA.study });
    expect(o.status).toBe(0xa900);
    // PATIENT level is not part of the Study Root model.
    o = await move('DEST1', { QueryRetrieveLevel: 'PATIENT', PatientID: 'PAT-A' }, '-S');
    expect(o.status).toBe(0xa900);
    o = await move('DEST1', { QueryRetrieveLevel: 'STUDY', StudyInstanceUID: 'not.a.uid' });
    expect(o.status).toBe(0xa900);
    expect(dest1.take().size).toBe(0);

    // IMAGE level naming one stored and one unknown instance: the unknown one is a failed sub-operation.
    const unknown = uid();
    o = await move('DEST1', { QueryRetrieveLevel: 'IMAGE', SeriesInstanceUID: studyA.ct, SOPInstanceUID: `${studyA.files[0]!.sopInstanceUid}\\${unknown}` });
    expect([o.status, o.completed, o.failed]).toEqual([0xb000, 1, 1]);
    expect(o.out).toContain(unknown); // Failed SOP Instance UID List
    expectSameBytes(dest1.take(), [studyA.files[0]!.sopInstanceUid]);
  });

  it('C-GET at STUDY, SERIES and IMAGE level (Study Root) and PATIENT level (Patient Root), same bytes', async () => {
    const dir = path.join(work, 'get');
    let g = await get(dir, { QueryRetrieveLevel: 'STUDY', StudyInstanceUID: studyA.study });
    expect([g.status, g.completed, g.failed, g.warning], g.out.slice(-3000)).toEqual([0, 5, 0, 0]);
    expect(g.pending).toBeGreaterThanOrEqual(4);
    expectSameBytes(g.files, studyA.files.map((f) => f.sopInstanceUid));

    g = await get(dir, { QueryRetrieveLevel: 'SERIES', StudyInstanceUID: studyA.study, SeriesInstanceUID: studyA.ct });
    expect([g.status, g.completed, g.failed]).toEqual([0, 3, 0]);
    expectSameBytes(g.files, studyA.files.slice(0, 3).map((f) => f.sopInstanceUid));

    const one = studyA.files[4]!.sopInstanceUid;
    g = await get(dir, { QueryRetrieveLevel: 'IMAGE', StudyInstanceUID: studyA.study, SeriesInstanceUID: studyA.mr, SOPInstanceUID: one });
    expect([g.status, g.completed, g.failed]).toEqual([0, 1, 0]);
    expectSameBytes(g.files, [one]);

    g = await get(dir, { QueryRetrieveLevel: 'PATIENT', PatientID: 'PAT-A' }, '-P');
    expect([g.status, g.completed, g.failed]).toEqual([0, 7, 0]);
    expectSameBytes(g.files, [...studyA.files, ...studyB.files].map((f) => f.sopInstanceUid));

    g = await get(dir, { QueryRetrieveLevel: 'STUDY', StudyInstanceUID: uid() });
    expect(g.status! & 0xf000).toBe(0xc000);
  });

  it('stores and retrievals are in the audit trail: who, how, how many', async () => {
    const w = await fetch(`${archive.http}/dicom-web/studies/${studyA.study}`, { headers: { Accept: 'multipart/related; type="application/dicom"; transfer-syntax=*' } });
    expect(w.status).toBe(200);
    await w.arrayBuffer();
    type Ev = { type: string; actor: string; studyInstanceUid: string; detail: Record<string, unknown> };
    const events = async (type: string): Promise<Ev[]> => {
      const r = await fetch(`${archive.http}/api/audit?type=${type}&study=${studyA.study}&limit=1000`);
      return ((await r.json()) as { items: Ev[] }).items;
    };
    // Retrievals are written in batches (every 2 s): wait for them.
    let retrieved: Ev[] = [];
    for (let i = 0; i < 100; i++) {
      retrieved = await events('STUDY_RETRIEVED');
      if (retrieved.some((e) => e.detail.via === 'WADO-RS')) break;
      await new Promise((r) => setTimeout(r, 100));
    }
    const received = await events('STUDY_RECEIVED');
    expect(received.map((e) => [e.actor, e.detail.via, e.detail.instances])).toEqual([['STORESCU', 'C-STORE', 5]]);
    const byVia = (via: string) => retrieved.filter((e) => e.detail.via === via);
    expect(byVia('C-MOVE').length).toBeGreaterThan(0);
    expect(byVia('C-MOVE')[0]).toMatchObject({ actor: 'MOVESCU', detail: { destination: 'DEST1' } });
    // The study-level C-GET of the previous test: all 5 instances of the study, by GETSCU.
    expect(byVia('C-GET').some((e) => e.actor === 'GETSCU' && e.detail.instances === 5)).toBe(true);
    expect(byVia('WADO-RS')[0]).toMatchObject({ detail: { path: `/dicom-web/studies/${studyA.study}`, status: 200 } });
    expect(byVia('WADO-RS')[0]!.actor).toMatch(/^HTTP:/);
  });

  it('missing and corrupt objects: C-MOVE and C-GET count a failure each, deliver the rest, mark the locations', async () => {
    const files = await generateStudies(path.join(work, 'damaged'), [
      { patientId: 'PAT-D', patientName: 'Damaged^Dora', studyUid: uid(), studyDate: '20240303', series: [{ seriesUid: uid(), modality: 'CT', instances: 5 }] },
      { patientId: 'PAT-D', patientName: 'Damaged^Dora', studyUid: uid(), studyDate: '20240304', series: [{ seriesUid: uid(), modality: 'CT', instances: 5 }] },
    ]);
    await storeFiles(files);
    await archive.waitIndexed(7 + files.length);
    const moveStudy = generatedStudyUid(files[0]!.path);
    const getStudy = generatedStudyUid(files[5]!.path);

    const damage = async (sops: { missing: string; corrupt: string }) => {
      const keyOf = async (sop: string) =>
        (await archive.db.query(`SELECT l.object_key FROM location l JOIN instance i ON i.id = l.instance_fk WHERE i.sop_iuid = $1`, [sop])).rows[0]
          .object_key as string;
      unlinkSync(path.join(archive.dataDir, 'storage/hot', await keyOf(sops.missing)));
      const p = path.join(archive.dataDir, 'storage/hot', await keyOf(sops.corrupt));
      const b = readFileSync(p);
      b[b.length - 10] ^= 0xff; // same size, different digest: found only by reading it all
      writeFileSync(p, b);
    };
    const statusOf = async (sop: string) =>
      (await archive.db.query(`SELECT l.status FROM location l JOIN instance i ON i.id = l.instance_fk WHERE i.sop_iuid = $1`, [sop])).rows[0].status;

    // C-MOVE: instances 2 (missing) and 4 (corrupt) of five.
    const m = { missing: files[1]!.sopInstanceUid, corrupt: files[3]!.sopInstanceUid };
    await damage(m);
    let o = await move('DEST1', { QueryRetrieveLevel: 'STUDY', StudyInstanceUID: moveStudy });
    expect([o.status, o.completed, o.failed, o.warning], o.out.slice(-3000)).toEqual([0xb000, 3, 2, 0]);
    expect(o.out).toContain(m.missing);
    expect(o.out).toContain(m.corrupt);
    const good = files.slice(0, 5).map((f) => f.sopInstanceUid).filter((s) => s !== m.missing && s !== m.corrupt);
    expectSameBytes(dest1.take(), good);
    expect(await statusOf(m.missing)).toBe('MISSING');
    expect(await statusOf(m.corrupt)).toBe('CORRUPT');
    // Asked again: no readable copy is recorded any more; still two failures, three delivered.
    o = await move('DEST1', { QueryRetrieveLevel: 'STUDY', StudyInstanceUID: moveStudy });
    expect([o.status, o.completed, o.failed]).toEqual([0xb000, 3, 2]);
    expectSameBytes(dest1.take(), good);

    // C-GET: the corrupt object is found before any of its bytes go out, so the requestor's
    // association survives and the rest of the study arrives.
    const g0 = { missing: files[6]!.sopInstanceUid, corrupt: files[8]!.sopInstanceUid };
    await damage(g0);
    const g = await get(path.join(work, 'get-damaged'), { QueryRetrieveLevel: 'STUDY', StudyInstanceUID: getStudy });
    expect([g.status, g.completed, g.failed, g.warning], g.out.slice(-3000)).toEqual([0xb000, 3, 2, 0]);
    expect(g.out).not.toMatch(/Association Aborted|Peer Aborted/i);
    expectSameBytes(g.files, files.slice(5).map((f) => f.sopInstanceUid).filter((s) => s !== g0.missing && s !== g0.corrupt));
    expect(await statusOf(g0.missing)).toBe('MISSING');
    expect(await statusOf(g0.corrupt)).toBe('CORRUPT');
    expect(archive.alive).toBe(true);
  });

  it('objects above the in-memory verification size: C-GET checks first then streams, C-MOVE streams holding the last PDV back; corrupt ones fail alone', async () => {
    // 1024 x 1024 x 6 frames x 16 bit = 12 MiB each (the in-memory limit is 8 MiB).
    const study = uid();
    const files = await generateStudies(path.join(work, 'large'), [
      { patientId: 'PAT-L', patientName: 'Large^Leo', studyUid: study, studyDate: '20240306', series: [{ seriesUid: uid(), modality: 'MR', instances: 3, rows: 1024, cols: 1024, frames: 6 }] },
    ]);
    await storeFiles(files);
    await archive.waitIndexed(await count(`SELECT 1 FROM instance`));
    let o = await move('DEST1', { QueryRetrieveLevel: 'STUDY', StudyInstanceUID: study });
    expect([o.status, o.completed, o.failed], o.out.slice(-2000)).toEqual([0, 3, 0]);
    expectSameBytes(dest1.take(), files.map((f) => f.sopInstanceUid));
    let g = await get(path.join(work, 'get-large'), { QueryRetrieveLevel: 'STUDY', StudyInstanceUID: study });
    expect([g.status, g.completed, g.failed]).toEqual([0, 3, 0]);
    expectSameBytes(g.files, files.map((f) => f.sopInstanceUid));

    const corrupt = async (sop: string) => {
      const key = (await archive.db.query(`SELECT l.object_key FROM location l JOIN instance i ON i.id = l.instance_fk WHERE i.sop_iuid = $1`, [sop])).rows[0].object_key;
      const p = path.join(archive.dataDir, 'storage/hot', key);
      const b = readFileSync(p);
      b[b.length - 100] ^= 0x01;
      writeFileSync(p, b);
    };
    const statusOf = async (sop: string) =>
      (await archive.db.query(`SELECT l.status FROM location l JOIN instance i ON i.id = l.instance_fk WHERE i.sop_iuid = $1`, [sop])).rows[0].status;
    // C-GET: the verification pass finds it before any byte is sent; the association survives.
    await corrupt(files[0]!.sopInstanceUid);
    g = await get(path.join(work, 'get-large'), { QueryRetrieveLevel: 'STUDY', StudyInstanceUID: study });
    expect([g.status, g.completed, g.failed], g.out.slice(-2000)).toEqual([0xb000, 2, 1]);
    expect(g.out).not.toMatch(/Association Aborted|Peer Aborted/i);
    expectSameBytes(g.files, [files[1]!.sopInstanceUid, files[2]!.sopInstanceUid]);
    expect(await statusOf(files[0]!.sopInstanceUid)).toBe('CORRUPT');

    // C-MOVE: streamed once; the mismatch is found before the last PDV, which is never sent: our
    // sub-association is aborted, the sub-operation fails, the next object goes over a new one.
    await corrupt(files[1]!.sopInstanceUid);
    o = await move('DEST1', { QueryRetrieveLevel: 'STUDY', StudyInstanceUID: study });
    expect([o.status, o.completed, o.failed], o.out.slice(-2000)).toEqual([0xb000, 1, 2]);
    expect(o.out).not.toMatch(/Association Aborted|Peer Aborted/i); // the requestor's association is intact
    const received = dest1.take();
    expect(received.get(files[2]!.sopInstanceUid), 'the good object').toBeDefined();
    // storescp +B may leave what it got of the aborted object; it must be short of the real object.
    const partial = received.get(files[1]!.sopInstanceUid);
    if (partial) expect(partial.length).toBeLessThan(readFileSync(files[1]!.path).length);
    expectSameBytes(new Map([[files[2]!.sopInstanceUid, received.get(files[2]!.sopInstanceUid)!]]), [files[2]!.sopInstanceUid]);
    expect(await statusOf(files[1]!.sopInstanceUid)).toBe('CORRUPT');
  });

  it('pydicom test files: stored in their own syntaxes, C-MOVEd back byte for byte', async () => {
    const groups = pydicomFilesByStorescuFlag();
    // storescu re-encodes some files on the way (no meta header, odd encodings): to know exactly
    // what goes on the wire, send the same files to a bit-preserving storescp first.
    const capture = new StoreScp('VNA', await freePort(), path.join(work, 'capture'));
    await capture.start();
    const wire = new Map<string, string>();
    try {
      for (const [flag, list] of groups) {
        await run('storescu', ['-v', flag, '-nh', '-aet', 'PYSCU', '-aec', 'VNA', '127.0.0.1', String(capture.port), ...list]);
        for (const [sop, file] of capture.take()) wire.set(sop, sha256(datasetBytes(file)));
      }
    } finally {
      capture.stop();
    }
    for (const [flag, list] of groups) await run('storescu', ['-v', flag, '-nh', ...archive.dcmArgs('PYSCU'), ...list]);
    const total = await count(`SELECT 1 FROM instance`);
    await archive.waitIndexed(total);

    const rows = (await archive.db.query(
      `SELECT i.study_iuid, i.sop_iuid, l.object_key FROM instance i JOIN location l ON l.instance_fk = i.id AND l.status = 'OK'
        WHERE i.source_ae = 'PYSCU' AND i.series_fk IS NOT NULL`,
    )).rows as Array<{ study_iuid: string; sop_iuid: string; object_key: string }>;
    // Several pydicom files share SOP Instance UIDs (they become versions of one instance).
    expect(rows.length).toBeGreaterThanOrEqual(25);
    const studies = [...new Set(rows.map((r) => r.study_iuid))];
    let delivered = 0;
    let identicalToSent = 0;
    for (const study of studies) {
      const expected = (await archive.db.query(
        `SELECT i.sop_iuid, l.object_key FROM instance i JOIN location l ON l.instance_fk = i.id AND l.status = 'OK'
          WHERE i.study_iuid = $1 AND i.series_fk IS NOT NULL`, [study],
      )).rows as Array<{ sop_iuid: string; object_key: string }>;
      const o = await move('DEST1', { QueryRetrieveLevel: 'STUDY', StudyInstanceUID: study });
      const received = dest1.take();
      expect([o.status, o.completed, o.failed], `${study}\n${o.out.slice(-2000)}`).toEqual([0, expected.length, 0]);
      expect([...received.keys()].sort(), study).toEqual(expected.map((e) => e.sop_iuid).sort());
      for (const e of expected) {
        const stored = readFileSync(path.join(archive.dataDir, 'storage/hot', e.object_key));
        const got = sha256(datasetBytes(received.get(e.sop_iuid)!));
        expect(got, e.sop_iuid).toBe(sha256(datasetBytes(stored)));
        if (wire.get(e.sop_iuid) === got) identicalToSent++;
        else console.log(`not as on the wire: ${e.sop_iuid} ${wire.has(e.sop_iuid) ? 'differs' : 'not captured'}`);
        delivered++;
      }
    }
    expect(delivered).toBe(await count(`SELECT 1 FROM instance i WHERE i.study_iuid = ANY($1::text[]) AND i.series_fk IS NOT NULL`, [studies]));
    // What comes back is exactly what storescu sent.
    expect(identicalToSent).toBe(delivered);
  });
  it('pooled read memory: concurrent C-GETs, a C-MOVE and an aborted C-GET of one study each deliver exact objects', async () => {
    // Sub-operations send objects from reused memory, released once the socket has the bytes;
    // concurrent retrievals and an aborted one cycle that memory while the others send.
    const study = uid();
    const files = await generateStudies(path.join(work, 'gen-pool'), [
      { patientId: 'PAT-P', patientName: 'Pool^Pat', studyUid: study, studyDate: '20240310', series: [{ seriesUid: uid(), modality: 'CT', instances: 40, rows: 512, cols: 512 }] },
    ]);
    await storeFiles(files);
    const sops = files.map((f) => f.sopInstanceUid);
    for (let t = 0; t < 600 && (await count(`SELECT 1 FROM instance WHERE sop_iuid = ANY($1) AND status = 'INDEXED'`, [sops])) < sops.length; t++) await sleep(100);
    const keysOf = { QueryRetrieveLevel: 'STUDY', StudyInstanceUID: study };
    for (let round = 0; round < 2; round++) {
      const aborted = spawn('getscu', ['-S', '-od', mkdtempSync(path.join(work, 'abort-')), ...keys(keysOf), ...archive.dcmArgs('GETSCU')], {
        env: { ...process.env, TCP_NODELAY: '1' },
      });
      setTimeout(() => aborted.kill('SIGKILL'), 150);
      const [g1, g2, g3, m] = await Promise.all([
        get(path.join(work, 'pool1'), keysOf),
        get(path.join(work, 'pool2'), keysOf),
        get(path.join(work, 'pool3'), keysOf),
        move('DEST1', keysOf),
      ]);
      for (const g of [g1, g2, g3]) {
        expect([g.status, g.completed, g.failed], g.out.slice(-2000)).toEqual([0, 40, 0]);
        expectSameBytes(g.files, sops);
      }
      expect([m.status, m.completed, m.failed]).toEqual([0, 40, 0]);
      expectSameBytes(dest1.take(), sops);
    }
  });
});

describe('VNA_REQUIRE_KNOWN_AES=true', () => {
  let strict: Archive;
  beforeAll(async () => {
    strict = await Archive.start({ env: { VNA_REQUIRE_KNOWN_AES: 'true', VNA_AES: 'KNOWNSCU@127.0.0.1:11113' } });
  });
  afterAll(async () => {
    await strict?.stop();
  });

  it('accepts only registered calling AEs, each only for the operations it is allowed', async () => {
    expect((await run('echoscu', strict.dcmArgs('STRANGER'))).code).not.toBe(0);
    expect((await run('echoscu', strict.dcmArgs('KNOWNSCU'))).code).toBe(0);

    const r = await fetch(`${strict.http}/api/aes`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ aeTitle: 'VIEWONLY', host: '127.0.0.1', port: 11114, allowStore: false, allowRetrieve: false }),
    });
    expect(r.status).toBe(201);
    const dir = mkdtempSync(path.join(tmpdir(), 'vna-strict-'));
    const [file] = await generateStudies(dir, [
      { patientId: 'S1', patientName: 'Strict^Sam', studyUid: uid(), studyDate: '20240305', series: [{ seriesUid: uid(), modality: 'CT', instances: 1 }] },
    ]);
    // VIEWONLY may associate and query, but not store or retrieve.
    let s = await run('storescu', ['-v', ...strict.dcmArgs('VIEWONLY'), file!.path]);
    // 0x0124 Refused: Not Authorized (PS3.7 C.5; storescu calls it an unknown status).
    expect(s.stderr).toMatch(/Received Store Response.*(0x124|Refused)/);
    s = await run('storescu', ['-v', ...strict.dcmArgs('KNOWNSCU'), file!.path]);
    expect(storeResponses(s.stderr).ok).toBe(1);
    await strict.waitIndexed(1);
    const study = generatedStudyUid(file!.path);
    const find = await run('findscu', ['-v', '-S', '-k', 'QueryRetrieveLevel=STUDY', '-k', `StudyInstanceUID=${study}`, ...strict.dcmArgs('VIEWONLY')]);
    expect(find.stderr + find.stdout).toMatch(/Received Final Find Response \(Success\)/);
    const mv = retrieveOutcome(
      await run('movescu', ['-d', '-S', '-aem', 'KNOWNSCU', '-k', 'QueryRetrieveLevel=STUDY', '-k', `StudyInstanceUID=${study}`, ...strict.dcmArgs('VIEWONLY')]),
      'MOVE',
    );
    expect(mv.status).toBe(0x0124);
  });
});

