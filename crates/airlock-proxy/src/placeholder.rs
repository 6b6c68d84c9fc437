//! Placeholders (DESIGN.md §7.12, docs/proxy.md "Placeholders"): what a program
//! holds instead of a key. A placeholder is random (`airlock_ph_` + 40 hex
//! digits, 160 bits), minted for one run, and bound to one service's origin and
//! to the surface its auth type uses: the `Authorization` header (bearer, basic —
//! where it is the password inside the base64 — and the signing types), the
//! service's own header (`header` auth) or query parameter (`query` auth).
//!
//! The proxy swaps nothing by text substitution: on its surface, toward its
//! origin, the placeholder is dropped with the header or parameter that carries
//! it (the engine removes what the injector owns) and the service's injector puts
//! the real credential there. Anywhere else — another host, another header, the
//! path, another query parameter, the body, a CONNECT authority — it is a
//! [`Trip`]: the request is refused and the run's session revoked.
//!
//! What is looked at: every header value (and the decoded `Basic` credentials),
//! the path and query both as sent and percent-decoded, and the whole body as
//! buffered for the request path. A program that disguises the placeholder
//! (base64 in a body, split in two) is not caught; it gains nothing either: a
//! placeholder is worth nothing outside this proxy, which injects the key only
//! toward its service.

use aho_corasick::{AhoCorasick, AhoCorasickBuilder, MatchKind};
use airlock_config::{Auth, Service};
use base64::Engine as _;
use http::HeaderName;

/// Every placeholder starts with this.
pub const PREFIX: &str = "airlock_ph_";

/// Random bytes in a placeholder (shown as twice as many hex digits).
const RANDOM_BYTES: usize = 20;

/// One placeholder and what it is bound to.
#[derive(Debug, Clone)]
struct Bound {
    value: String,
    service: String,
    /// The vault secret it stands for.
    secret: String,
    scheme: String,
    host: String,
    port: u16,
    /// Headers it may ride in toward its origin (lower case).
    headers: Vec<HeaderName>,
    /// Query parameters it may ride in toward its origin.
    query: Vec<String>,
}

/// A placeholder seen where it may not go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Trip {
    /// The service the placeholder stands for.
    pub service: String,
    /// Where it was seen: `header "x-foo"`, `the path`, `the body`…
    pub surface: String,
    /// The origin the request was going to (`scheme://host:port`).
    pub target: String,
}

impl std::fmt::Display for Trip {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "the placeholder for service \"{}\" was sent in {} of a request to {}",
            self.service.escape_debug(),
            self.surface,
            self.target.escape_debug()
        )
    }
}

/// The placeholders of one run.
#[derive(Debug, Default)]
pub struct Placeholders {
    bound: Vec<Bound>,
    finder: Option<AhoCorasick>,
}

/// A request's origin, as the proxy sees it.
#[derive(Debug, Clone, Copy)]
pub struct Origin<'a> {
    /// `http` or `https`.
    pub scheme: &'a str,
    /// The host, lower case, without brackets.
    pub host: &'a str,
    /// The port.
    pub port: u16,
}

impl Origin<'_> {
    fn shown(&self) -> String {
        format!("{}://{}:{}", self.scheme, self.host, self.port)
    }
}

impl Placeholders {
    /// No placeholders.
    pub fn new() -> Placeholders {
        Placeholders::default()
    }

    /// The placeholder for `service`'s main secret (the first its auth names:
    /// the key, the password, the access key id).
    pub fn for_service(&mut self, service: &Service) -> Option<String> {
        let secret = service.auth.secrets().first()?.to_string();
        self.for_secret(service, &secret)
    }

