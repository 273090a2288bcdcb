import { PassThrough, Readable, Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { MultipartWriter, parseMultipart, ResponseClosedError, writeChunk } from './multipart.js';

async function collect(s: PassThrough): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of s) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

describe('MultipartWriter', () => {
  it('writes parts that a parser splits back byte for byte', async () => {
    const out = new PassThrough();
    const done = collect(out);
    const mp = new MultipartWriter(out, 'application/dicom', 'b0undary');
    expect(mp.contentType).toBe('multipart/related; type="application/dicom"; boundary=b0undary');
    const a = Buffer.from('\r\n--b0undar\r\nbinary\0\xff', 'latin1');
    const b = Buffer.alloc(300_000, 7);
    await mp.part({ 'Content-Type': 'application/dicom' }, a);
    await mp.part({ 'Content-Type': 'application/dicom' }, Readable.from([b.subarray(0, 1000), b.subarray(1000)]));
    await mp.part({ 'Content-Type': 'application/dicom' }, Buffer.alloc(0));
    await mp.end();
    out.end();
    const parts = parseMultipart(await done, 'b0undary');
    expect(parts.map((p) => p.body.length)).toEqual([a.length, b.length, 0]);
    expect(parts[0]!.body.equals(a)).toBe(true);
    expect(parts[1]!.body.equals(b)).toBe(true);
    expect(parts[0]!.headers['content-type']).toBe('application/dicom');
  });

  it('waits for drain (backpressure) and never buffers a whole stream', async () => {
    let written = 0;
    let maxPending = 0;
    let pending = 0;
    const slow = new Writable({
      highWaterMark: 16 * 1024,
      write(chunk: Buffer, _e, cb) {
        pending += chunk.length;
        maxPending = Math.max(maxPending, pending);
        setImmediate(() => {
          pending -= chunk.length;
          written += chunk.length;
          cb();
        });
      },
    });
    const mp = new MultipartWriter(slow, 'application/dicom', 'x');
    const big = Readable.from((function* () {
      for (let i = 0; i < 200; i++) yield Buffer.alloc(64 * 1024, i);
    })());
    await mp.part({ 'Content-Type': 'application/dicom' }, big);
    await mp.end();
    expect(written).toBeGreaterThan(200 * 64 * 1024);
    expect(maxPending).toBeLessThanOrEqual(64 * 1024 + 100);
  });

  it('rejects when the destination is closed, and destroys the source', async () => {
    const out = new PassThrough({ highWaterMark: 1 });
    out.destroy();
    await expect(writeChunk(out, 'x')).rejects.toBeInstanceOf(ResponseClosedError);
    const out2 = new Writable({ highWaterMark: 1, write(_c, _e, cb) { setTimeout(cb, 5); } });
    const src = Readable.from((function* () {
      for (let i = 0; i < 100; i++) yield Buffer.alloc(1024);
    })());
    const mp = new MultipartWriter(out2, 'application/dicom', 'x');
    const p = mp.part({}, src);
    setTimeout(() => out2.destroy(), 20);
    await expect(p).rejects.toBeInstanceOf(ResponseClosedError);
    expect(src.destroyed).toBe(true);
  });
});
