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
//!
//! With a Redis backplane, a session in a room also lives in Redis (its record, and the
//! room's history): another server can resume it (docs/session-protocol.md §8).

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, Weak};
use std::time::Duration;

use futures::{SinkExt, StreamExt};
use tokio::sync::watch;
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::Message as WsMessage;

use super::backplane::Origin;
use super::batch::{self, BatchWriter};
use super::history::{random_u64, History, Lost, Record, StreamEntry, StreamId, StreamMembership};
use super::liveness::{Check, Liveness};
use super::metrics::{Counter, Metrics};
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
/// A session's record in Redis is brought up to date at most this often while it changes.
const CHECKPOINT_EVERY: Duration = Duration::from_millis(50);
/// ... and at least this often (its expiry pushed back) while it does not.
const CHECKPOINT_REFRESH: Duration = Duration::from_secs(10);

/// The sessions' values in `/metrics`.
#[derive(Clone, Debug)]
pub(crate) struct SessionCounters {
    resumes: Counter,
    remote_resumes: Counter,
    gaps: Counter,
}

impl SessionCounters {
    /// Registers the session counters in `metrics`.
    pub(crate) fn register(metrics: &Metrics) -> Self {
        SessionCounters {
            resumes: metrics.counter(
                "unisock_session_resumes_total",
                "Acknowledged sessions resumed (on this server, or rebuilt here from Redis).",
            ),
            remote_resumes: metrics.counter(
                "unisock_session_remote_resumes_total",
                "Acknowledged sessions rebuilt here from their record and room history in Redis (resumed on another server than the last one).",
            ),
            gaps: metrics.counter(
                "unisock_session_gaps_total",
                "Session resumes that end in a gap reported to the client: a new session instead (unknown, expired, history trimmed, Redis unavailable), or messages dropped on overflow.",
            ),
        }
    }
}

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
    counters: SessionCounters,
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
    /// In a room with a backplane: the session lives in Redis too.
    shared: Option<Shared>,
}

/// What a session in a room with a backplane needs to keep its record in Redis.
#[derive(Debug)]
struct Shared {
    history: Arc<History>,
    rooms: Rooms,
    /// The record's Redis key (from the token's hash).
    key: String,
    room: String,
    notify_self: bool,
    /// The session's id in the room's stream entries.
    sid: u64,
    /// The connection that opened it (for the room's local fan-out).
    conn: u64,
}

#[derive(Debug)]
struct State {
    ack: AckState,
    /// Since when no connection is attached.
    detached_since: Option<Instant>,
    /// The room evicted this session (it fell too far behind): it ends.
    evicted: bool,
    /// Shared sessions: (outgoing seq, stream id) of the messages not acknowledged yet.
    ids: VecDeque<(u64, StreamId)>,
    /// Shared sessions: an outgoing seq and its stream id, from which another server can
    /// number the stream (`None`: Redis was unavailable when the session began; it cannot
    /// move to another server).
    anchor: Option<(u64, StreamId)>,
    /// Shared sessions: the last stream entry taken (live messages at or before it are
    /// already in).
    last_id: StreamId,
    /// Shared sessions: the record in Redis is behind.
    dirty: bool,
}

impl State {
    fn new(ack: AckState) -> Self {
        State {
            ack,
            detached_since: None,
            evicted: false,
            ids: VecDeque::new(),
            anchor: None,
            last_id: StreamId::ZERO,
            dirty: false,
        }
    }

    /// The client acknowledged everything up to `acked`: the anchor moves up to it.
    fn advance_anchor(&mut self, acked: u64) {
        while let Some(&(seq, id)) = self.ids.front() {
            if seq > acked {
                break;
            }
            self.ids.pop_front();
            if self.anchor.is_some() {
                self.anchor = Some((seq, id));
                self.dirty = true;
            }
        }
    }
}

#[derive(Debug)]
struct RoomLink {
    /// Without a backplane: the session's place in the local room.
    membership: Option<Membership>,
    /// With one: its place among the room's session members.
    _stream: Option<StreamMembership>,
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
    pub(crate) fn new(limits: SessionLimits, rooms: Rooms, counters: SessionCounters) -> Self {
        SessionStore {
            inner: Arc::new(StoreInner {
                sessions: Mutex::default(),
                tombstones: Mutex::default(),
                limits,
                rooms,
                counters,
            }),
        }
    }

    /// A fresh unguessable token: 128 bits from the OS's CSPRNG.
    fn new_token(&self) -> String {
        format!("{:016x}{:016x}", random_u64(), random_u64())
    }

