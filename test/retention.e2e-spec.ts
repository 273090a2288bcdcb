/**
 * Retention end to end (issue 5): the real archive, studies spread over 15 years stored with
 * storescu, rules through the HTTP API, expiries computed by the background job, legal holds,
 * approved purges checked through QIDO-RS, C-FIND, WADO-RS and the storage directory, the deletion
 * certificate and the audit trail; and a purge killed with -9 that finishes after a restart.
 */
import { existsSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Archive, generateStudies, run, sleep, storeResponses, type StudySpec, uid } from './support/archive.js';

const ANY_DICOM = 'multipart/related; type="application/dicom"; transfer-syntax=*';
const CT = '1.2.840.10008.5.1.4.1.1.2';

type Json = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

function study(key: string, o: { birth: string; date: string; modality: string; description?: string; institution?: string; instances?: number; patientId?: string }): StudySpec {
  return {
    patientId: o.patientId ?? `PID-${key}`, patientName: `Patient^${key}`, birthDate: o.birth, studyUid: uid(), studyDate: o.date,
    description: o.description ?? `${o.modality} study ${key}`,
    series: [{ seriesUid: uid(), modality: o.modality, instances: o.instances ?? 2, institution: o.institution }],
  };
}

// Studies from 2010 to 2022 (the run date is 2026 or later; every expected expiry is either
// before 2026 or after 2028, so the expired set does not depend on the day the test runs).
const S = {
  A: study('A', { birth: '19600101', date: '20110315', modality: 'CT' }), // CT 10 y: 2021-03-15, expired
  B: study('B', { birth: '19700101', date: '20220601', modality: 'CT' }), // CT 10 y: 2032-06-01
  C: study('C', { birth: '20080615', date: '20120210', modality: 'CT' }), // child of 3: age 21 (2029-06-15) beats CT 10 y (2022-02-10)
  D: study('D', { birth: '19960920', date: '20130505', modality: 'MR', institution: 'Other Clinic' }), // 16: study + 7 y (2020-05-05) beats age 21 (2017-09-20)
  E: study('E', { birth: '19500505', date: '20140808', modality: 'MR', institution: 'General Hospital' }), // MR General 5 y: 2019-08-08, patient on hold
  F: study('F', { birth: '19800101', date: '20120101', modality: 'US' }), // no rule: never
  G: study('G', { birth: '19750101', date: '20150101', modality: 'CR', description: 'SCREENING CHEST' }), // review after 3 y: 2018-01-01
  H: study('H', { birth: '20040229', date: '20050101', modality: 'CT' }), // leap-day child: 21st birthday 2025-03-01
  I: study('I', { birth: '19550101', date: '20100101', modality: 'CT' }), // CT 10 y: 2020-01-01
};
type Key = keyof typeof S;
const ALL = Object.keys(S) as Key[];
const TOTAL = ALL.reduce((n, k) => n + S[k].series[0]!.instances, 0);

let archive: Archive;
const actor = { 'X-User': 'dr.retention' };

