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
        req = req.header(name, &"a".repeat(len));
    }
    req
}

/// The agent may send headers of exactly 64 KiB (names and values together)
/// and exactly 128 of them; one byte or one header more is the agent's error
/// (400), and nothing is sent.
#[tokio::test]
async fn agent_header_bounds_are_exact() {
    assert_eq!((MAX_AGENT_HEADERS, MAX_AGENT_HEADER_BYTES), (128, 65_536));
    let up = Server::start(|_| ok("")).await;
    let svc = service(&up.url("/"));
    let e = engine();
    let r = e
        .send(
            &svc,
            &bearer(),
            padded(MAX_AGENT_HEADER_BYTES),
            &super::empty(),
        )
        .await
        .unwrap();
    assert_eq!(r.status.as_u16(), 200);
    let mut many = get("/v1");
    for i in 0..MAX_AGENT_HEADERS {
        many = many.header(&format!("X-N-{i}"), "v");
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

    let err = send_err(&e, &svc, &bearer(), padded(MAX_AGENT_HEADER_BYTES + 1)).await;
    assert_eq!(
        (err.error_source(), err.http_status().as_u16()),
        (ErrorSource::Agent, 400),
        "{err}"
    );
    let mut too_many = get("/v1");
    for i in 0..=MAX_AGENT_HEADERS {
        too_many = too_many.header(&format!("X-N-{i}"), "v");
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
