//! Rotating a leaked credential through its provider's API.
//!
//! | provider | how | authenticates with |
//! |---|---|---|
//! | AWS IAM (`aws-sigv4` services) | `CreateAccessKey`, new pair stored, then `UpdateAccessKey Status=Inactive` on the old one | the old key pair (SigV4, us-east-1, `iam`) |
//! | Stripe restricted keys (`rk_…`) | `POST /v2/iam/api_keys/{id}/rotate` (old key kept 10 min), new key stored, then `POST …/{old}/expire` | the management key in vault secret `stripe-admin` |
//! | OpenAI service-account keys | a new key for the same service account, new key stored, then `DELETE` of the old one | the admin key in vault secret `openai-admin` |
//! | GitHub fine-grained / classic PATs, App private keys | no API exists: the plan says where to regenerate, then `airlock secret rotate` | — |
//!
//! Each provider is asked only at its documented host (`iam.amazonaws.com`,
//! `api.stripe.com`, `api.openai.com`), over HTTPS, with no proxy and no
//! redirects. Tests point every provider at a local mock with the test-only
//! variable [`TEST_ORIGIN_VAR`], honoured only for a loopback `http://`
//! origin, as `airlock scan --verify` does with its own.
//!
//! No data is lost: the vault gets the new value (a new version) only after
//! the provider returned it, and the old credential is retired only after the
//! vault was saved. A failure at any step says what happened and leaves the
//! old value in the vault.

use std::sync::Arc;
use std::time::Duration;

use airlock_config::{Auth, Config};
use airlock_home::Home;
use secrecy::{ExposeSecret, SecretSlice};
use serde_json::Value;
use zeroize::Zeroizing;

/// Test-only: replaces every provider's origin with a loopback `http://`
/// origin (`http://127.0.0.1:PORT`), so tests answer with local mocks. Any
/// other value refuses every rotation.
pub(crate) const TEST_ORIGIN_VAR: &str = "AIRLOCK_INCIDENT_TEST_ORIGIN";

/// The vault secret holding Stripe's management key.
const STRIPE_ADMIN: &str = "stripe-admin";
/// The vault secret holding OpenAI's admin key.
const OPENAI_ADMIN: &str = "openai-admin";
/// The largest provider answer read (a page of 100 keys is far smaller).
const MAX_ANSWER: u64 = 4 << 20;
/// How long Stripe keeps the old key after a rotation, so a failure to store
/// the new one can be recovered from; it is expired at once after the store.
const STRIPE_GRACE_MINUTES: u64 = 10;

/// Who issued a credential.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Provider {
    Aws,
    Stripe,
    OpenAi,
    GitHubToken,
    GitHubApp,
    Unknown,
}

impl Provider {
    pub(crate) fn name(self) -> &'static str {
        match self {
            Provider::Aws => "AWS IAM",
            Provider::Stripe => "Stripe",
            Provider::OpenAi => "OpenAI",
            Provider::GitHubToken => "GitHub token",
            Provider::GitHubApp => "GitHub App",
            Provider::Unknown => "unknown provider",
        }
    }

    fn origin(self) -> &'static str {
        match self {
            Provider::Aws => "https://iam.amazonaws.com",
            Provider::Stripe => "https://api.stripe.com",
            Provider::OpenAi => "https://api.openai.com",
            _ => "",
        }
    }
}

/// One credential to rotate: its vault secrets (AWS: key id, then secret key).
#[derive(Debug, Clone)]
pub(crate) struct Rotation {
    pub(crate) secrets: Vec<String>,
    pub(crate) service: Option<String>,
    pub(crate) provider: Provider,
    /// What will be done, or why it cannot be done here.
    pub(crate) how: String,
    /// Whether airlock can do it through the provider's API.
    pub(crate) automatic: bool,
}

/// What a rotation did: a note, or why nothing changed.
#[derive(Debug)]
pub(crate) struct Rotated {
    pub(crate) secrets: Vec<String>,
    pub(crate) result: Result<String, String>,
}

