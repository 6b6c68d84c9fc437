//! The decision pipeline.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::{Arc, PoisonError, RwLock};

use airlock_config::{Approval, Capability, Config, DefaultAccess, Mode, Service};
use airlock_exec::{ExecPolicy, Invocation, OwnerEnv};
use airlock_policy::{Decision, Target};

use crate::session::{Grant, SessionEnd, SessionId, Sessions};
use crate::{Clock, RateLimiter};

/// The agent name of the owner's own commands in sessions and audit records.
pub const OWNER: &str = "owner";

/// The rule an audit record names for a request a learning capability allowed
/// (`airlock learn show` reads them back).
pub const LEARNING_RULE: &str = "learning";

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
    /// A way to ask a person on the caller's side (MCP elicitation), tried
    /// alongside `airlock approve` when a request needs approval.
    pub approver: Option<std::sync::Arc<dyn Approver>>,
    /// The owner's own command (`airlock run --proxy`), not an agent: the
    /// capabilities' `agents` lists and `default_access` do not apply (its
    /// `scope` still does), and its HTTP requests through the egress proxy may
    /// use the exec capabilities it was started with.
    pub owner: bool,
    /// A program the MCP `exec` tool started with `inject = "placeholder"`,
    /// reaching its capability's service through the egress proxy: its HTTP
    /// requests use that exec capability, whose reason and approval were
    /// checked when the program was started.
    pub exec_child: bool,
    /// The caveats of an attenuated agent token: checked on every request on
    /// top of everything else (`None`: not an attenuated token).
    pub attenuation: Option<Arc<crate::attenuate::Attenuation>>,
}

/// Asks a person to approve a request through the agent's own client (MCP
/// elicitation). `None` means "no answer this way" (unsupported, dismissed): the
/// request keeps waiting for `airlock approve`/`deny` until the timeout.
pub trait Approver: Send + Sync {
    /// Shows `message` and returns the person's answer, if any.
    fn ask(
        &self,
        message: String,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = Option<bool>> + Send + '_>>;
}

impl std::fmt::Debug for dyn Approver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Approver")
    }
}

impl Caller {
    /// The caller of one connection (MCP over stdio): a grant of its own and
    /// the agent the owner configured for it (`serve --agent`) as trusted;
    /// nothing declared, no scope, approver or attenuation yet.
    pub fn connection(trusted: Option<String>) -> Caller {
        Caller {
            grant: Grant::connection(),
            trusted,
            declared: None,
            scope: None,
            approver: None,
            owner: false,
            exec_child: false,
            attenuation: None,
        }
    }

    /// The caller of the owner's `airlock run --proxy`: agent `owner`, a grant of
    /// its own, limited to `capabilities`.
    pub fn owner_run(capabilities: Vec<String>) -> Caller {
        Caller {
            grant: Grant::run(),
            trusted: Some(OWNER.to_string()),
            declared: None,
            scope: Some(capabilities),
            approver: None,
            owner: true,
            exec_child: false,
            attenuation: None,
        }
    }

