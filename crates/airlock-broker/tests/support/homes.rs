//! Homes for the broker, gateway and MCP integration tests (each includes this
//! file with `#[path]`): a home with one secret, and the canary scan of a home —
//! every file under `$AIRLOCK_HOME` (audit log and anchor, state, config, vault)
//! read as bytes, none holding a canary in any form it could be written in.
#![allow(dead_code)] // each test crate uses its own subset

use std::path::{Path, PathBuf};

use airlock_home::Home;
use airlock_vault::{NewVaultKey, Vault};

/// A home at `root` whose key-file vault holds `svc` = `secret` and whose
/// `airlock.toml` is `config`.
pub(crate) fn home_with_secret(root: PathBuf, secret: &str, config: &str) -> (Home, Vault) {
    let home = Home::at(root);
    let mut vault = Vault::init(&home, NewVaultKey::KeyFile).unwrap();
    vault.insert("svc", secret.as_bytes()).unwrap();
    vault.save(&home).unwrap();
    std::fs::write(home.config_path(), config).unwrap();
    (home, vault)
}

/// Every file under `root`, as bytes (sockets, which hold nothing, aside). An
/// unreadable file or directory fails the test: a scan that skips what it cannot
/// read proves nothing.
pub(crate) fn home_files(root: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut files = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(d) = stack.pop() {
        let entries =
            std::fs::read_dir(&d).unwrap_or_else(|e| panic!("cannot list {}: {e}", d.display()));
        for e in entries {
            let e = e.unwrap();
            let (path, kind) = (e.path(), e.file_type().unwrap());
            if kind.is_dir() {
                stack.push(path);
            } else if std::os::unix::fs::FileTypeExt::is_socket(&kind) {
                // control.sock of a server: no content to scan.
            } else {
                let bytes = std::fs::read(&path)
                    .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
                files.push((path, bytes));
            }
        }
    }
    files
}

/// The forms a canary could be written in: plain, form-urlencoded, hex, standard
/// and URL-safe base64 (unpadded: a prefix of the padded form, so it finds both).
pub(crate) fn canary_forms(canary: &str) -> Vec<String> {
    let mut forms = vec![
        canary.to_string(),
        form_urlencoded(canary),
        hex(canary),
        base64(canary, false),
        base64(canary, true),
    ];
    forms.dedup();
    forms
}

/// Fails if any file under `root` holds any of `canaries` in any of its forms.
/// Checks first that `audit_dir` holds a non-empty `.jsonl` file, so the scan
/// covered the records it is about.
pub(crate) fn assert_no_canary_in_home(root: &Path, audit_dir: &Path, canaries: &[&str]) {
    let files = home_files(root);
    assert!(
        files.iter().any(|(p, b)| p.starts_with(audit_dir)
            && p.extension().is_some_and(|e| e == "jsonl")
            && !b.is_empty()),
        "no audit records under {}: the scan would prove nothing",
        root.display()
    );
    let forms: Vec<(&str, String)> = canaries
        .iter()
        .flat_map(|c| canary_forms(c).into_iter().map(move |f| (*c, f)))
        .collect();
    for (path, bytes) in &files {
        let text = String::from_utf8_lossy(bytes);
        if let Some((canary, form)) = forms.iter().find(|(_, f)| text.contains(f.as_str())) {
            panic!(
                "{} holds canary {canary:?} (as {form:?}):\n{text}",
                path.display()
            );
        }
    }
}

/// Lower-case hex of the bytes.
pub(crate) fn hex(s: &str) -> String {
    s.bytes().map(|b| format!("{b:02x}")).collect()
}

/// `application/x-www-form-urlencoded` (as the `url` crate's `byte_serialize`).
pub(crate) fn form_urlencoded(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'*' | b'-' | b'.' | b'_' => {
                char::from(b).to_string()
            }
            b' ' => "+".to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// Base64 without padding, standard or URL-safe alphabet.
pub(crate) fn base64(s: &str, url_safe: bool) -> String {
    let alphabet: &[u8; 64] = if url_safe {
        b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    } else {
        b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
    };
    let mut out = String::new();
    for c in s.as_bytes().chunks(3) {
        let n = c
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, &x)| n | u32::from(x) << (16 - 8 * i));
        for i in 0..=c.len() {
            out.push(char::from(alphabet[(n >> (18 - 6 * i) & 63) as usize]));
        }
    }
    out
}
