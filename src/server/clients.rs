//! Named connections (`?client_id=…`) and `POST /drop?client_id=…`, which cuts them off
//! without a close frame, as a lost network would.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use tokio::sync::oneshot;

/// Connection id → kill switch, grouped by client id.
type Table = HashMap<String, HashMap<u64, oneshot::Sender<()>>>;

/// The named connections. Several connections may share a client id (a reconnect can overlap
/// with the old connection's end); a drop ends all of them.
#[derive(Clone, Debug, Default)]
pub(crate) struct ClientRegistry {
    table: Arc<Mutex<Table>>,
}

/// A connection's entry in the registry; removes itself when dropped.
#[derive(Debug)]
pub(crate) struct Registration {
    registry: ClientRegistry,
    client_id: String,
    conn: u64,
}

/// Fires when the connection has been dropped through `POST /drop`.
#[derive(Debug)]
pub(crate) struct KillSwitch {
    rx: oneshot::Receiver<()>,
}

impl ClientRegistry {
    fn lock(&self) -> std::sync::MutexGuard<'_, Table> {
        // The table stays consistent even if a holder panicked (single inserts/removes).
        self.table.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Names connection `conn` `client_id`.
    pub(crate) fn register(&self, client_id: &str, conn: u64) -> (Registration, KillSwitch) {
        let (tx, rx) = oneshot::channel();
        self.lock()
            .entry(client_id.to_owned())
            .or_default()
            .insert(conn, tx);
        let registration = Registration {
            registry: self.clone(),
            client_id: client_id.to_owned(),
            conn,
        };
        (registration, KillSwitch { rx })
    }

    /// Fires the kill switch of every connection named `client_id`; returns how many there
    /// were.
    pub(crate) fn kill(&self, client_id: &str) -> usize {
        let switches = self.lock().remove(client_id).unwrap_or_default();
        switches
            .into_values()
            // A connection that is ending by itself may have dropped its receiver: not counted.
            .filter_map(|tx| tx.send(()).ok())
            .count()
    }
}

impl Drop for Registration {
    fn drop(&mut self) {
        let mut table = self.registry.lock();
        if let Some(conns) = table.get_mut(&self.client_id) {
            conns.remove(&self.conn);
            if conns.is_empty() {
                table.remove(&self.client_id);
            }
        }
    }
}

impl KillSwitch {
    /// Resolves when the connection is to be dropped; never if it is not.
    pub(crate) async fn fired(&mut self) {
        if (&mut self.rx).await.is_err() {
            // The registry entry is gone without a kill: wait forever.
            std::future::pending::<()>().await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test]
    async fn kill_fires_every_connection_with_the_id() {
        let registry = ClientRegistry::default();
        let (_a, mut kill_a) = registry.register("tab", 1);
        let (_b, mut kill_b) = registry.register("tab", 2);
        let (_c, _kill_c) = registry.register("other", 3);
        assert_eq!(registry.kill("tab"), 2);
        for kill in [&mut kill_a, &mut kill_b] {
            tokio::time::timeout(Duration::from_secs(5), kill.fired())
                .await
                .expect("fired");
        }
        assert_eq!(registry.kill("tab"), 0, "already gone");
        assert_eq!(registry.kill("nobody"), 0);
    }

    #[tokio::test]
    async fn registration_drop_unregisters() {
        let registry = ClientRegistry::default();
        let (registration, kill) = registry.register("tab", 1);
        drop(registration);
        drop(kill);
        assert!(registry.lock().is_empty());
        assert_eq!(registry.kill("tab"), 0);
    }
}
