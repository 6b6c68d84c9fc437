//! airlock's tamper-evident audit log.
//!
//! One JSONL record per decision, under `$AIRLOCK_HOME/audit/` (`audit-000001.jsonl`,
//! rotated by size). Each record carries `prev`, the MAC of the record before it,
//! and `mac`, an HMAC-SHA256 of its own canonical serialization keyed by the
//! audit key (derived by the vault from its data key): editing, deleting,
//! reordering or inserting a record breaks the chain. The chain's head is also
//! written to `state/audit-head` (the *anchor*), so deleting the newest records —
//! which leaves a shorter but valid chain — is detected too (DESIGN §7.9).
//!
//! * [`AuditLog`] appends, from any number of threads and processes at once
//!   (exclusive lock on `audit/.lock` per append), with an [`FsyncPolicy`].
//!   [`SharedLog`] shares one between a server's threads with group commit: one
//!   fsync makes every record waiting at that moment durable.
//! * [`verify`] walks the chain and names the first bad record
//!   ([`VerifyReport`], one line for `airlock audit verify`).
//! * [`records`] and [`Follow`] read for `airlock logs [-f]`, with a [`Filter`];
//!   [`Record::human`] is the one-line format.
//!
//! The file format, the threat model and the fsync trade-off are in
//! `docs/audit.md`.
//!
//! ```
//! use airlock_audit::{AuditLog, Decision, Event, Options, verify};
//! # let dir = tempfile::tempdir().unwrap();
//! # let (audit, state) = (dir.path().join("audit"), dir.path().join("state"));
//! let key = [7u8; 32]; // airlock: vault.audit_key()
//! let mut log = AuditLog::open(&audit, &state, &key, Options::default())?;
//! let seq = log.append(
//!     &Event::request("stripe", "GET", "/v1/charges")
//!         .agent("claude-desktop", true)
//!         .decision(Decision::Allow)
//!         .status(200),
//! )?;
//! assert_eq!(seq, 1);
//! assert!(verify(&audit, &state, &key)?.is_ok());
//! # Ok::<(), airlock_audit::AuditError>(())
//! ```
#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod chain;
mod error;
mod files;
mod group;
mod log;
mod read;
mod record;
mod seek;
mod verify;

pub use chain::{ANCHOR_FILE, Mac, ParseMacError};
pub use error::{AuditError, LineError};
pub use group::{SharedLog, Written};
pub use log::{AuditLog, DEFAULT_MAX_FILE_BYTES, FsyncPolicy, Head, LOCK_FILE, Options};
pub use read::{Filter, Follow, Records, records};
pub use record::{
    Decision, Escaped, Event, Human, Kind, MAX_DETAIL, MAX_FIELD, MAX_LINE, MAX_PATH,
    MAX_QUERY_KEYS, Record,
};
pub use seek::{After, WINDOW, records_after};
pub use verify::{Outcome, Problem, ProblemKind, VerifyReport, verify, verify_home};
