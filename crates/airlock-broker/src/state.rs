//! Shared, persisted server state: the sessions servers have started, the owner's
//! revocations, and the emergency lock. Every `serve` process on a home reads the
//! same files, so a revocation or a lock by the CLI applies to the next request in
//! every running server, survives restarts, and is honoured by a server that was
//! down when it was made.
//!
//! | file | content |
//! |---|---|
//! | `state/sessions.json` | sessions started by any server (ids, agent, capability, times) |
//! | `state/revocations.json` | revoked session ids, and "everything started before T" for an agent, a capability, or all |
//! | `state/locked` | present while the emergency lock is on |
//!
//! Servers check `revocations.json` and `locked` with one `stat` each per request
//! and re-read the file only when it changed.

use std::collections::btree_map::Entry;
use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::sync::{Mutex, PoisonError};
use std::time::SystemTime;

use airlock_home::Home;
use serde::{Deserialize, Serialize};

use crate::SessionInfo;

/// Errors reading or writing the state files.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StateError {
    /// A state file is not valid.
    #[error("{} is unreadable ({detail}); remove it to start over", path.display())]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        detail: String,
    },
    /// An unknown session id was given.
    #[error("no session \"{0}\"; see `airlock sessions`")]
    NoSuchSession(String),
    /// A home-level problem.
    #[error(transparent)]
    Home(#[from] airlock_home::HomeError),
}

/// A session as recorded by the server that started it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionRecord {
    /// Session id.
    pub id: String,
    /// The grant (connection or token) it belongs to.
    pub grant: String,
    /// The agent identity.
    pub agent: String,
    /// The capability.
    pub capability: String,
    /// When it started.
    pub started: jiff::Timestamp,
    /// When its TTL ends.
    pub expires: jiff::Timestamp,
    /// The server process.
    pub pid: u32,
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct SessionFile {
    sessions: Vec<SessionRecord>,
}

/// What the owner has revoked.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Revocations {
    /// Individual sessions.
    #[serde(default)]
    pub sessions: BTreeSet<String>,
    /// Per agent: sessions started at or before this instant are revoked.
    #[serde(default)]
    pub agents: BTreeMap<String, jiff::Timestamp>,
    /// Per capability: sessions started at or before this instant are revoked.
    #[serde(default)]
    pub capabilities: BTreeMap<String, jiff::Timestamp>,
    /// Every session started at or before this instant is revoked.
    #[serde(default)]
    pub all: Option<jiff::Timestamp>,
    /// What `airlock incident` locked: refused at every request, new sessions
    /// included, until `airlock unlock`.
    #[serde(default, skip_serializing_if = "IncidentLocks::is_empty")]
    pub locked: IncidentLocks,
}

/// The capabilities and agents an incident locked (`airlock incident`), each
/// with when: every server refuses them at every request — new connections,
/// tokens and sessions too, unlike a revocation — until `airlock unlock`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct IncidentLocks {
    /// Locked capabilities.
    #[serde(default)]
    pub capabilities: BTreeMap<String, jiff::Timestamp>,
    /// Locked agent identities.
    #[serde(default)]
    pub agents: BTreeMap<String, jiff::Timestamp>,
}

impl IncidentLocks {
    /// Whether nothing is locked.
    pub fn is_empty(&self) -> bool {
        self.capabilities.is_empty() && self.agents.is_empty()
    }
}

impl Revocations {
    /// Whether a session with these facts is revoked.
    pub fn revokes(
        &self,
        id: &str,
        agent: &str,
        capability: &str,
        started: jiff::Timestamp,
    ) -> bool {
        self.sessions.contains(id)
            || self.all.is_some_and(|t| started <= t)
            || self.agents.get(agent).is_some_and(|t| started <= *t)
            || self
                .capabilities
                .get(capability)
                .is_some_and(|t| started <= *t)
    }

    /// [`Revocations::revokes`] for a live session.
    pub fn revokes_session(&self, s: &SessionInfo) -> bool {
        self.revokes(s.id.as_str(), &s.agent, &s.capability, s.started_at)
    }
}

/// What `airlock revoke` targets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RevokeTarget {
    /// One session.
    Session(String),
    /// Every session (and token) of an agent.
    Agent(String),
    /// Every session of a capability.
    Capability(String),
    /// Everything: every session and every token.
    All,
}

fn sessions_path(home: &Home) -> PathBuf {
    home.state_dir().join("sessions.json")
}
fn revocations_path(home: &Home) -> PathBuf {
    home.state_dir().join("revocations.json")
}
/// The emergency-lock marker.
pub fn lock_path(home: &Home) -> PathBuf {
    home.state_dir().join("locked")
}

