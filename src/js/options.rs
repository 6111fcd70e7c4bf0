//! The second argument of `new Socket(url, protocolsOrOptions)`: a subprotocol, a list of
//! them (as for `WebSocket`), or an options object, turned into [`Options`].
//!
//! Times are in milliseconds and sizes in bytes, as JS users expect. Every value is checked
//! up front: a wrong type, a value out of range or a misspelt key throws a `TypeError` that
//! names the option, instead of being ignored (a misspelt `reconect: false` would otherwise
//! silently leave reconnection on). Subprotocols are checked as the browser checks them
//! (`SyntaxError`).

use std::time::Duration;

use js_sys::{Array, Function, Object, Reflect};
use wasm_bindgen::{JsCast, JsValue};

use super::data;
use super::errors::{describe, dom_exception, type_error, unisock_error};
use crate::{AppPing, Disconnect, Heartbeat, Options, QueueLimits, Reconnect, SessionOptions};

/// Keys of the options object, in the order the TypeScript declarations list them.
const OPTION_KEYS: &[&str] = &[
    "protocols",
    "connectTimeout",
    "closeTimeout",
    "maxMessageSize",
    "receiveBuffer",
    "reconnect",
    "queue",
    "heartbeat",
    "session",
];
const SESSION_KEYS: &[&str] = &["maxUnackedMessages", "maxUnackedBytes", "ackDelay"];
const RECONNECT_KEYS: &[&str] = &[
    "minDelay",
    "maxDelay",
    "factor",
    "maxRetries",
    "minUptime",
    "shouldReconnect",
];
const QUEUE_KEYS: &[&str] = &["maxMessages", "maxBytes"];
const HEARTBEAT_KEYS: &[&str] = &["interval", "timeout", "ping", "pong"];

/// Parses the second constructor argument.
pub(crate) fn parse(value: &JsValue) -> Result<Options, JsValue> {
    let mut options = Options::default();
    if value.is_undefined() || value.is_null() {
        return Ok(options);
    }
    if value.is_string() || Array::is_array(value) {
        options.protocols = protocols(value, "protocols")?;
        return Ok(options);
    }
    let Some(object) = as_plain_object(value) else {
        return Err(type_error(format_args!(
            "the second argument must be a subprotocol, an array of subprotocols or an \
             options object, got {}",
            describe(value)
        )));
    };
    check_keys(object, OPTION_KEYS, "options")?;

    let field = get(object, "protocols")?;
    if !field.is_undefined() {
        options.protocols = protocols(&field, "options.protocols")?;
    }
    let field = get(object, "connectTimeout")?;
    if !field.is_undefined() {
        options.connect_timeout = if field.is_null() || field.as_f64() == Some(f64::INFINITY) {
            None
        } else {
            Some(positive_millis(&field, "options.connectTimeout")?)
        };
    }
    if let Some(timeout) = optional(object, "closeTimeout", millis, "options.closeTimeout")? {
        options.close_timeout = timeout;
    }
    if let Some(size) = optional(object, "maxMessageSize", count, "options.maxMessageSize")? {
        options.max_message_size = size;
    }
    if let Some(max) = optional(object, "receiveBuffer", count, "options.receiveBuffer")? {
        options.receive_buffer = at_least_one(max, "options.receiveBuffer")?;
    }
    let field = get(object, "reconnect")?;
    if !field.is_undefined() {
        options.reconnect = reconnect(&field)?;
    }
    let field = get(object, "queue")?;
    if !field.is_undefined() {
        options.queue = queue(&field)?;
    }
    let field = get(object, "session")?;
    if !field.is_undefined() {
        options.session = session(&field)?;
    }
    let field = get(object, "heartbeat")?;
    if !field.is_undefined() {
        options.heartbeat = heartbeat(&field, options.session.is_some())?;
    }
    Ok(options)
}

