//! The accept loop: one task per TCP connection, serving HTTP/1.1 through hyper with a
//! header-read timeout and WebSocket upgrades, counted in [`ServerStats`], and drained at
//! shutdown.
//!
//! This replaces `axum::serve`, which has no header-read timeout (hyper applies one only when
//! it is given a timer, and `axum::serve` gives none): a client that opens a connection and
//! then sends its request slowly, byte by byte, or not at all ("slow loris"), would hold a
//! task, a socket and a file descriptor for as long as it likes.

use std::io;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::sync::watch;

use super::limits::ConnectionLimiter;
use super::shutdown::{Phase, PhaseWatch};

/// After an accept error that is not about one connection (e.g. out of file descriptors), how
/// long to wait before accepting again, instead of spinning.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);

/// Live counts of a running server: how many connections, and so how many tasks, it holds.
///
/// Get one with [`Server::stats`](super::Server::stats) before calling
/// [`Server::run`](super::Server::run); it stays valid (and cheap to clone and read from any
/// thread) while the server runs and after. Every open connection is exactly one task, so
/// when both counts are back to zero, no connection task is left over.
///
/// ```no_run
/// use unisock::server::{Server, ServerConfig};
///
/// # async fn run() -> std::io::Result<()> {
/// let server = Server::bind(ServerConfig::default()).await?;
/// let stats = server.stats();
/// tokio::spawn(server.run(std::future::pending()));
/// println!("{} HTTP, {} WebSocket", stats.http_connections(), stats.websocket_connections());
/// # Ok(())
/// # }
/// ```
#[derive(Clone, Debug)]
pub struct ServerStats {
    http: Arc<AtomicUsize>,
    websockets: ConnectionLimiter,
}

impl ServerStats {
    pub(crate) fn new(websockets: ConnectionLimiter) -> Self {
        ServerStats {
            http: Arc::default(),
            websockets,
        }
    }

    /// TCP connections speaking HTTP: waiting for or reading a request (at most
    /// [`ServerConfig::header_read_timeout`](super::ServerConfig::header_read_timeout) per
    /// request), answering it, or idle between two requests. A connection upgraded to
    /// WebSocket leaves this count for [`websocket_connections`](Self::websocket_connections).
    pub fn http_connections(&self) -> usize {
        self.http.load(Ordering::Acquire)
    }

    /// WebSocket connections open, echo and rooms together: the number that
    /// [`ServerConfig::max_connections`](super::ServerConfig::max_connections) limits. A
    /// connection counts from the moment its upgrade is accepted until its task has ended.
    pub fn websocket_connections(&self) -> usize {
        self.websockets.open()
    }

    /// Connection tasks alive: [`http_connections`](Self::http_connections) plus
    /// [`websocket_connections`](Self::websocket_connections).
    pub fn connection_tasks(&self) -> usize {
        self.http_connections() + self.websocket_connections()
    }

    /// Counts an HTTP connection until the guard is dropped.
    fn http_guard(&self) -> HttpGuard {
        self.http.fetch_add(1, Ordering::AcqRel);
        HttpGuard(Arc::clone(&self.http))
    }
}

/// One HTTP connection in [`ServerStats::http_connections`].
struct HttpGuard(Arc<AtomicUsize>);

impl Drop for HttpGuard {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Accepts connections on `listener` and serves `router` on each, until the server reaches
/// [`Phase::Closing`]; then stops accepting, asks every HTTP connection to finish its request
/// in progress and close, and returns once every HTTP connection task has ended. (Upgraded
/// WebSocket connections follow the phase by themselves; see `connection`.)
pub(crate) async fn serve(
    listener: TcpListener,
    router: Router,
    header_read_timeout: Duration,
    stats: ServerStats,
    mut phase: PhaseWatch,
) {
    // Each connection task holds a receiver; `closed()` resolves when the last one is gone.
    let (done_tx, done_rx) = watch::channel(());
    loop {
        let tcp = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((tcp, _remote)) => tcp,
                Err(error) if is_connection_error(&error) => continue,
                Err(error) => {
                    tracing::warn!(%error, "accept failed; retrying shortly");
                    tokio::time::sleep(ACCEPT_BACKOFF).await;
                    continue;
                }
            },
            () = phase.reached(Phase::Closing) => break,
        };
        // Small messages (chat, pings) should not wait for Nagle's algorithm.
        if let Err(error) = tcp.set_nodelay(true) {
            tracing::debug!(%error, "cannot set TCP_NODELAY");
        }
        let guard = stats.http_guard();
        let service = TowerToHyperService::new(router.clone());
        let mut phase = phase.clone();
        let done = done_rx.clone();
        tokio::spawn(async move {
            let _counted = guard;
            let _done = done;
            let mut builder = http1::Builder::new();
            builder
                .timer(TokioTimer::new())
                .header_read_timeout(header_read_timeout);
            let connection = builder
                .serve_connection(TokioIo::new(tcp), service)
                .with_upgrades();
            let mut connection = std::pin::pin!(connection);
            tokio::select! {
                result = connection.as_mut() => {
                    if let Err(error) = result {
                        // Header timeouts, resets and malformed requests: the client's doing.
                        tracing::debug!(%error, "HTTP connection ended with an error");
                    }
                    return;
                }
                () = phase.reached(Phase::Closing) => {}
            }
            // Shutting down: finish the request in progress (if any), then close.
            connection.as_mut().graceful_shutdown();
            if let Err(error) = connection.await {
                tracing::debug!(%error, "HTTP connection ended with an error");
            }
        });
    }
    drop(listener);
    drop(done_rx);
    done_tx.closed().await;
}

/// Errors of `accept` that concern one connection only (it went away before we took it).
fn is_connection_error(error: &io::Error) -> bool {
    matches!(
        error.kind(),
        io::ErrorKind::ConnectionRefused
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionReset
    )
}
