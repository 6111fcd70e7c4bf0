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
#![warn(missing_docs)]

mod client;
mod error;
mod event;
mod message;
mod options;
mod session;
mod socket;
mod transport;
mod url;

pub use client::{connect, Receiver, Sender};
pub use error::Error;
pub use event::{CloseEvent, Event, ReadyState};
pub use message::Message;
pub use options::{
    AppPing, Disconnect, Endpoint, EndpointProvider, Heartbeat, Options, QueueLimits, Reconnect,
    ShouldReconnect, TlsOptions, WhenFull,
};
pub use socket::{Reconnecting, Socket, SocketBuilder};
pub use transport::{MaybeSend, MaybeSync};
pub use url::redact_url;
