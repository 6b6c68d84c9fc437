//! `airlock serve` end to end: a JSON-RPC client on stdio, a local upstream that
//! records exactly what it received, and a "foreign" server that must never see a
//! credential. Every adversarial case asserts on what the servers actually got.
#![allow(clippy::unwrap_used, clippy::type_complexity)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine as _;
use serde_json::{Value, json};

mod common;
#[path = "../../airlock-broker/tests/support/homes.rs"]
mod homes;
use common::{
    append_config, audit_jsonl, edit_config, exit_2, field_strs, first_line, initialize_params,
    read_response, read_stderr, tool_result,
};
use homes::home_files;

/// A request as the upstream saw it.
#[derive(Debug, Clone)]
struct Seen {
    request_line: String,
    body: Vec<u8>,
    headers: Vec<(String, String)>,
}

impl Seen {
    fn header(&self, name: &str) -> Option<&str> {
        let (_, v) = self
            .headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))?;
        Some(v)
    }
}

/// A tiny HTTP/1.1 server on 127.0.0.1 that records every request. `reply`
/// decides the response from the request.
struct Upstream {
    port: u16,
    seen: Arc<Mutex<Vec<Seen>>>,
}

impl Upstream {
    fn start(reply: fn(&Seen, u16) -> (u16, Vec<(String, String)>, Vec<u8>)) -> Upstream {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let log = seen.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { continue };
                let log = log.clone();
                std::thread::spawn(move || serve_conn(stream, &log, reply, port));
            }
        });
        Upstream { port, seen }
    }

    fn requests(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }
}

fn serve_conn(
    stream: TcpStream,
    log: &Mutex<Vec<Seen>>,
    reply: fn(&Seen, u16) -> (u16, Vec<(String, String)>, Vec<u8>),
    port: u16,
) {
    stream.set_read_timeout(Some(Duration::from_secs(5))).ok();
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut stream = stream;
    loop {
        let mut request_line = String::new();
        if reader.read_line(&mut request_line).unwrap_or(0) == 0 {
            return;
        }
        let mut headers = Vec::new();
        loop {
            let mut line = String::new();
            if reader.read_line(&mut line).unwrap_or(0) == 0 {
                return;
            }
            let line = line.trim_end();
            if line.is_empty() {
                break;
            }
            if let Some((k, v)) = line.split_once(':') {
                headers.push((k.trim().to_string(), v.trim().to_string()));
            }
        }
        let len: usize = headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case("content-length"))
            .and_then(|(_, v)| v.parse().ok())
            .unwrap_or(0);
        let mut body = vec![0; len];
        reader.read_exact(&mut body).ok();
        let seen = Seen {
            request_line: request_line.trim_end().to_string(),
            headers,
            body,
        };
        log.lock().unwrap().push(seen.clone());
        let (status, hdrs, body) = reply(&seen, port);
        let mut out = format!("HTTP/1.1 {status} X\r\nContent-Length: {}\r\n", body.len());
        for (k, v) in hdrs {
            out.push_str(&format!("{k}: {v}\r\n"));
        }
        out.push_str("\r\n");
        if stream
            .write_all(out.as_bytes())
            .and_then(|_| stream.write_all(&body))
            .is_err()
        {
            return;
        }
    }
}

/// Echoes the credential back in every form a scrubber must catch.
fn reflect(seen: &Seen, _port: u16) -> (u16, Vec<(String, String)>, Vec<u8>) {
    let auth = seen.header("authorization").unwrap_or("").to_string();
    let token = auth.strip_prefix("Bearer ").unwrap_or("").to_string();
    if seen.request_line.contains("/redirect") {
        let foreign = seen
            .request_line
            .split("to=")
            .nth(1)
            .and_then(|s| s.split(' ').next())
            .unwrap_or("1");
        return (
            302,
            vec![(
                "Location".into(),
                format!("http://127.0.0.1:{foreign}/steal"),
            )],
            b"moved".to_vec(),
        );
    }
    let enc_url: String = token.bytes().map(|b| format!("%{b:02X}")).collect();
    let body = json!({
        "request_line": seen.request_line,
        "auth": auth,
        "b64": base64::engine::general_purpose::STANDARD.encode(&token),
        "b64url": base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(&token),
        "hex": hex::encode(&token),
        "urlenc": enc_url,
    });
    (
        200,
        vec![
            ("Content-Type".into(), "application/json".into()),
            ("X-Echo".into(), auth),
        ],
        body.to_string().into_bytes(),
    )
}

fn nothing(_: &Seen, _: u16) -> (u16, Vec<(String, String)>, Vec<u8>) {
    (200, vec![], b"foreign".to_vec())
}

struct Server {
    child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
    next_id: u64,
}

impl Server {
    fn start(home: &Path, agent: &str) -> Server {
        let child = spawn_stdio(serve_cmd(home, &["--agent", agent]), Stdio::piped());
        Server::initialized(child, "claude-desktop")
    }

    /// Speaks MCP on the stdio of a spawned `serve` (stdin and stdout piped):
    /// initializes with `client_name` as `clientInfo.name`.
    fn initialized(mut child: Child, client_name: &str) -> Server {
        let stdin = child.stdin.take().unwrap();
        let stdout = BufReader::new(child.stdout.take().unwrap());
        let mut s = Server {
            child,
            stdin,
            stdout,
            next_id: 1,
        };
        let init = s.request("initialize", initialize_params(client_name));
        assert_eq!(init["result"]["serverInfo"]["name"], "airlock", "{init}");
        s.notify("notifications/initialized");
        s
    }

    fn notify(&mut self, method: &str) {
        writeln!(
            self.stdin,
            "{}",
            json!({"jsonrpc": "2.0", "method": method})
        )
        .unwrap();
    }

    fn request(&mut self, method: &str, params: Value) -> Value {
        let id = self.next_id;
        self.next_id += 1;
        writeln!(
            self.stdin,
            "{}",
            json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params})
        )
        .unwrap();
        self.stdin.flush().unwrap();
        read_response(&mut self.stdout, id, "server closed stdout")
    }

    /// Calls a tool; returns (is_error, text) of its result. A JSON-RPC error (or a
    /// result without text content) is not a tool result: the harness panics with
    /// the whole message instead of handing callers `(false, "")`, which a
    /// "not contains" assertion would wave through.
    fn call(&mut self, tool: &str, args: Value) -> (bool, String) {
        let v = self.request("tools/call", json!({"name": tool, "arguments": args}));
        tool_result(&v)
    }

    /// `execute` with just a capability, a method and a path.
    fn execute(&mut self, capability: &str, method: &str, path: &str) -> (bool, String) {
        self.call(
            "execute",
            json!({"capability": capability, "method": method, "path": path}),
        )
    }

    fn stop(mut self) -> String {
        drop(self.stdin);
        let status = self.child.wait().unwrap();
        assert!(status.success(), "serve exited with {status}");
        read_stderr(&mut self.child)
    }
}

/// Fails if any file under `$AIRLOCK_HOME` holds any canary in any of its forms
/// (`homes`); checks first that the audit log is non-empty.
fn assert_no_canary_in_home(home: &Path, canaries: &[&str]) {
    homes::assert_no_canary_in_home(home, &home.join("audit"), canaries);
}

/// Ends a child at once and reaps it.
fn end(mut child: Child) {
    child.kill().ok();
    child.wait().ok();
}

/// An upstream that reflects, a home `setup` for it, and a server for agent "tester".
fn serving() -> (Upstream, tempfile::TempDir, PathBuf, Server) {
    let upstream = Upstream::start(reflect);
    let (dir, home) = setup(&upstream);
    let s = Server::start(&home, "tester");
    (upstream, dir, home, s)
}

