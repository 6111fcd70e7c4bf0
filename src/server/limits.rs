//! The connection limit (`--max-connections`), which also tells shutdown when every
//! WebSocket connection has ended.

use std::sync::Arc;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// Counts open WebSocket connections against a maximum.
///
/// One semaphore permit per connection: taken before the upgrade is answered (so a full
/// server answers 503 instead of accepting), held by the connection task, returned when the
/// task ends, whatever the way it ends.
#[derive(Clone, Debug)]
pub(crate) struct ConnectionLimiter {
    permits: Arc<Semaphore>,
    max: u32,
}

/// Proof that a connection slot is taken; the slot is freed when this is dropped.
#[derive(Debug)]
pub(crate) struct ConnectionPermit {
    _permit: OwnedSemaphorePermit,
}

impl ConnectionLimiter {
    /// A limiter for `max` connections (validated by `ServerConfig::validate`).
    pub(crate) fn new(max: usize) -> Self {
        let max = u32::try_from(max).unwrap_or(u32::MAX);
        ConnectionLimiter {
            permits: Arc::new(Semaphore::new(max as usize)),
            max,
        }
    }

    /// Takes a slot, or `None` when `max` connections are open (or shutdown is draining).
    pub(crate) fn try_acquire(&self) -> Option<ConnectionPermit> {
        Arc::clone(&self.permits)
            .try_acquire_owned()
            .ok()
            .map(|permit| ConnectionPermit { _permit: permit })
    }

    /// Number of connections open now.
    pub(crate) fn open(&self) -> usize {
        self.max as usize - self.permits.available_permits()
    }

    /// Waits until every connection has ended. While it waits, freed slots go to it, so no
    /// new connection can start: call it only while shutting down.
    pub(crate) async fn wait_all_closed(&self) {
        // The semaphore is never closed, so this cannot fail; the permits are given back
        // when the guard drops.
        let _all = self.permits.acquire_many(self.max).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn limits_and_drains() {
        let limiter = ConnectionLimiter::new(2);
        let a = limiter.try_acquire().expect("first");
        let b = limiter.try_acquire().expect("second");
        assert!(limiter.try_acquire().is_none(), "third is refused");
        assert_eq!(limiter.open(), 2);
        drop(a);
        assert_eq!(limiter.open(), 1);
        let waiter = tokio::spawn({
            let limiter = limiter.clone();
            async move { limiter.wait_all_closed().await }
        });
        tokio::task::yield_now().await;
        assert!(!waiter.is_finished());
        drop(b);
        tokio::time::timeout(std::time::Duration::from_secs(5), waiter)
            .await
            .expect("drained in time")
            .expect("no panic");
    }
}
