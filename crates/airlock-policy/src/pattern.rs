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

/// A compiled rule path, as a view of its encoding (see [`encode`]): a rule keeps
/// its text and its pattern in one allocation ([`crate::Rule`]).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Pattern<'a> {
    code: &'a [u8],
}

/// Appends the encoding of a rule path that [`crate::Rule`] has already checked to
/// be a normalized path in which `**` only appears as a whole segment.
///
/// One token per non-empty segment, each starting with a LEB128 number: `0` is
/// `**`; `n ≥ 1` is a segment pattern of `n` decoded literal pieces with a `*`
/// between consecutive ones (`v1` is one piece, `*` two empty ones, `a*b` the
/// pieces `a` and `b`), each a LEB128 length and the bytes. The literal `*` is
/// split on first, then each piece decoded: an escaped `%2A` is a literal
/// asterisk, not a wildcard.
pub(crate) fn encode(path: &str, out: &mut Vec<u8>) {
    for seg in path.split('/').filter(|s| !s.is_empty()) {
        if seg == "**" {
            out.push(0);
            continue;
        }
        if !seg.contains(['*', '%']) {
            // One literal piece, nothing to decode (the usual segment).
            push_len(out, 1);
            push_len(out, seg.len());
            out.extend_from_slice(seg.as_bytes());
            continue;
        }
        push_len(out, seg.split('*').count());
        for piece in seg.split('*') {
            if piece.contains('%') {
                let decoded = percent_decode(piece);
                push_len(out, decoded.len());
                out.extend_from_slice(&decoded);
            } else {
                // Nothing to decode (the usual case): no copy.
                push_len(out, piece.len());
                out.extend_from_slice(piece.as_bytes());
            }
        }
    }
}

/// Appends `n` in LEB128: seven bits a byte, low bits first, 0x80 added to every
/// byte but the last. (Written with `%` and `+` rather than masks, so that every
/// change to an operator changes the encoding.)
fn push_len(out: &mut Vec<u8>, mut n: usize) {
    while n >= 0x80 {
        out.push((n % 0x80) as u8 + 0x80);
        n /= 0x80;
    }
    out.push(n as u8);
}

/// Reads the LEB128 number at the start of `code`: (the number, what follows).
fn read_len(code: &[u8]) -> (usize, &[u8]) {
    let (mut n, mut shift) = (0usize, 0u32);
    for (i, &b) in code.iter().enumerate() {
        n += usize::from(b % 0x80) << shift;
        if b < 0x80 {
            return (n, &code[i + 1..]);
        }
        shift += 7;
    }
    (n, &[])
}

/// One token of an encoded pattern.
#[derive(Debug, Clone, Copy)]
enum Token<'a> {
    /// `**`: any number of segments, zero included.
    AnySegments,
    /// Matches exactly one segment.
    Segment(SegmentPattern<'a>),
}

/// The decoded literal pieces of one segment, with a `*` between consecutive pieces:
/// `["v1"]` is the literal `v1`, `["", ""]` is `*`, `["a", "b"]` is `a*b` and
/// `["", "x", ""]` is `*x*`; encoded, `count` (≥ 1) of them.
#[derive(Debug, Clone, Copy)]
struct SegmentPattern<'a> {
    count: usize,
    pieces: &'a [u8],
}

/// The token at the start of `code` (which is not empty), and the tokens after it.
fn token(code: &[u8]) -> (Token<'_>, &[u8]) {
    let (count, body) = read_len(code);
    if count == 0 {
        return (Token::AnySegments, body);
    }
    let mut rest = body;
    for _ in 0..count {
        let (len, bytes) = read_len(rest);
        rest = &bytes[len..];
    }
    let pieces = &body[..body.len() - rest.len()];
    (Token::Segment(SegmentPattern { count, pieces }), rest)
}

/// The pieces of an encoded segment pattern, in order.
struct Pieces<'a>(&'a [u8]);

impl<'a> Iterator for Pieces<'a> {
    type Item = &'a [u8];

    fn next(&mut self) -> Option<&'a [u8]> {
        if self.0.is_empty() {
            return None;
        }
        let (len, bytes) = read_len(self.0);
        let (piece, rest) = bytes.split_at(len);
        self.0 = rest;
        Some(piece)
    }
}

impl<'a> Pattern<'a> {
    /// A view of the encoding [`encode`] wrote.
    pub(crate) fn new(code: &'a [u8]) -> Self {
        Self { code }
    }

