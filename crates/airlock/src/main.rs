//! The `airlock` command line: a thin layer over the library crates. It parses
//! arguments, reads secret input, calls the libraries and prints results; exit
//! codes are a contract (0 ok, 1 findings or failed check, 2 bad input).
#![forbid(unsafe_code)]

mod cli;
mod cmd;
mod input;
mod output;
mod store;
mod templates;
mod unlock;

use std::process::ExitCode;

use clap::Parser;

use cli::{Cli, Command};

fn main() -> ExitCode {
    harden_process();
    let cli = Cli::parse();
    match run(cli) {
        Ok(code) => code,
        // The reader of our output went away (`airlock list | head -1`): it has
        // what it wanted. Exit quietly, as ripgrep does.
        Err(e) if output::is_broken_pipe(&e) => ExitCode::SUCCESS,
        Err(e) => {
            // One line: the cause chain joined, with the remedy the library wrote.
            let msg = format!("{e:#}").replace('\n', " ");
            output::error(msg);
            ExitCode::from(2)
        }
    }
}

/// Once the vault is open, secrets and the master key live in this process's
/// memory: no core dump may carry them, and no other process of the same user
/// may read them through ptrace or `/proc/PID/mem` (a crash an agent provokes
/// with `kill -SEGV`, then `coredumpctl dump`, would otherwise hand it every
/// key). On Linux, not dumpable does both (a program airlock starts gets the
/// normal setting back at its `exec`; `airlock doctor` reports it); everywhere,
/// a core size limit of 0 keeps a crash from writing a core file (inherited by
/// the programs airlock starts).
fn harden_process() {
    #[cfg(unix)]
    {
        use rustix::process::{Resource, Rlimit, setrlimit};
        let none = Rlimit {
            current: Some(0),
            maximum: Some(0),
        };
        // Both only fail on a kernel without them: nothing more to do then.
        let _ = setrlimit(Resource::Core, none);
        #[cfg(target_os = "linux")]
        let _ =
            rustix::process::set_dumpable_behavior(rustix::process::DumpableBehavior::NotDumpable);
    }
}

/// Whether the command works on an existing home. `init`, `add`, `serve`, `secret
/// set`, `migrate` and `import` create one (and say so); `search`, `scan` and
/// `mcp-config` do not use one.
fn needs_home(command: &Command) -> bool {
    !matches!(
        command,
        Command::Init(_)
            | Command::Add(_)
            | Command::Serve(_)
            | Command::Secret(cli::SecretCommand::Set { .. })
            | Command::Team(cli::TeamCommand::Init { .. } | cli::TeamCommand::Join { .. })
            | Command::Migrate(_)
            | Command::Import(_)
            | Command::Search(_)
            | Command::Scan(_)
            | Command::McpConfig(_)
            | Command::Policy(_)
            | Command::Completions(_)
            | Command::Man
            | Command::Token(cli::TokenCommand::Attenuate { .. })
    )
}

/// A home exists once `init` (or a creating command) wrote its vault or its
/// configuration. A mistyped AIRLOCK_HOME must not look like an empty setup.
fn require_home(home: &airlock_home::Home) -> anyhow::Result<()> {
    if home.vault_path().exists() || home.config_path().exists() {
        return Ok(());
    }
    let from = if std::env::var_os(airlock_home::HOME_ENV).is_some_and(|v| !v.is_empty()) {
        format!(" (from {})", airlock_home::HOME_ENV)
    } else {
        String::new()
    };
    anyhow::bail!(
        "no airlock home at {}{from}; run `airlock init` to create one, or check {} if it names the wrong directory",
        home.root().display(),
        airlock_home::HOME_ENV
    )
}

fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    let home = airlock_home::Home::from_env()?;
    if needs_home(&cli.command) {
        require_home(&home)?;
    }
    match &cli.command {
        Command::Init(args) => cmd::init::run(&home, args)?,
        Command::Add(args) => cmd::service::add(&home, args)?,
        Command::Remove(args) => cmd::service::remove(&home, args)?,
        Command::List(args) => cmd::service::list(&home, args)?,
        Command::Cap(c) => cmd::cap::run(&home, c)?,
        Command::Learn(c) => cmd::learn::run(&home, c)?,
        Command::Policy(c) => return cmd::policy::run(&home, c),
        Command::Secret(c) => cmd::secret::run(&home, c)?,
        Command::Team(c) => cmd::team::run(&home, c)?,
        Command::Serve(args) => cmd::serve::run(&home, args)?,
        Command::Proxy(args) => cmd::serve::proxy(&home, args)?,
        Command::Token(c) => cmd::token::run(&home, c)?,
        Command::Logs(args) => cmd::audit::logs(&home, args)?,
        Command::Audit(c) => return cmd::audit::run(&home, c),
        Command::McpConfig(args) => cmd::mcp_config::run(&home, args)?,
        Command::Sessions(args) => cmd::sessions::list(&home, args)?,
        Command::Revoke(args) => cmd::sessions::revoke(&home, args)?,
        Command::Approve(args) => cmd::sessions::approve(&home, args)?,
        Command::Deny { id } => cmd::sessions::deny(&home, id)?,
        Command::Lock => cmd::sessions::lock(&home)?,
        Command::Unlock => cmd::sessions::unlock(&home)?,
        Command::Incident(args) => cmd::incident::run(&home, args)?,
        Command::Search(args) => cmd::service::search(args)?,
        Command::Migrate(args) => cmd::migrate::run(&home, args)?,
        Command::Doctor(args) => return cmd::doctor::run(&home, args),
        Command::Import(args) => cmd::import::run(&home, args)?,
        Command::Run(args) => return cmd::run::run(&home, args),
        Command::Wrap(args) => return cmd::wrap::run(&home, args),
        Command::Ui(args) => cmd::ui::run(&home, args)?,
        Command::Completions(args) => cmd::ui::completions(args)?,
        Command::Man => cmd::ui::man()?,
        Command::Scan(args) => {
            let mut out = std::io::stdout().lock();
            let code = airlock_scan::cli::run(args, &mut out)?;
            return Ok(ExitCode::from(code));
        }
    }
    Ok(ExitCode::SUCCESS)
}
