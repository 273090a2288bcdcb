-- Seeds a benchmark catalog with patient / study / series / instance / location rows (no object
-- files): for lifecycle evaluation (POST /api/lifecycle/evaluate?dryRun=true) and
-- GET /api/storage/tiers over many studies. Run on a FRESH database whose schema the archive has
-- migrated (ids are assigned from 1):
--   psql "$URL" -v studies=100000 -v patients=40000 -f deploy/bench/seed-studies.sql
-- Deterministic (setseed). Distributions (by study count): CR 25%, US 15%, CT 18%, MR 12%, DX 10%,
-- MG 8%, XA 4%, NM 3%, SR 5%; study dates over the last 15 years, more recent years busier
-- (age = 15 y x (1 - sqrt(u))); study sizes per modality (CR 10-30 MB ... CT 100-600 MB). Instance
-- counts are fewer than clinical ones (CT 10-60 instead of hundreds: ~16 per study on average) to
-- keep the seed to ~1.6 M instances; bytes per study are realistic, bytes per instance larger.
-- Where the current copy is: studies younger than 1 year on hot; older ones 40% hot, 40% warm,
-- 20% cold (a lifecycle policy that has been applied in part). Ingest time: the study date for
-- the last 8 years, a migration 8 years ago for older studies; 40% of studies were retrieved.
\set ON_ERROR_STOP on
\if :{?studies} \else \set studies 100000 \endif
\if :{?patients} \else \set patients 40000 \endif
SET synchronous_commit = off;
SELECT setseed(0.42);
BEGIN;

CREATE TEMP TABLE seed_mod (modality text, lo float8, hi float8, imin int, imax int, mbmin float8, mbmax float8, smax int, sop text) ON COMMIT DROP;
INSERT INTO seed_mod VALUES
  ('CR', 0.00, 0.25,  1,  3,  10,  30, 1, '1.2.840.10008.5.1.4.1.1.1'),
  ('US', 0.25, 0.40,  5, 40,  10,  80, 2, '1.2.840.10008.5.1.4.1.1.6.1'),
  ('CT', 0.40, 0.58, 10, 60, 100, 600, 5, '1.2.840.10008.5.1.4.1.1.2'),
  ('MR', 0.58, 0.70, 10, 50,  50, 300, 8, '1.2.840.10008.5.1.4.1.1.4'),
  ('DX', 0.70, 0.80,  1,  4,  10,  40, 1, '1.2.840.10008.5.1.4.1.1.1.1'),
  ('MG', 0.80, 0.88,  4,  8,  50, 250, 1, '1.2.840.10008.5.1.4.1.1.1.2'),
  ('XA', 0.88, 0.92,  5, 20,  50, 500, 3, '1.2.840.10008.5.1.4.1.1.12.1'),
  ('NM', 0.92, 0.95, 10, 60,  50, 300, 3, '1.2.840.10008.5.1.4.1.1.20'),
  ('SR', 0.95, 1.01,  1,  1, 0.01, 0.1, 1, '1.2.840.10008.5.1.4.1.1.88.22');

INSERT INTO patient (id, patient_id, patient_name, patient_name_norm, birth_date, sex)
SELECT g, 'SEED' || g, 'SEED^P' || g, 'SEED^P' || g,
       to_char(date '1930-01-01' + (random() * 30000)::int, 'YYYYMMDD'), CASE WHEN random() < 0.5 THEN 'F' ELSE 'M' END
  FROM generate_series(1, :patients) g;

CREATE TEMP TABLE seed_study ON COMMIT DROP AS
SELECT g AS n, m.modality, m.sop,
       m.imin + floor(random() * (m.imax - m.imin + 1))::int AS n_inst,
       ((m.mbmin + random() * (m.mbmax - m.mbmin)) * 1e6)::bigint AS bytes,
       1 + floor(random() * m.smax)::int AS n_series,
       floor(5479 * (1 - sqrt(random())))::int AS age_days,
       1 + floor(random() * :patients)::int AS patient,
       random() AS u_tier, random() AS u_access,
       (ARRAY['CT_ER', 'MR_1', 'US_OB', 'CR_WARD', 'PACS_OLD', 'MODALITY_X'])[1 + floor(random() * 6)::int] AS source_ae,
       (ARRAY['General Hospital', 'North Clinic', 'Children''s', 'Imaging Center', 'Oncology'])[1 + floor(random() * 5)::int] AS institution
  FROM generate_series(1, :studies) g
  CROSS JOIN LATERAL (SELECT random() + g * 0 AS u) x
  JOIN seed_mod m ON x.u >= m.lo AND x.u < m.hi;
