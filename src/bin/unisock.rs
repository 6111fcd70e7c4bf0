//! The `unisock` command line.
//!
//! ```text
//! unisock serve [--port 9001] [--bind 127.0.0.1] [--root www] [--pkg pkg]
//!               [--max-connections N] [--max-message-size BYTES] [--allowed-origin O]...
//!               [--no-sessions] [--session-grace SECONDS]
//!               [--redis redis://HOST:PORT [--redis-history MESSAGES]]
//! unisock connect ws://HOST/PATH [--header NAME:VALUE]... [--protocol P]... [--reconnect]
//!               [--binary] [--binary-format hex|base64] [--json] [--connect-timeout S] [--ca PEM]
//! ```
//!
//! `serve` logs to stderr (`RUST_LOG` filters them, default `info`); stdout gets exactly one
//! line once the server listens, naming the URL to open. `connect` prints received messages
//! to stdout and connection events to stderr (see `connect.rs`).

mod connect;

use std::io::{IsTerminal, Write};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};
use tracing_subscriber::EnvFilter;
use unisock::server::{self, RedisConfig, Server, ServerConfig, DEFAULT_PORT};

/// One WebSocket API for native code and the browser: command-line tools.
#[derive(Debug, Parser)]
#[command(name = "unisock", version, about, propagate_version = true)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Serve the demo page, an echo endpoint and broadcast rooms (WebSocket) over HTTP.
    ///
    /// Routes: GET /echo (WebSocket echo), GET /rooms/{room}[?notify_self=true]
    /// (WebSocket broadcast), POST /drop?client_id=ID (drop connections opened with
    /// ?client_id=ID without a close frame), GET /metrics (Prometheus), /pkg/ (wasm-pack
    /// output), / (demo page). With --redis, rooms span every server on the same Redis.
    /// Stops gracefully on Ctrl-C or SIGTERM, sending close code 1001 to every client.
    Serve(ServeArgs),
    /// Connect to a WebSocket server: send stdin lines, print what arrives (like wscat).
    ///
    /// Received messages go to stdout (binary as hex or base64), connection events (open,
    /// reconnecting, errors, close with code and reason) to stderr. When stdin ends the
    /// connection is closed with 1000 once the lines are sent. Exit code: 0 closed normally
    /// (1000/1001), 1 could not connect, 2 bad arguments, 3 closed otherwise or dropped,
    /// 130 interrupted.
    Connect(connect::ConnectArgs),
}

#[derive(Debug, Args)]
struct ServeArgs {
    /// Port to listen on (0 picks a free one).
    #[arg(long, default_value_t = DEFAULT_PORT)]
    port: u16,
    /// Address to listen on; 0.0.0.0 or :: accepts connections from other machines.
    #[arg(long, value_name = "ADDR", default_value_t = IpAddr::V4(Ipv4Addr::LOCALHOST))]
    bind: IpAddr,
    /// Directory served at / (the demo page).
    #[arg(long, value_name = "DIR", default_value = "www")]
    root: PathBuf,
    /// Directory served at /pkg/ (wasm-pack output) [default: pkg next to --root].
    #[arg(long, value_name = "DIR")]
    pkg: Option<PathBuf>,
    /// Most WebSocket connections at once; more get HTTP 503.
    #[arg(long, value_name = "N", default_value_t = ServerConfig::default().max_connections)]
    max_connections: usize,
    /// Largest message a client may send, in bytes; a larger one closes it with 1009.
    #[arg(long, value_name = "BYTES", default_value_t = ServerConfig::default().max_message_size)]
    max_message_size: usize,
    /// Origin allowed to connect from a browser, e.g. http://localhost:8080 (repeatable).
    /// When given, other origins get HTTP 403. Default: any origin.
    #[arg(long = "allowed-origin", value_name = "ORIGIN")]
    allowed_origins: Vec<String>,
    /// Never select the `unisock.v1` subprotocol: clients asking for acknowledged sessions
    /// get plain WebSocket.
    #[arg(long)]
    no_sessions: bool,
    /// How long an acknowledged session waits for its client to come back after its
    /// connection drops, in seconds (broadcasts to it are kept meanwhile).
    #[arg(long, value_name = "SECONDS", value_parser = seconds, default_value_t = ServerConfig::default().session_grace.as_secs_f64())]
    session_grace: f64,
    /// Seconds between checks that a WebSocket client is still there: a silent client gets a
    /// ping, and is disconnected if it stays silent through the next interval. 0: no checks.
    #[arg(long, value_name = "SECONDS", value_parser = seconds, default_value_t = 30.0)]
    ping_interval: f64,
    /// Redis backplane, e.g. redis://127.0.0.1:6379 (redis://:PASSWORD@HOST:PORT/DB): rooms
    /// span every server started with the same Redis. Without it, rooms are local. The
    /// password is never logged.
    #[arg(long, value_name = "URL")]
    redis: Option<String>,
    /// With --redis: about how many messages of each room Redis keeps, so that acknowledged
    /// sessions can resume on another server (a session away for longer resumes with a gap).
    #[arg(long, value_name = "MESSAGES", requires = "redis", default_value_t = RedisConfig::new("").history_max_len)]
    redis_history: usize,
}

