//! airlock's HTTP gateway (DESIGN.md §6): a plain HTTP/1.1 reverse proxy for tools
//! and SDKs that do not speak MCP. A stock SDK changes only its base URL
//! (`http://ADDR/<capability>`) and its key (an agent token).
//!
//! `http://ADDR/<capability>/<path>?<query>` → the agent token is taken from
//! `Authorization: Bearer`, `x-api-key` or `api-key` (or, for AWS SDKs, the
//! access key id of a SigV4 `Authorization`) and removed; the request goes
//! through exactly the same runtime as MCP `execute` — normalization, policy,
//! sessions per token, injection, scrubbing, audit — and the answer streams back
//! (chunked and SSE bodies pass through as they arrive, scrubbed, including a
//! secret split across chunks). Nothing here decides anything.
//!
//! Errors are JSON, shaped so both the OpenAI and the Anthropic SDKs read the
//! message: `{"type": "error", "error": {"type": …, "message": …}}` with 400 for a
//! malformed request, 401 for a missing/unknown/expired/revoked token, 403 for a
//! policy refusal, 408 for a request body that stalls, 413 for a body over the
//! limit, 502/504 for an upstream failure. Every refusal the gateway makes itself
//! (before the broker sees the request) is audited too.
//!
//! [`listen`] serves both HTTP doors (this gateway and MCP over HTTP) with a
//! header-read timeout, a body idle timeout and a connection cap.
#![forbid(unsafe_code)]
#![deny(missing_docs)]
#![cfg_attr(test, allow(clippy::unwrap_used))]

pub mod listen;
pub mod websocket;

use std::net::SocketAddr;
use std::sync::Arc;

use airlock_broker::{Caller, ExecuteError, ExecuteRequest, Runtime};
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use bytes::{Bytes, BytesMut};
use futures_util::StreamExt;

/// Headers that may carry the agent token; all are removed before forwarding.
const TOKEN_HEADERS: [&str; 3] = ["authorization", "x-api-key", "api-key"];
/// An optional header with the agent's reason (for `requires_reason`); removed
/// before forwarding.
pub const REASON_HEADER: &str = "x-airlock-reason";
/// The largest request body the gateway reads, whatever the service allows.
/// Below it, the target service's `max_request_bytes` (default
/// [`airlock_engine::DEFAULT_MAX_BODY`]) applies while the body is read.
pub const MAX_BODY: usize = 32 << 20;

/// Errors starting the gateway.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum GatewayError {
    /// The address could not be bound.
    #[error("cannot listen on {addr}: {detail}; pick another address with --gateway HOST:PORT")]
    Bind {
        /// The address asked for.
        addr: String,
        /// Why.
        detail: String,
    },
    /// The server failed.
    #[error("gateway: {0}")]
    Serve(String),
}

/// The gateway as an axum app, for [`listen::serve`] (which [`serve_gateway`] uses
/// with the default limits).
pub fn app(runtime: Arc<Runtime>) -> axum::Router {
    axum::Router::new().fallback(handle).with_state(runtime)
}

/// Serves the gateway on `addr` until the process stops; `ready` gets the bound
/// address (useful with port 0).
pub async fn serve_gateway(
    runtime: Arc<Runtime>,
    addr: &str,
    ready: impl FnOnce(SocketAddr),
) -> Result<(), GatewayError> {
    listen::serve_on(addr, app(runtime), ready)
        .await
        .map_err(|e| GatewayError::Bind {
            addr: addr.to_string(),
            detail: e.to_string(),
        })
}

/// An error answer in the shape both the OpenAI and the Anthropic SDKs read:
/// `{"type": "error", "error": {"type": KIND, "message": MESSAGE}}`.
pub fn error(status: StatusCode, kind: &str, message: &str) -> Response {
    let body = serde_json::json!({
        "type": "error",
        "error": { "type": kind, "message": message },
    });
    (
        status,
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        body.to_string(),
    )
        .into_response()
}

