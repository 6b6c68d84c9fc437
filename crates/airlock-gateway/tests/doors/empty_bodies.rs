//! Issue 14 item 8: an upstream answer without a body — an empty `200` with
//! `Content-Length: 0` (every S3 PUT), a `204`, a `304`, the answer to a `HEAD` —
//! reaches the agent as a complete response on a connection that stays usable,
//! and its audit record has the upstream's status. Before the fix the gateway
//! polled the finished body stream again, the connection task panicked ("Unfold
//! must not be polled after it returned `Poll::Ready(None)`"), and the agent got
//! no answer while the audit said 200.

use super::*;

/// The test upstream's answers for the paths of this file (`head` is the
/// lower-cased request head); `None` for other paths.
pub(super) fn upstream_answer(head: &str) -> Option<&'static [u8]> {
    let line = head.lines().next().unwrap_or("");
    Some(match line {
        l if l.starts_with("put /base/empty/put ") => {
            b"HTTP/1.1 200 OK\r\nETag: \"d41d8cd98f00b204e9800998ecf8427e\"\r\nContent-Length: 0\r\n\r\n"
        }
        l if l.starts_with("get /base/empty/ok ") => b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n",
        l if l.starts_with("delete /base/empty/204 ") => {
            b"HTTP/1.1 204 No Content\r\nX-Deleted: yes\r\n\r\n"
        }
        l if l.starts_with("get /base/empty/304 ") => {
            b"HTTP/1.1 304 Not Modified\r\nETag: \"v1\"\r\n\r\n"
        }
        // A HEAD answer announces the length of the body it does not send.
        l if l.starts_with("head /base/empty/head ") => {
            b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 5\r\n\r\n"
        }
        _ => return None,
    })
}

/// One complete response read from a kept-alive connection.
#[derive(Debug)]
struct Whole {
    status: u16,
    head: String,
    body: Vec<u8>,
}

/// Reads exactly one response to a request with `method`: a `HEAD`, `204` or
/// `304` answer ends with its head; otherwise by `Content-Length` or chunked
/// framing. `None` when the connection closes or stalls before the response is
/// complete.
async fn read_whole(conn: &mut TcpStream, method: &str, buf: &mut Vec<u8>) -> Option<Whole> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    let mut chunk = [0u8; 8192];
    loop {
        if let Some(w) = parse_whole(method, buf) {
            return Some(w);
        }
        match tokio::time::timeout_at(deadline, conn.read(&mut chunk)).await {
            Ok(Ok(n)) if n > 0 => buf.extend_from_slice(&chunk[..n]),
            _ => return None,
        }
    }
}

/// A complete response at the start of `buf` (removed from it), if there is one.
fn parse_whole(method: &str, buf: &mut Vec<u8>) -> Option<Whole> {
    let end = find(buf, b"\r\n\r\n")?;
    let head = String::from_utf8_lossy(&buf[..end]).to_ascii_lowercase();
    let status: u16 = head.split_whitespace().nth(1)?.parse().ok()?;
    let rest = &buf[end + 4..];
    let (body, used) = if method == "HEAD" || status == 204 || status == 304 {
        (Vec::new(), 0)
    } else if head.contains("transfer-encoding: chunked") {
        let mut body = Vec::new();
        let mut at = 0;
        loop {
            let line_end = at + find(&rest[at..], b"\r\n")?;
            let size_text = String::from_utf8_lossy(&rest[at..line_end]).to_string();
            let size = usize::from_str_radix(size_text.trim(), 16).ok()?;
            let data = line_end + 2;
            if rest.len() < data + size + 2 {
                return None;
            }
            if size == 0 {
                break (body, data + 2);
            }
            body.extend_from_slice(&rest[data..data + size]);
            at = data + size + 2;
        }
    } else {
        let len: usize = head
            .lines()
            .find_map(|l| l.strip_prefix("content-length:"))
            .and_then(|v| v.trim().parse().ok())?;
        if rest.len() < len {
            return None;
        }
        (rest[..len].to_vec(), len)
    };
    buf.drain(..end + 4 + used);
    Some(Whole { status, head, body })
}

