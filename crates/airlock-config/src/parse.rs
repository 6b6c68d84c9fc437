//! Text → [`Config`], validating everything once, with located errors.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::ops::Range;
use std::path::Path;
use std::time::Duration;

use airlock_policy::{Rule, RuleSet};
use serde::Deserialize;
use serde::de::{self, DeserializeSeed, MapAccess, Visitor};
use toml::Spanned;

use crate::Inject;
use crate::auth::all_field_names;
use crate::units::{parse_duration, parse_rate, parse_size};
use crate::{
    AUTH_TABLE, AUTH_TYPES, Approval, Auth, AuthField, AuthValue, Capability, Config, ConfigError,
    DefaultAccess, Mode, Network, Server, Service, WrittenRules, auth_type,
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
    #[serde(default)]
    team: Option<RawTeam>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTeam {
    max_staleness: Option<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawServer {
    default_access: Option<Spanned<String>>,
    approval_timeout: Option<Spanned<String>>,
    audit_fsync: Option<Spanned<String>>,
    egress: Option<Spanned<String>>,
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
    ca_file: Option<Spanned<String>>,
}

/// How a field of `auth = { … }` is read (an [`crate::AuthField`]'s shape).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Shape {
    /// A string.
    Str,
    /// Any value (a number or a string).
    Value,
    /// A list of strings.
    List,
}

/// One field of `auth = { … }` as written, with its span.
pub(crate) enum RawField {
    Str(Spanned<String>),
    Value(Spanned<toml::Value>),
    List(Spanned<Vec<Spanned<String>>>),
}

/// Where something is wrong, and what (without the service and type context).
pub(crate) type Located = (Range<usize>, String);

/// A field's check: its name and value as written → its value, or what is wrong.
pub(crate) type Check = fn(&'static str, &RawField) -> Result<AuthValue, Located>;

impl RawField {
    fn span(&self) -> Range<usize> {
        match self {
            RawField::Str(v) => v.span(),
            RawField::Value(v) => v.span(),
            RawField::List(v) => v.span(),
        }
    }

    fn shape_error(&self, expected: &str) -> Located {
        (self.span(), format!("expected {expected}"))
    }

    fn text(&self) -> Result<&Spanned<String>, Located> {
        match self {
            RawField::Str(v) => Ok(v),
            other => Err(other.shape_error("a string")),
        }
    }

    fn value(&self) -> Result<&Spanned<toml::Value>, Located> {
        match self {
            RawField::Value(v) => Ok(v),
            other => Err(other.shape_error("a value")),
        }
    }

    fn list(&self) -> Result<&Spanned<Vec<Spanned<String>>>, Located> {
        match self {
            RawField::List(v) => Ok(v),
            other => Err(other.shape_error("a list of strings")),
        }
    }
}

/// `auth = { type = "…", … }`: the type and every field present, each read in the
/// shape [`AUTH_TABLE`] gives it. A key no auth type uses is refused as
/// `deny_unknown_fields` would; each type then checks that it has what it needs and
/// nothing another type uses ([`parse_auth`]).
struct RawAuth {
    kind: Spanned<String>,
    fields: BTreeMap<&'static str, RawField>,
}

impl<'de> Deserialize<'de> for RawAuth {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_struct("RawAuth", all_field_names(), RawAuthVisitor)
    }
}

/// A key of `auth = { … }`.
enum AuthKey {
    Type,
    Field(&'static AuthField),
}

/// Reads a key, refusing unknown ones while the key is read (so the error points at it).
struct AuthKeySeed;

impl<'de> DeserializeSeed<'de> for AuthKeySeed {
    type Value = AuthKey;
    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<AuthKey, D::Error> {
        d.deserialize_identifier(self)
    }
}

impl Visitor<'_> for AuthKeySeed {
    type Value = AuthKey;
    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("field identifier")
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<AuthKey, E> {
        if v == "type" {
            return Ok(AuthKey::Type);
        }
        AUTH_TABLE
            .iter()
            .flat_map(|t| t.fields)
            .find(|f| f.name == v)
            .map(AuthKey::Field)
            .ok_or_else(|| E::unknown_field(v, all_field_names()))
    }
}

struct RawAuthVisitor;

impl<'de> Visitor<'de> for RawAuthVisitor {
    type Value = RawAuth;
    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("struct RawAuth")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<RawAuth, A::Error> {
        let mut kind = None;
        let mut fields = BTreeMap::new();
        while let Some(key) = map.next_key_seed(AuthKeySeed)? {
            match key {
                AuthKey::Type if kind.is_some() => return Err(de::Error::duplicate_field("type")),
                AuthKey::Type => kind = Some(map.next_value()?),
                AuthKey::Field(f) if fields.contains_key(f.name) => {
                    return Err(de::Error::duplicate_field(f.name));
                }
                AuthKey::Field(f) => {
                    let v = match f.shape {
                        Shape::Str => RawField::Str(map.next_value()?),
                        Shape::Value => RawField::Value(map.next_value()?),
                        Shape::List => RawField::List(map.next_value()?),
                    };
                    fields.insert(f.name, v);
                }
            }
        }
        let kind = kind.ok_or_else(|| de::Error::missing_field("type"))?;
        Ok(RawAuth { kind, fields })
    }
    /// An array in place of the table: read positionally, as a derived
    /// `Deserialize` would (and with its message when elements run out).
    fn visit_seq<A: de::SeqAccess<'de>>(self, mut seq: A) -> Result<RawAuth, A::Error> {
        let names = all_field_names();
        let expected = format!("struct RawAuth with {} elements", names.len());
        let short = |i: usize| de::Error::invalid_length(i, &expected.as_str());
        let kind = seq.next_element()?.ok_or_else(|| short(0))?;
        let mut fields = BTreeMap::new();
        for (i, name) in names.iter().enumerate().skip(1) {
            let Some(AuthKey::Field(f)) = AuthKeySeed.visit_str::<A::Error>(name).ok() else {
                continue;
            };
            let v = match f.shape {
                Shape::Str => seq.next_element()?.map(RawField::Str),
                Shape::Value => seq.next_element()?.map(RawField::Value),
                Shape::List => seq.next_element()?.map(RawField::List),
            };
            fields.insert(f.name, v.ok_or_else(|| short(i))?);
        }
        Ok(RawAuth { kind, fields })
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
    inject: Option<Spanned<String>>,
    learn_until: Option<Spanned<String>>,
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
///
/// A large configuration's `allow`/`deny` arrays are read ahead of `toml`
/// ([`crate::ahead`]); when that path finds anything wrong, or anything it
/// does not read, the text is parsed again the way every configuration was
/// before it, which gives every error its message and place.
pub(crate) fn parse(path: &Path, text: &str) -> Result<Config, ConfigError> {
    if let Some(ahead) = crate::ahead::read(text, crate::ahead::MIN_STRINGS)
        && let Some(config) = parse_ahead(path, &ahead)
    {
        return Ok(config);
    }
    parse_toml(path, text)
}

/// The whole document through `toml`, checked in order: the first thing wrong
/// is the error.
fn parse_toml(path: &Path, text: &str) -> Result<Config, ConfigError> {
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
    let services = parse_services(&src, raw.services)?;

    let mut capabilities = BTreeMap::new();
    for (name, mut cap) in raw.capabilities {
        check_name(&src, "capability", &name)?;
        let span = cap.span();
        let allow = RuleTexts::toml(cap.get_mut().allow.take());
        let deny = RuleTexts::toml(cap.get_mut().deny.take());
        let cap = parse_capability(
            &src,
            name.get_ref(),
            cap.into_inner(),
            [allow, deny],
            span,
            &services,
        )?;
        capabilities.insert(name.into_inner(), cap);
    }

    let team = parse_team(&src, raw.team)?;
    Ok(Config {
        server,
        services,
        capabilities,
        team,
    })
}

/// Capabilities holding at least this many rules in all are compiled in
/// parallel (below it, starting threads costs more than it saves).
const PARALLEL_RULES: usize = 16_384;

/// The document with its rule arrays read ahead: the configuration, or `None`
/// when anything is wrong or an array read ahead is not a capability's
/// `allow`/`deny` list (then [`parse_toml`] says what, from the original text).
fn parse_ahead(path: &Path, ahead: &crate::ahead::Ahead<'_>) -> Option<Config> {
    let src = Source {
        path,
        text: &ahead.text,
    };
    let raw: RawConfig = toml::from_str(&ahead.text).ok()?;
    let server = match raw.server {
        None => Server::default(),
        Some(s) => parse_server(&src, s).ok()?,
    };
    let services = parse_services(&src, raw.services).ok()?;

    // A list the parser read as `[""]` at an array's marker is that array.
    let lists = |list: Option<Vec<Spanned<String>>>| match list.as_deref() {
        Some([only]) if only.get_ref().is_empty() => match ahead.take(only.span().start) {
            Some(rules) => Lists::Ahead(rules),
            None => Lists::Toml(list),
        },
        _ => Lists::Toml(list),
    };
    let mut work = Vec::with_capacity(raw.capabilities.len());
    let mut rules = 0;
    for (name, mut cap) in raw.capabilities {
        check_name(&src, "capability", &name).ok()?;
        let allow = lists(cap.get_mut().allow.take());
        let deny = lists(cap.get_mut().deny.take());
        rules += allow.len() + deny.len();
        work.push((name.into_inner(), cap, [allow, deny]));
    }
    if !ahead.all_taken() {
        return None;
    }
    let check = |(name, cap, lists): (String, Spanned<RawCapability>, [Lists<'_, '_>; 2])| {
        let span = cap.span();
        let rules = lists.map(Lists::texts);
        let cap = parse_capability(&src, &name, cap.into_inner(), rules, span, &services).ok()?;
        Some((name, cap))
    };
    let checked: Vec<Option<(String, Capability)>> = if rules >= PARALLEL_RULES {
        use rayon::iter::{IntoParallelIterator, ParallelIterator};
        work.into_par_iter().map(check).collect()
    } else {
        work.into_iter().map(check).collect()
    };
    let capabilities = checked.into_iter().collect::<Option<BTreeMap<_, _>>>()?;

    let team = parse_team(&src, raw.team).ok()?;
    Some(Config {
        server,
        services,
        capabilities,
        team,
    })
}

/// An `allow`/`deny` list as [`parse_ahead`] finds it: read ahead, or by `toml`.
enum Lists<'a, 't> {
    Ahead(crate::ahead::Rules<'a, 't>),
    Toml(Option<Vec<Spanned<String>>>),
}

impl<'a> Lists<'a, '_> {
    fn len(&self) -> usize {
        match self {
            Lists::Ahead(r) => r.len(),
            Lists::Toml(l) => l.as_ref().map_or(0, Vec::len),
        }
    }

    fn texts(self) -> RuleTexts<'a> {
        match self {
            // Where each was written is not kept: an error is found again by
            // `parse_toml`. The texts are borrowed from the source: no copy of
            // each rule while it is compiled.
            Lists::Ahead(r) => RuleTexts {
                texts: r.texts().into_iter().map(Cow::Borrowed).collect(),
                spans: Vec::new(),
            },
            Lists::Toml(l) => RuleTexts::toml(l),
        }
    }
}

