//! Request-target normalization: the single place where an agent's raw path becomes
//! the path that is both matched and sent.
//!
//! The order of the steps matters and is part of the contract:
//!
//! 1. the whole input is scanned for bytes that are never acceptable anywhere in a
//!    request target (control characters, DEL, non-ASCII, `#`);
//! 2. the query is split off at the first `?` and validated, never rewritten;
//! 3. the path must be origin-form (`/…`), not a URL with a scheme nor `//authority`;
//! 4. each segment is percent-decoded *for unreserved characters only*, other escapes
//!    are kept with upper-case hex, and dangerous escapes are refused;
//! 5. only then are dot segments resolved, so `%2e%2e` is a `..` like any other,
//!    and empty segments collapse.
//!
//! Decoding before resolving (step 4 before 5) is what makes `/v1/%2e%2e/admin` reach
//! the same path as `/v1/../admin` here *and* at any upstream that decodes, instead of
//! being matched as a harmless literal and resolved later by the server.

use std::fmt;

/// Longest raw request target (path and query) accepted, in bytes.
///
/// Servers commonly refuse request lines above 8–16 KiB; the bound also keeps the
/// work per request, and the size of error messages, small.
pub const MAX_TARGET_LEN: usize = 16 * 1024;

/// Longest excerpt of agent input quoted in an error message.
const CLIP_CHARS: usize = 120;

/// A normalized request target.
///
/// `path` is exactly the string that will be sent upstream and exactly the string
/// rules match against (DESIGN.md §7, invariant 3). `query` is everything after the
/// first `?`, validated and kept byte for byte as the agent sent it; it is never
/// matched by rules.
///
/// Build targets with [`normalize`]. The fields are public for convenience, so
/// [`crate::RuleSet::decide`] re-checks that a target is in normal form and denies
/// one that is not.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Target {
    /// The normalized path: starts with `/`; no empty, `.` or `..` segments; no
    /// escapes of unreserved characters; upper-case hex in the escapes that remain.
    /// It ends with `/` when the agent's path did (see `docs/policy.md`).
    pub path: String,
    /// The query without the leading `?`, exactly as sent; `Some("")` for a bare `?`.
    pub query: Option<String>,
}

impl fmt::Display for Target {
    /// Writes the origin-form request target (`path` or `path?query`) that is sent.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.path)?;
        if let Some(q) = &self.query {
            f.write_str("?")?;
            f.write_str(q)?;
        }
        Ok(())
    }
}

