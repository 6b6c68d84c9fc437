//! Errors that know whose fault they are (like pingora's `ErrorSource`).

use std::time::Duration;

use http::StatusCode;

use crate::scrub::ScrubberError;

/// Who caused an error: decides the HTTP status the caller answers with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorSource {
    /// The agent's request is refused (4xx). Report the message to the agent.
    Agent,
    /// The upstream failed (unreachable, timed out, too large, malformed): 502/504.
    Upstream,
    /// airlock itself (configuration, a bug, a broken invariant): 500.
    Internal,
}

/// Anything [`crate::Engine`] can fail with. Messages name the service and the
/// problem; they never contain a secret, a header value or a URL with a query.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EngineError {
    /// The agent's request is refused.
    #[error(transparent)]
    Agent(#[from] AgentError),
    /// The upstream failed.
    #[error(transparent)]
    Upstream(#[from] UpstreamError),
    /// airlock failed.
    #[error(transparent)]
    Internal(#[from] InternalError),
}

impl EngineError {
    /// Whose fault the error is.
    pub fn error_source(&self) -> ErrorSource {
        match self {
            EngineError::Agent(_) => ErrorSource::Agent,
            EngineError::Upstream(_) => ErrorSource::Upstream,
            EngineError::Internal(_) => ErrorSource::Internal,
        }
    }

    /// The status to answer with: 400/405/413 for the agent, 502 (504 for a
    /// timeout) for the upstream, 500 for airlock.
    pub fn http_status(&self) -> StatusCode {
        match self {
            EngineError::Agent(AgentError::RequestTooLarge { .. }) => StatusCode::PAYLOAD_TOO_LARGE,
            EngineError::Agent(AgentError::ForbiddenMethod { .. }) => {
                StatusCode::METHOD_NOT_ALLOWED
            }
            EngineError::Agent(_) => StatusCode::BAD_REQUEST,
            EngineError::Upstream(UpstreamError::Timeout { .. }) => StatusCode::GATEWAY_TIMEOUT,
            EngineError::Upstream(_) => StatusCode::BAD_GATEWAY,
            EngineError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

/// The agent's request cannot be sent as it is.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AgentError {
    /// The credential cannot be applied to this request as the agent built it
    /// (for example a body a signing injector cannot sign).
    #[error("service \"{service}\": {source}")]
    Unsignable {
        /// The service.
        service: String,
        /// Why, from the injector.
        #[source]
        source: airlock_inject::InjectError,
    },
    /// The target is not in the normal form the policy checked.
    #[error("request target refused: {reason}")]
    InvalidTarget {
        /// Why (from the normalizer).
        reason: String,
    },
    /// The target is normalized but the HTTP client would send it differently.
    #[error("request target for service \"{service}\" cannot be sent exactly as checked: {detail}")]
    TargetNotSendable {
        /// The service.
        service: String,
        /// What would change, and how to write it instead.
        detail: String,
    },
    /// `TRACE`, `TRACK` and `CONNECT` are never sent.
    #[error(
        "method {method:?} is never sent upstream: it would echo the injected credential or open a tunnel"
    )]
    ForbiddenMethod {
        /// The method.
        method: String,
    },
    /// A method-override header would change the method after the policy check.
    #[error(
        "header \"{header}\" is refused: it overrides the method the policy checked; send the method you mean instead"
    )]
    MethodOverride {
        /// The header name.
        header: String,
    },
    /// CR, LF or NUL in a header name or value: header injection.
    #[error(
        "header \"{header}\" is refused: its {part} contains {what}, which could inject another header"
    )]
    HeaderInjection {
        /// The header name (escaped, clipped).
        header: String,
        /// `"name"` or `"value"`.
        part: &'static str,
        /// `"CR"`, `"LF"` or `"NUL"`.
        what: &'static str,
    },
    /// The name is not an HTTP token.
    #[error(
        "header name \"{header}\" is not a valid HTTP header name (letters, digits and !#$%&'*+-.^_`|~ only)"
    )]
    BadHeaderName {
        /// The header name (escaped, clipped).
        header: String,
    },
    /// The value holds a control character other than CR/LF/NUL.
    #[error("header \"{header}\" is refused: its value contains a control character")]
    BadHeaderValue {
        /// The header name.
        header: String,
    },
    /// Too many headers, or too many header bytes.
    #[error(
        "too many request headers: {count} headers, {bytes} bytes (at most {max_count} headers, {max_bytes} bytes)"
    )]
    TooManyHeaders {
        /// Headers sent.
        count: usize,
        /// Bytes in names and values.
        bytes: usize,
        /// The header-count limit.
        max_count: usize,
        /// The byte limit.
        max_bytes: usize,
    },
    /// A WebSocket upgrade request that cannot be sent as one.
    #[error("WebSocket upgrade refused: {reason}")]
    BadUpgrade {
        /// What is wrong, and how to fix it.
        reason: String,
    },
    /// The body is over the service's request limit.
    #[error(
        "request body of {size} bytes is over the {limit}-byte limit for service \"{service}\""
    )]
    RequestTooLarge {
        /// The service.
        service: String,
        /// The body's size.
        size: usize,
        /// The limit.
        limit: usize,
    },
}

