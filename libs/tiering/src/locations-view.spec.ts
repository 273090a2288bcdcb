import type { LocationStatus } from '#vna/catalog';
import { describe, expect, it } from 'vitest';
import { studyLocationsView } from './locations-view.js';
import type { StudyLocationRow } from './move.repository.js';

const loc = (id: string, storageId: string, status: string, version = 1) => ({
  id, storageId, objectKey: `k/${id}`, sizeBytes: 10, sha256: `sha-${id}`, status: status as LocationStatus, version,
});
const row = (sop: string, location: StudyLocationRow['location']): StudyLocationRow => ({ sopIuid: sop, seriesIuid: '1.2', instanceStatus: 'INDEXED', location });

describe('studyLocationsView', () => {
  it('groups locations per instance and names the tier retrieval reads (newest OK version, then newest row)', () => {
    const v = studyLocationsView('1.2.3', [
      row('1.1', loc('1', 'hot', 'REPLACED', 1)),
      row('1.1', loc('2', 'warm', 'OK', 2)),
      row('1.2', loc('3', 'hot', 'OK', 1)),
      row('1.2', loc('4', 'cold', 'OK', 1)),
      row('1.3', loc('5', 'hot', 'CORRUPT', 1)),
      row('1.4', null),
    ]);
    expect(v.studyInstanceUid).toBe('1.2.3');
    expect(v.instances.map((i) => [i.sopInstanceUid, i.tier, i.locations.length])).toEqual([
      ['1.1', 'warm', 2],
      ['1.2', 'cold', 2],
      ['1.3', null, 1],
      ['1.4', null, 0],
    ]);
    expect(v.tiers).toEqual({ warm: 1, cold: 1 });
    expect(v.instances[0]!.locations[1]).toEqual({ tier: 'warm', key: 'k/2', size: 10, sha256: 'sha-2', status: 'OK', version: 2 });
  });

  it('shows an unexpired restored copy of the current version, with its expiry; expired or older ones are only listed', () => {
    const now = new Date('2026-12-01T10:00:00Z');
    const restored = (id: string, version: number, expiresAt: string) => ({ ...loc(id, 'hot', 'RESTORED', version), expiresAt: new Date(expiresAt) });
    const v = studyLocationsView(
      '1.2.3',
      [
        row('1.1', loc('1', 'cold', 'OK', 1)),
        row('1.1', restored('2', 1, '2026-12-02T10:00:00Z')),
        row('1.2', loc('3', 'cold', 'OK', 1)),
        row('1.2', restored('4', 1, '2026-12-01T09:59:59Z')),
        row('1.3', loc('5', 'cold', 'OK', 2)),
        row('1.3', restored('6', 1, '2026-12-02T10:00:00Z')),
      ],
      now,
    );
    expect(v.instances.map((i) => [i.sopInstanceUid, i.tier, i.restored])).toEqual([
      ['1.1', 'cold', { tier: 'hot', expiresAt: '2026-12-02T10:00:00.000Z' }],
      ['1.2', 'cold', null],
      ['1.3', 'cold', null],
    ]);
    expect(v.tiers).toEqual({ cold: 3 });
    expect(v.restored).toEqual({ instances: 1, expiresAt: '2026-12-02T10:00:00.000Z' });
    expect(v.instances[0]!.locations[1]!.expiresAt).toBe('2026-12-02T10:00:00.000Z');
    expect(v.instances[0]!.locations[0]!.expiresAt).toBeUndefined();
  });
});
