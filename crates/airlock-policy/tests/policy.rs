//! Integration tests for airlock-policy: the adversarial path table, the "no trick
//! reaches admin" property, and proptests for the invariants of DESIGN.md §4 / §7.3.
#![allow(clippy::unwrap_used)]

use airlock_policy::{Decision, DenyReason, PathError, Rule, RuleSet, normalize};
use proptest::prelude::*;

#[path = "policy/edges.rs"]
mod edges;
#[path = "policy/index.rs"]
mod index;

// ---------------------------------------------------------------------------------
// The adversarial table
// ---------------------------------------------------------------------------------

/// Expected outcome of normalizing one input.
#[derive(Debug)]
enum Want {
    /// Accepted, with this normalized path.
    Path(&'static str),
    /// Refused with the `PathError` variant of this name.
    Refused(&'static str),
}

use Want::{Path, Refused};

#[path = "support/oracles.rs"]
mod oracles;
use oracles::{assert_clean, decode, reaches_admin, reference_decision};

/// Each input, what normalization must do with it, and why it is in the table.
const TABLE: &[(&str, Want, &str)] = &[
    ("/v1/../admin", Path("/admin"), "dot segment resolved"),
    (
        "/v1/%2e%2e/admin",
        Path("/admin"),
        "encoded dots decoded, then resolved",
    ),
    (
        "/v1/%2E%2e/admin",
        Path("/admin"),
        "mixed-case encoded dots",
    ),
    ("/v1/.%2e/admin", Path("/admin"), "half-encoded dot segment"),
    ("/v1/%2e/admin", Path("/v1/admin"), "encoded single dot"),
    ("//v1", Refused("Authority"), "leading // reads as a host"),
    ("/v1//admin", Path("/v1/admin"), "// collapses"),
    ("/v1/%2fadmin", Refused("EncodedSlash"), "encoded slash"),
    (
        "/v1/%2Fadmin",
        Refused("EncodedSlash"),
        "encoded slash, upper case",
    ),
    (
        "/v1/%5cadmin",
        Refused("EncodedBackslash"),
        "encoded backslash",
    ),
    ("/v1\\admin", Refused("Backslash"), "literal backslash"),
    ("/v1/..\\admin", Refused("Backslash"), "backslash traversal"),
    ("/v1/%00", Refused("EncodedControl"), "encoded NUL"),
    ("/v1/\0", Refused("ControlChar"), "literal NUL"),
    ("/v1/\t", Refused("ControlChar"), "tab"),
    (
        "/v1\r\nHost: evil",
        Refused("ControlChar"),
        "CRLF header injection",
    ),
    (
        "/v1/%0d%0aHost:%20evil",
        Refused("EncodedControl"),
        "encoded CRLF",
    ),
    ("/v1/\x7f", Refused("ControlChar"), "DEL"),
    ("http://evil.com/v1", Refused("Scheme"), "absolute URL"),
    (
        "HTTP://evil.com/v1",
        Refused("Scheme"),
        "absolute URL, upper case",
    ),
    (
        "//evil.com/v1",
        Refused("Authority"),
        "network-path reference",
    ),
    ("/v1#frag", Refused("Fragment"), "fragment"),
    ("/v1?x=1#f", Refused("Fragment"), "fragment after a query"),
    (
        "/%41dmin",
        Path("/Admin"),
        "encoded unreserved letter decoded",
    ),
    (
        "/v1/charges/",
        Path("/v1/charges/"),
        "trailing slash kept in the sent path",
    ),
    ("/..", Refused("EscapesRoot"), ".. above the root"),
    (
        "/v1/../..",
        Refused("EscapesRoot"),
        ".. above the root, later",
    ),
    (
        "/%2e%2e",
        Refused("EscapesRoot"),
        "encoded .. above the root",
    ),
    ("/./v1", Path("/v1"), "leading dot segment"),
    ("/.", Path("/"), "lone dot"),
    (
        "/v1/%c0%ae%c0%ae/admin",
        Refused("InvalidUtf8"),
        "overlong UTF-8 dots",
    ),
    (
        "/v1/%c0%afadmin",
        Refused("InvalidUtf8"),
        "overlong UTF-8 slash",
    ),
    (
        "/v1/%e0%80%ae",
        Refused("InvalidUtf8"),
        "3-byte overlong dot",
    ),
    ("/v1/%ff", Refused("InvalidUtf8"), "stray high byte"),
    (
        "/v1/%ef%bc%8e%ef%bc%8e/admin",
        Refused("Confusable"),
        "fullwidth dots",
    ),
    (
        "/v1/%ef%bc%8fadmin",
        Refused("Confusable"),
        "fullwidth solidus",
    ),
    (
        "/v1/%e2%88%95admin",
        Refused("Confusable"),
        "division slash",
    ),
    (
        "/v1/%252e%252e/admin",
        Refused("DoubleEncoded"),
        "double-encoded dots",
    ),
    (
        "/v1/%252fadmin",
        Refused("DoubleEncoded"),
        "double-encoded slash",
    ),
    (
        "/v1/%25%32%65",
        Refused("DoubleEncoded"),
        "double encoding assembled by decoding",
    ),
    (
        "/v1/..;/admin",
        Refused("DotSegmentWithParams"),
        "Tomcat ..; traversal",
    ),
    (
        "/v1/.;x/admin",
        Refused("DotSegmentWithParams"),
        "dot with parameters",
    ),
    ("/v1/%zz", Refused("InvalidEscape"), "not hex"),
    ("/v1/%4", Refused("InvalidEscape"), "truncated escape"),
    ("/v1/%", Refused("InvalidEscape"), "bare percent"),
    (
        "/v1?x=%zz",
        Refused("InvalidEscape"),
        "malformed escape in the query",
    ),
    ("/v1 /admin", Refused("DisallowedChar"), "space"),
    ("/v1?x=a b", Refused("DisallowedChar"), "space in the query"),
    ("/v1/caf\u{e9}", Refused("NonAscii"), "raw non-ASCII"),
    (
        "/v1/caf%C3%A9",
        Path("/v1/caf%C3%A9"),
        "encoded UTF-8 is kept",
    ),
    ("/v1/caf%c3%a9", Path("/v1/caf%C3%A9"), "hex is upper-cased"),
    (
        "/v1/me%3adelete",
        Path("/v1/me%3Adelete"),
        "reserved escapes kept",
    ),
    ("v1/admin", Refused("MissingLeadingSlash"), "relative path"),
    ("", Refused("Empty"), "empty"),
    ("*", Refused("MissingLeadingSlash"), "asterisk-form"),
    (
        "/v1/admin/%2e%2e/users",
        Path("/v1/users"),
        "climbing out of admin is fine",
    ),
    (
        "/v1/x/../admin",
        Path("/v1/admin"),
        "climbing into admin is seen",
    ),
];

#[test]
fn adversarial_table() {
    let mut failures = Vec::new();
    for (input, want, why) in TABLE {
        let got = normalize(input);
        let ok = match (want, &got) {
            (Path(p), Ok(t)) => t.path == *p,
            (Refused(variant), Err(e)) => variant_name(e) == *variant,
            _ => false,
        };
        if !ok {
            failures.push(format!("{input:?} ({why}): want {want:?}, got {got:?}"));
        }
    }
    assert!(failures.is_empty(), "\n{}", failures.join("\n"));
}

fn variant_name(e: &PathError) -> String {
    let debug = format!("{e:?}");
    debug
        .split(|c: char| !c.is_alphanumeric())
        .next()
        .unwrap_or_default()
        .to_owned()
}

#[test]
fn every_refusal_says_what_and_why() {
    for (input, want, _) in TABLE {
        if let (Refused(_), Err(e)) = (want, normalize(input)) {
            let msg = e.to_string();
            // Never prints raw control characters (log injection), always non-trivial.
            assert!(!msg.chars().any(char::is_control), "{input:?}: {msg:?}");
            assert!(msg.len() > 30, "{input:?}: {msg:?}");
        }
    }
}

/// deny `* /v1/admin/**`, allow `* /v1/**`.
fn admin_fence() -> RuleSet {
    RuleSet::compile(&["* /v1/**"], &["* /v1/admin/**"], &[]).unwrap()
}

/// Tricks aimed at `/v1/admin`. None of them may be allowed.
const ADMIN_TRICKS: &[&str] = &[
    "/v1/admin",
    "/v1/admin/",
    "/v1/admin/users",
    "/v1/admin?x=1",
    "/v1/x/../admin",
    "/v1/x/%2e%2e/admin",
    "/v1/x/%2E%2E/admin/users",
    "/v1/x/.%2e/admin",
    "/v1/./admin",
    "/v1/%2e/admin",
    "/v1//admin",
    "/v1///admin/",
    "/v1/%61dmin",
    "/v1/%61%64%6d%69%6e/",
    "/v1/ADMIN",
    "/v1/Admin/users",
    "/v1/admin;jsessionid=1/users",
    "/v1/admin;/users",
    "/v1/;x/admin",
    "/v1/x/..;/admin",
    "/v1/%2fadmin",
    "/v1%2fadmin",
    "/v1/%5cadmin",
    "/v1\\admin",
    "/v1/admin%00",
    "/v1/admin%0a",
    "/v1/admin\r\nX: y",
    "/v1/%c0%ae%c0%ae/v1/admin",
    "/v1/x/%c0%ae%c0%ae/admin",
    "/v1/x/%252e%252e/admin",
    "/v1/x/%ef%bc%8e%ef%bc%8e/admin",
    "/v1/%ef%bc%8fadmin",
    "//v1/admin",
    "http://localhost/v1/admin",
    "/v1/admin#",
    "/v1/admin/../admin",
    "/v1/x/y/../../admin",
    "/v2/../v1/admin",
    "/../v1/admin",
    "/v1/admin/.",
    "/v1/admin/x/..",
];

#[test]
fn no_trick_reaches_admin() {
    let rs = admin_fence();
    for method in ["GET", "head", "post", "DELETE", "TRACE"] {
        for raw in ADMIN_TRICKS
            .iter()
            .chain(TABLE.iter().map(|(raw, _, _)| raw))
        {
            let explained = rs.explain(method, raw).decision;
            let Ok(target) = normalize(raw) else {
                // Refused before any rule is consulted.
                assert!(!explained.is_allowed(), "{method} {raw:?}");
                continue;
            };
            let decided = rs.decide(method, &target);
            assert_eq!(explained, decided, "{method} {raw:?}");
            if decided.is_allowed() {
                assert!(
                    !reaches_admin(&target.path),
                    "{method} {raw:?} reached admin as {:?}",
                    target.path
                );
            }
        }
    }
    // And the plain paths still work.
    assert!(
        rs.decide("GET", &normalize("/v1/customers").unwrap())
            .is_allowed()
    );
    assert!(
        rs.decide("GET", &normalize("/v1/administrator").unwrap())
            .is_allowed()
    );
}

#[test]
fn trailing_slash_does_not_escape_a_rule() {
    let rs = RuleSet::compile(&[], &["POST /v1/charges"], &[]).unwrap();
    for raw in [
        "/v1/charges",
        "/v1/charges/",
        "/v1/charges//",
        "/v1/charges/.",
        "/v1/x/../charges/",
    ] {
        let t = normalize(raw).unwrap();
        assert_eq!(
            rs.decide("POST", &t),
            Decision::Deny {
                reason: DenyReason::DenyRule("POST /v1/charges".into())
            },
            "{raw}"
        );
    }
    // The sent path keeps the agent's trailing slash.
    assert_eq!(normalize("/v1/charges/").unwrap().path, "/v1/charges/");
    assert!(
        rs.decide("GET", &normalize("/v1/charges/").unwrap())
            .is_allowed()
    );
}

#[test]
fn rules_must_be_normalized_paths() {
    for (rule, needle) in [
        ("GET v1/**", "the path must start with '/'"),
        ("GET /v1/../admin", "'..'"),
        ("GET /v1//x", "\"//\""),
        ("GET /v1?x=1", "query"),
        ("GET /v1#x", "fragment"),
        ("GET /v1/%2f", "%2F"),
        ("GET /v1\\x", "backslash"),
        ("GET /v1/%41", "\"/v1/A\""),
        ("GET /v1/a**", "whole segment"),
        ("TRACE /v1", "never allowed"),
        ("GET", "no path"),
        ("", "empty"),
    ] {
        let e = Rule::parse(rule).unwrap_err().to_string();
        assert!(e.starts_with(&format!("rule {rule:?}: ")), "{e}");
        assert!(e.contains(needle), "{rule:?}: {e}");
    }
}

// ---------------------------------------------------------------------------------
// Property tests
// ---------------------------------------------------------------------------------

/// Pieces that exercise every branch of the normalizer.
fn piece() -> impl Strategy<Value = &'static str> {
    prop::sample::select(vec![
        "/", "/", "/", ".", "..", "%2e", "%2E", "%2f", "%5c", "%41", "%61", "%7e", "%3a", "%3A",
        "%25", "%32", "%65", "%zz", "%4", "%", "%00", "%0d", "%c0", "%ae", "%c3", "%a9", "%ef",
        "%bc", "%8e", "a", "A", "b", "v1", "admin", "x", ";", ";x", "=", ":", "@", "*", "**", "~",
        "-", "_", "?", "#", "\\", " ", "\t", "\r", "\n", "é", "[", "]", "//", "http:", "&",
    ])
}

/// Pieces that are each acceptable in a path, so that their combinations often are.
fn valid_piece() -> impl Strategy<Value = &'static str> {
    prop::sample::select(vec![
        "/", "/", "/", "/", ".", "..", "%2e", "%2E", "%41", "%61", "%7e", "%3a", "%3A", "%25",
        "%c3%a9", "%2A", "a", "A", "v1", "admin", "x", ";", ";x", "=", ":", "@", "*", "~", "-",
        "_", "&", "?", "?a=b", "/..", "/.", "/%2e%2e",
    ])
}

