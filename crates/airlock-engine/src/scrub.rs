//! Redaction of secret values in responses and child output (DESIGN.md §7, invariant 4).
//!
//! A [`Scrubber`] knows every *form* in which a secret may come back, compiles them
//! all into one Aho-Corasick automaton, and replaces every byte covered by any
//! occurrence with `[REDACTED:<secret name>]`.
//!
//! # Forms searched, for a secret `S`
//!
//! Every form is matched **ignoring ASCII case** (an upper-cased echo, mixed-case
//! hex or `%xx`); case folding of non-ASCII letters is not.
//!
//! | form | patterns |
//! |---|---|
//! | plain | `S` |
//! | hex | `S` as hex digits |
//! | base64 | standard (`+/`) and URL-safe (`-_`) alphabets, at all three byte alignments inside a longer base64 string, padded or not; the standard form also with `+`/`/` percent-encoded |
//! | URL-encoded | `%XX`, space as `%20` or `+`, for the escape sets of common encoders: RFC 3986 unreserved kept, `encodeURIComponent`, Python `quote`, WHATWG form encoding, PHP `urlencode`, every byte escaped. An encoding that mixes these sets arbitrarily is not caught |
//! | JSON string | `\"`, `\\`, `\/` and `\u00XX` escapes, when `S` has characters JSON escapes |
//!
//! # Decoding views
//!
//! Besides the raw bytes, every pattern is searched in two decoded *views* of the
//! data, and a match there redacts the raw bytes it was decoded from (whole escape
//! sequences):
//!
//! | view | decodes |
//! |---|---|
//! | JSON | `\"` `\\` `\/` `\b` `\f` `\n` `\r` `\t` and `\uXXXX` anywhere (surrogate pairs joined; a lone surrogate reads as U+FFFD): Go's `\u0026`, `\u003c`, `\u003e`, or every character escaped |
//! | HTML | `&#DDD;` and `&#xHH;` (`x` either case, semicolon optional, up to 10 digits, leading zeros included), mixed freely with plain characters; `&amp;` `&lt;` `&gt;` `&quot;` `&apos;` and a few other named references of ASCII punctuation (semicolon required) |
//!
//! Decoding runs left to right from the start of the data, as a parser reads it
//! (`\\u0073` is a backslash and `u0073`), and only around escape sequences: a match
//! without any escape is a raw match too. Each view decodes one kind of escape; text
//! encoded twice (HTML references inside JSON escapes) is not decoded.
//!
//! **Event streams** ([`BodyKind::EventStream`], `Content-Type: text/event-stream`)
//! are also searched in the text a client puts together from consecutive events:
//! each event's `data` lines joined; when that is one JSON value, every string in
//! it (escapes decoded) continues the text of its *path* (`choices/0/delta/content`,
//! `delta/text`) from earlier events, otherwise the whole data continues a plain
//! text. A secret in such a text is redacted in every event holding a piece of it:
//! the first piece gets the marker, the later pieces lose the covered bytes, so the
//! reassembled text reads one marker and each event stays valid JSON.
//!
//! **Header blocks.** [`Scrubber::scrub_parts`] scrubs consecutive values (response
//! headers, in the order they are returned) as one text, so a secret split across
//! two headers is found.
//!
//! **Base64 at any alignment.** When `S` sits at byte offset `k` (mod 3) inside larger
//! data that is base64-encoded, the characters at both edges of its encoding mix bits
//! of `S` with bits of its neighbours. The pattern is the run of characters whose 6
//! bits all come from `S` (computed by encoding `k` zero bytes followed by `S`, and
//! keeping the characters that contain no pad bits). Up to 4 bits of `S` at each edge
//! can therefore stay visible next to the marker; the rest is redacted.
//!
//! **Overlaps.** Occurrences are found *overlapping* (every occurrence of every
//! pattern, in every view), and overlapping occurrences are merged into one run,
//! replaced by one marker per distinct secret in the run. So a match of one secret
//! can never "eat" the beginning of another and leave its tail visible. Two secrets
//! that differ only in ASCII case are reported under the first one's name.
//!
//! **Short secrets.** An empty secret is ignored (it would match everywhere).
//! Otherwise the plain form is always searched, whatever its length: DESIGN.md §7.4
//! has no length exemption, and a mangled response is better than a leaked key.
//! Derived forms (encodings, base64 cores) shorter than [`MIN_DERIVED_LEN`] bytes are
//! skipped: they would match noise, and the secret behind them is shorter than 3 bytes.
//!
//! **Streaming.** [`StreamScrubber`] holds back only the bytes that could still
//! become part of an occurrence: the longest tail that is a proper prefix of some
//! pattern, in the raw bytes or in a view; an unfinished escape sequence; an
//! unfinished run of overlapping occurrences; and for event streams, every event
//! from the first one whose piece of some path's text could still begin a secret,
//! and an unfinished event (held whole). Everything else is released at once, and
//! for any chunking the output is byte-identical to [`Scrubber::scrub_body`] on the
//! whole input (proptest and the `scrub_stream` fuzz target). A pathological run of
//! overlapping occurrences, or of held events, longer than [`MAX_HOLD`] is released
//! to bound memory; an unfinished event longer than [`MAX_HOLD`] ends the reading as
//! events for the rest of that stream.
//!
//! **Speed.** Clean data is the common case, so occurrences are first located
//! coarsely: a DFA over every pattern walks four slices of the data at once
//! (`lanes`), and the exact overlapping search starts where the first occurrence
//! can begin (about 2× the single walk on clean text; docs/engine.md).
//!
//! Not covered: secrets split by line breaks (MIME base64 at 76 columns), other
//! encodings (UTF-16, quoted-printable, compression — the engine refuses compressed
//! bodies), encodings stacked on each other (base64 of an upper-cased secret, HTML
//! references inside JSON escapes), a secret split across events in an order other
//! than the stream's, or spread over more than [`MAX_HOLD`] bytes of events, and a
//! secret revealed in pieces across separate responses.

