//! The authority diff of two configurations (`airlock policy diff`, and the
//! reload log of `airlock serve`): which agents gain or lose a capability, which
//! (method, path) classes become newly allowed or refused (from the rule
//! semantics, [`airlock_policy::diff`]), and what changes in the settings that
//! decide access — TTL, rate, approval, reason, learning, exec programs, service
//! URL and authentication, `default_access` and `egress`. Settings that do not
//! change what an agent may do (timeouts, body limits, audit fsync) are not
//! reported. Nothing here holds a secret value: the config never does, and auth
//! changes are reported by field name only.

use std::collections::BTreeSet;

use airlock_policy::{DiffError, PathClass, RuleSet};
use serde::Serialize;

use crate::{Capability, Config, DefaultAccess, Mode};

/// Everything that changes who may do what between two configurations.
#[derive(Debug, Clone, Serialize)]
pub struct AuthorityDiff {
    /// Capabilities added, removed or changed, by name.
    pub capabilities: Vec<CapabilityDiff>,
    /// Services added, removed or changed, by name.
    pub services: Vec<ServiceDiff>,
    /// `[server]` settings that changed.
    pub server: Vec<SettingChange>,
}

/// What changes for one capability.
#[derive(Debug, Clone, Serialize)]
pub struct CapabilityDiff {
    /// The capability's name.
    pub capability: String,
    /// `added`, `removed` or `changed`.
    pub status: Status,
    /// Agents that may use it now and could not before; `*` is every agent
    /// (a capability without `agents` under `default_access = "open"`).
    pub agents_gained: Vec<String>,
    /// Agents that could use it and may not now; `*` as above.
    pub agents_lost: Vec<String>,
    /// Settings that changed.
    pub settings: Vec<SettingChange>,
    /// The (method, path) classes decided differently (HTTP capabilities).
    pub paths: Vec<PathChange>,
}

/// Whether an entry was added, removed or changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// Only in the new configuration.
    Added,
    /// Only in the old configuration.
    Removed,
    /// In both, different.
    Changed,
}

/// One setting, before and after (`None`: not set).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SettingChange {
    /// The setting's name as written in `airlock.toml`.
    pub setting: String,
    /// Before.
    pub old: Option<String>,
    /// After.
    pub new: Option<String>,
}

/// A class of requests decided differently (see [`airlock_policy::PathClass`]).
#[derive(Debug, Clone, Serialize)]
pub struct PathChange {
    /// `newly allowed` or `newly refused`.
    pub change: &'static str,
    /// The methods it applies to.
    pub methods: Vec<String>,
    /// The rules whose path pattern matches every path of the class (and no
    /// other rule of either side matches them).
    pub matches: Vec<RuleMatch>,
    /// Rules for one of `methods` whose path pattern matches none of the
    /// class's paths (what tells it from its neighbours).
    pub excludes: Vec<RuleMatch>,
    /// The shortest path of the class.
    pub example: String,
}

/// A rule whose path pattern matches a class.
#[derive(Debug, Clone, Serialize)]
pub struct RuleMatch {
    /// `allow` or `deny`.
    pub list: &'static str,
    /// The rule, canonical text.
    pub rule: String,
    /// `old` (removed), `new` (added) or `both`.
    #[serde(rename = "in")]
    pub presence: &'static str,
}

/// What changes for one service.
#[derive(Debug, Clone, Serialize)]
pub struct ServiceDiff {
    /// The service's name.
    pub service: String,
    /// `added`, `removed` or `changed`.
    pub status: Status,
    /// Settings that changed (`url`, `auth`, `forward_cookies`, `ca_file`).
    pub settings: Vec<SettingChange>,
}

/// One line of the diff for people: what, which change, the details, an example.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DiffRow {
    /// `capability NAME`, `service NAME` or `server`.
    pub subject: String,
    /// E.g. `newly allowed`, `agent gains`, `ttl`.
    pub change: String,
    /// E.g. `GET: allow GET /v1/** (new)` or `1h → 2h`.
    pub detail: String,
    /// A path of the class, for path changes.
    pub example: Option<String>,
}

impl AuthorityDiff {
    /// Whether anything that decides access changed.
    pub fn is_empty(&self) -> bool {
        self.capabilities.is_empty() && self.services.is_empty() && self.server.is_empty()
    }

