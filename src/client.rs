//! The async API: [`connect`] gives a [`Sender`] (a `Sink` of messages) and a [`Receiver`]
//! (a `Stream` of events).

use std::pin::Pin;
use std::task::{Context, Poll};

use futures::channel::mpsc;
use futures::{Sink, Stream, StreamExt};

use std::sync::Arc;

use crate::session::{self, EventChannel, EventQueue, Handle, Shared};
use crate::transport::Backend;
use crate::url::WsUrl;
use crate::{Error, Event, Message, Options, ReadyState};

/// Opens a WebSocket connection and resolves once it is open.
///
/// Returns the two halves of the connection: a [`Sender`] to send messages and close, and a
/// [`Receiver`] of [`Event`]s, whose first event is the [`Event::Open`] of this connection.
/// Fails with a typed [`Error`]: an invalid URL, a refused or timed-out connect
/// ([`Options::connect_timeout`]), a TLS failure, a rejected handshake with its HTTP status, …
///
/// Natively it runs on the caller's tokio runtime if there is one, otherwise on a background
/// thread of unisock's own (so it also works under `futures::executor::block_on`). In the
/// browser it wraps the page's (or worker's) `WebSocket`.
///
/// ```no_run
/// use futures::{SinkExt, StreamExt};
/// use unisock::{Event, Message, Options};
///
/// # async fn run() -> Result<(), unisock::Error> {
/// let (mut sender, mut receiver) = unisock::connect("ws://127.0.0.1:9001/echo", Options::default()).await?;
/// sender.send(Message::text("hello")).await?;
/// while let Some(event) = receiver.next().await {
///     match event {
///         Event::Open { protocol } => println!("open (subprotocol {protocol:?})"),
///         Event::Message(message) => {
///             println!("got {message:?}");
///             sender.close(1000, "done")?;
///         }
///         Event::Error(error) => eprintln!("error: {error}"),
///         Event::Close(close) => println!("closed with {}", close.code),
///         _ => {}
///     }
/// }
/// # Ok(())
/// # }
/// ```
pub async fn connect(url: &str, options: Options) -> Result<(Sender, Receiver), Error> {
    let url = WsUrl::parse(url)?;
    let (events_tx, events_rx) = mpsc::channel(options.receive_buffer.max(1));
    let outlet = |shared: &Arc<Shared>| -> Box<dyn session::Outlet> {
        Box::new(EventChannel {
            sender: events_tx,
            shared: shared.clone(),
        })
    };
    let handle = session::spawn::<Backend>(url, options, outlet, false)?;
    let mut receiver = Receiver {
        events: EventQueue::new(events_rx, handle.shared_arc()),
        first: None,
        shared: handle.shared_arc(),
    };
    let first = receiver.events.next().await;
    receiver.shared.consumer_polled(first.is_some());
    match first {
        Some(open @ Event::Open { .. }) => {
            receiver.first = Some(open);
            let sender = Sender {
                handle,
                last_sent: 0,
            };
            Ok((sender, receiver))
        }
        Some(Event::Error(error)) => Err(error),
        _ => Err(Error::Closed),
    }
}

/// The sending half of a connection: a [`Sink`] of [`Message`]s, plus `close`.
///
/// `poll_ready` waits while more than [`Options::high_water_mark`] bytes wait to go out (and,
/// with [`WhenFull::Wait`](crate::WhenFull::Wait), while the queue is full), so a fast producer
/// cannot fill memory; [`Sender::try_send`] queues without waiting. `poll_flush` completes when
/// every message sent through this `Sender` has been written to the network, and fails with
/// [`Error::Closed`] if the session ended with some of them handed back unsent. Dropping the
/// `Sender` and the [`Receiver`] closes the connection (code 1000).
///
/// While the connection is down and reconnecting, messages wait in the queue and go out in
/// order once it is back.
///
/// Clones are cheap and send into the same connection (natively `Send + Sync`), each with its
/// own flush tracking; the connection closes once every clone and the `Receiver` are dropped.
#[derive(Clone)]
pub struct Sender {
    handle: Handle,
    /// Sequence number of the last message this sender queued (for `poll_flush`).
    last_sent: u64,
}

impl Sender {
    /// Queues a message without waiting, like the browser's `send`. Fails with
    /// [`Error::MessageTooLarge`] over [`Options::max_message_size`], [`Error::QueueFull`] when
    /// the queue is at its [limits](Options::queue), and [`Error::Closed`] once the connection
    /// is closing or closed; a message that is refused is not queued.
    pub fn try_send(&mut self, message: impl Into<Message>) -> Result<(), Error> {
        self.last_sent = self.handle.send(message.into())?;
        Ok(())
    }

