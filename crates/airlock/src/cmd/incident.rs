//! `airlock incident SECRET | --agent A | --token ID`: incident response in one
//! command (docs/least-privilege.md, "Incident response").
//!
//! In order:
//! 1. **plan** what the incident touches: for a secret, every capability whose
//!    service uses it, every agent and agent token that may use those, every
//!    live session of them; for an agent, its sessions and tokens; for a token,
//!    the token and its sessions;
//! 2. **revoke** through the same store as `airlock revoke`
//!    ([`crate::store::Store::incident`]: every running server told at once
//!    over its control socket, team devices through the change log);
//! 3. **lock** what an incident must keep shut even for new sessions: the
//!    secret's capabilities, or the agent (`state/revocations.json`, honoured by
//!    every server at every request until `airlock unlock`);
//! 4. **rotate** the upstream credential through its provider's API
//!    ([`rotate`]); the vault gets the new value (a new version) only after the
//!    provider confirmed it, and a failure leaves the old value in place;
//! 5. **blast radius**: every request the audit log shows made with it since
//!    `--since`, by agent, method and path, state-changing ones first.
//!
//! `--dry-run` computes the same plan and changes nothing. Every action is
//! audited with the owner as actor. No secret value is ever printed.

mod rotate;

use std::collections::{BTreeMap, BTreeSet};

use airlock_audit::{Decision, Escaped, Event, Kind};
use airlock_broker::state::{self, RevokeTarget};
use airlock_broker::tokens::{self, TokenRecord};
use airlock_config::{Capability, Config, DefaultAccess, Inject, Mode};
use airlock_home::Home;
use anyhow::{Context as _, bail};
use serde_json::{Value, json};

use crate::cli::IncidentArgs;
use crate::store::{Incident, Store};
use crate::{output, unlock};

/// What the incident is about.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Target {
    Secret(String),
    Agent(String),
    Token(String),
}

impl Target {
    fn from_args(args: &IncidentArgs) -> anyhow::Result<Target> {
        match (&args.secret, &args.agent, &args.token) {
            (Some(s), None, None) => {
                airlock_vault::validate_name(s)?;
                Ok(Target::Secret(s.clone()))
            }
            (None, Some(a), None) => {
                super::check_name("agent", a)?;
                Ok(Target::Agent(a.clone()))
            }
            (None, None, Some(t)) => Ok(Target::Token(token_id(t)?)),
            _ => bail!("name one of SECRET, --agent A or --token ID"),
        }
    }

    fn describe(&self) -> String {
        match self {
            Target::Secret(s) => format!("secret \"{s}\""),
            Target::Agent(a) => format!("agent \"{a}\""),
            Target::Token(t) => format!("agent token {t}"),
        }
    }
}

/// The token id from `--token`: the id itself, or a whole leaked token (whose
/// id is its public part). The value is never echoed.
fn token_id(given: &str) -> anyhow::Result<String> {
    let id = given
        .strip_prefix(tokens::TOKEN_PREFIX)
        .and_then(|rest| rest.split_once('_'))
        .map_or(given, |(id, _)| id);
    if id.len() == 12 && id.bytes().all(|b| b.is_ascii_hexdigit()) {
        Ok(id.to_ascii_lowercase())
    } else {
        bail!("invalid --token: give the token's 12-hex-digit id as `airlock token list` shows it")
    }
}

/// `--since`: a duration back from now, or an RFC 3339 time.
fn parse_since(text: &str, now: jiff::Timestamp) -> anyhow::Result<jiff::Timestamp> {
    let bad = || {
        anyhow::anyhow!(
            "invalid --since \"{}\": give a duration back from now (30m, 2h, 7d) or a time (2026-12-01T09:00:00Z)",
            text.escape_debug()
        )
    };
    let at = match text.parse::<jiff::Timestamp>() {
        Ok(t) => t,
        Err(_) => {
            let d = airlock_config::parse_duration(text).map_err(|_| bad())?;
            let d = jiff::SignedDuration::try_from(d).map_err(|_| bad())?;
            now.checked_sub(d).map_err(|_| bad())?
        }
    };
    if at > now {
        bail!(
            "--since {} is in the future; give a time in the past",
            text.escape_debug()
        );
    }
    Ok(at)
}

