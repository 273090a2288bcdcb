import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * Restores from offline tiers (issue 4): a restored copy is a `location` row with status RESTORED
 * and an `expires_at` (retrieval prefers it while unexpired; the offline copy stays the copy of
 * record). A row is first inserted RESTORING (its key planned, retrieval ignores it) and becomes
 * RESTORED only once its object is committed and verified, so a crash leaves at most RESTORING rows
 * whose keys the next run cleans up. `study_restore` journals each request (one unfinished per study).
 */
export class StudyRestores1796200000000 implements MigrationInterface {
  name = 'StudyRestores1796200000000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`ALTER TABLE location DROP CONSTRAINT ck_location_status`);
    await q.query(
      `ALTER TABLE location ADD CONSTRAINT ck_location_status CHECK (status IN ('OK', 'REPLACED', 'MISSING', 'CORRUPT', 'RESTORING', 'RESTORED'))`,
    );
    await q.query(`ALTER TABLE location ADD COLUMN expires_at timestamptz`);
    await q.query(
      `ALTER TABLE location ADD CONSTRAINT ck_location_restored_expiry CHECK ((status IN ('RESTORING', 'RESTORED')) = (expires_at IS NOT NULL))`,
    );
    await q.query(`CREATE INDEX ix_location_restored_expiry ON location (expires_at) WHERE status IN ('RESTORING', 'RESTORED')`);
    await q.query(`
      CREATE TABLE study_restore (
        id                  bigserial PRIMARY KEY,
        study_iuid          text NOT NULL,
        state               text NOT NULL DEFAULT 'SCHEDULED',
        requested_by        text NOT NULL DEFAULT '',
        source_tiers        text[] NOT NULL DEFAULT '{}',
        instances_total     integer NOT NULL DEFAULT 0,
        instances_restored  integer NOT NULL DEFAULT 0,
        bytes_total         bigint NOT NULL DEFAULT 0,
        bytes_restored      bigint NOT NULL DEFAULT 0,
        attempts            integer NOT NULL DEFAULT 0,
        error               text,
        created_at          timestamptz NOT NULL DEFAULT now(),
        started_at          timestamptz,
        updated_at          timestamptz NOT NULL DEFAULT now(),
        completed_at        timestamptz,
        CONSTRAINT ck_study_restore_state CHECK (state IN ('SCHEDULED', 'IN_PROCESS', 'COMPLETED', 'FAILED'))
      )`);
    await q.query(`CREATE UNIQUE INDEX uq_study_restore_unfinished ON study_restore (study_iuid) WHERE state IN ('SCHEDULED', 'IN_PROCESS')`);
    await q.query(`CREATE INDEX ix_study_restore_study ON study_restore (study_iuid, id)`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`DROP TABLE study_restore`);
    await q.query(`DELETE FROM location WHERE status IN ('RESTORING', 'RESTORED')`);
    await q.query(`ALTER TABLE location DROP CONSTRAINT ck_location_restored_expiry`);
    await q.query(`ALTER TABLE location DROP COLUMN expires_at`);
    await q.query(`ALTER TABLE location DROP CONSTRAINT ck_location_status`);
    await q.query(`ALTER TABLE location ADD CONSTRAINT ck_location_status CHECK (status IN ('OK', 'REPLACED', 'MISSING', 'CORRUPT'))`);
  }
}
