//! `exec`: the request path around a child process instead of an upstream
//! request — decide ([`Runtime::decide`], with the capability's exec policy) →
//! write-ahead audit → the secret read and the child started (its environment
//! prepared on the blocking pool) → its output scrubbed of every vault secret →
//! outcome record.

use std::time::Instant;

use airlock_audit::{Decision as AuditDecision, Event, Kind};
use airlock_engine::scrub::Scrubber;
use airlock_exec::{Output, Stdin};

use super::approve::Approvable;
use super::request::ExecuteError;
use super::{Runtime, agent_event};
use crate::approval::Ask;
use crate::{AuthorizedExec, Broker, Caller, ExecAgentRequest, Refusal, SessionId};

/// The egress proxy exec children with `inject = "placeholder"` use
/// (implemented by `airlock-proxy`; docs/proxy.md).
pub trait ChildEgress: Send + Sync {
    /// Opens a session for one child of `caller` (already limited to the exec
    /// capability) that reaches `service`: a placeholder for the service's
    /// secret, and the proxy's address, token and CA. The session ends when
    /// the returned [`ChildProxy`] is dropped.
    fn open<'a>(
        &'a self,
        caller: Caller,
        service: &'a airlock_config::Service,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = Result<ChildProxy, String>> + Send + 'a>>;
}

/// One exec child's way out: what goes in its environment, and the sandbox's
/// opening.
pub struct ChildProxy {
    /// What stands for the secret where the capability's `env` says `{{secret}}`.
    pub placeholder: String,
    /// Proxy and CA variables for the child.
    pub env: Vec<(String, std::ffi::OsString)>,
    /// The proxy's loopback port (the only TCP connection the sandbox allows).
    pub port: u16,
    /// The directory of the CA files (readable in the sandbox).
    pub dir: std::path::PathBuf,
    /// Ends the session when dropped.
    pub guard: Box<dyn Send + Sync>,
}

impl std::fmt::Debug for ChildProxy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChildProxy")
            .field("port", &self.port)
            .finish_non_exhaustive()
    }
}

/// One `exec` call as the agent gave it.
#[derive(Debug, Clone, Default)]
pub struct ExecRequest {
    /// Capability name (a `mode = "exec"` capability).
    pub capability: String,
    /// The program and its arguments.
    pub command: Vec<String>,
    /// Working directory (inside the capability's `workdirs`).
    pub cwd: Option<String>,
    /// Bytes for the child's stdin (`/dev/null` when `None`).
    pub stdin: Option<Vec<u8>>,
    /// The agent's reason.
    pub reason: Option<String>,
}

/// How an allowed program ran: its exit and its output, scrubbed of every vault
/// secret and capped.
#[derive(Debug, Clone)]
pub struct ExecOutcome {
    /// Exit, scrubbed stdout and stderr, truncation flags.
    pub output: Output,
    /// The session the call belongs to.
    pub session: SessionId,
}

impl ExecOutcome {
    /// The `exec` tool's result: `{exit_code, stdout, stderr, truncated, timed_out}`.
    pub fn to_json(&self) -> serde_json::Value {
        self.output.to_json()
    }
}

/// An `exec` request as the broker decides it. Agent-chosen text is shown (to
/// the person, in the records) scrubbed, like everything the agent gets back.
struct ExecCall<'a> {
    req: &'a ExecRequest,
    agent_req: ExecAgentRequest,
    scrubber: &'a Scrubber,
}

impl ExecCall<'_> {
    fn shown(&self, s: &str) -> String {
        String::from_utf8_lossy(&self.scrubber.scrub(s.as_bytes())).into_owned()
    }

    /// The program as the records name it before the broker resolved it.
    fn program(&self) -> String {
        self.req
            .command
            .first()
            .map(|p| self.shown(p))
            .unwrap_or_default()
    }
}

