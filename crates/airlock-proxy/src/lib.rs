//! airlock's egress proxy (DESIGN.md §1 "proxy", docs/proxy.md): an HTTP proxy on
//! loopback for clients whose base URL cannot be changed (`gh`, `git`, curl
//! scripts, cloud CLIs). A client sets `HTTPS_PROXY`, trusts the session CA, and
//! talks to the real API's host name; airlock terminates TLS with a leaf
//! certificate for that host, and every request inside goes through the same
//! request path as MCP `execute` and the HTTP gateway
//! ([`airlock_gateway::forward`] → `Runtime::execute_streaming`): normalization,
//! policy, rate, reason, approval, write-ahead audit, injection, scrubbing.
//!
//! - **Authentication first.** Every proxy request carries the agent token in
//!   `Proxy-Authorization` (`Basic` with the token as password — what
//!   `HTTPS_PROXY=http://USER:TOKEN@HOST:PORT` sends — or `Bearer`); without a
//!   valid one the answer is `407` and nothing else happens. The token is checked
//!   again for every request inside a tunnel, so a revocation stops a tunnel
//!   that is already open at its next request.
//! - **Routing by host.** `CONNECT host:port` is accepted only when an `https`
//!   service names that origin and the agent may use exactly one of its
//!   capabilities (the proxy user name picks one when there are several; the
//!   user name `airlock`, or none, picks none). Any other host is refused (`403`,
//!   audited): airlock connects only to origins its services name, so private
//!   and metadata addresses are never reached unless a service names them.
//!   Absolute-form `http://` requests go through the same checks against `http`
//!   services.
//! - **Inside the tunnel.** The TLS client hello's server name must be the
//!   CONNECT host, and each request's `Host` (or `:authority`) must name it too
//!   (`421` otherwise); the path must lie under the service's base path. HTTP/1.1
//!   and HTTP/2 are offered by ALPN.
//! - **A run's proxy.** `airlock run --proxy` starts one for its child alone
//!   ([`Proxy::for_run`]): it accepts only that run's session token, routes to
//!   the run's capabilities (exec ones included: the owner's caller), and checks
//!   every request it can read for the run's [placeholders](placeholder). One
//!   seen off its surface or origin trips the wire: refused, audited, the run's
//!   sessions revoked, every later request refused.

#![forbid(unsafe_code)]
#![deny(missing_docs)]
#![cfg_attr(test, allow(clippy::unwrap_used))]

pub mod ca;
pub mod egress;
pub mod placeholder;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use airlock_broker::{Broker, Caller, Runtime};
use airlock_gateway::{error, refuse};
use axum::body::Body;
use axum::extract::{Request, State};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use http::{HeaderValue, Method, StatusCode, header};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use rustls::ServerConfig;
use rustls::server::{Acceptor, ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;

pub use ca::SessionCa;
pub use placeholder::{Placeholders, Trip};

/// The proxy user name that picks no capability (`http://airlock:TOKEN@…`).
pub const NO_CAPABILITY_USER: &str = "airlock";

/// How many CONNECT tunnels may be open at once; past it, CONNECT gets `503`.
/// (Tunnels leave the HTTP doors' shared connection cap once answered.)
pub const MAX_TUNNELS: usize = 256;

/// How long a client has, after the CONNECT is answered, to complete its TLS
/// handshake (a tunnel that never speaks is closed).
pub const HANDSHAKE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// Errors starting the proxy.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ProxyError {
    /// The session CA or a leaf certificate could not be made.
    #[error("egress proxy certificate authority: {0}")]
    Ca(String),
    /// The address could not be bound.
    #[error("cannot listen on {addr}: {detail}; pick another address with --listen HOST:PORT")]
    Bind {
        /// The address asked for.
        addr: String,
        /// Why.
        detail: String,
    },
}

/// The egress proxy: the runtime every request goes through, and the session CA.
pub struct Proxy {
    runtime: Arc<Runtime>,
    ca: SessionCa,
    tls: Mutex<HashMap<String, Arc<ServerConfig>>>,
    tunnels: Arc<tokio::sync::Semaphore>,
    /// `Some` for a proxy of sessions (a run's, the exec children's): it
    /// takes only their tokens, never an agent token.
    sessions: Option<Mutex<HashMap<String, Arc<Session>>>>,
}

/// One session of a proxy of sessions: a run, or one exec child.
struct Session {
    caller: Caller,
    placeholders: Placeholders,
    /// Set by the trip wire: from then on every request is refused.
    tripped: AtomicBool,
    /// Tells the owner (a run prints it on its terminal).
    on_trip: Box<dyn Fn(&str) + Send + Sync>,
}

