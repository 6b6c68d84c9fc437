//! Every check of the broker, in order, with a test clock.
#![allow(clippy::unwrap_used)]

use std::path::Path;
use std::time::Duration;

use airlock_broker::{AgentRequest, Broker, Caller, Check, ExecAgentRequest, Grant, ManualClock};
use airlock_config::Config;
use homes::{assert_no_canary_in_home, home_files, home_with_secret};

#[path = "support/homes.rs"]
mod homes;

// The survivors of mutation testing, killed (docs/testing.md, "Mutation testing").
#[path = "broker/mutants.rs"]
mod mutants;

const CONFIG: &str = r#"
[services.stripe]
url = "https://api.stripe.com/base"
auth = { type = "bearer", secret = "stripe" }

[capabilities.open]
service = "stripe"
ttl = "1m"

[capabilities.ro]
service = "stripe"
allow = ["GET /v1/**"]
deny = ["* /v1/admin/**"]
agents = ["claude-desktop"]
requires_reason = true
rate = "2/min"

[capabilities.approve]
service = "stripe"
approval = true

[capabilities.tool]
service = "stripe"
mode = "exec"
commands = ["git"]
"#;

fn broker(text: &str) -> (std::sync::Arc<ManualClock>, Broker) {
    let clock = ManualClock::new();
    let cfg = Config::parse(Path::new("airlock.toml"), text).unwrap();
    (clock.clone(), Broker::new(cfg, clock))
}

fn caller(trusted: Option<&str>, declared: Option<&str>) -> Caller {
    Caller {
        declared: declared.map(String::from),
        ..Caller::connection(trusted.map(String::from))
    }
}

fn req(cap: &str, method: &str, path: &str, reason: Option<&str>) -> AgentRequest {
    AgentRequest {
        capability: cap.into(),
        method: method.into(),
        path: path.into(),
        reason: reason.map(String::from),
        approved: false,
    }
}

#[test]
fn allowed_request_carries_the_normalized_target_and_rule() {
    let (_c, b) = broker(CONFIG);
    let me = caller(Some("claude-desktop"), None);
    let ok = b
        .authorize(
            &me,
            &req(
                "ro",
                "get",
                "/v1/./customers/%41b?limit=3",
                Some("listing customers"),
            ),
        )
        .unwrap();
    assert_eq!(ok.method, "GET");
    assert_eq!(ok.target.path, "/v1/customers/Ab");
    assert_eq!(ok.target.query.as_deref(), Some("limit=3"));
    assert_eq!(ok.rule.as_deref(), Some("GET /v1/**"));
    assert_eq!(ok.service.name, "stripe");
}

#[test]
fn agents_lists_match_only_trusted_identities() {
    let (_c, b) = broker(CONFIG);
    // A client that merely *claims* to be claude-desktop is not.
    let liar = caller(None, Some("claude-desktop"));
    let r = b
        .authorize(&liar, &req("ro", "GET", "/v1/x", Some("r")))
        .unwrap_err();
    assert_eq!(r.check, Check::Agent);
    assert!(r.message.contains("no trusted identity"), "{}", r.message);
    assert!(!b.visible(&liar).iter().any(|c| c.name == "ro"));
    let other = caller(Some("cursor"), None);
    assert_eq!(
        b.authorize(&other, &req("ro", "GET", "/v1/x", Some("r")))
            .unwrap_err()
            .check,
        Check::Agent
    );
    let me = caller(Some("claude-desktop"), None);
    assert!(b.visible(&me).iter().any(|c| c.name == "ro"));
}

