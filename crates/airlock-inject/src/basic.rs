//! `basic`, `header` and `query` auth: a static secret placed on the request.

use std::fmt;

use base64::Engine as _;
use http::header::AUTHORIZATION;
use http::{HeaderName, HeaderValue};
use secrecy::{ExposeSecret, SecretSlice};
use zeroize::Zeroizing;

use crate::{BoxFuture, InjectError, Injector, NamedSecret, OutgoingRequest};

const AUTHORIZATION_ONLY: &[HeaderName] = &[AUTHORIZATION];

/// Basic auth (RFC 7617): `Authorization: Basic base64(username ":" password)`,
/// marked sensitive. Never `Bearer Basic …`.
pub struct Basic {
    username: String,
    password: NamedSecret,
}

impl Basic {
    /// Basic auth for `username` (not secret; must not contain `:`) with the vault
    /// secret `secret_name` as the password.
    pub fn new(
        username: impl Into<String>,
        secret_name: impl Into<String>,
        password: SecretSlice<u8>,
    ) -> Result<Self, InjectError> {
        let username = username.into();
        let secret_name = secret_name.into();
        if username.contains(':') || username.chars().any(char::is_control) {
            return Err(InjectError::InvalidParameter {
                auth: "basic",
                reason: "the username must not contain `:` or control characters".into(),
            });
        }
        if password.expose_secret().is_empty() {
            return Err(InjectError::InvalidSecret {
                secret: secret_name,
                auth: "basic",
                reason: "the value is empty",
            });
        }
        Ok(Basic {
            username,
            password: NamedSecret::new(secret_name, password),
        })
    }

    fn header_value(&self) -> Result<HeaderValue, InjectError> {
        let pw = self.password.value.expose_secret();
        let mut plain = Zeroizing::new(Vec::with_capacity(self.username.len() + 1 + pw.len()));
        plain.extend_from_slice(self.username.as_bytes());
        plain.push(b':');
        plain.extend_from_slice(pw);
        let mut b64 = Zeroizing::new(String::with_capacity(plain.len() * 4 / 3 + 4));
        base64::engine::general_purpose::STANDARD.encode_string(&*plain, &mut b64);
        self.password
            .sensitive_header("basic", &[b"Basic ", b64.as_bytes()])
    }
}

impl fmt::Debug for Basic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Basic")
            .field("username", &self.username)
            .field("secret_name", &self.password.name)
            .finish_non_exhaustive()
    }
}

impl Injector for Basic {
    fn kind(&self) -> &'static str {
        "basic"
    }

    fn owned_headers(&self) -> &[HeaderName] {
        AUTHORIZATION_ONLY
    }

    fn visit_emitted_secrets(&self, visit: &mut dyn FnMut(&str, &[u8])) {
        // The scrubber finds the password inside the base64 of "user:password" at any
        // alignment, so the password alone is enough.
        self.password.visit(visit);
    }

    fn inject<'a>(
        &'a self,
        req: &'a mut OutgoingRequest,
    ) -> BoxFuture<'a, Result<(), InjectError>> {
        Box::pin(async move {
            let value = self.header_value()?;
            req.headers.insert(AUTHORIZATION, value);
            Ok(())
        })
    }
}

/// An API key in a header: `<name>: <prefix><key>`, marked sensitive.
///
/// The key must be printable ASCII without leading or trailing spaces (what a header
/// carries unambiguously); the prefix (`"Token "`, `"Bot "`…) is not secret.
pub struct HeaderKey {
    owned: [HeaderName; 1],
    prefix: String,
    key: NamedSecret,
}

impl HeaderKey {
    /// Puts the vault secret `secret_name` in header `header_name`, after `prefix`.
    pub fn new(
        header_name: &str,
        prefix: impl Into<String>,
        secret_name: impl Into<String>,
        value: SecretSlice<u8>,
    ) -> Result<Self, InjectError> {
        let secret_name = secret_name.into();
        let prefix = prefix.into();
        let name = HeaderName::from_bytes(header_name.as_bytes()).map_err(|_| {
            InjectError::InvalidParameter {
                auth: "header",
                reason: format!(
                    "\"{}\" is not a valid header name",
                    header_name.escape_debug()
                ),
            }
        })?;
        if !prefix.bytes().all(|b| (0x20..=0x7e).contains(&b)) {
            return Err(InjectError::InvalidParameter {
                auth: "header",
                reason: "the prefix must be printable ASCII".into(),
            });
        }
        check_printable(&secret_name, "header", value.expose_secret())?;
        Ok(HeaderKey {
            owned: [name],
            prefix,
            key: NamedSecret::new(secret_name, value),
        })
    }

