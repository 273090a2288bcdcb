/**
 * Spine part 1 end to end: the real archive (PostgreSQL, Redis, filesystem hot tier) driven by
 * dcmtk's echoscu/storescu/findscu and an HTTP client for STOW-RS and QIDO-RS.
 */
import { readFileSync } from 'node:fs';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  Archive,
  datasetBytes,
  generateStudies,
  type GeneratedFile,
  multipart,
  run,
  sha256,
  storeResponses,
  type StudySpec,
  uid,
  xxh64,
} from './support/archive.js';

const STUDIES: StudySpec[] = [
  {
    patientId: 'PID-1', patientName: 'Doe^John', birthDate: '19600101', sex: 'M', studyUid: uid(), studyDate: '20200115',
    studyTime: '083000', accession: 'ACC-1', description: 'CT chest', referrer: 'House^Gregory',
    series: [{ seriesUid: uid(), modality: 'CT', number: 1, instances: 4 }, { seriesUid: uid(), modality: 'CT', number: 2, instances: 3 }],
  },
  {
    patientId: 'PID-1', patientName: 'Doe^John', birthDate: '19600101', sex: 'M', studyUid: uid(), studyDate: '20210610',
    accession: 'ACC-2', description: 'MR head',
    series: [{ seriesUid: uid(), modality: 'MR', number: 1, instances: 2 }],
  },
  {
    patientId: 'PID-2', patientName: 'Müller^Jürgen', birthDate: '19751224', sex: 'M', studyUid: uid(), studyDate: '20220301',
    accession: 'ACC-3', description: 'CR + CT',
    series: [{ seriesUid: uid(), modality: 'CR', number: 1, instances: 1 }, { seriesUid: uid(), modality: 'CT', number: 2, instances: 2 }],
  },
  {
    // Same MRN as PID-1's but another issuer: a different patient.
    patientId: 'PID-1', issuer: 'OTHER-HOSPITAL', patientName: 'Roe^Jane', studyUid: uid(), studyDate: '20230505',
    accession: 'ACC-4', series: [{ seriesUid: uid(), modality: 'US', number: 1, instances: 1 }],
  },
];
const TOTAL = 13;

let archive: Archive;
let files: GeneratedFile[];
let dir: string;

async function qido(pathAndQuery: string) {
  const r = await fetch(`${archive.http}/dicom-web${pathAndQuery}`, { headers: { Accept: 'application/dicom+json' } });
  const text = await r.text();
  return { status: r.status, body: text ? JSON.parse(text) : null, headers: r.headers };
}
const v = (ds: Record<string, { Value?: unknown[] }>, tag: string) => ds[tag]?.Value?.[0];