/// The agent token from the request's headers: `Authorization: Bearer`, the
/// access key id of an AWS SigV4 `Authorization` (an AWS SDK configured with the
/// token as its access key id; its signature is not checked — the token is the
/// credential — and the header is replaced by airlock's own signature), then
/// `x-api-key` or `api-key`.
fn token(headers: &HeaderMap) -> Option<String> {
    if let Some(v) = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
    {
        let v = v.trim();
        if let Some(t) = v
            .strip_prefix("Bearer ")
            .or_else(|| v.strip_prefix("bearer "))
        {
            return Some(t.trim().to_string());
        }
        if let Some(params) = v.strip_prefix("AWS4-HMAC-SHA256 ") {
            // Credential=<access key id>/<date>/<region>/<service>/aws4_request
            let key_id = params
                .split(',')
                .find_map(|p| p.trim().strip_prefix("Credential="))
                .and_then(|c| c.split('/').next())
                .filter(|k| !k.is_empty());
            if let Some(k) = key_id {
                return Some(k.to_string());
            }
        }
    }
    ["x-api-key", "api-key"]
        .iter()
        .find_map(|h| headers.get(*h).and_then(|v| v.to_str().ok()))
        .map(|v| v.trim().to_string())
}

/// The caller an agent token names, or the `401` answer saying why not.
pub async fn authenticate(runtime: &Runtime, presented: &str) -> Result<Caller, Response> {
    let caller = runtime.authenticate(presented).await;
    caller.map_err(|e| {
        error(
            StatusCode::UNAUTHORIZED,
            "authentication_error",
            &e.to_string(),
        )
    })
}

/// Answers a refusal a door makes itself, after auditing it (DESIGN.md §7.5:
/// every decision is audited; a refusal that cannot be recorded fails as a 500).
#[allow(clippy::too_many_arguments)]
pub async fn refuse(
    runtime: &Runtime,
    caller: Option<&Caller>,
    capability: Option<&str>,
    method: &str,
    path: &str,
    status: StatusCode,
    kind: &str,
    message: &str,
) -> Response {
    match runtime
        .audit_door_refusal(caller, capability, method, path, status.as_u16(), message)
        .await
    {
        Ok(_) => error(status, kind, message),
        Err(e) => error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal_error",
            &format!("{message}; the refusal could not be audited ({e}), so the request fails"),
        ),
    }
}

/// The request-body limit for `capability`: its service's `max_request_bytes`
/// (default [`airlock_engine::DEFAULT_MAX_BODY`]), at most [`MAX_BODY`]; and what
/// to call it in the refusal. An unknown capability gets the default (the
/// broker refuses it anyway, with the reason).
fn body_limit(broker: &airlock_broker::Broker, capability: &str) -> (usize, String) {
    let config = broker.config();
    let service = config
        .capabilities
        .get(capability)
        .and_then(|c| config.services.get(&c.service));
    let own = service
        .and_then(|s| s.max_request_bytes)
        .map_or(airlock_engine::DEFAULT_MAX_BODY, |n| {
            usize::try_from(n).unwrap_or(usize::MAX)
        });
    match service {
        Some(s) if own <= MAX_BODY => (
            own,
            format!(
                "the {own}-byte limit for service \"{}\" (its max_request_bytes)",
                s.name
            ),
        ),
        _ if own <= MAX_BODY => (own, format!("the gateway's {own}-byte limit")),
        _ => (MAX_BODY, format!("the gateway's {MAX_BODY}-byte limit")),
    }
}

/// Why a request body could not be read.
#[derive(Debug)]
enum BodyFailure {
    /// Over the limit (declared by Content-Length, or seen while reading).
    TooLarge,
    /// No bytes for the body idle timeout.
    Stalled(String),
    /// Malformed framing (a bad chunk size…) or the connection failed mid-body.
    Malformed(String),
}

