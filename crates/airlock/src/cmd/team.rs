//! `airlock team init|invite|join|devices|approve|revoke-device|push-config|agent|checkpointer|set-db-url|status|sync`
//! (team mode on PostgreSQL, docs/team.md), and what the PostgreSQL store
//! ([`crate::store::TeamStore`]) runs for the other commands: the follower
//! inside `airlock serve`, `logs --team`, `audit verify --team` and the team
//! checks of `airlock doctor`. The other commands never call this module:
//! they go through [`crate::store`].

use std::sync::Arc;
use std::time::Duration;

use airlock_broker::Runtime;
use airlock_broker::state::RevokeTarget;
use airlock_broker::team_gate::TeamGate;
use airlock_home::Home;
use airlock_team::{Followed, SyncReport, Team, TeamError};
use airlock_vault::{LockedVault, UnlockMode, Vault};
use serde_json::json;

use crate::cli::{JsonFlag, TeamCommand};
use crate::{output, unlock};

/// `airlock team agent`: the team's agents, as admin-signed rows of the change log.
#[derive(Debug, clap::Subcommand)]
pub(crate) enum AgentCommand {
    /// Add an agent to the team (admin devices); once the team has agents,
    /// every device issues tokens only to them
    Add {
        /// The agent's name (the identity its tokens carry)
        name: String,
    },
    /// Remove an agent from the team (admin devices): on every device its
    /// tokens are revoked, its sessions end and no new token is issued to it
    Remove {
        /// The agent's name
        name: String,
    },
    /// The team's agents, as of this device's last sync
    List(JsonFlag),
}

/// How often a follower catches up without a notification.
const POLL: Duration = Duration::from_secs(10);

/// `airlock serve`'s vault on a team device, and a second unlocked copy for
/// the team follower (which writes new team secrets into the vault file; the
/// server reloads it like any other vault change). One passphrase prompt.
pub(crate) fn open_vaults(home: &Home) -> anyhow::Result<(Vault, Vault)> {
    let (a, b) = (LockedVault::load(home)?, LockedVault::load(home)?);
    Ok(match a.mode() {
        UnlockMode::KeyFile => (a.unlock_with_key_file(home)?, b.unlock_with_key_file(home)?),
        UnlockMode::Passphrase => {
            let p = crate::input::passphrase(false)?;
            (a.unlock_with_passphrase(&p)?, b.unlock_with_passphrase(&p)?)
        }
        UnlockMode::Keyring => (a.unlock_with_keyring()?, b.unlock_with_keyring()?),
    })
}

/// How long `airlock serve` waits for its first catch-up before serving.
const FIRST_SYNC: Duration = Duration::from_secs(5);

