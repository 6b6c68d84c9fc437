//! Attenuable agent tokens through the binary and the HTTP gateway (issue 19):
//! `token attenuate` narrows a token offline (no home, the token from stdin
//! too); the gateway lets the narrowed token do only what its caveats allow on
//! top of the capability's rules, refuses it audited with the caveat, the root
//! token and the chain digest (never the token); an edited chain is refused;
//! revoking the parent refuses every descendant.
#![allow(clippy::unwrap_used)]

use std::io::{Read as _, Write as _};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Command, Output};

use base64::Engine as _;
use serde_json::Value;

mod common;
use common::{
    Door, add_svc, gateway_call, http_response, http_upstream, ok, output_with_stdin, serve_door,
    tool_result,
};

const SECRET: &str = "ghp_attenuateCanary0123456789abcdefXYZ";

fn run(home: &Path, args: &[&str], stdin: Option<&str>) -> Output {
    output_with_stdin(
        Command::new(env!("CARGO_BIN_EXE_airlock"))
            .args(args)
            .env("AIRLOCK_HOME", home)
            .env("K", SECRET),
        stdin.unwrap_or("").as_bytes(),
    )
}

/// A one-line error and exit 2; the stderr.
fn usage_error(out: Output) -> String {
    let err = String::from_utf8(out.stderr).unwrap();
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(out.stdout.is_empty());
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    err
}

/// An upstream that answers 200 with the request line it got, and whether
/// the real credential came with it.
fn echo_upstream() -> u16 {
    http_upstream(|head| {
        let injected = head
            .lines()
            .skip(1)
            .any(|l| l.to_ascii_lowercase().starts_with("authorization:") && l.contains(SECRET));
        let first = head.lines().next().unwrap_or_default();
        http_response(
            "200 OK",
            &[],
            &format!("{} injected={injected}", first.trim()),
        )
    })
}

/// One request through the gateway: the status and the body.
fn call(server: &Door, token: &str, method: &str, path: &str) -> (u16, String) {
    gateway_call(server.port, token, method, path)
}

/// The token with its decoded caveats rewritten by `edit` (signature kept).
fn edited(token: &str, edit: impl FnOnce(&mut Vec<Vec<u8>>)) -> String {
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let rest = token.strip_prefix("airlock_").unwrap();
    let (id, chain) = rest.split_once('.').unwrap();
    let (payload, sig) = chain.split_once('.').unwrap();
    let mut caveats: Vec<Vec<u8>> = b64
        .decode(payload)
        .unwrap()
        .split(|b| *b == b'\n')
        .map(<[u8]>::to_vec)
        .collect();
    edit(&mut caveats);
    format!("airlock_{id}.{}.{sig}", b64.encode(caveats.join(&b'\n')))
}

/// A home with service `svc` (the echo upstream) and capabilities `gh` and
/// `other` on it, and a token for agent `bot`: the token, its id and the
/// upstream's port.
fn setup(home: &Path) -> (String, String, u16) {
    let up = echo_upstream();
    let url = format!("http://127.0.0.1:{up}");
    add_svc(home, &url, SECRET);
    for (cap, allow) in [("gh", "GET /repos/**"), ("other", "GET /**")] {
        ok(run(
            home,
            &[
                "cap",
                "add",
                cap,
                "--service",
                "svc",
                "--allow",
                allow,
                "--allow",
                "POST /repos/**",
            ],
            None,
        ));
    }
    let issued: Value = serde_json::from_str(&ok(run(
        home,
        &["token", "issue", "--agent", "bot", "--json"],
        None,
    )))
    .unwrap();
    let parent = issued["token"].as_str().unwrap().to_string();
    let listed: Value =
        serde_json::from_str(&ok(run(home, &["token", "list", "--json"], None))).unwrap();
    let id = listed[0]["id"].as_str().unwrap().to_string();
    (parent, id, up)
}

