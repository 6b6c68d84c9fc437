//! `airlock serve`: the MCP server.

use std::sync::Arc;

use airlock_broker::{Runtime, SystemClock};
use airlock_home::Home;
use airlock_vault::{NewVaultKey, Vault, VaultError};
use anyhow::Context;

use crate::cli::{ProxyArgs, ServeArgs};
use crate::{output, unlock};

pub(crate) fn run(home: &Home, args: &ServeArgs) -> anyhow::Result<()> {
    serve(home, crate::store::open(home).as_ref(), args, None)
}

/// How long a token `airlock proxy --agent` issues is valid at most (it is
/// revoked when the proxy stops).
const PROXY_TOKEN_TTL: std::time::Duration = std::time::Duration::from_secs(24 * 3600);

/// `airlock proxy`: the egress proxy alone, and the environment for a program.
pub(crate) fn proxy(home: &Home, args: &ProxyArgs) -> anyhow::Result<()> {
    let serve_args = ServeArgs {
        agent: None,
        http: None,
        gateway: None,
        proxy: Some(args.listen.clone()),
        ui: None,
    };
    let store = crate::store::open(home);
    let issued = match &args.agent {
        None => None,
        Some(agent) => {
            store.check_agent(agent)?;
            let _lock = home.lock()?;
            Some(airlock_broker::tokens::issue(
                home,
                agent,
                &args.caps,
                PROXY_TOKEN_TTL,
            )?)
        }
    };
    let token = issued.as_ref().map(|(t, _)| t.as_str());
    let outcome = serve(home, store.as_ref(), &serve_args, Some(token));
    if let Some((_, record)) = &issued {
        let _lock = home.lock()?;
        airlock_broker::tokens::revoke_where(home, |t| t.id == record.id)?;
    }
    outcome
}

/// The environment that sends a program's HTTP(S) through the proxy at `bound`
/// and makes it trust the session CA at `ca`, as shell `export` lines.
fn proxy_env(bound: std::net::SocketAddr, token: Option<&str>, ca: &std::path::Path) -> String {
    let token = token.unwrap_or("TOKEN");
    let url = format!("http://airlock:{token}@{bound}");
    let ca = ca.display().to_string();
    let mut lines = Vec::new();
    for var in ["HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy"] {
        lines.push(format!("export {var}='{url}'"));
    }
    for var in [
        "SSL_CERT_FILE",
        "REQUESTS_CA_BUNDLE",
        "CURL_CA_BUNDLE",
        "NODE_EXTRA_CA_CERTS",
        "GIT_SSL_CAINFO",
        "AWS_CA_BUNDLE",
    ] {
        lines.push(format!("export {var}='{ca}'"));
    }
    lines.push("export NODE_USE_ENV_PROXY=1".to_string());
    // NO_PROXY must never cover a service's host (DESIGN.md §7.12).
    lines.push("unset NO_PROXY no_proxy".to_string());
    lines.join("\n")
}

