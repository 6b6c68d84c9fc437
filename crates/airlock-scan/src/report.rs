//! Output formats: an aligned table for people, JSON and SARIF 2.1.0 for tools.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Component, Path, PathBuf};

use serde_json::json;

use crate::finding::{Finding, Risk};

fn location(f: &Finding) -> String {
    let mut s = format!("{}:{}:{}", f.file, f.line, f.column);
    if let Some(c) = &f.commit {
        s.push_str(" @");
        s.push_str(&c[..c.len().min(8)]);
    }
    s
}

/// Plain aligned table, then a one-line summary.
pub(crate) fn table(
    findings: &[Finding],
    suppressed: usize,
    out: &mut dyn Write,
) -> std::io::Result<()> {
    if findings.is_empty() {
        write!(out, "no exposed secrets found")?;
        if suppressed > 0 {
            write!(out, " ({suppressed} suppressed by the baseline)")?;
        }
        return writeln!(out);
    }
    let rows: Vec<[String; 5]> = findings
        .iter()
        .map(|f| {
            [
                f.risk.as_str().to_owned(),
                // a verified status leads the rule column: `github-pat (live)`
                match &f.verification {
                    Some(v) => format!("{} ({})", f.rule_id, v.status.as_str()),
                    None => f.rule_id.to_owned(),
                },
                location(f),
                f.preview.clone(),
                f.risk_reason.clone(),
            ]
        })
        .collect();
    let head = ["RISK", "RULE", "LOCATION", "PREVIEW", "WHY"];
    let mut w = [0usize; 4];
    for (i, h) in head.iter().take(4).enumerate() {
        w[i] = rows
            .iter()
            .map(|r| r[i].chars().count())
            .chain(std::iter::once(h.len()))
            .max()
            .unwrap_or(0);
    }
    let line = |out: &mut dyn Write, cells: [&str; 5]| -> std::io::Result<()> {
        for i in 0..4 {
            let pad = w[i].saturating_sub(cells[i].chars().count());
            write!(out, "{}{}  ", cells[i], " ".repeat(pad))?;
        }
        writeln!(out, "{}", cells[4])
    };
    line(out, head)?;
    for r in &rows {
        line(out, [&r[0], &r[1], &r[2], &r[3], &r[4]])?;
    }
    let mut counts: BTreeMap<Risk, usize> = BTreeMap::new();
    for f in findings {
        *counts.entry(f.risk).or_default() += 1;
    }
    let parts: Vec<String> = counts
        .iter()
        .rev()
        .map(|(r, n)| format!("{n} {r}"))
        .collect();
    write!(
        out,
        "\n{} finding{} ({})",
        findings.len(),
        if findings.len() == 1 { "" } else { "s" },
        parts.join(", ")
    )?;
    if suppressed > 0 {
        write!(out, "; {suppressed} suppressed by the baseline")?;
    }
    writeln!(out)
}

/// JSON: an array of findings with stable field names.
pub(crate) fn json(findings: &[Finding], out: &mut dyn Write) -> std::io::Result<()> {
    serde_json::to_writer_pretty(&mut *out, findings)?;
    writeln!(out)
}

fn level(r: Risk) -> &'static str {
    match r {
        Risk::Critical | Risk::High => "error",
        Risk::Medium => "warning",
        Risk::Low => "note",
    }
}

fn security_severity(r: Risk) -> &'static str {
    match r {
        Risk::Critical => "9.5",
        Risk::High => "8.0",
        Risk::Medium => "5.0",
        Risk::Low => "2.0",
    }
}

/// `path` with `.` and `..` resolved lexically (no file system access: findings
/// are shown with the path as given, and so are the scan roots).
fn lexical(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in path.components() {
        match c {
            Component::CurDir => {}
            Component::ParentDir => {
                if !out.pop() {
                    out.push("..");
                }
            }
            other => out.push(other),
        }
    }
    out
}

