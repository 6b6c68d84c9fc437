//! The `allow`/`deny` arrays read ahead of the TOML parser (issue 16: a million
//! rules load at start-up).
//!
//! `toml` lexes the whole document into token and event vectors, builds a tree
//! and makes each rule a `Spanned<String>` before any of it is checked: most of
//! the time and memory of loading a large configuration, besides compiling the
//! rules. [`read`] walks the document once with the lexer `toml` itself uses
//! (`toml_parser`), and reads each array written `allow = [ … ]` or
//! `deny = [ … ]` whose body is only one-line strings, commas, whitespace,
//! newlines and comments, in TOML's grammar (no leading or doubled comma, no
//! missing one). Bodies of plain strings (no escapes) are read byte by byte
//! ([`Ahead::scan`]), others token by token with `toml_parser`'s own decoder
//! ([`Ahead::body`]). The document handed to `toml` has each such body
//! replaced by one empty string, `[""]`, whose position names the array;
//! [`Ahead::take`] gives the strings back where the parser found that marker.
//!
//! This is only a faster way to the same [`crate::Config`]: a replaced body
//! parses as the array it was, so the shortened document is valid exactly when
//! the original is, and `parse` uses it only when every array read ahead was
//! taken, once, as a capability's `allow` or `deny` list, and nothing at all was
//! wrong. Anything else, every error included, is parsed again from the
//! original text by the path that reads everything through `toml`, so every
//! message is the one it always was. The tests of `parse` hold the two paths
//! to the same outcome on generated documents.

use std::borrow::Cow;
use std::ops::Range;
use std::sync::atomic::{AtomicBool, Ordering};

use toml_parser::Source;
use toml_parser::lexer::{Token, TokenKind};

/// Arrays with fewer strings than this in all are left to `toml` ([`read`]'s
/// `min_strings` in `parse`): reading them ahead would save nothing worth a
/// second pass over the text.
pub(crate) const MIN_STRINGS: usize = 256;

/// A document with its rule arrays read ahead.
pub(crate) struct Ahead<'t> {
    /// The original text.
    source: &'t str,
    /// The document with each array read here replaced by `[""]`.
    pub(crate) text: String,
    /// The arrays, in document order (so sorted by `marker`).
    arrays: Vec<Array>,
    /// Every string of every array, in order.
    strings: Vec<Str>,
    /// The strings that had escapes, decoded.
    owned: Vec<String>,
}

/// One array read ahead.
struct Array {
    /// Where its marker string `""` starts in [`Ahead::text`].
    marker: usize,
    /// Its strings, in [`Ahead::strings`].
    strings: Range<usize>,
    /// Whether a capability has taken it.
    taken: AtomicBool,
}

/// One string: `source[start..end]`, or, when `start` is [`Str::OWNED`],
/// `owned[end]` (it had escapes).
#[derive(Clone, Copy)]
struct Str {
    start: u32,
    end: u32,
}

impl Str {
    /// `start` of a string that had escapes (no string starts there: the
    /// source is shorter than `u32::MAX` bytes).
    const OWNED: u32 = u32::MAX;
}

/// Where the lexer is, relative to a rule array.
#[derive(Clone, Copy)]
enum State {
    /// Anywhere else.
    Other,
    /// After the key `allow` or `deny` (and whitespace).
    Key,
    /// After `allow =` or `deny =` (and whitespace).
    Equals,
}

