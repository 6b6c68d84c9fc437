//! The state changes the dashboard makes, each the same operation as its
//! command (`approve`/`deny`, `revoke`, `token revoke`, `lock`, `unlock`), each
//! recorded in the audit log with the owner as actor. Every one reaches here
//! only after the session, CSRF and `Origin` checks (`Ui::handle`).

use std::sync::Arc;

use airlock_audit::{Decision, Event, Kind};
use airlock_broker::approval::PendingRecord;
use airlock_broker::state::{self, RevokeTarget};
use airlock_broker::tokens;
use axum::response::{IntoResponse, Response};
use http::{HeaderValue, StatusCode, header};
use serde_json::json;

use crate::html::{esc, page};
use crate::{Form, Ui, html};

/// What the owner did, for the audit record's kind.
pub(crate) enum Action {
    Login,
    Answer,
    Revoke,
    Lock,
    Unlock,
    Scan,
}

/// Appends the owner's action to the audit log (agent `owner`, trusted, and
/// "via the dashboard" in the detail). Returns why it could not, if it could not.
pub(crate) fn audit(ui: &Ui, action: Action, detail: &str) -> Option<String> {
    let (kind, decision) = match action {
        Action::Login => (Kind::Other("ui_login".into()), Decision::Allow),
        Action::Answer => (Kind::Other("ui_answer".into()), Decision::Allow),
        Action::Revoke => (Kind::Revoke, Decision::Deny),
        Action::Lock => (Kind::Lock, Decision::Deny),
        Action::Unlock => (Kind::Unlock, Decision::Allow),
        Action::Scan => (Kind::Other("ui_scan".into()), Decision::Allow),
    };
    let event = Event::new(kind)
        .agent(airlock_broker::OWNER, true)
        .decision(decision)
        .detail(&format!("{detail} (via the dashboard)"));
    let r = airlock_audit::AuditLog::open_home(
        &ui.home,
        &ui.audit_key,
        airlock_audit::Options::default(),
    )
    .and_then(|mut log| log.append(&event).map(|_| ()));
    r.err().map(|e| e.to_string())
}

/// The answer page after an action: what happened, and the way back.
fn done(status: StatusCode, title: &str, message: &str, back: &str, csrf: &str) -> Response {
    let body = format!(
        "<p class=\"result\" id=\"result\">{}</p><p><a href=\"{back}\">Back</a></p>",
        esc(message)
    );
    (status, html(page(title, back, Some(csrf), &body))).into_response()
}

/// Runs a blocking action (files, the control socket) off the async threads.
async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> Option<T> {
    tokio::task::spawn_blocking(f).await.ok()
}

pub(crate) async fn dispatch(
    ui: &Arc<Ui>,
    path: &str,
    form: &Form,
    csrf: &str,
    session: Option<&str>,
) -> Response {
    let ui2 = ui.clone();
    match path {
        "/logout" => {
            if let Some(id) = session {
                ui.logins.end(id);
            }
            let mut r = done(
                StatusCode::OK,
                "Logged out",
                "logged out; restart `airlock ui` (or `airlock serve --ui`) for a new login link",
                "/",
                "",
            );
            let expire = format!(
                "{}=; HttpOnly; SameSite=Strict; Path=/; Max-Age=0",
                crate::guard::COOKIE
            );
            if let Ok(v) = HeaderValue::from_str(&expire) {
                r.headers_mut().insert(header::SET_COOKIE, v);
            }
            r
        }
        "/approvals/answer" => {
            let (Some(id), Some(hash)) = (form.nonempty("id"), form.nonempty("hash")) else {
                return done(
                    StatusCode::BAD_REQUEST,
                    "Approvals",
                    "an answer needs the request's id and the hash you were shown; reload the page",
                    "/approvals",
                    csrf,
                );
            };
            let approve = form.get("approve") == Some("1");
            let (id, hash) = (id.to_owned(), hash.to_owned());
            let r = blocking(move || answer(&ui2, &id, &hash, approve)).await;
            match r {
                Some(Ok(msg)) => done(StatusCode::OK, "Approvals", &msg, "/approvals", csrf),
                Some(Err(msg)) => done(StatusCode::CONFLICT, "Approvals", &msg, "/approvals", csrf),
                None => done(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "Approvals",
                    "internal error",
                    "/approvals",
                    csrf,
                ),
            }
        }
        "/sessions/revoke" | "/tokens/revoke" | "/lock" | "/unlock" => {
            let target = match path {
                "/sessions/revoke" => match (
                    form.nonempty("session"),
                    form.nonempty("agent"),
                    form.get("all"),
                ) {
                    (Some(id), ..) => Some(Op::Revoke(RevokeTarget::Session(id.to_owned()))),
                    (_, Some(a), _) => Some(Op::Revoke(RevokeTarget::Agent(a.to_owned()))),
                    (_, _, Some("1")) => Some(Op::Revoke(RevokeTarget::All)),
                    _ => None,
                },
                "/tokens/revoke" => form.nonempty("id").map(|id| Op::Token(id.to_owned())),
                // The emergency lock and its release ask first: the form on the
                // confirmation page carries confirm=yes.
                "/lock" | "/unlock" if form.get("confirm") != Some("yes") => {
                    return done(
                        StatusCode::BAD_REQUEST,
                        "Sessions & tokens",
                        "not confirmed: use the confirmation page",
                        "/sessions",
                        csrf,
                    );
                }
                "/lock" => Some(Op::Lock),
                _ => Some(Op::Unlock),
            };
            let Some(op) = target else {
                return done(
                    StatusCode::BAD_REQUEST,
                    "Sessions & tokens",
                    "nothing named to revoke",
                    "/sessions",
                    csrf,
                );
            };
            match blocking(move || op.run(&ui2)).await {
                Some(Ok(msg)) => done(StatusCode::OK, "Sessions & tokens", &msg, "/sessions", csrf),
                Some(Err(msg)) => done(
                    StatusCode::BAD_REQUEST,
                    "Sessions & tokens",
                    &msg,
                    "/sessions",
                    csrf,
                ),
                None => done(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "Sessions & tokens",
                    "internal error",
                    "/sessions",
                    csrf,
                ),
            }
        }
        "/exposures/scan" => crate::pages::scan(ui, form, csrf).await,
        _ => (StatusCode::NOT_FOUND, "no such action").into_response(),
    }
}

