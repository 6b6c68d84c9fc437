//! What the scrubber's tests missed under mutation that only its private state
//! shows (issue 20, item 1; docs/testing.md, "Mutation testing").

use super::*;

/// A stream keeps only the bytes it has not released (and what decoding must
/// restart from), not the whole body: memory stays bounded, and released
/// secrets' plaintext is not kept around.
#[test]
fn a_stream_keeps_only_what_it_has_not_released() {
    let s = Scrubber::new([("s", &b"sk_live_abc123"[..])]).unwrap();
    let mut st = s.stream();
    for _ in 0..100 {
        assert_eq!(st.push(&[b'x'; 1000]).len(), 1000);
    }
    assert!(st.push(b"sk_li").is_empty());
    assert_eq!((st.buf.len(), st.pending_len()), (5, 5));
    let mut out = st.push(b"ve_abc123 ");
    out.extend(st.finish());
    assert_eq!(out, b"[REDACTED:s] ");
    assert!(st.buf.is_empty());
}

/// The fast walk's answer is where the exact search starts. For a short body
/// (one walk) holding one secret it is exactly where the secret starts, not
/// before it: a body with a secret costs the exact search from the secret on
/// (`lanes.rs`'s module docs), and nothing before it is searched twice.
#[test]
fn the_fast_walk_points_at_the_secret_in_a_short_body() {
    let secret = b"sk_live_abc123";
    let l = lanes::Lanes::build([&secret[..]], secret.len()).unwrap();
    for at in [0, 1, 2, 700, 2000 - secret.len()] {
        let mut hay = vec![b'.'; 2000];
        hay[at..at + secret.len()].copy_from_slice(secret);
        assert_eq!(l.first_start(&hay), Some(at), "secret at {at}");
    }
    assert_eq!(l.first_start(&[b'.'; 2000]), None);
}
