//! `airlock run --proxy`: the program gets placeholders instead of keys, and an
//! egress proxy of its own (loopback, a random port, this run's session token)
//! that puts the real key on requests to each key's service only
//! (docs/proxy.md, "airlock run --proxy").
//!
//! Which services the run reaches, each through one capability:
//! - the `--cap` capabilities; without `--cap`, the exec capabilities whose
//!   `commands` name the program (`gh` for `airlock run --proxy -- gh …`);
//! - for an `airlock://NAME` value in the environment or an env file, the
//!   service that authenticates with secret `NAME`, through its only capability
//!   (the run asks for `--cap` when there are several). A secret no service
//!   uses (a database password) is given as itself, and the run says so.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use airlock_broker::{Caller, Runtime, SystemClock};
use airlock_config::{Config, Inject, Mode};
use airlock_exec::{Launch, Sandbox};
use airlock_home::Home;
use airlock_proxy::{Placeholders, Proxy};
use airlock_vault::Vault;
use anyhow::{Context as _, bail};

use crate::cmd::run::{ConfinedHome, confine_launch};
use crate::output;

/// The services a run reaches and their placeholders.
pub(crate) struct Plan {
    config: Config,
    /// `--proxy`: every key the program gets becomes a placeholder. Otherwise
    /// (`--confine` alone) only those of the capabilities with
    /// `inject = "placeholder"`.
    all: bool,
    /// Capability by service: one each.
    by_service: BTreeMap<String, String>,
    /// The exec capabilities whose `env` the program gets.
    env_caps: Vec<String>,
    placeholders: Placeholders,
    /// Secrets given as themselves: no service of the run uses them.
    real: Vec<String>,
}

impl Plan {
    /// The plan for running `program` with `caps` (see the module docs).
    pub(crate) fn new(home: &Home, caps: &[String], program: &Path) -> anyhow::Result<Plan> {
        let config = Config::load(home)?;
        let env_caps: Vec<String> = if caps.is_empty() {
            let name = program.file_name();
            config
                .capabilities
                .values()
                .filter(|c| c.mode == Mode::Exec)
                .filter(|c| {
                    c.commands
                        .iter()
                        .any(|cmd| Path::new(cmd.trim()).file_name() == name)
                })
                .map(|c| c.name.clone())
                .collect()
        } else {
            caps.to_vec()
        };
        Plan::build(config, true, env_caps.clone(), &env_caps)
    }

    /// The plan of `run --confine` without `--proxy`: the child's environment
    /// follows each capability's `inject` (DESIGN §7.11), so the `caps` with
    /// `inject = "placeholder"` (the default) get placeholders and the run a
    /// proxy; `None` when every one says `inject = "env"`.
    pub(crate) fn for_confine(home: &Home, caps: &[String]) -> anyhow::Result<Option<Plan>> {
        let config = Config::load(home)?;
        let standing_in: Vec<String> = caps
            .iter()
            .filter(|name| {
                config
                    .capability(name)
                    .is_some_and(|c| c.mode == Mode::Exec && c.inject == Inject::Placeholder)
            })
            .cloned()
            .collect();
        if standing_in.is_empty() {
            return Ok(None);
        }
        Plan::build(config, false, caps.to_vec(), &standing_in).map(Some)
    }

    /// The plan over `config` whose program gets the `env` of `env_caps`, with
    /// a placeholder for the service of each of `standing_in`.
    fn build(
        config: Config,
        all: bool,
        env_caps: Vec<String>,
        standing_in: &[String],
    ) -> anyhow::Result<Plan> {
        let mut plan = Plan {
            config,
            all,
            by_service: BTreeMap::new(),
            env_caps,
            placeholders: Placeholders::new(),
            real: Vec::new(),
        };
        for cap in standing_in {
            plan.add(cap)?;
        }
        Ok(plan)
    }

    /// Whether capability `cap`'s secret is a placeholder in this run.
    pub(crate) fn stands_in_for(&self, cap: &str) -> bool {
        self.all || self.by_service.values().any(|c| c == cap)
    }

    /// Adds capability `name` (and a placeholder for its service).
    fn add(&mut self, name: &str) -> anyhow::Result<()> {
        let Some(cap) = self.config.capability(name) else {
            bail!("unknown capability \"{name}\"; see `airlock cap list`");
        };
        if let Some(other) = self.by_service.get(&cap.service) {
            if other == name {
                return Ok(());
            }
            bail!(
                "capabilities \"{other}\" and \"{name}\" both use service \"{}\": a run reaches a service through one capability; pass only one of them with --cap",
                cap.service
            );
        }
        let service = self.config.services.get(&cap.service).with_context(|| {
            format!(
                "capability \"{name}\": service \"{}\" is not configured",
                cap.service
            )
        })?;
        if !service.auth.secrets().is_empty() {
            self.placeholders.for_service(service).with_context(|| {
                format!(
                    "cannot make a placeholder for service \"{}\" (its URL has no host, or the system has no randomness)",
                    service.name
                )
            })?;
        }
        self.by_service
            .insert(cap.service.clone(), cap.name.clone());
        Ok(())
    }

