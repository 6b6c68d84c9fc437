//! The pages (all `GET`, no side effect) and the exposures scan.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::path::PathBuf;
use std::sync::{Arc, PoisonError};

use airlock_broker::approval::PendingRecord;
use airlock_broker::state;
use airlock_broker::tokens;
use axum::response::{IntoResponse, Response};
use http::StatusCode;
use serde_json::json;

use crate::html::{csrf_field, esc, page};
use crate::live::{self, COLUMNS, Filters};
use crate::{Form, Ui, html};

/// How many records the live view shows when it opens.
const LIVE_ROWS: usize = 200;

pub(crate) fn login_page() -> Response {
    html(page(
        "Log in",
        "",
        None,
        "<p id=\"login\">Logging in with the link `airlock ui` printed…</p>\
<noscript><p>The login needs JavaScript: the token stays in the link's fragment, which the browser never sends.</p></noscript>",
    ))
}

fn select(name: &str, current: Option<&str>, options: &[(&str, &str)]) -> String {
    let mut s = format!("<select name=\"{name}\" id=\"f-{name}\">");
    for (value, label) in options {
        let sel = if current == Some(*value) || (current.is_none() && value.is_empty()) {
            " selected"
        } else {
            ""
        };
        let _ = write!(s, "<option value=\"{value}\"{sel}>{label}</option>");
    }
    s.push_str("</select>");
    s
}

/// Live activity: the newest records, then new ones as they are written.
pub(crate) async fn live(ui: &Arc<Ui>, q: &Form, csrf: &str) -> Response {
    let filters = Filters::from(q);
    let ui2 = ui.clone();
    let f2 = Filters::from(q);
    let (records, config) = tokio::task::spawn_blocking(move || {
        (
            live::newest(&ui2, &f2, LIVE_ROWS),
            airlock_config::Config::load(&ui2.home).ok(),
        )
    })
    .await
    .unwrap_or_default();
    let after = records.last().map_or(0, |r| r.seq);
    let mut body = String::new();
    let capabilities: Vec<String> = config
        .map(|c| c.capabilities.keys().cloned().collect())
        .unwrap_or_default();
    let mut cap_opts: Vec<(&str, &str)> = vec![("", "any capability")];
    cap_opts.extend(capabilities.iter().map(|c| (c.as_str(), c.as_str())));
    // Capability names come from the owner's configuration (validated names);
    // the agent filter is free text.
    let cap_select = {
        let mut s = String::from("<select name=\"capability\" id=\"f-capability\">");
        for (v, l) in &cap_opts {
            let sel = if filters.capability.as_deref().unwrap_or("") == *v {
                " selected"
            } else {
                ""
            };
            let _ = write!(s, "<option value=\"{}\"{sel}>{}</option>", esc(v), esc(l));
        }
        s.push_str("</select>");
        s
    };
    let _ = write!(
        body,
        "<form method=\"get\" action=\"/\" class=\"filters\">\
<label>agent <input name=\"agent\" id=\"f-agent\" value=\"{}\"></label> \
<label>capability {cap_select}</label> <label>decision {}</label> \
<button type=\"submit\">Filter</button> <a href=\"/\">clear</a></form>",
        esc(filters.agent.as_deref().unwrap_or("")),
        select(
            "decision",
            filters.decision.map(|d| d.as_str()),
            &[("", "any"), ("allow", "allowed"), ("deny", "refused")]
        ),
    );
    body.push_str(&chart(&records));
    let _ = write!(
        body,
        "<p class=\"hint\">Newest first; new records appear as they are written. Click a number to see the whole record.</p>\
<table id=\"live\" data-after=\"{after}\" data-query=\"{}\"><thead><tr>",
        esc(&filters.query())
    );
    for (_, title) in COLUMNS {
        let _ = write!(body, "<th>{title}</th>");
    }
    body.push_str("</tr></thead><tbody>");
    for r in records.iter().rev() {
        body.push_str(&live::row(r));
    }
    body.push_str("</tbody></table>");
    html(page("Live activity", "/", Some(csrf), &body))
}

