//! The server-sent events view: the text a client reassembles from consecutive
//! events.
//!
//! Each event's `data:` lines are joined with `\n` (as the EventSource spec says).
//! When the joined data is one JSON value, every string in it is a piece of the
//! *channel* named by its path (`choices/0/delta/content`), JSON escapes decoded;
//! otherwise the whole data is a piece of the text channel. A channel's text is the
//! concatenation of its pieces over consecutive events, which is what an SDK
//! reassembling `delta` tokens produces. A secret found in a channel's text is
//! redacted in every event that holds a piece of it: the first piece gets the
//! marker, the others lose the covered bytes (so the reassembled text reads one
//! marker), and the JSON stays valid.

use std::collections::HashMap;

use super::views::{self, Decoded, Kind};
use super::{Inner, Occ};

/// Deepest JSON nesting read; deeper data counts as text.
const MAX_DEPTH: usize = 32;

/// Results of the view over some event-stream data.
pub(super) struct Analysis {
    /// Occurrences (pieces of channel matches).
    pub(super) occ: Vec<Occ>,
    /// Raw span (first piece start, last piece end) of each multi-piece match; an
    /// occurrence's `group` indexes it.
    pub(super) groups: Vec<(usize, usize)>,
    /// Bytes from here on may still belong to a match (when not last).
    pub(super) hold: usize,
    /// Raw offsets at which events start (the first is 0).
    pub(super) event_starts: Vec<usize>,
    /// The unfinished last event is longer than the bound on held bytes.
    pub(super) oversized: bool,
}

/// A piece of a channel: decoded text and its map to raw offsets.
struct Piece {
    /// Offset in the channel's text.
    at: usize,
    /// Index into `event_starts` of the event holding it.
    event: usize,
    decoded: Decoded,
}

#[derive(Default)]
struct Channel {
    text: zeroize::Zeroizing<Vec<u8>>,
    pieces: Vec<Piece>,
}

pub(super) fn analyze(inner: &Inner, data: &[u8], last: bool, max_hold: usize) -> Analysis {
    let mut out = Analysis {
        occ: Vec::new(),
        groups: Vec::new(),
        hold: data.len(),
        event_starts: vec![0],
        oversized: false,
    };
    let mut channels: HashMap<Vec<u8>, Channel> = HashMap::new();
    // Data lines of the current event: raw (value start, value end, terminator end).
    let mut lines: Vec<(usize, usize, usize)> = Vec::new();
    let mut pos = 0;
    let mut event_start = 0;
    // A `data` field line `pos..eol` (terminator up to `next`) joins the event.
    let field = |pos: usize, eol: usize, next: usize, lines: &mut Vec<(usize, usize, usize)>| {
        if let Some(rest) = data[pos..eol].strip_prefix(b"data") {
            match rest.first() {
                None => lines.push((eol, eol, next)),
                Some(b':') => {
                    let skip = if rest.get(1) == Some(&b' ') { 6 } else { 5 };
                    lines.push((pos + skip, eol, next));
                }
                Some(_) => {}
            }
        }
    };
    // Each line: value `pos..eol`, terminator `eol..next`.
    while let Some(off) = memchr::memchr2(b'\n', b'\r', &data[pos..]) {
        let eol = pos + off;
        let next = match (data[eol], data.get(eol + 1)) {
            (b'\r', Some(b'\n')) => eol + 2,
            // A CR at the very end may be followed by LF.
            (b'\r', None) if !last => break,
            _ => eol + 1,
        };
        if eol == pos {
            // A blank line ends the event.
            let idx = out.event_starts.len() - 1;
            event(inner, data, &lines, idx, &mut channels);
            lines.clear();
            event_start = next;
            out.event_starts.push(next);
        } else {
            field(pos, eol, next, &mut lines);
        }
        pos = next;
    }
    if event_start < data.len() {
        if last {
            // An unfinished event at the end: some clients still use it.
            if pos < data.len() {
                field(pos, data.len(), data.len(), &mut lines);
            }
            let idx = out.event_starts.len() - 1;
            event(inner, data, &lines, idx, &mut channels);
        } else if data.len() - event_start > max_hold {
            out.oversized = true;
        } else {
            out.hold = event_start;
        }
    }

    let Some(ac) = &inner.ac else {
        return out;
    };
    let mut channels: Vec<Channel> = channels.into_values().collect();
    channels.sort_by_key(|c| {
        c.pieces
            .first()
            .and_then(|p| p.decoded.segs.first())
            .map_or(0, |s| s.raw)
    });
    for ch in &channels {
        for m in inner.overlapping(ac, ch.text.as_slice()) {
            let secret = inner.owner[m.pattern().as_usize()];
            let first = ch
                .pieces
                .partition_point(|p| p.at + p.decoded.text.len() <= m.start());
            let group = out.groups.len();
            let mut span: Option<(usize, usize)> = None;
            let mut marker = true;
            for p in ch.pieces[first..].iter().take_while(|p| p.at < m.end()) {
                let from = m.start().max(p.at) - p.at;
                let to = m.end().min(p.at + p.decoded.text.len()) - p.at;
                if to <= from {
                    continue;
                }
                if let Some((s, e)) = p.decoded.raw_range(from, to) {
                    out.occ.push(Occ {
                        start: s,
                        end: e,
                        secret,
                        marker,
                        group: Some(group),
                    });
                    marker = false;
                    span = Some(span.map_or((s, e), |(a, b)| (a.min(s), b.max(e))));
                }
            }
            if let Some(sp) = span {
                out.groups.push(sp);
            }
        }
        if !last {
            let i = inner.hold_point(ch.text.as_slice());
            if i < ch.text.len() {
                let k = ch
                    .pieces
                    .partition_point(|p| p.at + p.decoded.text.len() <= i);
                if let Some(p) = ch.pieces.get(k) {
                    out.hold = out.hold.min(out.event_starts[p.event]);
                }
            }
        }
    }
    out
}

