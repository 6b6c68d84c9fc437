//! The streaming scrubber (DESIGN.md §7 invariant 4, "a secret split anywhere is still
//! redacted"). From the input: 1–3 secrets, often built from one another (one a prefix,
//! a suffix or an overlap of another), a body with the secrets inserted in some form
//! (plain, hex, percent-encoded, upper-cased, mixed case, HTML numeric references
//! decimal / hex / mixed, JSON `\u00XX` escapes of every byte or Go-style of `& < >`),
//! and the points where the body is cut into chunks. Asserts:
//!
//! * the streamed output is byte-identical to the one-shot `Scrubber::scrub` of the
//!   whole body, for every chunking (so nothing outside an occurrence is lost, added
//!   or moved, and the held-back tail is released by `finish`);
//! * between two markers, the output holds no secret: not plain (in any ASCII case),
//!   not in hex, not percent-encoded, and no inserted encoded form verbatim — so no
//!   secret survives a split, whatever the cut points;
//! * a body in which the scrubber sees no secret comes out unchanged, and one with a
//!   secret inserted has at least one marker.
//!
//! When the first byte has its high bit set, the body is instead a server-sent event
//! stream in the OpenAI chat-completion shape, whose `delta.content` pieces, put
//! together, hold the first secret split at fuzz-chosen points; then the streamed
//! output equals `scrub_body(.., EventStream)` and the content a client reassembles
//! from the output holds the marker and no secret.
#![no_main]

use airlock_engine::scrub::{BodyKind, Scrubber, StreamScrubber};
use libfuzzer_sys::fuzz_target;

const NAMES: [&str; 3] = ["s0", "s1", "s2"];

/// Reads the input front to back; zeros once it is exhausted.
struct Input<'a>(&'a [u8]);

impl<'a> Input<'a> {
    fn byte(&mut self) -> u8 {
        match self.0.split_first() {
            Some((&b, rest)) => {
                self.0 = rest;
                b
            }
            None => 0,
        }
    }
    fn u16(&mut self) -> usize {
        usize::from(self.byte()) << 8 | usize::from(self.byte())
    }
    fn take(&mut self, n: usize) -> &'a [u8] {
        let (head, rest) = self.0.split_at(n.min(self.0.len()));
        self.0 = rest;
        head
    }
}

