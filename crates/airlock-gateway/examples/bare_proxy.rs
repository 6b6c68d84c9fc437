//! The gateway's floor: a bare reverse proxy built from the parts `airlock serve
//! --gateway` is built from, and nothing else — the same server
//! ([`airlock_gateway::listen::serve`]: hyper's HTTP/1.1 connection builder with
//! its timer, the connection table, the axum router), the same HTTP client and
//! connection pool (reqwest, from the engine's own
//! [`airlock_engine::EngineConfig::client_builder`] with its default timeouts),
//! the same runtime (tokio's multi-thread runtime, one worker per
//! core) and the same way of streaming the answer back (chunk by chunk). No
//! token check, no policy, no audit record, no credential, no scrubbing.
//!
//! `bench/gateway/run` measures it next to nginx and airlock, so that airlock's
//! own cost per request is airlock's minus this one's (docs/benchmarks.md,
//! section `gateway`).
//!
//! ```text
//! cargo run --release --example bare_proxy -p airlock-gateway -- 127.0.0.1:PORT http://127.0.0.1:UPSTREAM
//! ```
//! `http://127.0.0.1:PORT/<anything>/<path>` is forwarded to `UPSTREAM/<path>`
//! (the first path segment stands for the capability, as on the gateway).
#![forbid(unsafe_code)]
#![allow(clippy::print_stderr, clippy::print_stdout)]

use std::sync::Arc;

use airlock_engine::headers::HOP_BY_HOP;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::response::Response;
use bytes::Bytes;
use http::{HeaderMap, StatusCode, header};

/// `Host` and the headers the gateway takes the agent token from: never
/// forwarded, nor are the engine's hop-by-hop headers.
const TOKEN_HEADERS: [&str; 4] = ["host", "authorization", "x-api-key", "api-key"];

struct Upstream {
    client: reqwest::Client,
    base: String,
}

fn copy_headers(from: &HeaderMap, to: &mut HeaderMap) {
    for (name, value) in from {
        let name_str = name.as_str();
        if !HOP_BY_HOP.contains(&name_str) && !TOKEN_HEADERS.contains(&name_str) {
            to.append(name.clone(), value.clone());
        }
    }
}

fn bad_gateway(e: &reqwest::Error) -> Response {
    let mut out = Response::new(Body::from(format!("upstream failed: {e}")));
    *out.status_mut() = StatusCode::BAD_GATEWAY;
    out
}

async fn forward(State(up): State<Arc<Upstream>>, req: Request) -> Response {
    let (parts, body) = req.into_parts();
    // /<capability>/<rest>: the first segment is dropped, like the gateway does.
    let raw = parts.uri.path();
    let trimmed = raw.strip_prefix('/').unwrap_or(raw);
    let rest = trimmed.split_once('/').map_or("", |(_, r)| r);
    let url = match parts.uri.query() {
        Some(q) => format!("{}/{rest}?{q}", up.base),
        None => format!("{}/{rest}", up.base),
    };
    let body = match axum::body::to_bytes(body, 32 << 20).await {
        Ok(b) => b,
        Err(e) => {
            let mut out = Response::new(Body::from(format!("request body: {e}")));
            *out.status_mut() = StatusCode::BAD_REQUEST;
            return out;
        }
    };
    let mut request = match url.parse() {
        Ok(u) => reqwest::Request::new(parts.method.clone(), u),
        Err(_) => {
            let mut out = Response::new(Body::from("bad target"));
            *out.status_mut() = StatusCode::BAD_REQUEST;
            return out;
        }
    };
    copy_headers(&parts.headers, request.headers_mut());
    if !body.is_empty() {
        *request.body_mut() = Some(reqwest::Body::from(body));
    }
    let resp = match up.client.execute(request).await {
        Ok(r) => r,
        Err(e) => return bad_gateway(&e),
    };
    let status = resp.status();
    let mut headers = HeaderMap::new();
    copy_headers(resp.headers(), &mut headers);
    headers.remove(header::CONTENT_LENGTH);
    // The body streams back as it arrives, chunk by chunk, like the gateway's.
    let stream = futures_util::stream::unfold(Some(resp), |state| async move {
        let mut resp = state?;
        match resp.chunk().await {
            Ok(Some(chunk)) => Some((Ok::<Bytes, std::io::Error>(chunk), Some(resp))),
            Ok(None) => None,
            Err(e) => Some((Err(std::io::Error::other(e.to_string())), None)),
        }
    });
    let mut out = Response::new(Body::from_stream(stream));
    *out.status_mut() = status;
    *out.headers_mut() = headers;
    out
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [listen, upstream] = args.as_slice() else {
        eprintln!(
            "usage: bare_proxy LISTEN_ADDR UPSTREAM_URL (e.g. 127.0.0.1:8080 http://127.0.0.1:9000)"
        );
        std::process::exit(2);
    };
    let client = airlock_engine::EngineConfig::default()
        .client_builder()
        .build()?;
    let up = Arc::new(Upstream {
        client,
        base: upstream.trim_end_matches('/').to_string(),
    });
    // `airlock serve` with a network door: tokio's multi-thread runtime, one
    // worker per core.
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async move {
        let app = axum::Router::new().fallback(forward).with_state(up);
        airlock_gateway::listen::serve_on(listen, app, |addr| {
            println!("bare proxy listening on http://{addr}");
        })
        .await
    })?;
    Ok(())
}