/// Serves the doors `args` names, with the home's `store`; `proxy_print`
/// (from `airlock proxy`) prints the proxy's environment, with the token it
/// issued, once the proxy listens.
fn serve(
    home: &Home,
    store: &dyn crate::store::Store,
    args: &ServeArgs,
    proxy_print: Option<Option<&str>>,
) -> anyhow::Result<()> {
    if let Some(agent) = &args.agent {
        super::check_name("agent", agent)?;
        store.check_agent(agent)?;
    }
    if !home.vault_path().exists() {
        match Vault::init(home, NewVaultKey::KeyFile) {
            Ok(_) | Err(VaultError::AlreadyInitialized { .. }) => {}
            Err(e) => return Err(e.into()),
        }
        {
            let _lock = home.lock()?;
            unlock::write_template(home)?;
        }
        output::note(format_args!(
            "airlock: initialized a new home at {} (key-file mode); add a service with `airlock add NAME --url URL`",
            home.root().display()
        ));
    }
    // The store opens the vault (one unlock) and says what keeps this home in
    // step with others while it serves: in team mode the follower, with its
    // own unlocked copy of the vault; nothing in local mode.
    let (vault, follow) = store.open_for_serve()?;
    // `--ui`: the dashboard records the owner's actions with the audit key.
    let audit_key = args
        .ui
        .as_ref()
        .map(|_| zeroize::Zeroizing::new(*vault.audit_key()));

    // MCP over stdio alone serves one client: one thread does it (no worker
    // pool, no wake-ups between workers: less memory and fewer system calls
    // per call, measured in docs/benchmarks.md, issue 16). A network
    // door serves many connections: one worker per core. Either way whatever
    // can wait for a disk — an audit fsync, the audit log's file lock, a reload,
    // a state file — happens on the audit writer thread or the blocking pool,
    // never on a serving thread.
    let stdio_only =
        args.http.is_none() && args.gateway.is_none() && args.proxy.is_none() && args.ui.is_none();
    let runtime = if stdio_only {
        tokio::runtime::Builder::new_current_thread()
    } else {
        tokio::runtime::Builder::new_multi_thread()
    }
    .enable_all()
    .build()
    .context("cannot start the async runtime")?;
    runtime.block_on(async {
        let rt = Arc::new(Runtime::new(
            home.clone(),
            vault,
            SystemClock::new(),
        )?);
        // Exec children with inject = "placeholder" reach their service through
        // an egress proxy of their own, started at the first one.
        rt.set_egress(airlock_proxy::egress::ExecChildren::new(&rt));
        // Team mode: follow the team's change log; fail closed past max_staleness.
        follow(&rt).await?;
        // Batched audit records are made durable within 100 ms by the audit
        // writer thread itself (no timer here).
        let gateway = async {
            match &args.gateway {
                None => std::future::pending::<anyhow::Result<()>>().await,
                Some(addr) => {
                    airlock_gateway::serve_gateway(rt.clone(), addr, |bound| {
                        output::note(format_args!(
                            "airlock: gateway on http://{bound}/ (use http://{bound}/<capability> as the SDK's base URL and an agent token as its key)"
                        ));
                    })
                    .await?;
                    Ok(())
                }
            }
        };
        let proxy = async {
            match &args.proxy {
                None => std::future::pending::<anyhow::Result<()>>().await,
                Some(addr) => {
                    let proxy = airlock_proxy::Proxy::new(rt.clone())?;
                    // The session CA's certificate (public; its key stays in
                    // memory), in a private directory removed at exit.
                    let dir = tempfile::Builder::new()
                        .prefix("airlock-proxy-")
                        .tempdir()
                        .context("cannot create the proxy's directory for its CA certificate")?;
                    let ca = dir.path().join("ca.pem");
                    std::fs::write(&ca, proxy.ca().cert_pem())
                        .with_context(|| format!("cannot write {}", ca.display()))?;
                    airlock_proxy::serve_proxy(proxy, addr, |bound| {
                        output::note(format_args!(
                            "airlock: egress proxy on http://{bound} (session CA: {}; agent token in Proxy-Authorization)",
                            ca.display()
                        ));
                        if !bound.ip().is_loopback() {
                            output::warn(format_args!(
                                "the egress proxy listens on {bound}, beyond this machine: anyone who can reach it can try agent tokens; prefer 127.0.0.1"
                            ));
                        }
                        if let Some(token) = proxy_print {
                            output::line(proxy_env(bound, token, &ca));
                        }
                    })
                    .await?;
                    drop(dir);
                    Ok(())
                }
            }
        };
        // The dashboard is not a door for agents: with `--ui` alone, MCP is
        // still served on stdio, and the login link goes to stderr.
        let ui = async {
            match (&args.ui, &audit_key) {
                (Some(addr), Some(key)) => {
                    let (ui, listener) =
                        crate::cmd::ui::start(home, key, addr, crate::cmd::ui::Link::Stderr).await?;
                    airlock_ui::serve(&ui, listener, std::future::pending()).await;
                    Ok(())
                }
                _ => std::future::pending::<anyhow::Result<()>>().await,
            }
        };
        let mcp = async {
            let other_door = args.gateway.is_some() || args.proxy.is_some();
            match (&args.http, other_door) {
                (None, true) => std::future::pending::<anyhow::Result<()>>().await,
                (None, false) => {
                    output::note(format_args!(
                        "airlock: serving MCP on stdio (agent: {})",
                        args.agent.as_deref().unwrap_or("not set — capabilities with an `agents` list stay closed")
                    ));
                    airlock_mcp::serve_stdio(rt.clone(), args.agent.clone()).await?;
                    Ok(())
                }
                (Some(addr), _) => {
                    if args.agent.is_some() {
                        output::warn("--agent is ignored with --http: each request's agent comes from its token");
                    }
                    airlock_mcp::serve_http(rt.clone(), addr, airlock_mcp::HttpOptions::default(), |bound| {
                        output::note(format_args!(
                            "airlock: serving MCP on http://{bound}/mcp (agent tokens required: `airlock token issue --agent NAME`)"
                        ));
                    })
                    .await?;
                    Ok(())
                }
            }
        };
        let control_path = start_control(&rt, home);
        // Whichever ends first (stdio closed, a listener failed, SIGTERM or
        // Ctrl-C) ends the server.
        let outcome = tokio::select! {
            r = gateway => r,
            r = proxy => r,
            r = mcp => r,
            r = ui => r,
            r = shutdown_signal() => r,
        };
        if let Some(p) = control_path {
            airlock_broker::control::remove(&p);
        }
        // Anchor every record written (batched ones included), off the workers.
        let closing = rt.clone();
        match tokio::task::spawn_blocking(move || closing.close_audit()).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => output::warn(format_args!("audit flush at exit failed: {e}")),
            Err(e) => output::warn(format_args!("audit flush at exit failed: {e}")),
        }
        outcome?;
        Ok::<_, anyhow::Error>(())
    })
}

