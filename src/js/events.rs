//! Events of the JS `Socket`: the listener registry behind `addEventListener`,
//! `removeEventListener`, `dispatchEvent` and the `on…` handler properties, and the event
//! objects themselves.
//!
//! The registry follows the DOM's rules where a `WebSocket` user could notice them:
//!
//! - listeners run in the order they were added; an `on…` handler takes the place in that
//!   order where it was first set (replacing it keeps the place, setting `null` removes it);
//! - adding the same (type, listener, capture) twice adds it once;
//! - a listener may be a function (called with `this` = the socket) or an object with a
//!   `handleEvent` method (called with `this` = that object);
//! - the options `once` and `signal` (an `AbortSignal`) work, `capture` counts for identity
//!   only (a socket has no tree to capture through) and `passive` is accepted;
//! - a listener added while an event is dispatched does not see that event, one removed
//!   meanwhile is not called any more;
//! - an exception in a listener is reported (`reportError`) and the next listener still runs;
//! - `event.stopImmediatePropagation()` skips the remaining listeners.

use std::cell::{Cell, RefCell};
use std::rc::Rc;

use js_sys::{Array, Function, Object, Reflect};
use wasm_bindgen::closure::Closure;
use wasm_bindgen::{JsCast, JsValue};

use super::errors::{describe, report, type_error};

/// The events a socket fires, each with an `on…` handler property.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    Open,
    Message,
    Error,
    Close,
    Reconnecting,
    Session,
    Gap,
}

impl Kind {
    const COUNT: usize = 7;

    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Kind::Open => "open",
            Kind::Message => "message",
            Kind::Error => "error",
            Kind::Close => "close",
            Kind::Reconnecting => "reconnecting",
            Kind::Session => "session",
            Kind::Gap => "gap",
        }
    }

    /// The kind of a socket event type, `None` for any other type (`dispatchEvent` accepts
    /// every type).
    fn of(event_type: &str) -> Option<Kind> {
        [
            Kind::Open,
            Kind::Message,
            Kind::Error,
            Kind::Close,
            Kind::Reconnecting,
            Kind::Session,
            Kind::Gap,
        ]
        .into_iter()
        .find(|kind| kind.as_str() == event_type)
    }
}

/// One registered listener.
struct Entry {
    event_type: String,
    /// `event_type` as one of the socket's own events, to find those without comparing
    /// strings.
    kind: Option<Kind>,
    callback: Callback,
    capture: bool,
    once: bool,
    /// An `AbortSignal`: once aborted, the entry is removed (checked when it would run).
    signal: Option<JsValue>,
    /// Removed while a dispatch holds a snapshot of the list: do not call it any more.
    removed: Cell<bool>,
}

enum Callback {
    /// From `addEventListener`: a function or an object with `handleEvent`.
    Listener(JsValue),
    /// The place of an `on…` handler; the function itself is in [`Listeners::handlers`].
    Handler(Kind),
}

impl Entry {
    fn is_aborted(&self) -> bool {
        self.signal.as_ref().is_some_and(is_aborted)
    }
}

/// The listeners of one socket.
#[derive(Default)]
pub(crate) struct Listeners {
    entries: RefCell<Vec<Rc<Entry>>>,
    handlers: RefCell<[Option<Function>; Kind::COUNT]>,
    /// How many of `entries` are of each [`Kind`]: [`Listeners::wants`] without a scan (it
    /// runs for every message).
    counts: [Cell<u32>; Kind::COUNT],
    /// The snapshot [`Listeners::dispatch`] calls from, kept between dispatches so that a
    /// message does not allocate one (a nested dispatch, rare, makes its own).
    spare: RefCell<Vec<Rc<Entry>>>,
}

