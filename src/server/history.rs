//! Room history in Redis, for acknowledged sessions that resume on another server (with a
//! [backplane](super::backplane); docs/session-protocol.md §8).
//!
//! Every room message is appended to the room's Redis stream `{prefix}log:{room}` (bounded:
//! `MAXLEN ~` [`RedisConfig::history_max_len`], and it expires [`RedisConfig::history_ttl`]
//! after the room's last message) in the same Lua script that publishes it, so the order of
//! the pub/sub messages is the order of the stream. A session member of a room takes its
//! messages only from there ([`StreamMembers`]), so its outgoing sequence numbers follow the
//! stream: seq `S + k` is the `k`-th entry after the entry of seq `S` (skipping the session's
//! own messages without `notify_self`). Its record (a hash `{prefix}session:{sha1(token)}`,
//! expiring after the grace period) says where that numbering stands; another server rebuilds
//! the session from the record and the stream. After its subscription was down, a server
//! catches its session members up from the stream (`backplane.rs`), so their numbering keeps
//! following it.

use std::collections::HashMap;
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use sha1::{Digest, Sha1};
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::Message;

use super::backplane::{Envelope, RedisConfig};
use super::shutdown::{Phase, PhaseWatch};

/// A Redis stream entry id (`milliseconds-sequence`), ordered as Redis orders them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) struct StreamId(pub(crate) u64, pub(crate) u64);

impl StreamId {
    /// Before every entry (`0-0`): the anchor of a session that joined an empty room.
    pub(crate) const ZERO: StreamId = StreamId(0, 0);

    /// Parses `ms-seq`.
    pub(crate) fn parse(text: &[u8]) -> Option<StreamId> {
        let text = std::str::from_utf8(text).ok()?;
        let (ms, seq) = text.split_once('-')?;
        Some(StreamId(ms.parse().ok()?, seq.parse().ok()?))
    }
}

impl fmt::Display for StreamId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}", self.0, self.1)
    }
}

/// A room message with its place in the room's history.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct StreamEntry {
    pub(crate) id: StreamId,
    /// The publishing session's id (0: not a session).
    pub(crate) sid: u64,
    /// The publishing session's incoming sequence number of this message (0: not a session).
    pub(crate) inseq: u64,
    pub(crate) message: Message,
}

/// Messages a session member may have waiting from the subscription; beyond, it is evicted
/// (its session then ends with 1013, as a slow room member's connection does).
const STREAM_INBOX: usize = 4096;

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Per room: its session members, and the id of the last entry handed to them (or where the
/// first of them started).
type Members = HashMap<String, (HashMap<u64, mpsc::Sender<StreamEntry>>, StreamId)>;

/// The session members of this server's rooms: they get every message of their room from
/// the Redis subscription (this server's own included), with its stream id.
#[derive(Clone, Debug, Default)]
pub(crate) struct StreamMembers {
    rooms: Arc<Mutex<Members>>,
    next: Arc<AtomicU64>,
}

/// A place among a room's [`StreamMembers`]; leaves when dropped.
#[derive(Debug)]
pub(crate) struct StreamMembership {
    members: StreamMembers,
    room: String,
    id: u64,
}

impl StreamMembers {
    /// Joins `room`: its messages arrive on the receiver from now on.
    pub(crate) fn join(&self, room: &str) -> (StreamMembership, mpsc::Receiver<StreamEntry>) {
        let (tx, rx) = mpsc::channel(STREAM_INBOX);
        let id = self.next.fetch_add(1, Ordering::Relaxed);
        lock(&self.rooms)
            .entry(room.to_owned())
            .or_default()
            .0
            .insert(id, tx);
        let membership = StreamMembership {
            members: self.clone(),
            room: room.to_owned(),
            id,
        };
        (membership, rx)
    }

    /// Whether `room` has session members here.
    pub(crate) fn has(&self, room: &str) -> bool {
        lock(&self.rooms).contains_key(room)
    }

    /// A member of `room` starts after entry `start`: where catching the room up begins if
    /// nothing has been handed to its members yet.
    pub(crate) fn started(&self, room: &str, start: StreamId) {
        if let Some((_, last)) = lock(&self.rooms).get_mut(room) {
            if *last == StreamId::ZERO {
                *last = start;
            }
        }
    }

    /// Hands `entry` to every session member of `room`, evicting those too far behind.
    pub(crate) fn deliver(&self, room: &str, entry: &StreamEntry) {
        let mut rooms = lock(&self.rooms);
        let Some((members, last)) = rooms.get_mut(room) else {
            return;
        };
        *last = (*last).max(entry.id);
        members.retain(|_, tx| tx.try_send(entry.clone()).is_ok());
        if members.is_empty() {
            rooms.remove(room);
        }
    }

    /// Every room with session members, and the last entry handed to them.
    pub(crate) fn positions(&self) -> Vec<(String, StreamId)> {
        lock(&self.rooms)
            .iter()
            .map(|(room, (_, last))| (room.clone(), *last))
            .collect()
    }

    /// Ends every session member of `room` (their sessions end: they cannot be complete).
    pub(crate) fn evict(&self, room: &str) {
        lock(&self.rooms).remove(room);
    }
}

impl Drop for StreamMembership {
    fn drop(&mut self) {
        let mut rooms = lock(&self.members.rooms);
        if let Some((members, _)) = rooms.get_mut(&self.room) {
            members.remove(&self.id);
            if members.is_empty() {
                rooms.remove(&self.room);
            }
        }
    }
}

/// Where a session stands, as kept in Redis for the other servers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Record {
    pub(crate) room: String,
    pub(crate) notify_self: bool,
    /// The session's id in the stream entries it publishes.
    pub(crate) sid: u64,
    /// Outgoing sequence number of the anchor: the message at stream id `anchor`
    /// (0 and the room's last id when the session joined).
    pub(crate) seq: u64,
    pub(crate) anchor: StreamId,
    /// The client's messages received so far.
    pub(crate) received: u64,
}

