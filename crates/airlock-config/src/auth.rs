//! The auth types: one table ([`AUTH_TABLE`]) that every reader of auth knowledge
//! uses — the config parser, `airlock add`, the Janee importer and the injector
//! registry.
//!
//! A row names the type, its fields in their documented order, which of them are
//! required, which name vault secrets, how `airlock add` fills each one, and whether
//! the type mints tokens. [`Auth`] is the typed value; [`Auth::fields`] and
//! [`Auth::from_values`] convert between it and the table's fields, so everything
//! else (secret lists, the TOML the CLI writes, field checks, CLI flags) is generic.
//!
//! Adding an auth type: a variant of [`Auth`] and of [`AuthKind`], a row in
//! [`AUTH_TABLE`] (with a check for each new non-secret field in `parse.rs`), the
//! two conversion arms below, and its injector in `airlock-inject` (whose registry
//! matches on [`Auth`] exhaustively, so the compiler asks for it).

use std::collections::BTreeMap;
use std::sync::OnceLock;

use crate::parse::{self, Check, Shape};

/// The auth types, one per row of [`AUTH_TABLE`]. Not `non_exhaustive` on purpose:
/// a `match` on it (or on [`Auth`]) stops compiling until a new type is handled.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum AuthKind {
    /// `bearer`
    Bearer,
    /// `basic`
    Basic,
    /// `header`
    Header,
    /// `query`
    Query,
    /// `aws-sigv4`
    AwsSigV4,
    /// `oauth1`
    OAuth1,
    /// `github-app`
    GitHubApp,
    /// `gcp-service-account`
    GcpServiceAccount,
    /// `oauth2`
    OAuth2,
}

/// One auth type: a row of [`AUTH_TABLE`].
#[derive(Debug)]
pub struct AuthType {
    /// Which type.
    pub kind: AuthKind,
    /// The name written in `auth.type`.
    pub name: &'static str,
    /// Its fields besides `type`, in their documented (and written) order.
    pub fields: &'static [AuthField],
    /// Whether it obtains short-lived tokens from a token endpoint (and so needs a
    /// cache that outlives one request).
    pub mints_tokens: bool,
    /// Optional fields that are set both or neither.
    pub together: &'static [(&'static str, &'static str)],
}

/// One field of an auth type.
#[derive(Debug)]
pub struct AuthField {
    /// The key in `auth = { … }`.
    pub name: &'static str,
    /// Whether the type needs it.
    pub required: bool,
    /// Whether it names a vault secret (its value is a secret's name, never a value).
    pub secret: bool,
    /// What it is for, as the parser says when it is missing (`needs `name = …` (about)`).
    pub about: &'static str,
    /// The value shown in that message: `"…"`, `123456`, `[…]`.
    pub example: &'static str,
    /// How `airlock add` fills it; `None`: `add` leaves it out (its default).
    pub flag: Option<AddFlag>,
    pub(crate) shape: Shape,
    pub(crate) check: Check,
}

impl AuthField {
    /// The suffix of the vault secret `airlock add` (and importers) create for this
    /// field: `None` for the main secret (`secret`, stored as the service's name),
    /// else the field's name (`NAME.access_key_id`). `None` too for non-secret fields.
    pub fn vault_part(&self) -> Option<&'static str> {
        (self.secret && self.name != "secret").then_some(self.name)
    }
}

/// How `airlock add` fills a field.
#[derive(Debug, Clone, Copy)]
pub struct AddFlag {
    /// The flag without `--`; `None` for a main secret read only through
    /// `--key-from-env`, `--key-stdin`, `--key` or a prompt.
    pub long: Option<&'static str>,
    /// The flag's value name in `--help`.
    pub value_name: &'static str,
    /// The flag's help text (shown after `TYPE: `).
    pub help: &'static str,
    /// What the value is: the prompt, and the parenthesis of "needs --flag (…)".
    pub what: &'static str,
    /// Where the value comes from.
    pub input: FlagInput,
    /// A check run on the value as soon as it is read (its message is the error).
    pub check: Option<FlagCheck>,
}

/// A check `airlock add` runs on a flag's value; its error is the message.
pub type FlagCheck = fn(&str) -> Result<(), AuthError>;

