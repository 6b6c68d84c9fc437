//! What one audit record holds, and its one canonical line format.
//!
//! A line is the compact JSON object below, members in this order, absent
//! optional members omitted, followed by `\n`:
//!
//! ```text
//! {"ts":…,"seq":…,"kind":…,"of":…,"agent":…,"agent_trusted":…,"session":…,"capability":…,
//!  "method":…,"path":…,"query_keys":[…],"status":…,"duration_ms":…,"decision":…,
//!  "rule":…,"reason":…,"bytes_in":…,"bytes_out":…,"detail":…,"prev":…,"mac":…}
//! ```
//!
//! The MAC covers the *bytes as written*: the line without its trailing
//! `,"mac":"<64 hex>"}` and newline, closed with `}` — which is exactly the canonical
//! serialization of the record without `mac`. Verifiers never re-serialize, so
//! the chain does not depend on a JSON library's formatting choices.

use std::borrow::Cow;
use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use crate::chain::Mac;
use crate::error::{AuditError, LineError};

/// The longest line the reader accepts (1 MiB). The writer's own lines are far
/// shorter: every string field is capped (see [`Event`]).
pub const MAX_LINE: usize = 1 << 20;

/// Cap, in bytes, of most string fields; longer values are cut at a character
/// boundary and end in `…`. Agents choose `reason` and, indirectly, `path`: the cap
/// keeps one request from writing megabytes into the log.
pub const MAX_FIELD: usize = 1024;
/// Cap of `path`.
pub const MAX_PATH: usize = 2048;
/// Cap of `detail`.
pub const MAX_DETAIL: usize = 4096;
/// At most this many names are kept in `query_keys` (each capped at 128 bytes).
pub const MAX_QUERY_KEYS: usize = 64;

/// The `mac` member that ends every line: `,"mac":"` + 64 hex digits + `"}`.
const MAC_PREFIX: &[u8] = b",\"mac\":\"";
const MAC_SUFFIX_LEN: usize = MAC_PREFIX.len() + 64 + 2;

/// What happened. Known kinds are variants; any other valid name is kept as
/// [`Kind::Other`], so a log written by a newer airlock still reads.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Kind {
    /// An HTTP request through MCP `execute` or the gateway.
    Request,
    /// A program run through `exec` / `run` / `wrap`.
    Exec,
    /// How an allowed `request` or `exec` ended (status, bytes, duration): the
    /// second half of a write-ahead pair, naming its decision record in `of`.
    Outcome,
    /// An MCP tool call that is not itself a request (`list_services`, `whoami`…).
    ToolCall,
    /// A gateway token was issued.
    TokenIssue,
    /// A gateway token was presented.
    TokenUse,
    /// Sessions were revoked.
    Revoke,
    /// The emergency lock was engaged.
    Lock,
    /// The emergency lock was released.
    Unlock,
    /// A person approved a held request.
    Approve,
    /// A person denied a held request.
    Deny,
    /// Nobody answered an approval request in time.
    ApprovalTimeout,
    /// The configuration was reloaded.
    ConfigReload,
    /// A session started.
    SessionStart,
    /// A session ended (TTL, revocation, lock).
    SessionEnd,
    /// The audit log repaired itself (torn final record removed, anchor rebuilt);
    /// written by this crate, never by callers.
    AuditRepair,
    /// Any other kind: 1-64 of `a-z 0-9 _`, starting with a letter.
    Other(String),
}

const KNOWN_KINDS: &[(&str, Kind)] = &[
    ("request", Kind::Request),
    ("exec", Kind::Exec),
    ("outcome", Kind::Outcome),
    ("tool_call", Kind::ToolCall),
    ("token_issue", Kind::TokenIssue),
    ("token_use", Kind::TokenUse),
    ("revoke", Kind::Revoke),
    ("lock", Kind::Lock),
    ("unlock", Kind::Unlock),
    ("approve", Kind::Approve),
    ("deny", Kind::Deny),
    ("approval_timeout", Kind::ApprovalTimeout),
    ("config_reload", Kind::ConfigReload),
    ("session_start", Kind::SessionStart),
    ("session_end", Kind::SessionEnd),
    ("audit_repair", Kind::AuditRepair),
];

