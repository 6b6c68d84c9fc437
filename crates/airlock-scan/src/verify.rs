//! `airlock scan --verify`: asks each key's own provider whether it is live.
//!
//! Opt-in, because it sends the key to its provider: each supported key goes
//! to one documented, read-only identity endpoint of the provider that issued
//! it (GitHub `GET /user`, Stripe `GET /v1/balance`, Slack `auth.test`, AWS
//! `sts:GetCallerIdentity`…), over HTTPS, never anywhere else. An AWS secret
//! access key is never sent at all: it signs (SigV4, with the signer the broker
//! injects with) a request that carries its key id, found beside it. Requests are sequential and rate-limited, each
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

/// AWS STS: the global endpoint, whose signing region is `us-east-1`.
const AWS_STS_ORIGIN: &str = "https://sts.amazonaws.com";
const AWS_STS_REGION: &str = "us-east-1";
/// `sts:GetCallerIdentity` needs no permission and changes nothing.
const AWS_STS_BODY: &str = "Action=GetCallerIdentity&Version=2011-06-15";
const AWS_KEY_ID: &str = "aws-access-key-id";
const AWS_SECRET: &str = "aws-secret-access-key";

fn is_aws(rule_id: &str) -> bool {
    matches!(rule_id, AWS_KEY_ID | AWS_SECRET)
}

/// Whether `--verify` can ask about keys of this rule.
pub fn supports(rule_id: &str) -> bool {
    endpoint(rule_id).is_some() || is_aws(rule_id)
}

/// Rule ids `--verify` can ask about, with the provider and the request.
pub fn supported() -> Vec<(&'static str, &'static str, String)> {
    crate::rules::RULES
        .iter()
        .filter_map(|d| {
            if is_aws(d.id) {
                return Some((
                    d.id,
                    "AWS",
                    format!("POST {AWS_STS_ORIGIN}/ (sts:GetCallerIdentity, SigV4)"),
                ));
            }
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
    let base = origin.as_ref().ok().and_then(|o| o.as_deref());
    let keys: Vec<Option<HeldKey>> = findings.iter_mut().map(|f| f.key.take()).collect();
    let partner = aws_pairs(findings);
    let mut asked: HashMap<String, Verification> = HashMap::new();
    let mut budget = Budget {
        opts,
        sent: 0,
        last: HashMap::new(),
    };
    for (i, f) in findings.iter_mut().enumerate() {
        let Some(ask_once) = Question::of(f, i, &partner, &keys) else {
            continue;
        };
        let v = match ask_once {
            Err(v) => v,
            Ok((cache_key, question)) => {
                if let Some(v) = asked.get(&cache_key) {
                    v.clone()
                } else {
                    let v = match &client {
                        Err(why) => unknown(why.clone()),
                        Ok(client) => match budget.wait(question.origin()) {
                            Err(v) => v,
                            Ok(()) => {
                                let v = question.ask(client, base);
                                budget.done(question.origin());
                                v
                            }
                        },
                    };
                    asked.insert(cache_key, v.clone());
                    v
                }
            }
        };
        rerate(f, &v);
        f.verification = Some(v);
    }
}

/// Rate limit and request cap of one run.
struct Budget<'a> {
    opts: &'a VerifyOptions,
    sent: usize,
    last: HashMap<&'static str, Instant>,
}

impl Budget<'_> {
    /// Waits for the provider's turn, or says why no request may be sent.
    fn wait(&mut self, origin: &'static str) -> Result<(), Verification> {
        if self.sent >= self.opts.max_requests {
            return Err(unknown(format!(
                "not asked: more than {} keys in one run",
                self.opts.max_requests
            )));
        }
        if let Some(t) = self.last.get(origin) {
            std::thread::sleep(self.opts.min_interval.saturating_sub(t.elapsed()));
        }
        self.sent += 1;
        Ok(())
    }

    fn done(&mut self, origin: &'static str) {
        self.last.insert(origin, Instant::now());
    }
}

/// One request to make: a key for its endpoint, or an AWS key pair for STS.
enum Question<'a> {
    Key(Endpoint, &'a HeldKey),
    Aws {
        id: &'a HeldKey,
        secret: &'a HeldKey,
    },
}

