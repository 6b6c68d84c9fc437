//! github-app, gcp-service-account and oauth2: local token endpoints on 127.0.0.1 that
//! verify the JWT with the public key / the client credentials, issue short-lived
//! tokens and count requests — cache hits, refresh at expiry, single-flight under 50
//! concurrent callers, clear errors without secrets.

use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use airlock_config::{Config, Service};
use airlock_inject::{Clock, InjectError, Injector, Injectors, ManualClock, TokenClient};
use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::rsa::KeySize;
use aws_lc_rs::signature::{KeyPair, RSA_PKCS1_2048_8192_SHA256, RsaKeyPair, UnparsedPublicKey};
use base64::Engine as _;
use secrecy::SecretSlice;

use crate::support::{Endpoint, Received, emitted, header, request};

const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD;
const B64URL: base64::engine::GeneralPurpose = base64::engine::general_purpose::URL_SAFE_NO_PAD;
const T0: u64 = 1_700_000_000;

struct TestKey {
    pkcs8_pem: String,
    pkcs1_pem: String,
    public: Vec<u8>,
}

fn test_key() -> &'static TestKey {
    static KEY: OnceLock<TestKey> = OnceLock::new();
    KEY.get_or_init(|| {
        let kp = RsaKeyPair::generate(KeySize::Rsa2048).unwrap();
        let pkcs8 = kp.as_der().unwrap();
        let pkcs8 = pkcs8.as_ref();
        // 64 characters a line between the markers.
        let pem = |label: &str, der: &[u8]| {
            let mut pem = format!("-----BEGIN {label}-----\n");
            for line in B64.encode(der).as_bytes().chunks(64) {
                pem.push_str(std::str::from_utf8(line).unwrap());
                pem.push('\n');
            }
            pem + &format!("-----END {label}-----\n")
        };
        TestKey {
            pkcs8_pem: pem("PRIVATE KEY", pkcs8),
            pkcs1_pem: pem("RSA PRIVATE KEY", pkcs1_from_pkcs8(pkcs8)),
            public: kp.public_key().as_ref().to_vec(),
        }
    })
}

/// The RSAPrivateKey inside a PKCS#8 PrivateKeyInfo (GitHub hands out PKCS#1 PEMs).
fn pkcs1_from_pkcs8(der: &[u8]) -> &[u8] {
    fn tlv(d: &[u8]) -> (u8, &[u8], &[u8]) {
        let tag = d[0];
        let (len, off) = if d[1] < 0x80 {
            (usize::from(d[1]), 2)
        } else {
            let n = usize::from(d[1] & 0x7f);
            (
                d[2..2 + n].iter().fold(0, |a, &b| a << 8 | usize::from(b)),
                2 + n,
            )
        };
        (tag, &d[off..off + len], &d[off + len..])
    }
    let (_, info, _) = tlv(der); // PrivateKeyInfo SEQUENCE
    let (_, _, rest) = tlv(info); // version
    let (_, _, rest) = tlv(rest); // algorithm
    let (tag, key, _) = tlv(rest); // privateKey OCTET STRING
    assert_eq!(tag, 0x04);
    key
}

/// Checks an RS256 JWT against the test public key; returns (header, claims).
fn verify_jwt(jwt: &str) -> Option<(serde_json::Value, serde_json::Value)> {
    let (signed, sig) = jwt.rsplit_once('.')?;
    let (h, c) = signed.split_once('.')?;
    let sig = B64URL.decode(sig).ok()?;
    UnparsedPublicKey::new(&RSA_PKCS1_2048_8192_SHA256, &test_key().public)
        .verify(signed.as_bytes(), &sig)
        .ok()?;
    let h = serde_json::from_slice(&B64URL.decode(h).ok()?).ok()?;
    let c = serde_json::from_slice(&B64URL.decode(c).ok()?).ok()?;
    Some((h, c))
}

fn service(toml: &str) -> Service {
    let cfg = Config::parse(Path::new("airlock.toml"), toml).unwrap();
    cfg.services.into_values().next().unwrap()
}

