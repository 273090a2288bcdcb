/**
 * Data dictionary look-ups (tag -> VR) for implicit VR decoding, backed by dcmjs's dictionary.
 * dcmjs ships no type declarations; only the tiny surface used here is typed.
 */
// @ts-ignore -- dcmjs has no type declarations (a project-wide declaration may be added later)
import dcmjs from 'dcmjs';

interface DictionaryEntry {
  vr?: string;
  name?: string;
}
interface DcmjsSurface {
  data: { DicomMetaDictionary: { dictionary: Record<string, DictionaryEntry | undefined> } };
}

const dictionary = (dcmjs as unknown as DcmjsSurface).data.DicomMetaDictionary.dictionary;

/** Command set elements (group 0000), PS3.7 E.1. */
const COMMAND_VRS: Record<number, string> = {
  0x0000: 'UL',
  0x0002: 'UI',
  0x0003: 'UI',
  0x0100: 'US',
  0x0110: 'US',
  0x0120: 'US',
  0x0600: 'AE',
  0x0700: 'US',
  0x0800: 'US',
  0x0900: 'US',
  0x0901: 'AT',
  0x0902: 'LO',
  0x0903: 'US',
  0x1000: 'UI',
  0x1001: 'UI',
  0x1002: 'US',
  0x1005: 'AT',
  0x1008: 'US',
  0x1020: 'US',
  0x1021: 'US',
  0x1022: 'US',
  0x1023: 'US',
  0x1030: 'AE',
  0x1031: 'US',
};

function hex4(n: number): string {
  return n.toString(16).toUpperCase().padStart(4, '0');
}

/** Normalizes dictionary VRs such as "US or SS", "xs", "ox" to one concrete VR. */
function concreteVr(vr: string): string {
  switch (vr) {
    case 'xs':
    case 'US or SS':
    case 'US or SS or OW':
      return 'US';
    case 'ox':
    case 'OB or OW':
      return 'OB';
    case 'US or OW':
      return 'US';
    case 'lt':
      return 'OW';
    default:
      return vr.length === 2 ? vr : 'UN';
  }
}

/**
 * VR of a tag for implicit VR decoding. `undefinedLength` helps classify unknown elements
 * (an undefined-length unknown element is a sequence).
 */
export function lookupVr(group: number, element: number, undefinedLength = false): string {
  if (group === 0x0000) return COMMAND_VRS[element] ?? 'UN';
  if (element === 0x0000) return 'UL';
  if (group & 1) {
    if (element >= 0x0010 && element <= 0x00ff) return 'LO';
    return undefinedLength ? 'SQ' : 'UN';
  }
  const entry = dictionary[`(${hex4(group)},${hex4(element)})`];
  if (entry?.vr) return concreteVr(entry.vr);
  return undefinedLength ? 'SQ' : 'UN';
}
