//! Human approval (DESIGN.md §8): a request to an `approval` capability waits
//! until a person answers or `approval_timeout` passes (then it is denied).
//!
//! Pending requests live in `state/approvals/<id>.json`, so any `serve` process
//! can hold one and the CLI can list and answer them: `airlock approve` lists,
//! `airlock approve ID` / `airlock deny ID` write `state/approvals/<id>.answer`,
//! which the waiting server picks up within 100 ms.
//!
//! Trust: answering needs write access to the airlock home, like every other owner
//! action. An agent running as the same OS user with a shell could write the
//! answer itself — the same limit as reading `master.key`; see the threat model.

use std::path::PathBuf;
use std::time::Duration;

use airlock_home::Home;
use serde::{Deserialize, Serialize};

use crate::state::StateError;

/// What a held request asks for, as the person sees it.
#[derive(Debug, Clone)]
pub struct Ask {
    /// The agent identity.
    pub agent: String,
    /// The capability.
    pub capability: String,
    /// HTTP method (or `EXEC`).
    pub method: String,
    /// The path (or the command line, scrubbed).
    pub path: String,
    /// The agent's reason.
    pub reason: Option<String>,
}

/// A pending approval as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PendingRecord {
    /// Its id (`ap-` and 8 hex digits).
    pub id: String,
    /// The agent identity.
    pub agent: String,
    /// The capability.
    pub capability: String,
    /// HTTP method or `EXEC`.
    pub method: String,
    /// Path or command line.
    pub path: String,
    /// The agent's reason.
    pub reason: Option<String>,
    /// When it was asked.
    pub created: jiff::Timestamp,
    /// When it will be denied for lack of an answer.
    pub expires: jiff::Timestamp,
    /// The server process holding it.
    pub pid: u32,
}

/// How a request was answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Answer {
    /// A person approved it.
    Approved,
    /// A person denied it.
    Denied,
    /// Nobody answered in time.
    TimedOut,
}

/// A request being held.
#[derive(Debug)]
pub struct Pending {
    /// Its id.
    pub id: String,
    dir: PathBuf,
}

fn dir(home: &Home) -> PathBuf {
    home.state_dir().join("approvals")
}

fn valid_id(id: &str) -> bool {
    id.len() == 11 && id.starts_with("ap-") && id[3..].bytes().all(|b| b.is_ascii_hexdigit())
}

/// Queues a request for approval.
pub fn request(home: &Home, ask: &Ask, timeout: Duration) -> Result<Pending, StateError> {
    let dir = dir(home);
    airlock_home::ensure_private_dir(&home.state_dir())?;
    airlock_home::ensure_private_dir(&dir)?;
    let mut raw = [0u8; 4];
    getrandom::fill(&mut raw).map_err(|e| StateError::Corrupt {
        path: dir.clone(),
        detail: format!("random: {e}"),
    })?;
    let id = format!("ap-{}", hex::encode(raw));
    let now = jiff::Timestamp::now();
    let rec = PendingRecord {
        id: id.clone(),
        agent: ask.agent.clone(),
        capability: ask.capability.clone(),
        method: ask.method.clone(),
        path: ask.path.clone(),
        reason: ask.reason.clone(),
        created: now,
        expires: now
            .checked_add(
                jiff::SignedDuration::try_from(timeout).unwrap_or(jiff::SignedDuration::MAX),
            )
            .unwrap_or(now),
        pid: std::process::id(),
    };
    let bytes = serde_json::to_vec_pretty(&rec).map_err(|e| StateError::Corrupt {
        path: dir.clone(),
        detail: e.to_string(),
    })?;
    airlock_home::write_atomic(&dir.join(format!("{id}.json")), &bytes)?;
    Ok(Pending { id, dir })
}

impl Pending {
    /// Waits for the answer (polling every 100 ms) or the timeout; removes the
    /// request either way.
    pub async fn wait(&self, timeout: Duration) -> Answer {
        let deadline = tokio::time::Instant::now() + timeout;
        let answer_path = self.dir.join(format!("{}.answer", self.id));
        let answer = loop {
            if let Ok(text) = std::fs::read_to_string(&answer_path) {
                break if text.trim() == "approve" {
                    Answer::Approved
                } else {
                    Answer::Denied
                };
            }
            if tokio::time::Instant::now() >= deadline {
                break Answer::TimedOut;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        };
        let _ = std::fs::remove_file(&answer_path);
        let _ = std::fs::remove_file(self.dir.join(format!("{}.json", self.id)));
        answer
    }
}

impl Pending {
    /// Removes the request's files (it was answered another way).
    pub fn withdraw(&self) {
        let _ = std::fs::remove_file(self.dir.join(format!("{}.answer", self.id)));
        let _ = std::fs::remove_file(self.dir.join(format!("{}.json", self.id)));
    }
}

/// The requests waiting for an answer now (held by a live server, not expired).
pub fn pending(home: &Home) -> Result<Vec<PendingRecord>, StateError> {
    let dir = dir(home);
    let Ok(entries) = std::fs::read_dir(&dir) else {
        return Ok(Vec::new());
    };
    let now = jiff::Timestamp::now();
    let mut out = Vec::new();
    for e in entries.flatten() {
        let path = e.path();
        if path.extension().is_none_or(|x| x != "json") {
            continue;
        }
        let Ok(bytes) = std::fs::read(&path) else {
            continue;
        };
        let Ok(rec) = serde_json::from_slice::<PendingRecord>(&bytes) else {
            continue;
        };
        let alive = std::path::Path::new(&format!("/proc/{}", rec.pid)).exists()
            || !cfg!(target_os = "linux");
        let answered = dir.join(format!("{}.answer", rec.id)).exists();
        if rec.expires > now && alive && !answered {
            out.push(rec);
        }
    }
    out.sort_by_key(|r| r.created);
    Ok(out)
}

/// Answers a pending request.
pub fn answer(home: &Home, id: &str, approve: bool) -> Result<PendingRecord, StateError> {
    let rec = pending(home)?
        .into_iter()
        .find(|r| r.id == id)
        .filter(|_| valid_id(id))
        .ok_or_else(|| StateError::NoSuchApproval(id.to_string()))?;
    let text = if approve { "approve\n" } else { "deny\n" };
    airlock_home::write_atomic(&dir(home).join(format!("{id}.answer")), text.as_bytes())?;
    Ok(rec)
}