#[test]
fn a_narrowed_token_does_only_what_its_caveats_allow_until_its_parent_is_revoked() {
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("home");
    let (parent, id, _) = setup(&home);

    // Offline: no home at all, the parent read from stdin.
    let nowhere = dir.path().join("no-home");
    let narrowed: Value = serde_json::from_str(&ok(run(
        &nowhere,
        &[
            "token",
            "attenuate",
            "-",
            "--cap",
            "gh",
            "--allow",
            "GET /repos/acme/x/**",
            "--ttl",
            "10m",
            "--json",
        ],
        Some(&format!("{parent}\n")),
    )))
    .unwrap();
    assert!(!nowhere.exists(), "attenuate created a home");
    let child = narrowed["token"].as_str().unwrap().to_string();
    assert!(child.starts_with(&format!("airlock_{id}.")), "{child}");
    assert_eq!(narrowed["root"], id.as_str());
    assert_eq!(narrowed["caveats"][0]["cap"][0], "gh");
    assert_eq!(narrowed["caveats"][0]["allow"][0], "GET /repos/acme/x/**");
    assert!(narrowed["expires"].is_string());
    // The same from argv, as plain output: the token alone on stdout.
    let plain = ok(run(
        &nowhere,
        &["token", "attenuate", &child, "--ttl", "5m"],
        None,
    ));
    let grandchild = plain.trim().to_string();
    assert_eq!(plain.lines().count(), 1);

    // Bad input: one line, exit 2.
    for (args, says) in [
        (vec!["--cap", "other"], "would leave none"),
        (vec!["--allow", "GET repos"], "allow rule"),
        (vec!["--ttl", "soon"], "soon"),
        (vec![], "at least one of --cap, --allow, --ttl"),
    ] {
        let mut all = vec!["token", "attenuate", child.as_str()];
        all.extend(args);
        let err = usage_error(run(&nowhere, &all, None));
        assert!(err.contains(says), "{all:?}: {err}");
        assert!(!err.contains(&child), "the error shows the token");
    }
    let err = usage_error(run(
        &nowhere,
        &["token", "attenuate", "sk_live_x", "--cap", "gh"],
        None,
    ));
    assert!(err.contains("not an airlock agent token"), "{err}");
    let err = usage_error(run(
        &nowhere,
        &["token", "attenuate", "-", "--cap", "gh"],
        Some(""),
    ));
    assert!(err.contains("stdin"), "{err}");

    let server = serve_door(&home, "--gateway");
    // Within the caveats and the capability's rules: through, credential injected.
    let (status, body) = call(&server, &child, "GET", "/gh/repos/acme/x/issues");
    assert_eq!(status, 200, "{body}");
    assert!(
        body.contains("GET /repos/acme/x/issues HTTP/1.1 injected=true"),
        "{body}"
    );
    assert_eq!(call(&server, &grandchild, "GET", "/gh/repos/acme/x").0, 200);
    // Outside them: refused, naming the caveat; the parent still may.
    for (method, path) in [
        ("POST", "/gh/repos/acme/x/issues"),
        ("GET", "/gh/repos/acme/y"),
        ("GET", "/gh/repos/acme/x/../y"),
        ("GET", "/other/repos/acme/x"),
    ] {
        let (status, body) = call(&server, &child, method, path);
        assert_eq!(status, 403, "{method} {path}: {body}");
        assert!(body.contains("caveat 1"), "{body}");
        assert!(!body.contains(&child));
        assert_eq!(call(&server, &grandchild, method, path).0, 403);
    }
    assert_eq!(
        call(&server, &parent, "POST", "/gh/repos/acme/x/issues").0,
        200
    );
    assert_eq!(call(&server, &parent, "GET", "/other/x").0, 200);
    // Cannot widen: dropping or editing a caveat breaks the signature; a
    // caveat naming a capability the parent chain excludes is still refused.
    let dropped = edited(&grandchild, |c| {
        c.pop();
    });
    let widened = edited(&child, |c| c[0] = br#"{"cap":["gh","other"]}"#.to_vec());
    for forged in [&dropped, &widened] {
        let (status, body) = call(&server, forged, "GET", "/gh/repos/acme/x");
        assert_eq!(status, 401, "{body}");
        assert!(body.contains("does not verify"), "{body}");
    }

    // The audit log names the caveat, the root token and the chain — never
    // the token.
    let audit_dir = home.join("audit");
    let audit: String = std::fs::read_dir(&audit_dir)
        .unwrap()
        .flatten()
        .map(|e| std::fs::read_to_string(e.path()).unwrap_or_default())
        .collect();
    assert!(
        audit.contains(&format!("attenuated token {id} (chain "))
            && audit.contains("caveat 1 allows only"),
        "{audit}"
    );
    // Allowed requests too: the decision record names root and chain.
    assert!(
        audit.lines().any(|l| l.contains(r#""decision":"allow""#)
            && l.contains(&format!("attenuated token {id} (chain "))),
        "{audit}"
    );
    for t in [&parent, &child, &grandchild] {
        let secret_part = &t[t.len() - 20..];
        assert!(!audit.contains(secret_part), "a token is in the audit log");
    }

    // Revoking the parent refuses every descendant, at once.
    ok(run(&home, &["token", "revoke", &id], None));
    for t in [&parent, &child, &grandchild] {
        let (status, body) = call(&server, t, "GET", "/gh/repos/acme/x");
        assert_eq!(status, 401, "{body}");
        assert!(body.contains("revoked"), "{body}");
    }
}

/// One JSON-RPC message to MCP over HTTP: the answer's session id header (if
/// any) and the JSON-RPC response (from the SSE stream or the body).
fn mcp_post(
    server: &Door,
    token: &str,
    session: Option<&str>,
    body: &str,
) -> (Option<String>, Value) {
    let mut s = TcpStream::connect(("127.0.0.1", server.port)).unwrap();
    let session = session.map_or(String::new(), |id| format!("Mcp-Session-Id: {id}\r\n"));
    write!(
        s,
        "POST /mcp HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nAccept: application/json, text/event-stream\r\nAuthorization: Bearer {token}\r\n{session}Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut answer = String::new();
    s.read_to_string(&mut answer).ok();
    let (head, rest) = answer.split_once("\r\n\r\n").unwrap_or((&answer, ""));
    assert!(
        head.starts_with("HTTP/1.1 200") || head.starts_with("HTTP/1.1 202"),
        "{answer}"
    );
    let id = head.lines().find_map(|l| {
        let (k, v) = l.split_once(':')?;
        k.eq_ignore_ascii_case("mcp-session-id")
            .then(|| v.trim().to_string())
    });
    let json = rest
        .lines()
        .filter_map(|l| l.strip_prefix("data:"))
        .filter_map(|d| serde_json::from_str::<Value>(d.trim()).ok())
        .find(|v| v.get("id").is_some())
        .unwrap_or(Value::Null);
    (id, json)
}

/// An initialized MCP session over HTTP of `token` with `server`.
struct Session<'a> {
    server: &'a Door,
    token: &'a str,
    id: String,
}

impl<'a> Session<'a> {
    /// Opens one: `initialize`, then `notifications/initialized`.
    fn open(server: &'a Door, token: &'a str) -> Session<'a> {
        let init = r#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"t","version":"1"}}}"#;
        let (id, _) = mcp_post(server, token, None, init);
        let id = id.expect("a session id");
        mcp_post(
            server,
            token,
            Some(&id),
            r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#,
        );
        Session { server, token, id }
    }

    /// A `tools/call`: (isError, the text content), as `common::tool_result`.
    fn tool(&self, tool: &str, args: Value) -> (bool, String) {
        let call = serde_json::json!({"jsonrpc": "2.0", "id": 2, "method": "tools/call",
                                      "params": {"name": tool, "arguments": args}});
        let (_, v) = mcp_post(self.server, self.token, Some(&self.id), &call.to_string());
        tool_result(&v)
    }
}

#[test]
fn attenuate_token_over_mcp_http_narrows_the_connections_own_token() {
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("home");
    let (parent, id, _) = setup(&home);
    let server = serve_door(&home, "--http");
    let session = Session::open(&server, &parent);
    // No `token` argument: the connection's own token is narrowed.
    let (failed, text) = session.tool(
        "attenuate_token",
        serde_json::json!({"capabilities": ["gh"], "allow": ["GET /repos/acme/x/**"], "ttl": "10m"}),
    );
    assert!(!failed, "{text}");
    let made: Value = serde_json::from_str(&text).unwrap();
    let child = made["token"].as_str().unwrap().to_string();
    assert!(child.starts_with(&format!("airlock_{id}.")), "{child}");
    assert_eq!(made["caveats"][0]["allow"][0], "GET /repos/acme/x/**");
    // Bad arguments are tool errors that say what is wrong.
    let (failed, text) = session.tool("attenuate_token", serde_json::json!({"ttl": "soon"}));
    assert!(failed && text.contains("ttl"), "{text}");

    // The narrowed token over MCP HTTP: only within its caveats.
    let narrow = Session::open(&server, &child);
    let (failed, text) = narrow.tool(
        "execute",
        serde_json::json!({"capability": "gh", "method": "GET", "path": "/repos/acme/x/pulls"}),
    );
    assert!(
        !failed && text.contains("GET /repos/acme/x/pulls HTTP/1.1 injected=true"),
        "{text}"
    );
    for (cap, method, path) in [
        ("gh", "POST", "/repos/acme/x/pulls"),
        ("other", "GET", "/repos/acme/x"),
    ] {
        let (failed, text) = narrow.tool(
            "execute",
            serde_json::json!({"capability": cap, "method": method, "path": path}),
        );
        assert!(
            failed && text.contains("refused by the caveat check"),
            "{cap} {method} {path}: {text}"
        );
    }
    let (_, whoami) = narrow.tool("whoami", serde_json::json!({}));
    let whoami: Value = serde_json::from_str(&whoami).unwrap();
    assert_eq!(whoami["capabilities"], serde_json::json!(["gh"]));
}

#[test]
fn the_egress_proxy_holds_a_narrowed_token_to_its_caveats() {
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("home");
    let (parent, _, up) = setup(&home);
    let child = ok(run(
        &home,
        &[
            "token",
            "attenuate",
            &parent,
            "--allow",
            "GET /repos/acme/x/**",
        ],
        None,
    ))
    .trim()
    .to_string();
    let server = serve_door(&home, "--proxy");
    // An absolute-form request through the proxy; the user name picks the
    // capability, the password is the token.
    let send = |token: &str, method: &str, path: &str| {
        let auth = base64::engine::general_purpose::STANDARD.encode(format!("gh:{token}"));
        let mut s = TcpStream::connect(("127.0.0.1", server.port)).unwrap();
        write!(
            s,
            "{method} http://127.0.0.1:{up}{path} HTTP/1.1\r\nHost: 127.0.0.1:{up}\r\nProxy-Authorization: Basic {auth}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
        )
        .unwrap();
        let mut answer = String::new();
        s.read_to_string(&mut answer).ok();
        answer
    };
    let allowed = send(&child, "GET", "/repos/acme/x/issues");
    assert!(
        allowed.starts_with("HTTP/1.1 200") && allowed.contains("injected=true"),
        "{allowed}"
    );
    let refused = send(&child, "POST", "/repos/acme/x/issues");
    assert!(
        refused.starts_with("HTTP/1.1 403") && refused.contains("caveat 1"),
        "{refused}"
    );
    assert!(send(&parent, "POST", "/repos/acme/x/issues").starts_with("HTTP/1.1 200"));
}