describe('ingest, index and query', () => {
  beforeAll(async () => {
    dir = mkdtempSync(path.join(tmpdir(), 'vna-data-'));
    files = await generateStudies(dir, STUDIES);
    expect(files).toHaveLength(TOTAL);
    archive = await Archive.start();
  });
  afterAll(async () => {
    await archive?.stop();
  });

  it('answers C-ECHO', async () => {
    const r = await run('echoscu', archive.dcmArgs());
    expect(r.code, r.stderr).toBe(0);
  });

  it('rejects an association to the wrong called AE title', async () => {
    const r = await run('echoscu', ['-aet', 'TESTSCU', '-aec', 'NOTVNA', '127.0.0.1', String(archive.dicomPort)]);
    expect(r.code).not.toBe(0);
    expect(r.stderr + r.stdout).toMatch(/Called AE Title Not Recognized|rejected/i);
  });

  it('stores every instance with storescu and keeps the bytes exactly', async () => {
    const r = await run('storescu', ['-v', '+sd', '+r', ...archive.dcmArgs(), dir]);
    const s = storeResponses(r.stderr + r.stdout);
    expect(s.ok, r.stderr).toBe(TOTAL);
    expect(s.failed).toBe(0);
    await archive.waitIndexed(TOTAL);

    // Every object on disk: its recorded size and digest, and its data set identical to what was sent.
    const rows = await archive.db.query(
      `SELECT i.sop_iuid, l.object_key, l.sha256, l.xxh64, l.size_bytes FROM instance i JOIN location l ON l.instance_fk = i.id WHERE l.status = 'OK'`,
    );
    expect(rows.rowCount).toBe(TOTAL);
    const byUid = new Map(rows.rows.map((x) => [x.sop_iuid as string, x]));
    for (const f of files) {
      const row = byUid.get(f.sopInstanceUid);
      expect(row, f.sopInstanceUid).toBeDefined();
      const stored = readFileSync(path.join(archive.dataDir, 'storage/hot', row.object_key));
      expect(sha256(stored)).toBe(row.sha256);
      expect(xxh64(stored)).toBe(row.xxh64);
      expect(stored.length).toBe(Number(row.size_bytes));
      expect(sha256(datasetBytes(stored))).toBe(sha256(datasetBytes(readFileSync(f.path))));
      // Object keys come from UIDs, never from patient data.
      expect(row.object_key).not.toMatch(/Doe|Müller|PID/);
    }
  });

  it('keeps PatientID + issuer apart and aggregates studies', async () => {
    const patients = await archive.db.query(`SELECT patient_id, issuer, patient_name FROM patient ORDER BY patient_id, issuer`);
    expect(patients.rows.map((p) => [p.patient_id, p.issuer, p.patient_name])).toEqual([
      ['PID-1', '', 'Doe^John'],
      ['PID-1', 'OTHER-HOSPITAL', 'Roe^Jane'],
      ['PID-2', '', 'Müller^Jürgen'],
    ]);
    const s = await archive.db.query(`SELECT num_series, num_instances, modalities FROM study WHERE study_iuid = $1`, [STUDIES[2]!.studyUid]);
    expect(s.rows[0]).toMatchObject({ num_series: 2, num_instances: 3, modalities: ['CR', 'CT'] });
  });

  it('QIDO-RS: studies with default attributes and aggregates', async () => {
    const r = await qido('/studies');
    expect(r.status).toBe(200);
    expect(r.headers.get('content-type')).toContain('application/dicom+json');
    expect(r.body).toHaveLength(4);
    const first = r.body.find((d: Record<string, { Value?: unknown[] }>) => v(d, '0020000D') === STUDIES[0]!.studyUid);
    expect(v(first, '00201206')).toBe(2);
    expect(v(first, '00201208')).toBe(7);
    expect(first['00080061'].Value).toEqual(['CT']);
    expect(v(first, '00100010')).toEqual({ Alphabetic: 'Doe^John' });
    expect(v(first, '00080050')).toBe('ACC-1');
    expect(v(first, '00081190')).toBe(`${archive.http}/dicom-web/studies/${STUDIES[0]!.studyUid}`);
  });

  it('QIDO-RS: matching rules', async () => {
    const count = async (q: string) => {
      const r = await qido(q);
      expect(r.status, JSON.stringify(r.body)).toBe(200);
      return (r.body as unknown[]).length;
    };
    expect(await count('/studies?PatientID=PID-1')).toBe(3);
    expect(await count('/studies?PatientName=doe*')).toBe(2); // case-insensitive wildcard
    expect(await count('/studies?PatientName=DOE^JOHN')).toBe(2);
    expect(await count('/studies?00100010=m*ller*')).toBe(1);
    expect(await count('/studies?PatientName=D?e*')).toBe(2);
    expect(await count('/studies?StudyDate=20200101-20211231')).toBe(2);
    expect(await count('/studies?StudyDate=20220101-')).toBe(2);
    expect(await count('/studies?StudyDate=-20200115')).toBe(1);
    expect(await count('/studies?ModalitiesInStudy=CT')).toBe(2);
    expect(await count('/studies?ModalitiesInStudy=US')).toBe(1);
    expect(await count(`/studies?StudyInstanceUID=${STUDIES[0]!.studyUid},${STUDIES[3]!.studyUid}`)).toBe(2);
    expect(await count('/studies?AccessionNumber=ACC-3')).toBe(1);
    expect(await count('/studies?StudyTime=080000-090000')).toBe(1);
    expect(await count('/studies?PatientID=nobody')).toBe(0);
    expect(await count('/studies?limit=2')).toBe(2);
    expect(await count('/studies?limit=2&offset=3')).toBe(1);
  });

  it('QIDO-RS: series and instances, nested and flat', async () => {
    const st = STUDIES[0]!;
    const series = await qido(`/studies/${st.studyUid}/series`);
    expect(series.body).toHaveLength(2);
    expect(series.body.map((s: Record<string, { Value?: unknown[] }>) => v(s, '00201209')).sort()).toEqual([3, 4]);
    expect(await qido(`/series?Modality=CT`).then((r) => r.body.length)).toBe(3);
    const flat = await qido('/series?Modality=MR');
    expect(v(flat.body[0], '0020000D')).toBe(STUDIES[1]!.studyUid); // study attributes included
    const inst = await qido(`/studies/${st.studyUid}/series/${st.series[0]!.seriesUid}/instances`);
    expect(inst.body).toHaveLength(4);
    expect(inst.body.map((i: Record<string, { Value?: unknown[] }>) => v(i, '00200013')).sort()).toEqual([1, 2, 3, 4]);
    expect(v(inst.body[0], '00280010')).toBe(16);
    expect(await qido(`/studies/${st.studyUid}/instances`).then((r) => r.body.length)).toBe(7);
    expect(await qido(`/instances?SOPInstanceUID=${files[0]!.sopInstanceUid}`).then((r) => r.body.length)).toBe(1);
    expect(await qido(`/instances?InstanceNumber=1`).then((r) => r.body.length)).toBe(6);
  });

  it('QIDO-RS: includefield', async () => {
    const r = await qido(`/studies?StudyInstanceUID=${STUDIES[0]!.studyUid}&includefield=StudyDescription,00100030`);
    expect(v(r.body[0], '00081030')).toBe('CT chest');
    expect(v(r.body[0], '00100030')).toBe('19600101');
    const all = await qido(`/studies/${STUDIES[0]!.studyUid}/series/${STUDIES[0]!.series[0]!.seriesUid}/instances?includefield=all&InstanceNumber=2`);
    expect(all.body).toHaveLength(1);
    expect(v(all.body[0], '00280100')).toBe(16); // BitsAllocated, from the stored metadata
    expect(v(all.body[0], '00180015')).toBe('CHEST');
  });

  it('QIDO-RS: bad parameters get 400 naming the parameter', async () => {
    for (const [q, name] of [
      ['/studies?limit=abc', 'limit'],
      ['/studies?StudyDate=2020-13', 'StudyDate'],
      ['/studies?NotAnAttribute=1', 'NotAnAttribute'],
      ['/studies?StudyInstanceUID=1.2.abc', 'StudyInstanceUID'],
      ['/studies?includefield=Nope', 'includefield'],
    ] as const) {
      const r = await qido(q);
      expect(r.status, q).toBe(400);
      expect(JSON.stringify(r.body), q).toContain(name);
    }
  });

  it('C-FIND: study root, study level', async () => {
    const r = await run('findscu', ['-v', '-S', '-k', 'QueryRetrieveLevel=STUDY', '-k', 'PatientID=PID-1', '-k', 'StudyInstanceUID',
      '-k', 'NumberOfStudyRelatedInstances', '-k', 'PatientName', ...archive.dcmArgs()]);
    expect(r.code, r.stderr).toBe(0);
    const out = r.stderr + r.stdout;
    expect(out.match(/Find Response: \d+ \(Pending\)/g)).toHaveLength(3);
    for (const st of STUDIES.filter((s) => s.patientId === 'PID-1')) expect(out).toContain(st.studyUid);
    expect(out).toContain('[7 ]'); // NumberOfStudyRelatedInstances of the CT study (IS, padded)
  });

  it('C-FIND: wildcard, date range, series and image levels, patient root', async () => {
    const pending = (out: string) => (out.match(/Find Response: \d+ \(Pending\)/g) ?? []).length;
    let r = await run('findscu', ['-v', '-S', '-k', 'QueryRetrieveLevel=STUDY', '-k', 'PatientName=doe*', '-k', 'StudyDate=20210101-', ...archive.dcmArgs()]);
    expect(pending(r.stderr + r.stdout)).toBe(1);
    r = await run('findscu', ['-v', '-S', '-k', 'QueryRetrieveLevel=SERIES', '-k', `StudyInstanceUID=${STUDIES[0]!.studyUid}`,
      '-k', 'SeriesInstanceUID', '-k', 'Modality', '-k', 'NumberOfSeriesRelatedInstances', ...archive.dcmArgs()]);
    expect(pending(r.stderr + r.stdout)).toBe(2);
    r = await run('findscu', ['-v', '-S', '-k', 'QueryRetrieveLevel=IMAGE', '-k', `StudyInstanceUID=${STUDIES[0]!.studyUid}`,
      '-k', `SeriesInstanceUID=${STUDIES[0]!.series[0]!.seriesUid}`, '-k', 'SOPInstanceUID', ...archive.dcmArgs()]);
    expect(pending(r.stderr + r.stdout)).toBe(4);
    r = await run('findscu', ['-v', '-P', '-k', 'QueryRetrieveLevel=PATIENT', '-k', 'PatientID=PID-1', '-k', 'PatientName',
      '-k', 'NumberOfPatientRelatedStudies', ...archive.dcmArgs()]);
    const out = r.stderr + r.stdout;
    expect(pending(out)).toBe(2); // two patients share the MRN under different issuers
    expect(out).toContain('Roe^Jane');
  });

  it('C-FIND: a PATIENT level query on the Study Root model is refused', async () => {
    const r = await run('findscu', ['-v', '-S', '-k', 'QueryRetrieveLevel=PATIENT', '-k', 'PatientID', ...archive.dcmArgs()]);
    expect(r.stderr + r.stdout).toMatch(/Final Find Response \(Error: DataSetDoesNotMatchSOPClass\)/);
    expect(archive.alive).toBe(true);
  });
});
