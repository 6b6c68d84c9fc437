//! Building, pinning, sending and scrubbing one upstream request.

use std::collections::HashMap;
use std::fmt;
use std::pin::Pin;
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll};

use airlock_config::Service;
use airlock_inject::{Injector, OutgoingRequest};
use airlock_policy::Target;
use base64::Engine as _;
use bytes::Bytes;
use futures_util::{Stream, StreamExt};
use http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use zeroize::Zeroizing;

use crate::error::{AgentError, EngineError, InternalError, UpstreamError, describe};
use crate::headers::{LocationCheck, filter_request, filter_response};
use crate::options::{EngineConfig, Limits, ServiceOptions};
use crate::scrub::{BodyKind, Scrubber, StreamScrubber};

/// What the agent asked for, after the policy allowed it.
///
/// `method` and `target` must be the ones the policy decided on; the engine sends
/// exactly them. `headers` are the agent's, as strings (MCP passes JSON strings;
/// [`UpstreamRequest::headers_from_map`] converts a gateway's `HeaderMap`).
#[derive(Clone)]
pub struct UpstreamRequest {
    /// The method the policy allowed.
    pub method: Method,
    /// The normalized target the policy matched (path and query).
    pub target: Target,
    /// The agent's headers, filtered by the engine (see `headers` module docs).
    pub headers: Vec<(String, String)>,
    /// The body, at most [`Limits::max_request_body`] bytes.
    pub body: Bytes,
}

impl fmt::Debug for UpstreamRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UpstreamRequest")
            .field("method", &self.method)
            .field("target", &self.target)
            .field(
                "headers",
                &self.headers.iter().map(|(n, _)| n).collect::<Vec<_>>(),
            )
            .field("body_len", &self.body.len())
            .finish()
    }
}

impl UpstreamRequest {
    /// A request with no headers and an empty body.
    pub fn new(method: Method, target: Target) -> Self {
        UpstreamRequest {
            method,
            target,
            headers: Vec::new(),
            body: Bytes::new(),
        }
    }

    /// Adds an agent header.
    pub fn header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }

    /// Sets the body.
    pub fn body(mut self, body: impl Into<Bytes>) -> Self {
        self.body = body.into();
        self
    }

    /// Converts a `HeaderMap` (the gateway's) into agent headers. A value that is
    /// not UTF-8 is refused rather than altered.
    pub fn headers_from_map(map: &HeaderMap) -> Result<Vec<(String, String)>, EngineError> {
        map.iter()
            .map(|(n, v)| match v.to_str() {
                Ok(s) => Ok((n.as_str().to_string(), s.to_string())),
                Err(_) => Err(AgentError::BadHeaderValue {
                    header: n.as_str().to_string(),
                }
                .into()),
            })
            .collect()
    }
}

/// A buffered, scrubbed upstream response.
#[derive(Debug, Clone)]
pub struct UpstreamResponse {
    /// The upstream's status, 3xx included (redirects are never followed).
    pub status: StatusCode,
    /// Filtered and scrubbed headers (see the `headers` module docs).
    pub headers: HeaderMap,
    /// The scrubbed body.
    pub body: Bytes,
    /// Agent headers that were dropped (lower-case names).
    pub removed_request_headers: Vec<String>,
    /// Upstream headers that were removed (lower-case names).
    pub removed_response_headers: Vec<String>,
}

/// A body as the agent sees it in JSON: text when it is UTF-8, base64 otherwise.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BodyText {
    /// The body, or its standard base64 encoding.
    pub text: String,
    /// Whether `text` is base64.
    pub base64: bool,
}

impl UpstreamResponse {
    /// The body as text (UTF-8) or base64 of the scrubbed bytes.
    pub fn body_text(&self) -> BodyText {
        match std::str::from_utf8(&self.body) {
            Ok(s) => BodyText {
                text: s.to_string(),
                base64: false,
            },
            Err(_) => BodyText {
                text: base64::engine::general_purpose::STANDARD.encode(&self.body),
                base64: true,
            },
        }
    }
}

