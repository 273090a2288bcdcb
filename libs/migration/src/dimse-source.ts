/**
 * The legacy archive as a DIMSE peer: Study Root C-FIND to list its studies and each study's
 * instances, C-MOVE (to this archive's own AE title) or C-GET (on the requesting association)
 * to retrieve them. One association per call; the caller limits how many are open at once.
 */
import {
  COMMAND_TRANSFER_SYNTAXES,
  type DicomDict,
  DimseClient,
  type DimseLogger,
  type ProposedContext,
  type RetrieveResult,
  SopClass,
  type StoreHandler,
  TransferSyntax,
} from '#vna/dimse';
import { DEFAULT_MAX_RESULTS_PER_QUERY, type EnumerationProgress, type EnumerationResult, enumerateStudies, type FindAnswer } from './date-windows.js';
import { firstValue, instanceQuery, type MigrationScope, parseStudy, retrieveIdentifier, seriesQuery, type SourceStudy, studyQueries, Tags } from './scope.js';

export interface DimseSourceConfig {
  kind: 'dimse';
  aeTitle: string;
  host: string;
  port: number;
  retrieve: 'move' | 'get';
  /** Answers per C-FIND before its date window is split (date-windows.ts); default 1000. */
  maxResultsPerQuery?: number;
}

/** A source's failure (refused, error status, HTTP error): reported in the ledger, retried where it may pass. */
export class MigrationSourceError extends Error {
  override name = 'MigrationSourceError';
  constructor(
    message: string,
    /** Retrying cannot help (e.g. HTTP 404 / 401 for the source's base URL). */
    readonly permanent = false,
  ) {
    super(message);
  }
}

export interface SourceInstance {
  sopIuid: string;
  sopClassUid: string;
  seriesIuid: string;
}

/** Syntaxes proposed for C-GET, one context each, so the source can send every object as it stored it. */
const GET_TRANSFER_SYNTAXES: string[] = [
  TransferSyntax.ExplicitVRLittleEndian,
  TransferSyntax.ImplicitVRLittleEndian,
  TransferSyntax.DeflatedExplicitVRLittleEndian,
  TransferSyntax.ExplicitVRBigEndian,
  TransferSyntax.JPEGBaseline,
  TransferSyntax.JPEGExtended,
  TransferSyntax.JPEGLossless,
  TransferSyntax.JPEGLosslessSV1,
  TransferSyntax.JPEGLSLossless,
  TransferSyntax.JPEGLSNearLossless,
  TransferSyntax.JPEG2000Lossless,
  TransferSyntax.JPEG2000,
  TransferSyntax.RLELossless,
];
const MAX_CONTEXTS = 128;

/** Presentation contexts for a C-GET of objects of these SOP classes (we take the SCP role for storage). */
export function getContexts(sopClasses: string[]): ProposedContext[] {
  const roles = { scuRole: false, scpRole: true };
  const control: ProposedContext[] = [{ abstractSyntax: SopClass.StudyRootGet, transferSyntaxes: [...COMMAND_TRANSFER_SYNTAXES] }];
  const room = MAX_CONTEXTS - control.length;
  const classes = [...new Set(sopClasses)];
  if (classes.length * GET_TRANSFER_SYNTAXES.length <= room) {
    // One syntax per context: the source finds a context with each object's stored syntax.
    return [...control, ...classes.flatMap((c) => GET_TRANSFER_SYNTAXES.map((ts) => ({ abstractSyntax: c, transferSyntaxes: [ts], roles })))];
  }
  // Too many classes for one context per pair: one context per class, the source picks a syntax.
  return [...control, ...classes.slice(0, room).map((c) => ({ abstractSyntax: c, transferSyntaxes: [...GET_TRANSFER_SYNTAXES], roles }))];
}

export class DimseSourceError extends MigrationSourceError {
  override name = 'DimseSourceError';
}

export class DimseSource {
  constructor(
    private readonly source: DimseSourceConfig,
    private readonly ourAeTitle: string,
    private readonly logger: DimseLogger,
  ) {}

  private async open(contexts: ProposedContext[], onStore?: StoreHandler): Promise<DimseClient> {
    return DimseClient.connect({
      host: this.source.host,
      port: this.source.port,
      callingAeTitle: this.ourAeTitle,
      calledAeTitle: this.source.aeTitle,
      contexts,
      dimseTimeoutMs: 120_000,
      logger: this.logger,
      ...(onStore ? { onStore } : {}),
    });
  }

  private async using<T>(contexts: ProposedContext[], fn: (c: DimseClient) => Promise<T>, onStore?: StoreHandler): Promise<T> {
    const client = await this.open(contexts, onStore);
    try {
      const r = await fn(client);
      await client.release().catch(() => client.abort());
      return r;
    } catch (e) {
      if (client.isOpen) client.abort();
      throw e;
    }
  }

  private static findContexts(): ProposedContext[] {
    return [{ abstractSyntax: SopClass.StudyRootFind, transferSyntaxes: [...COMMAND_TRANSFER_SYNTAXES] }];
  }

