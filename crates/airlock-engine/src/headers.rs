//! What crosses the engine in headers, both ways.
//!
//! Request side (agent → upstream), per header, in this order:
//!
//! | header | what happens | why |
//! |---|---|---|
//! | name or value with CR, LF or NUL | **refused** ([`AgentError::HeaderInjection`]) | header injection is an attack, not a mistake to paper over |
//! | name not an HTTP token, value with another control character | **refused** | cannot be sent faithfully |
//! | method overrides: `X-HTTP-Method-Override`, `X-HTTP-Method`, `X-Method-Override`, `X-Original-Method` | **refused** ([`AgentError::MethodOverride`]) | it would change the method after the policy check; dropping it silently would send a *different* request than the agent meant |
//! | routing overrides: `X-Original-URL`, `X-Rewrite-URL`, `X-Original-URI`, `X-Envoy-Original-Path`, `X-Original-Host`, `X-Host`, `X-Envoy-Original-Dst-Host`, `Forwarded`, every `X-Forwarded-*` (`-Host`, `-Prefix`, `-Proto`, `-Port`, `-For`…) | **refused** ([`AgentError::InvalidTarget`], naming the header) | proxies and frameworks that honour them serve another path or host than the one the policy checked; the list and where each comes from: docs/gateway.md, "Routing-override headers" |
//! | `Authorization`, `Proxy-Authorization` | dropped | credentials come from the injector only (SDKs always send a placeholder key) |
//! | `Host` | dropped | the upstream's host comes from the service URL (SDKs send the gateway's host) |
//! | hop-by-hop: `Connection`, `Keep-Alive`, `Proxy-Connection`, `TE`, `Trailer`, `Transfer-Encoding`, `Upgrade`, `HTTP2-Settings`, and every header named in `Connection` | dropped | they describe the agent's connection to airlock, not airlock's to the upstream |
//! | `Content-Length`, `Expect` | dropped | the client computes framing from the buffered body |
//! | `Accept-Encoding` | dropped; `identity` is sent | a compressed response cannot be scrubbed |
//! | `X-Real-IP`, `Via` | dropped | the agent must not forge where the request comes from |
//! | `Cookie` | dropped unless the service sets `forward_cookies` | cookies are often session credentials |
//! | headers the injector owns (e.g. `X-Api-Key` for header auth) | dropped | the injector sets them |
//!
//! Dropped headers are listed (by name, never value) in the response, for the audit
//! record and `explain`.
//!
//! Response side (upstream → agent): hop-by-hop headers (and those named in
//! `Connection`), `Content-Length` (scrubbing changes the length), `Set-Cookie` and
//! `Set-Cookie2` (a session cookie minted for the injected credential is itself a
//! credential, and the agent has no cookie jar through airlock) are removed; a
//! `Location` that resolves to another origin is removed (the agent learns only that
//! there was a redirect); the remaining values are scrubbed as one block, in order
//! (a secret split across consecutive values is found), and a header whose *name*
//! contains a secret is removed.

use http::HeaderMap;
use http::header::{self, HeaderName, HeaderValue};

use crate::error::{AgentError, quote};
use crate::scrub::Scrubber;

/// At most this many agent headers.
pub const MAX_AGENT_HEADERS: usize = 128;
/// At most this many bytes in agent header names and values together.
pub const MAX_AGENT_HEADER_BYTES: usize = 64 * 1024;

/// Hop-by-hop headers (lower case): they describe one connection, so they are
/// dropped from agent requests and removed from responses alike.
pub const HOP_BY_HOP: &[&str] = &[
    "connection",
    "keep-alive",
    "proxy-connection",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "http2-settings",
];

/// Header names, besides [`HOP_BY_HOP`], that are always dropped from agent
/// requests (lower case).
const DROPPED: &[&str] = &[
    "authorization",
    "proxy-authorization",
    "host",
    "content-length",
    "expect",
    "accept-encoding",
    "x-real-ip",
    "via",
];

/// Method-override headers (lower case): refused. `X-HTTP-Method-Override`,
/// `X-HTTP-Method` and `X-Method-Override` are honoured by Rack's
/// `MethodOverride`, Express's `method-override`, ASP.NET and Google's APIs;
/// `X-Original-Method` carries the original method behind ingress-nginx.
const METHOD_OVERRIDES: &[&str] = &[
    "x-http-method-override",
    "x-http-method",
    "x-method-override",
    "x-original-method",
];

