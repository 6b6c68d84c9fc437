//! airlock's credential injectors: the only place plaintext credentials meet requests.
//!
//! An [`Injector`] turns a vault secret into a credential on one upstream request. The
//! engine (`airlock-engine`) builds an [`OutgoingRequest`] — method, pinned origin,
//! normalized path and query, filtered agent headers, body — hands it to the
//! injector, then checks that the request still points at the service's origin before
//! sending it.
//!
//! Every auth type of `airlock.toml` has an injector here: [`Bearer`], [`Basic`],
//! [`HeaderKey`], [`QueryKey`], [`SigV4`], [`OAuth1`], [`GitHubApp`],
//! [`GcpServiceAccount`] and [`OAuth2ClientCredentials`]. A running server builds them
//! through [`Injectors`], which keeps one per service so minted tokens survive across
//! requests; [`for_auth`] builds a one-off injector for the types that mint nothing.
//! `docs/injectors.md` is the reference.
//!
//! The trait is shaped for all of them:
//!
//! * **signers** (AWS SigV4, OAuth 1.0a) need the method, the full URL, the headers and
//!   the body — all readable on [`OutgoingRequest`];
//! * **token minters** (GitHub App, GCP service account, OAuth2 client credentials)
//!   are asynchronous — [`Injector::inject`] returns a boxed future;
//! * **query auth** appends a parameter — [`OutgoingRequest::append_query_pair`];
//! * every injector declares the header names and query parameters it **owns**
//!   ([`Injector::owned_headers`], [`Injector::owned_query_params`]) so the engine
//!   strips agent-supplied ones, and every secret value it **may emit**
//!   ([`Injector::visit_emitted_secrets`]), including minted tokens, so the engine can
//!   scrub them from responses.
//!
//! Secret hygiene: values arrive as [`secrecy::SecretSlice<u8>`]; no type here
//! implements `Display` or `Serialize`, and `Debug` shows secret *names* only.
//! Temporary buffers that hold a credential are [`zeroize::Zeroizing`]; injected
//! header values are marked sensitive (`HeaderValue::set_sensitive(true)`), which
//! keeps them out of HTTP/2 HPACK tables and out of `Debug` output.
//!
//! ```
//! use airlock_inject::{Bearer, Injector, OutgoingRequest};
//! use secrecy::{ExposeSecret, SecretSlice};
//!
//! # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
//! let bearer = Bearer::new("stripe", SecretSlice::from(b"sk_test_123".to_vec())).unwrap();
//! let mut req = OutgoingRequest::new(
//!     http::Method::GET,
//!     "https://api.stripe.com",
//!     "/v1/charges",
//!     Some("limit=1".to_string()),
//!     http::HeaderMap::new(),
//!     bytes::Bytes::new(),
//! );
//! bearer.inject(&mut req).await.unwrap();
//! let auth = &req.headers[http::header::AUTHORIZATION];
//! assert!(auth.is_sensitive());
//! assert_eq!(format!("{auth:?}"), "Sensitive");
//! # });
//! ```
#![forbid(unsafe_code)]
#![deny(missing_docs)]
#![cfg_attr(test, allow(clippy::unwrap_used))]

mod basic;
mod bearer;
mod clock;
mod gcp;
mod github_app;
mod jwt;
mod oauth1;
mod oauth2;
mod registry;
mod request;
mod sigv4;
mod token;

pub use basic::{Basic, HeaderKey, QueryKey};
pub use bearer::Bearer;
pub use clock::{Clock, ManualClock, SystemClock};
pub use gcp::GcpServiceAccount;
pub use github_app::GitHubApp;
pub use oauth1::OAuth1;
pub use oauth2::OAuth2ClientCredentials;
pub use registry::Injectors;
pub use request::OutgoingRequest;
pub use sigv4::{SigV4, SigV4Options};
pub use token::TokenClient;

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use http::HeaderName;
use secrecy::{ExposeSecret, SecretSlice};

/// A boxed, sendable future: what [`Injector::inject`] returns, so injectors can be
/// used as `dyn Injector` and still mint tokens asynchronously.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Puts a credential on an outgoing request.
///
/// Implementations must be cheap to call concurrently (`&self`): caches of minted
/// tokens live behind interior mutability.
pub trait Injector: Send + Sync {
    /// The auth type's name as written in `airlock.toml` (`"bearer"`, …).
    fn kind(&self) -> &'static str;