/// Every audit record, parsed.
fn records(home: &PathBuf) -> Vec<Value> {
    let out = airlock(home, &["logs", "--json"], &[]);
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// Fails unless the command succeeded, showing what it printed.
fn assert_ok(out: &std::process::Output) {
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

fn airlock(home: &PathBuf, args: &[&str], env: &[(&str, &str)]) -> std::process::Output {
    let mut c = Command::new(env!("CARGO_BIN_EXE_airlock"));
    c.args(args).env("AIRLOCK_HOME", home).stdin(Stdio::null());
    for (k, v) in env {
        c.env(k, v);
    }
    c.output().unwrap()
}

const SECRET: &str = "sk_live_CANARY_4f9a8b7c6d5e4f3a2b1c";

fn setup(upstream: &Upstream) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("home");
    let url = format!("http://127.0.0.1:{}/base", upstream.port);
    let out = airlock(
        &home,
        &["add", "svc", "--cap", "--url", &url, "--key-from-env", "K"],
        &[("K", SECRET)],
    );
    assert_ok(&out);
    let out = airlock(
        &home,
        &[
            "cap",
            "add",
            "ro",
            "--service",
            "svc",
            "--allow",
            "GET /v1/**",
            "--deny",
            "* /v1/admin/**",
            "--requires-reason",
        ],
        &[],
    );
    assert_ok(&out);
    let out = airlock(
        &home,
        &[
            "cap",
            "add",
            "mine",
            "--service",
            "svc",
            "--agents",
            "tester",
        ],
        &[],
    );
    assert!(out.status.success());
    (dir, home)
}

fn leak_forms() -> Vec<String> {
    vec![
        SECRET.to_string(),
        base64::engine::general_purpose::STANDARD.encode(SECRET),
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(SECRET),
        hex::encode(SECRET),
    ]
}

#[test]
fn execute_injects_the_credential_and_the_agent_never_sees_it() {
    let (upstream, _d, _home, mut s) = serving();
    let (err, text) = s.call(
        "execute",
        json!({"capability": "svc", "method": "get", "path": "/v1/x/../items", "query": {"limit": 3}, "reason": "test"}),
    );
    assert!(!err, "{text}");
    let reqs = upstream.requests();
    assert_eq!(reqs.len(), 1);
    assert_eq!(reqs[0].request_line, "GET /base/v1/items?limit=3 HTTP/1.1");
    assert_eq!(
        reqs[0].header("authorization"),
        Some(format!("Bearer {SECRET}").as_str())
    );
    for form in leak_forms() {
        assert!(
            !text.contains(&form),
            "the agent saw the secret as {form}: {text}"
        );
    }
    let v: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(v["status"], 200);
    assert!(text.contains("[REDACTED:svc]"), "{text}");
    assert_eq!(v["headers"]["x-echo"], "Bearer [REDACTED:svc]");
    let stderr = s.stop();
    assert!(!stderr.contains(SECRET));
}

#[test]
fn no_path_header_or_redirect_moves_the_credential_elsewhere() {
    let upstream = Upstream::start(reflect);
    let foreign = Upstream::start(nothing);
    let (_d, home) = setup(&upstream);
    let mut s = Server::start(&home, "tester");
    let fp = foreign.port;
    let paths = [
        format!("http://127.0.0.1:{fp}/steal"),
        format!("//127.0.0.1:{fp}/steal"),
        format!("@127.0.0.1:{fp}/steal"),
        format!("/..//127.0.0.1:{fp}/steal"),
        format!("/%2f%2f127.0.0.1:{fp}/steal"),
        "/v1\\..\\admin".to_string(),
        "/v1/\r\nHost: evil".to_string(),
    ];
    for p in &paths {
        // None of these is a path that normalizes unambiguously: all refused.
        let (err, text) = s.call(
            "execute",
            json!({"capability": "svc", "method": "GET", "path": p}),
        );
        assert!(err, "{p:?} was not refused: {text}");
        assert!(text.contains("refused by the path check"), "{p:?}: {text}");
    }
    assert!(
        upstream.requests().is_empty(),
        "a refused path reached the upstream"
    );
    // Headers that would redirect or override.
    let (err, text) = s.call(
        "execute",
        json!({"capability": "svc", "method": "GET", "path": "/v1/h", "headers": {
            "Host": format!("127.0.0.1:{fp}"), "Authorization": "Bearer agent-chosen", "Cookie": "a=b",
            "X-HTTP-Method-Override": "DELETE", "Proxy-Authorization": "x", "X-Ok": "kept"}}),
    );
    if !err {
        let reqs = upstream.requests();
        let last = reqs.last().unwrap();
        assert_eq!(
            last.header("authorization"),
            Some(format!("Bearer {SECRET}").as_str())
        );
        assert_eq!(
            last.header("host"),
            Some(format!("127.0.0.1:{}", upstream.port).as_str())
        );
        for h in ["cookie", "x-http-method-override", "proxy-authorization"] {
            assert!(
                last.header(h).is_none(),
                "{h} reached the upstream: {last:?}"
            );
        }
    } else {
        assert!(text.contains("header"), "{text}");
    }
    // A redirect to the foreign server is returned, not followed.
    let (err, text) = s.call(
        "execute",
        json!({"capability": "svc", "method": "GET", "path": format!("/redirect?to={fp}")}),
    );
    assert!(!err, "{text}");
    let v: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(v["status"], 302);
    std::thread::sleep(Duration::from_millis(200));
    assert!(
        foreign.requests().is_empty(),
        "the foreign server was reached: {:?}",
        foreign.requests()
    );
    for r in upstream.requests() {
        assert!(r.request_line.starts_with("GET /base/"), "{r:?}");
    }
    s.stop();
}

#[test]
fn refusals_name_the_check_and_are_audited() {
    let upstream = Upstream::start(reflect);
    let (_d, home) = setup(&upstream);
    let mut s = Server::start(&home, "someone-else");
    let cases = [
        (
            json!({"capability": "ro", "method": "GET", "path": "/v1/admin/users", "reason": "r"}),
            "rule",
            "* /v1/admin/**",
        ),
        (
            json!({"capability": "ro", "method": "POST", "path": "/v1/items", "reason": "r"}),
            "rule",
            "no allow rule",
        ),
        (
            json!({"capability": "ro", "method": "GET", "path": "/v1/items"}),
            "reason",
            "requires a reason",
        ),
        (
            json!({"capability": "ro", "method": "GET", "path": "/v1/%2fadmin", "reason": "r"}),
            "path",
            "",
        ),
        (
            json!({"capability": "mine", "method": "GET", "path": "/x"}),
            "agent",
            "not granted to agent \"someone-else\"",
        ),
        (
            json!({"capability": "nope", "method": "GET", "path": "/x"}),
            "capability",
            "unknown capability",
        ),
    ];
    for (args, check, needle) in &cases {
        let (err, text) = s.call("execute", args.clone());
        assert!(err, "{args}: {text}");
        assert!(
            text.contains(&format!("refused by the {check} check")),
            "{args}: {text}"
        );
        assert!(text.contains(needle), "{args}: {text}");
    }
    assert!(
        upstream.requests().is_empty(),
        "a refused request reached the upstream"
    );
    s.stop();
    let lines = records(&home);
    let denials = lines.iter().filter(|r| r["decision"] == "deny").count();
    assert_eq!(denials, cases.len(), "every refusal is audited: {lines:?}");
    let verify = airlock(&home, &["audit", "verify"], &[]);
    assert_ok(&verify);
}

#[test]
fn list_whoami_and_explain_show_what_the_agent_may_do() {
    let (_upstream, _d, home, mut s) = serving();
    let (err, text) = s.call("list_services", json!({}));
    assert!(!err);
    let v: Value = serde_json::from_str(&text).unwrap();
    let names = field_strs(&v["capabilities"], "capability");
    assert_eq!(names, ["mine", "ro", "svc"]);
    let (_, who) = s.call("whoami", json!({}));
    let who: Value = serde_json::from_str(&who).unwrap();
    assert_eq!(who["agent"], "tester");
    assert_eq!(who["trusted"], true);
    assert_eq!(who["declared_name"], "claude-desktop");
    let (_, steps) = s.call(
        "explain_access",
        json!({"capability": "ro", "method": "GET", "path": "/v1/admin/x"}),
    );
    assert!(
        steps.contains("deny wins") || steps.contains("denied"),
        "{steps}"
    );
    s.stop();
    // Without --agent, a client naming itself "tester" gets nothing more.
    let mut s = Server::start(&home, "x");
    let (_, who) = s.call("whoami", json!({}));
    assert!(!who.contains("\"mine\""), "{who}");
    s.stop();
}

#[test]
fn an_edited_config_is_picked_up_and_an_invalid_one_is_ignored() {
    let (_upstream, _d, home, mut s) = serving();
    assert!(!s.execute("svc", "GET", "/v1/a").0);
    let cfg = home.join("airlock.toml");
    let text = std::fs::read_to_string(&cfg).unwrap();
    std::thread::sleep(Duration::from_millis(20));
    std::fs::write(
        &cfg,
        text.replace(
            "[capabilities.svc]\nservice = \"svc\"",
            "[capabilities.svc]\nservice = \"svc\"\ndeny = [\"GET /v1/a\"]",
        ),
    )
    .unwrap();
    let (err, msg) = s.execute("svc", "GET", "/v1/a");
    assert!(err && msg.contains("GET /v1/a"), "{msg}");
    std::thread::sleep(Duration::from_millis(20));
    std::fs::write(&cfg, "this is not toml").unwrap();
    let (err, msg) = s.execute("svc", "GET", "/v1/a");
    assert!(
        err && msg.contains("rule"),
        "the previous config stays in force: {msg}"
    );
    let stderr = s.stop();
    assert!(
        stderr.contains("keeping the previous configuration"),
        "{stderr}"
    );
}

#[test]
fn per_service_limits_from_the_config_apply() {
    let upstream = Upstream::start(reflect);
    let (_d, home) = setup(&upstream);
    let cfg = home.join("airlock.toml");
    let text = std::fs::read_to_string(&cfg).unwrap();
    let limited = text.replace(
        "auth = { type = \"bearer\", secret = \"svc\" }",
        "auth = { type = \"bearer\", secret = \"svc\" }\nmax_response_bytes = 16",
    );
    assert_ne!(text, limited);
    std::fs::write(&cfg, limited).unwrap();
    let mut s = Server::start(&home, "tester");
    let (err, msg) = s.execute("svc", "GET", "/v1/a");
    assert!(err, "{msg}");
    assert!(msg.contains("over the 16-byte limit"), "{msg}");
    s.stop();
    let logs = String::from_utf8(airlock(&home, &["logs", "--json"], &[]).stdout).unwrap();
    assert!(logs.contains("\"status\":502"), "{logs}");
}

#[test]
fn the_secret_is_in_no_file_and_no_output_after_a_full_run() {
    let (upstream, _d, home, mut s) = serving();
    let mut outputs = String::new();
    for args in [
        json!({"capability": "svc", "method": "GET", "path": "/v1/a", "reason": "canary"}),
        json!({"capability": "svc", "method": "POST", "path": "/v1/b", "body": {"k": "v"}}),
        json!({"capability": "ro", "method": "GET", "path": "/v1/admin", "reason": "r"}),
    ] {
        outputs.push_str(&s.call("execute", args).1);
    }
    outputs.push_str(&s.call("list_services", json!({})).1);
    outputs.push_str(&s.stop());
    for args in [
        &["logs"][..],
        &["logs", "--json"],
        &["audit", "verify"],
        &["list", "--json"],
        &["secret", "list", "--json"],
    ] {
        let out = airlock(&home, args, &[]);
        outputs.push_str(&String::from_utf8_lossy(&out.stdout));
        outputs.push_str(&String::from_utf8_lossy(&out.stderr));
    }
    let files = home_files(&home);
    assert_no_canary_in_home(&home, &[SECRET]);
    let post = upstream
        .requests()
        .into_iter()
        .find(|r| r.request_line.starts_with("POST"))
        .unwrap();
    assert_eq!(post.body, br#"{"k":"v"}"#);
    assert_eq!(post.header("content-type"), Some("application/json"));
    for form in leak_forms() {
        assert!(!outputs.contains(&form), "output leaks {form}");
        for (p, bytes) in &files {
            assert!(
                !String::from_utf8_lossy(bytes).contains(&form),
                "{} leaks {form}",
                p.display()
            );
        }
    }
}

/// Query values are data the agent sends, not metadata airlock keeps: canaries
/// sent as query values — the MCP `execute` tool's `query` map, a `?k=v` in its
/// `path`, and a `?k=v` through the HTTP gateway — reach the upstream, and no
/// file under `$AIRLOCK_HOME` (audit log included) holds any of them; the audit
/// records name the parameters (`query_keys`) only.
#[test]
fn query_values_reach_the_upstream_and_no_file_under_the_home() {
    const IN_QUERY: &str = "qv_CANARY_mcp_query_5b2d";
    const IN_PATH: &str = "qv_CANARY_mcp_path_8e1f";
    const IN_GATEWAY: &str = "qv_CANARY_gateway_3a7c";
    let (upstream, _d, home, mut s) = serving();
    let (err, text) = s.call(
        "execute",
        json!({"capability": "svc", "method": "GET", "path": format!("/v1/q?k2={IN_PATH}"),
               "query": {"k": IN_QUERY, "n": 3}}),
    );
    assert!(!err, "{text}");
    s.stop();
    let tok = token(&home, &[]);
    let (mut gw, addr) = start_gateway(&home);
    let resp = raw_http(
        &addr,
        &format!(
            "GET /svc/v1/g?k={IN_GATEWAY}&flag HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {tok}\r\nConnection: close\r\n\r\n"
        ),
    );
    assert!(resp.starts_with("HTTP/1.1 200"), "{resp}");
    gw.kill().unwrap();
    gw.wait().unwrap();

    let lines: Vec<String> = upstream
        .requests()
        .iter()
        .map(|r| r.request_line.clone())
        .collect();
    assert!(
        lines
            .iter()
            .any(|l| l.contains(IN_PATH) && l.contains(IN_QUERY)),
        "{lines:?}"
    );
    assert!(lines.iter().any(|l| l.contains(IN_GATEWAY)), "{lines:?}");
    assert_no_canary_in_home(&home, &[IN_QUERY, IN_PATH, IN_GATEWAY, SECRET]);
    // The records name the keys.
    let logs = airlock(&home, &["logs", "--json"], &[]);
    let keys: Vec<Value> = String::from_utf8_lossy(&logs.stdout)
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .filter(|r| r["kind"] == "request")
        .map(|r| r["query_keys"].clone())
        .collect();
    assert!(keys.contains(&json!(["k2", "k", "n"])), "{keys:?}");
    assert!(keys.contains(&json!(["k", "flag"])), "{keys:?}");
}

#[test]
fn http_transport_requires_a_valid_token() {
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("home");
    assert!(airlock(&home, &["init"], &[]).status.success());
    let (child, addr) = serve_listening(&home, &["--http", "127.0.0.1:0"]);
    let body = r#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"x","version":"1"}}}"#;
    let post = |auth: &str| {
        let mut s = TcpStream::connect(&addr).unwrap();
        let req = format!(
            "POST /mcp HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\nAccept: application/json, text/event-stream\r\n{auth}Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        );
        // `auth` may carry extra header lines (Origin) after the token.
        s.write_all(req.as_bytes()).unwrap();
        let mut resp = String::new();
        s.read_to_string(&mut resp).ok();
        resp
    };
    let resp = post("");
    assert!(resp.starts_with("HTTP/1.1 401"), "{resp}");
    assert!(resp.contains("airlock token issue"), "{resp}");
    assert!(post("Authorization: Bearer airlock_0000_bogus\r\n").starts_with("HTTP/1.1 401"));
    let out = airlock(
        &home,
        &["token", "issue", "--agent", "ci-bot", "--json"],
        &[],
    );
    assert_ok(&out);
    let token: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(token["agent"], "ci-bot");
    let resp = post(&format!(
        "Authorization: Bearer {}\r\n",
        token["token"].as_str().unwrap()
    ));
    assert!(resp.starts_with("HTTP/1.1 200"), "{resp}");
    assert!(resp.contains("\"airlock\""), "{resp}");
    // A web page cannot reach the local server through the user's browser.
    let resp = post(&format!(
        "Authorization: Bearer {}\r\nOrigin: http://evil.example\r\n",
        token["token"].as_str().unwrap()
    ));
    assert!(resp.starts_with("HTTP/1.1 403"), "{resp}");
    end(child);
    // The token is stored only as a hash.
    let stored = std::fs::read_to_string(home.join("state/tokens.json")).unwrap();
    assert!(!stored.contains(token["token"].as_str().unwrap()));
}

#[test]
fn mcp_config_prints_a_snippet_for_each_client() {
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("home");
    for client in ["claude-desktop", "claude-code", "cursor"] {
        let out = airlock(&home, &["mcp-config", client], &[]);
        assert!(out.status.success());
        let v: Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(
            v["mcpServers"]["airlock"]["args"],
            json!(["serve", "--agent", client])
        );
        assert_eq!(
            v["mcpServers"]["airlock"]["env"]["AIRLOCK_HOME"],
            home.to_string_lossy().as_ref()
        );
    }
    let v: Value =
        serde_json::from_slice(&airlock(&home, &["mcp-config", "vscode"], &[]).stdout).unwrap();
    assert_eq!(v["servers"]["airlock"]["type"], "stdio");
    let codex = String::from_utf8(airlock(&home, &["mcp-config", "codex"], &[]).stdout).unwrap();
    assert!(
        codex.contains("[mcp_servers.airlock]") && codex.contains("\"codex\""),
        "{codex}"
    );
    let out = airlock(&home, &["mcp-config", "notepad"], &[]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("expected one of: claude-desktop"));
}

#[test]
fn audit_verify_names_the_first_tampered_record_and_exits_1() {
    let (_upstream, _d, home, mut s) = serving();
    for i in 0..4 {
        s.call(
            "execute",
            json!({"capability": "svc", "method": "GET", "path": format!("/v1/{i}")}),
        );
    }
    s.stop();
    assert!(airlock(&home, &["audit", "verify"], &[]).status.success());
    let log = audit_jsonl(&home.join("audit"));
    let text = std::fs::read_to_string(&log).unwrap();
    std::fs::write(&log, text.replacen("/v1/2", "/v1/9", 1)).unwrap();
    let out = airlock(&home, &["audit", "verify"], &[]);
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let msg = String::from_utf8_lossy(&out.stdout);
    // Each request has two records (its decision, then its outcome).
    let first = text.lines().position(|l| l.contains("/v1/2")).unwrap() + 1;
    assert!(
        msg.contains(&format!("line {first} ")),
        "names the first bad record (line {first}): {msg}"
    );
    // Deleting the newest record is caught by the anchor.
    let lines: Vec<&str> = text.lines().collect();
    std::fs::write(&log, format!("{}\n", lines[..lines.len() - 1].join("\n"))).unwrap();
    let out = airlock(&home, &["audit", "verify"], &[]);
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
}

#[test]
fn logs_follow_shows_new_records_as_they_happen() {
    let (_upstream, _d, home, mut s) = serving();
    s.execute("svc", "GET", "/v1/first");
    let mut follow = Command::new(env!("CARGO_BIN_EXE_airlock"))
        .args(["logs", "-f", "--capability", "svc"])
        .env("AIRLOCK_HOME", &home)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let (mut out, mut line) = first_line(&mut follow);
    assert!(line.contains("/v1/first"), "{line}");
    s.execute("svc", "GET", "/v1/second");
    // The next records: /v1/first's outcome, then /v1/second's decision.
    for _ in 0..3 {
        line.clear();
        out.read_line(&mut line).unwrap();
        if line.contains("/v1/second") {
            break;
        }
    }
    assert!(
        line.contains("GET /v1/second") && line.contains("allow"),
        "{line}"
    );
    follow.kill().unwrap();
    follow.wait().unwrap();
    s.stop();
}

#[test]
fn serve_and_token_bad_inputs_are_one_line_errors() {
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("home");
    assert!(airlock(&home, &["init"], &[]).status.success());
    let cases: &[(&[&str], &str)] = &[
        (&["serve", "--agent", "bad name"], "invalid agent name"),
        (
            &["token", "issue", "--agent", "a", "--cap", "nope"],
            "unknown capability \"nope\"",
        ),
        (
            &["token", "issue", "--agent", "a", "--ttl", "forever"],
            "invalid duration",
        ),
        (&["token", "issue", "--agent", "a b"], "invalid agent name"),
        (
            &["serve", "--http", "256.0.0.1:1"],
            "cannot listen on 256.0.0.1:1",
        ),
        (&["logs", "--since", "yesterday"], "invalid duration"),
    ];
    for (args, needle) in cases {
        let out = airlock(&home, args, &[]);
        let err = exit_2(args, &out, needle);
        assert_eq!(
            err.lines().filter(|l| l.starts_with("error:")).count(),
            1,
            "{args:?}: {err}"
        );
    }
    // A passphrase vault cannot prompt on stdio (stdin is the protocol).
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("home");
    assert!(
        airlock(
            &home,
            &["init", "--passphrase"],
            &[("AIRLOCK_PASSPHRASE", "pw")]
        )
        .status
        .success()
    );
    let out = airlock(&home, &["serve"], &[]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("AIRLOCK_PASSPHRASE"));
}

#[test]
fn revoke_and_lock_apply_to_every_running_server_at_once() {
    let upstream = Upstream::start(reflect);
    let (_d, home) = setup(&upstream);
    let get = json!({"capability": "svc", "method": "GET", "path": "/v1/a"});
    let mut s1 = Server::start(&home, "tester");
    let mut s2 = Server::start(&home, "other");
    assert!(!s1.call("execute", get.clone()).0);
    assert!(!s2.call("execute", get.clone()).0);
    let listed: Value =
        serde_json::from_slice(&airlock(&home, &["sessions", "--json"], &[]).stdout).unwrap();
    let sessions = listed.as_array().unwrap();
    assert_eq!(sessions.len(), 2, "{listed}");
    assert!(sessions.iter().all(|s| s["status"] == "active"));
    let s2_id = sessions.iter().find(|s| s["agent"] == "other").unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();

    // Revoking an agent ends its sessions in the server that runs them, at once.
    let out = airlock(&home, &["revoke", "--agent", "tester"], &[]);
    assert_ok(&out);
    assert!(String::from_utf8_lossy(&out.stdout).contains("1 active session(s) ended"));
    let (err, msg) = s1.call("execute", get.clone());
    assert!(err && msg.contains("revoked by the owner"), "{msg}");
    assert!(
        !s2.call("execute", get.clone()).0,
        "other agents are untouched"
    );

    // The lock stops everything in every server; unlock needs the key and restores.
    assert!(airlock(&home, &["lock"], &[]).status.success());
    let (err, msg) = s2.call("execute", get.clone());
    assert!(err && msg.contains("refused by the lock check"), "{msg}");
    // A server started while locked obeys too (the lock is persisted).
    let mut s3 = Server::start(&home, "third");
    assert!(s3.call("execute", get.clone()).0);
    assert!(airlock(&home, &["unlock"], &[]).status.success());
    assert!(!s2.call("execute", get.clone()).0);
    assert!(!s3.call("execute", get.clone()).0);
    assert!(
        s1.call("execute", get.clone()).0,
        "a revoked session stays revoked after unlock"
    );

    // One session by id.
    assert!(airlock(&home, &["revoke", &s2_id], &[]).status.success());
    assert!(s2.call("execute", get.clone()).0);
    let out = airlock(&home, &["revoke", "s-nonexistent"], &[]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no session \"s-nonexistent\""));
    let out = airlock(&home, &["revoke"], &[]);
    assert_eq!(out.status.code(), Some(2), "revoke needs a target");

    // Everything.
    assert!(airlock(&home, &["revoke", "--all"], &[]).status.success());
    assert!(s3.call("execute", get.clone()).0);
    for s in [s1, s2, s3] {
        s.stop();
    }
    let left: Vec<PathBuf> = std::fs::read_dir(&home)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "sock"))
        .collect();
    assert!(
        left.is_empty(),
        "sockets left after the servers stopped: {left:?}"
    );
    let logs = String::from_utf8(airlock(&home, &["logs", "--json"], &[]).stdout).unwrap();
    for kind in [
        "\"kind\":\"lock\"",
        "\"kind\":\"unlock\"",
        "\"kind\":\"revoke\"",
    ] {
        assert!(logs.contains(kind), "{kind} not audited");
    }
    assert!(airlock(&home, &["audit", "verify"], &[]).status.success());
}

