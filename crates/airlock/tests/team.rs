//! Team mode against a REAL PostgreSQL (issue 15): two devices as two homes and
//! processes on this machine, one throwaway cluster per test binary
//! (scripts/postgres, removed by its watchdog when this process exits), one
//! database per test.
#![allow(clippy::unwrap_used, clippy::print_stderr)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

const CANARY: &str = "sk_live_TEAMCANARY_7f3a9c2e1b";

/// The cluster's URLs, as scripts/postgres printed them.
struct Cluster {
    dir: String,
    app_url: String,
    admin_url: String,
    bin: String,
}

fn pg_script(args: &[&str]) -> Output {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts/postgres");
    let out = Command::new("bash")
        .arg(script)
        .args(args)
        .stderr(Stdio::inherit())
        .output()
        .unwrap();
    assert!(out.status.success(), "scripts/postgres {args:?} failed");
    out
}

/// A new cluster, removed by the script's watchdog when this process exits.
fn start_cluster() -> Cluster {
    let out = pg_script(&["start", "--owner-pid", &std::process::id().to_string()]);
    let text = String::from_utf8(out.stdout).unwrap();
    let var = |k: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(&format!("{k}=")))
            .unwrap_or_else(|| panic!("scripts/postgres printed no {k}: {text}"))
            .to_string()
    };
    Cluster {
        dir: var("AIRLOCK_PG_DIR"),
        app_url: var("AIRLOCK_PG_URL"),
        admin_url: var("AIRLOCK_PG_ADMIN_URL"),
        bin: var("AIRLOCK_PG_BIN"),
    }
}

/// The cluster the tests share (one per test binary).
fn cluster() -> &'static Cluster {
    static C: OnceLock<Cluster> = OnceLock::new();
    C.get_or_init(start_cluster)
}

/// A fresh database for one test, owned by the app role: (app URL, superuser URL).
fn database() -> (String, String) {
    static N: AtomicUsize = AtomicUsize::new(0);
    let c = cluster();
    let name = format!(
        "t{}_{}",
        std::process::id(),
        N.fetch_add(1, Ordering::SeqCst)
    );
    psql(
        &c.admin_url,
        &format!("CREATE DATABASE {name} OWNER airlock_app"),
    );
    let swap = |u: &str| format!("{}/{name}", u.rsplit_once('/').unwrap().0);
    (swap(&c.app_url), swap(&c.admin_url))
}

