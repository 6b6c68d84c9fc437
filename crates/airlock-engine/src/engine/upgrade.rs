//! WebSocket upgrades (RFC 6455 over HTTP/1.1): the handshake goes through the
//! same preparation as every request — origin pinning, header filtering, the
//! credential injected — and, when the upstream switches protocols, the caller
//! gets the upgraded connection to relay frames over (`airlock_gateway`'s
//! WebSocket relay scrubs them).
//!
//! What airlock sends is decided here, not by the agent: `Connection: Upgrade`,
//! `Upgrade: websocket`, the agent's `Sec-WebSocket-Key` and version 13, and its
//! `Sec-WebSocket-Protocol` list; never `Sec-WebSocket-Extensions` (a compressed
//! frame could not be scrubbed), and an upstream that answers with an extension
//! anyway is refused. The upgrade uses an HTTP/1.1-only connection: HTTP/2's
//! extended CONNECT (RFC 8441) is not spoken upstream.

use http::{HeaderMap, HeaderValue, Method, StatusCode, header};

use super::{Engine, streaming};
use crate::error::{AgentError, EngineError, UpstreamError};
use crate::options::Limits;
use crate::scrub::Scrubber;
use crate::{StreamingResponse, UpstreamRequest};
use airlock_config::Service;
use airlock_inject::Injector;

/// The WebSocket handshake an agent offered, taken from its request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebSocketOffer {
    /// `Sec-WebSocket-Key`: 16 random bytes, base64 (24 characters).
    pub key: String,
    /// `Sec-WebSocket-Protocol`, as offered (a comma-separated list), if any.
    pub protocols: Option<String>,
}

impl WebSocketOffer {
    /// The offer in a request's headers: `None` when the request is no
    /// WebSocket upgrade (no `Upgrade: websocket`); an error when it is one
    /// that cannot be honoured (the method is not GET, the version is not 13,
    /// the key is not 16 bytes of base64, `Connection` does not name
    /// `Upgrade`).
    pub fn from_request(
        method: &Method,
        headers: &HeaderMap,
    ) -> Result<Option<WebSocketOffer>, EngineError> {
        if !lists_token(headers, &header::UPGRADE, "websocket") {
            return Ok(None);
        }
        let bad = |reason: &str| -> EngineError {
            AgentError::BadUpgrade {
                reason: reason.to_string(),
            }
            .into()
        };
        if *method != Method::GET {
            return Err(bad("a WebSocket handshake is a GET request"));
        }
        if !lists_token(headers, &header::CONNECTION, "upgrade") {
            return Err(bad("`Upgrade: websocket` needs `Connection: Upgrade`"));
        }
        let one = |name: &header::HeaderName| -> Result<Option<String>, EngineError> {
            let mut values = headers.get_all(name).iter();
            match (values.next(), values.next()) {
                (None, _) => Ok(None),
                (Some(v), None) => v
                    .to_str()
                    .map(|s| Some(s.trim().to_string()))
                    .map_err(|_| bad(&format!("`{name}` is not text"))),
                (Some(_), Some(_)) => Err(bad(&format!("`{name}` is given twice"))),
            }
        };
        if one(&header::SEC_WEBSOCKET_VERSION)?.as_deref() != Some("13") {
            return Err(bad("`Sec-WebSocket-Version` must be 13"));
        }
        let key = one(&header::SEC_WEBSOCKET_KEY)?
            .ok_or_else(|| bad("`Sec-WebSocket-Key` is missing"))?;
        let decoded = base64::Engine::decode(&base64::engine::general_purpose::STANDARD, &key);
        if decoded.map(|k| k.len()) != Ok(16) {
            return Err(bad("`Sec-WebSocket-Key` must be 16 bytes in base64"));
        }
        let protocols = headers
            .get_all(header::SEC_WEBSOCKET_PROTOCOL)
            .iter()
            .map(|v| {
                v.to_str()
                    .map(|s| s.trim().to_string())
                    .map_err(|_| bad("`Sec-WebSocket-Protocol` is not text"))
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Some(WebSocketOffer {
            key,
            protocols: (!protocols.is_empty()).then(|| protocols.join(", ")),
        }))
    }
}

/// Whether any `name` header's comma-separated list holds `token` (any case).
fn lists_token(headers: &HeaderMap, name: &header::HeaderName, token: &str) -> bool {
    headers
        .get_all(name)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|t| t.trim().eq_ignore_ascii_case(token))
}

