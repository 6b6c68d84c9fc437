//! The authority diff is exact (issue 19): on generated rule sets, every request
//! that the old and the new rules decide differently falls in a class the diff
//! reports, with the right direction, and no request they decide alike does; every
//! example is a real normalized path decided as its class says; and rewriting
//! rules into equivalent ones (reordering, duplicates, rules another one covers,
//! deny rules in another letter case) reports no change.
#![allow(clippy::unwrap_used)]

use airlock_policy::{
    Change, ListName, MatchedRule, PathClass, Presence, RuleList, RuleSet, diff, normalize,
};
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

// ---------------------------------------------------------------------------------
// What `airlock policy diff` shows for a class: its rules, which of them are old,
// new or in both, which rules it falls outside of, and the extra methods (the
// mutation run of diff.rs, issue 20: the generated tests above check direction
// and membership, not these).
// ---------------------------------------------------------------------------------

fn set(allow: &[&str], deny: &[&str], extra: &[&str]) -> RuleSet {
    let s = |v: &[&str]| v.iter().map(|r| (*r).to_owned()).collect::<Vec<_>>();
    RuleSet::compile(&s(allow), &s(deny), &s(extra)).unwrap()
}

fn matched(list: ListName, rule: &str, presence: Presence) -> MatchedRule {
    MatchedRule {
        list,
        rule: rule.to_owned(),
        presence,
    }
}

/// The words the CLI and `--json` print for a change, a rule's side and its list.
#[test]
fn changes_sides_and_lists_have_their_names() {
    assert_eq!(Change::NewlyAllowed.as_str(), "newly allowed");
    assert_eq!(Change::NewlyRefused.as_str(), "newly refused");
    assert_eq!(Presence::Old.as_str(), "old");
    assert_eq!(Presence::New.as_str(), "new");
    assert_eq!(Presence::Both.as_str(), "both");
    assert_eq!(ListName::Allow.as_str(), "allow");
    assert_eq!(ListName::Deny.as_str(), "deny");
    assert_eq!(RuleList::from(ListName::Allow), RuleList::Allow);
    assert_eq!(RuleList::from(ListName::Deny), RuleList::Deny);
}

/// Narrowing `GET /v1/**` to `GET /v1/customers/*` is one class: the paths the
/// old rule matched and the new one does not, shown as the removed rule and
/// "not" the added one, with `/v1` (which `/**` matches too) as its example.
#[test]
fn a_narrowed_rule_is_one_class_naming_what_it_no_longer_covers() {
    let old = set(&["GET /v1/**"], &[], &[]);
    let new = set(&["GET /v1/customers/*"], &[], &[]);
    let d = diff(Some(&old), Some(&new)).unwrap();
    assert_eq!(
        d.classes,
        [PathClass {
            change: Change::NewlyRefused,
            methods: vec!["GET".to_owned()],
            matches: vec![matched(ListName::Allow, "GET /v1/**", Presence::Old)],
            excludes: vec![matched(
                ListName::Allow,
                "GET /v1/customers/*",
                Presence::New
            )],
            example: "/v1".to_owned(),
        }]
    );
    // The other way round: the same class, newly allowed, the sides swapped.
    let back = diff(Some(&new), Some(&old)).unwrap();
    assert_eq!(back.classes.len(), 1);
    assert_eq!(back.classes[0].change, Change::NewlyAllowed);
    assert_eq!(
        back.classes[0].matches,
        [matched(ListName::Allow, "GET /v1/**", Presence::New)]
    );
    assert_eq!(
        back.classes[0].excludes,
        [matched(
            ListName::Allow,
            "GET /v1/customers/*",
            Presence::Old
        )]
    );
}

/// A rule moved from `allow` to `deny` with the same text is removed from one
/// list and added to the other, never "in both"; a rule kept is in both.
#[test]
fn presence_is_per_list_and_per_rule() {
    let old = set(&["GET /**", "GET /b/*"], &[], &[]);
    let new = set(&["GET /**"], &["GET /b/*"], &[]);
    let d = diff(Some(&old), Some(&new)).unwrap();
    let kept = matched(ListName::Allow, "GET /**", Presence::Both);
    let allow_b = matched(ListName::Allow, "GET /b/*", Presence::Old);
    let deny_b = matched(ListName::Deny, "GET /b/*", Presence::New);
    // `/b/x`: every rule matches.
    let exact = d.class_of("GET", "/b/x").unwrap();
    assert_eq!(exact.change, Change::NewlyRefused);
    assert_eq!(exact.methods, ["GET"]);
    assert_eq!(
        exact.matches,
        [kept.clone(), allow_b.clone(), deny_b.clone()]
    );
    assert!(exact.excludes.is_empty(), "{exact:?}");
    // `/B/x`: the deny rule matches it (deny rules ignore case), the old allow
    // rule does not: its own class, which the removed allow rule tells apart.
    let upper = d.class_of("GET", "/B/x").unwrap();
    assert_eq!(upper.change, Change::NewlyRefused);
    assert_eq!(upper.matches, [kept, deny_b]);
    assert_eq!(upper.excludes, [allow_b]);
    assert_eq!(d.classes.len(), 2, "{:?}", d.classes);
    // HEAD: the old GET rules never allowed it, so the new GET deny rule (which
    // refuses HEAD too) changes nothing for it.
    assert!(d.class_of("HEAD", "/b/x").is_none());
}

