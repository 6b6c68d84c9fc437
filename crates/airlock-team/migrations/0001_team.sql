-- airlock team mode, schema `airlock` (docs/team.md, "Schema").
-- The database is blind: it holds public keys, wrapped keys, ciphertext and signed
-- rows. Every row a node uses is verified by the node (signature by an approved
-- device, admin where it matters); nothing here is trusted for confidentiality or
-- integrity, only for availability.

-- The one team this database holds.
CREATE TABLE airlock.team (
    one boolean PRIMARY KEY DEFAULT true CHECK (one),
    id text NOT NULL,                         -- random 128-bit hex; bound into every AAD and signature
    root_device text NOT NULL,                -- the first admin's device id (pinned by every device)
    created_at timestamptz NOT NULL DEFAULT now()
);

-- Devices: public keys, and the admin signature that makes one a member.
CREATE TABLE airlock.devices (
    id text PRIMARY KEY,                      -- hex SHA-256 over both public keys
    name text NOT NULL,
    sign_pk bytea NOT NULL,                   -- Ed25519
    kx_pk bytea NOT NULL,                     -- X25519 (HPKE recipient)
    invite bytea,                             -- hash of the invite code it joined with (NULL: the root)
    joined_at timestamptz NOT NULL DEFAULT now(),
    admin boolean NOT NULL DEFAULT false,
    approved_by text,                         -- admin device id; NULL while pending
    approval_sig bytea,                       -- over (team, id, name, keys, admin, approved_by)
    revoked_by text,
    revocation_sig bytea
);

-- Single-use enrollment codes; only the code's SHA-256 is stored.
CREATE TABLE airlock.invites (
    code_hash bytea PRIMARY KEY,
    admin boolean NOT NULL,
    expires bigint NOT NULL,                  -- unix seconds
    created_by text NOT NULL,
    sig bytea NOT NULL,                       -- the admin's, over (team, code_hash, admin, expires)
    used_by text,
    used_at timestamptz
);

-- The team key of each epoch, HPKE-wrapped to each device.
CREATE TABLE airlock.epoch_keys (
    epoch integer NOT NULL,
    device text NOT NULL,
    enc bytea NOT NULL,                       -- HPKE encapsulated key
    ct bytea NOT NULL,                        -- the wrapped 32-byte epoch key
    wrapped_by text NOT NULL,
    sig bytea NOT NULL,                       -- the wrapping admin's
    PRIMARY KEY (epoch, device)
);

-- Secret versions, sealed under their epoch's key; AAD = (team, name, version, epoch).
CREATE TABLE airlock.secrets (
    name text NOT NULL,
    version integer NOT NULL,
    epoch integer NOT NULL,
    nonce bytea NOT NULL,
    ct bytea NOT NULL,
    author text NOT NULL,
    sig bytea NOT NULL,                       -- the author device's
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (name, version)
);

-- Services and capabilities: the TOML table of each, signed by an admin device.
CREATE TABLE airlock.config (
    kind text NOT NULL CHECK (kind IN ('service', 'capability')),
    name text NOT NULL,
    version integer NOT NULL,
    body text NOT NULL,                       -- empty: removed
    author text NOT NULL,
    sig bytea NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (kind, name, version)
);

-- The numbered change log; its number is sent with pg_notify('airlock_changes')
-- in the transaction that writes the row.
CREATE TABLE airlock.changes (
    seq bigserial PRIMARY KEY,
    kind text NOT NULL,                       -- secret | revoke | lock | unlock | device | config
    subject text NOT NULL,
    body text NOT NULL,
    at bigint NOT NULL,                       -- unix milliseconds, signed
    device text NOT NULL,
    sig bytea NOT NULL,                       -- over (team, kind, subject, body, at, device)
    written_at timestamptz NOT NULL DEFAULT now()
);

-- Per-device audit chains (device, seq, prev): one row per record, never changed.
CREATE TABLE airlock.audit (
    device text NOT NULL,
    seq bigint NOT NULL,
    prev bytea NOT NULL,
    record text NOT NULL,
    sig bytea NOT NULL,
    uploaded_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (device, seq)
);

-- Append-only tables: no UPDATE, DELETE or TRUNCATE by the app role (or anyone
-- who does not first drop the trigger, which needs the table owner).
CREATE FUNCTION airlock.append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'airlock.% is append-only: % refused', TG_TABLE_NAME, TG_OP;
END
$$;

CREATE TRIGGER append_only BEFORE UPDATE OR DELETE ON airlock.audit
    FOR EACH ROW EXECUTE FUNCTION airlock.append_only();
CREATE TRIGGER append_only_truncate BEFORE TRUNCATE ON airlock.audit
    FOR EACH STATEMENT EXECUTE FUNCTION airlock.append_only();
CREATE TRIGGER append_only BEFORE UPDATE OR DELETE ON airlock.changes
    FOR EACH ROW EXECUTE FUNCTION airlock.append_only();
CREATE TRIGGER append_only_truncate BEFORE TRUNCATE ON airlock.changes
    FOR EACH STATEMENT EXECUTE FUNCTION airlock.append_only();
CREATE TRIGGER append_only BEFORE UPDATE OR DELETE ON airlock.secrets
    FOR EACH ROW EXECUTE FUNCTION airlock.append_only();

REVOKE UPDATE, DELETE, TRUNCATE ON airlock.audit, airlock.changes, airlock.secrets FROM PUBLIC;