    /// Resumes the session `token` (or starts one), for a client that received everything up
    /// to `received`; attaches the calling connection. Returns the session, how it went, and
    /// the attachment number.
    ///
    /// In a room with a backplane, a session this server does not have, or that another
    /// server has served since, is rebuilt from its record and the room's history in Redis.
    async fn open(
        &self,
        token: &str,
        received: u64,
        route: &Route,
        conn: u64,
    ) -> Result<(Arc<ServerSession>, Status, u64), Violation> {
        let history = match (route, self.inner.rooms.history()) {
            (Route::Room { .. }, Some(history)) => Some(Arc::clone(history)),
            _ => None,
        };
        let mut lost = None;
        if !token.is_empty() {
            let mut local = lock(&self.inner.sessions)
                .get(token)
                .filter(|session| &session.route == route)
                .cloned();
            if let Some(history) = &history {
                match history.record(token).await {
                    // Another room (or notify_self) than the session's: unknown, as on one
                    // server.
                    Ok(Some((record, _)))
                        if !matches!(route, Route::Room { name, notify_self }
                            if *name == record.room && *notify_self == record.notify_self) =>
                    {
                        lost = Some(Status::Unknown);
                        local = None;
                    }
                    Ok(Some((record, owner))) if local.is_none() || !history.is_mine(&owner) => {
                        if let Some(stale) = local.take() {
                            // Served elsewhere since: what this server has is out of date.
                            self.forget(&stale);
                        }
                        match self
                            .rebuild(history, token, record, received, route, conn)
                            .await
                        {
                            Ok(session) => {
                                self.inner.counters.resumes.inc();
                                self.inner.counters.remote_resumes.inc();
                                let attachment = session.attach();
                                self.insert(&session);
                                return Ok((session, Status::Resumed, attachment));
                            }
                            Err(Rebuild::Violation(v)) => return Err(v),
                            Err(Rebuild::Lost(why)) => {
                                tracing::debug!(?why, "session not resumable from Redis");
                                lost = Some(match why {
                                    Lost::Trimmed => Status::Expired,
                                    Lost::Unavailable => Status::Unknown,
                                });
                            }
                        }
                    }
                    // Not in Redis (expired or never there) and not here: unknown below.
                    Ok(None) if local.is_none() => lost = Some(Status::Unknown),
                    // This server's own, or Redis unavailable: as on a single server.
                    _ => {}
                }
            }
            if let (Some(session), None) = (local, lost) {
                {
                    let mut state = lock(&session.state);
                    if received >= state.ack.next_seq() {
                        return Err(Violation("resume claims messages never sent"));
                    }
                    state.detached_since = None;
                    state.dirty = true;
                }
                self.inner.counters.resumes.inc();
                let attachment = session.attach();
                return Ok((session, Status::Resumed, attachment));
            }
        }
        let status = if token.is_empty() {
            Status::New
        } else if lock(&self.inner.tombstones).1.contains(token) {
            Status::Expired
        } else {
            lost.unwrap_or(Status::Unknown)
        };
        if status != Status::New {
            self.inner.counters.gaps.inc();
        }
        let session = match (route, history) {
            (Route::Room { name, notify_self }, Some(history)) => {
                self.start_shared(history, name, *notify_self, route, conn)
                    .await
            }
            _ => self.start_local(route, conn),
        };
        let attachment = session.attach();
        self.insert(&session);
        Ok((session, status, attachment))
    }

