/**
 * Priors prefetch (issue 4): tiers hot (fs) and cold (fs, offline). A patient's earlier studies are
 * moved to cold; when a new study of that patient arrives, the VNA_PRIORS_COUNT most recent priors
 * (VNA_PRIORS_SAME_MODALITY: sharing a modality) are restored into hot ahead of need — and nothing
 * else: not an older or other-modality prior, not another patient's study (another PatientID, or the
 * same PatientID from another issuer). A prefetched prior is then served by WADO-RS at once (with
 * VNA_RESTORE_WAIT_S=0 a study still on cold would answer 503), byte for byte what was sent. More
 * instances of the new study do not prefetch again. With the prefetch off nothing is restored.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Archive, datasetBytes, generateStudies, run, sha256, type StudySpec, storeResponses, tiersEnv, uid } from './support/archive.js';
import { wadoStudyDigests } from './support/retrieve.js';
import { api, jobExists, moveStudy, until } from './support/tiering.js';

interface LocationsView {
  tiers: Record<string, number>;
  restored: { instances: number; expiresAt: string | null };
}

const started: Archive[] = [];
/** SOP Instance UID -> SHA-256 of the data set sent. */
const sent = new Map<string, string>();
/** Study UID -> its SOP Instance UIDs. */
const instancesOf = new Map<string, string[]>();

function env(extra: Record<string, string>): Record<string, string> {
  return {
    ...tiersEnv([
      { id: 'hot', kind: 'fs', path: 'storage/hot', availability: 'online' },
      { id: 'cold', kind: 'fs', path: 'storage/cold', availability: 'offline' },
    ]),
    VNA_LIFECYCLE_INTERVAL_S: '0',
    // A retrieval of a study still on cold answers 503 at once: a 200 proves the prefetch restored it.
    VNA_RESTORE_WAIT_S: '0',
    ...extra,
  };
}

interface Study {
  patientId: string;
  issuer?: string;
  date: string;
  modality: string;
}

/** Stores studies (2 instances each) with storescu; returns their UIDs in order. */
async function storeStudies(a: Archive, studies: Study[]): Promise<string[]> {
  const work = mkdtempSync(path.join(tmpdir(), 'vna-prefetch-'));
  const uids = studies.map(() => uid());
  const files = [];
  for (const [i, s] of studies.entries()) {
    const spec: StudySpec = {
      patientId: s.patientId, issuer: s.issuer, patientName: `Prior^${s.patientId}`, studyUid: uids[i]!, studyDate: s.date,
      series: [{ seriesUid: uid(), modality: s.modality, instances: 2, rows: 32, cols: 32 }],
    };
    const dir = path.join(work, String(i));
    const generatedFiles = await generateStudies(dir, [spec]);
    for (const f of generatedFiles) {
      sent.set(f.sopInstanceUid, sha256(datasetBytes(readFileSync(f.path))));
      instancesOf.set(uids[i]!, [...(instancesOf.get(uids[i]!) ?? []), f.sopInstanceUid]);
    }
    files.push(...generatedFiles);
  }
  const r = await run('storescu', ['-v', '+sd', '+r', ...a.dcmArgs(), work]);
  expect(storeResponses(r.stderr).ok, r.stderr).toBe(files.length);
  rmSync(work, { recursive: true, force: true });
  return uids;
}

/** Waits until the study's index job is gone (so the prefetch job it enqueues, if any, exists) and that job is done too. */
async function settled(a: Archive, study: string): Promise<void> {
  await until(`jobs of ${study}`, a, async () => {
    const indexing = await jobExists(a, 'vna-index', `index-study-${study}`);
    const received = await a.db.query(`SELECT 1 FROM instance WHERE study_iuid = $1 AND status = 'RECEIVED'`, [study]);
    if (indexing || received.rowCount) return undefined;
    return (await jobExists(a, 'vna-tiering', `priors-prefetch-${study}`)) ? undefined : true;
  });
}

async function restoresOf(a: Archive): Promise<Array<{ study_iuid: string; requested_by: string; state: string }>> {
  return (await a.db.query(`SELECT study_iuid, requested_by, state FROM study_restore ORDER BY id`)).rows;
}

function expectedOf(study: string): Map<string, string> {
  return new Map(instancesOf.get(study)!.map((s) => [s, sent.get(s)!]));
}

afterAll(async () => {
  for (const a of started) await a.stop();
});

