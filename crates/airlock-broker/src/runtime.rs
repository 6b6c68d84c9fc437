//! The request path of a running server: decide (broker), audit, inject, send,
//! scrub — the same code for every door.

use std::path::PathBuf;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Instant, SystemTime};

use airlock_audit::{AuditLog, Decision as AuditDecision, Event, Kind};
use airlock_config::Config;
use airlock_engine::scrub::Scrubber;
use airlock_engine::{Engine, EngineConfig, EngineError, ErrorSource, UpstreamRequest};
use airlock_exec::{ExecError, Output, OwnerEnv, Stdin};
use airlock_home::Home;
use airlock_vault::Vault;
use secrecy::ExposeSecret;

use crate::{
    AgentRequest, Broker, Caller, Clock, ExecAgentRequest, ExecPolicies, Grant, Refusal, SessionId,
    tokens,
};

/// One `execute` call as the agent gave it.
#[derive(Debug, Clone, Default)]
pub struct ExecuteRequest {
    /// Capability name.
    pub capability: String,
    /// HTTP method.
    pub method: String,
    /// Path, possibly with `?query`.
    pub path: String,
    /// Extra query parameters, appended form-encoded.
    pub query: Vec<(String, String)>,
    /// Request headers from the agent (filtered by the engine).
    pub headers: Vec<(String, String)>,
    /// Request body.
    pub body: Option<Vec<u8>>,
    /// The agent's reason.
    pub reason: Option<String>,
}

/// The upstream's answer, scrubbed.
#[derive(Debug, Clone)]
pub struct ExecuteResponse {
    /// HTTP status.
    pub status: u16,
    /// Response headers (hop-by-hop and cookies removed, values scrubbed).
    pub headers: Vec<(String, String)>,
    /// Body: UTF-8 text, or base64 when `body_base64`.
    pub body: String,
    /// Whether `body` is base64 (the upstream sent binary data).
    pub body_base64: bool,
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

/// Why an `execute` did not return an upstream answer.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ExecuteError {
    /// A check refused it.
    #[error("{0}")]
    Refused(Refusal),
    /// The request was allowed but the engine refused something in it (a header,
    /// the body size) or the upstream failed; the message says which.
    #[error("{0}")]
    Engine(EngineError),
    /// A record could not be written (DESIGN §7.5): the decision record, so
    /// nothing was sent, or the outcome record, so the answer is withheld; the
    /// text says which.
    #[error("the audit log could not be written ({0})")]
    Audit(String),
    /// The credential could not be prepared.
    #[error("{0}")]
    Credential(String),
    /// An allowed program could not be run (spawn, private HOME, output).
    #[error("{0}")]
    Exec(ExecError),
}

impl ExecuteError {
    /// Who caused it: 4xx for the agent, 502 for the upstream, 500 for airlock.
    pub fn http_status(&self) -> u16 {
        match self {
            ExecuteError::Refused(_) => 403,
            ExecuteError::Engine(e) => e.http_status().as_u16(),
            ExecuteError::Audit(_) | ExecuteError::Credential(_) | ExecuteError::Exec(_) => 500,
        }
    }
}

/// Everything a running server holds: the broker, the unlocked vault, the engine,
/// the audit log and the scrubber for every secret.
pub struct Runtime {
    home: Home,
    broker: Broker,
    vault: std::sync::RwLock<Vault>,
    vault_stamp: Mutex<Option<SystemTime>>,
    engine: std::sync::RwLock<Arc<Engine>>,
    audit: Arc<airlock_audit::SharedLog>,
    scrubber: std::sync::RwLock<Arc<Scrubber>>,
    config_stamp: Mutex<Option<SystemTime>>,
    revocations: crate::state::RevocationWatch,
    /// `state/tokens.json`, re-read only when it changes.
    token_store: crate::state::Watched<Vec<tokens::TokenRecord>>,
    /// Injectors kept per service, so minted tokens (GitHub App, GCP, OAuth2) are
    /// cached across requests and refreshed single-flight.
    injectors: airlock_inject::Injectors,
    /// When each token's use was last written to `state/token-use/`.
    token_uses: Mutex<std::collections::HashMap<String, Instant>>,
    /// The requests held for a person's answer (in memory only; see `approval`).
    approvals: crate::approval::Approvals,
}

impl std::fmt::Debug for Runtime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Runtime")
            .field("home", &self.home)
            .finish_non_exhaustive()
    }
}