/// Why a request target was refused.
///
/// Every message quotes the offending input (escaped with Rust's `{:?}` so that a CR
/// or LF cannot forge a log line, and clipped to a short excerpt) and says what would
/// be accepted instead.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PathError {
    /// The input is empty.
    #[error("the request path is empty; expected a path starting with '/', e.g. \"/v1/charges\"")]
    Empty,
    /// The input is longer than [`MAX_TARGET_LEN`].
    #[error("the request target is {len} bytes long; at most {max} bytes are accepted")]
    TooLong {
        /// Length of the input in bytes.
        len: usize,
        /// The limit, [`MAX_TARGET_LEN`].
        max: usize,
    },
    /// The path does not start with `/`.
    #[error("path {input:?} must start with '/': send only the path, e.g. \"/v1/charges\"")]
    MissingLeadingSlash {
        /// The input (clipped).
        input: String,
    },
    /// The input is an absolute URL (`http://host/…`).
    #[error(
        "path {input:?} is a full URL: send only the path, e.g. \"/v1/charges\"; \
         the host is fixed by the service's configuration"
    )]
    Scheme {
        /// The input (clipped).
        input: String,
    },
    /// The path starts with `//`, which URL parsers read as `//host/…`.
    #[error(
        "path {input:?} starts with \"//\", which URL parsers read as a host name: \
         start the path with a single '/'"
    )]
    Authority {
        /// The input (clipped).
        input: String,
    },
    /// The input contains `#`.
    #[error(
        "path {input:?} contains a fragment ('#'), which is never sent to a server: \
         remove it, or percent-encode a literal '#' as %23"
    )]
    Fragment {
        /// The input (clipped).
        input: String,
    },
    /// The input contains a control character (C0, DEL).
    #[error(
        "path {input:?} contains {} at byte {position}; control characters are never accepted",
        control_name(*byte)
    )]
    ControlChar {
        /// The input (clipped; the character is shown escaped).
        input: String,
        /// The offending byte.
        byte: u8,
        /// Its offset in the input.
        position: usize,
    },
    /// The input contains a non-ASCII character.
    #[error(
        "path {input:?} contains a non-ASCII character at byte {position}: \
         percent-encode it as UTF-8 (e.g. \"é\" as \"%C3%A9\")"
    )]
    NonAscii {
        /// The input (clipped).
        input: String,
        /// Offset of the first non-ASCII byte.
        position: usize,
    },
    /// The path contains a literal `\`.
    #[error(
        "path {input:?} contains a backslash, which some servers treat as '/': refused; \
         use '/' to separate segments"
    )]
    Backslash {
        /// The input (clipped).
        input: String,
    },
    /// A character that is not allowed unencoded in this part of a URL.
    #[error(
        "request target {input:?}: the {part} contains {ch:?}, which is not allowed there \
         unencoded: percent-encode it as %{:02X}",
        u32::from(*ch)
    )]
    DisallowedChar {
        /// The input (clipped).
        input: String,
        /// The character.
        ch: char,
        /// `"path"` or `"query"`.
        part: &'static str,
    },
    /// A `%` not followed by two hex digits.
    #[error(
        "request target {input:?}: the {part} contains {escape:?}, which is not a valid \
         percent-escape: expected '%' and two hex digits (write a literal '%' as %25)"
    )]
    InvalidEscape {
        /// The input (clipped).
        input: String,
        /// The malformed escape (at most three characters).
        escape: String,
        /// `"path"` or `"query"`.
        part: &'static str,
    },
    /// The path contains `%2F` (an encoded `/`).
    #[error(
        "path {input:?} contains an encoded '/' (%2F); servers disagree on whether it \
         separates segments, so it is refused"
    )]
    EncodedSlash {
        /// The input (clipped).
        input: String,
    },
    /// The path contains `%5C` (an encoded `\`).
    #[error(
        "path {input:?} contains an encoded backslash (%5C), which some servers treat as \
         '/': refused"
    )]
    EncodedBackslash {
        /// The input (clipped).
        input: String,
    },
    /// The path contains a percent-encoded control character (`%00`–`%1F`, `%7F`, or a
    /// C1 control such as `%C2%85`).
    #[error(
        "path {input:?} contains {escape}, an encoded control character \
         (servers may truncate or split on it): refused"
    )]
    EncodedControl {
        /// The input (clipped).
        input: String,
        /// The escape(s) as written in the normalized path.
        escape: String,
    },
    /// Percent-escapes in a path segment do not decode to valid UTF-8.
    #[error(
        "path {input:?}: the escapes in segment {segment:?} do not decode to valid UTF-8 \
         (overlong forms such as %C0%AE are a known way to smuggle '.' and '/'): refused"
    )]
    InvalidUtf8 {
        /// The input (clipped).
        input: String,
        /// The normalized segment.
        segment: String,
    },
    /// The path contains a character that some servers fold into `.`, `/` or `\`.
    #[error(
        "path {input:?} contains U+{:04X}, a look-alike of '.', '/' or '\\' that some \
         servers fold into the real one: refused",
        u32::from(*ch)
    )]
    Confusable {
        /// The input (clipped).
        input: String,
        /// The decoded character.
        ch: char,
    },
    /// A segment such as `..;x` or `.;x`: a dot segment with `;` parameters.
    #[error(
        "path {input:?}: segment {segment:?} is a dot segment with ';' parameters, which \
         some servers resolve as '.' or '..': refused"
    )]
    DotSegmentWithParams {
        /// The input (clipped).
        input: String,
        /// The normalized segment.
        segment: String,
    },
    /// An encoded `%` followed by two hex digits, e.g. `%252e`.
    #[error(
        "path {input:?} contains {escape:?}, an encoded '%' followed by two hex digits; a \
         server that decodes twice would see a different path: refused"
    )]
    DoubleEncoded {
        /// The input (clipped).
        input: String,
        /// The decoded text, e.g. `%2e`.
        escape: String,
    },
    /// A `..` segment climbs above `/`.
    #[error("path {input:?} uses '..' to climb above the root '/': refused")]
    EscapesRoot {
        /// The input (clipped).
        input: String,
    },
    /// A hand-built [`Target`] whose fields are not what [`normalize`] returns.
    #[error(
        "target {target:?} is not in normal form (normalized: {normalized:?}); build \
         targets with airlock_policy::normalize"
    )]
    NotNormalized {
        /// The target as given (clipped).
        target: String,
        /// What normalizing it gives (clipped).
        normalized: String,
    },
}

