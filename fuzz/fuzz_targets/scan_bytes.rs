//! No input may make the scanner panic, whatever the file name says it is; the
//! scanner itself must build (a build error fails the target instead of fuzzing nothing).
#![no_main]

use std::path::Path;
use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;

static SCANNER: OnceLock<airlock_scan::Scanner> = OnceLock::new();

/// File names that select every reader: the first byte of the input picks one.
const NAMES: &[&str] = &[
    "plain.txt",
    ".env",
    "config.json",
    "values.yaml",
    "config.toml",
    "notebook.ipynb",
    ".mcp.json",
    ".codex/config.toml",
    "src/main.rs",
    "secret.yaml",
    ".docker/config.json",
];

fuzz_target!(|data: &[u8]| {
    // The built-in rules must compile: a scanner that fails to build would fuzz nothing.
    let scanner = SCANNER.get_or_init(|| match airlock_scan::Scanner::new() {
        Ok(s) => s,
        Err(e) => panic!("the scanner's built-in rules do not build: {e}"),
    });
    let (name, body) = match data.split_first() {
        Some((b, rest)) => (NAMES[*b as usize % NAMES.len()], rest),
        None => (NAMES[0], data),
    };
    for f in scanner.scan_bytes(Path::new(name), body) {
        assert!(f.line >= 1 && f.column >= 1);
        assert_eq!(f.fingerprint.len(), 32);
    }
});
