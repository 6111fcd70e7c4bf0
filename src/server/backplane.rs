//! The Redis backplane ([`ServerConfig::redis`](super::ServerConfig::redis)): rooms that span
//! servers.
//!
//! Every room message a client sends is delivered at once to the members on its own server
//! (as without a backplane), and handed to a publisher task that `PUBLISH`es it, wrapped in
//! an [envelope](Envelope), on the Redis channel `{prefix}room:{room}`. Every server has one
//! subscription to the pattern `{prefix}room:*` and delivers what arrives to its own members
//! of that room. A server skips the messages it published itself (the envelope names the
//! origin server) for its plain members, so each client gets each message exactly once, and
//! `notify_self` keeps its meaning: only the sender's own server, which handles it locally, can
//! deliver to the sender. (Acknowledged-session members take their own server's messages from
//! Redis too; see below.)
//!
//! Order: the messages of one sender reach every member in the order sent. Messages of
//! different senders may interleave differently on different servers (each server delivers
//! its own clients' messages before they have made the round trip through Redis).
//!
//! Slow members: on the sender's server a full member inbox slows the sender down for a
//! while (paced publishing); messages from other servers cannot wait like that (one
//! subscription serves every room), so a member that falls a full inbox behind on them is
//! evicted at once (close 1013), as with [`Rooms::deliver`].
//!
//! Redis going away never stops a server: local delivery goes on; the publisher and the
//! subscriber each log the loss once (at `error`), retry with exponential backoff and jitter
//! ([`RedisConfig::retry_min`] … [`RedisConfig::retry_max`]), and log when they are back. What
//! could not be published meanwhile is counted in `unisock_backplane_publish_errors_total`
//! (and the total logged on reconnection); what a server did not receive while its
//! subscription was down is counted, from gaps in each origin's sequence numbers, in
//! `unisock_backplane_missed_total` (see [`Metrics`]). Redis pub/sub has no replay, so those
//! messages are not delivered later.
//!
//! The Redis URL is never logged with its userinfo (password) or query string.
//!
//! # Acknowledged sessions across servers
//!
//! Each room message is also appended to the room's Redis stream (`{prefix}log:{room}`,
//! bounded by [`RedisConfig::history_max_len`] and [`RedisConfig::history_ttl`]), in the same
//! Lua script that publishes it, and the published envelope (version 2) carries the stream
//! id. Session members of a room take the room's messages only from the subscription, this
//! server's own included, so that their numbering follows the stream, and a session can
//! resume on another server from its record and the stream: see `history.rs` and
//! docs/session-protocol.md §8.

use std::collections::HashMap;
use std::fmt;
use std::hash::{BuildHasher, Hasher};
use std::io;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::{Bytes, Message, Utf8Bytes};

use super::history::{History, StreamEntry, StreamMembers, PUBLISH_SCRIPT};
use super::metrics::{Counter, Metrics};
use super::rooms::Rooms;
use super::shutdown::{Phase, PhaseWatch};

/// Where the Redis backplane is and how it behaves; see
/// [`ServerConfig::redis`](super::ServerConfig::redis).
///
/// Its `Debug` output shows the URL without userinfo or query string, so a password in the
/// URL (`redis://:secret@host:6379`) is never logged.
///
/// ```
/// use unisock::server::{RedisConfig, ServerConfig};
///
/// let config = ServerConfig {
///     redis: Some(RedisConfig::new("redis://:secret@127.0.0.1:6379/0")),
///     ..ServerConfig::default()
/// };
/// assert!(config.validate().is_ok());
/// assert!(!format!("{config:?}").contains("secret"));
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct RedisConfig {
    /// The Redis URL: `redis://[[user]:password@]host[:port][/db]` (`rediss://`, TLS, is not
    /// supported). It may hold a password: never log it as is; [`redacted_url`] gives a
    /// loggable form, and this type's `Debug` output uses it.
    ///
    /// [`redacted_url`]: Self::redacted_url
    pub url: String,
    /// Prefix of the Redis channels the backplane uses: a room's messages go on
    /// `{prefix}room:{room}`. Default `unisock:`. Servers share rooms only when they use
    /// the same Redis and the same prefix; a different prefix keeps independent groups of
    /// servers apart on one Redis. Must not contain the pattern characters `*?[]\`.
    pub channel_prefix: String,
    /// Most room messages waiting to be published. Default 65 536. Beyond it (Redis much
    /// slower than the clients), messages are not published, and counted as publish errors.
    pub publish_queue: usize,
    /// Most bytes of room messages waiting to be published (one message of any size is
    /// always taken into an empty queue). Default 64 MiB. Beyond it, as for
    /// [`publish_queue`](Self::publish_queue).
    pub publish_queue_bytes: usize,
    /// First delay before reconnecting to Redis after a failure. Default 100 ms; it doubles
    /// after each failed attempt, up to [`retry_max`](Self::retry_max), with random jitter.
    pub retry_min: Duration,
    /// Longest delay between two attempts to reconnect to Redis. Default 2 s: cross-server
    /// delivery resumes at most about that long after Redis is back.
    pub retry_max: Duration,
    /// How long connecting to Redis, and each of its answers, may take before the connection
    /// counts as lost. Default 5 s.
    pub timeout: Duration,
    /// About how many messages of each room Redis keeps (`XADD … MAXLEN ~`), for acknowledged
    /// sessions that resume on another server. Default 10 000. A session away for longer
    /// than its room takes to send this many messages resumes with a gap (see
    /// docs/session-protocol.md §8).
    pub history_max_len: usize,
    /// How long a room's history outlives its last message. Default 1 hour.
    pub history_ttl: Duration,
}

