/**
 * A migration job's scope as C-FIND identifiers (Study Root, STUDY level), the check of each
 * answer against the scope (a safety net for sources that ignore some keys), and the order in
 * which the ledger's studies are migrated. Pure functions.
 */
import type { DicomDict } from '#vna/dimse';

export interface MigrationScope {
  /** YYYYMMDD, inclusive. */
  studyDateFrom?: string;
  /** YYYYMMDD, inclusive. */
  studyDateTo?: string;
  /** Any of these modalities in the study (ModalitiesInStudy). */
  modalities?: string[];
  patientIds?: string[];
  accessionNumbers?: string[];
  /** Exactly these studies (order 'list': in this order). */
  studyInstanceUids?: string[];
}

export type StudyOrder = 'newest-first' | 'oldest-first' | 'list';

/** A study as the source's C-FIND answered it. */
export interface SourceStudy {
  studyIuid: string;
  studyDate: string;
  studyTime: string;
  patientId: string;
  accessionNumber: string;
  modalities: string[];
  /** NumberOfStudyRelatedInstances, when the source returned it. */
  numInstances: number | null;
}

export const Tags = {
  QueryRetrieveLevel: '00080052',
  StudyInstanceUID: '0020000D',
  SeriesInstanceUID: '0020000E',
  SOPInstanceUID: '00080018',
  SOPClassUID: '00080016',
  StudyDate: '00080020',
  StudyTime: '00080030',
  AccessionNumber: '00080050',
  ModalitiesInStudy: '00080061',
  PatientID: '00100020',
  NumberOfStudyRelatedInstances: '00201208',
} as const;

function dateRange(scope: MigrationScope): string {
  if (!scope.studyDateFrom && !scope.studyDateTo) return '';
  if (scope.studyDateFrom && scope.studyDateFrom === scope.studyDateTo) return scope.studyDateFrom;
  return `${scope.studyDateFrom ?? ''}-${scope.studyDateTo ?? ''}`;
}

const val = (vr: string, v?: string) => (v ? { vr, Value: [v] } : { vr });

/**
 * The STUDY-level identifiers that together cover the scope: single-valued matching keys only
 * (PS3.4 C.2.2.2: lists of values are for UIDs only), so several patient IDs, accession numbers
 * or modalities become one query per combination; the answers are merged by Study Instance UID.
 */
export function studyQueries(scope: MigrationScope): DicomDict[] {
  const pids = scope.patientIds?.length ? scope.patientIds : [undefined];
  const accs = scope.accessionNumbers?.length ? scope.accessionNumbers : [undefined];
  const mods = scope.modalities?.length ? scope.modalities : [undefined];
  const uids = scope.studyInstanceUids?.length ? scope.studyInstanceUids : [undefined];
  const date = dateRange(scope);
  const out: DicomDict[] = [];
  for (const uid of uids)
    for (const pid of pids)
      for (const acc of accs)
        for (const mod of mods) {
          out.push({
            [Tags.QueryRetrieveLevel]: { vr: 'CS', Value: ['STUDY'] },
            [Tags.StudyInstanceUID]: val('UI', uid),
            [Tags.StudyDate]: val('DA', date),
            [Tags.StudyTime]: { vr: 'TM' },
            [Tags.PatientID]: val('LO', pid),
            [Tags.AccessionNumber]: val('SH', acc),
            [Tags.ModalitiesInStudy]: val('CS', mod),
            [Tags.NumberOfStudyRelatedInstances]: { vr: 'IS' },
          });
        }
  return out;
}

function first(ds: DicomDict, tag: string): string {
  const v = ds[tag]?.Value?.[0];
  if (v === undefined || v === null) return '';
  return String(v).trim();
}

/** A C-FIND answer as a SourceStudy; null without a Study Instance UID. */
export function parseStudy(ds: DicomDict): SourceStudy | null {
  const studyIuid = first(ds, Tags.StudyInstanceUID);
  if (!studyIuid) return null;
  const n = first(ds, Tags.NumberOfStudyRelatedInstances);
  return {
    studyIuid,
    studyDate: first(ds, Tags.StudyDate),
    studyTime: first(ds, Tags.StudyTime),
    patientId: first(ds, Tags.PatientID),
    accessionNumber: first(ds, Tags.AccessionNumber),
    modalities: (ds[Tags.ModalitiesInStudy]?.Value ?? []).map((m) => String(m).trim()).filter(Boolean),
    numInstances: /^\d+$/.test(n) ? Number(n) : null,
  };
}

