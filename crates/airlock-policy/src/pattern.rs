//! Compiled path patterns and the segment matcher.
//!
//! A pattern is a list of tokens, one per segment: a segment pattern (a literal, or a
//! glob whose `*` stays within the segment) or `**` (any number of whole segments,
//! zero included). Both levels use the classic iterative wildcard algorithm, so
//! matching is `O(pattern × path)` in the worst case with no recursion and no regex:
//! an adversarial path cannot make it blow up.
//!
//! Literals are compared *percent-decoded*, on both sides. After normalization the
//! only escapes left in a path are of reserved or non-ASCII bytes; most servers decode
//! those before routing, so `/v1/me%3Adelete` must be caught by a rule written
//! `/v1/me:delete` (and a rule can name a literal `*` as `%2A`).

use crate::normalize::percent_decode;

/// How literal text is compared.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Strictness {
    /// Byte for byte (after percent-decoding). Used for allow rules: an allow rule
    /// grants exactly what it names.
    Exact,
    /// ASCII case-insensitive, and also tried with `;params` removed from every path
    /// segment. Used for deny rules, so that an upstream that ignores case or strips
    /// path parameters (`/v1/ADMIN`, `/v1/admin;x/`) cannot be used to slip past a
    /// deny rule. Loose matching only ever matches *more* than exact matching.
    Loose,
}

/// A compiled rule path.
#[derive(Debug, Clone)]
pub(crate) struct Pattern {
    tokens: Vec<Token>,
}

#[derive(Debug, Clone)]
enum Token {
    /// Matches exactly one segment.
    Segment(SegmentPattern),
    /// `**`: any number of segments, zero included.
    AnySegments,
}

/// The decoded literal pieces of one segment, with a `*` between consecutive pieces:
/// `["v1"]` is the literal `v1`, `["", ""]` is `*`, `["a", "b"]` is `a*b` and
/// `["", "x", ""]` is `*x*`.
#[derive(Debug, Clone)]
struct SegmentPattern {
    pieces: Vec<Vec<u8>>,
}

impl Pattern {
    /// Compiles a rule path that [`crate::Rule`] has already checked to be a
    /// normalized path in which `**` only appears as a whole segment.
    pub(crate) fn compile(path: &str) -> Self {
        let tokens = path
            .split('/')
            .filter(|s| !s.is_empty())
            .map(|seg| {
                if seg == "**" {
                    Token::AnySegments
                } else {
                    // Split on the literal `*` first, then decode: an escaped `%2A`
                    // is a literal asterisk, not a wildcard.
                    Token::Segment(SegmentPattern {
                        pieces: seg.split('*').map(percent_decode).collect(),
                    })
                }
            })
            .collect();
        Self { tokens }
    }

    /// The leading segments that are plain literals (decoded), up to the first
    /// glob or `**`: every path the pattern matches starts with them.
    pub(crate) fn literal_prefix(&self) -> impl Iterator<Item = &[u8]> {
        self.tokens.iter().map_while(|t| match t {
            Token::Segment(SegmentPattern { pieces }) if pieces.len() == 1 => {
                Some(pieces[0].as_slice())
            }
            _ => None,
        })
    }

    /// Whether the pattern matches the path.
    pub(crate) fn matches(&self, path: &PathSegments, strictness: Strictness) -> bool {
        match strictness {
            Strictness::Exact => match_tokens(&self.tokens, &path.exact, false),
            Strictness::Loose => {
                match_tokens(&self.tokens, &path.exact, true)
                    || path
                        .without_params
                        .as_ref()
                        .is_some_and(|segs| match_tokens(&self.tokens, segs, true))
            }
        }
    }
}

/// A path split into decoded segments, once per decision, for every rule to use.
#[derive(Debug, Clone)]
pub(crate) struct PathSegments {
    /// Non-empty segments, percent-decoded. The trailing `/` leaves no segment, which
    /// is why `/v1/charges/` is matched like `/v1/charges`.
    exact: Vec<Vec<u8>>,
    /// The same with `;…` cut from each segment and the segments left empty dropped
    /// (as a server that strips parameters, then collapses `//`, would see them);
    /// `None` when no segment has a `;`.
    without_params: Option<Vec<Vec<u8>>>,
}

