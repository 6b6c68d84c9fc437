//! `airlock policy diff [OLD.toml] [NEW.toml]`: the authority diff of two
//! configurations — which agents gain or lose a capability, which (method, path)
//! classes become newly allowed or newly refused (computed from the rule
//! semantics by `airlock_policy::diff`, so reordering or rewriting rules into
//! equivalent ones shows nothing), and what changes in TTL, rate, approval,
//! reason, learning, exec programs, service URLs and authentication.
//!
//! Which two configurations:
//! * two files: OLD against NEW;
//! * one file: that file (old) against the home's `airlock.toml` (new);
//! * none: `airlock.toml` as committed in git `HEAD` (old) against the file on
//!   disk (new), when the home is in a git work tree. A running server holds no
//!   other copy: it reloads `airlock.toml` at its next request and logs this
//!   same diff on stderr when it does.
//!
//! Exit status as `diff`'s: 0 no authority change, 1 a change, 2 bad input.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use airlock_config::{Config, ConfigError};
use airlock_home::Home;
use anyhow::{Context as _, bail};
use clap::{Args, Subcommand};

use crate::output;

/// `airlock policy`.
#[derive(Debug, Subcommand)]
pub(crate) enum PolicyCommand {
    /// What a configuration change grants or takes away, per capability and
    /// agent, from the rule semantics (not the text). No argument: git HEAD's
    /// airlock.toml against the file on disk; one: that file against
    /// airlock.toml. Exit 0 no authority change, 1 changes, 2 bad input
    Diff(DiffArgs),
}

/// `airlock policy diff`.
#[derive(Debug, Args)]
pub(crate) struct DiffArgs {
    /// The old configuration (default: airlock.toml in git HEAD)
    pub(crate) old: Option<PathBuf>,
    /// The new configuration (default: the home's airlock.toml)
    pub(crate) new: Option<PathBuf>,
    /// One JSON object instead of the table
    #[arg(long)]
    pub(crate) json: bool,
}

pub(crate) fn run(home: &Home, cmd: &PolicyCommand) -> anyhow::Result<ExitCode> {
    match cmd {
        PolicyCommand::Diff(args) => diff(home, args),
    }
}

/// A configuration and what to call it.
struct Side {
    label: String,
    config: Config,
}

fn diff(home: &Home, args: &DiffArgs) -> anyhow::Result<ExitCode> {
    let (old, new) = match (&args.old, &args.new) {
        (Some(old), Some(new)) => (file(old)?, file(new)?),
        (Some(old), None) => {
            crate::require_home(home)?;
            (file(old)?, current(home)?)
        }
        (None, _) => {
            crate::require_home(home)?;
            (committed(home)?, current(home)?)
        }
    };
    let diff = airlock_config::authority_diff(&old.config, &new.config, jiff::Timestamp::now())
        .map_err(|e| anyhow::anyhow!("cannot compare {} with {}: {e}", old.label, new.label))?;
    let changed = !diff.is_empty();
    if args.json {
        let mut v = serde_json::to_value(&diff)?;
        v["old"] = old.label.clone().into();
        v["new"] = new.label.clone().into();
        v["changed"] = changed.into();
        output::json(&v)?;
    } else {
        let rows = diff
            .rows()
            .into_iter()
            .map(|r| vec![r.subject, r.change, r.detail, r.example.unwrap_or_default()])
            .collect();
        output::line(format!("old: {}\nnew: {}", old.label, new.label));
        output::table(
            &["WHAT", "CHANGE", "DETAIL", "EXAMPLE"],
            rows,
            "no authority change: both configurations grant exactly the same access",
        );
    }
    Ok(if changed {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

/// A file given on the command line.
fn file(path: &Path) -> anyhow::Result<Side> {
    let text = std::fs::read_to_string(path).with_context(|| {
        format!(
            "cannot read {}; pass the path of an airlock.toml",
            path.display()
        )
    })?;
    parse(path, &text)
}

fn parse(path: &Path, text: &str) -> anyhow::Result<Side> {
    let config = Config::parse(path, text).map_err(|e: ConfigError| anyhow::anyhow!(e))?;
    Ok(Side {
        label: path.display().to_string(),
        config,
    })
}

/// The home's `airlock.toml` (a missing file is an empty configuration, as for
/// every other command).
fn current(home: &Home) -> anyhow::Result<Side> {
    let path = home.config_path();
    let config = Config::load(home)?;
    Ok(Side {
        label: path.display().to_string(),
        config,
    })
}

/// `airlock.toml` as committed in git `HEAD`, when the home is in a git work tree.
fn committed(home: &Home) -> anyhow::Result<Side> {
    let path = home.config_path();
    let dir = path.parent().unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let usage = "pass two files: `airlock policy diff OLD.toml NEW.toml` (or one, to compare it with the current airlock.toml)";
    let inside = git(dir, &["rev-parse", "--is-inside-work-tree"]);
    if !matches!(&inside, Ok(out) if out.trim() == "true") {
        bail!(
            "no configuration to compare with: {} is not in a git work tree; {usage}",
            dir.display()
        );
    }
    let Ok(text) = git(dir, &["show", &format!("HEAD:./{name}")]) else {
        bail!(
            "no configuration to compare with: {} is not committed in git HEAD; {usage}",
            path.display()
        );
    };
    let label = PathBuf::from(format!("HEAD:{}", path.display()));
    parse(&label, &text)
}

/// Runs git in `dir`; its stdout when it succeeds.
fn git(dir: &Path, args: &[&str]) -> anyhow::Result<String> {
    let out = std::process::Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(args)
        .stdin(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .output()
        .context("cannot run git")?;
    if !out.status.success() {
        bail!("git {} failed", args.join(" "));
    }
    Ok(String::from_utf8(out.stdout)?)
}
