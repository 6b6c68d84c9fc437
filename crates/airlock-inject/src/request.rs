//! The request an injector works on.

use std::fmt;

use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Method};
use zeroize::Zeroizing;

/// An upstream request on its way out, as the engine built it.
///
/// The origin and path are fixed: an injector can read them (signers need them) but
/// only the engine sets them. The query can only grow, through
/// [`OutgoingRequest::append_query_pair`]. Headers are open to the injector
/// ([`OutgoingRequest::headers`]); the body is read-only.
///
/// `Debug` shows the method, origin and path only: after injection the headers and
/// the query may hold a credential.
pub struct OutgoingRequest {
    method: Method,
    origin: String,
    path: String,
    query: Option<String>,
    /// The headers that will be sent: the agent's, filtered by the engine, plus what
    /// injectors add. Set credential values with `set_sensitive(true)`.
    pub headers: HeaderMap,
    body: Bytes,
}

impl OutgoingRequest {
    /// A request to `origin` (`scheme://host[:port]`, no trailing `/`) for `path`
    /// (starts with `/`) and `query` (without `?`). The engine is the only caller
    /// that matters; it validates every part before and after injection.
    pub fn new(
        method: Method,
        origin: impl Into<String>,
        path: impl Into<String>,
        query: Option<String>,
        headers: HeaderMap,
        body: Bytes,
    ) -> Self {
        OutgoingRequest {
            method,
            origin: origin.into(),
            path: path.into(),
            query,
            headers,
            body,
        }
    }

    /// The HTTP method.
    pub fn method(&self) -> &Method {
        &self.method
    }

    /// `scheme://host[:port]`, exactly as the service is configured.
    pub fn origin(&self) -> &str {
        &self.origin
    }

    /// The authority (`host[:port]`): what the `Host` header will carry.
    pub fn authority(&self) -> &str {
        self.origin
            .split_once("://")
            .map_or(self.origin.as_str(), |(_, a)| a)
    }

    /// The scheme (`https`, `http`).
    pub fn scheme(&self) -> &str {
        self.origin
            .split_once("://")
            .map_or("", |(scheme, _)| scheme)
    }

    /// The path: service base path joined with the normalized target path.
    pub fn path(&self) -> &str {
        &self.path
    }

    /// The query without `?`, if any. May hold a credential after query injection.
    pub fn query(&self) -> Option<&str> {
        self.query.as_deref()
    }

    /// The body.
    pub fn body(&self) -> &Bytes {
        &self.body
    }

    /// The full URL string: origin + path + `?query`. May hold a credential after
    /// query injection: never log it.
    pub fn url(&self) -> String {
        let mut url = String::with_capacity(
            self.origin.len() + self.path.len() + self.query.as_ref().map_or(0, |q| q.len() + 1),
        );
        url.push_str(&self.origin);
        url.push_str(&self.path);
        if let Some(q) = &self.query {
            url.push('?');
            url.push_str(q);
        }
        url
    }

    /// Appends `name=value` to the query, percent-encoding both (everything except
    /// RFC 3986 unreserved characters becomes `%XX`), with `&` as separator.
    pub fn append_query_pair(&mut self, name: &str, value: &[u8]) {
        let q = self.query.get_or_insert_with(String::new);
        if !q.is_empty() {
            q.push('&');
        }
        percent_encode_into(name.as_bytes(), q);
        q.push('=');
        percent_encode_into(value, q);
    }

    /// Splits the request into its parts, for the engine to send.
    pub fn into_parts(self) -> (Method, String, HeaderMap, Bytes) {
        let url = self.url();
        (self.method, url, self.headers, self.body)
    }
}

impl fmt::Debug for OutgoingRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OutgoingRequest")
            .field("method", &self.method)
            .field("origin", &self.origin)
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

/// `parts` joined into a header value marked sensitive (it holds a credential), or
/// `None` if they make no valid header value. The joined copy is wiped.
pub(crate) fn sensitive_value(parts: &[&[u8]]) -> Option<HeaderValue> {
    let mut buf = Zeroizing::new(Vec::with_capacity(parts.iter().map(|p| p.len()).sum()));
    for p in parts {
        buf.extend_from_slice(p);
    }
    let mut v = HeaderValue::from_bytes(&buf).ok()?;
    v.set_sensitive(true);
    Some(v)
}

/// RFC 3986 percent-encoding: everything except unreserved characters
/// (`A-Z a-z 0-9 - . _ ~`) becomes `%XX` (upper-case hex). OAuth 1.0a's encoding (§3.6).
pub(crate) fn percent_encode_into(bytes: &[u8], out: &mut String) {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    for &b in bytes {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            out.push('%');
            out.push(char::from(HEX[usize::from(b >> 4)]));
            out.push(char::from(HEX[usize::from(b & 15)]));
        }
    }
}

/// `application/x-www-form-urlencoded` for a value: space as `+`, every other byte but
/// unreserved characters as `%XX`.
pub(crate) fn form_encode_into(bytes: &[u8], out: &mut String) {
    for chunk in bytes.split(|&b| b == b' ').enumerate() {
        if chunk.0 > 0 {
            out.push('+');
        }
        percent_encode_into(chunk.1, out);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(query: Option<&str>) -> OutgoingRequest {
        OutgoingRequest::new(
            Method::GET,
            "https://api.example.com:8443",
            "/v1/x",
            query.map(str::to_string),
            HeaderMap::new(),
            Bytes::new(),
        )
    }

    #[test]
    fn parts() {
        let r = req(Some("a=1"));
        assert_eq!(r.authority(), "api.example.com:8443");
        assert_eq!(r.scheme(), "https");
        assert_eq!(r.url(), "https://api.example.com:8443/v1/x?a=1");
    }

    #[test]
    fn append_query() {
        let mut r = req(None);
        r.append_query_pair("api key", b"a/b+c=d&e");
        assert_eq!(r.query(), Some("api%20key=a%2Fb%2Bc%3Dd%26e"));
        let mut r = req(Some(""));
        r.append_query_pair("k", b"v");
        assert_eq!(r.query(), Some("k=v"));
        let mut r = req(Some("a=1"));
        r.append_query_pair("k", b"v~._-");
        assert_eq!(r.query(), Some("a=1&k=v~._-"));
    }

    #[test]
    fn debug_hides_headers_and_query() {
        let mut r = req(Some("token=abc"));
        r.headers
            .insert("x-api-key", http::HeaderValue::from_static("zzz"));
        let d = format!("{r:?}");
        assert!(!d.contains("abc") && !d.contains("zzz"), "{d}");
    }
}