    /// The exec capabilities whose `env` the program gets.
    pub(crate) fn env_caps(&self) -> &[String] {
        &self.env_caps
    }

    /// The placeholder that stands for capability `cap`'s secret.
    pub(crate) fn for_capability(&mut self, cap: &str) -> anyhow::Result<String> {
        self.add(cap)?;
        let service = self
            .config
            .capability(cap)
            .and_then(|c| self.config.services.get(&c.service))
            .context("capability without a service")?
            .clone();
        self.placeholders
            .for_service(&service)
            .context("cannot make a placeholder")
    }

    /// The placeholder for `airlock://NAME`: `None` when no service uses the
    /// secret (it is given as itself).
    pub(crate) fn for_secret(&mut self, name: &str) -> anyhow::Result<Option<String>> {
        if !self.all {
            // `--confine` alone: a reference is the placeholder only of a
            // service the run already stands in for; any other is the secret.
            let service = self
                .config
                .services
                .values()
                .find(|s| self.by_service.contains_key(&s.name) && s.auth.secrets().contains(&name))
                .cloned();
            return Ok(service.and_then(|s| self.placeholders.for_secret(&s, name)));
        }
        let users: Vec<String> = self
            .config
            .services
            .values()
            .filter(|s| s.auth.secrets().contains(&name))
            .map(|s| s.name.clone())
            .collect();
        if users.is_empty() {
            if !self.real.iter().any(|r| r == name) {
                self.real.push(name.to_string());
            }
            return Ok(None);
        }
        let service = match users.iter().find(|s| self.by_service.contains_key(*s)) {
            Some(s) => s.clone(),
            None => {
                let caps: Vec<&str> = self
                    .config
                    .capabilities
                    .values()
                    .filter(|c| users.contains(&c.service))
                    .map(|c| c.name.as_str())
                    .collect();
                match caps.as_slice() {
                    [] => bail!(
                        "secret \"{name}\" is used by service \"{}\", which has no capability: add one (`airlock cap add NAME --service {}`) for the proxy to check its requests against",
                        users[0],
                        users[0]
                    ),
                    [one] => {
                        let one = one.to_string();
                        self.add(&one)?;
                        self.config.capabilities[&one].service.clone()
                    }
                    many => bail!(
                        "secret \"{name}\" is reached through several capabilities ({}): pass the one the program should use with --cap",
                        many.join(", ")
                    ),
                }
            }
        };
        let service = self.config.services[&service].clone();
        Ok(self.placeholders.for_secret(&service, name))
    }

    /// Secrets the program gets as themselves.
    pub(crate) fn real_secrets(&self) -> &[String] {
        &self.real
    }
}

/// The running proxy of one run.
pub(crate) struct Proxied {
    started: airlock_proxy::egress::Started,
    runtime: Arc<Runtime>,
    token: String,
    services: Vec<String>,
}

/// What the run's audit record says of its proxy.
pub(crate) struct Summary {
    pub(crate) services: Vec<String>,
    pub(crate) tripped: bool,
}

/// The runtime a child of `run` or `wrap` is driven on: with a proxy, which
/// serves while the child runs, two workers; otherwise one thread.
fn child_runtime(proxied: bool) -> anyhow::Result<tokio::runtime::Runtime> {
    match proxied {
        true => tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build(),
        false => tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build(),
    }
    .context("cannot start the async runtime")
}

impl Summary {
    /// The audit record's words for it, `why` naming what asked for the proxy.
    pub(crate) fn detail(&self, why: &str) -> String {
        format!(
            "; {why}: placeholders for services [{}]{}",
            self.services.join(", "),
            if self.tripped {
                "; the placeholder trip wire tripped (session revoked)"
            } else {
                ""
            }
        )
    }
}

