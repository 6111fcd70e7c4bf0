//! [`Shared`]: what the driver and every handle see of a connection, and [`Handle`]: the
//! handles' side of it (send, close), including the outgoing queue's accounting.

use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, AtomicU8, Ordering};
use std::sync::{Mutex, MutexGuard};
use std::task::Waker;

use futures::channel::mpsc;

use super::direct::{DirectWrite, Written};
use crate::transport::BufferedProbe;
use crate::url::WsUrl;
use crate::{Error, Message, Options, QueueLimits, ReadyState, WhenFull};

/// What handles ask of the driver, in order.
#[derive(Debug)]
pub(crate) enum Command {
    Send(Message),
    Close { code: u16, reason: String },
}

/// State shared between the driver and every handle.
pub(crate) struct Shared {
    url: WsUrl,
    max_message_size: usize,
    queue_limits: QueueLimits,
    high_water_mark: u64,
    state: AtomicU8,
    /// The outgoing queue: messages (and their bytes) accepted by `send` and not yet written.
    queued_messages: AtomicU64,
    queued_bytes: AtomicU64,
    /// Messages accepted so far (the last sequence number) and how many have left the queue.
    accepted: Mutex<u64>,
    dequeued: AtomicU64,
    /// Sequence number of the first message handed back unsent at the end (`u64::MAX`: none).
    first_unsent: AtomicU64,
    /// Tasks waiting in `poll_ready` / `poll_flush`.
    waiters: Mutex<Vec<Waker>>,
    protocol: Mutex<String>,
    probe: Mutex<Option<BufferedProbe>>,
    /// `close()` was called: no more reconnects, connect attempts and waits are abandoned.
    close_requested: AtomicBool,
    driver_waker: Mutex<Option<Waker>>,
    retry_count: AtomicU32,
    /// The connection failed, but the driver waits for the consumer to catch up first.
    failure_pending: AtomicBool,
    /// Events put into the `Receiver`'s channel, and taken out of it; whether the consumer is
    /// waiting for more (its last poll found none).
    events_emitted: AtomicU64,
    events_taken: AtomicU64,
    consumer_waiting: AtomicBool,
    /// The driver paused reading until the consumer has caught up: the consumer's next
    /// empty poll wakes it.
    driver_awaits_consumer: AtomicBool,
    /// Messages in the command channel, not yet taken and written by the driver.
    in_channel: AtomicU64,
    /// The open connection, for handles to write into directly while nothing is queued
    /// (`None` while connecting or closing).
    direct: Mutex<Option<std::sync::Arc<dyn DirectWrite>>>,
    /// Direct writes in the connection's write buffer, not flushed yet (also counted as
    /// queued).
    direct_unflushed_messages: AtomicU64,
    direct_unflushed_bytes: AtomicU64,
    /// The driver's last flush could not finish: it waits for the socket to take more.
    driver_flushing: AtomicBool,
}

