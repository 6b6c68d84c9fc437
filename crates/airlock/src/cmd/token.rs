//! `airlock token issue`.

use airlock_broker::tokens;
use airlock_config::Config;
use airlock_home::Home;
use anyhow::bail;
use serde_json::json;

use crate::cli::TokenCommand;
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
    }
}
