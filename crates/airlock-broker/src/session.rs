//! Sessions: one per grant (an MCP connection or a gateway token) × capability,
//! from first use until the capability's TTL, a revocation, or a lock (DESIGN.md §5).

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use crate::Clock;

/// What a session belongs to: one MCP connection, or one gateway token.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Grant(String);

impl Grant {
    /// A grant for one MCP connection; each connection gets a fresh random id.
    pub fn connection() -> Grant {
        Grant(format!("conn-{}", random_hex(8)))
    }

    /// A grant for one `airlock run --proxy` (a fresh random id each run).
    pub fn run() -> Grant {
        Grant(format!("run-{}", random_hex(8)))
    }

    /// The grant of a gateway token, by the token's public id.
    pub fn token(id: &str) -> Grant {
        Grant(format!("token-{id}"))
    }

    /// The grant's id, for audit records.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A session's public id (`s-` and 16 hex digits).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct SessionId(String);

impl SessionId {
    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for SessionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

fn random_hex(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    // The OS RNG failing is not something a request can recover from; an id from a
    // zeroed buffer would still be unique per process thanks to the counter below.
    if getrandom::fill(&mut buf).is_err() {
        static COUNTER: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let n = COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        buf[..8.min(bytes)].copy_from_slice(&n.to_be_bytes()[..8.min(bytes)]);
    }
    hex::encode(buf)
}

/// Why a session ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionEnd {
    /// Its TTL ran out.
    Expired,
    /// The owner revoked it.
    Revoked,
}

#[derive(Debug, Clone)]
struct Session {
    id: SessionId,
    agent: String,
    capability: String,
    started: Duration,
    started_at: jiff::Timestamp,
    expires: Duration,
    revoked: bool,
}

/// A session as `airlock sessions` shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionInfo {
    /// Its id.
    pub id: SessionId,
    /// The grant it belongs to.
    pub grant: String,
    /// The agent identity that started it.
    pub agent: String,
    /// The capability.
    pub capability: String,
    /// Time left, or `None` when it has ended.
    pub remaining: Option<Duration>,
    /// Why it ended, if it has.
    pub ended: Option<SessionEnd>,
    /// When it started (wall clock), for revocations by time.
    pub started_at: jiff::Timestamp,
}

/// All sessions of one server.
#[derive(Debug)]
pub struct Sessions {
    clock: Arc<dyn Clock>,
    map: Mutex<HashMap<(Grant, String), Session>>,
}

