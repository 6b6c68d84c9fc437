//! A new database credential after a device's removal: an admin's `team
//! set-db-url` reaches every remaining device, sealed under the team key of
//! the epoch the removed device does not hold; once the old credential is
//! taken away, the removed device cannot even connect.

use super::*;

/// The database URL sealed in `home`'s `team/device.sealed`.
fn sealed_url(home: &Path) -> String {
    agents::device_secrets(home).2
}

/// `url` with its user and password replaced.
fn with_login(url: &str, user: &str, password: &str) -> String {
    let (scheme, rest) = url.split_once("://").unwrap();
    let host = rest.split_once('@').unwrap().1;
    format!("{scheme}://{user}:{password}@{host}")
}

#[test]
fn after_a_revocation_an_admin_hands_every_remaining_device_a_new_database_credential() {
    let (app_url, admin_url) = database();
    // The team logs in as a role of its own, as a DBA would set it up, so
    // that it can be locked out without touching the other tests' role.
    let old = format!("team_old_{}", std::process::id());
    let new = format!("team_new_{}", std::process::id());
    psql(
        &admin_url,
        &format!("CREATE ROLE {old} LOGIN PASSWORD 'first-credential-4Kq' IN ROLE airlock_app"),
    );
    let url = with_login(&app_url, &old, "first-credential-4Kq");
    let (dir, a, b) = team_of_two(&url);
    let c = dir.path().join("c");
    incident::join(&a, &c, &url, "carol");
    share_echo(&a);
    ok(&c, &["team", "sync"], None);
    ok(&b, &["team", "sync"], None);
    let t = token(&b);
    let log = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
    let (_serve, addr) = serve_gateway(&b, log.clone());
    eventually("B serving", || served(&gateway_get(&addr, &t)));

    // A removes C; the DBA makes a new login role (a member of the old one,
    // which owns the tables) and A hands its URL to the team.
    let c_fp = airlock_team::keys::fingerprint(&device_id(&c));
    let out = ok(&a, &["team", "revoke-device", &c_fp], None);
    assert!(out.contains("new team key epoch 2"), "{out}");
    let password = "second-credential-9Zt";
    psql(
        &admin_url,
        &format!("CREATE ROLE {new} LOGIN PASSWORD '{password}' IN ROLE {old}"),
    );
    let new_url = with_login(&app_url, &new, password);
    // A URL that does not reach this team is refused, and nothing is kept.
    let out = airlock(
        &a,
        &["team", "set-db-url"],
        Some(&with_login(&app_url, &new, "wrong")),
    );
    assert!(!out.status.success(), "{out:?}");
    assert_eq!(sealed_url(&a), url);
    let out = ok(&a, &["team", "set-db-url"], Some(&new_url));
    assert!(out.contains("sent to every device of the team"), "{out}");
    assert_eq!(sealed_url(&a), new_url);
    // B's running server adopts it from the change log.
    eventually("B on the new URL", || sealed_url(&b) == new_url);
    // The database holds it sealed only.
    let rows = q(
        &admin_url,
        "SELECT string_agg(subject || body, ' ') FROM airlock.changes",
    );
    assert!(!rows.contains(password) && !rows.contains(&new), "{rows}");
    // Nor does any output or any file of either home show the password.
    assert!(!out.contains(password), "{out}");
    for home in [&a, &b] {
        for (path, bytes) in files_under(home) {
            let text = String::from_utf8_lossy(&bytes);
            assert!(
                !text.contains(password),
                "{} holds the password",
                path.display()
            );
        }
    }

    // The DBA takes the old credential away and ends its sessions.
    psql(
        &admin_url,
        &format!(
            "ALTER ROLE {old} NOLOGIN; \
             SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = '{old}'"
        ),
    );
    // B follows the team through the new credential: A's revocation reaches it.
    ok(&a, &["revoke", "--all"], None);
    eventually("B refusing after A's revoke --all", || {
        !served(&gateway_get(&addr, &t))
    });
    caught_up(&b);
    // C, removed, never got the new URL (it holds no key of epoch 2), and its
    // old credential no longer logs in.
    assert_eq!(sealed_url(&c), url);
    let out = airlock(&c, &["team", "sync"], None);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && err.contains("not permitted to log in"),
        "{err}"
    );

    // A URL row signed by a member device is refused by every device, by name.
    let b_id = device_id(&b);
    let seq = agents::signed_by(&b, &new_url, "db-url", "2");
    agents::sync_refuses(
        &a,
        &format!("airlock.changes seq={seq}: db-url by {b_id}, which is not an admin device"),
    );
    agents::drop_change(&admin_url, &seq);
    ok(&a, &["team", "sync"], None);
}

