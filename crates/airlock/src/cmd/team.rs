//! `airlock team init|invite|join|devices|approve|revoke-device|push-config|status|sync` (team mode on
//! PostgreSQL, docs/team.md), and the hooks that tell the team about a secret,
//! a revocation or the lock made on this device. In local mode (no `team/`
//! directory in the home) every hook returns at once and nothing changes.

use std::sync::Arc;
use std::time::Duration;

use airlock_broker::Runtime;
use airlock_broker::state::RevokeTarget;
use airlock_broker::team_gate::TeamGate;
use airlock_home::Home;
use airlock_team::{SyncReport, Team, TeamError};
use airlock_vault::{LockedVault, UnlockMode, Vault};
use serde_json::json;

use crate::cli::TeamCommand;
use crate::{output, unlock};

/// How often a follower catches up without a notification.
const POLL: Duration = Duration::from_secs(10);

/// `airlock serve`'s vault, and in team mode a second unlocked copy for the
/// team follower (which writes new team secrets into the vault file; the
/// server reloads it like any other vault change). One passphrase prompt.
pub(crate) fn open_vaults(home: &Home) -> anyhow::Result<(Vault, Option<Vault>)> {
    if !Team::is_member(home) {
        return Ok((unlock::open(home)?, None));
    }
    let (a, b) = (LockedVault::load(home)?, LockedVault::load(home)?);
    Ok(match a.mode() {
        UnlockMode::KeyFile => (
            a.unlock_with_key_file(home)?,
            Some(b.unlock_with_key_file(home)?),
        ),
        UnlockMode::Passphrase => {
            let p = crate::input::passphrase(false)?;
            (
                a.unlock_with_passphrase(&p)?,
                Some(b.unlock_with_passphrase(&p)?),
            )
        }
        UnlockMode::Keyring => (a.unlock_with_keyring()?, Some(b.unlock_with_keyring()?)),
    })
}

/// Starts the team follower inside `airlock serve`: it catches up now, on every
/// change notification, after a reconnect and every 10 s (more often when
/// `max_staleness` is short: a third of it), and keeps `rt`'s staleness gate:
/// past `[team] max_staleness` without a successful catch-up, every new request
/// is refused until the next one succeeds.
pub(crate) fn start_follower(home: &Home, vault: Vault, rt: &Arc<Runtime>) -> anyhow::Result<()> {
    let max = airlock_config::Config::load(home)?.team.max_staleness;
    let state = airlock_team::local::load_state(home)?;
    let ago = state.last_sync.map(|t| {
        let secs = jiff::Timestamp::now().as_second() - t.as_second();
        Duration::from_secs(u64::try_from(secs).unwrap_or(0))
    });
    let gate = Arc::new(TeamGate::new(max, ago));
    rt.set_team_gate(gate.clone());
    let poll = POLL.min(max / 3).max(Duration::from_millis(200));
    let home = home.clone();
    tokio::spawn(async move {
        let mut vault = vault;
        let mut teller = Teller {
            gate,
            max,
            failing: false,
        };
        loop {
            match Team::open(&home, &vault).await {
                Ok(mut team) => {
                    let done = team.follow(&mut vault, poll, |r| teller.outcome(r)).await;
                    if let Err(e) = done {
                        teller.outcome(Err(e));
                    }
                }
                Err(e) => teller.outcome(Err(e)),
            }
            tokio::time::sleep(poll.min(Duration::from_secs(1))).await;
        }
    });
    Ok(())
}

/// The serve follower's outcomes: into the gate, and to stderr once per change
/// of fortune (never stdout: it is the MCP protocol).
struct Teller {
    gate: Arc<TeamGate>,
    max: Duration,
    failing: bool,
}

impl Teller {
    fn outcome(&mut self, r: airlock_team::Result<SyncReport>) {
        match r {
            Ok(r) => {
                self.gate.synced();
                if std::mem::take(&mut self.failing) {
                    output::note(format_args!(
                        "team: caught up again (change {}); serving",
                        r.last_seq
                    ));
                } else if r.changes > 0 {
                    output::note(format_args!(
                        "team: in sync with change {} ({} new)",
                        r.last_seq, r.changes
                    ));
                }
            }
            Err(e) => {
                let msg = e.to_string();
                self.gate.failed(&msg);
                if !std::mem::replace(&mut self.failing, true) {
                    output::warn(format_args!(
                        "team: cannot catch up with the team: {msg}; requests are refused once this device is {} s behind (max_staleness)",
                        self.max.as_secs()
                    ));
                }
            }
        }
    }
}

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
        TeamCommand::RevokeDevice { fingerprint } => {
            let vault = unlock::open(home)?;
            let r = rt.block_on(async {
                Team::open(home, &vault)
                    .await?
                    .revoke_device(fingerprint)
                    .await
            })?;
            output::line(format_args!(
                "revoked {} ({}); new team key epoch {} held by {} device(s); {} secret(s) re-sealed under it",
                r.device.fingerprint(),
                airlock_audit::Escaped(&r.device.name),
                r.epoch,
                r.devices,
                r.resealed.len()
            ));
            if r.exposed.is_empty() {
                output::line("it could read no team secret");
            } else {
                let config = airlock_config::Config::load(home).ok();
                let used = config.as_ref().map(|c| c.referenced_secrets());
                output::line(
                    "it could read these secrets: rotate each at its upstream, then `airlock secret rotate NAME`:",
                );
                for name in &r.exposed {
                    let services = used
                        .as_ref()
                        .and_then(|u| u.get(name.as_str()))
                        .map(|s| format!(" (service {})", s.join(", ")))
                        .unwrap_or_default();
                    output::line(format_args!("  {}{services}", airlock_audit::Escaped(name)));
                }
            }
            output::note(
                "the device still knows the database URL and password: rotate the app role's password and give the others the new URL",
            );
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
