//! Audit checkpoints are written by one designated admin device (the root
//! admin until an admin designates another), not by every admin device.

use super::*;

#[test]
fn only_the_designated_admin_device_writes_audit_checkpoints() {
    let (url, admin_url) = database();
    let dir = tempfile::tempdir().unwrap();
    let (a, b, c) = (
        dir.path().join("a"),
        dir.path().join("b"),
        dir.path().join("c"),
    );
    ok(&a, &["team", "init", "--db", &url, "--name", "alice"], None);
    let code = ok(&a, &["team", "invite", "--admin"], None);
    let joined = ok(
        &b,
        &["team", "join", "--db", &url, code.trim(), "--name", "bob"],
        None,
    );
    let b_fp = fingerprint(&joined);
    ok(&a, &["team", "approve", &b_fp], None);
    incident::join(&a, &c, &url, "carol");
    let (a_id, b_id, c_id) = (device_id(&a), device_id(&b), device_id(&c));
    for h in [&a, &b, &c] {
        ok(h, &["token", "issue", "--agent", "x"], None);
    }

    // B is an admin, but the root (A) is the checkpointer: B's sync uploads
    // and writes no checkpoint; A's does.
    let synced = ok(&b, &["team", "sync"], None);
    assert!(
        synced.contains("audit: ") && !synced.contains("checkpoint"),
        "{synced}"
    );
    let status = ok(&b, &["team", "status"], None);
    assert!(
        status.contains(&format!(
            "audit checkpoints by: {} (alice)",
            airlock_team::keys::fingerprint(&a_id)
        )),
        "{status}"
    );
    ok(&c, &["team", "sync"], None);
    let synced = ok(&a, &["team", "sync"], None);
    assert!(synced.contains("audit: checkpoint 1 signed"), "{synced}");

    // Only an admin designates, and only an admin device.
    let out = airlock(&c, &["team", "checkpointer", &b_fp], None);
    assert!(
        String::from_utf8_lossy(&out.stderr)
            .contains("only an admin device can designate the audit checkpointer"),
        "{out:?}"
    );
    let c_fp = airlock_team::keys::fingerprint(&c_id);
    stderr_says(
        &a,
        &["team", "checkpointer", &c_fp],
        "is not an approved admin device",
    );
    // A modified airlock on the member signs a designation of itself: refused
    // by every device, by name.
    let seq = agents::signed_by(&c, &url, "checkpointer", &c_id);
    agents::sync_refuses(
        &a,
        &format!("airlock.changes seq={seq}: checkpointer by {c_id}, which is not an admin device"),
    );
    agents::drop_change(&admin_url, &seq);

    // A designates B: from then on B checkpoints and A does not.
    let out = ok(&a, &["team", "checkpointer", &b_fp], None);
    assert!(out.contains("writes the team's audit checkpoints"), "{out}");
    ok(&c, &["token", "issue", "--agent", "y"], None);
    ok(&c, &["team", "sync"], None);
    let synced = ok(&a, &["team", "sync"], None);
    assert!(
        synced.contains(&format!(
            "audit checkpoints are now written by device {b_fp}"
        )) && !synced.contains("audit: checkpoint"),
        "{synced}"
    );
    let synced = ok(&b, &["team", "sync"], None);
    assert!(synced.contains("audit: checkpoint 2 signed"), "{synced}");
    assert_eq!(
        q(
            &url,
            "SELECT string_agg(device, ',' ORDER BY seq) FROM airlock.audit_checkpoints"
        ),
        format!("{a_id},{b_id}")
    );
    // Both checkpoints verify (each was an admin's when it was written).
    let verified = ok(&c, &["audit", "verify", "--team"], None);
    assert!(verified.contains("2 checkpoint(s) verified"), "{verified}");
}