/// Every session token starts with this.
pub const RUN_TOKEN_PREFIX: &str = "airlock_run_";

/// A fresh session token.
fn session_token() -> Result<String, ProxyError> {
    let mut random = [0u8; 32];
    getrandom::fill(&mut random).map_err(|e| ProxyError::Ca(format!("randomness: {e}")))?;
    Ok(format!("{RUN_TOKEN_PREFIX}{}", hex::encode(random)))
}

impl std::fmt::Debug for Proxy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Proxy").finish_non_exhaustive()
    }
}

impl Proxy {
    /// A proxy over `runtime` with a new session CA, for agent tokens.
    pub fn new(runtime: Arc<Runtime>) -> Result<Arc<Proxy>, ProxyError> {
        Self::build(runtime, None)
    }

    fn build(
        runtime: Arc<Runtime>,
        sessions: Option<Mutex<HashMap<String, Arc<Session>>>>,
    ) -> Result<Arc<Proxy>, ProxyError> {
        Ok(Arc::new(Proxy {
            runtime,
            ca: SessionCa::new()?,
            tls: Mutex::new(HashMap::new()),
            tunnels: Arc::new(tokio::sync::Semaphore::new(MAX_TUNNELS)),
            sessions,
        }))
    }

    /// A proxy of sessions: it takes only the tokens [`Proxy::add_session`]
    /// returns.
    pub fn for_sessions(runtime: Arc<Runtime>) -> Result<Arc<Proxy>, ProxyError> {
        Self::build(runtime, Some(Mutex::new(HashMap::new())))
    }

    /// The proxy of one `airlock run --proxy`: it accepts only the session token
    /// it returns (random, never stored), on behalf of `caller`, and watches
    /// for `placeholders`; `on_trip` is told, once, when one trips the wire.
    pub fn for_run(
        runtime: Arc<Runtime>,
        caller: Caller,
        placeholders: Placeholders,
        on_trip: Box<dyn Fn(&str) + Send + Sync>,
    ) -> Result<(Arc<Proxy>, String), ProxyError> {
        let proxy = Self::for_sessions(runtime)?;
        let token = proxy.add_session(caller, placeholders, on_trip)?;
        Ok((proxy, token))
    }

    /// Opens a session on a proxy of sessions: requests with the returned token
    /// act as `caller` and are watched for `placeholders`. (On an agent-token
    /// proxy the session is never used.)
    pub fn add_session(
        &self,
        caller: Caller,
        placeholders: Placeholders,
        on_trip: Box<dyn Fn(&str) + Send + Sync>,
    ) -> Result<String, ProxyError> {
        let token = session_token()?;
        if let Some(sessions) = &self.sessions {
            let session = Arc::new(Session {
                caller,
                placeholders,
                tripped: AtomicBool::new(false),
                on_trip,
            });
            sessions
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .insert(token.clone(), session);
        }
        Ok(token)
    }

    /// Ends a session: its token is refused from now on.
    pub fn end_session(&self, token: &str) {
        if let Some(sessions) = &self.sessions {
            sessions
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .remove(token);
        }
    }

    /// Every open session.
    fn all_sessions(&self) -> Vec<Arc<Session>> {
        self.sessions.as_ref().map_or_else(Vec::new, |s| {
            s.lock()
                .unwrap_or_else(PoisonError::into_inner)
                .values()
                .cloned()
                .collect()
        })
    }

    /// The session CA (its certificate goes to the clients).
    pub fn ca(&self) -> &SessionCa {
        &self.ca
    }

    /// A place among the [`MAX_TUNNELS`] open tunnels, or the `503` when
    /// there is none.
    fn tunnel_slot(&self) -> Result<tokio::sync::OwnedSemaphorePermit, Box<Response>> {
        self.tunnels.clone().try_acquire_owned().map_err(|_| {
            let msg = format!("{MAX_TUNNELS} tunnels are open; try again when one closes");
            Box::new(error(
                StatusCode::SERVICE_UNAVAILABLE,
                "overloaded_error",
                &msg,
            ))
        })
    }

    /// Whether a placeholder has tripped the wire in any session.
    pub fn tripped(&self) -> bool {
        self.all_sessions()
            .iter()
            .any(|s| s.tripped.load(Ordering::SeqCst))
    }

