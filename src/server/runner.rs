//! [`Server`]: bind, serve, shut down gracefully.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::time::Duration;

use axum::Router;
use tokio::net::TcpListener;

use super::accept::{self, ServerStats};
use super::config::ServerConfig;
use super::limits::ConnectionLimiter;
use super::listener;
use super::metrics::Metrics;
use super::routes::{self, AppState};
use super::shutdown::{Phase, PhaseController};

/// After the shutdown timeout, how long to wait for connection tasks to drop their sockets.
const ABORT_WAIT: Duration = Duration::from_millis(500);

/// A bound server, not serving yet: [`Server::bind`], read [`Server::local_addr`] (useful with
/// port 0), then [`Server::run`].
///
/// ```no_run
/// use unisock::server::{Server, ServerConfig};
///
/// # async fn run() -> std::io::Result<()> {
/// let config = ServerConfig { addr: "127.0.0.1:0".parse().unwrap(), ..ServerConfig::default() };
/// let server = Server::bind(config).await?;
/// println!("echo at ws://{}/echo", server.local_addr());
/// server.run(unisock::server::shutdown_signal()).await
/// # }
/// ```
#[derive(Debug)]
pub struct Server {
    listener: TcpListener,
    local_addr: SocketAddr,
    router: Router,
    phase: PhaseController,
    limiter: ConnectionLimiter,
    stats: ServerStats,
    metrics: Metrics,
    shutdown_timeout: Duration,
    header_read_timeout: Duration,
}

impl Server {
    /// Validates `config` and binds its address (with a backlog of `config.backlog`).
    ///
    /// Must be called inside a tokio runtime.
    ///
    /// # Errors
    ///
    /// An invalid configuration ([`io::ErrorKind::InvalidInput`]), or the error of binding
    /// the address (for example [`io::ErrorKind::AddrInUse`]).
    pub async fn bind(config: ServerConfig) -> io::Result<Server> {
        config.validate()?;
        let listener = listener::bind(config.addr, config.backlog).map_err(|error| {
            io::Error::new(
                error.kind(),
                format!("cannot listen on {}: {error}", config.addr),
            )
        })?;
        let local_addr = listener.local_addr()?;
        let pkg = config.pkg_dir();
        for dir in [&config.root, &pkg] {
            if !dir.is_dir() {
                tracing::warn!(dir = %dir.display(), "static directory not found: its files will answer 404");
            }
        }
        let phase = PhaseController::new();
        let limiter = ConnectionLimiter::new(config.max_connections);
        let metrics = Metrics::new();
        let state = AppState::new(&config, limiter.clone(), phase.watch(), &metrics);
        let router = routes::router(state, &config);
        let stats = ServerStats::new(limiter.clone());
        tracing::info!(
            addr = %local_addr,
            root = %config.root.display(),
            pkg = %pkg.display(),
            max_connections = config.max_connections,
            max_message_size = config.max_message_size,
            "server bound"
        );
        Ok(Server {
            listener,
            local_addr,
            router,
            phase,
            limiter,
            stats,
            metrics,
            shutdown_timeout: config.shutdown_timeout,
            header_read_timeout: config.header_read_timeout,
        })
    }

    /// The address the server listens on, with the real port when the configured port was 0.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Live connection counts, for monitoring and for tests that check that no connection
    /// task is left behind. Take it before [`run`](Self::run), which consumes the server.
    pub fn stats(&self) -> ServerStats {
        self.stats.clone()
    }

    /// The server's metrics, the ones served at `GET /metrics` (listed in [`Metrics`]). Add
    /// values of your own to it and they are served there too. Take it before
    /// [`run`](Self::run), which consumes the server; it stays valid after.
    ///
    /// ```no_run
    /// use unisock::server::{Server, ServerConfig};
    ///
    /// # async fn run() -> std::io::Result<()> {
    /// let server = Server::bind(ServerConfig::default()).await?;
    /// let logins = server.metrics().counter("myapp_logins_total", "Users logged in.");
    /// logins.inc();
    /// # Ok(())
    /// # }
    /// ```
    pub fn metrics(&self) -> Metrics {
        self.metrics.clone()
    }

    /// Serves until `shutdown` resolves, then shuts down gracefully: stops accepting, sends
    /// close code 1001 ("server shutting down") to every WebSocket client, waits up to the
    /// configured `shutdown_timeout` for their answers and for HTTP requests in progress,
    /// drops whatever is left, and returns.
    ///
    /// # Errors
    ///
    /// None at present (the `Result` leaves room for failures of the server itself): errors
    /// of single connections, and of `accept` (retried), are logged, not returned.
    pub async fn run<F>(self, shutdown: F) -> io::Result<()>
    where
        F: Future<Output = ()>,
    {
        let Server {
            listener,
            local_addr,
            router,
            phase,
            limiter,
            stats,
            metrics: _,
            shutdown_timeout,
            header_read_timeout,
        } = self;
        let http = accept::serve(listener, router, header_read_timeout, stats, phase.watch());
        let mut http = std::pin::pin!(http);
        let shutdown = std::pin::pin!(shutdown);
        tokio::select! {
            () = &mut http => return Ok(()),
            () = shutdown => {}
        }

        tracing::info!(
            addr = %local_addr,
            open = limiter.open(),
            "shutting down: closing WebSocket connections with 1001"
        );
        phase.set(Phase::Closing);
        let drained = tokio::time::timeout(shutdown_timeout, async {
            tokio::join!(limiter.wait_all_closed(), &mut http);
        })
        .await;
        match drained {
            Ok(()) => {
                tracing::info!("shutdown complete");
                Ok(())
            }
            Err(_elapsed) => {
                tracing::warn!(
                    open = limiter.open(),
                    "shutdown timeout: dropping the remaining connections"
                );
                phase.set(Phase::Abort);
                let _ = tokio::time::timeout(ABORT_WAIT, limiter.wait_all_closed()).await;
                Ok(())
            }
        }
    }
}

/// Binds `config` and serves until `shutdown` resolves: [`Server::bind`] then
/// [`Server::run`].
///
/// ```no_run
/// # async fn run() -> std::io::Result<()> {
/// use unisock::server::{serve, shutdown_signal, ServerConfig};
///
/// serve(ServerConfig::default(), shutdown_signal()).await
/// # }
/// ```
///
/// # Errors
///
/// See [`Server::bind`] and [`Server::run`].
pub async fn serve<F>(config: ServerConfig, shutdown: F) -> io::Result<()>
where
    F: Future<Output = ()>,
{
    Server::bind(config).await?.run(shutdown).await
}
