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
/// instead of the `Close`, and another `Open` once the connection is back. With
/// [`Options::session`](crate::Options::session), each `Open` is followed by an
/// [`Event::Session`] and, when something may have been lost, [`Event::Gap`]s.
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
    /// Right after each [`Event::Open`] when [`Options::session`](crate::Options::session) is
    /// set: which delivery mode this connection runs in.
    Session {
        /// `true`: an acknowledged session (`unisock.v1`), exactly once across reconnects;
        /// `false`: the server declined, plain WebSocket (at most once).
        acknowledged: bool,
        /// `true` when a previous session continued on this connection: nothing was lost.
        resumed: bool,
    },
    /// Messages of an acknowledged session that may have been lost: the session could not be
    /// resumed, the server's buffer overflowed while the client was away, or the session
    /// ended with messages unacknowledged. Never silent: see [`Gap`].
    Gap(Gap),
}

/// Messages that may have been lost in an acknowledged session (see [`Event::Gap`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Gap {
    /// Which way the messages went.
    pub direction: Direction,
    /// Sequence number of the first message possibly lost (numbers start at 1 per session
    /// and direction; incoming ones count the server's messages of the old session).
    pub first: u64,
    /// Sequence number of the last one, when known: `None` when the server lost the session,
    /// so that how much it sent meanwhile is unknown.
    pub last: Option<u64>,
    /// Why.
    pub reason: GapReason,
    /// For [`Direction::Outgoing`]: the messages themselves (`first`, `first + 1`, …), written
    /// but never acknowledged, so they may or may not have arrived. unisock does not send them
    /// again (that could deliver them twice); the application decides. Empty for incoming gaps.
    pub messages: Vec<Message>,
}

/// The direction of a [`Gap`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Direction {
    /// Server → client: messages this side may not have received.
    Incoming,
    /// Client → server: messages the server may not have received.
    Outgoing,
}

/// Why a [`Gap`] happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum GapReason {
    /// The server does not know the session: it restarted, or the token was never issued.
    SessionUnknown,
    /// The session expired on the server (its grace period ended while disconnected) or was
    /// evicted.
    SessionExpired,
    /// The server dropped these messages to stay within its per-session buffer while the
    /// client was away or too slow.
    Overflow,
    /// The connection now runs without a session (the server declined `unisock.v1`).
    NoSession,
    /// The session ended for good (closed, or reconnecting gave up) with these messages
    /// unacknowledged.
    Ended,
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
    /// before a connection dropped may still have been lost in flight; see the crate docs.
    /// In an acknowledged session, messages written but never acknowledged come in an
    /// [`Event::Gap`] just before the close instead.)
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
