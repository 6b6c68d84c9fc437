//! airlock.toml parsing, validation and editing.
#![allow(clippy::unwrap_used)]

use std::path::Path;
use std::time::Duration;

use airlock_config::{Approval, CapabilitySpec, Config, ConfigDoc, DefaultAccess, Mode};
use airlock_home::Home;

const FULL: &str = r#"
[server]
default_access = "restricted"
approval_timeout = "5m"

[services.stripe]
url  = "https://api.stripe.com"
auth = { type = "bearer", secret = "stripe" }

[services.github]
url = "https://api.github.com/"
auth = { type = "bearer", secret = "gh" }
timeout = "30s"
max_response_bytes = "2MiB"
max_request_bytes = 65536

[capabilities.stripe_readonly]
service = "stripe"
ttl = "1h"
allow = ["GET /v1/**"]
deny  = ["* /v1/charges/**"]
agents = ["claude-desktop"]
requires_reason = true
rate = "60/min"
approval = "session"

[capabilities.gh]
service = "github"
mode = "exec"
commands = ["git", "gh"]
env = { GH_TOKEN = "{{secret}}" }
timeout = "30s"
"#;

#[path = "config/ca_file.rs"]
mod ca_file;

fn parse(text: &str) -> Result<Config, String> {
    Config::parse(Path::new("airlock.toml"), text).map_err(|e| e.to_string())
}

#[test]
fn the_design_example_parses() {
    let c = parse(FULL).unwrap();
    assert_eq!(c.server.default_access, DefaultAccess::Restricted);
    assert_eq!(c.server.approval_timeout, Duration::from_secs(300));
    assert_eq!(c.services["github"].url.as_str(), "https://api.github.com/");
    assert_eq!(c.services["github"].timeout, Some(Duration::from_secs(30)));
    assert_eq!(c.services["github"].max_response_bytes, Some(2 << 20));
    assert_eq!(c.services["github"].max_request_bytes, Some(65536));
    assert!(!c.services["github"].forward_cookies);
    let cap = &c.capabilities["stripe_readonly"];
    assert_eq!(cap.ttl, Duration::from_secs(3600));
    assert_eq!(
        cap.agents.as_deref(),
        Some(&["claude-desktop".to_string()][..])
    );
    assert!(cap.requires_reason);
    assert_eq!(cap.approval, Approval::Session);
    assert_eq!(cap.rate.unwrap().count, 60);
    let gh = &c.capabilities["gh"];
    assert_eq!(gh.mode, Mode::Exec);
    assert_eq!(gh.commands, ["git", "gh"]);
    assert_eq!(gh.timeout, Some(Duration::from_secs(30)));
    assert_eq!(gh.ttl, Duration::from_secs(3600), "default ttl is 1h");
}

