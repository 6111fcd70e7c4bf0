//! The connection driver: one background task per connection, written once for every target
//! against the [`Transport`] trait.
//!
//! The task owns the connection. Handles ([`crate::Sender`], [`crate::Socket`]) talk to it
//! through a command channel and read its progress from [`Shared`]; events go out through an
//! [`Outlet`] (a bounded channel, or the user's callbacks). Reading from the socket pauses
//! while the outlet is full, so a slow consumer slows the peer down (TCP flow control) instead
//! of growing memory without bound.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicU8, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll, Waker};

use futures::channel::mpsc;
use futures::future::{self, Either};
use futures::StreamExt;

use crate::transport::{BufferedProbe, Connection, Incoming, MaybeSend, Transport};
use crate::url::WsUrl;
use crate::{CloseEvent, Error, Event, Message, Options, ReadyState};

/// Most events handled in one poll before the driver yields to other tasks.
const POLL_BUDGET: usize = 128;

/// What handles ask of the driver, in order.
#[derive(Debug)]
enum Command {
    Send(Message),
    Close { code: u16, reason: String },
}

/// Where the driver delivers events.
pub(crate) trait Outlet: MaybeSend + 'static {
    /// Ready for one more event; `Err(Gone)` once nobody listens any more.
    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Gone>>;
    /// Delivers one event; only called after `poll_ready` returned `Ready(Ok(()))`.
    fn emit(&mut self, event: Event);
}

/// The receiving side of an [`Outlet`] has gone away.
#[derive(Debug)]
pub(crate) struct Gone;

impl Outlet for mpsc::Sender<Event> {
    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Gone>> {
        mpsc::Sender::poll_ready(self, cx).map_err(|_| Gone)
    }

    fn emit(&mut self, event: Event) {
        // Cannot fail after poll_ready, except if the receiver was dropped in between: then
        // nobody wants the event.
        let _ = self.try_send(event);
    }
}

/// State shared between the driver and every handle.
pub(crate) struct Shared {
    url: WsUrl,
    max_message_size: usize,
    state: AtomicU8,
    /// Bytes accepted by `send` and not yet written to the network.
    buffered: AtomicU64,
    /// Messages accepted by `send`, and how many of them have been written (in order).
    accepted: Mutex<u64>,
    written: AtomicU64,
    /// Tasks waiting in `poll_flush` / `poll_ready`.
    waiters: Mutex<Vec<Waker>>,
    protocol: Mutex<String>,
    probe: Mutex<Option<BufferedProbe>>,
    /// `close()` was called before the connection opened: the connect is abandoned.
    abort_connect: AtomicBool,
    abort_waker: Mutex<Option<Waker>>,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic in another thread while holding one of these short locks leaves the data
    // consistent (plain counters and wakers), so poisoning is ignored rather than propagated.
    mutex.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl Shared {
    pub(crate) fn ready_state(&self) -> ReadyState {
        ReadyState::from_u8(self.state.load(Ordering::Acquire))
    }

    fn set_state(&self, state: ReadyState) {
        self.state.store(state as u8, Ordering::Release);
    }

    pub(crate) fn url(&self) -> &str {
        self.url.redacted()
    }

    pub(crate) fn protocol(&self) -> String {
        lock(&self.protocol).clone()
    }

    pub(crate) fn buffered_amount(&self) -> u64 {
        let ours = self.buffered.load(Ordering::Acquire);
        let platform = lock(&self.probe).as_ref().map_or(0, |probe| probe());
        ours + platform
    }

    /// Bytes accepted but not yet handed to the network (without the platform's buffer).
    pub(crate) fn queued_bytes(&self) -> u64 {
        self.buffered.load(Ordering::Acquire)
    }

    pub(crate) fn written(&self) -> u64 {
        self.written.load(Ordering::Acquire)
    }

    /// Registers a task to be woken on the next write progress or state change.
    pub(crate) fn register_waiter(&self, waker: &Waker) {
        let mut waiters = lock(&self.waiters);
        if !waiters.iter().any(|w| w.will_wake(waker)) {
            waiters.push(waker.clone());
        }
    }

    fn wake_waiters(&self) {
        let waiters = std::mem::take(&mut *lock(&self.waiters));
        for waker in waiters {
            waker.wake();
        }
    }

    fn mark_written(&self, messages: u64, bytes: u64) {
        self.buffered.fetch_sub(bytes, Ordering::AcqRel);
        self.written.fetch_add(messages, Ordering::AcqRel);
        self.wake_waiters();
    }

    fn finish(&self) {
        self.set_state(ReadyState::Closed);
        *lock(&self.probe) = None;
        self.wake_waiters();
    }
}

/// A handle's way to the driver: what `Sender` and `Socket` have in common.
pub(crate) struct Handle {
    shared: Arc<Shared>,
    commands: mpsc::UnboundedSender<Command>,
}

impl Handle {
    pub(crate) fn shared(&self) -> &Arc<Shared> {
        &self.shared
    }

