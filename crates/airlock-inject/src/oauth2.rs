//! OAuth 2.0 client credentials grant (RFC 6749 §4.4).

use std::fmt;
use std::sync::Arc;
use std::time::SystemTime;

use airlock_config::ClientAuth;
use base64::Engine as _;
use http::header::AUTHORIZATION;
use secrecy::ExposeSecret;
use zeroize::Zeroizing;

use crate::request::{form_encode_into, sensitive_value};
use crate::token::{self, Minted, Minter, MintsBearer, TokenClient};
use crate::{Clock, InjectError, NamedSecret};

const AUTH: &str = "oauth2";

/// OAuth 2.0 client credentials: `Authorization: Bearer <access token>`.
///
/// `POST token_url` with `grant_type=client_credentials` (and `scope` if configured),
/// the client authenticated with HTTP Basic (`client_auth = "basic"`, the default) or
/// with `client_id`/`client_secret` in the body (`"body"`). The token is cached until
/// shortly before `expires_in` runs out (5 minutes when the provider does not say)
/// and refreshed single-flight.
pub struct OAuth2ClientCredentials {
    client_id: String,
    scope: Option<String>,
    client_auth: ClientAuth,
    minter: Minter,
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
            client_id,
            scope,
            client_auth,
            minter: Minter::new(client_secret, token_url, http, clock),
        })
    }
}

impl MintsBearer for OAuth2ClientCredentials {
    const AUTH: &'static str = AUTH;

    fn minter(&self) -> &Minter {
        &self.minter
    }

    async fn mint(&self, now: SystemTime) -> Result<Minted, InjectError> {
        let client_secret = &self.minter.source;
        let secret = client_secret.value.expose_secret();
        let mut body = Zeroizing::new(String::from("grant_type=client_credentials"));
        if let Some(scope) = &self.scope {
            body.push_str("&scope=");
            form_encode_into(scope.as_bytes(), &mut body);
        }
        let mut headers = token::form_headers();
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
                    sensitive_value(&[b"Basic ", b64.as_bytes()]).ok_or_else(|| {
                        InjectError::TokenEndpoint {
                            secret: client_secret.name.clone(),
                            detail: "invalid client credentials header".into(),
                        }
                    })?,
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
        self.minter
            .post(headers, body, &[secret], |_, resp| {
                token::oauth_minted(resp, now)
            })
            .await
    }
}

impl fmt::Debug for OAuth2ClientCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OAuth2ClientCredentials")
            .field("token_url", &token::endpoint_name(&self.minter.url))
            .field("client_id", &self.client_id)
            .field("client_secret", &self.minter.source)
            .finish_non_exhaustive()
    }
}
