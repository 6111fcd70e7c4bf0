//! The npm package's JavaScript API: a `Socket` class that is a drop-in for the browser's
//! `WebSocket`, with unisock's reconnection, offline queue and heartbeat on top (wasm32 only).
//!
//! ```js
//! import init, { Socket } from "unisock";
//! await init();
//! const socket = new Socket("ws://127.0.0.1:9001/echo", { reconnect: { maxRetries: 10 } });
//! socket.onmessage = (event) => console.log(event.data);
//! socket.send("queued until the connection is open");
//! for await (const data of socket) console.log(data);
//! ```
//!
//! What differs from `WebSocket`, on purpose:
//!
//! - the second argument may also be an options object (see `SocketOptions` in the
//!   TypeScript declarations, [`options`]); reconnection is on by default, with a
//!   `reconnecting` event between a drop and the next `open`;
//! - `send` also works while connecting or reconnecting (messages are queued and go out in
//!   order once open); it throws a `UnisockError` (`kind` `"Closed"`, `"QueueFull"`,
//!   `"MessageTooLarge"`) instead of silently dropping a message, and the final `close`
//!   event hands back what was never sent in `unsent`;
//! - binary data is always an `ArrayBuffer` (`binaryType` is `"arraybuffer"` and cannot be
//!   `"blob"`: a Blob would need an asynchronous read that can reorder messages);
//! - `close()` without a code sends 1000; `url` is shown without userinfo, query or fragment
//!   (they may carry secrets);
//! - `error` events carry what went wrong (`event.error`, `event.message`).
//!
//! # Design: a listener registry in Rust
//!
//! wasm-bindgen classes cannot extend `EventTarget`, and wrapping the class in a JS subclass
//! would mean shipping a second entry point beside the generated `unisock.js`. So the
//! registry is here, in Rust ([`events`]), and follows the DOM's rules (order, `once`,
//! `signal`, `handleEvent` objects, exceptions reported without stopping the dispatch,
//! `stopImmediatePropagation`), with one visible difference: a method of a wasm-bindgen
//! class only receives the Rust value, never the JS object it was called on, so each socket
//! creates a second JS wrapper of itself, its *alias*, which is the events' `target` and the
//! listeners' `this`. The alias has every property and method of the socket (it shares its
//! state) but is not `===` to the object `new Socket` returned.
//!
//! Events are always delivered asynchronously and in order: they come from the connection's
//! task on the JS event loop, never from inside the constructor, `send` or `close`, so a
//! listener may call any method. Nothing here needs `window`: it works in pages, workers and
//! Node ≥ 20 (`--experimental-websocket`, or Node 22).
//!
//! # No leaks
//!
//! While the connection lives, its task holds the socket's state (as a browser keeps an open
//! `WebSocket` with listeners alive even without references to it). After the final `close`
//! event the task ends, and the listeners, handlers, iterators and the alias are dropped: a
//! closed socket holds no JS function (its `on…` properties read `null` again), and its state
//! goes with the last JS reference to it. The only JS function created for the life of the
//! program is the shared `stopImmediatePropagation` of [`events`].

mod data;
mod errors;
mod events;
mod iter;
mod options;
mod typescript;

use std::cell::{OnceCell, RefCell};
use std::rc::Rc;

use js_sys::{Array, Object, Reflect};
use wasm_bindgen::prelude::*;

use self::events::{Kind, Listeners};
use self::iter::{Iterators, MessageIterator};
use crate::{CloseEvent, Direction, Gap, GapReason, Message, ReadyState, Reconnecting};

#[wasm_bindgen]
extern "C" {
    /// The second constructor argument.
    #[wasm_bindgen(typescript_type = "string | string[] | SocketOptions")]
    pub type ProtocolsOrOptions;
    /// What `send` accepts.
    #[wasm_bindgen(typescript_type = "SendData")]
    pub type SendData;
    /// `addEventListener`'s third argument.
    #[wasm_bindgen(typescript_type = "boolean | AddEventListenerOptions")]
    pub type ListenerOptions;
    /// `removeEventListener`'s third argument.
    #[wasm_bindgen(typescript_type = "boolean | EventListenerOptions")]
    pub type RemoveListenerOptions;

    /// `String(value)`: WebIDL's conversion of an argument to a string.
    #[wasm_bindgen(catch, js_name = String)]
    fn to_js_string(value: &JsValue) -> Result<String, JsValue>;

    /// `Number(value)`: WebIDL's conversion of an argument to a number.
    #[wasm_bindgen(catch, js_name = Number)]
    fn to_js_number(value: &JsValue) -> Result<f64, JsValue>;
}

