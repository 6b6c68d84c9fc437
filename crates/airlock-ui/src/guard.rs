//! Who may use the dashboard, and the checks every request passes before any
//! page or action runs (docs/ui.md, "Security").
//!
//! - **Host** must be an IP literal or `localhost`, with the port the dashboard
//!   listens on. A DNS-rebinding page reaches us under its own *name*, so its
//!   `Host` is refused before anything else is looked at.
//! - **Login**: `airlock ui` prints a URL with a one-time token in its fragment
//!   (the fragment never leaves the browser in a request line, a `Referer` or a
//!   proxy log). The login page's script posts it once; the answer is an
//!   `HttpOnly`, `SameSite=Strict` session cookie. The token is then spent.
//! - **State changes** (every `POST`) need the session cookie, the session's
//!   CSRF token in the form, and an `Origin` equal to this dashboard's own.
//! - Agent tokens are never looked at: no header, cookie or query of an agent's
//!   opens the dashboard. Only the login token `airlock ui` printed does.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

/// The session cookie's name.
pub const COOKIE: &str = "airlock_ui";
/// How long a dashboard session lasts after login.
pub const SESSION_TTL: Duration = Duration::from_secs(12 * 3600);
/// At most this many sessions at once (each login makes one; there is one login).
const MAX_SESSIONS: usize = 16;

/// `n` random bytes, hex: login tokens, session ids, CSRF tokens.
pub(crate) fn random_hex(n: usize) -> Result<String, getrandom::Error> {
    let mut buf = Zeroizing::new(vec![0u8; n]);
    getrandom::fill(&mut buf)?;
    Ok(hex::encode(&*buf))
}

/// Constant-time equality of two tokens.
pub(crate) fn same(a: &str, b: &str) -> bool {
    a.len() == b.len() && bool::from(a.as_bytes().ct_eq(b.as_bytes()))
}

/// Why a request is refused before it reaches a page or an action.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// `Host` is missing, a name other than `localhost`, or another port.
    Host,
    /// A state change without an `Origin`, or with another one.
    Origin,
    /// No session (no cookie, an unknown or expired one).
    NoSession,
    /// A state change without the session's CSRF token.
    Csrf,
    /// The login token is wrong or already spent.
    Login,
}

impl Refusal {
    /// The HTTP status and the one line the browser is shown.
    pub fn explain(&self) -> (http::StatusCode, &'static str) {
        use http::StatusCode as S;
        match self {
            Refusal::Host => (
                S::MISDIRECTED_REQUEST,
                "refused: the Host header is not this dashboard's address (open it by 127.0.0.1, [::1] or localhost and its port)",
            ),
            Refusal::Origin => (
                S::FORBIDDEN,
                "refused: a state change must come from this dashboard's own pages (Origin missing or different)",
            ),
            Refusal::NoSession => (
                S::UNAUTHORIZED,
                "not logged in: open the login URL `airlock ui` printed (it works once; restart `airlock ui`, or `airlock serve --ui`, for a new one)",
            ),
            Refusal::Csrf => (
                S::FORBIDDEN,
                "refused: the form's CSRF token is missing or not this session's; reload the page and try again",
            ),
            Refusal::Login => (
                S::FORBIDDEN,
                "refused: this login link is wrong or was already used; restart `airlock ui`, or `airlock serve --ui`, for a new one",
            ),
        }
    }
}

/// Checks `Host` against the port we listen on; returns the origin
/// (`http://HOST`) that a state change's `Origin` must equal.
///
/// Accepted: an IP literal (`127.0.0.1:8790`, `[::1]:8790`, or the address the
/// owner chose with `--listen`) or `localhost`, each with our port. Refused:
/// every other name (DNS rebinding), another port, no port, userinfo, garbage.
pub fn check_host(host: Option<&str>, port: u16) -> Result<String, Refusal> {
    let host = host.ok_or(Refusal::Host)?;
    let (name, p) = host.rsplit_once(':').ok_or(Refusal::Host)?;
    if p.parse::<u16>().ok() != Some(port) || p.starts_with('0') && p != "0" {
        return Err(Refusal::Host);
    }
    let ok = if let Some(v6) = name.strip_prefix('[').and_then(|n| n.strip_suffix(']')) {
        v6.parse::<std::net::Ipv6Addr>().is_ok()
    } else {
        name.eq_ignore_ascii_case("localhost")
            || (name.parse::<IpAddr>().is_ok_and(|ip| ip.is_ipv4()) && !name.contains(':'))
    };
    if !ok {
        return Err(Refusal::Host);
    }
    Ok(format!("http://{}", host.to_ascii_lowercase()))
}