    /// The leading segments that are plain literals (decoded), up to the first
    /// glob or `**`: every path the pattern matches starts with them.
    pub(crate) fn literal_prefix(self) -> impl Iterator<Item = &'a [u8]> {
        let mut rest = self.code;
        std::iter::from_fn(move || {
            if rest.is_empty() {
                return None;
            }
            let (tok, next) = token(rest);
            rest = next;
            match tok {
                Token::Segment(SegmentPattern { count: 1, pieces }) => Pieces(pieces).next(),
                _ => None,
            }
        })
    }

    /// Whether the pattern matches the path.
    pub(crate) fn matches(self, path: &PathSegments, strictness: Strictness) -> bool {
        match strictness {
            Strictness::Exact => match_tokens(self.code, &path.exact, false),
            Strictness::Loose => {
                match_tokens(self.code, &path.exact, true)
                    || path
                        .without_params
                        .as_ref()
                        .is_some_and(|segs| match_tokens(self.code, segs, true))
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
/// which is what keeps this quadratic rather than exponential). `t` is the code of
/// the tokens not yet matched.
fn match_tokens(code: &[u8], segs: &[Vec<u8>], ci: bool) -> bool {
    let (mut t, mut s) = (code, 0);
    // (the tokens after the last `**`, segment index it resumes from)
    let mut resume: Option<(&[u8], usize)> = None;
    while s < segs.len() {
        if !t.is_empty() {
            match token(t) {
                (Token::AnySegments, next) => {
                    resume = Some((next, s));
                    t = next;
                    continue;
                }
                (Token::Segment(p), next) if p.matches(&segs[s], ci) => {
                    t = next;
                    s += 1;
                    continue;
                }
                _ => {}
            }
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
    // Only `**` may be left.
    while !t.is_empty() {
        match token(t) {
            (Token::AnySegments, next) => t = next,
            (Token::Segment(_), _) => return false,
        }
    }
    true
}

impl SegmentPattern<'_> {
    /// Byte-level glob within one segment: the first piece is a prefix, the last a
    /// suffix, and the middle ones are found left to right in between (leftmost is
    /// always a safe choice because each `*` can absorb anything).
    fn matches(&self, text: &[u8], ci: bool) -> bool {
        let mut pieces = Pieces(self.pieces);
        let Some(first) = pieces.next() else {
            return text.is_empty();
        };
        if self.count == 1 {
            return eq(first, text, ci); // no `*`: a literal
        }
        let middle = Pieces(pieces.0);
        let Some(last) = pieces.last() else {
            return eq(first, text, ci);
        };
        if text.len() < first.len() + last.len() {
            return false;
        }
        let (head, tail) = (&text[..first.len()], &text[text.len() - last.len()..]);
        if !eq(first, head, ci) || !eq(last, tail, ci) {
            return false;
        }
        let mut window = &text[first.len()..text.len() - last.len()];
        for piece in middle.take(self.count - 2) {
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

    fn code(pattern: &str) -> Vec<u8> {
        let mut out = Vec::new();
        encode(pattern, &mut out);
        out
    }

    fn m(pattern: &str, path: &str) -> bool {
        Pattern::new(&code(pattern)).matches(&PathSegments::new(path), Strictness::Exact)
    }

    fn loose(pattern: &str, path: &str) -> bool {
        Pattern::new(&code(pattern)).matches(&PathSegments::new(path), Strictness::Loose)
    }

    #[test]
    fn encoding_is_one_count_per_token_and_one_length_per_piece() {
        assert_eq!(code("/"), b"");
        assert_eq!(code("/v1/**"), b"\x01\x02v1\x00");
        assert_eq!(code("/a*b/*"), b"\x02\x01a\x01b\x02\x00\x00");
        // Pieces are decoded after splitting on `*`: `%2A` stays a literal.
        assert_eq!(code("/%2A:x"), b"\x01\x03*:x");
        let prefix = |p: &str| -> Vec<Vec<u8>> {
            let c = code(p);
            Pattern::new(&c)
                .literal_prefix()
                .map(<[u8]>::to_vec)
                .collect()
        };
        assert_eq!(
            prefix("/v1/me%3Ax/a*/b"),
            [b"v1".to_vec(), b"me:x".to_vec()]
        );
        assert_eq!(prefix("/v1/**/b"), [b"v1".to_vec()]);
        assert!(prefix("/*/v1").is_empty());
        assert!(prefix("/").is_empty());
    }

    #[test]
    fn lengths_past_one_byte_round_trip() {
        for n in [0, 1, 0x7F, 0x80, 0x3FFF, 0x4000, 300_000] {
            let mut out = vec![9];
            push_len(&mut out, n);
            out.push(7);
            let (got, rest) = read_len(&out[1..]);
            assert_eq!((got, rest), (n, &[7][..]), "{n}");
        }
        let mut out = Vec::new();
        push_len(&mut out, 300);
        assert_eq!(out, [0xAC, 0x02]);
        // A segment longer than 127 bytes, and a glob of many pieces.
        let long = "x".repeat(200);
        assert!(m(&format!("/v1/{long}"), &format!("/v1/{long}")));
        assert!(!m(&format!("/v1/{long}"), &format!("/v1/{long}y")));
        let glob = format!("/{}", "a*".repeat(150));
        assert!(m(&glob, &format!("/{}", "a".repeat(150))));
        assert!(!m(&glob, &format!("/{}", "a".repeat(149))));
        // Every middle piece is looked for, up to the last.
        assert!(m("/v1/a*b*c*d*e", "/v1/abcde"));
        assert!(!m("/v1/a*b*c*d*e", "/v1/abcxe"));
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
