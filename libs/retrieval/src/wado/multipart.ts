import { randomBytes } from 'node:crypto';
import type { Readable, Writable } from 'node:stream';

/** The client went away (or the response was destroyed) while we were writing. */
export class ResponseClosedError extends Error {
  constructor() {
    super('response closed before it was complete');
    this.name = 'ResponseClosedError';
  }
}

/**
 * Writes `chunk`, waiting for 'drain' when the destination's buffer is full (backpressure) and,
 * if `queueMaxBytes` is given, holds more than that many bytes.
 * Rejects with ResponseClosedError if the destination closes or errors meanwhile.
 */
export async function writeChunk(out: Writable, chunk: Buffer | string, queueMaxBytes = 0): Promise<void> {
  if (out.destroyed || out.writableEnded) throw new ResponseClosedError();
  if (out.write(chunk) || out.writableLength <= queueMaxBytes) return;
  await new Promise<void>((resolve, reject) => {
    const done = (err?: Error) => {
      out.off('drain', onDrain);
      out.off('close', onClose);
      out.off('error', onClose);
      if (err) reject(err);
      else resolve();
    };
    const onDrain = () => done();
    const onClose = () => done(new ResponseClosedError());
    out.on('drain', onDrain);
    out.on('close', onClose);
    out.on('error', onClose);
  });
}

/**
 * Copies `source` into `out` without ending `out`, chunk by chunk with backpressure. An error of
 * `source` rejects (after destroying it); a closed `out` destroys `source` and rejects.
 */
export async function copyStream(source: Readable, out: Writable): Promise<void> {
  try {
    for await (const chunk of source as AsyncIterable<Buffer>) await writeChunk(out, chunk);
  } catch (e) {
    source.destroy();
    throw e;
  }
}

/** A fresh boundary (random; never found in DICOM bytes in practice). */
export function newBoundary(): string {
  return `vna-${randomBytes(12).toString('hex')}`;
}

/** Content-Type of a multipart/related body whose parts are `type`. */
export function multipartContentType(type: string, boundary: string): string {
  return `multipart/related; type="${type}"; boundary=${boundary}`;
}

/**
 * multipart/related writer (RFC 2387 / PS3.18 8.7.1): each part is
 * `--boundary CRLF headers CRLF CRLF body CRLF`, closed by `--boundary--`.
 */
export class MultipartWriter {
  readonly boundary: string;

  constructor(
    private readonly out: Writable,
    readonly type: string,
    boundary?: string,
  ) {
    this.boundary = boundary ?? newBoundary();
  }

  /** The response Content-Type. */
  get contentType(): string {
    return multipartContentType(this.type, this.boundary);
  }

  private head(headers: Record<string, string>): string {
    const lines = Object.entries(headers).map(([k, v]) => `${k}: ${v}\r\n`);
    return `--${this.boundary}\r\n${lines.join('')}\r\n`;
  }

  /**
   * One part; `body` is written with backpressure (streams chunk by chunk). A Buffer body goes
   * out without a copy, in one corked write with its head and tail; the call returns at once
   * while at most `queueMaxBytes` are queued in `out`. `release`, for a Buffer body, is called
   * once `out` no longer refers to it (the write's callback, also on error).
   */
  async part(headers: Record<string, string>, body: Buffer | Readable, queueMaxBytes = 0, release?: () => void): Promise<void> {
    if (Buffer.isBuffer(body)) {
      if (this.out.destroyed || this.out.writableEnded) {
        release?.();
        throw new ResponseClosedError();
      }
      this.out.cork();
      this.out.write(this.head(headers), 'latin1');
      // `release` (pooled memory) only once the socket has taken the bytes: the write's callback.
      if (release) this.out.write(body, () => release());
      else this.out.write(body);
      this.out.uncork();
      await writeChunk(this.out, '\r\n', queueMaxBytes);
      return;
    }
    await writeChunk(this.out, this.head(headers));
    await copyStream(body, this.out);
    await writeChunk(this.out, '\r\n');
  }

  /** The closing delimiter. */
  async end(): Promise<void> {
    await writeChunk(this.out, `--${this.boundary}--\r\n`);
  }
}

/** Splits a multipart/related body into parts (tests and tools; buffers everything). */
export function parseMultipart(body: Buffer, boundary: string): Array<{ headers: Record<string, string>; body: Buffer }> {
  const delim = Buffer.from(`--${boundary}`);
  const parts: Array<{ headers: Record<string, string>; body: Buffer }> = [];
  let pos = body.indexOf(delim);
  if (pos < 0) throw new Error('no boundary in multipart body');
  for (;;) {
    pos += delim.length;
    if (body.toString('latin1', pos, pos + 2) === '--') return parts;
    pos += 2; // CRLF after the delimiter
    const headEnd = body.indexOf('\r\n\r\n', pos);
    if (headEnd < 0) throw new Error('unterminated part headers');
    const headers: Record<string, string> = {};
    for (const line of body.toString('latin1', pos, headEnd).split('\r\n')) {
      const i = line.indexOf(':');
      if (i > 0) headers[line.slice(0, i).trim().toLowerCase()] = line.slice(i + 1).trim();
    }
    const next = body.indexOf(Buffer.from(`\r\n--${boundary}`), headEnd + 4);
    if (next < 0) throw new Error('unterminated multipart body (no closing boundary)');
    parts.push({ headers, body: body.subarray(headEnd + 4, next) });
    pos = next + 2;
  }
}
