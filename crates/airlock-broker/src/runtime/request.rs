//! The request path every HTTP door uses (`execute` over MCP, the gateway), in
//! order: decide ([`Runtime::decide`]: owner's state, broker, approval) →
//! write-ahead audit (the decision record, durable before anything leaves) →
//! inject (the service's injector, fetched only after that record) → send (the
//! engine, pinned to the service's origin) → scrub (the engine scrubs with the
//! scrubber for every vault secret) → outcome record (before the answer is
//! returned). `exec` runs the same steps around a child process
//! ([`super::exec`]). The steps both share — a refusal's record, a new
//! session's record, the write-ahead and outcome records — are here.

use std::sync::Arc;
use std::time::Instant;

use airlock_audit::{Decision as AuditDecision, Event};
use airlock_engine::{Engine, EngineError, ErrorSource, UpstreamRequest};
use airlock_exec::ExecError;

use super::approve::Approvable;
use super::{Runtime, agent_event, report};
use crate::approval::Ask;
use crate::{AgentRequest, Authorized, Broker, Caller, Check, Refusal, SessionId, refuse};

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

/// Which record of a request could not be written ([`ExecuteError::Audit`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum AuditStage {
    /// The record of a refusal.
    Refusal,
    /// The decision record, written before anything leaves: nothing was sent.
    Decision,
    /// The outcome record of a request that was sent: the answer is withheld.
    Outcome,
}

impl std::fmt::Display for AuditStage {
    /// What follows the writer's error in [`ExecuteError::Audit`]'s message.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            AuditStage::Refusal => "",
            AuditStage::Decision => "; the decision could not be recorded, so nothing was sent",
            AuditStage::Outcome => {
                "; the request was sent and its decision is on record, but its outcome could not be recorded, so the answer is withheld"
            }
        })
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
    /// A record could not be written (DESIGN §7.5): a refusal's record, the
    /// decision record (so nothing was sent), or the outcome record (so the
    /// answer is withheld); `stage` says which.
    #[error("the audit log could not be written ({error}{stage})")]
    Audit {
        /// Why the writer could not record it.
        error: crate::AuditWriteError,
        /// Which record it was.
        stage: AuditStage,
    },
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
            ExecuteError::Audit { .. } | ExecuteError::Credential(_) | ExecuteError::Exec(_) => 500,
        }
    }
}

/// One of the engine's sends under way, for `Runtime::round_trip`. Boxed and
/// `Send` for every lifetime of what it borrows: an async closure's future cannot
/// promise that, and the doors (axum handlers) need it.
type Sending<'a, T> =
    std::pin::Pin<Box<dyn std::future::Future<Output = Result<T, EngineError>> + Send + 'a>>;

/// An allowed request, ready to send; its decision is on record.
struct Prepared {
    service: airlock_config::Service,
    /// The outcome record so far (it names the decision record).
    event: Event,
    injector: Arc<dyn airlock_inject::Injector>,
    upstream: UpstreamRequest,
    engine: Arc<Engine>,
    started: Instant,
}

/// An HTTP request as the broker decides it (the path carries the extra query).
struct HttpRequest<'a> {
    req: &'a ExecuteRequest,
    agent_req: AgentRequest,
}

