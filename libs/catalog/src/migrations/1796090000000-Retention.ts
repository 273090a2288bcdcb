import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * Retention (issue 5): versioned rules, each study's computed expiry, legal holds, purge batches
 * with their per-study / per-instance journal, and an append-only audit trail.
 *
 * `study.retention_state` is ACTIVE, or PURGING from the transaction that starts a study's purge
 * until its rows are gone: QIDO-RS, C-FIND and WADO only ever show ACTIVE studies, so a purge
 * interrupted by a crash never leaves a half-deleted study visible.
 */
export class Retention1796090000000 implements MigrationInterface {
  name = 'Retention1796090000000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`ALTER TABLE study ADD COLUMN retention_state text NOT NULL DEFAULT 'ACTIVE'
      CONSTRAINT ck_study_retention_state CHECK (retention_state IN ('ACTIVE', 'PURGING'))`);

    // The current state of each rule; every change is also appended to retention_rule_version.
    await q.query(`
      CREATE TABLE retention_rule (
        id          bigserial PRIMARY KEY,
        version     integer NOT NULL,
        name        text NOT NULL,
        definition  jsonb NOT NULL,
        deleted     boolean NOT NULL DEFAULT false,
        created_by  text NOT NULL,
        created_at  timestamptz NOT NULL DEFAULT now(),
        updated_by  text NOT NULL,
        updated_at  timestamptz NOT NULL DEFAULT now()
      )`);
    // Append-only history: one row per version; revision orders every change of every rule.
    await q.query(`
      CREATE TABLE retention_rule_version (
        revision    bigserial PRIMARY KEY,
        rule_id     bigint NOT NULL REFERENCES retention_rule(id),
        version     integer NOT NULL,
        change      text NOT NULL CHECK (change IN ('CREATED', 'UPDATED', 'DELETED')),
        name        text NOT NULL,
        definition  jsonb NOT NULL,
        actor       text NOT NULL,
        at          timestamptz NOT NULL DEFAULT now(),
        CONSTRAINT uq_retention_rule_version UNIQUE (rule_id, version)
      )`);

    // The computed expiry of each study and what it was computed from (stale when any differs).
    await q.query(`
      CREATE TABLE study_retention (
        study_fk              bigint PRIMARY KEY REFERENCES study(id) ON DELETE CASCADE,
        expires_on            date,
        rule_id               bigint,
        rule_version          integer,
        action                text,
        auto_purge            boolean NOT NULL DEFAULT false,
        rules_revision        bigint NOT NULL,
        basis_updated_at      timestamptz NOT NULL,
        basis_last_access_at  timestamptz,
        computed_at           timestamptz NOT NULL DEFAULT now()
      )`);
    await q.query(`CREATE INDEX ix_study_retention_expires ON study_retention (expires_on) WHERE expires_on IS NOT NULL`);

    // A hold names identifiers, not rows: it applies to studies received after it was placed too.
    await q.query(`
      CREATE TABLE legal_hold (
        id              bigserial PRIMARY KEY,
        patient_id      text,
        issuer          text,
        study_iuid      text,
        case_reference  text NOT NULL,
        reason          text NOT NULL,
        placed_by       text NOT NULL,
        placed_at       timestamptz NOT NULL DEFAULT now(),
        released_by     text,
        released_at     timestamptz,
        release_reason  text,
        CONSTRAINT ck_legal_hold_target CHECK ((study_iuid IS NULL) <> (patient_id IS NULL)),
        CONSTRAINT ck_legal_hold_issuer CHECK (patient_id IS NOT NULL OR issuer IS NULL)
      )`);
    await q.query(`CREATE INDEX ix_legal_hold_study ON legal_hold (study_iuid) WHERE released_at IS NULL`);
    await q.query(`CREATE INDEX ix_legal_hold_patient ON legal_hold (patient_id, issuer) WHERE released_at IS NULL`);

    await q.query(`
      CREATE TABLE retention_purge (
        id                 bigserial PRIMARY KEY,
        state              text NOT NULL CHECK (state IN ('AWAITING_APPROVAL', 'APPROVED', 'RUNNING', 'COMPLETED', 'REJECTED')),
        requires_approval  boolean NOT NULL,
        created_by         text NOT NULL,
        created_at         timestamptz NOT NULL DEFAULT now(),
        approved_by        text,
        approved_at        timestamptz,
        rejected_by        text,
        rejected_at        timestamptz,
        reject_reason      text,
        started_at         timestamptz,
        completed_at       timestamptz,
        max_per_run        integer NOT NULL,
        left_out           integer NOT NULL DEFAULT 0
      )`);
    await q.query(`
      CREATE TABLE retention_purge_study (
        id             bigserial PRIMARY KEY,
        purge_fk       bigint NOT NULL REFERENCES retention_purge(id),
        study_fk       bigint NOT NULL,
        study_iuid     text NOT NULL,
        patient_id     text NOT NULL,
        issuer         text NOT NULL,
        study_date     text NOT NULL,
        size_bytes     bigint NOT NULL,
        num_instances  integer NOT NULL,
        expires_on     date NOT NULL,
        rule_id        bigint NOT NULL,
        rule_version   integer NOT NULL,
        auto_purge     boolean NOT NULL,
        state          text NOT NULL CHECK (state IN ('PENDING', 'PURGING', 'DELETED', 'SKIPPED')),
        note           text,
        started_at     timestamptz,
        completed_at   timestamptz
      )`);
    await q.query(`CREATE INDEX ix_retention_purge_study_purge ON retention_purge_study (purge_fk, id)`);
    // At most one unfinished purge entry per study.
    await q.query(`CREATE UNIQUE INDEX uq_retention_purge_study_open ON retention_purge_study (study_iuid)
      WHERE state IN ('PENDING', 'PURGING')`);
    await q.query(`
      CREATE TABLE retention_purge_instance (
        id              bigserial PRIMARY KEY,
        purge_study_fk  bigint NOT NULL REFERENCES retention_purge_study(id),
        instance_fk     bigint NOT NULL,
        sop_iuid        text NOT NULL,
        series_iuid     text NOT NULL,
        sha256          text NOT NULL,
        size_bytes      bigint NOT NULL,
        state           text NOT NULL CHECK (state IN ('PENDING', 'OBJECTS_DELETED', 'DONE')),
        locations       jsonb NOT NULL DEFAULT '[]'::jsonb
      )`);
    await q.query(`CREATE INDEX ix_retention_purge_instance_study ON retention_purge_instance (purge_study_fk, id)`);

    // The audit trail: filters of GET /api/audit, and no UPDATE or DELETE ever.
    await q.query(`CREATE INDEX ix_audit_at ON audit_event (at, id)`);
    await q.query(`CREATE INDEX ix_audit_type_at ON audit_event (type, at)`);
    await q.query(`CREATE FUNCTION audit_event_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN RAISE EXCEPTION 'audit_event is append-only'; END $$`);
    await q.query(`CREATE TRIGGER tr_audit_event_append_only BEFORE UPDATE OR DELETE ON audit_event
      FOR EACH ROW EXECUTE FUNCTION audit_event_append_only()`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`DROP TRIGGER IF EXISTS tr_audit_event_append_only ON audit_event`);
    await q.query(`DROP FUNCTION IF EXISTS audit_event_append_only()`);
    await q.query(`DROP INDEX IF EXISTS ix_audit_type_at`);
    await q.query(`DROP INDEX IF EXISTS ix_audit_at`);
    for (const t of ['retention_purge_instance', 'retention_purge_study', 'retention_purge', 'legal_hold', 'study_retention',
      'retention_rule_version', 'retention_rule']) {
      await q.query(`DROP TABLE IF EXISTS ${t}`);
    }
    await q.query(`ALTER TABLE study DROP COLUMN IF EXISTS retention_state`);
  }
}
