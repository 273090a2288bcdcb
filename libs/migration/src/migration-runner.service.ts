import { MigrationState, MigrationStudyState } from '#vna/catalog';
import { type VnaConfig, VNA_CONFIG } from '#vna/config';
import { type DimseLogger, DimseStatusCode, type StoreHandler } from '#vna/dimse';
import { failureReasonFor, IngestError, IngestErrorCode, IngestService } from '#vna/ingest';
import { JobName, JobQueueService } from '#vna/jobs';
import { Inject, Injectable, Logger } from '@nestjs/common';
import { createReadStream } from 'node:fs';
import { readdir } from 'node:fs/promises';
import path from 'node:path';
import type { Readable } from 'node:stream';
import type { EnumerationProgress, EnumerationResult } from './date-windows.js';
import { DicomwebSource } from './dicomweb-source.js';
import { DicomdirError, dicomdirFiles, isDicomdir } from './dicomdir.js';
import { DimseSource, MigrationSourceError, type SourceInstance } from './dimse-source.js';
import {
  type DicomwebMigrationSource,
  type DimseMigrationSource,
  type EnumerationStep,
  type FolderMigrationSource,
  type LedgerEntry,
  type MigrationJob,
  MigrationRepository,
  type MigrationSource,
  TERMINAL_STUDY_STATES,
} from './migration.repository.js';
import { matchesScope, planStudies, type SourceStudy } from './scope.js';
import { Slots } from './slots.js';
import { inWindows } from './time-windows.js';
import { TokenBucket } from './token-bucket.js';

/** Attempts per ledger row (and per enumeration) before it is marked failed. */
export const MAX_ATTEMPTS = 5;
/** How often a running study re-reads its job's throttle (PATCH takes effect within this). */
const THROTTLE_REFRESH_MS = 1000;

/** A job's instances-per-second limit in this process (re-read from the database every second). */
class Throttle {
  private bucket: TokenBucket | null = null;
  private readAt = -Infinity;

  constructor(private readonly read: () => Promise<number | null>) {}

  async take(): Promise<void> {
    if (performance.now() - this.readAt > THROTTLE_REFRESH_MS) {
      this.readAt = performance.now();
      const rate = await this.read();
      if (rate === null) this.bucket = null;
      else if (!this.bucket) this.bucket = new TokenBucket(rate, 1);
      else if (this.bucket.currentRate !== rate) this.bucket.setRate(rate);
    }
    await this.bucket?.take();
  }

  get limited(): boolean {
    return this.bucket !== null;
  }
}

class RetryableError extends Error {}

/** The job was paused or canceled, or its time window closed, between two instances of a study. */
class StoppedError extends Error {}

/**
 * Runs migration jobs: enumerates a job's studies at the source into the ledger, then migrates
 * each ledger row (retrieve → verify → done/failed). Every object enters through IngestService,
 * like any other store. All state is in the database; queue jobs only say which row to look at.
 */
@Injectable()
export class MigrationRunnerService {
  private readonly logger = new Logger('Migration');
  private readonly dimseLog: DimseLogger;
  private readonly slots = new Map<string, Slots>();
  private readonly throttles = new Map<string, Throttle>();
  private readonly limits = new Map<string, number>();

  constructor(
    private readonly repo: MigrationRepository,
    private readonly jobs: JobQueueService,
    private readonly ingest: IngestService,
    @Inject(VNA_CONFIG) private readonly config: VnaConfig,
  ) {
    this.dimseLog = {
      log: (m) => this.logger.debug(m),
      warn: (m) => this.logger.warn(m),
      error: (m) => this.logger.error(m),
      debug: (m) => this.logger.verbose(m),
    };
  }

  private dimse(src: DimseMigrationSource): DimseSource {
    return new DimseSource(src, this.config.aeTitle, this.dimseLog);
  }

  private sourceFor(src: DimseMigrationSource | DicomwebMigrationSource): DimseSource | DicomwebSource {
    return src.kind === 'dicomweb' ? new DicomwebSource(src) : this.dimse(src);
  }

