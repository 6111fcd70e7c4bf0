//! Browser backend: the browser's own `WebSocket` through web-sys.
//!
//! `binaryType` is set to `arraybuffer` so binary messages arrive as they are, in order (a
//! `Blob` would need an async read that can reorder them). The JS callbacks are owned by the
//! connection and detached when it is dropped, so nothing leaks and no callback outlives it.

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::future::Future;
use std::rc::{Rc, Weak};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use js_sys::{ArrayBuffer, JsString, Uint8Array};
use wasm_bindgen::closure::Closure;
use wasm_bindgen::{JsCast, JsValue};
use web_sys::{BinaryType, CloseEvent as JsCloseEvent, MessageEvent, WebSocket};

use super::{BufferedProbe, Connection, Incoming, MaybeSend, PlatformBuffer, Transport};
use crate::url::WsUrl;
use crate::{CloseEvent, Error, Message, Options};

/// The browser's `WebSocket`, driven from the JS event loop.
pub(crate) struct Browser;

impl Transport for Browser {
    type Connection = BrowserConnection;
    type Sleep = gloo_timers::future::TimeoutFuture;

    fn connect(
        url: &WsUrl,
        options: &Options,
    ) -> impl Future<Output = Result<BrowserConnection, Error>> + MaybeSend + 'static {
        let (url, options) = (url.clone(), options.clone());
        async move {
            let mut connection = BrowserConnection::open(&url, &options)?;
            std::future::poll_fn(|cx| connection.poll_open(cx)).await?;
            connection.protocol = connection.ws.protocol();
            // Subprotocols offered and none selected: Chromium fails the handshake (WHATWG
            // WebSockets), Firefox opens anyway. Fail everywhere, as unisock does natively;
            // dropping the connection closes it.
            if !options.protocols.is_empty() && connection.protocol.is_empty() {
                return Err(Error::ConnectFailed {
                    url: url.redacted().to_owned(),
                });
            }
            Ok(connection)
        }
    }

    fn check_options(options: &Options) -> Result<(), Error> {
        if !options.headers.is_empty() {
            return Err(Error::Unsupported {
                option: "custom headers",
                target: "in the browser (its WebSocket cannot send them)",
            });
        }
        if options.tls.extra_ca_pem.is_some() {
            return Err(Error::Unsupported {
                option: "an extra CA certificate",
                target: "in the browser (it uses its own trust store)",
            });
        }
        // An acknowledged session pings with its own frames; otherwise the page needs an
        // application ping (it cannot send WebSocket pings).
        if options.session.is_none()
            && options
                .heartbeat
                .as_ref()
                .is_some_and(|h| h.app_ping.is_none())
        {
            return Err(Error::Unsupported {
                option: "WebSocket ping frames",
                target: "in the browser (set Heartbeat::app_ping)",
            });
        }
        Ok(())
    }

    fn sleep(duration: Duration) -> Self::Sleep {
        let millis = duration.as_millis().min(u128::from(u32::MAX)) as u32;
        gloo_timers::future::TimeoutFuture::new(millis)
    }

    fn now() -> Duration {
        Duration::from_secs_f64(performance_now().max(0.0) / 1000.0)
    }

    fn spawn(task: impl Future<Output = ()> + MaybeSend + 'static) -> Result<(), Error> {
        SessionTask::spawn(task);
        Ok(())
    }
}

#[wasm_bindgen::prelude::wasm_bindgen]
extern "C" {
    /// `performance.now()`: monotonic milliseconds, in pages and workers alike.
    #[wasm_bindgen(js_namespace = performance, js_name = now)]
    fn performance_now() -> f64;

    /// `dst.set(src)`, `dst` being a view of wasm memory (what js-sys's `copy_to` calls).
    #[wasm_bindgen(js_namespace = Uint8Array, js_name = "prototype.set.call")]
    fn copy_into(dst: &mut [u8], src: &Uint8Array);
}

