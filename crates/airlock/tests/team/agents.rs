//! The team's agents and agent-token revocations as rows of the change log:
//! an admin's `team agent add|remove` and any member's `token revoke` reach
//! every device; a member's or a tampered agent row is refused by name.

use super::*;

/// `home`'s team state, device keys and database URL (from its sealed
/// `team/device.sealed`, opened with the home's key file).
pub(crate) fn device_secrets(
    home: &Path,
) -> (
    airlock_team::local::TeamState,
    airlock_team::keys::DeviceKeys,
    String,
) {
    let h = airlock_home::Home::at(home);
    let vault = airlock_vault::LockedVault::load(&h)
        .unwrap()
        .unlock_with_key_file(&h)
        .unwrap();
    let state = airlock_team::local::load_state(&h).unwrap();
    let (keys, url) = airlock_team::local::load_device(&h, &vault, &state.device).unwrap();
    (state, keys, url.to_string())
}

/// Inserts a change row of `kind` on `subject`, signed with `home`'s own
/// device key (as a modified airlock on that device would write it); its seq.
pub(crate) fn signed_by(home: &Path, url: &str, kind: &str, subject: &str) -> String {
    let (state, keys, _) = device_secrets(home);
    let at = jiff::Timestamp::now().as_millisecond();
    let msg = airlock_team::change_msg(&state.team, kind, subject, "", at, &state.device);
    q(
        url,
        &format!(
            "INSERT INTO airlock.changes (kind, subject, body, at, device, sig) \
             VALUES ('{kind}', '{subject}', '', {at}, '{}', '\\x{}') RETURNING seq",
            state.device,
            hex::encode(keys.sign(&msg))
        ),
    )
}

/// The superuser removes a change row (past the append-only trigger).
pub(crate) fn drop_change(admin_url: &str, seq: &str) {
    psql(
        admin_url,
        &format!(
            "ALTER TABLE airlock.changes DISABLE TRIGGER USER; \
             DELETE FROM airlock.changes WHERE seq = {seq}; \
             ALTER TABLE airlock.changes ENABLE TRIGGER USER"
        ),
    );
}

/// `team sync` on `home` fails, naming `needle` as a refused row.
pub(crate) fn sync_refuses(home: &Path, needle: &str) {
    let out = airlock(home, &["team", "sync"], None);
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(!out.status.success(), "sync accepted {needle}");
    assert!(
        err.contains("refused tampered row") && err.contains(needle),
        "wanted {needle} in {err}"
    );
}

/// A token for agent `agent` on `home`, and its public id.
fn token_of(home: &Path, agent: &str) -> (String, String) {
    let t: serde_json::Value = serde_json::from_str(&ok(
        home,
        &["token", "issue", "--agent", agent, "--json"],
        None,
    ))
    .unwrap();
    let token = t["token"].as_str().unwrap().to_string();
    let id = token.split('_').nth(1).unwrap().to_string();
    (token, id)
}

