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
    expect(f.instances).toEqual({ expected: 23, migrated: 14, skipped: 4, failed: 2 });
    expect(f.bytes).toBe(1400);
    // one study still open: the span runs until now (20 s)
    expect(f.instancesPerSecond).toBe(0.7);
    expect(f.bytesPerSecond).toBe(70);
  });

  it('no rate before anything started', () => {
    expect(figures([row({})]).instancesPerSecond).toBeNull();
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