/// A streamed upstream response: head now, scrubbed body as it arrives.
#[derive(Debug)]
pub struct StreamingResponse {
    /// The upstream's status.
    pub status: StatusCode,
    /// Filtered and scrubbed headers.
    pub headers: HeaderMap,
    /// Agent headers that were dropped.
    pub removed_request_headers: Vec<String>,
    /// Upstream headers that were removed.
    pub removed_response_headers: Vec<String>,
    /// The scrubbed body.
    pub body: ScrubbedBody,
}

/// A scrubbed body stream. Yields scrubbed chunks; a secret split across upstream
/// chunks is still redacted (bytes that may start a secret are held back until they
/// can be decided). Ends with an error when the upstream fails, goes idle longer than
/// [`Limits::stream_idle_timeout`], or sends more than
/// [`Limits::max_response_body`] bytes.
pub struct ScrubbedBody {
    inner: Pin<Box<dyn Stream<Item = Result<Bytes, EngineError>> + Send>>,
}

impl fmt::Debug for ScrubbedBody {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ScrubbedBody").finish_non_exhaustive()
    }
}

impl Stream for ScrubbedBody {
    type Item = Result<Bytes, EngineError>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.inner.as_mut().poll_next(cx)
    }
}

impl ScrubbedBody {
    /// The next scrubbed chunk, `None` at the end.
    pub async fn next_chunk(&mut self) -> Option<Result<Bytes, EngineError>> {
        self.inner.next().await
    }

    /// Waits for the first chunk and keeps it at the head of the stream. A body
    /// that fails before its first byte (a malformed first chunk, an upstream that
    /// resets) then fails the request, answered 502, instead of a response head
    /// that an HTTP server may never send once the body's first read errors.
    pub async fn prefetch(mut self) -> Result<ScrubbedBody, EngineError> {
        let rest = match self.inner.next().await {
            Some(Err(e)) => return Err(e),
            // The stream has ended and must not be polled again (an `unfold`
            // panics): an empty body takes its place (issue 14 item 8).
            None => {
                return Ok(ScrubbedBody {
                    inner: Box::pin(futures_util::stream::empty()),
                });
            }
            Some(Ok(first)) => {
                futures_util::stream::once(async move { Ok(first) }).chain(self.inner)
            }
        };
        Ok(ScrubbedBody {
            inner: Box::pin(rest),
        })
    }

    /// Reads the rest of the stream into one buffer.
    pub async fn collect(mut self) -> Result<Vec<u8>, EngineError> {
        let mut out = Vec::new();
        while let Some(chunk) = self.next_chunk().await {
            out.extend_from_slice(&chunk?);
        }
        Ok(out)
    }
}

/// The service's origin and base path, checked.
struct Pinned {
    origin: url::Origin,
    /// `scheme://host[:port]`, port omitted when it is the scheme's default.
    origin_str: String,
    /// The URL path without trailing `/` (`""` for `/`).
    base: String,
}

fn pin(service: &Service) -> Result<Pinned, InternalError> {
    let url = &service.url;
    let bad = |problem: &str| InternalError::ServiceUrl {
        service: service.name.clone(),
        problem: problem.to_string(),
    };
    if !matches!(url.scheme(), "https" | "http") {
        return Err(bad("the scheme must be https or http"));
    }
    if url.cannot_be_a_base() || url.host_str().is_none() {
        return Err(bad("it has no host"));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(bad("it contains credentials"));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(bad("it has a query or a fragment"));
    }
    let origin = url.origin();
    if !origin.is_tuple() {
        return Err(bad("it has no usable origin"));
    }
    Ok(Pinned {
        origin_str: origin.ascii_serialization(),
        origin,
        base: url.path().trim_end_matches('/').to_string(),
    })
}

/// Everything checked and built, ready to send.
struct Prepared {
    request: reqwest::Request,
    scrubber: Scrubber,
    removed: Vec<String>,
    pinned: Pinned,
    /// origin + path (no query: it may hold a credential), to resolve `Location`.
    location_base: url::Url,
    options: ServiceOptions,
}

