//! Janee rules → airlock rules.
//!
//! Janee (`src/core/rules.ts`) splits a rule on whitespace into exactly `METHOD PATH`
//! (anything else never matches), compares the method case-insensitively (`*` = any),
//! and matches the path against the agent's *raw* request target with every `*`
//! turned into the regex `.*` — any characters, `/` and `?` included — anchored at
//! both ends; without a `*` it is plain string equality.
//!
//! airlock matches the *normalized path* (never the query): `*` is a run within one
//! segment and a whole `**` segment is any number of segments. A Janee `*` is
//! exactly "a run within the segment" ∪ "the rest of this segment, any whole
//! segments, the start of a later one", which is how each star is rewritten:
//!
//! | Janee star | airlock |
//! |---|---|
//! | the whole pattern, or leading and followed by `/` (`*`, `*/x`) | `/**` (`/**/x`) |
//! | leading, followed by text (`*.json`) | `/**/*.json` |
//! | a whole inner segment (`/a/*/b`) | `/a/*/**/b` (one segment or more) |
//! | trailing, inside a segment (`/v1/cust*`) | `/v1/cust*/**` |
//! | trailing after `/` (`/v1/x/*`) | allow: `/v1/x/*/**`; deny: `/v1/x/**` (see below) |
//! | inside a segment with text after it (`/v1/a*b`) | two rules: `/v1/a*b` and `/v1/a*/**/*b` |
//!
//! These are exact on normalized paths, with one unavoidable difference: Janee's
//! `/v1/x/*` also matches `/v1/x/` (empty star), and airlock matches a trailing `/`
//! like its absence. So an *allow* becomes `/v1/x/*/**` (narrower: `/v1/x/` is no
//! longer allowed) and a *deny* becomes `/v1/x/**` (wider: `/v1/x` is denied too);
//! both say so in a note. Whatever cannot be written exactly is made narrower for
//! allow rules (or dropped) and wider for deny rules — never the other way.

use airlock_policy::{Rule, RuleError, normalize, normalize_method};

/// Which list a rule is in: decides the safe direction of any approximation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    /// An allow rule: may only become narrower.
    Allow,
    /// A deny rule: may only become wider.
    Deny,
}

/// The airlock rules for one Janee rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Translation {
    /// Canonical airlock rules (possibly none).
    pub(crate) rules: Vec<String>,
    /// What differs from Janee's meaning, when something does.
    pub(crate) note: Option<String>,
}

/// Most airlock rules one Janee rule may expand to.
const MAX_RULES: usize = 8;

fn dropped(note: impl Into<String>) -> Translation {
    Translation {
        rules: Vec::new(),
        note: Some(note.into()),
    }
}

/// Translates one Janee rule for the given list.
pub(crate) fn translate(janee: &str, kind: Kind) -> Translation {
    let parts: Vec<&str> = janee.split_whitespace().collect();
    let [method, path] = parts.as_slice() else {
        return dropped(
            "it is not \"METHOD PATH\", so Janee never matched it; not imported".to_string(),
        );
    };
    let method = if *method == "*" {
        "*".to_string()
    } else {
        match normalize_method(method, &[]) {
            Ok(m) => m,
            Err(e) => {
                return dropped(match kind {
                    Kind::Allow => format!("{e}; not imported"),
                    Kind::Deny => format!(
                        "{e}, so airlock refuses that method anyway; the deny is not needed"
                    ),
                });
            }
        }
    };
    if let Some(cut) = path.find(['?', '#']) {
        return match kind {
            Kind::Allow => dropped(
                "it matches on the query string, which airlock rules never do; not imported",
            ),
            Kind::Deny if cut == 0 => dropped("it never matched a path that starts with '/'"),
            Kind::Deny => {
                let mut t = translate_path(&method, &path[..cut], kind);
                if !t.rules.is_empty() {
                    t.note = Some(format!(
                        "it matched on the query string; airlock denies {} for every query",
                        t.rules.join(", ")
                    ));
                }
                t
            }
        };
    }
    translate_path(&method, path, kind)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Tok<'a> {
    Lit(&'a str),
    Star,
}

fn tokenize(p: &str) -> Vec<Tok<'_>> {
    let mut out = Vec::new();
    let mut rest = p;
    while !rest.is_empty() {
        match rest.find('*') {
            Some(0) => {
                if out.last() != Some(&Tok::Star) {
                    out.push(Tok::Star);
                }
                rest = &rest[1..];
            }
            Some(i) => {
                out.push(Tok::Lit(&rest[..i]));
                rest = &rest[i..];
            }
            None => {
                out.push(Tok::Lit(rest));
                rest = "";
            }
        }
    }
    out
}