fn raw_target() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => prop::collection::vec(piece(), 0..16).prop_map(|v| v.concat()),
        3 => prop::collection::vec(piece(), 0..16).prop_map(|v| format!("/{}", v.concat())),
        6 => prop::collection::vec(valid_piece(), 0..20).prop_map(|v| format!("/v1/x/{}", v.concat())),
        1 => any::<String>(),
        1 => "/[ -~]{0,40}",
    ]
}

fn method() -> impl Strategy<Value = &'static str> {
    prop::sample::select(vec![
        "GET", "get", "POST", "DELETE", "PATCH", "TRACE", "PROPFIND", "*", "",
    ])
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2048, ..ProptestConfig::default() })]

    /// (1) Normalization is idempotent, on the path and on the whole target.
    #[test]
    fn normalize_is_idempotent(raw in raw_target()) {
        if let Ok(t) = normalize(&raw) {
            let again = normalize(&t.path).unwrap();
            prop_assert_eq!(&again.path, &t.path);
            prop_assert_eq!(again.query, None);
            prop_assert_eq!(normalize(&t.to_string()).unwrap(), t);
        }
    }

    /// (2) Accepted ⇒ the sent bytes are the matched bytes: deciding on the target is
    /// the same as matching its `path` string with the rules, and as `explain`.
    #[test]
    fn decision_is_a_function_of_the_sent_path(raw in raw_target(), m in method()) {
        let rs = RuleSet::compile(
            &["GET /v1/**", "* /a/*/b", "POST /v1/x*"],
            &["* /v1/admin/**", "DELETE /**"],
            &[],
        ).unwrap();
        let Ok(t) = normalize(&raw) else { return Ok(()) };
        let decided = rs.decide(m, &t);
        prop_assert_eq!(&rs.explain(m, &raw).decision, &decided);
        prop_assert_eq!(decided, reference_decision(&rs, m, &t.path));
    }

    /// (3) What a normalized path never contains.
    #[test]
    fn normalized_paths_are_clean(raw in raw_target()) {
        if let Ok(t) = normalize(&raw) {
            assert_clean(&t);
        }
    }

    /// (4) Rule matching agrees with a naive recursive reference matcher.
    #[test]
    fn matching_agrees_with_reference(
        pat in prop::collection::vec(pattern_segment(), 0..6),
        path in prop::collection::vec(path_segment(), 0..8),
        trailing in any::<bool>(),
    ) {
        let pattern = format!("/{}", pat.join("/"));
        let mut path_str = format!("/{}", path.join("/"));
        if trailing && !path.is_empty() {
            path_str.push('/');
        }
        let rule = Rule::parse(&format!("GET {pattern}")).unwrap();
        prop_assert_eq!(normalize(&path_str).unwrap().path, path_str.clone());

        let segs: Vec<String> = path.iter().map(|s| decode(s)).collect();
        let toks: Vec<String> = pat.iter().map(|s| (*s).to_owned()).collect();
        let exact = ref_match(&toks, &segs, false);
        prop_assert_eq!(rule.matches("GET", &path_str), exact, "{} vs {}", pattern, path_str);

        let stripped: Vec<String> = segs
            .iter()
            .map(|s| s.split(';').next().unwrap_or_default().to_owned())
            .filter(|s| !s.is_empty())
            .collect();
        let loose = ref_match(&toks, &segs, true) || ref_match(&toks, &stripped, true);
        prop_assert_eq!(rule.matches_loosely("GET", &path_str), loose, "{} vs {}", pattern, path_str);
        prop_assert!(!exact || loose);
        prop_assert!(!rule.matches("POST", &path_str));
    }

    /// Rules round-trip through their canonical text.
    #[test]
    fn rules_round_trip(pat in prop::collection::vec(pattern_segment(), 0..6), m in method()) {
        if let Ok(rule) = Rule::parse(&format!("{m} /{}", pat.join("/"))) {
            prop_assert_eq!(Rule::parse(rule.as_str()).unwrap(), rule);
        }
    }
}

