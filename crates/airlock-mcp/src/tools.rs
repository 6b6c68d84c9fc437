//! The MCP tools.

use std::collections::BTreeMap;
use std::sync::Arc;

use airlock_broker::{Caller, ExecRequest, ExecuteError, ExecuteRequest, Runtime};
use rmcp::handler::server::router::tool::ToolRouter;
use rmcp::handler::server::wrapper::Parameters;
use rmcp::model::{CallToolResult, ContentBlock};
use rmcp::service::RequestContext;
use rmcp::{ErrorData, RoleServer, ServerHandler, tool, tool_handler, tool_router};
use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::{Value, json};

/// Where a call's identity comes from.
#[derive(Debug, Clone)]
pub(crate) enum Identity {
    /// One connection (stdio): the caller is fixed for its lifetime.
    Fixed(Caller),
    /// HTTP: each request carries a token; the auth layer puts the [`Caller`] in
    /// the request's extensions.
    PerRequest,
}

/// The airlock MCP server for one connection.
#[derive(Clone)]
pub struct AirlockMcp {
    runtime: Arc<Runtime>,
    identity: Identity,
    tool_router: ToolRouter<Self>,
}

impl std::fmt::Debug for AirlockMcp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AirlockMcp")
            .field("identity", &self.identity)
            .finish_non_exhaustive()
    }
}

/// Arguments of `execute`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct ExecuteArgs {
    /// The capability to use, as listed by list_services (for example "stripe").
    capability: String,
    /// HTTP method: GET, POST, PUT, PATCH, DELETE, HEAD or OPTIONS.
    method: String,
    /// Path under the service's base URL, starting with "/", e.g. "/v1/customers". May include "?query".
    path: String,
    /// Query parameters to add, e.g. {"limit": "10"}.
    #[serde(default)]
    query: Option<BTreeMap<String, Value>>,
    /// Extra request headers, e.g. {"Content-Type": "application/json"}. Credentials are added by airlock; never send your own.
    #[serde(default)]
    headers: Option<BTreeMap<String, String>>,
    /// Request body: a string is sent as is; any other JSON value is sent as JSON.
    #[serde(default)]
    body: Option<Value>,
    /// Why you are making this call (required by some capabilities; always recorded in the audit log).
    #[serde(default)]
    reason: Option<String>,
}

/// Arguments of `exec`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct ExecArgs {
    /// The exec capability to use, as listed by list_services (mode "exec"), e.g. "gh".
    capability: String,
    /// The program and its arguments as an array, e.g. ["gh", "pr", "list"]. No shell: pipes, redirections and $VARS are not interpreted. The program must be one the capability allows (see list_services).
    command: Vec<String>,
    /// Working directory; must lie inside one of the capability's workdirs (a relative path is taken from the first one). Omit it to use the default.
    #[serde(default)]
    cwd: Option<String>,
    /// Text written to the program's standard input (otherwise it reads nothing).
    #[serde(default)]
    stdin: Option<String>,
    /// Why you are running this command (required by some capabilities; always recorded in the audit log).
    #[serde(default)]
    reason: Option<String>,
}

/// Arguments of `explain_access`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct ExplainArgs {
    /// The capability to explain.
    capability: String,
    /// A method to test, e.g. "POST".
    #[serde(default)]
    method: Option<String>,
    /// A path to test, e.g. "/v1/charges".
    #[serde(default)]
    path: Option<String>,
}

fn text(v: &Value) -> ContentBlock {
    ContentBlock::text(serde_json::to_string_pretty(v).unwrap_or_else(|_| v.to_string()))
}

fn tool_error(message: impl Into<String>) -> CallToolResult {
    CallToolResult::error(vec![ContentBlock::text(message.into())])
}

impl AirlockMcp {
    pub(crate) fn new(runtime: Arc<Runtime>, identity: Identity) -> AirlockMcp {
        AirlockMcp {
            runtime,
            identity,
            tool_router: Self::tool_router() + Self::attenuate_router(),
        }
    }

    /// The caller of this request: the connection's, with the client's declared
    /// name filled in, or the one the HTTP auth layer attached.
    fn caller(&self, ctx: &RequestContext<RoleServer>) -> Option<Caller> {
        match &self.identity {
            Identity::Fixed(c) => {
                let mut c = c.clone();
                c.declared = ctx.client_info().map(|i| i.name);
                c.approver = Some(Arc::new(ElicitApprover {
                    peer: ctx.peer.clone(),
                }));
                Some(c)
            }
            Identity::PerRequest => ctx
                .extensions
                .get::<::http::request::Parts>()
                .and_then(|p| p.extensions.get::<Caller>())
                .cloned()
                .map(|mut c| {
                    c.declared = ctx.client_info().map(|i| i.name);
                    c.approver = Some(Arc::new(ElicitApprover {
                        peer: ctx.peer.clone(),
                    }));
                    c
                }),
        }
    }
}