impl RedisConfig {
    /// The backplane on the Redis at `url` ([`url`](Self::url)), with the default settings.
    pub fn new(url: impl Into<String>) -> Self {
        RedisConfig {
            url: url.into(),
            channel_prefix: "unisock:".to_owned(),
            publish_queue: 65_536,
            publish_queue_bytes: 64 << 20,
            retry_min: Duration::from_millis(100),
            retry_max: Duration::from_secs(2),
            timeout: Duration::from_secs(5),
            history_max_len: 10_000,
            history_ttl: Duration::from_secs(3600),
        }
    }

    /// The Redis URL without userinfo and query string, safe to log or show.
    ///
    /// A URL that does not parse (it could be anything, a password included) is shown as
    /// `(unparsable URL)`.
    pub fn redacted_url(&self) -> String {
        match url::Url::parse(self.url.trim()) {
            Ok(parsed) if parsed.has_host() => crate::redact_url(parsed.as_str()),
            _ => "(unparsable URL)".to_owned(),
        }
    }

    /// Checks the URL and the settings; [`ServerConfig::validate`](super::ServerConfig::validate)
    /// calls it.
    ///
    /// # Errors
    ///
    /// An [`io::ErrorKind::InvalidInput`] error saying what is wrong (naming the URL only in
    /// its redacted form).
    pub fn validate(&self) -> io::Result<()> {
        let invalid = |what: String| Err(io::Error::new(io::ErrorKind::InvalidInput, what));
        if let Err(error) = redis::Client::open(self.url.as_str()) {
            // The error's kind only: its text may quote the URL.
            return invalid(format!(
                "invalid Redis URL {:?} ({:?}); expected redis://[:password@]host[:port][/db]",
                self.redacted_url(),
                error.kind()
            ));
        }
        if self.channel_prefix.contains(['*', '?', '[', ']', '\\']) {
            return invalid("the Redis channel prefix must not contain * ? [ ] or \\".to_owned());
        }
        if self.publish_queue == 0 || self.publish_queue_bytes == 0 {
            return invalid("the Redis publish queue must hold at least 1 message".to_owned());
        }
        if self.history_max_len == 0 || self.history_ttl < Duration::from_millis(1) {
            return invalid("the room history must keep at least 1 message for 1 ms".to_owned());
        }
        if self.retry_min.is_zero() || self.retry_max < self.retry_min || self.timeout.is_zero() {
            return invalid(
                "Redis retry delays and timeout must be longer than zero, retry_max at least retry_min"
                    .to_owned(),
            );
        }
        Ok(())
    }

    /// The channel of `room`.
    fn channel(&self, room: &str) -> String {
        format!("{}room:{room}", self.channel_prefix)
    }

    /// The Redis stream holding the history of `room`.
    pub(crate) fn history_key(&self, room: &str) -> String {
        format!("{}log:{room}", self.channel_prefix)
    }

    /// The room of `channel`, if it is one of ours.
    fn room<'a>(&self, channel: &'a str) -> Option<&'a str> {
        channel
            .strip_prefix(self.channel_prefix.as_str())?
            .strip_prefix("room:")
    }
}

impl fmt::Debug for RedisConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisConfig")
            .field("url", &self.redacted_url())
            .field("channel_prefix", &self.channel_prefix)
            .field("publish_queue", &self.publish_queue)
            .field("publish_queue_bytes", &self.publish_queue_bytes)
            .field("retry_min", &self.retry_min)
            .field("retry_max", &self.retry_max)
            .field("timeout", &self.timeout)
            .field("history_max_len", &self.history_max_len)
            .field("history_ttl", &self.history_ttl)
            .finish()
    }
}

/// Starts the backplane of `config` for `rooms` (tasks that stop when the server stops, as
/// `phase` tells) and returns `rooms` publishing to it.
///
/// Must be called inside a tokio runtime. Nothing connects yet when this returns: the tasks
/// connect (and retry) in the background, and the server serves its local rooms meanwhile.
/// `config` must have passed [`RedisConfig::validate`] (an invalid URL is logged, and the
/// rooms stay local).
pub(crate) fn attach(
    rooms: Rooms,
    config: &RedisConfig,
    metrics: &Metrics,
    phase: &PhaseWatch,
    session_grace: Duration,
) -> Rooms {
    let client = match redis::Client::open(config.url.as_str()) {
        Ok(client) => client,
        Err(error) => {
            tracing::error!(url = %config.redacted_url(), kind = ?error.kind(), "Redis backplane: invalid URL; rooms stay local");
            return rooms;
        }
    };
    let counters = BackplaneCounters::register(metrics);
    let server = random_id();
    let (tx, rx) = mpsc::channel(config.publish_queue);
    let publisher = Publisher {
        tx,
        queued: Arc::default(),
        max_bytes: config.publish_queue_bytes,
        errors: counters.publish_errors.clone(),
        full_logged: Arc::default(),
    };
    tracing::info!(url = %config.redacted_url(), server = format_args!("{server:032x}"), "Redis backplane: starting");
    let publishing = PublishTask {
        client: client.clone(),
        config: config.clone(),
        server,
        counters: counters.clone(),
        full_logged: Arc::clone(&publisher.full_logged),
        queued: Arc::clone(&publisher.queued),
        script: super::history::sha1_hex(PUBLISH_SCRIPT),
    };
    let members = StreamMembers::default();
    let history = History::start(
        client.clone(),
        config,
        server,
        members.clone(),
        session_grace,
        phase,
    );
    let subscribing = SubscribeTask {
        client,
        config: config.clone(),
        server,
        counters,
        rooms: rooms.clone(),
        members,
        history: Arc::clone(&history),
    };
    let mut stop = phase.clone();
    tokio::spawn(async move {
        tokio::select! {
            () = stop.reached(Phase::Abort) => {}
            () = publishing.run(rx) => {}
        }
    });
    let mut stop = phase.clone();
    tokio::spawn(async move {
        tokio::select! {
            () = stop.reached(Phase::Abort) => {}
            () = subscribing.run() => {}
        }
    });
    rooms.with_backplane(publisher, history)
}