/// Everything the incident will do, computed without changing anything.
struct Plan {
    target: Target,
    /// Capabilities the incident touches.
    capabilities: Vec<String>,
    /// Who may use them (names; "*" stands for any agent under open access).
    agents: Vec<String>,
    /// Session revocations, in the form `airlock revoke` records them.
    revocations: Vec<RevokeTarget>,
    /// Sessions live now that the revocations end.
    live_sessions: Vec<state::SessionRecord>,
    /// Agent tokens to revoke (still valid ones only).
    tokens: Vec<TokenRecord>,
    /// What gets locked until `airlock unlock`.
    lock_capabilities: Vec<String>,
    lock_agents: Vec<String>,
    /// Rotations at the providers.
    rotations: Vec<rotate::Rotation>,
    /// Blast radius from here.
    since: Option<jiff::Timestamp>,
}

/// Whether `agent` may use `cap` (its `agents` list, or open access).
fn may_use(config: &Config, cap: &Capability, agent: &str) -> bool {
    match &cap.agents {
        Some(list) => list.iter().any(|a| a == agent),
        None => config.server.default_access == DefaultAccess::Open,
    }
}

/// Whether a token can reach `cap`: its scope and its agent's visibility.
fn token_reaches(config: &Config, t: &TokenRecord, cap: &Capability) -> bool {
    (t.capabilities.is_empty() || t.capabilities.contains(&cap.name))
        && may_use(config, cap, &t.agent)
}

