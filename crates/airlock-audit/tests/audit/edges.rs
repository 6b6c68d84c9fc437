//! Edges the tampering tests do not reach: how a MAC reads back, an anchor that
//! exists but cannot be read, the cap on listed requests without an outcome, the
//! verify summary, and damage in a file that is not the newest.
//! Found by mutation testing (docs/testing.md, "Mutation testing").

use std::fs;

use airlock_audit::{
    AuditError, AuditLog, Decision, Event, FsyncPolicy, Mac, Options, ProblemKind, VerifyReport,
    verify,
};

use super::{KEY, check, event, home, open};

#[test]
fn a_mac_reads_back_as_its_bytes_and_its_hex() {
    let hex = "00ff10a5".repeat(8);
    let mac: Mac = hex.parse().unwrap();
    let mut bytes = [0u8; 32];
    for chunk in bytes.chunks_mut(4) {
        chunk.copy_from_slice(&[0x00, 0xff, 0x10, 0xa5]);
    }
    assert_eq!(mac.as_bytes(), &bytes);
    assert_eq!(mac.to_hex(), hex);
    assert_eq!(mac.to_string(), hex, "Display is the record's spelling");
    assert_eq!(format!("{mac:?}"), format!("Mac({hex})"));
    assert!(hex.to_uppercase().parse::<Mac>().is_err());
}

#[test]
fn an_anchor_that_cannot_be_read_is_an_error_not_a_missing_anchor() {
    let h = home();
    let mut log = open(&h, Options::default());
    log.append(&Event::request("stripe", "GET", "/v1/a").decision(Decision::Deny))
        .unwrap();
    log.close().unwrap();
    assert!(check(&h).is_ok());

    // The anchor path is a directory: reading it fails with something other than
    // "not found", which must stop verify rather than read as "no anchor yet".
    let anchor = h.state.join(airlock_audit::ANCHOR_FILE);
    fs::remove_file(&anchor).unwrap();
    fs::create_dir(&anchor).unwrap();
    match verify(&h.audit, &h.state, &KEY) {
        Err(err @ AuditError::Io { .. }) => {
            assert!(
                err.to_string().contains("cannot read the audit anchor"),
                "{err}"
            )
        }
        other => panic!("expected an I/O error naming the anchor, got {other:?}"),
    }
    // and a writer does not take it for a fresh log whose anchor is to be rebuilt
    match AuditLog::open(&h.audit, &h.state, &KEY, Options::default()) {
        Err(err @ AuditError::Io { .. }) => {
            assert!(
                err.to_string().contains("cannot read the audit anchor"),
                "{err}"
            )
        }
        Err(other) => panic!("expected an I/O error naming the anchor, got {other}"),
        Ok(_) => panic!("opened a log whose anchor cannot be read"),
    }
}

#[test]
fn at_most_twenty_requests_without_outcome_are_listed() {
    let decision = |i: u64| {
        Event::request("stripe", "POST", &format!("/v1/{i}"))
            .agent("cursor (unverified)", false)
            .decision(Decision::Allow)
    };
    for (n, more) in [(20u64, None), (21, Some(1)), (25, Some(5))] {
        let h = home();
        let mut log = open(&h, Options::default());
        for i in 1..=n {
            log.append(&decision(i)).unwrap();
        }
        log.close().unwrap();
        let report = check(&h);
        assert_eq!(report.without_outcome.len() as u64, n);
        let text = report.to_string();
        let listed: Vec<String> = (1..=20).map(|s| s.to_string()).collect();
        let expected = format!("{n} requests without outcome: seq {}", listed.join(", "));
        assert!(text.contains(&expected), "{text}");
        match more {
            Some(m) => assert!(
                text.contains(&format!(
                    "seq {}, 20 and {m} more (",
                    listed[..19].join(", ")
                )),
                "{text}"
            ),
            None => assert!(
                text.contains(&format!("{expected} (")) && !text.contains(" more"),
                "{text}"
            ),
        }
    }
}

/// What `airlock audit verify` prints for an intact log: records, files, anchor.
#[test]
fn the_summary_counts_records_and_files_and_says_what_is_not_yet_anchored() {
    let h = home();
    let empty = check(&h);
    assert_eq!(
        (empty.records, empty.last_seq, empty.anchor_seq),
        (0, None, None)
    );
    assert_eq!(empty.to_string(), "audit log intact: 0 records in 0 files");

    let mut log = open(&h, Options::default());
    for i in 1..=3 {
        log.append(&event(i)).unwrap();
    }
    log.close().unwrap();
    assert_eq!(
        check(&h).to_string(),
        "audit log intact: 3 records in 1 file, anchored at seq 3"
    );

    // batched fsyncs: the anchor lags behind the newest records
    let batch = FsyncPolicy::Batch {
        max_records: 8,
        max_delay: std::time::Duration::from_secs(60),
    };
    let mut log = open(&h, Options::default().fsync(batch));
    for i in 4..=6 {
        log.append(&event(i)).unwrap();
    }
    let lagging = check(&h).to_string();
    drop(log);
    assert!(
        lagging.starts_with("audit log intact: 6 records in 1 file, anchored at seq ")
            && lagging.ends_with(" newest not yet anchored)"),
        "{lagging}"
    );
    let anchored: u64 = lagging
        .split("anchored at seq ")
        .nth(1)
        .and_then(|r| r.split(' ').next())
        .unwrap()
        .parse()
        .unwrap();
    assert!(
        lagging.contains(&format!("({} newest", 6 - anchored)),
        "{lagging}"
    );

    let h = rotated();
    let report = check(&h);
    assert!(
        report.to_string().starts_with(&format!(
            "audit log intact: 40 records in {} files, anchored at seq 40",
            report.files
        )),
        "{report}"
    );
}