/// Why the history cannot give a session back.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Lost {
    /// Redis does not answer (in time).
    Unavailable,
    /// The stream no longer reaches back to the session's anchor (trimmed or expired).
    Trimmed,
}

/// The sessions' access to Redis.
pub(crate) struct History {
    client: redis::Client,
    config: RedisConfig,
    /// This server's id: a session record names the server that owns the session.
    owner: String,
    connection: Mutex<Option<redis::aio::MultiplexedConnection>>,
    /// After a failure, queries fail at once until then: a Redis that is down costs a
    /// resuming client one timeout, not one per query.
    down_until: Mutex<Option<tokio::time::Instant>>,
    /// The session members of this server's rooms.
    pub(crate) members: StreamMembers,
    checkpoints: mpsc::Sender<(String, Record)>,
    /// How long a record outlives its last checkpoint.
    record_ttl: Duration,
}

impl fmt::Debug for History {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("History")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

/// Appends a room message to its stream and publishes it with its stream id, atomically.
/// KEYS: stream, channel. ARGV: max length, TTL (ms), envelope header, payload.
pub(crate) const PUBLISH_SCRIPT: &str = "\
local id = redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[1], '*', 'h', ARGV[3], 'p', ARGV[4])
redis.call('PEXPIRE', KEYS[1], ARGV[2])
redis.call('PUBLISH', KEYS[2], ARGV[3] .. string.char(#id) .. id .. ARGV[4])
return 1";

/// Writes a checkpoint unless another server owns the session now (it resumed there).
/// KEYS: record. ARGV: owner, TTL (ms), then field, value pairs.
const CHECKPOINT_SCRIPT: &str = "\
local owner = redis.call('HGET', KEYS[1], 'owner')
if owner and owner ~= ARGV[1] then return 0 end
redis.call('HSET', KEYS[1], 'owner', ARGV[1], unpack(ARGV, 3))
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return 1";

/// Sequence numbers in a record beyond this are treated as a malformed record.
pub(crate) const MAX_SEQ: u64 = 1 << 62;

/// The owner of a session that ended for good.
const ENDED: &str = "-";

/// Checkpoints waiting to be written; beyond, new ones are dropped (a later one replaces them).
const CHECKPOINT_QUEUE: usize = 4096;
/// Most checkpoints written in one pipeline.
const CHECKPOINT_BATCH: usize = 256;

impl History {
    /// Session access to the Redis of `config`, for a server with id `server` whose sessions
    /// last `grace` after their connection; its checkpoint writer runs until `phase` aborts.
    pub(crate) fn start(
        client: redis::Client,
        config: &RedisConfig,
        server: u128,
        members: StreamMembers,
        grace: Duration,
        phase: &PhaseWatch,
    ) -> Arc<History> {
        let (tx, rx) = mpsc::channel(CHECKPOINT_QUEUE);
        let history = Arc::new(History {
            client,
            config: config.clone(),
            owner: format!("{server:032x}"),
            connection: Mutex::new(None),
            down_until: Mutex::new(None),
            members,
            checkpoints: tx,
            // Margin: the record must still be there when the grace period ends.
            record_ttl: grace.saturating_add(Duration::from_secs(10)),
        });
        let writer = Arc::downgrade(&history);
        let mut stop = phase.clone();
        tokio::spawn(async move {
            tokio::select! {
                () = stop.reached(Phase::Abort) => {}
                () = write_checkpoints(writer, rx) => {}
            }
        });
        history
    }

    /// The Redis key of the session with `token` (hashed: tokens are secrets).
    pub(crate) fn record_key(&self, token: &str) -> String {
        format!("{}session:{}", self.config.channel_prefix, sha1_hex(token))
    }

    /// Most entries read to rebuild a session: a little more than the stream keeps
    /// (`MAXLEN ~` trims in whole blocks).
    pub(crate) fn range_limit(&self) -> usize {
        self.config
            .history_max_len
            .saturating_mul(2)
            .saturating_add(1000)
    }

    fn stream_key(&self, room: &str) -> String {
        self.config.history_key(room)
    }

    /// Runs `command`, bounded by the configured timeout; `None` on any failure.
    async fn query<T: redis::FromRedisValue>(&self, command: &redis::Cmd) -> Option<T> {
        self.query_with(|mut c| async move { command.query_async::<T>(&mut c).await })
            .await
    }

    /// Runs `run` on the (shared, multiplexed) connection, bounded by the configured timeout;
    /// `None` on any failure (the connection is replaced next time if it broke).
    async fn query_with<T, F, Fut>(&self, run: F) -> Option<T>
    where
        F: FnOnce(redis::aio::MultiplexedConnection) -> Fut,
        Fut: std::future::Future<Output = redis::RedisResult<T>>,
    {
        let now = tokio::time::Instant::now();
        if lock(&self.down_until).is_some_and(|until| now < until) {
            return None;
        }
        let attempt = async {
            let cached = lock(&self.connection).clone();
            let connection = match cached {
                Some(connection) => connection,
                None => {
                    let fresh = super::backplane::connect(&self.client, &self.config)
                        .await
                        .ok()?;
                    *lock(&self.connection) = Some(fresh.clone());
                    fresh
                }
            };
            match run(connection).await {
                Ok(value) => Some(value),
                Err(error) => {
                    tracing::warn!(kind = ?error.kind(), "Redis backplane: a session query failed");
                    if error.is_io_error() || error.is_connection_dropped() {
                        lock(&self.connection).take();
                    }
                    None
                }
            }
        };
        let result = match tokio::time::timeout(self.config.timeout, attempt).await {
            Ok(result) => result,
            Err(_elapsed) => {
                lock(&self.connection).take();
                tracing::warn!("Redis backplane: a session query got no answer in time");
                None
            }
        };
        *lock(&self.down_until) = match result {
            Some(_) => None,
            None => Some(tokio::time::Instant::now() + self.config.retry_min),
        };
        result
    }

    /// The id of the last message of `room` (`0-0` for none): where a new session starts.
    pub(crate) async fn last_id(&self, room: &str) -> Option<StreamId> {
        let mut command = redis::cmd("XREVRANGE");
        command
            .arg(self.stream_key(room))
            .arg("+")
            .arg("-")
            .arg("COUNT")
            .arg(1);
        let value: redis::Value = self.query(&command).await?;
        let entries = parse_entries(value)?;
        Some(entries.first().map_or(StreamId::ZERO, |entry| entry.id))
    }

    /// The record of the session with `token`: `Ok(None)` if there is none (never was, or
    /// expired), `Err` if Redis does not answer.
    pub(crate) async fn record(&self, token: &str) -> Result<Option<(Record, String)>, Lost> {
        let mut command = redis::cmd("HGETALL");
        command.arg(self.record_key(token));
        let fields: HashMap<String, String> =
            self.query(&command).await.ok_or(Lost::Unavailable)?;
        if fields.is_empty() || fields.get("owner").is_some_and(|owner| owner == ENDED) {
            return Ok(None);
        }
        let record = (|| {
            Some(Record {
                room: fields.get("room")?.clone(),
                notify_self: fields.get("ns")? == "1",
                sid: fields.get("sid")?.parse().ok()?,
                seq: fields.get("s")?.parse().ok()?,
                anchor: StreamId::parse(fields.get("x")?.as_bytes())?,
                received: fields.get("r")?.parse().ok()?,
            })
        })()
        // Far beyond any real session: not to be counted on (no overflow further on).
        .filter(|record| record.seq < MAX_SEQ && record.received < MAX_SEQ);
        // A malformed record is as good as none.
        Ok(record.map(|record| (record, fields.get("owner").cloned().unwrap_or_default())))
    }

    /// Whether `owner` (from [`record`](Self::record)) is this server.
    pub(crate) fn is_mine(&self, owner: &str) -> bool {
        owner == self.owner
    }

    /// The messages of `room` after `anchor`, at most `limit`.
    pub(crate) async fn since(
        &self,
        room: &str,
        anchor: StreamId,
        limit: usize,
    ) -> Result<Vec<StreamEntry>, Lost> {
        let key = self.stream_key(room);
        let mut command = redis::cmd("XRANGE");
        // Inclusive: the anchor entry itself must still be there (not trimmed).
        let start = if anchor == StreamId::ZERO {
            "-".to_owned()
        } else {
            anchor.to_string()
        };
        command
            .arg(&key)
            .arg(start)
            .arg("+")
            .arg("COUNT")
            .arg(limit.saturating_add(1));
        let value: redis::Value = self.query(&command).await.ok_or(Lost::Unavailable)?;
        let mut entries = parse_entries(value).ok_or(Lost::Unavailable)?;
        if anchor == StreamId::ZERO {
            if !entries.is_empty() {
                // Joined an empty room: nothing may have been trimmed since.
                let mut info = redis::cmd("XINFO");
                info.arg("STREAM").arg(&key);
                let value: redis::Value = self.query(&info).await.ok_or(Lost::Unavailable)?;
                let (length, added) = stream_counts(&value).ok_or(Lost::Unavailable)?;
                if length != added {
                    return Err(Lost::Trimmed);
                }
            }
        } else {
            if entries.first().map(|entry| entry.id) != Some(anchor) {
                return Err(Lost::Trimmed);
            }
            entries.remove(0);
        }
        if entries.len() > limit {
            return Err(Lost::Trimmed);
        }
        Ok(entries)
    }

    /// Makes this server the session's owner and writes its record, now (a resume here).
    pub(crate) async fn claim(&self, key: &str, record: &Record) -> bool {
        let mut pipe = redis::pipe();
        pipe.atomic()
            .cmd("DEL")
            .arg(key)
            .ignore()
            .cmd("HSET")
            .arg(key)
            .arg("owner")
            .arg(&self.owner)
            .arg(record_fields(record))
            .ignore()
            .cmd("PEXPIRE")
            .arg(key)
            .arg(millis(self.record_ttl))
            .ignore();
        let pipe = &pipe;
        self.query_with(|mut c| async move { pipe.query_async::<()>(&mut c).await })
            .await
            .is_some()
    }

    /// Marks the session at `key` as ended for good (evicted): no server resumes it, and
    /// checkpoints still queued for it are refused.
    pub(crate) async fn end(&self, key: &str) {
        let mut command = redis::cmd("HSET");
        command.arg(key).arg("owner").arg(ENDED);
        let _: Option<i64> = self.query(&command).await;
    }

    /// Queues a checkpoint of the session at `key` (written soon, unless another server has
    /// taken the session over). Never waits.
    pub(crate) fn checkpoint(&self, key: &str, record: Record) {
        let _ = self.checkpoints.try_send((key.to_owned(), record));
    }
}

/// SHA-1 of `text`, in lower-case hex (also how Redis names a script).
pub(crate) fn sha1_hex(text: &str) -> String {
    Sha1::digest(text.as_bytes())
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect()
}

fn millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}

fn record_fields(record: &Record) -> Vec<String> {
    vec![
        "room".into(),
        record.room.clone(),
        "ns".into(),
        if record.notify_self { "1" } else { "0" }.into(),
        "sid".into(),
        record.sid.to_string(),
        "s".into(),
        record.seq.to_string(),
        "x".into(),
        record.anchor.to_string(),
        "r".into(),
        record.received.to_string(),
    ]
}

/// Writes queued checkpoints, the latest per session, in batches; gives up on a batch Redis
/// does not take (a later checkpoint, or the detach, writes again).
async fn write_checkpoints(
    history: std::sync::Weak<History>,
    mut rx: mpsc::Receiver<(String, Record)>,
) {
    let mut pending: HashMap<String, Record> = HashMap::new();
    while let Some((key, record)) = rx.recv().await {
        pending.insert(key, record);
        // A little time for more to gather (one write per session per round).
        tokio::time::sleep(Duration::from_millis(20)).await;
        while pending.len() < CHECKPOINT_BATCH {
            let Ok((key, record)) = rx.try_recv() else {
                break;
            };
            pending.insert(key, record);
        }
        let Some(history) = history.upgrade() else {
            return;
        };
        let mut pipe = redis::pipe();
        let ttl = millis(history.record_ttl);
        for (key, record) in pending.drain() {
            pipe.cmd("EVAL")
                .arg(CHECKPOINT_SCRIPT)
                .arg(1)
                .arg(key)
                .arg(&history.owner)
                .arg(ttl)
                .arg(record_fields(&record))
                .ignore();
        }
        let pipe = &pipe;
        history
            .query_with(|mut c| async move { pipe.query_async::<()>(&mut c).await })
            .await;
    }
}

/// The entries of an `XRANGE` / `XREVRANGE` answer; `None` if it is not one. Entries that
/// are not valid room messages are skipped.
fn parse_entries(value: redis::Value) -> Option<Vec<StreamEntry>> {
    let redis::Value::Array(items) = value else {
        return None;
    };
    let mut entries = Vec::with_capacity(items.len());
    for item in items {
        let redis::Value::Array(mut pair) = item else {
            return None;
        };
        if pair.len() != 2 {
            return None;
        }
        let fields = pair.pop()?;
        let redis::Value::BulkString(id) = pair.pop()? else {
            return None;
        };
        let id = StreamId::parse(&id)?;
        let redis::Value::Array(fields) = fields else {
            return None;
        };
        let (mut header, mut payload) = (None, None);
        for pair in fields.chunks(2) {
            if let [redis::Value::BulkString(name), redis::Value::BulkString(value)] = pair {
                match name.as_slice() {
                    b"h" => header = Some(value.as_slice()),
                    b"p" => payload = Some(value.as_slice()),
                    _ => {}
                }
            }
        }
        let (Some(header), Some(payload)) = (header, payload) else {
            continue;
        };
        if let Some(envelope) = Envelope::from_entry(header, payload) {
            entries.push(StreamEntry {
                id,
                sid: envelope.sid,
                inseq: envelope.inseq,
                message: envelope.message,
            });
        }
    }
    Some(entries)
}

/// `length` and `entries-added` of an `XINFO STREAM` answer.
fn stream_counts(value: &redis::Value) -> Option<(i64, i64)> {
    let pairs: Vec<(&redis::Value, &redis::Value)> = match value {
        redis::Value::Array(items) => items
            .chunks(2)
            .filter_map(|pair| match pair {
                [name, value] => Some((name, value)),
                _ => None,
            })
            .collect(),
        redis::Value::Map(items) => items.iter().map(|(k, v)| (k, v)).collect(),
        _ => return None,
    };
    let find = |wanted: &[u8]| {
        pairs.iter().find_map(|(name, value)| match (name, value) {
            (redis::Value::BulkString(name), redis::Value::Int(n)) if name == wanted => Some(*n),
            (redis::Value::SimpleString(name), redis::Value::Int(n))
                if name.as_bytes() == wanted =>
            {
                Some(*n)
            }
            _ => None,
        })
    };
    Some((find(b"length")?, find(b"entries-added")?))
}

/// A random non-zero u64 from the OS's CSPRNG (falling back on the standard library's
/// randomly keyed hasher, should the OS refuse).
pub(crate) fn random_u64() -> u64 {
    let mut bytes = [0u8; 8];
    if getrandom::getrandom(&mut bytes).is_err() {
        use std::hash::BuildHasher;
        let fallback = std::collections::hash_map::RandomState::new().hash_one(0u8);
        bytes = fallback.to_le_bytes();
    }
    u64::from_le_bytes(bytes).max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stream_ids_parse_and_order() {
        assert_eq!(StreamId::parse(b"5-3"), Some(StreamId(5, 3)));
        assert_eq!(StreamId::parse(b"5"), None);
        assert_eq!(StreamId::parse(b"a-1"), None);
        assert!(StreamId(5, 3) < StreamId(5, 4) && StreamId(5, 9) < StreamId(6, 0));
        assert_eq!(StreamId(12, 0).to_string(), "12-0");
    }

    #[test]
    fn stream_answers_parse_and_garbage_is_refused() {
        use redis::Value::{Array, BulkString, Int, Nil};
        let (header, payload) = {
            // A real entry, as the publish script stores it.
            let message = Message::text("hi");
            let header = crate::server::backplane::tests_support::header(7, 9, &message);
            (header, b"hi".to_vec())
        };
        let entry = |id: &str| {
            Array(vec![
                BulkString(id.as_bytes().to_vec()),
                Array(vec![
                    BulkString(b"h".to_vec()),
                    BulkString(header.clone()),
                    BulkString(b"p".to_vec()),
                    BulkString(payload.clone()),
                ]),
            ])
        };
        let entries = parse_entries(Array(vec![entry("1-0"), entry("2-5")])).unwrap();
        assert_eq!(entries.len(), 2);
        assert_eq!(
            (entries[1].id, entries[1].sid, entries[1].inseq),
            (StreamId(2, 5), 7, 9)
        );
        assert_eq!(entries[0].message, Message::text("hi"));
        assert_eq!(parse_entries(Array(vec![])), Some(vec![]));
        // Not an answer to XRANGE: refused, never a panic.
        for bad in [
            Nil,
            Int(1),
            Array(vec![Int(1)]),
            Array(vec![Array(vec![BulkString(b"x".to_vec()), Array(vec![])])]),
            Array(vec![Array(vec![BulkString(b"1-0".to_vec())])]),
        ] {
            assert_eq!(parse_entries(bad), None);
        }
        // An entry that is not a room message is skipped.
        let other = Array(vec![
            BulkString(b"3-0".to_vec()),
            Array(vec![BulkString(b"x".to_vec()), BulkString(b"y".to_vec())]),
        ]);
        assert_eq!(parse_entries(Array(vec![other])), Some(vec![]));
        let info = Array(vec![
            BulkString(b"length".to_vec()),
            Int(100),
            BulkString(b"entries-added".to_vec()),
            Int(300),
        ]);
        assert_eq!(stream_counts(&info), Some((100, 300)));
        assert_eq!(stream_counts(&Array(vec![Int(1)])), None);
    }

    #[test]
    fn sha1_is_lower_case_hex() {
        assert_eq!(sha1_hex("abc"), "a9993e364706816aba3e25717850c26c9cd0d89d");
    }

    #[test]
    fn stream_members_deliver_and_leave() {
        let members = StreamMembers::default();
        let (membership, mut rx) = members.join("r");
        let entry = StreamEntry {
            id: StreamId(1, 0),
            sid: 0,
            inseq: 0,
            message: Message::text("x"),
        };
        members.deliver("r", &entry);
        members.deliver("other", &entry);
        assert_eq!(rx.try_recv().ok(), Some(entry));
        assert!(members.has("r"));
        drop(membership);
        assert!(!members.has("r"));
    }
}