    /// The caller of a program that `self` started through the exec tool with
    /// capability `capability`: the same identity and grant (its sessions are
    /// the agent's), limited to that capability.
    pub fn exec_child(&self, capability: &str) -> Caller {
        Caller {
            grant: self.grant.clone(),
            trusted: self.trusted.clone(),
            declared: self.declared.clone(),
            scope: Some(vec![capability.to_string()]),
            approver: None,
            owner: false,
            exec_child: true,
            attenuation: self.attenuation.clone(),
        }
    }

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
    /// A person approved this request (the runtime sets it after the approval
    /// flow; an `approval` capability refuses a request without it).
    pub approved: bool,
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

/// One `exec` request as an agent phrased it.
#[derive(Debug, Clone, Default)]
pub struct ExecAgentRequest {
    /// Capability name (a `mode = "exec"` capability).
    pub capability: String,
    /// The program and its arguments (`command[0]` resolves through the
    /// capability's allow-list only).
    pub command: Vec<String>,
    /// The working directory the agent asks for (must lie inside `workdirs`).
    pub cwd: Option<String>,
    /// Why the agent runs it.
    pub reason: Option<String>,
    /// A person approved this request (see [`AgentRequest::approved`]).
    pub approved: bool,
}

/// An exec request that passed every check: run `invocation` with `policy`.
#[derive(Debug, Clone)]
pub struct AuthorizedExec {
    /// The capability used.
    pub capability: Capability,
    /// Its service (whose secret goes into the child's environment).
    pub service: Service,
    /// The compiled exec policy of the capability (prepares the launch).
    pub policy: Arc<ExecPolicy>,
    /// The checked program, arguments and working directory.
    pub invocation: Invocation,
    /// The session it belongs to.
    pub session: SessionId,
    /// Whether this request started the session.
    pub session_started: bool,
}

/// The exec capabilities of one configuration, compiled
/// ([`ExecPolicy::new`]): allow-lists resolved to canonical paths, workdirs
/// canonicalized, `env` checked. A capability that does not compile keeps its
/// error (shown to the owner at load, and to the agent when it is used).
#[derive(Debug, Clone, Default)]
pub struct ExecPolicies {
    compiled: BTreeMap<String, Result<Arc<ExecPolicy>, Arc<ExecConfigError>>>,
}

/// Why an exec capability cannot be used: kept by [`ExecPolicies`] per capability,
/// shown to the owner at load and to the agent when it is used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ExecConfigError {
    /// The capability names a service that is not configured.
    #[error("capability \"{capability}\": service \"{service}\" is not configured")]
    UnknownService {
        /// The capability.
        capability: String,
        /// The service it names.
        service: String,
    },
    /// The capability does not compile ([`ExecPolicy::new`]).
    #[error(transparent)]
    Policy(#[from] airlock_exec::PolicyError),
}

impl ExecPolicies {
    /// Compiles every `mode = "exec"` capability of `config` against the
    /// owner's environment (`PATH` for bare command names, `HOME` for `~/`).
    pub fn compile(config: &Config, owner: &OwnerEnv) -> ExecPolicies {
        let compiled = config
            .capabilities
            .values()
            .filter(|c| c.mode == Mode::Exec)
            .map(|cap| {
                let policy = match config.services.get(&cap.service) {
                    None => Err(Arc::new(ExecConfigError::UnknownService {
                        capability: cap.name.clone(),
                        service: cap.service.clone(),
                    })),
                    Some(service) => ExecPolicy::new(cap, service, owner)
                        .map(Arc::new)
                        .map_err(|e| Arc::new(e.into())),
                };
                (cap.name.clone(), policy)
            })
            .collect();
        ExecPolicies { compiled }
    }

    /// The compiled policy of capability `name`, or why it could not be
    /// compiled; `None` when it is not an exec capability.
    pub fn get(&self, name: &str) -> Option<Result<&Arc<ExecPolicy>, &ExecConfigError>> {
        self.compiled
            .get(name)
            .map(|r| r.as_ref().map_err(|e| &**e))
    }

    /// The configuration problems, one per capability that did not compile.
    pub fn errors(&self) -> impl Iterator<Item = &ExecConfigError> {
        self.compiled
            .values()
            .filter_map(|r| r.as_ref().err().map(|e| &**e))
    }