fn psql(url: &str, sql: &str) -> Output {
    let out = Command::new(format!("{}/psql", cluster().bin))
        .args(["-X", "-q", "-At", "-v", "ON_ERROR_STOP=1", url, "-c", sql])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "psql {sql}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn psql_fails(url: &str, sql: &str) -> String {
    let out = Command::new(format!("{}/psql", cluster().bin))
        .args(["-X", "-q", "-At", "-v", "ON_ERROR_STOP=1", url, "-c", sql])
        .output()
        .unwrap();
    assert!(!out.status.success(), "psql {sql} should have failed");
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn airlock(home: &Path, args: &[&str], stdin: Option<&str>) -> Output {
    let mut c = Command::new(env!("CARGO_BIN_EXE_airlock"));
    c.args(args)
        .env("AIRLOCK_HOME", home)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = c.spawn().unwrap();
    if let Some(s) = stdin {
        child.stdin.take().unwrap().write_all(s.as_bytes()).unwrap();
    }
    drop(child.stdin.take());
    child.wait_with_output().unwrap()
}

fn ok(home: &Path, args: &[&str], stdin: Option<&str>) -> String {
    let out = airlock(home, args, stdin);
    assert!(
        out.status.success(),
        "airlock {args:?} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// A team of two: A (root admin) and B (approved member).
fn team_of_two(url: &str) -> (tempfile::TempDir, PathBuf, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (dir.path().join("a"), dir.path().join("b"));
    ok(&a, &["team", "init", "--db", url, "--name", "alice"], None);
    let code = ok(&a, &["team", "invite"], None).trim().to_string();
    let joined = ok(
        &b,
        &["team", "join", "--db", url, &code, "--name", "bob"],
        None,
    );
    let fp = joined
        .lines()
        .find_map(|l| l.strip_prefix("fingerprint: "))
        .unwrap()
        .to_string();
    // Before approval, B is pending and cannot sync.
    let out = airlock(&b, &["team", "sync"], None);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("not approved yet"));
    // The code is single-use.
    let c = dir.path().join("c");
    let out = airlock(&c, &["team", "join", "--db", url, &code], None);
    assert!(String::from_utf8_lossy(&out.stderr).contains("already used or expired"));
    let devices = ok(&a, &["team", "devices"], None);
    assert!(
        devices.contains(&fp) && devices.contains("pending"),
        "{devices}"
    );
    ok(&a, &["team", "approve", &fp], None);
    (dir, a, b)
}

/// An upstream on 127.0.0.1 that answers 200 "match" only when the request
/// carries the canary as a bearer token.
fn upstream() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for s in listener.incoming() {
            let Ok(mut s) = s else { continue };
            std::thread::spawn(move || {
                let mut r = BufReader::new(s.try_clone().unwrap());
                let mut head = String::new();
                loop {
                    let mut line = String::new();
                    if r.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                        break;
                    }
                    head.push_str(&line.to_ascii_lowercase());
                }
                let good = head.contains(&format!(
                    "authorization: bearer {}",
                    CANARY.to_ascii_lowercase()
                ));
                let (status, body) = if good {
                    ("200 OK", "match")
                } else {
                    ("401 Unauthorized", "no")
                };
                let _ = write!(
                    s,
                    "HTTP/1.1 {status}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
            });
        }
    });
    port
}

/// `airlock serve --gateway` on `home`: the server and its address. Its stderr
/// is drained into `log` (shared) so it never blocks.
fn serve_gateway(home: &Path, log: std::sync::Arc<std::sync::Mutex<String>>) -> (Kill, String) {
    let mut serve = Kill(spawn(home, &["serve", "--gateway", "127.0.0.1:0"]));
    let mut err = BufReader::new(serve.0.stderr.take().unwrap());
    let addr = loop {
        let mut line = String::new();
        assert!(
            err.read_line(&mut line).unwrap() > 0,
            "serve printed no address"
        );
        log.lock().unwrap().push_str(&line);
        if let Some(rest) = line.split("http://").nth(1) {
            break rest.split('/').next().unwrap().trim().to_string();
        }
    };
    std::thread::spawn(move || {
        let mut line = String::new();
        while err.read_line(&mut line).unwrap_or(0) > 0 {
            log.lock().unwrap().push_str(&line);
            line.clear();
        }
    });
    (serve, addr)
}

