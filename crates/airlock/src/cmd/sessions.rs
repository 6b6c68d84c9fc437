//! `airlock sessions`, `revoke`, `lock`, `unlock`, `approve`, `deny`: the owner's
//! controls over running servers. Sessions, revocations and the lock act through
//! `state/` (see `airlock_broker::state`), which every server on this home checks
//! before each request, and are pushed at once over each server's control socket.
//! Approvals travel over the control socket only: a held request lives in the
//! memory of the server that holds it, and no file is ever an answer
//! (`airlock_broker::approval`).

use airlock_audit::{Decision, Event, Kind};
use airlock_broker::approval::{AnswerError, PendingRecord};
use airlock_broker::state::{self, RevokeTarget};
use airlock_home::Home;
use serde_json::json;

use crate::cli::{ApproveArgs, JsonFlag, RevokeArgs};
use crate::cmd::human_duration;
use crate::{output, store, unlock};

pub(crate) fn list(home: &Home, args: &JsonFlag) -> anyhow::Result<()> {
    let now = jiff::Timestamp::now();
    // Sessions the running servers hold right now (through control.sock).
    let live: std::collections::BTreeSet<String> =
        airlock_broker::control::broadcast(home, &json!({"cmd": "sessions"}))
            .into_iter()
            .flat_map(|a| a["sessions"].as_array().cloned().unwrap_or_default())
            .filter_map(|s| s["id"].as_str().map(str::to_string))
            .collect();
    let revs = state::revocations(home)?;
    let rows: Vec<_> = state::sessions(home)?
        .into_iter()
        .map(|s| {
            let status = if revs.revokes(&s.id, &s.agent, &s.capability, s.started) {
                "revoked"
            } else if s.expires <= now {
                "expired"
            } else {
                "active"
            };
            (s, status)
        })
        .collect();
    output::list(
        args.json,
        &rows,
        |(s, status)| {
            json!({
                "id": s.id, "agent": s.agent, "capability": s.capability, "status": status,
                "started": s.started.to_string(), "expires": s.expires.to_string(), "pid": s.pid,
                "live": live.contains(&s.id),
            })
        },
        &[
            "SESSION",
            "AGENT",
            "CAPABILITY",
            "STATUS",
            "TIME LEFT",
            "SERVER PID",
        ],
        |(s, status)| {
            let left = if *status == "active" {
                let d = now.duration_until(s.expires).unsigned_abs();
                human_duration(std::time::Duration::from_secs(d.as_secs()))
            } else {
                "-".into()
            };
            vec![
                shown(&s.id),
                shown(&s.agent),
                shown(&s.capability),
                (*status).to_string(),
                left,
                s.pid.to_string(),
            ]
        },
        "no sessions yet: they start at an agent's first call",
    )
}

/// Records an owner action in the audit log when the vault opens without a prompt;
/// otherwise says so (an emergency action must never wait for a passphrase).
pub(crate) fn audit(home: &Home, event: Event) {
    let key_free = std::env::var_os(crate::input::PASSPHRASE_ENV).is_some()
        || airlock_vault::LockedVault::load(home)
            .is_ok_and(|v| v.mode() != airlock_vault::UnlockMode::Passphrase);
    if !key_free {
        output::note(
            "not recorded in the audit log: the vault needs a passphrase (set AIRLOCK_PASSPHRASE to record owner actions)",
        );
        return;
    }
    let result = unlock::open(home)
        .map_err(|e| e.to_string())
        .and_then(|vault| {
            super::open_audit(home, &vault)
                .and_then(|mut log| log.append(&event))
                .map_err(|e| e.to_string())
        });
    if let Err(e) = result {
        output::warn(format_args!(
            "the action took effect but could not be audited: {e}"
        ));
    }
}

/// Tells every running server (through its control socket) to apply the state
/// files now; returns how many answered.
pub(crate) fn notify(home: &Home) -> usize {
    airlock_broker::control::broadcast(home, &json!({"cmd": "reload"})).len()
}

