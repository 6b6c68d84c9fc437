//! The streaming scrubber (DESIGN.md §7 invariant 4, "a secret split anywhere is still
//! redacted"). From the input: 1–3 secrets, often built from one another (one a prefix,
//! a suffix or an overlap of another), a body with the secrets inserted (plain, hex or
//! percent-encoded), and the points where the body is cut into chunks. Asserts:
//!
//! * the streamed output is byte-identical to the one-shot `Scrubber::scrub` of the
//!   whole body, for every chunking (so nothing outside an occurrence is lost, added
//!   or moved, and the held-back tail is released by `finish`);
//! * between two markers, the output holds no secret: not plain, not in hex, not
//!   percent-encoded — so no secret survives a split, whatever the cut points;
//! * a body without any form of any secret comes out unchanged, and one with a secret
//!   inserted has at least one marker.
#![no_main]

use airlock_engine::scrub::Scrubber;
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
    let count = 1 + usize::from(input.byte() % 3);
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
    for &(which, form, pos) in &insertions {
        let s = &secrets[which];
        let encoded = match form {
            0 if s.len() >= 2 => hex(s, b"0123456789abcdef"),
            1 if s.len() >= 2 => percent(s, b"0123456789ABCDEF"),
            _ => s.clone(),
        };
        let at = pos % (body.len() + 1);
        body.splice(at..at, encoded);
        inserted = true;
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
    streamed.extend(stream.finish());
    assert_eq!(stream.pending_len(), 0);
    assert!(
        streamed == one_shot,
        "streamed output differs from one-shot scrub\n secrets: {secrets:?}\n cuts: {cuts:?}\n body: {:?}\n one-shot: {:?}\n streamed: {:?}",
        String::from_utf8_lossy(&body),
        String::from_utf8_lossy(&one_shot),
        String::from_utf8_lossy(&streamed),
    );

    // No secret between markers.
    let markers: Vec<Vec<u8>> = NAMES
        .iter()
        .map(|n| format!("[REDACTED:{n}]").into_bytes())
        .collect();
    for segment in between_markers(&streamed, &markers) {
        for s in &secrets {
            let mut forms = vec![s.clone()];
            if s.len() >= 2 {
                forms.push(hex(s, b"0123456789abcdef"));
                forms.push(hex(s, b"0123456789ABCDEF"));
                forms.push(percent(s, b"0123456789ABCDEF"));
                forms.push(percent(s, b"0123456789abcdef"));
            }
            for f in &forms {
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

    if !scrubber.contains_secret(&body) {
        assert_eq!(streamed, body, "a body without secrets was altered");
    }
    if inserted {
        assert!(
            markers.iter().any(|m| contains(&streamed, m)),
            "a secret was inserted but no marker came out"
        );
    }
});

/// The parts of `out` between occurrences of any marker.
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
