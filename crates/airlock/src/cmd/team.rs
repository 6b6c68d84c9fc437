//! `airlock team init|invite|join|devices|approve|push-config|status|sync` (team mode on
//! PostgreSQL, docs/team.md), and the hooks that tell the team about a secret,
//! a revocation or the lock made on this device. In local mode (no `team/`
//! directory in the home) every hook returns at once and nothing changes.

use std::time::Duration;

use airlock_broker::state::RevokeTarget;
use airlock_home::Home;
use airlock_team::{Team, TeamError};
use airlock_vault::Vault;
use serde_json::json;

use crate::cli::TeamCommand;
use crate::{output, unlock};

/// How often a follower catches up without a notification.
const POLL: Duration = Duration::from_secs(10);

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?)
}

fn device_name(name: Option<&String>) -> String {
    name.cloned()
        .or_else(|| {
            std::fs::read_to_string("/etc/hostname")
                .ok()
                .map(|h| h.trim().to_string())
        })
        .filter(|n| !n.is_empty())
        .unwrap_or_else(|| "device".into())
}

pub(crate) fn run(home: &Home, cmd: &TeamCommand) -> anyhow::Result<()> {
    let rt = runtime()?;
    match cmd {
        TeamCommand::Init { db, name } => {
            let (_lock, vault) = unlock::open_for_write(home, true)?;
            let team = rt.block_on(Team::init(home, &vault, db, &device_name(name.as_ref())))?;
            output::line(format_args!(
                "created team {} ; this device ({}) is its first admin",
                team.team_id(),
                team.fingerprint()
            ));
            output::line(
                "next: `airlock team invite` on this device, `airlock team join --db URL CODE` on the new one",
            );
        }
        TeamCommand::Join { db, code, name } => {
            let (_lock, vault) = unlock::open_for_write(home, true)?;
            let team = rt.block_on(Team::join(
                home,
                &vault,
                db,
                code,
                &device_name(name.as_ref()),
            ))?;
            output::line(format_args!("enrolled in team {}", team.team_id()));
            output::line(format_args!("fingerprint: {}", team.fingerprint()));
            output::line(format_args!(
                "an admin checks that fingerprint and runs `airlock team approve {}`; then `airlock team sync` here",
                team.fingerprint()
            ));
        }
        TeamCommand::Invite { admin } => {
            let vault = unlock::open(home)?;
            let code =
                rt.block_on(async { Team::open(home, &vault).await?.invite(*admin).await })?;
            output::line(code);
            output::note(
                "single-use, valid for 1 hour: `airlock team join --db URL CODE` on the new device",
            );
        }
        TeamCommand::Devices(flag) => {
            let vault = unlock::open(home)?;
            let (me, devices) = rt.block_on(async {
                let t = Team::open(home, &vault).await?;
                Ok::<_, TeamError>((t.device().to_string(), t.devices().await?))
            })?;
            if flag.json {
                let rows: Vec<_> = devices
                    .iter()
                    .map(|d| {
                        json!({"id": d.id, "fingerprint": d.fingerprint(), "name": d.name,
                               "status": d.status.as_str(), "admin": d.admin,
                               "approved_by": d.approved_by, "this_device": d.id == me})
                    })
                    .collect();
                return output::json(&rows);
            }
            let rows = devices
                .iter()
                .map(|d| {
                    vec![
                        d.fingerprint(),
                        airlock_audit::Escaped(&d.name).to_string(),
                        d.status.as_str().into(),
                        if d.admin { "admin" } else { "" }.into(),
                        if d.id == me { "this device" } else { "" }.into(),
                    ]
                })
                .collect();
            output::table(
                &["FINGERPRINT", "NAME", "STATUS", "ROLE", ""],
                rows,
                "no devices",
            );
        }
        TeamCommand::Approve { fingerprint } => {
            let vault = unlock::open(home)?;
            let d =
                rt.block_on(async { Team::open(home, &vault).await?.approve(fingerprint).await })?;
            output::line(format_args!(
                "approved {} ({}){}; it receives the team key at its next `airlock team sync`",
                d.fingerprint(),
                airlock_audit::Escaped(&d.name),
                if d.admin { " as an admin" } else { "" }
            ));
        }
        TeamCommand::Status(flag) => {
            let vault = unlock::open(home)?;
            let s = rt.block_on(async { Team::open(home, &vault).await?.status().await })?;
            let me = s.devices.iter().find(|d| d.id == s.device);
            let lag = (s.head_seq - s.last_seq).max(0);
            if flag.json {
                return output::json(&json!({
                    "team": s.team, "device": s.device,
                    "status": me.map(|d| d.status.as_str()), "admin": me.is_some_and(|d| d.admin),
                    "db": s.db, "last_seq": s.last_seq, "head_seq": s.head_seq, "lag": lag,
                    "last_sync": s.last_sync.map(|t| t.to_string()),
                    "devices": s.devices.len(),
                    "pending": s.devices.iter().filter(|d| d.status == airlock_team::DeviceStatus::Pending).count(),
                }));
            }
            output::line(format_args!("team:      {}", s.team));
            output::line(format_args!(
                "device:    {} ({}{})",
                airlock_team::keys::fingerprint(&s.device),
                me.map_or("unknown", |d| d.status.as_str()),
                if me.is_some_and(|d| d.admin) {
                    ", admin"
                } else {
                    ""
                }
            ));
            output::line(format_args!("database:  {}", s.db));
            output::line(format_args!(
                "last sync: {}",
                s.last_sync.map_or("never".into(), |t| t.to_string())
            ));
            output::line(format_args!(
                "changes:   {} applied of {} ({} behind)",
                s.last_seq, s.head_seq, lag
            ));
            output::line(format_args!("devices:   {}", s.devices.len()));
        }
        TeamCommand::PushConfig { names } => {
            let vault = unlock::open(home)?;
            let done =
                rt.block_on(async { Team::open(home, &vault).await?.push_config(names).await })?;
            if done.is_empty() {
                output::line("the team already has this device's services and capabilities");
            }
            for (kind, name, version, removed) in done {
                let name = airlock_audit::Escaped(&name);
                if removed {
                    output::line(format_args!(
                        "{kind} \"{name}\" removed from the team (team version {version})"
                    ));
                } else {
                    output::line(format_args!(
                        "{kind} \"{name}\" shared at team version {version}"
                    ));
                }
            }
        }
        TeamCommand::Sync { follow } => {
            let mut vault = unlock::open(home)?;
            rt.block_on(async {
                let mut team = Team::open(home, &vault).await?;
                if *follow {
                    output::note("following the team's change log (Ctrl-C to stop)");
                    team.follow(&mut vault, POLL, |r| match r {
                        Ok(r) if r.changes > 0 || !r.secrets.is_empty() || !r.config.is_empty() => {
                            report(&r)
                        }
                        Ok(_) => {}
                        Err(e) => output::warn(format_args!("team sync: {e}")),
                    })
                    .await
                } else {
                    let r = team.sync(&mut vault).await?;
                    report(&r);
                    Ok(())
                }
            })?;
        }
    }
    Ok(())
}

