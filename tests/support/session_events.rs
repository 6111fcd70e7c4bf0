//! Reading the events of an acknowledged-session client in tests, the same way natively, in
//! the browser and across servers. Uses the including test's own `next_event` (a bounded wait
//! for the next event of a `unisock::Receiver`), imported at its crate root.

#![allow(dead_code)]

use unisock::Event;

use super::next_event;

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
