// Minimal typings for the parts of dcmjs the archive uses (dcmjs ships no types).
declare module 'dcmjs' {
  export type DicomJsonElement = { vr: string; Value?: unknown[]; InlineBinary?: string; BulkDataURI?: string; _rawValue?: unknown };
  export type DenaturalizedDataset = Record<string, DicomJsonElement>;

  export interface ReadOptions {
    ignoreErrors?: boolean;
    untilTag?: string | null;
    includeUntilTagValue?: boolean;
    noCopy?: boolean;
    forceStoreRaw?: boolean;
  }

  export class DicomDict {
    constructor(meta: DenaturalizedDataset);
    meta: DenaturalizedDataset;
    dict: DenaturalizedDataset;
    write(options?: Record<string, unknown>): ArrayBuffer;
  }

  export class DicomMessage {
    static readFile(buffer: ArrayBuffer, options?: ReadOptions): DicomDict;
    static write(
      dataset: DenaturalizedDataset,
      stream: unknown,
      syntax: string,
      writeOptions?: Record<string, unknown>,
    ): number;
    static _read(stream: unknown, syntax: string, options?: ReadOptions): DenaturalizedDataset;
  }

  export const data: {
    DicomMessage: typeof DicomMessage;
    DicomDict: typeof DicomDict;
    DicomMetaDictionary: {
      naturalizeDataset(ds: DenaturalizedDataset): Record<string, unknown>;
      denaturalizeDataset(ds: Record<string, unknown>): DenaturalizedDataset;
      dictionary: Record<string, { tag: string; vr: string; name: string; vm: string }>;
      nameMap: Record<string, { tag: string; vr: string; name: string; vm: string }>;
      punctuateTag(tag: string): string;
      unpunctuateTag(tag: string): string;
      uid(): string;
    };
    ReadBufferStream: new (buffer: ArrayBuffer, littleEndian?: boolean, options?: Record<string, unknown>) => unknown;
    WriteBufferStream: new (size?: number, littleEndian?: boolean) => { getBuffer(): ArrayBuffer; size: number };
    [key: string]: unknown;
  };
  const dcmjs: { data: typeof data; [key: string]: unknown };
  export default dcmjs;
}
