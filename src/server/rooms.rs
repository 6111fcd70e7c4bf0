//! Broadcast rooms (`/rooms/{room}`): who is in which room, and fan-out of messages.
//!
//! Each member has a bounded inbox that its connection task drains into the socket, limited
//! both in messages ([`MEMBER_INBOX`]) and in bytes. A client's message is published with
//! [`Membership::publish_paced`]: when a member's inbox is full, the publisher waits for room
//! in it, at most [`SLOW_MEMBER_GRACE`] per message, so a publisher faster than the room can
//! deliver is slowed down (it stops reading, and TCP slows its client) instead of the room
//! dropping everyone. A member whose inbox stays full that long (a client that reads much
//! slower than the room talks, or not at all) is evicted from the room, and its connection
//! is then closed with 1013 ("try again later"): the room never buffers without bound, and
//! a stalled reader holds the others up for at most the grace. [`Membership::publish`] never
//! waits and evicts a full member at once. Messages are cheap to copy (reference-counted
//! bytes), and rooms exist only while they have members.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use tokio::sync::{mpsc, Notify};
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::Message;

/// Messages a member may have waiting before it counts as too slow and is evicted.
pub(crate) const MEMBER_INBOX: usize = 256;

/// How long [`Membership::publish_paced`] waits for room in members' full inboxes (all of
/// them together, per message) before evicting those still full.
pub(crate) const SLOW_MEMBER_GRACE: Duration = Duration::from_secs(2);

/// All rooms, by name.
#[derive(Clone, Debug)]
pub(crate) struct Rooms {
    rooms: Arc<Mutex<HashMap<String, Arc<Room>>>>,
    /// Bytes a member may have waiting before it is evicted (one message is always
    /// accepted into an empty inbox, whatever its size).
    inbox_bytes: usize,
    /// With a Redis backplane: where room messages also go, for the other servers.
    backplane: Option<super::backplane::Publisher>,
    /// With a Redis backplane: the rooms' history, for acknowledged sessions.
    history: Option<Arc<super::history::History>>,
}

/// One room; publishing locks only its own member list.
#[derive(Debug, Default)]
struct Room {
    members: Mutex<HashMap<u64, Outbox>>,
}

/// The room's end of a member's inbox.
#[derive(Clone, Debug)]
struct Outbox {
    tx: mpsc::Sender<Message>,
    backlog: Arc<Backlog>,
}

/// A member's inbox: messages from the room for its client.
#[derive(Debug)]
pub(crate) struct Inbox {
    rx: mpsc::Receiver<Message>,
    backlog: Arc<Backlog>,
}

/// What waits in a member's inbox, shared by the room's [`Outbox`] and the [`Inbox`].
#[derive(Debug, Default)]
struct Backlog {
    /// Bytes waiting.
    bytes: AtomicUsize,
    /// Publishers waiting for `bytes` to go down (see [`Outbox::offer_until`]).
    waiters: AtomicUsize,
    /// Signalled when the member takes a message while publishers wait.
    drained: Notify,
}

impl Backlog {
    /// Whether a message of `size` bytes fits under `limit` (one always fits when empty).
    fn fits(&self, size: usize, limit: usize) -> bool {
        let bytes = self.bytes.load(Ordering::SeqCst);
        bytes == 0 || bytes.saturating_add(size) <= limit
    }

    /// The member took a message of `size` bytes: wakes waiting publishers, if any (a plain
    /// load when there are none, which is the usual case).
    fn taken(&self, size: usize) {
        self.bytes.fetch_sub(size, Ordering::SeqCst);
        if self.waiters.load(Ordering::SeqCst) > 0 {
            self.drained.notify_waiters();
        }
    }
}

/// A connection's place in a room; leaves the room (and removes an empty room) when dropped.
#[derive(Debug)]
pub(crate) struct Membership {
    rooms: Rooms,
    name: String,
    room: Arc<Room>,
    conn: u64,
}