fn read_json<T: for<'de> Deserialize<'de> + Default>(
    path: &std::path::Path,
) -> Result<T, StateError> {
    match std::fs::read(path) {
        Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| StateError::Corrupt {
            path: path.to_path_buf(),
            detail: e.to_string(),
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(T::default()),
        Err(e) => Err(airlock_home::HomeError::io("cannot read", path, e).into()),
    }
}

fn write_json<T: Serialize>(
    home: &Home,
    path: &std::path::Path,
    value: &T,
) -> Result<(), StateError> {
    airlock_home::ensure_private_dir(&home.state_dir())?;
    let bytes = serde_json::to_vec_pretty(value).map_err(|e| StateError::Corrupt {
        path: path.to_path_buf(),
        detail: e.to_string(),
    })?;
    airlock_home::write_atomic(path, &bytes)?;
    Ok(())
}

/// Records a newly started session (takes the home lock).
pub fn record_session(home: &Home, rec: SessionRecord) -> Result<(), StateError> {
    let _lock = home.lock()?;
    let path = sessions_path(home);
    let mut file: SessionFile = read_json(&path)?;
    // Keep the file small: forget sessions that ended more than a day ago.
    let horizon = jiff::Timestamp::now() - jiff::SignedDuration::from_hours(24);
    file.sessions.retain(|s| s.expires > horizon);
    file.sessions.push(rec);
    write_json(home, &path, &file)
}

/// Every recorded session.
pub fn sessions(home: &Home) -> Result<Vec<SessionRecord>, StateError> {
    Ok(read_json::<SessionFile>(&sessions_path(home))?.sessions)
}

/// The current revocations.
pub fn revocations(home: &Home) -> Result<Revocations, StateError> {
    read_json(&revocations_path(home))
}

/// Changes the revocations under the home lock: `change` edits them and says
/// whether it changed anything, and the file is written only then. Returns
/// what `change` gives back.
fn update_revocations<T>(
    home: &Home,
    change: impl FnOnce(&mut Revocations) -> (bool, T),
) -> Result<T, StateError> {
    let _lock = home.lock()?;
    let mut revs = revocations(home)?;
    let (changed, out) = change(&mut revs);
    if changed {
        write_json(home, &revocations_path(home), &revs)?;
    }
    Ok(out)
}

/// Records a revocation (takes the home lock); returns how many recorded sessions
/// it ends now.
pub fn revoke(home: &Home, target: &RevokeTarget) -> Result<usize, StateError> {
    let _lock = home.lock()?;
    let now = jiff::Timestamp::now();
    let recorded = sessions(home)?;
    let mut revs = revocations(home)?;
    let before = recorded
        .iter()
        .filter(|s| s.expires > now && !revs.revokes(&s.id, &s.agent, &s.capability, s.started))
        .count();
    match target {
        RevokeTarget::Session(id) => {
            if !recorded.iter().any(|s| &s.id == id) {
                return Err(StateError::NoSuchSession(id.clone()));
            }
            revs.sessions.insert(id.clone());
        }
        RevokeTarget::Agent(a) => {
            revs.agents.insert(a.clone(), now);
        }
        RevokeTarget::Capability(c) => {
            revs.capabilities.insert(c.clone(), now);
        }
        RevokeTarget::All => revs.all = Some(now),
    }
    write_json(home, &revocations_path(home), &revs)?;
    let after = recorded
        .iter()
        .filter(|s| s.expires > now && !revs.revokes(&s.id, &s.agent, &s.capability, s.started))
        .count();
    Ok(before - after)
}

/// Team mode's hook (issue 15): records a revocation another device of the team
/// made at `at` (takes the home lock). Later instants win, so replaying an older
/// revocation changes nothing; returns whether the file changed.
pub fn apply_team_revocation(
    home: &Home,
    target: &RevokeTarget,
    at: jiff::Timestamp,
) -> Result<bool, StateError> {
    let later = |old: Option<&jiff::Timestamp>| old.is_none_or(|t| *t < at);
    update_revocations(home, |revs| {
        let changed = match target {
            RevokeTarget::Session(id) => revs.sessions.insert(id.clone()),
            RevokeTarget::Agent(a) if later(revs.agents.get(a)) => {
                revs.agents.insert(a.clone(), at);
                true
            }
            RevokeTarget::Capability(c) if later(revs.capabilities.get(c)) => {
                revs.capabilities.insert(c.clone(), at);
                true
            }
            RevokeTarget::All if later(revs.all.as_ref()) => {
                revs.all = Some(at);
                true
            }
            _ => false,
        };
        (changed, changed)
    })
}

/// Team mode's hook (issue 15): records an incident lock on a capability or an
/// agent (`target`) that a device of the team made at `at` (takes the home
/// lock); a lock already there keeps the later instant. Returns whether the
/// file changed.
pub fn apply_team_incident_lock(
    home: &Home,
    target: &RevokeTarget,
    at: jiff::Timestamp,
) -> Result<bool, StateError> {
    update_revocations(home, |revs| {
        let entry = match target {
            RevokeTarget::Capability(c) => revs.locked.capabilities.entry(c.clone()),
            RevokeTarget::Agent(a) => revs.locked.agents.entry(a.clone()),
            _ => return (false, false),
        };
        let changed = match entry {
            Entry::Vacant(v) => {
                v.insert(at);
                true
            }
            Entry::Occupied(mut o) if *o.get() < at => {
                o.insert(at);
                true
            }
            Entry::Occupied(_) => false,
        };
        (changed, changed)
    })
}

/// Team mode's hook (issue 15): an admin device's `airlock unlock` made at
/// `at` releases every incident lock made at or before `at` (takes the home
/// lock); a newer lock stays. Returns what was released.
pub fn release_team_incident_locks(
    home: &Home,
    at: jiff::Timestamp,
) -> Result<IncidentLocks, StateError> {
    update_revocations(home, |revs| {
        let mut released = IncidentLocks::default();
        for (from, to) in [
            (&mut revs.locked.capabilities, &mut released.capabilities),
            (&mut revs.locked.agents, &mut released.agents),
        ] {
            let old: Vec<String> = from
                .iter()
                .filter(|(_, t)| **t <= at)
                .map(|(k, _)| k.clone())
                .collect();
            for k in old {
                if let Some(t) = from.remove(&k) {
                    to.insert(k, t);
                }
            }
        }
        (!released.is_empty(), released)
    })
}

/// Locks `capabilities` and `agents` for an incident (takes the home lock); a
/// name already locked keeps its first instant.
pub fn lock_for_incident(
    home: &Home,
    capabilities: &[String],
    agents: &[String],
) -> Result<(), StateError> {
    let now = jiff::Timestamp::now();
    update_revocations(home, |revs| {
        for c in capabilities {
            revs.locked.capabilities.entry(c.clone()).or_insert(now);
        }
        for a in agents {
            revs.locked.agents.entry(a.clone()).or_insert(now);
        }
        (true, ())
    })
}

/// Releases every incident lock (takes the home lock); returns what was
/// locked. The caller has proven it holds the master key.
pub fn release_incident_locks(home: &Home) -> Result<IncidentLocks, StateError> {
    update_revocations(home, |revs| {
        let released = std::mem::take(&mut revs.locked);
        (!released.is_empty(), released)
    })
}

/// Whether the emergency lock is on.
pub fn is_locked(home: &Home) -> bool {
    lock_path(home).exists()
}

/// Turns the emergency lock on.
pub fn engage_lock(home: &Home) -> Result<(), StateError> {
    airlock_home::ensure_private_dir(&home.state_dir())?;
    let stamp = format!("{}\n", jiff::Timestamp::now());
    airlock_home::write_atomic(&lock_path(home), stamp.as_bytes())?;
    Ok(())
}

/// Turns the emergency lock off. The caller has proven it holds the master key.
pub fn release_lock(home: &Home) -> Result<bool, StateError> {
    match std::fs::remove_file(lock_path(home)) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(airlock_home::HomeError::io("cannot remove", lock_path(home), e).into()),
    }
}

