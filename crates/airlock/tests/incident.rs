//! `airlock incident` through the binary: a dry run changes nothing; a real run
//! revokes the live session of a running gateway, locks the capability (refused
//! until `airlock unlock`), rotates the AWS key pair at a mock IAM that checks
//! the request is SigV4-signed with the old key, stores the new pair (the
//! upstream then sees it), and lists the blast radius with writes first.
//! Rotation failures keep the old value; bad input is one line, exit 2.
#![allow(clippy::unwrap_used)]

use std::io::{BufRead, BufReader, Read as _, Write as _};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::{Arc, Mutex};

use serde_json::Value;

mod common;
use common::{Door, exit_2, field_strs, find_named, gateway_call, ok, serve_door};

const OLD_ID: &str = "AKIAOLDKEY0000000001";
const OLD_SECRET: &str = "oldSecretKey/abcdefghijklmnopqrstuvwxyz01";
const NEW_ID: &str = "AKIANEWKEY0000000002";
const NEW_SECRET: &str = "newSecretKey/ZYXWVUTSRQPONMLKJIHGFEDCBA99";
const OTHER: &str = "sk_live_otherServiceKey0123456789";

fn airlock_env(home: &Path, args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_airlock"));
    cmd.args(args)
        .env("AIRLOCK_HOME", home)
        .env_remove("AIRLOCK_INCIDENT_TEST_ORIGIN")
        .stdin(Stdio::null());
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().unwrap()
}

/// One HTTP/1.1 request read off `stream`: request line, lower-cased headers, body.
fn read_request(stream: &TcpStream) -> (String, Vec<(String, String)>, Vec<u8>) {
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut line = String::new();
    reader.read_line(&mut line).unwrap();
    let mut headers = Vec::new();
    loop {
        let mut l = String::new();
        if reader.read_line(&mut l).unwrap_or(0) == 0 || l == "\r\n" {
            break;
        }
        if let Some((k, v)) = l.trim_end().split_once(':') {
            headers.push((k.trim().to_ascii_lowercase(), v.trim().to_string()));
        }
    }
    let len = headers
        .iter()
        .find(|(k, _)| k == "content-length")
        .map_or(0, |(_, v)| v.parse().unwrap());
    let mut body = vec![0; len];
    reader.read_exact(&mut body).unwrap();
    (line.trim().to_string(), headers, body)
}

fn answer(mut stream: TcpStream, status: u16, body: &str) {
    let _ = write!(
        stream,
        "HTTP/1.1 {status} X\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
}

/// The API behind the gateway: answers 200 and keeps each request's
/// `Authorization` (test keys only).
fn upstream() -> (u16, Arc<Mutex<Vec<String>>>) {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = Arc::clone(&seen);
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let (_, headers, _) = read_request(&stream);
            let auth = headers
                .iter()
                .find(|(k, _)| k == "authorization")
                .map(|(_, v)| v.clone())
                .unwrap_or_default();
            log.lock().unwrap().push(auth);
            answer(stream, 200, "{}");
        }
    });
    (port, seen)
}

/// What the mock IAM saw: each action, and whether its SigV4 signature was
/// made with the old key pair.
#[derive(Default)]
struct Iam {
    calls: Vec<(String, bool, String)>,
    fail_create: bool,
}

