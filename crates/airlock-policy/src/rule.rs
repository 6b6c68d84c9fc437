//! One access rule: `METHOD PATH`.

use std::fmt;
use std::hash::{Hash, Hasher};
use std::str::FromStr;

use crate::method::{MethodError, check_method};
use crate::normalize::{PathError, clip, normalize};
use crate::pattern::{PathSegments, Pattern, Strictness, encode};

/// A compiled access rule, `METHOD PATH` (DESIGN.md §4).
///
/// * `METHOD` is an HTTP method (upper-cased when parsed) or `*`, which means any
///   method the capability allows;
/// * `PATH` is a normalized path (exactly what [`crate::normalize`] would return for
///   it) in which `*` matches within one segment and a whole `**` segment matches any
///   number of segments, zero included: `/v1/admin/**` covers `/v1/admin` itself.
///   A literal `*` is written `%2A`.
///
/// A trailing `/` never matters for matching: `POST /v1/charges` covers
/// `/v1/charges/` and `POST /v1/charges/` covers `/v1/charges`.
///
/// Two rules are equal when their canonical text ([`Rule::as_str`]) is equal.
#[derive(Clone)]
pub struct Rule {
    /// One allocation per rule (a million rules load in one process): the
    /// canonical text (upper-cased method or `*`, one space, the path), then the
    /// compiled path pattern (`crate::pattern::encode`). The method and the path
    /// are read from the text.
    data: Box<[u8]>,
    /// Where the text ends and the pattern starts.
    text_len: u32,
}

/// Why a rule, or a method, was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RuleError {
    /// A method (given alone, e.g. to [`crate::normalize_method`]) was refused.
    #[error(transparent)]
    Method(MethodError),
    /// A rule was refused.
    #[error("rule {rule:?}: {problem}")]
    Invalid {
        /// The rule as written (clipped).
        rule: String,
        /// What is wrong with it.
        problem: RuleProblem,
    },
}

/// What is wrong with a rule. Displayed after `rule "<text>": `.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RuleProblem {
    /// The rule is empty or blank.
    #[error("the rule is empty; expected \"METHOD PATH\", e.g. \"GET /v1/**\"")]
    Empty,
    /// Only one part, and it looks like a method.
    #[error("there is no path; expected \"METHOD PATH\", e.g. \"GET /v1/**\"")]
    MissingPath,
    /// Only one part, and it looks like a path.
    #[error(
        "there is no method; expected \"METHOD PATH\", use \"*\" for any method, e.g. \"* /v1/**\""
    )]
    MissingMethod,
    /// More than two whitespace-separated parts.
    #[error(
        "expected \"METHOD PATH\" (two parts separated by a space); a space inside a path \
         is written %20"
    )]
    TooManyParts,
    /// The method was refused.
    #[error("{0}")]
    Method(MethodError),
    /// The path does not start with `/`.
    #[error("the path must start with '/'")]
    RelativePath,
    /// The path has a `?`.
    #[error("a rule cannot contain a query ('?'): rules match the path only")]
    Query,
    /// The path has a `#`.
    #[error("a rule cannot contain a fragment ('#'): fragments are never sent")]
    Fragment,
    /// The path has a `.` or `..` segment.
    #[error(
        "'.' and '..' segments are not allowed: rules match normalized paths, so write \
         the path they resolve to"
    )]
    DotSegment,
    /// The path has an empty segment (`//`).
    #[error(
        "empty segments (\"//\") are not allowed: in a normalized path \"//\" has collapsed to \"/\""
    )]
    EmptySegment,
    /// `**` is part of a segment rather than the whole segment.
    #[error(
        "\"**\" must be a whole segment, as in \"/v1/**\", not part of {segment:?}; use \"*\" \
         to match within a segment"
    )]
    DoubleStar {
        /// The offending segment.
        segment: String,
    },
    /// The path would be refused as a request path.
    #[error("{0}")]
    Path(PathError),
    /// The path is valid but not in normal form (e.g. `%41` for `A`, lower-case hex).
    #[error(
        "the path is not in normalized form: write it as {normalized:?} \
         (rules are matched against normalized paths)"
    )]
    NotNormalized {
        /// The normalized form of the path.
        normalized: String,
    },
}

