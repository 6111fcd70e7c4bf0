//! [`Backoff`]: counts reconnect attempts and draws their delays (exponential, full jitter).

use std::time::Duration;

use crate::{Disconnect, Reconnect};

/// The reconnect schedule of one session.
pub(crate) struct Backoff {
    policy: Option<Reconnect>,
    /// Attempts since the last connection that stayed up for `min_uptime`.
    attempt: u32,
    rng: SplitMix64,
}

impl Backoff {
    pub(crate) fn new(policy: Option<Reconnect>, seed: u64) -> Self {
        Backoff {
            policy,
            attempt: 0,
            rng: SplitMix64(seed),
        }
    }

    /// Whether this disconnect is worth a retry (never when reconnecting is off).
    pub(crate) fn should_retry(&self, why: &Disconnect<'_>) -> bool {
        self.policy
            .as_ref()
            .is_some_and(|policy| policy.should_reconnect.check(why))
    }

    /// The next attempt number and the delay before it, or `None` once retries are used up.
    pub(crate) fn next_attempt(&mut self) -> Option<(u32, Duration)> {
        let policy = self.policy.as_ref()?;
        if policy.max_retries.is_some_and(|max| self.attempt >= max) {
            return None;
        }
        self.attempt += 1;
        let ceiling = policy.ceiling(self.attempt);
        Some((self.attempt, ceiling.mul_f64(self.rng.next_unit())))
    }

    /// A connection that was open for `uptime` ended: a stable one resets the schedule.
    pub(crate) fn connection_ended(&mut self, uptime: Duration) {
        if self
            .policy
            .as_ref()
            .is_some_and(|policy| uptime >= policy.min_uptime)
        {
            self.attempt = 0;
        }
    }
}

/// A tiny, well-known PRNG (SplitMix64): jitter needs spread, not secrecy, and this keeps the
/// crate free of a randomness dependency on both targets.
struct SplitMix64(u64);

impl SplitMix64 {
    /// Uniform in [0, 1).
    fn next_unit(&mut self) -> f64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^= z >> 31;
        (z >> 11) as f64 / (1u64 << 53) as f64
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{CloseEvent, Error};

    fn policy() -> Reconnect {
        Reconnect {
            min_delay: Duration::from_millis(100),
            max_delay: Duration::from_secs(2),
            factor: 2.0,
            max_retries: None,
            min_uptime: Duration::from_secs(5),
            ..Reconnect::default()
        }
    }

    #[test]
    fn delays_stay_within_the_exponential_ceiling() {
        let ceilings = [100, 200, 400, 800, 1600, 2000, 2000];
        for seed in 0..200 {
            let mut backoff = Backoff::new(Some(policy()), seed);
            for (i, ceiling) in ceilings.iter().enumerate() {
                let (attempt, delay) = backoff.next_attempt().unwrap();
                assert_eq!(attempt, i as u32 + 1);
                assert!(
                    delay <= Duration::from_millis(*ceiling),
                    "{delay:?} > {ceiling} ms"
                );
            }
        }
    }

    #[test]
    fn jitter_spreads_over_the_whole_range() {
        // Full jitter: over many draws the delays cover [0, ceiling] roughly uniformly.
        let mut backoff = Backoff::new(Some(policy()), 42);
        let draws: Vec<f64> = (0..2000)
            .map(|_| {
                backoff.attempt = 0;
                backoff.next_attempt().unwrap().1.as_secs_f64() / 0.1
            })
            .collect();
        let low = draws.iter().filter(|d| **d < 0.25).count();
        let high = draws.iter().filter(|d| **d > 0.75).count();
        assert!((350..650).contains(&low), "{low} of 2000 below a quarter");
        assert!(
            (350..650).contains(&high),
            "{high} of 2000 above three quarters"
        );
        let mean = draws.iter().sum::<f64>() / draws.len() as f64;
        assert!((0.45..0.55).contains(&mean), "mean {mean}");
    }

    #[test]
    fn only_a_stable_connection_resets_the_schedule() {
        let mut backoff = Backoff::new(Some(policy()), 1);
        backoff.next_attempt();
        backoff.next_attempt();
        backoff.connection_ended(Duration::from_secs(1));
        assert_eq!(
            backoff.next_attempt().unwrap().0,
            3,
            "short uptime: no reset"
        );
        backoff.connection_ended(Duration::from_secs(5));
        assert_eq!(
            backoff.next_attempt().unwrap().0,
            1,
            "stayed up min_uptime: reset"
        );
    }

    #[test]
    fn max_retries_gives_up() {
        let mut backoff = Backoff::new(
            Some(Reconnect {
                max_retries: Some(3),
                ..policy()
            }),
            7,
        );
        assert_eq!(
            (0..5).filter_map(|_| backoff.next_attempt()).count(),
            3,
            "three retries, then none"
        );
        assert!(
            Backoff::new(None, 0).next_attempt().is_none(),
            "off means off"
        );
    }

    #[test]
    fn default_predicate_stops_on_policy_and_auth_failures() {
        let backoff = Backoff::new(Some(policy()), 0);
        let closed = |code| CloseEvent::new(code, "", true);
        assert!(!backoff.should_retry(&Disconnect::Closed(&closed(1008))));
        assert!(backoff.should_retry(&Disconnect::Closed(&closed(1001))));
        assert!(backoff.should_retry(&Disconnect::Closed(&CloseEvent::abnormal())));
        let rejected = |status| Error::HandshakeRejected {
            url: String::new(),
            status,
        };
        assert!(!backoff.should_retry(&Disconnect::Error(&rejected(401))));
        assert!(!backoff.should_retry(&Disconnect::Error(&rejected(403))));
        assert!(backoff.should_retry(&Disconnect::Error(&rejected(503))));
        let refused = Error::ConnectionRefused { url: String::new() };
        assert!(backoff.should_retry(&Disconnect::Error(&refused)));
        assert!(!Backoff::new(None, 0).should_retry(&Disconnect::Error(&refused)));
    }
}