  /** Enqueue every open row of a RUNNING job, in migration order (dedup ids make it harmless). */
  async enqueueOpenRows(migrationId: string): Promise<number> {
    const ids = await this.repo.openRows(migrationId);
    await this.jobs.queueAll(ids.map((ledgerId) => ({ name: JobName.MigrationStudy, data: { ledgerId } }) as const), { coalesce: false });
    return ids.length;
  }

  async handleEnumerate({ migrationId }: { migrationId: string }): Promise<void> {
    const job = await this.repo.get(migrationId);
    if (!job || job.state !== MigrationState.Scheduled) return;
    const src = job.source;
    if (src.kind === 'folder') return this.enumerateFolder(job, src);
    // Each answered window goes into the ledger as it comes (with the job still SCHEDULED, so
    // nothing is retrieved yet); a restarted enumeration skips what an earlier run finished.
    const steps = new Map((await this.repo.enumerationProgress(migrationId)).map((s) => [s.step, s]));
    const progress: EnumerationProgress = {
      state: (step) => steps.get(step)?.state,
      done: async (step, studies, warning) => {
        const entry: EnumerationStep = { step, state: 'done', ...(warning ? { warning } : {}) };
        await this.repo.recordEnumerationStep(migrationId, entry, studies.filter((st) => matchesScope(st, job.scope)));
        steps.set(step, entry);
      },
      split: async (step) => {
        const entry: EnumerationStep = { step, state: 'split' };
        await this.repo.recordEnumerationStep(migrationId, entry, []);
        steps.set(step, entry);
      },
    };
    const resumed = steps.size;
    let found: EnumerationResult;
    try {
      found = await this.sourceFor(src).findStudies(job.scope, progress);
    } catch (e) {
      const attempts = job.attempts + 1;
      // A 4xx of a DICOMweb source (bad base URL, credentials) fails the job at once.
      const final = attempts >= MAX_ATTEMPTS || (e instanceof MigrationSourceError && e.permanent);
      const message = `enumeration at ${describeSource(src)} failed: ${(e as Error).message}`;
      await this.repo.enumerationFailed(migrationId, message, attempts, final);
      this.logger.warn(`migration ${migrationId}: ${message}${final ? ' (giving up)' : ' (will retry)'}`);
      if (final) return;
      throw e;
    }
    // What the enumeration could not be sure of (a single day or the date-less sweep cut short by
    // the source's own limit, in this run or an earlier one) stays visible as the job's last_error.
    const warnings = [...steps.values()].flatMap((st) => (st.warning ? [st.warning] : []));
    const warning = warnings.length ? `enumeration warning: ${warnings.join('; ')}` : null;
    // Every answer of this run and the earlier ones is in the ledger (in scope, one row per study): number them in the job's order.
    const listed: SourceStudy[] = (await this.repo.ledgerStudies(migrationId)).map((r) => ({ ...r, patientId: '', accessionNumber: '', modalities: [], numInstances: null }));
    const ordered = planStudies(listed, job.order === 'list' ? { studyInstanceUids: job.scope.studyInstanceUids } : {}, job.order);
    const updated = await this.repo.finishEnumeration(migrationId, ordered.map((st) => st.studyIuid), warning);
    this.logger.log(
      `migration ${migrationId} "${job.name}": ${ordered.length} studies in scope at ${describeSource(src)} ` +
        `(${found.queries} queries, ${found.splits} date windows split${resumed ? `; resumed after ${resumed} finished steps` : ''})`,
    );
    if (warning) this.logger.warn(`migration ${migrationId}: ${warning}`);
    if (updated?.state === MigrationState.Running) {
      await this.enqueueOpenRows(migrationId);
      await this.repo.completeIfDone(migrationId);
    }
  }

