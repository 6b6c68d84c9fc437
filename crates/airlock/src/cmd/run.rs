//! `airlock run [--cap C]... [--env-file F]... [--no-mask] [--proxy] [--confine]
//! -- CMD ARGS...`: the owner's command with secrets in its environment (like
//! `op run`), its output scrubbed of them; with `--proxy`, placeholders in their
//! place and an egress proxy of its own (`run_proxy`). With `--confine` alone,
//! each capability's `inject` decides: placeholders (and the proxy) for those
//! with `inject = "placeholder"`, the default; the secret for `inject = "env"`.
//!
//! The owner chooses the command, so there is no allow-list and no agent policy
//! here: the environment is airlock's own (minus `AIRLOCK_PASSPHRASE`) with every
//! value that is exactly `airlock://NAME` replaced by the secret, then the env
//! files' variables, then each `--cap`'s `env` (its `{{secret}}` filled in).
//! The helpers that build that environment are shared with `airlock wrap`.

use std::cell::RefCell;
use std::ffi::{OsStr, OsString};
use std::io::IsTerminal as _;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use airlock_audit::{AuditLog, Decision, Event, Kind};
use airlock_config::{Config, Mode};
use airlock_exec::confine::Protected;
use airlock_exec::reference::{self, ResolvedEnv};
use airlock_exec::{
    ExecError, GitCredential, Launch, Limits, Network, PrivateHome, Sandbox, Scrubber, Stdin,
    Support, find_program,
};
use airlock_home::Home;
use airlock_vault::{SecretBytes, Vault};
use anyhow::{Context as _, bail};
use secrecy::ExposeSecret as _;
use tokio::signal::unix::{SignalKind, signal};
use zeroize::Zeroizing;

use crate::cli::RunArgs;
use crate::cmd::run_proxy::{self, Plan};
use crate::{input, output, unlock};

/// The placeholder for a capability's secret in its `env` values.
const PLACEHOLDER: &str = "{{secret}}";

/// Exit status when the command cannot be found (as `env`, `nohup`, shells).
const NOT_FOUND: u8 = 127;
/// Exit status when the command exists but cannot be run.
const CANNOT_RUN: u8 = 126;

/// The child's environment, and the secrets it holds (by name, for scrubbing).
pub(crate) struct ChildEnv {
    vars: Vec<(OsString, Zeroizing<Vec<u8>>)>,
    secrets: Vec<(String, SecretBytes)>,
    /// git's askpass helper, in its own private directory (0700, removed with
    /// the child), for a `--cap` whose `env` puts `{{secret}}` in
    /// `GH_TOKEN`/`GITHUB_TOKEN` (the last such capability wins).
    git: Option<(GitCredential, PrivateHome, PathBuf)>,
}

impl ChildEnv {
    /// The names of the secrets the child gets, each once.
    pub(crate) fn secret_names(&self) -> Vec<String> {
        self.secrets.iter().map(|(n, _)| n.clone()).collect()
    }

    /// A scrubber for every secret the child holds, in every form.
    pub(crate) fn scrubber(&self) -> anyhow::Result<Scrubber> {
        Scrubber::new(
            self.secrets
                .iter()
                .map(|(n, v)| (n.as_str(), v.expose_secret())),
        )
        .context("cannot prepare output scrubbing")
    }

    /// Puts the variables on `launch`; with `mask`, registers every secret for
    /// scrubbing too. With a git credential, git gets the askpass helper the
    /// MCP `exec` tool gives it (its private directory goes with the launch and
    /// is removed after the child); `HOME` is left alone.
    pub(crate) fn apply(mut self, mut launch: Launch, mask: bool) -> Launch {
        if let Some((cred, dir, askpass)) = self.git.take() {
            self.set_git_askpass(&cred, &askpass);
            launch = launch.private_home(dir);
        }
        for (k, v) in self.vars {
            launch = launch.env_bytes(k, v);
        }
        if mask {
            for (name, value) in self.secrets {
                launch = launch.scrub_secret(&name, value);
            }
        }
        launch
    }