    /// The placeholder for `secret` as `service` uses it (minted on first use,
    /// then the same one): one per service and secret, so a signing client
    /// (SigV4) can hold both halves of its key pair as placeholders. `None`
    /// for a secret the service does not use, or a URL without a host.
    pub fn for_secret(&mut self, service: &Service, secret: &str) -> Option<String> {
        if !service.auth.secrets().contains(&secret) {
            return None;
        }
        if let Some(b) = self
            .bound
            .iter()
            .find(|b| b.service == service.name && b.secret == secret)
        {
            return Some(b.value.clone());
        }
        let host = service
            .url
            .host_str()?
            .trim_matches(['[', ']'])
            .to_ascii_lowercase();
        let port = service.url.port_or_known_default()?;
        let mut random = [0u8; RANDOM_BYTES];
        getrandom::fill(&mut random).ok()?;
        let value = format!("{PREFIX}{}", hex::encode(random));
        let (headers, query) = surfaces(&service.auth);
        self.bound.push(Bound {
            value: value.clone(),
            service: service.name.clone(),
            secret: secret.to_string(),
            scheme: service.url.scheme().to_string(),
            host,
            port,
            headers,
            query,
        });
        // Rebuilt for each new placeholder: a run mints a handful, once.
        self.finder = AhoCorasickBuilder::new()
            .ascii_case_insensitive(true)
            .match_kind(MatchKind::LeftmostFirst)
            .build(self.bound.iter().map(|b| b.value.as_str()))
            .ok();
        Some(value)
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.bound.is_empty()
    }

    /// The services with a placeholder, by name, each once.
    pub fn services(&self) -> Vec<&str> {
        let mut out: Vec<&str> = Vec::new();
        for b in &self.bound {
            if !out.contains(&b.service.as_str()) {
                out.push(&b.service);
            }
        }
        out
    }

    /// The placeholders in `text` (each once).
    fn found(&self, text: &[u8]) -> Vec<&Bound> {
        let Some(finder) = &self.finder else {
            return Vec::new();
        };
        let mut out: Vec<&Bound> = Vec::new();
        for m in finder.find_iter(text) {
            let b = &self.bound[m.pattern().as_usize()];
            if !out.iter().any(|o| o.value == b.value) {
                out.push(b);
            }
        }
        out
    }

    /// Checks `text`, seen on `surface` of a request to `origin`: a placeholder
    /// there is allowed only when `allowed` says so for it.
    fn check_text(
        &self,
        text: &[u8],
        origin: Origin<'_>,
        surface: impl Fn() -> String,
        allowed: impl Fn(&Bound) -> bool,
    ) -> Result<(), Trip> {
        for b in self.found(text) {
            if !(b.toward(origin) && allowed(b)) {
                return Err(Trip {
                    service: b.service.clone(),
                    surface: surface(),
                    target: origin.shown(),
                });
            }
        }
        Ok(())
    }

    /// Checks a request to `origin` (its headers, path, query and `body`): every
    /// placeholder in it must be on its own surface, toward its own origin.
    pub fn check(
        &self,
        origin: Origin<'_>,
        uri: &http::Uri,
        headers: &http::HeaderMap,
        body: &[u8],
    ) -> Result<(), Trip> {
        self.check_head(origin, uri, headers)?;
        self.check_body(origin, body)
    }

    /// [`Placeholders::check`] of a request's head: its headers and target.
    pub fn check_head(
        &self,
        origin: Origin<'_>,
        uri: &http::Uri,
        headers: &http::HeaderMap,
    ) -> Result<(), Trip> {
        if self.bound.is_empty() {
            return Ok(());
        }
        for (name, value) in headers {
            let shown = || format!("header \"{}\"", name.as_str().escape_debug());
            let on_surface = |b: &Bound| b.headers.contains(name);
            self.check_text(value.as_bytes(), origin, shown, on_surface)?;
            if let Some(decoded) = basic_credentials(name, value.as_bytes()) {
                self.check_text(&decoded, origin, shown, on_surface)?;
            }
        }
        if let Some(a) = uri.authority() {
            let shown = || "the request's authority".to_string();
            self.check_text(a.as_str().as_bytes(), origin, shown, |_| false)?;
        }
        let path = || "the path".to_string();
        self.check_escaped(uri.path().as_bytes(), origin, path, |_| false)?;
        if let Some(query) = uri.query() {
            for pair in query.split('&') {
                let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
                let name = String::from_utf8_lossy(&percent_decode(name.as_bytes())).into_owned();
                let shown = || format!("query parameter \"{}\"", name.escape_debug());
                let on_surface = |b: &Bound| b.query.contains(&name);
                self.check_escaped(value.as_bytes(), origin, shown, on_surface)?;
                self.check_text(name.as_bytes(), origin, shown, |_| false)?;
            }
        }
        Ok(())
    }

