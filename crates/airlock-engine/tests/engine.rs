//! airlock-engine integration tests. Every upstream is a raw HTTP/1.1 server on
//! 127.0.0.1 written here, which records exactly what it received (request line,
//! headers in order, body) so the assertions are about the wire, not about our own
//! data structures.
#![allow(clippy::unwrap_used, missing_docs)]

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use airlock_config::{Auth, Service};
use airlock_engine::scrub::Scrubber;
use airlock_engine::{
    AgentError, Engine, EngineConfig, EngineError, ErrorSource, Limits, ServiceOptions,
    StreamingResponse, UpstreamError, UpstreamRequest, UpstreamResponse,
};
use airlock_inject::{Bearer, Injector};
use airlock_policy::{Target, normalize};
use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};
use http::Method;
use proptest::prelude::*;
use secrecy::SecretSlice;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

// ---------------------------------------------------------------------------------
// A recording HTTP/1.1 server.

const SECRET: &str = "sk_test_51H8xYz/AbC+dEf=gHiJkLmNoP";
const SECRET_NAME: &str = "stripe";

#[derive(Debug, Clone, Default)]
struct Received {
    request_line: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Received {
    fn all(&self, name: &str) -> Vec<&str> {
        self.headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
            .collect()
    }
    fn one(&self, name: &str) -> Option<&str> {
        let all = self.all(name);
        assert!(all.len() <= 1, "{name} sent {} times: {all:?}", all.len());
        all.first().copied()
    }
}

#[derive(Clone)]
enum Reply {
    Simple {
        status: u16,
        headers: Vec<(String, String)>,
        body: Vec<u8>,
    },
    /// `Transfer-Encoding: chunked`, one HTTP chunk per element, `gap` between them.
    Chunked {
        headers: Vec<(String, String)>,
        chunks: Vec<Vec<u8>>,
        gap: Duration,
    },
    /// Waits, then answers 200.
    Hang(Duration),
    /// These bytes, head and body, as they are.
    Raw(Vec<u8>),
}

fn ok(body: &str) -> Reply {
    Reply::Simple {
        status: 200,
        headers: vec![("Content-Type".into(), "text/plain".into())],
        body: body.as_bytes().to_vec(),
    }
}

type Handler = Arc<dyn Fn(&Received) -> Reply + Send + Sync>;

struct Server {
    addr: SocketAddr,
    /// TCP connections accepted, whatever they sent.
    connections: Arc<AtomicUsize>,
    received: Arc<Mutex<Vec<Received>>>,
}

impl Server {
    async fn start(handler: impl Fn(&Received) -> Reply + Send + Sync + 'static) -> Server {
        let handler: Handler = Arc::new(handler);
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let connections = Arc::new(AtomicUsize::new(0));
        let received = Arc::new(Mutex::new(Vec::new()));
        let (c, r) = (connections.clone(), received.clone());
        tokio::spawn(async move {
            loop {
                let Ok((mut sock, _)) = listener.accept().await else {
                    return;
                };
                c.fetch_add(1, Ordering::SeqCst);
                let (r, handler) = (r.clone(), handler.clone());
                tokio::spawn(async move {
                    let Some(req) = read_request(&mut sock).await else {
                        return;
                    };
                    r.lock().unwrap().push(req.clone());
                    let _ = write_reply(&mut sock, handler(&req)).await;
                });
            }
        });
        Server {
            addr,
            connections,
            received,
        }
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }
    fn received(&self) -> Vec<Received> {
        self.received.lock().unwrap().clone()
    }
    fn connections(&self) -> usize {
        self.connections.load(Ordering::SeqCst)
    }
    /// Nothing arrived: not a connection, let alone a credential.
    fn assert_untouched(&self) {
        assert_eq!(
            self.connections(),
            0,
            "server got connections: {:?}",
            self.received()
        );
    }
}

async fn read_request(sock: &mut tokio::net::TcpStream) -> Option<Received> {
    let mut buf = Vec::new();
    let mut tmp = [0u8; 4096];
    let head_end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i;
        }
        let n = sock.read(&mut tmp).await.ok()?;
        if n == 0 || buf.len() > 1 << 20 {
            return None;
        }
        buf.extend_from_slice(&tmp[..n]);
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
    let mut lines = head.split("\r\n");
    let request_line = lines.next()?.to_string();
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.to_string(), v.trim().to_string()))
        .collect();
    let len: usize = headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case("content-length"))
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or(0);
    let mut body = buf[head_end + 4..].to_vec();
    while body.len() < len {
        let n = sock.read(&mut tmp).await.ok()?;
        if n == 0 {
            break;
        }
        body.extend_from_slice(&tmp[..n]);
    }
    Some(Received {
        request_line,
        headers,
        body,
    })
}