#[test]
fn a_token_scope_limits_capabilities() {
    let (_c, b) = broker(CONFIG);
    let scoped = Caller {
        scope: Some(vec!["open".into()]),
        ..caller(Some("claude-desktop"), None)
    };
    assert!(
        b.authorize(&scoped, &req("open", "GET", "/x", None))
            .is_ok()
    );
    let r = b
        .authorize(&scoped, &req("ro", "GET", "/v1/x", Some("r")))
        .unwrap_err();
    assert_eq!(r.check, Check::Agent);
    assert!(
        r.message.contains("limited to capabilities [open]"),
        "{}",
        r.message
    );
    let names: Vec<String> = b.visible(&scoped).into_iter().map(|c| c.name).collect();
    assert_eq!(names, ["open"]);
}

#[test]
fn restricted_default_access_hides_capabilities_without_agents() {
    let (_c, b) = broker(&format!(
        "[server]\ndefault_access = \"restricted\"\n{CONFIG}"
    ));
    let me = caller(Some("claude-desktop"), None);
    let names: Vec<String> = b.visible(&me).into_iter().map(|c| c.name).collect();
    assert_eq!(names, ["ro"]);
    let r = b
        .authorize(&me, &req("open", "GET", "/x", None))
        .unwrap_err();
    assert_eq!(r.check, Check::Agent);
    assert!(r.message.contains("restricted"), "{}", r.message);
}

#[test]
fn each_check_refuses_with_its_name() {
    let (_c, b) = broker(CONFIG);
    let me = caller(Some("claude-desktop"), None);
    let cases = [
        (
            req("nope", "GET", "/", None),
            Check::Capability,
            "unknown capability \"nope\"",
        ),
        (req("tool", "GET", "/", None), Check::Mode, "exec"),
        (
            req("ro", "TRACE", "/v1/x", Some("r")),
            Check::Method,
            "TRACE",
        ),
        (req("ro", "GET", "/v1/%2fadmin", Some("r")), Check::Path, ""),
        (
            req("ro", "GET", "/v1/../admin", Some("r")),
            Check::Rule,
            "/admin",
        ),
        (
            req("ro", "DELETE", "/v1/admin/users", Some("r")),
            Check::Rule,
            "* /v1/admin/**",
        ),
        (
            req("ro", "GET", "/v1/x", None),
            Check::Reason,
            "requires a reason",
        ),
        (
            req("ro", "GET", "/v1/x", Some("   ")),
            Check::Reason,
            "requires a reason",
        ),
        (
            req("approve", "GET", "/x", None),
            Check::Approval,
            "approval required",
        ),
    ];
    for (r, check, needle) in cases {
        let refusal = b.authorize(&me, &r).unwrap_err();
        assert_eq!(refusal.check, check, "{r:?}: {refusal}");
        assert!(refusal.message.contains(needle), "{r:?}: {refusal}");
    }
    let deny = b
        .authorize(&me, &req("ro", "GET", "/v1/admin", Some("r")))
        .unwrap_err();
    assert_eq!(
        deny.rule.as_deref(),
        Some("* /v1/admin/**"),
        "the refusal names the rule"
    );
}

#[test]
fn rate_limit_counts_only_allowed_requests_per_agent() {
    let (clock, b) = broker(CONFIG);
    let me = caller(Some("claude-desktop"), None);
    // Refused requests spend no tokens.
    for _ in 0..5 {
        b.authorize(&me, &req("ro", "GET", "/v1/admin", Some("r")))
            .unwrap_err();
    }
    b.authorize(&me, &req("ro", "GET", "/v1/a", Some("r")))
        .unwrap();
    b.authorize(&me, &req("ro", "GET", "/v1/b", Some("r")))
        .unwrap();
    let r = b
        .authorize(&me, &req("ro", "GET", "/v1/c", Some("r")))
        .unwrap_err();
    assert_eq!(r.check, Check::Rate);
    assert!(r.message.contains("2/min"), "{}", r.message);
    // The same trusted agent on another connection shares the budget.
    let me2 = Caller {
        grant: Grant::connection(),
        ..me.clone()
    };
    assert_eq!(
        b.authorize(&me2, &req("ro", "GET", "/v1/c", Some("r")))
            .unwrap_err()
            .check,
        Check::Rate
    );
    clock.advance(Duration::from_secs(30));
    b.authorize(&me, &req("ro", "GET", "/v1/c", Some("r")))
        .unwrap();
}

