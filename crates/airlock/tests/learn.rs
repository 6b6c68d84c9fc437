//! Learning mode through the binary and the HTTP gateway: `cap add --learn`
//! allows and records the service's requests for a bounded time (deny rules
//! still apply), `learn show` proposes the smallest rules that cover them,
//! the capability refuses everything once the window is over, and `learn
//! apply` writes the rules (keeping the rest of the file) so that exactly what
//! was seen is allowed.
#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

mod common;
use common::{Door, add_svc, gateway_call, http_response, http_upstream, ok, serve_door};

const SECRET: &str = "sk_live_learnCanary0123456789abcdef";

fn airlock(home: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_airlock"))
        .args(args)
        .env("AIRLOCK_HOME", home)
        .env("K", SECRET)
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

/// An upstream that answers every request 200 with its request line; its URL.
fn upstream() -> String {
    let port = http_upstream(|head| {
        let line = head.lines().next().unwrap_or_default();
        http_response("200 OK", &[], line.trim())
    });
    format!("http://127.0.0.1:{port}")
}

/// A temporary home with service `svc` on `url` and no capability yet.
fn home_with_svc(url: &str) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("home");
    add_svc(&home, url, SECRET);
    (dir, home)
}

/// One request through the gateway to capability `learner`; the status code.
fn call(gw: &Door, token: &str, method: &str, path: &str) -> u16 {
    gateway_call(gw.port, token, method, &format!("/learner{path}")).0
}

