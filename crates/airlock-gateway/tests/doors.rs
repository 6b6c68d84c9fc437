//! The HTTP doors against hostile clients (issue 8): slow request heads, idle
//! connections, bodies over the service's limit, malformed chunking, stalled
//! bodies, a connection flood — each with the answer, a timing bound and the
//! audit record. A real `Runtime` on a temporary home, a local upstream that
//! counts what reaches it, and raw TCP clients.
#![allow(clippy::unwrap_used)]

use std::io::{Read, Write};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use airlock_broker::{Runtime, SystemClock};
use airlock_gateway::listen::{self, Connections, Options};
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const SECRET: &str = "sk_test_DOORS_5e1f0c3a9b7d";
const KIB: usize = 1024;
/// The service's `max_request_bytes` in these tests.
const SERVICE_LIMIT: usize = 64 * KIB;

/// A local upstream: answers 200 "ok" to every request, counts them.
struct Upstream {
    port: u16,
    count: Arc<AtomicUsize>,
}

impl Upstream {
    fn start() -> Upstream {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let count = Arc::new(AtomicUsize::new(0));
        let seen = count.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { continue };
                let seen = seen.clone();
                std::thread::spawn(move || {
                    stream.set_read_timeout(Some(Duration::from_secs(5))).ok();
                    let mut buf = Vec::new();
                    let mut chunk = [0u8; 8192];
                    loop {
                        let Ok(n) = stream.read(&mut chunk) else {
                            return;
                        };
                        if n == 0 {
                            return;
                        }
                        buf.extend_from_slice(&chunk[..n]);
                        let Some(end) = find(&buf, b"\r\n\r\n") else {
                            continue;
                        };
                        let head = String::from_utf8_lossy(&buf[..end]).to_ascii_lowercase();
                        let len: usize = head
                            .lines()
                            .find_map(|l| l.strip_prefix("content-length:"))
                            .and_then(|v| v.trim().parse().ok())
                            .unwrap_or(0);
                        if buf.len() < end + 4 + len {
                            continue;
                        }
                        buf.drain(..end + 4 + len);
                        seen.fetch_add(1, Ordering::SeqCst);
                        if let Some(answer) = empty_bodies::upstream_answer(&head) {
                            if stream.write_all(answer).is_err() {
                                return;
                            }
                            continue;
                        }
                        if head.contains(" /base/bad-chunked-mid ") {
                            // One good chunk, then a bad chunk size, then close.
                            let _ = stream.write_all(
                                b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\nzz\r\n",
                            );
                            return;
                        }
                        let out = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 11\r\n\r\n{\"ok\":true}";
                        if stream.write_all(out).is_err() {
                            return;
                        }
                    }
                });
            }
        });
        Upstream { port, count }
    }

    fn count(&self) -> usize {
        self.count.load(Ordering::SeqCst)
    }
}

// Issue 14 item 8: answers without a body (empty 200, 204, 304, HEAD).
#[path = "doors/empty_bodies.rs"]
mod empty_bodies;
#[path = "../../airlock-broker/tests/support/homes.rs"]
mod homes;
use homes::{base64, home_files, home_with_secret};

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// A home with service `svc` (limit [`SERVICE_LIMIT`]) behind capability `svc`,
/// a token for agent `tester`, and the runtime.
struct Setup {
    _dir: tempfile::TempDir,
    /// `$AIRLOCK_HOME`: config, vault, key, audit, state.
    home_dir: PathBuf,
    audit_dir: PathBuf,
    token: String,
    runtime: Arc<Runtime>,
    upstream: Upstream,
}