/// A rotated log of 40 records in several files.
fn rotated() -> super::Home {
    let h = home();
    let mut log = open(&h, Options::default().max_file_bytes(2_000));
    for i in 1..=40 {
        log.append(&event(i)).unwrap();
    }
    log.close().unwrap();
    assert!(check(&h).files > 3);
    h
}

/// Checks the log of home `h`, which must be broken.
fn broken(h: &super::Home) -> VerifyReport {
    let report = check(h);
    assert!(report.problem().is_some(), "not broken: {report}");
    report
}

/// A damaged file that is not the newest: broken there (never a torn tail, which
/// only the newest file can have), with the files read up to it counted.
#[test]
fn damage_before_the_newest_file_is_named_with_the_files_read_so_far() {
    // the first file's last line lost its newline
    let h = rotated();
    let first = super::log_path(&h, 1);
    let mut bytes = fs::read(&first).unwrap();
    assert_eq!(bytes.pop(), Some(b'\n'));
    let lines = bytes.split(|&b| b == b'\n').count() as u64;
    fs::write(&first, &bytes).unwrap();
    let report = broken(&h);
    let problem = report.problem().unwrap();
    assert_eq!(
        (problem.file.as_str(), problem.line, &problem.kind),
        ("audit-000001.jsonl", Some(lines), &ProblemKind::Incomplete),
        "{report}"
    );
    assert_eq!(report.files, 1, "{report}");

    // a line in the second file is far too long
    let h = rotated();
    super::edit_lines(&h, 2, |lines| lines[1] = "x".repeat((1 << 20) + 10));
    let report = broken(&h);
    let problem = report.problem().unwrap();
    assert_eq!(
        (problem.file.as_str(), problem.line),
        ("audit-000002.jsonl", Some(2))
    );
    assert!(
        matches!(&problem.kind, ProblemKind::Unreadable { reason } if reason.starts_with("line is longer than")),
        "{report}"
    );
    assert_eq!(report.files, 2, "{report}");

    // a record in the third file was edited
    let h = rotated();
    super::edit_lines(&h, 3, |lines| {
        lines[0] = lines[0].replacen("/v1/items/", "/v1/itemz/", 1);
    });
    let report = broken(&h);
    let problem = report.problem().unwrap();
    assert_eq!(
        (problem.file.as_str(), problem.line),
        ("audit-000003.jsonl", Some(1))
    );
    assert_eq!(report.files, 3, "{report}");
}

/// An edited record is a bad MAC wherever it is; "wrong key" is only said when the
/// very first record and the anchor both fail to verify.
#[test]
fn an_edited_first_record_is_a_bad_mac_not_a_wrong_key() {
    let h = home();
    let mut log = open(&h, Options::default());
    for i in 1..=4 {
        log.append(&event(i)).unwrap();
    }
    log.close().unwrap();
    let path = super::log_path(&h, 1);
    let original = super::read_lines(&path);

    let mut lines = original.clone();
    lines[0] = lines[0].replacen("/v1/items/1", "/v1/items/9", 1);
    super::write_lines(&path, &lines);
    let problem = check(&h).problem().cloned().unwrap();
    assert_eq!(
        (problem.line, &problem.kind),
        (Some(1), &ProblemKind::BadMac)
    );

    // the anchor's own MAC broken too, and a later record edited: still a bad MAC
    // at that record, the records before it verify with this key
    let anchor = h.state.join(airlock_audit::ANCHOR_FILE);
    let text = fs::read_to_string(&anchor).unwrap();
    let at = text.rfind(|c: char| c.is_ascii_hexdigit()).unwrap();
    let flipped = if &text[at..=at] == "0" { "1" } else { "0" };
    fs::write(
        &anchor,
        format!("{}{flipped}{}", &text[..at], &text[at + 1..]),
    )
    .unwrap();
    let mut lines = original;
    lines[2] = lines[2].replacen("/v1/items/3", "/v1/items/9", 1);
    super::write_lines(&path, &lines);
    let report = check(&h);
    let problem = report.problem().cloned().unwrap();
    assert_eq!(
        (problem.line, &problem.kind),
        (Some(3), &ProblemKind::BadMac),
        "{report}"
    );
}

/// The anchor names the file that holds the head: the anchored record moved to a
/// file of its own (the chain itself still links) is a mismatch.
#[test]
fn the_anchored_record_moved_to_another_file_is_a_mismatch() {
    let h = rotated();
    let files = check(&h).files as u64;
    let newest = super::log_path(&h, files);
    let mut lines = super::read_lines(&newest);
    let head = lines.pop().unwrap();
    super::write_lines(&newest, &lines);
    super::write_lines(&super::log_path(&h, files + 1), &[head]);
    let report = broken(&h);
    let problem = report.problem().unwrap();
    assert_eq!(
        problem.kind,
        ProblemKind::AnchorMismatch {
            anchor_file: format!("audit-{files:06}.jsonl")
        },
        "{report}"
    );
}
