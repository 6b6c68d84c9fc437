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
    doc.add_service("stripe", "https://api.stripe.com", "bearer", "stripe")
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
        .add_service("stripe", "https://x", "bearer", "s")
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
