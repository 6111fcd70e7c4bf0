//! The checks of the "numbered messages through five cuts" scenario, and the reconnect
//! policy of the fault-injection tests, shared by the native and the browser ones so that
//! both promise exactly the same thing.

#![allow(dead_code)]

use std::time::Duration;

use unisock::{CloseEvent, Message, Reconnect};

/// Quick reconnects, for the fault-injection tests.
pub fn fast_reconnect() -> Reconnect {
    Reconnect {
        min_delay: Duration::from_millis(20),
        max_delay: Duration::from_millis(200),
        min_uptime: Duration::from_millis(100),
        ..Reconnect::default()
    }
}

/// What one run of the scenario observed.
pub struct CutOutcome {
    /// Numbers received back, in arrival order.
    pub received: Vec<u32>,
    /// Numbers sent while the connection was not open.
    pub sent_while_down: Vec<u32>,
    pub opens: u32,
    pub reconnects: u32,
    /// The final close.
    pub close: CloseEvent,
}

/// Asserts the delivery guarantee for `count` numbered messages sent through five cuts, then
/// three more queued during a final outage; returns a one-line summary.
pub fn check(count: u32, outcome: &CutOutcome) -> String {
    let received = &outcome.received;
    assert!(
        received.windows(2).all(|w| w[0] < w[1]),
        "no duplicate, no reordering"
    );
    let missing: Vec<u32> = (0..count)
        .filter(|i| received.binary_search(i).is_err())
        .collect();
    assert!(
        !outcome.sent_while_down.is_empty(),
        "some messages were sent during the outages"
    );
    for i in &outcome.sent_while_down {
        assert!(
            received.binary_search(i).is_ok(),
            "{i} was sent while down and never arrived"
        );
    }
    // Only what was in flight at a cut may be missing: a few messages per cut at this pace.
    assert!(missing.len() <= 5 * 8, "{} missing", missing.len());
    let opens = outcome.opens;
    assert!(opens >= 6, "the first open and one per cut, saw {opens}");
    let reconnects = outcome.reconnects;
    assert!(
        reconnects >= 6,
        "five cuts and the final outage, saw {reconnects}"
    );
    let unsent: Vec<Message> = (count..count + 3)
        .map(|i| Message::text(i.to_string()))
        .collect();
    assert_eq!(
        outcome.close.unsent, unsent,
        "what never left is handed back, in order"
    );
    format!(
        "received {} of {count}, {} lost in flight at the cuts: {missing:?}; {} sent while down",
        received.len(),
        missing.len(),
        outcome.sent_while_down.len()
    )
}
