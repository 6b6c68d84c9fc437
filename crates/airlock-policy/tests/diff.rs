//! The authority diff is exact (issue 19): on generated rule sets, every request
//! that the old and the new rules decide differently falls in a class the diff
//! reports, with the right direction, and no request they decide alike does; every
//! example is a real normalized path decided as its class says; and rewriting
//! rules into equivalent ones (reordering, duplicates, rules another one covers,
//! deny rules in another letter case) reports no change.
#![allow(clippy::unwrap_used)]

use airlock_policy::{Change, RuleSet, diff, normalize};
use proptest::prelude::*;

/// Segments that collide in the ways the matcher distinguishes: case, `;params`,
/// escapes, prefixes of each other.
fn segment() -> impl Strategy<Value = &'static str> {
    prop::sample::select(vec![
        "v1",
        "V1",
        "admin",
        "ADMIN",
        "admin;x",
        "items",
        "item",
        "a",
        "ab",
        "b",
        "me%3Adelete",
        "me:delete",
        "x.y",
        ";q",
    ])
}

/// Rule path segments: literals, globs and `**`.
fn rule_segment() -> impl Strategy<Value = &'static str> {
    prop::sample::select(vec![
        "v1",
        "V1",
        "admin",
        "items",
        "a",
        "ab",
        "b",
        "me%3Adelete",
        "*",
        "**",
        "a*",
        "*b",
        "ad*",
        "x.*",
        "*:*",
    ])
}

fn rule() -> impl Strategy<Value = String> {
    (
        prop::sample::select(vec!["GET", "POST", "DELETE", "HEAD", "PROPFIND", "*"]),
        prop::collection::vec(rule_segment(), 0..4),
    )
        .prop_map(|(m, segs)| format!("{m} /{}", segs.join("/")))
}

fn rules() -> impl Strategy<Value = (Vec<String>, Vec<String>, Vec<String>)> {
    (
        prop::collection::vec(rule(), 0..4),
        prop::collection::vec(rule(), 0..3),
        prop::sample::select(vec![vec![], vec!["PROPFIND".to_owned()]]),
    )
}

/// Compiles, dropping rules that name a method the set does not allow.
fn compile((allow, deny, extra): &(Vec<String>, Vec<String>, Vec<String>)) -> Option<RuleSet> {
    let keep = |v: &Vec<String>| -> Vec<String> {
        v.iter()
            .filter(|r| !r.starts_with("PROPFIND") || !extra.is_empty())
            .cloned()
            .collect()
    };
    let (allow, deny) = (keep(allow), keep(deny));
    Some(RuleSet::compile(&allow, &deny, extra).unwrap())
}

fn side() -> impl Strategy<Value = Option<RuleSet>> {
    prop_oneof![
        1 => Just(None),
        8 => rules().prop_map(|r| compile(&r)),
    ]
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

fn method() -> impl Strategy<Value = &'static str> {
    prop::sample::select(vec![
        "GET", "HEAD", "POST", "PUT", "DELETE", "OPTIONS", "PROPFIND",
    ])
}

fn allowed(rs: Option<&RuleSet>, m: &str, path: &str) -> bool {
    let t = normalize(path).unwrap();
    rs.is_some_and(|rs| rs.decide(m, &t).is_allowed())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    /// Both ways: a request decided differently is in a reported class of the
    /// right direction; a request decided alike is in none.
    #[test]
    fn the_diff_is_exact_on_requests(
        old in side(),
        new in side(),
        reqs in prop::collection::vec((method(), request_path()), 1..24),
    ) {
        let d = diff(old.as_ref(), new.as_ref()).unwrap();
        for (m, path) in &reqs {
            let (was, is) = (allowed(old.as_ref(), m, path), allowed(new.as_ref(), m, path));
            let path = normalize(path).unwrap().path;
            match (was, is, d.class_of(m, &path)) {
                (false, true, Some(c)) => prop_assert_eq!(c.change, Change::NewlyAllowed),
                (true, false, Some(c)) => prop_assert_eq!(c.change, Change::NewlyRefused),
                (a, b, None) if a == b => {}
                (a, b, c) => prop_assert!(
                    false,
                    "{} {}: old {}, new {}, class {:?}\nold {:?}\nnew {:?}",
                    m, path, a, b, c, old, new
                ),
            }
        }
    }

    /// Every class is inhabited by its example, which is a normalized path that
    /// each of the class's methods finds decided as the class says.
    #[test]
    fn every_class_is_real(old in side(), new in side()) {
        let d = diff(old.as_ref(), new.as_ref()).unwrap();
        for c in &d.classes {
            prop_assert_eq!(&normalize(&c.example).unwrap().path, &c.example);
            for m in &c.methods {
                let (was, is) = (allowed(old.as_ref(), m, &c.example), allowed(new.as_ref(), m, &c.example));
                let want = match c.change {
                    Change::NewlyAllowed => (false, true),
                    Change::NewlyRefused => (true, false),
                };
                prop_assert_eq!((was, is), want, "{} {} in {:?}", m, &c.example, c);
                prop_assert_eq!(d.class_of(m, &c.example), Some(c));
            }
        }
    }

    /// Equivalent rewrites are no change: reordered, duplicated, a `*` rule next
    /// to the `**` rule that covers it, a deny rule repeated in upper case.
    #[test]
    fn equivalent_rewrites_are_no_change(r in rules(), seed in any::<u64>()) {
        let (mut allow, mut deny, extra) = r.clone();
        let rotate = |v: &mut Vec<String>| {
            if !v.is_empty() {
                let k = (seed as usize) % v.len();
                v.rotate_left(k);
            }
        };
        rotate(&mut allow);
        rotate(&mut deny);
        if let Some(first) = allow.first().cloned() {
            allow.push(first.clone());
            if let Some(base) = first.strip_suffix("/**") {
                allow.push(format!("{base}/*"));
                allow.push(format!("{base}/items/**"));
            }
        }
        if let Some(first) = deny.first().cloned() {
            deny.push(first.to_ascii_uppercase().replacen("%3ADELETE", "%3Adelete", 1));
        }
        let a = compile(&r);
        let b = compile(&(allow, deny, extra));
        let d = diff(a.as_ref(), b.as_ref()).unwrap();
        prop_assert!(d.is_empty(), "{:?}\n{:?}\n{:?}", a, b, d.classes);
    }
}

/// The generators are not vacuous: a fair share of generated pairs differ.
#[test]
fn generators_produce_changes() {
    use proptest::strategy::ValueTree;
    use proptest::test_runner::TestRunner;
    let mut runner = TestRunner::deterministic();
    let (mut changed, mut unchanged) = (0, 0);
    for _ in 0..300 {
        let old = side().new_tree(&mut runner).unwrap().current();
        let new = side().new_tree(&mut runner).unwrap().current();
        if diff(old.as_ref(), new.as_ref()).unwrap().is_empty() {
            unchanged += 1;
        } else {
            changed += 1;
        }
    }
    assert!(changed > 150, "changed {changed}, unchanged {unchanged}");
}
