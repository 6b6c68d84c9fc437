//! Issue 14, items 1, 2, 3 and 7: the request path's integrity.
//!
//! - Write-ahead audit (DESIGN §7.5): when the decision record cannot be written
//!   (here: a file-size limit, `ulimit -f`, which no owner of the files escapes),
//!   nothing reaches the upstream and no child starts — for `execute`, `exec` and
//!   the HTTP gateway; a crash between decision and outcome is reported by
//!   `audit verify` as a request without outcome.
//! - Approvals bound to the exact request (invariant 13): the pending list shows
//!   the full URL with its query, the agent's headers, the body's size and
//!   SHA-256; what is sent is what was shown; an answer applies once.
//! - Agent-chosen text is escaped on the owner's terminal (invariant 14), and
//!   every record of one request carries the same agent trust (item 7).

use super::*;

/// Starts `airlock serve ARGS` through `sh -c PRELUDE; exec airlock …` (a shell
/// sets limits the server inherits), speaks MCP on its stdio, and initializes
/// with `client_name` as `clientInfo.name`.
fn start_via_shell(home: &PathBuf, prelude: &str, args: &[&str], client_name: &str) -> Server {
    let child = spawn_stdio(serve_via_shell(home, prelude, args), Stdio::null());
    Server::initialized(child, client_name)
}

/// `sh -c 'PRELUDE; exec airlock serve ARGS'` on `home`, not yet spawned.
fn serve_via_shell(home: &PathBuf, prelude: &str, args: &[&str]) -> Command {
    let mut script = format!("{prelude}; exec \"$0\" serve");
    for (i, _) in args.iter().enumerate() {
        script.push_str(&format!(" \"${}\"", i + 1));
    }
    let mut c = Command::new("sh");
    c.arg("-c")
        .arg(&script)
        .arg(env!("CARGO_BIN_EXE_airlock"))
        .args(args)
        .env("AIRLOCK_HOME", home);
    c
}

/// Ends a server at once (it may not be able to flush an audit log it cannot write).
fn kill(s: Server) {
    end(s.child);
}

/// `setup` plus capability "any" on the service, open to every agent, with no
/// rules (so the tests do not depend on what `airlock add` creates).
fn setup_any(upstream: &Upstream) -> (tempfile::TempDir, PathBuf) {
    let (dir, home) = setup(upstream);
    let out = airlock(&home, &["cap", "add", "any", "--service", "svc"], &[]);
    assert_ok(&out);
    (dir, home)
}

/// A reflecting upstream and a home `setup_any` for it, with capability "guarded".
fn guarded_any() -> (Upstream, tempfile::TempDir, PathBuf) {
    let upstream = Upstream::start(reflect);
    let (dir, home) = setup_any(&upstream);
    add_guarded(&home);
    (upstream, dir, home)
}

/// The size of the newest audit file.
fn audit_bytes(home: &std::path::Path) -> u64 {
    std::fs::read_dir(home.join("audit"))
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().ends_with(".jsonl"))
        .map(|e| e.metadata().unwrap().len())
        .max()
        .unwrap_or(0)
}

/// An exec capability whose program leaves a marker file when it runs; its
/// directory is outside the home (which no program may reach).
fn add_marker_tool(home: &std::path::Path) -> tempfile::TempDir {
    use std::os::unix::fs::PermissionsExt as _;
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let work = dir.join("work");
    std::fs::create_dir_all(&work).unwrap();
    let tool = dir.join("marker-tool");
    std::fs::write(&tool, "#!/bin/sh\ntouch ran\necho ran\n").unwrap();
    std::fs::set_permissions(&tool, std::fs::Permissions::from_mode(0o755)).unwrap();
    append_config(
        home,
        &format!(
            "\n[capabilities.tool]\nservice = \"svc\"\nmode = \"exec\"\ncommands = [\"{}\"]\nworkdirs = [\"{}\"]\nconfine = false\n",
            tool.display(),
            work.display()
        ),
    );
    tmp
}