fn parse(method: &str, path: &str) -> Result<String, RuleError> {
    Rule::parse(&format!("{method} {path}")).map(|r| r.as_str().to_string())
}

fn translate_path(method: &str, path: &str, kind: Kind) -> Translation {
    let toks = tokenize(path);
    if !toks.contains(&Tok::Star) {
        return translate_literal(method, path, kind);
    }
    if !path.starts_with(['/', '*']) {
        return dropped("its path does not start with '/', so Janee never matched it");
    }
    let lit = |i: usize| match toks.get(i) {
        Some(Tok::Lit(s)) => Some(*s),
        _ => None,
    };
    let mut alts = vec![String::new()];
    let mut note = None;
    for (i, tok) in toks.iter().enumerate() {
        let forms: Vec<&str> = match tok {
            Tok::Lit(s) => vec![s],
            Tok::Star => {
                let prev = i.checked_sub(1).and_then(lit);
                let next = lit(i + 1);
                match (prev, next) {
                    (None, None) => vec!["/**"],
                    (None, Some(n)) if n.starts_with('/') => vec!["/**"],
                    (None, Some(_)) => vec!["/**/*"],
                    (Some(p), None) if p.ends_with('/') => {
                        let base = alts[0].trim_end_matches('/');
                        let base = if base.is_empty() { "/" } else { base };
                        match kind {
                            Kind::Allow => {
                                note = Some(format!(
                                    "Janee also allowed \"{base}/\" (the star matching nothing), which airlock \
                                     matches like \"{base}\"; add \"{method} {base}\" if the agent needs it"
                                ));
                                vec!["*/**"]
                            }
                            Kind::Deny => {
                                if base != "/" {
                                    note = Some(format!(
                                        "it also denies \"{base}\" itself: Janee denied \"{base}/\", and airlock \
                                         matches that like \"{base}\""
                                    ));
                                }
                                vec!["**"]
                            }
                        }
                    }
                    (Some(_), None) => vec!["*/**"],
                    (Some(p), Some(n)) if p.ends_with('/') && n.starts_with('/') => vec!["*/**"],
                    _ => vec!["*", "*/**/*"],
                }
            }
        };
        alts = alts
            .iter()
            .flat_map(|a| forms.iter().map(move |f| format!("{a}{f}")))
            .collect();
        if alts.len() > MAX_RULES {
            return fallback(
                method,
                path,
                kind,
                format!("it would need more than {MAX_RULES} airlock rules"),
            );
        }
    }
    let mut rules = Vec::new();
    let mut failed = None;
    for alt in &alts {
        match parse(method, alt) {
            Ok(r) => {
                if !rules.contains(&r) {
                    rules.push(r);
                }
            }
            Err(e) => failed = Some(e),
        }
    }
    match (failed, kind) {
        (None, _) => Translation { rules, note },
        (Some(e), Kind::Deny) => fallback(method, path, kind, &e),
        (Some(e), Kind::Allow) if rules.is_empty() => dropped(format!("{e}; not imported")),
        (Some(e), Kind::Allow) => Translation {
            note: Some(format!(
                "only part of it could be written ({e}); imported as {}",
                rules.join(", ")
            )),
            rules,
        },
    }
}

fn translate_literal(method: &str, path: &str, kind: Kind) -> Translation {
    if let Ok(r) = parse(method, path) {
        return Translation {
            rules: vec![r],
            note: None,
        };
    }
    match normalize(path) {
        Ok(t) if t.query.is_none() => match parse(method, &t.path) {
            Ok(r) => Translation {
                note: Some(format!(
                    "written as \"{r}\": airlock matches the normalized path, which is what it sends"
                )),
                rules: vec![r],
            },
            Err(e) => match kind {
                Kind::Allow => dropped(format!("{e}; not imported")),
                Kind::Deny => fallback(method, path, kind, &e),
            },
        },
        Ok(_) => dropped("it never matched a path"),
        Err(e) => dropped(format!(
            "airlock refuses that path in every request ({e}), so the rule is not needed"
        )),
    }
}

