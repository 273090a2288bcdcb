import type { DicomDict } from '#vna/dimse';
import { describe, expect, it } from 'vitest';
import { InvalidRetrieveIdentifierError, RetrieveModel, retrieveModelOf, toRetrieveQuery } from './retrieve-scope.js';

const id = (level: string, keys: Record<string, string[]> = {}): DicomDict => {
  const ds: DicomDict = { '00080052': { vr: 'CS', Value: [level] } };
  for (const [tag, v] of Object.entries(keys)) ds[tag] = { vr: tag === '00100020' || tag === '00100021' ? 'LO' : 'UI', Value: v };
  return ds;
};
const STUDY = '0020000D', SERIES = '0020000E', SOP = '00080018', PID = '00100020', ISSUER = '00100021';
const { StudyRoot, PatientRoot, PatientStudyOnly, CompositeInstanceRoot } = RetrieveModel;

describe('toRetrieveQuery (PS3.4 C.4.2.2.1 hierarchical retrieve)', () => {
  it('maps SOP classes to information models', () => {
    expect(retrieveModelOf('1.2.840.10008.5.1.4.1.2.2.2')).toBe(StudyRoot);
    expect(retrieveModelOf('1.2.840.10008.5.1.4.1.2.2.3')).toBe(StudyRoot);
    expect(retrieveModelOf('1.2.840.10008.5.1.4.1.2.1.2')).toBe(PatientRoot);
    expect(retrieveModelOf('1.2.840.10008.5.1.4.1.2.1.3')).toBe(PatientRoot);
    expect(retrieveModelOf('1.2.840.10008.5.1.4.1.2.4.3')).toBe(CompositeInstanceRoot);
    expect(retrieveModelOf('1.2.840.10008.5.1.4.1.2.2.1')).toBeUndefined();
  });

  it('STUDY level: one scope per listed Study Instance UID, duplicates and padding removed', () => {
    expect(toRetrieveQuery(id('STUDY', { [STUDY]: ['1.2.3', '1.2.4 ', '1.2.3'] }), StudyRoot)).toEqual({
      level: 'STUDY',
      scopes: [{ studyUid: '1.2.3' }, { studyUid: '1.2.4' }],
    });
    // A backslash-joined value (undecoded multi-value) counts as a list too.
    expect(toRetrieveQuery(id('STUDY', { [STUDY]: ['1.2.3\\1.2.4'] }), PatientRoot).scopes).toEqual([{ studyUid: '1.2.3' }, { studyUid: '1.2.4' }]);
  });

  it('SERIES level: Series UID list, narrowed by a single Study UID when present', () => {
    expect(toRetrieveQuery(id('SERIES', { [STUDY]: ['1.2'], [SERIES]: ['1.2.1', '1.2.2'] }), StudyRoot).scopes).toEqual([
      { studyUid: '1.2', seriesUid: '1.2.1' },
      { studyUid: '1.2', seriesUid: '1.2.2' },
    ]);
    expect(toRetrieveQuery(id('SERIES', { [SERIES]: ['1.2.1'] }), StudyRoot).scopes).toEqual([{ seriesUid: '1.2.1' }]);
  });

  it('IMAGE level: one scope with the SOP Instance UID list', () => {
    const q = toRetrieveQuery(id('IMAGE', { [STUDY]: ['1.2'], [SERIES]: ['1.2.1'], [SOP]: ['1.2.1.1', '1.2.1.2'] }), StudyRoot);
    expect(q).toEqual({
      level: 'IMAGE',
      sopUids: ['1.2.1.1', '1.2.1.2'],
      scopes: [{ studyUid: '1.2', seriesUid: '1.2.1', sopUids: ['1.2.1.1', '1.2.1.2'] }],
    });
  });

  it('ignores keys below the retrieve level and non-unique keys', () => {
    const ds = id('STUDY', { [STUDY]: ['1.2'], [SERIES]: ['9.9'], [SOP]: ['9.9.9'] });
    ds['00100010'] = { vr: 'PN', Value: [{ Alphabetic: 'DOE*' }] };
    expect(toRetrieveQuery(ds, StudyRoot).scopes).toEqual([{ studyUid: '1.2' }]);
  });

  it('PATIENT level (Patient Root, Patient/Study Only): Patient ID with optional issuer', () => {
    expect(toRetrieveQuery(id('PATIENT', { [PID]: ['MRN1 '] }), PatientRoot).scopes).toEqual([{ patientId: 'MRN1' }]);
    expect(toRetrieveQuery(id('PATIENT', { [PID]: ['MRN1'], [ISSUER]: ['HOSP'] }), PatientStudyOnly).scopes).toEqual([
      { patientId: 'MRN1', patientIssuer: 'HOSP' },
    ]);
  });

  it('refuses identifiers that would be ambiguous or select everything', () => {
    const bad = (ds: DicomDict, model = StudyRoot) => () => toRetrieveQuery(ds, model);
    expect(bad(id('PATIENT', { [PID]: ['X'] }))).toThrow(/not supported by this information model/);
    expect(bad(id('IMAGE', { [STUDY]: ['1.2'], [SERIES]: ['1.2.1'], [SOP]: ['1'] }), PatientStudyOnly)).toThrow(/not supported/);
    expect(bad(id('FRAME', { [SOP]: ['1.2'] }), CompositeInstanceRoot)).toThrow(/not supported/);
    expect(bad({} as DicomDict)).toThrow(/QueryRetrieveLevel \(0008,0052\) is missing/);
    expect(bad(id('STUDY'))).toThrow(/StudyInstanceUID \(0020,000D\) is required/);
    expect(bad(id('STUDY', { [STUDY]: [''] }))).toThrow(/required/);
    expect(bad(id('SERIES', { [STUDY]: ['1.2'] }))).toThrow(/SeriesInstanceUID .* is required/);
    expect(bad(id('SERIES', { [STUDY]: ['1.2', '1.3'], [SERIES]: ['1.2.1'] }))).toThrow(/single value/);
    expect(bad(id('IMAGE', { [STUDY]: ['1.2'], [SERIES]: ['1.2.1', '1.2.2'], [SOP]: ['1.2.1.1'] }))).toThrow(/single value/);
    expect(bad(id('IMAGE', { [SERIES]: ['1.2.1'] }))).toThrow(/SOPInstanceUID .* is required/);
    expect(bad(id('STUDY', { [STUDY]: ['1.2.*'] }))).toThrow(/invalid UID/);
    expect(bad(id('PATIENT', { [PID]: ['DOE*'] }), PatientRoot)).toThrow(/no wildcards/);
    expect(bad(id('PATIENT', { [PID]: ['   '] }), PatientRoot)).toThrow(/PatientID .* is required/);
    try {
      toRetrieveQuery(id('STUDY', { [STUDY]: ['x'] }), StudyRoot);
      expect.unreachable();
    } catch (e) {
      expect(e).toBeInstanceOf(InvalidRetrieveIdentifierError);
      expect((e as InvalidRetrieveIdentifierError).tag).toBe(STUDY);
    }
  });
});