    /// The caller a token stands for: on a proxy of sessions, one of its
    /// sessions' tokens (and only those); else an agent token. Or the answer
    /// refusing it.
    /// A refusal of a tripped session's request is audited (`method`,
    /// `target`).
    async fn authenticate(
        &self,
        token: &str,
        method: &str,
        target: &str,
    ) -> Result<Caller, Response> {
        let Some(sessions) = &self.sessions else {
            return airlock_gateway::authenticate(&self.runtime, token).await;
        };
        let session = sessions
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(token)
            .cloned();
        let Some(session) = session else {
            return Err(proxy_auth_required(
                "not a session token of this proxy: it serves only the programs airlock started with it (`airlock run --proxy`, exec capabilities with inject = \"placeholder\")",
            ));
        };
        if session.tripped.load(Ordering::SeqCst) {
            let msg =
                "this session was revoked by the placeholder trip wire; nothing more goes through";
            let (status, kind) = (StatusCode::FORBIDDEN, "permission_error");
            let caller = Some(&session.caller);
            let runtime = &self.runtime;
            return Err(refuse(runtime, caller, None, method, target, status, kind, msg).await);
        }
        Ok(session.caller.clone())
    }

    /// Runs `check` on every open session's placeholders (a placeholder names
    /// its session); on a trip, revokes that session and returns the refusal's
    /// message and the session's caller.
    fn check_sessions(
        &self,
        check: impl Fn(&Placeholders) -> Result<(), Trip>,
    ) -> Result<(), (String, Box<Caller>)> {
        for session in self.all_sessions() {
            if let Err(trip) = check(&session.placeholders) {
                return Err((self.trip(&session, &trip), Box::new(session.caller.clone())));
            }
        }
        Ok(())
    }

    /// Trips the wire: every later request of the session is refused, the
    /// sessions of its grant are revoked (here and in the state files `airlock
    /// sessions` reads), and the owner is told. Returns the message the
    /// refusal is audited with.
    fn trip(&self, session: &Session, trip: &Trip) -> String {
        let first = !session.tripped.swap(true, Ordering::SeqCst);
        let grant = session.caller.grant.as_str().to_string();
        let sessions = self.runtime.broker().sessions();
        let ids: Vec<String> = sessions
            .list()
            .into_iter()
            .filter(|s| s.grant == grant)
            .map(|s| s.id.as_str().to_string())
            .collect();
        sessions.revoke_where(|s| s.grant == grant);
        for id in ids {
            let target = airlock_broker::state::RevokeTarget::Session(id);
            // A session not yet in the state files has nothing to revoke there.
            let _ = airlock_broker::state::revoke(self.runtime.home(), &target);
        }
        let msg = format!(
            "placeholder trip wire: {trip}; the session is revoked and every further request refused"
        );
        if first {
            (session.on_trip)(&msg);
        }
        msg
    }

    /// The TLS configuration presenting the leaf for `host` (cached per host).
    fn tls_config(&self, host: &str) -> Result<Arc<ServerConfig>, ProxyError> {
        let mut tls = self.tls.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(c) = tls.get(host) {
            return Ok(c.clone());
        }
        let leaf = self.ca.leaf(host)?;
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let mut config = ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| ProxyError::Ca(e.to_string()))?
            .with_no_client_auth()
            .with_cert_resolver(Arc::new(Fixed(leaf)));
        config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        let config = Arc::new(config);
        tls.insert(host.to_string(), config.clone());
        Ok(config)
    }
}

/// Always the same leaf: one configuration per host.
#[derive(Debug)]
struct Fixed(Arc<CertifiedKey>);

impl ResolvesServerCert for Fixed {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.0.clone())
    }
}

/// Serves the proxy on `addr` until the process stops (through the doors'
/// listener: header-read timeout, shared connection cap); `ready` gets the bound
/// address (useful with port 0).
pub async fn serve_proxy(
    proxy: Arc<Proxy>,
    addr: &str,
    ready: impl FnOnce(SocketAddr),
) -> Result<(), ProxyError> {
    let app = axum::Router::new().fallback(handle).with_state(proxy);
    let served = airlock_gateway::listen::serve_on(addr, app, ready).await;
    served.map_err(|e| ProxyError::Bind {
        addr: addr.to_string(),
        detail: e.to_string(),
    })
}

/// The 407 every unauthenticated proxy request gets.
fn proxy_auth_required(message: &str) -> Response {
    let mut r = error(
        StatusCode::PROXY_AUTHENTICATION_REQUIRED,
        "authentication_error",
        message,
    );
    r.headers_mut().insert(
        header::PROXY_AUTHENTICATE,
        HeaderValue::from_static("Basic realm=\"airlock\""),
    );
    r
}

/// The user name (a capability, or none) and the token of a
/// `Proxy-Authorization` header.
fn proxy_credentials(req: &Request) -> Option<(Option<String>, String)> {
    let v = req
        .headers()
        .get(header::PROXY_AUTHORIZATION)?
        .to_str()
        .ok()?
        .trim();
    let (scheme, rest) = v.split_once(' ')?;
    if scheme.eq_ignore_ascii_case("bearer") {
        return Some((None, rest.trim().to_string()));
    }
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(rest.trim())
        .ok()?;
    let text = String::from_utf8(decoded).ok()?;
    let (user, token) = text.split_once(':')?;
    let user = (!user.is_empty() && user != NO_CAPABILITY_USER).then(|| user.to_string());
    Some((user, token.to_string()))
}