    /// The changes as rows, in order: server, services, capabilities.
    pub fn rows(&self) -> Vec<DiffRow> {
        let mut rows = Vec::new();
        let row = |subject: &str, change: &str, detail: String, example: Option<String>| DiffRow {
            subject: subject.to_owned(),
            change: change.to_owned(),
            detail,
            example,
        };
        // "added" or "removed" for a whole entry (a changed one has only the
        // rows of what changed).
        let status_row = |subject: &str, status: Status| {
            let change = match status {
                Status::Added => "added",
                Status::Removed => "removed",
                Status::Changed => return None,
            };
            Some(row(subject, change, String::new(), None))
        };
        let setting_rows = |rows: &mut Vec<DiffRow>, subject: &str, settings: &[SettingChange]| {
            for s in settings {
                rows.push(row(subject, &s.setting, setting_detail(s), None));
            }
        };
        setting_rows(&mut rows, "server", &self.server);
        for svc in &self.services {
            let subject = format!("service {}", svc.service);
            rows.extend(status_row(&subject, svc.status));
            setting_rows(&mut rows, &subject, &svc.settings);
        }
        for cap in &self.capabilities {
            let subject = format!("capability {}", cap.capability);
            rows.extend(status_row(&subject, cap.status));
            for (change, who) in [
                ("agents gain it", &cap.agents_gained),
                ("agents lose it", &cap.agents_lost),
            ] {
                if !who.is_empty() {
                    rows.push(row(&subject, change, agents(who), None));
                }
            }
            setting_rows(&mut rows, &subject, &cap.settings);
            for p in &cap.paths {
                rows.push(row(
                    &subject,
                    p.change,
                    class_detail(p),
                    Some(p.example.clone()),
                ));
            }
        }
        rows
    }

    /// One line per change, for a log: `capability x: newly allowed POST: …`.
    pub fn summary_lines(&self) -> Vec<String> {
        self.rows()
            .into_iter()
            .map(|r| {
                let mut s = format!("{}: {}", r.subject, r.change);
                if !r.detail.is_empty() {
                    s.push(' ');
                    s.push_str(&r.detail);
                }
                if let Some(e) = r.example {
                    s.push_str(&format!(" (e.g. {e})"));
                }
                s
            })
            .collect()
    }
}

fn agents(list: &[String]) -> String {
    list.iter()
        .map(|a| if a == "*" { "every agent" } else { a.as_str() })
        .collect::<Vec<_>>()
        .join(", ")
}

fn setting_detail(s: &SettingChange) -> String {
    let show = |v: &Option<String>| v.clone().unwrap_or_else(|| "(none)".to_owned());
    format!("{} → {}", show(&s.old), show(&s.new))
}

/// `GET, HEAD: allow GET /v1/** (added); not deny * /v1/admin/**`: the rules
/// for these methods that match the class, then those that do not.
fn class_detail(p: &PathChange) -> String {
    let concerns = |m: &RuleMatch| {
        let method = m.rule.split(' ').next().unwrap_or("*");
        method == "*"
            || p.methods
                .iter()
                .any(|x| x == method || (m.list == "deny" && method == "GET" && x == "HEAD"))
    };
    let show = |m: &RuleMatch| {
        let tag = match m.presence {
            "old" => " (removed)",
            "new" => " (added)",
            _ => "",
        };
        format!("{} {}{tag}", m.list, m.rule)
    };
    let matching: Vec<String> = p.matches.iter().filter(|m| concerns(m)).map(show).collect();
    let mut s = format!("{}: ", p.methods.join(", "));
    if matching.is_empty() {
        s.push_str("paths no rule matches");
    } else {
        s.push_str(&matching.join(", "));
    }
    if !p.excludes.is_empty() {
        let not: Vec<String> = p.excludes.iter().map(show).collect();
        s.push_str("; not ");
        s.push_str(&not.join(", not "));
    }
    s
}