#[test]
fn header_query_and_basic_credentials_are_injected_where_the_service_wants_them() {
    let upstream = Upstream::start(reflect);
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("home");
    let url = format!("http://127.0.0.1:{}", upstream.port);
    for (name, auth) in [
        ("h", "--auth header --header-name X-Api-Key"),
        ("q", "--auth query --param api_key"),
        ("b", "--auth basic --username me"),
    ] {
        let mut args = vec!["add", name, "--cap", "--url", &url];
        args.extend(auth.split(' '));
        args.extend(["--key-from-env", "K"]);
        assert_ok(&airlock(&home, &args, &[("K", SECRET)]));
    }
    let mut s = Server::start(&home, "tester");
    let (err, text) = s.call(
        "execute",
        json!({"capability": "h", "method": "GET", "path": "/x", "headers": {"X-Api-Key": "agent-chosen"}}),
    );
    assert!(!err, "{text}");
    let (err, text) = s.execute("q", "GET", "/y?api_key=agent-chosen&a=1");
    assert!(!err, "{text}");
    let (err, text) = s.execute("b", "GET", "/z");
    assert!(!err, "{text}");
    s.stop();
    let reqs = upstream.requests();
    assert_eq!(
        reqs[0].header("x-api-key"),
        Some(SECRET),
        "the agent's copy is replaced"
    );
    assert!(reqs[0].header("authorization").is_none());
    assert!(
        reqs[1].request_line.contains(&format!("api_key={SECRET}")),
        "{}",
        reqs[1].request_line
    );
    assert!(
        !reqs[1].request_line.contains("agent-chosen"),
        "{}",
        reqs[1].request_line
    );
    let basic = base64::engine::general_purpose::STANDARD.encode(format!("me:{SECRET}"));
    assert_eq!(
        reqs[2].header("authorization"),
        Some(format!("Basic {basic}").as_str())
    );
}

