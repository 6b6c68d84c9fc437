//! No input may make the scanner panic, whatever the file name says it is.
#![no_main]

use std::path::Path;
use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;

static SCANNER: OnceLock<Option<airlock_scan::Scanner>> = OnceLock::new();

/// File names that select every reader: the first byte of the input picks one.
const NAMES: &[&str] = &[
    "plain.txt", ".env", "config.json", "values.yaml", "config.toml", "notebook.ipynb",
    ".mcp.json", ".codex/config.toml", "src/main.rs", "secret.yaml", ".docker/config.json",
];

fuzz_target!(|data: &[u8]| {
    let Some(scanner) = SCANNER.get_or_init(|| airlock_scan::Scanner::new().ok()).as_ref() else {
        return;
    };
    let (name, body) = match data.split_first() {
        Some((b, rest)) => (NAMES[*b as usize % NAMES.len()], rest),
        None => (NAMES[0], data),
    };
    for f in scanner.scan_bytes(Path::new(name), body) {
        assert!(f.line >= 1 && f.column >= 1);
        assert_eq!(f.fingerprint.len(), 32);
    }
});
