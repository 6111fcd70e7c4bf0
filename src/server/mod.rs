//! `unisock serve`: a small native WebSocket server for the demo page, tests and local
//! development (feature `server`, not on wasm32).
//!
//! | route | what |
//! |---|---|
//! | `GET /echo` | WebSocket: every text and binary message comes back as is |
//! | `GET /rooms/{room}` | WebSocket: every message goes to everyone in the room; the sender gets its own only with `?notify_self=true` |
//! | `GET /metrics` | the server's [`Metrics`] in the Prometheus text format |
//! | `POST /drop?client_id=ID` | cuts the connections opened with `?client_id=ID` off without a close frame (a simulated network failure): 204, or 404 if there is none |
//! | `GET /pkg/…` | the wasm-pack output ([`ServerConfig::pkg_dir`]) |
//! | `GET /…` | the demo page and other files of [`ServerConfig::root`] |
//!
//! Both WebSocket routes also run acknowledged sessions for clients that offer the
//! `unisock.v1` subprotocol (exactly-once delivery across reconnects, specified in
//! docs/session-protocol.md): a session and, for a room, its membership outlive the
//! connection for [`ServerConfig::session_grace`], so broadcasts sent while a client is away
//! are delivered when it resumes (`sessions` module).
//!
//! Room names and client ids are 1-64 characters of `[A-Za-z0-9_.-]` (otherwise HTTP 400).
//! Clients offering the `chat` or `unisock.test` subprotocol get the first of those they
//! offer ([`SUBPROTOCOLS`]).
//!
//! Safe defaults (see [`ServerConfig`]): loopback only; messages up to 16 MiB (a client
//! sending more is closed with 1009, the others stay up); at most 10 000 WebSocket
//! connections (then HTTP 503); 4 KiB read and write buffers per connection, so 10 000 idle
//! connections need tens of MiB, not GiB; 10 s to send a request's headers (then the
//! connection is cut: no slow-loris clients); an optional `Origin` allow-list (HTTP 403); a
//! listen backlog of 1024. Logs (via `tracing`) show request paths, never query strings
//! (which may carry tokens) nor header values.
//!
//! # Example
//!
//! ```no_run
//! use unisock::server::{Server, ServerConfig};
//!
//! #[tokio::main]
//! async fn main() -> std::io::Result<()> {
//!     let server = Server::bind(ServerConfig::default()).await?;
//!     println!("listening on http://{}/", server.local_addr());
//!     // Ctrl-C or SIGTERM: every client gets close code 1001, then `run` returns.
//!     server.run(unisock::server::shutdown_signal()).await
//! }
//! ```
//!
//! # Why axum plus tokio-tungstenite, and not axum's `ws` feature
//!
//! axum 0.8 does the HTTP side: routing, path parameters, status codes, and (with
//! tower-http's `ServeDir`) static files with ranges, MIME types and conditional requests.
//! Connections are accepted and served by our own loop on hyper's HTTP/1.1 (`accept`
//! module), not `axum::serve`, which has no header-read timeout. The WebSocket side does not use axum's `ws` extractor but
//! tokio-tungstenite directly, on the connection hyper hands over after our own
//! [RFC 6455](https://www.rfc-editor.org/rfc/rfc6455#section-4.2) handshake
//! (`upgrade` module, ~100 lines), for two concrete reasons:
//!
//! - **Close code 1009 needs the typed error.** axum's `ws` wraps tungstenite's errors in an
//!   opaque `axum::Error`; telling "message too big" (close with 1009) from invalid UTF-8
//!   (1007) or a protocol error (1002) would mean downcasting to the exact tungstenite
//!   version axum was built with, which breaks silently when axum upgrades it.
//! - **One tungstenite, not two.** axum 0.8.9's `ws` depends on tokio-tungstenite 0.29; the
//!   client side of this crate uses 0.30. Using 0.30 here too means one WebSocket
//!   implementation (one set of bugs, one protocol behaviour for both ends) and less to
//!   compile.
//!
//! Both ends being tungstenite also gives direct access to every `WebSocketConfig` knob
//! (read/write buffer sizes, frame and message limits).
//!
//! Modules, one job each: `config` (settings), `listener` (socket with backlog, fd limit),
//! `accept` (one task per connection, HTTP/1.1 with a header-read timeout, [`ServerStats`]),
//! `routes` (HTTP surface), `upgrade` (handshake), `connection` (one socket's life),
//! `rooms` (broadcast registry), `clients` (`client_id` and `/drop`), `limits` (connection
//! count), `origin` (allow-list), `params` (name and query validation), `static_files`,
//! `shutdown` (signals and phases), `runner` ([`Server`]), `metrics` ([`Metrics`], `/metrics`),
//! `backplane` (rooms across servers on Redis, [`ServerConfig::redis`]).
//!
//! # Rooms across servers
//!
//! With [`ServerConfig::redis`] set (`unisock serve --redis redis://HOST:PORT`), every server
//! on the same Redis shares its rooms: a room message is delivered at once to the members on
//! the sender's server and published to Redis, and each other server delivers it to its own
//! members; each client gets each message once, and `notify_self` keeps its meaning. Redis
//! being down never stops a server (its local rooms go on), and what could not be published
//! is counted in [`Metrics`]. See [`RedisConfig`].

mod accept;
mod backplane;
mod batch;
mod clients;
mod config;
mod connection;
#[doc(hidden)]
pub mod fuzzing;
mod history;
mod limits;
mod listener;
mod liveness;
mod metrics;
mod origin;
mod params;
mod rooms;
mod routes;
mod runner;
mod sessions;
mod shutdown;
mod static_files;
mod upgrade;

pub use accept::ServerStats;
pub use backplane::RedisConfig;
pub use config::{ServerConfig, DEFAULT_PORT};
pub use listener::raise_fd_limit;
pub use metrics::{Counter, Gauge, Metrics, CONTENT_TYPE as METRICS_CONTENT_TYPE};
pub use runner::{serve, Server};
pub use shutdown::shutdown_signal;
pub use upgrade::SUBPROTOCOLS;
