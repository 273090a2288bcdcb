import type { LocationStatus } from '#vna/catalog';
import type { StudyLocationRow } from './move.repository.js';

const OK = 'OK' as LocationStatus;

export interface StudyLocationsView {
  studyInstanceUid: string;
  /** Instances per tier of their current (newest OK) copy; more than one key means the study is spread. */
  tiers: Record<string, number>;
  instances: Array<{
    sopInstanceUid: string;
    seriesInstanceUid: string;
    /** Tier of the copy retrieval reads (newest OK location), or null if none is readable. */
    tier: string | null;
    locations: Array<{ tier: string; key: string; size: number; sha256: string; status: LocationStatus; version: number }>;
  }>;
}

/** Groups location rows per instance (rows ordered by instance, then location id). */
export function studyLocationsView(studyIuid: string, rows: StudyLocationRow[]): StudyLocationsView {
  const instances: StudyLocationsView['instances'] = [];
  const best = new Map<string, { version: number; id: number; tier: string }>();
  for (const r of rows) {
    let inst = instances[instances.length - 1];
    if (!inst || inst.sopInstanceUid !== r.sopIuid) {
      inst = { sopInstanceUid: r.sopIuid, seriesInstanceUid: r.seriesIuid, tier: null, locations: [] };
      instances.push(inst);
    }
    const l = r.location;
    if (!l) continue;
    inst.locations.push({ tier: l.storageId, key: l.objectKey, size: l.sizeBytes, sha256: l.sha256, status: l.status, version: l.version });
    if (l.status === OK) {
      const prev = best.get(r.sopIuid);
      if (!prev || l.version > prev.version || (l.version === prev.version && Number(l.id) > prev.id)) {
        best.set(r.sopIuid, { version: l.version, id: Number(l.id), tier: l.storageId });
      }
    }
  }
  const tiers: Record<string, number> = {};
  for (const inst of instances) {
    inst.tier = best.get(inst.sopInstanceUid)?.tier ?? null;
    if (inst.tier) tiers[inst.tier] = (tiers[inst.tier] ?? 0) + 1;
  }
  return { studyInstanceUid: studyIuid, tiers, instances };
}

