//! The decision, with the one approval flow every door uses (DESIGN.md §8).
//!
//! [`Runtime::decide`] checks the owner's state (lock, revocations), then asks
//! the broker. When the only thing missing is a person's approval, the request
//! is held ([`crate::approval::Approvals`]) and shown — exactly as it will be
//! sent — until the owner answers over `control.sock` or the MCP client's
//! elicitation, or `approval_timeout` passes; every answer is audited. An
//! approved request is decided again with `approved` set, and what is then to be
//! sent must hash like what was shown (invariant 13), or nothing is sent.
//!
//! HTTP (`execute`, the gateway) and `exec` differ only in what they show and
//! how the broker decides them: each implements [`Approvable`].

use airlock_audit::{Decision as AuditDecision, Escaped as E, Event, Kind};

use super::{Runtime, agent_event, report};
use crate::approval::{Answer, Ask};
use crate::{Broker, Caller, Check, Refusal, refuse};

/// A request the broker decides and a capability may hold for approval.
pub(super) trait Approvable {
    /// What the broker hands out when it allows the request.
    type Authorized;

    /// The broker's decision, before (`approved = false`) or after a person
    /// approved the request.
    fn authorize(
        &self,
        broker: &Broker,
        caller: &Caller,
        approved: bool,
    ) -> Result<Self::Authorized, Refusal>;

    /// What the person is shown, and the path for the audit records (no query
    /// values).
    fn ask(&self, broker: &Broker, caller: &Caller) -> Result<(Ask, String), Refusal>;

    /// The approved request as it will now be sent, in the form it was shown,
    /// when that can differ from what was shown (the configuration may have
    /// changed while it was held); `None` when what runs is the very request
    /// that was shown.
    fn to_send(&self, authorized: &Self::Authorized, caller: &Caller) -> Option<Ask>;
}

impl Runtime {
    /// Decides one request: the owner's lock and revocations, the broker's
    /// checks, and — when the capability asks for it — a person's approval.
    pub(super) async fn decide<R: Approvable>(
        &self,
        caller: &Caller,
        req: &R,
    ) -> Result<R::Authorized, Refusal> {
        self.check_owner_state().await?;
        match req.authorize(&self.broker, caller, false) {
            Err(r) if r.check == Check::Approval => {}
            decided => return decided,
        }
        let (ask, audit_path) = req.ask(&self.broker, caller)?;
        self.await_approval(caller, &ask, &audit_path).await?;
        let authorized = req.authorize(&self.broker, caller, true)?;
        match req.to_send(&authorized, caller) {
            Some(sent) if sent.hash() != ask.hash() => Err(refuse(
                Check::Approval,
                "the request to send is not the one that was approved (the configuration changed while it was held); nothing was sent, ask again",
            )),
            _ => Ok(authorized),
        }
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
        ask: &Ask,
        audit_path: &str,
    ) -> Result<(), Refusal> {
        let timeout = self.broker.config().server.approval_timeout;
        let mut pending = self.approvals.hold(ask, timeout).map_err(|e| {
            refuse(
                Check::Approval,
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
                        Some(true) => Answer::Approved,
                        Some(false) => Answer::Denied,
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
            Answer::Approved => (Kind::Approve, AuditDecision::Allow, "approved by the owner"),
            Answer::Denied => (Kind::Deny, AuditDecision::Deny, "denied by the owner"),
            Answer::TimedOut => (
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
        if let Err(e) = self.audit.record(&event).await {
            return Err(refuse(
                Check::Approval,
                format!("the approval could not be audited: {e}"),
            ));
        }
        match answer {
            Answer::Approved => Ok(()),
            Answer::Denied => Err(refuse(
                Check::Approval,
                format!("the owner denied this request (approval {})", pending.id),
            )),
            Answer::TimedOut => Err(refuse(
                Check::Approval,
                format!(
                    "approval {} timed out: nobody answered within {}s, so the request is denied",
                    pending.id,
                    timeout.as_secs()
                ),
            )),
        }
    }
}
