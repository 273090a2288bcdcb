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
});