/// A revocation or the lock.
enum Op {
    Revoke(RevokeTarget),
    Token(String),
    Lock,
    Unlock,
}

impl Op {
    fn run(self, ui: &Ui) -> Result<String, String> {
        let home = &ui.home;
        let msg = match self {
            Op::Revoke(target) => {
                let what = match &target {
                    RevokeTarget::Session(id) => format!("session {id}"),
                    RevokeTarget::Agent(a) => format!("every session of agent \"{a}\""),
                    RevokeTarget::Capability(c) => format!("every session of capability \"{c}\""),
                    _ => "every session".to_owned(),
                };
                let ended = state::revoke(home, &target).map_err(|e| e.to_string())?;
                let toks = match &target {
                    RevokeTarget::Agent(a) => {
                        home.lock().map_err(|e| e.to_string()).and_then(|_l| {
                            tokens::revoke_where(home, |t| &t.agent == a).map_err(|e| e.to_string())
                        })?
                    }
                    RevokeTarget::All => home.lock().map_err(|e| e.to_string()).and_then(|_l| {
                        tokens::revoke_where(home, |_| true).map_err(|e| e.to_string())
                    })?,
                    _ => 0,
                };
                let text =
                    format!("owner revoked {what}: {ended} active session(s), {toks} token(s)");
                let unaudited = audit(ui, Action::Revoke, &text);
                let servers = notify(home);
                finish(
                    format!(
                        "revoked {what}: {ended} active session(s) ended, {toks} agent token(s) revoked; {servers} running server(s) applied it now"
                    ),
                    unaudited,
                )
            }
            Op::Token(id) => {
                let n = home.lock().map_err(|e| e.to_string()).and_then(|_l| {
                    tokens::revoke_where(home, |t| t.id == id).map_err(|e| e.to_string())
                })?;
                if n == 0 {
                    return Err(format!("no active token \"{id}\""));
                }
                let unaudited = audit(ui, Action::Revoke, &format!("owner revoked token {id}"));
                notify(home);
                finish(
                    format!("revoked token {id}: running servers refuse it from its next request"),
                    unaudited,
                )
            }
            Op::Lock => {
                state::engage_lock(home).map_err(|e| e.to_string())?;
                let unaudited = audit(ui, Action::Lock, "owner engaged the emergency lock");
                notify(home);
                finish(
                    "airlock is locked: every running server refuses every request until it is unlocked".into(),
                    unaudited,
                )
            }
            Op::Unlock => {
                if state::release_lock(home).map_err(|e| e.to_string())? {
                    let unaudited = audit(ui, Action::Unlock, "owner released the emergency lock");
                    notify(home);
                    finish(
                        "airlock is unlocked: requests are decided by the policy again".into(),
                        unaudited,
                    )
                } else {
                    "airlock was not locked; nothing changed".into()
                }
            }
        };
        Ok(msg)
    }
}

/// The result line, with a note when the audit record could not be written.
fn finish(msg: String, unaudited: Option<String>) -> String {
    match unaudited {
        None => msg,
        Some(e) => format!("{msg} (the action took effect but could not be audited: {e})"),
    }
}

/// Tells every running server to apply the state files now.
fn notify(home: &airlock_home::Home) -> usize {
    airlock_broker::control::broadcast(home, &json!({"cmd": "reload"})).len()
}

/// Answers a held request through every running server's control socket (the
/// path `airlock approve` / `airlock deny` take), bound to `hash`: the hash of
/// the request as the page showed it (DESIGN.md §7, invariant 13). A server
/// holding `id` for another request refuses the answer.
fn answer(ui: &Ui, id: &str, hash: &str, approve: bool) -> Result<String, String> {
    let request = json!({"cmd": "answer", "id": id, "approve": approve, "hash": hash});
    let answers = airlock_broker::control::broadcast(&ui.home, &request);
    if answers.is_empty() {
        return Err("no airlock server is running on this home, so nothing is waiting".into());
    }
    let verb = if approve { "approved" } else { "denied" };
    if let Some(taken) = answers.iter().find(|a| a["ok"] == json!(true)) {
        let rec: Option<PendingRecord> = serde_json::from_value(taken["approval"].clone()).ok();
        let what = rec.map_or_else(
            || format!("request {id}"),
            |r| {
                format!(
                    "{} {} on \"{}\" for {} (request sha256 {})",
                    r.method,
                    r.url.unwrap_or(r.path),
                    r.capability,
                    r.agent,
                    r.hash
                )
            },
        );
        let unaudited = audit(
            ui,
            Action::Answer,
            &format!("owner {verb} {id}, request sha256 {hash}"),
        );
        return Ok(finish(format!("{verb} {id}: {what}"), unaudited));
    }
    if let Some(other) = answers.iter().find(|a| a["not_pending"] != json!(true)) {
        return Err(format!(
            "the server did not take the answer: {}",
            other["error"].as_str().unwrap_or("no reason given")
        ));
    }
    Err(format!(
        "no pending approval \"{id}\" (it may have timed out or been answered)"
    ))
}