impl Rule {
    /// Parses a rule whose method is `*` or one of [`crate::STANDARD_METHODS`].
    ///
    /// # Errors
    ///
    /// [`RuleError::Invalid`] naming the rule and the problem.
    pub fn parse(s: &str) -> Result<Rule, RuleError> {
        Self::parse_with_methods(s, &[])
    }

    /// Parses a rule whose method may also be one of `extra` (a capability's extra
    /// methods, compared case-insensitively).
    ///
    /// # Errors
    ///
    /// [`RuleError::Invalid`] naming the rule and the problem.
    pub fn parse_with_methods(s: &str, extra: &[String]) -> Result<Rule, RuleError> {
        Self::parse_reusing(s, extra, &mut Vec::new())
    }

    /// [`Rule::parse_with_methods`], encoding the pattern in `scratch` first so
    /// that the rule is allocated once at its size: [`crate::RuleSet::compile`]
    /// gives every rule of a list the same one.
    pub(crate) fn parse_reusing(
        s: &str,
        extra: &[String],
        scratch: &mut Vec<u8>,
    ) -> Result<Rule, RuleError> {
        let invalid = |problem| RuleError::Invalid {
            rule: clip(s),
            problem,
        };
        let mut parts = s.split_ascii_whitespace();
        let (method, path) = match (parts.next(), parts.next(), parts.next()) {
            (None, _, _) => return Err(invalid(RuleProblem::Empty)),
            (Some(only), None, _) if only.starts_with('/') => {
                return Err(invalid(RuleProblem::MissingMethod));
            }
            (Some(_), None, _) => return Err(invalid(RuleProblem::MissingPath)),
            (Some(_), Some(_), Some(_)) => return Err(invalid(RuleProblem::TooManyParts)),
            (Some(m), Some(p), None) => (m, p),
        };
        let method = match method {
            "*" => None,
            m => Some(check_method(m, extra).map_err(|e| invalid(RuleProblem::Method(e)))?),
        };
        check_rule_path(path).map_err(invalid)?;
        let method = method.as_deref().unwrap_or("*");
        // `path` is a normalized path, so at most `MAX_TARGET_LEN` bytes long.
        let text_len = u32::try_from(method.len() + 1 + path.len()).map_err(|_| {
            invalid(RuleProblem::Path(PathError::TooLong {
                len: path.len(),
                max: crate::normalize::MAX_TARGET_LEN,
            }))
        })?;
        // The text, then the pattern encoded after it, in one allocation of
        // their size (a million rules load in one go: docs/benchmarks.md,
        // "Loading 1,000,000 rules").
        scratch.clear();
        encode(path, scratch);
        let mut data = Vec::with_capacity(text_len as usize + scratch.len());
        data.extend_from_slice(method.as_bytes());
        data.push(b' ');
        data.extend_from_slice(path.as_bytes());
        data.extend_from_slice(scratch);
        Ok(Rule {
            data: data.into_boxed_slice(),
            text_len,
        })
    }

    /// The canonical text of the rule: the method upper-cased (or `*`), one space,
    /// the path. Parsing it again gives an equal rule.
    pub fn as_str(&self) -> &str {
        // The text part is a copy of `&str`s cut at ASCII characters.
        std::str::from_utf8(self.text()).unwrap_or_default()
    }

    fn text(&self) -> &[u8] {
        &self.data[..self.text_len as usize]
    }

    /// The rule's method, upper-cased, or `None` for `*`.
    pub fn method(&self) -> Option<&str> {
        match self.as_str().split_once(' ') {
            Some(("*", _)) | None => None,
            Some((m, _)) => Some(m),
        }
    }

