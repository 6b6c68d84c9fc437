//! Serving an axum app over HTTP/1.1 with the limits `axum::serve` does not apply.
//! Both HTTP doors use it: the gateway (`serve --gateway`) and MCP over HTTP
//! (`serve --http`).
//!
//! `axum::serve` gives hyper no timer, so hyper's header-read timeout never runs:
//! a client that sends a request head one byte at a time (slowloris), or opens a
//! connection and sends nothing, holds it — and a descriptor — forever. Here:
//!
//! - **header-read timeout** ([`HEADER_READ_TIMEOUT`], 10 s): a connection must
//!   deliver a complete request head within 10 s of being accepted or of its
//!   previous response ending, or it is closed (no answer: there is no request to
//!   answer). This is also the idle keep-alive timeout: an idle connection is
//!   closed after 10 s. SDK connection pools expire idle connections sooner
//!   (httpx 5 s, Node's undici 4 s), so they do not race the close.
//! - **body idle timeout** ([`BODY_IDLE_TIMEOUT`], 30 s): reading a request body
//!   fails when no byte of it arrives for 30 s ([`BodyStalled`]).
//! - **a connection cap**, shared by every door of the process ([`Connections`]):
//!   at most [`MAX_CONNECTIONS`] (512) open connections, fewer when the descriptor
//!   limit (`RLIMIT_NOFILE`) does not leave room for them and for one upstream
//!   connection each. At the cap a new connection is still accepted and the
//!   connection that has been idle longest (waiting for a request head: a
//!   slowloris or a parked keep-alive connection, never one with a request in
//!   flight) is closed to make room; when none is idle, the new connection gets
//!   a `503` and is closed at once. So idle connections cannot lock out a new
//!   client, and the process never runs out of descriptors for its own files and
//!   upstream connections. When `accept` fails for lack of descriptors anyway,
//!   the oldest idle connection is closed and `accept` retried.
//! - **a response body that fails** (an upstream cut mid-stream) still delivers
//!   its head and the bytes before the failure, then the stream is visibly cut
//!   (no final chunk, connection closed) — never a connection closed with no
//!   answer at all.

use std::collections::HashMap;
use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use axum::body::Body;
use bytes::Bytes;
use http::{Request, Response};
use hyper::body::{Frame, Incoming, SizeHint};
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Notify, watch};

/// How long a connection may take to deliver a complete request head, counted
/// from its accept or from the end of its previous response (so also the idle
/// keep-alive timeout).
pub const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);
/// How long reading a request body may wait for its next bytes.
pub const BODY_IDLE_TIMEOUT: Duration = Duration::from_secs(30);
/// The most connections the process keeps open across its HTTP doors.
pub const MAX_CONNECTIONS: usize = 512;
/// How long a graceful shutdown waits for requests in flight.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);
/// Descriptors kept free for everything that is not a client connection (the
/// audit log, state files, the vault, listeners, the admin socket).
const RESERVED_DESCRIPTORS: u64 = 64;

