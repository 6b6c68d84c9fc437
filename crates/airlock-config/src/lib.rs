//! airlock.toml: typed, validated configuration with located errors and comment-preserving edits.
//!
//! [`Config::parse`] turns the text into checked, immutable values in one pass: every
//! reference resolved (a capability's service exists), every rule compiled, every
//! duration and rate parsed. Anything wrong is a [`ConfigError`] that names
//! `file:line:column` and says what was expected. The file never holds a secret
//! value — services name a vault secret instead.
//!
//! [`ConfigDoc`] edits the file for the CLI through `toml_edit`, so the user's
//! comments and ordering survive `airlock add` and friends; every edit is re-parsed
//! with [`Config::parse`] before it is written, so the CLI can never save a config
//! that airlock itself would refuse to load.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod ahead;
mod auth;
mod diff;
mod edit;
mod parse;
mod units;

pub use auth::{
    AUTH_TABLE, AUTH_TYPES, AddFlag, Auth, AuthError, AuthField, AuthKind, AuthType, AuthValue,
    AuthValueRef, ClientAuth, FlagCheck, FlagInput, auth_type,
};
pub use diff::{
    AuthorityDiff, CapabilityDiff, DiffRow, PathChange, RuleMatch, ServiceDiff, SettingChange,
    Status, authority_diff,
};
pub use edit::{CapabilitySpec, ConfigDoc, ExecSpec, TEMPLATE};
pub use parse::{ServiceUrlError, TokenUrlError, check_service_url, check_token_url};
pub use units::{Rate, UnitError, parse_duration, parse_rate, parse_size};

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use airlock_policy::RuleSet;

/// A configuration error, located in the file when it comes from the file.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// Something in the file is wrong; `line`/`column` are 1-based.
    #[error("{}:{line}:{column}: {message}", path.display())]
    Invalid {
        /// The file.
        path: PathBuf,
        /// 1-based line.
        line: usize,
        /// 1-based column.
        column: usize,
        /// What is wrong and what was expected.
        message: String,
    },
    /// An edit the CLI was asked to make is not possible.
    #[error("{0}")]
    Edit(String),
    /// The file cannot be read or written.
    #[error(transparent)]
    Home(#[from] airlock_home::HomeError),
}

/// The whole, validated configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// `[server]` settings.
    pub server: Server,
    /// `[services.NAME]`, by name.
    pub services: BTreeMap<String, Service>,
    /// `[capabilities.NAME]`, by name.
    pub capabilities: BTreeMap<String, Capability>,
    /// `[team]` settings (used only when the home is a device of a team).
    pub team: Team,
}

/// `[team]`: team mode (docs/team.md); ignored in local mode.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Team {
    /// A server that has not caught up with the team's change log for longer
    /// than this refuses new requests until it has.
    pub max_staleness: Duration,
}

impl Default for Team {
    fn default() -> Self {
        Team {
            max_staleness: Duration::from_secs(30),
        }
    }
}

/// `[server]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Server {
    /// Whether capabilities without an `agents` list are visible to every agent.
    pub default_access: DefaultAccess,
    /// How long a request waits for a human approval before it is denied.
    pub approval_timeout: Duration,
    /// When audit records are made durable.
    pub audit_fsync: AuditFsync,
    /// What the egress proxy does with a host no service names.
    pub egress: Egress,
}

/// `server.egress`: what the egress proxy does with a `CONNECT` to a host no
/// service names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Egress {
    /// Refused (the default).
    #[default]
    Deny,
    /// Tunnelled unmodified (no TLS interception, no credential), unless the
    /// host resolves to a private, loopback, link-local or metadata address.
    Tunnel,
}

/// `server.audit_fsync`: when audit records reach the disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum AuditFsync {
    /// Every record is fsynced before the request is answered (the default).
    Always,
    /// Records are written before the answer (so a crash of airlock loses none)
    /// but fsynced in batches of up to 100 ms: a power loss can lose the newest
    /// batch. Much faster on slow disks.
    Batch,
}

impl Default for Server {
    fn default() -> Self {
        Server {
            default_access: DefaultAccess::Open,
            approval_timeout: Duration::from_secs(120),
            audit_fsync: AuditFsync::Always,
            egress: Egress::Deny,
        }
    }
}

