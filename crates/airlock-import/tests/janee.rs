//! `read_janee` on Janee homes written the way Janee writes them (see
//! docs/import-janee.md): values sealed here with AES-256-GCM, `base64(iv ‖ tag ‖
//! ciphertext)`, under a master key made up for the test — no real secret.
#![allow(clippy::unwrap_used)]

use std::path::Path;

use aes_gcm::aead::{Aead, KeyInit};
use aes_gcm::{Aes256Gcm, Nonce};
use airlock_import::{Auth, ImportError, JaneeFormat, JaneePlan, read_janee};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use secrecy::ExposeSecret;

const KEY: [u8; 32] = [0x42; 32];

fn key_b64(key: &[u8; 32]) -> String {
    STANDARD.encode(key)
}

/// Janee's `encryptSecret`: random 12-byte IV, `base64(iv ‖ tag ‖ ciphertext)`.
fn seal(key: &[u8; 32], plain: &str) -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(1);
    let mut iv = [0u8; 12];
    iv[..8].copy_from_slice(&N.fetch_add(1, Ordering::Relaxed).to_le_bytes());
    let out = Aes256Gcm::new_from_slice(key)
        .unwrap()
        .encrypt(Nonce::from_slice(&iv), plain.as_bytes())
        .unwrap();
    let (ct, tag) = out.split_at(out.len() - 16);
    let mut v = iv.to_vec();
    v.extend_from_slice(tag);
    v.extend_from_slice(ct);
    STANDARD.encode(v)
}

fn write(dir: &Path, name: &str, text: &str) {
    std::fs::write(dir.join(name), text).unwrap();
}

fn secret<'a>(plan: &'a JaneePlan, name: &str) -> &'a [u8] {
    plan.services
        .iter()
        .flat_map(|s| s.secrets.iter())
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.expose_secret())
        .or_else(|| {
            plan.unmapped_secrets
                .iter()
                .find(|s| s.name == name)
                .map(|s| s.value.expose_secret())
        })
        .unwrap_or_else(|| panic!("no secret {name}: {plan:?}"))
}

fn service<'a>(plan: &'a JaneePlan, name: &str) -> &'a airlock_import::PlannedService {
    plan.services
        .iter()
        .find(|s| s.name == name)
        .unwrap_or_else(|| panic!("no service {name}: {plan:?}"))
}

fn cap<'a>(plan: &'a JaneePlan, name: &str) -> &'a airlock_import::PlannedCapability {
    plan.capabilities
        .iter()
        .find(|c| c.name == name)
        .unwrap_or_else(|| panic!("no capability {name}: {plan:?}"))
}

fn warned(plan: &JaneePlan, needle: &str) -> bool {
    plan.warnings.iter().any(|w| w.contains(needle))
}

