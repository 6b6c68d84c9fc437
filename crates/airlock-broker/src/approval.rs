//! Human approval (DESIGN.md §8): a request to an `approval` capability waits
//! until a person answers or `approval_timeout` passes (then it is denied).
//!
//! How an answer travels. The server that holds a request keeps it in memory, in
//! its [`Approvals`] (id → the waiting request's one-shot channel), and nowhere
//! else: nothing is written to disk. An answer reaches it by one of the owner's
//! channels only (DESIGN.md §7, invariant 13):
//!
//! - the agent's own MCP client, through elicitation (the runtime asks it);
//! - the server's admin socket (`control.sock`, see [`crate::control`]):
//!   `{"cmd":"approvals"}` lists what this server holds, `{"cmd":"answer","id":…,
//!   "approve":…}` answers one. `airlock approve` / `airlock deny ID` send these to
//!   every running server; exactly one holds the id. The socket is 0600 in the
//!   0700 home, and the server refuses a peer whose uid is not its own.
//!
//! An answer wakes the waiting request at once, and applies once: the id is taken
//! out of the map by the first answer, by the timeout or when the request is
//! abandoned, whichever comes first, and a later answer is told the id is not
//! pending.
//!
//! Why no file is an answer: anything that can write under `$AIRLOCK_HOME/state/`
//! — a program an agent started, if confinement were ever missing or wrong — could
//! otherwise approve its own request. Earlier versions polled
//! `state/approvals/<id>.answer`; such files are now ignored (never read), like any
//! other file that appears there.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::sync::oneshot;

/// What a held request asks for, exactly as it will be sent (DESIGN.md §7,
/// invariant 13): the person sees all of it, and the answer is bound to its
/// [`Ask::hash`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Ask {
    /// The agent identity (the same name every audit record of the request carries).
    pub agent: String,
    /// Whether the owner set that identity (`serve --agent`, a token) or the
    /// client declared it (then it is not trusted).
    pub agent_trusted: bool,
    /// The capability.
    pub capability: String,
    /// HTTP method (or `EXEC`).
    pub method: String,
    /// The normalized path with its query, as sent (or the command line, scrubbed).
    pub path: String,
    /// The full URL that is sent: the service's origin and base path, the
    /// normalized path and the whole query (HTTP only).
    pub url: Option<String>,
    /// The working directory asked for (exec only).
    pub cwd: Option<String>,
    /// The headers the agent set, as given, in order.
    pub headers: Vec<(String, String)>,
    /// Size of the body (or of the child's stdin), in bytes.
    pub body_bytes: u64,
    /// SHA-256 of the body (or stdin), lowercase hex (that of nothing when empty).
    pub body_sha256: String,
    /// The agent's reason.
    pub reason: Option<String>,
}

impl Ask {
    /// The size and SHA-256 of a body, for [`Ask::body_bytes`] and
    /// [`Ask::body_sha256`].
    pub fn body_digest(body: Option<&[u8]>) -> (u64, String) {
        use sha2::Digest;
        let body = body.unwrap_or_default();
        (body.len() as u64, hex::encode(sha2::Sha256::digest(body)))
    }

    /// The hash an answer is bound to: SHA-256 over a versioned, fixed-order
    /// serialization of everything above, so a request that differs in any shown
    /// part (a query parameter, a header, one byte of the body) has another hash.
    pub fn hash(&self) -> String {
        use sha2::Digest;
        let mut h = sha2::Sha256::new();
        h.update(b"airlock approval v1\n");
        // Serializing strings, integers and bools into memory cannot fail.
        h.update(serde_json::to_vec(self).unwrap_or_default());
        hex::encode(h.finalize())
    }

