//! One WebSocket connection from upgrade to end: echo or room traffic, close codes for bad
//! input, the 1001 goodbye at shutdown, and the abrupt end of `POST /drop`.

use std::fmt;
use std::time::Duration;

use futures::{SinkExt, StreamExt};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_tungstenite::tungstenite::error::{Error as WsError, ProtocolError};
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::Message;

use super::batch::{self, BatchWriter};
use super::clients::{KillSwitch, Registration};
use super::limits::ConnectionPermit;
use super::liveness::{Check, Liveness};
use super::metrics::{Counter, ServerCounters};
use super::rooms::{Inbox, Membership};
use super::sessions::{self, Route, SessionEnd, SessionStore};
use super::shutdown::{Phase, PhaseWatch};
use super::upgrade::Socket;

/// How long a close we start outside shutdown waits for the client's answering close frame.
const CLOSE_WAIT: Duration = Duration::from_secs(2);

/// After closing a client for a bad or oversized message, how long to keep reading (and
/// discarding) what it still sends before closing TCP. Closing with unread data makes the
/// kernel send a reset, which can destroy the close frame before the client reads it.
const LINGER: Duration = Duration::from_secs(2);

/// What a connection does with the messages it receives.
#[derive(Debug)]
pub(crate) enum Mode {
    /// Sends every text and binary message back as is.
    Echo,
    /// Broadcasts every text and binary message to the room.
    Room {
        /// The connection's place in the room.
        membership: Membership,
        /// Messages from the room for this client.
        inbox: Inbox,
        /// Whether this client's own messages come back to it.
        notify_self: bool,
    },
    /// An acknowledged session (`unisock.v1`) on the echo route or a room.
    Session {
        /// Where sessions live across connections.
        store: SessionStore,
        /// Echo or room.
        route: Route,
    },
}

/// Everything a connection task owns. Dropping it (also without running it) releases the
/// connection slot, the room membership and the client-id registration.
#[derive(Debug)]
pub(crate) struct Connection {
    /// Server-unique id, for logs.
    pub(crate) id: u64,
    /// Request path, for logs (never the query string).
    pub(crate) path: String,
    /// The subprotocol selected during the handshake, for logs.
    pub(crate) protocol: Option<&'static str>,
    /// Echo or room.
    pub(crate) mode: Mode,
    /// Present when the client named itself with `?client_id=`.
    pub(crate) named: Option<(Registration, KillSwitch)>,
    /// The server's shutdown phase.
    pub(crate) phase: PhaseWatch,
    /// How long to wait for the client's answer to the shutdown close frame.
    pub(crate) shutdown_timeout: Duration,
    /// How often to check that the client is still there (see [`Liveness`]).
    pub(crate) ping_interval: Option<Duration>,
    /// The connection slot.
    pub(crate) permit: ConnectionPermit,
    /// Where messages in and out are counted.
    pub(crate) counters: ServerCounters,
}

/// How a connection ended, for the disconnect log line.
#[derive(Debug)]
enum End {
    /// The client sent a close frame with this code (1005 if none) and the handshake ended.
    ClientClosed(u16),
    /// TCP ended without a close frame.
    ClientVanished,
    /// Silent through a ping interval after a ping: taken for gone.
    Unresponsive,
    /// Dropped through `POST /drop`.
    Dropped,
    /// Closed with 1001 at shutdown.
    ShuttingDown,
    /// Still open when the shutdown timeout ran out.
    Aborted,
    /// Closed with 1013: fell behind its room.
    Evicted,
    /// Closed with this code for a bad message (1002, 1007, 1009).
    Refused(u16, &'static str),
    /// An I/O error.
    Failed(WsError),
    /// The end of an acknowledged-session connection.
    Session(SessionEnd),
}

impl fmt::Display for End {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            End::ClientClosed(code) => write!(f, "client closed with {code}"),
            End::ClientVanished => f.write_str("connection lost without a close frame"),
            End::Unresponsive => f.write_str("no answer to a ping: client taken for gone"),
            End::Dropped => f.write_str("dropped on request (POST /drop)"),
            End::ShuttingDown => f.write_str("closed with 1001 (server shutting down)"),
            End::Aborted => f.write_str("dropped: shutdown timeout"),
            End::Evicted => f.write_str("closed with 1013 (too slow for its room)"),
            End::Refused(code, reason) => write!(f, "closed with {code} ({reason})"),
            End::Failed(error) => write!(f, "error: {error}"),
            End::Session(end) => write!(f, "session: {end}"),
        }
    }
}

/// What woke the message loop up.
enum Wake {
    Shutdown,
    Incoming(Option<Result<Message, WsError>>),
    FromRoom(Option<Message>),
    Liveness(Check),
}