    /// Warnings about policies that compiled (an allowed shell or interpreter…).
    pub fn warnings(&self) -> impl Iterator<Item = &str> {
        self.compiled
            .values()
            .filter_map(|r| r.as_ref().ok())
            .flat_map(|p| p.warnings().iter().map(String::as_str))
    }
}

/// The check that refused a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Check {
    /// No such capability.
    Capability,
    /// The agent may not use it.
    Agent,
    /// It is not the kind of capability the tool needs (`execute` needs an HTTP
    /// capability, `exec` an exec one).
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
    /// A caveat of an attenuated agent token refuses it.
    Caveat,
    /// The program is not on the exec capability's allow-list.
    Program,
    /// An argument makes the program run another one, or `deny_args` refuses it.
    Argument,
    /// The working directory is outside the capability's `workdirs`.
    Cwd,
    /// The capability's configuration cannot be used (an exec capability that
    /// did not compile); the owner must fix `airlock.toml`.
    Config,
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
            Check::Caveat => "caveat",
            Check::Program => "program",
            Check::Argument => "argument",
            Check::Cwd => "cwd",
            Check::Config => "config",
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

/// The broker's refusal for an exec-layer refusal: which check it is.
fn exec_refusal(r: airlock_exec::Refusal) -> Refusal {
    use airlock_exec::Refusal as R;
    let check = match &r {
        R::EmptyCommand | R::RelativeProgram { .. } | R::ProgramNotAllowed { .. } => Check::Program,
        R::CwdNotAllowed { .. } | R::CwdInvalid { .. } | R::CwdOutside { .. } => Check::Cwd,
        R::Nul { what } if *what == "cwd" => Check::Cwd,
        _ => Check::Argument,
    };
    refuse(check, r.to_string())
}

/// The configuration in force and its compiled exec policies, swapped together.
#[derive(Debug, Clone)]
struct Snapshot {
    config: Arc<Config>,
    exec: Arc<ExecPolicies>,
}

/// What the shared steps of every decision produce.
struct Decided<T> {
    capability: Capability,
    service: Service,
    specific: T,
    session: SessionId,
    session_started: bool,
}

/// Decides requests against the current configuration and the live sessions.
#[derive(Debug)]
pub struct Broker {
    current: RwLock<Snapshot>,
    sessions: Sessions,
    rate: RateLimiter,
    /// What the owner's incidents locked (`state/revocations.json`, applied by
    /// the runtime whenever the file changes).
    incident_locks: RwLock<Arc<crate::state::IncidentLocks>>,
}

impl Broker {
    /// A broker for `config`, on `clock`; its exec capabilities are compiled
    /// against airlock's own environment ([`OwnerEnv::from_process`]).
    pub fn new(config: Config, clock: Arc<dyn Clock>) -> Broker {
        let exec = ExecPolicies::compile(&config, &OwnerEnv::from_process());
        Broker::with_exec_policies(config, exec, clock)
    }

    /// A broker for `config` with its exec capabilities compiled by the caller.
    pub fn with_exec_policies(config: Config, exec: ExecPolicies, clock: Arc<dyn Clock>) -> Broker {
        Broker {
            current: RwLock::new(Snapshot {
                config: Arc::new(config),
                exec: Arc::new(exec),
            }),
            sessions: Sessions::new(clock.clone()),
            rate: RateLimiter::new(clock),
            incident_locks: RwLock::default(),
        }
    }

