//! `airlock scan --verify`: asks each key's own provider whether it is live.
//!
//! Opt-in, because it sends the key to its provider: each supported key goes
//! to one documented, read-only identity endpoint of the provider that issued
//! it (GitHub `GET /user`, Stripe `GET /v1/balance`, Slack `auth.test`…), over
//! HTTPS, never anywhere else. Requests are sequential and rate-limited, each
//! time-boxed, never retried, never redirected (a redirect is an answer of
//! `unknown`, not a hop to another host), and never routed through a system
//! proxy. The same key found twice is asked about once.
//!
//! Tests point every provider at a local mock server with the test-only
//! variable [`TEST_ORIGIN_VAR`], which is honoured only for a loopback
//! `http://` origin; any other value makes every verification `unknown`
//! without a request.

use std::collections::HashMap;
use std::fmt;
use std::time::{Duration, Instant};

use serde::Serialize;
use zeroize::Zeroizing;

use crate::finding::{Finding, Risk};

/// Test-only: replaces every provider's origin with a loopback `http://`
/// origin (`http://127.0.0.1:PORT`). Not for production use: it exists so
/// that tests can answer for the providers with local mock servers.
pub const TEST_ORIGIN_VAR: &str = "AIRLOCK_SCAN_VERIFY_TEST_ORIGIN";

/// What the provider said about a key.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Liveness {
    /// The provider accepted the key: it works now.
    Live,
    /// The provider rejected the key as invalid, revoked or expired.
    Revoked,
    /// No clear answer (timeout, network error, rate limit, redirect, an
    /// unexpected status, or a key kind without a verifier).
    Unknown,
}

impl Liveness {
    /// Lower-case name, as in JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            Liveness::Live => "live",
            Liveness::Revoked => "revoked",
            Liveness::Unknown => "unknown",
        }
    }
}

/// The outcome of `--verify` for one finding.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Verification {
    /// `live`, `revoked` or `unknown`.
    pub status: Liveness,
    /// What was asked and what came back (`GitHub GET /user: HTTP 401`);
    /// never the key.
    pub detail: String,
}

/// A key held by a finding only until [`verify`] takes it: wiped on drop,
/// never printed or serialized.
#[derive(Clone)]
pub(crate) struct HeldKey(Zeroizing<Vec<u8>>);

impl HeldKey {
    pub(crate) fn new(secret: &[u8]) -> Self {
        Self(Zeroizing::new(secret.to_vec()))
    }
}

impl fmt::Debug for HeldKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("HeldKey(…)")
    }
}

/// Limits of one `--verify` run.
#[derive(Clone, Debug)]
pub struct VerifyOptions {
    /// Time box of one request, connection included.
    pub timeout: Duration,
    /// Least time between two requests to the same provider.
    pub min_interval: Duration,
    /// At most this many requests in a run; later keys stay `unknown`.
    pub max_requests: usize,
}

impl Default for VerifyOptions {
    fn default() -> Self {
        Self {
            timeout: Duration::from_secs(5),
            min_interval: Duration::from_millis(250),
            max_requests: 100,
        }
    }
}