/// A copy of the bytes of a JS `Uint8Array`, like js-sys's `Uint8Array::to_vec` in two calls
/// into JS (`length`, `set`) instead of four: `to_vec` reads `length` three times (and checks
/// what cannot differ, as nothing runs in between). It runs for every message received, and
/// for every one the npm package's `send` is given.
pub(crate) fn bytes_of(array: &Uint8Array) -> Vec<u8> {
    let len = array.length() as usize;
    let mut bytes = Vec::with_capacity(len);
    // SAFETY: as in js-sys's `to_vec`: the capacity is `len`, and `set` writes exactly the
    // array's `len` bytes into it (read just above, and no JS runs in between that could
    // change it) before `set_len` says they are there.
    unsafe {
        copy_into(
            std::slice::from_raw_parts_mut(bytes.as_mut_ptr(), len),
            array,
        );
        bytes.set_len(len);
    }
    bytes
}

/// What the JS callbacks saw, waiting to be polled.
enum Raw {
    Open,
    Message(Message),
    /// The `error` event: the browser gives no details.
    Error,
    Close(CloseEvent),
}

#[derive(Default)]
struct Inbox {
    events: VecDeque<Raw>,
    waker: Option<Waker>,
    /// The task that polls this connection, if [`Browser::spawn`] started it: woken by a
    /// browser event, it is run at once instead (see [`SessionTask`]).
    task: Option<Weak<SessionTask>>,
}

impl Inbox {
    /// Called from the browser's event callbacks only, never from inside a poll or a user's
    /// call (see [`SessionTask::run_now`]).
    fn push(inbox: &RefCell<Inbox>, raw: Raw) {
        let (waker, task) = {
            let mut inbox = inbox.borrow_mut();
            inbox.events.push_back(raw);
            (inbox.waker.take(), inbox.task.clone())
        };
        if let Some(waker) = waker {
            match task.and_then(|task| task.upgrade()) {
                Some(task) => task.run_now(waker),
                None => waker.wake(),
            }
        }
    }

    /// Parks the connection's task until the next browser event.
    fn park(&mut self, cx: &Context<'_>) {
        self.waker = Some(cx.waker().clone());
        if self.task.is_none() {
            self.task = SessionTask::current();
        }
    }
}

/// A session's task: wasm-bindgen-futures' task around the session future, which a browser
/// event (a received message above all) polls right away, from the event's own callback,
/// instead of waking it. A wake costs a `queueMicrotask` and a turn of the executor's queue
/// before the session even sees the message; polling at once delivers it to the npm `Socket`'s
/// listeners in the browser's callback, as a `WebSocket` does, and to a `Receiver` one
/// microtask hop sooner.
///
/// Polling directly is only done from the browser's callbacks: they run on an empty stack, so
/// this task is never polled from inside itself (checked anyway: if it is busy, it is woken),
/// and never from inside a user's call (`send`, `close`, the constructor), so events stay
/// asynchronous for the user. Every other wake (commands, timers, the event channel) goes
/// through the executor as before, and the executor's own polls go through [`Self::poll`] too.
struct SessionTask {
    future: RefCell<Option<std::pin::Pin<Box<dyn Future<Output = ()>>>>>,
    /// The executor's waker for this task, from its last poll.
    waker: RefCell<Option<Waker>>,
}

thread_local! {
    /// The task being polled (for [`Inbox::park`]).
    static CURRENT: RefCell<Option<Weak<SessionTask>>> = const { RefCell::new(None) };
}

impl SessionTask {
    fn spawn(future: impl Future<Output = ()> + 'static) {
        let task = Rc::new(SessionTask {
            future: RefCell::new(Some(Box::pin(future))),
            waker: RefCell::new(None),
        });
        wasm_bindgen_futures::spawn_local(std::future::poll_fn(move |cx| task.poll(cx.waker())));
    }