mod lanes;
mod sse;
mod views;

use std::collections::HashSet;
use std::fmt;
use std::sync::{Arc, OnceLock};

use aho_corasick::{AhoCorasick, AhoCorasickBuilder, MatchKind};
use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD_NO_PAD, URL_SAFE_NO_PAD};
use zeroize::Zeroizing;

/// Derived forms shorter than this many bytes are not searched (see module docs).
pub const MIN_DERIVED_LEN: usize = 4;

/// Longest run of overlapping occurrences a [`StreamScrubber`] holds back before it
/// cuts the run (and emits a marker for the part seen so far).
pub const MAX_HOLD: usize = 64 * 1024;

/// The scrubber could not be built.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ScrubberError {
    /// The automaton over all forms of all secrets could not be built (too many or
    /// too long secrets).
    #[error(
        "cannot build the redaction automaton over {secrets} secrets ({patterns} patterns): {detail}"
    )]
    Build {
        /// How many secrets were given.
        secrets: usize,
        /// How many patterns they expanded to.
        patterns: usize,
        /// The automaton's complaint.
        detail: String,
    },
}

/// Replaces every known form of every known secret with `[REDACTED:<name>]`.
///
/// Cheap to clone (shared, immutable). Build one from every secret the caller knows
/// (the whole vault is the safest choice), and let the engine extend it with tokens
/// an injector mints ([`Scrubber::with_secrets`]).
///
/// `Debug` lists secret names only. The automaton keeps copies of the patterns in
/// memory that are not zeroized on drop (a limitation of `aho-corasick`); every
/// buffer owned by this module is.
#[derive(Clone)]
pub struct Scrubber {
    inner: Arc<Inner>,
}

struct Inner {
    /// (name, value), in insertion order; the index is the secret's id.
    secrets: Vec<(String, Zeroizing<Vec<u8>>)>,
    /// `[REDACTED:<name>]` per secret.
    markers: Vec<Vec<u8>>,
    /// `None` when there is nothing to search for.
    ac: Option<AhoCorasick>,
    /// The fast walk to where occurrences can begin, built at the first
    /// haystack long enough to use it (`None`: too many patterns for a DFA, the
    /// exact search walks everything).
    lanes: OnceLock<Option<lanes::Lanes>>,
    /// Pattern id → secret id.
    owner: Vec<usize>,
    /// Every pattern, sorted, for the streaming prefix test.
    sorted: Vec<Zeroizing<Vec<u8>>>,
    /// `first_byte[b]`: some pattern starts with byte `b`.
    first_byte: [bool; 256],
    /// Longest pattern.
    max_len: usize,
    /// `useful[b]`: some pattern has byte `b` (either ASCII case). An escape that
    /// decodes to any other byte is in no match.
    useful: [bool; 256],
}

impl fmt::Debug for Scrubber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Scrubber")
            .field("secrets", &self.secret_names().collect::<Vec<_>>())
            .field("patterns", &self.inner.owner.len())
            .finish()
    }
}

impl Default for Scrubber {
    fn default() -> Self {
        Scrubber::empty()
    }
}

impl Scrubber {
    /// A scrubber that knows no secret: output equals input.
    pub fn empty() -> Self {
        Scrubber {
            inner: Arc::new(Inner {
                secrets: Vec::new(),
                markers: Vec::new(),
                ac: None,
                lanes: OnceLock::new(),
                owner: Vec::new(),
                sorted: Vec::new(),
                first_byte: [false; 256],
                max_len: 0,
                useful: [false; 256],
            }),
        }
    }

    /// A scrubber for `(name, value)` pairs. Empty values are ignored; a value given
    /// twice is searched once, under the first name.
    pub fn new<'a, I>(secrets: I) -> Result<Self, ScrubberError>
    where
        I: IntoIterator<Item = (&'a str, &'a [u8])>,
    {
        Scrubber::empty().with_secrets(secrets)
    }

