//! Building injectors from the configuration, and keeping them (with their cached
//! tokens) across requests.

use std::collections::HashMap;
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use airlock_config::{Auth, Service};
use aws_lc_rs::hmac;
use secrecy::{ExposeSecret, SecretSlice};

use crate::{
    Basic, Bearer, Clock, GcpServiceAccount, GitHubApp, HeaderKey, InjectError, Injector,
    NamedSecret, OAuth1, OAuth2ClientCredentials, QueryKey, SigV4, SystemClock, TokenClient,
};

/// What building an injector needs besides the auth and its secrets.
pub(crate) struct BuildContext<'a> {
    pub(crate) clock: Arc<dyn Clock>,
    /// `None` from [`crate::for_auth`]: token-minting types are refused there.
    pub(crate) http: Option<&'a TokenClient>,
    /// The service's URL (the GitHub API base).
    pub(crate) service_url: Option<&'a url::Url>,
}

/// Builds the injector `auth` describes from its already-fetched secrets.
///
/// The match is exhaustive on purpose: a new auth type (a row of
/// `airlock_config::AUTH_TABLE` and a variant of `Auth`) does not compile until it
/// has an injector here.
pub(crate) fn build(
    auth: &Auth,
    secrets: &mut HashMap<String, SecretSlice<u8>>,
    ctx: &BuildContext<'_>,
) -> Result<Box<dyn Injector>, InjectError> {
    let mut take = |name: &str| -> Result<NamedSecret, InjectError> {
        let value = secrets
            .remove(name)
            .ok_or_else(|| InjectError::MissingSecret {
                secret: name.to_string(),
            })?;
        Ok(NamedSecret::new(name, value))
    };
    let needs_cache = || InjectError::NeedsCache {
        auth: auth.type_name(),
    };
    Ok(match auth {
        Auth::Bearer { secret } => {
            let s = take(secret)?;
            Box::new(Bearer::new(s.name, s.value)?)
        }
        Auth::Basic { username, secret } => {
            let s = take(secret)?;
            Box::new(Basic::new(username.clone(), s.name, s.value)?)
        }
        Auth::Header {
            header_name,
            prefix,
            secret,
        } => {
            let s = take(secret)?;
            Box::new(HeaderKey::new(
                header_name,
                prefix.clone(),
                s.name,
                s.value,
            )?)
        }
        Auth::Query { param, secret } => {
            let s = take(secret)?;
            Box::new(QueryKey::new(param.clone(), s.name, s.value)?)
        }
        Auth::AwsSigV4 {
            region,
            aws_service,
            access_key_id,
            secret_access_key,
            session_token,
        } => {
            let akid = take(access_key_id)?;
            let sak = take(secret_access_key)?;
            let token = session_token.as_deref().map(&mut take).transpose()?;
            Box::new(SigV4::new(
                region.clone(),
                aws_service.clone(),
                akid,
                sak,
                token,
                ctx.clock.clone(),
            )?)
        }
        Auth::OAuth1 {
            consumer_key,
            consumer_secret,
            token,
            token_secret,
        } => {
            let ck = take(consumer_key)?;
            let cs = take(consumer_secret)?;
            let tok = match (token, token_secret) {
                (Some(t), Some(ts)) => Some((take(t)?, take(ts)?)),
                (None, None) => None,
                _ => {
                    return Err(InjectError::InvalidParameter {
                        auth: "oauth1",
                        reason: "token and token_secret must be set together".into(),
                    });
                }
            };
            Box::new(OAuth1::new(ck, cs, tok, ctx.clock.clone())?)
        }
        Auth::GitHubApp {
            app_id,
            installation_id,
            secret,
        } => {
            let (Some(http), Some(url)) = (ctx.http, ctx.service_url) else {
                return Err(needs_cache());
            };
            let pem = take(secret)?;
            Box::new(GitHubApp::new(
                url,
                app_id.clone(),
                *installation_id,
                pem,
                http.clone(),
                ctx.clock.clone(),
            )?)
        }
        Auth::GcpServiceAccount { secret, scopes } => {
            let Some(http) = ctx.http else {
                return Err(needs_cache());
            };
            let json = take(secret)?;
            Box::new(GcpServiceAccount::new(
                json,
                scopes,
                http.clone(),
                ctx.clock.clone(),
            )?)
        }
        Auth::OAuth2 {
            token_url,
            client_id,
            secret,
            scope,
            client_auth,
        } => {
            let Some(http) = ctx.http else {
                return Err(needs_cache());
            };
            let cs = take(secret)?;
            Box::new(OAuth2ClientCredentials::new(
                token_url.clone(),
                client_id.clone(),
                cs,
                scope.clone(),
                *client_auth,
                http.clone(),
                ctx.clock.clone(),
            )?)
        }
    })
}

