//! airlock's HTTP gateway (DESIGN.md §6): a plain HTTP/1.1 reverse proxy for tools
//! and SDKs that do not speak MCP. A stock SDK changes only its base URL
//! (`http://ADDR/<capability>`) and its key (an agent token).
//!
//! `http://ADDR/<capability>/<path>?<query>` → the agent token is taken from
//! `Authorization: Bearer`, `x-api-key` or `api-key` and removed; the request goes
//! through exactly the same runtime as MCP `execute` — normalization, policy,
//! sessions per token, injection, scrubbing, audit — and the answer streams back
//! (chunked and SSE bodies pass through as they arrive, scrubbed, including a
//! secret split across chunks). Nothing here decides anything.
//!
//! Errors are JSON, shaped so both the OpenAI and the Anthropic SDKs read the
//! message: `{"type": "error", "error": {"type": …, "message": …}}` with 400 for a
//! malformed request, 401 for a missing/unknown/expired/revoked token, 403 for a
//! policy refusal, 413 for a body over the limit, 502/504 for an upstream failure.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

use std::net::SocketAddr;
use std::sync::Arc;

use airlock_broker::{ExecuteError, ExecuteRequest, Runtime};
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use futures_util::StreamExt;

/// Headers that may carry the agent token; all are removed before forwarding.
const TOKEN_HEADERS: [&str; 3] = ["authorization", "x-api-key", "api-key"];
/// An optional header with the agent's reason (for `requires_reason`); removed
/// before forwarding.
pub const REASON_HEADER: &str = "x-airlock-reason";
/// The largest request body the gateway reads (the engine applies each
/// service's own, smaller or larger, limit afterwards).
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

/// Serves the gateway on `addr` until the process stops; `ready` gets the bound
/// address (useful with port 0).
pub async fn serve_gateway(
    runtime: Arc<Runtime>,
    addr: &str,
    ready: impl FnOnce(SocketAddr),
) -> Result<(), GatewayError> {
    let app = axum::Router::new().fallback(handle).with_state(runtime);
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|e| GatewayError::Bind {
            addr: addr.to_string(),
            detail: e.to_string(),
        })?;
    let local = listener
        .local_addr()
        .map_err(|e| GatewayError::Serve(e.to_string()))?;
    ready(local);
    axum::serve(listener, app)
        .await
        .map_err(|e| GatewayError::Serve(e.to_string()))
}

fn error(status: StatusCode, kind: &str, message: &str) -> Response {
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

/// The agent token from the request's headers.
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
    }
    ["x-api-key", "api-key"]
        .iter()
        .find_map(|h| headers.get(*h).and_then(|v| v.to_str().ok()))
        .map(|v| v.trim().to_string())
}

async fn handle(State(runtime): State<Arc<Runtime>>, req: Request) -> Response {
    let (parts, body) = req.into_parts();
    // An absolute-form target (`GET http://elsewhere/… HTTP/1.1`) would make this a
    // forward proxy: refused.
    if parts.uri.scheme().is_some() || parts.uri.authority().is_some() {
        return error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "absolute-form request targets are refused: send the path only (http://ADDR/<capability>/<path>)",
        );
    }
    let Some(presented) = token(&parts.headers) else {
        let in_query = parts.uri.query().is_some_and(|q| q.contains("airlock_"));
        let msg = if in_query {
            "agent tokens are not accepted in the query string (they end up in logs); send `Authorization: Bearer <token>`"
        } else {
            "no agent token: send it as `Authorization: Bearer <token>`, `x-api-key` or `api-key` (issue one with `airlock token issue --agent NAME`)"
        };
        runtime.audit_token_refusal(parts.method.as_str(), parts.uri.path(), msg);
        return error(StatusCode::UNAUTHORIZED, "authentication_error", msg);
    };
    let caller = match runtime.authenticate(&presented) {
        Ok(c) => c,
        Err(e) => {
            return error(
                StatusCode::UNAUTHORIZED,
                "authentication_error",
                &e.to_string(),
            );
        }
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
        return error(
            StatusCode::NOT_FOUND,
            "not_found_error",
            "no capability in the path: use http://ADDR/<capability>/<path>",
        );
    }
    let path = match parts.uri.query() {
        Some(q) => format!("{rest}?{q}"),
        None => rest,
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
        Err(e) => return error(StatusCode::BAD_REQUEST, "invalid_request", &e.to_string()),
    };
    let body = match axum::body::to_bytes(body, MAX_BODY).await {
        Ok(b) => b,
        Err(_) => {
            return error(
                StatusCode::PAYLOAD_TOO_LARGE,
                "request_too_large",
                &format!("request body over the gateway's {MAX_BODY}-byte limit"),
            );
        }
    };
    let request = ExecuteRequest {
        capability: capability.to_string(),
        method: parts.method.as_str().to_string(),
        path,
        query: Vec::new(),
        headers,
        body: (!body.is_empty()).then(|| body.to_vec()),
        reason,
    };
    match runtime.execute_streaming(&caller, request).await {
        Ok(resp) => {
            let stream = resp
                .body
                .map(|chunk| chunk.map_err(|e| std::io::Error::other(e.to_string())));
            let mut out = Response::new(Body::from_stream(stream));
            *out.status_mut() = resp.status;
            *out.headers_mut() = resp.headers;
            out
        }
        Err(e) => {
            let status = StatusCode::from_u16(e.http_status()).unwrap_or(StatusCode::BAD_GATEWAY);
            let kind = match (&e, status.as_u16()) {
                (ExecuteError::Refused(_), _) => "permission_error",
                (_, 400..=499) => "invalid_request_error",
                (_, 502..=504) => "api_error",
                _ => "internal_error",
            };
            error(status, kind, &e.to_string())
        }
    }
}
