//! OAuth 1.0a, HMAC-SHA1 (RFC 5849 §3): a small signer of our own.

use std::fmt;
use std::sync::Arc;

use aws_lc_rs::hmac;
use base64::Engine as _;
use http::header::{AUTHORIZATION, CONTENT_TYPE};
use http::{HeaderName, HeaderValue};
use secrecy::ExposeSecret;
use zeroize::Zeroizing;

use crate::request::percent_encode_into;
use crate::{BoxFuture, Clock, InjectError, Injector, NamedSecret, OutgoingRequest};

const OWNED_HEADERS: &[HeaderName] = &[AUTHORIZATION];

/// The protocol parameters: an agent copy in the query would be signed and sent twice
/// (the server must refuse duplicates) or could replace ours, so the engine strips them.
const PROTOCOL_PARAMS: &[&str] = &[
    "oauth_consumer_key",
    "oauth_token",
    "oauth_signature_method",
    "oauth_signature",
    "oauth_timestamp",
    "oauth_nonce",
    "oauth_version",
    "oauth_callback",
    "oauth_verifier",
    "oauth_body_hash",
];

/// OAuth 1.0a with HMAC-SHA1, protocol parameters in the `Authorization` header.
///
/// The signature base string (RFC 5849 §3.4.1) covers the method, the base string URI
/// (scheme, host, non-default port, path — exactly what is sent), the query parameters,
/// the protocol parameters and, when the body is `application/x-www-form-urlencoded`,
/// the form parameters. Other bodies are not covered (the RFC's rule).
pub struct OAuth1 {
    consumer_key: NamedSecret,
    consumer_secret: NamedSecret,
    token: Option<(NamedSecret, NamedSecret)>,
    key: hmac::Key,
    clock: Arc<dyn Clock>,
    owned_params: Vec<String>,
    send_version: bool,
}

impl OAuth1 {
    /// A signer for the consumer (client) credentials and, for three-legged OAuth,
    /// the token and its secret.
    pub fn new(
        consumer_key: NamedSecret,
        consumer_secret: NamedSecret,
        token: Option<(NamedSecret, NamedSecret)>,
        clock: Arc<dyn Clock>,
    ) -> Result<Self, InjectError> {
        let nonempty = |s: &NamedSecret| {
            if s.value.expose_secret().is_empty() {
                Err(InjectError::InvalidSecret {
                    secret: s.name.clone(),
                    auth: "oauth1",
                    reason: "the value is empty",
                })
            } else {
                Ok(())
            }
        };
        nonempty(&consumer_key)?;
        if let Some((t, _)) = &token {
            nonempty(t)?;
        }
        // key = encode(consumer_secret) "&" encode(token_secret)  (§3.4.2)
        let mut key = Zeroizing::new(String::new());
        percent_encode_into(consumer_secret.value.expose_secret(), &mut key);
        key.push('&');
        if let Some((_, ts)) = &token {
            percent_encode_into(ts.value.expose_secret(), &mut key);
        }
        let key = hmac::Key::new(hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY, key.as_bytes());
        Ok(OAuth1 {
            consumer_key,
            consumer_secret,
            token,
            key,
            clock,
            owned_params: PROTOCOL_PARAMS.iter().map(|s| (*s).to_string()).collect(),
            send_version: true,
        })
    }

    /// Whether `oauth_version="1.0"` is sent (and signed). On by default: it is
    /// OPTIONAL in RFC 5849 §3.1, but servers of the OAuth Core 1.0 era expect it. The
    /// RFC's own examples omit it.
    pub fn with_version_param(mut self, send: bool) -> Self {
        self.send_version = send;
        self
    }

    /// The `Authorization` header value for `req` with this `timestamp` and `nonce`
    /// (what [`Injector::inject`] computes with the clock and 16 random bytes), for
    /// tests and reproducible vectors. Sensitive: it carries the token.
    pub fn authorization(
        &self,
        req: &OutgoingRequest,
        timestamp: u64,
        nonce: &str,
    ) -> Result<HeaderValue, InjectError> {
        let timestamp = timestamp.to_string();
        let mut oauth: Vec<(&str, &[u8])> = vec![
            (
                "oauth_consumer_key",
                self.consumer_key.value.expose_secret(),
            ),
            ("oauth_nonce", nonce.as_bytes()),
            ("oauth_signature_method", b"HMAC-SHA1"),
            ("oauth_timestamp", timestamp.as_bytes()),
        ];
        if self.send_version {
            oauth.push(("oauth_version", b"1.0"));
        }
        if let Some((t, _)) = &self.token {
            oauth.push(("oauth_token", t.value.expose_secret()));
        }
        let base = signature_base_string(req, &oauth)?;
        let tag = hmac::sign(&self.key, base.as_bytes());
        let signature = base64::engine::general_purpose::STANDARD.encode(tag.as_ref());

        let mut header = Zeroizing::new(String::from("OAuth "));
        oauth.push(("oauth_signature", signature.as_bytes()));
        oauth.sort_by(|a, b| a.0.cmp(b.0));
        for (i, (name, value)) in oauth.iter().enumerate() {
            if i > 0 {
                header.push_str(", ");
            }
            header.push_str(name);
            header.push_str("=\"");
            percent_encode_into(value, &mut header);
            header.push('"');
        }
        let mut v = HeaderValue::from_str(&header).map_err(|_| InjectError::Request {
            auth: "oauth1",
            reason: "the Authorization header could not be built".into(),
        })?;
        v.set_sensitive(true);
        Ok(v)
    }
}

