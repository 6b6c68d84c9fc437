-- Makes the team's history append-only for the app role too (docs/team.md,
-- "Who can rewrite the audit"). Run once, as a database superuser, after
-- `airlock team init` (and after an upgrade that adds a table):
--
--   psql "postgres://SUPERUSER@HOST/DB" -v app_role=airlock_app -f protect-audit.sql
--
-- `team init` creates the schema as the role in its URL, the app role, which
-- then owns every table: an owner can disable a trigger, replace the trigger's
-- function, or drop the table, so the append-only triggers alone do not stop
-- it. This gives the schema, the append-only tables (audit, audit_checkpoints,
-- changes, config, secrets) and their trigger function to a role that cannot log in,
-- and gives the app role back only what airlock needs: SELECT and INSERT on
-- them, USAGE (and CREATE, for later migrations' new tables) on the schema.
\set ON_ERROR_STOP on
SELECT format('%I', :'app_role') AS app \gset

DO $$ BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'airlock_owner') THEN
        CREATE ROLE airlock_owner NOLOGIN;
    END IF;
END $$;

BEGIN;
ALTER SCHEMA airlock OWNER TO airlock_owner;
ALTER FUNCTION airlock.append_only() OWNER TO airlock_owner;
ALTER TABLE airlock.audit OWNER TO airlock_owner;
ALTER TABLE airlock.audit_checkpoints OWNER TO airlock_owner;
ALTER TABLE airlock.changes OWNER TO airlock_owner;
ALTER TABLE airlock.config OWNER TO airlock_owner;
ALTER TABLE airlock.secrets OWNER TO airlock_owner;
GRANT USAGE, CREATE ON SCHEMA airlock TO :app;
GRANT SELECT, INSERT ON airlock.audit, airlock.audit_checkpoints, airlock.changes, airlock.config, airlock.secrets TO :app;
GRANT USAGE, SELECT ON SEQUENCE airlock.audit_checkpoints_seq_seq, airlock.changes_seq_seq TO :app;
COMMIT;