#[derive(Clone, Copy)]
enum Auth {
    /// `Authorization: Bearer KEY`
    Bearer,
    /// `NAME: KEY`
    Header(&'static str),
}

#[derive(Clone, Copy)]
enum Judge {
    /// 2xx live, 401 revoked.
    Status,
    /// As `Status`, and 403 live too: the key authenticated but may not read
    /// this resource (a Stripe restricted key).
    StatusForbiddenIsLive,
    /// Slack answers 200 with `{"ok": …, "error": …}`.
    SlackOk,
}

/// One provider's identity endpoint: read-only, no side effects.
#[derive(Clone, Copy)]
struct Endpoint {
    provider: &'static str,
    origin: &'static str,
    post: bool,
    path: &'static str,
    auth: Auth,
    extra: &'static [(&'static str, &'static str)],
    judge: Judge,
}

const GITHUB: Endpoint = Endpoint {
    provider: "GitHub",
    origin: "https://api.github.com",
    post: false,
    path: "/user",
    auth: Auth::Bearer,
    extra: &[("accept", "application/vnd.github+json")],
    judge: Judge::Status,
};
const GITLAB: Endpoint = Endpoint {
    provider: "GitLab",
    origin: "https://gitlab.com",
    post: false,
    path: "/api/v4/user",
    auth: Auth::Header("private-token"),
    extra: &[],
    judge: Judge::Status,
};
const OPENAI: Endpoint = Endpoint {
    provider: "OpenAI",
    origin: "https://api.openai.com",
    post: false,
    path: "/v1/models",
    auth: Auth::Bearer,
    extra: &[],
    judge: Judge::Status,
};
const ANTHROPIC: Endpoint = Endpoint {
    provider: "Anthropic",
    origin: "https://api.anthropic.com",
    post: false,
    path: "/v1/models",
    auth: Auth::Header("x-api-key"),
    extra: &[("anthropic-version", "2023-06-01")],
    judge: Judge::Status,
};
const STRIPE: Endpoint = Endpoint {
    provider: "Stripe",
    origin: "https://api.stripe.com",
    post: false,
    path: "/v1/balance",
    auth: Auth::Bearer,
    extra: &[],
    judge: Judge::StatusForbiddenIsLive,
};
const SLACK: Endpoint = Endpoint {
    provider: "Slack",
    origin: "https://slack.com",
    post: true,
    path: "/api/auth.test",
    auth: Auth::Bearer,
    extra: &[],
    judge: Judge::SlackOk,
};
const NPM: Endpoint = Endpoint {
    provider: "npm",
    origin: "https://registry.npmjs.org",
    post: false,
    path: "/-/whoami",
    auth: Auth::Bearer,
    extra: &[],
    judge: Judge::Status,
};
const HUGGINGFACE: Endpoint = Endpoint {
    provider: "Hugging Face",
    origin: "https://huggingface.co",
    post: false,
    path: "/api/whoami-v2",
    auth: Auth::Bearer,
    extra: &[],
    judge: Judge::Status,
};
const SENDGRID: Endpoint = Endpoint {
    provider: "SendGrid",
    origin: "https://api.sendgrid.com",
    post: false,
    path: "/v3/scopes",
    auth: Auth::Bearer,
    extra: &[],
    judge: Judge::Status,
};
const DIGITALOCEAN: Endpoint = Endpoint {
    provider: "DigitalOcean",
    origin: "https://api.digitalocean.com",
    post: false,
    path: "/v2/account",
    auth: Auth::Bearer,
    extra: &[],
    judge: Judge::Status,
};

/// The verifier of a rule, if it has one.
fn endpoint(rule_id: &str) -> Option<Endpoint> {
    Some(match rule_id {
        "github-pat" | "github-oauth-token" | "github-user-token" | "github-fine-grained-pat" => {
            GITHUB
        }
        "gitlab-pat" => GITLAB,
        "openai-api-key" => OPENAI,
        "anthropic-api-key" => ANTHROPIC,
        "stripe-secret-key"
        | "stripe-test-secret-key"
        | "stripe-restricted-key"
        | "stripe-test-restricted-key" => STRIPE,
        "slack-bot-token" | "slack-user-token" => SLACK,
        "npm-access-token" | "npmrc-auth-token" => NPM,
        "huggingface-token" => HUGGINGFACE,
        "sendgrid-api-key" => SENDGRID,
        "digitalocean-token" => DIGITALOCEAN,
        _ => return None,
    })
}

/// Whether `--verify` can ask about keys of this rule.
pub fn supports(rule_id: &str) -> bool {
    endpoint(rule_id).is_some()
}

/// Rule ids `--verify` can ask about, with the provider and the request.
pub fn supported() -> Vec<(&'static str, &'static str, String)> {
    crate::rules::RULES
        .iter()
        .filter_map(|d| {
            endpoint(d.id).map(|e| {
                let method = if e.post { "POST" } else { "GET" };
                (d.id, e.provider, format!("{method} {}{}", e.origin, e.path))
            })
        })
        .collect()
}

/// The test-only origin, checked: `Ok(None)` when unset, `Err` when set to
/// anything but a loopback `http://` origin.
fn test_origin() -> Result<Option<String>, String> {
    let Some(raw) = std::env::var_os(TEST_ORIGIN_VAR) else {
        return Ok(None);
    };
    let refused = || {
        format!(
            "{TEST_ORIGIN_VAR} is set but is not a loopback http:// origin; it is for tests only, unset it"
        )
    };
    let raw = raw.to_str().ok_or_else(refused)?;
    let url = reqwest::Url::parse(raw).map_err(|_| refused())?;
    let loopback = matches!(url.host_str(), Some("localhost" | "127.0.0.1" | "[::1]"));
    if url.scheme() != "http"
        || !loopback
        || !matches!(url.path(), "" | "/")
        || url.query().is_some()
        || !url.username().is_empty()
    {
        return Err(refused());
    }
    Ok(Some(raw.trim_end_matches('/').to_owned()))
}

/// Asks the provider of every finding that still holds its key, sets
/// `verification`, and re-rates the risk: `live` → critical, `revoked` → low,
/// `unknown` → unchanged (the reason says why). Takes every held key out of
/// the findings, so none outlives this call.
pub fn verify(findings: &mut [Finding], opts: &VerifyOptions) {
    let origin = test_origin();
    let client = match &origin {
        Ok(o) => reqwest::blocking::Client::builder()
            .no_proxy()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(opts.timeout)
            .connect_timeout(opts.timeout)
            .https_only(o.is_none())
            .user_agent(concat!("airlock-scan-verify/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| format!("cannot build the HTTP client: {e}")),
        Err(e) => Err(e.clone()),
    };
    let mut asked: HashMap<String, Verification> = HashMap::new();
    let mut last: HashMap<&'static str, Instant> = HashMap::new();
    let mut sent = 0usize;
    for f in findings.iter_mut() {
        let key = f.key.take();
        let Some(ep) = endpoint(f.rule_id) else {
            continue;
        };
        let v = if let Some(v) = asked.get(&f.fingerprint) {
            v.clone()
        } else {
            let v = match (&client, &key) {
                (Err(why), _) => unknown(why.clone()),
                (_, None) => unknown("the key was not kept for verification".to_owned()),
                (Ok(_), Some(_)) if sent >= opts.max_requests => unknown(format!(
                    "not asked: more than {} keys in one run",
                    opts.max_requests
                )),
                (Ok(client), Some(key)) => {
                    if let Some(t) = last.get(ep.origin) {
                        let wait = opts.min_interval.saturating_sub(t.elapsed());
                        std::thread::sleep(wait);
                    }
                    sent += 1;
                    let base = origin.as_ref().ok().and_then(|o| o.as_deref());
                    let v = ask(client, &ep, base, key);
                    last.insert(ep.origin, Instant::now());
                    v
                }
            };
            asked.insert(f.fingerprint.clone(), v.clone());
            v
        };
        rerate(f, &v);
        f.verification = Some(v);
    }
}

fn unknown(detail: String) -> Verification {
    Verification {
        status: Liveness::Unknown,
        detail,
    }
}

/// One request, no retry. `base` replaces the provider's origin (tests only).
fn ask(
    client: &reqwest::blocking::Client,
    ep: &Endpoint,
    base: Option<&str>,
    key: &HeldKey,
) -> Verification {
    let method = if ep.post { "POST" } else { "GET" };
    let what = format!("{} {method} {}", ep.provider, ep.path);
    let Ok(key) = std::str::from_utf8(&key.0) else {
        return unknown(format!("{what}: not asked, the key is not text"));
    };
    let url = format!("{}{}", base.unwrap_or(ep.origin), ep.path);
    let mut req = if ep.post {
        client.post(&url)
    } else {
        client.get(&url)
    };
    let mut value = match ep.auth {
        Auth::Bearer => Zeroizing::new(format!("Bearer {key}")),
        Auth::Header(_) => Zeroizing::new(key.to_owned()),
    };
    let name = match ep.auth {
        Auth::Bearer => "authorization",
        Auth::Header(h) => h,
    };
    let Ok(mut header) = reqwest::header::HeaderValue::from_str(&value) else {
        return unknown(format!(
            "{what}: not asked, the key cannot be a header value"
        ));
    };
    zeroize::Zeroize::zeroize(&mut value);
    header.set_sensitive(true);
    req = req.header(name, header);
    for (k, v) in ep.extra {
        req = req.header(*k, *v);
    }
    let resp = match req.send() {
        Ok(r) => r,
        Err(e) if e.is_timeout() => return unknown(format!("{what}: no answer in time")),
        Err(e) if e.is_connect() => return unknown(format!("{what}: could not connect")),
        Err(_) => return unknown(format!("{what}: request failed")),
    };
    let status = resp.status().as_u16();
    let detail = format!("{what}: HTTP {status}");
    let judged = match (ep.judge, status) {
        (_, 300..=399) => {
            return unknown(format!("{detail} (a redirect; not followed)"));
        }
        (Judge::SlackOk, 200) => slack(resp),
        (Judge::SlackOk, _) => None,
        (_, 200..=299) => Some(Liveness::Live),
        (_, 401) => Some(Liveness::Revoked),
        (Judge::StatusForbiddenIsLive, 403) => Some(Liveness::Live),
        _ => None,
    };
    match judged {
        Some(status) => Verification { status, detail },
        None => unknown(detail),
    }
}

/// Slack's `auth.test`: `{"ok": true}` live; an auth error revoked.
fn slack(resp: reqwest::blocking::Response) -> Option<Liveness> {
    let body = resp.bytes().ok()?;
    let v: serde_json::Value = serde_json::from_slice(&body[..body.len().min(64 * 1024)]).ok()?;
    if v.get("ok").and_then(serde_json::Value::as_bool) == Some(true) {
        return Some(Liveness::Live);
    }
    match v.get("error").and_then(serde_json::Value::as_str) {
        Some(
            "invalid_auth" | "not_authed" | "token_revoked" | "token_expired" | "account_inactive",
        ) => Some(Liveness::Revoked),
        _ => None,
    }
}

fn rerate(f: &mut Finding, v: &Verification) {
    match v.status {
        Liveness::Live => {
            f.risk = Risk::Critical;
            f.risk_reason = format!(
                "verified live by {} just now; rotate it ({})",
                f.provider, f.risk_reason
            );
        }
        Liveness::Revoked => {
            f.risk = Risk::Low;
            f.risk_reason = format!(
                "{} rejects this key (revoked, expired or never valid), so it grants nothing now; remove it from the file",
                f.provider
            );
        }
        Liveness::Unknown => {
            f.risk_reason = format!("{}; liveness unknown: {}", f.risk_reason, v.detail);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Each key goes only to its own provider's documented host, over HTTPS.
    #[test]
    fn every_verifier_is_its_own_providers_https_host() {
        let hosts = [
            ("GitHub", "https://api.github.com"),
            ("GitLab", "https://gitlab.com"),
            ("OpenAI", "https://api.openai.com"),
            ("Anthropic", "https://api.anthropic.com"),
            ("Stripe", "https://api.stripe.com"),
            ("Slack", "https://slack.com"),
            ("npm", "https://registry.npmjs.org"),
            ("Hugging Face", "https://huggingface.co"),
            ("SendGrid", "https://api.sendgrid.com"),
            ("DigitalOcean", "https://api.digitalocean.com"),
        ];
        let listed = supported();
        assert!(listed.len() >= 15, "{listed:?}");
        for def in crate::rules::RULES {
            let Some(ep) = endpoint(def.id) else {
                continue;
            };
            assert_eq!(ep.provider, def.provider, "{}", def.id);
            assert!(
                hosts.contains(&(ep.provider, ep.origin)),
                "{} → {}",
                def.id,
                ep.origin
            );
        }
        // every rule id named in `endpoint` exists (a renamed rule would
        // silently lose its verifier)
        for id in [
            "github-pat",
            "github-oauth-token",
            "github-user-token",
            "github-fine-grained-pat",
            "gitlab-pat",
            "openai-api-key",
            "anthropic-api-key",
            "stripe-secret-key",
            "stripe-test-secret-key",
            "stripe-restricted-key",
            "stripe-test-restricted-key",
            "slack-bot-token",
            "slack-user-token",
            "npm-access-token",
            "npmrc-auth-token",
            "huggingface-token",
            "sendgrid-api-key",
            "digitalocean-token",
        ] {
            assert!(listed.iter().any(|(r, _, _)| *r == id), "{id}");
        }
    }

    #[test]
    fn held_keys_do_not_print() {
        assert_eq!(format!("{:?}", HeldKey::new(b"ghp_secret")), "HeldKey(…)");
    }
}