/// The signature `req` must carry if signed with (`id`, `secret`) at its own
/// `x-amz-date`: recomputed with the SigV4 signer over exactly what arrived.
fn expected_authorization(
    port: u16,
    headers: &[(String, String)],
    body: &[u8],
    id: &str,
    secret: &str,
) -> Option<String> {
    let date = &headers.iter().find(|(k, _)| k == "x-amz-date")?.1;
    let at = jiff::civil::DateTime::strptime("%Y%m%dT%H%M%SZ", date)
        .ok()?
        .to_zoned(jiff::tz::TimeZone::UTC)
        .ok()?
        .timestamp()
        .as_second();
    let auth = &headers.iter().find(|(k, _)| k == "authorization")?.1;
    let signed: Vec<&str> = auth
        .split("SignedHeaders=")
        .nth(1)?
        .split(',')
        .next()?
        .split(';')
        .collect();
    let mut map = http::HeaderMap::new();
    for (k, v) in headers {
        if signed.contains(&k.as_str()) && k != "host" && k != "x-amz-date" {
            map.insert(
                http::HeaderName::from_bytes(k.as_bytes()).unwrap(),
                http::HeaderValue::from_str(v).unwrap(),
            );
        }
    }
    let mut req = airlock_inject::OutgoingRequest::new(
        http::Method::POST,
        format!("http://127.0.0.1:{port}"),
        "/",
        None,
        map,
        bytes::Bytes::copy_from_slice(body),
    );
    let named = |n: &str, v: &str| {
        airlock_inject::NamedSecret::new(n, secrecy::SecretSlice::from(v.as_bytes().to_vec()))
    };
    airlock_inject::SigV4::new(
        "us-east-1",
        "iam",
        named("id", id),
        named("secret", secret),
        None,
        Arc::new(airlock_inject::ManualClock::at_unix(
            u64::try_from(at).ok()?,
        )),
    )
    .ok()?
    .sign(&mut req)
    .ok()?;
    Some(req.headers["authorization"].to_str().ok()?.to_string())
}

fn mock_iam(state: Arc<Mutex<Iam>>) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let (line, headers, body) = read_request(&stream);
            let form = String::from_utf8(body.clone()).unwrap();
            let auth = headers
                .iter()
                .find(|(k, _)| k == "authorization")
                .map(|(_, v)| v.clone())
                .unwrap_or_default();
            let by_old = line.starts_with("POST / ")
                && expected_authorization(port, &headers, &body, OLD_ID, OLD_SECRET)
                    .is_some_and(|want| want == auth);
            let action = form
                .split('&')
                .find_map(|p| p.strip_prefix("Action="))
                .unwrap_or("-")
                .to_string();
            let mut s = state.lock().unwrap();
            s.calls.push((action.clone(), by_old, form.clone()));
            if !by_old {
                answer(
                    stream,
                    403,
                    "<Error><Code>SignatureDoesNotMatch</Code></Error>",
                );
            } else if action == "CreateAccessKey" && !s.fail_create {
                answer(
                    stream,
                    200,
                    &format!(
                        "<CreateAccessKeyResponse><CreateAccessKeyResult><AccessKey><UserName>bot</UserName><AccessKeyId>{NEW_ID}</AccessKeyId><Status>Active</Status><SecretAccessKey>{NEW_SECRET}</SecretAccessKey></AccessKey></CreateAccessKeyResult></CreateAccessKeyResponse>"
                    ),
                );
            } else if action == "UpdateAccessKey" {
                answer(stream, 200, "<UpdateAccessKeyResponse/>");
            } else {
                answer(stream, 500, "<Error><Code>ServiceFailure</Code></Error>");
            }
        }
    });
    port
}

/// One request through the gateway; its status code.
fn through(gw: &Door, token: &str, method: &str, path: &str) -> u16 {
    gateway_call(gw.port, token, method, path).0
}

/// A home with service `aws` (SigV4, key pair `aws-id` + `aws-secret`, capability
/// `s3`) and service `other` (bearer, capability `other`), both at `upstream`.
fn setup(home: &Path, upstream: u16) {
    let env = [("ID", OLD_ID), ("SK", OLD_SECRET), ("OT", OTHER)];
    for (name, var) in [("aws-id", "ID"), ("aws-secret", "SK"), ("other-key", "OT")] {
        ok(airlock_env(
            home,
            &["secret", "set", name, "--from-env", var],
            &env,
        ));
    }
    let config = home.join("airlock.toml");
    let mut text = std::fs::read_to_string(&config).unwrap();
    text.push_str(&format!(
        r#"
[services.aws]
url = "http://127.0.0.1:{upstream}"
auth = {{ type = "aws-sigv4", region = "us-east-1", aws_service = "execute-api", access_key_id = "aws-id", secret_access_key = "aws-secret" }}

[services.other]
url = "http://127.0.0.1:{upstream}"
auth = {{ type = "bearer", secret = "other-key" }}

[capabilities.s3]
service = "aws"
allow = ["GET /**", "POST /**"]

[capabilities.other]
service = "other"
allow = ["GET /**"]
"#
    ));
    std::fs::write(&config, text).unwrap();
}