/// The backplane's counters (see [`Metrics`] for their meaning).
#[derive(Clone, Debug)]
struct BackplaneCounters {
    published: Counter,
    publish_errors: Counter,
    received: Counter,
    missed: Counter,
    invalid: Counter,
    reconnects: Counter,
    publisher_up: Arc<AtomicBool>,
    subscriber_up: Arc<AtomicBool>,
}

impl BackplaneCounters {
    fn register(metrics: &Metrics) -> Self {
        let publisher_up = Arc::new(AtomicBool::new(false));
        let subscriber_up = Arc::new(AtomicBool::new(false));
        let (publishing, subscribing) = (Arc::clone(&publisher_up), Arc::clone(&subscriber_up));
        metrics.gauge_fn(
            "unisock_backplane_up",
            "1 while both connections to Redis (publish and subscribe) are up, else 0.",
            move || {
                i64::from(publishing.load(Ordering::Relaxed) && subscribing.load(Ordering::Relaxed))
            },
        );
        BackplaneCounters {
            published: metrics.counter(
                "unisock_backplane_published_total",
                "Room messages published to Redis.",
            ),
            publish_errors: metrics.counter(
                "unisock_backplane_publish_errors_total",
                "Room messages that could not be published to Redis (Redis down or failing, or the publish queue full); members on other servers did not get them.",
            ),
            received: metrics.counter(
                "unisock_backplane_received_total",
                "Room messages from other servers delivered to this server's rooms.",
            ),
            missed: metrics.counter(
                "unisock_backplane_missed_total",
                "Room messages other servers published that this server did not receive (gaps in their sequence numbers).",
            ),
            invalid: metrics.counter(
                "unisock_backplane_invalid_total",
                "Malformed messages on the backplane's Redis channels, ignored.",
            ),
            reconnects: metrics.counter(
                "unisock_backplane_reconnects_total",
                "Connections to Redis re-established after a loss.",
            ),
            publisher_up,
            subscriber_up,
        }
    }
}

/// A room message on its way to the publisher task.
#[derive(Debug)]
struct Outgoing {
    room: String,
    conn: u64,
    origin: Origin,
    message: Message,
}

/// The acknowledged session a room message comes from, if any: its id and its incoming
/// sequence number of the message (both 0 for a plain connection).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Origin {
    pub(crate) sid: u64,
    pub(crate) inseq: u64,
}

/// The rooms' end of the backplane: hands room messages to the publisher task, never waiting.
#[derive(Clone, Debug)]
pub(crate) struct Publisher {
    tx: mpsc::Sender<Outgoing>,
    /// Bytes of messages in `tx`'s queue, shared with the publisher task.
    queued: Arc<AtomicUsize>,
    /// [`RedisConfig::publish_queue_bytes`].
    max_bytes: usize,
    errors: Counter,
    /// Whether "queue full" has been logged since the publisher last caught up.
    full_logged: Arc<AtomicBool>,
}

impl Publisher {
    /// Queues `message`, sent in `room` by connection `conn`, for publishing; counts it as a
    /// publish error if the queue is full.
    pub(crate) fn publish(&self, room: &str, conn: u64, origin: Origin, message: &Message) {
        let size = message.len();
        let queued = self.queued.load(Ordering::Acquire);
        if queued > 0 && queued.saturating_add(size) > self.max_bytes {
            self.queue_full();
            return;
        }
        self.queued.fetch_add(size, Ordering::AcqRel);
        let outgoing = Outgoing {
            room: room.to_owned(),
            conn,
            origin,
            message: message.clone(),
        };
        if let Err(error) = self.tx.try_send(outgoing) {
            self.queued.fetch_sub(size, Ordering::AcqRel);
            match error {
                mpsc::error::TrySendError::Full(_) => self.queue_full(),
                // The publisher task has stopped: the server is shutting down.
                mpsc::error::TrySendError::Closed(_) => self.errors.inc(),
            }
        }
    }

    /// Counts a message that did not fit in the queue; logs the first since it last drained.
    fn queue_full(&self) {
        self.errors.inc();
        if !self.full_logged.swap(true, Ordering::Relaxed) {
            tracing::error!(
                "Redis backplane: publish queue full (Redis too slow): room messages reach only this server's members until it catches up"
            );
        }
    }
}

/// The envelope of a room message on Redis: who sent it, its place in its server's sequence,
/// its place in the room's history, and the message.
///
/// ```text
/// byte 0       version (2; 1 for servers without history, which had no bytes 34-49)
/// byte 1       kind: 0 text, 1 binary
/// bytes 2-17   origin server id (random per server start), big-endian
/// bytes 18-25  origin connection id, big-endian
/// bytes 26-33  origin sequence number (1, 2, … per origin server), big-endian
/// bytes 34-41  origin session id (0: not an acknowledged session), big-endian
/// bytes 42-49  the origin session's incoming sequence number of the message, big-endian
/// byte 50      length L of the stream id (published messages only)
/// 51 .. 51+L   the message's stream id, ASCII `ms-seq` (published messages only)
/// then         the message's payload
/// ```
///
/// The room's stream keeps bytes 0-49 (field `h`) and the payload (field `p`) of each entry;
/// the Lua script that appends it publishes them with the new entry's id in between.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Envelope {
    pub(crate) server: u128,
    pub(crate) conn: u64,
    pub(crate) seq: u64,
    pub(crate) sid: u64,
    pub(crate) inseq: u64,
    /// The stream id (published messages of version 2 only).
    pub(crate) id: Option<super::history::StreamId>,
    pub(crate) message: Message,
}

