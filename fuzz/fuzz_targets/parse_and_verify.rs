//! Arbitrary bytes as an audit log (and, after the first NUL byte, as the anchor):
//! the line parser, the verifier, the reader, the follower and the appender's
//! recovery path must never panic, whatever the files hold, and must agree:
//! a parsed record re-parses from its JSON to the same record; `verify` gives the
//! same report twice; on a log `verify` calls intact, the reader and the follower
//! return exactly the records it counted, in order, ending at its `last_seq`; and
//! after the appender's recovery and one append to an intact (or torn-tailed) log,
//! `verify` calls the log intact, one record further for an intact one.
#![no_main]

use std::sync::atomic::AtomicBool;
use std::time::Duration;

use airlock_audit::{
    AuditLog, Event, Filter, Follow, FsyncPolicy, Kind, Options, Outcome, Record, records, verify,
};
use libfuzzer_sys::fuzz_target;

/// The key the seeds were written with, so seeds start out verifying.
const KEY: [u8; 32] = [7; 32];

fuzz_target!(|data: &[u8]| {
    for line in data.split(|&b| b == b'\n') {
        if let Ok(record) = Record::parse_line(line) {
            let _ = record.human().to_string();
            let json = record.to_json();
            match Record::parse_line(json.as_bytes()) {
                Ok(again) => assert_eq!(again, record, "a record re-parsed from its JSON differs"),
                Err(e) => panic!("a parsed record's own JSON does not parse: {e}\n{json}"),
            }
        }
    }

    let (log, anchor) = match data.iter().position(|&b| b == 0) {
        Some(i) => (&data[..i], Some(&data[i + 1..])),
        None => (data, None),
    };
    let Ok(dir) = tempfile::tempdir() else { return };
    let audit = dir.path().join("audit");
    let state = dir.path().join("state");
    let mut private = std::fs::DirBuilder::new();
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut private, 0o700);
    if private.create(&audit).is_err() || private.create(&state).is_err() {
        return;
    }
    let _ = std::fs::write(audit.join("audit-000001.jsonl"), log);
    if let Some(anchor) = anchor {
        let _ = std::fs::write(state.join("audit-head"), anchor);
    }

    let before = verify(&audit, &state, &KEY).ok();
    if let Some(report) = &before {
        let _ = report.to_string();
        let again = verify(&audit, &state, &KEY).expect("verify succeeded once, then failed");
        assert_eq!(
            again.to_string(),
            report.to_string(),
            "verify is not deterministic"
        );
    }
    let intact = before.as_ref().filter(|r| r.outcome == Outcome::Intact);
    let mut read = Vec::new();
    if let Ok(iter) = records(&audit, Filter::all()) {
        for item in iter.take(10_000) {
            if let Ok(r) = &item {
                read.push(r.seq);
            }
            let _ = item
                .map(|r| r.human().to_string())
                .map_err(|e| e.to_string());
        }
    } else {
        assert!(
            intact.is_none(),
            "verify calls the log intact but the reader cannot open it"
        );
    }
    if let Some(report) = intact {
        let want: Vec<u64> = (1..=report.records).collect();
        assert_eq!(
            read, want,
            "the reader disagrees with verify on an intact log"
        );
        assert_eq!(report.last_seq, read.last().copied(), "last_seq");
    }
    if let Ok(mut follow) = Follow::from_start(&audit, Filter::all()) {
        let polled = follow.poll();
        if let Some(report) = intact {
            let polled = polled.expect("follow.poll on an intact log");
            let seqs: Vec<u64> = polled
                .iter()
                .map(|r| r.as_ref().expect("a record of an intact log").seq)
                .collect();
            assert_eq!(
                seqs.len() as u64,
                report.records,
                "the follower disagrees with verify on an intact log"
            );
        }
        let _ = follow.run(Duration::ZERO, &AtomicBool::new(true), |_| {
            std::ops::ControlFlow::Continue(())
        });
    }
    // The appender's recovery (torn tails, broken anchors) on the same garbage, then
    // the verifier again on what it left.
    if data.first().is_some_and(|b| b & 1 == 1) {
        let batch = FsyncPolicy::Batch {
            max_records: 1_000,
            max_delay: Duration::from_secs(60),
        };
        let opts = Options::default()
            .fsync(batch)
            .lock_timeout(Duration::from_millis(100));
        let mut appended = false;
        if let Ok(mut log) = AuditLog::open(&audit, &state, &KEY, opts) {
            appended =
                log.append(&Event::new(Kind::Request).path("/fuzz")).is_ok() && log.flush().is_ok();
        }
        let after = verify(&audit, &state, &KEY);
        if let Ok(report) = &after {
            let _ = report.to_string();
        }
        // Recovery keeps a good log good: an intact or torn-tailed log, appended to,
        // verifies intact.
        let recoverable = before
            .as_ref()
            .is_some_and(|r| matches!(r.outcome, Outcome::Intact | Outcome::TornTail { .. }));
        if recoverable && appended {
            let after = after.expect("verify after an append");
            assert_eq!(
                after.outcome,
                Outcome::Intact,
                "an append to a good log left it {after}"
            );
            if let Some(b) = intact {
                assert_eq!(after.records, b.records + 1, "one append, one more record");
            }
        }
    }
});