/// The status the audit gives the request record for `path`: on the record
/// itself, or on the outcome record that completes it (write-ahead audit).
fn audited_status(recs: &[Value], path: &str) -> Option<u64> {
    let rec = recs
        .iter()
        .rev()
        .find(|r| r["kind"] == "request" && r["path"] == path)?;
    assert_eq!(rec["decision"], "allow", "{rec}");
    if let Some(s) = rec["status"].as_u64() {
        return Some(s);
    }
    let seq = rec.get("seq")?;
    recs.iter()
        .find(|r| r.get("of") == Some(seq))
        .and_then(|r| r["status"].as_u64())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn answers_without_a_body_are_complete_and_audited_with_their_status() {
    let s = setup();
    let addr = serving(&s).await;
    let auth = format!("Authorization: Bearer {}\r\n", s.token);
    // method, path, body sent, status wanted, a header the answer must keep
    let cases: [(&str, &str, &str, u16, &str); 5] = [
        (
            "PUT",
            "/empty/put",
            "",
            200,
            "etag: \"d41d8cd98f00b204e9800998ecf8427e\"",
        ),
        ("GET", "/empty/ok", "", 200, ""),
        ("DELETE", "/empty/204", "", 204, "x-deleted: yes"),
        ("GET", "/empty/304", "", 304, "etag: \"v1\""),
        ("HEAD", "/empty/head", "", 200, "content-type: text/plain"),
    ];
    // Twice each, all on one kept-alive connection: an answer cut short or a
    // connection dropped shows as a missing or garbled next answer.
    let mut conn = TcpStream::connect(addr).await.unwrap();
    let mut buf = Vec::new();
    for round in 0..2 {
        for (method, path, body, want, keeps) in cases {
            let request = format!(
                "{method} /svc{path} HTTP/1.1\r\nHost: x\r\n{auth}Content-Length: {}\r\n\r\n{body}",
                body.len()
            );
            conn.write_all(request.as_bytes()).await.unwrap();
            let w = read_whole(&mut conn, method, &mut buf)
                .await
                .unwrap_or_else(|| {
                    panic!(
                        "round {round}: {method} {path}: no complete answer (got {:?})",
                        String::from_utf8_lossy(&buf)
                    )
                });
            assert_eq!(w.status, want, "{method} {path}: {w:?}");
            assert!(w.body.is_empty(), "{method} {path}: {w:?}");
            assert!(w.head.contains(keeps), "{method} {path}: {w:?}");
        }
    }
    // The connection still serves an ordinary request afterwards.
    conn.write_all(&get(&s.token, "/svc/after")).await.unwrap();
    let w = read_whole(&mut conn, "GET", &mut buf)
        .await
        .expect("the connection was dropped after the empty answers");
    assert_eq!(w.status, 200);
    assert_eq!(w.body, b"{\"ok\":true}");
    drop(conn);

    // Each request is audited as allowed, with the upstream's status.
    let recs = records(&s);
    for (method, path, _, want, _) in cases {
        assert_eq!(
            audited_status(&recs, path),
            Some(u64::from(want)),
            "{method} {path}: {recs:?}"
        );
    }
}

/// Each kind of empty answer on a fresh connection with `Connection: close`,
/// where the client reads to the end: the answer must be there in full.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_empty_answer_on_a_closing_connection_is_not_lost() {
    let s = setup();
    let addr = serving(&s).await;
    for (method, path, want) in [
        ("PUT", "/empty/put", 200),
        ("GET", "/empty/ok", 200),
        ("DELETE", "/empty/204", 204),
        ("GET", "/empty/304", 304),
        ("HEAD", "/empty/head", 200),
    ] {
        let mut conn = TcpStream::connect(addr).await.unwrap();
        let request = format!(
            "{method} /svc{path} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
            s.token
        );
        conn.write_all(request.as_bytes()).await.unwrap();
        let mut raw = Vec::new();
        tokio::time::timeout(Duration::from_secs(10), conn.read_to_end(&mut raw))
            .await
            .expect("the connection was not closed")
            .ok();
        let mut buf = raw.clone();
        let w = parse_whole(method, &mut buf).unwrap_or_else(|| {
            panic!(
                "{method} {path}: no complete answer: {:?}",
                String::from_utf8_lossy(&raw)
            )
        });
        assert_eq!(w.status, want, "{method} {path}: {w:?}");
        assert!(
            buf.is_empty(),
            "{method} {path}: bytes after the answer: {buf:?}"
        );
    }
}