    /// The task being polled right now, if any.
    fn current() -> Option<Weak<SessionTask>> {
        CURRENT.with(|current| current.borrow().clone())
    }

    /// Polls the session future with the executor's `waker`; `Ready` once it has finished.
    fn poll(self: &Rc<Self>, waker: &Waker) -> Poll<()> {
        let Ok(mut future) = self.future.try_borrow_mut() else {
            // Polled from inside its own poll (cannot happen, see above): try again later.
            waker.wake_by_ref();
            return Poll::Pending;
        };
        let Some(running) = future.as_mut() else {
            return Poll::Ready(());
        };
        {
            let mut stored = self.waker.borrow_mut();
            if !stored
                .as_ref()
                .is_some_and(|stored| stored.will_wake(waker))
            {
                *stored = Some(waker.clone());
            }
        }
        let previous = CURRENT.with(|current| current.replace(Some(Rc::downgrade(self))));
        let polled = running.as_mut().poll(&mut Context::from_waker(waker));
        CURRENT.with(|current| *current.borrow_mut() = previous);
        if polled.is_ready() {
            *future = None;
        }
        polled
    }

    /// Called for a browser event with the waker the connection was parked with: polls the
    /// task now if that waker is this task's own (it is for the session's connection, unless
    /// a combinator polled it with a waker of its own), else wakes it.
    fn run_now(self: &Rc<Self>, parked: Waker) {
        let waker = self.waker.borrow().clone();
        match waker {
            Some(waker) if waker.will_wake(&parked) => {
                if self.poll(&waker).is_ready() {
                    // Let the executor finish its task (and drop it) too.
                    waker.wake();
                }
            }
            _ => parked.wake(),
        }
    }
}

/// An open (or opening) browser `WebSocket` and the callbacks attached to it.
pub(crate) struct BrowserConnection {
    ws: WebSocket,
    url: String,
    /// The selected subprotocol, read once the connection is open.
    protocol: String,
    inbox: Rc<RefCell<Inbox>>,
    /// An upper bound of `bufferedAmount` (see [`BufferedAmount`]), raised by every send.
    buffered_bound: Rc<Cell<u64>>,
    max_message_size: usize,
    _on_open: Closure<dyn FnMut(web_sys::Event)>,
    _on_message: Closure<dyn FnMut(MessageEvent)>,
    _on_error: Closure<dyn FnMut(web_sys::Event)>,
    _on_close: Closure<dyn FnMut(JsCloseEvent)>,
}