impl<'a> Question<'a> {
    /// What to ask about finding `i`, with the cache key of the answer; `Err`
    /// when the answer is `unknown` without a request; `None` when its rule
    /// has no verifier.
    fn of(
        f: &Finding,
        i: usize,
        partner: &[Option<usize>],
        keys: &'a [Option<HeldKey>],
    ) -> Option<Result<(String, Question<'a>), Verification>> {
        let not_kept = || unknown("the key was not kept for verification".to_owned());
        if !is_aws(f.rule_id) {
            let ep = endpoint(f.rule_id)?;
            return Some(match &keys[i] {
                Some(k) => Ok((f.fingerprint.clone(), Question::Key(ep, k))),
                None => Err(not_kept()),
            });
        }
        let Some(j) = partner[i] else {
            return Some(Err(unknown(if f.rule_id == AWS_KEY_ID {
                "AWS: not asked, no secret access key in the same file to sign with".to_owned()
            } else {
                "AWS: not asked, no access key id in the same file to pair it with".to_owned()
            })));
        };
        let (id, secret) = if f.rule_id == AWS_KEY_ID {
            (i, j)
        } else {
            (j, i)
        };
        Some(match (&keys[id], &keys[secret]) {
            (Some(id), Some(secret)) => {
                Ok((aws_cache_key(id, secret), Question::Aws { id, secret }))
            }
            _ => Err(not_kept()),
        })
    }

    fn origin(&self) -> &'static str {
        match self {
            Question::Key(ep, _) => ep.origin,
            Question::Aws { .. } => AWS_STS_ORIGIN,
        }
    }

    fn ask(&self, client: &reqwest::blocking::Client, base: Option<&str>) -> Verification {
        match self {
            Question::Key(ep, key) => ask(client, ep, base, key),
            Question::Aws { id, secret } => ask_aws(client, base, id, secret),
        }
    }
}

/// The same key id and secret, wherever they were found, share one answer
/// (a digest: the cache never holds the secret itself).
fn aws_cache_key(id: &HeldKey, secret: &HeldKey) -> String {
    use sha2::Digest as _;
    let mut h = sha2::Sha256::new();
    for k in [id, secret] {
        h.update((k.0.len() as u64).to_be_bytes());
        h.update(&*k.0);
    }
    format!("aws:{}", hex::encode(h.finalize()))
}