pub(crate) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // These locks guard plain counters and wakers, consistent even if a holder panicked.
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl Shared {
    pub(crate) fn new(url: WsUrl, options: &Options) -> Self {
        Shared {
            url,
            max_message_size: options.max_message_size,
            queue_limits: options.queue,
            high_water_mark: options.high_water_mark as u64,
            state: AtomicU8::new(ReadyState::Connecting as u8),
            queued_messages: AtomicU64::new(0),
            queued_bytes: AtomicU64::new(0),
            accepted: Mutex::new(0),
            dequeued: AtomicU64::new(0),
            first_unsent: AtomicU64::new(u64::MAX),
            waiters: Mutex::new(Vec::new()),
            protocol: Mutex::new(String::new()),
            probe: Mutex::new(None),
            close_requested: AtomicBool::new(false),
            driver_waker: Mutex::new(None),
            retry_count: AtomicU32::new(0),
            failure_pending: AtomicBool::new(false),
            events_emitted: AtomicU64::new(0),
            events_taken: AtomicU64::new(0),
            consumer_waiting: AtomicBool::new(false),
            driver_awaits_consumer: AtomicBool::new(false),
            in_channel: AtomicU64::new(0),
            direct: Mutex::new(None),
            direct_unflushed_messages: AtomicU64::new(0),
            direct_unflushed_bytes: AtomicU64::new(0),
            driver_flushing: AtomicBool::new(false),
        }
    }

    pub(crate) fn ready_state(&self) -> ReadyState {
        ReadyState::from_u8(self.state.load(Ordering::Acquire))
    }

    pub(crate) fn is_closing(&self) -> bool {
        matches!(self.ready_state(), ReadyState::Closing | ReadyState::Closed)
    }

    /// Moves to `Connecting` or `Open`, unless a close was requested meanwhile.
    pub(crate) fn enter(&self, state: ReadyState) {
        let _ = self
            .state
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |current| {
                (current < ReadyState::Closing as u8).then_some(state as u8)
            });
        self.wake_waiters();
    }

    pub(crate) fn enter_closing(&self) {
        self.state
            .fetch_max(ReadyState::Closing as u8, Ordering::AcqRel);
    }

    pub(crate) fn finish(&self) {
        self.state
            .store(ReadyState::Closed as u8, Ordering::Release);
        *lock(&self.probe) = None;
        self.wake_waiters();
    }

    pub(crate) fn url(&self) -> &str {
        self.url.redacted()
    }

    pub(crate) fn protocol(&self) -> String {
        lock(&self.protocol).clone()
    }

    pub(crate) fn set_connection(&self, protocol: &str, probe: Option<BufferedProbe>) {
        *lock(&self.protocol) = protocol.to_owned();
        *lock(&self.probe) = probe;
    }

    pub(crate) fn retry_count(&self) -> u32 {
        self.retry_count.load(Ordering::Acquire)
    }

    pub(crate) fn set_retry_count(&self, attempt: u32) {
        self.retry_count.store(attempt, Ordering::Release);
    }

    /// Bytes waiting in the platform's own buffer (the browser's `bufferedAmount`).
    pub(crate) fn platform_buffered(&self) -> u64 {
        lock(&self.probe).as_ref().map_or(0, |probe| probe.exact())
    }

    /// Whether the platform's own buffer holds at most `limit` bytes; asks the platform only
    /// when its upper bound does not already tell.
    pub(crate) fn platform_within(&self, limit: u64) -> bool {
        lock(&self.probe)
            .as_ref()
            .is_none_or(|probe| probe.at_most() <= limit || probe.exact() <= limit)
    }

    /// Bytes sent and not yet on the network: the browser's `bufferedAmount`, plus what waits
    /// in unisock's queue (also while reconnecting).
    pub(crate) fn buffered_amount(&self) -> u64 {
        self.queued_bytes.load(Ordering::Acquire) + self.platform_buffered()
    }

    /// Messages waiting in the outgoing queue.
    pub(crate) fn queued_messages(&self) -> u64 {
        self.queued_messages.load(Ordering::Acquire)
    }

    /// How many accepted messages have left the queue (written, lost in flight or handed back).
    pub(crate) fn dequeued(&self) -> u64 {
        self.dequeued.load(Ordering::Acquire)
    }

    /// The driver holds a failure back until the consumer has caught up (see
    /// `Outlet::handled_later`).
    pub(crate) fn begin_failure(&self) {
        self.failure_pending.store(true, Ordering::Release);
    }

    pub(crate) fn end_failure(&self) {
        self.failure_pending.store(false, Ordering::Release);
    }

    /// An event went into the `Receiver`'s channel.
    pub(crate) fn event_emitted(&self) {
        self.events_emitted.fetch_add(1, Ordering::AcqRel);
    }

    /// The consumer took an event (`Some`) or found none and waits (`None`).
    pub(crate) fn consumer_polled(&self, took_event: bool) {
        if took_event {
            self.consumer_waiting.store(false, Ordering::Release);
            self.events_taken.fetch_add(1, Ordering::AcqRel);
        } else {
            // SeqCst with `caught_up_or_notify`: either the driver sees the consumer waiting,
            // or the consumer sees the driver's request and wakes it.
            self.consumer_waiting.store(true, Ordering::SeqCst);
            let awaited = self.driver_awaits_consumer.swap(false, Ordering::SeqCst);
            if awaited || self.failure_pending.load(Ordering::Acquire) {
                self.wake_driver();
            }
        }
    }

    /// The consumer has taken every event and asked for more: whatever it wanted to send in
    /// reply is in the queue by now.
    pub(crate) fn consumer_caught_up(&self) -> bool {
        self.consumer_waiting.load(Ordering::Acquire)
            && self.events_taken.load(Ordering::Acquire)
                == self.events_emitted.load(Ordering::Acquire)
    }

    /// Whether the consumer has caught up (see [`Shared::consumer_caught_up`]); if not, its
    /// next poll that finds no event wakes the driver.
    pub(crate) fn caught_up_or_notify(&self) -> bool {
        self.driver_awaits_consumer.store(true, Ordering::SeqCst);
        let caught_up = self.consumer_waiting.load(Ordering::SeqCst)
            && self.events_taken.load(Ordering::Acquire)
                == self.events_emitted.load(Ordering::Acquire);
        if caught_up {
            self.driver_awaits_consumer.store(false, Ordering::Relaxed);
        }
        caught_up
    }

    pub(crate) fn close_requested(&self) -> bool {
        self.close_requested.load(Ordering::Acquire)
    }

    pub(crate) fn set_driver_waker(&self, waker: &Waker) {
        let mut slot = lock(&self.driver_waker);
        if !slot.as_ref().is_some_and(|w| w.will_wake(waker)) {
            *slot = Some(waker.clone());
        }
    }

    pub(crate) fn wake_driver(&self) {
        if let Some(waker) = lock(&self.driver_waker).take() {
            waker.wake();
        }
    }

    /// Whether the queue has room for one more message (for the `Sink`).
    fn queue_has_room(&self) -> bool {
        let messages = self.queued_messages();
        messages < self.queue_limits.max_messages as u64
            && (messages == 0
                || self.queued_bytes.load(Ordering::Acquire) < self.queue_limits.max_bytes as u64)
    }

    fn queue_full_error(&self) -> Error {
        Error::QueueFull {
            messages: self.queued_messages() as usize,
            bytes: self.queued_bytes.load(Ordering::Acquire) as usize,
        }
    }

    /// `Sink::poll_ready`: `Some(result)` when decided, `None` to wait (after registering).
    pub(crate) fn sink_ready(&self) -> Option<Result<(), Error>> {
        if self.is_closing() {
            return Some(Err(Error::Closed));
        }
        let room = self.queue_has_room();
        if !room && self.queue_limits.when_full == WhenFull::Error {
            return Some(Err(self.queue_full_error()));
        }
        let below_mark = || {
            let queued = self.queued_bytes.load(Ordering::Acquire);
            queued <= self.high_water_mark && self.platform_within(self.high_water_mark - queued)
        };
        (room && below_mark()).then_some(Ok(()))
    }

    /// Registers a task to be woken on the next write progress or state change.
    pub(crate) fn register_waiter(&self, waker: &Waker) {
        {
            let mut waiters = lock(&self.waiters);
            if !waiters.iter().any(|w| w.will_wake(waker)) {
                waiters.push(waker.clone());
            }
        }
        // The browser signals no progress of its own buffer: the driver must look now and then.
        if !self.platform_within(0) {
            self.wake_driver();
        }
    }

    pub(crate) fn has_waiters(&self) -> bool {
        !lock(&self.waiters).is_empty()
    }

    pub(crate) fn wake_waiters(&self) {
        let waiters = std::mem::take(&mut *lock(&self.waiters));
        for waker in waiters {
            waker.wake();
        }
    }

    /// Whether the message with sequence number `seq` has gone out (or was lost in flight),
    /// as opposed to still waiting or handed back unsent: `None` while it waits.
    pub(crate) fn flushed(&self, seq: u64) -> Option<bool> {
        if seq >= self.first_unsent.load(Ordering::Acquire) {
            return Some(false);
        }
        (self.dequeued() >= seq).then_some(true)
    }

    /// Lets handles write into the open connection directly (see [`super::direct`]).
    pub(crate) fn allow_direct(&self, writer: std::sync::Arc<dyn DirectWrite>) {
        self.driver_flushing.store(false, Ordering::Release);
        *lock(&self.direct) = Some(writer);
    }

    /// Ends direct writes: once this returns, no handle writes into the connection any more.
    /// Returns the direct writes still unflushed (messages, bytes), which the driver has not
    /// taken yet.
    pub(crate) fn end_direct(&self) -> (u64, u64) {
        *lock(&self.direct) = None;
        self.take_direct_unflushed()
    }

    /// A direct write went into the connection's write buffer (called under its lock): it
    /// counts as queued until a flush.
    pub(crate) fn direct_written(&self, size: u64) {
        self.queued_messages.fetch_add(1, Ordering::AcqRel);
        self.queued_bytes.fetch_add(size, Ordering::AcqRel);
        self.direct_unflushed_bytes
            .fetch_add(size, Ordering::AcqRel);
        self.direct_unflushed_messages
            .fetch_add(1, Ordering::AcqRel);
    }

    /// The connection flushed (called under its lock): every direct write so far is out.
    pub(crate) fn direct_flushed(&self) {
        let (messages, bytes) = self.take_direct_unflushed();
        self.dequeue(messages, bytes);
    }

    /// Whether direct writes wait in the write buffer for a flush.
    pub(crate) fn has_direct_unflushed(&self) -> bool {
        self.direct_unflushed_messages.load(Ordering::Acquire) > 0
    }

    fn take_direct_unflushed(&self) -> (u64, u64) {
        if !self.has_direct_unflushed() {
            return (0, 0);
        }
        (
            self.direct_unflushed_messages.swap(0, Ordering::AcqRel),
            self.direct_unflushed_bytes.swap(0, Ordering::AcqRel),
        )
    }

    /// Whether the driver waits for the socket to finish a flush (a direct write then tells it
    /// to look again: it may have taken the driver's place as the socket's writer).
    pub(crate) fn set_driver_flushing(&self, flushing: bool) {
        self.driver_flushing.store(flushing, Ordering::Release);
    }

    /// Runs `write` with `value` on the direct writer if direct writes are allowed now; hands
    /// `value` back otherwise.
    fn with_direct<V, R>(
        &self,
        value: V,
        write: impl FnOnce(&dyn DirectWrite, V) -> R,
    ) -> Result<R, V> {
        if self.failure_pending.load(Ordering::Acquire) || self.ready_state() != ReadyState::Open {
            return Err(value);
        }
        // Holding the slot: the driver cannot end direct writes halfway through this one.
        let slot = lock(&self.direct);
        let Some(writer) = slot.as_deref() else {
            return Err(value);
        };
        let result = write(writer, value);
        drop(slot);
        if self.driver_flushing.load(Ordering::Acquire) {
            self.wake_driver();
        }
        Ok(result)
    }

    /// Writes an accepted message straight into the connection when no message waits in the
    /// queue ahead of it; hands it back when it has to be queued instead. Called with
    /// `accepted` locked, so that direct and queued messages keep the order of their sequence
    /// numbers.
    fn try_write_direct(&self, message: Message, flush: bool) -> Result<(), Message> {
        if self.in_channel.load(Ordering::Acquire) > 0 {
            return Err(message);
        }
        match self.with_direct(message, |writer, message| {
            writer.try_write(self, message, flush)
        })? {
            Written::Flushed => Ok(()),
            Written::Buffered => {
                // Left for a flush: the driver's, should nobody else flush. (Waking it again
                // before it has run costs little: its waker is taken by the first wake.)
                self.wake_driver();
                Ok(())
            }
            Written::Declined(message) => {
                // The connection may be full or broken: let the driver look.
                self.wake_driver();
                Err(message)
            }
        }
    }

    /// For `Sink::poll_flush`: flushes direct writes without waiting for the driver, when the
    /// connection is free and takes them.
    pub(crate) fn try_flush_direct(&self) {
        if self.has_direct_unflushed()
            && self.with_direct((), |writer, ()| writer.try_flush(self)) != Ok(true)
        {
            self.wake_driver();
        }
    }

    /// The driver took a message out of the queue and wrote it (or tried to).
    pub(crate) fn left_channel(&self) {
        self.in_channel.fetch_sub(1, Ordering::AcqRel);
    }

    /// The remaining `messages` are handed back unsent.
    pub(crate) fn hand_back(&self, messages: u64, bytes: u64) {
        self.in_channel.fetch_sub(messages, Ordering::AcqRel);
        if messages > 0 {
            self.first_unsent
                .store(self.dequeued() + 1, Ordering::Release);
        }
        self.dequeue(messages, bytes);
    }

    /// `messages` accepted messages of `bytes` bytes left the queue.
    pub(crate) fn dequeue(&self, messages: u64, bytes: u64) {
        if messages == 0 && bytes == 0 {
            return;
        }
        self.queued_bytes.fetch_sub(bytes, Ordering::AcqRel);
        self.queued_messages.fetch_sub(messages, Ordering::AcqRel);
        self.dequeued.fetch_add(messages, Ordering::AcqRel);
        self.wake_waiters();
    }
}