impl BrowserConnection {
    fn open(url: &WsUrl, options: &Options) -> Result<Self, Error> {
        let protocols = js_sys::Array::new();
        for protocol in &options.protocols {
            protocols.push(&JsValue::from_str(protocol));
        }
        // The constructor throws a SyntaxError for URLs or subprotocols it does not accept.
        let ws = WebSocket::new_with_str_sequence(url.as_str(), &protocols).map_err(|e| {
            Error::InvalidUrl {
                url: url.redacted().to_owned(),
                reason: js_error_message(&e),
            }
        })?;
        ws.set_binary_type(BinaryType::Arraybuffer);

        let inbox = Rc::new(RefCell::new(Inbox::default()));
        let on_open = {
            let inbox = inbox.clone();
            Closure::<dyn FnMut(web_sys::Event)>::new(move |_| Inbox::push(&inbox, Raw::Open))
        };
        let on_message = {
            let inbox = inbox.clone();
            Closure::<dyn FnMut(MessageEvent)>::new(move |event: MessageEvent| {
                let data = event.data();
                // Binary first: one call into JS (`instanceof`) for the common case.
                let message = if let Some(buffer) = data.dyn_ref::<ArrayBuffer>() {
                    let bytes = bytes_of(&Uint8Array::new(buffer));
                    #[cfg(feature = "js")]
                    let bytes = received::keep(bytes, event, data);
                    Message::binary(bytes)
                } else if let Some(text) = data.dyn_ref::<JsString>() {
                    let text = String::from(text);
                    #[cfg(feature = "js")]
                    let text = received::keep_text(text, event, data);
                    Message::text(text)
                } else {
                    // Not possible with binaryType = "arraybuffer"; never drop silently.
                    Inbox::push(&inbox, Raw::Error);
                    return;
                };
                Inbox::push(&inbox, Raw::Message(message));
            })
        };
        let on_error = {
            let inbox = inbox.clone();
            Closure::<dyn FnMut(web_sys::Event)>::new(move |_| Inbox::push(&inbox, Raw::Error))
        };
        let on_close = {
            let inbox = inbox.clone();
            Closure::<dyn FnMut(JsCloseEvent)>::new(move |event: JsCloseEvent| {
                let close = CloseEvent::new(event.code(), event.reason(), event.was_clean());
                Inbox::push(&inbox, Raw::Close(close));
            })
        };
        ws.set_onopen(Some(on_open.as_ref().unchecked_ref()));
        ws.set_onmessage(Some(on_message.as_ref().unchecked_ref()));
        ws.set_onerror(Some(on_error.as_ref().unchecked_ref()));
        ws.set_onclose(Some(on_close.as_ref().unchecked_ref()));
        Ok(BrowserConnection {
            ws,
            url: url.redacted().to_owned(),
            protocol: String::new(),
            inbox,
            buffered_bound: Rc::new(Cell::new(0)),
            max_message_size: options.max_message_size,
            _on_open: on_open,
            _on_message: on_message,
            _on_error: on_error,
            _on_close: on_close,
        })
    }

    /// Waits for `open`; an `error` or `close` first means the connect failed.
    fn poll_open(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        let mut inbox = self.inbox.borrow_mut();
        match inbox.events.pop_front() {
            Some(Raw::Open) => Poll::Ready(Ok(())),
            Some(_) => Poll::Ready(Err(Error::ConnectFailed {
                url: self.url.clone(),
            })),
            None => {
                inbox.park(cx);
                Poll::Pending
            }
        }
    }
}

impl Drop for BrowserConnection {
    fn drop(&mut self) {
        // Detach first: the closures are freed with `self`, and the browser must not call them.
        self.ws.set_onopen(None);
        self.ws.set_onmessage(None);
        self.ws.set_onerror(None);
        self.ws.set_onclose(None);
        if self.ws.ready_state() <= WebSocket::OPEN {
            let _ = self.ws.close();
        }
    }
}

