//! The decoding views (`scrub/views.rs`) under mutation (issue 20, item 1;
//! docs/testing.md, "Mutation testing"): what the engine's tests missed, as
//! behaviour a client of a scrubbed response relies on — every escaped secret
//! redacted, whole escape sequences and nothing else.

use airlock_engine::scrub::Scrubber;

use super::{one, streamed_at_once};

/// One-shot and streamed (in one chunk, then byte by byte) output of `data`.
fn scrubbed(s: &Scrubber, data: &[u8]) -> Vec<u8> {
    let whole = s.scrub(data);
    let mut st = s.stream();
    let mut once = st.push(data);
    once.extend(st.finish());
    assert_eq!(
        once,
        whole,
        "one chunk: {:?}",
        String::from_utf8_lossy(data)
    );
    let mut st = s.stream();
    let mut bytes = Vec::new();
    for b in data {
        bytes.extend(st.push(std::slice::from_ref(b)));
    }
    bytes.extend(st.finish());
    assert_eq!(
        bytes,
        whole,
        "byte by byte: {:?}",
        String::from_utf8_lossy(data)
    );
    whole
}

/// A secret whose last byte is escaped (`&#51;` is `3`, `\u0033` too) is
/// redacted whatever plain text separates it from an earlier escape the view
/// decodes — also when the secret starts within the earlier escape's reach
/// and ends beyond it (the two escapes are decoded in one window).
#[test]
fn a_secret_is_found_at_any_distance_from_an_earlier_escape() {
    let s = one("s", b"sk_live_abc123");
    for (first, last) in [("&#97;", "&#51;"), ("\\u0061", "\\u0033")] {
        for gap in 0..=100 {
            let z = "z".repeat(gap);
            let data = format!("{first}{z}sk_live_abc12{last} tail");
            assert_eq!(
                String::from_utf8(scrubbed(&s, data.as_bytes())).unwrap(),
                format!("{first}{z}[REDACTED:s] tail"),
                "{gap} bytes between the escapes"
            );
        }
    }
}

/// A binary secret may begin with any byte, also one that is the second
/// byte of a character's UTF-8 (`é` is `C3 A9`). Streamed after an escape
/// of that character (`\u00e9`, `&#233;`), the stream holds the whole escape,
/// not its first bytes: nothing of it goes out before the marker, and the
/// JSON string stays valid (no stray `\` before the marker).
#[test]
fn a_secret_beginning_inside_an_escaped_character_holds_the_whole_escape() {
    // Ends in `C3` too: an escape is decoded only when every byte of it is
    // one some secret has.
    let secret = b"\xA9zq_secret_\xC3";
    let s = one("s", secret);
    for esc in [&b"\\u00e9"[..], b"&#233;", b"&#xE9;"] {
        let mut st = s.stream();
        let head = [&b"\"caf"[..], esc].concat();
        assert_eq!(st.push(&head), b"\"caf", "{}", String::from_utf8_lossy(esc));
        assert_eq!(st.pending_len(), esc.len());
        let mut out = st.push(b"zq_secret_\xC3\" end");
        out.extend(st.finish());
        assert_eq!(
            out,
            b"[REDACTED:s]\" end",
            "{}",
            String::from_utf8_lossy(esc)
        );
    }
}

