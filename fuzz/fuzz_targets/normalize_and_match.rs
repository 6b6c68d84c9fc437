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

use airlock_policy::{Rule, RuleSet, normalize};
use libfuzzer_sys::fuzz_target;
use std::sync::OnceLock;

#[path = "../../crates/airlock-policy/tests/support/oracles.rs"]
mod oracles;
use oracles::{assert_clean, reaches_admin, reference_decision};

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
        reference_decision(rs, method, &target.path),
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