/// Starts the team follower inside `airlock serve`. It first catches up once
/// (for at most 5 s) before the server takes its first request, so a device
/// that was offline while the team revoked something refuses it from its
/// first request on; then it catches up on every change notification, after a
/// reconnect and every 10 s (more often when `max_staleness` is short: a third
/// of it), uploads this device's audit records every 2 s and, on an admin
/// device, writes an audit checkpoint about every minute. It keeps `rt`'s
/// staleness gate: past `[team] max_staleness` without a successful catch-up,
/// every new request is refused until the next one succeeds.
pub(crate) async fn start_follower(
    home: &Home,
    mut vault: Vault,
    rt: &Arc<Runtime>,
) -> anyhow::Result<()> {
    let max = airlock_config::Config::load(home)?.team.max_staleness;
    let state = airlock_team::local::load_state(home)?;
    let ago = state.last_sync.map(|t| {
        let secs = jiff::Timestamp::now().as_second() - t.as_second();
        Duration::from_secs(u64::try_from(secs).unwrap_or(0))
    });
    let gate = Arc::new(TeamGate::new(max, ago));
    rt.set_team_gate(gate.clone());
    let poll = POLL.min(max / 3).max(Duration::from_millis(200));
    let mut teller = Teller {
        gate,
        max,
        failing: false,
        audit_failing: false,
    };
    teller.outcome(Team::catch_up(home, &mut vault, FIRST_SYNC).await);
    let home = home.clone();
    tokio::spawn(async move {
        let mut vault = vault;
        loop {
            match Team::open(&home, &vault).await {
                Ok(mut team) => {
                    let done = team.follow(&mut vault, poll, |f| teller.heard(f)).await;
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
    audit_failing: bool,
}

impl Teller {
    fn heard(&mut self, f: Followed) {
        match f {
            Followed::Sync(r) => self.outcome(r),
            // The upload does not gate requests: every record stays in the
            // local log and is uploaded once it can be.
            Followed::Audit(Ok(_)) => {
                if std::mem::take(&mut self.audit_failing) {
                    output::note("team: audit upload resumed");
                }
            }
            Followed::Audit(Err(e)) => {
                if !std::mem::replace(&mut self.audit_failing, true) {
                    output::warn(format_args!(
                        "team: cannot upload this device's audit records: {e}; they stay in the local log and are uploaded once this is fixed"
                    ));
                }
            }
        }
    }

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

/// A runtime for one team call from a command.
pub(crate) fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?)
}

/// Unlocks the vault, opens this home's team and runs `call` on it, on `rt`.
fn on_team<T>(
    home: &Home,
    rt: &tokio::runtime::Runtime,
    call: impl AsyncFnOnce(Team) -> Result<T, TeamError>,
) -> anyhow::Result<T> {
    let vault = unlock::open(home)?;
    Ok(rt.block_on(async { call(Team::open(home, &vault).await?).await })?)
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
            let code = on_team(home, &rt, async |t| t.invite(*admin).await)?;
            output::line(code);
            output::note(
                "single-use, valid for 1 hour: `airlock team join --db URL CODE` on the new device",
            );
        }
        TeamCommand::Devices(flag) => {
            let (me, devices) = on_team(home, &rt, async |t| {
                Ok((t.device().to_string(), t.devices().await?))
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
            let d = on_team(home, &rt, async |t| t.approve(fingerprint).await)?;
            output::line(format_args!(
                "approved {} ({}){}; it receives the team key at its next `airlock team sync`",
                d.fingerprint(),
                airlock_audit::Escaped(&d.name),
                if d.admin { " as an admin" } else { "" }
            ));
        }
        TeamCommand::Status(flag) => {
            let s = on_team(home, &rt, async |t| t.status().await)?;
            let me = s.devices.iter().find(|d| d.id == s.device);
            let lag = (s.head_seq - s.last_seq).max(0);
            if flag.json {
                return output::json(&json!({
                    "team": s.team, "device": s.device,
                    "status": me.map(|d| d.status.as_str()), "admin": me.is_some_and(|d| d.admin),
                    "db": s.db, "last_seq": s.last_seq, "head_seq": s.head_seq, "lag": lag,
                    "last_sync": s.last_sync.map(|t| t.to_string()),
                    "devices": s.devices.len(), "checkpointer": s.checkpointer,
                    "pending": s.devices.iter().filter(|d| d.status == airlock_team::DeviceStatus::Pending).count(),
                    "db_url": url_json(&s.db_url),
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
            let cp = s.devices.iter().find(|d| d.id == s.checkpointer);
            output::line(format_args!(
                "audit checkpoints by: {} ({})",
                airlock_team::keys::fingerprint(&s.checkpointer),
                cp.map_or("?".into(), |d| airlock_audit::Escaped(&d.name).to_string())
            ));
            print_url_status(&s.db_url);
        }
        TeamCommand::RevokeDevice { fingerprint } => {
            let r = on_team(home, &rt, async |mut t| t.revoke_device(fingerprint).await)?;
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
                "the device still knows the database URL and password: give the others a new credential with `airlock team set-db-url`, then take the old one away (docs/team.md)",
            );
        }
        TeamCommand::PushConfig { names } => {
            let done = on_team(home, &rt, async |mut t| t.push_config(names).await)?;
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
        TeamCommand::Agent(AgentCommand::List(flag)) => {
            let state = airlock_team::local::load_state(home)?;
            let rows: Vec<_> = state.agents.iter().collect();
            output::list(
                flag.json,
                &rows,
                |(name, a)| {
                    json!({"name": name, "status": if a.removed { "removed" } else { "active" },
                           "since": jiff::Timestamp::from_millisecond(a.at).ok().map(|t| t.to_string())})
                },
                &["AGENT", "STATUS", "SINCE"],
                |(name, a)| {
                    vec![
                        (*name).clone(),
                        if a.removed { "removed" } else { "active" }.into(),
                        jiff::Timestamp::from_millisecond(a.at)
                            .map_or("?".into(), |t| t.strftime("%Y-%m-%d %H:%M UTC").to_string()),
                    ]
                },
                "the team defines no agents: every device issues tokens to any agent name; an admin's `airlock team agent add NAME` starts the list",
            )?;
        }
        TeamCommand::Agent(AgentCommand::Add { name } | AgentCommand::Remove { name }) => {
            let add = matches!(cmd, TeamCommand::Agent(AgentCommand::Add { .. }));
            super::check_name("agent", name)?;
            let mut vault = unlock::open(home)?;
            let r = rt.block_on(async {
                let mut team = Team::open(home, &vault).await?;
                let seq = team.publish_agent(name, add).await?;
                team.sync(&mut vault).await.map(|r| (seq, r))
            });
            let (seq, r) = r?;
            output::line(if add {
                format!(
                    "agent \"{name}\" added to the team (change {seq}): every device may issue it tokens"
                )
            } else {
                format!(
                    "agent \"{name}\" removed from the team (change {seq}): every device revokes its tokens and ends its sessions at its next sync, and issues it no new token"
                )
            });
            report(&r);
        }
        TeamCommand::Checkpointer { fingerprint } => {
            let (d, seq) = on_team(home, &rt, async |t| {
                t.designate_checkpointer(fingerprint).await
            })?;
            output::line(format_args!(
                "{} ({}) writes the team's audit checkpoints from now on (change {seq}); the other admin devices stop at their next sync",
                d.fingerprint(),
                airlock_audit::Escaped(&d.name)
            ));
        }
        TeamCommand::SetDbUrl => {
            let source = if std::io::IsTerminal::is_terminal(&std::io::stdin()) {
                crate::input::Source::Prompt
            } else {
                crate::input::Source::Stdin
            };
            let url = crate::input::read_value(
                source,
                "new database URL",
                "standard input (`airlock team set-db-url < FILE`)",
            )?;
            let url = zeroize::Zeroizing::new(
                String::from_utf8(url.to_vec())
                    .map_err(|_| anyhow::anyhow!("the database URL is not UTF-8"))?,
            );
            let vault = unlock::open(home)?;
            let set = rt.block_on(Team::set_db_url(home, &vault, url.trim()))?;
            output::line(
                "this device now uses the new database URL (sealed in team/device.sealed)",
            );
            if let Some(seq) = set.change {
                output::line(format_args!(
                    "sent to every device of the team, sealed under the team key (change {seq}); `airlock team status` names the devices that have not moved to it yet: take the old credential away once there is none (docs/team.md)"
                ));
            }
            if let Some(e) = set.report_error {
                output::warn(format_args!(
                    "the database does not record yet that this device moved ({e}); its next `airlock team sync` tells it"
                ));
            }
        }
        TeamCommand::Sync { follow } => {
            let mut vault = unlock::open(home)?;
            rt.block_on(async {
                let mut team = Team::open(home, &vault).await?;
                if *follow {
                    output::note("following the team's change log (Ctrl-C to stop)");
                    team.follow(&mut vault, POLL, |f| match f {
                        Followed::Sync(Ok(r))
                            if r.changes > 0 || !r.secrets.is_empty() || !r.config.is_empty() =>
                        {
                            report(&r)
                        }
                        Followed::Audit(Ok((u, c))) => report_audit(&u, c, false),
                        Followed::Sync(Ok(_)) => {}
                        Followed::Sync(Err(e)) => output::warn(format_args!("team sync: {e}")),
                        Followed::Audit(Err(e)) => output::warn(format_args!("team audit: {e}")),
                    })
                    .await
                } else {
                    team.migrate().await?;
                    let r = team.sync(&mut vault).await?;
                    report(&r);
                    if let Some(e) = &r.db_url_report {
                        output::warn(format_args!(
                            "could not record in the team database which database URL this device uses: {e}"
                        ));
                    }
                    let u = team.upload_audit().await?;
                    let c = team.checkpoint().await?;
                    report_audit(&u, c, true);
                    Ok(())
                }
            })?;
        }
    }
    Ok(())
}

/// One device's database URL version, as `team status` shows it.
fn url_version(u: &airlock_team::UrlStatus, d: &airlock_team::DeviceUrl) -> String {
    match (d.url_at, d.refused) {
        (_, true) => "its row in airlock.device_db_urls is not signed by it (refused)".into(),
        (None, _) => "has not reported which URL it uses (it does at its next sync)".into(),
        (Some(0), _) => "on the URL it enrolled with".into(),
        (Some(at), _) if u.newest.as_ref().is_some_and(|n| n.at == at) => {
            "on the newest URL".into()
        }
        (Some(at), _) => format!(
            "on the URL sent at {}",
            jiff::Timestamp::from_millisecond(at).map_or("?".into(), |t| t.to_string())
        ),
    }
}

/// `team status`: which database URL the devices use, and which have not
/// moved to the newest one an admin sent.
fn print_url_status(u: &airlock_team::UrlStatus) {
    let Some(n) = &u.newest else {
        output::line(
            "database URL: each device's own (no admin has sent one with `airlock team set-db-url`)",
        );
        return;
    };
    let behind = u.behind();
    output::line(format_args!(
        "database URL: the newest sent by {} at {} (change {}); {} of {} device(s) moved to it",
        airlock_team::keys::fingerprint(&n.by),
        jiff::Timestamp::from_millisecond(n.at).map_or("?".into(), |t| t.to_string()),
        n.seq,
        u.devices.len() - behind.len(),
        u.devices.len()
    ));
    if behind.is_empty() {
        output::line("  every approved device uses it: the old credential can be taken away");
    } else {
        output::line("  not moved yet (keep the old credential until none is left):");
        for d in behind {
            output::line(format_args!(
                "  {} ({}): {}",
                airlock_team::keys::fingerprint(&d.device),
                airlock_audit::Escaped(&d.name),
                url_version(u, d)
            ));
        }
    }
}

/// `team status --json`'s `db_url`.
fn url_json(u: &airlock_team::UrlStatus) -> serde_json::Value {
    let behind = u.behind();
    json!({
        "newest": u.newest.as_ref().map(|n| json!({"change": n.seq, "at": n.at, "by": n.by})),
        "devices": u.devices.iter().map(|d| json!({
            "device": d.device, "fingerprint": airlock_team::keys::fingerprint(&d.device),
            "name": d.name, "url_at": d.url_at, "reported_at": d.reported_at,
            "refused": d.refused, "moved": u.moved(d),
        })).collect::<Vec<_>>(),
        "not_moved": behind.iter().map(|d| airlock_team::keys::fingerprint(&d.device)).collect::<Vec<_>>(),
    })
}

/// An audit upload (and checkpoint): said when something happened, or always
/// for a one-shot `team sync`.
fn report_audit(u: &airlock_team::Upload, checkpoint: Option<i64>, always: bool) {
    if u.rows > 0 || always {
        output::line(format_args!(
            "audit: {} record(s) uploaded; this device's chain is at seq {}",
            u.rows,
            u.head.unwrap_or(0)
        ));
    }
    if let Some(c) = checkpoint {
        output::line(format_args!(
            "audit: checkpoint {c} signed over every device's chain"
        ));
    }
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
    if !r.incident_locks.is_empty() {
        output::line(format_args!(
            "the team's incident response locked {} until an admin's `airlock unlock`",
            lock_names(&r.incident_locks)
        ));
    }
    for (agent, removed) in &r.agents {
        let agent = airlock_audit::Escaped(agent);
        output::line(if *removed {
            format!(
                "the team removed agent \"{agent}\": its sessions end and its tokens are revoked here"
            )
        } else {
            format!("the team added agent \"{agent}\"")
        });
    }
    if r.tokens_revoked > 0 {
        output::line(format_args!(
            "{} agent token(s) of this home revoked by the team",
            r.tokens_revoked
        ));
    }
    if r.db_url {
        output::line("this device now uses the new database URL an admin sent");
    }
    if let Some(d) = &r.checkpointer {
        output::line(format_args!(
            "audit checkpoints are now written by device {}",
            airlock_team::keys::fingerprint(d)
        ));
    }
    if !r.incident_unlocked.is_empty() {
        output::line(format_args!(
            "the team released the incident lock on {}",
            lock_names(&r.incident_unlocked)
        ));
    }
    output::line(format_args!(
        "in sync with change {} ({} new)",
        r.last_seq, r.changes
    ));
}

/// Locked capabilities and agents, as `airlock incident` names them.
fn lock_names(targets: &[RevokeTarget]) -> String {
    targets
        .iter()
        .filter_map(|t| match t {
            RevokeTarget::Capability(c) => {
                Some(format!("capability \"{}\"", airlock_audit::Escaped(c)))
            }
            RevokeTarget::Agent(a) => Some(format!("agent \"{}\"", airlock_audit::Escaped(a))),
            _ => None,
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// `airlock logs --team [--follow]`: every device's records that verify,
/// through the same line and JSON renderings as `airlock logs`, each with its
/// device.
pub(crate) fn logs(
    home: &Home,
    filter: &airlock_audit::Filter,
    json: bool,
    follow: bool,
) -> anyhow::Result<()> {
    let vault = unlock::open(home)?;
    let rt = runtime()?;
    if follow {
        return rt.block_on(follow_logs(home, &vault, filter, json));
    }
    let (records, report) =
        rt.block_on(async { Team::open(home, &vault).await?.read_audit(filter).await })?;
    for r in &records {
        print_team_record(r, json)?;
    }
    if let Some(first) = report.problems.first() {
        output::warn(format_args!(
            "{} problem(s) in the team audit; a chain's rows from its first bad row on are not shown (first: {}); `airlock audit verify --team` lists them",
            report.problems.len(),
            airlock_audit::Escaped(&first.to_string())
        ));
    } else if records.is_empty() {
        output::note(
            "no team audit records yet: devices upload theirs at `airlock team sync` and while `airlock serve` runs",
        );
    }
    Ok(())
}

/// How often `logs --team --follow` asks the database for new rows.
const FOLLOW_POLL: Duration = Duration::from_secs(1);

/// `airlock logs --team --follow`: what `logs --team` prints, then every new
/// row as it arrives (a poll every second reading only the rows added since,
/// each verified as `logs --team` does). A lost database is said once and
/// retried; a chain's problem is said once and its rows stop there.
async fn follow_logs(
    home: &Home,
    vault: &Vault,
    filter: &airlock_audit::Filter,
    json: bool,
) -> anyhow::Result<()> {
    let team = Team::open(home, vault).await?;
    let mut follow = airlock_team::AuditFollow::default();
    let mut lost = false;
    let mut first = true;
    loop {
        match team.follow_audit(&mut follow, filter).await {
            Ok((records, problems)) => {
                if lost {
                    output::note("the team database is back; following again");
                    lost = false;
                }
                for r in &records {
                    print_team_record(r, json)?;
                }
                for p in &problems {
                    output::warn(format_args!(
                        "team audit: {}; this chain's later rows are not shown; `airlock audit verify --team` lists every problem",
                        airlock_audit::Escaped(&p.to_string())
                    ));
                }
                if first && std::io::IsTerminal::is_terminal(&std::io::stderr()) {
                    output::note("waiting for new team records… (Ctrl-C to stop)");
                }
                first = false;
            }
            Err(e) if !first => {
                if !lost {
                    output::warn(format_args!(
                        "cannot read the team audit ({e}); retrying every second"
                    ));
                    lost = true;
                }
            }
            Err(e) => return Err(e.into()),
        }
        tokio::time::sleep(FOLLOW_POLL).await;
    }
}

/// One line (or JSON object) of `airlock logs --team`.
fn print_team_record(r: &airlock_team::TeamRecord, json: bool) -> anyhow::Result<()> {
    if json {
        let record: serde_json::Value = serde_json::from_str(&r.record.to_json())?;
        output::line(serde_json::to_string(&json!({
            "device": r.device, "device_name": r.name, "device_seq": r.seq, "record": record,
        }))?);
    } else {
        output::line(format_args!(
            "{} {} {}",
            airlock_team::keys::fingerprint(&r.device),
            airlock_audit::Escaped(&r.name),
            r.record.human()
        ));
    }
    Ok(())
}

/// `airlock audit verify --team`: exit 0 when every chain, signature and
/// checkpoint verifies, 1 naming every bad row.
pub(crate) fn verify_audit(home: &Home, json: bool) -> anyhow::Result<std::process::ExitCode> {
    let vault = unlock::open(home)?;
    let r = runtime()?.block_on(async { Team::open(home, &vault).await?.verify_audit().await })?;
    if json {
        output::json(&json!({
            "ok": r.is_ok(),
            "rows": r.rows,
            "checkpoints": r.checkpoints,
            "chains": r.chains.iter().map(|c| json!({
                "device": c.device, "fingerprint": airlock_team::keys::fingerprint(&c.device),
                "name": c.name, "rows": c.rows, "head": c.head, "intact": c.intact,
            })).collect::<Vec<_>>(),
            "problems": r.problems.iter().map(|p| json!({
                "row": p.row, "device": p.device, "seq": p.seq, "why": p.why,
                "message": p.to_string(),
            })).collect::<Vec<_>>(),
        }))?;
    } else {
        let rows = r
            .chains
            .iter()
            .map(|c| {
                vec![
                    airlock_team::keys::fingerprint(&c.device),
                    airlock_audit::Escaped(&c.name).to_string(),
                    c.rows.to_string(),
                    c.head.to_string(),
                    if c.intact { "intact" } else { "BROKEN" }.into(),
                ]
            })
            .collect();
        output::table(
            &["DEVICE", "NAME", "ROWS", "HEAD", "CHAIN"],
            rows,
            "no device has uploaded audit records yet",
        );
        for p in &r.problems {
            output::line(format_args!(
                "BROKEN {}",
                airlock_audit::Escaped(&p.to_string())
            ));
        }
        if r.is_ok() {
            output::line(format_args!(
                "team audit intact: {} row(s) in {} chain(s), {} checkpoint(s) verified",
                r.rows,
                r.chains.iter().filter(|c| c.rows > 0).count(),
                r.checkpoints
            ));
        } else {
            output::line(format_args!(
                "team audit BROKEN: {} problem(s)",
                r.problems.len()
            ));
        }
    }
    Ok(if r.is_ok() {
        std::process::ExitCode::SUCCESS
    } else {
        std::process::ExitCode::from(1)
    })
}

/// How much a team check asks of the owner (`airlock doctor` maps it to its levels).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Check {
    Ok,
    Note,
    Warn,
    Action,
}

/// A clock further than this from the database's is reported.
const MAX_SKEW_MS: i64 = 2_000;

/// `airlock doctor` on a team device: the database reachable, TLS, clock skew
/// against the database's `now()`, how far behind this device is.
pub(crate) fn doctor(home: &Home, vault: &Vault) -> Vec<(Check, String)> {
    let mut out = Vec::new();
    let max = airlock_config::Config::load(home)
        .map(|c| c.team.max_staleness)
        .unwrap_or(Duration::from_secs(30));
    let health = runtime().map_err(|e| e.to_string()).and_then(|rt| {
        rt.block_on(async { Team::open(home, vault).await?.health().await })
            .map_err(|e| e.to_string())
    });
    let state = airlock_team::local::load_state(home).ok();
    match &health {
        Err(e) => out.push((
            Check::Action,
            format!(
                "team database {} is unreachable: {e}; this device cannot sync, and a running server refuses requests once it is max_staleness ({} s) behind",
                state.as_ref().map_or("?", |s| s.db.as_str()),
                max.as_secs()
            ),
        )),
        Ok(h) => {
            out.push((
                Check::Ok,
                format!("team database {} is reachable ({} ms round trip)", h.db, h.rtt_ms),
            ));
            out.push(if h.tls {
                (Check::Ok, "the team database connection uses TLS".into())
            } else if h.loopback {
                (
                    Check::Note,
                    format!("the team database connection does not use TLS; {} is on this machine, so nothing crosses the network", h.db),
                )
            } else {
                (
                    Check::Warn,
                    format!("the team database connection to {} does not use TLS: its password and every row cross the network in clear; add `?sslmode=verify-full` to the URL and enable TLS on the server", h.db),
                )
            });
            let skew = h.skew_ms;
            out.push(if skew.abs() > MAX_SKEW_MS {
                (
                    Check::Warn,
                    format!(
                        "this machine's clock is {:.1} s {} the team database's: revocations and locks carry signed instants; synchronise the clock (NTP)",
                        skew.abs() as f64 / 1000.0,
                        if skew > 0 { "ahead of" } else { "behind" }
                    ),
                )
            } else {
                (
                    Check::Ok,
                    format!("clock within {} ms of the team database's", skew.abs()),
                )
            });
        }
    }
    if let Some(s) = &state {
        let ago = s
            .last_sync
            .map(|t| jiff::Timestamp::now().as_second() - t.as_second());
        let behind = health
            .as_ref()
            .map_or(0, |h| (h.head_seq - s.last_seq).max(0));
        out.push(match ago {
            None => (
                Check::Warn,
                "this device has never synced with its team: `airlock team sync`".into(),
            ),
            Some(a) if a > i64::try_from(max.as_secs()).unwrap_or(i64::MAX) => (
                Check::Warn,
                format!(
                    "last team sync {a} s ago, longer than max_staleness ({} s): a server of this home refuses requests until it catches up (`airlock serve` follows the team by itself; `airlock team sync` once)",
                    max.as_secs()
                ),
            ),
            Some(a) => (
                Check::Ok,
                format!(
                    "team sync {a} s ago (max_staleness {} s), {behind} change(s) behind",
                    max.as_secs()
                ),
            ),
        });
    }
    out
}
