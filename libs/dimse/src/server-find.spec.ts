import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type DicomDict, DimseError, type FindRequest } from './contract.js';
import { run, runOk, tempDir } from './testing/dcmtk.js';
import { startTestServer, type TestServer } from './testing/harness.js';

const STUDIES: DicomDict[] = [
  {
    '00080005': { vr: 'CS', Value: ['ISO_IR 100'] },
    '00080020': { vr: 'DA', Value: ['20240102'] },
    '00080052': { vr: 'CS', Value: ['STUDY'] },
    '00081030': { vr: 'LO' }, // empty return key stays empty
    '00081032': {
      vr: 'SQ',
      Value: [{ '00080100': { vr: 'SH', Value: ['CT-HEAD'] }, '00080102': { vr: 'SH', Value: ['LOCAL'] } }],
    },
    '00100010': { vr: 'PN', Value: [{ Alphabetic: 'Müller^Hans' }] },
    '00100020': { vr: 'LO', Value: ['PID-1'] },
    '0020000D': { vr: 'UI', Value: ['1.2.3.4.5.6.1'] },
    '00201208': { vr: 'IS', Value: [3] },
  },
  {
    '00080005': { vr: 'CS', Value: ['ISO_IR 100'] },
    '00080052': { vr: 'CS', Value: ['STUDY'] },
    '00100010': { vr: 'PN', Value: [{ Alphabetic: 'Ωmega^Zoë' }] }, // not Latin-1: switches to UTF-8
    '00100020': { vr: 'LO', Value: ['PID-2'] },
    '0020000D': { vr: 'UI', Value: ['1.2.3.4.5.6.2'] },
    '00201208': { vr: 'IS', Value: [12] },
  },
];

/** Reads response files with pydicom (an independent decoder). */
async function readWithPydicom(files: string[]): Promise<Record<string, unknown>[]> {
  const script = `
import json, sys, pydicom
out = []
for f in sys.argv[1:]:
    ds = pydicom.dcmread(f, force=True)
    d = {}
    for el in ds:
        if el.VR == 'SQ':
            d[el.keyword] = [{e.keyword: str(e.value) for e in item} for item in el.value]
        else:
            d[el.keyword] = None if el.value in (None, '') else str(el.value)
    out.append(d)
print(json.dumps(out))
`;
  const r = await runOk('/usr/bin/python3', ['-c', script, ...files]);
  return JSON.parse(r.stdout) as Record<string, unknown>[];
}

