//! The decision pipeline.

use std::fmt;
use std::sync::{Arc, PoisonError, RwLock};

use airlock_config::{Approval, Capability, Config, DefaultAccess, Mode, Service};
use airlock_policy::{Decision, Target};

use crate::session::{Grant, SessionEnd, SessionId, Sessions};
use crate::{Clock, RateLimiter};

/// The longest reason accepted, in characters: reasons go into every audit record.
pub const MAX_REASON_LEN: usize = 1000;

/// Who is asking.
#[derive(Debug, Clone)]
pub struct Caller {
    /// The grant sessions attach to: one MCP connection or one gateway token.
    pub grant: Grant,
    /// An identity the owner set (`serve --agent NAME`, or a token's agent).
    pub trusted: Option<String>,
    /// What the client says it is (MCP `clientInfo.name`): recorded, never trusted.
    pub declared: Option<String>,
    /// Capabilities this caller is limited to (a token issued with `--cap`);
    /// `None` = whatever its identity may use.
    pub scope: Option<Vec<String>>,
}

impl Caller {
    /// The name to show and record: the trusted identity, else the declared one
    /// (marked as such), else "unknown".
    pub fn agent(&self) -> String {
        match (&self.trusted, &self.declared) {
            (Some(t), _) => t.clone(),
            (None, Some(d)) => format!("{d} (unverified)"),
            (None, None) => "unknown (unverified)".to_string(),
        }
    }

    /// Whether the identity comes from the owner.
    pub fn is_trusted(&self) -> bool {
        self.trusted.is_some()
    }

    /// The key rate limits count against: the trusted identity, or the grant for
    /// an unverified caller (so renaming itself gives an agent no fresh budget).
    fn rate_key(&self) -> String {
        self.trusted
            .clone()
            .unwrap_or_else(|| self.grant.as_str().to_string())
    }
}

/// One request as an agent phrased it.
#[derive(Debug, Clone, Default)]
pub struct AgentRequest {
    /// Capability name.
    pub capability: String,
    /// HTTP method, any case.
    pub method: String,
    /// Raw path, possibly with `?query`.
    pub path: String,
    /// Why the agent makes this call.
    pub reason: Option<String>,
}

/// A request that passed every check.
#[derive(Debug, Clone)]
pub struct Authorized {
    /// The capability used.
    pub capability: Capability,
    /// Its service (URL, auth).
    pub service: Service,
    /// Upper-cased method.
    pub method: String,
    /// The normalized target: what was checked, and exactly what is to be sent.
    pub target: Target,
    /// The rule that allowed it (`None` when the capability has no allow rules).
    pub rule: Option<String>,
    /// The session it belongs to.
    pub session: SessionId,
    /// Whether this request started the session.
    pub session_started: bool,
}

/// The check that refused a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Check {
    /// No such capability.
    Capability,
    /// The agent may not use it.
    Agent,
    /// It is not an HTTP capability.
    Mode,
    /// The session expired or was revoked.
    Session,
    /// The method is not allowed or not valid.
    Method,
    /// The path cannot be normalized unambiguously.
    Path,
    /// The rules deny it.
    Rule,
    /// A reason is required.
    Reason,
    /// A person must approve it.
    Approval,
    /// Too many requests.
    Rate,
    /// The owner engaged the emergency lock.
    Lock,
}

impl Check {
    /// The check's name in refusals and audit records.
    pub fn as_str(self) -> &'static str {
        match self {
            Check::Capability => "capability",
            Check::Agent => "agent",
            Check::Mode => "mode",
            Check::Session => "session",
            Check::Method => "method",
            Check::Path => "path",
            Check::Rule => "rule",
            Check::Reason => "reason",
            Check::Approval => "approval",
            Check::Rate => "rate",
            Check::Lock => "lock",
        }
    }
}

/// A refused request: which check, which rule, and a message for the agent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    /// The check that refused.
    pub check: Check,
    /// The rule involved, if any.
    pub rule: Option<String>,
    /// The session involved, if any.
    pub session: Option<SessionId>,
    /// One line that says why, for the agent and the audit log.
    pub message: String,
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "refused by the {} check: {}",
            self.check.as_str(),
            self.message
        )
    }
}

/// A refusal from `check` with `message` (for doors that check things the broker
/// does not, such as the emergency lock).
pub fn refuse(check: Check, message: impl Into<String>) -> Refusal {
    Refusal {
        check,
        rule: None,
        session: None,
        message: message.into(),
    }
}

