//! Server benchmark: the release `unisock serve` beside a Node `ws` server doing the same job
//! (benches/server/broadcast_server.mjs), in one run, from one load generator (this process).
//!
//! 1. Idle connections: the server's RSS (`VmRSS` in /proc/<pid>/status) before and after
//!    opening N WebSocket connections that then say nothing, per connection, at N = 1 000 and
//!    10 000. Each measurement uses a fresh server process. Clients bind source addresses
//!    127.0.0.2 … 127.0.0.33 in turn so that no source address runs short of ports.
//! 2. Fan-out: 1 000 subscribers in one room, one publisher sending 64-byte binary messages
//!    (sequence number + send time, one clock: every client is in this process) as fast as
//!    its socket takes them, for a bounded count and time. Subscribers record each delivery's
//!    latency. Rounds interleave the two servers (unisock, Node, unisock, Node …).
//!
//! Markdown goes to stdout, the result file to `$UNISOCK_BENCH_OUT/server.json` (default
//! `target/bench/`; format in benches/RESULTS.md).
//!
//! ```text
//! cargo build --release --features server --bin unisock
//! cargo bench --features server --bench server            # full (~2 minutes)
//! UNISOCK_BENCH_QUICK=1 cargo bench --features server --bench server   # smoke (seconds)
//! ```
//!
//! `UNISOCK_BIN` overrides the server binary (default target/release/unisock). Node comes from
//! PATH, `ws` from tests/peers/node_modules.

#[cfg(target_arch = "wasm32")]
fn main() {}

#[cfg(not(target_arch = "wasm32"))]
fn main() {
    native::main();
}

#[cfg(not(target_arch = "wasm32"))]
mod native {
    use std::fmt::Write as _;
    use std::io::{BufRead, BufReader};
    use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
    use std::path::PathBuf;
    use std::process::{Child, Command, Stdio};
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::{Arc, OnceLock};
    use std::time::{Duration, Instant};

    use futures::{SinkExt, StreamExt};
    use tokio::net::{TcpSocket, TcpStream};
    use tokio::time::timeout;
    use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
    use tokio_tungstenite::tungstenite::Message;
    use tokio_tungstenite::WebSocketStream;

    type Ws = WebSocketStream<TcpStream>;

    /// Client source addresses: 127.0.0.2 ..= 127.0.0.(1 + SOURCES).
    const SOURCES: usize = 32;
    /// Connects in flight at once (well under both servers' listen backlog of 1024).
    const CONNECT_CONCURRENCY: usize = 128;
    /// Closes in flight at once.
    const CLOSE_CONCURRENCY: usize = 512;
    /// Fan-out message size: sequence number, send time, padding.
    const MESSAGE_SIZE: usize = 64;
    /// Sequence numbers with a meaning of their own.
    const SYNC: u64 = u64::MAX;
    const END: u64 = u64::MAX - 1;

    #[derive(Clone, Copy, PartialEq, Eq, Debug)]
    enum Kind {
        Unisock,
        Node,
    }

