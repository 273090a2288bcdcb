import { Injectable } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import type { DataSource } from 'typeorm';
import { InstanceStatus } from './entities/index.js';

export interface IndexInput {
  patient: { patientId: string; issuer: string; patientName: string; patientNameNorm: string; birthDate: string; sex: string; attrs: object };
  study: {
    studyIuid: string; studyDate: string; studyTime: string; accessionNumber: string; studyId: string;
    studyDescription: string; referringPhysician: string; referringPhysicianNorm: string; attrs: object;
  };
  series: {
    seriesIuid: string; modality: string; seriesNumber: number | null; seriesDescription: string; bodyPart: string;
    institutionName: string; stationName: string; performedStartDate: string; performedStartTime: string; attrs: object;
  };
  instance: { contentDate: string; contentTime: string; rows: number | null; columns: number | null };
}

export interface InstanceToIndex {
  id: string;
  version: number;
  status: InstanceStatus;
  studyIuid: string;
  seriesIuid: string;
  metadata: Record<string, unknown>;
}

/** Links received instances into patient / study / series and keeps the study aggregates. */
@Injectable()
export class IndexRepository {
  constructor(@InjectDataSource() private readonly db: DataSource) {}

  async loadInstance(id: string): Promise<InstanceToIndex | null> {
    const rows: Array<{ id: string; version: number; status: InstanceStatus; study_iuid: string; series_iuid: string; metadata: Record<string, unknown> }> =
      await this.db.query('SELECT id, version, status, study_iuid, series_iuid, metadata FROM instance WHERE id = $1', [id]);
    const r = rows[0];
    return r ? { id: r.id, version: r.version, status: r.status, studyIuid: r.study_iuid, seriesIuid: r.series_iuid, metadata: r.metadata } : null;
  }

  /**
   * One transaction: upsert patient, study and series (latest instance's values win), link the
   * instance, mark it INDEXED if its version is still the one read, and refresh the aggregates.
   * Lock order is always patient -> study -> series -> instance, so concurrent workers don't deadlock.
   */
  async index(instanceId: string, version: number, input: IndexInput): Promise<boolean> {
    return this.db.transaction(async (tx) => {
      const p = input.patient;
      const [patient]: Array<{ id: string }> = await tx.query(
        `INSERT INTO patient (patient_id, issuer, patient_name, patient_name_norm, birth_date, sex, attrs)
         VALUES ($1, $2, $3, $4, $5, $6, $7)
         ON CONFLICT (patient_id, issuer) DO UPDATE SET patient_name = EXCLUDED.patient_name,
           patient_name_norm = EXCLUDED.patient_name_norm, birth_date = EXCLUDED.birth_date, sex = EXCLUDED.sex,
           attrs = EXCLUDED.attrs, updated_at = now()
         RETURNING id`,
        [p.patientId, p.issuer, p.patientName, p.patientNameNorm, p.birthDate, p.sex, p.attrs],
      );
      const s = input.study;
      const [study]: Array<{ id: string }> = await tx.query(
        `INSERT INTO study (patient_fk, study_iuid, study_date, study_time, accession_number, study_id, study_description,
           referring_physician, referring_physician_norm, attrs)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
         ON CONFLICT (study_iuid) DO UPDATE SET patient_fk = EXCLUDED.patient_fk, study_date = EXCLUDED.study_date,
           study_time = EXCLUDED.study_time, accession_number = EXCLUDED.accession_number, study_id = EXCLUDED.study_id,
           study_description = EXCLUDED.study_description, referring_physician = EXCLUDED.referring_physician,
           referring_physician_norm = EXCLUDED.referring_physician_norm, attrs = EXCLUDED.attrs, updated_at = now()
         RETURNING id`,
        [patient!.id, s.studyIuid, s.studyDate, s.studyTime, s.accessionNumber, s.studyId, s.studyDescription,
          s.referringPhysician, s.referringPhysicianNorm, s.attrs],
      );
      const se = input.series;
      const [series]: Array<{ id: string }> = await tx.query(
        `INSERT INTO series (study_fk, series_iuid, modality, series_number, series_description, body_part,
           institution_name, station_name, performed_start_date, performed_start_time, attrs)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)
         ON CONFLICT (series_iuid) DO UPDATE SET study_fk = EXCLUDED.study_fk, modality = EXCLUDED.modality,
           series_number = EXCLUDED.series_number, series_description = EXCLUDED.series_description,
           body_part = EXCLUDED.body_part, institution_name = EXCLUDED.institution_name,
           station_name = EXCLUDED.station_name, performed_start_date = EXCLUDED.performed_start_date,
           performed_start_time = EXCLUDED.performed_start_time, attrs = EXCLUDED.attrs, updated_at = now()
         RETURNING id`,
        [study!.id, se.seriesIuid, se.modality, se.seriesNumber, se.seriesDescription, se.bodyPart,
          se.institutionName, se.stationName, se.performedStartDate, se.performedStartTime, se.attrs],
      );
      const updated: [unknown[], number] = await tx.query(
        `UPDATE instance SET series_fk = $2, status = $3, indexed_at = now(), content_date = $5, content_time = $6,
           rows = $7, columns = $8
         WHERE id = $1 AND version = $4`,
        [instanceId, series!.id, InstanceStatus.Indexed, version, input.instance.contentDate, input.instance.contentTime,
          input.instance.rows, input.instance.columns],
      );
      await tx.query(
        `UPDATE series SET (num_instances, size_bytes) =
           (SELECT count(*), coalesce(sum(size_bytes), 0) FROM instance WHERE series_fk = $1)
         WHERE id = $1`,
        [series!.id],
      );
      await tx.query(
        `UPDATE study SET (num_series, num_instances, size_bytes, modalities, sop_classes) =
           (SELECT count(DISTINCT se.id), count(i.id), coalesce(sum(i.size_bytes), 0),
                   coalesce(array_agg(DISTINCT se.modality) FILTER (WHERE se.modality <> ''), '{}'),
                   coalesce(array_agg(DISTINCT i.sop_class_uid) FILTER (WHERE i.id IS NOT NULL), '{}')
              FROM series se LEFT JOIN instance i ON i.series_fk = se.id WHERE se.study_fk = $1)
         WHERE id = $1`,
        [study!.id],
      );
      return updated[1] === 1;
    });
  }
}
