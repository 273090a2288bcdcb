import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * Issue 4, priors prefetch and archive-class restores.
 * - `study_restore` gains the state of the S3 RestoreObject stage of a restore from a GLACIER /
 *   DEEP_ARCHIVE tier: when the restore requests were sent, when the objects are polled next, how
 *   many polls ran and how many objects were still not readable at the last one. A restarted job
 *   resumes polling from these columns instead of requesting again.
 * - `priors_prefetch`: one row per new study whose priors were (or are being) looked at; its
 *   primary key makes the prefetch run once per study however many index batches it takes.
 */
export class PriorsPrefetchArchiveRestore1796420000000 implements MigrationInterface {
  name = 'PriorsPrefetchArchiveRestore1796420000000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`ALTER TABLE study_restore ADD COLUMN archive_requested_at timestamptz`);
    await q.query(`ALTER TABLE study_restore ADD COLUMN archive_next_poll_at timestamptz`);
    await q.query(`ALTER TABLE study_restore ADD COLUMN archive_polls integer NOT NULL DEFAULT 0`);
    await q.query(`ALTER TABLE study_restore ADD COLUMN archive_waiting integer NOT NULL DEFAULT 0`);
    await q.query(`
      CREATE TABLE priors_prefetch (
        study_iuid     text PRIMARY KEY,
        state          text NOT NULL DEFAULT 'PENDING',
        priors         text[] NOT NULL DEFAULT '{}',
        restored       text[] NOT NULL DEFAULT '{}',
        error          text,
        created_at     timestamptz NOT NULL DEFAULT now(),
        completed_at   timestamptz,
        CONSTRAINT ck_priors_prefetch_state CHECK (state IN ('PENDING', 'DONE'))
      )`);
    await q.query(`CREATE INDEX ix_priors_prefetch_pending ON priors_prefetch (created_at) WHERE state = 'PENDING'`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`DROP TABLE priors_prefetch`);
    await q.query(`ALTER TABLE study_restore DROP COLUMN archive_waiting`);
    await q.query(`ALTER TABLE study_restore DROP COLUMN archive_polls`);
    await q.query(`ALTER TABLE study_restore DROP COLUMN archive_next_poll_at`);
    await q.query(`ALTER TABLE study_restore DROP COLUMN archive_requested_at`);
  }
}
