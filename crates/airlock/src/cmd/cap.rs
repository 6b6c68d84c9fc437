//! `airlock cap add|list|remove`.

use airlock_config::{Capability, CapabilitySpec, Config, ConfigDoc};
use airlock_home::Home;
use anyhow::bail;
use serde_json::{Value, json};

use crate::cli::{CapAddArgs, CapCommand};
use crate::cmd::human_duration;
use crate::output;

pub(crate) fn run(home: &Home, cmd: &CapCommand) -> anyhow::Result<()> {
    match cmd {
        CapCommand::Add(args) => add(home, args),
        CapCommand::List(flag) => {
            let config = Config::load(home)?;
            if flag.json {
                let caps: Vec<Value> = config.capabilities.values().map(to_json).collect();
                output::json(&caps)
            } else {
                print_table(&config);
                Ok(())
            }
        }
        CapCommand::Remove { name } => remove(home, name),
    }
}

fn add(home: &Home, args: &CapAddArgs) -> anyhow::Result<()> {
    let name = args.name.as_str();
    if !airlock_home::is_valid_name(name) {
        bail!(
            "invalid capability name \"{}\": {}",
            name.escape_debug(),
            airlock_home::NAME_RULE
        );
    }
    let _lock = lock_config(home)?;
    let mut doc = ConfigDoc::load(home)?;
    if !doc.has_service(&args.service) {
        bail!(
            "unknown service \"{}\"; add it first with `airlock add {} --url URL`",
            args.service.escape_debug(),
            args.service.escape_debug()
        );
    }
    let spec = CapabilitySpec {
        service: args.service.clone(),
        ttl: Some(args.ttl.clone()),
        allow: args.allow.clone(),
        deny: args.deny.clone(),
        agents: args.agents.clone(),
        requires_reason: args.requires_reason,
        approval: args.approval,
        rate: args.rate.clone(),
    };
    doc.add_capability(name, &spec)?;
    // Validation errors point into the edited text, which the user never saw:
    // re-phrase them as being about the flags.
    let config = doc.config().map_err(|e| match e {
        airlock_config::ConfigError::Invalid { message, .. } => anyhow::anyhow!("{message}"),
        other => other.into(),
    })?;
    doc.save()?;
    let cap = &config.capabilities[name];
    output::line(format_args!(
        "added capability \"{name}\" for service \"{}\" ({})",
        cap.service,
        summary(cap)
    ));
    Ok(())
}

fn remove(home: &Home, name: &str) -> anyhow::Result<()> {
    let _lock = lock_config(home)?;
    let mut doc = ConfigDoc::load(home)?;
    if !doc.remove_capability(name) {
        bail!(
            "unknown capability \"{}\"; see `airlock cap list`",
            name.escape_debug()
        );
    }
    doc.save()?;
    output::line(format_args!("removed capability \"{name}\""));
    Ok(())
}

/// Config-only edits still take the home lock so they never interleave with
/// another writer's read-modify-write.
fn lock_config(home: &Home) -> anyhow::Result<airlock_home::HomeLock> {
    home.ensure_dir()?;
    Ok(home.lock()?)
}

fn summary(cap: &Capability) -> String {
    let mut parts = vec![format!("ttl {}", human_duration(cap.ttl))];
    if cap.allow.is_empty() && cap.deny.is_empty() {
        parts.push("all paths".into());
    } else {
        parts.push(format!(
            "{} allow, {} deny rules",
            cap.allow.len(),
            cap.deny.len()
        ));
    }
    if let Some(agents) = &cap.agents {
        parts.push(format!("agents: {}", agents.join(",")));
    }
    if cap.requires_reason {
        parts.push("reason required".into());
    }
    if cap.approval != airlock_config::Approval::Never {
        parts.push("approval required".into());
    }
    if let Some(rate) = cap.rate {
        parts.push(format!("rate {rate}"));
    }
    parts.join(", ")
}

pub(crate) fn to_json(c: &Capability) -> Value {
    let mut v = json!({
        "name": c.name,
        "service": c.service,
        "mode": c.mode,
        "ttl": human_duration(c.ttl),
        "ttl_seconds": c.ttl.as_secs(),
        "allow": c.allow,
        "deny": c.deny,
        "agents": c.agents,
        "requires_reason": c.requires_reason,
        "approval": c.approval,
        "rate": c.rate.map(|r| r.to_string()),
    });
    if c.mode == airlock_config::Mode::Exec {
        v["commands"] = json!(c.commands);
        v["workdirs"] = json!(c.workdirs);
        v["confine"] = json!(c.confine);
        v["network"] = json!(c.network.as_str());
    }
    v
}

pub(crate) fn print_table(config: &Config) {
    let rows = config
        .capabilities
        .values()
        .map(|c| {
            let mut rules: Vec<String> = c.allow.iter().map(|r| format!("allow {r}")).collect();
            rules.extend(c.deny.iter().map(|r| format!("deny {r}")));
            if c.mode == airlock_config::Mode::Exec {
                rules = vec![format!("exec: {}", c.commands.join(", "))];
            } else if rules.is_empty() {
                rules.push("(all paths)".into());
            }
            vec![
                c.name.clone(),
                c.service.clone(),
                human_duration(c.ttl),
                rules.join("\n"),
                c.agents.as_ref().map_or("(any)".into(), |a| a.join(", ")),
                summary_flags(c),
            ]
        })
        .collect();
    output::table(
        &["NAME", "SERVICE", "TTL", "RULES", "AGENTS", "CHECKS"],
        rows,
        "  (none — `airlock add` creates one per service; `airlock cap add` adds more)",
    );
}

fn summary_flags(c: &Capability) -> String {
    let mut f = Vec::new();
    if c.mode == airlock_config::Mode::Exec {
        if !c.confine {
            f.push("UNCONFINED (confine = false)".to_string());
        }
        if c.network == airlock_config::Network::Direct {
            f.push("network direct".to_string());
        }
    }
    if c.requires_reason {
        f.push("reason".to_string());
    }
    match c.approval {
        airlock_config::Approval::Always => f.push("approval".into()),
        airlock_config::Approval::Session => f.push("approval/session".into()),
        airlock_config::Approval::Never => {}
    }
    if let Some(r) = c.rate {
        f.push(format!("rate {r}"));
    }
    f.join(", ")
}
