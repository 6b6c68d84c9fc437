//! Google Cloud service accounts: JWT (RS256) → OAuth 2.0 access token (RFC 7523).

use std::fmt;
use std::sync::Arc;
use std::time::SystemTime;

use secrecy::ExposeSecret;
use zeroize::Zeroizing;

use crate::jwt::RsaKey;
use crate::token::{self, Minted, Minter, MintsBearer, TokenClient};
use crate::{Clock, InjectError, NamedSecret};

const AUTH: &str = "gcp-service-account";
const DEFAULT_TOKEN_URI: &str = "https://oauth2.googleapis.com/token";

/// A Google service account: `Authorization: Bearer <access token>`.
///
/// The vault secret is the JSON key file (`type = "service_account"`, `client_email`,
/// `private_key`, optional `private_key_id` and `token_uri`). A JWT (`iss` = the
/// client email, `scope` = the configured scopes, `aud` = `token_uri`, one hour) is
/// exchanged at `token_uri` with the `urn:ietf:params:oauth:grant-type:jwt-bearer`
/// grant; the access token is cached until shortly before `expires_in` runs out.
pub struct GcpServiceAccount {
    client_email: String,
    key_id: Option<String>,
    scopes: String,
    key: RsaKey,
    minter: Minter,
}

#[derive(serde::Deserialize)]
struct KeyFile {
    #[serde(rename = "type")]
    kind: Option<String>,
    client_email: Option<String>,
    private_key: Option<Zeroizing<String>>,
    private_key_id: Option<String>,
    token_uri: Option<String>,
}

impl GcpServiceAccount {
    /// A service account from the JSON key in the vault secret `json`, asking for `scopes`.
    pub fn new(
        json: NamedSecret,
        scopes: &[String],
        http: TokenClient,
        clock: Arc<dyn Clock>,
    ) -> Result<Self, InjectError> {
        let invalid = |reason| InjectError::InvalidSecret {
            secret: json.name.clone(),
            auth: AUTH,
            reason,
        };
        let file: KeyFile = serde_json::from_slice(json.value.expose_secret())
            .map_err(|_| invalid("the value is not a service-account JSON key file"))?;
        if file.kind.as_deref() != Some("service_account") {
            return Err(invalid(
                "the JSON key's \"type\" is not \"service_account\" (download a key for a service account)",
            ));
        }
        let client_email = file
            .client_email
            .filter(|e| e.contains('@') && !e.chars().any(char::is_control))
            .ok_or_else(|| invalid("the JSON key has no valid \"client_email\""))?;
        let pem = file
            .private_key
            .ok_or_else(|| invalid("the JSON key has no \"private_key\""))?;
        let key = RsaKey::from_pem(pem.as_bytes()).map_err(invalid)?;
        let token_url = airlock_config::check_token_url(
            file.token_uri.as_deref().unwrap_or(DEFAULT_TOKEN_URI),
        )
        .map_err(|_| {
            invalid("the JSON key's \"token_uri\" must be an https URL (http only for loopback)")
        })?;
        if scopes.is_empty()
            || scopes
                .iter()
                .any(|s| s.is_empty() || s.contains(char::is_whitespace))
        {
            return Err(InjectError::InvalidParameter {
                auth: AUTH,
                reason: "scopes must be one or more scope names without spaces".into(),
            });
        }
        Ok(GcpServiceAccount {
            client_email,
            key_id: file
                .private_key_id
                .filter(|k| !k.chars().any(char::is_control)),
            scopes: scopes.join(" "),
            key,
            minter: Minter::new(json, token_url, http, clock),
        })
    }

    /// The service account's email (not secret).
    pub fn client_email(&self) -> &str {
        &self.client_email
    }
}

impl MintsBearer for GcpServiceAccount {
    const AUTH: &'static str = AUTH;

    fn minter(&self) -> &Minter {
        &self.minter
    }

    async fn mint(&self, now: SystemTime) -> Result<Minted, InjectError> {
        let unix = self.minter.clock().unix_seconds();
        let mut header = serde_json::json!({"alg": "RS256", "typ": "JWT"});
        if let Some(kid) = &self.key_id {
            header["kid"] = serde_json::json!(kid);
        }
        let claims = serde_json::json!({
            "iss": self.client_email,
            "scope": self.scopes,
            "aud": self.minter.url.as_str(),
            "iat": unix,
            "exp": unix + 3600,
        });
        let jwt = self
            .key
            .sign_jwt(&header, &claims)
            .map_err(|e| InjectError::TokenEndpoint {
                secret: self.minter.source.name.clone(),
                detail: e.to_string(),
            })?;
        let mut body = Zeroizing::new(Vec::with_capacity(jwt.len() + 80));
        body.extend_from_slice(
            b"grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Ajwt-bearer&assertion=",
        );
        body.extend_from_slice(jwt.as_bytes()); // base64url and dots: nothing to encode
        self.minter
            .post(token::form_headers(), body, &[jwt.as_bytes()], |_, resp| {
                token::oauth_minted(resp, now)
            })
            .await
    }
}

impl fmt::Debug for GcpServiceAccount {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GcpServiceAccount")
            .field("client_email", &self.client_email)
            .field("token_url", &token::endpoint_name(&self.minter.url))
            .field("scopes", &self.scopes)
            .field("json", &self.minter.source)
            .finish_non_exhaustive()
    }
}
