//! Edges the tampering tests do not reach: how a MAC reads back, an anchor that
//! exists but cannot be read, and the cap on listed requests without an outcome.
//! Found by mutation testing (docs/testing.md, "Mutation testing").

use std::fs;

use airlock_audit::{AuditError, Decision, Event, Mac, Options, verify};

use airlock_audit::FsyncPolicy;

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
            assert!(err.to_string().contains("audit anchor"), "{err}")
        }
        other => panic!("expected an I/O error naming the anchor, got {other:?}"),
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

    let h = home();
    let mut log = open(&h, Options::default().max_file_bytes(2_000));
    for i in 1..=40 {
        log.append(&event(i)).unwrap();
    }
    log.close().unwrap();
    let report = check(&h);
    assert!(
        report.to_string().starts_with(&format!(
            "audit log intact: 40 records in {} files, anchored at seq 40",
            report.files
        )),
        "{report}"
    );
}