/// The rotations `names` call for, judged from the services that use them and
/// the shape of each value (never shown).
pub(crate) fn plan(
    config: &Config,
    vault: &airlock_vault::Vault,
    names: &[String],
) -> Vec<Rotation> {
    let mut out: Vec<Rotation> = Vec::new();
    for name in names {
        if out.iter().any(|r| r.secrets.contains(name)) {
            continue;
        }
        let service = config
            .services
            .values()
            .find(|s| s.auth.secrets().contains(&name.as_str()));
        if let Some(svc) = service
            && let Auth::AwsSigV4 {
                access_key_id,
                secret_access_key,
                session_token,
                ..
            } = &svc.auth
        {
            let (automatic, how) = if session_token.is_some() {
                (
                    false,
                    "temporary credentials (session token): IAM cannot rotate them; they expire on their own — revoke the role's sessions in the IAM console".to_string(),
                )
            } else {
                (
                    true,
                    "CreateAccessKey, store the new pair, then UpdateAccessKey Status=Inactive on the old key (delete it once nothing breaks)".to_string(),
                )
            };
            out.push(Rotation {
                secrets: vec![access_key_id.clone(), secret_access_key.clone()],
                service: Some(svc.name.clone()),
                provider: Provider::Aws,
                how,
                automatic,
            });
            continue;
        }
        let app = service.is_some_and(|s| matches!(s.auth, Auth::GitHubApp { .. }));
        let value = vault.get(name).ok();
        let starts = |p: &str| {
            value
                .as_ref()
                .is_some_and(|v| v.expose_secret().starts_with(p.as_bytes()))
        };
        let (provider, automatic, how) = if app {
            (
                Provider::GitHubApp,
                false,
                "GitHub has no API to create an App private key: generate one in the App's settings (Private keys), `airlock secret rotate` it in, then delete the old key there".to_string(),
            )
        } else if starts("github_pat_") || starts("ghp_") || starts("gho_") || starts("ghu_") {
            (
                Provider::GitHubToken,
                false,
                "GitHub has no API to regenerate a personal access token: regenerate it at https://github.com/settings/tokens, then `airlock secret rotate` it in".to_string(),
            )
        } else if starts("rk_live_") || starts("rk_test_") {
            (
                Provider::Stripe,
                true,
                format!(
                    "find the key among the account's API keys, rotate it (POST /v2/iam/api_keys/ID/rotate), store the new key, expire the old one; needs a management key in vault secret \"{STRIPE_ADMIN}\""
                ),
            )
        } else if starts("sk-proj-") || starts("sk-svcacct-") {
            (
                Provider::OpenAi,
                true,
                format!(
                    "find the key among the organization's project keys, create a new key for its service account, store it, delete the old one; needs an admin key in vault secret \"{OPENAI_ADMIN}\""
                ),
            )
        } else {
            (
                Provider::Unknown,
                false,
                "no provider API known for this credential: rotate it at its provider, then `airlock secret rotate` it in".to_string(),
            )
        };
        // The management key must be there before anything is asked.
        let admin = match provider {
            Provider::Stripe => Some(STRIPE_ADMIN),
            Provider::OpenAi => Some(OPENAI_ADMIN),
            _ => None,
        };
        let (automatic, how) = match admin.filter(|a| !vault.contains(a)) {
            Some(a) => (
                false,
                format!(
                    "{} can rotate this key, but needs its management key first: `airlock secret set {a}`, then run the incident again",
                    provider.name()
                ),
            ),
            None => (automatic, how),
        };
        out.push(Rotation {
            secrets: vec![name.clone()],
            service: service.map(|s| s.name.clone()),
            provider,
            how,
            automatic,
        });
    }
    out
}

/// The test origin, checked: `Ok(None)` unset; `Err` for anything but a
/// loopback `http://` origin with nothing after it.
fn test_origin() -> Result<Option<String>, String> {
    let Some(raw) = std::env::var_os(TEST_ORIGIN_VAR) else {
        return Ok(None);
    };
    let refused = format!(
        "{TEST_ORIGIN_VAR} is set to something other than a loopback http:// origin; it exists for tests only — unset it"
    );
    let text = raw.to_str().ok_or_else(|| refused.clone())?;
    let url = url::Url::parse(text).map_err(|_| refused.clone())?;
    let loopback = match url.host() {
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        Some(url::Host::Domain(d)) => d == "localhost",
        None => false,
    };
    let bare = url.path() == "/" && url.query().is_none() && url.fragment().is_none();
    if url.scheme() != "http"
        || !loopback
        || !bare
        || !url.username().is_empty()
        || url.password().is_some()
    {
        return Err(refused);
    }
    Ok(Some(url.origin().ascii_serialization()))
}

