import dcmjs from 'dcmjs';

const { DicomMetaDictionary } = dcmjs.data;

/** Keyword ("PatientName") or tag ("00100010", "0010,0010") -> 8-digit upper-case hex tag, or null. */
export function resolveTag(key: string): string | null {
  const k = key.trim();
  if (/^[0-9A-Fa-f]{8}$/.test(k)) return k.toUpperCase();
  const m = /^\(?([0-9A-Fa-f]{4}),([0-9A-Fa-f]{4})\)?$/.exec(k);
  if (m) return `${m[1]}${m[2]}`.toUpperCase();
  const entry = DicomMetaDictionary.nameMap[k];
  if (!entry) return null;
  return entry.tag.replace(/[(),]/g, '').toUpperCase();
}

/** VR of a tag from the dictionary ('UN' when unknown). */
export function vrOf(tag: string): string {
  const entry = DicomMetaDictionary.dictionary[`(${tag.slice(0, 4)},${tag.slice(4)})`];
  const vr = entry?.vr ?? 'UN';
  return vr.length === 2 && vr === vr.toUpperCase() ? vr : 'UN';
}
