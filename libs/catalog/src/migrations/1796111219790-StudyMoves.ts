import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * Tier moves (issue 4): `study_move` journals each move of a study to a target tier (dcm4chee
 * task vocabulary: SCHEDULED → COPYING → SWITCHED → COMPLETED, or FAILED / ABORTED with the
 * reason); `study_move_item` records, per instance, the source location and the key planned at the
 * target *before* anything is written there, so a crash at any step can be resumed or rolled back
 * without leaving unreferenced objects behind. No foreign keys to instance/location: retention may
 * delete those, and the journal must outlive them.
 */
export class StudyMoves1796111219790 implements MigrationInterface {
  name = 'StudyMoves1796111219790';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`
      CREATE TABLE study_move (
        id               bigserial PRIMARY KEY,
        study_iuid       text NOT NULL,
        source_tiers     text[] NOT NULL DEFAULT '{}',
        target_tier      text NOT NULL,
        state            text NOT NULL DEFAULT 'SCHEDULED',
        error            text,
        requested_by     text NOT NULL DEFAULT '',
        instances_total  integer NOT NULL DEFAULT 0,
        instances_moved  integer NOT NULL DEFAULT 0,
        bytes_total      bigint NOT NULL DEFAULT 0,
        bytes_moved      bigint NOT NULL DEFAULT 0,
        attempts         integer NOT NULL DEFAULT 0,
        created_at       timestamptz NOT NULL DEFAULT now(),
        updated_at       timestamptz NOT NULL DEFAULT now(),
        started_at       timestamptz,
        switched_at      timestamptz,
        completed_at     timestamptz,
        CONSTRAINT ck_study_move_state CHECK (state IN ('SCHEDULED', 'COPYING', 'SWITCHED', 'COMPLETED', 'FAILED', 'ABORTED'))
      )`);
    // At most one unfinished move per study.
    await q.query(`CREATE UNIQUE INDEX uq_study_move_active ON study_move (study_iuid) WHERE state IN ('SCHEDULED', 'COPYING', 'SWITCHED')`);
    await q.query(`CREATE INDEX ix_study_move_study ON study_move (study_iuid, id)`);

    await q.query(`
      CREATE TABLE study_move_item (
        id                  bigserial PRIMARY KEY,
        move_fk             bigint NOT NULL REFERENCES study_move(id) ON DELETE CASCADE,
        instance_fk         bigint NOT NULL,
        source_location_fk  bigint NOT NULL,
        source_storage_id   text NOT NULL,
        source_key          text NOT NULL,
        target_storage_id   text NOT NULL,
        target_key          text NOT NULL,
        size_bytes          bigint NOT NULL,
        sha256              text NOT NULL,
        state               text NOT NULL DEFAULT 'PENDING',
        updated_at          timestamptz NOT NULL DEFAULT now(),
        CONSTRAINT uq_study_move_item_target UNIQUE (target_storage_id, target_key),
        CONSTRAINT ck_study_move_item_state CHECK (state IN ('PENDING', 'COPIED', 'SWITCHED', 'STALE', 'DONE', 'REVOKED'))
      )`);
    await q.query(`CREATE INDEX ix_study_move_item_move ON study_move_item (move_fk, state)`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`DROP TABLE IF EXISTS study_move_item`);
    await q.query(`DROP TABLE IF EXISTS study_move`);
  }
}
