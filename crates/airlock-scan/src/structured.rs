//! Structured readers: where the structure of a file says what a value is.
//!
//! The regex pass already sees every byte of every file. The readers add what
//! a flat pass cannot: the key path of a value (`mcpServers.github.env.GITHUB_TOKEN`),
//! the name of an environment variable, the `--api-key VALUE` pairs in an MCP
//! server's `args`, `Authorization` headers, base64-decoded Kubernetes Secret
//! `data`, the unescaped source of notebook cells, and names given apart from
//! their values (`- name: X` / `value: Y` env lists, Terraform variable
//! defaults). Every value is mapped
//! back to where it sits in the file, so a structured finding still has a
//! line and a column.

use std::path::Path;
use std::sync::OnceLock;

use aho_corasick::AhoCorasick;
use base64::Engine as _;
use serde::Deserialize as _;
use serde_json::Value;

use crate::engine::{Hit, Scanner};
use crate::rules::{AUTH_HEADER, CLI_FLAG, GENERIC_ASSIGNMENT, Kind};

/// Larger structured files are left to the regex pass alone.
const MAX_STRUCTURED: usize = 4 << 20;

/// What kind of file this is, by name (and for YAML, by content).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Format {
    Env,
    Json,
    Yaml,
    Toml,
    /// Terraform / HCL (`.tf`, `.tfvars`, `.hcl`): only variable defaults.
    Hcl,
    Notebook,
    Other,
}

fn file_name(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().to_ascii_lowercase())
        .unwrap_or_default()
}

/// The name of the folder `path` is in, lower case (`.aws` for `~/.aws/credentials`).
fn parent_name(path: &Path) -> String {
    path.parent().map(file_name).unwrap_or_default()
}

/// Source code and prose: the generic rule takes only quoted values there.
pub(crate) fn is_source_or_doc(path: &Path) -> bool {
    let n = file_name(path);
    let ext = n.rsplit_once('.').map(|(_, e)| e).unwrap_or_default();
    matches!(
        ext,
        "rs" | "py"
            | "pyi"
            | "js"
            | "mjs"
            | "cjs"
            | "ts"
            | "tsx"
            | "jsx"
            | "go"
            | "java"
            | "kt"
            | "kts"
            | "scala"
            | "c"
            | "h"
            | "cc"
            | "cpp"
            | "hpp"
            | "cs"
            | "fs"
            | "rb"
            | "php"
            | "swift"
            | "m"
            | "mm"
            | "dart"
            | "lua"
            | "pl"
            | "pm"
            | "r"
            | "jl"
            | "ex"
            | "exs"
            | "erl"
            | "hs"
            | "ml"
            | "clj"
            | "zig"
            | "nim"
            | "v"
            | "sol"
            | "vue"
            | "svelte"
            | "html"
            | "htm"
            | "css"
            | "scss"
            | "md"
            | "markdown"
            | "rst"
            | "adoc"
            | "txt"
            | "tex"
            | "ipynb"
            | "sql"
            | "xml"
            | "svg"
    )
}

/// `.env`, `.env.local`, `prod.env`, `.envrc`.
pub(crate) fn is_env_file(path: &Path) -> bool {
    let n = file_name(path);
    n == ".env" || n.starts_with(".env.") || n.ends_with(".env") || n == ".envrc"
}

/// Known MCP client configuration files.
pub(crate) fn is_mcp_config(path: &Path) -> bool {
    let n = file_name(path);
    let parent = parent_name(path);
    match n.as_str() {
        "claude_desktop_config.json" | ".mcp.json" | "mcp_config.json" | ".claude.json" => true,
        "mcp.json" => true,
        "config.toml" => parent == ".codex",
        "settings.json" => parent == ".gemini",
        _ => false,
    }
}