#[test]
fn ttl_runs_from_first_use_then_the_connection_is_refused() {
    let (clock, b) = broker(CONFIG);
    let me = caller(None, Some("some-client"));
    clock.advance(Duration::from_secs(600)); // idle time before first use does not count
    let first = b.authorize(&me, &req("open", "GET", "/x", None)).unwrap();
    clock.advance(Duration::from_secs(59));
    assert_eq!(
        b.authorize(&me, &req("open", "GET", "/y", None))
            .unwrap()
            .session,
        first.session
    );
    clock.advance(Duration::from_secs(1));
    let r = b
        .authorize(&me, &req("open", "GET", "/x", None))
        .unwrap_err();
    assert_eq!(r.check, Check::Session);
    assert!(r.message.contains("session expired"), "{}", r.message);
    assert_eq!(r.session.as_ref(), Some(&first.session));
    // A new connection starts a new session.
    let fresh = caller(None, Some("some-client"));
    assert_ne!(
        b.authorize(&fresh, &req("open", "GET", "/x", None))
            .unwrap()
            .session,
        first.session
    );
}

#[test]
fn revoked_sessions_are_refused_at_once() {
    let (_clock, b) = broker(CONFIG);
    let me = caller(None, None);
    b.authorize(&me, &req("open", "GET", "/x", None)).unwrap();
    assert_eq!(b.sessions().revoke_where(|s| s.capability == "open"), 1);
    assert_eq!(
        b.authorize(&me, &req("open", "GET", "/x", None))
            .unwrap_err()
            .check,
        Check::Session
    );
}

#[test]
fn explain_neither_starts_a_session_nor_spends_a_token() {
    let (_clock, b) = broker(CONFIG);
    let me = caller(Some("claude-desktop"), None);
    for _ in 0..5 {
        let steps = b.explain(&me, "ro", Some("GET"), Some("/v1/admin/x"));
        assert!(
            steps.last().unwrap().starts_with("decision: denied"),
            "{steps:?}"
        );
    }
    assert!(b.sessions().list().is_empty());
    b.authorize(&me, &req("ro", "GET", "/v1/a", Some("r")))
        .unwrap();
    b.authorize(&me, &req("ro", "GET", "/v1/b", Some("r")))
        .unwrap();
}

#[test]
fn reload_applies_new_rules_and_keeps_sessions() {
    let (_clock, b) = broker(CONFIG);
    let me = caller(None, None);
    let s = b
        .authorize(&me, &req("open", "GET", "/x", None))
        .unwrap()
        .session;
    let tightened = CONFIG.replace("ttl = \"1m\"", "ttl = \"1m\"\ndeny = [\"GET /x\"]");
    b.reload(Config::parse(Path::new("airlock.toml"), &tightened).unwrap());
    assert_eq!(
        b.authorize(&me, &req("open", "GET", "/x", None))
            .unwrap_err()
            .check,
        Check::Rule
    );
    assert_eq!(
        b.authorize(&me, &req("open", "GET", "/y", None))
            .unwrap()
            .session,
        s
    );
}

// ---- exec: the same shared checks, with the exec policy in place of the rules ----

fn exec_config(workdir: &Path) -> String {
    format!(
        r#"
[services.gh]
url = "https://api.github.com"
auth = {{ type = "bearer", secret = "gh" }}

[capabilities.api]
service = "gh"

[capabilities.tools]
service = "gh"
mode = "exec"
ttl = "1m"
commands = ["/usr/bin/printenv", "git"]
env = {{ GH_TOKEN = "{{{{secret}}}}" }}
workdirs = ["{}"]
agents = ["claude-desktop"]
requires_reason = true
rate = "2/min"

[capabilities.broken]
service = "gh"
mode = "exec"
commands = ["/nonexistent/airlock-test-program"]
"#,
        workdir.display()
    )
}

