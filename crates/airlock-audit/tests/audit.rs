//! Integration tests of the audit log: round trips, every kind of tampering named at
//! the right record, crashes, concurrency (threads and processes), reading and
//! following, and property tests.
#![allow(clippy::unwrap_used)]

use std::fs;
use std::ops::ControlFlow;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::time::Duration;

use airlock_audit::{
    AuditLog, Decision, Event, Filter, Follow, FsyncPolicy, Kind, Options, Outcome, ProblemKind,
    Record, SharedLog, VerifyReport, records, verify,
};
use proptest::prelude::*;

#[path = "audit/edges.rs"]
mod edges;

const KEY: [u8; 32] = [7; 32];

struct Home {
    _dir: tempfile::TempDir,
    audit: PathBuf,
    state: PathBuf,
}

fn home() -> Home {
    let dir = tempfile::tempdir().unwrap();
    Home {
        audit: dir.path().join("audit"),
        state: dir.path().join("state"),
        _dir: dir,
    }
}

fn event(i: u64) -> Event {
    Event::request("stripe", "GET", &format!("/v1/items/{i}"))
        .agent("claude-desktop", true)
        .session("s-1")
        .query_keys(["limit"])
        .status(200)
        .duration(Duration::from_millis(i))
        .decision(Decision::Allow)
        .bytes(10, 20)
}

fn open(h: &Home, opts: Options) -> AuditLog {
    AuditLog::open(&h.audit, &h.state, &KEY, opts).unwrap()
}

fn fill(h: &Home, n: u64, opts: Options) {
    let mut log = open(h, opts);
    for i in 1..=n {
        assert_eq!(log.append(&event(i)).unwrap(), i);
    }
    log.close().unwrap();
}

fn check(h: &Home) -> VerifyReport {
    verify(&h.audit, &h.state, &KEY).unwrap()
}

fn log_path(h: &Home, index: u64) -> PathBuf {
    h.audit.join(format!("audit-{index:06}.jsonl"))
}

fn read_lines(path: &Path) -> Vec<String> {
    fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(str::to_owned)
        .collect()
}

fn write_lines(path: &Path, lines: &[String]) {
    let mut text = lines.join("\n");
    text.push('\n');
    fs::write(path, text).unwrap();
}

/// Rewrites the lines of log file `n` with `edit`.
fn edit_lines(h: &Home, n: u64, edit: impl FnOnce(&mut Vec<String>)) {
    let path = log_path(h, n);
    let mut lines = read_lines(&path);
    edit(&mut lines);
    write_lines(&path, &lines);
}

/// What the verifier finds in a log of ten records in one file after `edit`
/// rewrote its lines.
fn tampered(edit: impl FnOnce(&mut Vec<String>)) -> VerifyReport {
    let h = home();
    fill(&h, 10, Options::default());
    edit_lines(&h, 1, edit);
    check(&h)
}

/// Asserts the report is broken at `file` line `line` (seq `seq`) for `kind`.
#[track_caller]
fn assert_broken(
    report: &VerifyReport,
    file: &str,
    line: Option<u64>,
    seq: Option<u64>,
    kind: &dyn Fn(&ProblemKind) -> bool,
) {
    let problem = report
        .problem()
        .unwrap_or_else(|| panic!("not broken: {report}"));
    assert_eq!(problem.file, file, "{report}");
    assert_eq!(problem.line, line, "{report}");
    assert_eq!(problem.seq, seq, "{report}");
    assert!(kind(&problem.kind), "{report}");
    assert!(!report.is_ok());
    let text = report.to_string();
    assert!(!text.contains('\n'), "{text}");
    assert!(text.contains(file), "{text}");
}

#[test]
fn round_trip_across_rotation_and_reopen() {
    let h = home();
    let opts = || Options::default().max_file_bytes(2_000);
    fill(&h, 40, opts());
    let files = fs::read_dir(&h.audit).unwrap().filter(|e| {
        e.as_ref()
            .unwrap()
            .file_name()
            .to_string_lossy()
            .ends_with(".jsonl")
    });
    assert!(
        files.count() > 3,
        "rotation should have produced several files"
    );
    let report = check(&h);
    assert_eq!(report.outcome, Outcome::Intact, "{report}");
    assert_eq!(
        (report.records, report.last_seq, report.anchor_seq),
        (40, Some(40), Some(40))
    );
    assert!(
        report
            .to_string()
            .starts_with("audit log intact: 40 records in "),
        "{report}"
    );

    // The chain continues across a reopen.
    let mut log = open(&h, opts());
    assert_eq!(log.append(&event(41)).unwrap(), 41);
    drop(log);
    let all: Vec<Record> = records(&h.audit, Filter::all())
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert_eq!(
        all.iter().map(|r| r.seq).collect::<Vec<_>>(),
        (1..=41).collect::<Vec<_>>()
    );
    assert_eq!(all[4].event, event(5));
    assert!(check(&h).is_ok());
}

