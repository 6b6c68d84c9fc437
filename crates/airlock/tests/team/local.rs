//! Local mode, the default: a home that never joined a team goes through the
//! local store only. Every command that a team device shares with its team
//! works here with no database (this test starts none), says nothing about a
//! team, and leaves no team file behind.

use super::*;

/// `airlock ARGS` on `home` succeeds; its stdout and stderr, appended to `said`.
fn run_ok(home: &Path, args: &[&str], stdin: Option<&str>, said: &mut String) -> String {
    let out = airlock(home, args, stdin);
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    );
    assert!(out.status.success(), "airlock {args:?}: {stdout}{stderr}");
    said.push_str(&stdout);
    said.push_str(&stderr);
    stdout
}

#[test]
fn local_mode_revokes_locks_and_stores_secrets_with_no_database_and_no_team() {
    let dir = tempfile::tempdir().unwrap();
    let h = dir.path().join("home");
    let mut said = String::new();
    run_ok(
        &h,
        &["secret", "set", "canary", "--stdin"],
        Some(CANARY),
        &mut said,
    );
    echo_config(&h, upstream());
    let t = token(&h);
    let (_serve, addr) = serve_gateway(&h, Default::default());
    assert!(served(&gateway_get(&addr, &t)));

    // A rotation reaches the running server: the upstream refuses the new
    // value, then takes the canary again.
    run_ok(
        &h,
        &["secret", "rotate", "canary", "--stdin"],
        Some("not-the-canary"),
        &mut said,
    );
    eventually("the rotated value sent upstream", || {
        gateway_get(&addr, &t).contains("401")
    });
    let out = run_ok(
        &h,
        &["secret", "rotate", "canary", "--stdin"],
        Some(CANARY),
        &mut said,
    );
    assert!(out.contains("now version 3"), "{out}");
    eventually("the canary again", || served(&gateway_get(&addr, &t)));
    run_ok(
        &h,
        &["secret", "set", "spare", "--stdin"],
        Some("x"),
        &mut said,
    );
    run_ok(&h, &["secret", "rm", "spare"], None, &mut said);

    // Revocations, the lock, an incident and their release hold at once.
    run_ok(&h, &["revoke", "--all"], None, &mut said);
    assert!(!served(&gateway_get(&addr, &t)));
    let t = token(&h);
    assert!(served(&gateway_get(&addr, &t)));
    run_ok(&h, &["lock"], None, &mut said);
    assert!(!served(&gateway_get(&addr, &t)));
    run_ok(&h, &["unlock"], None, &mut said);
    assert!(served(&gateway_get(&addr, &t)));
    let out = run_ok(
        &h,
        &["incident", "--agent", "ci", "--no-rotate"],
        None,
        &mut said,
    );
    assert!(out.contains("incident response for"), "{out}");
    assert!(!served(&gateway_get(&addr, &token(&h))));
    run_ok(&h, &["unlock"], None, &mut said);
    let t = token(&h);
    assert!(served(&gateway_get(&addr, &t)));

    // Tokens: any agent name is issued one (no team defines the agents); a
    // revocation by id holds; an id this home does not hold is an error.
    let id = t.split('_').nth(1).unwrap().to_string();
    run_ok(&h, &["token", "revoke", &id], None, &mut said);
    assert!(!served(&gateway_get(&addr, &t)));
    let out = airlock(&h, &["token", "revoke", "0123456789ab"], None);
    assert!(
        !out.status.success()
            && String::from_utf8_lossy(&out.stderr).contains("no active token \"0123456789ab\""),
        "{out:?}"
    );
    run_ok(
        &h,
        &["token", "issue", "--agent", "any-name"],
        None,
        &mut said,
    );
    // `serve --agent` (stdio MCP) serves any name: it gets as far as serving
    // (stdin closed, it ends at once, before an MCP client's first request).
    let out = airlock(&h, &["serve", "--agent", "any-name"], None);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("serving MCP on stdio (agent: any-name)"),
        "{err}"
    );
    said.push_str(&err);
    let out = airlock(&h, &["doctor"], None);
    said.push_str(&String::from_utf8_lossy(&out.stdout));
    said.push_str(&String::from_utf8_lossy(&out.stderr));

    // The team-wide audit is not there, and says why.
    for args in [&["logs", "--team"][..], &["audit", "verify", "--team"]] {
        stderr_says(&h, args, "this airlock home is not in team mode");
    }

    // Nothing of team mode: no team file, no word about a team.
    assert!(!h.join("team").exists());
    assert!(
        !said.to_ascii_lowercase().contains("team"),
        "local mode mentioned a team: {said}"
    );
}
