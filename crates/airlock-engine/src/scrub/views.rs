//! Decoding views: JSON string escapes and HTML character references.
//!
//! A view decodes escape sequences of one kind and remembers, for every decoded
//! byte, which raw bytes it came from ([`Seg`]). The scrubber searches the decoded
//! text and redacts the raw bytes behind a match, whole escape sequences included.
//!
//! Decoding is strictly left to right from the start of the data (so `\\u0073` is
//! an escaped backslash followed by `u0073`, as a JSON parser reads it). Only the
//! neighbourhood of escape sequences is decoded ([`Window`]s): a match that contains
//! no escape is also a match in the raw bytes, which the raw search finds anyway.

use memchr::memchr;
use zeroize::Zeroizing;

/// Which escape sequences a view decodes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Kind {
    /// `\"`, `\\`, `\/`, `\b`, `\f`, `\n`, `\r`, `\t`, `\uXXXX` (surrogate pairs joined).
    Json,
    /// `&#DDD;`, `&#xHH;` (semicolon optional, at most [`MAX_DIGITS`] digits) and a
    /// few named references (`&amp;`, `&lt;`, `&gt;`, `&quot;`, `&apos;`, …).
    Html,
}

/// Longest run of digits in a numeric character reference that is decoded
/// (leading zeros included).
pub(super) const MAX_DIGITS: usize = 10;

/// Named references decoded by the HTML view (semicolon required).
const NAMED: &[(&[u8], u8)] = &[
    (b"amp", b'&'),
    (b"AMP", b'&'),
    (b"lt", b'<'),
    (b"LT", b'<'),
    (b"gt", b'>'),
    (b"GT", b'>'),
    (b"quot", b'"'),
    (b"QUOT", b'"'),
    (b"apos", b'\''),
    (b"sol", b'/'),
    (b"plus", b'+'),
    (b"equals", b'='),
    (b"lowbar", b'_'),
    (b"hyphen", b'-'),
    (b"period", b'.'),
    (b"colon", b':'),
    (b"num", b'#'),
    (b"percnt", b'%'),
    (b"commat", b'@'),
];
const MAX_NAME: usize = 6;

/// One decoded escape sequence: raw `start..end` decodes to `value[..len]`.
#[derive(Debug, Clone, Copy)]
pub(super) struct Escape {
    pub(super) start: usize,
    pub(super) end: usize,
    value: [u8; 4],
    len: usize,
}

impl Escape {
    fn bytes(&self) -> &[u8] {
        &self.value[..self.len]
    }
}

enum Next {
    Escape(Escape),
    /// Data ends inside what may still become an escape sequence, starting here.
    Incomplete(usize),
    None,
}

/// A stretch of decoded text and where it came from.
#[derive(Debug, Clone, Copy)]
pub(super) struct Seg {
    /// Offset in the decoded text.
    pub(super) dec: usize,
    /// Length in the decoded text.
    pub(super) dec_len: usize,
    /// Raw offset.
    pub(super) raw: usize,
    /// Raw length.
    pub(super) raw_len: usize,
    /// An escape sequence (maps as a whole) rather than bytes copied as they are.
    pub(super) escape: bool,
}

/// Decoded text with its map back to raw offsets.
#[derive(Default)]
pub(super) struct Decoded {
    pub(super) text: Zeroizing<Vec<u8>>,
    pub(super) segs: Vec<Seg>,
}

impl Decoded {
    pub(super) fn push_plain(&mut self, data: &[u8], from: usize, to: usize) {
        if to <= from {
            return;
        }
        self.segs.push(Seg {
            dec: self.text.len(),
            dec_len: to - from,
            raw: from,
            raw_len: to - from,
            escape: false,
        });
        self.text.extend_from_slice(&data[from..to]);
    }

    pub(super) fn push_mapped(&mut self, bytes: &[u8], raw: usize, raw_len: usize) {
        if bytes.is_empty() {
            return;
        }
        self.segs.push(Seg {
            dec: self.text.len(),
            dec_len: bytes.len(),
            raw,
            raw_len,
            escape: true,
        });
        self.text.extend_from_slice(bytes);
    }

    fn seg_at(&self, d: usize) -> Option<&Seg> {
        let i = self.segs.partition_point(|s| s.dec + s.dec_len <= d);
        self.segs.get(i)
    }

