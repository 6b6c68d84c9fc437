//! The stdio transport, with a front door that answers what rmcp would drop.
//!
//! rmcp ignores a stdin line that is not JSON (or is too long, or nested too
//! deep), so a client that sends one waits forever for an answer. Here stdin is
//! read first: every line that parses as JSON goes on to rmcp unchanged; any other
//! line gets the JSON-RPC 2.0 answer for it (`-32700 Parse error`, or `-32600` for
//! a line over [`MAX_LINE`]), with `id: null` as the spec asks when the id cannot
//! be read. stdout carries rmcp's messages and these answers, whole lines only.

use tokio::io::{AsyncBufRead, AsyncBufReadExt, AsyncRead, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::sync::mpsc;

/// The longest stdin line accepted: 16 MiB (a request body is capped far lower).
pub const MAX_LINE: usize = 16 << 20;

/// Size of the in-process pipes between the door and rmcp.
const PIPE: usize = 64 << 10;

/// A line read from the client, checked.
enum Line {
    /// JSON, for rmcp (with its newline).
    Json(Vec<u8>),
    /// Not JSON-RPC: the answer to send back.
    Refused(String),
}

fn error_line(code: i32, message: &str) -> String {
    let v = serde_json::json!({
        "jsonrpc": "2.0",
        "id": null,
        "error": {"code": code, "message": message},
    });
    format!("{v}\n")
}

fn check(line: &[u8]) -> Option<Line> {
    let trimmed = line.trim_ascii();
    if trimmed.is_empty() {
        return None;
    }
    Some(match serde_json::from_slice::<serde_json::Value>(trimmed) {
        Ok(_) => {
            let mut v = trimmed.to_vec();
            v.push(b'\n');
            Line::Json(v)
        }
        Err(e) => Line::Refused(error_line(
            -32700,
            &format!(
                "Parse error: the line is not valid JSON ({e}); send one JSON-RPC message per line"
            ),
        )),
    })
}

/// Reads one line of at most [`MAX_LINE`] bytes. `Ok(None)` at the end of input;
/// an over-long line is consumed up to its newline and refused.
async fn read_line<R: AsyncBufRead + Unpin>(r: &mut R) -> std::io::Result<Option<Line>> {
    loop {
        let mut buf = Vec::new();
        let mut over = false;
        loop {
            let chunk = r.fill_buf().await?;
            if chunk.is_empty() {
                if buf.is_empty() && !over {
                    return Ok(None);
                }
                break;
            }
            let (take, done) = match chunk.iter().position(|&b| b == b'\n') {
                Some(i) => (i + 1, true),
                None => (chunk.len(), false),
            };
            if !over {
                if buf.len() + take > MAX_LINE + 1 {
                    over = true;
                    buf = Vec::new();
                } else {
                    buf.extend_from_slice(&chunk[..take]);
                }
            }
            r.consume(take);
            if done {
                break;
            }
        }
        if over {
            return Ok(Some(Line::Refused(error_line(
                -32600,
                &format!("Invalid Request: the line is over {MAX_LINE} bytes"),
            ))));
        }
        if let Some(line) = check(&buf) {
            return Ok(Some(line));
        }
    }
}

/// Copies client lines to rmcp, sending refusals to the writer instead.
async fn front<R, W>(input: R, mut to_rmcp: W, refusals: mpsc::Sender<String>)
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let mut input = BufReader::new(input);
    while let Ok(Some(line)) = read_line(&mut input).await {
        let sent = match line {
            Line::Json(bytes) => to_rmcp.write_all(&bytes).await.is_ok(),
            Line::Refused(answer) => refusals.send(answer).await.is_ok(),
        };
        if !sent {
            break;
        }
    }
    // End of input (or rmcp gone): rmcp sees EOF and ends the session.
    let _ = to_rmcp.shutdown().await;
}

/// Writes rmcp's lines and the refusals to `output`, whole lines only.
async fn back<R, W>(from_rmcp: R, mut output: W, mut refusals: mpsc::Receiver<String>)
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let mut from_rmcp = BufReader::new(from_rmcp);
    let mut line = Vec::new();
    let mut refusals_open = true;
    loop {
        // `read_until` is cancel-safe as long as `line` keeps what it read, so it
        // is cleared only once a whole line is out.
        let wrote = tokio::select! {
            n = from_rmcp.read_until(b'\n', &mut line) => match n {
                Ok(0) | Err(_) => break,
                Ok(_) => {
                    let r = output.write_all(&line).await;
                    line.clear();
                    r
                }
            },
            answer = refusals.recv(), if refusals_open => match answer {
                Some(a) => output.write_all(a.as_bytes()).await,
                None => {
                    refusals_open = false;
                    Ok(())
                }
            },
        };
        if wrote.is_err() || output.flush().await.is_err() {
            break;
        }
    }
    let _ = output.flush().await;
}