const VERSION: u8 = 2;
const VERSION_1: u8 = 1;
const HEADER_1: usize = 34;
const HEADER: usize = 50;
const TEXT: u8 = 0;
const BINARY: u8 = 1;

impl Envelope {
    /// Header (bytes 0-49) and payload of `message`; `None` for control messages (never
    /// published).
    fn encode(
        server: u128,
        conn: u64,
        seq: u64,
        origin: Origin,
        message: &Message,
    ) -> Option<(Vec<u8>, &[u8])> {
        let (kind, payload): (u8, &[u8]) = match message {
            Message::Text(text) => (TEXT, text.as_bytes()),
            Message::Binary(bytes) => (BINARY, bytes),
            _ => return None,
        };
        let mut header = Vec::with_capacity(HEADER);
        header.push(VERSION);
        header.push(kind);
        header.extend_from_slice(&server.to_be_bytes());
        header.extend_from_slice(&conn.to_be_bytes());
        header.extend_from_slice(&seq.to_be_bytes());
        header.extend_from_slice(&origin.sid.to_be_bytes());
        header.extend_from_slice(&origin.inseq.to_be_bytes());
        Some((header, payload))
    }

    /// Parses published bytes; `None` if they are not a valid envelope (including a text
    /// payload that is not UTF-8).
    fn decode(bytes: &[u8]) -> Option<Envelope> {
        match *bytes.first()? {
            VERSION_1 => Envelope::parse(bytes.get(..HEADER_1)?, None, &bytes[HEADER_1..]),
            VERSION => {
                let header = bytes.get(..HEADER)?;
                let len = usize::from(*bytes.get(HEADER)?);
                let id = bytes.get(HEADER + 1..HEADER + 1 + len)?;
                let id = super::history::StreamId::parse(id)?;
                Envelope::parse(header, Some(id), &bytes[HEADER + 1 + len..])
            }
            _ => None,
        }
    }

    /// Parses a stream entry's header and payload.
    pub(crate) fn from_entry(header: &[u8], payload: &[u8]) -> Option<Envelope> {
        if header.len() != HEADER || header[0] != VERSION {
            return None;
        }
        Envelope::parse(header, None, payload)
    }

    fn parse(
        header: &[u8],
        id: Option<super::history::StreamId>,
        payload: &[u8],
    ) -> Option<Envelope> {
        let number = |range: std::ops::Range<usize>| -> Option<u64> {
            Some(u64::from_be_bytes(header.get(range)?.try_into().ok()?))
        };
        let server = u128::from_be_bytes(header.get(2..18)?.try_into().ok()?);
        let (sid, inseq) = if header.len() >= HEADER {
            (number(34..42)?, number(42..50)?)
        } else {
            (0, 0)
        };
        let message = match header[1] {
            TEXT => Message::Text(Utf8Bytes::try_from(payload.to_vec()).ok()?),
            BINARY => Message::Binary(Bytes::copy_from_slice(payload)),
            _ => return None,
        };
        Some(Envelope {
            server,
            conn: number(18..26)?,
            seq: number(26..34)?,
            sid,
            inseq,
            id,
            message,
        })
    }
}

/// Most messages sent to Redis in one pipeline.
const BATCH: usize = 256;

/// Bytes after which no more messages join a pipeline (it always takes one).
const BATCH_BYTES: usize = 1 << 20;

/// How often an idle subscription, or an idle publisher, checks that Redis still answers.
const PING_EVERY: Duration = Duration::from_secs(10);

/// Origins whose last sequence number a subscriber remembers; beyond it, it forgets them all
/// (each server restart is a new origin).
const MAX_ORIGINS: usize = 4096;

/// The task that publishes room messages.
struct PublishTask {
    client: redis::Client,
    config: RedisConfig,
    server: u128,
    counters: BackplaneCounters,
    full_logged: Arc<AtomicBool>,
    /// [`Publisher::queued`].
    queued: Arc<AtomicUsize>,
    /// The SHA-1 of [`PUBLISH_SCRIPT`], to call it with `EVALSHA`.
    script: String,
}

impl PublishTask {
    /// A connection for publishing, with the publish script loaded (called by its hash:
    /// Redis then runs about a quarter more of them per second than with `EVAL` and the
    /// source each time). Should Redis lose its script cache without closing the connection
    /// (`SCRIPT FLUSH`), the next batch fails, and the reconnection loads it again.
    async fn connect(&self) -> redis::RedisResult<redis::aio::MultiplexedConnection> {
        let mut connection = connect(&self.client, &self.config).await?;
        let mut load = redis::cmd("SCRIPT");
        load.arg("LOAD").arg(PUBLISH_SCRIPT);
        match tokio::time::timeout(
            self.config.timeout,
            load.query_async::<String>(&mut connection),
        )
        .await
        {
            Ok(Ok(_)) => Ok(connection),
            Ok(Err(error)) => Err(error),
            Err(_elapsed) => {
                Err(io::Error::new(io::ErrorKind::TimedOut, "no answer in time").into())
            }
        }
    }