/// A WebSocket connection that reconnects by itself: a drop-in for the browser's `WebSocket`
/// (same constructor, properties, methods and events), plus an options object, a
/// `reconnecting` event, an outgoing queue that survives reconnects, `retryCount` and
/// `for await (const data of socket)`.
#[wasm_bindgen(js_name = Socket)]
pub struct JsSocket {
    inner: Rc<Inner>,
}

/// The state shared by a socket's JS wrappers and its connection's callbacks.
struct Inner {
    /// Set once the constructor has connected (callbacks only run after that).
    socket: OnceCell<crate::Socket>,
    listeners: Listeners,
    iterators: Iterators,
    /// Most unread messages one iterator holds (`receiveBuffer`).
    iterator_limit: usize,
    /// The `target` of this socket's events and `this` of its listeners (see the module
    /// docs), with what attaches it to an event. Created on the first event dispatched,
    /// dropped after the final `close`.
    alias: RefCell<Option<Alias>>,
    /// `MessageEvent.origin`: the origin of the URL, e.g. `ws://127.0.0.1:9001`.
    origin: RefCell<String>,
}

/// A socket's alias and the ways to point an event at it.
struct Alias {
    target: JsValue,
    /// For [`events::attach`].
    descriptors: Object,
    /// For [`events::attach_message`]: the prototypes derived for this socket's message
    /// events, made on the first message.
    message_prototypes: events::MessagePrototypes,
}

impl Inner {
    fn socket(&self) -> &crate::Socket {
        self.socket
            .get()
            .expect_throw("unisock Socket used before its constructor returned")
    }

    fn closed(&self) -> bool {
        self.socket
            .get()
            .is_some_and(|socket| socket.ready_state() == ReadyState::Closed)
    }

    /// Builds the event only if someone listens, then dispatches it to the listeners.
    fn dispatch(self: &Rc<Self>, kind: Kind, event: impl FnOnce() -> JsValue) {
        if !self.listeners.wants(kind) {
            return;
        }
        let event = event();
        let target = self.attach_target(&event, None);
        self.listeners.dispatch_kind(kind, &event, &target);
    }

    /// Points `event` at this socket's alias (creating it on first use); returns the alias.
    /// `message`: `Some(browser)` for one of the socket's own message events (the hot path,
    /// see [`events::attach_message`]), `browser` if the browser's `WebSocket` fired it.
    fn attach_target(self: &Rc<Self>, event: &JsValue, message: Option<bool>) -> JsValue {
        let mut alias = self.alias.borrow_mut();
        let alias = alias.get_or_insert_with(|| {
            let target = JsValue::from(JsSocket {
                inner: self.clone(),
            });
            let descriptors = events::target_descriptors(&target);
            Alias {
                target,
                descriptors,
                message_prototypes: events::MessagePrototypes::default(),
            }
        });
        match message {
            // Every message event is an object (a `MessageEvent`, or an `Event` without it).
            Some(browser) => events::attach_message(
                event.unchecked_ref(),
                &alias.descriptors,
                &mut alias.message_prototypes,
                browser,
            ),
            None => events::attach(event, &alias.descriptors),
        }
        alias.target.clone()
    }

    fn on_open(self: &Rc<Self>) {
        self.dispatch(Kind::Open, events::open);
    }

    fn on_message(self: &Rc<Self>, message: Message) {
        let iterators = self.iterators.any();
        if !iterators && !self.listeners.wants(Kind::Message) {
            return;
        }
        // A message as the browser delivered it: its own `ArrayBuffer` or string and trusted
        // `MessageEvent` (as a `WebSocket` would give), not a copy and a new event. Taken out
        // of the registry: this message is delivered here only.
        let (event, data) = match crate::transport::received::take_original(message.as_bytes()) {
            Some((event, data)) => (Some(event), data),
            None => (None, data::copy_to_js(message)),
        };
        if iterators {
            self.iterators.feed(&data);
        }
        // Only iterators listen: no event to build.
        if !self.listeners.wants(Kind::Message) {
            return;
        }
        let (event, browser) = match event {
            Some(event) => (event.into(), true),
            None => (events::message(&data, &self.origin.borrow()), false),
        };
        let target = self.attach_target(&event, Some(browser));
        self.listeners.dispatch_kind(Kind::Message, &event, &target);
    }