#[test]
fn learning_records_then_proposes_then_applies_exactly_what_was_seen() {
    let (_dir, home) = home_with_svc(&upstream());
    // Bad input first: one line, nothing written.
    for (args, says) in [
        (vec!["--learn", "--allow", "GET /**"], "drop --allow"),
        (vec!["--learn", "--for", "soon"], "invalid --for"),
        (vec!["--for", "1h"], "--learn"),
    ] {
        let mut all = vec!["cap", "add", "learner", "--service", "svc"];
        all.extend(args);
        let out = airlock(&home, &all);
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            !out.status.success() && err.contains(says),
            "{all:?}: {err}"
        );
    }
    ok(airlock(
        &home,
        &[
            "cap",
            "add",
            "learner",
            "--service",
            "svc",
            "--learn",
            "--for",
            "4s",
            "--deny",
            "DELETE /**",
        ],
    ));
    let config = std::fs::read_to_string(home.join("airlock.toml")).unwrap();
    assert!(config.contains("learn_until = "), "{config}");
    // A comment of the owner's, which apply must keep.
    std::fs::write(
        home.join("airlock.toml"),
        format!("# my note: keep me\n{config}"),
    )
    .unwrap();
    let listed = ok(airlock(&home, &["cap", "list"]));
    assert!(listed.contains("LEARNING until"), "{listed}");
    let doctor = airlock(&home, &["doctor"]);
    let said = String::from_utf8_lossy(&doctor.stdout);
    assert!(said.contains("LEARNING until"), "{said}");
    let token = ok(airlock(
        &home,
        &["token", "issue", "--agent", "bot", "--cap", "learner"],
    ))
    .trim()
    .to_string();

    let started = Instant::now();
    let gw = serve_door(&home, "--gateway");
    for (method, path, want) in [
        ("GET", "/v1/customers/42", 200),
        ("GET", "/v1/customers/77", 200),
        ("GET", "/v1/customers/cus_9fK2x1Lq/invoices", 200),
        ("POST", "/v1/charges", 200),
        // The deny rule holds while learning, and is not learned.
        ("DELETE", "/v1/customers/42", 403),
        // An agent shaping its own grant: a literal `**` is allowed while
        // learning, but never proposed (it would be a wildcard in a rule).
        ("GET", "/v1/**", 200),
    ] {
        assert_eq!(call(&gw, &token, method, path), want, "{method} {path}");
    }
    let shown: Value =
        serde_json::from_str(&ok(airlock(&home, &["learn", "show", "learner", "--json"]))).unwrap();
    assert_eq!(shown["learning"], true, "{shown}");
    assert_eq!(shown["requests"], 4, "{shown}");
    assert_eq!(
        shown["not_proposed"],
        serde_json::json!(["GET /v1/**"]),
        "{shown}"
    );
    let rules: Vec<(String, u64)> = shown["rules"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["rule"].as_str().unwrap().to_string(),
                r["requests"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        rules,
        [
            ("GET /v1/customers/*".to_string(), 2),
            ("GET /v1/customers/*/invoices".to_string(), 1),
            ("POST /v1/charges".to_string(), 1),
        ],
        "{shown}"
    );
    let table = ok(airlock(&home, &["learn", "show", "learner"]));
    assert!(table.contains("GET /v1/customers/*"), "{table}");

    // The window ends: everything is refused until the rules are applied.
    let left = Duration::from_secs(5).saturating_sub(started.elapsed());
    std::thread::sleep(left);
    assert_eq!(call(&gw, &token, "GET", "/v1/customers/42"), 403);
    let logs = ok(airlock(&home, &["logs", "--json"]));
    assert!(logs.contains("finished learning"), "{logs}");
    let listed = ok(airlock(&home, &["cap", "list"]));
    assert!(listed.contains("learning ended"), "{listed}");

    let applied = ok(airlock(&home, &["learn", "apply", "learner"]));
    assert!(applied.contains("3 allow rule(s)"), "{applied}");
    let config = std::fs::read_to_string(home.join("airlock.toml")).unwrap();
    assert!(config.starts_with("# my note: keep me\n"), "{config}");
    assert!(!config.contains("learn_until"), "{config}");
    assert!(
        config.contains("\"GET /v1/customers/*/invoices\""),
        "{config}"
    );
    // The running gateway picks the file up: what was seen is allowed, and
    // nothing else.
    let deadline = Instant::now() + Duration::from_secs(10);
    while call(&gw, &token, "GET", "/v1/customers/5") != 200 {
        assert!(Instant::now() < deadline, "the applied rules never took");
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(call(&gw, &token, "GET", "/v1/customers/5/invoices"), 200);
    assert_eq!(call(&gw, &token, "POST", "/v1/charges"), 200);
    assert_eq!(call(&gw, &token, "GET", "/v1/balance"), 403);
    assert_eq!(call(&gw, &token, "GET", "/v1/anything/deeper"), 403);
    assert_eq!(call(&gw, &token, "POST", "/v1/customers/5"), 403);
    assert_eq!(call(&gw, &token, "DELETE", "/v1/customers/5"), 403);
    // Nothing left to learn.
    let out = airlock(&home, &["learn", "show", "learner"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("is not learning"));
    ok(airlock(&home, &["audit", "verify"]));
}

#[test]
fn apply_refuses_when_nothing_was_learned_and_exec_cannot_learn() {
    let (_dir, home) = home_with_svc("http://127.0.0.1:9");
    ok(airlock(
        &home,
        &["cap", "add", "learner", "--service", "svc", "--learn"],
    ));
    let out = airlock(&home, &["learn", "apply", "learner"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && err.contains("nothing to apply"),
        "{err}"
    );
    let config = std::fs::read_to_string(home.join("airlock.toml")).unwrap();
    assert!(
        config.contains("learn_until"),
        "nothing was written: {config}"
    );
    let out = airlock(
        &home,
        &[
            "cap",
            "add",
            "x",
            "--service",
            "svc",
            "--mode",
            "exec",
            "--command",
            "true",
            "--learn",
        ],
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && err.contains("HTTP capabilities"),
        "{err}"
    );
    let out = airlock(&home, &["learn", "show", "nope"]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("unknown capability"));
}

/// `learn apply --edit`: the owner's editor gets the proposal; what is saved is
/// written (checked, rule by rule); an editor that fails, a bad rule or an
/// empty file writes nothing.
#[test]
fn apply_edit_writes_what_the_owner_saved_and_nothing_on_failure() {
    let (dir, home) = home_with_svc(&upstream());
    ok(airlock(
        &home,
        &["cap", "add", "learner", "--service", "svc", "--learn"],
    ));
    let token = ok(airlock(
        &home,
        &["token", "issue", "--agent", "bot", "--cap", "learner"],
    ))
    .trim()
    .to_string();
    let gw = serve_door(&home, "--gateway");
    for path in [
        "/v1/customers/42",
        "/v1/customers/77/invoices",
        "/v1/balance",
    ] {
        assert_eq!(call(&gw, &token, "GET", path), 200, "{path}");
    }
    drop(gw);
    let config = || std::fs::read_to_string(home.join("airlock.toml")).unwrap();
    let before = config();
    // An editor: a shell script that edits the file it is given.
    let editor = |name: &str, script: &str| {
        let p = dir.path().join(name);
        std::fs::write(&p, format!("#!/bin/sh\n{script}\n")).unwrap();
        std::fs::set_permissions(&p, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
        p.display().to_string()
    };
    let apply = |editor: &str| {
        Command::new(env!("CARGO_BIN_EXE_airlock"))
            .args(["learn", "apply", "learner", "--edit"])
            .env("AIRLOCK_HOME", &home)
            .env_remove("VISUAL")
            .env("EDITOR", editor)
            .stdin(Stdio::null())
            .output()
            .unwrap()
    };
    // Each failure: a non-zero exit, one error line, the file as it was.
    for (script, says) in [
        ("exit 1", "exited with"),
        ("echo 'GET v1/no-slash' >> \"$1\"", "line "),
        ("sed -i '/^[A-Z]/d' \"$1\"", "no rule left"),
    ] {
        let out = apply(&editor("fail.sh", script));
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            !out.status.success() && err.contains(says),
            "{script}: {err}"
        );
        assert_eq!(err.trim().lines().count(), 1, "{err}");
        assert_eq!(config(), before, "{script} changed airlock.toml");
    }
    // The owner keeps the customer rules, drops /v1/balance and adds one.
    let out = apply(&editor(
        "edit.sh",
        "grep -q '^GET /v1/customers/\\*$' \"$1\" || exit 3\nsed -i '/balance/d' \"$1\"\necho 'POST /v1/customers/*/notes' >> \"$1\"",
    ));
    let said = ok(out);
    assert!(said.contains("3 allow rule(s)"), "{said}");
    let written = config();
    assert!(!written.contains("learn_until"), "{written}");
    for rule in [
        "\"GET /v1/customers/*\"",
        "\"GET /v1/customers/*/invoices\"",
        "\"POST /v1/customers/*/notes\"",
    ] {
        assert!(written.contains(rule), "{rule} missing: {written}");
    }
    assert!(!written.contains("/v1/balance"), "{written}");
}
