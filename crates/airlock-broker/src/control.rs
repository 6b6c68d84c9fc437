//! The admin socket (`control.sock`, 0600): how the CLI reaches running servers.
//!
//! Each `serve` process listens on `$AIRLOCK_HOME/control.sock`, or — when another
//! live server holds that name — on `control-<pid>.sock`, so several servers on
//! one home are all reachable. One JSON line in, one JSON line out:
//!
//! | request | answer |
//! |---|---|
//! | `{"cmd":"ping"}` | `{"ok":true,"pid":…}` |
//! | `{"cmd":"sessions"}` | `{"ok":true,"pid":…,"locked":…,"sessions":[{id, agent, capability, grant, remaining_s, ended}]}` — this server's live view |
//! | `{"cmd":"reload"}` | re-reads the configuration, the vault, the revocations and the lock now |
//! | `{"cmd":"approvals"}` | `{"ok":true,"pid":…,"approvals":[{id, agent, agent_trusted, capability, method, path, url, cwd, headers, body_bytes, body_sha256, reason, hash, created, expires, pid}]}` — the requests this server holds for a person's answer, exactly as they would be sent |
//! | `{"cmd":"answer","id":"ap-…","approve":true\|false,"hash":"…"}` | `{"ok":true,"pid":…,"approval":{…}}` — the held request wakes at once, approved or denied; `{"ok":false,"pid":…,"error":…,"not_pending":true}` when this server holds no such id (unknown, timed out, already answered); `hash` (optional) is the request hash the person was shown, and an answer whose hash is not the held request's is refused |
//!
//! For sessions, revocations and the lock, the shared files in `state/` stay the
//! source of truth (they survive restarts and reach servers that were down); the
//! socket makes `revoke`, `lock` and `unlock` apply — and be audited — at once even
//! in a server that is idle, and lets `airlock sessions` show live TTLs.
//!
//! Approvals are different: the socket is the only way an answer reaches a held
//! request (besides the MCP client's own elicitation), and no file is ever read as
//! an answer (DESIGN.md §7, invariant 13; see [`crate::approval`]). `airlock approve`
//! and `airlock deny` send `answer` to every server; exactly one holds the id.
//!
//! Who may talk: the socket is 0600 in the 0700 home, and the server also checks
//! the peer's uid (`SO_PEERCRED`) on every connection and refuses — with
//! `{"ok":false,"error":…}` and nothing done — a peer whose uid is not its own.

use std::path::{Path, PathBuf};

use airlock_home::Home;
use serde_json::{Value, json};

/// The sockets of the servers running on `home` (stale ones are removed).
pub fn sockets(home: &Home) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(home.root()) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for e in entries.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        if name == "control.sock" || (name.starts_with("control-") && name.ends_with(".sock")) {
            out.push(e.path());
        }
    }
    out.sort();
    out
}

/// Sends one request to every running server; returns each answer (a server
/// that does not answer has its stale socket removed).
#[cfg(unix)]
pub fn broadcast(home: &Home, request: &Value) -> Vec<Value> {
    use std::io::{BufRead, BufReader, Write};
    use std::os::unix::net::UnixStream;
    let mut answers = Vec::new();
    for path in sockets(home) {
        let answer = (|| -> std::io::Result<Value> {
            let mut s = UnixStream::connect(&path)?;
            s.set_read_timeout(Some(std::time::Duration::from_secs(5)))?;
            writeln!(s, "{request}")?;
            let mut line = String::new();
            BufReader::new(s).read_line(&mut line)?;
            serde_json::from_str(&line).map_err(std::io::Error::other)
        })();
        match answer {
            Ok(v) => answers.push(v),
            Err(e)
                if e.kind() == std::io::ErrorKind::ConnectionRefused
                    || e.kind() == std::io::ErrorKind::NotFound =>
            {
                let _ = std::fs::remove_file(&path);
            }
            Err(_) => {}
        }
    }
    answers
}

/// Not available off Unix.
#[cfg(not(unix))]
pub fn broadcast(_home: &Home, _request: &Value) -> Vec<Value> {
    Vec::new()
}

/// Picks this server's socket path: `control.sock` unless a live server holds it.
#[cfg(unix)]
pub fn socket_path(home: &Home) -> PathBuf {
    let main = home.root().join("control.sock");
    let live = std::os::unix::net::UnixStream::connect(&main).is_ok();
    if live {
        home.root()
            .join(format!("control-{}.sock", std::process::id()))
    } else {
        let _ = std::fs::remove_file(&main);
        main
    }
}

/// The answer to one request.
pub async fn answer(runtime: &crate::Runtime, request: &str) -> Value {
    let pid = std::process::id();
    let v = serde_json::from_str::<Value>(request).unwrap_or_default();
    match v["cmd"].as_str() {
        Some("ping") => json!({"ok": true, "pid": pid}),
        Some("reload") => {
            runtime.refresh().await;
            json!({"ok": true, "pid": pid})
        }
        Some("sessions") => {
            runtime.refresh().await;
            let sessions: Vec<Value> = runtime
                .broker()
                .sessions()
                .list()
                .into_iter()
                .map(|s| {
                    json!({
                        "id": s.id.as_str(), "agent": s.agent, "capability": s.capability, "grant": s.grant,
                        "remaining_s": s.remaining.map(|d| d.as_secs()),
                        "ended": s.ended.map(|e| format!("{e:?}").to_lowercase()),
                    })
                })
                .collect();
            json!({"ok": true, "pid": pid, "locked": crate::state::is_locked(runtime.home()), "sessions": sessions})
        }
        Some("approvals") => {
            json!({"ok": true, "pid": pid, "approvals": runtime.approvals().list()})
        }
        Some("answer") => {
            let (Some(id), Some(approve)) = (v["id"].as_str(), v["approve"].as_bool()) else {
                return json!({"ok": false, "pid": pid, "error": "answer needs \"id\" (a string) and \"approve\" (true or false)"});
            };
            match runtime.approvals().answer(id, approve, v["hash"].as_str()) {
                Ok(record) => json!({"ok": true, "pid": pid, "approval": record}),
                Err(e @ crate::approval::AnswerError::NotPending(_)) => {
                    json!({"ok": false, "pid": pid, "error": e.to_string(), "not_pending": true})
                }
                Err(e) => json!({"ok": false, "pid": pid, "error": e.to_string()}),
            }
        }
        _ => {
            json!({"ok": false, "pid": pid, "error": "unknown command; expected ping, sessions, reload, approvals or answer"})
        }
    }
}

/// Removes this server's socket (on shutdown).
pub fn remove(path: &Path) {
    let _ = std::fs::remove_file(path);
}
