//! Broadcast rooms (`/rooms/{room}`): who is in which room, and fan-out of messages.
//!
//! Each member has a bounded inbox that its connection task drains into the socket, limited
//! both in messages ([`MEMBER_INBOX`]) and in bytes. Publishing never waits: a member whose
//! inbox is full (a client that reads much slower than the room talks) is evicted from the
//! room, and its connection is then closed with 1013 ("try again later"), instead of the
//! room buffering without bound or slowing everyone down to the slowest reader. Messages are
//! cheap to copy (reference-counted bytes), and rooms exist only while they have members.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::Message;

/// Messages a member may have waiting before it counts as too slow and is evicted.
pub(crate) const MEMBER_INBOX: usize = 256;

/// All rooms, by name.
#[derive(Clone, Debug)]
pub(crate) struct Rooms {
    rooms: Arc<Mutex<HashMap<String, Arc<Room>>>>,
    /// Bytes a member may have waiting before it is evicted (one message is always
    /// accepted into an empty inbox, whatever its size).
    inbox_bytes: usize,
}

/// One room; publishing locks only its own member list.
#[derive(Debug, Default)]
struct Room {
    members: Mutex<HashMap<u64, Outbox>>,
}

/// The room's end of a member's inbox.
#[derive(Debug)]
struct Outbox {
    tx: mpsc::Sender<Message>,
    queued: Arc<AtomicUsize>,
}

/// A member's inbox: messages from the room for its client.
#[derive(Debug)]
pub(crate) struct Inbox {
    rx: mpsc::Receiver<Message>,
    /// Bytes waiting in `rx`, shared with the room's [`Outbox`].
    queued: Arc<AtomicUsize>,
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
        }
    }

    /// Adds connection `conn` to room `name` (created if needed).
    pub(crate) fn join(&self, name: &str, conn: u64) -> (Membership, Inbox) {
        let (tx, rx) = mpsc::channel(MEMBER_INBOX);
        let queued = Arc::new(AtomicUsize::new(0));
        let outbox = Outbox {
            tx,
            queued: Arc::clone(&queued),
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
        (membership, Inbox { rx, queued })
    }

    /// Number of rooms with at least one member.
    #[cfg(test)]
    fn len(&self) -> usize {
        lock(&self.rooms).len()
    }
}

impl Membership {
    /// Sends `message` to every member of the room, the sender itself only if
    /// `notify_self`. Never waits; returns how many members it was delivered to.
    pub(crate) fn publish(&self, message: &Message, notify_self: bool) -> usize {
        let size = message.len();
        let limit = self.rooms.inbox_bytes;
        let mut members = lock(&self.room.members);
        let mut delivered = 0;
        let mut evicted = Vec::new();
        for (&conn, outbox) in members.iter() {
            if conn == self.conn && !notify_self {
                continue;
            }
            let queued = outbox.queued.load(Ordering::Acquire);
            if queued > 0 && queued.saturating_add(size) > limit {
                evicted.push(conn);
                continue;
            }
            outbox.queued.fetch_add(size, Ordering::AcqRel);
            match outbox.tx.try_send(message.clone()) {
                Ok(()) => delivered += 1,
                // Full: too slow. Closed: that connection is ending. Either way, out.
                Err(_) => evicted.push(conn),
            }
        }
        for conn in evicted {
            members.remove(&conn);
            tracing::debug!(conn, room = %self.name, "evicted a member that fell behind");
        }
        delivered
    }
}

impl Inbox {
    /// The next message for the client; `None` once the member has been evicted and what
    /// was queued before has been taken.
    pub(crate) async fn recv(&mut self) -> Option<Message> {
        let message = self.rx.recv().await?;
        self.queued.fetch_sub(message.len(), Ordering::AcqRel);
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
                    inbox.queued.fetch_sub(message.len(), Ordering::AcqRel);
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
