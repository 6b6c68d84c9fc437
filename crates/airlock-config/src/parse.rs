//! Text → [`Config`], validating everything once, with located errors.

use std::collections::BTreeMap;
use std::ops::Range;
use std::path::Path;
use std::time::Duration;

use airlock_policy::{Rule, RuleSet};
use serde::Deserialize;
use toml::Spanned;

use crate::units::{parse_duration, parse_rate, parse_size};
use crate::{
    AUTH_TYPES, Approval, Auth, Capability, Config, ConfigError, DefaultAccess, Mode, Network,
    Server, Service,
};

/// The TTL a capability gets when it names none.
pub(crate) const DEFAULT_TTL: Duration = Duration::from_secs(3600);

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    #[serde(default)]
    server: Option<RawServer>,
    #[serde(default)]
    services: BTreeMap<Spanned<String>, Spanned<RawService>>,
    #[serde(default)]
    capabilities: BTreeMap<Spanned<String>, Spanned<RawCapability>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawServer {
    default_access: Option<Spanned<String>>,
    approval_timeout: Option<Spanned<String>>,
    audit_fsync: Option<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawService {
    url: Spanned<String>,
    auth: Spanned<RawAuth>,
    timeout: Option<Spanned<String>>,
    max_request_bytes: Option<Spanned<toml::Value>>,
    max_response_bytes: Option<Spanned<toml::Value>>,
    forward_cookies: Option<bool>,
}

/// `auth = { type = "…", … }`: every field any auth type uses; each type checks that
/// it has what it needs and nothing another type uses (`auth_fields`).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAuth {
    #[serde(rename = "type")]
    kind: Spanned<String>,
    secret: Option<Spanned<String>>,
    username: Option<Spanned<String>>,
    header_name: Option<Spanned<String>>,
    prefix: Option<Spanned<String>>,
    param: Option<Spanned<String>>,
    region: Option<Spanned<String>>,
    aws_service: Option<Spanned<String>>,
    access_key_id: Option<Spanned<String>>,
    secret_access_key: Option<Spanned<String>>,
    session_token: Option<Spanned<String>>,
    consumer_key: Option<Spanned<String>>,
    consumer_secret: Option<Spanned<String>>,
    token: Option<Spanned<String>>,
    token_secret: Option<Spanned<String>>,
    app_id: Option<Spanned<toml::Value>>,
    installation_id: Option<Spanned<toml::Value>>,
    scopes: Option<Spanned<Vec<Spanned<String>>>>,
    token_url: Option<Spanned<String>>,
    client_id: Option<Spanned<String>>,
    scope: Option<Spanned<String>>,
    client_auth: Option<Spanned<String>>,
}

impl RawAuth {
    /// The optional fields that are present, with their spans.
    fn present(&self) -> Vec<(&'static str, Range<usize>)> {
        fn sp<T>(v: &Option<Spanned<T>>) -> Option<Range<usize>> {
            v.as_ref().map(Spanned::span)
        }
        let all = [
            ("secret", sp(&self.secret)),
            ("username", sp(&self.username)),
            ("header_name", sp(&self.header_name)),
            ("prefix", sp(&self.prefix)),
            ("param", sp(&self.param)),
            ("region", sp(&self.region)),
            ("aws_service", sp(&self.aws_service)),
            ("access_key_id", sp(&self.access_key_id)),
            ("secret_access_key", sp(&self.secret_access_key)),
            ("session_token", sp(&self.session_token)),
            ("consumer_key", sp(&self.consumer_key)),
            ("consumer_secret", sp(&self.consumer_secret)),
            ("token", sp(&self.token)),
            ("token_secret", sp(&self.token_secret)),
            ("app_id", sp(&self.app_id)),
            ("installation_id", sp(&self.installation_id)),
            ("scopes", sp(&self.scopes)),
            ("token_url", sp(&self.token_url)),
            ("client_id", sp(&self.client_id)),
            ("scope", sp(&self.scope)),
            ("client_auth", sp(&self.client_auth)),
        ];
        all.into_iter()
            .filter_map(|(k, s)| s.map(|s| (k, s)))
            .collect()
    }
}