/// Gets `launch` ready to spawn: with a `plan`, starts the run's proxy (`vault`
/// moves into it; without one the vault is dropped now) and points the launch
/// at it; then confines it when there is a `confinement`. Returns the launch
/// and the proxy to stop once the child is done.
async fn ready(
    home: &Home,
    vault: Vault,
    plan: Option<Plan>,
    mut launch: Launch,
    confinement: Option<(Sandbox, ConfinedHome)>,
) -> anyhow::Result<(Launch, Option<Proxied>)> {
    let proxied = match plan {
        Some(plan) => Some(start(home, vault, plan).await?),
        None => {
            drop(vault);
            None
        }
    };
    let mut confinement = confinement;
    if let Some(p) = &proxied {
        launch = p.attach(launch, confinement.as_mut().map(|(s, _)| s))?;
    }
    if let Some((sandbox, private)) = confinement {
        launch = confine_launch(launch, sandbox, private);
    }
    Ok((launch, proxied))
}

/// Drives a child of `run` or `wrap` on a [`child_runtime`]: gets `launch`
/// [`ready`], hands it to `child` (which spawns it and sees it through), then
/// stops the run's proxy. Returns what `child` returned and, with a `plan`, the
/// proxy's summary. The runtime is shut down without waiting for blocking work:
/// `run`'s stdin is read by the child, and `wrap`'s may still be blocked in a
/// read on a helper thread.
pub(crate) fn drive<T, Fut>(
    home: &Home,
    vault: Vault,
    plan: Option<Plan>,
    launch: Launch,
    confinement: Option<(Sandbox, ConfinedHome)>,
    child: impl FnOnce(Launch) -> Fut,
) -> anyhow::Result<(T, Option<Summary>)>
where
    Fut: Future<Output = anyhow::Result<T>>,
{
    let runtime = child_runtime(plan.is_some())?;
    let done = runtime.block_on(async {
        let (launch, proxied) = ready(home, vault, plan, launch, confinement).await?;
        let result = child(launch).await?;
        let summary = match proxied {
            Some(p) => Some(p.stop().await),
            None => None,
        };
        Ok::<_, anyhow::Error>((result, summary))
    })?;
    runtime.shutdown_background();
    Ok(done)
}

/// Starts the run's proxy on a free loopback port, over a runtime of its own
/// (`vault` moves into it), with the session CA's files in a private directory.
pub(crate) async fn start(home: &Home, vault: Vault, plan: Plan) -> anyhow::Result<Proxied> {
    let runtime = Arc::new(Runtime::new(home.clone(), vault, SystemClock::new())?);
    let caller = Caller::owner_run(plan.by_service.values().cloned().collect());
    let services: Vec<String> = plan
        .placeholders
        .services()
        .into_iter()
        .map(String::from)
        .collect();
    let on_trip = Box::new(|msg: &str| output::warn(format_args!("airlock run: {msg}")));
    let (proxy, token) = Proxy::for_run(runtime.clone(), caller, plan.placeholders, on_trip)?;
    let started = airlock_proxy::egress::Started::start(proxy)
        .await
        .map_err(|e| anyhow::anyhow!("the run's egress proxy could not start: {e}"))?;
    Ok(Proxied {
        started,
        runtime,
        token,
        services,
    })
}

impl Proxied {
    /// The proxy's port.
    pub(crate) fn port(&self) -> u16 {
        self.started.bound.port()
    }

    /// The directory of the CA files (the sandbox lets the program read it).
    pub(crate) fn dir(&self) -> &Path {
        self.started.dir.path()
    }

    /// Points the program at the proxy ([`airlock_proxy::egress::client_env`])
    /// and, when it is confined, lets its `sandbox` reach the proxy's port and
    /// read the CA files.
    pub(crate) fn attach(
        &self,
        mut launch: Launch,
        sandbox: Option<&mut Sandbox>,
    ) -> anyhow::Result<Launch> {
        for (k, v) in airlock_proxy::egress::client_env(self.started.bound, &self.token, self.dir())
        {
            launch = launch.env(k, v);
        }
        if let Some(sandbox) = sandbox {
            sandbox.allow_proxy(self.port());
            sandbox.allow_read_exec(self.dir()).map_err(|e| {
                anyhow::anyhow!("--confine: the proxy's CA directory cannot be readable: {e}")
            })?;
        }
        Ok(launch)
    }

    /// Stops the proxy and makes every audit record it wrote durable.
    pub(crate) async fn stop(self) -> Summary {
        self.started.stop();
        let tripped = self.started.proxy.tripped();
        let runtime = self.runtime.clone();
        match tokio::task::spawn_blocking(move || runtime.close_audit()).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => output::warn(format_args!("audit flush at exit failed: {e}")),
            Err(e) => output::warn(format_args!("audit flush at exit failed: {e}")),
        }
        Summary {
            services: self.services,
            tripped,
        }
    }
}
