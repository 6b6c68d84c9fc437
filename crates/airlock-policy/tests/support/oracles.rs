//! The oracles both the policy tests and the `normalize_and_match` fuzz target
//! check the policy against (each includes this file with `#[path]`): the decision
//! procedure restated, what a normalized target may contain, and where a lenient
//! server would route a path.

use airlock_policy::{Decision, DenyReason, RuleSet, Target, normalize_method};

/// The decision procedure, restated on top of `Rule::matches*` and the path string.
pub(crate) fn reference_decision(rs: &RuleSet, method: &str, path: &str) -> Decision {
    let Ok(m) = normalize_method(method, rs.extra_methods()) else {
        return Decision::Deny {
            reason: DenyReason::MethodNotAllowed(method.to_owned()),
        };
    };
    if let Some(r) = rs.deny_rules().iter().find(|r| r.matches_loosely(&m, path)) {
        return Decision::Deny {
            reason: DenyReason::DenyRule(r.as_str().to_owned()),
        };
    }
    if rs.allow_rules().is_empty() {
        return Decision::Allow { rule: None };
    }
    match rs.allow_rules().iter().find(|r| r.matches(&m, path)) {
        Some(r) => Decision::Allow {
            rule: Some(r.as_str().to_owned()),
        },
        None => Decision::Deny {
            reason: DenyReason::NoAllowMatch,
        },
    }
}

/// A normalized target is clean: an absolute path without empty, `.` or `..`
/// segments, ASCII without controls, `#`, `?`, `\` or spaces; every escape
/// upper-case hex of a byte that is neither unreserved nor `/` or `\`, nor a
/// control; a query without controls, spaces or `#`.
pub(crate) fn assert_clean(t: &Target) {
    let p = &t.path;
    assert!(p.starts_with('/') && p.is_ascii(), "{p:?}");
    assert!(
        !p.contains("//") && !p.contains("/./") && !p.contains("/../"),
        "{p:?}"
    );
    assert!(!p.ends_with("/.") && !p.ends_with("/.."), "{p:?}");
    assert!(
        !p.bytes()
            .any(|b| b.is_ascii_control() || b"#?\\ ".contains(&b)),
        "{p:?}"
    );
    let bytes = p.as_bytes();
    for (i, _) in p.match_indices('%') {
        let (hi, lo) = (bytes[i + 1], bytes[i + 2]);
        let upper_hex = |c: u8| c.is_ascii_digit() || (b'A'..=b'F').contains(&c);
        assert!(upper_hex(hi) && upper_hex(lo), "{p:?}");
        let v = u8::from_str_radix(&p[i + 1..i + 3], 16).expect("hex");
        assert!(
            !(v.is_ascii_alphanumeric() || b"-._~/\\".contains(&v)),
            "{p:?}"
        );
        assert!(v >= 0x20 && v != 0x7F, "{p:?}");
    }
    if let Some(q) = &t.query {
        assert!(
            !q.bytes()
                .any(|b| b.is_ascii_control() || b == b' ' || b == b'#'),
            "{q:?}"
        );
    }
}

/// Whether a server that decodes escapes (once), ignores case and strips `;params`
/// would route `path` to `/v1/admin` or below.
pub(crate) fn reaches_admin(path: &str) -> bool {
    let segments: Vec<String> = path
        .split('/')
        .map(|s| {
            let s = decode(s).to_ascii_lowercase();
            s.split(';').next().unwrap_or_default().to_owned()
        })
        .filter(|s| !s.is_empty())
        .collect();
    segments.len() >= 2 && segments[0] == "v1" && segments[1] == "admin"
}

/// Percent-decodes `s` once (a `%` not followed by two hex digits stays).
pub(crate) fn decode(s: &str) -> String {
    let b = s.as_bytes();
    let hex = |c: u8| char::from(c).to_digit(16);
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%'
            && i + 2 < b.len()
            && let (Some(hi), Some(lo)) = (hex(b[i + 1]), hex(b[i + 2]))
        {
            out.push(u8::try_from(hi * 16 + lo).expect("byte"));
            i += 3;
            continue;
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}
