//! The dashboard's security checks, against the real server on a loopback port
//! with a real home (state files, audit log): Host (DNS rebinding), the one-time
//! login, the session cookie's attributes, CSRF, Origin, CSP, no CORS, agent
//! tokens refused, agent-controlled text escaped, actions audited as the owner.
#![allow(clippy::unwrap_used)]

use std::net::SocketAddr;
use std::sync::Arc;

use airlock_audit::{AuditLog, Event, Kind, Options};
use airlock_broker::state;
use airlock_home::Home;
use airlock_ui::Ui;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const KEY: [u8; 32] = [7; 32];

struct Reply {
    status: u16,
    head: String,
    body: String,
}

impl Reply {
    fn header(&self, name: &str) -> Option<String> {
        self.head.lines().find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case(name).then(|| v.trim().to_owned())
        })
    }
}

/// One HTTP/1.1 request on a new connection; `headers` are sent as given (no
/// Host is added: each test says which it sends).
async fn send(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> Reply {
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    let mut req = format!("{method} {path} HTTP/1.1\r\nConnection: close\r\n");
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    if !body.is_empty() || method == "POST" {
        req.push_str(&format!(
            "Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n",
            body.len()
        ));
    }
    req.push_str("\r\n");
    req.push_str(body);
    s.write_all(req.as_bytes()).await.unwrap();
    let mut buf = Vec::new();
    s.read_to_end(&mut buf).await.unwrap();
    let text = String::from_utf8_lossy(&buf).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    Reply {
        status,
        head: head.to_owned(),
        body: body.to_owned(),
    }
}

/// The value of the session cookie a login answer sets.
fn session_cookie(r: &Reply) -> String {
    let set = r.header("set-cookie").unwrap();
    set.split(';')
        .next()
        .unwrap()
        .strip_prefix("airlock_ui=")
        .unwrap()
        .to_owned()
}

/// What the stream `s` sends until it has sent `needle`, within `secs` seconds.
async fn read_until(s: &mut tokio::net::TcpStream, needle: &str, secs: u64) -> String {
    let mut got = Vec::new();
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(secs);
    while !String::from_utf8_lossy(&got).contains(needle) {
        let mut buf = [0u8; 65536];
        let n = tokio::time::timeout_at(deadline, s.read(&mut buf))
            .await
            .unwrap()
            .unwrap();
        assert!(n > 0);
        got.extend_from_slice(&buf[..n]);
    }
    String::from_utf8_lossy(&got).into_owned()
}

struct Dash {
    _dir: tempfile::TempDir,
    home: Home,
    addr: SocketAddr,
    host: String,
    origin: String,
    login: String,
}

impl Dash {
    async fn start() -> Dash {
        let dir = tempfile::tempdir().unwrap();
        let home = Home::at(dir.path().join("home"));
        home.ensure_dir().unwrap();
        let listener = airlock_ui::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let ui: Arc<Ui> = Ui::new(home.clone(), &KEY, addr.port()).unwrap();
        let url = ui.login_url(addr);
        let login = url.split_once("#token=").unwrap().1.to_owned();
        tokio::spawn(async move { airlock_ui::serve(&ui, listener, std::future::pending()).await });
        Dash {
            _dir: dir,
            home,
            addr,
            host: format!("127.0.0.1:{}", addr.port()),
            origin: format!("http://127.0.0.1:{}", addr.port()),
            login,
        }
    }

    async fn get(&self, path: &str, cookie: Option<&str>) -> Reply {
        let c = cookie
            .map(|c| format!("airlock_ui={c}"))
            .unwrap_or_default();
        let mut h = vec![("Host", self.host.as_str())];
        if cookie.is_some() {
            h.push(("Cookie", c.as_str()));
        }
        send(self.addr, "GET", path, &h, "").await
    }

    /// Logs in with the printed token; returns the session cookie's value.
    async fn login(&self) -> String {
        let r = self.post_login(Some(&self.origin), &self.login).await;
        assert_eq!(r.status, 204, "{}", r.body);
        session_cookie(&r)
    }

    /// POSTs the login form with `token`: our Host, and `origin` as the Origin.
    async fn post_login(&self, origin: Option<&str>, token: &str) -> Reply {
        let mut h = vec![("Host", self.host.as_str())];
        if let Some(o) = origin {
            h.push(("Origin", o));
        }
        send(self.addr, "POST", "/login", &h, &format!("token={token}")).await
    }

    async fn csrf(&self, cookie: &str) -> String {
        let page = self.get("/sessions", Some(cookie)).await;
        assert_eq!(page.status, 200);
        let at = page.body.find("name=\"csrf\" value=\"").unwrap() + 19;
        page.body[at..at + 64].to_owned()
    }

    async fn post(&self, path: &str, cookie: &str, origin: Option<&str>, body: &str) -> Reply {
        let c = format!("airlock_ui={cookie}");
        let mut h = vec![("Host", self.host.as_str()), ("Cookie", c.as_str())];
        if let Some(o) = origin {
            h.push(("Origin", o));
        }
        send(self.addr, "POST", path, &h, body).await
    }

    /// [`Dash::post`] from our own origin.
    async fn act(&self, path: &str, cookie: &str, body: &str) -> Reply {
        self.post(path, cookie, Some(&self.origin), body).await
    }

    /// Opens the live stream `/events?QUERY` with the session `cookie`.
    async fn events(&self, query: &str, cookie: &str) -> tokio::net::TcpStream {
        let mut s = tokio::net::TcpStream::connect(self.addr).await.unwrap();
        let req = format!(
            "GET /events?{query} HTTP/1.1\r\nHost: {}\r\nCookie: airlock_ui={cookie}\r\n\r\n",
            self.host
        );
        s.write_all(req.as_bytes()).await.unwrap();
        s
    }

    fn audit(&self) -> Vec<airlock_audit::Record> {
        airlock_audit::records(&self.home.audit_dir(), airlock_audit::Filter::all())
            .map(|r| r.flatten().collect())
            .unwrap_or_default()
    }
}

#[tokio::test]
async fn host_header_is_checked_before_anything() {
    let d = Dash::start().await;
    for host in [
        format!("evil.example:{}", d.addr.port()),
        format!("127.0.0.1.nip.io:{}", d.addr.port()),
        "127.0.0.1:1".to_owned(),
        "127.0.0.1".to_owned(),
    ] {
        let r = send(d.addr, "GET", "/login", &[("Host", &host)], "").await;
        assert_eq!(r.status, 421, "Host {host}");
        // Even the login exchange is refused under a rebinding name.
        let r = send(
            d.addr,
            "POST",
            "/login",
            &[("Host", &host), ("Origin", &format!("http://{host}"))],
            &format!("token={}", d.login),
        )
        .await;
        assert_eq!(r.status, 421, "login under Host {host}");
    }
    let r = send(d.addr, "GET", "/", &[], "").await;
    assert_eq!(r.status, 421, "no Host at all");
    // The real token still works afterwards: nothing above spent it.
    d.login().await;
    let r = send(
        d.addr,
        "GET",
        "/login",
        &[("Host", &format!("localhost:{}", d.addr.port()))],
        "",
    )
    .await;
    assert_eq!(r.status, 200);
}

#[tokio::test]
async fn login_is_one_time_and_sets_a_strict_httponly_cookie() {
    let d = Dash::start().await;
    // Pages need a session.
    assert_eq!(d.get("/", None).await.status, 401);
    assert_eq!(d.get("/", Some("guess")).await.status, 401);
    // A wrong token, or the right one without our Origin, is refused and spends nothing.
    let wrong = d.post_login(Some(&d.origin), "00").await;
    assert_eq!(wrong.status, 403);
    let no_origin = d.post_login(None, &d.login).await;
    assert_eq!(no_origin.status, 403);
    let cross = d.post_login(Some("http://evil.example"), &d.login).await;
    assert_eq!(cross.status, 403);
    let r = d.post_login(Some(&d.origin), &d.login).await;
    assert_eq!(r.status, 204);
    let set = r.header("set-cookie").unwrap();
    assert!(set.contains("HttpOnly"), "{set}");
    assert!(set.contains("SameSite=Strict"), "{set}");
    assert_eq!(d.get("/", Some(&session_cookie(&r))).await.status, 200);
    // Spent: the same link does not log in twice.
    let again = d.post_login(Some(&d.origin), &d.login).await;
    assert_eq!(again.status, 403);
    // The login is audited, the owner as actor.
    let recs = d.audit();
    let login = recs
        .iter()
        .find(|r| r.event.kind.as_str() == "ui_login")
        .unwrap();
    assert_eq!(login.event.agent.as_deref(), Some("owner"));
    assert_eq!(login.event.agent_trusted, Some(true));
}

#[tokio::test]
async fn every_answer_has_a_strict_csp_and_no_cors() {
    let d = Dash::start().await;
    let cookie = d.login().await;
    for path in [
        "/",
        "/approvals",
        "/sessions",
        "/config",
        "/exposures",
        "/login",
        "/static/app.js",
    ] {
        let r = d.get(path, Some(&cookie)).await;
        assert_eq!(r.status, 200, "{path}");
        let csp = r.header("content-security-policy").unwrap();
        assert!(
            csp.contains("default-src 'none'") && csp.contains("script-src 'self'"),
            "{path}: {csp}"
        );
        assert!(!csp.contains("unsafe-inline") && !csp.contains("unsafe-eval"));
        assert!(csp.contains("frame-ancestors 'none'"));
        assert_eq!(
            r.header("x-content-type-options").as_deref(),
            Some("nosniff")
        );
        assert!(
            !r.head.to_ascii_lowercase().contains("access-control-"),
            "{path}"
        );
        // No inline script anywhere: every <script> has a src.
        assert!(!r.body.contains("<script>"), "{path}");
    }
    // A CORS preflight is not answered as one.
    let pre = send(
        d.addr,
        "OPTIONS",
        "/lock",
        &[
            ("Host", &d.host),
            ("Origin", "http://evil.example"),
            ("Access-Control-Request-Method", "POST"),
        ],
        "",
    )
    .await;
    assert_eq!(pre.status, 405);
    assert!(!pre.head.to_ascii_lowercase().contains("access-control-"));
}

#[tokio::test]
async fn state_changes_need_csrf_and_our_origin() {
    let d = Dash::start().await;
    let cookie = d.login().await;
    let csrf = d.csrf(&cookie).await;
    let other = "0".repeat(64);
    // A cross-origin form post (a page elsewhere posting to us), one without
    // Origin, one without or with another CSRF token: all refused, nothing locked.
    let cases = [
        (
            Some("http://evil.example"),
            format!("csrf={csrf}&confirm=yes"),
        ),
        (Some("null"), format!("csrf={csrf}&confirm=yes")),
        (None, format!("csrf={csrf}&confirm=yes")),
        (Some(d.origin.as_str()), "confirm=yes".to_owned()),
        (Some(d.origin.as_str()), format!("csrf={other}&confirm=yes")),
    ];
    for (origin, body) in &cases {
        let r = d.post("/lock", &cookie, *origin, body).await;
        assert_eq!(r.status, 403, "origin {origin:?} body {body}");
        assert!(!state::is_locked(&d.home), "locked by {origin:?} {body}");
    }
    // Without a session, the CSRF token alone does nothing.
    let r = d
        .act("/lock", "nope", &format!("csrf={csrf}&confirm=yes"))
        .await;
    assert_eq!(r.status, 401);
    // Unconfirmed: asked to confirm, nothing done.
    let r = d.act("/lock", &cookie, &format!("csrf={csrf}")).await;
    assert_eq!(r.status, 400);
    assert!(!state::is_locked(&d.home));
    // The real thing locks, and unlocks; both audited as the owner.
    let r = d
        .act("/lock", &cookie, &format!("csrf={csrf}&confirm=yes"))
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(state::is_locked(&d.home));
    let r = d
        .act("/unlock", &cookie, &format!("csrf={csrf}&confirm=yes"))
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(!state::is_locked(&d.home));
    let recs = d.audit();
    for kind in [Kind::Lock, Kind::Unlock] {
        let r = recs.iter().find(|r| r.event.kind == kind).unwrap();
        assert_eq!(r.event.agent.as_deref(), Some("owner"));
        assert!(
            r.event
                .detail
                .as_deref()
                .unwrap()
                .contains("via the dashboard")
        );
    }
    // The chain the dashboard appended to verifies.
    assert!(airlock_audit::verify_home(&d.home, &KEY).unwrap().is_ok());
}

#[tokio::test]
async fn revoking_a_session_from_the_page() {
    let d = Dash::start().await;
    let now = jiff::Timestamp::now();
    state::record_session(
        &d.home,
        state::SessionRecord {
            id: "s-0123456789ab".into(),
            grant: "g".into(),
            agent: "bot".into(),
            capability: "cap".into(),
            started: now,
            expires: now + jiff::SignedDuration::from_hours(1),
            pid: 1,
        },
    )
    .unwrap();
    let cookie = d.login().await;
    let page = d.get("/sessions", Some(&cookie)).await;
    assert!(page.body.contains("s-0123456789ab"));
    let csrf = d.csrf(&cookie).await;
    let r = d
        .act(
            "/sessions/revoke",
            &cookie,
            &format!("csrf={csrf}&session=s-0123456789ab"),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(
        state::revocations(&d.home)
            .unwrap()
            .sessions
            .contains("s-0123456789ab")
    );
    let rev = d
        .audit()
        .into_iter()
        .find(|r| r.event.kind == Kind::Revoke)
        .unwrap();
    assert_eq!(rev.event.agent.as_deref(), Some("owner"));
    // An answer with no hash is refused before any server is asked.
    let r = d
        .act(
            "/approvals/answer",
            &cookie,
            &format!("csrf={csrf}&id=ap-1&approve=1"),
        )
        .await;
    assert_eq!(r.status, 400);
}

#[tokio::test]
async fn agent_tokens_never_open_the_dashboard() {
    let d = Dash::start().await;
    let (token, _) = {
        let _l = d.home.lock().unwrap();
        airlock_broker::tokens::issue(&d.home, "bot", &[], std::time::Duration::from_secs(3600))
            .unwrap()
    };
    let bearer = format!("Bearer {}", token.as_str());
    for (k, v) in [
        ("Authorization", bearer.as_str()),
        ("x-api-key", token.as_str()),
        ("Cookie", &format!("airlock_ui={}", token.as_str())),
    ] {
        let r = send(d.addr, "GET", "/", &[("Host", &d.host), (k, v)], "").await;
        assert_eq!(r.status, 401, "{k}");
    }
    let r = d.post_login(Some(&d.origin), token.as_str()).await;
    assert_eq!(r.status, 403);
}

#[tokio::test]
async fn agent_controlled_text_is_escaped_in_every_view() {
    let d = Dash::start().await;
    let hostile = "<script>alert(1)</script>\u{1b}[2J";
    {
        let mut log = AuditLog::open_home(&d.home, &KEY, Options::default()).unwrap();
        log.append(
            &Event::request("cap", "GET", "/v1/<img src=x onerror=alert(2)>")
                .agent(hostile, false)
                .reason("\"><svg onload=alert(3)>")
                .decision(airlock_audit::Decision::Deny),
        )
        .unwrap();
    }
    let cookie = d.login().await;
    for path in ["/", "/record/1", "/?agent=%3Cscript%3E"] {
        let r = d.get(path, Some(&cookie)).await;
        assert_eq!(r.status, 200, "{path}");
        assert!(!r.body.contains("<script>alert"), "{path}");
        assert!(!r.body.contains("<img src=x"), "{path}");
        assert!(!r.body.contains("<svg onload"), "{path}");
        assert!(!r.body.contains('\u{1b}'), "{path}");
    }
    let r = d.get("/", Some(&cookie)).await;
    assert!(
        r.body
            .contains("&lt;script&gt;alert(1)&lt;/script&gt;\\u{1b}[2J?")
    );
    let r = d.get("/record/1", Some(&cookie)).await;
    assert!(r.body.contains("&lt;img src=x onerror=alert(2)&gt;"));
}

#[tokio::test]
async fn the_live_stream_sends_new_records() {
    let d = Dash::start().await;
    let cookie = d.login().await;
    let mut s = d.events("after=0&decision=deny", &cookie).await;
    {
        let mut log = AuditLog::open_home(&d.home, &KEY, Options::default()).unwrap();
        log.append(
            &Event::request("cap", "GET", "/allowed").decision(airlock_audit::Decision::Allow),
        )
        .unwrap();
        log.append(
            &Event::request("cap", "GET", "/refused").decision(airlock_audit::Decision::Deny),
        )
        .unwrap();
    }
    let text = read_until(&mut s, "/refused", 5).await;
    assert!(text.contains("text/event-stream"));
    // The filter applies to the stream: the allowed record is not sent.
    assert!(!text.contains("/allowed"), "{text}");
}

/// A burst larger than the page keeps (500 rows) costs the server only the
/// newest 500 of the interval: the stream skips the older ones (issue 17: an
/// open dashboard stays cheap at any request rate).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_live_stream_sends_at_most_the_newest_500_of_a_burst() {
    let d = Dash::start().await;
    let cookie = d.login().await;
    {
        let mut log = AuditLog::open_home(&d.home, &KEY, Options::default()).unwrap();
        for i in 0..1200 {
            log.append(&Event::request("cap", "GET", &format!("/burst/{i}")))
                .unwrap();
        }
    }
    let mut s = d.events("after=0", &cookie).await;
    let text = read_until(&mut s, "/burst/1199\"", 10).await;
    let sent = text.matches("data: ").count();
    assert_eq!(sent, 500, "{sent} events sent for a burst of 1,200");
    assert!(text.contains("/burst/700\""), "the newest 500 start at 700");
    assert!(!text.contains("/burst/699\""), "an older record was sent");
}
