/**
 * C-MOVE / C-GET identifiers → index scopes, following the hierarchical retrieve rules of
 * PS3.4 C.4.2.2.1: the unique key of the retrieve level may list several UIDs; unique keys above
 * it, when present, hold one value and narrow the match. Pure logic, no I/O.
 */
import type { RetrieveScope } from '#vna/catalog';
import { isValidUid } from '#vna/dicom';
import type { DicomDict } from '#vna/dimse';

/** The Query/Retrieve information model of the request (from its SOP class). */
export enum RetrieveModel {
  PatientRoot = 'PATIENT_ROOT',
  StudyRoot = 'STUDY_ROOT',
  /** Patient/Study Only (retired): PATIENT and STUDY levels. */
  PatientStudyOnly = 'PATIENT_STUDY_ONLY',
  /** Composite Instance Root: STUDY/SERIES/IMAGE (FRAME level is not supported). */
  CompositeInstanceRoot = 'COMPOSITE_INSTANCE_ROOT',
}

const MODEL_BY_SOP_CLASS: Record<string, RetrieveModel> = {
  '1.2.840.10008.5.1.4.1.2.1.2': RetrieveModel.PatientRoot,
  '1.2.840.10008.5.1.4.1.2.1.3': RetrieveModel.PatientRoot,
  '1.2.840.10008.5.1.4.1.2.2.2': RetrieveModel.StudyRoot,
  '1.2.840.10008.5.1.4.1.2.2.3': RetrieveModel.StudyRoot,
  '1.2.840.10008.5.1.4.1.2.3.2': RetrieveModel.PatientStudyOnly,
  '1.2.840.10008.5.1.4.1.2.3.3': RetrieveModel.PatientStudyOnly,
  '1.2.840.10008.5.1.4.1.2.4.2': RetrieveModel.CompositeInstanceRoot,
  '1.2.840.10008.5.1.4.1.2.4.3': RetrieveModel.CompositeInstanceRoot,
};

export function retrieveModelOf(sopClassUid: string): RetrieveModel | undefined {
  return MODEL_BY_SOP_CLASS[sopClassUid];
}

export type RetrieveLevel = 'PATIENT' | 'STUDY' | 'SERIES' | 'IMAGE';

const LEVELS: Record<RetrieveModel, RetrieveLevel[]> = {
  [RetrieveModel.PatientRoot]: ['PATIENT', 'STUDY', 'SERIES', 'IMAGE'],
  [RetrieveModel.StudyRoot]: ['STUDY', 'SERIES', 'IMAGE'],
  [RetrieveModel.PatientStudyOnly]: ['PATIENT', 'STUDY'],
  [RetrieveModel.CompositeInstanceRoot]: ['STUDY', 'SERIES', 'IMAGE'],
};

/** The identifier cannot be used (maps to 0xA900 Identifier does not match SOP Class). */
export class InvalidRetrieveIdentifierError extends Error {
  constructor(
    message: string,
    /** Offending tag, for the log and Offending Element. */
    readonly tag: string,
  ) {
    super(message);
    this.name = 'InvalidRetrieveIdentifierError';
  }
}

export interface RetrieveQuery {
  level: RetrieveLevel;
  /** One scope per listed UID of the retrieve level (one for IMAGE level: the SOP UID list). */
  scopes: RetrieveScope[];
  /** IMAGE level: the requested SOP Instance UIDs (to report those that match nothing). */
  sopUids?: string[];
}

const TAG = {
  level: '00080052',
  patientId: '00100020',
  issuer: '00100021',
  study: '0020000D',
  series: '0020000E',
  sop: '00080018',
} as const;

const NAMES: Record<string, string> = {
  [TAG.patientId]: 'PatientID',
  [TAG.study]: 'StudyInstanceUID',
  [TAG.series]: 'SeriesInstanceUID',
  [TAG.sop]: 'SOPInstanceUID',
};