    /// `GIT_ASKPASS` = `askpass`, and, for each of the credential's origins,
    /// `credential.<origin>.helper` reset on git's command line (appended to
    /// any `GIT_CONFIG_COUNT` the owner set): the owner's own credential
    /// helpers neither answer for that origin nor store the token (`store`
    /// would write it to `~/.git-credentials`).
    fn set_git_askpass(&mut self, cred: &GitCredential, askpass: &std::path::Path) {
        let value = |s: &[u8]| Zeroizing::new(s.to_vec());
        let start = self
            .vars
            .iter()
            .rev()
            .find(|(k, _)| k == "GIT_CONFIG_COUNT")
            .and_then(|(_, v)| std::str::from_utf8(v).ok()?.trim().parse::<usize>().ok())
            .unwrap_or(0);
        let mut set: Vec<(OsString, Zeroizing<Vec<u8>>)> = vec![(
            "GIT_ASKPASS".into(),
            value(askpass.as_os_str().as_encoded_bytes()),
        )];
        for (i, origin) in cred.origins.iter().enumerate() {
            let n = start + i;
            set.push((
                format!("GIT_CONFIG_KEY_{n}").into(),
                value(format!("credential.{origin}.helper").as_bytes()),
            ));
            set.push((format!("GIT_CONFIG_VALUE_{n}").into(), value(b"")));
        }
        set.push((
            "GIT_CONFIG_COUNT".into(),
            value((start + cred.origins.len()).to_string().as_bytes()),
        ));
        let keys: Vec<OsString> = set.iter().map(|(k, _)| k.clone()).collect();
        self.vars.retain(|(k, _)| !keys.contains(k));
        self.vars.extend(set);
    }

    fn add_secret(&mut self, name: String, value: SecretBytes) {
        if !self.secrets.iter().any(|(n, _)| *n == name) {
            self.secrets.push((name, value));
        }
    }
}