impl PathSegments {
    /// The decoded segments.
    pub(crate) fn exact(&self) -> &[Vec<u8>] {
        &self.exact
    }

    /// The segments with `;params` cut, when any segment has one.
    pub(crate) fn without_params(&self) -> Option<&[Vec<u8>]> {
        self.without_params.as_deref()
    }

    /// Splits a normalized path. Given a path that is not normalized, it still
    /// answers (escapes that are not valid stay literal), but rule semantics are only
    /// defined for normalized paths.
    pub(crate) fn new(path: &str) -> Self {
        let exact: Vec<Vec<u8>> = path
            .split('/')
            .filter(|s| !s.is_empty())
            .map(percent_decode)
            .collect();
        let without_params = exact.iter().any(|s| s.contains(&b';')).then(|| {
            exact
                .iter()
                .map(|s| match s.iter().position(|&b| b == b';') {
                    Some(at) => s[..at].to_vec(),
                    None => s.clone(),
                })
                .filter(|s| !s.is_empty())
                .collect()
        });
        Self {
            exact,
            without_params,
        }
    }
}

/// Segment-level wildcard matching: `**` plays the role of `*`, each other token
/// consumes exactly one segment. On a mismatch, the most recent `**` absorbs one more
/// segment and matching resumes after it (earlier `**` never need to be revisited,
/// which is what keeps this quadratic rather than exponential).
fn match_tokens(tokens: &[Token], segs: &[Vec<u8>], ci: bool) -> bool {
    let (mut t, mut s) = (0, 0);
    // (token index after the last `**`, segment index it resumes from)
    let mut resume: Option<(usize, usize)> = None;
    while s < segs.len() {
        match tokens.get(t) {
            Some(Token::AnySegments) => {
                resume = Some((t + 1, s));
                t += 1;
                continue;
            }
            Some(Token::Segment(p)) if p.matches(&segs[s], ci) => {
                t += 1;
                s += 1;
                continue;
            }
            _ => {}
        }
        match resume {
            Some((after, from)) => {
                resume = Some((after, from + 1));
                t = after;
                s = from + 1;
            }
            None => return false,
        }
    }
    tokens[t..]
        .iter()
        .all(|tok| matches!(tok, Token::AnySegments))
}

impl SegmentPattern {
    /// Byte-level glob within one segment: the first piece is a prefix, the last a
    /// suffix, and the middle ones are found left to right in between (leftmost is
    /// always a safe choice because each `*` can absorb anything).
    fn matches(&self, text: &[u8], ci: bool) -> bool {
        let (first, rest) = match self.pieces.split_first() {
            Some(split) => split,
            None => return text.is_empty(),
        };
        let Some((last, middle)) = rest.split_last() else {
            return eq(first, text, ci); // no `*`: a literal
        };
        if text.len() < first.len() + last.len() {
            return false;
        }
        let (head, tail) = (&text[..first.len()], &text[text.len() - last.len()..]);
        if !eq(first, head, ci) || !eq(last, tail, ci) {
            return false;
        }
        let mut window = &text[first.len()..text.len() - last.len()];
        for piece in middle {
            match find(window, piece, ci) {
                Some(at) => window = &window[at + piece.len()..],
                None => return false,
            }
        }
        true
    }
}

fn eq(a: &[u8], b: &[u8], ci: bool) -> bool {
    if ci {
        a.eq_ignore_ascii_case(b)
    } else {
        a == b
    }
}