impl Kind {
    /// The name written to the log.
    pub fn as_str(&self) -> &str {
        match self {
            Kind::Other(name) => name,
            known => KNOWN_KINDS
                .iter()
                .find(|(_, k)| k == known)
                .map_or("other", |(name, _)| name),
        }
    }
}

impl FromStr for Kind {
    type Err = AuditError;
    fn from_str(s: &str) -> Result<Kind, AuditError> {
        if let Some((_, kind)) = KNOWN_KINDS.iter().find(|(name, _)| *name == s) {
            return Ok(kind.clone());
        }
        let valid = !s.is_empty()
            && s.len() <= 64
            && s.as_bytes()[0].is_ascii_lowercase()
            && s.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
        if valid {
            Ok(Kind::Other(s.to_owned()))
        } else {
            Err(AuditError::InvalidKind(s.to_owned()))
        }
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The policy's answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Decision {
    /// The request was allowed.
    Allow,
    /// The request was refused.
    Deny,
}

impl Decision {
    /// `allow` or `deny`.
    pub fn as_str(self) -> &'static str {
        match self {
            Decision::Allow => "allow",
            Decision::Deny => "deny",
        }
    }
}

/// What a caller records: everything but the timestamp, the sequence number and
/// the chain, which [`crate::AuditLog::append`] adds.
///
/// Never put a secret value, a request or response body, a header value or a query
/// value in any field. `path` is the normalized path that was matched and sent;
/// `query_keys` holds parameter *names* only. String fields are capped
/// ([`MAX_FIELD`], [`MAX_PATH`], [`MAX_DETAIL`]) when written.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Event {
    /// What happened.
    pub kind: Kind,
    /// For an [`Kind::Outcome`]: the `seq` of the decision record it completes.
    pub of: Option<u64>,
    /// The agent identity airlock saw.
    pub agent: Option<String>,
    /// Whether that identity was set by the owner (`serve --agent`, a token) rather
    /// than self-declared by the client.
    pub agent_trusted: Option<bool>,
    /// The session id.
    pub session: Option<String>,
    /// The capability used.
    pub capability: Option<String>,
    /// The HTTP method (upper case).
    pub method: Option<String>,
    /// The normalized path that was checked and sent (or the program, for exec).
    pub path: Option<String>,
    /// Names of the query parameters, never their values.
    pub query_keys: Vec<String>,
    /// HTTP status returned to the agent, or the exit code for exec.
    pub status: Option<u16>,
    /// Time from the request to the answer.
    pub duration_ms: Option<u64>,
    /// The policy's decision.
    pub decision: Option<Decision>,
    /// The rule (or check) that decided.
    pub rule: Option<String>,
    /// The reason the agent gave, or why the request was refused.
    pub reason: Option<String>,
    /// Bytes received from the agent.
    pub bytes_in: Option<u64>,
    /// Bytes returned to the agent.
    pub bytes_out: Option<u64>,
    /// Anything else worth keeping, in words. Never a secret.
    pub detail: Option<String>,
}