/// Each bad input gives `airlock.toml:LINE:COL: message` pointing at the culprit.
#[test]
fn errors_are_located_and_say_what_was_expected() {
    let cases: &[(&str, &str, &str)] = &[
        (
            "[services.s]\nurl = \"ftp://x\"\nauth = { type = \"bearer\", secret = \"s\" }\n",
            "airlock.toml:2:7:",
            "https://",
        ),
        (
            "[services.s]\nurl = \"not a url\"\nauth = { type = \"bearer\", secret = \"s\" }\n",
            "airlock.toml:2:7:",
            "invalid URL",
        ),
        (
            "[services.s]\nurl = \"https://u:p@x.com\"\nauth = { type = \"bearer\", secret = \"s\" }\n",
            "airlock.toml:2:7:",
            "credentials",
        ),
        (
            "[services.s]\nurl = \"https://x.com\"\nauth = { type = \"bearr\", secret = \"s\" }\n",
            "airlock.toml:3:17:",
            "unknown auth type \"bearr\"; expected one of: bearer",
        ),
        (
            "[services.s]\nurl = \"https://x.com\"\nauth = { type = \"bearer\" }\n",
            "airlock.toml:3:8:",
            "needs `secret",
        ),
        (
            "[services.s]\nurll = \"https://x.com\"\n",
            "airlock.toml:2:1:",
            "unknown field `urll`",
        ),
        (
            "[capabilities.c]\nservice = \"nope\"\n",
            "airlock.toml:2:11:",
            "unknown service \"nope\"",
        ),
        (
            "[services.s]\nurl = \"https://x.com\"\nauth = { type = \"bearer\", secret = \"s\" }\n[capabilities.c]\nservice = \"s\"\nallow = [\"GET /ok\", \"GET v1\"]\n",
            "airlock.toml:6:21:",
            "allow rule",
        ),
        (
            "[services.s]\nurl = \"https://x.com\"\nauth = { type = \"bearer\", secret = \"s\" }\n[capabilities.c]\nservice = \"s\"\nttl = \"forever\"\n",
            "airlock.toml:6:7:",
            "ttl: invalid duration",
        ),
        (
            "[services.s]\nurl = \"https://x.com\"\nauth = { type = \"bearer\", secret = \"s\" }\n[capabilities.c]\nservice = \"s\"\nrate = \"lots\"\n",
            "airlock.toml:6:8:",
            "60/min",
        ),
        (
            "[services.s]\nurl = \"https://x.com\"\nauth = { type = \"bearer\", secret = \"s\" }\n[capabilities.c]\nservice = \"s\"\napproval = \"maybe\"\n",
            "airlock.toml:6:12:",
            "expected true, false or \"session\"",
        ),
        (
            "[services.s]\nurl = \"https://x.com\"\nauth = { type = \"bearer\", secret = \"s\" }\n[capabilities.c]\nservice = \"s\"\nmode = \"exec\"\n",
            "airlock.toml:",
            "needs `commands",
        ),
        (
            "[server]\ndefault_access = \"closed\"\n",
            "airlock.toml:2:18:",
            "expected \"open\" or \"restricted\"",
        ),
        (
            "[services.\"a b\"]\nurl = \"https://x.com\"\nauth = { type = \"bearer\", secret = \"s\" }\n",
            "airlock.toml:",
            "invalid service name",
        ),
        ("this is not toml", "airlock.toml:1:", ""),
    ];
    for (text, location, expected) in cases {
        let err = parse(text).unwrap_err();
        assert!(
            err.starts_with(location),
            "{text:?}\n  got: {err}\n  want prefix {location}"
        );
        assert!(
            err.contains(expected),
            "{text:?}\n  got: {err}\n  want: {expected}"
        );
        assert!(!err.contains('\n'), "error is not one line: {err:?}");
    }
}

#[test]
fn edits_keep_comments_and_order_and_validate() {
    let dir = tempfile::tempdir().unwrap();
    let home = Home::at(dir.path());
    let original = "# my notes about airlock\n[server]\ndefault_access = \"open\" # keep open\n\n# stripe is prod!\n[services.zzz]\nurl = \"https://z.example\"\nauth = { type = \"bearer\", secret = \"z\" }\n";
    std::fs::write(home.config_path(), original).unwrap();
    let mut doc = ConfigDoc::load(&home).unwrap();
    doc.add_service(
        "stripe",
        "https://api.stripe.com",
        &airlock_config::Auth::Bearer {
            secret: "stripe".into(),
        },
    )
    .unwrap();
    doc.add_capability(
        "stripe",
        &CapabilitySpec {
            service: "stripe".into(),
            ttl: Some("1h".into()),
            allow: vec!["GET /v1/**".into()],
            ..Default::default()
        },
    )
    .unwrap();
    let cfg = doc.save().unwrap();
    assert!(cfg.capabilities.contains_key("stripe"));
    let text = std::fs::read_to_string(home.config_path()).unwrap();
    assert!(text.starts_with(original), "user text changed:\n{text}");
    assert!(text.contains("[services.stripe]"), "{text}");
    assert!(text.contains("[capabilities.stripe]"), "{text}");

    // Duplicates are refused with a remedy.
    let err = doc
        .add_service(
            "stripe",
            "https://x",
            &airlock_config::Auth::Bearer { secret: "s".into() },
        )
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("already exists") && err.contains("airlock remove stripe"),
        "{err}"
    );

    // An invalid edit is never written.
    let mut doc = ConfigDoc::load(&home).unwrap();
    doc.add_capability(
        "bad",
        &CapabilitySpec {
            service: "stripe".into(),
            rate: Some("fast".into()),
            ..Default::default()
        },
    )
    .unwrap();
    assert!(doc.save().is_err());
    assert_eq!(std::fs::read_to_string(home.config_path()).unwrap(), text);

    // Removal.
    let mut doc = ConfigDoc::load(&home).unwrap();
    assert!(doc.remove_capability("stripe"));
    assert!(doc.remove_service("stripe"));
    assert!(!doc.remove_service("stripe"));
    doc.save().unwrap();
    assert_eq!(
        std::fs::read_to_string(home.config_path())
            .unwrap()
            .trim_end(),
        original.trim_end()
    );
}