/// Files that bear secrets by their nature; read even when hidden or ignored.
pub(crate) fn is_secret_bearing(path: &Path) -> bool {
    if is_env_file(path) || is_mcp_config(path) {
        return true;
    }
    let n = file_name(path);
    let parent = parent_name(path);
    matches!(
        n.as_str(),
        ".npmrc"
            | ".pypirc"
            | ".netrc"
            | "_netrc"
            | ".git-credentials"
            | ".yarnrc.yml"
            | ".gem/credentials"
    ) || (n.starts_with("id_") && !n.ends_with(".pub"))
        || [".pem", ".key", ".p8", ".ppk"]
            .iter()
            .any(|e| n.ends_with(e))
        || (n == "config.json" && parent == ".docker")
        || (n == "credentials" && matches!(parent.as_str(), ".aws" | ".gem"))
}

fn format_of(path: &Path) -> Format {
    if is_env_file(path) {
        return Format::Env;
    }
    let n = file_name(path);
    if matches!(
        n.as_str(),
        "package-lock.json"
            | "npm-shrinkwrap.json"
            | "yarn.lock"
            | "pnpm-lock.yaml"
            | "composer.lock"
            | "cargo.lock"
            | "poetry.lock"
    ) {
        return Format::Other;
    }
    let ext = n.rsplit('.').next().unwrap_or_default();
    match ext {
        "json" | "jsonc" => Format::Json,
        "yaml" | "yml" => Format::Yaml,
        "toml" => Format::Toml,
        "ipynb" => Format::Notebook,
        "tf" | "tfvars" | "hcl" => Format::Hcl,
        _ => Format::Other,
    }
}

fn secret_words() -> &'static Option<AhoCorasick> {
    static AC: OnceLock<Option<AhoCorasick>> = OnceLock::new();
    AC.get_or_init(|| {
        AhoCorasick::builder()
            .ascii_case_insensitive(true)
            .build([
                "pass",
                "pwd",
                "secret",
                "token",
                "key",
                "cred",
                "authorization",
                "auth_key",
                "authkey",
                "bearer",
                "mcpservers",
                "kind: secret",
            ])
            .ok()
    })
}

/// Does this name say "secret"? (`OPENAI_API_KEY`, `db_password`, `X-Api-Key`)
pub(crate) fn secret_name(key: &str) -> bool {
    let k = key.to_ascii_lowercase();
    let k = k.trim_start_matches('-');
    [
        "password",
        "passwd",
        "passphrase",
        "pwd",
        "secret",
        "token",
        "apikey",
        "api_key",
        "api-key",
        "access_key",
        "accesskey",
        "private_key",
        "privatekey",
        "authorization",
        "auth_key",
        "authkey",
        "bearer",
        "credential",
        "signing_key",
        "encryption_key",
    ]
    .iter()
    .any(|w| k.contains(w))
        || k.ends_with("_key")
        || k.ends_with("-key")
}

/// A string leaf of a structured document.
struct Leaf {
    path: String,
    key: String,
    value: String,
    /// The key was given apart from the value (`{name: K, value: V}`,
    /// `variable "K" { default = V }`): run the whole regex pass on `K=V`.
    pair: bool,
}

