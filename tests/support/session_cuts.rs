//! The "10 000 numbered messages each way through 20 cuts" scenario of acknowledged sessions,
//! shared by the native and the browser test so that both promise exactly the same thing:
//! the same cut schedule and pace, and the same checks of the outcome.

#![allow(dead_code)]

use unisock::CloseEvent;

/// Messages sent (and echoed back).
pub const COUNT: u32 = 10_000;
/// Connection cuts while they flow.
pub const CUTS: u32 = 20;
/// How each cut is made, in turn (index with `cut % 3`).
pub const CUT_KINDS: [&str; 3] = ["rst", "fin", "blackhole"];

/// The delays before each cut, in ms: pseudo-random (xorshift) but the same on every run and
/// target, so that a failing run can be repeated.
pub fn cut_delays_ms() -> impl Iterator<Item = u32> {
    let mut state = 0x2545_f491_4f6c_dd1du64;
    (0..CUTS).map(move |_| {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        20 + (state % 150) as u32
    })
}

/// Whether message `i` may go out once `cuts_done` cuts were made: the pace is tied to the
/// cuts, so that every cut hits a busy connection.
pub fn may_send(i: u32, cuts_done: u32) -> bool {
    cuts_done == CUTS || i <= (cuts_done + 1) * (COUNT / (CUTS + 1))
}

/// What the receiving side saw.
#[derive(Debug, Default)]
pub struct Seen {
    /// The next number expected: all below it arrived, in order, once.
    pub next: u32,
    pub opens: u32,
    /// `Session` events with `resumed: true`.
    pub resumed: u32,
    pub close: Option<CloseEvent>,
    /// The first thing that went wrong (out of order, duplicate, gap…).
    pub problem: Option<String>,
}

impl Seen {
    /// Records echoed message `text`, which must be the next number.
    pub fn message(&mut self, text: &str) {
        if text.parse::<u32>().ok() != Some(self.next) && self.problem.is_none() {
            self.problem = Some(format!("expected {}, got {text:?}", self.next));
        }
        self.next += 1;
    }

    /// Records something that must not happen.
    pub fn problem(&mut self, what: String) {
        self.problem.get_or_insert(what);
    }

    /// Asserts the promise: every message exactly once and in order, no gap, every reconnect
    /// resumed, a clean close with nothing left unsent. Returns a one-line summary.
    pub fn check(&self) -> String {
        assert_eq!(self.problem, None);
        assert_eq!(self.next, COUNT, "every message echoed");
        assert_eq!(self.resumed, CUTS, "every reconnect resumed the session");
        let close = self.close.as_ref().expect("closed");
        assert_eq!(close.code, 1000);
        assert!(close.unsent.is_empty(), "nothing left unsent");
        format!(
            "{} of {COUNT} echoed in order, exactly once, through {CUTS} cuts: {} opens, {} resumed",
            self.next, self.opens, self.resumed
        )
    }
}