    /// Raw range behind decoded `from..to` (non-empty), escapes widened to whole
    /// sequences.
    pub(super) fn raw_range(&self, from: usize, to: usize) -> Option<(usize, usize)> {
        let a = self.seg_at(from)?;
        let b = self.seg_at(to.checked_sub(1)?)?;
        let start = if a.escape {
            a.raw
        } else {
            a.raw + (from - a.dec)
        };
        let end = if b.escape {
            b.raw + b.raw_len
        } else {
            b.raw + (to - 1 - b.dec) + 1
        };
        Some((start, end))
    }

    /// Raw offset of decoded position `d` (`raw_end` when `d` is the end).
    pub(super) fn raw_pos(&self, d: usize, raw_end: usize) -> usize {
        match self.seg_at(d) {
            Some(s) if s.escape => s.raw,
            Some(s) => s.raw + (d - s.dec),
            None => raw_end,
        }
    }
}

/// A decoded neighbourhood of escape sequences.
pub(super) struct Window {
    pub(super) decoded: Decoded,
    /// Raw end of the window.
    pub(super) raw_end: usize,
}

/// What a view found in some data.
pub(super) struct Scan {
    pub(super) windows: Vec<Window>,
    /// Raw start of an unfinished escape sequence at the end (only when not last).
    pub(super) incomplete: Option<usize>,
    /// Every escape's raw span, when asked for (to never resume inside one).
    pub(super) spans: Vec<(usize, usize)>,
}

/// Decodes the neighbourhood (`ext` plain bytes each side) of every escape in `data`
/// that decodes to bytes `useful` allows (bytes some pattern has, in either case). An
/// escape that decodes to any other byte can be in no match, so no match spans it:
/// it ends the current window and opens none.
pub(super) fn scan(
    kind: Kind,
    data: &[u8],
    last: bool,
    ext: usize,
    spans: bool,
    useful: &[bool; 256],
) -> Scan {
    let mut out = Scan {
        windows: Vec::new(),
        incomplete: None,
        spans: Vec::new(),
    };
    let mut cur: Option<Window> = None;
    // Raw end of what the current window has decoded (its last escape's end).
    let mut cur_pos = 0;
    // Windows never overlap: a new one starts at or after this.
    let mut floor = 0;
    let mut from = 0;
    let close = |w: Window, pos: usize, out: &mut Scan, limit: usize| -> usize {
        let mut w = w;
        let end = pos.saturating_add(ext).min(limit);
        w.decoded.push_plain(data, pos, end);
        w.raw_end = end;
        out.windows.push(w);
        end
    };
    loop {
        let (at, esc) = match next_escape(kind, data, from, last) {
            Next::None => break,
            Next::Incomplete(p) => {
                out.incomplete = Some(p);
                (p, None)
            }
            Next::Escape(e) => (e.start, Some(e)),
        };
        if spans && let Some(e) = &esc {
            out.spans.push((e.start, e.end));
        }
        if let Some(e) = &esc
            && !e.bytes().iter().all(|&b| useful[usize::from(b)])
        {
            // A barrier: close the window before it, open none.
            if let Some(w) = cur.take() {
                close(w, cur_pos, &mut out, at);
            }
            floor = e.end;
            from = e.end;
            continue;
        }
        match cur.as_mut() {
            Some(w) if at - cur_pos <= 2 * ext => {
                w.decoded.push_plain(data, cur_pos, at);
            }
            _ => {
                if let Some(w) = cur.take() {
                    floor = close(w, cur_pos, &mut out, at);
                }
                let start = at.saturating_sub(ext).max(floor);
                let mut w = Window {
                    decoded: Decoded::default(),
                    raw_end: at,
                };
                w.decoded.push_plain(data, start, at);
                cur = Some(w);
            }
        }
        let Some(e) = esc else {
            // Unfinished escape: the window ends where it starts.
            if let Some(mut w) = cur.take() {
                w.raw_end = at;
                out.windows.push(w);
            }
            return out;
        };
        if let Some(w) = cur.as_mut() {
            w.decoded.push_mapped(e.bytes(), e.start, e.end - e.start);
        }
        cur_pos = e.end;
        from = e.end;
    }
    if let Some(w) = cur.take() {
        close(w, cur_pos, &mut out, data.len());
    }
    out
}

/// Decodes all of `data` (escapes of `kind`; an unfinished one stays as it is).
pub(super) fn decode_all(kind: Kind, data: &[u8]) -> Decoded {
    let mut d = Decoded::default();
    let mut pos = 0;
    while let Next::Escape(e) = next_escape(kind, data, pos, true) {
        d.push_plain(data, pos, e.start);
        d.push_mapped(e.bytes(), e.start, e.end - e.start);
        pos = e.end;
    }
    d.push_plain(data, pos, data.len());
    d
}

