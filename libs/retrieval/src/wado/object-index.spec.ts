import { createHash } from 'node:crypto';
import { Readable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { framesOfFragments, indexObject, ObjectIndexError } from './object-index.js';

const LONG = new Set(['OB', 'OW', 'SQ', 'UN', 'UT']);
const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

function el(tag: number, vr: string, value: Buffer, implicit = false, undefinedLength = false): Buffer {
  const h = Buffer.alloc(implicit ? 8 : LONG.has(vr) ? 12 : 8);
  h.writeUInt16LE(tag >>> 16, 0);
  h.writeUInt16LE(tag & 0xffff, 2);
  const len = undefinedLength ? 0xffffffff : value.length;
  if (implicit) h.writeUInt32LE(len, 4);
  else {
    h.write(vr, 4, 'latin1');
    if (LONG.has(vr)) h.writeUInt32LE(len, 8);
    else h.writeUInt16LE(len, 6);
  }
  return Buffer.concat([h, value]);
}
const us = (n: number) => {
  const b = Buffer.alloc(2);
  b.writeUInt16LE(n);
  return b;
};
const item = (tag: number, value: Buffer) => {
  const h = Buffer.alloc(8);
  h.writeUInt16LE(0xfffe, 0);
  h.writeUInt16LE(tag, 2);
  h.writeUInt32LE(value.length, 4);
  return Buffer.concat([h, value]);
};
function part10(ts: string, dataset: Buffer): Buffer {
  const tsv = Buffer.from(ts.length % 2 ? `${ts}\0` : ts, 'latin1');
  const tsEl = el(0x00020010, 'UI', tsv);
  const glen = Buffer.alloc(4);
  glen.writeUInt32LE(tsEl.length);
  return Buffer.concat([Buffer.alloc(128), Buffer.from('DICM'), el(0x00020000, 'UL', glen), tsEl, dataset]);
}
const chunked = (b: Buffer, size = 7) => Readable.from(Array.from({ length: Math.ceil(b.length / size) }, (_, i) => b.subarray(i * size, (i + 1) * size)));

describe('indexObject', () => {
  it('native multi-frame (explicit LE): frame ranges and digests, nested bulk data by tag path', async () => {
    const frames = [Buffer.alloc(2 * 3 * 2, 1), Buffer.alloc(12, 2), Buffer.alloc(12, 3)];
    const big = Buffer.alloc(2000, 9);
    const nestedSq = el(0x00880200, 'SQ', item(0xe000, Buffer.concat([el(0x00280010, 'US', us(1)), el(0x7fe00010, 'OB', big)])));
    const ds = Buffer.concat([
      el(0x00080018, 'UI', Buffer.from('1.2\0')),
      el(0x00280002, 'US', us(1)),
      el(0x00280008, 'IS', Buffer.from('3 ')),
      el(0x00280010, 'US', us(2)),
      el(0x00280011, 'US', us(3)),
      el(0x00280100, 'US', us(16)),
      nestedSq,
      el(0x7fe00010, 'OW', Buffer.concat(frames)),
    ]);
    const file = part10('1.2.840.10008.1.2.1', ds);
    const index = await indexObject(chunked(file));
    expect(index.pixel).toEqual({ encapsulated: false, numberOfFrames: 3 });
    expect(index.frames).toHaveLength(3);
    index.frames.forEach((f, k) => {
      expect(f).toHaveLength(1);
      expect(file.subarray(f[0]!.offset, f[0]!.offset + f[0]!.length).equals(frames[k]!)).toBe(true);
      expect(f[0]!.sha256).toBe(sha(frames[k]!));
    });
    const nested = index.bulk.get('00880200/0/7FE00010')!;
    expect(file.subarray(nested.offset, nested.offset + nested.length).equals(big)).toBe(true);
    expect(nested.sha256).toBe(sha(big));
    expect(index.bulk.get('7FE00010')!.sha256).toBe(sha(Buffer.concat(frames)));
  });

  it('implicit VR LE with an undefined-length sequence', async () => {
    const pixels = Buffer.alloc(4 * 4 * 2, 5);
    const sq = Buffer.concat([
      el(0x00081115, 'SQ', Buffer.alloc(0), true, true),
      item(0xe000, el(0x00081150, 'UI', Buffer.from('1.2\0'), true)),
      item(0xe0dd, Buffer.alloc(0)),
    ]);
    const ds = Buffer.concat([sq, el(0x00280010, 'US', us(4), true), el(0x00280011, 'US', us(4), true), el(0x00280100, 'US', us(16), true), el(0x7fe00010, 'OW', pixels, true)]);
    const file = part10('1.2.840.10008.1.2', ds);
    const index = await indexObject(chunked(file, 5));
    expect(index.frames).toHaveLength(1);
    expect(index.frames[0]![0]!.sha256).toBe(sha(pixels));
  });

  it('encapsulated with a Basic Offset Table: frames group their fragments', async () => {
    const frags = [Buffer.from([0xff, 0xd8, 1, 2]), Buffer.from([3, 4, 0xff, 0xd9]), Buffer.from([0xff, 0xd8, 5, 6, 0xff, 0xd9])];
    const bot = Buffer.alloc(8);
    bot.writeUInt32LE(0, 0);
    bot.writeUInt32LE(8 + 4 + 8 + 4, 4);
    const pixel = Buffer.concat([
      el(0x7fe00010, 'OB', Buffer.alloc(0), false, true),
      item(0xe000, bot),
      ...frags.map((f) => item(0xe000, f)),
      item(0xe0dd, Buffer.alloc(0)),
    ]);
    const ds = Buffer.concat([el(0x00280008, 'IS', Buffer.from('2 ')), el(0x00280010, 'US', us(8)), el(0x00280011, 'US', us(8)), el(0x00280100, 'US', us(8)), pixel]);
    const file = part10('1.2.840.10008.1.2.4.50', ds);
    const index = await indexObject(chunked(file, 3));
    expect(index.pixel).toEqual({ encapsulated: true, numberOfFrames: 2 });
    expect(index.frames.map((f) => f.map((r) => file.subarray(r.offset, r.offset + r.length).toString('hex')))).toEqual([
      [frags[0]!.toString('hex'), frags[1]!.toString('hex')],
      [frags[2]!.toString('hex')],
    ]);
  });

  it('reads to the end even when it cannot map the object', async () => {
    let ended = false;
    const file = part10('1.2.840.10008.1.2.1.99', Buffer.alloc(100, 1));
    const src = chunked(file);
    src.on('end', () => (ended = true));
    await expect(indexObject(src)).rejects.toThrow(/deflated/);
    expect(ended).toBe(true);
  });
});

describe('framesOfFragments', () => {
  const f = (itemOffset: number, head: number[]) => ({ itemOffset, head: Buffer.from(head) });
  it('one frame: all fragments; one per frame; JPEG SOI split', () => {
    expect(framesOfFragments([f(0, [1]), f(10, [2])], 1, undefined, 'x')).toHaveLength(1);
    expect(framesOfFragments([f(0, [1]), f(10, [2])], 2, undefined, 'x').map((x) => x.length)).toEqual([1, 1]);
    const jpeg = [f(0, [0xff, 0xd8]), f(10, [0]), f(20, [0xff, 0xd8])];
    expect(framesOfFragments(jpeg, 2, undefined, '1.2.840.10008.1.2.4.50').map((x) => x.length)).toEqual([2, 1]);
    expect(() => framesOfFragments(jpeg, 2, undefined, '1.2.840.10008.1.2.5')).toThrow(ObjectIndexError);
  });
});
