//! `airlock token issue|list|revoke|attenuate`.

use airlock_broker::tokens;
use airlock_config::Config;
use airlock_home::Home;
use anyhow::bail;
use serde_json::json;

use crate::cli::TokenCommand;
use crate::cmd::human_duration;
use crate::{output, unlock};

pub(crate) fn run(home: &Home, cmd: &TokenCommand) -> anyhow::Result<()> {
    match cmd {
        TokenCommand::Issue {
            agent,
            caps,
            ttl,
            json,
        } => {
            let ttl = airlock_config::parse_duration(ttl).map_err(anyhow::Error::msg)?;
            crate::store::open(home).check_agent(agent)?;
            let config = Config::load(home)?;
            for c in caps {
                if !config.capabilities.contains_key(c) {
                    bail!(
                        "unknown capability \"{}\"; see `airlock cap list`",
                        c.escape_debug()
                    );
                }
            }
            let (_lock, vault) = unlock::open_for_write(home, false)?;
            let key = airlock_broker::attenuate::TokenKey::from_vault(&vault);
            let (token, record) = tokens::issue_keyed(home, agent, caps, ttl, &key)?;
            let mut audit = super::open_audit(home, &vault)?;
            audit.append(
                &airlock_audit::Event::new(airlock_audit::Kind::TokenIssue)
                    .agent(agent, true)
                    .decision(airlock_audit::Decision::Allow)
                    .detail(&format!(
                        "token {} for capabilities [{}], expires {}",
                        record.id,
                        if caps.is_empty() {
                            "all".to_string()
                        } else {
                            caps.join(", ")
                        },
                        record.expires
                    )),
            )?;
            if *json {
                output::json(&json!({
                    "token": token.as_str(),
                    "agent": record.agent,
                    "expires": record.expires.to_string(),
                }))?;
            } else {
                output::line(token.as_str());
                output::note(format_args!(
                    "token {} for agent \"{}\", valid until {}; it is shown only now — store it where the agent reads its key",
                    record.id, record.agent, record.expires
                ));
            }
            Ok(())
        }
        TokenCommand::List(flag) => {
            let now = jiff::Timestamp::now();
            let rows: Vec<_> = tokens::list(home)?
                .into_iter()
                .map(|t| {
                    let status = airlock_ui::token_status(&t, now);
                    let last = tokens::last_use(home, &t.id);
                    (t, status, last)
                })
                .collect();
            output::list(
                flag.json,
                &rows,
                |(t, status, last)| {
                    json!({"id": t.id, "agent": t.agent, "capabilities": t.capabilities, "status": status,
                           "created": t.created.to_string(), "expires": t.expires.to_string(),
                           "last_use": last.map(|l| l.to_string())})
                },
                &[
                    "ID",
                    "AGENT",
                    "CAPABILITIES",
                    "STATUS",
                    "TIME LEFT",
                    "LAST USE",
                ],
                |(t, status, last)| {
                    let caps = if t.capabilities.is_empty() {
                        "(all the agent may use)".to_string()
                    } else {
                        t.capabilities.join(", ")
                    };
                    let left = if *status == "active" {
                        human_duration(std::time::Duration::from_secs(
                            now.duration_until(t.expires).unsigned_abs().as_secs(),
                        ))
                    } else {
                        "-".into()
                    };
                    vec![
                        t.id.clone(),
                        t.agent.clone(),
                        caps,
                        (*status).to_string(),
                        left,
                        last.map_or("never".into(), |l| {
                            l.strftime("%Y-%m-%d %H:%M UTC").to_string()
                        }),
                    ]
                },
                "no agent tokens; `airlock token issue --agent NAME` makes one",
            )
        }
        TokenCommand::Attenuate {
            token,
            caps,
            allow,
            ttl,
            json,
        } => attenuate(token, caps, allow, ttl.as_deref(), *json),
        TokenCommand::Revoke { id } => {
            // An id this home does not hold: an error in local mode; in a
            // team, the device that issued it revokes it.
            let store = crate::store::open(home);
            let (n, tell) = store.revoke_token(id)?;
            if n > 0 {
                output::line(format_args!(
                    "revoked token {id}: running servers refuse it from its next request"
                ));
            }
            tell.tell()
        }
    }
}

/// `airlock token attenuate`: offline, touches no file.
fn attenuate(
    token: &str,
    caps: &[String],
    allow: &[String],
    ttl: Option<&str>,
    json: bool,
) -> anyhow::Result<()> {
    let ttl = ttl
        .map(|t| airlock_config::parse_duration(t).map_err(anyhow::Error::msg))
        .transpose()?;
    let parent = if token == "-" {
        let mut buf = zeroize::Zeroizing::new(String::new());
        std::io::Read::read_to_string(&mut std::io::stdin().lock(), &mut buf)?;
        if buf.trim().is_empty() || buf.trim().contains(char::is_whitespace) {
            bail!("expected one agent token on stdin (for `airlock token attenuate -`)");
        }
        buf
    } else {
        zeroize::Zeroizing::new(token.to_string())
    };
    let narrowed = airlock_broker::attenuate::narrow(&parent, caps, allow, ttl)?;
    if json {
        return output::json(&narrowed.to_json());
    }
    output::line(narrowed.token.as_str());
    let info = &narrowed.info;
    let until = info.expires().map_or_else(
        || "as long as its parent".to_string(),
        |e| format!("until {e} at the latest"),
    );
    let newest = info
        .caveats
        .last()
        .and_then(Option::as_ref)
        .map(airlock_broker::attenuate::Caveat::describe)
        .unwrap_or_default();
    output::note(format_args!(
        "attenuated token of {} with {} caveat(s), the new one: {newest}; valid {until} (never past its parent); `airlock token revoke {}` revokes it",
        info.root,
        info.caveats.len(),
        info.root
    ));
    Ok(())
}