/// Resolves on SIGTERM or SIGINT, so the server exits through its cleanup (admin
/// socket removed, audit anchored) instead of dying mid-way.
async fn shutdown_signal() -> anyhow::Result<()> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let mut term = signal(SignalKind::terminate()).context("cannot watch SIGTERM")?;
        let mut int = signal(SignalKind::interrupt()).context("cannot watch SIGINT")?;
        tokio::select! {
            _ = term.recv() => {}
            _ = int.recv() => {}
        }
    }
    #[cfg(not(unix))]
    tokio::signal::ctrl_c()
        .await
        .context("cannot watch Ctrl-C")?;
    Ok(())
}

/// Listens on the admin socket (`control.sock`, 0600) for the CLI's `sessions`,
/// `revoke`, `lock`, `unlock`, `approve` and `deny`. A server that cannot open it
/// keeps serving (the shared state files still reach it at its next request; held
/// approvals can then be answered only by the MCP client or time out) and says so.
/// A peer whose uid (`SO_PEERCRED`) is not this server's is refused.
#[cfg(unix)]
fn start_control(rt: &Arc<Runtime>, home: &Home) -> Option<std::path::PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
    let path = airlock_broker::control::socket_path(home);
    let listener = match tokio::net::UnixListener::bind(&path) {
        Ok(l) => l,
        Err(e) => {
            output::warn(format_args!(
                "no admin socket at {} ({e}); revocations still apply at the next request",
                path.display()
            ));
            return None;
        }
    };
    let _ = std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600));
    let rt = rt.clone();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let rt = rt.clone();
            tokio::spawn(async move {
                let own = rustix::process::getuid().as_raw();
                let peer = stream.peer_cred().map(|c| c.uid());
                let (read, mut write) = stream.into_split();
                // One line, at most 64 KiB (read before refusing, so a refused
                // peer gets the refusal rather than a broken pipe).
                let mut line = String::new();
                let mut reader = BufReader::new(read.take(64 * 1024));
                if reader.read_line(&mut line).await.is_err() {
                    return;
                }
                if peer.as_ref().ok() != Some(&own) {
                    let who = peer.map_or_else(|e| format!("unknown ({e})"), |u| u.to_string());
                    output::warn(format_args!(
                        "admin socket: refused a connection from uid {who} (this server runs as uid {own})"
                    ));
                    let refusal = serde_json::json!({"ok": false, "pid": std::process::id(),
                        "error": format!("refused: the admin socket answers only uid {own}")});
                    let _ = write.write_all(format!("{refusal}\n").as_bytes()).await;
                    return;
                }
                let answer = airlock_broker::control::answer(&rt, &line).await;
                let _ = write.write_all(format!("{answer}\n").as_bytes()).await;
            });
        }
    });
    Some(path)
}

#[cfg(not(unix))]
fn start_control(_rt: &Arc<Runtime>, _home: &Home) -> Option<std::path::PathBuf> {
    None
}