const MINTED: &str = "minted_CANARY_tok_9f8e7d6c5b4a3f2e1d0c";

/// A token endpoint (`POST /token`) and an API that reflects the credential.
fn token_and_reflect(seen: &Seen, port: u16) -> (u16, Vec<(String, String)>, Vec<u8>) {
    if seen.request_line.starts_with("POST /token") {
        let body = json!({"access_token": MINTED, "token_type": "Bearer", "expires_in": 3600});
        return (
            200,
            vec![("Content-Type".into(), "application/json".into())],
            body.to_string().into_bytes(),
        );
    }
    reflect(seen, port)
}

#[test]
fn no_secret_part_and_no_minted_token_reaches_a_file_or_an_output() {
    let upstream = Upstream::start(token_and_reflect);
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("home");
    let url = format!("http://127.0.0.1:{}", upstream.port);
    let token_url = format!("{url}/token");
    let parts = [
        ("A", "AKIA_CANARY_PART_1a2b3c4d"),
        ("S", "aws_CANARY_secret_part_5e6f7a8b"),
        ("C1", "ck_CANARY_consumer_key_0a1b"),
        ("C2", "cs_CANARY_consumer_secret_2c3d"),
        ("CS", "client_CANARY_secret_4e5f6a7b"),
    ];
    let mut outputs = String::new();
    for args in [
        vec![
            "add",
            "aws",
            "--cap",
            "--url",
            &url,
            "--auth",
            "aws-sigv4",
            "--region",
            "us-east-1",
            "--aws-service",
            "execute-api",
            "--access-key-id-from-env",
            "A",
            "--secret-access-key-from-env",
            "S",
        ],
        vec![
            "add",
            "o1",
            "--cap",
            "--url",
            &url,
            "--auth",
            "oauth1",
            "--consumer-key-from-env",
            "C1",
            "--consumer-secret-from-env",
            "C2",
        ],
        vec![
            "add",
            "o2",
            "--cap",
            "--url",
            &url,
            "--auth",
            "oauth2",
            "--token-url",
            &token_url,
            "--client-id",
            "cid",
            "--client-secret-from-env",
            "CS",
        ],
    ] {
        let out = airlock(&home, &args, &parts);
        assert_ok(&out);
        outputs.push_str(&String::from_utf8_lossy(&out.stdout));
        outputs.push_str(&String::from_utf8_lossy(&out.stderr));
    }
    let mut s = Server::start(&home, "tester");
    for cap in ["aws", "o1", "o2", "o2"] {
        let (err, text) = s.call(
            "execute",
            json!({"capability": cap, "method": "GET", "path": "/v1/x"}),
        );
        assert!(!err, "{cap}: {text}");
        outputs.push_str(&text);
    }
    outputs.push_str(&s.stop());
    for args in [
        &["logs", "--json"][..],
        &["list", "--json"],
        &["secret", "list", "--json"],
        &["sessions", "--json"],
    ] {
        let out = airlock(&home, args, &[]);
        outputs.push_str(&String::from_utf8_lossy(&out.stdout));
        outputs.push_str(&String::from_utf8_lossy(&out.stderr));
    }
    // The upstream did get the minted token, once (cached for the second call).
    let reqs = upstream.requests();
    assert_eq!(
        reqs.iter()
            .filter(|r| r.request_line.starts_with("POST /token"))
            .count(),
        1
    );
    assert!(
        reqs.iter()
            .any(|r| r.header("authorization") == Some(format!("Bearer {MINTED}").as_str()))
    );
    assert!(reqs.iter().any(|r| {
        r.header("authorization")
            .is_some_and(|a| a.starts_with("AWS4-HMAC-SHA256"))
    }));
    assert!(reqs.iter().any(|r| {
        r.header("authorization")
            .is_some_and(|a| a.starts_with("OAuth "))
    }));
    let mut files = Vec::new();
    let mut stack = vec![home.clone()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap().flatten() {
            if e.path().is_dir() {
                stack.push(e.path());
            } else {
                files.push((e.path(), std::fs::read(e.path()).unwrap()));
            }
        }
    }
    let canaries: Vec<&str> = parts.iter().map(|(_, v)| *v).chain([MINTED]).collect();
    for c in canaries {
        for form in [
            c.to_string(),
            base64::engine::general_purpose::STANDARD.encode(c),
            hex::encode(c),
        ] {
            assert!(!outputs.contains(&form), "output leaks {c} as {form}");
            for (p, bytes) in &files {
                assert!(
                    !String::from_utf8_lossy(bytes).contains(&form),
                    "{} leaks {c}",
                    p.display()
                );
            }
        }
    }
}

