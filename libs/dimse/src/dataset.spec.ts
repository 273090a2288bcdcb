import { readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Command, decodeCommand, encodeCommand, CommandField, truncateComment } from './command.js';
import type { DicomDict } from './contract.js';
import { DatasetError, decodeDataset, encodeDataset, tagKey } from './dataset.js';
import { buildPart10Header, parsePart10Header } from './part10.js';
import { PYDICOM_TEST_FILES, runOk, tempDir } from './testing/dcmtk.js';
import { TransferSyntax } from './uids.js';

const CHARSET_FILES = join(PYDICOM_TEST_FILES, '..', 'charset_files');

const SYNTAXES = [TransferSyntax.ImplicitVRLittleEndian, TransferSyntax.ExplicitVRLittleEndian, TransferSyntax.ExplicitVRBigEndian];

const SAMPLE: DicomDict = {
  '00080005': { vr: 'CS', Value: ['ISO_IR 192'] },
  '00080016': { vr: 'UI', Value: ['1.2.840.10008.5.1.4.1.1.2'] },
  '00080020': { vr: 'DA' },
  '00080052': { vr: 'CS', Value: ['IMAGE'] },
  '00080061': { vr: 'CS', Value: ['CT', 'MR'] },
  '00081030': { vr: 'LO', Value: ['Tête \\ thorax'.replace(' \\ ', ' ')] },
  '00081110': { vr: 'SQ', Value: [{ '00081150': { vr: 'UI', Value: ['1.2.3'] }, '00081155': { vr: 'UI' } }, {}] },
  '00081111': { vr: 'SQ' },
  '00100010': { vr: 'PN', Value: [{ Alphabetic: 'Yamada^Tarou', Ideographic: '山田^太郎', Phonetic: 'やまだ^たろう' }] },
  '00101010': { vr: 'AS', Value: ['042Y'] },
  '00101020': { vr: 'DS', Value: [1.75, -0.000125, 123456789012.5] },
  '00201206': { vr: 'IS', Value: [12, null, -3] },
  '00280010': { vr: 'US', Value: [512] },
  '00280106': { vr: 'US', Value: [0] },
  '00189219': { vr: 'SS', Value: [-5] },
  '00209158': { vr: 'LT', Value: ['line one\r\nline two \\ with backslash'] },
  '00409224': { vr: 'FD', Value: [0.5, 1e-300] },
  '0018602C': { vr: 'FD' },
  '00200032': { vr: 'DS', Value: [-125, 0, 12.5] },
  '00280030': { vr: 'DS', Value: [0.5, 0.5] },
  '0020000D': { vr: 'UI', Value: ['1.2.840.113619.2.55.3.604688119.969.1268071029.320'] },
  '00209165': { vr: 'AT', Value: ['00209056', '00209057'] },
  '00540081': { vr: 'US', Value: [1, 2, 3] },
  '00090010': { vr: 'LO', Value: ['PRIVATE CREATOR'] },
  '00091011': { vr: 'UN', InlineBinary: Buffer.from([1, 2, 3, 4]).toString('base64') },
  '7FE00010': { vr: 'OB', InlineBinary: Buffer.from([0, 1, 2, 3, 4, 5]).toString('base64') },
};

