//! What the token-minting injectors share: the HTTP client for token endpoints, the
//! single-flight token cache, and error reports that never carry a secret.

use std::fmt;
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock, PoisonError, RwLock};
use std::time::{Duration, SystemTime};

use http::header::{ACCEPT, AUTHORIZATION, CONTENT_TYPE};
use http::{HeaderMap, HeaderName, HeaderValue, StatusCode};
use zeroize::Zeroizing;

use crate::request::sensitive_value;
use crate::{BoxFuture, Clock, InjectError, Injector, NamedSecret, OutgoingRequest};

/// Largest token-endpoint response read (a token response is a few KiB at most).
const MAX_RESPONSE: usize = 64 * 1024;

/// Lifetime assumed when a token endpoint does not say (`expires_in` is optional in
/// OAuth 2.0): short, so an expired token is not reused for long.
const DEFAULT_LIFETIME: Duration = Duration::from_secs(300);

/// The HTTP client for token endpoints: rustls, **no system proxy** (`HTTPS_PROXY` must
/// not see client secrets or assertions), no redirects, connect and total timeouts.
/// Cheap to clone; the underlying client is built on first use.
#[derive(Clone)]
pub struct TokenClient {
    inner: Arc<ClientInner>,
}

struct ClientInner {
    connect_timeout: Duration,
    timeout: Duration,
    client: OnceLock<Result<reqwest::Client, String>>,
}

impl Default for TokenClient {
    fn default() -> Self {
        TokenClient::new(Duration::from_secs(10), Duration::from_secs(30))
    }
}

impl fmt::Debug for TokenClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenClient")
            .field("connect_timeout", &self.inner.connect_timeout)
            .field("timeout", &self.inner.timeout)
            .finish_non_exhaustive()
    }
}

impl TokenClient {
    /// A client with these timeouts (connect; whole request including the body).
    pub fn new(connect_timeout: Duration, timeout: Duration) -> Self {
        TokenClient {
            inner: Arc::new(ClientInner {
                connect_timeout,
                timeout,
                client: OnceLock::new(),
            }),
        }
    }

    fn client(&self) -> Result<&reqwest::Client, InjectError> {
        let built = self.inner.client.get_or_init(|| {
            reqwest::Client::builder()
                .no_proxy()
                .redirect(reqwest::redirect::Policy::none())
                .referer(false)
                .connect_timeout(self.inner.connect_timeout)
                .timeout(self.inner.timeout)
                .user_agent("airlock")
                .build()
                .map_err(|e| describe_reqwest(&e))
        });
        built.as_ref().map_err(|detail| InjectError::HttpClient {
            detail: detail.clone(),
        })
    }

    /// POSTs a token request to `url` and makes a token of a successful (2xx) answer
    /// with `parse`. `secret` names the vault secret the token is minted from in
    /// errors, which name the endpoint by origin and path (never the query). An error
    /// status is described by [`describe_failure`], which never quotes `redact` (the
    /// credentials that were sent).
    pub(crate) async fn mint<E: fmt::Display>(
        &self,
        url: &url::Url,
        headers: HeaderMap,
        body: Zeroizing<Vec<u8>>,
        secret: &str,
        redact: &[&[u8]],
        parse: impl FnOnce(StatusCode, &[u8]) -> Result<Minted, E>,
    ) -> Result<Minted, InjectError> {
        let client = self.client()?;
        let fail = |detail: String| endpoint_error(secret, url, detail);
        // reqwest takes the body by value; its copy cannot be wiped (documented).
        let mut resp = client
            .post(url.clone())
            .headers(headers)
            .body(body.to_vec())
            .send()
            .await
            .map_err(|e| fail(describe_reqwest(&e)))?;
        let status = resp.status();
        let mut out = Zeroizing::new(Vec::new());
        while let Some(chunk) = resp.chunk().await.map_err(|e| fail(describe_reqwest(&e)))? {
            if out.len() + chunk.len() > MAX_RESPONSE {
                return Err(fail(format!(
                    "HTTP {}: the response is larger than {} KiB",
                    status.as_u16(),
                    MAX_RESPONSE / 1024
                )));
            }
            out.extend_from_slice(&chunk);
        }
        if !status.is_success() {
            return Err(fail(describe_failure(status, &out, redact)));
        }
        parse(status, &out).map_err(|e| fail(e.to_string()))
    }
}