    /// [`Placeholders::check`] of a request's body: no placeholder may ride it.
    pub fn check_body(&self, origin: Origin<'_>, body: &[u8]) -> Result<(), Trip> {
        self.check_text(body, origin, || "the body".to_string(), |_| false)
    }

    /// [`Placeholders::check_text`] of `text` as sent and, when it has a `%`,
    /// percent-decoded.
    fn check_escaped(
        &self,
        text: &[u8],
        origin: Origin<'_>,
        surface: impl Fn() -> String + Copy,
        allowed: impl Fn(&Bound) -> bool + Copy,
    ) -> Result<(), Trip> {
        self.check_text(text, origin, surface, allowed)?;
        if text.contains(&b'%') {
            self.check_text(&percent_decode(text), origin, surface, allowed)?;
        }
        Ok(())
    }

    /// Checks what can be read of a request that no placeholder may ride at
    /// all (a `CONNECT`, a request refused before its origin is known): its
    /// target and headers.
    pub fn check_anywhere(
        &self,
        target: &str,
        uri: &http::Uri,
        headers: &http::HeaderMap,
    ) -> Result<(), Trip> {
        if self.bound.is_empty() {
            return Ok(());
        }
        let trip = |b: &Bound, surface: String| Trip {
            service: b.service.clone(),
            surface,
            target: target.to_string(),
        };
        let whole = uri.to_string();
        for text in [whole.as_bytes().to_vec(), percent_decode(whole.as_bytes())] {
            if let Some(b) = self.found(&text).first() {
                return Err(trip(b, "the request target".to_string()));
            }
        }
        for (name, value) in headers {
            let decoded = basic_credentials(name, value.as_bytes()).unwrap_or_default();
            for text in [value.as_bytes(), &decoded] {
                if let Some(b) = self.found(text).first() {
                    let surface = format!("header \"{}\"", name.as_str().escape_debug());
                    return Err(trip(b, surface));
                }
            }
        }
        Ok(())
    }
}

impl Bound {
    fn toward(&self, origin: Origin<'_>) -> bool {
        self.scheme == origin.scheme
            && self.host.eq_ignore_ascii_case(origin.host)
            && self.port == origin.port
    }
}

/// The headers and query parameters an auth type puts its credential in.
fn surfaces(auth: &Auth) -> (Vec<HeaderName>, Vec<String>) {
    match auth {
        Auth::Header { header_name, .. } => (
            HeaderName::from_bytes(header_name.to_ascii_lowercase().as_bytes())
                .into_iter()
                .collect(),
            Vec::new(),
        ),
        Auth::Query { param, .. } => (Vec::new(), vec![param.clone()]),
        // Bearer, basic and the signing and token types all use Authorization.
        _ => (vec![http::header::AUTHORIZATION], Vec::new()),
    }
}

/// The decoded `user:password` of a `Basic` credential header.
fn basic_credentials(name: &HeaderName, value: &[u8]) -> Option<Vec<u8>> {
    if name != http::header::AUTHORIZATION && name != http::header::PROXY_AUTHORIZATION {
        return None;
    }
    let text = std::str::from_utf8(value).ok()?.trim();
    let (scheme, rest) = text.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    base64::engine::general_purpose::STANDARD
        .decode(rest.trim())
        .ok()
}