    fn snapshot(&self) -> Snapshot {
        self.current
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// The configuration in force.
    pub fn config(&self) -> Arc<Config> {
        self.snapshot().config
    }

    /// The compiled exec capabilities of the configuration in force.
    pub fn exec_policies(&self) -> Arc<ExecPolicies> {
        self.snapshot().exec
    }

    /// Replaces the configuration (a reload), compiling its exec capabilities
    /// against airlock's own environment. Sessions and rate buckets carry over; a
    /// session keeps the TTL it started with.
    pub fn reload(&self, config: Config) {
        let exec = ExecPolicies::compile(&config, &OwnerEnv::from_process());
        self.reload_with_exec_policies(config, exec);
    }

    /// Replaces the configuration and its compiled exec capabilities together.
    pub fn reload_with_exec_policies(&self, config: Config, exec: ExecPolicies) {
        *self.current.write().unwrap_or_else(PoisonError::into_inner) = Snapshot {
            config: Arc::new(config),
            exec: Arc::new(exec),
        };
    }

    /// The live sessions.
    pub fn sessions(&self) -> &Sessions {
        &self.sessions
    }

    /// Replaces the capabilities and agents an incident locked: from now on
    /// every request of theirs is refused, new sessions included.
    pub fn set_incident_locks(&self, locks: crate::state::IncidentLocks) {
        *self
            .incident_locks
            .write()
            .unwrap_or_else(PoisonError::into_inner) = Arc::new(locks);
    }

    /// The refusal when an incident locked `cap` or the caller's identity.
    fn incident_locked(&self, caller: &Caller, cap: &Capability) -> Result<(), Refusal> {
        let locks = self
            .incident_locks
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        let agent = caller.trusted.as_ref().or(caller.declared.as_ref());
        let what = if let Some(at) = locks.capabilities.get(&cap.name) {
            format!(
                "capability \"{}\" was locked by its owner's incident response at {at}",
                cap.name
            )
        } else if let Some((name, at)) = agent.and_then(|a| locks.agents.get_key_value(a)) {
            format!(
                "agent \"{}\" was locked by its owner's incident response at {at}",
                name.escape_debug()
            )
        } else {
            return Ok(());
        };
        Err(refuse(
            Check::Lock,
            format!("{what}; every request is refused until the owner runs `airlock unlock`"),
        ))
    }

    /// Whether `caller` may see and use `cap` at all.
    fn may_use(config: &Config, caller: &Caller, cap: &Capability) -> Result<(), Refusal> {
        if let Some(a) = &caller.attenuation {
            a.check_capability(&cap.name)?;
        }
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
        if caller.owner {
            return Ok(());
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
        if let Some(a) = &caller.attenuation {
            Self::capability(&self.config(), caller, &req.capability)?;
            a.check_request(&req.method, &req.path)?;
        }
        let decided = self.decide(
            caller,
            &req.capability,
            Mode::Http,
            req.reason.as_deref(),
            req.approved,
            |_, cap| {
                let method = airlock_policy::normalize_method(&req.method, &cap.methods)
                    .map_err(|e| refuse(Check::Method, e.to_string()))?;
                let target = airlock_policy::normalize(&req.path)
                    .map_err(|e| refuse(Check::Path, e.to_string()))?;
                let decision = cap.rules.decide(&method, &target);
                if let Some(until) = cap.learn_until {
                    if cap.learning_at(jiff::Timestamp::now()) {
                        // Learning: everything the deny rules leave is
                        // allowed, and recorded as learned.
                        let denied = matches!(
                            &decision,
                            Decision::Deny {
                                reason: airlock_policy::DenyReason::DenyRule(_)
                            }
                        );
                        if !denied {
                            return Ok((method, target, Some(format!("{LEARNING_RULE} until {until}"))));
                        }
                    } else if cap.allow.is_empty() {
                        return Err(refuse(
                            Check::Rule,
                            format!(
                                "capability \"{}\" finished learning at {until} and has no allow rules yet: see what it learned with `airlock learn show {}` and apply it with `airlock learn apply {}`",
                                cap.name, cap.name, cap.name
                            ),
                        ));
                    }
                }
                match decision {
                    Decision::Allow { rule } => Ok((method, target, rule)),
                    Decision::Deny { reason } => {
                        let rule = match &reason {
                            airlock_policy::DenyReason::DenyRule(r) => Some(r.clone()),
                            _ => None,
                        };
                        Err(Refusal {
                            check: Check::Rule,
                            rule,
                            session: None,
                            message: format!("{method} {}: {reason}", target.path),
                        })
                    }
                }
            },
        )?;
        let (method, target, rule) = decided.specific;
        Ok(Authorized {
            capability: decided.capability,
            service: decided.service,
            method,
            target,
            rule,
            session: decided.session,
            session_started: decided.session_started,
        })
    }

    /// Runs every check, in order, for one `exec` request: the same identity,
    /// visibility, session, reason, approval and rate checks as
    /// [`Broker::authorize`], with the capability's compiled [`ExecPolicy`]
    /// (program allow-list, argument guards, `workdirs`) in place of the HTTP
    /// rules.
    pub fn authorize_exec(
        &self,
        caller: &Caller,
        req: &ExecAgentRequest,
    ) -> Result<AuthorizedExec, Refusal> {
        if let Some(a) = &caller.attenuation {
            Self::capability(&self.config(), caller, &req.capability)?;
            a.check_exec()?;
        }
        let decided = self.decide(
            caller,
            &req.capability,
            Mode::Exec,
            req.reason.as_deref(),
            req.approved,
            |exec, cap| {
                let policy = match exec.get(&cap.name) {
                    Some(Ok(p)) => p.clone(),
                    Some(Err(problem)) => {
                        return Err(refuse(
                            Check::Config,
                            format!(
                                "exec capability \"{}\" cannot be used until the owner fixes airlock.toml: {problem}",
                                cap.name
                            ),
                        ));
                    }
                    None => {
                        return Err(refuse(
                            Check::Config,
                            format!("exec capability \"{}\" is not compiled", cap.name),
                        ));
                    }
                };
                let invocation = policy
                    .check(&req.command, req.cwd.as_deref())
                    .map_err(exec_refusal)?;
                Ok((policy, invocation))
            },
        )?;
        let (policy, invocation) = decided.specific;
        Ok(AuthorizedExec {
            capability: decided.capability,
            service: decided.service,
            policy,
            invocation,
            session: decided.session,
            session_started: decided.session_started,
        })
    }

    /// The steps every request shares, in order: capability and visibility,
    /// mode, session, then `specific` (the HTTP rules or the exec policy), reason,
    /// approval, rate, and the session's start.
    fn decide<T>(
        &self,
        caller: &Caller,
        capability: &str,
        mode: Mode,
        reason: Option<&str>,
        approved: bool,
        specific: impl FnOnce(&ExecPolicies, &Capability) -> Result<T, Refusal>,
    ) -> Result<Decided<T>, Refusal> {
        let Snapshot { config, exec } = self.snapshot();
        let cap = Self::capability(&config, caller, capability)?;
        self.incident_locked(caller, &cap)?;
        // The owner's run reaches its exec capabilities' services over HTTP
        // through the egress proxy.
        let owner_http =
            (caller.owner || caller.exec_child) && mode == Mode::Http && cap.mode == Mode::Exec;
        if cap.mode != mode && !owner_http {
            let message = match cap.mode {
                Mode::Exec => format!(
                    "capability \"{}\" runs programs (mode exec); use the exec tool",
                    cap.name
                ),
                _ => format!(
                    "capability \"{}\" is an HTTP capability; use the execute tool",
                    cap.name
                ),
            };
            return Err(refuse(Check::Mode, message));
        }
        if let Some(Err((id, why))) = self.sessions.check(&caller.grant, &cap.name) {
            return Err(session_ended(&cap, id, why));
        }

        let specific = specific(&exec, &cap)?;

        let reason = reason.map(str::trim).filter(|r| !r.is_empty());
        // An exec child's requests: the reason and the approval were the exec
        // call's.
        let child = caller.exec_child && cap.mode == Mode::Exec;
        if cap.requires_reason && reason.is_none() && !child {
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

        // `approval = true`: every request; `"session"`: the first of a session.
        let needs_approval = match cap.approval {
            Approval::Never => false,
            Approval::Always => true,
            Approval::Session => self.sessions.check(&caller.grant, &cap.name).is_none(),
        };
        if needs_approval && !approved && !child {
            return Err(refuse(
                Check::Approval,
                format!(
                    "approval required: capability \"{}\" needs a person to approve this request",
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
        Ok(Decided {
            capability: cap,
            service,
            specific,
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
        if let Some(a) = &caller.attenuation {
            let checked = match (method, path) {
                (Some(m), Some(p)) => a.check_request(m, p),
                _ => Ok(()),
            };
            if let Err(r) = checked {
                steps.push(format!("decision: deny — {r}"));
                return steps;
            }
            steps.push(format!("token: {}, caveats passed", a.label()));
        }
        if let Err(r) = self.incident_locked(caller, &cap) {
            steps.push(format!("decision: deny — {r}"));
            return steps;
        }
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
                "approval: required (a person answers with `airlock approve ID` or `airlock deny ID`)"
                    .into(),
            );
        }
        if let Some(rate) = cap.rate {
            steps.push(format!("rate: {rate} per agent"));
        }
        if let Some(until) = cap.learn_until {
            steps.push(if cap.learning_at(jiff::Timestamp::now()) {
                format!("learning until {until}: every request the deny rules leave is allowed and recorded to write this capability's rules")
            } else {
                format!("learning ended at {until}: every request is refused until the owner applies the learned rules")
            });
        }
        if cap.mode == Mode::Exec {
            match self.exec_policies().get(&cap.name) {
                Some(Ok(policy)) => {
                    let programs: Vec<String> = policy
                        .programs()
                        .iter()
                        .map(|p| format!("{} ({})", p.name, p.canonical.display()))
                        .collect();
                    steps.push(format!("programs allowed: {}", programs.join(", ")));
                    steps.push(
                        "arguments that make a program run another one are refused (git -c, --upload-pack, …)"
                            .into(),
                    );
                    let dirs: Vec<String> = policy
                        .workdirs()
                        .iter()
                        .map(|w| w.display().to_string())
                        .collect();
                    steps.push(if dirs.is_empty() {
                        "cwd: not allowed; commands run in a fresh empty directory".into()
                    } else {
                        format!("cwd: inside {}", dirs.join(", "))
                    });
                }
                Some(Err(problem)) => {
                    steps.push(format!(
                        "decision: deny — unusable configuration: {problem}"
                    ));
                }
                None => {}
            }
            return steps;
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
