//! `airlock sessions`, `revoke`, `lock`, `unlock`: the owner's controls over
//! running servers. They act through `state/` (see `airlock_broker::state`), which
//! every server on this home checks before each request.

use airlock_audit::{Decision, Event, Kind};
use airlock_broker::state::{self, RevokeTarget};
use airlock_broker::tokens;
use airlock_home::Home;
use serde_json::json;

use crate::cli::{ApproveArgs, JsonFlag, RevokeArgs};
use crate::cmd::human_duration;
use crate::{output, unlock};

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
    if args.json {
        let v: Vec<_> = rows
            .iter()
            .map(|(s, status)| {
                json!({
                    "id": s.id, "agent": s.agent, "capability": s.capability, "status": status,
                    "started": s.started.to_string(), "expires": s.expires.to_string(), "pid": s.pid,
                    "live": live.contains(&s.id),
                })
            })
            .collect();
        return output::json(&v);
    }
    let table = rows
        .iter()
        .map(|(s, status)| {
            let left = if *status == "active" {
                let d = now.duration_until(s.expires).unsigned_abs();
                human_duration(std::time::Duration::from_secs(d.as_secs()))
            } else {
                "-".into()
            };
            vec![
                s.id.clone(),
                s.agent.clone(),
                s.capability.clone(),
                (*status).to_string(),
                left,
                s.pid.to_string(),
            ]
        })
        .collect();
    output::table(
        &[
            "SESSION",
            "AGENT",
            "CAPABILITY",
            "STATUS",
            "TIME LEFT",
            "SERVER PID",
        ],
        table,
        "no sessions yet: they start at an agent's first call",
    );
    Ok(())
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
            airlock_audit::AuditLog::open_home(
                home,
                vault.audit_key(),
                airlock_audit::Options::default(),
            )
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
fn notify(home: &Home) -> usize {
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
    home.ensure_dir()?;
    let ended = state::revoke(home, &target)?;
    let tokens = match &target {
        RevokeTarget::Agent(a) => {
            let _lock = home.lock()?;
            tokens::revoke_where(home, |t| &t.agent == a)?
        }
        RevokeTarget::All => {
            let _lock = home.lock()?;
            tokens::revoke_where(home, |_| true)?
        }
        _ => 0,
    };
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
    Ok(())
}

pub(crate) fn lock(home: &Home) -> anyhow::Result<()> {
    home.ensure_dir()?;
    state::engage_lock(home)?;
    audit(
        home,
        Event::new(Kind::Lock)
            .decision(Decision::Deny)
            .detail("owner engaged the emergency lock"),
    );
    output::line(
        "airlock is locked: every running server refuses every request until `airlock unlock`",
    );
    Ok(())
}

pub(crate) fn unlock(home: &Home) -> anyhow::Result<()> {
    // Proof of ownership: the master key (key file, keyring) or the passphrase.
    let vault = unlock::open(home)?;
    let released = state::release_lock(home)?;
    if released {
        let mut log = airlock_audit::AuditLog::open_home(
            home,
            vault.audit_key(),
            airlock_audit::Options::default(),
        )?;
        log.append(
            &Event::new(Kind::Unlock)
                .decision(Decision::Allow)
                .detail("owner released the emergency lock"),
        )?;
        notify(home);
        output::line("airlock is unlocked: requests are decided by the policy again");
    } else {
        output::line("airlock was not locked; nothing changed");
    }
    Ok(())
}

pub(crate) fn approve(home: &Home, args: &ApproveArgs) -> anyhow::Result<()> {
    let Some(id) = &args.id else {
        let pending = airlock_broker::approval::pending(home)?;
        if args.json {
            let v: Vec<_> = pending
                .iter()
                .map(|p| {
                    json!({"id": p.id, "agent": p.agent, "capability": p.capability, "method": p.method,
                           "path": p.path, "reason": p.reason, "created": p.created.to_string(), "expires": p.expires.to_string()})
                })
                .collect();
            return output::json(&v);
        }
        let now = jiff::Timestamp::now();
        let rows = pending
            .iter()
            .map(|p| {
                let left = now.duration_until(p.expires).unsigned_abs().as_secs();
                vec![
                    p.id.clone(),
                    p.agent.clone(),
                    p.capability.clone(),
                    format!("{} {}", p.method, p.path),
                    p.reason.clone().unwrap_or_else(|| "-".into()),
                    format!("{left}s"),
                ]
            })
            .collect();
        output::table(
            &[
                "ID",
                "AGENT",
                "CAPABILITY",
                "REQUEST",
                "REASON",
                "TIME LEFT",
            ],
            rows,
            "nothing is waiting for approval",
        );
        return Ok(());
    };
    let rec = airlock_broker::approval::answer(home, id, true)?;
    output::line(format_args!(
        "approved {id}: {} may {} {} on \"{}\"",
        rec.agent, rec.method, rec.path, rec.capability
    ));
    Ok(())
}

pub(crate) fn deny(home: &Home, id: &str) -> anyhow::Result<()> {
    let rec = airlock_broker::approval::answer(home, id, false)?;
    output::line(format_args!(
        "denied {id}: {} {} on \"{}\" is refused",
        rec.method, rec.path, rec.capability
    ));
    Ok(())
}