    /// This scrubber plus `secrets`. Returns a cheap clone of `self` when every value
    /// is already known, so calling it per request costs little.
    pub fn with_secrets<'a, I>(&self, secrets: I) -> Result<Self, ScrubberError>
    where
        I: IntoIterator<Item = (&'a str, &'a [u8])>,
    {
        let known = &self.inner.secrets;
        let mut added: Vec<(&str, &[u8])> = Vec::new();
        for (name, value) in secrets {
            let seen = known.iter().any(|(_, v)| v.as_slice() == value)
                || added.iter().any(|(_, v)| *v == value);
            if !value.is_empty() && !seen {
                added.push((name, value));
            }
        }
        if added.is_empty() {
            return Ok(self.clone());
        }
        let mut all: Vec<(String, Zeroizing<Vec<u8>>)> =
            known.iter().map(|(n, v)| (n.clone(), v.clone())).collect();
        all.extend(
            added
                .into_iter()
                .map(|(n, v)| (n.to_string(), Zeroizing::new(v.to_vec()))),
        );
        Scrubber::build(all)
    }

    fn build(secrets: Vec<(String, Zeroizing<Vec<u8>>)>) -> Result<Self, ScrubberError> {
        let mut patterns: Vec<Zeroizing<Vec<u8>>> = Vec::new();
        let mut owner = Vec::new();
        let mut seen: HashSet<Vec<u8>> = HashSet::new();
        for (id, (_, value)) in secrets.iter().enumerate() {
            for form in forms(value) {
                // Matching ignores ASCII case: one pattern per case-folded form.
                // `seen` holds copies only for the duration of the build.
                if seen.insert(form.to_ascii_lowercase()) {
                    patterns.push(form);
                    owner.push(id);
                }
            }
        }
        // Wipe the dedup set's copies.
        for v in seen.drain() {
            drop(Zeroizing::new(v));
        }
        let markers = secrets
            .iter()
            .map(|(name, _)| format!("[REDACTED:{name}]").into_bytes())
            .collect();
        let ac = if patterns.is_empty() {
            None
        } else {
            Some(
                AhoCorasickBuilder::new()
                    .match_kind(MatchKind::Standard)
                    .ascii_case_insensitive(true)
                    .build(patterns.iter().map(|p| p.as_slice()))
                    .map_err(|e| ScrubberError::Build {
                        secrets: secrets.len(),
                        patterns: patterns.len(),
                        detail: e.to_string(),
                    })?,
            )
        };
        let mut first_byte = [false; 256];
        let mut sorted: Vec<Zeroizing<Vec<u8>>> = patterns
            .iter()
            .map(|p| Zeroizing::new(p.to_ascii_lowercase()))
            .collect();
        for p in &sorted {
            if let Some(&b) = p.first() {
                first_byte[usize::from(b)] = true;
            }
        }
        let max_len = patterns.iter().map(|p| p.len()).max().unwrap_or(0);
        let mut useful = [false; 256];
        for &b in patterns.iter().flat_map(|p| p.iter()) {
            useful[usize::from(b.to_ascii_lowercase())] = true;
            useful[usize::from(b.to_ascii_uppercase())] = true;
        }
        drop(patterns);
        sorted.sort_unstable_by(|a, b| a.as_slice().cmp(b.as_slice()));
        Ok(Scrubber {
            inner: Arc::new(Inner {
                secrets,
                markers,
                ac,
                lanes: OnceLock::new(),
                owner,
                sorted,
                first_byte,
                max_len,
                useful,
            }),
        })
    }

    /// The names of the secrets this scrubber redacts, in the order they were added.
    pub fn secret_names(&self) -> impl Iterator<Item = &str> {
        self.inner.secrets.iter().map(|(n, _)| n.as_str())
    }

    /// Whether no secret is known (scrubbing is the identity).
    pub fn is_empty(&self) -> bool {
        self.inner.ac.is_none()
    }

    /// Number of patterns (forms of secrets) searched.
    pub fn pattern_count(&self) -> usize {
        self.inner.owner.len()
    }

    /// Whether `data` contains any form of any secret, in the raw bytes or in a
    /// decoding view (exactly when [`Scrubber::scrub`] would change it).
    pub fn contains_secret(&self, data: &[u8]) -> bool {
        let Some(ac) = &self.inner.ac else {
            return false;
        };
        self.inner.overlapping(ac, data).next().is_some()
            || !self
                .inner
                .analyze(data, true, BodyKind::Plain)
                .occ
                .is_empty()
    }

    /// `data` with every occurrence of every form of every secret replaced.
    pub fn scrub(&self, data: &[u8]) -> Vec<u8> {
        self.scrub_body(data, BodyKind::Plain)
    }

    /// Like [`Scrubber::scrub`], reading `data` as a body of `kind` (an event stream
    /// is also searched across events, see the module docs).
    pub fn scrub_body(&self, data: &[u8], kind: BodyKind) -> Vec<u8> {
        let mut out = Vec::with_capacity(data.len());
        if self.is_empty() {
            out.extend_from_slice(data);
            return out;
        }
        let a = self.inner.analyze(data, true, kind);
        self.inner.emit(data, &a, true, 0, &mut out);
        out
    }

