//! [`ServerConfig`]: every knob of `unisock serve`, with safe defaults.

use std::io;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use tokio::sync::Semaphore;

/// The port `unisock serve` listens on when none is given.
pub const DEFAULT_PORT: u16 = 9001;

/// Configuration of the server: where it listens, what it serves and the limits it enforces.
///
/// Every field has a default chosen to be safe on a developer machine (see [`Default`]):
/// loopback only, bounded message size, bounded number of connections, small per-connection
/// buffers. Build one with struct-update syntax:
///
/// ```
/// use unisock::server::ServerConfig;
///
/// let config = ServerConfig {
///     addr: "127.0.0.1:0".parse().unwrap(), // any free port
///     max_connections: 100,
///     ..ServerConfig::default()
/// };
/// assert_eq!(config.max_message_size, 16 << 20);
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServerConfig {
    /// Address and port to listen on. Default `127.0.0.1:9001`: only this machine can connect.
    /// Use `0.0.0.0` (or `::`) to accept connections from the network; port `0` picks a free
    /// port (see [`Server::local_addr`](super::Server::local_addr)).
    pub addr: SocketAddr,
    /// Directory served at `/` (the demo page). Default `www`. `index.html` is served for
    /// directory paths. A missing directory is not an error: its paths answer 404.
    pub root: PathBuf,
    /// Directory served at `/pkg/` (the wasm-pack output the demo page imports). `None`
    /// (the default) means the `pkg` directory next to [`root`](Self::root), so that
    /// `www/index.html` can import `../pkg/unisock.js`; see [`ServerConfig::pkg_dir`].
    pub pkg: Option<PathBuf>,
    /// Most WebSocket connections open at once (echo and rooms together). Default 10 000.
    /// An upgrade request beyond it is answered with HTTP 503. Each idle connection costs a
    /// few KiB of memory and one file descriptor.
    pub max_connections: usize,
    /// Largest message (and frame) a client may send, in bytes. Default 16 MiB. A client that
    /// sends more is closed with code 1009 ("message too big"); other clients are unaffected.
    pub max_message_size: usize,
    /// Origins allowed to open WebSockets or call `POST /drop`, such as
    /// `https://example.com` or `http://localhost:8080`. Empty (the default) allows any.
    ///
    /// When not empty, a request whose `Origin` header is not in the list gets HTTP 403.
    /// Requests without an `Origin` header (non-browser clients, which could send any
    /// `Origin` they like anyway) are allowed: the check protects browser users against
    /// cross-site WebSocket hijacking, which always carries an `Origin`.
    pub allowed_origins: Vec<String>,
    /// How long a client may take to send the headers of a request, from the moment its
    /// connection is accepted (or its previous request answered, on a kept-alive connection).
    /// Default 10 s. A client that has not sent a complete request head by then is
    /// disconnected: without this bound, clients that open connections and then send nothing,
    /// or send their request a byte at a time ("slow loris"), would hold a task and a file
    /// descriptor each for as long as they like. An idle kept-alive HTTP connection is closed
    /// after this time too; WebSocket connections are not affected once upgraded.
    pub header_read_timeout: Duration,
    /// How often a WebSocket connection checks that its client is still there. Default 30 s.
    /// A client silent for an interval gets a ping (answered by every browser and library);
    /// one that stays silent through the next interval too is disconnected. A client whose
    /// machine or network died never closes its TCP connection, so without this check its
    /// connection, task and room membership would be held forever. `None`: never check.
    pub ping_interval: Option<Duration>,
    /// How long a graceful shutdown waits for clients to answer the 1001 close frame
    /// before the remaining connections are dropped. Default 3 s.
    pub shutdown_timeout: Duration,
    /// Length of the kernel's queue of not yet accepted connections. Default 1024: tokio's own
    /// default of 128 overflows under bursts of connects, which then stall for a second
    /// (SYN retransmit).
    pub backlog: u32,
    /// Initial size of each connection's read buffer, in bytes. Default 4 KiB, which keeps
    /// an idle connection at a few KiB (tungstenite's default of 128 KiB would cost ~135 KiB
    /// per connection). It grows as needed for a large message.
    pub read_buffer_size: usize,
    /// Size of each connection's write buffer, in bytes, before it is written out. Default
    /// 4 KiB. Every message is flushed right away anyway; this only batches tiny frames.
    pub write_buffer_size: usize,
    /// Whether clients may run acknowledged sessions (the `unisock.v1` subprotocol, see
    /// docs/session-protocol.md) on `/echo` and `/rooms/{room}`. Default `true`. Off, the
    /// subprotocol is never selected and such clients get plain WebSocket.
    pub sessions: bool,
    /// How long a session is kept after its connection drops, waiting for the client to
    /// resume it. Default 30 s. Later, the client's resume gets "expired" and a gap.
    pub session_grace: Duration,
    /// Most messages a session keeps unacknowledged for its client (while it is away, e.g.
    /// room broadcasts). Default 1024. Beyond it the oldest are dropped, and the client is
    /// told of the gap when it resumes.
    pub session_buffer_messages: usize,
    /// Most bytes a session keeps unacknowledged (one message of any size always fits).
    /// Default 4 MiB.
    pub session_buffer_bytes: usize,
    /// Most sessions held at once, connected or within their grace period. Default 10 000.
    /// Beyond it, the session disconnected the longest is dropped.
    pub max_sessions: usize,
    /// A Redis backplane, so that rooms span every server configured with the same Redis:
    /// each room message is also published to Redis, and every server delivers it to its own
    /// members of the room (`unisock serve --redis URL`). `None` (the default): rooms are
    /// local to this server, and no Redis code runs. Redis being down never stops the
    /// server: its local rooms keep working, and cross-server delivery resumes when Redis is
    /// back (see [`RedisConfig`](super::RedisConfig) and the counters of
    /// [`Metrics`](super::Metrics)). Acknowledged sessions in rooms then also live in Redis
    /// and can resume on another server (docs/session-protocol.md §8).
    pub redis: Option<super::RedisConfig>,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            addr: SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), DEFAULT_PORT),
            root: PathBuf::from("www"),
            pkg: None,
            max_connections: 10_000,
            max_message_size: 16 << 20,
            allowed_origins: Vec::new(),
            header_read_timeout: Duration::from_secs(10),
            ping_interval: Some(Duration::from_secs(30)),
            shutdown_timeout: Duration::from_secs(3),
            backlog: 1024,
            read_buffer_size: 4 << 10,
            write_buffer_size: 4 << 10,
            sessions: true,
            session_grace: Duration::from_secs(30),
            session_buffer_messages: 1024,
            session_buffer_bytes: 4 << 20,
            max_sessions: 10_000,
            redis: None,
        }
    }
}