/// Runs the reader that fits `path` and appends its hits; also gives the key
/// path to regex hits that fall inside a structured value.
pub(crate) fn hits(scanner: &Scanner, path: &Path, bytes: &[u8], out: &mut Vec<Hit>) {
    if bytes.len() > MAX_STRUCTURED {
        return;
    }
    let format = format_of(path);
    if format == Format::Other {
        return;
    }
    let mcp = is_mcp_config(path);
    if !mcp
        && format != Format::Notebook
        && format != Format::Env
        && !secret_words().as_ref().is_some_and(|ac| ac.is_match(bytes))
    {
        return;
    }
    let Ok(text) = std::str::from_utf8(bytes) else {
        return;
    };
    let mut leaves = Vec::new();
    // where a Kubernetes Secret's base64 `data` values sit: their decoded
    // value has been judged, the encoding is not a leaf of its own
    let mut encoded = Vec::new();
    match format {
        Format::Env => env_leaves(text, &mut leaves),
        Format::Json => {
            if let Ok(v) = serde_json::from_str::<Value>(text) {
                walk(&v, "", "", &mut leaves);
                mcp_servers(scanner, &v, bytes, out);
            }
        }
        Format::Toml => {
            if let Ok(v) = toml::from_str::<toml::Value>(text)
                && let Ok(v) = serde_json::to_value(v)
            {
                walk(&v, "", "", &mut leaves);
                mcp_servers(scanner, &v, bytes, out);
            }
        }
        Format::Yaml => {
            for doc in yaml_serde::Deserializer::from_str(text) {
                let Ok(y) = yaml_serde::Value::deserialize(doc) else {
                    break;
                };
                let Ok(v) = serde_json::to_value(&y) else {
                    continue;
                };
                k8s_secret(scanner, &v, bytes, out, &mut encoded);
                walk(&v, "", "", &mut leaves);
                mcp_servers(scanner, &v, bytes, out);
            }
        }
        Format::Hcl => hcl_variables(text, &mut leaves),
        Format::Notebook => {
            if let Ok(v) = serde_json::from_str::<Value>(text) {
                notebook(scanner, &v, bytes, out);
            }
            return;
        }
        Format::Other => return,
    }
    // Where a leaf sits matters for a leaf that is judged, and for the key
    // path of a regex hit: with no such hit, the other leaves are not looked
    // for (each look is a search of the file, a cost that grew with leaves ×
    // size; issue 18, docs/benchmarks.md).
    let need_spans = out.iter().any(|h| h.context.is_none());
    let mut spans = Vec::with_capacity(leaves.len());
    for leaf in &leaves {
        if !need_spans && !leaf.pair && !secret_name(&leaf.key) {
            continue;
        }
        let Some(at) = locate(bytes, &leaf.value) else {
            continue;
        };
        if encoded.contains(&at) {
            // judged decoded by `k8s_secret`
        } else if leaf.pair {
            named_value(scanner, &leaf.key, &leaf.value, at, &leaf.path, out);
        } else if secret_name(&leaf.key) {
            scanner.structured_value(
                GENERIC_ASSIGNMENT,
                &leaf.key,
                leaf.value.as_bytes(),
                at,
                &leaf.path,
                out,
            );
        }
        spans.push((at, at + leaf.value.len(), leaf.path.as_str()));
    }
    // key-path context for regex hits inside a value
    spans.sort_unstable();
    for h in out.iter_mut().filter(|h| h.context.is_none()) {
        let i = spans.partition_point(|s| s.0 <= h.start);
        if i > 0 {
            let (s, e, p) = spans[i - 1];
            if s <= h.start && h.start < e {
                h.context = Some(p.to_owned());
            }
        }
    }
}

/// Where `value` sits in the file: as written, or JSON-escaped.
fn locate(bytes: &[u8], value: &str) -> Option<usize> {
    if value.is_empty() {
        return None;
    }
    if let Some(i) = memchr::memmem::find(bytes, value.as_bytes()) {
        return Some(i);
    }
    let escaped = serde_json::to_string(value).ok()?;
    let inner = &escaped[1..escaped.len() - 1];
    memchr::memmem::find(bytes, inner.as_bytes())
}

fn walk(v: &Value, path: &str, key: &str, out: &mut Vec<Leaf>) {
    match v {
        Value::String(s) => out.push(Leaf {
            path: path.to_owned(),
            key: key.to_owned(),
            value: s.clone(),
            pair: false,
        }),
        Value::Object(map) => {
            // `- name: TWILIO_AUTH_TOKEN` / `value: …` (Kubernetes, Compose,
            // ECS task definitions): the name is a sibling of the value
            if let (Some(Value::String(name)), Some(Value::String(value))) =
                (map.get("name").or_else(|| map.get("key")), map.get("value"))
            {
                out.push(Leaf {
                    path: format!("{path}.value ({name})"),
                    key: name.clone(),
                    value: value.clone(),
                    pair: true,
                });
            }
            for (k, child) in map {
                let p = if path.is_empty() {
                    k.clone()
                } else {
                    format!("{path}.{k}")
                };
                walk(child, &p, k, out);
            }
        }
        Value::Array(items) => {
            for (i, child) in items.iter().enumerate() {
                walk(child, &format!("{path}[{i}]"), key, out);
            }
        }
        _ => {}
    }
}

