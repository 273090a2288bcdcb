import { createHash, type Hash } from 'node:crypto';
import type { Readable } from 'node:stream';
import type { ByteInspector, TempObject, WriteOptions } from './contract.js';
import { Xxh64Hash } from './xxh64.js';

/** Upper bound for `WriteOptions.headBytes` (the head is kept in memory). */
export const MAX_HEAD_BYTES = 64 * 1024 * 1024;

/** Computes size, SHA-256 and XXH64 of bytes passing through, and keeps a copy of the first bytes. */
export class ByteMeter {
  private readonly hash: Hash = createHash('sha256');
  private readonly check = new Xxh64Hash();
  private readonly head: Buffer;
  private headLength = 0;
  private total = 0;

  constructor(headBytes: number) {
    this.head = Buffer.alloc(headBytes);
  }

  get size(): number {
    return this.total;
  }

  update(chunk: Buffer): void {
    this.hash.update(chunk);
    this.check.update(chunk);
    this.total += chunk.length;
    if (this.headLength < this.head.length) {
      this.headLength += chunk.copy(this.head, this.headLength, 0);
    }
  }

  result(tempKey: string): TempObject {
    return {
      tempKey,
      size: this.total,
      sha256: this.hash.digest('hex'),
      xxh64: this.check.hex(),
      head: Buffer.from(this.head.subarray(0, this.headLength)),
    };
  }
}

export function checkWriteOptions(options: WriteOptions | undefined): {
  headBytes: number;
  prefix: Buffer | undefined;
  inspect: ByteInspector | undefined;
} {
  const headBytes = options?.headBytes ?? 0;
  if (!Number.isSafeInteger(headBytes) || headBytes < 0 || headBytes > MAX_HEAD_BYTES) {
    throw new RangeError(`headBytes must be an integer in [0, ${MAX_HEAD_BYTES}], got ${headBytes}`);
  }
  const prefix = options?.prefix;
  if (prefix !== undefined && !Buffer.isBuffer(prefix)) {
    throw new TypeError('prefix must be a Buffer');
  }
  return { headBytes, prefix: prefix !== undefined && prefix.length > 0 ? prefix : undefined, inspect: options?.inspect };
}

/** Only bytes are accepted: a string chunk would need an encoding guess, i.e. could alter data. */
export function chunkToBuffer(chunk: unknown): Buffer {
  if (Buffer.isBuffer(chunk)) return chunk;
  if (chunk instanceof Uint8Array) return Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
  throw new TypeError(
    `storage streams must carry bytes (Buffer/Uint8Array), got ${typeof chunk === 'string' ? 'a string' : typeof chunk}`,
  );
}

/** The bytes to store: `prefix` first, then the stream, each metered (and inspected). */
export async function* meteredBytes(
  data: AsyncIterable<unknown>,
  prefix: Buffer | undefined,
  meter: ByteMeter,
  inspect?: ByteInspector,
): AsyncGenerator<Buffer> {
  if (prefix !== undefined) {
    meter.update(prefix);
    yield prefix;
  }
  for await (const chunk of data) {
    const buffer = chunkToBuffer(chunk);
    if (buffer.length === 0) continue;
    inspect?.update(buffer);
    meter.update(buffer);
    yield buffer;
  }
  inspect?.finish();
}

/** Destroys the caller's stream after a failed write (as stream.pipeline would), unless done. */
export function discard(data: Readable): void {
  if (!data.destroyed) data.destroy();
}