fn plan(
    home: &Home,
    config: &Config,
    vault: &airlock_vault::Vault,
    target: Target,
    args: &IncidentArgs,
) -> anyhow::Result<Plan> {
    let now = jiff::Timestamp::now();
    let all_tokens = tokens::list(home)?;
    let valid: Vec<&TokenRecord> = all_tokens
        .iter()
        .filter(|t| !t.revoked && t.expires > now)
        .collect();
    let sessions = state::sessions(home)?;
    let revs = state::revocations(home)?;
    let live: Vec<&state::SessionRecord> = sessions
        .iter()
        .filter(|s| s.expires > now && !revs.revokes(&s.id, &s.agent, &s.capability, s.started))
        .collect();
    let caps_of = |pred: &dyn Fn(&Capability) -> bool| -> Vec<String> {
        config
            .capabilities
            .values()
            .filter(|c| pred(c))
            .map(|c| c.name.clone())
            .collect()
    };
    let mut p = Plan {
        target: target.clone(),
        capabilities: Vec::new(),
        agents: Vec::new(),
        revocations: Vec::new(),
        live_sessions: Vec::new(),
        tokens: Vec::new(),
        lock_capabilities: Vec::new(),
        lock_agents: Vec::new(),
        rotations: Vec::new(),
        since: None,
    };
    let mut rotate_secrets: Vec<String> = Vec::new();
    match &target {
        Target::Secret(name) => {
            if !vault.contains(name) {
                bail!("no secret \"{name}\" in the vault; `airlock secret list` shows the names");
            }
            let services: BTreeSet<&str> = config
                .services
                .values()
                .filter(|s| s.auth.secrets().contains(&name.as_str()))
                .map(|s| s.name.as_str())
                .collect();
            p.capabilities = caps_of(&|c| services.contains(c.service.as_str()));
            let caps: Vec<&Capability> = p
                .capabilities
                .iter()
                .filter_map(|c| config.capabilities.get(c))
                .collect();
            let mut agents = BTreeSet::new();
            for cap in &caps {
                match &cap.agents {
                    Some(list) => agents.extend(list.iter().cloned()),
                    None if config.server.default_access == DefaultAccess::Open => {
                        agents.insert("*".to_string());
                    }
                    None => {}
                }
            }
            p.tokens = valid
                .iter()
                .filter(|t| caps.iter().any(|c| token_reaches(config, t, c)))
                .map(|t| (*t).clone())
                .collect();
            agents.extend(p.tokens.iter().map(|t| t.agent.clone()));
            p.live_sessions = live
                .iter()
                .filter(|s| p.capabilities.contains(&s.capability))
                .map(|s| (*s).clone())
                .collect();
            agents.extend(p.live_sessions.iter().map(|s| s.agent.clone()));
            p.agents = agents.into_iter().collect();
            p.revocations = p
                .capabilities
                .iter()
                .map(|c| RevokeTarget::Capability(c.clone()))
                .collect();
            p.lock_capabilities = p.capabilities.clone();
            rotate_secrets.push(name.clone());
            p.since = vault
                .list()
                .into_iter()
                .find(|s| &s.name == name)
                .map(|s| s.rotated.unwrap_or(s.created));
        }
        Target::Agent(agent) => {
            p.capabilities = caps_of(&|c| may_use(config, c, agent));
            p.agents = vec![agent.clone()];
            p.tokens = valid
                .iter()
                .filter(|t| &t.agent == agent)
                .map(|t| (*t).clone())
                .collect();
            p.live_sessions = live
                .iter()
                .filter(|s| &s.agent == agent)
                .map(|s| (*s).clone())
                .collect();
            p.revocations = vec![RevokeTarget::Agent(agent.clone())];
            p.lock_agents = vec![agent.clone()];
            // Only what the agent held in the clear needs a new value: the
            // secrets of its `inject = "env"` exec capabilities. Everything
            // else airlock injected without the agent ever seeing it.
            for cap in config.capabilities.values() {
                if cap.mode == Mode::Exec
                    && cap.inject == Inject::Env
                    && may_use(config, cap, agent)
                    && let Some(svc) = config.services.get(&cap.service)
                {
                    rotate_secrets.extend(svc.auth.secrets().into_iter().map(str::to_string));
                }
            }
        }
        Target::Token(id) => {
            let Some(record) = all_tokens.iter().find(|t| &t.id == id) else {
                bail!("no agent token {id}; `airlock token list` shows the ids");
            };
            p.capabilities = caps_of(&|c| token_reaches(config, record, c));
            p.agents = vec![record.agent.clone()];
            if !record.revoked {
                p.tokens = vec![record.clone()];
            }
            let grant = airlock_broker::Grant::token(id);
            p.live_sessions = live
                .iter()
                .filter(|s| s.grant == grant.as_str())
                .map(|s| (*s).clone())
                .collect();
            p.revocations = p
                .live_sessions
                .iter()
                .map(|s| RevokeTarget::Session(s.id.clone()))
                .collect();
            p.since = Some(record.created);
        }
    }
    rotate_secrets.sort();
    rotate_secrets.dedup();
    if !args.no_rotate {
        p.rotations = rotate::plan(config, vault, &rotate_secrets);
    }
    if let Some(text) = &args.since {
        p.since = Some(parse_since(text, now)?);
    }
    Ok(p)
}

/// One line of the blast radius: requests of one agent, method and path.
#[derive(Debug, Default)]
struct Touched {
    count: u64,
    refused: u64,
    first: Option<jiff::Timestamp>,
    last: Option<jiff::Timestamp>,
    statuses: BTreeSet<u16>,
}

/// Methods that only read (the rest changed, or may have changed, state).
fn reads_only(method: &str) -> bool {
    matches!(method, "GET" | "HEAD" | "OPTIONS")
}

type BlastKey = (String, String, String, String);