/// `.env`: `KEY=VALUE`, `export KEY=VALUE`, quotes, comments.
fn env_leaves(text: &str, out: &mut Vec<Leaf>) {
    for line in text.lines() {
        let line = line.trim_start();
        if line.starts_with('#') {
            continue;
        }
        let line = line.strip_prefix("export ").unwrap_or(line).trim_start();
        let Some((k, v)) = line.split_once('=') else {
            continue;
        };
        let k = k.trim();
        if k.is_empty()
            || !k
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'.' || b == b'-')
        {
            continue;
        }
        let v = v.trim();
        let v = if let Some(q) = v.chars().next().filter(|c| *c == '"' || *c == '\'') {
            v[1..].split(q).next().unwrap_or_default()
        } else {
            v.split(" #").next().unwrap_or_default().trim()
        };
        if !v.is_empty() {
            out.push(Leaf {
                path: k.to_owned(),
                key: k.to_owned(),
                value: v.to_owned(),
                pair: false,
            });
        }
    }
}

/// Terraform: `variable "NAME" { … default = "VALUE" … }`, the default's name
/// being the variable's.
fn hcl_variables(text: &str, out: &mut Vec<Leaf>) {
    let mut current: Option<&str> = None;
    for line in text.lines() {
        let t = line.trim();
        if let Some(rest) = t.strip_prefix("variable ")
            && let Some(rest) = rest.trim_start().strip_prefix('"')
            && let Some((name, _)) = rest.split_once('"')
        {
            current = Some(name);
            continue;
        }
        if line.starts_with('}') {
            current = None;
            continue;
        }
        if let Some(name) = current
            && let Some(v) = t.strip_prefix("default")
            && let Some(v) = v.trim_start().strip_prefix('=')
            && let Some(v) = v.trim_start().strip_prefix('"')
            && let Some((value, _)) = v.split_once('"')
            && !value.is_empty()
        {
            out.push(Leaf {
                path: format!("variable.{name}.default"),
                key: name.to_owned(),
                value: value.to_owned(),
                pair: true,
            });
        }
    }
}

/// A value whose name stands apart from it: the regex pass runs over
/// `NAME=VALUE`, so the by-context provider rules (`TWILIO_AUTH_TOKEN`) and the
/// generic rule see the name, and each hit is mapped back to `at`, where the
/// value sits in the file.
fn named_value(
    scanner: &Scanner,
    name: &str,
    value: &str,
    at: usize,
    ctx: &str,
    out: &mut Vec<Hit>,
) {
    let plain_name = name
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'));
    if !plain_name || value.bytes().any(|b| b.is_ascii_whitespace()) {
        return;
    }
    let line = format!("{name}={value}");
    let off = name.len() + 1;
    let mut inner = Vec::new();
    scanner.raw_hits(line.as_bytes(), false, &mut inner);
    for mut h in inner {
        if h.start < off {
            continue;
        }
        h.end = at + (h.end.max(h.start + 1) - off);
        h.start = at + (h.start - off);
        h.context = Some(ctx.to_owned());
        out.push(h);
    }
}

/// MCP client configs: `mcpServers` (Claude, Cursor, Windsurf), `servers`
/// (VS Code), `mcp_servers` (Codex), `context_servers` (Zed), at any depth
/// (`~/.claude.json` nests them per project).
fn mcp_servers(scanner: &Scanner, v: &Value, bytes: &[u8], out: &mut Vec<Hit>) {
    fn visit(
        scanner: &Scanner,
        v: &Value,
        path: &str,
        bytes: &[u8],
        out: &mut Vec<Hit>,
        depth: usize,
    ) {
        let Value::Object(map) = v else {
            return;
        };
        if depth > 6 {
            return;
        }
        for (k, child) in map {
            let p = if path.is_empty() {
                k.clone()
            } else {
                format!("{path}.{k}")
            };
            if matches!(
                k.as_str(),
                "mcpServers" | "servers" | "mcp_servers" | "context_servers"
            ) && let Value::Object(servers) = child
            {
                for (name, server) in servers {
                    one_server(scanner, server, &format!("{p}.{name}"), bytes, out);
                }
            } else {
                visit(scanner, child, &p, bytes, out, depth + 1);
            }
        }
    }
    visit(scanner, v, "", bytes, out, 0);
}