type FileStamp = (Option<SystemTime>, Option<u64>);

/// A server's cached view of one state file, re-read only when its (mtime,
/// length) changes: one `stat` per request instead of a read and a parse.
#[derive(Debug)]
pub struct Watched<T> {
    /// The stamp when last read, and what the file said; `None` before the first read.
    cached: Mutex<Option<(FileStamp, T)>>,
}

impl<T> Default for Watched<T> {
    fn default() -> Self {
        Watched {
            cached: Mutex::new(None),
        }
    }
}

impl<T: Clone> Watched<T> {
    /// The file's content (through `load` when it changed), and whether it changed
    /// since the last call.
    pub fn current<E>(
        &self,
        path: &std::path::Path,
        load: impl FnOnce() -> Result<T, E>,
    ) -> Result<(T, bool), E> {
        let meta = std::fs::metadata(path).ok();
        let stamp: FileStamp = (
            meta.as_ref().and_then(|m| m.modified().ok()),
            meta.as_ref().map(std::fs::Metadata::len),
        );
        let mut cached = self.cached.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some((_, value)) = cached.as_ref().filter(|(seen, _)| *seen == stamp) {
            return Ok((value.clone(), false));
        }
        let value = load()?;
        *cached = Some((stamp, value.clone()));
        Ok((value, true))
    }
}