async fn write_reply(sock: &mut tokio::net::TcpStream, reply: Reply) -> std::io::Result<()> {
    match reply {
        Reply::Simple {
            status,
            headers,
            body,
        } => {
            let mut out = format!(
                "HTTP/1.1 {status} X\r\nConnection: close\r\nContent-Length: {}\r\n",
                body.len()
            );
            for (n, v) in headers {
                out.push_str(&format!("{n}: {v}\r\n"));
            }
            out.push_str("\r\n");
            sock.write_all(out.as_bytes()).await?;
            sock.write_all(&body).await?;
        }
        Reply::Chunked {
            headers,
            chunks,
            gap,
        } => {
            let mut out = "HTTP/1.1 200 OK\r\nConnection: close\r\nTransfer-Encoding: chunked\r\n"
                .to_string();
            for (n, v) in headers {
                out.push_str(&format!("{n}: {v}\r\n"));
            }
            out.push_str("\r\n");
            sock.write_all(out.as_bytes()).await?;
            for c in chunks {
                sock.write_all(format!("{:x}\r\n", c.len()).as_bytes())
                    .await?;
                sock.write_all(&c).await?;
                sock.write_all(b"\r\n").await?;
                sock.flush().await?;
                tokio::time::sleep(gap).await;
            }
            sock.write_all(b"0\r\n\r\n").await?;
        }
        Reply::Raw(bytes) => sock.write_all(&bytes).await?,
        Reply::Hang(d) => {
            tokio::time::sleep(d).await;
            sock.write_all(b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\nok")
                .await?;
        }
    }
    sock.shutdown().await
}

// ---------------------------------------------------------------------------------
// Helpers.

fn service(url: &str) -> Service {
    Service {
        name: "stripe".into(),
        url: url::Url::parse(url).unwrap(),
        auth: Auth::Bearer {
            secret: SECRET_NAME.into(),
        },
        timeout: None,
        max_request_bytes: None,
        max_response_bytes: None,
        forward_cookies: false,
        ca_file: None,
    }
}

fn bearer() -> Bearer {
    Bearer::new(SECRET_NAME, SecretSlice::from(SECRET.as_bytes().to_vec())).unwrap()
}

fn engine() -> Engine {
    Engine::new(EngineConfig::default()).unwrap()
}

fn engine_with(limits: Limits) -> Engine {
    Engine::new(EngineConfig {
        defaults: ServiceOptions {
            limits,
            forward_cookies: false,
        },
        ..EngineConfig::default()
    })
    .unwrap()
}

fn get(raw_target: &str) -> UpstreamRequest {
    UpstreamRequest::new(Method::GET, normalize(raw_target).unwrap())
}

/// The scrubber the caller would pass: it knows nothing; the engine adds the
/// injector's secret itself.
/// `GET target` to `svc` with the bearer token, nothing to scrub; must succeed.
async fn get_ok(svc: &Service, target: &str) -> UpstreamResponse {
    engine()
        .send(svc, &bearer(), get(target), &empty())
        .await
        .unwrap()
}

/// The same, streamed.
async fn stream_ok(svc: &Service, target: &str) -> StreamingResponse {
    engine()
        .send_streaming(svc, &bearer(), get(target), &empty())
        .await
        .unwrap()
}

/// `send` (with nothing to scrub) that must fail: its error.
async fn send_err(
    e: &Engine,
    svc: &Service,
    inj: &dyn Injector,
    req: UpstreamRequest,
) -> EngineError {
    e.send(svc, inj, req, &empty()).await.unwrap_err()
}

fn empty() -> Scrubber {
    Scrubber::empty()
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

/// A scrubber that knows one secret: `value`, named `name`.
fn one(name: &str, value: &[u8]) -> Scrubber {
    Scrubber::new([(name, value)]).unwrap()
}

/// A stream of `s` turns `chunk` into `out` at once: nothing is held back, and
/// nothing more comes out when it finishes.
fn streamed_at_once(s: &Scrubber, chunk: &[u8], out: &[u8]) {
    let mut st = s.stream();
    assert_eq!(st.push(chunk), out);
    assert_eq!(st.pending_len(), 0);
    assert_eq!(st.finish(), b"");
}

fn hex(s: &[u8], upper: bool) -> String {
    s.iter()
        .map(|b| {
            if upper {
                format!("{b:02X}")
            } else {
                format!("{b:02x}")
            }
        })
        .collect()
}

fn urlencode(s: &[u8]) -> String {
    s.iter()
        .map(|&b| {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                char::from(b).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

// ---------------------------------------------------------------------------------
// Invariant 1: the credential goes to the configured origin, with exactly the path.

#[tokio::test]
async fn credential_reaches_upstream_with_exact_target() {
    let up = Server::start(|_| ok("hi")).await;
    let svc = service(&up.url("/api/v3/"));
    let req = get("/v1/x/../charges/%7Eme?limit=3&expand[]=customer&q=%2e");
    let resp = engine().send(&svc, &bearer(), req, &empty()).await.unwrap();
    assert_eq!(resp.status, 200);
    assert_eq!(&resp.body[..], b"hi");

    let got = up.received();
    assert_eq!(got.len(), 1);
    assert_eq!(
        got[0].request_line,
        "GET /api/v3/v1/charges/~me?limit=3&expand[]=customer&q=%2e HTTP/1.1"
    );
    assert_eq!(
        got[0].one("authorization"),
        Some(format!("Bearer {SECRET}").as_str())
    );
    assert_eq!(got[0].one("host"), Some(up.addr.to_string().as_str()));
    assert_eq!(got[0].one("accept-encoding"), Some("identity"));
}

#[tokio::test]
async fn base_path_joins_with_exactly_one_slash() {
    let up = Server::start(|_| ok("")).await;
    let e = engine();
    for (base, target, line) in [
        ("", "/v1", "GET /v1 HTTP/1.1"),
        ("/", "/v1/", "GET /v1/ HTTP/1.1"),
        ("/api", "/v1", "GET /api/v1 HTTP/1.1"),
        ("/api/", "/v1?", "GET /api/v1? HTTP/1.1"),
        ("/api/", "/", "GET /api/ HTTP/1.1"),
    ] {
        let before = up.received().len();
        e.send(&service(&up.url(base)), &bearer(), get(target), &empty())
            .await
            .unwrap();
        assert_eq!(
            up.received()[before].request_line,
            line,
            "base {base:?} target {target:?}"
        );
    }
}

#[tokio::test]
async fn foreign_server_never_gets_anything() {
    let foreign = Server::start(|_| ok("stolen")).await;
    let f = foreign.addr.to_string();
    let up = Server::start({
        let f = f.clone();
        move |r| {
            let path = r.request_line.split(' ').nth(1).unwrap_or("").to_string();
            match path.as_str() {
                "/redirect-away" => Reply::Simple {
                    status: 302,
                    headers: vec![("Location".into(), format!("http://{f}/steal"))],
                    body: vec![],
                },
                "/redirect-away-307" => Reply::Simple {
                    status: 307,
                    headers: vec![("Location".into(), format!("//{f}/steal"))],
                    body: vec![],
                },
                "/redirect-here" => Reply::Simple {
                    status: 302,
                    headers: vec![("Location".into(), "/landing".into())],
                    body: vec![],
                },
                _ => ok("upstream"),
            }
        }
    })
    .await;
    let svc = service(&up.url("/"));
    let e = engine();

    // Targets normalization refuses never become requests.
    for raw in [
        format!("http://{f}/x"),
        format!("//{f}/x"),
        format!("https:{f}/x"),
        format!("/v1/%2f%2f{f}/x"),
        format!("/v1\\..\\..\\{f}"),
        format!("/..//{f}/x"),
    ] {
        assert!(
            normalize(&raw).is_err(),
            "{raw} should be refused by normalization"
        );
    }
    // Hand-built targets that skip normalization are refused by the engine.
    for (path, query) in [
        (format!("//{f}/x"), None),
        (format!("http://{f}/x"), None),
        (format!("@{f}/x"), None),
        ("/v1/../x".to_string(), None),
        ("/v1".to_string(), Some(format!("a#@{f}"))),
        (format!("/v1 HTTP/1.1\r\nHost: {f}\r\n\r\nGET /"), None),
    ] {
        let t = Target { path, query };
        let err = e
            .send(
                &svc,
                &bearer(),
                UpstreamRequest::new(Method::GET, t),
                &empty(),
            )
            .await
            .unwrap_err();
        assert_eq!(err.error_source(), ErrorSource::Agent, "{err}");
    }
    assert_eq!(
        up.connections(),
        0,
        "refused targets must not reach even the upstream"
    );

    // `@host` tricks and absolute-URL-looking paths stay paths on the upstream.
    for raw in [
        format!("/@{f}/x"),
        format!("/:@{f}"),
        format!("/x@{f}"),
        format!("/%40{f}/x"),
        format!("/http:/{f}/x"),
        format!("/v1?next=http://{f}/x"),
    ] {
        let resp = e.send(&svc, &bearer(), get(&raw), &empty()).await.unwrap();
        assert_eq!(&resp.body[..], b"upstream", "{raw}");
    }

    // An agent Host cannot move it; forwarding headers are refused outright
    // (routing overrides, issue 14) and nothing is sent.
    let req = get("/v1").header("Host", f.clone());
    e.send(&svc, &bearer(), req, &empty()).await.unwrap();
    let last = up.received().pop().unwrap();
    assert_eq!(last.one("host"), Some(up.addr.to_string().as_str()));
    let n = up.received().len();
    for (name, value) in [
        ("X-Forwarded-Host", f.clone()),
        ("Forwarded", format!("host={f}")),
        ("X-Original-URL", "/v1/admin".to_string()),
    ] {
        let req = get("/v1").header(name, value);
        let err = send_err(&e, &svc, &bearer(), req).await;
        assert_eq!(err.http_status(), 400, "{name}: {err}");
    }
    assert_eq!(
        up.received().len(),
        n,
        "a refused request reached the upstream"
    );

    // A redirect elsewhere is returned, not followed, and its Location is removed.
    for path in ["/redirect-away", "/redirect-away-307"] {
        let resp = e.send(&svc, &bearer(), get(path), &empty()).await.unwrap();
        assert!(resp.status.is_redirection());
        assert!(resp.headers.get("location").is_none(), "{:?}", resp.headers);
        assert!(
            resp.removed_response_headers
                .contains(&"location".to_string())
        );
    }

    // A same-origin redirect is returned with its Location, and not followed either:
    // the new path was never checked by the policy.
    let n = up.received().len();
    let resp = e
        .send(&svc, &bearer(), get("/redirect-here"), &empty())
        .await
        .unwrap();
    assert_eq!(resp.status, 302);
    assert_eq!(resp.headers["location"], "/landing");
    assert_eq!(
        up.received().len(),
        n + 1,
        "the redirect must not be followed"
    );
    assert!(
        up.received()
            .iter()
            .all(|r| !r.request_line.contains("/landing"))
    );

    foreign.assert_untouched();
}

// ---------------------------------------------------------------------------------
// Invariant 2: agent headers.

#[tokio::test]
async fn agent_headers_are_filtered_on_the_wire() {
    let up = Server::start(|_| ok("")).await;
    let svc = service(&up.url("/"));
    let req = UpstreamRequest::new(Method::POST, normalize("/v1/charges").unwrap())
        .header("Authorization", "Bearer agent-token")
        .header("Proxy-Authorization", "Basic YWdlbnQ=")
        .header("Cookie", "session=agent")
        .header("Host", "foreign.example")
        .header("Connection", "x-foo, close")
        .header("X-Foo", "hop")
        .header("Keep-Alive", "timeout=5")
        .header("Transfer-Encoding", "chunked")
        .header("Content-Length", "999")
        .header("TE", "trailers")
        .header("Upgrade", "h2c")
        .header("X-Real-IP", "10.0.0.1")
        .header("Accept-Encoding", "gzip")
        .header("X-Custom", "kept")
        .header("Content-Type", "application/x-www-form-urlencoded")
        .body("amount=100");
    let resp = engine().send(&svc, &bearer(), req, &empty()).await.unwrap();
    let got = &up.received()[0];

    assert_eq!(got.request_line, "POST /v1/charges HTTP/1.1");
    assert_eq!(got.all("authorization"), vec![format!("Bearer {SECRET}")]);
    for absent in [
        "proxy-authorization",
        "cookie",
        "x-foo",
        "keep-alive",
        "transfer-encoding",
        "te",
        "upgrade",
        "x-real-ip",
    ] {
        assert!(
            got.all(absent).is_empty(),
            "{absent} reached the upstream: {:?}",
            got.headers
        );
    }
    assert_eq!(got.one("host"), Some(up.addr.to_string().as_str()));
    assert_eq!(got.one("content-length"), Some("10"));
    assert_eq!(got.one("accept-encoding"), Some("identity"));
    assert_eq!(got.one("x-custom"), Some("kept"));
    assert_eq!(got.body, b"amount=100");
    // `Connection` may only carry what the client itself chose, never `x-foo`.
    assert!(got.all("connection").iter().all(|v| !v.contains("x-foo")));
    for name in [
        "authorization",
        "cookie",
        "host",
        "x-foo",
        "transfer-encoding",
        "content-length",
    ] {
        assert!(
            resp.removed_request_headers.contains(&name.to_string()),
            "{name}"
        );
    }
}

#[tokio::test]
async fn cookie_forwarded_only_when_the_service_allows_it() {
    let up = Server::start(|_| ok("")).await;
    let svc = service(&up.url("/"));
    let mut config = EngineConfig::default();
    config.services.insert(
        "stripe".into(),
        ServiceOptions {
            forward_cookies: true,
            ..ServiceOptions::default()
        },
    );
    let e = Engine::new(config).unwrap();
    e.send(&svc, &bearer(), get("/").header("Cookie", "a=b"), &empty())
        .await
        .unwrap();
    assert_eq!(up.received()[0].one("cookie"), Some("a=b"));
}

#[tokio::test]
async fn refused_headers_send_nothing() {
    let up = Server::start(|_| ok("")).await;
    let svc = service(&up.url("/"));
    let e = engine();
    for (name, value, expect) in [
        ("X-HTTP-Method-Override", "DELETE", "overrides the method"),
        ("X-HTTP-Method", "DELETE", "overrides the method"),
        ("X-Method-Override", "DELETE", "overrides the method"),
        ("X-Note", "a\r\nAuthorization: Bearer x", "CR"),
        ("X-Note", "a\nHost: foreign", "LF"),
        ("X-Note", "a\0b", "NUL"),
        ("X-Note\r\nHost", "foreign", "CR"),
        ("Bad Name", "x", "not a valid HTTP header name"),
    ] {
        let err = send_err(&e, &svc, &bearer(), get("/v1").header(name, value)).await;
        assert_eq!(err.error_source(), ErrorSource::Agent);
        assert_eq!(err.http_status(), 400);
        assert!(err.to_string().contains(expect), "{err}");
    }
    // Method-override is refused even on a GET.
    up.assert_untouched();
}

#[tokio::test]
async fn forbidden_methods_and_unsendable_queries_are_refused() {
    let up = Server::start(|_| ok("")).await;
    let svc = service(&up.url("/"));
    let e = engine();
    for m in ["TRACE", "TRACK", "CONNECT"] {
        let req = UpstreamRequest::new(
            Method::from_bytes(m.as_bytes()).unwrap(),
            normalize("/").unwrap(),
        );
        let err = send_err(&e, &svc, &bearer(), req).await;
        assert!(
            matches!(err, EngineError::Agent(AgentError::ForbiddenMethod { .. })),
            "{err}"
        );
    }
    // `'` would be re-encoded by the URL parser: refused with a hint, not altered.
    let err = send_err(&e, &svc, &bearer(), get("/v1?q='x'")).await;
    assert!(err.to_string().contains("%27"), "{err}");
    up.assert_untouched();
}

// ---------------------------------------------------------------------------------
// Invariant 4: reflected credentials are redacted.

fn echo_reply(r: &Received) -> Reply {
    let v = r.one("authorization").unwrap_or("").as_bytes().to_vec();
    let body = format!(
        r#"{{"plain":"{}","b64":"{}","b64nopad":"{}","b64url":"{}","b64urlpad":"{}","url":"{}","hex":"{}","HEX":"{}","secret_b64":"{}","secret_url":"{}"}}"#,
        String::from_utf8_lossy(&v),
        STANDARD.encode(&v),
        STANDARD_NO_PAD.encode(&v),
        URL_SAFE_NO_PAD.encode(&v),
        URL_SAFE.encode(&v),
        urlencode(&v),
        hex(&v, false),
        hex(&v, true),
        STANDARD.encode(SECRET),
        urlencode(SECRET.as_bytes()),
    );
    Reply::Simple {
        status: 200,
        headers: vec![
            ("X-Echo".into(), String::from_utf8_lossy(&v).into_owned()),
            ("X-Echo-B64".into(), STANDARD.encode(&v)),
            ("X-Echo-Url".into(), urlencode(&v)),
            ("Set-Cookie".into(), format!("token={}", urlencode(&v))),
            ("Content-Type".into(), "application/json".into()),
        ],
        body: body.into_bytes(),
    }
}

/// Every form of the secret the echo server produces, plus the inner base64 run of
/// each base64 form (the characters that encode only secret bits).
fn leaked_forms() -> Vec<Vec<u8>> {
    let header = format!("Bearer {SECRET}");
    let mut forms = vec![
        SECRET.as_bytes().to_vec(),
        hex(SECRET.as_bytes(), false).into_bytes(),
        hex(SECRET.as_bytes(), true).into_bytes(),
        urlencode(SECRET.as_bytes()).into_bytes(),
        STANDARD_NO_PAD.encode(SECRET).into_bytes(),
        URL_SAFE_NO_PAD.encode(SECRET).into_bytes(),
    ];
    for enc in [
        STANDARD.encode(&header),
        STANDARD_NO_PAD.encode(&header),
        URL_SAFE.encode(&header),
        URL_SAFE_NO_PAD.encode(&header),
    ] {
        // "Bearer " is 7 bytes = the first 10 characters (rounded up); the last 2
        // characters and padding may mix in nothing but the secret's last bits.
        let inner = &enc.trim_end_matches('=')[10..enc.trim_end_matches('=').len() - 1];
        forms.push(inner.as_bytes().to_vec());
    }
    forms
}

fn assert_clean(bytes: &[u8], what: &str) {
    for f in leaked_forms() {
        assert!(
            !contains(bytes, &f),
            "{what} leaks a form of the secret ({}): {}",
            String::from_utf8_lossy(&f),
            String::from_utf8_lossy(bytes)
        );
    }
}

#[tokio::test]
async fn reflected_credential_is_redacted_everywhere() {
    let up = Server::start(echo_reply).await;
    let svc = service(&up.url("/"));
    let resp = get_ok(&svc, "/echo").await;
    // The upstream did get the real credential…
    assert_eq!(
        up.received()[0].one("authorization"),
        Some(format!("Bearer {SECRET}").as_str())
    );
    // …and the caller sees none of it.
    assert_clean(&resp.body, "body");
    let text = resp.body_text();
    assert!(!text.base64);
    let json: serde_json::Value = serde_json::from_str(&text.text).unwrap();
    for key in [
        "plain",
        "b64",
        "b64nopad",
        "b64url",
        "b64urlpad",
        "url",
        "hex",
        "HEX",
        "secret_b64",
        "secret_url",
    ] {
        let v = json[key].as_str().unwrap();
        assert!(v.contains("[REDACTED:stripe]"), "{key}: {v}");
    }
    for (name, value) in &resp.headers {
        assert_clean(value.as_bytes(), name.as_str());
    }
    assert_eq!(resp.headers["x-echo"], "Bearer [REDACTED:stripe]");
    assert!(
        resp.headers["x-echo-b64"]
            .to_str()
            .unwrap()
            .contains("[REDACTED:stripe]")
    );
    assert!(
        resp.headers["x-echo-url"]
            .to_str()
            .unwrap()
            .contains("[REDACTED:stripe]")
    );
    assert!(resp.headers.get("set-cookie").is_none());
}

#[tokio::test]
async fn reflected_credential_is_redacted_when_streamed_in_tiny_chunks() {
    let up = Server::start(|r| {
        let Reply::Simple { headers, body, .. } = echo_reply(r) else {
            unreachable!()
        };
        Reply::Chunked {
            headers: headers
                .into_iter()
                .filter(|(n, _)| n == "Content-Type")
                .collect(),
            chunks: body.chunks(3).map(<[u8]>::to_vec).collect(),
            gap: Duration::from_millis(1),
        }
    })
    .await;
    let svc = service(&up.url("/"));
    let resp = stream_ok(&svc, "/echo").await;
    assert_eq!(resp.status, 200);
    let body = resp.body.collect().await.unwrap();
    assert_clean(&body, "streamed body");
    assert!(contains(&body, b"[REDACTED:stripe]"));
    serde_json::from_slice::<serde_json::Value>(&body).unwrap();
}

#[tokio::test]
async fn binary_bodies_come_back_as_base64_scrubbed() {
    let up = Server::start(|r| {
        let mut body = vec![0xff, 0xfe, 0x00];
        body.extend_from_slice(r.one("authorization").unwrap().as_bytes());
        Reply::Simple {
            status: 200,
            headers: vec![],
            body,
        }
    })
    .await;
    let resp = get_ok(&service(&up.url("/")), "/bin").await;
    let t = resp.body_text();
    assert!(t.base64);
    let decoded = STANDARD.decode(&t.text).unwrap();
    assert_eq!(&decoded[..3], &[0xff, 0xfe, 0x00]);
    assert_clean(&decoded, "decoded body");
    assert_clean(t.text.as_bytes(), "base64 body");
}

// ---------------------------------------------------------------------------------
// Streaming scrubber properties.

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, .. ProptestConfig::default() })]

    #[test]
    fn streamed_secret_is_always_redacted(
        secret in proptest::collection::vec(any::<u8>(), 8..48),
        data in proptest::collection::vec(any::<u8>(), 0..2048),
        pos_frac in 0.0f64..=1.0,
        chunk_sizes in proptest::collection::vec(1usize..64, 1..32),
    ) {
        let scrubber = Scrubber::new([("s", secret.as_slice())]).unwrap();
        let pos = ((data.len() as f64) * pos_frac) as usize;
        let mut input = data[..pos].to_vec();
        input.extend_from_slice(&secret);
        input.extend_from_slice(&data[pos..]);

        let mut st = scrubber.stream();
        let mut out = Vec::new();
        let mut rest = &input[..];
        let mut i = 0;
        while !rest.is_empty() {
            let n = chunk_sizes[i % chunk_sizes.len()].min(rest.len());
            out.extend(st.push(&rest[..n]));
            rest = &rest[n..];
            i += 1;
        }
        out.extend(st.finish());

        prop_assert!(!contains(&out, &secret), "secret survived");
        prop_assert!(contains(&out, b"[REDACTED:s]"));
        prop_assert_eq!(&out, &scrubber.scrub(&input), "streaming differs from one-shot");
    }

    #[test]
    fn data_without_secrets_passes_byte_identical(
        secret in proptest::collection::vec(any::<u8>(), 8..48),
        data in proptest::collection::vec(any::<u8>(), 0..4096),
        chunk in 1usize..512,
    ) {
        let scrubber = Scrubber::new([("s", secret.as_slice())]).unwrap();
        prop_assume!(!scrubber.contains_secret(&data));
        let mut st = scrubber.stream();
        let mut out = Vec::new();
        for c in data.chunks(chunk) {
            out.extend(st.push(c));
        }
        out.extend(st.finish());
        prop_assert_eq!(out, data);
    }

    #[test]
    fn secrets_in_base64_text_are_redacted_at_any_alignment(
        secret in proptest::collection::vec(any::<u8>(), 12..40),
        before in proptest::collection::vec(any::<u8>(), 0..20),
        after in proptest::collection::vec(any::<u8>(), 0..20),
        url_safe in any::<bool>(),
        chunk in 1usize..16,
    ) {
        let scrubber = Scrubber::new([("s", secret.as_slice())]).unwrap();
        let mut raw = before.clone();
        raw.extend_from_slice(&secret);
        raw.extend_from_slice(&after);
        let text = if url_safe { URL_SAFE.encode(&raw) } else { STANDARD.encode(&raw) };
        let mut st = scrubber.stream();
        let mut out = Vec::new();
        for c in text.as_bytes().chunks(chunk) {
            out.extend(st.push(c));
        }
        out.extend(st.finish());
        prop_assert!(contains(&out, b"[REDACTED:s]"));
        // What remains decodes to nothing that contains the secret.
        for piece in out.split(|b| b"[]".contains(b)) {
            let s = String::from_utf8_lossy(piece);
            let cleaned: String = s.chars().filter(|c| c.is_ascii_alphanumeric() || "+/-_".contains(*c)).collect();
            for shift in 0..4 {
                if let Some(part) = cleaned.get(shift..) {
                    let dec = if url_safe { URL_SAFE_NO_PAD.decode(&part[..part.len() / 4 * 4]) } else { STANDARD_NO_PAD.decode(&part[..part.len() / 4 * 4]) };
                    if let Ok(d) = dec {
                        prop_assert!(!contains(&d, &secret));
                    }
                }
            }
        }
    }
}

// ---------------------------------------------------------------------------------
// Limits and error sources.

#[tokio::test]
async fn request_body_limit_is_the_agents_fault() {
    let up = Server::start(|_| ok("")).await;
    let e = engine_with(Limits {
        max_request_body: 16,
        ..Limits::default()
    });
    let req = UpstreamRequest::new(Method::POST, normalize("/v1").unwrap()).body(vec![b'x'; 17]);
    let err = send_err(&e, &service(&up.url("/")), &bearer(), req).await;
    assert_eq!(err.error_source(), ErrorSource::Agent);
    assert_eq!(err.http_status(), 413);
    up.assert_untouched();
    // At the limit it goes through.
    let req = UpstreamRequest::new(Method::POST, normalize("/v1").unwrap()).body(vec![b'x'; 16]);
    e.send(&service(&up.url("/")), &bearer(), req, &empty())
        .await
        .unwrap();
}

#[tokio::test]
async fn response_body_limit_is_the_upstreams_fault() {
    let big = Server::start(|_| Reply::Simple {
        status: 200,
        headers: vec![],
        body: vec![b'a'; 1000],
    })
    .await;
    let chunked = Server::start(|_| Reply::Chunked {
        headers: vec![],
        chunks: vec![vec![b'a'; 400]; 3],
        gap: Duration::ZERO,
    })
    .await;
    let e = engine_with(Limits {
        max_response_body: 999,
        ..Limits::default()
    });
    for up in [&big, &chunked] {
        let err = send_err(&e, &service(&up.url("/")), &bearer(), get("/")).await;
        assert!(
            matches!(
                err,
                EngineError::Upstream(UpstreamError::ResponseTooLarge { .. })
            ),
            "{err}"
        );
        assert_eq!(err.error_source(), ErrorSource::Upstream);
        assert_eq!(err.http_status(), 502);
        // Streaming: the same limit ends the stream with the same error.
        let resp = e
            .send_streaming(&service(&up.url("/")), &bearer(), get("/"), &empty())
            .await;
        let err = match resp {
            Err(err) => err,
            Ok(r) => r.body.collect().await.unwrap_err(),
        };
        assert!(
            matches!(
                err,
                EngineError::Upstream(UpstreamError::ResponseTooLarge { .. })
            ),
            "{err}"
        );
    }
    let e = engine_with(Limits {
        max_response_body: 1200,
        ..Limits::default()
    });
    let resp = e
        .send(&service(&chunked.url("/")), &bearer(), get("/"), &empty())
        .await
        .unwrap();
    assert_eq!(resp.body.len(), 1200);
}

#[tokio::test]
async fn timeouts_and_connect_failures_are_the_upstreams_fault() {
    let slow = Server::start(|_| Reply::Hang(Duration::from_secs(5))).await;
    let e = engine_with(Limits {
        timeout: Duration::from_millis(300),
        stream_idle_timeout: Duration::from_millis(300),
        ..Limits::default()
    });
    let started = std::time::Instant::now();
    let err = send_err(&e, &service(&slow.url("/")), &bearer(), get("/")).await;
    assert!(started.elapsed() < Duration::from_secs(3));
    assert!(
        matches!(err, EngineError::Upstream(UpstreamError::Timeout { .. })),
        "{err}"
    );
    assert_eq!(err.http_status(), 504);
    let err = e
        .send_streaming(&service(&slow.url("/")), &bearer(), get("/"), &empty())
        .await
        .unwrap_err();
    assert!(
        matches!(err, EngineError::Upstream(UpstreamError::Timeout { .. })),
        "{err}"
    );

    // A stream that goes quiet mid-body.
    let stalls = Server::start(|_| Reply::Chunked {
        headers: vec![],
        chunks: vec![b"data: 1\n\n".to_vec(), b"data: 2\n\n".to_vec()],
        gap: Duration::from_secs(5),
    })
    .await;
    let mut resp = e
        .send_streaming(&service(&stalls.url("/")), &bearer(), get("/"), &empty())
        .await
        .unwrap();
    assert_eq!(
        &resp.body.next_chunk().await.unwrap().unwrap()[..],
        b"data: 1\n\n"
    );
    let err = resp.body.next_chunk().await.unwrap().unwrap_err();
    assert!(
        matches!(err, EngineError::Upstream(UpstreamError::Timeout { .. })),
        "{err}"
    );

    // Nothing listening.
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap()
    };
    let err = e
        .send(
            &service(&format!("http://{closed}/")),
            &bearer(),
            get("/"),
            &empty(),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(err, EngineError::Upstream(UpstreamError::Connect { .. })),
        "{err}"
    );
    assert_eq!(err.http_status(), 502);
    assert!(!err.to_string().contains(SECRET));
}