#[cfg(unix)]
#[test]
fn files_are_private() {
    use std::os::unix::fs::PermissionsExt;
    let h = home();
    fill(&h, 1, Options::default());
    let mode = |p: &Path| fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&h.audit), 0o700);
    assert_eq!(mode(&h.state), 0o700);
    assert_eq!(mode(&log_path(&h, 1)), 0o600);
    assert_eq!(mode(&h.state.join("audit-head")), 0o600);
    assert_eq!(mode(&h.audit.join(".lock")), 0o600);
}

#[test]
fn edited_field_is_named() {
    let report = tampered(|lines| {
        lines[4] = lines[4].replace("\"status\":200", "\"status\":201");
    });
    assert_broken(&report, "audit-000001.jsonl", Some(5), Some(5), &|k| {
        *k == ProblemKind::BadMac
    });
    assert_eq!(
        report.to_string(),
        "audit log BROKEN: audit-000001.jsonl line 5 (seq 5): the MAC does not verify: \
         the record was changed or inserted after it was written (4 records before it verify)"
    );
}

#[test]
fn deleted_middle_record_is_named() {
    let report = tampered(|lines| {
        lines.remove(4);
    });
    assert_broken(&report, "audit-000001.jsonl", Some(5), Some(6), &|k| {
        *k == ProblemKind::SeqGap { expected: 5 }
    });
    assert!(report.to_string().contains("expected seq 5"), "{report}");
}

#[test]
fn reordered_records_are_named() {
    let report = tampered(|lines| lines.swap(6, 7));
    assert_broken(&report, "audit-000001.jsonl", Some(7), Some(8), &|k| {
        *k == ProblemKind::SeqGap { expected: 7 }
    });
}

#[test]
fn inserted_record_with_wrong_mac_is_named() {
    let report = tampered(|lines| {
        // Valid JSON, plausible fields, a MAC taken from another record.
        let forged = lines[2].replace("/v1/items/3", "/v1/admin");
        lines.insert(3, forged);
    });
    assert_broken(&report, "audit-000001.jsonl", Some(4), Some(3), &|k| {
        *k == ProblemKind::BadMac
    });
}

#[test]
fn replayed_record_with_valid_mac_is_named() {
    let report = tampered(|lines| {
        let copy = lines[1].clone();
        lines.insert(5, copy);
    });
    assert_broken(&report, "audit-000001.jsonl", Some(6), Some(2), &|k| {
        *k == ProblemKind::SeqOutOfOrder { expected: 6 }
    });
}

#[test]
fn truncated_tail_is_caught_by_the_anchor() {
    let h = home();
    fill(&h, 10, Options::default());
    let path = log_path(&h, 1);
    let lines = read_lines(&path);
    write_lines(&path, &lines[..7]);
    let report = check(&h);
    assert_broken(&report, "audit-000001.jsonl", None, None, &|k| {
        *k == ProblemKind::Truncated {
            last_seq: 7,
            anchor_seq: 10,
        }
    });
    assert!(
        report
            .to_string()
            .contains("the newest 3 record(s) were deleted"),
        "{report}"
    );
}

#[test]
fn deleted_newest_file_is_caught_by_the_anchor() {
    let h = home();
    fill(&h, 30, Options::default().max_file_bytes(2_000));
    let newest = fs::read_dir(&h.audit)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "jsonl"))
        .max()
        .unwrap();
    fs::remove_file(&newest).unwrap();
    let report = check(&h);
    assert!(
        matches!(
            report.problem().map(|p| &p.kind),
            Some(ProblemKind::Truncated { anchor_seq: 30, .. })
        ),
        "{report}"
    );
}

#[test]
fn deleted_first_file_is_named() {
    let h = home();
    fill(&h, 30, Options::default().max_file_bytes(2_000));
    fs::remove_file(log_path(&h, 1)).unwrap();
    assert_broken(&check(&h), "audit-000001.jsonl", None, None, &|k| {
        *k == ProblemKind::MissingFile
    });
}

#[test]
fn wrong_key_is_named_at_the_first_record() {
    let h = home();
    fill(&h, 5, Options::default());
    let report = verify(&h.audit, &h.state, &[8; 32]).unwrap();
    let problem = report.problem().unwrap();
    assert_eq!(
        (problem.file.as_str(), problem.line, problem.seq),
        ("audit-000001.jsonl", Some(1), Some(1))
    );
    assert_eq!(problem.kind, ProblemKind::WrongKey, "{report}");
    assert!(report.to_string().contains("wrong key"), "{report}");
    // And appending with it is refused rather than forking the chain.
    let err = AuditLog::open(&h.audit, &h.state, &[8; 32], Options::default()).unwrap_err();
    assert!(err.to_string().contains("different key"), "{err}");
}