    fn on_error(self: &Rc<Self>, error: crate::Error) {
        self.dispatch(Kind::Error, || {
            events::error(&errors::unisock_error(&error), &error.to_string())
        });
    }

    fn on_reconnecting(self: &Rc<Self>, reconnecting: Reconnecting) {
        let Reconnecting {
            attempt,
            delay,
            close,
        } = reconnecting;
        self.dispatch(Kind::Reconnecting, || {
            events::reconnecting(
                attempt,
                delay.as_secs_f64() * 1000.0,
                close.code,
                &close.reason,
                close.was_clean,
            )
        });
    }

    fn on_session(self: &Rc<Self>, mode: crate::SessionMode) {
        self.dispatch(Kind::Session, || {
            events::session(mode.acknowledged, mode.resumed)
        });
    }

    fn on_gap(self: &Rc<Self>, gap: Gap) {
        let Gap {
            direction,
            first,
            last,
            reason,
            messages,
        } = gap;
        self.dispatch(Kind::Gap, || {
            let direction = match direction {
                Direction::Incoming => "incoming",
                Direction::Outgoing => "outgoing",
            };
            let reason = match reason {
                GapReason::SessionUnknown => "sessionUnknown",
                GapReason::SessionExpired => "sessionExpired",
                GapReason::Overflow => "overflow",
                GapReason::NoSession => "noSession",
                _ => "ended",
            };
            let messages: Array = messages.into_iter().map(data::to_js).collect();
            events::gap(direction, first, last, reason, messages)
        });
    }

    /// The final `close`: dispatched, then everything that holds JS functions is dropped.
    fn on_close(self: &Rc<Self>, close: CloseEvent) {
        let CloseEvent {
            code,
            reason,
            was_clean,
            unsent,
        } = close;
        self.dispatch(Kind::Close, || {
            let unsent: Array = unsent.into_iter().map(data::to_js).collect();
            events::close(code, &reason, was_clean, unsent)
        });
        self.iterators.finish();
        self.listeners.clear();
        self.alias.take();
    }
}

#[wasm_bindgen(js_class = Socket)]
impl JsSocket {
    /// Opens a connection, like `new WebSocket(url, protocols)`: returns at once; `open` (or
    /// `error`, then `reconnecting` or `close`) follows.
    ///
    /// `url`: `ws:`, `wss:`, `http:` or `https:` (the latter two mean `ws:` / `wss:`); a
    /// relative URL is resolved against the page's (or worker's) location.
    /// `protocolsOrOptions`: a subprotocol, an array of them, or a `SocketOptions` object.
    ///
    /// Throws a `SyntaxError` `DOMException` for an invalid URL or subprotocol and a
    /// `TypeError` for an option of the wrong type or range.
    #[wasm_bindgen(constructor)]
    pub fn new(
        #[wasm_bindgen(unchecked_param_type = "string | URL")] url: JsValue,
        #[wasm_bindgen(js_name = protocolsOrOptions)] protocols_or_options: Option<
            ProtocolsOrOptions,
        >,
    ) -> Result<JsSocket, JsValue> {
        if url.is_undefined() {
            return Err(errors::type_error(
                "the constructor needs a URL: new Socket(url, protocolsOrOptions)",
            ));
        }
        let url = resolve_url(&to_js_string(&url)?);
        let options = options::parse(
            protocols_or_options
                .as_ref()
                .map_or(&JsValue::UNDEFINED, |value| value.unchecked_ref()),
        )?;

        let inner = Rc::new(Inner {
            socket: OnceCell::new(),
            listeners: Listeners::default(),
            iterators: Iterators::default(),
            iterator_limit: options.receive_buffer,
            alias: RefCell::new(None),
            origin: RefCell::new(String::new()),
        });
        let socket = crate::Socket::builder(&url)
            .options(options)
            .on_open({
                let inner = inner.clone();
                move |_protocol| inner.on_open()
            })
            .on_message({
                let inner = inner.clone();
                move |message| inner.on_message(message)
            })
            .on_error({
                let inner = inner.clone();
                move |error| inner.on_error(error)
            })
            .on_reconnecting({
                let inner = inner.clone();
                move |reconnecting| inner.on_reconnecting(reconnecting)
            })
            .on_session({
                let inner = inner.clone();
                move |mode| inner.on_session(mode)
            })
            .on_gap({
                let inner = inner.clone();
                move |gap| inner.on_gap(gap)
            })
            .on_close({
                let inner = inner.clone();
                move |close| inner.on_close(close)
            })
            .connect()
            .map_err(|error| errors::to_js(&error))?;
        *inner.origin.borrow_mut() = origin_of(socket.url());
        let _ = inner.socket.set(socket);
        Ok(JsSocket { inner })
    }

