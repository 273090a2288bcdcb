import { IndexRepository, normalizePn, type ReceivedInstance, type StudyBatch } from '#vna/catalog';
import {
  type DicomJson,
  extractIndexAttributes,
  PATIENT_LEVEL_TAGS,
  pickTags,
  SERIES_LEVEL_TAGS,
  STUDY_LEVEL_TAGS,
} from '#vna/dicom';
import { VNA_CONFIG, type VnaConfig } from '#vna/config';
import { JobName, JobQueueService } from '#vna/jobs';
import { Inject, Injectable, Logger, Optional } from '@nestjs/common';

/** Instances indexed per transaction. */
const BATCH = 500;

/** Links received instances into the patient/study/series index. Reads only the database. */
@Injectable()
export class IndexerService {
  private readonly logger = new Logger(IndexerService.name);

  constructor(
    private readonly index: IndexRepository,
    private readonly jobs: JobQueueService,
    @Optional() @Inject(VNA_CONFIG) private readonly config?: VnaConfig,
  ) {}

  /** Index every RECEIVED instance of a study, batch after batch, until none is left. */
  async handleIndexStudy({ studyIuid }: { studyIuid: string }): Promise<number> {
    let total = 0;
    for (;;) {
      const n = await this.index.indexStudyBatch(studyIuid, BATCH, (rows) => deriveBatch(studyIuid, rows));
      total += n;
      if (n < BATCH) break;
    }
    // The study changed: its retention expiry is recomputed in the background (the retention
    // sweeper finds it anyway if this request is lost, so it never fails the index job).
    if (total > 0) {
      await this.jobs
        .queue({ name: JobName.RetentionEvaluateStudy, data: { studyIuid } })
        .catch((e) => this.logger.warn(`retention evaluation of ${studyIuid} not requested: ${e}`));
      // Priors prefetch (VNA_PRIORS_PREFETCH): a background job on the tiering queue, run once per
      // study (priors_prefetch); later batches of the study ride on it or find it done.
      if (this.config?.priorsPrefetch.enabled) {
        await this.jobs
          .queue({ name: JobName.PriorsPrefetch, data: { studyIuid } })
          .catch((e) => this.logger.warn(`priors prefetch for ${studyIuid} not requested: ${e}`));
      }
    }
    return total;
  }

  /**
   * Called after a study's job has left the queue: an instance committed while the job was
   * finishing could not enqueue (the job id was taken), so look again now that it is free.
   */
  async afterIndexStudy(studyIuid: string): Promise<void> {
    if (await this.index.hasReceived(studyIuid)) await this.jobs.queue({ name: JobName.IndexStudy, data: { studyIuid } }, { coalesce: false });
  }

  /**
   * Re-enqueue every study with received-but-unindexed instances. Runs at start-up and
   * periodically, so a Redis that lost its jobs or a worker that died mid-job never leaves an
   * instance unindexed.
   */
  async reconcile(): Promise<number> {
    let after = '';
    let total = 0;
    for (;;) {
      const studies = await this.index.studiesWithReceived(500, after);
      if (studies.length === 0) break;
      await this.jobs.queueAll(studies.map((studyIuid) => ({ name: JobName.IndexStudy, data: { studyIuid } })), { coalesce: false });
      total += studies.length;
      after = studies[studies.length - 1]!;
    }
    if (total) this.logger.log(`reconciler enqueued ${total} study(ies) with unindexed instances`);
    return total;
  }
}

/** Rows for the index from a batch of one study's instances; the newest instance's values win. */
export function deriveBatch(studyIuid: string, rows: ReceivedInstance[]): StudyBatch {
  const newest = rows[rows.length - 1]!;
  const top = newest.metadata as DicomJson;
  const a = extractIndexAttributes(top);
  const series = new Map<string, StudyBatch['series'][number]>();
  const instances: StudyBatch['instances'] = [];
  for (const r of rows) {
    const ds = r.metadata as DicomJson;
    const x = extractIndexAttributes(ds);
    series.set(r.seriesIuid, { ...x.series, seriesIuid: r.seriesIuid, attrs: pickTags(ds, SERIES_LEVEL_TAGS) });
    instances.push({
      id: r.id, seriesIuid: r.seriesIuid, contentDate: x.instance.contentDate, contentTime: x.instance.contentTime,
      rows: x.instance.rows, columns: x.instance.columns,
    });
  }
  return {
    studyIuid,
    patient: { ...a.patient, patientNameNorm: normalizePn(a.patient.patientName), attrs: pickTags(top, PATIENT_LEVEL_TAGS) },
    study: { ...a.study, referringPhysicianNorm: normalizePn(a.study.referringPhysician), attrs: pickTags(top, STUDY_LEVEL_TAGS) },
    series: [...series.values()],
    instances,
  };
}