    /// Scrubs consecutive parts (header values, in order) as one block, so a secret
    /// split across parts is found. A run of redacted bytes that spans parts leaves
    /// its markers in the part where it starts and removes its bytes from the others.
    pub fn scrub_parts(&self, parts: &[&[u8]]) -> Vec<Vec<u8>> {
        if self.is_empty() {
            return parts.iter().map(|p| p.to_vec()).collect();
        }
        let block: Zeroizing<Vec<u8>> = Zeroizing::new(parts.concat());
        let a = self.inner.analyze(&block, true, BodyKind::Plain);
        let runs = runs(&a.occ);
        let mut out = Vec::with_capacity(parts.len());
        let mut ps = 0;
        for part in parts {
            let pe = ps + part.len();
            let mut o = Vec::with_capacity(part.len());
            let mut pos = ps;
            for r in runs.iter().filter(|r| r.start < pe && r.end > ps) {
                o.extend_from_slice(&block[pos..r.start.max(pos)]);
                if r.start >= ps {
                    self.inner.markers_into(r, &mut o);
                }
                pos = pos.max(r.end.min(pe));
            }
            o.extend_from_slice(&block[pos..pe]);
            out.push(o);
            ps = pe;
        }
        out
    }

    /// A streaming scrubber sharing this one's secrets.
    pub fn stream(&self) -> StreamScrubber {
        self.stream_body(BodyKind::Plain)
    }

    /// A streaming scrubber for a body of `kind`.
    pub fn stream_body(&self, kind: BodyKind) -> StreamScrubber {
        StreamScrubber {
            scrubber: self.clone(),
            kind,
            buf: Zeroizing::new(Vec::new()),
            emitted: 0,
        }
    }
}

/// How the client reads a body; decides which views are searched.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum BodyKind {
    /// Any body: raw bytes, JSON-escape and HTML-reference views.
    #[default]
    Plain,
    /// `text/event-stream`: also the text that consecutive events' `data` make
    /// together (see the module docs).
    EventStream,
}

impl BodyKind {
    /// The kind for a `Content-Type` header value (`None`: no header).
    pub fn from_content_type(value: Option<&[u8]>) -> BodyKind {
        let Some(v) = value else {
            return BodyKind::Plain;
        };
        let media = v.split(|&b| b == b';').next().unwrap_or_default();
        if media
            .trim_ascii()
            .eq_ignore_ascii_case(b"text/event-stream")
        {
            BodyKind::EventStream
        } else {
            BodyKind::Plain
        }
    }
}

/// An occurrence of a secret form, as a raw byte range.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct Occ {
    start: usize,
    end: usize,
    secret: usize,
    /// Whether the marker goes here (false: a later piece of a match split across
    /// events, whose bytes are only removed).
    marker: bool,
    /// The multi-piece match this is part of, if any.
    group: Option<usize>,
}

/// Everything found in some data.
struct Analysis {
    occ: Vec<Occ>,
    /// Raw span of each multi-piece match (never released in part).
    groups: Vec<(usize, usize)>,
    /// Bytes from here on may still become part of an occurrence.
    hold: usize,
    /// The same, byte-level views only (what a forced release falls back to).
    byte_hold: usize,
    /// Escape spans of each view (streaming only), to never resume inside one.
    spans: Vec<Vec<(usize, usize)>>,
    /// Event starts (event streams), to resume at an event boundary.
    event_starts: Option<Vec<usize>>,
    /// An unfinished event is too long to hold: read the rest as a plain body.
    oversized: bool,
}

/// A maximal run of overlapping occurrences.
struct Run {
    start: usize,
    end: usize,
    /// Secrets in the run, in order of appearance, and whether one of their
    /// occurrences carries the marker.
    secrets: Vec<(usize, bool)>,
}

fn runs(occ: &[Occ]) -> Vec<Run> {
    let mut occ = occ.to_vec();
    occ.sort_unstable();
    let mut runs: Vec<Run> = Vec::new();
    for o in occ {
        match runs.last_mut() {
            Some(run) if o.start < run.end => {
                run.end = run.end.max(o.end);
                match run.secrets.iter_mut().find(|(s, _)| *s == o.secret) {
                    Some((_, m)) => *m |= o.marker,
                    None => run.secrets.push((o.secret, o.marker)),
                }
            }
            _ => runs.push(Run {
                start: o.start,
                end: o.end,
                secrets: vec![(o.secret, o.marker)],
            }),
        }
    }
    runs
}

const VIEWS: [views::Kind; 2] = [views::Kind::Json, views::Kind::Html];