  async handleStudy({ ledgerId }: { ledgerId: string }): Promise<void> {
    const row = await this.repo.ledgerRow(ledgerId);
    if (!row || (TERMINAL_STUDY_STATES as string[]).includes(row.state)) return;
    const job = await this.repo.get(row.migrationId);
    // Paused or canceled: the row stays as it is; resuming re-enqueues it.
    if (!job || job.state !== MigrationState.Running) return;
    // Outside the job's time windows: the row stays pending; the reconciler offers it again.
    if (!inWindows(new Date(), job.throttle.windows, job.throttle.timeZone)) return;
    this.limits.set(job.id, job.throttle.maxAssociations);
    const slots = this.slots.get(job.id) ?? new Slots(() => this.limits.get(job.id) ?? 1, (holding, above) => this.repo.lowestDueSeq(job.id, holding, above));
    this.slots.set(job.id, slots);
    const release = await slots.acquire(row.seq);
    try {
      const current = await this.repo.get(job.id);
      if (!current || current.state !== MigrationState.Running) return;
      await this.migrateStudy(current, row);
    } finally {
      release();
    }
    await this.repo.completeIfDone(job.id);
  }

  /**
   * Every regular file under the folder (recursively, sorted by path), or every file its DICOMDIR
   * references (in record order), one ledger row each.
   */
  private async enumerateFolder(job: MigrationJob, src: FolderMigrationSource): Promise<void> {
    let files: string[];
    const what = src.dicomdir ? `the DICOMDIR ${path.join(src.path, src.dicomdir)}` : `the folder ${src.path}`;
    try {
      if (src.dicomdir) files = await dicomdirFiles(path.join(src.path, src.dicomdir));
      else {
        const entries = await readdir(src.path, { recursive: true, withFileTypes: true });
        files = entries
          .filter((e) => e.isFile())
          .map((e) => path.relative(src.path, path.join(e.parentPath, e.name)))
          .sort();
      }
    } catch (e) {
      const attempts = job.attempts + 1;
      // A DICOMDIR that cannot be parsed will not parse on a retry either.
      const final = attempts >= MAX_ATTEMPTS || e instanceof DicomdirError;
      const message = `cannot list ${what}: ${(e as Error).message}`;
      await this.repo.enumerationFailed(job.id, message, attempts, final);
      if (final) return;
      throw e;
    }
    const updated = await this.repo.recordFiles(job.id, files);
    this.logger.log(`migration ${job.id} "${job.name}": ${files.length} files in ${what}`);
    if (updated?.state === MigrationState.Running) {
      await this.enqueueOpenRows(job.id);
      await this.repo.completeIfDone(job.id);
    }
  }

  /**
   * One file through IngestService as a Part 10 object. Not DICOM, truncated, without its UIDs,
   * or unreadable: the row fails with the reason (a re-run would fail the same way). Storage or
   * database trouble: retried.
   */
  private async migrateFile(job: MigrationJob, src: FolderMigrationSource, row: LedgerEntry): Promise<void> {
    const attempt = await this.repo.beginAttempt(row.id);
    const file = path.join(src.path, row.filePath);
    try {
      await this.throttleOf(job.id).take();
      const data = createReadStream(file);
      const opened = new Promise<void>((resolve, reject) => {
        data.once('open', () => resolve());
        data.once('error', reject);
      });
      await opened;
      const result = await this.ingest.store({ data, kind: 'part10', sourceAe: `folder:${job.id}`.slice(0, 64) });
      await this.ingest.senderDone(new Map([[result.studyInstanceUid, 1]]), { actor: `folder:${job.id}`.slice(0, 64), via: 'FOLDER' });
      const missing = await this.repo.missingInArchive(result.studyInstanceUid, [result.sopInstanceUid]);
      if (missing.length) throw new Error(`${result.sopInstanceUid} is not in the archive after its store`);
      await this.repo.finishFile(row.id, {
        studyIuid: result.studyInstanceUid, sopIuid: result.sopInstanceUid, size: result.size, migrated: result.outcome !== 'identical',
      });
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      const permanent = e instanceof IngestError && e.code !== IngestErrorCode.OutOfResources;
      const unreadable = typeof code === 'string' && ['ENOENT', 'EACCES', 'EISDIR', 'EPERM', 'ELOOP'].includes(code);
      const message = (e as Error).message || String(e);
      // A file-set's directory met in a folder is not an object to archive (its files are): the
      // ingest refuses it (no SOP Instance UID), and only then is the file looked at again.
      if (permanent && !src.dicomdir && (await isDicomdir(file).catch(() => false))) {
        await this.repo.skipFile(row.id, 'DICOMDIR (the directory of a file-set, not an object): not imported');
        return;
      }
      if (permanent || unreadable || attempt >= MAX_ATTEMPTS) {
        const reason = permanent ? `not stored: ${message}` : unreadable ? `unreadable: ${message}` : `gave up after ${attempt} attempts: ${message}`;
        await this.repo.fail(row.id, reason, 1, 1);
        this.logger.warn(`migration ${job.id} file ${row.filePath}: ${reason}`);
        return;
      }
      const next = new Date(Date.now() + 1000 * 2 ** (attempt - 1));
      await this.repo.retryLater(row.id, message, next);
      throw new RetryableError(message);
    }
  }