    /// Header names this injector sets. The engine removes agent-supplied headers
    /// with these names before calling [`Injector::inject`], so an agent can neither
    /// override the credential nor smuggle a second one next to it.
    fn owned_headers(&self) -> &[HeaderName] {
        &[]
    }

    /// Query parameter names this injector sets (query auth). The engine removes
    /// agent-supplied parameters with these names (compared after percent-decoding)
    /// before calling [`Injector::inject`].
    fn owned_query_params(&self) -> &[String] {
        &[]
    }

    /// Calls `visit(secret_name, value)` for every secret value this injector may put
    /// on a request *now*: the vault secret itself and any token minted from it. The
    /// engine scrubs each from the response (`[REDACTED:<secret_name>]`). Call it
    /// after [`Injector::inject`] so freshly minted tokens are included.
    fn visit_emitted_secrets(&self, visit: &mut dyn FnMut(&str, &[u8]));

    /// Adds the credential to `req`. Must not change the request's origin or path
    /// (the API does not allow it); the engine re-checks the final URL regardless.
    fn inject<'a>(&'a self, req: &'a mut OutgoingRequest)
    -> BoxFuture<'a, Result<(), InjectError>>;
}

/// A vault secret's name and value, as injectors receive them. `Debug` shows the name
/// only.
pub struct NamedSecret {
    /// The vault secret's name (used in errors and scrubber markers).
    pub name: String,
    /// The value.
    pub value: SecretSlice<u8>,
}

impl NamedSecret {
    /// Pairs a name with its value.
    pub fn new(name: impl Into<String>, value: SecretSlice<u8>) -> Self {
        NamedSecret {
            name: name.into(),
            value,
        }
    }

    /// Calls `visit(name, value)`: what an injector that sends the value emits.
    pub(crate) fn visit(&self, visit: &mut dyn FnMut(&str, &[u8])) {
        visit(&self.name, self.value.expose_secret());
    }

    /// `prefix` then the value, as a sensitive header value for auth type `auth`.
    pub(crate) fn header_value(
        &self,
        auth: &'static str,
        prefix: &[u8],
    ) -> Result<http::HeaderValue, InjectError> {
        self.sensitive_header(auth, &[prefix, self.value.expose_secret()])
    }

    /// `parts` joined, as a sensitive header value made from this secret for auth type
    /// `auth`: an error naming the secret if they make no valid header value.
    pub(crate) fn sensitive_header(
        &self,
        auth: &'static str,
        parts: &[&[u8]],
    ) -> Result<http::HeaderValue, InjectError> {
        request::sensitive_value(parts).ok_or_else(|| InjectError::InvalidSecret {
            secret: self.name.clone(),
            auth,
            reason: "the value is not a valid header value",
        })
    }
}

impl fmt::Debug for NamedSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "NamedSecret({:?})", self.name)
    }
}

/// Why a credential could not be prepared or injected. Messages name the secret and
/// the problem, never the value.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum InjectError {
    /// The secret's value cannot be used for this auth type.
    #[error(
        "secret \"{secret}\" cannot be used for {auth} auth: {reason}; run `airlock secret set {secret}` with a valid value"
    )]
    InvalidSecret {
        /// The vault secret's name.
        secret: String,
        /// The auth type.
        auth: &'static str,
        /// What is wrong with the value (never the value itself).
        reason: &'static str,
    },
    /// The secret the configuration names is not in the vault.
    #[error("secret \"{secret}\" is not in the vault; run `airlock secret set {secret}`")]
    MissingSecret {
        /// The vault secret's name.
        secret: String,
    },
    /// The configuration names an auth type this build cannot inject.
    #[error("auth type \"{auth}\" is not supported by this airlock")]
    Unsupported {
        /// The auth type's name.
        auth: String,
    },
    /// A token endpoint (OAuth2, GitHub App, GCP) failed or answered nonsense.
    #[error("could not obtain a token for secret \"{secret}\": {detail}")]
    TokenEndpoint {
        /// The vault secret's name.
        secret: String,
        /// What went wrong (never a secret or a token).
        detail: String,
    },
    /// A non-secret parameter (header name, region, URL…) cannot be used. The config
    /// parser refuses these already; this is for injectors built by hand.
    #[error("{auth} auth: {reason}; fix the service's auth in airlock.toml")]
    InvalidParameter {
        /// The auth type.
        auth: &'static str,
        /// What is wrong.
        reason: String,
    },
    /// This auth type mints tokens and must be built through [`Injectors`], which
    /// caches them across requests.
    #[error(
        "auth type \"{auth}\" mints tokens and needs a token cache: build it with airlock_inject::Injectors"
    )]
    NeedsCache {
        /// The auth type.
        auth: &'static str,
    },
    /// The request, as the agent made it, cannot be signed (a header that is not
    /// ASCII for SigV4, OAuth parameters in a form body…).
    #[error("this request cannot be signed for {auth} auth: {reason}")]
    Request {
        /// The auth type.
        auth: &'static str,
        /// What in the request is the problem (never a header value).
        reason: String,
    },
    /// The HTTP client for token endpoints could not be built.
    #[error("cannot build the HTTP client for token endpoints: {detail}")]
    HttpClient {
        /// Why.
        detail: String,
    },
}