fn setup() -> Setup {
    let upstream = Upstream::start();
    let dir = tempfile::tempdir().unwrap();
    let config = format!(
        r#"
[services.svc]
url = "http://127.0.0.1:{}/base"
auth = {{ type = "bearer", secret = "svc" }}
timeout = "5s"
max_request_bytes = "{}KiB"

[capabilities.svc]
service = "svc"
"#,
        upstream.port,
        SERVICE_LIMIT / KIB
    );
    let (home, vault) = home_with_secret(dir.path().join("home"), SECRET, &config);
    let token = {
        let _lock = home.lock().unwrap();
        let (token, _) =
            airlock_broker::tokens::issue(&home, "tester", &[], Duration::from_secs(3600)).unwrap();
        token.to_string()
    };
    let audit_dir = home.audit_dir();
    let home_dir = home.root().to_path_buf();
    let runtime = Arc::new(Runtime::new(home, vault, SystemClock::new()).unwrap());
    Setup {
        _dir: dir,
        home_dir,
        audit_dir,
        token,
        runtime,
        upstream,
    }
}

/// Fails if any file under the home holds `canary` in any form it could be
/// written in (`homes`), and checks that the scan saw audit records at all.
fn assert_no_canary_in_home(s: &Setup, canary: &str) {
    homes::assert_no_canary_in_home(&s.home_dir, &s.audit_dir, &[canary]);
}

/// Every audit record, as JSON.
fn records(s: &Setup) -> Vec<Value> {
    let mut names: Vec<_> = std::fs::read_dir(&s.audit_dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "jsonl"))
        .collect();
    names.sort();
    names
        .iter()
        .flat_map(|p| {
            std::fs::read_to_string(p)
                .unwrap()
                .lines()
                .filter(|l| !l.trim().is_empty())
                .map(|l| serde_json::from_str::<Value>(l).unwrap())
                .collect::<Vec<_>>()
        })
        .collect()
}

/// The `request` records added since `before` records.
fn new_requests(s: &Setup, before: usize) -> Vec<Value> {
    records(s)
        .into_iter()
        .skip(before)
        .filter(|r| r["kind"] == "request")
        .collect()
}

/// Serves the gateway app with `opts` on a fresh port.
async fn start(s: &Setup, opts: Options) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let app = airlock_gateway::app(s.runtime.clone());
    tokio::spawn(listen::serve(listener, app, opts, std::future::pending()));
    addr
}

/// A new `setup()` served as by `serving`, and the count of its audit records so far.
async fn served() -> (Setup, SocketAddr, usize) {
    let s = setup();
    let addr = serving(&s).await;
    let before = records(&s).len();
    (s, addr, before)
}

/// `POST /svc/ok` with the agent's token, then `rest` (more headers, the blank line, a body).
fn post_ok(token: &str, rest: &str) -> String {
    format!("POST /svc/ok HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\n{rest}")
}

/// Serves the gateway app with the usual test options: 5 s for the header and
/// between body bytes, 64 connections.
async fn serving(s: &Setup) -> SocketAddr {
    start(s, short(Duration::from_secs(5), Duration::from_secs(5), 64)).await
}

fn short(header: Duration, body: Duration, max: usize) -> Options {
    Options {
        header_read_timeout: header,
        body_idle_timeout: body,
        shutdown_grace: Duration::from_secs(2),
        connections: Connections::new(max),
    }
}

/// A parsed answer: status and body.
#[derive(Debug)]
struct Answer {
    status: Option<u16>,
    body: String,
}

impl Answer {
    fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or(Value::Null)
    }
    fn message(&self) -> String {
        self.json()["error"]["message"]
            .as_str()
            .unwrap_or("")
            .to_string()
    }
}