/// A capability's `allow` or `deny` rules as written, and where (when known).
struct RuleTexts<'a> {
    texts: Vec<Cow<'a, str>>,
    spans: Vec<Range<usize>>,
}

impl RuleTexts<'_> {
    fn toml(list: Option<Vec<Spanned<String>>>) -> RuleTexts<'static> {
        let (texts, spans) = strings(list)
            .into_iter()
            .map(|r| {
                let span = r.span();
                (Cow::Owned(r.into_inner()), span)
            })
            .unzip();
        RuleTexts { texts, spans }
    }
}

fn parse_services(
    src: &Source<'_>,
    raw: BTreeMap<Spanned<String>, Spanned<RawService>>,
) -> Result<BTreeMap<String, Service>, ConfigError> {
    let mut services = BTreeMap::new();
    for (name, svc) in raw {
        check_name(src, "service", &name)?;
        let service = parse_service(src, name.get_ref(), svc.into_inner())?;
        services.insert(name.into_inner(), service);
    }
    Ok(services)
}

fn parse_team(src: &Source<'_>, raw: Option<RawTeam>) -> Result<crate::Team, ConfigError> {
    let mut team = crate::Team::default();
    if let Some(t) = raw.and_then(|t| t.max_staleness) {
        team.max_staleness = parse_duration(t.get_ref())
            .map_err(|m| src.error(t.span(), format!("max_staleness: {m}")))?;
    }
    Ok(team)
}

