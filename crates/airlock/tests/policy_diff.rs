//! `airlock policy diff` through the binary (issue 19): equivalent rewrites are
//! no change (exit 0), narrowing and widening show the exact (method, path)
//! classes with an example, agents gained and lost, TTL/rate/approval/reason and
//! service URL/auth changes (exit 1); the one- and no-argument forms (the home's
//! airlock.toml, git HEAD); bad input is one line naming the file and line (exit
//! 2); and `airlock serve` logs the diff when it reloads a changed airlock.toml.
#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use serde_json::Value;

mod common;
use common::{
    find_named, gateway_call, http_response, http_upstream, ok, read_stderr, serve_door_with,
};

const SECRET: &str = "sk_live_policyDiffCanary0123456789";

fn airlock(home: &Path, cwd: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_airlock"))
        .args(args)
        .current_dir(cwd)
        .env("AIRLOCK_HOME", home)
        .env("K", SECRET)
        // Never find a repository above the temporary directory.
        .env("GIT_CEILING_DIRECTORIES", cwd.parent().unwrap())
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

fn code(out: &Output) -> i32 {
    out.status.code().unwrap()
}

fn stdout(out: &Output) -> String {
    String::from_utf8(out.stdout.clone()).unwrap()
}

fn stderr(out: &Output) -> String {
    String::from_utf8(out.stderr.clone()).unwrap()
}

const SERVICE: &str = r#"
[services.stripe]
url = "https://api.stripe.com"
auth = { type = "bearer", secret = "stripe" }
"#;

/// A config with the service above and one capability of `body`.
fn config(body: &str) -> String {
    format!("{SERVICE}\n[capabilities.stripe_ro]\nservice = \"stripe\"\n{body}")
}

fn write(dir: &Path, name: &str, text: &str) -> String {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p.display().to_string()
}

/// A temporary directory with no airlock home (`nohome`, its path) and an
/// `old.toml` of `config(body)` (its path).
fn with_old(body: &str) -> (tempfile::TempDir, PathBuf, String) {
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("nohome");
    let old = write(dir.path(), "old.toml", &config(body));
    (dir, home, old)
}

fn json_diff(home: &Path, dir: &Path, old: &str, new: &str) -> (i32, Value) {
    let out = airlock(home, dir, &["policy", "diff", old, new, "--json"]);
    let v = serde_json::from_str(&stdout(&out))
        .unwrap_or_else(|e| panic!("{e}: {}{}", stdout(&out), stderr(&out)));
    (code(&out), v)
}

#[test]
fn equivalent_rewrites_are_no_change() {
    let (dir, home, old) = with_old(
        r#"ttl = "1h"
allow = ["GET /v1/a/*", "GET /v1/a/**", "POST /v1/charges"]
deny = ["* /v1/a/admin/**"]
agents = ["claude"]
"#,
    );
    // Reordered, the redundant `*` rule dropped, a deny rule repeated in
    // another letter case (deny rules ignore case), a comment, `1h` as `60m`.
    let new = write(
        dir.path(),
        "new.toml",
        &format!(
            "# rewritten\n{}",
            config(
                r#"deny = ["* /v1/A/ADMIN/**", "* /v1/a/admin/**"]
allow = ["POST /v1/charges", "GET /v1/a/**"]
agents = ["claude"]
ttl = "60m"
"#
            )
        ),
    );
    // Two files need no airlock home.
    let out = airlock(&home, dir.path(), &["policy", "diff", &old, &new]);
    assert_eq!(code(&out), 0, "{}{}", stdout(&out), stderr(&out));
    assert!(
        stdout(&out).contains("no authority change"),
        "{}",
        stdout(&out)
    );
    let (c, v) = json_diff(&home, dir.path(), &old, &new);
    assert_eq!(c, 0);
    assert_eq!(v["changed"], false);
    assert_eq!(v["capabilities"], serde_json::json!([]));
    assert_eq!(v["services"], serde_json::json!([]));
}

#[test]
fn narrowing_widening_agents_and_settings_are_reported() {
    let (dir, home, old) = with_old(
        r#"ttl = "1h"
allow = ["GET /v1/customers/**", "POST /v1/charges"]
agents = ["claude", "gone"]
[capabilities.runner]
service = "stripe"
mode = "exec"
commands = ["/usr/bin/true"]
env = { TOKEN = "{{secret}}" }
"#,
    );
    let new = write(
        dir.path(),
        "new.toml",
        &config(
            r#"ttl = "2h"
rate = "60/min"
approval = "session"
requires_reason = true
allow = ["GET /v1/customers/*", "* /v1/charges"]
deny = ["DELETE /**"]
agents = ["claude", "codex"]
[capabilities.runner]
service = "stripe"
mode = "exec"
commands = ["/usr/bin/true", "/bin/x\u001b[8m"]
env = { TOKEN = "{{secret}}", EXTRA = "not-shown-value" }
"#,
        )
        .replace("https://api.stripe.com", "https://api.stripe.com/v2")
        .replace(
            r#"{ type = "bearer", secret = "stripe" }"#,
            r#"{ type = "header", header_name = "X-Key", secret = "stripe" }"#,
        ),
    );
    let (c, v) = json_diff(&home, dir.path(), &old, &new);
    assert_eq!(c, 1, "{v}");
    assert_eq!(v["changed"], true);
    let ro = find_named(&v["capabilities"], "capability", "stripe_ro");
    assert_eq!(ro["agents_gained"], serde_json::json!(["codex"]));
    assert_eq!(ro["agents_lost"], serde_json::json!(["gone"]));
    let setting = |name: &str| find_named(&ro["settings"], "setting", name);
    assert_eq!(setting("ttl")["new"], "2h");
    assert_eq!(setting("rate")["new"], "60/min");
    assert_eq!(setting("approval")["old"], "never");
    assert_eq!(setting("approval")["new"], "session");
    assert_eq!(setting("requires_reason")["new"], "true");

    let paths = ro["paths"].as_array().unwrap();
    // Narrowing: GET on /v1/customers itself and deeper paths is refused now,
    // with a concrete example the old rules allowed.
    let refused = find_named(&ro["paths"], "change", "newly refused");
    assert_eq!(refused["methods"], serde_json::json!(["GET"]));
    let ex = refused["example"].as_str().unwrap();
    assert!(
        ex == "/v1/customers" || ex.starts_with("/v1/customers/") && ex.matches('/').count() > 3,
        "{ex}"
    );
    // Widening: every method but POST (already allowed) and DELETE (denied).
    let allowed = find_named(&ro["paths"], "change", "newly allowed");
    assert_eq!(
        allowed["methods"],
        serde_json::json!(["GET", "HEAD", "PUT", "PATCH", "OPTIONS"])
    );
    assert_eq!(allowed["example"], "/v1/charges");
    assert!(
        allowed["matches"]
            .as_array()
            .unwrap()
            .iter()
            .any(|m| m["rule"] == "* /v1/charges" && m["in"] == "new" && m["list"] == "allow"),
        "{allowed}"
    );
    assert_eq!(paths.len(), 2, "{paths:?}");

    let svc = &v["services"][0];
    assert_eq!(svc["service"], "stripe");
    let text = svc.to_string();
    assert!(text.contains("https://api.stripe.com/v2"), "{text}");
    assert!(text.contains("header"), "{text}");

    // The exec capability: env changes by name only, never a value.
    let runner = find_named(&v["capabilities"], "capability", "runner");
    assert!(runner.to_string().contains("EXTRA"), "{runner}");
    let all = v.to_string();
    assert!(!all.contains("not-shown-value"), "{all}");
    assert!(!all.contains(SECRET));

    // The table says the same for people.
    let out = airlock(&home, dir.path(), &["policy", "diff", &old, &new]);
    assert_eq!(code(&out), 1);
    let table = stdout(&out);
    for want in [
        "newly refused",
        "newly allowed",
        "allow * /v1/charges (added)",
        "not allow GET /v1/customers/*",
        "1h → 2h",
        "codex",
        "agents lose it",
    ] {
        assert!(table.contains(want), "{want}: {table}");
    }
    assert!(!table.contains("not-shown-value"));
    // A command holding a terminal escape is shown escaped, never raw.
    assert!(!table.contains('\u{1b}'), "{table:?}");
    assert!(table.contains("/bin/x\\u{1b}[8m"), "{table}");
}

#[test]
fn a_removed_capability_loses_everything_and_an_added_one_grants() {
    let (dir, home, old) = with_old("allow = [\"GET /v1/x\"]\n");
    let new = write(dir.path(), "new.toml", SERVICE);
    let (c, v) = json_diff(&home, dir.path(), &old, &new);
    assert_eq!(c, 1);
    let cap = &v["capabilities"][0];
    assert_eq!(cap["status"], "removed");
    // No `agents`, default_access open: every agent loses it.
    assert_eq!(cap["agents_lost"], serde_json::json!(["*"]));
    assert_eq!(cap["paths"][0]["change"], "newly refused");
    assert_eq!(cap["paths"][0]["example"], "/v1/x");
    let (c, v) = json_diff(&home, dir.path(), &new, &old);
    assert_eq!(c, 1);
    assert_eq!(v["capabilities"][0]["status"], "added");
    assert_eq!(v["capabilities"][0]["paths"][0]["change"], "newly allowed");
}

#[test]
fn bad_input_is_one_line_naming_the_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("nohome");
    let good = write(dir.path(), "good.toml", SERVICE);
    let broken = write(dir.path(), "broken.toml", "[services.x]\nurl = [\n");
    let unknown = write(
        dir.path(),
        "unknown.toml",
        "\n[capabilities.x]\nservice = \"nope\"\n",
    );
    let bad_rule = write(
        dir.path(),
        "rule.toml",
        &config("allow = [\"GET v1/**\"]\n"),
    );
    for (args, says) in [
        (vec![good.as_str(), broken.as_str()], "broken.toml:"),
        (vec![unknown.as_str(), good.as_str()], "unknown.toml:3:"),
        (vec![good.as_str(), bad_rule.as_str()], "rule.toml:"),
        (
            vec!["missing.toml", good.as_str()],
            "cannot read missing.toml",
        ),
        (
            vec![good.as_str(), good.as_str(), good.as_str()],
            "unexpected argument",
        ),
    ] {
        let mut all = vec!["policy", "diff"];
        all.extend(&args);
        let out = airlock(&home, dir.path(), &all);
        let err = stderr(&out);
        assert_eq!(code(&out), 2, "{args:?}: {err}");
        assert!(err.contains(says), "{args:?}: {err}");
        assert!(stdout(&out).is_empty(), "{args:?}");
        if !says.starts_with("unexpected") {
            assert_eq!(err.trim_end().lines().count(), 1, "{err}");
        }
    }
}