/// Compares two configurations as of `now` (which decides whether a capability
/// is learning).
///
/// # Errors
///
/// [`DiffError`] when a capability's rules are too intricate to compare.
pub fn authority_diff(
    old: &Config,
    new: &Config,
    now: jiff::Timestamp,
) -> Result<AuthorityDiff, DiffError> {
    let mut server = Vec::new();
    let access = |c: &Config| match c.server.default_access {
        DefaultAccess::Open => "open".to_owned(),
        DefaultAccess::Restricted => "restricted".to_owned(),
    };
    push_change(&mut server, "default_access", access(old), access(new));
    let egress = |c: &Config| format!("{:?}", c.server.egress).to_ascii_lowercase();
    push_change(&mut server, "egress", egress(old), egress(new));

    let mut services = Vec::new();
    let names: BTreeSet<&String> = old.services.keys().chain(new.services.keys()).collect();
    for name in names {
        let (o, n) = (old.services.get(name), new.services.get(name));
        let (status, settings) = match (o, n) {
            (None, Some(_)) => (Status::Added, Vec::new()),
            (Some(_), None) => (Status::Removed, Vec::new()),
            (Some(o), Some(n)) => (Status::Changed, service_settings(o, n)),
            (None, None) => continue,
        };
        if status != Status::Changed || !settings.is_empty() {
            services.push(ServiceDiff {
                service: name.clone(),
                status,
                settings,
            });
        }
    }

    let mut capabilities = Vec::new();
    let names: BTreeSet<&String> = old
        .capabilities
        .keys()
        .chain(new.capabilities.keys())
        .collect();
    for name in names {
        let (o, n) = (old.capabilities.get(name), new.capabilities.get(name));
        let status = match (o, n) {
            (None, Some(_)) => Status::Added,
            (Some(_), None) => Status::Removed,
            _ => Status::Changed,
        };
        let (was, is) = (
            o.map(|c| granted(old, c)).unwrap_or_default(),
            n.map(|c| granted(new, c)).unwrap_or_default(),
        );
        let (agents_gained, agents_lost) = agent_changes(&was, &is);
        let settings = match (o, n) {
            (Some(o), Some(n)) => capability_settings(o, n, now),
            _ => Vec::new(),
        };
        let (old_rules, new_rules) = (
            o.and_then(|c| effective(c, now)),
            n.and_then(|c| effective(c, now)),
        );
        let rule_diff = airlock_policy::diff(old_rules.as_ref(), new_rules.as_ref())?;
        let paths: Vec<PathChange> = rule_diff.classes.iter().map(path_change).collect();
        let unchanged = status == Status::Changed
            && agents_gained.is_empty()
            && agents_lost.is_empty()
            && settings.is_empty()
            && paths.is_empty();
        if !unchanged {
            capabilities.push(CapabilityDiff {
                capability: name.clone(),
                status,
                agents_gained,
                agents_lost,
                settings,
                paths,
            });
        }
    }
    Ok(AuthorityDiff {
        capabilities,
        services,
        server,
    })
}

fn push_change(
    out: &mut Vec<SettingChange>,
    setting: &str,
    old: impl Into<Option<String>>,
    new: impl Into<Option<String>>,
) {
    let (old, new): (Option<String>, Option<String>) = (old.into(), new.into());
    if old != new {
        // Free-form values (commands, paths, env names) are shown escaped if
        // they hold control characters: a configuration under review must not
        // be able to rewrite the reviewer's terminal to hide a row.
        let (old, new) = (old.map(|s| printable(&s)), new.map(|s| printable(&s)));
        out.push(SettingChange {
            setting: setting.to_owned(),
            old,
            new,
        });
    }
}

fn service_settings(o: &crate::Service, n: &crate::Service) -> Vec<SettingChange> {
    let mut out = Vec::new();
    push_change(&mut out, "url", o.url.to_string(), n.url.to_string());
    if o.auth != n.auth {
        // By field name only: values are secret *names*, but a diff that prints
        // none cannot leak one.
        let (fo, fnew) = (auth_fields(&o.auth), auth_fields(&n.auth));
        let changed: BTreeSet<&str> = fo
            .iter()
            .filter(|f| !fnew.contains(f))
            .chain(fnew.iter().filter(|f| !fo.contains(f)))
            .map(|(name, _)| *name)
            .collect();
        let type_old = o.auth.type_name().to_owned();
        let type_new = n.auth.type_name().to_owned();
        let list = changed.into_iter().collect::<Vec<_>>().join(", ");
        out.push(SettingChange {
            setting: "auth".to_owned(),
            old: Some(type_old),
            new: Some(format!("{type_new} (changed: {list})")),
        });
    }
    push_change(
        &mut out,
        "forward_cookies",
        o.forward_cookies.to_string(),
        n.forward_cookies.to_string(),
    );
    let ca = |s: &crate::Service| s.ca_file.as_ref().map(|p| p.display().to_string());
    push_change(&mut out, "ca_file", ca(o), ca(n));
    out
}