/**
 * Does an answer really match the scope? Keys the source did not return (empty) are not held
 * against the study, except the date when a range is set (a study without a date is not in it).
 */
export function matchesScope(s: SourceStudy, scope: MigrationScope): boolean {
  if (scope.studyInstanceUids?.length && !scope.studyInstanceUids.includes(s.studyIuid)) return false;
  if (scope.studyDateFrom || scope.studyDateTo) {
    if (!/^\d{8}$/.test(s.studyDate)) return false;
    if (scope.studyDateFrom && s.studyDate < scope.studyDateFrom) return false;
    if (scope.studyDateTo && s.studyDate > scope.studyDateTo) return false;
  }
  if (scope.patientIds?.length && s.patientId && !scope.patientIds.includes(s.patientId)) return false;
  if (scope.accessionNumbers?.length && s.accessionNumber && !scope.accessionNumbers.includes(s.accessionNumber)) return false;
  if (scope.modalities?.length && s.modalities.length && !s.modalities.some((m) => scope.modalities!.includes(m))) return false;
  return true;
}

/** Merge answers (by Study Instance UID), keep those in scope, and order them. */
export function planStudies(answers: SourceStudy[], scope: MigrationScope, order: StudyOrder): SourceStudy[] {
  const byUid = new Map<string, SourceStudy>();
  for (const s of answers) if (!byUid.has(s.studyIuid) && matchesScope(s, scope)) byUid.set(s.studyIuid, s);
  const studies = [...byUid.values()];
  if (order === 'list') {
    const pos = new Map((scope.studyInstanceUids ?? []).map((u, i) => [u, i]));
    return studies.sort((a, b) => (pos.get(a.studyIuid) ?? 0) - (pos.get(b.studyIuid) ?? 0));
  }
  const key = (s: SourceStudy) => `${s.studyDate || '00000000'}${s.studyTime.padEnd(6, '0')}|${s.studyIuid}`;
  studies.sort((a, b) => (key(a) < key(b) ? -1 : key(a) > key(b) ? 1 : 0));
  return order === 'newest-first' ? studies.reverse() : studies;
}

/** SERIES-level identifier for one study (its series, to query the instances per series). */
export function seriesQuery(studyIuid: string): DicomDict {
  return {
    [Tags.QueryRetrieveLevel]: { vr: 'CS', Value: ['SERIES'] },
    [Tags.StudyInstanceUID]: { vr: 'UI', Value: [studyIuid] },
    [Tags.SeriesInstanceUID]: { vr: 'UI' },
  };
}

/**
 * IMAGE-level identifier for one series: SOP Instance UIDs, and the SOP Class UIDs when asked
 * (C-GET needs them for its presentation contexts; some sources read them from the stored file,
 * so C-MOVE does not ask).
 */
export function instanceQuery(studyIuid: string, seriesIuid: string, withSopClass = true): DicomDict {
  return {
    [Tags.QueryRetrieveLevel]: { vr: 'CS', Value: ['IMAGE'] },
    [Tags.StudyInstanceUID]: { vr: 'UI', Value: [studyIuid] },
    [Tags.SeriesInstanceUID]: { vr: 'UI', Value: [seriesIuid] },
    [Tags.SOPInstanceUID]: { vr: 'UI' },
    ...(withSopClass ? { [Tags.SOPClassUID]: { vr: 'UI' } } : {}),
  };
}

/** STUDY-level (or, with series and instance, IMAGE-level) retrieve identifier. */
export function retrieveIdentifier(studyIuid: string, instance?: { seriesIuid: string; sopIuid: string }): DicomDict {
  if (!instance) {
    return { [Tags.QueryRetrieveLevel]: { vr: 'CS', Value: ['STUDY'] }, [Tags.StudyInstanceUID]: { vr: 'UI', Value: [studyIuid] } };
  }
  return {
    [Tags.QueryRetrieveLevel]: { vr: 'CS', Value: ['IMAGE'] },
    [Tags.StudyInstanceUID]: { vr: 'UI', Value: [studyIuid] },
    [Tags.SeriesInstanceUID]: { vr: 'UI', Value: [instance.seriesIuid] },
    [Tags.SOPInstanceUID]: { vr: 'UI', Value: [instance.sopIuid] },
  };
}

export const firstValue = first;