/// The upstream failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum UpstreamError {
    /// No connection (refused, DNS, TLS handshake).
    #[error("could not connect to service \"{service}\": {detail}")]
    Connect {
        /// The service.
        service: String,
        /// What failed.
        detail: String,
    },
    /// The connect or total timeout elapsed.
    #[error("service \"{service}\" did not answer within {after:?} ({phase})")]
    Timeout {
        /// The service.
        service: String,
        /// The limit that elapsed.
        after: Duration,
        /// `"connect"`, `"response"`, or `"stream idle"`.
        phase: &'static str,
    },
    /// The response body is over the service's limit.
    #[error(
        "the response from service \"{service}\" is over the {limit}-byte limit; ask for less (pagination, filters)"
    )]
    ResponseTooLarge {
        /// The service.
        service: String,
        /// The limit.
        limit: usize,
    },
    /// The response is compressed although airlock asked for `identity`: it cannot
    /// be scrubbed, so it is not returned.
    #[error(
        "service \"{service}\" sent a body with {header} {encoding:?} although airlock asked for identity; compressed or otherwise encoded bodies cannot be scrubbed, so it is not returned"
    )]
    CompressedResponse {
        /// The service.
        service: String,
        /// `Content-Encoding` or `Transfer-Encoding`.
        header: &'static str,
        /// The encoding sent.
        encoding: String,
    },
    /// The exchange failed after connecting (reset, malformed response).
    #[error("request to service \"{service}\" failed: {detail}")]
    Protocol {
        /// The service.
        service: String,
        /// What failed.
        detail: String,
    },
    /// A token endpoint the injector needs failed.
    #[error("service \"{service}\": {source}")]
    Credential {
        /// The service.
        service: String,
        /// The injector's error.
        source: airlock_inject::InjectError,
    },
}

/// airlock failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum InternalError {
    /// The service URL cannot be used as an origin (should have been refused when
    /// the configuration was loaded).
    #[error("service \"{service}\" has an unusable URL: {problem}")]
    ServiceUrl {
        /// The service.
        service: String,
        /// What is wrong.
        problem: String,
    },
    /// The final request no longer points at the service's origin and path: a bug,
    /// caught before anything was sent.
    #[error(
        "request for service \"{service}\" was not sent: the final URL does not match the service's origin and the checked path ({what})"
    )]
    OriginMismatch {
        /// The service.
        service: String,
        /// Which part differed.
        what: &'static str,
    },
    /// The injector could not prepare the credential.
    #[error("service \"{service}\": {source}")]
    Credential {
        /// The service.
        service: String,
        /// The injector's error.
        source: airlock_inject::InjectError,
    },
    /// The HTTP client could not be built or used.
    #[error("HTTP client: {detail}")]
    Client {
        /// What failed.
        detail: String,
    },
    /// The scrubber could not be extended with the injector's secrets.
    #[error(transparent)]
    Scrubber(#[from] ScrubberError),
}

/// Describes a `reqwest` error without its URL (which may carry a query credential):
/// the messages of its sources, joined.
pub(crate) fn describe(e: &reqwest::Error) -> String {
    let mut parts = Vec::new();
    let mut cur = std::error::Error::source(e);
    while let Some(s) = cur {
        let msg = s.to_string();
        if !parts.contains(&msg) {
            parts.push(msg);
        }
        cur = s.source();
    }
    if parts.is_empty() {
        if e.is_body() {
            "error reading the body".to_string()
        } else {
            "error sending the request".to_string()
        }
    } else {
        parts.join(": ")
    }
}

/// Escapes and clips agent input quoted in a message.
pub(crate) fn quote(s: &str) -> String {
    let escaped: String = s.escape_debug().collect();
    if escaped.chars().count() > 60 {
        let mut c: String = escaped.chars().take(60).collect();
        c.push('…');
        c
    } else {
        escaped
    }
}
