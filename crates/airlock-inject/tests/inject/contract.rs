//! What every injector declares, whatever its type: its `airlock.toml` name, the
//! headers and query parameters it owns (the engine strips agent copies of those),
//! every secret it may emit (the engine scrubs those from responses), and a `Debug`
//! that names secrets and never shows a value. Gaps found by mutation testing
//! (docs/testing.md, "Mutation testing").

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use airlock_config::{ClientAuth, Config, Service};
use airlock_inject::{
    Basic, Bearer, GcpServiceAccount, GitHubApp, HeaderKey, InjectError, Injector, Injectors,
    ManualClock, OAuth1, OAuth2ClientCredentials, QueryKey, SigV4, TokenClient,
};
use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::rsa::KeySize;
use aws_lc_rs::signature::RsaKeyPair;
use base64::Engine as _;
use secrecy::SecretSlice;

use crate::support::{Endpoint, Received, emitted, header, named, request};

fn service(auth: &str) -> Service {
    let toml = format!("[services.svc]\nurl = \"https://api.example.com\"\nauth = {auth}\n");
    let cfg = Config::parse(Path::new("airlock.toml"), &toml).unwrap();
    cfg.services.into_values().next().unwrap()
}

/// A fresh RSA key as a PKCS#8 PEM (what GitHub App and GCP injectors sign with).
fn rsa_pem() -> String {
    let der = RsaKeyPair::generate(KeySize::Rsa2048)
        .unwrap()
        .as_der()
        .unwrap();
    let b64 = base64::engine::general_purpose::STANDARD.encode(der.as_ref());
    let body: Vec<&str> = b64
        .as_bytes()
        .chunks(64)
        .map(|c| std::str::from_utf8(c).unwrap())
        .collect();
    format!(
        "-----BEGIN PRIVATE KEY-----\n{}\n-----END PRIVATE KEY-----\n",
        body.join("\n")
    )
}

fn gcp_key(pem: &str) -> String {
    serde_json::json!({
        "type": "service_account",
        "private_key_id": "kid-1",
        "private_key": pem,
        "client_email": "robot@proj.iam.gserviceaccount.com",
        "token_uri": "https://oauth2.googleapis.com/token",
    })
    .to_string()
}

/// OAuth 1.0a owns every `oauth_*` protocol parameter: an agent's copy in the
/// query would be signed along with (or instead of) airlock's.
const OAUTH1_PARAMS: &[&str] = &[
    "oauth_consumer_key",
    "oauth_token",
    "oauth_signature_method",
    "oauth_signature",
    "oauth_timestamp",
    "oauth_nonce",
    "oauth_version",
    "oauth_callback",
    "oauth_verifier",
    "oauth_body_hash",
];

/// One injector per auth type, and what it must declare.
struct Case {
    auth: &'static str,
    kind: &'static str,
    headers: &'static [&'static str],
    params: &'static [&'static str],
    /// (secret name, value) pairs it reports before minting anything.
    emits: Vec<(&'static str, String)>,
}