/// For each AWS finding, the finding it pairs with: the nearest finding of
/// the other half (key id ↔ secret access key) in the same file (and, in git
/// history, the same commit); ties go to the earlier one.
fn aws_pairs(findings: &[Finding]) -> Vec<Option<usize>> {
    findings
        .iter()
        .map(|f| {
            if !is_aws(f.rule_id) {
                return None;
            }
            let other = if f.rule_id == AWS_KEY_ID {
                AWS_SECRET
            } else {
                AWS_KEY_ID
            };
            findings
                .iter()
                .enumerate()
                .filter(|(_, g)| g.rule_id == other && g.file == f.file && g.commit == f.commit)
                .min_by_key(|(j, g)| (g.line.abs_diff(f.line), *j))
                .map(|(j, _)| j)
        })
        .collect()
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
    let (resp, status, detail) = match send(req, &what) {
        Ok(r) => r,
        Err(v) => return v,
    };
    let judged = match (ep.judge, status) {
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

/// Sends one request (no retry, no redirect): the response, its status and
/// `"{what}: HTTP {status}"`; `Err` is the `unknown` answer for a failure or
/// a redirect.
fn send(
    req: reqwest::blocking::RequestBuilder,
    what: &str,
) -> Result<(reqwest::blocking::Response, u16, String), Verification> {
    let resp = match req.send() {
        Ok(r) => r,
        Err(e) if e.is_timeout() => return Err(unknown(format!("{what}: no answer in time"))),
        Err(e) if e.is_connect() => return Err(unknown(format!("{what}: could not connect"))),
        Err(_) => return Err(unknown(format!("{what}: request failed"))),
    };
    let status = resp.status().as_u16();
    let detail = format!("{what}: HTTP {status}");
    if (300..=399).contains(&status) {
        return Err(unknown(format!("{detail} (a redirect; not followed)")));
    }
    Ok((resp, status, detail))
}

/// AWS: `sts:GetCallerIdentity` (no permission needed, no side effect),
/// SigV4-signed by airlock-inject's signer with the key id and its secret
/// access key. The secret is never sent: only the key id and a signature. A
/// temporary key id (`ASIA…`) needs its session token, which the scan does not
/// pair, so it is not asked about.
fn ask_aws(
    client: &reqwest::blocking::Client,
    base: Option<&str>,
    id: &HeldKey,
    secret: &HeldKey,
) -> Verification {
    use airlock_inject::{NamedSecret, SigV4, SystemClock};
    let what = "AWS POST / (sts:GetCallerIdentity)";
    if id.0.starts_with(b"ASIA") {
        return unknown(format!(
            "{what}: not asked, a temporary key id (ASIA…) needs its session token"
        ));
    }
    let held =
        |name: &str, k: &HeldKey| NamedSecret::new(name, secrecy::SecretSlice::from(k.0.to_vec()));
    let Ok(signer) = SigV4::new(
        AWS_STS_REGION,
        "sts",
        held("aws access key id", id),
        held("aws secret access key", secret),
        None,
        std::sync::Arc::new(SystemClock),
    ) else {
        return unknown(format!("{what}: not asked, the pair cannot sign a request"));
    };
    let Ok((method, url, headers, body)) =
        signer.sign_form_post(base.unwrap_or(AWS_STS_ORIGIN), AWS_STS_BODY)
    else {
        return unknown(format!(
            "{what}: not asked, the request could not be signed"
        ));
    };
    let (resp, status, detail) = match send(
        client.request(method, url).headers(headers).body(body),
        what,
    ) {
        Ok(r) => r,
        Err(v) => return v,
    };
    if (200..=299).contains(&status) {
        return Verification {
            status: Liveness::Live,
            detail,
        };
    }
    let code = resp
        .bytes()
        .ok()
        .and_then(|b| aws_error_code(&b[..b.len().min(64 * 1024)]));
    match code.as_deref() {
        // the key id does not exist or is deactivated; an expired token
        // (STS's global endpoint knows the commercial partition only: a key
        // of aws-cn or aws-us-gov is unknown to it too; the detail says so)
        Some(c @ ("InvalidClientTokenId" | "ExpiredToken")) => Verification {
            status: Liveness::Revoked,
            detail: format!(
                "{detail} {c} (unless the key belongs to the China or GovCloud partition)"
            ),
        },
        // the key id exists but this is not its secret: a mismatched pair,
        // which says nothing about either half
        Some(c @ "SignatureDoesNotMatch") => unknown(format!(
            "{detail} {c} (the key id is real but the secret found beside it is not its secret)"
        )),
        Some(c) if c.len() <= 64 && c.bytes().all(|b| b.is_ascii_alphanumeric()) => {
            unknown(format!("{detail} {c}"))
        }
        _ => unknown(detail),
    }
}

/// The `<Code>` of an AWS query-protocol error (`<ErrorResponse><Error><Code>…`).
fn aws_error_code(body: &[u8]) -> Option<String> {
    let text = std::str::from_utf8(body).ok()?;
    let start = text.find("<Code>")? + "<Code>".len();
    let len = text[start..].find("</Code>")?;
    Some(text[start..start + len].trim().to_owned())
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

    /// AWS pairs go to STS only; the secret access key is listed as signing,
    /// not as a key sent anywhere.
    #[test]
    fn aws_pairs_are_asked_of_sts_only() {
        let listed = supported();
        for id in [AWS_KEY_ID, AWS_SECRET] {
            let (_, provider, request) = listed.iter().find(|(r, _, _)| *r == id).unwrap();
            assert_eq!(*provider, "AWS");
            assert_eq!(
                request,
                "POST https://sts.amazonaws.com/ (sts:GetCallerIdentity, SigV4)"
            );
            assert!(supports(id));
        }
        assert_eq!(
            aws_error_code(
                b"<ErrorResponse><Error><Type>Sender</Type><Code>InvalidClientTokenId</Code></Error></ErrorResponse>"
            )
            .as_deref(),
            Some("InvalidClientTokenId")
        );
        assert_eq!(aws_error_code(b"<Code>unterminated"), None);
        assert_eq!(aws_error_code(&[0xff, 0xfe]), None);
    }

    /// A key id pairs with the nearest secret in the same file, never with
    /// one in another file.
    #[test]
    fn aws_halves_pair_with_the_nearest_other_half_in_their_file() {
        let scanner = crate::Scanner::new().unwrap();
        let id = |c: char| format!("AKIA{}", c.to_string().repeat(4) + "Q7Z2XK4M3RN5");
        let secret = |c: char| {
            format!(
                "{}wK3pZ8qLm2Vn7Rt4Xy9Bc1Df6Gh0Jk5Ms/+Ua3",
                c.to_string().repeat(2)
            )
        };
        let text = format!(
            "aws_access_key_id = {}\naws_secret_access_key = {}\n\n\n\naws_access_key_id = {}\naws_secret_access_key = {}\n",
            id('B'),
            secret('b'),
            id('C'),
            secret('c')
        );
        let mut found = scanner.scan_bytes(std::path::Path::new("credentials"), text.as_bytes());
        found.extend(scanner.scan_bytes(
            std::path::Path::new("other/credentials"),
            format!("aws_access_key_id = {}\n", id('D')).as_bytes(),
        ));
        found.sort_by_key(|f| (f.file.clone(), f.line));
        let at: Vec<(&str, usize)> = found.iter().map(|f| (f.rule_id, f.line)).collect();
        assert_eq!(
            at,
            [
                (AWS_KEY_ID, 1),
                (AWS_SECRET, 2),
                (AWS_KEY_ID, 6),
                (AWS_SECRET, 7),
                (AWS_KEY_ID, 1)
            ]
        );
        assert_eq!(
            aws_pairs(&found),
            [Some(1), Some(0), Some(3), Some(2), None]
        );
    }

    #[test]
    fn held_keys_do_not_print() {
        assert_eq!(format!("{:?}", HeldKey::new(b"ghp_secret")), "HeldKey(…)");
    }
}