impl Event {
    /// An event of `kind` with every other field empty.
    pub fn new(kind: Kind) -> Event {
        Event {
            kind,
            of: None,
            agent: None,
            agent_trusted: None,
            session: None,
            capability: None,
            method: None,
            path: None,
            query_keys: Vec::new(),
            status: None,
            duration_ms: None,
            decision: None,
            rule: None,
            reason: None,
            bytes_in: None,
            bytes_out: None,
            detail: None,
        }
    }
    /// A [`Kind::Request`] for `method path` on `capability`.
    pub fn request(capability: &str, method: &str, path: &str) -> Event {
        Event::new(Kind::Request)
            .capability(capability)
            .method(method)
            .path(path)
    }
    /// The outcome record that completes the write-ahead decision record `seq`:
    /// this event's fields, as [`Kind::Outcome`] with `of = seq`.
    pub fn outcome_of(mut self, seq: u64) -> Event {
        self.kind = Kind::Outcome;
        self.of = Some(seq);
        self
    }
    /// Whether this is a write-ahead decision record: an allowed `request` or
    /// `exec` with no outcome in it (neither `status` nor `duration_ms`), written
    /// before anything was sent; the [`Kind::Outcome`] record whose `of` is its
    /// `seq` completes it. One-record events (a refusal) carry
    /// their outcome and need none.
    pub fn awaits_outcome(&self) -> bool {
        matches!(self.kind, Kind::Request | Kind::Exec)
            && self.decision == Some(Decision::Allow)
            && self.status.is_none()
            && self.duration_ms.is_none()
    }
    /// Sets the agent and whether its identity is trusted.
    pub fn agent(mut self, name: &str, trusted: bool) -> Event {
        self.agent = Some(name.to_owned());
        self.agent_trusted = Some(trusted);
        self
    }
    /// Sets the session id.
    pub fn session(mut self, id: &str) -> Event {
        self.session = Some(id.to_owned());
        self
    }
    /// Sets the capability.
    pub fn capability(mut self, name: &str) -> Event {
        self.capability = Some(name.to_owned());
        self
    }
    /// Sets the method.
    pub fn method(mut self, method: &str) -> Event {
        self.method = Some(method.to_owned());
        self
    }
    /// Sets the normalized path.
    pub fn path(mut self, path: &str) -> Event {
        self.path = Some(path.to_owned());
        self
    }
    /// Sets the query parameter names (values must never be passed here).
    pub fn query_keys<I, S>(mut self, names: I) -> Event
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.query_keys = names.into_iter().map(Into::into).collect();
        self
    }
    /// Sets the status.
    pub fn status(mut self, status: u16) -> Event {
        self.status = Some(status);
        self
    }
    /// Sets the duration (stored in whole milliseconds).
    pub fn duration(mut self, elapsed: Duration) -> Event {
        self.duration_ms = Some(u64::try_from(elapsed.as_millis()).unwrap_or(u64::MAX));
        self
    }
    /// Sets the decision.
    pub fn decision(mut self, decision: Decision) -> Event {
        self.decision = Some(decision);
        self
    }
    /// Sets the deciding rule.
    pub fn rule(mut self, rule: &str) -> Event {
        self.rule = Some(rule.to_owned());
        self
    }
    /// Sets the reason.
    pub fn reason(mut self, reason: &str) -> Event {
        self.reason = Some(reason.to_owned());
        self
    }
    /// Sets the byte counts.
    pub fn bytes(mut self, bytes_in: u64, bytes_out: u64) -> Event {
        self.bytes_in = Some(bytes_in);
        self.bytes_out = Some(bytes_out);
        self
    }
    /// Sets the detail.
    pub fn detail(mut self, detail: &str) -> Event {
        self.detail = Some(detail.to_owned());
        self
    }
}

/// One record as read back from the log.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Record {
    /// When it was appended (UTC).
    pub ts: Timestamp,
    /// Position in the chain, from 1, strictly +1.
    pub seq: u64,
    /// What was recorded.
    pub event: Event,
    /// The previous record's MAC (all zero for seq 1).
    pub prev: Mac,
    /// This record's MAC.
    pub mac: Mac,
}

/// The canonical member order, borrowed for writing.
#[derive(Serialize)]
struct WireOut<'a> {
    ts: &'a str,
    seq: u64,
    kind: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    of: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    agent: Option<Cow<'a, str>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    agent_trusted: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    session: Option<Cow<'a, str>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    capability: Option<Cow<'a, str>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    method: Option<Cow<'a, str>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    path: Option<Cow<'a, str>>,
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    query_keys: Vec<Cow<'a, str>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    status: Option<u16>,
    #[serde(skip_serializing_if = "Option::is_none")]
    duration_ms: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    decision: Option<Decision>,
    #[serde(skip_serializing_if = "Option::is_none")]
    rule: Option<Cow<'a, str>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: Option<Cow<'a, str>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    bytes_in: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    bytes_out: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    detail: Option<Cow<'a, str>>,
    prev: &'a str,
}