/// A temporary home `setup` against a fresh [`upstream`]: the directory, the
/// home, and the `Authorization` of each request the upstream got.
fn upstream_home() -> (tempfile::TempDir, PathBuf, Arc<Mutex<Vec<String>>>) {
    let (up, seen) = upstream();
    let (dir, home) = home_at(up);
    (dir, home, seen)
}

/// A temporary home `setup` with both services at `port`.
fn home_at(port: u16) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("home");
    setup(&home, port);
    (dir, home)
}

fn issue(home: &Path, agent: &str, cap: &str) -> String {
    ok(airlock_env(
        home,
        &["token", "issue", "--agent", agent, "--cap", cap],
        &[],
    ))
    .trim()
    .to_string()
}

/// The state an incident may change, as bytes: revocations, tokens, vault.
fn snapshot(home: &Path) -> Vec<Option<Vec<u8>>> {
    ["state/revocations.json", "state/tokens.json", "vault.json"]
        .iter()
        .map(|f| std::fs::read(home.join(f)).ok())
        .collect()
}

fn audit_text(home: &Path) -> String {
    let mut all = String::new();
    for e in std::fs::read_dir(home.join("audit")).unwrap().flatten() {
        if e.path().extension().is_some_and(|x| x == "jsonl") {
            all.push_str(&std::fs::read_to_string(e.path()).unwrap());
        }
    }
    all
}

