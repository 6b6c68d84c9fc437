//! The `airlock` binary end to end, on a temporary AIRLOCK_HOME: every command,
//! every bad input (exit 2, one line, nothing changed), canaries, concurrency and
//! crash safety.

#![allow(clippy::unwrap_used, clippy::type_complexity)]

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Output;

use airlock_home::Home;
use airlock_vault::LockedVault;
use base64::Engine as _;
use secrecy::ExposeSecret;

mod common;
use common::{audit_jsonl, find_named, output_with_stdin};

/// One temporary airlock home and a way to run the real binary against it.
struct Env {
    dir: tempfile::TempDir,
}

struct Out {
    code: i32,
    stdout: String,
    stderr: String,
}

impl Out {
    #[track_caller]
    fn ok(self) -> Out {
        assert_eq!(
            self.code, 0,
            "expected success\nstdout: {}\nstderr: {}",
            self.stdout, self.stderr
        );
        self
    }

    /// Exit 2 with exactly one line on stderr that starts with `error:` and
    /// contains `needle`; nothing on stdout.
    #[track_caller]
    fn usage_error(self, needle: &str) -> Out {
        assert_eq!(
            self.code, 2,
            "expected exit 2\nstdout: {}\nstderr: {}",
            self.stdout, self.stderr
        );
        let lines: Vec<&str> = self
            .stderr
            .lines()
            .filter(|l| !l.starts_with("warning:"))
            .collect();
        assert_eq!(lines.len(), 1, "stderr is not one line: {:?}", self.stderr);
        assert!(lines[0].starts_with("error: "), "{:?}", self.stderr);
        assert!(
            self.stderr.contains(needle),
            "stderr {:?} lacks {needle:?}",
            self.stderr
        );
        assert!(!self.stderr.contains("panicked"), "{}", self.stderr);
        self
    }
}

impl Env {
    fn new() -> Env {
        Env {
            dir: tempfile::tempdir().expect("tempdir"),
        }
    }

    fn home_path(&self) -> PathBuf {
        self.dir.path().join("home")
    }

    fn home(&self) -> Home {
        Home::at(self.home_path())
    }

    fn cmd(&self, args: &[&str]) -> std::process::Command {
        let mut c = std::process::Command::new(env!("CARGO_BIN_EXE_airlock"));
        c.args(args)
            .env("AIRLOCK_HOME", self.home_path())
            .env_remove("AIRLOCK_PASSPHRASE")
            .env_remove("DBUS_SESSION_BUS_ADDRESS")
            .env("AIRLOCK_LOCK_TIMEOUT_MS", "3000")
            .stdin(std::process::Stdio::null());
        c
    }

    fn run(&self, args: &[&str]) -> Out {
        self.run_with(args, &[], None)
    }

    fn run_with(&self, args: &[&str], env: &[(&str, &str)], stdin: Option<&[u8]>) -> Out {
        let mut c = self.cmd(args);
        for (k, v) in env {
            c.env(k, v);
        }
        let output: Output = match stdin {
            None => c.output().expect("run airlock"),
            // airlock may stop reading early (size cap); a broken pipe is fine.
            Some(data) => output_with_stdin(&mut c, data),
        };
        Out {
            code: output.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        }
    }

    /// `run` that must be refused as a usage error naming `needle` (`Out::usage_error`).
    #[track_caller]
    fn refused(&self, args: &[&str], needle: &str) -> Out {
        self.run(args).usage_error(needle)
    }

    /// A new directory `name` next to the home (outside it); its path.
    fn new_dir(&self, name: &str) -> PathBuf {
        let dir = self.dir.path().join(name);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    fn init(&self) {
        self.run(&["init"]).ok();
    }

    /// `add` with `--cap`: the service and a capability of the same name.
    fn add(&self, name: &str, key: &str) {
        self.run_with(
            &[
                "add",
                name,
                "--url",
                "https://api.example.com",
                "--key-from-env",
                "K",
                "--cap",
            ],
            &[("K", key)],
            None,
        )
        .ok();
    }

    /// A byte-for-byte snapshot of every file in the home, to prove a failed
    /// command changed nothing.
    fn snapshot(&self) -> Vec<(PathBuf, Vec<u8>)> {
        let mut out = Vec::new();
        walk(&self.home_path(), &mut out);
        out.retain(|(p, _)| !p.ends_with(".lock"));
        out.sort();
        out
    }

    fn secret(&self, name: &str) -> Vec<u8> {
        let home = self.home();
        let v = LockedVault::load(&home)
            .unwrap()
            .unlock_with_key_file(&home)
            .unwrap();
        v.get(name).unwrap().expose_secret().to_vec()
    }

    fn secret_names(&self) -> BTreeSet<String> {
        let home = self.home();
        let v = LockedVault::load(&home)
            .unwrap()
            .unlock_with_key_file(&home)
            .unwrap();
        v.list().into_iter().map(|s| s.name).collect()
    }
}

fn walk(dir: &Path, out: &mut Vec<(PathBuf, Vec<u8>)>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let p = e.path();
        if p.is_dir() {
            walk(&p, out);
        } else if let Ok(bytes) = std::fs::read(&p) {
            out.push((p, bytes));
        }
    }
}

fn mode(p: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(p).unwrap().permissions().mode() & 0o777
}

// ---------------------------------------------------------------- init

#[test]
fn init_creates_a_private_home_with_a_key_file() {
    let t = Env::new();
    let out = t.run(&["init"]).ok();
    assert!(out.stdout.contains("key-file mode"), "{}", out.stdout);
    let home = t.home();
    assert_eq!(mode(home.root()), 0o700);
    assert_eq!(mode(&home.master_key_path()), 0o600);
    assert_eq!(mode(&home.vault_path()), 0o600);
    assert_eq!(std::fs::read(home.master_key_path()).unwrap().len(), 32);
    assert!(home.config_path().exists());
}

#[test]
fn init_twice_keeps_the_vault_and_its_secrets() {
    let t = Env::new();
    t.init();
    t.add("stripe", "sk_test_keepme");
    let before = t.snapshot();
    let out = t.run(&["init"]).ok();
    assert!(out.stdout.contains("already initialized"), "{}", out.stdout);
    t.run_with(
        &["init", "--passphrase"],
        &[("AIRLOCK_PASSPHRASE", "x")],
        None,
    )
    .usage_error("already initialized");
    assert_eq!(t.snapshot(), before);
    assert_eq!(t.secret("stripe"), b"sk_test_keepme");
}