    /// The question a person reads (the MCP client's elicitation form, the
    /// server's log line): every agent-chosen part with its control characters
    /// escaped (invariant 14).
    pub fn prompt(&self, id: &str) -> String {
        use airlock_audit::Escaped as E;
        let mut out = format!(
            "airlock: approve this request?\nagent: {}{}\ncapability: {}\nrequest: {} {}\n",
            E(&self.agent),
            if self.agent_trusted {
                ""
            } else {
                " (self-declared, not verified)"
            },
            E(&self.capability),
            E(&self.method),
            E(&self.path),
        );
        if let Some(url) = &self.url {
            out.push_str(&format!("url: {}\n", E(url)));
        }
        if let Some(cwd) = &self.cwd {
            out.push_str(&format!("cwd: {}\n", E(cwd)));
        }
        if self.headers.is_empty() {
            out.push_str("headers: (none)\n");
        } else {
            out.push_str("headers:\n");
            for (k, v) in &self.headers {
                out.push_str(&format!("  {}: {}\n", E(k), E(v)));
            }
        }
        out.push_str(&format!(
            "body: {} bytes, sha256 {}\nreason: {}\nrequest hash: {}\n(or answer with `airlock approve {id}` / `airlock deny {id}`)",
            self.body_bytes,
            self.body_sha256,
            self.reason.as_deref().map_or_else(|| "(none given)".to_string(), |r| E(r).to_string()),
            self.hash(),
        ));
        out
    }
}

/// A pending approval as listed (`{"cmd":"approvals"}`, `airlock approve`): the
/// request exactly as it will be sent ([`Ask`]), its hash, and its timing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PendingRecord {
    /// Its id (`ap-` and 8 hex digits).
    pub id: String,
    /// The agent identity.
    pub agent: String,
    /// Whether that identity is trusted (set by the owner).
    #[serde(default)]
    pub agent_trusted: bool,
    /// The capability.
    pub capability: String,
    /// HTTP method or `EXEC`.
    pub method: String,
    /// Normalized path with query, or command line.
    pub path: String,
    /// The full URL with its query (HTTP).
    #[serde(default)]
    pub url: Option<String>,
    /// The working directory (exec).
    #[serde(default)]
    pub cwd: Option<String>,
    /// The headers the agent set.
    #[serde(default)]
    pub headers: Vec<(String, String)>,
    /// Body (or stdin) size in bytes.
    #[serde(default)]
    pub body_bytes: u64,
    /// Body (or stdin) SHA-256, hex.
    #[serde(default)]
    pub body_sha256: String,
    /// The agent's reason.
    pub reason: Option<String>,
    /// The hash the answer is bound to ([`Ask::hash`]).
    #[serde(default)]
    pub hash: String,
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

/// Why an answer was not taken.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AnswerError {
    /// This server holds no pending request with this id (never asked, already
    /// answered, timed out or abandoned).
    #[error(
        "no pending approval \"{0}\"; `airlock approve` lists them (it may have timed out or been answered)"
    )]
    NotPending(String),
    /// The answer names a request hash that is not the held request's: the
    /// person saw another request.
    #[error(
        "approval \"{0}\" is for another request than the one you were shown (its hash differs); run `airlock approve` to see it again"
    )]
    OtherRequest(String),
}

/// Why a request could not be held.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum HoldError {
    /// No random id could be drawn.
    #[error("no random approval id: {0}")]
    Random(String),
}

struct Held {
    record: PendingRecord,
    answer: oneshot::Sender<bool>,
}

/// The requests this server holds for a person's answer, by id. Cloning shares
/// the same map.
#[derive(Clone, Default)]
pub struct Approvals {
    held: Arc<Mutex<HashMap<String, Held>>>,
}

impl std::fmt::Debug for Approvals {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Approvals")
            .field("pending", &self.lock().len())
            .finish()
    }
}