/// `server.default_access`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum DefaultAccess {
    /// Capabilities without `agents` are open to every agent.
    Open,
    /// Capabilities without `agents` are hidden.
    Restricted,
}

/// `[services.NAME]`: where an API lives and how to authenticate to it.
#[derive(Debug, Clone)]
pub struct Service {
    /// The service's name.
    pub name: String,
    /// Base URL: scheme, host, optional port and base path. No credentials, query
    /// or fragment. Requests are pinned to its origin.
    pub url: url::Url,
    /// How the credential is injected.
    pub auth: Auth,
    /// Total time allowed for one upstream request (default 60 s).
    pub timeout: Option<Duration>,
    /// Largest request body sent upstream, in bytes (default 10 MiB).
    pub max_request_bytes: Option<u64>,
    /// Largest response body accepted from upstream, in bytes (default 10 MiB).
    pub max_response_bytes: Option<u64>,
    /// Whether the agent's `Cookie` header is forwarded (default false).
    pub forward_cookies: bool,
    /// A PEM file of CA certificates that this service's certificate is checked
    /// against instead of the system's roots (a private CA); `https` only.
    pub ca_file: Option<std::path::PathBuf>,
}

/// `capabilities.NAME.mode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// HTTP requests through `execute` or the gateway.
    Http,
    /// Allow-listed programs with the secret in their environment.
    Exec,
}

/// `capabilities.NAME.approval`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Approval {
    /// No human in the loop.
    Never,
    /// Every request waits for a person.
    Always,
    /// The first request of each session waits for a person.
    Session,
}

/// `[capabilities.NAME]`: what an agent may do with a service.
#[derive(Debug, Clone)]
pub struct Capability {
    /// The capability's name (also the gateway path prefix).
    pub name: String,
    /// The service it uses.
    pub service: String,
    /// HTTP or exec.
    pub mode: Mode,
    /// How long a session lasts.
    pub ttl: Duration,
    /// How many `allow` rules there are; read them as written with
    /// [`Capability::allow_written`], compiled in [`Capability::rules`].
    pub allow: WrittenRules,
    /// How many `deny` rules there are; read them as written with
    /// [`Capability::deny_written`], compiled in [`Capability::rules`].
    pub deny: WrittenRules,
    /// The compiled rules.
    pub rules: RuleSet,
    /// Extra HTTP methods beyond the standard seven.
    pub methods: Vec<String>,
    /// Trusted agent identities allowed to use it; `None` = per `default_access`.
    pub agents: Option<Vec<String>>,
    /// Whether every request must carry a reason.
    pub requires_reason: bool,
    /// Human approval.
    pub approval: Approval,
    /// Rate limit per agent.
    pub rate: Option<Rate>,
    /// Exec mode: allowed programs, as written (resolved by the exec layer).
    pub commands: Vec<String>,
    /// Exec mode: environment for the child; `{{secret}}` stands for the value.
    pub env: BTreeMap<String, String>,
    /// Exec mode: how long a command may run.
    pub timeout: Option<Duration>,
    /// Exec mode: directories the agent's cwd must lie in.
    pub workdirs: Vec<String>,
    /// Exec mode: arguments refused in addition to the built-in guards.
    pub deny_args: Vec<String>,
    /// Exec mode: whether the child runs in the kernel sandbox (default `true`;
    /// `confine = false` is the owner's explicit opt-out, reported by `doctor`
    /// and `list`).
    pub confine: bool,
    /// Exec mode: what network the child may reach.
    pub network: Network,
    /// Exec mode: what the child holds for the secret.
    pub inject: Inject,
    /// Learning mode (`learn_until`, HTTP only): until then the service's
    /// requests are allowed (deny rules still apply) and recorded, for
    /// `airlock learn show` to propose rules from; after it, a capability
    /// without allow rules refuses everything until `airlock learn apply`.
    pub learn_until: Option<jiff::Timestamp>,
}

/// One of a capability's rule lists as written in `airlock.toml`, held without
/// a second copy of the rules: the compiled rules ([`Capability::rules`]) keep
/// each rule's canonical text, and this keeps only the rules written otherwise
/// (`get  /v1/**` for `GET /v1/**`). A million rules load at start-up (issue 16).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WrittenRules {
    /// How many rules the list has.
    len: usize,
    /// The rules whose text is not their canonical text: index, text, by index.
    differ: Vec<(usize, Box<str>)>,
}

