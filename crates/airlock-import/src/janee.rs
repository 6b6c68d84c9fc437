//! Reading a Janee home and mapping it onto airlock (see `docs/import-janee.md`).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use airlock_config::{
    Auth, AuthError, AuthKind, AuthValue, ConfigError, ServiceUrlError, check_service_url,
};
use airlock_home::is_valid_name;
use secrecy::SecretSlice;
use yaml_serde::{Mapping, Value};
use zeroize::Zeroizing;

use crate::crypto::MasterKey;
use crate::glob::{Kind, translate};
use crate::names::{sanitize, secret_name, unique};
use crate::{
    ImportError, JaneeFormat, JaneePlan, PlannedCapability, PlannedSecret, PlannedService,
};

/// Largest file read (Janee's files are a few kilobytes).
const MAX_FILE: u64 = 16 << 20;

/// Where Janee keeps its home: `$JANEE_HOME` when set (Janee ≥ 0.13 honours it),
/// else `~/.janee`. `None` when neither is known.
pub fn default_janee_dir() -> Option<PathBuf> {
    if let Some(h) = std::env::var_os("JANEE_HOME").filter(|v| !v.is_empty()) {
        return Some(PathBuf::from(h));
    }
    std::env::var_os("HOME")
        .filter(|v| !v.is_empty())
        .map(|h| PathBuf::from(h).join(".janee"))
}

fn read_text(path: &Path) -> Result<String, ImportError> {
    let io = |source| ImportError::Io {
        path: path.to_path_buf(),
        source,
    };
    let meta = std::fs::metadata(path).map_err(io)?;
    if meta.len() > MAX_FILE {
        return Err(ImportError::Malformed {
            path: path.to_path_buf(),
            line: None,
            message: format!(
                "{} bytes is far larger than any Janee file; is this the right file?",
                meta.len()
            ),
        });
    }
    let bytes = std::fs::read(path).map_err(io)?;
    String::from_utf8(bytes).map_err(|_| ImportError::Malformed {
        path: path.to_path_buf(),
        line: None,
        message: "not UTF-8 text".into(),
    })
}

/// Finds the line of a nested key in block-style YAML or pretty-printed JSON (what
/// Janee writes), for messages. Best effort: `None` when not found.
struct Locator {
    /// (indent, key, 1-based line)
    entries: Vec<(usize, String, usize)>,
}

impl Locator {
    fn new(text: &str) -> Locator {
        let mut entries = Vec::new();
        for (i, line) in text.lines().enumerate() {
            let body = line.trim_start_matches(' ');
            let indent = line.len() - body.len();
            if body.is_empty() || body.starts_with('#') {
                continue;
            }
            let key = match body.chars().next() {
                Some(q @ ('"' | '\'')) => body[1..].split(q).next().map(str::to_string),
                _ => body
                    .split_once(':')
                    .map(|(k, _)| k.trim_end().to_string())
                    .filter(|k| !k.is_empty() && !k.contains(' ') && !k.starts_with('-')),
            };
            if let Some(key) = key {
                entries.push((indent, key, i + 1));
            }
        }
        Locator { entries }
    }

    /// The line of `path` (keys from the top), or of its deepest ancestor found.
    fn line(&self, path: &[&str]) -> Option<usize> {
        let mut stack: Vec<(usize, &str)> = Vec::new();
        let mut best: Option<(usize, usize)> = None; // (depth, line)
        for (indent, key, line) in &self.entries {
            while stack.last().is_some_and(|(i, _)| i >= indent) {
                stack.pop();
            }
            stack.push((*indent, key));
            let depth = stack.len();
            if depth <= path.len()
                && stack.iter().zip(path).all(|((_, k), p)| k == p)
                && best.is_none_or(|(d, _)| depth > d)
            {
                best = Some((depth, *line));
                if depth == path.len() {
                    break;
                }
            }
        }
        best.map(|(_, l)| l)
    }
}

/// A scalar as text (Janee writes ids either as strings or numbers).
fn scalar(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

fn get<'a>(m: &'a Mapping, key: &str) -> Option<&'a Value> {
    m.get(key).filter(|v| !v.is_null())
}

fn str_list(v: Option<&Value>) -> Option<Vec<String>> {
    v?.as_sequence()?.iter().map(scalar).collect()
}

/// Which field of a service's credential a value is.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum FieldKey {
    /// `auth.<field>` / `secrets.<svc>.<field>`.
    Field(String),
    /// `auth.headers.<name>` / `secrets.<svc>.headers.<name>`.
    Header(String),
}

impl FieldKey {
    /// The `part` of the vault name for a value no airlock auth uses.
    fn part(&self) -> String {
        match self {
            FieldKey::Field(f) => snake(f),
            FieldKey::Header(h) => h.to_ascii_lowercase(),
        }
    }
}

fn snake(camel: &str) -> String {
    let mut out = String::new();
    for c in camel.chars() {
        if c.is_ascii_uppercase() {
            if !out.is_empty() {
                out.push('_');
            }
            out.push(c.to_ascii_lowercase());
        } else {
            out.push(c);
        }
    }
    out
}

/// The fields Janee seals, per auth type (`encryptServiceAuth` / `extractSecrets`
/// in Janee's `src/cli/config-yaml.ts`; aws-sigv4 per its 0.15.0 changelog).
fn sealed_fields(auth_type: &str) -> &'static [&'static str] {
    match auth_type {
        "bearer" => &["key"],
        "hmac-mexc" | "hmac-bybit" | "hmac-okx" | "hmac" => &["apiKey", "apiSecret", "passphrase"],
        "service-account" => &["credentials"],
        "github-app" => &["privateKey"],
        "oauth1a-twitter" => &[
            "consumerKey",
            "consumerSecret",
            "accessToken",
            "accessTokenSecret",
        ],
        "aws-sigv4" => &["accessKeyId", "secretAccessKey", "sessionToken"],
        _ => &[],
    }
}