fn next_escape(kind: Kind, data: &[u8], mut from: usize, last: bool) -> Next {
    let lead = match kind {
        Kind::Json => b'\\',
        Kind::Html => b'&',
    };
    while from < data.len() {
        let Some(off) = memchr(lead, &data[from..]) else {
            return Next::None;
        };
        let p = from + off;
        let r = match kind {
            Kind::Json => json_escape_at(data, p, last),
            Kind::Html => html_ref_at(data, p, last),
        };
        match r {
            Next::None => from = p + 1,
            other => return other,
        }
    }
    Next::None
}

fn hex_val(b: u8) -> Option<u32> {
    char::from(b).to_digit(16)
}

fn utf8(cp: u32) -> ([u8; 4], usize) {
    let c = char::from_u32(cp).unwrap_or(char::REPLACEMENT_CHARACTER);
    let mut buf = [0u8; 4];
    let len = c.encode_utf8(&mut buf).len();
    (buf, len)
}

fn escape(start: usize, end: usize, cp: u32) -> Next {
    let (value, len) = utf8(cp);
    Next::Escape(Escape {
        start,
        end,
        value,
        len,
    })
}

/// `\uXXXX` at `p`: `Ok(Some(cp))`, `Ok(None)` when not one, `Err(())` when the
/// data ends before it can be told.
fn u_escape(data: &[u8], p: usize) -> Result<Option<u32>, ()> {
    for k in 0..6 {
        let Some(&b) = data.get(p + k) else {
            return Err(());
        };
        let good = match k {
            0 => b == b'\\',
            1 => b == b'u',
            _ => hex_val(b).is_some(),
        };
        if !good {
            return Ok(None);
        }
    }
    let cp = data[p + 2..p + 6]
        .iter()
        .fold(0u32, |acc, &b| acc * 16 + hex_val(b).unwrap_or(0));
    Ok(Some(cp))
}

fn json_escape_at(data: &[u8], p: usize, last: bool) -> Next {
    let Some(&c) = data.get(p + 1) else {
        return if last {
            Next::None
        } else {
            Next::Incomplete(p)
        };
    };
    let simple = match c {
        b'"' | b'\\' | b'/' => Some(c),
        b'b' => Some(8),
        b'f' => Some(12),
        b'n' => Some(b'\n'),
        b'r' => Some(b'\r'),
        b't' => Some(b'\t'),
        _ => None,
    };
    if let Some(v) = simple {
        return escape(p, p + 2, u32::from(v));
    }
    if c != b'u' {
        return Next::None;
    }
    let cp = match u_escape(data, p) {
        Err(()) if !last => return Next::Incomplete(p),
        Err(()) | Ok(None) => return Next::None,
        Ok(Some(cp)) => cp,
    };
    if (0xD800..0xDC00).contains(&cp) {
        // A high surrogate: joined with a following low one.
        match u_escape(data, p + 6) {
            Err(()) if !last => return Next::Incomplete(p),
            Ok(Some(lo)) if (0xDC00..0xE000).contains(&lo) => {
                let joined = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
                return escape(p, p + 12, joined);
            }
            _ => {}
        }
    }
    // A lone surrogate becomes U+FFFD (char::from_u32 refuses it).
    escape(p, p + 6, cp)
}

fn html_ref_at(data: &[u8], p: usize, last: bool) -> Next {
    let unfinished = || {
        if last {
            Next::None
        } else {
            Next::Incomplete(p)
        }
    };
    let Some(&c) = data.get(p + 1) else {
        return unfinished();
    };
    if c == b'#' {
        let (digits_at, radix) = match data.get(p + 2) {
            None => return unfinished(),
            Some(b'x' | b'X') => (p + 3, 16),
            Some(_) => (p + 2, 10),
        };
        let mut i = digits_at;
        let mut cp: u32 = 0;
        while let Some(&b) = data.get(i) {
            match char::from(b).to_digit(radix) {
                Some(v) if i - digits_at < MAX_DIGITS => {
                    cp = cp.saturating_mul(radix).saturating_add(v);
                    i += 1;
                }
                Some(_) => return Next::None,
                None => break,
            }
        }
        if i == digits_at {
            return if i >= data.len() {
                unfinished()
            } else {
                Next::None
            };
        }
        return match data.get(i) {
            // More digits or the semicolon may still come.
            None => {
                if last {
                    escape(p, i, html_code_point(cp))
                } else {
                    Next::Incomplete(p)
                }
            }
            Some(b';') => escape(p, i + 1, html_code_point(cp)),
            Some(_) => escape(p, i, html_code_point(cp)),
        };
    }
    // Named: letters then `;`.
    let mut i = p + 1;
    while let Some(&b) = data.get(i) {
        if !b.is_ascii_alphabetic() || i - (p + 1) >= MAX_NAME {
            break;
        }
        i += 1;
    }
    let name = &data[p + 1..i];
    match data.get(i) {
        // The loop stops at MAX_NAME letters: a `;` may still follow.
        None => unfinished(),
        Some(b';') => NAMED
            .iter()
            .find(|(n, _)| *n == name)
            .map_or(Next::None, |&(_, v)| escape(p, i + 1, u32::from(v))),
        _ => Next::None,
    }
}

