//! `airlock logs` and `airlock audit verify`.

use std::ops::ControlFlow;
use std::process::ExitCode;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use airlock_audit::{Filter, Follow};
use airlock_home::Home;

use crate::cli::{AuditCommand, LogsArgs};
use crate::{output, unlock};

pub(crate) fn logs(home: &Home, args: &LogsArgs) -> anyhow::Result<()> {
    let mut filter = Filter::all();
    if let Some(c) = &args.capability {
        filter = filter.capability(c);
    }
    if let Some(a) = &args.agent {
        filter = filter.agent(a);
    }
    if let Some(since) = &args.since {
        let d = airlock_config::parse_duration(since).map_err(anyhow::Error::msg)?;
        let d = jiff::SignedDuration::try_from(d)?;
        filter = filter.since(jiff::Timestamp::now().checked_sub(d)?);
    }
    let dir = home.audit_dir();
    if !dir.exists() {
        if !args.follow {
            output::note(
                "no audit records yet: they appear once `airlock serve` handles a request",
            );
            return Ok(());
        }
        airlock_home::ensure_private_dir(&dir)?;
    }
    let print = |r: &airlock_audit::Record| {
        if args.json {
            output::line(r.to_json());
        } else {
            output::line(r.human());
        }
    };
    if args.follow {
        let stop = AtomicBool::new(false);
        Follow::from_start(&dir, filter)?.run(Duration::from_millis(200), &stop, |item| {
            match item {
                Ok(r) => print(&r),
                Err(e) => output::warn(e),
            }
            ControlFlow::Continue(())
        })?;
    } else {
        for item in airlock_audit::records(&dir, filter)? {
            print(&item?);
        }
    }
    Ok(())
}

pub(crate) fn run(home: &Home, cmd: &AuditCommand) -> anyhow::Result<ExitCode> {
    match cmd {
        AuditCommand::Verify => {
            let vault = unlock::open(home)?;
            let report = airlock_audit::verify_home(home, vault.audit_key())?;
            output::line(&report);
            Ok(if report.is_ok() {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            })
        }
    }
}