/// Every field name that holds a secret in some auth type.
const ALL_SECRET_FIELDS: &[&str] = &[
    "key",
    "apiKey",
    "apiSecret",
    "passphrase",
    "credentials",
    "privateKey",
    "consumerKey",
    "consumerSecret",
    "accessToken",
    "accessTokenSecret",
    "accessKeyId",
    "secretAccessKey",
    "sessionToken",
    "headers",
];

/// One sealed value to open.
struct Sealed {
    service: usize,
    field: FieldKey,
    entry: String,
    path: PathBuf,
    line: Option<usize>,
    text: String,
}

/// A Janee service as read, before mapping.
struct RawService {
    janee_name: String,
    name: String,
    base_url: Option<String>,
    auth: Mapping,
    auth_type: String,
    ownership: Option<Mapping>,
    values: BTreeMap<FieldKey, Zeroizing<Vec<u8>>>,
    /// Set when the service is not usable at all (reason).
    broken: Option<NotImported>,
}

/// Why a Janee service or capability is left out of the plan: the end of its
/// warning ("service \"x\": not imported: …").
#[derive(Debug, thiserror::Error)]
enum NotImported {
    #[error("its entry is not a mapping")]
    NotAMapping,
    #[error("it has no `auth` mapping")]
    NoAuth,
    /// `field` is under `auth.` (`key`, `headers.X-Key`).
    #[error("`auth.{field}` is not a string")]
    NotAString { field: String },
    #[error("it has no `baseUrl`")]
    NoBaseUrl,
    #[error("`baseUrl`: {0}")]
    BaseUrl(ServiceUrlError),
    #[error("`auth.type` is missing")]
    NoAuthType,
    #[error("`auth.{field}` is missing")]
    MissingField { field: String },
    #[error("{} is missing", describe(key))]
    MissingValue { key: FieldKey },
    #[error("its `headers` auth has no header")]
    NoHeader,
    #[error("it sends {count} headers, and airlock's `header` auth sends one")]
    ManyHeaders { count: usize },
    #[error("auth type `{auth_type}` is unknown to this importer")]
    UnknownAuthType { auth_type: String },
    #[error(
        "its private key is read from `pemFile`, which is not imported; add it with \
         `airlock add NAME --auth github-app`"
    )]
    PemFile,
    #[error("`auth.{field}` {value:?} is not a number")]
    NotANumber { field: String, value: String },
    #[error("`auth.{field}` is missing or empty; airlock needs at least one")]
    EmptyList { field: String },
    #[error(
        "auth type `{auth_type}` signs requests the way one exchange wants, and airlock has no such signer"
    )]
    ExchangeSigner { auth_type: String },
    #[error(
        "auth type `basic` is listed in Janee's README, but the Janee sources read for this \
         importer do not say how it is stored; add it with `airlock add NAME --auth basic`"
    )]
    Basic,
    #[error("{0}")]
    Auth(AuthError),
    /// airlock's own parser refuses what the mapping produced.
    #[error("{0}")]
    Config(ConfigError),
    #[error("it has no `service`")]
    NoService,
    #[error("its service \"{service}\" is not in config.yaml")]
    ServiceNotInConfig { service: String },
    #[error("its service \"{service}\" was not imported")]
    ServiceLeftOut { service: String },
    #[error(
        "exec mode (allowCommands: {}) is not imported; write it in airlock.toml with \
         mode = \"exec\", commands and env (`{{{{secret}}}}` where Janee has `{{{{credential}}}}`)",
        if commands.is_empty() { "none".to_string() } else { commands.join(", ") }
    )]
    ExecMode { commands: Vec<String> },
    #[error("`rules` is not a mapping of allow/deny lists")]
    RulesNotAMapping,
    #[error("`rules.{key}` is not a list of \"METHOD PATH\" strings")]
    RulesNotAList { key: String },
}