/// Requests and refusals per minute over the last hour, per agent, as an SVG
/// drawn here (no chart library).
fn chart(records: &[airlock_audit::Record]) -> String {
    let now = jiff::Timestamp::now();
    let mut per_agent: BTreeMap<String, ([u32; 60], [u32; 60])> = BTreeMap::new();
    for r in records {
        if !matches!(
            r.event.kind,
            airlock_audit::Kind::Request | airlock_audit::Kind::Exec
        ) {
            continue;
        }
        let age = now.duration_since(r.ts).as_secs();
        if !(0..3600).contains(&age) {
            continue;
        }
        let slot = 59 - (age / 60) as usize;
        let agent = r.event.agent.clone().unwrap_or_else(|| "-".into());
        let e = per_agent.entry(agent).or_insert(([0; 60], [0; 60]));
        if r.event.decision == Some(airlock_audit::Decision::Deny) {
            e.1[slot] += 1;
        } else {
            e.0[slot] += 1;
        }
    }
    if per_agent.is_empty() {
        return "<p class=\"hint\">No requests in the last hour (of the records shown).</p>".into();
    }
    let mut out = String::from(
        "<div class=\"charts\"><p class=\"hint\">Last hour, per minute: requests (blue) and refusals (red), per agent.</p>",
    );
    for (agent, (ok, refused)) in per_agent.iter().take(8) {
        let max = ok
            .iter()
            .zip(refused)
            .map(|(a, b)| a + b)
            .max()
            .unwrap_or(1)
            .max(1);
        let mut bars = String::new();
        for i in 0..60 {
            let h_ok = ok[i] * 30 / max;
            let h_no = refused[i] * 30 / max;
            let x = i * 5;
            if h_ok > 0 {
                let _ = write!(
                    bars,
                    "<rect class=\"ok\" x=\"{x}\" y=\"{}\" width=\"4\" height=\"{h_ok}\"/>",
                    30 - h_ok
                );
            }
            if h_no > 0 {
                let _ = write!(
                    bars,
                    "<rect class=\"no\" x=\"{x}\" y=\"{}\" width=\"4\" height=\"{h_no}\"/>",
                    30 - h_ok - h_no
                );
            }
        }
        let total_ok: u32 = ok.iter().sum();
        let total_no: u32 = refused.iter().sum();
        let _ = write!(
            out,
            "<div class=\"chart\"><span>{} — {total_ok} allowed, {total_no} refused</span>\
<svg viewBox=\"0 0 300 30\" width=\"300\" height=\"30\" role=\"img\">{bars}</svg></div>",
            esc(agent)
        );
    }
    out.push_str("</div>");
    out
}

/// One record, whole.
pub(crate) async fn record(ui: &Arc<Ui>, seq: u64, csrf: &str) -> Response {
    let dir = ui.home.audit_dir();
    let found = tokio::task::spawn_blocking(move || {
        airlock_audit::records(&dir, airlock_audit::Filter::all())
            .ok()?
            .flatten()
            .find(|r| r.seq == seq)
    })
    .await
    .ok()
    .flatten();
    let Some(r) = found else {
        return (
            StatusCode::NOT_FOUND,
            html(page(
                "Record",
                "/",
                Some(csrf),
                "<p>No such record.</p><p><a href=\"/\">Back</a></p>",
            )),
        )
            .into_response();
    };
    let v: serde_json::Value = serde_json::from_str(&r.to_json()).unwrap_or_default();
    let mut body = String::from("<table class=\"record\" id=\"record\">");
    if let Some(obj) = v.as_object() {
        for (k, val) in obj {
            let text = match val {
                serde_json::Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            let _ = write!(body, "<tr><th>{}</th><td>{}</td></tr>", esc(k), esc(&text));
        }
    }
    body.push_str("</table><p><a href=\"/\">Back to live activity</a></p>");
    html(page(&format!("Record {seq}"), "/", Some(csrf), &body))
}

/// An agent token's status as the owner reads it at `now` (the Sessions page
/// and `airlock token list`): "revoked", "expired" or "active".
pub fn token_status(t: &tokens::TokenRecord, now: jiff::Timestamp) -> &'static str {
    if t.revoked {
        "revoked"
    } else if t.expires <= now {
        "expired"
    } else {
        "active"
    }
}

