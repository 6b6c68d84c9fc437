//! `airlock migrate FILE [--dry-run]`: moves the secrets of a `.env` file or an
//! MCP client config into the vault, then rewrites the file to reference them.
//!
//! - `.env`: `KEY=value` becomes `KEY=airlock://NAME` (for `airlock run --env-file`).
//! - MCP client configs (`mcpServers` / `servers` JSON: Claude Desktop, Claude
//!   Code, Cursor, VS Code, Windsurf): each server whose `env` holds a secret is
//!   rewritten to launch through `airlock wrap --env VAR=airlock://NAME -- <its
//!   command>`, and the secret leaves its `env`.
//!
//! What is a secret is the scanner's call (provider rules, and the generic rule
//! gated by the variable name and the value's entropy), so `migrate` moves exactly
//! what `scan` reports. Order of writes: the vault first; the file is rewritten
//! (atomically, keeping its mode) only after the vault write succeeded, and no
//! plaintext copy of the old file is ever written. A second run finds only
//! references and changes nothing.

use std::path::{Path, PathBuf};

use airlock_home::Home;
use airlock_vault::Vault;
use anyhow::{Context, bail};
use serde_json::Value;
use zeroize::Zeroizing;

use crate::cli::MigrateArgs;
use crate::{output, unlock};

/// One secret found in the file.
struct Found {
    /// The variable name (`OPENAI_API_KEY`).
    var: String,
    /// Where it is, for messages (`.env:3`, `mcpServers.github.env`).
    place: String,
    value: Zeroizing<String>,
    /// The vault name chosen for it.
    name: String,
    /// Whether the vault already holds this exact value under `name`.
    reused: bool,
}

fn is_secret(scanner: &airlock_scan::Scanner, var: &str, value: &str) -> bool {
    if value.is_empty() || value.starts_with("airlock://") {
        return false;
    }
    let line = format!("{var}={value}\n");
    !scanner
        .scan_bytes(Path::new("migrate.env"), line.as_bytes())
        .is_empty()
}

/// A vault name for `var`: lower-case, invalid characters replaced; on a
/// collision with a different value, suffixed with the file stem, then a number.
fn choose_name(
    vault: &Vault,
    var: &str,
    value: &str,
    stem: &str,
    taken: &[String],
) -> (String, bool) {
    let base: String = var
        .to_ascii_lowercase()
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' || c == '-' || c == '.' {
                c
            } else {
                '_'
            }
        })
        .collect();
    let base = base
        .trim_start_matches(|c: char| !c.is_ascii_alphanumeric())
        .to_string();
    let base = if base.is_empty() {
        "secret".to_string()
    } else {
        base
    };
    let fp = vault.fingerprint(value.as_bytes());
    let stem: String = stem
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '-'
            }
        })
        .collect::<String>()
        .trim_matches('-')
        .to_string();
    let mut candidates = vec![base.clone()];
    if !stem.is_empty() {
        candidates.push(format!("{base}-{stem}"));
    }
    candidates.extend((2..1000).map(|n| format!("{base}-{n}")));
    for c in candidates {
        let c: String = c.chars().take(64).collect();
        if taken.contains(&c) {
            continue;
        }
        match vault.list().into_iter().find(|s| s.name == c) {
            Some(info) if info.fingerprint == fp => return (c, true),
            Some(_) => continue,
            None => return (c, false),
        }
    }
    (format!("{base}-{}", &fp[..8]), false)
}

enum Kind {
    Env,
    Mcp,
}

fn kind_of(path: &Path, text: &str) -> Kind {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().to_ascii_lowercase())
        .unwrap_or_default();
    if name.ends_with(".json") || text.trim_start().starts_with('{') {
        Kind::Mcp
    } else {
        Kind::Env
    }
}

/// `.env` lines: `[export ]KEY=VALUE` with optional quotes; comments and blank
/// lines untouched.
fn env_assignment(line: &str) -> Option<(&str, &str, &str, &str)> {
    let trimmed = line.trim_start();
    if trimmed.starts_with('#') || !trimmed.contains('=') {
        return None;
    }
    let (head, value) = trimmed.split_once('=')?;
    let var = head
        .trim()
        .strip_prefix("export ")
        .unwrap_or(head.trim())
        .trim();
    if var.is_empty() || !var.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
        return None;
    }
    let v = value.trim();
    let (quote, inner) = if v.len() >= 2
        && (v.starts_with('"') && v.ends_with('"') || v.starts_with('\'') && v.ends_with('\''))
    {
        (&v[..1], &v[1..v.len() - 1])
    } else {
        ("", v.split(" #").next().unwrap_or(v).trim())
    };
    let prefix_len = line.len() - trimmed.len() + head.len() + 1;
    Some((&line[..prefix_len], var, quote, inner))
}

