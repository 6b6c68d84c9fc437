//! A running server: the [`Runtime`] every door (MCP, gateway, exec) calls.
//!
//! This module holds its construction, agent tokens, the owner's lock and
//! revocations, and the records of refusals a door makes itself. The rest is
//! split by concern (see the crate docs for the request path in order): `live`
//! (state and reload), `audit_writer` (the audit log's own thread), `approve`
//! (the decision and the one approval flow), `request` (the HTTP request path
//! and the steps exec shares) and `exec`.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};
use std::time::Instant;

use airlock_audit::{AuditLog, Decision as AuditDecision, Event, Kind};
use airlock_config::Config;
use airlock_home::Home;
use airlock_vault::Vault;

use crate::{Broker, Caller, Check, Clock, Grant, Refusal, SessionId, refuse, tokens};

mod approve;
mod audit_writer;
mod exec;
mod live;
mod request;
mod watch;

pub use audit_writer::AuditWriteError;
pub use exec::{ChildEgress, ChildProxy};
pub use exec::{ExecOutcome, ExecRequest};
pub use live::LoadError;
pub use request::{AuditStage, ExecuteError, ExecuteRequest, ExecuteResponse};

/// Why a connection that outlives its request must close
/// ([`Runtime::still_open`]).
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum SessionClosed {
    /// The owner's lock or revocations refuse the caller now.
    #[error("{0}")]
    Refused(Refusal),
    /// The caller's session of the capability was revoked.
    #[error("session {} was revoked", .0.as_str())]
    Revoked(SessionId),
    /// The caller's session of the capability expired.
    #[error("session {} expired", .0.as_str())]
    Expired(SessionId),
    /// The caller has no session of the capability.
    #[error("no session of capability \"{capability}\"")]
    NoSession {
        /// The capability.
        capability: String,
    },
}

/// Everything a running server holds: the broker, the unlocked vault, the engine,
/// the audit writer and the scrubber for every secret.
pub struct Runtime {
    home: Home,
    broker: Broker,
    /// The engine, scrubber and vault snapshots, and their reload.
    live: live::Live,
    /// The audit log's owner (a dedicated thread).
    audit: audit_writer::AuditWriter,
    revocations: crate::state::RevocationWatch,
    /// Team mode's staleness check, set once by the team follower (unset: local
    /// mode, and nothing below looks at it).
    team_gate: std::sync::OnceLock<std::sync::Arc<crate::team_gate::TeamGate>>,
    /// Whether the owner's files may have changed (one `read` per check
    /// instead of a `stat` per file; see `watch`).
    watch: watch::HomeWatch,
    /// The generation at which the lock and revocations were last found as
    /// they were.
    owner_seen: watch::Seen,
    /// `state/tokens.json`, re-read only when it changes.
    token_store: crate::state::Watched<Vec<tokens::TokenRecord>>,
    /// The tokens as of the home watch's generation at which they were last
    /// looked at: until it moves, no `stat` of `tokens.json`.
    tokens_seen: Mutex<Option<(u64, Vec<tokens::TokenRecord>)>>,
    /// Injectors kept per service, so minted tokens (GitHub App, GCP, OAuth2) are
    /// cached across requests and refreshed single-flight.
    injectors: airlock_inject::Injectors,
    /// The key attenuated agent tokens verify with (derived from the vault).
    token_key: crate::attenuate::TokenKey,
    /// When each token's use was last written to `state/token-use/`.
    token_uses: Mutex<HashMap<String, Instant>>,
    /// The requests held for a person's answer (in memory only; see `approval`).
    approvals: crate::approval::Approvals,
    /// Where exec children with `inject = "placeholder"` send their HTTP (the
    /// egress proxy of this process; set by the server that starts one).
    egress: std::sync::OnceLock<std::sync::Arc<dyn exec::ChildEgress>>,
}

impl std::fmt::Debug for Runtime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Runtime")
            .field("home", &self.home)
            .finish_non_exhaustive()
    }
}