fn parse_server(src: &Source<'_>, s: RawServer) -> Result<Server, ConfigError> {
    let mut server = Server::default();
    if let Some(access) = s.default_access {
        server.default_access = keyword(
            src,
            &access,
            "default_access",
            &[
                ("open", DefaultAccess::Open),
                ("restricted", DefaultAccess::Restricted),
            ],
            "\"open\" or \"restricted\"",
            |m| m,
        )?;
    }
    if let Some(f) = s.audit_fsync {
        server.audit_fsync = keyword(
            src,
            &f,
            "audit_fsync",
            &[
                ("always", crate::AuditFsync::Always),
                ("batch", crate::AuditFsync::Batch),
            ],
            "\"always\" or \"batch\"",
            |m| m,
        )?;
    }
    if let Some(e) = s.egress {
        server.egress = keyword(
            src,
            &e,
            "egress",
            &[
                ("deny", crate::Egress::Deny),
                ("tunnel", crate::Egress::Tunnel),
            ],
            "\"deny\" (the default: the egress proxy reaches only the services' origins) or \"tunnel\" (other hosts tunnelled unmodified)",
            |m| m,
        )?;
    }
    if let Some(t) = s.approval_timeout {
        server.approval_timeout = parse_duration(t.get_ref())
            .map_err(|m| src.error(t.span(), format!("approval_timeout: {m}")))?;
    }
    Ok(server)
}

/// The value of a keyword setting `v` (named `key`), one of `choices` (how it is
/// spelled, what it means); another word is an error at it, "invalid KEY
/// \"WORD\"; expected EXPECTED", passed through `ctx` (which names the table).
fn keyword<T: Copy>(
    src: &Source<'_>,
    v: &Spanned<String>,
    key: &str,
    choices: &[(&str, T)],
    expected: &str,
    ctx: impl FnOnce(String) -> String,
) -> Result<T, ConfigError> {
    let word = v.get_ref().as_str();
    match choices.iter().find(|(w, _)| *w == word) {
        Some(&(_, value)) => Ok(value),
        None => Err(src.error(
            v.span(),
            ctx(format!(
                "invalid {key} \"{}\"; expected {expected}",
                word.escape_debug()
            )),
        )),
    }
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
    let ca_file = match &s.ca_file {
        None => None,
        Some(p) => {
            let path = std::path::Path::new(p.get_ref());
            if !path.is_absolute() || p.get_ref().chars().any(char::is_control) {
                return Err(src.error(
                    p.span(),
                    format!(
                        "service \"{name}\": ca_file must be the absolute path of a PEM file of CA certificates, e.g. \"/etc/ssl/private-ca.pem\""
                    ),
                ));
            }
            if url.scheme() != "https" {
                return Err(src.error(
                    p.span(),
                    format!(
                        "service \"{name}\": ca_file is for https services; this one is {}",
                        url.scheme()
                    ),
                ));
            }
            Some(path.to_path_buf())
        }
    };
    Ok(Service {
        name: name.to_string(),
        ca_file,
        url,
        auth,
        timeout,
        max_request_bytes: size(&s.max_request_bytes, "max_request_bytes")?,
        max_response_bytes: size(&s.max_response_bytes, "max_response_bytes")?,
        forward_cookies: s.forward_cookies.unwrap_or(false),
    })
}

/// `services.NAME.auth`: the type, its required fields, and nothing it does not use,
/// as [`AUTH_TABLE`] says; each field checked by its row's check.
fn parse_auth(src: &Source<'_>, name: &str, auth: Spanned<RawAuth>) -> Result<Auth, ConfigError> {
    let span = auth.span();
    let raw = auth.into_inner();
    let kind = raw.kind.get_ref().as_str();
    let Some(ty) = auth_type(kind) else {
        return Err(src.error(
            raw.kind.span(),
            format!(
                "service \"{name}\": unknown auth type \"{}\"; expected one of: {}",
                kind.escape_debug(),
                AUTH_TYPES.join(", ")
            ),
        ));
    };
    for field in all_field_names() {
        let Some(v) = raw.fields.get(field) else {
            continue;
        };
        if ty.field(field).is_none() {
            let owners: Vec<String> = AUTH_TABLE
                .iter()
                .filter(|t| t.field(field).is_some())
                .map(|t| format!("\"{}\"", t.name))
                .collect();
            return Err(src.error(
                v.span(),
                format!(
                    "service \"{name}\": auth type \"{kind}\" does not use `{field}` (it belongs to {}); remove it",
                    owners.join(", ")
                ),
            ));
        }
    }

    let ctx = |m: String| format!("service \"{name}\": auth type \"{kind}\": {m}");
    let mut values = Vec::new();
    for field in ty.fields {
        // Fields set together are checked where the first of them is.
        for (a, b) in ty.together.iter().filter(|(a, _)| *a == field.name) {
            let (present, missing) = match (raw.fields.contains_key(a), raw.fields.contains_key(b))
            {
                (true, false) => (a, b),
                (false, true) => (b, a),
                _ => continue,
            };
            let about = ty.field(missing).map_or("", |f| f.about);
            return Err(src.error(
                span.clone(),
                ctx(format!(
                    "`{present}` needs `{missing} = \"…\"` too ({about})"
                )),
            ));
        }
        match raw.fields.get(field.name) {
            None if field.required => {
                return Err(src.error(
                    span.clone(),
                    ctx(format!(
                        "needs `{} = {}` ({})",
                        field.name, field.example, field.about
                    )),
                ));
            }
            None => {}
            Some(v) => {
                let value =
                    (field.check)(field.name, v).map_err(|(at, m)| src.error(at, ctx(m)))?;
                values.push((field.name.to_string(), value));
            }
        }
    }
    Auth::from_values(ty.kind, values).map_err(|e| src.error(span, ctx(e.to_string())))
}

