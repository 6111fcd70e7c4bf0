//! Acknowledged-session clients in tests, the same way natively, in the browser and across
//! servers: their options, and reading their events. Uses the including test's own
//! `next_event` (a bounded wait for the next event of a `unisock::Receiver`), imported at its
//! crate root.

#![allow(dead_code)]

use std::time::Duration;

use unisock::{Event, Heartbeat, Options, Reconnect, SessionOptions};

use super::next_event;

/// A session client with quick reconnects and the session's own heartbeat (a ping after
/// 200 ms of silence, no application ping needed, also in the browser): a blackhole is found
/// `heartbeat_timeout` after that ping.
pub fn session_options(heartbeat_timeout: Duration) -> Options {
    Options::default()
        .reconnect(Reconnect {
            min_delay: Duration::from_millis(10),
            max_delay: Duration::from_millis(100),
            min_uptime: Duration::from_millis(50),
            ..Reconnect::default()
        })
        .heartbeat(Some(Heartbeat {
            interval: Duration::from_millis(200),
            timeout: heartbeat_timeout,
            app_ping: None,
        }))
        .session(SessionOptions::default())
}

/// The next event that is not an error or a reconnect notice (errors are printed).
pub async fn next_interesting(rx: &mut unisock::Receiver) -> Event {
    loop {
        match next_event(rx).await {
            Event::Error(error) => println!("error: {error}"),
            Event::Reconnecting { .. } => {}
            other => return other,
        }
    }
}

/// Expects `Open` with `unisock.v1`, then `Session { acknowledged: true, resumed }`.
pub async fn expect_open(rx: &mut unisock::Receiver, resumed: bool) {
    let open = next_interesting(rx).await;
    assert!(
        matches!(open, Event::Open { ref protocol } if protocol == "unisock.v1"),
        "{open:?}"
    );
    assert_eq!(
        next_interesting(rx).await,
        Event::Session {
            acknowledged: true,
            resumed
        }
    );
}