#[tokio::test]
async fn compressed_responses_are_refused_not_passed_unscrubbed() {
    let up = Server::start(|_| Reply::Simple {
        status: 200,
        headers: vec![("Content-Encoding".into(), "gzip".into())],
        body: b"\x1f\x8b not really".to_vec(),
    })
    .await;
    let err = send_err(&engine(), &service(&up.url("/")), &bearer(), get("/")).await;
    assert!(
        matches!(
            err,
            EngineError::Upstream(UpstreamError::CompressedResponse { .. })
        ),
        "{err}"
    );
}

#[tokio::test]
async fn error_messages_never_contain_the_secret() {
    let up = Server::start(|_| ok("")).await;
    let e = engine();
    let svc = service(&up.url("/"));
    let errs = vec![
        e.send(
            &svc,
            &bearer(),
            get("/").header("X-A", format!("{SECRET}\r\n")),
            &empty(),
        )
        .await
        .unwrap_err(),
        e.send(&svc, &bearer(), get(&format!("/v1?x='{SECRET}'")), &empty())
            .await
            .unwrap_err(),
    ];
    for err in errs {
        assert!(!err.to_string().contains(SECRET), "{err}");
        assert!(!format!("{err:?}").contains(SECRET), "{err:?}");
    }
}

// ---------------------------------------------------------------------------------
// No proxy, whatever the environment says.
//
// The environment is process-wide (and `set_var` is unsafe, which the workspace
// forbids), so the request runs in a child process of this test binary with the
// proxy variables set; this process runs the upstream and the would-be proxy and
// checks who received what.

