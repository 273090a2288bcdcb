/**
 * DICOMDIR (PS3.10 file-set directory, Media Storage Directory Storage): the list of the files it
 * references, for a migration that imports a file-set (a CD/DVD export, a USB stick) in place.
 */
import dcmjs from 'dcmjs';
import { open, readdir, readFile } from 'node:fs/promises';
import path from 'node:path';

export const MEDIA_STORAGE_DIRECTORY_STORAGE = '1.2.840.10008.1.3.10';
const DirectoryRecordSequence = '00041220';
const ReferencedFileID = '00041500';
const MediaStorageSOPClassUID = '00020002';

export class DicomdirError extends Error {
  override name = 'DicomdirError';
}

/**
 * Whether a file is a DICOMDIR: a Part 10 file whose file meta names Media Storage Directory
 * Storage (looked up in its first 8 KiB, where the file meta group is; no full parse).
 */
export async function isDicomdir(file: string): Promise<boolean> {
  const handle = await open(file, 'r');
  try {
    const head = Buffer.alloc(8192);
    const { bytesRead } = await handle.read(head, 0, head.length, 0);
    if (bytesRead < 132 || head.toString('latin1', 128, 132) !== 'DICM') return false;
    const text = head.toString('latin1', 132, bytesRead);
    for (let at = text.indexOf(MEDIA_STORAGE_DIRECTORY_STORAGE); at >= 0; at = text.indexOf(MEDIA_STORAGE_DIRECTORY_STORAGE, at + 1)) {
      const next = text.charAt(at + MEDIA_STORAGE_DIRECTORY_STORAGE.length);
      if (next === '' || !/[0-9.]/.test(next)) return true;
    }
    return false;
  } finally {
    await handle.close();
  }
}

type Element = { vr?: string; Value?: unknown[] };
type Dict = Record<string, Element>;

/**
 * The files a DICOMDIR references (ReferencedFileID of its directory records), as paths relative
 * to the DICOMDIR's folder, in record order, each once. File IDs are matched case-insensitively
 * when the exact name is absent (file-sets are written in upper case; copies may not be).
 * Throws DicomdirError when the file is not a readable DICOMDIR.
 */
export async function dicomdirFiles(file: string): Promise<string[]> {
  const bytes = await readFile(file);
  let parsed: { dict: Dict; meta: Dict };
  try {
    const ab = bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength) as ArrayBuffer;
    parsed = dcmjs.data.DicomMessage.readFile(ab, { ignoreErrors: false }) as unknown as { dict: Dict; meta: Dict };
  } catch (e) {
    throw new DicomdirError(`${file} cannot be read as a DICOMDIR: ${(e as Error).message}`);
  }
  const sopClass = String(parsed.meta[MediaStorageSOPClassUID]?.Value?.[0] ?? '').replace(/\0/g, '').trim();
  if (sopClass !== MEDIA_STORAGE_DIRECTORY_STORAGE) {
    throw new DicomdirError(`${file} is not a DICOMDIR (Media Storage SOP Class ${sopClass || 'absent'})`);
  }
  const records = (parsed.dict[DirectoryRecordSequence]?.Value ?? []) as Dict[];
  const root = path.dirname(file);
  const out: string[] = [];
  const seen = new Set<string>();
  for (const record of records) {
    const parts = (record[ReferencedFileID]?.Value ?? []).map((p) => String(p).replace(/\0/g, '').trim()).filter(Boolean);
    if (!parts.length) continue;
    if (parts.some((p) => p === '..' || p === '.' || p.includes('/'))) {
      throw new DicomdirError(`${file}: Referenced File ID ${parts.join('\\')} leaves the file-set`);
    }
    const relative = await resolveCaseInsensitive(root, parts);
    if (!seen.has(relative)) {
      seen.add(relative);
      out.push(relative);
    }
  }
  return out;
}

/** `parts` joined under `root`, each component matched case-insensitively if the exact one is absent. */
async function resolveCaseInsensitive(root: string, parts: string[]): Promise<string> {
  const resolved: string[] = [];
  for (const part of parts) {
    const dir = path.join(root, ...resolved);
    const names = await readdir(dir).catch(() => [] as string[]);
    resolved.push(names.includes(part) ? part : (names.find((n) => n.toUpperCase() === part.toUpperCase()) ?? part));
  }
  return path.join(...resolved);
}