/// Reads the rule arrays of `source` ahead; `None` when they hold fewer than
/// `min_strings` strings in all, or the document is too large to index with
/// 32 bits.
pub(crate) fn read(source: &str, min_strings: usize) -> Option<Ahead<'_>> {
    u32::try_from(source.len()).ok()?;
    let mut ahead = Ahead {
        source,
        text: String::new(),
        arrays: Vec::new(),
        strings: Vec::new(),
        owned: Vec::new(),
    };
    // `source[copied..]` is not yet in `text`.
    let mut copied = 0;
    // The lexer runs over `source[base..]`; after an array read by `scan` it
    // starts again at the array's `]`, a token boundary, where it makes the
    // tokens it would have made going on.
    let mut base = 0;
    'lex: loop {
        let rest = &source[base..];
        if base > 0 && rest.starts_with('\u{feff}') {
            // The lexer skips a byte-order mark where it starts.
            return None;
        }
        let src = Source::new(rest);
        let mut tokens = src.lex();
        let mut state = State::Other;
        while let Some(token) = tokens.next() {
            state = match (state, token.kind()) {
                (_, TokenKind::Atom) => match src.get(token).map(|r| r.as_str()) {
                    Some("allow" | "deny") => State::Key,
                    _ => State::Other,
                },
                (State::Key, TokenKind::Whitespace) => State::Key,
                (State::Key, TokenKind::Equals) => State::Equals,
                (State::Equals, TokenKind::Whitespace) => State::Equals,
                (State::Equals, TokenKind::LeftSquareBracket) => {
                    let open = base + token.span().end();
                    let first = ahead.strings.len();
                    let owned = ahead.owned.len();
                    if let Some(close) = ahead.scan(open) {
                        ahead.replace(&mut copied, open, close, first);
                        base = close;
                        continue 'lex;
                    }
                    ahead.strings.truncate(first);
                    match ahead.body(&src, base, &mut tokens) {
                        Some(close) => ahead.replace(&mut copied, open, close, first),
                        None => {
                            // Left to `toml`; the lexer goes on from where the
                            // body stopped being one this reads.
                            ahead.strings.truncate(first);
                            ahead.owned.truncate(owned);
                        }
                    }
                    State::Other
                }
                _ => State::Other,
            };
        }
        break;
    }
    if ahead.strings.len() < min_strings {
        return None;
    }
    ahead.text.push_str(&source[copied..]);
    Some(ahead)
}

impl<'t> Ahead<'t> {
    /// Records the array whose body is `source[open..close]` and whose strings
    /// start at `first`: `text` gets the document up to its `[` and the
    /// marker `""`, and goes on at its `]`.
    fn replace(&mut self, copied: &mut usize, open: usize, close: usize, first: usize) {
        self.text.push_str(&self.source[*copied..open]);
        self.arrays.push(Array {
            marker: self.text.len(),
            strings: first..self.strings.len(),
            taken: AtomicBool::new(false),
        });
        self.text.push_str("\"\"");
        *copied = close;
    }

    /// The common case, without the lexer: reads an array's body from `open`
    /// (after its `[`) to its `]`, whose offset it returns, when it is only
    /// strings without escapes on one line, commas, spaces, tabs, newlines and
    /// comments, as TOML allows them (the characters TOML 1.1 allows in
    /// basic and literal strings and comments); `None` at anything else
    /// (the lexer then reads it, [`Ahead::body`]).
    fn scan(&mut self, open: usize) -> Option<usize> {
        let b = self.source.as_bytes();
        let mut i = open;
        let mut want_value = true;
        loop {
            match *b.get(i)? {
                b' ' | b'\t' | b'\n' => i += 1,
                b'\r' if b.get(i + 1) == Some(&b'\n') => i += 2,
                b'#' => {
                    i += 1;
                    while let Some(&c) = b.get(i) {
                        if c == b'\n' || c == b'\r' {
                            break;
                        }
                        if !(c == b'\t' || (0x20..0x7f).contains(&c) || c >= 0x80) {
                            return None;
                        }
                        i += 1;
                    }
                }
                b',' if !want_value => {
                    want_value = true;
                    i += 1;
                }
                // `[]`, `["a"]`, `["a",]` (a comma only ever follows a value,
                // so `[,]` stopped at its comma).
                b']' => return Some(i),
                q @ (b'"' | b'\'') if want_value => {
                    let start = i + 1;
                    let mut j = start;
                    loop {
                        let c = *b.get(j)?;
                        if c == q {
                            break;
                        }
                        let plain = c == b'\t'
                            || ((0x20..0x7f).contains(&c) && !(q == b'"' && c == b'\\'))
                            || c >= 0x80;
                        if !plain {
                            return None;
                        }
                        j += 1;
                    }
                    if j == start && b.get(j + 1) == Some(&q) {
                        // `"""` or `'''`: a multi-line string.
                        return None;
                    }
                    self.strings.push(Str {
                        start: u32::try_from(start).ok()?,
                        end: u32::try_from(j).ok()?,
                    });
                    want_value = false;
                    i = j + 1;
                }
                _ => return None,
            }
        }
    }

