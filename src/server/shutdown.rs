//! Graceful shutdown: the OS signals that start it and the phases every connection follows.

use std::future::Future;

use tokio::sync::watch;

/// Where the server is in its life; every connection task watches it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Phase {
    /// Serving normally.
    Running,
    /// Shutting down: each connection sends close 1001 and waits for the client's answer.
    Closing,
    /// The shutdown timeout is over: connections still open are dropped at once.
    Abort,
}

/// The sending side of the [`Phase`]; owned by the running server.
#[derive(Debug)]
pub(crate) struct PhaseController {
    tx: watch::Sender<Phase>,
}

/// A connection's view of the [`Phase`].
#[derive(Clone, Debug)]
pub(crate) struct PhaseWatch {
    rx: watch::Receiver<Phase>,
}

impl PhaseController {
    /// Starts in [`Phase::Running`].
    pub(crate) fn new() -> Self {
        PhaseController {
            tx: watch::Sender::new(Phase::Running),
        }
    }

    /// A watcher for a connection task or the HTTP server.
    pub(crate) fn watch(&self) -> PhaseWatch {
        PhaseWatch {
            rx: self.tx.subscribe(),
        }
    }

    /// Moves to `phase` (phases only move forward).
    pub(crate) fn set(&self, phase: Phase) {
        self.tx.send_if_modified(|current| {
            let advance = phase > *current;
            if advance {
                *current = phase;
            }
            advance
        });
    }
}

impl PhaseWatch {
    /// The phase now.
    pub(crate) fn current(&self) -> Phase {
        *self.rx.borrow()
    }

    /// Resolves once the server has reached `phase` (at once if it already has).
    pub(crate) async fn reached(&mut self, phase: Phase) {
        // The controller lives as long as the server runs; if it is gone, the server is gone
        // too, which counts as every phase reached.
        let _ = self.rx.wait_for(|current| *current >= phase).await;
    }
}

/// A future that resolves when the process receives Ctrl-C (SIGINT) or, on Unix, SIGTERM:
/// the usual `shutdown` future for [`Server::run`](super::Server::run).
///
/// On Unix the signal handlers are installed when this function is called, not when the
/// future is first polled: call it before announcing that the server is up, so that a
/// signal sent right after the announcement is never missed. Must be called inside a tokio
/// runtime. A handler that cannot be installed is logged and not waited for; the other
/// still works.
pub fn shutdown_signal() -> impl Future<Output = ()> + Send + 'static {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, Signal, SignalKind};

        fn install(kind: SignalKind, name: &'static str) -> Option<Signal> {
            signal(kind)
                .inspect_err(|error| tracing::warn!(%error, "cannot listen for {name}"))
                .ok()
        }
        async fn received(signal: Option<Signal>) {
            match signal {
                Some(mut signal) => {
                    signal.recv().await;
                }
                None => std::future::pending().await,
            }
        }

        let interrupt = install(SignalKind::interrupt(), "SIGINT");
        let terminate = install(SignalKind::terminate(), "SIGTERM");
        async move {
            tokio::select! {
                () = received(interrupt) => tracing::info!("received SIGINT (Ctrl-C)"),
                () = received(terminate) => tracing::info!("received SIGTERM"),
            }
        }
    }
    #[cfg(not(unix))]
    {
        async {
            match tokio::signal::ctrl_c().await {
                Ok(()) => tracing::info!("received Ctrl-C"),
                Err(error) => {
                    tracing::warn!(%error, "cannot listen for Ctrl-C");
                    std::future::pending::<()>().await;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn phases_only_advance() {
        let controller = PhaseController::new();
        let mut watch = controller.watch();
        controller.set(Phase::Abort);
        controller.set(Phase::Closing);
        watch.reached(Phase::Abort).await;
        assert_eq!(watch.current(), Phase::Abort);
    }
}