/// Reads the Janee home at `dir` into an import plan. Writes nothing.
///
/// # Errors
///
/// [`ImportError`] when the directory, `config.yaml` or the master key is missing
/// or unusable, a file is malformed, the version is unknown, or a sealed value does
/// not decrypt (the error names the entry). Problems with single services,
/// capabilities or rules are not errors: they become [`JaneePlan::warnings`].
pub fn read_janee(dir: &Path) -> Result<JaneePlan, ImportError> {
    if !dir.is_dir() {
        return Err(ImportError::MissingDir {
            path: dir.to_path_buf(),
        });
    }
    let config_path = dir.join("config.yaml");
    if !config_path.is_file() {
        let db = dir.join("config.db");
        if db.is_file() {
            return Err(ImportError::UnsupportedStore {
                path: db,
                what: "this Janee keeps its configuration in SQLite (config.db), which this \
                       importer does not read; it reads config.yaml (+ credentials.json). If Janee \
                       left config.yaml.migrated next to it, that is the pre-migration state: copy \
                       it to config.yaml in a scratch directory with credentials.json and import \
                       from there"
                    .into(),
            });
        }
        let json = dir.join("config.json");
        if json.is_file() {
            return Err(ImportError::UnsupportedStore {
                path: json,
                what: "this is the config.json of Janee before 0.2; run any `janee` command once \
                       (Janee migrates it to config.yaml), then import again"
                    .into(),
            });
        }
        return Err(ImportError::MissingConfig {
            dir: dir.to_path_buf(),
        });
    }
    let text = read_text(&config_path)?;
    let malformed = |line, message: String| ImportError::Malformed {
        path: config_path.clone(),
        line,
        message,
    };
    let doc: Value = yaml_serde::from_str(&text).map_err(|e| {
        malformed(
            e.location().map(|l| l.line()),
            format!("not valid YAML ({e})"),
        )
    })?;
    let empty = Mapping::new();
    let top = match &doc {
        Value::Mapping(m) => m,
        Value::Null => &empty,
        _ => {
            return Err(malformed(
                None,
                "the top level must be a mapping (version:, services:, capabilities:, …)".into(),
            ));
        }
    };
    let loc = Locator::new(&text);

    if let Some(v) = get(top, "version") {
        let found = scalar(v).unwrap_or_else(|| "(not a scalar)".into());
        if !matches!(found.as_str(), "0.2.0" | "0.3.0") {
            return Err(ImportError::UnsupportedVersion {
                path: config_path.clone(),
                line: loc.line(&["version"]),
                found,
            });
        }
    }

    let mut warnings = Vec::new();

    // The master key, and where the sealed values live (Janee's `isLegacyFormat`:
    // a non-empty string `masterKey` in config.yaml means the inline layout).
    let creds_path = dir.join("credentials.json");
    let (format, key_path, key_text, key_line, creds, creds_loc) = match top.get("masterKey") {
        Some(Value::String(k)) if !k.is_empty() => (
            JaneeFormat::Inline,
            config_path.clone(),
            k.clone(),
            loc.line(&["masterKey"]),
            None,
            None,
        ),
        None | Some(Value::Null) | Some(Value::String(_)) => {
            if !creds_path.is_file() {
                return Err(ImportError::MissingMasterKey {
                    path: creds_path,
                    detail: "credentials.json is missing".into(),
                });
            }
            let ctext = read_text(&creds_path)?;
            let cjson: serde_json::Value =
                serde_json::from_str(&ctext).map_err(|e| ImportError::Malformed {
                    path: creds_path.clone(),
                    line: Some(e.line()),
                    message: format!("not valid JSON ({e})"),
                })?;
            let cloc = Locator::new(&ctext);
            let key = match cjson.get("masterKey") {
                Some(serde_json::Value::String(k)) if !k.is_empty() => k.clone(),
                _ => {
                    return Err(ImportError::MissingMasterKey {
                        path: creds_path,
                        detail: "credentials.json has no masterKey string".into(),
                    });
                }
            };
            let line = cloc.line(&["masterKey"]);
            (
                JaneeFormat::Split,
                creds_path.clone(),
                key,
                line,
                Some(cjson),
                Some(cloc),
            )
        }
        Some(_) => {
            return Err(ImportError::UnsupportedStore {
                path: config_path.clone(),
                what: "masterKey is not a string: only the base64 key `janee init` writes is \
                       supported (keychain or password-derived keys are not)"
                    .into(),
            });
        }
    };
    let master = MasterKey::from_base64(&key_text).map_err(|p| ImportError::InvalidMasterKey {
        path: key_path.clone(),
        line: key_line,
        problem: p.to_string(),
    })?;
    drop(key_text);

    // Settings that change what an imported capability may do.
    let server = get(top, "server").and_then(Value::as_mapping);
    let default_restricted = server
        .and_then(|s| get(s, "defaultAccess"))
        .and_then(Value::as_str)
        == Some("restricted");
    let default_deny = get(top, "defaultPolicy").and_then(Value::as_str) == Some("deny");
    for (k, v) in top {
        let k = scalar(k).unwrap_or_default();
        match k.as_str() {
            "version" | "masterKey" | "server" | "services" | "capabilities" | "defaultPolicy" => {}
            "llm" if !v.is_null() => warnings.push(
                "llm: not imported (Janee does not use it at runtime); if it holds an API key, \
                 add it with `airlock secret set`"
                    .into(),
            ),
            _ => warnings.push(format!(
                "top-level `{k}`: not imported (unknown to this importer)"
            )),
        }
    }

    // Services, as read.
    let services_map = match get(top, "services") {
        None => Mapping::new(),
        Some(Value::Mapping(m)) => m.clone(),
        Some(_) => {
            return Err(malformed(
                loc.line(&["services"]),
                "`services` must be a mapping of name: settings".into(),
            ));
        }
    };
    let creds_secrets = creds
        .as_ref()
        .and_then(|c| c.get("secrets"))
        .and_then(serde_json::Value::as_object);
    let mut service_names = BTreeSet::new();
    let mut raws: Vec<RawService> = Vec::new();
    let mut sealed: Vec<Sealed> = Vec::new();
    for (k, v) in &services_map {
        let janee_name = scalar(k).unwrap_or_else(|| format!("{k:?}"));
        let name = unique(&sanitize(&janee_name), &mut service_names);
        if name != janee_name {
            warnings.push(format!(
                "service \"{janee_name}\": renamed \"{name}\" (airlock names: {})",
                airlock_home::NAME_RULE
            ));
        }
        let idx = raws.len();
        let mut raw = RawService {
            janee_name: janee_name.clone(),
            name,
            base_url: None,
            auth: Mapping::new(),
            auth_type: String::new(),
            ownership: None,
            values: BTreeMap::new(),
            broken: None,
        };
        let Some(svc) = v.as_mapping() else {
            raw.broken = Some(NotImported::NotAMapping);
            raws.push(raw);
            continue;
        };
        raw.base_url = get(svc, "baseUrl").and_then(scalar);
        raw.ownership = get(svc, "ownership").and_then(Value::as_mapping).cloned();
        for (fk, _) in svc {
            let fk = scalar(fk).unwrap_or_default();
            if !matches!(fk.as_str(), "baseUrl" | "auth" | "ownership" | "testPath") {
                warnings.push(format!(
                    "service \"{janee_name}\": field `{fk}` not imported (unknown to this importer)"
                ));
            }
        }
        match get(svc, "auth").and_then(Value::as_mapping) {
            Some(a) => raw.auth = a.clone(),
            None => raw.broken = Some(NotImported::NoAuth),
        }
        raw.auth_type = get(&raw.auth, "type").and_then(scalar).unwrap_or_default();

        match format {
            JaneeFormat::Inline => {
                for field in sealed_fields(&raw.auth_type) {
                    if let Some(v) = get(&raw.auth, field) {
                        let Some(text) = scalar(v) else {
                            raw.broken = Some(NotImported::NotAString {
                                field: (*field).to_string(),
                            });
                            continue;
                        };
                        sealed.push(Sealed {
                            service: idx,
                            field: FieldKey::Field((*field).to_string()),
                            entry: format!("services.{janee_name}.auth.{field}"),
                            path: config_path.clone(),
                            line: loc.line(&["services", &janee_name, "auth", field]),
                            text,
                        });
                    }
                }
                if raw.auth_type == "headers"
                    && let Some(h) = get(&raw.auth, "headers").and_then(Value::as_mapping)
                {
                    for (hk, hv) in h {
                        let hname = scalar(hk).unwrap_or_default();
                        let Some(text) = scalar(hv) else {
                            raw.broken = Some(NotImported::NotAString {
                                field: format!("headers.{hname}"),
                            });
                            continue;
                        };
                        sealed.push(Sealed {
                            service: idx,
                            field: FieldKey::Header(hname.clone()),
                            entry: format!("services.{janee_name}.auth.headers.{hname}"),
                            path: config_path.clone(),
                            line: loc.line(&["services", &janee_name, "auth", "headers", &hname]),
                            text,
                        });
                    }
                }
            }
            JaneeFormat::Split => {
                let cl = creds_loc.as_ref();
                if let Some(entry) = creds_secrets.and_then(|s| s.get(&janee_name)) {
                    let Some(fields) = entry.as_object() else {
                        return Err(ImportError::Malformed {
                            path: creds_path.clone(),
                            line: cl.and_then(|l| l.line(&["secrets", &janee_name])),
                            message: format!(
                                "secrets.{janee_name} must be an object of sealed values"
                            ),
                        });
                    };
                    for (field, value) in fields {
                        match value {
                            serde_json::Value::String(text) => sealed.push(Sealed {
                                service: idx,
                                field: FieldKey::Field(field.clone()),
                                entry: format!("secrets.{janee_name}.{field}"),
                                path: creds_path.clone(),
                                line: cl.and_then(|l| l.line(&["secrets", &janee_name, field])),
                                text: text.clone(),
                            }),
                            serde_json::Value::Object(h) if field == "headers" => {
                                for (hname, hv) in h {
                                    let Some(text) = hv.as_str() else {
                                        return Err(ImportError::Malformed {
                                            path: creds_path.clone(),
                                            line: cl.and_then(|l| {
                                                l.line(&["secrets", &janee_name, "headers", hname])
                                            }),
                                            message: format!(
                                                "secrets.{janee_name}.headers.{hname} must be a string"
                                            ),
                                        });
                                    };
                                    sealed.push(Sealed {
                                        service: idx,
                                        field: FieldKey::Header(hname.clone()),
                                        entry: format!("secrets.{janee_name}.headers.{hname}"),
                                        path: creds_path.clone(),
                                        line: cl.and_then(|l| {
                                            l.line(&["secrets", &janee_name, "headers", hname])
                                        }),
                                        text: text.to_string(),
                                    });
                                }
                            }
                            _ => {
                                return Err(ImportError::Malformed {
                                    path: creds_path.clone(),
                                    line: cl.and_then(|l| l.line(&["secrets", &janee_name, field])),
                                    message: format!(
                                        "secrets.{janee_name}.{field} must be a sealed string"
                                    ),
                                });
                            }
                        }
                    }
                }
                // A secret field left in config.yaml: Janee (split layout) uses it as is,
                // in clear text, unless credentials.json has the same field.
                let sealed_here: BTreeSet<FieldKey> = sealed
                    .iter()
                    .filter(|s| s.service == idx)
                    .map(|s| s.field.clone())
                    .collect();
                for field in ALL_SECRET_FIELDS {
                    let Some(v) = get(&raw.auth, field) else {
                        continue;
                    };
                    let clear: Vec<(FieldKey, String)> = if *field == "headers" {
                        v.as_mapping()
                            .map(|h| {
                                h.iter()
                                    .filter_map(|(k, v)| {
                                        Some((FieldKey::Header(scalar(k)?), scalar(v)?))
                                    })
                                    .collect()
                            })
                            .unwrap_or_default()
                    } else {
                        scalar(v)
                            .map(|t| vec![(FieldKey::Field((*field).to_string()), t)])
                            .unwrap_or_default()
                    };
                    for (fk, text) in clear {
                        if sealed_here.contains(&fk) {
                            continue;
                        }
                        warnings.push(format!(
                            "service \"{janee_name}\": `auth.{}` was in config.yaml in clear text \
                             (Janee used it as is); imported — rotate it, it was stored unencrypted",
                            match &fk {
                                FieldKey::Field(f) => f.clone(),
                                FieldKey::Header(h) => format!("headers.{h}"),
                            }
                        ));
                        raw.values.insert(fk, Zeroizing::new(text.into_bytes()));
                    }
                }
            }
        }
        raws.push(raw);
    }
    if let Some(secrets) = creds_secrets {
        for name in secrets.keys() {
            if !services_map.contains_key(name.as_str()) {
                warnings.push(format!(
                    "credentials.json: secrets.{name} belongs to no service in config.yaml \
                     (Janee ignores it); not imported"
                ));
            }
        }
    }

    // Open every sealed value; all or nothing.
    let total = sealed.len();
    let mut failures = Vec::new();
    for s in sealed {
        match master.open(&s.text) {
            Ok(v) => {
                raws[s.service].values.insert(s.field, v);
            }
            Err(p) => failures.push((s, p)),
        }
    }
    if let Some((first, problem)) = failures.first() {
        if failures.len() == total && total >= 2 {
            return Err(ImportError::WrongMasterKey {
                key_path,
                values_path: first.path.clone(),
                count: total,
            });
        }
        return Err(ImportError::ValueAuthentication {
            path: first.path.clone(),
            line: first.line,
            entry: first.entry.clone(),
            problem: problem.to_string(),
        });
    }

    // Map services.
    let mut secret_names: BTreeSet<String> = BTreeSet::new();
    let mut services = Vec::new();
    let mut unmapped = Vec::new();
    let mut imported: BTreeMap<String, (usize, String)> = BTreeMap::new(); // janee → (raw, airlock)
    for (i, raw) in raws.iter_mut().enumerate() {
        let result = match raw.broken.take() {
            Some(why) => Err(why),
            None => map_service(raw, &mut secret_names),
        };
        // Check with airlock's own parser, so the CLI is never handed a service that
        // airlock.toml would refuse; a refused one keeps its secrets, unused.
        let mut names = Vec::new();
        let result = match result {
            Ok(s) => match check_config(&s, None) {
                Ok(()) => Ok(s),
                Err(why) => {
                    for (name, value) in s.secrets {
                        names.push(name.clone());
                        raw_values_back(raw, name, value, &mut unmapped, format);
                    }
                    Err(why)
                }
            },
            Err(why) => Err(why),
        };
        match result {
            Ok(s) => {
                imported.insert(raw.janee_name.clone(), (i, s.name.clone()));
                // Values the auth does not use are kept, unused.
                for (fk, v) in std::mem::take(&mut raw.values) {
                    let name = unique(&secret_name(&raw.name, Some(&fk.part())), &mut secret_names);
                    warnings.push(format!(
                        "service \"{}\": {} is not used by airlock's {} auth; stored as secret \"{name}\"",
                        raw.janee_name,
                        describe(&fk),
                        s.auth.type_name()
                    ));
                    unmapped.push(planned_secret(name, entry_of(raw, &fk, format), v));
                }
                services.push(s);
            }
            Err(why) => {
                for (fk, v) in std::mem::take(&mut raw.values) {
                    let name = unique(&secret_name(&raw.name, Some(&fk.part())), &mut secret_names);
                    names.push(name.clone());
                    unmapped.push(planned_secret(name, entry_of(raw, &fk, format), v));
                }
                let kept = if names.is_empty() {
                    String::new()
                } else {
                    format!(
                        "; its secrets are stored as {} (used by no service)",
                        names
                            .iter()
                            .map(|n| format!("\"{n}\""))
                            .collect::<Vec<_>>()
                            .join(", ")
                    )
                };
                warnings.push(format!(
                    "service \"{}\": not imported: {why}{kept}",
                    raw.janee_name
                ));
            }
        }
    }

    // Capabilities.
    let mut capabilities = Vec::new();
    let mut cap_names = BTreeSet::new();
    let mut agents_used = false;
    match get(top, "capabilities") {
        None => {}
        Some(Value::Mapping(caps)) => {
            for (k, v) in caps {
                let janee_name = scalar(k).unwrap_or_else(|| format!("{k:?}"));
                match map_capability(
                    &janee_name,
                    v,
                    &services_map,
                    &imported,
                    &raws,
                    default_restricted,
                    default_deny,
                    &mut warnings,
                ) {
                    Ok(mut cap) => {
                        let name = unique(&sanitize(&janee_name), &mut cap_names);
                        if name != janee_name {
                            warnings.push(format!(
                                "capability \"{janee_name}\": renamed \"{name}\" (airlock names: {})",
                                airlock_home::NAME_RULE
                            ));
                        }
                        cap.name = name;
                        let svc = services
                            .iter()
                            .find(|s: &&PlannedService| s.name == cap.service);
                        match svc.map(|s| validate_cap(s, &cap)) {
                            Some(Ok(())) => {
                                agents_used |= cap.agents.as_ref().is_some_and(|a| !a.is_empty());
                                capabilities.push(cap);
                            }
                            Some(Err(why)) => warnings.push(format!(
                                "capability \"{janee_name}\": not imported: {why}"
                            )),
                            None => warnings.push(format!(
                                "capability \"{janee_name}\": not imported: its service was not imported"
                            )),
                        }
                    }
                    Err(why) => {
                        warnings.push(format!("capability \"{janee_name}\": not imported: {why}"));
                    }
                }
            }
        }
        Some(Value::Sequence(_)) => warnings.push(
            "capabilities: written as a list, which Janee reads as capabilities named 0, 1, …; \
             not imported — recreate them with `airlock cap add`"
                .into(),
        ),
        Some(_) => {
            return Err(malformed(
                loc.line(&["capabilities"]),
                "`capabilities` must be a mapping of name: settings".into(),
            ));
        }
    }
    if agents_used {
        warnings.push(
            "agents: Janee matched allowedAgents against the client's self-declared name; airlock \
             `agents` match only trusted identities: start the server with `airlock serve --agent \
             NAME` or issue `airlock token issue --agent NAME`"
                .into(),
        );
    }

    Ok(JaneePlan {
        config_path,
        key_path,
        format,
        services,
        capabilities,
        unmapped_secrets: unmapped,
        warnings,
    })
}

