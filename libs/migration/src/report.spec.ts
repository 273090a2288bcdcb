import { describe, expect, it } from 'vitest';
import { csvField, figures, type LedgerRow, reportCsv } from './report.js';

const row = (over: Partial<LedgerRow>): LedgerRow => ({
  id: '1', seq: 1, studyIuid: '1.2.3', filePath: '', studyDate: '20240101', patientId: 'P1', accessionNumber: 'A1', state: 'pending',
  expectedInstances: null, migratedInstances: 0, skippedInstances: 0, failedInstances: 0, bytes: 0, attempts: 0,
  lastError: null, nextAttemptAt: null, startedAt: null, finishedAt: null, ...over,
});

describe('figures', () => {
  it('sums studies by state and instances, and the rate over the migrated span', () => {
    const t = (s: number) => new Date(Date.UTC(2026, 0, 1, 0, 0, s));
    const f = figures([
      row({ state: 'done', expectedInstances: 10, migratedInstances: 10, bytes: 1000, startedAt: t(0), finishedAt: t(5) }),
      row({ state: 'skipped', expectedInstances: 4, skippedInstances: 4, startedAt: t(5), finishedAt: t(6) }),
      row({ state: 'failed', expectedInstances: 6, migratedInstances: 4, failedInstances: 2, bytes: 400, startedAt: t(6), finishedAt: t(10) }),
      row({ state: 'pending' }),
      row({ state: 'retrieving', expectedInstances: 3, startedAt: t(9) }),
    ], t(20));
    expect(f.studies).toEqual({ expected: 5, pending: 1, inProgress: 1, done: 1, skipped: 1, failed: 1 });
    // no activity given: nothing in progress; the open rows' 3 expected instances remain
    expect(f.instances).toEqual({ expected: 23, migrated: 14, skipped: 4, failed: 2, inProgress: 0, remaining: 3 });
    expect(f.bytes).toBe(1400);
    // one study still open: the span runs until now (20 s)
    expect(f.instancesPerSecond).toBe(0.7);
    expect(f.bytesPerSecond).toBe(70);
  });

  it('no rate before anything started', () => {
    const f = figures([row({})]);
    expect(f.instancesPerSecond).toBeNull();
    expect(f.recent.instancesPerSecond).toBeNull();
    expect(f.etaSeconds).toBeNull();
  });
});

