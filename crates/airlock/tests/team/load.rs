//! Tests that put a device's gateway under load while something happens to
//! the database or the server: `logs --team --follow` seeing every record as
//! it arrives, and PostgreSQL stopped under load losing no audit record.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64};

use super::*;

/// Requests to `addr` with `token`, one after another, until stopped: the
/// served and refused counts.
pub(crate) struct Load {
    stop: Arc<AtomicBool>,
    pub(crate) served: Arc<AtomicU64>,
    pub(crate) refused: Arc<AtomicU64>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Load {
    pub(crate) fn start(addr: &str, token: &str) -> Load {
        let stop = Arc::new(AtomicBool::new(false));
        let (served_n, refused_n) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
        let thread = {
            let (stop, addr, t) = (stop.clone(), addr.to_string(), token.to_string());
            let (s_n, r_n) = (served_n.clone(), refused_n.clone());
            std::thread::spawn(move || {
                while !stop.load(Ordering::SeqCst) {
                    let Ok(mut s) = TcpStream::connect(&addr) else {
                        break;
                    };
                    let _ = write!(
                        s,
                        "GET /echo/v1/x HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {t}\r\nConnection: close\r\n\r\n"
                    );
                    let mut resp = Vec::new();
                    let _ = s.read_to_end(&mut resp);
                    if served(&String::from_utf8_lossy(&resp)) {
                        s_n.fetch_add(1, Ordering::SeqCst);
                    } else {
                        r_n.fetch_add(1, Ordering::SeqCst);
                    }
                }
            })
        };
        Load {
            stop,
            served: served_n,
            refused: refused_n,
            thread: Some(thread),
        }
    }

    /// Stops the requests and waits for the one in flight.
    pub(crate) fn stop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            t.join().unwrap();
        }
    }

    pub(crate) fn counts(&self) -> (u64, u64) {
        (
            self.served.load(Ordering::SeqCst),
            self.refused.load(Ordering::SeqCst),
        )
    }
}

impl Drop for Load {
    fn drop(&mut self) {
        self.stop();
    }
}

/// How many rows of `device`'s chain the database holds.
pub(crate) fn rows_of(admin_url: &str, device: &str) -> usize {
    q(
        admin_url,
        &format!("SELECT count(*) FROM airlock.audit WHERE device = '{device}'"),
    )
    .parse()
    .unwrap()
}

/// The database's chain of `device` is the device's local log, record for
/// record, seq 1..n with no gap and no duplicate.
pub(crate) fn chain_is_local_log(admin_url: &str, home: &Path, device: &str) {
    let local = local_records(home);
    let uploaded: Vec<serde_json::Value> = q(
        admin_url,
        &format!("SELECT record FROM airlock.audit WHERE device = '{device}' ORDER BY seq"),
    )
    .lines()
    .map(|l| serde_json::from_str(l).unwrap())
    .collect();
    assert_eq!(uploaded.len(), local.len());
    assert!(
        uploaded == local,
        "the uploaded chain differs from the local log"
    );
    assert_eq!(
        q(
            admin_url,
            &format!(
                "SELECT min(seq) || ' ' || max(seq) || ' ' || count(DISTINCT seq) FROM airlock.audit WHERE device = '{device}'"
            ),
        ),
        format!("1 {} {}", local.len(), local.len())
    );
}