fn exec_req(
    cap: &str,
    command: &[&str],
    cwd: Option<&str>,
    reason: Option<&str>,
) -> ExecAgentRequest {
    ExecAgentRequest {
        capability: cap.into(),
        command: command.iter().map(|s| s.to_string()).collect(),
        cwd: cwd.map(String::from),
        reason: reason.map(String::from),
        approved: false,
    }
}

#[test]
fn authorize_exec_resolves_the_program_through_the_allow_list() {
    let dir = tempfile::tempdir().unwrap();
    let (_c, b) = broker(&exec_config(dir.path()));
    let me = caller(Some("claude-desktop"), None);
    let ok = b
        .authorize_exec(
            &me,
            &exec_req("tools", &["printenv", "GH_TOKEN"], None, Some("r")),
        )
        .unwrap();
    assert_eq!(ok.invocation.program.name, "printenv");
    assert!(ok.invocation.program.canonical.is_absolute());
    assert_eq!(ok.invocation.args, vec!["GH_TOKEN".to_string()]);
    assert_eq!(
        ok.invocation.cwd.as_deref(),
        Some(dir.path().canonicalize().unwrap().as_path())
    );
    assert_eq!(ok.service.name, "gh");
    assert_eq!(ok.policy.secret_name(), Some("gh"));
    assert!(ok.session_started);
}

#[test]
fn authorize_exec_refusals_name_their_check() {
    let dir = tempfile::tempdir().unwrap();
    let outside = tempfile::tempdir().unwrap();
    let (_c, b) = broker(&exec_config(dir.path()));
    let me = caller(Some("claude-desktop"), None);
    let outside_path = outside.path().display().to_string();
    let cases = [
        (
            exec_req("nope", &["printenv"], None, Some("r")),
            Check::Capability,
            "unknown capability",
        ),
        (
            exec_req("api", &["printenv"], None, Some("r")),
            Check::Mode,
            "execute tool",
        ),
        (
            exec_req("tools", &["sh", "-c", "id"], None, Some("r")),
            Check::Program,
            "not allowed",
        ),
        (
            exec_req("tools", &["/bin/sh"], None, Some("r")),
            Check::Program,
            "not allowed",
        ),
        (
            exec_req("tools", &["./printenv"], None, Some("r")),
            Check::Program,
            "relative path",
        ),
        (
            exec_req("tools", &[], None, Some("r")),
            Check::Program,
            "empty command",
        ),
        (
            exec_req("tools", &["git", "-c", "alias.x=!sh", "x"], None, Some("r")),
            Check::Argument,
            "-c",
        ),
        (
            exec_req(
                "tools",
                &["git", "clone", "--upload-pack=touch /tmp/x", "u"],
                None,
                Some("r"),
            ),
            Check::Argument,
            "--upload-pack",
        ),
        (
            exec_req("tools", &["printenv"], Some(&outside_path), Some("r")),
            Check::Cwd,
            "outside",
        ),
        (
            exec_req("tools", &["printenv"], None, None),
            Check::Reason,
            "requires a reason",
        ),
        (
            exec_req("broken", &["airlock-test-program"], None, None),
            Check::Config,
            "airlock.toml",
        ),
    ];
    for (r, check, needle) in cases {
        let refusal = b.authorize_exec(&me, &r).unwrap_err();
        assert_eq!(refusal.check, check, "{r:?}: {refusal}");
        assert!(refusal.message.contains(needle), "{r:?}: {refusal}");
        assert!(
            refusal
                .to_string()
                .contains(&format!("refused by the {} check", check.as_str()))
        );
    }
    // The agents list matches trusted identities only.
    let stranger = caller(None, Some("claude-desktop"));
    assert_eq!(
        b.authorize_exec(
            &stranger,
            &exec_req("tools", &["printenv"], None, Some("r"))
        )
        .unwrap_err()
        .check,
        Check::Agent
    );
    // No refused request started a session.
    assert!(b.sessions().list().is_empty());
    // The unusable capability is reported once, by name.
    let policies = b.exec_policies();
    let problems: Vec<String> = policies.errors().map(ToString::to_string).collect();
    assert_eq!(problems.len(), 1, "{problems:?}");
    assert!(problems[0].contains("\"broken\""), "{problems:?}");
}