#[test]
fn a_corrupt_config_is_not_edited() {
    let dir = tempfile::tempdir().unwrap();
    let home = Home::at(dir.path());
    std::fs::write(home.config_path(), "[services\n").unwrap();
    let err = ConfigDoc::load(&home).unwrap_err().to_string();
    assert!(err.contains("airlock.toml:1:"), "{err}");
}

#[test]
fn a_missing_config_is_empty() {
    let dir = tempfile::tempdir().unwrap();
    let c = Config::load(&Home::at(dir.path())).unwrap();
    assert!(c.services.is_empty() && c.capabilities.is_empty());
}

// ---- auth types -------------------------------------------------------------------

const ALL_AUTH: &str = r#"
[services.bearer]
url = "https://api.stripe.com"
auth = { type = "bearer", secret = "stripe" }

[services.basic]
url = "https://jira.example.com"
auth = { type = "basic", username = "me@example.com", secret = "jira_pw" }

[services.header]
url = "https://api.example.com"
auth = { type = "header", header_name = "X-Api-Key", secret = "ex_key" }

[services.header_prefix]
url = "https://discord.com/api"
auth = { type = "header", header_name = "Authorization", prefix = "Bot ", secret = "discord" }

[services.query]
url = "https://maps.example.com"
auth = { type = "query", param = "key", secret = "maps_key" }

[services.s3]
url = "https://my-bucket.s3.eu-west-1.amazonaws.com"
auth = { type = "aws-sigv4", region = "eu-west-1", aws_service = "s3", access_key_id = "aws_id", secret_access_key = "aws_secret" }

[services.ses]
url = "https://email.us-east-1.amazonaws.com"
auth = { type = "aws-sigv4", region = "us-east-1", aws_service = "ses", access_key_id = "aws_id", secret_access_key = "aws_secret", session_token = "aws_token" }

[services.oauth1]
url = "https://api.x.com"
auth = { type = "oauth1", consumer_key = "x_ck", consumer_secret = "x_cs", token = "x_tok", token_secret = "x_toks" }

[services.oauth1_2legged]
url = "https://api.example.org"
auth = { type = "oauth1", consumer_key = "o_ck", consumer_secret = "o_cs" }

[services.github]
url = "https://api.github.com"
auth = { type = "github-app", app_id = 123456, installation_id = 7890, secret = "gh_app_pem" }

[services.ghe]
url = "https://ghe.example.com/api/v3"
auth = { type = "github-app", app_id = "Iv1.abc123", installation_id = "42", secret = "ghe_pem" }

[services.gcs]
url = "https://storage.googleapis.com"
auth = { type = "gcp-service-account", secret = "gcp_sa", scopes = ["https://www.googleapis.com/auth/devstorage.read_only"] }

[services.oauth2]
url = "https://api.example.net"
auth = { type = "oauth2", token_url = "https://auth.example.net/oauth/token", client_id = "cid", secret = "client_secret", scope = "read write" }

[services.oauth2_body]
url = "https://api.example.net"
auth = { type = "oauth2", token_url = "http://127.0.0.1:9999/token", client_id = "cid", secret = "client_secret", client_auth = "body" }
"#;

