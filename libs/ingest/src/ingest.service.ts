import { AuditEventRepository, InstanceRepository, type RecordOutcome } from '#vna/catalog';
import {
  DicomParseError,
  DicomStructureCheck,
  DicomStructureError,
  type DicomJson,
  isValidUid,
  parsePart10Header,
  type ParsedHeader,
  str,
  int,
  Tag,
} from '#vna/dicom';
import { buildPart10Header } from '#vna/dimse';
import { JobName, JobQueueService } from '#vna/jobs';
import { objectKeyFor, type StorageBackend, type TempObject } from '#vna/storage';
import { Inject, Injectable, Logger } from '@nestjs/common';
import { randomBytes } from 'node:crypto';
import type { Readable } from 'node:stream';
import { IngestError, IngestErrorCode } from './ingest.errors.js';
import { HOT_STORAGE } from './tokens.js';

/** Leading bytes kept in memory to parse the header; most headers end well before this. */
const HEAD_BYTES = 64 * 1024;
/** How much of an object is read back when its header is longer than HEAD_BYTES. */
const MAX_HEADER_BYTES = 64 * 1024 * 1024;

export interface IngestInput {
  data: Readable;
  /** 'dataset': a bare data set (C-STORE), a Part 10 header is built; 'part10': a Part 10 file (STOW). */
  kind: 'dataset' | 'part10';
  /** C-STORE command attributes (required for 'dataset'). */
  sopClassUid?: string;
  sopInstanceUid?: string;
  transferSyntaxUid?: string;
  /** Calling AE title or HTTP client, recorded as the source. */
  sourceAe: string;
  /** STOW-RS /studies/{study}: the instance must belong to this study. */
  expectedStudyUid?: string;
}

export interface IngestResult {
  outcome: 'created' | 'replaced' | 'identical';
  instanceId: string;
  sopClassUid: string;
  sopInstanceUid: string;
  studyInstanceUid: string;
  seriesInstanceUid: string;
  transferSyntaxUid: string;
  size: number;
  sha256: string;
}

/**
 * Receives one object: streams it to the hot tier, checks it, records it, and only then reports
 * success. Indexing runs afterwards through the index queue; the database is the source of truth.
 */
@Injectable()
export class IngestService {
  private readonly logger = new Logger(IngestService.name);

  constructor(
    @Inject(HOT_STORAGE) private readonly hot: StorageBackend,
    private readonly instances: InstanceRepository,
    private readonly jobs: JobQueueService,
    private readonly audit: AuditEventRepository,
  ) {}

  async store(input: IngestInput): Promise<IngestResult> {
    let prefix: Buffer | undefined;
    if (input.kind === 'dataset') {
      if (!input.sopClassUid || !input.sopInstanceUid || !input.transferSyntaxUid) {
        input.data.resume();
        throw new IngestError(IngestErrorCode.MissingAttribute, 'C-STORE without SOP Class, SOP Instance or Transfer Syntax UID');
      }
      prefix = buildPart10Header({
        sopClassUid: input.sopClassUid,
        sopInstanceUid: input.sopInstanceUid,
        transferSyntaxUid: input.transferSyntaxUid,
        sourceAeTitle: input.sourceAe,
      });
    }

    const check = new DicomStructureCheck(
      input.kind === 'dataset' ? { mode: 'dataset', transferSyntaxUid: input.transferSyntaxUid } : { mode: 'part10' },
    );
    let temp: TempObject;
    try {
      temp = await this.hot.writeTemp(input.data, { prefix, headBytes: HEAD_BYTES, inspect: check });
    } catch (e) {
      throw this.writeError(e);
    }

    try {
      return await this.commit(input, temp);
    } catch (e) {
      await this.hot.revoke(temp.tempKey).catch((re) => this.logger.error(`revoke ${temp.tempKey} failed: ${re}`));
      throw e;
    }
  }

  private async commit(input: IngestInput, temp: TempObject): Promise<IngestResult> {
    const header = await this.parse(temp);
    const ds = header.dataset;
    const sopInstanceUid = str(ds, Tag.SOPInstanceUID) || (input.sopInstanceUid ?? '');
    const sopClassUid = str(ds, Tag.SOPClassUID) || (input.sopClassUid ?? '');
    try {
      return await this.record(input, temp, header, sopClassUid, sopInstanceUid);
    } catch (e) {
      if (e instanceof IngestError) {
        e.sopClassUid = sopClassUid;
        e.sopInstanceUid = sopInstanceUid;
      }
      throw e;
    }
  }