describe('DimseServer C-FIND with findscu', () => {
  let dir: { path: string; remove(): Promise<void> };
  let t: TestServer;
  const requests: FindRequest[] = [];
  let lastSignal: AbortSignal | undefined;

  beforeAll(async () => {
    dir = await tempDir();
    t = await startTestServer(dir.path, {
      onFind: async function* (req, signal) {
        requests.push(req);
        lastSignal = signal;
        const patientId = req.identifier['00100020']?.Value?.[0];
        if (patientId === 'BOOM') throw new Error('index unavailable');
        if (patientId === 'REFUSE') throw new DimseError(0xa700, 'too many matches');
        if (patientId === 'MANY') {
          for (let i = 0; i < 200; i++) {
            if (signal.aborted) return;
            await new Promise((r) => setTimeout(r, 10));
            yield { '00080052': { vr: 'CS', Value: ['STUDY'] }, '0020000D': { vr: 'UI', Value: [`1.2.3.${i}`] } };
          }
          return;
        }
        for (const s of STUDIES) yield s;
      },
    });
  });

  afterAll(async () => {
    await t?.close();
    await dir?.remove();
  });

  it('decodes the identifier, keeps empty return keys, and returns matches findscu can read', async () => {
    const out = join(dir.path, 'find1');
    await runOk('mkdir', ['-p', out]);
    const r = await run('findscu', [
      '-v', '-S', '-aec', 'VNA', '-X', '-od', out,
      '-k', 'QueryRetrieveLevel=STUDY',
      '-k', 'PatientName=M*',
      '-k', 'PatientID',
      '-k', 'StudyInstanceUID',
      '-k', 'StudyDescription',
      '-k', '0020,1208',
      '-k', '(0008,1032)[0].CodeValue',
      '127.0.0.1', String(t.port),
    ]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout + r.stderr).toMatch(/Received Final Find Response \(Success\)/);

    const req = requests.at(-1)!;
    expect(req.affectedSopClassUid).toBe('1.2.840.10008.5.1.4.1.2.2.1');
    expect(req.association.callingAeTitle).toBe('FINDSCU');
    const id = req.identifier;
    expect(id['00080052']).toEqual({ vr: 'CS', Value: ['STUDY'] });
    expect(id['00100010']).toEqual({ vr: 'PN', Value: [{ Alphabetic: 'M*' }] });
    expect(id['00100020']).toEqual({ vr: 'LO' });
    expect(id['00201208']).toEqual({ vr: 'IS' });
    expect(id['00081030']).toEqual({ vr: 'LO' });
    expect(id['00081032']).toEqual({ vr: 'SQ', Value: [{ '00080100': { vr: 'SH' } }] });

    const files = (await readdir(out)).filter((f) => f.startsWith('rsp')).sort().map((f) => join(out, f));
    expect(files).toHaveLength(2);
    const [a, b] = await readWithPydicom(files);
    expect(a.SpecificCharacterSet).toBe('ISO_IR 100');
    expect(a.PatientName).toBe('Müller^Hans');
    expect(a.StudyDescription).toBeNull();
    expect(a.NumberOfStudyRelatedInstances).toBe('3');
    expect(a.ProcedureCodeSequence).toEqual([{ CodeValue: 'CT-HEAD', CodingSchemeDesignator: 'LOCAL' }]);
    expect(b.SpecificCharacterSet).toBe('ISO_IR 192');
    expect(b.PatientName).toBe('Ωmega^Zoë');
    expect(b.StudyInstanceUID).toBe('1.2.3.4.5.6.2');
  });

  it('serves Patient Root queries', async () => {
    const r = await run('findscu', ['-v', '-P', '-aec', 'VNA', '-k', 'QueryRetrieveLevel=PATIENT', '-k', 'PatientID', '127.0.0.1', String(t.port)]);
    expect(r.code, r.stderr).toBe(0);
    expect(requests.at(-1)!.affectedSopClassUid).toBe('1.2.840.10008.5.1.4.1.2.1.1');
    expect((r.stdout + r.stderr).match(/Find Response: \d+ \(Pending\)/g)).toHaveLength(2);
  });

  it('maps handler failures to statuses and stays up', async () => {
    const boom = await run('findscu', ['-d', '-S', '-aec', 'VNA', '-k', 'QueryRetrieveLevel=STUDY', '-k', 'PatientID=BOOM', '127.0.0.1', String(t.port)]);
    expect(boom.stdout + boom.stderr).toMatch(/Status\s+: 0xc001/i);
    expect(boom.stdout + boom.stderr).toMatch(/index unavailable/);
    const refuse = await run('findscu', ['-d', '-S', '-aec', 'VNA', '-k', 'QueryRetrieveLevel=STUDY', '-k', 'PatientID=REFUSE', '127.0.0.1', String(t.port)]);
    expect(refuse.stdout + refuse.stderr).toMatch(/Status\s+: 0xa700/i);
    expect(refuse.stdout + refuse.stderr).toMatch(/too many matches/);
  });

  it('handles C-CANCEL', async () => {
    const r = await run('findscu', ['-v', '-S', '--cancel', '2', '-aec', 'VNA', '-k', 'QueryRetrieveLevel=STUDY', '-k', 'PatientID=MANY', '127.0.0.1', String(t.port)]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout + r.stderr).toMatch(/Final Find Response \(Cancel/);
    expect(lastSignal?.aborted).toBe(true);
  });
});
