//! `airlock learn show|apply NAME`: learning mode's proposal.
//!
//! A capability added with `airlock cap add NAME --service S --learn [--for D]`
//! (`learn_until` in `airlock.toml`) allows the service's requests until then
//! — its deny rules still apply — and each allowed request is on the audit
//! record with the rule `learning until …`. `show` reads those records back
//! and proposes the smallest allow rules that cover them: one `METHOD PATH`
//! per method and path template, where a segment that is an identifier (a
//! number, a UUID, a long hex string, a mixed letters-and-digits token of 8 or
//! more characters such as `cus_9fK2…` or a date) becomes `*` and every other
//! segment stays as it was seen. A path with a `*` in it is never proposed
//! (in a rule it would be a wildcard: an agent could request `/v1/**` to have
//! itself granted everything); `show` lists such requests. `apply` writes them as the capability's
//! `allow` and removes `learn_until` (the rest of the file is kept); `apply
//! --edit` first opens them in the owner's editor, and writes what is saved.

use std::collections::BTreeMap;

use airlock_audit::{Decision, Filter, Kind};
use airlock_config::{Config, ConfigDoc, Mode};
use airlock_home::Home;
use anyhow::bail;
use serde_json::json;

use crate::cli::LearnCommand;
use crate::output;

/// At most this many example paths are shown per proposed rule.
const EXAMPLES: usize = 3;

pub(crate) fn run(home: &Home, cmd: &LearnCommand) -> anyhow::Result<()> {
    match cmd {
        LearnCommand::Show { name, json } => show(home, name, *json),
        LearnCommand::Apply { name, edit } => apply(home, name, *edit),
    }
}

/// One proposed rule: what it covers.
#[derive(Debug, Default)]
struct Proposed {
    count: u64,
    examples: Vec<String>,
}

/// What learning saw for one capability.
struct Proposal {
    /// Rules (`METHOD /template`) with what each covers.
    rules: BTreeMap<String, Proposed>,
    /// Requests whose path holds a `*`: never turned into a rule, where it
    /// would be a wildcard (an agent could otherwise write itself `GET /**`).
    not_proposed: Vec<String>,
    /// When learning ends.
    until: jiff::Timestamp,
}

/// The proposal for capability `name`.
fn proposal(home: &Home, name: &str) -> anyhow::Result<Proposal> {
    let config = Config::load(home)?;
    let Some(cap) = config.capability(name) else {
        bail!(
            "unknown capability \"{}\"; see `airlock cap list`",
            name.escape_debug()
        );
    };
    if cap.mode != Mode::Http {
        bail!("capability \"{name}\" runs programs (mode exec): learning is for HTTP capabilities");
    }
    let Some(until) = cap.learn_until else {
        bail!(
            "capability \"{name}\" is not learning; start with `airlock cap add NAME --service {} --learn [--for 1h]`",
            cap.service
        );
    };
    let mut rules: BTreeMap<String, Proposed> = BTreeMap::new();
    let mut not_proposed = Vec::new();
    let dir = home.audit_dir();
    if dir.exists() {
        for record in airlock_audit::records(&dir, Filter::all().capability(name))? {
            let e = record?.event;
            let learned = e.kind == Kind::Request
                && e.decision == Some(Decision::Allow)
                && e.rule
                    .as_deref()
                    .is_some_and(|r| r.starts_with(airlock_broker::LEARNING_RULE));
            let (Some(method), Some(path)) = (e.method, e.path) else {
                continue;
            };
            if !learned {
                continue;
            }
            if path.contains('*') {
                let seen = format!("{method} {path}");
                if !not_proposed.contains(&seen) {
                    not_proposed.push(seen);
                }
                continue;
            }
            let p = rules
                .entry(format!("{method} {}", template(&path)))
                .or_default();
            p.count += 1;
            if p.examples.len() < EXAMPLES && !p.examples.contains(&path) {
                p.examples.push(path);
            }
        }
    }
    Ok(Proposal {
        rules,
        not_proposed,
        until,
    })
}