pub(crate) fn revoke(home: &Home, args: &RevokeArgs) -> anyhow::Result<()> {
    let (target, what) = match (&args.session, &args.agent, &args.capability, args.all) {
        (Some(id), ..) => (RevokeTarget::Session(id.clone()), format!("session {id}")),
        (_, Some(a), ..) => (
            RevokeTarget::Agent(a.clone()),
            format!("every session of agent \"{a}\""),
        ),
        (_, _, Some(c), _) => (
            RevokeTarget::Capability(c.clone()),
            format!("every session of capability \"{c}\""),
        ),
        _ => (RevokeTarget::All, "every session".to_string()),
    };
    let store = store::open(home);
    let (revoked, tell) = store.revoke(&target)?;
    let (ended, tokens) = (revoked.sessions, revoked.tokens);
    audit(
        home,
        Event::new(Kind::Revoke)
            .decision(Decision::Deny)
            .detail(&format!(
                "owner revoked {what}: {ended} active session(s), {tokens} token(s)"
            )),
    );
    let servers = notify(home);
    output::line(format_args!(
        "revoked {what}: {ended} active session(s) ended, {tokens} agent token(s) revoked; {servers} running server(s) applied it now (others at their next request)"
    ));
    tell.tell()
}

pub(crate) fn lock(home: &Home) -> anyhow::Result<()> {
    let store = store::open(home);
    let tell = store.lock()?;
    audit(
        home,
        Event::new(Kind::Lock)
            .decision(Decision::Deny)
            .detail("owner engaged the emergency lock"),
    );
    output::line(
        "airlock is locked: every running server refuses every request until `airlock unlock`",
    );
    tell.tell()
}

pub(crate) fn unlock(home: &Home) -> anyhow::Result<()> {
    // Proof of ownership: the master key (key file, keyring) or the passphrase.
    let vault = unlock::open(home)?;
    let store = store::open(home);
    // The capabilities and agents `airlock incident` locked are released too.
    if super::incident::release_locks(home, &vault, store.as_ref())? && !state::is_locked(home) {
        notify(home);
        return Ok(());
    }
    let (released, tell) = store.unlock()?;
    if released {
        let mut log = super::open_audit(home, &vault)?;
        log.append(
            &Event::new(Kind::Unlock)
                .decision(Decision::Allow)
                .detail("owner released the emergency lock"),
        )?;
        notify(home);
        output::line("airlock is unlocked: requests are decided by the policy again");
        tell.tell()?;
    } else {
        output::line("airlock was not locked; nothing changed");
    }
    Ok(())
}

/// Agent-controlled text (agent names, paths, reasons, headers) for the
/// terminal: control characters escaped (DESIGN.md §7, invariant 14), with the
/// one escaping every command uses — that of `airlock logs`.
fn shown(s: &str) -> String {
    airlock_audit::Escaped(s).to_string()
}

/// Sends an answer to every running server over its control socket; the one that
/// holds `id` takes it and wakes the request at once.
///
/// The answer carries the hash of the request as this command sees it listed
/// now, so it applies to exactly that request (DESIGN.md §7, invariant 13).
fn send_answer(home: &Home, id: &str, approve: bool) -> anyhow::Result<PendingRecord> {
    let mut request = json!({"cmd": "answer", "id": id, "approve": approve});
    if let Some(p) = airlock_ui::pending_approvals(home)
        .into_iter()
        .find(|p| p.id == id)
        && !p.hash.is_empty()
    {
        request["hash"] = json!(p.hash);
    }
    let answers = airlock_broker::control::broadcast(home, &request);
    if answers.is_empty() {
        anyhow::bail!(
            "no airlock server is running on {}, so nothing is waiting for approval (a held request lives in its `airlock serve`)",
            home.root().display()
        );
    }
    if let Some(taken) = answers.iter().find(|a| a["ok"] == json!(true)) {
        return serde_json::from_value(taken["approval"].clone()).map_err(|e| {
            anyhow::anyhow!("the server took the answer but its reply is unreadable: {e}")
        });
    }
    if let Some(other) = answers.iter().find(|a| a["not_pending"] != json!(true)) {
        anyhow::bail!(
            "the server (pid {}) did not take the answer: {}",
            other["pid"],
            shown(other["error"].as_str().unwrap_or("no reason given"))
        );
    }
    Err(AnswerError::NotPending(shown(id)).into())
}

