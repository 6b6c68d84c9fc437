//! `airlock cap add|list|remove`.

use std::path::{Path, PathBuf};

use airlock_config::{Capability, CapabilitySpec, Config, ConfigDoc, ExecSpec};
use airlock_home::Home;
use anyhow::bail;
use serde_json::{Value, json};

use crate::cli::{CapAddArgs, CapCommand, CapInject, CapMode, CapNetwork};
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
    super::check_name("capability", name)?;
    let exec = exec_spec(args)?;
    let learn_until = learn_until(args)?;
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
        learn_until,
    };
    doc.add_capability(name, &spec)?;
    if let Some(exec) = &exec {
        doc.set_exec(name, exec)?;
    }
    // Validation errors point into the edited text, which the user never saw:
    // re-phrase them as being about the flags.
    let config = doc.config().map_err(|e| match e {
        airlock_config::ConfigError::Invalid { message, .. } => anyhow::anyhow!("{message}"),
        other => other.into(),
    })?;
    let cap = &config.capabilities[name];
    if exec.is_some() {
        check_exec(&config, cap)?;
    }
    doc.save()?;
    output::line(format_args!(
        "added capability \"{name}\" for service \"{}\" ({})",
        cap.service,
        summary(cap)
    ));
    Ok(())
}

/// `--learn [--for D]`: the end of the learning window, checked (HTTP only,
/// no `--allow`: learning is how the allow rules get written).
fn learn_until(args: &CapAddArgs) -> anyhow::Result<Option<String>> {
    if !args.learn {
        return Ok(None);
    }
    if args.mode == CapMode::Exec {
        bail!(
            "--learn is for HTTP capabilities (it proposes method and path rules); drop --mode exec"
        );
    }
    if !args.allow.is_empty() {
        bail!(
            "--learn starts without allow rules (`airlock learn apply` writes them from what it saw); drop --allow (--deny rules still apply while learning)"
        );
    }
    let window = args.learn_for.as_deref().unwrap_or("1h");
    let d = airlock_config::parse_duration(window)
        .map_err(|e| anyhow::anyhow!("invalid --for \"{}\": {e}", window.escape_debug()))?;
    let span = jiff::SignedDuration::try_from(d)
        .map_err(|_| anyhow::anyhow!("--for {window} is too long"))?;
    let until = jiff::Timestamp::now()
        .checked_add(span)
        .map_err(|_| anyhow::anyhow!("--for {window} is too long"))?;
    // Whole seconds: the file is for people to read.
    Ok(Some(until.round(jiff::Unit::Second)?.to_string()))
}

/// The exec part of `cap add`, checked: the exec flags need `--mode exec`,
/// which needs a `--command`; `--env` is `VAR=VALUE`; each `--workdir` exists
/// (stored absolute; `~/…` kept as written).
fn exec_spec(args: &CapAddArgs) -> anyhow::Result<Option<ExecSpec>> {
    if args.mode != CapMode::Exec {
        let given: Vec<&str> = [
            (!args.commands.is_empty(), "--command"),
            (!args.env.is_empty(), "--env"),
            (!args.workdirs.is_empty(), "--workdir"),
            (args.inject.is_some(), "--inject"),
            (args.no_confine, "--no-confine"),
            (args.network.is_some(), "--network"),
        ]
        .into_iter()
        .filter_map(|(set, flag)| set.then_some(flag))
        .collect();
        if !given.is_empty() {
            bail!(
                "{} only apply to exec capabilities; add --mode exec",
                given.join(", ")
            );
        }
        return Ok(None);
    }
    if !args.allow.is_empty() || !args.deny.is_empty() {
        bail!(
            "--allow/--deny are HTTP rules; an exec capability is limited by --command, --workdir and its token's own scope"
        );
    }
    let commands: Vec<String> = args
        .commands
        .iter()
        .map(|c| c.trim().to_string())
        .filter(|c| !c.is_empty())
        .collect();
    if commands.is_empty() {
        bail!(
            "--mode exec needs the programs the agent may run: add --command PROG (e.g. --command git)"
        );
    }
    let mut env: Vec<(String, String)> = Vec::new();
    for e in &args.env {
        let parsed = e.split_once('=').filter(|(k, _)| {
            k.bytes()
                .next()
                .is_some_and(|b| b.is_ascii_alphabetic() || b == b'_')
                && k.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
        });
        let Some((k, v)) = parsed else {
            bail!(
                "invalid --env \"{}\": expected VAR=VALUE with VAR made of letters, digits and _, e.g. --env 'GH_TOKEN={{{{secret}}}}'",
                e.escape_debug()
            );
        };
        if v.replace("{{secret}}", "").contains("{{") {
            bail!(
                "invalid --env \"{}\": the only placeholder is {{{{secret}}}} (the service's secret)",
                e.escape_debug()
            );
        }
        env.retain(|(old, _)| old != k);
        env.push((k.to_string(), v.to_string()));
    }
    let mut workdirs = Vec::new();
    for w in &args.workdirs {
        workdirs.push(workdir(w)?);
    }
    Ok(Some(ExecSpec {
        commands,
        env,
        workdirs,
        confine: !args.no_confine,
        network: args.network.map(|n| {
            match n {
                CapNetwork::None => "none",
                CapNetwork::Direct => "direct",
            }
            .to_string()
        }),
        inject: args.inject.map(|i| {
            match i {
                CapInject::Placeholder => "placeholder",
                CapInject::Env => "env",
            }
            .to_string()
        }),
    }))
}

