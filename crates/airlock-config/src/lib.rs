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

mod edit;
mod parse;
mod units;

pub use edit::{CapabilitySpec, ConfigDoc, ExecSpec, TEMPLATE};
pub use parse::{check_service_url, check_token_url};
pub use units::{Rate, parse_duration, parse_rate, parse_size};

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use airlock_policy::RuleSet;

/// The auth types this airlock can inject, as written in `auth.type`.
pub const AUTH_TYPES: &[&str] = &[
    "bearer",
    "basic",
    "header",
    "query",
    "aws-sigv4",
    "oauth1",
    "github-app",
    "gcp-service-account",
    "oauth2",
];

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
}

/// How a credential is attached to a request.
///
/// Every variant names its vault secrets (never their values) and carries the
/// non-secret parameters, validated when the file is parsed. `docs/config.md`
/// ("auth types") shows the TOML of each.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Auth {
    /// `Authorization: Bearer <secret>`.
    Bearer {
        /// The vault secret's name.
        secret: String,
    },
    /// `Authorization: Basic base64(username:password)` (RFC 7617).
    Basic {
        /// The user name (not a secret; may be empty, never contains `:`).
        username: String,
        /// The vault secret holding the password.
        secret: String,
    },
    /// An API key in a header of the service's choosing: `<header_name>: <prefix><secret>`.
    Header {
        /// The header's name, e.g. `X-Api-Key` (a valid, non-hop-by-hop header name).
        header_name: String,
        /// Text put before the key, e.g. `"Token "`; empty for none.
        prefix: String,
        /// The vault secret holding the key.
        secret: String,
    },
    /// An API key in a query parameter: `?<param>=<secret>`.
    Query {
        /// The query parameter's name, e.g. `api_key`.
        param: String,
        /// The vault secret holding the key.
        secret: String,
    },
    /// AWS Signature Version 4 in the `Authorization` header.
    AwsSigV4 {
        /// The AWS region, e.g. `us-east-1`.
        region: String,
        /// The signing name of the AWS service, e.g. `s3`, `ses`, `execute-api`.
        aws_service: String,
        /// The vault secret holding the access key id.
        access_key_id: String,
        /// The vault secret holding the secret access key.
        secret_access_key: String,
        /// The vault secret holding a session token (temporary credentials), if any.
        session_token: Option<String>,
    },
    /// OAuth 1.0a with HMAC-SHA1 signatures (RFC 5849).
    OAuth1 {
        /// The vault secret holding the consumer (client) key.
        consumer_key: String,
        /// The vault secret holding the consumer (client) secret.
        consumer_secret: String,
        /// The vault secret holding the access token; `None` for two-legged OAuth.
        /// Set together with `token_secret`.
        token: Option<String>,
        /// The vault secret holding the token secret. Set together with `token`.
        token_secret: Option<String>,
    },
    /// A GitHub App installation: a JWT (RS256) signed with the app's private key is
    /// exchanged at `{service url}/app/installations/{installation_id}/access_tokens`
    /// for an installation token, sent as `Authorization: Bearer`.
    GitHubApp {
        /// The app's id (digits) or client id.
        app_id: String,
        /// The installation's id.
        installation_id: u64,
        /// The vault secret holding the app's PEM private key.
        secret: String,
    },
    /// A Google Cloud service account: a JWT (RS256) from the key file is exchanged at
    /// the key's `token_uri` for an access token, sent as `Authorization: Bearer`.
    GcpServiceAccount {
        /// The vault secret holding the service account's JSON key file.
        secret: String,
        /// The OAuth scopes to request (at least one).
        scopes: Vec<String>,
    },
    /// OAuth 2.0 client credentials grant (RFC 6749 §4.4): the access token is sent as
    /// `Authorization: Bearer`.
    OAuth2 {
        /// The token endpoint (https, or http on a loopback address).
        token_url: url::Url,
        /// The client id (not a secret).
        client_id: String,
        /// The vault secret holding the client secret.
        secret: String,
        /// The `scope` parameter, if the provider wants one.
        scope: Option<String>,
        /// How the client authenticates to the token endpoint.
        client_auth: ClientAuth,
    },
}

/// How an OAuth 2.0 client authenticates to its token endpoint (RFC 6749 §2.3.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ClientAuth {
    /// HTTP Basic with the form-encoded client id and secret (the RFC's default).
    #[default]
    Basic,
    /// `client_id` and `client_secret` in the form body.
    Body,
}

impl ClientAuth {
    /// The name written in the config (`"basic"`, `"body"`).
    pub fn name(self) -> &'static str {
        match self {
            ClientAuth::Basic => "basic",
            ClientAuth::Body => "body",
        }
    }
}

