//! Output formats: an aligned table for people, JSON and SARIF 2.1.0 for tools.

use std::collections::BTreeMap;
use std::io::Write;

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
                f.rule_id.to_owned(),
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

/// A relative, `/`-separated, percent-encoded URI; absolute paths become `file://` URIs.
fn uri(path: &str) -> (String, bool) {
    let p = path.replace('\\', "/");
    let mut enc = String::with_capacity(p.len());
    for b in p.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~/".contains(&b) {
            enc.push(b as char);
        } else {
            enc.push_str(&format!("%{b:02X}"));
        }
    }
    if p.starts_with('/') {
        (format!("file://{enc}"), false)
    } else {
        (enc, true)
    }
}

/// SARIF 2.1.0 as GitHub code scanning accepts it.
pub(crate) fn sarif(findings: &[Finding], out: &mut dyn Write) -> std::io::Result<()> {
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
            let worst = findings.iter().filter(|g| g.rule_id == *id).map(|g| g.risk).max().unwrap_or(Risk::Low);
            json!({
                "id": id,
                "name": id,
                "shortDescription": { "text": format!("{}: {}", f.provider, f.description) },
                "fullDescription": { "text": format!("{} ({}). Move it into airlock and rotate it.", f.description, f.provider) },
                "defaultConfiguration": { "level": level(worst) },
                "properties": { "tags": ["security", "secret"], "security-severity": security_severity(worst) }
            })
        })
        .collect();
    let results: Vec<serde_json::Value> = findings
        .iter()
        .map(|f| {
            let (u, relative) = uri(&f.file);
            let mut artifact = json!({ "uri": u });
            if relative {
                artifact["uriBaseId"] = json!("%SRCROOT%");
            }
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
            json!({
                "ruleId": f.rule_id,
                "ruleIndex": index_of[f.rule_id],
                "level": level(f.risk),
                "message": { "text": format!("{} {} ({} risk: {})", f.description, f.preview, f.risk, f.risk_reason) },
                "locations": [{
                    "physicalLocation": {
                        "artifactLocation": artifact,
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
            "tool": { "driver": {
                "name": "airlock",
                "informationUri": "https://example.invalid/airlock",
                "rules": rules
            }},
            "results": results
        }]
    });
    serde_json::to_writer_pretty(&mut *out, &doc)?;
    writeln!(out)
}
