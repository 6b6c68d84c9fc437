//! `airlock logs` and `airlock audit verify`.

use std::io::IsTerminal;
use std::process::ExitCode;
use std::time::Duration;

use airlock_audit::{Filter, Follow};
use airlock_home::Home;

use crate::cli::{AuditCommand, LogsArgs};
use crate::{output, unlock};

pub(crate) fn logs(home: &Home, args: &LogsArgs) -> anyhow::Result<()> {
    let filter = filter(args)?;
    if args.team {
        return crate::store::open(home).logs_team(&filter, args.json, args.follow);
    }
    print_logs(home, args, filter)
}

/// The records `airlock logs` shows, from its flags.
fn filter(args: &LogsArgs) -> anyhow::Result<Filter> {
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
    Ok(filter)
}

fn print_logs(home: &Home, args: &LogsArgs, filter: Filter) -> anyhow::Result<()> {
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
        let mut follow = Follow::from_start(&dir, filter)?;
        let mut told = false;
        loop {
            for item in follow.poll()? {
                match item {
                    Ok(r) => print(&r),
                    Err(e) => output::warn(e),
                }
            }
            // After what is already there: say that the silence is waiting, not
            // a hang. Only for a person (stderr a terminal), never in a pipe.
            if !told {
                told = true;
                if std::io::stderr().is_terminal() {
                    output::note("waiting for new records… (Ctrl-C to stop)");
                }
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    } else {
        for item in airlock_audit::records(&dir, filter)? {
            print(&item?);
        }
    }
    Ok(())
}

pub(crate) fn run(home: &Home, cmd: &AuditCommand) -> anyhow::Result<ExitCode> {
    match cmd {
        AuditCommand::Verify(args) if args.team => {
            crate::store::open(home).verify_audit_team(args.json)
        }
        AuditCommand::Verify(args) => {
            let vault = unlock::open(home)?;
            let report = airlock_audit::verify_home(home, vault.audit_key())?;
            if args.json {
                output::json(&verify_json(&report))?;
            } else {
                output::line(&report);
            }
            Ok(if report.is_ok() {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            })
        }
    }
}

/// `audit verify --json`: the report's numbers, its verdict and the first bad
/// record, with the same sentences the text form prints.
fn verify_json(report: &airlock_audit::VerifyReport) -> serde_json::Value {
    use airlock_audit::Outcome;
    let outcome = match &report.outcome {
        Outcome::Intact => "intact",
        Outcome::TornTail { .. } => "torn_tail",
        Outcome::Broken(_) => "broken",
        _ => "other",
    };
    let mut v = serde_json::json!({
        "ok": report.is_ok(),
        "outcome": outcome,
        "records": report.records,
        "files": report.files,
        "last_seq": report.last_seq,
        "anchor_seq": report.anchor_seq,
        // Write-ahead decisions no outcome record completes (docs/audit.md):
        // visible, but not a chain failure.
        "without_outcome": report.without_outcome,
        "message": report.to_string(),
    });
    if let Outcome::TornTail { file, line } = &report.outcome {
        v["torn_tail"] = serde_json::json!({ "file": file, "line": line });
    }
    if let Some(p) = report.problem() {
        // The kind's name as written in the library (`BadMac` → "bad_mac").
        let debug = format!("{:?}", p.kind);
        let name = debug
            .split(|c: char| !c.is_alphanumeric())
            .next()
            .unwrap_or_default();
        let mut kind = String::new();
        for (i, c) in name.chars().enumerate() {
            if c.is_uppercase() && i > 0 {
                kind.push('_');
            }
            kind.push(c.to_ascii_lowercase());
        }
        v["problem"] = serde_json::json!({
            "file": p.file,
            "line": p.line,
            "seq": p.seq,
            "kind": kind,
            "message": p.to_string(),
        });
    }
    v
}