#[test]
fn authorize_exec_shares_rate_and_session_ttl() {
    let dir = tempfile::tempdir().unwrap();
    let (clock, b) = broker(&exec_config(dir.path()));
    let me = caller(Some("claude-desktop"), None);
    // Refused requests spend no rate tokens.
    for _ in 0..5 {
        b.authorize_exec(&me, &exec_req("tools", &["sh"], None, Some("r")))
            .unwrap_err();
    }
    let first = b
        .authorize_exec(&me, &exec_req("tools", &["printenv"], None, Some("r")))
        .unwrap();
    b.authorize_exec(&me, &exec_req("tools", &["git", "status"], None, Some("r")))
        .unwrap();
    let r = b
        .authorize_exec(&me, &exec_req("tools", &["printenv"], None, Some("r")))
        .unwrap_err();
    assert_eq!(r.check, Check::Rate);
    clock.advance(Duration::from_secs(60));
    let r = b
        .authorize_exec(&me, &exec_req("tools", &["printenv"], None, Some("r")))
        .unwrap_err();
    assert_eq!(r.check, Check::Session, "{r}");
    assert_eq!(r.session.as_ref(), Some(&first.session));
}

// ---------------------------------------------------------------- whole-home canary scan

/// A local upstream on 127.0.0.1 that answers every request `200 ok` and keeps
/// the request lines it saw.
fn upstream() -> (u16, std::sync::Arc<std::sync::Mutex<Vec<String>>>) {
    use std::io::{BufRead as _, Write as _};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let log = seen.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let mut reader = std::io::BufReader::new(stream.try_clone().unwrap());
            let mut line = String::new();
            if reader.read_line(&mut line).is_err() {
                continue;
            }
            // The rest of the head (GET: no body).
            loop {
                let mut h = String::new();
                if reader.read_line(&mut h).map_or(true, |n| n == 0) || h == "\r\n" {
                    break;
                }
            }
            log.lock().unwrap().push(line.trim_end().to_string());
            let _ = stream
                .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok");
        }
    });
    (port, seen)
}

