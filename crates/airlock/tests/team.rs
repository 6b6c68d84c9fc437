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

#[path = "team/agents.rs"]
mod agents;
#[path = "team/checkpoints.rs"]
mod checkpoints;
#[path = "team/db_url.rs"]
mod db_url;
#[path = "team/incident.rs"]
mod incident;
#[path = "team/load.rs"]
mod load;
#[path = "team/local.rs"]
mod local;

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

/// `team status` on `home` says it is 0 changes behind the team.
fn caught_up(home: &Path) {
    let status = ok(home, &["team", "status"], None);
    assert!(status.contains("(0 behind)"), "{status}");
}

/// `sql` fails on `url`, saying `needle`.
fn psql_refuses(url: &str, sql: &str, needle: &str) {
    let err = psql_fails(url, sql);
    assert!(err.contains(needle), "{sql}: {err}");
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

/// `airlock ARGS` on `home` says `needle` on its stderr.
fn stderr_says(home: &Path, args: &[&str], needle: &str) {
    let out = airlock(home, args, None);
    assert!(
        String::from_utf8_lossy(&out.stderr).contains(needle),
        "{out:?}"
    );
}

/// `team sync` on `home`, which says it uploaded `uploaded` audit record(s)
/// and that this device's chain is at seq `seq`: what it printed.
fn sync_uploads(home: &Path, uploaded: usize, seq: usize) -> String {
    let synced = ok(home, &["team", "sync"], None);
    assert!(
        synced.contains(&format!(
            "audit: {uploaded} record(s) uploaded; this device's chain is at seq {seq}"
        )),
        "{synced}"
    );
    synced
}

/// A team of two: A (root admin) and B (approved member).
/// `home` joins `admin`'s team as `name` with a fresh invitation: (the code,
/// the fingerprint `team join` printed). The device is pending until approved.
fn join_pending(admin: &Path, home: &Path, url: &str, name: &str) -> (String, String) {
    let code = ok(admin, &["team", "invite"], None).trim().to_string();
    let joined = ok(
        home,
        &["team", "join", "--db", url, &code, "--name", name],
        None,
    );
    (code, fingerprint(&joined))
}

/// The fingerprint in `team join`'s output.
fn fingerprint(joined: &str) -> String {
    joined
        .lines()
        .find_map(|l| l.strip_prefix("fingerprint: "))
        .unwrap()
        .to_string()
}

fn team_of_two(url: &str) -> (tempfile::TempDir, PathBuf, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (dir.path().join("a"), dir.path().join("b"));
    ok(&a, &["team", "init", "--db", url, "--name", "alice"], None);
    let (code, fp) = join_pending(&a, &b, url, "bob");
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

/// A shares the canary secret and the echo service and capability
/// ([`echo_config`]) with the team.
fn share_echo(a: &Path) {
    ok(a, &["secret", "set", "canary", "--stdin"], Some(CANARY));
    echo_config(a, upstream());
    ok(a, &["team", "push-config"], None);
}

/// [`team_of_two`] after [`share_echo`], B synced.
fn echo_team_of_two(url: &str) -> (tempfile::TempDir, PathBuf, PathBuf) {
    let (dir, a, b) = team_of_two(url);
    share_echo(&a);
    ok(&b, &["team", "sync"], None);
    (dir, a, b)
}

/// A database writer copies the first change row of `kind` under a new
/// number: a valid signature, replayed.
fn replay_first(admin_url: &str, kind: &str) {
    psql(
        admin_url,
        &format!(
            "INSERT INTO airlock.changes (kind, subject, body, at, device, sig) \
             SELECT kind, subject, body, at, device, sig FROM airlock.changes \
             WHERE kind = '{kind}' ORDER BY seq LIMIT 1"
        ),
    );
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
    spawn_to(home, args, Stdio::null())
}

/// `spawn` with stdout going to `stdout` (`Stdio::piped()` for a `logs --follow`).
fn spawn_to(home: &Path, args: &[&str], stdout: Stdio) -> Child {
    Command::new(env!("CARGO_BIN_EXE_airlock"))
        .args(args)
        .env("AIRLOCK_HOME", home)
        .stdin(Stdio::null())
        .stdout(stdout)
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
    let token = token(&b);
    let (_serve, addr) = serve_gateway(&b, Default::default());

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
    caught_up(&b);
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
    stderr_says(
        &b,
        &["team", "push-config"],
        "only an admin device can share",
    );
    // airlock.config is append-only: the superuser gets past its trigger.
    psql(
        &admin_url,
        "ALTER TABLE airlock.config DISABLE TRIGGER USER; \
         UPDATE airlock.config SET body = replace(body, '127.0.0.1', 'collector.evil.example') WHERE kind = 'service'",
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
    psql(
        &admin_url,
        "DELETE FROM airlock.config WHERE version = 2; ALTER TABLE airlock.config ENABLE TRIGGER USER",
    );
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
        "UPDATE airlock.config SET body = replace(body, '127.0.0.1', 'collector.evil.example')",
        "DELETE FROM airlock.config",
        "TRUNCATE airlock.config",
    ] {
        psql_refuses(&url, sql, "append-only");
    }
    // A team made before migration 3 (no trigger on airlock.config) gets it
    // at its next `team sync`.
    psql(
        &admin_url,
        "DROP TRIGGER append_only ON airlock.config; DROP TRIGGER append_only_truncate ON airlock.config; \
         DELETE FROM airlock._sqlx_migrations WHERE version = 3",
    );
    psql(&url, "UPDATE airlock.config SET author = author");
    // (the unsigned unlock above still stops B's sync, after the migration)
    let out = airlock(&b, &["team", "sync"], None);
    assert!(!out.status.success());
    assert_eq!(
        q(
            &url,
            "SELECT count(*) FROM airlock._sqlx_migrations WHERE version = 3"
        ),
        "1"
    );
    let err = psql_fails(&url, "UPDATE airlock.config SET author = author");
    assert!(
        err.contains("airlock.config is append-only: UPDATE refused"),
        "{err}"
    );
    // The appended versions the team made are all still there.
    assert_eq!(q(&url, "SELECT count(*) FROM airlock.config"), "2");
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
    share_echo(&a);
    // B's own setting stays beside the team's tables.
    std::fs::write(b.join("airlock.toml"), "[team]\nmax_staleness = \"6s\"\n").unwrap();
    ok(&b, &["team", "sync"], None);
    assert!(
        std::fs::read_to_string(b.join("airlock.toml"))
            .unwrap()
            .contains("max_staleness = \"6s\"")
    );
    let token = token(&b);
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
    let (_, fp_c) = join_pending(&a, &c, &url, "carol");
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

/// stdout of a query, trimmed.
fn q(url: &str, sql: &str) -> String {
    String::from_utf8(psql(url, sql).stdout)
        .unwrap()
        .trim()
        .to_string()
}

/// This home's device id.
fn device_id(home: &Path) -> String {
    let devices: serde_json::Value =
        serde_json::from_str(&ok(home, &["team", "devices", "--json"], None)).unwrap();
    devices
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["this_device"] == true)
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string()
}

/// `airlock logs --json` of a home: its local records.
fn local_records(home: &Path) -> Vec<serde_json::Value> {
    ok(home, &["logs", "--json"], None)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[test]
fn the_team_audit_is_signed_chained_checkpointed_and_tampering_is_named_by_row() {
    let (url, admin_url) = database();
    let (_dir, a, b) = team_of_two(&url);
    ok(&a, &["secret", "set", "canary", "--stdin"], Some(CANARY));
    for i in 0..3 {
        ok(&a, &["token", "issue", "--agent", &format!("a{i}")], None);
    }
    ok(&b, &["token", "issue", "--agent", "b0"], None);
    let (a_local, b_local) = (local_records(&a), local_records(&b));
    let (na, nb) = (a_local.len(), b_local.len());
    assert!(na >= 3 && nb >= 1, "{a_local:?} {b_local:?}");

    // `team sync` uploads the device's records; on an admin it checkpoints.
    let synced = sync_uploads(&b, nb, nb);
    assert!(!synced.contains("checkpoint"), "{synced}");
    let synced = sync_uploads(&a, na, na);
    assert!(
        synced.contains("audit: checkpoint 1 signed over every device's chain"),
        "{synced}"
    );
    // Nothing new: nothing uploaded twice, no checkpoint over the same heads.
    let again = sync_uploads(&a, 0, na);
    assert!(!again.contains("checkpoint"), "{again}");
    let verified = ok(&b, &["audit", "verify", "--team"], None);
    assert!(
        verified.contains(&format!(
            "team audit intact: {} row(s) in 2 chain(s), 1 checkpoint(s) verified",
            na + nb
        )),
        "{verified}"
    );

    // `logs --team` reads every device's records: exactly the lines each
    // device's own `logs --json` prints, with the device named.
    let team_logs: Vec<serde_json::Value> = ok(&b, &["logs", "--team", "--json"], None)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let of = |name: &str| -> Vec<serde_json::Value> {
        team_logs
            .iter()
            .filter(|r| r["device_name"] == name)
            .map(|r| r["record"].clone())
            .collect()
    };
    assert_eq!(of("alice"), a_local);
    assert_eq!(of("bob"), b_local);
    let human = ok(&a, &["logs", "--team", "--agent", "a1"], None);
    assert_eq!(human.lines().count(), 1, "{human}");
    assert!(
        human.contains(" alice ") && human.contains("token_issue") && human.contains("a1"),
        "{human}"
    );
    // The records hold what local records hold: no secret.
    assert!(
        !q(
            &admin_url,
            "SELECT string_agg(record, '') FROM airlock.audit"
        )
        .contains(CANARY)
    );

    // The app role cannot rewrite the audit or its checkpoints.
    for sql in [
        "UPDATE airlock.audit SET record = 'x'",
        "DELETE FROM airlock.audit",
        "UPDATE airlock.audit_checkpoints SET heads = '[]'",
        "DELETE FROM airlock.audit_checkpoints",
        "TRUNCATE airlock.audit_checkpoints",
    ] {
        psql_refuses(&url, sql, "append-only");
    }

    // A database writer (the superuser, past the triggers) edits, deletes,
    // reorders and inserts rows: each is named by `audit verify --team`.
    let a_id = device_id(&a);
    psql(
        &admin_url,
        "CREATE TABLE public.audit_copy AS SELECT * FROM airlock.audit; \
         ALTER TABLE airlock.audit DISABLE TRIGGER USER; \
         ALTER TABLE airlock.audit_checkpoints DISABLE TRIGGER USER",
    );
    let broken = |needle: &str| {
        let out = airlock(&b, &["audit", "verify", "--team"], None);
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        assert_eq!(out.status.code(), Some(1), "{text}");
        assert!(
            text.contains(&format!("BROKEN {needle}")) && text.contains("team audit BROKEN"),
            "wanted BROKEN {needle} in\n{text}"
        );
    };
    let restore = || {
        psql(
            &admin_url,
            "DELETE FROM airlock.audit; INSERT INTO airlock.audit SELECT * FROM public.audit_copy",
        );
        ok(&b, &["audit", "verify", "--team"], None);
    };
    let tamper = |sql: &str| psql(&admin_url, &sql.replace("{A}", &a_id));

    tamper(
        "UPDATE airlock.audit SET record = replace(record, 'a1', 'a9') WHERE device = '{A}' AND seq = 2",
    );
    broken(&format!(
        "airlock.audit device={a_id} seq=2: its signature by the device does not verify"
    ));
    restore();
    tamper("DELETE FROM airlock.audit WHERE device = '{A}' AND seq = 2");
    broken(&format!(
        "airlock.audit device={a_id} seq=2: the row is missing (deleted): the chain goes from seq 1 to seq 3"
    ));
    restore();
    // The newest row: the chain is shorter but whole; the checkpoint saw it.
    tamper(&format!(
        "DELETE FROM airlock.audit WHERE device = '{{A}}' AND seq = {na}"
    ));
    broken(&format!(
        "airlock.audit device={a_id} seq={na}: it is missing (deleted): checkpoint 1 saw this chain reach seq {na}"
    ));
    // ... and A, which uploaded it, tells too.
    let out = airlock(&a, &["audit", "verify", "--team", "--json"], None);
    assert_eq!(out.status.code(), Some(1));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["ok"], false);
    assert_eq!(v["problems"][0]["device"], a_id.as_str());
    assert_eq!(v["problems"][0]["seq"], na);
    // A still has the record: its next upload writes the same row again.
    let healed = sync_uploads(&a, 1, na);
    assert!(!healed.contains("checkpoint"), "{healed}");
    ok(&b, &["audit", "verify", "--team"], None);
    tamper(
        "UPDATE airlock.audit t SET prev = s.prev, record = s.record, sig = s.sig \
         FROM public.audit_copy s WHERE t.device = '{A}' AND s.device = t.device \
         AND ((t.seq = 1 AND s.seq = 2) OR (t.seq = 2 AND s.seq = 1))",
    );
    broken(&format!(
        "airlock.audit device={a_id} seq=1: its signature by the device does not verify"
    ));
    restore();
    tamper(&format!(
        "INSERT INTO airlock.audit (device, seq, prev, record, sig) \
         SELECT device, {}, prev, record, sig FROM public.audit_copy WHERE device = '{{A}}' AND seq = 1",
        na + 1
    ));
    broken(&format!(
        "airlock.audit device={a_id} seq={}: its signature by the device does not verify",
        na + 1
    ));
    restore();
    psql(
        &admin_url,
        "UPDATE airlock.audit_checkpoints SET at = at + 1 WHERE seq = 1",
    );
    broken("airlock.audit_checkpoints seq=1: it is not signed by admin device");
    // Nothing of it is shown by `logs --team` as if it were fine.
    stderr_says(&b, &["logs", "--team"], "1 problem(s) in the team audit");
    psql(
        &admin_url,
        "UPDATE airlock.audit_checkpoints SET at = at - 1 WHERE seq = 1; \
         ALTER TABLE airlock.audit ENABLE TRIGGER USER; \
         ALTER TABLE airlock.audit_checkpoints ENABLE TRIGGER USER; DROP TABLE public.audit_copy",
    );
    ok(&b, &["audit", "verify", "--team"], None);

    // The app role owns the schema `team init` made, so it could disable the
    // triggers; sql/protect-audit.sql (run by the superuser) takes that away
    // and the team keeps working.
    assert!(q(&url, "SELECT current_user") == "airlock_app");
    let sql = Path::new(env!("CARGO_MANIFEST_DIR")).join("../airlock-team/sql/protect-audit.sql");
    let out = Command::new(format!("{}/psql", cluster().bin))
        .args(["-X", "-q", "-v", "app_role=airlock_app", &admin_url, "-f"])
        .arg(&sql)
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    for sql in [
        "ALTER TABLE airlock.audit DISABLE TRIGGER USER",
        "CREATE OR REPLACE FUNCTION airlock.append_only() RETURNS trigger LANGUAGE plpgsql AS 'BEGIN RETURN OLD; END'",
        "DROP TABLE airlock.audit",
        "ALTER TABLE airlock.changes DISABLE TRIGGER USER",
    ] {
        psql_refuses(&url, sql, "must be owner");
    }
    let err = psql_fails(&url, "DELETE FROM airlock.audit");
    assert!(err.contains("permission denied"), "{err}");
    ok(&b, &["token", "issue", "--agent", "b1"], None);
    assert!(ok(&b, &["team", "sync"], None).contains("audit: 1 record(s) uploaded"));
    ok(
        &a,
        &["secret", "rotate", "canary", "--stdin"],
        Some("rotated"),
    );
    assert!(ok(&a, &["team", "sync"], None).contains("audit: checkpoint 2 signed"));
    assert!(ok(&b, &["audit", "verify", "--team"], None).contains("2 checkpoint(s) verified"));

    // doctor: the database, TLS (none, but on this machine), clock, lag.
    let out = airlock(&b, &["doctor", "--json"], None);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let lines: Vec<(String, String)> = v["lines"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| {
            (
                l["level"].as_str().unwrap().to_string(),
                l["message"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    let has = |level: &str, text: &str| {
        assert!(
            lines.iter().any(|(l, m)| l == level && m.contains(text)),
            "no {level} line with {text}: {lines:?}"
        );
    };
    has("ok", "team database 127.0.0.1:");
    has("note", "does not use TLS");
    has("ok", "clock within");
    has("ok", "change(s) behind");
}

fn served(resp: &str) -> bool {
    resp.starts_with("HTTP/1.1 200") && resp.contains("\r\nmatch\r\n")
}

/// An agent token for `home`'s gateway.
fn token(home: &Path) -> String {
    let t: serde_json::Value = serde_json::from_str(&ok(
        home,
        &["token", "issue", "--agent", "ci", "--json"],
        None,
    ))
    .unwrap();
    t["token"].as_str().unwrap().to_string()
}

#[test]
fn eight_devices_share_a_secret_and_a_lock_or_revocation_on_one_holds_on_every_other() {
    let (url, _) = database();
    let dir = tempfile::tempdir().unwrap();
    let homes: Vec<PathBuf> = (0..8).map(|i| dir.path().join(format!("d{i}"))).collect();
    ok(
        &homes[0],
        &["team", "init", "--db", &url, "--name", "d0"],
        None,
    );
    // Seven devices join at once, then the admin approves them at once.
    let codes: Vec<String> = (1..8)
        .map(|_| ok(&homes[0], &["team", "invite"], None).trim().to_string())
        .collect();
    let fps: Vec<String> = std::thread::scope(|s| {
        let joins: Vec<_> = codes
            .iter()
            .enumerate()
            .map(|(i, code)| {
                let (home, url) = (&homes[i + 1], &url);
                s.spawn(move || {
                    let name = format!("d{}", i + 1);
                    fingerprint(&ok(
                        home,
                        &["team", "join", "--db", url, code, "--name", &name],
                        None,
                    ))
                })
            })
            .collect();
        joins.into_iter().map(|j| j.join().unwrap()).collect()
    });
    std::thread::scope(|s| {
        for fp in &fps {
            let admin = &homes[0];
            s.spawn(move || ok(admin, &["team", "approve", fp], None));
        }
    });
    // The secret is set on a member; the admin shares the service using it.
    ok(
        &homes[3],
        &["secret", "set", "canary", "--stdin"],
        Some(CANARY),
    );
    echo_config(&homes[0], upstream());
    ok(&homes[0], &["team", "push-config"], None);
    let log = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
    let servers: Vec<(Kill, String, String)> = std::thread::scope(|s| {
        let started: Vec<_> = homes
            .iter()
            .map(|h| {
                let log = log.clone();
                s.spawn(move || {
                    ok(h, &["team", "sync"], None);
                    let t = token(h);
                    let (serve, addr) = serve_gateway(h, log);
                    (serve, addr, t)
                })
            })
            .collect();
        started.into_iter().map(|j| j.join().unwrap()).collect()
    });
    let all = |what: &str, f: &dyn Fn(&str) -> bool| {
        for (i, (_, addr, t)) in servers.iter().enumerate() {
            eventually(&format!("device {i}: {what}"), || f(&gateway_get(addr, t)));
        }
    };
    all("serving with the secret set on device 3", &|r| served(r));

    // A member locks: every device refuses; the admin unlocks: every device serves.
    ok(&homes[5], &["lock"], None);
    all("refusing under device 5's lock", &|r| {
        !r.starts_with("HTTP/1.1 200")
    });
    for h in &homes {
        assert!(h.join("state/locked").exists());
    }
    ok(&homes[0], &["unlock"], None);
    all("serving after the admin's unlock", &|r| served(r));

    // A member revokes every session: every other device refuses.
    ok(&homes[6], &["revoke", "--all"], None);
    all("refusing after device 6's revoke --all", &|r| {
        !r.starts_with("HTTP/1.1 200") && !r.contains("has not caught up")
    });
    let status = ok(&homes[7], &["team", "status", "--json"], None);
    let s: serde_json::Value = serde_json::from_str(&status).unwrap();
    assert_eq!(s["devices"], 8);
}

#[test]
fn a_device_offline_while_a_revocation_is_issued_refuses_it_from_its_first_request_back() {
    let (url, _) = database();
    let (_dir, a, b) = echo_team_of_two(&url);
    let t = token(&b);
    let log = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
    let (serve, addr) = serve_gateway(&b, log.clone());
    eventually("B serving", || served(&gateway_get(&addr, &t)));
    // B goes offline (its server stops); A revokes every session meanwhile.
    drop(serve);
    ok(&a, &["revoke", "--all"], None);
    // B comes back: its very first request is refused, for the revocation.
    let (_serve, addr) = serve_gateway(&b, log.clone());
    let first = gateway_get(&addr, &t);
    assert!(
        !first.starts_with("HTTP/1.1 200") && !first.contains("has not caught up"),
        "{first}"
    );
    // A token issued after the revocation is served: B is not merely down.
    let fresh = token(&b);
    assert!(served(&gateway_get(&addr, &fresh)));
}

#[test]
fn a_server_killed_mid_upload_resumes_its_chain_without_gap_or_duplicate() {
    let (url, admin_url) = database();
    let (_dir, a, b) = echo_team_of_two(&url);
    let b_id = device_id(&b);
    let t = token(&b);
    let log = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
    let (mut serve, addr) = serve_gateway(&b, log.clone());
    let rows = || load::rows_of(&admin_url, &b_id);
    // A stream of requests; kill -9 the server once part of it is uploaded.
    let mut load = load::Load::start(&addr, &t);
    eventually("part of B's records uploaded", || rows() > 0);
    serve.0.kill().unwrap();
    serve.0.wait().unwrap();
    load.stop();
    let at_kill = rows();
    let local = local_records(&b).len();
    assert!(
        local > at_kill,
        "the kill came after the upload finished ({local} local, {at_kill} uploaded)"
    );

    // Restarted, the server uploads the rest: the database's chain is the
    // local log, record for record, seq 1..n.
    let (_serve, addr) = serve_gateway(&b, log.clone());
    assert!(served(&gateway_get(&addr, &t)));
    eventually("every record of B uploaded", || {
        rows() == local_records(&b).len()
    });
    load::chain_is_local_log(&admin_url, &b, &b_id);
    ok(&a, &["team", "sync"], None);
    let v = ok(&a, &["audit", "verify", "--team"], None);
    assert!(v.contains("team audit intact"), "{v}");
}