fn auth_fields(a: &crate::Auth) -> Vec<(&'static str, crate::AuthValueRef<'_>)> {
    a.fields().into_iter().map(|(f, v)| (f.name, v)).collect()
}

fn capability_settings(o: &Capability, n: &Capability, now: jiff::Timestamp) -> Vec<SettingChange> {
    let mut out = Vec::new();
    push_change(&mut out, "service", o.service.clone(), n.service.clone());
    let mode = |c: &Capability| match c.mode {
        Mode::Http => "http".to_owned(),
        Mode::Exec => "exec".to_owned(),
    };
    push_change(&mut out, "mode", mode(o), mode(n));
    push_change(&mut out, "ttl", duration(o.ttl), duration(n.ttl));
    let rate = |c: &Capability| c.rate.as_ref().map(ToString::to_string);
    push_change(&mut out, "rate", rate(o), rate(n));
    let approval = |c: &Capability| format!("{:?}", c.approval).to_ascii_lowercase();
    push_change(&mut out, "approval", approval(o), approval(n));
    push_change(
        &mut out,
        "requires_reason",
        o.requires_reason.to_string(),
        n.requires_reason.to_string(),
    );
    let learn = |c: &Capability| {
        c.learn_until.map(|u| {
            if c.learning_at(now) {
                format!("learning until {u}")
            } else {
                format!("learning ended {u}")
            }
        })
    };
    push_change(&mut out, "learn_until", learn(o), learn(n));
    let list = |v: &[String]| (!v.is_empty()).then(|| v.join(", "));
    push_change(&mut out, "methods", list(&o.methods), list(&n.methods));
    push_change(&mut out, "commands", list(&o.commands), list(&n.commands));
    push_change(&mut out, "workdirs", list(&o.workdirs), list(&n.workdirs));
    push_change(
        &mut out,
        "deny_args",
        list(&o.deny_args),
        list(&n.deny_args),
    );
    // Environment values may be anything the owner wrote: names only.
    let env = |c: &Capability| list(&c.env.keys().cloned().collect::<Vec<_>>());
    push_change(&mut out, "env", env(o), env(n));
    if o.env != n.env && env(o) == env(n) {
        out.push(SettingChange {
            setting: "env".to_owned(),
            old: Some("(values)".to_owned()),
            new: Some("(values changed)".to_owned()),
        });
    }
    push_change(
        &mut out,
        "timeout",
        o.timeout.map(duration),
        n.timeout.map(duration),
    );
    push_change(
        &mut out,
        "confine",
        o.confine.to_string(),
        n.confine.to_string(),
    );
    push_change(
        &mut out,
        "network",
        o.network.as_str().to_owned(),
        n.network.as_str().to_owned(),
    );
    push_change(
        &mut out,
        "inject",
        o.inject.as_str().to_owned(),
        n.inject.as_str().to_owned(),
    );
    out
}

/// `1h`, `1h 30m`, `45s` (jiff's friendly format).
fn duration(d: std::time::Duration) -> String {
    match jiff::SignedDuration::try_from(d) {
        Ok(d) => format!("{d:#}"),
        Err(_) => format!("{}s", d.as_secs()),
    }
}

/// The agents a capability is granted to: its `agents`, or `*` (every agent)
/// when it has none and `default_access` is open, or nobody but the owner.
fn granted(config: &Config, cap: &Capability) -> BTreeSet<String> {
    match &cap.agents {
        Some(list) => list.iter().cloned().collect(),
        None if config.server.default_access == DefaultAccess::Open => {
            BTreeSet::from(["*".to_owned()])
        }
        None => BTreeSet::new(),
    }
}

/// Gained and lost agents; `*` stands for every agent, so going from `*` to a
/// list loses `*` (every agent but those listed) and gains nothing.
fn agent_changes(was: &BTreeSet<String>, is: &BTreeSet<String>) -> (Vec<String>, Vec<String>) {
    let all = |s: &BTreeSet<String>| s.contains("*");
    match (all(was), all(is)) {
        (true, true) => (Vec::new(), Vec::new()),
        (false, true) => (vec!["*".to_owned()], Vec::new()),
        (true, false) => (Vec::new(), vec!["*".to_owned()]),
        (false, false) => (
            is.difference(was).cloned().collect(),
            was.difference(is).cloned().collect(),
        ),
    }
}