    /// The rule's path pattern.
    pub fn path(&self) -> &str {
        let text = self.as_str();
        let at = text.find(' ').map_or(0, |i| i + 1);
        &text[at..]
    }

    fn pattern(&self) -> Pattern<'_> {
        Pattern::new(&self.data[self.text_len as usize..])
    }

    /// Whether the rule matches `method` and `path` *exactly*: the semantics of an
    /// allow rule.
    ///
    /// `path` must be a normalized path ([`crate::Target::path`]); this does not
    /// normalize it. The method is compared ASCII case-insensitively; `*` matches any
    /// method (whether that method is allowed at all is [`crate::RuleSet`]'s check).
    /// Path literals are compared percent-decoded and case-sensitively.
    pub fn matches(&self, method: &str, path: &str) -> bool {
        self.matches_segments(method, &PathSegments::new(path), Strictness::Exact)
    }

    /// Whether the rule matches `method` and `path` *loosely*: the semantics of a
    /// deny rule.
    ///
    /// Like [`Rule::matches`], but path literals are compared ASCII case-insensitively,
    /// and the path is also tried with `;parameters` cut from each segment, so that
    /// an upstream that ignores case or strips parameters cannot route `/v1/ADMIN` or
    /// `/v1/admin;x` around a deny rule for `/v1/admin`; and a `GET` rule also covers
    /// `HEAD`, which servers answer with their GET handler. Always true when
    /// [`Rule::matches`] is.
    pub fn matches_loosely(&self, method: &str, path: &str) -> bool {
        self.matches_segments(method, &PathSegments::new(path), Strictness::Loose)
    }

    /// The rule's leading literal path segments (see [`crate::index`]).
    pub(crate) fn literal_prefix(&self) -> impl Iterator<Item = &[u8]> {
        self.pattern().literal_prefix()
    }

    pub(crate) fn matches_segments(
        &self,
        method: &str,
        path: &PathSegments,
        strictness: Strictness,
    ) -> bool {
        let method_ok = match self.method() {
            None => true,
            Some(m) => {
                m.eq_ignore_ascii_case(method)
                    // Servers answer HEAD with their GET handler (minus the body): a
                    // deny rule for GET must not be side-stepped with HEAD.
                    || (strictness == Strictness::Loose
                        && m == "GET"
                        && method.eq_ignore_ascii_case("HEAD"))
            }
        };
        method_ok && self.pattern().matches(path, strictness)
    }
}

/// Checks that a rule path is a normalized path, with a specific message for the
/// usual mistakes before the generic one.
fn check_rule_path(path: &str) -> Result<(), RuleProblem> {
    if !path.starts_with('/') {
        return Err(RuleProblem::RelativePath);
    }
    let segments = || path[1..].split('/');
    // A plain path (the usual rule) has no `?`, `#` or `.` to look for, and
    // nothing to normalize.
    let plain = is_plain(path);
    if !plain {
        if path.contains('?') {
            return Err(RuleProblem::Query);
        }
        if path.contains('#') {
            return Err(RuleProblem::Fragment);
        }
        if segments().any(|s| s == "." || s == "..") {
            return Err(RuleProblem::DotSegment);
        }
    }
    if doubled(path, b'/') {
        return Err(RuleProblem::EmptySegment);
    }
    if let Some(seg) = segments().find(|s| doubled(s, b'*') && *s != "**") {
        return Err(RuleProblem::DoubleStar { segment: clip(seg) });
    }
    if plain {
        return Ok(());
    }
    let target = normalize(path).map_err(RuleProblem::Path)?;
    if target.path != path {
        return Err(RuleProblem::NotNormalized {
            normalized: clip(&target.path),
        });
    }
    Ok(())
}

/// Whether `s` has `byte` twice in a row (`str::contains` with a two-byte
/// needle sets up a substring searcher: slower on a short rule than this).
fn doubled(s: &str, byte: u8) -> bool {
    s.as_bytes()
        .windows(2)
        .any(|w| w[0] == byte && w[1] == byte)
}

