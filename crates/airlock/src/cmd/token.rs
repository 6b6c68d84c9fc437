//! `airlock token issue`.

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
            let (token, record) = tokens::issue(home, agent, caps, ttl)?;
            let mut audit = airlock_audit::AuditLog::open_home(
                home,
                vault.audit_key(),
                airlock_audit::Options::default(),
            )?;
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
                    let status = if t.revoked {
                        "revoked"
                    } else if t.expires <= now {
                        "expired"
                    } else {
                        "active"
                    };
                    let last = tokens::last_use(home, &t.id);
                    (t, status, last)
                })
                .collect();
            if flag.json {
                let v: Vec<_> = rows
                    .iter()
                    .map(|(t, status, last)| {
                        json!({"id": t.id, "agent": t.agent, "capabilities": t.capabilities, "status": status,
                               "created": t.created.to_string(), "expires": t.expires.to_string(),
                               "last_use": last.map(|l| l.to_string())})
                    })
                    .collect();
                return output::json(&v);
            }
            let table = rows
                .iter()
                .map(|(t, status, last)| {
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
                })
                .collect();
            output::table(
                &[
                    "ID",
                    "AGENT",
                    "CAPABILITIES",
                    "STATUS",
                    "TIME LEFT",
                    "LAST USE",
                ],
                table,
                "no agent tokens; `airlock token issue --agent NAME` makes one",
            );
            Ok(())
        }
        TokenCommand::Revoke { id } => {
            home.ensure_dir()?;
            let n = {
                let _lock = home.lock()?;
                tokens::revoke_where(home, |t| &t.id == id)?
            };
            if n == 0 {
                bail!(
                    "no active token \"{}\"; see `airlock token list`",
                    id.escape_debug()
                );
            }
            output::line(format_args!(
                "revoked token {id}: running servers refuse it from its next request"
            ));
            Ok(())
        }
    }
}