/// Why [`Auth::from_values`] (or a [`FlagCheck`]) refuses a value. `field` is the
/// auth field's name as written in the config.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AuthError {
    /// A required field has no value.
    #[error("`{field}` is missing")]
    Missing {
        /// The field.
        field: String,
    },
    /// A list where a string is expected.
    #[error("`{field}` must be a string")]
    NotText {
        /// The field.
        field: String,
    },
    /// Text that is not a positive number where a number is expected.
    #[error("`{field}` must be a positive number")]
    NotPositiveNumber {
        /// The field.
        field: String,
    },
    /// A list where a number is expected.
    #[error("`{field}` must be a number")]
    NotNumber {
        /// The field.
        field: String,
    },
    /// A single value where a list is expected.
    #[error("`{field}` must be a list")]
    NotList {
        /// The field.
        field: String,
    },
    /// A field this auth type does not have.
    #[error("`{field}` is not a field of this auth type")]
    UnknownField {
        /// The field.
        field: String,
    },
    /// `client_auth` is neither `"basic"` nor `"body"`.
    #[error(
        "invalid `client_auth` \"{}\"; expected \"basic\" or \"body\"",
        value.escape_debug()
    )]
    ClientAuth {
        /// The value given.
        value: String,
    },
    /// `token_url` cannot be used.
    #[error(transparent)]
    TokenUrl(#[from] crate::TokenUrlError),
}

/// Where `airlock add` reads a field's value from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FlagInput {
    /// A value on the command line; asked for on a terminal when required and missing.
    Text,
    /// A number on the command line; never asked for.
    Number,
    /// Comma-separated values; never asked for.
    List,
    /// A secret part read from the environment variable the flag names; asked for
    /// (no echo) when required and missing, read only when given otherwise.
    SecretEnv,
    /// The main secret: the flag's variable if given, else `--key-from-env`,
    /// `--key-stdin`, `--key`, or a no-echo prompt.
    MainSecret,
    /// A secret read from the file the flag names, else from `--key-from-env` or
    /// `--key-stdin` (read as `key_what`); "needs --flag FILE (`missing`)" otherwise.
    SecretFile {
        /// What the value is when it comes through `--key-*`.
        key_what: &'static str,
        /// What the file is, in the error when none is given.
        missing: &'static str,
    },
}

const QUOTED: &str = "\"…\"";

const fn secret(name: &'static str, required: bool, about: &'static str) -> AuthField {
    AuthField {
        name,
        required,
        secret: true,
        about,
        example: QUOTED,
        flag: None,
        shape: Shape::Str,
        check: parse::check_secret_name,
    }
}

const fn param(name: &'static str, required: bool, about: &'static str, check: Check) -> AuthField {
    AuthField {
        name,
        required,
        secret: false,
        about,
        example: QUOTED,
        flag: None,
        shape: Shape::Str,
        check,
    }
}

impl AuthField {
    const fn example(mut self, example: &'static str, shape: Shape) -> Self {
        self.example = example;
        self.shape = shape;
        self
    }

    const fn flag(
        mut self,
        long: Option<&'static str>,
        value_name: &'static str,
        input: FlagInput,
        help: &'static str,
        what: &'static str,
    ) -> Self {
        self.flag = Some(AddFlag {
            long,
            value_name,
            help,
            what,
            input,
            check: None,
        });
        self
    }

    const fn flag_check(mut self, check: FlagCheck) -> Self {
        if let Some(f) = &mut self.flag {
            f.check = Some(check);
        }
        self
    }
}

const fn main_key(about: &'static str) -> AuthField {
    secret("secret", true, about).flag(None, "", FlagInput::MainSecret, "", "key")
}

fn token_url_ok(s: &str) -> Result<(), AuthError> {
    crate::check_token_url(s)?;
    Ok(())
}