/// Item 1: the decision record is written before anything leaves; when it cannot
/// be (the audit file is over `ulimit -f`), the upstream receives nothing, the
/// child never starts, and the agent gets an error naming the audit log — over
/// MCP `execute`, MCP `exec` and the HTTP gateway.
#[test]
fn nothing_is_sent_or_started_when_the_decision_cannot_be_recorded() {
    let upstream = Upstream::start(reflect);
    let (_d, home) = setup_any(&upstream);
    let dir = add_marker_tool(&home);
    let work = dir.path().join("work");
    let get =
        json!({"capability": "any", "method": "POST", "path": "/v1/charges", "body": "amount=1"});
    let run = json!({"capability": "tool", "command": [dir.path().join("marker-tool").display().to_string()], "cwd": work.display().to_string()});

    // Unlimited: both work, and the log grows past the limit used below.
    let mut s = Server::start(&home, "tester");
    for _ in 0..3 {
        let (err, text) = s.call("execute", get.clone());
        assert!(!err, "{text}");
    }
    let (err, text) = s.call("exec", run.clone());
    assert!(!err, "{text}");
    assert!(work.join("ran").exists());
    std::fs::remove_file(work.join("ran")).unwrap();
    s.stop();
    let tok = token(&home, &[]);
    assert!(
        audit_bytes(&home) > 2048,
        "the log is too small for the test"
    );
    let sent = upstream.requests().len();
    let before = records(&home).len();

    // `ulimit -f 2`: no file of the server may grow past 1 KiB, so every audit
    // append fails (EFBIG; SIGXFSZ ignored, as a server under a quota sees it).
    let limit = "trap '' XFSZ; ulimit -f 2";
    let mut s = start_via_shell(&home, limit, &["--agent", "tester"], "claude-desktop");
    let (err, text) = s.call("execute", get.clone());
    assert!(err, "{text}");
    assert!(
        text.contains("audit log could not be written") && text.contains("nothing was sent"),
        "{text}"
    );
    assert_eq!(upstream.requests().len(), sent, "sent without a record");
    let (err, text) = s.call("exec", run.clone());
    assert!(
        err && text.contains("audit log could not be written"),
        "{text}"
    );
    assert!(!work.join("ran").exists(), "the child ran without a record");
    kill(s);

    // The gateway: same path, same refusal.
    let gateway = ["--gateway", "127.0.0.1:0"];
    let (child, addr) = spawn_listener(serve_via_shell(&home, limit, &gateway), &gateway);
    let resp = raw_http(
        &addr,
        &format!(
            "POST /any/v1/charges HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {tok}\r\nContent-Length: 8\r\nConnection: close\r\n\r\namount=1"
        ),
    );
    end(child);
    assert!(resp.starts_with("HTTP/1.1 500"), "{resp}");
    assert!(resp.contains("audit log could not be written"), "{resp}");
    assert_eq!(
        upstream.requests().len(),
        sent,
        "the gateway sent without a record"
    );

    // Nothing was recorded, and the chain is intact.
    assert_eq!(records(&home).len(), before);
    let out = airlock(&home, &["audit", "verify"], &[]);
    assert_ok(&out);
}

/// Answers after a long pause: the server can be killed while the upstream
/// holds the response.
fn slow(seen: &Seen, port: u16) -> (u16, Vec<(String, String)>, Vec<u8>) {
    std::thread::sleep(Duration::from_secs(4));
    reflect(seen, port)
}