/// Routing-override headers (lower case): refused. Each makes a proxy or
/// framework that honours it serve another path or host than the request line and
/// `Host` say, which is what the policy checked:
///
/// - `x-original-url`, `x-rewrite-url`: IIS URL Rewrite, and Symfony and Zend,
///   whose request objects take the path from them;
/// - `x-original-uri`: the original URI in nginx `auth_request` setups;
/// - `x-envoy-original-path`: Envoy's record of a path it rewrote;
/// - `x-original-host`, `x-host`: the original host, honoured by some
///   frameworks and Azure front ends;
/// - `x-envoy-original-dst-host`: Envoy's original-destination routing (the
///   upstream address itself);
/// - `forwarded` (RFC 7239: `host=`, `proto=`), and every `x-forwarded-*`
///   ([`ROUTING_OVERRIDE_PREFIX`]): `-host`, `-proto`, `-port`, `-prefix`
///   (Werkzeug's `ProxyFix`, Spring, Traefik), `-path`, `-uri`, `-server`,
///   `-for`. `-for` names a client address, not a route; it is refused with the
///   rest because an agent has no reason to send any of them, and one rule is
///   easier to state (and harder to slip past) than a list of suffixes.
const ROUTING_OVERRIDES: &[&str] = &[
    "x-original-url",
    "x-rewrite-url",
    "x-original-uri",
    "x-envoy-original-path",
    "x-original-host",
    "x-host",
    "x-envoy-original-dst-host",
    "forwarded",
];

/// Every header whose name starts with this is a routing override.
const ROUTING_OVERRIDE_PREFIX: &str = "x-forwarded-";

/// Whether `name` (lower case) is a routing-override header (see
/// [`ROUTING_OVERRIDES`]).
fn is_routing_override(name: &str) -> bool {
    ROUTING_OVERRIDES.contains(&name) || name.starts_with(ROUTING_OVERRIDE_PREFIX)
}

/// What a routing-override header would override, for the refusal's message.
fn overridden_part(name: &str) -> &'static str {
    match name {
        "x-original-host" | "x-host" | "x-forwarded-host" | "x-forwarded-server" => "host",
        "x-envoy-original-dst-host" => "upstream address",
        "forwarded" => "host and scheme",
        "x-forwarded-proto" | "x-forwarded-scheme" | "x-forwarded-ssl" => "scheme",
        "x-forwarded-port" => "port",
        "x-forwarded-for" => "client address",
        n if n.starts_with(ROUTING_OVERRIDE_PREFIX) => "path or origin",
        _ => "path",
    }
}

/// The header names listed in `values` (those of `Connection` headers): they
/// are hop-by-hop too. Lower case; a value that is not text lists none.
fn connection_listed<'a>(values: impl IntoIterator<Item = &'a HeaderValue>) -> Vec<String> {
    values
        .into_iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|t| t.trim().to_ascii_lowercase())
        .filter(|t| !t.is_empty())
        .collect()
}

/// The agent's headers, filtered.
#[derive(Debug, Default)]
pub(crate) struct FilteredRequest {
    pub(crate) headers: HeaderMap,
    /// Lower-case names of dropped headers, each once.
    pub(crate) removed: Vec<String>,
}

fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

fn injection(s: &str) -> Option<&'static str> {
    s.bytes().find_map(|b| match b {
        b'\r' => Some("CR"),
        b'\n' => Some("LF"),
        0 => Some("NUL"),
        _ => None,
    })
}

