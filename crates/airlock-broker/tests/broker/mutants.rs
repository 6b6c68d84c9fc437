//! What the broker's own tests missed under mutation (issue 20, item 1;
//! docs/testing.md, "Mutation testing"): who the caller is and whether that is
//! trusted, the refusal's check name, the exec-mode message, the reason's length
//! bound, unverified callers' rate budgets, the rate limiter's wait, sessions as
//! listed, the one approval flow (held, asked, answered, bound to its hash), and
//! the audit writer's flush, tick and shutdown.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use airlock_audit::{Decision, Event, Filter, Kind, records, verify};
use airlock_broker::{
    Approver, Caller, Check, ExecuteError, ExecuteRequest, Grant, MAX_REASON_LEN, ManualClock,
    Runtime, SessionEnd, Sessions, SystemClock,
};

use super::homes::home_with_secret;
use super::{CONFIG, broker, caller, req, upstream};

// ------------------------------------------------------------ who is asking

/// `explain_access` tells the agent who the broker thinks it is: the owner's
/// identity (trusted), a declared one (marked unverified, not trusted), or none.
#[test]
fn explain_names_the_caller_and_whether_the_owner_vouches_for_it() {
    let (_c, b) = broker(CONFIG);
    let cases = [
        (
            caller(Some("claude-desktop"), None),
            "agent: claude-desktop (trusted identity set by the owner)",
        ),
        (
            caller(None, Some("cursor")),
            "agent: cursor (unverified) (self-declared, not trusted)",
        ),
        (
            caller(None, None),
            "agent: unknown (unverified) (self-declared, not trusted)",
        ),
    ];
    for (who, first) in cases {
        let steps = b.explain(&who, "open", Some("GET"), Some("/x"));
        assert_eq!(steps[0], first, "{steps:?}");
    }
}

/// `explain_access` says when a person must approve: for a capability with
/// `approval`, and only then.
#[test]
fn explain_says_when_a_person_must_approve() {
    let (_c, b) = broker(CONFIG);
    let me = caller(Some("claude-desktop"), None);
    const STEP: &str =
        "approval: required (a person answers with `airlock approve ID` or `airlock deny ID`)";
    let steps = b.explain(&me, "approve", Some("GET"), Some("/x"));
    assert!(steps.iter().any(|s| s == STEP), "{steps:?}");
    let steps = b.explain(&me, "open", Some("GET"), Some("/x"));
    assert!(
        !steps.iter().any(|s| s.starts_with("approval")),
        "{steps:?}"
    );
}

/// A refusal reads "refused by the <check> check: …" — the check's name is what
/// agents and the audit log see.
#[test]
fn a_refusal_names_its_check() {
    let (_c, b) = broker(CONFIG);
    let me = caller(Some("claude-desktop"), None);
    let cases = [
        (req("nope", "GET", "/", None), "capability"),
        (req("tool", "GET", "/", None), "mode"),
        (req("ro", "TRACE", "/v1/x", Some("r")), "method"),
        (req("ro", "GET", "/v1/x", None), "reason"),
        (req("approve", "GET", "/x", None), "approval"),
    ];
    for (r, name) in cases {
        let refusal = b.authorize(&me, &r).unwrap_err();
        assert_eq!(refusal.check.as_str(), name);
        assert!(
            refusal
                .to_string()
                .starts_with(&format!("refused by the {name} check: ")),
            "{refusal}"
        );
    }
    let all = [
        (Check::Capability, "capability"),
        (Check::Agent, "agent"),
        (Check::Mode, "mode"),
        (Check::Session, "session"),
        (Check::Method, "method"),
        (Check::Path, "path"),
        (Check::Rule, "rule"),
        (Check::Reason, "reason"),
        (Check::Approval, "approval"),
        (Check::Rate, "rate"),
        (Check::Lock, "lock"),
        (Check::Program, "program"),
        (Check::Argument, "argument"),
        (Check::Cwd, "cwd"),
        (Check::Config, "config"),
    ];
    for (check, name) in all {
        assert_eq!(check.as_str(), name);
    }
}