async function api(method: string, url: string, body?: unknown, headers: Record<string, string> = actor) {
  const r = await fetch(`${archive.http}${url}`, {
    method,
    headers: { ...(body !== undefined ? { 'Content-Type': 'application/json' } : {}), ...headers },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await r.text();
  let json: Json | null = null;
  try {
    json = text ? JSON.parse(text) : null;
  } catch {
    json = null;
  }
  return { status: r.status, body: json as Json, text };
}

async function qidoStudyUids(a: Archive): Promise<string[]> {
  const r = await fetch(`${a.http}/dicom-web/studies`, { headers: { Accept: 'application/dicom+json' } });
  const body = (await r.json()) as Array<Record<string, { Value?: string[] }>>;
  return body.map((d) => d['0020000D']!.Value![0]!).sort();
}

async function cfindStudyUids(a: Archive): Promise<string[]> {
  const r = await run('findscu', ['-v', '-S', '-k', 'QueryRetrieveLevel=STUDY', '-k', 'StudyInstanceUID', ...a.dcmArgs()]);
  expect(r.code, r.stderr).toBe(0);
  return [...(r.stderr + r.stdout).matchAll(/\(0020,000d\) UI \[([0-9.]+)/g)].map((m) => m[1]!).filter((u, i, all) => all.indexOf(u) === i).sort();
}

async function objectFiles(a: Archive, studyUid: string): Promise<string[]> {
  const r = await a.db.query(
    `SELECT l.object_key FROM location l JOIN instance i ON i.id = l.instance_fk WHERE i.study_iuid = $1`,
    [studyUid],
  );
  return r.rows.map((x: { object_key: string }) => path.join(a.dataDir, 'storage/hot', x.object_key));
}

/** The files of a study's locations on any filesystem tier (default tiers: storage/<tier id>). */
async function tierFiles(a: Archive, studyUid: string): Promise<string[]> {
  const r = await a.db.query(
    `SELECT l.storage_id, l.object_key FROM location l JOIN instance i ON i.id = l.instance_fk WHERE i.study_iuid = $1`,
    [studyUid],
  );
  return r.rows.map((x: { storage_id: string; object_key: string }) => path.join(a.dataDir, 'storage', x.storage_id, x.object_key));
}

async function waitFor<T>(what: string, f: () => Promise<T | undefined | null | false>, timeoutMs = 60_000): Promise<T> {
  const t0 = Date.now();
  for (;;) {
    const v = await f();
    if (v) return v;
    if (Date.now() - t0 > timeoutMs) throw new Error(`timed out waiting for ${what}`);
    await sleep(200);
  }
}

const uidsOf = (...keys: Key[]) => keys.map((k) => S[k].studyUid).sort();

describe('retention: rules, expiry, holds, purges, audit', () => {
  const rules: Record<string, Json> = {};
  const files: Partial<Record<Key, string[]>> = {};
  let purgeId = '';

  beforeAll(async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'vna-retention-'));
    await generateStudies(dir, ALL.map((k) => S[k]));
    // Batches made by hand here (the sweeper's own auto-purge batches have a test of their own).
    archive = await Archive.start({ env: { VNA_PURGE_MAX_PER_RUN: '3', VNA_RETENTION_INTERVAL_S: '2', VNA_AUTO_PURGE: 'false' } });
    const r = await run('storescu', ['-v', '+sd', '+r', ...archive.dcmArgs(), dir]);
    expect(storeResponses(r.stderr + r.stdout).ok, r.stderr).toBe(TOTAL);
    await archive.waitIndexed(TOTAL);
    for (const k of ALL) {
      files[k] = await objectFiles(archive, S[k].studyUid);
      expect(files[k]!.length).toBe(S[k].series[0]!.instances);
      for (const f of files[k]!) expect(existsSync(f)).toBe(true);
    }
  });
  afterAll(async () => {
    await archive?.stop();
  });

  it('refuses invalid rules with 400 naming the field, and changes without X-User', async () => {
    const good = { name: 'x', periods: [{ anchor: 'STUDY_DATE', years: 1 }], action: 'delete' };
    for (const [body, field] of [
      [{ ...good, periods: undefined }, 'periods'],
      [{ ...good, periods: [] }, 'periods'],
      [{ ...good, periods: [{ anchor: 'STUDY_DATE', years: -1 }] }, 'periods.0.years'],
      [{ ...good, periods: [{ anchor: 'TOMORROW', years: 1 }] }, 'anchor'],
      [{ ...good, periods: [{ anchor: 'STUDY_DATE', years: 0 }] }, 'years'],
      [{ ...good, action: 'burn' }, 'action'],
      [{ ...good, name: '' }, 'name'],
      [{ ...good, criteria: { minPatientAge: 18, maxPatientAge: 10 } }, 'maxPatientAge'],
      [{ ...good, criteria: { sopClassUids: ['1.2.abc'] } }, 'sopClassUids'],
      [{ ...good, criteria: { modalities: 'CT' } }, 'modalities'],
      [{ ...good, criteria: { colour: 'red' } }, 'colour'],
      [{ ...good, autoPurge: 'yes' }, 'autoPurge'],
    ] as const) {
      const r = await api('POST', '/api/retention/rules', body);
      expect(r.status, JSON.stringify(body)).toBe(400);
      expect(r.text, JSON.stringify(body)).toContain(field);
    }
    const noActor = await api('POST', '/api/retention/rules', good, {});
    expect(noActor.status).toBe(400);
    expect(noActor.text).toContain('X-User');
    expect((await api('GET', '/api/retention/rules')).body).toEqual([]);
  });

  it('creates rules; the background job computes each study’s expiry, longest retention winning', async () => {
    const create = async (key: string, body: Json) => {
      const r = await api('POST', '/api/retention/rules', body);
      expect(r.status, r.text).toBe(201);
      expect(r.body).toMatchObject({ version: 1, createdBy: 'dr.retention' });
      rules[key] = r.body;
    };
    await create('ct', { name: 'CT 10 years', criteria: { modalities: ['CT'] }, periods: [{ anchor: 'STUDY_DATE', years: 10 }], action: 'delete' });
    await create('pediatric', {
      name: 'Pediatric: until 21 and at least 7 years', criteria: { maxPatientAge: 18 },
      periods: [{ anchor: 'PATIENT_BIRTH', years: 21 }, { anchor: 'STUDY_DATE', years: 7 }], action: 'delete', autoPurge: true,
    });
    await create('mr', { name: 'MR General 5 years', criteria: { modalities: ['MR'], institutions: ['general hospital'] }, periods: [{ anchor: 'STUDY_DATE', years: 5 }], action: 'delete' });
    await create('screening', {
      name: 'Screening review', criteria: { studyDescription: 'screening*', sourceAes: ['TESTSCU'] },
      periods: [{ anchor: 'STUDY_DATE', years: 3 }], action: 'flag-for-review',
    });

    const expected: Record<Key, [string | null, string | null]> = {
      A: ['2021-03-15', 'ct'], B: ['2032-06-01', 'ct'], C: ['2029-06-15', 'pediatric'], D: ['2020-05-05', 'pediatric'],
      E: ['2019-08-08', 'mr'], F: [null, null], G: ['2018-01-01', 'screening'], H: ['2025-03-01', 'pediatric'], I: ['2020-01-01', 'ct'],
    };
    // Written by the retention job (no API call asks for it): wait for every study to be current.
    const rows = await waitFor('expiries', async () => {
      const r = await archive.db.query(
        `SELECT s.study_iuid, sr.expires_on::text AS expires_on, sr.rule_id::text AS rule_id, sr.rule_version FROM study s
           JOIN study_retention sr ON sr.study_fk = s.id
          WHERE sr.rules_revision = (SELECT max(revision) FROM retention_rule_version)`,
      );
      return r.rowCount === ALL.length && r.rows;
    });
    const byUid = new Map(rows.map((r: Json) => [r.study_iuid, r]));
    for (const k of ALL) {
      const [date, rule] = expected[k];
      expect(byUid.get(S[k].studyUid), k).toMatchObject({ expires_on: date, rule_id: rule ? rules[rule]!.id : null });
    }
  });

  it('explains a study’s retention: every rule, its end date, the winner', async () => {
    const r = await api('GET', `/api/studies/${S.C.studyUid}/retention`);
    expect(r.status, r.text).toBe(200);
    expect(r.body.facts.patientAgeAtStudy).toBe(3);
    expect(r.body.expiresOn).toBe('2029-06-15');
    expect(r.body.expired).toBe(false);
    expect(r.body.winner).toMatchObject({ ruleId: rules.pediatric!.id, version: 1, endsOn: '2029-06-15' });
    const byRule = Object.fromEntries(r.body.rules.map((e: Json) => [e.ruleId, e]));
    expect(byRule[rules.ct!.id]).toMatchObject({ matched: true, endsOn: '2022-02-10' });
    expect(byRule[rules.pediatric!.id].periods.map((p: Json) => p.until)).toEqual(['2029-06-15', '2019-02-10']);
    expect(byRule[rules.mr!.id]).toMatchObject({ matched: false, mismatch: 'modalities' });
    expect(r.body.stored).toMatchObject({ expiresOn: '2029-06-15', ruleId: rules.pediatric!.id, current: true });
    const never = await api('GET', `/api/studies/${S.F.studyUid}/retention`);
    expect(never.body).toMatchObject({ expiresOn: null, winner: null, expired: false });
    expect((await api('GET', `/api/studies/${uid()}/retention`)).status).toBe(404);
  });

  it('versions every rule change with who and when, and recomputes with the new version', async () => {
    const r = await api('PUT', `/api/retention/rules/${rules.mr!.id}`, {
      name: 'MR General 5 years (v2)', criteria: { modalities: ['MR'], institutions: ['General Hospital'] },
      periods: [{ anchor: 'STUDY_DATE', years: 5 }], action: 'delete',
    }, { 'X-User': 'dr.second' });
    expect(r.status, r.text).toBe(200);
    expect(r.body).toMatchObject({ version: 2, updatedBy: 'dr.second', createdBy: 'dr.retention' });
    const got = await api('GET', `/api/retention/rules/${rules.mr!.id}`);
    expect(got.body.history.map((h: Json) => [h.version, h.change, h.actor, h.name])).toEqual([
      [1, 'CREATED', 'dr.retention', 'MR General 5 years'],
      [2, 'UPDATED', 'dr.second', 'MR General 5 years (v2)'],
    ]);
    expect(got.body.history[0].definition.criteria.institutions).toEqual(['general hospital']);
    await waitFor('E recomputed with v2', async () => {
      const q = await archive.db.query(`SELECT rule_version FROM study_retention sr JOIN study s ON s.id = sr.study_fk WHERE s.study_iuid = $1`, [S.E.studyUid]);
      return q.rows[0]?.rule_version === 2;
    });
    expect((await api('PUT', `/api/retention/rules/999999`, { name: 'x', periods: [{ anchor: 'STUDY_DATE', years: 1 }], action: 'delete' })).status).toBe(404);
    // A rule deleted is kept as a version, and no longer applies.
    const tmp = await api('POST', '/api/retention/rules', { name: 'tmp', periods: [{ anchor: 'INGEST_DATE', years: 99 }], action: 'delete' });
    const del = await api('DELETE', `/api/retention/rules/${tmp.body.id}`);
    expect(del.body).toMatchObject({ deleted: true, version: 2 });
    expect((await api('GET', '/api/retention/rules')).body.map((x: Json) => x.id)).not.toContain(tmp.body.id);
    expect((await api('GET', `/api/retention/rules/${tmp.body.id}`)).body.history.map((h: Json) => h.change)).toEqual(['CREATED', 'DELETED']);
  });

  it('legal holds: validated, placed on a patient; the expired list leaves held studies out', async () => {
    for (const [body, field] of [
      [{ caseReference: 'C-1', reason: 'r' }, 'patientId'],
      [{ patientId: 'P', studyInstanceUid: S.A.studyUid, caseReference: 'C-1', reason: 'r' }, 'studyInstanceUid'],
      [{ studyInstanceUid: '1.2.x', caseReference: 'C-1', reason: 'r' }, 'studyInstanceUid'],
      [{ patientId: 'P', reason: 'r' }, 'caseReference'],
    ] as const) {
      const r = await api('POST', '/api/legal-holds', body);
      expect(r.status, JSON.stringify(body)).toBe(400);
      expect(r.text).toContain(field);
    }
    const hold = await api('POST', '/api/legal-holds', { patientId: S.E.patientId, caseReference: 'LIT-2026-17', reason: 'malpractice claim' });
    expect(hold.status, hold.text).toBe(201);
    expect(hold.body).toMatchObject({ placedBy: 'dr.retention', active: true, covers: [S.E.studyUid] });

    const expired = await api('GET', '/api/retention/expired');
    expect(expired.status, expired.text).toBe(200);
    expect(expired.body.items.map((s: Json) => s.studyInstanceUid).sort()).toEqual(uidsOf('A', 'D', 'G', 'H', 'I'));
    const g = expired.body.items.find((s: Json) => s.studyInstanceUid === S.G.studyUid);
    expect(g.rule).toMatchObject({ id: rules.screening!.id, action: 'flag-for-review' });
    const a = expired.body.items.find((s: Json) => s.studyInstanceUid === S.A.studyUid);
    expect(a).toMatchObject({ expiresOn: '2021-03-15', numInstances: 2, rule: { id: rules.ct!.id, version: 1, name: 'CT 10 years' } });
    expect(a.sizeBytes).toBeGreaterThan(0);
    const explained = await api('GET', `/api/studies/${S.E.studyUid}/retention`);
    expect(explained.body).toMatchObject({ expired: true, held: true });
  });

  it('a purge batch snapshots at most VNA_PURGE_MAX_PER_RUN delete studies and waits for approval', async () => {
    const r = await api('POST', '/api/retention/purges', {});
    expect(r.status, r.text).toBe(201);
    purgeId = r.body.id;
    // Delete-action studies by expiry: I (2020-01-01), D (2020-05-05), A (2021-03-15); H (2025) left for the next run.
    expect(r.body).toMatchObject({ state: 'AWAITING_APPROVAL', requiresApproval: true, maxPerRun: 3, leftOut: 1, createdBy: 'dr.retention' });
    expect(r.body.studies.map((s: Json) => s.studyInstanceUid)).toEqual([S.I.studyUid, S.D.studyUid, S.A.studyUid]);
    await sleep(1500);
    // Nothing is deleted before approval.
    expect(await qidoStudyUids(archive)).toEqual(uidsOf(...ALL));
    for (const f of files.I!) expect(existsSync(f)).toBe(true);
    // Already in an open batch: no longer offered.
    expect((await api('GET', '/api/retention/expired')).body.items.map((s: Json) => s.studyInstanceUid).sort()).toEqual(uidsOf('G', 'H'));
  });

  it('a hold placed after the batch was made still protects its study; approval purges the rest everywhere', async () => {
    const hold = await api('POST', '/api/legal-holds', { studyInstanceUid: S.A.studyUid, caseReference: 'REQ-9', reason: 'records request' });
    expect(hold.status).toBe(201);
    expect((await api('POST', `/api/retention/purges/${purgeId}/approve`, {}, {})).status).toBe(400); // who approves?
    const own = await api('POST', `/api/retention/purges/${purgeId}/approve`, {}); // its creator: four eyes
    expect(own.status).toBe(409);
    expect(own.text).toContain('another person must approve it');
    const ok = await api('POST', `/api/retention/purges/${purgeId}/approve`, {}, { 'X-User': 'dr.approver' });
    expect(ok.status, ok.text).toBe(200);
    expect(ok.body).toMatchObject({ approvedBy: 'dr.approver' });
    expect((await api('POST', `/api/retention/purges/${purgeId}/approve`, {}, { 'X-User': 'dr.approver' })).status).toBe(409);

    const report = await waitFor('purge completed', async () => {
      const r = await api('GET', `/api/retention/purges/${purgeId}`);
      return r.body.state === 'COMPLETED' && r.body;
    });
    const byUid = Object.fromEntries(report.studies.map((s: Json) => [s.studyInstanceUid, s]));
    expect(byUid[S.A.studyUid]).toMatchObject({ state: 'SKIPPED', note: 'a legal hold covers the study' });
    for (const k of ['I', 'D'] as const) {
      const s = byUid[S[k].studyUid];
      expect(s.state).toBe('DELETED');
      expect(s.instances).toHaveLength(2);
      for (const inst of s.instances) {
        expect(inst.sha256).toMatch(/^[0-9a-f]{64}$/);
        expect(inst.state).toBe('DONE');
        expect(inst.copies).toEqual([expect.objectContaining({ storageId: 'hot', sha256: inst.sha256, verifiedAbsent: true, status: 'OK' })]);
      }
    }
    expect(report.summary).toMatchObject({ studies: 3, deleted: 2, skipped: 1, pending: 0 });

    const remaining = uidsOf('A', 'B', 'C', 'E', 'F', 'G', 'H');
    expect(await qidoStudyUids(archive)).toEqual(remaining);
    expect(await cfindStudyUids(archive)).toEqual(remaining);
    for (const k of ['I', 'D'] as const) {
      const w = await fetch(`${archive.http}/dicom-web/studies/${S[k].studyUid}`, { headers: { Accept: ANY_DICOM } });
      expect(w.status).toBe(404);
      for (const f of files[k]!) expect(existsSync(f), f).toBe(false);
      const rows = await archive.db.query(`SELECT count(*)::int AS n FROM instance WHERE study_iuid = $1`, [S[k].studyUid]);
      expect(rows.rows[0].n).toBe(0);
    }
    const pats = await archive.db.query(`SELECT patient_id FROM patient WHERE patient_id = ANY($1)`, [[S.I.patientId, S.D.patientId]]);
    expect(pats.rowCount).toBe(0); // patients left without studies go too
    for (const k of ['A', 'E'] as const) {
      for (const f of files[k]!) expect(existsSync(f)).toBe(true);
      const w = await fetch(`${archive.http}/dicom-web/studies/${S[k].studyUid}`, { headers: { Accept: ANY_DICOM } });
      expect(w.status).toBe(200);
    }
  });

  it('a batch whose rules are all autoPurge runs without approval', async () => {
    const r = await api('POST', '/api/retention/purges', {});
    expect(r.status, r.text).toBe(201);
    expect(r.body).toMatchObject({ requiresApproval: false, approvedBy: 'auto-purge', leftOut: 0 });
    expect(r.body.studies.map((s: Json) => s.studyInstanceUid)).toEqual([S.H.studyUid]);
    await waitFor('auto purge', async () => (await api('GET', `/api/retention/purges/${r.body.id}`)).body.state === 'COMPLETED');
    expect(await qidoStudyUids(archive)).toEqual(uidsOf('A', 'B', 'C', 'E', 'F', 'G'));
    for (const f of files.H!) expect(existsSync(f)).toBe(false);
    // Only the flag-for-review study is left, and it is purged only when named.
    expect((await api('POST', '/api/retention/purges', {})).status).toBe(409);
    expect((await api('POST', '/api/retention/purges', { studyInstanceUids: [S.B.studyUid] })).text).toContain('studyInstanceUids');
  });

  it('releasing a hold is audited; the audit trail filters, pages and exports', async () => {
    const holds = await api('GET', '/api/legal-holds?active=true');
    const onA = holds.body.find((h: Json) => h.studyInstanceUid === S.A.studyUid);
    const rel = await fetch(`${archive.http}/api/legal-holds/${onA.id}?reason=request%20closed`, { method: 'DELETE', headers: { 'X-User': 'dr.legal' } });
    expect(rel.status).toBe(200);
    expect(await rel.json()).toMatchObject({ active: false, releasedBy: 'dr.legal', releaseReason: 'request closed' });
    expect((await api('DELETE', `/api/legal-holds/${onA.id}`)).status).toBe(409);

    const purged = await api('GET', '/api/audit?type=STUDY_PURGED');
    expect(purged.body.total).toBe(3);
    const i = purged.body.items.find((e: Json) => e.studyInstanceUid === S.I.studyUid);
    expect(i).toMatchObject({ actor: 'dr.approver', detail: { purgeId, rule: { id: rules.ct!.id, version: 1 }, approvedBy: 'dr.approver' } });
    expect(i.detail.instances).toHaveLength(2);
    expect(i.detail.instances[0].copies[0]).toMatchObject({ storageId: 'hot' });
    expect((await api('GET', `/api/audit?study=${S.A.studyUid}`)).body.items.map((e: Json) => e.type)).toEqual([
      'STUDY_RECEIVED', 'LEGAL_HOLD_PLACED', 'STUDY_PURGE_SKIPPED', 'LEGAL_HOLD_RELEASED',
    ]);
    expect((await api('GET', '/api/audit?actor=dr.second')).body.items.map((e: Json) => e.type)).toEqual(['RETENTION_RULE_UPDATED']);
    const page = await api('GET', '/api/audit?limit=2&offset=1');
    expect(page.body.items).toHaveLength(2);
    const future = await api('GET', '/api/audit?from=2999-01-01');
    expect(future.body).toMatchObject({ total: 0, items: [] });
    expect((await api('GET', '/api/audit?from=yesterday')).text).toContain('from');
    expect((await api('GET', '/api/audit?type=lower')).status).toBe(400);

    const nd = await fetch(`${archive.http}/api/audit?format=ndjson&type=STUDY_PURGED,LEGAL_HOLD_RELEASED`);
    expect(nd.headers.get('content-type')).toContain('application/x-ndjson');
    const lines = (await nd.text()).trim().split('\n').map((l) => JSON.parse(l));
    expect(lines.map((l) => l.type).sort()).toEqual(['LEGAL_HOLD_RELEASED', 'STUDY_PURGED', 'STUDY_PURGED', 'STUDY_PURGED']);
    const csv = await (await fetch(`${archive.http}/api/audit?format=csv&type=LEGAL_HOLD_PLACED`)).text();
    const rows = csv.trim().split('\r\n');
    expect(rows[0]).toBe('id,at,type,studyInstanceUid,sopInstanceUid,actor,detail');
    expect(rows).toHaveLength(3);
    // Append-only: the database refuses changes to the trail.
    await expect(archive.db.query(`UPDATE audit_event SET actor = 'someone else'`)).rejects.toThrow(/append-only/);
    await expect(archive.db.query(`DELETE FROM audit_event`)).rejects.toThrow(/append-only/);
  });

  it('a rejected batch deletes nothing and gives its studies back to the expired list', async () => {
    const batch = await api('POST', '/api/retention/purges', {});
    expect(batch.body.studies.map((s: Json) => s.studyInstanceUid)).toEqual([S.A.studyUid]); // its hold was released
    expect((await api('POST', `/api/retention/purges/${batch.body.id}/reject`, {}, { 'X-User': 'dr.approver' })).text).toContain('reason');
    const r = await api('POST', `/api/retention/purges/${batch.body.id}/reject`, { reason: 'patient transferred, keep' }, { 'X-User': 'dr.approver' });
    expect(r.status, r.text).toBe(200);
    expect(r.body).toMatchObject({ state: 'REJECTED', rejectedBy: 'dr.approver', rejectReason: 'patient transferred, keep' });
    expect(r.body.studies[0]).toMatchObject({ state: 'SKIPPED', note: 'batch rejected by dr.approver: patient transferred, keep' });
    expect((await api('POST', `/api/retention/purges/${batch.body.id}/approve`, {}, { 'X-User': 'dr.approver' })).status).toBe(409);
    await sleep(1000);
    expect(await qidoStudyUids(archive)).toContain(S.A.studyUid);
    for (const f of files.A!) expect(existsSync(f)).toBe(true);
    expect((await api('GET', '/api/retention/expired')).body.items.map((s: Json) => s.studyInstanceUid)).toContain(S.A.studyUid);
    expect((await api('GET', '/api/audit?type=PURGE_REJECTED')).body.items[0]).toMatchObject({ actor: 'dr.approver', detail: { purgeId: batch.body.id } });
  });
});