/// A [`Prepared`] request's answer side, once the request is sent.
struct Answering {
    scrubber: Scrubber,
    removed: Vec<String>,
    pinned: Pinned,
    location_base: url::Url,
    limits: Limits,
}

impl Prepared {
    fn split(self) -> (reqwest::Request, Answering) {
        let answering = Answering {
            scrubber: self.scrubber,
            removed: self.removed,
            pinned: self.pinned,
            location_base: self.location_base,
            limits: self.options.limits,
        };
        (self.request, answering)
    }
}

/// The upstream engine: a pooled HTTP client that only ever talks to the origin of
/// the service a request is for. See the crate docs.
#[derive(Debug, Clone)]
pub struct Engine {
    /// Built at the first request, not at start-up: a server that answers
    /// `tools/list` or refuses a request never pays for loading the TLS roots
    /// and seeding the TLS library (issue 16, cold start).
    client: Arc<OnceLock<Result<reqwest::Client, String>>>,
    /// The same, HTTP/1.1 only: for WebSocket upgrades (`upgrade` module).
    http1_client: Arc<OnceLock<Result<reqwest::Client, String>>>,
    /// Services with their own CA (`ca_file`): the certificates, read when the
    /// engine is made, and a client that trusts only them, built at the first
    /// request to that service.
    own_roots: Arc<HashMap<String, OwnRoots>>,
    config: EngineConfig,
}

#[derive(Debug)]
struct OwnRoots {
    certs: Vec<reqwest::Certificate>,
    client: OnceLock<Result<reqwest::Client, String>>,
    http1_client: OnceLock<Result<reqwest::Client, String>>,
}

impl Engine {
    /// The engine; its connection pool (rustls only, no proxy — not even
    /// `HTTPS_PROXY` from the environment —, no redirects, no `Referer`, connect
    /// timeout from `config`) is built at the first request. Each `ca_files`
    /// entry is read now: a file that cannot be read or holds no certificate is
    /// an error naming the service and the file.
    pub fn new(config: EngineConfig) -> Result<Self, EngineError> {
        let mut own_roots = HashMap::new();
        for (service, path) in &config.ca_files {
            let failed = |why: String| InternalError::Client {
                detail: format!("service \"{service}\": ca_file {}: {why}", path.display()),
            };
            let pem = std::fs::read(path).map_err(|e| failed(e.to_string()))?;
            let certs =
                reqwest::Certificate::from_pem_bundle(&pem).map_err(|e| failed(describe(&e)))?;
            if certs.is_empty() {
                return Err(failed("no PEM certificate in it".into()).into());
            }
            own_roots.insert(
                service.clone(),
                OwnRoots {
                    certs,
                    client: OnceLock::new(),
                    http1_client: OnceLock::new(),
                },
            );
        }
        Ok(Engine {
            client: Arc::new(OnceLock::new()),
            http1_client: Arc::new(OnceLock::new()),
            own_roots: Arc::new(own_roots),
            config,
        })
    }

    /// The connection pool for `service`, built at the first call: the shared
    /// one, or the service's own when it has a `ca_file`.
    fn client(&self, service: &str) -> Result<&reqwest::Client, EngineError> {
        self.pool(service, false)
    }

    /// [`Engine::client`], or with `http1_only` its HTTP/1.1-only twin.
    fn pool(&self, service: &str, http1_only: bool) -> Result<&reqwest::Client, EngineError> {
        let build = |roots: Option<&[reqwest::Certificate]>| {
            let mut b = self.config.client_builder();
            if let Some(certs) = roots {
                b = b.tls_certs_only(certs.iter().cloned());
            }
            if http1_only {
                b = b.http1_only();
            }
            b.build().map_err(|e| describe(&e))
        };
        let built = match (self.own_roots.get(service), http1_only) {
            (Some(own), false) => own.client.get_or_init(|| build(Some(&own.certs))),
            (Some(own), true) => own.http1_client.get_or_init(|| build(Some(&own.certs))),
            (None, false) => self.client.get_or_init(|| build(None)),
            (None, true) => self.http1_client.get_or_init(|| build(None)),
        };
        built.as_ref().map_err(|detail| {
            InternalError::Client {
                detail: detail.clone(),
            }
            .into()
        })
    }

