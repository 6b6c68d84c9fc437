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
//!
//! # Layout: which module owns what
//!
//! | module | owns |
//! |---|---|
//! | `broker` | the decision: [`Broker`], [`Caller`], [`Refusal`]; pure, no I/O |
//! | `session`, `rate`, `clock` | live sessions with TTL, rate buckets, time |
//! | [`state`], [`tokens`] | the shared files in `state/` (sessions, revocations, lock, agent tokens) |
//! | [`attenuate`] | attenuable agent tokens: the macaroon chain, caveats, their checks |
//! | [`approval`] | held requests by id, what a person is shown ([`approval::Ask`]) and its hash |
//! | [`control`] | the admin socket's commands (`control.sock`) |
//! | [`team_gate`] | team mode's staleness check (fail closed when not caught up within `max_staleness`) |
//! | `runtime` | a running server, the [`Runtime`] every door calls; split below |
//! | `runtime::live` | state and reload: engine, scrubber and vault snapshots; `airlock.toml` and vault changes loaded on the blocking pool and swapped in |
//! | `runtime::audit_writer` | the audit log, owned by one dedicated thread: appends, group-commit fsyncs, the batch timer |
//! | `runtime::approve` | the decision with the one approval flow (HTTP and exec alike) |
//! | `runtime::request` | the request path of the HTTP doors, and the steps `exec` shares |
//! | `runtime::exec` | the same path around a child process |
//!
//! # The request path, in order
//!
//! Every door — MCP `execute`, the HTTP gateway, MCP `exec` — goes through the
//! same steps in [`Runtime`]:
//! 1. **fresh**: a changed `airlock.toml` or vault is loaded (off the async
//!    workers) and swapped in, so an edit applies from the next request;
//! 2. **decide**: the owner's lock and revocations, then the broker's checks
//!    above; when only an approval is missing, the request is held, shown
//!    exactly as it will be sent, and decided again after the answer, which
//!    is bound to its hash (DESIGN.md §8). A refusal is audited and returned;
//! 3. **write-ahead audit**: the decision record is durable (with
//!    `audit_fsync = "always"`) before anything leaves; if it cannot be
//!    written, nothing is sent (DESIGN.md §7.5);
//! 4. **inject**: the service's injector is fetched only now (it may mint a
//!    token upstream); for exec, the secret is read and the child's
//!    environment prepared;
//! 5. **send**: the engine sends exactly the authorized target to the
//!    service's origin (exec: the child runs, confined);
//! 6. **scrub**: every vault secret is redacted from what comes back;
//! 7. **outcome record**: status, bytes and duration, written before the
//!    answer is returned (it names the decision record).
//!
//! No step blocks an async worker: records are written and fsynced by the
//! audit writer thread (the request awaits its answer), file loading and the
//! shared-state writes run on the blocking pool; what stays in place is one
//! `stat` per watched file (`airlock.toml`, `vault.json`, `state/locked`,
//! `state/revocations.json`).
#![forbid(unsafe_code)]
#![deny(missing_docs)]
#![cfg_attr(test, allow(clippy::unwrap_used))]

pub mod approval;
pub mod attenuate;
mod broker;
mod clock;
pub mod control;
mod rate;
mod runtime;
mod session;
pub mod state;
pub mod team_gate;
pub mod tokens;

pub use broker::{
    AgentRequest, Approver, Authorized, AuthorizedExec, Broker, Caller, Check, ExecAgentRequest,
    ExecConfigError, ExecPolicies, LEARNING_RULE, MAX_REASON_LEN, OWNER, Refusal, refuse,
};
pub use clock::{Clock, ManualClock, SystemClock};
pub use rate::RateLimiter;
pub use runtime::{
    AuditStage, AuditWriteError, ChildEgress, ChildProxy, ExecOutcome, ExecRequest, ExecuteError,
    ExecuteRequest, ExecuteResponse, LoadError, Runtime, RuntimeError, SessionClosed,
};
pub use session::{Grant, SessionEnd, SessionId, SessionInfo, Sessions};

/// What the crate's unit tests share.
#[cfg(test)]
mod test_util {
    use airlock_home::Home;

    /// A fresh home `h` (created) inside a temporary directory that lives as
    /// long as the returned guard.
    pub(crate) fn home() -> (tempfile::TempDir, Home) {
        let d = tempfile::tempdir().unwrap();
        let h = Home::at(d.path().join("h"));
        h.ensure_dir().unwrap();
        (d, h)
    }
}
