//! Direct writes: a handle writes a message straight into an idle open connection instead of
//! queueing it for the driver.
//!
//! Queueing costs a task wake-up per message (a thread wake-up when the sender is a plain
//! thread) before the message reaches the socket, and `flush` one more back. When nothing is
//! queued, nothing can be overtaken, so the sender may write itself: same order, same
//! accounting, one hop less. The driver keeps the connection for everything else (reads,
//! heartbeat, close) and takes over whenever the direct write cannot finish at once.
//!
//! The connection sits behind a mutex that the driver holds only for single operations and
//! that handles only ever `try_lock`: a handle never waits for the driver (nor, in the
//! single-threaded browser, re-enters it); when the lock is taken it queues as before.
//!
//! In an acknowledged session the outgoing state (sequence numbers, replay buffer) and the
//! receive position sit behind the same mutex ([`Locked::session`]): a direct write numbers
//! its message, keeps it for replay and seals it with the current ack in the same step as it
//! writes it, exactly as the driver does for a queued one.

use std::sync::{Arc, Mutex, MutexGuard, TryLockError};
use std::task::{Context, Poll, Waker};

use super::ack::AckState;
use super::shared::{lock, Shared};
use crate::transport::{Connection, MaybeSend, MaybeSync};
use crate::Message;

/// What became of a direct write or flush.
pub(crate) enum Written {
    /// On the network (handed to the operating system or the browser), with everything
    /// written before it.
    Flushed,
    /// In the connection's write buffer, counted by [`Shared::direct_written`]: not flushed
    /// yet (not asked to, or the socket pushed back).
    Buffered,
    /// Not written (the connection is busy, full or broken): the caller queues the message
    /// for the driver.
    Declined(Message),
}

/// The connection as handles see it.
pub(crate) trait DirectWrite: MaybeSend + MaybeSync {
    /// Writes `message`, then, with `flush`, flushes without waiting. The accounting
    /// ([`Shared::direct_written`], [`Shared::direct_flushed`]) happens under the connection's
    /// lock, so that it matches what the connection holds.
    fn try_write(&self, shared: &Shared, message: Message, flush: bool) -> Written;

    /// Flushes what direct writes left in the write buffer, without waiting. `false` when the
    /// connection is busy or pushed back (the driver then finishes the flush).
    fn try_flush(&self, shared: &Shared) -> bool;
}

/// What the connection's lock guards.
pub(crate) struct Locked<C> {
    pub(crate) connection: C,
    /// The acknowledged session, when this connection runs one.
    pub(crate) session: Option<SessionSend>,
}

/// An acknowledged session while a connection runs it: kept with the connection so that
/// numbering, keeping, sealing and writing a message are one step, whoever writes it.
pub(crate) struct SessionSend {
    pub(crate) state: AckState,
    /// Next sequence number to write on this connection (resends first, then new messages).
    pub(crate) send_next: u64,
}

impl SessionSend {
    /// Whether every message in the replay buffer has been written on this connection (no
    /// resend is pending) and a new one of `size` bytes fits: then it may go out directly.
    fn takes_new(&self, size: usize) -> bool {
        self.send_next == self.state.next_seq() && self.state.has_room(size)
    }

    /// Numbers `message`, keeps it for replay and returns its frame (sealed with the current
    /// ack). Only when nothing waits to be resent: the frame is the next one on the wire.
    pub(crate) fn number(&mut self, message: Message) -> Message {
        let (seq, frame) = self.state.push_framed(message);
        self.send_next = seq + 1;
        frame
    }
}

/// The driver's connection, shareable with the handles' direct writes.
pub(crate) struct SharedConnection<C>(Arc<Mutex<Locked<C>>>);

impl<C: Connection> SharedConnection<C> {
    pub(crate) fn new(connection: C, session: Option<SessionSend>) -> Self {
        SharedConnection(Arc::new(Mutex::new(Locked {
            connection,
            session,
        })))
    }

    /// The connection (and session), for one operation of the driver. Handles hold it only
    /// inside [`DirectWrite`] calls, which neither block nor call back into user code.
    pub(crate) fn get(&self) -> MutexGuard<'_, Locked<C>> {
        lock(&self.0)
    }

    /// The handles' side of this connection.
    pub(crate) fn writer(&self) -> Arc<dyn DirectWrite> {
        Arc::new(SharedConnection(self.0.clone()))
    }

    fn try_get(&self) -> Option<MutexGuard<'_, Locked<C>>> {
        match self.0.try_lock() {
            Ok(connection) => Some(connection),
            Err(TryLockError::Poisoned(poisoned)) => Some(poisoned.into_inner()),
            Err(TryLockError::WouldBlock) => None,
        }
    }
}

/// Nobody waits on this waker: what cannot finish at once is left to the driver, which the
/// caller wakes and which registers its own waker when it polls.
fn no_waiting() -> Context<'static> {
    Context::from_waker(Waker::noop())
}

impl<C: Connection> DirectWrite for SharedConnection<C> {
    fn try_write(&self, shared: &Shared, message: Message, flush: bool) -> Written {
        let Some(mut locked) = self.try_get() else {
            return Written::Declined(message);
        };
        let Locked {
            connection,
            session,
        } = &mut *locked;
        if session
            .as_ref()
            .is_some_and(|s| !s.takes_new(message.len()))
        {
            // Resends go first, and a full replay buffer holds messages in the queue.
            return Written::Declined(message);
        }
        let mut cx = no_waiting();
        if !matches!(connection.poll_ready(&mut cx), Poll::Ready(Ok(()))) {
            return Written::Declined(message);
        }
        let size = message.len() as u64;
        match session {
            // A clone shares the payload. If the write fails, the frame did not go out whole
            // (the connection broke under it): the message goes to the queue and, with the
            // reconnect, onto the next connection, as a queued one would have.
            None => {
                if connection.start_send(message.clone()).is_err() {
                    return Written::Declined(message);
                }
            }
            // Numbered, kept for replay and sealed with the current ack; a failed write takes
            // all of that back, and the message is queued like the one above.
            Some(session) => {
                let written = session
                    .state
                    .push_and_write(message, |frame| connection.start_send(frame));
                match written {
                    Ok(()) => session.send_next = session.state.next_seq(),
                    Err(message) => return Written::Declined(message),
                }
            }
        }
        shared.direct_written(size);
        if flush && matches!(connection.poll_flush(&mut cx), Poll::Ready(Ok(()))) {
            shared.direct_flushed();
            return Written::Flushed;
        }
        // Unflushed, or the flush failed: the driver's next flush finishes it or finds the
        // connection broken (the message is then lost in flight, like any written one).
        Written::Buffered
    }

    fn try_flush(&self, shared: &Shared) -> bool {
        let Some(mut locked) = self.try_get() else {
            return false;
        };
        if matches!(
            locked.connection.poll_flush(&mut no_waiting()),
            Poll::Ready(Ok(()))
        ) {
            shared.direct_flushed();
            return true;
        }
        false
    }
}