    /// The configuration.
    pub fn config(&self) -> &EngineConfig {
        &self.config
    }

    /// Sends `req` to `service` with the credential `injector` adds, and returns the
    /// response with every secret `scrubber` knows (plus those the injector emits)
    /// redacted, body buffered up to [`Limits::max_response_body`].
    pub async fn send(
        &self,
        service: &Service,
        injector: &dyn Injector,
        req: UpstreamRequest,
        scrubber: &Scrubber,
    ) -> Result<UpstreamResponse, EngineError> {
        let mut p = self.prepare(service, injector, req, scrubber).await?;
        let limits = p.options.limits;
        *p.request.timeout_mut() = Some(limits.timeout);
        let method = p.request.method().clone();
        let mut resp = self
            .client(&service.name)?
            .execute(p.request)
            .await
            .map_err(|e| self.send_error(&service.name, &e, &limits))?;
        let (status, headers, removed_resp) = response_head(
            &service.name,
            &method,
            &resp,
            &p.scrubber,
            &p.pinned,
            &p.location_base,
        )?;

        let max = limits.max_response_body;
        if resp.content_length().is_some_and(|n| n > max as u64) {
            return Err(too_large(&service.name, max));
        }
        let mut scrub = p.scrubber.stream_body(body_kind(&resp));
        let mut body = Vec::new();
        let mut total = 0usize;
        while let Some(chunk) = resp
            .chunk()
            .await
            .map_err(|e| self.send_error(&service.name, &e, &limits))?
        {
            total += chunk.len();
            if total > max {
                return Err(too_large(&service.name, max));
            }
            scrub.push_into(&chunk, &mut body);
        }
        body.extend_from_slice(&scrub.finish());
        Ok(UpstreamResponse {
            status,
            headers,
            body: Bytes::from(body),
            removed_request_headers: p.removed,
            removed_response_headers: removed_resp,
        })
    }

    /// Like [`Engine::send`], but returns as soon as the response head arrives
    /// (within [`Limits::timeout`]) and streams the scrubbed body (for SSE).
    pub async fn send_streaming(
        &self,
        service: &Service,
        injector: &dyn Injector,
        req: UpstreamRequest,
        scrubber: &Scrubber,
    ) -> Result<StreamingResponse, EngineError> {
        let p = self.prepare(service, injector, req, scrubber).await?;
        let (request, answering) = p.split();
        let method = request.method().clone();
        let client = self.client(&service.name)?;
        let resp = self
            .head_within(&service.name, client, request, &answering.limits)
            .await?;
        streaming(&service.name, &method, resp, answering)
    }

    /// Sends `request` with `client` and waits for the response head, at most
    /// [`Limits::timeout`].
    async fn head_within(
        &self,
        service: &str,
        client: &reqwest::Client,
        request: reqwest::Request,
        limits: &Limits,
    ) -> Result<reqwest::Response, EngineError> {
        match tokio::time::timeout(limits.timeout, client.execute(request)).await {
            Err(_) => Err(UpstreamError::Timeout {
                service: service.to_string(),
                after: limits.timeout,
                phase: "response",
            }
            .into()),
            Ok(r) => r.map_err(|e| self.send_error(service, &e, limits)),
        }
    }

    /// The URL [`Engine::send`] would request for `req`, built and checked by the same
    /// code (origin pinning, the normalized-target check, the base path joined on,
    /// the credential injected, the final re-parse), but sent nowhere. Refuses with
    /// the errors `send` gives before sending. For tests and fuzzing of "what is
    /// checked is what is sent" (DESIGN.md §7 invariant 3). The URL may hold a
    /// credential (a query injector's): treat it like one.
    pub async fn request_url(
        &self,
        service: &Service,
        injector: &dyn Injector,
        req: UpstreamRequest,
    ) -> Result<url::Url, EngineError> {
        let p = self
            .prepare(service, injector, req, &Scrubber::empty())
            .await?;
        Ok(p.request.url().clone())
    }

