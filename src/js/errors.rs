//! The JS errors the `Socket` class throws or reports, shaped as the browser's `WebSocket`
//! would shape them.
//!
//! - Bad arguments follow WebIDL: a `TypeError` for a value of the wrong type, and the
//!   `DOMException` names the `WebSocket` standard uses (`SyntaxError` for a bad URL,
//!   subprotocol or close reason, `InvalidAccessError` for a bad close code). Where
//!   `DOMException` does not exist, an `Error` with the same `name` stands in.
//! - What unisock itself reports (a full queue, a closed socket, a failed connect, …) is an
//!   `Error` named `UnisockError` with a `kind` property naming the [`crate::Error`] variant,
//!   so that code can branch on `err.kind` instead of parsing messages.

use js_sys::Reflect;
use wasm_bindgen::{JsCast, JsValue};

use crate::Error;

/// Prefix of every message, so that a thrown error says where it comes from.
const PREFIX: &str = "unisock Socket";

/// `new TypeError(message)`.
pub(crate) fn type_error(message: impl std::fmt::Display) -> JsValue {
    js_sys::TypeError::new(&format!("{PREFIX}: {message}")).into()
}

/// A `DOMException` with this `name` (as the browser throws), or an `Error` with that name
/// where there is no `DOMException`.
pub(crate) fn dom_exception(name: &str, message: impl std::fmt::Display) -> JsValue {
    let message = format!("{PREFIX}: {message}");
    match web_sys::DomException::new_with_message_and_name(&message, name) {
        Ok(exception) => exception.into(),
        Err(_) => {
            let error = js_sys::Error::new(&message);
            error.set_name(name);
            error.into()
        }
    }
}

/// The JS error for a [`crate::Error`] raised by a method call or reported in an `error`
/// event: argument errors as the browser throws them, the rest as a `UnisockError`.
pub(crate) fn to_js(error: &Error) -> JsValue {
    match error {
        Error::InvalidUrl { .. } | Error::UnsupportedScheme { .. } => {
            dom_exception("SyntaxError", error)
        }
        Error::InvalidCloseCode { .. } => dom_exception("InvalidAccessError", error),
        Error::CloseReasonTooLong { .. } => dom_exception("SyntaxError", error),
        _ => unisock_error(error),
    }
}

/// `Error` named `UnisockError`, with `kind` (the variant's name) and, for a rejected
/// handshake, `status`.
pub(crate) fn unisock_error(error: &Error) -> JsValue {
    let js = js_sys::Error::new(&error.to_string());
    js.set_name("UnisockError");
    let _ = Reflect::set(&js, &"kind".into(), &kind(error).into());
    if let Some(status) = error.http_status() {
        let _ = Reflect::set(&js, &"status".into(), &status.into());
    }
    js.into()
}

/// The variant's name: the `kind` of a `UnisockError` (the `UnisockErrorKind` type in the
/// TypeScript declarations lists the same strings).
pub(crate) fn kind(error: &Error) -> &'static str {
    match error {
        Error::InvalidUrl { .. } => "InvalidUrl",
        Error::UnsupportedScheme { .. } => "UnsupportedScheme",
        Error::InvalidOption { .. } => "InvalidOption",
        Error::Unsupported { .. } => "Unsupported",
        Error::Resolve { .. } => "Resolve",
        Error::ConnectionRefused { .. } => "ConnectionRefused",
        Error::ConnectTimeout { .. } => "ConnectTimeout",
        Error::ConnectFailed { .. } => "ConnectFailed",
        Error::BrowserError { .. } => "BrowserError",
        Error::Tls { .. } => "Tls",
        Error::HandshakeRejected { .. } => "HandshakeRejected",
        Error::Handshake { .. } => "Handshake",
        Error::Io { .. } => "Io",
        Error::MessageTooLarge { .. } => "MessageTooLarge",
        Error::InvalidUtf8 => "InvalidUtf8",
        Error::Protocol { .. } => "Protocol",
        Error::InvalidCloseCode { .. } => "InvalidCloseCode",
        Error::CloseReasonTooLong { .. } => "CloseReasonTooLong",
        Error::QueueFull { .. } => "QueueFull",
        Error::ReaderLagged { .. } => "ReaderLagged",
        Error::HeartbeatTimeout { .. } => "HeartbeatTimeout",
        Error::Closed => "Closed",
        Error::Runtime { .. } => "Runtime",
    }
}

/// Reports an exception thrown by a listener without stopping the dispatch, as the browser
/// does ("report the exception"): through `reportError` where it exists (browsers, workers,
/// Deno), otherwise as an unhandled promise rejection (Node), which the runtime reports
/// (and which, like an exception in an `EventTarget` listener there, ends the process by
/// default).
pub(crate) fn report(exception: JsValue) {
    let global = js_sys::global();
    if let Ok(report_error) = Reflect::get(&global, &"reportError".into()) {
        if let Some(report_error) = report_error.dyn_ref::<js_sys::Function>() {
            if report_error.call1(&global, &exception).is_ok() {
                return;
            }
        }
    }
    let _ = js_sys::Promise::reject(&exception);
}

/// A short description of a JS value for error messages: strings quoted, numbers and
/// booleans as they are, anything else by its `typeof` (never its contents).
pub(crate) fn describe(value: &JsValue) -> String {
    if let Some(text) = value.as_string() {
        let mut short: String = text.chars().take(40).collect();
        if short.len() < text.len() {
            short.push('…');
        }
        format!("{short:?}")
    } else if let Some(number) = value.as_f64() {
        format!("{number}")
    } else if let Some(boolean) = value.as_bool() {
        format!("{boolean}")
    } else if value.is_null() {
        "null".to_owned()
    } else if js_sys::Array::is_array(value) {
        "an array".to_owned()
    } else {
        let type_of = value.js_typeof().as_string().unwrap_or_default();
        format!("a value of type {type_of}")
    }
}