// ---------------------------------------------------------------- HTTP gateway

/// Starts `airlock serve --gateway 127.0.0.1:0`; returns the child and its address.
fn start_gateway(home: &Path) -> (Child, String) {
    serve_listening(home, &["--gateway", "127.0.0.1:0"])
}

/// Starts `airlock serve ARGS` (a listener on port 0); the child and its address.
fn serve_listening(home: &Path, args: &[&str]) -> (Child, String) {
    spawn_listener(serve_cmd(home, args), args)
}

/// `airlock serve ARGS` on `home`, not yet spawned.
fn serve_cmd(home: &Path, args: &[&str]) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_airlock"));
    c.arg("serve").args(args).env("AIRLOCK_HOME", home);
    c
}

/// Spawns with stdin and stdout piped (an MCP client's stdio), stderr as given.
fn spawn_stdio(mut c: Command, stderr: Stdio) -> Child {
    c.stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(stderr)
        .spawn()
        .unwrap()
}

/// Spawns a listener (only its stderr piped) and reads the address it prints.
fn spawn_listener(mut c: Command, what: &[&str]) -> (Child, String) {
    let child = c
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    listening(child, what)
}

/// The address a spawned `serve` (stderr piped) prints on stderr; its stderr is
/// drained from then on. Panics, having killed the child, when none is printed.
fn listening(mut child: Child, what: &[&str]) -> (Child, String) {
    let mut err = BufReader::new(child.stderr.take().unwrap());
    for _ in 0..5 {
        let mut line = String::new();
        err.read_line(&mut line).unwrap();
        if let Some(rest) = line.split("http://").nth(1) {
            let addr = rest.split('/').next().unwrap().to_string();
            std::thread::spawn(move || std::io::copy(&mut err, &mut std::io::sink()));
            return (child, addr);
        }
    }
    end(child);
    panic!("serve {what:?} printed no address");
}

/// One raw HTTP/1.1 exchange; returns the whole response text.
fn raw_http(addr: &str, request: &str) -> String {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.write_all(request.as_bytes()).unwrap();
    let mut resp = Vec::new();
    s.read_to_end(&mut resp).ok();
    String::from_utf8_lossy(&resp).into_owned()
}

fn token(home: &PathBuf, extra: &[&str]) -> String {
    let mut args = vec!["token", "issue", "--agent", "sdk", "--json"];
    args.extend_from_slice(extra);
    let out = airlock(home, &args, &[]);
    assert_ok(&out);
    serde_json::from_slice::<Value>(&out.stdout).unwrap()["token"]
        .as_str()
        .unwrap()
        .to_string()
}

