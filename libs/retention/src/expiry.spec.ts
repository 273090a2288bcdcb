import { describe, expect, it } from 'vitest';
import {
  addPeriod,
  ageOn,
  Anchor,
  computeExpiry,
  isExpired,
  mismatch,
  parseDicomDate,
  type Rule,
  RuleAction,
  type StudyFacts,
  wildcardMatch,
} from './expiry.js';

const facts = (over: Partial<StudyFacts> = {}): StudyFacts => ({
  studyDate: '20150310',
  patientBirthDate: '19700101',
  studyDescription: 'CT CHEST W/O',
  ingestedAt: new Date('2024-05-02T10:00:00Z'),
  lastAccessAt: null,
  modalities: ['CT', 'SR'],
  sourceAes: ['PACS1'],
  institutions: ['General Hospital'],
  sopClassUids: ['1.2.840.10008.5.1.4.1.1.2'],
  ...over,
});
let nextId = 1;
const rule = (over: Partial<Rule> = {}): Rule => ({
  id: String(nextId++),
  version: 1,
  name: 'r',
  criteria: {},
  periods: [{ anchor: Anchor.StudyDate, years: 10 }],
  action: RuleAction.Delete,
  autoPurge: false,
  ...over,
});
const d = (s: string) => parseDicomDate(s)!;
const iso = (c: { y: number; m: number; d: number }) =>
  `${String(c.y).padStart(4, '0')}-${String(c.m).padStart(2, '0')}-${String(c.d).padStart(2, '0')}`;

describe('dates', () => {
  it('parses DICOM dates and refuses impossible ones', () => {
    expect(parseDicomDate('20240229')).toEqual({ y: 2024, m: 2, d: 29 });
    expect(parseDicomDate('20230229')).toBeNull();
    expect(parseDicomDate('20231301')).toBeNull();
    expect(parseDicomDate('')).toBeNull();
    expect(parseDicomDate('2023-01-01')).toBeNull();
  });

  it('adds years, months and days; a missing day rolls to the first of the next month (never earlier)', () => {
    expect(iso(addPeriod(d('20150310'), 7))).toBe('2022-03-10');
    expect(iso(addPeriod(d('20200229'), 1))).toBe('2021-03-01'); // leap day in a common year
    expect(iso(addPeriod(d('20200229'), 4))).toBe('2024-02-29'); // leap day in a leap year
    expect(iso(addPeriod(d('20230131'), 0, 1))).toBe('2023-03-01'); // no 31 February
    expect(iso(addPeriod(d('20231115'), 0, 3))).toBe('2024-02-15'); // month carry into the next year
    expect(iso(addPeriod(d('20231231'), 0, 0, 1))).toBe('2024-01-01');
    expect(iso(addPeriod(d('20240228'), 0, 0, 1))).toBe('2024-02-29');
    expect(iso(addPeriod(d('00500101'), 10))).toBe('0060-01-01'); // no 1900 mapping of small years
  });

  it('computes age with the same birthday convention', () => {
    expect(ageOn(d('20000101'), d('20201231'))).toBe(20);
    expect(ageOn(d('20000101'), d('20210101'))).toBe(21);
    // Born on 29 February: the birthday in a common year is 1 March.
    expect(ageOn(d('20000229'), d('20210228'))).toBe(20);
    expect(ageOn(d('20000229'), d('20210301'))).toBe(21);
    expect(ageOn(d('20000229'), d('20240229'))).toBe(24);
  });

  it('is expired from the expiry date on, never when there is none', () => {
    expect(isExpired('2024-01-01', '2023-12-31')).toBe(false);
    expect(isExpired('2024-01-01', '2024-01-01')).toBe(true);
    expect(isExpired(null, '9999-12-31')).toBe(false);
  });
});

describe('rule matching', () => {
  it('matches the AND of present criteria, lists by any value', () => {
    expect(mismatch({}, facts())).toBeNull();
    expect(mismatch({ modalities: ['mr', 'ct'] }, facts())).toBeNull(); // case-insensitive, any of
    expect(mismatch({ modalities: ['MR'] }, facts())).toBe('modalities');
    expect(mismatch({ sourceAes: ['PACS1'] }, facts())).toBeNull();
    expect(mismatch({ sourceAes: ['pacs1'] }, facts())).toBe('sourceAes'); // AE titles are case-sensitive
    expect(mismatch({ institutions: ['general hospital'] }, facts())).toBeNull();
    expect(mismatch({ institutions: ['Other'] }, facts())).toBe('institutions');
    expect(mismatch({ sopClassUids: ['1.2.840.10008.5.1.4.1.1.2'] }, facts())).toBeNull();
    expect(mismatch({ sopClassUids: ['1.2.840.10008.5.1.4.1.1.4'] }, facts())).toBe('sopClassUids');
    expect(mismatch({ modalities: ['CT'], institutions: ['Other'] }, facts())).toBe('institutions');
  });

  it('matches study description wildcards', () => {
    expect(wildcardMatch('ct*', 'CT CHEST W/O')).toBe(true);
    expect(wildcardMatch('*CHEST*', 'CT CHEST W/O')).toBe(true);
    expect(wildcardMatch('C? CHEST*', 'CT CHEST W/O')).toBe(true);
    expect(wildcardMatch('CHEST', 'CT CHEST W/O')).toBe(false); // whole value
    expect(wildcardMatch('CT (CHEST)*', 'CT (CHEST) 2')).toBe(true); // regex characters are literal
    expect(wildcardMatch('CT.*', 'CTX')).toBe(false);
    expect(mismatch({ studyDescription: 'MR*' }, facts())).toBe('studyDescription');
  });

  it('matches patient age at the study date: min <= age < max; unknown age never matches', () => {
    const child = facts({ patientBirthDate: '20100310', studyDate: '20150309' }); // 4 years, 364 days
    expect(mismatch({ maxPatientAge: 5 }, child)).toBeNull();
    expect(mismatch({ maxPatientAge: 5 }, facts({ patientBirthDate: '20100310', studyDate: '20150310' }))).toBe('maxPatientAge');
    expect(mismatch({ minPatientAge: 5 }, child)).toBe('minPatientAge');
    expect(mismatch({ minPatientAge: 18 }, facts())).toBeNull();
    expect(mismatch({ maxPatientAge: 18 }, facts({ patientBirthDate: '' }))).toBe('maxPatientAge');
    expect(mismatch({ minPatientAge: 0 }, facts({ studyDate: '' }))).toBe('minPatientAge');
  });
});