fn pattern_segment() -> impl Strategy<Value = &'static str> {
    prop::sample::select(vec![
        "a", "b", "A", "ab", "*", "a*", "*b", "a*b", "*a*", "**", ":", "%3A", "%2A", "a;x",
    ])
}

fn path_segment() -> impl Strategy<Value = &'static str> {
    prop::sample::select(vec![
        "a", "b", "A", "B", "ab", "ba", "aab", "abb", "Ab", ":", "%3A", "*", "a;x", ";y", "b;",
    ])
}

/// Reference matcher: plain recursion over segments and characters.
fn ref_match(pat: &[String], segs: &[String], ci: bool) -> bool {
    match pat.split_first() {
        None => segs.is_empty(),
        Some((p, rest)) if p == "**" => (0..=segs.len()).any(|k| ref_match(rest, &segs[k..], ci)),
        Some((p, rest)) => match segs.split_first() {
            None => false,
            Some((s, srest)) => {
                ref_glob(&glob_tokens(p), s.as_bytes(), ci) && ref_match(rest, srest, ci)
            }
        },
    }
}

/// `None` is a wildcard, `Some(b)` a literal byte (after decoding, so `%2A` is `*`).
fn glob_tokens(p: &str) -> Vec<Option<u8>> {
    let mut out = Vec::new();
    for (i, piece) in p.split('*').enumerate() {
        if i > 0 {
            out.push(None);
        }
        out.extend(decode(piece).bytes().map(Some));
    }
    out
}