#[test]
fn the_gateway_swaps_the_agent_token_for_the_credential_and_refuses_tricks() {
    let upstream = Upstream::start(reflect);
    let foreign = Upstream::start(nothing);
    let (_d, home) = setup(&upstream);
    let tok = token(&home, &[]);
    let (gw, addr) = start_gateway(&home);
    let get = |path: &str, headers: &str| {
        raw_http(
            &addr,
            &format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\n{headers}Connection: close\r\n\r\n"),
        )
    };
    // The token works in each of the three headers, and never reaches the upstream.
    for h in [
        format!("Authorization: Bearer {tok}\r\n"),
        format!("x-api-key: {tok}\r\n"),
        format!("api-key: {tok}\r\n"),
    ] {
        let resp = get("/svc/v1/items?limit=2", &h);
        assert!(resp.starts_with("HTTP/1.1 200"), "{resp}");
        assert!(
            resp.contains("[REDACTED:svc]") && !resp.contains(SECRET),
            "{resp}"
        );
    }
    for r in upstream.requests() {
        assert_eq!(r.request_line, "GET /base/v1/items?limit=2 HTTP/1.1");
        assert_eq!(
            r.header("authorization"),
            Some(format!("Bearer {SECRET}").as_str())
        );
        assert!(
            !r.headers.iter().any(|(_, v)| v.contains(&tok)),
            "the agent token was forwarded: {r:?}"
        );
    }
    let auth = format!("Authorization: Bearer {tok}\r\n");
    let fp = foreign.port;
    let cases: Vec<(String, String, &str)> = vec![
        (
            format!("http://127.0.0.1:{fp}/steal"),
            auth.clone(),
            "HTTP/1.1 400",
        ),
        (
            format!("/svc//127.0.0.1:{fp}/steal"),
            auth.clone(),
            "HTTP/1.1 403",
        ),
        (
            "/svc/v1/%2e%2e/%2e%2e/x".into(),
            auth.clone(),
            "HTTP/1.1 403",
        ),
        ("/svc/v1/%2fadmin".into(), auth.clone(), "HTTP/1.1 403"),
        ("/ro/v1/admin/users".into(), auth.clone(), "HTTP/1.1 403"),
        (
            format!("/svc/x?api_key={tok}"),
            String::new(),
            "HTTP/1.1 401",
        ),
        (
            "/svc/x".into(),
            "Authorization: Bearer airlock_000000000000_forged\r\n".into(),
            "HTTP/1.1 401",
        ),
        ("/svc/x".into(), String::new(), "HTTP/1.1 401"),
    ];
    for (path, headers, want) in &cases {
        let resp = get(path, headers);
        assert!(resp.starts_with(want), "{path}: {resp}");
        assert!(
            resp.contains("\"error\""),
            "{path}: JSON error body: {resp}"
        );
    }
    // The agent's Host (the gateway's) changes nothing; X-Forwarded-Host is
    // refused (a routing override, issue 14) and nothing is sent.
    let before = upstream.requests().len();
    let resp = get("/svc/v1/h", &auth);
    assert!(resp.starts_with("HTTP/1.1 200"), "{resp}");
    let last = upstream.requests()[before].clone();
    assert_eq!(
        last.header("host"),
        Some(format!("127.0.0.1:{}", upstream.port).as_str())
    );
    let resp = get(
        "/svc/v1/h",
        &format!("{auth}X-Forwarded-Host: 127.0.0.1:{fp}\r\n"),
    );
    assert!(resp.starts_with("HTTP/1.1 400"), "{resp}");
    assert!(resp.contains("x-forwarded-host"), "{resp}");
    assert_eq!(upstream.requests().len(), before + 1);
    // An upstream that is down is a 502 with a JSON body.
    let out = airlock(
        &home,
        &[
            "add",
            "down",
            "--cap",
            "--url",
            "http://127.0.0.1:9",
            "--key",
            "k",
        ],
        &[],
    );
    assert!(out.status.success());
    let resp = get("/down/x", &auth);
    assert!(resp.starts_with("HTTP/1.1 502"), "{resp}");
    // A token scoped to one capability is refused on another.
    let scoped = token(&home, &["--cap", "ro"]);
    let resp = get(
        "/svc/v1/items",
        &format!("Authorization: Bearer {scoped}\r\n"),
    );
    assert!(
        resp.starts_with("HTTP/1.1 403") && resp.contains("limited to capabilities [ro]"),
        "{resp}"
    );
    end(gw);
    assert!(
        foreign.requests().is_empty(),
        "the foreign server was reached"
    );
    assert!(airlock(&home, &["audit", "verify"], &[]).status.success());
}