/// A provider's HTTP client: HTTPS only (unless under test), no proxy, no
/// redirects, time-boxed.
struct Client {
    http: reqwest::blocking::Client,
    origin: String,
    provider: Provider,
}

impl Client {
    fn new(provider: Provider) -> Result<Client, String> {
        let test = test_origin()?;
        let http = reqwest::blocking::Client::builder()
            .no_proxy()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(Duration::from_secs(20))
            .https_only(test.is_none())
            .user_agent(concat!("airlock-incident/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| format!("cannot build the HTTP client: {e}"))?;
        Ok(Client {
            http,
            origin: test.unwrap_or_else(|| provider.origin().to_string()),
            provider,
        })
    }

    /// Sends `req`; the body of a 2xx answer, else what went wrong (never a
    /// body that might echo a key).
    fn send(&self, what: &str, req: reqwest::blocking::RequestBuilder) -> Result<Vec<u8>, String> {
        let who = self.provider.name();
        let resp = req.send().map_err(|e| {
            if e.is_timeout() {
                format!("{who} {what}: no answer in time")
            } else if e.is_connect() {
                format!("{who} {what}: could not connect")
            } else {
                format!("{who} {what}: request failed")
            }
        })?;
        let status = resp.status().as_u16();
        if !(200..300).contains(&status) {
            return Err(format!("{who} {what}: HTTP {status}"));
        }
        // The answers read here are a few KiB; a larger one is not trusted.
        let mut body = Vec::new();
        std::io::Read::read_to_end(&mut std::io::Read::take(resp, MAX_ANSWER + 1), &mut body)
            .map_err(|_| format!("{who} {what}: the answer was cut off"))?;
        if body.len() as u64 > MAX_ANSWER {
            return Err(format!(
                "{who} {what}: the answer is over {MAX_ANSWER} bytes"
            ));
        }
        Ok(body)
    }

    /// A JSON call with `Authorization: Bearer key` (marked sensitive).
    fn json(
        &self,
        method: reqwest::Method,
        path: &str,
        key: &[u8],
        body: Option<Value>,
    ) -> Result<Value, String> {
        let what = format!("{method} {}", path.split('?').next().unwrap_or(path));
        let mut value = Zeroizing::new(b"Bearer ".to_vec());
        value.extend_from_slice(key);
        let mut header = reqwest::header::HeaderValue::from_bytes(&value[..]).map_err(|_| {
            format!(
                "{} {what}: the key cannot be sent in a header",
                self.provider.name()
            )
        })?;
        header.set_sensitive(true);
        let mut req = self
            .http
            .request(method, format!("{}{path}", self.origin))
            .header(reqwest::header::AUTHORIZATION, header);
        if let Some(b) = body {
            req = req
                .header(reqwest::header::CONTENT_TYPE, "application/json")
                .body(b.to_string());
        }
        let bytes = Zeroizing::new(self.send(&what, req)?);
        if bytes.is_empty() {
            return Ok(Value::Null);
        }
        serde_json::from_slice(&bytes)
            .map_err(|_| format!("{} {what}: the answer is not JSON", self.provider.name()))
    }
}

/// Whether a provider's redacted form of a key (`rk_test_…abcd`,
/// `sk-proj-ab…yz`) fits `key`: a known head and tail, both non-empty.
fn redacted_fits(redacted: &str, key: &[u8]) -> bool {
    let cut = ["...", "…", "****", "***"]
        .iter()
        .find_map(|sep| redacted.split_once(sep));
    let Some((head, tail)) = cut else {
        return false;
    };
    let tail = tail.trim_start_matches(['*', '.', '…']);
    !head.is_empty()
        && !tail.is_empty()
        && head.len() + tail.len() < key.len()
        && key.starts_with(head.as_bytes())
        && key.ends_with(tail.as_bytes())
}

/// The exact-one item of a provider's `list` answer (its `data` array) whose
/// `redacted` member fits `key`.
fn find_key<'a>(
    list: &'a Value,
    redacted: &dyn Fn(&Value) -> Option<&str>,
    key: &[u8],
    who: &str,
) -> Result<&'a Value, String> {
    let hits: Vec<&Value> = list["data"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|v| redacted(v).is_some_and(|r| redacted_fits(r, key)))
        .collect();
    match hits.as_slice() {
        [one] => Ok(one),
        [] => Err(format!(
            "{who}: no key of the account matches the leaked one (already deleted?)"
        )),
        _ => Err(format!(
            "{who}: {} keys look like the leaked one; rotate it by hand",
            hits.len()
        )),
    }
}

