import type { LocationStatus } from '#vna/catalog';
import type { StudyLocationRow } from './move.repository.js';

const OK = 'OK' as LocationStatus;
const RESTORED = 'RESTORED' as LocationStatus;

export interface StudyLocationsView {
  studyInstanceUid: string;
  /** Instances per tier of their current (newest OK) copy; more than one key means the study is spread. */
  tiers: Record<string, number>;
  /** Instances with an unexpired restored copy (read instead of their offline copy), and the earliest expiry. */
  restored: { instances: number; expiresAt: string | null };
  instances: Array<{
    sopInstanceUid: string;
    seriesInstanceUid: string;
    /** Tier of the copy retrieval reads (newest OK location), or null if none is readable. */
    tier: string | null;
    /** An unexpired restored copy of the current version (retrieval reads it instead), or null. */
    restored: { tier: string; expiresAt: string } | null;
    locations: Array<{ tier: string; key: string; size: number; sha256: string; status: LocationStatus; version: number; expiresAt?: string }>;
  }>;
}

/** Groups location rows per instance (rows ordered by instance, then location id). */
export function studyLocationsView(studyIuid: string, rows: StudyLocationRow[], now: Date = new Date()): StudyLocationsView {
  const instances: StudyLocationsView['instances'] = [];
  const best = new Map<string, { version: number; id: number; tier: string }>();
  const restoredCopies = new Map<string, Array<{ version: number; tier: string; expiresAt: Date }>>();
  for (const r of rows) {
    let inst = instances[instances.length - 1];
    if (!inst || inst.sopInstanceUid !== r.sopIuid) {
      inst = { sopInstanceUid: r.sopIuid, seriesInstanceUid: r.seriesIuid, tier: null, restored: null, locations: [] };
      instances.push(inst);
    }
    const l = r.location;
    if (!l) continue;
    inst.locations.push({
      tier: l.storageId,
      key: l.objectKey,
      size: l.sizeBytes,
      sha256: l.sha256,
      status: l.status,
      version: l.version,
      ...(l.expiresAt ? { expiresAt: l.expiresAt.toISOString() } : {}),
    });
    if (l.status === RESTORED && l.expiresAt && l.expiresAt > now) {
      restoredCopies.set(r.sopIuid, [...(restoredCopies.get(r.sopIuid) ?? []), { version: l.version, tier: l.storageId, expiresAt: l.expiresAt }]);
    }
    if (l.status === OK) {
      const prev = best.get(r.sopIuid);
      if (!prev || l.version > prev.version || (l.version === prev.version && Number(l.id) > prev.id)) {
        best.set(r.sopIuid, { version: l.version, id: Number(l.id), tier: l.storageId });
      }
    }
  }
  const tiers: Record<string, number> = {};
  let restoredInstances = 0;
  let earliest: Date | null = null;
  for (const inst of instances) {
    const current = best.get(inst.sopInstanceUid);
    inst.tier = current?.tier ?? null;
    if (inst.tier) tiers[inst.tier] = (tiers[inst.tier] ?? 0) + 1;
    const copy = (restoredCopies.get(inst.sopInstanceUid) ?? [])
      .filter((c) => current && c.version === current.version)
      .sort((a, b) => b.expiresAt.getTime() - a.expiresAt.getTime())[0];
    if (copy) {
      inst.restored = { tier: copy.tier, expiresAt: copy.expiresAt.toISOString() };
      restoredInstances++;
      if (!earliest || copy.expiresAt < earliest) earliest = copy.expiresAt;
    }
  }
  return { studyInstanceUid: studyIuid, tiers, restored: { instances: restoredInstances, expiresAt: earliest?.toISOString() ?? null }, instances };
}