fn find(hay: &[u8], needle: &[u8], ci: bool) -> Option<usize> {
    if needle.is_empty() {
        return Some(0);
    }
    hay.windows(needle.len()).position(|w| eq(w, needle, ci))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(pattern: &str, path: &str) -> bool {
        Pattern::compile(pattern).matches(&PathSegments::new(path), Strictness::Exact)
    }

    fn loose(pattern: &str, path: &str) -> bool {
        Pattern::compile(pattern).matches(&PathSegments::new(path), Strictness::Loose)
    }

    #[test]
    fn literals_and_trailing_slash() {
        assert!(m("/v1/charges", "/v1/charges"));
        assert!(m("/v1/charges", "/v1/charges/"));
        assert!(m("/v1/charges/", "/v1/charges"));
        assert!(!m("/v1/charges", "/v1/charges/x"));
        assert!(!m("/v1/charges", "/v1/charge"));
        assert!(!m("/v1/charges", "/v1/Charges"));
        assert!(m("/", "/"));
        assert!(!m("/", "/v1"));
    }

    #[test]
    fn single_star_stays_within_a_segment() {
        assert!(m("/v1/*", "/v1/x"));
        assert!(!m("/v1/*", "/v1"));
        assert!(!m("/v1/*", "/v1/x/y"));
        assert!(m("/v1/ch_*", "/v1/ch_123"));
        assert!(m("/v1/ch_*", "/v1/ch_"));
        assert!(!m("/v1/ch_*", "/v1/cus_1"));
        assert!(m("/v1/*.json", "/v1/a.json"));
        assert!(!m("/v1/*.json", "/v1/json"));
        assert!(m("/v1/a*b*c", "/v1/abc"));
        assert!(m("/v1/a*b*c", "/v1/axxbyybzc"));
        assert!(!m("/v1/a*b*c", "/v1/acb"));
        // Overlapping prefix and suffix must not share bytes.
        assert!(!m("/v1/ab*ba", "/v1/aba"));
    }

    #[test]
    fn double_star_spans_segments_including_none() {
        assert!(m("/v1/admin/**", "/v1/admin"));
        assert!(m("/v1/admin/**", "/v1/admin/"));
        assert!(m("/v1/admin/**", "/v1/admin/x/y"));
        assert!(!m("/v1/admin/**", "/v1/administrator"));
        assert!(m("/**", "/"));
        assert!(m("/**", "/a/b/c"));
        assert!(m("/v1/**/refunds", "/v1/refunds"));
        assert!(m("/v1/**/refunds", "/v1/a/b/refunds"));
        assert!(!m("/v1/**/refunds", "/v1/a/b/refunds/x"));
        assert!(m("/**/a/**/b", "/x/a/y/a/z/b"));
        assert!(!m("/**/a/**/b", "/x/b/a"));
    }

    #[test]
    fn literals_compare_decoded() {
        assert!(m("/v1/me:delete", "/v1/me%3Adelete"));
        assert!(m("/v1/me%3Adelete", "/v1/me:delete"));
        assert!(m("/v1/%2A", "/v1/*"));
        assert!(!m("/v1/%2A", "/v1/x"));
        assert!(m("/v1/a*", "/v1/a%20b"));
    }

    #[test]
    fn loose_matching_ignores_case_and_params() {
        assert!(loose("/v1/admin/**", "/v1/ADMIN/x"));
        assert!(loose("/v1/admin/**", "/v1/admin;jsessionid=1/x"));
        assert!(loose("/v1/admin/**", "/v1/;x/admin"));
        assert!(loose("/v1/a;b", "/v1/a;b"));
        assert!(!m("/v1/admin/**", "/v1/ADMIN/x"));
        assert!(!m("/v1/admin/**", "/v1/admin;x/y"));
    }

    #[test]
    fn many_double_stars_stay_fast() {
        // Exponential backtracking would never finish this.
        let pattern = format!("/{}z", "**/a/".repeat(20));
        let path = format!("/{}", "a/".repeat(400));
        assert!(!m(&pattern, &path));
        let glob = format!("/{}z", "a*".repeat(50));
        let seg = format!("/{}", "a".repeat(4000));
        assert!(!m(&glob, &seg));
    }
}
