/**
 * Retrieval racing tier moves (issue 4): a WADO-RS client stalls mid-study while the study moves
 * to warm and its hot copies are deleted; then the study moves warm -> hot -> warm -> hot while
 * WADO-RS and C-GET retrievals of it run back to back. A retrieval that looked up a location just
 * before a switch may find that copy deleted (the source delete follows the switch after a short
 * grace period): it must follow the instance to its current copy, never answer 206 or fail, never
 * mark a location MISSING, and every object must come back byte-identical.
 */
import { mkdtempSync, readFileSync } from 'node:fs';
import http from 'node:http';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Archive, datasetBytes, generateStudies, run, sha256, storeResponses, uid } from './support/archive.js';
import { cgetStudyDigests, multipartDigests, WADO_ACCEPT, wadoStudyDigests } from './support/retrieve.js';
import { moveStudy } from './support/tiering.js';

let archive: Archive;

describe('retrieval during tier moves', () => {
  beforeAll(async () => {
    archive = await Archive.start();
  });
  afterAll(async () => {
    await archive?.stop();
  });

  it('WADO-RS and C-GET running while the study moves back and forth: every retrieval complete and exact, nothing marked missing', async () => {
    const work = mkdtempSync(path.join(tmpdir(), 'vna-race-'));
    const study = uid();
    const files = await generateStudies(work, [
      { patientId: 'RACE-1', patientName: 'Race^Move', studyUid: study, studyDate: '20240401', series: [{ seriesUid: uid(), modality: 'CT', instances: 40, rows: 512, cols: 512 }] },
    ]);
    const r = await run('storescu', ['-v', ...archive.dcmArgs(), ...files.map((f) => f.path)]);
    expect(storeResponses(r.stderr).ok, r.stderr).toBe(files.length);
    await archive.waitIndexed(files.length);
    const sent = new Map(files.map((f) => [f.sopInstanceUid, sha256(datasetBytes(readFileSync(f.path)))]));

    let moving = true;
    const failures: string[] = [];
    let retrievals = 0;
    const reader = async (kind: 'wado' | 'cget') => {
      while (moving) {
        const got = kind === 'wado' ? await wadoStudyDigests(archive, study) : await cgetStudyDigests(archive, study);
        retrievals++;
        const status = 'status' in got ? got.status : got.code;
        const ok = kind === 'wado' ? status === 200 : status === 0;
        if (!ok) failures.push(`${kind}: ${status} ${'text' in got ? got.text : got.stderr.slice(-500)}`);
        else if (JSON.stringify([...got.digests].sort()) !== JSON.stringify([...sent].sort())) failures.push(`${kind}: ${got.digests.size} objects, not the ones sent`);
      }
    };
    // A client that stalls: the archive has sent what fits in its queue and reads the rest of the
    // study only when the client reads again, after the move below switched and deleted the sources.
    let resume!: () => void;
    const stalled = new Promise<{ status: number; digests: Map<string, string> }>((resolve, reject) => {
      http
        .get(`${archive.http}/dicom-web/studies/${study}`, { headers: WADO_ACCEPT }, (res) => {
          const chunks: Buffer[] = [];
          res.once('data', () => {
            res.pause();
            resume = () => res.resume();
          });
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('end', () => resolve({ status: res.statusCode ?? 0, digests: multipartDigests(Buffer.concat(chunks), String(res.headers['content-type'])) }));
          res.on('error', reject);
        })
        .on('error', reject);
    });
    while (!resume) await new Promise((r) => setTimeout(r, 10));
    await moveStudy(archive, study, 'warm');
    await new Promise((r) => setTimeout(r, 500)); // past the source-delete grace
    resume();
    const late = await stalled;
    expect(late.status).toBe(200);
    expect([...late.digests].sort()).toEqual([...sent].sort());

    const readers = [reader('wado'), reader('wado'), reader('cget')];
    try {
      for (const tier of ['hot', 'warm', 'hot']) await moveStudy(archive, study, tier);
    } finally {
      moving = false;
      await Promise.all(readers);
    }
    expect(failures).toEqual([]);
    expect(retrievals).toBeGreaterThanOrEqual(6);
    const marked = await archive.db.query(`SELECT status, count(*)::int AS n FROM location WHERE status <> 'OK' GROUP BY status`);
    // Switched-away locations leave the table or stay superseded; none may be MISSING or CORRUPT.
    expect(marked.rows.filter((x: { status: string }) => x.status === 'MISSING' || x.status === 'CORRUPT')).toEqual([]);
    const tiers = await archive.db.query(
      `SELECT l.storage_id, count(*)::int AS n FROM location l JOIN instance i ON i.id = l.instance_fk WHERE l.status = 'OK' GROUP BY l.storage_id`,
    );
    expect(tiers.rows).toEqual([{ storage_id: 'hot', n: files.length }]);
  });
});