/// Reads a request body of at most `limit` bytes. A Content-Length over the limit
/// is refused before any byte is read; a chunked body as soon as it passes it.
async fn read_body(body: Body, declared: Option<u64>, limit: usize) -> Result<Bytes, BodyFailure> {
    let limit64 = u64::try_from(limit).unwrap_or(u64::MAX);
    if declared.is_some_and(|n| n > limit64) {
        return Err(BodyFailure::TooLarge);
    }
    let capacity = declared.map_or(0, |n| usize::try_from(n).unwrap_or(0));
    let mut buf = BytesMut::with_capacity(capacity);
    let mut stream = body.into_data_stream();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| {
            if listen::is_body_stalled(&e) {
                BodyFailure::Stalled(e.to_string())
            } else {
                BodyFailure::Malformed(error_chain(&e))
            }
        })?;
        if chunk.len() > limit - buf.len() {
            return Err(BodyFailure::TooLarge);
        }
        buf.extend_from_slice(&chunk);
    }
    Ok(buf.freeze())
}

/// An error and its sources, as one line (hyper's body errors say the cause in
/// the source: "error reading a body from connection: invalid chunk size line").
fn error_chain(err: &(dyn std::error::Error + 'static)) -> String {
    let mut out = String::new();
    for e in std::iter::successors(Some(err), |e| e.source()) {
        let text = e.to_string();
        if !text.is_empty() && !out.contains(&text) {
            if !out.is_empty() {
                out.push_str(": ");
            }
            out.push_str(&text);
        }
    }
    out
}

async fn handle(State(runtime): State<Arc<Runtime>>, req: Request) -> Response {
    let (parts, body) = req.into_parts();
    let method = parts.method.as_str();
    // An absolute-form target (`GET http://elsewhere/… HTTP/1.1`) would make this a
    // forward proxy: refused (and recorded with its path and host only: an
    // authority can carry userinfo).
    if parts.uri.scheme().is_some() || parts.uri.authority().is_some() {
        let msg = format!(
            "absolute-form request targets are refused (this one names host \"{}\"): send the path only (http://ADDR/<capability>/<path>)",
            parts.uri.host().unwrap_or("").escape_debug()
        );
        return refuse(
            &runtime,
            None,
            None,
            method,
            parts.uri.path(),
            StatusCode::BAD_REQUEST,
            "invalid_request_error",
            &msg,
        )
        .await;
    }
    let Some(presented) = token(&parts.headers) else {
        let in_query = parts.uri.query().is_some_and(|q| q.contains("airlock_"));
        let msg = if in_query {
            "agent tokens are not accepted in the query string (they end up in logs); send `Authorization: Bearer <token>`"
        } else {
            "no agent token: send it as `Authorization: Bearer <token>`, `x-api-key` or `api-key` (issue one with `airlock token issue --agent NAME`)"
        };
        runtime
            .audit_token_refusal(method, parts.uri.path(), msg)
            .await;
        return error(StatusCode::UNAUTHORIZED, "authentication_error", msg);
    };
    let caller = match authenticate(&runtime, &presented).await {
        Ok(c) => c,
        Err(answer) => return answer,
    };

    // /<capability>/<rest>: the rest is passed on exactly as received, for the
    // normalizer to accept or refuse.
    let raw = parts.uri.path();
    let trimmed = raw.strip_prefix('/').unwrap_or(raw);
    let (capability, rest) = match trimmed.split_once('/') {
        Some((c, r)) => (c, format!("/{r}")),
        None => (trimmed, "/".to_string()),
    };
    if capability.is_empty() {
        return refuse(
            &runtime,
            Some(&caller),
            None,
            method,
            raw,
            StatusCode::NOT_FOUND,
            "not_found_error",
            "no capability in the path: use http://ADDR/<capability>/<path>",
        )
        .await;
    }
    let capability = capability.to_owned();
    forward(
        &runtime,
        &caller,
        &capability,
        &rest,
        parts,
        body,
        &|_, _| Ok(()),
    )
    .await
}

/// A door's own check of a request as received (its head and whole body), run
/// by [`forward`] once the body is read and before anything is decided or sent:
/// `Err(message)` refuses it (`403`, audited with `message`). The egress proxy
/// looks for placeholders here.
pub type Inspect<'a> =
    &'a (dyn Fn(&http::request::Parts, &[u8]) -> Result<(), String> + Send + Sync);

/// Sends one request the door has authenticated and routed: `capability`, and
/// `rest` (the path within the service, as received; the query is taken from
/// `parts`), through the broker's request path (`Runtime::execute_streaming`),
/// and streams the scrubbed answer back. Token headers and the reason header are
/// removed here; the service's body limit applies while the body is read; every
/// refusal is audited; `inspect` sees the request as received before any of it
/// is used. The HTTP gateway and the egress proxy both end here.
pub async fn forward(
    runtime: &Arc<Runtime>,
    caller: &Caller,
    capability: &str,
    rest: &str,
    parts: http::request::Parts,
    body: Body,
    inspect: Inspect<'_>,
) -> Response {
    forward_with(
        runtime, caller, capability, rest, parts, body, inspect, None,
    )
    .await
}

/// [`forward`], with `frames` checking each message the agent sends once a
/// WebSocket handshake is answered (module `websocket`).
#[allow(clippy::too_many_arguments)] // forward's, and the frame check
pub async fn forward_with(
    runtime: &Arc<Runtime>,
    caller: &Caller,
    capability: &str,
    rest: &str,
    mut parts: http::request::Parts,
    body: Body,
    inspect: Inspect<'_>,
    frames: Option<websocket::FrameCheck>,
) -> Response {
    let offer = match airlock_engine::WebSocketOffer::from_request(&parts.method, &parts.headers) {
        Ok(offer) => offer,
        Err(e) => {
            let (method, path) = (parts.method.as_str(), parts.uri.path());
            let status = StatusCode::BAD_REQUEST;
            let (cap, kind) = (Some(capability), "invalid_request_error");
            return refuse(
                runtime,
                Some(caller),
                cap,
                method,
                path,
                status,
                kind,
                &e.to_string(),
            )
            .await;
        }
    };
    let on_upgrade = parts.extensions.remove::<hyper::upgrade::OnUpgrade>();
    let method = parts.method.as_str();
    let path = match parts.uri.query() {
        Some(q) => format!("{rest}?{q}"),
        None => rest.to_string(),
    };
    // Every refusal from here on is recorded with the caller, the capability,
    // the method and the path as received.
    let refused = |status: StatusCode, kind: &'static str, msg: String| async move {
        refuse(
            runtime,
            Some(caller),
            Some(capability),
            method,
            rest,
            status,
            kind,
            &msg,
        )
        .await
    };

    let mut headers = parts.headers.clone();
    for h in TOKEN_HEADERS {
        headers.remove(h);
    }
    let reason = headers
        .remove(REASON_HEADER)
        .and_then(|v| v.to_str().ok().map(str::to_string));
    let headers = match airlock_engine::UpstreamRequest::headers_from_map(&headers) {
        Ok(h) => h,
        Err(e) => {
            return refused(
                StatusCode::BAD_REQUEST,
                "invalid_request_error",
                e.to_string(),
            )
            .await;
        }
    };
    // The service's own limit applies while the body is read: a body over it is
    // refused without buffering more than the limit.
    let (limit, limit_name) = body_limit(runtime.fresh_broker().await, capability);
    let declared = parts
        .headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    let body = match read_body(body, declared, limit).await {
        Ok(b) => b,
        Err(failure) => {
            let (status, kind, msg) = match failure {
                BodyFailure::TooLarge => (
                    StatusCode::PAYLOAD_TOO_LARGE,
                    "request_too_large",
                    format!("request body over {limit_name}"),
                ),
                BodyFailure::Stalled(e) => (
                    StatusCode::REQUEST_TIMEOUT,
                    "invalid_request_error",
                    format!("the request body stalled: {e}"),
                ),
                BodyFailure::Malformed(e) => (
                    StatusCode::BAD_REQUEST,
                    "invalid_request_error",
                    format!("malformed request body: {e}"),
                ),
            };
            return refused(status, kind, msg).await;
        }
    };
    if let Err(msg) = inspect(&parts, &body) {
        return refused(StatusCode::FORBIDDEN, "permission_error", msg).await;
    }
    let request = ExecuteRequest {
        capability: capability.to_string(),
        method: method.to_string(),
        path,
        query: Vec::new(),
        headers,
        body: (!body.is_empty()).then(|| body.to_vec()),
        reason,
    };
    if let Some(offer) = offer {
        let Some(on_upgrade) = on_upgrade else {
            let msg =
                "this connection cannot be upgraded to a WebSocket (WebSockets need HTTP/1.1)";
            return refused(StatusCode::BAD_REQUEST, "invalid_request_error", msg.into()).await;
        };
        let Some(slot) = websocket::Slot::take() else {
            let msg = format!(
                "{} WebSockets are open, the most airlock relays at once; try again when one closes",
                websocket::MAX_OPEN
            );
            return refused(StatusCode::SERVICE_UNAVAILABLE, "overloaded_error", msg).await;
        };
        return match runtime.execute_upgrade(caller, request, &offer).await {
            Ok(airlock_engine::Upgrade::Switched(open)) => {
                let guard = websocket::Guard {
                    runtime: runtime.clone(),
                    caller: caller.clone(),
                    capability: capability.to_string(),
                    frames,
                    slot,
                };
                switch(open, on_upgrade, guard)
            }
            Ok(airlock_engine::Upgrade::Answered(resp)) => streamed(resp),
            Err(e) => execute_error(&e),
        };
    }
    match runtime.execute_streaming(caller, request).await {
        Ok(resp) => streamed(resp),
        Err(e) => execute_error(&e),
    }
}

