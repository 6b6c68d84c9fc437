//! The MCP tool `attenuate_token`: a narrower agent token, made from the
//! caller's own (MCP over HTTP) or from one it passes — the same offline
//! computation as `airlock token attenuate` ([`airlock_broker::attenuate`]).

use rmcp::handler::server::wrapper::Parameters;
use rmcp::model::{CallToolResult, ContentBlock};
use rmcp::service::RequestContext;
use rmcp::{ErrorData, RoleServer, tool, tool_router};
use schemars::JsonSchema;
use serde::Deserialize;

use crate::tools::AirlockMcp;

/// Arguments of `attenuate_token`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct AttenuateArgs {
    /// The agent token to narrow. Omit it to narrow the token this request was made with (MCP over HTTP), so it never has to appear in a tool call.
    #[serde(default)]
    token: Option<String>,
    /// The capabilities the new token may use, e.g. ["github"] (it can never use one its parent cannot).
    #[serde(default)]
    capabilities: Vec<String>,
    /// Allow rules in the capability rule syntax, e.g. ["GET /repos/acme/x/**"]: a request must match one of them and its capability's own rules. A token with allow rules cannot run programs (exec).
    #[serde(default)]
    allow: Vec<String>,
    /// How long the new token works, e.g. "10m" (never longer than its parent).
    #[serde(default)]
    ttl: Option<String>,
}

/// The bearer token of the HTTP request this tool call came in (MCP over HTTP).
fn own_token(ctx: &RequestContext<RoleServer>) -> Option<String> {
    let parts = ctx.extensions.get::<::http::request::Parts>()?;
    let value = parts
        .headers
        .get(::http::header::AUTHORIZATION)?
        .to_str()
        .ok()?;
    value
        .strip_prefix("Bearer ")
        .or_else(|| value.strip_prefix("bearer "))
        .map(|t| t.trim().to_string())
}

fn tool_error(message: impl Into<String>) -> CallToolResult {
    CallToolResult::error(vec![ContentBlock::text(message.into())])
}

#[tool_router(router = attenuate_router, vis = "pub(crate)")]
impl AirlockMcp {
    #[tool(
        name = "attenuate_token",
        description = "Make a narrower agent token to hand to a sub-agent: limited to some capabilities, to allow rules such as \"GET /repos/acme/x/**\", and/or to a shorter ttl such as \"10m\". The new token can do only a subset of what its parent can, never outlives it, and stops working when the owner revokes the parent. Without `token`, narrows the token of this connection (MCP over HTTP). Returns {token, root, caveats, expires}."
    )]
    async fn attenuate_token(
        &self,
        Parameters(args): Parameters<AttenuateArgs>,
        ctx: RequestContext<RoleServer>,
    ) -> Result<CallToolResult, ErrorData> {
        let Some(parent) = args.token.or_else(|| own_token(&ctx)) else {
            return Ok(tool_error(
                "no token to narrow: this connection was not made with an agent token (MCP over stdio); pass `token`",
            ));
        };
        let ttl = match args.ttl.as_deref().map(airlock_config::parse_duration) {
            None => None,
            Some(Ok(d)) => Some(d),
            Some(Err(e)) => return Ok(tool_error(format!("ttl: {e}"))),
        };
        match airlock_broker::attenuate::narrow(&parent, &args.capabilities, &args.allow, ttl) {
            Ok(narrowed) => Ok(CallToolResult::success(vec![ContentBlock::text(
                narrowed.to_json().to_string(),
            )])),
            Err(e) => Ok(tool_error(e.to_string())),
        }
    }
}