/// Normalizes an agent's raw request target (`/path` or `/path?query`).
///
/// See the module documentation for the steps, and `docs/policy.md` for the full
/// table. The result is idempotent: normalizing `target.path` again gives it back.
///
/// # Errors
///
/// A [`PathError`] for anything that cannot be normalized unambiguously: a missing
/// leading `/`, a scheme or authority, a fragment, control or non-ASCII characters, a
/// backslash, malformed escapes, encoded `/`, `\` or control characters, invalid UTF-8
/// in escapes, look-alikes of `.` `/` `\`, dot segments with parameters, double
/// encoding, `..` above the root, or input longer than [`MAX_TARGET_LEN`].
pub fn normalize(raw: &str) -> Result<Target, PathError> {
    if raw.is_empty() {
        return Err(PathError::Empty);
    }
    if raw.len() > MAX_TARGET_LEN {
        return Err(PathError::TooLong {
            len: raw.len(),
            max: MAX_TARGET_LEN,
        });
    }
    // Step 1: bytes that are wrong wherever they appear. CR and LF are header
    // injection, NUL truncates in C back ends, `#` would be cut off by any HTTP client
    // (so the server would see less than what was checked).
    for (position, byte) in raw.bytes().enumerate() {
        match byte {
            0x00..=0x1F | 0x7F => {
                return Err(PathError::ControlChar {
                    input: clip(raw),
                    byte,
                    position,
                });
            }
            0x80..=0xFF => {
                return Err(PathError::NonAscii {
                    input: clip(raw),
                    position,
                });
            }
            b'#' => return Err(PathError::Fragment { input: clip(raw) }),
            _ => {}
        }
    }

    // Step 2: the query. It is validated but kept exactly as sent.
    let (path, query) = match raw.split_once('?') {
        Some((p, q)) => (p, Some(q)),
        None => (raw, None),
    };
    if let Some(q) = query {
        check_query(raw, q)?;
    }

    // Step 3: origin-form only.
    if !path.starts_with('/') {
        if has_scheme(path) {
            return Err(PathError::Scheme { input: clip(raw) });
        }
        return Err(PathError::MissingLeadingSlash { input: clip(raw) });
    }
    if path.starts_with("//") {
        return Err(PathError::Authority { input: clip(raw) });
    }

    // Steps 4 and 5, one segment at a time.
    let mut stack: Vec<String> = Vec::new();
    // RFC 3986 §5.2.4: a path whose last segment is empty, `.` or `..` ends in `/`.
    let mut trailing_slash = false;
    for seg in path[1..].split('/') {
        let seg = normalize_segment(raw, seg)?;
        trailing_slash = false;
        match seg.as_str() {
            // `//` collapses.
            "" | "." => trailing_slash = true,
            ".." => {
                if stack.pop().is_none() {
                    return Err(PathError::EscapesRoot { input: clip(raw) });
                }
                trailing_slash = true;
            }
            _ => stack.push(seg),
        }
    }

    let mut out = String::with_capacity(path.len());
    for seg in &stack {
        out.push('/');
        out.push_str(seg);
    }
    if stack.is_empty() || trailing_slash {
        out.push('/');
    }
    Ok(Target {
        path: out,
        query: query.map(str::to_owned),
    })
}