/// The same members, owned, for reading. Unknown members are ignored so that a
/// newer writer's extra fields do not make old readers fail (the MAC covers them).
#[derive(Deserialize)]
struct WireIn {
    ts: String,
    seq: u64,
    kind: String,
    #[serde(default)]
    of: Option<u64>,
    #[serde(default)]
    agent: Option<String>,
    #[serde(default)]
    agent_trusted: Option<bool>,
    #[serde(default)]
    session: Option<String>,
    #[serde(default)]
    capability: Option<String>,
    #[serde(default)]
    method: Option<String>,
    #[serde(default)]
    path: Option<String>,
    #[serde(default)]
    query_keys: Vec<String>,
    #[serde(default)]
    status: Option<u16>,
    #[serde(default)]
    duration_ms: Option<u64>,
    #[serde(default)]
    decision: Option<Decision>,
    #[serde(default)]
    rule: Option<String>,
    #[serde(default)]
    reason: Option<String>,
    #[serde(default)]
    bytes_in: Option<u64>,
    #[serde(default)]
    bytes_out: Option<u64>,
    #[serde(default)]
    detail: Option<String>,
    prev: String,
}

/// Cuts `s` to at most `max` bytes at a character boundary, marking the cut.
fn cap(s: &str, max: usize) -> Cow<'_, str> {
    if s.len() <= max {
        return Cow::Borrowed(s);
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    Cow::Owned(format!("{}…", &s[..end]))
}

fn cap_opt(s: &Option<String>, max: usize) -> Option<Cow<'_, str>> {
    s.as_deref().map(|s| cap(s, max))
}

/// [`cap`] of an owned field, as read back.
fn capped(s: Option<String>, max: usize) -> Option<String> {
    s.map(|s| match cap(&s, max) {
        Cow::Borrowed(_) => s,
        Cow::Owned(c) => c,
    })
}

/// A `query_keys` name is capped at this many bytes.
const MAX_QUERY_KEY: usize = 128;

/// The timestamp as written: RFC 3339, UTC, millisecond precision.
pub(crate) fn format_ts(ts: Timestamp) -> String {
    format!("{ts:.3}")
}

/// Serializes the record without its MAC: the MAC input. Ends in `}`.
pub(crate) fn canonical_body(ts: &str, seq: u64, event: &Event, prev: &Mac) -> Vec<u8> {
    let prev = prev.to_hex();
    let wire = WireOut {
        ts,
        seq,
        kind: event.kind.as_str(),
        of: event.of,
        agent: cap_opt(&event.agent, MAX_FIELD),
        agent_trusted: event.agent_trusted,
        session: cap_opt(&event.session, MAX_FIELD),
        capability: cap_opt(&event.capability, MAX_FIELD),
        method: cap_opt(&event.method, MAX_FIELD),
        path: cap_opt(&event.path, MAX_PATH),
        query_keys: event
            .query_keys
            .iter()
            .take(MAX_QUERY_KEYS)
            .map(|k| cap(k, MAX_QUERY_KEY))
            .collect(),
        status: event.status,
        duration_ms: event.duration_ms,
        decision: event.decision,
        rule: cap_opt(&event.rule, MAX_FIELD),
        reason: cap_opt(&event.reason, MAX_FIELD),
        bytes_in: event.bytes_in,
        bytes_out: event.bytes_out,
        detail: cap_opt(&event.detail, MAX_DETAIL),
        prev: &prev,
    };
    // Serializing a struct of strings, integers and bools into memory cannot fail.
    serde_json::to_vec(&wire).unwrap_or_else(|_| b"{}".to_vec())
}

/// Turns a body (ending in `}`) and its MAC into the line written, with `\n`.
pub(crate) fn line_from_body(mut body: Vec<u8>, mac: &Mac) -> Vec<u8> {
    body.pop(); // the closing brace
    body.reserve(MAC_SUFFIX_LEN + 1);
    body.extend_from_slice(MAC_PREFIX);
    body.extend_from_slice(mac.to_hex().as_bytes());
    body.extend_from_slice(b"\"}\n");
    body
}

/// A line split into the MAC input and the MAC it claims.
pub(crate) struct SplitLine {
    /// The canonical body: the line without the `mac` member, ending in `}`.
    pub(crate) body: Vec<u8>,
    /// The MAC written on the line.
    pub(crate) mac: Mac,
}