fn describe(fk: &FieldKey) -> String {
    match fk {
        FieldKey::Field(f) => format!("`auth.{f}`"),
        FieldKey::Header(h) => format!("header `{h}`"),
    }
}

fn entry_of(raw: &RawService, fk: &FieldKey, format: JaneeFormat) -> String {
    let field = match fk {
        FieldKey::Field(f) => f.clone(),
        FieldKey::Header(h) => format!("headers.{h}"),
    };
    match format {
        JaneeFormat::Inline => format!("services.{}.auth.{field}", raw.janee_name),
        JaneeFormat::Split => format!("secrets.{}.{field}", raw.janee_name),
    }
}

/// A planned service's secret that will not be used after all: kept as unmapped.
fn raw_values_back(
    raw: &RawService,
    name: String,
    value: SecretSlice<u8>,
    unmapped: &mut Vec<PlannedSecret>,
    format: JaneeFormat,
) {
    let entry = match format {
        JaneeFormat::Inline => format!("services.{}.auth", raw.janee_name),
        JaneeFormat::Split => format!("secrets.{}", raw.janee_name),
    };
    unmapped.push(PlannedSecret {
        name,
        janee_entry: entry,
        value,
    });
}

fn planned_secret(
    name: String,
    janee_entry: String,
    mut value: Zeroizing<Vec<u8>>,
) -> PlannedSecret {
    PlannedSecret {
        name,
        janee_entry,
        value: SecretSlice::from(std::mem::take(&mut *value)),
    }
}