describe('retention: purges that survive kill -9 and reach every copy', () => {
  let a: Archive;
  afterAll(async () => {
    await a?.stop();
  });

  it('hides the study from its first step, resumes from the journal and deletes every object', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'vna-retention-crash-'));
    const big = study('K', { birth: '19500101', date: '20100101', modality: 'CT', instances: 30 });
    const keep = study('L', { birth: '19500101', date: '20240101', modality: 'CT' });
    await generateStudies(dir, [big, keep]);
    // The test-only pause makes the purge take ~9 s (300 ms per instance), long enough to kill it mid-way.
    const env = { VNA_PURGE_TEST_PAUSE_MS: '300', VNA_RETENTION_INTERVAL_S: '2' };
    a = await Archive.start({ env });
    archive = a;
    const r = await run('storescu', ['-v', '+sd', '+r', ...a.dcmArgs(), dir]);
    expect(storeResponses(r.stderr + r.stdout).ok, r.stderr).toBe(32);
    await a.waitIndexed(32);
    const bigFiles = await objectFiles(a, big.studyUid);
    expect(bigFiles).toHaveLength(30);

    expect((await api('POST', '/api/retention/rules', { name: 'CT 10 y', criteria: { sopClassUids: [CT] }, periods: [{ anchor: 'STUDY_DATE', years: 10 }], action: 'delete' })).status).toBe(201);
    const batch = await api('POST', '/api/retention/purges', {});
    expect(batch.status, batch.text).toBe(201);
    expect(batch.body.studies.map((s: Json) => s.studyInstanceUid)).toEqual([big.studyUid]);
    expect((await api('POST', `/api/retention/purges/${batch.body.id}/approve`, {}, { 'X-User': 'dr.approver' })).status).toBe(200);

    // Some of its objects are deleted, not all: kill the archive there.
    await waitFor('purge mid-way', async () => {
      const q = await a.db.query(`SELECT count(*) FILTER (WHERE state = 'OBJECTS_DELETED')::int AS n FROM retention_purge_instance`);
      return q.rows[0].n >= 5;
    });
    // Hidden from queries and retrieval while half deleted.
    expect(await qidoStudyUids(a)).toEqual([keep.studyUid]);
    expect(await cfindStudyUids(a)).toEqual([keep.studyUid]);
    expect((await fetch(`${a.http}/dicom-web/studies/${big.studyUid}`, { headers: { Accept: ANY_DICOM } })).status).toBe(404);
    await a.kill9();
    const mid = await a.db.query(`SELECT state, count(*)::int AS n FROM retention_purge_instance GROUP BY state`);
    const states = Object.fromEntries(mid.rows.map((x: Json) => [x.state, x.n]));
    expect(states.PENDING).toBeGreaterThan(0);
    expect(bigFiles.filter((f) => existsSync(f)).length).toBeGreaterThan(0);
    expect(bigFiles.filter((f) => existsSync(f)).length).toBeLessThan(30);
    await a.db.end();

    a = await Archive.start({ reuse: a, env });
    archive = a;
    // Still hidden right after the restart, before the purge resumes.
    expect(await qidoStudyUids(a)).toEqual([keep.studyUid]);
    const report = await waitFor('resumed purge completed', async () => {
      const x = await api('GET', `/api/retention/purges/${batch.body.id}`);
      return x.body.state === 'COMPLETED' && x.body;
    }, 120_000);
    expect(report.studies[0]).toMatchObject({ state: 'DELETED', numInstances: 30 });
    expect(report.studies[0].instances).toHaveLength(30);
    expect(report.studies[0].instances.every((i: Json) => i.state === 'DONE' && i.copies.length === 1)).toBe(true);
    for (const f of bigFiles) expect(existsSync(f), f).toBe(false);
    const left = await a.db.query(`SELECT (SELECT count(*) FROM instance WHERE study_iuid = $1)::int AS i,
      (SELECT count(*) FROM study WHERE study_iuid = $1)::int AS s`, [big.studyUid]);
    expect(left.rows[0]).toEqual({ i: 0, s: 0 });
    expect(await qidoStudyUids(a)).toEqual([keep.studyUid]);
    const audit = await api('GET', `/api/audit?type=STUDY_PURGED&study=${big.studyUid}`);
    expect(audit.body.total).toBe(1);
    expect(audit.body.items[0].detail.instances).toHaveLength(30);
  });

  it('a study that changed after its batch was made is skipped, not purged with what was not approved', async () => {
    const p = study('P', { birth: '19500101', date: '20070101', modality: 'CT', instances: 2 });
    const dir = mkdtempSync(path.join(tmpdir(), 'vna-retention-changed-'));
    await generateStudies(dir, [p]);
    const first = await run('storescu', ['-v', '+sd', '+r', ...a.dcmArgs(), dir]);
    expect(storeResponses(first.stderr + first.stdout).ok).toBe(2);
    await a.waitIndexed(4);
    const batch = await api('POST', '/api/retention/purges', {});
    expect(batch.body.studies.map((s: Json) => [s.studyInstanceUid, s.numInstances])).toEqual([[p.studyUid, 2]]);
    // One more instance of the study arrives before the approval.
    const more = { ...p, series: [{ seriesUid: uid(), modality: 'CT', instances: 1 }] };
    const dir2 = mkdtempSync(path.join(tmpdir(), 'vna-retention-changed-'));
    await generateStudies(dir2, [more]);
    const r = await run('storescu', ['-v', '+sd', '+r', ...a.dcmArgs(), dir2]);
    expect(storeResponses(r.stderr + r.stdout).ok).toBe(1);
    await a.waitIndexed(5);
    expect((await api('POST', `/api/retention/purges/${batch.body.id}/approve`, {}, { 'X-User': 'dr.approver' })).status).toBe(200);
    const report = await waitFor('batch done', async () => {
      const x = await api('GET', `/api/retention/purges/${batch.body.id}`);
      return x.body.state === 'COMPLETED' && x.body;
    });
    expect(report.studies[0].state).toBe('SKIPPED');
    expect(report.studies[0].note).toContain('changed since the batch was made (2 -> 3 instances');
    expect(await qidoStudyUids(a)).toContain(p.studyUid);
    for (const f of await objectFiles(a, p.studyUid)) expect(existsSync(f)).toBe(true);
    // It can be purged by a new batch, with the instances it has now.
    const next = await api('POST', '/api/retention/purges', {});
    expect(next.body.studies.map((s: Json) => [s.studyInstanceUid, s.numInstances])).toEqual([[p.studyUid, 3]]);
    expect((await api('POST', `/api/retention/purges/${next.body.id}/approve`, {}, { 'X-User': 'dr.approver' })).status).toBe(200);
    await waitFor('second batch done', async () => (await api('GET', `/api/retention/purges/${next.body.id}`)).body.state === 'COMPLETED');
    expect(await qidoStudyUids(a)).not.toContain(p.studyUid);
  });

  it('deletes every copy its location rows name (older versions too); a copy on a storage it does not know stops that study', async () => {
    // M: one instance sent twice with different bytes: the first copy is kept as REPLACED.
    const sop = uid();
    const m = study('M', { birth: '19500101', date: '20080101', modality: 'CT', instances: 1 });
    m.series[0]!.sopUids = [sop];
    const n = study('N', { birth: '19500101', date: '20090101', modality: 'CT', instances: 1 });
    for (const spec of [[m, n], [m]]) {
      const dir = mkdtempSync(path.join(tmpdir(), 'vna-retention-copies-'));
      await generateStudies(dir, spec);
      const r = await run('storescu', ['-v', '+sd', '+r', ...a.dcmArgs(), dir]);
      expect(storeResponses(r.stderr + r.stdout).ok, r.stderr).toBe(spec.length);
    }
    await a.waitIndexed(4); // with study L (2) kept from the test above
    // New studies get their expiry from the background job (the indexer asks for it), before any API call.
    const computed = await waitFor('expiry of new studies', async () => {
      const q = await a.db.query(
        `SELECT s.study_iuid, sr.expires_on::text AS e FROM study_retention sr JOIN study s ON s.id = sr.study_fk WHERE s.study_iuid = ANY($1)`,
        [[m.studyUid, n.studyUid]],
      );
      return q.rowCount === 2 && Object.fromEntries(q.rows.map((x: Json) => [x.study_iuid, x.e]));
    });
    expect(computed).toEqual({ [m.studyUid]: '2018-01-01', [n.studyUid]: '2019-01-01' });
    const mFiles = await objectFiles(a, m.studyUid);
    expect(mFiles).toHaveLength(2);
    const statuses = await a.db.query(`SELECT l.status FROM location l JOIN instance i ON i.id = l.instance_fk WHERE i.sop_iuid = $1 ORDER BY l.id`, [sop]);
    expect(statuses.rows.map((x: Json) => x.status)).toEqual(['REPLACED', 'OK']);
    // N also has a copy on a storage this process does not configure (another tier's, say).
    const [nFile] = await objectFiles(a, n.studyUid);
    await a.db.query(
      `INSERT INTO location (instance_fk, storage_id, object_key, size_bytes, sha256, transfer_syntax_uid, version, status)
       SELECT l.instance_fk, 'offsite', 'aa/bb/copy.dcm', l.size_bytes, l.sha256, l.transfer_syntax_uid, l.version, 'OK'
         FROM location l JOIN instance i ON i.id = l.instance_fk WHERE i.study_iuid = $1`,
      [n.studyUid],
    );

    const batch = await api('POST', '/api/retention/purges', {});
    expect(batch.body.studies.map((s: Json) => s.studyInstanceUid)).toEqual([m.studyUid, n.studyUid]);
    expect((await api('POST', `/api/retention/purges/${batch.body.id}/approve`, {}, { 'X-User': 'dr.approver' })).status).toBe(200);
    const report = await waitFor('M deleted', async () => {
      const x = await api('GET', `/api/retention/purges/${batch.body.id}`);
      return x.body.studies[0].state === 'DELETED' && x.body;
    });
    const copies = report.studies[0].instances[0].copies;
    expect(copies.map((c: Json) => [c.storageId, c.status, c.verifiedAbsent])).toEqual([['hot', 'REPLACED', true], ['hot', 'OK', true]]);
    for (const f of mFiles) expect(existsSync(f), f).toBe(false);

    // N: never reported deleted while a copy may remain; its rows stay and it stays hidden.
    await sleep(3000);
    const again = await api('GET', `/api/retention/purges/${batch.body.id}`);
    expect(again.body.state).toBe('RUNNING');
    expect(again.body.studies[1]).toMatchObject({ state: 'PURGING' });
    expect(again.body.studies[1].instances[0].state).toBe('PENDING');
    const rows = await a.db.query(`SELECT l.storage_id FROM location l JOIN instance i ON i.id = l.instance_fk WHERE i.study_iuid = $1 ORDER BY l.id`, [n.studyUid]);
    expect(rows.rows.map((x: Json) => x.storage_id)).toEqual(['hot', 'offsite']);
    expect(existsSync(nFile!)).toBe(false); // the copy it could reach is gone
    expect(await qidoStudyUids(a)).not.toContain(n.studyUid);
    expect((await api('GET', `/api/audit?type=STUDY_PURGED&study=${n.studyUid}`)).body.total).toBe(0);
    expect(a.logTail(400)).toMatch(/unknown storage id "offsite"/);
  });
});

