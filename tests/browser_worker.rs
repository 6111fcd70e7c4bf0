//! The Rust API inside a dedicated Worker (no `window`): connect, echo, a reconnect (whose
//! backoff needs timers) and a clean close, in headless Chromium and Firefox through
//! wasm-bindgen-test, against the echo server that scripts/test.sh starts
//! (`UNISOCK_TEST_ECHO_URL`, read at build time). The JS `Socket` in a Worker is covered by
//! tests/js/demo-e2e.test.mjs and tests/js/shared-worker.test.mjs.

#![cfg(target_arch = "wasm32")]

use std::time::Duration;

use futures::SinkExt;
use unisock::{CloseEvent, Event, Message, Options, Reconnect};
use wasm_bindgen_test::*;

wasm_bindgen_test_configure!(run_in_dedicated_worker);

#[path = "support/browser.rs"]
mod support;
use support::{echo_url, next_event, within};

#[wasm_bindgen_test]
async fn connects_echoes_reconnects_and_closes_inside_a_worker() {
    let global = js_sys::global();
    assert_eq!(
        String::from(global.constructor().name()),
        "DedicatedWorkerGlobalScope",
        "this test must run in a dedicated worker"
    );
    assert!(
        js_sys::Reflect::get(&global, &"window".into())
            .unwrap()
            .is_undefined(),
        "a worker has no window"
    );

    let reconnect = Reconnect {
        min_delay: Duration::from_millis(50),
        max_delay: Duration::from_millis(50),
        ..Reconnect::default()
    };
    let options = Options::default().reconnect(reconnect);
    let (mut tx, mut rx) = within("connect", unisock::connect(&echo_url("/echo"), options))
        .await
        .expect("connect");
    assert!(matches!(next_event(&mut rx).await, Event::Open { .. }));

    for message in [
        Message::text("in a worker ✓"),
        Message::binary(vec![1u8, 2, 3]),
    ] {
        tx.send(message.clone()).await.unwrap();
        assert_eq!(next_event(&mut rx).await, Event::Message(message));
    }

    // The server closes; the backoff (gloo-timers' setTimeout, a worker global) runs and the
    // connection comes back.
    tx.send(Message::text("!close 4001 again")).await.unwrap();
    match next_event(&mut rx).await {
        Event::Reconnecting { attempt, close, .. } => {
            assert_eq!(attempt, 1);
            assert_eq!(close, CloseEvent::new(4001, "again", true));
        }
        other => panic!("expected Reconnecting, got {other:?}"),
    }
    assert!(matches!(next_event(&mut rx).await, Event::Open { .. }));
    tx.send(Message::text("after the reconnect")).await.unwrap();
    assert_eq!(
        next_event(&mut rx).await,
        Event::Message(Message::text("after the reconnect"))
    );

    tx.close(1000, "done").unwrap();
    assert_eq!(
        next_event(&mut rx).await,
        Event::Close(CloseEvent::new(1000, "done", true))
    );
}