impl Listeners {
    /// `addEventListener(type, listener, options)`.
    pub(crate) fn add(
        &self,
        event_type: String,
        listener: JsValue,
        options: &JsValue,
    ) -> Result<(), JsValue> {
        if listener.is_null() || listener.is_undefined() {
            return Ok(());
        }
        if !listener.is_object() && !listener.is_function() {
            return Err(type_error(format_args!(
                "addEventListener: the listener must be a function or an object with a \
                 handleEvent method, got {}",
                describe(&listener)
            )));
        }
        let (capture, once, signal) = if options.is_object() {
            let signal = Reflect::get(options, &"signal".into())?;
            if !signal.is_undefined() && !is_abort_signal(&signal) {
                return Err(type_error(format_args!(
                    "addEventListener: options.signal must be an AbortSignal, got {}",
                    describe(&signal)
                )));
            }
            (
                Reflect::get(options, &"capture".into())?.is_truthy(),
                Reflect::get(options, &"once".into())?.is_truthy(),
                (!signal.is_undefined()).then_some(signal),
            )
        } else {
            (options.is_truthy(), false, None)
        };
        if signal.as_ref().is_some_and(is_aborted) {
            return Ok(());
        }
        self.remove_where(Entry::is_aborted);
        let duplicate = self.entries.borrow().iter().any(|entry| {
            entry.event_type == event_type
                && entry.capture == capture
                && matches!(&entry.callback, Callback::Listener(l) if *l == listener)
        });
        if !duplicate {
            self.push(Entry {
                kind: Kind::of(&event_type),
                event_type,
                callback: Callback::Listener(listener),
                capture,
                once,
                signal,
                removed: Cell::new(false),
            });
        }
        Ok(())
    }

    /// `removeEventListener(type, listener, options)`.
    pub(crate) fn remove(&self, event_type: &str, listener: &JsValue, options: &JsValue) {
        let capture = if options.is_object() {
            Reflect::get(options, &"capture".into()).is_ok_and(|c| c.is_truthy())
        } else {
            options.is_truthy()
        };
        self.remove_where(|entry| {
            entry.event_type == event_type
                && entry.capture == capture
                && matches!(&entry.callback, Callback::Listener(l) if l == listener)
        });
    }

    /// Sets (or, with anything but a function, clears) the `on…` handler of `kind`.
    pub(crate) fn set_handler(&self, kind: Kind, value: &JsValue) {
        let handler = value.dyn_ref::<Function>().cloned();
        let had_one = self.handlers.borrow()[kind as usize].is_some();
        match (&handler, had_one) {
            (Some(_), false) => self.push(Entry {
                event_type: kind.as_str().to_owned(),
                kind: Some(kind),
                callback: Callback::Handler(kind),
                capture: false,
                once: false,
                signal: None,
                removed: Cell::new(false),
            }),
            (None, true) => self
                .remove_where(|entry| matches!(entry.callback, Callback::Handler(k) if k == kind)),
            _ => {}
        }
        self.handlers.borrow_mut()[kind as usize] = handler;
    }

    /// The `on…` handler of `kind`, or `null`.
    pub(crate) fn handler(&self, kind: Kind) -> JsValue {
        self.handlers.borrow()[kind as usize]
            .clone()
            .map_or(JsValue::NULL, JsValue::from)
    }

    /// Whether an event of this kind would reach anyone (to skip building unseen events).
    pub(crate) fn wants(&self, kind: Kind) -> bool {
        self.counts[kind as usize].get() > 0
    }

    /// Calls the listeners of `event_type` with `event`, `this` being `target`.
    pub(crate) fn dispatch(&self, event_type: &str, event: &JsValue, target: &JsValue) {
        match Kind::of(event_type) {
            Some(kind) => self.dispatch_kind(kind, event, target),
            None => self.dispatch_matching(|entry| entry.event_type == event_type, event, target),
        }
    }

    /// [`Listeners::dispatch`] for one of the socket's own events.
    pub(crate) fn dispatch_kind(&self, kind: Kind, event: &JsValue, target: &JsValue) {
        if self.wants(kind) {
            self.dispatch_matching(|entry| entry.kind == Some(kind), event, target);
        }
    }