const CHILD_ENV: &str = "AIRLOCK_ENGINE_TEST_PROXY_CHILD";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn proxy_environment_is_ignored() {
    let up = Server::start(|_| ok("direct")).await;
    let proxy = Server::start(|_| ok("proxied")).await;
    let proxy_url = proxy.url("");
    let upstream_url = up.url("/");
    let exe = std::env::current_exe().unwrap();
    let status = tokio::task::spawn_blocking(move || {
        let mut cmd = std::process::Command::new(exe);
        cmd.args(["--exact", "proxy_child", "--ignored", "--test-threads=1"])
            .env(CHILD_ENV, &upstream_url)
            .env_remove("NO_PROXY")
            .env_remove("no_proxy");
        for var in [
            "HTTP_PROXY",
            "HTTPS_PROXY",
            "ALL_PROXY",
            "http_proxy",
            "https_proxy",
            "all_proxy",
        ] {
            cmd.env(var, &proxy_url);
        }
        cmd.stdout(std::process::Stdio::null()).status().unwrap()
    })
    .await
    .unwrap();
    assert!(status.success(), "child failed: {status}");

    let direct: Vec<_> = up.received().into_iter().map(|r| r.request_line).collect();
    let proxied: Vec<_> = proxy
        .received()
        .into_iter()
        .map(|r| r.request_line)
        .collect();
    // The engine's request went direct…
    assert_eq!(direct, vec!["GET /via-engine HTTP/1.1".to_string()]);
    assert!(
        proxied.iter().all(|l| !l.contains("via-engine")),
        "{proxied:?}"
    );
    // …while a default client in the same environment went through the proxy: the
    // test does detect a proxied request.
    assert_eq!(proxied.len(), 1, "{proxied:?}");
    assert!(proxied[0].contains("/control"), "{proxied:?}");
    assert!(proxy.received()[0].all("authorization").is_empty());
}