fn stderr_of(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn an_admins_agent_removal_and_a_token_revocation_reach_every_device() {
    let (url, admin_url) = database();
    let (dir, a, b) = team_of_two(&url);
    let c = dir.path().join("c");
    incident::join(&a, &c, &url, "carol");
    share_echo(&a);

    // A defines the team's agents: from then on every device issues tokens
    // only to them.
    let out = ok(&a, &["team", "agent", "add", "ci"], None);
    assert!(out.contains("agent \"ci\" added to the team"), "{out}");
    let log = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
    let mut gateways = Vec::new();
    for h in [&b, &c] {
        let synced = ok(h, &["team", "sync"], None);
        assert!(synced.contains("the team added agent \"ci\""), "{synced}");
        let t = token(h);
        let (serve, addr) = serve_gateway(h, log.clone());
        eventually("serving ci", || served(&gateway_get(&addr, &t)));
        gateways.push((serve, addr, t));
    }
    let out = airlock(&b, &["token", "issue", "--agent", "rogue"], None);
    assert!(
        !out.status.success()
            && stderr_of(&out).contains("agent \"rogue\" is not one of the team's agents"),
        "{out:?}"
    );
    // `airlock proxy --agent` issues its token through the same check: it
    // exits at once instead of serving.
    let mut proxy = Kill(spawn(
        &b,
        &["proxy", "--listen", "127.0.0.1:0", "--agent", "rogue"],
    ));
    eventually("proxy --agent rogue exiting", || {
        proxy.0.try_wait().unwrap().is_some()
    });
    let mut err = String::new();
    proxy
        .0
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    assert!(
        err.contains("agent \"rogue\" is not one of the team's agents"),
        "{err}"
    );
    // So does `airlock serve --agent` (the name the owner gives an MCP client
    // on stdio): a name that is not one of the team's agents gets no server;
    // one of them is served (its stdin closed, the server ends at once,
    // before an MCP client's first request).
    let out = airlock(&b, &["serve", "--agent", "rogue"], None);
    assert!(
        out.status.code() == Some(2)
            && stderr_of(&out).contains("agent \"rogue\" is not one of the team's agents")
            && !stderr_of(&out).contains("serving MCP"),
        "{out:?}"
    );
    let out = airlock(&b, &["serve", "--agent", "ci"], None);
    assert!(
        stderr_of(&out).contains("serving MCP on stdio (agent: ci)")
            && !stderr_of(&out).contains("not one of the team's agents"),
        "{out:?}"
    );
    let list: serde_json::Value =
        serde_json::from_str(&ok(&c, &["team", "agent", "list", "--json"], None)).unwrap();
    assert_eq!(list[0]["name"], "ci");
    assert_eq!(list[0]["status"], "active");
    assert_eq!(list.as_array().unwrap().len(), 1);

    // Bad input: one line, exit 2, nothing sent.
    let head = q(&url, "SELECT max(seq) FROM airlock.changes");
    for (args, says) in [
        (
            &["team", "agent", "add", "ci/../x"][..],
            "invalid agent name",
        ),
        (
            &["token", "revoke", "not-a-token-id"][..],
            "invalid token id",
        ),
    ] {
        let out = airlock(&a, args, None);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        assert!(stderr_of(&out).contains(says), "{out:?}");
    }
    assert_eq!(q(&url, "SELECT max(seq) FROM airlock.changes"), head);

    // A member cannot remove an agent ...
    let out = airlock(&b, &["team", "agent", "remove", "ci"], None);
    assert!(
        stderr_of(&out).contains("only an admin device can add or remove the team's agents"),
        "{out:?}"
    );
    // ... nor can a modified airlock on it: the row, validly signed by the
    // member, is refused by every other device, by name.
    let b_id = device_id(&b);
    let seq = signed_by(&b, &url, "agent-remove", "ci");
    sync_refuses(
        &c,
        &format!("airlock.changes seq={seq}: agent-remove by {b_id}, which is not an admin device"),
    );
    drop_change(&admin_url, &seq);
    // A database writer who edits A's signed row (another agent) is refused too.
    let seq = q(
        &admin_url,
        "INSERT INTO airlock.changes (kind, subject, body, at, device, sig) \
         SELECT kind, 'rogue', body, at, device, sig FROM airlock.changes \
         WHERE kind = 'agent-add' RETURNING seq",
    );
    let a_id = device_id(&a);
    sync_refuses(
        &c,
        &format!("airlock.changes seq={seq}: it is not signed by member device {a_id}"),
    );
    drop_change(&admin_url, &seq);
    ok(&c, &["team", "sync"], None);
    for (_, addr, t) in &gateways {
        assert!(served(&gateway_get(addr, t)));
    }

    // A removes the agent: every gateway refuses its tokens, no device issues
    // it a new one.
    let out = ok(&a, &["team", "agent", "remove", "ci"], None);
    assert!(out.contains("agent \"ci\" removed from the team"), "{out}");
    for (_, addr, t) in &gateways {
        eventually("refusing the removed agent's token", || {
            let r = gateway_get(addr, t);
            !served(&r) && r.contains("revoked")
        });
    }
    // Nor does it serve it MCP on stdio (the agent the owner names in an MCP
    // client's `serve --agent`), nor an egress proxy.
    for args in [
        &["token", "issue", "--agent", "ci"][..],
        &["serve", "--agent", "ci"],
        &["proxy", "--agent", "ci"],
    ] {
        let out = airlock(&c, args, None);
        assert!(
            out.status.code() == Some(2)
                && stderr_of(&out).contains("agent \"ci\" was removed from the team by an admin"),
            "{args:?}: {out:?}"
        );
    }
    // A database writer replays the old add row under a new number: it is
    // older than the removal, so the agent stays removed.
    replay_first(&admin_url, "agent-add");
    let synced = ok(&c, &["team", "sync"], None);
    assert!(!synced.contains("added agent"), "{synced}");
    assert!(
        !airlock(&c, &["token", "issue", "--agent", "ci"], None)
            .status
            .success()
    );

    // A adds it back: C issues two tokens. A revokes the first by its id
    // (A does not hold it): C's gateway refuses it and serves the second.
    ok(&a, &["team", "agent", "add", "ci"], None);
    let (_, c_addr, _) = &gateways[1];
    eventually("C knowing ci again", || {
        airlock(&c, &["token", "issue", "--agent", "ci"], None)
            .status
            .success()
    });
    let (t1, id1) = token_of(&c, "ci");
    let (t2, id2) = token_of(&c, "ci");
    assert!(served(&gateway_get(c_addr, &t1)) && served(&gateway_get(c_addr, &t2)));
    let out = airlock(&a, &["token", "revoke", &id1], None);
    assert!(
        out.status.success() && stderr_of(&out).contains("sent to every device of the team"),
        "{out:?}"
    );
    eventually("C refusing the token A revoked", || {
        !served(&gateway_get(c_addr, &t1))
    });
    assert!(served(&gateway_get(c_addr, &t2)));
    // A member's token revocation counts too (it only takes authority away).
    ok(&b, &["token", "revoke", &id2], None);
    eventually("C refusing the token B revoked", || {
        !served(&gateway_get(c_addr, &t2))
    });
    // Token values never left C: the database holds ids, not tokens.
    let dump = q(
        &admin_url,
        "SELECT string_agg(subject, ' ') FROM airlock.changes",
    );
    assert!(dump.contains(&id1) && !dump.contains(&t1) && !dump.contains(&t2));
}
