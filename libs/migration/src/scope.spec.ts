import { describe, expect, it } from 'vitest';
import { instanceQuery, matchesScope, parseStudy, planStudies, retrieveIdentifier, type SourceStudy, studyQueries, Tags } from './scope.js';

const s = (uid: string, date: string, extra: Partial<SourceStudy> = {}): SourceStudy => ({
  studyIuid: uid, studyDate: date, studyTime: '', patientId: '', accessionNumber: '', modalities: [], numInstances: null, ...extra,
});

describe('studyQueries', () => {
  it('an empty scope is one STUDY-level query with universal matching and the return keys', () => {
    const [q, ...rest] = studyQueries({});
    expect(rest).toEqual([]);
    expect(q![Tags.QueryRetrieveLevel]).toEqual({ vr: 'CS', Value: ['STUDY'] });
    expect(q![Tags.StudyInstanceUID]).toEqual({ vr: 'UI' });
    expect(q![Tags.StudyDate]).toEqual({ vr: 'DA' });
    expect(q![Tags.NumberOfStudyRelatedInstances]).toEqual({ vr: 'IS' });
    expect(q![Tags.ModalitiesInStudy]).toEqual({ vr: 'CS' });
  });

  it('date ranges: from-to, open ends, a single day', () => {
    expect(studyQueries({ studyDateFrom: '20200101', studyDateTo: '20201231' })[0]![Tags.StudyDate]).toEqual({ vr: 'DA', Value: ['20200101-20201231'] });
    expect(studyQueries({ studyDateFrom: '20200101' })[0]![Tags.StudyDate]).toEqual({ vr: 'DA', Value: ['20200101-'] });
    expect(studyQueries({ studyDateTo: '20201231' })[0]![Tags.StudyDate]).toEqual({ vr: 'DA', Value: ['-20201231'] });
    expect(studyQueries({ studyDateFrom: '20200101', studyDateTo: '20200101' })[0]![Tags.StudyDate]).toEqual({ vr: 'DA', Value: ['20200101'] });
  });

  it('several patient IDs, accession numbers and modalities become one single-valued query per combination', () => {
    const qs = studyQueries({ patientIds: ['P1', 'P2'], accessionNumbers: ['A1'], modalities: ['CT', 'MR', 'US'], studyDateFrom: '20200101' });
    expect(qs).toHaveLength(6);
    const combos = qs.map((q) => `${q[Tags.PatientID]!.Value![0]}/${q[Tags.AccessionNumber]!.Value![0]}/${q[Tags.ModalitiesInStudy]!.Value![0]}`);
    expect(new Set(combos)).toEqual(new Set(['P1/A1/CT', 'P1/A1/MR', 'P1/A1/US', 'P2/A1/CT', 'P2/A1/MR', 'P2/A1/US']));
    for (const q of qs) expect(q[Tags.StudyDate]).toEqual({ vr: 'DA', Value: ['20200101-'] });
  });

  it('a list of studies: one query per Study Instance UID', () => {
    const qs = studyQueries({ studyInstanceUids: ['1.2.3', '1.2.4'] });
    expect(qs.map((q) => q[Tags.StudyInstanceUID])).toEqual([{ vr: 'UI', Value: ['1.2.3'] }, { vr: 'UI', Value: ['1.2.4'] }]);
  });
});

describe('parseStudy / matchesScope / planStudies', () => {
  it('parses a C-FIND answer', () => {
    expect(
      parseStudy({
        [Tags.StudyInstanceUID]: { vr: 'UI', Value: ['1.2.3 '] },
        [Tags.StudyDate]: { vr: 'DA', Value: ['20240105'] },
        [Tags.ModalitiesInStudy]: { vr: 'CS', Value: ['CT', 'SR'] },
        [Tags.NumberOfStudyRelatedInstances]: { vr: 'IS', Value: ['18'] },
      }),
    ).toEqual({ studyIuid: '1.2.3', studyDate: '20240105', studyTime: '', patientId: '', accessionNumber: '', modalities: ['CT', 'SR'], numInstances: 18 });
    expect(parseStudy({ [Tags.StudyDate]: { vr: 'DA', Value: ['20240105'] } })).toBeNull();
  });

  it('drops answers outside the scope (sources that ignore keys), keeps those that did not return a key', () => {
    const scope = { studyDateFrom: '20200101', studyDateTo: '20201231', modalities: ['CT'], patientIds: ['P1'] };
    expect(matchesScope(s('1', '20200615', { modalities: ['CT'], patientId: 'P1' }), scope)).toBe(true);
    expect(matchesScope(s('1', '20210101', { modalities: ['CT'] }), scope)).toBe(false);
    expect(matchesScope(s('1', '', {}), scope)).toBe(false);
    expect(matchesScope(s('1', '20200615', { modalities: ['MR'] }), scope)).toBe(false);
    expect(matchesScope(s('1', '20200615', { patientId: 'P9' }), scope)).toBe(false);
    expect(matchesScope(s('1', '20200615', {}), scope)).toBe(true);
  });

  it('orders newest first, oldest first (date, time, then UID), or as listed; merges duplicates', () => {
    const a = s('1.1', '20220101');
    const b = s('1.2', '20240101', { studyTime: '0800' });
    const c = s('1.3', '20240101', { studyTime: '120000' });
    const d = s('1.4', '');
    expect(planStudies([a, b, c, d, a], {}, 'oldest-first').map((x) => x.studyIuid)).toEqual(['1.4', '1.1', '1.2', '1.3']);
    expect(planStudies([a, b, c, d], {}, 'newest-first').map((x) => x.studyIuid)).toEqual(['1.3', '1.2', '1.1', '1.4']);
    expect(planStudies([a, b, c], { studyInstanceUids: ['1.3', '1.1', '1.2'] }, 'list').map((x) => x.studyIuid)).toEqual(['1.3', '1.1', '1.2']);
  });
});

describe('retrieve and instance identifiers', () => {
  it('STUDY level, or IMAGE level with the series and instance', () => {
    expect(retrieveIdentifier('1.2')).toEqual({ [Tags.QueryRetrieveLevel]: { vr: 'CS', Value: ['STUDY'] }, [Tags.StudyInstanceUID]: { vr: 'UI', Value: ['1.2'] } });
    const img = retrieveIdentifier('1.2', { seriesIuid: '1.2.3', sopIuid: '1.2.3.4' });
    expect(img[Tags.QueryRetrieveLevel]!.Value).toEqual(['IMAGE']);
    expect(img[Tags.SOPInstanceUID]!.Value).toEqual(['1.2.3.4']);
    expect(instanceQuery('1.2', '1.2.3')[Tags.SOPClassUID]).toEqual({ vr: 'UI' });
    expect(instanceQuery('1.2', '1.2.3', false)[Tags.SOPClassUID]).toBeUndefined();
  });
});
