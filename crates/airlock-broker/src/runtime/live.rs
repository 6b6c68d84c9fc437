//! State and reload: what a running server holds of the owner's files
//! (`airlock.toml`, `vault.json`) and how their changes reach it.
//!
//! The request path only reads snapshots: the broker's configuration and compiled
//! exec policies ([`crate::Broker::config`]), the engine, the scrubber and the
//! unlocked vault, each behind an `Arc` or a read lock. Before it decides,
//! [`Runtime::fresh`] compares the two files' modification times with those of
//! the snapshot (one `stat` each, like the lock and revocation checks), when the
//! home watch saw a change since they last matched (`watch`). Only when
//! one changed is anything loaded, and then on the blocking pool — reading and
//! parsing the file, decrypting the vault, building the engine and the scrubber,
//! compiling the exec capabilities — while the request awaits it without holding
//! an async worker; the new snapshot is then swapped in. Requests that see the
//! same change wait for that one reload. So an edit is in force from the next
//! request on (a changed file is never missed), and an unusable file keeps the
//! previous snapshot in force and says why (stderr and the audit log).

use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::SystemTime;

use airlock_audit::{Decision as AuditDecision, Event, Kind};
use airlock_config::Config;
use airlock_engine::scrub::Scrubber;
use airlock_engine::{Engine, EngineConfig};
use airlock_exec::OwnerEnv;
use airlock_home::Home;
use airlock_vault::Vault;
use secrecy::ExposeSecret;

use super::{Runtime, report};
use crate::ExecPolicies;

/// Why the engine or the response scrubber cannot be built (at start, from the
/// files as loaded).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LoadError {
    /// The service settings cannot be turned into an engine.
    #[error(transparent)]
    Engine(#[from] airlock_engine::EngineError),
    /// The scrubber for the vault's secrets cannot be built.
    #[error("cannot prepare response scrubbing: {0}")]
    Scrubber(airlock_engine::scrub::ScrubberError),
}