describe('figures: elapsed time, recent rate, ETA', () => {
  const t = (s: number) => new Date(Date.UTC(2026, 0, 1, 0, 0, s));
  const rows = [
    row({ state: 'done', expectedInstances: 100, migratedInstances: 100, bytes: 50_000_000, startedAt: t(10), finishedAt: t(70) }),
    row({ state: 'retrieving', expectedInstances: 200, startedAt: t(70) }),
    row({ state: 'pending', expectedInstances: 300 }),
  ];

  it('rate over the last window from the activity; ETA = remaining / that rate; elapsed from creation', () => {
    // 120 instances (60 MB) in the last 60 s; 40 of the open study's instances are in the archive already
    const activity = { until: t(130), firstStartedAt: t(10), windowInstances: 120, windowBytes: 60_000_000, inProgressInstances: 40 };
    const f = figures(rows, t(130), { state: 'RUNNING', createdAt: t(0), finishedAt: null }, activity);
    expect(f.elapsedSeconds).toBe(130);
    expect(f.recent).toEqual({ windowSeconds: 60, instancesPerSecond: 2, bytesPerSecond: 1_000_000 });
    expect(f.instances.inProgress).toBe(40);
    // open rows expect 200 + 300; 40 are here
    expect(f.instances.remaining).toBe(460);
    expect(f.etaSeconds).toBe(230);
  });

  it('a young job: the window is the time since the first study started (at least 1 s)', () => {
    const activity = { until: t(20), firstStartedAt: t(10), windowInstances: 50, windowBytes: 5_000, inProgressInstances: 0 };
    const f = figures(rows, t(20), { state: 'RUNNING', createdAt: t(0), finishedAt: null }, activity);
    expect(f.recent.instancesPerSecond).toBe(5);
    expect(f.recent.bytesPerSecond).toBe(500);
    expect(f.etaSeconds).toBe(100);
    const first = figures(rows, t(10), { state: 'RUNNING', createdAt: t(0), finishedAt: null }, { ...activity, until: t(10), windowInstances: 3 });
    expect(first.recent.instancesPerSecond).toBe(3);
  });

  it('no ETA when nothing moved recently, when an open study has no expected count, or once the job ended', () => {
    const idle = { until: t(300), firstStartedAt: t(10), windowInstances: 0, windowBytes: 0, inProgressInstances: 0 };
    const paused = figures(rows, t(300), { state: 'RUNNING', createdAt: t(0), finishedAt: null }, idle);
    expect(paused.recent.instancesPerSecond).toBe(0);
    expect(paused.etaSeconds).toBeNull();
    const busy = { ...idle, windowInstances: 60 };
    const unknown = figures([...rows, row({ state: 'pending', expectedInstances: null })], t(300), { state: 'RUNNING', createdAt: t(0), finishedAt: null }, busy);
    expect(unknown.etaSeconds).toBeNull();
    const canceled = figures(rows, t(300), { state: 'CANCELED', createdAt: t(0), finishedAt: t(200) }, { ...busy, until: t(200) });
    expect(canceled.etaSeconds).toBeNull();
    // elapsed stops at the finish
    expect(canceled.elapsedSeconds).toBe(200);
  });

  it('a finished job: elapsed until its finish, ETA null; nothing remains', () => {
    const done = [row({ state: 'done', expectedInstances: 10, migratedInstances: 10, bytes: 100, startedAt: t(1), finishedAt: t(6) })];
    const activity = { until: t(6), firstStartedAt: t(1), windowInstances: 10, windowBytes: 100, inProgressInstances: 0 };
    const f = figures(done, t(6), { state: 'COMPLETED', createdAt: t(0), finishedAt: t(6) }, activity);
    expect(f.elapsedSeconds).toBe(6);
    expect(f.recent.instancesPerSecond).toBe(2);
    expect(f.instances.remaining).toBe(0);
    expect(f.etaSeconds).toBeNull();
  });

  it('running with nothing left (the last study verifying): ETA 0', () => {
    const last = [row({ state: 'verifying', expectedInstances: 10, startedAt: t(1) })];
    const activity = { until: t(6), firstStartedAt: t(1), windowInstances: 10, windowBytes: 100, inProgressInstances: 10 };
    expect(figures(last, t(6), { state: 'RUNNING', createdAt: t(0), finishedAt: null }, activity).etaSeconds).toBe(0);
  });
});

describe('CSV report', () => {
  it('one header and one line per study, CRLF, quoted where needed', () => {
    const csv = reportCsv([
      row({ seq: 1, state: 'done', expectedInstances: 2, migratedInstances: 2, bytes: 10, attempts: 1, startedAt: new Date('2026-01-01T00:00:00Z'), finishedAt: new Date('2026-01-01T00:00:01Z') }),
      row({ seq: 2, studyIuid: '1.2.4', state: 'failed', lastError: 'missing: 1.2, "x"\nmore', attempts: 5 }),
    ]);
    const lines = csv.split('\r\n');
    expect(lines[0]).toBe('seq,study_instance_uid,file_path,study_date,patient_id,accession_number,state,expected_instances,migrated_instances,skipped_instances,failed_instances,bytes,attempts,started_at,finished_at,last_error');
    expect(lines[1]).toBe('1,1.2.3,,20240101,P1,A1,done,2,2,0,0,10,1,2026-01-01T00:00:00.000Z,2026-01-01T00:00:01.000Z,');
    expect(csv).toContain('2,1.2.4,,20240101,P1,A1,failed,,0,0,0,0,5,,,"missing: 1.2, ""x""\nmore"');
    expect(csv.endsWith('\r\n')).toBe(true);
  });

  it('neutralises spreadsheet formulas', () => {
    expect(csvField('=HYPERLINK("x")')).toBe(`"'=HYPERLINK(""x"")"`);
    expect(csvField('-5')).toBe("'-5");
    expect(csvField(null)).toBe('');
  });
});
