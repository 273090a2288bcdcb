import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * The metadata index. Attribute columns are exactly what QIDO-RS and C-FIND match on or return
 * at each level; everything else lives in the instance's DICOM JSON (`metadata`).
 * Text matching: `*_norm` columns hold upper-cased values so PatientName matching is
 * case-insensitive with btree/trigram-free LIKE on an index (text_pattern_ops).
 */
export class InitialSchema1732370000000 implements MigrationInterface {
  name = 'InitialSchema1732370000000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`
      CREATE TABLE patient (
        id               bigserial PRIMARY KEY,
        patient_id       text NOT NULL DEFAULT '',
        issuer           text NOT NULL DEFAULT '',
        patient_name     text NOT NULL DEFAULT '',
        patient_name_norm text NOT NULL DEFAULT '',
        birth_date       text NOT NULL DEFAULT '',
        sex              text NOT NULL DEFAULT '',
        attrs            jsonb NOT NULL DEFAULT '{}'::jsonb,
        created_at       timestamptz NOT NULL DEFAULT now(),
        updated_at       timestamptz NOT NULL DEFAULT now(),
        CONSTRAINT uq_patient_identity UNIQUE (patient_id, issuer)
      )`);
    await q.query(`CREATE INDEX ix_patient_name_norm ON patient (patient_name_norm text_pattern_ops)`);
    await q.query(`CREATE INDEX ix_patient_birth_date ON patient (birth_date)`);

    await q.query(`
      CREATE TABLE study (
        id                 bigserial PRIMARY KEY,
        patient_fk         bigint NOT NULL REFERENCES patient(id),
        study_iuid         text NOT NULL UNIQUE,
        study_date         text NOT NULL DEFAULT '',
        study_time         text NOT NULL DEFAULT '',
        accession_number   text NOT NULL DEFAULT '',
        study_id           text NOT NULL DEFAULT '',
        study_description  text NOT NULL DEFAULT '',
        referring_physician text NOT NULL DEFAULT '',
        referring_physician_norm text NOT NULL DEFAULT '',
        modalities         text[] NOT NULL DEFAULT '{}',
        sop_classes        text[] NOT NULL DEFAULT '{}',
        num_series         integer NOT NULL DEFAULT 0,
        num_instances      integer NOT NULL DEFAULT 0,
        size_bytes         bigint NOT NULL DEFAULT 0,
        attrs              jsonb NOT NULL DEFAULT '{}'::jsonb,
        last_access_at     timestamptz,
        created_at         timestamptz NOT NULL DEFAULT now(),
        updated_at         timestamptz NOT NULL DEFAULT now()
      )`);
    await q.query(`CREATE INDEX ix_study_patient ON study (patient_fk)`);
    await q.query(`CREATE INDEX ix_study_date ON study (study_date, study_time)`);
    await q.query(`CREATE INDEX ix_study_accession ON study (accession_number)`);
    await q.query(`CREATE INDEX ix_study_modalities ON study USING gin (modalities)`);
    await q.query(`CREATE INDEX ix_study_created ON study (created_at)`);

    await q.query(`
      CREATE TABLE series (
        id                bigserial PRIMARY KEY,
        study_fk          bigint NOT NULL REFERENCES study(id),
        series_iuid       text NOT NULL UNIQUE,
        modality          text NOT NULL DEFAULT '',
        series_number     integer,
        series_description text NOT NULL DEFAULT '',
        body_part         text NOT NULL DEFAULT '',
        institution_name  text NOT NULL DEFAULT '',
        station_name      text NOT NULL DEFAULT '',
        performed_start_date text NOT NULL DEFAULT '',
        performed_start_time text NOT NULL DEFAULT '',
        num_instances     integer NOT NULL DEFAULT 0,
        size_bytes        bigint NOT NULL DEFAULT 0,
        attrs             jsonb NOT NULL DEFAULT '{}'::jsonb,
        created_at        timestamptz NOT NULL DEFAULT now(),
        updated_at        timestamptz NOT NULL DEFAULT now()
      )`);
    await q.query(`CREATE INDEX ix_series_study ON series (study_fk)`);
    await q.query(`CREATE INDEX ix_series_modality ON series (modality)`);

    await q.query(`
      CREATE TABLE instance (
        id                  bigserial PRIMARY KEY,
        sop_iuid            text NOT NULL UNIQUE,
        sop_class_uid       text NOT NULL,
        study_iuid          text NOT NULL,
        series_iuid         text NOT NULL,
        series_fk           bigint REFERENCES series(id),
        status              text NOT NULL,
        version             integer NOT NULL DEFAULT 1,
        transfer_syntax_uid text NOT NULL,
        instance_number     integer,
        content_date        text NOT NULL DEFAULT '',
        content_time        text NOT NULL DEFAULT '',
        num_frames          integer,
        rows                integer,
        columns             integer,
        size_bytes          bigint NOT NULL,
        sha256              text NOT NULL,
        source_ae           text NOT NULL DEFAULT '',
        metadata            jsonb NOT NULL,
        received_at         timestamptz NOT NULL DEFAULT now(),
        indexed_at          timestamptz,
        CONSTRAINT ck_instance_status CHECK (status IN ('RECEIVED', 'INDEXED'))
      )`);
    await q.query(`CREATE INDEX ix_instance_series ON instance (series_fk)`);
    await q.query(`CREATE INDEX ix_instance_study_iuid ON instance (study_iuid)`);
    await q.query(`CREATE INDEX ix_instance_series_iuid ON instance (series_iuid)`);
    await q.query(`CREATE INDEX ix_instance_received ON instance (study_iuid, id) WHERE status = 'RECEIVED'`);

    await q.query(`
      CREATE TABLE location (
        id                  bigserial PRIMARY KEY,
        instance_fk         bigint NOT NULL REFERENCES instance(id),
        storage_id          text NOT NULL,
        object_key          text NOT NULL,
        size_bytes          bigint NOT NULL,
        sha256              text NOT NULL,
        transfer_syntax_uid text NOT NULL,
        version             integer NOT NULL,
        status              text NOT NULL,
        created_at          timestamptz NOT NULL DEFAULT now(),
        updated_at          timestamptz NOT NULL DEFAULT now(),
        CONSTRAINT uq_location_key UNIQUE (storage_id, object_key),
        CONSTRAINT ck_location_status CHECK (status IN ('OK', 'REPLACED', 'MISSING', 'CORRUPT'))
      )`);
    await q.query(`CREATE INDEX ix_location_instance ON location (instance_fk)`);

    await q.query(`
      CREATE TABLE audit_event (
        id          bigserial PRIMARY KEY,
        at          timestamptz NOT NULL DEFAULT now(),
        type        text NOT NULL,
        study_iuid  text,
        sop_iuid    text,
        actor       text NOT NULL DEFAULT '',
        detail      jsonb NOT NULL DEFAULT '{}'::jsonb
      )`);
    await q.query(`CREATE INDEX ix_audit_sop ON audit_event (sop_iuid)`);
    await q.query(`CREATE INDEX ix_audit_study ON audit_event (study_iuid)`);
  }

  async down(q: QueryRunner): Promise<void> {
    for (const t of ['audit_event', 'location', 'instance', 'series', 'study', 'patient']) {
      await q.query(`DROP TABLE IF EXISTS ${t}`);
    }
  }
}