impl Approvable for HttpRequest<'_> {
    type Authorized = Authorized;

    fn authorize(
        &self,
        broker: &Broker,
        caller: &Caller,
        approved: bool,
    ) -> Result<Authorized, Refusal> {
        let req = AgentRequest {
            approved,
            ..self.agent_req.clone()
        };
        broker.authorize(caller, &req)
    }

    /// The same normalization the broker applies, so the view matches the
    /// authorized request's exactly; the audit path is the normalized path.
    fn ask(&self, broker: &Broker, caller: &Caller) -> Result<(Ask, String), Refusal> {
        let req = self.req;
        let config = broker.config();
        let cap = config.capabilities.get(&req.capability).ok_or_else(|| {
            refuse(
                Check::Capability,
                format!("unknown capability \"{}\"", req.capability.escape_debug()),
            )
        })?;
        let service = config.services.get(&cap.service).ok_or_else(|| {
            refuse(
                Check::Config,
                format!(
                    "the service of capability \"{}\" is not configured",
                    cap.name
                ),
            )
        })?;
        let method = airlock_policy::normalize_method(&req.method, &cap.methods)
            .map_err(|e| refuse(Check::Method, e.to_string()))?;
        let target = airlock_policy::normalize(&self.agent_req.path)
            .map_err(|e| refuse(Check::Path, e.to_string()))?;
        let ask = http_ask(caller, req, &cap.name, &method, service, &target);
        Ok((ask, target.path))
    }

    fn to_send(&self, a: &Authorized, caller: &Caller) -> Option<Ask> {
        Some(http_ask(
            caller,
            self.req,
            &a.capability.name,
            &a.method,
            &a.service,
            &a.target,
        ))
    }
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
) -> Ask {
    let url = format!(
        "{}{}{}",
        service.url.origin().ascii_serialization(),
        service.url.path().trim_end_matches('/'),
        target
    );
    let (body_bytes, body_sha256) = Ask::body_digest(req.body.as_deref());
    Ask {
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

impl Runtime {
    /// Decides, audits, injects, sends and scrubs one request (body buffered):
    /// the decision record is durable before the request leaves, the outcome
    /// record (status, bytes, duration) before the answer is returned.
    pub async fn execute(
        &self,
        caller: &Caller,
        req: ExecuteRequest,
    ) -> Result<ExecuteResponse, ExecuteError> {
        let r = self
            .round_trip(
                caller,
                &req,
                |engine, service, injector, upstream, scrubber| {
                    Box::pin(engine.send(service, injector, upstream, scrubber))
                },
                // The decision record has the bytes sent already.
                |r, mut event| {
                    event.bytes_out = Some(r.body.len() as u64);
                    event.status(r.status.as_u16())
                },
            )
            .await?;
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
        self.round_trip(
            caller,
            &req,
            |engine, service, injector, upstream, scrubber| {
                Box::pin(async move {
                    let mut r = engine
                        .send_streaming(service, injector, upstream, scrubber)
                        .await?;
                    // The first chunk is awaited before the head is answered: a
                    // body that fails at once is a failed request (502, audited
                    // so), not a 200 cut before its first byte.
                    r.body = r.body.prefetch().await?;
                    Ok(r)
                })
            },
            |r, event| event.status(r.status.as_u16()).detail("streamed response"),
        )
        .await
    }

    /// A WebSocket handshake (`offer`, from the agent's request) through the
    /// same request path: decided (rules, rate, reason, approval) and recorded
    /// before it leaves, the credential injected into the handshake, the
    /// outcome (`101`, or the upstream's other answer) recorded before the
    /// caller gets the connection. The caller relays frames (scrubbed) after.
    pub async fn execute_upgrade(
        &self,
        caller: &Caller,
        req: ExecuteRequest,
        offer: &airlock_engine::WebSocketOffer,
    ) -> Result<airlock_engine::Upgrade, ExecuteError> {
        // The boxed send may borrow nothing but its arguments (see `Sending`).
        let offer = offer.clone();
        self.round_trip(
            caller,
            &req,
            move |engine, service, injector, upstream, scrubber| {
                Box::pin(async move {
                    engine
                        .send_upgrade(service, injector, upstream, &offer, scrubber)
                        .await
                })
            },
            |r, event| {
                let detail = match r {
                    airlock_engine::Upgrade::Switched(_) => "WebSocket opened",
                    airlock_engine::Upgrade::Answered(_) => {
                        "WebSocket handshake answered without an upgrade"
                    }
                };
                event.status(r.status().as_u16()).detail(detail)
            },
        )
        .await
    }

    /// Decides `req` and sends it ([`Runtime::begin`]) with `send` (one of the
    /// engine's sends, given the engine, the service, the injector, the
    /// authorized request and the scrubber), then writes the outcome record:
    /// the decision's, completed from the answer by `outcome`, with the
    /// duration. When sending fails, the record is completed with the failure
    /// and the error is for the caller.
    async fn round_trip<T>(
        &self,
        caller: &Caller,
        req: &ExecuteRequest,
        send: impl for<'a> FnOnce(
            &'a Engine,
            &'a airlock_config::Service,
            &'a dyn airlock_inject::Injector,
            UpstreamRequest,
            &'a airlock_engine::scrub::Scrubber,
        ) -> Sending<'a, T>,
        outcome: impl FnOnce(&T, Event) -> Event,
    ) -> Result<T, ExecuteError> {
        let p = self.begin(caller, req).await?;
        let scrubber = self.live.scrubber();
        let result = send(
            &p.engine,
            &p.service,
            p.injector.as_ref(),
            p.upstream,
            &scrubber,
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
        let event = outcome(&r, p.event).duration(p.started.elapsed());
        self.write_outcome(&event).await?;
        Ok(r)
    }

    /// Decides one request, writes its decision record and gets everything ready
    /// to send it: the authorized request, the record's `seq`, the injector and
    /// the engine. Write-ahead (DESIGN §7.5): the decision record is durable
    /// before anything that could carry the credential happens — the injector
    /// (which may mint a token upstream) is only fetched after it — and when it
    /// cannot be written nothing is sent. A refusal is audited here.
    async fn begin(&self, caller: &Caller, req: &ExecuteRequest) -> Result<Prepared, ExecuteError> {
        let started = Instant::now();
        self.fresh().await;
        let mut path = req.path.clone();
        if !req.query.is_empty() {
            let extra: String = url::form_urlencoded::Serializer::new(String::new())
                .extend_pairs(req.query.iter())
                .finish();
            path.push(if path.contains('?') { '&' } else { '?' });
            path.push_str(&extra);
        }
        let http = HttpRequest {
            req,
            agent_req: AgentRequest {
                capability: req.capability.clone(),
                method: req.method.clone(),
                path,
                reason: req.reason.clone(),
                approved: false,
            },
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
        let authorized = match self.decide(caller, &http).await {
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
        )
        .await;
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
                    .get_until_recheck(&authorized.service, &mut |name| self.live.secret(name))
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
                engine: self.live.engine(),
                started,
            }),
            Err(e) => Err(self.finish_failed(event.outcome_of(seq), e, started).await),
        }
    }

    /// Audits a refusal and turns it into the error for the caller; when the
    /// refusal cannot be audited, the audit failure is the answer.
    pub(super) async fn refused(
        &self,
        event: Event,
        refusal: Refusal,
        started: Instant,
    ) -> ExecuteError {
        let mut e = event
            .decision(AuditDecision::Deny)
            .rule(refusal.rule.as_deref().unwrap_or(refusal.check.as_str()))
            .detail(&refusal.message)
            .duration(started.elapsed());
        if let Some(s) = &refusal.session {
            e = e.session(s.as_str());
        }
        match self.write_stage(&e, AuditStage::Refusal).await {
            Ok(_) => ExecuteError::Refused(refusal),
            Err(e) => e,
        }
    }

    /// Writes a session that just `started` to the shared state (for `airlock
    /// sessions` and revocation by other processes), on the blocking pool: it
    /// takes the home lock and replaces the file durably.
    pub(super) async fn record_session(
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
        let home = self.home.clone();
        let written = tokio::task::spawn_blocking(move || {
            crate::state::record_session(&home, rec).map_err(|e| e.to_string())
        })
        .await
        .unwrap_or_else(|e| Err(e.to_string()));
        if let Err(e) = written {
            report(&format!("cannot record session {session}: {e}"));
        }
    }

    /// Writes a decision record before anything leaves airlock (DESIGN §7.5):
    /// durable under `audit_fsync = "always"`. An error means nothing may be sent.
    pub(super) async fn write_ahead(&self, event: &Event) -> Result<u64, ExecuteError> {
        self.write_stage(event, AuditStage::Decision).await
    }

    /// Writes the outcome record that completes a decision record; an error
    /// withholds the answer. The answer waits for the write, not for an fsync:
    /// the decision record is durable already, so a power loss before the next
    /// group's fsync leaves a request without outcome, which `audit verify`
    /// lists (docs/audit.md, "Write-ahead"). One fsync per request, not two.
    pub(super) async fn write_outcome(&self, event: &Event) -> Result<u64, ExecuteError> {
        let written = self.audit.record_written(event).await;
        written.map_err(|error| ExecuteError::Audit {
            error,
            stage: AuditStage::Outcome,
        })
    }

    async fn write_stage(&self, event: &Event, stage: AuditStage) -> Result<u64, ExecuteError> {
        let written = self.audit.record(event).await;
        written.map_err(|error| ExecuteError::Audit { error, stage })
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
