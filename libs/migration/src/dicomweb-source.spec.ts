import { describe, expect, it } from 'vitest';
import { DicomwebSource, multipartBoundary, qidoParams } from './dicomweb-source.js';
import { studyQueries, Tags } from './scope.js';

describe('qidoParams', () => {
  it('matching keys with values become parameters; the rest parseStudy reads is asked with includefield', () => {
    const [q] = studyQueries({ patientIds: ['P1'], modalities: ['CT'], studyDateFrom: '20200101', studyDateTo: '20201231' });
    const p = qidoParams(q!);
    expect(p.get(Tags.PatientID)).toBe('P1');
    expect(p.get(Tags.ModalitiesInStudy)).toBe('CT');
    expect(p.get(Tags.StudyDate)).toBe('20200101-20201231');
    expect(p.has(Tags.QueryRetrieveLevel)).toBe(false);
    expect(p.has(Tags.StudyInstanceUID)).toBe(false);
    expect(p.getAll('includefield').sort()).toEqual([Tags.AccessionNumber, Tags.StudyTime, Tags.NumberOfStudyRelatedInstances].sort());
  });
});

describe('multipartBoundary', () => {
  it('reads quoted and bare boundaries of multipart/related only', () => {
    expect(multipartBoundary('multipart/related; type="application/dicom"; boundary=abc-123')).toBe('abc-123');
    expect(multipartBoundary('Multipart/Related; boundary="a b"; type="application/dicom"')).toBe('a b');
    expect(multipartBoundary('application/dicom')).toBeNull();
    expect(multipartBoundary(null)).toBeNull();
    expect(multipartBoundary('multipart/related; type="application/dicom"')).toBeNull();
  });
});

describe('DicomwebSource.sourceAe', () => {
  it('dicomweb:<host[:port]>, at most 64 characters', () => {
    expect(new DicomwebSource({ kind: 'dicomweb', baseUrl: 'http://127.0.0.1:8042/dicom-web/' }).sourceAe).toBe('dicomweb:127.0.0.1:8042');
    expect(new DicomwebSource({ kind: 'dicomweb', baseUrl: `https://${'a'.repeat(80)}.example.org/wado` }).sourceAe).toHaveLength(64);
  });
});