pub(crate) fn approve(home: &Home, args: &ApproveArgs) -> anyhow::Result<()> {
    let Some(id) = &args.id else {
        let pending = airlock_ui::pending_approvals(home);
        let now = jiff::Timestamp::now();
        return output::list(
            args.json,
            &pending,
            |p| {
                json!({"id": p.id, "agent": p.agent, "agent_trusted": p.agent_trusted,
                       "capability": p.capability, "method": p.method, "path": p.path,
                       "url": p.url, "cwd": p.cwd,
                       "headers": p.headers.iter().map(|(k, v)| json!([k, v])).collect::<Vec<_>>(),
                       "body_bytes": p.body_bytes, "body_sha256": p.body_sha256,
                       "reason": p.reason, "hash": p.hash, "created": p.created.to_string(),
                       "expires": p.expires.to_string(), "pid": p.pid})
            },
            &[
                "ID",
                "AGENT",
                "CAPABILITY",
                "REQUEST",
                "REASON",
                "TIME LEFT",
            ],
            |p| {
                let left = now.duration_until(p.expires).unsigned_abs().as_secs();
                vec![
                    shown(&p.id),
                    agent_cell(p),
                    shown(&p.capability),
                    request_cell(p),
                    p.reason.as_deref().map_or_else(|| "-".into(), shown),
                    format!("{left}s"),
                ]
            },
            "nothing is waiting for approval",
        );
    };
    let rec = send_answer(home, id, true)?;
    let mut sent = rec.url.as_deref().map(shown).unwrap_or_default();
    if !rec.body_sha256.is_empty() {
        if !sent.is_empty() {
            sent.push_str("; ");
        }
        sent.push_str(&format!(
            "body {} bytes, sha256 {}",
            rec.body_bytes, rec.body_sha256
        ));
    }
    output::line(format_args!(
        "approved {}: {} may {} {} on \"{}\" ({sent}; request sha256 {}), this once",
        shown(id),
        agent_cell(&rec),
        shown(&rec.method),
        shown(&rec.path),
        shown(&rec.capability),
        shown(&rec.hash),
    ));
    Ok(())
}

pub(crate) fn deny(home: &Home, id: &str) -> anyhow::Result<()> {
    let rec = send_answer(home, id, false)?;
    output::line(format_args!(
        "denied {}: {} {} on \"{}\" is refused",
        shown(id),
        shown(&rec.method),
        shown(&rec.path),
        shown(&rec.capability)
    ));
    Ok(())
}

/// The agent of a pending request, `?`-marked when self-declared (as in `logs`).
fn agent_cell(p: &PendingRecord) -> String {
    let mark = if p.agent_trusted { "" } else { "?" };
    format!("{}{mark}", shown(&p.agent))
}

/// Everything that will be sent, for the REQUEST column: method and full URL
/// with its query (or the command line and cwd), each agent-set header, the body
/// size and SHA-256, and the request hash the answer is bound to.
fn request_cell(p: &PendingRecord) -> String {
    let mut cell = format!("{} {}", shown(&p.method), shown(&p.path));
    if let Some(url) = &p.url {
        cell.push_str(&format!("\n{}", shown(url)));
    }
    if let Some(cwd) = &p.cwd {
        cell.push_str(&format!("\ncwd: {}", shown(cwd)));
    }
    for (k, v) in &p.headers {
        cell.push_str(&format!("\n{}: {}", shown(k), shown(v)));
    }
    let what = if p.method == "EXEC" { "stdin" } else { "body" };
    cell.push_str(&format!("\n{what}: {} bytes", p.body_bytes));
    if !p.body_sha256.is_empty() {
        cell.push_str(&format!(", sha256 {}", p.body_sha256));
    }
    if !p.hash.is_empty() {
        cell.push_str(&format!("\nrequest sha256 {}", p.hash));
    }
    cell
}