/// Every auth type, in the order error messages list them.
pub const AUTH_TABLE: &[AuthType] = &[
    AuthType {
        kind: AuthKind::Bearer,
        name: "bearer",
        fields: &[main_key("the vault secret to send")],
        mints_tokens: false,
        together: &[],
    },
    AuthType {
        kind: AuthKind::Basic,
        name: "basic",
        fields: &[
            param(
                "username",
                true,
                "the user name sent with the password",
                parse::check_username,
            )
            .flag(
                Some("username"),
                "USERNAME",
                FlagInput::Text,
                "the username",
                "the username",
            ),
            secret("secret", true, "the vault secret holding the password").flag(
                Some("password-from-env"),
                "VAR",
                FlagInput::MainSecret,
                "read the password from this variable (or use --key-from-env/--key-stdin)",
                "password",
            ),
        ],
        mints_tokens: false,
        together: &[],
    },
    AuthType {
        kind: AuthKind::Header,
        name: "header",
        fields: &[
            param(
                "header_name",
                true,
                "the header to put the key in, e.g. \"X-Api-Key\"",
                parse::check_header_name_field,
            )
            .flag(
                Some("header-name"),
                "NAME",
                FlagInput::Text,
                "the header that carries the key, e.g. X-Api-Key",
                "the header that carries the key, e.g. X-Api-Key",
            ),
            param("prefix", false, "text before the key", parse::check_prefix).flag(
                Some("prefix"),
                "PREFIX",
                FlagInput::Text,
                "text before the key in the header value, e.g. \"Token \"",
                "text before the key",
            ),
            main_key("the vault secret holding the key"),
        ],
        mints_tokens: false,
        together: &[],
    },
    AuthType {
        kind: AuthKind::Query,
        name: "query",
        fields: &[
            param(
                "param",
                true,
                "the query parameter to put the key in, e.g. \"api_key\"",
                parse::check_param,
            )
            .flag(
                Some("param"),
                "NAME",
                FlagInput::Text,
                "the query parameter that carries the key, e.g. api_key",
                "the query parameter that carries the key, e.g. api_key",
            ),
            main_key("the vault secret holding the key"),
        ],
        mints_tokens: false,
        together: &[],
    },
    AuthType {
        kind: AuthKind::AwsSigV4,
        name: "aws-sigv4",
        fields: &[
            param(
                "region",
                true,
                "the AWS region, e.g. \"us-east-1\"",
                parse::check_aws_word_field,
            )
            .flag(
                Some("region"),
                "REGION",
                FlagInput::Text,
                "the region, e.g. us-east-1",
                "the AWS region, e.g. us-east-1",
            ),
            param(
                "aws_service",
                true,
                "the AWS service's signing name, e.g. \"s3\"",
                parse::check_aws_word_field,
            )
            .flag(
                Some("aws-service"),
                "SERVICE",
                FlagInput::Text,
                "the AWS service name, e.g. s3, ses, execute-api",
                "the AWS service name, e.g. s3",
            ),
            secret(
                "access_key_id",
                true,
                "the vault secret holding the access key id",
            )
            .flag(
                Some("access-key-id-from-env"),
                "VAR",
                FlagInput::SecretEnv,
                "read the access key id from this variable",
                "AWS access key id",
            ),
            secret(
                "secret_access_key",
                true,
                "the vault secret holding the secret access key",
            )
            .flag(
                Some("secret-access-key-from-env"),
                "VAR",
                FlagInput::SecretEnv,
                "read the secret access key from this variable",
                "AWS secret access key",
            ),
            secret(
                "session_token",
                false,
                "the vault secret holding a session token",
            )
            .flag(
                Some("session-token-from-env"),
                "VAR",
                FlagInput::SecretEnv,
                "read a session token from this variable (temporary credentials)",
                "AWS session token",
            ),
        ],
        mints_tokens: false,
        together: &[],
    },
    AuthType {
        kind: AuthKind::OAuth1,
        name: "oauth1",
        fields: &[
            secret(
                "consumer_key",
                true,
                "the vault secret holding the consumer key",
            )
            .flag(
                Some("consumer-key-from-env"),
                "VAR",
                FlagInput::SecretEnv,
                "read the consumer key from this variable",
                "OAuth consumer key",
            ),
            secret(
                "consumer_secret",
                true,
                "the vault secret holding the consumer secret",
            )
            .flag(
                Some("consumer-secret-from-env"),
                "VAR",
                FlagInput::SecretEnv,
                "read the consumer secret from this variable",
                "OAuth consumer secret",
            ),
            secret("token", false, "the vault secret holding the access token").flag(
                Some("token-from-env"),
                "VAR",
                FlagInput::SecretEnv,
                "read the access token from this variable",
                "OAuth access token",
            ),
            secret(
                "token_secret",
                false,
                "the vault secret holding the token secret",
            )
            .flag(
                Some("token-secret-from-env"),
                "VAR",
                FlagInput::SecretEnv,
                "read the access token secret from this variable",
                "OAuth token secret",
            ),
        ],
        mints_tokens: false,
        together: &[("token", "token_secret")],
    },
    AuthType {
        kind: AuthKind::GitHubApp,
        name: "github-app",
        fields: &[
            param("app_id", true, "the GitHub App's id", parse::check_app_id)
                .example("123456", Shape::Value)
                .flag(
                    Some("app-id"),
                    "APP_ID",
                    FlagInput::Text,
                    "the App id",
                    "the GitHub App id",
                ),
            param(
                "installation_id",
                true,
                "the installation of the app to act as",
                parse::check_installation_id,
            )
            .example("123456", Shape::Value)
            .flag(
                Some("installation-id"),
                "INSTALLATION_ID",
                FlagInput::Number,
                "the installation id",
                "the App installation's numeric id",
            ),
            secret(
                "secret",
                true,
                "the vault secret holding the app's PEM private key",
            )
            .flag(
                Some("pem-file"),
                "FILE",
                FlagInput::SecretFile {
                    key_what: "private key (PEM)",
                    missing: "the App's private key",
                },
                "the App's private key (PEM); read once and stored in the vault",
                "GitHub App private key (PEM)",
            ),
        ],
        mints_tokens: true,
        together: &[],
    },
    AuthType {
        kind: AuthKind::GcpServiceAccount,
        name: "gcp-service-account",
        fields: &[
            secret(
                "secret",
                true,
                "the vault secret holding the service account's JSON key",
            )
            .flag(
                Some("json-file"),
                "FILE",
                FlagInput::SecretFile {
                    key_what: "service-account key JSON",
                    missing: "the service-account key",
                },
                "the service-account key JSON; read once and stored in the vault",
                "service-account key JSON",
            ),
            param(
                "scopes",
                true,
                "the OAuth scopes to request",
                parse::check_scopes,
            )
            .example("[\"https://www.googleapis.com/auth/…\"]", Shape::List)
            .flag(
                Some("scopes"),
                "SCOPES",
                FlagInput::List,
                "OAuth scopes, comma-separated",
                "e.g. https://www.googleapis.com/auth/cloud-platform",
            ),
        ],
        mints_tokens: true,
        together: &[],
    },
    AuthType {
        kind: AuthKind::OAuth2,
        name: "oauth2",
        fields: &[
            param(
                "token_url",
                true,
                "the provider's token endpoint",
                parse::check_token_url_field,
            )
            .flag(
                Some("token-url"),
                "URL",
                FlagInput::Text,
                "the token endpoint",
                "the token endpoint URL",
            )
            .flag_check(token_url_ok),
            param(
                "client_id",
                true,
                "the OAuth client id",
                parse::check_client_id,
            )
            .flag(
                Some("client-id"),
                "CLIENT_ID",
                FlagInput::Text,
                "the client id",
                "the OAuth client id",
            ),
            secret("secret", true, "the vault secret holding the client secret").flag(
                Some("client-secret-from-env"),
                "VAR",
                FlagInput::MainSecret,
                "read the client secret from this variable (or use --key-from-env/--key-stdin)",
                "client secret",
            ),
            param("scope", false, "the scope to request", parse::check_scope).flag(
                Some("scope"),
                "SCOPE",
                FlagInput::Text,
                "the scope to request",
                "the scope to request",
            ),
            param(
                "client_auth",
                false,
                "how the client authenticates: \"basic\" or \"body\"",
                parse::check_client_auth,
            ),
        ],
        mints_tokens: true,
        together: &[],
    },
];