impl Connection for BrowserConnection {
    fn protocol(&self) -> &str {
        &self.protocol
    }

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        // The browser buffers without limit; the session applies backpressure on its side.
        Poll::Ready(Ok(()))
    }

    fn start_send(&mut self, message: Message) -> Result<(), Error> {
        // `bufferedAmount` grows by exactly the bytes sent (a text's UTF-8 length), and only
        // by them, so the bound stays an upper bound.
        let bound = self
            .buffered_bound
            .get()
            .saturating_add(message.len() as u64);
        self.buffered_bound.set(bound);
        let sent = match &message {
            Message::Text(text) => self.ws.send_with_str(text),
            Message::Binary(bytes) => self.ws.send_with_u8_array(bytes),
        };
        sent.map_err(|_| Error::Closed)
    }

    fn poll_flush(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        // Handed to the browser; what it has not sent yet shows in bufferedAmount.
        Poll::Ready(Ok(()))
    }

    fn start_close(&mut self, code: u16, reason: &str) -> Result<(), Error> {
        // A page may only send 1000 or 3000-4999; for the protocol codes unisock uses on
        // failures (1002, 1007, 1009) the closest the browser allows is a close without code.
        let result = if code == 1000 || (3000..=4999).contains(&code) {
            self.ws.close_with_code_and_reason(code, reason)
        } else {
            self.ws.close()
        };
        result.map_err(|e| Error::Protocol {
            reason: js_error_message(&e),
        })
    }

    fn start_ping(&mut self) -> Result<(), Error> {
        // Refused up front by `check_options`; kept typed in case it is ever reached.
        Err(Error::Unsupported {
            option: "WebSocket ping frames",
            target: "in the browser (use Heartbeat::app_ping)",
        })
    }

    fn poll_next(&mut self, cx: &mut Context<'_>) -> Poll<Incoming> {
        let mut inbox = self.inbox.borrow_mut();
        loop {
            return match inbox.events.pop_front() {
                None => {
                    inbox.park(cx);
                    Poll::Pending
                }
                Some(Raw::Open) => continue,
                Some(Raw::Message(message)) if message.len() > self.max_message_size => {
                    Poll::Ready(Incoming::Failed(Error::MessageTooLarge {
                        size: message.len(),
                        max: self.max_message_size,
                    }))
                }
                Some(Raw::Message(message)) => Poll::Ready(Incoming::Message(message)),
                Some(Raw::Error) => Poll::Ready(Incoming::Failed(Error::BrowserError {
                    url: self.url.clone(),
                })),
                Some(Raw::Close(close)) => Poll::Ready(Incoming::Closed(close)),
            };
        }
    }

    fn buffered_probe(&self) -> Option<BufferedProbe> {
        Some(Box::new(BufferedAmount {
            ws: self.ws.clone(),
            bound: self.buffered_bound.clone(),
        }))
    }
}

/// The browser's `bufferedAmount`, and an upper bound of it kept in Rust: the last value read
/// plus every byte sent since. Reading it is a call into JS; the bound answers "still below
/// the high-water mark?" for most sends without one.
struct BufferedAmount {
    ws: WebSocket,
    bound: Rc<Cell<u64>>,
}

impl PlatformBuffer for BufferedAmount {
    fn exact(&self) -> u64 {
        let amount = u64::from(self.ws.buffered_amount());
        self.bound.set(amount);
        amount
    }

    fn at_most(&self) -> u64 {
        self.bound.get()
    }
}

/// The message of a JS exception, e.g. "SyntaxError: Failed to construct 'WebSocket': …".
fn js_error_message(value: &JsValue) -> String {
    match value.dyn_ref::<js_sys::Error>() {
        Some(error) => format!(
            "{}: {}",
            String::from(error.name()),
            String::from(error.message())
        ),
        None => format!("{value:?}"),
    }
}

/// The browser's own `MessageEvent` and `data` (`ArrayBuffer` or string) of each received
/// message still held in Rust, so that the npm package's `Socket` can hand them to its
/// listeners as they are instead of copying the bytes back out of wasm memory into a new
/// `ArrayBuffer` or string and building a new `MessageEvent` (at 64 KiB the copy alone doubles
/// the garbage per message; see BENCHMARKS.md). Only with the `js` feature: a Rust app never
/// needs the JS values.
///
/// The bytes (a text's UTF-8) are copied into wasm as before (the session reads them: sizes,
/// sessions, app pongs); the JS values are found again from the [`Bytes`](bytes::Bytes)
/// alone, by the address and length of its buffer. That is sound because the entry lives exactly as long
/// as the buffer: it is added when the buffer is wrapped and removed when the buffer is freed,
/// so an address is never reused while its entry exists. A message the session derived from
/// the original (a session frame's payload, a slice) has another address or length and is
/// simply not found: it is copied as before.
#[cfg(feature = "js")]
pub(crate) mod received {
    use std::cell::RefCell;
    use std::collections::HashMap;
    use std::hash::{BuildHasherDefault, Hasher};

    use bytes::Bytes;
    use wasm_bindgen::JsValue;
    use web_sys::MessageEvent;

    use crate::Utf8Bytes;

    thread_local! {
        /// Buffer address -> (length, the browser's event, its `data`).
        static ORIGINALS: RefCell<Originals> = RefCell::new(Originals::default());
    }