/// Reads one response (Content-Length bodies) within `within`.
async fn read_answer(conn: &mut TcpStream, within: Duration) -> Answer {
    let deadline = tokio::time::Instant::now() + within;
    let mut buf = Vec::new();
    let mut chunk = [0u8; 16384];
    loop {
        if let Some(end) = find(&buf, b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..end]).to_string();
            let len: usize = head
                .to_ascii_lowercase()
                .lines()
                .find_map(|l| l.strip_prefix("content-length:"))
                .and_then(|v| v.trim().parse().ok())
                .unwrap_or(0);
            if buf.len() >= end + 4 + len {
                let status = head.split_whitespace().nth(1).and_then(|s| s.parse().ok());
                return Answer {
                    status,
                    body: String::from_utf8_lossy(&buf[end + 4..end + 4 + len]).to_string(),
                };
            }
        }
        match tokio::time::timeout_at(deadline, conn.read(&mut chunk)).await {
            Ok(Ok(n)) if n > 0 => buf.extend_from_slice(&chunk[..n]),
            _ => {
                return Answer {
                    status: None,
                    body: String::from_utf8_lossy(&buf).to_string(),
                };
            }
        }
    }
}

async fn exchange(addr: SocketAddr, request: &[u8]) -> Answer {
    let mut conn = TcpStream::connect(addr).await.unwrap();
    conn.write_all(request).await.unwrap();
    read_answer(&mut conn, Duration::from_secs(10)).await
}

fn get(token: &str, path: &str) -> Vec<u8> {
    format!("GET {path} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\n\r\n").into_bytes()
}

/// Waits until the server closes `conn` (EOF or reset); the time it took, or
/// `None` if it was still open after `within`.
async fn closed_within(conn: &mut TcpStream, within: Duration) -> Option<Duration> {
    let t0 = Instant::now();
    let mut chunk = [0u8; 1024];
    loop {
        match tokio::time::timeout(within.saturating_sub(t0.elapsed()), conn.read(&mut chunk)).await
        {
            Err(_) => return None,
            Ok(Ok(0)) | Ok(Err(_)) => return Some(t0.elapsed()),
            Ok(Ok(_)) => {}
        }
    }
}

