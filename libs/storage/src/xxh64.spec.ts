import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { xxh64Hex, Xxh64Hash } from './xxh64.js';

describe('XXH64', () => {
  it('gives the reference values (seed 0), zero-padded to 16 hex digits', () => {
    // Reference values of the XXH64 specification's implementation (xxhsum -H1).
    expect(xxh64Hex(Buffer.alloc(0))).toBe('ef46db3751d8e999');
    expect(xxh64Hex(Buffer.from('abc'))).toBe('44bc2cf5ad770999');
    expect(xxh64Hex(Buffer.from('a'))).toMatch(/^[0-9a-f]{16}$/);
  });

  it('incremental and one-shot agree, whatever the chunking', () => {
    const data = randomBytes(1_000_003);
    const inc = new Xxh64Hash();
    for (let off = 0; off < data.length; off += 65_537) inc.update(data.subarray(off, off + 65_537));
    expect(inc.hex()).toBe(xxh64Hex(data));
  });

  it('sees a single flipped bit', () => {
    const data = randomBytes(512 * 1024);
    const flipped = Buffer.from(data);
    flipped[200_000]! ^= 1;
    expect(xxh64Hex(flipped)).not.toBe(xxh64Hex(data));
  });
});