fuzz_target!(|data: &[u8]| {
    let mut input = Input(data);

    // Secrets. The scrubber searches any non-empty value in plain form (no minimum
    // length); derived forms only from 4 bytes on (`MIN_DERIVED_LEN`).
    let first = input.byte();
    let count = 1 + usize::from(first % 3);
    let events = first & 0x80 != 0;
    let mut secrets: Vec<Vec<u8>> = Vec::new();
    for _ in 0..count {
        let mode = input.byte() % 5;
        let len = 1 + usize::from(input.byte() % 24);
        let fresh = input.take(len).to_vec();
        let secret = match secrets.last() {
            None => fresh,
            Some(prev) => match mode {
                // A prefix of the previous secret.
                1 => prev[..1 + len % prev.len()].to_vec(),
                // Starts with the previous secret's tail (the two overlap).
                2 => [&prev[prev.len() / 2..], &fresh[..]].concat(),
                // Ends with the previous secret.
                3 => [&fresh[..], &prev[..]].concat(),
                // Starts with the previous secret.
                4 => [&prev[..], &fresh[..]].concat(),
                _ => fresh,
            },
        };
        if !secret.is_empty() {
            secrets.push(secret);
        }
    }
    if secrets.is_empty() {
        return;
    }

    if events {
        return event_stream(&secrets, &mut input);
    }

    // Insertions (secret, form, position) and cut points, then the body filler.
    let insertions: Vec<(usize, u8, usize)> = (0..input.byte() % 8)
        .map(|_| {
            let sel = input.byte();
            (usize::from(sel) % secrets.len(), sel >> 4, input.u16())
        })
        .collect();
    let mut cuts: Vec<usize> = (0..input.byte() % 16).map(|_| input.u16()).collect();
    let mut body = input.0[..input.0.len().min(8 * 1024)].to_vec();
    let mut inserted = false;
    let mut forms_inserted: Vec<(usize, Vec<u8>)> = Vec::new();
    for &(which, form, pos) in &insertions {
        let s = &secrets[which];
        let encoded = match form {
            0 if s.len() >= 2 => hex(s, b"0123456789abcdef"),
            1 if s.len() >= 2 => percent(s, b"0123456789ABCDEF"),
            2 => s.to_ascii_uppercase(),
            3 => html(s, |_| 0),
            4 => html(s, |_| 1),
            5 => html(s, |i| i % 3),
            6 => json_u(s, |_| true),
            7 => json_u(s, |b| b"&<>".contains(&b)),
            8 => s
                .iter()
                .enumerate()
                .map(|(i, b)| {
                    if i % 2 == 0 {
                        b.to_ascii_uppercase()
                    } else {
                        *b
                    }
                })
                .collect(),
            _ => s.clone(),
        };
        if !forms_inserted.contains(&(which, encoded.clone())) {
            forms_inserted.push((which, encoded.clone()));
        }
        let at = pos % (body.len() + 1);
        body.splice(at..at, encoded);
        // Only the last insertion is sure to stay whole (a later one may land inside
        // an earlier one). A JSON escape reads differently after a backslash in the
        // body (`\\u0073` is a backslash and `u0073`): those forms are checked on
        // their own below.
        inserted = !matches!(form, 6 | 7);
    }

    let scrubber = Scrubber::new(secrets.iter().zip(NAMES).map(|(v, n)| (n, v.as_slice())))
        .expect("scrubber builds");
    let one_shot = scrubber.scrub(&body);

    // Stream it, cut at the chosen points (sorted, deduplicated, in range).
    for c in &mut cuts {
        *c %= body.len() + 1;
    }
    cuts.sort_unstable();
    cuts.dedup();
    let mut stream = scrubber.stream();
    let mut streamed = Vec::new();
    let mut from = 0;
    for (i, &to) in cuts.iter().chain([&body.len()]).enumerate() {
        let chunk = &body[from..to];
        if i % 2 == 0 {
            streamed.extend(stream.push(chunk));
        } else {
            stream.push_into(chunk, &mut streamed);
        }
        from = to;
    }
    let case = Case {
        secrets: &secrets,
        cuts: &cuts,
        body: &body,
    };
    case.finish(
        stream,
        &mut streamed,
        &one_shot,
        "streamed output differs from one-shot scrub",
    );

    // No secret between markers.
    let markers: Vec<Vec<u8>> = NAMES
        .iter()
        .map(|n| format!("[REDACTED:{n}]").into_bytes())
        .collect();
    for segment in between_markers(&streamed, &markers) {
        // Matching ignores ASCII case.
        let segment = &segment.to_ascii_lowercase();
        for s in &secrets {
            let mut forms = vec![s.clone()];
            if s.len() >= 2 {
                forms.push(hex(s, b"0123456789abcdef"));
                forms.push(percent(s, b"0123456789ABCDEF"));
            }
            for f in &forms {
                let f = &f.to_ascii_lowercase();
                assert!(
                    !contains(segment, f),
                    "secret form {:?} of {s:?} left in {:?} (body {:?}, cuts {cuts:?})",
                    String::from_utf8_lossy(f),
                    String::from_utf8_lossy(&streamed),
                    String::from_utf8_lossy(&body),
                );
            }
        }
    }

    // Every inserted form on its own is redacted: nothing of it is left verbatim
    // (its context in the body may legitimately change how it decodes, e.g. a
    // backslash before a `\u` escape, so this is checked on the form alone).
    for (_, f) in &forms_inserted {
        let out = scrubber.scrub(f);
        assert!(
            markers.iter().any(|m| contains(&out, m)),
            "form {:?} alone: no marker in {:?}",
            String::from_utf8_lossy(f),
            String::from_utf8_lossy(&out),
        );
        if f.len() >= 2 {
            let f_l = f.to_ascii_lowercase();
            for segment in between_markers(&out, &markers) {
                assert!(
                    !contains(&segment.to_ascii_lowercase(), &f_l),
                    "form {:?} left in {:?}",
                    String::from_utf8_lossy(f),
                    String::from_utf8_lossy(&out),
                );
            }
        }
    }

    if !scrubber.contains_secret(&body) {
        assert_eq!(streamed, body, "a body without secrets was altered");
    }
    if inserted {
        assert!(
            markers.iter().any(|m| contains(&streamed, m)),
            "a secret was inserted but no marker came out\n secrets: {secrets:?}\n forms: {forms_inserted:?}\n body: {:?}",
            String::from_utf8_lossy(&body),
        );
    }
});

