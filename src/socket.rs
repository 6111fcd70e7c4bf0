//! The callback API: [`Socket`], shaped like the browser's `WebSocket` (and Java-WebSocket's
//! client): start it, get `on_open` / `on_message` / `on_error` / `on_close` callbacks, or poll
//! events with [`Socket::try_recv`] from a game or UI loop.

use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use futures::channel::mpsc;

use crate::session::{self, EventQueue, Gone, Handle, Outlet};
use crate::transport::{Backend, MaybeSend, MaybeSync};
use crate::url::WsUrl;
use crate::{CloseEvent, Error, Event, Gap, Message, Options, ReadyState};

cfg_if::cfg_if! {
    if #[cfg(target_arch = "wasm32")] {
        type Callback<T> = Box<dyn FnMut(T) + 'static>;
        type WakeCallback = Arc<dyn Fn() + 'static>;
    } else {
        // Native callbacks run on the connection's background thread.
        type Callback<T> = Box<dyn FnMut(T) + Send + 'static>;
        type WakeCallback = Arc<dyn Fn() + Send + Sync + 'static>;
    }
}

/// A WebSocket connection driven in the background, with browser-style callbacks.
///
/// [`Socket::connect`] returns at once, like `new WebSocket(url)`: the connection opens in the
/// background (natively on the caller's tokio runtime if there is one, otherwise on a
/// background thread, so plain threads need no runtime; in the browser on the event loop).
/// Each event goes to its callback if one was registered, and otherwise waits in a queue read
/// by [`Socket::try_recv`] (non-blocking) or `Socket::recv` (blocking, native only). The
/// optional [`SocketBuilder::on_wake`] callback runs whenever an event is queued, to wake a
/// UI loop; nothing is polled on a timer.
///
/// Callbacks run on the connection's task: keep them short, and hand heavy work elsewhere.
/// Messages sent before the connection is open are queued and go out once it is.
///
/// A `Socket` is a handle to a connection that lives on its own (natively `Send + Sync`):
/// clones are cheap and share the connection and its event queue (each queued event goes to
/// whichever clone reads it first), so one thread can send while another reads. The
/// connection outlives the thread that opened it and closes with 1000 once the last clone is
/// dropped (or on [`Socket::close`]). `examples/service_thread.rs` runs one as a background
/// service feeding a UI loop.
///
/// ```no_run
/// use unisock::{Message, Socket};
///
/// let socket = Socket::builder("ws://127.0.0.1:9001/echo")
///     .on_open(|protocol| println!("open, subprotocol {protocol:?}"))
///     .on_message(|message| println!("got {message:?}"))
///     .on_close(|close| println!("closed: {} {}", close.code, close.reason))
///     .connect()?;
/// socket.send(Message::text("hello"))?;
/// # Ok::<(), unisock::Error>(())
/// ```
///
/// Polling from a loop instead:
///
/// ```no_run
/// use unisock::{Event, Socket};
///
/// let socket = Socket::connect("ws://127.0.0.1:9001/echo", Default::default())?;
/// socket.send("hi")?;
/// loop {
///     while let Some(event) = socket.try_recv() {
///         if let Event::Close(_) = event {
///             return Ok(());
///         }
///         println!("{event:?}");
///     }
///     // … draw a frame …
/// #   break;
/// }
/// # Ok::<(), unisock::Error>(())
/// ```
#[derive(Clone)]
pub struct Socket {
    handle: Handle,
    queue: Arc<Mutex<EventQueue>>,
}

/// Sets up a [`Socket`]'s options and callbacks, then connects.
pub struct SocketBuilder {
    url: String,
    options: Options,
    callbacks: Callbacks,
}

#[derive(Default)]
struct Callbacks {
    on_open: Option<Callback<String>>,
    on_message: Option<Callback<Message>>,
    on_error: Option<Callback<Error>>,
    on_close: Option<Callback<CloseEvent>>,
    on_reconnecting: Option<Callback<Reconnecting>>,
    on_session: Option<Callback<SessionMode>>,
    on_gap: Option<Callback<Gap>>,
    on_wake: Option<WakeCallback>,
}

