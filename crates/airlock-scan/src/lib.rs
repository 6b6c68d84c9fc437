//! Finds exposed secrets in files, configs and git history, with a risk rating.
//!
//! The exposure inventory behind `airlock scan`. One pass per file: an
//! Aho-Corasick automaton over every rule's keywords decides which rules can
//! match at all, and only those rules' regexes run. Structured readers
//! (`.env`, JSON/YAML/TOML, MCP client configs, Kubernetes Secrets, Jupyter
//! notebooks) add key paths and decoded values. A [`Finding`] never holds a
//! secret: only a redacted preview and a fingerprint.
//!
//! ```no_run
//! use airlock_scan::Scanner;
//! let scanner = Scanner::new()?;
//! for f in scanner.scan_bytes("app/.env".as_ref(), b"STRIPE=sk_live_...") {
//!     assert!(!f.preview.is_empty());
//! }
//! # Ok::<(), airlock_scan::ScanError>(())
//! ```
#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod cli;
mod engine;
mod finding;
mod git;
mod report;
mod risk;
mod rules;
mod structured;
pub mod verify;
mod walk;

use std::path::PathBuf;

pub use engine::{RuleInfo, Scanner};
pub use finding::{FileContext, Finding, Risk};
pub use walk::{Report, ScanOptions, scan};

/// Why a scan could not run. Messages name the thing and the remedy.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ScanError {
    /// A path given on the command line does not exist.
    #[error("path \"{}\" does not exist; check the spelling, or run `airlock scan` from the project directory", path.display())]
    PathNotFound {
        /// The path as given.
        path: PathBuf,
    },
    /// `--git` outside a git repository.
    #[error("--git needs a git repository, and \"{}\" is not inside one; drop --git or scan a repository", path.display())]
    NotARepo {
        /// The path as given.
        path: PathBuf,
    },
    /// A git command failed.
    #[error("cannot read the git history of \"{}\": {reason}; check that `git` is installed and the repository is intact (`git fsck`)", repo.display())]
    Git {
        /// The repository's work tree.
        repo: PathBuf,
        /// What failed.
        reason: String,
    },
    /// The baseline file cannot be read.
    #[error("cannot read baseline \"{}\": {reason}; write one with `airlock scan --write-baseline {}`", path.display(), path.display())]
    Baseline {
        /// The baseline file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// The baseline file cannot be written.
    #[error("cannot write baseline \"{}\": {source}; check that its directory exists and is writable", path.display())]
    WriteBaseline {
        /// The baseline file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The report cannot be written.
    #[error("cannot write the scan report: {0}; check the output file or pipe")]
    Output(std::io::Error),
    /// A built-in rule does not compile (a bug).
    #[error(
        "built-in rule {rule} does not compile: {reason}; this is a bug in airlock, please report it"
    )]
    Rule {
        /// Rule id.
        rule: &'static str,
        /// Compiler message.
        reason: String,
    },
}

/// Test and corpus support: token checksums, so generated secrets are
/// format-valid. Not part of the stable API.
#[doc(hidden)]
pub mod testing {
    /// The GitHub/npm base62 CRC32 checksum (6 characters) of a token's random part.
    pub fn github_checksum(random: &[u8]) -> String {
        crate::engine::github_checksum(random)
    }
    /// A bech32 string (upper case) for `hrp` and 5-bit `data`, checksum appended.
    pub fn bech32_encode(hrp: &str, data: &[u8]) -> String {
        crate::engine::bech32_encode(hrp, data)
    }
    /// Ids of all built-in rules.
    pub fn rule_ids() -> Vec<&'static str> {
        crate::rules::RULES.iter().map(|r| r.id).collect()
    }
}