/// Checks that `target` is exactly what [`normalize`] returns for its own text, so
/// that a hand-built target cannot smuggle an unnormalized path past the rules.
pub(crate) fn check_normal(target: &Target) -> Result<(), PathError> {
    let text = target.to_string();
    let normal = normalize(&text)?;
    // A `?` inside `path` would have been split off as a query here.
    if normal != *target {
        return Err(PathError::NotNormalized {
            target: clip(&text),
            normalized: clip(&normal.to_string()),
        });
    }
    Ok(())
}

/// Normalizes one raw path segment: decodes unreserved escapes, upper-cases the hex of
/// the others, and refuses what cannot be kept unambiguous.
fn normalize_segment(raw: &str, seg: &str) -> Result<String, PathError> {
    let bytes = seg.as_bytes();
    let mut out = String::with_capacity(seg.len());
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        if b == b'%' {
            let v = decode_escape(bytes, i).ok_or_else(|| PathError::InvalidEscape {
                input: clip(raw),
                escape: escape_excerpt(seg, i),
                part: "path",
            })?;
            match v {
                b'/' => return Err(PathError::EncodedSlash { input: clip(raw) }),
                b'\\' => return Err(PathError::EncodedBackslash { input: clip(raw) }),
                0x00..=0x1F | 0x7F => {
                    return Err(PathError::EncodedControl {
                        input: clip(raw),
                        escape: format!("%{v:02X}"),
                    });
                }
                _ if is_unreserved(v) => out.push(char::from(v)),
                _ => push_escape(&mut out, v),
            }
            i += 3;
        } else {
            match b {
                b'\\' => return Err(PathError::Backslash { input: clip(raw) }),
                _ if is_path_char(b) => out.push(char::from(b)),
                _ => {
                    return Err(PathError::DisallowedChar {
                        input: clip(raw),
                        ch: char::from(b),
                        part: "path",
                    });
                }
            }
            i += 1;
        }
    }
    check_decoded_segment(raw, &out)?;
    Ok(out)
}

/// Checks on the *decoded* content of a normalized segment. They run on the output
/// rather than the input so that escapes assembled by decoding (e.g. `%25%32%65`,
/// which becomes `%252e`) are caught too, and so that normalizing twice refuses
/// nothing the first pass accepted.
fn check_decoded_segment(raw: &str, seg: &str) -> Result<(), PathError> {
    if !seg.contains('%') && !seg.contains(';') {
        return Ok(()); // fast path: plain ASCII, nothing left to decode
    }
    let decoded = percent_decode(seg);

    // A literal `%` followed by two hex digits after one decoding: a server that
    // decodes twice would see an escape we never checked (`%252e%252e` → `..`).
    if let Some(at) = decoded
        .windows(3)
        .position(|w| w[0] == b'%' && w[1].is_ascii_hexdigit() && w[2].is_ascii_hexdigit())
    {
        return Err(PathError::DoubleEncoded {
            input: clip(raw),
            escape: String::from_utf8_lossy(&decoded[at..at + 3]).into_owned(),
        });
    }

    // Escapes must form UTF-8: overlong forms (`%C0%AE` = '.', `%C0%AF` = '/') and
    // stray bytes are how IIS-era traversal worked, and are never needed.
    let text = std::str::from_utf8(&decoded).map_err(|_| PathError::InvalidUtf8 {
        input: clip(raw),
        segment: clip(seg),
    })?;
    for ch in text.chars() {
        if ('\u{80}'..='\u{9F}').contains(&ch) {
            // C1 controls: NEL (U+0085) is a line break to some parsers.
            let mut buf = [0u8; 4];
            let escape = ch
                .encode_utf8(&mut buf)
                .bytes()
                .map(|b| format!("%{b:02X}"))
                .collect();
            return Err(PathError::EncodedControl {
                input: clip(raw),
                escape,
            });
        }
        if is_confusable(ch) {
            return Err(PathError::Confusable {
                input: clip(raw),
                ch,
            });
        }
    }

    // Tomcat and others strip `;params` from a segment before resolving dot
    // segments, so `..;x` is `..` to them and a plain name to us: refuse it.
    if let Some(semi) = decoded.iter().position(|&b| b == b';') {
        let base = &decoded[..semi];
        if base == b"." || base == b".." {
            return Err(PathError::DotSegmentWithParams {
                input: clip(raw),
                segment: clip(seg),
            });
        }
    }
    Ok(())
}

