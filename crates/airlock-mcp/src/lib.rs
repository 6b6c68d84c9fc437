//! airlock's MCP server (DESIGN.md §5): the tools `list_services`, `execute`,
//! `exec`, `whoami` and `explain_access`, over stdio or streamable HTTP, on the official
//! `rmcp` SDK. rmcp's API changes every few months, so it stays inside this crate.
//!
//! This crate decides nothing: it turns MCP calls into [`airlock_broker`] calls and
//! the answers back into tool results. Refusals are tool errors (`isError: true`)
//! whose text names the check and the rule.
//!
//! Identity: over stdio, the trusted identity is what the owner wrote into the MCP
//! client's config (`airlock serve --agent NAME`); the client's `clientInfo.name` is
//! recorded as declared, never trusted. Over HTTP every request must carry an agent
//! token (`Authorization: Bearer`), whose agent is the trusted identity and whose
//! id is the session grant.
#![forbid(unsafe_code)]
#![deny(missing_docs)]
#![cfg_attr(test, allow(clippy::unwrap_used))]

mod attenuate;
mod http;
mod stdio;
mod tools;

pub use http::{HttpOptions, serve_http};
pub use stdio::{MAX_LINE, std_streams};
pub use tools::AirlockMcp;

use std::sync::Arc;

use airlock_broker::{Caller, Runtime};

/// Errors starting or running a server.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum McpError {
    /// The transport failed (stdio closed abnormally, socket error…).
    #[error("MCP transport error: {0}")]
    Transport(String),
    /// The HTTP listener could not be bound.
    #[error("cannot listen on {addr}: {detail}; pick another address with --http HOST:PORT")]
    Bind {
        /// The address asked for.
        addr: String,
        /// Why.
        detail: String,
    },
}

/// Serves MCP over stdin/stdout until the client disconnects. stdout carries only
/// the protocol; nothing else in the process may write to it. A stdin line that is
/// not JSON gets a JSON-RPC `-32700` error, one over [`MAX_LINE`] a `-32600`.
pub async fn serve_stdio(runtime: Arc<Runtime>, agent: Option<String>) -> Result<(), McpError> {
    use rmcp::ServiceExt;
    let server = AirlockMcp::new(runtime, tools::Identity::Fixed(Caller::connection(agent)));
    // A line rmcp would drop in silence (not JSON, too long) gets its JSON-RPC
    // error instead; see `stdio`.
    let (input, output) = stdio::std_streams();
    let (transport, door) = stdio::transport(input, output);
    let running = server
        .serve(transport)
        .await
        .map_err(|e| McpError::Transport(e.to_string()))?;
    let ended = running
        .waiting()
        .await
        .map_err(|e| McpError::Transport(e.to_string()));
    door.await;
    ended?;
    Ok(())
}