/// An HTTP request to an exec capability is told to use the exec tool; an exec
/// request to an HTTP capability, the execute tool (each message names the
/// other tool, not its own).
#[test]
fn the_mode_refusal_names_the_tool_to_use() {
    let (_c, b) = broker(CONFIG);
    let me = caller(Some("claude-desktop"), None);
    let r = b
        .authorize(&me, &req("tool", "GET", "/", None))
        .unwrap_err();
    assert_eq!(r.check, Check::Mode);
    assert_eq!(
        r.message,
        "capability \"tool\" runs programs (mode exec); use the exec tool"
    );
    let r = b
        .authorize_exec(
            &me,
            &airlock_broker::ExecAgentRequest {
                capability: "open".into(),
                command: vec!["/bin/true".into()],
                cwd: None,
                reason: None,
                approved: false,
            },
        )
        .unwrap_err();
    assert_eq!(r.check, Check::Mode);
    assert_eq!(
        r.message,
        "capability \"open\" is an HTTP capability; use the execute tool"
    );
}

/// The reason may be exactly `MAX_REASON_LEN` characters (counted as characters,
/// not bytes); one more is refused.
#[test]
fn a_reason_of_exactly_the_limit_is_accepted() {
    let (_c, b) = broker(CONFIG);
    let me = caller(Some("claude-desktop"), None);
    let at_limit = "é".repeat(MAX_REASON_LEN);
    b.authorize(&me, &req("ro", "GET", "/v1/a", Some(&at_limit)))
        .unwrap();
    let short = "r".repeat(MAX_REASON_LEN - 1);
    b.authorize(&me, &req("ro", "GET", "/v1/b", Some(&short)))
        .unwrap();
    let over = "é".repeat(MAX_REASON_LEN + 1);
    let r = b
        .authorize(&me, &req("open", "GET", "/x", Some(&over)))
        .unwrap_err();
    assert_eq!(r.check, Check::Reason, "{r}");
    assert_eq!(
        r.message,
        format!("the reason is longer than {MAX_REASON_LEN} characters")
    );
}

/// An unverified caller's budget is its grant's: two connections have two
/// budgets, and renaming itself on one connection gives no fresh one.
#[test]
fn unverified_callers_have_one_rate_budget_per_connection() {
    let config = CONFIG.replace(
        "[capabilities.open]\nservice = \"stripe\"",
        "[capabilities.open]\nservice = \"stripe\"\nrate = \"1/min\"",
    );
    let (_c, b) = broker(&config);
    let one = caller(None, Some("a"));
    b.authorize(&one, &req("open", "GET", "/x", None)).unwrap();
    let renamed = Caller {
        declared: Some("b".into()),
        ..one.clone()
    };
    assert_eq!(
        b.authorize(&renamed, &req("open", "GET", "/x", None))
            .unwrap_err()
            .check,
        Check::Rate
    );
    let other = caller(None, Some("a"));
    b.authorize(&other, &req("open", "GET", "/x", None))
        .unwrap();
}

// ------------------------------------------------------------ sessions

/// `airlock sessions` shows each session: id, grant, agent, capability, time
/// left, and how it ended; `started` says when it began.
#[test]
fn sessions_are_listed_with_their_grant_agent_and_state() {
    let clock = ManualClock::new();
    let s = Sessions::new(clock.clone());
    let g = Grant::token("t1");
    assert_eq!(g.as_str(), "token-t1");
    clock.advance(Duration::from_secs(100));
    let (id, _) = s
        .start_or_get(&g, "claude", "c1", Duration::from_secs(60))
        .unwrap();
    assert!(
        id.as_str().starts_with("s-") && id.as_str().len() == 18,
        "{id}"
    );
    assert_eq!(id.to_string(), id.as_str());
    assert_eq!(s.started(&id), Some(Duration::from_secs(100)));
    clock.advance(Duration::from_secs(20));
    let listed = s.list();
    assert_eq!(listed.len(), 1, "{listed:?}");
    let info = &listed[0];
    assert_eq!(
        (
            &info.id,
            info.grant.as_str(),
            info.agent.as_str(),
            info.capability.as_str(),
            info.remaining,
            info.ended
        ),
        (
            &id,
            "token-t1",
            "claude",
            "c1",
            Some(Duration::from_secs(40)),
            None
        )
    );
    let (other, _) = s
        .start_or_get(&Grant::token("t2"), "claude", "c1", Duration::from_secs(5))
        .unwrap();
    assert_eq!(s.started(&other), Some(Duration::from_secs(120)));
    clock.advance(Duration::from_secs(5));
    s.revoke_where(|i| i.id == id);
    let mut ended: Vec<_> = s.list().into_iter().map(|i| (i.id, i.ended)).collect();
    ended.sort_by(|a, b| a.0.as_str().cmp(b.0.as_str()));
    let mut want = vec![
        (id.clone(), Some(SessionEnd::Revoked)),
        (other, Some(SessionEnd::Expired)),
    ];
    want.sort_by(|a, b| a.0.as_str().cmp(b.0.as_str()));
    assert_eq!(ended, want);
    // An id no session has.
    let foreign = Sessions::new(ManualClock::new())
        .start_or_get(&g, "x", "c1", Duration::from_secs(1))
        .unwrap()
        .0;
    assert_ne!(foreign, id);
    assert_eq!(s.started(&foreign), None);
}

