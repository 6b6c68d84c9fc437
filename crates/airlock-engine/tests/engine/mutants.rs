//! What the engine's tests missed under mutation (issue 20, item 1;
//! docs/testing.md, "Mutation testing"): the agent-header bounds, exactly.

use airlock_engine::ErrorSource;
use airlock_engine::headers::{MAX_AGENT_HEADER_BYTES, MAX_AGENT_HEADERS};

use super::{Server, bearer, engine, get, ok, send_err, service};

/// Sixteen `X-Pad-NN` headers whose names and values add up to `total` bytes.
fn padded(total: usize) -> airlock_engine::UpstreamRequest {
    let names: Vec<String> = (0..16).map(|i| format!("X-Pad-{i:02}")).collect();
    let values = total - names.iter().map(String::len).sum::<usize>();
    let mut req = get("/v1");
    for (i, name) in names.iter().enumerate() {
        let len = if i < 15 {
            values / 16
        } else {
            values - 15 * (values / 16)
        };
        req = req.header(name, "a".repeat(len));
    }
    req
}

/// The agent may send headers of exactly 64 KiB (names and values together)
/// and exactly 128 of them; one byte or one header more is the agent's error
/// (400), and nothing is sent.
#[tokio::test]
async fn agent_header_bounds_are_exact() {
    // The documented limits, as constants and as behaviour (literals below).
    assert_eq!(
        (MAX_AGENT_HEADERS, MAX_AGENT_HEADER_BYTES),
        (128, 64 * 1024)
    );
    let up = Server::start(|_| ok("")).await;
    let svc = service(&up.url("/"));
    let e = engine();
    let r = e
        .send(&svc, &bearer(), padded(64 * 1024), &super::empty())
        .await
        .unwrap();
    assert_eq!(r.status.as_u16(), 200);
    let mut many = get("/v1");
    for i in 0..128 {
        many = many.header(format!("X-N-{i}"), "v");
    }
    let r = e
        .send(&svc, &bearer(), many, &super::empty())
        .await
        .unwrap();
    assert_eq!(r.status.as_u16(), 200);
    let seen = up.received();
    assert_eq!(seen.len(), 2);
    assert_eq!(seen[0].all("X-Pad-15").len(), 1);
    assert_eq!(seen[1].all("X-N-127"), vec!["v"]);

    let err = send_err(&e, &svc, &bearer(), padded(64 * 1024 + 1)).await;
    assert_eq!(
        (err.error_source(), err.http_status().as_u16()),
        (ErrorSource::Agent, 400),
        "{err}"
    );
    let mut too_many = get("/v1");
    for i in 0..=128 {
        too_many = too_many.header(format!("X-N-{i}"), "v");
    }
    let err = send_err(&e, &svc, &bearer(), too_many).await;
    assert_eq!(
        (err.error_source(), err.http_status().as_u16()),
        (ErrorSource::Agent, 400),
        "{err}"
    );
    assert_eq!(
        up.received().len(),
        2,
        "a refused request reached the upstream"
    );
}

/// Each routing-override header's refusal names what it would override: a
/// path rewrite says "path", an unknown `X-Forwarded-*` "path or origin", the
/// host ones "host".
#[tokio::test]
async fn routing_override_refusals_name_what_they_override() {
    let up = Server::start(|_| ok("")).await;
    let svc = service(&up.url("/"));
    let e = engine();
    for (name, part) in [
        ("X-Original-URL", "path"),
        ("X-Rewrite-URL", "path"),
        ("X-Envoy-Original-Path", "path"),
        ("X-Forwarded-Prefix", "path or origin"),
        ("X-Forwarded-Host", "host"),
        ("X-Forwarded-Proto", "scheme"),
        ("Forwarded", "host and scheme"),
    ] {
        let err = send_err(&e, &svc, &bearer(), get("/v1").header(name, "x")).await;
        let want = format!(
            "header \"{}\" is refused: proxies and frameworks that honour it take the request's {part} from it",
            name.to_ascii_lowercase()
        );
        assert!(err.to_string().contains(&want), "{name}: {err}");
    }
    up.assert_untouched();
}