  private async record(
    input: IngestInput,
    temp: TempObject,
    header: ParsedHeader,
    sopClassUid: string,
    sopInstanceUid: string,
  ): Promise<IngestResult> {
    const ds = header.dataset;
    const studyUid = str(ds, Tag.StudyInstanceUID);
    const seriesUid = str(ds, Tag.SeriesInstanceUID);
    for (const [name, uid] of [
      ['SOP Instance UID (0008,0018)', str(ds, Tag.SOPInstanceUID)],
      ['SOP Class UID (0008,0016)', str(ds, Tag.SOPClassUID)],
      ['Study Instance UID (0020,000D)', studyUid],
      ['Series Instance UID (0020,000E)', seriesUid],
    ] as const) {
      if (!uid) throw new IngestError(IngestErrorCode.MissingAttribute, `missing ${name}`);
      if (!isValidUid(uid)) throw new IngestError(IngestErrorCode.MissingAttribute, `invalid ${name} "${uid}"`);
    }
    if (input.kind === 'dataset') {
      if (sopInstanceUid !== input.sopInstanceUid) {
        throw new IngestError(IngestErrorCode.DataSetMismatch,
          `SOP Instance UID in the data set (${sopInstanceUid}) differs from the command's (${input.sopInstanceUid})`);
      }
      if (sopClassUid !== input.sopClassUid) {
        throw new IngestError(IngestErrorCode.DataSetMismatch,
          `SOP Class UID in the data set (${sopClassUid}) differs from the command's (${input.sopClassUid})`);
      }
    }
    if (input.expectedStudyUid && input.expectedStudyUid !== studyUid) {
      throw new IngestError(IngestErrorCode.DataSetMismatch,
        `Study Instance UID ${studyUid} does not match the study ${input.expectedStudyUid} of the request`);
    }

    const base = {
      sopClassUid, sopInstanceUid, studyInstanceUid: studyUid, seriesInstanceUid: seriesUid,
      transferSyntaxUid: header.transferSyntaxUid, size: temp.size, sha256: temp.sha256,
    };
    // Commit first, then record: the common first-time store costs one statement. A re-send
    // (identical or conflicting) is detected by the record step, which removes the extra copy.
    const key = objectKeyFor({ studyUid, seriesUid, sopInstanceUid, version: randomBytes(6).toString('hex') });
    await this.hot.commit(temp.tempKey, key);
    let outcome: RecordOutcome;
    try {
      outcome = await this.instances.recordReceived(
        {
          sopIuid: sopInstanceUid, sopClassUid, studyIuid: studyUid, seriesIuid: seriesUid,
          transferSyntaxUid: header.transferSyntaxUid, sizeBytes: temp.size, sha256: temp.sha256, xxh64: temp.xxh64,
          sourceAe: input.sourceAe, metadata: this.metadataOf(ds, header.hasPixelData, header.transferSyntaxUid),
          instanceNumber: int(ds, Tag.InstanceNumber), numFrames: int(ds, Tag.NumberOfFrames),
          storageId: this.hot.id, objectKey: key,
        },
        1,
      );
    } catch (e) {
      await this.hot.delete(key).catch(() => undefined);
      throw new IngestError(IngestErrorCode.OutOfResources, `cannot record the instance: ${(e as Error).message}`);
    }
    if (outcome.kind === 'identical' || outcome.kind === 'study-conflict') {
      // A concurrent store of the same UID won the race; our copy is redundant.
      await this.hot.delete(key).catch(() => undefined);
      if (outcome.kind === 'study-conflict') throw this.studyConflict(sopInstanceUid, outcome.existingStudyIuid, studyUid);
      return { ...base, outcome: 'identical', instanceId: outcome.instanceId };
    }
    if (outcome.kind === 'replaced') {
      this.logger.warn(`SOP Instance ${sopInstanceUid} re-sent with different bytes: stored as version ${outcome.version}`);
    }
    // After the commit: a lost enqueue is recovered by the reconciler from the database.
    this.jobs
      .queue({ name: JobName.IndexStudy, data: { studyIuid: studyUid } })
      .catch((e) => this.logger.warn(`index job for study ${studyUid} not queued (the reconciler will): ${e}`));
    return { ...base, outcome: outcome.kind, instanceId: outcome.instanceId };
  }