    /// Sends a message: a `string` as text; an `ArrayBuffer`, a typed array or a `DataView`
    /// as binary (the bytes are copied at once). Unlike `WebSocket.send` it also works while
    /// connecting or reconnecting: the message is queued and goes out, in order, once open.
    ///
    /// Throws a `TypeError` for other data, and a `UnisockError` when the message cannot be
    /// accepted: `kind` `"Closed"` (closing or closed), `"QueueFull"` or `"MessageTooLarge"`.
    pub fn send(&self, data: SendData) -> Result<(), JsValue> {
        let message = data::to_message(&data, "send: the data")?;
        self.inner
            .socket()
            .send(message)
            .map_err(|error| errors::to_js(&error))
    }

    /// Starts the closing handshake after everything already sent, like `WebSocket.close`;
    /// no reconnect follows. `code`: 1000 (the default) or 3000-4999, else an
    /// `InvalidAccessError` is thrown; `reason`: at most 123 bytes of UTF-8, else a
    /// `SyntaxError`. Does nothing if already closing or closed.
    pub fn close(
        &self,
        #[wasm_bindgen(unchecked_optional_param_type = "number")] code: JsValue,
        #[wasm_bindgen(unchecked_optional_param_type = "string")] reason: JsValue,
    ) -> Result<(), JsValue> {
        let code = if code.is_undefined() {
            1000
        } else {
            clamp_u16(to_js_number(&code)?)
        };
        let reason = if reason.is_undefined() {
            String::new()
        } else {
            to_js_string(&reason)?
        };
        self.inner
            .socket()
            .close(code, &reason)
            .map_err(|error| errors::to_js(&error))
    }

    /// `0` connecting (also while waiting to reconnect), `1` open, `2` closing, `3` closed.
    #[wasm_bindgen(getter = readyState, unchecked_return_type = "SocketReadyState")]
    pub fn ready_state(&self) -> u8 {
        self.inner.socket().ready_state() as u8
    }

    /// Bytes accepted by `send` and not yet sent: unisock's queue (which keeps messages
    /// across reconnects) plus the browser's own buffer.
    #[wasm_bindgen(getter = bufferedAmount)]
    pub fn buffered_amount(&self) -> f64 {
        self.inner.socket().buffered_amount() as f64
    }

    /// The subprotocol the server selected, or `""`.
    #[wasm_bindgen(getter)]
    pub fn protocol(&self) -> String {
        self.inner.socket().protocol()
    }

    /// The URL, without userinfo, query string or fragment (they may carry secrets).
    #[wasm_bindgen(getter)]
    pub fn url(&self) -> String {
        self.inner.socket().url().to_owned()
    }

    /// The extensions the server selected: always `""` (browsers negotiate compression
    /// themselves and unisock does not expose it).
    #[wasm_bindgen(getter)]
    pub fn extensions(&self) -> String {
        String::new()
    }

    /// Always `"arraybuffer"`: binary messages arrive as `ArrayBuffer`s.
    #[wasm_bindgen(getter = binaryType, unchecked_return_type = "\"arraybuffer\"")]
    pub fn binary_type(&self) -> String {
        "arraybuffer".to_owned()
    }

    /// Accepts `"arraybuffer"` (code written for `WebSocket` often sets it). `"blob"` throws a
    /// `NotSupportedError`: reading a Blob is asynchronous and could reorder messages.
    #[wasm_bindgen(setter = binaryType)]
    pub fn set_binary_type(
        &self,
        #[wasm_bindgen(unchecked_param_type = "\"arraybuffer\"")] value: JsValue,
    ) -> Result<(), JsValue> {
        if value.as_string().as_deref() == Some("blob") {
            return Err(errors::dom_exception(
                "NotSupportedError",
                "binaryType \"blob\" is not supported: binary messages are ArrayBuffers \
                 (await new Blob([data]) yourself if you need one)",
            ));
        }
        Ok(())
    }