/// Where a proxied origin's requests go: a capability, and its service's base
/// path (no trailing `/`).
#[derive(Debug, Clone)]
struct Route {
    capability: String,
    base: String,
}

/// The capability for requests from `caller` to `scheme://host:port`, or why
/// there is none.
fn route(
    broker: &Broker,
    caller: &Caller,
    scheme: &str,
    host: &str,
    port: u16,
    wanted: Option<&str>,
) -> Result<Route, (StatusCode, String)> {
    let config = broker.config();
    let services: Vec<&airlock_config::Service> = config
        .services
        .values()
        .filter(|s| names(s, scheme, host, port))
        .collect();
    let shown = format!("{scheme}://{}:{port}", host.escape_debug());
    if services.is_empty() {
        return Err((
            StatusCode::FORBIDDEN,
            format!(
                "no service names {shown}: the egress proxy reaches only the origins of configured services (add one with `airlock add`)"
            ),
        ));
    }
    let mut caps: Vec<airlock_config::Capability> = broker
        .visible(caller)
        .into_iter()
        .filter(|c| {
            (c.mode == airlock_config::Mode::Http || caller.owner || caller.exec_child)
                && services.iter().any(|s| s.name == c.service)
        })
        .collect();
    caps.sort_by(|a, b| a.name.cmp(&b.name));
    if let Some(w) = wanted {
        caps.retain(|c| c.name == w);
        if caps.is_empty() {
            return Err((
                StatusCode::FORBIDDEN,
                format!(
                    "capability \"{}\" (the proxy user name) is not one this agent may use for {shown}",
                    w.escape_debug()
                ),
            ));
        }
    }
    match caps.as_slice() {
        [] => Err((
            StatusCode::FORBIDDEN,
            format!(
                "agent \"{}\" may use no capability for {shown}",
                caller.agent().escape_debug()
            ),
        )),
        [cap] => {
            let service = services
                .iter()
                .find(|s| s.name == cap.service)
                .expect("filtered on the service");
            Ok(Route {
                capability: cap.name.clone(),
                base: service.url.path().trim_end_matches('/').to_string(),
            })
        }
        many => Err((
            StatusCode::FORBIDDEN,
            format!(
                "several capabilities reach {shown} ({}): name one as the proxy user name (http://CAPABILITY:TOKEN@ADDR)",
                many.iter()
                    .map(|c| c.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        )),
    }
}

/// Whether `service`'s URL names the origin `scheme://host:port`.
fn names(service: &airlock_config::Service, scheme: &str, host: &str, port: u16) -> bool {
    service.url.scheme() == scheme
        && service
            .url
            .host_str()
            .is_some_and(|h| h.trim_matches(['[', ']']).eq_ignore_ascii_case(host))
        && service.url.port_or_known_default() == Some(port)
}

/// Whether the egress proxy may tunnel to `ip` with `egress = "tunnel"`: not
/// loopback, private, link-local (cloud metadata: 169.254.169.254, fd00:ec2::254),
/// shared (CGNAT), unspecified, multicast, broadcast or documentation space —
/// nor an IPv4-mapped or NAT64-embedded one of those.
pub fn is_public(ip: std::net::IpAddr) -> bool {
    use std::net::IpAddr;
    match ip {
        IpAddr::V4(v4) => {
            let [a, b, ..] = v4.octets();
            !(v4.is_loopback()
                || v4.is_private()
                || v4.is_link_local()
                || v4.is_unspecified()
                || v4.is_multicast()
                || v4.is_broadcast()
                || v4.is_documentation()
                || a == 0
                || (a == 100 && (64..128).contains(&b))
                || (a == 192 && b == 0 && v4.octets()[2] == 0)
                || a >= 240)
        }
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return is_public(IpAddr::V4(v4));
            }
            let seg = v6.segments();
            // 64:ff9b::/96 (NAT64) carries an IPv4 address in its last 32 bits.
            if seg[..6] == [0x64, 0xff9b, 0, 0, 0, 0] {
                let [.., hi, lo] = seg;
                let v4 = std::net::Ipv4Addr::from((u32::from(hi) << 16) | u32::from(lo));
                return is_public(IpAddr::V4(v4));
            }
            !(v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_multicast()
                || (seg[0] & 0xfe00) == 0xfc00
                || (seg[0] & 0xffc0) == 0xfe80
                || (seg[0] == 0x2001 && seg[1] == 0x0db8))
        }
    }
}