    /// Connects, publishes what `rx` brings in pipelined batches, and reconnects after a
    /// failure, counting what cannot be published; returns once every sender is gone.
    async fn run(self, mut rx: mpsc::Receiver<Outgoing>) {
        let url = self.config.redacted_url();
        let mut backoff = Backoff::new(&self.config, self.server);
        let mut seq = 0u64;
        let mut connection = None;
        // Messages not published since the connection was lost, for the log line when it
        // is back; `None` while connected (and before the first connection).
        let mut lost: Option<u64> = None;
        let mut batch = Vec::with_capacity(BATCH);
        loop {
            let Some(live) = &mut connection else {
                match self.connect().await {
                    Ok(fresh) => {
                        connection = Some(fresh);
                        backoff.reset();
                        self.counters.publisher_up.store(true, Ordering::Relaxed);
                        match lost.take() {
                            Some(dropped) => {
                                self.counters.reconnects.inc();
                                tracing::info!(%url, not_published = dropped, "Redis backplane: publisher reconnected; {dropped} room messages could not be published while disconnected");
                            }
                            None => tracing::info!(%url, "Redis backplane: publisher connected"),
                        }
                    }
                    Err(error) => {
                        let first = backoff.is_fresh();
                        let delay = backoff.next_delay();
                        if first {
                            tracing::error!(%url, %error, retry_in = ?delay, "Redis backplane: cannot connect the publisher; room messages reach only this server's members until it can; retrying with backoff");
                        } else {
                            if backoff.worth_logging() {
                                tracing::warn!(%url, %error, retry_in = ?delay, attempts = backoff.attempts, "Redis backplane: cannot connect the publisher");
                            }
                        }
                        let dropped = self.drop_for(&mut rx, delay).await;
                        *lost.get_or_insert(0) += dropped;
                        if rx.is_closed() && rx.is_empty() {
                            return;
                        }
                    }
                }
                continue;
            };
            let first = tokio::select! {
                first = rx.recv() => first,
                () = tokio::time::sleep(PING_EVERY) => {
                    // Idle: check the connection, so that a lost one is noticed (and
                    // replaced) before the next message needs it.
                    let ping = redis::cmd("PING");
                    let answered =
                        tokio::time::timeout(self.config.timeout, ping.query_async::<()>(live)).await;
                    if !matches!(answered, Ok(Ok(()))) {
                        self.counters.publisher_up.store(false, Ordering::Relaxed);
                        connection = None;
                        lost = Some(0);
                        tracing::error!(%url, "Redis backplane: lost the publisher's connection to Redis (no answer to PING); room messages reach only this server's members until it is back; retrying");
                    }
                    continue;
                }
            };
            let Some(first) = first else {
                return;
            };
            let mut bytes = first.message.len();
            batch.push(first);
            while batch.len() < BATCH && bytes < BATCH_BYTES {
                let Ok(next) = rx.try_recv() else {
                    break;
                };
                bytes += next.message.len();
                batch.push(next);
            }
            self.queued.fetch_sub(bytes, Ordering::AcqRel);
            let mut pipe = redis::pipe();
            let mut count = 0u64;
            for outgoing in batch.drain(..) {
                // Only text and binary messages reach the rooms; anything else is skipped.
                let Some((header, payload)) = Envelope::encode(
                    self.server,
                    outgoing.conn,
                    seq + 1,
                    outgoing.origin,
                    &outgoing.message,
                ) else {
                    continue;
                };
                seq += 1;
                count += 1;
                // Appended to the room's history and published in one step: pub/sub order is
                // history order.
                pipe.cmd("EVALSHA")
                    .arg(&self.script)
                    .arg(2)
                    .arg(self.config.history_key(&outgoing.room))
                    .arg(self.config.channel(&outgoing.room))
                    .arg(self.config.history_max_len)
                    .arg(u64::try_from(self.config.history_ttl.as_millis()).unwrap_or(u64::MAX))
                    .arg(header)
                    .arg(payload)
                    .ignore();
            }
            if count == 0 {
                continue;
            }
            let mut sent = self.send(live, &pipe).await;
            if matches!(&sent, Err(Some(error)) if error.is_io_error() || error.is_connection_dropped())
            {
                // The connection broke before the batch went out, perhaps long ago (Redis
                // restarted while this server had nothing to publish): one fresh connection,
                // at once, before counting the batch as lost. (Receivers drop sequence numbers
                // they have seen, should part of it have gone out after all.)
                if let Ok(fresh) = self.connect().await {
                    *live = fresh;
                    self.counters.reconnects.inc();
                    tracing::info!(%url, "Redis backplane: publisher reconnected");
                    sent = self.send(live, &pipe).await;
                }
            }
            let error = match sent {
                Ok(()) => {
                    self.counters.published.add(count);
                    if rx.is_empty() {
                        self.full_logged.store(false, Ordering::Relaxed);
                    }
                    continue;
                }
                Err(Some(error)) => error.to_string(),
                Err(None) => "no answer in time".to_owned(),
            };
            self.counters.publish_errors.add(count);
            self.counters.publisher_up.store(false, Ordering::Relaxed);
            connection = None;
            lost = Some(count);
            tracing::error!(%url, %error, "Redis backplane: lost the publisher's connection to Redis; room messages reach only this server's members until it is back; retrying");
        }
    }

    /// Sends `pipe` on `connection`: `Err(None)` if Redis did not answer in time.
    async fn send(
        &self,
        connection: &mut redis::aio::MultiplexedConnection,
        pipe: &redis::Pipeline,
    ) -> Result<(), Option<redis::RedisError>> {
        match tokio::time::timeout(self.config.timeout, pipe.query_async::<()>(connection)).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(error)) => Err(Some(error)),
            Err(_elapsed) => Err(None),
        }
    }

    /// Waits `delay`, counting every message that arrives meanwhile as not published;
    /// returns how many. Returns early once every sender is gone and the queue is empty.
    async fn drop_for(&self, rx: &mut mpsc::Receiver<Outgoing>, delay: Duration) -> u64 {
        let mut dropped = 0;
        let sleep = tokio::time::sleep(delay);
        tokio::pin!(sleep);
        loop {
            tokio::select! {
                () = &mut sleep => return dropped,
                outgoing = rx.recv() => match outgoing {
                    Some(outgoing) => {
                        self.queued.fetch_sub(outgoing.message.len(), Ordering::AcqRel);
                        self.counters.publish_errors.inc();
                        dropped += 1;
                    }
                    None => return dropped,
                },
            }
        }
    }
}