impl Inner {
    /// Finds every occurrence in `data` (raw bytes, decoding views, and for event
    /// streams the events' text) and, when more data may follow (`!last`), where
    /// the bytes that may still become part of one begin.
    fn analyze(&self, data: &[u8], last: bool, kind: BodyKind) -> Analysis {
        let mut a = Analysis {
            occ: Vec::new(),
            groups: Vec::new(),
            hold: data.len(),
            byte_hold: data.len(),
            spans: Vec::new(),
            event_starts: None,
            oversized: false,
        };
        let Some(ac) = &self.ac else {
            return a;
        };
        a.occ.extend(self.overlapping(ac, data).map(|m| Occ {
            start: m.start(),
            end: m.end(),
            secret: self.owner[m.pattern().as_usize()],
            marker: true,
            group: None,
        }));
        if !last {
            a.hold = self.hold_point(data);
        }
        let ext = self.max_len.saturating_sub(1);
        for view in VIEWS {
            let sc = views::scan(view, data, last, ext, !last, &self.useful);
            for w in &sc.windows {
                for m in self.overlapping(ac, w.decoded.text.as_slice()) {
                    if let Some((start, end)) = w.decoded.raw_range(m.start(), m.end()) {
                        a.occ.push(Occ {
                            start,
                            end,
                            secret: self.owner[m.pattern().as_usize()],
                            marker: true,
                            group: None,
                        });
                    }
                }
            }
            if !last {
                if let Some(p) = sc.incomplete {
                    a.hold = a.hold.min(p);
                }
                // Only a window reaching the end can end with a pattern's prefix
                // that the raw search does not see.
                if let Some(w) = sc.windows.last()
                    && (w.raw_end == data.len() || Some(w.raw_end) == sc.incomplete)
                {
                    let text = w.decoded.text.as_slice();
                    let i = self.hold_point(text);
                    if i < text.len() {
                        a.hold = a.hold.min(w.decoded.raw_pos(i, w.raw_end));
                    }
                }
                a.spans.push(sc.spans);
            }
        }
        a.byte_hold = a.hold;
        if kind == BodyKind::EventStream {
            let s = sse::analyze(self, data, last, MAX_HOLD);
            a.occ.extend(s.occ);
            a.groups = s.groups;
            a.hold = a.hold.min(s.hold);
            a.event_starts = Some(s.event_starts);
            a.oversized = s.oversized;
        }
        a
    }

    /// Every occurrence of every pattern in `haystack`, overlapping: the exact
    /// search, started where the fast walk says the first occurrence can begin
    /// (see `lanes`), so clean data costs the fast walk only.
    fn overlapping<'h>(
        &self,
        ac: &'h AhoCorasick,
        haystack: &'h [u8],
    ) -> impl Iterator<Item = aho_corasick::Match> + 'h {
        let lanes = (haystack.len() >= lanes::MIN_HAYSTACK)
            .then(|| {
                self.lanes.get_or_init(|| {
                    lanes::Lanes::build(self.sorted.iter().map(|p| p.as_slice()), self.max_len)
                })
            })
            .and_then(Option::as_ref);
        let from = match lanes {
            Some(lanes) => lanes.first_start(haystack),
            None => Some(0),
        };
        from.into_iter().flat_map(move |from| {
            ac.find_overlapping_iter(aho_corasick::Input::new(haystack).span(from..haystack.len()))
        })
    }

    /// Writes the markers of `run` to `out`.
    fn markers_into(&self, run: &Run, out: &mut Vec<u8>) {
        for &(s, marker) in &run.secrets {
            if marker {
                out.extend_from_slice(&self.markers[s]);
            }
        }
    }

    /// Releases `data[emitted..cut]`, scrubbed, into `out` and returns `cut`: all of
    /// it when `last`, otherwise up to where nothing can change any more.
    fn emit(
        &self,
        data: &[u8],
        a: &Analysis,
        last: bool,
        emitted: usize,
        out: &mut Vec<u8>,
    ) -> usize {
        let runs = runs(&a.occ);
        let len = data.len();
        let mut cut = if last { len } else { a.hold.min(len) };
        if !last {
            // Never cut through a run (it may still grow) or a match split across
            // events (its later pieces must go out with its first).
            loop {
                let before = cut;
                for r in runs.iter().rev() {
                    if r.start < cut && r.end > cut {
                        cut = r.start;
                    }
                }
                for &(s, e) in &a.groups {
                    if s < cut && e > cut {
                        cut = s;
                    }
                }
                if cut == before {
                    break;
                }
            }
            if len - cut > MAX_HOLD {
                // Pathological: release what the byte-level views allow, and a run
                // across that point whole (a marker for the part seen so far).
                cut = a.byte_hold.min(len);
                if let Some(r) = runs.iter().find(|r| r.start < cut && r.end > cut) {
                    cut = r.end;
                }
            }
            cut = cut.max(emitted);
        }
        let mut pos = emitted;
        for r in &runs {
            if r.start >= cut {
                break;
            }
            if r.end <= emitted {
                continue;
            }
            out.extend_from_slice(&data[pos..r.start.max(pos)]);
            self.markers_into(r, out);
            pos = pos.max(r.end);
        }
        let cut = cut.max(pos);
        out.extend_from_slice(&data[pos..cut]);
        cut
    }

    /// The smallest `i` such that `data[i..]` is a proper prefix of some pattern,
    /// ignoring ASCII case (`data.len()` if there is none): bytes before it can be
    /// decided now.
    fn hold_point(&self, data: &[u8]) -> usize {
        let from = data.len().saturating_sub(self.max_len.saturating_sub(1));
        let tail = Zeroizing::new(data[from..].to_ascii_lowercase());
        (0..tail.len())
            .find(|&i| self.first_byte[usize::from(tail[i])] && self.is_proper_prefix(&tail[i..]))
            .map_or(data.len(), |i| from + i)
    }

    /// `s` (lower case) is a proper prefix of some (lower-cased) pattern.
    fn is_proper_prefix(&self, s: &[u8]) -> bool {
        let idx = self.sorted.partition_point(|p| p.as_slice() < s);
        self.sorted[idx..]
            .iter()
            .take_while(|p| p.starts_with(s))
            .any(|p| p.len() > s.len())
    }
}