impl SocketBuilder {
    /// Sets the connection options.
    pub fn options(mut self, options: Options) -> Self {
        self.options = options;
        self
    }

    /// Called when the connection opens, with the selected subprotocol (or `""`).
    pub fn on_open(mut self, callback: impl FnMut(String) + MaybeSend + 'static) -> Self {
        self.callbacks.on_open = Some(Box::new(callback));
        self
    }

    /// Called for each message, in order.
    pub fn on_message(mut self, callback: impl FnMut(Message) + MaybeSend + 'static) -> Self {
        self.callbacks.on_message = Some(Box::new(callback));
        self
    }

    /// Called when something goes wrong (a failed connect, a protocol error, …); an
    /// `on_close` follows when the error ended the connection.
    pub fn on_error(mut self, callback: impl FnMut(Error) + MaybeSend + 'static) -> Self {
        self.callbacks.on_error = Some(Box::new(callback));
        self
    }

    /// Called once when the connection is closed: always the last callback.
    pub fn on_close(mut self, callback: impl FnMut(CloseEvent) + MaybeSend + 'static) -> Self {
        self.callbacks.on_close = Some(Box::new(callback));
        self
    }

    /// Called when the connection dropped (or an attempt failed) and another attempt starts
    /// after a delay; `on_open` follows when it succeeds.
    pub fn on_reconnecting(
        mut self,
        callback: impl FnMut(Reconnecting) + MaybeSend + 'static,
    ) -> Self {
        self.callbacks.on_reconnecting = Some(Box::new(callback));
        self
    }

    /// Called after each `on_open` when [`Options::session`] is set: which delivery mode the
    /// connection runs in (the fields of [`Event::Session`]).
    pub fn on_session(mut self, callback: impl FnMut(SessionMode) + MaybeSend + 'static) -> Self {
        self.callbacks.on_session = Some(Box::new(callback));
        self
    }

    /// Called when messages of an acknowledged session may have been lost (see [`Gap`]).
    pub fn on_gap(mut self, callback: impl FnMut(Gap) + MaybeSend + 'static) -> Self {
        self.callbacks.on_gap = Some(Box::new(callback));
        self
    }

    /// Called after an event is queued for [`Socket::try_recv`], from the connection's
    /// thread: ask your UI to repaint or your loop to wake up. Natively, events queued
    /// together (a burst read in one go) share one call, made once they are all queued:
    /// drain with `try_recv` until it returns `None`.
    pub fn on_wake(mut self, callback: impl Fn() + MaybeSend + MaybeSync + 'static) -> Self {
        self.callbacks.on_wake = Some(Arc::new(callback));
        self
    }

    /// Starts connecting and returns at once. Fails only for what can be known up front: an
    /// invalid URL, an option this target does not support, or (natively) a background
    /// runtime that cannot start. A failed connect arrives later, as `on_error` + `on_close`.
    pub fn connect(self) -> Result<Socket, Error> {
        let url = WsUrl::parse(&self.url)?;
        let (queue_tx, queue_rx) = mpsc::channel(self.options.receive_buffer.max(1));
        let dispatcher = Dispatcher {
            callbacks: self.callbacks,
            queue: queue_tx,
        };
        let outlet = |_: &_| -> Box<dyn Outlet> { Box::new(dispatcher) };
        let handle = session::spawn::<Backend>(url, self.options, outlet, true)?;
        let queue = EventQueue::new(queue_rx, handle.shared_arc());
        // In the browser the queue holds `Shared` (a JS object, `!Send`); one thread there.
        #[cfg_attr(target_arch = "wasm32", allow(clippy::arc_with_non_send_sync))]
        let queue = Arc::new(Mutex::new(queue));
        Ok(Socket { handle, queue })
    }
}

impl Socket {
    /// Starts a connection with no callbacks: every event waits for [`Socket::try_recv`].
    pub fn connect(url: &str, options: Options) -> Result<Socket, Error> {
        Socket::builder(url).options(options).connect()
    }