/// A vault secret's name (every secret field).
pub(crate) fn check_secret_name(field: &'static str, v: &RawField) -> Result<AuthValue, Located> {
    let v = v.text()?;
    if airlock_home::is_valid_name(v.get_ref()) {
        Ok(AuthValue::Text(v.get_ref().clone()))
    } else {
        Err((
            v.span(),
            format!(
                "`{field}`: invalid secret name \"{}\": {}",
                v.get_ref().escape_debug(),
                airlock_home::NAME_RULE
            ),
        ))
    }
}

/// `basic`'s user name: no `:` and no control characters (RFC 7617).
pub(crate) fn check_username(_: &'static str, v: &RawField) -> Result<AuthValue, Located> {
    let u = v.text()?;
    match u.get_ref().chars().find(|c| *c == ':' || c.is_control()) {
        Some(bad) => Err((
            u.span(),
            format!(
                "`username` must not contain {}",
                if bad == ':' {
                    "`:`"
                } else {
                    "control characters"
                }
            ),
        )),
        None => Ok(AuthValue::Text(u.get_ref().clone())),
    }
}

/// `header`'s header name ([`check_header_name`]).
pub(crate) fn check_header_name_field(
    field: &'static str,
    v: &RawField,
) -> Result<AuthValue, Located> {
    let h = v.text()?;
    check_header_name(h.get_ref()).map_err(|m| (h.span(), format!("`{field}`: {m}")))?;
    Ok(AuthValue::Text(h.get_ref().clone()))
}

/// `header`'s prefix: printable ASCII, not starting with a space.
pub(crate) fn check_prefix(_: &'static str, v: &RawField) -> Result<AuthValue, Located> {
    let p = v.text()?;
    let ok =
        p.get_ref().bytes().all(|b| (0x20..=0x7e).contains(&b)) && !p.get_ref().starts_with(' ');
    if !ok {
        return Err((
            p.span(),
            "`prefix` must be printable ASCII and not start with a space, e.g. \"Token \"".into(),
        ));
    }
    Ok(AuthValue::Text(p.get_ref().clone()))
}

/// `query`'s parameter name.
pub(crate) fn check_param(_: &'static str, v: &RawField) -> Result<AuthValue, Located> {
    let param = v.text()?;
    let p = param.get_ref();
    if p.is_empty()
        || p.len() > 128
        || p.chars()
            .any(|c| c.is_control() || matches!(c, '&' | '=' | '#' | ' '))
    {
        return Err((
            param.span(),
            "`param` must be 1 to 128 characters without spaces, control characters, `&`, `=` or `#`".into(),
        ));
    }
    Ok(AuthValue::Text(p.clone()))
}

/// `aws-sigv4`'s region and signing name ([`check_aws_word`]).
pub(crate) fn check_aws_word_field(
    field: &'static str,
    v: &RawField,
) -> Result<AuthValue, Located> {
    let w = v.text()?;
    check_aws_word(w.get_ref()).map_err(|m| (w.span(), format!("`{field}`: {m}")))?;
    Ok(AuthValue::Text(w.get_ref().clone()))
}

/// `github-app`'s app id: a positive number, or a client id (letters, digits, `.`).
pub(crate) fn check_app_id(_: &'static str, v: &RawField) -> Result<AuthValue, Located> {
    let app_id = v.value()?;
    match app_id.get_ref() {
        toml::Value::Integer(i) if *i > 0 => Ok(AuthValue::Text(i.to_string())),
        toml::Value::String(s)
            if !s.is_empty()
                && s.len() <= 64
                && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'.') =>
        {
            Ok(AuthValue::Text(s.clone()))
        }
        _ => Err((
            app_id.span(),
            "`app_id` must be the app's id (a positive number) or its client id (letters, digits and `.`)".into(),
        )),
    }
}

/// `github-app`'s installation id: a positive number (a digit string is accepted).
pub(crate) fn check_installation_id(_: &'static str, v: &RawField) -> Result<AuthValue, Located> {
    let inst = v.value()?;
    match inst.get_ref() {
        toml::Value::Integer(i) if *i > 0 => u64::try_from(*i).ok(),
        toml::Value::String(s) => s.parse::<u64>().ok().filter(|n| *n > 0),
        _ => None,
    }
    .map(AuthValue::Number)
    .ok_or_else(|| {
        (
            inst.span(),
            "`installation_id` must be a positive number".into(),
        )
    })
}

/// `gcp-service-account`'s scopes: at least one, each without spaces.
pub(crate) fn check_scopes(_: &'static str, v: &RawField) -> Result<AuthValue, Located> {
    let scopes = v.list()?;
    if scopes.get_ref().is_empty() {
        return Err((
            scopes.span(),
            "`scopes` must name at least one scope".into(),
        ));
    }
    let mut out = Vec::new();
    for sc in scopes.get_ref() {
        let v = sc.get_ref();
        if v.is_empty() || v.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err((
                sc.span(),
                "each scope must be non-empty, without spaces".into(),
            ));
        }
        out.push(v.clone());
    }
    Ok(AuthValue::List(out))
}