    /// Reads an array's body after its `[` with the lexer (whose tokens start
    /// at `base` in the source), up to and including its `]`, whose offset it
    /// returns; `None` at the first token that is not one-line strings,
    /// commas, whitespace, newlines and comments in TOML's grammar.
    fn body(
        &mut self,
        src: &Source<'t>,
        base: usize,
        tokens: &mut impl Iterator<Item = Token>,
    ) -> Option<usize> {
        // Whether a value is expected (after `[` or a comma), else a comma or `]`.
        let mut want_value = true;
        for token in tokens {
            let raw = src.get(token)?;
            match token.kind() {
                TokenKind::Whitespace => {}
                TokenKind::Newline => {
                    if !matches!(raw.as_str(), "\n" | "\r\n") {
                        return None;
                    }
                }
                TokenKind::Comment => {
                    let mut error = None;
                    raw.decode_comment(&mut error);
                    if error.is_some() {
                        return None;
                    }
                }
                TokenKind::BasicString | TokenKind::LiteralString if want_value => {
                    let mut value = Cow::Borrowed("");
                    let mut error = None;
                    let _ = raw.decode_scalar(&mut value, &mut error);
                    if error.is_some() {
                        return None;
                    }
                    let span = token.span();
                    let s = match value {
                        // No escapes: the text between the quotes.
                        Cow::Borrowed(v) if v.len() + 2 == span.len() => Str {
                            start: u32::try_from(base + span.start() + 1).ok()?,
                            end: u32::try_from(base + span.end() - 1).ok()?,
                        },
                        v => {
                            self.owned.push(v.into_owned());
                            Str {
                                start: Str::OWNED,
                                end: u32::try_from(self.owned.len() - 1).ok()?,
                            }
                        }
                    };
                    self.strings.push(s);
                    want_value = false;
                }
                TokenKind::Comma if !want_value => want_value = true,
                // `[]`, `["a"]`, `["a",]` (a comma only ever follows a value,
                // so `[,]` stopped at its comma).
                TokenKind::RightSquareBracket => return Some(base + token.span().start()),
                _ => return None,
            }
        }
        None
    }

    /// The array whose marker `""` the parser found at `at` in [`Ahead::text`],
    /// marked taken; `None` when no array has its marker there, or it was
    /// taken before.
    pub(crate) fn take(&self, at: usize) -> Option<Rules<'_, 't>> {
        let i = self.arrays.binary_search_by_key(&at, |a| a.marker).ok()?;
        let array = &self.arrays[i];
        if array.taken.swap(true, Ordering::Relaxed) {
            return None;
        }
        Some(Rules {
            ahead: self,
            strings: array.strings.clone(),
        })
    }

    /// Whether every array read ahead was taken.
    pub(crate) fn all_taken(&self) -> bool {
        self.arrays.iter().all(|a| a.taken.load(Ordering::Relaxed))
    }

    fn string(&self, s: Str) -> &str {
        if s.start == Str::OWNED {
            return self.owned.get(s.end as usize).map_or("", String::as_str);
        }
        self.source
            .get(s.start as usize..s.end as usize)
            .unwrap_or_default()
    }
}

/// The strings of one array read ahead ([`Ahead::take`]).
#[derive(Clone)]
pub(crate) struct Rules<'a, 't> {
    ahead: &'a Ahead<'t>,
    strings: Range<usize>,
}

impl<'a> Rules<'a, '_> {
    /// The strings, as the TOML parser would have decoded them.
    pub(crate) fn texts(&self) -> Vec<&'a str> {
        let strings = self.ahead.strings.get(self.strings.clone());
        strings
            .unwrap_or_default()
            .iter()
            .map(|&s| self.ahead.string(s))
            .collect()
    }

    /// How many strings there are.
    pub(crate) fn len(&self) -> usize {
        self.strings.len()
    }
}