    /// Checks and builds everything; nothing is sent yet.
    async fn prepare(
        &self,
        service: &Service,
        injector: &dyn Injector,
        req: UpstreamRequest,
        scrubber: &Scrubber,
    ) -> Result<Prepared, EngineError> {
        let options = *self.config.options_for(&service.name);
        let limits = options.limits;
        let name = &service.name;
        let pinned = pin(service)?;

        // 1. Method: never the ones that echo or tunnel.
        let method = req.method;
        if matches!(method.as_str(), "TRACE" | "TRACK" | "CONNECT") {
            return Err(AgentError::ForbiddenMethod {
                method: method.as_str().to_string(),
            }
            .into());
        }

        // 2. Body size.
        if req.body.len() > limits.max_request_body {
            return Err(AgentError::RequestTooLarge {
                service: name.clone(),
                size: req.body.len(),
                limit: limits.max_request_body,
            }
            .into());
        }

        // 3. The target must be exactly what normalization produces (the policy
        //    checked a normalized target; a hand-built one is refused).
        let target_string = req.target.to_string();
        match airlock_policy::normalize(&target_string) {
            Ok(t) if t == req.target => {}
            Ok(_) => {
                return Err(AgentError::InvalidTarget {
                    reason: "the target is not in normalized form".to_string(),
                }
                .into());
            }
            Err(e) => {
                return Err(AgentError::InvalidTarget {
                    reason: e.to_string(),
                }
                .into());
            }
        }

        // 4. Headers.
        let filtered = filter_request(
            &req.headers,
            injector.owned_headers(),
            options.forward_cookies,
        )?;
        let mut removed = filtered.removed;

        // 5. URL: origin + base path + target, by concatenation; the query minus
        //    parameters the injector owns.
        let path = format!("{}{}", pinned.base, req.target.path);
        let query = match &req.target.query {
            Some(q) => {
                let (kept, stripped) = strip_query_params(q, injector.owned_query_params());
                for s in stripped {
                    let label = format!("query parameter {s}");
                    if !removed.contains(&label) {
                        removed.push(label);
                    }
                }
                kept
            }
            None => None,
        };
        let before = OutgoingRequest::new(
            method.clone(),
            pinned.origin_str.clone(),
            path.clone(),
            query.clone(),
            HeaderMap::new(),
            Bytes::new(),
        );
        // Before injection a mismatch is the agent's (a character the client would
        // re-encode); after injection it would be a bug.
        let before_url = before.url();
        let checked = check_url(&before_url, &pinned, &path, query.as_deref()).map_err(|what| {
            AgentError::TargetNotSendable {
                service: name.clone(),
                detail: explain_mismatch(what, &target_string, &before_url, &pinned),
            }
        })?;

        // 6. Credential.
        let mut out = OutgoingRequest::new(
            method,
            pinned.origin_str.clone(),
            path.clone(),
            query,
            filtered.headers,
            req.body,
        );
        injector
            .inject(&mut out)
            .await
            .map_err(|e| -> EngineError {
                if e.is_agent() {
                    AgentError::Unsignable {
                        service: name.clone(),
                        source: e,
                    }
                    .into()
                } else if e.is_upstream() {
                    UpstreamError::Credential {
                        service: name.clone(),
                        source: e,
                    }
                    .into()
                } else {
                    InternalError::Credential {
                        service: name.clone(),
                        source: e,
                    }
                    .into()
                }
            })?;

        // 7. Secrets the injector may have put on the wire join the scrubber.
        let mut emitted: Vec<(String, Zeroizing<Vec<u8>>)> = Vec::new();
        injector.visit_emitted_secrets(&mut |n, v| {
            emitted.push((n.to_string(), Zeroizing::new(v.to_vec())))
        });
        let scrubber = scrubber
            .with_secrets(emitted.iter().map(|(n, v)| (n.as_str(), v.as_slice())))
            .map_err(InternalError::from)?;
        drop(emitted);

        // 8. Defence in depth: the final URL still has the service's origin and the
        //    checked path, and no Host header points elsewhere.
        let authority = out.authority().to_string();
        let final_query = out.query().map(str::to_string);
        let (method, url_string, mut headers, body) = out.into_parts();
        let url_string = Zeroizing::new(url_string);
        // The same check of the same inputs gives the same URL: an injector that
        // left the URL alone (a header credential) costs no second parse. (The
        // first check passed with `query`, so `checked.query()` is `query`.)
        let url = if *url_string == before_url && final_query.as_deref() == checked.query() {
            checked
        } else {
            check_url(&url_string, &pinned, &path, final_query.as_deref()).map_err(|what| {
                InternalError::OriginMismatch {
                    service: name.clone(),
                    what,
                }
            })?
        };
        if let Some(host) = headers.get(header::HOST)
            && host.as_bytes() != authority.as_bytes()
        {
            return Err(InternalError::OriginMismatch {
                service: name.clone(),
                what: "Host header",
            }
            .into());
        }
        if !headers.contains_key(header::ACCEPT_ENCODING) {
            headers.insert(
                header::ACCEPT_ENCODING,
                HeaderValue::from_static("identity"),
            );
        }

        let mut location_base = url.clone();
        location_base.set_query(None);
        let mut request = reqwest::Request::new(method.clone(), url);
        *request.headers_mut() = headers;
        if !body.is_empty() || matches!(method, Method::POST | Method::PUT | Method::PATCH) {
            *request.body_mut() = Some(reqwest::Body::from(body));
        }
        Ok(Prepared {
            request,
            scrubber,
            removed,
            pinned,
            location_base,
            options,
        })
    }