/// The broker's request path (`Runtime::execute`: decide, write-ahead audit,
/// inject, send, scrub, outcome) on a real home: canaries sent as query values —
/// in the path's `?query` and in the `query` pairs — reach the upstream, the
/// audit record names the keys only, and no file under the home holds a canary
/// or the credential.
#[tokio::test(flavor = "current_thread")]
async fn query_values_and_the_credential_are_in_no_file_under_the_home() {
    use airlock_broker::{ExecuteRequest, Runtime, SystemClock};
    const SECRET: &str = "sk_test_BROKER_canary_91d2";
    const IN_PATH: &str = "qv_CANARY_broker_path_40aa";
    const IN_PAIRS: &str = "qv_CANARY_broker_pairs_7f3e";
    let (port, seen) = upstream();
    let dir = tempfile::tempdir().unwrap();
    let config = format!(
        "[services.svc]\nurl = \"http://127.0.0.1:{port}/base\"\n\
         auth = {{ type = \"bearer\", secret = \"svc\" }}\n\
         [capabilities.svc]\nservice = \"svc\"\nallow = [\"GET /v1/**\"]\n"
    );
    let (home, vault) = home_with_secret(dir.path().join("home"), SECRET, &config);
    let root = home.root().to_path_buf();
    let rt = Runtime::new(home, vault, SystemClock::new()).unwrap();
    let me = caller(Some("tester"), None);
    let r = rt
        .execute(
            &me,
            ExecuteRequest {
                capability: "svc".into(),
                method: "GET".into(),
                path: format!("/v1/items?k={IN_PATH}&page=2"),
                query: vec![("token".into(), IN_PAIRS.into())],
                headers: Vec::new(),
                body: None,
                reason: None,
            },
        )
        .await
        .unwrap();
    assert_eq!((r.status, r.body.as_str()), (200, "ok"));
    let lines = seen.lock().unwrap().clone();
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert!(
        lines[0].contains(IN_PATH) && lines[0].contains(IN_PAIRS),
        "{lines:?}"
    );
    rt.close_audit().unwrap();
    // The whole-home scan first: it holds whatever the record's layout.
    for canary in [IN_PATH, IN_PAIRS, SECRET] {
        assert_no_canary_in_home(&root, &root.join("audit"), &[canary]);
    }
    let audit = home_files(&root.join("audit"))
        .into_iter()
        .map(|(_, b)| String::from_utf8(b).unwrap())
        .collect::<String>();
    assert!(
        audit.contains(r#""query_keys":["k","page","token"]"#),
        "{audit}"
    );
}

/// Write-ahead with one fsync per request (issue 16): the outcome record is
/// written — readable in the log, naming its decision — before the answer
/// returns, without an fsync of its own; the next request's decision sync
/// covers it, and at close every record is durable and anchored, no request
/// left without outcome.
#[tokio::test(flavor = "current_thread")]
async fn the_outcome_is_written_before_the_answer_and_anchored_by_the_next_sync() {
    use airlock_audit::{Filter, Kind, records, verify};
    use airlock_broker::{ExecuteRequest, Runtime, SystemClock};
    let (port, _seen) = upstream();
    let dir = tempfile::tempdir().unwrap();
    let config = format!(
        "[services.svc]\nurl = \"http://127.0.0.1:{port}/base\"\n\
         auth = {{ type = \"bearer\", secret = \"svc\" }}\n\
         [capabilities.svc]\nservice = \"svc\"\nallow = [\"GET /v1/**\"]\n"
    );
    let (home, vault) = home_with_secret(dir.path().join("home"), "sk_test_x", &config);
    let key = *vault.audit_key();
    let (audit, state) = (home.audit_dir(), home.state_dir());
    let rt = Runtime::new(home, vault, SystemClock::new()).unwrap();
    let me = caller(Some("tester"), None);
    let get = |i: u32| ExecuteRequest {
        capability: "svc".into(),
        method: "GET".into(),
        path: format!("/v1/items/{i}"),
        query: Vec::new(),
        headers: Vec::new(),
        body: None,
        reason: None,
    };
    let mut anchored = Vec::new();
    for i in 0..2 {
        let r = rt.execute(&me, get(i)).await.unwrap();
        assert_eq!(r.status, 200);
        let all: Vec<_> = records(&audit, Filter::all())
            .unwrap()
            .map(Result::unwrap)
            .collect();
        let (decision, outcome) = (&all[all.len() - 2], &all[all.len() - 1]);
        assert_eq!(
            (decision.event.kind.clone(), outcome.event.kind.clone()),
            (Kind::Request, Kind::Outcome)
        );
        assert_eq!(outcome.event.of, Some(decision.seq));
        assert_eq!(outcome.event.status, Some(200));
        assert_eq!(outcome.seq, decision.seq + 1);
        anchored.push((
            decision.seq,
            verify(&audit, &state, &key).unwrap().anchor_seq,
        ));
    }
    // The second decision's sync covered the first outcome (seq + 1).
    let (first, (second, at_second)) = (anchored[0].0, anchored[1]);
    assert!(at_second >= Some(second), "{anchored:?}");
    assert_eq!(second, first + 2, "{anchored:?}");
    rt.close_audit().unwrap();
    let report = verify(&audit, &state, &key).unwrap();
    assert!(report.is_ok(), "{report}");
    assert_eq!(report.anchor_seq, Some(second + 1), "{report}");
    assert!(report.without_outcome.is_empty(), "{report}");
}

#[test]
fn the_owners_run_skips_agents_lists_but_keeps_its_scope_and_the_rules() {
    let (_c, b) = broker(CONFIG);
    let run = Caller::owner_run(vec!["ro".into(), "tool".into()]);
    // `ro` is limited to claude-desktop: the owner is no agent.
    let ok = b
        .authorize(&run, &req("ro", "GET", "/v1/x", Some("r")))
        .unwrap();
    assert_eq!(ok.capability.name, "ro");
    // Its rules and requires_reason still hold.
    let r = b
        .authorize(&run, &req("ro", "GET", "/v1/admin/x", Some("r")))
        .unwrap_err();
    assert_eq!(r.check, Check::Rule);
    let r = b
        .authorize(&run, &req("ro", "GET", "/v1/x", None))
        .unwrap_err();
    assert_eq!(r.check, Check::Reason);
    // Only the capabilities it was started with.
    let r = b
        .authorize(&run, &req("open", "GET", "/x", None))
        .unwrap_err();
    assert_eq!(r.check, Check::Agent);
    // HTTP through the proxy on its exec capability.
    let ok = b
        .authorize(&run, &req("tool", "GET", "/v1/repos", None))
        .unwrap();
    assert_eq!(ok.capability.name, "tool");
    // An agent may not use an exec capability over HTTP, whatever its scope.
    let agent = Caller {
        scope: Some(vec!["tool".into()]),
        ..caller(Some("claude-desktop"), None)
    };
    let r = b
        .authorize(&agent, &req("tool", "GET", "/v1/repos", None))
        .unwrap_err();
    assert_eq!(r.check, Check::Mode);
    // Its sessions are the owner's.
    assert_eq!(ok.session.as_str().len(), 18);
    assert!(b.sessions().list().iter().any(|s| s.agent == "owner"));
}

#[test]
fn an_exec_child_reaches_its_own_capability_over_http_as_its_agent() {
    let config = format!(
        "{CONFIG}\n[capabilities.child]\nservice = \"stripe\"\nmode = \"exec\"\ncommands = [\"git\"]\nagents = [\"claude-desktop\"]\nrequires_reason = true\napproval = true\n"
    );
    let (_c, b) = broker(&config);
    let agent = caller(Some("claude-desktop"), None);
    let child = agent.exec_child("child");
    assert!(child.exec_child && !child.owner);
    assert_eq!(child.grant, agent.grant);
    // HTTP on its exec capability, without a reason or an approval of its own
    // (the exec call had both).
    let ok = b
        .authorize(&child, &req("child", "GET", "/v1/x", None))
        .unwrap();
    assert_eq!(ok.capability.name, "child");
    // Its sessions are the agent's: same grant, same session.
    let again = b
        .authorize(&child, &req("child", "GET", "/v1/y", None))
        .unwrap();
    assert_eq!(ok.session, again.session);
    // Only that capability.
    let r = b
        .authorize(&child, &req("open", "GET", "/x", None))
        .unwrap_err();
    assert_eq!(r.check, Check::Agent);
    // The agents list still holds: another agent's child is refused.
    let other = caller(Some("cursor"), None).exec_child("child");
    let r = b
        .authorize(&other, &req("child", "GET", "/v1/x", None))
        .unwrap_err();
    assert_eq!(r.check, Check::Agent);
    // The agent itself still may not use an exec capability over HTTP, and
    // still needs its reason on HTTP capabilities.
    let r = b
        .authorize(&agent, &req("child", "GET", "/v1/x", Some("r")))
        .unwrap_err();
    assert_eq!(r.check, Check::Mode);
    let child_of_ro = agent.exec_child("ro");
    let r = b
        .authorize(&child_of_ro, &req("ro", "GET", "/v1/x", None))
        .unwrap_err();
    assert_eq!(r.check, Check::Reason);
}