/// The headers of a form-encoded token request that wants JSON back.
pub(crate) fn form_headers() -> HeaderMap {
    let mut headers = HeaderMap::new();
    headers.insert(
        CONTENT_TYPE,
        HeaderValue::from_static("application/x-www-form-urlencoded"),
    );
    headers.insert(ACCEPT, HeaderValue::from_static("application/json"));
    headers
}

/// A token endpoint's answer that cannot be used: `POST <endpoint>: <detail>`,
/// naming the vault secret the token was to be minted from.
pub(crate) fn endpoint_error(
    secret: &str,
    url: &url::Url,
    detail: impl fmt::Display,
) -> InjectError {
    InjectError::TokenEndpoint {
        secret: secret.to_string(),
        detail: format!("POST {}: {detail}", endpoint_name(url)),
    }
}

/// `scheme://host[:port]/path` of an endpoint: what errors may show.
pub(crate) fn endpoint_name(url: &url::Url) -> String {
    format!("{}{}", url.origin().ascii_serialization(), url.path())
}

/// A reqwest error by its kind and causes, never its URL (reqwest's `Display` carries it).
fn describe_reqwest(e: &reqwest::Error) -> String {
    let kind = if e.is_timeout() {
        "timed out"
    } else if e.is_connect() {
        "connection failed"
    } else if e.is_builder() {
        "invalid request"
    } else if e.is_body() || e.is_decode() {
        "the response body could not be read"
    } else if e.is_redirect() {
        "redirect refused"
    } else {
        "request failed"
    };
    let mut causes = Vec::new();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        let text = s.to_string();
        if !text.contains("://") && !causes.contains(&text) {
            causes.push(text);
        }
        source = s.source();
    }
    if causes.is_empty() {
        kind.to_string()
    } else {
        format!("{kind} ({})", causes.join(": "))
    }
}

/// A minted token and when to replace it. The value is wiped when the last user
/// drops it.
pub(crate) struct Minted {
    pub(crate) value: Zeroizing<String>,
    pub(crate) refresh_at: SystemTime,
}

impl Minted {
    /// A token obtained at `now` that expires at `expires_at`: refreshed a little
    /// before (a quarter of its lifetime, at most a minute), so a request never
    /// carries a token that expires on the way.
    pub(crate) fn new(value: Zeroizing<String>, now: SystemTime, expires_at: SystemTime) -> Self {
        let lifetime = expires_at.duration_since(now).unwrap_or(Duration::ZERO);
        let margin = (lifetime / 4).min(Duration::from_secs(60));
        Minted {
            value,
            refresh_at: expires_at.checked_sub(margin).unwrap_or(now),
        }
    }
}

/// One injector's token cache, refreshed single-flight.
///
/// The fast path reads the current token under a short `RwLock`. When it is missing
/// or due, callers queue on one async mutex: the first mints; those that were waiting
/// take its token — or its error, so a failing endpoint sees one request per burst,
/// not one per caller. A caller that arrives after a failed attempt tries again.
pub(crate) struct TokenCache {
    clock: Arc<dyn Clock>,
    /// Attempts finished (successfully or not), counted under `fetch`.
    completed: AtomicU64,
    /// Held while minting; remembers the last failure and the attempt it ended.
    fetch: tokio::sync::Mutex<Option<(u64, InjectError)>>,
    tokens: RwLock<Tokens>,
}

#[derive(Default)]
struct Tokens {
    current: Option<Arc<Minted>>,
    /// The token before the current one: a request that injected it may still be
    /// reading its response, so it stays scrubbed until the next refresh.
    previous: Option<Arc<Minted>>,
}

impl TokenCache {
    pub(crate) fn new(clock: Arc<dyn Clock>) -> Self {
        TokenCache {
            clock,
            completed: AtomicU64::new(0),
            fetch: tokio::sync::Mutex::new(None),
            tokens: RwLock::new(Tokens::default()),
        }
    }

    pub(crate) fn clock(&self) -> &Arc<dyn Clock> {
        &self.clock
    }