#[test]
fn every_auth_type_parses() {
    use airlock_config::{AUTH_TYPES, Auth, ClientAuth};
    let c = parse(ALL_AUTH).unwrap();
    let auth = |n: &str| c.services[n].auth.clone();
    assert_eq!(
        auth("basic"),
        Auth::Basic {
            username: "me@example.com".into(),
            secret: "jira_pw".into()
        }
    );
    assert_eq!(
        auth("header_prefix"),
        Auth::Header {
            header_name: "Authorization".into(),
            prefix: "Bot ".into(),
            secret: "discord".into()
        }
    );
    assert_eq!(
        auth("query"),
        Auth::Query {
            param: "key".into(),
            secret: "maps_key".into()
        }
    );
    assert_eq!(
        auth("ses"),
        Auth::AwsSigV4 {
            region: "us-east-1".into(),
            aws_service: "ses".into(),
            access_key_id: "aws_id".into(),
            secret_access_key: "aws_secret".into(),
            session_token: Some("aws_token".into()),
        }
    );
    assert_eq!(
        auth("oauth1_2legged"),
        Auth::OAuth1 {
            consumer_key: "o_ck".into(),
            consumer_secret: "o_cs".into(),
            token: None,
            token_secret: None,
        }
    );
    assert_eq!(
        auth("github"),
        Auth::GitHubApp {
            app_id: "123456".into(),
            installation_id: 7890,
            secret: "gh_app_pem".into()
        }
    );
    assert_eq!(
        auth("ghe"),
        Auth::GitHubApp {
            app_id: "Iv1.abc123".into(),
            installation_id: 42,
            secret: "ghe_pem".into()
        }
    );
    assert_eq!(
        auth("gcs"),
        Auth::GcpServiceAccount {
            secret: "gcp_sa".into(),
            scopes: vec!["https://www.googleapis.com/auth/devstorage.read_only".into()],
        }
    );
    assert_eq!(
        auth("oauth2"),
        Auth::OAuth2 {
            token_url: "https://auth.example.net/oauth/token".parse().unwrap(),
            client_id: "cid".into(),
            secret: "client_secret".into(),
            scope: Some("read write".into()),
            client_auth: ClientAuth::Basic,
        }
    );
    assert!(matches!(
        auth("oauth2_body"),
        Auth::OAuth2 {
            client_auth: ClientAuth::Body,
            scope: None,
            ..
        }
    ));

    // type names, secrets, minting
    let mut seen: Vec<&str> = c.services.values().map(|s| s.auth.type_name()).collect();
    seen.sort();
    seen.dedup();
    let mut all = AUTH_TYPES.to_vec();
    all.sort();
    assert_eq!(seen, all, "every type in AUTH_TYPES is exercised");
    assert_eq!(auth("ses").secrets(), ["aws_id", "aws_secret", "aws_token"]);
    assert_eq!(auth("s3").secrets(), ["aws_id", "aws_secret"]);
    assert_eq!(
        auth("oauth1").secrets(),
        ["x_ck", "x_cs", "x_tok", "x_toks"]
    );
    assert_eq!(auth("basic").secrets(), ["jira_pw"]);
    assert_eq!(auth("gcs").secrets(), ["gcp_sa"]);
    assert!(
        auth("github").mints_tokens()
            && auth("gcs").mints_tokens()
            && auth("oauth2").mints_tokens()
    );
    assert!(!auth("s3").mints_tokens() && !auth("basic").mints_tokens());
    let refs = c.referenced_secrets();
    assert_eq!(refs["aws_id"], ["s3", "ses"]);
    assert_eq!(refs["client_secret"], ["oauth2", "oauth2_body"]);

    // What the CLI writes reads back as the same auth.
    for (name, svc) in &c.services {
        let text = format!(
            "[services.{name}]\nurl = \"{}\"\nauth = {}\n",
            svc.url,
            svc.auth.to_inline_table()
        );
        let back = parse(&text).unwrap_or_else(|e| panic!("{text}\n{e}"));
        assert_eq!(back.services[name].auth, svc.auth, "{text}");
    }
}