impl InjectError {
    /// Whether the failure lies with a remote party (a token endpoint) rather than
    /// with airlock's own configuration: the engine reports the former as a 502.
    pub fn is_upstream(&self) -> bool {
        matches!(self, InjectError::TokenEndpoint { .. })
    }

    /// Whether the agent's request is the problem ([`InjectError::Request`]): a 400,
    /// not a 500.
    pub fn is_agent(&self) -> bool {
        matches!(self, InjectError::Request { .. })
    }
}

/// Checks that a secret sent as text is non-empty ASCII from `lowest` (`b'!'`:
/// visible characters only, `b' '`: spaces too) to `~`; `message` says what it must
/// be otherwise. Errors name the secret `secret` and the auth type `auth`.
pub(crate) fn check_ascii(
    secret: &str,
    auth: &'static str,
    v: &[u8],
    lowest: u8,
    message: &'static str,
) -> Result<(), InjectError> {
    let invalid = |reason| InjectError::InvalidSecret {
        secret: secret.to_string(),
        auth,
        reason,
    };
    if v.is_empty() {
        return Err(invalid("the value is empty"));
    }
    if !v.iter().all(|b| (lowest..=0x7e).contains(b)) {
        return Err(invalid(message));
    }
    Ok(())
}

/// `n` random bytes as lower-case hex (OAuth 1.0a nonces).
pub(crate) fn random_hex(n: usize) -> Result<String, InjectError> {
    let mut bytes = vec![0u8; n];
    aws_lc_rs::rand::fill(&mut bytes).map_err(|_| InjectError::Request {
        auth: "oauth1",
        reason: "the system's random number generator failed".into(),
    })?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

/// Builds the injector a service's `auth` asks for, fetching each secret through
/// `lookup` (typically the unlocked vault), on the system clock.
///
/// For the types that mint tokens (`github-app`, `gcp-service-account`, `oauth2`)
/// this returns [`InjectError::NeedsCache`]: a token minted per request would hammer
/// the token endpoint. Use [`Injectors::get`] — which also works for every other type
/// and is what a running server should call.
///
/// ```
/// use airlock_config::Auth;
/// use secrecy::{ExposeSecret, SecretSlice};
///
/// let auth = Auth::Bearer { secret: "stripe".into() };
/// let inj = airlock_inject::for_auth(&auth, &mut |name| {
///     (name == "stripe").then(|| SecretSlice::from(b"sk_test_1".to_vec()))
/// })
/// .unwrap();
/// assert_eq!(inj.kind(), "bearer");
/// ```
pub fn for_auth(
    auth: &airlock_config::Auth,
    lookup: &mut dyn FnMut(&str) -> Option<SecretSlice<u8>>,
) -> Result<Box<dyn Injector>, InjectError> {
    let mut secrets = registry::fetch_secrets(auth, lookup)?;
    let ctx = registry::BuildContext {
        clock: Arc::new(SystemClock),
        http: None,
        service_url: None,
    };
    registry::build(auth, &mut secrets, &ctx)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_secret_is_named() {
        let auth = airlock_config::Auth::Bearer {
            secret: "gh".into(),
        };
        let err = for_auth(&auth, &mut |_| None).err().unwrap();
        assert!(matches!(err, InjectError::MissingSecret { .. }));
        assert!(err.to_string().contains("\"gh\""));
        assert!(!err.is_upstream());
    }
}
