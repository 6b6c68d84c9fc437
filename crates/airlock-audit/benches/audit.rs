//! Append throughput: fsync per record (the default, DESIGN §7.5) against the
//! batched policy, as `audit_fsync = "batch"` configures it (fsync every 1,000
//! records or 100 ms), and the in-process cost alone. Run with
//! `cargo bench -p airlock-audit --bench audit` (bench/run's `audit` section);
//! criterion reports the median time per append and appends/s (elements/s).
#![allow(clippy::unwrap_used, missing_docs)]

use std::time::Duration;

use airlock_audit::{AuditLog, Decision, Event, FsyncPolicy, Options};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};

fn event() -> Event {
    Event::request("stripe_readonly", "GET", "/v1/charges/ch_123")
        .agent("claude-desktop", true)
        .session("7f3a1c")
        .query_keys(["limit", "starting_after"])
        .status(200)
        .duration(Duration::from_millis(84))
        .decision(Decision::Allow)
        .rule("GET /v1/**")
        .bytes(0, 5_120)
}

fn append(c: &mut Criterion) {
    let mut group = c.benchmark_group("append");
    group.throughput(Throughput::Elements(1));
    let policies = [
        ("always", FsyncPolicy::Always),
        (
            "batch",
            FsyncPolicy::Batch {
                max_records: 1000,
                max_delay: Duration::from_millis(100),
            },
        ),
        // Never synced while measuring: the in-process cost alone (lock, freshness
        // check, MAC, write).
        (
            "unsynced",
            FsyncPolicy::Batch {
                max_records: u32::MAX,
                max_delay: Duration::from_secs(3600),
            },
        ),
    ];
    for (name, policy) in policies {
        let dir = tempfile::tempdir().unwrap();
        let mut log = AuditLog::open(
            &dir.path().join("audit"),
            &dir.path().join("state"),
            &[7; 32],
            Options::default().fsync(policy),
        )
        .unwrap();
        let ev = event();
        // An fsync costs about a millisecond: fewer samples keep the run short.
        if policy == FsyncPolicy::Always {
            group.sample_size(20);
        }
        group.bench_function(name, |b| b.iter(|| log.append(&ev).unwrap()));
        log.close().unwrap();
    }
    group.finish();
}

criterion_group!(benches, append);
criterion_main!(benches);
