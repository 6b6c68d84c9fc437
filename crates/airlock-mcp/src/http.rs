//! MCP over streamable HTTP (`airlock serve --http ADDR`), behind agent tokens.
//! Served by [`airlock_gateway::listen`], like the gateway: a request head must
//! arrive within 10 s (idle connections close after 10 s), a request body may not
//! stall for 30 s, and the process keeps at most 512 connections across its doors.
//!
//! In front of rmcp's service, in this order:
//! 1. the agent token ([`authenticate`]): 401 without a valid one;
//! 2. the `Origin` ([`check_origin`]): a request without one (not a browser) or
//!    naming the server's own loopback origin (`http://127.0.0.1:PORT`,
//!    `http://localhost:PORT`, as bound) passes; any other gets 403, so a web
//!    page elsewhere cannot drive the server through the user's browser;
//! 3. the body of a JSON `POST` ([`check_jsonrpc`]): one that is not JSON gets
//!    400 with a JSON-RPC `-32700` error, JSON that is not a JSON-RPC message
//!    `-32600`, a known method with params of the wrong shape `-32602` — as the
//!    transport spec asks ("HTTP error status code, e.g. 400 … MAY comprise a
//!    JSON-RPC error response"), where rmcp answers 415 "fail to deserialize".

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use airlock_broker::Runtime;
use axum::body::{Body, Bytes, HttpBody};
use axum::extract::{Request, State};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use rmcp::transport::streamable_http_server::session::local::LocalSessionManager;
use rmcp::transport::streamable_http_server::{StreamableHttpServerConfig, StreamableHttpService};

use crate::McpError;
use crate::tools::{AirlockMcp, Identity};

/// Settings of the HTTP transport.
#[derive(Debug, Clone)]
pub struct HttpOptions {
    /// Largest accepted request body (default 1 MiB): tool arguments, not uploads.
    pub max_body_bytes: usize,
    /// Browser origins allowed to call besides the server's own loopback origin
    /// (`http://127.0.0.1:PORT`, `http://localhost:PORT` for the bound port),
    /// each as `scheme://host:port` (default none: a request whose `Origin`
    /// names any other origin is refused, which stops web pages from reaching a
    /// local server through the user's browser).
    pub allowed_origins: Vec<String>,
}

impl Default for HttpOptions {
    fn default() -> Self {
        HttpOptions {
            max_body_bytes: 1 << 20,
            allowed_origins: Vec::new(),
        }
    }
}

/// Serves MCP on `http://ADDR/mcp` until the process is stopped. Every request
/// needs `Authorization: Bearer <agent token>`; without a valid one the answer is
/// 401 with a JSON body that says why, and the attempt is audited.
/// `ready` receives the bound address (useful with port 0).
pub async fn serve_http(
    runtime: Arc<Runtime>,
    addr: &str,
    opts: HttpOptions,
    ready: impl FnOnce(SocketAddr),
) -> Result<(), McpError> {
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|e| McpError::Bind {
            addr: addr.to_string(),
            detail: e.to_string(),
        })?;
    let local = listener
        .local_addr()
        .map_err(|e| McpError::Transport(e.to_string()))?;
    // The server's own origins are known once the port is.
    let mut origins = own_origins(local);
    origins.extend(opts.allowed_origins.iter().cloned());
    let config = StreamableHttpServerConfig::default()
        .with_max_request_body_bytes(opts.max_body_bytes)
        .with_allowed_origins(origins.clone())
        .enforce_origin_validation();
    let rt = runtime.clone();
    let service = StreamableHttpService::new(
        move || Ok(AirlockMcp::new(rt.clone(), Identity::PerRequest)),
        Arc::new(LocalSessionManager::default()),
        config,
    );
    let gate = Arc::new(Gate {
        origins: origins.iter().filter_map(|o| parse_origin(o)).collect(),
        shown: origins,
        max_body_bytes: opts.max_body_bytes,
    });
    // Layers run outside in: the token, then the origin, then the body.
    let app = axum::Router::new()
        .nest_service("/mcp", service)
        .layer(middleware::from_fn_with_state(gate.clone(), check_jsonrpc))
        .layer(middleware::from_fn_with_state(gate, check_origin))
        .layer(middleware::from_fn_with_state(runtime, authenticate));
    ready(local);
    // The gateway's serving loop: header-read timeout, body idle timeout and the
    // process-wide connection cap (see airlock_gateway::listen).
    airlock_gateway::listen::serve(
        listener,
        app,
        airlock_gateway::listen::Options::default(),
        std::future::pending(),
    )
    .await;
    Ok(())
}

