import { existsSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { parsePart10Header, parseWithDcmjs, str } from './header.js';
import { Tag } from './tags.js';

const PYDICOM = '/usr/lib/python3/dist-packages/pydicom/data/test_files';
const files = existsSync(PYDICOM) ? readdirSync(PYDICOM).filter((f) => f.endsWith('.dcm')).sort() : [];
const KEYS = [Tag.SOPClassUID, Tag.SOPInstanceUID, Tag.StudyInstanceUID, Tag.SeriesInstanceUID, Tag.StudyDate, Tag.Modality, Tag.PatientID];

describe('parsePart10Header (own decoder, dcmjs as fallback)', () => {
  it.skipIf(files.length === 0)('agrees with dcmjs on the identifying attributes of every pydicom test file dcmjs reads', () => {
    let compared = 0;
    for (const f of files) {
      const bytes = readFileSync(path.join(PYDICOM, f));
      const head = bytes.subarray(0, 64 * 1024);
      const complete = bytes.length <= head.length;
      let reference;
      try {
        reference = parseWithDcmjs(head, { complete });
      } catch {
        continue;
      }
      const header = parsePart10Header(head, { complete });
      expect(header.transferSyntaxUid, f).toBe(reference.transferSyntaxUid);
      expect(header.hasPixelData, f).toBe(reference.hasPixelData);
      for (const key of KEYS) expect(str(header.dataset, key), `${f} ${key}`).toBe(str(reference.dataset, key));
      compared++;
    }
    expect(compared).toBeGreaterThan(40);
  });

  it('stops at pixel data, keeps small binary values inline and marks large ones as bulk data', () => {
    const ds = Buffer.concat([
      el(0x0008, 0x0016, 'UI', Buffer.from('1.2.840.10008.5.1.4.1.1.7\0')),
      el(0x0008, 0x0018, 'UI', Buffer.from('1.2.3.4\0')),
      el(0x0008, 0x0020, 'UN', Buffer.from('20200102')), // UN decoded with the dictionary VR
      el(0x0009, 0x0010, 'OB', Buffer.alloc(4, 1)),
      el(0x0009, 0x0011, 'OB', Buffer.alloc(4096, 2)),
      el(0x7fe0, 0x0010, 'OW', Buffer.alloc(16)),
    ]);
    const header = parsePart10Header(part10(ds), { complete: true });
    expect(header.hasPixelData).toBe(true);
    expect(header.dataset[Tag.PixelData]).toBeUndefined();
    expect(header.dataset['00080020']).toEqual({ vr: 'DA', Value: ['20200102'] });
    expect(header.dataset['00090010']).toEqual({ vr: 'OB', InlineBinary: 'AQEBAQ==' });
    expect(header.dataset['00090011']).toEqual({ vr: 'OB', BulkDataURI: '' });
    expect(header.meta['00020000']).toBeUndefined();
    expect(str(header.meta, '00020010')).toBe('1.2.840.10008.1.2.1');
  });

  it('a head that ends inside an element falls back to the tolerant parse (more is read by the caller)', () => {
    const ds = Buffer.concat([el(0x0008, 0x0018, 'UI', Buffer.from('1.2.3.4\0')), el(0x0008, 0x103e, 'LO', Buffer.from('a long description'))]);
    const bytes = part10(ds);
    const header = parsePart10Header(bytes.subarray(0, bytes.length - 5), { complete: false });
    expect(str(header.dataset, Tag.SOPInstanceUID)).toBe('1.2.3.4');
    expect(header.hasPixelData).toBe(false);
  });
});

function el(group: number, element: number, vr: string, value: Buffer): Buffer {
  const long = ['OB', 'OW', 'UN', 'SQ', 'UT'].includes(vr);
  const h = Buffer.alloc(long ? 12 : 8);
  h.writeUInt16LE(group, 0);
  h.writeUInt16LE(element, 2);
  h.write(vr, 4, 'latin1');
  if (long) h.writeUInt32LE(value.length, 8);
  else h.writeUInt16LE(value.length, 6);
  return Buffer.concat([h, value]);
}

function part10(dataset: Buffer): Buffer {
  const ts = Buffer.from('1.2.840.10008.1.2.1\0');
  const metaBody = Buffer.concat([el(0x0002, 0x0001, 'OB', Buffer.from([0, 1])), el(0x0002, 0x0010, 'UI', ts)]);
  const groupLength = Buffer.alloc(4);
  groupLength.writeUInt32LE(metaBody.length);
  return Buffer.concat([Buffer.alloc(128), Buffer.from('DICM'), el(0x0002, 0x0000, 'UL', groupLength), metaBody, dataset]);
}