  private throttleOf(jobId: string): Throttle {
    let t = this.throttles.get(jobId);
    if (!t) {
      t = new Throttle(() => this.repo.rateOf(jobId));
      this.throttles.set(jobId, t);
    }
    return t;
  }

  private async migrateStudy(job: MigrationJob, row: LedgerEntry): Promise<void> {
    const src = job.source;
    if (src.kind === 'folder') return this.migrateFile(job, src, row);
    const attempt = await this.repo.beginAttempt(row.id);
    const source = this.sourceFor(src);
    let instances: SourceInstance[] | undefined;
    try {
      instances = source instanceof DicomwebSource ? await source.listInstances(row.studyIuid) : await source.listInstances(row.studyIuid, src.kind === 'dimse' && src.retrieve === 'get');
      if (instances.length === 0) {
        await this.repo.fail(row.id, 'the source lists no instances for this study', 0, 0);
        return;
      }
      const sops = instances.map((i) => i.sopIuid);
      await this.repo.baseline(row.id, row.studyIuid, sops);
      let missing = await this.repo.missingInArchive(row.studyIuid, sops);
      let sourceError: MigrationSourceError | null = null;
      const missingBefore = missing.length;
      if (missing.length) {
        sourceError = await this.retrieveReported(job, src, source, row.studyIuid, instances, missing);
        await this.repo.setState(row.id, MigrationStudyState.Verifying);
        missing = await this.repo.missingInArchive(row.studyIuid, sops);
        if (missing.length) {
          this.logger.warn(`migration ${job.id} study ${row.studyIuid}: ${missing.length} of ${sops.length} instances missing after retrieval, fetching again`);
          await this.repo.setState(row.id, MigrationStudyState.Retrieving);
          sourceError = (await this.retrieveReported(job, src, source, row.studyIuid, instances, missing)) ?? sourceError;
          await this.repo.setState(row.id, MigrationStudyState.Verifying);
          missing = await this.repo.missingInArchive(row.studyIuid, sops);
        }
      }
      // The source refused and nothing came at all (e.g. it cannot reach us now): retry later.
      if (missing.length && missing.length === missingBefore && sourceError) throw sourceError;
      if (missing.length) {
        const reason = `${missing.length} of ${sops.length} instances of the source are not in the archive after a re-fetch: ${missing.slice(0, 5).join(', ')}${missing.length > 5 ? ', ...' : ''}${sourceError ? `; ${sourceError.message}` : ''}`;
        await this.repo.fail(row.id, reason, sops.length, missing.length);
        this.logger.warn(`migration ${job.id} study ${row.studyIuid} failed: ${reason}`);
        return;
      }
      const done = await this.repo.finish(row.id, row.studyIuid, sops);
      this.logger.log(`migration ${job.id} study ${row.studyIuid}: ${done?.state} (${done?.migratedInstances} migrated, ${done?.skippedInstances} already here)`);
    } catch (e) {
      if (e instanceof StoppedError) {
        await this.repo.setState(row.id, MigrationStudyState.Pending);
        this.logger.log(`migration ${job.id} study ${row.studyIuid}: stopped between instances (${e.message}); stays pending`);
        return;
      }
      const message = (e as Error).message || String(e);
      if (e instanceof MigrationSourceError && e.permanent) {
        await this.repo.fail(row.id, message, instances?.length ?? null, 0);
        this.logger.warn(`migration ${job.id} study ${row.studyIuid} failed: ${message}`);
        return;
      }
      if (attempt >= MAX_ATTEMPTS) {
        await this.repo.fail(row.id, `gave up after ${attempt} attempts: ${message}`, instances?.length ?? null, 0);
        this.logger.warn(`migration ${job.id} study ${row.studyIuid} failed after ${attempt} attempts: ${message}`);
        return;
      }
      // BullMQ retries the job with exponential backoff from 1 s (set in JobQueueService).
      const next = new Date(Date.now() + 1000 * 2 ** (attempt - 1));
      await this.repo.retryLater(row.id, message, next);
      this.logger.warn(`migration ${job.id} study ${row.studyIuid} attempt ${attempt} failed (retry at ${next.toISOString()}): ${message}`);
      throw new RetryableError(message);
    }
  }

