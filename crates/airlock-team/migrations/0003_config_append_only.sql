-- airlock team mode, schema version 3: services and capabilities are
-- append-only too (docs/team.md, "Schema"). A change is a new version of a
-- (kind, name), never an edit of an old one; nothing in airlock updates or
-- deletes a row of airlock.config. The signatures already make an edited row
-- refused by every device; the trigger makes the app role's UPDATE, DELETE or
-- TRUNCATE fail at once instead.
CREATE TRIGGER append_only BEFORE UPDATE OR DELETE ON airlock.config
    FOR EACH ROW EXECUTE FUNCTION airlock.append_only();
CREATE TRIGGER append_only_truncate BEFORE TRUNCATE ON airlock.config
    FOR EACH STATEMENT EXECUTE FUNCTION airlock.append_only();

REVOKE UPDATE, DELETE, TRUNCATE ON airlock.config FROM PUBLIC;