/// Every request the audit log holds made with what the incident is about,
/// since `since`: allowed ones (sent upstream with the credential, or a
/// program run with it) by (agent, capability, method, path); refused ones
/// counted beside them.
fn blast_radius(home: &Home, p: &Plan) -> anyhow::Result<Vec<(BlastKey, Touched)>> {
    let dir = home.audit_dir();
    if !dir.exists() {
        return Ok(Vec::new());
    }
    let mut filter = airlock_audit::Filter::all();
    if let Some(t) = p.since {
        filter = filter.since(t);
    }
    // A token's requests are those of its sessions (ended ones included, as
    // long as `state/sessions.json` keeps them: a day after they end).
    let token_sessions: BTreeSet<String> = match &p.target {
        Target::Token(id) => {
            let grant = airlock_broker::Grant::token(id);
            state::sessions(home)?
                .into_iter()
                .filter(|s| s.grant == grant.as_str())
                .map(|s| s.id)
                .collect()
        }
        _ => BTreeSet::new(),
    };
    blast_for(&dir, filter, |e| match &p.target {
        Target::Secret(_) => e
            .capability
            .as_ref()
            .is_some_and(|c| p.capabilities.contains(c)),
        Target::Agent(a) => e.agent.as_ref() == Some(a),
        Target::Token(_) => e
            .session
            .as_ref()
            .is_some_and(|s| token_sessions.contains(s)),
    })
}

fn blast_for(
    dir: &std::path::Path,
    filter: airlock_audit::Filter,
    selects: impl Fn(&Event) -> bool,
) -> anyhow::Result<Vec<(BlastKey, Touched)>> {
    let mut by: BTreeMap<BlastKey, Touched> = BTreeMap::new();
    // Decision records by seq, to put their outcome's status on the right line.
    let mut pending: BTreeMap<u64, BlastKey> = BTreeMap::new();
    for item in airlock_audit::records(dir, filter)? {
        let Ok(r) = item else { continue };
        let e = &r.event;
        if e.kind == Kind::Outcome {
            if let (Some(of), Some(status)) = (e.of, e.status)
                && let Some(key) = pending.remove(&of)
                && let Some(t) = by.get_mut(&key)
            {
                t.statuses.insert(status);
            }
            continue;
        }
        if !matches!(e.kind, Kind::Request | Kind::Exec) || !selects(e) {
            continue;
        }
        let key = (
            e.agent.clone().unwrap_or_else(|| "-".into()),
            e.capability.clone().unwrap_or_else(|| "-".into()),
            e.method
                .clone()
                .unwrap_or_else(|| e.kind.as_str().to_ascii_uppercase()),
            e.path.clone().unwrap_or_else(|| "-".into()),
        );
        let t = by.entry(key.clone()).or_default();
        if e.decision == Some(Decision::Allow) {
            t.count += 1;
            t.first.get_or_insert(r.ts);
            t.last = Some(r.ts);
            if let Some(s) = e.status {
                t.statuses.insert(s);
            } else {
                pending.insert(r.seq, key);
            }
        } else {
            t.refused += 1;
        }
    }
    let mut rows: Vec<(BlastKey, Touched)> = by.into_iter().collect();
    // State-changing first, then the most used, then by name.
    rows.sort_by(|(a, ta), (b, tb)| {
        reads_only(&a.2)
            .cmp(&reads_only(&b.2))
            .then(tb.count.cmp(&ta.count))
            .then(a.cmp(b))
    });
    Ok(rows)
}

pub(crate) fn run(home: &Home, args: &IncidentArgs) -> anyhow::Result<()> {
    let target = Target::from_args(args)?;
    let config = Config::load(home)?;
    let vault = unlock::open(home)?;
    let plan = plan(home, &config, &vault, target, args)?;
    let blast = blast_radius(home, &plan)?;
    let outcome = if args.dry_run {
        Outcome::default()
    } else {
        act(home, &plan, vault)?
    };
    report(&plan, &blast, &outcome, args)?;
    match outcome.team_error {
        // Everything above took effect here; say so, and fail, so a script
        // knows the other devices were not told.
        Some(e) => Err(e.context(if outcome.rotated.iter().any(|r| r.result.is_ok()) {
            "incident response done on this device, rotation included (add --no-rotate when you run it again)"
        } else {
            "incident response done on this device"
        })),
        None => Ok(()),
    }
}

