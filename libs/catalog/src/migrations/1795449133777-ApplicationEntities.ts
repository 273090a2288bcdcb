import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * Known application entities (peers): where a C-MOVE destination lives, and which operations
 * each peer may call when the archive runs with VNA_REQUIRE_KNOWN_AES=true.
 * AE titles are stored trimmed (leading/trailing spaces are not significant, PS3.5) and
 * compared case-sensitively.
 */
export class ApplicationEntities1795449133777 implements MigrationInterface {
  name = 'ApplicationEntities1795449133777';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`
      CREATE TABLE application_entity (
        id                     bigserial PRIMARY KEY,
        ae_title               text NOT NULL,
        host                   text NOT NULL,
        port                   integer NOT NULL CHECK (port BETWEEN 1 AND 65535),
        description            text NOT NULL DEFAULT '',
        allow_store            boolean NOT NULL DEFAULT true,
        allow_find             boolean NOT NULL DEFAULT true,
        allow_retrieve         boolean NOT NULL DEFAULT true,
        allow_move_destination boolean NOT NULL DEFAULT true,
        source                 text NOT NULL DEFAULT 'api',
        created_at             timestamptz NOT NULL DEFAULT now(),
        updated_at             timestamptz NOT NULL DEFAULT now(),
        CONSTRAINT uq_application_entity_ae_title UNIQUE (ae_title),
        CONSTRAINT ck_application_entity_ae_title CHECK (char_length(ae_title) BETWEEN 1 AND 16 AND btrim(ae_title) = ae_title AND strpos(ae_title, chr(92)) = 0)
      )`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`DROP TABLE IF EXISTS application_entity`);
  }
}