    fn fresh(&self) -> Option<Arc<Minted>> {
        let now = self.clock.now();
        let tokens = self.tokens.read().unwrap_or_else(PoisonError::into_inner);
        tokens
            .current
            .as_ref()
            .filter(|t| now < t.refresh_at)
            .cloned()
    }

    /// The current token, minting one with `mint` if there is none or it is due.
    pub(crate) async fn get<F, Fut>(&self, mint: F) -> Result<Arc<Minted>, InjectError>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<Minted, InjectError>>,
    {
        if let Some(t) = self.fresh() {
            return Ok(t);
        }
        let seen = self.completed.load(Ordering::SeqCst);
        let mut last_failure = self.fetch.lock().await;
        if let Some(t) = self.fresh() {
            return Ok(t);
        }
        if let Some((attempt, err)) = &*last_failure
            && *attempt > seen
        {
            // An attempt we were waiting on failed: share its outcome.
            return Err(err.clone());
        }
        let result = mint().await;
        let attempt = self.completed.fetch_add(1, Ordering::SeqCst) + 1;
        match result {
            Ok(minted) => {
                let minted = Arc::new(minted);
                let mut tokens = self.tokens.write().unwrap_or_else(PoisonError::into_inner);
                tokens.previous = tokens.current.replace(minted.clone());
                *last_failure = None;
                Ok(minted)
            }
            Err(e) => {
                *last_failure = Some((attempt, e.clone()));
                Err(e)
            }
        }
    }

    /// Calls `visit(name, token)` for the current and the previous token.
    pub(crate) fn visit(&self, name: &str, visit: &mut dyn FnMut(&str, &[u8])) {
        let tokens = self.tokens.read().unwrap_or_else(PoisonError::into_inner);
        for t in [&tokens.current, &tokens.previous].into_iter().flatten() {
            visit(name, t.value.as_bytes());
        }
    }
}

/// What every minting injector holds: the vault secret tokens are minted from, the
/// token endpoint, the client that reaches it and the cache of the tokens minted.
pub(crate) struct Minter {
    /// The vault secret tokens are minted from.
    pub(crate) source: NamedSecret,
    /// The token endpoint.
    pub(crate) url: url::Url,
    http: TokenClient,
    cache: TokenCache,
}

impl Minter {
    /// Mints from `source` at `url` through `http`, caching on `clock`.
    pub(crate) fn new(
        source: NamedSecret,
        url: url::Url,
        http: TokenClient,
        clock: Arc<dyn Clock>,
    ) -> Self {
        Minter {
            source,
            url,
            http,
            cache: TokenCache::new(clock),
        }
    }

    /// The clock tokens are minted and cached by.
    pub(crate) fn clock(&self) -> &Arc<dyn Clock> {
        self.cache.clock()
    }

    /// POSTs a token request to the endpoint ([`TokenClient::mint`]); errors name
    /// the source secret, answers never quote `redact`.
    pub(crate) async fn post<E: fmt::Display>(
        &self,
        headers: HeaderMap,
        body: Zeroizing<Vec<u8>>,
        redact: &[&[u8]],
        parse: impl FnOnce(StatusCode, &[u8]) -> Result<Minted, E>,
    ) -> Result<Minted, InjectError> {
        self.http
            .mint(&self.url, headers, body, &self.source.name, redact, parse)
            .await
    }
}

/// An injector that mints bearer tokens with its [`Minter`] and caches them: it owns
/// `Authorization`, emits the source secret and the cached tokens, and injects
/// `Authorization: Bearer <token>`, minting one when the cache has none fresh.
pub(crate) trait MintsBearer: Send + Sync {
    /// The auth type's name as written in `airlock.toml`.
    const AUTH: &'static str;

    /// The source secret, the endpoint and the token cache.
    fn minter(&self) -> &Minter;

    /// Gets a new token from the endpoint; `now` is when it is asked for.
    fn mint(&self, now: SystemTime) -> impl Future<Output = Result<Minted, InjectError>> + Send;
}