/// A deny rule that cannot be written exactly: deny everything under the longest
/// literal whole-segment prefix, which covers all Janee matched (and more).
fn fallback(method: &str, path: &str, kind: Kind, why: impl std::fmt::Display) -> Translation {
    if kind == Kind::Allow {
        return dropped(format!("{why}; not imported"));
    }
    let first_star = path.find('*').unwrap_or(path.len());
    let prefix = &path[..first_star];
    let mut base = &prefix[..prefix.rfind('/').map_or(0, |i| i + 1)];
    loop {
        let candidate = if base.is_empty() || base == "/" {
            "/**".to_string()
        } else {
            format!("{base}**")
        };
        if let Ok(r) = parse(method, &candidate) {
            return Translation {
                note: Some(format!(
                    "it cannot be written exactly ({why}); widened to \"{r}\" so that nothing Janee denied is allowed"
                )),
                rules: vec![r],
            };
        }
        if base.len() <= 1 {
            break;
        }
        let trimmed = &base[..base.len() - 1];
        base = &trimmed[..trimmed.rfind('/').map_or(0, |i| i + 1)];
    }
    // `METHOD /**` always parses for a method that was already accepted.
    dropped(format!("{why}; not imported"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn rules(janee: &str, kind: Kind) -> Vec<String> {
        translate(janee, kind).rules
    }

    #[test]
    fn table() {
        use Kind::*;
        assert_eq!(rules("GET *", Allow), ["GET /**"]);
        assert_eq!(rules("* *", Allow), ["* /**"]);
        assert_eq!(rules("get /v1/balance", Allow), ["GET /v1/balance"]);
        assert_eq!(rules("GET /v1/cust*", Allow), ["GET /v1/cust*/**"]);
        assert_eq!(
            rules("POST /v1/refunds/*", Allow),
            ["POST /v1/refunds/*/**"]
        );
        assert!(translate("POST /v1/refunds/*", Allow).note.is_some());
        assert_eq!(rules("POST /v1/charges/*", Deny), ["POST /v1/charges/**"]);
        assert!(translate("POST /v1/charges/*", Deny).note.is_some());
        assert_eq!(rules("GET /repos/**", Allow), ["GET /repos/*/**"]);
        assert_eq!(rules("DELETE /**", Deny), ["DELETE /**"]);
        assert_eq!(
            rules("POST /repos/*/issues/*/comments", Allow),
            ["POST /repos/*/**/issues/*/**/comments"]
        );
        assert_eq!(rules("GET */raw", Allow), ["GET /**/raw"]);
        assert_eq!(rules("GET *.json", Allow), ["GET /**/*.json"]);
        assert_eq!(
            rules("GET /v1/ch_*_x", Allow),
            ["GET /v1/ch_*_x", "GET /v1/ch_*/**/*_x"]
        );
        assert!(translate("GET /v1/ch_*_x", Allow).note.is_none());
        // Not METHOD PATH, bad methods, queries.
        assert_eq!(rules("GET", Allow), Vec::<String>::new());
        assert_eq!(rules("GET /a /b", Deny), Vec::<String>::new());
        assert_eq!(rules("TRACE /x", Allow), Vec::<String>::new());
        assert_eq!(rules("TRACE /x", Deny), Vec::<String>::new());
        assert_eq!(rules("GET /search?q=*", Allow), Vec::<String>::new());
        assert_eq!(rules("GET /search?q=*", Deny), ["GET /search"]);
        assert_eq!(rules("GET v1/*", Allow), Vec::<String>::new());
        // Not normalized: rewritten for literals, widened for deny globs.
        assert_eq!(rules("GET /v1//x", Allow), ["GET /v1/x"]);
        assert_eq!(rules("GET /v1/./x/*", Deny), ["GET /v1/**"]);
        assert_eq!(rules("GET /v1/./x/*", Allow), Vec::<String>::new());
        // Too many stars inside segments.
        assert_eq!(rules("GET /a*b*c*d*e", Deny), ["GET /**"]);
        assert_eq!(rules("GET /x/a*b*c*d*e", Allow), Vec::<String>::new());
    }

    /// Janee's matcher: `*` is `.*`, everything else literal, anchored.
    fn janee_matches(pattern: &str, path: &str) -> bool {
        if !pattern.contains('*') {
            return pattern == path;
        }
        let parts: Vec<&str> = pattern.split('*').collect();
        let (first, last) = (parts[0], parts[parts.len() - 1]);
        if !path.starts_with(first) || path.len() < first.len() + last.len() {
            return false;
        }
        if !path.ends_with(last) {
            return false;
        }
        let mut rest = &path[first.len()..path.len() - last.len()];
        for mid in &parts[1..parts.len() - 1] {
            match rest.find(mid) {
                Some(i) => rest = &rest[i + mid.len()..],
                None => return false,
            }
        }
        true
    }

    fn airlock_matches(rules: &[String], path: &str) -> bool {
        rules
            .iter()
            .any(|r| Rule::parse(r).is_ok_and(|r| r.matches("GET", path)))
    }

    fn seg() -> impl Strategy<Value = String> {
        prop_oneof![
            Just("a".to_string()),
            Just("b".to_string()),
            Just("ab".to_string()),
            Just("v1".to_string()),
            Just("x.json".to_string()),
        ]
    }

    fn pattern_piece() -> impl Strategy<Value = String> {
        prop_oneof![
            seg(),
            Just("*".to_string()),
            Just("a*".to_string()),
            Just("*b".to_string()),
            Just("a*b".to_string()),
            Just("**".to_string()),
        ]
    }

    proptest! {
        /// On normalized paths: allow translations never allow more than Janee did,
        /// deny translations never deny less.
        #[test]
        fn never_wider_allow_never_narrower_deny(
            pieces in proptest::collection::vec(pattern_piece(), 0..4),
            lead_star in any::<bool>(),
            trail_slash_star in any::<bool>(),
            segs in proptest::collection::vec(seg(), 0..5),
            trailing_slash in any::<bool>(),
        ) {
            let mut pattern = if lead_star { "*".to_string() } else { String::new() };
            for p in &pieces {
                pattern.push('/');
                pattern.push_str(p);
            }
            if trail_slash_star {
                pattern.push_str("/*");
            }
            if pattern.is_empty() {
                pattern.push('/');
            }
            let mut path = String::new();
            for s in &segs {
                path.push('/');
                path.push_str(s);
            }
            if path.is_empty() {
                path.push('/');
            }
            let rule = format!("GET {pattern}");
            let allow = translate(&rule, Kind::Allow).rules;
            let deny = translate(&rule, Kind::Deny).rules;
            let j = janee_matches(&pattern, &path);
            if airlock_matches(&allow, &path) {
                prop_assert!(j, "allow {allow:?} matches {path} but Janee {pattern} does not");
            }
            if j {
                prop_assert!(airlock_matches(&deny, &path), "deny {deny:?} misses {path} matched by Janee {pattern}");
            }
            if trailing_slash && path != "/" {
                let slashed = format!("{path}/");
                if janee_matches(&pattern, &slashed) {
                    prop_assert!(airlock_matches(&deny, &slashed), "deny {deny:?} misses {slashed}");
                }
            }
        }

        /// Where the translation says nothing, it is exact on these paths.
        #[test]
        fn silent_translations_are_exact(
            pieces in proptest::collection::vec(pattern_piece(), 1..4),
            segs in proptest::collection::vec(seg(), 0..5),
        ) {
            let pattern: String = pieces.iter().map(|p| format!("/{p}")).collect();
            let path: String = if segs.is_empty() { "/".into() } else { segs.iter().map(|s| format!("/{s}")).collect() };
            for kind in [Kind::Allow, Kind::Deny] {
                let t = translate(&format!("GET {pattern}"), kind);
                if t.note.is_none() {
                    prop_assert_eq!(airlock_matches(&t.rules, &path), janee_matches(&pattern, &path),
                        "{:?} {} vs {:?} on {}", kind, pattern, t.rules, path);
                }
            }
        }
    }
}