#[test]
fn an_incident_revokes_locks_rotates_and_lists_the_blast_radius() {
    let (_dir, home, seen) = upstream_home();
    let old_cred = format!("Credential={OLD_ID}/");
    let iam = Arc::new(Mutex::new(Iam::default()));
    let iam_port = mock_iam(iam.clone());
    let origin = format!("http://127.0.0.1:{iam_port}");
    let test_env = [("AIRLOCK_INCIDENT_TEST_ORIGIN", origin.as_str())];
    let bot = issue(&home, "bot", "s3");
    let bystander = issue(&home, "helper", "other");
    let gw = serve_door(&home, "--gateway");
    assert_eq!(through(&gw, &bot, "POST", "/s3/buckets/b1/objects"), 200);
    assert_eq!(through(&gw, &bot, "GET", "/s3/buckets/b1"), 200);
    assert_eq!(through(&gw, &bot, "GET", "/s3/buckets/b1"), 200);
    assert_eq!(through(&gw, &bystander, "GET", "/other/x"), 200);
    assert!(
        seen.lock().unwrap()[..3]
            .iter()
            .all(|a| a.contains(&old_cred))
    );

    // Dry run: the whole plan, nothing changed, the provider not asked.
    let before = snapshot(&home);
    let audit_before = audit_text(&home);
    let plan: Value = serde_json::from_str(&ok(airlock_env(
        &home,
        &["incident", "aws-secret", "--dry-run", "--json"],
        &test_env,
    )))
    .unwrap();
    assert_eq!(snapshot(&home), before, "a dry run changed state");
    assert_eq!(
        audit_text(&home),
        audit_before,
        "a dry run wrote audit records"
    );
    assert!(iam.lock().unwrap().calls.is_empty(), "a dry run asked IAM");
    assert_eq!(plan["dry_run"], true);
    assert_eq!(plan["capabilities"], serde_json::json!(["s3"]));
    assert_eq!(plan["lock"]["capabilities"], serde_json::json!(["s3"]));
    let tokens = field_strs(&plan["tokens"], "agent");
    assert_eq!(tokens, ["bot"], "{plan}");
    assert_eq!(plan["rotations"][0]["provider"], "AWS IAM");
    assert_eq!(plan["rotations"][0]["automatic"], true);
    assert_eq!(
        plan["rotations"][0]["secrets"],
        serde_json::json!(["aws-id", "aws-secret"])
    );
    assert_eq!(plan["live_sessions"].as_array().unwrap().len(), 1);
    assert!(plan["done"].is_null());
    // The blast radius: the write first, then the read twice; nothing of `other`.
    let req = plan["requests"].as_array().unwrap();
    assert_eq!(req.len(), 2, "{plan}");
    assert_eq!(
        (req[0]["method"].as_str(), req[0]["path"].as_str()),
        (Some("POST"), Some("/buckets/b1/objects"))
    );
    assert_eq!(req[0]["state_changing"], true);
    assert_eq!(req[0]["statuses"], serde_json::json!([200]));
    assert_eq!(
        (req[1]["method"].as_str(), req[1]["count"].as_u64()),
        (Some("GET"), Some(2))
    );
    assert_eq!(req[1]["agent"], "bot");
    // The table for people says the same, writes first.
    let table = ok(airlock_env(
        &home,
        &["incident", "aws-secret", "--dry-run"],
        &test_env,
    ));
    let write_at = table.find("WRITE").unwrap();
    let read_at = table.find("read").unwrap();
    assert!(write_at < read_at, "{table}");
    assert!(table.contains("dry run"), "{table}");
    assert_eq!(snapshot(&home), before);

    // The real run.
    let done: Value = serde_json::from_str(&ok(airlock_env(
        &home,
        &["incident", "aws-secret", "--json"],
        &test_env,
    )))
    .unwrap();
    assert_eq!(done["done"]["sessions_ended"], 1, "{done}");
    assert_eq!(done["done"]["tokens_revoked"], 1, "{done}");
    assert_eq!(done["done"]["servers_notified"], 1, "{done}");
    assert_eq!(done["rotations"][0]["rotated"], true, "{done}");
    // IAM: a new key, then the old one deactivated, both signed with the old key.
    let calls = iam.lock().unwrap().calls.clone();
    let actions: Vec<(&str, bool)> = calls.iter().map(|(a, o, _)| (a.as_str(), *o)).collect();
    assert_eq!(
        actions,
        [("CreateAccessKey", true), ("UpdateAccessKey", true)],
        "{calls:?}"
    );
    assert!(
        calls[1].2.contains(&format!("AccessKeyId={OLD_ID}"))
            && calls[1].2.contains("Status=Inactive")
    );
    // Nothing printed holds a key.
    let printed = done.to_string();
    for v in [OLD_ID, OLD_SECRET, NEW_ID, NEW_SECRET] {
        assert!(!printed.contains(v), "printed a key: {printed}");
    }
    // The running gateway refuses the revoked token at its next request; the
    // bystander's token on another service still works.
    assert_eq!(through(&gw, &bot, "GET", "/s3/buckets/b1"), 401);
    assert_eq!(through(&gw, &bystander, "GET", "/other/x"), 200);
    // A new token for the locked capability is refused too.
    let fresh = issue(&home, "bot", "s3");
    assert_eq!(through(&gw, &fresh, "GET", "/s3/buckets/b1"), 403);
    // The vault holds the new pair (version 2), never printed.
    let listed: Value =
        serde_json::from_str(&ok(airlock_env(&home, &["secret", "list", "--json"], &[]))).unwrap();
    for name in ["aws-id", "aws-secret"] {
        let s = find_named(&listed, "name", name);
        assert_eq!(s["version"], 2, "{listed}");
    }
    // Every step is audited with the owner as actor.
    let audit = audit_text(&home);
    for kind in ["\"incident\"", "\"lock\"", "\"revoke\"", "\"rotate\""] {
        assert!(
            audit
                .lines()
                .any(|l| l.contains(&format!("\"kind\":{kind}"))
                    && l.contains("\"agent\":\"owner\"")),
            "no owner {kind} record"
        );
    }
    assert!(!audit.contains(NEW_SECRET) && !audit.contains(OLD_SECRET));

    // `airlock unlock` releases the lock: the fresh token works again, with
    // the new key.
    let unlocked = ok(airlock_env(&home, &["unlock"], &[]));
    assert!(
        unlocked.contains("released the incident lock on capability \"s3\""),
        "{unlocked}"
    );
    assert_eq!(through(&gw, &fresh, "GET", "/s3/buckets/b1"), 200);
    let last = seen.lock().unwrap().last().unwrap().clone();
    assert!(last.contains(&format!("Credential={NEW_ID}/")), "{last}");
    assert_eq!(
        through(&gw, &bot, "GET", "/s3/buckets/b1"),
        401,
        "a revoked token stays revoked"
    );
}