/// The fields each auth type accepts besides `type`.
fn auth_fields(kind: &str) -> &'static [&'static str] {
    match kind {
        "bearer" => &["secret"],
        "basic" => &["username", "secret"],
        "header" => &["header_name", "prefix", "secret"],
        "query" => &["param", "secret"],
        "aws-sigv4" => &[
            "region",
            "aws_service",
            "access_key_id",
            "secret_access_key",
            "session_token",
        ],
        "oauth1" => &["consumer_key", "consumer_secret", "token", "token_secret"],
        "github-app" => &["app_id", "installation_id", "secret"],
        "gcp-service-account" => &["secret", "scopes"],
        "oauth2" => &["token_url", "client_id", "secret", "scope", "client_auth"],
        _ => &[],
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCapability {
    service: Spanned<String>,
    mode: Option<Spanned<String>>,
    ttl: Option<Spanned<String>>,
    allow: Option<Vec<Spanned<String>>>,
    deny: Option<Vec<Spanned<String>>>,
    methods: Option<Vec<Spanned<String>>>,
    agents: Option<Vec<Spanned<String>>>,
    requires_reason: Option<bool>,
    approval: Option<Spanned<toml::Value>>,
    rate: Option<Spanned<String>>,
    commands: Option<Vec<Spanned<String>>>,
    env: Option<BTreeMap<String, Spanned<String>>>,
    timeout: Option<Spanned<String>>,
    workdirs: Option<Vec<Spanned<String>>>,
    deny_args: Option<Vec<Spanned<String>>>,
    confine: Option<Spanned<bool>>,
    network: Option<Spanned<String>>,
}

/// Locates byte offsets in the source for error messages.
struct Source<'a> {
    path: &'a Path,
    text: &'a str,
}

impl Source<'_> {
    fn error(&self, span: Range<usize>, message: impl Into<String>) -> ConfigError {
        let (line, column) = line_col(self.text, span.start);
        ConfigError::Invalid {
            path: self.path.to_path_buf(),
            line,
            column,
            message: message.into(),
        }
    }
}

/// 1-based line and column (in characters) of a byte offset.
pub(crate) fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let offset = offset.min(text.len());
    let before = text.get(..offset).unwrap_or(text);
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let column = before.get(line_start..).map_or(0, |s| s.chars().count()) + 1;
    (line, column)
}

fn check_name(src: &Source<'_>, what: &str, name: &Spanned<String>) -> Result<(), ConfigError> {
    if airlock_home::is_valid_name(name.get_ref()) {
        Ok(())
    } else {
        Err(src.error(
            name.span(),
            format!(
                "invalid {what} name \"{}\": {}",
                name.get_ref().escape_debug(),
                airlock_home::NAME_RULE
            ),
        ))
    }
}

/// Parses and validates `text`, read from `path` (used in error messages).
pub(crate) fn parse(path: &Path, text: &str) -> Result<Config, ConfigError> {
    let src = Source { path, text };
    let raw: RawConfig = toml::from_str(text).map_err(|e| {
        let span = e.span().unwrap_or(0..0);
        let msg = e.message().trim().replace('\n', "; ");
        src.error(span, msg)
    })?;

    let server = match raw.server {
        None => Server::default(),
        Some(s) => parse_server(&src, s)?,
    };

    let mut services = BTreeMap::new();
    for (name, svc) in raw.services {
        check_name(&src, "service", &name)?;
        let service = parse_service(&src, name.get_ref(), svc.into_inner())?;
        services.insert(name.into_inner(), service);
    }

    let mut capabilities = BTreeMap::new();
    for (name, cap) in raw.capabilities {
        check_name(&src, "capability", &name)?;
        let span = cap.span();
        let cap = parse_capability(&src, name.get_ref(), cap.into_inner(), span, &services)?;
        capabilities.insert(name.into_inner(), cap);
    }

    Ok(Config {
        server,
        services,
        capabilities,
    })
}