/// The requests every running server holds for approval, oldest first (the
/// Approvals page and `airlock approve` list these). Approvals live only in the
/// server that holds the request: they are asked for over each server's
/// control socket, never read from a file.
pub fn pending_approvals(home: &airlock_home::Home) -> Vec<PendingRecord> {
    let mut out: Vec<PendingRecord> =
        airlock_broker::control::broadcast(home, &json!({"cmd": "approvals"}))
            .into_iter()
            .flat_map(|a| a["approvals"].as_array().cloned().unwrap_or_default())
            .filter_map(|p| serde_json::from_value(p).ok())
            .collect();
    out.sort_by(|a, b| a.created.cmp(&b.created).then_with(|| a.id.cmp(&b.id)));
    out
}

/// Approvals: every held request with all that invariant 13 lists, and
/// Approve / Deny forms carrying the request hash shown.
pub(crate) async fn approvals(ui: &Arc<Ui>, q: &Form, csrf: &str) -> Response {
    let home = ui.home.clone();
    let list = tokio::task::spawn_blocking(move || pending_approvals(&home))
        .await
        .unwrap_or_default();
    let mut items = String::new();
    if list.is_empty() {
        items.push_str("<p class=\"empty\">Nothing is waiting for approval.</p>");
    }
    for p in &list {
        let mark = if p.agent_trusted {
            ""
        } else {
            "? (self-declared)"
        };
        let _ = write!(
            items,
            "<section class=\"approval\" data-id=\"{id}\"><h2>{id}</h2><dl>\
<dt>agent</dt><dd>{agent}{mark}</dd><dt>capability</dt><dd>{cap}</dd>\
<dt>method</dt><dd class=\"method\">{method}</dd>",
            id = esc(&p.id),
            agent = esc(&p.agent),
            cap = esc(&p.capability),
            method = esc(&p.method),
        );
        match &p.url {
            Some(u) => {
                let _ = write!(items, "<dt>URL</dt><dd class=\"url\">{}</dd>", esc(u));
            }
            None => {
                let _ = write!(
                    items,
                    "<dt>command</dt><dd class=\"url\">{}</dd>",
                    esc(&p.path)
                );
            }
        }
        if let Some(cwd) = &p.cwd {
            let _ = write!(items, "<dt>cwd</dt><dd>{}</dd>", esc(cwd));
        }
        items.push_str("<dt>agent-set headers</dt><dd class=\"headers\">");
        if p.headers.is_empty() {
            items.push_str("none");
        }
        for (k, v) in &p.headers {
            let _ = write!(items, "<div>{}: {}</div>", esc(k), esc(v));
        }
        let what = if p.method == "EXEC" { "stdin" } else { "body" };
        let _ = write!(
            items,
            "</dd><dt>{what}</dt><dd class=\"body\">{} bytes{}</dd>\
<dt>reason</dt><dd class=\"reason\">{}</dd><dt>request sha256</dt><dd class=\"hash\">{}</dd>\
<dt>expires</dt><dd>{:.0}</dd></dl>",
            p.body_bytes,
            if p.body_sha256.is_empty() {
                String::new()
            } else {
                format!(", sha256 {}", esc(&p.body_sha256))
            },
            p.reason.as_deref().map_or_else(|| "-".into(), esc),
            esc(&p.hash),
            p.expires,
        );
        for (approve, label, cls) in [("1", "Approve", "approve"), ("0", "Deny", "deny")] {
            let _ = write!(
                items,
                "<form method=\"post\" action=\"/approvals/answer\" class=\"inline\">{}\
<input type=\"hidden\" name=\"id\" value=\"{}\"><input type=\"hidden\" name=\"hash\" value=\"{}\">\
<input type=\"hidden\" name=\"approve\" value=\"{approve}\"><button type=\"submit\" class=\"{cls}\">{label}</button></form>",
                csrf_field(csrf),
                esc(&p.id),
                esc(&p.hash),
            );
        }
        items.push_str("</section>");
    }
    if q.get("partial") == Some("1") {
        return html(items);
    }
    let body = format!(
        "<p class=\"hint\">Each answer applies once, to exactly the request shown (its sha256), through the same control socket as <code>airlock approve</code>.</p>\
<div id=\"approvals\">{items}</div>"
    );
    html(page("Approvals", "/approvals", Some(csrf), &body))
}