describe('dataset codec', () => {
  let dir: { path: string; remove(): Promise<void> };
  beforeAll(async () => {
    dir = await tempDir();
  });
  afterAll(async () => {
    await dir?.remove();
  });

  it('round-trips values, empty values, multi-values and sequences in every uncompressed syntax', () => {
    for (const ts of SYNTAXES) {
      const decoded = decodeDataset(encodeDataset(SAMPLE, ts), ts);
      const expected = structuredClone(SAMPLE);
      expect(decoded, ts).toEqual(expected);
    }
  });

  it('produces data sets dcmtk reads without complaint', async () => {
    const ts = TransferSyntax.ExplicitVRLittleEndian;
    const path = join(dir.path, 'sample.dcm');
    const body = encodeDataset({ ...SAMPLE, '00080018': { vr: 'UI', Value: ['1.2.3.4'] } }, ts);
    await writeFile(path, Buffer.concat([buildPart10Header({ sopClassUid: '1.2.840.10008.5.1.4.1.1.2', sopInstanceUid: '1.2.3.4', transferSyntaxUid: ts }), body]));
    const dump = await runOk('dcmdump', ['+U8', path]);
    expect(dump.stderr).toBe('');
    expect(dump.stdout).toContain('Yamada^Tarou=山田^太郎=やまだ^たろう');
    expect(dump.stdout).toMatch(/\(0020,1206\) IS \[12\\\\-3\]/);
    expect(dump.stdout).toMatch(/\(0008,0020\) DA \(no value available\)/);
  });

  it('switches to UTF-8 when a value does not fit the declared character set, keeps it otherwise', () => {
    const ts = TransferSyntax.ExplicitVRLittleEndian;
    const latin: DicomDict = { '00080005': { vr: 'CS', Value: ['ISO_IR 100'] }, '00100010': { vr: 'PN', Value: [{ Alphabetic: 'Müller^Jürgen' }] } };
    const a = encodeDataset(latin, ts);
    expect(a.includes(Buffer.from('M\xfcller', 'latin1'))).toBe(true);
    expect(decodeDataset(a, ts)).toEqual(latin);
    const greek: DicomDict = { '00080005': { vr: 'CS', Value: ['ISO_IR 100'] }, '00100010': { vr: 'PN', Value: [{ Alphabetic: 'Διονυσιος' }] } };
    const b = decodeDataset(encodeDataset(greek, ts), ts);
    expect(b['00080005'].Value).toEqual(['ISO_IR 192']);
    expect(b['00100010'].Value).toEqual([{ Alphabetic: 'Διονυσιος' }]);
    const noCharset: DicomDict = { '00100010': { vr: 'PN', Value: ['Zoë'] } };
    expect(decodeDataset(encodeDataset(noCharset, ts), ts)['00080005'].Value).toEqual(['ISO_IR 192']);
    const greekDeclared: DicomDict = { '00080005': { vr: 'CS', Value: ['ISO_IR 126'] }, '00100010': { vr: 'PN', Value: [{ Alphabetic: 'Διονυσιος' }] } };
    const c = encodeDataset(greekDeclared, ts);
    expect(decodeDataset(c, ts)).toEqual(greekDeclared);
    expect(c.length).toBeLessThan(encodeDataset(greek, ts).length);
  });

  it('decodes the character sets of pydicom\'s test files like pydicom does', async () => {
    const files = (await readdir(CHARSET_FILES)).filter((f) => f.endsWith('.dcm'));
    const script = `
import json, sys, pydicom
out = {}
for f in sys.argv[1:]:
    ds = pydicom.dcmread(f)
    out[f] = str(ds.PatientName) if 'PatientName' in ds else None
print(json.dumps(out))
`;
    const paths = files.map((f) => join(CHARSET_FILES, f));
    const expected = JSON.parse((await runOk('/usr/bin/python3', ['-c', script, ...paths])).stdout) as Record<string, string | null>;
    let compared = 0;
    for (const path of paths) {
      if (!expected[path]) continue;
      const whole = await readFile(path);
      const info = parsePart10Header(whole, true)!;
      const ds = decodeDataset(whole.subarray(info.headerLength), info.transferSyntaxUid);
      const pn = ds['00100010']?.Value?.[0] as Record<string, string>;
      const joined = [pn.Alphabetic ?? '', pn.Ideographic ?? '', pn.Phonetic ?? ''].join('=').replace(/=+$/, '');
      expect(joined, path).toBe(expected[path]);
      compared++;
    }
    expect(compared).toBeGreaterThanOrEqual(14);
  });

  it('rejects malformed input with DatasetError', () => {
    const ts = TransferSyntax.ExplicitVRLittleEndian;
    const good = encodeDataset(SAMPLE, ts);
    expect(() => decodeDataset(good.subarray(0, good.length - 3), ts)).toThrow(DatasetError);
    const badVr = Buffer.from(good);
    badVr.write('zz', 4, 'latin1');
    expect(() => decodeDataset(badVr, ts)).toThrow(DatasetError);
    // Sequences nested beyond the limit.
    let nested: DicomDict = { '00100010': { vr: 'PN', Value: ['X'] } };
    for (let i = 0; i < 40; i++) nested = { '00081110': { vr: 'SQ', Value: [nested] } };
    expect(() => decodeDataset(encodeDataset(nested, ts), ts)).toThrow(/nested/);
  });

  it('decodes undefined-length sequences and items', () => {
    // (0008,1110) SQ undefined length, one undefined-length item with (0008,1150), implicit VR LE.
    const item = Buffer.concat([
      Buffer.from([0x08, 0x00, 0x50, 0x11, 0x06, 0x00, 0x00, 0x00]),
      Buffer.from('1.2.3\0', 'latin1'),
    ]);
    const bytes = Buffer.concat([
      Buffer.from([0x08, 0x00, 0x10, 0x11, 0xff, 0xff, 0xff, 0xff]),
      Buffer.from([0xfe, 0xff, 0x00, 0xe0, 0xff, 0xff, 0xff, 0xff]),
      item,
      Buffer.from([0xfe, 0xff, 0x0d, 0xe0, 0, 0, 0, 0]),
      Buffer.from([0xfe, 0xff, 0xdd, 0xe0, 0, 0, 0, 0]),
      Buffer.from([0x10, 0x00, 0x20, 0x00, 0x02, 0x00, 0x00, 0x00]),
      Buffer.from('ID', 'latin1'),
    ]);
    expect(decodeDataset(bytes, TransferSyntax.ImplicitVRLittleEndian)).toEqual({
      '00081110': { vr: 'SQ', Value: [{ '00081150': { vr: 'UI', Value: ['1.2.3'] } }] },
      '00100020': { vr: 'LO', Value: ['ID'] },
    });
  });

  it('encodes and decodes command sets', () => {
    const cmd = {
      commandField: CommandField.C_MOVE_RSP,
      hasDataset: true,
      messageIdBeingRespondedTo: 3,
      affectedSopClassUid: '1.2.840.10008.5.1.4.1.2.2.2',
      status: 0xb000,
      errorComment: 'x'.repeat(100),
      remaining: 0,
      completed: 5,
      failed: 1,
      warning: 0,
    };
    const bytes = encodeCommand(cmd);
    expect(bytes.readUInt32LE(8)).toBe(bytes.length - 12);
    expect(decodeCommand(bytes)).toEqual({ ...cmd, errorComment: 'x'.repeat(64) });
  });

  it('names tags of groups from 8000 up as eight hex digits, like any other', () => {
    expect(tagKey(0xfffc, 0xfffc)).toBe('FFFCFFFC');
    expect(tagKey(0x0000, 0x0901)).toBe('00000901');
  });

  it('writes command sets byte for byte as the general data set encoder does, and reads them back', () => {
    const commands: Command[] = [
      { commandField: CommandField.C_STORE_RQ, hasDataset: true, messageId: 65535, affectedSopClassUid: '1.2.840.10008.5.1.4.1.1.2', affectedSopInstanceUid: '2.25.123', priority: 0, moveOriginatorAeTitle: 'MOVESCU', moveOriginatorMessageId: 7 },
      { commandField: CommandField.C_STORE_RSP, hasDataset: false, messageIdBeingRespondedTo: 1, affectedSopClassUid: '1.2.840.10008.5.1.4.1.1.4', affectedSopInstanceUid: '1.2.3.44', status: 0 },
      { commandField: CommandField.C_MOVE_RQ, hasDataset: true, messageId: 2, affectedSopClassUid: '1.2.840.10008.5.1.4.1.2.2.2', priority: 2, moveDestination: 'DEST AE' },
      { commandField: CommandField.C_GET_RSP, hasDataset: false, messageIdBeingRespondedTo: 9, affectedSopClassUid: '1.2.840.10008.5.1.4.1.2.2.3', status: 0xff00, remaining: 279, completed: 1, failed: 0, warning: 0 },
      { commandField: CommandField.C_FIND_RSP, hasDataset: false, messageIdBeingRespondedTo: 4, status: 0xa900, errorComment: 'bad key', offendingElements: ['00100010', '0020000D', 'FFFCFFFC'], errorId: 3 },
      { commandField: CommandField.C_ECHO_RQ, hasDataset: false, messageId: 1, affectedSopClassUid: '1.2.840.10008.1.1' },
      { commandField: CommandField.N_ACTION_RQ, hasDataset: true, messageId: 5, requestedSopClassUid: '1.2.840.10008.1.20.1', requestedSopInstanceUid: '1.2.840.10008.1.20.1.1', actionTypeId: 1 },
      { commandField: CommandField.N_EVENT_REPORT_RQ, hasDataset: true, messageId: 6, affectedSopClassUid: '1.2.840.10008.1.20.1', affectedSopInstanceUid: '1.2.840.10008.1.20.1.1', eventTypeId: 2 },
    ];
    for (const cmd of commands) {
      const fast = encodeCommand(cmd);
      expect(fast.equals(referenceEncoding(cmd)), JSON.stringify(cmd)).toBe(true);
      expect(decodeCommand(fast)).toEqual(cmd);
      // The general decoder reads the same elements.
      const general = decodeDataset(fast, TransferSyntax.ImplicitVRLittleEndian);
      expect(general['00000100']?.Value).toEqual([cmd.commandField]);
      if (cmd.affectedSopInstanceUid) expect(general['00001000']?.Value).toEqual([cmd.affectedSopInstanceUid]);
    }
  });

  it('reads what other implementations may send: odd padding, unknown group 0000 elements, no group length', () => {
    const body = encodeDataset(
      {
        '00000001': { vr: 'UL', Value: [0] }, // retired Length to End
        '00000002': { vr: 'UI', Value: ['1.2.3'] },
        '00000100': { vr: 'US', Value: [CommandField.C_STORE_RSP] },
        '00000120': { vr: 'US', Value: [12] },
        '00000800': { vr: 'US', Value: [0x0101] },
        '00000900': { vr: 'US', Value: [0xb007] },
        '00000902': { vr: 'LO', Value: ['  coerced '] },
        '00001000': { vr: 'UI', Value: ['1.2.3.4.5'] },
        '00004000': { vr: 'AT', Value: ['00100020'] }, // retired, not a Command field
      },
      TransferSyntax.ImplicitVRLittleEndian,
    );
    expect(decodeCommand(body)).toEqual({
      commandField: CommandField.C_STORE_RSP,
      hasDataset: false,
      affectedSopClassUid: '1.2.3',
      messageIdBeingRespondedTo: 12,
      status: 0xb007,
      errorComment: 'coerced',
      affectedSopInstanceUid: '1.2.3.4.5',
    });
    const store = encodeCommand({ commandField: CommandField.C_STORE_RQ, hasDataset: true, messageId: 1 });
    expect(() => decodeCommand(store.subarray(0, store.length - 1))).toThrow(/malformed command set/);
    expect(() => decodeCommand(Buffer.concat([store, encodeDataset({ '00100010': { vr: 'PN', Value: [{ Alphabetic: 'X' }] } }, TransferSyntax.ImplicitVRLittleEndian)]))).toThrow(
      /00100010 outside group 0000/,
    );
    expect(() => decodeCommand(encodeDataset({ '00000110': { vr: 'US', Value: [1] } }, TransferSyntax.ImplicitVRLittleEndian))).toThrow(/without Command Field/);
  });
});