fn parse_server(src: &Source<'_>, s: RawServer) -> Result<Server, ConfigError> {
    let mut server = Server::default();
    if let Some(access) = s.default_access {
        server.default_access = match access.get_ref().as_str() {
            "open" => DefaultAccess::Open,
            "restricted" => DefaultAccess::Restricted,
            other => {
                return Err(src.error(
                    access.span(),
                    format!(
                        "invalid default_access \"{}\"; expected \"open\" or \"restricted\"",
                        other.escape_debug()
                    ),
                ));
            }
        };
    }
    if let Some(f) = s.audit_fsync {
        server.audit_fsync = match f.get_ref().as_str() {
            "always" => crate::AuditFsync::Always,
            "batch" => crate::AuditFsync::Batch,
            other => {
                return Err(src.error(
                    f.span(),
                    format!(
                        "invalid audit_fsync \"{}\"; expected \"always\" or \"batch\"",
                        other.escape_debug()
                    ),
                ));
            }
        };
    }
    if let Some(t) = s.approval_timeout {
        server.approval_timeout = parse_duration(t.get_ref())
            .map_err(|m| src.error(t.span(), format!("approval_timeout: {m}")))?;
    }
    Ok(server)
}

fn parse_service(src: &Source<'_>, name: &str, s: RawService) -> Result<Service, ConfigError> {
    let url = check_service_url(s.url.get_ref())
        .map_err(|m| src.error(s.url.span(), format!("service \"{name}\": {m}")))?;
    let auth = parse_auth(src, name, s.auth)?;
    let timeout = match &s.timeout {
        None => None,
        Some(t) => Some(
            parse_duration(t.get_ref())
                .map_err(|m| src.error(t.span(), format!("service \"{name}\": timeout: {m}")))?,
        ),
    };
    let size = |v: &Option<Spanned<toml::Value>>, key: &str| -> Result<Option<u64>, ConfigError> {
        let Some(v) = v else { return Ok(None) };
        let text = match v.get_ref() {
            toml::Value::Integer(i) => i.to_string(),
            toml::Value::String(s) => s.clone(),
            _ => String::new(),
        };
        parse_size(&text)
            .map(Some)
            .map_err(|m| src.error(v.span(), format!("service \"{name}\": {key}: {m}")))
    };
    Ok(Service {
        name: name.to_string(),
        url,
        auth,
        timeout,
        max_request_bytes: size(&s.max_request_bytes, "max_request_bytes")?,
        max_response_bytes: size(&s.max_response_bytes, "max_response_bytes")?,
        forward_cookies: s.forward_cookies.unwrap_or(false),
    })
}