/// Locks a mutex whose data stays consistent even if a holder panicked (single inserts and
/// removes only).
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Rooms {
    /// No rooms yet; each member may have up to `inbox_bytes` waiting.
    pub(crate) fn new(inbox_bytes: usize) -> Self {
        Rooms {
            rooms: Arc::default(),
            inbox_bytes,
            backplane: None,
            history: None,
        }
    }

    /// These rooms, also publishing every message to `backplane` (for the other servers).
    pub(crate) fn with_backplane(
        self,
        backplane: super::backplane::Publisher,
        history: Arc<super::history::History>,
    ) -> Self {
        Rooms {
            backplane: Some(backplane),
            history: Some(history),
            ..self
        }
    }

    /// The rooms' history in Redis (with a backplane): where session members of rooms get
    /// their messages.
    pub(crate) fn history(&self) -> Option<&Arc<super::history::History>> {
        self.history.as_ref()
    }

    /// Publishes `message` from an acknowledged session (`conn`, `origin`) in room `name`:
    /// to this server's plain members at once, and through the backplane to everyone else
    /// (session members here included). Never waits.
    pub(crate) fn publish_from_session(
        &self,
        name: &str,
        conn: u64,
        origin: super::backplane::Origin,
        message: &Message,
    ) {
        let room = lock(&self.rooms).get(name).cloned();
        if let Some(room) = room {
            fan_out(&room, name, self.inbox_bytes, message, None);
        }
        if let Some(backplane) = &self.backplane {
            backplane.publish(name, conn, origin, message);
        }
    }

    /// Delivers `message` (from another server) to every member of room `name` on this
    /// server, if it has any. Never waits; returns how many members it was delivered to.
    pub(crate) fn deliver(&self, name: &str, message: &Message) -> usize {
        let Some(room) = lock(&self.rooms).get(name).cloned() else {
            return 0;
        };
        fan_out(&room, name, self.inbox_bytes, message, None)
    }

    /// Adds connection `conn` to room `name` (created if needed).
    pub(crate) fn join(&self, name: &str, conn: u64) -> (Membership, Inbox) {
        let (tx, rx) = mpsc::channel(MEMBER_INBOX);
        let backlog = Arc::new(Backlog::default());
        let outbox = Outbox {
            tx,
            backlog: Arc::clone(&backlog),
        };
        let mut rooms = lock(&self.rooms);
        let room = Arc::clone(rooms.entry(name.to_owned()).or_default());
        // Still holding the map lock: a concurrent last leave cannot remove this room now.
        lock(&room.members).insert(conn, outbox);
        drop(rooms);
        let membership = Membership {
            rooms: self.clone(),
            name: name.to_owned(),
            room,
            conn,
        };
        (membership, Inbox { rx, backlog })
    }

    /// Number of rooms with at least one member.
    pub(crate) fn len(&self) -> usize {
        lock(&self.rooms).len()
    }
}

impl Membership {
    /// Sends `message` to every member of the room, the sender itself only if
    /// `notify_self`. Never waits; returns how many members it was delivered to.
    pub(crate) fn publish(&self, message: &Message, notify_self: bool) -> usize {
        let skip = (!notify_self).then_some(self.conn);
        let delivered = fan_out(
            &self.room,
            &self.name,
            self.rooms.inbox_bytes,
            message,
            skip,
        );
        self.to_backplane(message);
        delivered
    }

    /// With a Redis backplane, hands `message` to it for the room's members on the other
    /// servers (never waits); without, does nothing.
    fn to_backplane(&self, message: &Message) {
        if let Some(backplane) = &self.rooms.backplane {
            backplane.publish(&self.name, self.conn, Default::default(), message);
        }
    }
}

/// Sends `message` to every member of `room` (called `name`) but `skip`, evicting those with
/// more than `limit` bytes waiting or a full inbox. Never waits; returns how many members it
/// was delivered to.
fn fan_out(room: &Room, name: &str, limit: usize, message: &Message, skip: Option<u64>) -> usize {
    let size = message.len();
    let mut members = lock(&room.members);
    let mut delivered = 0;
    let mut evicted = Vec::new();
    for (&conn, outbox) in members.iter() {
        if Some(conn) == skip {
            continue;
        }
        if !outbox.backlog.fits(size, limit) {
            evicted.push(conn);
            continue;
        }
        outbox.backlog.bytes.fetch_add(size, Ordering::AcqRel);
        match outbox.tx.try_send(message.clone()) {
            Ok(()) => delivered += 1,
            // Full: too slow. Closed: that connection is ending. Either way, out.
            Err(_) => evicted.push(conn),
        }
    }
    for conn in evicted {
        members.remove(&conn);
        tracing::debug!(conn, room = %name, "evicted a member that fell behind");
    }
    delivered
}

/// What became of a message offered to a member's inbox.
enum Offer {
    Taken,
    Full,
    Closed,
}

impl Outbox {
    /// Puts `message` (`size` bytes) in the inbox if it has room (in messages, and in bytes:
    /// `limit`, though an empty inbox takes one message of any size); never waits.
    fn offer(&self, message: &Message, size: usize, limit: usize) -> Offer {
        if !self.backlog.fits(size, limit) {
            return Offer::Full;
        }
        match self.tx.try_reserve() {
            Ok(permit) => {
                self.backlog.bytes.fetch_add(size, Ordering::AcqRel);
                permit.send(message.clone());
                Offer::Taken
            }
            Err(mpsc::error::TrySendError::Full(())) => Offer::Full,
            Err(mpsc::error::TrySendError::Closed(())) => Offer::Closed,
        }
    }