impl Connection {
    /// Serves `socket` until it ends, then closes TCP and releases everything.
    pub(crate) async fn run(self, mut socket: Socket) {
        let Connection {
            id,
            path,
            protocol,
            mode,
            named,
            phase,
            shutdown_timeout,
            ping_interval,
            permit,
            counters,
        } = self;
        tracing::info!(conn = id, %path, protocol, "websocket connected");
        let (registration, mut kill) = match named {
            Some((registration, kill)) => (Some(registration), Some(kill)),
            None => (None, None),
        };
        let mut abort = phase.clone();
        let end = tokio::select! {
            () = killed(kill.as_mut()) => End::Dropped,
            () = abort.reached(Phase::Abort) => End::Aborted,
            end = exchange(&mut socket, mode, id, phase, shutdown_timeout, ping_interval, &counters) => end,
        };
        // Closes TCP; after a drop or an abort, without any close frame.
        drop(socket);
        drop(registration);
        drop(permit);
        tracing::info!(conn = id, %path, "websocket disconnected: {end}");
    }
}

/// Resolves when the kill switch fires; never without one.
async fn killed(kill: Option<&mut KillSwitch>) {
    match kill {
        Some(kill) => kill.fired().await,
        None => std::future::pending().await,
    }
}

/// The message loop.
async fn exchange(
    socket: &mut Socket,
    mut mode: Mode,
    id: u64,
    mut phase: PhaseWatch,
    shutdown_timeout: Duration,
    ping_interval: Option<Duration>,
    counters: &ServerCounters,
) -> End {
    if let Mode::Session { store, route } = mode {
        let liveness = Liveness::new(ping_interval);
        // Boxed: the session loop's state is large, and inline it would make every
        // connection's task that large, sessions or not (idle memory per connection).
        let serving = sessions::serve(socket, &store, route, id, phase, shutdown_timeout, liveness);
        let end = Box::pin(serving).await;
        return End::Session(end);
    }
    let mut client_close = None;
    let mut writer = BatchWriter::default();
    let mut liveness = Liveness::new(ping_interval);
    loop {
        // Echoes wait in the write buffer while more messages have already arrived (at most
        // a batch): one write and one flush then answer a whole burst. After the client's
        // close frame, flush first: what was echoed must go out before the stream ends.
        let arrived = if writer.is_pending() && client_close.is_none() {
            batch::already_arrived(socket)
        } else {
            None
        };
        let wake = match arrived {
            Some(incoming) => Wake::Incoming(counted(incoming, &counters.messages_in)),
            None => {
                if let Err(error) = writer.flush(socket).await {
                    return End::Failed(error);
                }
                tokio::select! {
                    () = phase.reached(Phase::Closing) => Wake::Shutdown,
                    incoming = socket.next() => {
                        Wake::Incoming(counted(incoming, &counters.messages_in))
                    }
                    outgoing = from_room(&mut mode) => Wake::FromRoom(outgoing),
                    check = liveness.check() => Wake::Liveness(check),
                }
            }
        };
        if let Wake::Incoming(Some(Ok(_))) = &wake {
            liveness.heard();
        }
        match wake {
            Wake::Shutdown => {
                close(socket, 1001, "server shutting down", shutdown_timeout).await;
                return End::ShuttingDown;
            }
            Wake::Incoming(None) => {
                return client_close.map_or(End::ClientVanished, End::ClientClosed);
            }
            Wake::Incoming(Some(Ok(message))) => match message {
                Message::Text(_) | Message::Binary(_) => match &mode {
                    Mode::Echo => {
                        counters.messages_out.inc();
                        if let Err(error) = writer.feed(socket, message).await {
                            return End::Failed(error);
                        }
                    }
                    Mode::Room { .. } => {
                        let out = &counters.messages_out;
                        let published = publish(socket, &mut writer, &mut mode, &message, out);
                        if let Err(error) = published.await {
                            return End::Failed(error);
                        }
                    }
                    Mode::Session { .. } => {}
                },
                // tungstenite answers the close frame itself; the stream ends next.
                Message::Close(frame) => {
                    client_close = Some(frame.map_or(1005, |frame| u16::from(frame.code)));
                }
                // Pings are answered by tungstenite; pongs and raw frames need nothing.
                Message::Ping(_) | Message::Pong(_) | Message::Frame(_) => {}
            },
            Wake::Incoming(Some(Err(error))) => return refuse(socket, error).await,
            Wake::FromRoom(Some(message)) => {
                if let Mode::Room { inbox, .. } = &mut mode {
                    let out = &counters.messages_out;
                    if let Err(error) = relay(socket, &mut writer, inbox, message, out).await {
                        return End::Failed(error);
                    }
                }
            }
            Wake::FromRoom(None) => {
                close(socket, 1013, "too slow: fell behind the room", CLOSE_WAIT).await;
                return End::Evicted;
            }
            Wake::Liveness(Check::Alive) => {}
            Wake::Liveness(Check::Ping) => {
                if let Err(error) = writer.feed(socket, Message::Ping(Default::default())).await {
                    return End::Failed(error);
                }
            }
            // Nobody would read a close frame: just drop the connection.
            Wake::Liveness(Check::Gone) => return End::Unresponsive,
        }
    }
}