/// Code points that NFKC normalization or Windows "best fit" conversion folds into
/// `.`, `/` or `\` (or strings containing `/`). Defense in depth against upstreams that
/// apply either after decoding; not a complete confusables table (see docs/policy.md).
fn is_confusable(ch: char) -> bool {
    matches!(
        ch,
        '\u{2024}' // ONE DOT LEADER → "."
            | '\u{2025}' // TWO DOT LEADER → ".."
            | '\u{FE52}' // SMALL FULL STOP → "."
            | '\u{FF0E}' // FULLWIDTH FULL STOP → "."
            | '\u{FF0F}' // FULLWIDTH SOLIDUS → "/"
            | '\u{2044}' // FRACTION SLASH (best fit → "/")
            | '\u{2215}' // DIVISION SLASH (best fit → "/")
            | '\u{29F8}' // BIG SOLIDUS
            | '\u{2100}' // ACCOUNT OF → "a/c"
            | '\u{2101}' // ADDRESSED TO THE SUBJECT → "a/s"
            | '\u{2105}' // CARE OF → "c/o"
            | '\u{2106}' // CADA UNA → "c/u"
            | '\u{FF3C}' // FULLWIDTH REVERSE SOLIDUS → "\"
            | '\u{FE68}' // SMALL REVERSE SOLIDUS → "\"
            | '\u{2216}' // SET MINUS (best fit → "\")
            | '\u{29F5}' // REVERSE SOLIDUS OPERATOR
            | '\u{29F9}' // BIG REVERSE SOLIDUS
    )
}

/// Validates a query: every byte printable ASCII (checked by the caller), no space,
/// well-formed escapes, and only characters that URL parsers leave alone.
fn check_query(raw: &str, q: &str) -> Result<(), PathError> {
    let bytes = q.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        if b == b'%' {
            if decode_escape(bytes, i).is_none() {
                return Err(PathError::InvalidEscape {
                    input: clip(raw),
                    escape: escape_excerpt(q, i),
                    part: "query",
                });
            }
            i += 3;
            continue;
        }
        // RFC 3986 query characters, plus `[` and `]` which APIs such as Stripe use
        // unencoded (`expand[]=…`) and which parsers pass through.
        let ok = is_path_char(b) || matches!(b, b'/' | b'?' | b'[' | b']');
        if !ok {
            return Err(PathError::DisallowedChar {
                input: clip(raw),
                ch: char::from(b),
                part: "query",
            });
        }
        i += 1;
    }
    Ok(())
}

/// `scheme ":"` per RFC 3986 §3.1, at the start of `s`.
fn has_scheme(s: &str) -> bool {
    let Some(colon) = s.find(':') else {
        return false;
    };
    let scheme = &s.as_bytes()[..colon];
    scheme.first().is_some_and(u8::is_ascii_alphabetic)
        && scheme
            .iter()
            .all(|&b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'-' | b'.'))
}