/// Each auth type's missing and invalid fields: one line, `airlock.toml:3:COL`, where
/// COL points at the auth table (a missing field) or at the bad value, and the message
/// names the field.
#[test]
fn auth_errors_are_located_and_name_the_field() {
    // (auth table, what the column points at ("{" = the table), expected text)
    let cases: &[(&str, &str, &str)] = &[
        (
            r#"{ type = "basic", secret = "s" }"#,
            "{",
            "auth type \"basic\": needs `username",
        ),
        (
            r#"{ type = "basic", username = "u" }"#,
            "{",
            "needs `secret",
        ),
        (
            r#"{ type = "basic", username = "a:b", secret = "s" }"#,
            "\"a:b\"",
            "`username` must not contain `:`",
        ),
        (
            r#"{ type = "basic", username = "u", secret = "bad name" }"#,
            "\"bad name\"",
            "invalid secret name",
        ),
        (
            r#"{ type = "header", secret = "s" }"#,
            "{",
            "needs `header_name",
        ),
        (
            r#"{ type = "header", header_name = "X-Key" }"#,
            "{",
            "needs `secret",
        ),
        (
            r#"{ type = "header", header_name = "X Key", secret = "s" }"#,
            "\"X Key\"",
            "`header_name`: \"X Key\" is not a valid header name",
        ),
        (
            r#"{ type = "header", header_name = "Host", secret = "s" }"#,
            "\"Host\"",
            "cannot carry a credential",
        ),
        (
            r#"{ type = "header", header_name = "Proxy-Authorization", secret = "s" }"#,
            "\"Proxy",
            "cannot carry a credential",
        ),
        (
            r#"{ type = "header", header_name = "X-Key", prefix = " Token", secret = "s" }"#,
            "\" Token\"",
            "`prefix` must be printable ASCII",
        ),
        (r#"{ type = "query", secret = "s" }"#, "{", "needs `param"),
        (
            r#"{ type = "query", param = "a&b", secret = "s" }"#,
            "\"a&b\"",
            "`param` must be",
        ),
        (r#"{ type = "query", param = "k" }"#, "{", "needs `secret"),
        (
            r#"{ type = "aws-sigv4", aws_service = "s3", access_key_id = "a", secret_access_key = "b" }"#,
            "{",
            "needs `region",
        ),
        (
            r#"{ type = "aws-sigv4", region = "us-east-1", access_key_id = "a", secret_access_key = "b" }"#,
            "{",
            "needs `aws_service",
        ),
        (
            r#"{ type = "aws-sigv4", region = "US East", aws_service = "s3", access_key_id = "a", secret_access_key = "b" }"#,
            "\"US East\"",
            "`region`: \"US East\" is not valid",
        ),
        (
            r#"{ type = "aws-sigv4", region = "us-east-1", aws_service = "S3!", access_key_id = "a", secret_access_key = "b" }"#,
            "\"S3!\"",
            "`aws_service`",
        ),
        (
            r#"{ type = "aws-sigv4", region = "us-east-1", aws_service = "s3", secret_access_key = "b" }"#,
            "{",
            "needs `access_key_id",
        ),
        (
            r#"{ type = "aws-sigv4", region = "us-east-1", aws_service = "s3", access_key_id = "a" }"#,
            "{",
            "needs `secret_access_key",
        ),
        (
            r#"{ type = "aws-sigv4", region = "us-east-1", aws_service = "s3", access_key_id = "a", secret_access_key = "b", session_token = "no good" }"#,
            "\"no good\"",
            "invalid secret name",
        ),
        (
            r#"{ type = "oauth1", consumer_secret = "b" }"#,
            "{",
            "needs `consumer_key",
        ),
        (
            r#"{ type = "oauth1", consumer_key = "a" }"#,
            "{",
            "needs `consumer_secret",
        ),
        (
            r#"{ type = "oauth1", consumer_key = "a", consumer_secret = "b", token = "t" }"#,
            "{",
            "`token` needs `token_secret",
        ),
        (
            r#"{ type = "oauth1", consumer_key = "a", consumer_secret = "b", token_secret = "t" }"#,
            "{",
            "`token_secret` needs `token",
        ),
        (
            r#"{ type = "github-app", installation_id = 1, secret = "s" }"#,
            "{",
            "needs `app_id",
        ),
        (
            r#"{ type = "github-app", app_id = -1, installation_id = 1, secret = "s" }"#,
            "-1",
            "`app_id` must be",
        ),
        (
            r#"{ type = "github-app", app_id = "a b", installation_id = 1, secret = "s" }"#,
            "\"a b\"",
            "`app_id` must be",
        ),
        (
            r#"{ type = "github-app", app_id = 1, secret = "s" }"#,
            "{",
            "needs `installation_id",
        ),
        (
            r#"{ type = "github-app", app_id = 1, installation_id = "x", secret = "s" }"#,
            "\"x\"",
            "`installation_id` must be a positive number",
        ),
        (
            r#"{ type = "github-app", app_id = 1, installation_id = 2 }"#,
            "{",
            "needs `secret",
        ),
        (
            r#"{ type = "gcp-service-account", secret = "s" }"#,
            "{",
            "needs `scopes",
        ),
        (
            r#"{ type = "gcp-service-account", secret = "s", scopes = [] }"#,
            "[",
            "`scopes` must name at least one scope",
        ),
        (
            r#"{ type = "gcp-service-account", secret = "s", scopes = ["a b"] }"#,
            "\"a b\"",
            "each scope must be non-empty",
        ),
        (
            r#"{ type = "gcp-service-account", scopes = ["x"] }"#,
            "{",
            "needs `secret",
        ),
        (
            r#"{ type = "oauth2", client_id = "c", secret = "s" }"#,
            "{",
            "needs `token_url",
        ),
        (
            r#"{ type = "oauth2", token_url = "http://auth.example.com/t", client_id = "c", secret = "s" }"#,
            "\"http:",
            "`token_url`: \"http://auth.example.com/t\" must use https://",
        ),
        (
            r#"{ type = "oauth2", token_url = "not a url", client_id = "c", secret = "s" }"#,
            "\"not",
            "`token_url`: invalid URL",
        ),
        (
            r#"{ type = "oauth2", token_url = "https://u:p@auth.example.com/t", client_id = "c", secret = "s" }"#,
            "\"https:",
            "contains credentials",
        ),
        (
            r#"{ type = "oauth2", token_url = "https://a.example/t", secret = "s" }"#,
            "{",
            "needs `client_id",
        ),
        (
            r#"{ type = "oauth2", token_url = "https://a.example/t", client_id = "", secret = "s" }"#,
            "\"\"",
            "`client_id` must be non-empty",
        ),
        (
            r#"{ type = "oauth2", token_url = "https://a.example/t", client_id = "c" }"#,
            "{",
            "needs `secret",
        ),
        (
            r#"{ type = "oauth2", token_url = "https://a.example/t", client_id = "c", secret = "s", scope = " " }"#,
            "\" \"",
            "`scope` must be",
        ),
        (
            r#"{ type = "oauth2", token_url = "https://a.example/t", client_id = "c", secret = "s", client_auth = "jwt" }"#,
            "\"jwt\"",
            "invalid `client_auth` \"jwt\"; expected \"basic\" or \"body\"",
        ),
        (
            r#"{ type = "bearer", secret = "s", param = "k" }"#,
            "\"k\"",
            "auth type \"bearer\" does not use `param` (it belongs to \"query\"); remove it",
        ),
        (
            r#"{ type = "query", param = "k", secret = "s", region = "x" }"#,
            "\"x\"",
            "does not use `region` (it belongs to \"aws-sigv4\")",
        ),
        (
            r#"{ type = "basic", usernme = "u", secret = "s" }"#,
            "usernme",
            "unknown field `usernme`",
        ),
        (
            r#"{ type = "aws", secret = "s" }"#,
            "\"aws\"",
            "unknown auth type \"aws\"; expected one of: bearer, basic, header, query, aws-sigv4, oauth1, github-app, gcp-service-account, oauth2",
        ),
    ];
    for (table, locate, expected) in cases {
        let line = format!("auth = {table}");
        let text = format!("[services.s]\nurl = \"https://x.example\"\n{line}\n");
        let col = line.find(locate).unwrap() + 1;
        let err = parse(&text).unwrap_err();
        let location = format!("airlock.toml:3:{col}:");
        assert!(
            err.starts_with(&location),
            "{table}\n  got: {err}\n  want prefix {location}"
        );
        assert!(
            err.contains(expected),
            "{table}\n  got: {err}\n  want: {expected}"
        );
        assert!(!err.contains('\n'), "error is not one line: {err:?}");
        if !locate.starts_with("usernme") && !expected.starts_with("unknown") {
            assert!(err.contains("service \"s\""), "{err}");
        }
    }
}

/// Issue 12: `confine` and `network` are exec-only, `network` takes "none" or
/// "direct"; a mistake is one located error, never a silent default.
#[test]
fn confine_and_network_are_checked() {
    let svc =
        "[services.s]\nurl = \"https://x.com\"\nauth = { type = \"bearer\", secret = \"s\" }\n";
    let exec = "[capabilities.c]\nservice = \"s\"\nmode = \"exec\"\ncommands = [\"git\"]\n";
    let parse = |extra: &str, base: &str| {
        airlock_config::Config::parse(
            std::path::Path::new("airlock.toml"),
            &format!("{svc}{base}{extra}"),
        )
    };
    let ok = parse("", exec).unwrap();
    let cap = &ok.capabilities["c"];
    assert!(cap.confine, "confined by default");
    assert_eq!(cap.network, airlock_config::Network::None);
    let direct = parse("network = \"direct\"\nconfine = false\n", exec).unwrap();
    assert_eq!(
        direct.capabilities["c"].network,
        airlock_config::Network::Direct
    );
    assert!(!direct.capabilities["c"].confine);
    assert_eq!(
        cap.inject,
        airlock_config::Inject::Placeholder,
        "a placeholder by default (DESIGN §4)"
    );
    let env = parse("inject = \"env\"\n", exec).unwrap();
    assert_eq!(env.capabilities["c"].inject, airlock_config::Inject::Env);
    let http = "[capabilities.c]\nservice = \"s\"\n";
    for (extra, base, line, says) in [
        (
            "inject = \"proxy\"\n",
            exec,
            ":8:",
            "invalid inject \"proxy\"; expected \"placeholder\"",
        ),
        (
            "inject = \"placeholder\"\n",
            http,
            ":6:",
            "`inject` is only for mode = \"exec\"",
        ),
        (
            "network = \"proxy\"\n",
            exec,
            ":8:",
            "invalid network \"proxy\"",
        ),
        ("network = \"\\u001b[2J\"\n", exec, ":8:", "\\u{1b}"),
        ("confine = \"no\"\n", exec, ":8:", "expected a boolean"),
        ("confine = false\n", http, ":6:", "only for mode = \"exec\""),
        (
            "network = \"direct\"\n",
            http,
            ":6:",
            "only for mode = \"exec\"",
        ),
    ] {
        let e = parse(extra, base).unwrap_err().to_string();
        assert!(
            e.starts_with(&format!("airlock.toml{line}")),
            "{extra}: {e}"
        );
        assert!(e.contains(says), "{extra}: {e}");
        assert_eq!(e.lines().count(), 1, "{e}");
    }
}

/// `server.egress`: "deny" by default, "tunnel" when set, anything else one
/// located error.
#[test]
fn egress_is_deny_unless_the_owner_says_tunnel() {
    let parse =
        |text: &str| airlock_config::Config::parse(std::path::Path::new("airlock.toml"), text);
    assert_eq!(
        parse("").unwrap().server.egress,
        airlock_config::Egress::Deny
    );
    assert_eq!(
        parse("[server]\negress = \"tunnel\"\n")
            .unwrap()
            .server
            .egress,
        airlock_config::Egress::Tunnel
    );
    let e = parse("[server]\negress = \"open\"\n")
        .unwrap_err()
        .to_string();
    assert!(e.starts_with("airlock.toml:2:"), "{e}");
    assert!(e.contains("invalid egress \"open\""), "{e}");
    assert_eq!(e.lines().count(), 1, "{e}");
}

/// `learn_until` (learning mode): a time with its zone on an HTTP capability;
/// anything else is one located error, never a silent default.
#[test]
fn learn_until_is_checked() {
    let svc =
        "[services.s]\nurl = \"https://x.com\"\nauth = { type = \"bearer\", secret = \"s\" }\n";
    let parse = |cap: &str| {
        airlock_config::Config::parse(
            std::path::Path::new("airlock.toml"),
            &format!("{svc}[capabilities.c]\nservice = \"s\"\n{cap}"),
        )
    };
    let ok = parse("learn_until = \"2026-12-07T15:00:00Z\"\n").unwrap();
    let cap = &ok.capabilities["c"];
    let until: jiff::Timestamp = "2026-12-07T15:00:00Z".parse().unwrap();
    assert_eq!(cap.learn_until, Some(until));
    assert!(cap.learning_at("2026-12-07T14:59:59Z".parse().unwrap()));
    assert!(!cap.learning_at(until), "the window ends at learn_until");
    assert_eq!(parse("").unwrap().capabilities["c"].learn_until, None);
    for (cap, says) in [
        ("learn_until = \"tomorrow\"\n", "learn_until:"),
        ("learn_until = \"2026-12-07T15:00:00\"\n", "learn_until:"),
        (
            "mode = \"exec\"\ncommands = [\"git\"]\nlearn_until = \"2026-12-07T15:00:00Z\"\n",
            "only for HTTP capabilities",
        ),
    ] {
        let err = parse(cap).unwrap_err().to_string();
        assert!(
            err.contains(says) && err.contains("airlock.toml:"),
            "{cap}: {err}"
        );
    }
}

/// Rules are compiled once per capability; a bad one is still reported at its
/// own line with the message it always had, in the order it always was: allow
/// before deny, and any rule before the capability's bad extra method.
#[test]
fn rule_errors_point_at_the_rule_as_before() {
    let cap = |body: &str| {
        format!(
            "[services.s]\nurl = \"https://x.com\"\nauth = {{ type = \"bearer\", secret = \"s\" }}\n[capabilities.c]\nservice = \"s\"\n{body}"
        )
    };
    let cases: &[(&str, &str)] = &[
        (
            "allow = [\"GET /ok\"]\ndeny = [\"GET /fine\", \"get /a//b\"]\n",
            "airlock.toml:7:22: capability \"c\": deny rule: rule \"get /a//b\": empty segments (\"//\") are not allowed: in a normalized path \"//\" has collapsed to \"/\"",
        ),
        (
            "methods = [\"get\", \"propfind\"]\nallow = [\"PROPFIND /dav\", \"MKCOL /dav\"]\n",
            "airlock.toml:7:27: capability \"c\": allow rule: rule \"MKCOL /dav\": method \"MKCOL\" is not allowed; allowed methods are GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS, GET, PROPFIND (a capability allows others by listing them in its `methods`)",
        ),
        (
            "methods = [\"trace\"]\nallow = [\"GET /%41\"]\n",
            "airlock.toml:7:10: capability \"c\": allow rule: rule \"GET /%41\": the path is not in normalized form: write it as \"/A\" (rules are matched against normalized paths)",
        ),
        (
            "methods = [\"trace\"]\nallow = [\"GET /ok\"]\n",
            "airlock.toml:4:1: capability \"c\": extra method [0]: method \"TRACE\" is never allowed: the server would echo the request, including the injected credential, back to the agent",
        ),
    ];
    for (body, want) in cases {
        let text = cap(body);
        assert_eq!(parse(&text).unwrap_err(), *want, "{text}");
    }
    // And the rules that load are the ones written, compiled.
    let ok = airlock_config::Config::parse(
        std::path::Path::new("airlock.toml"),
        &cap("allow = [\"get  /v1/**\", \"POST /v1/x\"]\ndeny = [\"* /v1/admin/**\"]\n"),
    )
    .unwrap();
    let c = &ok.capabilities["c"];
    assert_eq!(
        c.allow_written().collect::<Vec<_>>(),
        ["get  /v1/**", "POST /v1/x"]
    );
    assert_eq!(c.allow.len(), 2);
    assert_eq!(c.deny_written().collect::<Vec<_>>(), ["* /v1/admin/**"]);
    let texts: Vec<&str> = c.rules.allow_rules().iter().map(|r| r.as_str()).collect();
    assert_eq!(texts, ["GET /v1/**", "POST /v1/x"]);
    assert_eq!(c.rules.deny_rules()[0].as_str(), "* /v1/admin/**");
}