/// What a browser makes of a numeric reference (NUL, surrogates and values past
/// U+10FFFF become U+FFFD).
fn html_code_point(cp: u32) -> u32 {
    if cp == 0 || cp > 0x10FFFF || (0xD800..0xE000).contains(&cp) {
        0xFFFD
    } else {
        cp
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dec(kind: Kind, s: &[u8]) -> Vec<u8> {
        decode_all(kind, s).text.to_vec()
    }

    #[test]
    fn json_decoding() {
        assert_eq!(dec(Kind::Json, br#"a\u0073\"\\u0073\/"#), br#"as"\u0073/"#);
        assert_eq!(dec(Kind::Json, br"\ud83d\ude00x"), "\u{1F600}x".as_bytes());
        assert_eq!(dec(Kind::Json, br"\ud83dx"), "\u{FFFD}x".as_bytes());
        assert_eq!(dec(Kind::Json, br"\u00"), br"\u00");
        assert_eq!(dec(Kind::Json, br"\q\"), br"\q\");
    }

    #[test]
    fn html_decoding() {
        assert_eq!(
            dec(
                Kind::Html,
                b"&#115;&#x6B;&#X5f;&#0000108x&amp;&lt;&bogus;&#;"
            ),
            b"sk_lx&<&bogus;&#;"
        );
        assert_eq!(dec(Kind::Html, b"&#00000000000115;"), b"&#00000000000115;");
        assert_eq!(
            dec(Kind::Html, b"&#0;&#x110000;"),
            "\u{FFFD}\u{FFFD}".as_bytes()
        );
    }

    #[test]
    fn unfinished_escapes_are_reported_when_more_may_come() {
        for (kind, s) in [
            (Kind::Json, &br"ab\"[..]),
            (Kind::Json, br"ab\u00"),
            (Kind::Json, br"ab\ud83d\ud"),
            (Kind::Html, b"ab&"),
            (Kind::Html, b"ab&#"),
            (Kind::Html, b"ab&#x7"),
            (Kind::Html, b"ab&am"),
            (Kind::Html, b"ab&percnt"),
        ] {
            let sc = scan(kind, s, false, 8, false, &[true; 256]);
            assert_eq!(sc.incomplete, Some(2), "{s:?}");
            assert!(
                scan(kind, s, true, 8, false, &[true; 256])
                    .incomplete
                    .is_none()
            );
        }
    }

    #[test]
    fn windows_map_back() {
        let data = b"0123456789 &#115;&#107; 0123456789";
        let sc = scan(Kind::Html, data, true, 3, true, &[true; 256]);
        assert_eq!(sc.windows.len(), 1);
        let w = &sc.windows[0];
        assert_eq!(w.decoded.text.as_slice(), b"89 sk 01");
        assert_eq!(w.decoded.raw_range(3, 5), Some((11, 23)));
        assert_eq!(w.decoded.raw_range(0, 1), Some((8, 9)));
        assert_eq!(sc.spans, vec![(11, 17), (17, 23)]);
        // An escape of a byte no pattern has is a barrier, not a window.
        let mut useful = [true; 256];
        useful[usize::from(b'&')] = false;
        let data = b"0123456789 &#115;&amp;&#107; 0123456789";
        let sc = scan(Kind::Html, data, true, 3, true, &useful);
        let texts: Vec<&[u8]> = sc
            .windows
            .iter()
            .map(|w| w.decoded.text.as_slice())
            .collect();
        assert_eq!(texts, vec![&b"89 s"[..], &b"k 01"[..]]);
        assert_eq!(sc.spans.len(), 3);
    }
}