/// Errors starting a runtime.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RuntimeError {
    /// The config is invalid.
    #[error(transparent)]
    Config(#[from] airlock_config::ConfigError),
    /// The audit log cannot be opened.
    #[error(transparent)]
    Audit(#[from] airlock_audit::AuditError),
    /// The engine cannot be built.
    #[error("{0}")]
    Engine(String),
}

impl Runtime {
    /// Builds the runtime for `home` with an unlocked `vault`.
    pub fn new(home: Home, vault: Vault, clock: Arc<dyn Clock>) -> Result<Runtime, RuntimeError> {
        let config = Config::load(&home)?;
        let fsync = match config.server.audit_fsync {
            airlock_config::AuditFsync::Always => airlock_audit::FsyncPolicy::Always,
            airlock_config::AuditFsync::Batch => airlock_audit::FsyncPolicy::Batch {
                max_records: 1000,
                max_delay: std::time::Duration::from_millis(100),
            },
        };
        let audit = AuditLog::open_home(
            &home,
            vault.audit_key(),
            airlock_audit::Options::default().fsync(fsync),
        )?;
        let engine = engine_for(&config).map_err(RuntimeError::Engine)?;
        let scrubber = scrubber_for(&vault).map_err(RuntimeError::Engine)?;
        let stamp = config_mtime(&home.config_path());
        let vault_stamp = config_mtime(&home.vault_path());
        let exec = compile_exec(&config);
        Ok(Runtime {
            broker: Broker::with_exec_policies(config, exec, clock),
            home,
            vault: std::sync::RwLock::new(vault),
            vault_stamp: Mutex::new(vault_stamp),
            engine: std::sync::RwLock::new(Arc::new(engine)),
            audit: Arc::new(airlock_audit::SharedLog::new(audit)),
            scrubber: std::sync::RwLock::new(Arc::new(scrubber)),
            config_stamp: Mutex::new(stamp),
            revocations: crate::state::RevocationWatch::default(),
            token_store: crate::state::Watched::default(),
            injectors: airlock_inject::Injectors::new(),
            token_uses: Mutex::new(std::collections::HashMap::new()),
            approvals: crate::approval::Approvals::new(),
        })
    }

    /// The broker (policy, sessions, visibility).
    pub fn broker(&self) -> &Broker {
        self.maybe_reload();
        self.maybe_reload_vault();
        &self.broker
    }

    /// The requests this server holds for approval: the control socket lists and
    /// answers them (`airlock approve` / `airlock deny`).
    pub fn approvals(&self) -> &crate::approval::Approvals {
        &self.approvals
    }

    /// Applies configuration, vault, revocation and lock changes now (the
    /// control socket's `reload`), instead of at the next request.
    pub fn refresh(&self) {
        self.maybe_reload();
        self.maybe_reload_vault();
        let _ = self.check_owner_state();
    }

    /// One secret from the vault.
    fn secret(&self, name: &str) -> Option<airlock_vault::SecretBytes> {
        self.vault
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(name)
            .ok()
    }

    /// The scrubber for every vault secret, as of the last vault change.
    fn scrubber(&self) -> Arc<Scrubber> {
        self.scrubber
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Picks up secrets added, rotated or removed by the CLI while the server runs
    /// (one `stat` per request). The scrubber is rebuilt, so a new secret is
    /// redacted from the first response that could carry it. A vault that cannot
    /// be read keeps the previous one in force and says why.
    fn maybe_reload_vault(&self) {
        let now = config_mtime(&self.home.vault_path());
        let mut stamp = self
            .vault_stamp
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if *stamp == now {
            return;
        }
        *stamp = now;
        drop(stamp);
        let result = airlock_home::read(&self.home.vault_path())
            .map_err(|e| e.to_string())
            .and_then(|bytes| {
                let mut vault = self.vault.write().unwrap_or_else(PoisonError::into_inner);
                vault.refresh(&bytes).map_err(|e| e.to_string())?;
                scrubber_for(&vault)
            });
        match result {
            Ok(scrubber) => {
                *self
                    .scrubber
                    .write()
                    .unwrap_or_else(PoisonError::into_inner) = Arc::new(scrubber);
            }
            Err(e) => report(&format!(
                "vault.json changed but cannot be used ({e}); keeping the previous secrets"
            )),
        }
    }

    /// The home this server runs on.
    pub fn home(&self) -> &Home {
        &self.home
    }

    /// Appends an audit record; the error means the decision is not on record.
    /// Blocks the thread until the record is durable: async request paths use
    /// [`Runtime::audit_durable`].
    pub fn audit(&self, event: &Event) -> Result<u64, String> {
        self.audit.append(event).map_err(|e| e.to_string())
    }

    /// Appends an audit record and waits, without blocking the async runtime,
    /// until it is durable. Concurrent requests share fsyncs (group commit), so a
    /// loaded server is not limited to one fsync per request.
    pub async fn audit_durable(&self, event: &Event) -> Result<u64, String> {
        let written = self.audit.write(event).map_err(|e| e.to_string())?;
        if written.is_durable() {
            return Ok(written.seq);
        }
        let log = Arc::clone(&self.audit);
        tokio::task::spawn_blocking(move || log.wait(written))
            .await
            .map_err(|e| format!("the audit sync task failed: {e}"))?
            .map_err(|e| e.to_string())?;
        Ok(written.seq)
    }

    /// Makes batched audit records durable when they are due (call from a timer).
    pub fn flush_audit(&self) -> Result<(), String> {
        self.audit.flush_if_due().map_err(|e| e.to_string())
    }

    /// Makes every audit record written so far durable and anchored (at exit).
    pub fn close_audit(&self) -> Result<(), String> {
        self.audit.flush().map_err(|e| e.to_string())
    }

    /// Reloads `airlock.toml` when it changed on disk. An invalid new file keeps
    /// the old configuration; the problem goes to stderr and the audit log.
    fn maybe_reload(&self) {
        let path: PathBuf = self.home.config_path();
        let now = config_mtime(&path);
        let mut stamp = self
            .config_stamp
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if *stamp == now {
            return;
        }
        *stamp = now;
        drop(stamp);
        let mut event = Event::new(Kind::ConfigReload);
        match Config::load(&self.home) {
            Ok(cfg) => match engine_for(&cfg) {
                Ok(engine) => {
                    *self.engine.write().unwrap_or_else(PoisonError::into_inner) = Arc::new(engine);
                    self.injectors.retain(|n| cfg.services.contains_key(n));
                    let exec = compile_exec(&cfg);
                    self.broker.reload_with_exec_policies(cfg, exec);
                    event = event
                        .decision(AuditDecision::Allow)
                        .detail("airlock.toml reloaded");
                }
                Err(e) => {
                    let msg = format!(
                        "airlock.toml changed but its service settings are unusable ({e}); keeping the previous configuration"
                    );
                    report(&msg);
                    event = event.decision(AuditDecision::Deny).detail(&msg);
                }
            },
            Err(e) => {
                let msg = format!(
                    "airlock.toml changed but is invalid, keeping the previous configuration: {e}"
                );
                report(&msg);
                event = event.decision(AuditDecision::Deny).detail(&msg);
            }
        }
        if let Err(e) = self.audit(&event) {
            report(&format!("cannot audit the configuration reload: {e}"));
        }
    }

    /// Marks a token as used, at most once a minute per token (for `token list`).
    fn note_token_use(&self, id: &str) {
        let now = Instant::now();
        let mut seen = self
            .token_uses
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let due = seen
            .get(id)
            .is_none_or(|t| now.duration_since(*t) >= std::time::Duration::from_secs(60));
        if due {
            seen.insert(id.to_string(), now);
            drop(seen);
            tokens::note_use(&self.home, id);
        }
    }

    /// Records a request refused before any token could be checked (none sent, or
    /// one in the query string) — every door request leaves a record.
    pub fn audit_token_refusal(&self, method: &str, path: &str, detail: &str) {
        let event = Event::new(Kind::TokenUse)
            .method(method)
            .path(path)
            .decision(AuditDecision::Deny)
            .status(401)
            .detail(detail);
        if let Err(e) = self.audit(&event) {
            report(&format!("cannot audit a refused request: {e}"));
        }
    }

    /// Records a request an HTTP door refused before it reached the broker
    /// (malformed framing, a body over a limit, a forbidden target form), so every
    /// request leaves a record. `caller` is the agent when the token was already
    /// checked. An error means the refusal is not on record.
    pub async fn audit_door_refusal(
        &self,
        caller: Option<&Caller>,
        capability: Option<&str>,
        method: &str,
        path: &str,
        status: u16,
        detail: &str,
    ) -> Result<u64, String> {
        let mut event = Event::new(Kind::Request)
            .method(method)
            .path(path)
            .decision(AuditDecision::Deny)
            .status(status)
            .detail(detail);
        if let Some(c) = capability {
            event = event.capability(c);
        }
        if let Some(c) = caller {
            event = agent_event(event, c);
        }
        self.audit_durable(&event).await
    }

    /// Checks an agent token (HTTP doors). Failures are audited.
    pub fn authenticate(&self, presented: &str) -> Result<Caller, tokens::TokenError> {
        let verified = self
            .token_store
            .current(&tokens::store_path(&self.home), || tokens::list(&self.home))
            .and_then(|(records, _)| tokens::verify_in(&records, presented));
        match verified {
            Ok(record) => {
                self.note_token_use(&record.id);
                Ok(Caller {
                    grant: Grant::token(&record.id),
                    trusted: Some(record.agent),
                    declared: None,
                    scope: (!record.capabilities.is_empty()).then_some(record.capabilities),
                    approver: None,
                })
            }
            Err(e) => {
                let event = Event::new(Kind::TokenUse)
                    .decision(AuditDecision::Deny)
                    .detail(&e.to_string());
                // A failed audit here only loses the record of a refusal; the
                // request is refused either way.
                if let Err(ae) = self.audit(&event) {
                    report(&format!("cannot audit a refused token: {ae}"));
                }
                Err(e)
            }
        }
    }

    /// Applies the owner's lock and revocations (shared by every server on this
    /// home through `state/`) to the live sessions. Called before every decision.
    fn check_owner_state(&self) -> Result<(), Refusal> {
        if crate::state::is_locked(&self.home) {
            // Minted tokens are dropped too: after an unlock they are fetched anew.
            self.injectors.clear();
            return Err(crate::refuse(
                crate::Check::Lock,
                "airlock is locked by its owner: every request is refused until `airlock unlock`",
            ));
        }
        match self.revocations.current(&self.home) {
            Ok((revs, true)) => {
                let n = self
                    .broker
                    .sessions()
                    .revoke_where(|s| revs.revokes_session(s));
                if n > 0 {
                    let e = Event::new(Kind::Revoke)
                        .decision(AuditDecision::Deny)
                        .detail(&format!(
                            "{n} live session(s) of this server ended by the owner's revocation"
                        ));
                    if let Err(err) = self.audit(&e) {
                        report(&format!("cannot audit a revocation: {err}"));
                    }
                }
                Ok(())
            }
            Ok((_, false)) => Ok(()),
            // An unreadable revocation list must not fail open.
            Err(e) => Err(crate::refuse(
                crate::Check::Lock,
                format!("the revocation list cannot be read ({e}); refusing until it is fixed"),
            )),
        }
    }

    /// Decides one request, writes its decision record and gets everything ready
    /// to send it: the authorized request, the record's `seq`, the injector and
    /// the engine. Write-ahead (DESIGN §7.5): the decision record is durable
    /// before anything that could carry the credential happens — the injector
    /// (which may mint a token upstream) is only fetched after it — and when it
    /// cannot be written nothing is sent. A refusal is audited here.
    async fn begin(&self, caller: &Caller, req: &ExecuteRequest) -> Result<Prepared, ExecuteError> {
        let started = Instant::now();
        let broker = self.broker();
        let owner_state = self.check_owner_state();
        let mut path = req.path.clone();
        if !req.query.is_empty() {
            let extra: String = url::form_urlencoded::Serializer::new(String::new())
                .extend_pairs(req.query.iter())
                .finish();
            path.push(if path.contains('?') { '&' } else { '?' });
            path.push_str(&extra);
        }
        let mut agent_req = AgentRequest {
            capability: req.capability.clone(),
            method: req.method.clone(),
            path,
            reason: req.reason.clone(),
            approved: false,
        };
        let bytes_in = req.body.as_ref().map_or(0, |b| b.len() as u64);
        let base = |method: &str, path: &str| {
            let mut e = agent_event(Event::request(&req.capability, method, path), caller)
                .bytes(bytes_in, 0);
            if let Some(r) = &req.reason {
                e = e.reason(r);
            }
            e
        };
        let mut decision = owner_state.and_then(|()| broker.authorize(caller, &agent_req));
        if matches!(&decision, Err(r) if r.check == crate::Check::Approval) {
            decision = match self.http_ask(caller, req, &agent_req.path) {
                Err(refusal) => Err(refusal),
                Ok((ask, audit_path)) => match self.await_approval(caller, &ask, &audit_path).await
                {
                    Ok(()) => {
                        agent_req.approved = true;
                        broker.authorize(caller, &agent_req).and_then(|a| {
                            // What is sent is what was approved: the same view of
                            // the authorized request must have the approved hash.
                            let sent = http_ask(
                                caller,
                                req,
                                &a.capability.name,
                                &a.method,
                                &a.service,
                                &a.target,
                            );
                            if sent.hash() == ask.hash() {
                                Ok(a)
                            } else {
                                Err(crate::refuse(
                                    crate::Check::Approval,
                                    "the request to send is not the one that was approved (the configuration changed while it was held); nothing was sent, ask again",
                                ))
                            }
                        })
                    }
                    Err(refusal) => Err(refusal),
                },
            };
        }
        let authorized = match decision {
            Ok(a) => a,
            Err(refusal) => {
                let e = base(&req.method.to_ascii_uppercase(), &req.path).status(403);
                return Err(self.refused(e, refusal, started).await);
            }
        };
        self.record_session(
            caller,
            &authorized.session,
            authorized.session_started,
            &authorized.capability,
        );
        let event = base(&authorized.method, &authorized.target.path)
            .session(authorized.session.as_str())
            .query_keys(query_keys(authorized.target.query.as_deref()))
            .rule(authorized.rule.as_deref().unwrap_or("(no allow rules)"))
            .decision(AuditDecision::Allow);
        let seq = self.write_ahead(&event).await?;
        let ready = airlock_engine::http::Method::from_bytes(authorized.method.as_bytes())
            .map_err(|_| ExecuteError::Credential(format!("invalid method {}", authorized.method)))
            .and_then(|method| {
                let injector = self
                    .injectors
                    .get(&authorized.service, &mut |name| self.secret(name))
                    .map_err(|e| ExecuteError::Credential(e.to_string()))?;
                let mut upstream = UpstreamRequest::new(method, authorized.target.clone());
                upstream.headers = req.headers.clone();
                upstream.body = req.body.clone().unwrap_or_default().into();
                Ok((injector, upstream))
            });
        match ready {
            Ok((injector, upstream)) => Ok(Prepared {
                service: authorized.service,
                event: event.outcome_of(seq),
                injector,
                upstream,
                engine: self
                    .engine
                    .read()
                    .unwrap_or_else(PoisonError::into_inner)
                    .clone(),
                started,
                bytes_in,
            }),
            Err(e) => Err(self.finish_failed(event.outcome_of(seq), e, started).await),
        }
    }

    /// Writes a decision record before anything leaves airlock (DESIGN §7.5):
    /// durable under `audit_fsync = "always"`. An error means nothing may be sent.
    async fn write_ahead(&self, event: &Event) -> Result<u64, ExecuteError> {
        self.audit_durable(event).await.map_err(|e| {
            ExecuteError::Audit(format!(
                "{e}; the decision could not be recorded, so nothing was sent"
            ))
        })
    }

    /// Writes the outcome record that completes a decision record; an error
    /// withholds the answer.
    async fn write_outcome(&self, event: &Event) -> Result<u64, ExecuteError> {
        self.audit_durable(event).await.map_err(|e| {
            ExecuteError::Audit(format!(
                "{e}; the request was sent and its decision is on record, but its outcome could not be recorded, so the answer is withheld"
            ))
        })
    }

    /// What a person is asked to approve for an HTTP request (before the
    /// broker hands out the authorized request): the same normalization the
    /// broker applies, so the view matches the authorized request's exactly.
    /// Also returns the normalized path (no query) for the audit records.
    fn http_ask(
        &self,
        caller: &Caller,
        req: &ExecuteRequest,
        path: &str,
    ) -> Result<(crate::approval::Ask, String), Refusal> {
        let config = self.broker.config();
        let cap = config.capabilities.get(&req.capability).ok_or_else(|| {
            crate::refuse(
                crate::Check::Capability,
                format!("unknown capability \"{}\"", req.capability.escape_debug()),
            )
        })?;
        let service = config.services.get(&cap.service).ok_or_else(|| {
            crate::refuse(
                crate::Check::Config,
                format!(
                    "the service of capability \"{}\" is not configured",
                    cap.name
                ),
            )
        })?;
        let method = airlock_policy::normalize_method(&req.method, &cap.methods)
            .map_err(|e| crate::refuse(crate::Check::Method, e.to_string()))?;
        let target = airlock_policy::normalize(path)
            .map_err(|e| crate::refuse(crate::Check::Path, e.to_string()))?;
        let ask = http_ask(caller, req, &cap.name, &method, service, &target);
        Ok((ask, target.path))
    }

    /// Holds a request until a person answers (`airlock approve ID` / `airlock
    /// deny ID` over the control socket, or the MCP client's elicitation) or
    /// `approval_timeout` passes (then it is denied). The person is shown `ask`
    /// — the request exactly as it will be sent — and the answer applies to it
    /// alone, once. Every outcome is audited, with the caller's identity and
    /// trust exactly as on the request's own records; `audit_path` is the path
    /// for the record (no query values).
    async fn await_approval(
        &self,
        caller: &Caller,
        ask: &crate::approval::Ask,
        audit_path: &str,
    ) -> Result<(), Refusal> {
        use airlock_audit::Escaped as E;
        let timeout = self.broker.config().server.approval_timeout;
        let mut pending = self.approvals.hold(ask, timeout).map_err(|e| {
            crate::refuse(
                crate::Check::Approval,
                format!("approval required, but the request cannot be queued: {e}"),
            )
        })?;
        let hash = ask.hash();
        report(&format!(
            "approval needed: {} wants {} {} on \"{}\" ({} body bytes); answer with `airlock approve {}` or `airlock deny {}`",
            E(&ask.agent),
            E(&ask.method),
            E(ask.url.as_deref().unwrap_or(&ask.path)),
            E(&ask.capability),
            ask.body_bytes,
            pending.id,
            pending.id
        ));
        let answer = match caller.approver.clone() {
            None => pending.wait(timeout).await,
            Some(approver) => {
                let message = ask.prompt(&pending.id);
                let asked = async {
                    match approver.ask(message).await {
                        Some(true) => crate::approval::Answer::Approved,
                        Some(false) => crate::approval::Answer::Denied,
                        // No answer from the client: only the CLI can decide now.
                        None => std::future::pending().await,
                    }
                };
                let answer = tokio::select! {
                    a = pending.wait(timeout) => a,
                    a = asked => a,
                };
                // The client answered: a late `airlock approve` is told it is not pending.
                pending.withdraw();
                answer
            }
        };
        let (kind, decision, text) = match answer {
            crate::approval::Answer::Approved => {
                (Kind::Approve, AuditDecision::Allow, "approved by the owner")
            }
            crate::approval::Answer::Denied => {
                (Kind::Deny, AuditDecision::Deny, "denied by the owner")
            }
            crate::approval::Answer::TimedOut => (
                Kind::ApprovalTimeout,
                AuditDecision::Deny,
                "no answer in time",
            ),
        };
        let event = agent_event(Event::new(kind), caller)
            .capability(&ask.capability)
            .method(&ask.method)
            .path(audit_path)
            .decision(decision)
            .detail(&format!(
                "approval {}: {text}; request sha256 {hash}, body {} bytes",
                pending.id, ask.body_bytes
            ));
        if let Err(e) = self.audit_durable(&event).await {
            return Err(crate::refuse(
                crate::Check::Approval,
                format!("the approval could not be audited: {e}"),
            ));
        }
        match answer {
            crate::approval::Answer::Approved => Ok(()),
            crate::approval::Answer::Denied => Err(crate::refuse(
                crate::Check::Approval,
                format!("the owner denied this request (approval {})", pending.id),
            )),
            crate::approval::Answer::TimedOut => Err(crate::refuse(
                crate::Check::Approval,
                format!(
                    "approval {} timed out: nobody answered within {}s, so the request is denied",
                    pending.id,
                    timeout.as_secs()
                ),
            )),
        }
    }

    /// Completes the decision record of a request that was allowed but failed
    /// (engine, credential) with its outcome; returns the error for the caller
    /// (or the audit failure). `event` is the outcome record so far.
    async fn finish_failed(&self, event: Event, e: ExecuteError, started: Instant) -> ExecuteError {
        let agent_fault =
            matches!(&e, ExecuteError::Engine(ee) if ee.error_source() == ErrorSource::Agent);
        let event = event
            .decision(if agent_fault {
                AuditDecision::Deny
            } else {
                AuditDecision::Allow
            })
            .status(e.http_status())
            .detail(&e.to_string())
            .duration(started.elapsed());
        match self.write_outcome(&event).await {
            Ok(_) => e,
            Err(err) => err,
        }
    }

    /// Decides, audits, injects, sends and scrubs one request (body buffered):
    /// the decision record is durable before the request leaves, the outcome
    /// record (status, bytes, duration) before the answer is returned.
    pub async fn execute(
        &self,
        caller: &Caller,
        req: ExecuteRequest,
    ) -> Result<ExecuteResponse, ExecuteError> {
        let p = self.begin(caller, &req).await?;
        let result = p
            .engine
            .send(
                &p.service,
                p.injector.as_ref(),
                p.upstream,
                &self.scrubber(),
            )
            .await;
        let r = match result {
            Ok(r) => r,
            Err(e) => {
                return Err(self
                    .finish_failed(p.event, ExecuteError::Engine(e), p.started)
                    .await);
            }
        };
        let event = p
            .event
            .status(r.status.as_u16())
            .bytes(p.bytes_in, r.body.len() as u64)
            .duration(p.started.elapsed());
        self.write_outcome(&event).await?;
        let body = r.body_text();
        Ok(ExecuteResponse {
            status: r.status.as_u16(),
            headers: header_pairs(&r.headers),
            body: body.text,
            body_base64: body.base64,
        })
    }

    /// Like [`Runtime::execute`], but the body streams back (the HTTP gateway; SSE
    /// for LLM APIs). The decision is recorded before the request is sent; the
    /// outcome (the upstream's status) when the response head and the first body
    /// chunk have arrived, before anything is returned; the body then streams,
    /// scrubbed, including secrets split across chunks.
    pub async fn execute_streaming(
        &self,
        caller: &Caller,
        req: ExecuteRequest,
    ) -> Result<airlock_engine::StreamingResponse, ExecuteError> {
        let p = self.begin(caller, &req).await?;
        let result = p
            .engine
            .send_streaming(
                &p.service,
                p.injector.as_ref(),
                p.upstream,
                &self.scrubber(),
            )
            .await;
        // The first chunk is awaited before the head is answered: a body that
        // fails at once is a failed request (502, audited so), not a 200 cut
        // before its first byte.
        let result = match result {
            Ok(mut r) => match r.body.prefetch().await {
                Ok(body) => {
                    r.body = body;
                    Ok(r)
                }
                Err(e) => Err(e),
            },
            Err(e) => Err(e),
        };
        let r = match result {
            Ok(r) => r,
            Err(e) => {
                return Err(self
                    .finish_failed(p.event, ExecuteError::Engine(e), p.started)
                    .await);
            }
        };
        let event = p
            .event
            .status(r.status.as_u16())
            .detail("streamed response")
            .duration(p.started.elapsed());
        self.write_outcome(&event).await?;
        Ok(r)
    }
}

/// An allowed request, ready to send; its decision is on record.
struct Prepared {
    service: airlock_config::Service,
    /// The outcome record so far (it names the decision record).
    event: Event,
    injector: Arc<dyn airlock_inject::Injector>,
    upstream: UpstreamRequest,
    engine: Arc<Engine>,
    started: Instant,
    bytes_in: u64,
}

/// The agent on a record: who `caller` is and whether the owner vouches for
/// it. Every record of one request (decision, approval, outcome, refusal) takes
/// its identity from here, so they cannot disagree.
fn agent_event(event: Event, caller: &Caller) -> Event {
    event.agent(&caller.agent(), caller.is_trusted())
}

/// What a person approves for an HTTP request: the request as the engine sends
/// it (method, the service's origin and base path with the normalized target and
/// its whole query, the agent's headers, the body's size and SHA-256, the reason).
fn http_ask(
    caller: &Caller,
    req: &ExecuteRequest,
    capability: &str,
    method: &str,
    service: &airlock_config::Service,
    target: &airlock_policy::Target,
) -> crate::approval::Ask {
    let url = format!(
        "{}{}{}",
        service.url.origin().ascii_serialization(),
        service.url.path().trim_end_matches('/'),
        target
    );
    let (body_bytes, body_sha256) = crate::approval::Ask::body_digest(req.body.as_deref());
    crate::approval::Ask {
        agent: caller.agent(),
        agent_trusted: caller.is_trusted(),
        capability: capability.to_string(),
        method: method.to_string(),
        path: target.to_string(),
        url: Some(url),
        cwd: None,
        headers: req.headers.clone(),
        body_bytes,
        body_sha256,
        reason: req.reason.clone(),
    }
}

/// Response headers as (name, value) text pairs.
fn header_pairs(headers: &airlock_engine::http::HeaderMap) -> Vec<(String, String)> {
    headers
        .iter()
        .map(|(k, v)| {
            (
                k.as_str().to_string(),
                String::from_utf8_lossy(v.as_bytes()).into_owned(),
            )
        })
        .collect()
}

impl Runtime {
    /// Audits a refusal and turns it into the error for the caller; when the
    /// refusal cannot be audited, the audit failure is the answer.
    async fn refused(&self, event: Event, refusal: Refusal, started: Instant) -> ExecuteError {
        let mut e = event
            .decision(AuditDecision::Deny)
            .rule(refusal.rule.as_deref().unwrap_or(refusal.check.as_str()))
            .detail(&refusal.message)
            .duration(started.elapsed());
        if let Some(s) = &refusal.session {
            e = e.session(s.as_str());
        }
        match self.audit_durable(&e).await {
            Ok(_) => ExecuteError::Refused(refusal),
            Err(err) => ExecuteError::Audit(err),
        }
    }

    /// Writes a session that just `started` to the shared state (for `airlock
    /// sessions` and revocation by other processes).
    fn record_session(
        &self,
        caller: &Caller,
        session: &SessionId,
        started: bool,
        capability: &airlock_config::Capability,
    ) {
        if !started {
            return;
        }
        let ttl = capability.ttl;
        let now = jiff::Timestamp::now();
        let rec = crate::state::SessionRecord {
            id: session.as_str().to_string(),
            grant: caller.grant.as_str().to_string(),
            agent: caller.agent(),
            capability: capability.name.clone(),
            started: now,
            expires: now
                .checked_add(
                    jiff::SignedDuration::try_from(ttl).unwrap_or(jiff::SignedDuration::MAX),
                )
                .unwrap_or(now),
            pid: std::process::id(),
        };
        if let Err(e) = crate::state::record_session(&self.home, rec) {
            report(&format!("cannot record session {session}: {e}"));
        }
    }

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
        let broker = self.broker();
        let owner_state = self.check_owner_state();
        let mut agent_req = ExecAgentRequest {
            capability: req.capability.clone(),
            command: req.command.clone(),
            cwd: req.cwd.clone(),
            reason: req.reason.clone(),
            approved: false,
        };
        let bytes_in = req.stdin.as_ref().map_or(0, |b| b.len() as u64);
        // Agent-chosen text goes into the record scrubbed, like everything the
        // agent gets back.
        let scrubber = self.scrubber();
        let shown = |s: &str| String::from_utf8_lossy(&scrubber.scrub(s.as_bytes())).into_owned();
        let command = format!("command: {}", shown(&command_line(&req.command)));
        let mut base = agent_event(Event::new(Kind::Exec), caller)
            .capability(&req.capability)
            .bytes(bytes_in, 0)
            .detail(&command);
        if let Some(r) = &req.reason {
            base = base.reason(r);
        }
        let mut decision = owner_state.and_then(|()| broker.authorize_exec(caller, &agent_req));
        if matches!(&decision, Err(r) if r.check == crate::Check::Approval) {
            let (body_bytes, body_sha256) = crate::approval::Ask::body_digest(req.stdin.as_deref());
            let asked = crate::approval::Ask {
                agent: caller.agent(),
                agent_trusted: caller.is_trusted(),
                capability: req.capability.clone(),
                method: "EXEC".into(),
                path: shown(&command_line(&req.command)),
                url: None,
                cwd: req.cwd.as_deref().map(shown),
                headers: Vec::new(),
                body_bytes,
                body_sha256,
                reason: req.reason.clone(),
            };
            let program = req.command.first().map(|p| shown(p)).unwrap_or_default();
            // `req` is owned here and not changed after the answer: what runs is
            // what was shown.
            decision = match self.await_approval(caller, &asked, &program).await {
                Ok(()) => {
                    agent_req.approved = true;
                    broker.authorize_exec(caller, &agent_req)
                }
                Err(refusal) => Err(refusal),
            };
        }
        let authorized = match decision {
            Ok(a) => a,
            Err(refusal) => {
                let program = req.command.first().map(|p| shown(p)).unwrap_or_default();
                return Err(self.refused(base.path(&program), refusal, started).await);
            }
        };
        self.record_session(
            caller,
            &authorized.session,
            authorized.session_started,
            &authorized.capability,
        );
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
        let event = base
            .path(&program)
            .session(authorized.session.as_str())
            .rule(&format!("program {}", authorized.invocation.program.name))
            .decision(AuditDecision::Allow)
            .detail(&command);
        // Write-ahead (DESIGN §7.5): on record before the secret is read or the
        // child started; if it cannot be written, nothing runs.
        let seq = self.write_ahead(&event).await?;

        let result = self.run_authorized(authorized, req.stdin).await;
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

    /// Looks up the capability's secret, prepares the launch and runs it.
    async fn run_authorized(
        &self,
        authorized: crate::AuthorizedExec,
        stdin: Option<Vec<u8>>,
    ) -> Result<Output, ExecuteError> {
        let policy = authorized.policy;
        let secret = match policy.secret_name() {
            Some(name) => Some(self.secret(name).ok_or(()).map_err(|()| {
                ExecuteError::Credential(format!(
                    "secret \"{name}\" of capability \"{}\" is not in the vault; the owner can add it with `airlock secret set {name}`",
                    authorized.capability.name
                ))
            })?),
            None => None,
        };
        let launch = policy
            .prepare(
                authorized.invocation,
                secret.as_ref(),
                stdin.map(Stdin::Bytes).unwrap_or_default(),
            )
            .map_err(ExecuteError::Exec)?;
        launch
            .spawn(&self.scrubber())
            .map_err(ExecuteError::Exec)?
            .output()
            .await
            .map_err(ExecuteError::Exec)
    }
}

/// The engine for a configuration: per-service limits and cookie forwarding.
fn engine_for(config: &Config) -> Result<Engine, String> {
    let mut ec = EngineConfig::default();
    for (name, svc) in &config.services {
        let mut opts = ec.defaults;
        if let Some(t) = svc.timeout {
            opts.limits.timeout = t;
        }
        if let Some(n) = svc.max_request_bytes {
            opts.limits.max_request_body = usize::try_from(n).unwrap_or(usize::MAX);
        }
        if let Some(n) = svc.max_response_bytes {
            opts.limits.max_response_body = usize::try_from(n).unwrap_or(usize::MAX);
        }
        opts.forward_cookies = svc.forward_cookies;
        ec.services.insert(name.clone(), opts);
    }
    Engine::new(ec).map_err(|e| e.to_string())
}

/// Names of the query parameters (never values), for the audit record.
fn query_keys(query: Option<&str>) -> Vec<String> {
    query
        .map(|q| {
            url::form_urlencoded::parse(q.as_bytes())
                .map(|(k, _)| k.into_owned())
                .collect()
        })
        .unwrap_or_default()
}

fn config_mtime(path: &std::path::Path) -> Option<SystemTime> {
    std::fs::metadata(path).and_then(|m| m.modified()).ok()
}

/// Every vault secret, so that no secret — of this service or another — comes
/// back to an agent.
fn scrubber_for(vault: &Vault) -> Result<Scrubber, String> {
    let secrets: Vec<(String, airlock_vault::SecretBytes)> = vault
        .list()
        .into_iter()
        .filter_map(|info| vault.get(&info.name).ok().map(|v| (info.name, v)))
        .collect();
    Scrubber::new(secrets.iter().map(|(n, v)| (n.as_str(), v.expose_secret())))
        .map_err(|e| format!("cannot prepare response scrubbing: {e}"))
}

/// Compiles the exec capabilities of `config` against airlock's own environment
/// and tells the owner about the ones that cannot be used (they are refused with
/// the same message) and about risky ones. Like other configuration problems, this
/// goes to stderr; the server keeps running.
fn compile_exec(config: &Config) -> ExecPolicies {
    let exec = ExecPolicies::compile(config, &OwnerEnv::from_process());
    for problem in exec.errors() {
        report(&format!(
            "{problem} (this exec capability is refused until airlock.toml is fixed)"
        ));
    }
    for warning in exec.warnings() {
        report(&format!("warning: {warning}"));
    }
    exec
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

/// A server-side problem worth telling the owner about (stderr, never stdout:
/// stdout is the MCP protocol).
#[allow(clippy::print_stderr)]
fn report(msg: &str) {
    eprintln!("airlock: {msg}");
}