/// Every file under `dir` with its bytes.
fn files_under(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let path = entry.path();
        if path.is_dir() {
            out.extend(files_under(&path));
        } else if let Ok(bytes) = std::fs::read(&path) {
            out.push((path, bytes));
        }
    }
    out
}

/// `team status --json` on `home`.
fn status_json(home: &Path) -> serde_json::Value {
    serde_json::from_str(&ok(home, &["team", "status", "--json"], None)).unwrap()
}

/// The fingerprints `team status --json` on `home` lists as not on the
/// newest database URL, sorted.
fn not_moved(home: &Path) -> Vec<String> {
    let mut fps: Vec<String> = status_json(home)["db_url"]["not_moved"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f.as_str().unwrap().to_string())
        .collect();
    fps.sort();
    fps
}

#[test]
fn team_status_names_the_devices_not_yet_on_the_newest_database_url() {
    let (app_url, admin_url) = database();
    let (dir, a, b) = team_of_two(&app_url);
    let c = dir.path().join("c");
    incident::join(&a, &c, &app_url, "carol");
    let fp = |h: &Path| airlock_team::keys::fingerprint(&device_id(h));
    let (a_fp, b_fp, c_fp) = (fp(&a), fp(&b), fp(&c));

    // No admin has sent a URL: nobody is behind; each device reports the URL
    // it enrolled with at its sync.
    ok(&b, &["team", "sync"], None);
    ok(&c, &["team", "sync"], None);
    let status = ok(&a, &["team", "status"], None);
    assert!(status.contains("no admin has sent one"), "{status}");
    assert!(not_moved(&a).is_empty());
    let reports = q(
        &admin_url,
        "SELECT string_agg(url_at::text, ',') FROM airlock.device_db_urls",
    );
    assert_eq!(reports, "0,0", "B and C report the URL they enrolled with");

    // A sends a new URL (a new login role, a member of the old one): A is on
    // it, B and C are named as not moved until each has synced.
    let role = format!("team_next_{}", std::process::id());
    psql(
        &admin_url,
        &format!("CREATE ROLE {role} LOGIN PASSWORD 'next-credential-3Hw' IN ROLE airlock_app"),
    );
    let new_url = with_login(&app_url, &role, "next-credential-3Hw");
    ok(&a, &["team", "set-db-url"], Some(&new_url));
    let mut both = vec![b_fp.clone(), c_fp.clone()];
    both.sort();
    assert_eq!(not_moved(&a), both);
    let status = ok(&a, &["team", "status"], None);
    assert!(
        status.contains("1 of 3 device(s) moved to it")
            && status.contains(&format!("{b_fp} (bob): on the URL it enrolled with"))
            && status.contains(&format!("{c_fp} (carol): on the URL it enrolled with"))
            && !status.contains(&format!("  {a_fp} (alice):")),
        "{status}"
    );
    let newest = status_json(&a)["db_url"]["newest"]["at"].as_i64().unwrap();

    ok(&b, &["team", "sync"], None);
    assert_eq!(sealed_url(&b), new_url);
    assert_eq!(not_moved(&a), vec![c_fp.clone()]);
    let b_row = status_json(&a)["db_url"]["devices"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["fingerprint"] == b_fp.as_str())
        .cloned()
        .unwrap();
    assert!(
        b_row["url_at"] == newest && b_row["moved"] == true,
        "{b_row}"
    );

    // A database writer cannot make C look moved: a row it did not sign is
    // refused, and C is still named.
    let c_id = device_id(&c);
    psql(
        &admin_url,
        &format!("UPDATE airlock.device_db_urls SET url_at = {newest} WHERE device = '{c_id}'"),
    );
    assert_eq!(not_moved(&a), vec![c_fp.clone()]);
    let status = ok(&a, &["team", "status"], None);
    assert!(
        status.contains(&format!(
            "{c_fp} (carol): its row in airlock.device_db_urls is not signed by it (refused)"
        )),
        "{status}"
    );
    // Nor by copying B's signed row to C.
    let b_id = device_id(&b);
    psql(
        &admin_url,
        &format!(
            "UPDATE airlock.device_db_urls SET (url_at, at, sig) = \
             (SELECT url_at, at, sig FROM airlock.device_db_urls WHERE device = '{b_id}') \
             WHERE device = '{c_id}'"
        ),
    );
    assert_eq!(not_moved(&a), vec![c_fp.clone()]);

    // C syncs: it moves, says so, and nobody is left.
    ok(&c, &["team", "sync"], None);
    assert!(not_moved(&a).is_empty());
    let status = ok(&b, &["team", "status"], None);
    assert!(
        status.contains("3 of 3 device(s) moved to it")
            && status.contains("every approved device uses it"),
        "{status}"
    );
}
