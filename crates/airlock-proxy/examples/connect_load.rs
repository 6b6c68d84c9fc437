//! Load generator for HTTPS through an HTTP CONNECT proxy (bench/proxy): wrk
//! cannot speak CONNECT. Keep-alive HTTP/1.1 GETs over TLS, through the proxy
//! or straight to the origin, from N connections for a fixed time; or, with
//! `--first`, one fresh CONNECT + TLS handshake + GET per listed host (the first
//! request to a host: the proxy mints its leaf certificate then).
//!
//! With `--h2 1`, each connection speaks HTTP/2 (ALPN `h2`, hyper's client),
//! one request at a time on it, like the HTTP/1.1 keep-alive loop.
//!
//! ```text
//! connect_load --ca CA.pem --port P --path /v1/items [--proxy ADDR --auth BASE64]
//!              [--h2 1] (--host H --conns N --seconds S | --first H1,H2,...)
//! ```
//! Prints one JSON object: requests, rps, p50_ms, p99_ms, errors.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, ServerName};
use tokio::io::{AsyncRead, AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;

struct Args {
    ca: String,
    port: u16,
    path: String,
    proxy: Option<String>,
    auth: Option<String>,
    host: String,
    conns: usize,
    seconds: f64,
    first: Vec<String>,
    h2: bool,
}

fn parse() -> Args {
    let mut a = Args {
        ca: String::new(),
        port: 443,
        path: "/".into(),
        proxy: None,
        auth: None,
        host: "127.0.0.1".into(),
        conns: 1,
        seconds: 5.0,
        first: Vec::new(),
        h2: false,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let v = it.next().unwrap_or_else(|| panic!("{flag} needs a value"));
        match flag.as_str() {
            "--ca" => a.ca = v,
            "--port" => a.port = v.parse().unwrap(),
            "--path" => a.path = v,
            "--proxy" => a.proxy = Some(v),
            "--auth" => a.auth = Some(v),
            "--host" => a.host = v,
            "--conns" => a.conns = v.parse().unwrap(),
            "--seconds" => a.seconds = v.parse().unwrap(),
            "--first" => a.first = v.split(',').map(str::to_string).collect(),
            "--h2" => a.h2 = v == "1",
            other => panic!("unknown flag {other}"),
        }
    }
    a
}

fn tls(ca: &str, h2: bool) -> tokio_rustls::TlsConnector {
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_file_iter(ca).unwrap() {
        roots.add(cert.unwrap()).unwrap();
    }
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = vec![if h2 {
        b"h2".to_vec()
    } else {
        b"http/1.1".to_vec()
    }];
    tokio_rustls::TlsConnector::from(Arc::new(config))
}

/// Reads one HTTP/1.1 response (head, then a Content-Length body); returns its
/// status. `buf` keeps bytes past the response.
async fn read_response(
    s: &mut (impl AsyncRead + Unpin),
    buf: &mut Vec<u8>,
) -> std::io::Result<u16> {
    let head_end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        let mut chunk = [0u8; 16384];
        let n = s.read(&mut chunk).await?;
        if n == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).to_ascii_lowercase();
    let status: u16 = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    buf.drain(..head_end);
    if head.contains("transfer-encoding: chunked") {
        // Chunks until the last (size 0) and the blank line after it.
        loop {
            let line_end = fill_until(s, buf, |b| b.windows(2).position(|w| w == b"\r\n")).await?;
            let size = usize::from_str_radix(
                String::from_utf8_lossy(&buf[..line_end])
                    .split(';')
                    .next()
                    .unwrap_or("")
                    .trim(),
                16,
            )
            .map_err(std::io::Error::other)?;
            fill_until(s, buf, |b| {
                (b.len() >= line_end + 2 + size + 2).then_some(0)
            })
            .await?;
            buf.drain(..line_end + 2 + size + 2);
            if size == 0 {
                return Ok(status);
            }
        }
    }
    let length: usize = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length:"))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0);
    fill_until(s, buf, |b| (b.len() >= length).then_some(0)).await?;
    buf.drain(..length);
    Ok(status)
}

/// Reads into `buf` until `done` finds what it looks for; returns what it found.
async fn fill_until(
    s: &mut (impl AsyncRead + Unpin),
    buf: &mut Vec<u8>,
    done: impl Fn(&[u8]) -> Option<usize>,
) -> std::io::Result<usize> {
    loop {
        if let Some(found) = done(buf) {
            return Ok(found);
        }
        let mut chunk = [0u8; 16384];
        let n = s.read(&mut chunk).await?;
        if n == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        buf.extend_from_slice(&chunk[..n]);
    }
}