/// The answer to a connection over the cap when no idle connection can make room.
fn busy_response() -> Vec<u8> {
    let body = serde_json::json!({
        "type": "error",
        "error": {
            "type": "overloaded_error",
            "message": "airlock has reached its connection limit with every connection busy; retry shortly",
        },
    })
    .to_string();
    format!(
        "HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\nConnection: close\r\nRetry-After: 1\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

/// Settings of [`serve`].
#[derive(Debug, Clone)]
pub struct Options {
    /// See [`HEADER_READ_TIMEOUT`].
    pub header_read_timeout: Duration,
    /// See [`BODY_IDLE_TIMEOUT`].
    pub body_idle_timeout: Duration,
    /// How long a graceful shutdown waits for requests in flight.
    pub shutdown_grace: Duration,
    /// The connection table (and cap) this listener shares.
    pub connections: Arc<Connections>,
}

impl Default for Options {
    /// The documented limits, with the process-wide connection table.
    fn default() -> Self {
        Options {
            header_read_timeout: HEADER_READ_TIMEOUT,
            body_idle_timeout: BODY_IDLE_TIMEOUT,
            shutdown_grace: SHUTDOWN_GRACE,
            connections: Connections::process(),
        }
    }
}

/// The error a request body yields when no byte of it arrived for the body idle
/// timeout. Handlers find it in the error's source chain ([`is_body_stalled`]).
#[derive(Debug, Clone, Copy, thiserror::Error)]
#[error("no request body bytes for {} s", .0.as_secs())]
pub struct BodyStalled(pub Duration);

/// Whether `err` (or one of its sources) is a [`BodyStalled`].
pub fn is_body_stalled(err: &(dyn std::error::Error + 'static)) -> bool {
    std::iter::successors(Some(err), |e| e.source()).any(|e| e.is::<BodyStalled>())
}

/// Open connections of one or more listeners, with the cap that applies to them.
#[derive(Debug)]
pub struct Connections {
    max: usize,
    epoch: Instant,
    table: Mutex<Table>,
}

#[derive(Debug, Default)]
struct Table {
    next_id: u64,
    open: HashMap<u64, Entry>,
}

#[derive(Debug)]
struct Entry {
    state: Arc<ConnState>,
    evict: Arc<Notify>,
}

/// What the connection table knows of one connection.
#[derive(Debug, Default)]
struct ConnState {
    /// Requests in flight (from the head's arrival to the response's last byte).
    busy: AtomicUsize,
    /// Milliseconds after the table's epoch when it last became idle.
    idle_since: AtomicU64,
}

impl Connections {
    /// A table of at most `max` connections (fewer when the descriptor limit is lower).
    pub fn new(max: usize) -> Arc<Connections> {
        Arc::new(Connections {
            max: max.max(1),
            epoch: Instant::now(),
            table: Mutex::new(Table::default()),
        })
    }

    /// The table every door of this process shares ([`MAX_CONNECTIONS`]).
    pub fn process() -> Arc<Connections> {
        static PROCESS: OnceLock<Arc<Connections>> = OnceLock::new();
        PROCESS
            .get_or_init(|| Connections::new(MAX_CONNECTIONS))
            .clone()
    }

    /// Connections open now.
    pub fn open(&self) -> usize {
        self.lock().open.len()
    }

    /// How many connections may be open now: [`Connections::new`]'s `max`, or
    /// fewer when the descriptor limit leaves room for fewer (each connection may
    /// need a second descriptor for its upstream request).
    pub fn budget(&self) -> usize {
        self.max.min(descriptor_budget())
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Table> {
        self.table.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn now_ms(&self) -> u64 {
        u64::try_from(self.epoch.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    /// Registers a new connection, closing the longest-idle one when the table is
    /// at its budget. `None`: at the budget with every connection busy.
    fn admit(self: &Arc<Self>) -> Option<Admitted> {
        let budget = self.budget();
        let mut table = self.lock();
        while table.open.len() >= budget {
            if !Self::evict_idle_locked(&mut table) {
                return None;
            }
        }
        let id = table.next_id;
        table.next_id += 1;
        let state = Arc::new(ConnState::default());
        state.idle_since.store(self.now_ms(), Ordering::Relaxed);
        let evict = Arc::new(Notify::new());
        table.open.insert(
            id,
            Entry {
                state: state.clone(),
                evict: evict.clone(),
            },
        );
        Some(Admitted {
            table: self.clone(),
            id,
            state,
            evict,
        })
    }

    /// Closes the connection idle the longest; false when none is idle.
    fn evict_idle(&self) -> bool {
        Self::evict_idle_locked(&mut self.lock())
    }

    fn evict_idle_locked(table: &mut Table) -> bool {
        let oldest = table
            .open
            .iter()
            .filter(|(_, e)| e.state.busy.load(Ordering::Acquire) == 0)
            .min_by_key(|(id, e)| (e.state.idle_since.load(Ordering::Relaxed), **id))
            .map(|(id, _)| *id);
        match oldest.and_then(|id| table.open.remove(&id)) {
            Some(entry) => {
                entry.evict.notify_one();
                true
            }
            None => false,
        }
    }
}

/// How many client connections the descriptor limit leaves room for.
#[cfg(unix)]
fn descriptor_budget() -> usize {
    let limit = rustix::process::getrlimit(rustix::process::Resource::Nofile);
    match limit.current {
        Some(n) => usize::try_from(n.saturating_sub(RESERVED_DESCRIPTORS) / 2)
            .unwrap_or(usize::MAX)
            .max(8),
        None => usize::MAX,
    }
}

#[cfg(not(unix))]
fn descriptor_budget() -> usize {
    usize::MAX
}

/// A registered connection; leaves the table when dropped.
#[derive(Debug)]
struct Admitted {
    table: Arc<Connections>,
    id: u64,
    state: Arc<ConnState>,
    evict: Arc<Notify>,
}

impl Drop for Admitted {
    fn drop(&mut self) {
        self.table.lock().open.remove(&self.id);
    }
}

/// Marks a request in flight on its connection until dropped (with the response
/// body, once hyper has written its last byte or given up).
#[derive(Debug)]
struct Busy {
    table: Arc<Connections>,
    state: Arc<ConnState>,
}

impl Busy {
    fn start(table: Arc<Connections>, state: Arc<ConnState>) -> Busy {
        state.busy.fetch_add(1, Ordering::AcqRel);
        Busy { table, state }
    }
}

impl Drop for Busy {
    fn drop(&mut self) {
        self.state
            .idle_since
            .store(self.table.now_ms(), Ordering::Relaxed);
        self.state.busy.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Binds `addr` and serves `app` there with the default limits until the process
/// stops; `ready` gets the bound address (useful with port 0). Fails only when
/// the address cannot be bound.
pub async fn serve_on(
    addr: &str,
    app: axum::Router,
    ready: impl FnOnce(std::net::SocketAddr),
) -> std::io::Result<()> {
    let listener = TcpListener::bind(addr).await?;
    ready(listener.local_addr()?);
    serve(listener, app, Options::default(), std::future::pending()).await;
    Ok(())
}

/// Serves `app` on `listener` until `shutdown` resolves; then stops accepting,
/// lets requests in flight finish (up to [`Options::shutdown_grace`]) and
/// returns. Dropping the future instead closes every connection at once.
pub async fn serve(
    listener: TcpListener,
    app: axum::Router,
    opts: Options,
    shutdown: impl Future<Output = ()>,
) {
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(opts.header_read_timeout)
        .keep_alive(true);
    let builder = Arc::new(builder);
    let (stop_tx, stop_rx) = watch::channel(false);
    let mut tasks = tokio::task::JoinSet::new();
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => {
                    let Some(admitted) = opts.connections.admit() else {
                        // Over the cap with every connection busy: say so and close.
                        let _ = stream.try_write(&busy_response());
                        drop(stream);
                        continue;
                    };
                    let _ = stream.set_nodelay(true);
                    tasks.spawn(connection(
                        stream,
                        app.clone(),
                        builder.clone(),
                        admitted,
                        opts.body_idle_timeout,
                        stop_rx.clone(),
                    ));
                }
                Err(e) => accept_failed(&e, &opts.connections).await,
            },
            Some(_) = tasks.join_next(), if !tasks.is_empty() => {}
            () = &mut shutdown => break,
        }
    }
    drop(listener);
    let _ = stop_tx.send(true);
    let drained = tokio::time::timeout(opts.shutdown_grace, async {
        while tasks.join_next().await.is_some() {}
    })
    .await;
    if drained.is_err() {
        tasks.shutdown().await;
    }
}

/// An `accept` error: a connection that failed before it was accepted is
/// skipped; anything else (out of descriptors, out of memory) frees the
/// longest-idle connection and waits a moment before accepting again.
async fn accept_failed(e: &std::io::Error, connections: &Connections) {
    use std::io::ErrorKind;
    if matches!(
        e.kind(),
        ErrorKind::ConnectionAborted | ErrorKind::ConnectionReset | ErrorKind::ConnectionRefused
    ) {
        return;
    }
    let pause = if connections.evict_idle() {
        Duration::from_millis(20)
    } else {
        Duration::from_millis(250)
    };
    tokio::time::sleep(pause).await;
}

/// Serves one connection until it ends, is evicted, or the server shuts down.
async fn connection(
    stream: TcpStream,
    app: axum::Router,
    builder: Arc<hyper::server::conn::http1::Builder>,
    admitted: Admitted,
    body_idle_timeout: Duration,
    mut stop: watch::Receiver<bool>,
) {
    let service = ConnService {
        app: TowerToHyperService::new(app),
        table: admitted.table.clone(),
        state: admitted.state.clone(),
        body_idle_timeout,
    };
    {
        // With upgrades: the egress proxy answers CONNECT and takes the connection
        // over, and a WebSocket handshake on any door does the same (an upgraded
        // connection leaves this cap: tunnels and WebSockets have their own).
        let conn = builder
            .serve_connection(TokioIo::new(stream), service)
            .with_upgrades();
        tokio::pin!(conn);
        let mut stopping = false;
        loop {
            tokio::select! {
                _ = conn.as_mut() => break,
                // Closed to make room (it was idle): dropping `conn` closes the socket.
                () = admitted.evict.notified() => break,
                changed = stop.changed(), if !stopping => {
                    stopping = true;
                    if changed.is_ok() {
                        conn.as_mut().graceful_shutdown();
                    }
                }
            }
        }
    }
    // The socket is closed; the connection leaves the table.
    drop(admitted);
}

/// The per-connection service: marks requests in flight, and puts the body idle
/// timeout on request bodies.
#[derive(Clone)]
struct ConnService {
    app: TowerToHyperService<axum::Router>,
    table: Arc<Connections>,
    state: Arc<ConnState>,
    body_idle_timeout: Duration,
}

impl hyper::service::Service<Request<Incoming>> for ConnService {
    type Response = Response<Body>;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Response<Body>, Infallible>> + Send>>;

    fn call(&self, req: Request<Incoming>) -> Self::Future {
        let busy = Busy::start(self.table.clone(), self.state.clone());
        let timeout = self.body_idle_timeout;
        let req = req.map(|b| Body::new(IdleTimeout::new(b, timeout)));
        let answer = self.app.call(req);
        Box::pin(async move {
            let resp = answer.await?;
            Ok(resp.map(|inner| {
                Body::new(Tracked {
                    inner,
                    deferred: None,
                    _busy: busy,
                })
            }))
        })
    }
}

/// A response body that keeps its request marked in flight until it is dropped.
///
/// It also hands hyper a body error only after one `Pending`: hyper flushes what
/// it has buffered (the response head, the chunks before the error) when the body
/// is pending, but closes the connection at once on an error. Without the pause, an
/// upstream that fails right after its first chunk left the agent with a closed
/// connection and no answer at all, though the request was audited as answered;
/// with it the agent gets the head and a visibly cut stream.
struct Tracked {
    inner: Body,
    deferred: Option<axum::Error>,
    _busy: Busy,
}

impl hyper::body::Body for Tracked {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        if let Some(e) = self.deferred.take() {
            return Poll::Ready(Some(Err(e)));
        }
        match Pin::new(&mut self.inner).poll_frame(cx) {
            Poll::Ready(Some(Err(e))) => {
                self.deferred = Some(e);
                cx.waker().wake_by_ref();
                Poll::Pending
            }
            other => other,
        }
    }

    fn is_end_stream(&self) -> bool {
        // A deferred error is not the end: hyper must poll once more to get it.
        self.deferred.is_none() && self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// A request body that fails with [`BodyStalled`] when no frame arrives for its
/// timeout while it is being read.
struct IdleTimeout {
    inner: Incoming,
    timeout: Duration,
    sleep: Pin<Box<tokio::time::Sleep>>,
    armed: bool,
}

impl IdleTimeout {
    fn new(inner: Incoming, timeout: Duration) -> IdleTimeout {
        IdleTimeout {
            inner,
            timeout,
            sleep: Box::pin(tokio::time::sleep(timeout)),
            armed: false,
        }
    }
}

impl hyper::body::Body for IdleTimeout {
    type Data = Bytes;
    type Error = Box<dyn std::error::Error + Send + Sync>;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let this = &mut *self;
        match Pin::new(&mut this.inner).poll_frame(cx) {
            Poll::Ready(frame) => {
                this.armed = false;
                Poll::Ready(frame.map(|f| f.map_err(Into::into)))
            }
            Poll::Pending => {
                if !this.armed {
                    this.armed = true;
                    let deadline = tokio::time::Instant::now() + this.timeout;
                    this.sleep.as_mut().reset(deadline);
                }
                match this.sleep.as_mut().poll(cx) {
                    Poll::Ready(()) => Poll::Ready(Some(Err(Box::new(BodyStalled(this.timeout))))),
                    Poll::Pending => Poll::Pending,
                }
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn at_the_budget_the_longest_idle_connection_makes_room() {
        let table = Connections::new(2);
        let a = table.admit().unwrap();
        std::thread::sleep(Duration::from_millis(5));
        let b = table.admit().unwrap();
        assert_eq!(table.open(), 2);
        // A third evicts `a`, idle the longest.
        let c = table.admit().unwrap();
        assert_eq!(table.open(), 2);
        assert!(!table.lock().open.contains_key(&a.id));
        // `b` busy, `c` busy: nothing idle, so a fourth is refused.
        let _busy_b = Busy::start(table.clone(), b.state.clone());
        let busy_c = Busy::start(table.clone(), c.state.clone());
        assert!(table.admit().is_none());
        // `c`'s request ends: it is idle again, and makes room.
        drop(busy_c);
        let d = table.admit().unwrap();
        assert!(!table.lock().open.contains_key(&c.id));
        assert!(table.lock().open.contains_key(&b.id));
        drop(d);
        assert_eq!(table.open(), 1);
        // Dropping an evicted connection's registration removes nothing else.
        drop(a);
        assert_eq!(table.open(), 1);
    }

    #[test]
    fn a_stalled_body_error_is_found_in_the_source_chain() {
        let inner: Box<dyn std::error::Error + Send + Sync> =
            Box::new(BodyStalled(Duration::from_secs(30)));
        let outer = axum::Error::new(inner);
        assert!(is_body_stalled(&outer));
        assert!(!is_body_stalled(&std::io::Error::other("x")));
        assert_eq!(
            BodyStalled(Duration::from_secs(30)).to_string(),
            "no request body bytes for 30 s"
        );
    }
}
