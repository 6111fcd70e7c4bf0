//! [`Event`], [`CloseEvent`] and [`ReadyState`]: the browser's event model, on every target.

use std::time::Duration;

use crate::{Error, Message};

/// Something that happened on a connection: the browser's `open`, `message`, `error` and
/// `close` events.
///
/// A connection's events always come in this order: an [`Event::Open`] when the handshake
/// succeeds, then any number of [`Event::Message`]s, possibly an [`Event::Error`], and exactly
/// one [`Event::Close`] at the very end, whatever the reason (as in the browser, a failure is
/// an `Error` followed by a `Close` with code 1006). When the connection drops and
/// [`Options::reconnect`](crate::Options::reconnect) retries, an [`Event::Reconnecting`] comes
/// instead of the `Close`, and another `Open` once the connection is back.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Event {
    /// The connection is open.
    Open {
        /// The subprotocol the server selected, or `""` if none.
        protocol: String,
    },
    /// A message arrived.
    Message(Message),
    /// Something went wrong; a [`Event::Close`] follows when the error ended the connection.
    Error(Error),
    /// The connection dropped (or an attempt failed) and a new attempt starts after `delay`.
    Reconnecting {
        /// The attempt about to be made: 1 for the first retry, growing until a connection
        /// stays up for [`Reconnect::min_uptime`](crate::Reconnect::min_uptime).
        attempt: u32,
        /// The wait before that attempt.
        delay: Duration,
        /// How the previous connection ended (code 1006 after a failed attempt).
        close: CloseEvent,
    },
    /// The connection is closed for good. This is always the last event.
    Close(CloseEvent),
}

/// How a connection ended: the browser's `CloseEvent`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CloseEvent {
    /// The close code. Codes from the peer's close frame (1000 normal, 1001 going away,
    /// 3000–4999 application codes, …), 1005 if its close frame had no code, and 1006 if the
    /// connection ended without a close frame.
    pub code: u16,
    /// The reason from the close frame (at most 123 bytes), or `""`.
    pub reason: String,
    /// Whether the closing handshake completed: `false` after a dropped connection or a failure.
    pub was_clean: bool,
    /// Messages accepted by `send` that were never written to the network, in order: handed
    /// back in the final close so that nothing vanishes silently. (Messages written just
    /// before a connection dropped may still have been lost in flight; see the crate docs.)
    pub unsent: Vec<Message>,
}

impl CloseEvent {
    /// A close event with nothing unsent.
    pub fn new(code: u16, reason: impl Into<String>, was_clean: bool) -> Self {
        CloseEvent {
            code,
            reason: reason.into(),
            was_clean,
            unsent: Vec::new(),
        }
    }

    /// The close event of a connection that ended without a closing handshake (code 1006).
    pub fn abnormal() -> Self {
        CloseEvent::new(1006, "", false)
    }
}

/// The state of a connection: the browser's `WebSocket.readyState`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum ReadyState {
    /// Not open yet (`0`).
    Connecting = 0,
    /// Open: messages flow both ways (`1`).
    Open = 1,
    /// The closing handshake has started (`2`).
    Closing = 2,
    /// Closed, or could not be opened (`3`).
    Closed = 3,
}

impl ReadyState {
    /// The state for the number the browser uses (0–3); anything above 3 is `Closed`.
    pub fn from_u8(value: u8) -> Self {
        match value {
            0 => ReadyState::Connecting,
            1 => ReadyState::Open,
            2 => ReadyState::Closing,
            _ => ReadyState::Closed,
        }
    }
}