#[test]
fn the_gateway_streams_and_scrubs_a_secret_split_across_chunks() {
    // An upstream that sends an SSE stream in pieces, with the secret cut in two.
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let (sent_first, first_sent) = std::sync::mpsc::channel::<()>();
    let (go_on, resume) = std::sync::mpsc::channel::<()>();
    std::thread::spawn(move || {
        let (mut s, _) = listener.accept().unwrap();
        let mut buf = [0u8; 4096];
        let _ = s.read(&mut buf);
        let (a, b) = SECRET.split_at(10);
        s.write_all(b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n").unwrap();
        let chunk = |s: &mut TcpStream, data: &str| {
            s.write_all(format!("{:x}\r\n{data}\r\n", data.len()).as_bytes())
                .unwrap();
            s.flush().unwrap();
        };
        chunk(&mut s, "data: first event\n\n");
        sent_first.send(()).unwrap();
        resume.recv_timeout(Duration::from_secs(10)).ok();
        chunk(&mut s, &format!("data: key={a}"));
        std::thread::sleep(Duration::from_millis(50));
        chunk(&mut s, &format!("{b} end\n\n"));
        s.write_all(b"0\r\n\r\n").unwrap();
    });
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("home");
    let out = airlock(
        &home,
        &[
            "add",
            "llm",
            "--cap",
            "--url",
            &format!("http://127.0.0.1:{port}"),
            "--key-from-env",
            "K",
        ],
        &[("K", SECRET)],
    );
    assert!(out.status.success());
    let tok = token(&home, &[]);
    let (gw, addr) = start_gateway(&home);
    let mut s = TcpStream::connect(&addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(s, "POST /llm/v1/stream HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {tok}\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{{}}").unwrap();
    // The first event arrives while the upstream is still holding the rest back.
    first_sent.recv_timeout(Duration::from_secs(10)).unwrap();
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    while !String::from_utf8_lossy(&got).contains("first event") {
        let n = s.read(&mut buf).unwrap();
        assert!(n > 0, "stream closed early");
        got.extend_from_slice(&buf[..n]);
    }
    go_on.send(()).unwrap();
    s.read_to_end(&mut got).ok();
    let text = String::from_utf8_lossy(&got);
    assert!(text.starts_with("HTTP/1.1 200"), "{text}");
    assert!(text.contains("[REDACTED:llm]"), "{text}");
    assert!(
        !text.contains(SECRET) && !text.contains(&SECRET[10..]),
        "{text}"
    );
    end(gw);
}

#[test]
fn a_secret_rotated_while_the_server_runs_is_used_and_scrubbed_at_once() {
    let (upstream, _d, home, mut s) = serving();
    assert!(!s.execute("svc", "GET", "/v1/a").0);
    let rotated = "sk_live_ROTATED_CANARY_0f1e2d3c4b5a";
    let out = airlock(
        &home,
        &["secret", "rotate", "svc", "--from-env", "V"],
        &[("V", rotated)],
    );
    assert_ok(&out);
    let (err, text) = s.execute("svc", "GET", "/v1/b");
    assert!(!err, "{text}");
    assert!(
        !text.contains(rotated) && text.contains("[REDACTED:svc]"),
        "{text}"
    );
    let last = upstream.requests().pop().unwrap();
    assert_eq!(
        last.header("authorization"),
        Some(format!("Bearer {rotated}").as_str())
    );
    s.stop();
}

/// Capability "guarded" on the service: every request waits for an approval.
fn add_guarded(home: &PathBuf) {
    assert_ok(&airlock(
        home,
        &["cap", "add", "guarded", "--service", "svc", "--approval"],
        &[],
    ));
}

/// Sets `[server] approval_timeout` in the home's config.
fn set_approval_timeout(home: &Path, timeout: &str) {
    let line = format!("[server]\napproval_timeout = \"{timeout}\"\n");
    edit_config(home, |text| text.replace("[server]\n", &line));
}

/// Waits until `airlock approve --json` lists a pending request; returns its id.
fn wait_for_pending(home: &PathBuf) -> String {
    for _ in 0..100 {
        let out = airlock(home, &["approve", "--json"], &[]);
        let v: Value = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
        if let Some(id) = v.get(0).and_then(|p| p["id"].as_str()) {
            return id.to_string();
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("no pending approval appeared");
}

#[test]
fn approval_holds_the_request_until_a_person_answers() {
    let upstream = Upstream::start(reflect);
    let (_d, home) = setup(&upstream);
    add_guarded(&home);
    let mut s = Server::start(&home, "tester");
    let call = json!({"capability": "guarded", "method": "GET", "path": "/v1/pay", "reason": "monthly report"});

    // Approved: the request goes through after the answer, not before.
    std::thread::scope(|scope| {
        let h = scope.spawn(|| s.call("execute", call.clone()));
        let id = wait_for_pending(&home);
        let listed = String::from_utf8(airlock(&home, &["approve"], &[]).stdout).unwrap();
        assert!(
            listed.contains("GET /v1/pay") && listed.contains("monthly report"),
            "{listed}"
        );
        assert!(upstream.requests().is_empty(), "sent before approval");
        // The request is held in the server's memory: nothing is written to state/.
        assert!(
            !home.join("state").join("approvals").exists(),
            "a pending approval was written to a file"
        );
        let out = airlock(&home, &["approve", &id], &[]);
        assert_ok(&out);
        let said = String::from_utf8(out.stdout).unwrap();
        assert!(
            said.contains(&format!("approved {id}")) && said.contains("GET /v1/pay"),
            "{said}"
        );
        let (err, text) = h.join().unwrap();
        assert!(!err, "{text}");
    });
    assert_eq!(upstream.requests().len(), 1);

    // Denied; a second answer to the same id is refused (an answer applies once).
    std::thread::scope(|scope| {
        let h = scope.spawn(|| s.call("execute", call.clone()));
        let id = wait_for_pending(&home);
        assert!(airlock(&home, &["deny", &id], &[]).status.success());
        let (err, text) = h.join().unwrap();
        assert!(err && text.contains("denied"), "{text}");
        let again = airlock(&home, &["approve", &id], &[]);
        assert_eq!(again.status.code(), Some(2));
    });
    assert_eq!(upstream.requests().len(), 1);

    // An unknown id: one line, exit 2, pointing at the list.
    for verb in ["approve", "deny"] {
        let out = airlock(&home, &[verb, "ap-00000000"], &[]);
        assert_eq!(out.status.code(), Some(2));
        let err = String::from_utf8(out.stderr).unwrap();
        assert_eq!(err.lines().count(), 1, "{err}");
        assert!(
            err.contains("no pending approval \"ap-00000000\"")
                && err.contains("`airlock approve` lists them"),
            "{err}"
        );
    }
    s.stop();

    // No server running: nothing can be waiting; one line, exit 2.
    let out = airlock(&home, &["approve", "ap-00000000"], &[]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8(out.stderr).unwrap();
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("no airlock server is running"), "{err}");
    let listed: Value =
        serde_json::from_slice(&airlock(&home, &["approve", "--json"], &[]).stdout).unwrap();
    assert_eq!(listed, json!([]));

    // No answer within approval_timeout: denied.
    set_approval_timeout(&home, "1s");
    let mut s = Server::start(&home, "tester");
    let (err, text) = s.call("execute", call.clone());
    assert!(err && text.contains("timed out"), "{text}");
    s.stop();
    let logs = String::from_utf8(airlock(&home, &["logs", "--json"], &[]).stdout).unwrap();
    for kind in [
        "\"kind\":\"approve\"",
        "\"kind\":\"deny\"",
        "\"kind\":\"approval_timeout\"",
    ] {
        assert!(logs.contains(kind), "{kind} not audited");
    }
}

/// Issue 12 (item 3): approvals are answered only over the server's control
/// socket. A file that says "approve" — what older versions read from
/// `state/approvals/<id>.answer` — is not an answer: the request stays held and is
/// denied at the timeout, and nothing reaches the upstream.
#[test]
fn an_answer_file_under_state_is_never_an_answer() {
    let upstream = Upstream::start(reflect);
    let (_d, home) = setup(&upstream);
    add_guarded(&home);
    set_approval_timeout(&home, "3s");
    let mut s = Server::start(&home, "tester");
    let call = json!({"capability": "guarded", "method": "GET", "path": "/v1/pay"});
    std::thread::scope(|scope| {
        let h = scope.spawn(|| s.call("execute", call.clone()));
        let id = wait_for_pending(&home);
        let dir = home.join("state").join("approvals");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join(format!("{id}.answer")), "approve\n").unwrap();
        std::fs::write(dir.join(format!("{id}.json")), "{}").unwrap();
        // Still pending a moment later: the file changed nothing.
        std::thread::sleep(Duration::from_millis(500));
        let listed: Value =
            serde_json::from_slice(&airlock(&home, &["approve", "--json"], &[]).stdout).unwrap();
        assert_eq!(listed[0]["id"], json!(id), "{listed}");
        let (err, text) = h.join().unwrap();
        assert!(err && text.contains("timed out"), "{text}");
    });
    assert!(
        upstream.requests().is_empty(),
        "an answer file approved a request"
    );
    s.stop();
    let logs = String::from_utf8(airlock(&home, &["logs", "--json"], &[]).stdout).unwrap();
    assert!(logs.contains("\"kind\":\"approval_timeout\""), "{logs}");
    assert!(!logs.contains("\"kind\":\"approve\""), "{logs}");
}

/// The control socket answers only its own uid (SO_PEERCRED), even when the
/// file permissions would let another user connect. Needs root to run the client
/// as another uid; skipped otherwise.
#[cfg(unix)]
#[test]
fn the_control_socket_refuses_another_uid() {
    use std::os::unix::fs::PermissionsExt;
    use std::os::unix::process::CommandExt;
    let me = Command::new("id").arg("-u").output().unwrap();
    if String::from_utf8_lossy(&me.stdout).trim() != "0" {
        eprintln!("skipped: needs root to connect as another uid");
        return;
    }
    let upstream = Upstream::start(reflect);
    let (dir, home) = setup(&upstream);
    add_guarded(&home);
    let mut s = Server::start(&home, "tester");
    let call = json!({"capability": "guarded", "method": "GET", "path": "/v1/pay"});
    std::thread::scope(|scope| {
        let h = scope.spawn(|| s.call("execute", call.clone()));
        let id = wait_for_pending(&home);
        // Open every door the file system has, as a misconfiguration would.
        let open = |p: &std::path::Path, mode| {
            std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode)).unwrap()
        };
        open(dir.path(), 0o755);
        open(&home, 0o755);
        open(&home.join("control.sock"), 0o666);
        let out = Command::new(env!("CARGO_BIN_EXE_airlock"))
            .args(["approve", &id])
            .env("AIRLOCK_HOME", &home)
            .env_remove("HOME")
            .uid(65534)
            .gid(65534)
            .stdin(Stdio::null())
            .output()
            .unwrap();
        exit_2("approve as another uid", &out, "refused");
        open(&home.join("control.sock"), 0o600);
        open(&home, 0o700);
        open(dir.path(), 0o700);
        // The request is still held, and the owner can still answer it.
        assert!(upstream.requests().is_empty());
        assert!(airlock(&home, &["deny", &id], &[]).status.success());
        let (err, text) = h.join().unwrap();
        assert!(err && text.contains("denied"), "{text}");
    });
    let stderr = s.stop();
    assert!(
        stderr.contains("refused a connection from uid 65534"),
        "{stderr}"
    );
}

#[test]
fn session_approval_asks_once_per_session() {
    let upstream = Upstream::start(reflect);
    let (_d, home) = setup(&upstream);
    append_config(
        &home,
        "\n[capabilities.once]\nservice = \"svc\"\napproval = \"session\"\n",
    );
    let mut s = Server::start(&home, "tester");
    let call = json!({"capability": "once", "method": "GET", "path": "/v1/x"});
    std::thread::scope(|scope| {
        let h = scope.spawn(|| s.call("execute", call.clone()));
        let id = wait_for_pending(&home);
        assert!(airlock(&home, &["approve", &id], &[]).status.success());
        assert!(!h.join().unwrap().0);
    });
    // The session is approved: the next calls go straight through.
    for _ in 0..3 {
        let (err, text) = s.call("execute", call.clone());
        assert!(!err, "{text}");
    }
    s.stop();
}

#[test]
fn an_mcp_client_with_elicitation_answers_the_approval_itself() {
    let upstream = Upstream::start(reflect);
    let (_d, home) = setup(&upstream);
    add_guarded(&home);
    for (answer, expect_sent) in [(true, true), (false, false)] {
        let mut child = spawn_stdio(serve_cmd(&home, &["--agent", "tester"]), Stdio::null());
        let mut stdin = child.stdin.take().unwrap();
        let mut stdout = BufReader::new(child.stdout.take().unwrap());
        let mut send = |v: Value| writeln!(stdin, "{v}").unwrap();
        send(
            json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
            "protocolVersion": "2025-06-18",
            "capabilities": {"elicitation": {"form": {}}},
            "clientInfo": {"name": "elicit-client", "version": "1"}}}),
        );
        let mut line = String::new();
        stdout.read_line(&mut line).unwrap();
        send(json!({"jsonrpc": "2.0", "method": "notifications/initialized"}));
        send(
            json!({"jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": {"name": "execute",
            "arguments": {"capability": "guarded", "method": "GET", "path": "/v1/elicited"}}}),
        );
        let before = upstream.requests().len();
        let result = loop {
            let mut line = String::new();
            assert!(stdout.read_line(&mut line).unwrap() > 0, "server closed");
            let msg: Value = serde_json::from_str(&line).unwrap();
            if msg["method"] == "elicitation/create" {
                let text = msg["params"]["message"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string();
                assert!(
                    text.contains("GET /v1/elicited") && text.contains("tester"),
                    "{text}"
                );
                assert_eq!(upstream.requests().len(), before, "sent before the answer");
                send(
                    json!({"jsonrpc": "2.0", "id": msg["id"], "result": {"action": "accept", "content": {"approve": answer}}}),
                );
            } else if msg["id"] == json!(2) {
                break msg;
            }
        };
        let (is_error, _) = tool_result(&result);
        assert_eq!(!is_error, expect_sent, "{result}");
        assert_eq!(upstream.requests().len() > before, expect_sent);
        let _ = send;
        drop(stdin);
        child.wait().unwrap();
    }
    // Nothing is left pending once the client answered.
    let pending: Value =
        serde_json::from_slice(&airlock(&home, &["approve", "--json"], &[]).stdout).unwrap();
    assert_eq!(pending, json!([]));
}