/// `session: true | false | null | { … }`.
fn session(value: &JsValue) -> Result<Option<SessionOptions>, JsValue> {
    if value.is_null() || value.as_bool() == Some(false) {
        return Ok(None);
    }
    let mut session = SessionOptions::default();
    if value.as_bool() == Some(true) {
        return Ok(Some(session));
    }
    let Some(object) = as_plain_object(value) else {
        return Err(type_error(format_args!(
            "options.session must be true, false or an object, got {}",
            describe(value)
        )));
    };
    check_keys(object, SESSION_KEYS, "options.session")?;
    if let Some(n) = optional(
        object,
        "maxUnackedMessages",
        count,
        "options.session.maxUnackedMessages",
    )? {
        session.max_unacked_messages = n.max(1);
    }
    if let Some(n) = optional(
        object,
        "maxUnackedBytes",
        count,
        "options.session.maxUnackedBytes",
    )? {
        session.max_unacked_bytes = n;
    }
    if let Some(delay) = optional(object, "ackDelay", millis, "options.session.ackDelay")? {
        session.ack_delay = delay;
    }
    Ok(Some(session))
}

/// `reconnect: true | false | null | { … }`.
fn reconnect(value: &JsValue) -> Result<Option<Reconnect>, JsValue> {
    if value.is_null() || value.as_bool() == Some(false) {
        return Ok(None);
    }
    let mut reconnect = Reconnect::default();
    if value.as_bool() == Some(true) {
        return Ok(Some(reconnect));
    }
    let Some(object) = as_plain_object(value) else {
        return Err(type_error(format_args!(
            "options.reconnect must be true, false or an object, got {}",
            describe(value)
        )));
    };
    check_keys(object, RECONNECT_KEYS, "options.reconnect")?;
    if let Some(delay) = optional(object, "minDelay", millis, "options.reconnect.minDelay")? {
        reconnect.min_delay = delay;
    }
    if let Some(delay) = optional(object, "maxDelay", millis, "options.reconnect.maxDelay")? {
        reconnect.max_delay = delay;
    }
    if reconnect.max_delay < reconnect.min_delay {
        return Err(type_error(format_args!(
            "options.reconnect.maxDelay ({} ms) must not be less than minDelay ({} ms)",
            reconnect.max_delay.as_millis(),
            reconnect.min_delay.as_millis()
        )));
    }
    let field = get(object, "factor")?;
    if !field.is_undefined() {
        reconnect.factor = match field.as_f64() {
            Some(factor) if factor.is_finite() && factor >= 1.0 => factor,
            _ => {
                return Err(type_error(format_args!(
                    "options.reconnect.factor must be a number >= 1, got {}",
                    describe(&field)
                )))
            }
        };
    }
    let field = get(object, "maxRetries")?;
    if !field.is_undefined() {
        reconnect.max_retries = if field.is_null() || field.as_f64() == Some(f64::INFINITY) {
            None
        } else {
            let retries = count(&field, "options.reconnect.maxRetries")?;
            Some(u32::try_from(retries).unwrap_or(u32::MAX))
        };
    }
    if let Some(uptime) = optional(object, "minUptime", millis, "options.reconnect.minUptime")? {
        reconnect.min_uptime = uptime;
    }
    let field = get(object, "shouldReconnect")?;
    if !field.is_undefined() {
        let Some(predicate) = field.dyn_ref::<Function>().cloned() else {
            return Err(type_error(format_args!(
                "options.reconnect.shouldReconnect must be a function, got {}",
                describe(&field)
            )));
        };
        reconnect = reconnect.should_reconnect(move |why| ask_should_reconnect(&predicate, why));
    }
    Ok(Some(reconnect))
}