    fn dispatch_matching(
        &self,
        matches: impl Fn(&Entry) -> bool,
        event: &JsValue,
        target: &JsValue,
    ) {
        // A nested dispatch (from a listener) finds the spare taken and makes its own.
        let mut snapshot = self.spare.take();
        snapshot.extend(
            self.entries
                .borrow()
                .iter()
                .filter(|entry| matches(entry))
                .cloned(),
        );
        let outer_stop = STOP.with(|stop| stop.requested.replace(false));
        for entry in snapshot.drain(..) {
            if entry.removed.get() {
                continue;
            }
            if entry.is_aborted() {
                self.remove_entry(&entry);
                continue;
            }
            if entry.once {
                self.remove_entry(&entry);
            }
            let result = match &entry.callback {
                Callback::Listener(listener) => call_listener(listener, event, target),
                Callback::Handler(kind) => {
                    let handler = self.handlers.borrow()[*kind as usize].clone();
                    match handler {
                        Some(handler) => handler.call1(target, event).map(drop),
                        None => Ok(()),
                    }
                }
            };
            if let Err(exception) = result {
                report(exception);
            }
            if STOP.with(|stop| stop.requested.get()) {
                break;
            }
        }
        STOP.with(|stop| stop.requested.set(outer_stop));
        // `drain` stops early on `break`: what it did not yield is dropped with it.
        snapshot.clear();
        let mut spare = self.spare.borrow_mut();
        if spare.capacity() < snapshot.capacity() {
            *spare = snapshot;
        }
    }

    /// Forgets every listener and handler (the socket is closed for good: none can fire).
    pub(crate) fn clear(&self) {
        for entry in self.entries.take() {
            entry.removed.set(true);
        }
        for count in &self.counts {
            count.set(0);
        }
        *self.handlers.borrow_mut() = Default::default();
        self.spare.take();
    }

    fn push(&self, entry: Entry) {
        if let Some(kind) = entry.kind {
            let count = &self.counts[kind as usize];
            count.set(count.get() + 1);
        }
        self.entries.borrow_mut().push(Rc::new(entry));
    }

    fn remove_entry(&self, target: &Rc<Entry>) {
        self.remove_where(|entry| std::ptr::eq(entry, &**target));
    }

    fn remove_where(&self, mut matches: impl FnMut(&Entry) -> bool) {
        self.entries.borrow_mut().retain(|entry| {
            let remove = matches(entry);
            if remove {
                entry.removed.set(true);
                if let Some(kind) = entry.kind {
                    let count = &self.counts[kind as usize];
                    count.set(count.get() - 1);
                }
            }
            !remove
        });
    }
}

/// Calls a listener: a function with `this` = the socket, or `handleEvent` of an object.
fn call_listener(listener: &JsValue, event: &JsValue, target: &JsValue) -> Result<(), JsValue> {
    if let Some(function) = listener.dyn_ref::<Function>() {
        return function.call1(target, event).map(drop);
    }
    let handle_event = Reflect::get(listener, &"handleEvent".into())?;
    match handle_event.dyn_ref::<Function>() {
        Some(handle_event) => handle_event.call1(listener, event).map(drop),
        None => Err(type_error(
            "the listener object has no handleEvent method to call",
        )),
    }
}

fn is_aborted(signal: &JsValue) -> bool {
    Reflect::get(signal, &"aborted".into()).is_ok_and(|aborted| aborted.is_truthy())
}

fn is_abort_signal(value: &JsValue) -> bool {
    value.is_object()
        && Reflect::get(value, &"aborted".into()).is_ok_and(|aborted| aborted.as_bool().is_some())
}

/// `stopImmediatePropagation` of the events we dispatch: one function per thread (dispatch
/// is synchronous, so a flag per thread, saved and restored around nested dispatches, is
/// enough), created once and kept for the life of the thread.
struct Stop {
    requested: Cell<bool>,
    function: JsValue,
}

thread_local! {
    static STOP: Stop = Stop {
        requested: Cell::new(false),
        function: Closure::<dyn Fn()>::new(|| STOP.with(|stop| stop.requested.set(true)))
            .into_js_value(),
    };
}