/// Errors starting a runtime.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RuntimeError {
    /// The config is invalid.
    #[error(transparent)]
    Config(#[from] airlock_config::ConfigError),
    /// The audit log cannot be opened.
    #[error(transparent)]
    Audit(#[from] airlock_audit::AuditError),
    /// The engine or the response scrubber cannot be built.
    #[error(transparent)]
    Engine(#[from] LoadError),
    /// The audit writer thread cannot be started.
    #[error("cannot start the audit writer thread: {0}")]
    AuditWriter(std::io::Error),
}

impl Runtime {
    /// Builds the runtime for `home` with an unlocked `vault`, and starts its
    /// audit writer thread.
    pub fn new(
        home: Home,
        vault: Vault,
        clock: std::sync::Arc<dyn Clock>,
    ) -> Result<Runtime, RuntimeError> {
        // The response scrubber (every vault secret in every encoding, one
        // automaton) does not depend on the configuration: with many secrets it
        // is built by one of rayon's threads while the other reads the
        // configuration, then both compile its rules (1,000 secrets: about 120
        // ms of CPU; docs/benchmarks.md, "Start-up with 1,000,000 rules").
        // rayon's threads, not one more thread: no more threads than cores,
        // and the memory the build lets go is reused by the compiling.
        let (config, scrubber) = if vault.len() >= live::SCRUBBER_THREAD_FROM {
            rayon::join(|| Config::load(&home), || live::scrubber_for(&vault))
        } else {
            (Config::load(&home), live::scrubber_for(&vault))
        };
        let config = config?;
        let scrubber = scrubber?;
        let fsync = match config.server.audit_fsync {
            airlock_config::AuditFsync::Always => airlock_audit::FsyncPolicy::Always,
            airlock_config::AuditFsync::Batch => airlock_audit::FsyncPolicy::Batch {
                max_records: 1000,
                max_delay: std::time::Duration::from_millis(100),
            },
        };
        let log = AuditLog::open_home(
            &home,
            vault.audit_key(),
            airlock_audit::Options::default().fsync(fsync),
        )?;
        let token_key = crate::attenuate::TokenKey::from_vault(&vault);
        let live = live::Live::new(&home, &config, vault, scrubber)?;
        // After the audit log is open: it creates `state/`.
        let watch = watch::HomeWatch::new(&home);
        let audit = audit_writer::AuditWriter::start(airlock_audit::SharedLog::new(log))
            .map_err(RuntimeError::AuditWriter)?;
        let exec = live::compile_exec(&config);
        Ok(Runtime {
            broker: Broker::with_exec_policies(config, exec, clock),
            home,
            live,
            audit,
            revocations: crate::state::RevocationWatch::default(),
            team_gate: std::sync::OnceLock::new(),
            watch,
            owner_seen: watch::Seen::default(),
            token_store: crate::state::Watched::default(),
            tokens_seen: Mutex::new(None),
            injectors: airlock_inject::Injectors::new(),
            token_key,
            token_uses: Mutex::new(HashMap::new()),
            approvals: crate::approval::Approvals::new(),
            egress: std::sync::OnceLock::new(),
        })
    }

    /// Gives exec children with `inject = "placeholder"` their egress proxy
    /// (once; later calls are ignored).
    pub fn set_egress(&self, egress: std::sync::Arc<dyn exec::ChildEgress>) {
        let _ = self.egress.set(egress);
    }

    /// The broker (policy, sessions, visibility) with the configuration as of the
    /// last reload. Reads only; [`Runtime::fresh_broker`] first picks up a
    /// changed `airlock.toml`.
    pub fn broker(&self) -> &Broker {
        &self.broker
    }

    /// The broker after picking up any change to `airlock.toml` and the vault
    /// (loaded off the async workers), as the request path does before it
    /// decides: for tools that show the configuration.
    pub async fn fresh_broker(&self) -> &Broker {
        self.fresh().await;
        &self.broker
    }

    /// The requests this server holds for approval: the control socket lists and
    /// answers them (`airlock approve` / `airlock deny`).
    pub fn approvals(&self) -> &crate::approval::Approvals {
        &self.approvals
    }

    /// Applies configuration, vault, revocation and lock changes now (the
    /// control socket's `reload`), instead of at the next request.
    pub async fn refresh(&self) {
        self.fresh().await;
        let _ = self.check_owner_state().await;
    }

    /// Team mode: from now on every decision first checks `gate` (the server
    /// refuses when it has not caught up with its team within `max_staleness`).
    /// Set once; a second gate is ignored.
    pub fn set_team_gate(&self, gate: std::sync::Arc<crate::team_gate::TeamGate>) {
        let _ = self.team_gate.set(gate);
    }

    /// The home this server runs on.
    pub fn home(&self) -> &Home {
        &self.home
    }

    /// Appends an audit record; the error means the decision is not on record.
    /// Blocks the calling thread until the record is durable: async code uses
    /// [`Runtime::audit_durable`].
    pub fn audit(&self, event: &Event) -> Result<u64, AuditWriteError> {
        self.audit.record_blocking(event)
    }

    /// Appends an audit record and waits, without blocking the async runtime,
    /// until it is durable. The audit writer thread does the write and the
    /// fsync; concurrent requests share fsyncs (group commit), so a loaded server
    /// is not limited to one fsync per request.
    pub async fn audit_durable(&self, event: &Event) -> Result<u64, AuditWriteError> {
        self.audit.record(event).await
    }

    /// Makes batched audit records durable when they are due. The audit writer
    /// does this on its own every 100 ms; calling it is harmless. Blocks the
    /// calling thread.
    pub fn flush_audit(&self) -> Result<(), AuditWriteError> {
        self.audit.flush_blocking(true)
    }

    /// Makes every audit record written so far durable and anchored (at exit).
    /// Blocks the calling thread.
    pub fn close_audit(&self) -> Result<(), AuditWriteError> {
        self.audit.flush_blocking(false)
    }

    /// Records a request refused before any token could be checked (none sent, or
    /// one in the query string) — every door request leaves a record.
    pub async fn audit_token_refusal(&self, method: &str, path: &str, detail: &str) {
        let event = Event::new(Kind::TokenUse)
            .method(method)
            .path(path)
            .decision(AuditDecision::Deny)
            .status(401)
            .detail(detail);
        if let Err(e) = self.audit.record(&event).await {
            report(&format!("cannot audit a refused request: {e}"));
        }
    }

    /// Records a request an HTTP door refused before it reached the broker
    /// (malformed framing, a body over a limit, a forbidden target form), so every
    /// request leaves a record. `caller` is the agent when the token was already
    /// checked. An error means the refusal is not on record.
    pub async fn audit_door_refusal(
        &self,
        caller: Option<&Caller>,
        capability: Option<&str>,
        method: &str,
        path: &str,
        status: u16,
        detail: &str,
    ) -> Result<u64, AuditWriteError> {
        let mut event = Event::new(Kind::Request)
            .method(method)
            .path(path)
            .decision(AuditDecision::Deny)
            .status(status)
            .detail(detail);
        if let Some(c) = capability {
            event = event.capability(c);
        }
        if let Some(c) = caller {
            event = agent_event(event, c);
        }
        self.audit.record(&event).await
    }

    /// Checks an agent token (HTTP doors). Failures are audited (durably, before
    /// this returns).
    pub async fn authenticate(&self, presented: &str) -> Result<Caller, tokens::TokenError> {
        let verified = self
            .token_records()
            .and_then(|records| tokens::verify_keyed(&records, presented, Some(&self.token_key)));
        match verified {
            Ok(tokens::Verified {
                record,
                attenuation,
            }) => {
                self.note_token_use(&record.id);
                Ok(Caller {
                    grant: Grant::token(&record.id),
                    trusted: Some(record.agent),
                    declared: None,
                    scope: (!record.capabilities.is_empty()).then_some(record.capabilities),
                    approver: None,
                    owner: false,
                    exec_child: false,
                    attenuation,
                })
            }
            Err(e) => {
                let event = Event::new(Kind::TokenUse)
                    .decision(AuditDecision::Deny)
                    .detail(&e.to_string());
                // A failed audit here only loses the record of a refusal; the
                // request is refused either way.
                if let Err(ae) = self.audit.record(&event).await {
                    report(&format!("cannot audit a refused token: {ae}"));
                }
                Err(e)
            }
        }
    }

    /// The issued tokens: as last read while the home watch saw no change,
    /// otherwise from `state/tokens.json` (a `stat`, and a read when it changed).
    fn token_records(&self) -> Result<Vec<tokens::TokenRecord>, tokens::TokenError> {
        let generation = self.watch.generation();
        let mut seen = self
            .tokens_seen
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some((at, records)) = seen.as_ref()
            && *at == generation
        {
            return Ok(records.clone());
        }
        let (records, _) = self
            .token_store
            .current(&tokens::store_path(&self.home), || tokens::list(&self.home))?;
        *seen = Some((generation, records.clone()));
        Ok(records)
    }

    /// Marks a token as used, at most once a minute per token (for `token
    /// list`); the marker file is written on the blocking pool.
    fn note_token_use(&self, id: &str) {
        let now = Instant::now();
        let mut seen = self
            .token_uses
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let due = seen
            .get(id)
            .is_none_or(|t| now.duration_since(*t) >= std::time::Duration::from_secs(60));
        if due {
            seen.insert(id.to_string(), now);
            drop(seen);
            let (home, id) = (self.home.clone(), id.to_string());
            tokio::task::spawn_blocking(move || tokens::note_use(&home, &id));
        }
    }

    /// Whether `caller`'s session of `capability` still runs, with the owner's
    /// lock and revocations applied first (as before a decision): for a
    /// connection that outlives its request (a WebSocket), which is closed
    /// once this refuses. `Err` says why.
    pub async fn still_open(&self, caller: &Caller, capability: &str) -> Result<(), SessionClosed> {
        self.check_owner_state()
            .await
            .map_err(SessionClosed::Refused)?;
        match self.broker.sessions().check(&caller.grant, capability) {
            Some(Ok(_)) => Ok(()),
            Some(Err((id, crate::session::SessionEnd::Revoked))) => Err(SessionClosed::Revoked(id)),
            Some(Err((id, crate::session::SessionEnd::Expired))) => Err(SessionClosed::Expired(id)),
            None => Err(SessionClosed::NoSession {
                capability: capability.to_string(),
            }),
        }
    }

    /// Applies the owner's lock and revocations (shared by every server on this
    /// home through `state/`) to the live sessions. Called before every decision;
    /// looks at the files only when the home watch saw a change since they last
    /// passed (a lock refuses, so it is looked at again at every request).
    async fn check_owner_state(&self) -> Result<(), Refusal> {
        if let Some(gate) = self.team_gate.get() {
            gate.check()
                .map_err(|m| refuse(Check::Lock, m.to_string()))?;
        }
        let generation = self.watch.generation();
        if self.owner_seen.unchanged(generation) {
            return Ok(());
        }
        let checked = self.check_owner_files().await;
        if checked.is_ok() {
            self.owner_seen.passed(generation);
        }
        checked
    }

    /// [`Runtime::check_owner_state`]'s look at `state/locked` and
    /// `state/revocations.json` (one `stat` each; the list is re-read when it
    /// changed).
    async fn check_owner_files(&self) -> Result<(), Refusal> {
        if crate::state::is_locked(&self.home) {
            // Minted tokens are dropped too: after an unlock they are fetched anew.
            self.injectors.clear();
            return Err(refuse(
                Check::Lock,
                "airlock is locked by its owner: every request is refused until `airlock unlock`",
            ));
        }
        match self.revocations.current(&self.home) {
            Ok((revs, true)) => {
                self.broker.set_incident_locks(revs.locked.clone());
                let n = self
                    .broker
                    .sessions()
                    .revoke_where(|s| revs.revokes_session(s));
                if n > 0 {
                    let e = Event::new(Kind::Revoke)
                        .decision(AuditDecision::Deny)
                        .detail(&format!(
                            "{n} live session(s) of this server ended by the owner's revocation"
                        ));
                    if let Err(err) = self.audit.record(&e).await {
                        report(&format!("cannot audit a revocation: {err}"));
                    }
                }
                Ok(())
            }
            Ok((_, false)) => Ok(()),
            // An unreadable revocation list must not fail open.
            Err(e) => Err(refuse(
                Check::Lock,
                format!("the revocation list cannot be read ({e}); refusing until it is fixed"),
            )),
        }
    }
}

/// The agent on a record: who `caller` is and whether the owner vouches for
/// it. Every record of one request (decision, approval, outcome, refusal) takes
/// its identity from here, so they cannot disagree.
fn agent_event(event: Event, caller: &Caller) -> Event {
    let event = event.agent(&caller.agent(), caller.is_trusted());
    // An attenuated token's records name its root token and chain (a refusal's
    // own detail, set later, names them too when a caveat refused).
    match &caller.attenuation {
        Some(a) => event.detail(&a.label()),
        None => event,
    }
}

/// A server-side problem worth telling the owner about (stderr, never stdout:
/// stdout is the MCP protocol).
#[allow(clippy::print_stderr)]
fn report(msg: &str) {
    eprintln!("airlock: {msg}");
}

#[cfg(test)]
mod tests {
    use std::io::{BufRead as _, Write as _};
    use std::sync::{Arc, Mutex};

    use super::*;
    use crate::{ExecuteRequest, SystemClock};

    /// An upstream that records each request's `Authorization` header.
    fn upstream() -> (u16, Arc<Mutex<Vec<String>>>) {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let log = seen.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { continue };
                let mut reader = std::io::BufReader::new(stream.try_clone().unwrap());
                let mut auth = String::new();
                loop {
                    let mut h = String::new();
                    if reader.read_line(&mut h).map_or(true, |n| n == 0) || h == "\r\n" {
                        break;
                    }
                    if let Some(v) = h.to_ascii_lowercase().strip_prefix("authorization:") {
                        auth = v.trim().to_string();
                    }
                }
                log.lock().unwrap().push(auth);
                let _ = stream.write_all(
                    b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok",
                );
            }
        });
        (port, seen)
    }

    fn get(rt: &Runtime, me: &Caller) -> impl std::future::Future<Output = u16> {
        let req = ExecuteRequest {
            capability: "svc".into(),
            method: "GET".into(),
            path: "/v1/items".into(),
            ..ExecuteRequest::default()
        };
        async move {
            match rt.execute(me, req).await {
                Ok(r) => r.status,
                Err(e) => e.http_status(),
            }
        }
    }

    /// The injector is reused between requests (issue 16), but a secret rotated
    /// by the CLI is injected from the next request on, and the owner's lock
    /// drops every kept injector (minted tokens are fetched anew after it).
    #[tokio::test(flavor = "current_thread")]
    async fn a_rotated_secret_is_injected_from_the_next_request_and_a_lock_drops_injectors() {
        let (port, seen) = upstream();
        let (_d, home) = crate::test_util::home();
        let mut vault =
            airlock_vault::Vault::init(&home, airlock_vault::NewVaultKey::KeyFile).unwrap();
        vault.insert("svc", b"sk_first_0123456789").unwrap();
        vault.save(&home).unwrap();
        std::fs::write(
            home.config_path(),
            format!(
                "[services.svc]\nurl = \"http://127.0.0.1:{port}\"\n\
                 auth = {{ type = \"bearer\", secret = \"svc\" }}\n\
                 [capabilities.svc]\nservice = \"svc\"\nallow = [\"GET /v1/**\"]\n"
            ),
        )
        .unwrap();
        let rt = Runtime::new(home.clone(), vault, SystemClock::new()).unwrap();
        let me = Caller::connection(Some("tester".into()));
        assert_eq!(get(&rt, &me).await, 200);
        assert_eq!(get(&rt, &me).await, 200);
        assert!(!rt.injectors.is_empty());

        // The CLI rotates the secret: another process writes vault.json.
        let mut other = airlock_vault::LockedVault::load(&home)
            .unwrap()
            .unlock_with_key_file(&home)
            .unwrap();
        other.rotate("svc", b"sk_second_9876543210").unwrap();
        other.save(&home).unwrap();
        assert_eq!(get(&rt, &me).await, 200);
        assert_eq!(
            *seen.lock().unwrap(),
            [
                "bearer sk_first_0123456789",
                "bearer sk_first_0123456789",
                "bearer sk_second_9876543210"
            ]
        );

        // The owner's lock: refused, and nothing kept for after the unlock.
        crate::state::engage_lock(&home).unwrap();
        assert_eq!(get(&rt, &me).await, 403);
        assert!(rt.injectors.is_empty());
        crate::state::release_lock(&home).unwrap();
        assert_eq!(get(&rt, &me).await, 200);
        assert_eq!(seen.lock().unwrap().len(), 4);
    }

    /// With many secrets the scrubber is built on another thread while the
    /// configuration loads, with few after it on the starting thread: either
    /// way it covers every secret of the vault, and a configuration error
    /// still stops the start.
    #[test]
    fn the_scrubber_covers_every_secret_whether_built_alongside_the_configuration_or_not() {
        for n in [
            live::SCRUBBER_THREAD_FROM - 1,
            live::SCRUBBER_THREAD_FROM + 1,
        ] {
            let (_d, home) = crate::test_util::home();
            let mut vault =
                airlock_vault::Vault::init(&home, airlock_vault::NewVaultKey::KeyFile).unwrap();
            let value = |i: usize| format!("sk_live_canary_{i:04}_0123456789abcdef");
            for i in 0..n {
                vault.insert(&format!("s{i}"), value(i).as_bytes()).unwrap();
            }
            vault.save(&home).unwrap();
            std::fs::write(home.config_path(), "[server]\nbogus = 1\n").unwrap();
            let vault_again = || {
                airlock_vault::LockedVault::load(&home)
                    .unwrap()
                    .unlock_with_key_file(&home)
                    .unwrap()
            };
            let refused = Runtime::new(home.clone(), vault, SystemClock::new());
            assert!(
                matches!(refused, Err(RuntimeError::Config(_))),
                "{n} secrets: a bad configuration is refused"
            );

            std::fs::write(home.config_path(), "").unwrap();
            let rt = Runtime::new(home.clone(), vault_again(), SystemClock::new()).unwrap();
            let scrubber = rt.live.scrubber();
            assert_eq!(scrubber.secret_names().count(), n, "{n} secrets");
            for i in [0, n / 2, n - 1] {
                let echoed = format!("echo: {}", value(i));
                assert!(
                    scrubber.contains_secret(echoed.as_bytes()),
                    "{n} secrets: s{i}"
                );
            }
        }
    }
}