/// Calls the user's `shouldReconnect(info)`; a predicate that throws is reported and the
/// default decision stands.
fn ask_should_reconnect(predicate: &Function, why: &Disconnect<'_>) -> bool {
    let default = Reconnect::default_should_reconnect(why);
    let info = Object::new();
    let (code, reason, was_clean, error) = match why {
        Disconnect::Closed(close) => (close.code, close.reason.as_str(), close.was_clean, None),
        Disconnect::Error(error) => (1006, "", false, Some(unisock_error(error))),
    };
    set(&info, "code", &code.into());
    set(&info, "reason", &reason.into());
    set(&info, "wasClean", &was_clean.into());
    set(&info, "error", &error.unwrap_or(JsValue::NULL));
    set(&info, "retryByDefault", &default.into());
    match predicate.call1(&JsValue::UNDEFINED, &info) {
        Ok(answer) => answer.is_truthy(),
        Err(exception) => {
            super::errors::report(exception);
            default
        }
    }
}

/// `queue: { maxMessages?, maxBytes? }`.
fn queue(value: &JsValue) -> Result<QueueLimits, JsValue> {
    let Some(object) = as_plain_object(value) else {
        return Err(type_error(format_args!(
            "options.queue must be an object, got {}",
            describe(value)
        )));
    };
    check_keys(object, QUEUE_KEYS, "options.queue")?;
    let mut limits = QueueLimits::default();
    if let Some(max) = optional(object, "maxMessages", count, "options.queue.maxMessages")? {
        limits.max_messages = at_least_one(max, "options.queue.maxMessages")?;
    }
    if let Some(max) = optional(object, "maxBytes", count, "options.queue.maxBytes")? {
        limits.max_bytes = at_least_one(max, "options.queue.maxBytes")?;
    }
    Ok(limits)
}

/// `heartbeat: false | null | { interval?, timeout?, ping, pong }`. The browser cannot send
/// WebSocket pings, so the application-level `ping` and `pong` messages are required, except
/// with `session` (acknowledged sessions have their own ping, answered by the server).
fn heartbeat(value: &JsValue, session: bool) -> Result<Option<Heartbeat>, JsValue> {
    if value.is_null() || value.as_bool() == Some(false) {
        return Ok(None);
    }
    let Some(object) = as_plain_object(value) else {
        return Err(type_error(format_args!(
            "options.heartbeat must be false or an object {{ interval, timeout, ping, pong }}, \
             got {}",
            describe(value)
        )));
    };
    check_keys(object, HEARTBEAT_KEYS, "options.heartbeat")?;
    let mut heartbeat = Heartbeat::default();
    if let Some(interval) = optional(
        object,
        "interval",
        positive_millis,
        "options.heartbeat.interval",
    )? {
        heartbeat.interval = interval;
    }
    if let Some(timeout) = optional(
        object,
        "timeout",
        positive_millis,
        "options.heartbeat.timeout",
    )? {
        heartbeat.timeout = timeout;
    }
    let (ping, pong) = (get(object, "ping")?, get(object, "pong")?);
    if session && ping.is_undefined() && pong.is_undefined() {
        return Ok(Some(heartbeat));
    }
    if ping.is_undefined() || pong.is_undefined() {
        return Err(type_error(
            "options.heartbeat needs both `ping` (the message to send) and `pong` (the answer \
             the server sends back): a browser WebSocket cannot send ping frames",
        ));
    }
    heartbeat.app_ping = Some(AppPing {
        ping: data::to_message(&ping, "options.heartbeat.ping")?,
        pong: data::to_message(&pong, "options.heartbeat.pong")?,
    });
    Ok(Some(heartbeat))
}

/// A subprotocol or a list of them, checked as the browser checks them: each a non-empty
/// HTTP token, none twice (`SyntaxError` otherwise).
fn protocols(value: &JsValue, what: &str) -> Result<Vec<String>, JsValue> {
    let list: Vec<JsValue> = if value.is_string() {
        vec![value.clone()]
    } else if Array::is_array(value) {
        Array::from(value).iter().collect()
    } else {
        return Err(type_error(format_args!(
            "{what} must be a string or an array of strings, got {}",
            describe(value)
        )));
    };
    let mut protocols = Vec::with_capacity(list.len());
    for item in list {
        let Some(protocol) = item.as_string() else {
            return Err(type_error(format_args!(
                "{what} must contain only strings, got {}",
                describe(&item)
            )));
        };
        if protocol.is_empty() || !protocol.bytes().all(is_token_byte) {
            return Err(dom_exception(
                "SyntaxError",
                format_args!("the subprotocol {protocol:?} is invalid (it must be an HTTP token)"),
            ));
        }
        if protocols.contains(&protocol) {
            return Err(dom_exception(
                "SyntaxError",
                format_args!("the subprotocol {protocol:?} is given twice"),
            ));
        }
        protocols.push(protocol);
    }
    Ok(protocols)
}

