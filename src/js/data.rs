//! Message payloads between JS and Rust: `string` for text, `ArrayBuffer` for binary (what a
//! browser `WebSocket` with `binaryType = "arraybuffer"` delivers), and every
//! `ArrayBufferView` (`Uint8Array`, `DataView`, …) accepted for sending.

use js_sys::{ArrayBuffer, Uint8Array};
use wasm_bindgen::{JsCast, JsValue};

use super::errors::{describe, type_error};
use crate::transport::bytes_of;
use crate::Message;

/// Converts what JS passes to `send` (or as a heartbeat message) into a [`Message`]: a
/// string is text; an `ArrayBuffer` or the bytes an `ArrayBufferView` looks at are binary
/// (copied, so the caller may reuse its buffer at once).
pub(crate) fn to_message(value: &JsValue, what: &str) -> Result<Message, JsValue> {
    if let Some(text) = value.as_string() {
        return Ok(Message::text(text));
    }
    // The common case first, in three calls into JS (`instanceof`, `length`, `set`) instead of
    // the general view's seven below.
    if let Some(array) = value.dyn_ref::<Uint8Array>() {
        return Ok(Message::binary(bytes_of(array)));
    }
    if let Some(buffer) = value.dyn_ref::<ArrayBuffer>() {
        return Ok(Message::binary(bytes_of(&Uint8Array::new(buffer))));
    }
    if ArrayBuffer::is_view(value) {
        let view = value.unchecked_ref::<ArrayBufferView>();
        let bytes = Uint8Array::new_with_byte_offset_and_length(
            &view.buffer(),
            view.byte_offset(),
            view.byte_length(),
        );
        return Ok(Message::binary(bytes_of(&bytes)));
    }
    let hint = if is_blob(value) {
        " (a Blob is read asynchronously, which could reorder messages: send \
         `await blob.arrayBuffer()` instead)"
    } else {
        ""
    };
    Err(type_error(format_args!(
        "{what} must be a string, an ArrayBuffer or an ArrayBufferView (e.g. a Uint8Array), \
         got {}{hint}",
        describe(value)
    )))
}

/// A received (or unsent) message as JS data: text as a `string`, binary as an `ArrayBuffer`.
pub(crate) fn to_js(message: Message) -> JsValue {
    match message {
        Message::Text(text) => JsValue::from_str(&text),
        // Received as is (see `transport::received`): the browser's own buffer, no copy.
        Message::Binary(bytes) => crate::transport::received::original(&bytes).map_or_else(
            || Uint8Array::from(&bytes[..]).buffer().into(),
            |(_, data)| data,
        ),
    }
}

/// [`to_js`] for a message known not to be in `transport::received`: always a copy.
pub(crate) fn copy_to_js(message: Message) -> JsValue {
    match message {
        Message::Text(text) => JsValue::from_str(&text),
        Message::Binary(bytes) => Uint8Array::from(&bytes[..]).buffer().into(),
    }
}

fn is_blob(value: &JsValue) -> bool {
    let Ok(blob) = js_sys::Reflect::get(&js_sys::global(), &"Blob".into()) else {
        return false;
    };
    blob.dyn_ref::<js_sys::Function>()
        .is_some_and(|blob| instance_of(value, blob))
}

#[wasm_bindgen::prelude::wasm_bindgen]
extern "C" {
    /// Any typed array or `DataView`: the part of an `ArrayBuffer` it looks at.
    type ArrayBufferView;
    #[wasm_bindgen(method, getter)]
    fn buffer(this: &ArrayBufferView) -> ArrayBuffer;
    #[wasm_bindgen(method, getter, js_name = byteOffset)]
    fn byte_offset(this: &ArrayBufferView) -> u32;
    #[wasm_bindgen(method, getter, js_name = byteLength)]
    fn byte_length(this: &ArrayBufferView) -> u32;
}

fn instance_of(value: &JsValue, constructor: &js_sys::Function) -> bool {
    // `value instanceof constructor`, for a constructor known only at run time.
    js_sys::Reflect::get(constructor, &"prototype".into())
        .ok()
        .and_then(|prototype| prototype.dyn_into::<js_sys::Object>().ok())
        .is_some_and(|prototype| prototype.is_prototype_of(value))
}