/// The property descriptors that make an event point at its socket: `target`,
/// `currentTarget`, `srcElement`, and a `stopImmediatePropagation` that the registry sees.
/// Built once per socket and applied to each event with one `Object.defineProperties`.
pub(crate) fn target_descriptors(target: &JsValue) -> Object {
    let descriptors = Object::new();
    let value_descriptor = |value: &JsValue| {
        let descriptor = Object::new();
        let _ = Reflect::set(&descriptor, &"value".into(), value);
        let _ = Reflect::set(&descriptor, &"configurable".into(), &JsValue::TRUE);
        descriptor
    };
    for key in ["target", "currentTarget", "srcElement"] {
        let _ = Reflect::set(&descriptors, &key.into(), &value_descriptor(target));
    }
    let stop = STOP.with(|stop| stop.function.clone());
    let _ = Reflect::set(
        &descriptors,
        &"stopImmediatePropagation".into(),
        &value_descriptor(&stop),
    );
    descriptors
}

/// Points `event` at its socket (see [`target_descriptors`]).
pub(crate) fn attach(event: &JsValue, descriptors: &Object) {
    if let Some(event) = event.dyn_ref::<Object>() {
        // Fails only for a frozen object passed to dispatchEvent: it then keeps its own target.
        let _ = catch_define_properties(event, descriptors);
    }
}

/// The prototypes that point a socket's message events at it (see [`attach_message`]).
#[derive(Default)]
pub(crate) struct MessagePrototypes {
    /// For the browser's own events (see [`attach_message`]).
    browser: Option<Object>,
    /// For events made here: their own prototype and the one derived from it.
    made: Option<(Object, Object)>,
}

/// Points one of the socket's message events at it, like [`attach`] but about ten times
/// cheaper: instead of defining four properties on every event (several microseconds each
/// time in Chromium), the event gets a prototype made once per socket, which has those
/// properties and inherits from the event's own prototype (so `instanceof MessageEvent`,
/// `data`, `origin`, … are unchanged).
///
/// `browser`: the event is one the browser's `WebSocket` fired, untouched so far. All of
/// those have the same prototype (`MessageEvent.prototype` of this realm, whatever a page did
/// to the global `MessageEvent` since), so the derived prototype is made from the first one
/// and used without looking again: two calls into JS fewer per message. An event made here
/// with `new MessageEvent` (text copied out of wasm, a page that replaced the constructor)
/// gets its prototype looked at, and a new derived one when it changed.
pub(crate) fn attach_message(
    event: &Object,
    descriptors: &Object,
    cache: &mut MessagePrototypes,
    browser: bool,
) {
    let derived = match (browser, &cache.browser, &cache.made) {
        (true, Some(derived), _) => derived.clone(),
        (false, _, Some((parent, derived))) if Object::get_prototype_of(event) == *parent => {
            derived.clone()
        }
        _ => {
            let own = Object::get_prototype_of(event);
            let derived = Object::create(&own);
            if catch_define_properties(&derived, descriptors).is_err() {
                return attach(event, descriptors);
            }
            if browser {
                cache.browser = Some(derived.clone());
            } else {
                cache.made = Some((own, derived.clone()));
            }
            derived
        }
    };
    if catch_set_prototype_of(event, &derived).is_err() {
        // A non-extensible event: `attach` fails alike, and it keeps its own target.
        attach(event, descriptors);
    }
}

#[wasm_bindgen::prelude::wasm_bindgen]
extern "C" {
    #[wasm_bindgen(catch, js_namespace = Object, js_name = defineProperties)]
    fn catch_define_properties(object: &Object, descriptors: &Object) -> Result<JsValue, JsValue>;
    #[wasm_bindgen(catch, js_namespace = Object, js_name = setPrototypeOf)]
    fn catch_set_prototype_of(object: &Object, prototype: &Object) -> Result<JsValue, JsValue>;
}