/// Where a stream resumes after releasing up to `cut`: never inside an escape
/// sequence (decoding restarts there), and for event streams at an event start.
fn resume_point(a: &Analysis, cut: usize, kind: BodyKind) -> usize {
    if kind == BodyKind::EventStream
        && let Some(starts) = &a.event_starts
    {
        let i = starts.partition_point(|&s| s <= cut);
        return i.checked_sub(1).map_or(0, |i| starts[i]);
    }
    let mut t = cut;
    for spans in &a.spans {
        let i = spans.partition_point(|&(s, _)| s < cut);
        if let Some(&(s, e)) = i.checked_sub(1).and_then(|i| spans.get(i))
            && s < cut
            && cut < e
        {
            t = t.min(s);
        }
    }
    t
}

/// Scrubs a byte stream chunk by chunk; a secret split across chunks is still
/// caught. Get one from [`Scrubber::stream`] or [`Scrubber::stream_body`]; call
/// [`StreamScrubber::push`] per chunk and [`StreamScrubber::finish`] at the end
/// (forgetting `finish` loses the held-back tail, never leaks it).
pub struct StreamScrubber {
    scrubber: Scrubber,
    kind: BodyKind,
    /// Bytes kept for analysis: from a point where decoding can restart (for event
    /// streams, an event start). May hold part of a secret.
    buf: Zeroizing<Vec<u8>>,
    /// How many bytes of `buf` were already released.
    emitted: usize,
}

impl fmt::Debug for StreamScrubber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StreamScrubber")
            .field("kind", &self.kind)
            .field("pending_len", &self.pending_len())
            .finish_non_exhaustive()
    }
}

impl StreamScrubber {
    /// Feeds `chunk`; returns the bytes that can be released now (scrubbed).
    pub fn push(&mut self, chunk: &[u8]) -> Vec<u8> {
        let mut out = Vec::with_capacity(chunk.len() + self.pending_len());
        self.push_into(chunk, &mut out);
        out
    }

    /// Like [`StreamScrubber::push`], appending to `out`.
    pub fn push_into(&mut self, chunk: &[u8], out: &mut Vec<u8>) {
        if self.scrubber.is_empty() {
            out.extend_from_slice(chunk);
            return;
        }
        self.buf.extend_from_slice(chunk);
        let inner = &self.scrubber.inner;
        let a = inner.analyze(&self.buf, false, self.kind);
        let cut = inner.emit(&self.buf, &a, false, self.emitted, out);
        if a.oversized {
            // An event longer than we may hold: not read as events any more.
            self.kind = BodyKind::Plain;
        }
        let t = resume_point(&a, cut, self.kind).min(cut);
        self.buf.drain(..t);
        self.emitted = cut - t;
    }

    /// Ends the stream: returns the held-back tail, scrubbed.
    pub fn finish(&mut self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.pending_len());
        if !self.scrubber.is_empty() {
            let inner = &self.scrubber.inner;
            let a = inner.analyze(&self.buf, true, self.kind);
            inner.emit(&self.buf, &a, true, self.emitted, &mut out);
        }
        self.buf.clear();
        self.emitted = 0;
        out
    }

    /// How many bytes are currently held back (received, not yet released).
    pub fn pending_len(&self) -> usize {
        self.buf.len() - self.emitted
    }
}

// ---------------------------------------------------------------------------------
// Forms of a secret.