#[test]
fn a_failed_rotation_keeps_the_old_value_and_says_so() {
    let (_dir, home, _) = upstream_home();
    let iam = Arc::new(Mutex::new(Iam {
        fail_create: true,
        ..Iam::default()
    }));
    let iam_port = mock_iam(iam.clone());
    let vault_before = std::fs::read(home.join("vault.json")).unwrap();
    let origin = format!("http://127.0.0.1:{iam_port}");
    let out = ok(airlock_env(
        &home,
        &["incident", "aws-id"],
        &[("AIRLOCK_INCIDENT_TEST_ORIGIN", &origin)],
    ));
    assert!(out.contains("NOT rotated"), "{out}");
    assert!(out.contains("HTTP 500"), "{out}");
    assert_eq!(
        std::fs::read(home.join("vault.json")).unwrap(),
        vault_before
    );
    assert_eq!(iam.lock().unwrap().calls.len(), 1);
    // The revocation and the lock still happened.
    let revs = std::fs::read_to_string(home.join("state/revocations.json")).unwrap();
    assert!(revs.contains("\"s3\""), "{revs}");

    // A test origin that is not loopback http:// is refused: nothing is sent.
    ok(airlock_env(&home, &["unlock"], &[]));
    let out = ok(airlock_env(
        &home,
        &["incident", "aws-id"],
        &[("AIRLOCK_INCIDENT_TEST_ORIGIN", "https://iam.example.com")],
    ));
    assert!(out.contains("for tests only"), "{out}");
    assert_eq!(
        std::fs::read(home.join("vault.json")).unwrap(),
        vault_before
    );
    assert_eq!(iam.lock().unwrap().calls.len(), 1);
}

#[test]
fn bad_input_is_one_line_and_exit_2() {
    let (_dir, home) = home_at(9);
    let before = snapshot(&home);
    for (args, says) in [
        (vec!["incident"], "required"),
        (vec!["incident", "nope"], "no secret \"nope\""),
        (
            vec!["incident", "aws-id", "--agent", "bot"],
            "cannot be used with",
        ),
        (vec!["incident", "--token", "zz"], "invalid --token"),
        (
            vec!["incident", "--token", "0123456789ab"],
            "no agent token 0123456789ab",
        ),
        (
            vec!["incident", "--agent", "bad name"],
            "invalid agent name",
        ),
        (
            vec!["incident", "aws-id", "--since", "soon"],
            "invalid --since",
        ),
        (
            vec!["incident", "aws-id", "--since", "2999-01-01T00:00:00Z"],
            "in the future",
        ),
    ] {
        let out = airlock_env(&home, &args, &[]);
        let err = exit_2(&args, &out, says);
        // clap's own usage errors keep clap's format (as every command's do);
        // airlock's are one line.
        let ours = !err.contains("For more information, try '--help'");
        assert!(
            !ours || err.trim().lines().count() == 1,
            "{args:?}: not one line: {err}"
        );
    }
    // A whole leaked token names its id without being echoed.
    let leaked = "airlock_0123456789ab_c2VjcmV0LXBhcnQtbmV2ZXItZWNob2Vk";
    let out = airlock_env(&home, &["incident", "--token", leaked], &[]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("no agent token 0123456789ab") && !err.contains("c2Vjcm"),
        "{err}"
    );
    assert_eq!(snapshot(&home), before);
}