/// The parts of `out` between occurrences of any marker.
/// One streamed scrub: the secrets, where the body was cut, the body.
struct Case<'a> {
    secrets: &'a [Vec<u8>],
    cuts: &'a [usize],
    body: &'a [u8],
}

impl Case<'_> {
    /// Ends the stream (nothing may stay pending) and fails with `differs`, the case
    /// and both outputs unless the streamed output is the one-shot scrub's.
    fn finish(
        &self,
        mut stream: StreamScrubber,
        streamed: &mut Vec<u8>,
        one_shot: &[u8],
        differs: &str,
    ) {
        streamed.extend(stream.finish());
        assert_eq!(stream.pending_len(), 0);
        let (secrets, cuts) = (self.secrets, self.cuts);
        assert!(
            streamed.as_slice() == one_shot,
            "{differs}\n secrets: {secrets:?}\n cuts: {cuts:?}\n body: {:?}\n one-shot: {:?}\n streamed: {:?}",
            String::from_utf8_lossy(self.body),
            String::from_utf8_lossy(one_shot),
            String::from_utf8_lossy(streamed),
        );
    }
}

fn between_markers<'a>(out: &'a [u8], markers: &[Vec<u8>]) -> Vec<&'a [u8]> {
    let mut segments = Vec::new();
    let (mut start, mut i) = (0, 0);
    while i < out.len() {
        if let Some(m) = markers.iter().find(|m| out[i..].starts_with(m)) {
            segments.push(&out[start..i]);
            i += m.len();
            start = i;
        } else {
            i += 1;
        }
    }
    segments.push(&out[start..]);
    segments
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    !needle.is_empty() && hay.windows(needle.len()).any(|w| w == needle)
}

fn hex(s: &[u8], digits: &[u8; 16]) -> Vec<u8> {
    s.iter()
        .flat_map(|&b| [digits[usize::from(b >> 4)], digits[usize::from(b & 15)]])
        .collect()
}

/// Every byte as `%XX`.
fn percent(s: &[u8], digits: &[u8; 16]) -> Vec<u8> {
    s.iter()
        .flat_map(|&b| {
            [
                b'%',
                digits[usize::from(b >> 4)],
                digits[usize::from(b & 15)],
            ]
        })
        .collect()
}

/// Every byte as an HTML numeric reference: `&#DDD;` (style 0), `&#xHH;` (1), or
/// left as it is (2).
fn html(s: &[u8], style: impl Fn(usize) -> usize) -> Vec<u8> {
    let mut out = Vec::new();
    for (i, &b) in s.iter().enumerate() {
        // What a browser decodes to the same byte: ASCII but NUL; and `&` always
        // escaped, as an encoder does (a plain `&` could start a reference with
        // what follows).
        let style = match b {
            b'&' => 0,
            0 | 0x80.. => 2,
            _ => style(i),
        };
        match style {
            0 => out.extend_from_slice(format!("&#{b};").as_bytes()),
            1 => out.extend_from_slice(format!("&#x{b:x};").as_bytes()),
            _ => out.push(b),
        }
    }
    out
}

/// A JSON string's content for `s`, with the ASCII bytes `escape` selects (and `"`,
/// `\`, control characters, as any encoder does) as `\u00XX`.
fn json_u(s: &[u8], escape: impl Fn(u8) -> bool) -> Vec<u8> {
    let mut out = Vec::new();
    for &b in s {
        if b.is_ascii() && (escape(b) || b < 0x20 || b == b'"' || b == b'\\') {
            out.extend_from_slice(format!("\\u{b:04x}").as_bytes());
        } else {
            out.push(b);
        }
    }
    out
}

/// A JSON string literal's content for `s` (bytes >= 0x80 as they are).
fn json_str(s: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    for &b in s {
        match b {
            b'"' => out.extend_from_slice(b"\\\""),
            b'\\' => out.extend_from_slice(b"\\\\"),
            0..0x20 => out.extend_from_slice(format!("\\u{b:04x}").as_bytes()),
            _ => out.push(b),
        }
    }
    out
}

/// The OpenAI shape: one `chat.completion.chunk` event per piece, then `[DONE]`.
fn openai_events(pieces: &[Vec<u8>]) -> Vec<u8> {
    let mut out = Vec::new();
    for p in pieces {
        out.extend_from_slice(
            b"data: {\"id\":\"chatcmpl-1\",\"object\":\"chat.completion.chunk\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"",
        );
        out.extend_from_slice(&json_str(p));
        out.extend_from_slice(b"\"},\"finish_reason\":null}]}\n\n");
    }
    out.extend_from_slice(b"data: [DONE]\n\n");
    out
}