/// `oauth2`'s token endpoint ([`check_token_url`]).
pub(crate) fn check_token_url_field(
    field: &'static str,
    v: &RawField,
) -> Result<AuthValue, Located> {
    let u = v.text()?;
    check_token_url(u.get_ref()).map_err(|m| (u.span(), format!("`{field}`: {m}")))?;
    Ok(AuthValue::Text(u.get_ref().clone()))
}

/// `oauth2`'s client id: non-empty, no control characters.
pub(crate) fn check_client_id(_: &'static str, v: &RawField) -> Result<AuthValue, Located> {
    let c = v.text()?;
    if c.get_ref().is_empty() || c.get_ref().chars().any(char::is_control) {
        return Err((
            c.span(),
            "`client_id` must be non-empty, without control characters".into(),
        ));
    }
    Ok(AuthValue::Text(c.get_ref().clone()))
}

/// `oauth2`'s scope: space-separated names.
pub(crate) fn check_scope(_: &'static str, v: &RawField) -> Result<AuthValue, Located> {
    let sc = v.text()?;
    if sc.get_ref().trim().is_empty() || sc.get_ref().chars().any(char::is_control) {
        return Err((
            sc.span(),
            "`scope` must be space-separated scope names; remove it if the provider needs none"
                .into(),
        ));
    }
    Ok(AuthValue::Text(sc.get_ref().clone()))
}

/// `oauth2`'s client authentication: `"basic"` or `"body"`.
pub(crate) fn check_client_auth(_: &'static str, v: &RawField) -> Result<AuthValue, Located> {
    let ca = v.text()?;
    match ca.get_ref().as_str() {
        "basic" | "body" => Ok(AuthValue::Text(ca.get_ref().clone())),
        other => Err((
            ca.span(),
            format!(
                "invalid `client_auth` \"{}\"; expected \"basic\" or \"body\"",
                other.escape_debug()
            ),
        )),
    }
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

/// Why a token endpoint URL ([`check_token_url`]) cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TokenUrlError {
    /// Not a URL.
    #[error(
        "invalid URL \"{}\" ({reason}); expected something like \"https://auth.example.com/oauth/token\"",
        url.escape_debug()
    )]
    Invalid {
        /// The text as given.
        url: String,
        /// Why it does not parse (in the message, so not a `source`).
        reason: url::ParseError,
    },
    /// Neither https nor http to a loopback address.
    #[error(
        "\"{}\" must use https:// (http:// only for 127.0.0.1, ::1 or localhost)",
        url.escape_debug()
    )]
    Scheme {
        /// The URL as given.
        url: String,
    },
    /// No host.
    #[error("\"{}\" has no host", url.escape_debug())]
    NoHost {
        /// The URL as given.
        url: String,
    },
    /// A user name or password in the URL (not kept: it may be the secret).
    #[error("the URL contains credentials; put the client secret in the vault")]
    Credentials,
    /// A `#fragment`.
    #[error("\"{}\" must not have a fragment", url.escape_debug())]
    Fragment {
        /// The URL as given.
        url: String,
    },
}

/// A token endpoint: https, or http to a loopback address (a local test or sidecar);
/// no credentials or fragment in the URL.
pub fn check_token_url(s: &str) -> Result<url::Url, TokenUrlError> {
    let url = url::Url::parse(s).map_err(|reason| TokenUrlError::Invalid {
        url: s.to_string(),
        reason,
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
        _ => return Err(TokenUrlError::Scheme { url: s.to_string() }),
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(TokenUrlError::NoHost { url: s.to_string() });
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(TokenUrlError::Credentials);
    }
    if url.fragment().is_some() {
        return Err(TokenUrlError::Fragment { url: s.to_string() });
    }
    Ok(url)
}

/// Why a service base URL ([`check_service_url`]) cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ServiceUrlError {
    /// Not a URL.
    #[error(
        "invalid URL \"{}\" ({reason}); expected something like \"https://api.example.com\"",
        url.escape_debug()
    )]
    Invalid {
        /// The text as given.
        url: String,
        /// Why it does not parse (in the message, so not a `source`).
        reason: url::ParseError,
    },
    /// Neither https nor http.
    #[error(
        "URL \"{}\" must use https:// (or http:// for a local service)",
        url.escape_debug()
    )]
    Scheme {
        /// The URL as given.
        url: String,
    },
    /// No host.
    #[error("URL \"{}\" has no host", url.escape_debug())]
    NoHost {
        /// The URL as given.
        url: String,
    },
    /// A user name or password in the URL; only the host is kept (the rest may
    /// be the secret).
    #[error("URL \"{host}\" contains credentials; put the credential in the vault, not in the URL")]
    Credentials {
        /// The URL's host.
        host: String,
    },
    /// A query or a fragment.
    #[error(
        "URL \"{}\" must not have a query or fragment; give only the base URL",
        url.escape_debug()
    )]
    QueryOrFragment {
        /// The URL as given.
        url: String,
    },
}

