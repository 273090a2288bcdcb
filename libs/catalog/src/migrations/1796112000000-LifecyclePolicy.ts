import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * Lifecycle policy (issue 4): every saved policy is a new row with the next version, who saved
 * it and when; rows are never changed or deleted (a trigger refuses it), so every earlier
 * version stays readable.
 */
export class LifecyclePolicy1796112000000 implements MigrationInterface {
  name = 'LifecyclePolicy1796112000000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`
      CREATE TABLE lifecycle_policy (
        id              bigserial PRIMARY KEY,
        version         integer NOT NULL UNIQUE CHECK (version > 0),
        rules           jsonb NOT NULL,
        settle_minutes  integer NOT NULL CHECK (settle_minutes >= 0),
        created_by      text NOT NULL DEFAULT '',
        created_at      timestamptz NOT NULL DEFAULT now()
      )`);
    await q.query(`
      CREATE FUNCTION lifecycle_policy_immutable() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN
        RAISE EXCEPTION 'lifecycle_policy versions are never changed or deleted';
      END $$`);
    await q.query(`
      CREATE TRIGGER tg_lifecycle_policy_immutable BEFORE UPDATE OR DELETE ON lifecycle_policy
        FOR EACH ROW EXECUTE FUNCTION lifecycle_policy_immutable()`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`DROP TABLE IF EXISTS lifecycle_policy`);
    await q.query(`DROP FUNCTION IF EXISTS lifecycle_policy_immutable()`);
  }
}