/// A duration in seconds on the command line: a finite number, not negative.
fn seconds(value: &str) -> Result<f64, String> {
    match value.parse::<f64>() {
        Ok(seconds) if (0.0..1e9).contains(&seconds) => Ok(seconds),
        _ => Err(format!("{value:?} is not a number of seconds (0 or more)")),
    }
}

impl ServeArgs {
    fn into_config(self) -> ServerConfig {
        ServerConfig {
            addr: SocketAddr::new(self.bind, self.port),
            root: self.root,
            pkg: self.pkg,
            max_connections: self.max_connections,
            max_message_size: self.max_message_size,
            allowed_origins: self.allowed_origins,
            sessions: !self.no_sessions,
            session_grace: std::time::Duration::try_from_secs_f64(self.session_grace)
                .unwrap_or(ServerConfig::default().session_grace),
            redis: self.redis.map(|url| RedisConfig {
                history_max_len: self.redis_history,
                ..RedisConfig::new(url)
            }),
            ping_interval: std::time::Duration::try_from_secs_f64(self.ping_interval)
                .ok()
                .filter(|interval| !interval.is_zero()),
            ..ServerConfig::default()
        }
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    // `connect` keeps stderr for the connection's own events; library logs only on request.
    init_logging(match cli.command {
        Command::Serve(_) => "info",
        Command::Connect(_) => "off",
    });
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("unisock: cannot start the async runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    let result = match cli.command {
        Command::Serve(args) => runtime.block_on(serve(args.into_config())),
        Command::Connect(args) => {
            let code = runtime.block_on(connect::run(args));
            // stdin is read on a blocking thread that may never return: do not wait for it.
            runtime.shutdown_background();
            return code;
        }
    };
    // Do not wait for HTTP requests still in flight after the shutdown timeout.
    runtime.shutdown_background();
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("unisock: {error}");
            ExitCode::FAILURE
        }
    }
}

/// `unisock serve`.
async fn serve(config: ServerConfig) -> std::io::Result<()> {
    match server::raise_fd_limit() {
        Ok(Some(limit)) if limit < config.max_connections as u64 + 64 => tracing::warn!(
            open_file_limit = limit,
            max_connections = config.max_connections,
            "the open-file limit is below --max-connections: connections beyond it will fail"
        ),
        Ok(_) => {}
        Err(error) => tracing::warn!(%error, "cannot raise the open-file limit"),
    }
    let server = Server::bind(config).await?;
    // Installed before the line below: whoever reads it may signal right away.
    let shutdown = server::shutdown_signal();
    let addr = openable(server.local_addr());
    let mut stdout = std::io::stdout().lock();
    writeln!(
        stdout,
        "unisock serve listening on http://{addr}/ (demo: http://{addr}/, echo: ws://{addr}/echo)"
    )?;
    stdout.flush()?;
    drop(stdout);
    server.run(shutdown).await
}

/// The address to put in URLs: a wildcard bind (`0.0.0.0`, `::`) is not something to type
/// into a browser, so it becomes the loopback address of the same family (same port).
fn openable(addr: SocketAddr) -> SocketAddr {
    match addr.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => {
            SocketAddr::new(Ipv4Addr::LOCALHOST.into(), addr.port())
        }
        IpAddr::V6(ip) if ip.is_unspecified() => {
            SocketAddr::new(Ipv6Addr::LOCALHOST.into(), addr.port())
        }
        _ => addr,
    }
}

/// Logs to stderr, filtered by `RUST_LOG` (else by `default`).
fn init_logging(default: &str) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .init();
}