/// A header whose name is not an HTTP token is refused for its name, even when
/// its value is bad too (the name is checked first).
#[tokio::test]
async fn a_bad_header_name_is_refused_as_such() {
    let up = Server::start(|_| ok("")).await;
    let svc = service(&up.url("/"));
    let e = engine();
    for name in ["Bad Name", "X:Y", "X(Y)", "é"] {
        let err = send_err(&e, &svc, &bearer(), get("/v1").header(name, "x\u{1}y")).await;
        assert!(
            err.to_string().contains("not a valid HTTP header name"),
            "{name:?}: {err}"
        );
    }
    up.assert_untouched();
}

// ---------------------------------------------------------------------------------
// The response scrubber (`scrub.rs`).

mod scrubber {
    use airlock_engine::scrub::{BodyKind, MAX_HOLD, Scrubber};

    use super::super::{contains, one, streamed_at_once};

    /// A run of overlapping occurrences (a secret of one repeated byte inside a
    /// long run of that byte) is held while it may still grow, up to exactly
    /// `MAX_HOLD` bytes; one byte more and it is released as one marker. What
    /// came before the run goes out at once.
    #[test]
    fn a_growing_run_is_held_up_to_max_hold_exactly() {
        assert_eq!(MAX_HOLD, 64 * 1024);
        let s = one("s", b"aaaaaaaa");
        let mut st = s.stream();
        let first = [&b"xxxxxxxxxx"[..], &[b'a'; MAX_HOLD][..]].concat();
        assert_eq!(st.push(&first), b"xxxxxxxxxx");
        assert_eq!(st.pending_len(), MAX_HOLD);
        // Two bytes more: the held run is longer than MAX_HOLD and goes out,
        // redacted, as one marker.
        assert_eq!(st.push(b"aa"), b"[REDACTED:s]");
        assert_eq!(st.pending_len(), 0);
        let mut rest = st.push(b"aaaaaaaa b");
        rest.extend(st.finish());
        assert_eq!(rest, b"[REDACTED:s] b");
    }

    /// A secret that repeats back to back is two occurrences, two markers; one
    /// that overlaps itself (`ababab` for `abab`) is one run, one marker.
    #[test]
    fn adjacent_occurrences_get_a_marker_each_overlapping_ones_share_one() {
        let s = one("s", b"sk_live_abc123");
        assert_eq!(
            s.scrub(b"<sk_live_abc123sk_live_abc123>"),
            b"<[REDACTED:s][REDACTED:s]>"
        );
        let ab = one("ab", b"abab");
        assert_eq!(ab.scrub(b"xababab y"), b"x[REDACTED:ab] y");
        assert_eq!(ab.scrub(b"xabababab y"), b"x[REDACTED:ab] y");
        assert_eq!(ab.scrub(b"xababxabab y"), b"x[REDACTED:ab]x[REDACTED:ab] y");
    }

    /// `contains_secret` sees what `scrub` redacts: raw bytes and the decoding
    /// views (an HTML- or JSON-escaped secret), and nothing in clean data.
    #[test]
    fn contains_secret_is_exactly_when_scrub_changes_the_data() {
        let s = one("s", b"sk_live_abc123");
        let html: String = "sk_live_abc123"
            .bytes()
            .map(|b| format!("&#{b};"))
            .collect();
        let json: String = "sk_live_abc123"
            .bytes()
            .map(|b| format!("\\u{b:04x}"))
            .collect();
        for (what, data) in [
            ("plain", b"x sk_live_abc123 y".to_vec()),
            ("upper", b"SK_LIVE_ABC123".to_vec()),
            ("html", html.into_bytes()),
            ("json", json.into_bytes()),
        ] {
            assert!(s.contains_secret(&data), "{what}");
            assert_ne!(s.scrub(&data), data, "{what}");
        }
        for clean in [&b""[..], b"sk_live_abc12", b"&#115;k_live", b"\\u0073k"] {
            assert!(!s.contains_secret(clean), "{clean:?}");
            assert_eq!(s.scrub(clean), clean);
        }
        assert!(!Scrubber::empty().contains_secret(b"sk_live_abc123"));
    }

    /// How many patterns a scrubber searches: none for no secret, every form
    /// (plain, hex, base64 at three alignments, URL encodings) for one, the sum
    /// for two unrelated ones.
    #[test]
    fn pattern_count_counts_every_form() {
        assert_eq!(Scrubber::empty().pattern_count(), 0);
        let a = one("a", b"sk_live_abc123");
        let b = one("b", b"ghp_other_456");
        assert!(a.pattern_count() >= 5, "{}", a.pattern_count());
        let ab = a.with_secrets([("b", &b"ghp_other_456"[..])]).unwrap();
        assert_eq!(ab.pattern_count(), a.pattern_count() + b.pattern_count());
        assert_eq!(ab.secret_names().collect::<Vec<_>>(), vec!["a", "b"]);
    }