fn one_server(scanner: &Scanner, server: &Value, path: &str, bytes: &[u8], out: &mut Vec<Hit>) {
    // headers: `Authorization: Bearer …`, `X-API-Key: …`
    for field in ["headers", "http_headers"] {
        if let Some(Value::Object(h)) = server.get(field) {
            for (name, val) in h {
                let Some(val) = val.as_str() else { continue };
                let ctx = format!("{path}.{field}.{name}");
                let Some(at) = locate(bytes, val) else {
                    continue;
                };
                if name.eq_ignore_ascii_case("authorization") {
                    let token = ["Bearer ", "bearer ", "Token ", "token ", "Basic ", "basic "]
                        .iter()
                        .find_map(|p| val.strip_prefix(p))
                        .unwrap_or(val)
                        .trim();
                    let off = val.len() - token.len();
                    scanner.structured_value(
                        AUTH_HEADER,
                        name,
                        token.as_bytes(),
                        at + off,
                        &ctx,
                        out,
                    );
                } else if secret_name(name) {
                    scanner.structured_value(
                        GENERIC_ASSIGNMENT,
                        name,
                        val.as_bytes(),
                        at,
                        &ctx,
                        out,
                    );
                }
            }
        }
    }
    // args: `--api-key=VALUE`, `--api-key VALUE`, `API_KEY=VALUE`
    if let Some(Value::Array(args)) = server.get("args") {
        let args: Vec<&str> = args.iter().filter_map(Value::as_str).collect();
        for (i, a) in args.iter().enumerate() {
            let ctx = format!("{path}.args[{i}]");
            if let Some((flag, val)) = a.split_once('=') {
                if secret_name(flag) && !val.is_empty() {
                    let rule = if flag.starts_with("--") {
                        CLI_FLAG
                    } else {
                        GENERIC_ASSIGNMENT
                    };
                    if let Some(at) = locate(bytes, a) {
                        let at = at + flag.len() + 1;
                        scanner.structured_value(rule, flag, val.as_bytes(), at, &ctx, out);
                    }
                }
            } else if a.starts_with('-')
                && secret_name(a)
                && let Some(val) = args.get(i + 1)
                && !val.starts_with('-')
                && let Some(at) = locate(bytes, val)
            {
                let ctx = format!("{path}.args[{}]", i + 1);
                scanner.structured_value(CLI_FLAG, a, val.as_bytes(), at, &ctx, out);
            }
        }
    }
    // url: `https://host/mcp?api_key=…`
    if let Some(url) = server.get("url").and_then(Value::as_str)
        && let Some((_, query)) = url.split_once('?')
    {
        for pair in query.split('&') {
            if let Some((k, val)) = pair.split_once('=')
                && secret_name(k)
                && let Some(at) = locate(bytes, pair)
            {
                let ctx = format!("{path}.url?{k}");
                scanner.structured_value(
                    GENERIC_ASSIGNMENT,
                    k,
                    val.as_bytes(),
                    at + k.len() + 1,
                    &ctx,
                    out,
                );
            }
        }
    }
}