#[test]
fn passphrase_mode_works_non_interactively_and_refuses_a_wrong_passphrase() {
    let t = Env::new();
    let pass = [("AIRLOCK_PASSPHRASE", "hunter2 but longer")];
    t.run_with(&["init", "--passphrase"], &pass, None).ok();
    assert!(!t.home().master_key_path().exists());
    t.run_with(
        &["secret", "set", "k", "--from-env", "V"],
        &[pass[0], ("V", "value-1")],
        None,
    )
    .ok();
    let out = t.run_with(&["secret", "list", "--json"], &pass, None).ok();
    assert!(out.stdout.contains("\"k\""), "{}", out.stdout);
    let before = t.snapshot();
    t.run_with(
        &["secret", "list"],
        &[("AIRLOCK_PASSPHRASE", "wrong")],
        None,
    )
    .usage_error("wrong passphrase");
    t.run(&["secret", "list"]).usage_error("AIRLOCK_PASSPHRASE");
    t.run(&["init", "--passphrase"]).ok(); // same mode: says so, changes nothing
    assert_eq!(t.snapshot(), before);
}

#[test]
fn init_passphrase_without_a_terminal_or_variable_is_an_input_error() {
    let t = Env::new();
    t.refused(&["init", "--passphrase"], "AIRLOCK_PASSPHRASE");
    assert!(!t.home().vault_path().exists());
}

#[test]
fn keyring_on_a_headless_machine_names_the_alternatives() {
    let t = Env::new();
    let out = t.refused(&["init", "--keyring"], "keyring is not available");
    assert!(
        out.stderr.contains("airlock init --passphrase"),
        "{}",
        out.stderr
    );
    assert!(!t.home().vault_path().exists());
}

// ---------------------------------------------------------------- add / list / remove

#[test]
fn add_then_list_shows_service_and_its_capability() {
    let t = Env::new();
    t.init();
    t.add("stripe", "sk_test_123");
    let out = t.run(&["list", "--json"]).ok();
    let v: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(v["services"][0]["name"], "stripe");
    assert_eq!(v["services"][0]["url"], "https://api.example.com");
    assert_eq!(v["services"][0]["auth"], "bearer");
    assert_eq!(v["capabilities"][0]["name"], "stripe");
    assert_eq!(v["capabilities"][0]["ttl"], "1h");
    assert_eq!(v["capabilities"][0]["ttl_seconds"], 3600);
    let table = t.run(&["list"]).ok().stdout;
    assert!(
        table.contains("stripe") && table.contains("https://api.example.com"),
        "{table}"
    );
    assert_eq!(t.secret("stripe"), b"sk_test_123");
}

#[test]
fn add_on_a_fresh_machine_initializes_and_says_so() {
    let t = Env::new();
    let out = t.run_with(
        &[
            "add",
            "gh",
            "--url",
            "https://api.github.com",
            "--key-stdin",
        ],
        &[],
        Some(b"ghp_x\n"),
    );
    let out = out.ok();
    assert!(
        out.stderr.contains("initialized a new airlock home"),
        "{}",
        out.stderr
    );
    assert_eq!(t.secret("gh"), b"ghp_x", "one trailing newline is stripped");
}

#[test]
fn add_with_literal_key_warns_about_shell_history() {
    let t = Env::new();
    t.init();
    let out = t
        .run(&["add", "s", "--url", "https://x.example", "--key", "abc"])
        .ok();
    assert!(out.stderr.contains("shell history"), "{}", out.stderr);
    assert_eq!(t.secret("s"), b"abc");
}

#[test]
fn add_bad_inputs_are_one_line_errors_that_change_nothing() {
    let t = Env::new();
    t.init();
    t.add("stripe", "sk_test_1");
    // A secret no service uses, as an interrupted `add` leaves behind.
    let set = t.run_with(
        &["secret", "set", "orphan", "--from-env", "V"],
        &[("V", "sk_test_orphan")],
        None,
    );
    assert_eq!(set.code, 0, "{}", set.stderr);
    let before = t.snapshot();
    let url = ["--url", "https://api.example.com"];
    let cases: Vec<(Vec<&str>, Vec<(&str, &str)>, &str)> = vec![
        (
            vec!["add", "x", "--url", "not a url", "--key", "k"],
            vec![],
            "invalid URL",
        ),
        (
            vec!["add", "x", "--url", "ftp://x.example", "--key", "k"],
            vec![],
            "https://",
        ),
        (
            vec!["add", "x", "--url", "https://u:p@x.example", "--key", "k"],
            vec![],
            "credentials",
        ),
        (
            vec!["add", "x", "--url", "https://x.example?a=1", "--key", "k"],
            vec![],
            "query",
        ),
        (
            vec!["add", "x", url[0], url[1], "--auth", "magic", "--key", "k"],
            vec![],
            "unknown auth type \"magic\"",
        ),
        (
            vec!["add", "x", url[0], url[1], "--key-from-env", "NOPE_UNSET"],
            vec![],
            "NOPE_UNSET is not set",
        ),
        (
            vec!["add", "x", url[0], url[1], "--key-from-env", "EMPTY"],
            vec![("EMPTY", "")],
            "empty",
        ),
        (
            vec!["add", "x", url[0], url[1]],
            vec![],
            "--key-from-env VAR or --key-stdin",
        ),
        (vec!["add", "x", "--key", "k"], vec![], "--url"),
        (
            vec!["add", "stripe", url[0], url[1], "--key", "k"],
            vec![],
            "already exists",
        ),
        (
            vec!["add", "orphan", url[0], url[1], "--key", "k"],
            vec![],
            "run `airlock secret rm orphan` and add again",
        ),
        (
            vec!["add", "bad name", url[0], url[1], "--key", "k"],
            vec![],
            "invalid service name",
        ),
        (vec!["add", "-x", url[0], url[1], "--key", "k"], vec![], ""),
    ];
    for (args, env, needle) in cases {
        let out = t.run_with(&args, &env, None);
        assert_eq!(out.code, 2, "{args:?}: {}", out.stderr);
        if !needle.is_empty() {
            out.usage_error(needle);
        }
        assert_eq!(t.snapshot(), before, "{args:?} changed the home");
    }
    // conflicting key sources are refused by the parser
    let out = t.run(&["add", "y", url[0], url[1], "--key", "a", "--key-stdin"]);
    assert_eq!(out.code, 2);
    assert_eq!(t.snapshot(), before);
}

