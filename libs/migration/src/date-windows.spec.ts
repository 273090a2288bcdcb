import type { DicomDict } from '#vna/dimse';
import { describe, expect, it } from 'vitest';
import { type EnumerationProgress, enumerateRange, enumerateStudies, type FindAnswer, splitRange, type StudyFinder } from './date-windows.js';
import { type SourceStudy, studyQueries, Tags } from './scope.js';

const study = (uid: string, date: string): SourceStudy => ({
  studyIuid: uid, studyDate: date, studyTime: '', patientId: '', accessionNumber: '', modalities: [], numInstances: null,
});

/**
 * A source holding these studies that answers DA matching like PS3.4 (a range never matches an
 * empty date), stops after `cap` + 1 answers, and cuts every answer at its own `sourceLimit`.
 */
class FakeSource implements StudyFinder {
  asked: Array<{ date: string; cap: number | null }> = [];
  constructor(
    private readonly studies: SourceStudy[],
    private readonly sourceLimit = Infinity,
  ) {}

  /** Whether each query came with a `keep` filter. */
  keeps: boolean[] = [];

  async find(q: DicomDict, cap: number | null, keep?: (s: SourceStudy) => boolean): Promise<FindAnswer> {
    const date = (q[Tags.StudyDate]?.Value?.[0] as string | undefined) ?? '';
    this.asked.push({ date, cap });
    this.keeps.push(keep !== undefined);
    const [from, to] = date.includes('-') ? date.split('-') : [date, date];
    const matching = this.studies.filter((s) => !date || (s.studyDate !== '' && s.studyDate >= from! && s.studyDate <= to!));
    const given = matching.slice(0, this.sourceLimit);
    const cut = given.length < matching.length;
    if (cap !== null && given.length > cap) return { studies: given.slice(0, cap + 1), truncated: true };
    return { studies: keep ? given.filter(keep) : given, truncated: cut };
  }
}

const uids = (r: { studies: SourceStudy[] }) => [...new Set(r.studies.map((s) => s.studyIuid))].sort();

describe('splitRange', () => {
  it('halves a range by days (across months and years), the middle day in the first half', () => {
    expect(splitRange({ from: '20240101', to: '20240102' })).toEqual([{ from: '20240101', to: '20240101' }, { from: '20240102', to: '20240102' }]);
    expect(splitRange({ from: '20231230', to: '20240104' })).toEqual([{ from: '20231230', to: '20240101' }, { from: '20240102', to: '20240104' }]);
    expect(splitRange({ from: '20240228', to: '20240301' })).toEqual([{ from: '20240228', to: '20240229' }, { from: '20240301', to: '20240301' }]);
    expect(() => splitRange({ from: '20240101', to: '20240101' })).toThrow();
  });
});

describe('enumerateRange', () => {
  it('an answer under the cap is one query; over it, the window splits until each half fits', async () => {
    const studies = ['20240101', '20240102', '20240105', '20240110', '20240131'].map((d, i) => study(`1.${i}`, d));
    const small = new FakeSource(studies);
    const one = await enumerateRange({ from: '20240101', to: '20240131' }, (r, capped) => small.find({ [Tags.StudyDate]: { vr: 'DA', Value: [`${r.from}-${r.to}`] } }, capped ? 10 : null));
    expect(one).toMatchObject({ queries: 1, splits: 0, warnings: [] });
    expect(uids(one)).toEqual(studies.map((s) => s.studyIuid));

    const src = new FakeSource(studies);
    const r = await enumerateRange({ from: '20240101', to: '20240131' }, (w, capped) => src.find({ [Tags.StudyDate]: { vr: 'DA', Value: [`${w.from}-${w.to}`] } }, capped ? 2 : null));
    expect(uids(r)).toEqual(studies.map((s) => s.studyIuid));
    expect(r.splits).toBeGreaterThan(0);
    expect(r.warnings).toEqual([]);
    // Every window answered under the cap covers the root exactly once, in date order.
    const fitted = src.asked.filter((_, i) => i > 0);
    expect(fitted[0]!.date.startsWith('20240101')).toBe(true);
  });

  it('a single day over the cap is asked again without it; one the source still cuts short is a warning', async () => {
    const sameDay = Array.from({ length: 5 }, (_, i) => study(`2.${i}`, '20240315'));
    const src = new FakeSource([...sameDay, study('2.9', '20240316')]);
    const ask = (w: { from: string; to: string }, capped: boolean) => src.find({ [Tags.StudyDate]: { vr: 'DA', Value: [w.from === w.to ? w.from : `${w.from}-${w.to}`] } }, capped ? 2 : null);
    const r = await enumerateRange({ from: '20240301', to: '20240331' }, ask);
    expect(uids(r)).toEqual([...sameDay.map((s) => s.studyIuid), '2.9']);
    expect(src.asked.filter((a) => a.cap === null).map((a) => a.date)).toEqual(['20240315']);
    expect(r.warnings).toEqual([]);

    const limited = new FakeSource(sameDay, 3);
    const w = await enumerateRange({ from: '20240301', to: '20240331' }, (x, capped) =>
      limited.find({ [Tags.StudyDate]: { vr: 'DA', Value: [x.from === x.to ? x.from : `${x.from}-${x.to}`] } }, capped ? 10 : null));
    expect(uids(w)).toHaveLength(3);
    expect(w.warnings).toHaveLength(1);
    expect(w.warnings[0]).toContain('20240315');
  });

  it('the number of queries grows with the log of the range, not its length', async () => {
    const studies = Array.from({ length: 40 }, (_, i) => study(`3.${i}`, `20${String(10 + (i % 15)).padStart(2, '0')}0${1 + (i % 9)}15`));
    const src = new FakeSource(studies);
    const r = await enumerateRange({ from: '19000101', to: '99991231' }, (w, capped) => src.find({ [Tags.StudyDate]: { vr: 'DA', Value: [`${w.from}-${w.to}`] } }, capped ? 5 : null));
    expect(uids(r)).toEqual(studies.map((s) => s.studyIuid).sort());
    expect(r.queries).toBeLessThan(200);
  });
});