#[test]
fn an_agent_incident_locks_the_agent_until_unlock() {
    let (_dir, home, _) = upstream_home();
    let bot = issue(&home, "bot", "other");
    let helper = issue(&home, "helper", "other");
    let gw = serve_door(&home, "--gateway");
    assert_eq!(through(&gw, &bot, "GET", "/other/a"), 200);
    let out: Value = serde_json::from_str(&ok(airlock_env(
        &home,
        &["incident", "--agent", "bot", "--json"],
        &[],
    )))
    .unwrap();
    assert_eq!(out["lock"]["agents"], serde_json::json!(["bot"]));
    assert_eq!(
        out["rotations"],
        serde_json::json!([]),
        "the agent never held a key"
    );
    assert_eq!(out["requests"][0]["path"], "/a");
    assert_eq!(through(&gw, &bot, "GET", "/other/a"), 401);
    let again = issue(&home, "bot", "other");
    assert_eq!(through(&gw, &again, "GET", "/other/a"), 403);
    assert_eq!(through(&gw, &helper, "GET", "/other/a"), 200);
    ok(airlock_env(&home, &["unlock"], &[]));
    assert_eq!(through(&gw, &again, "GET", "/other/a"), 200);
}

/// A JSON provider mock: every request must carry `Authorization: Bearer
/// admin` (else 401); `route` answers the rest. Keeps (method, path, body).
type Calls = Arc<Mutex<Vec<(String, String, String)>>>;

fn json_mock(
    admin: &'static str,
    route: impl Fn(&str, &str, &str) -> (u16, String) + Send + 'static,
) -> (u16, Calls) {
    let calls: Calls = Arc::default();
    let kept = calls.clone();
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let (line, headers, body) = read_request(&stream);
            let mut parts = line.split(' ');
            let (method, path) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
            let body = String::from_utf8(body).unwrap();
            kept.lock()
                .unwrap()
                .push((method.to_string(), path.to_string(), body.clone()));
            let authed = headers
                .iter()
                .any(|(k, v)| k == "authorization" && v == &format!("Bearer {admin}"));
            let (status, text) = if authed {
                route(method, path, &body)
            } else {
                (401, "{}".to_string())
            };
            answer(stream, status, &text);
        }
    });
    (port, calls)
}

/// A home whose service `api` (bearer, capability `api`) uses `key`, with the
/// provider's management key stored as `admin_name`.
fn bearer_home(home: &Path, upstream: u16, key: &str, admin_name: &str, admin: &str) {
    let env = [("K", key), ("A", admin)];
    ok(airlock_env(
        home,
        &["secret", "set", "api-key", "--from-env", "K"],
        &env,
    ));
    ok(airlock_env(
        home,
        &["secret", "set", admin_name, "--from-env", "A"],
        &env,
    ));
    let config = home.join("airlock.toml");
    let mut text = std::fs::read_to_string(&config).unwrap();
    text.push_str(&format!(
        "\n[services.api]\nurl = \"http://127.0.0.1:{upstream}\"\nauth = {{ type = \"bearer\", secret = \"api-key\" }}\n\n[capabilities.api]\nservice = \"api\"\nallow = [\"GET /**\"]\n"
    ));
    std::fs::write(&config, text).unwrap();
}

/// In a temporary [`bearer_home`] (service at `upstream`, key `key`, the
/// management key `admin` as `admin_name`): runs the incident for `api-key`
/// against the mock at `port`, checks that `provider` rotated it, unlocks, and
/// makes one request through a gateway (the upstream keeps its credential).
/// The incident's JSON.
fn rotate_and_use(
    provider: &str,
    upstream: u16,
    key: &str,
    admin_name: &str,
    admin: &str,
    port: u16,
) -> Value {
    let dir = tempfile::tempdir().unwrap();
    let home = &dir.path().join("home");
    bearer_home(home, upstream, key, admin_name, admin);
    let origin = format!("http://127.0.0.1:{port}");
    let done: Value = serde_json::from_str(&ok(airlock_env(
        home,
        &["incident", "api-key", "--json"],
        &[("AIRLOCK_INCIDENT_TEST_ORIGIN", &origin)],
    )))
    .unwrap();
    assert_eq!(done["rotations"][0]["provider"], provider);
    assert_eq!(done["rotations"][0]["rotated"], true, "{done}");
    ok(airlock_env(home, &["unlock"], &[]));
    let token = issue(home, "bot", "api");
    let gw = serve_door(home, "--gateway");
    assert_eq!(through(&gw, &token, "GET", "/api/v1/x"), 200);
    done
}

