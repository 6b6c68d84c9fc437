//! The live view's data: audit records as table rows (server-rendered) and as
//! server-sent events (`/events`), with the same filters and the same escaping.
//!
//! A record holds no secret value by construction (`airlock_audit::Event`: names,
//! the normalized path, query *names*, status, sizes); the dashboard shows it
//! whole and adds nothing.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use airlock_audit::{Decision, Filter, Follow, Record};
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::html::{clean, esc};
use crate::{Form, Ui};

/// How often the stream looks for new records.
const POLL: Duration = Duration::from_millis(200);

/// The most records one poll sends: the page keeps the newest 500 rows, so
/// under heavier traffic the stream sends each interval's newest 500 and skips
/// the older ones (every record stays in the log, `airlock logs` and the record
/// view). This bounds what an open dashboard costs the server at any request
/// rate (issue 17: the gateway within 5 % with the live view open).
const MAX_PER_POLL: usize = 500;

/// The filters of the live view (query parameters `agent`, `capability`,
/// `decision`), and the record to start after (`after`).
#[derive(Clone)]
pub(crate) struct Filters {
    pub(crate) agent: Option<String>,
    pub(crate) capability: Option<String>,
    pub(crate) decision: Option<Decision>,
}

impl Filters {
    pub(crate) fn from(q: &Form) -> Filters {
        Filters {
            agent: q.nonempty("agent").map(str::to_owned),
            capability: q.nonempty("capability").map(str::to_owned),
            decision: match q.get("decision") {
                Some("allow") => Some(Decision::Allow),
                Some("deny") => Some(Decision::Deny),
                _ => None,
            },
        }
    }

    pub(crate) fn audit_filter(&self) -> Filter {
        let mut f = Filter::all();
        if let Some(a) = &self.agent {
            f = f.agent(a);
        }
        if let Some(c) = &self.capability {
            f = f.capability(c);
        }
        f
    }

    pub(crate) fn keeps(&self, r: &Record) -> bool {
        self.decision.is_none_or(|d| r.event.decision == Some(d))
    }

    /// The filters as a query string (for the event stream's URL).
    pub(crate) fn query(&self) -> String {
        let mut s = url::form_urlencoded::Serializer::new(String::new());
        if let Some(a) = &self.agent {
            s.append_pair("agent", a);
        }
        if let Some(c) = &self.capability {
            s.append_pair("capability", c);
        }
        if let Some(d) = self.decision {
            s.append_pair("decision", d.as_str());
        }
        s.finish()
    }
}

/// The newest `n` records that pass `filters`, oldest first.
pub(crate) fn newest(ui: &Ui, filters: &Filters, n: usize) -> Vec<Record> {
    let mut keep = VecDeque::with_capacity(n);
    let dir = ui.home.audit_dir();
    if let Ok(records) = airlock_audit::records(&dir, filters.audit_filter()) {
        for r in records.flatten() {
            if filters.keeps(&r) {
                if keep.len() == n {
                    keep.pop_front();
                }
                keep.push_back(r);
            }
        }
    }
    keep.into()
}

/// One record's row fields, control characters escaped (HTML escaping is the
/// renderer's: [`row`] for the server, `textContent` in the script).
pub(crate) fn view(r: &Record) -> serde_json::Value {
    let e = &r.event;
    let agent = e.agent.as_deref().map_or_else(String::new, |a| {
        let mark = if e.agent_trusted == Some(false) {
            "?"
        } else {
            ""
        };
        format!("{}{mark}", clean(a))
    });
    let request = match (&e.method, &e.path) {
        (Some(m), Some(p)) => format!("{} {}", clean(m), clean(p)),
        (None, Some(p)) => clean(p),
        _ => String::new(),
    };
    let note = [&e.rule, &e.reason, &e.detail]
        .into_iter()
        .flatten()
        .map(|s| clean(s))
        .collect::<Vec<_>>()
        .join(" · ");
    json!({
        "seq": r.seq,
        "ts": format!("{:.0}", r.ts),
        "kind": clean(e.kind.as_str()),
        "agent": agent,
        "capability": e.capability.as_deref().map(clean).unwrap_or_default(),
        "request": request,
        "status": e.status.map(|s| s.to_string()).unwrap_or_default(),
        "decision": e.decision.map(|d| d.as_str()).unwrap_or_default(),
        "note": note,
    })
}

/// The columns of a row, in order.
pub(crate) const COLUMNS: &[(&str, &str)] = &[
    ("seq", "#"),
    ("ts", "time"),
    ("kind", "kind"),
    ("agent", "agent"),
    ("capability", "capability"),
    ("request", "request"),
    ("status", "status"),
    ("decision", "decision"),
    ("note", "rule · reason · detail"),
];

/// A record as a table row (the script builds the same from [`view`]).
pub(crate) fn row(r: &Record) -> String {
    let v = view(r);
    let mut out = format!(
        "<tr class=\"rec {}\" data-seq=\"{}\">",
        esc(v["decision"].as_str().unwrap_or("")),
        r.seq
    );
    for (key, _) in COLUMNS {
        let text = match &v[*key] {
            serde_json::Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        if *key == "seq" {
            out.push_str(&format!("<td><a href=\"/record/{0}\">{0}</a></td>", r.seq));
        } else {
            out.push_str(&format!("<td>{}</td>", esc(&text)));
        }
    }
    out.push_str("</tr>");
    out
}

/// `/events?after=SEQ&agent=…`: every record after `after` that passes the
/// filters, as it is written (polled every 200 ms), one `data:` JSON per record.
pub(crate) fn events(ui: &Arc<Ui>, q: &Form) -> Response {
    let filters = Filters::from(q);
    let after: u64 = q.get("after").and_then(|s| s.parse().ok()).unwrap_or(0);
    let dir = ui.home.audit_dir();
    let follow = Follow::from_start(&dir, filters.audit_filter()).ok();
    struct St {
        follow: Option<Follow>,
        filters: Filters,
        after: u64,
        ready: VecDeque<serde_json::Value>,
        dir: std::path::PathBuf,
    }
    let st = St {
        follow,
        filters,
        after,
        ready: VecDeque::new(),
        dir,
    };
    let stream = futures_util::stream::unfold(st, |mut st| async move {
        loop {
            if let Some(v) = st.ready.pop_front() {
                let ev = SseEvent::default()
                    .id(v["seq"].to_string())
                    .data(v.to_string());
                return Some((Ok::<_, Infallible>(ev), st));
            }
            tokio::time::sleep(POLL).await;
            // The log may not exist yet when the page opens: start following once it does.
            let mut follow = match st.follow.take() {
                Some(f) => f,
                None => match Follow::from_start(&st.dir, st.filters.audit_filter()) {
                    Ok(f) => f,
                    Err(_) => continue,
                },
            };
            let (filters, after) = (st.filters.clone(), st.after);
            let (follow, polled) = match tokio::task::spawn_blocking(move || {
                let r = follow.poll_newest(MAX_PER_POLL, |r| r.seq > after && filters.keeps(r));
                (follow, r)
            })
            .await
            {
                Ok(x) => x,
                Err(_) => return None,
            };
            st.follow = Some(follow);
            let kept = polled.unwrap_or_default();
            if let Some(last) = kept.last() {
                st.after = last.seq;
            }
            st.ready.extend(kept.iter().map(view));
        }
    });
    Sse::new(stream)
        .keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
        .into_response()
}
