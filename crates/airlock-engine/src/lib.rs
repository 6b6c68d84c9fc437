//! airlock's upstream engine: builds the request, pins it to the service's origin,
//! sends it, scrubs the response.
//!
//! The engine is what stands between an allowed request and the network. It keeps
//! DESIGN.md §7 invariants 1–4:
//!
//! 1. **Origin pinning.** The URL is the service's configured origin (scheme, host,
//!    port) + its base path + the normalized [`airlock_policy::Target`], joined by
//!    string concatenation. A `Target` cannot carry a scheme or authority, and the
//!    final URL is re-parsed after the credential is injected and compared with the
//!    service's origin, the checked path and the query, before anything is sent.
//!    Redirects are never followed (not even same-origin ones: the new path was never
//!    checked by the policy). No proxy is ever used, whatever `HTTPS_PROXY` says.
//! 2. **Header control.** The agent cannot set credential headers, `Host`,
//!    hop-by-hop headers, framing headers, forwarding headers or method overrides
//!    (see [`headers`] for the table and what is dropped vs refused).
//! 3. **What is checked is what is sent.** The target must be exactly what
//!    [`airlock_policy::normalize`] produces; if the HTTP client would re-encode any
//!    character of it, the request is refused with a hint instead of sent altered.
//! 4. **Scrubbing.** Every response header and body byte goes through a
//!    [`scrub::Scrubber`] that knows every form of every secret (the caller's plus
//!    whatever the injector emitted, minted tokens included).
//!
//! ```no_run
//! # async fn demo(service: airlock_config::Service, secret: secrecy::SecretSlice<u8>) -> Result<(), Box<dyn std::error::Error>> {
//! use airlock_engine::{Engine, EngineConfig, UpstreamRequest, scrub::Scrubber};
//!
//! let engine = Engine::new(EngineConfig::default())?;
//! let bearer = airlock_inject::Bearer::new("stripe", secret)?;
//! let scrubber = Scrubber::empty(); // normally: every vault secret
//! let target = airlock_policy::normalize("/v1/charges?limit=3")?;
//! let resp = engine
//!     .send(&service, &bearer, UpstreamRequest::new(http::Method::GET, target), &scrubber)
//!     .await?;
//! let body = resp.body_text(); // {text, base64}
//! # Ok(()) }
//! ```
//!
//! Errors carry their [`ErrorSource`] (agent → 4xx, upstream → 502/504, internal →
//! 500) through [`EngineError::error_source`] and [`EngineError::http_status`].
//! Defaults and decisions are documented in `docs/engine.md`.
#![forbid(unsafe_code)]
#![deny(missing_docs)]
#![cfg_attr(test, allow(clippy::unwrap_used))]

mod engine;
mod error;
pub mod headers;
mod options;
pub mod scrub;

pub use engine::{
    BodyText, Engine, ScrubbedBody, StreamingResponse, Upgrade, UpstreamRequest, UpstreamResponse,
    WebSocketOffer, WebSocketOpen,
};
pub use error::{AgentError, EngineError, ErrorSource, InternalError, UpstreamError};
pub use options::{DEFAULT_MAX_BODY, EngineConfig, Limits, ServiceOptions};

/// The `http` crate this API uses (methods, header maps, status codes).
pub use http;