fn report(r: &airlock_team::SyncReport) {
    for (name, version) in &r.secrets {
        output::line(format_args!(
            "secret \"{name}\" now at team version {version}"
        ));
    }
    for (kind, name, version) in &r.config {
        output::line(format_args!(
            "{kind} \"{}\" now at team version {version} in airlock.toml",
            airlock_audit::Escaped(name)
        ));
    }
    if r.revocations > 0 {
        output::line(format_args!("{} revocation(s) applied", r.revocations));
    }
    match r.lock {
        Some(true) => output::line("the team engaged the emergency lock: this home is locked"),
        Some(false) => output::line("the team released the emergency lock"),
        None => {}
    }
    output::line(format_args!(
        "in sync with change {} ({} new)",
        r.last_seq, r.changes
    ));
}

/// Hook for `secret set|rotate`: seals the new value for the team. Local mode: nothing.
pub(crate) fn publish_secret(
    home: &Home,
    vault: &Vault,
    name: &str,
    value: &[u8],
) -> anyhow::Result<()> {
    if !Team::is_member(home) {
        return Ok(());
    }
    let version = runtime()?.block_on(async {
        Team::open(home, vault)
            .await?
            .publish_secret(name, value)
            .await
    });
    match version {
        Ok(v) => {
            output::note(format_args!("shared with the team (team version {v})"));
            Ok(())
        }
        Err(e) => anyhow::bail!(
            "stored on this device, but the team was not told: {e}; run `airlock secret rotate {name}` again once the database is reachable"
        ),
    }
}

/// Hook for `revoke`: logs the revocation for every device. Local mode: nothing.
pub(crate) fn publish_revocation(home: &Home, target: &RevokeTarget) -> anyhow::Result<()> {
    if !Team::is_member(home) {
        return Ok(());
    }
    let done = (|| {
        let vault = unlock::open(home)?;
        runtime()?.block_on(async {
            Ok::<_, anyhow::Error>(
                Team::open(home, &vault)
                    .await?
                    .publish_revocation(target)
                    .await?,
            )
        })
    })();
    match done {
        Ok(seq) => {
            output::note(format_args!(
                "sent to every device of the team (change {seq})"
            ));
            Ok(())
        }
        Err(e) => anyhow::bail!(
            "revoked on this device, but the team was not told: {e}; run the same `airlock revoke` again once the database is reachable"
        ),
    }
}

/// Hook for `lock`/`unlock`: logs it for every device. Local mode: nothing.
pub(crate) fn publish_lock(home: &Home, locked: bool) -> anyhow::Result<()> {
    if !Team::is_member(home) {
        return Ok(());
    }
    let done = (|| {
        let vault = unlock::open(home)?;
        runtime()?.block_on(async {
            Ok::<_, anyhow::Error>(Team::open(home, &vault).await?.publish_lock(locked).await?)
        })
    })();
    match done {
        Ok(seq) => {
            output::note(format_args!(
                "sent to every device of the team (change {seq})"
            ));
            Ok(())
        }
        Err(e) => anyhow::bail!(
            "done on this device, but the team was not told: {e}; run it again once the database is reachable"
        ),
    }
}