/// Splits a line (without its `\n`) into body and MAC, checking the fixed shape of
/// the end of the line. The MAC itself is not checked here.
pub(crate) fn split_line(line: &[u8]) -> Result<SplitLine, LineError> {
    if line.len() > MAX_LINE {
        return Err(LineError::TooLong { max: MAX_LINE });
    }
    if line.len() < MAC_SUFFIX_LEN + 2 || line[0] != b'{' {
        return Err(LineError::NotARecord);
    }
    let (head, tail) = line.split_at(line.len() - MAC_SUFFIX_LEN);
    if !tail.starts_with(MAC_PREFIX) || !tail.ends_with(b"\"}") {
        return Err(LineError::NotARecord);
    }
    let hex = &tail[MAC_PREFIX.len()..MAC_PREFIX.len() + 64];
    let mac = Mac::from_hex_bytes(hex).ok_or(LineError::BadMac { member: "mac" })?;
    let mut body = Vec::with_capacity(head.len() + 1);
    body.extend_from_slice(head);
    body.push(b'}');
    Ok(SplitLine { body, mac })
}

/// Parses a body (as returned by [`split_line`]) into a record.
pub(crate) fn parse_body(body: &[u8], mac: Mac) -> Result<Record, LineError> {
    let wire: WireIn = serde_json::from_slice(body).map_err(LineError::Json)?;
    let ts: Timestamp = wire.ts.parse().map_err(|reason| LineError::Timestamp {
        ts: wire.ts.clone(),
        reason,
    })?;
    // Held at the canonical line's precision (milliseconds), so a record
    // re-written from what was read is the record that was read.
    let ts = format_ts(ts).parse().unwrap_or(ts);
    let kind: Kind = wire.kind.parse().map_err(|_: AuditError| LineError::Kind {
        kind: wire.kind.clone(),
    })?;
    let prev =
        Mac::from_hex_bytes(wire.prev.as_bytes()).ok_or(LineError::BadMac { member: "prev" })?;
    Ok(Record {
        ts,
        seq: wire.seq,
        // Held at the canonical line's caps too (as the timestamp above): a
        // field over its cap, which airlock never writes, reads back as the
        // line it would write, so a record re-written from what was read is
        // the record that was read.
        event: Event {
            kind,
            of: wire.of,
            agent: capped(wire.agent, MAX_FIELD),
            agent_trusted: wire.agent_trusted,
            session: capped(wire.session, MAX_FIELD),
            capability: capped(wire.capability, MAX_FIELD),
            method: capped(wire.method, MAX_FIELD),
            path: capped(wire.path, MAX_PATH),
            query_keys: wire
                .query_keys
                .into_iter()
                .take(MAX_QUERY_KEYS)
                .map(|k| cap(&k, MAX_QUERY_KEY).into_owned())
                .collect(),
            status: wire.status,
            duration_ms: wire.duration_ms,
            decision: wire.decision,
            rule: capped(wire.rule, MAX_FIELD),
            reason: capped(wire.reason, MAX_FIELD),
            bytes_in: wire.bytes_in,
            bytes_out: wire.bytes_out,
            detail: capped(wire.detail, MAX_DETAIL),
        },
        prev,
        mac,
    })
}

impl Record {
    /// Parses one line of a log (with or without its trailing `\n`). This checks the
    /// shape only, not the MAC: use [`crate::verify`] for that.
    pub fn parse_line(line: &[u8]) -> Result<Record, LineError> {
        let line = line.strip_suffix(b"\n").unwrap_or(line);
        let split = split_line(line)?;
        parse_body(&split.body, split.mac)
    }

    /// The record as one canonical JSON line (no trailing newline), as `airlock logs
    /// --json` prints it. For a record written by this version it is byte-for-byte
    /// the line in the file.
    pub fn to_json(&self) -> String {
        let body = canonical_body(&format_ts(self.ts), self.seq, &self.event, &self.prev);
        let mut line = line_from_body(body, &self.mac);
        line.pop();
        String::from_utf8_lossy(&line).into_owned()
    }

    /// A one-line human summary, as `airlock logs` prints it:
    ///
    /// ```text
    /// 2026-11-05T10:00:00.123Z #42 request claude-desktop stripe GET /v1/charges allow 200 12ms
    /// ```
    ///
    /// Missing fields print as `-`; a self-declared (untrusted) agent name ends in
    /// `?`; a refusal adds the deciding rule and the reason. Control characters in
    /// agent-chosen values are escaped, so a hostile path cannot drive the terminal.
    pub fn human(&self) -> Human<'_> {
        Human(self)
    }
}

/// The display adapter returned by [`Record::human`].
#[derive(Debug)]
pub struct Human<'a>(&'a Record);