/// Sessions (recorded by every server, with the live ones marked), agent tokens,
/// and the emergency lock.
pub(crate) async fn sessions(ui: &Arc<Ui>, csrf: &str) -> Response {
    let home = ui.home.clone();
    let data = tokio::task::spawn_blocking(move || {
        let live: std::collections::BTreeSet<String> =
            airlock_broker::control::broadcast(&home, &json!({"cmd": "sessions"}))
                .into_iter()
                .flat_map(|a| a["sessions"].as_array().cloned().unwrap_or_default())
                .filter_map(|s| s["id"].as_str().map(str::to_string))
                .collect();
        let revs = state::revocations(&home).unwrap_or_default();
        let sessions = state::sessions(&home).unwrap_or_default();
        let toks = tokens::list(&home).unwrap_or_default();
        let uses: Vec<_> = toks
            .iter()
            .map(|t| tokens::last_use(&home, &t.id))
            .collect();
        (live, revs, sessions, toks, uses, state::is_locked(&home))
    })
    .await;
    let Ok((live, revs, sessions, toks, uses, locked)) = data else {
        return (StatusCode::INTERNAL_SERVER_ERROR, "internal error").into_response();
    };
    let now = jiff::Timestamp::now();
    let mut body = String::new();
    if locked {
        let _ = write!(
            body,
            "<section class=\"lock locked\" id=\"lockstate\"><p><strong>airlock is locked</strong>: every running server refuses every request.</p>\
<a class=\"button\" href=\"/unlock\" id=\"unlock\">Unlock…</a></section>"
        );
    } else {
        let _ = write!(
            body,
            "<section class=\"lock\" id=\"lockstate\"><p>airlock is not locked.</p>\
<a class=\"button danger\" href=\"/lock\" id=\"lock\">Lock everything…</a></section>"
        );
    }
    body.push_str("<h2>Sessions</h2><table id=\"sessions\"><thead><tr><th>session</th><th>agent</th><th>capability</th><th>status</th><th>expires</th><th>server pid</th><th></th></tr></thead><tbody>");
    let mut rows: Vec<_> = sessions.iter().collect();
    rows.sort_by_key(|s| std::cmp::Reverse(s.started));
    for s in rows {
        let status = if revs.revokes(&s.id, &s.agent, &s.capability, s.started) {
            "revoked"
        } else if s.expires <= now {
            "expired"
        } else if live.contains(&s.id) {
            "active (live)"
        } else {
            "active"
        };
        let action = if status.starts_with("active") {
            format!(
                "<form method=\"post\" action=\"/sessions/revoke\" class=\"inline\">{}<input type=\"hidden\" name=\"session\" value=\"{}\"><button type=\"submit\" class=\"danger\">Revoke</button></form>",
                csrf_field(csrf),
                esc(&s.id)
            )
        } else {
            String::new()
        };
        let _ = write!(
            body,
            "<tr data-session=\"{id}\" data-agent=\"{agent}\"><td>{id}</td><td>{agent}</td><td>{cap}</td><td class=\"status\">{status}</td><td>{exp:.0}</td><td>{pid}</td><td>{action}</td></tr>",
            id = esc(&s.id),
            agent = esc(&s.agent),
            cap = esc(&s.capability),
            exp = s.expires,
            pid = s.pid,
        );
    }
    body.push_str("</tbody></table>");
    let _ = write!(
        body,
        "<form method=\"post\" action=\"/sessions/revoke\">{}<input type=\"hidden\" name=\"all\" value=\"1\"><button type=\"submit\" class=\"danger\" id=\"revoke-all\">Revoke every session and token</button></form>",
        csrf_field(csrf)
    );
    body.push_str("<h2>Agent tokens</h2><table id=\"tokens\"><thead><tr><th>id</th><th>agent</th><th>capabilities</th><th>expires</th><th>last use</th><th>status</th><th></th></tr></thead><tbody>");
    for (t, last) in toks.iter().zip(&uses) {
        let status = token_status(t, now);
        let action = if status == "active" {
            format!(
                "<form method=\"post\" action=\"/tokens/revoke\" class=\"inline\">{}<input type=\"hidden\" name=\"id\" value=\"{}\"><button type=\"submit\" class=\"danger\">Revoke</button></form>",
                csrf_field(csrf),
                esc(&t.id)
            )
        } else {
            String::new()
        };
        let caps = if t.capabilities.is_empty() {
            "all the agent may use".to_owned()
        } else {
            t.capabilities.join(", ")
        };
        let _ = write!(
            body,
            "<tr data-token=\"{id}\"><td>{id}</td><td>{}</td><td>{}</td><td>{:.0}</td><td>{}</td><td class=\"status\">{status}</td><td>{action}</td></tr>",
            esc(&t.agent),
            esc(&caps),
            t.expires,
            last.map_or_else(|| "never".into(), |l| format!("{l:.0}")),
            id = esc(&t.id),
        );
    }
    body.push_str("</tbody></table>");
    html(page("Sessions & tokens", "/sessions", Some(csrf), &body))
}