/// Whether a rule path that passed the checks above is made of letters, digits,
/// `-`, `_`, `~` and `*` between its `/`s only, and not too long: such a path is
/// its own normalized form (nothing to decode, encode or resolve), so the usual
/// rule skips [`normalize`]. Anything else goes through it.
fn is_plain(path: &str) -> bool {
    path.len() <= crate::normalize::MAX_TARGET_LEN
        && path
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'/' | b'-' | b'_' | b'~' | b'*'))
}

impl FromStr for Rule {
    type Err = RuleError;

    /// Same as [`Rule::parse`].
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl fmt::Display for Rule {
    /// Writes the canonical text ([`Rule::as_str`]).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Debug for Rule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Rule").field(&self.as_str()).finish()
    }
}

impl PartialEq for Rule {
    fn eq(&self, other: &Self) -> bool {
        self.text() == other.text()
    }
}

impl Eq for Rule {}

impl Hash for Rule {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.as_str().hash(state);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn problem(s: &str) -> RuleProblem {
        match Rule::parse(s) {
            Err(RuleError::Invalid { problem, .. }) => problem,
            other => panic!("{s:?}: expected an invalid rule, got {other:?}"),
        }
    }

    #[test]
    fn parses_and_canonicalizes() {
        let r = Rule::parse("  get \t /v1/** ").unwrap();
        assert_eq!(r.as_str(), "GET /v1/**");
        assert_eq!(r.to_string(), "GET /v1/**");
        assert_eq!(r.method(), Some("GET"));
        assert_eq!(r.path(), "/v1/**");
        assert_eq!(Rule::parse(r.as_str()).unwrap(), r);
        let any: Rule = "* /v1/admin/**".parse().unwrap();
        assert_eq!(any.method(), None);
        assert_eq!(any.as_str(), "* /v1/admin/**");
    }

    #[test]
    fn matches_methods() {
        let r = Rule::parse("POST /v1/charges").unwrap();
        assert!(r.matches("POST", "/v1/charges"));
        assert!(r.matches("post", "/v1/charges/"));
        assert!(!r.matches("GET", "/v1/charges"));
        let any = Rule::parse("* /v1/charges").unwrap();
        assert!(any.matches("DELETE", "/v1/charges"));
    }

    #[test]
    fn loose_is_a_superset_of_exact() {
        let r = Rule::parse("* /v1/admin/**").unwrap();
        assert!(r.matches_loosely("GET", "/v1/Admin"));
        assert!(r.matches_loosely("GET", "/v1/admin;a=b/users"));
        assert!(!r.matches("GET", "/v1/Admin"));
        let get = Rule::parse("GET /secret").unwrap();
        assert!(get.matches_loosely("HEAD", "/secret"));
        assert!(!get.matches("HEAD", "/secret"));
        assert!(!Rule::parse("HEAD /x").unwrap().matches_loosely("GET", "/x"));
    }

