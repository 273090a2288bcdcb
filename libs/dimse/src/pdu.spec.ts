import { createServer } from 'node:net';
import { describe, expect, it } from 'vitest';
import {
  AbortReason,
  type AssociateAcPdu,
  type AssociateRqPdu,
  decodePdu,
  emptyUserInformation,
  encodePdu,
  type Pdu,
  PduError,
  PduReader,
  PduType,
} from './pdu.js';
import { run } from './testing/dcmtk.js';
import { APPLICATION_CONTEXT_NAME } from './uids.js';

const rq: AssociateRqPdu = {
  type: PduType.AssociateRq,
  protocolVersion: 1,
  calledAeTitle: 'ARCHIVE',
  callingAeTitle: 'MODALITY',
  applicationContext: APPLICATION_CONTEXT_NAME,
  presentationContexts: [
    { id: 1, abstractSyntax: '1.2.840.10008.1.1', transferSyntaxes: ['1.2.840.10008.1.2'] },
    { id: 3, abstractSyntax: '1.2.840.10008.5.1.4.1.1.2', transferSyntaxes: ['1.2.840.10008.1.2.4.50', '1.2.840.10008.1.2.1'] },
  ],
  userInformation: {
    ...emptyUserInformation(),
    maxPduLength: 262144,
    implementationClassUid: '1.2.3.4.5',
    implementationVersionName: 'TEST_1',
    asyncOperations: { maxInvoked: 4, maxPerformed: 2 },
    roleSelections: [{ sopClassUid: '1.2.840.10008.5.1.4.1.1.2', scuRole: false, scpRole: true }],
    extendedNegotiations: [{ sopClassUid: '1.2.840.10008.5.1.4.1.2.2.1', info: Buffer.from([1, 1, 0]) }],
    commonExtendedNegotiations: [
      { sopClassUid: '1.2.3.9', serviceClassUid: '1.2.840.10008.4.2', relatedGeneralSopClassUids: ['1.2.840.10008.5.1.4.1.1.2'] },
    ],
    userIdentity: { type: 2, positiveResponseRequested: true, primaryField: Buffer.from('user'), secondaryField: Buffer.from('secret') },
  },
};

const ac: AssociateAcPdu = {
  type: PduType.AssociateAc,
  protocolVersion: 1,
  calledAeTitle: 'ARCHIVE',
  callingAeTitle: 'MODALITY',
  applicationContext: APPLICATION_CONTEXT_NAME,
  presentationContexts: [
    { id: 1, result: 0, transferSyntax: '1.2.840.10008.1.2' },
    { id: 3, result: 4, transferSyntax: '1.2.840.10008.1.2.4.50' },
  ],
  userInformation: { ...emptyUserInformation(), maxPduLength: 16384, implementationClassUid: '1.2.3', userIdentityResponse: Buffer.from('ok') },
};

const others: Pdu[] = [
  { type: PduType.AssociateRj, result: 1, source: 1, reason: 7 },
  {
    type: PduType.PDataTf,
    pdvs: [
      { contextId: 1, isCommand: true, isLast: true, data: Buffer.from([1, 2, 3, 4]) },
      { contextId: 3, isCommand: false, isLast: false, data: Buffer.alloc(1000, 9) },
    ],
  },
  { type: PduType.ReleaseRq },
  { type: PduType.ReleaseRp },
  { type: PduType.Abort, source: 2, reason: 6 },
];

describe('PDU codec', () => {
  it('round-trips every PDU type, user information sub-items included', () => {
    for (const pdu of [rq, ac, ...others]) expect(decodePdu(encodePdu(pdu))).toEqual(pdu);
  });

  it('reads PDUs split and coalesced at every boundary', () => {
    const all = [rq, ac, ...others];
    const stream = Buffer.concat(all.map(encodePdu));
    for (const chunk of [1, 2, 3, 5, 7, 64, 1000, stream.length]) {
      const reader = new PduReader(1 << 20);
      const got: Pdu[] = [];
      for (let off = 0; off < stream.length; off += chunk) {
        reader.push(stream.subarray(off, off + chunk));
        for (let p = reader.next(); p; p = reader.next()) got.push(p);
      }
      expect(got).toEqual(all);
      expect(reader.bufferedBytes).toBe(0);
    }
  });

  it('rejects unknown PDU types and oversized PDUs from the header alone', () => {
    const reader = new PduReader(1 << 20);
    reader.push(Buffer.from('GET / HTTP/1.1\r\n'));
    expect(() => reader.next()).toThrow(PduError);
    const big = new PduReader(65536);
    const head = Buffer.alloc(6);
    head[0] = PduType.PDataTf;
    head.writeUInt32BE(65536 + 1000, 2);
    big.push(head);
    try {
      big.next();
      expect.unreachable();
    } catch (e) {
      expect(e).toBeInstanceOf(PduError);
    }
    const badType = new PduReader(65536);
    badType.push(Buffer.from([0x09, 0, 0, 0, 0, 4, 0, 0, 0, 0]));
    try {
      badType.next();
      expect.unreachable();
    } catch (e) {
      expect((e as PduError).abortReason).toBe(AbortReason.UnrecognizedPdu);
    }
  });

  it('rejects malformed PDV items and truncated associate PDUs', () => {
    const pdv = Buffer.from([PduType.PDataTf, 0, 0, 0, 0, 6, 0, 0, 0, 9, 1, 3]);
    expect(() => decodePdu(pdv)).toThrow(PduError);
    const trunc = encodePdu(rq).subarray(0, 40);
    trunc.writeUInt32BE(34, 2);
    expect(() => decodePdu(trunc)).toThrow(PduError);
  });

  it('parses the A-ASSOCIATE-RQ of dcmtk getscu (role selection, extended negotiation)', async () => {
    let captured = Buffer.alloc(0);
    const server = createServer((s) => {
      s.on('data', (d: Buffer) => {
        captured = Buffer.concat([captured, d]);
        const reader = new PduReader(1 << 20);
        reader.push(captured);
        try {
          if (reader.next()) s.destroy();
        } catch {
          s.destroy();
        }
      });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
    const port = (server.address() as { port: number }).port;
    await run('getscu', ['-S', '-aec', 'ANY', '-k', 'QueryRetrieveLevel=STUDY', '127.0.0.1', String(port)]);
    server.close();
    const reader = new PduReader(1 << 20);
    reader.push(captured);
    const pdu = reader.next();
    expect(pdu?.type).toBe(PduType.AssociateRq);
    const got = pdu as AssociateRqPdu;
    expect(got.callingAeTitle).toBe('GETSCU');
    expect(got.calledAeTitle).toBe('ANY');
    expect(got.userInformation.implementationVersionName).toMatch(/^OFFIS_DCMTK/);
    expect(got.presentationContexts[0].abstractSyntax).toBe('1.2.840.10008.5.1.4.1.2.2.3');
    expect(got.presentationContexts.length).toBeGreaterThan(10);
    const ct = got.userInformation.roleSelections.find((r) => r.sopClassUid === '1.2.840.10008.5.1.4.1.1.2');
    expect(ct).toEqual({ sopClassUid: '1.2.840.10008.5.1.4.1.1.2', scuRole: false, scpRole: true });
  });
});