describe('retention: auto-purge rules need nobody', () => {
  let b: Archive | undefined;
  afterAll(async () => {
    await b?.stop();
  });

  it('the sweeper puts the expired studies of an autoPurge rule in a batch and runs it, without a request or an approval; copies on every tier go', async () => {
    b = await Archive.start({ env: { VNA_RETENTION_INTERVAL_S: '1' } });
    archive = b;
    const old = study('Q', { birth: '19600101', date: '20050101', modality: 'CT', instances: 2 });
    const recent = study('R', { birth: '19600101', date: '20240101', modality: 'CT', instances: 1 });
    const dir = mkdtempSync(path.join(tmpdir(), 'vna-retention-auto-'));
    await generateStudies(dir, [old, recent]);
    const r = await run('storescu', ['-v', '+sd', '+r', ...b.dcmArgs(), dir]);
    expect(storeResponses(r.stderr + r.stdout).ok, r.stderr).toBe(3);
    await b.waitIndexed(3);
    // The old study lives on the warm tier by now (a tier move), the recent one on hot.
    const move = await api('POST', `/api/studies/${old.studyUid}/move`, { targetTier: 'warm' });
    expect(move.status, move.text).toBe(202);
    await waitFor('moved to warm', async () => (await api('GET', `/api/storage/moves/${move.body.moveId}`)).body.state === 'COMPLETED');
    const files = await tierFiles(b, old.studyUid);
    expect(files).toHaveLength(2);
    expect(files.every((f) => f.includes(`${path.sep}storage${path.sep}warm${path.sep}`) && existsSync(f))).toBe(true);

    const rule = await api('POST', '/api/retention/rules', {
      name: 'CT 10 years, auto', criteria: { modalities: ['CT'] }, periods: [{ anchor: 'STUDY_DATE', years: 10 }], action: 'delete', autoPurge: true,
    });
    expect(rule.status, rule.text).toBe(201);
    // Nobody asks: the sweeper makes the batch and runs it.
    // The study leaves QIDO when its purge starts, and its files go before the purge's last
    // transaction records STUDY_PURGED: wait for that record, the end of the purge.
    const purgedRecords = async () => (await api('GET', `/api/audit?type=STUDY_PURGED&study=${old.studyUid}`)).body.total as number;
    await waitFor('auto-purged', async () => (await qidoStudyUids(b!)).length === 1 && (await purgedRecords()) > 0, 60_000);
    expect(await qidoStudyUids(b)).toEqual([recent.studyUid]);
    for (const f of files) expect(existsSync(f), f).toBe(false);
    expect(await purgedRecords()).toBe(1);
    const created = await api('GET', '/api/audit?type=PURGE_CREATED');
    expect(created.body.items.map((e: Json) => e.actor)).toEqual(['retention-auto-purge']);
    expect((await fetch(`${b.http}/dicom-web/studies/${recent.studyUid}`, { headers: { Accept: ANY_DICOM } })).status).toBe(200);
  });
});