/// Sends `message` and what else the room has already queued for this client (at most
/// [`batch::BATCH`] in all), then flushes once: when a room is busy, one write system call
/// carries many messages instead of one each.
async fn relay(
    socket: &mut Socket,
    writer: &mut BatchWriter,
    inbox: &mut Inbox,
    message: Message,
    out: &Counter,
) -> Result<(), WsError> {
    out.inc();
    writer.feed(socket, message).await?;
    for _ in 1..batch::BATCH {
        let Some(next) = inbox.try_recv() else {
            break;
        };
        out.inc();
        writer.feed(socket, next).await?;
    }
    writer.flush(socket).await
}

/// Publishes a client's message to its room ([`Membership::publish_paced`]: it may wait for
/// members that are behind, and meanwhile this client reads nothing more, so TCP slows a
/// publisher down to what the room can deliver). While it waits, this client's own inbox
/// keeps being relayed: two members publishing at once never wait for each other.
async fn publish(
    socket: &mut Socket,
    writer: &mut BatchWriter,
    mode: &mut Mode,
    message: &Message,
    out: &Counter,
) -> Result<(), WsError> {
    let Mode::Room {
        membership,
        inbox,
        notify_self,
    } = mode
    else {
        return Ok(());
    };
    let mut publishing = std::pin::pin!(membership.publish_paced(message, *notify_self));
    loop {
        tokio::select! {
            _ = &mut publishing => return Ok(()),
            relayed = inbox.recv() => match relayed {
                Some(relayed) => relay(socket, writer, inbox, relayed, out).await?,
                // Evicted: the message loop closes with 1013 once this is published.
                None => {
                    publishing.await;
                    return Ok(());
                }
            },
        }
    }
}

/// `incoming`, counted in `messages_in` if it is a text or binary message.
fn counted(
    incoming: Option<Result<Message, WsError>>,
    messages_in: &Counter,
) -> Option<Result<Message, WsError>> {
    if let Some(Ok(Message::Text(_) | Message::Binary(_))) = &incoming {
        messages_in.inc();
    }
    incoming
}

/// The next message the room has for this client; never for an echo connection. `None`:
/// the client was evicted from the room.
async fn from_room(mode: &mut Mode) -> Option<Message> {
    match mode {
        Mode::Room { inbox, .. } => inbox.recv().await,
        Mode::Echo | Mode::Session { .. } => std::future::pending().await,
    }
}

/// Maps a read error to the close code the client deserves, and closes.
async fn refuse(socket: &mut Socket, error: WsError) -> End {
    let (code, reason) = match &error {
        WsError::Capacity(_) => (1009, "message too big"),
        WsError::Utf8(_) => (1007, "invalid UTF-8 in a text message"),
        WsError::Protocol(ProtocolError::ResetWithoutClosingHandshake) => {
            return End::ClientVanished
        }
        WsError::Protocol(_) => (1002, "protocol error"),
        _ => return End::Failed(error),
    };
    tracing::debug!(%error, code, "closing a client for a bad message");
    fail(socket, code, reason).await;
    End::Refused(code, reason)
}

/// Starts the closing handshake and waits (at most `wait`) for the client's close frame.
async fn close(socket: &mut Socket, code: u16, reason: &'static str, wait: Duration) {
    let handshake = async {
        if socket.send(close_message(code, reason)).await.is_ok() {
            // Whatever the client still sends before its close frame is discarded.
            while let Some(Ok(_)) = socket.next().await {}
        }
    };
    let _ = tokio::time::timeout(wait, handshake).await;
}

/// Closes after a read error, when the frame stream can no longer be parsed: sends the close
/// frame, ends our side of TCP, and discards what the client still sends (for at most
/// [`LINGER`]) so that the close frame is not destroyed by a TCP reset.
async fn fail(socket: &mut Socket, code: u16, reason: &'static str) {
    let sent = tokio::time::timeout(CLOSE_WAIT, socket.send(close_message(code, reason))).await;
    if !matches!(sent, Ok(Ok(()))) {
        return;
    }
    let io = socket.get_mut();
    let linger = async {
        if io.shutdown().await.is_err() {
            return;
        }
        // On the heap: an array here would make every connection task 4 KiB larger.
        let mut discard = vec![0u8; 4096];
        while let Ok(1..) = io.read(&mut discard).await {}
    };
    let _ = tokio::time::timeout(LINGER, linger).await;
}

fn close_message(code: u16, reason: &'static str) -> Message {
    Message::Close(Some(CloseFrame {
        code: CloseCode::from(code),
        reason: reason.into(),
    }))
}
