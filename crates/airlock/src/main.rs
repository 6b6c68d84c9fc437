//! The `airlock` command line: a thin layer over the library crates. It parses
//! arguments, reads secret input, calls the libraries and prints results; exit
//! codes are a contract (0 ok, 1 findings or failed check, 2 bad input).
#![forbid(unsafe_code)]

mod cli;
mod cmd;
mod input;
mod output;
mod templates;
mod unlock;

use std::process::ExitCode;

use clap::Parser;

use cli::{Cli, Command};

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(code) => code,
        Err(e) => {
            // One line: the cause chain joined, with the remedy the library wrote.
            let msg = format!("{e:#}").replace('\n', " ");
            output::error(msg);
            ExitCode::from(2)
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    let home = airlock_home::Home::from_env()?;
    match &cli.command {
        Command::Init(args) => cmd::init::run(&home, args)?,
        Command::Add(args) => cmd::service::add(&home, args)?,
        Command::Remove(args) => cmd::service::remove(&home, args)?,
        Command::List(args) => cmd::service::list(&home, args)?,
        Command::Cap(c) => cmd::cap::run(&home, c)?,
        Command::Secret(c) => cmd::secret::run(&home, c)?,
        Command::Serve(args) => cmd::serve::run(&home, args)?,
        Command::Token(c) => cmd::token::run(&home, c)?,
        Command::Logs(args) => cmd::audit::logs(&home, args)?,
        Command::Audit(c) => return cmd::audit::run(&home, c),
        Command::McpConfig(args) => cmd::mcp_config::run(args)?,
        Command::Sessions(args) => cmd::sessions::list(&home, args)?,
        Command::Revoke(args) => cmd::sessions::revoke(&home, args)?,
        Command::Approve(args) => cmd::sessions::approve(&home, args)?,
        Command::Deny { id } => cmd::sessions::deny(&home, id)?,
        Command::Lock => cmd::sessions::lock(&home)?,
        Command::Unlock => cmd::sessions::unlock(&home)?,
        Command::Search(args) => cmd::service::search(args)?,
        Command::Migrate(args) => cmd::migrate::run(&home, args)?,
        Command::Doctor => return cmd::doctor::run(&home),
        Command::Import(args) => cmd::import::run(&home, args)?,
        Command::Run(args) => return cmd::run::run(&home, args),
        Command::Wrap(args) => return cmd::wrap::run(&home, args),
        Command::Scan(args) => {
            let mut out = std::io::stdout().lock();
            let code = airlock_scan::cli::run(args, &mut out)?;
            return Ok(ExitCode::from(code));
        }
    }
    Ok(ExitCode::SUCCESS)
}
