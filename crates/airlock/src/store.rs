//! Where the commands' changes to shared state go: the storage trait
//! [`Store`], its local implementation ([`LocalStore`], the default) and its
//! PostgreSQL one ([`TeamStore`], team mode, docs/team.md).
//!
//! A command obtains the store of its home once ([`open`]) and calls it; no
//! command asks whether the home is in a team. [`open`] is the one place that
//! does: a home with `team/state.json` is a device of a team.
//!
//! | the trait covers | [`LocalStore`] (the home's files) | [`TeamStore`] (adds PostgreSQL) |
//! |---|---|---|
//! | secrets: set, rotate, remove | the vault file | + a new version sealed under the team key, signed (not for remove: the team has no removal) |
//! | revocations: a session, an agent, a capability, all | `state/revocations.json`, `state/tokens.json` | + a signed `revoke` row of the change log |
//! | an agent token's revocation | `state/tokens.json` (an unknown id is an error) | + a `token-revoke` row (a token of another device is revoked there) |
//! | an agent's check (`token issue`, `proxy --agent`, `serve --agent`) | every name may be issued a token | the team's agents as of the last sync |
//! | the emergency lock and its release | `state/locked` | + a signed `lock`/`unlock` row (release: admin devices) |
//! | incident locks and their release | `state/revocations.json` (`locked`) | + `incident-lock` / `incident-unlock` rows |
//! | `airlock serve` | the vault | + the follower, which keeps the home in step with the team |
//! | the team audit (`logs --team`, `audit verify --team`) | none: an error saying the home is not in a team | every device's chain in `airlock.audit` |
//! | `airlock doctor` | nothing to add | database, TLS, clock, lag |
//!
//! Reads of this home's state (`sessions`, `token list`, `logs`) are the same
//! in both: the team store keeps the very files local mode reads (its sync
//! writes what other devices did into them), so they read those files
//! directly, through `airlock_broker::state` and `airlock_broker::tokens`.
//!
//! Every change is applied to this home at once and returns a [`Tell`]: what
//! is left to do for the rest of the team. The command runs it last, after
//! its own audit record, its notice to the running servers and its output,
//! so that nothing that takes effect here waits for the network; in local
//! mode there is nothing left to do. When the team cannot be told (the
//! database out of reach, a member's unlock), [`Tell::tell`] fails with one
//! line saying what was done on this device, why the team was not told, and
//! what to run again.
//!
//! Another backend (say, another database): a type that holds a
//! [`LocalStore`] for the home's files (every server of the home reads them),
//! implements [`Store`] by calling it and returning a [`Tell`] that writes the
//! change where the other devices read it, and a follower for
//! [`Store::open_for_serve`] that applies their changes to the home's files;
//! then one line in [`open`] to choose it.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use airlock_broker::Runtime;
use airlock_broker::state::{self, IncidentLocks, RevokeTarget};
use airlock_broker::tokens;
use airlock_home::Home;
use airlock_team::{Team, TeamError};
use airlock_vault::Vault;

use crate::cmd::team::Check;
use crate::{output, unlock};

/// What a change leaves to do for the rest of the team, run by the command
/// once everything on this home is done and said: nothing in local mode.
#[must_use = "the other devices are told only when `tell` runs"]
pub(crate) struct Tell<'a>(Option<Box<dyn FnOnce() -> anyhow::Result<()> + 'a>>);

impl<'a> Tell<'a> {
    /// Nothing to tell: local mode, or nothing changed.
    pub(crate) fn nothing() -> Tell<'a> {
        Tell(None)
    }

    fn with(f: impl FnOnce() -> anyhow::Result<()> + 'a) -> Tell<'a> {
        Tell(Some(Box::new(f)))
    }

    /// Tells the other devices (and says so on stderr); fails with what was
    /// done here, why the team was not told, and what to run again.
    pub(crate) fn tell(self) -> anyhow::Result<()> {
        self.0.map_or(Ok(()), |f| f())
    }
}

/// What `airlock serve` runs inside its runtime to keep this home in step
/// with the other devices while it serves: nothing in local mode.
pub(crate) type Follow = Box<
    dyn for<'r> FnOnce(&'r Arc<Runtime>) -> Pin<Box<dyn Future<Output = anyhow::Result<()>> + 'r>>,
>;