/// The confirmation page for the emergency lock (`lock`) or its release.
pub(crate) fn confirm_lock(_ui: &Arc<Ui>, csrf: &str, lock: bool) -> Response {
    let (action, text, button) = if lock {
        (
            "/lock",
            "Lock airlock? Every running server will refuse every request, from every agent, until you unlock it.",
            "Yes, lock everything",
        )
    } else {
        (
            "/unlock",
            "Unlock airlock? Requests will be decided by the policy again.",
            "Yes, unlock",
        )
    };
    let body = format!(
        "<p>{text}</p><form method=\"post\" action=\"{action}\">{}<input type=\"hidden\" name=\"confirm\" value=\"yes\">\
<button type=\"submit\" class=\"danger\" id=\"confirm\">{button}</button> <a href=\"/sessions\">Cancel</a></form>",
        csrf_field(csrf)
    );
    html(page("Confirm", "/sessions", Some(csrf), &body))
}

/// The configuration, read-only: services, capabilities with their effective
/// rules, and who may use each.
pub(crate) fn config(ui: &Arc<Ui>, csrf: &str) -> Response {
    let config = match airlock_config::Config::load(&ui.home) {
        Ok(c) => c,
        Err(e) => {
            let body = format!(
                "<p class=\"error\">The configuration does not load: {}</p>",
                esc(&e.to_string())
            );
            return html(page("Configuration", "/config", Some(csrf), &body));
        }
    };
    let open = config.server.default_access == airlock_config::DefaultAccess::Open;
    let mut body = format!(
        "<p class=\"hint\">Read-only: change it with <code>airlock add</code>, <code>airlock cap add</code> or by editing airlock.toml. default_access = {}; approval timeout {}s.</p>",
        if open { "open" } else { "restricted" },
        config.server.approval_timeout.as_secs()
    );
    body.push_str("<h2>Services</h2><table id=\"services\"><thead><tr><th>service</th><th>URL</th><th>auth</th><th>secrets (names)</th></tr></thead><tbody>");
    for s in config.services.values() {
        let secrets: Vec<&str> = s.auth.secrets().into_iter().collect();
        let _ = write!(
            body,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            esc(&s.name),
            esc(s.url.as_str()),
            esc(s.auth.type_name()),
            esc(&secrets.join(", "))
        );
    }
    body.push_str("</tbody></table><h2>Capabilities</h2><table id=\"capabilities\"><thead><tr><th>capability</th><th>service</th><th>mode</th><th>effective rules</th><th>who may use it</th><th>checks</th></tr></thead><tbody>");
    for c in config.capabilities.values() {
        let mut rules = String::new();
        for d in c.deny_written() {
            let _ = write!(rules, "<div class=\"deny\">deny {}</div>", esc(d));
        }
        for a in c.allow_written() {
            let _ = write!(rules, "<div class=\"allow\">allow {}</div>", esc(a));
        }
        if c.allow.is_empty() {
            rules.push_str("<div class=\"allow\">allow every path not denied</div>");
        } else {
            rules.push_str("<div>anything else: refused</div>");
        }
        if c.mode == airlock_config::Mode::Exec {
            let _ = write!(
                rules,
                "<div>commands: {}</div><div>workdirs: {}</div><div>inject: {}, network: {}, confine: {}</div>",
                esc(&c.commands.join(", ")),
                esc(&c.workdirs.join(", ")),
                c.inject.as_str(),
                c.network.as_str(),
                c.confine
            );
        }
        let who = match &c.agents {
            Some(a) if !a.is_empty() => format!("trusted agents: {}", a.join(", ")),
            Some(_) => "no agent".to_owned(),
            None if open => "every agent (default_access = open)".to_owned(),
            None => "no agent (restricted, no agents list)".to_owned(),
        };
        let mut checks = vec![format!("ttl {}s", c.ttl.as_secs())];
        if c.requires_reason {
            checks.push("reason required".into());
        }
        match c.approval {
            airlock_config::Approval::Always => checks.push("approval: every request".into()),
            airlock_config::Approval::Session => checks.push("approval: once per session".into()),
            airlock_config::Approval::Never => {}
        }
        if let Some(r) = &c.rate {
            checks.push(format!("rate {r}"));
        }
        let _ = write!(
            body,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td class=\"rules\">{rules}</td><td>{}</td><td>{}</td></tr>",
            esc(&c.name),
            esc(&c.service),
            if c.mode == airlock_config::Mode::Exec {
                "exec"
            } else {
                "http"
            },
            esc(&who),
            esc(&checks.join(", "))
        );
    }
    body.push_str("</tbody></table>");
    html(page("Configuration", "/config", Some(csrf), &body))
}

