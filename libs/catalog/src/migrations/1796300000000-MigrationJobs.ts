import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * Migration jobs from legacy archives (issue 6): the job, its ledger (one row per source study)
 * and the instances each ledger row accounted for (the link from a migrated instance to its job).
 * A folder source has one ledger row per file (file_path; study_iuid is filled in once stored).
 */
export class MigrationJobs1796300000000 implements MigrationInterface {
  name = 'MigrationJobs1796300000000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`
      CREATE TABLE migration_job (
        id                       bigserial PRIMARY KEY,
        name                     text NOT NULL,
        source                   jsonb NOT NULL,
        scope                    jsonb NOT NULL DEFAULT '{}',
        study_order              text NOT NULL DEFAULT 'newest-first'
                                 CHECK (study_order IN ('newest-first', 'oldest-first', 'list')),
        max_associations         integer NOT NULL DEFAULT 2 CHECK (max_associations BETWEEN 1 AND 64),
        max_instances_per_second double precision CHECK (max_instances_per_second > 0),
        windows                  jsonb NOT NULL DEFAULT '[]',
        time_zone                text NOT NULL DEFAULT 'UTC',
        state                    text NOT NULL DEFAULT 'SCHEDULED'
                                 CHECK (state IN ('SCHEDULED', 'RUNNING', 'PAUSED', 'CANCELED', 'COMPLETED', 'FAILED')),
        attempts                 integer NOT NULL DEFAULT 0,
        last_error               text,
        created_at               timestamptz NOT NULL DEFAULT now(),
        updated_at               timestamptz NOT NULL DEFAULT now(),
        started_at               timestamptz,
        finished_at              timestamptz
      )`);
    await q.query(`CREATE INDEX ix_migration_job_state ON migration_job (state)`);
    await q.query(`
      CREATE TABLE migration_study (
        id                  bigserial PRIMARY KEY,
        migration_fk        bigint NOT NULL REFERENCES migration_job (id) ON DELETE CASCADE,
        seq                 integer NOT NULL,
        study_iuid          text NOT NULL,
        file_path           text NOT NULL DEFAULT '',
        study_date          text NOT NULL DEFAULT '',
        patient_id          text NOT NULL DEFAULT '',
        accession_number    text NOT NULL DEFAULT '',
        state               text NOT NULL DEFAULT 'pending'
                            CHECK (state IN ('pending', 'retrieving', 'verifying', 'done', 'failed', 'skipped')),
        expected_instances  integer,
        migrated_instances  integer NOT NULL DEFAULT 0,
        skipped_instances   integer NOT NULL DEFAULT 0,
        failed_instances    integer NOT NULL DEFAULT 0,
        bytes               bigint NOT NULL DEFAULT 0,
        attempts            integer NOT NULL DEFAULT 0,
        last_error          text,
        next_attempt_at     timestamptz,
        started_at          timestamptz,
        finished_at         timestamptz,
        updated_at          timestamptz NOT NULL DEFAULT now(),
        CONSTRAINT uq_migration_study UNIQUE (migration_fk, study_iuid, file_path)
      )`);
    await q.query(`CREATE INDEX ix_migration_study_state ON migration_study (migration_fk, state, seq)`);
    await q.query(`
      CREATE TABLE migration_instance (
        study_fk    bigint NOT NULL REFERENCES migration_study (id) ON DELETE CASCADE,
        sop_iuid    text NOT NULL,
        outcome     text NOT NULL CHECK (outcome IN ('migrated', 'skipped')),
        size_bytes  bigint NOT NULL,
        stored_at   timestamptz NOT NULL,
        PRIMARY KEY (study_fk, sop_iuid)
      )`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`DROP TABLE IF EXISTS migration_instance`);
    await q.query(`DROP TABLE IF EXISTS migration_study`);
    await q.query(`DROP TABLE IF EXISTS migration_job`);
  }
}