/// A Janee ≥ 0.13 home: config.yaml (no secrets) + credentials.json, every auth
/// type Janee has, as `saveYAMLConfig` writes them (js-yaml dump, JSON indent 2).
fn split_home(dir: &Path, key: &[u8; 32]) {
    write(
        dir,
        "config.yaml",
        r#"version: 0.3.0
server:
  port: 9119
  host: localhost
  strictDecryption: true
services:
  stripe:
    baseUrl: https://api.stripe.com
    auth:
      type: bearer
    testPath: /v1/balance
    ownership:
      accessPolicy: all-agents
      createdAt: '2026-02-01T00:00:00.000Z'
  my service/prod:
    baseUrl: https://api.example.com/v2/
    auth:
      type: headers
  authz:
    baseUrl: https://api.authz.example
    auth:
      type: headers
  ga:
    baseUrl: https://analyticsdata.googleapis.com
    auth:
      type: service-account
      scopes:
        - https://www.googleapis.com/auth/analytics.readonly
  github-app:
    baseUrl: https://api.github.com
    auth:
      type: github-app
      appId: '123'
      installationId: '456'
  twitter:
    baseUrl: https://api.x.com
    auth:
      type: oauth1a-twitter
  aws-ses:
    baseUrl: https://email.us-east-1.amazonaws.com
    auth:
      type: aws-sigv4
      region: us-east-1
      awsService: ses
  bybit:
    baseUrl: https://api.bybit.com
    auth:
      type: hmac-bybit
  agent-made:
    baseUrl: https://api.agent.example
    auth:
      type: bearer
    ownership:
      createdBy: worker-1
      accessPolicy: shared
      sharedWith:
        - worker-2
      createdAt: '2026-02-01T00:00:00.000Z'
capabilities:
  stripe_readonly:
    service: stripe
    ttl: 1h
    autoApprove: true
    rules:
      allow:
        - GET *
      deny:
        - POST *
        - PUT *
        - DELETE *
  stripe_billing:
    service: stripe
    ttl: 15m
    requiresReason: true
    rules:
      allow:
        - GET *
        - POST /v1/refunds/*
        - GET /v1/search?query=*
      deny:
        - POST /v1/charges/*
        - DELETE *
  custom api:
    service: my service/prod
    ttl: 5m
    allowedAgents:
      - claude-desktop
      - bad agent!
  ga:
    service: ga
    ttl: 1x
  bybit:
    service: bybit
    ttl: 1h
  agent-made:
    service: agent-made
    ttl: 1h
    allowedAgents:
      - worker-2
      - worker-3
  deploy:
    service: github-app
    ttl: 1h
    mode: exec
    allowCommands:
      - git
    env:
      GH_TOKEN: '{{credential}}'
"#,
    );
    let creds = serde_json::json!({
        "masterKey": key_b64(key),
        "secrets": {
            "stripe": { "key": seal(key, "sk_test_stripe") },
            "my service/prod": { "headers": { "X-Api-Key": seal(key, "custom-key") } },
            "authz": { "headers": { "Authorization": seal(key, "Token tok-123") } },
            "ga": { "credentials": seal(key, r#"{"type":"service_account","client_email":"a@b.iam.gserviceaccount.com"}"#) },
            "github-app": { "privateKey": seal(key, "-----BEGIN RSA PRIVATE KEY-----\nMII\n-----END RSA PRIVATE KEY-----\n") },
            "twitter": {
                "consumerKey": seal(key, "ck"),
                "consumerSecret": seal(key, "cs"),
                "accessToken": seal(key, "at"),
                "accessTokenSecret": seal(key, "ats")
            },
            "aws-ses": {
                "accessKeyId": seal(key, "AKIDTEST"),
                "secretAccessKey": seal(key, "aws-secret"),
                "sessionToken": seal(key, "aws-session")
            },
            "bybit": { "apiKey": seal(key, "by-key"), "apiSecret": seal(key, "by-secret") },
            "agent-made": { "key": seal(key, "agent-key") }
        }
    });
    write(
        dir,
        "credentials.json",
        &serde_json::to_string_pretty(&creds).unwrap(),
    );
}

#[test]
fn split_layout_every_auth_type() {
    let dir = tempfile::tempdir().unwrap();
    split_home(dir.path(), &KEY);
    let plan = read_janee(dir.path()).unwrap();
    assert_eq!(plan.format, JaneeFormat::Split);
    assert_eq!(plan.key_path, dir.path().join("credentials.json"));

    let stripe = service(&plan, "stripe");
    assert_eq!(stripe.url, "https://api.stripe.com");
    assert!(matches!(&stripe.auth, Auth::Bearer { secret } if secret == "stripe"));
    assert_eq!(secret(&plan, "stripe"), b"sk_test_stripe");

    // Sanitized name; a single header → header auth.
    let custom = service(&plan, "my-service-prod");
    assert_eq!(custom.url, "https://api.example.com/v2");
    assert!(
        matches!(&custom.auth, Auth::Header { header_name, prefix, secret }
        if header_name == "X-Api-Key" && prefix.is_empty() && secret == "my-service-prod")
    );
    assert_eq!(secret(&plan, "my-service-prod"), b"custom-key");
    assert!(warned(
        &plan,
        "service \"my service/prod\": renamed \"my-service-prod\""
    ));

    // Authorization: the scheme becomes the prefix, the vault holds the credential.
    let authz = service(&plan, "authz");
    assert!(
        matches!(&authz.auth, Auth::Header { header_name, prefix, .. }
        if header_name == "Authorization" && prefix == "Token ")
    );
    assert_eq!(secret(&plan, "authz"), b"tok-123");

    assert!(
        matches!(&service(&plan, "ga").auth, Auth::GcpServiceAccount { scopes, .. }
        if scopes == &["https://www.googleapis.com/auth/analytics.readonly"])
    );
    assert!(secret(&plan, "ga").starts_with(b"{\"type\":\"service_account\""));

    assert!(matches!(&service(&plan, "github-app").auth,
        Auth::GitHubApp { app_id, installation_id: 456, secret } if app_id == "123" && secret == "github-app"));

    assert!(
        matches!(&service(&plan, "twitter").auth, Auth::OAuth1 { consumer_key, token: Some(t), .. }
        if consumer_key == "twitter.consumer_key" && t == "twitter.token")
    );
    assert_eq!(secret(&plan, "twitter.token_secret"), b"ats");

    assert!(matches!(&service(&plan, "aws-ses").auth,
        Auth::AwsSigV4 { region, aws_service, session_token: Some(st), .. }
        if region == "us-east-1" && aws_service == "ses" && st == "aws-ses.session_token"));
    assert_eq!(secret(&plan, "aws-ses.secret_access_key"), b"aws-secret");

    // Every secret an auth names is in the plan, in order.
    for s in &plan.services {
        let names: Vec<&str> = s.secrets.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, s.auth.secrets(), "{}", s.name);
    }

    // No airlock equivalent: no service, but the secrets are kept.
    assert!(plan.services.iter().all(|s| s.janee_name != "bybit"));
    assert_eq!(secret(&plan, "bybit.api_key"), b"by-key");
    assert_eq!(secret(&plan, "bybit.api_secret"), b"by-secret");
    assert!(warned(&plan, "service \"bybit\": not imported"));
    assert!(warned(&plan, "capability \"bybit\": not imported"));

    // Rules.
    let ro = cap(&plan, "stripe_readonly");
    assert_eq!(ro.allow, ["GET /**"]);
    assert_eq!(ro.deny, ["POST /**", "PUT /**", "DELETE /**"]);
    assert!(!ro.approval && !ro.requires_reason);
    assert_eq!(ro.agents, None);
    let billing = cap(&plan, "stripe_billing");
    assert_eq!(billing.ttl, "15m");
    assert!(billing.requires_reason);
    assert_eq!(billing.allow, ["GET /**", "POST /v1/refunds/*/**"]);
    assert_eq!(billing.deny, ["POST /v1/charges/**", "DELETE /**"]);
    assert!(warned(
        &plan,
        "allow rule \"GET /v1/search?query=*\": it matches on the query string"
    ));
    assert!(warned(
        &plan,
        "deny rule \"POST /v1/charges/*\" → \"POST /v1/charges/**\""
    ));

    // Agents: invalid names dropped; ownership narrows allowedAgents.
    let custom_cap = cap(&plan, "custom-api");
    assert_eq!(custom_cap.service, "my-service-prod");
    assert_eq!(
        custom_cap.agents.as_deref(),
        Some(&["claude-desktop".to_string()][..])
    );
    assert!(warned(&plan, "agent \"bad agent!\" dropped"));
    assert_eq!(
        cap(&plan, "agent-made").agents.as_deref(),
        Some(&["worker-2".to_string()][..])
    );
    assert!(warned(&plan, "trusted identities"));

    // Janee's TTL fallback, exec mode left out.
    assert_eq!(cap(&plan, "ga").ttl, "1h");
    assert!(warned(
        &plan,
        "capability \"deploy\": not imported: exec mode"
    ));

    // Every capability names a planned service and parses as airlock config.
    for c in &plan.capabilities {
        assert!(plan.services.iter().any(|s| s.name == c.service));
    }
}

#[test]
fn nothing_secret_in_debug_or_warnings() {
    let dir = tempfile::tempdir().unwrap();
    split_home(dir.path(), &KEY);
    let plan = read_janee(dir.path()).unwrap();
    let shown = format!("{plan:?}\n{}", plan.warnings.join("\n"));
    for value in [
        "sk_test_stripe",
        "custom-key",
        "tok-123",
        "aws-secret",
        "by-secret",
        "ats",
    ] {
        assert!(!shown.contains(value), "{value} shown");
    }
    assert!(!shown.contains(&key_b64(&KEY)));
}

/// Janee's published example `examples/claude-desktop-github-openai.yaml`
/// (rsdouglas/janee), with a real key and sealed values in place of its
/// placeholders, and `version: '0.2.0'` (what `janee init` wrote then) in place of
/// its `version: "1"`: the inline layout of Janee ≤ 0.12.
fn published_example(key: &str, github: &str, openai: &str, version: &str) -> String {
    format!(
        r#"# Janee Example: Claude Desktop with GitHub + OpenAI
version: "{version}"
masterKey: "{key}"

server:
  port: 3456
  host: "127.0.0.1"
  logBodies: false  # Don't log request bodies (privacy)

services:
  github:
    baseUrl: "https://api.github.com"
    auth:
      type: bearer
      key: "{github}"

  openai:
    baseUrl: "https://api.openai.com"
    auth:
      type: bearer
      key: "{openai}"

capabilities:
  read-github:
    service: github
    ttl: "10m"
    autoApprove: false
    rules:
      allow:
        - "GET /repos/**"
        - "GET /users/**"
        - "GET /search/**"
      deny:
        - "DELETE /**"

  write-github:
    service: github
    ttl: "5m"
    requiresReason: true
    rules:
      allow:
        - "POST /repos/*/issues"
        - "POST /repos/*/issues/*/comments"
        - "PATCH /repos/*/issues/*"
      deny:
        - "DELETE /**"
        - "PUT /repos/*/settings"

  use-openai:
    service: openai
    ttl: "15m"
    autoApprove: true
    rules:
      allow:
        - "POST /v1/chat/completions"
        - "POST /v1/embeddings"
      deny:
        - "DELETE /**"
        - "POST /v1/fine_tuning/**"
"#
    )
}

/// Writes `published_example(...)` as the directory's `config.yaml`.
fn write_published(dir: &Path, master_key: &str, github: &str, openai: &str, version: &str) {
    write(
        dir,
        "config.yaml",
        &published_example(master_key, github, openai, version),
    );
}

#[test]
fn inline_layout_published_example() {
    let dir = tempfile::tempdir().unwrap();
    write_published(
        dir.path(),
        &key_b64(&KEY),
        &seal(&KEY, "ghp_test"),
        &seal(&KEY, "sk-test"),
        "0.2.0",
    );
    let plan = read_janee(dir.path()).unwrap();
    assert_eq!(plan.format, JaneeFormat::Inline);
    assert_eq!(secret(&plan, "github"), b"ghp_test");
    assert_eq!(secret(&plan, "openai"), b"sk-test");

    let read = cap(&plan, "read-github");
    assert_eq!(read.ttl, "10m");
    assert!(read.approval, "autoApprove: false → approval");
    assert_eq!(
        read.allow,
        ["GET /repos/*/**", "GET /users/*/**", "GET /search/*/**"]
    );
    assert_eq!(read.deny, ["DELETE /**"]);

    let write_cap = cap(&plan, "write-github");
    assert!(write_cap.requires_reason);
    assert_eq!(
        write_cap.allow,
        [
            "POST /repos/*/**/issues",
            "POST /repos/*/**/issues/*/**/comments",
            "PATCH /repos/*/**/issues/*/**"
        ]
    );
    assert_eq!(write_cap.deny, ["DELETE /**", "PUT /repos/*/**/settings"]);

    let openai = cap(&plan, "use-openai");
    assert_eq!(
        openai.allow,
        ["POST /v1/chat/completions", "POST /v1/embeddings"]
    );
    assert_eq!(openai.deny, ["DELETE /**", "POST /v1/fine_tuning/**"]);
    assert!(!openai.approval);
}

#[test]
fn published_example_as_shipped_is_refused_clearly() {
    let dir = tempfile::tempdir().unwrap();
    // The example's placeholders as shipped, under a given version: what reading it says.
    let shipped = |version: &str| {
        write_published(
            dir.path(),
            "generate-with-janee-init",
            "encrypted:your-github-token",
            "encrypted:your-openai-key",
            version,
        );
        read_janee(dir.path()).unwrap_err()
    };
    // Its version "1" is not a Janee config version…
    let e = shipped("1");
    assert!(
        matches!(e, ImportError::UnsupportedVersion { line: Some(2), .. }),
        "{e}"
    );
    // …and its placeholder master key cannot decrypt anything.
    let e = shipped("0.2.0");
    assert!(
        matches!(e, ImportError::InvalidMasterKey { line: Some(3), .. }),
        "{e}"
    );
    assert!(e.to_string().contains("config.yaml:3"), "{e}");
}

#[test]
fn wrong_master_key() {
    let dir = tempfile::tempdir().unwrap();
    split_home(dir.path(), &KEY);
    // Another install's key.
    let path = dir.path().join("credentials.json");
    let text = std::fs::read_to_string(&path)
        .unwrap()
        .replace(&key_b64(&KEY), &key_b64(&[7u8; 32]));
    std::fs::write(&path, text).unwrap();
    let e = read_janee(dir.path()).unwrap_err();
    assert!(
        matches!(e, ImportError::WrongMasterKey { count, .. } if count > 5),
        "{e}"
    );
    let msg = e.to_string();
    assert!(
        msg.contains("credentials.json") && msg.contains("master key"),
        "{msg}"
    );
}

#[test]
fn tampered_value_names_the_entry() {
    let dir = tempfile::tempdir().unwrap();
    split_home(dir.path(), &KEY);
    let path = dir.path().join("credentials.json");
    let mut creds: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    let sealed = creds["secrets"]["twitter"]["consumerSecret"]
        .as_str()
        .unwrap()
        .to_string();
    let mut raw = STANDARD.decode(sealed).unwrap();
    let last = raw.len() - 1;
    raw[last] ^= 1;
    creds["secrets"]["twitter"]["consumerSecret"] = STANDARD.encode(raw).into();
    std::fs::write(&path, serde_json::to_string_pretty(&creds).unwrap()).unwrap();
    let e = read_janee(dir.path()).unwrap_err();
    match &e {
        ImportError::ValueAuthentication { entry, line, .. } => {
            assert_eq!(entry, "secrets.twitter.consumerSecret");
            assert!(line.is_some());
        }
        other => panic!("{other}"),
    }
    assert!(e.to_string().contains("secrets.twitter.consumerSecret"));

    // Inline layout: the YAML line is named.
    let dir = tempfile::tempdir().unwrap();
    write_published(
        dir.path(),
        &key_b64(&KEY),
        &seal(&KEY, "ghp_test"),
        &seal(&[9u8; 32], "sk-test"),
        "0.2.0",
    );
    let e = read_janee(dir.path()).unwrap_err();
    assert!(
        matches!(&e, ImportError::ValueAuthentication { entry, line: Some(21), .. }
            if entry == "services.openai.auth.key"),
        "{e}"
    );
}

#[test]
fn missing_things() {
    let dir = tempfile::tempdir().unwrap();
    let e = read_janee(&dir.path().join("nope")).unwrap_err();
    assert!(matches!(e, ImportError::MissingDir { .. }), "{e}");

    let e = read_janee(dir.path()).unwrap_err();
    assert!(matches!(e, ImportError::MissingConfig { .. }), "{e}");

    write(dir.path(), "config.db", "SQLite format 3");
    let e = read_janee(dir.path()).unwrap_err();
    assert!(matches!(e, ImportError::UnsupportedStore { .. }), "{e}");

    // Split layout without credentials.json.
    write(dir.path(), "config.yaml", "version: 0.3.0\nservices: {}\n");
    let e = read_janee(dir.path()).unwrap_err();
    assert!(matches!(e, ImportError::MissingMasterKey { .. }), "{e}");
    assert!(e.to_string().contains("credentials.json"));

    write(dir.path(), "credentials.json", "{\"secrets\": {}}");
    let e = read_janee(dir.path()).unwrap_err();
    assert!(matches!(e, ImportError::MissingMasterKey { .. }), "{e}");

    write(
        dir.path(),
        "credentials.json",
        "{\"masterKey\": \"AAAA\", \"secrets\": {}}",
    );
    let e = read_janee(dir.path()).unwrap_err();
    assert!(matches!(e, ImportError::InvalidMasterKey { .. }), "{e}");

    write(dir.path(), "config.yaml", "services:\n  a: [unclosed\n");
    let e = read_janee(dir.path()).unwrap_err();
    assert!(
        matches!(e, ImportError::Malformed { line: Some(_), .. }),
        "{e}"
    );

    write(dir.path(), "config.yaml", "version: 0.9.0\n");
    let e = read_janee(dir.path()).unwrap_err();
    assert!(matches!(e, ImportError::UnsupportedVersion { .. }), "{e}");
}

#[test]
fn empty_allow_and_default_deny_deny_everything() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "config.yaml",
        &format!(
            r#"version: 0.2.0
masterKey: {key}
defaultPolicy: deny
server:
  defaultAccess: restricted
services:
  api:
    baseUrl: https://api.example.com
    auth:
      type: bearer
      key: {sealed}
capabilities:
  nothing:
    service: api
    ttl: 1h
    allowedAgents: [a]
    rules:
      allow: []
  no-rules:
    service: api
    ttl: 1h
    access: open
  untranslatable:
    service: api
    ttl: 1h
    access: restricted
    rules:
      allow:
        - TRACE /x
        - GET /v1/a*b*c*d*e
"#,
            key = key_b64(&KEY),
            sealed = seal(&KEY, "k")
        ),
    );
    let plan = read_janee(dir.path()).unwrap();
    for name in ["nothing", "no-rules", "untranslatable"] {
        let c = cap(&plan, name);
        assert!(c.allow.is_empty(), "{name}");
        assert_eq!(c.deny, ["* /**"], "{name}");
    }
    assert_eq!(cap(&plan, "no-rules").agents, None);
    assert_eq!(cap(&plan, "untranslatable").agents, Some(vec![]));
    assert!(warned(
        &plan,
        "capability \"untranslatable\": no agent may use it"
    ));
    assert!(warned(&plan, "allow rule \"TRACE /x\""));
}

#[test]
fn clear_text_value_in_split_config_is_imported_with_a_warning() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "config.yaml",
        "version: 0.3.0\nservices:\n  a:\n    baseUrl: https://a.example\n    auth:\n      type: bearer\n      key: plain-text-key\n  b:\n    baseUrl: https://b.example\n    auth:\n      type: bearer\n",
    );
    let creds = serde_json::json!({
        "masterKey": key_b64(&KEY),
        "secrets": { "b": { "key": seal(&KEY, "sealed-b") } }
    });
    write(
        dir.path(),
        "credentials.json",
        &serde_json::to_string_pretty(&creds).unwrap(),
    );
    let plan = read_janee(dir.path()).unwrap();
    assert_eq!(secret(&plan, "a"), b"plain-text-key");
    assert_eq!(secret(&plan, "b"), b"sealed-b");
    assert!(warned(
        &plan,
        "service \"a\": `auth.key` was in config.yaml in clear text"
    ));
}