/// `services.NAME.auth`: the type, its required fields, and nothing it does not use.
fn parse_auth(src: &Source<'_>, name: &str, auth: Spanned<RawAuth>) -> Result<Auth, ConfigError> {
    let span = auth.span();
    let raw = auth.into_inner();
    let kind = raw.kind.get_ref().as_str();
    if !AUTH_TYPES.contains(&kind) {
        return Err(src.error(
            raw.kind.span(),
            format!(
                "service \"{name}\": unknown auth type \"{}\"; expected one of: {}",
                kind.escape_debug(),
                AUTH_TYPES.join(", ")
            ),
        ));
    }
    let allowed = auth_fields(kind);
    for (field, field_span) in raw.present() {
        if !allowed.contains(&field) {
            let owners: Vec<&str> = AUTH_TYPES
                .iter()
                .copied()
                .filter(|t| auth_fields(t).contains(&field))
                .collect();
            return Err(src.error(
                field_span,
                format!(
                    "service \"{name}\": auth type \"{kind}\" does not use `{field}` (it belongs to {}); remove it",
                    owners
                        .iter()
                        .map(|t| format!("\"{t}\""))
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            ));
        }
    }

    let ctx = |m: String| format!("service \"{name}\": auth type \"{kind}\": {m}");
    // A required field, or an error at the auth table naming it and what it is for.
    let need = |v: Option<Spanned<String>>, field: &str, what: &str| {
        v.ok_or_else(|| {
            src.error(
                span.clone(),
                ctx(format!("needs `{field} = \"…\"` ({what})")),
            )
        })
    };
    // A vault secret's name, checked, with the field named in the error.
    let secret_name = |v: Spanned<String>, field: &str| {
        if airlock_home::is_valid_name(v.get_ref()) {
            Ok(v.into_inner())
        } else {
            Err(src.error(
                v.span(),
                ctx(format!(
                    "`{field}`: invalid secret name \"{}\": {}",
                    v.get_ref().escape_debug(),
                    airlock_home::NAME_RULE
                )),
            ))
        }
    };
    let secret = |v: Option<Spanned<String>>, field: &str, what: &str| {
        secret_name(need(v, field, what)?, field)
    };
    let opt_secret =
        |v: Option<Spanned<String>>, field: &str| v.map(|v| secret_name(v, field)).transpose();
    let invalid = |span: Range<usize>, m: String| src.error(span, ctx(m));

    Ok(match kind {
        "bearer" => Auth::Bearer {
            secret: secret(raw.secret, "secret", "the vault secret to send")?,
        },
        "basic" => {
            let username = need(
                raw.username,
                "username",
                "the user name sent with the password",
            )?;
            if let Some(bad) = username
                .get_ref()
                .chars()
                .find(|c| *c == ':' || c.is_control())
            {
                return Err(invalid(
                    username.span(),
                    format!(
                        "`username` must not contain {}",
                        if bad == ':' {
                            "`:`"
                        } else {
                            "control characters"
                        }
                    ),
                ));
            }
            Auth::Basic {
                username: username.into_inner(),
                secret: secret(
                    raw.secret,
                    "secret",
                    "the vault secret holding the password",
                )?,
            }
        }
        "header" => {
            let header_name = need(
                raw.header_name,
                "header_name",
                "the header to put the key in, e.g. \"X-Api-Key\"",
            )?;
            check_header_name(header_name.get_ref())
                .map_err(|m| invalid(header_name.span(), format!("`header_name`: {m}")))?;
            let prefix = match raw.prefix {
                None => String::new(),
                Some(p) => {
                    let ok = p.get_ref().bytes().all(|b| (0x20..=0x7e).contains(&b))
                        && !p.get_ref().starts_with(' ');
                    if !ok {
                        return Err(invalid(
                            p.span(),
                            "`prefix` must be printable ASCII and not start with a space, e.g. \"Token \"".into(),
                        ));
                    }
                    p.into_inner()
                }
            };
            Auth::Header {
                header_name: header_name.into_inner(),
                prefix,
                secret: secret(raw.secret, "secret", "the vault secret holding the key")?,
            }
        }
        "query" => {
            let param = need(
                raw.param,
                "param",
                "the query parameter to put the key in, e.g. \"api_key\"",
            )?;
            let p = param.get_ref();
            if p.is_empty()
                || p.len() > 128
                || p.chars()
                    .any(|c| c.is_control() || matches!(c, '&' | '=' | '#' | ' '))
            {
                return Err(invalid(
                    param.span(),
                    "`param` must be 1 to 128 characters without spaces, control characters, `&`, `=` or `#`".into(),
                ));
            }
            Auth::Query {
                param: param.into_inner(),
                secret: secret(raw.secret, "secret", "the vault secret holding the key")?,
            }
        }
        "aws-sigv4" => {
            let region = need(raw.region, "region", "the AWS region, e.g. \"us-east-1\"")?;
            check_aws_word(region.get_ref())
                .map_err(|m| invalid(region.span(), format!("`region`: {m}")))?;
            let service = need(
                raw.aws_service,
                "aws_service",
                "the AWS service's signing name, e.g. \"s3\"",
            )?;
            check_aws_word(service.get_ref())
                .map_err(|m| invalid(service.span(), format!("`aws_service`: {m}")))?;
            Auth::AwsSigV4 {
                region: region.into_inner(),
                aws_service: service.into_inner(),
                access_key_id: secret(
                    raw.access_key_id,
                    "access_key_id",
                    "the vault secret holding the access key id",
                )?,
                secret_access_key: secret(
                    raw.secret_access_key,
                    "secret_access_key",
                    "the vault secret holding the secret access key",
                )?,
                session_token: opt_secret(raw.session_token, "session_token")?,
            }
        }
        "oauth1" => {
            let consumer_key = secret(
                raw.consumer_key,
                "consumer_key",
                "the vault secret holding the consumer key",
            )?;
            let consumer_secret = secret(
                raw.consumer_secret,
                "consumer_secret",
                "the vault secret holding the consumer secret",
            )?;
            match (&raw.token, &raw.token_secret) {
                (Some(_), None) => {
                    return Err(src.error(span, ctx("`token` needs `token_secret = \"…\"` too (the vault secret holding the token secret)".into())));
                }
                (None, Some(_)) => {
                    return Err(src.error(span, ctx("`token_secret` needs `token = \"…\"` too (the vault secret holding the access token)".into())));
                }
                _ => {}
            }
            Auth::OAuth1 {
                consumer_key,
                consumer_secret,
                token: opt_secret(raw.token, "token")?,
                token_secret: opt_secret(raw.token_secret, "token_secret")?,
            }
        }
        "github-app" => {
            let app_id = raw.app_id.ok_or_else(|| {
                src.error(
                    span.clone(),
                    ctx("needs `app_id = 123456` (the GitHub App's id)".into()),
                )
            })?;
            let app_id_text = match app_id.get_ref() {
                toml::Value::Integer(i) if *i > 0 => i.to_string(),
                toml::Value::String(s)
                    if !s.is_empty()
                        && s.len() <= 64
                        && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'.') =>
                {
                    s.clone()
                }
                _ => {
                    return Err(invalid(
                        app_id.span(),
                        "`app_id` must be the app's id (a positive number) or its client id (letters, digits and `.`)".into(),
                    ));
                }
            };
            let inst = raw.installation_id.ok_or_else(|| {
                src.error(
                    span.clone(),
                    ctx(
                        "needs `installation_id = 123456` (the installation of the app to act as)"
                            .into(),
                    ),
                )
            })?;
            let installation_id = match inst.get_ref() {
                toml::Value::Integer(i) if *i > 0 => u64::try_from(*i).ok(),
                toml::Value::String(s) => s.parse::<u64>().ok().filter(|n| *n > 0),
                _ => None,
            }
            .ok_or_else(|| {
                invalid(
                    inst.span(),
                    "`installation_id` must be a positive number".into(),
                )
            })?;
            Auth::GitHubApp {
                app_id: app_id_text,
                installation_id,
                secret: secret(
                    raw.secret,
                    "secret",
                    "the vault secret holding the app's PEM private key",
                )?,
            }
        }
        "gcp-service-account" => {
            let secret = secret(
                raw.secret,
                "secret",
                "the vault secret holding the service account's JSON key",
            )?;
            let scopes = raw.scopes.ok_or_else(|| {
                src.error(
                    span.clone(),
                    ctx("needs `scopes = [\"https://www.googleapis.com/auth/…\"]` (the OAuth scopes to request)".into()),
                )
            })?;
            let scopes_span = scopes.span();
            let scopes = scopes.into_inner();
            if scopes.is_empty() {
                return Err(invalid(
                    scopes_span,
                    "`scopes` must name at least one scope".into(),
                ));
            }
            let mut out = Vec::new();
            for sc in scopes {
                let v = sc.get_ref();
                if v.is_empty() || v.chars().any(|c| c.is_whitespace() || c.is_control()) {
                    return Err(invalid(
                        sc.span(),
                        "each scope must be non-empty, without spaces".into(),
                    ));
                }
                out.push(sc.into_inner());
            }
            Auth::GcpServiceAccount {
                secret,
                scopes: out,
            }
        }
        "oauth2" => {
            let token_url = need(raw.token_url, "token_url", "the provider's token endpoint")?;
            let url = check_token_url(token_url.get_ref())
                .map_err(|m| invalid(token_url.span(), format!("`token_url`: {m}")))?;
            let client_id = need(raw.client_id, "client_id", "the OAuth client id")?;
            if client_id.get_ref().is_empty() || client_id.get_ref().chars().any(char::is_control) {
                return Err(invalid(
                    client_id.span(),
                    "`client_id` must be non-empty, without control characters".into(),
                ));
            }
            let scope = match raw.scope {
                None => None,
                Some(sc) => {
                    if sc.get_ref().trim().is_empty() || sc.get_ref().chars().any(char::is_control)
                    {
                        return Err(invalid(
                            sc.span(),
                            "`scope` must be space-separated scope names; remove it if the provider needs none".into(),
                        ));
                    }
                    Some(sc.into_inner())
                }
            };
            let client_auth = match raw.client_auth {
                None => crate::ClientAuth::default(),
                Some(ca) => match ca.get_ref().as_str() {
                    "basic" => crate::ClientAuth::Basic,
                    "body" => crate::ClientAuth::Body,
                    other => {
                        return Err(invalid(
                            ca.span(),
                            format!(
                                "invalid `client_auth` \"{}\"; expected \"basic\" or \"body\"",
                                other.escape_debug()
                            ),
                        ));
                    }
                },
            };
            Auth::OAuth2 {
                token_url: url,
                client_id: client_id.into_inner(),
                secret: secret(
                    raw.secret,
                    "secret",
                    "the vault secret holding the client secret",
                )?,
                scope,
                client_auth,
            }
        }
        // AUTH_TYPES was checked above; a type listed there but not handled here is a
        // bug caught by the tests, reported rather than panicking.
        other => {
            return Err(src.error(
                raw.kind.span(),
                format!(
                    "service \"{name}\": auth type \"{}\" is not handled",
                    other.escape_debug()
                ),
            ));
        }
    })
}

