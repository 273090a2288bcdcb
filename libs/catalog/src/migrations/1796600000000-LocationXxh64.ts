import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * Each stored copy's XXH64 beside its SHA-256 (issue 3, retrieval speed). Ingest computes both as
 * the bytes arrive; tier moves and restores carry the value over to the copies they verified by
 * SHA-256. Retrieval checks every object it serves against the XXH64, about ten times cheaper per
 * byte. Null for copies recorded before this column: those are still checked by SHA-256.
 */
export class LocationXxh641796600000000 implements MigrationInterface {
  name = 'LocationXxh641796600000000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`ALTER TABLE location ADD COLUMN xxh64 text`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`ALTER TABLE location DROP COLUMN xxh64`);
  }
}