    /// Queues a message; returns its sequence number (for flush tracking).
    pub(crate) fn send(&self, message: Message) -> Result<u64, Error> {
        let size = message.len();
        if size > self.shared.max_message_size {
            return Err(Error::MessageTooLarge {
                size,
                max: self.shared.max_message_size,
            });
        }
        if matches!(
            self.shared.ready_state(),
            ReadyState::Closing | ReadyState::Closed
        ) {
            return Err(Error::Closed);
        }
        // Sequence numbers must follow channel order, also with several handles sending.
        let mut accepted = lock(&self.shared.accepted);
        self.shared.buffered.fetch_add(size as u64, Ordering::AcqRel);
        if self.commands.unbounded_send(Command::Send(message)).is_err() {
            self.shared.buffered.fetch_sub(size as u64, Ordering::AcqRel);
            return Err(Error::Closed);
        }
        *accepted += 1;
        Ok(*accepted)
    }

    /// Starts the closing handshake after everything already sent. Like the browser's
    /// `close()`: validates the code and reason, does nothing if already closing or closed.
    pub(crate) fn close(&self, code: u16, reason: &str) -> Result<(), Error> {
        validate_close(code, reason)?;
        let previous = self.shared.state.fetch_max(ReadyState::Closing as u8, Ordering::AcqRel);
        match ReadyState::from_u8(previous) {
            ReadyState::Closing | ReadyState::Closed => Ok(()),
            ReadyState::Connecting => {
                self.shared.abort_connect.store(true, Ordering::Release);
                if let Some(waker) = lock(&self.shared.abort_waker).take() {
                    waker.wake();
                }
                Ok(())
            }
            ReadyState::Open => {
                let _ = self.commands.unbounded_send(Command::Close {
                    code,
                    reason: reason.to_owned(),
                });
                Ok(())
            }
        }
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

/// Starts a connection in the background and returns the handle to it.
pub(crate) fn spawn<T: Transport>(
    url: WsUrl,
    options: Options,
    outlet: Box<dyn Outlet>,
) -> Result<Handle, Error> {
    T::check_options(&options)?;
    let (commands, command_rx) = mpsc::unbounded();
    let shared = Arc::new(Shared {
        url: url.clone(),
        max_message_size: options.max_message_size,
        state: AtomicU8::new(ReadyState::Connecting as u8),
        buffered: AtomicU64::new(0),
        accepted: Mutex::new(0),
        written: AtomicU64::new(0),
        waiters: Mutex::new(Vec::new()),
        protocol: Mutex::new(String::new()),
        probe: Mutex::new(None),
        abort_connect: AtomicBool::new(false),
        abort_waker: Mutex::new(None),
    });
    T::spawn(run::<T>(url, options, shared.clone(), command_rx, outlet))?;
    Ok(Handle { shared, commands })
}

/// How the open phase ended.
enum End {
    Closed(CloseEvent),
    Failed(Error),
}

async fn run<T: Transport>(
    url: WsUrl,
    options: Options,
    shared: Arc<Shared>,
    commands: mpsc::UnboundedReceiver<Command>,
    mut outlet: Box<dyn Outlet>,
) {
    tracing::debug!(url = url.redacted(), "connecting");
    let connection = match open::<T>(&url, &options, &shared).await {
        Ok(connection) => connection,
        Err(None) => {
            tracing::debug!(url = url.redacted(), "connect abandoned by close()");
            shared.finish();
            deliver(&mut *outlet, Event::Close(CloseEvent::abnormal())).await;
            return;
        }
        Err(Some(error)) => {
            tracing::debug!(url = url.redacted(), %error, "connect failed");
            shared.finish();
            deliver(&mut *outlet, Event::Error(error)).await;
            deliver(&mut *outlet, Event::Close(CloseEvent::abnormal())).await;
            return;
        }
    };
    let protocol = connection.protocol().to_owned();
    *lock(&shared.protocol) = protocol.clone();
    *lock(&shared.probe) = connection.buffered_probe();
    // close() may have been called in the meantime: keep CLOSING then.
    let _ = shared.state.compare_exchange(
        ReadyState::Connecting as u8,
        ReadyState::Open as u8,
        Ordering::AcqRel,
        Ordering::Acquire,
    );
    let mut driver = Driver::<T> {
        connection,
        commands,
        commands_done: false,
        outlet,
        outlet_gone: false,
        shared: shared.clone(),
        close_timeout: options.close_timeout,
        close_deadline: None,
        unflushed_messages: 0,
        unflushed_bytes: 0,
        needs_flush: false,
        pending_event: Some(Event::Open { protocol }),
    };
    if shared.abort_connect.load(Ordering::Acquire) {
        let _ = driver.connection.start_close(1000, "");
        driver.needs_flush = true;
        driver.start_close_timer();
    }
    let end = future::poll_fn(|cx| driver.poll(cx)).await;
    let Driver {
        mut connection,
        mut outlet,
        ..
    } = driver;
    let close = match end {
        End::Closed(close) => close,
        End::Failed(error) => {
            tracing::debug!(url = url.redacted(), %error, "connection failed");
            // Tell the peer why, best effort and bounded in time; the close is not clean.
            if connection.start_close(error.close_code(), "").is_ok() {
                let flush = future::poll_fn(|cx| connection.poll_flush(cx));
                let _ = future::select(Box::pin(flush), Box::pin(T::sleep(options.close_timeout)))
                    .await;
            }
            shared.finish();
            deliver(&mut *outlet, Event::Error(error)).await;
            CloseEvent::abnormal()
        }
    };
    drop(connection);
    shared.finish();
    tracing::debug!(url = url.redacted(), code = close.code, clean = close.was_clean, "closed");
    deliver(&mut *outlet, Event::Close(close)).await;
}

/// Connects with the timeout, unless `close()` abandons the attempt (`Err(None)`).
async fn open<T: Transport>(
    url: &WsUrl,
    options: &Options,
    shared: &Shared,
) -> Result<T::Connection, Option<Error>> {
    let connect = Box::pin(T::connect(url, options));
    let timeout = match options.connect_timeout {
        Some(timeout) => Either::Left(T::sleep(timeout)),
        None => Either::Right(future::pending()),
    };
    let abort = future::poll_fn(|cx| {
        *lock(&shared.abort_waker) = Some(cx.waker().clone());
        if shared.abort_connect.load(Ordering::Acquire) {
            Poll::Ready(())
        } else {
            Poll::Pending
        }
    });
    let stop = future::select(Box::pin(timeout), Box::pin(abort));
    match future::select(connect, stop).await {
        Either::Left((result, _)) => result.map_err(Some),
        Either::Right((Either::Left(_), _)) => Err(Some(Error::ConnectTimeout {
            url: url.redacted().to_owned(),
            timeout: options.connect_timeout.unwrap_or_default(),
        })),
        Either::Right((Either::Right(_), _)) => Err(None),
    }
}

/// Waits for room in the outlet, then delivers (or drops the event if nobody listens).
async fn deliver(outlet: &mut dyn Outlet, event: Event) {
    if future::poll_fn(|cx| outlet.poll_ready(cx)).await.is_ok() {
        outlet.emit(event);
    }
}

/// The open phase: moves messages out, events in, and watches the close timer.
struct Driver<T: Transport> {
    connection: T::Connection,
    commands: mpsc::UnboundedReceiver<Command>,
    commands_done: bool,
    outlet: Box<dyn Outlet>,
    outlet_gone: bool,
    shared: Arc<Shared>,
    close_timeout: std::time::Duration,
    close_deadline: Option<Pin<Box<T::Sleep>>>,
    unflushed_messages: u64,
    unflushed_bytes: u64,
    needs_flush: bool,
    /// An event waiting for room in the outlet.
    pending_event: Option<Event>,
}

impl<T: Transport> Driver<T> {
    fn closing(&self) -> bool {
        self.close_deadline.is_some()
    }

    fn start_close_timer(&mut self) {
        self.shared.set_state(ReadyState::Closing);
        self.close_deadline = Some(Box::pin(T::sleep(self.close_timeout)));
    }

    fn poll(&mut self, cx: &mut Context<'_>) -> Poll<End> {
        for _ in 0..POLL_BUDGET {
            let mut progress = false;

            // Deliver what waits for the outlet (also tells whether we may read).
            let may_read = match self.poll_outlet(cx) {
                Poll::Ready(()) => true,
                Poll::Pending => false,
            };

            // Outgoing: commands into the connection until it pushes back.
            while !self.commands_done && !self.closing() {
                match self.connection.poll_ready(cx) {
                    Poll::Pending => break,
                    Poll::Ready(Err(e)) => return Poll::Ready(End::Failed(e)),
                    Poll::Ready(Ok(())) => {}
                }
                match self.commands.poll_next_unpin(cx) {
                    Poll::Pending => break,
                    Poll::Ready(None) => self.commands_done = true,
                    Poll::Ready(Some(Command::Send(message))) => {
                        let size = message.len() as u64;
                        if let Err(e) = self.connection.start_send(message) {
                            return Poll::Ready(End::Failed(e));
                        }
                        self.unflushed_messages += 1;
                        self.unflushed_bytes += size;
                        self.needs_flush = true;
                        progress = true;
                    }
                    Poll::Ready(Some(Command::Close { code, reason })) => {
                        if let Err(e) = self.connection.start_close(code, &reason) {
                            return Poll::Ready(End::Failed(e));
                        }
                        self.needs_flush = true;
                        self.start_close_timer();
                        progress = true;
                    }
                }
            }
            if self.needs_flush {
                match self.connection.poll_flush(cx) {
                    Poll::Pending => {}
                    Poll::Ready(Err(e)) => return Poll::Ready(End::Failed(e)),
                    Poll::Ready(Ok(())) => {
                        self.needs_flush = false;
                        self.shared
                            .mark_written(self.unflushed_messages, self.unflushed_bytes);
                        self.unflushed_messages = 0;
                        self.unflushed_bytes = 0;
                    }
                }
            }

            // Incoming, only while someone has room for it (or nobody listens at all).
            if may_read {
                match self.connection.poll_next(cx) {
                    Poll::Pending => {}
                    Poll::Ready(Incoming::Message(message)) => {
                        if !self.outlet_gone {
                            self.pending_event = Some(Event::Message(message));
                        }
                        progress = true;
                    }
                    Poll::Ready(Incoming::Closed(close)) => return Poll::Ready(End::Closed(close)),
                    Poll::Ready(Incoming::Failed(e)) => return Poll::Ready(End::Failed(e)),
                }
            }

            // Every handle is gone: nobody can send or listen, so say goodbye.
            if self.commands_done && self.outlet_gone && !self.closing() {
                if let Err(e) = self.connection.start_close(1000, "") {
                    return Poll::Ready(End::Failed(e));
                }
                self.needs_flush = true;
                self.start_close_timer();
                progress = true;
            }

            if let Some(deadline) = &mut self.close_deadline {
                if deadline.as_mut().poll(cx).is_ready() {
                    tracing::debug!(url = self.shared.url(), "peer did not answer our close frame");
                    return Poll::Ready(End::Closed(CloseEvent::abnormal()));
                }
            }

            if !progress {
                return Poll::Pending;
            }
        }
        // Budget spent: let other tasks run, then continue.
        cx.waker().wake_by_ref();
        Poll::Pending
    }

    /// Delivers the pending event if there is room; `Ready` when nothing is pending any more.
    fn poll_outlet(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        if self.outlet_gone {
            self.pending_event = None;
            return Poll::Ready(());
        }
        match self.outlet.poll_ready(cx) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(Err(Gone)) => {
                self.outlet_gone = true;
                self.pending_event = None;
                Poll::Ready(())
            }
            Poll::Ready(Ok(())) => {
                if let Some(event) = self.pending_event.take() {
                    self.outlet.emit(event);
                    // Room for the next one is checked on the next round.
                    return self.poll_outlet(cx);
                }
                Poll::Ready(())
            }
        }
    }
}