/// The last scan run from this page: kept in memory only, never written.
pub(crate) struct Exposures {
    when: jiff::Timestamp,
    what: String,
    report: airlock_scan::Report,
}

/// Exposures: the last scan's findings by risk, with the `migrate` command for
/// each file, and the form to run one.
pub(crate) fn exposures(ui: &Arc<Ui>, csrf: &str) -> Response {
    let last = ui.exposures.lock().unwrap_or_else(PoisonError::into_inner);
    let mut body = format!(
        "<form method=\"post\" action=\"/exposures/scan\" class=\"filters\">{}\
<label>path <input name=\"path\" id=\"scan-path\" placeholder=\"/home/you/project\"></label> \
<label><input type=\"checkbox\" name=\"mcp\" value=\"1\" checked> MCP client configs</label> \
<button type=\"submit\" id=\"scan\">Scan</button></form>\
<p class=\"hint\">The same scanner as <code>airlock scan</code>. Results stay in this process's memory (never written to disk) until airlock ui stops.</p>",
        csrf_field(csrf)
    );
    match &*last {
        None => body.push_str("<p class=\"empty\">No scan yet.</p>"),
        Some(x) => {
            let _ = write!(
                body,
                "<p>Scanned {} at {:.0}: {} file(s), {} finding(s).</p>",
                esc(&x.what),
                x.when,
                x.report.files_scanned,
                x.report.findings.len()
            );
            let mut findings: Vec<_> = x.report.findings.iter().collect();
            findings.sort_by(|a, b| b.risk.cmp(&a.risk).then_with(|| a.file.cmp(&b.file)));
            body.push_str("<table id=\"findings\"><thead><tr><th>risk</th><th>where</th><th>what</th><th>why</th><th>move it into the vault</th></tr></thead><tbody>");
            for f in findings {
                let fix = if f.commit.is_some() {
                    "in git history: rotate the key".to_owned()
                } else {
                    format!("airlock migrate {}", shell_quote(&f.file))
                };
                let _ = write!(
                    body,
                    "<tr class=\"risk-{risk}\"><td>{risk}</td><td>{}:{}</td><td>{} ({})</td><td>{}</td><td><code>{}</code></td></tr>",
                    esc(&f.file),
                    f.line,
                    esc(f.description),
                    esc(&f.preview),
                    esc(&f.risk_reason),
                    esc(&fix),
                    risk = f.risk.as_str(),
                );
            }
            body.push_str("</tbody></table>");
        }
    }
    drop(last);
    html(page("Exposures", "/exposures", Some(csrf), &body))
}