/// Checks the agent token and attaches the trusted [`airlock_broker::Caller`].
async fn authenticate(
    State(runtime): State<Arc<Runtime>>,
    mut req: Request,
    next: Next,
) -> Response {
    let presented = req
        .headers()
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.strip_prefix("Bearer ")
                .or_else(|| v.strip_prefix("bearer "))
        })
        .unwrap_or("")
        .to_string();
    match runtime.authenticate(&presented).await {
        Ok(caller) => {
            req.extensions_mut().insert(caller);
            next.run(req).await
        }
        Err(e) => {
            let body = serde_json::json!({ "error": "unauthorized", "message": e.to_string() });
            (
                StatusCode::UNAUTHORIZED,
                [(axum::http::header::CONTENT_TYPE, "application/json")],
                body.to_string(),
            )
                .into_response()
        }
    }
}

/// What the origin and body checks need.
#[derive(Debug)]
struct Gate {
    /// Allowed origins, parsed.
    origins: Vec<(String, String, u16)>,
    /// The same, as configured (for the refusal's message).
    shown: Vec<String>,
    max_body_bytes: usize,
}

/// The server's own browser origins: for a loopback address, that address and
/// `localhost` on the bound port; for an unspecified address (`0.0.0.0`, `::`),
/// the loopback names of its family and `localhost`; none otherwise.
fn own_origins(local: SocketAddr) -> Vec<String> {
    let port = local.port();
    let hosts: Vec<&str> = match local.ip() {
        IpAddr::V4(ip) if ip.is_loopback() || ip.is_unspecified() => vec!["127.0.0.1", "localhost"],
        IpAddr::V6(ip) if ip.is_loopback() || ip.is_unspecified() => vec!["[::1]", "localhost"],
        _ => Vec::new(),
    };
    let mut out: Vec<String> = hosts.iter().map(|h| format!("http://{h}:{port}")).collect();
    if let IpAddr::V4(ip) = local.ip()
        && ip.is_loopback()
        && ip != std::net::Ipv4Addr::LOCALHOST
    {
        // 127.0.0.2…: its own address, not 127.0.0.1's.
        out[0] = format!("http://{ip}:{port}");
    }
    out
}

/// An origin as (scheme, host, port), lower case, brackets off an IPv6 host, the
/// scheme's default port when none is written; `None` for `null` and anything
/// that is not `scheme://host[:port]` (a path, userinfo, a query).
fn parse_origin(value: &str) -> Option<(String, String, u16)> {
    let value = value.trim();
    let (scheme, rest) = value.split_once("://")?;
    let scheme = scheme.to_ascii_lowercase();
    if rest.is_empty() || rest.contains(['/', '?', '#', '@']) {
        return None;
    }
    let authority: axum::http::uri::Authority = rest.parse().ok()?;
    let port = match (authority.port_u16(), scheme.as_str()) {
        (Some(p), _) => p,
        (None, "http") => 80,
        (None, "https") => 443,
        _ => return None,
    };
    let host = authority
        .host()
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_ascii_lowercase();
    Some((scheme, host, port))
}

/// Refuses (403) a request whose `Origin` is not one of the allowed ones. No
/// `Origin` header (every non-browser client) passes: the token is the
/// credential; the origin check stops a web page elsewhere from using the
/// browser as a confused deputy.
async fn check_origin(State(gate): State<Arc<Gate>>, req: Request, next: Next) -> Response {
    let mut origins = req.headers().get_all(header::ORIGIN).iter();
    let Some(origin) = origins.next() else {
        return next.run(req).await;
    };
    let allowed = origins.next().is_none()
        && origin
            .to_str()
            .ok()
            .and_then(parse_origin)
            .is_some_and(|o| gate.origins.contains(&o));
    if allowed {
        return next.run(req).await;
    }
    let shown = String::from_utf8_lossy(origin.as_bytes());
    let message = format!(
        "Origin \"{}\" may not call this server: only its own origin ({}) may; web pages elsewhere cannot reach it through a browser",
        shown.escape_debug(),
        gate.shown.join(", ")
    );
    let body = serde_json::json!({ "error": "forbidden", "message": message });
    (
        StatusCode::FORBIDDEN,
        [(header::CONTENT_TYPE, "application/json")],
        body.to_string(),
    )
        .into_response()
}