/// Filters the agent's headers (see the module docs).
pub(crate) fn filter_request(
    agent: &[(String, String)],
    owned: &[HeaderName],
    forward_cookies: bool,
) -> Result<FilteredRequest, AgentError> {
    let bytes: usize = agent.iter().map(|(n, v)| n.len() + v.len()).sum();
    if agent.len() > MAX_AGENT_HEADERS || bytes > MAX_AGENT_HEADER_BYTES {
        return Err(AgentError::TooManyHeaders {
            count: agent.len(),
            bytes,
            max_count: MAX_AGENT_HEADERS,
            max_bytes: MAX_AGENT_HEADER_BYTES,
        });
    }
    // Validate everything first: a refusal wins over any drop.
    let mut parsed = Vec::with_capacity(agent.len());
    for (name, value) in agent {
        if let Some(what) = injection(name) {
            return Err(AgentError::HeaderInjection {
                header: quote(name),
                part: "name",
                what,
            });
        }
        if name.is_empty() || !name.bytes().all(is_tchar) {
            return Err(AgentError::BadHeaderName {
                header: quote(name),
            });
        }
        if let Some(what) = injection(value) {
            return Err(AgentError::HeaderInjection {
                header: quote(name),
                part: "value",
                what,
            });
        }
        let lower = name.to_ascii_lowercase();
        if METHOD_OVERRIDES.contains(&lower.as_str()) {
            return Err(AgentError::MethodOverride { header: lower });
        }
        if is_routing_override(&lower) {
            let part = overridden_part(&lower);
            return Err(AgentError::InvalidTarget {
                reason: format!(
                    "header \"{lower}\" is refused: proxies and frameworks that honour it take the request's {part} from it instead of the request the policy checked; send the request without it (the refused headers are listed in docs/gateway.md, \"Routing-override headers\")"
                ),
            });
        }
        let value = HeaderValue::from_str(value).map_err(|_| AgentError::BadHeaderValue {
            header: quote(name),
        })?;
        let name =
            HeaderName::from_bytes(lower.as_bytes()).map_err(|_| AgentError::BadHeaderName {
                header: quote(name),
            })?;
        parsed.push((name, value));
    }

    // Names listed in any Connection header are hop-by-hop too.
    let connection_named = connection_listed(
        parsed
            .iter()
            .filter(|(name, _)| name == header::CONNECTION)
            .map(|(_, value)| value),
    );

    let mut out = FilteredRequest::default();
    for (name, value) in parsed {
        let n = name.as_str();
        let drop = HOP_BY_HOP.contains(&n)
            || DROPPED.contains(&n)
            || n.starts_with("proxy-")
            || (n == "cookie" && !forward_cookies)
            || connection_named.iter().any(|c| c == n)
            || owned.contains(&name);
        if drop {
            if !out.removed.iter().any(|r| r == n) {
                out.removed.push(n.to_string());
            }
        } else {
            out.headers.append(name, value);
        }
    }
    Ok(out)
}

/// Where a response `Location` points, relative to the service's origin.
pub(crate) enum LocationCheck {
    SameOrigin,
    Elsewhere,
}

