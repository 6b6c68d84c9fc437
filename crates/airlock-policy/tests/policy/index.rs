//! The rule index (issue 16: rule matching sub-linear in the capability's rules)
//! changes which rules a decision looks at, never the decision: on generated rule
//! sets whose literal prefixes share, differ in case, carry `;params`, globs, `**`
//! and escapes, `decide` equals the decision procedure restated over every rule
//! (`reference_decision`) and `explain` (which walks every rule).

use airlock_policy::{Rule, RuleSet, normalize};
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

/// Segments from a small alphabet in both cases, so that tries get wide nodes
/// (many children, found by binary search) whose keys collide ignoring case.
fn wide_segment() -> impl Strategy<Value = String> {
    "[abAB]{1,3}"
}

fn wide_rule() -> impl Strategy<Value = String> {
    (
        prop::sample::select(vec!["GET", "POST", "*", "PROPFIND"]),
        prop::collection::vec(wide_segment(), 0..4),
        prop::sample::select(vec!["", "*", "**", "a*"]),
    )
        .prop_map(|(m, mut segs, tail)| {
            if !tail.is_empty() {
                segs.push(tail.to_owned());
            }
            format!("{m} /{}", segs.join("/"))
        })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    /// The flat trie (sorted children, binary search, case folded for deny rules)
    /// against the full walk, on rule sets of up to 200 rules over a small
    /// alphabet: wide nodes, shared prefixes, keys equal but for case.
    #[test]
    fn flat_trie_decisions_equal_the_full_walk(
        allow in prop::collection::vec(wide_rule(), 0..200),
        deny in prop::collection::vec(wide_rule(), 0..40),
        paths in prop::collection::vec(
            (prop::collection::vec(wide_segment(), 0..5), prop::option::of("[a;]{1,2}")),
            1..16,
        ),
        method in prop::sample::select(vec!["GET", "HEAD", "POST", "propfind"]),
    ) {
        let extra = vec!["propfind".to_owned()];
        let rs = RuleSet::compile(&allow, &deny, &extra).unwrap();
        for (segs, params) in paths {
            let mut raw = format!("/{}", segs.join("/"));
            if let Some(p) = params {
                raw.push(';');
                raw.push_str(&p);
            }
            let Ok(t) = normalize(&raw) else { continue };
            let decided = rs.decide(method, &t);
            prop_assert_eq!(&decided, &reference_decision(&rs, method, &t.path), "{} {}", method, raw);
            prop_assert_eq!(&decided, &rs.explain(method, &raw).decision, "{} {}", method, raw);
        }
    }

    /// A rule keeps its text, method and path in one allocation with its compiled
    /// pattern: what it reports is what was written (method upper-cased, blanks
    /// collapsed), and it matches like a rule parsed from that text.
    #[test]
    fn compact_rules_report_what_was_written(
        rule in wide_rule(),
        lower in any::<bool>(),
        pad in prop::sample::select(vec![" ", "  ", "\t", " \t "]),
        path in prop::collection::vec(wide_segment(), 0..5),
    ) {
        let (m, p) = rule.split_once(' ').unwrap();
        let written = format!("{pad}{}{pad}{p}{pad}", if lower { m.to_ascii_lowercase() } else { m.to_owned() });
        let extra = vec!["propfind".to_owned()];
        let r = Rule::parse_with_methods(&written, &extra).unwrap();
        prop_assert_eq!(r.as_str(), rule.as_str());
        prop_assert_eq!(r.to_string(), rule.clone());
        prop_assert_eq!(r.method(), (m != "*").then_some(m));
        prop_assert_eq!(r.path(), p);
        let again = Rule::parse_with_methods(r.as_str(), &extra).unwrap();
        prop_assert_eq!(&again, &r);
        let path = format!("/{}", path.join("/"));
        for method in ["GET", "HEAD", "PROPFIND"] {
            prop_assert_eq!(r.matches(method, &path), again.matches(method, &path));
            prop_assert_eq!(r.matches_loosely(method, &path), again.matches_loosely(method, &path));
        }
    }

    /// Rules are accepted exactly when their path is in normal form and well
    /// shaped, whether or not the load-time fast path for plain paths (letters,
    /// digits, `-_~*`) skips normalizing: the same rules pass as before it.
    #[test]
    fn accepted_rules_are_exactly_the_normalized_ones(p in "/[a-zA-Z0-9_~*/.%;-]{0,12}") {
        let shaped = !p.contains("//")
            && p[1..].split('/').all(|s| s != "." && s != ".." && (!s.contains("**") || s == "**"));
        let normal = airlock_policy::normalize(&p).is_ok_and(|t| t.path == p);
        prop_assert_eq!(Rule::parse(&format!("GET {p}")).is_ok(), shaped && normal, "{}", p);
    }
}
