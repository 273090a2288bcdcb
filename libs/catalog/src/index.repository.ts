import { Injectable } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import type { DataSource, EntityManager } from 'typeorm';
import { InstanceStatus } from './entities/index.js';

export interface PatientRow { patientId: string; issuer: string; patientName: string; patientNameNorm: string; birthDate: string; sex: string; attrs: object }
export interface StudyRow {
  studyDate: string; studyTime: string; accessionNumber: string; studyId: string; studyDescription: string;
  referringPhysician: string; referringPhysicianNorm: string; attrs: object;
}
export interface SeriesRow {
  seriesIuid: string; modality: string; seriesNumber: number | null; seriesDescription: string; bodyPart: string;
  institutionName: string; stationName: string; performedStartDate: string; performedStartTime: string; attrs: object;
}
export interface InstanceRow { id: string; seriesIuid: string; contentDate: string; contentTime: string; rows: number | null; columns: number | null }

/** What the indexer derived from a batch of one study's instances. */
export interface StudyBatch {
  studyIuid: string;
  /** Patient and study attributes (from the newest instance of the batch). */
  patient: PatientRow;
  study: StudyRow;
  /** One row per series in the batch (from its newest instance). */
  series: SeriesRow[];
  instances: InstanceRow[];
}

export interface ReceivedInstance {
  id: string;
  seriesIuid: string;
  metadata: Record<string, unknown>;
}

/** Links received instances into patient / study / series and keeps the aggregates. */
@Injectable()
export class IndexRepository {
  constructor(@InjectDataSource() private readonly db: DataSource) {}

  /**
   * Index up to `limit` RECEIVED instances of a study in one transaction: lock them (SKIP LOCKED,
   * so concurrent workers split the work), let `derive` compute the rows from their metadata, then
   * upsert patient, study and series, link the instances and refresh the aggregates. Lock order
   * is instance rows -> patient -> study -> series, the same in every worker.
   * Returns how many instances were indexed (0 when none were waiting).
   */
  async indexStudyBatch(studyIuid: string, limit: number, derive: (rows: ReceivedInstance[]) => StudyBatch): Promise<number> {
    return this.db.transaction(async (tx) => {
      const received: Array<{ id: string; series_iuid: string; metadata: Record<string, unknown> }> = await tx.query(
        `SELECT id, series_iuid, metadata FROM instance WHERE study_iuid = $1 AND status = $2
          ORDER BY id LIMIT $3 FOR UPDATE SKIP LOCKED`,
        [studyIuid, InstanceStatus.Received, limit],
      );
      if (received.length === 0) return 0;
      const batch = derive(received.map((r) => ({ id: r.id, seriesIuid: r.series_iuid, metadata: r.metadata })));
      await this.write(tx, batch);
      return received.length;
    });
  }