/// A value from the vault, or why it is missing.
fn secret(vault: &airlock_vault::Vault, name: &str, why: &str) -> Result<SecretSlice<u8>, String> {
    vault.get(name).map_err(|_| {
        format!("vault secret \"{name}\" is missing: {why} (`airlock secret set {name}`)")
    })
}

/// A provider's API as its management (admin) key calls it: JSON calls with
/// `Authorization: Bearer` that key.
struct Admin {
    client: Client,
    key: SecretSlice<u8>,
}

impl Admin {
    /// The client for `provider`, with the key in vault secret `name` (`why`
    /// says what it is, for the error when it is missing).
    fn new(
        vault: &airlock_vault::Vault,
        provider: Provider,
        name: &str,
        why: &str,
    ) -> Result<Admin, String> {
        let client = Client::new(provider)?;
        let key = secret(vault, name, why)?;
        Ok(Admin { client, key })
    }

    /// How to retire the old key once the new one is stored: the admin call
    /// `method path`, then `done` says what became of it.
    fn retire(
        self,
        method: reqwest::Method,
        path: String,
        done: String,
    ) -> impl FnOnce() -> Result<String, String> + 'static {
        move || {
            self.call(method, &path, None)?;
            Ok(done)
        }
    }

    /// `Client::json` with the admin key.
    fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> Result<Value, String> {
        self.client
            .json(method, path, self.key.expose_secret(), body)
    }
}

/// The new values the provider issued, and how to retire the old credential
/// once they are stored.
struct Issued {
    values: Vec<(String, Zeroizing<Vec<u8>>)>,
    retire: Box<dyn FnOnce() -> Result<String, String>>,
}

impl Issued {
    /// The one new key `value` for `r`'s secret, and how to retire the old.
    fn key(
        r: &Rotation,
        value: &str,
        retire: impl FnOnce() -> Result<String, String> + 'static,
    ) -> Issued {
        Issued {
            values: vec![(
                r.secrets[0].clone(),
                Zeroizing::new(value.as_bytes().to_vec()),
            )],
            retire: Box::new(retire),
        }
    }
}

/// Rotates `r`: the provider issues, the vault stores, the old is retired.
pub(crate) fn apply(home: &Home, vault: &mut airlock_vault::Vault, r: &Rotation) -> Rotated {
    let result = if r.automatic {
        issue(vault, r).and_then(|issued| store(home, vault, issued))
    } else {
        Err(format!("not automatic — {}", r.how))
    };
    Rotated {
        secrets: r.secrets.clone(),
        result,
    }
}

fn issue(vault: &airlock_vault::Vault, r: &Rotation) -> Result<Issued, String> {
    match r.provider {
        Provider::Aws => aws(vault, r),
        Provider::Stripe => stripe(vault, r),
        Provider::OpenAi => openai(vault, r),
        _ => Err(r.how.clone()),
    }
}

/// Stores the new values as new versions (under the home lock, on the vault as
/// it is now on disk), then retires the old credential.
fn store(home: &Home, vault: &mut airlock_vault::Vault, issued: Issued) -> Result<String, String> {
    let saved = (|| -> anyhow::Result<()> {
        let _lock = home.lock()?;
        vault.refresh(&std::fs::read(home.vault_path())?)?;
        for (name, value) in &issued.values {
            vault.rotate(name, value)?;
        }
        vault.save(home)?;
        Ok(())
    })();
    if let Err(e) = saved {
        return Err(format!(
            "the provider issued a new credential but the vault could not store it ({e}); the old credential was NOT retired and still works — retire the new one at the provider"
        ));
    }
    // The vault is saved above; the store shares each new value with the team
    // (nothing to do in local mode).
    let store = crate::store::open(home);
    for (name, value) in &issued.values {
        if let Err(e) = store.share_secret(vault, name, value).tell() {
            crate::output::warn(format_args!(
                "the new value of \"{name}\" is stored here but not shared with the team: {e:#}"
            ));
        }
    }
    (issued.retire)().map_err(|e| {
        format!("the new credential is stored, but retiring the old one failed: {e}; retire it at the provider")
    })
}

/// Text of one XML element (IAM's answers are small and fixed).
fn xml_text<'a>(xml: &'a str, tag: &str) -> Option<&'a str> {
    let open = format!("<{tag}>");
    let start = xml.find(&open)? + open.len();
    let len = xml[start..].find(&format!("</{tag}>"))?;
    Some(xml[start..start + len].trim())
}