    /// A new session without a backplane (echo, or a room on this server only).
    fn start_local(&self, route: &Route, conn: u64) -> Arc<ServerSession> {
        let session = Arc::new(ServerSession {
            token: self.new_token(),
            route: route.clone(),
            state: Mutex::new(State::new(AckState::new(self.inner.limits.buffer))),
            changes: watch::channel(0).0,
            attached: AtomicU64::new(0),
            room: Mutex::new(None),
            shared: None,
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
                    session.evict();
                }
            });
            *lock(&session.room) = Some(RoomLink {
                membership: Some(membership),
                _stream: None,
                drain: drain.abort_handle(),
            });
        }
        session
    }

    /// A new session in a room with a backplane: it takes the room's messages from the
    /// stream, from the room's last message on, and has a record in Redis.
    async fn start_shared(
        &self,
        history: Arc<History>,
        name: &str,
        notify_self: bool,
        route: &Route,
        conn: u64,
    ) -> Arc<ServerSession> {
        let token = self.new_token();
        // Joined before asking where the room stands: nothing published later is missed
        // (what was published before is dropped by its id).
        let (stream, rx) = history.members.join(name);
        let start = history.last_id(name).await;
        if let Some(start) = start {
            history.members.started(name, start);
        }
        let mut state = State::new(AckState::new(self.inner.limits.buffer));
        // Redis unavailable: from about now (stream ids are Redis's clock in milliseconds).
        state.last_id = start.unwrap_or_else(|| {
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap_or_default();
            StreamId(u64::try_from(now.as_millis()).unwrap_or(u64::MAX), 0)
        });
        state.anchor = start.map(|id| (0, id));
        let shared = Shared {
            key: history.record_key(&token),
            history,
            rooms: self.inner.rooms.clone(),
            room: name.to_owned(),
            notify_self,
            sid: random_u64(),
            conn,
        };
        let session = Arc::new(ServerSession {
            token,
            route: route.clone(),
            state: Mutex::new(state),
            changes: watch::channel(0).0,
            attached: AtomicU64::new(0),
            room: Mutex::new(None),
            shared: Some(shared),
        });
        session.link_stream(stream, rx);
        session.claim().await;
        session
    }

    /// Rebuilds the session `token` of `record` from the room's history in Redis.
    async fn rebuild(
        &self,
        history: &Arc<History>,
        token: &str,
        record: Record,
        received: u64,
        route: &Route,
        conn: u64,
    ) -> Result<Arc<ServerSession>, Rebuild> {
        // Live messages first, then the history: nothing falls in between (what comes both
        // ways is dropped by its id).
        let (stream, rx) = history.members.join(&record.room);
        let entries = history
            .since(&record.room, record.anchor, history.range_limit())
            .await
            .map_err(Rebuild::Lost)?;
        history.members.started(
            &record.room,
            entries.last().map_or(record.anchor, |entry| entry.id),
        );
        // The client's messages the session published: the record may be a little behind.
        let inbound = entries
            .iter()
            .filter(|entry| entry.sid == record.sid)
            .map(|entry| entry.inseq)
            .fold(record.received, u64::max)
            .min(super::history::MAX_SEQ);
        let mut state = State::new(AckState::resumed_at(
            self.inner.limits.buffer,
            record.seq.saturating_add(1),
            inbound,
        ));
        state.last_id = entries.last().map_or(record.anchor, |entry| entry.id);
        state.anchor = Some((record.seq, record.anchor));
        state.dirty = true;
        for entry in entries {
            if entry.sid == record.sid && !record.notify_self {
                continue;
            }
            state.push_entry(entry, self.inner.limits.buffer.max_messages);
        }
        if received >= state.ack.next_seq() {
            return Err(Rebuild::Violation(Violation(
                "resume claims messages never sent",
            )));
        }
        state.advance_anchor(received);
        let session = Arc::new(ServerSession {
            token: token.to_owned(),
            route: route.clone(),
            state: Mutex::new(state),
            changes: watch::channel(0).0,
            attached: AtomicU64::new(0),
            room: Mutex::new(None),
            shared: Some(Shared {
                history: Arc::clone(history),
                rooms: self.inner.rooms.clone(),
                key: history.record_key(token),
                room: record.room,
                notify_self: record.notify_self,
                sid: record.sid,
                conn,
            }),
        });
        session.link_stream(stream, rx);
        // This server owns it now: the previous one's late checkpoints are refused.
        session.claim().await;
        Ok(session)
    }

    /// Adds `session`, making room if the store is full.
    fn insert(&self, session: &Arc<ServerSession>) {
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
        sessions.insert(session.token.clone(), Arc::clone(session));
    }

    /// Drops a session that another server has taken over (no tombstone: it lives on).
    fn forget(&self, session: &Arc<ServerSession>) {
        {
            let mut sessions = lock(&self.inner.sessions);
            if sessions
                .get(&session.token)
                .is_some_and(|current| Arc::ptr_eq(current, session))
            {
                sessions.remove(&session.token);
            }
        }
        lock(&session.room).take();
        // Its connection, if one is still attached, ends as superseded.
        session.attach();
    }

    /// The connection with attachment number `attachment` ended: the grace period starts.
    fn detach(&self, session: &Arc<ServerSession>, attachment: u64) {
        if session.attached.load(Ordering::Acquire) != attachment {
            return; // Taken over by a newer connection.
        }
        let since = Instant::now();
        {
            let mut state = lock(&session.state);
            state.detached_since = Some(since);
            // Idle until a resume: no frame is built meanwhile.
            state.ack.release_buffers();
        }
        session.checkpoint();
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

/// Why a session could not be rebuilt from Redis.
#[derive(Debug)]
enum Rebuild {
    Lost(Lost),
    Violation(Violation),
}

impl State {
    /// Takes a stream entry (shared sessions) as the next outgoing message.
    fn push_entry(&mut self, entry: StreamEntry, max_ids: usize) {
        let seq = self.ack.push_evicting(from_ws(entry.message));
        self.ids.push_back((seq, entry.id));
        // Bounded like the replay buffer (an older anchor stays valid, just less precise).
        while self.ids.len() > max_ids.saturating_add(1) {
            self.ids.pop_front();
        }
    }
}

impl ServerSession {
    /// Starts moving the room's stream entries from `rx` into the replay buffer.
    fn link_stream(
        self: &Arc<Self>,
        stream: StreamMembership,
        mut rx: tokio::sync::mpsc::Receiver<StreamEntry>,
    ) {
        let weak: Weak<ServerSession> = Arc::downgrade(self);
        let drain = tokio::spawn(async move {
            while let Some(entry) = rx.recv().await {
                let Some(session) = weak.upgrade() else {
                    return;
                };
                session.take_entry(entry);
            }
            if let Some(session) = weak.upgrade() {
                session.evict();
            }
        });
        *lock(&self.room) = Some(RoomLink {
            membership: None,
            _stream: Some(stream),
            drain: drain.abort_handle(),
        });
    }

    /// A live stream entry for a shared session: queued unless already taken, or its own
    /// message without `notify_self`.
    fn take_entry(&self, entry: StreamEntry) {
        let Some(shared) = &self.shared else {
            return;
        };
        {
            let mut state = lock(&self.state);
            if entry.id <= state.last_id {
                return;
            }
            state.last_id = entry.id;
            if entry.sid == shared.sid && !shared.notify_self {
                return;
            }
            let max_ids = state.ack.unacked_len().max(1024);
            state.push_entry(entry, max_ids);
        }
        self.changed();
    }

    fn evict(&self) {
        lock(&self.state).evicted = true;
        self.changed();
    }

    /// The session's record as it stands, if it has one.
    fn record(&self, state: &State) -> Option<Record> {
        let shared = self.shared.as_ref()?;
        let (seq, anchor) = state.anchor?;
        Some(Record {
            room: shared.room.clone(),
            notify_self: shared.notify_self,
            sid: shared.sid,
            seq,
            anchor,
            received: state.ack.received(),
        })
    }

    /// Queues a write of the session's record to Redis (shared sessions only).
    fn checkpoint(&self) {
        let Some(shared) = &self.shared else {
            return;
        };
        let record = {
            let mut state = lock(&self.state);
            state.dirty = false;
            self.record(&state)
        };
        if let Some(record) = record {
            shared.history.checkpoint(&shared.key, record);
        }
    }

    /// Writes the session's record now, as this server's (shared sessions only).
    async fn claim(&self) {
        let Some(shared) = &self.shared else {
            return;
        };
        let record = {
            let mut state = lock(&self.state);
            state.dirty = false;
            self.record(&state)
        };
        if let Some(record) = record {
            if !shared.history.claim(&shared.key, &record).await {
                tracing::warn!("Redis backplane: could not write a session's record; it may not resume on another server");
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
    /// Closed with 1013: its buffer dropped messages this connection had not sent yet. The
    /// session is kept: its resume reports the gap (`Overflow`).
    Overflowed,
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
            SessionEnd::Overflowed => f.write_str(
                "closed with 1013 (session buffer overflowed), session kept for its resume",
            ),
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
    liveness: Liveness,
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
    let (session, status, attachment) = match store.open(&token, received, &route, conn).await {
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
        store,
        &session,
        status,
        received,
        attachment,
        &mut phase,
        shutdown_timeout,
        liveness,
    )
    .await;
    if matches!(end, SessionEnd::Evicted) {
        // Nothing more will come for it: no point keeping it.
        let removed = lock(&store.inner.sessions).remove(&session.token);
        if let Some(removed) = removed {
            store.bury(&removed);
        }
        if let Some(shared) = &session.shared {
            // Nor elsewhere: it missed messages, its numbering no longer follows the stream.
            shared.history.end(&shared.key).await;
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

#[allow(clippy::too_many_arguments)]
async fn run(
    socket: &mut Socket,
    store: &SessionStore,
    session: &Arc<ServerSession>,
    status: Status,
    received: u64,
    attachment: u64,
    phase: &mut PhaseWatch,
    shutdown_timeout: Duration,
    mut liveness: Liveness,
) -> SessionEnd {
    let mut changes = session.changes.subscribe();
    let (welcome, mut send_next) = {
        let mut state = lock(&session.state);
        let next = if status == Status::Resumed {
            (received + 1).max(state.ack.first_unacked())
        } else {
            1
        };
        if next > received + 1 {
            // The client reports messages dropped on overflow.
            store.inner.counters.gaps.inc();
        }
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
    // Shared sessions: when the record in Redis was last brought up to date.
    let mut checkpointed = Instant::now();
    // A ping from the client is answered with an ack on the next round.
    let mut ping_answer = false;
    let mut writer = BatchWriter::default();
    // Reused every round: no allocation per round (one round per message when they come one
    // by one).
    let mut frames = Vec::new();
    loop {
        // Everything the replay buffer holds beyond what this connection wrote.
        let (evicted, overflowed) = {
            let mut state = lock(&session.state);
            // Messages dropped from a full buffer before this connection sent them: the client
            // cannot be told on this connection (numbers never skip), so it resumes, and the
            // Welcome of its resume reports the gap.
            let overflowed = send_next < state.ack.first_unacked();
            while !overflowed && send_next < state.ack.next_seq() {
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
            (state.evicted, overflowed)
        };
        if overflowed {
            close(socket, 1013, "too slow: the session buffer overflowed").await;
            return SessionEnd::Overflowed;
        }
        for frame in frames.drain(..) {
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
        let checkpoint_at = match &session.shared {
            Some(_) if lock(&session.state).dirty => Some(checkpointed + CHECKPOINT_EVERY),
            Some(_) => Some(checkpointed + CHECKPOINT_REFRESH),
            None => None,
        };
        if checkpoint_at.is_some_and(|at| at <= Instant::now()) {
            session.checkpoint();
            checkpointed = Instant::now();
            continue;
        }
        let checkpoint_timer = async {
            match checkpoint_at {
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
            () = checkpoint_timer => {}
            check = liveness.check() => match check {
                Check::Alive => {}
                // Written out with the next round's flush.
                Check::Ping => {
                    if writer.feed(socket, WsMessage::Ping(Default::default())).await.is_err() {
                        return SessionEnd::Gone;
                    }
                }
                // A dead peer: the session waits for its client's next connection.
                Check::Gone => return SessionEnd::Gone,
            },
            incoming = socket.next() => {
                // Then whatever else has already arrived (bounded), so that one write and one
                // flush carry the answers to a burst.
                let mut incoming = Some(incoming);
                let mut round = 0;
                while let Some(next) = incoming.take() {
                    if let Some(Ok(_)) = &next {
                        liveness.heard();
                    }
                    match next {
                        Some(Ok(message @ (WsMessage::Text(_) | WsMessage::Binary(_)))) => {
                            match on_frame(session, from_ws(message), &mut send_next, &mut frames) {
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
///
/// An echo is framed at once when it is next in line for this connection (`send_next`): its
/// frame goes into `frames` (written by the next round) and is built from a copy, so the
/// payload lets go of tungstenite's read buffer now. Kept until then, the payloads of a burst
/// would pin the read buffer, and tungstenite would allocate a new one for every read.
fn on_frame(
    session: &Arc<ServerSession>,
    message: Message,
    send_next: &mut u64,
    frames: &mut Vec<Message>,
) -> Result<bool, Violation> {
    let frame = Frame::decode(message)?;
    let mut state = lock(&session.state);
    match frame {
        Frame::Data { seq, ack, message } => {
            state.ack.on_ack(ack)?;
            state.advance_anchor(ack);
            if state.ack.on_data(seq)? == Received::Duplicate {
                return Ok(false);
            }
            state.dirty = true;
            if let Some(shared) = &session.shared {
                drop(state);
                let origin = Origin {
                    sid: shared.sid,
                    inseq: seq,
                };
                let message = to_ws(message);
                shared
                    .rooms
                    .publish_from_session(&shared.room, shared.conn, origin, &message);
                return Ok(false);
            }
            match &session.route {
                Route::Echo => {
                    // Written by this connection's next round; nobody else to wake.
                    if *send_next == state.ack.next_seq() {
                        let (seq, frame) = state.ack.push_evicting_framed(message);
                        frames.push(frame);
                        *send_next = seq + 1;
                    } else {
                        state.ack.push_evicting(message);
                    }
                }
                Route::Room { notify_self, .. } => {
                    drop(state);
                    if let Some(membership) = lock(&session.room)
                        .as_ref()
                        .and_then(|room| room.membership.as_ref())
                    {
                        membership.publish(&to_ws(message), *notify_self);
                    }
                }
            }
        }
        Frame::Ack { ack } => {
            state.ack.on_ack(ack)?;
            state.advance_anchor(ack);
        }
        Frame::Ping { ack } => {
            state.ack.on_ack(ack)?;
            state.advance_anchor(ack);
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