/// A server's cached view of `revocations.json`.
#[derive(Debug, Default)]
pub struct RevocationWatch(Watched<Revocations>);

impl RevocationWatch {
    /// The revocations in force, and whether they changed since the last call.
    pub fn current(&self, home: &Home) -> Result<(Revocations, bool), StateError> {
        self.0
            .current(&revocations_path(home), || revocations(home))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::test_util::home;

    fn rec(id: &str, agent: &str, cap: &str) -> SessionRecord {
        let now = jiff::Timestamp::now();
        SessionRecord {
            id: id.into(),
            grant: "g".into(),
            agent: agent.into(),
            capability: cap.into(),
            started: now,
            expires: now + jiff::SignedDuration::from_hours(1),
            pid: 1,
        }
    }

    #[test]
    fn revocations_by_id_agent_capability_and_all() {
        let (_d, h) = home();
        for (id, a, c) in [
            ("s1", "a", "x"),
            ("s2", "a", "y"),
            ("s3", "b", "x"),
            ("s4", "b", "y"),
        ] {
            record_session(&h, rec(id, a, c)).unwrap();
        }
        assert_eq!(revoke(&h, &RevokeTarget::Session("s4".into())).unwrap(), 1);
        assert!(matches!(
            revoke(&h, &RevokeTarget::Session("nope".into())),
            Err(StateError::NoSuchSession(_))
        ));
        assert_eq!(revoke(&h, &RevokeTarget::Agent("a".into())).unwrap(), 2);
        assert_eq!(
            revoke(&h, &RevokeTarget::Capability("x".into())).unwrap(),
            1
        );
        assert_eq!(revoke(&h, &RevokeTarget::All).unwrap(), 0);
        let revs = revocations(&h).unwrap();
        // A session that starts after a revocation is not covered by it.
        let later = jiff::Timestamp::now() + jiff::SignedDuration::from_secs(5);
        assert!(!revs.revokes("s9", "a", "z", later));
        assert!(revs.revokes("s9", "a", "z", revs.agents["a"]));
        assert!(!revs.revokes(
            "s9",
            "c",
            "z",
            revs.agents["a"] + jiff::SignedDuration::from_secs(5)
        ));
    }

    #[test]
    fn incident_locks_survive_revocations_and_release_together() {
        let (_d, h) = home();
        lock_for_incident(&h, &["x".into()], &["a".into()]).unwrap();
        let first = revocations(&h).unwrap().locked.capabilities["x"];
        lock_for_incident(&h, &["x".into(), "y".into()], &[]).unwrap();
        // A later revocation keeps the locks, and a lock keeps its first instant.
        revoke(&h, &RevokeTarget::All).unwrap();
        let revs = revocations(&h).unwrap();
        assert_eq!(revs.locked.capabilities["x"], first);
        assert!(revs.locked.capabilities.contains_key("y"));
        assert!(revs.locked.agents.contains_key("a"));
        let released = release_incident_locks(&h).unwrap();
        assert_eq!(released.capabilities.len(), 2);
        assert!(revocations(&h).unwrap().locked.is_empty());
        assert!(release_incident_locks(&h).unwrap().is_empty());
    }

    #[test]
    fn lock_engage_and_release() {
        let (_d, h) = home();
        assert!(!is_locked(&h));
        engage_lock(&h).unwrap();
        assert!(is_locked(&h));
        assert!(release_lock(&h).unwrap());
        assert!(!release_lock(&h).unwrap());
    }

    #[test]
    fn the_watch_rereads_only_on_change() {
        let (_d, h) = home();
        let w = RevocationWatch::default();
        let (r, changed) = w.current(&h).unwrap();
        assert!(changed && r == Revocations::default());
        assert!(!w.current(&h).unwrap().1);
        record_session(&h, rec("s1", "a", "x")).unwrap();
        revoke(&h, &RevokeTarget::Session("s1".into())).unwrap();
        let (r, changed) = w.current(&h).unwrap();
        assert!(changed && r.sessions.contains("s1"));
    }
}
