import { type DicomJson, int, str, strs } from './header.js';
import { Tag } from './tags.js';

const UID_RE = /^[0-9]+(\.[0-9]+)*$/;

export function isValidUid(uid: string): boolean {
  return uid.length > 0 && uid.length <= 64 && UID_RE.test(uid);
}

/** Upper-cased, for case-insensitive PN matching. */
export function normalizePersonName(name: string): string {
  return name.toUpperCase();
}

/** The attributes the index keeps as columns, by level. */
export interface IndexAttributes {
  patient: { patientId: string; issuer: string; patientName: string; birthDate: string; sex: string };
  study: {
    studyIuid: string;
    studyDate: string;
    studyTime: string;
    accessionNumber: string;
    studyId: string;
    studyDescription: string;
    referringPhysician: string;
  };
  series: {
    seriesIuid: string;
    modality: string;
    seriesNumber: number | null;
    seriesDescription: string;
    bodyPart: string;
    institutionName: string;
    stationName: string;
    performedStartDate: string;
    performedStartTime: string;
  };
  instance: {
    sopIuid: string;
    sopClassUid: string;
    instanceNumber: number | null;
    contentDate: string;
    contentTime: string;
    numFrames: number | null;
    rows: number | null;
    columns: number | null;
  };
}

export function extractIndexAttributes(ds: DicomJson): IndexAttributes {
  return {
    patient: {
      patientId: str(ds, Tag.PatientID),
      issuer: str(ds, Tag.IssuerOfPatientID),
      patientName: str(ds, Tag.PatientName),
      birthDate: str(ds, Tag.PatientBirthDate),
      sex: str(ds, Tag.PatientSex),
    },
    study: {
      studyIuid: str(ds, Tag.StudyInstanceUID),
      studyDate: str(ds, Tag.StudyDate),
      studyTime: str(ds, Tag.StudyTime),
      accessionNumber: str(ds, Tag.AccessionNumber),
      studyId: str(ds, Tag.StudyID),
      studyDescription: str(ds, Tag.StudyDescription),
      referringPhysician: str(ds, Tag.ReferringPhysicianName),
    },
    series: {
      seriesIuid: str(ds, Tag.SeriesInstanceUID),
      modality: str(ds, Tag.Modality),
      seriesNumber: int(ds, Tag.SeriesNumber),
      seriesDescription: str(ds, Tag.SeriesDescription),
      bodyPart: str(ds, Tag.BodyPartExamined),
      institutionName: str(ds, Tag.InstitutionName),
      stationName: str(ds, Tag.StationName),
      performedStartDate: str(ds, Tag.PerformedProcedureStepStartDate),
      performedStartTime: str(ds, Tag.PerformedProcedureStepStartTime),
    },
    instance: {
      sopIuid: str(ds, Tag.SOPInstanceUID),
      sopClassUid: str(ds, Tag.SOPClassUID),
      instanceNumber: int(ds, Tag.InstanceNumber),
      contentDate: str(ds, Tag.ContentDate),
      contentTime: str(ds, Tag.ContentTime),
      numFrames: int(ds, Tag.NumberOfFrames),
      rows: int(ds, Tag.Rows),
      columns: int(ds, Tag.Columns),
    },
  };
}

/** Tags that belong to each information-model level (for level-scoped attrs kept on the row). */
export const PATIENT_LEVEL_TAGS = new Set<string>([
  Tag.PatientName, Tag.PatientID, Tag.IssuerOfPatientID, Tag.PatientBirthDate, Tag.PatientSex,
  '00101010', '00101020', '00101030', '00102160', '00104000', '00101000', '00101001', '00101040', '00100032', '00102180',
]);
export const STUDY_LEVEL_TAGS = new Set<string>([
  Tag.StudyDate, Tag.StudyTime, Tag.AccessionNumber, Tag.StudyID, Tag.StudyDescription, Tag.ReferringPhysicianName,
  Tag.StudyInstanceUID, '00080051', '00081060', '00081080', '00321060', '00080201', '00081032', '00102000',
]);
export const SERIES_LEVEL_TAGS = new Set<string>([
  Tag.Modality, Tag.SeriesInstanceUID, Tag.SeriesNumber, Tag.SeriesDescription, Tag.BodyPartExamined,
  Tag.InstitutionName, Tag.StationName, Tag.PerformedProcedureStepStartDate, Tag.PerformedProcedureStepStartTime,
  Tag.SeriesDate, '00080031', '00081050', '00400275', '00081111', '00080070', '00081090', '00185100', '00200060',
]);

/** Subset of a data set restricted to a set of tags (plus the character set). */
export function pickTags(ds: DicomJson, tags: Set<string>): DicomJson {
  const out: DicomJson = {};
  if (ds[Tag.SpecificCharacterSet]) out[Tag.SpecificCharacterSet] = ds[Tag.SpecificCharacterSet];
  for (const t of tags) if (ds[t]) out[t] = ds[t];
  return out;
}

export { strs };