fn lookup(pairs: Vec<(&'static str, String)>) -> impl FnMut(&str) -> Option<SecretSlice<u8>> {
    move |name| {
        pairs
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| SecretSlice::from(v.as_bytes().to_vec()))
    }
}

fn rfc3339(unix: u64) -> String {
    jiff::Timestamp::from_second(i64::try_from(unix).unwrap())
        .unwrap()
        .to_string()
}

/// Injects through the registry and returns the Authorization header.
async fn authorize(
    injectors: &Injectors,
    svc: &Service,
    lookup: &mut (dyn FnMut(&str) -> Option<SecretSlice<u8>> + Send),
) -> Result<(String, Arc<dyn Injector>), InjectError> {
    let inj = injectors.get(svc, lookup)?;
    let mut req = request("GET", "https://api.example.com", "/x", None, &[], b"");
    inj.inject(&mut req).await?;
    Ok((header(&req, "authorization").to_string(), inj))
}

/// 50 concurrent first requests: one token request, one token.
/// `Endpoint::start` with `handler` answering after 50 ms: long enough for fifty
/// concurrent callers to pile up behind the first token request.
async fn slow_endpoint<F, Fut>(handler: F) -> Endpoint
where
    F: Fn(Received) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = (u16, String)> + Send + 'static,
{
    let handler = Arc::new(handler);
    Endpoint::start(move |r| {
        let handler = handler.clone();
        async move {
            tokio::time::sleep(Duration::from_millis(50)).await;
            handler(r).await
        }
    })
    .await
}

/// After fifty first requests at once: the endpoint got one token request (it
/// minted one token for all of them) and rejected nothing (else `rejected`).
fn assert_one_token(endpoint: &Endpoint, seen_bad: &AtomicBool, rejected: &str) {
    assert!(!seen_bad.load(Ordering::SeqCst), "{rejected}");
    assert_eq!(
        endpoint.calls(),
        1,
        "single-flight: one token request for 50 callers"
    );
}