  private async write(tx: EntityManager, b: StudyBatch): Promise<void> {
    const p = b.patient;
    const [patient]: Array<{ id: string }> = await tx.query(
      `INSERT INTO patient (patient_id, issuer, patient_name, patient_name_norm, birth_date, sex, attrs)
       VALUES ($1, $2, $3, $4, $5, $6, $7)
       ON CONFLICT (patient_id, issuer) DO UPDATE SET patient_name = EXCLUDED.patient_name,
         patient_name_norm = EXCLUDED.patient_name_norm, birth_date = EXCLUDED.birth_date, sex = EXCLUDED.sex,
         attrs = EXCLUDED.attrs, updated_at = now()
       RETURNING id`,
      [p.patientId, p.issuer, p.patientName, p.patientNameNorm, p.birthDate, p.sex, p.attrs],
    );
    const s = b.study;
    const [study]: Array<{ id: string }> = await tx.query(
      `INSERT INTO study (patient_fk, study_iuid, study_date, study_time, accession_number, study_id, study_description,
         referring_physician, referring_physician_norm, attrs)
       VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
       ON CONFLICT (study_iuid) DO UPDATE SET patient_fk = EXCLUDED.patient_fk, study_date = EXCLUDED.study_date,
         study_time = EXCLUDED.study_time, accession_number = EXCLUDED.accession_number, study_id = EXCLUDED.study_id,
         study_description = EXCLUDED.study_description, referring_physician = EXCLUDED.referring_physician,
         referring_physician_norm = EXCLUDED.referring_physician_norm, attrs = EXCLUDED.attrs, updated_at = now()
       RETURNING id`,
      [patient!.id, b.studyIuid, s.studyDate, s.studyTime, s.accessionNumber, s.studyId, s.studyDescription,
        s.referringPhysician, s.referringPhysicianNorm, s.attrs],
    );
    const col = <K extends keyof SeriesRow>(k: K) => b.series.map((r) => r[k]);
    const series: Array<{ id: string; series_iuid: string }> = await tx.query(
      `INSERT INTO series (study_fk, series_iuid, modality, series_number, series_description, body_part,
         institution_name, station_name, performed_start_date, performed_start_time, attrs)
       SELECT $1, * FROM unnest($2::text[], $3::text[], $4::int[], $5::text[], $6::text[], $7::text[], $8::text[],
         $9::text[], $10::text[], $11::jsonb[])
       ON CONFLICT (series_iuid) DO UPDATE SET study_fk = EXCLUDED.study_fk, modality = EXCLUDED.modality,
         series_number = EXCLUDED.series_number, series_description = EXCLUDED.series_description,
         body_part = EXCLUDED.body_part, institution_name = EXCLUDED.institution_name,
         station_name = EXCLUDED.station_name, performed_start_date = EXCLUDED.performed_start_date,
         performed_start_time = EXCLUDED.performed_start_time, attrs = EXCLUDED.attrs, updated_at = now()
       RETURNING id, series_iuid`,
      [study!.id, col('seriesIuid'), col('modality'), col('seriesNumber'), col('seriesDescription'), col('bodyPart'),
        col('institutionName'), col('stationName'), col('performedStartDate'), col('performedStartTime'),
        b.series.map((r) => JSON.stringify(r.attrs))],
    );
    const seriesFk = new Map(series.map((r) => [r.series_iuid, r.id]));
    const inst = b.instances;
    await tx.query(
      `UPDATE instance i SET series_fk = v.series_fk, status = $1, indexed_at = now(), content_date = v.content_date,
         content_time = v.content_time, rows = v.rows, columns = v.columns
         FROM unnest($2::bigint[], $3::bigint[], $4::text[], $5::text[], $6::int[], $7::int[])
           AS v(id, series_fk, content_date, content_time, rows, columns)
        WHERE i.id = v.id`,
      [InstanceStatus.Indexed, inst.map((r) => r.id), inst.map((r) => seriesFk.get(r.seriesIuid)),
        inst.map((r) => r.contentDate), inst.map((r) => r.contentTime), inst.map((r) => r.rows), inst.map((r) => r.columns)],
    );
    await tx.query(
      `UPDATE series se SET num_instances = a.n, size_bytes = a.size
         FROM (SELECT series_fk, count(*) AS n, coalesce(sum(size_bytes), 0) AS size FROM instance
                WHERE series_fk = ANY($1::bigint[]) GROUP BY series_fk) a
        WHERE se.id = a.series_fk`,
      [series.map((r) => r.id)],
    );
    await tx.query(
      `UPDATE study SET (num_series, num_instances, size_bytes, modalities, sop_classes) =
         (SELECT count(DISTINCT se.id), coalesce(sum(se.num_instances), 0), coalesce(sum(se.size_bytes), 0),
                 coalesce(array_agg(DISTINCT se.modality) FILTER (WHERE se.modality <> ''), '{}'),
                 coalesce((SELECT array_agg(DISTINCT i.sop_class_uid) FROM instance i
                            JOIN series x ON x.id = i.series_fk WHERE x.study_fk = $1), '{}')
            FROM series se WHERE se.study_fk = $1)
       WHERE id = $1`,
      [study!.id],
    );
  }

  /** Studies that still have RECEIVED instances (for the reconciler and the post-job check). */
  async studiesWithReceived(limit: number, afterStudyIuid = ''): Promise<string[]> {
    const rows: Array<{ study_iuid: string }> = await this.db.query(
      `SELECT DISTINCT study_iuid FROM instance WHERE status = $1 AND study_iuid > $2 ORDER BY study_iuid LIMIT $3`,
      [InstanceStatus.Received, afterStudyIuid, limit],
    );
    return rows.map((r) => r.study_iuid);
  }

  async hasReceived(studyIuid: string): Promise<boolean> {
    const rows: unknown[] = await this.db.query(
      `SELECT 1 FROM instance WHERE study_iuid = $1 AND status = $2 LIMIT 1`,
      [studyIuid, InstanceStatus.Received],
    );
    return rows.length > 0;
  }
}
