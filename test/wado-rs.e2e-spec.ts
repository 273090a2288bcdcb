/**
 * WADO-RS and WADO-URI against the running archive: objects stored with storescu come back with
 * their bytes unchanged; metadata comes from the index with working BulkDataURIs; frames of native
 * and encapsulated multi-frame objects; 406/404/400; missing and corrupt objects are reported,
 * marked for repair, and the rest of the study is still served.
 */
import { readFileSync, unlinkSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  Archive,
  datasetBytes,
  generateStudies,
  type GeneratedFile,
  run,
  sha256,
  sleep,
  storeResponses,
  uid,
  PYDICOM_TEST_FILES,
  xxh64,
} from './support/archive.js';

const PYDICOM_FILES = PYDICOM_TEST_FILES;
const ANY_DICOM = 'multipart/related; type="application/dicom"; transfer-syntax=*';
let archive: Archive;
let work: string;

interface Part {
  headers: Record<string, string>;
  body: Buffer;
}

/** Independent multipart/related parser (buffers the body). */
function parseMultipart(body: Buffer, contentType: string): Part[] {
  const boundary = /boundary="?([^";]+)"?/.exec(contentType)?.[1];
  if (!boundary) throw new Error(`no boundary in ${contentType}`);
  const parts: Part[] = [];
  let pos = body.indexOf(`--${boundary}`);
  for (;;) {
    pos += boundary.length + 2;
    if (body.toString('latin1', pos, pos + 2) === '--') return parts;
    const headEnd = body.indexOf('\r\n\r\n', pos);
    const headers: Record<string, string> = {};
    for (const line of body.toString('latin1', pos + 2, headEnd).split('\r\n')) {
      const i = line.indexOf(':');
      headers[line.slice(0, i).trim().toLowerCase()] = line.slice(i + 1).trim();
    }
    const next = body.indexOf(`\r\n--${boundary}`, headEnd + 4);
    if (next < 0) throw new Error('multipart body without a closing boundary');
    parts.push({ headers, body: body.subarray(headEnd + 4, next) });
    pos = next + 2;
  }
}

async function get(url: string, accept?: string) {
  const r = await fetch(`${archive.http}${url}`, { headers: accept ? { Accept: accept } : {} });
  const body = Buffer.from(await r.arrayBuffer());
  const type = r.headers.get('content-type') ?? '';
  return { status: r.status, headers: r.headers, body, type, parts: () => parseMultipart(body, type), text: () => body.toString() };
}

async function store(files: string[], flag = '-xe') {
  const r = await run('storescu', ['-v', '-R', flag, ...archive.dcmArgs(), ...files]);
  expect(storeResponses(r.stderr).ok, r.stderr).toBe(files.length);
}

async function py(code: string, ...args: string[]): Promise<unknown> {
  const r = await run('/usr/bin/python3', ['-c', code, ...args]);
  if (r.code !== 0) throw new Error(r.stderr);
  return JSON.parse(r.stdout);
}

const NATIVE_FRAMES = `
import pydicom, sys, hashlib, json
ds = pydicom.dcmread(sys.argv[1])
fs = ds.Rows * ds.Columns * ds.SamplesPerPixel * ds.BitsAllocated // 8
n = int(ds.get('NumberOfFrames', 1))
print(json.dumps({'frames': [hashlib.sha256(ds.PixelData[k*fs:(k+1)*fs]).hexdigest() for k in range(n)], 'pixels': hashlib.sha256(ds.PixelData).hexdigest()}))`;
const ENCAPSULATED_FRAMES = `
import pydicom, sys, hashlib, json
from pydicom.encaps import generate_pixel_data_frame
ds = pydicom.dcmread(sys.argv[1])
n = int(ds.get('NumberOfFrames', 1))
print(json.dumps([hashlib.sha256(f).hexdigest() for f in generate_pixel_data_frame(ds.PixelData, n)]))`;
const JPEG_3FRAME = `
import pydicom, sys
from pydicom.encaps import encapsulate, generate_pixel_data_frame
from pydicom.uid import generate_uid
ds = pydicom.dcmread(sys.argv[1])
f = next(generate_pixel_data_frame(ds.PixelData, 1))
ds.StudyInstanceUID, ds.SeriesInstanceUID = generate_uid(), generate_uid()
ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
ds.NumberOfFrames = 3
ds.PixelData = encapsulate([f, f + b'\\0\\0', f + b'\\0\\0\\0\\0'], has_bot=True)
ds.save_as(sys.argv[2])
print('null')`;
const UIDS = `
import pydicom, sys, json
ds = pydicom.dcmread(sys.argv[1], stop_before_pixels=True)
print(json.dumps([ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.SOPInstanceUID, ds.file_meta.TransferSyntaxUID]))`;