fn ref_glob(p: &[Option<u8>], s: &[u8], ci: bool) -> bool {
    match p.split_first() {
        None => s.is_empty(),
        Some((None, rest)) => (0..=s.len()).any(|k| ref_glob(rest, &s[k..], ci)),
        Some((Some(c), rest)) => match s.split_first() {
            Some((d, srest)) if c == d || (ci && c.eq_ignore_ascii_case(d)) => {
                ref_glob(rest, srest, ci)
            }
            _ => false,
        },
    }
}

/// The generators are not vacuous: a fair share of inputs is accepted (so the
/// properties about accepted targets test something), and a fair share refused.
#[test]
fn generators_reach_both_outcomes() {
    use proptest::strategy::ValueTree;
    use proptest::test_runner::TestRunner;
    let mut runner = TestRunner::deterministic();
    let strategy = raw_target();
    let (mut accepted, mut dotted) = (0, 0);
    for _ in 0..2000 {
        let raw = strategy.new_tree(&mut runner).unwrap().current();
        if normalize(&raw).is_ok() {
            accepted += 1;
            if raw.contains("..") || raw.to_ascii_lowercase().contains("%2e") {
                dotted += 1;
            }
        }
    }
    assert!(
        (200..1800).contains(&accepted),
        "accepted {accepted} of 2000"
    );
    assert!(
        dotted > 20,
        "only {dotted} accepted inputs had dot segments"
    );
}