/// The directory SARIF URIs are relative to (`%SRCROOT%`): the current
/// directory when every scanned path lies in it (the usual CI case: the
/// checkout), else the deepest directory that contains them all (a file counts
/// as its parent directory).
pub(crate) fn scan_root(paths: &[PathBuf], cwd: &Path) -> PathBuf {
    let cwd = lexical(cwd);
    let abs: Vec<PathBuf> = paths.iter().map(|p| lexical(&cwd.join(p))).collect();
    if abs.iter().all(|p| p.starts_with(&cwd)) {
        return cwd;
    }
    let dirs = abs.iter().map(|p| {
        if p.is_file() {
            p.parent()
                .map(Path::to_path_buf)
                .unwrap_or_else(|| p.clone())
        } else {
            p.clone()
        }
    });
    let mut root: Option<PathBuf> = None;
    for d in dirs {
        root = Some(match root {
            None => d,
            Some(r) => r
                .components()
                .zip(d.components())
                .take_while(|(a, b)| a == b)
                .map(|(a, _)| a)
                .collect(),
        });
    }
    root.unwrap_or(cwd)
}

/// Percent-encodes a `/`-separated path for a URI (RFC 3986 unreserved
/// characters and `/` stay as they are).
fn encode(path: &str) -> String {
    let mut enc = String::with_capacity(path.len());
    for b in path.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~/".contains(&b) {
            enc.push(b as char);
        } else {
            enc.push_str(&format!("%{b:02X}"));
        }
    }
    enc
}

/// A `file://` URI for an absolute path; a directory's ends with `/`.
fn file_uri(path: &Path, dir: bool) -> String {
    let mut p = path.to_string_lossy().replace('\\', "/");
    if !p.starts_with('/') {
        p.insert(0, '/'); // C:/x → /C:/x
    }
    if dir && !p.ends_with('/') {
        p.push('/');
    }
    format!("file://{}", encode(&p))
}

/// The artifact URI of a finding's file: relative to `root` (with
/// `uriBaseId: %SRCROOT%`) when it lies there, whatever form the path was given
/// in; else an absolute `file://` URI.
fn artifact(file: &str, root: &Path, cwd: &Path) -> serde_json::Value {
    let abs = lexical(&cwd.join(file.replace('\\', "/")));
    match abs.strip_prefix(root) {
        Ok(rel) if !rel.as_os_str().is_empty() => {
            let rel: Vec<String> = rel
                .components()
                .map(|c| c.as_os_str().to_string_lossy().into_owned())
                .collect();
            json!({ "uri": encode(&rel.join("/")), "uriBaseId": SRCROOT })
        }
        _ => json!({ "uri": file_uri(&abs, false) }),
    }
}

/// The base id of relative artifact URIs (GitHub code scanning's convention).
const SRCROOT: &str = "%SRCROOT%";

/// A rule's `name`: its id in PascalCase (`github-pat` → `GithubPat`), as SARIF
/// viewers show names next to ids.
fn rule_name(id: &str) -> String {
    id.split(['-', '_'])
        .filter(|w| !w.is_empty())
        .map(|w| {
            let mut c = w.chars();
            c.next()
                .map(|f| f.to_ascii_uppercase().to_string() + c.as_str())
                .unwrap_or_default()
        })
        .collect()
}

/// SARIF 2.1.0 as GitHub code scanning accepts it (and as the OASIS schema
/// requires): URIs relative to `root`, which `originalUriBaseIds` gives as an
/// absolute `file://` URI; `cwd` resolves the findings' paths as given.
pub(crate) fn sarif(
    findings: &[Finding],
    root: &Path,
    cwd: &Path,
    out: &mut dyn Write,
) -> std::io::Result<()> {
    let mut rule_index: BTreeMap<&str, (usize, &Finding)> = BTreeMap::new();
    for f in findings {
        let n = rule_index.len();
        rule_index.entry(f.rule_id).or_insert((n, f));
    }
    // stable order: by rule id
    let ids: Vec<&str> = rule_index.keys().copied().collect();
    let index_of: BTreeMap<&str, usize> = ids.iter().enumerate().map(|(i, id)| (*id, i)).collect();
    let rules: Vec<serde_json::Value> = ids
        .iter()
        .map(|id| {
            let f = rule_index[id].1;
            let worst = findings
                .iter()
                .filter(|g| g.rule_id == *id)
                .map(|g| g.risk)
                .max()
                .unwrap_or(Risk::Low);
            json!({
                "id": id,
                "name": rule_name(id),
                "shortDescription": { "text": format!("{}: {}", f.provider, f.description) },
                "fullDescription": { "text": format!("{} ({}). Move it into airlock and rotate it.", f.description, f.provider) },
                "defaultConfiguration": { "level": level(worst) },
                "properties": { "tags": ["security", "secret"], "security-severity": security_severity(worst) }
            })
        })
        .collect();
    let cwd = lexical(cwd);
    let root = lexical(root);
    let results: Vec<serde_json::Value> = findings
        .iter()
        .map(|f| {
            let mut props = json!({ "risk": f.risk, "riskReason": f.risk_reason });
            if let Some(c) = &f.commit {
                props["commit"] = json!(c);
            }
            if let Some(h) = f.in_head {
                props["inHead"] = json!(h);
            }
            if let Some(c) = &f.context {
                props["context"] = json!(c);
            }
            if let Some(v) = &f.verification {
                props["verification"] = json!(v.status);
                props["verificationDetail"] = json!(v.detail);
            }
            json!({
                "ruleId": f.rule_id,
                "ruleIndex": index_of[f.rule_id],
                "level": level(f.risk),
                "message": { "text": format!("{} {} ({} risk: {})", f.description, f.preview, f.risk, f.risk_reason) },
                "locations": [{
                    "physicalLocation": {
                        "artifactLocation": artifact(&f.file, &root, &cwd),
                        "region": { "startLine": f.line, "startColumn": f.column }
                    }
                }],
                "partialFingerprints": { "airlockSecret/v1": f.fingerprint },
                "properties": props
            })
        })
        .collect();
    let doc = json!({
        "$schema": "https://json.schemastore.org/sarif-2.1.0.json",
        "version": "2.1.0",
        "runs": [{
            "tool": { "driver": driver(rules) },
            "originalUriBaseIds": { SRCROOT: { "uri": file_uri(&root, true) } },
            "results": results
        }]
    });
    serde_json::to_writer_pretty(&mut *out, &doc)?;
    writeln!(out)
}