/// A state change's `Origin` must be present and equal to ours.
pub fn check_origin(origin: Option<&str>, ours: &str) -> Result<(), Refusal> {
    match origin {
        Some(o) if o.eq_ignore_ascii_case(ours) => Ok(()),
        _ => Err(Refusal::Origin),
    }
}

/// The value of cookie `name` in a `Cookie` header.
pub fn cookie<'a>(header: &'a str, name: &str) -> Option<&'a str> {
    header.split(';').find_map(|kv| {
        let (k, v) = kv.trim().split_once('=')?;
        (k == name).then_some(v)
    })
}

struct Session {
    csrf: String,
    expires: Instant,
}

/// The one login token and the sessions it opened.
pub(crate) struct Logins {
    /// The login token, until it is spent.
    login: Mutex<Option<Zeroizing<String>>>,
    sessions: Mutex<HashMap<String, Session>>,
}

impl Logins {
    pub(crate) fn new() -> Result<(Logins, Zeroizing<String>), getrandom::Error> {
        let token = Zeroizing::new(random_hex(32)?);
        Ok((
            Logins {
                login: Mutex::new(Some(token.clone())),
                sessions: Mutex::new(HashMap::new()),
            },
            token,
        ))
    }

    /// Spends the login token: `(session id, csrf)` when `presented` is it.
    pub(crate) fn exchange(&self, presented: &str) -> Result<(String, String), Refusal> {
        let mut login = self.login.lock().unwrap_or_else(PoisonError::into_inner);
        match login.as_ref() {
            Some(t) if same(t, presented) => {}
            _ => return Err(Refusal::Login),
        }
        *login = None;
        drop(login);
        let id = random_hex(32).map_err(|_| Refusal::Login)?;
        let csrf = random_hex(32).map_err(|_| Refusal::Login)?;
        let mut sessions = self.sessions.lock().unwrap_or_else(PoisonError::into_inner);
        let now = Instant::now();
        sessions.retain(|_, s| s.expires > now);
        if sessions.len() >= MAX_SESSIONS {
            return Err(Refusal::Login);
        }
        sessions.insert(
            id.clone(),
            Session {
                csrf: csrf.clone(),
                expires: now + SESSION_TTL,
            },
        );
        Ok((id, csrf))
    }

    /// The CSRF token of the live session `id`.
    pub(crate) fn session(&self, id: Option<&str>) -> Result<String, Refusal> {
        let id = id.ok_or(Refusal::NoSession)?;
        let sessions = self.sessions.lock().unwrap_or_else(PoisonError::into_inner);
        let now = Instant::now();
        sessions
            .iter()
            .find(|(k, s)| same(k, id) && s.expires > now)
            .map(|(_, s)| s.csrf.clone())
            .ok_or(Refusal::NoSession)
    }

    /// Ends the session `id` (log out).
    pub(crate) fn end(&self, id: &str) {
        self.sessions
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .retain(|k, _| !same(k, id));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts() {
        assert_eq!(
            check_host(Some("127.0.0.1:8790"), 8790).as_deref(),
            Ok("http://127.0.0.1:8790")
        );
        assert!(check_host(Some("localhost:8790"), 8790).is_ok());
        assert!(check_host(Some("[::1]:8790"), 8790).is_ok());
        for bad in [
            "evil.example:8790",
            "127.0.0.1:8791",
            "127.0.0.1",
            "127.0.0.1:08790",
            "user@127.0.0.1:8790",
            "localhost.evil.example:8790",
            "[::1:8790",
            "",
            ":8790",
        ] {
            assert_eq!(check_host(Some(bad), 8790), Err(Refusal::Host), "{bad}");
        }
        assert_eq!(check_host(None, 8790), Err(Refusal::Host));
    }

    #[test]
    fn origins_and_cookies() {
        let ours = "http://127.0.0.1:8790";
        assert!(check_origin(Some(ours), ours).is_ok());
        assert!(check_origin(Some("http://evil.example"), ours).is_err());
        assert!(check_origin(Some("null"), ours).is_err());
        assert!(check_origin(None, ours).is_err());
        assert_eq!(cookie("a=1; airlock_ui=xyz; b=2", COOKIE), Some("xyz"));
        assert_eq!(cookie("xairlock_ui=xyz", COOKIE), None);
    }

    #[test]
    fn login_is_spent_once() {
        let (logins, token) = Logins::new().unwrap();
        assert_eq!(logins.exchange("wrong"), Err(Refusal::Login));
        let (id, csrf) = logins.exchange(&token).unwrap();
        assert_eq!(logins.exchange(&token), Err(Refusal::Login));
        assert_eq!(logins.session(Some(&id)), Ok(csrf));
        assert_eq!(logins.session(Some("other")), Err(Refusal::NoSession));
        logins.end(&id);
        assert_eq!(logins.session(Some(&id)), Err(Refusal::NoSession));
    }
}
