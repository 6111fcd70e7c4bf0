//! Acknowledged sessions on the server (`unisock.v1`, docs/session-protocol.md): the session
//! store with its grace period, each session's replay buffer, and the message loop of a
//! connection that runs one.
//!
//! A session outlives its connections: it keeps what it sent until the client acknowledges
//! it (bounded by [`ServerConfig::session_buffer_messages`](super::ServerConfig) and bytes;
//! beyond them the oldest are dropped and the client is told of the gap when it resumes),
//! what it received (to drop duplicates), and, for a room, its membership: broadcasts sent
//! while the client is away are buffered for it. A session whose client stays away longer
//! than the grace period is dropped. Tokens are never logged.

use std::collections::hash_map::RandomState;
use std::collections::{HashMap, HashSet, VecDeque};
use std::hash::BuildHasher;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, Weak};
use std::time::Duration;

use futures::{SinkExt, StreamExt};
use tokio::sync::watch;
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::Message as WsMessage;

use super::batch::{self, BatchWriter};
use super::rooms::{Membership, Rooms};
use super::shutdown::{Phase, PhaseWatch};
use super::upgrade::Socket;
use crate::session::ack::{AckState, Frame, Limits, Received, Status, Violation};
use crate::{Bytes, Message, Utf8Bytes};

/// How long a client has to send its Hello after the upgrade.
const HELLO_TIMEOUT: Duration = Duration::from_secs(10);
/// A standalone ack goes out after this many unacknowledged messages, or after [`ACK_DELAY`].
const ACK_EVERY: u64 = 64;
const ACK_DELAY: Duration = Duration::from_millis(20);
/// Expired tokens remembered, to tell "expired" from "unknown".
const TOMBSTONES: usize = 10_000;

/// Where a session's messages go.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Route {
    /// `/echo`: each message comes back.
    Echo,
    /// `/rooms/{room}`: each message goes to the room's other members (and to the sender with
    /// `notify_self`).
    Room { name: String, notify_self: bool },
}

/// Bounds and timing of the sessions.
#[derive(Clone, Copy, Debug)]
pub(crate) struct SessionLimits {
    pub(crate) grace: Duration,
    pub(crate) buffer: Limits,
    pub(crate) max_sessions: usize,
}

/// Every session of this server, by token.
#[derive(Clone, Debug)]
pub(crate) struct SessionStore {
    inner: Arc<StoreInner>,
}

#[derive(Debug)]
struct StoreInner {
    sessions: Mutex<HashMap<String, Arc<ServerSession>>>,
    /// Tokens of sessions that expired or were evicted (bounded, oldest forgotten first).
    tombstones: Mutex<(VecDeque<String>, HashSet<String>)>,
    limits: SessionLimits,
    rooms: Rooms,
    keys: (RandomState, RandomState),
    counter: AtomicU64,
}

/// One session.
#[derive(Debug)]
pub(crate) struct ServerSession {
    token: String,
    route: Route,
    state: Mutex<State>,
    /// Bumped on every change a connection must react to (new data, takeover, eviction).
    changes: watch::Sender<u64>,
    /// Identifies the connection currently attached (each attach takes a new number).
    attached: AtomicU64,
    room: Mutex<Option<RoomLink>>,
}

#[derive(Debug)]
struct State {
    ack: AckState,
    /// Since when no connection is attached.
    detached_since: Option<Instant>,
    /// The room evicted this session (it fell too far behind): it ends.
    evicted: bool,
}

#[derive(Debug)]
struct RoomLink {
    membership: Membership,
    /// The task moving the room's broadcasts into the replay buffer.
    drain: tokio::task::AbortHandle,
}