pub(crate) fn run(home: &Home, args: &MigrateArgs) -> anyhow::Result<()> {
    let path: PathBuf = args.file.clone();
    let text = std::fs::read_to_string(&path)
        .with_context(|| format!("cannot read {}", path.display()))?;
    let stem = path
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    let scanner = airlock_scan::Scanner::new()?;
    let kind = kind_of(&path, &text);
    // Parse before touching anything: a file we cannot parse is left as it is.
    let json: Option<Value> = match kind {
        Kind::Mcp => Some(serde_json::from_str(&text).map_err(|e| {
            anyhow::anyhow!(
                "{}:{}:{}: not valid JSON ({e}); the file was left untouched",
                path.display(),
                e.line(),
                e.column()
            )
        })?),
        Kind::Env => None,
    };

    let (_lock, mut vault) = unlock::open_for_write(home, true)?;
    let mut found: Vec<Found> = Vec::new();
    let mut taken: Vec<String> = Vec::new();
    let add = |vault: &Vault, var: &str, place: String, value: &str, taken: &mut Vec<String>| {
        let (name, reused) = choose_name(vault, var, value, &stem, taken);
        taken.push(name.clone());
        Found {
            var: var.to_string(),
            place,
            value: Zeroizing::new(value.to_string()),
            name,
            reused,
        }
    };

    let new_text = match kind {
        Kind::Env => {
            let mut out = String::with_capacity(text.len());
            for (i, line) in text.split_inclusive('\n').enumerate() {
                let body = line.trim_end_matches(['\n', '\r']);
                let ending = &line[body.len()..];
                match env_assignment(body) {
                    Some((prefix, var, quote, value)) if is_secret(&scanner, var, value) => {
                        let f = add(
                            &vault,
                            var,
                            format!("{}:{}", path.display(), i + 1),
                            value,
                            &mut taken,
                        );
                        out.push_str(&format!(
                            "{prefix}{quote}airlock://{}{quote}{ending}",
                            f.name
                        ));
                        found.push(f);
                    }
                    _ => out.push_str(line),
                }
            }
            out
        }
        Kind::Mcp => {
            let mut doc = json.unwrap_or(Value::Null);
            let exe = std::env::current_exe().context("cannot find the airlock executable")?;
            let exe = exe.to_string_lossy().into_owned();
            for key in ["mcpServers", "servers"] {
                let Some(servers) = doc.get_mut(key).and_then(Value::as_object_mut) else {
                    continue;
                };
                for (server, entry) in servers.iter_mut() {
                    let Some(env) = entry.get("env").and_then(Value::as_object).cloned() else {
                        continue;
                    };
                    let mut refs = Vec::new();
                    let mut kept = serde_json::Map::new();
                    for (var, v) in env {
                        match v.as_str() {
                            Some(value) if is_secret(&scanner, &var, value) => {
                                let f = add(
                                    &vault,
                                    &var,
                                    format!("{key}.{server}.env.{var}"),
                                    value,
                                    &mut taken,
                                );
                                refs.push(format!("{var}=airlock://{}", f.name));
                                found.push(f);
                            }
                            _ => {
                                kept.insert(var, v);
                            }
                        }
                    }
                    if refs.is_empty() {
                        continue;
                    }
                    let Some(command) = entry
                        .get("command")
                        .and_then(Value::as_str)
                        .map(str::to_string)
                    else {
                        bail!(
                            "{}: server \"{server}\" has secrets in `env` but no `command` (a remote server?); move its secrets by hand. The file was left untouched",
                            path.display()
                        );
                    };
                    let old_args: Vec<Value> = entry
                        .get("args")
                        .and_then(Value::as_array)
                        .cloned()
                        .unwrap_or_default();
                    let mut new_args: Vec<Value> = vec![Value::from("wrap")];
                    for r in refs {
                        new_args.push(Value::from("--env"));
                        new_args.push(Value::from(r));
                    }
                    new_args.push(Value::from("--"));
                    new_args.push(Value::from(command));
                    new_args.extend(old_args);
                    entry["command"] = Value::from(exe.clone());
                    entry["args"] = Value::from(new_args);
                    if kept.is_empty() {
                        if let Some(o) = entry.as_object_mut() {
                            o.remove("env");
                        }
                    } else {
                        entry["env"] = Value::Object(kept);
                    }
                }
            }
            let mut s = serde_json::to_string_pretty(&doc)?;
            s.push('\n');
            s
        }
    };

    if found.is_empty() {
        output::line(format_args!(
            "{}: no secrets to migrate (nothing changed)",
            path.display()
        ));
        return Ok(());
    }

    if args.dry_run {
        output::line(format_args!(
            "{}: would move {} secret(s) into the vault:",
            path.display(),
            found.len()
        ));
        for f in &found {
            output::line(format_args!("  {}", f.place));
            output::line(format_args!(
                "  - {}=[redacted, {} chars]",
                f.var,
                f.value.chars().count()
            ));
            output::line(format_args!(
                "  + {}=airlock://{}{}",
                f.var,
                f.name,
                if f.reused {
                    "   (already in the vault)"
                } else {
                    ""
                }
            ));
        }
        output::line("dry run: nothing was written");
        return Ok(());
    }

    for f in found.iter().filter(|f| !f.reused) {
        vault.insert(&f.name, f.value.as_bytes())?;
    }
    vault.save(home)?;
    // Only now that the vault holds every value, replace the file.
    write_like(&path, new_text.as_bytes())?;

    output::line(format_args!(
        "{}: moved {} secret(s) into the vault and rewrote the file:",
        path.display(),
        found.len()
    ));
    for f in &found {
        output::line(format_args!("  {} → airlock://{}", f.var, f.name));
    }
    output::note(
        "these keys were stored in plain text: rotate each at its provider (migrating does not un-leak a key), then `airlock secret rotate NAME`",
    );
    if matches!(kind_of(&path, &new_text), Kind::Env) {
        output::note(format_args!(
            "use it with: airlock run --env-file {} -- <command>",
            path.display()
        ));
    }
    Ok(())
}

/// Replaces `path` atomically, keeping its permissions.
fn write_like(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    let meta = std::fs::metadata(path)?;
    airlock_home::write_atomic(path, bytes)?;
    std::fs::set_permissions(path, meta.permissions())
        .with_context(|| format!("cannot restore the permissions of {}", path.display()))?;
    Ok(())
}