/// A [`Follow`] from a closure (which this gives its higher-ranked signature).
fn follow<F>(f: F) -> Follow
where
    F: for<'r> FnOnce(&'r Arc<Runtime>) -> Pin<Box<dyn Future<Output = anyhow::Result<()>> + 'r>>
        + 'static,
{
    Box::new(f)
}

/// What a revocation did on this home.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct Revoked {
    /// Sessions ended.
    pub(crate) sessions: usize,
    /// Agent tokens revoked.
    pub(crate) tokens: usize,
}

/// What `airlock incident` locks and revokes (docs/least-privilege.md,
/// "Incident response").
#[derive(Debug, Default)]
pub(crate) struct Incident<'p> {
    /// Capabilities locked until `airlock unlock`.
    pub(crate) capabilities: &'p [String],
    /// Agents locked until `airlock unlock`.
    pub(crate) agents: &'p [String],
    /// Sessions (and, for an agent, tokens) to end.
    pub(crate) revocations: &'p [RevokeTarget],
    /// Agent tokens to revoke by id (those that used what leaked).
    pub(crate) tokens: &'p [String],
}

/// The storage of shared state: everything a command changes that a running
/// server, or another device of a team, acts on. See the module docs.
pub(crate) trait Store {
    /// Stores a new secret in `vault` (opened for writing, under the home's
    /// writer lock) and saves it; its version.
    fn set_secret<'a>(
        &'a self,
        vault: &'a mut Vault,
        name: &'a str,
        value: &'a [u8],
    ) -> anyhow::Result<(u32, Tell<'a>)>;

    /// Replaces a secret's value in `vault` (its version goes up) and saves
    /// it; its new version.
    fn rotate_secret<'a>(
        &'a self,
        vault: &'a mut Vault,
        name: &'a str,
        value: &'a [u8],
    ) -> anyhow::Result<(u32, Tell<'a>)>;

    /// The rest of storing `value` as `name` when the caller has already
    /// saved it into the vault itself (the incident's rotation).
    fn share_secret<'a>(&'a self, vault: &'a Vault, name: &'a str, value: &'a [u8]) -> Tell<'a>;

    /// Removes a secret from `vault` and saves it (on this device only: a
    /// team has no removal of a secret).
    fn remove_secret(&self, vault: &mut Vault, name: &str) -> anyhow::Result<()>;

    /// Ends the sessions `target` names and, for an agent or everything,
    /// revokes the agent tokens too.
    fn revoke(&self, target: &RevokeTarget) -> anyhow::Result<(Revoked, Tell<'_>)>;

    /// Revokes the agent token `id`: how many this home held (0 in a team,
    /// where another device may hold it; an error in local mode).
    fn revoke_token<'a>(&'a self, id: &'a str) -> anyhow::Result<(usize, Tell<'a>)>;

    /// Refuses to serve or issue a token to `agent` when the store says no.
    fn check_agent(&self, agent: &str) -> anyhow::Result<()>;

    /// Engages the emergency lock.
    fn lock(&self) -> anyhow::Result<Tell<'_>>;

    /// Releases the emergency lock; whether it was engaged.
    fn unlock(&self) -> anyhow::Result<(bool, Tell<'_>)>;

    /// `airlock incident`'s locks and revocations, in that order.
    fn incident<'a>(&'a self, incident: &Incident<'a>) -> anyhow::Result<(Revoked, Tell<'a>)>;

    /// Releases every incident lock; what it released.
    fn release_incident_locks(&self) -> anyhow::Result<(IncidentLocks, Tell<'_>)>;

    /// The vault `airlock serve` serves with (one unlock, one prompt), and
    /// what keeps the home in step with the others while it serves.
    fn open_for_serve(&self) -> anyhow::Result<(Vault, Follow)>;

    /// `airlock logs --team [--follow]`.
    fn logs_team(
        &self,
        filter: &airlock_audit::Filter,
        json: bool,
        follow: bool,
    ) -> anyhow::Result<()>;

    /// `airlock audit verify --team`.
    fn verify_audit_team(&self, json: bool) -> anyhow::Result<std::process::ExitCode>;

    /// What `airlock doctor` adds (`vault`: when it could open it).
    fn doctor(&self, vault: Option<&Vault>) -> Vec<(Check, String)>;
}

/// The store of `home`: PostgreSQL when the home is a device of a team,
/// otherwise its files alone.
pub(crate) fn open(home: &Home) -> Box<dyn Store> {
    let local = LocalStore { home: home.clone() };
    if airlock_team::local::is_member(home) {
        Box::new(TeamStore { local })
    } else {
        Box::new(local)
    }
}

/// Local mode, the default: the home's vault, state files and audit log.
/// No database, no network.
pub(crate) struct LocalStore {
    home: Home,
}

impl LocalStore {
    /// Writes `value` as `name` into `vault` (a new secret, or a new version
    /// with `rotate`) and saves the vault; the secret's version.
    fn write_secret(
        &self,
        vault: &mut Vault,
        name: &str,
        value: &[u8],
        rotate: bool,
    ) -> anyhow::Result<u32> {
        if rotate {
            vault.rotate(name, value)?;
        } else {
            vault.insert(name, value)?;
        }
        vault.save(&self.home)?;
        Ok(vault
            .list()
            .into_iter()
            .find(|s| s.name == name)
            .map_or(0, |s| s.version))
    }

    /// [`Store::revoke_token`] without the error for an unknown id.
    fn revoke_token_here(&self, id: &str) -> anyhow::Result<usize> {
        self.home.ensure_dir()?;
        let _lock = self.home.lock()?;
        Ok(tokens::revoke_where(&self.home, |t| t.id == id)?)
    }
}

impl Store for LocalStore {
    fn set_secret<'a>(
        &'a self,
        vault: &'a mut Vault,
        name: &'a str,
        value: &'a [u8],
    ) -> anyhow::Result<(u32, Tell<'a>)> {
        Ok((
            self.write_secret(vault, name, value, false)?,
            Tell::nothing(),
        ))
    }

    fn rotate_secret<'a>(
        &'a self,
        vault: &'a mut Vault,
        name: &'a str,
        value: &'a [u8],
    ) -> anyhow::Result<(u32, Tell<'a>)> {
        Ok((
            self.write_secret(vault, name, value, true)?,
            Tell::nothing(),
        ))
    }

    fn share_secret<'a>(&'a self, _: &'a Vault, _: &'a str, _: &'a [u8]) -> Tell<'a> {
        Tell::nothing()
    }

    fn remove_secret(&self, vault: &mut Vault, name: &str) -> anyhow::Result<()> {
        vault.remove(name)?;
        vault.save(&self.home)?;
        Ok(())
    }

    fn revoke(&self, target: &RevokeTarget) -> anyhow::Result<(Revoked, Tell<'_>)> {
        let home = &self.home;
        home.ensure_dir()?;
        let sessions = state::revoke(home, target)?;
        let tokens = match target {
            RevokeTarget::Agent(a) => {
                let _lock = home.lock()?;
                tokens::revoke_where(home, |t| &t.agent == a)?
            }
            RevokeTarget::All => {
                let _lock = home.lock()?;
                tokens::revoke_where(home, |_| true)?
            }
            _ => 0,
        };
        Ok((Revoked { sessions, tokens }, Tell::nothing()))
    }

    fn revoke_token<'a>(&'a self, id: &'a str) -> anyhow::Result<(usize, Tell<'a>)> {
        let n = self.revoke_token_here(id)?;
        if n == 0 {
            anyhow::bail!(
                "no active token \"{}\"; see `airlock token list`",
                id.escape_debug()
            );
        }
        Ok((n, Tell::nothing()))
    }

    fn check_agent(&self, _: &str) -> anyhow::Result<()> {
        Ok(())
    }

    fn lock(&self) -> anyhow::Result<Tell<'_>> {
        self.home.ensure_dir()?;
        state::engage_lock(&self.home)?;
        Ok(Tell::nothing())
    }

    fn unlock(&self) -> anyhow::Result<(bool, Tell<'_>)> {
        Ok((state::release_lock(&self.home)?, Tell::nothing()))
    }

    fn incident<'a>(&'a self, p: &Incident<'a>) -> anyhow::Result<(Revoked, Tell<'a>)> {
        let home = &self.home;
        home.ensure_dir()?;
        // Lock first: from here no new session of what leaked can start.
        if !p.capabilities.is_empty() || !p.agents.is_empty() {
            state::lock_for_incident(home, p.capabilities, p.agents)?;
        }
        let mut done = Revoked::default();
        for target in p.revocations {
            let (r, _) = self.revoke(target)?;
            done.sessions += r.sessions;
            done.tokens += r.tokens;
        }
        if !p.tokens.is_empty() {
            let _lock = home.lock()?;
            done.tokens += tokens::revoke_where(home, |t| p.tokens.contains(&t.id))?;
        }
        Ok((done, Tell::nothing()))
    }

    fn release_incident_locks(&self) -> anyhow::Result<(IncidentLocks, Tell<'_>)> {
        Ok((state::release_incident_locks(&self.home)?, Tell::nothing()))
    }

    fn open_for_serve(&self) -> anyhow::Result<(Vault, Follow)> {
        let nothing = follow(|_| Box::pin(async { Ok(()) }));
        Ok((unlock::open(&self.home)?, nothing))
    }

    fn logs_team(&self, _: &airlock_audit::Filter, _: bool, _: bool) -> anyhow::Result<()> {
        Err(TeamError::NotInTeam.into())
    }

    fn verify_audit_team(&self, _: bool) -> anyhow::Result<std::process::ExitCode> {
        Err(TeamError::NotInTeam.into())
    }

    fn doctor(&self, _: Option<&Vault>) -> Vec<(Check, String)> {
        Vec::new()
    }
}