/// One IAM Query API call (`POST /`, form body), SigV4-signed with `key`.
fn iam_call(
    client: &Client,
    key: &airlock_inject::SigV4,
    form: &str,
) -> Result<Zeroizing<String>, String> {
    let action = form
        .split('&')
        .find_map(|p| p.strip_prefix("Action="))
        .unwrap_or("IAM call")
        .to_string();
    let (method, url, headers, body) = key
        .sign_form_post(client.origin.clone(), form.to_string())
        .map_err(|e| format!("AWS IAM {action}: cannot sign: {e}"))?;
    let request = client.http.request(method, url).headers(headers).body(body);
    let body = client.send(&action, request)?;
    String::from_utf8(body)
        .map(Zeroizing::new)
        .map_err(|_| format!("AWS IAM {action}: the answer is not text"))
}

fn aws_signer(
    id: SecretSlice<u8>,
    secret: SecretSlice<u8>,
    names: &[String],
) -> Result<airlock_inject::SigV4, String> {
    airlock_inject::SigV4::new(
        "us-east-1",
        "iam",
        airlock_inject::NamedSecret::new(names[0].clone(), id),
        airlock_inject::NamedSecret::new(names[1].clone(), secret),
        None,
        Arc::new(airlock_inject::SystemClock),
    )
    .map_err(|e| format!("AWS IAM: the stored key cannot sign: {e}"))
}

fn aws(vault: &airlock_vault::Vault, r: &Rotation) -> Result<Issued, String> {
    let client = Client::new(Provider::Aws)?;
    let old_id = secret(vault, &r.secrets[0], "the access key id")?;
    let old_secret = secret(vault, &r.secrets[1], "the secret access key")?;
    let old_id_text = Zeroizing::new(
        String::from_utf8(old_id.expose_secret().to_vec())
            .map_err(|_| "AWS IAM: the stored access key id is not text".to_string())?,
    );
    let signer = aws_signer(old_id, old_secret, &r.secrets)?;
    let answer = iam_call(
        &client,
        &signer,
        "Action=CreateAccessKey&Version=2010-05-08",
    )?;
    let (Some(new_id), Some(new_secret)) = (
        xml_text(&answer, "AccessKeyId"),
        xml_text(&answer, "SecretAccessKey"),
    ) else {
        return Err("AWS IAM CreateAccessKey: the answer holds no new key".into());
    };
    let values = vec![
        (
            r.secrets[0].clone(),
            Zeroizing::new(new_id.as_bytes().to_vec()),
        ),
        (
            r.secrets[1].clone(),
            Zeroizing::new(new_secret.as_bytes().to_vec()),
        ),
    ];
    let retire = Box::new(move || {
        let form = Zeroizing::new(format!(
            "Action=UpdateAccessKey&AccessKeyId={}&Status=Inactive&Version=2010-05-08",
            old_id_text.as_str()
        ));
        iam_call(&client, &signer, &form)?;
        Ok("new access key stored; the old one is now Inactive at AWS (delete it once nothing breaks)".to_string())
    });
    Ok(Issued { values, retire })
}

fn stripe(vault: &airlock_vault::Vault, r: &Rotation) -> Result<Issued, String> {
    let admin = Admin::new(
        vault,
        Provider::Stripe,
        STRIPE_ADMIN,
        "Stripe's management key",
    )?;
    let leaked = secret(vault, &r.secrets[0], "the leaked key")?;
    let list = admin.call(reqwest::Method::GET, "/v2/iam/api_keys?limit=100", None)?;
    let old = find_key(
        &list,
        &|v| v["secret_key"]["secret_token_redacted"].as_str(),
        leaked.expose_secret(),
        "Stripe",
    )?;
    let old_id = old["id"]
        .as_str()
        .ok_or("Stripe: the key has no id")?
        .to_string();
    if !is_id(&old_id) {
        return Err("Stripe: the key's id is not a plain id".into());
    }
    let rotated = admin.call(
        reqwest::Method::POST,
        &format!("/v2/iam/api_keys/{old_id}/rotate"),
        Some(serde_json::json!({"expire_current_key_in_minutes": STRIPE_GRACE_MINUTES})),
    )?;
    let Some(token) = rotated["secret_key"]["token"].as_str() else {
        return Err(format!(
            "Stripe returned the new key encrypted (live mode) or not at all; airlock cannot read it — the old key expires in {STRIPE_GRACE_MINUTES} minutes: rotate it in the Dashboard now"
        ));
    };
    let retire = admin.retire(
        reqwest::Method::POST,
        format!("/v2/iam/api_keys/{old_id}/expire"),
        format!("new key stored; the old key ({old_id}) is expired at Stripe"),
    );
    Ok(Issued::key(r, token, retire))
}