    /// A stream releases clean bytes at once and holds exactly the tail that
    /// may still begin a secret (`sk_li`), not from an earlier `s` that begins
    /// a form but is followed by something else.
    #[test]
    fn a_stream_holds_exactly_the_tail_that_may_begin_a_secret() {
        let s = one("s", b"sk_live_abc123");
        let mut st = s.stream();
        let clean = [&[b' '; 200][..], b"s x s"].concat();
        assert_eq!(st.push(&[&clean[..], b"sk_li"].concat()), clean);
        assert_eq!(st.pending_len(), 5);
        let mut out = st.push(b"ve_abc123!");
        out.extend(st.finish());
        assert_eq!(out, b"[REDACTED:s]!");
    }

    /// A whole secret at the end of a chunk is not a prefix of anything more:
    /// its marker goes out at once, nothing is held.
    #[test]
    fn a_whole_secret_at_the_end_of_a_chunk_goes_out_at_once() {
        let s = one("s", b"tok_abcdef!");
        streamed_at_once(&s, b"x tok_abcdef!", b"x [REDACTED:s]");
    }

    /// In an event stream, a secret completed across two events and found again
    /// inside the second event's data (overlapping the completing piece) still
    /// leaves a marker in each event.
    #[test]
    fn a_piece_completing_a_secret_does_not_hide_a_whole_one_it_overlaps() {
        let s = one("s", b"aaaaaaaa");
        let body = b"data: aaaa\n\ndata: aaaaaaaa\n\n";
        assert_eq!(
            s.scrub_body(body, BodyKind::EventStream),
            b"data: [REDACTED:s]\n\ndata: [REDACTED:s]\n\n"
        );
    }

    /// Each URL encoder's escape set is a form of its own: JavaScript's
    /// `encodeURIComponent` (keeps `*~!()'`), WHATWG form encoding (keeps `*`,
    /// escapes `~`), PHP's `urlencode` (escapes `*` and `~`), Python's `quote`
    /// (keeps `~`), each with `%20` or `+` for a space.
    #[test]
    fn every_url_encoders_escape_set_is_redacted() {
        let s = one("s", b"a*b~c!d(e)f'g h");
        for enc in [
            &b"a*b~c!d(e)f'g%20h"[..],
            b"a*b%7Ec%21d%28e%29f%27g+h",
            b"a*b%7Ec%21d%28e%29f%27g%20h",
            b"a%2Ab%7Ec%21d%28e%29f%27g+h",
            b"a%2Ab~c%21d%28e%29f%27g%20h",
            b"a%2ab%7ec%21d%28e%29f%27g+h",
        ] {
            let data = [&b"q="[..], enc, b"&x=1"].concat();
            assert_eq!(
                s.scrub(&data),
                b"q=[REDACTED:s]&x=1",
                "{}",
                String::from_utf8_lossy(enc)
            );
        }
    }

    /// Base64 of a secret, URL-encoded (`/` as `%2F`, `+` as `%2B`), is
    /// redacted also when its encoding has only one of the two characters.
    #[test]
    fn url_encoded_base64_with_only_a_slash_is_redacted() {
        // base64("ab??cd?x") = "YWI/P2NkP3g=": a `/`, no `+`.
        let s = one("s", b"ab??cd?x");
        for enc in [&b"YWI%2FP2NkP3g%3D"[..], b"YWI%2fP2NkP3g%3D"] {
            let data = [&b"q="[..], enc, b"&x=1"].concat();
            let out = s.scrub(&data);
            assert!(
                contains(&out, b"q=[REDACTED:s]"),
                "{}",
                String::from_utf8_lossy(&out)
            );
            assert!(
                !contains(&out, b"P2Nk"),
                "{}",
                String::from_utf8_lossy(&out)
            );
        }
        // base64("a>>?x~~") = "YT4+P3h+fg": `+`, no `/`.
        let s = one("s", b"a>>?x~~");
        let out = s.scrub(b"q=YT4%2BP3h%2Bfg&x=1");
        assert!(
            contains(&out, b"q=[REDACTED:s]"),
            "{}",
            String::from_utf8_lossy(&out)
        );
    }