#[test]
fn torn_final_line_is_reported_as_torn_and_appending_repairs_it() {
    let h = home();
    fill(&h, 10, Options::default());
    let path = log_path(&h, 1);
    let lines = read_lines(&path);
    let mut bytes = fs::read(&path).unwrap();
    // A crash half-way through writing record 11 (which was never acknowledged).
    let partial = lines[9].replace("\"seq\":10", "\"seq\":11");
    bytes.extend_from_slice(&partial.as_bytes()[..partial.len() / 2]);
    fs::write(&path, &bytes).unwrap();

    let report = check(&h);
    assert_eq!(
        report.outcome,
        Outcome::TornTail {
            file: "audit-000001.jsonl".into(),
            line: 11
        },
        "{report}"
    );
    assert!(report.is_ok());
    let text = report.to_string();
    assert!(
        text.contains("the last record in audit-000001.jsonl line 11 is incomplete: a crash during a write; everything before it verifies"),
        "{text}"
    );
    // Readers skip it.
    assert_eq!(records(&h.audit, Filter::all()).unwrap().count(), 10);

    // The next append cuts the torn bytes, records that it did, and continues.
    let mut log = open(&h, Options::default());
    let seq = log.append(&event(99)).unwrap();
    drop(log);
    assert_eq!(seq, 12, "seq 11 is the repair record");
    let report = check(&h);
    assert_eq!(report.outcome, Outcome::Intact, "{report}");
    let all: Vec<Record> = records(&h.audit, Filter::all())
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert_eq!(all[10].event.kind, Kind::AuditRepair);
    assert!(
        all[10]
            .event
            .detail
            .as_deref()
            .unwrap()
            .contains("incomplete record")
    );
    assert_eq!(all[11].event, event(99));
}

#[test]
fn a_long_torn_line_is_replaced_by_its_repair_record_with_nothing_left_over() {
    let h = home();
    fill(&h, 3, Options::default());
    let path = log_path(&h, 1);
    let complete = fs::read(&path).unwrap();
    // Torn bytes longer than the repair record that replaces them, and shorter.
    for torn in [vec![b'x'; 5000], b"{\"ts\"".to_vec()] {
        let mut bytes = fs::read(&path).unwrap();
        bytes.extend_from_slice(&torn);
        fs::write(&path, &bytes).unwrap();
        drop(open(&h, Options::default()));
        let after = fs::read(&path).unwrap();
        assert!(after.ends_with(b"\n") && !after.windows(2).any(|w| w == b"xx"));
        let last = records(&h.audit, Filter::all())
            .unwrap()
            .last()
            .unwrap()
            .unwrap();
        assert_eq!(last.event.kind, Kind::AuditRepair);
        assert!(
            last.event
                .detail
                .unwrap()
                .contains(&format!("removed {} bytes", torn.len()))
        );
        assert_eq!(check(&h).outcome, Outcome::Intact);
    }
    assert!(fs::read(&path).unwrap().starts_with(&complete));
}

#[test]
fn torn_line_that_the_anchor_covers_is_damage_not_a_crash() {
    let h = home();
    fill(&h, 5, Options::default());
    let path = log_path(&h, 1);
    let mut bytes = fs::read(&path).unwrap();
    bytes.pop(); // the final newline of an acknowledged record
    fs::write(&path, &bytes).unwrap();
    assert_broken(&check(&h), "audit-000001.jsonl", Some(5), None, &|k| {
        *k == ProblemKind::Truncated {
            last_seq: 4,
            anchor_seq: 5,
        }
    });
}

#[test]
fn crash_between_write_and_anchor_update_rolls_forward() {
    let h = home();
    fill(&h, 9, Options::default());
    let old_anchor = fs::read(h.state.join("audit-head")).unwrap();
    fill_more(&h, 1);
    fs::write(h.state.join("audit-head"), &old_anchor).unwrap();
    let report = check(&h);
    assert_eq!(report.outcome, Outcome::Intact, "{report}");
    assert!(
        report.to_string().contains("1 newest not yet anchored"),
        "{report}"
    );
    let mut log = open(&h, Options::default());
    assert_eq!(log.append(&event(11)).unwrap(), 11);
    drop(log);
    let report = check(&h);
    assert_eq!(
        (report.outcome.clone(), report.anchor_seq),
        (Outcome::Intact, Some(11)),
        "{report}"
    );
}

fn fill_more(h: &Home, n: u64) {
    let mut log = open(h, Options::default());
    for i in 0..n {
        log.append(&event(100 + i)).unwrap();
    }
}

#[test]
fn missing_anchor_is_reported_then_rebuilt_and_recorded() {
    let h = home();
    fill(&h, 5, Options::default());
    fs::remove_file(h.state.join("audit-head")).unwrap();
    assert_broken(
        &check(&h),
        &h.state.join("audit-head").display().to_string(),
        None,
        None,
        &|k| *k == ProblemKind::AnchorMissing,
    );
    let mut log = open(&h, Options::default());
    assert_eq!(log.append(&event(7)).unwrap(), 7);
    drop(log);
    assert_eq!(check(&h).outcome, Outcome::Intact);
    let repair = records(&h.audit, Filter::all())
        .unwrap()
        .nth(5)
        .unwrap()
        .unwrap();
    assert_eq!(repair.event.kind, Kind::AuditRepair);
    assert!(repair.event.detail.unwrap().contains("was missing"));
}

#[test]
fn appending_after_truncation_keeps_the_evidence() {
    let h = home();
    fill(&h, 10, Options::default());
    let path = log_path(&h, 1);
    write_lines(&path, &read_lines(&path)[..6]);
    let mut log = open(&h, Options::default());
    // The chain continues from the anchor, not from the cut log.
    assert_eq!(log.append(&event(11)).unwrap(), 11);
    drop(log);
    assert_broken(&check(&h), "audit-000001.jsonl", Some(7), Some(11), &|k| {
        *k == ProblemKind::SeqGap { expected: 7 }
    });
}