/// Why a changed `airlock.toml` or `vault.json` is not taken (the previous one
/// stays in force; the message goes to stderr, and for the config to the audit log).
#[derive(Debug, thiserror::Error)]
enum ReloadError {
    #[error("airlock.toml changed but is invalid, keeping the previous configuration: {0}")]
    Config(airlock_config::ConfigError),
    #[error(
        "airlock.toml changed but its service settings are unusable ({0}); keeping the previous configuration"
    )]
    Services(airlock_engine::EngineError),
    #[error(transparent)]
    VaultFile(#[from] airlock_home::HomeError),
    #[error(transparent)]
    Vault(#[from] airlock_vault::VaultError),
    #[error(transparent)]
    Load(#[from] LoadError),
    #[error("the reload task failed: {0}")]
    Task(tokio::task::JoinError),
}

/// The modification times the snapshot was loaded at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Stamps {
    config: Option<SystemTime>,
    vault: Option<SystemTime>,
}

impl Stamps {
    fn of(home: &Home) -> Stamps {
        Stamps {
            config: mtime(&home.config_path()),
            vault: mtime(&home.vault_path()),
        }
    }
}

fn mtime(path: &std::path::Path) -> Option<SystemTime> {
    std::fs::metadata(path).and_then(|m| m.modified()).ok()
}

/// The snapshots the request path reads (the configuration itself is the
/// broker's).
pub(super) struct Live {
    /// Written only by a vault reload, on the blocking pool.
    vault: Arc<RwLock<Vault>>,
    engine: RwLock<Arc<Engine>>,
    scrubber: RwLock<Arc<Scrubber>>,
    stamps: Mutex<Stamps>,
    /// One reload at a time; requests that saw a change wait here for it.
    turn: tokio::sync::Mutex<()>,
    /// The home watch's generation at which the files were last found as
    /// loaded: until it moves, no `stat` is needed.
    seen: super::watch::Seen,
}

impl Live {
    /// The snapshots for `config` and `vault` as just loaded from `home`, with
    /// `vault`'s scrubber ([`scrubber_for`]).
    pub(super) fn new(
        home: &Home,
        config: &Config,
        vault: Vault,
        scrubber: Scrubber,
    ) -> Result<Live, LoadError> {
        let engine = engine_for(config)?;
        Ok(Live {
            vault: Arc::new(RwLock::new(vault)),
            engine: RwLock::new(Arc::new(engine)),
            scrubber: RwLock::new(Arc::new(scrubber)),
            stamps: Mutex::new(Stamps::of(home)),
            turn: tokio::sync::Mutex::new(()),
            seen: super::watch::Seen::default(),
        })
    }

    /// The engine for the configuration in force.
    pub(super) fn engine(&self) -> Arc<Engine> {
        self.engine
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// The scrubber for every vault secret, as of the last vault change.
    pub(super) fn scrubber(&self) -> Arc<Scrubber> {
        self.scrubber
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// One secret from the vault.
    pub(super) fn secret(&self, name: &str) -> Option<airlock_vault::SecretBytes> {
        self.vault
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(name)
            .ok()
    }

    fn stamps(&self) -> Stamps {
        *self.stamps.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn set_stamps(&self, stamps: Stamps) {
        *self.stamps.lock().unwrap_or_else(PoisonError::into_inner) = stamps;
    }
}

/// A configuration loaded off the async workers, ready to swap in.
struct Loaded {
    config: Config,
    engine: Engine,
    exec: ExecPolicies,
}

impl Runtime {
    /// Picks up `airlock.toml` and vault changes made while the server runs (by
    /// the owner's editor or the CLI): nothing but the home watch's `read` when
    /// it saw no change, one `stat` per file when it did; when a file changed,
    /// the new version is loaded on the blocking pool and swapped in before
    /// this returns.
    pub(super) async fn fresh(&self) {
        let generation = self.watch.generation();
        if self.live.seen.unchanged(generation) {
            return;
        }
        if Stamps::of(&self.home) == self.live.stamps() {
            self.live.seen.passed(generation);
            return;
        }
        let _turn = self.live.turn.lock().await;
        let known = self.live.stamps();
        // The stamp is taken before the load: a change made during the load is
        // seen by the next request.
        let seen = Stamps::of(&self.home);
        self.live.set_stamps(seen);
        if seen.config != known.config {
            self.reload_config().await;
        }
        if seen.vault != known.vault {
            self.reload_vault().await;
        }
        self.live.seen.passed(generation);
    }

    /// Reloads `airlock.toml`. An invalid new file keeps the old configuration;
    /// the problem goes to stderr and the audit log.
    async fn reload_config(&self) {
        let home = self.home.clone();
        let before = self.broker.config();
        // The authority diff (issue 19) is computed off the async workers too.
        let loaded =
            blocking(move || load(&home).map(|l| (authority_changes(&before, &l.config), l))).await;
        let event = Event::new(Kind::ConfigReload);
        let event = match loaded {
            Ok((changes, l)) => {
                for change in &changes {
                    report(&format!("airlock.toml reloaded: {change}"));
                }
                *self
                    .live
                    .engine
                    .write()
                    .unwrap_or_else(PoisonError::into_inner) = Arc::new(l.engine);
                self.injectors.retain(|n| l.config.services.contains_key(n));
                self.broker.reload_with_exec_policies(l.config, l.exec);
                event
                    .decision(AuditDecision::Allow)
                    .detail("airlock.toml reloaded")
            }
            Err(e) => {
                let msg = e.to_string();
                report(&msg);
                event.decision(AuditDecision::Deny).detail(&msg)
            }
        };
        if let Err(e) = self.audit.record(&event).await {
            report(&format!("cannot audit the configuration reload: {e}"));
        }
    }

    /// Picks up secrets added, rotated or removed by the CLI. The scrubber is
    /// rebuilt, so a new secret is redacted from the first response that could
    /// carry it. A vault that cannot be read keeps the previous one in force and
    /// says why.
    async fn reload_vault(&self) {
        let home = self.home.clone();
        let vault = Arc::clone(&self.live.vault);
        let result = blocking(move || {
            let bytes = airlock_home::read(&home.vault_path())?;
            vault
                .write()
                .unwrap_or_else(PoisonError::into_inner)
                .refresh(&bytes)?;
            Ok(scrubber_for(
                &vault.read().unwrap_or_else(PoisonError::into_inner),
            )?)
        })
        .await;
        // A secret may have been rotated or removed: injectors check theirs again.
        self.injectors.recheck();
        match result {
            Ok(scrubber) => {
                *self
                    .live
                    .scrubber
                    .write()
                    .unwrap_or_else(PoisonError::into_inner) = Arc::new(scrubber);
            }
            Err(e) => report(&format!(
                "vault.json changed but cannot be used ({e}); keeping the previous secrets"
            )),
        }
    }
}

/// Runs `f` on the blocking pool and awaits it.
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, ReloadError> + Send + 'static,
) -> Result<T, ReloadError> {
    tokio::task::spawn_blocking(f)
        .await
        .unwrap_or_else(|e| Err(ReloadError::Task(e)))
}

/// One line per authority change between the configuration in force and the
/// one being loaded (`airlock policy diff`, docs/least-privilege.md).
fn authority_changes(before: &Config, after: &Config) -> Vec<String> {
    match airlock_config::authority_diff(before, after, jiff::Timestamp::now()) {
        Ok(diff) => diff.summary_lines(),
        Err(e) => vec![format!("cannot compute the authority diff: {e}")],
    }
}

/// Loads and checks `airlock.toml` with everything built from it.
fn load(home: &Home) -> Result<Loaded, ReloadError> {
    let config = Config::load(home).map_err(ReloadError::Config)?;
    let engine = engine_for(&config).map_err(ReloadError::Services)?;
    let exec = compile_exec(&config);
    Ok(Loaded {
        config,
        engine,
        exec,
    })
}

/// The engine for a configuration: per-service limits, cookie forwarding and
/// private CAs.
fn engine_for(config: &Config) -> Result<Engine, airlock_engine::EngineError> {
    let mut ec = EngineConfig::default();
    for (name, svc) in &config.services {
        let mut opts = ec.defaults;
        if let Some(t) = svc.timeout {
            opts.limits.timeout = t;
        }
        if let Some(n) = svc.max_request_bytes {
            opts.limits.max_request_body = usize::try_from(n).unwrap_or(usize::MAX);
        }
        if let Some(n) = svc.max_response_bytes {
            opts.limits.max_response_body = usize::try_from(n).unwrap_or(usize::MAX);
        }
        opts.forward_cookies = svc.forward_cookies;
        ec.services.insert(name.clone(), opts);
        if let Some(path) = &svc.ca_file {
            ec.ca_files.insert(name.clone(), path.clone());
        }
    }
    Engine::new(ec)
}

/// From this many vault secrets on, [`super::Runtime::new`] builds the scrubber
/// on another thread while the configuration loads; below, the threads cost
/// more than they save (a few secrets build in microseconds; starting threads
/// takes tens of them, and an MCP server's cold start counts them).
pub(super) const SCRUBBER_THREAD_FROM: usize = 64;

/// Every vault secret, so that no secret — of this service or another — comes
/// back to an agent.
pub(super) fn scrubber_for(vault: &Vault) -> Result<Scrubber, LoadError> {
    let secrets: Vec<(String, airlock_vault::SecretBytes)> = vault
        .list()
        .into_iter()
        .filter_map(|info| vault.get(&info.name).ok().map(|v| (info.name, v)))
        .collect();
    Scrubber::new(secrets.iter().map(|(n, v)| (n.as_str(), v.expose_secret())))
        .map_err(LoadError::Scrubber)
}

/// Compiles the exec capabilities of `config` against airlock's own environment
/// and tells the owner about the ones that cannot be used (they are refused with
/// the same message) and about risky ones. Like other configuration problems, this
/// goes to stderr; the server keeps running.
pub(super) fn compile_exec(config: &Config) -> ExecPolicies {
    let exec = ExecPolicies::compile(config, &OwnerEnv::from_process());
    for problem in exec.errors() {
        report(&format!(
            "{problem} (this exec capability is refused until airlock.toml is fixed)"
        ));
    }
    for warning in exec.warnings() {
        report(&format!("warning: {warning}"));
    }
    exec
}