    #[test]
    fn refuses_malformed_rules_with_clear_messages() {
        assert_eq!(problem(""), RuleProblem::Empty);
        assert_eq!(problem("   "), RuleProblem::Empty);
        assert_eq!(problem("GET"), RuleProblem::MissingPath);
        assert_eq!(problem("/v1/**"), RuleProblem::MissingMethod);
        assert_eq!(problem("GET /v1 /v2"), RuleProblem::TooManyParts);
        assert_eq!(problem("GET v1/**"), RuleProblem::RelativePath);
        assert_eq!(problem("GET /v1?x=1"), RuleProblem::Query);
        assert_eq!(problem("GET /v1#x"), RuleProblem::Fragment);
        assert_eq!(problem("GET /v1/../admin"), RuleProblem::DotSegment);
        assert_eq!(problem("GET /v1/./x"), RuleProblem::DotSegment);
        assert_eq!(problem("GET /v1//x"), RuleProblem::EmptySegment);
        // The same checks on paths that are not plain (a `.`, a `%`): another branch.
        assert_eq!(problem("GET /v1.0//x"), RuleProblem::EmptySegment);
        assert!(matches!(
            problem("GET /v1/a%41**"),
            RuleProblem::DoubleStar { .. }
        ));
        assert!(matches!(
            problem("GET /v1/a**"),
            RuleProblem::DoubleStar { .. }
        ));
        assert!(matches!(
            problem("GET /v1/***"),
            RuleProblem::DoubleStar { .. }
        ));
        assert!(matches!(
            problem("GET /v1/%2fx"),
            RuleProblem::Path(PathError::EncodedSlash { .. })
        ));
        assert!(matches!(
            problem("GET /v1\\x"),
            RuleProblem::Path(PathError::Backslash { .. })
        ));
        assert!(matches!(
            problem("GET /v1/\u{1}"),
            RuleProblem::Path(PathError::ControlChar { .. })
        ));
        assert!(matches!(
            problem("GET http://x/y"),
            RuleProblem::RelativePath
        ));
        assert_eq!(
            problem("GET /%41dmin"),
            RuleProblem::NotNormalized {
                normalized: "/Admin".into()
            }
        );
        assert_eq!(
            problem("GET /v1/%3a"),
            RuleProblem::NotNormalized {
                normalized: "/v1/%3A".into()
            }
        );
        assert!(matches!(
            problem("FETCH /v1"),
            RuleProblem::Method(MethodError::NotAllowed { .. })
        ));
        assert!(matches!(
            problem("TRACE /v1"),
            RuleProblem::Method(MethodError::Forbidden { .. })
        ));
        assert!(matches!(
            problem("G*T /v1"),
            RuleProblem::Method(MethodError::InvalidToken { .. })
        ));
    }

    #[test]
    fn error_messages_name_the_rule() {
        let e = Rule::parse("GET v1/**").unwrap_err().to_string();
        assert_eq!(e, "rule \"GET v1/**\": the path must start with '/'");
        let e = Rule::parse("GET /v1/a**").unwrap_err().to_string();
        assert!(
            e.starts_with("rule \"GET /v1/a**\": \"**\" must be a whole segment"),
            "{e}"
        );
        let e = Rule::parse("PROPFIND /dav").unwrap_err().to_string();
        assert!(
            e.starts_with("rule \"PROPFIND /dav\": method \"PROPFIND\" is not allowed"),
            "{e}"
        );
    }

    #[test]
    fn plain_paths_are_their_own_normal_form() {
        // The fast path is only taken where normalizing changes nothing...
        for p in ["/", "/v1/**", "/v1/r0001/**", "/a-b_c~d/*x*", "/V1/ADMIN/"] {
            assert!(is_plain(p), "{p}");
            assert_eq!(normalize(p).unwrap().path, p);
        }
        // ...and not for what normalizing rewrites or refuses.
        for p in ["/%41", "/a.b", "/a;b", "/a:b", "/é", "/a b", "/a%2Fb"] {
            assert!(!is_plain(p), "{p}");
        }
        let long = format!("/{}", "a".repeat(crate::normalize::MAX_TARGET_LEN));
        assert!(!is_plain(&long));
        assert!(is_plain(&long[..crate::normalize::MAX_TARGET_LEN]));
        assert_eq!(
            problem(&format!("GET {long}")),
            RuleProblem::Path(PathError::TooLong {
                len: long.len(),
                max: crate::normalize::MAX_TARGET_LEN
            })
        );
    }

    #[test]
    fn extra_methods_are_accepted_when_named() {
        let extra = vec!["propfind".to_string()];
        let r = Rule::parse_with_methods("propfind /dav/**", &extra).unwrap();
        assert_eq!(r.as_str(), "PROPFIND /dav/**");
        assert!(r.matches("PROPFIND", "/dav/x"));
    }
}
