//! Fuzzes normalization and matching together, asserting the invariants that
//! DESIGN.md §4 and §7 (invariant 3, "what is checked is what is sent") rest on:
//!
//! * nothing panics, on any input, in `normalize`, `Rule::parse`, `decide`,
//!   `explain` or the matchers (even on paths that were never normalized);
//! * normalization is idempotent, and a normalized path is clean (no `//`, dot
//!   segments, control characters, `%2F`, `%5C`, `#`, `?`, `\`, lower-case hex or
//!   encoded unreserved characters);
//! * the decision on a target is a function of its `path` string alone, equal to the
//!   rules applied one by one, and equal to what `explain` reports;
//! * with deny `* /v1/admin/**` and allow `* /v1/**`, no allowed path reaches
//!   `/v1/admin` even for a server that decodes escapes, ignores case and strips
//!   `;parameters`;
//! * a rule that parses round-trips through its canonical text.
#![no_main]

use airlock_policy::{Decision, DenyReason, Rule, RuleSet, Target, normalize, normalize_method};
use libfuzzer_sys::fuzz_target;
use std::sync::OnceLock;

#[path = "../../crates/airlock-policy/tests/support/admin_route.rs"]
mod admin_route;
use admin_route::reaches_admin;

const METHODS: [&str; 8] = ["GET", "get", "POST", "DELETE", "PROPFIND", "TRACE", "*", ""];

fn rules() -> &'static RuleSet {
    static RULES: OnceLock<RuleSet> = OnceLock::new();
    RULES.get_or_init(|| {
        let s = |v: &[&str]| v.iter().map(|r| (*r).to_owned()).collect::<Vec<_>>();
        RuleSet::compile(
            &s(&["* /v1/**", "GET /v2/*/x*y/**", "PROPFIND /dav/**"]),
            &s(&["* /v1/admin/**", "DELETE /v2/**"]),
            &s(&["propfind"]),
        )
        .expect("fuzz rules compile")
    })
}

fuzz_target!(|data: &[u8]| {
    let Some((&selector, rest)) = data.split_first() else {
        return;
    };
    let method = METHODS[usize::from(selector) % METHODS.len()];
    let raw = String::from_utf8_lossy(rest);
    let raw = raw.as_ref();
    let rs = rules();

    // Rules: parse anything; what parses round-trips.
    if let Ok(rule) = Rule::parse_with_methods(raw, rs.extra_methods()) {
        let again = Rule::parse_with_methods(rule.as_str(), rs.extra_methods())
            .expect("canonical text parses");
        assert_eq!(again, rule);
        assert_eq!(
            normalize(rule.path()).expect("rule path normalizes").path,
            rule.path()
        );
    }
    // The matchers must not panic on unnormalized input either.
    for rule in rs.allow_rules().iter().chain(rs.deny_rules()) {
        let exact = rule.matches(method, raw);
        assert!(!exact || rule.matches_loosely(method, raw));
    }

    let explained = rs.explain(method, raw).decision;
    let target = match normalize(raw) {
        Ok(t) => t,
        Err(_) => {
            assert!(!explained.is_allowed(), "refused path allowed: {raw:?}");
            return;
        }
    };

    // Idempotence.
    let again = normalize(&target.path).expect("a normalized path normalizes");
    assert_eq!(again.path, target.path);
    assert_eq!(again.query, None);
    assert_eq!(normalize(&target.to_string()).as_ref(), Ok(&target));
    assert_clean(&target);

    // What is checked is what is sent.
    let decided = rs.decide(method, &target);
    assert_eq!(
        decided, explained,
        "explain disagrees with decide on {raw:?}"
    );
    assert_eq!(
        decided,
        by_hand(rs, method, &target.path),
        "decide is not the rules on {raw:?}"
    );

    if decided.is_allowed() {
        assert!(
            !reaches_admin(&target.path),
            "{method} {raw:?} reached admin as {:?}",
            target.path
        );
    }
});

/// The decision procedure restated on the path string.
fn by_hand(rs: &RuleSet, method: &str, path: &str) -> Decision {
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

fn assert_clean(t: &Target) {
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
