import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * Issue 6, resumable enumeration. A migration job's enumeration writes each answered date window's
 * studies into the ledger as it goes and notes the window in `enumeration_progress` (in the same
 * transaction), so a process killed in the middle of listing a large archive resumes with the
 * windows it had not finished. `study_time` keeps the order key (StudyDate + StudyTime) in the
 * ledger: the rows are numbered in the job's order once the listing is complete.
 */
export class MigrationEnumerationProgress1796500000000 implements MigrationInterface {
  name = 'MigrationEnumerationProgress1796500000000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`ALTER TABLE migration_job ADD COLUMN enumeration_progress jsonb NOT NULL DEFAULT '[]'::jsonb`);
    await q.query(`ALTER TABLE migration_study ADD COLUMN study_time text NOT NULL DEFAULT ''`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`ALTER TABLE migration_study DROP COLUMN study_time`);
    await q.query(`ALTER TABLE migration_job DROP COLUMN enumeration_progress`);
  }
}