/// A TLS stream to `host:port`, through the proxy when there is one.
async fn open(
    a: &Args,
    connector: &tokio_rustls::TlsConnector,
    host: &str,
) -> std::io::Result<tokio_rustls::client::TlsStream<TcpStream>> {
    let mut tcp = match &a.proxy {
        Some(p) => TcpStream::connect(p).await?,
        None => TcpStream::connect((host, a.port)).await?,
    };
    tcp.set_nodelay(true)?;
    if a.proxy.is_some() {
        let auth = a
            .auth
            .as_ref()
            .map(|b| format!("Proxy-Authorization: Basic {b}\r\n"))
            .unwrap_or_default();
        let connect = format!(
            "CONNECT {host}:{port} HTTP/1.1\r\nHost: {host}:{port}\r\n{auth}\r\n",
            port = a.port
        );
        tcp.write_all(connect.as_bytes()).await?;
        let mut buf = Vec::new();
        let status = read_response(&mut tcp, &mut buf).await?;
        if status != 200 {
            return Err(std::io::Error::other(format!("CONNECT answered {status}")));
        }
    }
    let name = ServerName::try_from(host.to_string()).map_err(std::io::Error::other)?;
    connector.connect(name, tcp).await
}

fn request(a: &Args, host: &str) -> Vec<u8> {
    format!(
        "GET {} HTTP/1.1\r\nHost: {host}:{}\r\nAuthorization: Bearer airlock_ph_bench\r\n\r\n",
        a.path, a.port
    )
    .into_bytes()
}

/// One connection's HTTP/2 loop until `deadline`: latencies and errors.
async fn h2_loop(
    a: Arc<Args>,
    connector: tokio_rustls::TlsConnector,
    deadline: Instant,
) -> (Vec<Duration>, usize) {
    use http_body_util::{BodyExt as _, Empty};
    let mut lat = Vec::new();
    let mut errors = 0usize;
    let uri: hyper::Uri = format!("https://{}:{}{}", a.host, a.port, a.path)
        .parse()
        .unwrap();
    while Instant::now() < deadline {
        let Ok(s) = open(&a, &connector, &a.host).await else {
            errors += 1;
            tokio::time::sleep(Duration::from_millis(10)).await;
            continue;
        };
        let io = hyper_util::rt::TokioIo::new(s);
        let exec = hyper_util::rt::TokioExecutor::new();
        let Ok((mut send, conn)) = hyper::client::conn::http2::handshake(exec, io).await else {
            errors += 1;
            continue;
        };
        tokio::spawn(conn);
        while Instant::now() < deadline {
            let t = Instant::now();
            let req = hyper::Request::get(uri.clone())
                .header("authorization", "Bearer airlock_ph_bench")
                .body(Empty::<bytes::Bytes>::new())
                .unwrap();
            let ok = async {
                let resp = send.send_request(req).await.ok()?;
                let status = resp.status();
                resp.into_body().collect().await.ok()?;
                Some(status)
            }
            .await;
            match ok {
                Some(s) if s == 200 => lat.push(t.elapsed()),
                Some(_) => errors += 1,
                None => {
                    errors += 1;
                    break;
                }
            }
        }
    }
    (lat, errors)
}

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i].as_secs_f64() * 1000.0
}

#[tokio::main]
async fn main() {
    let a = Arc::new(parse());
    let connector = tls(&a.ca, a.h2);
    let mut lat: Vec<Duration> = Vec::new();
    let mut errors = 0usize;
    let started = Instant::now();
    if !a.first.is_empty() {
        for host in &a.first {
            let t = Instant::now();
            let ok = async {
                let mut s = open(&a, &connector, host).await?;
                s.write_all(&request(&a, host)).await?;
                read_response(&mut s, &mut Vec::new()).await
            }
            .await;
            match ok {
                Ok(200) => lat.push(t.elapsed()),
                _ => errors += 1,
            }
        }
    } else {
        let deadline = Instant::now() + Duration::from_secs_f64(a.seconds);
        let mut tasks = Vec::new();
        for _ in 0..a.conns {
            let (a, connector) = (a.clone(), connector.clone());
            if a.h2 {
                tasks.push(tokio::spawn(h2_loop(a, connector, deadline)));
                continue;
            }
            tasks.push(tokio::spawn(async move {
                let mut lat = Vec::new();
                let mut errors = 0usize;
                let req = request(&a, &a.host);
                while Instant::now() < deadline {
                    let Ok(mut s) = open(&a, &connector, &a.host).await else {
                        errors += 1;
                        tokio::time::sleep(Duration::from_millis(10)).await;
                        continue;
                    };
                    let mut buf = Vec::new();
                    while Instant::now() < deadline {
                        let t = Instant::now();
                        if s.write_all(&req).await.is_err() {
                            errors += 1;
                            break;
                        }
                        match read_response(&mut s, &mut buf).await {
                            Ok(200) => lat.push(t.elapsed()),
                            Ok(_) => errors += 1,
                            Err(_) => {
                                errors += 1;
                                break;
                            }
                        }
                    }
                }
                (lat, errors)
            }));
        }
        for t in tasks {
            let (l, e) = t.await.unwrap();
            lat.extend(l);
            errors += e;
        }
    }
    let elapsed = started.elapsed().as_secs_f64();
    lat.sort();
    println!(
        "{}",
        serde_json::json!({
            "requests": lat.len(),
            "rps": lat.len() as f64 / elapsed,
            "p50_ms": percentile(&lat, 0.5),
            "p99_ms": percentile(&lat, 0.99),
            "errors": errors,
        })
    );
}
