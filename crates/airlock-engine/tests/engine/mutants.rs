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