/// Fetches every secret `auth` uses through `lookup`, or names the first missing one.
pub(crate) fn fetch_secrets(
    auth: &Auth,
    lookup: &mut dyn FnMut(&str) -> Option<SecretSlice<u8>>,
) -> Result<HashMap<String, SecretSlice<u8>>, InjectError> {
    let mut out = HashMap::new();
    for name in auth.secrets() {
        let v = lookup(name).ok_or_else(|| InjectError::MissingSecret {
            secret: name.to_string(),
        })?;
        out.insert(name.to_string(), v);
    }
    Ok(out)
}

/// The injectors of a running server, one per service, kept across requests so that
/// minted tokens (GitHub App, GCP, OAuth2) are reused until they are due.
///
/// [`Injectors::get`] is called per request with the service and a vault lookup. It
/// returns the kept injector while the service's auth, URL and secret values are
/// unchanged; when any of them changes (config reload, `airlock secret rotate`) it
/// builds a new one — with an empty token cache — and drops the old one (requests
/// already holding it finish with it). Secret values are compared through an HMAC
/// under a per-process random key, so no plain digest of a secret is kept.
///
/// Fetching and fingerprinting the secrets costs a vault decryption per call
/// (about 6 µs at the gateway, issue 16). A caller that knows when its secrets
/// change (the runtime: at a vault reload) uses [`Injectors::get_until_recheck`],
/// which returns an injector whose secrets were checked without checking them
/// again until [`Injectors::recheck`].
///
/// Cheap to share: wrap it in an `Arc` or keep it in the runtime.
pub struct Injectors {
    clock: Arc<dyn Clock>,
    http: TokenClient,
    fingerprint_key: hmac::Key,
    entries: Mutex<HashMap<String, Entry>>,
    /// Moved by [`Injectors::recheck`]: entries checked at an older value fetch
    /// and compare their secrets again.
    epoch: AtomicU64,
}

struct Entry {
    auth: Auth,
    url: url::Url,
    fingerprint: Vec<u8>,
    /// The `epoch` at which `fingerprint` was last compared with the secrets.
    checked: u64,
    injector: Arc<dyn Injector>,
}

impl Entry {
    /// Whether the kept injector was built for `service` as configured now.
    fn serves(&self, service: &Service) -> bool {
        self.auth == service.auth && self.url == service.url
    }
}

impl Default for Injectors {
    fn default() -> Self {
        Injectors::new()
    }
}

impl fmt::Debug for Injectors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let entries = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
        let mut names: Vec<&String> = entries.keys().collect();
        names.sort();
        f.debug_struct("Injectors")
            .field("services", &names)
            .field("http", &self.http)
            .finish_non_exhaustive()
    }
}

impl Injectors {
    /// An empty registry on the system clock, with the default token client
    /// (10 s connect, 30 s total, no proxy).
    pub fn new() -> Self {
        let mut key = [0u8; 32];
        // Straight from the OS (one getrandom call), not aws-lc's generator: the
        // first use of that one seeds it from CPU jitter, ~40 ms of CPU that a
        // server would otherwise pay at start-up for a key no request needs
        // (issue 16, cold start). It fails only if the OS has no randomness, in
        // which case nothing works; the zero key still keeps fingerprints
        // correct (just not keyed).
        let _ = getrandom::fill(&mut key);
        Injectors {
            clock: Arc::new(SystemClock),
            http: TokenClient::default(),
            fingerprint_key: hmac::Key::new(hmac::HMAC_SHA256, &key),
            entries: Mutex::new(HashMap::new()),
            epoch: AtomicU64::new(0),
        }
    }

