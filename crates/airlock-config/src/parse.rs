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
    AUTH_TYPES, Approval, Auth, Capability, Config, ConfigError, DefaultAccess, Mode, Server,
    Service,
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

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAuth {
    #[serde(rename = "type")]
    kind: Spanned<String>,
    secret: Option<Spanned<String>>,
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
    let auth_span = s.auth.span();
    let raw = s.auth.into_inner();
    let auth = match raw.kind.get_ref().as_str() {
        "bearer" => {
            let secret = raw.secret.ok_or_else(|| {
                src.error(
                    auth_span.clone(),
                    format!("service \"{name}\": auth type \"bearer\" needs `secret = \"NAME\"` (the vault secret to send)"),
                )
            })?;
            check_name(src, "secret", &secret)?;
            Auth::Bearer {
                secret: secret.into_inner(),
            }
        }
        other => {
            return Err(src.error(
                raw.kind.span(),
                format!(
                    "service \"{name}\": unknown auth type \"{}\"; expected one of: {}",
                    other.escape_debug(),
                    AUTH_TYPES.join(", ")
                ),
            ));
        }
    };
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
