import { describe, expect, it } from 'vitest';
import type { LifecycleRule, StudyFacts } from '../policy/rules.js';
import { bytesAt, DemotionPlanner, demotionVerdict, watermarkState } from './watermarks.js';

const now = new Date('2026-06-01T00:00:00Z');
const study = (uid: string, over: Partial<StudyFacts> = {}): StudyFacts => ({
  studyIuid: uid,
  modalities: ['CT'],
  sourceAes: ['CT1'],
  institutions: [],
  studyDate: '20260501',
  patientBirthDate: '19700101',
  createdAt: new Date('2026-05-01T00:00:00Z'),
  lastAccessAt: null,
  sizeBytes: 100,
  bytesByTier: { hot: 100 },
  ...over,
});

const rules: LifecycleRule[] = [
  { name: 'mammo-stays', match: { modalities: ['MG'] }, targetTier: 'hot' },
  { name: 'ct-old-warm', match: { modalities: ['CT'], minStudyAgeDays: 365 }, targetTier: 'warm' },
  { name: 'ct-recent-hot', match: { modalities: ['CT'] }, targetTier: 'hot' },
  { name: 'mr-cold', match: { modalities: ['MR'], minDaysSinceLastAccess: 30 }, targetTier: 'cold' },
];

describe('demotionVerdict', () => {
  it('follows the policy now when a rule matches with every condition', () => {
    expect(demotionVerdict(rules, study('a', { studyDate: '20200101' }), 'hot', now)).toEqual({ allowed: true, rule: 'ct-old-warm', targetTier: 'warm' });
    // The policy keeps a recent CT on hot (ct-recent-hot matches): pinned, though ct-old-warm would match without its age.
    expect(demotionVerdict(rules, study('b'), 'hot', now)).toEqual({ allowed: false, reason: 'pinned' });
    expect(demotionVerdict(rules, study('c', { modalities: ['MG'] }), 'hot', now)).toEqual({ allowed: false, reason: 'pinned' });
  });

  it('ignores time conditions when no rule matches now; no rule at all: not demoted', () => {
    expect(demotionVerdict(rules, study('d', { modalities: ['MR'], lastAccessAt: new Date('2026-05-31T00:00:00Z') }), 'hot', now)).toEqual({
      allowed: true, rule: 'mr-cold', targetTier: 'cold',
    });
    expect(demotionVerdict(rules, study('e', { modalities: ['US'] }), 'hot', now)).toEqual({ allowed: false, reason: 'no-rule' });
    expect(demotionVerdict([], study('f'), 'hot', now)).toEqual({ allowed: false, reason: 'no-rule' });
  });
});

describe('watermarks', () => {
  const levels = { capacityBytes: 1000, highWatermark: 80, lowWatermark: 50 };

  it('states: strictly above high, strictly below low, else between', () => {
    expect(bytesAt(1000, 80)).toBe(800);
    expect(watermarkState(801, levels)).toBe('above-high');
    expect(watermarkState(800, levels)).toBe('between');
    expect(watermarkState(500, levels)).toBe('between');
    expect(watermarkState(499, levels)).toBe('below-low');
  });

  it('does nothing at or below the high watermark', () => {
    const p = new DemotionPlanner(rules, 'hot', levels, 800, 0, now);
    expect(p.triggered).toBe(false);
    expect(p.offer(study('a', { studyDate: '20200101' }))).toBe(false);
    expect(p.demotions).toEqual([]);
  });

  it('above high: picks allowed studies in the order offered until the projection is below low', () => {
    const p = new DemotionPlanner(rules, 'hot', levels, 900, 0, now);
    const old = { studyDate: '20200101' };
    const offered = [
      study('pinned', { modalities: ['MG'], bytesByTier: { hot: 300 } }),
      study('s1', { ...old, bytesByTier: { hot: 150 } }),
      study('no-rule', { modalities: ['US'], bytesByTier: { hot: 300 } }),
      study('spread', { ...old, bytesByTier: { hot: 100, warm: 500 } }),
      study('none-on-hot', { ...old, bytesByTier: { warm: 500 } }),
      study('s3', { ...old, bytesByTier: { hot: 200 } }),
      study('s4', { ...old, bytesByTier: { hot: 200 } }),
    ];
    const taken = offered.filter(() => p.wantsMore).map((s) => p.offer(s));
    // 900 - 150 - 100 - 200 = 450 < 500: s4 is not needed.
    expect(p.demotions.map((d) => [d.studyIuid, d.targetTier, d.bytes])).toEqual([['s1', 'warm', 150], ['spread', 'warm', 100], ['s3', 'warm', 200]]);
    expect(p.projectedBytes).toBe(450);
    expect(p.skipped).toEqual({ pinned: 1, noRule: 1 });
    expect(taken.at(-1)).toBe(false);
    expect(p.wantsMore).toBe(false);
  });

  it('counts bytes already leaving hot (moves in flight) as gone', () => {
    const p = new DemotionPlanner(rules, 'hot', levels, 900, 350, now);
    p.offer(study('s1', { studyDate: '20200101', bytesByTier: { hot: 100 } }));
    expect(p.demotions.map((d) => d.studyIuid)).toEqual(['s1']);
    expect(p.wantsMore).toBe(false);
  });
});