    /// Starts the closing handshake after the messages already sent, like the browser's
    /// `close(code, reason)`. `code` must be 1000 or 3000–4999 and `reason` at most 123 bytes.
    /// The [`Receiver`] then yields the [`Event::Close`] with the peer's answer. Closing a
    /// connection that is already closing or closed does nothing.
    ///
    /// (To close with 1000 through the `Sink` trait, call `SinkExt::close(&mut sender)`.)
    pub fn close(&self, code: u16, reason: &str) -> Result<(), Error> {
        self.handle.close(code, reason)
    }

    /// Bytes sent but not yet written to the network: the browser's `bufferedAmount`.
    pub fn buffered_amount(&self) -> u64 {
        self.handle.shared().buffered_amount()
    }

    /// The connection state: the browser's `readyState`.
    pub fn ready_state(&self) -> ReadyState {
        self.handle.shared().ready_state()
    }

    /// The subprotocol the server selected, or `""`.
    pub fn protocol(&self) -> String {
        self.handle.shared().protocol()
    }

    /// Reconnect attempts since the connection was last stable (0 while all is well).
    pub fn retry_count(&self) -> u32 {
        self.handle.shared().retry_count()
    }

    /// The URL, without userinfo, query string or fragment.
    pub fn url(&self) -> &str {
        self.handle.shared().url()
    }
}

impl Sink<Message> for Sender {
    type Error = Error;

    fn poll_ready(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        let shared = self.handle.shared();
        if let Some(ready) = shared.sink_ready() {
            return Poll::Ready(ready);
        }
        // Register, then look again: the driver may have written in between.
        shared.register_waiter(cx.waker());
        match shared.sink_ready() {
            Some(ready) => Poll::Ready(ready),
            None => Poll::Pending,
        }
    }

    fn start_send(mut self: Pin<&mut Self>, message: Message) -> Result<(), Error> {
        // Written at once when the connection is idle, flushed by `poll_flush`: a burst of
        // messages goes out in one write.
        self.last_sent = self.handle.feed(message)?;
        Ok(())
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        let shared = self.handle.shared();
        shared.try_flush_direct();
        let check = || match shared.flushed(self.last_sent) {
            Some(true) => Some(Ok(())),
            // Handed back unsent in the final close event.
            Some(false) => Some(Err(Error::Closed)),
            None => None,
        };
        if let Some(result) = check() {
            return Poll::Ready(result);
        }
        shared.register_waiter(cx.waker());
        match check() {
            Some(result) => Poll::Ready(result),
            None => Poll::Pending,
        }
    }

    fn poll_close(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        match self.as_mut().poll_flush(cx) {
            Poll::Ready(Ok(())) => Poll::Ready(self.handle.close(1000, "")),
            // Already closed: nothing left to close.
            Poll::Ready(Err(Error::Closed)) => Poll::Ready(Ok(())),
            other => other,
        }
    }
}

impl std::fmt::Debug for Sender {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sender")
            .field("url", &self.url())
            .field("ready_state", &self.ready_state())
            .finish_non_exhaustive()
    }
}

/// The receiving half of a connection: a [`Stream`] of [`Event`]s that ends after the
/// [`Event::Close`].
///
/// Reading from the network pauses while [`Options::receive_buffer`] events wait unread.
pub struct Receiver {
    events: EventQueue,
    /// The `Open` event consumed by `connect`, handed out first.
    first: Option<Event>,
    shared: Arc<Shared>,
}

impl std::fmt::Debug for Receiver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Receiver")
            .field("url", &self.shared.url())
            .finish_non_exhaustive()
    }
}

impl Receiver {
    /// The next event if one is waiting, without blocking: for game and UI loops.
    pub fn try_recv(&mut self) -> Option<Event> {
        if let Some(first) = self.first.take() {
            return Some(first);
        }
        let event = self.events.try_recv().ok();
        self.shared.consumer_polled(event.is_some());
        event
    }
}

impl Stream for Receiver {
    type Item = Event;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Event>> {
        if let Some(first) = self.first.take() {
            return Poll::Ready(Some(first));
        }
        let next = self.events.poll_next_unpin(cx);
        match &next {
            Poll::Ready(Some(_)) => self.shared.consumer_polled(true),
            Poll::Pending => self.shared.consumer_polled(false),
            Poll::Ready(None) => {}
        }
        next
    }
}