    fn send_error(&self, service: &str, e: &reqwest::Error, limits: &Limits) -> EngineError {
        if e.is_timeout() {
            let connect = e.is_connect();
            UpstreamError::Timeout {
                service: service.to_string(),
                after: if connect {
                    self.config.connect_timeout
                } else {
                    limits.timeout
                },
                phase: if connect { "connect" } else { "response" },
            }
            .into()
        } else if e.is_connect() {
            UpstreamError::Connect {
                service: service.to_string(),
                detail: describe(e),
            }
            .into()
        } else if e.is_builder() {
            InternalError::Client {
                detail: describe(e),
            }
            .into()
        } else {
            UpstreamError::Protocol {
                service: service.to_string(),
                detail: describe(e),
            }
            .into()
        }
    }
}

fn too_large(service: &str, limit: usize) -> EngineError {
    UpstreamError::ResponseTooLarge {
        service: service.to_string(),
        limit,
    }
    .into()
}

/// Parses `url` the way the HTTP client will and checks that origin, path and query
/// are exactly the expected ones (and that `http::Uri` accepts it unchanged).
fn check_url(
    url: &str,
    pinned: &Pinned,
    path: &str,
    query: Option<&str>,
) -> Result<url::Url, &'static str> {
    let parsed = url::Url::parse(url).map_err(|_| "URL syntax")?;
    if parsed.origin() != pinned.origin {
        return Err("origin");
    }
    if !parsed.username().is_empty() || parsed.password().is_some() || parsed.fragment().is_some() {
        return Err("origin");
    }
    if parsed.path() != path {
        return Err("path");
    }
    if parsed.query() != query {
        return Err("query");
    }
    // reqwest hands hyper an `http::Uri` parsed from the URL string.
    let uri = http::Uri::try_from(parsed.as_str()).map_err(|_| "URL syntax")?;
    let expected_pq_len = path.len() + query.map_or(0, |q| q.len() + 1);
    if uri.path_and_query().map(|pq| pq.as_str().len()) != Some(expected_pq_len) {
        return Err("path");
    }
    Ok(parsed)
}

/// A message for a target the client would send differently.
fn explain_mismatch(what: &str, target: &str, url: &str, pinned: &Pinned) -> String {
    // Find the first character the URL parser changed, in the query or path part.
    let reparsed = url::Url::parse(url).ok();
    let sent_tail = reparsed.as_ref().map(|u| {
        u.as_str()
            .get(pinned.origin_str.len() + pinned.base.len()..)
            .unwrap_or("")
            .to_string()
    });
    if let Some(sent) = sent_tail {
        let first_diff = target
            .char_indices()
            .zip(sent.chars())
            .find(|((_, a), b)| a != b)
            .map(|((_, a), _)| a);
        if let Some(c) = first_diff {
            return format!(
                "the HTTP client would rewrite {c:?} in the {what}; percent-encode it as %{:02X}",
                u32::from(c)
            );
        }
    }
    format!("the HTTP client would rewrite the {what}")
}