/// A handle's way to the driver: what `Sender` and `Socket` have in common. Clones talk to
/// the same connection; it closes (1000) once every clone and the event consumer are gone.
#[derive(Clone)]
pub(crate) struct Handle {
    shared: std::sync::Arc<Shared>,
    commands: mpsc::UnboundedSender<Command>,
}

impl Handle {
    pub(crate) fn new(
        shared: std::sync::Arc<Shared>,
        commands: mpsc::UnboundedSender<Command>,
    ) -> Self {
        Handle { shared, commands }
    }

    pub(crate) fn shared(&self) -> &Shared {
        &self.shared
    }

    pub(crate) fn shared_arc(&self) -> std::sync::Arc<Shared> {
        self.shared.clone()
    }

    /// Sends a message, written and flushed at once when the connection is idle (see
    /// [`super::direct`]), queued for the driver otherwise; returns its sequence number (for
    /// flush tracking).
    pub(crate) fn send(&self, message: Message) -> Result<u64, Error> {
        self.send_with(message, Some(true))
    }

    /// Like [`Handle::send`], for a caller that flushes later (`Sink::start_send`): a direct
    /// write may stay in the connection's write buffer, with the next ones, until the flush.
    pub(crate) fn feed(&self, message: Message) -> Result<u64, Error> {
        // The browser's `send` hands the message to the browser's own buffer (counted by
        // `bufferedAmount`): nothing is left to flush, so it counts as flushed at once.
        self.send_with(message, Some(cfg!(target_arch = "wasm32")))
    }

