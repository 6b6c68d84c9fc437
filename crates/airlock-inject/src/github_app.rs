//! GitHub App installation tokens: JWT (RS256) → `POST /app/installations/{id}/access_tokens`.

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use http::header::{ACCEPT, AUTHORIZATION};
use http::{HeaderMap, HeaderName, HeaderValue, StatusCode};
use secrecy::ExposeSecret;
use zeroize::Zeroizing;

use crate::jwt::RsaKey;
use crate::request::sensitive_value;
use crate::token::{self, Minted, Minter, MintsBearer, TokenClient};
use crate::{Clock, InjectError, NamedSecret};

const AUTH: &str = "github-app";

/// A GitHub App acting as one installation: `Authorization: Bearer <installation token>`.
///
/// The token is obtained with a JWT (RS256, `iss` = the app id, `iat` 60 s in the past
/// for clock drift, `exp` 9 minutes ahead) signed by the app's private key, POSTed to
/// `{api}/app/installations/{installation_id}/access_tokens` where `{api}` is the
/// service's URL (`https://api.github.com`, or `https://HOST/api/v3` for GitHub
/// Enterprise Server) — the same origin the token is then used on. It is cached until
/// shortly before its `expires_at` (GitHub: one hour) and refreshed single-flight.
pub struct GitHubApp {
    app_id: String,
    key: RsaKey,
    minter: Minter,
}

impl GitHubApp {
    /// An installation of app `app_id` on the GitHub API at `api` (the service URL),
    /// with the PEM private key in the vault secret `pem`.
    pub fn new(
        api: &url::Url,
        app_id: impl Into<String>,
        installation_id: u64,
        pem: NamedSecret,
        http: TokenClient,
        clock: Arc<dyn Clock>,
    ) -> Result<Self, InjectError> {
        let app_id = app_id.into();
        if app_id.is_empty()
            || !app_id
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'.')
        {
            return Err(InjectError::InvalidParameter {
                auth: AUTH,
                reason: "app_id must be the app's id or client id".into(),
            });
        }
        let key = RsaKey::from_pem(pem.value.expose_secret()).map_err(|reason| {
            InjectError::InvalidSecret {
                secret: pem.name.clone(),
                auth: AUTH,
                reason,
            }
        })?;
        let base = api.as_str().trim_end_matches('/');
        let token_url = url::Url::parse(&format!(
            "{base}/app/installations/{installation_id}/access_tokens"
        ))
        .map_err(|_| InjectError::InvalidParameter {
            auth: AUTH,
            reason: "the service URL cannot be joined with the token path".into(),
        })?;
        Ok(GitHubApp {
            app_id,
            key,
            minter: Minter::new(pem, token_url, http, clock),
        })
    }

    /// Where installation tokens come from.
    pub fn token_url(&self) -> &url::Url {
        &self.minter.url
    }
}

impl MintsBearer for GitHubApp {
    const AUTH: &'static str = AUTH;

    fn minter(&self) -> &Minter {
        &self.minter
    }

    async fn mint(&self, now: SystemTime) -> Result<Minted, InjectError> {
        let fail = |detail: String| InjectError::TokenEndpoint {
            secret: self.minter.source.name.clone(),
            detail,
        };
        let unix = self.minter.clock().unix_seconds();
        // Older GitHub Enterprise Server versions want a numeric `iss`.
        let iss = match self.app_id.parse::<u64>() {
            Ok(n) => serde_json::json!(n),
            Err(_) => serde_json::json!(self.app_id),
        };
        let jwt = self
            .key
            .sign_jwt(
                &serde_json::json!({"alg": "RS256", "typ": "JWT"}),
                &serde_json::json!({"iat": unix.saturating_sub(60), "exp": unix + 540, "iss": iss}),
            )
            .map_err(|e| fail(e.to_string()))?;
        let mut headers = HeaderMap::new();
        headers.insert(
            AUTHORIZATION,
            sensitive_value(&[b"Bearer ", jwt.as_bytes()])
                .ok_or_else(|| fail("invalid JWT".into()))?,
        );
        headers.insert(
            ACCEPT,
            HeaderValue::from_static("application/vnd.github+json"),
        );
        headers.insert(
            HeaderName::from_static("x-github-api-version"),
            HeaderValue::from_static("2022-11-28"),
        );
        self.minter
            .post(
                headers,
                Zeroizing::new(Vec::new()),
                &[jwt.as_bytes()],
                |status, body| installation_token(status, body, now),
            )
            .await
    }
}

impl fmt::Debug for GitHubApp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GitHubApp")
            .field("app_id", &self.app_id)
            .field("token_url", &token::endpoint_name(&self.minter.url))
            .field("pem", &self.minter.source)
            .finish_non_exhaustive()
    }
}

/// The installation token in GitHub's answer, valid until its `expires_at` (an hour
/// from `now` when it does not say).
fn installation_token(status: StatusCode, body: &[u8], now: SystemTime) -> Result<Minted, String> {
    #[derive(serde::Deserialize)]
    struct Answer {
        token: Zeroizing<String>,
        #[serde(default)]
        expires_at: Option<String>,
    }
    let answer: Answer = serde_json::from_slice(body).map_err(|_| {
        format!(
            "HTTP {}: the response has no `token` string",
            status.as_u16()
        )
    })?;
    token::check_token(&answer.token).map_err(|m| m.to_string())?;
    let expires_at = match answer.expires_at.as_deref() {
        Some(s) => {
            let ts: jiff::Timestamp = s
                .parse()
                .map_err(|_| "`expires_at` is not an RFC 3339 timestamp".to_string())?;
            let secs = u64::try_from(ts.as_second()).unwrap_or(0);
            SystemTime::UNIX_EPOCH + Duration::from_secs(secs)
        }
        None => now + Duration::from_secs(3600),
    };
    Ok(Minted::new(answer.token, now, expires_at))
}
