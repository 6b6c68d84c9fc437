//! Issue 14, items 5 and 17, through the binary: routing-override headers in MCP
//! `execute` are refused and audited; MCP over HTTP answers a body that is not
//! JSON-RPC with 400 and a JSON-RPC error, and accepts its own loopback origin
//! (token still required) while refusing others.

use super::*;

/// `airlock serve --http 127.0.0.1:0` on `home`; the child and its address.
fn start_http(home: &Path) -> (Child, String) {
    serve_listening(home, &["--http", "127.0.0.1:0"])
}

/// A new home with `serve --http` running: the home's directory, the server,
/// its address and an `Authorization` header line with a valid token.
fn serving_http() -> (tempfile::TempDir, Child, String, String) {
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("home");
    assert!(airlock(&home, &["init"], &[]).status.success());
    let tok = token(&home, &[]);
    let (child, addr) = start_http(&home);
    (dir, child, addr, format!("Authorization: Bearer {tok}\r\n"))
}

/// POSTs `INIT` with `extra` header lines and an `Origin` header.
fn post_init_from(addr: &str, extra: &str, origin: &str) -> (u16, String) {
    post_mcp(
        addr,
        &format!("{extra}Origin: {origin}\r\n"),
        INIT.as_bytes(),
    )
}

/// POSTs `body` as JSON to `/mcp` with `extra` header lines; (status, body).
fn post_mcp(addr: &str, extra: &str, body: &[u8]) -> (u16, String) {
    post_typed(addr, extra, "application/json", body)
}

/// POSTs `body` with Content-Type `ct`.
fn post_typed(addr: &str, extra: &str, ct: &str, body: &[u8]) -> (u16, String) {
    let mut head = format!(
        "POST /mcp HTTP/1.1\r\nHost: {addr}\r\nContent-Type: {ct}\r\nAccept: application/json, text/event-stream\r\n{extra}Content-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    )
    .into_bytes();
    head.extend_from_slice(body);
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.write_all(&head).unwrap();
    let mut resp = Vec::new();
    s.read_to_end(&mut resp).ok();
    let text = String::from_utf8_lossy(&resp).into_owned();
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    (status, body)
}

const INIT: &str = r#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"x","version":"1"}}}"#;

#[test]
fn mcp_over_http_answers_a_body_that_is_not_jsonrpc_with_400_and_a_jsonrpc_error() {
    let (_dir, child, addr, auth) = serving_http();
    for (body, code) in [
        (&b"{this is not json"[..], -32700),
        (&b"\xff\xfe"[..], -32700),
        (&b""[..], -32700),
        (&b"{}"[..], -32600),
        (&b"[]"[..], -32600),
        (&b"42"[..], -32600),
        (&br#"{"jsonrpc":"1.0","id":1,"method":"ping"}"#[..], -32600),
        (&br#"{"jsonrpc":"2.0","id":1,"method":5}"#[..], -32600),
        (&br#"{"jsonrpc":"2.0","id":1}"#[..], -32600),
        (
            &br#"{"jsonrpc":"2.0","id":5,"method":"tools/call","params":"x"}"#[..],
            -32602,
        ),
    ] {
        let shown = String::from_utf8_lossy(body);
        let (status, text) = post_mcp(&addr, &auth, body);
        assert_eq!(status, 400, "{shown}: {text}");
        let v: Value = serde_json::from_str(&text).unwrap_or_else(|_| panic!("{shown}: {text}"));
        assert_eq!(v["jsonrpc"], "2.0", "{text}");
        assert_eq!(v["error"]["code"], code, "{shown}: {text}");
        assert!(v["error"]["message"].as_str().is_some(), "{text}");
    }
    // Without a token, the token check comes first.
    let (status, _) = post_mcp(&addr, "", b"{this is not json");
    assert_eq!(status, 401);
    // A wrong Content-Type is still rmcp's 415, and a good message still works.
    let (status, _) = post_typed(&addr, &auth, "text/plain", INIT.as_bytes());
    assert_eq!(status, 415);
    let (status, text) = post_mcp(&addr, &auth, INIT.as_bytes());
    assert_eq!(status, 200, "{text}");
    assert!(text.contains("\"airlock\""), "{text}");
    end(child);
}

#[test]
fn mcp_over_http_accepts_its_own_loopback_origin_and_refuses_others() {
    let (_dir, child, addr, auth) = serving_http();
    let port = addr.rsplit(':').next().unwrap().to_string();
    let other = if port == "9" { "10" } else { "9" };
    for origin in [
        format!("http://127.0.0.1:{port}"),
        format!("http://localhost:{port}"),
        format!("http://LOCALHOST:{port}"),
    ] {
        let (status, text) = post_init_from(&addr, &auth, &origin);
        assert_eq!(status, 200, "{origin}: {text}");
        // The token is still required.
        let (status, _) = post_init_from(&addr, "", &origin);
        assert_eq!(status, 401, "{origin}");
    }
    for origin in [
        "http://evil.example".to_string(),
        format!("http://evil.example:{port}"),
        format!("http://127.0.0.1:{other}"),
        format!("https://127.0.0.1:{port}"),
        format!("http://[::1]:{port}"),
        "null".to_string(),
        format!("http://127.0.0.1:{port}.evil.example"),
    ] {
        let (status, text) = post_init_from(&addr, &auth, &origin);
        assert_eq!(status, 403, "{origin}: {text}");
        assert!(
            text.contains("may not call this server"),
            "{origin}: {text}"
        );
    }
    // A foreign origin with a body that is not JSON is refused for its origin.
    let (status, _) = post_mcp(
        &addr,
        &format!("{auth}Origin: http://evil.example\r\n"),
        b"{nope",
    );
    assert_eq!(status, 403);
    end(child);
}

#[test]
fn execute_refuses_routing_override_headers_and_audits_each() {
    let (upstream, _d, home, mut s) = serving();
    let names = [
        "X-Original-URL",
        "X-Rewrite-URL",
        "X-Original-Host",
        "X-Host",
        "X-Forwarded-Host",
        "X-Forwarded-Prefix",
        "Forwarded",
        "X-HTTP-Method-Override",
        "X-Original-Method",
    ];
    for name in names {
        let (is_error, text) = s.call(
            "execute",
            json!({"capability": "mine", "method": "GET", "path": "/v1/items",
                   "headers": {name: "/v1/admin"}}),
        );
        assert!(is_error, "{name}: {text}");
        assert!(
            text.contains(&format!("\"{}\"", name.to_ascii_lowercase())),
            "{name}: {text}"
        );
    }
    assert!(
        upstream.requests().is_empty(),
        "a request with a routing override reached the upstream"
    );
    s.stop();
    let lines = records(&home);
    for name in names {
        let lower = name.to_ascii_lowercase();
        assert!(
            lines.iter().any(|r| r["status"] == 400
                && r["detail"]
                    .as_str()
                    .is_some_and(|d| d.contains(&format!("\"{lower}\"")))),
            "no audited refusal for {name}: {lines:?}"
        );
    }
}