/// What the incident did (empty for a dry run).
#[derive(Debug, Default)]
struct Outcome {
    sessions_ended: usize,
    tokens_revoked: usize,
    servers: usize,
    rotated: Vec<rotate::Rotated>,
    /// Why the team (its other devices) was not told of the locks and
    /// revocations; the local steps and the rotation went on regardless.
    team_error: Option<anyhow::Error>,
}

/// Records one owner action of the incident (`ok`: it did what it set out to
/// do; revocations and locks are refusals, as `airlock revoke` records them).
fn audit(log: &mut Option<airlock_audit::AuditLog>, kind: Kind, ok: bool, detail: &str) {
    let Some(log) = log else { return };
    let event = Event::new(kind)
        .agent(airlock_broker::OWNER, true)
        .decision(if ok { Decision::Allow } else { Decision::Deny })
        .detail(detail);
    if let Err(e) = log.append(&event) {
        output::warn(format_args!(
            "the incident step took effect but could not be audited: {e}"
        ));
    }
}

fn act(home: &Home, p: &Plan, mut vault: airlock_vault::Vault) -> anyhow::Result<Outcome> {
    home.ensure_dir()?;
    let store = crate::store::open(home);
    let mut log = match super::open_audit(home, &vault) {
        Ok(l) => Some(l),
        Err(e) => {
            output::warn(format_args!("the incident cannot be audited: {e}"));
            None
        }
    };
    let what = p.target.describe();
    audit(
        &mut log,
        Kind::Other("incident".into()),
        false,
        &format!("owner started incident response for {what}"),
    );
    let mut out = Outcome::default();
    // Locks first (from there no new session of what leaked can start), then
    // the revocations, on this home; the team is told below.
    let ids: Vec<String> = p
        .tokens
        .iter()
        .map(|t| t.id.clone())
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    let (done, tell) = store.incident(&Incident {
        capabilities: &p.lock_capabilities,
        agents: &p.lock_agents,
        revocations: &p.revocations,
        tokens: &ids,
    })?;
    if !p.lock_capabilities.is_empty() || !p.lock_agents.is_empty() {
        audit(
            &mut log,
            Kind::Lock,
            false,
            &format!(
                "incident {what}: locked capabilities [{}] and agents [{}] until `airlock unlock`",
                p.lock_capabilities.join(", "),
                p.lock_agents.join(", ")
            ),
        );
    }
    out.sessions_ended = done.sessions;
    out.tokens_revoked = done.tokens;
    audit(
        &mut log,
        Kind::Revoke,
        false,
        &format!(
            "incident {what}: {} active session(s) ended, {} agent token(s) revoked",
            out.sessions_ended, out.tokens_revoked
        ),
    );
    out.servers = super::sessions::notify(home);
    // The team is told next; if its database is out of reach, the rotation
    // below still happens (it is what makes the leaked value useless) and
    // `run` fails at the end with why.
    if let Err(e) = tell.tell() {
        audit(
            &mut log,
            Kind::Other("incident".into()),
            false,
            &format!("incident {what}: the team was not told: {e:#}"),
        );
        out.team_error = Some(e);
    }
    for r in &p.rotations {
        let done = rotate::apply(home, &mut vault, r);
        let detail = match &done.result {
            Ok(note) => format!("incident {what}: rotated {} ({note})", r.secrets.join(", ")),
            Err(e) => format!(
                "incident {what}: rotation of {} failed, old value kept: {e}",
                r.secrets.join(", ")
            ),
        };
        let ok = done.result.is_ok();
        audit(&mut log, Kind::Other("rotate".into()), ok, &detail);
        out.rotated.push(done);
    }
    // The running servers load the new vault version at once.
    if out.rotated.iter().any(|r| r.result.is_ok()) {
        super::sessions::notify(home);
    }
    if let Some(l) = log {
        l.close().context("cannot close the audit log")?;
    }
    Ok(out)
}

fn shown(s: &str) -> String {
    Escaped(s).to_string()
}