/// The content a client puts together from the events in `body`, or `None` when an
/// event is no longer in the shape `openai_events` writes (a redaction ran over it).
fn reassemble(body: &[u8]) -> Option<Vec<u8>> {
    const HEAD: &[u8] = b"data: {\"id\":\"chatcmpl-1\",\"object\":\"chat.completion.chunk\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"";
    const TAIL: &[u8] = b"\"},\"finish_reason\":null}]}";
    let mut out = Vec::new();
    for ev in body.split(|&b| b == b'\n').filter(|l| !l.is_empty()) {
        if ev == b"data: [DONE]" {
            continue;
        }
        let content = ev.strip_prefix(HEAD)?.strip_suffix(TAIL)?;
        let mut i = 0;
        while i < content.len() {
            match content[i] {
                b'\\' => {
                    match content.get(i + 1)? {
                        b'"' => out.push(b'"'),
                        b'\\' => out.push(b'\\'),
                        b'u' => {
                            let hex = std::str::from_utf8(content.get(i + 2..i + 6)?).ok()?;
                            out.push(u8::try_from(u32::from_str_radix(hex, 16).ok()?).ok()?);
                            i += 4;
                        }
                        _ => return None,
                    }
                    i += 2;
                }
                b'"' => return None,
                b => {
                    out.push(b);
                    i += 1;
                }
            }
        }
    }
    Some(out)
}

/// The event-stream case (see the module docs).
fn event_stream(secrets: &[Vec<u8>], input: &mut Input<'_>) {
    let secret = &secrets[0];
    if secret.len() < 2 {
        return;
    }
    let upper = input.byte() & 1 == 1;
    let shown = if upper {
        secret.to_ascii_uppercase()
    } else {
        secret.clone()
    };
    let splits: Vec<usize> = (0..1 + input.byte() % 8).map(|_| input.u16()).collect();
    let cuts: Vec<usize> = (0..input.byte() % 16).map(|_| input.u16()).collect();
    let filler = input.0[..input.0.len().min(512)].to_vec();
    let at = filler.len() / 2;
    let text = [&filler[..at], &shown[..], &filler[at..]].concat();
    let mut points: Vec<usize> = splits.iter().map(|p| p % (text.len() + 1)).collect();
    points.sort_unstable();
    points.dedup();
    let mut pieces = Vec::new();
    let mut from = 0;
    for p in points.into_iter().chain([text.len()]) {
        pieces.push(text[from..p].to_vec());
        from = p;
    }
    let body = openai_events(&pieces);
    let scrubber = Scrubber::new(secrets.iter().zip(NAMES).map(|(v, n)| (n, v.as_slice())))
        .expect("scrubber builds");
    let one_shot = scrubber.scrub_body(&body, BodyKind::EventStream);

    let mut cuts: Vec<usize> = cuts.iter().map(|c| c % (body.len() + 1)).collect();
    cuts.sort_unstable();
    cuts.dedup();
    let mut stream = scrubber.stream_body(BodyKind::EventStream);
    let mut streamed = Vec::new();
    let mut from = 0;
    for &to in cuts.iter().chain([&body.len()]) {
        streamed.extend(stream.push(&body[from..to]));
        from = to;
    }
    Case {
        secrets,
        cuts: &cuts,
        body: &body,
    }
    .finish(
        stream,
        &mut streamed,
        &one_shot,
        "streamed event stream differs from one-shot",
    );
    // The reassembled content holds a marker and, between markers, no secret.
    if let Some(text) = reassemble(&streamed) {
        let markers: Vec<Vec<u8>> = NAMES
            .iter()
            .map(|n| format!("[REDACTED:{n}]").into_bytes())
            .collect();
        assert!(
            markers.iter().any(|m| contains(&text, m)),
            "no marker in the reassembled content {:?} (body {:?})",
            String::from_utf8_lossy(&text),
            String::from_utf8_lossy(&body),
        );
        for segment in between_markers(&text, &markers) {
            let segment = segment.to_ascii_lowercase();
            for s in secrets {
                assert!(
                    !contains(&segment, &s.to_ascii_lowercase()),
                    "secret {s:?} left in the reassembled content {:?} (body {:?}, cuts {cuts:?})",
                    String::from_utf8_lossy(&text),
                    String::from_utf8_lossy(&body),
                );
            }
        }
    }
}
