//! The rule index (issue 16: rule matching sub-linear in the capability's rules)
//! changes which rules a decision looks at, never the decision: on generated rule
//! sets whose literal prefixes share, differ in case, carry `;params`, globs, `**`
//! and escapes, `decide` equals the decision procedure restated over every rule
//! (`reference_decision`) and `explain` (which walks every rule).

use airlock_policy::{RuleSet, normalize};
use proptest::prelude::*;

use super::oracles::reference_decision;

/// Segments that collide in the ways the index must get right.
fn segment() -> impl Strategy<Value = &'static str> {
    prop::sample::select(vec![
        "v1",
        "V1",
        "v2",
        "admin",
        "ADMIN",
        "admin;x",
        "items",
        "r0001",
        "r0002",
        "a%2Fb",
        "me%3Adelete",
        "me:delete",
        "%41",
        "A",
        "x",
    ])
}

/// A rule path: literal segments, then maybe a glob segment or `**`, then maybe
/// more segments.
fn rule_path() -> impl Strategy<Value = String> {
    (
        prop::collection::vec(segment(), 0..4),
        prop::sample::select(vec!["", "*", "**", "ad*", "*1", "r*2"]),
        prop::collection::vec(segment(), 0..2),
    )
        .prop_map(|(head, wild, tail)| {
            let mut segs: Vec<&str> = head;
            if !wild.is_empty() {
                segs.push(wild);
            }
            segs.extend(tail);
            format!("/{}", segs.join("/"))
        })
}

fn rule() -> impl Strategy<Value = String> {
    (
        prop::sample::select(vec!["GET", "POST", "DELETE", "*"]),
        rule_path(),
    )
        .prop_map(|(m, p)| format!("{m} {p}"))
}

fn request_path() -> impl Strategy<Value = String> {
    (prop::collection::vec(segment(), 0..5), any::<bool>()).prop_map(|(segs, slash)| {
        let mut p = format!("/{}", segs.join("/"));
        if slash && !segs.is_empty() {
            p.push('/');
        }
        p
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 1024, ..ProptestConfig::default() })]

    #[test]
    fn indexed_decisions_equal_the_full_walk(
        allow in prop::collection::vec(rule(), 0..12),
        deny in prop::collection::vec(rule(), 0..6),
        paths in prop::collection::vec(request_path(), 1..8),
        method in prop::sample::select(vec!["GET", "HEAD", "POST", "DELETE", "get"]),
    ) {
        // Generated rules a rule parser refuses (not normalized, …) are dropped.
        let keep = |rules: Vec<String>| -> Vec<String> {
            rules.into_iter().filter(|r| RuleSet::compile(std::slice::from_ref(r), &[], &[]).is_ok()).collect()
        };
        let rs = RuleSet::compile(&keep(allow), &keep(deny), &[]).unwrap();
        for raw in paths {
            let Ok(t) = normalize(&raw) else { continue };
            let decided = rs.decide(method, &t);
            prop_assert_eq!(&decided, &reference_decision(&rs, method, &t.path), "{} {}", method, raw);
            prop_assert_eq!(&decided, &rs.explain(method, &raw).decision, "{} {}", method, raw);
        }
    }
}
