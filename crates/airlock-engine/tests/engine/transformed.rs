//! Issue 14, items 4 and 6: encoded bodies are refused, and transformed echoes of a
//! secret (upper case, HTML references, JSON `\u` escapes, split across headers,
//! split across server-sent events) are redacted, buffered and streamed alike.

use super::*;
use airlock_engine::scrub::BodyKind;

const KEY: &[u8] = b"sk_live_4eC39HqLyjWDarjtT1zdp7dc";
const MARK: &[u8] = b"[REDACTED:stripe]";

fn key_scrubber() -> Scrubber {
    Scrubber::new([("stripe", KEY), ("other", &b"ghp_Z9y8X7w6V5u4T3s2R1q0"[..])]).unwrap()
}

/// `s` with every byte as `&#DDD;`, `&#xHH;` or `&#XHH` (no semicolon), by `style`.
fn html(s: &[u8], style: impl Fn(usize) -> u8) -> Vec<u8> {
    let mut out = Vec::new();
    for (i, &b) in s.iter().enumerate() {
        let e = match style(i) % 4 {
            0 => format!("&#{b};"),
            1 => format!("&#x{b:x};"),
            2 => format!("&#X{b:02X}"),
            _ => char::from(b).to_string(),
        };
        // A reference without `;` must not run into a following digit (what
        // follows the last one is unknown).
        let e = if e.starts_with("&#X") && s.get(i + 1).is_none_or(u8::is_ascii_hexdigit) {
            format!("{e};")
        } else {
            e
        };
        out.extend_from_slice(e.as_bytes());
    }
    out
}

/// Every byte as `\u00XX` (Go's encoder does this to `&`, `<`, `>`; some encoders
/// to every character).
fn json_u(s: &[u8], every: bool, upper: bool) -> Vec<u8> {
    let mut out = Vec::new();
    for &b in s {
        if every || b"&<>".contains(&b) {
            let e = if upper {
                format!("\\u{:04X}", b)
            } else {
                format!("\\u{:04x}", b)
            };
            out.extend_from_slice(e.as_bytes());
        } else {
            out.push(b);
        }
    }
    out
}

fn stream_all(s: &Scrubber, kind: BodyKind, data: &[u8], cuts: &[usize]) -> Vec<u8> {
    let mut st = s.stream_body(kind);
    let mut out = Vec::new();
    let mut from = 0;
    let mut cuts: Vec<usize> = cuts.iter().map(|c| c % (data.len() + 1)).collect();
    cuts.sort_unstable();
    for to in cuts.into_iter().chain([data.len()]) {
        out.extend(st.push(&data[from..to.max(from)]));
        from = to.max(from);
    }
    out.extend(st.finish());
    assert_eq!(st.pending_len(), 0);
    out
}

fn has(hay: &[u8], needle: &[u8]) -> bool {
    contains(hay, needle)
}

fn lower(s: &[u8]) -> Vec<u8> {
    s.to_ascii_lowercase()
}

/// The secret's tail and head halves are gone, whatever the case.
fn assert_no_key(out: &[u8], what: &str) {
    let out_l = lower(out);
    for piece in [&KEY[..12], &KEY[12..24], &KEY[20..]] {
        assert!(
            !has(&out_l, &lower(piece)),
            "{what}: a piece of the secret is left in {}",
            String::from_utf8_lossy(out)
        );
    }
}

fn assert_redacted(s: &Scrubber, kind: BodyKind, data: &[u8], what: &str) -> Vec<u8> {
    let one = s.scrub_body(data, kind);
    assert!(
        has(&one, MARK),
        "{what}: no marker in {}",
        String::from_utf8_lossy(&one)
    );
    assert_no_key(&one, what);
    for cuts in [
        vec![1, 2, 3],
        vec![7, 19, 23, 40, 41, 77],
        (0..data.len()).collect(),
    ] {
        assert_eq!(
            stream_all(s, kind, data, &cuts),
            one,
            "{what}: streamed differs from one-shot"
        );
    }
    one
}