    /// Reconnect attempts since the connection was last stable (0 while all is well).
    #[wasm_bindgen(getter = retryCount)]
    pub fn retry_count(&self) -> u32 {
        self.inner.socket().retry_count()
    }

    /// Adds a listener for `open`, `message`, `error`, `close` or `reconnecting`, like
    /// `EventTarget.addEventListener` (options `once`, `signal`, `capture`, `passive`).
    /// (Typed in `typescript.rs`, with one overload per event type.)
    #[wasm_bindgen(js_name = addEventListener, skip_typescript)]
    pub fn add_event_listener(
        &self,
        #[wasm_bindgen(js_name = type, unchecked_param_type = "string")] event_type: JsValue,
        #[wasm_bindgen(unchecked_param_type = "SocketEventListener | null")] listener: JsValue,
        options: Option<ListenerOptions>,
    ) -> Result<(), JsValue> {
        let event_type = to_js_string(&event_type)?;
        let options = options.map_or(JsValue::UNDEFINED, Into::into);
        self.inner.listeners.add(event_type, listener, &options)
    }

    /// Removes a listener added with the same type, listener and `capture`.
    /// (Typed in `typescript.rs`.)
    #[wasm_bindgen(js_name = removeEventListener, skip_typescript)]
    pub fn remove_event_listener(
        &self,
        #[wasm_bindgen(js_name = type, unchecked_param_type = "string")] event_type: JsValue,
        #[wasm_bindgen(unchecked_param_type = "SocketEventListener | null")] listener: JsValue,
        options: Option<RemoveListenerOptions>,
    ) -> Result<(), JsValue> {
        let event_type = to_js_string(&event_type)?;
        let options = options.map_or(JsValue::UNDEFINED, Into::into);
        self.inner
            .listeners
            .remove(&event_type, &listener, &options);
        Ok(())
    }

    /// Dispatches `event` to this socket's listeners of `event.type`, synchronously, like
    /// `EventTarget.dispatchEvent`; returns `false` if a listener called `preventDefault()`
    /// on a cancelable event.
    #[wasm_bindgen(js_name = dispatchEvent)]
    pub fn dispatch_event(&self, event: web_sys::Event) -> bool {
        let event_type = event.type_();
        let target = self.inner.attach_target(&event, None);
        self.inner.listeners.dispatch(&event_type, &event, &target);
        if self.inner.closed() {
            // Dispatched after the final close: do not keep the alias alive.
            self.inner.alias.take();
        }
        !event.default_prevented()
    }

    /// An async iterator over the data of the messages received from now on, done when the
    /// socket is closed for good: `for await (const data of socket) { … }`.
    #[wasm_bindgen(
        js_name = "[Symbol.asyncIterator]",
        unchecked_return_type = "MessageIterator"
    )]
    pub fn messages(&self) -> MessageIterator {
        let inner = &self.inner;
        inner.iterators.create(inner.closed(), inner.iterator_limit)
    }

    /// Not open yet, or waiting to reconnect (`0`).
    #[wasm_bindgen(getter = CONNECTING, unchecked_return_type = "0")]
    pub fn connecting_const(&self) -> u8 {
        ReadyState::Connecting as u8
    }

    /// Open (`1`).
    #[wasm_bindgen(getter = OPEN, unchecked_return_type = "1")]
    pub fn open_const(&self) -> u8 {
        ReadyState::Open as u8
    }

    /// Closing (`2`).
    #[wasm_bindgen(getter = CLOSING, unchecked_return_type = "2")]
    pub fn closing_const(&self) -> u8 {
        ReadyState::Closing as u8
    }

    /// Closed for good (`3`).
    #[wasm_bindgen(getter = CLOSED, unchecked_return_type = "3")]
    pub fn closed_const(&self) -> u8 {
        ReadyState::Closed as u8
    }

    /// Not open yet, or waiting to reconnect (`0`).
    #[wasm_bindgen(getter = CONNECTING, unchecked_return_type = "0")]
    pub fn connecting_static() -> u8 {
        ReadyState::Connecting as u8
    }

    /// Open (`1`).
    #[wasm_bindgen(getter = OPEN, unchecked_return_type = "1")]
    pub fn open_static() -> u8 {
        ReadyState::Open as u8
    }

    /// Closing (`2`).
    #[wasm_bindgen(getter = CLOSING, unchecked_return_type = "2")]
    pub fn closing_static() -> u8 {
        ReadyState::Closing as u8
    }

    /// Closed for good (`3`).
    #[wasm_bindgen(getter = CLOSED, unchecked_return_type = "3")]
    pub fn closed_static() -> u8 {
        ReadyState::Closed as u8
    }
}

