//! Engine and per-service settings, with documented defaults.

use std::collections::BTreeMap;
use std::time::Duration;

/// Size and time limits for one service's requests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Largest request body accepted from the agent. Default 10 MiB.
    pub max_request_body: usize,
    /// Largest response body returned; a larger one is an upstream error (nothing is
    /// returned, never a silently truncated body). Default 10 MiB.
    pub max_response_body: usize,
    /// Total deadline of a buffered request, from connecting to the last body byte;
    /// for a streamed request, the deadline for the response head. Default 60 s.
    pub timeout: Duration,
    /// Streamed responses only: the longest wait for the next body chunk. A stream
    /// has no total deadline (SSE can last). Default 60 s.
    pub stream_idle_timeout: Duration,
}

/// 10 MiB.
pub const DEFAULT_MAX_BODY: usize = 10 * 1024 * 1024;

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_request_body: DEFAULT_MAX_BODY,
            max_response_body: DEFAULT_MAX_BODY,
            timeout: Duration::from_secs(60),
            stream_idle_timeout: Duration::from_secs(60),
        }
    }
}

/// Per-service behaviour the configuration may set.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ServiceOptions {
    /// Size and time limits.
    pub limits: Limits,
    /// Forward the agent's `Cookie` header. Default `false`: cookies are often
    /// session credentials, which the agent should not be able to add or replay.
    pub forward_cookies: bool,
}

/// Settings of an [`crate::Engine`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EngineConfig {
    /// TCP + TLS connect timeout for every service (a property of the shared
    /// connection pool). Default 10 s.
    pub connect_timeout: Duration,
    /// How long an idle pooled connection is kept. Default 90 s.
    pub pool_idle_timeout: Duration,
    /// Options for services without an entry in `services`.
    pub defaults: ServiceOptions,
    /// Options by service name.
    pub services: BTreeMap<String, ServiceOptions>,
    /// Services whose certificates are checked against the CA certificates in
    /// this PEM file *instead of* the system's roots (a private CA), by name.
    pub ca_files: BTreeMap<String, std::path::PathBuf>,
}

impl Default for EngineConfig {
    fn default() -> Self {
        EngineConfig {
            connect_timeout: Duration::from_secs(10),
            pool_idle_timeout: Duration::from_secs(90),
            defaults: ServiceOptions::default(),
            services: BTreeMap::new(),
            ca_files: BTreeMap::new(),
        }
    }
}

impl EngineConfig {
    /// The HTTP client every connection pool of an engine with these settings
    /// starts from: no proxy taken from the environment, no redirect followed,
    /// no `Referer`, the connect and idle timeouts above, rustls. The engine
    /// adds a service's own CA roots or HTTP/1.1-only on top; the benchmarks'
    /// floors (`bare_proxy`, `bare_mcp`) use it as it is.
    pub fn client_builder(&self) -> reqwest::ClientBuilder {
        reqwest::Client::builder()
            .no_proxy()
            .redirect(reqwest::redirect::Policy::none())
            .referer(false)
            .connect_timeout(self.connect_timeout)
            .pool_idle_timeout(self.pool_idle_timeout)
            .tls_backend_rustls()
    }

    /// The options for `service`.
    pub fn options_for(&self, service: &str) -> &ServiceOptions {
        self.services.get(service).unwrap_or(&self.defaults)
    }
}
