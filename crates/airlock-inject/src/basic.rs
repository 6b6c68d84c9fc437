//! `basic`, `header` and `query` auth: a static secret placed on the request.

use std::fmt;

use base64::Engine as _;
use http::header::AUTHORIZATION;
use http::{HeaderName, HeaderValue};
use secrecy::{ExposeSecret, SecretSlice};
use zeroize::Zeroizing;

use crate::{BoxFuture, InjectError, Injector, OutgoingRequest};

const AUTHORIZATION_ONLY: &[HeaderName] = &[AUTHORIZATION];

/// Basic auth (RFC 7617): `Authorization: Basic base64(username ":" password)`,
/// marked sensitive. Never `Bearer Basic …`.
pub struct Basic {
    secret_name: String,
    username: String,
    password: SecretSlice<u8>,
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
            secret_name,
            username,
            password,
        })
    }

    fn header_value(&self) -> Result<HeaderValue, InjectError> {
        let pw = self.password.expose_secret();
        let mut plain = Zeroizing::new(Vec::with_capacity(self.username.len() + 1 + pw.len()));
        plain.extend_from_slice(self.username.as_bytes());
        plain.push(b':');
        plain.extend_from_slice(pw);
        let mut value = Zeroizing::new(String::with_capacity(6 + plain.len() * 4 / 3 + 4));
        value.push_str("Basic ");
        base64::engine::general_purpose::STANDARD.encode_string(&*plain, &mut value);
        let mut v = HeaderValue::from_str(&value).map_err(|_| InjectError::InvalidSecret {
            secret: self.secret_name.clone(),
            auth: "basic",
            reason: "the value is not a valid header value",
        })?;
        v.set_sensitive(true);
        Ok(v)
    }
}

impl fmt::Debug for Basic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Basic")
            .field("username", &self.username)
            .field("secret_name", &self.secret_name)
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
        visit(&self.secret_name, self.password.expose_secret());
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
    secret_name: String,
    owned: [HeaderName; 1],
    prefix: String,
    value: SecretSlice<u8>,
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
            secret_name,
            owned: [name],
            prefix,
            value,
        })
    }

    /// The header this injector sets.
    pub fn header_name(&self) -> &HeaderName {
        &self.owned[0]
    }

    fn header_value(&self) -> Result<HeaderValue, InjectError> {
        let secret = self.value.expose_secret();
        let mut buf = Zeroizing::new(Vec::with_capacity(self.prefix.len() + secret.len()));
        buf.extend_from_slice(self.prefix.as_bytes());
        buf.extend_from_slice(secret);
        let mut v = HeaderValue::from_bytes(&buf).map_err(|_| InjectError::InvalidSecret {
            secret: self.secret_name.clone(),
            auth: "header",
            reason: "the value is not a valid header value",
        })?;
        v.set_sensitive(true);
        Ok(v)
    }
}

/// A key sent as text: non-empty printable ASCII, no leading/trailing space.
fn check_printable(secret: &str, auth: &'static str, v: &[u8]) -> Result<(), InjectError> {
    let invalid = |reason| InjectError::InvalidSecret {
        secret: secret.to_string(),
        auth,
        reason,
    };
    if v.is_empty() {
        return Err(invalid("the value is empty"));
    }
    if !v.iter().all(|b| (0x20..=0x7e).contains(b)) {
        return Err(invalid(
            "the value must be printable ASCII without control characters or line breaks",
        ));
    }
    if v.first() == Some(&b' ') || v.last() == Some(&b' ') {
        return Err(invalid("the value starts or ends with a space"));
    }
    Ok(())
}

impl fmt::Debug for HeaderKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HeaderKey")
            .field("header_name", &self.owned[0])
            .field("secret_name", &self.secret_name)
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
        visit(&self.secret_name, self.value.expose_secret());
    }

    fn inject<'a>(
        &'a self,
        req: &'a mut OutgoingRequest,
    ) -> BoxFuture<'a, Result<(), InjectError>> {
        Box::pin(async move {
            let value = self.header_value()?;
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
    secret_name: String,
    owned: [String; 1],
    value: SecretSlice<u8>,
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
            secret_name,
            owned: [param],
            value,
        })
    }
}

impl fmt::Debug for QueryKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("QueryKey")
            .field("param", &self.owned[0])
            .field("secret_name", &self.secret_name)
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
        visit(&self.secret_name, self.value.expose_secret());
    }

    fn inject<'a>(
        &'a self,
        req: &'a mut OutgoingRequest,
    ) -> BoxFuture<'a, Result<(), InjectError>> {
        Box::pin(async move {
            req.append_query_pair(&self.owned[0], self.value.expose_secret());
            Ok(())
        })
    }
}