#[tokio::test]
#[ignore = "run by proxy_environment_is_ignored in a child process"]
async fn proxy_child() {
    let Ok(upstream) = std::env::var(CHILD_ENV) else {
        return;
    };
    let resp = get_ok(&service(&upstream), "/via-engine").await;
    assert_eq!(&resp.body[..], b"direct");
    // Control: a client that honours the environment reaches the proxy instead.
    let control = reqwest::Client::builder().build().unwrap();
    let body = control
        .get(format!("{upstream}control"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(body, "proxied");
}

// ---------------------------------------------------------------------------------
// The injector contract, with injectors shaped like the ones still to come.

/// Header + query auth with a token "minted" per request (like OAuth2 / GitHub App):
/// owns `X-Api-Key` and `api_key`, and emits the current token for scrubbing.
struct Minting {
    counter: AtomicUsize,
    current: Mutex<String>,
    owned: Vec<http::HeaderName>,
    params: Vec<String>,
    /// Misbehave: also set a `Host` header.
    set_host: Option<String>,
    /// Fail like a token endpoint would.
    fail: Option<airlock_inject::InjectError>,
}

impl Minting {
    fn new() -> Self {
        Minting {
            counter: AtomicUsize::new(0),
            current: Mutex::new(String::new()),
            owned: vec![http::HeaderName::from_static("x-api-key")],
            params: vec!["api_key".into()],
            set_host: None,
            fail: None,
        }
    }
}

impl Injector for Minting {
    fn kind(&self) -> &'static str {
        "test-minting"
    }
    fn owned_headers(&self) -> &[http::HeaderName] {
        &self.owned
    }
    fn owned_query_params(&self) -> &[String] {
        &self.params
    }
    fn visit_emitted_secrets(&self, visit: &mut dyn FnMut(&str, &[u8])) {
        let cur = self.current.lock().unwrap();
        if !cur.is_empty() {
            visit("minted", cur.as_bytes());
        }
    }
    fn inject<'a>(
        &'a self,
        req: &'a mut airlock_inject::OutgoingRequest,
    ) -> airlock_inject::BoxFuture<'a, Result<(), airlock_inject::InjectError>> {
        Box::pin(async move {
            tokio::task::yield_now().await; // asynchronous, like a token endpoint
            if let Some(e) = &self.fail {
                return Err(match e {
                    airlock_inject::InjectError::TokenEndpoint { .. } => {
                        airlock_inject::InjectError::TokenEndpoint {
                            secret: "minted".into(),
                            detail: "token endpoint answered 503".into(),
                        }
                    }
                    _ => airlock_inject::InjectError::Unsupported { auth: "x".into() },
                });
            }
            let n = self.counter.fetch_add(1, Ordering::SeqCst);
            let token = format!("mint{n}-Zq8wLx3vKp9rTy2u");
            let mut v = http::HeaderValue::from_str(&token).unwrap();
            v.set_sensitive(true);
            req.headers.insert("x-api-key", v);
            req.append_query_pair("api_key", token.as_bytes());
            if let Some(h) = &self.set_host {
                req.headers.insert(http::header::HOST, h.parse().unwrap());
            }
            *self.current.lock().unwrap() = token;
            Ok(())
        })
    }
}