/// A path for a shell command line, single-quoted when it needs to be.
fn shell_quote(s: &str) -> String {
    if s.chars()
        .all(|c| c.is_ascii_alphanumeric() || "/._-+:@".contains(c))
    {
        s.to_owned()
    } else {
        format!("'{}'", s.replace('\'', "'\\''"))
    }
}

/// `POST /exposures/scan`: runs the scanner on the path given and/or the MCP
/// client configs, keeps the report in memory, then shows the page.
pub(crate) async fn scan(ui: &Arc<Ui>, form: &Form, csrf: &str) -> Response {
    let mut paths: Vec<PathBuf> = Vec::new();
    let mut what = Vec::new();
    if let Some(p) = form.nonempty("path") {
        paths.push(PathBuf::from(p));
        what.push(p.to_owned());
    }
    if form.get("mcp") == Some("1") {
        let found: Vec<PathBuf> = airlock_scan::cli::mcp_config_paths()
            .into_iter()
            .filter(|p| p.is_file())
            .collect();
        what.push(format!("{} MCP client config(s)", found.len()));
        paths.extend(found);
    }
    let what = what.join(" and ");
    let result = if paths.is_empty() {
        Ok(airlock_scan::Report::default())
    } else {
        tokio::task::spawn_blocking(move || {
            let scanner = airlock_scan::Scanner::new().map_err(|e| e.to_string())?;
            let opts = airlock_scan::ScanOptions {
                paths,
                ..airlock_scan::ScanOptions::default()
            };
            airlock_scan::scan(&scanner, &opts).map_err(|e| e.to_string())
        })
        .await
        .unwrap_or_else(|e| Err(e.to_string()))
    };
    match result {
        Ok(report) => {
            crate::actions::audit(
                ui,
                crate::actions::Action::Scan,
                &format!(
                    "owner scanned {what}: {} finding(s)",
                    report.findings.len()
                ),
            );
            *ui.exposures.lock().unwrap_or_else(PoisonError::into_inner) = Some(Exposures {
                when: jiff::Timestamp::now(),
                what,
                report,
            });
            exposures(ui, csrf)
        }
        Err(e) => (
            StatusCode::BAD_REQUEST,
            html(page(
                "Exposures",
                "/exposures",
                Some(csrf),
                &format!(
                    "<p class=\"error\" id=\"result\">The scan failed: {}</p><p><a href=\"/exposures\">Back</a></p>",
                    esc(&e)
                ),
            )),
        )
            .into_response(),
    }
}