/// Kubernetes `kind: Secret`: `data` values are base64; decode, then scan.
fn k8s_secret(
    scanner: &Scanner,
    v: &Value,
    bytes: &[u8],
    out: &mut Vec<Hit>,
    encoded_at: &mut Vec<usize>,
) {
    if v.get("kind").and_then(Value::as_str) != Some("Secret") {
        return;
    }
    let name = v
        .get("metadata")
        .and_then(|m| m.get("name"))
        .and_then(Value::as_str)
        .unwrap_or("secret");
    let Some(Value::Object(data)) = v.get("data") else {
        return;
    };
    for (key, val) in data {
        let Some(encoded) = val.as_str() else {
            continue;
        };
        let compact: String = encoded.chars().filter(|c| !c.is_whitespace()).collect();
        let Ok(decoded) = base64::engine::general_purpose::STANDARD.decode(compact.as_bytes())
        else {
            continue;
        };
        let Some(at) = locate(bytes, encoded.trim()) else {
            continue;
        };
        let ctx = format!("Secret/{name}.data.{key} (base64-decoded)");
        // The decoded value speaks for the encoded one: a generic hit of the
        // flat pass on the base64 text (a random-looking encoding of
        // `<YOUR_API_KEY>`) is not a finding of its own.
        let end = at + encoded.trim().len();
        out.retain(|h| {
            !(h.kind == Kind::Generic && h.context.is_none() && (at..end).contains(&h.start))
        });
        encoded_at.push(at);
        let before = out.len();
        // `KEY=decoded`, so the by-context rules see the name the value is
        // stored under (`LINEAR_CLIENT_SECRET`, `POSTMARK_API_TOKEN`)
        let mut named = Vec::with_capacity(key.len() + 1 + decoded.len());
        named.extend_from_slice(key.as_bytes());
        named.push(b'=');
        named.extend_from_slice(&decoded);
        scanner.decoded_hits(&named, at, encoded.trim().len(), Some(&ctx), out);
        if out.len() == before {
            let value = decoded.trim_ascii();
            scanner.structured_value(GENERIC_ASSIGNMENT, key, value, at, &ctx, out);
            // the decoded value replaces the encoded one at the same place
            if let Some(h) = out.get_mut(before) {
                h.end = at + encoded.trim().len();
            }
        }
    }
}

/// Jupyter notebooks: scan the unescaped cell sources and outputs.
fn notebook(scanner: &Scanner, v: &Value, bytes: &[u8], out: &mut Vec<Hit>) {
    let Some(Value::Array(cells)) = v.get("cells") else {
        return;
    };
    let text_of = |v: Option<&Value>| -> String {
        match v {
            Some(Value::String(s)) => s.clone(),
            Some(Value::Array(a)) => a.iter().filter_map(Value::as_str).collect(),
            _ => String::new(),
        }
    };
    for (i, cell) in cells.iter().enumerate() {
        let mut texts = vec![(format!("cells[{i}].source"), text_of(cell.get("source")))];
        if let Some(Value::Array(outputs)) = cell.get("outputs") {
            for (j, o) in outputs.iter().enumerate() {
                texts.push((format!("cells[{i}].outputs[{j}]"), text_of(o.get("text"))));
                if let Some(Value::Object(data)) = o.get("data") {
                    for (mime, d) in data {
                        if mime.starts_with("text/") || mime == "application/json" {
                            texts.push((
                                format!("cells[{i}].outputs[{j}].{mime}"),
                                text_of(Some(d)),
                            ));
                        }
                    }
                }
            }
        }
        for (ctx, text) in texts {
            if text.is_empty() {
                continue;
            }
            let mut inner = Vec::new();
            scanner.raw_hits(text.as_bytes(), true, &mut inner);
            for mut h in inner {
                let secret = String::from_utf8_lossy(
                    &text.as_bytes()[h.start.min(text.len())..h.end.min(text.len())],
                )
                .into_owned();
                // as written, or (multi-line values, escaped in JSON) by its first line
                let first_line = secret.lines().next().unwrap_or_default();
                let at = locate(bytes, &secret)
                    .or_else(|| locate(bytes, &String::from_utf8_lossy(&h.secret)))
                    .or_else(|| locate(bytes, first_line))
                    .unwrap_or(0);
                h.end = at + (h.end - h.start).max(1);
                h.start = at;
                h.context = Some(ctx.clone());
                out.push(h);
            }
        }
    }
}
