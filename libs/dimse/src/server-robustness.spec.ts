import { connect, type Socket } from 'node:net';
import { Readable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AssociationRejectedError } from './association.js';
import { DimseClient } from './client.js';
import { CommandField, encodeCommand } from './command.js';
import { DimseStatusCode } from './contract.js';
import { emptyUserInformation, encodePdu, type Pdu, pDataHeader, PduReader, PduType } from './pdu.js';
import { run, tempDir } from './testing/dcmtk.js';
import { memoryLogger, startTestServer, type TestServer } from './testing/harness.js';
import { APPLICATION_CONTEXT_NAME, SopClass, TransferSyntax } from './uids.js';

/** A raw TCP peer speaking PDUs, to misbehave in ways real SCUs do not. */
class RawPeer {
  private reader = new PduReader(16 * 1024 * 1024);
  private waiters: ((p: Pdu | null) => void)[] = [];
  private queue: Pdu[] = [];
  ended = false;
  readonly closed: Promise<void>;

  private constructor(readonly socket: Socket) {
    this.closed = new Promise((resolve) => socket.on('close', () => resolve()));
    socket.on('data', (d: Buffer) => {
      this.reader.push(d);
      for (let p = this.reader.next(); p; p = this.reader.next()) {
        const w = this.waiters.shift();
        if (w) w(p);
        else this.queue.push(p);
      }
    });
    socket.on('error', () => undefined);
    socket.on('close', () => {
      this.ended = true;
      for (const w of this.waiters.splice(0)) w(null);
    });
  }

  static connect(port: number): Promise<RawPeer> {
    return new Promise((resolve, reject) => {
      const s = connect({ host: '127.0.0.1', port }, () => resolve(new RawPeer(s)));
      s.once('error', reject);
    });
  }

  next(timeoutMs = 5000): Promise<Pdu | null> {
    const q = this.queue.shift();
    if (q) return Promise.resolve(q);
    if (this.ended) return Promise.resolve(null);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('no PDU received')), timeoutMs);
      this.waiters.push((p) => {
        clearTimeout(timer);
        resolve(p);
      });
    });
  }

  write(b: Buffer): Promise<void> {
    return new Promise((resolve, reject) => this.socket.write(b, (e) => (e ? reject(e) : resolve())));
  }

  async associate(abstractSyntax: string, ts: string = TransferSyntax.ExplicitVRLittleEndian, chunked = false): Promise<Pdu | null> {
    const rq = encodePdu({
      type: PduType.AssociateRq,
      protocolVersion: 1,
      calledAeTitle: 'VNA',
      callingAeTitle: 'RAW',
      applicationContext: APPLICATION_CONTEXT_NAME,
      presentationContexts: [{ id: 1, abstractSyntax, transferSyntaxes: [ts] }],
      userInformation: { ...emptyUserInformation(), maxPduLength: 16384, implementationClassUid: '1.2.3.4' },
    });
    if (chunked) {
      // One byte per write: the server must reassemble.
      for (let i = 0; i < rq.length; i++) {
        this.socket.write(rq.subarray(i, i + 1));
        if (i % 50 === 0) await new Promise((r) => setImmediate(r));
      }
    } else await this.write(rq);
    return this.next();
  }
}

function pdata(contextId: number, isCommand: boolean, isLast: boolean, data: Buffer): Buffer {
  return Buffer.concat([pDataHeader(contextId, isCommand, isLast, data.length), data]);
}

async function echoWorks(port: number): Promise<boolean> {
  const r = await run('echoscu', ['-aec', 'VNA', '127.0.0.1', String(port)]);
  return r.code === 0;
}

