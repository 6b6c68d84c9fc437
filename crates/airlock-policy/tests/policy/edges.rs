//! Edges of normalization and rule matching that the adversarial table does not
//! pin down: the exact size bound, which refusal an absolute target gets, the
//! names of control characters in refusals, repeated pieces of a segment glob,
//! extra methods, and rule identity. Each was found by mutation testing
//! (docs/testing.md, "Mutation testing").

use std::collections::HashSet;

use airlock_policy::{PathError, Rule, RuleSet, normalize};

/// docs/policy.md: "the raw target is at most 16 KiB".
const SIXTEEN_KIB: usize = 16 * 1024;

#[test]
fn a_target_of_exactly_16_kib_is_accepted_and_one_byte_more_is_refused() {
    let at_limit = format!("/{}", "a".repeat(SIXTEEN_KIB - 1));
    assert_eq!(at_limit.len(), SIXTEEN_KIB);
    assert_eq!(normalize(&at_limit).unwrap().path, at_limit);

    // 16 KiB of path and query together
    let with_query = format!("/v1?{}", "q".repeat(SIXTEEN_KIB - 4));
    assert_eq!(with_query.len(), SIXTEEN_KIB);
    assert!(normalize(&with_query).is_ok());

    let over = format!("{at_limit}a");
    assert_eq!(
        normalize(&over),
        Err(PathError::TooLong {
            len: SIXTEEN_KIB + 1,
            max: SIXTEEN_KIB
        })
    );
    assert_eq!(
        normalize(&over).unwrap_err().to_string(),
        "the request target is 16385 bytes long; at most 16384 bytes are accepted"
    );
}

#[test]
fn only_a_real_scheme_is_refused_as_a_scheme() {
    for absolute in [
        "https://api.example.com/v1",
        "mailto:x",
        "a+b-c.d:rest",
        "H:x",
    ] {
        assert!(
            matches!(normalize(absolute), Err(PathError::Scheme { .. })),
            "{absolute}: {:?}",
            normalize(absolute)
        );
    }
    // A scheme starts with a letter and holds only letters, digits, `+`, `-`, `.`:
    // anything else before a colon is just a relative path.
    for relative in ["1http://x/", "+a:x", "v1 x:y", "v1/x:y", "_a:b"] {
        assert!(
            matches!(
                normalize(relative),
                Err(PathError::MissingLeadingSlash { .. })
            ),
            "{relative}: {:?}",
            normalize(relative)
        );
    }
}

#[test]
fn a_refused_control_character_is_named() {
    for (raw, name) in [
        ("/v1/a\0b", "a NUL byte"),
        ("/v1/a\tb", "a tab"),
        ("/v1/a\rb", "a carriage return (CR)"),
        ("/v1/a\nb", "a line feed (LF)"),
        ("/v1/a\x7fb", "DEL"),
        ("/v1/a\x1bb", "control character 0x1B"),
    ] {
        let message = normalize(raw).unwrap_err().to_string();
        assert!(
            message.contains(&format!("contains {name} at byte 5;")),
            "{raw:?}: {message}"
        );
    }
}

#[test]
fn each_piece_of_a_segment_glob_needs_its_own_occurrence() {
    let rules = RuleSet::compile(&["GET /v1/x*ab*ab*y".to_string()], &[], &[]).unwrap();
    let decide = |path: &str| rules.decide("GET", &normalize(path).unwrap()).is_allowed();
    assert!(decide("/v1/xababy"));
    assert!(decide("/v1/x-ab-ab-y"));
    assert!(!decide("/v1/xaby"), "one `ab` cannot serve as both pieces");
    assert!(!decide("/v1/xabay"));

    let rule = Rule::parse("GET /v1/a*b*c").unwrap();
    assert!(rule.matches("GET", "/v1/abc"));
    assert!(rule.matches("GET", "/v1/a-b-c"));
    assert!(!rule.matches("GET", "/v1/ac"));
    assert!(!rule.matches("GET", "/v1/acb"));
}

#[test]
fn extra_methods_are_kept_once_and_never_repeat_a_standard_method() {
    let extras = ["purge", "GET", "PURGE", "Report", "post"].map(String::from);
    let rules = RuleSet::compile(&["* /v1/**".to_string()], &[], &extras).unwrap();
    assert_eq!(rules.extra_methods(), ["PURGE", "REPORT"]);
    let methods = rules.methods();
    let unique: HashSet<&str> = methods.iter().copied().collect();
    assert_eq!(
        unique.len(),
        methods.len(),
        "a method listed twice: {methods:?}"
    );
    assert!(methods.ends_with(&["PURGE", "REPORT"]), "{methods:?}");
    let target = normalize("/v1/cache").unwrap();
    assert!(rules.decide("PURGE", &target).is_allowed());
    assert!(rules.decide("report", &target).is_allowed());
    assert!(!rules.decide("MKCOL", &target).is_allowed());
}

#[test]
fn rules_are_equal_exactly_when_their_canonical_text_is() {
    let a = Rule::parse("GET /v1/**").unwrap();
    assert_eq!(
        a,
        Rule::parse("get /v1/**").unwrap(),
        "methods are case-insensitive"
    );
    assert_ne!(a, Rule::parse("GET /v2/**").unwrap());
    assert_ne!(a, Rule::parse("POST /v1/**").unwrap());
    let set: HashSet<Rule> = ["GET /v1/**", "get /v1/**", "POST /v1/**"]
        .iter()
        .map(|s| Rule::parse(s).unwrap())
        .collect();
    assert_eq!(set.len(), 2);
    // what a failing assertion on rules prints
    assert_eq!(format!("{a:?}"), r#"Rule("GET /v1/**")"#);
}