/// RFC 3986 unreserved: ALPHA DIGIT `-` `.` `_` `~`.
pub(crate) fn is_unreserved(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~')
}

/// RFC 3986 `pchar` without `%`: unreserved, sub-delims, `:` and `@`.
fn is_path_char(b: u8) -> bool {
    is_unreserved(b)
        || matches!(
            b,
            b'!' | b'$'
                | b'&'
                | b'\''
                | b'('
                | b')'
                | b'*'
                | b'+'
                | b','
                | b';'
                | b'='
                | b':'
                | b'@'
        )
}

/// The byte encoded by the escape starting at `bytes[i]` (which is `%`), if valid.
fn decode_escape(bytes: &[u8], i: usize) -> Option<u8> {
    let hi = hex_value(*bytes.get(i + 1)?)?;
    let lo = hex_value(*bytes.get(i + 2)?)?;
    Some(hi << 4 | lo)
}

fn hex_value(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

fn push_escape(out: &mut String, v: u8) {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    out.push('%');
    out.push(char::from(HEX[usize::from(v >> 4)]));
    out.push(char::from(HEX[usize::from(v & 0xF)]));
}

/// Decodes every well-formed escape; anything else is kept as is. Used on strings
/// that are already normalized (where every escape is well formed) and, leniently,
/// on paths handed to [`crate::Rule::matches`].
pub(crate) fn percent_decode(s: &str) -> Vec<u8> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && let Some(v) = decode_escape(bytes, i)
        {
            out.push(v);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    out
}

/// The (at most three character) excerpt of a malformed escape at `s[i..]`.
fn escape_excerpt(s: &str, i: usize) -> String {
    s[i..].chars().take(3).collect()
}

/// A short excerpt of agent input for error messages.
pub(crate) fn clip(s: &str) -> String {
    match s.char_indices().nth(CLIP_CHARS) {
        Some((cut, _)) => format!("{}…", &s[..cut]),
        None => s.to_owned(),
    }
}

fn control_name(byte: u8) -> String {
    match byte {
        0x00 => "a NUL byte".to_owned(),
        b'\t' => "a tab".to_owned(),
        b'\r' => "a carriage return (CR)".to_owned(),
        b'\n' => "a line feed (LF)".to_owned(),
        0x7F => "DEL".to_owned(),
        _ => format!("control character 0x{byte:02X}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(raw: &str) -> String {
        match normalize(raw) {
            Ok(t) => t.path,
            Err(e) => panic!("{raw:?} refused: {e}"),
        }
    }

    fn err(raw: &str) -> PathError {
        match normalize(raw) {
            Ok(t) => panic!("{raw:?} accepted as {t:?}"),
            Err(e) => e,
        }
    }

    #[test]
    fn plain_paths_are_unchanged() {
        for p in [
            "/",
            "/v1",
            "/v1/charges",
            "/v1/charges/",
            "/a:b@c/!$&'()*+,;=",
            "/~u/_-.",
        ] {
            assert_eq!(ok(p), p);
        }
    }

    #[test]
    fn dot_segments_resolve_like_rfc_3986() {
        assert_eq!(ok("/v1/../admin"), "/admin");
        assert_eq!(ok("/./v1"), "/v1");
        assert_eq!(ok("/v1/."), "/v1/");
        assert_eq!(ok("/v1/.."), "/");
        assert_eq!(ok("/v1/x/../.."), "/");
        assert_eq!(ok("/a/b/./../c"), "/a/c");
        // `...` is a name, not a dot segment.
        assert_eq!(ok("/v1/..."), "/v1/...");
        assert_eq!(ok("/v1/..a"), "/v1/..a");
        assert!(matches!(err("/.."), PathError::EscapesRoot { .. }));
        assert!(matches!(err("/v1/../.."), PathError::EscapesRoot { .. }));
    }

    #[test]
    fn empty_segments_collapse() {
        assert_eq!(ok("/v1//admin"), "/v1/admin");
        assert_eq!(ok("/v1///"), "/v1/");
        assert_eq!(ok("/.//evil.com/x"), "/evil.com/x");
        assert!(matches!(err("//v1"), PathError::Authority { .. }));
    }

    #[test]
    fn unreserved_escapes_are_decoded_before_dot_resolution() {
        assert_eq!(ok("/%41dmin"), "/Admin");
        assert_eq!(ok("/v1/%2e%2e/admin"), "/admin");
        assert_eq!(ok("/v1/%2E%2e/admin"), "/admin");
        assert_eq!(ok("/v1/.%2e/admin"), "/admin");
        assert_eq!(ok("/%7e%5f%2d%2E"), "/~_-.");
    }

    #[test]
    fn other_escapes_are_kept_with_upper_case_hex() {
        assert_eq!(ok("/a%3ab%20c"), "/a%3Ab%20c");
        assert_eq!(ok("/caf%c3%a9"), "/caf%C3%A9");
        assert_eq!(ok("/100%25"), "/100%25");
        assert_eq!(ok("/a%2a"), "/a%2A");
    }

    #[test]
    fn dangerous_escapes_are_refused() {
        assert!(matches!(
            err("/v1/%2fadmin"),
            PathError::EncodedSlash { .. }
        ));
        assert!(matches!(
            err("/v1/%2Fadmin"),
            PathError::EncodedSlash { .. }
        ));
        assert!(matches!(
            err("/v1/%5cadmin"),
            PathError::EncodedBackslash { .. }
        ));
        assert!(matches!(err("/v1/%00"), PathError::EncodedControl { .. }));
        assert!(matches!(
            err("/v1/%0d%0a"),
            PathError::EncodedControl { .. }
        ));
        assert!(matches!(err("/v1/%7f"), PathError::EncodedControl { .. }));
        assert!(matches!(
            err("/v1/%c2%85"),
            PathError::EncodedControl { .. }
        ));
        assert!(matches!(err("/v1/%zz"), PathError::InvalidEscape { .. }));
        assert!(matches!(err("/v1/%4"), PathError::InvalidEscape { .. }));
        assert!(matches!(err("/v1/%"), PathError::InvalidEscape { .. }));
        assert!(matches!(
            err("/v1/%c0%ae%c0%ae/admin"),
            PathError::InvalidUtf8 { .. }
        ));
        assert!(matches!(err("/v1/%c0%af"), PathError::InvalidUtf8 { .. }));
        assert!(matches!(err("/v1/%ff"), PathError::InvalidUtf8 { .. }));
        assert!(matches!(
            err("/v1/%252e%252e"),
            PathError::DoubleEncoded { .. }
        ));
        // Assembled by decoding: `%25` then `%32` → '2', `%65` → 'e'.
        assert!(matches!(
            err("/v1/%25%32%65"),
            PathError::DoubleEncoded { .. }
        ));
        assert!(matches!(
            err("/v1/%ef%bc%8e%ef%bc%8e"),
            PathError::Confusable { .. }
        ));
        assert!(matches!(
            err("/v1/%ef%bc%8fadmin"),
            PathError::Confusable { .. }
        ));
        assert!(matches!(
            err("/v1/..;/admin"),
            PathError::DotSegmentWithParams { .. }
        ));
        assert!(matches!(
            err("/v1/%2e;x/admin"),
            PathError::DotSegmentWithParams { .. }
        ));
        // A `;` elsewhere is an ordinary character.
        assert_eq!(ok("/v1/a;b=c"), "/v1/a;b=c");
    }

    #[test]
    fn forbidden_characters_are_refused() {
        assert!(matches!(err("/v1\\admin"), PathError::Backslash { .. }));
        assert!(matches!(
            err("/v1/\t"),
            PathError::ControlChar { byte: b'\t', .. }
        ));
        assert!(matches!(
            err("/v1\r\nHost: evil"),
            PathError::ControlChar {
                byte: b'\r',
                position: 3,
                ..
            }
        ));
        assert!(matches!(err("/v1/\x7f"), PathError::ControlChar { .. }));
        assert!(matches!(
            err("/caf\u{e9}"),
            PathError::NonAscii { position: 4, .. }
        ));
        assert!(matches!(
            err("/v1 x"),
            PathError::DisallowedChar { ch: ' ', .. }
        ));
        for c in ['"', '<', '>', '^', '`', '{', '|', '}', '[', ']'] {
            let p = format!("/v1/{c}");
            assert!(matches!(err(&p), PathError::DisallowedChar { .. }), "{p}");
        }
    }

    #[test]
    fn only_origin_form_is_accepted() {
        assert!(matches!(err(""), PathError::Empty));
        assert!(matches!(err("v1/x"), PathError::MissingLeadingSlash { .. }));
        assert!(matches!(err("*"), PathError::MissingLeadingSlash { .. }));
        assert!(matches!(err("?x=1"), PathError::MissingLeadingSlash { .. }));
        assert!(matches!(
            err("http://evil.com/v1"),
            PathError::Scheme { .. }
        ));
        assert!(matches!(err("HTTPS://evil.com"), PathError::Scheme { .. }));
        assert!(matches!(
            err("javascript:alert(1)"),
            PathError::Scheme { .. }
        ));
        assert!(matches!(err("//evil.com/v1"), PathError::Authority { .. }));
        assert!(matches!(err("/v1#frag"), PathError::Fragment { .. }));
        assert!(matches!(err("/v1?x=1#f"), PathError::Fragment { .. }));
        let long = format!("/{}", "a".repeat(MAX_TARGET_LEN));
        assert!(matches!(err(&long), PathError::TooLong { .. }));
    }

    #[test]
    fn the_query_is_validated_and_kept_as_sent() {
        let t = normalize("/v1/../v2?a=%2f&b=%2e%2e&c[]=1&d=/x?y").unwrap();
        assert_eq!(t.path, "/v2");
        assert_eq!(t.query.as_deref(), Some("a=%2f&b=%2e%2e&c[]=1&d=/x?y"));
        assert_eq!(t.to_string(), "/v2?a=%2f&b=%2e%2e&c[]=1&d=/x?y");
        assert_eq!(normalize("/v1?").unwrap().query.as_deref(), Some(""));
        assert!(matches!(
            err("/v1?a=%zz"),
            PathError::InvalidEscape { part: "query", .. }
        ));
        assert!(matches!(
            err("/v1?a=b c"),
            PathError::DisallowedChar { part: "query", .. }
        ));
        assert!(matches!(err("/v1?a=\r\n"), PathError::ControlChar { .. }));
        assert!(matches!(err("/v1?a=\\"), PathError::DisallowedChar { .. }));
    }

    #[test]
    fn messages_name_the_input_and_escape_it() {
        let e = err("/v1\r\nHost: evil").to_string();
        assert!(e.contains(r#""/v1\r\nHost: evil""#), "{e}");
        assert!(e.contains("carriage return"), "{e}");
        let e = err("/v1/%zz").to_string();
        assert!(e.contains("\"%zz\"") && e.contains("two hex digits"), "{e}");
        let e = err(&format!("/{}\\", "a".repeat(500))).to_string();
        assert!(e.len() < 400, "{e}");
    }

    #[test]
    fn check_normal_rejects_hand_built_targets() {
        let good = normalize("/v1/x?q=1").unwrap();
        assert!(check_normal(&good).is_ok());
        for (path, query) in [
            ("/v1/../admin", None),
            ("/v1?x", None),
            ("/%41", None),
            ("/v1", Some("a b")),
        ] {
            let t = Target {
                path: path.to_owned(),
                query: query.map(str::to_owned),
            };
            assert!(check_normal(&t).is_err(), "{t:?}");
        }
    }
}