#[test]
fn empty_home_verifies() {
    let h = home();
    let report = check(&h);
    assert_eq!(
        (report.outcome.clone(), report.records),
        (Outcome::Intact, 0),
        "{report}"
    );
}

#[test]
fn batch_policy_defers_the_anchor_and_flushes_on_drop() {
    let h = home();
    let batch = FsyncPolicy::Batch {
        max_records: 8,
        max_delay: Duration::from_secs(60),
    };
    let mut log = open(&h, Options::default().fsync(batch));
    for i in 1..=20 {
        log.append(&event(i)).unwrap();
    }
    // Anchored at the first record, then every 8 more: 9, 17; 18..20 pending.
    let report = check(&h);
    assert_eq!(
        (report.outcome.clone(), report.records, report.anchor_seq),
        (Outcome::Intact, 20, Some(17)),
        "{report}"
    );
    drop(log);
    assert_eq!(check(&h).anchor_seq, Some(20));

    // A process that dies without flushing loses nothing the OS already has, and
    // the next writer rolls forward over the unanchored records.
    let mut log = open(&h, Options::default().fsync(batch));
    log.append(&event(21)).unwrap();
    std::mem::forget(log);
    let mut other = open(&h, Options::default());
    assert_eq!(other.append(&event(22)).unwrap(), 22);
    drop(other);
    assert_eq!(check(&h).outcome, Outcome::Intact);
}

#[test]
fn concurrent_logs_in_threads_never_fork_the_chain() {
    let h = Arc::new(home());
    let threads: Vec<_> = (0..4)
        .map(|t| {
            let h = Arc::clone(&h);
            std::thread::spawn(move || {
                let mut log = open(&h, Options::default().max_file_bytes(64 * 1024));
                (0..500)
                    .map(|i| log.append(&event(t * 1000 + i)).unwrap())
                    .collect::<Vec<_>>()
            })
        })
        .collect();
    let mut seqs: Vec<u64> = threads
        .into_iter()
        .flat_map(|t| t.join().unwrap())
        .collect();
    seqs.sort_unstable();
    assert_eq!(seqs, (1..=2000).collect::<Vec<_>>());
    let report = check(&h);
    assert_eq!(
        (report.outcome.clone(), report.records),
        (Outcome::Intact, 2000),
        "{report}"
    );
}

#[test]
fn shared_log_anchors_each_record_before_append_returns() {
    let h = home();
    let log = SharedLog::new(open(&h, Options::default()));
    for i in 1..=20 {
        let seq = log.append(&event(i)).unwrap();
        assert_eq!(seq, i);
        // Durable and anchored when `append` returns, with no flush or drop.
        assert_eq!(check(&h).anchor_seq, Some(seq));
    }
    std::mem::forget(log);
}

/// A record written without waiting (an outcome record: the server answers once
/// it is written) is made durable and anchored by the next sync, or by
/// `flush_if_due` once it is 100 ms old; the anchor keeps its file (overwritten
/// in place) while its line keeps its length.
#[test]
fn a_record_nobody_waits_for_is_anchored_by_the_next_sync_or_when_due() {
    let h = home();
    let log = SharedLog::new(open(&h, Options::default()));
    assert_eq!(log.append(&event(1)).unwrap(), 1);
    let anchor_file = h.state.join("audit-head");
    let inode = || std::os::unix::fs::MetadataExt::ino(&fs::metadata(&anchor_file).unwrap());
    let first_inode = inode();
    let unwaited = log.write(&event(2)).unwrap();
    assert!(!unwaited.is_durable());
    // Written: every reader sees it at once; not anchored yet.
    assert_eq!(check(&h).records, 2);
    assert_eq!(check(&h).anchor_seq, Some(1));
    let next = log.write(&event(3)).unwrap();
    log.wait(next).unwrap();
    assert_eq!(check(&h).anchor_seq, Some(3));
    let last = log.write(&event(4)).unwrap();
    assert_eq!(last.seq, 4);
    std::thread::sleep(Duration::from_millis(120));
    log.flush_if_due().unwrap();
    let report = check(&h);
    assert_eq!(
        (report.outcome.clone(), report.anchor_seq),
        (Outcome::Intact, Some(4)),
        "{report}"
    );
    assert_eq!(inode(), first_inode, "the anchor was overwritten in place");
    // Lines grow a digit at seq 10: the anchor is replaced, and still verifies.
    for i in 5..=10 {
        assert_eq!(log.append(&event(i)).unwrap(), i);
    }
    assert_ne!(inode(), first_inode);
    assert_eq!(check(&h).anchor_seq, Some(10));
    log.into_inner().close().unwrap();
}