/// Team mode: this home's files, as [`LocalStore`] writes them, and every
/// change also a signed row of the team's PostgreSQL database (through
/// [`airlock_team::Team`]), which the other devices' followers apply to their
/// own files.
pub(crate) struct TeamStore {
    local: LocalStore,
}

impl TeamStore {
    fn home(&self) -> &Home {
        &self.local.home
    }

    /// A [`Tell`] that opens the team and logs one change through `change`;
    /// it says which number it got, or fails with what was `done` here, why
    /// the team was not told, and to `retry` once the database is reachable.
    fn tell<'a>(
        &'a self,
        done: &'static str,
        retry: &'static str,
        change: impl AsyncFnOnce(Team) -> Result<i64, TeamError> + 'a,
    ) -> Tell<'a> {
        Tell::with(move || {
            let home = self.home();
            let sent = (|| {
                let vault = unlock::open(home)?;
                crate::cmd::team::runtime()?.block_on(async {
                    Ok::<_, anyhow::Error>(change(Team::open(home, &vault).await?).await?)
                })
            })();
            match sent {
                Ok(seq) => {
                    output::note(format_args!(
                        "sent to every device of the team (change {seq})"
                    ));
                    Ok(())
                }
                Err(e) => anyhow::bail!(
                    "{done}, but the team was not told: {e}; {retry} once the database is reachable"
                ),
            }
        })
    }
}