/// A binary secret with a backspace and a form feed, in JSON as serde_json,
/// `JSON.stringify` and Python's `json` write it (`\b`, `\f`: the secret's
/// own JSON form has `\u0008`, `\u000c`), is redacted, one-shot and streamed.
#[test]
fn a_secret_with_backspace_and_form_feed_in_json_is_redacted() {
    let secret = "k\u{8}e\u{c}y_0123456789";
    let s = one("s", secret.as_bytes());
    let body = serde_json::to_string(&serde_json::json!({ "key": secret })).unwrap();
    assert_eq!(body, r#"{"key":"k\be\fy_0123456789"}"#);
    assert_eq!(scrubbed(&s, body.as_bytes()), br#"{"key":"[REDACTED:s]"}"#);
}

/// A multi-line key file as Go's `encoding/json` writes it — `\r`, `\n`,
/// `\t` for the line breaks and the tab, `\u0026`, `\u003c`, `\u003e` for
/// `&`, `<`, `>` — is redacted whole: no form of the secret has both kinds of
/// escape, only the JSON view decodes them together.
#[test]
fn a_multi_line_secret_as_go_writes_it_is_redacted() {
    let secret = "-----BEGIN KEY-----\r\n\tA&B<C>D\n-----END KEY-----";
    let s = one("s", secret.as_bytes());
    let go = serde_json::to_string(&serde_json::json!({ "pem": secret }))
        .unwrap()
        .replace('&', "\\u0026")
        .replace('<', "\\u003c")
        .replace('>', "\\u003e");
    assert_eq!(
        go,
        r#"{"pem":"-----BEGIN KEY-----\r\n\tA\u0026B\u003cC\u003eD\n-----END KEY-----"}"#
    );
    assert_eq!(scrubbed(&s, go.as_bytes()), br#"{"pem":"[REDACTED:s]"}"#);
}

/// A lone high surrogate (a string cut inside a surrogate pair) followed by
/// a `\u` escape that is no low surrogate: the two are not joined, the second
/// escape is a character of its own — a secret starting with it is redacted
/// and the surrogate stays.
#[test]
fn a_lone_high_surrogate_is_not_joined_with_the_next_escape() {
    let s = one("s", b"sk_live_abc123");
    assert_eq!(
        scrubbed(&s, br#"["\ud83d\u0073\u006b_live_abc123"]"#),
        br#"["\ud83d[REDACTED:s]"]"#
    );
    // A proper pair is one character: an emoji right before the secret.
    assert_eq!(
        scrubbed(&s, br#"["\ud83d\ude00\u0073k_live_abc123"]"#),
        br#"["\ud83d\ude00[REDACTED:s]"]"#
    );
}

/// A numeric reference is decoded with up to 10 digits, leading zeros
/// included (docs: the HTML view), and not with 11: the bound that keeps an
/// unfinished reference from holding a stream back without end.
#[test]
fn a_numeric_reference_is_decoded_with_up_to_ten_digits() {
    let s = one("s", b"sk_live_abc123");
    for (digits, hex) in [("0000000115", false), ("0000000073", true)] {
        let x = if hex { "x" } else { "" };
        let data = format!("<p>&#{x}{digits};k_live_abc123</p>");
        assert_eq!(
            scrubbed(&s, data.as_bytes()),
            b"<p>[REDACTED:s]</p>",
            "{data}"
        );
        let eleven = format!("<p>&#{x}0{digits};k_live_abc123</p>");
        assert_eq!(
            scrubbed(&s, eleven.as_bytes()),
            eleven.as_bytes(),
            "{eleven}"
        );
    }
}

/// Named references of six letters (`&percnt;`, `&equals;`, …) are decoded
/// also at the very start of the data; and `&` followed by more letters than
/// any name has is no reference: a stream releases it at once instead of
/// holding it for a `;`.
#[test]
fn named_references_are_read_up_to_six_letters() {
    let s = one("s", b"%sk_live=abc123");
    assert_eq!(
        scrubbed(&s, b"&percnt;sk_live&equals;abc123 rest"),
        b"[REDACTED:s] rest"
    );
    let plain = one("p", b"sk_live_abc123");
    streamed_at_once(&plain, b"x &qqqqqqqqqqqqqqqq", b"x &qqqqqqqqqqqqqqqq");
}

/// A numeric reference decodes to its character up to the last code point,
/// U+10FFFF: a secret holding it, written `&#x10FFFF;` or `&#1114111;`, is
/// redacted (past it, `&#x110000;` is U+FFFD, as a browser reads it).
#[test]
fn references_decode_up_to_the_last_code_point() {
    let secret = "pw_\u{10FFFF}_abc123";
    let s = one("s", secret.as_bytes());
    for r in ["&#x10FFFF;", "&#1114111;"] {
        let data = format!("<p>pw_{r}_abc123</p>");
        assert_eq!(scrubbed(&s, data.as_bytes()), b"<p>[REDACTED:s]</p>", "{r}");
    }
    let t = one("t", "pw_\u{FFFD}_abc123".as_bytes());
    assert_eq!(
        scrubbed(&t, b"<p>pw_&#x110000;_abc123</p>"),
        b"<p>[REDACTED:t]</p>"
    );
}