/// A reader of the process's stdin and a writer of its stdout. When they are
/// pipes or sockets — what an MCP client gives its server — the serving thread
/// reads and writes them itself through the reactor (the file descriptions are
/// set non-blocking). Anything else (a terminal, a file) goes through tokio's
/// `stdin()`/`stdout()`, which hand every read and write to a blocking-pool
/// thread: two thread wake-ups per line each way, the futex calls that issue 16
/// counts per call.
pub fn std_streams() -> (
    Box<dyn AsyncRead + Unpin + Send>,
    Box<dyn AsyncWrite + Unpin + Send>,
) {
    #[cfg(unix)]
    {
        let input = fds::reader().unwrap_or_else(|| Box::new(tokio::io::stdin()));
        let output = fds::writer().unwrap_or_else(|| Box::new(tokio::io::stdout()));
        (input, output)
    }
    #[cfg(not(unix))]
    (Box::new(tokio::io::stdin()), Box::new(tokio::io::stdout()))
}

#[cfg(unix)]
mod fds {
    use std::os::fd::{AsFd, OwnedFd};
    use std::os::unix::fs::FileTypeExt;

    use tokio::io::{AsyncRead, AsyncWrite};

    /// A duplicate of `fd`: a pipe, made an async stream by `pipe`, or a
    /// (non-blocking) socket; `None` for anything else.
    fn open<T: ?Sized>(
        fd: std::os::fd::BorrowedFd<'_>,
        pipe: impl FnOnce(std::fs::File) -> std::io::Result<Box<T>>,
        socket: impl FnOnce(tokio::net::UnixStream) -> Box<T>,
    ) -> Option<Box<T>> {
        let file = std::fs::File::from(fd.try_clone_to_owned().ok()?);
        let kind = file.metadata().ok()?.file_type();
        if kind.is_fifo() {
            return pipe(file).ok();
        }
        if kind.is_socket() {
            let s = std::os::unix::net::UnixStream::from(OwnedFd::from(file));
            s.set_nonblocking(true).ok()?;
            return tokio::net::UnixStream::from_std(s).ok().map(socket);
        }
        None
    }

    pub(super) fn reader() -> Option<Box<dyn AsyncRead + Unpin + Send>> {
        open(
            std::io::stdin().as_fd(),
            |f| Ok(Box::new(tokio::net::unix::pipe::Receiver::from_file(f)?) as _),
            |s| Box::new(s) as _,
        )
    }

    pub(super) fn writer() -> Option<Box<dyn AsyncWrite + Unpin + Send>> {
        open(
            std::io::stdout().as_fd(),
            |f| Ok(Box::new(tokio::net::unix::pipe::Sender::from_file(f)?) as _),
            |s| Box::new(s) as _,
        )
    }
}

/// The transport rmcp serves on, and the task that runs the door between it and
/// the real `input`/`output`. Await the task after the service ends.
pub(crate) fn transport<R, W>(
    input: R,
    output: W,
) -> (
    (tokio::io::DuplexStream, tokio::io::DuplexStream),
    impl std::future::Future<Output = ()>,
)
where
    R: AsyncRead + Unpin + Send + 'static,
    W: AsyncWrite + Unpin + Send + 'static,
{
    let (rmcp_in, door_in) = tokio::io::duplex(PIPE);
    let (door_out, rmcp_out) = tokio::io::duplex(PIPE);
    let (tx, rx) = mpsc::channel(16);
    let front = tokio::spawn(front(input, door_in, tx));
    let back = tokio::spawn(back(door_out, output, rx));
    let done = async move {
        let _ = back.await;
        front.abort();
    };
    ((rmcp_in, rmcp_out), done)
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn lines(input: &[u8]) -> Vec<String> {
        let mut r = BufReader::new(input);
        let mut out = Vec::new();
        while let Some(line) = read_line(&mut r).await.unwrap() {
            out.push(match line {
                Line::Json(b) => format!("json {}", String::from_utf8_lossy(&b).trim_end()),
                Line::Refused(a) => {
                    let v: serde_json::Value = serde_json::from_str(&a).unwrap();
                    format!("error {}", v["error"]["code"])
                }
            });
        }
        out
    }

    #[tokio::test]
    async fn json_passes_and_everything_else_gets_its_json_rpc_error() {
        let mut deep = "[".repeat(100_000);
        deep.push('\n');
        let mut input = Vec::new();
        input.extend_from_slice(b"{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"ping\"}\n");
        input.extend_from_slice(b"\n   \n");
        input.extend_from_slice(b"not json\n");
        input.extend_from_slice(b"{\"a\":\"\xff\xfe\"}\n");
        input.extend_from_slice(b"{\"a\":\"\\ud800\"}\n");
        input.extend_from_slice(deep.as_bytes());
        input.extend_from_slice(&vec![b'x'; MAX_LINE + 10]);
        input.extend_from_slice(b"\n[1,2]\n{\"tail\":true}");
        assert_eq!(
            lines(&input).await,
            [
                "json {\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"ping\"}",
                "error -32700",
                "error -32700",
                "error -32700",
                "error -32700",
                "error -32600",
                "json [1,2]",
                "json {\"tail\":true}",
            ]
        );
    }
}