  /**
   * Retrieve, reporting a failure status of the source instead of throwing: what arrived is
   * verified against the database either way. Network errors (no association, abort) throw and
   * make the attempt retry.
   */
  private async retrieveReported(
    job: MigrationJob,
    src: DimseMigrationSource | DicomwebMigrationSource,
    source: DimseSource | DicomwebSource,
    studyIuid: string,
    all: SourceInstance[],
    missing: string[],
  ): Promise<MigrationSourceError | null> {
    try {
      if (source instanceof DicomwebSource) await this.retrieveWeb(job, source, studyIuid, all, missing);
      else await this.retrieve(job, src as DimseMigrationSource, source, studyIuid, all, missing);
      return null;
    } catch (e) {
      if (e instanceof MigrationSourceError) return e;
      throw e;
    }
  }

  /**
   * WADO-RS: the whole study in one request when none of it is here and the job is unthrottled;
   * otherwise one request per missing instance (each after its token, so a slow rate never holds
   * a transfer open). Every part goes through IngestService as a Part 10 object; between parts a
   * pause, cancel or closed window stops the study (it stays pending).
   */
  private async retrieveWeb(job: MigrationJob, web: DicomwebSource, studyIuid: string, all: SourceInstance[], missing: string[]): Promise<void> {
    const throttle = this.throttleOf(job.id);
    await throttle.take();
    let firstToken = true;
    const wanted = new Set(missing);
    const subset = all.filter((i) => wanted.has(i.sopIuid));
    const perInstance = subset.length < all.length || throttle.limited;
    let checkedAt = -Infinity;
    const beforeEach = async () => {
      if (firstToken) firstToken = false;
      else await throttle.take();
      // A whole-study stream re-reads the job at most once a second; per-instance requests each time.
      if (!perInstance && performance.now() - checkedAt < THROTTLE_REFRESH_MS) return;
      checkedAt = performance.now();
      const now = await this.repo.get(job.id);
      if (!now || now.state !== MigrationState.Running) throw new StoppedError(`job ${now?.state ?? 'gone'}`);
      if (!inWindows(new Date(), now.throttle.windows, now.throttle.timeZone)) throw new StoppedError('outside its time windows');
    };
    const sourceAe = web.sourceAe;
    let stored = 0;
    const onPart = async (body: Readable, contentType: string) => {
      if (!contentType.startsWith('application/dicom') || contentType.startsWith('application/dicom+')) {
        body.resume();
        this.logger.warn(`migration ${job.id} study ${studyIuid}: a WADO-RS part of type "${contentType || 'none'}" skipped`);
        return;
      }
      try {
        await this.ingest.store({ data: body, kind: 'part10', sourceAe, expectedStudyUid: studyIuid });
        stored++;
      } catch (e) {
        // A refused object (not DICOM, wrong study, UID clash): the others go on; verification
        // finds it missing, fetches it again, then fails the study with the reason.
        if (e instanceof IngestError && e.code !== IngestErrorCode.OutOfResources && e.code !== IngestErrorCode.Aborted) {
          body.resume();
          this.logger.warn(`migration ${job.id}: ${e.sopInstanceUid ?? 'an object'} of study ${studyIuid} refused: ${e.message}`);
          return;
        }
        throw e;
      }
    };
    try {
      await web.retrieve(studyIuid, perInstance ? subset : null, onPart, beforeEach);
    } finally {
      await this.ingest.senderDone(new Map([[studyIuid, stored]]), { actor: sourceAe, via: 'WADO-RS' });
    }
  }