/// Where an airlock auth field's value is in a Janee service's `auth`.
#[derive(Clone, Copy)]
enum JaneeField {
    /// A sealed value that must be there.
    Sealed(&'static str),
    /// A sealed value that may be there.
    OptSealed(&'static str),
    /// A plain string.
    Plain(&'static str),
    /// A plain number (or digit string).
    Number(&'static str),
    /// A list of strings, at least one.
    List(&'static str),
}

/// The Janee auth types that map field by field onto an airlock type of
/// `airlock_config::AUTH_TABLE`: (airlock field, where it is in Janee), in the
/// table's field order. `headers` is mapped by hand (`map_service`).
fn janee_auth(janee_type: &str) -> Option<(AuthKind, &'static [(&'static str, JaneeField)])> {
    use JaneeField::{List, Number, OptSealed, Plain, Sealed};
    Some(match janee_type {
        "bearer" => (AuthKind::Bearer, &[("secret", Sealed("key"))]),
        "service-account" => (
            AuthKind::GcpServiceAccount,
            &[
                ("secret", Sealed("credentials")),
                ("scopes", List("scopes")),
            ],
        ),
        "github-app" => (
            AuthKind::GitHubApp,
            &[
                ("app_id", Plain("appId")),
                ("installation_id", Number("installationId")),
                ("secret", Sealed("privateKey")),
            ],
        ),
        "oauth1a-twitter" => (
            AuthKind::OAuth1,
            &[
                ("consumer_key", Sealed("consumerKey")),
                ("consumer_secret", Sealed("consumerSecret")),
                ("token", Sealed("accessToken")),
                ("token_secret", Sealed("accessTokenSecret")),
            ],
        ),
        "aws-sigv4" => (
            AuthKind::AwsSigV4,
            &[
                ("region", Plain("region")),
                ("aws_service", Plain("awsService")),
                ("access_key_id", Sealed("accessKeyId")),
                ("secret_access_key", Sealed("secretAccessKey")),
                ("session_token", OptSealed("sessionToken")),
            ],
        ),
        _ => return None,
    })
}

/// Maps one Janee service onto an airlock auth, taking the values it uses out of
/// `raw.values`. On `Err` nothing is taken.
fn map_service(
    raw: &mut RawService,
    secret_names: &mut BTreeSet<String>,
) -> Result<PlannedService, NotImported> {
    let base = raw.base_url.clone().ok_or(NotImported::NoBaseUrl)?;
    check_service_url(&base).map_err(NotImported::BaseUrl)?;
    let url = base.trim_end_matches('/').to_string();
    let field = |f: &str| FieldKey::Field(f.to_string());
    let has = |raw: &RawService, f: &str| raw.values.contains_key(&field(f));
    let missing = |f: &str| NotImported::MissingField {
        field: f.to_string(),
    };
    let need = |raw: &RawService, fields: &[&str]| -> Result<(), NotImported> {
        match fields.iter().find(|f| !has(raw, f)) {
            Some(f) => Err(missing(f)),
            None => Ok(()),
        }
    };
    let plain = |raw: &RawService, f: &str| -> Result<String, NotImported> {
        get(&raw.auth, f)
            .and_then(scalar)
            .filter(|s| !s.is_empty())
            .ok_or_else(|| missing(f))
    };
    let svc = raw.name.clone();
    // (airlock part, Janee field) pairs to take, in auth.secrets() order.
    let mut name_of = |part: Option<&str>| unique(&secret_name(&svc, part), secret_names);
    let (auth, take): (Auth, Vec<(String, FieldKey)>) = match raw.auth_type.as_str() {
        "headers" => {
            let headers: Vec<FieldKey> = raw
                .values
                .keys()
                .filter(|k| matches!(k, FieldKey::Header(_)))
                .cloned()
                .collect();
            let [FieldKey::Header(h)] = headers.as_slice() else {
                return Err(if headers.is_empty() {
                    NotImported::NoHeader
                } else {
                    NotImported::ManyHeaders {
                        count: headers.len(),
                    }
                });
            };
            let key = FieldKey::Header(h.clone());
            let n = name_of(None);
            let auth = if h.eq_ignore_ascii_case("authorization") {
                // Split a scheme ("Bearer ", "Token ") off the value, so the vault holds
                // only the credential (and output scrubbing finds it).
                let value = &raw.values[&key];
                let text = std::str::from_utf8(value).unwrap_or_default();
                match text.split_once(' ') {
                    Some((scheme, rest)) if !scheme.is_empty() && !rest.is_empty() => {
                        let scheme = scheme.to_string();
                        let rest = Zeroizing::new(rest.as_bytes().to_vec());
                        raw.values.insert(key.clone(), rest);
                        if scheme.eq_ignore_ascii_case("bearer") {
                            Auth::Bearer { secret: n.clone() }
                        } else {
                            Auth::Header {
                                header_name: h.clone(),
                                prefix: format!("{scheme} "),
                                secret: n.clone(),
                            }
                        }
                    }
                    _ => Auth::Header {
                        header_name: h.clone(),
                        prefix: String::new(),
                        secret: n.clone(),
                    },
                }
            } else {
                Auth::Header {
                    header_name: h.clone(),
                    prefix: String::new(),
                    secret: n.clone(),
                }
            };
            (auth, vec![(n, key)])
        }
        janee_type if janee_auth(janee_type).is_some() => {
            let Some((kind, sources)) = janee_auth(janee_type) else {
                return Err(NotImported::UnknownAuthType {
                    auth_type: janee_type.to_string(),
                });
            };
            if kind == AuthKind::GitHubApp
                && !has(raw, "privateKey")
                && get(&raw.auth, "pemFile").is_some()
            {
                return Err(NotImported::PemFile);
            }
            // Every required sealed value first, then the plain parameters.
            let sealed: Vec<&str> = sources
                .iter()
                .filter_map(|(_, s)| match s {
                    JaneeField::Sealed(f) => Some(*f),
                    _ => None,
                })
                .collect();
            need(raw, &sealed)?;
            let ty = kind.auth_type();
            let mut values = Vec::new();
            for (name, source) in sources.iter() {
                let value = match source {
                    JaneeField::Sealed(_) | JaneeField::OptSealed(_) => continue,
                    JaneeField::Plain(f) => AuthValue::Text(plain(raw, f)?),
                    JaneeField::Number(f) => {
                        let text = plain(raw, f)?;
                        AuthValue::Number(text.parse().map_err(|_| NotImported::NotANumber {
                            field: (*f).to_string(),
                            value: text.clone(),
                        })?)
                    }
                    JaneeField::List(f) => {
                        let list = str_list(get(&raw.auth, f)).unwrap_or_default();
                        if list.is_empty() {
                            return Err(NotImported::EmptyList {
                                field: (*f).to_string(),
                            });
                        }
                        AuthValue::List(list)
                    }
                };
                values.push((name.to_string(), value));
            }
            // Vault names in the table's field order (`auth.secrets()` order).
            let mut take = Vec::new();
            for spec in ty.fields.iter().filter(|f| f.secret) {
                let Some((_, source)) = sources.iter().find(|(f, _)| *f == spec.name) else {
                    continue;
                };
                let (JaneeField::Sealed(from) | JaneeField::OptSealed(from)) = *source else {
                    continue;
                };
                if !has(raw, from) {
                    continue;
                }
                let n = name_of(spec.vault_part());
                values.push((spec.name.to_string(), AuthValue::Text(n.clone())));
                take.push((n, field(from)));
            }
            (
                Auth::from_values(kind, values).map_err(NotImported::Auth)?,
                take,
            )
        }
        t @ ("hmac-mexc" | "hmac-bybit" | "hmac-okx" | "hmac") => {
            return Err(NotImported::ExchangeSigner {
                auth_type: t.to_string(),
            });
        }
        "basic" => {
            return Err(NotImported::Basic);
        }
        "" => return Err(NotImported::NoAuthType),
        t => {
            return Err(NotImported::UnknownAuthType {
                auth_type: t.to_string(),
            });
        }
    };
    let mut secrets = Vec::new();
    for (name, key) in take {
        let mut v = raw
            .values
            .remove(&key)
            .ok_or_else(|| NotImported::MissingValue { key: key.clone() })?;
        secrets.push((name, SecretSlice::from(std::mem::take(&mut *v))));
    }
    Ok(PlannedService {
        name: raw.name.clone(),
        janee_name: raw.janee_name.clone(),
        url,
        auth,
        secrets,
    })
}

fn validate_cap(s: &PlannedService, cap: &PlannedCapability) -> Result<(), NotImported> {
    check_config(s, Some(cap))
}

fn check_config(s: &PlannedService, cap: Option<&PlannedCapability>) -> Result<(), NotImported> {
    use toml_edit::{DocumentMut, Item, Table, Value as TValue, value};
    let mut doc = DocumentMut::new();
    let mut svc = Table::new();
    svc.insert("url", value(s.url.as_str()));
    svc.insert(
        "auth",
        Item::Value(TValue::InlineTable(s.auth.to_inline_table())),
    );
    let mut services = Table::new();
    services.insert(&s.name, Item::Table(svc));
    doc.insert("services", Item::Table(services));
    if let Some(c) = cap {
        let mut caps = Table::new();
        caps.insert(&c.name, Item::Table(c.to_spec().to_table()));
        doc.insert("capabilities", Item::Table(caps));
    }
    airlock_config::Config::parse(Path::new("airlock.toml"), &doc.to_string())
        .map(drop)
        .map_err(NotImported::Config)
}

/// Janee's fallback TTL, for a missing or unreadable `ttl`.
const JANEE_DEFAULT_TTL: &str = "1h";

/// Janee's `parseTTL`: `^(\d+)(s|m|h|d)$`; `None` for anything else (or nothing),
/// which Janee reads as [`JANEE_DEFAULT_TTL`].
fn ttl_of(v: Option<&Value>) -> Option<String> {
    let s = v.and_then(scalar)?;
    let (digits, unit) = s.split_at(s.len().saturating_sub(1));
    if !digits.is_empty()
        && digits.bytes().all(|b| b.is_ascii_digit())
        && matches!(unit, "s" | "m" | "h" | "d")
        && airlock_config::parse_duration(&s).is_ok()
    {
        Some(s)
    } else {
        None
    }
}

/// Maps one capability (its `name` is set by the caller).
#[allow(clippy::too_many_arguments)]
fn map_capability(
    janee_name: &str,
    v: &Value,
    services_map: &Mapping,
    imported: &BTreeMap<String, (usize, String)>,
    raws: &[RawService],
    default_restricted: bool,
    default_deny: bool,
    warnings: &mut Vec<String>,
) -> Result<PlannedCapability, NotImported> {
    let cap = v.as_mapping().ok_or(NotImported::NotAMapping)?;
    let service = get(cap, "service")
        .and_then(scalar)
        .ok_or(NotImported::NoService)?;
    if !services_map.contains_key(service.as_str()) {
        return Err(NotImported::ServiceNotInConfig { service });
    }
    let Some((raw_idx, airlock_service)) = imported.get(&service) else {
        return Err(NotImported::ServiceLeftOut { service });
    };
    let raw = &raws[*raw_idx];
    if get(cap, "mode").and_then(Value::as_str) == Some("exec") {
        return Err(NotImported::ExecMode {
            commands: str_list(get(cap, "allowCommands")).unwrap_or_default(),
        });
    }
    for (k, _) in cap {
        let k = scalar(k).unwrap_or_default();
        if !matches!(
            k.as_str(),
            "service"
                | "ttl"
                | "autoApprove"
                | "requiresReason"
                | "rules"
                | "allowedAgents"
                | "mode"
                | "access"
        ) {
            warnings.push(format!(
                "capability \"{janee_name}\": field `{k}` not imported (unknown to this importer)"
            ));
        }
    }
    let ttl = match ttl_of(get(cap, "ttl")) {
        Some(t) => t,
        None => {
            let t = JANEE_DEFAULT_TTL.to_string();
            warnings.push(format!(
                "capability \"{janee_name}\": ttl missing or not like \"30m\"; imported as \"{t}\", \
                 Janee's fallback"
            ));
            t
        }
    };
    let requires_reason = get(cap, "requiresReason").and_then(Value::as_bool) == Some(true);
    let approval = get(cap, "autoApprove").and_then(Value::as_bool) == Some(false);
    if approval {
        warnings.push(format!(
            "capability \"{janee_name}\": `autoApprove: false` imported as `approval = true`: \
             requests wait for `airlock approve` (remove `approval` to run unattended)"
        ));
    }

    // Rules (Janee `checkRules`: no `allow` and no `deny` → default policy; an `allow`
    // list, even empty, means "no match → deny").
    let mut allow = Vec::new();
    let mut deny = Vec::new();
    let mut deny_all = None;
    let rules = get(cap, "rules");
    let rules_map = match rules {
        None => None,
        Some(Value::Mapping(m)) => Some(m),
        Some(_) => return Err(NotImported::RulesNotAMapping),
    };
    let list = |key: &str| -> Result<Option<Vec<String>>, NotImported> {
        match rules_map.and_then(|m| get(m, key)) {
            None => Ok(None),
            Some(v) => str_list(Some(v))
                .map(Some)
                .ok_or_else(|| NotImported::RulesNotAList {
                    key: key.to_string(),
                }),
        }
    };
    let janee_allow = list("allow")?;
    let janee_deny = list("deny")?;
    for (kind, janee, out) in [
        (Kind::Allow, &janee_allow, &mut allow),
        (Kind::Deny, &janee_deny, &mut deny),
    ] {
        for r in janee.iter().flatten() {
            let t = translate(r, kind);
            if let Some(note) = &t.note {
                let list = if kind == Kind::Allow { "allow" } else { "deny" };
                let became = if t.rules.is_empty() {
                    String::new()
                } else {
                    format!(
                        " → {}",
                        t.rules
                            .iter()
                            .map(|r| format!("\"{r}\""))
                            .collect::<Vec<_>>()
                            .join(", ")
                    )
                };
                warnings.push(format!(
                    "capability \"{janee_name}\": {list} rule \"{r}\"{became}: {note}"
                ));
            }
            for rule in t.rules {
                if !out.contains(&rule) {
                    out.push(rule);
                }
            }
        }
    }
    match (&janee_allow, &janee_deny) {
        (Some(a), _) if allow.is_empty() => {
            deny_all = Some(if a.is_empty() {
                "its `allow` list is empty, so Janee denied every request"
            } else {
                "none of its allow rules could be imported"
            });
        }
        (None, None) if default_deny => {
            deny_all = Some("it has no rules and Janee's `defaultPolicy` is deny");
        }
        _ => {}
    }
    if let Some(why) = deny_all {
        warnings.push(format!(
            "capability \"{janee_name}\": {why}; imported denying everything (deny \"* /**\") — \
             add allow rules with `airlock cap` to use it"
        ));
        allow.clear();
        deny = vec!["* /**".to_string()];
    }

    // Who may use it: allowedAgents, the access default, and the service's ownership.
    let listed = str_list(get(cap, "allowedAgents")).filter(|l| !l.is_empty());
    let restricted = match get(cap, "access").and_then(Value::as_str) {
        Some("restricted") => true,
        Some("open") => false,
        _ => default_restricted,
    };
    let mut agents: Option<Vec<String>> = match listed {
        Some(l) => Some(l),
        None if restricted => Some(Vec::new()),
        None => None,
    };
    if let Some(own) = &raw.ownership {
        let created = get(own, "createdBy").and_then(scalar);
        let owners: Option<Vec<String>> = match get(own, "accessPolicy").and_then(Value::as_str) {
            Some("agent-only") => Some(created.into_iter().collect()),
            Some("shared") => Some(
                created
                    .into_iter()
                    .chain(str_list(get(own, "sharedWith")).unwrap_or_default())
                    .collect(),
            ),
            _ => None,
        };
        if let Some(owners) = owners {
            agents = Some(match agents {
                None => owners,
                Some(a) => a.into_iter().filter(|x| owners.contains(x)).collect(),
            });
        }
    }
    if let Some(list) = &mut agents {
        list.retain(|a| {
            let ok = is_valid_name(a);
            if !ok {
                warnings.push(format!(
                    "capability \"{janee_name}\": agent \"{}\" dropped: not a valid airlock agent name ({})",
                    a.escape_debug(),
                    airlock_home::NAME_RULE
                ));
            }
            ok
        });
        list.dedup();
        if list.is_empty() {
            warnings.push(format!(
                "capability \"{janee_name}\": no agent may use it (as in Janee: restricted access \
                 or credential ownership); add `agents` to use it"
            ));
        }
    }

    Ok(PlannedCapability {
        name: String::new(),
        janee_name: janee_name.to_string(),
        service: airlock_service.clone(),
        ttl,
        allow,
        deny,
        agents,
        requires_reason,
        approval,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locates_keys() {
        let text = "version: '0.2.0'\nservices:\n  stripe:\n    baseUrl: x\n    auth:\n      type: bearer\n      key: abc\n  'gh':\n    auth:\n      key: y\n";
        let l = Locator::new(text);
        assert_eq!(l.line(&["services", "stripe", "auth", "key"]), Some(7));
        assert_eq!(l.line(&["services", "gh", "auth", "key"]), Some(10));
        assert_eq!(l.line(&["services", "gh", "auth", "nothing"]), Some(9));
        let json = "{\n  \"masterKey\": \"k\",\n  \"secrets\": {\n    \"a\": {\n      \"key\": \"v\"\n    }\n  }\n}\n";
        let l = Locator::new(json);
        assert_eq!(l.line(&["secrets", "a", "key"]), Some(5));
        assert_eq!(l.line(&["masterKey"]), Some(2));
    }

    #[test]
    fn ttls() {
        assert_eq!(
            ttl_of(Some(&Value::String("10m".into()))),
            Some("10m".into())
        );
        assert_eq!(ttl_of(Some(&Value::String("1h30m".into()))), None);
        assert_eq!(ttl_of(None), None);
    }

    #[test]
    fn snake_case() {
        assert_eq!(snake("apiSecret"), "api_secret");
        assert_eq!(snake("key"), "key");
    }
}