    /// Derived forms shorter than four bytes are not searched (they would match
    /// noise); a four-byte one is. The plain value is searched at any length.
    #[test]
    fn derived_forms_shorter_than_four_bytes_are_not_searched() {
        let s = one("pin", b"42");
        // base64("42") = "NDI": its core "ND" is two bytes, not searched.
        assert_eq!(s.scrub(b"AND ND NDA"), b"AND ND NDA");
        // hex("42") = "3432": four bytes, searched.
        assert_eq!(s.scrub(b"x3432y"), b"x[REDACTED:pin]y");
        assert_eq!(s.scrub(b"a42b"), b"a[REDACTED:pin]b");
    }

    /// A JSON-escaped secret (`\"`, `\\`, `\/`, `\n`, `\r`, `\t`, `\u00XX`)
    /// in a plain-text event stream, split right after a backslash, is only
    /// whole in the text the events make together, where no JSON decoding
    /// runs: the escaped form itself is searched there. Secrets made only of
    /// one escaped character are escaped too.
    #[test]
    fn a_json_escaped_secret_split_across_text_events_is_redacted() {
        for (secret, escaped) in [
            (&b"pa\"ss-1"[..], &br#"pa\"ss-1"#[..]),
            (b"pa\\ss-2", br"pa\\ss-2"),
            (b"pa/ss-3", br"pa\/ss-3"),
            (b"a/b\"c-4", br#"a/b\"c-4"#),
            (b"pa\nss-5", br"pa\nss-5"),
            (b"pa\rss-6", br"pa\rss-6"),
            (b"pa\tss-7", br"pa\tss-7"),
            (b"pa\x1fss-8", br"pa\u001fss-8"),
            (b"pa\x01ss-9", br"pa\u0001ss-9"),
            (b"\"\"\"\"", br#"\"\"\"\""#),
            (b"\\\\\\\\", br"\\\\\\\\"),
            (b"////", br"\/\/\/\/"),
            (b"\x01\x02\x03\x04", br"\u0001\u0002\u0003\u0004"),
        ] {
            let s = one("s", secret);
            // Right after the backslash that opens the last escape.
            let mut cut = 0;
            let mut i = 0;
            while i < escaped.len() {
                if escaped[i] == b'\\' {
                    cut = i + 1;
                    i += 1;
                }
                i += 1;
            }
            let body = [
                &b"data: "[..],
                &escaped[..cut],
                b"\n\ndata: ",
                &escaped[cut..],
                b"\n\n",
            ]
            .concat();
            assert_eq!(
                s.scrub_body(&body, BodyKind::EventStream),
                b"data: [REDACTED:s]\n\ndata: \n\n",
                "{}",
                String::from_utf8_lossy(escaped)
            );
        }
    }

    /// A run longer than `MAX_HOLD` is released whole, and its end may fall
    /// inside an HTML reference (`&#115;`, `s`); the stream resumes at the
    /// reference's start, so a secret that begins with it is still found when
    /// its rest arrives.
    #[test]
    fn a_forced_release_never_resumes_inside_an_escape() {
        let s = Scrubber::new([
            ("a", &b"xxxxxxxx"[..]),
            ("a2", b"xxxxxx&#"),
            ("b", b"sk_live_abc123"),
        ])
        .unwrap();
        let mut st = s.stream();
        let first = [&vec![b'x'; 70_000][..], b"&#115;k_li"].concat();
        let mut out = st.push(&first);
        assert_eq!(out, b"[REDACTED:a][REDACTED:a2]");
        // Held: `115;k_li`; the released `&#` is kept only to decode from.
        assert_eq!(st.pending_len(), 8);
        out.extend(st.push(b"ve_abc123 end"));
        out.extend(st.finish());
        assert_eq!(
            out,
            b"[REDACTED:a][REDACTED:a2][REDACTED:b] end",
            "{}",
            String::from_utf8_lossy(&out)
        );
    }

    /// Once the event that completes a split secret has arrived, both events
    /// go out at once (the first with the marker, the second without the
    /// covered bytes): a finished match holds nothing back, and events after
    /// it flow.
    #[test]
    fn events_completing_a_split_secret_go_out_at_once() {
        let s = one("s", b"sk_live_abc123");
        let mut st = s.stream_body(BodyKind::EventStream);
        assert_eq!(st.push(b"data: sk_li\n\n"), b"");
        assert_eq!(
            st.push(b"data: ve_abc123!\n\n"),
            b"data: [REDACTED:s]\n\ndata: !\n\n"
        );
        assert_eq!(st.pending_len(), 0);
        assert_eq!(st.push(b"data: next\n\n"), b"data: next\n\n");
        assert_eq!(st.finish(), b"");
    }

    /// A run of occurrences longer than `MAX_HOLD` is released up to where
    /// the byte-level views allow, whole: an earlier complete match does not
    /// stop the release short (memory stays bounded), and a complete match
    /// after that point is not released early, since a longer secret that
    /// begins inside it may still arrive.
    #[test]
    fn a_forced_release_goes_exactly_to_the_run_crossing_the_hold_point() {
        let s = Scrubber::new([("a", &b"aaaaaaaa"[..]), ("t", b"tok_abcdef!")]).unwrap();
        let mut st = s.stream();
        let data = [&b"tok_abcdef! "[..], &[b'a'; MAX_HOLD + 64][..]].concat();
        assert_eq!(st.push(&data), b"[REDACTED:t] [REDACTED:a]");
        assert_eq!(st.pending_len(), 0);

        let s = Scrubber::new([
            ("a", &b"aaaaaaaa"[..]),
            ("b1", b"aabbcdefgh"),
            ("c", b"cdef"),
            ("b", b"defxyz12"),
        ])
        .unwrap();
        let mut st = s.stream();
        let data = [&vec![b'a'; 70_000][..], b"bbcdef"].concat();
        let mut out = st.push(&data);
        assert_eq!(out, b"[REDACTED:a]");
        out.extend(st.push(b"xyz12 end"));
        out.extend(st.finish());
        assert_eq!(
            out,
            b"[REDACTED:a]bb[REDACTED:c][REDACTED:b] end",
            "{}",
            String::from_utf8_lossy(&out)
        );
    }

    /// A stream's `Debug` shows its kind and how much it holds, never the
    /// held bytes.
    #[test]
    fn a_streams_debug_shows_how_much_it_holds_not_what() {
        let s = one("s", b"sk_live_abc123");
        let mut st = s.stream_body(BodyKind::EventStream);
        assert!(st.push(b"data: sk_li").is_empty());
        let d = format!("{st:?}");
        assert!(
            d.starts_with("StreamScrubber")
                && d.contains("EventStream")
                && d.contains("pending_len: 11"),
            "{d}"
        );
        assert!(!d.contains("sk_li"), "{d}");
    }

    /// An event stream held past `MAX_HOLD` (a piece of one path's text may
    /// still begin a secret) is released up to where the bytes may still
    /// become one: a complete match of a short secret that is also the start
    /// of a longer one is not released early, and the longer one is redacted
    /// whole when it completes.
    #[test]
    fn a_forced_release_of_events_keeps_a_match_that_may_still_grow() {
        let s = Scrubber::new([("q", &b"cdef"[..]), ("p", b"cdefgh")]).unwrap();
        let mut st = s.stream_body(BodyKind::EventStream);
        let mut out = st.push(b"data: {\"a\":\"cd\"}\n\n");
        assert!(out.is_empty());
        let filler = format!("data: {{\"b\":\"{}\"}}\n\n", "x".repeat(1000));
        // 64 events of ~1 KiB: all held (the first may still begin `cdef`),
        // under MAX_HOLD.
        for _ in 0..64 {
            out.extend(st.push(filler.as_bytes()));
        }
        assert!(out.is_empty());
        // An unfinished event takes the held bytes past MAX_HOLD; it ends with
        // `cdef`, complete and the start of `cdefgh`.
        let last = format!("data: {{\"b\":\"{} cdef", "y".repeat(2000));
        out.extend(st.push(last.as_bytes()));
        assert!(!out.is_empty());
        out.extend(st.push(b"gh\"}\n\n"));
        out.extend(st.finish());
        let text = String::from_utf8(out).unwrap();
        assert!(
            text.ends_with("y [REDACTED:q][REDACTED:p]\"}\n\n"),
            "{}",
            &text[text.len().saturating_sub(80)..]
        );
        assert_eq!(
            text.matches("[REDACTED:").count(),
            2,
            "{}",
            &text[text.len().saturating_sub(80)..]
        );
    }

    /// An event whose JSON is spread over several `data:` lines ending in
    /// CRLF is one event (the lines joined, as the EventSource spec says): a
    /// secret whose first piece is in it and whose rest comes in the next
    /// event is redacted in both, also when the stream is cut between a CR
    /// and its LF.
    #[test]
    fn a_multi_line_json_event_with_crlf_is_one_event() {
        let s = one("s", b"sk_live_abc123");
        let body: &[u8] =
            b"data: {\"choices\":[{\"delta\":\r\ndata: {\"content\":\"key sk_li\"}}]}\r\n\r\n\
data: {\"choices\":[{\"delta\":{\"content\":\"ve_abc123!\"}}]}\r\n\r\n";
        let want: &[u8] = b"data: {\"choices\":[{\"delta\":\r\ndata: {\"content\":\"key [REDACTED:s]\"}}]}\r\n\r\n\
data: {\"choices\":[{\"delta\":{\"content\":\"!\"}}]}\r\n\r\n";
        assert_eq!(
            s.scrub_body(body, BodyKind::EventStream),
            want,
            "{}",
            String::from_utf8_lossy(&s.scrub_body(body, BodyKind::EventStream))
        );
        for cut in 1..body.len() {
            let mut st = s.stream_body(BodyKind::EventStream);
            let mut out = st.push(&body[..cut]);
            out.extend(st.push(&body[cut..]));
            out.extend(st.finish());
            assert_eq!(out, want, "cut at {cut}");
        }
    }

    /// A stream that ends in the middle of an event (no blank line, not even
    /// a line end) still has that event read, as some clients do: a secret
    /// completed by its data is redacted, one-shot and streamed.
    #[test]
    fn an_unfinished_last_event_still_completes_a_secret() {
        let s = one("s", b"sk_live_abc123");
        let body = b"data: sk_li\n\ndata: ve_abc123!";
        let want = b"data: [REDACTED:s]\n\ndata: !";
        assert_eq!(s.scrub_body(body, BodyKind::EventStream), want);
        let mut st = s.stream_body(BodyKind::EventStream);
        let mut out = st.push(body);
        assert!(out.is_empty());
        out.extend(st.finish());
        assert_eq!(out, want);
    }

    /// An unfinished event is held whole up to exactly `MAX_HOLD` bytes; one
    /// byte more and the rest of the stream is read as a plain body (released
    /// as it comes). The event before it goes out at once.
    #[test]
    fn an_unfinished_event_is_held_up_to_max_hold_exactly() {
        let s = one("s", b"sk_live_abc123");
        let mut st = s.stream_body(BodyKind::EventStream);
        let first = [
            &b"data: a\n\n"[..],
            b"data: ",
            &vec![b'x'; MAX_HOLD - 6][..],
        ]
        .concat();
        assert_eq!(st.push(&first), b"data: a\n\n");
        assert_eq!(st.pending_len(), MAX_HOLD);
        let out = st.push(b"x");
        assert_eq!(out.len(), MAX_HOLD + 1);
        assert_eq!(st.pending_len(), 0);
        assert_eq!(st.push(b"\n\ndata: y"), b"\n\ndata: y");
    }

    /// An event's `data:` lines are joined with a line feed, as EventSource
    /// does, before the scrubber decides whether they are one JSON value:
    /// `["sk_li",1` and `2]` make `["sk_li",1\n2]`, which is not JSON, so the
    /// event is text and its string is not a piece of the `0` channel that the
    /// next event's JSON continues (joined without the line feed they would
    /// make `["sk_li",12]`).
    #[test]
    fn data_lines_are_joined_with_a_line_feed_before_reading_json() {
        let s = one("s", b"sk_live_abc123");
        let body = b"data: [\"sk_li\",1\ndata: 2]\n\ndata: [\"ve_abc123\"]\n\n";
        assert_eq!(s.scrub_body(body, BodyKind::EventStream), body);
        // The same pieces in events that are JSON are one channel's text.
        let json = b"data: [\"sk_li\",12]\n\ndata: [\"ve_abc123\"]\n\n";
        assert_eq!(
            s.scrub_body(json, BodyKind::EventStream),
            b"data: [\"[REDACTED:s]\",12]\n\ndata: [\"\"]\n\n"
        );
    }

    /// JSON nested 32 deep (the bound) is still read as JSON: a secret whose
    /// pieces are strings at that depth in two events is redacted in both.
    #[test]
    fn json_nested_to_the_depth_bound_is_read_as_json() {
        let s = one("s", b"sk_live_abc123");
        let (open, close) = ("[".repeat(32), "]".repeat(32));
        let body = format!("data: {open}\"sk_li\"{close}\n\ndata: {open}\"ve_abc123\"{close}\n\n");
        let want = format!("data: {open}\"[REDACTED:s]\"{close}\n\ndata: {open}\"\"{close}\n\n");
        assert_eq!(
            String::from_utf8(s.scrub_body(body.as_bytes(), BodyKind::EventStream)).unwrap(),
            want
        );
    }

    /// A multi-line secret (a PEM key, say) sent as one text event's `data:`
    /// lines is found in the joined data and redacted with the line breaks
    /// and the `data:` prefix between them, with LF or CRLF line ends; also
    /// when it ends or starts with the line break (the marker takes the line
    /// terminator, and for a secret starting with one the next line's `data: `
    /// too, so the two lines read as one: no secret byte is left, only the
    /// framing of those lines changes).
    #[test]
    fn a_multi_line_secret_across_data_lines_is_redacted() {
        let s = one("s", b"sk_live\nabc123");
        for (body, want) in [
            (
                &b"data: x sk_live\ndata: abc123 y\n\n"[..],
                &b"data: x [REDACTED:s] y\n\n"[..],
            ),
            (
                b"data: x sk_live\r\ndata: abc123 y\r\n\r\n",
                b"data: x [REDACTED:s] y\r\n\r\n",
            ),
        ] {
            assert_eq!(s.scrub_body(body, BodyKind::EventStream), want);
        }
        // A secret ending in a line break (a key file read whole) ends at the
        // next line's start: the marker replaces exactly the secret and its
        // terminator (LF or CRLF: only the event view sees the CRLF one), the
        // next line stays.
        let s = one("s", b"sk_live_abc123\n");
        for (body, want) in [
            (
                &b"data: x sk_live_abc123\ndata: y\n\n"[..],
                &b"data: x [REDACTED:s]data: y\n\n"[..],
            ),
            (
                b"data: x sk_live_abc123\r\ndata: y\r\n\r\n",
                b"data: x [REDACTED:s]data: y\r\n\r\n",
            ),
        ] {
            assert_eq!(s.scrub_body(body, BodyKind::EventStream), want);
        }
        // One starting with a line break starts at the previous line's end.
        let s = one("s", b"\nsk_live_abc123");
        for (body, want) in [
            (
                &b"data: x\ndata: sk_live_abc123 y\n\n"[..],
                &b"data: x[REDACTED:s] y\n\n"[..],
            ),
            (
                b"data: x\r\ndata: sk_live_abc123 y\r\n\r\n",
                b"data: x[REDACTED:s] y\r\n\r\n",
            ),
        ] {
            assert_eq!(s.scrub_body(body, BodyKind::EventStream), want);
        }
    }

    /// Each element of a JSON array is a channel of its own (`0`, `1`, …): a
    /// secret streamed in the second choice while the first interleaves its
    /// own text is redacted in both events, the first choice's text kept.
    #[test]
    fn json_array_elements_are_channels_of_their_own() {
        let s = one("s", b"sk_live_abc123");
        assert_eq!(
            s.scrub_body(
                b"data: [\"x\",\"sk_li\"]\n\ndata: [\"y\",\"ve_abc123\"]\n\n",
                BodyKind::EventStream
            ),
            b"data: [\"x\",\"[REDACTED:s]\"]\n\ndata: [\"y\",\"\"]\n\n"
        );
    }

    /// An escaped quote inside a JSON string does not end it: the events stay
    /// JSON and the secret their strings complete is redacted.
    #[test]
    fn an_escaped_quote_does_not_end_a_json_string() {
        let s = one("s", b"sk_live_abc123");
        assert_eq!(
            s.scrub_body(
                b"data: {\"c\":\"say \\\"sk_li\"}\n\ndata: {\"c\":\"ve_abc123\\\"\"}\n\n",
                BodyKind::EventStream
            ),
            b"data: {\"c\":\"say \\\"[REDACTED:s]\"}\n\ndata: {\"c\":\"\\\"\"}\n\n"
        );
    }

    /// A raw control byte (here a tab) inside a quoted string is not JSON
    /// (a client's `JSON.parse` refuses it): the event is text, so its string
    /// is no piece of the `0` channel the next event's JSON continues.
    #[test]
    fn a_raw_control_byte_in_a_string_makes_the_event_text() {
        let s = one("s", b"sk_live_abc123");
        let body = b"data: [\"sk_li\",\"\t\"]\n\ndata: [\"ve_abc123\"]\n\n";
        assert_eq!(s.scrub_body(body, BodyKind::EventStream), body);
        let json = b"data: [\"sk_li\",\"\\t\"]\n\ndata: [\"ve_abc123\"]\n\n";
        assert_eq!(
            s.scrub_body(json, BodyKind::EventStream),
            b"data: [\"[REDACTED:s]\",\"\\t\"]\n\ndata: [\"\"]\n\n"
        );
    }

    /// An upstream cannot crash the scrubber with deep nesting: an event of
    /// 200,000 `[` or `{"a":` (deeper than the JSON bound: read as text) is
    /// passed as it is, one-shot and streamed, and the next event is still
    /// scrubbed.
    #[test]
    fn deeply_nested_json_does_not_crash_the_scrubber() {
        let s = one("s", b"sk_live_abc123");
        for open in ["[", "{\"a\":"] {
            let deep = open.repeat(200_000);
            let body = format!("data: {deep}\n\ndata: sk_live_abc123\n\n");
            let want = format!("data: {deep}\n\ndata: [REDACTED:s]\n\n");
            assert!(s.scrub_body(body.as_bytes(), BodyKind::EventStream) == want.as_bytes());
            let mut st = s.stream_body(BodyKind::EventStream);
            let mut out = st.push(body.as_bytes());
            out.extend(st.finish());
            assert!(out == want.as_bytes(), "{open}");
        }
    }

    /// Behind an escape that the HTML view decodes (`&#115;` is `s`), a
    /// stream still holds exactly the tail that may begin a secret (`sk_li`),
    /// not the plain text between the escape and it.
    #[test]
    fn behind_an_escape_a_stream_holds_only_the_secrets_prefix() {
        let s = one("s", b"sk_live_abc123");
        let mut st = s.stream();
        assert_eq!(st.push(b"&#115; yyyy sk_li"), b"&#115; yyyy ");
        assert_eq!(st.pending_len(), 5);
        let mut out = st.push(b"ve_abc123!");
        out.extend(st.finish());
        assert_eq!(out, b"[REDACTED:s]!");
        // The same when only the decoded text shows the prefix (`sk_l&#105;`
        // is `sk_li`): the hold starts at its `s`, so no byte of it goes out.
        let mut st = s.stream();
        assert_eq!(st.push(b"&#115; yyyy sk_l&#105;"), b"&#115; yyyy ");
        let mut out = st.push(b"ve_abc123!");
        out.extend(st.finish());
        assert_eq!(out, b"[REDACTED:s]!");
    }

    /// A secret split across JSON events whose last byte is a `\u` escape
    /// is redacted up to the escape's end: the rest of the string stays.
    #[test]
    fn a_split_json_secret_ending_in_an_escape_is_redacted_to_its_end() {
        let s = one("s", b"sk_live_abc123");
        assert_eq!(
            s.scrub_body(
                b"data: {\"c\":\"sk_li\"}\n\ndata: {\"c\":\"ve_abc12\\u0033!\"}\n\n",
                BodyKind::EventStream
            ),
            b"data: {\"c\":\"[REDACTED:s]\"}\n\ndata: {\"c\":\"!\"}\n\n"
        );
    }

    #[test]
    fn body_kind_from_content_type() {
        for (v, kind) in [
            (None, BodyKind::Plain),
            (Some(&b"text/event-stream"[..]), BodyKind::EventStream),
            (
                Some(b" Text/Event-Stream ; charset=utf-8"),
                BodyKind::EventStream,
            ),
            (Some(b"text/plain"), BodyKind::Plain),
            (Some(b"text/event-streams"), BodyKind::Plain),
            (Some(b""), BodyKind::Plain),
        ] {
            assert_eq!(BodyKind::from_content_type(v), kind, "{v:?}");
        }
    }
}