// ---------------------------------------------------------------------------------
// 6a: case.

#[test]
fn upper_and_mixed_case_echoes_are_redacted() {
    let s = key_scrubber();
    let upper = KEY.to_ascii_uppercase();
    let out = assert_redacted(
        &s,
        BodyKind::Plain,
        &[b"id=", &upper[..], b";"].concat(),
        "upper",
    );
    assert_eq!(out, b"id=[REDACTED:stripe];");
    // Every third byte upper-cased, from the first.
    let mut mixed = KEY.to_vec();
    for b in mixed.iter_mut().step_by(3) {
        b.make_ascii_uppercase();
    }
    assert_redacted(&s, BodyKind::Plain, &mixed, "mixed case");
    // Upper-cased hex and URL encoding (were already two cases) still work.
    let hex_mixed: String = KEY.iter().map(|b| format!("{b:02X}")).collect();
    assert_redacted(
        &s,
        BodyKind::Plain,
        hex_mixed.to_lowercase().to_uppercase().as_bytes(),
        "HEX",
    );
}

// ---------------------------------------------------------------------------------
// 6b: HTML numeric references.

#[test]
fn html_numeric_references_are_redacted() {
    let s = key_scrubber();
    for (name, enc) in [
        ("decimal", html(KEY, |_| 0)),
        ("hex", html(KEY, |_| 1)),
        ("hex upper, no semicolon", html(KEY, |_| 2)),
        ("mixed", html(KEY, |i| (i % 4) as u8)),
        ("mixed, some plain", html(KEY, |i| (i * 7 % 5) as u8)),
        (
            "upper-cased, decimal",
            html(&KEY.to_ascii_uppercase(), |_| 0),
        ),
    ] {
        let body = [b"<p>your key: ", &enc[..], b"</p>"].concat();
        let out = assert_redacted(&s, BodyKind::Plain, &body, name);
        assert!(out.starts_with(b"<p>your key: [REDACTED:stripe]"), "{name}");
        assert!(out.ends_with(b"</p>"), "{name}");
    }
    // Leading zeros and named references (a secret with `&`).
    let amp = Scrubber::new([("pw", &b"p&ss<w0rd>!"[..])]).unwrap();
    assert_eq!(
        amp.scrub(b"x=p&amp;ss&lt;w&#00048;rd&gt;! y"),
        b"x=[REDACTED:pw] y"
    );
}

// ---------------------------------------------------------------------------------
// 6c: JSON `\u` escapes.