/// Each connection is a new grant with an id of its own (`conn-` and 16 hex
/// digits), so sessions and unverified rate budgets never mix.
#[test]
fn every_connection_is_a_grant_of_its_own() {
    let (a, b) = (Grant::connection(), Grant::connection());
    assert_ne!(a, b);
    for g in [&a, &b] {
        let hex = g.as_str().strip_prefix("conn-").unwrap();
        assert!(
            hex.len() == 16 && hex.bytes().all(|c| c.is_ascii_hexdigit()),
            "{g:?}"
        );
    }
    let run = Grant::run();
    assert!(run.as_str().starts_with("run-") && run.as_str().len() == 20);
}

/// The broker's session list is the one `airlock sessions` reads: the session an
/// allowed request started, under the caller's name and grant.
#[test]
fn the_brokers_sessions_carry_the_callers_name_and_grant() {
    let (_c, b) = broker(CONFIG);
    let me = caller(None, Some("cursor"));
    let a = b.authorize(&me, &req("open", "GET", "/x", None)).unwrap();
    let listed = b.sessions().list();
    assert_eq!(listed.len(), 1, "{listed:?}");
    assert_eq!(listed[0].id, a.session);
    assert_eq!(listed[0].agent, "cursor (unverified)");
    assert_eq!(listed[0].grant, me.grant.as_str());
    assert_eq!(listed[0].capability, "open");
}

// ------------------------------------------------------------ the approval flow

/// An approver that answers `answer` and keeps each prompt it was shown.
struct Says {
    answer: Option<bool>,
    prompts: Arc<Mutex<Vec<String>>>,
}

impl Approver for Says {
    fn ask(&self, message: String) -> Pin<Box<dyn Future<Output = Option<bool>> + Send + '_>> {
        self.prompts.lock().unwrap().push(message);
        let answer = self.answer;
        Box::pin(async move { answer })
    }
}

type Seen = Arc<Mutex<Vec<String>>>;

/// A runtime on a home of its own (fields drop in order: the runtime, whose
/// writer flushes at drop, before the home's directory).
struct Served {
    rt: Runtime,
    seen: Seen,
    port: u16,
    audit: std::path::PathBuf,
    state: std::path::PathBuf,
    key: [u8; 32],
    _dir: tempfile::TempDir,
}

/// A runtime on a fresh home whose capability `ask` needs a person's approval
/// (held for at most `timeout`), and `open` does not; both reach a local
/// upstream.
fn served(timeout: &str, fsync: &str) -> Served {
    let (port, seen) = upstream();
    let dir = tempfile::tempdir().unwrap();
    let config = approval_config(port, "/base", timeout, fsync);
    let (home, vault) = home_with_secret(dir.path().join("home"), "sk_test_x", &config);
    let key = *vault.audit_key();
    let (audit, state) = (home.audit_dir(), home.state_dir());
    let rt = Runtime::new(home, vault, SystemClock::new()).unwrap();
    Served {
        rt,
        seen,
        port,
        audit,
        state,
        key,
        _dir: dir,
    }
}

fn approval_config(port: u16, base: &str, timeout: &str, fsync: &str) -> String {
    format!(
        "[server]\napproval_timeout = \"{timeout}\"\naudit_fsync = \"{fsync}\"\n\
         [services.svc]\nurl = \"http://127.0.0.1:{port}{base}\"\n\
         auth = {{ type = \"bearer\", secret = \"svc\" }}\n\
         [capabilities.ask]\nservice = \"svc\"\napproval = true\n\
         allow = [\"GET /v1/**\"]\ndeny = [\"GET /v1/admin/**\"]\n\
         [capabilities.open]\nservice = \"svc\"\nallow = [\"GET /v1/**\"]\n"
    )
}