/// Checks a service base URL: http(s), a host, no credentials, query or fragment.
/// Returned with a trailing `/` removed from the path so joining is unambiguous.
pub fn check_service_url(s: &str) -> Result<url::Url, ServiceUrlError> {
    let url = url::Url::parse(s).map_err(|reason| ServiceUrlError::Invalid {
        url: s.to_string(),
        reason,
    })?;
    if !matches!(url.scheme(), "https" | "http") {
        return Err(ServiceUrlError::Scheme { url: s.to_string() });
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(ServiceUrlError::NoHost { url: s.to_string() });
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(ServiceUrlError::Credentials {
            host: url.host_str().unwrap_or_default().to_string(),
        });
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(ServiceUrlError::QueryOrFragment { url: s.to_string() });
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
    [allow, deny]: [RuleTexts; 2],
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
    let mode = match &c.mode {
        None => Mode::Http,
        Some(m) => keyword(
            src,
            m,
            "mode",
            &[("http", Mode::Http), ("exec", Mode::Exec)],
            "\"http\" or \"exec\"",
            ctx,
        )?,
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

    // Each rule is parsed once, by `RuleSet::compile` (a million rules load at
    // start-up). Only when that fails are the rules parsed again one by one, as
    // written and in order, so that the error points at the rule's own line.
    let RuleTexts {
        texts: allow,
        spans: allow_spans,
    } = allow;
    let RuleTexts {
        texts: deny,
        spans: deny_spans,
    } = deny;
    let rules = match RuleSet::compile(&allow, &deny, &methods) {
        Ok(rules) => rules,
        Err(e) => {
            for (which, list, spans) in [
                ("allow", &allow, &allow_spans),
                ("deny", &deny, &deny_spans),
            ] {
                for (r, at) in list.iter().zip(spans) {
                    Rule::parse_with_methods(r, &methods)
                        .map_err(|e| src.error(at.clone(), ctx(format!("{which} rule: {e}"))))?;
                }
            }
            return Err(src.error(span.clone(), ctx(e.to_string())));
        }
    };

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
        Some(r) => {
            Some(parse_rate(r.get_ref()).map_err(|e| src.error(r.span(), ctx(e.to_string())))?)
        }
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
        if let Some(i) = &c.inject {
            return Err(src.error(
                i.span(),
                ctx("`inject` is only for mode = \"exec\"; remove it".into()),
            ));
        }
    }
    let inject = match &c.inject {
        None => Inject::Placeholder,
        Some(i) => keyword(
            src,
            i,
            "inject",
            &[("env", Inject::Env), ("placeholder", Inject::Placeholder)],
            "\"placeholder\" (the default: the program holds a placeholder and reaches its service through airlock's egress proxy) or \"env\" (the real secret in its environment, for non-HTTP uses)",
            ctx,
        )?,
    };
    let network = match &c.network {
        None => Network::None,
        Some(n) => keyword(
            src,
            n,
            "network",
            &[("none", Network::None), ("direct", Network::Direct)],
            "\"none\" (the default: no network) or \"direct\" (any host, unconfined network)",
            ctx,
        )?,
    };
    let learn_until = match &c.learn_until {
        None => None,
        Some(t) if mode == Mode::Exec => {
            return Err(src.error(
                t.span(),
                ctx("`learn_until` is only for HTTP capabilities (learning proposes method and path rules); remove it".into()),
            ));
        }
        Some(t) => Some(t.get_ref().trim().parse::<jiff::Timestamp>().map_err(|e| {
            src.error(
                t.span(),
                ctx(format!(
                    "learn_until: {e}; write a time with its zone, e.g. \"2026-12-07T15:00:00Z\" (`airlock cap add --learn --for 1h` writes it)"
                )),
            )
        })?),
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
        allow: WrittenRules::new(&allow, rules.allow_rules()),
        deny: WrittenRules::new(&deny, rules.deny_rules()),
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
        inject,
        learn_until,
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
    use proptest::prelude::*;

    /// What the two paths make of `text`: the configuration through `toml`
    /// alone ([`parse_toml`]), and through the arrays read ahead (`None` when
    /// that path gives up, as `parse` then uses `parse_toml`).
    fn both(text: &str) -> (Result<Config, ConfigError>, Option<Option<Config>>) {
        let p = Path::new("airlock.toml");
        let ahead = crate::ahead::read(text, 0).map(|a| parse_ahead(p, &a));
        (parse_toml(p, text), ahead)
    }

    /// Reading arrays ahead changes nothing: it gives a configuration only when
    /// `toml` alone gives the same one (compared whole, through `Debug`: every
    /// field, the rules as written and compiled, the tries), and gives one
    /// whenever `toml` does and an array was read ahead.
    fn same(text: &str) -> Result<(), String> {
        let (toml, ahead) = both(text);
        match (&toml, ahead) {
            (_, None) => {}
            (Ok(want), Some(Some(got))) => {
                let (want, got) = (format!("{want:?}"), format!("{got:?}"));
                if want != got {
                    return Err(format!("differs:\n{want}\n{got}"));
                }
            }
            (Err(e), Some(Some(_))) => return Err(format!("read ahead, accepted; toml: {e}")),
            (Ok(_), Some(None)) => return Err("valid, but the read-ahead path gave up".into()),
            (Err(_), Some(None)) => {}
        }
        // And `parse` says what `parse_toml` says.
        let public = parse(Path::new("airlock.toml"), text).map(|c| format!("{c:?}"));
        let toml = toml.map(|c| format!("{c:?}"));
        match (public, toml) {
            (Ok(a), Ok(b)) if a == b => Ok(()),
            (Err(a), Err(b)) if a.to_string() == b.to_string() => Ok(()),
            (a, b) => Err(format!("parse: {a:?}; parse_toml: {b:?}")),
        }
    }

    const HEAD: &str =
        "[services.s]\nurl = \"https://x.example\"\nauth = { type = \"bearer\", secret = \"s\" }\n";

    #[test]
    fn arrays_read_ahead_give_what_toml_gives() {
        let cap = |body: &str| format!("{HEAD}[capabilities.c]\nservice = \"s\"\n{body}\n");
        let valid = [
            "allow = [\"GET /a\", \"get  /b\",]\ndeny = ['* /a/admin/**']",
            "allow = []\ndeny = [ ]",
            "allow = [\n  # reads\n  \"GET /a\", # one\r\n  \"GET /b\"\n  ,\"GET /c\"\n]",
            "allow = [\"GET /\\u0061\", \"GET\\t/tab\", '\tget /lit', \"\\u0047ET /%C3%A9\"]",
            "allow = [\"\"\"GET /ml\"\"\"]\ndeny = [\"* /x\"]",
            "allow = [\"GET /a\"]\nmethods = [\"propfind\"]\ndeny = [\"PROPFIND /a\"]",
            "\"allow\" = [\"GET /quoted-key\"]",
            "allow\t=\t[\"GET /tabs\"]",
            "allow = [\"GET /a\"]\n[capabilities.c.env]\nX = \"y\"",
        ];
        let invalid = [
            "allow = [,]",
            "allow = [\"GET /a\" \"GET /b\"]",
            "allow = [\"GET /a\",,\"GET /b\"]",
            "allow = [\"GET /a\"\rdeny = []",
            "allow = [\"GET /a\" # bad \u{7f} comment\n]",
            "allow = [\"GET /\\q\"]",
            "allow = [\"GET /\\\"q\", 'GET /\\x']",
            "allow = [\"GET /a\"]\nallow = [\"GET /b\"]",
            "allow = [\"\"]",
            "allow = [\"GET v1\"]",
            "allow = [1]",
            "allow = [\"GET /a\", 1]",
            "allow = [\"GET /a\", [\"GET /b\"]]",
            "allow = \"GET /a\"",
            "allow = [\"GET /a\"\n",
            "env = { allow = [\"GET /a\"] }",
        ];
        for body in valid {
            let text = cap(body);
            assert!(both(&text).0.is_ok(), "{text}");
            same(&text).unwrap_or_else(|e| panic!("{text}\n{e}"));
        }
        for body in invalid {
            let text = cap(body);
            assert!(both(&text).0.is_err(), "{text}");
            same(&text).unwrap_or_else(|e| panic!("{text}\n{e}"));
        }
        // Arrays elsewhere than a capability's own list.
        for text in [
            format!("\u{feff}{HEAD}[capabilities.c]\nservice = \"s\"\nallow = [\"GET /bom\"]\n"),
            format!("{HEAD}[capabilities]\nc.service = \"s\"\nc.allow = [\"GET /dotted\"]\n"),
            format!(
                "{HEAD}capabilities = {{ c = {{ service = \"s\", allow = [\"GET /inline\"] }} }}\n"
            ),
            format!("[server]\nallow = [\"GET /a\"]\n{HEAD}"),
            format!("{HEAD}allow = [\"GET /a\"]\n"),
            format!("allow = [\"GET /a\"]\n{HEAD}"),
            format!(
                "{HEAD}[capabilities.c]\nservice = \"s\"\nnote = \"\"\"\nallow = [\"GET /in-a-string\"]\n\"\"\"\n"
            ),
            format!(
                "{HEAD}[capabilities.c]\nservice = \"s\"\nallow = [\"GET /a\"]\n[capabilities.d]\nservice = \"s\"\ndeny = [\"GET /a\"]\nallow = [\"GET /b\"]\n"
            ),
        ] {
            same(&text).unwrap_or_else(|e| panic!("{text}\n{e}"));
        }
    }

    /// A configuration large enough to be read ahead by `parse` loads the same,
    /// in parallel or not, and a mistake in it is the located error it was.
    #[test]
    fn large_configurations_are_read_ahead_with_the_same_outcome() {
        let config = |caps: usize, rules: usize, last: &str| {
            let mut text = String::from(HEAD);
            for c in 0..caps {
                text.push_str(&format!(
                    "[capabilities.c{c}]\nservice = \"s\"\nallow = [\n"
                ));
                for r in 0..rules {
                    text.push_str(&format!("  \"GET /v1/r{r}/**\",\n"));
                }
                text.push_str(&format!("  \"{last}\",\n]\ndeny = ['* /v1/admin']\n"));
            }
            text
        };
        // Sequential (below `PARALLEL_RULES`) and parallel.
        for (caps, rules) in [(2, crate::ahead::MIN_STRINGS), (40, PARALLEL_RULES / 40)] {
            let text = config(caps, rules, "get  /v1/items");
            assert!(crate::ahead::read(&text, crate::ahead::MIN_STRINGS).is_some());
            same(&text).unwrap();
            let c = parse(Path::new("airlock.toml"), &text).unwrap();
            let cap = &c.capabilities["c1"];
            assert_eq!(cap.allow.len(), rules + 1);
            assert_eq!(cap.allow_written().last(), Some("get  /v1/items"));
            assert_eq!(cap.rules.allow_rules()[rules].as_str(), "GET /v1/items");

            let text = config(caps, rules, "GET /v1/a//b");
            same(&text).unwrap();
            let e = parse(Path::new("airlock.toml"), &text)
                .unwrap_err()
                .to_string();
            let line = 6 + rules + 1;
            assert!(
                e.starts_with(&format!("airlock.toml:{line}:3: capability \"c0\": allow rule: rule \"GET /v1/a//b\": empty segments")),
                "{e}"
            );
        }
    }

    /// A rule as a TOML string: basic (escaped as needed, sometimes with an
    /// escape it does not need), literal when it can be, multi-line (never
    /// read ahead), or broken.
    fn quoted(rule: &str, style: u8) -> String {
        let basic = |needless: bool| {
            let mut out = String::from("\"");
            for c in rule.chars() {
                match c {
                    '"' => out.push_str("\\\""),
                    '\\' => out.push_str("\\\\"),
                    '\t' => out.push_str("\\t"),
                    c if c.is_control() => out.push_str(&format!("\\u{:04X}", u32::from(c))),
                    'G' if needless => out.push_str("\\u0047"),
                    c => out.push(c),
                }
            }
            out.push('"');
            out
        };
        match style {
            0 if !rule.contains('\'') && !rule.chars().any(|c| c.is_control() && c != '\t') => {
                format!("'{rule}'")
            }
            1 => basic(true),
            2 => format!("\"\"\"{}\"\"\"", &basic(false)[1..basic(false).len() - 1]),
            3 => format!("\"{rule}\\q\""),
            4 => "42".into(),
            _ => basic(false),
        }
    }

    fn rule() -> impl Strategy<Value = String> {
        prop_oneof![
            8 => "(GET|get|POST|\\*|HEAD)( |  |\t)/(v1|a|%2A|\\*)(/(\\*\\*|[a-z]{1,3}|\\*))?",
            1 => "(GET|PROPFIND|TRACE) {1,2}/(é|\\*\\*|x y|a//b|\\.|\\?q)(/(\\*\\*|[a-z]{1,3}|\\*))?",
            1 => "[ -~\t\"\\\\]{0,12}",
        ]
    }

    /// Between two tokens of an array: whitespace, newlines, comments.
    fn gap() -> impl Strategy<Value = String> {
        prop::collection::vec(
            prop_oneof![
                8 => Just(String::new()),
                8 => Just(" ".to_string()),
                4 => Just("\t".to_string()),
                8 => Just("\n".to_string()),
                4 => Just("\r\n".to_string()),
                4 => Just(" # note\n".to_string()),
                1 => Just("\r".to_string()),
            ],
            0..3,
        )
        .prop_map(|v| v.concat())
    }

    /// An array of rules: quoting, gaps and commas, now and then wrong.
    fn array() -> impl Strategy<Value = String> {
        (
            prop::collection::vec((rule(), 0u8..40, gap(), gap(), 0u8..30), 0..5),
            gap(),
            any::<bool>(),
        )
            .prop_map(|(items, first, trailing)| {
                let mut out = format!("[{first}");
                let n = items.len();
                for (i, (r, style, before, after, comma)) in items.into_iter().enumerate() {
                    out.push_str(&before);
                    out.push_str(&quoted(&r, style));
                    out.push_str(&after);
                    let last = i + 1 == n;
                    match comma {
                        0 => {}
                        1 => out.push_str(",,"),
                        _ if !last || trailing => out.push(','),
                        _ => {}
                    }
                }
                if n == 0 && trailing {
                    out.push(',');
                }
                out.push(']');
                out
            })
    }

    /// `allow`/`deny` lines of a capability, or misplaced.
    fn lists() -> impl Strategy<Value = String> {
        prop::collection::vec(
            (
                prop_oneof![
                    Just("allow = "),
                    Just("deny = "),
                    Just("allow="),
                    Just("\"deny\" = "),
                    Just("methods = ")
                ],
                array(),
            ),
            0..3,
        )
        .prop_map(|v| {
            v.into_iter()
                .map(|(k, a)| format!("{k}{a}\n"))
                .collect::<String>()
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]

        #[test]
        fn reading_ahead_changes_no_outcome(
            caps in prop::collection::vec(lists(), 1..4),
            misplaced in prop::option::of(lists()),
        ) {
            let mut text = String::from(HEAD);
            if let Some(m) = &misplaced {
                text.push_str(m);
            }
            for (i, body) in caps.iter().enumerate() {
                text.push_str(&format!("[capabilities.c{i}]\nservice = \"s\"\n{body}"));
            }
            if let Err(e) = same(&text) {
                prop_assert!(false, "{}\n{}", text, e);
            }
        }
    }

    #[test]
    fn team_max_staleness_defaults_to_30s_and_is_located_when_bad() {
        let p = Path::new("airlock.toml");
        assert_eq!(
            Config::parse(p, "").unwrap().team.max_staleness,
            Duration::from_secs(30)
        );
        let c = Config::parse(p, "[team]\nmax_staleness = \"5s\"\n").unwrap();
        assert_eq!(c.team.max_staleness, Duration::from_secs(5));
        let e = Config::parse(p, "[team]\nmax_staleness = \"soon\"\n").unwrap_err();
        assert!(
            e.to_string()
                .starts_with("airlock.toml:2:17: max_staleness:"),
            "{e}"
        );
        assert!(Config::parse(p, "[team]\nstaleness = \"5s\"\n").is_err());
    }

    #[test]
    fn line_col_counts_chars() {
        let t = "a = 1\nbé = 2\n";
        assert_eq!(line_col(t, 0), (1, 1));
        assert_eq!(line_col(t, 6), (2, 1));
        assert_eq!(line_col(t, 10), (2, 4));
        assert_eq!(line_col(t, 10_000), (3, 1));
    }

    #[test]
    fn url_errors_carry_the_url_but_never_its_credentials() {
        let e = check_service_url("https://user:s3cret@api.example.com").unwrap_err();
        assert_eq!(
            e,
            ServiceUrlError::Credentials {
                host: "api.example.com".into()
            }
        );
        assert!(!format!("{e} {e:?}").contains("s3cret"));
        assert_eq!(
            check_service_url("ftp://x.example")
                .unwrap_err()
                .to_string(),
            "URL \"ftp://x.example\" must use https:// (or http:// for a local service)"
        );
        let e = check_token_url("https://id:s3cret@auth.example.com/token").unwrap_err();
        assert_eq!(e, TokenUrlError::Credentials);
        assert_eq!(
            check_token_url("http://auth.example.com/token")
                .unwrap_err()
                .to_string(),
            "\"http://auth.example.com/token\" must use https:// (http:// only for 127.0.0.1, ::1 or localhost)"
        );
        let e = check_token_url("not a url").unwrap_err();
        // The parse error is in the message and so not also a source: the CLI prints
        // the source chain on the same line.
        assert!(std::error::Error::source(&e).is_none());
        assert_eq!(
            e.to_string(),
            "invalid URL \"not a url\" (relative URL without a base); expected something like \"https://auth.example.com/oauth/token\""
        );
    }
}