/// The `on…` handler properties: one getter and one setter per event.
macro_rules! handler_properties {
    ($( $kind:ident, $name:literal, $getter:ident, $setter:ident, $ts:literal, $doc:literal; )*) => {
        #[wasm_bindgen(js_class = Socket)]
        impl JsSocket {
            $(
                #[doc = $doc]
                #[wasm_bindgen(getter = $name, unchecked_return_type = $ts)]
                pub fn $getter(&self) -> JsValue {
                    self.inner.listeners.handler(Kind::$kind)
                }

                #[doc = $doc]
                #[wasm_bindgen(setter = $name)]
                pub fn $setter(&self, #[wasm_bindgen(unchecked_param_type = $ts)] handler: JsValue) {
                    self.inner.listeners.set_handler(Kind::$kind, &handler);
                }
            )*
        }
    };
}

handler_properties! {
    Open, "onopen", onopen, set_onopen,
        "((this: Socket, event: SocketOpenEvent) => unknown) | null",
        "Called when the connection opens (again, after a reconnect).";
    Message, "onmessage", onmessage, set_onmessage,
        "((this: Socket, event: SocketMessageEvent) => unknown) | null",
        "Called for each message; `event.data` is a `string` or an `ArrayBuffer`.";
    Error, "onerror", onerror, set_onerror,
        "((this: Socket, event: SocketErrorEvent) => unknown) | null",
        "Called when something went wrong; `event.error` says what.";
    Close, "onclose", onclose, set_onclose,
        "((this: Socket, event: SocketCloseEvent) => unknown) | null",
        "Called once, when the socket is closed for good (no more reconnects).";
    Reconnecting, "onreconnecting", onreconnecting, set_onreconnecting,
        "((this: Socket, event: SocketReconnectingEvent) => unknown) | null",
        "Called when the connection dropped and another attempt starts after `event.delay` ms.";
    Session, "onsession", onsession, set_onsession,
        "((this: Socket, event: SocketSessionEvent) => unknown) | null",
        "Called after each `open` with `{ session: true }`: `event.acknowledged` says whether the session is on.";
    Gap, "ongap", ongap, set_ongap,
        "((this: Socket, event: SocketGapEvent) => unknown) | null",
        "Called when messages of an acknowledged session may have been lost (`event.first` to `event.last`).";
}

/// `close(code)`'s WebIDL conversion (`[Clamp] unsigned short`): NaN is 0, out-of-range values
/// are clamped, fractions rounded half to even.
fn clamp_u16(code: f64) -> u16 {
    if code.is_nan() {
        0
    } else {
        code.clamp(0.0, f64::from(u16::MAX)).round_ties_even() as u16
    }
}

/// Resolves a relative URL against the location of the page or worker, as the browser's
/// `WebSocket` does; anything else is returned as is (and validated by the caller).
fn resolve_url(input: &str) -> String {
    if !matches!(
        ::url::Url::parse(input),
        Err(::url::ParseError::RelativeUrlWithoutBase)
    ) {
        return input.to_owned();
    }
    let base = Reflect::get(&js_sys::global(), &"location".into())
        .ok()
        .filter(JsValue::is_object)
        .and_then(|location| Reflect::get(&location, &"href".into()).ok())
        .and_then(|href| href.as_string());
    base.and_then(|base| ::url::Url::parse(&base).ok()?.join(input).ok())
        .map_or_else(|| input.to_owned(), String::from)
}

/// The serialized origin of a WebSocket URL, e.g. `ws://127.0.0.1:9001`.
fn origin_of(url: &str) -> String {
    ::url::Url::parse(url)
        .map(|url| url.origin().ascii_serialization())
        .unwrap_or_default()
}
