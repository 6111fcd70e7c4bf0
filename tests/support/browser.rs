//! Helpers shared by the browser tests (wasm32 only).

#![allow(dead_code)]

use std::future::Future;

use futures::StreamExt;
use unisock::Event;

/// The test echo server's URL for `path`. Read at build time: a test in a browser has no
/// environment. Built without it (e.g. by clippy), the tests still compile and fail with this
/// message when run.
pub fn echo_url(path: &str) -> String {
    let Some(base) = option_env!("UNISOCK_TEST_ECHO_URL") else {
        panic!("UNISOCK_TEST_ECHO_URL must be set at build time: run scripts/test.sh");
    };
    format!("{base}{path}")
}

/// Fails the test after 20 s instead of hanging it.
pub async fn within<T>(what: &str, future: impl Future<Output = T>) -> T {
    let timeout = gloo_timers::future::TimeoutFuture::new(20_000);
    match futures::future::select(Box::pin(future), timeout).await {
        futures::future::Either::Left((value, _)) => value,
        futures::future::Either::Right(_) => panic!("timed out waiting for {what}"),
    }
}

/// The next event, failing the test after 20 s.
pub async fn next_event(receiver: &mut unisock::Receiver) -> Event {
    within("an event", receiver.next())
        .await
        .expect("the stream ended early")
}

pub async fn sleep_ms(ms: u32) {
    gloo_timers::future::TimeoutFuture::new(ms).await
}