impl Approvals {
    /// An empty set.
    pub fn new() -> Approvals {
        Approvals::default()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Held>> {
        self.held.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Holds a request until [`Pending::wait`] ends; its id is new and random.
    pub fn hold(&self, ask: &Ask, timeout: Duration) -> Result<Pending, HoldError> {
        let now = jiff::Timestamp::now();
        let expires = jiff::SignedDuration::try_from(timeout)
            .ok()
            .and_then(|d| now.checked_add(d).ok())
            .unwrap_or(jiff::Timestamp::MAX);
        let (tx, rx) = oneshot::channel();
        let mut held = self.lock();
        let id = loop {
            let mut raw = [0u8; 4];
            getrandom::fill(&mut raw).map_err(|e| HoldError::Random(e.to_string()))?;
            let id = format!("ap-{}", hex::encode(raw));
            if !held.contains_key(&id) {
                break id;
            }
        };
        let record = PendingRecord {
            id: id.clone(),
            agent: ask.agent.clone(),
            agent_trusted: ask.agent_trusted,
            capability: ask.capability.clone(),
            method: ask.method.clone(),
            path: ask.path.clone(),
            url: ask.url.clone(),
            cwd: ask.cwd.clone(),
            headers: ask.headers.clone(),
            body_bytes: ask.body_bytes,
            body_sha256: ask.body_sha256.clone(),
            reason: ask.reason.clone(),
            hash: ask.hash(),
            created: now,
            expires,
            pid: std::process::id(),
        };
        held.insert(id.clone(), Held { record, answer: tx });
        Ok(Pending {
            id,
            answer: rx,
            approvals: self.clone(),
        })
    }

    /// The requests waiting for an answer now, oldest first.
    pub fn list(&self) -> Vec<PendingRecord> {
        let mut out: Vec<PendingRecord> = self.lock().values().map(|h| h.record.clone()).collect();
        out.sort_by(|a, b| a.created.cmp(&b.created).then_with(|| a.id.cmp(&b.id)));
        out
    }

    /// Answers a held request: it wakes at once. Fails when this server holds no
    /// such id (or its request stopped waiting in the meantime), or when `hash`
    /// — the request hash the person was shown — is given and is not the held
    /// request's (then the request stays held).
    pub fn answer(
        &self,
        id: &str,
        approve: bool,
        hash: Option<&str>,
    ) -> Result<PendingRecord, AnswerError> {
        let mut map = self.lock();
        if let (Some(shown), Some(held)) = (hash, map.get(id))
            && shown != held.record.hash
        {
            return Err(AnswerError::OtherRequest(id.to_string()));
        }
        let held = map
            .remove(id)
            .ok_or_else(|| AnswerError::NotPending(id.to_string()))?;
        // Sent under the lock: a waiter that timed out withdraws its id under the
        // same lock and then looks for an answer once more, so an answer reported
        // as taken is always the one the request gets.
        let sent = held.answer.send(approve);
        drop(map);
        sent.map_err(|_| AnswerError::NotPending(id.to_string()))?;
        Ok(held.record)
    }

    fn withdraw(&self, id: &str) {
        self.lock().remove(id);
    }
}

/// A request being held; dropping it withdraws it (a later answer is refused).
#[derive(Debug)]
pub struct Pending {
    /// Its id.
    pub id: String,
    answer: oneshot::Receiver<bool>,
    approvals: Approvals,
}

impl Pending {
    /// Waits for the answer or the timeout (then [`Answer::TimedOut`]). Waking is
    /// immediate: nothing polls.
    pub async fn wait(&mut self, timeout: Duration) -> Answer {
        let got = match tokio::time::timeout(timeout, &mut self.answer).await {
            Ok(got) => got.ok(),
            Err(_elapsed) => {
                // Withdraw first, so no answer is taken after this point; one
                // that was taken just before still counts (its sender was told so).
                self.approvals.withdraw(&self.id);
                self.answer.try_recv().ok()
            }
        };
        match got {
            Some(true) => Answer::Approved,
            Some(false) => Answer::Denied,
            None => Answer::TimedOut,
        }
    }
}

impl Pending {
    /// Stops taking answers (it was answered another way, e.g. by the MCP client).
    pub fn withdraw(&self) {
        self.approvals.withdraw(&self.id);
    }
}

impl Drop for Pending {
    fn drop(&mut self) {
        self.approvals.withdraw(&self.id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ask() -> Ask {
        let (body_bytes, body_sha256) = Ask::body_digest(None);
        Ask {
            agent: "tester".into(),
            agent_trusted: true,
            capability: "guarded".into(),
            method: "GET".into(),
            path: "/v1/pay".into(),
            url: Some("http://127.0.0.1:1/v1/pay".into()),
            cwd: None,
            headers: Vec::new(),
            body_bytes,
            body_sha256,
            reason: Some("monthly report".into()),
        }
    }

    #[test]
    fn the_hash_covers_every_shown_part_and_the_prompt_escapes() {
        let base = ask();
        let mut seen = std::collections::HashSet::new();
        assert!(seen.insert(base.hash()));
        let mut q = base.clone();
        q.url = Some("http://127.0.0.1:1/v1/pay?delete=all".into());
        let mut h = base.clone();
        h.headers.push(("X-Confirm".into(), "yes".into()));
        let mut b = base.clone();
        (b.body_bytes, b.body_sha256) = Ask::body_digest(Some(b"{}"));
        let mut t = base.clone();
        t.agent_trusted = false;
        let mut r = base.clone();
        r.reason = None;
        for other in [q, h, b, t, r] {
            assert!(seen.insert(other.hash()), "{other:?}");
        }
        assert_eq!(base.hash().len(), 64);
        let mut evil = base.clone();
        evil.reason = Some("ok\u{1b}[2J\u{1b}[1;1H".into());
        evil.agent = "x\u{1b}]0;t\u{7}".into();
        let text = evil.prompt("ap-1");
        assert!(
            !text.contains('\u{1b}') && !text.contains('\u{7}'),
            "{text}"
        );
        assert!(text.contains(r"\u{1b}[2J"), "{text}");
        assert!(text.contains("http://127.0.0.1:1/v1/pay") && text.contains(&base.body_sha256));
    }

    #[tokio::test]
    async fn an_answer_for_another_hash_is_refused_and_the_request_stays_held() {
        let approvals = Approvals::new();
        let mut pending = approvals.hold(&ask(), Duration::from_secs(60)).unwrap();
        let wrong = "0".repeat(64);
        assert_eq!(
            approvals.answer(&pending.id, true, Some(&wrong)),
            Err(AnswerError::OtherRequest(pending.id.clone()))
        );
        assert_eq!(approvals.list().len(), 1);
        let hash = ask().hash();
        assert_eq!(approvals.list()[0].hash, hash);
        approvals.answer(&pending.id, true, Some(&hash)).unwrap();
        assert_eq!(pending.wait(Duration::from_secs(1)).await, Answer::Approved);
    }

    #[tokio::test]
    async fn an_answer_wakes_the_request_at_once_and_applies_once() {
        let approvals = Approvals::new();
        let mut pending = approvals.hold(&ask(), Duration::from_secs(60)).unwrap();
        let listed = approvals.list();
        assert_eq!(listed.len(), 1);
        assert_eq!(listed[0].id, pending.id);
        assert_eq!(listed[0].path, "/v1/pay");
        assert!(pending.id.starts_with("ap-") && pending.id.len() == 11);

        let rec = approvals.answer(&pending.id, true, None).unwrap();
        assert_eq!(rec.capability, "guarded");
        let started = std::time::Instant::now();
        assert_eq!(
            pending.wait(Duration::from_secs(60)).await,
            Answer::Approved
        );
        assert!(started.elapsed() < Duration::from_millis(50));
        assert!(approvals.list().is_empty());
        assert_eq!(
            approvals.answer(&pending.id, false, None),
            Err(AnswerError::NotPending(pending.id.clone()))
        );
    }

    #[tokio::test]
    async fn a_denial_denies() {
        let approvals = Approvals::new();
        let mut pending = approvals.hold(&ask(), Duration::from_secs(60)).unwrap();
        let id = pending.id.clone();
        let answering = approvals.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(20)).await;
            answering.answer(&id, false, None).unwrap();
        });
        assert_eq!(pending.wait(Duration::from_secs(60)).await, Answer::Denied);
    }

    #[tokio::test]
    async fn no_answer_in_time_is_a_timeout_and_the_id_is_gone() {
        let approvals = Approvals::new();
        let mut pending = approvals.hold(&ask(), Duration::from_millis(50)).unwrap();
        assert_eq!(
            pending.wait(Duration::from_millis(50)).await,
            Answer::TimedOut
        );
        assert!(approvals.list().is_empty());
        assert!(approvals.answer(&pending.id, true, None).is_err());
    }

    #[tokio::test]
    async fn unknown_and_abandoned_ids_are_not_pending() {
        let approvals = Approvals::new();
        assert_eq!(
            approvals.answer("ap-00000000", true, None),
            Err(AnswerError::NotPending("ap-00000000".into()))
        );
        let pending = approvals.hold(&ask(), Duration::from_secs(60)).unwrap();
        let id = pending.id.clone();
        drop(pending);
        assert!(approvals.list().is_empty());
        assert!(approvals.answer(&id, true, None).is_err());
    }
}