#[tokio::test]
async fn owned_headers_and_query_params_are_the_injectors_and_minted_tokens_are_scrubbed() {
    // The upstream echoes the request line and the key header.
    let up = Server::start(|r| {
        ok(&format!(
            "{} key={}",
            r.request_line,
            r.one("x-api-key").unwrap_or("")
        ))
    })
    .await;
    let svc = service(&up.url("/"));
    let inj = Minting::new();
    let req = get("/v1/items?api_key=agent&x=1&api%5Fkey=agent2")
        .header("X-Api-Key", "agent-placeholder");
    let resp = engine().send(&svc, &inj, req, &empty()).await.unwrap();

    let got = &up.received()[0];
    let token = inj.current.lock().unwrap().clone();
    assert_eq!(got.all("x-api-key"), vec![token.as_str()]);
    assert_eq!(
        got.request_line,
        format!("GET /v1/items?x=1&api_key={token} HTTP/1.1")
    );
    assert!(got.all("authorization").is_empty());
    assert!(
        resp.removed_request_headers
            .contains(&"x-api-key".to_string())
    );
    assert!(
        resp.removed_request_headers
            .contains(&"query parameter api_key".to_string())
    );
    // The minted token, never known to the caller's scrubber, is redacted.
    let body = String::from_utf8(resp.body.to_vec()).unwrap();
    assert!(!body.contains(&token), "{body}");
    assert_eq!(
        body,
        "GET /v1/items?x=1&api_key=[REDACTED:minted] HTTP/1.1 key=[REDACTED:minted]"
    );
}

