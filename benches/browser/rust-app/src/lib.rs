//! The Rust contender of the browser benchmark (benches/browser/) and the "minimal app" of the
//! wasm size budget: only `unisock::connect`, `Sink` sends and `Stream` receives, exactly as a
//! user's app would write them.
//!
//! Each export opens its own connection, runs one bounded loop, closes and returns what it
//! measured; timing is `performance.now()` inside wasm (the same clock the page uses for the
//! JS contenders), so the numbers include everything a Rust app pays: the `Sink` and `Stream`
//! machinery, the session task and the copies between JS and wasm memory.

use futures::{SinkExt, StreamExt};
use unisock::{Event, Message, Options, Receiver, Sender};
use wasm_bindgen::prelude::*;

#[wasm_bindgen]
extern "C" {
    /// `performance.now()`: milliseconds, as precise as the page's timers allow.
    #[wasm_bindgen(js_namespace = performance, js_name = now)]
    fn now() -> f64;
}

/// Sequential ping-pong: `warmup` unmeasured round trips, then up to `count` measured ones
/// (fewer if `max_ms` runs out). Returns the round-trip times in milliseconds.
#[wasm_bindgen]
pub async fn round_trips(
    url: String,
    size: usize,
    warmup: u32,
    count: u32,
    max_ms: f64,
) -> Result<js_sys::Float64Array, JsError> {
    let (mut sender, mut receiver) = unisock::connect(&url, Options::default()).await?;
    let payload = unisock::Bytes::from(vec![0x5a_u8; size]);
    for _ in 0..warmup {
        sender.send(Message::Binary(payload.clone())).await?;
        next_message(&mut receiver, size).await?;
    }
    let mut samples = Vec::with_capacity(count as usize);
    let deadline = now() + max_ms;
    while samples.len() < count as usize && now() < deadline {
        let start = now();
        sender.send(Message::Binary(payload.clone())).await?;
        next_message(&mut receiver, size).await?;
        samples.push(now() - start);
    }
    close(sender, receiver).await;
    Ok(js_sys::Float64Array::from(samples.as_slice()))
}

/// How often `pipelined` looks at its deadline (bench.js has the same).
const DEADLINE_EVERY: u32 = 32;

/// Pipelined echo with at most `window` messages in flight: sends `count` messages (fewer if
/// `max_ms` runs out) and waits for all their echoes. Returns `[messages, milliseconds]`.
#[wasm_bindgen]
pub async fn pipelined(
    url: String,
    size: usize,
    count: u32,
    window: u32,
    max_ms: f64,
) -> Result<js_sys::Float64Array, JsError> {
    let (mut sender, mut receiver) = unisock::connect(&url, Options::default()).await?;
    let payload = unisock::Bytes::from(vec![0x5a_u8; size]);
    let start = now();
    let deadline = start + max_ms;
    let (mut sent, mut received) = (0_u32, 0_u32);
    // `feed` queues without waiting for the write (as the browser's `send` does): the session
    // writes in the background while this loop waits for echoes.
    while sent < count.min(window.max(1)) {
        sender.feed(Message::Binary(payload.clone())).await?;
        sent += 1;
    }
    while received < sent {
        next_message(&mut receiver, size).await?;
        received += 1;
        // The deadline is a safety bound, not part of what is measured: looked at every
        // DEADLINE_EVERY messages (as in bench.js), not paid for per message.
        if sent < count && (sent % DEADLINE_EVERY != 0 || now() < deadline) {
            sender.feed(Message::Binary(payload.clone())).await?;
            sent += 1;
        }
    }
    let elapsed = now() - start;
    close(sender, receiver).await;
    Ok(js_sys::Float64Array::from(
        [f64::from(received), elapsed].as_slice(),
    ))
}

/// The next message, which must be an echo of `size` bytes.
async fn next_message(receiver: &mut Receiver, size: usize) -> Result<(), JsError> {
    while let Some(event) = receiver.next().await {
        match event {
            Event::Message(message) if message.len() == size => return Ok(()),
            Event::Message(message) => {
                return Err(JsError::new(&format!(
                    "echo of {} bytes, expected {size}",
                    message.len()
                )))
            }
            Event::Error(error) => return Err(error.into()),
            Event::Close(close) => {
                return Err(JsError::new(&format!("closed early: {}", close.code)))
            }
            _ => {}
        }
    }
    Err(JsError::new("the connection ended early"))
}

/// Closes with 1000 and waits for the close to complete (outside the measured part).
async fn close(sender: Sender, mut receiver: Receiver) {
    if sender.close(1000, "done").is_ok() {
        while let Some(event) = receiver.next().await {
            if matches!(event, Event::Close(_)) {
                break;
            }
        }
    }
}