impl Sessions {
    /// No sessions yet.
    pub fn new(clock: Arc<dyn Clock>) -> Sessions {
        Sessions {
            clock,
            map: Mutex::new(HashMap::new()),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<(Grant, String), Session>> {
        self.map.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The state of this grant's session for `capability`: `None` when there is
    /// none yet, `Ok(id)` while it runs, `Err((id, why))` once it has ended.
    pub fn check(
        &self,
        grant: &Grant,
        capability: &str,
    ) -> Option<Result<SessionId, (SessionId, SessionEnd)>> {
        let now = self.clock.now();
        let map = self.lock();
        let s = map.get(&(grant.clone(), capability.to_string()))?;
        Some(state(s, now))
    }

    /// Returns the running session, or starts one with `ttl` if there is none
    /// (then `.1` is true). An ended session is never restarted for the same grant.
    pub fn start_or_get(
        &self,
        grant: &Grant,
        agent: &str,
        capability: &str,
        ttl: Duration,
    ) -> Result<(SessionId, bool), (SessionId, SessionEnd)> {
        let now = self.clock.now();
        let mut map = self.lock();
        let mut started = false;
        let s = map
            .entry((grant.clone(), capability.to_string()))
            .or_insert_with(|| {
                started = true;
                Session {
                    id: SessionId(format!("s-{}", random_hex(8))),
                    agent: agent.to_string(),
                    capability: capability.to_string(),
                    started: now,
                    started_at: jiff::Timestamp::now(),
                    expires: now.saturating_add(ttl),
                    revoked: false,
                }
            });
        state(s, now).map(|id| (id, started))
    }

    /// Revokes every session that `pred` selects; returns how many.
    pub fn revoke_where(&self, pred: impl Fn(&SessionInfo) -> bool) -> usize {
        let now = self.clock.now();
        let mut n = 0;
        for ((grant, _), s) in self.lock().iter_mut() {
            if !s.revoked && pred(&info(grant, s, now)) {
                s.revoked = true;
                n += 1;
            }
        }
        n
    }

    /// Every session, running or ended, by id.
    pub fn list(&self) -> Vec<SessionInfo> {
        let now = self.clock.now();
        let mut out: Vec<SessionInfo> = self
            .lock()
            .iter()
            .map(|((grant, _), s)| info(grant, s, now))
            .collect();
        out.sort_by(|a, b| a.id.0.cmp(&b.id.0));
        out
    }

    /// When a session started, relative to the clock (for tests and `sessions`).
    pub fn started(&self, id: &SessionId) -> Option<Duration> {
        self.lock()
            .values()
            .find(|s| &s.id == id)
            .map(|s| s.started)
    }
}

fn state(s: &Session, now: Duration) -> Result<SessionId, (SessionId, SessionEnd)> {
    if s.revoked {
        Err((s.id.clone(), SessionEnd::Revoked))
    } else if now >= s.expires {
        Err((s.id.clone(), SessionEnd::Expired))
    } else {
        Ok(s.id.clone())
    }
}

fn info(grant: &Grant, s: &Session, now: Duration) -> SessionInfo {
    let ended = state(s, now).err().map(|(_, why)| why);
    SessionInfo {
        id: s.id.clone(),
        grant: grant.0.clone(),
        agent: s.agent.clone(),
        capability: s.capability.clone(),
        remaining: ended.is_none().then(|| s.expires.saturating_sub(now)),
        ended,
        started_at: s.started_at,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ManualClock;

    #[test]
    fn ttl_runs_from_first_use_and_an_ended_session_stays_ended() {
        let clock = ManualClock::new();
        let s = Sessions::new(clock.clone());
        let g = Grant::connection();
        assert!(s.check(&g, "c").is_none());
        clock.advance(Duration::from_secs(100));
        let (id, new) = s
            .start_or_get(&g, "a", "c", Duration::from_secs(60))
            .unwrap();
        assert!(new);
        clock.advance(Duration::from_secs(59));
        assert_eq!(
            s.start_or_get(&g, "a", "c", Duration::from_secs(60))
                .unwrap(),
            (id.clone(), false)
        );
        clock.advance(Duration::from_secs(1));
        assert_eq!(
            s.check(&g, "c"),
            Some(Err((id.clone(), SessionEnd::Expired)))
        );
        assert!(
            s.start_or_get(&g, "a", "c", Duration::from_secs(60))
                .is_err()
        );
        // A new connection gets a new session.
        let g2 = Grant::connection();
        assert_ne!(
            s.start_or_get(&g2, "a", "c", Duration::from_secs(60))
                .unwrap()
                .0,
            id
        );
    }

    #[test]
    fn revocation_ends_selected_sessions() {
        let clock = ManualClock::new();
        let s = Sessions::new(clock);
        let g = Grant::connection();
        let (a, _) = s
            .start_or_get(&g, "agent1", "c1", Duration::from_secs(60))
            .unwrap();
        let (b, _) = s
            .start_or_get(&g, "agent1", "c2", Duration::from_secs(60))
            .unwrap();
        assert_eq!(s.revoke_where(|i| i.capability == "c1"), 1);
        assert_eq!(s.check(&g, "c1"), Some(Err((a, SessionEnd::Revoked))));
        assert_eq!(s.check(&g, "c2"), Some(Ok(b)));
        assert_eq!(s.revoke_where(|_| true), 1);
    }
}