/// RFC 5849 §3.4.1: `METHOD&encode(base URI)&encode(sorted, encoded parameters)`.
pub(crate) fn signature_base_string(
    req: &OutgoingRequest,
    oauth: &[(&str, &[u8])],
) -> Result<Zeroizing<String>, InjectError> {
    // Parameters, each name and value percent-encoded (§3.6), then sorted (§3.4.1.3.2).
    let mut params: Vec<(Zeroizing<String>, Zeroizing<String>)> = Vec::new();
    let enc = |v: &[u8]| {
        let mut s = Zeroizing::new(String::with_capacity(v.len() * 3));
        percent_encode_into(v, &mut s);
        s
    };
    if let Some(q) = req.query() {
        for (n, v) in form_pairs(q.as_bytes()) {
            params.push((enc(&n), enc(&v)));
        }
    }
    if is_form(req) {
        for (n, v) in form_pairs(req.body()) {
            if n.starts_with(b"oauth_") {
                return Err(InjectError::Request {
                    auth: "oauth1",
                    reason: "the form body carries OAuth protocol parameters (oauth_…); airlock sets them".into(),
                });
            }
            params.push((enc(&n), enc(&v)));
        }
    }
    for (n, v) in oauth {
        params.push((enc(n.as_bytes()), enc(v)));
    }
    params.sort_by(|a, b| (a.0.as_str(), a.1.as_str()).cmp(&(b.0.as_str(), b.1.as_str())));
    let mut normalized = Zeroizing::new(String::new());
    for (i, (n, v)) in params.iter().enumerate() {
        if i > 0 {
            normalized.push('&');
        }
        normalized.push_str(n);
        normalized.push('=');
        normalized.push_str(v);
    }

    // Base string URI (§3.4.1.2): lower-case scheme and host, port only if not the
    // default, the path as sent.
    let scheme = req.scheme().to_ascii_lowercase();
    let authority = req.authority().to_ascii_lowercase();
    let authority = match (scheme.as_str(), authority.rsplit_once(':')) {
        ("http", Some((host, "80"))) | ("https", Some((host, "443"))) => host.to_string(),
        _ => authority,
    };
    let base_uri = format!("{scheme}://{authority}{}", req.path());

    let mut out = Zeroizing::new(String::new());
    percent_encode_into(req.method().as_str().as_bytes(), &mut out);
    out.push('&');
    percent_encode_into(base_uri.as_bytes(), &mut out);
    out.push('&');
    percent_encode_into(normalized.as_bytes(), &mut out);
    Ok(out)
}

/// Whether the body's parameters are part of the signature (§3.4.1.3.1): a single-part
/// `application/x-www-form-urlencoded` body.
fn is_form(req: &OutgoingRequest) -> bool {
    let mut values = req.headers.get_all(CONTENT_TYPE).iter();
    let (Some(ct), None) = (values.next(), values.next()) else {
        return false;
    };
    let Ok(ct) = ct.to_str() else { return false };
    let mime = ct.split(';').next().unwrap_or("").trim();
    mime.eq_ignore_ascii_case("application/x-www-form-urlencoded")
}

/// A decoded name or value, wiped on drop.
pub(crate) type Bytes = Zeroizing<Vec<u8>>;

/// `application/x-www-form-urlencoded` pairs, decoded to bytes (`+` is a space; a `%`
/// not followed by two hex digits stays literal). Empty pieces (`a&&b`) are skipped.
pub(crate) fn form_pairs(data: &[u8]) -> Vec<(Bytes, Bytes)> {
    fn decode(s: &[u8]) -> Zeroizing<Vec<u8>> {
        let hex = |b: u8| {
            char::from(b)
                .to_digit(16)
                .and_then(|d| u8::try_from(d).ok())
        };
        let mut out = Zeroizing::new(Vec::with_capacity(s.len()));
        let mut i = 0;
        while i < s.len() {
            match s[i] {
                b'+' => {
                    out.push(b' ');
                    i += 1;
                }
                b'%' => match (
                    s.get(i + 1).and_then(|&x| hex(x)),
                    s.get(i + 2).and_then(|&x| hex(x)),
                ) {
                    (Some(h), Some(l)) => {
                        out.push(h << 4 | l);
                        i += 3;
                    }
                    _ => {
                        out.push(b'%');
                        i += 1;
                    }
                },
                b => {
                    out.push(b);
                    i += 1;
                }
            }
        }
        out
    }
    data.split(|&b| b == b'&')
        .filter(|p| !p.is_empty())
        .map(|p| match p.iter().position(|&b| b == b'=') {
            Some(i) => (decode(&p[..i]), decode(&p[i + 1..])),
            None => (decode(p), Zeroizing::new(Vec::new())),
        })
        .collect()
}

