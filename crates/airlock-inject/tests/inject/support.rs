//! Shared helpers: requests, secrets, and a tiny HTTP/1.1 token endpoint on 127.0.0.1.

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use airlock_inject::{NamedSecret, OutgoingRequest};
use bytes::Bytes;
use http::{HeaderMap, HeaderName, HeaderValue, Method};
use secrecy::SecretSlice;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

pub(crate) fn secret(v: &str) -> SecretSlice<u8> {
    SecretSlice::from(v.as_bytes().to_vec())
}

pub(crate) fn named(name: &str, v: &str) -> NamedSecret {
    NamedSecret::new(name, secret(v))
}

pub(crate) fn request(
    method: &str,
    origin: &str,
    path: &str,
    query: Option<&str>,
    headers: &[(&str, &str)],
    body: &[u8],
) -> OutgoingRequest {
    let mut map = HeaderMap::new();
    for (k, v) in headers {
        map.append(
            HeaderName::from_bytes(k.as_bytes()).unwrap(),
            HeaderValue::from_str(v).unwrap(),
        );
    }
    OutgoingRequest::new(
        Method::from_bytes(method.as_bytes()).unwrap(),
        origin,
        path,
        query.map(str::to_string),
        map,
        Bytes::copy_from_slice(body),
    )
}

pub(crate) fn header<'a>(req: &'a OutgoingRequest, name: &str) -> &'a str {
    req.headers
        .get(name)
        .unwrap_or_else(|| panic!("no {name} header"))
        .to_str()
        .unwrap()
}

/// What the fake endpoint received.
#[derive(Debug, Clone)]
pub(crate) struct Received {
    pub(crate) method: String,
    pub(crate) path: String,
    pub(crate) headers: Vec<(String, String)>,
    pub(crate) body: Vec<u8>,
}

impl Received {
    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

type Handler =
    Arc<dyn Fn(Received) -> Pin<Box<dyn Future<Output = (u16, String)> + Send>> + Send + Sync>;

/// An HTTP/1.1 server on 127.0.0.1 that answers every request with `handler` and
/// counts requests. One request per connection (`Connection: close`).
pub(crate) struct Endpoint {
    pub(crate) addr: SocketAddr,
    pub(crate) calls: Arc<AtomicUsize>,
}

impl Endpoint {
    pub(crate) async fn start<F, Fut>(handler: F) -> Endpoint
    where
        F: Fn(Received) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = (u16, String)> + Send + 'static,
    {
        let handler: Handler = Arc::new(move |r| Box::pin(handler(r)));
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let calls = Arc::new(AtomicUsize::new(0));
        let counter = calls.clone();
        tokio::spawn(async move {
            loop {
                let Ok((mut sock, _)) = listener.accept().await else {
                    return;
                };
                let handler = handler.clone();
                let counter = counter.clone();
                tokio::spawn(async move {
                    let Some(req) = read_request(&mut sock).await else {
                        return;
                    };
                    counter.fetch_add(1, Ordering::SeqCst);
                    let (status, body) = handler(req).await;
                    let resp = format!(
                        "HTTP/1.1 {status} X\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                        body.len()
                    );
                    let _ = sock.write_all(resp.as_bytes()).await;
                    let _ = sock.shutdown().await;
                });
            }
        });
        Endpoint { addr, calls }
    }

    pub(crate) fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    pub(crate) fn calls(&self) -> usize {
        self.calls.load(Ordering::SeqCst)
    }
}

async fn read_request(sock: &mut tokio::net::TcpStream) -> Option<Received> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let head_end = loop {
        let n = sock.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).to_string();
    let mut lines = head.split("\r\n");
    let mut first = lines.next()?.split(' ');
    let method = first.next()?.to_string();
    let path = first.next()?.to_string();
    let headers: Vec<(String, String)> = lines
        .filter(|l| !l.is_empty())
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect();
    let content_length = headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("content-length"));
    let len: usize = match content_length {
        Some((_, v)) => v.parse().unwrap_or(0),
        None => 0,
    };
    // The rest of the body (up to end of stream).
    let mut body = buf[head_end..].to_vec();
    let missing = len.saturating_sub(body.len());
    let mut rest = Vec::with_capacity(missing);
    (&mut *sock)
        .take(missing as u64)
        .read_to_end(&mut rest)
        .await
        .ok()?;
    body.extend(rest);
    Some(Received {
        method,
        path,
        headers,
        body,
    })
}

/// Every secret value an injector reports, as (name, value) strings.
pub(crate) fn emitted(inj: &dyn airlock_inject::Injector) -> Vec<(String, String)> {
    let mut out = Vec::new();
    inj.visit_emitted_secrets(&mut |n, v| {
        out.push((n.to_string(), String::from_utf8_lossy(v).into_owned()))
    });
    out
}
