//! Team mode's staleness check (issue 15, DESIGN §9): a server whose home is a
//! device of a team follows the team's change log (revocations, the lock,
//! secrets, services); when it has not caught up for longer than
//! `[team] max_staleness` it cannot know what the team revoked, so it refuses
//! every new request until its follower catches up again.
//!
//! The follower (in the binary, over `airlock-team`) calls [`TeamGate::synced`]
//! after every successful catch-up and [`TeamGate::failed`] when one fails; the
//! runtime calls [`TeamGate::check`] before every decision. A server in local
//! mode has no gate and this code never runs.

use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

/// When this server last caught up with its team, and how stale it may get.
#[derive(Debug)]
pub struct TeamGate {
    max: Duration,
    state: Mutex<GateState>,
}

#[derive(Debug)]
struct GateState {
    /// The last successful catch-up (`None`: never, as far as this process knows).
    synced: Option<Instant>,
    /// Why the latest catch-up failed, until one succeeds.
    error: Option<String>,
}

impl TeamGate {
    /// A gate for `max_staleness`; `synced_ago` is how long ago this device last
    /// caught up (from its team state), `None` if it never did.
    pub fn new(max_staleness: Duration, synced_ago: Option<Duration>) -> TeamGate {
        let now = Instant::now();
        TeamGate {
            max: max_staleness,
            state: Mutex::new(GateState {
                synced: synced_ago.map(|ago| now.checked_sub(ago).unwrap_or(now)),
                error: None,
            }),
        }
    }

    /// The follower caught up just now.
    pub fn synced(&self) {
        let mut s = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        s.synced = Some(Instant::now());
        s.error = None;
    }

    /// A catch-up failed: `why` (one line) is told to refused requests.
    pub fn failed(&self, why: &str) {
        let mut s = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        s.error = Some(why.lines().next().unwrap_or_default().to_string());
    }

    /// `Ok` while the last catch-up is at most `max_staleness` old; otherwise the
    /// one-line reason every new request is refused with.
    pub fn check(&self) -> Result<(), GateError> {
        let s = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        let age = s.synced.map(|t| t.elapsed());
        if age.is_some_and(|a| a <= self.max) {
            return Ok(());
        }
        let since = match age {
            Some(a) => format!("for {} s", a.as_secs()),
            None => "since this server started".to_string(),
        };
        let why = s
            .error
            .as_deref()
            .map(|e| format!(" (last attempt: {e})"))
            .unwrap_or_default();
        Err(GateError::Stale(format!(
            "team mode: this device has not caught up with its team {since}, longer than max_staleness ({} s){why}; every request is refused until it has",
            self.max.as_secs()
        )))
    }
}

/// Why [`TeamGate::check`] refuses every new request.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum GateError {
    /// The last catch-up is older than `max_staleness`, or there was none: the
    /// one-line reason (how long, and the last attempt's error if any).
    #[error("{0}")]
    Stale(String),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fresh_passes_stale_or_never_refuses_with_the_reason() {
        let hour = Duration::from_secs(3600);
        assert!(TeamGate::new(hour, Some(Duration::ZERO)).check().is_ok());
        let stale = TeamGate::new(hour, Some(hour * 2));
        stale.failed("database: connection refused\nmore");
        let e = stale.check().unwrap_err().to_string();
        assert!(
            e.contains("for 7200 s") && e.contains("max_staleness (3600 s)"),
            "{e}"
        );
        assert!(e.contains("(last attempt: database: connection refused)") && !e.contains('\n'));
        stale.synced();
        assert!(stale.check().is_ok());
        let never = TeamGate::new(hour, None);
        assert!(
            never
                .check()
                .unwrap_err()
                .to_string()
                .contains("since this server started")
        );
    }
}