/// A JSON-RPC error answer with HTTP status `status` (id null: the request's
/// id is unknown or the message was not a request; `id` otherwise).
fn rpc_error(status: StatusCode, code: i64, message: &str, id: serde_json::Value) -> Response {
    let body = serde_json::json!({
        "jsonrpc": "2.0",
        "id": id,
        "error": { "code": code, "message": message },
    });
    (
        status,
        [(header::CONTENT_TYPE, "application/json")],
        body.to_string(),
    )
        .into_response()
}

/// Whether a request's `Content-Type` is JSON (what rmcp accepts; others get
/// rmcp's 415).
fn is_json(req: &Request) -> bool {
    req.headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.split(';')
                .next()
                .unwrap_or("")
                .trim()
                .eq_ignore_ascii_case("application/json")
        })
}

/// Why a body is not a JSON-RPC message: the code and the message.
fn jsonrpc_problem(value: &serde_json::Value) -> Option<(i64, String, serde_json::Value)> {
    use serde_json::Value;
    let invalid = |why: &str| Some((-32600, format!("Invalid Request: {why}"), Value::Null));
    let Some(obj) = value.as_object() else {
        return if value.is_array() {
            invalid(
                "batches are not supported (MCP 2025-06-18 removed them): send one message per request",
            )
        } else {
            invalid("a JSON-RPC message is a JSON object")
        };
    };
    if obj.get("jsonrpc").and_then(Value::as_str) != Some("2.0") {
        return invalid("\"jsonrpc\" must be \"2.0\"");
    }
    let id = obj.get("id");
    if let Some(id) = id
        && !(id.is_string() || id.is_i64() || id.is_u64())
    {
        return invalid("\"id\" must be a string or an integer");
    }
    match obj.get("method") {
        Some(Value::String(_)) => {
            if obj
                .get("params")
                .is_some_and(|p| !(p.is_object() || p.is_array()))
            {
                return Some((
                    -32602,
                    "Invalid params: \"params\" must be an object".to_string(),
                    id.cloned().unwrap_or(Value::Null),
                ));
            }
        }
        Some(_) => return invalid("\"method\" must be a string"),
        None => {
            if id.is_none() || (obj.contains_key("result") == obj.contains_key("error")) {
                return invalid(
                    "neither a request (\"method\"), a notification nor a response (\"id\" with \"result\" or \"error\")",
                );
            }
        }
    }
    // The shape is JSON-RPC; rmcp's types say whether the params fit the method.
    match serde_json::from_value::<rmcp::model::ClientJsonRpcMessage>(value.clone()) {
        Ok(_) => None,
        Err(e) if obj.contains_key("method") => Some((
            -32602,
            format!("Invalid params: {e}"),
            id.cloned().unwrap_or(Value::Null),
        )),
        Err(e) => invalid(&e.to_string()),
    }
}