fn gateway_get(addr: &str, token: &str) -> String {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(
        s,
        "GET /echo/v1/x HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {token}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut resp = Vec::new();
    s.read_to_end(&mut resp).ok();
    String::from_utf8_lossy(&resp).into_owned()
}

struct Kill(Child);
impl Drop for Kill {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn spawn(home: &Path, args: &[&str]) -> Child {
    Command::new(env!("CARGO_BIN_EXE_airlock"))
        .args(args)
        .env("AIRLOCK_HOME", home)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// Polls until `f` holds; panics with `what` after a generous deadline (a
/// liveness bound, not a timing assertion).
fn eventually(what: &str, mut f: impl FnMut() -> bool) {
    let end = Instant::now() + Duration::from_secs(30);
    while Instant::now() < end {
        if f() {
            return;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("{what} did not happen within 30 s");
}

/// A's `airlock.toml`: service "echo" at the local upstream with the team's
/// secret, and capability "echo" allowing GET /v1/** only.
fn echo_config(home: &Path, port: u16) {
    std::fs::create_dir_all(home).unwrap();
    std::fs::write(
        home.join("airlock.toml"),
        format!(
            "# A's own comment\n[services.echo]\nurl = \"http://127.0.0.1:{port}\"\nauth = {{ type = \"bearer\", secret = \"canary\" }}\n\n[capabilities.echo]\nservice = \"echo\"\nttl = \"1h\"\nallow = [\"GET /v1/**\"]\n"
        ),
    )
    .unwrap();
}

#[test]
fn a_secret_revocation_and_lock_made_on_one_device_hold_on_the_other() {
    let (url, _) = database();
    let (_dir, a, b) = team_of_two(&url);
    ok(&a, &["secret", "set", "canary", "--stdin"], Some(CANARY));

    // A defines a service that uses the team's secret and shares it (signed);
    // B gets both at its sync, and runs its gateway.
    let port = upstream();
    echo_config(&a, port);
    let pushed = ok(&a, &["team", "push-config"], None);
    assert!(
        pushed.contains("service \"echo\" shared at team version 1")
            && pushed.contains("capability \"echo\" shared at team version 1"),
        "{pushed}"
    );
    let again = ok(&a, &["team", "push-config"], None);
    assert!(again.contains("already has"), "{again}");
    let synced = ok(&b, &["team", "sync"], None);
    assert!(
        synced.contains("secret \"canary\" now at team version 1")
            && synced.contains("service \"echo\" now at team version 1")
            && synced.contains("capability \"echo\" now at team version 1"),
        "{synced}"
    );
    let token: serde_json::Value = serde_json::from_str(&ok(
        &b,
        &["token", "issue", "--agent", "ci", "--json"],
        None,
    ))
    .unwrap();
    let token = token["token"].as_str().unwrap().to_string();
    let mut serve = Kill(spawn(&b, &["serve", "--gateway", "127.0.0.1:0"]));
    let mut err = BufReader::new(serve.0.stderr.take().unwrap());
    let addr = loop {
        let mut line = String::new();
        assert!(
            err.read_line(&mut line).unwrap() > 0,
            "serve printed no address"
        );
        if let Some(rest) = line.split("http://").nth(1) {
            break rest.split('/').next().unwrap().trim().to_string();
        }
    };
    std::thread::spawn(move || std::io::copy(&mut err, &mut std::io::sink()));

    // The secret set on A is what B's gateway sends upstream.
    let resp = gateway_get(&addr, &token);
    assert!(
        resp.starts_with("HTTP/1.1 200") && resp.contains("\r\nmatch\r\n"),
        "{resp}"
    );
    assert!(!resp.contains(CANARY));

    // A revokes everything: the follower inside B's server hears it, B's
    // gateway refuses.
    ok(&a, &["revoke", "--all"], None);
    eventually("B refusing after A's revoke --all", || {
        !gateway_get(&addr, &token).starts_with("HTTP/1.1 200")
    });

    // A engages the lock: B's home is locked; A unlocks: B's too.
    ok(&a, &["lock"], None);
    eventually("B locked", || b.join("state/locked").exists());
    ok(&a, &["unlock"], None);
    eventually("B unlocked", || !b.join("state/locked").exists());
    let status = ok(&b, &["team", "status"], None);
    assert!(status.contains("(0 behind)"), "{status}");
}

#[test]
fn the_database_holds_no_secret_and_its_writers_cannot_forge_rows() {
    let (url, admin_url) = database();
    let (_dir, a, b) = team_of_two(&url);
    ok(&a, &["secret", "set", "canary", "--stdin"], Some(CANARY));
    ok(&b, &["team", "sync"], None);

    // A full dump (as the superuser) holds the canary in no encoding.
    let dump = Command::new(format!("{}/pg_dump", cluster().bin))
        .arg(&admin_url)
        .output()
        .unwrap();
    assert!(dump.status.success());
    let dump = String::from_utf8_lossy(&dump.stdout).to_ascii_lowercase();
    assert!(dump.contains("airlock.secrets"));
    use base64::Engine as _;
    let forms = [
        CANARY.to_string(),
        base64::engine::general_purpose::STANDARD.encode(CANARY),
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(CANARY),
        hex::encode(CANARY),
    ];
    for f in &forms {
        assert!(
            !dump.contains(&f.to_ascii_lowercase()),
            "the dump holds {f}"
        );
    }

    let refused = |needle: &str| {
        let out = airlock(&b, &["team", "sync"], None);
        let err = String::from_utf8_lossy(&out.stderr).into_owned();
        assert!(!out.status.success(), "sync accepted a tampered row");
        assert!(
            err.contains("refused tampered row") && err.contains(needle),
            "{err}"
        );
    };

    // Services and capabilities are admin-signed rows: a member cannot share
    // them, and a database writer cannot point a service elsewhere or widen a rule.
    echo_config(&a, upstream());
    ok(&a, &["team", "push-config"], None);
    ok(&b, &["team", "sync"], None);
    let b_config = std::fs::read_to_string(b.join("airlock.toml")).unwrap();
    assert!(
        b_config.contains("127.0.0.1") && b_config.contains("\"GET /v1/**\""),
        "{b_config}"
    );
    let out = airlock(&b, &["team", "push-config"], None);
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("only an admin device can share"),
        "{out:?}"
    );
    psql(
        &admin_url,
        "UPDATE airlock.config SET body = replace(body, '127.0.0.1', 'collector.evil.example') WHERE kind = 'service'",
    );
    refused("airlock.config kind=service name=echo version=1");
    psql(
        &admin_url,
        "UPDATE airlock.config SET body = replace(body, 'collector.evil.example', '127.0.0.1') WHERE kind = 'service'",
    );
    psql(
        &admin_url,
        "UPDATE airlock.config SET body = replace(body, '\"GET /v1/**\"', '\"GET /v1/**\", \"DELETE /**\"') WHERE kind = 'capability'",
    );
    refused("airlock.config kind=capability name=echo version=1");
    // ... nor replay a signed row under a newer version.
    psql(
        &admin_url,
        "UPDATE airlock.config SET body = replace(body, ', \"DELETE /**\"', '') WHERE kind = 'capability'; \
         INSERT INTO airlock.config (kind, name, version, body, author, sig) \
         SELECT kind, name, 2, '', author, sig FROM airlock.config WHERE kind = 'capability'",
    );
    refused("airlock.config kind=capability name=echo version=2");
    psql(&admin_url, "DELETE FROM airlock.config WHERE version = 2");
    // Nothing refused reached B's airlock.toml.
    assert_eq!(
        std::fs::read_to_string(b.join("airlock.toml")).unwrap(),
        b_config
    );
    ok(&b, &["team", "sync"], None);

    // A database writer inserts a device that claims the root's approval.
    let root: String =
        String::from_utf8(psql(&admin_url, "SELECT root_device FROM airlock.team").stdout)
            .unwrap()
            .trim()
            .to_string();
    let fake = DeviceRow::new();
    psql(
        &admin_url,
        &format!(
            "INSERT INTO airlock.devices (id, name, sign_pk, kx_pk, admin, approved_by, approval_sig) \
             VALUES ('{}', 'mallory', '\\x{}', '\\x{}', true, '{root}', '\\x{}')",
            fake.id,
            fake.sign_hex,
            fake.kx_hex,
            "00".repeat(64)
        ),
    );
    refused(&format!("airlock.devices id={}", fake.id));
    psql(
        &admin_url,
        &format!("DELETE FROM airlock.devices WHERE id = '{}'", fake.id),
    );
    ok(&b, &["team", "sync"], None);

    // ... a secret version nobody signed (the superuser gets past the trigger).
    psql(
        &admin_url,
        "ALTER TABLE airlock.secrets DISABLE TRIGGER append_only; \
         INSERT INTO airlock.secrets (name, version, epoch, nonce, ct, author, sig) \
         SELECT name, version + 1, epoch, nonce, ct, author, sig FROM airlock.secrets WHERE name = 'canary'",
    );
    refused("airlock.secrets name=canary version=2");
    psql(
        &admin_url,
        "DELETE FROM airlock.secrets WHERE version = 2; ALTER TABLE airlock.secrets ENABLE TRIGGER append_only",
    );
    ok(&b, &["team", "sync"], None);

    // ... a change (an unlock) signed by nobody.
    let seq = String::from_utf8(
        psql(
            &admin_url,
            &format!(
                "INSERT INTO airlock.changes (kind, subject, body, at, device, sig) \
                 VALUES ('unlock', '', '', 0, '{root}', '\\x{}') RETURNING seq",
                "11".repeat(64)
            ),
        )
        .stdout,
    )
    .unwrap();
    refused(&format!("airlock.changes seq={}", seq.trim()));

    // The app role cannot rewrite history: changes, secrets and audit are append-only.
    psql(
        &url,
        "INSERT INTO airlock.audit (device, seq, prev, record, sig) VALUES ('d', 1, '\\x00', '{}', '\\x00')",
    );
    for sql in [
        "UPDATE airlock.changes SET body = 'x'",
        "DELETE FROM airlock.changes",
        "DELETE FROM airlock.secrets",
        "UPDATE airlock.audit SET record = 'x'",
        "TRUNCATE airlock.audit",
    ] {
        let err = psql_fails(&url, sql);
        assert!(err.contains("append-only"), "{sql}: {err}");
    }
}

/// A syntactically valid device row (real keys) that no admin approved.
struct DeviceRow {
    id: String,
    sign_hex: String,
    kx_hex: String,
}

impl DeviceRow {
    fn new() -> DeviceRow {
        let k = airlock_team::keys::DeviceKeys::generate().unwrap();
        let p = k.public();
        DeviceRow {
            id: p.id(),
            sign_hex: hex::encode(p.sign_pk),
            kx_hex: hex::encode(p.kx_pk),
        }
    }
}

#[test]
fn a_server_follows_its_team_fails_closed_past_max_staleness_and_catches_up() {
    // A cluster of its own: this test stops it.
    let c = start_cluster();
    let url = c.app_url.clone();
    let (_dir, a, b) = team_of_two(&url);
    ok(&a, &["secret", "set", "canary", "--stdin"], Some(CANARY));
    echo_config(&a, upstream());
    ok(&a, &["team", "push-config"], None);
    // B's own setting stays beside the team's tables.
    std::fs::write(b.join("airlock.toml"), "[team]\nmax_staleness = \"6s\"\n").unwrap();
    ok(&b, &["team", "sync"], None);
    assert!(
        std::fs::read_to_string(b.join("airlock.toml"))
            .unwrap()
            .contains("max_staleness = \"6s\"")
    );
    let token: serde_json::Value = serde_json::from_str(&ok(
        &b,
        &["token", "issue", "--agent", "ci", "--json"],
        None,
    ))
    .unwrap();
    let token = token["token"].as_str().unwrap().to_string();
    let log = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
    let (_serve, addr) = serve_gateway(&b, log.clone());
    let served = |resp: &str| resp.starts_with("HTTP/1.1 200") && resp.contains("\r\nmatch\r\n");
    eventually("B serving", || served(&gateway_get(&addr, &token)));

    // The database goes away: B keeps serving from its last synced state for
    // max_staleness, then refuses every request, saying why.
    pg_script(&["halt", &c.dir]);
    let resp = gateway_get(&addr, &token);
    assert!(served(&resp), "refused within max_staleness: {resp}");
    eventually("B failing closed", || {
        gateway_get(&addr, &token).contains("has not caught up with its team")
    });
    let resp = gateway_get(&addr, &token);
    assert!(
        !resp.starts_with("HTTP/1.1 200") && resp.contains("max_staleness (6 s)"),
        "{resp}"
    );
    eventually("B's server telling why", || {
        log.lock()
            .unwrap()
            .contains("team: cannot catch up with the team")
    });

    // Back: B catches up and serves; the follower inside the server applies
    // what the team did next.
    pg_script(&["resume", &c.dir]);
    eventually("B serving again", || served(&gateway_get(&addr, &token)));
    assert!(
        log.lock().unwrap().contains("team: caught up again"),
        "{}",
        log.lock().unwrap()
    );
    ok(&a, &["revoke", "--all"], None);
    eventually("B refusing after A's revoke --all", || {
        let r = gateway_get(&addr, &token);
        !r.starts_with("HTTP/1.1 200") && !r.contains("has not caught up")
    });
}

#[test]
fn a_revoked_device_cannot_sync_and_holds_no_key_of_the_new_epoch() {
    let (url, admin_url) = database();
    let (dir, a, b) = team_of_two(&url);
    ok(&a, &["secret", "set", "canary", "--stdin"], Some(CANARY));
    echo_config(&a, 9);
    ok(&a, &["team", "push-config"], None);
    ok(&b, &["team", "sync"], None);
    // A third device, C, stays.
    let c = dir.path().join("c2");
    let code = ok(&a, &["team", "invite"], None).trim().to_string();
    let joined = ok(
        &c,
        &["team", "join", "--db", &url, &code, "--name", "carol"],
        None,
    );
    let fp_c = joined
        .lines()
        .find_map(|l| l.strip_prefix("fingerprint: "))
        .unwrap()
        .to_string();
    ok(&a, &["team", "approve", &fp_c], None);
    ok(&c, &["team", "sync"], None);
    let devices: serde_json::Value =
        serde_json::from_str(&ok(&a, &["team", "devices", "--json"], None)).unwrap();
    let bob = devices
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["name"] == "bob")
        .unwrap();
    let (b_id, fp_b) = (
        bob["id"].as_str().unwrap().to_string(),
        bob["fingerprint"].as_str().unwrap().to_string(),
    );

    // B may not revoke; the root cannot be revoked.
    let out = airlock(&b, &["team", "revoke-device", &fp_c], None);
    assert!(String::from_utf8_lossy(&out.stderr).contains("only an admin device can revoke"));
    let out = ok(&a, &["team", "revoke-device", &fp_b], None);
    assert!(
        out.contains(&format!(
            "revoked {fp_b} (bob); new team key epoch 2 held by 2 device(s); 1 secret(s) re-sealed"
        )),
        "{out}"
    );
    assert!(
        out.contains("it could read these secrets") && out.contains("  canary (service echo)"),
        "{out}"
    );
    let out = airlock(&a, &["team", "revoke-device", &fp_b], None);
    assert!(String::from_utf8_lossy(&out.stderr).contains("already revoked"));

    // B can no longer sync, and holds no key of epoch 2, under which the
    // current version is sealed; C gets that version.
    let out = airlock(&b, &["team", "sync"], None);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("was revoked by a team admin"),
        "{out:?}"
    );
    let count = |sql: &str| {
        String::from_utf8(psql(&admin_url, sql).stdout)
            .unwrap()
            .trim()
            .to_string()
    };
    assert_eq!(
        count(&format!(
            "SELECT count(*) FROM airlock.epoch_keys WHERE epoch = 2 AND device = '{b_id}'"
        )),
        "0"
    );
    assert_eq!(
        count("SELECT count(*) FROM airlock.epoch_keys WHERE epoch = 2"),
        "2"
    );
    assert_eq!(
        count(
            "SELECT epoch FROM airlock.secrets WHERE name = 'canary' ORDER BY version DESC LIMIT 1"
        ),
        "2"
    );
    let synced = ok(&c, &["team", "sync"], None);
    assert!(
        synced.contains("secret \"canary\" now at team version 2"),
        "{synced}"
    );
    // A secret set after the revocation is sealed under epoch 2 as well.
    ok(
        &a,
        &["secret", "set", "later", "--stdin"],
        Some("after-revocation"),
    );
    assert_eq!(
        count("SELECT epoch FROM airlock.secrets WHERE name = 'later'"),
        "2"
    );
    assert!(ok(&c, &["team", "sync"], None).contains("secret \"later\" now at team version 1"));
}