UPDATE seed_study SET n_series = least(n_series, n_inst);
ALTER TABLE seed_study ADD COLUMN study_date date, ADD COLUMN created timestamptz, ADD COLUMN tier text;
UPDATE seed_study SET study_date = current_date - age_days,
       created = greatest((current_date - age_days)::timestamptz, now() - interval '8 years') + (random() * interval '2 days'),
       tier = CASE WHEN age_days < 365 THEN 'hot' WHEN u_tier < 0.4 THEN 'hot' WHEN u_tier < 0.8 THEN 'warm' ELSE 'cold' END;

INSERT INTO study (id, patient_fk, study_iuid, study_date, study_time, accession_number, study_description, modalities, sop_classes,
                   num_series, num_instances, size_bytes, last_access_at, created_at, updated_at)
SELECT n, patient, '2.25.7' || n, to_char(study_date, 'YYYYMMDD'), '101500', 'SACC' || n, modality || ' seeded study',
       ARRAY[modality], ARRAY[sop], n_series, n_inst, bytes,
       CASE WHEN u_access < 0.4 THEN created + (now() - created) * random() END, created, created
  FROM seed_study;

INSERT INTO series (id, study_fk, series_iuid, modality, series_number, institution_name, num_instances, size_bytes, created_at, updated_at)
SELECT s.n * 10 + k, s.n, '2.25.7' || s.n || '.' || k, s.modality, k, s.institution,
       (s.n_inst + s.n_series - k) / s.n_series, 0, s.created, s.created
  FROM seed_study s CROSS JOIN LATERAL generate_series(1, s.n_series) k;

INSERT INTO instance (id, sop_iuid, sop_class_uid, study_iuid, series_iuid, series_fk, status, transfer_syntax_uid, instance_number,
                      size_bytes, sha256, source_ae, metadata, received_at, indexed_at)
SELECT s.n * 1000 + i, '2.25.7' || s.n || '.' || (1 + i % s.n_series) || '.' || i, s.sop, '2.25.7' || s.n,
       '2.25.7' || s.n || '.' || (1 + i % s.n_series), s.n * 10 + 1 + i % s.n_series, 'INDEXED', '1.2.840.10008.1.2.1', i,
       s.bytes / s.n_inst, md5(s.n || '.' || i) || md5(i || '.' || s.n), s.source_ae, '{}'::jsonb, s.created, s.created
  FROM seed_study s CROSS JOIN LATERAL generate_series(1, s.n_inst) i;

INSERT INTO location (id, instance_fk, storage_id, object_key, size_bytes, sha256, transfer_syntax_uid, version, status, created_at, updated_at)
SELECT i.id, i.id, s.tier, 'seed/' || i.study_iuid || '/' || i.sop_iuid || '.dcm', i.size_bytes, i.sha256, i.transfer_syntax_uid, 1, 'OK',
       i.received_at, i.received_at
  FROM instance i JOIN seed_study s ON i.id / 1000 = s.n;

SELECT setval(pg_get_serial_sequence('patient', 'id'), (SELECT max(id) FROM patient));
SELECT setval(pg_get_serial_sequence('study', 'id'), (SELECT max(id) FROM study));
SELECT setval(pg_get_serial_sequence('series', 'id'), (SELECT max(id) FROM series));
SELECT setval(pg_get_serial_sequence('instance', 'id'), (SELECT max(id) FROM instance));
SELECT setval(pg_get_serial_sequence('location', 'id'), (SELECT max(id) FROM location));
COMMIT;
ANALYZE patient, study, series, instance, location;
SELECT (SELECT count(*) FROM study) AS studies, (SELECT count(*) FROM series) AS series, (SELECT count(*) FROM instance) AS instances,
       (SELECT pg_size_pretty(sum(size_bytes)) FROM location) AS bytes, (SELECT pg_size_pretty(pg_database_size(current_database()))) AS db_size;
