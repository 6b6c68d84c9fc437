//! OAuth 2.0 client credentials grant (RFC 6749 §4.4).

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use airlock_config::ClientAuth;
use base64::Engine as _;
use http::header::{ACCEPT, AUTHORIZATION, CONTENT_TYPE};
use http::{HeaderMap, HeaderName, HeaderValue};
use secrecy::ExposeSecret;
use zeroize::Zeroizing;

use crate::request::form_encode_into;
use crate::token::{self, Minted, TokenCache, TokenClient};
use crate::{BoxFuture, Clock, InjectError, Injector, NamedSecret, OutgoingRequest};

const OWNED: &[HeaderName] = &[AUTHORIZATION];
const AUTH: &str = "oauth2";

/// OAuth 2.0 client credentials: `Authorization: Bearer <access token>`.
///
/// `POST token_url` with `grant_type=client_credentials` (and `scope` if configured),
/// the client authenticated with HTTP Basic (`client_auth = "basic"`, the default) or
/// with `client_id`/`client_secret` in the body (`"body"`). The token is cached until
/// shortly before `expires_in` runs out (5 minutes when the provider does not say)
/// and refreshed single-flight.
pub struct OAuth2ClientCredentials {
    token_url: url::Url,
    client_id: String,
    scope: Option<String>,
    client_auth: ClientAuth,
    client_secret: NamedSecret,
    http: TokenClient,
    cache: TokenCache,
}

impl OAuth2ClientCredentials {
    /// A client `client_id` whose secret is the vault secret `client_secret`.
    pub fn new(
        token_url: url::Url,
        client_id: impl Into<String>,
        client_secret: NamedSecret,
        scope: Option<String>,
        client_auth: ClientAuth,
        http: TokenClient,
        clock: Arc<dyn Clock>,
    ) -> Result<Self, InjectError> {
        let client_id = client_id.into();
        let token_url = airlock_config::check_token_url(token_url.as_str()).map_err(|m| {
            InjectError::InvalidParameter {
                auth: AUTH,
                reason: format!("token_url: {m}"),
            }
        })?;
        if client_id.is_empty() || client_id.chars().any(char::is_control) {
            return Err(InjectError::InvalidParameter {
                auth: AUTH,
                reason: "client_id must be non-empty, without control characters".into(),
            });
        }
        if client_secret.value.expose_secret().is_empty() {
            return Err(InjectError::InvalidSecret {
                secret: client_secret.name.clone(),
                auth: AUTH,
                reason: "the value is empty",
            });
        }
        Ok(OAuth2ClientCredentials {
            token_url,
            client_id,
            scope,
            client_auth,
            client_secret,
            http,
            cache: TokenCache::new(clock),
        })
    }

    async fn mint(&self) -> Result<Minted, InjectError> {
        let fail = |detail: String| InjectError::TokenEndpoint {
            secret: self.client_secret.name.clone(),
            detail,
        };
        let now = self.cache.clock().now();
        let secret = self.client_secret.value.expose_secret();
        let mut body = Zeroizing::new(String::from("grant_type=client_credentials"));
        if let Some(scope) = &self.scope {
            body.push_str("&scope=");
            form_encode_into(scope.as_bytes(), &mut body);
        }
        let mut headers = HeaderMap::new();
        headers.insert(
            CONTENT_TYPE,
            HeaderValue::from_static("application/x-www-form-urlencoded"),
        );
        headers.insert(ACCEPT, HeaderValue::from_static("application/json"));
        match self.client_auth {
            ClientAuth::Basic => {
                // RFC 6749 §2.3.1: id and secret form-encoded, then Basic.
                let mut plain = Zeroizing::new(String::new());
                form_encode_into(self.client_id.as_bytes(), &mut plain);
                plain.push(':');
                form_encode_into(secret, &mut plain);
                let mut b64 = Zeroizing::new(String::new());
                base64::engine::general_purpose::STANDARD.encode_string(plain.as_bytes(), &mut b64);
                headers.insert(
                    AUTHORIZATION,
                    token::sensitive("Basic ", &b64)
                        .ok_or_else(|| fail("invalid client credentials header".into()))?,
                );
            }
            ClientAuth::Body => {
                body.push_str("&client_id=");
                form_encode_into(self.client_id.as_bytes(), &mut body);
                body.push_str("&client_secret=");
                form_encode_into(secret, &mut body);
            }
        }
        let body = Zeroizing::new(body.as_bytes().to_vec());
        let (status, resp) = self
            .http
            .post(&self.token_url, headers, body, &self.client_secret.name)
            .await?;
        let what = format!("POST {}", token::endpoint_name(&self.token_url));
        if !status.is_success() {
            return Err(fail(format!(
                "{what}: {}",
                token::describe_failure(status, &resp, &[secret])
            )));
        }
        let (access, lifetime) =
            token::parse_oauth_token(&resp).map_err(|m| fail(format!("{what}: {m}")))?;
        let lifetime = lifetime
            .unwrap_or(token::DEFAULT_LIFETIME)
            .min(Duration::from_secs(86_400));
        Ok(Minted::new(access, now, now + lifetime))
    }
}

impl fmt::Debug for OAuth2ClientCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OAuth2ClientCredentials")
            .field("token_url", &token::endpoint_name(&self.token_url))
            .field("client_id", &self.client_id)
            .field("client_secret", &self.client_secret)
            .finish_non_exhaustive()
    }
}

impl Injector for OAuth2ClientCredentials {
    fn kind(&self) -> &'static str {
        AUTH
    }

    fn owned_headers(&self) -> &[HeaderName] {
        OWNED
    }

    fn visit_emitted_secrets(&self, visit: &mut dyn FnMut(&str, &[u8])) {
        visit(
            &self.client_secret.name,
            self.client_secret.value.expose_secret(),
        );
        self.cache.visit(&self.client_secret.name, visit);
    }

    fn inject<'a>(
        &'a self,
        req: &'a mut OutgoingRequest,
    ) -> BoxFuture<'a, Result<(), InjectError>> {
        Box::pin(async move {
            let token = self.cache.get(|| self.mint()).await?;
            token::set_bearer(&mut req.headers, &self.client_secret.name, &token.value)
        })
    }
}