/// Runs git in `dir` (a repository above it is never found); fails unless it
/// succeeded.
fn git(dir: &Path, args: &[&str]) {
    let out = Command::new("git")
        .args(["-c", "user.name=t", "-c", "user.email=t@example.com"])
        .args(args)
        .current_dir(dir)
        .env("GIT_CEILING_DIRECTORIES", dir.parent().unwrap())
        .output()
        .unwrap();
    ok(out);
}

#[test]
fn defaults_one_file_against_the_home_and_none_against_git_head() {
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("home");
    std::fs::create_dir(&home).unwrap();
    let committed = config("allow = [\"GET /v1/**\"]\n");
    write(&home, "airlock.toml", &committed);

    // No argument, home not in git: one line saying to pass two files.
    let out = airlock(&home, dir.path(), &["policy", "diff"]);
    assert_eq!(code(&out), 2);
    let err = stderr(&out);
    assert!(
        err.contains("not in a git work tree") && err.contains("pass two files"),
        "{err}"
    );

    // In git: HEAD against the file on disk.
    git(&home, &["init", "-q"]);
    let out = airlock(&home, dir.path(), &["policy", "diff"]);
    assert_eq!(code(&out), 2);
    assert!(
        stderr(&out).contains("not committed in git HEAD"),
        "{}",
        stderr(&out)
    );
    git(&home, &["add", "airlock.toml"]);
    git(&home, &["commit", "-q", "-m", "policy"]);
    let out = airlock(&home, dir.path(), &["policy", "diff"]);
    assert_eq!(code(&out), 0, "{}{}", stdout(&out), stderr(&out));
    write(
        &home,
        "airlock.toml",
        &config("allow = [\"GET /v1/**\", \"POST /v1/refunds\"]\n"),
    );
    let out = airlock(&home, dir.path(), &["policy", "diff", "--json"]);
    assert_eq!(code(&out), 1, "{}", stderr(&out));
    let v: Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert!(v["old"].as_str().unwrap().starts_with("HEAD:"), "{v}");
    let p = &v["capabilities"][0]["paths"][0];
    assert_eq!(p["change"], "newly allowed");
    assert_eq!(p["methods"], serde_json::json!(["POST"]));
    assert_eq!(p["example"], "/v1/refunds");

    // One argument: that file against the home's airlock.toml.
    let old = write(dir.path(), "old.toml", &committed);
    let (c, v) = {
        let out = airlock(&home, dir.path(), &["policy", "diff", &old, "--json"]);
        (
            code(&out),
            serde_json::from_str::<Value>(&stdout(&out)).unwrap(),
        )
    };
    assert_eq!(c, 1);
    assert_eq!(v["new"], home.join("airlock.toml").display().to_string());
    assert_eq!(v["capabilities"][0]["paths"][0]["example"], "/v1/refunds");
}