/// The path within the service: `path` without the service's base path, or
/// `None` when it lies outside it.
fn within_base(base: &str, path: &str) -> Option<String> {
    if base.is_empty() {
        return Some(path.to_string());
    }
    let rest = path.strip_prefix(base)?;
    match rest {
        "" => Some("/".to_string()),
        r if r.starts_with('/') => Some(r.to_string()),
        _ => None,
    }
}

async fn handle(State(proxy): State<Arc<Proxy>>, req: Request) -> Response {
    let runtime = &proxy.runtime;
    let method = req.method().as_str().to_string();
    // Recorded as host[:port]: an authority can carry userinfo (credentials).
    let target = match req.uri().authority() {
        Some(a) => match a.port_u16() {
            Some(port) => format!("{}:{port}", a.host()),
            None => a.host().to_string(),
        },
        None => req.uri().path().to_string(),
    };
    // Every request it can read is looked at for placeholders, refused ones
    // included (before its credentials are).
    let checked = match (req.method() == Method::CONNECT, req.uri().authority()) {
        (false, Some(a)) if req.uri().scheme_str() == Some("http") => {
            let host = a.host().trim_matches(['[', ']']).to_ascii_lowercase();
            let origin = placeholder::Origin {
                scheme: "http",
                host: &host,
                port: a.port_u16().unwrap_or(80),
            };
            proxy.check_sessions(|p| p.check_head(origin, req.uri(), req.headers()))
        }
        _ => proxy.check_sessions(|p| p.check_anywhere(&target, req.uri(), req.headers())),
    };
    if let Err((msg, caller)) = checked {
        let (status, kind) = (StatusCode::FORBIDDEN, "permission_error");
        let caller = Some(&*caller);
        return refuse(runtime, caller, None, &method, &target, status, kind, &msg).await;
    }
    let Some((wanted, token)) = proxy_credentials(&req) else {
        let msg = "no agent token: the egress proxy needs `Proxy-Authorization` (set HTTPS_PROXY=http://airlock:TOKEN@ADDR; issue a token with `airlock token issue --agent NAME`)";
        runtime.audit_token_refusal(&method, &target, msg).await;
        return proxy_auth_required(msg);
    };
    let caller = match proxy.sessions {
        Some(_) => match proxy.authenticate(&token, &method, &target).await {
            Ok(c) => c,
            Err(answer) => return answer,
        },
        None => match runtime.authenticate(&token).await {
            Ok(c) => c,
            Err(e) => return proxy_auth_required(&e.to_string()),
        },
    };
    match proxy.dispatch(&caller, wanted, token, req).await {
        Ok(response) => response,
        Err((status, msg)) => {
            let kind = "permission_error";
            refuse(
                runtime,
                Some(&caller),
                None,
                &method,
                &target,
                status,
                kind,
                &msg,
            )
            .await
        }
    }
}

impl Proxy {
    /// An authenticated proxy request: a CONNECT (answered, then served as a
    /// tunnel) or an absolute-form `http://` request (forwarded); or why not.
    async fn dispatch(
        self: &Arc<Self>,
        caller: &Caller,
        wanted: Option<String>,
        token: String,
        req: Request,
    ) -> Result<Response, (StatusCode, String)> {
        let bad = |msg: &str| (StatusCode::BAD_REQUEST, msg.to_string());
        let broker = self.runtime.fresh_broker().await;
        let authority = req.uri().authority().cloned().ok_or_else(|| {
            bad("this is airlock's egress proxy: send requests through it as a proxy (HTTPS_PROXY), not to it")
        })?;
        let host = authority
            .host()
            .trim_matches(['[', ']'])
            .to_ascii_lowercase();
        if req.method() != Method::CONNECT {
            // An absolute-form request: plain http to an http service.
            if req.uri().scheme_str() != Some("http") {
                return Err(bad(
                    "the egress proxy takes CONNECT (https) and absolute-form http:// requests only",
                ));
            }
            let port = authority.port_u16().unwrap_or(80);
            let route = route(broker, caller, "http", &host, port, wanted.as_deref())?;
            let (mut parts, body) = req.into_parts();
            parts.headers.remove(header::PROXY_AUTHORIZATION);
            parts.headers.remove("proxy-connection");
            let origin = placeholder::Origin {
                scheme: "http",
                host: &host,
                port,
            };
            return Ok(send(self, caller, &route, origin, parts, body).await);
        }
        let port = authority
            .port_u16()
            .ok_or_else(|| bad("CONNECT needs host:port"))?;
        let config = broker.config();
        if config.server.egress == airlock_config::Egress::Tunnel
            && !config
                .services
                .values()
                .any(|s| names(s, "https", &host, port))
        {
            return self.tunnel(caller, host, port, req).await;
        }
        let route = route(broker, caller, "https", &host, port, wanted.as_deref())?;
        let config = match self.tls_config(&host) {
            Ok(c) => c,
            Err(e) => {
                let status = StatusCode::INTERNAL_SERVER_ERROR;
                return Ok(error(status, "internal_error", &e.to_string()));
            }
        };
        let slot = match self.tunnel_slot() {
            Ok(slot) => slot,
            Err(busy) => return Ok(*busy),
        };
        let tunnel = Tunnel {
            proxy: self.clone(),
            host,
            port,
            token,
            route,
        };
        let upgrade = hyper::upgrade::on(req);
        tokio::spawn(async move {
            if let Ok(upgraded) = upgrade.await {
                tunnel.serve(TokioIo::new(upgraded), config).await;
            }
            drop(slot);
        });
        Ok(StatusCode::OK.into_response())
    }
}

