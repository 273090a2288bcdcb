import { createReadStream } from 'node:fs';
import { readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildPart10Header, Part10Error, parsePart10Header, stripPart10Header } from './part10.js';
import { PYDICOM_TEST_FILES, runOk, tempDir } from './testing/dcmtk.js';

async function collect(stream: Readable): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const c of stream) parts.push(c as Buffer);
  return Buffer.concat(parts);
}

/** Data set offsets computed by pydicom (an independent reader of the meta group). */
async function pydicomOffsets(files: string[]): Promise<Record<string, { offset: number; ts: string; sop: string }>> {
  const script = `
import json, sys
from pydicom.filereader import read_preamble, _read_file_meta_info
out = {}
for f in sys.argv[1:]:
    try:
        with open(f, 'rb') as fp:
            if read_preamble(fp, False) is None: continue
            meta = _read_file_meta_info(fp)
            out[f] = {'offset': fp.tell(), 'ts': str(meta.get('TransferSyntaxUID', '')), 'sop': str(meta.get('MediaStorageSOPInstanceUID', ''))}
    except Exception:
        pass
print(json.dumps(out))
`;
  const r = await runOk('/usr/bin/python3', ['-c', script, ...files]);
  return JSON.parse(r.stdout) as Record<string, { offset: number; ts: string; sop: string }>;
}

describe('Part 10 header', () => {
  let dir: { path: string; remove(): Promise<void> };
  beforeAll(async () => {
    dir = await tempDir();
  });
  afterAll(async () => {
    await dir?.remove();
  });

  it('strips the header of pydicom test files exactly where pydicom ends the meta group', async () => {
    const files = (await readdir(PYDICOM_TEST_FILES)).filter((f) => f.endsWith('.dcm')).map((f) => join(PYDICOM_TEST_FILES, f));
    const expected = await pydicomOffsets(files);
    let checked = 0;
    for (const [file, exp] of Object.entries(expected)) {
      if (!exp.ts) continue; // meta without transfer syntax: rejected by design
      const whole = await readFile(file);
      const stripped = await stripPart10Header(createReadStream(file, { highWaterMark: 97 }));
      expect(stripped.headerLength, file).toBe(exp.offset);
      expect(stripped.transferSyntaxUid, file).toBe(exp.ts);
      expect(stripped.sopInstanceUid, file).toBe(exp.sop);
      const rest = await collect(stripped.datasetStream);
      expect(rest.equals(whole.subarray(exp.offset)), file).toBe(true);
      checked++;
    }
    expect(checked).toBeGreaterThan(40);
  });

  it('handles one-byte chunks, a missing group length, and deflated data sets', async () => {
    for (const name of ['CT_small.dcm', 'no_meta_group_length.dcm', 'image_dfl.dcm']) {
      const whole = await readFile(join(PYDICOM_TEST_FILES, name));
      const oneByte = Readable.from((function* () {
        for (let i = 0; i < whole.length; i++) yield whole.subarray(i, i + 1);
      })(), { objectMode: false });
      const s = await stripPart10Header(oneByte);
      const info = parsePart10Header(whole, true)!;
      expect(s.headerLength, name).toBe(info.headerLength);
      expect((await collect(s.datasetStream)).equals(whole.subarray(info.headerLength)), name).toBe(true);
    }
  });

  it('rejects non-DICOM input and propagates source errors', async () => {
    await expect(stripPart10Header(Readable.from([Buffer.alloc(300, 0x41)]))).rejects.toBeInstanceOf(Part10Error);
    await expect(stripPart10Header(Readable.from([Buffer.alloc(50)]))).rejects.toBeInstanceOf(Part10Error);
    const whole = await readFile(join(PYDICOM_TEST_FILES, 'CT_small.dcm'));
    const failing = Readable.from((async function* () {
      yield whole.subarray(0, 1000);
      throw new Error('read error');
    })(), { objectMode: false });
    const s = await stripPart10Header(failing);
    await expect(collect(s.datasetStream)).rejects.toThrow('read error');
  });

  it('builds a header that dcmtk and pydicom read, in front of unchanged data set bytes', async () => {
    const src = await readFile(join(PYDICOM_TEST_FILES, 'rtplan.dcm'));
    const info = parsePart10Header(src, true)!;
    const dataset = src.subarray(info.headerLength);
    const header = buildPart10Header({
      sopClassUid: info.sopClassUid,
      sopInstanceUid: info.sopInstanceUid,
      transferSyntaxUid: info.transferSyntaxUid,
      sourceAeTitle: 'MODALITY1',
    });
    const path = join(dir.path, 'rebuilt.dcm');
    await writeFile(path, Buffer.concat([header, dataset]));
    const dump = await runOk('dcmdump', ['-M', '+L', path]);
    expect(dump.stdout + dump.stderr).not.toMatch(/[EW]: /);
    expect(dump.stdout).toMatch(/\(0002,0016\) AE \[MODALITY1\]/);
    expect(dump.stdout).toContain(`(0002,0003) UI [${info.sopInstanceUid}]`);
    const py = await runOk('/usr/bin/python3', [
      '-c',
      'import sys,pydicom; d=pydicom.dcmread(sys.argv[1]); print(d.file_meta.FileMetaInformationGroupLength, d.file_meta.ImplementationClassUID, d.file_meta.MediaStorageSOPInstanceUID)',
      path,
    ]);
    const [groupLength, implUid, sop] = py.stdout.trim().split(' ');
    expect(Number(groupLength)).toBe(header.length - 132 - 12);
    expect(implUid.startsWith('2.25.')).toBe(true);
    expect(sop).toBe(info.sopInstanceUid);
    const reparsed = parsePart10Header(await readFile(path), true)!;
    expect(reparsed.headerLength).toBe(header.length);
    expect(reparsed.sourceAeTitle).toBe('MODALITY1');
  });
});