/// The SARIF `driver` object: the tool's name and version, where to read about
/// it, and the rules that have results.
fn driver(rules: Vec<serde_json::Value>) -> serde_json::Value {
    let mut d = json!({
        "name": "airlock",
        "version": env!("CARGO_PKG_VERSION"),
        "semanticVersion": env!("CARGO_PKG_VERSION"),
        "rules": rules
    });
    if let Some(uri) = information_uri(env!("CARGO_PKG_REPOSITORY")) {
        d["informationUri"] = json!(uri);
    }
    d
}

/// Where SARIF viewers send people for the tool: the workspace's `repository`
/// key (one place to change it), unless it is a placeholder on a reserved
/// `.invalid` host (RFC 2606): the key is optional in SARIF, and a link that
/// leads nowhere is worse than none.
fn information_uri(repository: &str) -> Option<&str> {
    let rest = repository.strip_prefix("https://")?;
    let host = rest.split(['/', ':']).next().unwrap_or_default();
    let reserved = host == "invalid" || host.ends_with(".invalid");
    (!host.is_empty() && !reserved).then_some(repository)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn information_uri_is_a_real_https_url_or_absent() {
        assert_eq!(
            information_uri("https://github.com/owner/airlock"),
            Some("https://github.com/owner/airlock")
        );
        assert_eq!(information_uri("https://example.invalid/airlock"), None);
        assert_eq!(information_uri("https://invalid/airlock"), None);
        assert_eq!(information_uri("https://x.invalid:443/a"), None);
        assert_eq!(information_uri("http://example.com/airlock"), None);
        assert_eq!(information_uri(""), None);
    }

    #[test]
    fn root_and_uris_for_every_path_form() {
        let cwd = Path::new("/w/repo");
        for given in [".", "./", "/w/repo", "/w/repo/."] {
            assert_eq!(scan_root(&[given.into()], cwd), cwd, "{given}");
        }
        assert_eq!(scan_root(&["./src".into()], cwd), cwd);
        assert_eq!(scan_root(&["../x".into()], cwd), Path::new("/w/x"));
        assert_eq!(
            scan_root(&["../x/a".into(), "/w/x/b/c".into()], cwd),
            Path::new("/w/x")
        );
        let root = Path::new("/w/x");
        for file in ["../x/a b.env", "/w/x/a b.env", "../repo/../x/./a b.env"] {
            assert_eq!(
                artifact(file, root, cwd),
                json!({"uri": "a%20b.env", "uriBaseId": "%SRCROOT%"}),
                "{file}"
            );
        }
        assert_eq!(
            artifact("/etc/x", root, cwd),
            json!({"uri": "file:///etc/x"})
        );
        assert_eq!(file_uri(root, true), "file:///w/x/");
        assert_eq!(rule_name("github-pat"), "GithubPat");
        assert_eq!(rule_name("jwt"), "Jwt");
    }
}
