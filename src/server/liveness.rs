//! Finds clients that went away without a word. A peer whose machine died, or whose network
//! path went dark, never closes its TCP connection: without a check, the server would keep
//! its connection (a task, a file descriptor, a room membership) forever.
//!
//! Every [`ServerConfig::ping_interval`](super::ServerConfig::ping_interval) the connection
//! looks back: a client heard from (any frame) is fine; a silent one gets a ping; one that
//! stays silent through the whole next interval after its ping is taken for gone. So a dead
//! peer is dropped within two to three intervals, and a live one costs one ping per silent
//! interval (browsers and every WebSocket library answer pings by themselves).

use std::time::Duration;

use tokio::time::{Instant, Interval, MissedTickBehavior};

/// What the check at the end of an interval found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Check {
    /// The client was heard from.
    Alive,
    /// Silent for an interval: ping it.
    Ping,
    /// Silent for a whole interval after its ping: gone.
    Gone,
}

/// The liveness check of one connection.
#[derive(Debug)]
pub(crate) struct Liveness {
    ticker: Option<Interval>,
    heard: bool,
    pinged: bool,
}

impl Liveness {
    /// Checks every `interval`; `None` never checks.
    pub(crate) fn new(interval: Option<Duration>) -> Self {
        let ticker = interval.map(|interval| {
            let mut ticker = tokio::time::interval_at(Instant::now() + interval, interval);
            // After a stall (e.g. a long write), check once rather than several times at once.
            ticker.set_missed_tick_behavior(MissedTickBehavior::Delay);
            ticker
        });
        Liveness {
            ticker,
            heard: false,
            pinged: false,
        }
    }

    /// The client sent something (a message, a pong, any frame): cheap, called per frame.
    pub(crate) fn heard(&mut self) {
        self.heard = true;
    }

    /// Resolves at the end of the current interval with what it found; never without an
    /// interval. Cancel-safe: dropped before it resolves, it changes nothing.
    pub(crate) async fn check(&mut self) -> Check {
        match &mut self.ticker {
            Some(ticker) => {
                ticker.tick().await;
            }
            None => std::future::pending::<()>().await,
        }
        if std::mem::take(&mut self.heard) {
            self.pinged = false;
            Check::Alive
        } else if self.pinged {
            Check::Gone
        } else {
            self.pinged = true;
            Check::Ping
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn pings_a_silent_client_then_gives_it_up() {
        let mut liveness = Liveness::new(Some(Duration::from_secs(30)));
        liveness.heard();
        assert_eq!(liveness.check().await, Check::Alive);
        assert_eq!(liveness.check().await, Check::Ping);
        // The pong (or anything else) arrives: all is well again.
        liveness.heard();
        assert_eq!(liveness.check().await, Check::Alive);
        assert_eq!(liveness.check().await, Check::Ping);
        let pinged_at = Instant::now();
        assert_eq!(liveness.check().await, Check::Gone);
        assert_eq!(pinged_at.elapsed(), Duration::from_secs(30));
    }

    #[tokio::test(start_paused = true)]
    async fn without_an_interval_never_checks() {
        let mut liveness = Liveness::new(None);
        let check = tokio::time::timeout(Duration::from_secs(3600), liveness.check()).await;
        assert!(check.is_err());
    }
}