#[test]
fn remove_takes_service_capabilities_and_its_secret() {
    let t = Env::new();
    t.init();
    t.add("stripe", "sk_test_1");
    t.add("other", "o");
    t.run(&[
        "cap",
        "add",
        "stripe_ro",
        "--service",
        "stripe",
        "--allow",
        "GET /v1/**",
    ])
    .ok();
    let before = t.snapshot();
    // No terminal and no --yes: refused, nothing removed.
    t.run(&["remove", "stripe"]).usage_error("--yes");
    assert_eq!(t.snapshot(), before);
    t.refused(&["remove", "nope", "--yes"], "unknown service \"nope\"");
    let out = t.run(&["remove", "stripe", "--yes"]).ok();
    assert!(out.stdout.contains("stripe_ro"), "{}", out.stdout);
    let v: serde_json::Value =
        serde_json::from_str(&t.run(&["list", "--json"]).ok().stdout).unwrap();
    assert_eq!(v["services"].as_array().unwrap().len(), 1);
    assert_eq!(v["capabilities"].as_array().unwrap().len(), 1);
    assert_eq!(t.secret_names(), BTreeSet::from(["other".to_string()]));
}

// ---------------------------------------------------------------- cap

#[test]
fn cap_add_stores_every_option_and_list_shows_it() {
    let t = Env::new();
    t.init();
    t.add("stripe", "k");
    t.run(&[
        "cap",
        "add",
        "ro",
        "--service",
        "stripe",
        "--ttl",
        "15m",
        "--allow",
        "get /v1/**",
        "--deny",
        "* /v1/charges/**",
        "--agents",
        "claude-desktop,cursor",
        "--requires-reason",
        "--approval",
        "--rate",
        "60/min",
    ])
    .ok();
    let out = t.run(&["cap", "list", "--json"]).ok();
    let caps: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    let ro = find_named(&caps, "name", "ro");
    assert_eq!(ro["ttl"], "15m");
    assert_eq!(ro["allow"][0], "get /v1/**");
    assert_eq!(ro["deny"][0], "* /v1/charges/**");
    assert_eq!(ro["agents"][1], "cursor");
    assert_eq!(ro["requires_reason"], true);
    assert_eq!(ro["approval"], "always");
    assert_eq!(ro["rate"], "60/min");
    let cfg = std::fs::read_to_string(t.home().config_path()).unwrap();
    assert!(cfg.contains("[capabilities.ro]"), "{cfg}");
    t.run(&["cap", "remove", "ro"]).ok();
    t.refused(&["cap", "remove", "ro"], "unknown capability \"ro\"");
}

#[test]
fn cap_add_bad_inputs_are_refused_and_change_nothing() {
    let t = Env::new();
    t.init();
    t.add("stripe", "k");
    let before = t.snapshot();
    let base = ["cap", "add", "c", "--service", "stripe"];
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (
            vec!["cap", "add", "c", "--service", "nope"],
            "unknown service \"nope\"",
        ),
        (
            [&base[..], &["--allow", "GET v1"]].concat(),
            "must start with '/'",
        ),
        ([&base[..], &["--allow", "FETCH /v1"]].concat(), "FETCH"),
        (
            [&base[..], &["--deny", "GET /v1/../admin"]].concat(),
            "deny rule",
        ),
        ([&base[..], &["--rate", "fast"]].concat(), "60/min"),
        (
            [&base[..], &["--ttl", "forever"]].concat(),
            "invalid duration",
        ),
        ([&base[..], &["--ttl", "0s"]].concat(), "greater than zero"),
        (
            [&base[..], &["--agents", "a b"]].concat(),
            "invalid agent name",
        ),
        (
            vec!["cap", "add", "stripe", "--service", "stripe"],
            "already exists",
        ),
        (
            vec!["cap", "add", "a/b", "--service", "stripe"],
            "invalid capability name",
        ),
    ];
    for (args, needle) in cases {
        let out = t.run(&args);
        assert!(
            !out.stderr.contains("airlock.toml:"),
            "flag errors should not point into the file: {}",
            out.stderr
        );
        out.usage_error(needle);
        assert_eq!(t.snapshot(), before, "{args:?} changed the home");
    }
}

// ---------------------------------------------------------------- secret

#[test]
fn secret_lifecycle_never_shows_the_value() {
    let t = Env::new();
    t.init();
    let value = "s3cr3t-value-zq9";
    t.run_with(
        &["secret", "set", "db", "--from-env", "V"],
        &[("V", value)],
        None,
    )
    .ok();
    t.run_with(&["secret", "set", "db", "--stdin"], &[], Some(b"x"))
        .usage_error("secret rotate db");
    let list1 = t.run(&["secret", "list", "--json"]).ok().stdout;
    let v: serde_json::Value = serde_json::from_str(&list1).unwrap();
    assert_eq!(v[0]["name"], "db");
    assert_eq!(v[0]["version"], 1);
    assert!(v[0]["rotated"].is_null());
    let fp1 = v[0]["fingerprint"].as_str().unwrap().to_string();
    t.run_with(
        &["secret", "rotate", "db", "--stdin"],
        &[],
        Some(b"new-value\n"),
    )
    .ok();
    let v: serde_json::Value =
        serde_json::from_str(&t.run(&["secret", "list", "--json"]).ok().stdout).unwrap();
    assert_eq!(v[0]["version"], 2);
    assert!(v[0]["rotated"].is_string());
    assert_ne!(v[0]["fingerprint"].as_str().unwrap(), fp1);
    assert_eq!(t.secret("db"), b"new-value");
    let table = t.run(&["secret", "list"]).ok().stdout;
    assert!(
        table.contains("db") && table.contains(&v[0]["fingerprint"].as_str().unwrap()[..12]),
        "{table}"
    );
    assert!(!table.contains("new-value") && !list1.contains(value));
    t.refused(
        &["secret", "rotate", "nope", "--stdin"],
        "no secret named \"nope\"",
    );
    t.run(&["secret", "rm", "db"]).ok();
    t.refused(&["secret", "rm", "db"], "no secret named \"db\"");
}