    type Originals =
        HashMap<usize, (usize, MessageEvent, JsValue), BuildHasherDefault<AddressHasher>>;

    /// Hashes a buffer address with one multiplication: the keys are addresses of live
    /// allocations, nobody chooses them, so the default hasher's protection against chosen
    /// keys only costs time (two lookups per message).
    #[derive(Default)]
    struct AddressHasher(u64);

    impl Hasher for AddressHasher {
        fn finish(&self) -> u64 {
            // The product's well-mixed high half goes to the low bits, which pick the bucket.
            self.0.rotate_left(32)
        }

        fn write(&mut self, bytes: &[u8]) {
            // Only `usize` keys are hashed; correct for any other key all the same.
            for &byte in bytes {
                self.mix(u64::from(byte));
            }
        }

        fn write_usize(&mut self, n: usize) {
            self.mix(n as u64);
        }
    }

    impl AddressHasher {
        fn mix(&mut self, n: u64) {
            self.0 = (self.0.rotate_left(8) ^ n).wrapping_mul(0x9e37_79b9_7f4a_7c15);
        }
    }

    /// The received bytes; frees its registry entry with the buffer.
    struct Tracked(Vec<u8>);

    impl AsRef<[u8]> for Tracked {
        fn as_ref(&self) -> &[u8] {
            &self.0
        }
    }

    impl Drop for Tracked {
        fn drop(&mut self) {
            let address = self.0.as_ptr() as usize;
            // `try_with`: nothing to clean up while the thread itself is being torn down.
            let _ = ORIGINALS.try_with(|originals| originals.borrow_mut().remove(&address));
        }
    }

    /// Wraps the bytes of a received binary message, remembering its JS event and data.
    pub(super) fn keep(bytes: Vec<u8>, event: MessageEvent, data: JsValue) -> Bytes {
        if bytes.is_empty() {
            // No buffer of its own (every empty Vec has the same dangling address).
            return Bytes::new();
        }
        let entry = (bytes.len(), event, data);
        ORIGINALS.with(|originals| {
            originals
                .borrow_mut()
                .insert(bytes.as_ptr() as usize, entry)
        });
        Bytes::from_owner(Tracked(bytes))
    }

    /// Wraps the text of a received text message, remembering its JS event and string.
    pub(super) fn keep_text(text: String, event: MessageEvent, data: JsValue) -> Utf8Bytes {
        match Utf8Bytes::try_from(keep(text.into_bytes(), event, data)) {
            Ok(text) => text,
            // Cannot happen: the bytes are a `String`'s.
            Err(_) => Utf8Bytes::new(),
        }
    }

    /// The browser's `MessageEvent` and its `data` (an `ArrayBuffer` or a string) that `bytes`
    /// was received as, if `bytes` is all of such a message.
    pub(crate) fn original(bytes: &[u8]) -> Option<(MessageEvent, JsValue)> {
        if bytes.is_empty() {
            return None;
        }
        ORIGINALS.with(|originals| {
            let originals = originals.borrow();
            let (len, event, data) = originals.get(&(bytes.as_ptr() as usize))?;
            (*len == bytes.len()).then(|| (event.clone(), data.clone()))
        })
    }

    /// Like [`original`], but takes the values out of the registry: for a caller that
    /// consumes the only handle to `bytes` (a later `original` of them finds nothing).
    pub(crate) fn take_original(bytes: &[u8]) -> Option<(MessageEvent, JsValue)> {
        if bytes.is_empty() {
            return None;
        }
        ORIGINALS.with(|originals| {
            let mut originals = originals.borrow_mut();
            let address = bytes.as_ptr() as usize;
            let entry = originals.remove(&address)?;
            if entry.0 != bytes.len() {
                // Part of a received message (a session frame's payload): not this one's.
                originals.insert(address, entry);
                return None;
            }
            Some((entry.1, entry.2))
        })
    }
}
