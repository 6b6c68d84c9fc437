//! basic, header and query auth: where the credential lands, what the injector owns
//! (so the engine strips agent copies), and that nothing echoes a secret.

use std::path::Path;

use airlock_config::Config;
use airlock_inject::{Basic, HeaderKey, InjectError, Injectors, QueryKey, for_auth};
use base64::Engine as _;
use secrecy::SecretSlice;

use crate::support::{emitted, header, request, secret};

fn config(auth: &str) -> Config {
    Config::parse(
        Path::new("airlock.toml"),
        &format!("[services.svc]\nurl = \"https://api.example.com/base\"\nauth = {auth}\n"),
    )
    .unwrap()
}

fn vault(name: &str) -> Option<SecretSlice<u8>> {
    match name {
        "pw" => Some(secret("pa:ss wörd")),
        "key" => Some(secret("k_live_123")),
        "q" => Some(secret("a/b+c=d&e")),
        _ => None,
    }
}

#[tokio::test]
async fn basic_sends_basic_not_bearer() {
    let cfg = config(r#"{ type = "basic", username = "me@example.com", secret = "pw" }"#);
    let inj = for_auth(&cfg.services["svc"].auth, &mut vault).unwrap();
    assert_eq!(inj.kind(), "basic");
    let mut req = request(
        "GET",
        "https://api.example.com",
        "/base/x",
        None,
        &[("authorization", "Bearer agent-supplied")],
        b"",
    );
    inj.inject(&mut req).await.unwrap();
    let values: Vec<_> = req.headers.get_all("authorization").iter().collect();
    assert_eq!(values.len(), 1);
    let expected = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode("me@example.com:pa:ss wörd")
    );
    assert_eq!(values[0].as_bytes(), expected.as_bytes());
    assert!(values[0].is_sensitive());
    assert_eq!(inj.owned_headers(), &[http::header::AUTHORIZATION]);
    assert_eq!(
        emitted(&*inj),
        vec![("pw".to_string(), "pa:ss wörd".to_string())]
    );

    assert!(matches!(
        Basic::new("a:b", "pw", secret("x")),
        Err(InjectError::InvalidParameter { .. })
    ));
}

#[tokio::test]
async fn header_key_lands_in_its_header_and_replaces_agent_copies() {
    let cfg = config(r#"{ type = "header", header_name = "X-Api-Key", secret = "key" }"#);
    let inj = for_auth(&cfg.services["svc"].auth, &mut vault).unwrap();
    assert_eq!(inj.owned_headers()[0].as_str(), "x-api-key");
    let mut req = request(
        "GET",
        "https://api.example.com",
        "/x",
        None,
        &[
            ("x-api-key", "agent-1"),
            ("X-API-KEY", "agent-2"),
            ("accept", "*/*"),
        ],
        b"",
    );
    inj.inject(&mut req).await.unwrap();
    let values: Vec<_> = req.headers.get_all("x-api-key").iter().collect();
    assert_eq!(values.len(), 1);
    assert_eq!(values[0].as_bytes(), b"k_live_123");
    assert!(values[0].is_sensitive());
    assert_eq!(header(&req, "accept"), "*/*");
    assert!(req.headers.get("authorization").is_none());

    // With a prefix: Authorization: Token <key>.
    let cfg = config(
        r#"{ type = "header", header_name = "Authorization", prefix = "Token ", secret = "key" }"#,
    );
    let inj = for_auth(&cfg.services["svc"].auth, &mut vault).unwrap();
    let mut req = request("GET", "https://api.example.com", "/x", None, &[], b"");
    inj.inject(&mut req).await.unwrap();
    assert_eq!(header(&req, "authorization"), "Token k_live_123");

    for bad in ["", " lead", "line\r\nX-Evil: 1", "caf\u{e9}"] {
        let err = HeaderKey::new("X-Api-Key", "", "key", secret(bad))
            .err()
            .unwrap();
        let msg = err.to_string();
        assert!(msg.contains("\"key\""), "{msg}");
        assert!(bad.is_empty() || !msg.contains(bad), "{msg}");
    }
    assert!(HeaderKey::new("bad header", "", "key", secret("x")).is_err());
}

#[tokio::test]
async fn query_key_is_appended_encoded_and_owned() {
    let cfg = config(r#"{ type = "query", param = "api_key", secret = "q" }"#);
    let inj = for_auth(&cfg.services["svc"].auth, &mut vault).unwrap();
    assert_eq!(inj.owned_query_params(), &["api_key".to_string()]);
    assert!(inj.owned_headers().is_empty());
    let mut req = request(
        "GET",
        "https://api.example.com",
        "/x",
        Some("page=2"),
        &[],
        b"",
    );
    inj.inject(&mut req).await.unwrap();
    assert_eq!(req.query(), Some("page=2&api_key=a%2Fb%2Bc%3Dd%26e"));
    assert_eq!(
        req.url(),
        "https://api.example.com/x?page=2&api_key=a%2Fb%2Bc%3Dd%26e"
    );
    assert!(QueryKey::new("api_key", "q", secret("")).is_err());
}

#[test]
fn errors_name_secrets_and_minting_types_need_the_registry() {
    let cfg = config(r#"{ type = "basic", username = "u", secret = "nope" }"#);
    let err = for_auth(&cfg.services["svc"].auth, &mut vault)
        .err()
        .unwrap();
    assert!(matches!(err, InjectError::MissingSecret { .. }), "{err}");
    assert!(err.to_string().contains("airlock secret set nope"));

    let cfg = config(
        r#"{ type = "oauth2", token_url = "https://auth.example.com/token", client_id = "c", secret = "key" }"#,
    );
    let err = for_auth(&cfg.services["svc"].auth, &mut vault)
        .err()
        .unwrap();
    assert!(
        matches!(err, InjectError::NeedsCache { auth: "oauth2" }),
        "{err}"
    );
    assert!(!err.is_upstream() && !err.is_agent());
}

#[test]
fn registry_keeps_injectors_until_something_changes() {
    let injectors = Injectors::new();
    let cfg = config(r#"{ type = "header", header_name = "X-Api-Key", secret = "key" }"#);
    let svc = &cfg.services["svc"];
    let a = injectors.get(svc, &mut vault).unwrap();
    let b = injectors.get(svc, &mut vault).unwrap();
    assert!(
        std::sync::Arc::ptr_eq(&a, &b),
        "same config and secret: kept"
    );
    // The secret is rotated: a new injector.
    let c = injectors
        .get(svc, &mut |n| (n == "key").then(|| secret("k_live_456")))
        .unwrap();
    assert!(!std::sync::Arc::ptr_eq(&a, &c));
    // The auth changes: a new injector.
    let cfg2 = config(r#"{ type = "header", header_name = "X-Other", secret = "key" }"#);
    let d = injectors.get(&cfg2.services["svc"], &mut vault).unwrap();
    assert_eq!(d.owned_headers()[0].as_str(), "x-other");
    assert_eq!(injectors.len(), 1);
    injectors.retain(|name| name != "svc");
    assert!(injectors.is_empty());
    let _ = injectors.get(svc, &mut vault).unwrap();
    injectors.clear();
    assert!(injectors.is_empty());
    assert!(!format!("{injectors:?}").contains("k_live"));
}
