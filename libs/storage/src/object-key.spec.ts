import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { assertValidKey } from './keys.js';
import { InvalidUidError, isValidUid, newObjectVersion, objectKeyFor } from './object-key.js';

const study = '1.2.840.113619.2.55.3.604688119.969.1268071029.320';
const series = '1.2.840.113619.2.55.3.604688119.969.1268071029.321';
const sop = '1.2.840.113619.2.55.3.604688119.969.1268071029.322.1';

describe('objectKeyFor', () => {
  it('builds <h1>/<h2>/<study>/<series>/<sop>.<version>.dcm with h1h2 from SHA-1(studyUid)', () => {
    const key = objectKeyFor({ studyUid: study, seriesUid: series, sopInstanceUid: sop, version: 'abc123' });
    const hash = createHash('sha1').update(study).digest('hex');
    expect(key).toBe(`${hash.slice(0, 2)}/${hash.slice(2, 4)}/${study}/${series}/${sop}.abc123.dcm`);
    expect(() => assertValidKey(key)).not.toThrow();
  });

  it('keeps a study together and gives every version its own key', () => {
    const a = objectKeyFor({ studyUid: study, seriesUid: series, sopInstanceUid: sop, version: 'v1' });
    const b = objectKeyFor({ studyUid: study, seriesUid: '1.2.3', sopInstanceUid: '1.2.3.4', version: 'v1' });
    const c = objectKeyFor({ studyUid: study, seriesUid: series, sopInstanceUid: sop, version: 'v2' });
    expect(a.split('/').slice(0, 3)).toEqual(b.split('/').slice(0, 3));
    expect(c).not.toBe(a);
    expect(objectKeyFor({ studyUid: study, seriesUid: series, sopInstanceUid: sop, version: 'v1' })).toBe(a);
  });

  it('spreads studies over fan-out directories', () => {
    const prefixes = new Set<string>();
    for (let i = 0; i < 200; i++) {
      const key = objectKeyFor({ studyUid: `1.2.3.${i}`, seriesUid: '1', sopInstanceUid: '1', version: 'v' });
      expect(key).toMatch(/^[0-9a-f]{2}\/[0-9a-f]{2}\//);
      prefixes.add(key.slice(0, 5));
    }
    expect(prefixes.size).toBeGreaterThan(190);
  });

  it('accepts only DICOM UIDs of at most 64 characters', () => {
    const bad = ['', '.', '..', '1..2', '.1', '1.', '1.2.a', '1.2 3', '../1', '1/2', '1\\2', '1.2\0', '1'.repeat(65), ' 1.2'];
    for (const uid of bad) {
      expect(isValidUid(uid), uid).toBe(false);
      for (const field of ['studyUid', 'seriesUid', 'sopInstanceUid'] as const) {
        const parts = { studyUid: '1.2', seriesUid: '1.2.3', sopInstanceUid: '1.2.3.4', version: 'v1', [field]: uid };
        expect(() => objectKeyFor(parts), `${field}=${JSON.stringify(uid)}`).toThrow(InvalidUidError);
      }
    }
    expect(isValidUid('1'.repeat(64))).toBe(true);
    expect(isValidUid('0.0')).toBe(true);
  });

  it('accepts only short lower-case alphanumeric versions', () => {
    for (const version of ['', 'V1', 'a-b', 'a.b', '../x', 'a/b', 'x'.repeat(33)]) {
      expect(() => objectKeyFor({ studyUid: '1', seriesUid: '2', sopInstanceUid: '3', version }), version).toThrow(TypeError);
    }
  });
});

describe('newObjectVersion', () => {
  it('is 25 characters of [0-9a-z], unique, and sorts by time', () => {
    const seen = new Set<string>();
    for (let i = 0; i < 1000; i++) {
      const v = newObjectVersion();
      expect(v).toMatch(/^[0-9a-z]{25}$/);
      seen.add(v);
    }
    expect(seen.size).toBe(1000);
    const earlier = newObjectVersion(Date.UTC(2020, 0, 1));
    const later = newObjectVersion(Date.UTC(2030, 0, 1));
    expect(earlier < later).toBe(true);
    expect(objectKeyFor({ studyUid: '1', seriesUid: '2', sopInstanceUid: '3', version: later })).toContain(later);
  });
});