/// Adds one event's pieces to the channels.
fn event(
    inner: &Inner,
    data: &[u8],
    lines: &[(usize, usize, usize)],
    idx: usize,
    channels: &mut HashMap<Vec<u8>, Channel>,
) {
    if lines.is_empty() || inner.ac.is_none() {
        return;
    }
    // The joined data and, per line, (joined offset, raw value start, value length,
    // terminator end).
    let mut joined = zeroize::Zeroizing::new(Vec::new());
    let mut map: Vec<(usize, usize, usize, usize)> = Vec::new();
    for (k, &(a, b, next)) in lines.iter().enumerate() {
        if k > 0 {
            joined.push(b'\n');
        }
        map.push((joined.len(), a, b - a, next));
        joined.extend_from_slice(&data[a..b]);
    }
    let strings = match joined.iter().find(|b| !b.is_ascii_whitespace()) {
        Some(b'{' | b'[') => json_strings(&joined),
        _ => None,
    };
    match strings {
        Some(strings) => {
            for (path, a, b) in strings {
                // JSON strings hold no raw line breaks, so each lies in one line.
                let k = map.partition_point(|m| m.0 <= a).saturating_sub(1);
                let Some(&(j0, raw0, _, _)) = map.get(k) else {
                    continue;
                };
                let mut d = views::decode_all(Kind::Json, &joined[a..b]);
                for s in &mut d.segs {
                    s.raw += raw0 + (a - j0);
                }
                push_piece(channels, path, idx, d);
            }
        }
        None => {
            // Text: each line as it is, the `\n` between lines mapped to the terminator.
            let mut d = Decoded::default();
            let mut prev: Option<(usize, usize)> = None;
            for &(_, raw, len, next) in &map {
                if let Some((end, next)) = prev {
                    d.push_mapped(b"\n", end, next - end);
                }
                d.push_plain(data, raw, raw + len);
                prev = Some((raw + len, next));
            }
            push_piece(channels, Vec::new(), idx, d);
        }
    }
}