#[tokio::test]
async fn a_misbehaving_injector_cannot_redirect_the_request() {
    let foreign = Server::start(|_| ok("stolen")).await;
    let up = Server::start(|_| ok("")).await;
    let inj = Minting {
        set_host: Some(foreign.addr.to_string()),
        ..Minting::new()
    };
    let err = send_err(&engine(), &service(&up.url("/")), &inj, get("/v1")).await;
    assert_eq!(err.error_source(), ErrorSource::Internal, "{err}");
    assert_eq!(err.http_status(), 500);
    up.assert_untouched();
    foreign.assert_untouched();
}

#[tokio::test]
async fn injector_failures_know_their_source() {
    let up = Server::start(|_| ok("")).await;
    let svc = service(&up.url("/"));
    let endpoint_down = Minting {
        fail: Some(airlock_inject::InjectError::TokenEndpoint {
            secret: String::new(),
            detail: String::new(),
        }),
        ..Minting::new()
    };
    let err = send_err(&engine(), &svc, &endpoint_down, get("/")).await;
    assert_eq!(err.error_source(), ErrorSource::Upstream, "{err}");
    let broken = Minting {
        fail: Some(airlock_inject::InjectError::Unsupported {
            auth: String::new(),
        }),
        ..Minting::new()
    };
    let err = send_err(&engine(), &svc, &broken, get("/")).await;
    assert_eq!(err.error_source(), ErrorSource::Internal, "{err}");
    up.assert_untouched();
}

#[tokio::test]
async fn the_callers_scrubber_redacts_other_secrets_too() {
    // A response that leaks *another* vault secret is scrubbed with the caller's
    // scrubber (built from the whole vault), not only the injector's.
    let up = Server::start(|_| ok("github token: ghp_abcdefghijklmnopqrstuvwxyz0123456789")).await;
    let vault =
        Scrubber::new([("github", &b"ghp_abcdefghijklmnopqrstuvwxyz0123456789"[..])]).unwrap();
    let resp = engine()
        .send(&service(&up.url("/")), &bearer(), get("/"), &vault)
        .await
        .unwrap();
    assert_eq!(&resp.body[..], b"github token: [REDACTED:github]");
}

// Issue 14, items 4 and 6: encodings and transformed echoes.
#[path = "engine/ca_file.rs"]
mod ca_file;
#[path = "engine/transformed.rs"]
mod transformed;
// The survivors of mutation testing, killed (docs/testing.md, "Mutation testing").
#[path = "engine/mutants.rs"]
mod mutants;
#[path = "engine/views.rs"]
mod views;