  /**
   * The sender of these studies is done (association ended, STOW answered): index what it sent
   * now rather than after the batching delay, and write what it stored into the audit trail
   * (`STUDY_RECEIVED` per study: who, how, how many instances). Never throws: indexing is
   * covered by the reconciler, and a lost audit entry is logged.
   */
  async senderDone(received: Map<string, number>, who: { actor: string; via: 'C-STORE' | 'STOW-RS' | 'C-GET' | 'WADO-RS' | 'FOLDER' }): Promise<void> {
    if (received.size === 0) return;
    const jobs = [...received.keys()].map((studyIuid) => ({ name: JobName.IndexStudy, data: { studyIuid } }) as const);
    await Promise.all([
      this.jobs.runNow(jobs).catch((e) => this.logger.warn(`could not start indexing of ${jobs.length} study(ies) at once: ${e}`)),
      this.audit
        .append([...received].filter(([, n]) => n > 0).map(([studyIuid, instances]) => ({ type: 'STUDY_RECEIVED', actor: who.actor, studyIuid, detail: { via: who.via, instances } })))
        .catch((e) => this.logger.warn(`audit of ${received.size} received study(ies) from ${who.actor} not written: ${e}`)),
    ]);
  }

  /**
   * Parse the header from the head kept in memory; when the object is longer than the head and
   * no pixel data was reached, the header may go on: read more of the object back and parse again.
   */
  private async parse(temp: TempObject): Promise<ParsedHeader> {
    const complete = temp.size <= temp.head.length;
    try {
      const header = parsePart10Header(temp.head, { complete });
      if (complete || header.hasPixelData) return header;
    } catch (e) {
      if (!(e instanceof DicomParseError)) throw e;
      if (complete) throw new IngestError(IngestErrorCode.CannotUnderstand, e.message);
    }
    const n = Math.min(temp.size, MAX_HEADER_BYTES);
    const chunks: Buffer[] = [];
    for await (const c of await this.hot.readTemp(temp.tempKey, { start: 0, end: n - 1 })) chunks.push(c as Buffer);
    try {
      return parsePart10Header(Buffer.concat(chunks), { complete: n === temp.size });
    } catch (e) {
      if (e instanceof DicomParseError) throw new IngestError(IngestErrorCode.CannotUnderstand, e.message);
      throw e;
    }
  }

  /** The instance's DICOM JSON without bulk data, as kept in the index. */
  private metadataOf(ds: DicomJson, hasPixelData: boolean, ts: string): Record<string, unknown> {
    const md: Record<string, unknown> = { ...ds };
    if (hasPixelData) md[Tag.PixelData] = { vr: ts === '1.2.840.10008.1.2' ? 'OW' : 'OB', BulkDataURI: '' };
    return md;
  }

  private studyConflict(sop: string, existingStudy: string, newStudy: string) {
    return new IngestError(IngestErrorCode.StudyConflict,
      `SOP Instance UID already stored under another study (${existingStudy}); refused under study ${newStudy} (${sop})`);
  }

  private writeError(e: unknown): IngestError {
    if (e instanceof IngestError) return e;
    if (e instanceof DicomStructureError) {
      return new IngestError(/truncated|ends/.test(e.message) ? IngestErrorCode.Truncated : IngestErrorCode.CannotUnderstand, e.message);
    }
    const err = e as NodeJS.ErrnoException;
    if (err?.code === 'ENOSPC' || err?.code === 'EIO' || err?.code === 'EDQUOT') {
      return new IngestError(IngestErrorCode.OutOfResources, `storage ${this.hot.id}: ${err.message}`);
    }
    if (err?.code === 'ERR_STREAM_PREMATURE_CLOSE' || err?.code === 'ECONNRESET' || /abort/i.test(String(err?.message))) {
      return new IngestError(IngestErrorCode.Aborted, `transfer aborted: ${err.message}`);
    }
    return new IngestError(IngestErrorCode.OutOfResources, `cannot write to storage ${this.hot.id}: ${err?.message ?? e}`);
  }
}