    /// Like [`Handle::send`], but always through the queue: the driver's task writes it.
    pub(crate) fn enqueue(&self, message: Message) -> Result<u64, Error> {
        self.send_with(message, None)
    }

    /// `direct`: `None` to queue, `Some(flush)` to write directly when the connection is idle.
    fn send_with(&self, message: Message, direct: Option<bool>) -> Result<u64, Error> {
        let shared = &*self.shared;
        let size = message.len();
        if size > shared.max_message_size {
            return Err(Error::MessageTooLarge {
                size,
                max: shared.max_message_size,
            });
        }
        if shared.is_closing() {
            return Err(Error::Closed);
        }
        // One lock around admission and enqueueing: sequence numbers follow channel order and
        // the limits hold, also with several handles sending at once.
        let mut accepted = lock(&shared.accepted);
        let messages = shared.queued_messages();
        let bytes = shared.queued_bytes.load(Ordering::Acquire);
        let limits = &shared.queue_limits;
        if messages >= limits.max_messages as u64
            || (messages > 0 && bytes + size as u64 > limits.max_bytes as u64)
        {
            return Err(shared.queue_full_error());
        }
        let message = match direct {
            Some(flush) => match shared.try_write_direct(message, flush) {
                Ok(()) => {
                    *accepted += 1;
                    return Ok(*accepted);
                }
                Err(message) => message,
            },
            None => message,
        };
        shared.queued_messages.fetch_add(1, Ordering::AcqRel);
        shared.queued_bytes.fetch_add(size as u64, Ordering::AcqRel);
        shared.in_channel.fetch_add(1, Ordering::AcqRel);
        if self
            .commands
            .unbounded_send(Command::Send(message))
            .is_err()
        {
            shared.in_channel.fetch_sub(1, Ordering::AcqRel);
            shared.queued_messages.fetch_sub(1, Ordering::AcqRel);
            shared.queued_bytes.fetch_sub(size as u64, Ordering::AcqRel);
            return Err(Error::Closed);
        }
        *accepted += 1;
        Ok(*accepted)
    }

