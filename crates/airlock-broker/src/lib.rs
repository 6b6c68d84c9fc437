//! airlock's request broker: agent identity, visibility, sessions with TTL, rate
//! limits and the policy decision, shared by MCP, the HTTP gateway and exec mode.
//!
//! Every HTTP request goes through [`Broker::authorize`] and every `exec` request
//! through [`Broker::authorize_exec`]; both run the same shared steps in a
//! fixed order and either return an [`Authorized`] request — whose normalized
//! target is exactly what the engine will send (DESIGN.md §7.3) — or an
//! [`AuthorizedExec`] (the checked program, arguments and cwd), or a [`Refusal`]
//! that names the check and the rule. The doors (MCP, gateway, exec) only translate
//! their wire format into a [`Caller`] and an [`AgentRequest`] or
//! [`ExecAgentRequest`]; none of them makes a
//! decision of its own, so no check can be forgotten on one of them (§7.8).
//!
//! The order, and why:
//! 1. capability exists and is visible to this agent (`agents`, `default_access`);
//!    only trusted identities match an `agents` list (§5);
//! 2. capability mode is the tool's (`http` for `execute`, `exec` for `exec`);
//! 3. the session for this grant × capability has not ended (TTL, revocation);
//! 4. HTTP: method and path normalize, and the rules allow them (deny wins);
//!    exec: the capability's compiled [`airlock_exec::ExecPolicy`] (compiled
//!    once per configuration load, see [`ExecPolicies`]) resolves the program
//!    through its allow-list, applies the argument guards and checks the cwd;
//! 5. a reason is given when `requires_reason`;
//! 6. approval (held for a person; refused until approval lands);
//! 7. the rate limit — last, so refused requests do not consume tokens;
//! 8. a session starts at the first allowed use.
#![forbid(unsafe_code)]
#![deny(missing_docs)]
#![cfg_attr(test, allow(clippy::unwrap_used))]

pub mod approval;
mod broker;
mod clock;
pub mod control;
mod rate;
mod runtime;
mod session;
pub mod state;
pub mod tokens;

pub use broker::{
    AgentRequest, Approver, Authorized, AuthorizedExec, Broker, Caller, Check, ExecAgentRequest,
    ExecPolicies, MAX_REASON_LEN, Refusal, refuse,
};
pub use clock::{Clock, ManualClock, SystemClock};
pub use rate::RateLimiter;
pub use runtime::{
    ExecOutcome, ExecRequest, ExecuteError, ExecuteRequest, ExecuteResponse, Runtime, RuntimeError,
};
pub use session::{Grant, SessionEnd, SessionId, SessionInfo, Sessions};