/** A command set as the general data set encoder writes it (what encodeCommand did before it wrote them directly). */
function referenceEncoding(cmd: Command): Buffer {
  const d: DicomDict = {};
  const us = (key: string, v: number | undefined) => {
    if (v !== undefined) d[key] = { vr: 'US', Value: [v & 0xffff] };
  };
  const str = (key: string, vr: string, v: string | undefined) => {
    if (v !== undefined) d[key] = { vr, Value: [v] };
  };
  str('00000002', 'UI', cmd.affectedSopClassUid);
  str('00000003', 'UI', cmd.requestedSopClassUid);
  us('00000100', cmd.commandField);
  us('00000110', cmd.messageId);
  us('00000120', cmd.messageIdBeingRespondedTo);
  str('00000600', 'AE', cmd.moveDestination);
  us('00000700', cmd.priority);
  us('00000800', cmd.hasDataset ? 0x0102 : 0x0101);
  us('00000900', cmd.status);
  if (cmd.offendingElements?.length) d['00000901'] = { vr: 'AT', Value: cmd.offendingElements };
  if (cmd.errorComment !== undefined) str('00000902', 'LO', truncateComment(cmd.errorComment));
  us('00000903', cmd.errorId);
  str('00001000', 'UI', cmd.affectedSopInstanceUid);
  str('00001001', 'UI', cmd.requestedSopInstanceUid);
  us('00001002', cmd.eventTypeId);
  us('00001008', cmd.actionTypeId);
  us('00001020', cmd.remaining);
  us('00001021', cmd.completed);
  us('00001022', cmd.failed);
  us('00001023', cmd.warning);
  str('00001030', 'AE', cmd.moveOriginatorAeTitle);
  us('00001031', cmd.moveOriginatorMessageId);
  const body = encodeDataset(d, TransferSyntax.ImplicitVRLittleEndian);
  const groupLength = Buffer.alloc(12);
  groupLength.writeUInt32LE(4, 4);
  groupLength.writeUInt32LE(body.length, 8);
  return Buffer.concat([groupLength, body]);
}