  /**
   * The studies of the scope (one association), in self-splitting date windows: a C-FIND that
   * gives more than maxResultsPerQuery answers is canceled (C-CANCEL) and its window split; one
   * that the source ends with Cancel by itself (its own result limit, e.g. Orthanc's
   * LimitFindResults) counts as too large too.
   */
  async findStudies(scope: MigrationScope, progress?: EnumerationProgress): Promise<EnumerationResult> {
    return this.using(DimseSource.findContexts(), async (c) => {
      const finder = {
        find: async (q: DicomDict, cap: number | null, keep?: (s: SourceStudy) => boolean): Promise<FindAnswer> => {
          const studies: SourceStudy[] = [];
          let answers = 0;
          let finalStatus = 0;
          let over = false;
          for await (const ds of c.find(SopClass.StudyRootFind, q, { onFinalStatus: (s) => (finalStatus = s) })) {
            const s = parseStudy(ds);
            if (s) answers++;
            if (s && (!keep || keep(s))) studies.push(s);
            if (cap !== null && answers > cap) {
              over = true;
              break; // the client sends C-CANCEL and waits for the final response
            }
          }
          return { studies, truncated: over || finalStatus === 0xfe00 };
        },
      };
      return enumerateStudies(finder, studyQueries(scope), scope, this.source.maxResultsPerQuery ?? DEFAULT_MAX_RESULTS_PER_QUERY, progress);
    });
  }

  /**
   * Every instance of a study at the source: SERIES-level, then IMAGE-level C-FIND per series.
   * A listing the source ends with Cancel by itself (its own result limit) cannot be trusted for
   * the reconciliation: the study fails with that reason (retrying would not help).
   */
  async listInstances(studyIuid: string, withSopClass: boolean): Promise<SourceInstance[]> {
    return this.using(DimseSource.findContexts(), async (c) => {
      const complete = (level: string) => (status: number) => {
        if (status === 0xfe00) {
          throw new DimseSourceError(`the source cut short its ${level}-level C-FIND answer for study ${studyIuid} (its own result limit): its instances cannot be counted`, true);
        }
      };
      const series: string[] = [];
      for await (const ds of c.find(SopClass.StudyRootFind, seriesQuery(studyIuid), { onFinalStatus: complete('SERIES') })) {
        const uid = firstValue(ds, Tags.SeriesInstanceUID);
        if (uid && !series.includes(uid)) series.push(uid);
      }
      const seen = new Set<string>();
      const out: SourceInstance[] = [];
      for (const seriesIuid of series) {
        for await (const ds of c.find(SopClass.StudyRootFind, instanceQuery(studyIuid, seriesIuid, withSopClass), { onFinalStatus: complete('IMAGE') })) {
          const sopIuid = firstValue(ds, Tags.SOPInstanceUID);
          if (!sopIuid || seen.has(sopIuid)) continue;
          seen.add(sopIuid);
          out.push({ sopIuid, seriesIuid, sopClassUid: firstValue(ds, Tags.SOPClassUID) });
        }
      }
      return out;
    });
  }

  /**
   * C-MOVE to our own AE title: the whole study, or (throttled) one instance per C-MOVE, each
   * after `beforeEach` resolves. The objects arrive through the archive's DIMSE listener.
   */
  async move(studyIuid: string, instances: SourceInstance[] | null, beforeEach?: () => Promise<void>): Promise<void> {
    const contexts = [{ abstractSyntax: SopClass.StudyRootMove, transferSyntaxes: [...COMMAND_TRANSFER_SYNTAXES] }];
    await this.using(contexts, async (c) => {
      if (!instances) return check(await c.move(SopClass.StudyRootMove, this.ourAeTitle, retrieveIdentifier(studyIuid)), 'C-MOVE');
      for (const i of instances) {
        await beforeEach?.();
        check(await c.move(SopClass.StudyRootMove, this.ourAeTitle, retrieveIdentifier(studyIuid, i)), 'C-MOVE');
      }
    });
  }

  /**
   * C-GET of the whole study, or of these instances (one C-GET each, on one association); each
   * incoming object goes to `onStore` (which may wait for the throttle).
   */
  async get(studyIuid: string, instances: SourceInstance[] | null, sopClasses: string[], onStore: StoreHandler): Promise<void> {
    await this.using(
      getContexts(sopClasses),
      async (c) => {
        if (!instances) return check(await c.get(SopClass.StudyRootGet, retrieveIdentifier(studyIuid)), 'C-GET');
        for (const i of instances) check(await c.get(SopClass.StudyRootGet, retrieveIdentifier(studyIuid, i)), 'C-GET');
      },
      onStore,
    );
  }
}

/**
 * A retrieve that ran its sub-operations is left to verification, whatever its final status (some
 * sub-operations failing makes it 0xA702/0xB000: the database says which objects came). One that
 * failed before any sub-operation (unknown destination, refused, out of resources) is an error.
 */
function check(r: RetrieveResult, op: string): void {
  const s = r.status;
  if (s === 0x0000 || (s & 0xf000) === 0xb000) return;
  if (r.completed + r.failed + r.warning > 0) return;
  throw new DimseSourceError(
    `${op} failed at the source: status 0x${s.toString(16).padStart(4, '0')}${r.errorComment ? ` (${r.errorComment})` : ''}`,
  );
}