/// An upstream that answers every request 200.
fn upstream() -> u16 {
    http_upstream(|_| http_response("200 OK", &[], ""))
}

/// The status of `GET /svc{path}` through the gateway at `port`.
fn status(port: u16, token: &str, path: &str) -> u16 {
    gateway_call(port, token, "GET", &format!("/svc{path}")).0
}

#[test]
fn serve_logs_the_authority_diff_when_it_reloads() {
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("home");
    let url = format!("http://127.0.0.1:{}", upstream());
    let out = airlock(
        &home,
        dir.path(),
        &["add", "svc", "--url", &url, "--key-from-env", "K"],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let out = airlock(
        &home,
        dir.path(),
        &["token", "issue", "--agent", "bot", "--cap", "svc"],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let token = stdout(&out).trim().to_owned();

    let mut gw = serve_door_with(&home, "--gateway", Stdio::piped());
    let port = gw.port;
    assert_eq!(status(port, &token, "/v1/admin/users"), 200);

    // The owner fences off admin; the next request reloads and is refused.
    let path = home.join("airlock.toml");
    let text = std::fs::read_to_string(&path).unwrap();
    let text = text.replacen(
        "[capabilities.svc]\n",
        "[capabilities.svc]\ndeny = [\"* /v1/admin/**\"]\n",
        1,
    );
    assert!(text.contains("deny = "), "{text}");
    std::fs::write(&path, text).unwrap();
    assert_eq!(status(port, &token, "/v1/admin/users"), 403);

    let _ = gw.child.kill();
    let _ = gw.child.wait();
    let log = read_stderr(&mut gw.child);
    let line = log
        .lines()
        .find(|l| l.contains("airlock.toml reloaded: capability svc: newly refused"))
        .unwrap_or_else(|| panic!("{log}"));
    assert!(line.contains("deny * /v1/admin/** (added)"), "{line}");
    assert!(line.contains("(e.g. /v1/admin)"), "{line}");
    assert!(!log.contains(SECRET));
}
