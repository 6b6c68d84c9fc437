//! `airlock doctor`: permissions, unlock mode, configuration, exposures in MCP
//! client configs, audit chain health, running servers. Exit 1 when something
//! needs action.

use std::process::ExitCode;

use airlock_config::Config;
use airlock_home::Home;
use airlock_vault::{LockedVault, UnlockMode};

use crate::cli::JsonFlag;
use crate::output;

#[derive(PartialEq, Eq, PartialOrd, Ord, Clone, Copy)]
enum Level {
    Ok,
    Note,
    /// Worth the owner's attention, but the owner's own choice: not a failure.
    Warn,
    Action,
}

struct Report {
    lines: Vec<(Level, String)>,
}

impl Report {
    fn push(&mut self, level: Level, msg: impl Into<String>) {
        self.lines.push((level, msg.into()));
    }
}

impl Level {
    /// The mark in the table and the `level` in JSON.
    fn as_str(self) -> &'static str {
        match self {
            Level::Ok => "ok",
            Level::Note => "note",
            Level::Warn => "warn",
            Level::Action => "fix",
        }
    }
}

/// Exit 1 when a line needs action. A missing home never gets here: `main`
/// refuses it with exit 2 first.
pub(crate) fn run(home: &Home, args: &JsonFlag) -> anyhow::Result<ExitCode> {
    let mut r = Report { lines: Vec::new() };

    // Permissions.
    let mut perm_problems = 0;
    if let Err(e) = home.ensure_dir() {
        r.push(Level::Action, e.to_string());
        perm_problems += 1;
    }
    for path in [
        home.vault_path(),
        home.master_key_path(),
        home.state_dir().join("tokens.json"),
        home.state_dir().join("audit-head"),
    ] {
        if let Some(e) = path
            .exists()
            .then(|| airlock_home::check_private_file(&path).err())
            .flatten()
        {
            r.push(Level::Action, e.to_string());
            perm_problems += 1;
        }
    }
    if perm_problems == 0 {
        r.push(
            Level::Ok,
            "home, vault and key files are private (0700/0600)",
        );
    }

    // The process's own memory (main.rs, harden_process).
    #[cfg(target_os = "linux")]
    match rustix::process::dumpable_behavior() {
        Ok(rustix::process::DumpableBehavior::NotDumpable) => r.push(
            Level::Ok,
            "process memory: no core dumps, no ptrace or /proc/PID/mem by other processes of yours",
        ),
        _ => r.push(
            Level::Action,
            "process memory: airlock could not make itself non-dumpable; a crash could write secrets to a core dump",
        ),
    }

    // Vault and unlock mode.
    let mut audit_key = None;
    let mut vault = None;
    match LockedVault::load(home) {
        Ok(locked) => {
            let mode = locked.mode();
            match mode {
                UnlockMode::KeyFile => r.push(
                    Level::Note,
                    "key-file mode: any program running as you (an agent with a shell, too) can read master.key; `airlock init --passphrase` or `--keyring` on a new home, and run agents as another user or in a container, closes that",
                ),
                UnlockMode::Passphrase => r.push(Level::Ok, "passphrase mode (Argon2id)"),
                UnlockMode::Keyring => r.push(Level::Ok, "keyring mode"),
            }
            if mode != UnlockMode::Passphrase
                || std::env::var_os(crate::input::PASSPHRASE_ENV).is_some()
            {
                match crate::unlock::open(home) {
                    Ok(v) => {
                        audit_key = Some(*v.audit_key());
                        vault = Some(v);
                    }
                    Err(e) => r.push(Level::Action, format!("the vault does not open: {e:#}")),
                }
            } else {
                r.push(
                    Level::Note,
                    "audit chain not checked: set AIRLOCK_PASSPHRASE to let doctor open the vault",
                );
            }
        }
        Err(e) => r.push(Level::Action, format!("{e}")),
    }

    // Configuration.
    match Config::load(home) {
        Ok(cfg) => {
            r.push(
                Level::Ok,
                format!(
                    "airlock.toml is valid: {} service(s), {} capability(ies)",
                    cfg.services.len(),
                    cfg.capabilities.len()
                ),
            );
            let stored: Vec<String> = LockedVault::load(home)
                .map(|v| {
                    cfg.referenced_secrets()
                        .keys()
                        .filter(|s| !v.contains(s))
                        .map(|s| (*s).to_string())
                        .collect()
                })
                .unwrap_or_default();
            for s in stored {
                r.push(Level::Action, format!("secret \"{s}\" is used by a service but not in the vault; `airlock secret set {s}`"));
            }
            for svc in cfg.services.values() {
                let host = svc.url.host_str().unwrap_or_default();
                let loopback = host == "localhost"
                    || host
                        .parse::<std::net::IpAddr>()
                        .is_ok_and(|ip| ip.is_loopback());
                if svc.url.scheme() == "http" && !loopback {
                    r.push(Level::Action, format!("service \"{}\" sends its credential over plain http to {host}; use https", svc.name));
                }
            }
            for cap in cfg.capabilities.values() {
                // Learning is loud: it allows what its deny rules leave.
                if let Some(note) = crate::cmd::cap::learning_note(cap) {
                    r.push(Level::Warn, format!("capability \"{}\": {note}", cap.name));
                    continue;
                }
                if cap.allow.is_empty() && cap.mode == airlock_config::Mode::Http {
                    r.push(
                        Level::Note,
                        format!(
                            "capability \"{}\" allows every path; narrow it with allow rules",
                            cap.name
                        ),
                    );
                }
                if cap.agents.is_none()
                    && cfg.server.default_access == airlock_config::DefaultAccess::Open
                {
                    r.push(
                        Level::Note,
                        format!(
                            "capability \"{}\" is open to every agent (no `agents` list)",
                            cap.name
                        ),
                    );
                }
            }
        }
        Err(e) => r.push(Level::Action, format!("{e}")),
    }

    // Confinement of what airlock runs for agents.
    confinement(home, &mut r);

    // Exposures in the MCP client configs of this user.
    match airlock_scan::Scanner::new() {
        Ok(scanner) => {
            let mut exposed = 0;
            for path in airlock_scan::cli::mcp_config_paths() {
                let Ok(bytes) = std::fs::read(&path) else {
                    continue;
                };
                let findings = scanner.scan_bytes(&path, &bytes);
                if !findings.is_empty() {
                    exposed += findings.len();
                    r.push(
                        Level::Action,
                        format!("{}: {} exposed secret(s); `airlock migrate {}` moves them into the vault", path.display(), findings.len(), path.display()),
                    );
                }
            }
            if exposed == 0 {
                r.push(Level::Ok, "no secrets in this user's MCP client configs");
            }
        }
        Err(e) => r.push(Level::Note, format!("MCP config check skipped: {e}")),
    }

    // Audit chain.
    if let Some(key) = audit_key {
        if home.audit_dir().exists() {
            match airlock_audit::verify_home(home, &key) {
                Ok(report) if report.is_ok() => r.push(Level::Ok, report.to_string()),
                Ok(report) => r.push(Level::Action, format!("{report}")),
                Err(e) => r.push(Level::Action, format!("audit log: {e}")),
            }
        } else {
            r.push(Level::Ok, "no audit records yet");
        }
    }

    // Team mode: the database, TLS, clock skew, sync lag (docs/team.md).
    {
        use crate::cmd::team::Check;
        for (check, msg) in crate::store::open(home).doctor(vault.as_ref()) {
            let level = match check {
                Check::Ok => Level::Ok,
                Check::Note => Level::Note,
                Check::Warn => Level::Warn,
                Check::Action => Level::Action,
            };
            r.push(level, msg);
        }
    }

    // Servers and the lock.
    let pids: std::collections::BTreeSet<u32> = airlock_broker::state::sessions(home)
        .map(|s| s.into_iter().map(|s| s.pid).collect())
        .unwrap_or_default();
    let running: Vec<u32> = pids
        .into_iter()
        .filter(|p| std::path::Path::new(&format!("/proc/{p}")).exists())
        .collect();
    if running.is_empty() {
        r.push(Level::Ok, "no airlock server with sessions is running");
    } else {
        r.push(
            Level::Ok,
            format!(
                "airlock servers with sessions running: pid {}",
                running
                    .iter()
                    .map(u32::to_string)
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        );
    }
    if airlock_broker::state::is_locked(home) {
        r.push(
            Level::Action,
            "the emergency lock is on: every request is refused until `airlock unlock`",
        );
    }

    let worst = r.lines.iter().map(|(l, _)| *l).max().unwrap_or(Level::Ok);
    if args.json {
        let lines: Vec<_> = r
            .lines
            .iter()
            .map(|(level, msg)| serde_json::json!({ "level": level.as_str(), "message": msg }))
            .collect();
        output::json(&serde_json::json!({
            "ok": worst != Level::Action,
            "lines": lines,
        }))?;
    } else {
        for (level, msg) in &r.lines {
            let mark = match level {
                Level::Ok => "ok  ",
                Level::Note => "note",
                Level::Warn => "WARN",
                Level::Action => "FIX ",
            };
            output::line(format_args!("{mark} {msg}"));
        }
    }
    Ok(if worst == Level::Action {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

/// Whether the kernel can confine exec children, and what each exec capability
/// gets: confined (writable places, network), unconfined by the owner's choice,
/// or refused (why).
fn confinement(home: &Home, r: &mut Report) {
    use airlock_config::{Mode, Network};
    use airlock_exec::{ExecPolicy, OwnerEnv, Support};
    let support = Support::probe();
    let exec_caps: Vec<_> = Config::load(home)
        .map(|cfg| {
            cfg.capabilities
                .values()
                .filter(|c| c.mode == Mode::Exec)
                .map(|c| (c.clone(), cfg.services.get(&c.service).cloned()))
                .collect()
        })
        .unwrap_or_default();
    match &support {
        Support::Landlock { .. } => {
            for line in support.describe() {
                r.push(Level::Ok, format!("kernel sandbox: {line}"));
            }
        }
        Support::Unavailable(why) => {
            let confined: Vec<&str> = exec_caps
                .iter()
                .filter(|(c, _)| c.confine)
                .map(|(c, _)| c.name.as_str())
                .collect();
            if confined.is_empty() {
                r.push(Level::Note, format!("kernel sandbox unavailable: {why}"));
            } else {
                r.push(
                    Level::Action,
                    format!(
                        "kernel sandbox unavailable: {why}; exec capabilities [{}] refuse to run (set `confine = false` on one to run it unconfined)",
                        confined.join(", ")
                    ),
                );
            }
        }
    }
    let owner = OwnerEnv::from_process();
    for (cap, service) in &exec_caps {
        let name = &cap.name;
        if !cap.confine {
            r.push(
                Level::Warn,
                format!(
                    "capability \"{name}\" runs its programs UNCONFINED (confine = false): they can read and write anything you can, this airlock home included"
                ),
            );
        }
        if cap.network == Network::Direct {
            r.push(
                Level::Warn,
                format!(
                    "capability \"{name}\" has network = \"direct\": its programs reach any host, with no egress policy"
                ),
            );
        }
        let Some(service) = service else { continue };
        match ExecPolicy::new(cap, service, &owner) {
            Ok(p) => {
                if let Some(sb) = p.sandbox() {
                    let writable: Vec<String> = sb
                        .writable()
                        .iter()
                        .map(|d| d.display().to_string())
                        .collect();
                    r.push(
                        Level::Ok,
                        format!(
                            "capability \"{name}\" is confined: writes [{}] and a private HOME; reads the system's read-only paths and its programs; network {}",
                            writable.join(", "),
                            sb.network().as_str()
                        ),
                    );
                }
            }
            Err(e) => r.push(Level::Action, e.to_string()),
        }
    }
}
