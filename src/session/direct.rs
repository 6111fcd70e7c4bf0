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

use std::sync::{Arc, Mutex, MutexGuard, TryLockError};
use std::task::{Context, Poll, Waker};

use super::shared::lock;
use crate::transport::{Connection, MaybeSend, MaybeSync};
use crate::Message;

/// What became of a direct write.
pub(crate) enum Written {
    /// On the network (handed to the operating system or the browser).
    Flushed,
    /// In the connection's write buffer: the socket pushed back, the driver finishes the flush.
    Buffered,
    /// Not written: the caller queues it for the driver.
    Declined(Message),
}

/// The connection as handles see it: a message in, an outcome out.
pub(crate) trait DirectWrite: MaybeSend + MaybeSync {
    /// Writes `message` and flushes without waiting. `Declined` hands it back untouched in
    /// effect: nothing of it went out.
    fn try_write(&self, message: Message) -> Written;
}

/// The driver's connection, shareable with the handles' direct writes.
pub(crate) struct SharedConnection<C>(Arc<Mutex<C>>);

impl<C: Connection> SharedConnection<C> {
    pub(crate) fn new(connection: C) -> Self {
        SharedConnection(Arc::new(Mutex::new(connection)))
    }

    /// The connection, for one operation of the driver. Handles hold it only inside
    /// [`DirectWrite::try_write`], which neither blocks nor calls back into unisock.
    pub(crate) fn get(&self) -> MutexGuard<'_, C> {
        lock(&self.0)
    }

    /// The handles' side of this connection.
    pub(crate) fn writer(&self) -> Arc<dyn DirectWrite> {
        Arc::new(SharedConnection(self.0.clone()))
    }
}

impl<C: Connection> DirectWrite for SharedConnection<C> {
    fn try_write(&self, message: Message) -> Written {
        let mut connection = match self.0.try_lock() {
            Ok(connection) => connection,
            Err(TryLockError::Poisoned(poisoned)) => poisoned.into_inner(),
            Err(TryLockError::WouldBlock) => return Written::Declined(message),
        };
        // Nobody waits on this waker: a write that cannot finish now is left to the driver,
        // which the caller wakes and which registers its own waker when it polls.
        let mut cx = Context::from_waker(Waker::noop());
        if !matches!(connection.poll_ready(&mut cx), Poll::Ready(Ok(()))) {
            return Written::Declined(message);
        }
        // A clone shares the payload. If the write fails, the frame did not go out whole (the
        // connection broke under it): the message goes to the queue and, with the reconnect,
        // onto the next connection, as a queued one would have.
        match connection.start_send(message.clone()) {
            Err(_) => Written::Declined(message),
            Ok(()) => match connection.poll_flush(&mut cx) {
                Poll::Ready(Ok(())) => Written::Flushed,
                Poll::Pending => Written::Buffered,
                Poll::Ready(Err(_)) => Written::Declined(message),
            },
        }
    }
}