/// The HTTP rules in force at `now`: `None` when no HTTP request is allowed (an
/// exec capability, or one that finished learning without allow rules); while
/// learning, every request the deny rules leave.
fn effective(cap: &Capability, now: jiff::Timestamp) -> Option<RuleSet> {
    if cap.mode != Mode::Http {
        return None;
    }
    if cap.learn_until.is_some() {
        if cap.learning_at(now) {
            let deny: Vec<String> = cap.deny_written().map(str::to_owned).collect();
            return RuleSet::compile(&[], &deny, &cap.methods).ok();
        }
        if cap.allow.is_empty() {
            return None;
        }
    }
    Some(cap.rules.clone())
}

fn path_change(c: &PathClass) -> PathChange {
    PathChange {
        change: c.change.as_str(),
        methods: c.methods.clone(),
        matches: c.matches.iter().map(rule_match).collect(),
        excludes: c.excludes.iter().map(rule_match).collect(),
        example: c.example.clone(),
    }
}

fn rule_match(m: &airlock_policy::MatchedRule) -> RuleMatch {
    RuleMatch {
        list: m.list.as_str(),
        rule: m.rule.clone(),
        presence: m.presence.as_str(),
    }
}

/// `s`, or its escaped form when it holds a control character.
fn printable(s: &str) -> String {
    if s.chars().any(char::is_control) {
        s.escape_debug().to_string()
    } else {
        s.to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn parse(text: &str) -> Config {
        Config::parse(Path::new("airlock.toml"), text).unwrap()
    }

    const BASE: &str =
        "[services.s]\nurl = \"https://x.example\"\nauth = { type = \"bearer\", secret = \"s\" }\n";

    fn now() -> jiff::Timestamp {
        "2026-12-07T12:00:00Z".parse().unwrap()
    }

    #[test]
    fn default_access_decides_who_holds_a_capability_without_agents() {
        let cap = "[capabilities.c]\nservice = \"s\"\n";
        let open = parse(&format!("{BASE}{cap}"));
        let restricted = parse(&format!(
            "[server]\ndefault_access = \"restricted\"\n{BASE}{cap}"
        ));
        let d = authority_diff(&open, &restricted, now()).unwrap();
        assert_eq!(d.capabilities[0].agents_lost, ["*"]);
        assert_eq!(d.server[0].setting, "default_access");
        assert_eq!(duration(std::time::Duration::from_secs(5400)), "1h 30m");
        let d = authority_diff(&restricted, &open, now()).unwrap();
        assert_eq!(d.capabilities[0].agents_gained, ["*"]);
        assert!(d.capabilities[0].paths.is_empty());
    }

    #[test]
    fn learning_is_compared_as_what_it_allows_now() {
        let learning = parse(&format!(
            "{BASE}[capabilities.c]\nservice = \"s\"\ndeny = [\"DELETE /**\"]\nlearn_until = \"2026-12-07T13:00:00Z\"\n"
        ));
        let applied = parse(&format!(
            "{BASE}[capabilities.c]\nservice = \"s\"\ndeny = [\"DELETE /**\"]\nallow = [\"GET /v1/*\"]\n"
        ));
        let d = authority_diff(&learning, &applied, now()).unwrap();
        let c = &d.capabilities[0];
        assert!(c.paths.iter().all(|p| p.change == "newly refused"), "{c:?}");
        assert!(!c.paths.is_empty());
        assert_eq!(c.settings[0].setting, "learn_until");
        // After the window, without allow rules, it refuses everything.
        let later: jiff::Timestamp = "2026-12-08T00:00:00Z".parse().unwrap();
        let d = authority_diff(&learning, &applied, later).unwrap();
        assert!(
            d.capabilities[0]
                .paths
                .iter()
                .all(|p| p.change == "newly allowed")
        );
        assert!(d.rows().iter().any(|r| r.change == "newly allowed"));
    }

    #[test]
    fn summary_lines_name_the_capability_and_an_example() {
        let old = parse(&format!("{BASE}[capabilities.c]\nservice = \"s\"\n"));
        let new = parse(&format!(
            "{BASE}[capabilities.c]\nservice = \"s\"\ndeny = [\"* /admin/**\"]\n"
        ));
        let lines = authority_diff(&old, &new, now()).unwrap().summary_lines();
        assert_eq!(
            lines,
            [
                "capability c: newly refused GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS: \
                 deny * /admin/** (added) (e.g. /admin)"
            ]
        );
        assert!(authority_diff(&new, &new, now()).unwrap().is_empty());
    }
}
