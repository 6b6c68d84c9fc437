//! HTML out: one escaping for every value, one page frame.
//!
//! Everything an agent can influence (names, paths, reasons, headers, rules
//! echoed back) goes through [`esc`]: control and bidirectional characters are
//! escaped first, as on the terminal (`airlock_audit::Escaped`, DESIGN.md §7,
//! invariant 14), then `& < > " '` become entities, so a value can never open a
//! tag or leave an attribute. Pages carry no inline script or style (the
//! Content-Security-Policy forbids them); `app.js` and `app.css` are served from
//! the binary.

use std::fmt::Write;

/// Agent-controlled (or any) text, safe in element content and in quoted
/// attribute values.
pub fn esc(s: &str) -> String {
    let clean = airlock_audit::Escaped(s).to_string();
    let mut out = String::with_capacity(clean.len());
    for c in clean.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// Agent-controlled text for a JSON value the page's script puts in the DOM
/// with `textContent`: control characters escaped, as on the terminal.
pub fn clean(s: &str) -> String {
    airlock_audit::Escaped(s).to_string()
}

/// The pages in the navigation bar: (path, title).
const NAV: &[(&str, &str)] = &[
    ("/", "Live activity"),
    ("/approvals", "Approvals"),
    ("/sessions", "Sessions & tokens"),
    ("/exposures", "Exposures"),
    ("/config", "Configuration"),
];

/// A whole page: `title`, the navigation with `active` marked, and `body`
/// (already escaped HTML). `csrf` goes in a meta tag for the script.
pub fn page(title: &str, active: &str, csrf: Option<&str>, body: &str) -> String {
    let mut nav = String::new();
    for (href, name) in NAV {
        let cls = if *href == active {
            " class=\"active\""
        } else {
            ""
        };
        let _ = write!(nav, "<a href=\"{href}\"{cls}>{name}</a>");
    }
    let logout = match csrf {
        Some(t) => format!(
            "<form method=\"post\" action=\"/logout\" class=\"logout\"><input type=\"hidden\" name=\"csrf\" value=\"{}\"><button type=\"submit\">Log out</button></form>",
            esc(t)
        ),
        None => String::new(),
    };
    format!(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
<title>{t} · airlock</title><link rel=\"stylesheet\" href=\"/static/app.css\">\
<script src=\"/static/app.js\" defer></script></head>\
<body><header><span class=\"brand\">airlock</span><nav>{nav}</nav>{logout}</header>\
<main><h1>{t}</h1>\n{body}\n</main></body></html>\n",
        t = esc(title),
    )
}

/// A hidden CSRF field for a form.
pub fn csrf_field(csrf: &str) -> String {
    format!(
        "<input type=\"hidden\" name=\"csrf\" value=\"{}\">",
        esc(csrf)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_markup_and_controls() {
        assert_eq!(
            esc("<script>alert(\"x\")</script>&'"),
            "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;&amp;&#39;"
        );
        assert_eq!(esc("a\u{1b}[2Jb"), "a\\u{1b}[2Jb");
        assert_eq!(esc("\u{202e}gnp.exe"), "\\u{202e}gnp.exe");
    }
}