    /// A builder, to register callbacks before the connection starts.
    pub fn builder(url: &str) -> SocketBuilder {
        SocketBuilder {
            url: url.to_owned(),
            options: Options::default(),
            callbacks: Callbacks::default(),
        }
    }

    /// Queues a message, like the browser's `send` (but also before the connection is open).
    /// Fails with [`Error::MessageTooLarge`] or, once closing or closed, [`Error::Closed`].
    pub fn send(&self, message: impl Into<Message>) -> Result<(), Error> {
        if cfg!(target_arch = "wasm32") {
            // The browser's `send` is cheap (its network thread does the work): written at
            // once when the connection is idle, without waiting for the driver's task.
            self.handle.send(message.into()).map(drop)
        } else {
            // Natively a direct write is a system call on the caller's thread (on loopback
            // it also runs the receiving side's TCP work): a plain thread sending a stream of
            // messages goes faster handing them to the I/O thread, which writes them in
            // batches (measured: pipelined 16 B - 64 KiB about 0.75x with direct writes).
            self.handle.enqueue(message.into()).map(drop)
        }
    }

    /// Starts the closing handshake, like the browser's `close(code, reason)`; see
    /// [`Sender::close`](crate::Sender::close).
    pub fn close(&self, code: u16, reason: &str) -> Result<(), Error> {
        self.handle.close(code, reason)
    }

    /// The next queued event, without blocking.
    pub fn try_recv(&self) -> Option<Event> {
        self.lock_queue().try_recv().ok()
    }

    /// Waits for the next queued event; `None` once the connection is closed and every event
    /// was read. Native only (a browser page must not block). It parks the calling thread, so
    /// it also works inside other executors, but it blocks them while it waits.
    #[cfg(not(target_arch = "wasm32"))]
    pub fn recv(&self) -> Option<Event> {
        self.recv_until(None).unwrap_or(None)
    }

    /// Like [`Socket::recv`], but gives up after `timeout`: `Err(Timeout)` when nothing came.
    #[cfg(not(target_arch = "wasm32"))]
    pub fn recv_timeout(&self, timeout: std::time::Duration) -> Result<Option<Event>, Timeout> {
        self.recv_until(Some(std::time::Instant::now() + timeout))
    }

    #[cfg(not(target_arch = "wasm32"))]
    fn recv_until(&self, deadline: Option<std::time::Instant>) -> Result<Option<Event>, Timeout> {
        use futures::StreamExt;

        /// Wakes the waiting thread: no executor, no polling interval. From the connection's
        /// task, once that task has queued everything it read (see `wake_batch`).
        struct Unpark(std::thread::Thread);
        impl std::task::Wake for Unpark {
            fn wake(self: Arc<Self>) {
                crate::transport::wake_batch::unpark(&self.0);
            }
        }
        thread_local! {
            // One per thread, made once: a thread calling recv() per message would otherwise
            // allocate a waker per call, and the queue would replace its registered one.
            static THREAD_WAKER: std::task::Waker =
                std::task::Waker::from(Arc::new(Unpark(std::thread::current())));
        }
        let waker = THREAD_WAKER.with(std::task::Waker::clone);
        let mut cx = Context::from_waker(&waker);
        let mut queue = self.lock_queue();
        loop {
            if let Poll::Ready(event) = queue.poll_next_unpin(&mut cx) {
                return Ok(event);
            }
            match deadline {
                None => std::thread::park(),
                Some(deadline) => {
                    let left = deadline.saturating_duration_since(std::time::Instant::now());
                    if left.is_zero() {
                        return Err(Timeout);
                    }
                    std::thread::park_timeout(left);
                }
            }
        }
    }

    /// The connection state: the browser's `readyState`.
    pub fn ready_state(&self) -> ReadyState {
        self.handle.shared().ready_state()
    }

    /// Bytes sent but not yet written to the network: the browser's `bufferedAmount`.
    pub fn buffered_amount(&self) -> u64 {
        self.handle.shared().buffered_amount()
    }

    /// The subprotocol the server selected, or `""`.
    pub fn protocol(&self) -> String {
        self.handle.shared().protocol()
    }

