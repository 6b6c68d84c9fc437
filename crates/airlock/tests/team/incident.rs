//! `airlock incident`'s locks (a capability, an agent) and their release by
//! `airlock unlock` reach every device of the team through the change log.

use super::*;

/// A third device joined and approved by `admin`.
pub(crate) fn join(admin: &Path, home: &Path, url: &str, name: &str) {
    let (_, fp) = join_pending(admin, home, url, name);
    ok(admin, &["team", "approve", &fp], None);
}

/// The incident locks in a home's `state/revocations.json`: (capabilities, agents).
fn locks(home: &Path) -> (Vec<String>, Vec<String>) {
    let text = std::fs::read_to_string(home.join("state/revocations.json")).unwrap_or_default();
    let v: serde_json::Value = serde_json::from_str(&text).unwrap_or_default();
    let keys = |k: &str| {
        v["locked"][k]
            .as_object()
            .map(|m| m.keys().cloned().collect())
            .unwrap_or_default()
    };
    (keys("capabilities"), keys("agents"))
}

#[test]
fn an_incident_lock_on_one_device_refuses_on_every_other_until_an_admin_unlocks() {
    let (url, admin_url) = database();
    let (dir, a, b) = team_of_two(&url);
    let c = dir.path().join("c");
    join(&a, &c, &url, "carol");
    share_echo(&a);
    let log = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
    let mut gateways = Vec::new();
    for h in [&b, &c] {
        ok(h, &["team", "sync"], None);
        let t = token(h);
        let (serve, addr) = serve_gateway(h, log.clone());
        eventually("serving", || served(&gateway_get(&addr, &t)));
        gateways.push((serve, addr, t));
    }

    // B's incident on the secret locks capability "echo": C refuses it at its
    // next request (a lock, not a revocation: new sessions too), A's sync
    // applies it and says so.
    let out = ok(&b, &["incident", "canary", "--no-rotate"], None);
    assert!(out.contains("echo"), "{out}");
    let (_, c_addr, c_token) = &gateways[1];
    eventually("C refusing the locked capability", || {
        gateway_get(c_addr, c_token).contains("incident response")
    });
    let resp = gateway_get(c_addr, c_token);
    assert!(
        !resp.starts_with("HTTP/1.1 200") && resp.contains("echo") && resp.contains("was locked"),
        "{resp}"
    );
    // A token issued after the lock is refused too: a lock, not a revocation.
    let fresh = token(&c);
    assert!(!served(&gateway_get(c_addr, &fresh)));
    let synced = ok(&a, &["team", "sync"], None);
    assert!(
        synced.contains("incident response locked capability \"echo\""),
        "{synced}"
    );
    assert_eq!(locks(&a).0, vec!["echo".to_string()]);
    assert_eq!(locks(&c).0, vec!["echo".to_string()]);

    // A member cannot release the team's lock: its own home is released, the
    // team is not told, and C still refuses.
    let out = airlock(&b, &["unlock"], None);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("released on this device, but the team was not told"),
        "{err}"
    );
    ok(&c, &["team", "sync"], None);
    assert!(!served(&gateway_get(c_addr, &fresh)));

    // The admin's unlock releases it on every device.
    let out = ok(&a, &["unlock"], None);
    assert!(out.contains("released the incident lock"), "{out}");
    eventually("C serving after the admin's unlock", || {
        served(&gateway_get(c_addr, &fresh))
    });
    assert!(locks(&c).0.is_empty() && locks(&a).0.is_empty());

    // A database writer replays the old lock row (a valid signature, a new
    // number): it is older than the unlock, so no device applies it.
    replay_first(&admin_url, "incident-lock");
    let synced = ok(&c, &["team", "sync"], None);
    assert!(!synced.contains("locked"), "{synced}");
    assert!(locks(&c).0.is_empty());
    assert!(served(&gateway_get(c_addr, &fresh)));

    // An incident on an agent locks that agent on every device: a token
    // issued to it after the incident is refused on C, one of another agent
    // is served; the admin's unlock serves the agent's new tokens again.
    ok(&b, &["incident", "--agent", "ci", "--no-rotate"], None);
    eventually("C refusing agent ci", || {
        let r = gateway_get(c_addr, &token(&c));
        r.contains("ci") && r.contains("was locked")
    });
    assert_eq!(locks(&c).1, vec!["ci".to_string()]);
    let other: serde_json::Value = serde_json::from_str(&ok(
        &c,
        &["token", "issue", "--agent", "deploy", "--json"],
        None,
    ))
    .unwrap();
    assert!(served(&gateway_get(
        c_addr,
        other["token"].as_str().unwrap()
    )));
    ok(&a, &["team", "sync"], None);
    ok(&a, &["unlock"], None);
    eventually("C serving agent ci's new token", || {
        served(&gateway_get(c_addr, &token(&c)))
    });
    caught_up(&c);
}

/// With the team's database out of reach, `airlock incident` still does all
/// it can on this device — revocation, lock, the rotation step, its audit
/// records, the report — and then fails with why the team was not told; run
/// again once the database is back (`--no-rotate`), it tells every device.
#[test]
fn an_incident_with_the_database_down_acts_here_rotates_and_says_the_team_was_not_told() {
    let (url, _) = database();
    let (_dir, a, b) = echo_team_of_two(&url);
    token(&b);
    let db = url.rsplit_once('/').unwrap().1.to_string();
    let allow = |on: bool| {
        psql(
            &cluster().admin_url,
            &format!("ALTER DATABASE {db} ALLOW_CONNECTIONS {on}"),
        )
    };
    allow(false);

    let out = airlock(&b, &["incident", "canary", "--json"], None);
    allow(true);
    assert!(!out.status.success(), "{out:?}");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.trim_end().lines().count(), 1, "{err}");
    assert!(
        err.contains("incident response done on this device")
            && err.contains("locked on this device, but the team was not told"),
        "{err}"
    );
    // The report was written, with what was done here and the rotation step
    // reached (this generic bearer key has no rotation API: not automatic).
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let done = &report["done"];
    assert_eq!(done["tokens_revoked"], 1, "{report}");
    assert!(
        done["team_error"]
            .as_str()
            .is_some_and(|e| e.contains("the team was not told")),
        "{report}"
    );
    assert_eq!(report["rotations"][0]["rotated"], false, "{report}");
    assert!(
        report["rotations"][0]["result"]
            .as_str()
            .is_some_and(|r| r.starts_with("not automatic")),
        "{report}"
    );
    assert_eq!(locks(&b).0, vec!["echo".to_string()]);
    assert!(
        local_records(&b).iter().any(|r| r["detail"]
            .as_str()
            .is_some_and(|d| d.contains("the team was not told"))),
        "no audit record of the failure"
    );

    // A has heard nothing; the same incident again (the rotation is not
    // repeated) tells every device.
    let synced = ok(&a, &["team", "sync"], None);
    assert!(!synced.contains("incident response locked"), "{synced}");
    ok(&b, &["incident", "canary", "--no-rotate"], None);
    let synced = ok(&a, &["team", "sync"], None);
    assert!(
        synced.contains("incident response locked capability \"echo\""),
        "{synced}"
    );
}