#[test]
fn secret_bad_inputs() {
    let t = Env::new();
    t.init();
    t.add("stripe", "k");
    let before = t.snapshot();
    t.refused(&["secret", "rm", "stripe"], "used by service stripe");
    t.refused(
        &["secret", "set", "x", "--from-env", "UNSET_VAR_X"],
        "UNSET_VAR_X is not set",
    );
    t.refused(&["secret", "set", "x"], "--from-env VAR or --stdin");
    t.run_with(&["secret", "set", "x", "--stdin"], &[], Some(b""))
        .usage_error("empty");
    t.run_with(
        &["secret", "set", "x", "--stdin"],
        &[],
        Some(&vec![b'a'; 70_000]),
    )
    .usage_error("64 KiB");
    t.run_with(&["secret", "set", "../x", "--stdin"], &[], Some(b"v"))
        .usage_error("invalid name");
    assert_eq!(t.snapshot(), before);
}

#[test]
fn version_flag() {
    let out = Env::new().run(&["--version"]).ok();
    assert!(out.stdout.starts_with("airlock "), "{}", out.stdout);
}

// ---------------------------------------------------------------- broken homes

#[test]
fn a_corrupt_config_is_named_with_line_and_column_and_left_alone() {
    let t = Env::new();
    t.init();
    t.add("stripe", "k");
    let cfg = t.home().config_path();
    let mut text = std::fs::read_to_string(&cfg).unwrap();
    text.push_str("\n[capabilities.broken]\nservice = \"stripe\"\nttl = \"soon\"\n");
    std::fs::write(&cfg, &text).unwrap();
    let before = t.snapshot();
    let out = t.run(&["list"]).usage_error("airlock.toml:");
    assert!(
        out.stderr.contains("ttl: invalid duration \"soon\""),
        "{}",
        out.stderr
    );
    t.refused(&["cap", "add", "c", "--service", "stripe"], "airlock.toml:");
    t.run_with(
        &["add", "n", "--url", "https://n.example", "--key-stdin"],
        &[],
        Some(b"v"),
    )
    .usage_error("airlock.toml:");
    assert_eq!(t.snapshot(), before);
}

#[test]
fn a_corrupt_vault_is_reported_and_not_rewritten() {
    let t = Env::new();
    t.init();
    t.add("stripe", "k");
    let vault = t.home().vault_path();
    let mut bytes = std::fs::read(&vault).unwrap();
    bytes.truncate(bytes.len() / 2);
    std::fs::write(&vault, &bytes).unwrap();
    let before = t.snapshot();
    t.refused(&["secret", "list"], "vault file is corrupt");
    t.run_with(&["secret", "set", "n", "--stdin"], &[], Some(b"v"))
        .usage_error("vault file is corrupt");
    t.run(&["init"]).usage_error("vault file is corrupt"); // never replaces it
    assert_eq!(t.snapshot(), before);
}

#[test]
fn a_vault_written_by_a_newer_airlock_asks_for_an_upgrade() {
    let t = Env::new();
    t.init();
    let vault = t.home().vault_path();
    let text = std::fs::read_to_string(&vault)
        .unwrap()
        .replace("\"version\": 1,", "\"version\": 99,");
    std::fs::write(&vault, text).unwrap();
    t.run(&["secret", "list"]).usage_error("upgrade airlock");
}

#[test]
fn loose_permissions_are_refused_with_the_chmod_remedy() {
    use std::os::unix::fs::PermissionsExt;
    let t = Env::new();
    t.init();
    let key = t.home().master_key_path();
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).unwrap();
    t.run(&["secret", "list"]).usage_error("chmod 600");
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).unwrap();
    std::fs::set_permissions(t.home().root(), std::fs::Permissions::from_mode(0o755)).unwrap();
    t.run_with(&["secret", "set", "a", "--stdin"], &[], Some(b"v"))
        .usage_error("chmod 700");
}

#[test]
fn a_missing_or_unreadable_key_file_is_an_input_error() {
    let t = Env::new();
    t.init();
    let key = t.home().master_key_path();
    std::fs::write(&key, b"short").unwrap();
    t.refused(&["secret", "list"], "not a valid key file");
    std::fs::remove_file(&key).unwrap();
    std::fs::create_dir(&key).unwrap(); // unreadable as a file, even for root
    t.run(&["secret", "list"]).usage_error("master.key");
}

#[test]
fn an_uninitialized_home_says_run_init() {
    let t = Env::new();
    t.run(&["secret", "list"]).usage_error("airlock init");
    t.run(&["secret", "rm", "x"]).usage_error("airlock init");
    assert!(!t.home().vault_path().exists());
}

#[test]
fn a_vault_locked_by_another_process_is_reported() {
    let t = Env::new();
    t.init();
    let lock = std::fs::OpenOptions::new()
        .write(true)
        .open(t.home().lock_path())
        .unwrap();
    lock.lock().unwrap();
    t.run_with(
        &["secret", "set", "a", "--stdin"],
        &[("AIRLOCK_LOCK_TIMEOUT_MS", "100")],
        Some(b"v"),
    )
    .usage_error("locked by another airlock process");
    drop(lock);
    t.run_with(&["secret", "set", "a", "--stdin"], &[], Some(b"v"))
        .ok();
}

// ---------------------------------------------------------------- canaries

