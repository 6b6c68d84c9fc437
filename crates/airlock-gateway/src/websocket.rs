//! The WebSocket relay: after the handshake went through the request path
//! (`Runtime::execute_upgrade`: policy, write-ahead audit, the credential in
//! the handshake), messages are relayed between the agent and the upstream one
//! whole message at a time (fragments joined), so that:
//!
//! * every message from the upstream is scrubbed like a response body (a
//!   secret split across frames is still one message);
//! * every message from the agent passes the door's check first (the egress
//!   proxy's trip wire: a placeholder in a frame is refused and the connection
//!   closed with 1008);
//! * a message over the service's `max_response_body` (either way) closes the
//!   connection with 1009;
//! * the session it was opened in is checked every second (the owner's lock
//!   and revocations applied, as before a decision): once it is revoked,
//!   expired or locked, the connection is closed (1008) — `airlock revoke` and
//!   `airlock lock` reach open WebSockets too.
//!
//! Pings and pongs are not relayed: each side's keep-alive is answered on its
//! own hop (tungstenite answers a ping with a pong). No extension is ever in
//! use (the engine offers none and refuses an upstream that picks one), so no
//! frame is compressed past the scrubber.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use airlock_broker::{Caller, Runtime};

use airlock_engine::WebSocketOpen;
use futures_util::{SinkExt as _, StreamExt as _};
use hyper_util::rt::TokioIo;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::frame::CloseFrame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::{Role, WebSocketConfig};

/// A check of each message the agent sends (its payload): `Err` with the
/// reason refuses it and closes the connection (policy violation, 1008).
pub type FrameCheck = Arc<dyn Fn(&[u8]) -> Result<(), String> + Send + Sync>;

/// At most this many WebSockets are open at once in one process (a handshake
/// past it is `503`): an upgraded connection leaves the doors' connection cap.
pub const MAX_OPEN: usize = 256;

static OPEN: AtomicUsize = AtomicUsize::new(0);

/// One of the [`MAX_OPEN`] places, held for as long as the WebSocket is open.
#[derive(Debug)]
pub struct Slot(());

impl Slot {
    /// A place, or `None` when all are taken.
    pub fn take() -> Option<Slot> {
        let before = OPEN.fetch_add(1, Ordering::SeqCst);
        if before >= MAX_OPEN {
            OPEN.fetch_sub(1, Ordering::SeqCst);
            return None;
        }
        Some(Slot(()))
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        OPEN.fetch_sub(1, Ordering::SeqCst);
    }
}

/// How often an open WebSocket's session is checked.
const SESSION_CHECK: Duration = Duration::from_secs(1);

/// Who a relayed WebSocket belongs to, and the door's check of its messages.
pub struct Guard {
    /// The request path the handshake went through.
    pub runtime: Arc<Runtime>,
    /// The agent whose session it is.
    pub caller: Caller,
    /// The capability it was opened under.
    pub capability: String,
    /// The door's check of each message the agent sends.
    pub frames: Option<FrameCheck>,
    /// Its place among the open WebSockets.
    pub slot: Slot,
}

/// How a relayed WebSocket ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ended {
    /// One side closed it (or went away).
    Closed,
    /// The agent's message failed the check: why.
    Refused(String),
    /// Its session ended (revoked, expired, locked): why.
    SessionEnded(String),
    /// A protocol error or an over-size message: what happened.
    Failed(String),
}

/// What went through a relayed WebSocket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Relayed {
    /// Messages from the agent to the upstream.
    pub messages_up: u64,
    /// Messages from the upstream to the agent.
    pub messages_down: u64,
    /// How it ended.
    pub ended: Ended,
}