    /// The URL, without userinfo, query string or fragment.
    pub fn url(&self) -> &str {
        self.handle.shared().url()
    }

    /// Reconnect attempts since the connection was last stable (0 while all is well).
    pub fn retry_count(&self) -> u32 {
        self.handle.shared().retry_count()
    }

    fn lock_queue(&self) -> std::sync::MutexGuard<'_, EventQueue> {
        self.queue
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl std::fmt::Debug for Socket {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Socket")
            .field("url", &self.url())
            .field("ready_state", &self.ready_state())
            .finish_non_exhaustive()
    }
}

/// Routes each event to its callback, or to the queue when there is none.
struct Dispatcher {
    callbacks: Callbacks,
    queue: mpsc::Sender<Event>,
}

impl Outlet for Dispatcher {
    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Gone>> {
        // The queue's receiver lives in the Socket: once it is dropped, nobody listens.
        self.queue.poll_ready(cx).map_err(|_| Gone)
    }

    fn emit(&mut self, event: Event) {
        let callbacks = &mut self.callbacks;
        let unhandled = match event {
            Event::Open { protocol } => match &mut callbacks.on_open {
                Some(callback) => return callback(protocol),
                None => Event::Open { protocol },
            },
            Event::Message(message) => match &mut callbacks.on_message {
                Some(callback) => return callback(message),
                None => Event::Message(message),
            },
            Event::Error(error) => match &mut callbacks.on_error {
                Some(callback) => return callback(error),
                None => Event::Error(error),
            },
            Event::Close(close) => match &mut callbacks.on_close {
                Some(callback) => return callback(close),
                None => Event::Close(close),
            },
            Event::Reconnecting {
                attempt,
                delay,
                close,
            } => match &mut callbacks.on_reconnecting {
                Some(callback) => {
                    return callback(Reconnecting {
                        attempt,
                        delay,
                        close,
                    })
                }
                None => Event::Reconnecting {
                    attempt,
                    delay,
                    close,
                },
            },
            Event::Session {
                acknowledged,
                resumed,
            } => match &mut callbacks.on_session {
                Some(callback) => {
                    return callback(SessionMode {
                        acknowledged,
                        resumed,
                    })
                }
                None => Event::Session {
                    acknowledged,
                    resumed,
                },
            },
            Event::Gap(gap) => match &mut callbacks.on_gap {
                Some(callback) => return callback(gap),
                None => Event::Gap(gap),
            },
        };
        // Natively, lets the connection's thread wake a reader for a batch (see `wake_batch`).
        #[cfg(not(target_arch = "wasm32"))]
        let bytes = match &unhandled {
            Event::Message(message) => message.len(),
            _ => 0,
        };
        if self.queue.try_send(unhandled).is_ok() {
            #[cfg(not(target_arch = "wasm32"))]
            crate::transport::wake_batch::queued(bytes);
            if let Some(wake) = &callbacks.on_wake {
                // Natively once per batch of events, like a parked `recv` (see `wake_batch`).
                #[cfg(not(target_arch = "wasm32"))]
                crate::transport::wake_batch::call(wake);
                #[cfg(target_arch = "wasm32")]
                wake();
            }
        }
    }
}

/// What [`SocketBuilder::on_session`] receives: the fields of [`Event::Session`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionMode {
    /// `true`: an acknowledged session (exactly once across reconnects); `false`: plain
    /// WebSocket (the server declined).
    pub acknowledged: bool,
    /// `true` when a previous session continued: nothing was lost.
    pub resumed: bool,
}

/// What [`SocketBuilder::on_reconnecting`] receives: the fields of [`Event::Reconnecting`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reconnecting {
    /// The attempt about to be made (1 for the first retry).
    pub attempt: u32,
    /// The wait before it.
    pub delay: std::time::Duration,
    /// How the previous connection ended (1006 after a failed attempt).
    pub close: CloseEvent,
}

/// `Socket::recv_timeout` (native only) found no event in time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timeout;

impl std::fmt::Display for Timeout {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("no event arrived in time")
    }
}

impl std::error::Error for Timeout {}