/// Strings under which `secret` could leak: plain, base64 and base64url at every
/// alignment, URL-encoded, hex.
fn leak_forms(secret: &[u8]) -> Vec<String> {
    let mut forms = vec![String::from_utf8_lossy(secret).into_owned()];
    for engine in [
        &base64::engine::general_purpose::STANDARD,
        &base64::engine::general_purpose::URL_SAFE_NO_PAD,
    ] {
        for pad in 0..3 {
            let mut data = vec![b'~'; pad];
            data.extend_from_slice(secret);
            let enc = engine.encode(&data);
            // Drop the characters that mix in the prefix and the final partial group.
            let start = (pad * 4).div_ceil(3) + 1;
            let end = enc.trim_end_matches('=').len().saturating_sub(4);
            if end > start {
                forms.push(enc[start..end].to_string());
            }
        }
    }
    let url: String = secret
        .iter()
        .map(|b| {
            if b.is_ascii_alphanumeric() {
                (*b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect();
    forms.push(url);
    forms.push(hex::encode(secret));
    forms
}

#[test]
fn canary_secrets_never_appear_in_any_file_or_output() {
    let t = Env::new();
    let mut outputs = String::new();
    let mut canaries = Vec::new();
    let mut canary = |tag: &str| {
        let mut bytes = [0u8; 18];
        getrandom::fill(&mut bytes).unwrap();
        let c = format!(
            "canary-{tag}-{}",
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
        );
        canaries.push(c.clone());
        c
    };
    let (a, b, c, d, e, f) = (
        canary("env"),
        canary("stdin"),
        canary("lit"),
        canary("set"),
        canary("setin"),
        canary("rot"),
    );
    let mut log = |o: Out| {
        outputs.push_str(&o.stdout);
        outputs.push_str(&o.stderr);
        o.ok();
    };
    log(t.run(&["init"]));
    log(t.run_with(
        &[
            "add",
            "a",
            "--url",
            "https://a.example",
            "--key-from-env",
            "K",
        ],
        &[("K", &a)],
        None,
    ));
    log(t.run_with(
        &["add", "b", "--url", "https://b.example", "--key-stdin"],
        &[],
        Some(b.as_bytes()),
    ));
    log(t.run(&["add", "c", "--url", "https://c.example", "--key", &c]));
    log(t.run_with(
        &["secret", "set", "d", "--from-env", "V"],
        &[("V", &d)],
        None,
    ));
    log(t.run_with(&["secret", "set", "e", "--stdin"], &[], Some(e.as_bytes())));
    log(t.run_with(
        &["secret", "rotate", "e", "--stdin"],
        &[],
        Some(f.as_bytes()),
    ));
    log(t.run(&["list"]));
    log(t.run(&["list", "--json"]));
    log(t.run(&["secret", "list"]));
    log(t.run(&["secret", "list", "--json"]));
    log(t.run(&["cap", "list", "--json"]));
    // Failed commands print errors: those must not leak either.
    let o = t.run_with(
        &["secret", "set", "d", "--from-env", "V"],
        &[("V", &d)],
        None,
    );
    outputs.push_str(&o.stderr);
    let o = t.run(&["add", "a", "--url", "https://a.example", "--key", &a]);
    outputs.push_str(&o.stderr);

    let files = t.snapshot();
    assert!(files.len() >= 3);
    for secret in &canaries {
        for form in leak_forms(secret.as_bytes()) {
            assert!(!outputs.contains(&form), "output leaks {secret} as {form}");
            for (path, bytes) in &files {
                let text = String::from_utf8_lossy(bytes);
                assert!(
                    !text.contains(&form),
                    "{} leaks {secret} as {form}",
                    path.display()
                );
            }
        }
    }
    // And the values really are stored.
    assert_eq!(t.secret("c"), c.as_bytes());
    assert_eq!(t.secret("e"), f.as_bytes());
}

// ---------------------------------------------------------------- concurrency and crashes

#[test]
fn two_processes_writing_at_once_lose_nothing() {
    let t = Env::new();
    t.init();
    std::thread::scope(|s| {
        for w in 0..2 {
            let t = &t;
            s.spawn(move || {
                for i in 0..100 {
                    let name = format!("w{w}-{i}");
                    t.run_with(
                        &["secret", "set", &name, "--stdin"],
                        &[("AIRLOCK_LOCK_TIMEOUT_MS", "30000")],
                        Some(name.as_bytes()),
                    )
                    .ok();
                }
            });
        }
    });
    let names = t.secret_names();
    assert_eq!(names.len(), 200, "lost writes");
    assert_eq!(t.secret("w1-99"), b"w1-99");
}

/// A writer killed with SIGKILL at random instants: the vault always opens and
/// every write that reported success is there.
#[test]
fn sigkill_at_random_moments_never_loses_an_acknowledged_write() {
    let t = Env::new();
    t.init();
    let mut acknowledged = Vec::new();
    let mut rng_state = {
        let mut seed = [0u8; 8];
        getrandom::fill(&mut seed).unwrap();
        u64::from_le_bytes(seed) | 1
    };
    let mut next = move || {
        rng_state ^= rng_state << 13;
        rng_state ^= rng_state >> 7;
        rng_state ^= rng_state << 17;
        rng_state
    };
    let mut kills = 0;
    let mut i = 0;
    while kills < 200 {
        i += 1;
        assert!(
            i < 2000,
            "only {kills} kills in {i} runs; the writer finishes too fast to interrupt"
        );
        let name = format!("k{i}");
        let mut child = t
            .cmd(&["secret", "set", &name, "--from-env", "V"])
            .env("V", &name)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        // Most runs take a few ms; spread the kills across the whole run.
        std::thread::sleep(std::time::Duration::from_micros(next() % 6000));
        let killed = child.kill().is_ok();
        let status = child.wait().unwrap();
        if status.success() {
            acknowledged.push(name);
        } else if killed {
            kills += 1;
        }
        if i % 20 == 19 {
            let present = t.secret_names();
            for a in &acknowledged {
                assert!(
                    present.contains(a),
                    "acknowledged write {a} lost after {kills} kills"
                );
            }
        }
    }
    let present = t.secret_names();
    for a in &acknowledged {
        assert!(present.contains(a), "acknowledged write {a} lost");
        assert_eq!(t.secret(a), a.as_bytes());
    }
}

// ---------------------------------------------------------------- scan

#[test]
fn scan_reports_an_exposed_key_with_exit_1_and_json() {
    let t = Env::new();
    let dir = t.new_dir("project");
    // Assembled at run time so this repository does not itself hold a key.
    let key = format!("sk_live_{}", "4eC39HqLyjWDarjtT1zdp7dc9Q2Xv");
    std::fs::write(dir.join(".env"), format!("STRIPE_KEY={key}\n")).unwrap();
    std::fs::write(dir.join("clean.txt"), "nothing here\n").unwrap();
    let out = t.run(&["scan", dir.to_str().unwrap(), "--format", "json"]);
    assert_eq!(out.code, 1, "{}", out.stderr);
    let findings: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    let f = &findings.as_array().unwrap()[0];
    assert!(f["file"].as_str().unwrap().ends_with(".env"), "{f}");
    assert!(
        !out.stdout.contains(&key),
        "the finding shows the whole key"
    );
    let out = t.run(&["scan", dir.join("clean.txt").to_str().unwrap()]);
    assert_eq!(out.code, 0, "{}", out.stdout);
    t.refused(&["scan", "/definitely/not/here"], "does not exist");
}

// ---------------------------------------------------------------- auth types and templates

#[test]
fn templates_fill_url_auth_and_read_only_rules() {
    let t = Env::new();
    t.run_with(
        &["add", "stripe", "--key-from-env", "K", "--cap"],
        &[("K", "sk_test_x")],
        None,
    )
    .ok();
    t.run_with(
        &["add", "anthropic", "--key-from-env", "K"],
        &[("K", "sk-ant-x")],
        None,
    )
    .ok();
    t.run_with(
        &[
            "add",
            "mys3",
            "--template",
            "aws-s3",
            "--region",
            "eu-west-1",
            "--access-key-id-from-env",
            "A",
            "--secret-access-key-from-env",
            "S",
        ],
        &[("A", "AKIAX"), ("S", "secretx")],
        None,
    )
    .ok();
    let v: serde_json::Value =
        serde_json::from_str(&t.run(&["list", "--json"]).ok().stdout).unwrap();
    let svc = |n: &str| find_named(&v["services"], "name", n);
    let cap = |n: &str| find_named(&v["capabilities"], "name", n);
    assert_eq!(svc("stripe")["url"], "https://api.stripe.com");
    assert_eq!(cap("stripe")["allow"], serde_json::json!(["GET /v1/**"]));
    assert_eq!(svc("anthropic")["auth"], "header");
    assert_eq!(svc("mys3")["url"], "https://s3.eu-west-1.amazonaws.com");
    assert_eq!(svc("mys3")["auth"], "aws-sigv4");
    assert_eq!(
        svc("mys3")["secrets"],
        serde_json::json!(["mys3.access_key_id", "mys3.secret_access_key"])
    );
    assert_eq!(t.secret("mys3.secret_access_key"), b"secretx");
    let cfg = std::fs::read_to_string(t.home().config_path()).unwrap();
    assert!(cfg.contains("header_name = \"x-api-key\""), "{cfg}");
    let found = t.run(&["search", "aws", "--json"]).ok().stdout;
    let found: serde_json::Value = serde_json::from_str(&found).unwrap();
    assert!(found.as_array().unwrap().len() >= 2);
    assert!(t.run(&["search"]).ok().stdout.contains("huggingface"));
}

#[test]
fn every_auth_type_can_be_added_from_flags() {
    let t = Env::new();
    let dir = t.dir.path();
    std::fs::write(
        dir.join("app.pem"),
        "-----BEGIN PRIVATE KEY-----\nMIIB\n-----END PRIVATE KEY-----\n",
    )
    .unwrap();
    std::fs::write(dir.join("sa.json"), "{\"type\":\"service_account\"}").unwrap();
    let pem = dir.join("app.pem");
    let sa = dir.join("sa.json");
    let u = "https://api.example.com";
    let cases: Vec<(Vec<&str>, Vec<(&str, &str)>, &str)> = vec![
        (
            vec![
                "add",
                "b1",
                "--url",
                u,
                "--auth",
                "basic",
                "--username",
                "me",
                "--password-from-env",
                "P",
            ],
            vec![("P", "pw")],
            "basic",
        ),
        (
            vec![
                "add",
                "h1",
                "--url",
                u,
                "--auth",
                "header",
                "--header-name",
                "X-Api-Key",
                "--key-from-env",
                "K",
            ],
            vec![("K", "k")],
            "header",
        ),
        (
            vec![
                "add",
                "q1",
                "--url",
                u,
                "--auth",
                "query",
                "--param",
                "api_key",
                "--key-from-env",
                "K",
            ],
            vec![("K", "k")],
            "query",
        ),
        (
            vec![
                "add",
                "o1",
                "--url",
                u,
                "--auth",
                "oauth1",
                "--consumer-key-from-env",
                "A",
                "--consumer-secret-from-env",
                "B",
                "--token-from-env",
                "C",
                "--token-secret-from-env",
                "D",
            ],
            vec![("A", "a"), ("B", "b"), ("C", "c"), ("D", "d")],
            "oauth1",
        ),
        (
            vec![
                "add",
                "g1",
                "--url",
                u,
                "--auth",
                "github-app",
                "--app-id",
                "123",
                "--installation-id",
                "456",
                "--pem-file",
                pem.to_str().unwrap(),
            ],
            vec![],
            "github-app",
        ),
        (
            vec![
                "add",
                "c1",
                "--url",
                u,
                "--auth",
                "gcp-service-account",
                "--json-file",
                sa.to_str().unwrap(),
                "--scopes",
                "https://www.googleapis.com/auth/cloud-platform",
            ],
            vec![],
            "gcp-service-account",
        ),
        (
            vec![
                "add",
                "t1",
                "--url",
                u,
                "--auth",
                "oauth2",
                "--token-url",
                "https://auth.example.com/token",
                "--client-id",
                "cid",
                "--client-secret-from-env",
                "S",
            ],
            vec![("S", "s")],
            "oauth2",
        ),
    ];
    for (args, env, kind) in cases {
        t.run_with(&args, &env, None).ok();
        let v: serde_json::Value =
            serde_json::from_str(&t.run(&["list", "--json"]).ok().stdout).unwrap();
        assert!(
            v["services"]
                .as_array()
                .unwrap()
                .iter()
                .any(|s| s["name"] == args[1] && s["auth"] == kind),
            "{args:?}: {v}"
        );
    }
    assert_eq!(t.secret("o1.token_secret"), b"d");
    assert!(t.secret("g1").starts_with(b"-----BEGIN"));
}

#[test]
fn missing_auth_flags_are_named_and_nothing_is_stored() {
    let t = Env::new();
    t.init();
    let before = t.snapshot();
    let u = "https://api.example.com";
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (
            vec!["add", "x", "--url", u, "--auth", "basic", "--key", "p"],
            "--username",
        ),
        (
            vec!["add", "x", "--url", u, "--auth", "header", "--key", "p"],
            "--header-name",
        ),
        (
            vec!["add", "x", "--url", u, "--auth", "query", "--key", "p"],
            "--param",
        ),
        (
            vec![
                "add",
                "x",
                "--url",
                u,
                "--auth",
                "aws-sigv4",
                "--aws-service",
                "s3",
            ],
            "--region",
        ),
        (
            vec![
                "add",
                "x",
                "--url",
                u,
                "--auth",
                "aws-sigv4",
                "--region",
                "us-east-1",
                "--aws-service",
                "s3",
            ],
            "--access-key-id-from-env",
        ),
        (
            vec![
                "add",
                "x",
                "--url",
                u,
                "--auth",
                "oauth1",
                "--consumer-key-from-env",
                "A",
                "--consumer-secret-from-env",
                "A",
                "--token-from-env",
                "A",
            ],
            "--token-secret-from-env",
        ),
        (
            vec![
                "add",
                "x",
                "--url",
                u,
                "--auth",
                "github-app",
                "--app-id",
                "1",
            ],
            "--installation-id",
        ),
        (
            vec![
                "add",
                "x",
                "--url",
                u,
                "--auth",
                "github-app",
                "--app-id",
                "1",
                "--installation-id",
                "2",
            ],
            "--pem-file",
        ),
        (
            vec![
                "add",
                "x",
                "--url",
                u,
                "--auth",
                "github-app",
                "--app-id",
                "1",
                "--installation-id",
                "2",
                "--pem-file",
                "/no/such.pem",
            ],
            "/no/such.pem",
        ),
        (
            vec![
                "add",
                "x",
                "--url",
                u,
                "--auth",
                "gcp-service-account",
                "--json-file",
                "/etc/hostname",
            ],
            "--scopes",
        ),
        (
            vec![
                "add",
                "x",
                "--url",
                u,
                "--auth",
                "oauth2",
                "--client-id",
                "c",
                "--key",
                "s",
            ],
            "--token-url",
        ),
        (
            vec![
                "add",
                "x",
                "--url",
                u,
                "--auth",
                "oauth2",
                "--token-url",
                "http://auth.example.com/t",
                "--client-id",
                "c",
                "--key",
                "s",
            ],
            "https",
        ),
        (
            vec!["add", "x", "--template", "nope", "--key", "k"],
            "unknown template \"nope\"",
        ),
        (
            vec!["add", "aws-s3", "--access-key-id-from-env", "A"],
            "--region",
        ),
    ];
    for (args, needle) in cases {
        t.run_with(&args, &[("A", "a")], None).usage_error(needle);
        assert_eq!(t.snapshot(), before, "{args:?} changed the home");
    }
}

// ---------------------------------------------------------------- migrate and doctor

fn openai_like_key() -> String {
    let mut b = [0u8; 40];
    getrandom::fill(&mut b).unwrap();
    let body: String = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .encode(b)
        .chars()
        .filter(char::is_ascii_alphanumeric)
        .take(40)
        .collect();
    format!("sk-proj-{body}T3BlbkFJ{body}")
}

#[test]
fn migrate_moves_env_secrets_into_the_vault_and_is_idempotent() {
    let t = Env::new();
    t.init();
    let key = openai_like_key();
    let env = t.dir.path().join(".env");
    let original = format!("# settings\nexport OPENAI_API_KEY=\"{key}\"\nDEBUG=true\nPORT=8080\n");
    std::fs::write(&env, &original).unwrap();
    let dry = t.run(&["migrate", env.to_str().unwrap(), "--dry-run"]).ok();
    assert!(
        dry.stdout
            .contains("+ OPENAI_API_KEY=airlock://openai_api_key"),
        "{}",
        dry.stdout
    );
    assert!(
        !dry.stdout.contains(&key[..12]),
        "the dry run shows the value"
    );
    assert_eq!(
        std::fs::read_to_string(&env).unwrap(),
        original,
        "a dry run writes nothing"
    );
    let out = t.run(&["migrate", env.to_str().unwrap()]).ok();
    assert!(
        out.stderr.contains("rotate"),
        "rotation advice: {}",
        out.stderr
    );
    assert_eq!(
        std::fs::read_to_string(&env).unwrap(),
        "# settings\nexport OPENAI_API_KEY=\"airlock://openai_api_key\"\nDEBUG=true\nPORT=8080\n"
    );
    assert_eq!(t.secret("openai_api_key"), key.as_bytes());
    let before = t.snapshot();
    let again = t.run(&["migrate", env.to_str().unwrap()]).ok();
    assert!(again.stdout.contains("nothing changed"), "{}", again.stdout);
    assert_eq!(t.snapshot(), before);
    // A same-named variable with another value in another file gets its own name.
    let other = t.dir.path().join("prod.env");
    let key2 = openai_like_key();
    std::fs::write(&other, format!("OPENAI_API_KEY={key2}\n")).unwrap();
    t.run(&["migrate", other.to_str().unwrap()]).ok();
    assert_eq!(
        std::fs::read_to_string(&other).unwrap(),
        "OPENAI_API_KEY=airlock://openai_api_key-prod\n"
    );
    assert_eq!(t.secret("openai_api_key-prod"), key2.as_bytes());
}

#[test]
fn migrate_rewrites_an_mcp_config_to_launch_through_wrap() {
    let t = Env::new();
    t.init();
    let key = openai_like_key();
    let cfg = t.dir.path().join("claude_desktop_config.json");
    let original = serde_json::json!({"mcpServers": {
        "openai": {"command": "npx", "args": ["-y", "some-server"], "env": {"OPENAI_API_KEY": key, "LOG_LEVEL": "debug"}},
        "fs": {"command": "npx", "args": ["server-fs"]}
    }});
    std::fs::write(&cfg, serde_json::to_string_pretty(&original).unwrap()).unwrap();
    t.run(&["migrate", cfg.to_str().unwrap()]).ok();
    let v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&cfg).unwrap()).unwrap();
    let s = &v["mcpServers"]["openai"];
    assert!(s["command"].as_str().unwrap().ends_with("airlock"), "{s}");
    assert_eq!(
        s["args"],
        serde_json::json!([
            "wrap",
            "--env",
            "OPENAI_API_KEY=airlock://openai_api_key",
            "--",
            "npx",
            "-y",
            "some-server"
        ])
    );
    assert_eq!(s["env"], serde_json::json!({"LOG_LEVEL": "debug"}));
    assert_eq!(v["mcpServers"]["fs"], original["mcpServers"]["fs"]);
    assert!(!std::fs::read_to_string(&cfg).unwrap().contains(&key));
    assert_eq!(t.secret("openai_api_key"), key.as_bytes());
    // Unparseable: exit 2, file untouched, vault untouched.
    let bad = t.dir.path().join("broken.json");
    std::fs::write(&bad, "{\"mcpServers\": ").unwrap();
    let before = t.snapshot();
    t.refused(&["migrate", bad.to_str().unwrap()], "not valid JSON");
    assert_eq!(std::fs::read_to_string(&bad).unwrap(), "{\"mcpServers\": ");
    assert_eq!(t.snapshot(), before);
    t.refused(&["migrate", "/no/such/file.env"], "cannot read");
}

#[test]
fn doctor_exits_1_when_something_needs_action() {
    use std::os::unix::fs::PermissionsExt;
    let t = Env::new();
    t.init();
    let user_home = t.dir.path().join("user");
    std::fs::create_dir_all(user_home.join(".cursor")).unwrap();
    let out = t.run_with(&["doctor"], &[("HOME", user_home.to_str().unwrap())], None);
    assert_eq!(out.code, 0, "{}", out.stdout);
    assert!(out.stdout.contains("key-file mode"), "{}", out.stdout);
    // An exposed key in an MCP client config needs action.
    let key = openai_like_key();
    std::fs::write(
        user_home.join(".cursor/mcp.json"),
        serde_json::json!({"mcpServers": {"x": {"command": "x", "env": {"OPENAI_API_KEY": key}}}})
            .to_string(),
    )
    .unwrap();
    let out = t.run_with(&["doctor"], &[("HOME", user_home.to_str().unwrap())], None);
    assert_eq!(out.code, 1, "{}", out.stdout);
    assert!(out.stdout.contains("airlock migrate"), "{}", out.stdout);
    assert!(!out.stdout.contains(&key));
    std::fs::remove_file(user_home.join(".cursor/mcp.json")).unwrap();
    // Loose permissions need action.
    std::fs::set_permissions(
        t.home().vault_path(),
        std::fs::Permissions::from_mode(0o644),
    )
    .unwrap();
    let out = t.run_with(&["doctor"], &[("HOME", user_home.to_str().unwrap())], None);
    assert_eq!(out.code, 1, "{}", out.stdout);
    assert!(out.stdout.contains("chmod 600"), "{}", out.stdout);
}

/// A migrate killed at any instant leaves the file either untouched or fully
/// rewritten, the vault readable, and — whenever the file was rewritten — every
/// secret stored. (A kill after the vault write but before the file write leaves
/// the old file and the secret already stored; the next run reuses it.)
#[test]
fn migrate_killed_at_random_moments_loses_nothing() {
    let t = Env::new();
    t.init();
    let key = openai_like_key();
    let original = format!("OPENAI_API_KEY={key}\nA=1\n");
    let env = t.dir.path().join(".env");
    let mut seed = [0u8; 8];
    getrandom::fill(&mut seed).unwrap();
    let mut x = u64::from_le_bytes(seed) | 1;
    for _ in 0..60 {
        std::fs::write(&env, &original).unwrap();
        let mut child = t
            .cmd(&["migrate", env.to_str().unwrap()])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        std::thread::sleep(std::time::Duration::from_micros(x % 15_000));
        let _ = child.kill();
        let _ = child.wait();
        let text = std::fs::read_to_string(&env).unwrap();
        let names = t.secret_names();
        if text == original {
            continue;
        }
        assert!(
            text.starts_with("OPENAI_API_KEY=airlock://openai_api_key"),
            "half-written file: {text:?}"
        );
        assert!(
            names.contains("openai_api_key"),
            "file rewritten but the secret is not stored"
        );
        assert_eq!(t.secret("openai_api_key"), key.as_bytes());
    }
}

// ---------------------------------------------------------------- import janee

/// Seals like Janee: base64(iv ‖ tag ‖ ciphertext), AES-256-GCM, 12-byte IV.
fn janee_seal(key: &[u8; 32], plain: &str, n: u8) -> String {
    use aes_gcm::aead::{Aead, KeyInit};
    let iv = [n; 12];
    let out = aes_gcm::Aes256Gcm::new_from_slice(key)
        .unwrap()
        .encrypt(aes_gcm::Nonce::from_slice(&iv), plain.as_bytes())
        .unwrap();
    let (ct, tag) = out.split_at(out.len() - 16);
    let mut v = iv.to_vec();
    v.extend_from_slice(tag);
    v.extend_from_slice(ct);
    base64::engine::general_purpose::STANDARD.encode(v)
}

#[test]
fn import_janee_brings_services_secrets_and_rules_and_overwrites_nothing() {
    let t = Env::new();
    t.init();
    let janee = t.new_dir("janee");
    let key = [7u8; 32];
    std::fs::write(
        janee.join("config.yaml"),
        "version: 0.3.0\nserver:\n  port: 9119\n  host: localhost\n  strictDecryption: true\nservices:\n  stripe:\n    baseUrl: https://api.stripe.com\n    auth:\n      type: bearer\ncapabilities:\n  stripe_readonly:\n    service: stripe\n    ttl: 1h\n    autoApprove: true\n    rules:\n      allow:\n        - GET *\n      deny:\n        - DELETE *\n",
    )
    .unwrap();
    let creds = serde_json::json!({
        "masterKey": base64::engine::general_purpose::STANDARD.encode(key),
        "secrets": {"stripe": {"key": janee_seal(&key, "sk_test_from_janee_123", 1)}}
    });
    std::fs::write(janee.join("credentials.json"), creds.to_string()).unwrap();
    let out = t.run(&["import", "janee", janee.to_str().unwrap()]).ok();
    assert!(
        out.stdout
            .contains("1 service(s), 1 capability(ies), 1 secret(s)"),
        "{}",
        out.stdout
    );
    assert!(
        !out.stdout.contains("sk_test_from_janee") && !out.stderr.contains("sk_test_from_janee")
    );
    assert_eq!(t.secret("stripe"), b"sk_test_from_janee_123");
    let v: serde_json::Value =
        serde_json::from_str(&t.run(&["list", "--json"]).ok().stdout).unwrap();
    let cap = find_named(&v["capabilities"], "name", "stripe_readonly");
    assert_eq!(cap["allow"], serde_json::json!(["GET /**"]));
    assert_eq!(cap["deny"], serde_json::json!(["DELETE /**"]));
    // Importing again would overwrite: refused, nothing changed.
    let before = t.snapshot();
    t.refused(
        &["import", "janee", janee.to_str().unwrap()],
        "already exist",
    );
    assert_eq!(t.snapshot(), before);
    // A wrong master key is a clear error.
    let mut bad = creds.clone();
    bad["masterKey"] =
        serde_json::json!(base64::engine::general_purpose::STANDARD.encode([9u8; 32]));
    std::fs::write(janee.join("credentials.json"), bad.to_string()).unwrap();
    let t2 = Env::new();
    t2.init();
    t2.run(&["import", "janee", janee.to_str().unwrap()])
        .usage_error("master key");
    t2.run(&["import", "vault", janee.to_str().unwrap()])
        .usage_error("supported: janee");
}
#[path = "cli/auth_table.rs"]
mod auth_table;
#[path = "cli/edges.rs"]
mod edges;