impl Drop for RoomLink {
    fn drop(&mut self) {
        self.drain.abort();
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

impl SessionStore {
    pub(crate) fn new(limits: SessionLimits, rooms: Rooms) -> Self {
        SessionStore {
            inner: Arc::new(StoreInner {
                sessions: Mutex::default(),
                tombstones: Mutex::default(),
                limits,
                rooms,
                keys: (RandomState::new(), RandomState::new()),
                counter: AtomicU64::new(0),
            }),
        }
    }

    /// A fresh unguessable token: 128 bits of SipHash keyed with the process's random
    /// `RandomState` keys, over a counter.
    fn new_token(&self) -> String {
        let n = self.inner.counter.fetch_add(1, Ordering::Relaxed);
        let a = self.inner.keys.0.hash_one(n);
        let b = self.inner.keys.1.hash_one(!n);
        format!("{a:016x}{b:016x}")
    }

    /// Resumes the session `token` (or starts one), for a client that received everything up
    /// to `received`; attaches the calling connection. Returns the session, how it went, and
    /// the attachment number.
    fn open(
        &self,
        token: &str,
        received: u64,
        route: &Route,
        conn: u64,
    ) -> Result<(Arc<ServerSession>, Status, u64), Violation> {
        if !token.is_empty() {
            let found = lock(&self.inner.sessions).get(token).cloned();
            match found {
                Some(session) if &session.route == route => {
                    {
                        let mut state = lock(&session.state);
                        if received >= state.ack.next_seq() {
                            return Err(Violation("resume claims messages never sent"));
                        }
                        state.detached_since = None;
                    }
                    let attachment = session.attach();
                    return Ok((session, Status::Resumed, attachment));
                }
                _ => {}
            }
        }
        let status = if token.is_empty() {
            Status::New
        } else if lock(&self.inner.tombstones).1.contains(token) {
            Status::Expired
        } else {
            Status::Unknown
        };
        let session = Arc::new(ServerSession {
            token: self.new_token(),
            route: route.clone(),
            state: Mutex::new(State {
                ack: AckState::new(self.inner.limits.buffer),
                detached_since: None,
                evicted: false,
            }),
            changes: watch::channel(0).0,
            attached: AtomicU64::new(0),
            room: Mutex::new(None),
        });
        if let Route::Room { name, .. } = route {
            let (membership, mut inbox) = self.inner.rooms.join(name, conn);
            let weak: Weak<ServerSession> = Arc::downgrade(&session);
            let drain = tokio::spawn(async move {
                while let Some(message) = inbox.recv().await {
                    let Some(session) = weak.upgrade() else {
                        return;
                    };
                    session.push(from_ws(message));
                }
                if let Some(session) = weak.upgrade() {
                    lock(&session.state).evicted = true;
                    session.changed();
                }
            });
            *lock(&session.room) = Some(RoomLink {
                membership,
                drain: drain.abort_handle(),
            });
        }
        let attachment = session.attach();
        let mut sessions = lock(&self.inner.sessions);
        if sessions.len() >= self.inner.limits.max_sessions {
            // Full: the session detached the longest goes (its client will hear "expired").
            let oldest = sessions
                .values()
                .filter_map(|s| lock(&s.state).detached_since.map(|t| (t, s.token.clone())))
                .min();
            if let Some((_, token)) = oldest {
                if let Some(evicted) = sessions.remove(&token) {
                    self.bury(&evicted);
                }
            }
        }
        sessions.insert(session.token.clone(), session.clone());
        Ok((session, status, attachment))
    }

    /// The connection with attachment number `attachment` ended: the grace period starts.
    fn detach(&self, session: &Arc<ServerSession>, attachment: u64) {
        if session.attached.load(Ordering::Acquire) != attachment {
            return; // Taken over by a newer connection.
        }
        let since = Instant::now();
        lock(&session.state).detached_since = Some(since);
        let store = self.clone();
        let weak = Arc::downgrade(session);
        let grace = self.inner.limits.grace;
        // Outside a runtime (it is shutting down) nothing outlives the process anyway.
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        runtime.spawn(async move {
            tokio::time::sleep_until(since + grace).await;
            let Some(session) = weak.upgrade() else {
                return;
            };
            if lock(&session.state).detached_since != Some(since) {
                return; // Resumed meanwhile.
            }
            let removed = {
                let mut sessions = lock(&store.inner.sessions);
                match sessions.get(&session.token) {
                    Some(current) if Arc::ptr_eq(current, &session) => {
                        sessions.remove(&session.token)
                    }
                    _ => None,
                }
            };
            if let Some(removed) = removed {
                tracing::debug!("session expired");
                store.bury(&removed);
            }
        });
    }

    /// Forgets a session for good, remembering its token as expired.
    fn bury(&self, session: &Arc<ServerSession>) {
        lock(&session.room).take();
        let mut tombstones = lock(&self.inner.tombstones);
        if tombstones.1.insert(session.token.clone()) {
            tombstones.0.push_back(session.token.clone());
        }
        while tombstones.0.len() > TOMBSTONES {
            if let Some(old) = tombstones.0.pop_front() {
                tombstones.1.remove(&old);
            }
        }
    }
}

impl ServerSession {
    fn attach(&self) -> u64 {
        let attachment = self.attached.fetch_add(1, Ordering::AcqRel) + 1;
        self.changed();
        attachment
    }

    fn changed(&self) {
        self.changes.send_modify(|n| *n = n.wrapping_add(1));
    }

    /// Queues a message for the client (sent now if attached, kept for replay either way).
    fn push(&self, message: Message) {
        lock(&self.state).ack.push_evicting(message);
        self.changed();
    }
}

// Both directions share the payload's buffer with tungstenite: no copy.
fn from_ws(message: WsMessage) -> Message {
    match message {
        WsMessage::Text(text) => Message::Text(Utf8Bytes::from_tungstenite(text)),
        WsMessage::Binary(bytes) => Message::Binary(bytes),
        _ => Message::Binary(Bytes::new()),
    }
}

fn to_ws(message: Message) -> WsMessage {
    match message {
        Message::Text(text) => WsMessage::Text(text.into_tungstenite()),
        Message::Binary(bytes) => WsMessage::Binary(bytes),
    }
}

/// How a session connection ended.
#[derive(Debug)]
pub(crate) enum SessionEnd {
    /// The client closed, or vanished; the session waits for it (grace period).
    Gone,
    /// Closed with 1001 at shutdown.
    ShuttingDown,
    /// A newer connection took the session over.
    Superseded,
    /// Closed with 1002: the client broke the session protocol.
    Violation(&'static str),
    /// Closed with 1013: fell behind its room.
    Evicted,
    /// No Hello in time.
    NoHello,
}

impl std::fmt::Display for SessionEnd {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SessionEnd::Gone => f.write_str("connection gone, session kept for its grace period"),
            SessionEnd::ShuttingDown => f.write_str("closed with 1001 (server shutting down)"),
            SessionEnd::Superseded => f.write_str("session taken over by a newer connection"),
            SessionEnd::Violation(what) => write!(f, "closed with 1002 ({what})"),
            SessionEnd::Evicted => f.write_str("closed with 1013 (too slow for its room)"),
            SessionEnd::NoHello => f.write_str("no session hello in time"),
        }
    }
}

/// Serves a connection that selected `unisock.v1` until it ends.
pub(crate) async fn serve(
    socket: &mut Socket,
    store: &SessionStore,
    route: Route,
    conn: u64,
    mut phase: PhaseWatch,
    shutdown_timeout: Duration,
) -> SessionEnd {
    let hello = match tokio::time::timeout(HELLO_TIMEOUT, socket.next()).await {
        Ok(Some(Ok(message @ (WsMessage::Text(_) | WsMessage::Binary(_))))) => {
            Frame::decode(from_ws(message))
        }
        Ok(_) => return SessionEnd::Gone,
        Err(_) => return SessionEnd::NoHello,
    };
    let (token, received) = match hello {
        Ok(Frame::Hello { token, received }) => (token, received),
        Ok(_) => return violation(socket, Violation("expected a hello frame")).await,
        Err(v) => return violation(socket, v).await,
    };
    let (session, status, attachment) = match store.open(&token, received, &route, conn) {
        Ok(opened) => opened,
        Err(v) => return violation(socket, v).await,
    };
    // Detaches however this ends, also when the connection task is dropped (`POST /drop`,
    // shutdown abort): the grace period always starts.
    let _attached = Attached {
        store,
        session: &session,
        attachment,
    };
    let end = run(
        socket,
        &session,
        status,
        received,
        attachment,
        &mut phase,
        shutdown_timeout,
    )
    .await;
    if matches!(end, SessionEnd::Evicted) {
        // Nothing more will come for it: no point keeping it.
        let removed = lock(&store.inner.sessions).remove(&session.token);
        if let Some(removed) = removed {
            store.bury(&removed);
        }
    }
    end
}

/// A connection's attachment to its session; detaches when dropped.
struct Attached<'a> {
    store: &'a SessionStore,
    session: &'a Arc<ServerSession>,
    attachment: u64,
}

