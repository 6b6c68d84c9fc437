//! Import plans from other secret brokers' configurations.
//!
//! [`read_janee`] reads a [Janee](https://github.com/rsdouglas/janee) home
//! (`~/.janee/`): its `config.yaml`, and `credentials.json` where the install keeps
//! its secrets apart (Janee ≥ 0.13). It opens every sealed value with Janee's own
//! master key (AES-256-GCM) and maps services, capabilities and rules onto airlock's
//! — into a [`JaneePlan`]. Nothing is written: the CLI stores the plan's secrets in
//! the vault and its services and capabilities in `airlock.toml`.
//!
//! What could not be carried over exactly is never guessed: it is left out, or made
//! stricter (an allow rule narrower, a deny rule wider), and said in
//! [`JaneePlan::warnings`], one line each. The format and every mapping decision are
//! documented in `docs/import-janee.md`.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod crypto;
mod glob;
mod janee;
mod names;

use std::fmt;
use std::path::PathBuf;

pub use airlock_config::{Auth, CapabilitySpec};
pub use janee::{default_janee_dir, read_janee};
use secrecy::SecretSlice;

/// Which of Janee's on-disk layouts was read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum JaneeFormat {
    /// `version: 0.2.0` (Janee ≤ 0.12): `masterKey` and the sealed values inline in
    /// `config.yaml`.
    Inline,
    /// `version: 0.3.0` (Janee ≥ 0.13): `config.yaml` without secrets, and
    /// `credentials.json` holding `masterKey` and the sealed values.
    Split,
}

/// Everything an import would create. Holds decrypted secret values: keep it
/// short-lived. `Debug` shows none of them (the parts that hold one hide it).
#[derive(Debug)]
#[non_exhaustive]
pub struct JaneePlan {
    /// The Janee config file that was read.
    pub config_path: PathBuf,
    /// The file the master key came from (`config.yaml` or `credentials.json`).
    pub key_path: PathBuf,
    /// Which layout it was.
    pub format: JaneeFormat,
    /// Services to create, in Janee's order.
    pub services: Vec<PlannedService>,
    /// Capabilities to create, in Janee's order; each names a service of this plan.
    pub capabilities: Vec<PlannedCapability>,
    /// Secrets of Janee services that have no airlock equivalent (e.g. exchange HMAC
    /// signing): stored in the vault so that nothing is lost, used by no service.
    pub unmapped_secrets: Vec<PlannedSecret>,
    /// What could not be carried over exactly, one line each, naming the Janee entry.
    pub warnings: Vec<String>,
}

/// A vault secret to create: its airlock name and the decrypted value.
pub struct PlannedSecret {
    /// The vault name (`airlock_home::is_valid_name`).
    pub name: String,
    /// Where it came from in Janee, e.g. `services.stripe.auth.key`.
    pub janee_entry: String,
    /// The value. Never printed.
    pub value: SecretSlice<u8>,
}

impl fmt::Debug for PlannedSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PlannedSecret")
            .field("name", &self.name)
            .field("janee_entry", &self.janee_entry)
            .field("value", &"[REDACTED]")
            .finish()
    }
}

/// A service to create (`[services.NAME]`) and the vault secrets its auth names.
pub struct PlannedService {
    /// The airlock name (sanitized and unique).
    pub name: String,
    /// The name in Janee.
    pub janee_name: String,
    /// The base URL (checked with `airlock_config::check_service_url`).
    pub url: String,
    /// How the credential is injected; every secret it names is in `secrets`.
    pub auth: Auth,
    /// `(vault name, value)` for each secret `auth` names, in `auth.secrets()` order.
    pub secrets: Vec<(String, SecretSlice<u8>)>,
}

impl fmt::Debug for PlannedService {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<&str> = self.secrets.iter().map(|(n, _)| n.as_str()).collect();
        f.debug_struct("PlannedService")
            .field("name", &self.name)
            .field("janee_name", &self.janee_name)
            .field("url", &self.url)
            .field("auth", &self.auth)
            .field("secrets", &names)
            .finish()
    }
}

/// A capability to create (`[capabilities.NAME]`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlannedCapability {
    /// The airlock name (sanitized and unique).
    pub name: String,
    /// The name in Janee.
    pub janee_name: String,
    /// The airlock name of its service (one of the plan's services).
    pub service: String,
    /// Session TTL, e.g. `"1h"`.
    pub ttl: String,
    /// Allow rules, canonical airlock syntax, each checked with `airlock_policy::Rule::parse`.
    pub allow: Vec<String>,
    /// Deny rules, likewise.
    pub deny: Vec<String>,
    /// Trusted agents allowed to use it; `None` = per `server.default_access`;
    /// `Some(empty)` = no agent (as in Janee).
    pub agents: Option<Vec<String>>,
    /// Whether every request must carry a reason (Janee `requiresReason`).
    pub requires_reason: bool,
    /// Whether requests wait for a person (Janee `autoApprove: false`).
    pub approval: bool,
}

