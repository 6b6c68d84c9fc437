//! `Authorization: Bearer <secret>`.

use std::fmt;

use http::HeaderName;
use http::header::AUTHORIZATION;
use secrecy::{ExposeSecret, SecretSlice};

use crate::{BoxFuture, InjectError, Injector, NamedSecret, OutgoingRequest};

const OWNED: &[HeaderName] = &[AUTHORIZATION];

/// Bearer auth: sets `Authorization: Bearer <secret>`, marked sensitive.
///
/// The value is checked once, when the injector is built: it must be non-empty
/// visible ASCII (`!`…`~`), which is what a header can carry without ambiguity.
pub struct Bearer {
    token: NamedSecret,
}

impl Bearer {
    /// A bearer injector for the vault secret `secret_name` whose value is `value`.
    pub fn new(
        secret_name: impl Into<String>,
        value: SecretSlice<u8>,
    ) -> Result<Self, InjectError> {
        let secret_name = secret_name.into();
        crate::check_ascii(
            &secret_name,
            "bearer",
            value.expose_secret(),
            b'!',
            "a bearer token must be visible ASCII without spaces or control characters",
        )?;
        Ok(Bearer {
            token: NamedSecret::new(secret_name, value),
        })
    }

    /// The vault secret's name.
    pub fn secret_name(&self) -> &str {
        &self.token.name
    }
}

impl fmt::Debug for Bearer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Bearer")
            .field("secret_name", &self.token.name)
            .finish_non_exhaustive()
    }
}

impl Injector for Bearer {
    fn kind(&self) -> &'static str {
        "bearer"
    }

    fn owned_headers(&self) -> &[HeaderName] {
        OWNED
    }

    fn visit_emitted_secrets(&self, visit: &mut dyn FnMut(&str, &[u8])) {
        self.token.visit(visit);
    }

    fn inject<'a>(
        &'a self,
        req: &'a mut OutgoingRequest,
    ) -> BoxFuture<'a, Result<(), InjectError>> {
        Box::pin(async move {
            let value = self.token.header_value("bearer", b"Bearer ")?;
            // `insert` replaces every existing value: exactly one Authorization.
            req.headers.insert(AUTHORIZATION, value);
            Ok(())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;
    use http::{HeaderMap, HeaderValue, Method};

    fn secret(v: &[u8]) -> SecretSlice<u8> {
        SecretSlice::from(v.to_vec())
    }

    #[tokio::test]
    async fn sets_one_sensitive_header() {
        let b = Bearer::new("api", secret(b"tok_123")).unwrap();
        let mut headers = HeaderMap::new();
        headers.append(AUTHORIZATION, HeaderValue::from_static("Bearer agent"));
        headers.append(AUTHORIZATION, HeaderValue::from_static("Basic x"));
        let mut req =
            OutgoingRequest::new(Method::POST, "http://h", "/", None, headers, Bytes::new());
        b.inject(&mut req).await.unwrap();
        let all: Vec<_> = req.headers.get_all(AUTHORIZATION).iter().collect();
        assert_eq!(all.len(), 1);
        assert_eq!(all[0].as_bytes(), b"Bearer tok_123");
        assert!(all[0].is_sensitive());
    }

    #[test]
    fn refuses_bad_values_without_echoing_them() {
        for bad in [&b""[..], b"zq9 zq9", b"tok\r\nX: y", b"caf\xc3\xa9", b"\0"] {
            let err = Bearer::new("api", secret(bad)).err().unwrap();
            let msg = err.to_string();
            assert!(msg.contains("\"api\""), "{msg}");
            if !bad.is_empty() {
                assert!(
                    !msg.as_bytes().windows(bad.len()).any(|w| w == bad),
                    "{msg}"
                );
            }
        }
    }

    #[test]
    fn emits_its_secret_and_hides_it_in_debug() {
        let b = Bearer::new("api", secret(b"tok_123")).unwrap();
        let mut seen = Vec::new();
        b.visit_emitted_secrets(&mut |name, v| seen.push((name.to_string(), v.to_vec())));
        assert_eq!(seen, vec![("api".to_string(), b"tok_123".to_vec())]);
        assert!(!format!("{b:?}").contains("tok_123"));
        assert_eq!(b.owned_headers(), &[AUTHORIZATION]);
    }
}