// ---------------------------------------------------------------- header-read timeout

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_request_heads_are_closed_at_the_header_read_timeout_and_others_are_served() {
    let s = setup();
    let timeout = Duration::from_secs(1);
    let addr = start(&s, short(timeout, Duration::from_secs(5), 64)).await;
    // 20 slowloris connections, each sending one more header byte every 200 ms.
    let mut slow = Vec::new();
    for _ in 0..20 {
        let mut c = TcpStream::connect(addr).await.unwrap();
        c.write_all(b"GET /svc/ok HTTP/1.1\r\nHost: x\r\nX-Slow: ")
            .await
            .unwrap();
        slow.push(c);
    }
    let t0 = Instant::now();
    let trickle = tokio::spawn(async move {
        let mut open = slow;
        let mut closed = Vec::new();
        while !open.is_empty() && t0.elapsed() < Duration::from_secs(5) {
            let mut still = Vec::new();
            for mut c in open {
                // A write to a closed connection fails, or a read sees EOF.
                let mut probe = [0u8; 64];
                let gone = match tokio::time::timeout(Duration::from_millis(1), c.read(&mut probe))
                    .await
                {
                    Ok(Ok(0)) | Ok(Err(_)) => true,
                    _ => c.write_all(b"a").await.is_err(),
                };
                if gone {
                    closed.push(t0.elapsed());
                } else {
                    still.push(c);
                }
            }
            open = still;
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        (open.len(), closed)
    });
    // Meanwhile a normal request is served at once.
    let a = exchange(addr, &get(&s.token, "/svc/ok")).await;
    assert_eq!(a.status, Some(200), "{a:?}");
    let (still_open, closed) = trickle.await.unwrap();
    assert_eq!(still_open, 0, "slowloris connections still open after 5 s");
    let last = closed.iter().max().unwrap();
    assert!(
        *last < timeout + Duration::from_millis(1500),
        "the last slow connection closed after {last:?}, timeout {timeout:?}"
    );
    assert!(
        *closed.iter().min().unwrap() >= timeout - Duration::from_millis(300),
        "closed before the timeout: {closed:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_keep_alive_connection_is_closed_after_the_timeout() {
    let s = setup();
    let timeout = Duration::from_secs(1);
    let addr = start(&s, short(timeout, Duration::from_secs(5), 64)).await;
    let mut conn = TcpStream::connect(addr).await.unwrap();
    // Two requests on the same connection (keep-alive works)...
    for _ in 0..2 {
        conn.write_all(&get(&s.token, "/svc/ok")).await.unwrap();
        let a = read_answer(&mut conn, Duration::from_secs(5)).await;
        assert_eq!(a.status, Some(200), "{a:?}");
    }
    // ...then silence: closed after the timeout.
    let took = closed_within(&mut conn, Duration::from_secs(5)).await;
    let took = took.expect("an idle connection is still open after 5 s");
    assert!(
        took >= timeout - Duration::from_millis(300)
            && took < timeout + Duration::from_millis(1500),
        "closed after {took:?}"
    );
    // A connection that never sends a byte too.
    let mut silent = TcpStream::connect(addr).await.unwrap();
    assert!(
        closed_within(&mut silent, Duration::from_secs(5))
            .await
            .is_some_and(|t| t < timeout + Duration::from_millis(1500))
    );
}

/// `serve_gateway` itself (what `airlock serve --gateway` runs) uses the
/// documented 10 s header-read timeout.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_gateway_closes_a_slow_request_head_within_10_s() {
    let s = setup();
    let (tx, rx) = tokio::sync::oneshot::channel();
    let rt = s.runtime.clone();
    tokio::spawn(async move {
        airlock_gateway::serve_gateway(rt, "127.0.0.1:0", |a| {
            let _ = tx.send(a);
        })
        .await
    });
    let addr = rx.await.unwrap();
    let mut c = TcpStream::connect(addr).await.unwrap();
    c.write_all(b"GET /svc/ok HTTP/1.1\r\nHost: x\r\n")
        .await
        .unwrap();
    let t0 = Instant::now();
    let mut closed = None;
    while t0.elapsed() < Duration::from_secs(15) {
        let mut probe = [0u8; 64];
        match tokio::time::timeout(Duration::from_millis(500), c.read(&mut probe)).await {
            Ok(Ok(0)) | Ok(Err(_)) => {
                closed = Some(t0.elapsed());
                break;
            }
            _ => {
                if c.write_all(b"X-A: b\r\n").await.is_err() {
                    closed = Some(t0.elapsed());
                    break;
                }
            }
        }
    }
    let closed = closed.expect("a slow request head is still open after 15 s");
    assert!(
        closed >= Duration::from_secs(9) && closed < Duration::from_secs(12),
        "closed after {closed:?} (header-read timeout 10 s)"
    );
    assert_eq!(
        listen::HEADER_READ_TIMEOUT,
        Duration::from_secs(10),
        "docs/gateway.md says 10 s"
    );
}

// ---------------------------------------------------------------- request bodies

/// Sends `head`, then `frame` over and over until the server answers or
/// `max` bytes went out; returns the answer and the bytes sent.
async fn stream_body(addr: SocketAddr, head: &[u8], frame: &[u8], max: usize) -> (Answer, usize) {
    let conn = TcpStream::connect(addr).await.unwrap();
    let (mut rd, mut wr) = conn.into_split();
    wr.write_all(head).await.unwrap();
    let mut sent = 0usize;
    let mut first = [0u8; 1];
    while sent < max {
        tokio::select! {
            // The answer (or the close) arrived: peek, so `read_answer` sees it all.
            _ = rd.peek(&mut first) => break,
            w = wr.write_all(frame) => {
                if w.is_err() { break; }
                sent += frame.len();
            }
        }
    }
    let mut conn = rd.reunite(wr).unwrap();
    let answer = read_answer(&mut conn, Duration::from_secs(10)).await;
    (answer, sent)
}

/// The requests audited since `before` are one refusal, audited as
/// `assert_refusal_audited` says; they are returned.
fn one_refusal_audited(
    s: &Setup,
    before: usize,
    status: u16,
    capability: Option<&str>,
    detail_has: &str,
) -> Vec<Value> {
    let recs = new_requests(s, before);
    assert_eq!(recs.len(), 1, "{recs:?}");
    assert_refusal_audited(&recs[0], status, capability, detail_has);
    recs
}

fn assert_refusal_audited(rec: &Value, status: u16, capability: Option<&str>, detail_has: &str) {
    assert_eq!(rec["kind"], "request", "{rec}");
    assert_eq!(rec["decision"], "deny", "{rec}");
    assert_eq!(rec["status"], status, "{rec}");
    match capability {
        Some(c) => {
            assert_eq!(rec["capability"], c, "{rec}");
            assert_eq!(rec["agent"], "tester", "{rec}");
        }
        None => assert!(rec.get("capability").is_none_or(Value::is_null), "{rec}"),
    }
    let detail = rec["detail"].as_str().unwrap_or("");
    assert!(
        detail.contains(detail_has),
        "detail {detail:?} lacks {detail_has:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_endless_chunked_body_is_refused_at_the_service_limit_and_audited() {
    let (s, addr, before) = served().await;
    let head = post_ok(&s.token, "Transfer-Encoding: chunked\r\n\r\n");
    let mut frame = format!("{:x}\r\n", 16 * KIB).into_bytes();
    frame.extend(std::iter::repeat_n(b'x', 16 * KIB));
    frame.extend_from_slice(b"\r\n");
    let (answer, sent) = stream_body(addr, head.as_bytes(), &frame, 64 << 20).await;
    assert_eq!(answer.status, Some(413), "{answer:?}");
    // Refused once the limit was passed: what went in is the limit plus what the
    // socket buffers hold (a few MiB on loopback at most), not 32 MiB.
    assert!(
        sent < SERVICE_LIMIT + (8 << 20),
        "{sent} bytes sent before the 413"
    );
    assert_eq!(s.upstream.count(), 0);
    one_refusal_audited(
        &s,
        before,
        413,
        Some("svc"),
        "65536-byte limit for service \"svc\"",
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_content_length_over_the_service_limit_is_refused_before_reading() {
    let (s, addr, before) = served().await;
    // Declares 1 TiB and sends nothing: the answer comes at once.
    let req = format!(
        "POST /svc/ok HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {}\r\nContent-Length: {}\r\n\r\n",
        s.token,
        1u64 << 40
    );
    let t0 = Instant::now();
    let a = exchange(addr, req.as_bytes()).await;
    assert_eq!(a.status, Some(413), "{a:?}");
    assert!(t0.elapsed() < Duration::from_secs(2));
    assert!(
        a.message().contains("65536-byte limit for service \"svc\""),
        "{a:?}"
    );
    assert_eq!(a.json()["type"], "error");
    // Just under the limit goes through.
    let body = vec![b'y'; SERVICE_LIMIT];
    let mut req = format!(
        "POST /svc/ok HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {}\r\nContent-Length: {}\r\n\r\n",
        s.token,
        body.len()
    )
    .into_bytes();
    req.extend_from_slice(&body);
    let ok = exchange(addr, &req).await;
    assert_eq!(ok.status, Some(200), "{ok:?}");
    assert_eq!(s.upstream.count(), 1);
    let recs = new_requests(&s, before);
    assert_eq!(recs.len(), 2, "{recs:?}");
    assert_refusal_audited(&recs[0], 413, Some("svc"), "limit");
    // The status is on the record, or on the outcome that completes it
    // (write-ahead audit).
    let status = match recs[1].get("status").filter(|v| !v.is_null()) {
        Some(v) => v.clone(),
        None => records(&s)
            .into_iter()
            .find(|r| r["kind"] == "outcome" && r.get("of") == recs[1].get("seq"))
            .map_or(Value::Null, |r| r["status"].clone()),
    };
    assert_eq!(status, 200, "{recs:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_malformed_chunked_body_is_a_400_not_a_413_and_audited() {
    let (s, addr, before) = served().await;
    let req = post_ok(
        &s.token,
        "Transfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n",
    );
    let a = exchange(addr, req.as_bytes()).await;
    assert_eq!(a.status, Some(400), "{a:?}");
    let msg = a.message();
    assert!(msg.starts_with("malformed request body"), "{msg}");
    assert!(msg.to_ascii_lowercase().contains("chunk"), "{msg}");
    assert_eq!(s.upstream.count(), 0);
    one_refusal_audited(&s, before, 400, Some("svc"), "malformed request body");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_body_is_a_408_and_audited() {
    let s = setup();
    let addr = start(
        &s,
        short(Duration::from_secs(5), Duration::from_secs(1), 64),
    )
    .await;
    let before = records(&s).len();
    let req = post_ok(&s.token, "Content-Length: 100\r\n\r\nonly ten b");
    let t0 = Instant::now();
    let a = exchange(addr, req.as_bytes()).await;
    assert_eq!(a.status, Some(408), "{a:?}");
    let took = t0.elapsed();
    assert!(
        took >= Duration::from_millis(800) && took < Duration::from_secs(3),
        "{took:?}"
    );
    assert!(a.message().contains("stalled"), "{a:?}");
    one_refusal_audited(&s, before, 408, Some("svc"), "stalled");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_absolute_form_target_is_refused_and_audited() {
    let (s, addr, before) = served().await;
    let a = exchange(
        addr,
        &get(&s.token, "http://user:pw@169.254.169.254/latest/meta-data/"),
    )
    .await;
    assert_eq!(a.status, Some(400), "{a:?}");
    assert!(a.message().contains("absolute-form"), "{a:?}");
    assert_eq!(s.upstream.count(), 0);
    let recs = one_refusal_audited(&s, before, 400, None, "169.254.169.254");
    assert_eq!(recs[0]["path"], "/latest/meta-data/");
    // The userinfo is in no record (a file that cannot be read fails the test).
    for (path, bytes) in home_files(&s.home_dir) {
        assert!(
            !String::from_utf8_lossy(&bytes).contains("pw@"),
            "userinfo reached {}",
            path.display()
        );
    }
    assert_no_canary_in_home(&s, SECRET);
}

// ---------------------------------------------------------------- connection cap

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn at_the_connection_cap_idle_connections_make_room_and_busy_ones_do_not() {
    let s = setup();
    let max = 4;
    let connections = Connections::new(max);
    let opts = Options {
        connections: connections.clone(),
        ..short(Duration::from_secs(30), Duration::from_secs(30), max)
    };
    let addr = start(&s, opts).await;
    // Fill the table with idle connections (long header timeout: they stay).
    let mut idle = Vec::new();
    for _ in 0..max + 4 {
        idle.push(TcpStream::connect(addr).await.unwrap());
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    // Exactly `max`: at most the cap, and at least as many as were kept (a server
    // that accepted nothing, or closed every idle connection, fails here).
    assert_eq!(connections.open(), max, "{} open", connections.open());
    // A new client is served at once: the longest-idle connection made room.
    let t0 = Instant::now();
    let a = exchange(addr, &get(&s.token, "/svc/ok")).await;
    assert_eq!(a.status, Some(200), "{a:?}");
    assert!(t0.elapsed() < Duration::from_secs(2));
    // The oldest idle connections were closed.
    let mut first = idle.remove(0);
    assert!(
        closed_within(&mut first, Duration::from_secs(2))
            .await
            .is_some()
    );
    drop(idle);

    // Now every connection busy: `max` requests whose bodies are in flight.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut busy = Vec::new();
    for _ in 0..max {
        let mut c = TcpStream::connect(addr).await.unwrap();
        let head = post_ok(&s.token, "Content-Length: 10\r\n\r\nabc");
        c.write_all(head.as_bytes()).await.unwrap();
        busy.push(c);
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(connections.open(), max);
    let a = exchange(addr, &get(&s.token, "/svc/ok")).await;
    assert_eq!(a.status, Some(503), "{a:?}");
    assert!(a.body.contains("connection limit"), "{a:?}");
    // The busy ones finish normally.
    for c in &mut busy {
        c.write_all(b"defghij").await.unwrap();
        let a = read_answer(c, Duration::from_secs(5)).await;
        assert_eq!(a.status, Some(200), "{a:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_lets_a_request_in_flight_finish_and_stops_accepting() {
    let s = setup();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(listen::serve(
        listener,
        airlock_gateway::app(s.runtime.clone()),
        short(Duration::from_secs(5), Duration::from_secs(5), 16),
        async {
            let _ = stop_rx.await;
        },
    ));
    // A request whose body is still coming when the shutdown starts.
    let mut c = TcpStream::connect(addr).await.unwrap();
    let head = post_ok(&s.token, "Content-Length: 4\r\n\r\nab");
    c.write_all(head.as_bytes()).await.unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    stop_tx.send(()).unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    c.write_all(b"cd").await.unwrap();
    let a = read_answer(&mut c, Duration::from_secs(5)).await;
    assert_eq!(a.status, Some(200), "{a:?}");
    tokio::time::timeout(Duration::from_secs(3), server)
        .await
        .expect("serve did not return after the shutdown")
        .unwrap();
    assert!(TcpStream::connect(addr).await.is_err(), "still accepting");
}

// ---------------------------------------------------------------- response bodies

/// An upstream body that fails right after its first chunk: the agent still gets
/// the head and the chunk, then a cut stream (no final chunk, connection closed),
/// never a connection closed without any answer.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upstream_body_failing_after_its_first_chunk_still_delivers_the_head() {
    let s = setup();
    let addr = serving(&s).await;
    for _ in 0..5 {
        let mut conn = TcpStream::connect(addr).await.unwrap();
        conn.write_all(&get(&s.token, "/svc/bad-chunked-mid"))
            .await
            .unwrap();
        let mut raw = Vec::new();
        tokio::time::timeout(Duration::from_secs(10), conn.read_to_end(&mut raw))
            .await
            .expect("the connection was not closed")
            .ok();
        let text = String::from_utf8_lossy(&raw);
        assert!(text.starts_with("HTTP/1.1 200"), "{text:?}");
        assert!(
            !text.ends_with("0\r\n\r\n"),
            "a failed body must not look complete: {text:?}"
        );
    }
}

// ---------------------------------------------------------------- audit hygiene

/// Query values are data, not metadata: a canary sent as a query value reaches the
/// upstream, and no file under the home (audit log included) holds it; the audit
/// record names the parameter (`query_keys`), never its value.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_query_value_reaches_the_upstream_but_no_file_under_the_home() {
    const CANARY: &str = "qv_CANARY_7c1e9a0b3d";
    assert_eq!(base64(CANARY, false), "cXZfQ0FOQVJZXzdjMWU5YTBiM2Q");
    let (s, addr, before) = served().await;
    let a = exchange(
        addr,
        &get(&s.token, &format!("/svc/ok?k={CANARY}&page=2&flag")),
    )
    .await;
    assert_eq!(a.status, Some(200), "{a:?}");
    assert_eq!(s.upstream.count(), 1);
    s.runtime.flush_audit().unwrap();
    assert_no_canary_in_home(&s, CANARY);
    assert_no_canary_in_home(&s, SECRET);
    let recs = new_requests(&s, before);
    assert_eq!(recs.len(), 1, "{recs:?}");
    assert_eq!(
        recs[0]["query_keys"],
        serde_json::json!(["k", "page", "flag"]),
        "{}",
        recs[0]
    );
}