describe('expiry', () => {
  it('anchors: study date, ingest date, last access (ingest when never accessed), birth date', () => {
    const at = (anchor: Anchor, f = facts()) => computeExpiry([rule({ periods: [{ anchor, years: 5, months: 1, days: 2 }] })], f).expiresOn;
    expect(at(Anchor.StudyDate)).toBe('2020-04-12');
    expect(at(Anchor.IngestDate)).toBe('2029-06-04');
    expect(at(Anchor.LastAccess)).toBe('2029-06-04');
    expect(at(Anchor.LastAccess, facts({ lastAccessAt: new Date('2025-12-31T23:59:59Z') }))).toBe('2031-02-02');
    expect(at(Anchor.PatientBirth)).toBe('1975-02-03');
  });

  it('pediatric: until the patient is 21 and at least 7 years after the study — the later end wins', () => {
    const pediatric = rule({
      criteria: { maxPatientAge: 18 },
      periods: [{ anchor: Anchor.PatientBirth, years: 21 }, { anchor: Anchor.StudyDate, years: 7 }],
    });
    // Study at age 2: the 21st birthday is later than study + 7 years.
    expect(computeExpiry([pediatric], facts({ patientBirthDate: '20080615', studyDate: '20100101' })).expiresOn).toBe('2029-06-15');
    // Study at age 16: study + 7 years is later than the 21st birthday.
    expect(computeExpiry([pediatric], facts({ patientBirthDate: '19990615', studyDate: '20150801' })).expiresOn).toBe('2022-08-01');
    // Born on a leap day: the 21st birthday in a common year is 1 March.
    expect(computeExpiry([pediatric], facts({ patientBirthDate: '20040229', studyDate: '20050101' })).expiresOn).toBe('2025-03-01');
    // An adult does not match the pediatric rule.
    expect(computeExpiry([pediatric], facts()).expiresOn).toBeNull();
  });

  it('overlapping rules: the longest retention wins, and the winner is named', () => {
    const short = rule({ name: 'short', periods: [{ anchor: Anchor.StudyDate, years: 5 }] });
    const long = rule({ name: 'long', criteria: { modalities: ['CT'] }, periods: [{ anchor: Anchor.StudyDate, years: 10 }] });
    const other = rule({ name: 'mr', criteria: { modalities: ['MR'] }, periods: [{ anchor: Anchor.StudyDate, years: 30 }] });
    const e = computeExpiry([short, long, other], facts());
    expect(e.expiresOn).toBe('2025-03-10');
    expect(e.winner?.name).toBe('long');
    expect(e.evaluations.map((x) => [x.name, x.matched, x.endsOn])).toEqual([
      ['short', true, '2020-03-10'],
      ['long', true, '2025-03-10'],
      ['mr', false, null],
    ]);
    expect(e.evaluations[2]!.mismatch).toBe('modalities');
  });

  it('no matching rule: never expires', () => {
    const e = computeExpiry([rule({ criteria: { modalities: ['MR'] } })], facts());
    expect(e).toMatchObject({ expiresOn: null, winner: null });
    expect(computeExpiry([], facts()).expiresOn).toBeNull();
  });

  it('an unknown anchor keeps the study indefinitely and beats any finite rule', () => {
    const byStudy = rule({ name: 'by-study', periods: [{ anchor: Anchor.StudyDate, years: 1 }] });
    const byBirth = rule({ name: 'by-birth', periods: [{ anchor: Anchor.PatientBirth, years: 1 }] });
    const e = computeExpiry([byStudy, byBirth], facts({ patientBirthDate: '' }));
    expect(e.expiresOn).toBeNull();
    expect(e.winner?.name).toBe('by-birth');
    expect(e.winner?.periods[0]).toMatchObject({ from: null, until: null });
  });

  it('on a tie, flag-for-review beats delete; otherwise the first rule keeps it', () => {
    const del = rule({ name: 'del', action: RuleAction.Delete });
    const review = rule({ name: 'review', action: RuleAction.FlagForReview });
    const del2 = rule({ name: 'del2', action: RuleAction.Delete });
    expect(computeExpiry([del, review], facts()).winner?.name).toBe('review');
    expect(computeExpiry([del, del2], facts()).winner?.name).toBe('del');
  });
});