/// What the upstream answered a WebSocket handshake with.
#[derive(Debug)]
pub enum Upgrade {
    /// `101 Switching Protocols`: the connection is the upstream's WebSocket.
    Switched(WebSocketOpen),
    /// Any other answer (a `401`, a `404`…), streamed back as a response.
    Answered(StreamingResponse),
}

impl Upgrade {
    /// The upstream's status.
    pub fn status(&self) -> StatusCode {
        match self {
            Upgrade::Switched(_) => StatusCode::SWITCHING_PROTOCOLS,
            Upgrade::Answered(r) => r.status,
        }
    }
}

/// An open upstream WebSocket.
pub struct WebSocketOpen {
    /// The headers to answer the agent's handshake with:
    /// `Sec-WebSocket-Accept` and, when the upstream chose one,
    /// `Sec-WebSocket-Protocol` (scrubbed). `Upgrade` and `Connection` are the
    /// caller's to add.
    pub headers: HeaderMap,
    /// The upgraded connection to the upstream (frames, unmasked by nothing).
    pub upstream: reqwest::Upgraded,
    /// Every secret the response must not carry (the vault's and those the
    /// injector emitted): the relay scrubs messages with it.
    pub scrubber: Scrubber,
    /// The service's limits: a message over `max_response_body` ends the relay.
    pub limits: Limits,
}

