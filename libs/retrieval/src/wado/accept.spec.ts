import { describe, expect, it } from 'vitest';
import { frameMediaType, negotiateBulk, negotiateDicom, negotiateJson, negotiatePixels, NotAcceptableError, parseAccept } from './accept.js';

const JPEG = '1.2.840.10008.1.2.4.50';
const ELE = '1.2.840.10008.1.2.1';
const ILE = '1.2.840.10008.1.2';
const EBE = '1.2.840.10008.1.2.2';

describe('parseAccept', () => {
  it('parses ranges, quoted params and q, best first', () => {
    const r = parseAccept('application/json;q=0.5, multipart/related; type="application/dicom"; transfer-syntax=1.2.840.10008.1.2.1, */*;q=0');
    expect(r).toEqual([
      { mediaType: 'multipart/related', params: { type: 'application/dicom', 'transfer-syntax': ELE }, q: 1 },
      { mediaType: 'application/json', params: {}, q: 0.5 },
    ]);
  });
  it('absent or empty = anything', () => {
    expect(parseAccept(undefined)).toEqual([{ mediaType: '*/*', params: {}, q: 1 }]);
    expect(parseAccept('  ')).toEqual([{ mediaType: '*/*', params: {}, q: 1 }]);
  });
  it('keeps commas inside quotes', () => {
    expect(parseAccept('multipart/related; type="a,b"')[0]!.params.type).toBe('a,b');
  });
});

describe('negotiateDicom', () => {
  const dicom = (ts?: string) => parseAccept(`multipart/related; type="application/dicom"${ts ? `; transfer-syntax=${ts}` : ''}`);
  it('accepts *, absent, or the stored syntax', () => {
    expect(() => negotiateDicom(dicom('*'), [JPEG, ELE])).not.toThrow();
    expect(() => negotiateDicom(dicom(), [JPEG, ELE])).not.toThrow();
    expect(() => negotiateDicom(dicom(JPEG), [JPEG])).not.toThrow();
    expect(() => negotiateDicom(parseAccept('*/*'), [JPEG])).not.toThrow();
  });
  it('406 for another syntax, also when only one of a mixed set differs', () => {
    expect(() => negotiateDicom(dicom(ELE), [JPEG])).toThrow(/does not transcode/);
    expect(() => negotiateDicom(dicom(ELE), [ELE, JPEG])).toThrow(NotAcceptableError);
    expect(() => negotiateDicom(parseAccept(`${dicom(ELE).length && 'multipart/related; type="application/dicom"; transfer-syntax=1.2.840.10008.1.2.1'}, multipart/related; type="application/dicom"; transfer-syntax=${JPEG}`), [ELE, JPEG])).not.toThrow();
  });
  it('406 for other media types', () => {
    expect(() => negotiateDicom(parseAccept('application/dicom+json'), [ELE])).toThrow(/multipart\/related; type="application\/dicom"/);
    expect(() => negotiateDicom(parseAccept('multipart/related; type="image/jpeg"'), [JPEG])).toThrow(NotAcceptableError);
  });
});

describe('negotiatePixels', () => {
  const mp = (type: string, ts?: string) => parseAccept(`multipart/related; type="${type}"${ts ? `; transfer-syntax=${ts}` : ''}`);
  it('native little endian: octet-stream, labelled Explicit VR LE', () => {
    expect(negotiatePixels(mp('application/octet-stream'), ILE)).toBe(`application/octet-stream; transfer-syntax=${ELE}`);
    expect(negotiatePixels(mp('application/octet-stream', '*'), ELE)).toBe(`application/octet-stream; transfer-syntax=${ELE}`);
    expect(negotiatePixels(parseAccept('*/*'), ELE)).toBe(`application/octet-stream; transfer-syntax=${ELE}`);
    expect(() => negotiatePixels(mp('image/jpeg'), ELE)).toThrow(NotAcceptableError);
  });
  it('compressed: the image type or octet-stream with transfer-syntax * / stored, never a default uncompressed', () => {
    expect(negotiatePixels(mp('image/jpeg'), JPEG)).toBe(`image/jpeg; transfer-syntax=${JPEG}`);
    expect(negotiatePixels(mp('application/octet-stream', '*'), JPEG)).toBe(`application/octet-stream; transfer-syntax=${JPEG}`);
    expect(negotiatePixels(parseAccept(undefined), JPEG)).toBe(`image/jpeg; transfer-syntax=${JPEG}`);
    expect(() => negotiatePixels(mp('application/octet-stream'), JPEG)).toThrow(/does not transcode/);
    expect(() => negotiatePixels(mp('image/jpeg', '1.2.840.10008.1.2.4.70'), JPEG)).toThrow(NotAcceptableError);
    expect(() => negotiatePixels(mp('image/jp2'), JPEG)).toThrow(NotAcceptableError);
    expect(negotiatePixels(parseAccept('*/*'), '1.2.840.10008.1.2.5')).toBe('application/octet-stream; transfer-syntax=1.2.840.10008.1.2.5');
  });
  it('big endian needs * or the stored syntax', () => {
    expect(() => negotiatePixels(mp('application/octet-stream'), EBE)).toThrow(NotAcceptableError);
    expect(negotiatePixels(mp('application/octet-stream', EBE), EBE)).toBe(`application/octet-stream; transfer-syntax=${EBE}`);
  });
  it('media types per syntax', () => {
    expect(frameMediaType('1.2.840.10008.1.2.4.70')).toBe('image/jpeg');
    expect(frameMediaType('1.2.840.10008.1.2.4.81')).toBe('image/jls');
    expect(frameMediaType('1.2.840.10008.1.2.4.91')).toBe('image/jp2');
    expect(frameMediaType('1.2.840.10008.1.2.5')).toBe('application/octet-stream');
  });
});

describe('negotiateBulk / negotiateJson', () => {
  it('bulk: octet-stream', () => {
    expect(negotiateBulk(parseAccept('multipart/related; type="application/octet-stream"'), ILE)).toBe(`application/octet-stream; transfer-syntax=${ELE}`);
    expect(() => negotiateBulk(parseAccept('multipart/related; type="application/octet-stream"'), EBE)).toThrow(NotAcceptableError);
    expect(() => negotiateBulk(parseAccept('image/jpeg'), ELE)).toThrow(NotAcceptableError);
  });
  it('json', () => {
    expect(() => negotiateJson(parseAccept('application/dicom+json'))).not.toThrow();
    expect(() => negotiateJson(parseAccept(undefined))).not.toThrow();
    expect(() => negotiateJson(parseAccept('multipart/related; type="application/dicom+xml"'))).toThrow(/application\/dicom\+json/);
  });
});
