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
