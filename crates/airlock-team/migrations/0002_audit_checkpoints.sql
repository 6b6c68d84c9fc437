-- airlock team mode, schema version 2: admin checkpoints over every device's
-- audit chain (docs/team.md, "Team audit").
--
-- One row per checkpoint: the head (seq, row hash) of every device's chain in
-- airlock.audit as an admin device saw it, signed by that admin, and chained to
-- the checkpoint before it (prev = hash of the previous row, zero for the first).
CREATE TABLE airlock.audit_checkpoints (
    seq bigserial PRIMARY KEY,
    device text NOT NULL,                     -- the admin device that wrote it
    at bigint NOT NULL,                       -- unix milliseconds, signed
    prev bytea NOT NULL,                      -- SHA-256 of the previous checkpoint's signed message
    heads text NOT NULL,                      -- JSON [[device, seq, hash hex], ...], sorted by device
    sig bytea NOT NULL,                       -- over (team, device, at, prev, heads)
    written_at timestamptz NOT NULL DEFAULT now()
);

CREATE TRIGGER append_only BEFORE UPDATE OR DELETE ON airlock.audit_checkpoints
    FOR EACH ROW EXECUTE FUNCTION airlock.append_only();
CREATE TRIGGER append_only_truncate BEFORE TRUNCATE ON airlock.audit_checkpoints
    FOR EACH STATEMENT EXECUTE FUNCTION airlock.append_only();

REVOKE UPDATE, DELETE, TRUNCATE ON airlock.audit_checkpoints FROM PUBLIC;