/// Decides requests against the current configuration and the live sessions.
#[derive(Debug)]
pub struct Broker {
    config: RwLock<Arc<Config>>,
    sessions: Sessions,
    rate: RateLimiter,
}

impl Broker {
    /// A broker for `config`, on `clock`.
    pub fn new(config: Config, clock: Arc<dyn Clock>) -> Broker {
        Broker {
            config: RwLock::new(Arc::new(config)),
            sessions: Sessions::new(clock.clone()),
            rate: RateLimiter::new(clock),
        }
    }

    /// The configuration in force.
    pub fn config(&self) -> Arc<Config> {
        self.config
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Replaces the configuration (a reload). Sessions and rate buckets carry
    /// over; a session keeps the TTL it started with.
    pub fn reload(&self, config: Config) {
        *self.config.write().unwrap_or_else(PoisonError::into_inner) = Arc::new(config);
    }

    /// The live sessions.
    pub fn sessions(&self) -> &Sessions {
        &self.sessions
    }

    /// Whether `caller` may see and use `cap` at all.
    fn may_use(config: &Config, caller: &Caller, cap: &Capability) -> Result<(), Refusal> {
        if let Some(scope) = caller
            .scope
            .as_ref()
            .filter(|scope| !scope.iter().any(|c| c == &cap.name))
        {
            return Err(refuse(
                Check::Agent,
                format!(
                    "this agent token is limited to capabilities [{}], not \"{}\"",
                    scope.join(", "),
                    cap.name
                ),
            ));
        }
        match &cap.agents {
            Some(agents) => match &caller.trusted {
                Some(t) if agents.iter().any(|a| a == t) => Ok(()),
                Some(t) => Err(refuse(
                    Check::Agent,
                    format!(
                        "capability \"{}\" is not granted to agent \"{t}\" (its agents: {})",
                        cap.name,
                        agents.join(", ")
                    ),
                )),
                None => Err(refuse(
                    Check::Agent,
                    format!(
                        "capability \"{}\" is limited to agents [{}] and this connection has no trusted identity (a client's self-declared name is not trusted; the owner sets one with `airlock serve --agent NAME` or a token)",
                        cap.name,
                        agents.join(", ")
                    ),
                )),
            },
            None if config.server.default_access == DefaultAccess::Restricted => Err(refuse(
                Check::Agent,
                format!(
                    "capability \"{}\" has no `agents` list and the server's default_access is \"restricted\"",
                    cap.name
                ),
            )),
            None => Ok(()),
        }
    }

    /// The capabilities `caller` may use, by name.
    pub fn visible(&self, caller: &Caller) -> Vec<Capability> {
        let config = self.config();
        config
            .capabilities
            .values()
            .filter(|c| Self::may_use(&config, caller, c).is_ok())
            .cloned()
            .collect()
    }

    fn capability(config: &Config, caller: &Caller, name: &str) -> Result<Capability, Refusal> {
        let cap = config.capabilities.get(name).ok_or_else(|| {
            refuse(
                Check::Capability,
                format!(
                    "unknown capability \"{}\"; call list_services to see the available ones",
                    name.escape_debug()
                ),
            )
        })?;
        Self::may_use(config, caller, cap)?;
        Ok(cap.clone())
    }

    /// Runs every check, in order, for one HTTP request.
    pub fn authorize(&self, caller: &Caller, req: &AgentRequest) -> Result<Authorized, Refusal> {
        let config = self.config();
        let cap = Self::capability(&config, caller, &req.capability)?;
        if cap.mode != Mode::Http {
            return Err(refuse(
                Check::Mode,
                format!(
                    "capability \"{}\" runs programs (mode exec); use the exec tool",
                    cap.name
                ),
            ));
        }
        if let Some(Err((id, why))) = self.sessions.check(&caller.grant, &cap.name) {
            return Err(session_ended(&cap, id, why));
        }

        let method = airlock_policy::normalize_method(&req.method, &cap.methods)
            .map_err(|e| refuse(Check::Method, e.to_string()))?;
        let target =
            airlock_policy::normalize(&req.path).map_err(|e| refuse(Check::Path, e.to_string()))?;
        let rule = match cap.rules.decide(&method, &target) {
            Decision::Allow { rule } => rule,
            Decision::Deny { reason } => {
                let rule = match &reason {
                    airlock_policy::DenyReason::DenyRule(r) => Some(r.clone()),
                    _ => None,
                };
                return Err(Refusal {
                    check: Check::Rule,
                    rule,
                    session: None,
                    message: format!("{method} {}: {reason}", target.path),
                });
            }
        };

        let reason = req
            .reason
            .as_deref()
            .map(str::trim)
            .filter(|r| !r.is_empty());
        if cap.requires_reason && reason.is_none() {
            return Err(refuse(
                Check::Reason,
                format!(
                    "capability \"{}\" requires a reason: say why you make this call in the `reason` argument",
                    cap.name
                ),
            ));
        }
        if reason.is_some_and(|r| r.chars().count() > MAX_REASON_LEN) {
            return Err(refuse(
                Check::Reason,
                format!("the reason is longer than {MAX_REASON_LEN} characters"),
            ));
        }

        if cap.approval != Approval::Never {
            return Err(refuse(
                Check::Approval,
                format!(
                    "approval required: capability \"{}\" needs a person to approve each request, which this server cannot ask for yet",
                    cap.name
                ),
            ));
        }

        if let Some(rate) = cap.rate {
            self.rate
                .try_acquire(&caller.rate_key(), &cap.name, rate)
                .map_err(|wait| {
                    refuse(
                        Check::Rate,
                        format!(
                            "rate limit {rate} for capability \"{}\" reached; retry in {:.1}s",
                            cap.name,
                            wait.as_secs_f64()
                        ),
                    )
                })?;
        }

        let (session, session_started) = self
            .sessions
            .start_or_get(&caller.grant, &caller.agent(), &cap.name, cap.ttl)
            .map_err(|(id, why)| session_ended(&cap, id, why))?;

        let service = config.services.get(&cap.service).cloned().ok_or_else(|| {
            refuse(
                Check::Capability,
                format!("service \"{}\" is not configured", cap.service),
            )
        })?;
        Ok(Authorized {
            capability: cap,
            service,
            method,
            target,
            rule,
            session,
            session_started,
        })
    }

    /// The decision for a hypothetical request, step by step, without starting a
    /// session or spending a rate token (`explain_access`).
    pub fn explain(
        &self,
        caller: &Caller,
        capability: &str,
        method: Option<&str>,
        path: Option<&str>,
    ) -> Vec<String> {
        let config = self.config();
        let mut steps = vec![format!(
            "agent: {} ({})",
            caller.agent(),
            if caller.is_trusted() {
                "trusted identity set by the owner"
            } else {
                "self-declared, not trusted"
            }
        )];
        let cap = match Self::capability(&config, caller, capability) {
            Ok(c) => c,
            Err(r) => {
                steps.push(format!("decision: deny — {r}"));
                return steps;
            }
        };
        steps.push(format!(
            "capability \"{}\": service \"{}\", mode {}, ttl {}s",
            cap.name,
            cap.service,
            if cap.mode == Mode::Http {
                "http"
            } else {
                "exec"
            },
            cap.ttl.as_secs()
        ));
        match self.sessions.check(&caller.grant, &cap.name) {
            None => steps.push("session: none yet; the first allowed request starts one".into()),
            Some(Ok(id)) => steps.push(format!("session: {id} running")),
            Some(Err((id, why))) => {
                steps.push(format!("decision: deny — {}", session_ended(&cap, id, why)));
                return steps;
            }
        }
        if cap.requires_reason {
            steps.push("reason: required".into());
        }
        if cap.approval != Approval::Never {
            steps.push(
                "approval: required (not yet available on this server: requests are refused)"
                    .into(),
            );
        }
        if let Some(rate) = cap.rate {
            steps.push(format!("rate: {rate} per agent"));
        }
        match (method, path) {
            (Some(m), Some(p)) => {
                let e = cap.rules.explain(m, p);
                steps.extend(e.steps);
            }
            _ => steps.extend(cap.rules.describe()),
        }
        steps
    }
}

fn session_ended(cap: &Capability, id: SessionId, why: SessionEnd) -> Refusal {
    let message = match why {
        SessionEnd::Expired => format!(
            "session expired: session {id} for capability \"{}\" reached its ttl of {}s; a new connection or token starts a new session",
            cap.name,
            cap.ttl.as_secs()
        ),
        SessionEnd::Revoked => format!(
            "session {id} for capability \"{}\" was revoked by the owner",
            cap.name
        ),
    };
    Refusal {
        check: Check::Session,
        rule: None,
        session: Some(id),
        message,
    }
}