/// A plain `Event` of this type, or a plain object where there is no `Event` constructor.
fn base_event(event_type: &str) -> JsValue {
    match web_sys::Event::new(event_type) {
        Ok(event) => event.into(),
        Err(_) => {
            let object = Object::new();
            set(&object, "type", &event_type.into());
            object.into()
        }
    }
}

/// The `open` event.
pub(crate) fn open() -> JsValue {
    base_event(Kind::Open.as_str())
}

/// A `MessageEvent` with `data` and `origin` (or an `Event` with them, where there is no
/// `MessageEvent`).
pub(crate) fn message(data: &JsValue, origin: &str) -> JsValue {
    let init = web_sys::MessageEventInit::new();
    init.set_data(data);
    init.set_origin(origin);
    match web_sys::MessageEvent::new_with_event_init_dict(Kind::Message.as_str(), &init) {
        Ok(event) => event.into(),
        Err(_) => {
            let event = base_event(Kind::Message.as_str());
            set(&event, "data", data);
            set(&event, "origin", &origin.into());
            event
        }
    }
}

/// The `error` event: a plain `Event` as in the browser, plus what the browser leaves out:
/// `error` (a `UnisockError`) and its `message`.
pub(crate) fn error(error: &JsValue, message: &str) -> JsValue {
    let event = base_event(Kind::Error.as_str());
    set(&event, "error", error);
    set(&event, "message", &message.into());
    event
}

/// The final `close` event: a `CloseEvent` (an `Event` with the same fields where there is
/// no `CloseEvent`, as in Node 20), plus `unsent`.
pub(crate) fn close(code: u16, reason: &str, was_clean: bool, unsent: Array) -> JsValue {
    let init = web_sys::CloseEventInit::new();
    init.set_code(code);
    init.set_reason(reason);
    init.set_was_clean(was_clean);
    let event = match web_sys::CloseEvent::new_with_event_init_dict(Kind::Close.as_str(), &init) {
        Ok(event) => event.into(),
        Err(_) => {
            let event = base_event(Kind::Close.as_str());
            set(&event, "code", &code.into());
            set(&event, "reason", &reason.into());
            set(&event, "wasClean", &was_clean.into());
            event
        }
    };
    set(&event, "unsent", &unsent);
    event
}

/// The `reconnecting` event: which attempt comes after how long, and how the previous
/// connection ended.
pub(crate) fn reconnecting(
    attempt: u32,
    delay_ms: f64,
    code: u16,
    reason: &str,
    was_clean: bool,
) -> JsValue {
    let event = base_event(Kind::Reconnecting.as_str());
    set(&event, "attempt", &attempt.into());
    set(&event, "delay", &delay_ms.into());
    set(&event, "code", &code.into());
    set(&event, "reason", &reason.into());
    set(&event, "wasClean", &was_clean.into());
    event
}

/// The `session` event: after each `open` when `{ session: true }`: which delivery mode runs.
pub(crate) fn session(acknowledged: bool, resumed: bool) -> JsValue {
    let event = base_event(Kind::Session.as_str());
    set(&event, "acknowledged", &acknowledged.into());
    set(&event, "resumed", &resumed.into());
    event
}

/// The `gap` event: messages of an acknowledged session that may have been lost.
pub(crate) fn gap(
    direction: &str,
    first: u64,
    last: Option<u64>,
    reason: &str,
    messages: Array,
) -> JsValue {
    let event = base_event(Kind::Gap.as_str());
    set(&event, "direction", &direction.into());
    // Sequence numbers stay far below 2^53 in practice: plain numbers for JS.
    set(&event, "first", &(first as f64).into());
    set(
        &event,
        "last",
        &last.map_or(JsValue::NULL, |last| (last as f64).into()),
    );
    set(&event, "reason", &reason.into());
    set(&event, "messages", &messages);
    event
}

fn set(object: &JsValue, key: &str, value: &JsValue) {
    let _ = Reflect::set(object, &JsValue::from_str(key), value);
}
