/**
 * Capacity watermarks and promotion on access, as configured in VNA_TIERS entries:
 * `capacityBytes`, `highWatermark`, `lowWatermark` (hot tier only) and `promoteOnAccess`
 * (online/nearline tiers other than hot). The field types are checked by TierSpec (tiers.ts); the
 * rules between fields are checked here, each problem naming `VNA_TIERS[i].field`.
 */
import { HOT_TIER_ID } from './tiers.js';

/** Watermarks of a tier (percentages of its capacity). */
export interface TierCapacity {
  /** The configured capacity in bytes; absent: the filesystem's size (statfs), fs tiers only. */
  capacityBytes?: number;
  /** Above this share of the capacity (percent), the capacity check demotes studies… */
  highWatermark: number;
  /** …until the projected usage is below this share (percent). */
  lowWatermark: number;
}

export interface CapacityFields {
  id: string;
  kind: string;
  availability: string;
  capacityBytes?: number;
  highWatermark?: number;
  lowWatermark?: number;
  promoteOnAccess?: boolean;
}

/** The capacity settings of one (otherwise valid) tier entry, or the problems, each naming `where.field`. */
export function tierCapacity(spec: CapacityFields, where: string): { capacity?: TierCapacity; promoteOnAccess: boolean; problems: string[] } {
  const problems: string[] = [];
  const { capacityBytes, highWatermark: high, lowWatermark: low } = spec;
  let capacity: TierCapacity | undefined;
  const given = capacityBytes !== undefined || high !== undefined || low !== undefined;
  if (given && spec.id !== HOT_TIER_ID) {
    const field = high !== undefined ? 'highWatermark' : low !== undefined ? 'lowWatermark' : 'capacityBytes';
    problems.push(`${where}.${field}: capacity watermarks apply to the "${HOT_TIER_ID}" tier only`);
  } else if (given) {
    if (high === undefined) problems.push(`${where}.highWatermark is required with capacityBytes/lowWatermark (a percentage, 0-100)`);
    if (low === undefined) problems.push(`${where}.lowWatermark is required with capacityBytes/highWatermark (a percentage, 0-100)`);
    if (high !== undefined && low !== undefined && !(low < high)) {
      problems.push(`${where}.lowWatermark (${low}) must be less than ${where}.highWatermark (${high})`);
    }
    if (spec.kind !== 'fs' && capacityBytes === undefined) {
      problems.push(`${where}.capacityBytes is required for watermarks on an ${spec.kind} tier (only a filesystem has a size to read)`);
    }
    if (!problems.length) capacity = { ...(capacityBytes !== undefined ? { capacityBytes } : {}), highWatermark: high!, lowWatermark: low! };
  }
  if (spec.promoteOnAccess === true) {
    if (spec.id === HOT_TIER_ID) problems.push(`${where}.promoteOnAccess: studies are promoted to the "${HOT_TIER_ID}" tier; set it on the tiers they come from`);
    else if (spec.availability === 'offline') {
      problems.push(`${where}.promoteOnAccess: an offline tier is restored from, not promoted from (set it on online or nearline tiers)`);
    }
  }
  return { capacity, promoteOnAccess: spec.promoteOnAccess === true && !problems.length, problems };
}
