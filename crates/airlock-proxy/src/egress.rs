//! What a program needs to use the egress proxy (its environment and the CA
//! files), and the proxy of the exec children: [`ChildEgress`] for the MCP
//! `exec` tool's programs whose capability says `inject = "placeholder"`.

use std::ffi::OsString;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use airlock_broker::{Caller, ChildEgress, ChildProxy, Runtime};
use airlock_config::Service;

use crate::{NO_CAPABILITY_USER, Placeholders, Proxy};

/// Where the system's trusted roots are, on the systems airlock runs on.
const SYSTEM_ROOTS: [&str; 4] = [
    "/etc/ssl/certs/ca-certificates.crt",
    "/etc/pki/tls/certs/ca-bundle.crt",
    "/etc/ssl/cert.pem",
    "/etc/ssl/ca-bundle.pem",
];

/// Writes the session CA (`ca.pem`) and a bundle of the system's roots and the
/// session CA (`bundle.pem`) into `dir` (a private directory).
pub fn write_ca_files(proxy: &Proxy, dir: &Path) -> std::io::Result<()> {
    let ca = proxy.ca().cert_pem();
    std::fs::write(dir.join("ca.pem"), ca)?;
    let mut bundle = SYSTEM_ROOTS
        .iter()
        .find_map(|p| std::fs::read(p).ok())
        .unwrap_or_default();
    if !bundle.is_empty() && !bundle.ends_with(b"\n") {
        bundle.push(b'\n');
    }
    bundle.extend_from_slice(ca.as_bytes());
    std::fs::write(dir.join("bundle.pem"), bundle)
}

/// The variables that send a program's HTTP(S) through the proxy at `bound`
/// with session `token`, and make it trust the CA files in `dir`
/// ([`write_ca_files`]): the proxy variables in both cases, an empty
/// `NO_PROXY` (it never covers a service's host), the CA variables clients
/// read.
pub fn client_env(bound: SocketAddr, token: &str, dir: &Path) -> Vec<(String, OsString)> {
    let url = format!("http://{NO_CAPABILITY_USER}:{token}@{bound}");
    let mut env: Vec<(String, OsString)> = Vec::new();
    for var in [
        "HTTPS_PROXY",
        "https_proxy",
        "HTTP_PROXY",
        "http_proxy",
        "ALL_PROXY",
        "all_proxy",
    ] {
        env.push((var.into(), url.clone().into()));
    }
    for var in ["NO_PROXY", "no_proxy"] {
        env.push((var.into(), OsString::new()));
    }
    let bundle = dir.join("bundle.pem");
    for var in [
        "SSL_CERT_FILE",
        "REQUESTS_CA_BUNDLE",
        "CURL_CA_BUNDLE",
        "GIT_SSL_CAINFO",
        "AWS_CA_BUNDLE",
    ] {
        env.push((var.into(), bundle.clone().into_os_string()));
    }
    env.push((
        "NODE_EXTRA_CA_CERTS".into(),
        dir.join("ca.pem").into_os_string(),
    ));
    env.push(("NODE_USE_ENV_PROXY".into(), "1".into()));
    env
}

/// Why the egress proxy could not start ([`Started::start`]).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StartError {
    /// The temporary directory for the proxy's CA files could not be created.
    #[error("cannot create the proxy's directory for its CA: {0}")]
    CaDir(std::io::Error),
    /// The proxy's CA files could not be written.
    #[error("cannot write the proxy's CA files: {0}")]
    CaFiles(std::io::Error),
    /// The proxy could not listen on a loopback port.
    #[error("the egress proxy could not listen on 127.0.0.1")]
    Listen,
}

/// A proxy of sessions on a free loopback port, serving in the background,
/// with its CA files in a private directory (removed when it is dropped).
pub struct Started {
    /// The proxy.
    pub proxy: Arc<Proxy>,
    /// Where it listens.
    pub bound: SocketAddr,
    /// The CA files' directory.
    pub dir: tempfile::TempDir,
    task: tokio::task::JoinHandle<()>,
}

impl Started {
    /// Starts `proxy` (a proxy of sessions) on 127.0.0.1 and a free port.
    pub async fn start(proxy: Arc<Proxy>) -> Result<Started, StartError> {
        let dir = tempfile::Builder::new()
            .prefix("airlock-egress-")
            .tempdir()
            .map_err(StartError::CaDir)?;
        write_ca_files(&proxy, dir.path()).map_err(StartError::CaFiles)?;
        let (tx, rx) = tokio::sync::oneshot::channel();
        let serving = proxy.clone();
        let task = tokio::spawn(async move {
            let _ = crate::serve_proxy(serving, "127.0.0.1:0", |bound| {
                let _ = tx.send(bound);
            })
            .await;
        });
        let bound = rx.await.map_err(|_| StartError::Listen)?;
        Ok(Started {
            proxy,
            bound,
            dir,
            task,
        })
    }

    /// Stops serving.
    pub fn stop(&self) {
        self.task.abort();
    }
}

impl Drop for Started {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// The egress proxy of the exec children of one server, started at the first
/// child that needs it.
pub struct ExecChildren {
    runtime: std::sync::Weak<Runtime>,
    started: tokio::sync::OnceCell<Started>,
}

impl ExecChildren {
    /// For the children of `runtime` (held weakly: the runtime holds this).
    pub fn new(runtime: &Arc<Runtime>) -> Arc<ExecChildren> {
        Arc::new(ExecChildren {
            runtime: Arc::downgrade(runtime),
            started: tokio::sync::OnceCell::new(),
        })
    }
}

/// Ends a child's session when the child is gone.
struct SessionGuard {
    proxy: Arc<Proxy>,
    token: String,
}

impl Drop for SessionGuard {
    fn drop(&mut self) {
        self.proxy.end_session(&self.token);
    }
}

impl ChildEgress for ExecChildren {
    fn open<'a>(
        &'a self,
        caller: Caller,
        service: &'a Service,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = Result<ChildProxy, String>> + Send + 'a>>
    {
        Box::pin(async move {
            let started = self
                .started
                .get_or_try_init(|| async {
                    let runtime = self
                        .runtime
                        .upgrade()
                        .ok_or_else(|| "the server is stopping".to_string())?;
                    let proxy = Proxy::for_sessions(runtime).map_err(|e| e.to_string())?;
                    Started::start(proxy).await.map_err(|e| e.to_string())
                })
                .await?;
            let mut placeholders = Placeholders::new();
            let placeholder = placeholders.for_service(service).ok_or_else(|| {
                format!(
                    "cannot make a placeholder for service \"{}\" (no secret, or a URL without a host)",
                    service.name
                )
            })?;
            let token = started
                .proxy
                .add_session(caller, placeholders, Box::new(|_| {}))
                .map_err(|e| e.to_string())?;
            Ok(ChildProxy {
                placeholder,
                env: client_env(started.bound, &token, started.dir.path()),
                port: started.bound.port(),
                dir: started.dir.path().to_path_buf(),
                guard: Box::new(SessionGuard {
                    proxy: started.proxy.clone(),
                    token,
                }),
            })
        })
    }
}