    /// Starts the closing handshake after everything already sent. Like the browser's
    /// `close()`: validates the code and reason, does nothing if already closing or closed.
    pub(crate) fn close(&self, code: u16, reason: &str) -> Result<(), Error> {
        validate_close(code, reason)?;
        let shared = &*self.shared;
        if shared.close_requested.swap(true, Ordering::AcqRel) || shared.is_closing() {
            return Ok(());
        }
        shared.enter_closing();
        let _ = self.commands.unbounded_send(Command::Close {
            code,
            reason: reason.to_owned(),
        });
        shared.wake_driver();
        shared.wake_waiters();
        Ok(())
    }
}

/// The browser's rules for `close(code, reason)`, applied on every target.
pub(crate) fn validate_close(code: u16, reason: &str) -> Result<(), Error> {
    if code != 1000 && !(3000..=4999).contains(&code) {
        return Err(Error::InvalidCloseCode { code });
    }
    if reason.len() > 123 {
        return Err(Error::CloseReasonTooLong { len: reason.len() });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::sync::Arc;

    use super::*;
    use crate::transport::PlatformBuffer;

    /// A platform buffer whose true size and bound the test sets, counting exact reads.
    #[derive(Default)]
    struct FakeBuffer {
        exact: AtomicU64,
        bound: AtomicU64,
        reads: AtomicU64,
    }

    impl PlatformBuffer for Arc<FakeBuffer> {
        fn exact(&self) -> u64 {
            self.reads.fetch_add(1, Ordering::Relaxed);
            let exact = self.exact.load(Ordering::Relaxed);
            self.bound.store(exact, Ordering::Relaxed);
            exact
        }

        fn at_most(&self) -> u64 {
            self.bound.load(Ordering::Relaxed)
        }
    }

    #[test]
    fn the_high_water_mark_asks_the_platform_only_when_its_bound_is_above_the_mark() {
        let options = Options {
            high_water_mark: 1000,
            ..Options::default()
        };
        let shared = Shared::new(WsUrl::parse("ws://127.0.0.1:1/").unwrap(), &options);
        let buffer = Arc::new(FakeBuffer::default());
        shared.set_connection("", Some(Box::new(buffer.clone())));
        let set = |exact: u64, bound: u64| {
            buffer.exact.store(exact, Ordering::Relaxed);
            buffer.bound.store(bound, Ordering::Relaxed);
        };

        // The bound alone says "below the mark": no read.
        set(900, 1000);
        assert!(matches!(shared.sink_ready(), Some(Ok(()))));
        assert_eq!(buffer.reads.load(Ordering::Relaxed), 0);

        // The bound is above the mark, the real amount below: one read, which lowers the bound.
        set(200, 5000);
        assert!(matches!(shared.sink_ready(), Some(Ok(()))));
        assert_eq!(buffer.reads.load(Ordering::Relaxed), 1);
        assert_eq!(buffer.at_most(), 200);

        // Really above the mark: wait.
        set(1001, 1001);
        assert!(shared.sink_ready().is_none());
        assert_eq!(buffer.reads.load(Ordering::Relaxed), 2);

        // Drained: "nothing buffered" is known from the bound alone once it has been read.
        set(0, 0);
        assert!(shared.platform_within(0));
        assert_eq!(buffer.reads.load(Ordering::Relaxed), 2);
    }
}