impl ServerConfig {
    /// The directory served at `/pkg/`: [`pkg`](Self::pkg) if set, otherwise `pkg` next to
    /// [`root`](Self::root) (`www` gives `pkg`, `/srv/demo/www` gives `/srv/demo/pkg`).
    ///
    /// ```
    /// use std::path::Path;
    /// use unisock::server::ServerConfig;
    ///
    /// let config = ServerConfig { root: "/srv/demo/www".into(), ..ServerConfig::default() };
    /// assert_eq!(config.pkg_dir(), Path::new("/srv/demo/pkg"));
    /// ```
    pub fn pkg_dir(&self) -> PathBuf {
        if let Some(pkg) = &self.pkg {
            return pkg.clone();
        }
        match self.root.parent() {
            Some(parent) if !parent.as_os_str().is_empty() => parent.join("pkg"),
            _ => PathBuf::from("pkg"),
        }
    }

    /// Checks that the limits make sense; [`Server::bind`](super::Server::bind) calls it.
    ///
    /// # Errors
    ///
    /// An [`io::ErrorKind::InvalidInput`] error naming the offending field.
    pub fn validate(&self) -> io::Result<()> {
        let invalid =
            |what: &str| Err(io::Error::new(io::ErrorKind::InvalidInput, what.to_owned()));
        if self.max_connections == 0 {
            return invalid("max_connections must be at least 1");
        }
        // The connection limiter is a semaphore, waited on for all permits at once (a u32).
        if self.max_connections > Semaphore::MAX_PERMITS.min(u32::MAX as usize) {
            return invalid("max_connections is too large");
        }
        if self.max_message_size == 0 {
            return invalid("max_message_size must be at least 1 byte");
        }
        if self.header_read_timeout.is_zero() {
            return invalid("header_read_timeout must be longer than zero");
        }
        if self
            .ping_interval
            .is_some_and(|interval| interval.is_zero())
        {
            return invalid("ping_interval must be longer than zero (None turns the check off)");
        }
        if self.backlog == 0 {
            return invalid("backlog must be at least 1");
        }
        if self.session_buffer_messages == 0 || self.max_sessions == 0 {
            return invalid("session_buffer_messages and max_sessions must be at least 1");
        }
        if self.read_buffer_size == 0 {
            return invalid("read_buffer_size must be at least 1 byte");
        }
        if let Some(bad) = self
            .allowed_origins
            .iter()
            .find(|origin| !super::origin::is_well_formed(origin))
        {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("allowed origin {bad:?} is not of the form scheme://host[:port]"),
            ));
        }
        if let Some(redis) = &self.redis {
            redis.validate()?;
        }
        Ok(())
    }
}