  private async retrieve(job: MigrationJob, src: DimseMigrationSource, source: DimseSource, studyIuid: string, all: SourceInstance[], missing: string[]): Promise<void> {
    const throttle = this.throttleOf(job.id);
    await throttle.take(); // reads the current limit; the first object's token
    let firstToken = true;
    const take = async () => {
      if (firstToken) {
        firstToken = false;
        return;
      }
      await throttle.take();
    };
    // The whole study when none of it is here yet; otherwise only the missing instances, one
    // retrieve each, so objects the archive already holds are never sent again (a source copy
    // with other bytes would otherwise become a new version of an archived object).
    const wanted = new Set(missing);
    const subset = all.filter((i) => wanted.has(i.sopIuid));
    const partial = subset.length < all.length;
    if (src.retrieve === 'move') {
      // Throttled C-MOVE: one instance per C-MOVE, each after its token (the objects arrive at our
      // listener). Between instances, a pause, cancel or closed window stops the study (it stays pending).
      const beforeEach = async () => {
        await take();
        const now = await this.repo.get(job.id);
        if (!now || now.state !== MigrationState.Running) throw new StoppedError(`job ${now?.state ?? 'gone'}`);
        if (!inWindows(new Date(), now.throttle.windows, now.throttle.timeZone)) throw new StoppedError('outside its time windows');
      };
      await source.move(studyIuid, partial || throttle.limited ? subset : null, beforeEach);
      return;
    }
    const sourceAe = src.aeTitle;
    let stored = 0;
    const onStore: StoreHandler = async (req, dataset) => {
      await take();
      try {
        await this.ingest.store({
          data: dataset,
          kind: 'dataset',
          sopClassUid: req.affectedSopClassUid,
          sopInstanceUid: req.affectedSopInstanceUid,
          transferSyntaxUid: req.transferSyntaxUid,
          sourceAe,
        });
        stored++;
        return { status: DimseStatusCode.Success };
      } catch (e) {
        if (e instanceof IngestError) {
          this.logger.warn(`migration ${job.id}: ${req.affectedSopInstanceUid} refused: ${e.message}`);
          return { status: failureReasonFor(e.code), errorComment: e.message.slice(0, 64) };
        }
        this.logger.error(`migration ${job.id}: storing ${req.affectedSopInstanceUid} failed: ${(e as Error).message}`);
        return { status: DimseStatusCode.OutOfResources, errorComment: String((e as Error).message).slice(0, 64) };
      }
    };
    try {
      await source.get(studyIuid, partial ? subset : null, all.map((i) => i.sopClassUid).filter(Boolean), onStore);
    } finally {
      await this.ingest.senderDone(new Map([[studyIuid, stored]]), { actor: sourceAe, via: 'C-GET' });
    }
  }
}

function describeSource(src: MigrationSource): string {
  if (src.kind === 'dimse') return `${src.aeTitle}@${src.host}:${src.port}`;
  if (src.kind === 'dicomweb') return src.baseUrl;
  return src.path;
}