#[test]
fn every_injector_declares_its_kind_what_it_owns_and_what_it_emits() {
    let pem = rsa_pem();
    let secrets = vec![
        ("tok", "sk_live_bearer".to_string()),
        ("pw", "hunter2-basic".to_string()),
        ("key", "k_live_header".to_string()),
        ("q", "q_live_query".to_string()),
        ("akid", "AKIDEXAMPLE".to_string()),
        (
            "sak",
            "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY".to_string(),
        ),
        ("ck", "consumer-key-1".to_string()),
        ("cs", "consumer-secret-1".to_string()),
        ("tk", "oauth1-token-1".to_string()),
        ("ts", "oauth1-token-secret-1".to_string()),
        ("pem", pem.clone()),
        ("sa", gcp_key(&pem)),
        ("client", "oauth2-client-secret".to_string()),
    ];
    let value = |name: &str| secrets.iter().find(|(n, _)| *n == name).unwrap().1.clone();
    let cases = vec![
        Case {
            auth: r#"{ type = "bearer", secret = "tok" }"#,
            kind: "bearer",
            headers: &["authorization"],
            params: &[],
            emits: vec![("tok", value("tok"))],
        },
        Case {
            auth: r#"{ type = "basic", username = "me", secret = "pw" }"#,
            kind: "basic",
            headers: &["authorization"],
            params: &[],
            emits: vec![("pw", value("pw"))],
        },
        Case {
            auth: r#"{ type = "header", header_name = "X-Api-Key", secret = "key" }"#,
            kind: "header",
            headers: &["x-api-key"],
            params: &[],
            emits: vec![("key", value("key"))],
        },
        Case {
            auth: r#"{ type = "query", param = "api_key", secret = "q" }"#,
            kind: "query",
            headers: &[],
            params: &["api_key"],
            emits: vec![("q", value("q"))],
        },
        Case {
            auth: r#"{ type = "aws-sigv4", region = "us-east-1", aws_service = "s3", access_key_id = "akid", secret_access_key = "sak" }"#,
            kind: "aws-sigv4",
            headers: &[
                "authorization",
                "x-amz-date",
                "x-amz-security-token",
                "x-amz-content-sha256",
            ],
            params: &[],
            emits: vec![("akid", value("akid")), ("sak", value("sak"))],
        },
        Case {
            auth: r#"{ type = "oauth1", consumer_key = "ck", consumer_secret = "cs" }"#,
            kind: "oauth1",
            headers: &["authorization"],
            params: OAUTH1_PARAMS,
            emits: vec![("ck", value("ck")), ("cs", value("cs"))],
        },
        Case {
            auth: r#"{ type = "oauth1", consumer_key = "ck", consumer_secret = "cs", token = "tk", token_secret = "ts" }"#,
            kind: "oauth1",
            headers: &["authorization"],
            params: OAUTH1_PARAMS,
            emits: vec![
                ("ck", value("ck")),
                ("cs", value("cs")),
                ("tk", value("tk")),
                ("ts", value("ts")),
            ],
        },
        Case {
            auth: r#"{ type = "github-app", app_id = 42, installation_id = 7, secret = "pem" }"#,
            kind: "github-app",
            headers: &["authorization"],
            params: &[],
            emits: vec![("pem", value("pem"))],
        },
        Case {
            auth: r#"{ type = "gcp-service-account", secret = "sa", scopes = ["https://www.googleapis.com/auth/cloud-platform"] }"#,
            kind: "gcp-service-account",
            headers: &["authorization"],
            params: &[],
            emits: vec![("sa", value("sa"))],
        },
        Case {
            auth: r#"{ type = "oauth2", token_url = "https://auth.example.com/token", client_id = "app", secret = "client" }"#,
            kind: "oauth2",
            headers: &["authorization"],
            params: &[],
            emits: vec![("client", value("client"))],
        },
    ];
    for case in cases {
        let svc = service(case.auth);
        let injectors = Injectors::new();
        let inj = injectors
            .get(&svc, &mut |name| {
                secrets
                    .iter()
                    .find(|(n, _)| *n == name)
                    .map(|(_, v)| SecretSlice::from(v.as_bytes().to_vec()))
            })
            .unwrap_or_else(|e| panic!("{}: {e}", case.kind));
        assert_eq!(inj.kind(), case.kind);
        assert!(!injectors.is_empty());
        assert_eq!(injectors.len(), 1);
        let mut owned: Vec<&str> = inj.owned_headers().iter().map(|h| h.as_str()).collect();
        owned.sort_unstable();
        let mut want = case.headers.to_vec();
        want.sort_unstable();
        assert_eq!(owned, want, "{}: owned headers", case.kind);
        assert_eq!(
            inj.owned_query_params(),
            case.params,
            "{}: owned query parameters",
            case.kind
        );
        let mut got = emitted(&*inj);
        got.sort();
        let mut want: Vec<(String, String)> = case
            .emits
            .iter()
            .map(|(n, v)| (n.to_string(), v.clone()))
            .collect();
        want.sort();
        assert_eq!(got, want, "{}: emitted secrets", case.kind);

        // the registry's Debug names services, never a secret
        let debug = format!("{injectors:?}");
        assert!(debug.contains(r#"services: ["svc"]"#), "{debug}");
        for (_, value) in &case.emits {
            for line in value.lines().filter(|l| l.len() > 8) {
                assert!(!debug.contains(line), "{}: {debug}", case.kind);
            }
        }
    }
}

/// `Debug` of an injector: its type, then secrets by name only.
fn assert_debug(debug: String, ty: &str, names: &[&str], values: &[&str]) {
    assert!(debug.starts_with(&format!("{ty} {{")), "{debug}");
    for name in names {
        assert!(
            debug.contains(&format!("{name:?}")),
            "{ty} does not name {name}: {debug}"
        );
    }
    for value in values {
        assert!(!debug.contains(value), "{ty} shows a secret: {debug}");
    }
}

#[test]
fn debug_names_the_injector_and_its_secrets_only() {
    let clock = || Arc::new(ManualClock::at_unix(1_700_000_000));
    let http = || TokenClient::new(Duration::from_secs(1), Duration::from_secs(1));
    let pem = rsa_pem();

    // the token client shows its timeouts (what a stuck token request waits for)
    let client = TokenClient::new(Duration::from_secs(2), Duration::from_millis(300));
    assert_eq!(
        format!("{client:?}"),
        "TokenClient { connect_timeout: 2s, timeout: 300ms, .. }"
    );
    assert!(format!("{:?}", Injectors::new()).contains("TokenClient {"));

    let secret = named("gh_pem", "-----BEGIN PRIVATE KEY-----");
    assert_eq!(format!("{secret:?}"), r#"NamedSecret("gh_pem")"#);

    let bearer = Bearer::new("stripe", secret_of("sk_live_abc123")).unwrap();
    assert_eq!(bearer.secret_name(), "stripe");
    assert_eq!(
        format!("{bearer:?}"),
        r#"Bearer { secret_name: "stripe", .. }"#
    );

    let basic = Basic::new("me@example.com", "pw", secret_of("hunter2-basic")).unwrap();
    assert_debug(
        format!("{basic:?}"),
        "Basic",
        &["me@example.com", "pw"],
        &["hunter2"],
    );
    let header = HeaderKey::new("X-Api-Key", "", "key", secret_of("k_live_header")).unwrap();
    assert_debug(
        format!("{header:?}"),
        "HeaderKey",
        &["x-api-key", "key"],
        &["k_live"],
    );
    let query = QueryKey::new("api_key", "q", secret_of("q_live_query")).unwrap();
    assert_debug(
        format!("{query:?}"),
        "QueryKey",
        &["api_key", "q"],
        &["q_live"],
    );

    let sigv4 = SigV4::new(
        "us-east-1",
        "s3",
        named("akid", "AKIDEXAMPLE"),
        named("sak", "wJalrXUtnFEMI/K7MDENG"),
        None,
        clock(),
    )
    .unwrap();
    assert_debug(
        format!("{sigv4:?}"),
        "SigV4",
        &["us-east-1", "s3", "akid", "sak"],
        &["AKIDEXAMPLE", "wJalr"],
    );
    let oauth1 = OAuth1::new(
        named("ck", "consumer-key-1"),
        named("cs", "consumer-secret-1"),
        Some((named("tk", "token-value-1"), named("ts", "token-secret-1"))),
        clock(),
    )
    .unwrap();
    assert_debug(
        format!("{oauth1:?}"),
        "OAuth1",
        &["ck", "cs", "tk", "ts"],
        &[
            "consumer-key-1",
            "consumer-secret-1",
            "token-value-1",
            "token-secret-1",
        ],
    );
    let api = url::Url::parse("https://api.github.com").unwrap();
    let github = GitHubApp::new(&api, "42", 7, named("gh_pem", &pem), http(), clock()).unwrap();
    assert_debug(
        format!("{github:?}"),
        "GitHubApp",
        &["42", "gh_pem"],
        &["PRIVATE KEY"],
    );
    let gcp = GcpServiceAccount::new(
        named("sa", &gcp_key(&pem)),
        &["https://www.googleapis.com/auth/cloud-platform".to_string()],
        http(),
        clock(),
    )
    .unwrap();
    assert_eq!(gcp.client_email(), "robot@proj.iam.gserviceaccount.com");
    assert_debug(
        format!("{gcp:?}"),
        "GcpServiceAccount",
        &["robot@proj.iam.gserviceaccount.com", "sa"],
        &["PRIVATE KEY"],
    );
    let oauth2 = OAuth2ClientCredentials::new(
        url::Url::parse("https://auth.example.com/token").unwrap(),
        "app-1",
        named("client", "oauth2-client-secret"),
        None,
        ClientAuth::Basic,
        http(),
        clock(),
    )
    .unwrap();
    assert_debug(
        format!("{oauth2:?}"),
        "OAuth2ClientCredentials",
        &["app-1", "client"],
        &["oauth2-client-secret"],
    );
}

fn secret_of(v: &str) -> SecretSlice<u8> {
    SecretSlice::from(v.as_bytes().to_vec())
}

fn github_service(api: &str) -> Service {
    let toml = format!(
        "[services.gh]\nurl = \"{api}\"\nauth = {{ type = \"github-app\", app_id = 42, installation_id = 7, secret = \"pem\" }}\n"
    );
    Config::parse(Path::new("airlock.toml"), &toml)
        .unwrap()
        .services
        .into_values()
        .next()
        .unwrap()
}

/// One request through a GitHub App injector: the Authorization header it got.
async fn github_authorize(
    injectors: &Injectors,
    svc: &Service,
    pem: &str,
) -> Result<String, InjectError> {
    let inj: Arc<dyn Injector> = injectors.get(svc, &mut |name: &str| {
        (name == "pem").then(|| SecretSlice::from(pem.as_bytes().to_vec()))
    })?;
    let mut req = request("GET", "https://api.example.com", "/x", None, &[], b"");
    inj.inject(&mut req).await?;
    Ok(header(&req, "authorization").to_string())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_github_token_without_expires_at_is_kept_for_an_hour_less_a_minute() {
    let endpoint = Endpoint::start(|_r: Received| async move {
        (201, r#"{"token":"ghs_no_expiry_token"}"#.to_string())
    })
    .await;
    let svc = github_service(&endpoint.url("/api/v3"));
    let clock = Arc::new(ManualClock::at_unix(1_700_000_000));
    let injectors = Injectors::new().with_clock(clock.clone());
    let pem = rsa_pem();
    let auth = github_authorize(&injectors, &svc, &pem).await.unwrap();
    assert_eq!(auth, "Bearer ghs_no_expiry_token");
    assert_eq!(endpoint.calls(), 1);
    // an hour's token is refreshed a minute before it expires: at 3540 s
    clock.advance(Duration::from_secs(3539));
    github_authorize(&injectors, &svc, &pem).await.unwrap();
    assert_eq!(endpoint.calls(), 1, "at 3539 s: the cached token");
    clock.advance(Duration::from_secs(1));
    github_authorize(&injectors, &svc, &pem).await.unwrap();
    assert_eq!(endpoint.calls(), 2, "at 3540 s: a new token");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn minted_tokens_up_to_8_kib_and_responses_up_to_64_kib_are_accepted() {
    // what the endpoint answers next: (token length, padding to reach a body length)
    let next: Arc<std::sync::Mutex<(usize, usize)>> = Arc::default();
    let answer = next.clone();
    let endpoint = Endpoint::start(move |_r: Received| {
        let (token_len, body_len) = *answer.lock().unwrap();
        async move {
            let head = format!(r#"{{"token":"{}","pad":""#, "t".repeat(token_len));
            let pad = body_len.saturating_sub(head.len() + 2);
            (201, format!("{head}{}\"}}", "p".repeat(pad)))
        }
    })
    .await;
    let svc = github_service(&endpoint.url("/api/v3"));
    let pem = rsa_pem();
    let attempt = async |token_len: usize, body_len: usize| {
        *next.lock().unwrap() = (token_len, body_len);
        // a fresh registry: a fresh injector, so every attempt mints
        github_authorize(&Injectors::new(), &svc, &pem).await
    };

    let auth = attempt(8192, 0).await.unwrap();
    assert_eq!(auth.len(), "Bearer ".len() + 8192);
    let err = attempt(8193, 0).await.unwrap_err().to_string();
    assert!(err.contains("not a printable ASCII string"), "{err}");

    assert!(attempt(10, 64 * 1024).await.is_ok(), "a 64 KiB response");
    let err = attempt(10, 64 * 1024 + 1).await.unwrap_err().to_string();
    assert!(err.contains("larger than 64 KiB"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn token_endpoint_failures_say_what_broke_and_why() {
    let pem = rsa_pem();
    // Nothing listens: the OS's reason is given.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = closed.local_addr().unwrap().port();
    drop(closed);
    let svc = github_service(&format!("http://127.0.0.1:{port}/api/v3"));
    let err = github_authorize(&Injectors::new(), &svc, &pem)
        .await
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("connection failed (") && err.contains("Connection refused"),
        "{err}"
    );

    // A wrong installation id (or token URL) is a 404: the hint says where to look.
    let endpoint =
        Endpoint::start(
            |_r: Received| async move { (404, r#"{"message":"Not Found"}"#.to_string()) },
        )
        .await;
    let svc = github_service(&endpoint.url("/api/v3"));
    let err = github_authorize(&Injectors::new(), &svc, &pem)
        .await
        .unwrap_err()
        .to_string();
    assert!(
        err.ends_with(
            "HTTP 404: Not Found; check the token endpoint URL (or the GitHub installation id)"
        ),
        "{err}"
    );

    // The body stops short of its Content-Length.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        while let Ok((mut conn, _)) = listener.accept().await {
            let mut buf = vec![0u8; 65536];
            let mut got = Vec::new();
            while !got.windows(4).any(|w| w == b"\r\n\r\n") {
                match conn.read(&mut buf).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => got.extend_from_slice(&buf[..n]),
                }
            }
            let _ = conn
                .write_all(b"HTTP/1.1 201 Created\r\ncontent-length: 1000\r\n\r\n{\"tok")
                .await;
            let _ = conn.shutdown().await;
        }
    });
    let svc = github_service(&format!("http://{addr}/api/v3"));
    let err = github_authorize(&Injectors::new(), &svc, &pem)
        .await
        .unwrap_err()
        .to_string();
    // the endpoint is named once, by airlock; reqwest's causes never repeat a URL
    let (_, why) = err
        .split_once("the response body could not be read (")
        .unwrap_or_else(|| panic!("{err}"));
    assert!(why.contains("end of file") && !why.contains("://"), "{err}");
}

#[tokio::test]
async fn a_request_comes_apart_into_exactly_what_is_sent() {
    let bearer = Bearer::new("stripe", secret_of("sk_live_parts_1")).unwrap();
    let mut req = request(
        "POST",
        "https://api.example.com",
        "/v1/charges",
        Some("limit=1"),
        &[("content-type", "application/json")],
        b"{\"amount\":1}",
    );
    bearer.inject(&mut req).await.unwrap();
    // Debug shows where the request goes, never its headers (the credential)
    let debug = format!("{req:?}");
    assert!(
        debug.starts_with("OutgoingRequest {")
            && debug.contains("POST")
            && debug.contains("https://api.example.com")
            && debug.contains("/v1/charges"),
        "{debug}"
    );
    assert!(!debug.contains("sk_live_parts_1"), "{debug}");

    let (method, url, headers, body) = req.into_parts();
    assert_eq!(method, http::Method::POST);
    assert_eq!(url, "https://api.example.com/v1/charges?limit=1");
    assert_eq!(headers["authorization"], "Bearer sk_live_parts_1");
    assert_eq!(headers["content-type"], "application/json");
    assert_eq!(&body[..], b"{\"amount\":1}");
}

#[tokio::test]
async fn sigv4_marks_the_signature_and_the_session_token_sensitive_and_nothing_else() {
    let signer = SigV4::new(
        "us-east-1",
        "s3",
        named("akid", "AKIDEXAMPLE"),
        named("sak", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"),
        Some(named("st", "session-token-value-1")),
        Arc::new(ManualClock::at_unix(1_700_000_000)),
    )
    .unwrap();
    assert_eq!(signer.kind(), "aws-sigv4");
    let mut req = request(
        "GET",
        "https://bucket.s3.amazonaws.com",
        "/key",
        None,
        &[],
        b"",
    );
    signer.inject(&mut req).await.unwrap();
    for (name, sensitive) in [
        ("authorization", true),
        ("x-amz-security-token", true),
        ("x-amz-date", false),
        ("x-amz-content-sha256", false),
    ] {
        let value = req.headers.get(name).unwrap_or_else(|| panic!("no {name}"));
        assert_eq!(value.is_sensitive(), sensitive, "{name}");
    }
    assert_eq!(
        header(&req, "x-amz-security-token"),
        "session-token-value-1"
    );
}