describe('enumerateStudies', () => {
  const studies = [
    ...['20240101', '20240101', '20230615', '20220301', '20250909', '30000101'].map((d, i) => study(`4.${i}`, d)),
    study('4.undated', ''),
    study('4.bad', '2024'),
  ];

  it('no date range, the listing fits: one date-less query', async () => {
    const src = new FakeSource(studies);
    const r = await enumerateStudies(src, studyQueries({}), {}, 100);
    expect(r.queries).toBe(1);
    expect(uids(r)).toEqual(studies.map((s) => s.studyIuid).sort());
  });

  it('no date range, too large: windows 19000101-99991231 plus a sweep for undated and malformed dates; nothing missed, nothing twice', async () => {
    const src = new FakeSource(studies);
    const r = await enumerateStudies(src, studyQueries({}), {}, 2);
    expect(r.splits).toBeGreaterThan(0);
    expect(r.studies.map((s) => s.studyIuid).sort()).toEqual(studies.map((s) => s.studyIuid).sort());
    expect(src.asked.at(-1)).toEqual({ date: '', cap: null });
    // The sweep asks the finder to keep only the studies no window can match (memory of a large listing).
    expect(src.keeps.at(-1)).toBe(true);
    expect(src.keeps.slice(0, -1).every((k) => !k)).toBe(true);
    expect(r.warnings).toEqual([]);
  });

  it('a date range in the scope: windows over it only, no sweep; an open end runs to 99991231', async () => {
    const src = new FakeSource(studies);
    const r = await enumerateStudies(src, studyQueries({ studyDateFrom: '20230101' }), { studyDateFrom: '20230101' }, 1);
    expect(uids(r)).toEqual(['4.0', '4.1', '4.2', '4.4', '4.5']);
    expect(src.asked.every((a) => a.date !== '')).toBe(true);
  });

  it('a sweep the source cuts short is a warning', async () => {
    const src = new FakeSource(studies, 3);
    const r = await enumerateStudies(src, studyQueries({}), {}, 2);
    expect(r.warnings.some((w) => w.includes('without a StudyDate'))).toBe(true);
  });

  it('resumable: a run that stops part-way keeps its finished steps; the next run asks only what is left and the two find every study once', async () => {
    // What the migration ledger keeps: finished steps and their studies.
    const kept = new Map<string, 'done' | 'split'>();
    const ledger = new Map<string, SourceStudy>();
    const progress: EnumerationProgress = {
      state: (step) => kept.get(step),
      done: async (step, found) => {
        for (const st of found) if (!ledger.has(st.studyIuid)) ledger.set(st.studyIuid, st);
        kept.set(step, 'done');
      },
      split: async (step) => void kept.set(step, 'split'),
    };
    const full = new FakeSource(studies);
    const reference = await enumerateStudies(full, studyQueries({}), {}, 1);
    // First run: the source fails (a crash, a lost association) half-way.
    const failAfter = Math.floor(full.asked.length / 2);
    const failing = new FakeSource(studies);
    const crashing: StudyFinder = {
      find: async (q, cap) => {
        if (failing.asked.length >= failAfter) throw new Error('connection lost');
        return failing.find(q, cap);
      },
    };
    await expect(enumerateStudies(crashing, studyQueries({}), {}, 1, progress)).rejects.toThrow('connection lost');
    const finishedBefore = [...kept.values()].filter((v) => v === 'done').length;
    expect(finishedBefore).toBeGreaterThan(0);
    // Second run: nothing finished is asked again, and the ledger ends with every study once.
    const again = new FakeSource(studies);
    await enumerateStudies(again, studyQueries({}), {}, 1, progress);
    expect(again.asked.length + failAfter).toBe(full.asked.length);
    expect([...ledger.keys()].sort()).toEqual(uids(reference));
    // A third run finds everything finished and asks nothing.
    const third = new FakeSource(studies);
    await enumerateStudies(third, studyQueries({}), {}, 1, progress);
    expect(third.asked).toEqual([]);
  });
});