#[test]
fn logs_team_follow_prints_every_new_record_as_it_arrives_like_logs_team() {
    let (url, admin_url) = database();
    let (_dir, a, b) = team_of_two(&url);
    share_echo(&a);
    ok(&a, &["team", "sync"], None);
    ok(&b, &["team", "sync"], None);
    let b_id = device_id(&b);

    // A follows the team audit (JSON) from before B serves anything.
    let mut follow = Kill(spawn_to(
        &a,
        &["logs", "--team", "--follow", "--json"],
        Stdio::piped(),
    ));
    let seen = Arc::new(std::sync::Mutex::new(Vec::<serde_json::Value>::new()));
    {
        let (out, seen) = (follow.0.stdout.take().unwrap(), seen.clone());
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines() {
                let Ok(line) = line else { break };
                seen.lock()
                    .unwrap()
                    .push(serde_json::from_str(&line).unwrap());
            }
        });
    }
    let follow_err = Arc::new(std::sync::Mutex::new(String::new()));
    {
        let (err, log) = (follow.0.stderr.take().unwrap(), follow_err.clone());
        std::thread::spawn(move || {
            for line in BufReader::new(err).lines() {
                let Ok(line) = line else { break };
                log.lock().unwrap().push_str(&line);
            }
        });
    }
    let from = |who: &str| -> Vec<serde_json::Value> {
        seen.lock()
            .unwrap()
            .iter()
            .filter(|r| r["device"] == who)
            .map(|r| r["record"].clone())
            .collect()
    };
    let a_id = device_id(&a);
    eventually("A's own uploaded records printed", || {
        from(&a_id) == local_records(&a)
    });

    // B serves requests while A follows: each of B's records appears, once,
    // in order, as B's follower uploads it.
    let t = token(&b);
    let log = Arc::new(std::sync::Mutex::new(String::new()));
    let (_serve, addr) = serve_gateway(&b, log.clone());
    // Two rounds of requests: the first round's records are printed before the
    // second round is sent (they arrive as B's follower uploads them).
    for round in 0..2 {
        for _ in 0..20 {
            assert!(served(&gateway_get(&addr, &t)));
        }
        let printed = || from(&b_id).len() == local_records(&b).len();
        let end = Instant::now() + Duration::from_secs(60);
        while !printed() && Instant::now() < end {
            std::thread::sleep(Duration::from_millis(300));
        }
        assert!(
            printed(),
            "round {round}: printed {} of B's {} records ({} rows uploaded); the follower said: {}",
            from(&b_id).len(),
            local_records(&b).len(),
            rows_of(&admin_url, &b_id),
            follow_err.lock().unwrap()
        );
    }
    assert_eq!(from(&b_id), local_records(&b));
    // The same objects `logs --team --json` prints, none twice.
    let once: Vec<serde_json::Value> = ok(&a, &["logs", "--team", "--json"], None)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .filter(|r: &serde_json::Value| r["device"] == b_id.as_str())
        .collect();
    let followed: Vec<serde_json::Value> = seen
        .lock()
        .unwrap()
        .iter()
        .filter(|r| r["device"] == b_id.as_str())
        .cloned()
        .collect();
    assert_eq!(followed, once);

    // A row deleted by a database writer: a new follower says so, naming the
    // row, and shows nothing of that chain past it.
    psql(&admin_url, "ALTER TABLE airlock.audit DISABLE TRIGGER USER");
    psql(
        &admin_url,
        &format!("DELETE FROM airlock.audit WHERE device = '{b_id}' AND seq = 2"),
    );
    drop(follow);
    let mut again = Kill(spawn_to(
        &a,
        &["logs", "--team", "--follow"],
        Stdio::piped(),
    ));
    let mut err = BufReader::new(again.0.stderr.take().unwrap());
    let mut line = String::new();
    err.read_line(&mut line).unwrap();
    assert!(
        line.contains(&format!(
            "airlock.audit device={b_id} seq=2: the row is missing"
        )),
        "{line}"
    );
}

#[test]
fn postgres_stopped_under_load_loses_no_audit_record_and_every_chain_verifies() {
    // A cluster of its own: this test stops it.
    let c = start_cluster();
    let url = c.app_url.clone();
    let admin_url = c.admin_url.clone();
    let (_dir, a, b) = team_of_two(&url);
    share_echo(&a);
    std::fs::write(b.join("airlock.toml"), "[team]\nmax_staleness = \"4s\"\n").unwrap();
    ok(&b, &["team", "sync"], None);
    let b_id = device_id(&b);
    let t = token(&b);
    let log = Arc::new(std::sync::Mutex::new(String::new()));
    let (_serve, addr) = serve_gateway(&b, log.clone());
    eventually("B serving", || served(&gateway_get(&addr, &t)));

    // Under load, the database goes away for longer than max_staleness:
    // requests are served from the last synced state, then refused (fail
    // closed), and every one of them is audited on B.
    let mut load = Load::start(&addr, &t);
    eventually("part of B's records uploaded", || {
        rows_of(&admin_url, &b_id) > 0
    });
    pg_script(&["halt", &c.dir]);
    let at_halt = load.counts();
    eventually("B failing closed under load", || {
        log.lock()
            .unwrap()
            .contains("team: cannot catch up with the team")
            && load.counts().1 > at_halt.1 + 3
    });
    let during = load.counts();
    assert!(
        during.0 > at_halt.0,
        "nothing served within max_staleness: {at_halt:?} {during:?}"
    );
    pg_script(&["resume", &c.dir]);
    eventually("B serving again under load", || {
        load.counts().0 > during.0 + 3
    });
    load.stop();
    let (served_n, refused_n) = load.counts();
    assert!(served_n > 0 && refused_n > 0, "{served_n} {refused_n}");

    // After the restart, every local record reaches the database, once, in order.
    eventually("every record of B uploaded", || {
        rows_of(&admin_url, &b_id) == local_records(&b).len()
    });
    chain_is_local_log(&admin_url, &b, &b_id);
    // Every request of the load is in the chain (allowed or refused).
    let requests = local_records(&b)
        .iter()
        .filter(|r| r["kind"] == "request")
        .count() as u64;
    assert!(
        requests >= served_n + refused_n,
        "{requests} request records for {served_n} served and {refused_n} refused"
    );
    let local = ok(&b, &["audit", "verify"], None);
    assert!(local.contains("intact"), "{local}");
    ok(&a, &["team", "sync"], None);
    let v = ok(&a, &["audit", "verify", "--team"], None);
    assert!(v.contains("team audit intact"), "{v}");
}
