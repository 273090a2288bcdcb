/**
 * The attribute model QIDO-RS and C-FIND share: which tag matches which column at which level,
 * with which matching rules (PS3.4 C.2.2.2, PS3.18 8.3.4).
 */
export enum QueryLevel {
  Patient = 'PATIENT',
  Study = 'STUDY',
  Series = 'SERIES',
  Image = 'IMAGE',
}

export const LEVEL_DEPTH: Record<QueryLevel, number> = {
  [QueryLevel.Patient]: 0,
  [QueryLevel.Study]: 1,
  [QueryLevel.Series]: 2,
  [QueryLevel.Image]: 3,
};

export type MatchType = 'text' | 'pn' | 'uid' | 'date' | 'time' | 'int' | 'cs-array' | 'count';

export interface AttributeDef {
  tag: string;
  vr: string;
  level: QueryLevel;
  /** SQL expression over aliases p (patient), s (study), se (series), i (instance). */
  column: string;
  match: MatchType;
  /** Upper-cased column for case-insensitive PN matching. */
  normColumn?: string;
}

const P = QueryLevel.Patient, S = QueryLevel.Study, SE = QueryLevel.Series, I = QueryLevel.Image;

export const ATTRIBUTES: AttributeDef[] = [
  { tag: '00100010', vr: 'PN', level: P, column: 'p.patient_name', normColumn: 'p.patient_name_norm', match: 'pn' },
  { tag: '00100020', vr: 'LO', level: P, column: 'p.patient_id', match: 'text' },
  { tag: '00100021', vr: 'LO', level: P, column: 'p.issuer', match: 'text' },
  { tag: '00100030', vr: 'DA', level: P, column: 'p.birth_date', match: 'date' },
  { tag: '00100040', vr: 'CS', level: P, column: 'p.sex', match: 'text' },
  {
    tag: '00201200', vr: 'IS', level: P, match: 'count',
    column: `(SELECT count(*) FROM study xs WHERE xs.patient_fk = p.id AND xs.retention_state = 'ACTIVE')`,
  },
  {
    tag: '00201202', vr: 'IS', level: P, match: 'count',
    column: `(SELECT coalesce(sum(xs.num_series), 0) FROM study xs WHERE xs.patient_fk = p.id AND xs.retention_state = 'ACTIVE')`,
  },
  {
    tag: '00201204', vr: 'IS', level: P, match: 'count',
    column: `(SELECT coalesce(sum(xs.num_instances), 0) FROM study xs WHERE xs.patient_fk = p.id AND xs.retention_state = 'ACTIVE')`,
  },
  { tag: '0020000D', vr: 'UI', level: S, column: 's.study_iuid', match: 'uid' },
  { tag: '00080020', vr: 'DA', level: S, column: 's.study_date', match: 'date' },
  { tag: '00080030', vr: 'TM', level: S, column: 's.study_time', match: 'time' },
  { tag: '00080050', vr: 'SH', level: S, column: 's.accession_number', match: 'text' },
  { tag: '00200010', vr: 'SH', level: S, column: 's.study_id', match: 'text' },
  { tag: '00081030', vr: 'LO', level: S, column: 's.study_description', match: 'text' },
  {
    tag: '00080090', vr: 'PN', level: S, column: 's.referring_physician', normColumn: 's.referring_physician_norm',
    match: 'pn',
  },
  { tag: '00080061', vr: 'CS', level: S, column: 's.modalities', match: 'cs-array' },
  { tag: '00080062', vr: 'UI', level: S, column: 's.sop_classes', match: 'cs-array' },
  { tag: '00201206', vr: 'IS', level: S, column: 's.num_series', match: 'count' },
  { tag: '00201208', vr: 'IS', level: S, column: 's.num_instances', match: 'count' },
  { tag: '0020000E', vr: 'UI', level: SE, column: 'se.series_iuid', match: 'uid' },
  { tag: '00080060', vr: 'CS', level: SE, column: 'se.modality', match: 'text' },
  { tag: '00200011', vr: 'IS', level: SE, column: 'se.series_number', match: 'int' },
  { tag: '0008103E', vr: 'LO', level: SE, column: 'se.series_description', match: 'text' },
  { tag: '00180015', vr: 'CS', level: SE, column: 'se.body_part', match: 'text' },
  { tag: '00080080', vr: 'LO', level: SE, column: 'se.institution_name', match: 'text' },
  { tag: '00081010', vr: 'SH', level: SE, column: 'se.station_name', match: 'text' },
  { tag: '00400244', vr: 'DA', level: SE, column: 'se.performed_start_date', match: 'date' },
  { tag: '00400245', vr: 'TM', level: SE, column: 'se.performed_start_time', match: 'time' },
  { tag: '00201209', vr: 'IS', level: SE, column: 'se.num_instances', match: 'count' },
  { tag: '00080018', vr: 'UI', level: I, column: 'i.sop_iuid', match: 'uid' },
  { tag: '00080016', vr: 'UI', level: I, column: 'i.sop_class_uid', match: 'uid' },
  { tag: '00200013', vr: 'IS', level: I, column: 'i.instance_number', match: 'int' },
  { tag: '00080023', vr: 'DA', level: I, column: 'i.content_date', match: 'date' },
  { tag: '00080033', vr: 'TM', level: I, column: 'i.content_time', match: 'time' },
  { tag: '00280008', vr: 'IS', level: I, column: 'i.num_frames', match: 'int' },
  { tag: '00280010', vr: 'US', level: I, column: 'i.rows', match: 'int' },
  { tag: '00280011', vr: 'US', level: I, column: 'i.columns', match: 'int' },
];

export const ATTRIBUTE_BY_TAG = new Map(ATTRIBUTES.map((a) => [a.tag, a]));

/** One matching key. `values` holds one value, or several for UID lists / multi-valued CS. */
export type Filter =
  | { tag: string; kind: 'single'; value: string }
  | { tag: string; kind: 'wildcard'; value: string }
  | { tag: string; kind: 'range'; from: string; to: string }
  | { tag: string; kind: 'list'; values: string[] };

export interface QuerySpec {
  level: QueryLevel;
  filters: Filter[];
  /** Tags (beyond the level defaults) to return; non-indexed ones come from stored attributes. */
  returnTags: string[];
  /** includefield=all: return every stored attribute of the level (and above). */
  includeAll: boolean;
  /** Also return the level defaults (QIDO); C-FIND returns only what was asked. */
  includeDefaults: boolean;
  limit?: number;
  offset?: number;
}
