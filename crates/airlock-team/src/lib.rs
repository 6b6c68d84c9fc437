//! airlock team mode (issue 15, DESIGN §9): many devices share secrets, revocations
//! and the lock through a PostgreSQL database that can read none of it.
//!
//! - [`keys`]: each device's Ed25519 + X25519 keys, the team key per epoch wrapped to
//!   every device with HPKE, secret versions sealed under it, signed rows.
//! - [`local`]: this device's team files in the home (`team/state.json`,
//!   `team/device.sealed`, the latter sealed under the vault).
//! - [`Team`]: init, invite, join, approve, publish (secrets, revocations, lock) and
//!   [`Team::sync`], which verifies every row before it uses it and applies the
//!   change log to the local vault and state files, where every running server of
//!   this home already looks.
//!
//! - the team audit: each device's records signed and chained in `airlock.audit`,
//!   admin checkpoints, [`Team::verify_audit`] and [`Team::read_audit`].
//!
//! Local mode needs none of this: nothing here runs unless the home has joined a team.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod audit;
mod config;
pub mod keys;
pub mod local;
mod schema;
mod team;

pub use audit::{AuditFollow, AuditProblem, AuditReport, Chain, TeamRecord, UPLOAD_BATCH, Upload};
pub use schema::migrate;
pub use team::{
    AUDIT_TICK, CHANNEL, CHECKPOINT_EVERY, DbUrlSet, Device, DeviceRevocation, DeviceStatus,
    DeviceUrl, Followed, Health, Status, SyncReport, Team, UrlStatus, UrlVersion, change_msg,
    device_url_msg,
};

/// Everything that can go wrong in team mode. Messages name the row or file and
/// the remedy; none holds a secret or the database password.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TeamError {
    /// The home has not joined a team.
    #[error(
        "this airlock home is not in team mode; run `airlock team init --db URL` or `airlock team join --db URL CODE`"
    )]
    NotInTeam,
    /// The home is already a device of a team.
    #[error("this airlock home is already a device of team {team}; nothing was changed")]
    AlreadyInTeam {
        /// The team id.
        team: String,
    },
    /// `init` on a database that already holds a team.
    #[error(
        "the database already holds team {team}; join it with `airlock team join --db URL CODE` (an admin prints a code with `airlock team invite`)"
    )]
    TeamExists {
        /// The team id.
        team: String,
    },
    /// The database holds no team.
    #[error("the database holds no airlock team; run `airlock team init --db URL` first")]
    NoTeam,
    /// An invite code that does not parse.
    #[error("the invite code is malformed; copy it again from `airlock team invite`")]
    BadCode,
    /// An invite code that is unknown, used or expired.
    #[error(
        "the invite code is unknown, already used or expired (codes are single-use and valid 1 hour); ask an admin for a new `airlock team invite`"
    )]
    InviteRefused,
    /// A row that fails verification: written by someone without the right key.
    #[error("refused tampered row {row}: {why}")]
    Tampered {
        /// The table and key of the row (`airlock.devices id=…`).
        row: String,
        /// What does not verify.
        why: String,
    },
    /// This device is enrolled but not approved yet.
    #[error(
        "this device ({fingerprint}) is not approved yet; an admin runs `airlock team approve {fingerprint}`"
    )]
    NotApproved {
        /// This device's fingerprint.
        fingerprint: String,
    },
    /// This device was removed from the team.
    #[error(
        "this device ({fingerprint}) was revoked by a team admin: it can no longer sync or read new secret versions; join again with a new invite if that was a mistake"
    )]
    DeviceRevoked {
        /// This device's fingerprint.
        fingerprint: String,
    },
    /// A device that cannot be revoked.
    #[error("device {fingerprint} cannot be revoked: {why}")]
    CannotRevoke {
        /// Its fingerprint.
        fingerprint: String,
        /// Why.
        why: &'static str,
    },
    /// An admin-only action on a member device.
    #[error("only an admin device can {action}")]
    NotAdmin {
        /// What was attempted.
        action: &'static str,
    },
    /// A device that cannot write audit checkpoints.
    #[error(
        "device {fingerprint} is not an approved admin device; only an admin device can write the team's audit checkpoints"
    )]
    NotAdminDevice {
        /// Its fingerprint.
        fingerprint: String,
    },
    /// No device matches a fingerprint.
    #[error("no device matches \"{0}\"; see `airlock team devices`")]
    NoSuchDevice(String),
    /// More than one device matches a fingerprint prefix.
    #[error("\"{0}\" matches more than one device; give the whole fingerprint")]
    AmbiguousDevice(String),
    /// The database URL is not usable.
    #[error("invalid database URL: {0} (expected postgres://USER:PASSWORD@HOST:PORT/DB)")]
    BadUrl(String),
    /// A database error.
    #[error("database: {0}")]
    Db(#[from] sqlx::Error),
    /// A migration error.
    #[error("database schema migration: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// This device's team files are unreadable.
    #[error("{} is unreadable ({detail}); restore it from a backup or join the team again", path.display())]
    Local {
        /// The file.
        path: std::path::PathBuf,
        /// What is wrong.
        detail: String,
    },
    /// This device's local audit log cannot be uploaded as it is.
    #[error("this device's audit log: {0}")]
    LocalAudit(String),
    /// A cryptographic operation failed.
    #[error("team crypto: {0}")]
    Crypto(String),
    /// The vault.
    #[error(transparent)]
    Vault(#[from] airlock_vault::VaultError),
    /// The home directory.
    #[error(transparent)]
    Home(#[from] airlock_home::HomeError),
    /// `airlock.toml`, or a team service or capability that would make it invalid.
    #[error(transparent)]
    Config(#[from] airlock_config::ConfigError),
    /// The broker's state files.
    #[error(transparent)]
    State(#[from] airlock_broker::state::StateError),
}

/// Shorthand.
pub type Result<T, E = TeamError> = std::result::Result<T, E>;