/// Reads a JSON `POST` body (at most the limit) and answers 400 with a JSON-RPC
/// error when it is not JSON (`-32700`) or not a JSON-RPC message (`-32600`,
/// `-32602`); a valid one goes on to rmcp unchanged.
async fn check_jsonrpc(State(gate): State<Arc<Gate>>, req: Request, next: Next) -> Response {
    if req.method() != Method::POST || !is_json(&req) {
        return next.run(req).await;
    }
    let (parts, mut body) = req.into_parts();
    let limit = gate.max_body_bytes;
    let mut buf: Vec<u8> = Vec::new();
    loop {
        match std::future::poll_fn(|cx| std::pin::Pin::new(&mut body).poll_frame(cx)).await {
            None => break,
            Some(Ok(frame)) => {
                if let Ok(data) = frame.into_data() {
                    if data.len() > limit.saturating_sub(buf.len()) {
                        return rpc_error(
                            StatusCode::PAYLOAD_TOO_LARGE,
                            -32600,
                            &format!("Invalid Request: the body is over the {limit}-byte limit"),
                            serde_json::Value::Null,
                        );
                    }
                    buf.extend_from_slice(&data);
                }
            }
            Some(Err(e)) => {
                let stalled = airlock_gateway::listen::is_body_stalled(&e);
                let (status, what) = if stalled {
                    (StatusCode::REQUEST_TIMEOUT, "the request body stalled")
                } else {
                    (
                        StatusCode::BAD_REQUEST,
                        "the request body could not be read",
                    )
                };
                return rpc_error(
                    status,
                    -32600,
                    &format!("Invalid Request: {what}: {e}"),
                    serde_json::Value::Null,
                );
            }
        }
    }
    let value: serde_json::Value = match serde_json::from_slice(&buf) {
        Ok(v) => v,
        Err(e) => {
            return rpc_error(
                StatusCode::BAD_REQUEST,
                -32700,
                &format!("Parse error: {e}"),
                serde_json::Value::Null,
            );
        }
    };
    if let Some((code, message, id)) = jsonrpc_problem(&value) {
        return rpc_error(StatusCode::BAD_REQUEST, code, &message, id);
    }
    let mut parts = parts;
    parts
        .headers
        .insert(header::CONTENT_LENGTH, HeaderValue::from(buf.len()));
    parts.headers.remove(header::TRANSFER_ENCODING);
    next.run(Request::from_parts(parts, Body::from(Bytes::from(buf))))
        .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn own_origins_follow_the_bound_address() {
        let o = |a: &str| own_origins(a.parse().unwrap());
        assert_eq!(
            o("127.0.0.1:8788"),
            ["http://127.0.0.1:8788", "http://localhost:8788"]
        );
        assert_eq!(o("[::1]:9"), ["http://[::1]:9", "http://localhost:9"]);
        assert_eq!(
            o("127.0.0.2:9"),
            ["http://127.0.0.2:9", "http://localhost:9"]
        );
        assert!(o("192.168.1.4:9").is_empty());
    }

    #[test]
    fn origins_parse_to_one_form() {
        let p = |s: &str| parse_origin(s);
        assert_eq!(p("http://LOCALHOST:80"), p("http://localhost"));
        assert_eq!(p("http://[::1]:9"), Some(("http".into(), "::1".into(), 9)));
        for bad in [
            "null",
            "http://a:1/x",
            "http://u@a:1",
            "localhost:1",
            "ftp://a",
            "",
        ] {
            assert_eq!(p(bad), None, "{bad}");
        }
    }

    #[test]
    fn jsonrpc_shapes() {
        use serde_json::json;
        let code = |v: serde_json::Value| jsonrpc_problem(&v).map(|(c, _, _)| c);
        assert_eq!(
            code(json!({"jsonrpc": "2.0", "id": 1, "method": "ping"})),
            None
        );
        assert_eq!(
            code(json!({"jsonrpc": "2.0", "method": "notifications/initialized"})),
            None
        );
        assert_eq!(
            code(json!({"jsonrpc": "2.0", "id": 1, "method": "x/custom", "params": {}})),
            None
        );
        assert_eq!(code(json!({})), Some(-32600));
        assert_eq!(code(json!([])), Some(-32600));
        assert_eq!(code(json!(5)), Some(-32600));
        assert_eq!(
            code(json!({"jsonrpc": "1.0", "id": 1, "method": "ping"})),
            Some(-32600)
        );
        assert_eq!(
            code(json!({"jsonrpc": "2.0", "id": 1, "method": 7})),
            Some(-32600)
        );
        assert_eq!(
            code(json!({"jsonrpc": "2.0", "id": [1], "method": "ping"})),
            Some(-32600)
        );
        assert_eq!(code(json!({"jsonrpc": "2.0", "id": 1})), Some(-32600));
        assert_eq!(
            code(json!({"jsonrpc": "2.0", "id": 5, "method": "tools/call", "params": "x"})),
            Some(-32602)
        );
        let (_, _, id) = jsonrpc_problem(
            &json!({"jsonrpc": "2.0", "id": 5, "method": "tools/call", "params": 7}),
        )
        .unwrap();
        assert_eq!(id, json!(5));
    }
}