/// The auth types' names, as written in `auth.type`, in [`AUTH_TABLE`] order.
pub const AUTH_TYPES: &[&str] = &{
    let mut names = [""; AUTH_TABLE.len()];
    let mut i = 0;
    while i < AUTH_TABLE.len() {
        names[i] = AUTH_TABLE[i].name;
        i += 1;
    }
    names
};

/// The row of the type named `name` (as written in `auth.type`).
pub fn auth_type(name: &str) -> Option<&'static AuthType> {
    AUTH_TABLE.iter().find(|t| t.name == name)
}

impl AuthKind {
    /// This type's row of [`AUTH_TABLE`].
    pub fn auth_type(self) -> &'static AuthType {
        // Every kind has a row: checked by the tests, and by `kinds_have_rows` below.
        AUTH_TABLE
            .iter()
            .find(|t| t.kind == self)
            .unwrap_or(&AUTH_TABLE[0])
    }
}

impl AuthType {
    /// The field named `name`, if this type uses it.
    pub fn field(&self, name: &str) -> Option<&'static AuthField> {
        self.fields.iter().find(|f| f.name == name)
    }
}

/// Every field any auth type uses, in the order of first use along [`AUTH_TABLE`]
/// (the order `unknown field` errors list them, after `type`).
pub(crate) fn all_field_names() -> &'static [&'static str] {
    static ALL: OnceLock<Vec<&'static str>> = OnceLock::new();
    ALL.get_or_init(|| {
        let mut out = vec!["type"];
        for f in AUTH_TABLE.iter().flat_map(|t| t.fields) {
            if !out.contains(&f.name) {
                out.push(f.name);
            }
        }
        out
    })
}