/// A connection for publishing, with the configured timeouts.
pub(crate) async fn connect(
    client: &redis::Client,
    config: &RedisConfig,
) -> redis::RedisResult<redis::aio::MultiplexedConnection> {
    let settings = redis::AsyncConnectionConfig::new()
        .set_connection_timeout(Some(config.timeout))
        .set_response_timeout(Some(config.timeout));
    let connecting = client.get_multiplexed_async_connection_with_config(&settings);
    // The client's own timeout covers the TCP connect; this one also bounds the handshake.
    match tokio::time::timeout(config.timeout.saturating_mul(2), connecting).await {
        Ok(result) => result,
        Err(_elapsed) => Err(io::Error::new(io::ErrorKind::TimedOut, "no answer in time").into()),
    }
}

/// The task that receives the other servers' room messages.
struct SubscribeTask {
    client: redis::Client,
    config: RedisConfig,
    server: u128,
    counters: BackplaneCounters,
    rooms: Rooms,
    /// Session members: they get every message, this server's own too, with its stream id.
    members: StreamMembers,
    /// Where session members catch up from after the subscription was down.
    history: Arc<History>,
}

impl SubscribeTask {
    /// Subscribes, delivers, and resubscribes after a failure, forever.
    async fn run(self) {
        let url = self.config.redacted_url();
        let pattern = format!("{}room:*", self.config.channel_prefix);
        let mut backoff = Backoff::new(&self.config, self.server.rotate_left(64));
        let mut last_seq: HashMap<u128, u64> = HashMap::new();
        let mut was_connected = false;
        loop {
            let subscribed = tokio::time::timeout(self.config.timeout, async {
                let mut pubsub = self.client.get_async_pubsub().await?;
                pubsub.psubscribe(&pattern).await?;
                Ok::<_, redis::RedisError>(pubsub)
            })
            .await;
            let pubsub = match subscribed {
                Ok(Ok(pubsub)) => pubsub,
                failed => {
                    let error = match failed {
                        Ok(Err(error)) => error.to_string(),
                        _ => "no answer in time".to_owned(),
                    };
                    let first = backoff.is_fresh();
                    let delay = backoff.next_delay();
                    if first {
                        tracing::error!(%url, %error, retry_in = ?delay, "Redis backplane: cannot subscribe; room messages from other servers do not arrive until it can; retrying with backoff");
                    } else {
                        if backoff.worth_logging() {
                            tracing::warn!(%url, %error, retry_in = ?delay, attempts = backoff.attempts, "Redis backplane: cannot subscribe");
                        }
                    }
                    tokio::time::sleep(delay).await;
                    continue;
                }
            };
            backoff.reset();
            self.counters.subscriber_up.store(true, Ordering::Relaxed);
            if was_connected {
                self.counters.reconnects.inc();
                tracing::info!(%url, "Redis backplane: subscriber reconnected; receiving other servers' room messages again");
            } else {
                tracing::info!(%url, "Redis backplane: subscribed");
            }
            was_connected = true;
            // What was published while not subscribed: session members get it from the
            // history (new messages wait in the subscription meanwhile).
            self.catch_up().await;
            let error = self.receive(pubsub, &mut last_seq).await;
            self.counters.subscriber_up.store(false, Ordering::Relaxed);
            tracing::error!(%url, %error, "Redis backplane: lost the subscription; room messages from other servers do not arrive until it is back; retrying");
        }
    }

    /// Hands the session members of each room the entries after the last one they got (they
    /// drop what they have). A room whose history cannot be read, or no longer reaches back,
    /// loses its session members: their numbering would no longer follow the stream.
    async fn catch_up(&self) {
        for (room, last) in self.members.positions() {
            match self
                .history
                .since(&room, last, self.history.range_limit())
                .await
            {
                Ok(entries) => {
                    for entry in &entries {
                        self.members.deliver(&room, entry);
                    }
                }
                Err(why) => {
                    tracing::warn!(?why, "Redis backplane: cannot catch a room's session members up after the subscription was down; ending their sessions");
                    self.members.evict(&room);
                }
            }
        }
    }

    /// Delivers what the subscription brings until it fails; returns why.
    async fn receive(
        &self,
        pubsub: redis::aio::PubSub,
        last_seq: &mut HashMap<u128, u64>,
    ) -> String {
        let (mut sink, mut stream) = pubsub.split();
        let mut ping =
            tokio::time::interval_at(tokio::time::Instant::now() + PING_EVERY, PING_EVERY);
        loop {
            tokio::select! {
                message = stream.next() => match message {
                    Some(message) => self.deliver(&message, last_seq),
                    None => return "connection closed".to_owned(),
                },
                _ = ping.tick() => {
                    let answered = tokio::time::timeout(self.config.timeout, sink.ping::<redis::Value>()).await;
                    match answered {
                        Ok(Ok(_)) => {}
                        Ok(Err(error)) => return error.to_string(),
                        Err(_elapsed) => return "no answer to PING in time".to_owned(),
                    }
                }
            }
        }
    }