/// A class's "not" list names only rules that can decide one of its methods: a
/// `GET` deny rule for a `HEAD` class (deny rules for `GET` refuse `HEAD` too),
/// never a `GET` allow rule (which does not allow `HEAD`) or a `POST` deny rule.
#[test]
fn excludes_name_only_rules_for_the_class_methods() {
    let new = set(
        &["HEAD /v1/**", "GET /v1/reports/*"],
        &["GET /v1/admin/*", "POST /v1/private/*"],
        &[],
    );
    let d = diff(None, Some(&new)).unwrap();
    let head = matched(ListName::Allow, "HEAD /v1/**", Presence::New);
    let c = d.class_of("HEAD", "/v1/other").unwrap();
    assert_eq!(c.change, Change::NewlyAllowed);
    assert_eq!(c.methods, ["HEAD"]);
    assert_eq!(c.matches, std::slice::from_ref(&head));
    assert_eq!(
        c.excludes,
        [matched(ListName::Deny, "GET /v1/admin/*", Presence::New)]
    );
    // The deny rule for GET refuses HEAD on its paths: no change there.
    assert!(d.class_of("HEAD", "/v1/admin/x").is_none());
    // The POST deny rule does not refuse HEAD: a class of its own, HEAD only.
    let private = d.class_of("HEAD", "/v1/private/x").unwrap();
    assert_eq!(private.methods, ["HEAD"]);
    assert_eq!(
        private.matches,
        [
            head.clone(),
            matched(ListName::Deny, "POST /v1/private/*", Presence::New)
        ]
    );
    // No rule for HEAD matches some of its paths and not others.
    assert!(private.excludes.is_empty(), "{private:?}");
    assert!(d.class_of("POST", "/v1/private/x").is_none());
    // GET and HEAD both gained `/v1/reports/*`.
    let reports = d.class_of("GET", "/v1/reports/x").unwrap();
    assert_eq!(reports.methods, ["GET", "HEAD"]);
    // The GET deny rule concerns HEAD, but no path is both a report and an admin
    // path: it tells this class from none of its neighbours.
    assert!(reports.excludes.is_empty(), "{reports:?}");
    assert_eq!(d.classes.len(), 3, "{:?}", d.classes);
}

/// Extra methods only one side allows are listed, each on its side; one both
/// allow is in neither list. A method only one side allows is decided by its
/// own rules: PROPFIND lost, REPORT gained.
#[test]
fn extra_methods_added_and_removed() {
    let old = set(&["PROPFIND /dav/**"], &[], &["PROPFIND", "MKCOL"]);
    let new = set(&["REPORT /dav/**"], &[], &["MKCOL", "REPORT"]);
    let d = diff(Some(&old), Some(&new)).unwrap();
    assert_eq!(d.methods_removed, ["PROPFIND"]);
    assert_eq!(d.methods_added, ["REPORT"]);
    let lost = d.class_of("PROPFIND", "/dav/x").unwrap();
    assert_eq!(lost.change, Change::NewlyRefused);
    assert_eq!(lost.methods, ["PROPFIND"]);
    let gained = d.class_of("report", "/dav/x").unwrap();
    assert_eq!(gained.change, Change::NewlyAllowed);
    assert_eq!(gained.methods, ["REPORT"]);
    assert!(d.class_of("MKCOL", "/dav/x").is_none());
    assert_eq!(d.classes.len(), 2);
}

/// Paths that begin with a character no rule names are a class of their own,
/// found although every character the rules name (in either case, and `;`)
/// leads elsewhere: the diff stands for all unnamed characters by one of them.
#[test]
fn a_class_only_unnamed_characters_reach_is_found() {
    let new = set(&["GET /*"], &["* /g*", "* /;*"], &[]);
    let d = diff(None, Some(&new)).unwrap();
    for p in ["/h", "/x", "/%C3%A9"] {
        let c = d
            .class_of("GET", p)
            .unwrap_or_else(|| panic!("{p}: {:?}", d.classes));
        assert_eq!(c.change, Change::NewlyAllowed);
        assert_eq!(
            c.matches,
            [matched(ListName::Allow, "GET /*", Presence::New)]
        );
        // Its example is itself such a path: not refused, not a `g` or `;` one.
        let t = normalize(&c.example).unwrap();
        assert!(new.decide("GET", &t).is_allowed(), "{}", c.example);
    }
    for p in ["/g", "/G", "/;x"] {
        assert!(d.class_of("GET", p).is_none(), "{p}");
    }
}

/// The character standing for the unnamed ones is not a hex digit: after a `%`
/// (decoded `%25`) a hex digit followed by another makes a double encoding the
/// normalizer refuses, while `%`, an unnamed letter and a hex digit is a path
/// (`/%25h1`). Here every other way into `%…1` is a class of its own, so only
/// such a path reaches the class of `%25*1` alone.
#[test]
fn a_class_reached_only_through_an_unnamed_non_hex_character_is_found() {
    let new = set(
        &["GET /%25*1", "GET /%25*%25*", "GET /%251*", "GET /%25*;*"],
        &[],
        &[],
    );
    let d = diff(None, Some(&new)).unwrap();
    let t = normalize("/%25h1").unwrap();
    assert_eq!(t.path, "/%25h1");
    assert!(new.decide("GET", &t).is_allowed());
    let c = d
        .class_of("GET", &t.path)
        .unwrap_or_else(|| panic!("{:?}", d.classes));
    assert_eq!(c.change, Change::NewlyAllowed);
    assert_eq!(
        c.matches,
        [matched(ListName::Allow, "GET /%25*1", Presence::New)]
    );
    assert_eq!(normalize(&c.example).unwrap().path, c.example);
    assert!(normalize("/%25a1").is_err(), "a double encoding");
}