impl Approvable for ExecCall<'_> {
    type Authorized = AuthorizedExec;

    fn authorize(
        &self,
        broker: &Broker,
        caller: &Caller,
        approved: bool,
    ) -> Result<AuthorizedExec, Refusal> {
        let req = ExecAgentRequest {
            approved,
            ..self.agent_req.clone()
        };
        broker.authorize_exec(caller, &req)
    }

    fn ask(&self, _broker: &Broker, caller: &Caller) -> Result<(Ask, String), Refusal> {
        let req = self.req;
        let (body_bytes, body_sha256) = Ask::body_digest(req.stdin.as_deref());
        let ask = Ask {
            agent: caller.agent(),
            agent_trusted: caller.is_trusted(),
            capability: req.capability.clone(),
            method: "EXEC".into(),
            path: self.shown(&command_line(&req.command)),
            url: None,
            cwd: req.cwd.as_deref().map(|c| self.shown(c)),
            headers: Vec::new(),
            body_bytes,
            body_sha256,
            reason: req.reason.clone(),
        };
        Ok((ask, self.program()))
    }

    /// The request is borrowed, unchanged, from before it was shown until the
    /// child starts: what runs is what was shown.
    fn to_send(&self, _authorized: &AuthorizedExec, _caller: &Caller) -> Option<Ask> {
        None
    }
}

impl Runtime {
    /// Decides, audits and runs one `exec` call: the broker's checks (identity,
    /// visibility, session, the capability's exec policy, reason, approval, rate),
    /// then the allowed program with the capability's secret in its environment
    /// only, its output scrubbed of every vault secret. The decision is recorded
    /// before the child starts (if it cannot be, nothing runs); the outcome
    /// (exit code, duration, bytes) before it is returned, and if that record
    /// cannot be written, the call fails.
    pub async fn exec(
        &self,
        caller: &Caller,
        req: ExecRequest,
    ) -> Result<ExecOutcome, ExecuteError> {
        let started = Instant::now();
        self.fresh().await;
        let scrubber = self.live.scrubber();
        let call = ExecCall {
            req: &req,
            agent_req: ExecAgentRequest {
                capability: req.capability.clone(),
                command: req.command.clone(),
                cwd: req.cwd.clone(),
                reason: req.reason.clone(),
                approved: false,
            },
            scrubber: &scrubber,
        };
        let bytes_in = req.stdin.as_ref().map_or(0, |b| b.len() as u64);
        let command = format!("command: {}", call.shown(&command_line(&req.command)));
        let mut base = agent_event(Event::new(Kind::Exec), caller)
            .capability(&req.capability)
            .bytes(bytes_in, 0)
            .detail(&command);
        if let Some(r) = &req.reason {
            base = base.reason(r);
        }
        let authorized = match self.decide(caller, &call).await {
            Ok(a) => a,
            Err(refusal) => {
                return Err(self
                    .refused(base.path(&call.program()), refusal, started)
                    .await);
            }
        };
        self.record_session(
            caller,
            &authorized.session,
            authorized.session_started,
            &authorized.capability,
        )
        .await;
        let session = authorized.session.clone();
        let program = authorized
            .invocation
            .program
            .canonical
            .display()
            .to_string();
        // Whether the kernel sandbox held the child, on the record of every run.
        let command = match authorized.policy.sandbox() {
            Some(sb) => format!("{command}; confined, network {}", sb.network().as_str()),
            None => format!("{command}; UNCONFINED (confine = false)"),
        };
        let command = match authorized.capability.inject {
            airlock_config::Inject::Placeholder => {
                format!("{command}; a placeholder for the secret, HTTPS through the egress proxy")
            }
            airlock_config::Inject::Env => command,
        };
        let event = base
            .path(&program)
            .session(authorized.session.as_str())
            .rule(&format!("program {}", authorized.invocation.program.name))
            .decision(AuditDecision::Allow)
            .detail(&command);
        // Write-ahead (DESIGN §7.5): on record before the secret is read or the
        // child started; if it cannot be written, nothing runs.
        let seq = self.write_ahead(&event).await?;

        let result = self.run_authorized(caller, authorized, req.stdin).await;
        let event = event.outcome_of(seq);
        let event = match &result {
            Ok(out) => {
                let flags: String = [
                    out.exit.timed_out.then_some("; timed out"),
                    out.truncated().then_some("; output truncated"),
                ]
                .into_iter()
                .flatten()
                .collect();
                event
                    .status(u16::try_from(out.exit.exit_code()).unwrap_or(u16::MAX))
                    .bytes(bytes_in, (out.stdout.len() + out.stderr.len()) as u64)
                    .detail(&format!("{command}{}", flags))
            }
            Err(err) => event
                .status(err.http_status())
                .detail(&format!("{command}; {err}")),
        }
        .duration(started.elapsed());
        self.write_outcome(&event).await?;
        result.map(|output| ExecOutcome { output, session })
    }

