//! `airlock ui`: the owner's local dashboard (docs/ui.md).
//!
//! Server-rendered HTML with a little plain JavaScript (`assets/app.js`: the
//! login exchange, the live view's event stream, the approvals list's refresh),
//! every asset embedded in the binary. Pages: live activity (the audit log as it
//! is written, over server-sent events), approvals (answered through the same
//! control-socket `answer` that `airlock approve` sends, bound to the request
//! hash the page showed), sessions and tokens (revoke), the emergency lock,
//! the configuration (read-only) and exposures (a scan run from the page, kept
//! in memory only).
//!
//! Security (see [`guard`]): loopback by default, `Host` checked, a one-time
//! login token exchanged for an `HttpOnly`, `SameSite=Strict` cookie, a CSRF
//! token and a matching `Origin` on every state change, a strict
//! Content-Security-Policy, no CORS, every action audited with the owner as
//! actor. The dashboard never holds a secret value: it reads names, rules,
//! metadata and audit records, and holds only the audit key (to record the
//! owner's actions).
#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod actions;
pub mod guard;
pub mod html;
mod live;
mod pages;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use airlock_home::Home;
use axum::body::Body;
use axum::response::{IntoResponse, Response};
use http::{HeaderValue, Method, Request, StatusCode, header};
use zeroize::Zeroizing;

use guard::{Logins, Refusal};
pub use pages::{pending_approvals, token_status};

/// The Content-Security-Policy on every answer: our own script and style only,
/// no inline code, no framing, forms post only to us.
pub const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// Largest form body accepted (bytes).
const MAX_FORM: usize = 64 * 1024;

/// The dashboard: its home, the audit key it records the owner's actions with,
/// the port `Host` must name, and its logins.
pub struct Ui {
    home: Home,
    audit_key: Zeroizing<[u8; 32]>,
    port: u16,
    logins: Logins,
    login_token: Zeroizing<String>,
    exposures: Mutex<Option<pages::Exposures>>,
}

impl std::fmt::Debug for Ui {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ui")
            .field("home", &self.home.root())
            .field("port", &self.port)
            .finish_non_exhaustive()
    }
}

/// Why the dashboard could not start.
#[derive(Debug, thiserror::Error)]
pub enum UiError {
    /// The address could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address asked for.
        addr: String,
        /// Why.
        source: std::io::Error,
    },
    /// The system's random source failed.
    #[error("no randomness for the login token: {0}")]
    Random(String),
}

impl Ui {
    /// A dashboard for `home` on `port`; `audit_key` (from the opened vault)
    /// signs the records of the owner's actions.
    pub fn new(home: Home, audit_key: &[u8; 32], port: u16) -> Result<Arc<Ui>, UiError> {
        let (logins, login_token) = Logins::new().map_err(|e| UiError::Random(e.to_string()))?;
        Ok(Arc::new(Ui {
            home,
            audit_key: Zeroizing::new(*audit_key),
            port,
            logins,
            login_token,
            exposures: Mutex::new(None),
        }))
    }

    /// The one-time login URL for the bound address: the token rides in the
    /// fragment, which the browser never sends.
    pub fn login_url(&self, addr: SocketAddr) -> String {
        let host = match addr.ip() {
            ip if ip.is_unspecified() => format!("127.0.0.1:{}", addr.port()),
            _ => addr.to_string(),
        };
        format!("http://{host}/login#token={}", self.login_token.as_str())
    }

    /// The axum app: one handler, so no route can skip the checks.
    pub fn router(self: &Arc<Self>) -> axum::Router {
        let ui = self.clone();
        axum::Router::new().fallback(move |req: Request<Body>| {
            let ui = ui.clone();
            async move { with_headers(ui.handle(req).await) }
        })
    }