#[test]
fn stripe_restricted_keys_roll_through_the_api_keys_api() {
    const LEAKED: &str = "rk_test_51LeakedKeyAbcdefghijklmnopUVWX";
    const NEW: &str = "rk_test_51FreshKeyZyxwvutsrqponmlkjiQRST";
    const ADMIN: &str = "sk_test_managementKey0000000000000000";
    let (up, seen) = upstream();
    let (port, calls) = json_mock(ADMIN, |method, path, body| {
        match (method, path) {
        ("GET", "/v2/iam/api_keys?limit=100") => (
            200,
            r#"{"data":[{"id":"ak_other","secret_key":{"secret_token_redacted":"rk_test_...ZZZZ"}},
                        {"id":"ak_leaked","secret_key":{"secret_token_redacted":"rk_test_...UVWX"}}]}"#
                .into(),
        ),
        ("POST", "/v2/iam/api_keys/ak_leaked/rotate")
            if body.contains("\"expire_current_key_in_minutes\":10") =>
        {
            (200, format!(r#"{{"id":"ak_new","secret_key":{{"token":"{NEW}"}}}}"#))
        }
        ("POST", "/v2/iam/api_keys/ak_leaked/expire") => (200, r#"{"id":"ak_leaked"}"#.into()),
        _ => (404, "{}".into()),
    }
    });
    let done = rotate_and_use("Stripe", up, LEAKED, "stripe-admin", ADMIN, port);
    let paths: Vec<String> = calls
        .lock()
        .unwrap()
        .iter()
        .map(|c| format!("{} {}", c.0, c.1))
        .collect();
    assert_eq!(
        paths,
        [
            "GET /v2/iam/api_keys?limit=100",
            "POST /v2/iam/api_keys/ak_leaked/rotate",
            "POST /v2/iam/api_keys/ak_leaked/expire"
        ]
    );
    assert_eq!(
        seen.lock().unwrap().last().unwrap(),
        &format!("Bearer {NEW}")
    );
    let printed = done.to_string();
    assert!(!printed.contains(NEW) && !printed.contains(LEAKED) && !printed.contains(ADMIN));
}

#[test]
fn openai_service_account_keys_are_replaced_then_deleted() {
    const LEAKED: &str = "sk-svcacct-LeakedKeyAbcdefghijklmnopqrstuvwxyz0123";
    const NEW: &str = "sk-svcacct-FreshKeyZyxwvutsrqponmlkjihgfedcba9876";
    const ADMIN: &str = "sk-admin-organizationAdminKey000000000000";
    let (up, seen) = upstream();
    let (port, calls) = json_mock(ADMIN, |method, path, _| {
        match (method, path) {
        ("GET", "/v1/organization/projects?limit=100") => {
            (200, r#"{"data":[{"id":"proj_a"},{"id":"proj_b"}]}"#.into())
        }
        ("GET", "/v1/organization/projects/proj_a/api_keys?limit=100") => (
            200,
            r#"{"data":[{"id":"key_x","redacted_value":"sk-svcacct-Le...9999","owner":{"type":"user"}}]}"#
                .into(),
        ),
        ("GET", "/v1/organization/projects/proj_b/api_keys?limit=100") => (
            200,
            r#"{"data":[{"id":"key_leaked","redacted_value":"sk-svcacct-Le...0123",
                         "owner":{"type":"service_account","service_account":{"id":"svc_acct_1"}}}]}"#
                .into(),
        ),
        ("POST", "/v1/organization/projects/proj_b/service_accounts/svc_acct_1/api_keys") => {
            (200, format!(r#"{{"id":"key_new","value":"{NEW}"}}"#))
        }
        ("DELETE", "/v1/organization/projects/proj_b/api_keys/key_leaked") => {
            (200, r#"{"deleted":true}"#.into())
        }
        _ => (404, "{}".into()),
    }
    });
    rotate_and_use("OpenAI", up, LEAKED, "openai-admin", ADMIN, port);
    let calls = calls.lock().unwrap().clone();
    let last: Vec<&str> = calls.iter().map(|c| c.0.as_str()).collect();
    assert_eq!(last, ["GET", "GET", "GET", "POST", "DELETE"], "{calls:?}");
    assert_eq!(
        seen.lock().unwrap().last().unwrap(),
        &format!("Bearer {NEW}")
    );
}

#[test]
fn github_tokens_are_not_rotated_by_api_and_the_plan_says_where() {
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("home");
    bearer_home(
        &home,
        9,
        "github_pat_11ABCDEFG0123456789_abcdefghijklmnopqrstuvwxyz",
        "unused",
        "x",
    );
    let vault = std::fs::read(home.join("vault.json")).unwrap();
    let out = ok(airlock_env(&home, &["incident", "api-key"], &[]));
    assert!(out.contains("github.com/settings/tokens"), "{out}");
    assert!(out.contains("NOT rotated"), "{out}");
    assert_eq!(std::fs::read(home.join("vault.json")).unwrap(), vault);
}

#[test]
fn a_token_incident_revokes_that_token_alone_and_lists_its_requests() {
    let (_dir, home, _) = upstream_home();
    let leaked = issue(&home, "bot", "other");
    let sibling = issue(&home, "bot", "other");
    let gw = serve_door(&home, "--gateway");
    assert_eq!(through(&gw, &leaked, "GET", "/other/leaked"), 200);
    assert_eq!(through(&gw, &sibling, "GET", "/other/sibling"), 200);
    // The whole leaked token is accepted; only its id is ever shown.
    let out = ok(airlock_env(
        &home,
        &["incident", "--token", &leaked, "--json"],
        &[],
    ));
    assert!(!out.contains(&leaked[20..]), "echoed the token");
    let done: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(done["done"]["tokens_revoked"], 1, "{done}");
    assert_eq!(done["done"]["sessions_ended"], 1, "{done}");
    assert_eq!(done["lock"]["capabilities"], serde_json::json!([]));
    let paths = field_strs(&done["requests"], "path");
    assert_eq!(paths, ["/leaked"], "only the token's own requests");
    assert_eq!(through(&gw, &leaked, "GET", "/other/leaked"), 401);
    assert_eq!(through(&gw, &sibling, "GET", "/other/sibling"), 200);
}

/// An exec capability locked by a secret's incident is refused to `airlock run
/// --cap` too (not only to the servers' requests), until `airlock unlock`.
#[test]
fn run_cap_is_refused_while_its_capability_is_locked_by_an_incident() {
    let (_dir, home) = home_at(9);
    let mut text = std::fs::read_to_string(home.join("airlock.toml")).unwrap();
    text.push_str(
        "\n[capabilities.other_cli]\nservice = \"other\"\nmode = \"exec\"\ncommands = [\"true\"]\nenv = { OTHER_TOKEN = \"{{secret}}\" }\nconfine = false\n",
    );
    std::fs::write(home.join("airlock.toml"), text).unwrap();
    let run = |home: &Path| airlock_env(home, &["run", "--cap", "other_cli", "--", "true"], &[]);
    assert!(run(&home).status.success(), "{:?}", run(&home));
    ok(airlock_env(
        &home,
        &["incident", "other-key", "--no-rotate", "--json"],
        &[],
    ));
    let refused = run(&home);
    assert_eq!(refused.status.code(), Some(2), "{refused:?}");
    let err = String::from_utf8_lossy(&refused.stderr);
    assert!(
        err.contains("capability \"other_cli\" was locked by its owner's incident response"),
        "{err}"
    );
    ok(airlock_env(&home, &["unlock"], &[]));
    assert!(run(&home).status.success());
}