/// Removes `name=value` pairs whose (percent-decoded) name is in `owned`. Returns the
/// kept query (`None` if nothing is left of a non-empty query) and the names removed.
fn strip_query_params(query: &str, owned: &[String]) -> (Option<String>, Vec<String>) {
    if owned.is_empty() {
        return (Some(query.to_string()), Vec::new());
    }
    let mut kept = Vec::new();
    let mut removed = Vec::new();
    for pair in query.split('&') {
        let raw_name = pair.split_once('=').map_or(pair, |(n, _)| n);
        let name = percent_decode(raw_name);
        if owned.iter().any(|o| o.as_bytes() == name.as_slice()) {
            let shown = String::from_utf8_lossy(&name).into_owned();
            if !removed.contains(&shown) {
                removed.push(shown);
            }
        } else {
            kept.push(pair);
        }
    }
    if removed.is_empty() {
        return (Some(query.to_string()), removed);
    }
    let q = kept.join("&");
    (if q.is_empty() { None } else { Some(q) }, removed)
}

fn percent_decode(s: &str) -> Vec<u8> {
    let b = s.as_bytes();
    let hex = |c: u8| char::from(c).to_digit(16);
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%'
            && i + 2 < b.len()
            && let (Some(h), Some(l)) = (hex(b[i + 1]), hex(b[i + 2]))
        {
            // h, l < 16: the value fits a byte.
            out.push(u8::try_from(h * 16 + l).unwrap_or(0));
            i += 3;
            continue;
        }
        out.push(if b[i] == b'+' { b' ' } else { b[i] });
        i += 1;
    }
    out
}

/// How the body is read: an event stream is also scrubbed across its events.
fn body_kind(resp: &reqwest::Response) -> BodyKind {
    BodyKind::from_content_type(
        resp.headers()
            .get(header::CONTENT_TYPE)
            .map(HeaderValue::as_bytes),
    )
}

/// Refuses a body the scrubber cannot read: any content coding other than
/// `identity`, any transfer coding other than `chunked` (or `identity`). An empty
/// `Content-Encoding` or `Transfer-Encoding` value, or an empty list element, is
/// refused too: "no coding" is said by leaving the header out, and a client or
/// intermediary may read an empty or odd value differently than we would.
fn check_codings(service: &str, headers: &HeaderMap) -> Result<(), EngineError> {
    for (name, allowed) in [
        (header::CONTENT_ENCODING, &["identity"][..]),
        (header::TRANSFER_ENCODING, &["chunked", "identity"][..]),
    ] {
        for v in headers.get_all(&name) {
            let s = String::from_utf8_lossy(v.as_bytes());
            let ok = s.split(',').all(|t| {
                let t = t.trim_matches([' ', '\t']);
                allowed.iter().any(|a| t.eq_ignore_ascii_case(a))
            });
            if !ok {
                return Err(UpstreamError::CompressedResponse {
                    service: service.to_string(),
                    header: if name == header::CONTENT_ENCODING {
                        "Content-Encoding"
                    } else {
                        "Transfer-Encoding"
                    },
                    encoding: crate::error::quote(&s),
                }
                .into());
            }
        }
    }
    Ok(())
}

/// Checks the response head and filters its headers.
fn response_head(
    service: &str,
    method: &Method,
    resp: &reqwest::Response,
    scrubber: &Scrubber,
    pinned: &Pinned,
    location_base: &url::Url,
) -> Result<(StatusCode, HeaderMap, Vec<String>), EngineError> {
    let status = resp.status();
    let bodiless = *method == Method::HEAD
        || status == StatusCode::NO_CONTENT
        || status == StatusCode::NOT_MODIFIED
        || resp.content_length() == Some(0);
    if !bodiless {
        check_codings(service, resp.headers())?;
    }
    let (headers, removed) = filter_response(resp.headers(), scrubber, |loc| {
        match location_base.join(loc) {
            Ok(u) if u.origin() == pinned.origin => LocationCheck::SameOrigin,
            _ => LocationCheck::Elsewhere,
        }
    });
    Ok((status, headers, removed))
}