/// Relays messages between the agent's upgraded connection and the upstream's
/// until either side closes, a check refuses, or a message is too big.
pub async fn relay(agent: hyper::upgrade::Upgraded, open: WebSocketOpen, guard: Guard) -> Relayed {
    let check = guard.frames.clone();
    let mut session_check = tokio::time::interval(SESSION_CHECK);
    session_check.reset();
    let limit = open.limits.max_response_body;
    let config = WebSocketConfig::default()
        .max_message_size(Some(limit))
        .max_frame_size(Some(limit));
    let mut agent =
        WebSocketStream::from_raw_socket(TokioIo::new(agent), Role::Server, Some(config)).await;
    let mut upstream =
        WebSocketStream::from_raw_socket(open.upstream, Role::Client, Some(config)).await;
    let mut relayed = Relayed {
        messages_up: 0,
        messages_down: 0,
        ended: Ended::Closed,
    };
    let close = |code: CloseCode, reason: &str| {
        Message::Close(Some(CloseFrame {
            code,
            reason: reason.into(),
        }))
    };
    loop {
        tokio::select! {
            _ = session_check.tick() => {
                if let Err(why) = guard.runtime.still_open(&guard.caller, &guard.capability).await {
                    let _ = agent.send(close(CloseCode::Policy, "session ended")).await;
                    let _ = upstream.close(None).await;
                    relayed.ended = Ended::SessionEnded(why.to_string());
                    break;
                }
            }
            m = agent.next() => match m {
                None => {
                    let _ = upstream.close(None).await;
                    break;
                }
                Some(Err(e)) => {
                    let _ = upstream.close(None).await;
                    relayed.ended = Ended::Failed(format!("the agent's side: {e}"));
                    break;
                }
                Some(Ok(msg)) => {
                    let payload: &[u8] = match &msg {
                        Message::Text(t) => t.as_bytes(),
                        Message::Binary(b) => b,
                        Message::Close(Some(f)) => f.reason.as_bytes(),
                        _ => &[],
                    };
                    if let Some(check) = &check
                        && let Err(why) = check(payload)
                    {
                        let _ = agent.send(close(CloseCode::Policy, "refused by airlock")).await;
                        let _ = upstream.close(None).await;
                        relayed.ended = Ended::Refused(why);
                        break;
                    }
                    match msg {
                        Message::Text(_) | Message::Binary(_) => {
                            relayed.messages_up += 1;
                            if upstream.send(msg).await.is_err() {
                                let _ = agent.close(None).await;
                                break;
                            }
                        }
                        Message::Close(frame) => {
                            let _ = upstream.send(Message::Close(frame)).await;
                        }
                        _ => {}
                    }
                }
            },
            m = upstream.next() => match m {
                None => {
                    let _ = agent.close(None).await;
                    break;
                }
                Some(Err(e)) => {
                    let (code, reason) = match e {
                        tokio_tungstenite::tungstenite::Error::Capacity(_) => {
                            (CloseCode::Size, "message over the service's response limit")
                        }
                        _ => (CloseCode::Error, "the upstream failed"),
                    };
                    let _ = agent.send(close(code, reason)).await;
                    relayed.ended = Ended::Failed(format!("the upstream's side: {e}"));
                    break;
                }
                Some(Ok(msg)) => {
                    let scrubbed = match msg {
                        Message::Text(t) => {
                            let clean = open.scrubber.scrub(t.as_bytes());
                            Message::text(String::from_utf8(clean).unwrap_or_else(|e| {
                                String::from_utf8_lossy(e.as_bytes()).into_owned()
                            }))
                        }
                        Message::Binary(b) => Message::binary(open.scrubber.scrub(&b)),
                        Message::Close(frame) => Message::Close(frame.map(|f| {
                            let clean = open.scrubber.scrub(f.reason.as_bytes());
                            let mut reason = String::from_utf8_lossy(&clean).into_owned();
                            // A close frame's reason is at most 123 bytes.
                            while reason.len() > 123 {
                                reason.pop();
                            }
                            CloseFrame {
                                code: f.code,
                                reason: reason.into(),
                            }
                        })),
                        _ => continue,
                    };
                    if !matches!(scrubbed, Message::Close(_)) {
                        relayed.messages_down += 1;
                    }
                    if agent.send(scrubbed).await.is_err() {
                        let _ = upstream.close(None).await;
                        break;
                    }
                }
            },
        }
    }
    relayed
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn at_most_max_open_websockets_and_a_closed_one_frees_its_place() {
        let mut held: Vec<Slot> = (0..MAX_OPEN)
            .map(|_| Slot::take().expect("a place"))
            .collect();
        assert!(Slot::take().is_none(), "one past the cap");
        held.pop();
        let again = Slot::take();
        assert!(again.is_some(), "a closed WebSocket frees its place");
        assert!(Slot::take().is_none());
    }
}