fn revocation_text(t: &RevokeTarget) -> String {
    match t {
        RevokeTarget::Session(id) => format!("session {id}"),
        RevokeTarget::Agent(a) => format!("every session and token of agent \"{}\"", shown(a)),
        RevokeTarget::Capability(c) => format!("every session of capability \"{c}\""),
        RevokeTarget::All => "every session".into(),
    }
}

fn report(
    p: &Plan,
    blast: &[(BlastKey, Touched)],
    out: &Outcome,
    args: &IncidentArgs,
) -> anyhow::Result<()> {
    let ts = |t: Option<jiff::Timestamp>| t.map(|t| t.to_string());
    if args.json {
        let rotations: Vec<Value> = p
            .rotations
            .iter()
            .map(|r| {
                let done = out.rotated.iter().find(|d| d.secrets == r.secrets);
                json!({
                    "secrets": r.secrets, "service": r.service, "provider": r.provider.name(),
                    "plan": r.how, "automatic": r.automatic,
                    "rotated": done.map(|d| d.result.is_ok()),
                    "result": done.map(|d| match &d.result { Ok(n) => n.clone(), Err(e) => e.clone() }),
                })
            })
            .collect();
        let requests: Vec<Value> = blast
            .iter()
            .map(|((agent, cap, method, path), t)| {
                json!({
                    "agent": agent, "capability": cap, "method": method, "path": path,
                    "state_changing": !reads_only(method), "count": t.count, "refused": t.refused,
                    "first": ts(t.first), "last": ts(t.last), "statuses": t.statuses,
                })
            })
            .collect();
        return output::json(&json!({
            "target": match &p.target {
                Target::Secret(s) => json!({"secret": s}),
                Target::Agent(a) => json!({"agent": a}),
                Target::Token(t) => json!({"token": t}),
            },
            "dry_run": args.dry_run,
            "capabilities": p.capabilities,
            "agents": p.agents,
            "revoke": p.revocations.iter().map(revocation_text).collect::<Vec<_>>(),
            "live_sessions": p.live_sessions.iter().map(|s| json!({"id": s.id, "agent": s.agent, "capability": s.capability})).collect::<Vec<_>>(),
            "tokens": p.tokens.iter().map(|t| json!({"id": t.id, "agent": t.agent})).collect::<Vec<_>>(),
            "lock": {"capabilities": p.lock_capabilities, "agents": p.lock_agents},
            "rotations": rotations,
            "done": (!args.dry_run).then(|| json!({
                "sessions_ended": out.sessions_ended, "tokens_revoked": out.tokens_revoked,
                "servers_notified": out.servers,
                "team_error": out.team_error.as_ref().map(|e| format!("{e:#}")),
            })),
            "since": ts(p.since),
            "requests": requests,
        }));
    }
    let verb = |would: &str, did: &str| {
        if args.dry_run {
            would.to_string()
        } else {
            did.to_string()
        }
    };
    output::line(format_args!(
        "incident response for {}{}",
        p.target.describe(),
        if args.dry_run {
            " (dry run: nothing changed)"
        } else {
            ""
        }
    ));
    let list = |v: &[String]| {
        if v.is_empty() {
            "none".to_string()
        } else {
            v.iter()
                .map(|s| {
                    if s == "*" {
                        "any agent (default_access = open)".into()
                    } else {
                        shown(s)
                    }
                })
                .collect::<Vec<_>>()
                .join(", ")
        }
    };
    let mut rows = vec![
        vec!["capabilities".into(), list(&p.capabilities)],
        vec!["agents".into(), list(&p.agents)],
    ];
    for r in &p.revocations {
        rows.push(vec![verb("would revoke", "revoked"), revocation_text(r)]);
    }
    if !p.live_sessions.is_empty() {
        let ids: Vec<String> = p.live_sessions.iter().map(|s| s.id.clone()).collect();
        rows.push(vec![
            verb("live sessions to end", "live sessions ended"),
            ids.join(", "),
        ]);
    }
    if !p.tokens.is_empty() {
        let ids: Vec<String> = p
            .tokens
            .iter()
            .map(|t| format!("{} ({})", t.id, shown(&t.agent)))
            .collect();
        rows.push(vec![
            verb("would revoke tokens", "revoked tokens"),
            ids.join(", "),
        ]);
    }
    if !p.lock_capabilities.is_empty() || !p.lock_agents.is_empty() {
        let what = lock_targets(&p.lock_capabilities, &p.lock_agents);
        rows.push(vec![
            verb("would lock", "locked"),
            format!("{what} (until `airlock unlock`)"),
        ]);
    }
    for r in &p.rotations {
        let done = out.rotated.iter().find(|d| d.secrets == r.secrets);
        let state = match done.map(|d| &d.result) {
            None => r.how.clone(),
            Some(Ok(note)) => format!("rotated: {note}"),
            Some(Err(e)) => format!("NOT rotated, the old value is kept: {e}"),
        };
        rows.push(vec![
            format!("rotate {}", r.secrets.join(" + ")),
            format!("{}: {state}", r.provider.name()),
        ]);
    }
    if args.no_rotate {
        rows.push(vec!["rotate".into(), "skipped (--no-rotate)".into()]);
    }
    if !args.dry_run {
        rows.push(vec![
            "done".into(),
            format!(
                "{} active session(s) ended, {} agent token(s) revoked; {} running server(s) applied it now (others at their next request)",
                out.sessions_ended, out.tokens_revoked, out.servers
            ),
        ]);
    }
    output::table(&["STEP", "WHAT"], rows, "");
    output::line(format_args!(
        "blast radius since {}: requests made with it, state-changing first",
        p.since
            .map_or("the start of the audit log".into(), |t| t.to_string())
    ));
    let table = blast
        .iter()
        .map(|((agent, cap, method, path), t)| {
            vec![
                if reads_only(method) { "read" } else { "WRITE" }.to_string(),
                shown(agent),
                shown(cap),
                shown(method),
                shown(path),
                t.count.to_string(),
                t.refused.to_string(),
                t.statuses
                    .iter()
                    .map(u16::to_string)
                    .collect::<Vec<_>>()
                    .join(" "),
                t.last.map_or("-".into(), |l| l.to_string()),
            ]
        })
        .collect();
    output::table(
        &[
            "KIND",
            "AGENT",
            "CAPABILITY",
            "METHOD",
            "PATH",
            "ALLOWED",
            "REFUSED",
            "STATUS",
            "LAST",
        ],
        table,
        "no requests in the audit log in that time",
    );
    Ok(())
}

