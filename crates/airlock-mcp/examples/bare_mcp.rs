//! The MCP server's floor: a bare MCP server over stdio built from the parts
//! `airlock serve --agent NAME` is built from, and nothing else — the same MCP
//! SDK (rmcp, its tool router and JSON-RPC service loop), the same stdio streams
//! ([`airlock_mcp::std_streams`]: the pipes read and written by the serving
//! thread through the reactor), the same runtime (tokio's current-thread runtime,
//! as `serve` uses for stdio alone), the same HTTP client and pool settings as
//! the engine (reqwest, from [`airlock_engine::EngineConfig::client_builder`]
//! with its default timeouts) and the same result shape
//! (`{status, headers, body, body_base64}` as pretty JSON text). No identity, no
//! policy, no session, no audit record, no credential, no scrubbing, no front
//! door for malformed lines.
//!
//! `bench/mcp/run` measures it next to airlock when `bench/run` is given
//! `--bare-mcp PATH`, so that airlock's own cost per call is airlock's added
//! latency minus this one's (docs/benchmarks.md, section `mcp`).
//!
//! ```text
//! cargo run --release --example bare_mcp -p airlock-mcp -- http://127.0.0.1:UPSTREAM
//! ```
//! The tool `execute` takes airlock's arguments (`capability`, `method`, `path`,
//! `query`, `headers`, `body`, `reason`); `capability` and `reason` are ignored,
//! `path` is appended to `UPSTREAM`.
//!
//! With `--fsync FILE`, it is also the floor of `audit_fsync = "always"`: each
//! call appends a 400-byte line to `FILE` and fdatasyncs it before sending the
//! request (airlock's write-ahead decision record, synced on the serving thread
//! as airlock's stdio server does), then appends a second 400-byte line after the
//! answer (the outcome record, synced with the next call's). No hashing, no MAC,
//! no anchor, no lock: only the disk's part of a durable record.
#![forbid(unsafe_code)]
#![allow(clippy::print_stderr)]

use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::io::Write as _;
use std::sync::Arc;

use rmcp::handler::server::router::tool::ToolRouter;
use rmcp::handler::server::wrapper::Parameters;
use rmcp::model::{CallToolResult, ContentBlock};
use rmcp::{ErrorData, ServerHandler, ServiceExt, tool, tool_handler, tool_router};
use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::{Value, json};

/// airlock's `execute` arguments.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct ExecuteArgs {
    /// Ignored (airlock's capability).
    #[allow(dead_code)]
    capability: String,
    /// HTTP method.
    method: String,
    /// Path under the upstream, starting with "/"; may include "?query".
    path: String,
    /// Query parameters to add (strings).
    #[serde(default)]
    query: Option<BTreeMap<String, String>>,
    /// Request headers.
    #[serde(default)]
    headers: Option<BTreeMap<String, String>>,
    /// Request body, sent as is (a string) or as JSON.
    #[serde(default)]
    body: Option<Value>,
    /// Ignored (airlock records it).
    #[serde(default)]
    #[allow(dead_code)]
    reason: Option<String>,
}

#[derive(Clone)]
struct Bare {
    client: reqwest::Client,
    base: String,
    /// `--fsync FILE`, opened for appending.
    log: Option<Arc<File>>,
    tool_router: ToolRouter<Self>,
}

/// One record-sized line: airlock's decision and outcome records for this
/// call are about 400 bytes each.
const LINE: [u8; 400] = {
    let mut line = [b'x'; 400];
    line[399] = b'\n';
    line
};

/// Appends one line to the log, fdatasyncing it when `sync`.
fn append(log: Option<&Arc<File>>, sync: bool) -> std::io::Result<()> {
    if let Some(mut file) = log.map(|f| &**f) {
        file.write_all(&LINE)?;
        if sync {
            file.sync_data()?;
        }
    }
    Ok(())
}

fn failed(message: String) -> Result<CallToolResult, ErrorData> {
    Ok(CallToolResult::error(vec![ContentBlock::text(message)]))
}

#[tool_router]
impl Bare {
    #[tool(
        name = "execute",
        description = "Send an HTTP request to the upstream."
    )]
    async fn execute(
        &self,
        Parameters(args): Parameters<ExecuteArgs>,
    ) -> Result<CallToolResult, ErrorData> {
        let Ok(method) = args.method.parse::<reqwest::Method>() else {
            return failed(format!("bad method {}", args.method));
        };
        let mut url = format!("{}{}", self.base, args.path);
        for (i, (k, v)) in args.query.unwrap_or_default().iter().enumerate() {
            url.push(if i == 0 && !args.path.contains('?') {
                '?'
            } else {
                '&'
            });
            url.push_str(k);
            url.push('=');
            url.push_str(v);
        }
        if let Err(e) = append(self.log.as_ref(), true) {
            return failed(format!("log: {e}"));
        }
        let mut request = self.client.request(method, url);
        for (k, v) in args.headers.unwrap_or_default() {
            request = request.header(k, v);
        }
        match args.body {
            None | Some(Value::Null) => {}
            Some(Value::String(s)) => request = request.body(s),
            Some(other) => request = request.body(other.to_string()),
        }
        let resp = match request.send().await {
            Ok(r) => r,
            Err(e) => return failed(format!("upstream failed: {e}")),
        };
        let status = resp.status().as_u16();
        let headers: BTreeMap<String, String> = resp
            .headers()
            .iter()
            .map(|(k, v)| {
                let v = String::from_utf8_lossy(v.as_bytes()).into_owned();
                (k.as_str().to_string(), v)
            })
            .collect();
        let body = match resp.bytes().await {
            Ok(b) => String::from_utf8_lossy(&b).into_owned(),
            Err(e) => return failed(format!("upstream body: {e}")),
        };
        let value = json!({
            "status": status,
            "headers": headers,
            "body": body,
            "body_base64": false,
        });
        let text = serde_json::to_string_pretty(&value).unwrap_or_else(|_| value.to_string());
        if let Err(e) = append(self.log.as_ref(), false) {
            return failed(format!("log: {e}"));
        }
        Ok(CallToolResult::success(vec![ContentBlock::text(text)]))
    }
}

#[tool_handler(router = self.tool_router, name = "bare")]
impl ServerHandler for Bare {}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (upstream, log) = match args.as_slice() {
        [upstream] => (upstream, None),
        [upstream, flag, path] if flag == "--fsync" => {
            match OpenOptions::new().create(true).append(true).open(path) {
                Ok(file) => (upstream, Some(Arc::new(file))),
                Err(e) => {
                    eprintln!("bare_mcp: cannot open {path} for --fsync: {e}");
                    std::process::exit(2);
                }
            }
        }
        _ => {
            eprintln!("usage: bare_mcp UPSTREAM_URL [--fsync FILE] (e.g. http://127.0.0.1:9000)");
            std::process::exit(2);
        }
    };
    let client = airlock_engine::EngineConfig::default()
        .client_builder()
        .build()?;
    let server = Bare {
        client,
        base: upstream.trim_end_matches('/').to_string(),
        log,
        tool_router: Bare::tool_router(),
    };
    // `airlock serve` with stdio alone: the current-thread runtime.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async move {
        let running = server.serve(airlock_mcp::std_streams()).await?;
        running.waiting().await?;
        Ok::<(), Box<dyn std::error::Error>>(())
    })?;
    Ok(())
}