/// Every form of `s` that is searched (see the module docs), deduplicated.
fn forms(s: &[u8]) -> Vec<Zeroizing<Vec<u8>>> {
    let mut out: Vec<Zeroizing<Vec<u8>>> = Vec::new();
    let mut add = |form: Zeroizing<Vec<u8>>, derived: bool| {
        if form.is_empty() || (derived && form.len() < MIN_DERIVED_LEN) {
            return;
        }
        if !out.iter().any(|f| f.as_slice() == form.as_slice()) {
            out.push(form);
        }
    };
    if s.is_empty() {
        return Vec::new();
    }
    add(Zeroizing::new(s.to_vec()), false);

    // hex
    add(hex_encode(s, b"0123456789abcdef"), true);
    add(hex_encode(s, b"0123456789ABCDEF"), true);

    // base64 cores at each alignment, both alphabets
    for k in 0..3 {
        let std = base64_core(s, k, false);
        if std.iter().any(|&b| b == b'+' || b == b'/') {
            add(replace_bytes(&std, &[(b'+', b"%2B"), (b'/', b"%2F")]), true);
            add(replace_bytes(&std, &[(b'+', b"%2b"), (b'/', b"%2f")]), true);
        }
        add(std, true);
        add(base64_core(s, k, true), true);
    }

    // URL encodings
    type Keep = fn(u8) -> bool;
    let unreserved: Keep = |b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~');
    let uri_component: Keep = |b| {
        b.is_ascii_alphanumeric()
            || matches!(
                b,
                b'-' | b'.' | b'_' | b'~' | b'!' | b'*' | b'\'' | b'(' | b')'
            )
    };
    let py_quote: Keep =
        |b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~' | b'/');
    let form: Keep = |b| b.is_ascii_alphanumeric() || matches!(b, b'*' | b'-' | b'.' | b'_');
    let php: Keep = |b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_');
    let nothing: Keep = |_| false;
    for keep in [unreserved, uri_component, py_quote, form, php, nothing] {
        for hex in [&b"0123456789ABCDEF"[..], &b"0123456789abcdef"[..]] {
            for plus_for_space in [false, true] {
                add(url_encode(s, keep, hex, plus_for_space), true);
            }
        }
    }

    // JSON string escapes
    if s.iter()
        .any(|&b| b == b'"' || b == b'\\' || b == b'/' || b < 0x20)
    {
        add(json_escape(s, false), true);
        add(json_escape(s, true), true);
    }
    out
}

fn hex_encode(s: &[u8], digits: &[u8; 16]) -> Zeroizing<Vec<u8>> {
    let mut out = Zeroizing::new(Vec::with_capacity(s.len() * 2));
    for &b in s {
        out.push(digits[usize::from(b >> 4)]);
        out.push(digits[usize::from(b & 15)]);
    }
    out
}

/// The base64 characters determined by `s` alone when `s` starts at byte offset
/// `k` (mod 3) of the encoded data.
fn base64_core(s: &[u8], k: usize, url_safe: bool) -> Zeroizing<Vec<u8>> {
    let mut input = Zeroizing::new(vec![0u8; k]);
    input.extend_from_slice(s);
    let engine = if url_safe {
        &URL_SAFE_NO_PAD
    } else {
        &STANDARD_NO_PAD
    };
    let encoded = Zeroizing::new(engine.encode(input.as_slice()).into_bytes());
    let first = (8 * k).div_ceil(6);
    let last = (8 * (k + s.len())) / 6;
    Zeroizing::new(encoded.get(first..last).unwrap_or_default().to_vec())
}

fn replace_bytes(s: &[u8], map: &[(u8, &[u8])]) -> Zeroizing<Vec<u8>> {
    let mut out = Zeroizing::new(Vec::with_capacity(s.len() + 8));
    for &b in s {
        match map.iter().find(|(from, _)| *from == b) {
            Some((_, to)) => out.extend_from_slice(to),
            None => out.push(b),
        }
    }
    out
}

fn url_encode(
    s: &[u8],
    keep: fn(u8) -> bool,
    hex: &[u8],
    plus_for_space: bool,
) -> Zeroizing<Vec<u8>> {
    let mut out = Zeroizing::new(Vec::with_capacity(s.len() * 3));
    for &b in s {
        if keep(b) {
            out.push(b);
        } else if b == b' ' && plus_for_space {
            out.push(b'+');
        } else {
            out.push(b'%');
            out.push(hex[usize::from(b >> 4)]);
            out.push(hex[usize::from(b & 15)]);
        }
    }
    out
}