/// The form a person answers when a request needs approval.
#[derive(Debug, serde::Serialize, Deserialize, JsonSchema)]
pub(crate) struct ApprovalForm {
    /// Approve this request?
    approve: bool,
}

rmcp::elicit_safe!(ApprovalForm);

/// Asks the person at the MCP client through elicitation (form mode).
struct ElicitApprover {
    peer: rmcp::Peer<RoleServer>,
}

impl airlock_broker::Approver for ElicitApprover {
    fn ask(
        &self,
        message: String,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = Option<bool>> + Send + '_>> {
        Box::pin(async move {
            match self.peer.elicit::<ApprovalForm>(message).await {
                Ok(Some(form)) => Some(form.approve),
                Err(rmcp::service::ElicitationError::UserDeclined) => Some(false),
                // Unsupported, cancelled, no content, transport trouble: the CLI
                // can still answer.
                _ => None,
            }
        })
    }
}

/// Turns a JSON query value into the string that is sent; `None` for an array,
/// an object or null.
fn query_value(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

#[tool_router(router = tool_router)]
impl AirlockMcp {
    #[tool(
        name = "list_services",
        description = "List the capabilities you may use through airlock: for each, its name, the service's base URL, mode, allowed and denied rules, session TTL and whether a reason or approval is required. Mode \"http\" capabilities are used with `execute`; mode \"exec\" capabilities with `exec`, and list the programs they allow (exec.programs), the directories commands may run in (exec.workdirs) and the time limit. Call this first. You never need (and never get) the API keys: airlock adds them."
    )]
    async fn list_services(
        &self,
        ctx: RequestContext<RoleServer>,
    ) -> Result<CallToolResult, ErrorData> {
        let Some(caller) = self.caller(&ctx) else {
            return Ok(tool_error("no agent identity for this request"));
        };
        let broker = self.runtime.fresh_broker().await;
        let config = broker.config();
        let exec = broker.exec_policies();
        let caps: Vec<Value> = broker
            .visible(&caller)
            .iter()
            .map(|c| {
                let url = config
                    .services
                    .get(&c.service)
                    .map(|s| s.url.as_str().trim_end_matches('/').to_string());
                let mut v = json!({
                    "capability": c.name,
                    "service": c.service,
                    "base_url": url,
                    "mode": if c.mode == airlock_config::Mode::Http { "http" } else { "exec" },
                    "rules": c.rules.describe(),
                    "ttl_seconds": c.ttl.as_secs(),
                    "requires_reason": c.requires_reason,
                    "approval": c.approval != airlock_config::Approval::Never,
                    "rate": c.rate.map(|r| r.to_string()),
                });
                if let Some(until) = c.learn_until {
                    // Learning is loud, to the agent too: what it does now is
                    // recorded to write this capability's rules.
                    v["learning_until"] = json!(until.to_string());
                    v["learning"] = json!(c.learning_at(jiff::Timestamp::now()));
                }
                if let Some(policy) = exec.get(&c.name) {
                    v["exec"] = match policy {
                        Ok(p) => json!({
                            "programs": p.programs().iter().map(|a| json!({
                                "name": a.name,
                                "path": a.canonical.display().to_string(),
                            })).collect::<Vec<_>>(),
                            "workdirs": p.workdirs().iter().map(|w| w.display().to_string()).collect::<Vec<_>>(),
                            "timeout_seconds": p.timeout().as_secs(),
                            // What the kernel sandbox lets the program reach, so
                            // an agent can tell a refusal from a bug.
                            "sandbox": match p.sandbox() {
                                Some(sb) => json!({
                                    "confined": true,
                                    "writable": "the workdirs and a private HOME/TMPDIR",
                                    "network": sb.network().as_str(),
                                }),
                                None => json!({ "confined": false }),
                            },
                        }),
                        Err(problem) => json!({ "unavailable": problem.to_string() }),
                    };
                }
                v
            })
            .collect();
        Ok(CallToolResult::success(vec![text(
            &json!({ "capabilities": caps }),
        )]))
    }

    #[tool(
        name = "execute",
        description = "Call an HTTP API through airlock. airlock checks the request against the owner's policy, adds the credential, sends it to the capability's service and returns {status, headers, body} (body_base64 is true when the body is binary and base64-encoded). The path is relative to the service's base URL. A refused request returns an error that names the check and the rule."
    )]
    async fn execute(
        &self,
        Parameters(args): Parameters<ExecuteArgs>,
        ctx: RequestContext<RoleServer>,
    ) -> Result<CallToolResult, ErrorData> {
        let Some(caller) = self.caller(&ctx) else {
            return Ok(tool_error("no agent identity for this request"));
        };
        let mut query = Vec::new();
        for (k, v) in args.query.unwrap_or_default() {
            match query_value(&v) {
                Some(s) => query.push((k, s)),
                None => {
                    return Ok(tool_error(format!(
                        "query parameter \"{k}\": query values must be strings, numbers or booleans"
                    )));
                }
            }
        }
        let mut headers: Vec<(String, String)> =
            args.headers.unwrap_or_default().into_iter().collect();
        let body = match args.body {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) => Some(s.into_bytes()),
            Some(other) => {
                if !headers
                    .iter()
                    .any(|(k, _)| k.eq_ignore_ascii_case("content-type"))
                {
                    headers.push(("Content-Type".into(), "application/json".into()));
                }
                Some(other.to_string().into_bytes())
            }
        };
        let req = ExecuteRequest {
            capability: args.capability,
            method: args.method,
            path: args.path,
            query,
            headers,
            body,
            reason: args.reason,
        };
        match self.runtime.execute(&caller, req).await {
            Ok(resp) => Ok(CallToolResult::success(vec![text(&json!({
                "status": resp.status,
                "headers": resp.headers.into_iter().collect::<BTreeMap<_, _>>(),
                "body": resp.body,
                "body_base64": resp.body_base64,
            }))])),
            Err(ExecuteError::Refused(r)) => Ok(tool_error(r.to_string())),
            Err(e) => Ok(tool_error(e.to_string())),
        }
    }

    #[tool(
        name = "exec",
        description = "Run a command-line program through an exec capability (mode \"exec\" in list_services). airlock checks the program against the capability's allow-list, refuses arguments that would run another program (e.g. git -c alias…, --upload-pack), runs it without a shell, with the credential in its environment only, and returns {exit_code, stdout, stderr, truncated, timed_out}. Any secret in the output is replaced by [REDACTED:<name>]. `command` is an array: [\"gh\", \"pr\", \"list\"]. A refused command returns an error that names the check (program, argument, cwd, agent, session, reason, rate)."
    )]
    async fn exec(
        &self,
        Parameters(args): Parameters<ExecArgs>,
        ctx: RequestContext<RoleServer>,
    ) -> Result<CallToolResult, ErrorData> {
        let Some(caller) = self.caller(&ctx) else {
            return Ok(tool_error("no agent identity for this request"));
        };
        let req = ExecRequest {
            capability: args.capability,
            command: args.command,
            cwd: args.cwd,
            stdin: args.stdin.map(String::into_bytes),
            reason: args.reason,
        };
        match self.runtime.exec(&caller, req).await {
            Ok(outcome) => Ok(CallToolResult::success(vec![text(&outcome.to_json())])),
            Err(e) => Ok(tool_error(e.to_string())),
        }
    }

    #[tool(
        name = "whoami",
        description = "Show the agent identity airlock sees for you (and whether the owner set it, which is what capability `agents` lists match), and the capabilities you may use."
    )]
    async fn whoami(&self, ctx: RequestContext<RoleServer>) -> Result<CallToolResult, ErrorData> {
        let Some(caller) = self.caller(&ctx) else {
            return Ok(tool_error("no agent identity for this request"));
        };
        let caps: Vec<String> = self
            .runtime
            .fresh_broker()
            .await
            .visible(&caller)
            .into_iter()
            .map(|c| c.name)
            .collect();
        Ok(CallToolResult::success(vec![text(&json!({
            "agent": caller.agent(),
            "trusted": caller.is_trusted(),
            "trusted_identity": caller.trusted,
            "declared_name": caller.declared,
            "capabilities": caps,
        }))]))
    }

    #[tool(
        name = "explain_access",
        description = "Explain, step by step, whether a request would be allowed and why: identity, capability, session, method, path normalization, the matching allow/deny rule, reason, approval and rate requirements. Give a capability, and optionally a method and path to test. Does not send anything."
    )]
    async fn explain_access(
        &self,
        Parameters(args): Parameters<ExplainArgs>,
        ctx: RequestContext<RoleServer>,
    ) -> Result<CallToolResult, ErrorData> {
        let Some(caller) = self.caller(&ctx) else {
            return Ok(tool_error("no agent identity for this request"));
        };
        let steps = self.runtime.fresh_broker().await.explain(
            &caller,
            &args.capability,
            args.method.as_deref(),
            args.path.as_deref(),
        );
        Ok(CallToolResult::success(vec![ContentBlock::text(
            steps.join("\n"),
        )]))
    }
}

#[tool_handler(
    router = self.tool_router,
    name = "airlock",
    instructions = "airlock lets you call APIs and run command-line tools without holding their keys. Call list_services to see what you may use. For an HTTP capability, call execute with a capability, method and path; for an exec capability, call exec with a capability and a command array. airlock adds the credential, enforces the owner's policy, scrubs secrets from what comes back and records every call. Use explain_access when a call is refused."
)]
impl ServerHandler for AirlockMcp {}