#[test]
fn group_commit_from_many_threads_and_another_writer_keeps_one_anchored_chain() {
    let h = Arc::new(home());
    let shared = Arc::new(SharedLog::new(open(
        &h,
        Options::default().max_file_bytes(64 * 1024),
    )));
    let mut threads: Vec<_> = (0..8)
        .map(|t| {
            let shared = Arc::clone(&shared);
            std::thread::spawn(move || {
                (0..150)
                    .map(|i| shared.append(&event(t * 1000 + i)).unwrap())
                    .collect::<Vec<_>>()
            })
        })
        .collect();
    // A second writer on the same directory (as another server process would be),
    // with its own lock handle.
    let other = Arc::clone(&h);
    threads.push(std::thread::spawn(move || {
        let other = SharedLog::new(open(&other, Options::default().max_file_bytes(64 * 1024)));
        let seqs = (0..300)
            .map(|i| other.append(&event(9000 + i)).unwrap())
            .collect::<Vec<_>>();
        std::mem::forget(other);
        seqs
    }));
    let mut seqs: Vec<u64> = threads
        .into_iter()
        .flat_map(|t| t.join().unwrap())
        .collect();
    seqs.sort_unstable();
    assert_eq!(seqs, (1..=1500).collect::<Vec<_>>());
    // No flush, no drop: what the appends returned must already be on disk and
    // anchored, up to the newest record.
    let shared = Arc::into_inner(shared).unwrap();
    std::mem::forget(shared);
    let report = check(&h);
    assert_eq!(
        (report.outcome.clone(), report.records, report.anchor_seq),
        (Outcome::Intact, 1500, Some(1500)),
        "{report}"
    );
}

const CHILD_ENV: &str = "AIRLOCK_AUDIT_TEST_CHILD";