/** Values of an element as trimmed strings (DICOM JSON may carry several; backslash-joined too). */
function values(ds: DicomDict, tag: string): string[] {
  const v = ds[tag]?.Value ?? [];
  return v
    .flatMap((x) => (x === null || x === undefined ? [] : String(x).split('\\')))
    .map((s) => s.replace(/\0+$/, '').trim())
    .filter((s) => s.length > 0);
}

function uids(ds: DicomDict, tag: string, many: boolean, required: boolean): string[] {
  const list = [...new Set(values(ds, tag))];
  const name = `${NAMES[tag] ?? 'element'} (${tag.slice(0, 4)},${tag.slice(4)})`;
  if (!list.length) {
    if (required) throw new InvalidRetrieveIdentifierError(`${name} is required at this level`, tag);
    return [];
  }
  if (!many && list.length > 1) throw new InvalidRetrieveIdentifierError(`${name} must hold a single value above the retrieve level`, tag);
  for (const u of list) if (!isValidUid(u)) throw new InvalidRetrieveIdentifierError(`${name} has an invalid UID "${u.slice(0, 64)}"`, tag);
  return list;
}

/**
 * Map an identifier to scopes. Unique keys below the retrieve level are ignored; wildcards and
 * other matching keys are not part of a retrieve identifier and are ignored too. Missing keys
 * above the level are tolerated (UIDs are globally unique) — a missing or empty key at the
 * level is an error, so an identifier can never select the whole archive.
 */
export function toRetrieveQuery(identifier: DicomDict, model: RetrieveModel): RetrieveQuery {
  const raw = values(identifier, TAG.level)[0]?.toUpperCase() ?? '';
  if (!raw) throw new InvalidRetrieveIdentifierError('QueryRetrieveLevel (0008,0052) is missing', TAG.level);
  if (!LEVELS[model].includes(raw as RetrieveLevel)) {
    throw new InvalidRetrieveIdentifierError(`QueryRetrieveLevel "${raw.slice(0, 16)}" is not supported by this information model`, TAG.level);
  }
  const level = raw as RetrieveLevel;
  switch (level) {
    case 'PATIENT': {
      const ids = values(identifier, TAG.patientId);
      if (!ids.length) throw new InvalidRetrieveIdentifierError('PatientID (0010,0020) is required at PATIENT level', TAG.patientId);
      if (ids.length > 1) throw new InvalidRetrieveIdentifierError('PatientID (0010,0020) must hold a single value', TAG.patientId);
      if (/[*?]/.test(ids[0]!)) throw new InvalidRetrieveIdentifierError('PatientID (0010,0020) is a unique key: no wildcards', TAG.patientId);
      const issuer = values(identifier, TAG.issuer)[0];
      return { level, scopes: [{ patientId: ids[0]!, ...(issuer !== undefined ? { patientIssuer: issuer } : {}) }] };
    }
    case 'STUDY':
      return { level, scopes: uids(identifier, TAG.study, true, true).map((studyUid) => ({ studyUid })) };
    case 'SERIES': {
      const [studyUid] = uids(identifier, TAG.study, false, false);
      return {
        level,
        scopes: uids(identifier, TAG.series, true, true).map((seriesUid) => ({ ...(studyUid ? { studyUid } : {}), seriesUid })),
      };
    }
    case 'IMAGE': {
      const [studyUid] = uids(identifier, TAG.study, false, false);
      const [seriesUid] = uids(identifier, TAG.series, false, false);
      const sopUids = uids(identifier, TAG.sop, true, true);
      return { level, sopUids, scopes: [{ ...(studyUid ? { studyUid } : {}), ...(seriesUid ? { seriesUid } : {}), sopUids }] };
    }
    default: {
      const never: never = level;
      throw new InvalidRetrieveIdentifierError(`unsupported level ${String(never)}`, TAG.level);
    }
  }
}