async fn fifty_at_once(
    injectors: &Arc<Injectors>,
    svc: &Service,
    secrets: Vec<(&'static str, String)>,
) -> Vec<String> {
    let mut tasks = Vec::new();
    for _ in 0..50 {
        let injectors = injectors.clone();
        let svc = svc.clone();
        let secrets = secrets.clone();
        tasks.push(tokio::spawn(async move {
            let mut l = lookup(secrets);
            authorize(&injectors, &svc, &mut l).await.unwrap().0
        }));
    }
    let mut out = Vec::new();
    for t in tasks {
        out.push(t.await.unwrap());
    }
    out
}

fn assert_no_secret(text: &str, secrets: &[&str]) {
    for s in secrets {
        assert!(!text.contains(s), "{text:?} contains a secret");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn github_app_installation_tokens() {
    let clock = Arc::new(ManualClock::at_unix(T0));
    let failing = Arc::new(AtomicBool::new(false));
    let seen_bad = Arc::new(AtomicBool::new(false));
    let (c, f, bad) = (clock.clone(), failing.clone(), seen_bad.clone());
    let n = Arc::new(AtomicUsize::new(0)); // tokens issued
    let endpoint = slow_endpoint(move |r: Received| {
        let (c, f, bad, n) = (c.clone(), f.clone(), bad.clone(), n.clone());
        async move {
            if f.load(Ordering::SeqCst) {
                return (401, r#"{"message":"Bad credentials","documentation_url":"https://docs.github.com/rest"}"#.to_string());
            }
            let now = c.unix_seconds();
            let ok = r.method == "POST"
                && r.path == "/api/v3/app/installations/7/access_tokens"
                && r.header("accept") == Some("application/vnd.github+json")
                && r.header("x-github-api-version").is_some()
                && r.header("user-agent").is_some();
            let jwt = r.header("authorization").and_then(|a| a.strip_prefix("Bearer "));
            let claims = jwt.and_then(verify_jwt);
            let valid = ok
                && claims.as_ref().is_some_and(|(h, c)| {
                    h["alg"] == "RS256"
                        && c["iss"] == 42
                        && c["iat"] == now - 60
                        && c["exp"] == now + 540
                });
            if !valid {
                bad.store(true, Ordering::SeqCst);
                return (401, r#"{"message":"A JSON web token could not be decoded"}"#.into());
            }
            let i = n.fetch_add(1, Ordering::SeqCst);
            (
                201,
                format!(
                    r#"{{"token":"ghs_installation_token_{i}","expires_at":"{}","permissions":{{"contents":"read"}}}}"#,
                    rfc3339(now + 3600)
                ),
            )
        }
    })
    .await;

    let svc = service(&format!(
        "[services.gh]\nurl = \"{}\"\nauth = {{ type = \"github-app\", app_id = 42, installation_id = 7, secret = \"gh_pem\" }}\n",
        endpoint.url("/api/v3")
    ));
    let injectors = Arc::new(Injectors::new().with_clock(clock.clone()));
    // GitHub's own format: PKCS#1.
    let secrets = vec![("gh_pem", test_key().pkcs1_pem.clone())];

    let auths = fifty_at_once(&injectors, &svc, secrets.clone()).await;
    assert_one_token(&endpoint, &seen_bad, "the endpoint rejected a JWT");
    assert!(auths.iter().all(|a| a == "Bearer ghs_installation_token_0"));

    // Cache hit; the minted token is reported for scrubbing.
    let mut l = lookup(secrets.clone());
    let (a, inj) = authorize(&injectors, &svc, &mut l).await.unwrap();
    assert_eq!(a, "Bearer ghs_installation_token_0");
    assert_eq!(endpoint.calls(), 1);
    assert!(emitted(&*inj).contains(&("gh_pem".into(), "ghs_installation_token_0".into())));

    // Shortly before expiry: refreshed once; the old token stays scrubbed.
    clock.advance(Duration::from_secs(3539));
    let (a, _) = authorize(&injectors, &svc, &mut l).await.unwrap();
    assert_eq!(a, "Bearer ghs_installation_token_0");
    clock.advance(Duration::from_secs(2));
    let (a, inj) = authorize(&injectors, &svc, &mut l).await.unwrap();
    assert_eq!(a, "Bearer ghs_installation_token_1");
    assert_eq!(endpoint.calls(), 2);
    let e = emitted(&*inj);
    assert!(e.iter().any(|(_, v)| v == "ghs_installation_token_0"));
    assert!(e.iter().any(|(_, v)| v == "ghs_installation_token_1"));

    // The endpoint fails: a clear upstream error, no secret in it, and waiting callers
    // share the one failed attempt.
    failing.store(true, Ordering::SeqCst);
    clock.advance(Duration::from_secs(7200));
    let calls = endpoint.calls();
    let mut tasks = Vec::new();
    for _ in 0..20 {
        let (injectors, svc, secrets) = (injectors.clone(), svc.clone(), secrets.clone());
        tasks.push(tokio::spawn(async move {
            let mut l = lookup(secrets);
            authorize(&injectors, &svc, &mut l).await.err().unwrap()
        }));
    }
    let mut errors = Vec::new();
    for t in tasks {
        errors.push(t.await.unwrap());
    }
    assert_eq!(
        endpoint.calls(),
        calls + 1,
        "one failed request for 20 waiting callers"
    );
    let err = &errors[0];
    assert!(matches!(err, InjectError::TokenEndpoint { .. }) && err.is_upstream());
    let msg = err.to_string();
    assert!(
        msg.contains("\"gh_pem\"") && msg.contains("HTTP 401") && msg.contains("Bad credentials"),
        "{msg}"
    );
    assert!(
        msg.contains("/api/v3/app/installations/7/access_tokens"),
        "{msg}"
    );
    let pem_body: String = test_key().pkcs1_pem.lines().nth(1).unwrap().to_string();
    assert_no_secret(&msg, &[&pem_body, "ghs_installation_token", "eyJ"]);

    // The key rotates (PKCS#8 now): a fresh injector, fresh token.
    failing.store(false, Ordering::SeqCst);
    let mut l = lookup(vec![("gh_pem", test_key().pkcs8_pem.clone())]);
    let (a, _) = authorize(&injectors, &svc, &mut l).await.unwrap();
    assert_eq!(a, "Bearer ghs_installation_token_2");
}

#[tokio::test]
async fn github_app_bad_key_is_named_not_shown() {
    let svc = service(
        "[services.gh]\nurl = \"https://api.github.com\"\nauth = { type = \"github-app\", app_id = \"Iv1.abc\", installation_id = 7, secret = \"gh_pem\" }\n",
    );
    let injectors = Injectors::new();
    let mut l = lookup(vec![("gh_pem", "-----BEGIN RSA PRIVATE KEY-----\nc2VjcmV0LWtleS1ieXRlcw==\n-----END RSA PRIVATE KEY-----\n".into())]);
    let err = injectors.get(&svc, &mut l).err().unwrap();
    let msg = err.to_string();
    assert!(matches!(err, InjectError::InvalidSecret { .. }), "{msg}");
    assert!(
        msg.contains("\"gh_pem\"") && !msg.contains("c2VjcmV0"),
        "{msg}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gcp_service_account_access_tokens() {
    let clock = Arc::new(ManualClock::at_unix(T0));
    let seen_bad = Arc::new(AtomicBool::new(false));
    let token_uri: Arc<OnceLock<String>> = Arc::new(OnceLock::new());
    let (c, bad, uri) = (clock.clone(), seen_bad.clone(), token_uri.clone());
    let n = Arc::new(AtomicUsize::new(0)); // tokens issued
    let endpoint = slow_endpoint(move |r: Received| {
        let (c, bad, uri, n) = (c.clone(), bad.clone(), uri.clone(), n.clone());
        async move {
            let now = c.unix_seconds();
            let form: Vec<(String, String)> = url::form_urlencoded::parse(&r.body).into_owned().collect();
            let get = |k: &str| form.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
            let claims = get("assertion").as_deref().and_then(verify_jwt);
            let valid = r.path == "/token"
                && r.header("content-type") == Some("application/x-www-form-urlencoded")
                && get("grant_type").as_deref() == Some("urn:ietf:params:oauth:grant-type:jwt-bearer")
                && claims.as_ref().is_some_and(|(h, cl)| {
                    h["alg"] == "RS256"
                        && h["kid"] == "kid-1"
                        && cl["iss"] == "robot@proj.iam.gserviceaccount.com"
                        && cl["scope"] == "https://www.googleapis.com/auth/cloud-platform https://www.googleapis.com/auth/devstorage.read_only"
                        && cl["aud"] == uri.get().unwrap().as_str()
                        && cl["iat"] == now
                        && cl["exp"] == now + 3600
                });
            if !valid {
                bad.store(true, Ordering::SeqCst);
                return (400, r#"{"error":"invalid_grant","error_description":"Invalid JWT Signature."}"#.into());
            }
            let i = n.fetch_add(1, Ordering::SeqCst);
            (200, format!(r#"{{"access_token":"ya29.gcp-token-{i}","expires_in":3599,"token_type":"Bearer"}}"#))
        }
    })
    .await;
    token_uri.set(endpoint.url("/token")).unwrap();
    let key_json = serde_json::json!({
        "type": "service_account",
        "project_id": "proj",
        "private_key_id": "kid-1",
        "private_key": test_key().pkcs8_pem,
        "client_email": "robot@proj.iam.gserviceaccount.com",
        "client_id": "1234",
        "token_uri": endpoint.url("/token"),
    })
    .to_string();
    let svc = service(
        "[services.gcs]\nurl = \"https://storage.googleapis.com\"\nauth = { type = \"gcp-service-account\", secret = \"sa\", scopes = [\"https://www.googleapis.com/auth/cloud-platform\", \"https://www.googleapis.com/auth/devstorage.read_only\"] }\n",
    );
    let injectors = Arc::new(Injectors::new().with_clock(clock.clone()));
    let secrets = vec![("sa", key_json.clone())];

    let auths = fifty_at_once(&injectors, &svc, secrets.clone()).await;
    assert_one_token(&endpoint, &seen_bad, "the endpoint rejected the assertion");
    assert!(auths.iter().all(|a| a == "Bearer ya29.gcp-token-0"));

    clock.advance(Duration::from_secs(3500));
    let mut l = lookup(secrets.clone());
    let (a, inj) = authorize(&injectors, &svc, &mut l).await.unwrap();
    assert_eq!(
        (a.as_str(), endpoint.calls()),
        ("Bearer ya29.gcp-token-0", 1)
    );
    assert!(
        emitted(&*inj)
            .iter()
            .any(|(n, v)| n == "sa" && v == "ya29.gcp-token-0")
    );
    clock.advance(Duration::from_secs(60));
    let (a, _) = authorize(&injectors, &svc, &mut l).await.unwrap();
    assert_eq!(
        (a.as_str(), endpoint.calls()),
        ("Bearer ya29.gcp-token-1", 2)
    );

    // A key file that is not a service account, or points its token_uri at plain http
    // on another host, is refused before anything is sent.
    for (bad, why) in [
        (
            serde_json::json!({"type": "authorized_user"}),
            "service_account",
        ),
        (
            serde_json::json!({"type": "service_account", "client_email": "a@b", "private_key": test_key().pkcs8_pem, "token_uri": "http://evil.example/token"}),
            "token_uri",
        ),
    ] {
        let mut l = lookup(vec![("sa", bad.to_string())]);
        let msg = injectors.get(&svc, &mut l).err().unwrap().to_string();
        assert!(msg.contains(why) && msg.contains("\"sa\""), "{msg}");
        assert_no_secret(&msg, &["BEGIN PRIVATE KEY"]);
    }
}

fn oauth2_service(url: &str, extra: &str) -> Service {
    service(&format!(
        "[services.api]\nurl = \"https://api.example.com\"\nauth = {{ type = \"oauth2\", token_url = \"{url}\", client_id = \"my client\", secret = \"cs\", scope = \"read write\"{extra} }}\n"
    ))
}

const CLIENT_SECRET: &str = "s3cr3t:+/=value";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oauth2_client_credentials() {
    let clock = Arc::new(ManualClock::at_unix(T0));
    let failing = Arc::new(AtomicBool::new(false));
    let seen_bad = Arc::new(AtomicBool::new(false));
    let (f, bad) = (failing.clone(), seen_bad.clone());
    let n = Arc::new(AtomicUsize::new(0)); // tokens issued
    let endpoint = slow_endpoint(move |r: Received| {
        let (f, bad, n) = (f.clone(), bad.clone(), n.clone());
        async move {
            if f.load(Ordering::SeqCst) {
                return (
                    401,
                    format!(r#"{{"error":"invalid_client","error_description":"wrong secret {CLIENT_SECRET}"}}"#),
                );
            }
            let form: Vec<(String, String)> = url::form_urlencoded::parse(&r.body).into_owned().collect();
            let basic = r
                .header("authorization")
                .and_then(|a| a.strip_prefix("Basic "))
                .and_then(|b| B64.decode(b).ok())
                .and_then(|b| String::from_utf8(b).ok());
            // RFC 6749 §2.3.1: each part form-encoded before Basic.
            let creds = basic.as_deref().and_then(|b| b.split_once(':')).map(|(i, s)| {
                let dec = |v: &str| url::form_urlencoded::parse(format!("x={v}").as_bytes()).next().unwrap().1.into_owned();
                (dec(i), dec(s))
            });
            let in_body = (
                form.iter().find(|(k, _)| k == "client_id").map(|(_, v)| v.clone()),
                form.iter().find(|(k, _)| k == "client_secret").map(|(_, v)| v.clone()),
            );
            let creds = creds.or(match in_body {
                (Some(i), Some(s)) => Some((i, s)),
                _ => None,
            });
            let valid = r.path == "/oauth/token"
                && form.iter().any(|(k, v)| k == "grant_type" && v == "client_credentials")
                && form.iter().any(|(k, v)| k == "scope" && v == "read write")
                && creds == Some(("my client".to_string(), CLIENT_SECRET.to_string()));
            if !valid {
                bad.store(true, Ordering::SeqCst);
                return (400, r#"{"error":"invalid_request"}"#.into());
            }
            let i = n.fetch_add(1, Ordering::SeqCst);
            (200, format!(r#"{{"access_token":"at-{i}","token_type":"bearer","expires_in":60}}"#))
        }
    })
    .await;
    let svc = oauth2_service(&endpoint.url("/oauth/token"), "");
    let injectors = Arc::new(Injectors::new().with_clock(clock.clone()));
    let secrets = vec![("cs", CLIENT_SECRET.to_string())];

    let auths = fifty_at_once(&injectors, &svc, secrets.clone()).await;
    assert_one_token(&endpoint, &seen_bad, "the endpoint rejected the client");
    assert!(auths.iter().all(|a| a == "Bearer at-0"));

    // expires_in 60: refreshed 15 s early.
    let mut l = lookup(secrets.clone());
    clock.advance(Duration::from_secs(44));
    let (a, inj) = authorize(&injectors, &svc, &mut l).await.unwrap();
    assert_eq!((a.as_str(), endpoint.calls()), ("Bearer at-0", 1));
    assert!(emitted(&*inj).contains(&("cs".into(), "at-0".into())));
    assert!(emitted(&*inj).contains(&("cs".into(), CLIENT_SECRET.into())));
    clock.advance(Duration::from_secs(2));
    let (a, _) = authorize(&injectors, &svc, &mut l).await.unwrap();
    assert_eq!((a.as_str(), endpoint.calls()), ("Bearer at-1", 2));

    // Errors: the endpoint's description quotes the secret, so it is withheld.
    failing.store(true, Ordering::SeqCst);
    clock.advance(Duration::from_secs(3600));
    let err = authorize(&injectors, &svc, &mut l).await.err().unwrap();
    let msg = err.to_string();
    assert!(err.is_upstream(), "{msg}");
    assert!(
        msg.contains("\"cs\"") && msg.contains("HTTP 401: invalid_client"),
        "{msg}"
    );
    assert!(
        msg.contains(&format!("POST http://{}/oauth/token", endpoint.addr)),
        "{msg}"
    );
    assert_no_secret(&msg, &[CLIENT_SECRET, "at-1"]);
    // The next request tries again (no stuck failure) and recovers.
    failing.store(false, Ordering::SeqCst);
    let (a, _) = authorize(&injectors, &svc, &mut l).await.unwrap();
    assert_eq!(a, "Bearer at-2");

    // client_auth = "body": the same endpoint accepts the credentials in the form.
    let svc = oauth2_service(&endpoint.url("/oauth/token"), ", client_auth = \"body\"");
    let (a, _) = authorize(&injectors, &svc, &mut l).await.unwrap();
    assert_eq!(a, "Bearer at-3");
    assert!(!seen_bad.load(Ordering::SeqCst));
}

#[tokio::test]
async fn token_endpoint_transport_failures_are_clear() {
    // Nothing listens: connection refused.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = closed.local_addr().unwrap().port();
    drop(closed);
    let svc = oauth2_service(&format!("http://127.0.0.1:{port}/token"), "");
    let injectors = Injectors::new();
    let mut l = lookup(vec![("cs", CLIENT_SECRET.to_string())]);
    let err = authorize(&injectors, &svc, &mut l).await.err().unwrap();
    let msg = err.to_string();
    assert!(
        err.is_upstream() && msg.contains("connection failed"),
        "{msg}"
    );
    assert_no_secret(&msg, &[CLIENT_SECRET]);

    // It never answers: timed out, within the client's timeout.
    let endpoint = Endpoint::start(|_| async {
        tokio::time::sleep(Duration::from_secs(30)).await;
        (200, String::new())
    })
    .await;
    let svc = oauth2_service(&endpoint.url("/token"), "");
    let injectors = Injectors::new().with_token_client(TokenClient::new(
        Duration::from_secs(2),
        Duration::from_millis(300),
    ));
    let started = std::time::Instant::now();
    let err = authorize(&injectors, &svc, &mut l).await.err().unwrap();
    assert!(started.elapsed() < Duration::from_secs(5));
    assert!(err.to_string().contains("timed out"), "{err}");

    // It answers nonsense: said so, without echoing the body.
    let endpoint = Endpoint::start(|_| async {
        (
            200,
            r#"{"token_type":"bearer","leak":"zzz-not-a-token"}"#.to_string(),
        )
    })
    .await;
    let svc = oauth2_service(&endpoint.url("/token"), "");
    let injectors = Injectors::new();
    let msg = authorize(&injectors, &svc, &mut l)
        .await
        .err()
        .unwrap()
        .to_string();
    assert!(msg.contains("access_token"), "{msg}");
    assert_no_secret(&msg, &["zzz-not-a-token"]);
}

// Token endpoints are reached directly, whatever the proxy variables say. The
// environment is process-wide (and `set_var` is unsafe, which the workspace forbids),
// so the token request runs in a child process of this test binary with the proxy
// variables pointing at a local listener; this process checks who received what.

const CHILD_ENV: &str = "AIRLOCK_INJECT_TEST_PROXY_CHILD";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn token_requests_ignore_proxy_environment() {
    let endpoint = Endpoint::start(|_| async {
        (
            200,
            r#"{"access_token":"direct-token","expires_in":60}"#.to_string(),
        )
    })
    .await;
    let proxied = Arc::new(std::sync::Mutex::new(Vec::new()));
    let seen = proxied.clone();
    let proxy = Endpoint::start(move |r: Received| {
        seen.lock().unwrap().push(r.path.clone());
        async { (200, r#"{"access_token":"proxied-token"}"#.to_string()) }
    })
    .await;
    let token_url = endpoint.url("/token");
    let proxy_url = proxy.url("");
    let exe = std::env::current_exe().unwrap();
    let status = tokio::task::spawn_blocking(move || {
        let mut cmd = std::process::Command::new(exe);
        cmd.args([
            "--exact",
            "minting::proxy_child",
            "--ignored",
            "--test-threads=1",
        ])
        .env(CHILD_ENV, &token_url)
        .env_remove("NO_PROXY")
        .env_remove("no_proxy");
        // Every proxy variable, upper- and lower-case.
        for var in ["HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY"] {
            cmd.env(var, &proxy_url)
                .env(var.to_ascii_lowercase(), &proxy_url);
        }
        cmd.stdout(std::process::Stdio::null()).status().unwrap()
    })
    .await
    .unwrap();
    assert!(status.success(), "child failed: {status}");
    // The token request went direct…
    assert_eq!(endpoint.calls(), 1);
    // …while a default client in the same environment reached the proxy: the test
    // does detect a proxied request.
    let proxied = proxied.lock().unwrap().clone();
    assert_eq!(proxied.len(), 1, "{proxied:?}");
    assert!(proxied[0].ends_with("/control"), "{proxied:?}");
}

#[tokio::test]
#[ignore = "run by token_requests_ignore_proxy_environment in a child process"]
async fn proxy_child() {
    let Ok(token_url) = std::env::var(CHILD_ENV) else {
        return;
    };
    let svc = oauth2_service(&token_url, "");
    let injectors = Injectors::new();
    let mut l = lookup(vec![("cs", CLIENT_SECRET.to_string())]);
    let (a, _) = authorize(&injectors, &svc, &mut l).await.unwrap();
    assert_eq!(a, "Bearer direct-token");
    // Control: a client that honours the environment reaches the proxy instead.
    let base = token_url.trim_end_matches("/token");
    let control = reqwest::Client::builder().build().unwrap();
    let sent = control.get(format!("{base}/control")).send().await;
    let body = sent.unwrap().text().await.unwrap();
    assert!(body.contains("proxied-token"), "{body}");
}