fn get(capability: &str, path: &str) -> ExecuteRequest {
    ExecuteRequest {
        capability: capability.into(),
        method: "GET".into(),
        path: path.into(),
        query: Vec::new(),
        headers: Vec::new(),
        body: None,
        reason: Some("because".into()),
    }
}

fn with_approver(answer: Option<bool>) -> (Caller, Arc<Mutex<Vec<String>>>) {
    let prompts = Arc::new(Mutex::new(Vec::new()));
    let me = Caller {
        approver: Some(Arc::new(Says {
            answer,
            prompts: prompts.clone(),
        })),
        ..caller(Some("tester"), None)
    };
    (me, prompts)
}

fn all_records(s: &Served) -> Vec<Event> {
    records(&s.audit, Filter::all())
        .unwrap()
        .map(|r| r.unwrap().event)
        .collect()
}

fn refusal(r: Result<airlock_broker::ExecuteResponse, ExecuteError>) -> airlock_broker::Refusal {
    match r {
        Err(ExecuteError::Refused(r)) => r,
        other => panic!("expected a refusal, got {other:?}"),
    }
}

/// A request that needs approval is held and shown to the person; approved, it
/// is sent once, and the approval is on record under the caller's name.
#[tokio::test(flavor = "current_thread")]
async fn an_approved_request_is_sent_and_its_approval_is_on_record() {
    let s = served("10s", "always");
    let (me, prompts) = with_approver(Some(true));
    let r = s.rt.execute(&me, get("ask", "/v1/items")).await.unwrap();
    assert_eq!((r.status, r.body.as_str()), (200, "ok"));
    assert_eq!(s.seen.lock().unwrap().len(), 1);
    let prompts = prompts.lock().unwrap().clone();
    assert_eq!(prompts.len(), 1, "{prompts:?}");
    assert!(
        prompts[0].contains(&format!("url: http://127.0.0.1:{}/base/v1/items", s.port)),
        "{}",
        prompts[0]
    );
    let approvals: Vec<Event> = all_records(&s)
        .into_iter()
        .filter(|e| e.kind == Kind::Approve)
        .collect();
    assert_eq!(approvals.len(), 1, "{approvals:?}");
    let a = &approvals[0];
    assert_eq!(a.agent.as_deref(), Some("tester"));
    assert_eq!(a.agent_trusted, Some(true));
    assert_eq!(a.decision, Some(Decision::Allow));
    assert!(
        a.detail
            .as_deref()
            .unwrap()
            .contains(": approved by the owner; request sha256 "),
        "{a:?}"
    );
    assert!(s.rt.approvals().list().is_empty());
}

/// Denied by the person: refused by the approval check, nothing sent, the
/// denial on record.
#[tokio::test(flavor = "current_thread")]
async fn a_denied_request_is_not_sent() {
    let s = served("10s", "always");
    let (me, prompts) = with_approver(Some(false));
    let r = refusal(s.rt.execute(&me, get("ask", "/v1/items")).await);
    assert_eq!(r.check, Check::Approval, "{r}");
    assert!(
        r.message
            .starts_with("the owner denied this request (approval ap-"),
        "{r}"
    );
    assert_eq!(prompts.lock().unwrap().len(), 1);
    assert!(s.seen.lock().unwrap().is_empty());
    let kinds: Vec<Kind> = all_records(&s).into_iter().map(|e| e.kind).collect();
    assert!(kinds.contains(&Kind::Deny), "{kinds:?}");
    assert!(!kinds.contains(&Kind::Approve), "{kinds:?}");
}

/// Nobody answers: after `approval_timeout` the request is denied, nothing is
/// sent, and the timeout is on record.
#[tokio::test(flavor = "current_thread")]
async fn an_unanswered_request_times_out_unsent() {
    let s = served("1s", "always");
    let me = caller(Some("tester"), None);
    let r = refusal(s.rt.execute(&me, get("ask", "/v1/items")).await);
    assert_eq!(r.check, Check::Approval, "{r}");
    assert!(
        r.message.contains("timed out: nobody answered within 1s"),
        "{r}"
    );
    assert!(s.seen.lock().unwrap().is_empty());
    let kinds: Vec<Kind> = all_records(&s).into_iter().map(|e| e.kind).collect();
    assert!(kinds.contains(&Kind::ApprovalTimeout), "{kinds:?}");
}

