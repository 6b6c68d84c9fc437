//! The walk scans files as it finds them (issue 16: memory bounded by the
//! findings, not the tree): the same file reached through several given paths
//! is scanned once, a git-ignored secret file is still read (and rated as
//! ignored), and every file of a tree larger than any batch is read.
#![allow(clippy::unwrap_used)]

mod fakes;

use std::path::Path;

use airlock_scan::{ScanOptions, Scanner, scan};
use fakes::fake_stripe_live;

fn write(dir: &Path, rel: &str, text: &str) {
    let p = dir.join(rel);
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(p, text).unwrap();
}

#[test]
fn a_file_reached_through_several_paths_is_scanned_once() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    write(
        d,
        "src/config.py",
        &format!("KEY = \"{}\"\n", fake_stripe_live()),
    );
    write(d, "src/clean.py", "print('hello')\n");
    write(d, "README.md", "nothing here\n");
    let scanner = Scanner::new().unwrap();
    let once = scan(
        &scanner,
        &ScanOptions {
            paths: vec![d.to_path_buf()],
            ..ScanOptions::default()
        },
    )
    .unwrap();
    assert_eq!(once.files_scanned, 3);
    assert_eq!(once.findings.len(), 1, "{:?}", once.findings);
    let overlapping = ScanOptions {
        paths: vec![
            d.to_path_buf(),
            d.join("src"),
            d.join("src/config.py"),
            d.to_path_buf(),
        ],
        ..ScanOptions::default()
    };
    let again = scan(&scanner, &overlapping).unwrap();
    assert_eq!(again.files_scanned, 3, "a file was scanned more than once");
    assert_eq!(again.findings.len(), 1, "{:?}", again.findings);
    assert_eq!(again.bytes_scanned, once.bytes_scanned);
}

#[test]
fn every_file_of_a_large_tree_is_read_and_each_secret_found() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let n = 3000;
    for i in 0..n {
        let body = if i % 500 == 7 {
            format!("token = \"{}\"\n", fake_stripe_live())
        } else {
            format!("value_{i} = {i}\n")
        };
        write(d, &format!("d{}/f{i}.toml", i % 37), &body);
    }
    let report = scan(
        &Scanner::new().unwrap(),
        &ScanOptions {
            paths: vec![d.to_path_buf()],
            ..ScanOptions::default()
        },
    )
    .unwrap();
    assert_eq!(report.files_scanned, n);
    let mut files: Vec<&str> = report.findings.iter().map(|f| f.file.as_str()).collect();
    files.dedup();
    assert_eq!(files.len(), n / 500, "{files:?}");
    // Sorted by file, as before the walk streamed.
    let mut sorted = files.clone();
    sorted.sort();
    assert_eq!(files, sorted);
}