impl Proxy {
    /// `egress = "tunnel"`: a `CONNECT` to a host no service names, tunnelled
    /// unmodified to a public address it resolves to (never a private,
    /// loopback, link-local or metadata one: every address is checked, and the
    /// connection goes to the checked ones, not to a second lookup). Audited
    /// before the tunnel opens; nothing inside it is read or changed.
    async fn tunnel(
        self: &Arc<Self>,
        caller: &Caller,
        host: String,
        port: u16,
        req: Request,
    ) -> Result<Response, (StatusCode, String)> {
        let slot = match self.tunnel_slot() {
            Ok(slot) => slot,
            Err(busy) => return Ok(*busy),
        };
        let shown = format!("{}:{port}", host.escape_debug());
        let addrs: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), port))
            .await
            .map_err(|e| {
                (
                    StatusCode::BAD_GATEWAY,
                    format!("cannot resolve {shown}: {e}"),
                )
            })?
            .collect();
        if addrs.is_empty() {
            return Err((StatusCode::BAD_GATEWAY, format!("{shown} has no address")));
        }
        if let Some(private) = addrs.iter().find(|a| !is_public(a.ip())) {
            return Err((
                StatusCode::FORBIDDEN,
                format!(
                    "{shown} resolves to {}, which is not a public address: egress = \"tunnel\" reaches public hosts only (a service may name a private one)",
                    private.ip()
                ),
            ));
        }
        let event = airlock_audit::Event::new(airlock_audit::Kind::Request)
            .agent(&caller.agent(), caller.is_trusted())
            .method("CONNECT")
            .path(&shown)
            .decision(airlock_audit::Decision::Allow)
            .detail("tunnelled unmodified (egress = \"tunnel\": no service names this host; nothing in the tunnel is read, and no credential is added)");
        if let Err(e) = self.runtime.audit_durable(&event).await {
            return Err((
                StatusCode::SERVICE_UNAVAILABLE,
                format!("the tunnel could not be audited, so it was not opened: {e}"),
            ));
        }
        let upstream = tokio::net::TcpStream::connect(&addrs[..])
            .await
            .map_err(|e| {
                (
                    StatusCode::BAD_GATEWAY,
                    format!("cannot connect to {shown}: {e}"),
                )
            })?;
        let upgrade = hyper::upgrade::on(req);
        tokio::spawn(async move {
            if let Ok(upgraded) = upgrade.await {
                let mut client = TokioIo::new(upgraded);
                let mut upstream = upstream;
                let _ = tokio::io::copy_bidirectional(&mut client, &mut upstream).await;
            }
            drop(slot);
        });
        Ok(StatusCode::OK.into_response())
    }
}

/// Sends one request of `route` to `origin` through the gateway's forwarding
/// path, after checking that its path lies under the service's base path; its
/// placeholders are checked once its body is read, and — when it opens a
/// WebSocket — in every message the program sends on it.
async fn send(
    proxy: &Arc<Proxy>,
    caller: &Caller,
    route: &Route,
    origin: placeholder::Origin<'_>,
    parts: http::request::Parts,
    body: Body,
) -> Response {
    let runtime = &proxy.runtime;
    let Some(rest) = within_base(&route.base, parts.uri.path()) else {
        let msg = format!(
            "path \"{}\" is outside the service's base path \"{}\"",
            parts.uri.path().escape_debug(),
            route.base.escape_debug()
        );
        let (method, path) = (parts.method.as_str(), parts.uri.path());
        let cap = Some(route.capability.as_str());
        let status = StatusCode::FORBIDDEN;
        let kind = "permission_error";
        return refuse(runtime, Some(caller), cap, method, path, status, kind, &msg).await;
    };
    // The head was checked before it got here (refused requests included);
    // the body, read now, is what is left.
    let inspect = |_: &http::request::Parts, body: &[u8]| {
        proxy
            .check_sessions(|p| p.check_body(origin, body))
            .map_err(|(msg, _)| msg)
    };
    let frames = frame_check(proxy, caller, &route.capability, origin, parts.uri.path());
    let cap = &route.capability;
    airlock_gateway::forward_with(runtime, caller, cap, &rest, parts, body, &inspect, frames).await
}