/// From `airlock lock` returning to the first refused request, in two running
/// servers, 100 times: the very next request is always refused (there is no
/// propagation delay to wait out), and `unlock` restores service just as fast.
#[test]
fn lock_takes_effect_on_the_next_request_in_every_server_100_times() {
    let upstream = Upstream::start(reflect);
    let (_d, home) = setup(&upstream);
    let mut a = Server::start(&home, "tester");
    let mut b = Server::start(&home, "other");
    let get = json!({"capability": "svc", "method": "GET", "path": "/v1/a"});
    let mut latencies = Vec::new();
    for i in 0..100 {
        assert!(airlock(&home, &["lock"], &[]).status.success());
        let t = std::time::Instant::now();
        let (err_a, msg) = a.call("execute", get.clone());
        latencies.push(t.elapsed());
        assert!(err_a && msg.contains("lock"), "trial {i}: {msg}");
        assert!(
            b.call("execute", get.clone()).0,
            "trial {i}: server b still served"
        );
        assert!(airlock(&home, &["unlock"], &[]).status.success());
        assert!(
            !a.call("execute", get.clone()).0,
            "trial {i}: unlock did not restore a"
        );
        assert!(
            !b.call("execute", get.clone()).0,
            "trial {i}: unlock did not restore b"
        );
    }
    latencies.sort();
    eprintln!(
        "lock → first refusal: p50 {:?}, p99 {:?}",
        latencies[50], latencies[98]
    );
    a.stop();
    b.stop();
}

#[test]
fn token_list_shows_tokens_without_the_token_and_revoke_stops_one_at_once() {
    let upstream = Upstream::start(reflect);
    let (_d, home) = setup(&upstream);
    let tok = token(&home, &[]);
    let (gw, addr) = start_gateway(&home);
    let get = |t: &str| {
        raw_http(
            &addr,
            &format!(
                "GET /svc/v1/x HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {t}\r\nConnection: close\r\n\r\n"
            ),
        )
    };
    assert!(get(&tok).starts_with("HTTP/1.1 200"));
    let out = airlock(&home, &["token", "list", "--json"], &[]);
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(!text.contains(&tok), "token list shows the token");
    let list: Value = serde_json::from_str(&text).unwrap();
    let t = &list[0];
    assert_eq!(t["agent"], "sdk");
    assert_eq!(t["status"], "active");
    assert!(t["last_use"].is_string(), "{t}");
    let id = t["id"].as_str().unwrap().to_string();
    assert!(
        airlock(&home, &["token", "revoke", &id], &[])
            .status
            .success()
    );
    let resp = get(&tok);
    assert!(
        resp.starts_with("HTTP/1.1 401") && resp.contains("revoked"),
        "{resp}"
    );
    let out = airlock(&home, &["token", "revoke", &id], &[]);
    assert_eq!(out.status.code(), Some(2));
    let list: Value =
        serde_json::from_slice(&airlock(&home, &["token", "list", "--json"], &[]).stdout).unwrap();
    assert_eq!(list[0]["status"], "revoked");
    end(gw);
}

#[test]
fn concurrent_gateway_requests_are_each_audited_and_sigterm_exits_cleanly() {
    let upstream = Upstream::start(reflect);
    let (_d, home) = setup(&upstream);
    let tok = token(&home, &[]);
    let (mut gw, addr) = start_gateway(&home);
    assert!(home.join("control.sock").exists());
    // 16 clients at once: their audit records share fsyncs (group commit), and
    // every answered request has its own record.
    let clients: Vec<_> = (0..16)
        .map(|c| {
            let (addr, tok) = (addr.clone(), tok.clone());
            std::thread::spawn(move || {
                for i in 0..20 {
                    let resp = raw_http(
                        &addr,
                        &format!(
                            "GET /svc/v1/items/{c}-{i} HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {tok}\r\nConnection: close\r\n\r\n"
                        ),
                    );
                    assert!(resp.starts_with("HTTP/1.1 200"), "{resp}");
                }
            })
        })
        .collect();
    for c in clients {
        c.join().unwrap();
    }
    let pid = gw.id().to_string();
    assert!(
        Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap()
            .success()
    );
    let status = gw.wait().unwrap();
    assert!(status.success(), "serve exited with {status} on SIGTERM");
    assert!(
        !home.join("control.sock").exists(),
        "the admin socket is removed at exit"
    );
    let logs = airlock(&home, &["logs", "--json", "--capability", "svc"], &[]);
    let text = String::from_utf8_lossy(&logs.stdout);
    for c in 0..16 {
        for i in 0..20 {
            // Write-ahead: the decision, then the outcome that names it.
            let path = format!("\"path\":\"/v1/items/{c}-{i}\"");
            let kinds: Vec<&str> = text
                .lines()
                .filter(|l| l.contains(&path))
                .map(|l| {
                    l.split("\"kind\":\"")
                        .nth(1)
                        .unwrap_or("")
                        .split('"')
                        .next()
                        .unwrap_or("")
                })
                .collect();
            assert_eq!(kinds, ["request", "outcome"], "two records for {path}");
        }
    }
    let verify = airlock(&home, &["audit", "verify"], &[]);
    let said = String::from_utf8_lossy(&verify.stdout);
    assert!(verify.status.success(), "{said}");
    assert!(
        said.contains("intact") && !said.contains("not yet anchored"),
        "{said}"
    );
}

#[test]
fn a_body_that_fails_before_its_first_byte_is_a_502_and_audited_as_one() {
    // An upstream whose 200 head is followed by a malformed first chunk.
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut s) = stream else { continue };
            let mut head = Vec::new();
            let mut byte = [0u8; 1];
            while !head.ends_with(b"\r\n\r\n") && s.read(&mut byte).unwrap_or(0) == 1 {
                head.push(byte[0]);
            }
            let _ = s.write_all(
                b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nZZ\r\nhello\r\n0\r\n\r\n",
            );
        }
    });
    let upstream = Upstream {
        port,
        seen: Arc::default(),
    };
    let (_d, home) = setup(&upstream);
    let tok = token(&home, &[]);
    let (gw, addr) = start_gateway(&home);
    let resp = raw_http(
        &addr,
        &format!(
            "GET /svc/v1/items HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {tok}\r\nConnection: close\r\n\r\n"
        ),
    );
    assert!(resp.starts_with("HTTP/1.1 502"), "{resp}");
    assert!(resp.contains("svc"), "the error names the service: {resp}");
    // Still serving.
    let again = raw_http(
        &addr,
        &format!("GET /svc/v1/items HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"),
    );
    assert!(again.starts_with("HTTP/1.1 401"), "{again}");
    end(gw);
    let logs = airlock(&home, &["logs", "--json", "--capability", "svc"], &[]);
    let text = String::from_utf8_lossy(&logs.stdout);
    let record = text
        .lines()
        .find(|l| l.contains("\"path\":\"/v1/items\"") && l.contains("\"kind\":\"outcome\""))
        .unwrap_or_else(|| panic!("no outcome record: {text}"));
    assert!(record.contains("\"status\":502"), "{record}");
}

#[test]
fn a_stdin_line_that_is_not_json_gets_a_parse_error_and_the_server_keeps_serving() {
    let (_upstream, _d, _home, mut s) = serving();
    for bad in [
        b"this is not json\n".to_vec(),
        b"{\"jsonrpc\":\"2.0\",\"id\":7,\"method\":\"ping\"\n".to_vec(),
        b"{\"x\":\"\xff\"}\n".to_vec(),
    ] {
        s.stdin.write_all(&bad).unwrap();
        s.stdin.flush().unwrap();
        let mut line = String::new();
        s.stdout.read_line(&mut line).unwrap();
        let v: Value = serde_json::from_str(&line).unwrap();
        assert_eq!(v["error"]["code"], -32700, "{line}");
        assert_eq!(v["id"], Value::Null, "{line}");
    }
    let (is_error, text) = s.execute("mine", "GET", "/v1/items");
    assert!(!is_error, "{text}");
    s.stop();
}

// Issue 14 items 5 and 17: MCP over HTTP edges, routing overrides in execute.
#[path = "mcp/http_edges.rs"]
mod http_edges;

#[path = "mcp/integrity.rs"]
mod integrity;

#[path = "mcp/dashboard.rs"]
mod dashboard;