    /// [`offer`](Self::offer), waiting for room until `deadline`; whether it was taken.
    async fn offer_until(
        &self,
        message: &Message,
        size: usize,
        limit: usize,
        deadline: Instant,
    ) -> bool {
        loop {
            let Ok(Ok(permit)) = tokio::time::timeout_at(deadline, self.tx.reserve()).await else {
                return false;
            };
            if self.backlog.fits(size, limit) {
                self.backlog.bytes.fetch_add(size, Ordering::AcqRel);
                permit.send(message.clone());
                return true;
            }
            // A slot but too many bytes waiting: give the slot back and wait until the member
            // takes a message. Registered before looking again, so no wake-up is missed.
            drop(permit);
            let drained = self.backlog.drained.notified();
            tokio::pin!(drained);
            drained.as_mut().enable();
            self.backlog.waiters.fetch_add(1, Ordering::SeqCst);
            let woke = self.backlog.fits(size, limit)
                || tokio::time::timeout_at(deadline, drained).await.is_ok();
            self.backlog.waiters.fetch_sub(1, Ordering::SeqCst);
            if !woke {
                return false;
            }
        }
    }
}

impl Membership {
    /// Sends `message` to every member of the room, the sender itself only if
    /// `notify_self`. A member whose inbox is full is waited for, [`SLOW_MEMBER_GRACE`] at
    /// most (for all of them together); those still full then are evicted. Returns how many
    /// members it was delivered to.
    ///
    /// The caller should keep draining its own [`Inbox`] while this waits: two members that
    /// publish at once could otherwise each wait for the other.
    pub(crate) async fn publish_paced(&self, message: &Message, notify_self: bool) -> usize {
        // The other servers' members first: they do not wait for this server's slow ones.
        self.to_backplane(message);
        let size = message.len();
        let limit = self.rooms.inbox_bytes;
        let mut delivered = 0;
        let mut full = Vec::new();
        let mut evicted = Vec::new();
        {
            let members = lock(&self.room.members);
            for (&conn, outbox) in members.iter() {
                if conn == self.conn && !notify_self {
                    continue;
                }
                match outbox.offer(message, size, limit) {
                    Offer::Taken => delivered += 1,
                    Offer::Full => full.push((conn, outbox.clone())),
                    Offer::Closed => evicted.push(conn),
                }
            }
        }
        if !full.is_empty() {
            let deadline = Instant::now() + SLOW_MEMBER_GRACE;
            for (conn, outbox) in full {
                if outbox.offer_until(message, size, limit, deadline).await {
                    delivered += 1;
                } else {
                    evicted.push(conn);
                }
            }
        }
        if !evicted.is_empty() {
            let mut members = lock(&self.room.members);
            for conn in evicted {
                members.remove(&conn);
                tracing::debug!(conn, room = %self.name, "evicted a member that fell behind");
            }
        }
        delivered
    }
}

impl Inbox {
    /// The next message for the client; `None` once the member has been evicted and what
    /// was queued before has been taken.
    pub(crate) async fn recv(&mut self) -> Option<Message> {
        let message = self.rx.recv().await?;
        self.backlog.taken(message.len());
        Some(message)
    }

    /// A message that is already waiting, if any; never waits. `None` also once evicted
    /// (then [`recv`](Self::recv) says so for good).
    pub(crate) fn try_recv(&mut self) -> Option<Message> {
        let message = self.rx.try_recv().ok()?;
        self.backlog.taken(message.len());
        Some(message)
    }
}