#[test]
fn json_unicode_escapes_are_redacted() {
    let s = key_scrubber();
    for (name, enc) in [
        ("every char", json_u(KEY, true, false)),
        ("every char, upper hex", json_u(KEY, true, true)),
        (
            "every char, upper-cased secret",
            json_u(&KEY.to_ascii_uppercase(), true, false),
        ),
    ] {
        let body = [br#"{"key":""#, &enc[..], br#""}"#].concat();
        let out = assert_redacted(&s, BodyKind::Plain, &body, name);
        assert_eq!(out, br#"{"key":"[REDACTED:stripe]"}"#, "{name}");
    }
    // Go's encoder: `&`, `<`, `>` as \u0026, \u003c, \u003e.
    let go = Scrubber::new([("q", &b"a=1&key=s3cr3t<x>"[..])]).unwrap();
    let body = br#"{"url":"https://x/?a=1\u0026key=s3cr3t\u003cx\u003e"}"#;
    assert_eq!(go.scrub(body), br#"{"url":"https://x/?[REDACTED:q]"}"#);
    // An escaped backslash is not the start of an escape.
    let sk = Scrubber::new([("t", &b"tok_abcd"[..])]).unwrap();
    assert_eq!(sk.scrub(br"\\u0074ok_abcd"), br"\\u0074ok_abcd");
    assert_eq!(sk.scrub(br"\\\u0074ok_abcd"), br"\\[REDACTED:t]");
}

// ---------------------------------------------------------------------------------
// 6d: headers as one block.

#[test]
fn a_secret_split_across_parts_is_redacted() {
    let s = key_scrubber();
    let (a, b) = KEY.split_at(13);
    let parts: Vec<&[u8]> = vec![b"v1", a, b, b"tail"];
    let out = s.scrub_parts(&parts);
    assert_eq!(
        out,
        vec![b"v1".to_vec(), MARK.to_vec(), vec![], b"tail".to_vec()]
    );
    let joined = [&b"Bearer "[..], a].concat();
    let out = s.scrub_parts(&[&joined, &[b, &b" end"[..]].concat()]);
    assert_eq!(
        out,
        vec![b"Bearer [REDACTED:stripe]".to_vec(), b" end".to_vec()]
    );
    // Parts without secrets are untouched.
    assert_eq!(
        s.scrub_parts(&[b"a", b"b"]),
        vec![b"a".to_vec(), b"b".to_vec()]
    );
}

#[tokio::test]
async fn a_secret_split_across_two_response_headers_is_redacted() {
    let up = Server::start(|r| {
        let auth = r.one("authorization").unwrap().to_string();
        let key = auth.trim_start_matches("Bearer ").to_string();
        let (a, b) = key.split_at(10);
        Reply::Simple {
            status: 200,
            headers: vec![
                ("X-Key-Part-1".into(), a.to_string()),
                ("X-Key-Part-2".into(), b.to_uppercase()),
            ],
            body: b"{}".to_vec(),
        }
    })
    .await;
    let resp = get_ok(&service(&up.url("/")), "/").await;
    let joined: Vec<u8> = resp
        .headers
        .iter()
        .filter(|(n, _)| n.as_str().starts_with("x-key-part"))
        .flat_map(|(_, v)| v.as_bytes().to_vec())
        .collect();
    assert_eq!(joined, b"[REDACTED:stripe]", "{:?}", resp.headers);
}

// ---------------------------------------------------------------------------------
// 6e: server-sent events.

/// OpenAI-style chat completion chunks, one per piece, then `[DONE]`.
fn openai_events(pieces: &[&[u8]]) -> Vec<u8> {
    let mut out = Vec::new();
    for p in pieces {
        let content = serde_json::to_string(std::str::from_utf8(p).unwrap()).unwrap();
        out.extend_from_slice(
            format!(
                "data: {{\"id\":\"chatcmpl-1\",\"object\":\"chat.completion.chunk\",\"choices\":[{{\"index\":0,\"delta\":{{\"content\":{content}}},\"finish_reason\":null}}]}}\n\n"
            )
            .as_bytes(),
        );
    }
    out.extend_from_slice(b"data: [DONE]\n\n");
    out
}

/// What the OpenAI SDK shows: the deltas' content, concatenated.
fn reassembled(body: &[u8]) -> Vec<u8> {
    let text = std::str::from_utf8(body).unwrap();
    let mut out = String::new();
    for ev in text.split("\n\n") {
        let Some(data) = ev.strip_prefix("data: ") else {
            continue;
        };
        if data == "[DONE]" {
            continue;
        }
        let v: serde_json::Value = serde_json::from_str(data).unwrap();
        out.push_str(v["choices"][0]["delta"]["content"].as_str().unwrap());
    }
    out.into_bytes()
}

#[test]
fn a_secret_split_across_openai_delta_events_is_redacted() {
    let s = key_scrubber();
    for n in 2..=8 {
        // Split into n pieces of varying length.
        let mut pieces: Vec<&[u8]> = Vec::new();
        let mut rest = KEY;
        for i in 0..n {
            let take = if i + 1 == n {
                rest.len()
            } else {
                (rest.len() / (n - i)).max(1) + i % 2
            };
            let (a, b) = rest.split_at(take.min(rest.len()));
            pieces.push(a);
            rest = b;
        }
        let mut all: Vec<&[u8]> = vec![b"Sure, the key is "];
        all.extend(&pieces);
        all.push(b". Keep it safe.");
        let body = openai_events(&all);
        let out = assert_redacted(&s, BodyKind::EventStream, &body, &format!("{n} events"));
        assert_eq!(
            reassembled(&out),
            b"Sure, the key is [REDACTED:stripe]. Keep it safe.",
            "{n} events"
        );
        // The plain view alone does not see it: this is the events' doing.
        assert!(!has(&s.scrub(&body), MARK));
    }
}

#[test]
fn sse_split_forms_plain_text_data_anthropic_and_escapes() {
    let s = key_scrubber();
    // Plain-text data, one piece per event, CRLF line ends.
    let body = b"data: sk_live_4eC\r\n\r\n: ping\r\n\r\ndata: 39HqLyjWDarjtT1zdp7dc\r\n\r\n";
    let out = assert_redacted(&s, BodyKind::EventStream, body, "text events");
    assert_eq!(
        out,
        b"data: [REDACTED:stripe]\r\n\r\n: ping\r\n\r\ndata: \r\n\r\n"
    );
    // Anthropic's shape, with an unrelated event in between and `\u` escapes and
    // upper case in the pieces.
    let body = br#"event: content_block_delta
data: {"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"key \u0073k_LIVE_"}}

event: ping
data: {"type": "ping"}

event: content_block_delta
data: {"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"4eC39HqLyjWDarjtT1zdp7dc!"}}

"#;
    let out = assert_redacted(&s, BodyKind::EventStream, body, "anthropic events");
    let text = String::from_utf8(out).unwrap();
    assert!(
        text.contains(r#""text":"key [REDACTED:stripe]"}"#),
        "{text}"
    );
    assert!(text.contains(r#""text":"!"}"#), "{text}");
    // Unrelated paths do not join: `id` values next to the pieces do not matter.
    let body = openai_events(&[b"no", b"thing"]);
    assert_eq!(s.scrub_body(&body, BodyKind::EventStream), body);
}

#[test]
fn sse_events_are_released_as_soon_as_they_cannot_complete_a_secret() {
    let s = key_scrubber();
    let mut st = s.stream_body(BodyKind::EventStream);
    let ev = openai_events(&[b"hello world!"]);
    let first = ev.split(|&b| b == b'\n').next().unwrap().len() + 2;
    assert_eq!(st.push(&ev[..first]), &ev[..first]);
    // A piece that ends with a prefix of the key is held until the next event.
    let held = openai_events(&[b"the key: sk_li"]);
    let held = &held[..held.len() - b"data: [DONE]\n\n".len()];
    assert!(st.push(held).is_empty());
    let rest = openai_events(&[b"ve_4eC39HqLyjWDarjtT1zdp7dc"]);
    let mut out = st.push(&rest);
    out.extend(st.finish());
    assert_eq!(reassembled(&out), b"the key: [REDACTED:stripe]");
    // An unfinished event is held whole.
    let mut st = s.stream_body(BodyKind::EventStream);
    assert!(st.push(b"data: {\"a\":\"x").is_empty());
    assert_eq!(st.push(b"\"}\n\n"), b"data: {\"a\":\"x\"}\n\n");
}

#[tokio::test]
async fn event_streams_from_the_upstream_are_redacted_across_events() {
    let up = Server::start(|r| {
        let auth = r.one("authorization").unwrap().to_string();
        let key = auth.trim_start_matches("Bearer ").as_bytes().to_vec();
        let pieces: Vec<&[u8]> = key.chunks(3).collect();
        let mut all: Vec<&[u8]> = vec![b"echo: "];
        all.extend(pieces);
        let body = openai_events(&all);
        let mut chunks: Vec<Vec<u8>> = Vec::new();
        // Events cut at awkward places, as a network would.
        for c in body.chunks(37) {
            chunks.push(c.to_vec());
        }
        Reply::Chunked {
            headers: vec![(
                "Content-Type".into(),
                "text/event-stream; charset=utf-8".into(),
            )],
            chunks,
            gap: Duration::from_millis(1),
        }
    })
    .await;
    let svc = service(&up.url("/"));
    let resp = stream_ok(&svc, "/v1/chat").await;
    let body = resp.body.collect().await.unwrap();
    assert_eq!(reassembled(&body), b"echo: [REDACTED:stripe]");
    let buffered = get_ok(&svc, "/v1/chat").await;
    assert_eq!(&buffered.body[..], &body[..]);
}

// ---------------------------------------------------------------------------------
// Item 4: encodings.

/// Answers with raw head lines and a chunked body carrying `body`.
fn raw_reply(head: &'static str, body: &'static [u8]) -> Reply {
    Reply::Raw(
        [
            format!("HTTP/1.1 200 OK\r\nConnection: close\r\n{head}\r\n").as_bytes(),
            body,
        ]
        .concat(),
    )
}

#[tokio::test]
async fn encoded_bodies_are_refused_identity_passes() {
    let chunked = b"5\r\nhello\r\n0\r\n\r\n";
    for (head, body, refused) in [
        ("Transfer-Encoding: gzip, chunked\r\n", &chunked[..], true),
        ("Transfer-Encoding: deflate,chunked\r\n", chunked, true),
        (
            "Content-Encoding: \r\nContent-Length: 5\r\n",
            b"hello",
            true,
        ),
        (
            "Content-Encoding: br\r\nContent-Length: 5\r\n",
            b"hello",
            true,
        ),
        (
            "Content-Encoding: identity, gzip\r\nContent-Length: 5\r\n",
            b"hello",
            true,
        ),
        (
            "Content-Encoding: ,\r\nContent-Length: 5\r\n",
            b"hello",
            true,
        ),
        (
            "Content-Encoding: identity\r\nContent-Length: 5\r\n",
            b"hello",
            false,
        ),
        (
            "Content-Encoding: IDENTITY\r\nTransfer-Encoding: chunked\r\n",
            chunked,
            false,
        ),
        ("Transfer-Encoding: chunked\r\n", chunked, false),
        ("Content-Length: 5\r\n", b"hello", false),
    ] {
        let up = Server::start(move |_| raw_reply(head, body)).await;
        let svc = service(&up.url("/"));
        for streaming in [false, true] {
            let got = if streaming {
                match engine()
                    .send_streaming(&svc, &bearer(), get("/"), &empty())
                    .await
                {
                    Ok(r) => r.body.collect().await,
                    Err(e) => Err(e),
                }
            } else {
                engine()
                    .send(&svc, &bearer(), get("/"), &empty())
                    .await
                    .map(|r| r.body.to_vec())
            };
            match got {
                Err(e) if refused => {
                    assert!(
                        matches!(
                            e,
                            EngineError::Upstream(UpstreamError::CompressedResponse { .. })
                        ),
                        "{head:?}: {e}"
                    );
                    assert_eq!(e.http_status(), 502);
                }
                Ok(b) if !refused => assert_eq!(b, b"hello", "{head:?}"),
                other => panic!("{head:?} (streaming {streaming}): {other:?}"),
            }
        }
    }
}

// ---------------------------------------------------------------------------------
// Properties.

/// A secret of 8..32 characters from a key-like alphabet.
fn key_like() -> impl Strategy<Value = Vec<u8>> {
    proptest::collection::vec(
        proptest::sample::select(
            b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-+/=.&<>".to_vec(),
        ),
        8..32,
    )
}

/// `secret` in form `form` (0..7).
fn encode(secret: &[u8], form: u8, salt: usize) -> Vec<u8> {
    match form {
        0 => secret.to_ascii_uppercase(),
        1 => html(secret, |_| 0),
        2 => html(secret, |_| 1),
        3 => html(secret, |i| ((i + salt) % 4) as u8),
        4 => json_u(secret, true, salt.is_multiple_of(2)),
        5 => json_u(secret, false, false),
        _ => secret
            .iter()
            .enumerate()
            .map(|(i, b)| {
                if (i + salt).is_multiple_of(2) {
                    b.to_ascii_uppercase()
                } else {
                    b.to_ascii_lowercase()
                }
            })
            .collect(),
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, .. ProptestConfig::default() })]

    #[test]
    fn transformed_secret_in_any_form_split_anywhere_is_redacted(
        secret in key_like(),
        form in 0u8..7,
        salt in 0usize..8,
        filler in "[ a-z0-9{}\":,]{0,200}",
        pos_frac in 0.0f64..=1.0,
        cuts in proptest::collection::vec(0usize..1000, 0..12),
    ) {
        let s = Scrubber::new([("s", secret.as_slice())]).unwrap();
        let enc = encode(&secret, form, salt);
        let pos = (filler.len() as f64 * pos_frac) as usize;
        let body = [&filler.as_bytes()[..pos], &enc, &filler.as_bytes()[pos..]].concat();
        let one = s.scrub(&body);
        prop_assert!(has(&one, b"[REDACTED:s]"), "{}", String::from_utf8_lossy(&one));
        prop_assert!(!has(&lower(&one), &lower(&secret)));
        prop_assert!(!has(&one, &enc));
        prop_assert_eq!(stream_all(&s, BodyKind::Plain, &body, &cuts), one);
    }

    #[test]
    fn secret_split_over_events_is_redacted_for_any_split_and_chunking(
        secret in proptest::collection::vec(proptest::sample::select(b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-".to_vec()), 8..40),
        splits in proptest::collection::vec(1usize..40, 1..8),
        upper in any::<bool>(),
        cuts in proptest::collection::vec(0usize..4000, 0..16),
    ) {
        let s = Scrubber::new([("s", secret.as_slice())]).unwrap();
        let shown = if upper { secret.to_ascii_uppercase() } else { secret.clone() };
        let mut points: Vec<usize> = splits.iter().map(|p| p % shown.len()).filter(|&p| p > 0).collect();
        points.sort_unstable();
        points.dedup();
        let mut pieces: Vec<&[u8]> = vec![b"key: "];
        let mut from = 0;
        for p in points.into_iter().chain([shown.len()]) {
            pieces.push(&shown[from..p]);
            from = p;
        }
        pieces.push(b" ok");
        let body = openai_events(&pieces);
        let one = s.scrub_body(&body, BodyKind::EventStream);
        prop_assert_eq!(reassembled(&one), b"key: [REDACTED:s] ok".to_vec());
        prop_assert_eq!(stream_all(&s, BodyKind::EventStream, &body, &cuts), one);
    }

    #[test]
    fn secret_split_across_any_header_values_is_redacted(
        secret in key_like(),
        splits in proptest::collection::vec(0usize..40, 1..5),
        form in 0u8..7,
        before in "[a-z ]{0,10}",
        after in "[a-z ]{0,10}",
    ) {
        let s = Scrubber::new([("s", secret.as_slice())]).unwrap();
        let enc = encode(&secret, form, 1);
        let text = [before.as_bytes(), &enc, after.as_bytes()].concat();
        let mut points: Vec<usize> = splits.iter().map(|p| p % (text.len() + 1)).collect();
        points.sort_unstable();
        let mut parts: Vec<&[u8]> = Vec::new();
        let mut from = 0;
        for p in points.into_iter().chain([text.len()]) {
            parts.push(&text[from..p]);
            from = p;
        }
        let out = s.scrub_parts(&parts);
        prop_assert_eq!(out.len(), parts.len());
        let joined = out.concat();
        prop_assert_eq!(&joined, &s.scrub(&text));
        prop_assert!(has(&joined, b"[REDACTED:s]"));
        prop_assert!(!has(&lower(&joined), &lower(&secret)));
    }

    #[test]
    fn event_streams_without_secrets_pass_unchanged(
        pieces in proptest::collection::vec("[a-z ]{0,12}", 0..10),
        cuts in proptest::collection::vec(0usize..2000, 0..16),
    ) {
        let s = key_scrubber();
        let p: Vec<&[u8]> = pieces.iter().map(|p| p.as_bytes()).collect();
        let body = openai_events(&p);
        prop_assert_eq!(stream_all(&s, BodyKind::EventStream, &body, &cuts), body.clone());
        prop_assert_eq!(s.scrub_body(&body, BodyKind::EventStream), body);
    }
}