fn json_escape(s: &[u8], escape_slash: bool) -> Zeroizing<Vec<u8>> {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut out = Zeroizing::new(Vec::with_capacity(s.len() + 8));
    for &b in s {
        match b {
            b'"' => out.extend_from_slice(b"\\\""),
            b'\\' => out.extend_from_slice(b"\\\\"),
            b'/' if escape_slash => out.extend_from_slice(b"\\/"),
            b'\n' => out.extend_from_slice(b"\\n"),
            b'\r' => out.extend_from_slice(b"\\r"),
            b'\t' => out.extend_from_slice(b"\\t"),
            0..0x20 => {
                out.extend_from_slice(b"\\u00");
                out.push(HEX[usize::from(b >> 4)]);
                out.push(HEX[usize::from(b & 15)]);
            }
            _ => out.push(b),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::engine::general_purpose::{STANDARD, URL_SAFE};

    const SECRET: &[u8] = b"sk_live_4eC39HqLyjWDarjtT1zdp7dc";

    fn scrubber() -> Scrubber {
        Scrubber::new([("stripe", SECRET)]).unwrap()
    }

    fn clean(out: &[u8]) -> bool {
        !out.windows(SECRET.len()).any(|w| w == SECRET)
    }

    #[test]
    fn plain_hex_url() {
        let s = scrubber();
        for form in [
            SECRET.to_vec(),
            hex_encode(SECRET, b"0123456789abcdef").to_vec(),
            hex_encode(SECRET, b"0123456789ABCDEF").to_vec(),
        ] {
            let mut data = b"token=".to_vec();
            data.extend_from_slice(&form);
            data.extend_from_slice(b"&x=1");
            assert_eq!(s.scrub(&data), b"token=[REDACTED:stripe]&x=1");
        }
    }

    #[test]
    fn url_encoded_special_characters() {
        let secret = b"p@ss word/+=&x~!";
        let s = Scrubber::new([("pw", &secret[..])]).unwrap();
        for enc in [
            &b"p%40ss%20word%2F%2B%3D%26x~%21"[..],
            b"p%40ss+word%2F%2B%3D%26x~%21",
            b"p%40ss%20word%2f%2b%3d%26x~%21",
            b"p%40ss%20word/%2B%3D%26x~%21",
            b"p%40ss+word%2F%2B%3D%26x%7E%21",
        ] {
            let out = s.scrub(enc);
            assert_eq!(out, b"[REDACTED:pw]", "{}", String::from_utf8_lossy(enc));
        }
    }

    #[test]
    fn base64_at_every_alignment() {
        let s = scrubber();
        for prefix_len in 0..6 {
            for suffix_len in 0..4 {
                let mut data = vec![b'A'; prefix_len];
                data.extend_from_slice(SECRET);
                data.extend(std::iter::repeat_n(b'Z', suffix_len));
                for enc in [
                    STANDARD.encode(&data),
                    STANDARD_NO_PAD.encode(&data),
                    URL_SAFE.encode(&data),
                    URL_SAFE_NO_PAD.encode(&data),
                ] {
                    let out = s.scrub(enc.as_bytes());
                    assert!(
                        out.windows(17).any(|w| w == b"[REDACTED:stripe]"),
                        "{enc} -> {}",
                        String::from_utf8_lossy(&out)
                    );
                    // What is left cannot be decoded back to the secret.
                    let core = base64_core(SECRET, prefix_len % 3, false);
                    assert!(!out.windows(core.len()).any(|w| w == core.as_slice()));
                }
            }
        }
    }

    #[test]
    fn json_escapes() {
        let secret = br#"a/b"c\d"#;
        let s = Scrubber::new([("j", &secret[..])]).unwrap();
        assert_eq!(
            s.scrub(br#"{"k":"a\/b\"c\\d"}"#),
            br#"{"k":"[REDACTED:j]"}"#
        );
        assert_eq!(s.scrub(br#"{"k":"a/b\"c\\d"}"#), br#"{"k":"[REDACTED:j]"}"#);
    }

    #[test]
    fn overlapping_secrets_are_both_removed() {
        // The end of one secret is the start of another: neither may survive.
        let s = Scrubber::new([("a", &b"xxxx1234"[..]), ("b", &b"1234yyyyyyyy"[..])]).unwrap();
        assert_eq!(
            s.scrub(b"<xxxx1234yyyyyyyy>"),
            b"<[REDACTED:a][REDACTED:b]>"
        );
        assert_eq!(
            s.scrub(b"<xxxx1234><1234yyyyyyyy>"),
            b"<[REDACTED:a]><[REDACTED:b]>"
        );
    }

    #[test]
    fn short_and_empty_secrets() {
        let s = Scrubber::new([("pin", &b"42"[..]), ("empty", &b""[..])]).unwrap();
        assert_eq!(s.scrub(b"a42b"), b"a[REDACTED:pin]b");
        assert_eq!(s.secret_names().collect::<Vec<_>>(), vec!["pin"]);
        assert!(Scrubber::new([("e", &b""[..])]).unwrap().is_empty());
    }

    #[test]
    fn with_secrets_is_cheap_when_known() {
        let s = scrubber();
        let t = s.with_secrets([("other-name", SECRET)]).unwrap();
        assert!(Arc::ptr_eq(&s.inner, &t.inner));
        let u = s.with_secrets([("tok", &b"minted-token-xyz"[..])]).unwrap();
        assert_eq!(u.scrub(b"minted-token-xyz"), b"[REDACTED:tok]");
        assert!(clean(&u.scrub(SECRET)));
    }

    #[test]
    fn streaming_releases_what_cannot_be_a_secret() {
        let s = scrubber();
        let mut st = s.stream();
        assert_eq!(st.push(b"data: hello\n\n"), b"data: hello\n\n");
        assert_eq!(st.pending_len(), 0);
        // A prefix of the secret is held…
        let out = st.push(&SECRET[..10]);
        assert!(out.is_empty());
        // …and redacted when the rest arrives.
        let mut out = st.push(&SECRET[10..]);
        out.extend(st.push(b" end"));
        out.extend(st.finish());
        assert_eq!(out, b"[REDACTED:stripe] end");
        // A held prefix that never completes comes out unchanged at the end.
        let mut st = s.stream();
        let mut out = st.push(b"x sk_live_");
        out.extend(st.finish());
        assert_eq!(out, b"x sk_live_");
    }

    #[test]
    fn debug_shows_names_only() {
        let d = format!("{:?}", scrubber());
        assert!(d.contains("stripe") && !d.contains("sk_live"), "{d}");
    }
}

#[cfg(test)]
mod mutant_tests;
