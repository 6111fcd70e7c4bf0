//! `unisock serve` inside the test's own process, on a free port of 127.0.0.1, stopped
//! gracefully with [`TestServer::shutdown`], the hard way with [`TestServer::kill`], and aborted
//! on drop. Included with `#[path]` by the server-feature tests that need it.

#![allow(dead_code)]

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use unisock::server::{Server, ServerConfig, ServerStats};

/// Upper bound for the graceful shutdown.
const SHUTDOWN_LIMIT: Duration = Duration::from_secs(10);

/// A server running in this process.
pub struct TestServer {
    pub addr: SocketAddr,
    /// Live counters of the server's connections and tasks.
    pub stats: ServerStats,
    stop: Option<oneshot::Sender<()>>,
    pub task: JoinHandle<std::io::Result<()>>,
}

impl TestServer {
    /// Serves `config` in the background, with its address replaced by 127.0.0.1:0.
    pub async fn start(config: ServerConfig) -> Self {
        let config = ServerConfig {
            addr: "127.0.0.1:0".parse().unwrap(),
            ..config
        };
        let server = Server::bind(config).await.expect("bind");
        let addr = server.local_addr();
        assert!(addr.ip().is_loopback() && addr.port() != 0);
        let stats = server.stats();
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(server.run(async move {
            let _ = stopped.await;
        }));
        TestServer {
            addr,
            stats,
            stop: Some(stop),
            task,
        }
    }

    /// `ws://` URL of `path` on this server.
    pub fn url(&self, path: &str) -> String {
        format!("ws://{}{}", self.addr, path)
    }

    /// Waits (bounded by `within`) until the server holds exactly `http` HTTP and `ws`
    /// WebSocket connections.
    pub async fn settles_at(&self, http: usize, ws: usize, within: Duration) {
        let deadline = Instant::now() + within;
        loop {
            let now = (
                self.stats.http_connections(),
                self.stats.websocket_connections(),
            );
            if now == (http, ws) {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "the server still holds {now:?} (HTTP, WebSocket) connections; expected {:?}",
                (http, ws)
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Starts the graceful shutdown and waits (bounded) for `run` to return.
    pub async fn shutdown(mut self) -> std::io::Result<()> {
        let _ = self.stop.take().expect("not stopped yet").send(());
        tokio::time::timeout(SHUTDOWN_LIMIT, &mut self.task)
            .await
            .expect("server stops in time")
            .expect("server task does not panic")
    }

    /// Stops it the hard way (every session is lost, like a crash).
    pub async fn kill(mut self) {
        self.task.abort();
        let _ = (&mut self.task).await;
        self.stop.take();
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}