impl PlannedCapability {
    /// The spec `airlock_config::ConfigDoc::add_capability` takes.
    pub fn to_spec(&self) -> CapabilitySpec {
        CapabilitySpec {
            service: self.service.clone(),
            ttl: Some(self.ttl.clone()),
            allow: self.allow.clone(),
            deny: self.deny.clone(),
            agents: self.agents.clone(),
            requires_reason: self.requires_reason,
            approval: self.approval,
            ..Default::default()
        }
    }
}

/// Why a Janee home could not be read. Messages name the file (and line where
/// known) and the remedy; none contains a secret value.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ImportError {
    /// The directory does not exist or is not a directory.
    #[error(
        "{path}: no Janee directory here; give the directory that holds Janee's config.yaml \
         (default ~/.janee, or $JANEE_HOME)"
    )]
    MissingDir {
        /// The directory.
        path: PathBuf,
    },
    /// No `config.yaml` in the directory.
    #[error(
        "{dir}: no config.yaml; this does not look like a Janee home (run `janee init` there, \
         or give the right directory)"
    )]
    MissingConfig {
        /// The directory.
        dir: PathBuf,
    },
    /// A store this importer does not read.
    #[error("{path}: {what}")]
    UnsupportedStore {
        /// The file found.
        path: PathBuf,
        /// What it is and what to do.
        what: String,
    },
    /// A file could not be read.
    #[error("{path}: cannot read: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// `config.yaml` or `credentials.json` is not valid YAML/JSON or not shaped like Janee's.
    #[error("{path}{}: {message}", line.map(|l| format!(":{l}")).unwrap_or_default())]
    Malformed {
        /// The file.
        path: PathBuf,
        /// 1-based line, where known.
        line: Option<usize>,
        /// What is wrong and what was expected.
        message: String,
    },
    /// A `version` this importer does not know.
    #[error(
        "{path}{}: Janee config version {found:?} is not supported; this importer reads \
         versions \"0.2.0\" (inline secrets) and \"0.3.0\" (credentials.json); upgrade Janee \
         and run any janee command to migrate the file, then import again",
        line.map(|l| format!(":{l}")).unwrap_or_default()
    )]
    UnsupportedVersion {
        /// The file.
        path: PathBuf,
        /// 1-based line, where known.
        line: Option<usize>,
        /// The version found.
        found: String,
    },
    /// No master key: no `masterKey` in `config.yaml` and no usable `credentials.json`.
    #[error(
        "{path}: no Janee master key: config.yaml has no masterKey and {detail}; \
         copy the whole Janee directory, credentials.json included"
    )]
    MissingMasterKey {
        /// The file that should hold it.
        path: PathBuf,
        /// What was found instead.
        detail: String,
    },
    /// The master key is not a base64 32-byte key.
    #[error(
        "{path}{}: the Janee masterKey is unusable: {problem}; it must be the 32-byte base64 key \
         `janee init` wrote (a placeholder such as the one in Janee's examples cannot decrypt anything)",
        line.map(|l| format!(":{l}")).unwrap_or_default()
    )]
    InvalidMasterKey {
        /// The file.
        path: PathBuf,
        /// 1-based line, where known.
        line: Option<usize>,
        /// What is wrong with it.
        problem: String,
    },
    /// No sealed value opens with the master key: the key does not belong to these values.
    #[error(
        "{key_path}: none of the {count} sealed values in {values_path} decrypts with this master \
         key: the key is wrong (was credentials.json or config.yaml copied from another Janee \
         install?); use the files of one install together"
    )]
    WrongMasterKey {
        /// Where the key came from.
        key_path: PathBuf,
        /// Where the values are.
        values_path: PathBuf,
        /// How many values were tried.
        count: usize,
    },
    /// One sealed value does not open while others do: altered, corrupted or not sealed.
    #[error(
        "{path}{}: {entry}: {problem}; set it again in Janee (e.g. `janee service edit`) and \
         import again, or remove that service from the Janee config and add it with `airlock add`",
        line.map(|l| format!(":{l}")).unwrap_or_default()
    )]
    ValueAuthentication {
        /// The file holding the value.
        path: PathBuf,
        /// 1-based line, where known.
        line: Option<usize>,
        /// The entry, e.g. `secrets.stripe.key`.
        entry: String,
        /// Why it does not open.
        problem: String,
    },
}