/// Agent-controlled text made safe for a terminal (DESIGN.md §7, invariant 14):
/// control characters and the invisible or bidirectional-override ones are
/// written escaped (`\u{1b}`), everything else as is. `airlock logs` prints every
/// record through it, and every other command that shows agent-chosen text
/// (reasons, client names, paths, headers) uses it too — one escaping, not one
/// per command.
///
/// ```
/// assert_eq!(airlock_audit::Escaped("a\u{1b}[2Jb").to_string(), "a\\u{1b}[2Jb");
/// ```
#[derive(Debug, Clone, Copy)]
pub struct Escaped<'a>(pub &'a str);

impl fmt::Display for Escaped<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_clean(f, self.0)
    }
}

/// Whether `c` is shown escaped by [`Escaped`].
fn needs_escape(c: char) -> bool {
    c.is_control()
        || matches!(c, '\u{200b}'..='\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

/// Writes `s` with control characters (and other non-printing ones) escaped.
fn write_clean(f: &mut fmt::Formatter<'_>, s: &str) -> fmt::Result {
    if !s.chars().any(needs_escape) {
        return f.write_str(s);
    }
    for c in s.chars() {
        if needs_escape(c) {
            write!(f, "{}", c.escape_unicode())?;
        } else {
            write!(f, "{c}")?;
        }
    }
    Ok(())
}

fn write_opt(f: &mut fmt::Formatter<'_>, s: Option<&str>) -> fmt::Result {
    match s {
        Some(s) if !s.is_empty() => write_clean(f, s),
        _ => f.write_str("-"),
    }
}

impl fmt::Display for Human<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let r = self.0;
        let e = &r.event;
        write!(f, "{} #{} ", format_ts(r.ts), r.seq)?;
        write_clean(f, e.kind.as_str())?;
        if let Some(of) = e.of {
            write!(f, " of #{of}")?;
        }
        f.write_str(" ")?;
        write_opt(f, e.agent.as_deref())?;
        if e.agent.is_some() && e.agent_trusted == Some(false) {
            f.write_str("?")?;
        }
        f.write_str(" ")?;
        write_opt(f, e.capability.as_deref())?;
        f.write_str(" ")?;
        write_opt(f, e.method.as_deref())?;
        f.write_str(" ")?;
        write_opt(f, e.path.as_deref())?;
        f.write_str(" ")?;
        write_opt(f, e.decision.map(Decision::as_str))?;
        match e.status {
            Some(s) => write!(f, " {s}")?,
            None => f.write_str(" -")?,
        }
        match e.duration_ms {
            Some(ms) => write!(f, " {ms}ms")?,
            None => f.write_str(" -")?,
        }
        if e.decision == Some(Decision::Deny) {
            if let Some(rule) = &e.rule {
                f.write_str(" rule=")?;
                write_clean(f, rule)?;
            }
            if let Some(reason) = &e.reason {
                f.write_str(" reason=")?;
                write_clean(f, reason)?;
            }
        }
        if e.kind == Kind::AuditRepair
            && let Some(detail) = &e.detail
        {
            f.write_str(" ")?;
            write_clean(f, detail)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Event {
        Event::request("stripe", "GET", "/v1/charges")
            .agent("claude-desktop", false)
            .query_keys(["limit"])
            .status(200)
            .duration(Duration::from_millis(12))
            .decision(Decision::Allow)
    }

    #[test]
    fn kinds_round_trip_and_unknown_names_are_kept() {
        for (name, kind) in KNOWN_KINDS {
            assert_eq!(kind.as_str(), *name);
            assert_eq!(&name.parse::<Kind>().unwrap(), kind);
        }
        assert_eq!(
            "future_thing".parse::<Kind>().unwrap(),
            Kind::Other("future_thing".into())
        );
        for bad in ["", "Request", "a b", "1x", "x-y"] {
            assert!(bad.parse::<Kind>().is_err(), "{bad:?}");
        }
    }

    #[test]
    fn line_round_trips_and_has_the_canonical_shape() {
        let ts: Timestamp = "2026-11-05T10:00:00.123Z".parse().unwrap();
        let prev = Mac([0; 32]);
        let body = canonical_body(&format_ts(ts), 1, &sample(), &prev);
        let mac = Mac([0xab; 32]);
        let line = line_from_body(body.clone(), &mac);
        let text = std::str::from_utf8(&line).unwrap();
        assert!(text.starts_with(r#"{"ts":"2026-11-05T10:00:00.123Z","seq":1,"kind":"request","agent":"claude-desktop","agent_trusted":false,"capability":"stripe","method":"GET","path":"/v1/charges","query_keys":["limit"],"status":200,"duration_ms":12,"decision":"allow","prev":"0000"#), "{text}");
        assert!(text.ends_with(&format!(",\"mac\":\"{}\"}}\n", "ab".repeat(32))));
        let split = split_line(&line[..line.len() - 1]).unwrap();
        assert_eq!(split.body, body);
        let record = Record::parse_line(&line).unwrap();
        assert_eq!(record.event, sample());
        assert_eq!(record.seq, 1);
        assert_eq!(record.ts, ts);
        assert_eq!(record.to_json().as_bytes(), &line[..line.len() - 1]);
    }

    #[test]
    fn long_fields_are_capped_at_a_char_boundary() {
        let ev = Event::new(Kind::Request).reason(&"é".repeat(2000));
        let body = canonical_body("2026-01-01T00:00:00Z", 1, &ev, &Mac([0; 32]));
        let r = parse_body(&body, Mac([0; 32])).unwrap();
        let reason = r.event.reason.unwrap();
        assert!(reason.len() <= MAX_FIELD + '…'.len_utf8());
        assert!(reason.ends_with('…'));
    }

    #[test]
    fn uppercase_mac_hex_is_refused() {
        let body = canonical_body("2026-01-01T00:00:00Z", 1, &sample(), &Mac([0; 32]));
        let line = line_from_body(body, &Mac([0xab; 32]));
        let upper = String::from_utf8(line)
            .unwrap()
            .replace(&"ab".repeat(32), &"AB".repeat(32));
        let e = Record::parse_line(upper.as_bytes()).unwrap_err();
        assert!(matches!(e, LineError::BadMac { member: "mac" }), "{e:?}");
        assert_eq!(
            e.to_string(),
            "the \"mac\" member is not 64 lowercase hex digits"
        );
    }

    #[test]
    fn line_errors_say_what_is_wrong() {
        let e = Record::parse_line(b"hello\n").unwrap_err();
        assert!(matches!(e, LineError::NotARecord), "{e:?}");
        assert_eq!(
            e.to_string(),
            "not an audit record (expected a JSON object ending in a \"mac\" member)"
        );
        let mut ev = sample();
        ev.kind = Kind::Other("x".into());
        let body = canonical_body("2026-01-01T00:00:00Z", 1, &ev, &Mac([0; 32]));
        let text = String::from_utf8(body)
            .unwrap()
            .replace("\"kind\":\"x\"", "\"kind\":\"X\"");
        let e = parse_body(text.as_bytes(), Mac([0; 32])).unwrap_err();
        assert_eq!(
            e.to_string(),
            "invalid audit record kind \"X\": use 1-64 characters from a-z 0-9 _, starting with a letter"
        );
        let e = parse_body(b"{\"ts\":\"yesterday\"}", Mac([0; 32])).unwrap_err();
        assert!(matches!(e, LineError::Json(_)), "{e:?}");
    }

    #[test]
    fn human_line_escapes_control_characters_and_marks_untrusted_agents() {
        let mut r = Record::parse_line(&line_from_body(
            canonical_body("2026-11-05T10:00:00.123Z", 42, &sample(), &Mac([0; 32])),
            &Mac([1; 32]),
        ))
        .unwrap();
        assert_eq!(
            r.human().to_string(),
            "2026-11-05T10:00:00.123Z #42 request claude-desktop? stripe GET /v1/charges allow 200 12ms"
        );
        r.event.path = Some("/x\u{1b}[2J".into());
        r.event.decision = Some(Decision::Deny);
        r.event.rule = Some("* /x/**".into());
        let line = r.human().to_string();
        assert!(!line.contains('\u{1b}'), "{line}");
        assert!(line.contains(r"\u{1b}[2J"), "{line}");
        assert!(line.ends_with("deny 200 12ms rule=* /x/**"), "{line}");
    }
}