impl Drop for Attached<'_> {
    fn drop(&mut self) {
        self.store.detach(self.session, self.attachment);
    }
}

async fn run(
    socket: &mut Socket,
    session: &Arc<ServerSession>,
    status: Status,
    received: u64,
    attachment: u64,
    phase: &mut PhaseWatch,
    shutdown_timeout: Duration,
) -> SessionEnd {
    let mut changes = session.changes.subscribe();
    let (welcome, mut send_next) = {
        let mut state = lock(&session.state);
        let next = if status == Status::Resumed {
            (received + 1).max(state.ack.first_unacked())
        } else {
            1
        };
        let acked = state.ack.received();
        // The welcome carries the ack: nothing is due on this connection yet.
        let _ = state.ack.ack_frame();
        let welcome = Frame::Welcome {
            token: session.token.clone(),
            status,
            acked,
            next,
        };
        (welcome.encode(), next)
    };
    if socket.send(to_ws(welcome)).await.is_err() {
        return SessionEnd::Gone;
    }
    let mut ack_deadline: Option<Instant> = None;
    // A ping from the client is answered with an ack on the next round.
    let mut ping_answer = false;
    let mut writer = BatchWriter::default();
    loop {
        // Everything the replay buffer holds beyond what this connection wrote.
        let (frames, evicted) = {
            let mut state = lock(&session.state);
            let mut frames = Vec::new();
            send_next = send_next.max(state.ack.first_unacked());
            while send_next < state.ack.next_seq() {
                frames.extend(state.ack.data_frame(send_next));
                send_next += 1;
            }
            let due = state.ack.ack_due();
            if std::mem::take(&mut ping_answer)
                || due >= ACK_EVERY
                || (due > 0 && ack_deadline.is_some_and(|at| at <= Instant::now()))
            {
                frames.push(state.ack.ack_frame());
            }
            if state.ack.ack_due() == 0 {
                ack_deadline = None;
            } else if ack_deadline.is_none() {
                ack_deadline = Some(Instant::now() + ACK_DELAY);
            }
            (frames, state.evicted)
        };
        for frame in frames {
            if writer.feed(socket, to_ws(frame)).await.is_err() {
                return SessionEnd::Gone;
            }
        }
        if writer.flush(socket).await.is_err() {
            return SessionEnd::Gone;
        }
        if evicted {
            close(socket, 1013, "too slow: fell behind the room").await;
            return SessionEnd::Evicted;
        }
        if session.attached.load(Ordering::Acquire) != attachment {
            return SessionEnd::Superseded;
        }
        let ack_timer = async {
            match ack_deadline {
                Some(at) => tokio::time::sleep_until(at).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            () = phase.reached(Phase::Closing) => {
                let goodbye = close(socket, 1001, "server shutting down");
                let _ = tokio::time::timeout(shutdown_timeout, goodbye).await;
                return SessionEnd::ShuttingDown;
            }
            changed = changes.changed() => {
                if changed.is_err() {
                    return SessionEnd::Gone;
                }
            }
            () = ack_timer => {}
            incoming = socket.next() => {
                // Then whatever else has already arrived (bounded), so that one write and one
                // flush carry the answers to a burst.
                let mut incoming = Some(incoming);
                let mut round = 0;
                while let Some(next) = incoming.take() {
                    match next {
                        Some(Ok(message @ (WsMessage::Text(_) | WsMessage::Binary(_)))) => {
                            match on_frame(session, from_ws(message)) {
                                Ok(ping) => ping_answer |= ping,
                                Err(v) => return violation(socket, v).await,
                            }
                        }
                        Some(Ok(_)) => {}
                        None | Some(Err(_)) => return SessionEnd::Gone,
                    }
                    round += 1;
                    if round < batch::BATCH {
                        incoming = batch::already_arrived(socket);
                    }
                }
            }
        }
    }
}

/// One frame from the client; `Ok(true)` for a ping, to be answered with an ack.
fn on_frame(session: &Arc<ServerSession>, message: Message) -> Result<bool, Violation> {
    let frame = Frame::decode(message)?;
    let mut state = lock(&session.state);
    match frame {
        Frame::Data { seq, ack, message } => {
            state.ack.on_ack(ack)?;
            if state.ack.on_data(seq)? == Received::Duplicate {
                return Ok(false);
            }
            match &session.route {
                Route::Echo => {
                    // Written by this connection's next round; nobody else to wake.
                    state.ack.push_evicting(message);
                }
                Route::Room { notify_self, .. } => {
                    drop(state);
                    if let Some(room) = &*lock(&session.room) {
                        room.membership.publish(&to_ws(message), *notify_self);
                    }
                }
            }
        }
        Frame::Ack { ack } => state.ack.on_ack(ack)?,
        Frame::Ping { ack } => {
            state.ack.on_ack(ack)?;
            return Ok(true);
        }
        Frame::Hello { .. } | Frame::Welcome { .. } => {
            return Err(Violation("handshake frame after the handshake"))
        }
    }
    Ok(false)
}

async fn violation(socket: &mut Socket, violation: Violation) -> SessionEnd {
    tracing::debug!(%violation, "closing a session client with 1002");
    close(socket, 1002, "session protocol violation").await;
    SessionEnd::Violation(violation.0)
}

async fn close(socket: &mut Socket, code: u16, reason: &'static str) {
    use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
    use tokio_tungstenite::tungstenite::protocol::CloseFrame;
    let frame = WsMessage::Close(Some(CloseFrame {
        code: CloseCode::from(code),
        reason: reason.into(),
    }));
    let handshake = async {
        if socket.send(frame).await.is_ok() {
            while let Some(Ok(_)) = socket.next().await {}
        }
    };
    let _ = tokio::time::timeout(Duration::from_secs(2), handshake).await;
}