/// A `--workdir` as stored: `~/…` as written, an absolute path as written, a
/// relative one made absolute; it must be an existing directory.
fn workdir(given: &str) -> anyhow::Result<String> {
    let owner = std::env::var_os("HOME")
        .map(PathBuf::from)
        .or_else(std::env::home_dir);
    let (path, keep) = match (given.strip_prefix("~/"), &owner) {
        (Some(rest), Some(h)) => (h.join(rest), true),
        _ if given == "~" => (owner.clone().unwrap_or_default(), true),
        _ => (PathBuf::from(given), Path::new(given).is_absolute()),
    };
    let shown = given.escape_debug();
    match std::fs::metadata(&path) {
        Ok(m) if m.is_dir() => {}
        Ok(_) => bail!("--workdir \"{shown}\" is not a directory"),
        Err(_) => bail!("--workdir \"{shown}\" does not exist; create it or fix the path"),
    }
    if keep {
        return Ok(given.to_string());
    }
    let abs = path
        .canonicalize()
        .map_err(|e| anyhow::anyhow!("--workdir \"{shown}\": {e}"))?;
    abs.to_str()
        .map(str::to_owned)
        .ok_or_else(|| anyhow::anyhow!("--workdir \"{shown}\" is not valid UTF-8"))
}

/// Compiles the new exec capability as `serve` will (programs found, env keys
/// allowed, workdirs clear of the airlock home), so a mistake is refused now
/// rather than reported when an agent first uses it. A kernel without Landlock
/// is only a warning here: `doctor` and the capability's own refusal say it.
fn check_exec(config: &Config, cap: &Capability) -> anyhow::Result<()> {
    let Some(service) = config.services.get(&cap.service) else {
        return Ok(());
    };
    match airlock_exec::ExecPolicy::new(cap, service, &airlock_exec::OwnerEnv::from_process()) {
        Ok(policy) => {
            for w in policy.warnings() {
                output::warn(w);
            }
            Ok(())
        }
        Err(e @ airlock_exec::PolicyError::Unconfinable { .. }) => {
            output::warn(e);
            Ok(())
        }
        Err(e) => bail!("{e}"),
    }
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
pub(crate) fn lock_config(home: &Home) -> anyhow::Result<airlock_home::HomeLock> {
    home.ensure_dir()?;
    Ok(home.lock()?)
}

fn summary(cap: &Capability) -> String {
    let mut parts = vec![format!("ttl {}", human_duration(cap.ttl))];
    if cap.mode == airlock_config::Mode::Exec {
        parts.push(format!("exec: {}", cap.commands.join(", ")));
        if !cap.env.is_empty() {
            let keys: Vec<&str> = cap.env.keys().map(String::as_str).collect();
            parts.push(format!("env {}", keys.join(", ")));
        }
        if !cap.workdirs.is_empty() {
            parts.push(format!("workdirs {}", cap.workdirs.join(", ")));
        }
        parts.push(if cap.confine {
            format!("confined, network {}", cap.network.as_str())
        } else {
            "UNCONFINED (confine = false)".into()
        });
        parts.push(match cap.inject {
            airlock_config::Inject::Placeholder => {
                "a placeholder for the secret (egress proxy)".into()
            }
            airlock_config::Inject::Env => "the real secret (inject = env)".into(),
        });
    } else if let Some(note) = learning_note(cap) {
        parts.push(note);
    } else if cap.allow.is_empty() && cap.deny.is_empty() {
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

/// What a learning capability (`learn_until`) does now, loud; `None` when it
/// is not one.
pub(crate) fn learning_note(cap: &Capability) -> Option<String> {
    let until = cap.learn_until?;
    Some(if cap.learning_at(jiff::Timestamp::now()) {
        format!(
            "LEARNING until {until}: every path the deny rules leave is allowed and recorded; `airlock learn show {}`",
            cap.name
        )
    } else {
        format!(
            "learning ended at {until}: refuses everything until `airlock learn apply {}`",
            cap.name
        )
    })
}

pub(crate) fn to_json(c: &Capability) -> Value {
    let mut v = json!({
        "name": c.name,
        "service": c.service,
        "mode": c.mode,
        "ttl": human_duration(c.ttl),
        "ttl_seconds": c.ttl.as_secs(),
        "allow": c.allow_written().collect::<Vec<_>>(),
        "deny": c.deny_written().collect::<Vec<_>>(),
        "agents": c.agents,
        "requires_reason": c.requires_reason,
        "approval": c.approval,
        "rate": c.rate.map(|r| r.to_string()),
    });
    if let Some(until) = c.learn_until {
        v["learn_until"] = json!(until.to_string());
        v["learning"] = json!(c.learning_at(jiff::Timestamp::now()));
    }
    if c.mode == airlock_config::Mode::Exec {
        v["commands"] = json!(c.commands);
        v["workdirs"] = json!(c.workdirs);
        v["confine"] = json!(c.confine);
        v["network"] = json!(c.network.as_str());
        v["inject"] = json!(c.inject.as_str());
    }
    v
}

pub(crate) fn print_table(config: &Config) {
    let rows = config
        .capabilities
        .values()
        .map(|c| {
            let mut rules: Vec<String> = c.allow_written().map(|r| format!("allow {r}")).collect();
            rules.extend(c.deny_written().map(|r| format!("deny {r}")));
            if c.mode == airlock_config::Mode::Exec {
                rules = vec![format!("exec: {}", c.commands.join(", "))];
            } else if let Some(note) = learning_note(c) {
                rules.insert(0, note);
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