/// A refusal by any other check is final: the person is not asked, nothing is
/// held, and the refusal names its own check (here a deny rule of a capability
/// that needs approval).
#[tokio::test(flavor = "current_thread")]
async fn a_request_refused_by_a_rule_is_never_held_for_approval() {
    let s = served("1s", "always");
    let (me, prompts) = with_approver(Some(true));
    let r = refusal(s.rt.execute(&me, get("ask", "/v1/admin/x")).await);
    assert_eq!(r.check, Check::Rule, "{r}");
    assert!(prompts.lock().unwrap().is_empty());
    assert!(s.seen.lock().unwrap().is_empty());
    let kinds: Vec<Kind> = all_records(&s).into_iter().map(|e| e.kind).collect();
    assert!(!kinds.contains(&Kind::Approve), "{kinds:?}");
    // And a capability without approval is never held either.
    let r = s.rt.execute(&me, get("open", "/v1/items")).await.unwrap();
    assert_eq!(r.status, 200);
    assert!(prompts.lock().unwrap().is_empty());
}

/// The request `rt` holds for approval, as `airlock approve` lists it; fails
/// when none is held within 5 s (a request that was never held must not hang
/// the test).
async fn held(rt: &Runtime) -> airlock_broker::approval::PendingRecord {
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    loop {
        if let Some(p) = rt.approvals().list().pop() {
            return p;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no request was held for approval"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Answered over the control path (`airlock approve ID`, bound to the hash the
/// person was shown): the held request is sent.
#[tokio::test(flavor = "current_thread")]
async fn a_request_approved_by_id_and_hash_is_sent() {
    let s = served("10s", "always");
    let me = caller(Some("tester"), None);
    let approve = async {
        let p = held(&s.rt).await;
        s.rt.approvals().answer(&p.id, true, Some(&p.hash)).unwrap();
    };
    let (r, ()) = tokio::join!(s.rt.execute(&me, get("ask", "/v1/items")), approve);
    assert_eq!(r.unwrap().status, 200);
    assert_eq!(s.seen.lock().unwrap().len(), 1);
}

/// Invariant 13: an approval applies to the request shown. When the
/// configuration changes while the request is held, so that what would now be
/// sent differs (another base path), nothing is sent.
#[tokio::test(flavor = "current_thread")]
async fn a_request_that_changed_while_held_is_not_sent() {
    let s = served("10s", "always");
    let me = caller(Some("tester"), None);
    let moved = approval_config(s.port, "/other", "10s", "always");
    let approve = async {
        let p = held(&s.rt).await;
        assert!(
            p.url.as_deref().unwrap().contains("/base/v1/items"),
            "{p:?}"
        );
        s.rt.broker().reload(
            airlock_config::Config::parse(std::path::Path::new("airlock.toml"), &moved).unwrap(),
        );
        s.rt.approvals().answer(&p.id, true, Some(&p.hash)).unwrap();
    };
    let (r, ()) = tokio::join!(s.rt.execute(&me, get("ask", "/v1/items")), approve);
    let r = refusal(r);
    assert_eq!(r.check, Check::Approval, "{r}");
    assert!(
        r.message
            .starts_with("the request to send is not the one that was approved"),
        "{r}"
    );
    assert!(s.seen.lock().unwrap().is_empty());
}

/// Every record of a request carries the caller's name and whether the owner
/// set it: a self-declared name is marked unverified and untrusted.
#[tokio::test(flavor = "current_thread")]
async fn records_say_whether_the_agents_identity_is_trusted() {
    let s = served("1s", "always");
    s.rt.execute(&caller(Some("tester"), None), get("open", "/v1/a"))
        .await
        .unwrap();
    s.rt.execute(&caller(None, Some("cursor")), get("open", "/v1/b"))
        .await
        .unwrap();
    let agents: Vec<(Option<String>, Option<bool>)> = all_records(&s)
        .into_iter()
        .filter(|e| e.kind == Kind::Request)
        .map(|e| (e.agent, e.agent_trusted))
        .collect();
    assert_eq!(
        agents,
        vec![
            (Some("tester".into()), Some(true)),
            (Some("cursor (unverified)".into()), Some(false)),
        ]
    );
}

// ------------------------------------------------------------ the audit writer

/// A record for the audit log (what `Runtime::audit` is given by the doors).
fn note(i: u32) -> Event {
    Event::new(Kind::TokenUse)
        .method("GET")
        .path(&format!("/note/{i}"))
        .decision(Decision::Deny)
        .status(401)
}

/// Under `audit_fsync = "batch"`, `close_audit` makes every record durable and
/// anchored at once (what `serve` does at exit), not at the next tick.
#[test]
fn close_audit_anchors_every_record_at_once() {
    let s = served("1s", "batch");
    let last = (0..3)
        .map(|i| s.rt.audit(&note(i)).unwrap())
        .last()
        .unwrap();
    s.rt.close_audit().unwrap();
    let report = verify(&s.audit, &s.state, &s.key).unwrap();
    assert_eq!(report.anchor_seq, Some(last), "{report}");
}

/// Dropping the runtime waits for the writer thread to write, sync and anchor
/// what is queued: every record is on record when the drop returns, even when
/// the process exits right after (as `serve` does at shutdown). The runtime
/// lives in a child process (this test binary, running
/// `mutants::child_drops_the_runtime_then_exits`) that exits at once after the
/// drop; a writer still flushing then would be cut off.
#[test]
fn records_are_anchored_when_the_process_exits_right_after_the_drop() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("home");
    let out = std::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "--ignored",
            "--exact",
            "mutants::child_drops_the_runtime_then_exits",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(DROP_CHILD, &root)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let last: u64 = stdout
        .lines()
        .find_map(|l| l.split_once("last seq ").map(|(_, n)| n))
        .unwrap_or_else(|| panic!("the child printed no seq: {stdout}"))
        .trim()
        .parse()
        .unwrap();
    let home = airlock_home::Home::at(root);
    let vault = airlock_vault::LockedVault::load(&home)
        .unwrap()
        .unlock_with_key_file(&home)
        .unwrap();
    let report = verify(&home.audit_dir(), &home.state_dir(), vault.audit_key()).unwrap();
    assert_eq!(report.anchor_seq, Some(last), "{report}");
}

/// Where [`child_drops_the_runtime_then_exits`] makes its home.
const DROP_CHILD: &str = "AIRLOCK_BROKER_TEST_DROP_CHILD";

/// The body of the child process of
/// `records_are_anchored_when_the_process_exits_right_after_the_drop`.
#[test]
#[ignore = "run by records_are_anchored_when_the_process_exits_right_after_the_drop"]
fn child_drops_the_runtime_then_exits() {
    let root = std::env::var_os(DROP_CHILD).unwrap_or_else(|| {
        panic!(
            "child_drops_the_runtime_then_exits is the child process of \
             records_are_anchored_when_the_process_exits_right_after_the_drop; it needs {DROP_CHILD}"
        )
    });
    let config = approval_config(1, "/base", "1s", "batch");
    let (home, vault) = home_with_secret(root.into(), "sk_test_x", &config);
    let rt = Runtime::new(home, vault, SystemClock::new()).unwrap();
    let last = (0..3).map(|i| rt.audit(&note(i)).unwrap()).last().unwrap();
    #[allow(clippy::print_stdout)]
    {
        println!("last seq {last}");
    }
    // Nothing between the drop and the exit.
    drop(rt);
    std::process::exit(0);
}

/// Batched records are made durable and anchored by the writer's own timer once
/// due, with no flush call and no further traffic.
#[test]
fn batched_records_are_anchored_by_the_writers_tick() {
    let s = served("1s", "batch");
    // The first record starts a file, which is synced and anchored at once;
    // the second waits for its batch.
    s.rt.audit(&note(0)).unwrap();
    let last = s.rt.audit(&note(1)).unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    loop {
        let report = verify(&s.audit, &s.state, &s.key).unwrap();
        if report.anchor_seq == Some(last) {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "not anchored after 5 s: {report}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

// ------------------------------------------------------------ exec specifics

/// A NUL byte in the working directory is the cwd check's refusal; one in the
/// command is the argument check's.
#[test]
fn a_nul_byte_is_refused_by_the_check_it_appears_in() {
    let dir = tempfile::tempdir().unwrap();
    let (_c, b) = broker(&super::exec_config(dir.path()));
    let me = caller(Some("claude-desktop"), None);
    let cwd = format!("{}/a\0b", dir.path().display());
    let r = b
        .authorize_exec(
            &me,
            &super::exec_req("tools", &["printenv"], Some(&cwd), Some("r")),
        )
        .unwrap_err();
    assert_eq!(r.check, Check::Cwd, "{r}");
    let r = b
        .authorize_exec(
            &me,
            &super::exec_req("tools", &["printenv", "A\0B"], None, Some("r")),
        )
        .unwrap_err();
    assert_eq!(r.check, Check::Argument, "{r}");
}

/// The owner is warned at load about an exec capability that allows a shell
/// (it can run anything); a capability without one gives no warning.
#[test]
fn an_allowed_shell_is_a_warning_for_the_owner() {
    let dir = tempfile::tempdir().unwrap();
    let (_c, b) = broker(&super::exec_config(dir.path()));
    assert_eq!(b.exec_policies().warnings().count(), 0);
    let shell = super::exec_config(dir.path()).replace(
        "commands = [\"/usr/bin/printenv\", \"git\"]",
        "commands = [\"/usr/bin/printenv\", \"sh\"]",
    );
    let (_c, b) = broker(&shell);
    let policies = b.exec_policies();
    let warnings: Vec<&str> = policies.warnings().collect();
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    assert!(
        warnings[0].starts_with("capability \"tools\": `sh` runs whatever it is told to"),
        "{warnings:?}"
    );
}

/// A caller's `Debug` shows that an approver is attached (never what it holds).
#[test]
fn a_callers_debug_shows_its_approver() {
    let (me, _) = with_approver(Some(true));
    let shown = format!("{me:?}");
    assert!(shown.contains("approver: Some(Approver)"), "{shown}");
}

/// An incident's locks (`airlock incident`, through `state/revocations.json`
/// or a team's change log) refuse the locked capability, and any capability
/// for the locked agent, whether its identity is trusted or declared, until
/// they are released; the rest is served.
#[test]
fn incident_locks_refuse_the_locked_capability_and_agent_until_released() {
    let (_c, b) = broker(CONFIG);
    let desktop = caller(Some("claude-desktop"), None);
    let ro = req("ro", "GET", "/v1/x", Some("r"));
    let at: jiff::Timestamp = "2026-12-07T12:00:00Z".parse().unwrap();
    let mut locks = airlock_broker::state::IncidentLocks::default();
    locks.capabilities.insert("ro".into(), at);
    locks.agents.insert("ci".into(), at);
    b.set_incident_locks(locks);

    let r = b.authorize(&desktop, &ro).unwrap_err();
    assert_eq!(r.check, Check::Lock);
    assert!(
        r.message.contains(
            "capability \"ro\" was locked by its owner's incident response at 2026-12-07T12:00:00Z"
        ),
        "{}",
        r.message
    );
    for ci in [caller(Some("ci"), None), caller(None, Some("ci"))] {
        let r = b
            .authorize(&ci, &req("open", "GET", "/x", None))
            .unwrap_err();
        assert_eq!(r.check, Check::Lock);
        assert!(
            r.message.contains("agent \"ci\" was locked"),
            "{}",
            r.message
        );
    }
    // Another capability for another agent is served.
    let bot = caller(Some("bot"), None);
    assert!(b.authorize(&bot, &req("open", "GET", "/x", None)).is_ok());

    b.set_incident_locks(airlock_broker::state::IncidentLocks::default());
    assert!(b.authorize(&desktop, &ro).is_ok());
    assert!(
        b.authorize(&caller(Some("ci"), None), &req("open", "GET", "/x", None))
            .is_ok()
    );
}

/// While a capability learns, what its deny rules match is still refused;
/// the rest is allowed and named as learned.
#[test]
fn a_learning_capability_still_refuses_what_its_deny_rules_match() {
    let (_c, b) = broker(
        r#"
[services.stripe]
url = "https://api.stripe.com"
auth = { type = "bearer", secret = "stripe" }

[capabilities.learn]
service = "stripe"
deny = ["* /v1/admin/**"]
learn_until = "2999-01-01T00:00:00Z"
"#,
    );
    let me = caller(Some("bot"), None);
    let r = b
        .authorize(&me, &req("learn", "DELETE", "/v1/admin/users", None))
        .unwrap_err();
    assert_eq!(r.check, Check::Rule);
    let ok = b
        .authorize(&me, &req("learn", "GET", "/v1/customers", None))
        .unwrap();
    assert!(
        ok.rule.as_deref().is_some_and(|r| r.contains("until")),
        "{:?}",
        ok.rule
    );
}