    /// Delivers one published message to this server's members of its room (the plain ones
    /// unless this server published it), and to its session members.
    fn deliver(&self, message: &redis::Msg, last_seq: &mut HashMap<u128, u64>) {
        let bytes = message.get_payload_bytes();
        let room = self.config.room(message.get_channel_name());
        // This server's own messages come back too: skipped before anything is copied,
        // unless a session member here takes them.
        let own = bytes.get(2..18) == Some(&self.server.to_be_bytes()[..]);
        if own && !room.is_some_and(|room| self.members.has(room)) {
            return;
        }
        let envelope = Envelope::decode(bytes);
        let (Some(room), Some(envelope)) = (room, envelope) else {
            self.counters.invalid.inc();
            return;
        };
        if let Some(id) = envelope.id {
            self.members.deliver(
                room,
                &StreamEntry {
                    id,
                    sid: envelope.sid,
                    inseq: envelope.inseq,
                    message: envelope.message.clone(),
                },
            );
        }
        if envelope.server == self.server {
            return;
        }
        match in_sequence(last_seq, envelope.server, envelope.seq) {
            None => return,
            Some(0) => {}
            Some(missed) => self.counters.missed.add(missed),
        }
        self.counters.received.inc();
        self.rooms.deliver(room, &envelope.message);
    }
}

/// Records message `seq` of origin `server` in `last_seq`: `None` if it was seen already (a
/// batch sent again after its connection broke: not delivered twice), else how many numbers
/// were skipped since the origin's last message (messages this server did not get: its
/// subscription was down, or their origin could not publish them).
fn in_sequence(last_seq: &mut HashMap<u128, u64>, server: u128, seq: u64) -> Option<u64> {
    if last_seq.len() >= MAX_ORIGINS && !last_seq.contains_key(&server) {
        last_seq.clear();
    }
    match last_seq.get(&server).copied() {
        Some(last) if seq <= last => None,
        last => {
            last_seq.insert(server, seq);
            Some(last.map_or(0, |last| seq - last - 1))
        }
    }
}

/// Exponential backoff with jitter: each delay is drawn from [d/2, d], d doubling from
/// `retry_min` up to `retry_max`.
struct Backoff {
    min: Duration,
    max: Duration,
    current: Duration,
    /// Delays taken since the start or the last reset.
    attempts: u32,
    rng: u64,
}

impl Backoff {
    fn new(config: &RedisConfig, seed: u128) -> Self {
        Backoff {
            min: config.retry_min,
            max: config.retry_max,
            current: config.retry_min,
            attempts: 0,
            // Never zero: xorshift would stay at zero.
            rng: (seed as u64) | 1,
        }
    }

    fn next_delay(&mut self) -> Duration {
        let ceiling = self.current;
        self.attempts = self.attempts.saturating_add(1);
        self.current = self.current.saturating_mul(2).min(self.max);
        // xorshift64
        self.rng ^= self.rng << 13;
        self.rng ^= self.rng >> 7;
        self.rng ^= self.rng << 17;
        let fraction = (self.rng >> 11) as f64 / (1u64 << 53) as f64;
        ceiling.mul_f64(0.5 + fraction / 2.0)
    }

    fn reset(&mut self) {
        self.current = self.min;
        self.attempts = 0;
    }

    /// Whether the failed attempt just counted deserves a log line: the first few, then one in
    /// 30 (about a minute apart at the longest delay), so that a Redis down for hours does not
    /// flood the log.
    fn worth_logging(&self) -> bool {
        self.attempts <= 5 || self.attempts % 30 == 0
    }

    /// Whether no delay has been taken since the start or the last [`reset`](Self::reset).
    fn is_fresh(&self) -> bool {
        self.attempts == 0
    }
}

/// A random id for this server (this process start), from the standard library's randomly
/// seeded hasher, the time and the process id.
fn random_id() -> u128 {
    let half = |salt: u64| {
        let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
        hasher.write_u64(salt);
        hasher.write_u32(std::process::id());
        if let Ok(now) = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH) {
            hasher.write_u128(now.as_nanos());
        }
        hasher.finish()
    };
    (u128::from(half(1)) << 64) | u128::from(half(2))
}

/// Envelope headers for other modules' tests.
#[cfg(test)]
pub(crate) mod tests_support {
    use super::*;