fn show(home: &Home, name: &str, as_json: bool) -> anyhow::Result<()> {
    let Proposal {
        rules,
        not_proposed,
        until,
    } = proposal(home, name)?;
    let learning = jiff::Timestamp::now() < until;
    let mut ordered: Vec<(&String, &Proposed)> = rules.iter().collect();
    ordered.sort_by(|a, b| b.1.count.cmp(&a.1.count).then(a.0.cmp(b.0)));
    if as_json {
        let rules: Vec<_> = ordered
            .iter()
            .map(|(rule, p)| json!({"rule": rule, "requests": p.count, "examples": p.examples}))
            .collect();
        return output::json(&json!({
            "capability": name,
            "learn_until": until.to_string(),
            "learning": learning,
            "requests": rules.iter().map(|r| r["requests"].as_u64().unwrap_or(0)).sum::<u64>(),
            "rules": rules,
            "not_proposed": not_proposed,
        }));
    }
    output::line(format_args!(
        "capability \"{name}\": {} {until}",
        if learning {
            "learning until"
        } else {
            "learning ended at"
        }
    ));
    let rows = ordered
        .iter()
        .map(|(rule, p)| {
            vec![
                (*rule).clone(),
                p.count.to_string(),
                p.examples
                    .iter()
                    .map(|e| e.escape_debug().to_string())
                    .collect::<Vec<_>>()
                    .join(" "),
            ]
        })
        .collect();
    output::table(
        &["proposed allow rule", "requests", "examples"],
        rows,
        "no request recorded yet: let the agent work, then run this again",
    );
    if !not_proposed.is_empty() {
        output::warn(format_args!(
            "not proposed: {} request(s) with `*` in the path, which a rule would read as a wildcard: {}",
            not_proposed.len(),
            not_proposed
                .iter()
                .map(|r| r.escape_debug().to_string())
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    if !rules.is_empty() {
        output::note(format_args!(
            "`airlock learn apply {name}` writes these rules and ends learning"
        ));
    }
    Ok(())
}

fn apply(home: &Home, name: &str, edit: bool) -> anyhow::Result<()> {
    let proposed = proposal(home, name)?.rules;
    if proposed.is_empty() {
        bail!(
            "nothing to apply: capability \"{name}\" recorded no request while learning (a capability without allow rules would allow every path); let the agent work first, or write rules with `airlock cap add`"
        );
    }
    // The editor runs before the configuration is locked: the owner may take
    // a while, and other commands must not wait for them.
    let allow: Vec<String> = if edit {
        let methods = Config::load(home)?
            .capability(name)
            .map(|c| c.methods.clone())
            .unwrap_or_default();
        edit_rules(name, &proposed, &methods)?
    } else {
        proposed.keys().cloned().collect()
    };
    let _lock = crate::cmd::cap::lock_config(home)?;
    let mut doc = ConfigDoc::load(home)?;
    doc.apply_learned(name, &allow)?;
    doc.save()?;
    output::line(format_args!(
        "capability \"{name}\": learning ended; {} allow rule(s) written:",
        allow.len()
    ));
    for rule in &allow {
        output::line(format_args!("  {rule}"));
    }
    Ok(())
}

/// `apply --edit`: the proposed rules in a file for `$VISUAL` / `$EDITOR` (else
/// `vi`), one `METHOD PATH` a line with what each covers as a comment above it;
/// the rules saved, each checked. An empty file, or an editor that exits with
/// a failure, applies nothing.
fn edit_rules(
    name: &str,
    proposed: &BTreeMap<String, Proposed>,
    methods: &[String],
) -> anyhow::Result<Vec<String>> {
    use std::io::Write as _;
    let mut text = format!(
        "# Allow rules for capability \"{name}\", one \"METHOD PATH\" a line (`*` within a\n\
         # segment, `**` for any number of segments). Lines starting with # are ignored.\n\
         # Save and quit to write them to airlock.toml and end learning; save an empty\n\
         # file, or quit the editor with an error (:cq in vi), to write nothing.\n"
    );
    for (rule, p) in proposed {
        text.push_str(&format!(
            "\n# {} request(s), e.g. {}\n{rule}\n",
            p.count,
            p.examples.join(", ")
        ));
    }
    let mut file = tempfile::Builder::new()
        .prefix("airlock-learn-")
        .suffix(".txt")
        .tempfile()?;
    file.write_all(text.as_bytes())?;
    file.flush()?;
    let editor = ["VISUAL", "EDITOR"]
        .into_iter()
        .find_map(|v| std::env::var(v).ok().filter(|e| !e.trim().is_empty()))
        .unwrap_or_else(|| "vi".to_owned());
    // Through the shell, as git does, so `EDITOR="code --wait"` works; the
    // file's path is an argument, never part of the command text.
    let status = std::process::Command::new("sh")
        .arg("-c")
        .arg(format!("{editor} \"$1\""))
        .arg("sh")
        .arg(file.path())
        .status()
        .map_err(|e| anyhow::anyhow!("cannot start the editor ({editor}): {e}"))?;
    if !status.success() {
        bail!("the editor ({editor}) exited with {status}: nothing was written");
    }
    let saved = std::fs::read_to_string(file.path())?;
    let mut rules = Vec::new();
    for (i, line) in saved.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let rule = airlock_policy::Rule::parse_with_methods(line, methods).map_err(|e| {
            anyhow::anyhow!(
                "line {} of the edited rules: {e}; nothing was written",
                i + 1
            )
        })?;
        let rule = rule.as_str().to_owned();
        if !rules.contains(&rule) {
            rules.push(rule);
        }
    }
    if rules.is_empty() {
        bail!(
            "no rule left in the edited file: nothing was written (a capability without allow rules would allow every path)"
        );
    }
    Ok(rules)
}

/// `path` with its identifier segments as `*`.
fn template(path: &str) -> String {
    path.split('/')
        .map(|seg| if is_identifier(seg) { "*" } else { seg })
        .collect::<Vec<_>>()
        .join("/")
}

/// Whether a path segment names one object rather than a kind of them: all
/// digits; a UUID; 16 or more hex digits; or 8 or more characters of letters,
/// digits, `_`, `-`, `.`, `:` with at least one digit (`cus_9fK2x1`, `2026-12-07`).
fn is_identifier(seg: &str) -> bool {
    if seg.is_empty() {
        return false;
    }
    let digits = seg.bytes().filter(u8::is_ascii_digit).count();
    if digits == seg.len() {
        return true;
    }
    let hex = seg.bytes().all(|b| b.is_ascii_hexdigit());
    if hex && seg.len() >= 16 {
        return true;
    }
    let uuid = seg.len() == 36
        && seg.bytes().enumerate().all(|(i, b)| match i {
            8 | 13 | 18 | 23 => b == b'-',
            _ => b.is_ascii_hexdigit(),
        });
    let token = seg.len() >= 8
        && digits > 0
        && seg
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.' | b':'));
    uuid || token
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identifiers_become_stars_and_names_stay() {
        for (path, want) in [
            ("/v1/customers", "/v1/customers"),
            ("/v1/customers/42", "/v1/customers/*"),
            (
                "/v1/customers/cus_9fK2x1Lq/invoices",
                "/v1/customers/*/invoices",
            ),
            (
                "/repos/acme/app/issues/1234/comments",
                "/repos/acme/app/issues/*/comments",
            ),
            ("/objects/0123456789abcdef0123", "/objects/*"),
            ("/items/550e8400-e29b-41d4-a716-446655440000", "/items/*"),
            ("/reports/2026-12-07", "/reports/*"),
            ("/api/v2/users/me", "/api/v2/users/me"),
            ("/deadbeef", "/deadbeef"),
            ("/", "/"),
        ] {
            assert_eq!(template(path), want, "{path}");
        }
    }
}