    async fn handle(self: Arc<Self>, req: Request<Body>) -> Response {
        let header_str = |h: &http::HeaderMap, name: header::HeaderName| {
            h.get(name).and_then(|v| v.to_str().ok()).map(str::to_owned)
        };
        let host = header_str(req.headers(), header::HOST);
        let origin_header = header_str(req.headers(), header::ORIGIN);
        let cookie = header_str(req.headers(), header::COOKIE);
        let origin = match guard::check_host(host.as_deref(), self.port) {
            Ok(o) => o,
            Err(r) => return refuse(&r),
        };
        let session_id = cookie
            .as_deref()
            .and_then(|c| guard::cookie(c, guard::COOKIE))
            .map(str::to_owned);
        let method = req.method().clone();
        let path = req.uri().path().to_owned();
        let query = req.uri().query().unwrap_or("").to_owned();
        let params: Vec<(String, String)> = url::form_urlencoded::parse(query.as_bytes())
            .into_owned()
            .collect();

        // No preflight, no CORS: anything but GET and POST is refused.
        if method != Method::GET && method != Method::POST {
            return (StatusCode::METHOD_NOT_ALLOWED, "GET and POST only").into_response();
        }
        // Assets and the login page need no session.
        if method == Method::GET {
            match path.as_str() {
                "/static/app.js" => {
                    return asset(
                        "text/javascript; charset=utf-8",
                        include_str!("../assets/app.js"),
                    );
                }
                "/static/app.css" => {
                    return asset("text/css; charset=utf-8", include_str!("../assets/app.css"));
                }
                "/login" => return pages::login_page(),
                _ => {}
            }
        }
        if method == Method::POST {
            if let Err(r) = guard::check_origin(origin_header.as_deref(), &origin) {
                return refuse(&r);
            }
            let form = match axum::body::to_bytes(req.into_body(), MAX_FORM).await {
                Ok(b) => Form::parse(&b),
                Err(_) => return (StatusCode::PAYLOAD_TOO_LARGE, "form too large").into_response(),
            };
            if path == "/login" {
                return self.login(form.get("token").unwrap_or(""));
            }
            let csrf = match self.logins.session(session_id.as_deref()) {
                Ok(c) => c,
                Err(r) => return refuse(&r),
            };
            if !guard::same(form.get("csrf").unwrap_or(""), &csrf) {
                return refuse(&Refusal::Csrf);
            }
            return actions::dispatch(&self, &path, &form, &csrf, session_id.as_deref()).await;
        }
        let csrf = match self.logins.session(session_id.as_deref()) {
            Ok(c) => c,
            Err(r) => return refuse(&r),
        };
        let q = Form(params);
        match path.as_str() {
            "/" => pages::live(&self, &q, &csrf).await,
            "/events" => live::events(&self, &q),
            "/approvals" => pages::approvals(&self, &q, &csrf).await,
            "/sessions" => pages::sessions(&self, &csrf).await,
            "/config" => pages::config(&self, &csrf),
            "/exposures" => pages::exposures(&self, &csrf),
            "/lock" => pages::confirm_lock(&self, &csrf, true),
            "/unlock" => pages::confirm_lock(&self, &csrf, false),
            p => match p
                .strip_prefix("/record/")
                .and_then(|s| s.parse::<u64>().ok())
            {
                Some(seq) => pages::record(&self, seq, &csrf).await,
                None => (StatusCode::NOT_FOUND, "no such page").into_response(),
            },
        }
    }

    fn login(&self, token: &str) -> Response {
        match self.logins.exchange(token) {
            Ok((id, _csrf)) => {
                actions::audit(
                    self,
                    actions::Action::Login,
                    "owner logged in to the dashboard",
                );
                let cookie = format!(
                    "{}={id}; HttpOnly; SameSite=Strict; Path=/; Max-Age={}",
                    guard::COOKIE,
                    guard::SESSION_TTL.as_secs()
                );
                let mut r = StatusCode::NO_CONTENT.into_response();
                if let Ok(v) = HeaderValue::from_str(&cookie) {
                    r.headers_mut().insert(header::SET_COOKIE, v);
                }
                r
            }
            Err(r) => refuse(&r),
        }
    }
}

/// A parsed `application/x-www-form-urlencoded` body or query.
#[derive(Debug, Default)]
pub(crate) struct Form(Vec<(String, String)>);

impl Form {
    fn parse(body: &[u8]) -> Form {
        Form(url::form_urlencoded::parse(body).into_owned().collect())
    }
    /// The first value of `name`.
    pub(crate) fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
    /// The first value of `name`, when not empty.
    pub(crate) fn nonempty(&self, name: &str) -> Option<&str> {
        self.get(name).filter(|v| !v.is_empty())
    }
}

fn refuse(r: &Refusal) -> Response {
    let (status, text) = r.explain();
    (status, text).into_response()
}

fn asset(kind: &'static str, text: &'static str) -> Response {
    ([(header::CONTENT_TYPE, kind)], text).into_response()
}

/// An HTML answer.
pub(crate) fn html(body: String) -> Response {
    ([(header::CONTENT_TYPE, "text/html; charset=utf-8")], body).into_response()
}

/// The headers every answer carries: CSP, no sniffing, no framing, referrers to
/// ourselves only (`no-referrer` would make Chromium send `Origin: null` on our
/// own form posts),
/// no caching. No `Access-Control-*` header is ever set.
fn with_headers(mut r: Response) -> Response {
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(
        "cross-origin-opener-policy",
        HeaderValue::from_static("same-origin"),
    );
    h.insert(
        "cross-origin-resource-policy",
        HeaderValue::from_static("same-origin"),
    );
    if !h.contains_key(header::CONTENT_TYPE) {
        h.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; charset=utf-8"),
        );
    }
    r
}

/// Serves the dashboard on `listener` until `shutdown` resolves, with the limits
/// every airlock HTTP door has (airlock_gateway::listen).
pub async fn serve(
    ui: &Arc<Ui>,
    listener: tokio::net::TcpListener,
    shutdown: impl std::future::Future<Output = ()>,
) {
    airlock_gateway::listen::serve(
        listener,
        ui.router(),
        airlock_gateway::listen::Options::default(),
        shutdown,
    )
    .await;
}

/// Binds `addr` for the dashboard.
pub async fn bind(addr: &str) -> Result<tokio::net::TcpListener, UiError> {
    tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|source| UiError::Bind {
            addr: addr.to_owned(),
            source,
        })
}