impl<T: MintsBearer> Injector for T {
    fn kind(&self) -> &'static str {
        T::AUTH
    }

    fn owned_headers(&self) -> &[HeaderName] {
        const OWNED: &[HeaderName] = &[AUTHORIZATION];
        OWNED
    }

    fn visit_emitted_secrets(&self, visit: &mut dyn FnMut(&str, &[u8])) {
        let m = self.minter();
        m.source.visit(visit);
        m.cache.visit(&m.source.name, visit);
    }

    fn inject<'a>(
        &'a self,
        req: &'a mut OutgoingRequest,
    ) -> BoxFuture<'a, Result<(), InjectError>> {
        Box::pin(async move {
            let m = self.minter();
            let token = m.cache.get(|| self.mint(m.clock().now())).await?;
            set_bearer(&mut req.headers, &m.source.name, &token.value)
        })
    }
}

/// Puts a minted access token on the request as `Authorization: Bearer …`
/// (sensitive); `secret` names the vault secret it was minted from, for the error.
pub(crate) fn set_bearer(
    headers: &mut HeaderMap,
    secret: &str,
    token: &str,
) -> Result<(), InjectError> {
    let value = sensitive_value(&[b"Bearer ", token.as_bytes()]).ok_or_else(|| {
        InjectError::TokenEndpoint {
            secret: secret.to_string(),
            detail: "the token is not a valid header value".into(),
        }
    })?;
    headers.insert(http::header::AUTHORIZATION, value);
    Ok(())
}

/// Why a token endpoint's successful answer cannot be used. The injectors put it
/// in [`InjectError::TokenEndpoint`] after the endpoint's name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum TokenResponseError {
    /// The token is empty.
    #[error("the token in the response is empty")]
    Empty,
    /// The token has spaces, control or non-ASCII characters, or is over 8 KiB.
    #[error("the token in the response is not a printable ASCII string")]
    NotPrintable,
    /// The body is not an OAuth 2.0 token response.
    #[error("the response is not a JSON object with an `access_token` string")]
    NotTokenResponse,
    /// A `token_type` other than Bearer.
    #[error("token_type \"{token_type}\" is not supported (only Bearer)")]
    TokenType {
        /// The type, sanitized ([`sanitize_text`]; empty if it looked like a secret).
        token_type: String,
    },
}

/// Checks a minted token can travel in a header: printable ASCII, no spaces, ≤ 8 KiB.
pub(crate) fn check_token(token: &str) -> Result<(), TokenResponseError> {
    if token.is_empty() {
        return Err(TokenResponseError::Empty);
    }
    if token.len() > 8192 || !token.bytes().all(|b| (0x21..=0x7e).contains(&b)) {
        return Err(TokenResponseError::NotPrintable);
    }
    Ok(())
}

/// An OAuth 2.0 token response (RFC 6749 §5.1).
#[derive(serde::Deserialize)]
struct TokenResponse {
    access_token: Zeroizing<String>,
    #[serde(default)]
    token_type: Option<String>,
    #[serde(default)]
    expires_in: Option<serde_json::Value>,
}

/// The token of a successful OAuth 2.0 token response received at `now`, valid for
/// its `expires_in` (5 minutes when the provider does not say, a day at most).
pub(crate) fn oauth_minted(body: &[u8], now: SystemTime) -> Result<Minted, TokenResponseError> {
    let (access, lifetime) = parse_oauth_token(body)?;
    let lifetime = lifetime
        .unwrap_or(DEFAULT_LIFETIME)
        .min(Duration::from_secs(86_400));
    Ok(Minted::new(access, now, now + lifetime))
}

/// Parses a successful OAuth 2.0 token response: the token and its lifetime.
pub(crate) fn parse_oauth_token(
    body: &[u8],
) -> Result<(Zeroizing<String>, Option<Duration>), TokenResponseError> {
    let r: TokenResponse =
        serde_json::from_slice(body).map_err(|_| TokenResponseError::NotTokenResponse)?;
    if let Some(tt) = &r.token_type
        && !tt.eq_ignore_ascii_case("bearer")
    {
        return Err(TokenResponseError::TokenType {
            token_type: sanitize_text(tt, &[]).unwrap_or_default(),
        });
    }
    check_token(&r.access_token)?;
    let lifetime = match &r.expires_in {
        None | Some(serde_json::Value::Null) => None,
        Some(serde_json::Value::Number(n)) => n.as_u64().map(Duration::from_secs),
        Some(serde_json::Value::String(s)) => s.trim().parse().ok().map(Duration::from_secs),
        Some(_) => None,
    };
    Ok((r.access_token, lifetime))
}