impl WrittenRules {
    /// `written` as the rules compiled from it (`compiled`, in the same order,
    /// each parsed from the text at its index) keep it.
    pub(crate) fn new<S: AsRef<str>>(
        written: &[S],
        compiled: &[airlock_policy::Rule],
    ) -> WrittenRules {
        let differ = written
            .iter()
            .map(AsRef::as_ref)
            .zip(compiled)
            .enumerate()
            .filter(|(_, (w, r))| *w != r.as_str())
            .map(|(i, (w, _))| (i, w.into()))
            .collect();
        WrittenRules {
            len: written.len(),
            differ,
        }
    }

    /// How many rules the list has.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the list is empty (or absent).
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The texts as written, given the compiled rules of the list.
    fn texts<'a>(&'a self, compiled: &'a [airlock_policy::Rule]) -> Written<'a> {
        Written {
            compiled: compiled
                .get(..self.len)
                .unwrap_or(compiled)
                .iter()
                .enumerate(),
            differ: &self.differ,
        }
    }
}

/// The rules of a list as written, in order ([`Capability::allow_written`]).
#[derive(Debug, Clone)]
pub struct Written<'a> {
    compiled: std::iter::Enumerate<std::slice::Iter<'a, airlock_policy::Rule>>,
    /// The rest of the rules written otherwise than canonically, by index.
    differ: &'a [(usize, Box<str>)],
}

impl<'a> Iterator for Written<'a> {
    type Item = &'a str;

    fn next(&mut self) -> Option<&'a str> {
        let (i, rule) = self.compiled.next()?;
        match self.differ.split_first() {
            Some(((at, text), rest)) if *at == i => {
                self.differ = rest;
                Some(text)
            }
            _ => Some(rule.as_str()),
        }
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        self.compiled.size_hint()
    }
}

impl ExactSizeIterator for Written<'_> {}

impl Capability {
    /// The `allow` rules as written, in order.
    pub fn allow_written(&self) -> Written<'_> {
        self.allow.texts(self.rules.allow_rules())
    }

    /// The `deny` rules as written, in order.
    pub fn deny_written(&self) -> Written<'_> {
        self.deny.texts(self.rules.deny_rules())
    }

    /// Whether the capability is learning at `now`.
    pub fn learning_at(&self, now: jiff::Timestamp) -> bool {
        self.learn_until.is_some_and(|until| now < until)
    }
}

/// What an exec child holds where its capability's `env` says `{{secret}}`
/// (`inject = "…"`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Inject {
    /// A placeholder bound to the service (the default); the child reaches the
    /// network only through airlock's egress proxy, which puts the key on
    /// requests to the service (docs/proxy.md).
    #[default]
    Placeholder,
    /// The real secret, for uses the proxy cannot stand in for (a database
    /// password, a signing key).
    Env,
}

impl Inject {
    /// As written in `airlock.toml`.
    pub fn as_str(self) -> &'static str {
        match self {
            Inject::Env => "env",
            Inject::Placeholder => "placeholder",
        }
    }
}

/// What network an exec child may reach (`network = "…"` on the capability).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Network {
    /// No network at all (the default until the egress proxy exists): no socket
    /// can be created, no TCP connection made.
    #[default]
    None,
    /// Any host, directly: the network is not confined (`doctor` flags it).
    Direct,
}

impl Network {
    /// As written in `airlock.toml`.
    pub fn as_str(self) -> &'static str {
        match self {
            Network::None => "none",
            Network::Direct => "direct",
        }
    }
}

impl Config {
    /// The capability named, or an error that lists what exists.
    pub fn capability(&self, name: &str) -> Option<&Capability> {
        self.capabilities.get(name)
    }

    /// Every vault secret referenced by a service.
    pub fn referenced_secrets(&self) -> BTreeMap<&str, Vec<&str>> {
        let mut out: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
        for svc in self.services.values() {
            for s in svc.auth.secrets() {
                out.entry(s).or_default().push(svc.name.as_str());
            }
        }
        out
    }
}