async function locationOf(sop: string): Promise<{ object_key: string; sha256: string; status: string }> {
  const r = await archive.db.query(
    `SELECT l.object_key, l.sha256, l.status FROM location l JOIN instance i ON i.id = l.instance_fk WHERE i.sop_iuid = $1 ORDER BY l.version DESC LIMIT 1`,
    [sop],
  );
  return r.rows[0];
}
/** Waits (up to 60 s) until these instances are indexed, so the study is retrievable. */
async function indexed(sops: string[]): Promise<void> {
  for (let t = 0; t < 600; t++) {
    const r = await archive.db.query(`SELECT count(*)::int AS n FROM instance WHERE sop_iuid = ANY($1) AND status = 'INDEXED'`, [sops]);
    if (r.rows[0].n === sops.length) return;
    await sleep(100);
  }
  throw new Error(`${sops.length} instances not indexed in 60 s`);
}
const storedPath = (key: string) => path.join(archive.dataDir, 'storage/hot', key);
const sopOf = (part: Buffer) => {
  const i = part.indexOf(Buffer.from([0x08, 0x00, 0x18, 0x00, 0x55, 0x49]));
  return part.toString('latin1', i + 8, i + 8 + part.readUInt16LE(i + 6)).replace(/\0$/, '');
};

describe('WADO-RS / WADO-URI retrieval', () => {
  const study = uid();
  const ctSeries = uid();
  const mfSeries = uid();
  let files: GeneratedFile[];
  const pyd: Record<string, { study: string; series: string; sop: string; ts: string; path: string }> = {};

  beforeAll(async () => {
    work = mkdtempSync(path.join(tmpdir(), 'vna-wado-'));
    archive = await Archive.start();
    files = await generateStudies(work, [
      {
        patientId: 'W1', patientName: 'Wado^One', studyUid: study, studyDate: '20240201',
        series: [
          { seriesUid: ctSeries, modality: 'CT', number: 1, instances: 3 },
          { seriesUid: mfSeries, modality: 'MR', number: 2, instances: 1, rows: 32, cols: 24, frames: 5 },
        ],
      },
    ]);
    await store(files.map((f) => f.path));
    const picks: Array<[string, string]> = [
      ['SC_rgb_rle_2frame.dcm', '-xr'], ['SC_rgb_jpeg_dcmtk.dcm', '-xy'],
      ['liver_expb_1frame.dcm', '-xb'], ['jpeg_3frame_bot.dcm', '-xy'],
    ];
    // A 3-frame JPEG Baseline object with a Basic Offset Table, built from pydicom's JPEG frame.
    await py(JPEG_3FRAME, path.join(PYDICOM_FILES, 'SC_rgb_jpeg_dcmtk.dcm'), path.join(work, 'jpeg_3frame_bot.dcm'));
    for (const [name, flag] of picks) {
      const p = name === 'jpeg_3frame_bot.dcm' ? path.join(work, name) : path.join(PYDICOM_FILES, name);
      const [s, se, sop, ts] = (await py(UIDS, p)) as string[];
      pyd[name] = { study: s!, series: se!, sop: sop!, ts: ts!, path: p };
      await store([p], flag);
    }
    await archive.waitIndexed(files.length + picks.length);
  });
  afterAll(async () => {
    await archive?.stop();
  });

  it('study, series and instance retrieval: every object as stored, in multipart/related', async () => {
    const sent = new Map(files.map((f) => [f.sopInstanceUid, readFileSync(f.path)]));
    for (const accept of [ANY_DICOM, undefined, 'multipart/related; type="application/dicom"; transfer-syntax=1.2.840.10008.1.2.1']) {
      const r = await get(`/dicom-web/studies/${study}`, accept);
      expect(r.status, r.text()).toBe(200);
      expect(r.type).toMatch(/^multipart\/related; type="application\/dicom"; boundary=/);
      const parts = r.parts();
      expect(parts).toHaveLength(4);
      for (const p of parts) {
        expect(p.headers['content-type']).toBe('application/dicom; transfer-syntax=1.2.840.10008.1.2.1');
        const sop = sopOf(p.body);
        expect(sha256(datasetBytes(p.body))).toBe(sha256(datasetBytes(sent.get(sop)!)));
        expect(sha256(p.body)).toBe((await locationOf(sop)).sha256);
      }
    }
    const series = await get(`/dicom-web/studies/${study}/series/${ctSeries}`, ANY_DICOM);
    expect(series.parts().map((p) => sopOf(p.body)).sort()).toEqual(files.slice(0, 3).map((f) => f.sopInstanceUid).sort());
    const one = await get(`/dicom-web/studies/${study}/series/${mfSeries}/instances/${files[3]!.sopInstanceUid}`, ANY_DICOM);
    expect(one.parts()).toHaveLength(1);
    expect(sha256(datasetBytes(one.parts()[0]!.body))).toBe(sha256(datasetBytes(readFileSync(files[3]!.path))));
  });

  it('compressed objects come back in their stored syntax', async () => {
    for (const p of Object.values(pyd)) {
      const r = await get(`/dicom-web/studies/${p.study}/series/${p.series}/instances/${p.sop}`, ANY_DICOM);
      expect(r.status, r.text()).toBe(200);
      const [part] = r.parts();
      expect(part!.headers['content-type']).toBe(`application/dicom; transfer-syntax=${p.ts}`);
      expect(sha256(part!.body)).toBe((await locationOf(p.sop)).sha256);
      // storescu sent the file's data set as it is (same syntax): the retrieved data set is it.
      expect(sha256(datasetBytes(part!.body))).toBe(sha256(datasetBytes(readFileSync(p.path))));
    }
  });

  it('406 for a transfer syntax the archive would have to transcode to; 406 for other media types', async () => {
    let r = await get(`/dicom-web/studies/${study}`, 'multipart/related; type="application/dicom"; transfer-syntax=1.2.840.10008.1.2.4.50');
    expect(r.status).toBe(406);
    expect(r.text()).toMatch(/does not transcode/);
    const jpeg = pyd['SC_rgb_jpeg_dcmtk.dcm']!;
    r = await get(`/dicom-web/studies/${jpeg.study}/series/${jpeg.series}/instances/${jpeg.sop}`, 'multipart/related; type="application/dicom"; transfer-syntax=1.2.840.10008.1.2.1');
    expect(r.status).toBe(406);
    expect(r.text()).toMatch(/1\.2\.840\.10008\.1\.2\.4\.50/);
    r = await get(`/dicom-web/studies/${study}`, 'application/zip');
    expect(r.status).toBe(406);
  });

  it('404 for unknown UIDs, 400 naming the malformed parameter', async () => {
    let r = await get(`/dicom-web/studies/${uid()}`, ANY_DICOM);
    expect(r.status).toBe(404);
    expect(r.text()).toMatch(/not in the archive/);
    expect((await get(`/dicom-web/studies/${study}/series/${uid()}`)).status).toBe(404);
    expect((await get(`/dicom-web/studies/${study}/series/${ctSeries}/instances/${uid()}`)).status).toBe(404);
    expect((await get(`/dicom-web/studies/${study}/series/${ctSeries}/instances/${uid()}/metadata`)).status).toBe(404);
    expect((await get(`/dicom-web/studies/${uid()}/metadata`)).status).toBe(404);
    r = await get('/dicom-web/studies/not-a-uid', ANY_DICOM);
    expect(r.status).toBe(400);
    expect(JSON.parse(r.text()).message).toMatch(/"study"/);
    r = await get(`/dicom-web/studies/${study}/series/1.2.x/metadata`);
    expect(r.status).toBe(400);
    expect(JSON.parse(r.text()).message).toMatch(/"series"/);
  });

  it('metadata from the index with BulkDataURIs that serve the pixel data', async () => {
    const r = await get(`/dicom-web/studies/${study}/metadata`, 'application/dicom+json');
    expect(r.status).toBe(200);
    expect(r.type).toMatch(/application\/dicom\+json/);
    const md = JSON.parse(r.text()) as Array<Record<string, { vr: string; Value?: unknown[]; BulkDataURI?: string }>>;
    expect(md).toHaveLength(4);
    for (const ds of md) {
      expect(ds['0020000D']!.Value).toEqual([study]);
      const sop = ds['00080018']!.Value![0] as string;
      const series = ds['0020000E']!.Value![0] as string;
      expect(ds['7FE00010']!.BulkDataURI).toBe(`${archive.http}/dicom-web/studies/${study}/series/${series}/instances/${sop}/bulkdata/7FE00010`);
      const file = files.find((f) => f.sopInstanceUid === sop)!;
      const expected = (await py(NATIVE_FRAMES, file.path)) as { pixels: string };
      const bulk = await fetch(ds['7FE00010']!.BulkDataURI!, { headers: { Accept: 'multipart/related; type="application/octet-stream"' } });
      const body = Buffer.from(await bulk.arrayBuffer());
      expect(bulk.status, body.toString()).toBe(200);
      const parts = parseMultipart(body, bulk.headers.get('content-type')!);
      expect(parts).toHaveLength(1);
      expect(parts[0]!.headers['content-type']).toMatch(/^application\/octet-stream/);
      expect(sha256(parts[0]!.body)).toBe(expected.pixels);
    }
    const series = JSON.parse((await get(`/dicom-web/studies/${study}/series/${ctSeries}/metadata`)).text());
    expect(series).toHaveLength(3);
    const inst = JSON.parse((await get(`/dicom-web/studies/${study}/series/${mfSeries}/instances/${files[3]!.sopInstanceUid}/metadata`)).text());
    expect(inst).toHaveLength(1);
    expect(inst[0]['00280008'].Value).toEqual([5]);
    expect((await get(`/dicom-web/studies/${study}/metadata`, 'multipart/related; type="application/dicom+xml"')).status).toBe(406);
  });

  it('frames of a native multi-frame object equal the original frames', async () => {
    const f = files[3]!;
    const expected = (await py(NATIVE_FRAMES, f.path)) as { frames: string[] };
    expect(expected.frames).toHaveLength(5);
    const base = `/dicom-web/studies/${study}/series/${mfSeries}/instances/${f.sopInstanceUid}/frames`;
    const r = await get(`${base}/1,3,5`, 'multipart/related; type="application/octet-stream"; transfer-syntax=*');
    expect(r.status, r.text()).toBe(200);
    const parts = r.parts();
    expect(parts.map((p) => sha256(p.body))).toEqual([expected.frames[0], expected.frames[2], expected.frames[4]]);
    expect(parts[0]!.headers['content-type']).toBe('application/octet-stream; transfer-syntax=1.2.840.10008.1.2.1');
    expect(parts[0]!.body.length).toBe(32 * 24 * 2);
    const all = await get(`${base}/1,2,3,4,5`, 'multipart/related; type="application/octet-stream"');
    expect(all.parts().map((p) => sha256(p.body))).toEqual(expected.frames);
    let bad = await get(`${base}/6`);
    expect(bad.status).toBe(404);
    expect(bad.text()).toMatch(/out of range.*5 frame/);
    bad = await get(`${base}/0`);
    expect(bad.status).toBe(400);
    expect(JSON.parse(bad.text()).message).toMatch(/"frames"/);
    expect((await get(`${base}/1,x`)).status).toBe(400);
    expect((await get(`${base}/1`, 'multipart/related; type="image/jpeg"')).status).toBe(406);
  });

  it('encapsulated frames (RLE multi-frame, JPEG) come back as stored', async () => {
    for (const name of ['SC_rgb_rle_2frame.dcm', 'jpeg_3frame_bot.dcm']) {
      const p = pyd[name]!;
      const expected = (await py(ENCAPSULATED_FRAMES, p.path)) as string[];
      const list = expected.map((_, k) => k + 1).join(',');
      const r = await get(`/dicom-web/studies/${p.study}/series/${p.series}/instances/${p.sop}/frames/${list}`,
        'multipart/related; type="application/octet-stream"; transfer-syntax=*');
      expect(r.status, r.text()).toBe(200);
      const parts = r.parts();
      expect(parts.map((x) => sha256(x.body)), name).toEqual(expected);
      expect(parts[0]!.headers['content-type']).toBe(`application/octet-stream; transfer-syntax=${p.ts}`);
      // Raw octet-stream without a transfer syntax means uncompressed: not what is stored.
      const no = await get(`/dicom-web/studies/${p.study}/series/${p.series}/instances/${p.sop}/frames/1`, 'multipart/related; type="application/octet-stream"');
      expect(no.status).toBe(406);
      expect(no.text()).toMatch(/does not transcode/);
      // Bulk data of encapsulated pixel data: one part per frame.
      const bulk = await get(`/dicom-web/studies/${p.study}/series/${p.series}/instances/${p.sop}/bulkdata/7FE00010`, '*/*');
      expect(bulk.parts().map((x) => sha256(x.body))).toEqual(expected);
    }
    const j = pyd['SC_rgb_jpeg_dcmtk.dcm']!;
    const [frame] = (await py(ENCAPSULATED_FRAMES, j.path)) as string[];
    const r = await get(`/dicom-web/studies/${j.study}/series/${j.series}/instances/${j.sop}/frames/1`, 'multipart/related; type="image/jpeg"');
    expect(r.status, r.text()).toBe(200);
    expect(r.parts()[0]!.headers['content-type']).toBe('image/jpeg; transfer-syntax=1.2.840.10008.1.2.4.50');
    expect(sha256(r.parts()[0]!.body)).toBe(frame);
    expect((await get(`/dicom-web/studies/${j.study}/series/${j.series}/instances/${j.sop}/frames/2`)).status).toBe(404);
    // Big endian pixel data: only with transfer-syntax=* or the stored syntax.
    const be = pyd['liver_expb_1frame.dcm']!;
    const beUrl = `/dicom-web/studies/${be.study}/series/${be.series}/instances/${be.sop}/frames/1`;
    expect((await get(beUrl, 'multipart/related; type="application/octet-stream"')).status).toBe(406);
    expect((await get(beUrl, 'multipart/related; type="application/octet-stream"; transfer-syntax=*')).status).toBe(200);
  });

  it('WADO-URI: application/dicom as stored, JPEG baseline frame as image/jpeg, errors with reasons', async () => {
    const f = files[0]!;
    const q = (params: Record<string, string>) => `/wado?${new URLSearchParams(params)}`;
    const ids = { requestType: 'WADO', studyUID: study, seriesUID: ctSeries, objectUID: f.sopInstanceUid };
    let r = await get(q({ ...ids, contentType: 'application/dicom' }));
    expect(r.status, r.text()).toBe(200);
    expect(r.type).toBe('application/dicom');
    expect(sha256(r.body)).toBe((await locationOf(f.sopInstanceUid)).sha256);
    expect(sha256(datasetBytes(r.body))).toBe(sha256(datasetBytes(readFileSync(f.path))));
    expect((await get(q({ ...ids, contentType: 'application/dicom', transferSyntax: '1.2.840.10008.1.2.1' }))).status).toBe(200);
    r = await get(q({ ...ids, contentType: 'application/dicom', transferSyntax: '1.2.840.10008.1.2.4.50' }));
    expect(r.status).toBe(406);
    expect(r.text()).toMatch(/does not transcode/);
    r = await get(q(ids)); // default image/jpeg: needs rendering
    expect(r.status).toBe(406);
    expect(r.text()).toMatch(/does not render/);
    r = await get(q({ requestType: 'WADO', studyUID: study }));
    expect(r.status).toBe(400);
    expect(r.text()).toMatch(/seriesUID, objectUID/);
    r = await get(q({ ...ids, objectUID: 'x.y' }));
    expect(r.status).toBe(400);
    expect(r.text()).toMatch(/objectUID/);
    expect((await get(q({ ...ids, objectUID: uid(), contentType: 'application/dicom' }))).status).toBe(404);
    const j = pyd['SC_rgb_jpeg_dcmtk.dcm']!;
    const [frame] = (await py(ENCAPSULATED_FRAMES, j.path)) as string[];
    r = await get(q({ requestType: 'WADO', studyUID: j.study, seriesUID: j.series, objectUID: j.sop }));
    expect(r.status, r.text()).toBe(200);
    expect(r.type).toBe('image/jpeg');
    expect(sha256(r.body)).toBe(frame);
  });

  it('records the access time of retrieved studies', async () => {
    const t0 = Date.now();
    let at: Date | null = null;
    while (Date.now() - t0 < 10_000) {
      const row = await archive.db.query(`SELECT last_access_at FROM study WHERE study_iuid = $1`, [study]);
      at = row.rows[0]?.last_access_at ?? null;
      if (at) break;
      await sleep(200);
    }
    expect(at).toBeInstanceOf(Date);
  });

  it('a missing object: reported (206 + Warning), marked MISSING, the rest of the study served', async () => {
    const s = uid();
    const se = uid();
    const gen = await generateStudies(path.join(work, 'missing'), [
      { patientId: 'W2', patientName: 'Wado^Missing', studyUid: s, studyDate: '20240202', series: [{ seriesUid: se, modality: 'CT', instances: 3 }] },
    ]);
    await store(gen.map((g) => g.path));
    await archive.waitIndexed(files.length + 4 + 3);
    const gone = gen[1]!.sopInstanceUid;
    unlinkSync(storedPath((await locationOf(gone)).object_key));
    const r = await get(`/dicom-web/studies/${s}`, ANY_DICOM);
    expect(r.status).toBe(206);
    expect(r.headers.get('warning')).toMatch(new RegExp(`${gone.replace(/\./g, '\\.')} \\(missing\\)`));
    const parts = r.parts();
    expect(parts.map((p) => sopOf(p.body)).sort()).toEqual([gen[0]!.sopInstanceUid, gen[2]!.sopInstanceUid].sort());
    for (const p of parts) expect(sha256(p.body)).toBe((await locationOf(sopOf(p.body))).sha256);
    expect((await locationOf(gone)).status).toBe('MISSING');
    // Matched by location id: markUnreadable currently records the audit event without its UIDs.
    const audit = await archive.db.query(
      `SELECT type FROM audit_event WHERE detail->>'locationId' = (SELECT l.id::text FROM location l JOIN instance i ON i.id = l.instance_fk WHERE i.sop_iuid = $1)`,
      [gone],
    );
    expect(audit.rows.map((x) => x.type)).toContain('LOCATION_MISSING');
    // The instance alone: nothing readable left.
    const one = await get(`/dicom-web/studies/${s}/series/${se}/instances/${gone}`, ANY_DICOM);
    expect(one.status).toBe(410);
    expect(one.text()).toMatch(/marked for repair/);
    const uri = await get(`/wado?requestType=WADO&studyUID=${s}&seriesUID=${se}&objectUID=${gone}&contentType=application/dicom`);
    expect(uri.status).toBe(410);
    // Metadata still comes from the index.
    expect(JSON.parse((await get(`/dicom-web/studies/${s}/metadata`)).text())).toHaveLength(3);
  });

  it('a corrupt object: the transfer breaks (never completes), marked CORRUPT, then the rest is served', async () => {
    const s = uid();
    const se = uid();
    const gen = await generateStudies(path.join(work, 'corrupt'), [
      { patientId: 'W3', patientName: 'Wado^Corrupt', studyUid: s, studyDate: '20240203', series: [{ seriesUid: se, modality: 'CT', number: 1, instances: 3, rows: 128, cols: 128 }] },
    ]);
    await store(gen.map((g) => g.path));
    await archive.waitIndexed(files.length + 4 + 3 + 3);
    // Which object is served second (series/instance order): corrupt that one, same size.
    const order = (await get(`/dicom-web/studies/${s}`, ANY_DICOM)).parts().map((p) => sopOf(p.body));
    const bad = order[1]!;
    const file = storedPath((await locationOf(bad)).object_key);
    const bytes = readFileSync(file);
    bytes[bytes.length - 100] ^= 0xff;
    writeFileSync(file, bytes);
    const r = await fetch(`${archive.http}/dicom-web/studies/${s}`, { headers: { Accept: ANY_DICOM } });
    expect(r.status).toBe(200);
    let complete = false;
    try {
      const body = Buffer.from(await r.arrayBuffer());
      parseMultipart(body, r.headers.get('content-type')!);
      complete = true;
    } catch {
      // a broken transfer or a multipart without its closing boundary
    }
    expect(complete).toBe(false);
    expect((await locationOf(bad)).status).toBe('CORRUPT');
    const again = await get(`/dicom-web/studies/${s}`, ANY_DICOM);
    expect(again.status).toBe(206);
    expect(again.headers.get('warning')).toContain(bad);
    expect(again.parts().map((p) => sopOf(p.body))).toEqual([order[0], order[2]]);
  });

  it('frames: corruption is caught on the first (full) read and on later ranged reads', async () => {
    const s = uid();
    const se = uid();
    const gen = await generateStudies(path.join(work, 'corrupt-frames'), [
      { patientId: 'W4', patientName: 'Wado^Frames', studyUid: s, studyDate: '20240204', series: [{ seriesUid: se, modality: 'MR', instances: 2, rows: 16, cols: 16, frames: 4 }] },
    ]);
    await store(gen.map((g) => g.path));
    await archive.waitIndexed(files.length + 4 + 3 + 3 + 2);
    const accept = 'multipart/related; type="application/octet-stream"';
    const flip = async (sop: string, fromEnd: number) => {
      const file = storedPath((await locationOf(sop)).object_key);
      const bytes = readFileSync(file);
      bytes[bytes.length - fromEnd] ^= 0xff;
      writeFileSync(file, bytes);
    };
    // 1: corrupt before any frame request -> the verifying full read refuses it.
    const a = gen[0]!.sopInstanceUid;
    await flip(a, 10);
    let r = await get(`/dicom-web/studies/${s}/series/${se}/instances/${a}/frames/1`, accept);
    expect(r.status).toBe(410);
    expect(r.text()).toMatch(/corrupt/);
    expect((await locationOf(a)).status).toBe('CORRUPT');
    // 2: map cached by a good read, then a byte of frame 4 flips -> the ranged read refuses it.
    const b = gen[1]!.sopInstanceUid;
    const expected = (await py(NATIVE_FRAMES, gen[1]!.path)) as { frames: string[] };
    r = await get(`/dicom-web/studies/${s}/series/${se}/instances/${b}/frames/1`, accept);
    expect(r.status).toBe(200);
    expect(sha256(r.parts()[0]!.body)).toBe(expected.frames[0]);
    await flip(b, 10);
    r = await get(`/dicom-web/studies/${s}/series/${se}/instances/${b}/frames/4`, accept);
    expect(r.status).toBe(410);
    expect((await locationOf(b)).status).toBe('CORRUPT');
  });

  it('pooled read memory is reused only once the socket has the bytes: concurrent, stalled and aborted clients all get exact objects', async () => {
    // Study retrieval reads objects into reused memory; a release before the socket took the
    // bytes would send another object's bytes. A stalled client keeps its parts queued while
    // other retrievals (and aborted ones) cycle the same memory.
    const big = uid();
    const bigFiles = await generateStudies(work, [
      { patientId: 'W2', patientName: 'Wado^Two', studyUid: big, studyDate: '20240202', series: [{ seriesUid: uid(), modality: 'CT', instances: 48, rows: 512, cols: 512 }] },
    ]);
    await store(bigFiles.map((f) => f.path));
    const sops = bigFiles.map((f) => f.sopInstanceUid);
    await indexed(sops);
    const stored = new Map<string, string>();
    for (const f of bigFiles) stored.set(f.sopInstanceUid, (await locationOf(f.sopInstanceUid)).sha256);
    const url = new URL(`${archive.http}/dicom-web/studies/${big}`);
    const fetchStudy = (opts: { stallMs?: number; abortAfterBytes?: number } = {}) =>
      new Promise<{ body: Buffer; type: string; aborted: boolean }>((resolve, reject) => {
        const req = http.get(url, { headers: { Accept: ANY_DICOM } }, (res) => {
          const chunks: Buffer[] = [];
          let n = 0;
          if (opts.stallMs) {
            res.pause();
            setTimeout(() => res.resume(), opts.stallMs);
          }
          res.on('data', (c: Buffer) => {
            chunks.push(c);
            n += c.length;
            if (opts.abortAfterBytes && n >= opts.abortAfterBytes) {
              req.destroy();
              resolve({ body: Buffer.concat(chunks), type: '', aborted: true });
            }
          });
          res.on('end', () => resolve({ body: Buffer.concat(chunks), type: String(res.headers['content-type']), aborted: false }));
          res.on('error', reject);
        });
        req.on('error', (e) => (opts.abortAfterBytes ? undefined : reject(e)));
      });
    for (let round = 0; round < 2; round++) {
      const results = await Promise.all([
        fetchStudy({ stallMs: 1500 }),
        fetchStudy(),
        fetchStudy({ abortAfterBytes: 3_000_000 }),
        fetchStudy(),
        fetchStudy({ abortAfterBytes: 100_000 }),
        fetchStudy({ stallMs: 700 }),
      ]);
      const complete = results.filter((r) => !r.aborted);
      expect(complete).toHaveLength(4);
      for (const r of complete) {
        const parts = parseMultipart(r.body, r.type);
        expect(parts).toHaveLength(bigFiles.length);
        expect(new Set(parts.map((p) => sopOf(p.body))).size).toBe(bigFiles.length);
        for (const p of parts) expect(sha256(p.body)).toBe(stored.get(sopOf(p.body)));
      }
    }
  });

  it('a copy recorded without XXH64 (before it existed) is verified by SHA-256, learns its XXH64 from that read, and is checked by it from then on', async () => {
    const s = uid();
    const gen = await generateStudies(path.join(work, 'legacy'), [
      { patientId: 'W4', patientName: 'Wado^Legacy', studyUid: s, studyDate: '20240204', series: [{ seriesUid: uid(), modality: 'CT', instances: 3 }] },
    ]);
    await store(gen.map((g) => g.path));
    const sops = gen.map((g) => g.sopInstanceUid);
    await indexed(sops);
    const checkValues = async () =>
      (
        await archive.db.query(
          `SELECT i.sop_iuid, l.xxh64, l.object_key FROM location l JOIN instance i ON i.id = l.instance_fk WHERE i.sop_iuid = ANY($1) AND l.status = 'OK'`,
          [sops],
        )
      ).rows as Array<{ sop_iuid: string; xxh64: string | null; object_key: string }>;
    // Ingest recorded each copy's XXH64, the bytes' own.
    const recorded = await checkValues();
    expect(recorded).toHaveLength(3);
    for (const r of recorded) expect(r.xxh64).toBe(xxh64(readFileSync(storedPath(r.object_key))));
    // As an archive upgraded from before XXH64 has them.
    await archive.db.query(`UPDATE location SET xxh64 = NULL WHERE instance_fk IN (SELECT id FROM instance WHERE sop_iuid = ANY($1))`, [sops]);
    const r = await get(`/dicom-web/studies/${s}`, ANY_DICOM);
    expect(r.status).toBe(200);
    const sent = new Map(gen.map((g) => [g.sopInstanceUid, sha256(datasetBytes(readFileSync(g.path)))]));
    expect(new Map(r.parts().map((p) => [sopOf(p.body), sha256(datasetBytes(p.body))]))).toEqual(sent);
    let learnt: Array<{ sop_iuid: string; xxh64: string | null; object_key: string }> = [];
    for (let t = 0; t < 100; t++) {
      learnt = await checkValues();
      if (learnt.every((x) => x.xxh64 !== null)) break;
      await sleep(100);
    }
    expect(new Map(learnt.map((x) => [x.sop_iuid, x.xxh64]))).toEqual(new Map(recorded.map((x) => [x.sop_iuid, x.xxh64])));
  });
});