/// `%XX` decoded (`+` kept): enough to see a placeholder written with escapes.
fn percent_decode(text: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(text.len());
    let mut i = 0;
    while i < text.len() {
        let hex = |c: u8| (c as char).to_digit(16);
        if text[i] == b'%'
            && let (Some(h), Some(l)) = (
                text.get(i + 1).and_then(|c| hex(*c)),
                text.get(i + 2).and_then(|c| hex(*c)),
            )
        {
            out.push((h * 16 + l) as u8);
            i += 3;
        } else {
            out.push(text[i]);
            i += 1;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn service(name: &str, url: &str, auth: &str) -> Service {
        let text = format!("[services.{name}]\nurl = \"{url}\"\nauth = {auth}\n");
        let cfg = airlock_config::Config::parse(std::path::Path::new("t.toml"), &text).unwrap();
        cfg.services.get(name).unwrap().clone()
    }

    fn origin(host: &str) -> Origin<'_> {
        Origin {
            scheme: "https",
            host,
            port: 443,
        }
    }

    fn headers(pairs: &[(&str, &str)]) -> http::HeaderMap {
        pairs
            .iter()
            .map(|(k, v)| {
                (
                    HeaderName::from_bytes(k.as_bytes()).unwrap(),
                    http::HeaderValue::from_str(v).unwrap(),
                )
            })
            .collect()
    }

    fn github() -> (Placeholders, String) {
        let mut p = Placeholders::new();
        let s = service(
            "github",
            "https://api.github.com",
            r#"{ type = "bearer", secret = "gh" }"#,
        );
        let ph = p.for_service(&s).unwrap();
        (p, ph)
    }

    #[test]
    fn minted_once_per_service_random_and_prefixed() {
        let (mut p, ph) = github();
        assert!(ph.starts_with(PREFIX));
        assert_eq!(ph.len(), PREFIX.len() + 2 * RANDOM_BYTES);
        let s = service(
            "github",
            "https://api.github.com",
            r#"{ type = "bearer", secret = "gh" }"#,
        );
        assert_eq!(p.for_service(&s).unwrap(), ph);
        let (_, other) = github();
        assert_ne!(other, ph);
    }

    #[test]
    fn on_its_surface_toward_its_origin_it_passes() {
        let (p, ph) = github();
        let uri: http::Uri = "/user/repos?page=2".parse().unwrap();
        let h = headers(&[("authorization", &format!("token {ph}"))]);
        assert_eq!(p.check(origin("api.github.com"), &uri, &h, b""), Ok(()));
        // git's askpass flow: the token is the Basic password.
        let basic = base64::engine::general_purpose::STANDARD.encode(format!("x:{ph}"));
        let h = headers(&[("authorization", &format!("Basic {basic}"))]);
        assert_eq!(p.check(origin("API.github.com"), &uri, &h, b""), Ok(()));
    }

    #[test]
    fn anywhere_else_it_trips() {
        let (p, ph) = github();
        let root: http::Uri = "/".parse().unwrap();
        let auth = headers(&[("authorization", &format!("Bearer {ph}"))]);
        let basic = base64::engine::general_purpose::STANDARD.encode(format!("x:{ph}"));
        let cases: Vec<(Origin<'_>, http::Uri, http::HeaderMap, Vec<u8>, &str)> = vec![
            (
                origin("evil.example"),
                root.clone(),
                auth.clone(),
                vec![],
                "header \"authorization\"",
            ),
            (
                origin("evil.example"),
                root.clone(),
                headers(&[("authorization", &format!("Basic {basic}"))]),
                vec![],
                "header \"authorization\"",
            ),
            (
                Origin {
                    scheme: "https",
                    host: "api.github.com",
                    port: 8443,
                },
                root.clone(),
                auth.clone(),
                vec![],
                "header \"authorization\"",
            ),
            (
                Origin {
                    scheme: "http",
                    host: "api.github.com",
                    port: 443,
                },
                root.clone(),
                auth.clone(),
                vec![],
                "header \"authorization\"",
            ),
            (
                origin("api.github.com"),
                root.clone(),
                headers(&[("x-note", &ph)]),
                vec![],
                "header \"x-note\"",
            ),
            (
                origin("api.github.com"),
                format!("/gists/{ph}").parse().unwrap(),
                http::HeaderMap::new(),
                vec![],
                "the path",
            ),
            (
                origin("api.github.com"),
                format!("/x?q={}", ph.to_uppercase()).parse().unwrap(),
                http::HeaderMap::new(),
                vec![],
                "query parameter \"q\"",
            ),
            (
                origin("api.github.com"),
                format!("/x/%{:02x}{}", b'a', &ph[1..]).parse().unwrap(),
                http::HeaderMap::new(),
                vec![],
                "the path",
            ),
            (
                origin("api.github.com"),
                root.clone(),
                http::HeaderMap::new(),
                format!("{{\"body\":\"{ph}\"}}").into_bytes(),
                "the body",
            ),
        ];
        for (o, uri, h, body, surface) in cases {
            let trip = p.check(o, &uri, &h, &body).unwrap_err();
            assert_eq!(trip.service, "github");
            assert_eq!(trip.surface, surface, "{uri} {h:?}");
        }
    }

    #[test]
    fn header_and_query_auth_have_their_own_surface() {
        let mut p = Placeholders::new();
        let h = service(
            "anthropic",
            "https://api.anthropic.com",
            r#"{ type = "header", header_name = "X-Api-Key", secret = "a" }"#,
        );
        let q = service(
            "maps",
            "https://maps.example.com/api",
            r#"{ type = "query", param = "key", secret = "m" }"#,
        );
        let hp = p.for_service(&h).unwrap();
        let qp = p.for_service(&q).unwrap();
        let none = http::HeaderMap::new();
        let root: http::Uri = "/".parse().unwrap();
        let ok = headers(&[("x-api-key", &hp)]);
        assert_eq!(
            p.check(origin("api.anthropic.com"), &root, &ok, b""),
            Ok(())
        );
        let wrong = headers(&[("authorization", &format!("Bearer {hp}"))]);
        assert!(
            p.check(origin("api.anthropic.com"), &root, &wrong, b"")
                .is_err()
        );
        let uri: http::Uri = format!("/api/geo?key={qp}&x=1").parse().unwrap();
        assert_eq!(
            p.check(origin("maps.example.com"), &uri, &none, b""),
            Ok(())
        );
        let uri: http::Uri = format!("/api/geo?other={qp}").parse().unwrap();
        assert!(
            p.check(origin("maps.example.com"), &uri, &none, b"")
                .is_err()
        );
        // One service's placeholder on the other's surface.
        let uri: http::Uri = format!("/api/geo?key={hp}").parse().unwrap();
        let trip = p
            .check(origin("maps.example.com"), &uri, &none, b"")
            .unwrap_err();
        assert_eq!(trip.service, "anthropic");
    }

    #[test]
    fn each_secret_of_a_service_has_its_own_placeholder() {
        let mut p = Placeholders::new();
        let aws = service(
            "aws",
            "https://sts.amazonaws.com",
            r#"{ type = "aws-sigv4", region = "us-east-1", aws_service = "sts", access_key_id = "id", secret_access_key = "key" }"#,
        );
        let id = p.for_service(&aws).unwrap();
        assert_eq!(p.for_secret(&aws, "id").unwrap(), id);
        let key = p.for_secret(&aws, "key").unwrap();
        assert_ne!(key, id);
        assert_eq!(p.for_secret(&aws, "other"), None);
        assert_eq!(p.services(), vec!["aws"]);
        // The key id rides in the signature's Credential; the secret key
        // never leaves the client.
        let h = headers(&[(
            "authorization",
            &format!("AWS4-HMAC-SHA256 Credential={id}/20260101/us-east-1/sts/aws4_request"),
        )]);
        let root: http::Uri = "/".parse().unwrap();
        assert_eq!(p.check(origin("sts.amazonaws.com"), &root, &h, b""), Ok(()));
        let body = format!("Action=GetCallerIdentity&k={key}");
        assert!(
            p.check(origin("sts.amazonaws.com"), &root, &h, body.as_bytes())
                .is_err()
        );
    }

    #[test]
    fn an_absolute_target_s_authority_may_carry_none() {
        let (p, ph) = github();
        let uri: http::Uri = format!("https://{ph}@api.github.com/").parse().unwrap();
        let trip = p
            .check(origin("api.github.com"), &uri, &http::HeaderMap::new(), b"")
            .unwrap_err();
        assert_eq!(trip.surface, "the request's authority");
    }

    #[test]
    fn a_connect_may_carry_none() {
        let (p, ph) = github();
        let uri: http::Uri = format!("{ph}.evil.example:443").parse().unwrap();
        let trip = p
            .check_anywhere("x", &uri, &http::HeaderMap::new())
            .unwrap_err();
        assert_eq!(trip.surface, "the request target");
        let uri: http::Uri = "api.github.com:443".parse().unwrap();
        let h = headers(&[("user-agent", &ph)]);
        assert!(p.check_anywhere("x", &uri, &h).is_err());
        assert!(p.check_anywhere("x", &uri, &http::HeaderMap::new()).is_ok());
    }

    #[test]
    fn percent_decoding() {
        assert_eq!(percent_decode(b"a%41%zz%4"), b"aA%zz%4");
    }
}