/// Not a test on its own: the body of the child processes spawned by
/// `concurrent_processes_never_fork_the_chain`, which runs it with `--ignored`.
/// Ignored so a plain `cargo test` never shows a meaningless `ok`; run by hand
/// without the parent's environment it fails instead of passing vacuously.
#[test]
#[ignore = "child process of concurrent_processes_never_fork_the_chain, which runs it"]
fn child_appender() {
    let root = std::env::var(CHILD_ENV).unwrap_or_else(|_| {
        panic!(
            "child_appender is the body of concurrent_processes_never_fork_the_chain's \
             child processes; it needs {CHILD_ENV} (run that test instead)"
        )
    });
    let root = PathBuf::from(root);
    let (audit, state) = (root.join("audit"), root.join("state"));
    let threads: Vec<_> = (0..2)
        .map(|t| {
            let (audit, state) = (audit.clone(), state.clone());
            std::thread::spawn(move || {
                let mut log = AuditLog::open(
                    &audit,
                    &state,
                    &KEY,
                    Options::default().max_file_bytes(64 * 1024),
                )
                .unwrap();
                for i in 0..250 {
                    log.append(&event(t * 1000 + i)).unwrap();
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
}

#[test]
fn concurrent_processes_never_fork_the_chain() {
    let h = home();
    let root = h.audit.parent().unwrap();
    let exe = std::env::current_exe().unwrap();
    let children: Vec<_> = (0..2)
        .map(|_| {
            std::process::Command::new(&exe)
                .args([
                    "--exact",
                    "child_appender",
                    "--ignored",
                    "--test-threads=1",
                    "--quiet",
                ])
                .env(CHILD_ENV, root)
                .spawn()
                .unwrap()
        })
        .collect();
    // And this process appends at the same time.
    let mut log = open(&h, Options::default().max_file_bytes(64 * 1024));
    for i in 0..500 {
        log.append(&event(i)).unwrap();
    }
    drop(log);
    for mut child in children {
        assert!(child.wait().unwrap().success());
    }
    let seqs: Vec<u64> = records(&h.audit, Filter::all())
        .unwrap()
        .map(|r| r.unwrap().seq)
        .collect();
    assert_eq!(seqs, (1..=1500).collect::<Vec<_>>());
    let report = check(&h);
    assert_eq!(
        (report.outcome.clone(), report.records),
        (Outcome::Intact, 1500),
        "{report}"
    );
}

#[test]
fn filters_select_by_capability_agent_and_time() {
    let h = home();
    let now = Arc::new(AtomicI64::new(1_800_000_000));
    let clock = {
        let now = Arc::clone(&now);
        move || jiff::Timestamp::from_second(now.load(Ordering::SeqCst)).unwrap()
    };
    let mut log = open(&h, Options::default().clock(clock));
    log.append(&event(1)).unwrap();
    log.append(
        &Event::request("github", "POST", "/repos")
            .agent("cursor", false)
            .decision(Decision::Deny),
    )
    .unwrap();
    now.fetch_add(600, Ordering::SeqCst);
    log.append(&event(3)).unwrap();
    drop(log);
    let seqs = |f: Filter| {
        records(&h.audit, f)
            .unwrap()
            .map(|r| r.unwrap().seq)
            .collect::<Vec<_>>()
    };
    assert_eq!(seqs(Filter::all()), [1, 2, 3]);
    assert_eq!(seqs(Filter::all().capability("github")), [2]);
    assert_eq!(seqs(Filter::all().agent("claude-desktop")), [1, 3]);
    let since = jiff::Timestamp::from_second(1_800_000_300).unwrap();
    assert_eq!(seqs(Filter::all().since(since)), [3]);
    assert_eq!(
        seqs(Filter::all().since(since).capability("github")),
        Vec::<u64>::new()
    );
}

#[test]
fn follow_sees_new_records_across_rotation() {
    let h = home();
    let opts = || Options::default().max_file_bytes(1_500);
    fill(&h, 3, opts());
    let mut follow = Follow::from_end(&h.audit, Filter::all()).unwrap();
    assert!(follow.poll().unwrap().is_empty());
    let mut log = open(&h, opts());
    for i in 4..=12 {
        log.append(&event(i)).unwrap();
    }
    let seen: Vec<u64> = follow
        .poll()
        .unwrap()
        .into_iter()
        .map(|r| r.unwrap().seq)
        .collect();
    assert_eq!(seen, (4..=12).collect::<Vec<_>>());
    assert!(log_path(&h, 3).exists(), "the test should rotate");

    // run() ends on the stop flag or when the callback breaks.
    let stop = Arc::new(AtomicBool::new(false));
    let writer = {
        let stop = Arc::clone(&stop);
        std::thread::spawn(move || {
            for i in 13..=15 {
                log.append(&event(i)).unwrap();
                std::thread::sleep(Duration::from_millis(20));
            }
            std::thread::sleep(Duration::from_millis(100));
            stop.store(true, Ordering::SeqCst);
        })
    };
    let mut got = Vec::new();
    follow
        .run(Duration::from_millis(10), &stop, |r| {
            got.push(r.unwrap().seq);
            ControlFlow::Continue(())
        })
        .unwrap();
    writer.join().unwrap();
    assert_eq!(got, [13, 14, 15]);

    let mut from_start = Follow::from_start(&h.audit, Filter::all()).unwrap();
    let mut first = None;
    from_start
        .run(Duration::from_millis(10), &AtomicBool::new(false), |r| {
            first = Some(r.unwrap().seq);
            ControlFlow::Break(())
        })
        .unwrap();
    assert_eq!(first, Some(1));
}

#[test]
fn poll_newest_gives_the_newest_matching_records_in_order_across_rotation() {
    let h = home();
    let opts = || Options::default().max_file_bytes(1_500);
    fill(&h, 3, opts());
    let mut follow = Follow::from_end(&h.audit, Filter::all()).unwrap();
    let mut log = open(&h, opts());
    for i in 4..=30 {
        log.append(&event(i)).unwrap();
    }
    assert!(log_path(&h, 3).exists(), "the test should rotate");
    // The newest 5 of what was appended, oldest first, whatever the files.
    let seqs = |v: Vec<airlock_audit::Record>| v.iter().map(|r| r.seq).collect::<Vec<_>>();
    assert_eq!(
        seqs(follow.poll_newest(5, |_| true).unwrap()),
        [26, 27, 28, 29, 30]
    );
    // What was read is consumed, as with poll().
    assert!(follow.poll_newest(5, |_| true).unwrap().is_empty());
    for i in 31..=40 {
        log.append(&event(i)).unwrap();
    }
    // The predicate counts toward n: the newest 3 even records.
    assert_eq!(
        seqs(follow.poll_newest(3, |r| r.seq % 2 == 0).unwrap()),
        [36, 38, 40]
    );
    // Fewer than n: all of them.
    log.append(&event(41)).unwrap();
    assert_eq!(seqs(follow.poll_newest(500, |_| true).unwrap()), [41]);
}

#[test]
fn human_line_and_json_line() {
    let h = home();
    fill(&h, 1, Options::default());
    let r = records(&h.audit, Filter::all())
        .unwrap()
        .next()
        .unwrap()
        .unwrap();
    let human = r.human().to_string();
    assert!(
        human.ends_with("#1 request claude-desktop stripe GET /v1/items/1 allow 200 1ms"),
        "{human}"
    );
    assert_eq!(r.to_json(), read_lines(&log_path(&h, 1))[0]);
}

#[test]
fn invalid_kind_names_are_refused_before_writing() {
    let h = home();
    let mut log = open(&h, Options::default());
    let err = log
        .append(&Event::new(Kind::Other("Not A Kind".into())))
        .unwrap_err();
    assert!(
        err.to_string().contains("invalid audit record kind"),
        "{err}"
    );
    assert_eq!(
        log.append(&Event::new(Kind::Other("custom_thing".into())))
            .unwrap(),
        1
    );
    drop(log);
    let r = records(&h.audit, Filter::all())
        .unwrap()
        .next()
        .unwrap()
        .unwrap();
    assert_eq!(r.event.kind, Kind::Other("custom_thing".into()));
}

#[test]
fn no_query_values_or_bodies_can_be_recorded() {
    // The record type has no field for them; query_keys are names.
    let h = home();
    let mut log = open(&h, Options::default());
    log.append(&Event::request("s", "GET", "/x").query_keys(["api_key", "page"]))
        .unwrap();
    drop(log);
    let text = fs::read_to_string(log_path(&h, 1)).unwrap();
    assert!(
        text.contains(r#""query_keys":["api_key","page"]"#),
        "{text}"
    );
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    /// Any sequence of appends verifies, and flipping any single byte of any file
    /// (log or anchor) is detected.
    #[test]
    fn appends_verify_and_any_flipped_byte_is_detected(
        events in proptest::collection::vec(arb_event(), 1..25),
        max_file_bytes in 300u64..4_000,
        pick in any::<proptest::sample::Index>(),
        flip in 1u8..=255,
    ) {
        let h = home();
        let batch = FsyncPolicy::Batch { max_records: 1_000, max_delay: Duration::from_secs(60) };
        let mut log = open(&h, Options::default().fsync(batch).max_file_bytes(max_file_bytes));
        for (i, e) in events.iter().enumerate() {
            prop_assert_eq!(log.append(e).unwrap(), i as u64 + 1);
        }
        drop(log);
        let report = check(&h);
        prop_assert_eq!(&report.outcome, &Outcome::Intact, "{}", report);
        let read: Vec<Event> = records(&h.audit, Filter::all()).unwrap().map(|r| r.unwrap().event).collect();
        prop_assert_eq!(&read, &events);

        // Every byte of every file, as (path, offset).
        let mut paths: Vec<PathBuf> = fs::read_dir(&h.audit).unwrap().map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|x| x == "jsonl")).collect();
        paths.push(h.state.join("audit-head"));
        let bytes: Vec<(PathBuf, usize)> = paths.iter()
            .flat_map(|p| (0..fs::metadata(p).unwrap().len() as usize).map(move |i| (p.clone(), i)))
            .collect();
        let (path, offset) = &bytes[pick.index(bytes.len())];
        let mut content = fs::read(path).unwrap();
        content[*offset] ^= flip;
        fs::write(path, &content).unwrap();
        let report = check(&h);
        // Detected: broken, or at most a torn final line (never silently intact).
        prop_assert!(report.outcome != Outcome::Intact,
            "flip of {:#x} at {}:{} undetected: {}", flip, path.display(), offset, report);
    }
}

fn arb_text() -> impl Strategy<Value = String> {
    prop_oneof![
        "[a-z0-9_./-]{0,30}",
        any::<String>().prop_map(|s| s.chars().take(40).collect()),
    ]
}

fn arb_event() -> impl Strategy<Value = Event> {
    (
        prop_oneof![
            Just(Kind::Request),
            Just(Kind::Exec),
            Just(Kind::Revoke),
            Just(Kind::Other("x_y".into()))
        ],
        proptest::option::of(arb_text()),
        proptest::option::of(arb_text()),
        proptest::option::of(any::<u16>()),
        proptest::option::of(arb_text()),
        proptest::collection::vec("[a-z]{1,8}", 0..3),
        any::<bool>(),
    )
        .prop_map(|(kind, agent, path, status, reason, keys, allow)| {
            let mut e = Event::new(kind).query_keys(keys);
            e.agent = agent;
            e.path = path;
            e.status = status;
            e.reason = reason;
            e.decision = Some(if allow {
                Decision::Allow
            } else {
                Decision::Deny
            });
            e
        })
}

/// Write-ahead (DESIGN §7.5): an allowed request is recorded before it is sent and
/// completed by an `outcome` record naming it. A decision without its outcome (a
/// crash between the two) is reported as such, and the chain still verifies.
#[test]
fn a_decision_without_its_outcome_is_reported_but_the_chain_is_intact() {
    let h = home();
    let mut log = open(&h, Options::default());
    let decision = |path: &str| {
        Event::request("stripe", "POST", path)
            .agent("cursor (unverified)", false)
            .decision(Decision::Allow)
    };
    let first = log.append(&decision("/v1/a")).unwrap();
    let done = decision("/v1/a").status(200).bytes(1, 2).outcome_of(first);
    assert_eq!(done.kind, Kind::Outcome);
    let o = log.append(&done).unwrap();
    let second = log.append(&decision("/v1/b")).unwrap();
    // A refusal and a one-record request (older writers) need no outcome.
    log.append(&decision("/v1/c").decision(Decision::Deny).status(403))
        .unwrap();
    log.append(&event(9)).unwrap();
    log.close().unwrap();

    let report = check(&h);
    assert!(report.is_ok(), "{report}");
    assert_eq!(report.outcome, Outcome::Intact);
    assert_eq!(report.without_outcome, vec![second]);
    let text = report.to_string();
    assert!(
        text.starts_with("audit log intact: ")
            && text.contains(&format!("1 request without outcome: seq {second} ")),
        "{text}"
    );
    let lines = read_lines(&log_path(&h, 1));
    assert!(
        lines[(o - 1) as usize].contains(&format!("\"kind\":\"outcome\",\"of\":{first},")),
        "{}",
        lines[(o - 1) as usize]
    );
    let r = Record::parse_line(lines[(o - 1) as usize].as_bytes()).unwrap();
    assert_eq!(r.event.of, Some(first));
    assert!(
        r.human()
            .to_string()
            .contains(&format!("outcome of #{first} "))
    );

    // Completing it later closes it.
    let mut log = open(&h, Options::default());
    log.append(&decision("/v1/b").status(502).outcome_of(second))
        .unwrap();
    log.close().unwrap();
    let report = check(&h);
    assert!(report.without_outcome.is_empty(), "{report}");
    assert!(!report.to_string().contains("without outcome"));
}

#[test]
fn escaped_writes_control_and_bidi_characters_escaped() {
    use airlock_audit::Escaped;
    assert_eq!(Escaped("plain name").to_string(), "plain name");
    let s = Escaped("x\u{1b}[2J\u{1b}[1;1H\r\n\u{202e}y").to_string();
    assert_eq!(s, r"x\u{1b}[2J\u{1b}[1;1H\u{d}\u{a}\u{202e}y");
}

/// Issue 16: a log that keeps the append lock between appends shuts every other
/// appender out until it lets go, chains across the hand-over, and its no-wait
/// writes happen only while it holds the lock and knows the head.
#[test]
fn a_held_lock_keeps_other_appenders_out_until_released() {
    let h = home();
    let quick = || Options::default().lock_timeout(Duration::from_millis(50));
    let held = SharedLog::new(open(&h, quick()));
    assert_eq!(held.append(&event(1)).unwrap(), 1);
    let mut other = open(&h, quick());
    // Not held yet: no write without waiting.
    assert!(held.try_write_now(&event(2)).is_none());
    held.hold_lock().unwrap();
    assert!(held.holds_lock());
    // The head is checked at the first append under the lock, then trusted.
    assert!(held.try_write_now(&event(2)).is_none());
    assert_eq!(held.append(&event(2)).unwrap(), 2);
    assert_eq!(held.try_write_now(&event(3)).unwrap().unwrap(), 3);
    assert!(matches!(
        other.append(&event(9)),
        Err(airlock_audit::AuditError::Locked { .. })
    ));
    assert_eq!(held.append(&event(4)).unwrap(), 4);
    held.release_lock();
    assert!(held.try_write_now(&event(5)).is_none());
    // The other process's append sees every record written under the lock.
    assert_eq!(other.append(&event(5)).unwrap(), 5);
    // And the holder sees the other's record when it holds the lock again.
    held.hold_lock().unwrap();
    assert_eq!(held.append(&event(6)).unwrap(), 6);
    assert_eq!(held.try_write_now(&event(7)).unwrap().unwrap(), 7);
    held.release_lock();
    drop(other);
    held.flush().unwrap();
    let r = check(&h);
    assert!(r.is_ok(), "{r}");
    assert_eq!(r.records, 7);
}

/// Issue 16: while it holds the lock a log writes each anchor over the one it
/// wrote last, through the file it kept open; once it lets go it opens the
/// anchor by its path again, so an anchor replaced or removed meanwhile is
/// found, and recreated. The anchor always names the newest durable record.
#[test]
fn a_held_anchor_is_written_in_place_and_found_again_after_the_lock_is_let_go() {
    let h = home();
    let log = SharedLog::new(open(&h, Options::default()));
    log.hold_lock().unwrap();
    for i in 1..=3 {
        assert_eq!(log.append(&event(i)).unwrap(), i);
        assert_eq!(check(&h).anchor_seq, Some(i));
    }
    log.release_lock();
    // Removed while the lock was free (as a crash between a replacement's
    // unlink and rename would leave it, or by hand).
    std::fs::remove_file(h.state.join(airlock_audit::ANCHOR_FILE)).unwrap();
    log.hold_lock().unwrap();
    assert_eq!(log.append(&event(4)).unwrap(), 4);
    assert_eq!(
        check(&h).anchor_seq,
        Some(4),
        "the anchor was written to the file kept from before the lock was let go"
    );
    for i in 5..=12 {
        // 10 is one character longer: the line is replaced, and kept again.
        assert_eq!(log.append(&event(i)).unwrap(), i);
        assert_eq!(check(&h).anchor_seq, Some(i));
    }
    log.release_lock();
    let r = check(&h);
    assert!(r.is_ok(), "{r}");
    assert_eq!((r.records, r.anchor_seq), (12, Some(12)));
}

/// Under the batch policy a no-wait write is refused once the batch's fsync is
/// due, so that fsync happens where waiting is allowed.
#[test]
fn no_wait_writes_leave_a_due_batch_sync_to_the_writer() {
    let h = home();
    let opts = Options::default().fsync(FsyncPolicy::Batch {
        max_records: 2,
        max_delay: Duration::from_secs(60),
    });
    let log = SharedLog::new(open(&h, opts));
    log.hold_lock().unwrap();
    // The first record of a file is synced at once; 2 and 3 make a full batch.
    assert_eq!(log.append(&event(1)).unwrap(), 1);
    assert_eq!(log.try_write_now(&event(2)).unwrap().unwrap(), 2);
    assert_eq!(log.try_write_now(&event(3)).unwrap().unwrap(), 3);
    assert!(
        log.try_write_now(&event(4)).is_none(),
        "two pending: the batch is due"
    );
    assert_eq!(log.append(&event(4)).unwrap(), 4);
    assert_eq!(log.try_write_now(&event(5)).unwrap().unwrap(), 5);
    log.release_lock();
    log.flush().unwrap();
    assert!(check(&h).is_ok());
}