/// The trip wire for a WebSocket's messages (a placeholder in a message is
/// on no surface an auth type uses): a message that trips it is refused, the
/// connection closed (1008) and the refusal audited.
fn frame_check(
    proxy: &Arc<Proxy>,
    caller: &Caller,
    capability: &str,
    origin: placeholder::Origin<'_>,
    path: &str,
) -> Option<airlock_gateway::websocket::FrameCheck> {
    let proxy = proxy.clone();
    let caller = caller.clone();
    let capability = capability.to_string();
    let (scheme, host, port) = (
        origin.scheme.to_string(),
        origin.host.to_string(),
        origin.port,
    );
    let path = path.to_string();
    Some(Arc::new(move |message: &[u8]| {
        let origin = placeholder::Origin {
            scheme: &scheme,
            host: &host,
            port,
        };
        let Err((msg, _)) = proxy.check_sessions(|p| p.check_body(origin, message)) else {
            return Ok(());
        };
        let (proxy, caller, capability, path) = (
            proxy.clone(),
            caller.clone(),
            capability.clone(),
            path.clone(),
        );
        let detail = format!("a WebSocket message: {msg}");
        tokio::spawn(async move {
            let runtime = &proxy.runtime;
            let cap = Some(capability.as_str());
            let _ = runtime
                .audit_door_refusal(Some(&caller), cap, "WEBSOCKET", &path, 403, &detail)
                .await;
        });
        Err(msg)
    }))
}

/// One CONNECT tunnel: TLS terminated for `host`, requests served inside.
struct Tunnel {
    proxy: Arc<Proxy>,
    host: String,
    port: u16,
    token: String,
    route: Route,
}

impl Tunnel {
    async fn serve(self, io: TokioIo<hyper::upgrade::Upgraded>, config: Arc<ServerConfig>) {
        let hello = tokio_rustls::LazyConfigAcceptor::new(Acceptor::default(), io);
        let Ok(Ok(start)) = tokio::time::timeout(HANDSHAKE_TIMEOUT, hello).await else {
            return;
        };
        let sni = start
            .client_hello()
            .server_name()
            .map(str::to_ascii_lowercase);
        if let Some(sni) = sni.filter(|s| *s != self.host) {
            let msg = format!(
                "TLS server name \"{}\" is not the CONNECT host \"{}\"",
                sni.escape_debug(),
                self.host.escape_debug()
            );
            let _ = self
                .proxy
                .runtime
                .audit_door_refusal(
                    None,
                    Some(&self.route.capability),
                    "CONNECT",
                    &self.host,
                    421,
                    &msg,
                )
                .await;
            return;
        }
        let tls = match tokio::time::timeout(HANDSHAKE_TIMEOUT, start.into_stream(config)).await {
            Ok(Ok(tls)) => tls,
            failed => {
                // A client that pins certificates, or was not given the session
                // CA, refuses the leaf: on record, not a silent hang.
                let why = match failed {
                    Ok(Err(e)) => e.to_string(),
                    _ => format!("no handshake within {} s", HANDSHAKE_TIMEOUT.as_secs()),
                };
                let msg = format!(
                    "TLS handshake with the client failed for \"{}\": {why} (a client that pins certificates, or does not trust the session CA, cannot use the proxy)",
                    self.host.escape_debug()
                );
                let cap = Some(self.route.capability.as_str());
                let _ = self
                    .proxy
                    .runtime
                    .audit_door_refusal(None, cap, "CONNECT", &self.host, 400, &msg)
                    .await;
                return;
            }
        };
        let tunnel = Arc::new(self);
        let service =
            hyper::service::service_fn(move |req: http::Request<hyper::body::Incoming>| {
                let tunnel = tunnel.clone();
                async move { Ok::<_, std::convert::Infallible>(tunnel.request(req).await) }
            });
        let mut builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
        builder
            .http1()
            .timer(TokioTimer::new())
            .header_read_timeout(airlock_gateway::listen::HEADER_READ_TIMEOUT);
        // With upgrades: a WebSocket handshake inside the tunnel.
        let _ = builder
            .serve_connection_with_upgrades(TokioIo::new(tls), service)
            .await;
    }