describe('DimseServer robustness', () => {
  let dir: { path: string; remove(): Promise<void> };
  let t: TestServer;
  const logger = memoryLogger();
  const storeErrors: Error[] = [];
  let slowConsumerStatus = 0;

  beforeAll(async () => {
    dir = await tempDir();
    t = await startTestServer(
      dir.path,
      (store) => ({
        onAssociationRequest: (info) =>
          info.callingAeTitle === 'BADGUY' ? { accept: false, result: 1, source: 1, reason: 3 } : { accept: true },
        onStore: async (req, dataset) => {
          if (req.affectedSopInstanceUid === 'slow.consumer') {
            // Never reads: the layer must not deadlock nor buffer the whole object.
            await new Promise((r) => setTimeout(r, 300));
            return { status: DimseStatusCode.OutOfResources, errorComment: 'busy' };
          }
          if (req.affectedSopInstanceUid === 'lazy.success') {
            // Claims success without reading: must not be confirmed.
            return { status: 0 };
          }
          try {
            return await store(req, dataset);
          } catch (e) {
            storeErrors.push(e as Error);
            throw e;
          }
        },
      }),
      { artimTimeoutMs: 500, logger },
    );
  });

  afterAll(async () => {
    await t?.close();
    await dir?.remove();
  });

  it('aborts on garbage bytes and keeps serving', async () => {
    const peer = await RawPeer.connect(t.port);
    await peer.write(Buffer.from('GET / HTTP/1.1\r\nHost: x\r\n\r\n'));
    const reply = await peer.next();
    expect(reply?.type).toBe(PduType.Abort);
    await peer.closed;
    expect(await echoWorks(t.port)).toBe(true);
  });

  it('aborts an absurd PDU length without buffering it', async () => {
    const peer = await RawPeer.connect(t.port);
    const head = Buffer.alloc(6);
    head[0] = PduType.AssociateRq;
    head.writeUInt32BE(0xfffffff0, 2);
    await peer.write(head);
    expect((await peer.next())?.type).toBe(PduType.Abort);
    await peer.closed;
  });

  it('reassembles an A-ASSOCIATE-RQ sent one byte at a time, and coalesced PDUs', async () => {
    const peer = await RawPeer.connect(t.port);
    const ac = await peer.associate(SopClass.Verification, TransferSyntax.ImplicitVRLittleEndian, true);
    expect(ac?.type).toBe(PduType.AssociateAc);
    // C-ECHO-RQ and A-RELEASE-RQ in one write.
    const echo = encodeCommand({ commandField: CommandField.C_ECHO_RQ, hasDataset: false, messageId: 7, affectedSopClassUid: SopClass.Verification });
    await peer.write(Buffer.concat([pdata(1, true, true, echo), encodePdu({ type: PduType.ReleaseRq })]));
    const rsp = await peer.next();
    expect(rsp?.type).toBe(PduType.PDataTf);
    expect((await peer.next())?.type).toBe(PduType.ReleaseRp);
    await peer.closed;
  });

  it('aborts on a PDV for a presentation context that was not accepted', async () => {
    const peer = await RawPeer.connect(t.port);
    expect((await peer.associate(SopClass.Verification))?.type).toBe(PduType.AssociateAc);
    const echo = encodeCommand({ commandField: CommandField.C_ECHO_RQ, hasDataset: false, messageId: 1, affectedSopClassUid: SopClass.Verification });
    await peer.write(pdata(3, true, true, echo));
    expect((await peer.next())?.type).toBe(PduType.Abort);
    await peer.closed;
  });

  it('errors the data set stream when the peer vanishes mid-data set, and keeps serving', async () => {
    storeErrors.length = 0;
    for (const how of ['destroy', 'a-abort'] as const) {
      const peer = await RawPeer.connect(t.port);
      expect((await peer.associate(SopClass.CTImageStorage))?.type).toBe(PduType.AssociateAc);
      const cmd = encodeCommand({
        commandField: CommandField.C_STORE_RQ,
        hasDataset: true,
        messageId: 1,
        affectedSopClassUid: SopClass.CTImageStorage,
        affectedSopInstanceUid: `1.2.3.partial.${how}`,
        priority: 0,
      });
      await peer.write(Buffer.concat([pdata(1, true, true, cmd), pdata(1, false, false, Buffer.alloc(8000, 1))]));
      await new Promise((r) => setTimeout(r, 100));
      if (how === 'destroy') peer.socket.destroy();
      else await peer.write(encodePdu({ type: PduType.Abort, source: 0, reason: 0 }));
      await new Promise((r) => setTimeout(r, 200));
    }
    expect(storeErrors).toHaveLength(2);
    expect(t.received.has('1.2.3.partial.destroy')).toBe(false);
    expect(await echoWorks(t.port)).toBe(true);
  });

  it('closes idle connections after ARTIM', async () => {
    const peer = await RawPeer.connect(t.port);
    const started = Date.now();
    await peer.closed;
    expect(Date.now() - started).toBeGreaterThanOrEqual(400);
  });

  it('aborts associations idle beyond idleTimeoutMs, and close() aborts what is left', async () => {
    const idle = await startTestServer(dir.path, {}, { idleTimeoutMs: 300 });
    const peer = await RawPeer.connect(idle.port);
    expect((await peer.associate(SopClass.Verification))?.type).toBe(PduType.AssociateAc);
    const started = Date.now();
    expect((await peer.next(3000))?.type).toBe(PduType.Abort);
    expect(Date.now() - started).toBeGreaterThanOrEqual(250);
    await peer.closed;
    const lingering = await RawPeer.connect(idle.port);
    expect((await lingering.associate(SopClass.Verification))?.type).toBe(PduType.AssociateAc);
    expect(idle.server.associationCount).toBe(1);
    await idle.server.close(100);
    expect((await lingering.next(3000))?.type).toBe(PduType.Abort);
    await lingering.closed;
  });

  it('rejects associations the handler refuses', async () => {
    const r = await run('echoscu', ['-v', '-aet', 'BADGUY', '-aec', 'VNA', '127.0.0.1', String(t.port)]);
    expect(r.code).not.toBe(0);
    expect(r.stdout + r.stderr).toMatch(/Association Rejected/i);
    await expect(
      DimseClient.connect({
        host: '127.0.0.1',
        port: t.port,
        callingAeTitle: 'BADGUY',
        calledAeTitle: 'VNA',
        contexts: [{ abstractSyntax: SopClass.Verification, transferSyntaxes: [TransferSyntax.ImplicitVRLittleEndian] }],
      }),
    ).rejects.toBeInstanceOf(AssociationRejectedError);
  });

  it('drains data sets a handler does not read, and never confirms unread data', async () => {
    const client = await DimseClient.connect({
      host: '127.0.0.1',
      port: t.port,
      callingAeTitle: 'CLIENT',
      calledAeTitle: 'VNA',
      contexts: [{ abstractSyntax: SopClass.CTImageStorage, transferSyntaxes: [TransferSyntax.ExplicitVRLittleEndian] }],
    });
    const big = Buffer.alloc(8 * 1024 * 1024, 7);
    const slow = await client.store(SopClass.CTImageStorage, 'slow.consumer', TransferSyntax.ExplicitVRLittleEndian, Readable.from([big]));
    slowConsumerStatus = slow.status;
    expect(slow).toEqual({ status: DimseStatusCode.OutOfResources, errorComment: 'busy' });
    const lazy = await client.store(SopClass.CTImageStorage, 'lazy.success', TransferSyntax.ExplicitVRLittleEndian, Readable.from([big]));
    expect(lazy.status).toBe(DimseStatusCode.OutOfResources);
    expect(logger.lines.some((l) => l.includes('without consuming'))).toBe(true);
    // The association is still usable.
    const ok = await client.store(SopClass.CTImageStorage, '1.2.3.after', TransferSyntax.ExplicitVRLittleEndian, Buffer.alloc(1000, 3));
    expect(ok.status).toBe(0);
    expect(t.received.get('1.2.3.after')?.length).toBe(1000);
    await client.release();
    expect(slowConsumerStatus).toBe(DimseStatusCode.OutOfResources);
  });
});