/// A header name the `header` auth type may set: an HTTP token, and not one that
/// frames the message, routes it, or belongs to the connection.
fn check_header_name(name: &str) -> Result<(), String> {
    let tchar = |b: u8| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b);
    if name.is_empty() || !name.bytes().all(tchar) {
        return Err(format!(
            "\"{}\" is not a valid header name (letters, digits and -, e.g. \"X-Api-Key\")",
            name.escape_debug()
        ));
    }
    let lower = name.to_ascii_lowercase();
    const RESERVED: &[&str] = &[
        "host",
        "content-length",
        "content-type",
        "content-encoding",
        "transfer-encoding",
        "connection",
        "keep-alive",
        "te",
        "trailer",
        "upgrade",
        "expect",
        "http2-settings",
        "x-http-method-override",
        "x-http-method",
        "x-method-override",
        "forwarded",
        "via",
    ];
    if RESERVED.contains(&lower.as_str()) || lower.starts_with("proxy-") {
        return Err(format!(
            "\"{name}\" controls how the request is framed or routed and cannot carry a credential"
        ));
    }
    Ok(())
}

/// An AWS region or signing name: lowercase letters, digits, `-` (and `.`/`_` seen in
/// some signing names).
fn check_aws_word(v: &str) -> Result<(), String> {
    if v.is_empty()
        || v.len() > 64
        || !v.bytes().all(|b| {
            b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'-' | b'.' | b'_')
        })
    {
        return Err(format!(
            "\"{}\" is not valid; use lowercase letters, digits and -, e.g. \"us-east-1\" or \"s3\"",
            v.escape_debug()
        ));
    }
    Ok(())
}