    impl Kind {
        fn name(self) -> &'static str {
            match self {
                Kind::Unisock => "unisock serve",
                Kind::Node => "Node ws",
            }
        }
    }

    struct Params {
        quick: bool,
        idle_counts: Vec<usize>,
        subscribers: usize,
        messages: usize,
        send_limit: Duration,
        drain_limit: Duration,
        rounds: usize,
    }

    impl Params {
        fn new(quick: bool) -> Self {
            if quick {
                Params {
                    quick,
                    idle_counts: vec![100],
                    subscribers: 50,
                    messages: 300,
                    send_limit: Duration::from_secs(1),
                    drain_limit: Duration::from_secs(5),
                    rounds: 1,
                }
            } else {
                Params {
                    quick,
                    idle_counts: vec![1_000, 10_000],
                    subscribers: 1_000,
                    messages: env_usize("UNISOCK_BENCH_FANOUT_MESSAGES").unwrap_or(2_000),
                    send_limit: Duration::from_secs(2),
                    drain_limit: Duration::from_secs(15),
                    rounds: 3,
                }
            }
        }
    }

    fn env_usize(name: &str) -> Option<usize> {
        std::env::var(name).ok()?.parse().ok()
    }

    fn epoch() -> Instant {
        static EPOCH: OnceLock<Instant> = OnceLock::new();
        *EPOCH.get_or_init(Instant::now)
    }

    fn now_ns() -> u64 {
        epoch().elapsed().as_nanos() as u64
    }

    pub fn main() {
        let started = Instant::now();
        epoch();
        let quick = std::env::var_os("UNISOCK_BENCH_QUICK").is_some();
        let params = Params::new(quick);
        match unisock::server::raise_fd_limit() {
            Ok(Some(limit)) if limit < 2 * *params.idle_counts.iter().max().unwrap() as u64 => {
                eprintln!("warning: open-file limit {limit} is low for this benchmark")
            }
            Ok(_) => {}
            Err(error) => eprintln!("warning: cannot raise the open-file limit: {error}"),
        }
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("runtime");
        let bin = std::env::var_os("UNISOCK_BIN")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from("target/release/unisock"));
        let versions = Versions::read(&bin);
        // Node and `ws` may be missing (tests/peers not installed): unisock is then measured
        // alone and the report says why Node's numbers are null.
        let node_missing = node_missing();
        if let Some(why) = &node_missing {
            eprintln!("warning: {why}");
        }
        let kinds: Vec<Kind> = match node_missing {
            None => vec![Kind::Unisock, Kind::Node],
            Some(_) => vec![Kind::Unisock],
        };

        // 1. Idle connections: a fresh server for each measurement.
        let mut idle: Vec<(Kind, IdleSample)> = Vec::new();
        for &n in &params.idle_counts {
            for &kind in &kinds {
                let server = Server::start(kind, &bin, n);
                let sample = runtime.block_on(idle_connections(&server, n));
                server.stop();
                eprintln!(
                    "idle {} x{n}: {:.2} KiB/connection ({} opened, {} failed)",
                    kind.name(),
                    sample.kib_per_connection(),
                    sample.opened,
                    sample.failed
                );
                idle.push((kind, sample));
            }
        }

        // 2. Fan-out: rounds interleaved, a fresh server for each (so that a server still
        // relaying the previous round's backlog does not slow the next one down).
        let mut fanout: Vec<(Kind, FanoutSample)> = Vec::new();
        for round in 0..params.rounds {
            for &kind in &kinds {
                let server = Server::start(kind, &bin, params.subscribers + 100);
                let room = format!("fanout{round}");
                let sample = runtime.block_on(fan_out(&server, &room, &params));
                server.stop();
                eprintln!(
                    "fan-out {} round {round}: {:.0} delivered/s, p50 {:.0} µs, p99 {:.0} µs, \
                     {} of {} delivered, {} subscribers closed early, {} timed out",
                    kind.name(),
                    sample.delivered_per_sec(),
                    sample.p50_us,
                    sample.p99_us,
                    sample.delivered,
                    sample.expected(),
                    sample.closed_early,
                    sample.timed_out,
                );
                fanout.push((kind, sample));
            }
        }
        runtime.shutdown_timeout(Duration::from_secs(2));

        let report = Report {
            params: &params,
            versions: &versions,
            idle: &idle,
            fanout: &fanout,
            node_missing: node_missing.as_deref(),
        };
        print!("{}", report.markdown());
        let out = std::env::var_os("UNISOCK_BENCH_OUT")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from("target/bench"));
        std::fs::create_dir_all(&out).expect("create the results directory");
        let path = out.join("server.json");
        std::fs::write(&path, report.json().to_string()).expect("write server.json");
        eprintln!(
            "wrote {} in {:.1} s",
            path.display(),
            started.elapsed().as_secs_f64()
        );
    }

    // ---------------------------------------------------------------- server processes

    struct Server {
        kind: Kind,
        child: Child,
        addr: SocketAddr,
    }

    impl Server {
        /// Starts a server on an ephemeral loopback port, for up to `connections` clients,
        /// and waits (at most 20 s) for its ready line.
        fn start(kind: Kind, bin: &PathBuf, connections: usize) -> Server {
            let mut command = match kind {
                Kind::Unisock => {
                    let mut command = Command::new(bin);
                    command
                        .args(["serve", "--port", "0", "--bind", "127.0.0.1"])
                        .args(["--max-connections", &(connections + 100).to_string()])
                        // Errors only: `info` logs a line per connection.
                        .env("RUST_LOG", "error");
                    command
                }
                Kind::Node => {
                    let mut command = Command::new("node");
                    command.args(["benches/server/broadcast_server.mjs", "0"]);
                    command
                }
            };
            let mut child = command
                .stdin(Stdio::null())
                .stdout(Stdio::piped())
                .stderr(Stdio::inherit())
                .spawn()
                .unwrap_or_else(|error| panic!("cannot start {}: {error}", kind.name()));
            let stdout = child.stdout.take().expect("piped stdout");
            let (tx, rx) = std::sync::mpsc::channel();
            std::thread::spawn(move || {
                let mut line = String::new();
                let _ = BufReader::new(stdout).read_line(&mut line);
                let _ = tx.send(line);
            });
            let line = rx
                .recv_timeout(Duration::from_secs(20))
                .unwrap_or_else(|_| panic!("{} did not print its address", kind.name()));
            let port: u16 = match kind {
                // "unisock serve listening on http://127.0.0.1:PORT/ (…)"
                Kind::Unisock => line
                    .split("http://")
                    .nth(1)
                    .and_then(|rest| rest.split('/').next())
                    .and_then(|host| host.rsplit(':').next())
                    .and_then(|port| port.parse().ok()),
                // "LISTENING PORT"
                Kind::Node => line
                    .trim()
                    .strip_prefix("LISTENING ")
                    .and_then(|port| port.parse().ok()),
            }
            .unwrap_or_else(|| panic!("{}: unexpected ready line {line:?}", kind.name()));
            Server {
                kind,
                child,
                addr: SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::LOCALHOST, port)),
            }
        }

        fn pid(&self) -> u32 {
            self.child.id()
        }

        /// SIGTERM, then SIGKILL if it has not exited within 5 s.
        fn stop(mut self) {
            self.terminate();
        }

        fn terminate(&mut self) {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            // SAFETY: plain syscall on our own child's pid.
            unsafe {
                libc::kill(self.child.id() as libc::pid_t, libc::SIGTERM);
            }
            let deadline = Instant::now() + Duration::from_secs(5);
            while Instant::now() < deadline {
                if let Ok(Some(_)) = self.child.try_wait() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            eprintln!(
                "{} still running 5 s after SIGTERM (busy); killing it",
                self.kind.name()
            );
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }

    impl Drop for Server {
        /// Also on a panic: no server outlives the benchmark.
        fn drop(&mut self) {
            self.terminate();
        }
    }

    /// Why the Node contender cannot run, if it cannot.
    fn node_missing() -> Option<String> {
        if !std::path::Path::new("tests/peers/node_modules/ws/package.json").is_file() {
            return Some(
                "tests/peers/node_modules/ws is not installed (npm ci in tests/peers)".into(),
            );
        }
        match Command::new("node").arg("--version").output() {
            Ok(out) if out.status.success() => None,
            _ => Some("node is not on PATH".into()),
        }
    }

    /// Resident set size of `pid` in KiB.
    fn rss_kib(pid: u32) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("proc status");
        status
            .lines()
            .find_map(|line| line.strip_prefix("VmRSS:"))
            .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
            .expect("VmRSS")
    }

    /// RSS once it has stopped moving (two reads 250 ms apart within 0.5 %), at most 5 s.
    async fn settled_rss_kib(pid: u32) -> u64 {
        let deadline = Instant::now() + Duration::from_secs(5);
        let mut last = rss_kib(pid);
        loop {
            tokio::time::sleep(Duration::from_millis(250)).await;
            let now = rss_kib(pid);
            if now.abs_diff(last) * 200 <= last || Instant::now() > deadline {
                return now;
            }
            last = now;
        }
    }

    // ---------------------------------------------------------------- clients

    static NEXT_SOURCE: AtomicUsize = AtomicUsize::new(0);

    /// A WebSocket client on its own 127.0.0.x source address (round robin).
    async fn connect(
        server: SocketAddr,
        path: &str,
        read_buffer: usize,
    ) -> Result<Ws, Box<dyn std::error::Error + Send + Sync>> {
        let source = NEXT_SOURCE.fetch_add(1, Ordering::Relaxed) % SOURCES;
        let source = Ipv4Addr::new(127, 0, 0, 2 + source as u8);
        let socket = TcpSocket::new_v4()?;
        socket.bind(SocketAddr::V4(SocketAddrV4::new(source, 0)))?;
        let tcp = timeout(Duration::from_secs(10), socket.connect(server)).await??;
        tcp.set_nodelay(true)?;
        let mut config = WebSocketConfig::default();
        config.read_buffer_size = read_buffer;
        config.write_buffer_size = 0;
        let url = format!("ws://{server}{path}");
        let (ws, _) = timeout(
            Duration::from_secs(10),
            tokio_tungstenite::client_async_with_config(url, tcp, Some(config)),
        )
        .await??;
        Ok(ws)
    }

    /// Opens `n` connections, `CONNECT_CONCURRENCY` at a time, within `limit`.
    async fn connect_many(
        server: SocketAddr,
        path: &str,
        n: usize,
        read_buffer: usize,
        limit: Duration,
    ) -> (Vec<Ws>, usize) {
        let deadline = tokio::time::Instant::now() + limit;
        let results: Vec<_> = futures::stream::iter(0..n)
            .map(|_| async move {
                tokio::time::timeout_at(deadline, connect(server, path, read_buffer))
                    .await
                    .map_err(|_| "deadline".into())
                    .and_then(|r| r)
            })
            .buffer_unordered(CONNECT_CONCURRENCY)
            .collect()
            .await;
        let mut sockets = Vec::with_capacity(n);
        let mut failed = 0;
        let mut first_error = None;
        for result in results {
            match result {
                Ok(ws) => sockets.push(ws),
                Err(error) => {
                    failed += 1;
                    first_error.get_or_insert(error.to_string());
                }
            }
        }
        if let Some(error) = first_error {
            eprintln!("{failed} of {n} connects failed, first: {error}");
        }
        (sockets, failed)
    }

    /// Closes every socket cleanly (close frame, then wait for the server's), at most 2 s each
    /// and `CLOSE_CONCURRENCY` at a time.
    async fn close_all(sockets: Vec<Ws>) {
        futures::stream::iter(sockets)
            .for_each_concurrent(CLOSE_CONCURRENCY, |mut ws| async move {
                let _ = timeout(Duration::from_secs(2), async {
                    if ws.close(None).await.is_ok() {
                        while let Some(Ok(_)) = ws.next().await {}
                    }
                })
                .await;
            })
            .await;
    }

    // ---------------------------------------------------------------- idle connections

    struct IdleSample {
        n: usize,
        opened: usize,
        failed: usize,
        before_kib: u64,
        after_kib: u64,
    }

    impl IdleSample {
        fn kib_per_connection(&self) -> f64 {
            (self.after_kib as f64 - self.before_kib as f64) / self.opened.max(1) as f64
        }
    }

    async fn idle_connections(server: &Server, n: usize) -> IdleSample {
        let pid = server.pid();
        // Warm the server up with one connection so that lazily created state (runtime,
        // router, allocator arenas) is in "before".
        let (warm, _) = connect_many(server.addr, "/echo", 1, 4096, Duration::from_secs(10)).await;
        close_all(warm).await;
        let before_kib = settled_rss_kib(pid).await;
        let (sockets, failed) =
            connect_many(server.addr, "/echo", n, 4096, Duration::from_secs(60)).await;
        let after_kib = settled_rss_kib(pid).await;
        let opened = sockets.len();
        close_all(sockets).await;
        IdleSample {
            n,
            opened,
            failed,
            before_kib,
            after_kib,
        }
    }

    // ---------------------------------------------------------------- fan-out

    struct FanoutSample {
        subscribers: usize,
        sent: usize,
        send_secs: f64,
        delivered: usize,
        /// From the first send to the last delivery.
        span_secs: f64,
        p50_us: f64,
        p99_us: f64,
        /// Subscribers whose connection ended before the END marker (evicted, or failed).
        closed_early: usize,
        /// Subscribers still waiting for END at the drain deadline.
        timed_out: usize,
        close_codes: Vec<u16>,
    }

    impl FanoutSample {
        fn expected(&self) -> usize {
            self.sent * self.subscribers
        }
        fn delivered_per_sec(&self) -> f64 {
            self.delivered as f64 / self.span_secs.max(1e-9)
        }
        fn lost(&self) -> usize {
            self.expected().saturating_sub(self.delivered)
        }
    }

    /// What one subscriber saw.
    struct Seen {
        latencies_us: Vec<u32>,
        last_ns: u64,
        /// Ended with END.
        complete: bool,
        /// The server closed the connection with this code before END.
        close_code: Option<u16>,
        timed_out: bool,
        socket: Option<Ws>,
    }

    fn frame(seq: u64) -> Message {
        let mut payload = vec![0u8; MESSAGE_SIZE];
        payload[..8].copy_from_slice(&seq.to_le_bytes());
        payload[8..16].copy_from_slice(&now_ns().to_le_bytes());
        Message::binary(payload)
    }

    async fn subscriber(
        mut ws: Ws,
        synced: Arc<AtomicUsize>,
        capacity: usize,
        deadline: tokio::time::Instant,
    ) -> Seen {
        let mut seen = Seen {
            latencies_us: Vec::with_capacity(capacity),
            last_ns: 0,
            complete: false,
            close_code: None,
            timed_out: false,
            socket: None,
        };
        let mut is_synced = false;
        loop {
            let message = match tokio::time::timeout_at(deadline, ws.next()).await {
                Err(_) => {
                    seen.timed_out = true;
                    break;
                }
                Ok(None) | Ok(Some(Err(_))) => {
                    seen.close_code.get_or_insert(1006);
                    return seen;
                }
                Ok(Some(Ok(message))) => message,
            };
            match message {
                Message::Binary(data) if data.len() >= 16 => {
                    let received = now_ns();
                    let seq = u64::from_le_bytes(data[..8].try_into().unwrap());
                    let sent = u64::from_le_bytes(data[8..16].try_into().unwrap());
                    match seq {
                        SYNC => {
                            if !is_synced {
                                is_synced = true;
                                synced.fetch_add(1, Ordering::AcqRel);
                            }
                        }
                        END => {
                            seen.complete = true;
                            break;
                        }
                        _ => {
                            let us = received.saturating_sub(sent) / 1000;
                            seen.latencies_us.push(us.min(u32::MAX as u64) as u32);
                            seen.last_ns = received;
                        }
                    }
                }
                Message::Close(frame) => {
                    seen.close_code = Some(frame.map_or(1005, |f| u16::from(f.code)));
                    // Let tungstenite finish the closing handshake.
                    let _ = timeout(Duration::from_secs(2), async {
                        while let Some(Ok(_)) = ws.next().await {}
                    })
                    .await;
                    return seen;
                }
                _ => {}
            }
        }
        seen.socket = Some(ws);
        seen
    }

    async fn fan_out(server: &Server, room: &str, params: &Params) -> FanoutSample {
        let path = format!("/rooms/{room}");
        let (subs, failed) = connect_many(
            server.addr,
            &path,
            params.subscribers,
            16 << 10,
            Duration::from_secs(60),
        )
        .await;
        assert_eq!(
            failed,
            0,
            "{}: subscribers failed to connect",
            server.kind.name()
        );
        let mut publisher = connect(server.addr, &path, 16 << 10)
            .await
            .expect("publisher connects");

        let synced = Arc::new(AtomicUsize::new(0));
        // Generous: a server that cannot keep up still delivers every message within it,
        // unless it drops them.
        let deadline = tokio::time::Instant::now()
            + Duration::from_secs(10)
            + params.send_limit
            + params.drain_limit;
        let tasks: Vec<_> = subs
            .into_iter()
            .map(|ws| {
                tokio::spawn(subscriber(
                    ws,
                    Arc::clone(&synced),
                    params.messages,
                    deadline,
                ))
            })
            .collect();

        // Everyone is in the room once each has had a SYNC message.
        let sync_deadline = Instant::now() + Duration::from_secs(10);
        while synced.load(Ordering::Acquire) < params.subscribers && Instant::now() < sync_deadline
        {
            publisher.send(frame(SYNC)).await.expect("send sync");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert_eq!(
            synced.load(Ordering::Acquire),
            params.subscribers,
            "{}: not every subscriber joined",
            server.kind.name()
        );
        // The last SYNCs may still be on their way: let them arrive.
        tokio::time::sleep(Duration::from_millis(200)).await;

        // Full speed: each send returns once the publisher's socket has taken the frame.
        let start_ns = now_ns();
        let start = Instant::now();
        let mut sent = 0;
        while sent < params.messages && start.elapsed() < params.send_limit {
            publisher.send(frame(sent as u64)).await.expect("publish");
            sent += 1;
        }
        let send_secs = start.elapsed().as_secs_f64();
        publisher.send(frame(END)).await.expect("publish END");

        let mut latencies: Vec<u32> = Vec::with_capacity(sent * params.subscribers);
        let mut last_ns = start_ns;
        let mut closed_early = 0;
        let mut timed_out = 0;
        let mut close_codes = Vec::new();
        let mut sockets = vec![publisher];
        for task in tasks {
            let seen = task.await.expect("subscriber task");
            latencies.extend_from_slice(&seen.latencies_us);
            last_ns = last_ns.max(seen.last_ns);
            if let Some(code) = seen.close_code {
                closed_early += 1;
                if !close_codes.contains(&code) {
                    close_codes.push(code);
                }
            } else if seen.timed_out {
                timed_out += 1;
            }
            debug_assert!(seen.complete || seen.close_code.is_some() || seen.timed_out);
            sockets.extend(seen.socket);
        }
        close_all(sockets).await;
        let delivered = latencies.len();
        latencies.sort_unstable();
        let pick = |q: f64| -> f64 {
            if latencies.is_empty() {
                f64::NAN
            } else {
                let i = ((latencies.len() as f64 * q) as usize).min(latencies.len() - 1);
                latencies[i] as f64
            }
        };
        FanoutSample {
            subscribers: params.subscribers,
            sent,
            send_secs,
            delivered,
            span_secs: (last_ns.saturating_sub(start_ns)) as f64 / 1e9,
            p50_us: pick(0.50),
            p99_us: pick(0.99),
            closed_early,
            timed_out,
            close_codes,
        }
    }

    // ---------------------------------------------------------------- report

    struct Versions {
        unisock: String,
        node: String,
        ws: String,
        tungstenite: String,
    }

    impl Versions {
        fn read(bin: &PathBuf) -> Versions {
            let output = |command: &mut Command| {
                command
                    .output()
                    .ok()
                    .filter(|out| out.status.success())
                    .map(|out| String::from_utf8_lossy(&out.stdout).trim().to_owned())
                    .unwrap_or_else(|| "unknown".to_owned())
            };
            let unisock = output(Command::new(bin).arg("--version"));
            let unisock = unisock
                .strip_prefix("unisock ")
                .unwrap_or(&unisock)
                .to_owned();
            let node = output(Command::new("node").arg("--version"));
            let node = node.strip_prefix('v').unwrap_or(&node).to_owned();
            let ws = std::fs::read_to_string("tests/peers/node_modules/ws/package.json")
                .ok()
                .and_then(|json| json_string_field(&json, "version"))
                .unwrap_or_else(|| "unknown".to_owned());
            let tungstenite = std::fs::read_to_string("Cargo.lock")
                .ok()
                .and_then(|lock| {
                    let at = lock.find("name = \"tokio-tungstenite\"")?;
                    json_string_field(&lock[at..], "version")
                })
                .unwrap_or_else(|| "unknown".to_owned());
            Versions {
                unisock,
                node,
                ws,
                tungstenite,
            }
        }
    }

    /// The value of the first `key = "v"` or `"key": "v"` after the start of `text`.
    fn json_string_field(text: &str, key: &str) -> Option<String> {
        let at = text.find(key)? + key.len();
        let rest = &text[at..];
        let open = rest.find('"').map(|i| {
            // Skip the closing quote of a JSON key.
            if rest[..i].trim().is_empty() {
                rest[i + 1..].find('"').map(|j| i + 1 + j)
            } else {
                Some(i)
            }
        })??;
        let rest = &rest[open + 1..];
        let close = rest.find('"')?;
        Some(rest[..close].to_owned())
    }

    fn median(mut values: Vec<f64>) -> f64 {
        if values.is_empty() {
            return f64::NAN;
        }
        values.sort_by(|a, b| a.total_cmp(b));
        values[values.len() / 2]
    }

    fn round(value: f64, digits: i32) -> f64 {
        let scale = 10f64.powi(digits);
        (value * scale).round() / scale
    }

    struct Report<'a> {
        params: &'a Params,
        versions: &'a Versions,
        idle: &'a [(Kind, IdleSample)],
        fanout: &'a [(Kind, FanoutSample)],
        /// Why Node could not run, if it could not.
        node_missing: Option<&'a str>,
    }

    /// Medians over rounds for one server.
    struct FanoutSummary {
        rate: f64,
        p50: f64,
        p99: f64,
        publish_rate: f64,
        sent: usize,
        lost: usize,
        closed_early: usize,
        timed_out: usize,
        close_codes: Vec<u16>,
    }

    impl Report<'_> {
        fn idle_kib(&self, kind: Kind, n: usize) -> Option<&IdleSample> {
            self.idle
                .iter()
                .find(|(k, s)| *k == kind && s.n == n)
                .map(|(_, s)| s)
        }

        fn fanout_summary(&self, kind: Kind) -> FanoutSummary {
            let samples: Vec<&FanoutSample> = self
                .fanout
                .iter()
                .filter(|(k, _)| *k == kind)
                .map(|(_, s)| s)
                .collect();
            let of = |f: fn(&FanoutSample) -> f64| median(samples.iter().map(|s| f(s)).collect());
            let mut close_codes: Vec<u16> =
                samples.iter().flat_map(|s| s.close_codes.clone()).collect();
            close_codes.sort_unstable();
            close_codes.dedup();
            FanoutSummary {
                rate: of(FanoutSample::delivered_per_sec),
                p50: of(|s| s.p50_us),
                p99: of(|s| s.p99_us),
                publish_rate: of(|s| s.sent as f64 / s.send_secs.max(1e-9)),
                sent: samples.iter().map(|s| s.sent).max().unwrap_or(0),
                lost: samples.iter().map(|s| s.lost()).sum(),
                closed_early: samples.iter().map(|s| s.closed_early).sum(),
                timed_out: samples.iter().map(|s| s.timed_out).sum(),
                close_codes,
            }
        }

        /// Median over rounds of unisock's rate / Node's rate in the same round.
        fn rate_ratio(&self) -> f64 {
            let pairs: Vec<f64> = self
                .fanout
                .chunks(2)
                .filter_map(|pair| match pair {
                    [(Kind::Unisock, u), (Kind::Node, n)] => {
                        Some(u.delivered_per_sec() / n.delivered_per_sec())
                    }
                    _ => None,
                })
                .collect();
            median(pairs)
        }

        fn method(&self) -> String {
            let p = self.params;
            format!(
                "The release `unisock serve` and a Node `ws` server (benches/server/broadcast_server.mjs, \
                 the ws README's broadcast loop) run as separate processes on loopback; one load \
                 generator process (tokio-tungstenite clients, TCP_NODELAY, source addresses \
                 127.0.0.2-127.0.0.{last}) drives both. Idle: server RSS (VmRSS, settled) before \
                 and after opening N echo connections that stay silent, divided by N, a fresh server \
                 process for each N ({counts}). Fan-out: {subs} subscribers in one room, one publisher \
                 sending {size}-byte binary messages carrying their send time as fast as its socket \
                 takes them (at most {msgs} messages or {limit} s), then an END marker; delivered/s \
                 is all deliveries over all subscribers divided by the time from the first send to \
                 the last delivery; latency is receive time minus send time (one clock). {rounds} \
                 round(s), servers interleaved (unisock, Node, …), medians over rounds; ratios are \
                 unisock / Node.",
                last = 1 + SOURCES,
                counts = p
                    .idle_counts
                    .iter()
                    .map(|n| n.to_string())
                    .collect::<Vec<_>>()
                    .join(" and "),
                subs = p.subscribers,
                size = MESSAGE_SIZE,
                msgs = p.messages,
                limit = p.send_limit.as_secs_f64(),
                rounds = p.rounds,
            )
        }

        fn notes(&self) -> Vec<String> {
            let mut notes = Vec::new();
            if let Some(why) = self.node_missing {
                notes.push(format!(
                    "Node ws could not run ({why}): its numbers are null."
                ));
            }
            if self.params.quick {
                notes.push(
                    "UNISOCK_BENCH_QUICK: smoke-sized run; the numbers say it works, not how fast."
                        .to_owned(),
                );
            }
            for kind in [Kind::Unisock, Kind::Node] {
                let s = self.fanout_summary(kind);
                if s.lost > 0 || s.closed_early > 0 || s.timed_out > 0 {
                    notes.push(format!(
                        "{}: {} deliveries not made over all rounds; {} subscriber connections \
                         closed by the server before the end (close codes {:?}); {} still waiting \
                         at the drain deadline.",
                        kind.name(),
                        s.lost,
                        s.closed_early,
                        s.close_codes,
                        s.timed_out
                    ));
                }
            }
            notes.push(
                "Slow consumers: unisock gives each room member a bounded inbox (256 messages, and \
                 bytes; src/server/rooms.rs); a publisher waits for room in a full inbox (its \
                 client is then slowed down by TCP), at most 2 s, and a member whose inbox stays \
                 full that long is closed with 1013, so the room never buffers without bound. \
                 Node ws never drops a member: what a socket cannot take yet waits in memory \
                 (bufferedAmount), without bound; deliveries counted as missing for Node were \
                 still queued at the drain deadline, not dropped.".to_owned(),
            );
            notes.push(
                "Under a publisher at full speed, the server is the bottleneck: latency is mostly \
                 time spent queued (in the publisher's socket for Node, in the inboxes for unisock), \
                 so p50/p99 describe saturation, not an idle round trip."
                    .to_owned(),
            );
            notes.push(
                "Node ws sends each message to each member with its own write system call \
                 (socket.write, TCP_NODELAY) on one thread; unisock's room relay writes up to 64 \
                 queued messages per system call, on both cores. On loopback, each write also \
                 runs the receiver's TCP path, so per-message writes dominate the cost."
                    .to_owned(),
            );
            notes.push(
                "Idle RSS counts user-space memory only (kernel socket buffers are not in RSS), \
                 for both servers alike."
                    .to_owned(),
            );
            notes
        }

        fn markdown(&self) -> String {
            let mut md = String::new();
            let _ = writeln!(md, "# Server benchmark: unisock serve vs Node ws\n");
            let _ = writeln!(md, "{}\n", self.method());
            let v = self.versions;
            let _ = writeln!(
                md,
                "Versions: unisock {}, tokio-tungstenite {}, Node {}, ws {}.\n",
                v.unisock, v.tungstenite, v.node, v.ws
            );
            let _ = writeln!(md, "## Idle connections: server RSS per connection\n");
            let _ = writeln!(
                md,
                "| connections | server | RSS before KiB | RSS after KiB | KiB per connection | failed |"
            );
            let _ = writeln!(md, "|---|---|---|---|---|---|");
            for (kind, s) in self.idle {
                let _ = writeln!(
                    md,
                    "| {} | {} | {} | {} | {:.2} | {} |",
                    s.n,
                    kind.name(),
                    s.before_kib,
                    s.after_kib,
                    s.kib_per_connection(),
                    s.failed
                );
            }
            let _ = writeln!(
                md,
                "\n## Fan-out: {} subscribers, one publisher at full speed\n",
                self.params.subscribers
            );
            let _ = writeln!(
                md,
                "| server | round | sent | delivered | not delivered by the deadline | closed early | delivered/s | p50 µs | p99 µs | publisher msg/s |"
            );
            let _ = writeln!(md, "|---|---|---|---|---|---|---|---|---|---|");
            let mut rounds = [0usize; 2];
            for (kind, s) in self.fanout {
                let r = &mut rounds[*kind as usize];
                let _ = writeln!(
                    md,
                    "| {} | {} | {} | {} | {} | {} | {:.0} | {:.0} | {:.0} | {:.0} |",
                    kind.name(),
                    *r,
                    s.sent,
                    s.delivered,
                    s.lost(),
                    s.closed_early,
                    s.delivered_per_sec(),
                    s.p50_us,
                    s.p99_us,
                    s.sent as f64 / s.send_secs.max(1e-9)
                );
                *r += 1;
            }
            let _ = writeln!(
                md,
                "\nMedian delivered/s ratio unisock / Node: {:.2}\n",
                self.rate_ratio()
            );
            for note in self.notes() {
                let _ = writeln!(md, "- {note}");
            }
            md
        }

        fn json(&self) -> Json {
            use Json::*;
            let num = |v: f64, d: i32| {
                if v.is_finite() {
                    Num(round(v, d))
                } else {
                    Null
                }
            };
            let v = self.versions;
            let mut idle_rows = Vec::new();
            let mut targets = Vec::new();
            let mut idle_series: Vec<(String, Json)> = Vec::new();
            let counts = &self.params.idle_counts;
            for kind in [Kind::Unisock, Kind::Node] {
                let mut series = Vec::new();
                for &n in counts {
                    match self.idle_kib(kind, n) {
                        Some(s) => {
                            idle_rows.push(Arr(vec![
                                Str(n.to_string()),
                                Str(kind.name().to_owned()),
                                Num(s.before_kib as f64),
                                Num(s.after_kib as f64),
                                num(s.kib_per_connection(), 2),
                                Num(s.failed as f64),
                            ]));
                            series.push(num(s.kib_per_connection(), 2));
                            if kind == Kind::Unisock {
                                targets.push(Obj(vec![
                                    (
                                        "what".into(),
                                        Str(format!(
                                            "unisock serve RSS per idle connection, {n} connections (KiB)"
                                        )),
                                    ),
                                    ("value".into(), num(s.kib_per_connection(), 2)),
                                    ("target".into(), Str("<= 10".into())),
                                    (
                                        "met".into(),
                                        Bool(s.kib_per_connection() <= 10.0 && s.failed == 0),
                                    ),
                                ]));
                            }
                        }
                        None => series.push(Null),
                    }
                }
                idle_series.push((kind.name().to_owned(), Arr(series)));
            }
            let summaries = [Kind::Unisock, Kind::Node].map(|k| (k, self.fanout_summary(k)));
            let fanout_rows: Vec<Json> = summaries
                .iter()
                .map(|(kind, s)| {
                    Arr(vec![
                        Str(kind.name().to_owned()),
                        num(s.rate, 0),
                        num(s.p50, 0),
                        num(s.p99, 0),
                        num(s.publish_rate, 0),
                        Num(s.sent as f64),
                        Num(s.lost as f64),
                        Num(s.closed_early as f64),
                    ])
                })
                .collect();
            let ratio = self.rate_ratio();
            Obj(vec![
                ("benchmark".into(), Str("server".into())),
                (
                    "title".into(),
                    Str("Server: unisock serve vs a Node ws server (idle memory, room fan-out)"
                        .into()),
                ),
                ("method".into(), Str(self.method())),
                (
                    "versions".into(),
                    Obj(vec![
                        ("unisock".into(), Str(v.unisock.clone())),
                        ("tokio-tungstenite".into(), Str(v.tungstenite.clone())),
                        ("node".into(), Str(v.node.clone())),
                        ("ws".into(), Str(v.ws.clone())),
                    ]),
                ),
                (
                    "tables".into(),
                    Arr(vec![
                        Obj(vec![
                            ("title".into(), Str("Idle connections: server RSS per connection".into())),
                            (
                                "columns".into(),
                                Arr([
                                    "connections",
                                    "server",
                                    "RSS before KiB",
                                    "RSS after KiB",
                                    "KiB per connection",
                                    "failed connects",
                                ]
                                .map(|c| Str(c.into()))
                                .to_vec()),
                            ),
                            ("rows".into(), Arr(idle_rows)),
                            (
                                "note".into(),
                                Str("A fresh server process for each row; user-space memory only.".into()),
                            ),
                        ]),
                        Obj(vec![
                            (
                                "title".into(),
                                Str(format!(
                                    "Fan-out: {} subscribers, one publisher at full speed (medians over rounds)",
                                    self.params.subscribers
                                )),
                            ),
                            (
                                "columns".into(),
                                Arr([
                                    "server",
                                    "delivered msgs/s",
                                    "p50 µs",
                                    "p99 µs",
                                    "publisher msgs/s",
                                    "messages sent",
                                    "deliveries not made by the deadline (all rounds)",
                                    "subscribers closed early (all rounds)",
                                ]
                                .map(|c| Str(c.into()))
                                .to_vec()),
                            ),
                            ("rows".into(), Arr(fanout_rows)),
                            (
                                "note".into(),
                                Str(format!(
                                    "Delivered msgs/s ratio unisock / Node (median of per-round ratios): {}",
                                    if ratio.is_finite() { format!("{ratio:.2}") } else { "n/a".into() }
                                )),
                            ),
                        ]),
                    ]),
                ),
                (
                    "charts".into(),
                    Arr(vec![
                        Obj(vec![
                            ("file".into(), Str("server_idle_rss".into())),
                            (
                                "title".into(),
                                Str("Server RSS per idle WebSocket connection (lower is better)".into()),
                            ),
                            ("y_label".into(), Str("KiB per connection".into())),
                            (
                                "categories".into(),
                                Arr(counts.iter().map(|n| Str(format!("{n} connections"))).collect()),
                            ),
                            ("series".into(), Obj(idle_series)),
                            ("reference".into(), Num(10.0)),
                        ]),
                        Obj(vec![
                            ("file".into(), Str("server_fanout".into())),
                            (
                                "title".into(),
                                Str(format!(
                                    "Room fan-out to {} subscribers: delivered messages/s (higher is better)",
                                    self.params.subscribers
                                )),
                            ),
                            ("y_label".into(), Str("messages/s".into())),
                            ("categories".into(), Arr(vec![Str("delivered msgs/s".into())])),
                            (
                                "series".into(),
                                Obj(summaries
                                    .iter()
                                    .map(|(k, s)| (k.name().to_owned(), Arr(vec![num(s.rate, 0)])))
                                    .collect()),
                            ),
                        ]),
                    ]),
                ),
                (
                    "targets".into(),
                    Arr(targets),
                ),
                ("notes".into(), Arr(self.notes().into_iter().map(Str).collect())),
            ])
        }
    }

    /// Just enough JSON for the result file (no dependency for it).
    #[derive(Clone)]
    enum Json {
        Null,
        Bool(bool),
        Num(f64),
        Str(String),
        Arr(Vec<Json>),
        Obj(Vec<(String, Json)>),
    }

    impl std::fmt::Display for Json {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            fn string(f: &mut std::fmt::Formatter<'_>, s: &str) -> std::fmt::Result {
                f.write_str("\"")?;
                for c in s.chars() {
                    match c {
                        '"' => f.write_str("\\\"")?,
                        '\\' => f.write_str("\\\\")?,
                        '\n' => f.write_str("\\n")?,
                        c if (c as u32) < 0x20 => write!(f, "\\u{:04x}", c as u32)?,
                        c => write!(f, "{c}")?,
                    }
                }
                f.write_str("\"")
            }
            match self {
                Json::Null => f.write_str("null"),
                Json::Bool(b) => write!(f, "{b}"),
                Json::Num(n) if n.is_finite() => write!(f, "{n}"),
                Json::Num(_) => f.write_str("null"),
                Json::Str(s) => string(f, s),
                Json::Arr(items) => {
                    f.write_str("[")?;
                    for (i, item) in items.iter().enumerate() {
                        if i > 0 {
                            f.write_str(", ")?;
                        }
                        write!(f, "{item}")?;
                    }
                    f.write_str("]")
                }
                Json::Obj(fields) => {
                    f.write_str("{")?;
                    for (i, (key, value)) in fields.iter().enumerate() {
                        if i > 0 {
                            f.write_str(", ")?;
                        }
                        string(f, key)?;
                        write!(f, ": {value}")?;
                    }
                    f.write_str("}")
                }
            }
        }
    }
}
