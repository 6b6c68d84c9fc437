//! MCP over streamable HTTP (`airlock serve --http ADDR`), behind agent tokens.
//! Served by [`airlock_gateway::listen`], like the gateway: a request head must
//! arrive within 10 s (idle connections close after 10 s), a request body may not
//! stall for 30 s, and the process keeps at most 512 connections across its doors.

use std::net::SocketAddr;
use std::sync::Arc;

use airlock_broker::Runtime;
use axum::extract::{Request, State};
use axum::http::StatusCode;
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
    /// Browser origins allowed to call (default none: any request carrying an
    /// `Origin` header is refused, which stops web pages from reaching a local
    /// server through the user's browser).
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
    let mut config = StreamableHttpServerConfig::default()
        .with_max_request_body_bytes(opts.max_body_bytes)
        .with_allowed_origins(opts.allowed_origins.clone());
    if opts.allowed_origins.is_empty() {
        config = config.enforce_origin_validation();
    }
    let rt = runtime.clone();
    let service = StreamableHttpService::new(
        move || Ok(AirlockMcp::new(rt.clone(), Identity::PerRequest)),
        Arc::new(LocalSessionManager::default()),
        config,
    );
    let app = axum::Router::new()
        .nest_service("/mcp", service)
        .layer(middleware::from_fn_with_state(runtime, authenticate));
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|e| McpError::Bind {
            addr: addr.to_string(),
            detail: e.to_string(),
        })?;
    let local = listener
        .local_addr()
        .map_err(|e| McpError::Transport(e.to_string()))?;
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
    match runtime.authenticate(&presented) {
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
