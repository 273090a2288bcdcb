import { IndexRepository, InstanceRepository, InstanceStatus, normalizePn } from '#vna/catalog';
import {
  type DicomJson,
  extractIndexAttributes,
  PATIENT_LEVEL_TAGS,
  pickTags,
  SERIES_LEVEL_TAGS,
  STUDY_LEVEL_TAGS,
} from '#vna/dicom';
import { JobName, JobQueueService } from '#vna/jobs';
import { Injectable, Logger } from '@nestjs/common';

/** Links received instances into the patient/study/series index. Reads only the database. */
@Injectable()
export class IndexerService {
  private readonly logger = new Logger(IndexerService.name);

  constructor(
    private readonly index: IndexRepository,
    private readonly instances: InstanceRepository,
    private readonly jobs: JobQueueService,
  ) {}

  async handleIndexInstance({ instanceId }: { instanceId: string; version: number }): Promise<void> {
    const inst = await this.index.loadInstance(instanceId);
    if (!inst || inst.status === InstanceStatus.Indexed) return;
    const ds = inst.metadata as DicomJson;
    const a = extractIndexAttributes(ds);
    const done = await this.index.index(inst.id, inst.version, {
      patient: {
        ...a.patient,
        patientNameNorm: normalizePn(a.patient.patientName),
        attrs: pickTags(ds, PATIENT_LEVEL_TAGS),
      },
      study: {
        ...a.study,
        // The index row is keyed by the UIDs the instance was received with.
        studyIuid: inst.studyIuid,
        referringPhysicianNorm: normalizePn(a.study.referringPhysician),
        attrs: pickTags(ds, STUDY_LEVEL_TAGS),
      },
      series: { ...a.series, seriesIuid: inst.seriesIuid, attrs: pickTags(ds, SERIES_LEVEL_TAGS) },
      instance: { contentDate: a.instance.contentDate, contentTime: a.instance.contentTime, rows: a.instance.rows, columns: a.instance.columns },
    });
    if (!done) this.logger.debug(`instance ${instanceId} changed while indexing; its newer version has its own job`);
  }

  /**
   * Re-enqueue every received-but-unindexed instance. Runs at start-up and periodically, so a
   * Redis that lost its jobs or a worker that died mid-job never leaves an instance unindexed.
   */
  async reconcile(): Promise<number> {
    let after = '0';
    let total = 0;
    for (;;) {
      const batch = await this.instances.findUnindexed(500, after);
      if (batch.length === 0) break;
      await this.jobs.queueAll(batch.map((b) => ({ name: JobName.IndexInstance, data: { instanceId: b.id, version: b.version } })));
      total += batch.length;
      after = batch[batch.length - 1]!.id;
    }
    if (total) this.logger.log(`reconciler re-enqueued ${total} unindexed instance(s)`);
    return total;
  }
}