impl Store for TeamStore {
    fn set_secret<'a>(
        &'a self,
        vault: &'a mut Vault,
        name: &'a str,
        value: &'a [u8],
    ) -> anyhow::Result<(u32, Tell<'a>)> {
        let version = self.local.write_secret(vault, name, value, false)?;
        Ok((version, self.share_secret(vault, name, value)))
    }

    fn rotate_secret<'a>(
        &'a self,
        vault: &'a mut Vault,
        name: &'a str,
        value: &'a [u8],
    ) -> anyhow::Result<(u32, Tell<'a>)> {
        let version = self.local.write_secret(vault, name, value, true)?;
        Ok((version, self.share_secret(vault, name, value)))
    }

    fn share_secret<'a>(&'a self, vault: &'a Vault, name: &'a str, value: &'a [u8]) -> Tell<'a> {
        Tell::with(move || {
            let home = self.home();
            let version = crate::cmd::team::runtime()?.block_on(async {
                Team::open(home, vault)
                    .await?
                    .publish_secret(name, value)
                    .await
            });
            match version {
                Ok(v) => {
                    output::note(format_args!("shared with the team (team version {v})"));
                    Ok(())
                }
                Err(e) => anyhow::bail!(
                    "stored on this device, but the team was not told: {e}; run `airlock secret rotate {name}` again once the database is reachable"
                ),
            }
        })
    }

    fn remove_secret(&self, vault: &mut Vault, name: &str) -> anyhow::Result<()> {
        self.local.remove_secret(vault, name)
    }

    fn revoke(&self, target: &RevokeTarget) -> anyhow::Result<(Revoked, Tell<'_>)> {
        let (done, _) = self.local.revoke(target)?;
        let target = target.clone();
        let tell = self.tell(
            "revoked on this device",
            "run the same `airlock revoke` again",
            async move |team| team.publish_revocation(&target).await,
        );
        Ok((done, tell))
    }

    fn revoke_token<'a>(&'a self, id: &'a str) -> anyhow::Result<(usize, Tell<'a>)> {
        if !(id.len() == 12 && id.bytes().all(|b| b.is_ascii_hexdigit())) {
            anyhow::bail!(
                "invalid token id \"{}\": give the 12-hex-digit id `airlock token list` (or `airlock logs --team`) shows",
                id.escape_debug()
            );
        }
        // A token another device issued is revoked there, at its next sync.
        let n = self.local.revoke_token_here(id)?;
        let tell = self.tell(
            "done on this device",
            "run the same `airlock token revoke` again",
            async move |team| team.publish_token_revocation(id).await,
        );
        Ok((n, tell))
    }

    /// Refuses an agent the team removed, or one that is not among the
    /// team's agents when the team defines them (as of the last sync).
    fn check_agent(&self, agent: &str) -> anyhow::Result<()> {
        if let Some(why) = airlock_team::local::load_state(self.home())?.agent_refusal(agent) {
            anyhow::bail!("{why}");
        }
        Ok(())
    }

    fn lock(&self) -> anyhow::Result<Tell<'_>> {
        let _ = self.local.lock()?;
        Ok(
            self.tell("done on this device", "run it again", async |team| {
                team.publish_lock(true).await
            }),
        )
    }

    fn unlock(&self) -> anyhow::Result<(bool, Tell<'_>)> {
        let (released, _) = self.local.unlock()?;
        if !released {
            return Ok((false, Tell::nothing()));
        }
        let tell = self.tell("done on this device", "run it again", async |team| {
            team.publish_lock(false).await
        });
        Ok((true, tell))
    }

    fn incident<'a>(&'a self, p: &Incident<'a>) -> anyhow::Result<(Revoked, Tell<'a>)> {
        let (done, _) = self.local.incident(p)?;
        let (capabilities, agents, revocations) = (p.capabilities, p.agents, p.revocations);
        let locks = (!capabilities.is_empty() || !agents.is_empty()).then(|| {
            self.tell(
                "locked on this device",
                "run the same `airlock incident` again",
                async move |team| team.publish_incident_locks(capabilities, agents).await,
            )
        });
        let tell = Tell::with(move || {
            if let Some(locks) = locks {
                locks.tell()?;
            }
            for target in revocations {
                self.tell(
                    "revoked on this device",
                    "run the same `airlock revoke` again",
                    async move |team| team.publish_revocation(target).await,
                )
                .tell()?;
            }
            Ok(())
        });
        Ok((done, tell))
    }

    fn release_incident_locks(&self) -> anyhow::Result<(IncidentLocks, Tell<'_>)> {
        let (released, _) = self.local.release_incident_locks()?;
        if released.is_empty() {
            return Ok((released, Tell::nothing()));
        }
        let tell = self.tell(
            "released on this device",
            "run `airlock unlock` again",
            async |team| team.publish_incident_unlock().await,
        );
        Ok((released, tell))
    }

    /// The server's vault and a second unlocked copy for the team follower
    /// (which writes new team secrets into the vault file; the server reloads
    /// it like any other vault change), with one passphrase prompt.
    fn open_for_serve(&self) -> anyhow::Result<(Vault, Follow)> {
        let (vault, theirs) = crate::cmd::team::open_vaults(self.home())?;
        let home = self.home().clone();
        let follower = follow(move |rt| {
            Box::pin(async move { crate::cmd::team::start_follower(&home, theirs, rt).await })
        });
        Ok((vault, follower))
    }

    fn logs_team(
        &self,
        filter: &airlock_audit::Filter,
        json: bool,
        follow: bool,
    ) -> anyhow::Result<()> {
        crate::cmd::team::logs(self.home(), filter, json, follow)
    }

    fn verify_audit_team(&self, json: bool) -> anyhow::Result<std::process::ExitCode> {
        crate::cmd::team::verify_audit(self.home(), json)
    }

    fn doctor(&self, vault: Option<&Vault>) -> Vec<(Check, String)> {
        match vault {
            Some(v) => crate::cmd::team::doctor(self.home(), v),
            None => vec![(
                Check::Note,
                "team checks skipped: the vault is not open (set AIRLOCK_PASSPHRASE)".into(),
            )],
        }
    }
}