    /// Looks up the capability's secret — or, with `inject = "placeholder"`,
    /// opens the child's session on the egress proxy and takes its placeholder
    /// —, prepares the launch (its private HOME and environment, on the
    /// blocking pool) and runs it.
    async fn run_authorized(
        &self,
        caller: &Caller,
        authorized: AuthorizedExec,
        stdin: Option<Vec<u8>>,
    ) -> Result<Output, ExecuteError> {
        let policy = authorized.policy;
        let cap = &authorized.capability;
        let egress = match cap.inject {
            airlock_config::Inject::Env => None,
            airlock_config::Inject::Placeholder => {
                let Some(egress) = self.egress.get() else {
                    return Err(ExecuteError::Credential(format!(
                        "capability \"{}\" has inject = \"placeholder\", and this server runs no egress proxy for its programs",
                        cap.name
                    )));
                };
                let child = caller.exec_child(&cap.name);
                let opened = egress.open(child, &authorized.service).await.map_err(|e| {
                    ExecuteError::Credential(format!("the egress proxy for the program: {e}"))
                })?;
                Some(opened)
            }
        };
        let secret = match (policy.secret_name(), &egress) {
            (Some(_), Some(proxy)) => Some(airlock_vault::SecretBytes::from(
                proxy.placeholder.clone().into_bytes(),
            )),
            (Some(name), None) => Some(self.live.secret(name).ok_or_else(|| {
                ExecuteError::Credential(format!(
                    "secret \"{name}\" of capability \"{}\" is not in the vault; the owner can add it with `airlock secret set {name}`",
                    authorized.capability.name
                ))
            })?),
            (None, _) => None,
        };
        let invocation = authorized.invocation;
        let launch = tokio::task::spawn_blocking(move || {
            policy.prepare(
                invocation,
                secret.as_ref(),
                stdin.map(Stdin::Bytes).unwrap_or_default(),
            )
        })
        .await
        .map_err(|e| {
            ExecuteError::Exec(airlock_exec::ExecError::Home(std::io::Error::other(
                format!("the launch task failed: {e}"),
            )))
        })?
        .map_err(ExecuteError::Exec)?;
        let launch = match &egress {
            None => launch,
            Some(proxy) => {
                let mut launch = launch
                    .via_proxy(proxy.port, &proxy.dir)
                    .map_err(ExecuteError::Exec)?;
                for (k, v) in &proxy.env {
                    launch = launch.env(k, v);
                }
                launch
            }
        };
        let output = launch
            .spawn(&self.live.scrubber())
            .map_err(ExecuteError::Exec)?
            .output()
            .await
            .map_err(ExecuteError::Exec);
        // The child is gone: its proxy session ends.
        drop(egress);
        output
    }
}

/// The command as one line for the audit record (arguments quoted when needed).
fn command_line(command: &[String]) -> String {
    command
        .iter()
        .map(|a| {
            if !a.is_empty()
                && a.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-_./=:@,+%".contains(&b))
            {
                a.clone()
            } else {
                format!("{a:?}")
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}