/// A token endpoint: https, or http to a loopback address (a local test or sidecar);
/// no credentials or fragment in the URL.
pub fn check_token_url(s: &str) -> Result<url::Url, String> {
    let url = url::Url::parse(s).map_err(|e| {
        format!(
            "invalid URL \"{}\" ({e}); expected something like \"https://auth.example.com/oauth/token\"",
            s.escape_debug()
        )
    })?;
    let loopback = match url.host() {
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        None => false,
    };
    match url.scheme() {
        "https" => {}
        "http" if loopback => {}
        _ => {
            return Err(format!(
                "\"{}\" must use https:// (http:// only for 127.0.0.1, ::1 or localhost)",
                s.escape_debug()
            ));
        }
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(format!("\"{}\" has no host", s.escape_debug()));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err("the URL contains credentials; put the client secret in the vault".into());
    }
    if url.fragment().is_some() {
        return Err(format!("\"{}\" must not have a fragment", s.escape_debug()));
    }
    Ok(url)
}

/// Checks a service base URL: http(s), a host, no credentials, query or fragment.
/// Returned with a trailing `/` removed from the path so joining is unambiguous.
pub fn check_service_url(s: &str) -> Result<url::Url, String> {
    let url = url::Url::parse(s).map_err(|e| {
        format!(
            "invalid URL \"{}\" ({e}); expected something like \"https://api.example.com\"",
            s.escape_debug()
        )
    })?;
    if !matches!(url.scheme(), "https" | "http") {
        return Err(format!(
            "URL \"{}\" must use https:// (or http:// for a local service)",
            s.escape_debug()
        ));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(format!("URL \"{}\" has no host", s.escape_debug()));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(format!(
            "URL \"{}\" contains credentials; put the credential in the vault, not in the URL",
            url.host_str().unwrap_or_default()
        ));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(format!(
            "URL \"{}\" must not have a query or fragment; give only the base URL",
            s.escape_debug()
        ));
    }
    let mut url = url;
    let trimmed = url.path().trim_end_matches('/').to_string();
    url.set_path(&trimmed);
    Ok(url)
}

