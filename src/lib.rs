//! # unisock
//!
//! One WebSocket client API for native code (tokio-tungstenite over rustls) and the browser
//! (wasm32, wrapping the browser's own `WebSocket`): the same types, the same events and the
//! same behaviour on every target.
//!
//! Two styles, both on every target:
//!
//! - **async**: [`connect`] resolves to a [`Sender`] (a `futures::Sink` of [`Message`]s) and a
//!   [`Receiver`] (a `futures::Stream` of [`Event`]s);
//! - **callbacks / polling**: [`Socket`] starts at once like `new WebSocket(url)`, then calls
//!   `on_open` / `on_message` / `on_error` / `on_close`, or queues events for
//!   [`Socket::try_recv`]. Natively it works from plain threads with no async runtime.
//!
//! Events follow the browser's model: one [`Event::Open`], then messages, maybe an
//! [`Event::Error`], and always exactly one [`Event::Close`] with code, reason and
//! `was_clean` at the end.
//!
//! ```no_run
//! use futures::{SinkExt, StreamExt};
//! use unisock::{Event, Message, Options};
//!
//! # async fn run() -> Result<(), unisock::Error> {
//! let (mut tx, mut rx) = unisock::connect("ws://127.0.0.1:9001/echo", Options::default()).await?;
//! tx.send(Message::text("hello")).await?;
//! while let Some(event) = rx.next().await {
//!     if let Event::Message(reply) = event {
//!         assert_eq!(reply.as_text(), Some("hello"));
//!         tx.close(1000, "bye")?;
//!     }
//! }
//! # Ok(())
//! # }
//! ```
//!
//! ## Reconnection
//!
//! With [`Options::reconnect`] (on by default) a connection that drops is reopened by itself,
//! with exponential backoff and full jitter: the receiver sees [`Event::Reconnecting`] and then
//! a new [`Event::Open`]. A close asked for by the application, a 1008 (policy) close and a
//! handshake rejected with 401/403 are final; [`Reconnect::should_reconnect`] changes that.
//! [`Options::heartbeat`] finds dead connections that would otherwise look open for minutes.
//!
//! ## Delivery guarantee
//!
//! - **Accepted** means queued: `send` / `try_send` / `Socket::send` returning `Ok` puts the
//!   message in unisock's outgoing queue (bounded by [`Options::queue`]; when full, the
//!   message is refused with [`Error::QueueFull`], never dropped). From the queue, messages are
//!   written in order whenever a connection is open; while it is down they wait, and go out in
//!   order after the reconnect.
//! - **Written** means handed to the network (the OS socket, or the browser's `WebSocket`);
//!   `Sink::poll_flush` resolves then. It does not mean the peer has received it.
//! - **In flight** — written, but on a connection that dies before the peer reads it — a
//!   message can be lost: unisock cannot know whether it arrived, and it never sends a message
//!   twice. Per connection and direction this is at most what was in the socket buffers and on
//!   the wire at the moment of the cut; every message is delivered at most once, in order.
//! - **Never written**: at the final close, whatever is still queued is handed back in
//!   [`CloseEvent::unsent`], in order, so the application knows exactly what was not sent.
//! - Incoming messages are delivered in order and none is dropped by unisock; while
//!   [`Options::receive_buffer`] events wait unread, unisock stops reading from the socket.
//!
//! ## Acknowledged sessions: exactly once across reconnects
//!
//! With [`Options::session`] and a server that speaks the `unisock.v1` subprotocol
//! (`unisock serve` does, on `/echo` and `/rooms/{room}`), messages carry sequence numbers and
//! both sides acknowledge what they received (piggybacked on data or batched, never one frame
//! per message). What was written but not acknowledged is kept (bounded by
//! [`SessionOptions`]) and sent again after a reconnect, duplicates are dropped, and the server
//! keeps the session, including room broadcasts sent while the client is away, for a grace
//! period: every message arrives exactly once, in order, both ways. An [`Event::Session`]
//! after each [`Event::Open`] says whether the session is on (a plain server gives plain
//! WebSocket) and whether it was resumed. When the server cannot resume (restarted, grace
//! period over, its buffer overflowed), an [`Event::Gap`] names the sequence numbers that may
//! be lost and hands back the messages written but never acknowledged: never a silent loss.
//! The wire format is in `docs/session-protocol.md`.
//!
//! ```no_run
//! use futures::{SinkExt, StreamExt};
//! use unisock::{Event, Message, Options, SessionOptions};
//!
//! # async fn run() -> Result<(), unisock::Error> {
//! let options = Options::default().session(SessionOptions::default());
//! let (mut tx, mut rx) = unisock::connect("ws://127.0.0.1:9001/rooms/lobby", options).await?;
//! tx.send(Message::text("hello")).await?;
//! while let Some(event) = rx.next().await {
//!     match event {
//!         Event::Session { acknowledged, resumed } => println!("session {acknowledged} {resumed}"),
//!         Event::Gap(gap) => eprintln!("may have lost {:?} {}..={:?}", gap.direction, gap.first, gap.last),
//!         Event::Message(message) => println!("{message:?}"),
//!         _ => {}
//!     }
//! }
//! # Ok(())
//! # }
//! ```
#![warn(missing_docs)]

mod buffer;
mod client;
mod error;
mod event;
#[doc(hidden)]
pub mod fuzzing;
#[cfg(all(target_arch = "wasm32", feature = "js"))]
mod js;
mod message;
mod options;
mod session;
mod socket;
mod transport;
mod url;
mod utf8_bytes;

#[cfg(all(feature = "server", not(target_arch = "wasm32")))]
pub mod server;

/// The README's examples, compiled as native doctests (they use tokio).
#[cfg(all(doctest, not(target_arch = "wasm32")))]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;

/// The binary payload type of [`Message::Binary`] (re-exported from the `bytes` crate).
pub use bytes::Bytes;
pub use client::{connect, Receiver, Sender};
pub use error::Error;
pub use event::{CloseEvent, Direction, Event, Gap, GapReason, ReadyState};
pub use message::Message;
pub use options::{
    AppPing, Disconnect, Endpoint, EndpointProvider, Heartbeat, Options, QueueLimits, Reconnect,
    SessionOptions, ShouldReconnect, TlsOptions, WhenFull,
};
pub use socket::{Reconnecting, SessionMode, Socket, SocketBuilder, Timeout};
pub use transport::{MaybeSend, MaybeSync};
pub use url::redact_url;
pub use utf8_bytes::Utf8Bytes;