/// Item 1: a crash between the decision and the outcome (SIGKILL of `serve`
/// while the upstream holds the response) leaves the decision on record, and
/// `audit verify` names the request without outcome — exit 0, the chain is intact.
#[test]
fn a_crash_between_decision_and_outcome_is_a_request_without_outcome() {
    let upstream = Upstream::start(slow);
    let (_d, home) = setup_any(&upstream);
    let mut s = Server::start(&home, "tester");
    writeln!(
        s.stdin,
        "{}",
        json!({"jsonrpc": "2.0", "id": 99, "method": "tools/call", "params": {"name": "execute",
               "arguments": {"capability": "any", "method": "GET", "path": "/v1/slow"}}})
    )
    .unwrap();
    s.stdin.flush().unwrap();
    for _ in 0..200 {
        if !upstream.requests().is_empty() {
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(upstream.requests().len(), 1, "the request never arrived");
    kill(s);

    let recs = records(&home);
    let decision = recs
        .iter()
        .find(|r| r["kind"] == "request" && r["path"] == "/v1/slow")
        .expect("the decision was recorded before the request was sent");
    assert_eq!(decision["decision"], "allow");
    assert!(decision.get("status").is_none(), "{decision}");
    assert!(!recs.iter().any(|r| r["kind"] == "outcome"), "{recs:?}");
    let seq = decision["seq"].as_u64().unwrap();

    let out = airlock(&home, &["audit", "verify"], &[]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    assert!(
        text.contains("audit log intact")
            && text.contains(&format!("1 request without outcome: seq {seq} ")),
        "{text}"
    );
    let out = airlock(&home, &["audit", "verify", "--json"], &[]);
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(out.status.success(), "{v}");
    assert_eq!(v["ok"], true, "{v}");
    assert_eq!(v["without_outcome"], json!([seq]), "{v}");

    // A completed request has its outcome, naming its decision.
    let upstream = Upstream::start(reflect);
    let (_d, home) = setup_any(&upstream);
    let mut s = Server::start(&home, "tester");
    assert!(!s.execute("any", "GET", "/v1/ok").0);
    s.stop();
    let recs = records(&home);
    let decision = recs
        .iter()
        .find(|r| r["kind"] == "request" && r["path"] == "/v1/ok")
        .unwrap();
    let outcome = recs.iter().find(|r| r["kind"] == "outcome").unwrap();
    assert_eq!(outcome["of"], decision["seq"], "{outcome}");
    assert_eq!(outcome["status"], 200);
    assert!(outcome["seq"].as_u64() > decision["seq"].as_u64());
    let out = airlock(&home, &["audit", "verify"], &[]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && !text.contains("without outcome"),
        "{text}"
    );
}

fn sha256_hex(data: &[u8]) -> String {
    let mut c = Command::new("sha256sum")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    c.stdin.take().unwrap().write_all(data).unwrap();
    let out = c.wait_with_output().unwrap();
    String::from_utf8(out.stdout)
        .unwrap()
        .split_whitespace()
        .next()
        .unwrap()
        .to_string()
}

/// Sends one line to the server's control socket; returns its answer.
fn control(home: &std::path::Path, request: &Value) -> Value {
    let mut s = std::os::unix::net::UnixStream::connect(home.join("control.sock")).unwrap();
    writeln!(s, "{request}").unwrap();
    let mut line = String::new();
    BufReader::new(s).read_line(&mut line).unwrap();
    serde_json::from_str(&line).unwrap()
}

/// Item 2: the owner sees the request exactly as it will be sent — method, full
/// URL with the MCP `query` object, the agent's headers, the body's size and
/// SHA-256 — in `airlock approve` and its JSON; the approved request is the one
/// the upstream receives; an answer applies to one request once, and an answer
/// for another hash is refused. The approve record carries the request's trust.
#[test]
fn approval_shows_and_binds_exactly_what_is_sent() {
    let (upstream, _d, home) = guarded_any();
    let body = "{\"reason\":\"cleanup\"}";
    let call = json!({"capability": "guarded", "method": "POST", "path": "/v1/customers",
                      "query": {"confirm": "yes", "delete": "all"},
                      "headers": {"X-Trace": "t-1"}, "body": body, "reason": "monthly report"});
    let url = format!(
        "http://127.0.0.1:{}/base/v1/customers?confirm=yes&delete=all",
        upstream.port
    );
    let sha = sha256_hex(body.as_bytes());
    let mut s = Server::start(&home, "tester");

    let first_id = std::thread::scope(|scope| {
        let h = scope.spawn(|| s.call("execute", call.clone()));
        let id = wait_for_pending(&home);
        let listed: Value =
            serde_json::from_slice(&airlock(&home, &["approve", "--json"], &[]).stdout).unwrap();
        let p = &listed[0];
        assert_eq!(p["url"], json!(url), "{p}");
        assert_eq!(p["method"], "POST");
        assert_eq!(p["headers"], json!([["X-Trace", "t-1"]]), "{p}");
        assert_eq!(p["body_bytes"], json!(body.len()), "{p}");
        assert_eq!(p["body_sha256"], json!(sha), "{p}");
        assert_eq!(p["agent"], "tester");
        assert_eq!(p["agent_trusted"], true);
        assert_eq!(p["hash"].as_str().unwrap().len(), 64, "{p}");
        let table = String::from_utf8(airlock(&home, &["approve"], &[]).stdout).unwrap();
        for part in [
            url.as_str(),
            "X-Trace: t-1",
            &format!("body: {} bytes", body.len()),
            sha.as_str(),
            "monthly report",
        ] {
            assert!(table.contains(part), "{part} not shown:\n{table}");
        }
        assert!(upstream.requests().is_empty(), "sent before approval");
        let out = airlock(&home, &["approve", &id], &[]);
        assert_ok(&out);
        let said = String::from_utf8(out.stdout).unwrap();
        assert!(said.contains(&url) && said.contains(&sha), "{said}");
        let (err, text) = h.join().unwrap();
        assert!(!err, "{text}");
        id
    });
    // What was approved is what was sent.
    let sent = upstream.requests();
    assert_eq!(sent.len(), 1);
    assert_eq!(
        sent[0].request_line,
        "POST /base/v1/customers?confirm=yes&delete=all HTTP/1.1"
    );
    assert_eq!(sent[0].header("x-trace"), Some("t-1"));
    assert_eq!(sent[0].body, body.as_bytes());

    // Single use: the identical request is held again, under a new id; the old
    // answer does not apply, an answer for another hash is refused, and a denial
    // sends nothing.
    std::thread::scope(|scope| {
        let h = scope.spawn(|| s.call("execute", call.clone()));
        let id = wait_for_pending(&home);
        assert_ne!(id, first_id);
        let again = airlock(&home, &["approve", &first_id], &[]);
        assert_eq!(again.status.code(), Some(2));
        let wrong = control(
            &home,
            &json!({"cmd": "answer", "id": id, "approve": true, "hash": "0".repeat(64)}),
        );
        assert_eq!(wrong["ok"], false, "{wrong}");
        assert!(
            wrong["error"].as_str().unwrap().contains("another request"),
            "{wrong}"
        );
        std::thread::sleep(Duration::from_millis(200));
        assert_eq!(upstream.requests().len(), 1, "an answer was reused");
        assert!(airlock(&home, &["deny", &id], &[]).status.success());
        let (err, text) = h.join().unwrap();
        assert!(err && text.contains("denied"), "{text}");
    });
    assert_eq!(upstream.requests().len(), 1);
    s.stop();

    // The approve and deny records say who asked exactly as the request's did.
    let recs = records(&home);
    for kind in ["approve", "deny"] {
        let r = recs.iter().find(|r| r["kind"] == kind).unwrap();
        assert_eq!(r["agent"], "tester", "{r}");
        assert_eq!(r["agent_trusted"], true, "{r}");
        assert_eq!(r["path"], "/v1/customers", "{r}");
    }
}

/// Items 3 and 7: a self-declared client name and a reason full of terminal
/// escapes are shown escaped by `airlock approve` and `airlock sessions`; the
/// request, approve, deny and outcome records all say the same untrusted name.
#[test]
fn agent_text_is_escaped_and_every_record_has_the_same_agent_trust() {
    let (_upstream, _d, home) = guarded_any();
    let name = "evil\u{1b}[2J\u{1b}[1;1Hclient\u{202e}";
    let reason = "ok\u{1b}[2J\u{1b}[1;1H\r\nfake row";
    let mut s = start_via_shell(&home, "true", &[], name);
    let call = json!({"capability": "guarded", "method": "GET", "path": "/v1/x", "reason": reason});
    for approve in [true, false] {
        std::thread::scope(|scope| {
            let h = scope.spawn(|| s.call("execute", call.clone()));
            let id = wait_for_pending(&home);
            let out = airlock(&home, &["approve"], &[]);
            let table = String::from_utf8(out.stdout).unwrap();
            assert!(
                !table.contains('\u{1b}') && !table.contains('\r') && !table.contains('\u{202e}'),
                "raw control characters reach the terminal:\n{table:?}"
            );
            assert!(table.contains(r"\u{1b}[2J\u{1b}[1;1H"), "{table}");
            assert!(table.contains(r"evil\u{1b}[2J"), "{table}");
            let verb = if approve { "approve" } else { "deny" };
            let out = airlock(&home, &[verb, &id], &[]);
            assert!(out.status.success());
            assert!(!String::from_utf8(out.stdout).unwrap().contains('\u{1b}'));
            let (err, text) = h.join().unwrap();
            assert_eq!(err, !approve, "{text}");
        });
    }
    let out = airlock(&home, &["sessions"], &[]);
    let table = String::from_utf8(out.stdout).unwrap();
    assert!(table.contains("guarded"), "{table}");
    assert!(
        !table.contains('\u{1b}') && !table.contains('\u{202e}'),
        "raw control characters reach the terminal:\n{table:?}"
    );
    assert!(table.contains(r"evil\u{1b}[2J"), "{table}");
    kill(s);

    let recs = records(&home);
    let of_request: Vec<&Value> = recs
        .iter()
        .filter(|r| {
            ["request", "approve", "deny", "outcome"].contains(&r["kind"].as_str().unwrap_or(""))
        })
        .collect();
    for kind in ["request", "approve", "deny", "outcome"] {
        assert!(
            of_request.iter().any(|r| r["kind"] == kind),
            "no {kind} record"
        );
    }
    for r in &of_request {
        assert_eq!(r["agent_trusted"], false, "{r}");
        assert_eq!(r["agent"], of_request[0]["agent"], "{r}");
    }
}