/// A streamed upstream answer as the door's response.
fn streamed(resp: airlock_engine::StreamingResponse) -> Response {
    let stream = resp
        .body
        .map(|chunk| chunk.map_err(|e| std::io::Error::other(e.to_string())));
    let mut out = Response::new(Body::from_stream(stream));
    *out.status_mut() = resp.status;
    *out.headers_mut() = resp.headers;
    out
}

/// The request path's error as the door's response.
fn execute_error(e: &ExecuteError) -> Response {
    let status = StatusCode::from_u16(e.http_status()).unwrap_or(StatusCode::BAD_GATEWAY);
    let kind = match (e, status.as_u16()) {
        (ExecuteError::Refused(_), _) => "permission_error",
        (_, 400..=499) => "invalid_request_error",
        (_, 502..=504) => "api_error",
        _ => "internal_error",
    };
    error(status, kind, &e.to_string())
}

/// Answers the agent's handshake with `101` and relays messages once its
/// connection is handed over.
fn switch(
    open: airlock_engine::WebSocketOpen,
    on_upgrade: hyper::upgrade::OnUpgrade,
    guard: websocket::Guard,
) -> Response {
    let mut out = Response::new(Body::empty());
    *out.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
    let headers = out.headers_mut();
    headers.insert(header::CONNECTION, HeaderValue::from_static("Upgrade"));
    headers.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
    headers.extend(open.headers.clone());
    tokio::spawn(async move {
        if let Ok(agent) = on_upgrade.await {
            websocket::relay(agent, open, guard).await;
        }
    });
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_token_comes_from_any_of_its_headers() {
        let with = |name: &'static str, value: &str| {
            let mut h = HeaderMap::new();
            h.insert(name, HeaderValue::from_str(value).unwrap());
            token(&h)
        };
        assert_eq!(
            with("authorization", "Bearer airlock_a").as_deref(),
            Some("airlock_a")
        );
        assert_eq!(with("x-api-key", "airlock_b").as_deref(), Some("airlock_b"));
        assert_eq!(
            with(
                "authorization",
                "AWS4-HMAC-SHA256 Credential=airlock_c/20260101/us-east-1/s3/aws4_request, SignedHeaders=host, Signature=00"
            )
            .as_deref(),
            Some("airlock_c")
        );
        assert_eq!(
            with("authorization", "AWS4-HMAC-SHA256 SignedHeaders=host"),
            None
        );
        assert_eq!(with("authorization", "Basic eDp5"), None);
    }
}