/// Describes a failed token response: the status and, when the body is a JSON
/// error object, its `error` / `error_description` / `message` — sanitized, cut short,
/// and dropped entirely if it quotes any of `secrets` or anything token-shaped.
pub(crate) fn describe_failure(status: StatusCode, body: &[u8], secrets: &[&[u8]]) -> String {
    let mut out = format!("HTTP {}", status.as_u16());
    if let Ok(serde_json::Value::Object(map)) = serde_json::from_slice::<serde_json::Value>(body) {
        let field = |k: &str| {
            map.get(k)
                .and_then(|v| v.as_str())
                .and_then(|s| sanitize_text(s, secrets))
        };
        let parts: Vec<String> = ["error", "error_description", "message"]
            .iter()
            .filter_map(|k| field(k))
            .collect();
        if !parts.is_empty() {
            out.push_str(": ");
            out.push_str(&parts.join(": "));
        }
    }
    match status.as_u16() {
        401 | 403 => out.push_str("; check the credentials in the vault and the auth settings"),
        404 => out.push_str("; check the token endpoint URL (or the GitHub installation id)"),
        _ => {}
    }
    out
}

/// Text from a remote party made safe for an error message: `None` if it contains a
/// secret, or a run of 24+ non-space characters (a token, a key, base64); otherwise
/// control characters turned into spaces and cut to 200 characters.
pub(crate) fn sanitize_text(text: &str, secrets: &[&[u8]]) -> Option<String> {
    let t = text.as_bytes();
    for s in secrets {
        if s.len() >= 4 && t.windows(s.len()).any(|w| w == *s) {
            return None;
        }
    }
    if text.split_whitespace().any(|w| w.chars().count() >= 24) {
        return None;
    }
    let clean: String = text
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .take(200)
        .collect();
    let clean = clean.trim().to_string();
    (!clean.is_empty()).then_some(clean)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failures_never_quote_secrets() {
        let body = br#"{"error":"invalid_client","error_description":"bad secret s3cr3t-value"}"#;
        let d = describe_failure(StatusCode::UNAUTHORIZED, body, &[b"s3cr3t-value"]);
        assert_eq!(
            d,
            "HTTP 401: invalid_client; check the credentials in the vault and the auth settings"
        );
        let body = br#"{"message":"token ghs_abcdefghijklmnopqrstuvwxyz0123 expired"}"#;
        let d = describe_failure(StatusCode::BAD_REQUEST, body, &[]);
        assert_eq!(d, "HTTP 400");
        let d = describe_failure(StatusCode::BAD_GATEWAY, b"<html>secret</html>", &[]);
        assert_eq!(d, "HTTP 502");
        let body =
            br#"{"error":"invalid_scope","error_description":"Scope \"x\" is not\nallowed"}"#;
        let d = describe_failure(StatusCode::BAD_REQUEST, body, &[]);
        assert_eq!(d, "HTTP 400: invalid_scope: Scope \"x\" is not allowed");
    }

    #[test]
    fn token_responses() {
        let (t, l) =
            parse_oauth_token(br#"{"access_token":"abc","token_type":"bearer","expires_in":"60"}"#)
                .unwrap();
        assert_eq!((t.as_str(), l), ("abc", Some(Duration::from_secs(60))));
        assert!(parse_oauth_token(br#"{"access_token":"abc","token_type":"mac"}"#).is_err());
        assert!(parse_oauth_token(br#"{"access_token":"a b"}"#).is_err());
        let err = parse_oauth_token(br#"{"token":"zzz"}"#).err().unwrap();
        assert_eq!(err, TokenResponseError::NotTokenResponse);
        assert!(!err.to_string().contains("zzz"));
    }

    #[test]
    fn refresh_margin() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1000);
        let m = Minted::new(
            Zeroizing::new("t".into()),
            now,
            now + Duration::from_secs(3600),
        );
        assert_eq!(m.refresh_at, now + Duration::from_secs(3540));
        let m = Minted::new(
            Zeroizing::new("t".into()),
            now,
            now + Duration::from_secs(40),
        );
        assert_eq!(m.refresh_at, now + Duration::from_secs(30));
    }
}