fn openai(vault: &airlock_vault::Vault, r: &Rotation) -> Result<Issued, String> {
    let admin = Admin::new(vault, Provider::OpenAi, OPENAI_ADMIN, "OpenAI's admin key")?;
    let leaked = secret(vault, &r.secrets[0], "the leaked key")?;
    let projects = admin.call(
        reqwest::Method::GET,
        "/v1/organization/projects?limit=100",
        None,
    )?;
    let mut found: Option<(String, Value)> = None;
    for p in projects["data"].as_array().into_iter().flatten() {
        let Some(pid) = p["id"].as_str().filter(|id| is_id(id)) else {
            continue;
        };
        let keys = admin.call(
            reqwest::Method::GET,
            &format!("/v1/organization/projects/{pid}/api_keys?limit=100"),
            None,
        )?;
        if let Ok(k) = find_key(
            &keys,
            &|v| v["redacted_value"].as_str(),
            leaked.expose_secret(),
            "OpenAI",
        ) {
            if found.is_some() {
                return Err(
                    "OpenAI: keys in several projects look like the leaked one; rotate it by hand"
                        .into(),
                );
            }
            found = Some((pid.to_string(), k.clone()));
        }
    }
    let Some((pid, old)) = found else {
        return Err(
            "OpenAI: no project key of the organization matches the leaked one (already deleted?)"
                .into(),
        );
    };
    let old_id = old["id"]
        .as_str()
        .filter(|id| is_id(id))
        .ok_or("OpenAI: the key has no plain id")?
        .to_string();
    let Some(sa) = old["owner"]["service_account"]["id"]
        .as_str()
        .filter(|_| old["owner"]["type"] == "service_account")
    else {
        return Err("OpenAI: the leaked key belongs to a user, and OpenAI's API creates keys only for service accounts: create a new key in the dashboard, `airlock secret rotate` it in, and delete the old one".into());
    };
    if !is_id(sa) {
        return Err("OpenAI: the service account id is not a plain id".into());
    }
    let created = admin.call(
        reqwest::Method::POST,
        &format!("/v1/organization/projects/{pid}/service_accounts/{sa}/api_keys"),
        Some(serde_json::json!({"name": "airlock incident rotation"})),
    )?;
    let Some(value) = created["value"].as_str() else {
        return Err("OpenAI: the answer holds no new key".into());
    };
    let retire = admin.retire(
        reqwest::Method::DELETE,
        format!("/v1/organization/projects/{pid}/api_keys/{old_id}"),
        format!("new key stored; the old key ({old_id}) is deleted at OpenAI"),
    );
    Ok(Issued::key(r, value, retire))
}

/// A provider's object id that is safe in a URL path and a message.
fn is_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 128
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redacted_forms_fit_only_their_key() {
        let key = b"rk_test_51abcDEFghiJKLmnoPQRstu";
        assert!(redacted_fits("rk_test_...Rstu", key));
        assert!(redacted_fits("rk_test_51…stu", key));
        assert!(!redacted_fits("rk_test_...Rstx", key));
        assert!(!redacted_fits("rk_live_...Rstu", key));
        // No head or no tail says nothing.
        assert!(!redacted_fits("...Rstu", key));
        assert!(!redacted_fits("rk_test_...", key));
        assert!(!redacted_fits("rk_test_51abcDEFghiJKLmnoPQRstu", key));
    }

    #[test]
    fn ids_are_plain() {
        assert!(is_id("key_abc-12"));
        for bad in ["", "../x", "a/b", "a?b", "a b", "a%2f"] {
            assert!(!is_id(bad), "{bad}");
        }
    }

    #[test]
    fn xml_text_reads_one_element() {
        let xml = "<A><AccessKeyId> AKIAX </AccessKeyId><SecretAccessKey>s</SecretAccessKey></A>";
        assert_eq!(xml_text(xml, "AccessKeyId"), Some("AKIAX"));
        assert_eq!(xml_text(xml, "Nope"), None);
    }
}
