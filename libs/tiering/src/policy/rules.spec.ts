import { describe, expect, it } from 'vitest';
import { ageInYears, firstMatch, type LifecycleRule, matches, parseDicomDate, planMoves, type StudyFacts } from './rules.js';

const now = new Date('2026-12-01T00:00:00Z');
const daysAgo = (n: number) => new Date(now.getTime() - n * 86_400_000);
const study = (over: Partial<StudyFacts> = {}): StudyFacts => ({
  studyIuid: '1.2.3',
  modalities: ['CT', 'SR'],
  sourceAes: ['CT1'],
  institutions: ['General Hospital'],
  studyDate: '20240101',
  patientBirthDate: '19500615',
  createdAt: daysAgo(400),
  lastAccessAt: daysAgo(100),
  sizeBytes: 2e9,
  bytesByTier: { hot: 2e9 },
  ...over,
});

describe('lifecycle rule matching', () => {
  it('an empty match holds for every study', () => {
    expect(matches({}, study(), now)).toBe(true);
  });

  it('lists match any of their values; all conditions must hold (AND)', () => {
    expect(matches({ modalities: ['MR', 'CT'] }, study(), now)).toBe(true);
    expect(matches({ modalities: ['MR'] }, study(), now)).toBe(false);
    expect(matches({ sourceAes: ['CT1'], institutions: ['General Hospital'] }, study(), now)).toBe(true);
    expect(matches({ sourceAes: ['CT1'], institutions: ['Other'] }, study(), now)).toBe(false);
  });

  it('ages: study date, days since ingest and since last access (never accessed: since ingest)', () => {
    expect(matches({ minStudyAgeDays: 1070 }, study(), now)).toBe(false);
    expect(matches({ minStudyAgeDays: 1060 }, study(), now)).toBe(true);
    expect(matches({ minStudyAgeDays: 300 }, study(), now)).toBe(true);
    expect(matches({ minStudyAgeDays: 1 }, study({ studyDate: '' }), now)).toBe(false);
    expect(matches({ minDaysSinceIngest: 400 }, study(), now)).toBe(true);
    expect(matches({ minDaysSinceIngest: 401 }, study(), now)).toBe(false);
    expect(matches({ minDaysSinceLastAccess: 100 }, study(), now)).toBe(true);
    expect(matches({ minDaysSinceLastAccess: 101 }, study(), now)).toBe(false);
    expect(matches({ minDaysSinceLastAccess: 300 }, study({ lastAccessAt: null }), now)).toBe(true);
  });

  it('patient age at the study date, and study size bounds', () => {
    expect(ageInYears(parseDicomDate('19500615')!, parseDicomDate('20240101')!)).toBe(73);
    expect(ageInYears(parseDicomDate('19500101')!, parseDicomDate('20240101')!)).toBe(74);
    expect(matches({ minPatientAgeYears: 73, maxPatientAgeYears: 73 }, study(), now)).toBe(true);
    expect(matches({ maxPatientAgeYears: 18 }, study(), now)).toBe(false);
    expect(matches({ minPatientAgeYears: 1 }, study({ patientBirthDate: '' }), now)).toBe(false);
    expect(matches({ minStudyBytes: 1e9, maxStudyBytes: 3e9 }, study(), now)).toBe(true);
    expect(matches({ maxStudyBytes: 1e9 }, study(), now)).toBe(false);
    expect(parseDicomDate('20240230')).toBeNull();
  });

  it('the first matching rule wins', () => {
    const rules: LifecycleRule[] = [
      { name: 'mr-cold', match: { modalities: ['MR'] }, targetTier: 'cold' },
      { name: 'old-warm', match: { minDaysSinceIngest: 30 }, targetTier: 'warm' },
      { name: 'all-cold', match: {}, targetTier: 'cold' },
    ];
    expect(firstMatch(rules, study(), now)?.name).toBe('old-warm');
    expect(firstMatch(rules, study({ modalities: ['MR'] }), now)?.name).toBe('mr-cold');
    expect(firstMatch([], study(), now)).toBeUndefined();
  });
});

describe('planMoves', () => {
  const prices = [
    { id: 'hot', pricePerGbMonth: 0.1 },
    { id: 'warm', pricePerGbMonth: 0.02 },
    { id: 'cold', pricePerGbMonth: 0.004 },
  ];

  it('plans moves per study with bytes, and totals and monthly cost per tier before and after', () => {
    const rules: LifecycleRule[] = [{ name: 'ct-warm', match: { modalities: ['CT'] }, targetTier: 'warm' }];
    const plan = planMoves(
      rules,
      [
        study({ studyIuid: 'a', bytesByTier: { hot: 3e9 } }),
        study({ studyIuid: 'b', bytesByTier: { warm: 1e9, hot: 1e9 } }), // spread: only the hot part moves
        study({ studyIuid: 'c', bytesByTier: { warm: 2e9 } }), // already there
        study({ studyIuid: 'd', modalities: ['MR'], bytesByTier: { hot: 5e9 } }), // no rule
      ],
      prices,
      now,
    );
    expect(plan.moves).toEqual([
      { studyIuid: 'a', rule: 'ct-warm', from: ['hot'], to: 'warm', bytes: 3e9 },
      { studyIuid: 'b', rule: 'ct-warm', from: ['hot', 'warm'], to: 'warm', bytes: 1e9 },
    ]);
    expect(plan.tiers).toEqual([
      { tier: 'hot', bytesBefore: 9e9, bytesAfter: 5e9, monthlyCostBefore: 0.9, monthlyCostAfter: 0.5 },
      { tier: 'warm', bytesBefore: 3e9, bytesAfter: 7e9, monthlyCostBefore: 0.06, monthlyCostAfter: 0.14 },
      { tier: 'cold', bytesBefore: 0, bytesAfter: 0, monthlyCostBefore: 0, monthlyCostAfter: 0 },
    ]);
    expect(plan.totals).toEqual({ bytesMoved: 4e9, monthlyCostBefore: 0.96, monthlyCostAfter: 0.64 });
  });
});