    /// Refuses a request inside the tunnel (audited, on the route's capability).
    async fn refuse(
        &self,
        caller: &Caller,
        parts: &http::request::Parts,
        status: StatusCode,
        kind: &str,
        msg: &str,
    ) -> Response {
        let (method, path) = (parts.method.as_str(), parts.uri.path());
        let cap = Some(self.route.capability.as_str());
        let runtime = &self.proxy.runtime;
        refuse(runtime, Some(caller), cap, method, path, status, kind, msg).await
    }

    /// One request inside the tunnel.
    async fn request(&self, req: http::Request<hyper::body::Incoming>) -> Response {
        // Checked per request: a revoked token stops an open tunnel.
        let target = format!("{}{}", self.host, req.uri().path());
        let caller = match self
            .proxy
            .authenticate(&self.token, req.method().as_str(), &target)
            .await
        {
            Ok(c) => c,
            Err(answer) => return answer,
        };
        let (parts, body) = req.into_parts();
        let origin = placeholder::Origin {
            scheme: "https",
            host: &self.host,
            port: self.port,
        };
        if let Err((msg, _)) = self
            .proxy
            .check_sessions(|p| p.check_head(origin, &parts.uri, &parts.headers))
        {
            let (status, kind) = (StatusCode::FORBIDDEN, "permission_error");
            return self.refuse(&caller, &parts, status, kind, &msg).await;
        }
        let named = parts
            .uri
            .authority()
            .map(|a| a.as_str().to_string())
            .or_else(|| {
                parts
                    .headers
                    .get(header::HOST)
                    .and_then(|h| h.to_str().ok())
                    .map(str::to_string)
            })
            .unwrap_or_default();
        if !names_origin(&named, &self.host, self.port) {
            let msg = format!(
                "request names host \"{}\" inside a tunnel to \"{}:{}\"",
                named.escape_debug(),
                self.host.escape_debug(),
                self.port
            );
            let status = StatusCode::MISDIRECTED_REQUEST;
            let kind = "invalid_request_error";
            return self.refuse(&caller, &parts, status, kind, &msg).await;
        }
        // Only the path and query go on (the engine sets Host and :authority
        // from the service's URL, as for the gateway).
        send(
            &self.proxy,
            &caller,
            &self.route,
            origin,
            parts,
            Body::new(body),
        )
        .await
    }
}

/// Whether a `Host`/`:authority` value names `host:port` (the port may be left
/// out when it is https's default).
fn names_origin(named: &str, host: &str, port: u16) -> bool {
    let Ok(a) = named.parse::<http::uri::Authority>() else {
        return false;
    };
    a.host().trim_matches(['[', ']']).eq_ignore_ascii_case(host)
        && a.port_u16().unwrap_or(443) == port
        && !named.contains('@')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base_paths() {
        assert_eq!(within_base("", "/v1/x").as_deref(), Some("/v1/x"));
        assert_eq!(within_base("/api", "/api/v1").as_deref(), Some("/v1"));
        assert_eq!(within_base("/api", "/api").as_deref(), Some("/"));
        assert_eq!(within_base("/api", "/apix/v1"), None);
        assert_eq!(within_base("/api", "/v1"), None);
    }

    #[test]
    fn only_public_addresses_are_tunnelled() {
        let public = ["1.1.1.1", "8.8.8.8", "2606:4700:4700::1111", "198.18.0.1"];
        let not = [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "0.1.2.3",
            "224.0.0.1",
            "255.255.255.255",
            "192.0.0.1",
            "192.0.2.1",
            "240.0.0.1",
            "::1",
            "::",
            "fc00::1",
            "fd00:ec2::254",
            "fe80::1",
            "ff02::1",
            "2001:db8::1",
            "::ffff:127.0.0.1",
            "::ffff:169.254.169.254",
            "64:ff9b::a9fe:a9fe",
            "64:ff9b::7f00:1",
        ];
        for ip in public {
            assert!(is_public(ip.parse().unwrap()), "{ip}");
        }
        for ip in not {
            assert!(!is_public(ip.parse().unwrap()), "{ip}");
        }
    }

    #[test]
    fn origins_named_inside_a_tunnel() {
        assert!(names_origin("api.github.com", "api.github.com", 443));
        assert!(names_origin("API.github.com:443", "api.github.com", 443));
        assert!(!names_origin("api.github.com:8443", "api.github.com", 443));
        assert!(!names_origin("evil.example", "api.github.com", 443));
        assert!(!names_origin("user@api.github.com", "api.github.com", 443));
        assert!(!names_origin("", "api.github.com", 443));
    }
}