impl Auth {
    /// The auth type's name as written in the config.
    pub fn type_name(&self) -> &'static str {
        match self {
            Auth::Bearer { .. } => "bearer",
            Auth::Basic { .. } => "basic",
            Auth::Header { .. } => "header",
            Auth::Query { .. } => "query",
            Auth::AwsSigV4 { .. } => "aws-sigv4",
            Auth::OAuth1 { .. } => "oauth1",
            Auth::GitHubApp { .. } => "github-app",
            Auth::GcpServiceAccount { .. } => "gcp-service-account",
            Auth::OAuth2 { .. } => "oauth2",
        }
    }

    /// Every vault secret this auth uses, in the order of the config fields.
    pub fn secrets(&self) -> Vec<&str> {
        match self {
            Auth::Bearer { secret }
            | Auth::Basic { secret, .. }
            | Auth::Header { secret, .. }
            | Auth::Query { secret, .. }
            | Auth::GitHubApp { secret, .. }
            | Auth::GcpServiceAccount { secret, .. }
            | Auth::OAuth2 { secret, .. } => vec![secret.as_str()],
            Auth::AwsSigV4 {
                access_key_id,
                secret_access_key,
                session_token,
                ..
            } => {
                let mut v = vec![access_key_id.as_str(), secret_access_key.as_str()];
                v.extend(session_token.as_deref());
                v
            }
            Auth::OAuth1 {
                consumer_key,
                consumer_secret,
                token,
                token_secret,
            } => {
                let mut v = vec![consumer_key.as_str(), consumer_secret.as_str()];
                v.extend(token.as_deref());
                v.extend(token_secret.as_deref());
                v
            }
        }
    }

    /// Whether this auth obtains short-lived tokens from a token endpoint (and so
    /// needs a cache that outlives one request).
    pub fn mints_tokens(&self) -> bool {
        matches!(
            self,
            Auth::GitHubApp { .. } | Auth::GcpServiceAccount { .. } | Auth::OAuth2 { .. }
        )
    }

    /// The `auth = { … }` inline table that [`Config::parse`] reads back as this
    /// value, fields in their documented order: what the CLI writes.
    pub fn to_inline_table(&self) -> toml_edit::InlineTable {
        use toml_edit::Value;
        let mut t = toml_edit::InlineTable::new();
        t.insert("type", Value::from(self.type_name()));
        fn put(t: &mut toml_edit::InlineTable, k: &str, v: &str) {
            t.insert(k, toml_edit::Value::from(v));
        }
        match self {
            Auth::Bearer { secret } => put(&mut t, "secret", secret),
            Auth::Basic { username, secret } => {
                put(&mut t, "username", username);
                put(&mut t, "secret", secret);
            }
            Auth::Header {
                header_name,
                prefix,
                secret,
            } => {
                put(&mut t, "header_name", header_name);
                if !prefix.is_empty() {
                    put(&mut t, "prefix", prefix);
                }
                put(&mut t, "secret", secret);
            }
            Auth::Query { param, secret } => {
                put(&mut t, "param", param);
                put(&mut t, "secret", secret);
            }
            Auth::AwsSigV4 {
                region,
                aws_service,
                access_key_id,
                secret_access_key,
                session_token,
            } => {
                put(&mut t, "region", region);
                put(&mut t, "aws_service", aws_service);
                put(&mut t, "access_key_id", access_key_id);
                put(&mut t, "secret_access_key", secret_access_key);
                if let Some(tok) = session_token {
                    put(&mut t, "session_token", tok);
                }
            }
            Auth::OAuth1 {
                consumer_key,
                consumer_secret,
                token,
                token_secret,
            } => {
                put(&mut t, "consumer_key", consumer_key);
                put(&mut t, "consumer_secret", consumer_secret);
                if let Some(v) = token {
                    put(&mut t, "token", v);
                }
                if let Some(v) = token_secret {
                    put(&mut t, "token_secret", v);
                }
            }
            Auth::GitHubApp {
                app_id,
                installation_id,
                secret,
            } => {
                match app_id.parse::<i64>() {
                    Ok(n) => {
                        t.insert("app_id", Value::from(n));
                    }
                    Err(_) => put(&mut t, "app_id", app_id),
                }
                match i64::try_from(*installation_id) {
                    Ok(n) => {
                        t.insert("installation_id", Value::from(n));
                    }
                    Err(_) => {
                        t.insert("installation_id", Value::from(installation_id.to_string()));
                    }
                }
                put(&mut t, "secret", secret);
            }
            Auth::GcpServiceAccount { secret, scopes } => {
                put(&mut t, "secret", secret);
                let mut a = toml_edit::Array::new();
                for sc in scopes {
                    a.push(sc.as_str());
                }
                t.insert("scopes", Value::Array(a));
            }
            Auth::OAuth2 {
                token_url,
                client_id,
                secret,
                scope,
                client_auth,
            } => {
                put(&mut t, "token_url", token_url.as_str());
                put(&mut t, "client_id", client_id);
                put(&mut t, "secret", secret);
                if let Some(sc) = scope {
                    put(&mut t, "scope", sc);
                }
                if *client_auth != ClientAuth::default() {
                    put(&mut t, "client_auth", client_auth.name());
                }
            }
        }
        t
    }
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
    /// `allow` rules as written.
    pub allow: Vec<String>,
    /// `deny` rules as written.
    pub deny: Vec<String>,
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
