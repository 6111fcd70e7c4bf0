//! The [`Transport`] trait: the one thing that differs between targets.
//!
//! Everything above this module (the session driver, the public API) is written once against
//! these traits; `cfg_if!` picks the backend: `native.rs` (tokio-tungstenite over rustls) or
//! `browser.rs` (the browser's own `WebSocket` through web-sys).

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use crate::url::WsUrl;
use crate::{CloseEvent, Error, Message, Options};

cfg_if::cfg_if! {
    if #[cfg(target_arch = "wasm32")] {
        mod browser;
        /// The backend for this target.
        pub(crate) use browser::Browser as Backend;
        /// The JS values of received binary messages (npm package only).
        #[cfg(feature = "js")]
        pub(crate) use browser::received;
        #[cfg(feature = "js")]
        pub(crate) use browser::bytes_of;
    } else {
        mod native;
        /// The backend for this target.
        pub(crate) use native::Native as Backend;
        pub(crate) mod wake_batch;
    }
}

cfg_if::cfg_if! {
    if #[cfg(target_arch = "wasm32")] {
        /// `Send` on native targets; nothing in the browser, where JS objects are `!Send` and
        /// everything runs on one thread. Callbacks are bound by it, so that the same code
        /// compiles for both while native callbacks can run on a background thread.
        pub trait MaybeSend {}
        impl<T: ?Sized> MaybeSend for T {}
        /// `Sync` on native targets; nothing in the browser (see [`MaybeSend`]).
        pub trait MaybeSync {}
        impl<T: ?Sized> MaybeSync for T {}
    } else {
        /// `Send` on native targets; nothing in the browser, where JS objects are `!Send` and
        /// everything runs on one thread. Callbacks are bound by it, so that the same code
        /// compiles for both while native callbacks can run on a background thread.
        pub trait MaybeSend: Send {}
        impl<T: ?Sized + Send> MaybeSend for T {}
        /// `Sync` on native targets; nothing in the browser (see [`MaybeSend`]).
        pub trait MaybeSync: Sync {}
        impl<T: ?Sized + Sync> MaybeSync for T {}
    }
}

/// What a connection reports when polled for input.
#[derive(Debug)]
pub(crate) enum Incoming {
    /// A complete data message.
    Message(Message),
    /// A ping or pong from the peer: not data, but proof that it is alive (native only:
    /// browsers answer pings themselves and never show them to the page).
    #[cfg_attr(target_arch = "wasm32", allow(dead_code))]
    Alive,
    /// The connection ended; no more input will come.
    Closed(CloseEvent),
    /// The connection failed (protocol error, oversized or invalid message, I/O error).
    Failed(Error),
}

/// The bytes a connection holds unsent in a buffer of the platform's own (the browser's
/// `bufferedAmount`), readable from outside the driver task.
pub(crate) trait PlatformBuffer: MaybeSend {
    /// The exact count: asks the platform (in the browser, a call into JS).
    fn exact(&self) -> u64;
    /// An upper bound known without asking: the last exact count plus every byte handed to
    /// the platform since. A sender checks its high-water mark against it first, so that a
    /// stream of sends well below the mark does not ask the platform once per message.
    fn at_most(&self) -> u64;
}

/// See [`PlatformBuffer`].
pub(crate) type BufferedProbe = Box<dyn PlatformBuffer>;

/// A way to open WebSocket connections, plus the bits of runtime the session needs.
pub(crate) trait Transport: 'static {
    /// An open connection.
    type Connection: Connection;
    /// A timer future.
    type Sleep: Future<Output = ()> + MaybeSend + 'static;

    /// Opens a connection: resolves once the WebSocket handshake has succeeded.
    /// Timeouts are applied by the caller.
    fn connect(
        url: &WsUrl,
        options: &Options,
    ) -> impl Future<Output = Result<Self::Connection, Error>> + MaybeSend + 'static;

    /// Checks, before anything is started, that this target supports `options`.
    fn check_options(options: &Options) -> Result<(), Error>;

    /// A future that completes after `duration`.
    fn sleep(duration: Duration) -> Self::Sleep;

    /// Makes `sleep` complete `duration` from now (also after it completed). A timer that
    /// restarts often is cheaper reused than remade where the platform allows it.
    fn restart(mut sleep: Pin<&mut Self::Sleep>, duration: Duration) {
        sleep.set(Self::sleep(duration));
    }

    /// Monotonic time since an arbitrary fixed point (the session's clock; injectable in tests).
    fn now() -> Duration;

    /// Runs `task` in the background until it completes.
    fn spawn(task: impl Future<Output = ()> + MaybeSend + 'static) -> Result<(), Error>;
}

/// An open WebSocket connection, driven by polling (like `Sink` + `Stream`), so that one task
/// can read, write and watch timers at once.
pub(crate) trait Connection: Unpin + MaybeSend + 'static {
    /// The subprotocol the server selected, or `""`.
    fn protocol(&self) -> &str;
    /// Ready to accept one more message with [`Connection::start_send`].
    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Error>>;
    /// Queues a message for writing.
    fn start_send(&mut self, message: Message) -> Result<(), Error>;
    /// Writes out everything queued.
    fn poll_flush(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Error>>;
    /// Queues a close frame; call [`Connection::poll_flush`] to send it. `code` may be any
    /// valid close code (1002, 1009, … are used on failures).
    fn start_close(&mut self, code: u16, reason: &str) -> Result<(), Error>;
    /// Queues a WebSocket ping frame (native heartbeat); call [`Connection::poll_flush`].
    fn start_ping(&mut self) -> Result<(), Error>;
    /// The next incoming message or the end of the connection.
    fn poll_next(&mut self, cx: &mut Context<'_>) -> Poll<Incoming>;
    /// A probe for bytes handed to the connection but not yet sent, readable from any thread,
    /// where the platform keeps such a buffer (the browser's `bufferedAmount`).
    fn buffered_probe(&self) -> Option<BufferedProbe>;
    /// Received messages of at least this many bytes keep a read buffer of their own alive
    /// (natively tungstenite's, which the message shares): reading the next frame while one
    /// is still unconsumed makes the connection allocate, zero and fill a fresh buffer. The
    /// driver then waits briefly for the consumer before reading on. `usize::MAX`: reading
    /// ahead costs nothing extra (the browser hands over each message separately anyway), or
    /// is worth its cost because it runs in parallel with the consumer. Asked once per
    /// connection, from the driver's task.
    fn large_message(&self) -> usize {
        usize::MAX
    }
}