impl std::fmt::Debug for WebSocketOpen {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebSocketOpen")
            .field("headers", &self.headers.keys().collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

impl Engine {
    /// Sends the WebSocket handshake `req` (a GET with no body; the agent's
    /// `Sec-WebSocket-*` headers are replaced by `offer`) to `service` with
    /// the credential `injector` adds, over HTTP/1.1, and returns the upgraded
    /// connection or the upstream's other answer (scrubbed, streamed).
    pub async fn send_upgrade(
        &self,
        service: &Service,
        injector: &dyn Injector,
        req: UpstreamRequest,
        offer: &WebSocketOffer,
        scrubber: &Scrubber,
    ) -> Result<Upgrade, EngineError> {
        if req.method != Method::GET || !req.body.is_empty() {
            return Err(AgentError::BadUpgrade {
                reason: "a WebSocket handshake is a GET request without a body".into(),
            }
            .into());
        }
        let p = self.prepare(service, injector, req, scrubber).await?;
        let (mut request, answering) = p.split();
        *request.version_mut() = http::Version::HTTP_11;
        let headers = request.headers_mut();
        let agent_set: Vec<header::HeaderName> = headers
            .keys()
            .filter(|n| n.as_str().starts_with("sec-websocket-"))
            .cloned()
            .collect();
        for name in agent_set {
            headers.remove(name);
        }
        let value = |v: &str| {
            HeaderValue::from_str(v).map_err(|_| -> EngineError {
                AgentError::BadUpgrade {
                    reason: "a Sec-WebSocket header value is not valid".into(),
                }
                .into()
            })
        };
        headers.insert(header::CONNECTION, HeaderValue::from_static("Upgrade"));
        headers.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
        headers.insert(
            header::SEC_WEBSOCKET_VERSION,
            HeaderValue::from_static("13"),
        );
        headers.insert(header::SEC_WEBSOCKET_KEY, value(&offer.key)?);
        if let Some(p) = &offer.protocols {
            headers.insert(header::SEC_WEBSOCKET_PROTOCOL, value(p)?);
        }
        let client = self.pool(&service.name, true)?;
        let resp = self
            .head_within(&service.name, client, request, &answering.limits)
            .await?;
        if resp.status() != StatusCode::SWITCHING_PROTOCOLS {
            return streaming(&service.name, &Method::GET, resp, answering).map(Upgrade::Answered);
        }
        let protocol_error = |detail: &str| -> EngineError {
            UpstreamError::Protocol {
                service: service.name.clone(),
                detail: detail.to_string(),
            }
            .into()
        };
        let upstream_headers = resp.headers();
        let upgraded_to_websocket = upstream_headers
            .get(header::UPGRADE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.trim().eq_ignore_ascii_case("websocket"));
        if !upgraded_to_websocket {
            return Err(protocol_error(
                "the upstream switched protocols, but not to `websocket`",
            ));
        }
        if upstream_headers.contains_key(header::SEC_WEBSOCKET_EXTENSIONS) {
            return Err(protocol_error(
                "the upstream chose a WebSocket extension airlock did not offer (a compressed frame could not be scrubbed)",
            ));
        }
        let mut headers = HeaderMap::new();
        for name in [header::SEC_WEBSOCKET_ACCEPT, header::SEC_WEBSOCKET_PROTOCOL] {
            if let Some(v) = upstream_headers.get(&name) {
                let scrubbed = answering.scrubber.scrub(v.as_bytes());
                let v = HeaderValue::from_bytes(&scrubbed)
                    .map_err(|_| protocol_error("a Sec-WebSocket header is not valid"))?;
                headers.insert(name, v);
            }
        }
        let upstream = resp
            .upgrade()
            .await
            .map_err(|e| protocol_error(&format!("the upgrade failed: {e}")))?;
        Ok(Upgrade::Switched(WebSocketOpen {
            headers,
            upstream,
            scrubber: answering.scrubber,
            limits: answering.limits,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(
                header::HeaderName::from_bytes(k.as_bytes()).unwrap(),
                HeaderValue::from_str(v).unwrap(),
            );
        }
        h
    }

    const GOOD: &[(&str, &str)] = &[
        ("upgrade", "websocket"),
        ("connection", "keep-alive, Upgrade"),
        ("sec-websocket-version", "13"),
        ("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ=="),
    ];

    #[test]
    fn a_handshake_is_read_and_anything_else_is_no_upgrade() {
        let offer = WebSocketOffer::from_request(&Method::GET, &headers(GOOD)).unwrap();
        assert_eq!(
            offer,
            Some(WebSocketOffer {
                key: "dGhlIHNhbXBsZSBub25jZQ==".into(),
                protocols: None,
            })
        );
        let mut with = GOOD.to_vec();
        with.push(("sec-websocket-protocol", "chat"));
        with.push(("sec-websocket-protocol", "superchat"));
        let offer = WebSocketOffer::from_request(&Method::GET, &headers(&with)).unwrap();
        assert_eq!(offer.unwrap().protocols.as_deref(), Some("chat, superchat"));
        for plain in [
            &[][..],
            &[("upgrade", "h2c"), ("connection", "upgrade")][..],
        ] {
            assert_eq!(
                WebSocketOffer::from_request(&Method::GET, &headers(plain)).unwrap(),
                None
            );
        }
    }

    #[test]
    fn a_handshake_airlock_cannot_honour_says_what_is_wrong() {
        let without = |name: &str| -> Vec<(&str, &str)> {
            GOOD.iter().copied().filter(|(k, _)| *k != name).collect()
        };
        let replaced = |name: &'static str, value: &'static str| -> Vec<(&str, &str)> {
            let mut v = without(name);
            v.push((name, value));
            v
        };
        type Headers<'a> = Vec<(&'a str, &'a str)>;
        let cases: Vec<(Method, Headers, &str)> = vec![
            (Method::POST, GOOD.to_vec(), "GET"),
            (Method::GET, without("connection"), "Connection: Upgrade"),
            (Method::GET, without("sec-websocket-version"), "must be 13"),
            (
                Method::GET,
                replaced("sec-websocket-version", "8"),
                "must be 13",
            ),
            (Method::GET, without("sec-websocket-key"), "missing"),
            (
                Method::GET,
                replaced("sec-websocket-key", "c2hvcnQ="),
                "16 bytes",
            ),
            (
                Method::GET,
                replaced("sec-websocket-key", "not base64!"),
                "16 bytes",
            ),
            (
                Method::GET,
                {
                    let mut v = GOOD.to_vec();
                    v.push(("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ=="));
                    v
                },
                "given twice",
            ),
        ];
        for (method, h, says) in cases {
            let err = WebSocketOffer::from_request(&method, &headers(&h)).unwrap_err();
            let msg = err.to_string();
            assert!(msg.contains(says), "{msg} (wanted {says})");
            assert_eq!(err.http_status(), StatusCode::BAD_REQUEST);
        }
    }
}