/// Locked capabilities and agents as the owner reads them:
/// `capability "a", agent "b"`.
fn lock_targets<'a>(
    capabilities: impl IntoIterator<Item = &'a String>,
    agents: impl IntoIterator<Item = &'a String>,
) -> String {
    capabilities
        .into_iter()
        .map(|c| format!("capability \"{c}\""))
        .chain(
            agents
                .into_iter()
                .map(|a| format!("agent \"{}\"", shown(a))),
        )
        .collect::<Vec<_>>()
        .join(", ")
}

/// `airlock unlock`'s part: releases every incident lock (audited with the
/// owner as actor); whether there was any.
pub(crate) fn release_locks(
    home: &Home,
    vault: &airlock_vault::Vault,
    store: &dyn Store,
) -> anyhow::Result<bool> {
    let (released, tell) = store.release_incident_locks()?;
    if released.is_empty() {
        return Ok(false);
    }
    let what = lock_targets(released.capabilities.keys(), released.agents.keys());
    let mut log = super::open_audit(home, vault).ok();
    if let Some(log) = &mut log {
        let event = Event::new(Kind::Unlock)
            .agent(airlock_broker::OWNER, true)
            .decision(Decision::Allow)
            .detail(&format!("owner released the incident lock on {what}"));
        if let Err(e) = log.append(&event) {
            output::warn(format_args!(
                "the unlock took effect but could not be audited: {e}"
            ));
        }
    }
    output::line(format_args!(
        "released the incident lock on {what}: their requests are decided by the policy again"
    ));
    tell.tell()?;
    Ok(true)
}