fn push_piece(channels: &mut HashMap<Vec<u8>, Channel>, path: Vec<u8>, event: usize, d: Decoded) {
    if d.text.is_empty() {
        return;
    }
    let ch = channels.entry(path).or_default();
    let at = ch.text.len();
    ch.text.extend_from_slice(&d.text);
    ch.pieces.push(Piece {
        at,
        event,
        decoded: d,
    });
}

/// Every string value of the JSON text `s` as (path, content start, content end),
/// or `None` when `s` is not one JSON value (or nests deeper than [`MAX_DEPTH`]).
fn json_strings(s: &[u8]) -> Option<Vec<(Vec<u8>, usize, usize)>> {
    let mut p = JsonScan {
        s,
        i: 0,
        path: Vec::new(),
        out: Vec::new(),
    };
    p.value(0)?;
    p.ws();
    (p.i == s.len()).then_some(p.out)
}

struct JsonScan<'a> {
    s: &'a [u8],
    i: usize,
    /// Path components, each followed by a 0 byte.
    path: Vec<u8>,
    out: Vec<(Vec<u8>, usize, usize)>,
}

impl JsonScan<'_> {
    fn ws(&mut self) {
        while self.s.get(self.i).is_some_and(|b| b" \t\r\n".contains(b)) {
            self.i += 1;
        }
    }

    fn eat(&mut self, b: u8) -> Option<()> {
        self.ws();
        (self.s.get(self.i) == Some(&b)).then(|| self.i += 1)
    }

    /// A string's content range; the cursor ends after its closing quote.
    fn string(&mut self) -> Option<(usize, usize)> {
        self.eat(b'"')?;
        let start = self.i;
        loop {
            match *self.s.get(self.i)? {
                b'"' => {
                    self.i += 1;
                    return Some((start, self.i - 1));
                }
                b'\\' => self.i += 2,
                c if c < 0x20 => return None,
                _ => self.i += 1,
            }
        }
    }

    fn value(&mut self, depth: usize) -> Option<()> {
        if depth > MAX_DEPTH {
            return None;
        }
        self.ws();
        match *self.s.get(self.i)? {
            b'{' => {
                self.i += 1;
                if self.eat(b'}').is_some() {
                    return Some(());
                }
                loop {
                    let (a, b) = self.string()?;
                    self.eat(b':')?;
                    let len = self.path.len();
                    self.path.extend_from_slice(&self.s[a..b]);
                    self.path.push(0);
                    self.value(depth + 1)?;
                    self.path.truncate(len);
                    if self.eat(b',').is_none() {
                        return self.eat(b'}');
                    }
                }
            }
            b'[' => {
                self.i += 1;
                if self.eat(b']').is_some() {
                    return Some(());
                }
                let mut index = 0usize;
                loop {
                    let len = self.path.len();
                    self.path.extend_from_slice(index.to_string().as_bytes());
                    self.path.push(0);
                    self.value(depth + 1)?;
                    self.path.truncate(len);
                    index += 1;
                    if self.eat(b',').is_none() {
                        return self.eat(b']');
                    }
                }
            }
            b'"' => {
                let (a, b) = self.string()?;
                self.out.push((self.path.clone(), a, b));
                Some(())
            }
            b'-' | b'0'..=b'9' | b't' | b'f' | b'n' => {
                let start = self.i;
                while self
                    .s
                    .get(self.i)
                    .is_some_and(|b| b.is_ascii_alphanumeric() || b"+-.".contains(b))
                {
                    self.i += 1;
                }
                (self.i > start).then_some(())
            }
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_string_paths() {
        let s = br#"{"choices":[{"delta":{"content":"sk_"}}],"n":1,"e":[]}"#;
        let got = json_strings(s).unwrap();
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].0, b"choices\x000\x00delta\x00content\x00");
        assert_eq!(&s[got[0].1..got[0].2], b"sk_");
        assert!(json_strings(b"[DONE]").is_none());
        assert!(json_strings(b"{\"a\":1} x").is_none());
        let deep = "[".repeat(100);
        assert!(json_strings(deep.as_bytes()).is_none());
    }
}