    /// The header this injector sets.
    pub fn header_name(&self) -> &HeaderName {
        &self.owned[0]
    }
}

/// A key sent as text: non-empty printable ASCII, no leading/trailing space.
fn check_printable(secret: &str, auth: &'static str, v: &[u8]) -> Result<(), InjectError> {
    crate::check_ascii(
        secret,
        auth,
        v,
        b' ',
        "the value must be printable ASCII without control characters or line breaks",
    )?;
    if v.first() == Some(&b' ') || v.last() == Some(&b' ') {
        return Err(InjectError::InvalidSecret {
            secret: secret.to_string(),
            auth,
            reason: "the value starts or ends with a space",
        });
    }
    Ok(())
}

impl fmt::Debug for HeaderKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HeaderKey")
            .field("header_name", &self.owned[0])
            .field("secret_name", &self.key.name)
            .finish_non_exhaustive()
    }
}

impl Injector for HeaderKey {
    fn kind(&self) -> &'static str {
        "header"
    }

    fn owned_headers(&self) -> &[HeaderName] {
        &self.owned
    }

    fn visit_emitted_secrets(&self, visit: &mut dyn FnMut(&str, &[u8])) {
        self.key.visit(visit);
    }

    fn inject<'a>(
        &'a self,
        req: &'a mut OutgoingRequest,
    ) -> BoxFuture<'a, Result<(), InjectError>> {
        Box::pin(async move {
            let value = self.key.header_value("header", self.prefix.as_bytes())?;
            // `insert` replaces every value an agent may have slipped past the engine.
            req.headers.insert(self.owned[0].clone(), value);
            Ok(())
        })
    }
}

/// An API key in a query parameter: `?<param>=<key>`, percent-encoded.
///
/// The URL then holds a credential: the engine never logs it, and the scrubber knows
/// the key's URL-encoded forms.
pub struct QueryKey {
    owned: [String; 1],
    key: NamedSecret,
}

impl QueryKey {
    /// Puts the vault secret `secret_name` in query parameter `param`.
    pub fn new(
        param: impl Into<String>,
        secret_name: impl Into<String>,
        value: SecretSlice<u8>,
    ) -> Result<Self, InjectError> {
        let param = param.into();
        let secret_name = secret_name.into();
        if param.is_empty() || param.chars().any(char::is_control) {
            return Err(InjectError::InvalidParameter {
                auth: "query",
                reason: "the parameter name must be non-empty, without control characters".into(),
            });
        }
        if value.expose_secret().is_empty() {
            return Err(InjectError::InvalidSecret {
                secret: secret_name,
                auth: "query",
                reason: "the value is empty",
            });
        }
        Ok(QueryKey {
            owned: [param],
            key: NamedSecret::new(secret_name, value),
        })
    }
}

impl fmt::Debug for QueryKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("QueryKey")
            .field("param", &self.owned[0])
            .field("secret_name", &self.key.name)
            .finish_non_exhaustive()
    }
}

impl Injector for QueryKey {
    fn kind(&self) -> &'static str {
        "query"
    }

    fn owned_query_params(&self) -> &[String] {
        &self.owned
    }

    fn visit_emitted_secrets(&self, visit: &mut dyn FnMut(&str, &[u8])) {
        self.key.visit(visit);
    }

    fn inject<'a>(
        &'a self,
        req: &'a mut OutgoingRequest,
    ) -> BoxFuture<'a, Result<(), InjectError>> {
        Box::pin(async move {
            req.append_query_pair(&self.owned[0], self.key.value.expose_secret());
            Ok(())
        })
    }
}