/// A response whose head has arrived, as a [`StreamingResponse`]: the head
/// filtered and scrubbed, the body streamed through the scrubber.
fn streaming(
    service: &str,
    method: &Method,
    resp: reqwest::Response,
    a: Answering,
) -> Result<StreamingResponse, EngineError> {
    let limits = a.limits;
    let (status, headers, removed_resp) = response_head(
        service,
        method,
        &resp,
        &a.scrubber,
        &a.pinned,
        &a.location_base,
    )?;
    if resp
        .content_length()
        .is_some_and(|n| n > limits.max_response_body as u64)
    {
        return Err(too_large(service, limits.max_response_body));
    }
    let scrub = a.scrubber.stream_body(body_kind(&resp));
    let state = Some(Box::new(BodyReader {
        resp,
        scrub,
        total: 0,
        service: service.to_string(),
        limits,
    }));
    let stream = futures_util::stream::unfold(state, next_body_chunk);
    Ok(StreamingResponse {
        status,
        headers,
        removed_request_headers: a.removed,
        removed_response_headers: removed_resp,
        body: ScrubbedBody {
            inner: Box::pin(stream),
        },
    })
}

struct BodyReader {
    resp: reqwest::Response,
    scrub: StreamScrubber,
    total: usize,
    service: String,
    limits: Limits,
}

/// One step of the scrubbed body stream; the state is `None` once it has ended.
async fn next_body_chunk(
    state: Option<Box<BodyReader>>,
) -> Option<(Result<Bytes, EngineError>, Option<Box<BodyReader>>)> {
    let mut r = state?;
    loop {
        let idle = r.limits.stream_idle_timeout;
        match tokio::time::timeout(idle, r.resp.chunk()).await {
            Err(_) => {
                let e = UpstreamError::Timeout {
                    service: r.service,
                    after: idle,
                    phase: "stream idle",
                };
                return Some((Err(e.into()), None));
            }
            Ok(Err(e)) => {
                let e = if e.is_timeout() {
                    UpstreamError::Timeout {
                        service: r.service,
                        after: idle,
                        phase: "stream idle",
                    }
                } else {
                    UpstreamError::Protocol {
                        service: r.service,
                        detail: describe(&e),
                    }
                };
                return Some((Err(e.into()), None));
            }
            Ok(Ok(None)) => {
                let tail = r.scrub.finish();
                return if tail.is_empty() {
                    None
                } else {
                    Some((Ok(Bytes::from(tail)), None))
                };
            }
            Ok(Ok(Some(chunk))) => {
                r.total += chunk.len();
                if r.total > r.limits.max_response_body {
                    let e = too_large(&r.service, r.limits.max_response_body);
                    return Some((Err(e), None));
                }
                let out = r.scrub.push(&chunk);
                if !out.is_empty() {
                    return Some((Ok(Bytes::from(out)), Some(r)));
                }
            }
        }
    }
}

mod upgrade;
pub use upgrade::{Upgrade, WebSocketOffer, WebSocketOpen};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strip_params() {
        let owned = vec!["api_key".to_string()];
        assert_eq!(
            strip_query_params("a=1&api_key=x&b=2&api%5Fkey=y", &owned),
            (Some("a=1&b=2".to_string()), vec!["api_key".to_string()])
        );
        assert_eq!(
            strip_query_params("api_key=x", &owned),
            (None, vec!["api_key".to_string()])
        );
        assert_eq!(
            strip_query_params("a=1", &owned),
            (Some("a=1".to_string()), vec![])
        );
        assert_eq!(
            strip_query_params("", &owned),
            (Some(String::new()), vec![])
        );
    }

    #[test]
    fn decode() {
        assert_eq!(percent_decode("a%5Fb+c%zz%4"), b"a_b c%zz%4");
    }
}
