//! Arbitrary bytes as an audit log (and, after the first NUL byte, as the anchor):
//! the line parser, the verifier, the reader, the follower and the appender's
//! recovery path must never panic, whatever the files hold.
#![no_main]

use std::sync::atomic::AtomicBool;
use std::time::Duration;

use airlock_audit::{AuditLog, Event, Filter, Follow, FsyncPolicy, Kind, Options, Record, records, verify};
use libfuzzer_sys::fuzz_target;

/// The key the seeds were written with, so seeds start out verifying.
const KEY: [u8; 32] = [7; 32];

fuzz_target!(|data: &[u8]| {
    for line in data.split(|&b| b == b'\n') {
        if let Ok(record) = Record::parse_line(line) {
            let _ = record.human().to_string();
            let _ = Record::parse_line(record.to_json().as_bytes());
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

    if let Ok(report) = verify(&audit, &state, &KEY) {
        let _ = report.to_string();
    }
    if let Ok(iter) = records(&audit, Filter::all()) {
        for item in iter.take(10_000) {
            let _ = item.map(|r| r.human().to_string()).map_err(|e| e.to_string());
        }
    }
    if let Ok(mut follow) = Follow::from_start(&audit, Filter::all()) {
        let _ = follow.poll();
        let _ = follow.run(Duration::ZERO, &AtomicBool::new(true), |_| std::ops::ControlFlow::Continue(()));
    }
    // The appender's recovery (torn tails, broken anchors) on the same garbage, then
    // the verifier again on what it left.
    if data.first().is_some_and(|b| b & 1 == 1) {
        let batch = FsyncPolicy::Batch { max_records: 1_000, max_delay: Duration::from_secs(60) };
        let opts = Options::default().fsync(batch).lock_timeout(Duration::from_millis(100));
        if let Ok(mut log) = AuditLog::open(&audit, &state, &KEY, opts) {
            let _ = log.append(&Event::new(Kind::Request).path("/fuzz"));
        }
        if let Ok(report) = verify(&audit, &state, &KEY) {
            let _ = report.to_string();
        }
    }
});