impl Drop for Membership {
    fn drop(&mut self) {
        // Lock order: the map, then the room (as in `join`).
        let mut rooms = lock(&self.rooms.rooms);
        let empty = {
            let mut members = lock(&self.room.members);
            members.remove(&self.conn);
            members.is_empty()
        };
        if empty {
            if let Some(current) = rooms.get(&self.name) {
                if Arc::ptr_eq(current, &self.room) {
                    rooms.remove(&self.name);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn drain(inbox: &mut Inbox) -> (usize, bool) {
        let mut taken = 0;
        loop {
            match inbox.rx.try_recv() {
                Ok(message) => {
                    inbox.backlog.taken(message.len());
                    taken += 1;
                }
                Err(mpsc::error::TryRecvError::Empty) => return (taken, false),
                Err(mpsc::error::TryRecvError::Disconnected) => return (taken, true),
            }
        }
    }

    #[test]
    fn broadcast_respects_notify_self_and_rooms() {
        let rooms = Rooms::new(1 << 20);
        let (a, mut inbox_a) = rooms.join("one", 1);
        let (_b, mut inbox_b) = rooms.join("one", 2);
        let (_c, mut inbox_c) = rooms.join("two", 3);
        assert_eq!(rooms.len(), 2);

        assert_eq!(a.publish(&Message::text("hi"), false), 1);
        assert_eq!(inbox_b.rx.try_recv().unwrap(), Message::text("hi"));
        assert!(inbox_a.rx.try_recv().is_err(), "sender skipped");
        assert!(inbox_c.rx.try_recv().is_err(), "other room isolated");

        assert_eq!(a.publish(&Message::text("me too"), true), 2);
        assert_eq!(inbox_a.rx.try_recv().unwrap(), Message::text("me too"));
    }

    #[test]
    fn member_too_many_messages_behind_is_evicted_and_empty_rooms_vanish() {
        let rooms = Rooms::new(1 << 20);
        let (a, _inbox_a) = rooms.join("r", 1);
        let (b, mut inbox_b) = rooms.join("r", 2);
        for _ in 0..MEMBER_INBOX {
            assert_eq!(a.publish(&Message::text("x"), false), 1);
        }
        assert_eq!(a.publish(&Message::text("x"), false), 0, "b evicted");
        assert_eq!(drain(&mut inbox_b), (MEMBER_INBOX, true));
        drop(b);
        drop(a);
        assert_eq!(rooms.len(), 0);
    }

    #[tokio::test]
    async fn paced_publish_waits_for_a_member_that_drains() {
        let rooms = Rooms::new(1 << 20);
        let (a, _inbox_a) = rooms.join("r", 1);
        let (_b, mut inbox_b) = rooms.join("r", 2);
        let total = 3 * MEMBER_INBOX;
        let reader = tokio::spawn(async move {
            let mut taken = 0;
            while taken < total {
                inbox_b.recv().await.expect("not evicted");
                taken += 1;
            }
            inbox_b
        });
        for _ in 0..total {
            assert_eq!(a.publish_paced(&Message::text("x"), false).await, 1);
        }
        let mut inbox_b = reader.await.unwrap();
        assert_eq!(drain(&mut inbox_b), (0, false), "all taken, still a member");
    }

    #[tokio::test(start_paused = true)]
    async fn paced_publish_over_the_byte_limit_waits_for_the_drain_not_a_poll() {
        let rooms = Rooms::new(1000);
        let (a, _inbox_a) = rooms.join("r", 1);
        let (_b, mut inbox_b) = rooms.join("r", 2);
        let big = Message::binary(vec![0u8; 800]);
        assert_eq!(a.publish_paced(&big, false).await, 1);
        // Over the byte limit (a free slot, though): waits, and the member's take wakes it.
        let publishing = tokio::spawn({
            let big = big.clone();
            async move { (a.publish_paced(&big, false).await, Instant::now(), a) }
        });
        tokio::time::sleep(Duration::from_millis(700)).await;
        assert!(
            !publishing.is_finished(),
            "waits while the bytes do not fit"
        );
        let taken_at = Instant::now();
        assert_eq!(inbox_b.recv().await, Some(big.clone()));
        let (delivered, published_at, a) = publishing.await.unwrap();
        assert_eq!(delivered, 1);
        assert_eq!(
            published_at, taken_at,
            "woken by the take itself, on virtual time"
        );
        // Nobody takes: evicted after the grace period.
        let started = Instant::now();
        assert_eq!(a.publish_paced(&big, false).await, 0);
        assert_eq!(started.elapsed(), SLOW_MEMBER_GRACE);
        assert_eq!(drain(&mut inbox_b), (1, true));
    }

    #[test]
    fn member_too_many_bytes_behind_is_evicted() {
        let rooms = Rooms::new(1000);
        let (a, _inbox_a) = rooms.join("r", 1);
        let (_b, mut inbox_b) = rooms.join("r", 2);
        // An empty inbox takes one message of any size.
        assert_eq!(a.publish(&Message::binary(vec![0u8; 5000]), false), 1);
        assert_eq!(drain(&mut inbox_b), (1, false));
        assert_eq!(a.publish(&Message::binary(vec![0u8; 600]), false), 1);
        assert_eq!(a.publish(&Message::binary(vec![0u8; 600]), false), 0);
        assert_eq!(drain(&mut inbox_b), (1, true));
    }
}