/// Filters and scrubs response headers. `location` decides, for a `Location`
/// value, whether it stays.
pub(crate) fn filter_response(
    upstream: &HeaderMap,
    scrubber: &Scrubber,
    location: impl Fn(&str) -> LocationCheck,
) -> (HeaderMap, Vec<String>) {
    let connection_named = connection_listed(upstream.get_all(header::CONNECTION));
    let mut out = HeaderMap::with_capacity(upstream.len());
    let mut kept: Vec<(&HeaderName, &[u8])> = Vec::new();
    let mut removed: Vec<String> = Vec::new();
    let remove = |removed: &mut Vec<String>, n: &str| {
        if !removed.iter().any(|r| r == n) {
            removed.push(n.to_string());
        }
    };
    for (name, value) in upstream {
        let n = name.as_str();
        if HOP_BY_HOP.contains(&n)
            || n == "proxy-authenticate"
            || n == "content-length"
            || n == "set-cookie"
            || n == "set-cookie2"
            || connection_named.iter().any(|c| c == n)
        {
            remove(&mut removed, n);
            continue;
        }
        if scrubber.contains_secret(n.as_bytes()) {
            remove(&mut removed, "(a header whose name contains a secret)");
            continue;
        }
        if name == header::LOCATION {
            let keep = value
                .to_str()
                .map(|v| matches!(location(v), LocationCheck::SameOrigin))
                .unwrap_or(false);
            if !keep {
                remove(&mut removed, n);
                continue;
            }
        }
        kept.push((name, value.as_bytes()));
    }
    // Values are scrubbed as one block, in order: a secret split across
    // consecutive values is found too.
    let values: Vec<&[u8]> = kept.iter().map(|(_, v)| *v).collect();
    for ((name, _), scrubbed) in kept.iter().zip(scrubber.scrub_parts(&values)) {
        match HeaderValue::from_bytes(&scrubbed) {
            Ok(v) => {
                out.append((*name).clone(), v);
            }
            Err(_) => remove(&mut removed, name.as_str()),
        }
    }
    (out, removed)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect()
    }

    #[test]
    fn drops_and_keeps() {
        let f = filter_request(
            &h(&[
                ("Authorization", "Bearer agent"),
                ("Host", "evil"),
                ("Connection", "x-foo, keep-alive"),
                ("X-Foo", "1"),
                ("Cookie", "a=b"),
                ("X-Real-IP", "1.2.3.4"),
                ("Proxy-Foo", "1"),
                ("Accept", "application/json"),
                ("X-Api-Key", "placeholder"),
                ("Content-Type", "text/plain"),
            ]),
            &[HeaderName::from_static("x-api-key")],
            false,
        )
        .unwrap();
        let names: Vec<_> = f.headers.keys().map(|k| k.as_str()).collect();
        assert_eq!(names, ["accept", "content-type"]);
        assert_eq!(
            f.removed,
            [
                "authorization",
                "host",
                "connection",
                "x-foo",
                "cookie",
                "x-real-ip",
                "proxy-foo",
                "x-api-key"
            ]
        );
    }

    #[test]
    fn cookie_allowed_per_service() {
        let f = filter_request(&h(&[("Cookie", "a=b")]), &[], true).unwrap();
        assert_eq!(f.headers["cookie"], "a=b");
    }

    #[test]
    fn refusals() {
        for (pairs, want) in [
            (h(&[("X-A", "1\r\nHost: evil")]), "CR"),
            (h(&[("X-A", "1\nX: y")]), "LF"),
            (h(&[("X-A", "a\0b")]), "NUL"),
            (h(&[("X-A\r\nHost", "x")]), "CR"),
            (h(&[("X-HTTP-Method-Override", "DELETE")]), "overrides"),
            (h(&[("x-method-override", "DELETE")]), "overrides"),
            (h(&[("X-Original-Method", "DELETE")]), "overrides"),
            (h(&[("Bad Name", "x")]), "not a valid"),
            (h(&[(":authority", "x")]), "not a valid"),
            (h(&[("X-A", "bell\x07")]), "control character"),
        ] {
            let err = filter_request(&pairs, &[], false).unwrap_err();
            assert!(err.to_string().contains(want), "{err}");
        }
        let many: Vec<_> = (0..200)
            .map(|i| (format!("x-{i}"), "v".to_string()))
            .collect();
        assert!(matches!(
            filter_request(&many, &[], false),
            Err(AgentError::TooManyHeaders { .. })
        ));
    }

    /// Issue 14 item 5: every header that proxies and frameworks use to
    /// override the path, host or method is refused, whatever its case, with a
    /// message naming it; a refusal wins over any drop.
    #[test]
    fn routing_overrides_are_refused_naming_the_header() {
        for (name, part) in [
            ("X-Original-URL", "path"),
            ("X-Rewrite-URL", "path"),
            ("X-Original-URI", "path"),
            ("X-Envoy-Original-Path", "path"),
            ("X-Original-Host", "host"),
            ("X-Host", "host"),
            ("X-Envoy-Original-Dst-Host", "upstream address"),
            ("Forwarded", "host and scheme"),
            ("X-Forwarded-Host", "host"),
            ("X-Forwarded-Prefix", "path or origin"),
            ("X-Forwarded-Path", "path or origin"),
            ("X-Forwarded-Proto", "scheme"),
            ("X-Forwarded-Port", "port"),
            ("X-Forwarded-For", "client address"),
            ("x-forwarded-anything-else", "path or origin"),
        ] {
            let err = filter_request(
                &h(&[("Authorization", "Bearer x"), (name, "/v1/admin")]),
                &[],
                false,
            )
            .unwrap_err();
            assert!(
                matches!(err, AgentError::InvalidTarget { .. }),
                "{name}: {err}"
            );
            let text = err.to_string();
            let lower = name.to_ascii_lowercase();
            assert!(text.contains(&format!("\"{lower}\"")), "{text}");
            assert!(text.contains(&format!("request's {part} ")), "{text}");
            assert!(text.contains("Routing-override headers"), "{text}");
        }
        for name in [
            "X-HTTP-Method-Override",
            "X-HTTP-Method",
            "X-Method-Override",
            "X-Original-Method",
        ] {
            let err = filter_request(&h(&[(name, "DELETE")]), &[], false).unwrap_err();
            assert!(
                matches!(err, AgentError::MethodOverride { .. }),
                "{name}: {err}"
            );
        }
        // Near names are not caught.
        let f = filter_request(
            &h(&[("X-Original-Request-Id", "1"), ("X-Forwarded", "1")]),
            &[],
            false,
        )
        .unwrap();
        assert_eq!(f.headers.len(), 2);
    }

    #[test]
    fn response_side() {
        let s = Scrubber::new([("k", &b"topsecret99"[..])]).unwrap();
        let mut up = HeaderMap::new();
        up.append("set-cookie", HeaderValue::from_static("sid=1"));
        up.append("connection", HeaderValue::from_static("x-hop"));
        up.append("x-hop", HeaderValue::from_static("1"));
        up.append("content-length", HeaderValue::from_static("10"));
        up.append("x-echo", HeaderValue::from_static("Bearer topsecret99"));
        up.append("x-topsecret99", HeaderValue::from_static("1"));
        up.append(
            "location",
            HeaderValue::from_static("https://evil.example/x"),
        );
        let (out, removed) = filter_response(&up, &s, |_| LocationCheck::Elsewhere);
        assert_eq!(out.len(), 1);
        assert_eq!(out["x-echo"], "Bearer [REDACTED:k]");
        assert_eq!(removed.len(), 6, "{removed:?}");
    }
}
