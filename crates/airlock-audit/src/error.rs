//! The error types of this crate: [`AuditError`] for every operation, and
//! [`LineError`], why one line of a log is not a record (what
//! [`crate::Record::parse_line`] returns, and the reason of
//! [`AuditError::Malformed`]). Problems *inside* the log (a bad MAC, a gap) are not
//! errors of `verify`: they are its result ([`crate::VerifyReport`]).
//!
//! A wrapped error that its message already prints is kept as a typed field, not
//! as a `source`: the CLI prints the source chain after the message, on one line.

use std::io;
use std::path::PathBuf;

/// Why an audit operation failed. Each message names the file and what to do.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AuditError {
    /// An I/O error on a named path. For `append` this means the record was not
    /// written (or not made durable), and the request it describes must fail.
    #[error("{action} {}: {source}; check free disk space and that the airlock home is writable by this user", path.display())]
    Io {
        /// What airlock was doing ("cannot write the audit log", …).
        action: &'static str,
        /// The path concerned.
        path: PathBuf,
        /// The underlying error.
        source: io::Error,
    },
    /// A directory or file of the home is unusable (permissions, not a directory).
    #[error(transparent)]
    Home(#[from] airlock_home::HomeError),
    /// Another process held `audit/.lock` for longer than the lock timeout.
    #[error(
        "the audit log is locked by another airlock process (lock file {}); wait for it to finish and retry",
        lock.display()
    )]
    Locked {
        /// The lock file.
        lock: PathBuf,
    },
    /// Neither the anchor nor the newest record verifies with the key given: the log
    /// was written with another key (another vault, or a re-keyed vault).
    #[error(
        "the audit log {} was written with a different key (neither its newest record nor the anchor {} verifies): \
         check that AIRLOCK_HOME points at the vault that wrote it, or move the audit/ directory and the anchor aside to start a new chain",
        audit_dir.display(),
        anchor.display()
    )]
    WrongKey {
        /// The audit directory.
        audit_dir: PathBuf,
        /// The anchor file.
        anchor: PathBuf,
    },
    /// A line of the log is not a readable record (returned by the reader; the
    /// verifier reports this as a [`crate::Problem`] instead).
    #[error("{file} line {line}: {reason}; run `airlock audit verify` to check the log")]
    Malformed {
        /// The log file's name (`audit-000001.jsonl`).
        file: String,
        /// 1-based line number.
        line: u64,
        /// What is wrong with it.
        reason: LineError,
    },
    /// A group commit that covered this record failed to make it durable (the
    /// thread that ran the fsync got the underlying error).
    #[error("the audit record could not be made durable: {reason}")]
    NotDurable {
        /// The error of the failed sync.
        reason: String,
    },
    /// A record kind is not a valid name.
    #[error(
        "invalid audit record kind {0:?}: use 1-64 characters from a-z 0-9 _, starting with a letter"
    )]
    InvalidKind(String),
}

/// Why a line of the log is not a record. This checks the shape of the line only,
/// never its MAC.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LineError {
    /// The line is longer than any record airlock writes.
    #[error("line is longer than {max} bytes")]
    TooLong {
        /// The longest line accepted, in bytes.
        max: usize,
    },
    /// A line without its newline in a file that is not the newest: a record cut
    /// short by a crash, in a file that was then rotated.
    #[error("incomplete record in a file that is not the newest")]
    Incomplete,
    /// Not a JSON object ending in the `"mac"` member.
    #[error("not an audit record (expected a JSON object ending in a \"mac\" member)")]
    NotARecord,
    /// The `"mac"` or `"prev"` member is not a MAC.
    #[error("the \"{member}\" member is not 64 lowercase hex digits")]
    BadMac {
        /// `"mac"` or `"prev"`.
        member: &'static str,
    },
    /// The body is not the JSON of a record.
    #[error("invalid JSON: {0}")]
    Json(serde_json::Error),
    /// The `"ts"` member is not an RFC 3339 timestamp.
    #[error("invalid \"ts\" {ts:?}: {reason}")]
    Timestamp {
        /// The text of the member.
        ts: String,
        /// Why it does not parse.
        reason: jiff::Error,
    },
    /// The `"kind"` member is not a valid kind name.
    #[error(
        "invalid audit record kind {kind:?}: use 1-64 characters from a-z 0-9 _, starting with a letter"
    )]
    Kind {
        /// The text of the member.
        kind: String,
    },
}

impl AuditError {
    pub(crate) fn io(action: &'static str, path: impl Into<PathBuf>, source: io::Error) -> Self {
        AuditError::Io {
            action,
            path: path.into(),
            source,
        }
    }
}