    /// The header the publish script stores for `message` from session `sid`, `inseq`.
    pub(crate) fn header(sid: u64, inseq: u64, message: &Message) -> Vec<u8> {
        Envelope::encode(1, 2, 3, Origin { sid, inseq }, message)
            .expect("a data message")
            .0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What the publish script publishes: header, id length, id, payload.
    fn published(server: u128, seq: u64, origin: Origin, id: &str, message: &Message) -> Vec<u8> {
        let (mut bytes, payload) = Envelope::encode(server, 42, seq, origin, message).unwrap();
        bytes.push(u8::try_from(id.len()).unwrap());
        bytes.extend_from_slice(id.as_bytes());
        bytes.extend_from_slice(payload);
        bytes
    }

    #[test]
    fn envelope_round_trip_and_garbage() {
        use super::super::history::StreamId;
        let origin = Origin { sid: 5, inseq: 6 };
        for message in [Message::text("héllo"), Message::binary(vec![0u8, 255, 7])] {
            let bytes = published(7 << 100 | 3, 9, origin, "1700-2", &message);
            let envelope = Envelope::decode(&bytes).unwrap();
            assert_eq!(
                envelope,
                Envelope {
                    server: 7 << 100 | 3,
                    conn: 42,
                    seq: 9,
                    sid: 5,
                    inseq: 6,
                    id: Some(StreamId(1700, 2)),
                    message: message.clone(),
                }
            );
            // As the stream keeps it: header and payload apart, no id.
            let (header, payload) = Envelope::encode(1, 2, 3, origin, &message).unwrap();
            let entry = Envelope::from_entry(&header, payload).unwrap();
            assert_eq!((entry.sid, entry.inseq, entry.id), (5, 6, None));
            assert_eq!(entry.message, message);
        }
        // Version 1 (servers without history) still decodes.
        let mut v1 = published(1, 1, Origin::default(), "1-1", &Message::text("x"));
        v1.drain(HEADER_1..HEADER + 4);
        v1[0] = VERSION_1;
        assert_eq!(Envelope::decode(&v1).unwrap().message, Message::text("x"));
        assert!(Envelope::encode(1, 1, 1, origin, &Message::Ping(Bytes::new())).is_none());
        let text = Message::text("x");
        let mut bad_utf8 = published(1, 1, origin, "1-1", &Message::binary(vec![0xff]));
        bad_utf8[1] = TEXT;
        assert_eq!(Envelope::decode(&bad_utf8), None);
        let mut bad_version = published(1, 1, origin, "1-1", &text);
        bad_version[0] = 3;
        assert_eq!(Envelope::decode(&bad_version), None);
        let mut bad_kind = published(1, 1, origin, "1-1", &text);
        bad_kind[1] = 9;
        assert_eq!(Envelope::decode(&bad_kind), None);
        let mut bad_id = published(1, 1, origin, "1-1", &text);
        bad_id[HEADER] = 200;
        assert_eq!(Envelope::decode(&bad_id), None);
        for len in 0..HEADER + 2 {
            assert_eq!(Envelope::decode(&vec![VERSION; len]), None);
        }
        // Empty payloads are fine.
        assert!(Envelope::decode(&published(1, 1, origin, "1-1", &Message::text(""))).is_some());
    }

    #[test]
    fn a_full_publish_queue_counts_instead_of_waiting() {
        let (tx, mut rx) = mpsc::channel(2);
        let errors = Counter::default();
        let publisher = Publisher {
            tx,
            queued: Arc::default(),
            max_bytes: 10,
            errors: errors.clone(),
            full_logged: Arc::default(),
        };
        // An empty queue takes a message of any size; then the byte limit applies.
        publisher.publish("r", 1, Origin::default(), &Message::binary(vec![0u8; 50]));
        publisher.publish("r", 1, Origin::default(), &Message::text("x"));
        assert_eq!(errors.get(), 1);
        assert_eq!(publisher.queued.load(Ordering::Acquire), 50);
        // Taken by the publisher task: room again, up to the message limit.
        let taken = rx.try_recv().unwrap();
        publisher
            .queued
            .fetch_sub(taken.message.len(), Ordering::AcqRel);
        publisher.publish("r", 1, Origin::default(), &Message::text("abc"));
        publisher.publish("r", 1, Origin::default(), &Message::text("def"));
        publisher.publish("r", 2, Origin::default(), &Message::text("g"));
        assert_eq!(
            errors.get(),
            2,
            "two messages queued, the third did not fit"
        );
        assert_eq!(publisher.queued.load(Ordering::Acquire), 6);
        drop(rx);
        publisher.publish("r", 1, Origin::default(), &Message::text("late"));
        assert_eq!(errors.get(), 3, "counted after the task stopped too");
    }

    #[test]
    fn sequence_numbers_find_gaps_and_repeats() {
        let mut last = HashMap::new();
        assert_eq!(
            in_sequence(&mut last, 1, 5),
            Some(0),
            "first from an origin"
        );
        assert_eq!(in_sequence(&mut last, 1, 6), Some(0));
        assert_eq!(in_sequence(&mut last, 1, 6), None, "repeat");
        assert_eq!(in_sequence(&mut last, 1, 3), None, "older");
        assert_eq!(in_sequence(&mut last, 1, 10), Some(3), "7, 8, 9 missed");
        assert_eq!(in_sequence(&mut last, 2, 1), Some(0), "origins apart");
        assert_eq!(in_sequence(&mut last, 1, 11), Some(0));
        for origin in 0..MAX_ORIGINS as u128 + 10 {
            assert_eq!(in_sequence(&mut last, origin + 100, 1), Some(0));
        }
        assert!(last.len() <= MAX_ORIGINS, "bounded");
    }

    #[test]
    fn config_redacts_and_validates() {
        let config = RedisConfig::new("redis://user:hunter2@127.0.0.1:6379/0?x=secret");
        assert_eq!(config.redacted_url(), "redis://127.0.0.1:6379/0");
        assert!(!format!("{config:?}").contains("hunter2"));
        assert!(config.validate().is_ok());
        let error = RedisConfig::new("http://:hunter2@example.com")
            .validate()
            .unwrap_err();
        assert!(!error.to_string().contains("hunter2"), "{error}");
        assert!(RedisConfig::new("not a url").validate().is_err());
        let bad_prefix = RedisConfig {
            channel_prefix: "a*".into(),
            ..RedisConfig::new("redis://127.0.0.1")
        };
        assert!(bad_prefix.validate().is_err());
        let bad_retry = RedisConfig {
            retry_max: Duration::from_millis(1),
            ..RedisConfig::new("redis://127.0.0.1")
        };
        assert!(bad_retry.validate().is_err());
        assert_eq!(config.room(&config.channel("lobby")), Some("lobby"));
        assert_eq!(config.room("other:room:lobby"), None);
    }

    #[test]
    fn backoff_grows_with_jitter_and_resets() {
        let config = RedisConfig::new("redis://127.0.0.1");
        let mut backoff = Backoff::new(&config, random_id());
        let mut ceiling = config.retry_min;
        for _ in 0..20 {
            let delay = backoff.next_delay();
            assert!(
                delay >= ceiling / 2 && delay <= ceiling,
                "{delay:?} vs {ceiling:?}"
            );
            ceiling = (ceiling * 2).min(config.retry_max);
        }
        backoff.reset();
        assert!(backoff.next_delay() <= config.retry_min);
        assert_ne!(random_id(), random_id());
    }
}