/// A `tchar` of RFC 9110: visible ASCII except separators.
fn is_token_byte(byte: u8) -> bool {
    byte.is_ascii_graphic() && !b"\"(),/:;<=>?@[\\]{}".contains(&byte)
}

/// A field that is `undefined` when absent, converted by `convert` otherwise.
fn optional<T>(
    object: &Object,
    key: &str,
    convert: fn(&JsValue, &str) -> Result<T, JsValue>,
    what: &str,
) -> Result<Option<T>, JsValue> {
    let value = get(object, key)?;
    if value.is_undefined() {
        Ok(None)
    } else {
        convert(&value, what).map(Some)
    }
}

/// A duration in milliseconds, >= 0.
fn millis(value: &JsValue, what: &str) -> Result<Duration, JsValue> {
    match value.as_f64() {
        Some(ms) if ms.is_finite() && ms >= 0.0 => Ok(Duration::from_secs_f64(ms / 1000.0)),
        _ => Err(type_error(format_args!(
            "{what} must be a number of milliseconds >= 0, got {}",
            describe(value)
        ))),
    }
}

/// A duration in milliseconds, > 0.
fn positive_millis(value: &JsValue, what: &str) -> Result<Duration, JsValue> {
    match value.as_f64() {
        Some(ms) if ms.is_finite() && ms > 0.0 => Ok(Duration::from_secs_f64(ms / 1000.0)),
        _ => Err(type_error(format_args!(
            "{what} must be a number of milliseconds > 0, got {}",
            describe(value)
        ))),
    }
}

/// A whole number >= 0 (a count or a size in bytes).
fn count(value: &JsValue, what: &str) -> Result<usize, JsValue> {
    match value.as_f64() {
        Some(n) if n >= 0.0 && n.fract() == 0.0 && n <= 9_007_199_254_740_991.0 => {
            Ok(n.min(usize::MAX as f64) as usize)
        }
        _ => Err(type_error(format_args!(
            "{what} must be a whole number >= 0, got {}",
            describe(value)
        ))),
    }
}

fn at_least_one(n: usize, what: &str) -> Result<usize, JsValue> {
    if n == 0 {
        return Err(type_error(format_args!("{what} must be at least 1, got 0")));
    }
    Ok(n)
}

/// An object that is not an array nor a function (an options "dictionary").
fn as_plain_object(value: &JsValue) -> Option<&Object> {
    (value.is_object() && !Array::is_array(value) && !value.is_function())
        .then(|| value.unchecked_ref::<Object>())
}

/// Throws a `TypeError` for a key that is not an option: almost always a typo.
fn check_keys(object: &Object, known: &[&str], what: &str) -> Result<(), JsValue> {
    for key in Object::keys(object).iter() {
        let key = key.as_string().unwrap_or_default();
        if !known.contains(&key.as_str()) {
            return Err(type_error(format_args!(
                "unknown option {what}.{key} (known: {})",
                known.join(", ")
            )));
        }
    }
    Ok(())
}

/// `object[key]`; a getter that throws makes the constructor throw that.
fn get(object: &Object, key: &str) -> Result<JsValue, JsValue> {
    Reflect::get(object, &JsValue::from_str(key))
}

fn set(object: &Object, key: &str, value: &JsValue) {
    let _ = Reflect::set(object, &JsValue::from_str(key), value);
}