impl fmt::Debug for OAuth1 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OAuth1")
            .field("consumer_key", &self.consumer_key)
            .field("consumer_secret", &self.consumer_secret)
            .field("token", &self.token)
            .finish_non_exhaustive()
    }
}

impl Injector for OAuth1 {
    fn kind(&self) -> &'static str {
        "oauth1"
    }

    fn owned_headers(&self) -> &[HeaderName] {
        OWNED_HEADERS
    }

    fn owned_query_params(&self) -> &[String] {
        &self.owned_params
    }

    fn visit_emitted_secrets(&self, visit: &mut dyn FnMut(&str, &[u8])) {
        let mut all = vec![&self.consumer_key, &self.consumer_secret];
        if let Some((t, ts)) = &self.token {
            all.push(t);
            all.push(ts);
        }
        for s in all {
            visit(&s.name, s.value.expose_secret());
        }
    }

    fn inject<'a>(
        &'a self,
        req: &'a mut OutgoingRequest,
    ) -> BoxFuture<'a, Result<(), InjectError>> {
        Box::pin(async move {
            let nonce = crate::random_hex(16)?;
            let value = self.authorization(req, self.clock.unix_seconds(), &nonce)?;
            req.headers.insert(AUTHORIZATION, value);
            Ok(())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::{HeaderMap, Method};

    #[test]
    fn rfc5849_3_4_1_base_string() {
        // RFC 5849 §3.4.1.1: the example request and its signature base string.
        let mut headers = HeaderMap::new();
        headers.insert(
            CONTENT_TYPE,
            HeaderValue::from_static("application/x-www-form-urlencoded"),
        );
        let req = OutgoingRequest::new(
            Method::POST,
            "http://example.com",
            "/request",
            Some("b5=%3D%253D&a3=a&c%40=&a2=r%20b".into()),
            headers,
            bytes::Bytes::from_static(b"c2&a3=2+q"),
        );
        let oauth: Vec<(&str, &[u8])> = vec![
            ("oauth_consumer_key", b"9djdj82h48djs9d2"),
            ("oauth_token", b"kkk9d7dh3k39sjv7"),
            ("oauth_signature_method", b"HMAC-SHA1"),
            ("oauth_timestamp", b"137131201"),
            ("oauth_nonce", b"7d8f3e4a"),
        ];
        let base = signature_base_string(&req, &oauth).unwrap();
        assert_eq!(
            base.as_str(),
            "POST&http%3A%2F%2Fexample.com%2Frequest&a2%3Dr%2520b%26a3%3D2%2520q\
             %26a3%3Da%26b5%3D%253D%25253D%26c%2540%3D%26c2%3D%26oauth_consumer_\
             key%3D9djdj82h48djs9d2%26oauth_nonce%3D7d8f3e4a%26oauth_signature_m\
             ethod%3DHMAC-SHA1%26oauth_timestamp%3D137131201%26oauth_token%3Dkkk\
             9d7dh3k39sjv7"
        );
    }

    #[test]
    fn base_uri_drops_default_ports_only() {
        let req = |origin: &str| {
            OutgoingRequest::new(
                Method::GET,
                origin,
                "/r%20v/X",
                None,
                HeaderMap::new(),
                bytes::Bytes::new(),
            )
        };
        let b = signature_base_string(&req("http://EXAMPLE.COM:80"), &[]).unwrap();
        assert!(
            b.starts_with("GET&http%3A%2F%2Fexample.com%2Fr%2520v%2FX&"),
            "{}",
            *b
        );
        let b = signature_base_string(&req("https://www.example.net:8080"), &[]).unwrap();
        assert!(
            b.starts_with("GET&https%3A%2F%2Fwww.example.net%3A8080%2Fr"),
            "{}",
            *b
        );
    }

    #[test]
    fn form_pairs_decode() {
        let p = form_pairs(b"a=1&b&c=%3D%2&&d=x+y");
        let p: Vec<(Vec<u8>, Vec<u8>)> = p
            .into_iter()
            .map(|(a, b)| (a.to_vec(), b.to_vec()))
            .collect();
        assert_eq!(
            p,
            vec![
                (b"a".to_vec(), b"1".to_vec()),
                (b"b".to_vec(), vec![]),
                (b"c".to_vec(), b"=%2".to_vec()),
                (b"d".to_vec(), b"x y".to_vec()),
            ]
        );
    }
}