    /// Uses `clock` for signing dates, JWTs and token expiry (tests).
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// Uses `http` to reach token endpoints (other timeouts).
    pub fn with_token_client(mut self, http: TokenClient) -> Self {
        self.http = http;
        self
    }

    /// The injector for `service`, fetching its secrets through `lookup` (typically the
    /// unlocked vault) and comparing them with the kept injector's at every call.
    /// Errors name the missing or unusable secret, never its value.
    pub fn get(
        &self,
        service: &Service,
        lookup: &mut dyn FnMut(&str) -> Option<SecretSlice<u8>>,
    ) -> Result<Arc<dyn Injector>, InjectError> {
        self.get_checked(service, lookup, false)
    }

    /// [`Injectors::get`], except that an injector whose secrets were checked
    /// since the last [`Injectors::recheck`] is returned without fetching them: for
    /// a caller that calls `recheck` whenever the secrets behind `lookup` may
    /// have changed.
    pub fn get_until_recheck(
        &self,
        service: &Service,
        lookup: &mut dyn FnMut(&str) -> Option<SecretSlice<u8>>,
    ) -> Result<Arc<dyn Injector>, InjectError> {
        self.get_checked(service, lookup, true)
    }

    fn get_checked(
        &self,
        service: &Service,
        lookup: &mut dyn FnMut(&str) -> Option<SecretSlice<u8>>,
        trust_checked: bool,
    ) -> Result<Arc<dyn Injector>, InjectError> {
        // Read before the secrets are fetched: a recheck during the fetch leaves
        // this entry marked as checked at the older epoch.
        let epoch = self.epoch.load(Ordering::Acquire);
        if trust_checked {
            let entries = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
            if let Some(e) = entries.get(&service.name)
                && e.checked == epoch
                && e.serves(service)
            {
                return Ok(e.injector.clone());
            }
        }
        let mut secrets = fetch_secrets(&service.auth, lookup)?;
        let fingerprint = self.fingerprint(&service.auth, &secrets);
        let mut entries = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(e) = entries.get_mut(&service.name)
            && e.serves(service)
            && aws_lc_rs::constant_time::verify_slices_are_equal(&e.fingerprint, &fingerprint)
                .is_ok()
        {
            e.checked = epoch;
            return Ok(e.injector.clone());
        }
        let ctx = BuildContext {
            clock: self.clock.clone(),
            http: Some(&self.http),
            service_url: Some(&service.url),
        };
        let injector: Arc<dyn Injector> = Arc::from(build(&service.auth, &mut secrets, &ctx)?);
        entries.insert(
            service.name.clone(),
            Entry {
                auth: service.auth.clone(),
                url: service.url.clone(),
                fingerprint,
                checked: epoch,
                injector: injector.clone(),
            },
        );
        Ok(injector)
    }

    /// Keeps only the services for which `keep(name)` is true (after a config reload:
    /// pass the configured names). Dropped injectors wipe their tokens.
    pub fn retain(&self, mut keep: impl FnMut(&str) -> bool) {
        let mut entries = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
        entries.retain(|name, _| keep(name));
    }

    /// The secrets may have changed (a vault reload): the next [`Injectors::get`]
    /// of each service fetches its secrets and compares them again.
    pub fn recheck(&self) {
        self.epoch.fetch_add(1, Ordering::AcqRel);
    }

    /// Forgets every injector and cached token (`airlock lock`, vault re-lock).
    pub fn clear(&self) {
        self.entries
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clear();
    }

    /// How many services have a kept injector.
    pub fn len(&self) -> usize {
        self.entries
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .len()
    }

    /// Whether no injector is kept.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn fingerprint(&self, auth: &Auth, secrets: &HashMap<String, SecretSlice<u8>>) -> Vec<u8> {
        let mut ctx = hmac::Context::with_key(&self.fingerprint_key);
        for name in auth.secrets() {
            let value = secrets.get(name).map_or(&[][..], |v| v.expose_secret());
            ctx.update(&(name.len() as u64).to_be_bytes());
            ctx.update(name.as_bytes());
            ctx.update(&(value.len() as u64).to_be_bytes());
            ctx.update(value);
        }
        ctx.sign().as_ref().to_vec()
    }
}