fn strings(v: Option<Vec<Spanned<String>>>) -> Vec<Spanned<String>> {
    v.unwrap_or_default()
}

fn parse_capability(
    src: &Source<'_>,
    name: &str,
    c: RawCapability,
    span: Range<usize>,
    services: &BTreeMap<String, Service>,
) -> Result<Capability, ConfigError> {
    let ctx = |m: String| format!("capability \"{name}\": {m}");
    if !services.contains_key(c.service.get_ref()) {
        let known: Vec<&str> = services.keys().map(String::as_str).collect();
        let hint = if known.is_empty() {
            "no services are configured; add one with `airlock add`".to_string()
        } else {
            format!("configured services: {}", known.join(", "))
        };
        return Err(src.error(
            c.service.span(),
            ctx(format!(
                "unknown service \"{}\"; {hint}",
                c.service.get_ref().escape_debug()
            )),
        ));
    }
    let mode = match c.mode.as_ref().map(|m| m.get_ref().as_str()) {
        None | Some("http") => Mode::Http,
        Some("exec") => Mode::Exec,
        Some(other) => {
            let m = c.mode.as_ref().map_or(span.clone(), Spanned::span);
            return Err(src.error(
                m,
                ctx(format!(
                    "invalid mode \"{}\"; expected \"http\" or \"exec\"",
                    other.escape_debug()
                )),
            ));
        }
    };
    let ttl = match &c.ttl {
        None => DEFAULT_TTL,
        Some(t) => parse_duration(t.get_ref())
            .map_err(|m| src.error(t.span(), ctx(format!("ttl: {m}"))))?,
    };

    let mut methods = Vec::new();
    for m in strings(c.methods) {
        let ok = !m.get_ref().is_empty()
            && m.get_ref().len() <= 32
            && m.get_ref().bytes().all(|b| b.is_ascii_alphabetic());
        if !ok {
            return Err(src.error(
                m.span(),
                ctx(format!(
                    "invalid method \"{}\"; expected an HTTP method name such as \"PROPFIND\"",
                    m.get_ref().escape_debug()
                )),
            ));
        }
        methods.push(m.get_ref().to_ascii_uppercase());
    }

    let compiled_rules = |list: Option<Vec<Spanned<String>>>, which: &str| {
        let mut out = Vec::new();
        for r in strings(list) {
            Rule::parse_with_methods(r.get_ref(), &methods)
                .map_err(|e| src.error(r.span(), ctx(format!("{which} rule: {e}"))))?;
            out.push(r.into_inner());
        }
        Ok::<_, ConfigError>(out)
    };
    let allow = compiled_rules(c.allow, "allow")?;
    let deny = compiled_rules(c.deny, "deny")?;
    let rules = RuleSet::compile(&allow, &deny, &methods)
        .map_err(|e| src.error(span.clone(), ctx(e.to_string())))?;

    let agents = match c.agents {
        None => None,
        Some(list) => {
            let mut out = Vec::new();
            for a in list {
                check_name(src, "agent", &a)?;
                out.push(a.into_inner());
            }
            Some(out)
        }
    };

    let approval = match &c.approval {
        None => Approval::Never,
        Some(v) => match v.get_ref() {
            toml::Value::Boolean(false) => Approval::Never,
            toml::Value::Boolean(true) => Approval::Always,
            toml::Value::String(s) if s == "session" => Approval::Session,
            _ => {
                return Err(src.error(
                    v.span(),
                    ctx("invalid approval; expected true, false or \"session\"".into()),
                ));
            }
        },
    };

    let rate = match &c.rate {
        None => None,
        Some(r) => Some(parse_rate(r.get_ref()).map_err(|m| src.error(r.span(), ctx(m)))?),
    };

    let commands = strings(c.commands);
    let env = c.env.unwrap_or_default();
    let workdirs = strings(c.workdirs);
    let deny_args = strings(c.deny_args);
    if mode == Mode::Http {
        if let Some(first) = commands.first() {
            return Err(src.error(
                first.span(),
                ctx(
                    "`commands` is only for mode = \"exec\"; add mode = \"exec\" or remove it"
                        .into(),
                ),
            ));
        }
    } else if commands.is_empty() {
        return Err(src.error(
            span,
            ctx("mode = \"exec\" needs `commands = [\"program\", …]`: the programs the agent may run".into()),
        ));
    }
    for cmd in &commands {
        if cmd.get_ref().trim().is_empty() || cmd.get_ref().contains('\0') {
            return Err(src.error(cmd.span(), ctx("empty or invalid command".into())));
        }
    }
    let mut env_out = BTreeMap::new();
    for (k, v) in env {
        let ok = k
            .bytes()
            .next()
            .is_some_and(|b| b.is_ascii_alphabetic() || b == b'_')
            && k.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
        if !ok {
            return Err(src.error(
                v.span(),
                ctx(format!(
                    "invalid environment variable name \"{}\"; use letters, digits and _",
                    k.escape_debug()
                )),
            ));
        }
        env_out.insert(k, v.into_inner());
    }
    if mode == Mode::Http {
        if let Some(c) = &c.confine {
            return Err(src.error(
                c.span(),
                ctx("`confine` is only for mode = \"exec\" (HTTP capabilities start no program); remove it".into()),
            ));
        }
        if let Some(n) = &c.network {
            return Err(src.error(
                n.span(),
                ctx("`network` is only for mode = \"exec\"; remove it".into()),
            ));
        }
    }
    let network = match &c.network {
        None => Network::None,
        Some(n) => match n.get_ref().as_str() {
            "none" => Network::None,
            "direct" => Network::Direct,
            other => {
                return Err(src.error(
                    n.span(),
                    ctx(format!(
                        "invalid network \"{}\"; expected \"none\" (the default: no network) or \"direct\" (any host, unconfined network)",
                        other.escape_debug()
                    )),
                ));
            }
        },
    };
    let timeout = match &c.timeout {
        None => None,
        Some(t) => Some(
            parse_duration(t.get_ref())
                .map_err(|m| src.error(t.span(), ctx(format!("timeout: {m}"))))?,
        ),
    };

    Ok(Capability {
        name: name.to_string(),
        service: c.service.into_inner(),
        mode,
        ttl,
        allow,
        deny,
        rules,
        methods,
        agents,
        requires_reason: c.requires_reason.unwrap_or(false),
        approval,
        rate,
        commands: commands.into_iter().map(Spanned::into_inner).collect(),
        env: env_out,
        timeout,
        workdirs: workdirs.into_iter().map(Spanned::into_inner).collect(),
        deny_args: deny_args.into_iter().map(Spanned::into_inner).collect(),
        confine: c.confine.map(Spanned::into_inner).unwrap_or(true),
        network,
    })
}

impl Config {
    /// Parses and validates the text of an `airlock.toml`; `path` is used in
    /// error messages only.
    pub fn parse(path: &Path, text: &str) -> Result<Config, ConfigError> {
        parse(path, text)
    }

    /// Loads `airlock.toml` from the home; a missing file is an empty config.
    pub fn load(home: &airlock_home::Home) -> Result<Config, ConfigError> {
        let path = home.config_path();
        match std::fs::read_to_string(&path) {
            Ok(text) => parse(&path, &text),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => parse(&path, ""),
            Err(e) => Err(airlock_home::HomeError::io("cannot read", &path, e).into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_col_counts_chars() {
        let t = "a = 1\nbé = 2\n";
        assert_eq!(line_col(t, 0), (1, 1));
        assert_eq!(line_col(t, 6), (2, 1));
        assert_eq!(line_col(t, 10), (2, 4));
        assert_eq!(line_col(t, 10_000), (3, 1));
    }
}