/// A field's value when building an [`Auth`] with [`Auth::from_values`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuthValue {
    /// A string: a parameter, or a vault secret's name.
    Text(String),
    /// A number (`installation_id`, a numeric `app_id`).
    Number(u64),
    /// A list of strings (`scopes`).
    List(Vec<String>),
}

/// A field's value as [`Auth::fields`] shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthValueRef<'a> {
    /// A string: a parameter, or a vault secret's name.
    Text(&'a str),
    /// A number.
    Number(u64),
    /// A list of strings.
    List(&'a [String]),
}

/// How a credential is attached to a request.
///
/// Every variant names its vault secrets (never their values) and carries the
/// non-secret parameters, validated when the file is parsed. `docs/config.md`
/// ("auth types") shows the TOML of each; [`AUTH_TABLE`] describes the fields.
#[derive(Debug, Clone, PartialEq, Eq)]
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

/// The values handed to [`Auth::from_values`], taken out one field at a time.
struct Values(BTreeMap<String, AuthValue>);

impl Values {
    fn opt_text(&mut self, field: &str) -> Result<Option<String>, AuthError> {
        match self.0.remove(field) {
            None => Ok(None),
            Some(AuthValue::Text(s)) => Ok(Some(s)),
            Some(AuthValue::Number(n)) => Ok(Some(n.to_string())),
            Some(AuthValue::List(_)) => Err(AuthError::NotText {
                field: field.to_string(),
            }),
        }
    }

    fn text(&mut self, field: &str) -> Result<String, AuthError> {
        self.opt_text(field)?.ok_or_else(|| AuthError::Missing {
            field: field.to_string(),
        })
    }

    fn number(&mut self, field: &str) -> Result<u64, AuthError> {
        let field_name = || field.to_string();
        match self.0.remove(field) {
            Some(AuthValue::Number(n)) => Ok(n),
            Some(AuthValue::Text(s)) => s.parse().map_err(|_| AuthError::NotPositiveNumber {
                field: field_name(),
            }),
            Some(AuthValue::List(_)) => Err(AuthError::NotNumber {
                field: field_name(),
            }),
            None => Err(AuthError::Missing {
                field: field_name(),
            }),
        }
    }

    fn list(&mut self, field: &str) -> Result<Vec<String>, AuthError> {
        match self.0.remove(field) {
            Some(AuthValue::List(v)) => Ok(v),
            Some(_) => Err(AuthError::NotList {
                field: field.to_string(),
            }),
            None => Err(AuthError::Missing {
                field: field.to_string(),
            }),
        }
    }

    fn finish(self) -> Result<(), AuthError> {
        match self.0.into_keys().next() {
            Some(field) => Err(AuthError::UnknownField { field }),
            None => Ok(()),
        }
    }
}

impl Auth {
    /// Which auth type this is.
    pub fn kind(&self) -> AuthKind {
        match self {
            Auth::Bearer { .. } => AuthKind::Bearer,
            Auth::Basic { .. } => AuthKind::Basic,
            Auth::Header { .. } => AuthKind::Header,
            Auth::Query { .. } => AuthKind::Query,
            Auth::AwsSigV4 { .. } => AuthKind::AwsSigV4,
            Auth::OAuth1 { .. } => AuthKind::OAuth1,
            Auth::GitHubApp { .. } => AuthKind::GitHubApp,
            Auth::GcpServiceAccount { .. } => AuthKind::GcpServiceAccount,
            Auth::OAuth2 { .. } => AuthKind::OAuth2,
        }
    }

    /// This auth's row of [`AUTH_TABLE`].
    pub fn auth_type(&self) -> &'static AuthType {
        self.kind().auth_type()
    }

    /// The auth type's name as written in the config.
    pub fn type_name(&self) -> &'static str {
        self.auth_type().name
    }

    /// Whether this auth obtains short-lived tokens from a token endpoint (and so
    /// needs a cache that outlives one request).
    pub fn mints_tokens(&self) -> bool {
        self.auth_type().mints_tokens
    }

    /// The fields that are set, in table order, without defaults (an empty `prefix`,
    /// `client_auth = "basic"`). A numeric `app_id` is a number.
    pub fn fields(&self) -> Vec<(&'static AuthField, AuthValueRef<'_>)> {
        use AuthValueRef::{List, Number, Text};
        fn opt(v: &Option<String>) -> Option<AuthValueRef<'_>> {
            v.as_deref().map(AuthValueRef::Text)
        }
        let vals: Vec<(&str, Option<AuthValueRef<'_>>)> = match self {
            Auth::Bearer { secret } => vec![("secret", Some(Text(secret)))],
            Auth::Basic { username, secret } => {
                vec![
                    ("username", Some(Text(username))),
                    ("secret", Some(Text(secret))),
                ]
            }
            Auth::Header {
                header_name,
                prefix,
                secret,
            } => vec![
                ("header_name", Some(Text(header_name))),
                ("prefix", (!prefix.is_empty()).then_some(Text(prefix))),
                ("secret", Some(Text(secret))),
            ],
            Auth::Query { param, secret } => {
                vec![("param", Some(Text(param))), ("secret", Some(Text(secret)))]
            }
            Auth::AwsSigV4 {
                region,
                aws_service,
                access_key_id,
                secret_access_key,
                session_token,
            } => vec![
                ("region", Some(Text(region))),
                ("aws_service", Some(Text(aws_service))),
                ("access_key_id", Some(Text(access_key_id))),
                ("secret_access_key", Some(Text(secret_access_key))),
                ("session_token", opt(session_token)),
            ],
            Auth::OAuth1 {
                consumer_key,
                consumer_secret,
                token,
                token_secret,
            } => vec![
                ("consumer_key", Some(Text(consumer_key))),
                ("consumer_secret", Some(Text(consumer_secret))),
                ("token", opt(token)),
                ("token_secret", opt(token_secret)),
            ],
            Auth::GitHubApp {
                app_id,
                installation_id,
                secret,
            } => vec![
                ("app_id", Some(app_id.parse().map_or(Text(app_id), Number))),
                ("installation_id", Some(Number(*installation_id))),
                ("secret", Some(Text(secret))),
            ],
            Auth::GcpServiceAccount { secret, scopes } => {
                vec![
                    ("secret", Some(Text(secret))),
                    ("scopes", Some(List(scopes))),
                ]
            }
            Auth::OAuth2 {
                token_url,
                client_id,
                secret,
                scope,
                client_auth,
            } => vec![
                ("token_url", Some(Text(token_url.as_str()))),
                ("client_id", Some(Text(client_id))),
                ("secret", Some(Text(secret))),
                ("scope", opt(scope)),
                (
                    "client_auth",
                    (*client_auth != ClientAuth::default()).then_some(Text(client_auth.name())),
                ),
            ],
        };
        let ty = self.auth_type();
        vals.into_iter()
            .filter_map(|(name, v)| Some((ty.field(name)?, v?)))
            .collect()
    }

    /// Builds the auth of type `kind` from its fields' values (by field name). Values
    /// are not validated beyond their shape and `token_url`; the config parser (and
    /// so every CLI edit, which is re-parsed before it is written) checks the rest.
    pub fn from_values(
        kind: AuthKind,
        values: impl IntoIterator<Item = (String, AuthValue)>,
    ) -> Result<Auth, AuthError> {
        let mut v = Values(values.into_iter().collect());
        let auth = match kind {
            AuthKind::Bearer => Auth::Bearer {
                secret: v.text("secret")?,
            },
            AuthKind::Basic => Auth::Basic {
                username: v.text("username")?,
                secret: v.text("secret")?,
            },
            AuthKind::Header => Auth::Header {
                header_name: v.text("header_name")?,
                prefix: v.opt_text("prefix")?.unwrap_or_default(),
                secret: v.text("secret")?,
            },
            AuthKind::Query => Auth::Query {
                param: v.text("param")?,
                secret: v.text("secret")?,
            },
            AuthKind::AwsSigV4 => Auth::AwsSigV4 {
                region: v.text("region")?,
                aws_service: v.text("aws_service")?,
                access_key_id: v.text("access_key_id")?,
                secret_access_key: v.text("secret_access_key")?,
                session_token: v.opt_text("session_token")?,
            },
            AuthKind::OAuth1 => Auth::OAuth1 {
                consumer_key: v.text("consumer_key")?,
                consumer_secret: v.text("consumer_secret")?,
                token: v.opt_text("token")?,
                token_secret: v.opt_text("token_secret")?,
            },
            AuthKind::GitHubApp => Auth::GitHubApp {
                app_id: v.text("app_id")?,
                installation_id: v.number("installation_id")?,
                secret: v.text("secret")?,
            },
            AuthKind::GcpServiceAccount => Auth::GcpServiceAccount {
                secret: v.text("secret")?,
                scopes: v.list("scopes")?,
            },
            AuthKind::OAuth2 => Auth::OAuth2 {
                token_url: crate::check_token_url(&v.text("token_url")?)?,
                client_id: v.text("client_id")?,
                secret: v.text("secret")?,
                scope: v.opt_text("scope")?,
                client_auth: match v.opt_text("client_auth")?.as_deref() {
                    None | Some("basic") => ClientAuth::Basic,
                    Some("body") => ClientAuth::Body,
                    Some(other) => {
                        return Err(AuthError::ClientAuth {
                            value: other.to_string(),
                        });
                    }
                },
            },
        };
        v.finish()?;
        Ok(auth)
    }

    /// Every vault secret this auth uses, in the order of the config fields.
    pub fn secrets(&self) -> Vec<&str> {
        self.fields()
            .into_iter()
            .filter_map(|(f, v)| match v {
                AuthValueRef::Text(s) if f.secret => Some(s),
                _ => None,
            })
            .collect()
    }

    /// The `auth = { … }` inline table that [`crate::Config::parse`] reads back as
    /// this value, fields in their documented order: what the CLI writes.
    pub fn to_inline_table(&self) -> toml_edit::InlineTable {
        use toml_edit::Value;
        let mut t = toml_edit::InlineTable::new();
        t.insert("type", Value::from(self.type_name()));
        for (field, value) in self.fields() {
            let v = match value {
                AuthValueRef::Text(s) => Value::from(s),
                AuthValueRef::Number(n) => match i64::try_from(n) {
                    Ok(n) => Value::from(n),
                    Err(_) => Value::from(n.to_string()),
                },
                AuthValueRef::List(items) => {
                    let mut a = toml_edit::Array::new();
                    for i in items {
                        a.push(i.as_str());
                    }
                    Value::Array(a)
                }
            };
            t.insert(field.name, v);
        }
        t
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_have_rows_and_names_are_unique() {
        for (i, t) in AUTH_TABLE.iter().enumerate() {
            assert_eq!(t.kind.auth_type().name, t.name);
            assert!(
                AUTH_TABLE[..i]
                    .iter()
                    .all(|o| o.kind != t.kind && o.name != t.name)
            );
            for (a, b) in t.together {
                assert!(t.field(a).is_some_and(|f| !f.required));
                assert!(t.field(b).is_some_and(|f| !f.required));
            }
        }
        // A field name means one thing: same shape and secrecy in every type.
        let all: Vec<&AuthField> = AUTH_TABLE.iter().flat_map(|t| t.fields).collect();
        for a in &all {
            for b in all.iter().filter(|b| b.name == a.name) {
                assert_eq!((a.shape, a.secret), (b.shape, b.secret), "{}", a.name);
            }
        }
    }
}