/// Builds the child's environment: airlock's own variables (without
/// `AIRLOCK_PASSPHRASE`) with `airlock://NAME` values resolved, then `extra`
/// (env files, `--env`), then each capability's `env`. With a proxy `plan`,
/// a secret that one of its services uses becomes that service's placeholder.
pub(crate) fn child_env(
    home: &Home,
    vault: &Vault,
    caps: &[String],
    plan: Option<&mut Plan>,
    extra: impl FnOnce(reference::SecretLookup<'_>) -> anyhow::Result<ResolvedEnv>,
) -> anyhow::Result<ChildEnv> {
    let plan = plan.map(RefCell::new);
    let failed: RefCell<Option<anyhow::Error>> = RefCell::new(None);
    let stood_in: RefCell<Vec<String>> = RefCell::new(Vec::new());
    let lookup = |name: &str| {
        if let Some(plan) = &plan {
            match plan.borrow_mut().for_secret(name) {
                Ok(Some(placeholder)) => {
                    stood_in.borrow_mut().push(name.to_string());
                    return Some(SecretBytes::from(placeholder.into_bytes()));
                }
                Ok(None) => {}
                Err(e) => {
                    failed.borrow_mut().get_or_insert(e);
                    return None;
                }
            }
        }
        vault.get(name).ok()
    };
    let own = std::env::vars_os().filter(|(k, _)| k != input::PASSPHRASE_ENV);
    let resolved = reference::resolve_environment(own, &lookup)
        .map_err(anyhow::Error::from)
        .and_then(|mut r| {
            r.extend(extra(&lookup)?);
            Ok(r)
        });
    if let Some(e) = failed.take() {
        return Err(e);
    }
    let (vars, mut secrets) = resolved?.into_parts();
    // A placeholder is no secret: nothing to scrub, nothing to report as held.
    let stood_in = stood_in.into_inner();
    secrets.retain(|(n, _)| !stood_in.contains(n));
    let mut plan = plan.map(RefCell::into_inner);
    let mut env = ChildEnv {
        vars,
        secrets,
        git: None,
    };
    if caps.is_empty() {
        return Ok(env);
    }
    let config = Config::load(home)?;
    // `airlock incident` locks capabilities until `airlock unlock`; a run is
    // held to them as every server's requests are.
    let locked = airlock_broker::state::revocations(home)?
        .locked
        .capabilities;
    for name in caps {
        let Some(cap) = config.capability(name) else {
            bail!("unknown capability \"{name}\"; see `airlock cap list`");
        };
        if let Some(at) = locked.get(name) {
            bail!(
                "capability \"{name}\" was locked by its owner's incident response at {at}; run `airlock unlock` to release it"
            );
        }
        if cap.mode != Mode::Exec {
            bail!(
                "capability \"{name}\" is not mode = \"exec\": --cap takes an exec capability, whose `env` says which variables get the secret"
            );
        }
        let service = config.services.get(&cap.service).with_context(|| {
            format!(
                "capability \"{name}\": service \"{}\" is not configured",
                cap.service
            )
        })?;
        let secret = match (service.auth.secrets().first(), plan.as_deref_mut()) {
            (Some(_), Some(plan)) if plan.stands_in_for(name) => {
                let placeholder = plan.for_capability(name)?;
                Some((None, SecretBytes::from(placeholder.into_bytes())))
            }
            (Some(s), _) => Some((
                Some(s.to_string()),
                vault
                    .get(s)
                    .with_context(|| format!("capability \"{name}\" needs secret \"{s}\""))?,
            )),
            (None, _) => None,
        };
        for (key, template) in &cap.env {
            let value = secret
                .as_ref()
                .map(|(_, v)| v.expose_secret())
                .unwrap_or_default();
            let mut out = Zeroizing::new(Vec::new());
            for (i, part) in template.split(PLACEHOLDER).enumerate() {
                if i > 0 {
                    out.extend_from_slice(value);
                }
                out.extend_from_slice(part.as_bytes());
            }
            env.vars.push((key.into(), out));
        }
        if let Some((n, v)) = secret {
            if let Some(n) = n {
                env.add_secret(n, v);
            }
            if let Some(cred) = GitCredential::for_capability_env(&service.url, &cap.env) {
                let dir = PrivateHome::create(None)
                    .context("cannot create the directory for git's askpass helper")?;
                let askpass = dir
                    .write_askpass(&cred)
                    .context("cannot write git's askpass helper")?;
                env.git = Some((cred, dir, askpass));
            }
        }
    }
    Ok(env)
}

/// Opens the home for a command that runs a child with secrets: the vault must
/// exist and be unlocked, and the owner's emergency lock must be off.
pub(crate) fn open(home: &Home) -> anyhow::Result<(Vault, AuditLog)> {
    if airlock_broker::state::is_locked(home) {
        bail!("airlock is locked by its owner; run `airlock unlock` first");
    }
    // A crash must not leave the unlocked data key in a core file.
    disable_core_dumps();
    let vault = unlock::open(home)?;
    let audit = super::open_audit(home, &vault)?;
    Ok((vault, audit))
}

/// The program to run: an absolute or relative path as given, or a bare name
/// found in `path`; a name that is not found is left for the launch to report
/// (exit 127).
pub(crate) fn resolve_program(cmd: &OsStr, path: &OsStr) -> PathBuf {
    if cmd.as_encoded_bytes().contains(&b'/') {
        return PathBuf::from(cmd);
    }
    cmd.to_str()
        .and_then(|name| find_program(name, path))
        .unwrap_or_else(|| PathBuf::from(cmd))
}

/// The exit status and message for a child that could not be started.
pub(crate) fn spawn_failure(err: &ExecError) -> (u8, String) {
    match err {
        ExecError::Spawn { source, .. } if source.kind() == std::io::ErrorKind::NotFound => {
            (NOT_FOUND, err.to_string())
        }
        ExecError::Spawn { .. } => (CANNOT_RUN, err.to_string()),
        _ => (2, err.to_string()),
    }
}

/// The sandbox for `run --confine` / `wrap --confine`: writable are the current
/// directory, each `--cap` capability's `workdirs` and a fresh private HOME
/// (returned; `HOME` and `TMPDIR` point into it); readable and runnable the
/// system's read-only paths and the program's own directory; no network unless
/// a `--cap` says `network = "direct"`. Refused, with the reason, when the kernel
/// cannot confine or a writable place overlaps the airlock home or contains the
/// owner's home.
pub(crate) fn confinement(
    home: &Home,
    caps: &[String],
    program: &std::path::Path,
) -> anyhow::Result<(Sandbox, ConfinedHome)> {
    if let Support::Unavailable(reason) = Support::probe() {
        bail!("--confine: {reason}; nothing was run (drop --confine to run it unconfined)");
    }
    let owner_home = std::env::var_os("HOME").map(PathBuf::from);
    let protected = Protected::new(Some(home.root()), owner_home.as_deref());
    let mut network = Network::None;
    let mut git = None;
    let mut writable: Vec<(String, PathBuf)> = Vec::new();
    let cwd = std::env::current_dir().context("--confine: cannot read the current directory")?;
    writable.push(("the current directory".into(), cwd));
    if !caps.is_empty() {
        let config = Config::load(home)?;
        for name in caps {
            let Some(cap) = config.capability(name) else {
                bail!("unknown capability \"{name}\"; see `airlock cap list`");
            };
            if cap.network == Network::Direct {
                network = Network::Direct;
            }
            // As in `child_env`: the askpass helper when the service has a secret.
            let service = config.services.get(&cap.service);
            if let Some(service) = service.filter(|s| !s.auth.secrets().is_empty())
                && let Some(cred) = GitCredential::for_capability_env(&service.url, &cap.env)
            {
                git = Some(cred);
            }
            for w in &cap.workdirs {
                let expanded = airlock_exec::expand_workdir(w, owner_home.as_deref());
                writable.push((
                    format!("workdir \"{w}\" of capability \"{name}\""),
                    expanded,
                ));
            }
        }
    }
    let mut sandbox = Sandbox::new(network, protected);
    for (what, dir) in writable {
        let dir = dir
            .canonicalize()
            .with_context(|| format!("--confine: {what} ({})", dir.display()))?;
        sandbox.allow_write(&dir).map_err(|e| {
            anyhow::anyhow!(
                "--confine: {what} ({}) cannot be writable in the sandbox: {e}",
                dir.display()
            )
        })?;
    }
    if program.is_absolute() {
        sandbox.allow_program(program).map_err(|e| {
            anyhow::anyhow!(
                "--confine: the program {} cannot be run confined: {e}",
                program.display()
            )
        })?;
    }
    let private = PrivateHome::create(None).context("--confine: cannot create the private HOME")?;
    let askpass = match &git {
        Some(cred) => Some(
            private
                .write_askpass(cred)
                .context("--confine: cannot write git's askpass helper")?,
        ),
        None => None,
    };
    Ok((
        sandbox,
        ConfinedHome {
            home: private,
            askpass,
        },
    ))
}

/// The private HOME of a confined child, with git's askpass helper in it when a
/// `--cap` gives git a token (the sandbox lets the child run what is there,
/// not what is in another temporary directory).
pub(crate) struct ConfinedHome {
    home: PrivateHome,
    askpass: Option<PathBuf>,
}

/// Puts `launch` in the sandbox with its private HOME (`HOME`, `TMPDIR`). It
/// replaces the launch's askpass directory, if any ([`ChildEnv::apply`]):
/// `GIT_ASKPASS` then names the copy in the private HOME.
pub(crate) fn confine_launch(launch: Launch, sandbox: Sandbox, private: ConfinedHome) -> Launch {
    let mut launch = launch
        .env("HOME", private.home.path())
        .env("TMPDIR", private.home.tmp());
    if let Some(askpass) = &private.askpass {
        launch = launch.env("GIT_ASKPASS", askpass);
    }
    launch.confine(sandbox).private_home(private.home)
}

/// The `PATH` the child will search for a bare command name.
pub(crate) fn child_path() -> OsString {
    std::env::var_os("PATH").unwrap_or_else(|| "/usr/local/bin:/usr/bin:/bin".into())
}

pub(crate) fn run(home: &Home, args: &RunArgs) -> anyhow::Result<ExitCode> {
    let Some((cmd, cmd_args)) = args.command.split_first() else {
        bail!("no command given; usage: airlock run [--cap C]... [--env-file F] -- CMD ARGS...");
    };
    let (vault, mut audit) = open(home)?;
    let program = resolve_program(cmd, &child_path());
    let mut plan = match (args.proxy, args.confine) {
        (true, _) => Some(Plan::new(home, &args.caps, &program)?),
        // Confined, the child's environment follows each capability's
        // `inject`: placeholders (and this run's proxy) for those that say so.
        (false, true) => Plan::for_confine(home, &args.caps)?,
        (false, false) => None,
    };
    let caps = match &plan {
        Some(p) => p.env_caps().to_vec(),
        None => args.caps.clone(),
    };
    let env = child_env(home, &vault, &caps, plan.as_mut(), |lookup| {
        let mut all = ResolvedEnv::default();
        for file in &args.env_file {
            all.extend(reference::resolve_env_file(file, lookup)?);
        }
        Ok(all)
    })?;
    if let Some(plan) = &plan
        && !plan.real_secrets().is_empty()
    {
        output::note(format_args!(
            "airlock run --proxy: no service uses secret(s) [{}]: the program gets them as themselves (the proxy can stand in only for a service's key)",
            plan.real_secrets().join(", ")
        ));
    }
    let secrets = env.secret_names();
    let confinement = if args.confine {
        Some(confinement(home, &caps, &program)?)
    } else {
        None
    };
    if args.no_mask {
        output::warn(
            "--no-mask: the command's output is not scrubbed; secrets it prints appear as is",
        );
    }
    let interactive = std::io::stdin().is_terminal();
    let mut launch = Launch::new(&program)
        .arg0(cmd)
        .args(cmd_args)
        .stdin(Stdin::Inherit)
        .limits(Limits::unlimited())
        // On a terminal the child stays in the terminal's foreground group: it
        // can read the terminal, and Ctrl-C reaches it directly.
        .own_process_group(!interactive);
    launch = env.apply(launch, !args.no_mask);
    if std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none() {
        // The child writes to a pipe (airlock scrubs it), so tell colour-aware
        // programs that the output does end on a terminal.
        for var in ["CLICOLOR_FORCE", "FORCE_COLOR"] {
            if std::env::var_os(var).is_none() {
                launch = launch.env(var, "1");
            }
        }
    }

    // Write-ahead (DESIGN §7.5): the run is on record (durable: the log
    // fsyncs every record here) before the child starts with a secret or a
    // placeholder; if it cannot be written, nothing runs. The outcome follows.
    let detail = format!(
        "airlock run{}; secrets: [{}]; capabilities: [{}]; env files: {}; output {}",
        if args.confine { " --confine" } else { "" },
        secrets.join(", "),
        caps.join(", "),
        args.env_file.len(),
        if args.no_mask {
            "not scrubbed (--no-mask)"
        } else {
            "scrubbed"
        }
    );
    let mut decision = Event::new(Kind::Exec)
        .agent(airlock_broker::OWNER, true)
        .method("run")
        .path(&program.display().to_string())
        .decision(Decision::Allow)
        .detail(&detail);
    if let [cap] = caps.as_slice() {
        decision = decision.capability(cap);
    }
    let seq = audit
        .append(&decision)
        .context("the run could not be audited, so nothing was run")?;

    let started = Instant::now();
    let child = |launch: Launch| async move {
        Ok(match launch.spawn(&Scrubber::empty()) {
            Ok(running) => {
                let stop = forward_signals(running.signaller(), interactive)?;
                let mut out = tokio::io::stdout();
                let mut err = tokio::io::stderr();
                let r = running.stream(&mut out, &mut err).await;
                stop.abort();
                r
            }
            Err(e) => Err(e),
        })
    };
    let (result, proxied) = run_proxy::drive(home, vault, plan, launch, confinement, child)?;

    let proxy_detail = proxied.map_or_else(String::new, |s| {
        s.detail(if args.proxy {
            "--proxy"
        } else {
            "inject = placeholder"
        })
    });
    let mut event = decision
        .outcome_of(seq)
        .duration(started.elapsed())
        .detail(&format!("{detail}{proxy_detail}"));
    let code = match result {
        Ok((exit, _, _)) => {
            let code = exit.exit_code();
            event = event.status(u16::try_from(code).unwrap_or(u16::MAX));
            u8::try_from(code).unwrap_or(1)
        }
        Err(e) => {
            let (code, msg) = spawn_failure(&e);
            event = event.status(u16::from(code));
            output::error(msg);
            code
        }
    };
    if let Err(e) = audit.append(&event) {
        output::warn(format_args!("the run's outcome could not be audited: {e}"));
    }
    Ok(ExitCode::from(code))
}

/// Forwards `SIGINT`, `SIGTERM`, `SIGHUP` and `SIGQUIT` to the child until the
/// returned task is aborted. When the child shares the terminal's foreground
/// group (`interactive`), the terminal already delivers Ctrl-C and Ctrl-\ to it:
/// those are only kept from killing airlock, not sent a second time.
pub(crate) fn forward_signals(
    signaller: airlock_exec::Signaller,
    interactive: bool,
) -> anyhow::Result<tokio::task::JoinHandle<()>> {
    let mut int = signal(SignalKind::interrupt()).context("cannot handle SIGINT")?;
    let mut term = signal(SignalKind::terminate()).context("cannot handle SIGTERM")?;
    let mut hup = signal(SignalKind::hangup()).context("cannot handle SIGHUP")?;
    let mut quit = signal(SignalKind::quit()).context("cannot handle SIGQUIT")?;
    Ok(tokio::spawn(async move {
        loop {
            let (kind, from_terminal) = tokio::select! {
                _ = int.recv() => (SignalKind::interrupt(), true),
                _ = quit.recv() => (SignalKind::quit(), true),
                _ = term.recv() => (SignalKind::terminate(), false),
                _ = hup.recv() => (SignalKind::hangup(), false),
            };
            if !(interactive && from_terminal) {
                signaller.signal(kind.as_raw_value());
            }
        }
    }))
}

#[cfg(unix)]
fn disable_core_dumps() {
    use rustix::process::{Resource, Rlimit, setrlimit};
    let zero = Rlimit {
        current: Some(0),
        maximum: Some(0),
    };
    let _ = setrlimit(Resource::Core, zero);
}
