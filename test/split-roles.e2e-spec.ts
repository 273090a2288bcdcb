/**
 * Each role as its own process against the same PostgreSQL, Redis and storage: the ingest app
 * takes C-STORE, the indexer app indexes, the retrieval app answers C-FIND, QIDO-RS and WADO-RS.
 */
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { Archive, datasetBytes, generateStudies, run, sha256, sleep, storeResponses, uid } from './support/archive.js';

const started: Archive[] = [];
afterAll(async () => {
  for (const a of started.reverse()) await a.stop();
});

describe('single-role apps', () => {
  it('ingest, indexer and retrieval run as separate processes on shared state', async () => {
    const ingest = await Archive.start({ app: 'ingest' });
    started.push(ingest);
    // The other roles share the first one's database, Redis and data directory (the hot tier).
    const indexer = await Archive.start({ app: 'indexer', reuse: ingest });
    started.push(indexer);
    const retrieval = await Archive.start({ app: 'retrieval', reuse: ingest });
    started.push(retrieval);

    const work = mkdtempSync(path.join(tmpdir(), 'vna-split-'));
    const study = uid();
    const files = await generateStudies(work, [
      { patientId: 'SPLIT', patientName: 'Split^Roles', studyUid: study, studyDate: '20240401', series: [{ seriesUid: uid(), modality: 'MR', instances: 3 }] },
    ]);
    const r = await run('storescu', ['-v', ...ingest.dcmArgs(), ...files.map((f) => f.path)]);
    expect(storeResponses(r.stderr).ok, r.stderr).toBe(3);
    await indexer.waitIndexed(3);

    const f = await run('findscu', ['-v', '-S', '-k', 'QueryRetrieveLevel=STUDY', '-k', `StudyInstanceUID=${study}`, '-k', 'NumberOfStudyRelatedInstances', ...retrieval.dcmArgs()]);
    expect((f.stderr + f.stdout).match(/Find Response: \d+ \(Pending\)/g)).toHaveLength(1);
    // The ingest process does not answer C-FIND: that role is not loaded there.
    const noFind = await run('findscu', ['-v', '-S', '-k', 'QueryRetrieveLevel=STUDY', '-k', `StudyInstanceUID=${study}`, ...ingest.dcmArgs()]);
    expect((noFind.stderr + noFind.stdout).match(/\(Pending\)/g)).toBeNull();

    const q = await fetch(`${retrieval.http}/dicom-web/studies/${study}/instances`).then((x) => x.json() as Promise<unknown[]>);
    expect(q).toHaveLength(3);
    const w = await fetch(`${retrieval.http}/dicom-web/studies/${study}`, { headers: { Accept: 'multipart/related; type="application/dicom"; transfer-syntax=*' } });
    expect(w.status).toBe(200);
    const body = Buffer.from(await w.arrayBuffer());
    const boundary = /boundary="?([^";]+)"?/.exec(w.headers.get('content-type') ?? '')![1]!;
    const parts = body.toString('latin1').split(`--${boundary}`).slice(1, -1).map((p) => {
      const raw = Buffer.from(p, 'latin1');
      return raw.subarray(raw.indexOf('\r\n\r\n') + 4, raw.length - 2);
    });
    expect(parts.map((p) => sha256(datasetBytes(p))).sort()).toEqual(files.map((f) => sha256(datasetBytes(readFileSync(f.path)))).sort());
  });
});

describe('worker processes', () => {
  it('VNA_WORKERS=2: two processes share the DICOM and HTTP ports; every store is acknowledged and indexed once', async () => {
    const a = await Archive.start({ env: { VNA_WORKERS: '2', VNA_LOG_LEVEL: 'debug' } });
    started.push(a);
    const work = mkdtempSync(path.join(tmpdir(), 'vna-workers-'));
    const studies = [uid(), uid(), uid(), uid()];
    const files = await generateStudies(work, studies.map((s, i) => ({
      patientId: `W${i}`, patientName: `Worker^${i}`, studyUid: s, studyDate: '20240402',
      series: [{ seriesUid: uid(), modality: 'CT', instances: 5 }],
    })));
    // The archive answers as soon as one worker listens; wait for the second one too (each logs
    // "roles ...; HTTP on ..." once its DICOM and HTTP listeners are up), or the supervisor has
    // only one worker to hand the associations to.
    const pidsLogging = (pattern: string) => new Set(
      readFileSync(a.logFile, 'utf8').split('\n').filter((l) => l.includes(pattern))
        .map((l) => /\[Nest\] (\d+)/.exec(l.replace(/\x1b\[[0-9;]*m/g, ''))?.[1]).filter(Boolean),
    );
    for (let i = 0; i < 300 && pidsLogging('; HTTP on ').size < 2; i++) await sleep(100);
    expect(pidsLogging('; HTTP on ').size).toBe(2);
    const runs = await Promise.all(studies.map((s) => run('storescu', ['-v', '+sd', '+r', ...a.dcmArgs(), path.join(work, s)])));
    expect(runs.map((r) => storeResponses(r.stderr).ok)).toEqual([5, 5, 5, 5]);
    await a.waitIndexed(20);
    // Both workers took associations (the supervisor spreads connections round-robin): the log
    // lines of ended associations carry two different process ids.
    expect(pidsLogging('association with').size).toBe(2);
    const q = await fetch(`${a.http}/dicom-web/studies?PatientID=W*`).then((x) => x.json() as Promise<unknown[]>);
    expect(q).toHaveLength(4);
    const rows = await a.db.query(`SELECT sop_iuid FROM instance`);
    expect(rows.rows.map((r) => r.sop_iuid).sort()).toEqual(files.map((f) => f.sopInstanceUid).sort());
  });
});
