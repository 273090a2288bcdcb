declare module 'dicer' {
  import { Readable, Writable } from 'node:stream';
  interface PartStream extends Readable {
    on(event: 'header', listener: (header: Record<string, string[]>) => void): this;
    on(event: string, listener: (...args: any[]) => void): this;
  }
  class Dicer extends Writable {
    constructor(options: { boundary: string; headerFirst?: boolean; maxHeaderPairs?: number });
    on(event: 'part', listener: (part: PartStream) => void): this;
    on(event: string, listener: (...args: any[]) => void): this;
    setBoundary(boundary: string): void;
  }
  export default Dicer;
}