describe('priors prefetch on (2 most recent priors, same modality)', () => {
  let archive: Archive;
  beforeAll(async () => {
    archive = await Archive.start({ env: env({ VNA_PRIORS_PREFETCH: 'on', VNA_PRIORS_COUNT: '2', VNA_PRIORS_SAME_MODALITY: 'true' }) });
    started.push(archive);
  });

  it('restores exactly the most recent same-modality priors of the patient when a new study arrives', async () => {
    // Patient PRI-1: CT 2021, MR 2022, CT 2023, CT 2019 (the oldest CT: beyond the 2 most recent).
    // Patient PRI-2 (CT 2023) and PRI-1 of another issuer (CT 2023): other patients.
    const [ct2021, mr2022, ct2023, ct2019, other, otherIssuer] = await storeStudies(archive, [
      { patientId: 'PRI-1', date: '20210310', modality: 'CT' },
      { patientId: 'PRI-1', date: '20220310', modality: 'MR' },
      { patientId: 'PRI-1', date: '20230310', modality: 'CT' },
      { patientId: 'PRI-1', date: '20190310', modality: 'CT' },
      { patientId: 'PRI-2', date: '20230310', modality: 'CT' },
      { patientId: 'PRI-1', issuer: 'OTHER-HOSPITAL', date: '20230601', modality: 'CT' },
    ]);
    const all = [ct2021!, mr2022!, ct2023!, ct2019!, other!, otherIssuer!];
    await archive.waitIndexed(12);
    for (const s of all) await settled(archive, s);
    // Their own prefetches ran while everything was on hot: nothing was restored.
    expect((await archive.db.query(`SELECT count(*)::int AS n FROM priors_prefetch WHERE state = 'DONE'`)).rows[0].n).toBe(6);
    expect(await restoresOf(archive)).toEqual([]);
    for (const s of all) await moveStudy(archive, s, 'cold');

    const [fresh] = await storeStudies(archive, [{ patientId: 'PRI-1', date: '20240310', modality: 'CT' }]);
    await archive.waitIndexed(14);
    await settled(archive, fresh!);

    const prefetch = (await archive.db.query(`SELECT state, priors, restored FROM priors_prefetch WHERE study_iuid = $1`, [fresh])).rows[0];
    expect(prefetch).toEqual({ state: 'DONE', priors: [ct2023, ct2021], restored: [ct2023, ct2021] });
    const restores = await until('prefetched restores', archive, async () => {
      const r = await restoresOf(archive);
      return r.length === 2 && r.every((x) => x.state === 'COMPLETED') ? r : undefined;
    });
    expect(restores.map((r) => r.study_iuid).sort()).toEqual([ct2023, ct2021].sort());
    expect(restores.every((r) => r.requested_by === 'priors-prefetch')).toBe(true);

    for (const s of [ct2023!, ct2021!]) {
      const view = (await api<LocationsView>(archive, `/api/studies/${s}/locations`)).body;
      expect(view.tiers).toEqual({ cold: 2 }); // cold stays the copy of record
      expect(view.restored.instances).toBe(2);
    }
    for (const s of [mr2022!, ct2019!, other!, otherIssuer!]) {
      const view = (await api<LocationsView>(archive, `/api/studies/${s}/locations`)).body;
      expect(view.tiers).toEqual({ cold: 2 });
      expect(view.restored.instances, s).toBe(0);
    }

    // The prefetched prior is served at once, byte for byte; one not prefetched is not (VNA_RESTORE_WAIT_S=0).
    const served = await wadoStudyDigests(archive, ct2023!);
    expect(served.status).toBe(200);
    expect(served.digests).toEqual(expectedOf(ct2023!));
    expect((await wadoStudyDigests(archive, ct2021!)).digests).toEqual(expectedOf(ct2021!));
    expect((await wadoStudyDigests(archive, mr2022!)).status).toBe(503);

    // Audited once, with the rule and what it chose.
    const audit = (await api<{ total: number; items: Array<{ detail: Record<string, unknown> }> }>(
      archive, `/api/audit?type=PRIORS_PREFETCH&study=${fresh}`,
    )).body;
    expect(audit.total).toBe(1);
    expect(audit.items[0]!.detail).toMatchObject({
      patientId: 'PRI-1',
      issuer: '',
      rule: { count: 2, sameModality: true, modalities: ['CT'] },
      priors: [{ studyInstanceUid: ct2023, studyDate: '20230310' }, { studyInstanceUid: ct2021, studyDate: '20210310' }],
    });

    // More instances of the new study (another index batch) do not prefetch again.
    const more = await storeMore(archive, fresh!);
    await archive.waitIndexed(14 + more);
    await settled(archive, fresh!);
    expect((await archive.db.query(`SELECT count(*)::int AS n FROM priors_prefetch WHERE study_iuid = $1`, [fresh])).rows[0].n).toBe(1);
    // (The 503 above journaled a restore of mr2022, requested by the retrieval.)
    expect((await restoresOf(archive)).map((r) => [r.study_iuid, r.requested_by])).toEqual([
      ...restores.map((r) => [r.study_iuid, 'priors-prefetch']),
      [mr2022, 'retrieval'],
    ]);
    expect((await api<{ total: number }>(archive, `/api/audit?type=PRIORS_PREFETCH&study=${fresh}`)).body.total).toBe(1);
  });
});

/** Sends one more series (2 instances) of an existing study; returns how many instances were sent. */
async function storeMore(a: Archive, study: string): Promise<number> {
  const work = mkdtempSync(path.join(tmpdir(), 'vna-prefetch-more-'));
  const files = await generateStudies(work, [
    { patientId: 'PRI-1', patientName: 'Prior^PRI-1', studyUid: study, studyDate: '20240310', series: [{ seriesUid: uid(), modality: 'CT', instances: 2, rows: 32, cols: 32 }] },
  ]);
  const r = await run('storescu', ['-v', '+sd', '+r', ...a.dcmArgs(), work]);
  expect(storeResponses(r.stderr).ok, r.stderr).toBe(files.length);
  rmSync(work, { recursive: true, force: true });
  return files.length;
}

describe('priors prefetch off (the default)', () => {
  it('restores nothing when a new study of a patient with offline priors arrives', async () => {
    const archive = await Archive.start({ env: env({}) });
    started.push(archive);
    const [prior] = await storeStudies(archive, [{ patientId: 'OFF-1', date: '20230101', modality: 'CT' }]);
    await archive.waitIndexed(2);
    await settled(archive, prior!);
    await moveStudy(archive, prior!, 'cold');
    const [fresh] = await storeStudies(archive, [{ patientId: 'OFF-1', date: '20240101', modality: 'CT' }]);
    await archive.waitIndexed(4);
    await settled(archive, fresh!);
    expect((await archive.db.query(`SELECT count(*)::int AS n FROM priors_prefetch`)).rows[0].n).toBe(0);
    expect(await restoresOf(archive)).toEqual([]);
    expect((await api<LocationsView>(archive, `/api/studies/${prior}/locations`)).body.restored.instances).toBe(0);
  });
});
