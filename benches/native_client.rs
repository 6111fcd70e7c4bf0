//! Native client benchmark: unisock beside what a user would otherwise pick, in one run,
//! against the same loopback echo servers, reported as ratios.
//!
//! Contenders: raw TCP with a length prefix (the physical floor), raw tokio-tungstenite,
//! unisock's async API, unisock's `Socket` from a plain thread, and ewebsock (a polling client,
//! from a plain thread). Rounds interleave the contenders, each round in its own shuffled order
//! (see `round_order`); the tables give medians over rounds and the median of the per-round
//! ratios to raw tokio-tungstenite.
//!
//! With the `server` feature, two more contenders run in the same rounds against an in-process
//! `unisock serve` `/echo`: unisock's async API with acknowledged sessions off and on
//! (`unisock.v1`), whose per-round ratio isolates what sessions cost.
//!
//! `cargo bench --features server --bench native_client` (full, about 2 minutes of runs) or
//! `UNISOCK_BENCH_QUICK=1 cargo bench --features server --bench native_client` (smoke,
//! seconds); without `--features server` the session pair is left out. Besides the
//! Markdown on stdout it writes `$UNISOCK_BENCH_OUT/native_client.json` (default
//! `target/bench/`) in the format of `benches/RESULTS.md`.

#[cfg(target_arch = "wasm32")]
fn main() {}

#[cfg(not(target_arch = "wasm32"))]
fn main() {
    native::main();
}

#[cfg(not(target_arch = "wasm32"))]
#[path = "../tests/support/echo_server.rs"]
mod echo_server;
#[cfg(not(target_arch = "wasm32"))]
#[path = "../tests/support/fault_proxy.rs"]
mod fault_proxy;

#[cfg(not(target_arch = "wasm32"))]
mod native {
    use std::fmt::Write as _;
    use std::future::Future;
    use std::net::SocketAddr;
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::Relaxed};
    use std::time::{Duration, Instant};

    use super::echo_server;
    use futures::{SinkExt, StreamExt};
    use tokio::io::{AsyncReadExt, AsyncWriteExt, BufReader, BufWriter};
    use tokio::net::{TcpListener, TcpStream};
    use tokio::sync::{Mutex, Semaphore};
    use tokio_tungstenite::tungstenite;

    const SIZES: [usize; 4] = [16, 1 << 10, 64 << 10, 1 << 20];

    const RAW_TCP: usize = 0;
    const TUNGSTENITE: usize = 1;
    const UNISOCK_ASYNC: usize = 2;
    const UNISOCK_SOCKET: usize = 3;
    const EWEBSOCK: usize = 4;
    /// The session pair, against `unisock serve` (not the tokio-tungstenite echo server of the
    /// contenders before them): sessions off, then on.
    const SESSION_OFF: usize = 5;
    const SESSION_ON: usize = 6;
    /// What a plain thread gets when its user writes the thread API by hand: tokio-tungstenite
    /// on a runtime of its own thread, channels in and out. Not a target: it shows what the
    /// plain-thread design itself costs (two wake-ups between threads per round trip).
    const TUNGSTENITE_THREAD: usize = 7;
    /// The contenders of the main tables (all against the same tokio-tungstenite echo
    /// server), in table order.
    const MAIN: [usize; 6] = [
        RAW_TCP,
        TUNGSTENITE,
        UNISOCK_ASYNC,
        UNISOCK_SOCKET,
        TUNGSTENITE_THREAD,
        EWEBSOCK,
    ];
    const CONTENDERS: [&str; 8] = [
        "raw TCP",
        "tokio-tungstenite",
        "unisock async",
        "unisock Socket (thread)",
        "ewebsock (thread)",
        "unisock async (unisock serve)",
        "unisock async + session (unisock serve)",
        "tokio-tungstenite (thread, hand-rolled)",
    ];

    /// How much work one measurement does; every phase also stops at `phase_cap`.
    #[derive(Clone, Copy)]
    struct Plan {
        warmup: usize,
        round_trips: usize,
        /// Round trips measured even past the time cap (so that p99 means something).
        min_round_trips: usize,
        pipelined: usize,
        /// Thread APIs only: round trips each started after `IDLE_GAP` of silence.
        idle_round_trips: usize,
        /// Messages in flight at most in the pipelined phase.
        window: usize,
        phase_cap: Duration,
    }

    fn plan(size: usize, quick: bool) -> Plan {
        let scale = |full: usize, quick_n: usize| if quick { quick_n } else { full };
        let (round_trips, pipelined) = match size {
            s if s <= 1 << 10 => (scale(2000, 100), scale(10_000, 300)),
            s if s <= 64 << 10 => (scale(600, 30), scale(2000, 60)),
            _ => (scale(60, 5), scale(150, 10)),
        };
        Plan {
            warmup: scale(20, 3),
            round_trips,
            min_round_trips: scale(20, 3),
            pipelined,
            idle_round_trips: scale(30, 3),
            // At most ~4 MiB and 256 messages in flight: small enough for loopback socket
            // buffers, deep enough to keep the pipe full even when a wake-up takes ~150 µs on
            // these VMs (a window of 16 made every small-message contender run at 16 / round
            // trip: latency measured twice, not throughput).
            window: ((4 << 20) / size).clamp(2, 256),
            phase_cap: Duration::from_millis(if quick { 100 } else { 400 }),
        }
    }

    /// The pause before each idle round trip: a UI or game loop sends at any time, not right
    /// after the previous answer.
    const IDLE_GAP: Duration = Duration::from_millis(2);

    /// One measurement of one contender.
    #[derive(Clone, Copy)]
    struct Sample {
        /// Round trip, µs.
        p50: f64,
        p99: f64,
        messages_per_sec: f64,
        /// Round trip after `IDLE_GAP` of silence, µs (thread APIs only; NaN otherwise).
        idle_p50: f64,
    }

    pub fn main() {
        let quick = std::env::var_os("UNISOCK_BENCH_QUICK").is_some();
        // 11: a median of per-round ratios that one or two rounds caught in a slow wake-up
        // state do not move (7 left single targets swinging by 0.1 between runs).
        let rounds = if quick { 1 } else { 11 };
        let started = Instant::now();
        // Servers on their own runtime: clients and servers do not share worker threads.
        let server_rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let (ws_addr, tcp_addr) =
            server_rt.block_on(async { (echo_server::spawn(0).await.unwrap(), tcp_echo().await) });
        let client_rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let url = format!("ws://{ws_addr}/echo");
        // The session pair's server (`None` without the `server` feature: the pair is skipped).
        #[cfg(feature = "server")]
        let serve_url = Some(format!("ws://{}/echo", server_rt.block_on(serve_echo())));
        #[cfg(not(feature = "server"))]
        let serve_url: Option<String> = None;

        // For profiling: `UNISOCK_BENCH_ONLY=1,2` (indices into CONTENDERS; the others then
        // report 0; `5,6` is the session pair alone) and `UNISOCK_BENCH_SIZES=65536,1048576`.
        let only: Option<Vec<usize>> = std::env::var("UNISOCK_BENCH_ONLY").ok().map(|list| {
            list.split(',')
                .filter_map(|s| s.trim().parse().ok())
                .collect()
        });
        let sizes: Vec<usize> = match std::env::var("UNISOCK_BENCH_SIZES") {
            Ok(list) => list
                .split(',')
                .filter_map(|s| s.trim().parse().ok())
                .collect(),
            Err(_) => SIZES.to_vec(),
        };

        let mut results = Vec::new();
        for size in sizes {
            let plan = plan(size, quick);
            let mut samples: Vec<[Sample; CONTENDERS.len()]> = Vec::new();
            for round in 0..rounds {
                let mut sample = [None; CONTENDERS.len()];
                for contender in round_order(round) {
                    if [SESSION_OFF, SESSION_ON].contains(&contender) && serve_url.is_none() {
                        sample[contender] = Some(Sample {
                            p50: f64::NAN,
                            p99: f64::NAN,
                            messages_per_sec: f64::NAN,
                            idle_p50: f64::NAN,
                        });
                        continue;
                    }
                    if only.as_ref().is_some_and(|only| !only.contains(&contender)) {
                        sample[contender] = Some(Sample {
                            p50: 0.0,
                            p99: 0.0,
                            messages_per_sec: 0.0,
                            idle_p50: f64::NAN,
                        });
                        continue;
                    }
                    let rt = &client_rt;
                    sample[contender] = Some(match contender {
                        RAW_TCP => in_task(rt, bench_tcp(tcp_addr, size, plan)),
                        TUNGSTENITE => in_task(rt, bench_tungstenite(url.clone(), size, plan)),
                        UNISOCK_ASYNC => in_task(
                            rt,
                            bench_unisock(url.clone(), size, plan, unisock_options()),
                        ),
                        UNISOCK_SOCKET => bench_socket_thread(&url, size, plan),
                        EWEBSOCK => bench_ewebsock(&url, size, plan),
                        TUNGSTENITE_THREAD => bench_tungstenite_thread(&url, size, plan),
                        SESSION_OFF | SESSION_ON => {
                            let mut options = unisock_options();
                            if contender == SESSION_ON {
                                options = options.session(unisock::SessionOptions::default());
                            }
                            let serve_url = serve_url.clone().expect("checked above");
                            in_task(rt, bench_unisock(serve_url, size, plan, options))
                        }
                        _ => unreachable!("contender {contender}"),
                    });
                }
                samples.push(sample.map(|s| s.expect("every contender ran")));
            }
            results.push(summarize(size, plan, &samples));
        }
        let elapsed = started.elapsed();
        print_markdown(&results, rounds, elapsed);
        let json = to_json(&results, rounds, quick);
        let dir = std::env::var_os("UNISOCK_BENCH_OUT")
            .map(std::path::PathBuf::from)
            .unwrap_or_else(|| std::path::PathBuf::from("target/bench"));
        std::fs::create_dir_all(&dir).expect("create the results directory");
        let path = dir.join("native_client.json");
        std::fs::write(&path, json).expect("write the results file");
        println!(
            "Results: {} ({:.0} s)",
            path.display(),
            elapsed.as_secs_f64()
        );
    }

    /// The order of the contenders in round `round`: a permutation shuffled with a fixed seed
    /// per round (Fisher-Yates over a xorshift sequence). A rotation (A B C, B C A, …) would
    /// keep each contender right behind the same one in almost every round, and what ran just
    /// before changes how fast threads wake here (see the method text).
    fn round_order(round: usize) -> [usize; CONTENDERS.len()] {
        let mut order: [usize; CONTENDERS.len()] = std::array::from_fn(|i| i);
        let mut state =
            0x9e37_79b9_7f4a_7c15_u64 ^ (round as u64 + 1).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        for i in (1..order.len()).rev() {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            order.swap(i, (state % (i as u64 + 1)) as usize);
        }
        order
    }

    /// Runs an async contender in a spawned task on the client runtime, as most async code
    /// runs (see the notes for the runtime's own `block_on` future).
    fn in_task(
        rt: &tokio::runtime::Runtime,
        bench: impl Future<Output = Sample> + Send + 'static,
    ) -> Sample {
        rt.block_on(async { tokio::spawn(bench).await.unwrap() })
    }

    // ---------------------------------------------------------------------------------------
    // Measuring.

    fn percentiles(mut rtts: Vec<Duration>) -> (f64, f64) {
        rtts.sort();
        let at = |q: usize| rtts[(rtts.len() * q / 100).min(rtts.len() - 1)].as_secs_f64() * 1e6;
        (at(50), at(99))
    }

    /// For the async contenders. `send(flush)` queues one message and, when `flush`, writes
    /// out everything queued; `recv()` waits for one echoed message.
    ///
    /// Round trips: warm-up, then sequential send + flush + receive. Pipelined: a writer and a
    /// reader run concurrently (joined in this task, as a pipelining user writes it); the writer
    /// keeps at most `window` messages in flight, queues as many as the window allows and
    /// flushes once per burst.
    async fn measure<S, R, FS, FR>(plan: Plan, mut send: FS, mut recv: FR) -> Sample
    where
        FS: FnMut(bool) -> S,
        FR: FnMut() -> R,
        S: Future<Output = ()> + Send,
        R: Future<Output = ()> + Send,
    {
        for _ in 0..plan.warmup {
            send(true).await;
            recv().await;
        }
        let mut rtts = Vec::with_capacity(plan.round_trips);
        let phase = Instant::now();
        for i in 0..plan.round_trips {
            if i >= plan.min_round_trips && phase.elapsed() > plan.phase_cap {
                break;
            }
            let start = Instant::now();
            send(true).await;
            recv().await;
            rtts.push(start.elapsed());
        }
        let (p50, p99) = percentiles(rtts);

        let n = plan.pipelined;
        let permits = Semaphore::new(plan.window);
        // Atomics only so that the future is `Send` (for `tokio::spawn`): one task uses them.
        let sent = AtomicUsize::new(0);
        let stop = AtomicBool::new(false);
        let start = Instant::now();
        let writer = async {
            while !stop.load(Relaxed) && sent.load(Relaxed) < n {
                permits.acquire().await.unwrap().forget();
                if stop.load(Relaxed) {
                    break;
                }
                // The whole burst the window allows now; the last message flushes.
                let more = permits.available_permits().min(n - sent.load(Relaxed) - 1);
                if more > 0 {
                    permits.acquire_many(more as u32).await.unwrap().forget();
                }
                for i in 0..=more {
                    sent.fetch_add(1, Relaxed);
                    send(i == more).await;
                }
            }
        };
        let reader = async {
            let mut received = 0usize;
            while received < n && !(stop.load(Relaxed) && received >= sent.load(Relaxed)) {
                recv().await;
                received += 1;
                permits.add_permits(1);
                if start.elapsed() > plan.phase_cap {
                    stop.store(true, Relaxed);
                }
            }
            (received, start.elapsed())
        };
        let ((), (received, elapsed)) = futures::join!(writer, reader);
        Sample {
            p50,
            p99,
            messages_per_sec: received as f64 / elapsed.as_secs_f64(),
            idle_p50: f64::NAN,
        }
    }

    /// For the plain-thread contenders, whose `send` never blocks (it queues for the
    /// connection's own thread) and whose `recv` blocks: the same phases as [`measure`].
    fn measure_blocking(plan: Plan, mut send: impl FnMut(), mut recv: impl FnMut()) -> Sample {
        for _ in 0..plan.warmup {
            send();
            recv();
        }
        let mut rtts = Vec::with_capacity(plan.round_trips);
        let phase = Instant::now();
        for i in 0..plan.round_trips {
            if i >= plan.min_round_trips && phase.elapsed() > plan.phase_cap {
                break;
            }
            let start = Instant::now();
            send();
            recv();
            rtts.push(start.elapsed());
        }
        let (p50, p99) = percentiles(rtts);

        let n = plan.pipelined;
        let (mut sent, mut received, mut stop) = (0usize, 0usize, false);
        let start = Instant::now();
        while received < n && !(stop && received >= sent) {
            while !stop && sent < n && sent - received < plan.window {
                send();
                sent += 1;
            }
            recv();
            received += 1;
            if start.elapsed() > plan.phase_cap {
                stop = true;
            }
        }
        let messages_per_sec = received as f64 / start.elapsed().as_secs_f64();

        // Round trips after a pause: what a client that polls on a timer costs when a message
        // is sent at an arbitrary moment.
        let mut idle = Vec::with_capacity(plan.idle_round_trips);
        let phase = Instant::now();
        for i in 0..plan.idle_round_trips {
            if i >= 3 && phase.elapsed() > plan.phase_cap {
                break;
            }
            std::thread::sleep(IDLE_GAP);
            let start = Instant::now();
            send();
            recv();
            idle.push(start.elapsed());
        }
        let (idle_p50, _) = percentiles(idle);
        Sample {
            p50,
            p99,
            messages_per_sec,
            idle_p50,
        }
    }

    // ---------------------------------------------------------------------------------------
    // The contenders.

    /// The raw TCP echo server: `u32` big-endian length, then the payload; buffered both ways
    /// and flushed whenever no further complete frame is already buffered.
    async fn tcp_echo() -> SocketAddr {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                stream.set_nodelay(true).unwrap();
                tokio::spawn(async move {
                    let (read, write) = stream.into_split();
                    let mut read = BufReader::with_capacity(128 << 10, read);
                    let mut write = BufWriter::with_capacity(128 << 10, write);
                    let mut buf = Vec::new();
                    loop {
                        let Ok(len) = read.read_u32().await else {
                            return;
                        };
                        buf.resize(len as usize, 0);
                        if read.read_exact(&mut buf).await.is_err() {
                            return;
                        }
                        if write.write_u32(len).await.is_err()
                            || write.write_all(&buf).await.is_err()
                        {
                            return;
                        }
                        let buffered = read.buffer();
                        let next_complete = buffered.len() >= 4
                            && buffered.len()
                                >= 4 + u32::from_be_bytes(buffered[..4].try_into().unwrap())
                                    as usize;
                        if !next_complete && write.flush().await.is_err() {
                            return;
                        }
                    }
                });
            }
        });
        addr
    }

    async fn bench_tcp(addr: SocketAddr, size: usize, plan: Plan) -> Sample {
        let stream = TcpStream::connect(addr).await.unwrap();
        stream.set_nodelay(true).unwrap();
        let (read, write) = stream.into_split();
        let read = Mutex::new((BufReader::with_capacity(128 << 10, read), vec![0u8; size]));
        let write = Mutex::new(BufWriter::with_capacity(128 << 10, write));
        let mut frame = (size as u32).to_be_bytes().to_vec();
        frame.extend_from_slice(&vec![7u8; size]);
        measure(
            plan,
            |flush| {
                let (frame, write) = (&frame, &write);
                async move {
                    let mut write = write.lock().await;
                    write.write_all(frame).await.unwrap();
                    if flush {
                        write.flush().await.unwrap();
                    }
                }
            },
            || async {
                let mut guard = read.lock().await;
                let (read, buf) = &mut *guard;
                let len = read.read_u32().await.unwrap() as usize;
                read.read_exact(&mut buf[..len]).await.unwrap();
            },
        )
        .await
    }

    async fn bench_tungstenite(url: String, size: usize, plan: Plan) -> Sample {
        let addr = url.trim_start_matches("ws://").split('/').next().unwrap();
        let stream = TcpStream::connect(addr).await.unwrap();
        stream.set_nodelay(true).unwrap();
        let config =
            tungstenite::protocol::WebSocketConfig::default().max_message_size(Some(64 << 20));
        let (ws, _) = tokio_tungstenite::client_async_with_config(&url, stream, Some(config))
            .await
            .unwrap();
        let (sink, stream) = ws.split();
        let (sink, stream) = (Mutex::new(sink), Mutex::new(stream));
        let payload = tungstenite::Bytes::from(vec![7u8; size]);
        let sample = measure(
            plan,
            |flush| {
                let message = tungstenite::Message::Binary(payload.clone());
                let sink = &sink;
                async move {
                    let mut sink = sink.lock().await;
                    sink.feed(message).await.unwrap();
                    if flush {
                        sink.flush().await.unwrap();
                    }
                }
            },
            || async {
                while !stream
                    .lock()
                    .await
                    .next()
                    .await
                    .unwrap()
                    .unwrap()
                    .is_binary()
                {}
            },
        )
        .await;
        // Close cleanly now, so that no teardown overlaps the next measurement.
        let _ = sink.lock().await.close().await;
        let mut stream = stream.into_inner();
        let _ = tokio::time::timeout(Duration::from_secs(1), async {
            while let Some(Ok(_)) = stream.next().await {}
        })
        .await;
        sample
    }

    /// The defaults, as a user has them (heartbeat on; 64 MiB messages allowed).
    fn unisock_options() -> unisock::Options {
        unisock::Options::default()
    }

    /// `unisock serve` in this process (on the servers' runtime), answering on `/echo` with
    /// acknowledged sessions allowed (its defaults).
    #[cfg(feature = "server")]
    async fn serve_echo() -> SocketAddr {
        let server = unisock::server::Server::bind(unisock::server::ServerConfig {
            addr: "127.0.0.1:0".parse().unwrap(),
            ..Default::default()
        })
        .await
        .expect("bind unisock serve");
        let addr = server.local_addr();
        tokio::spawn(server.run(std::future::pending::<()>()));
        addr
    }

    /// With `options.session` set, the connection must run an acknowledged session (checked),
    /// so that the session pair never silently measures plain WebSocket twice.
    async fn bench_unisock(
        url: String,
        size: usize,
        plan: Plan,
        options: unisock::Options,
    ) -> Sample {
        let session = options.session.is_some();
        let (tx, mut rx) = unisock::connect(&url, options).await.unwrap();
        let open = rx.next().await;
        assert!(
            matches!(open, Some(unisock::Event::Open { .. })),
            "{open:?}"
        );
        if session {
            let mode = tokio::time::timeout(Duration::from_secs(5), rx.next()).await;
            assert!(
                matches!(
                    mode,
                    Ok(Some(unisock::Event::Session {
                        acknowledged: true,
                        ..
                    }))
                ),
                "{mode:?}"
            );
        }
        let (tx, rx) = (Mutex::new(tx), Mutex::new(rx));
        // Like tokio-tungstenite's, a clone of the message shares the payload (no copy).
        let message = unisock::Message::binary(vec![7u8; size]);
        let sample = measure(
            plan,
            |flush| {
                let message = message.clone();
                let tx = &tx;
                async move {
                    let mut tx = tx.lock().await;
                    tx.feed(message).await.unwrap();
                    if flush {
                        tx.flush().await.unwrap();
                    }
                }
            },
            || async {
                let event = rx.lock().await.next().await;
                assert!(
                    matches!(event, Some(unisock::Event::Message(_))),
                    "{event:?}"
                );
            },
        )
        .await;
        let _ = tx.lock().await.close(1000, "");
        let mut rx = rx.into_inner();
        let _ = tokio::time::timeout(Duration::from_secs(1), async {
            while rx.next().await.is_some() {}
        })
        .await;
        sample
    }

    /// The callback/polling API from a plain thread, no runtime: blocking `recv`.
    fn bench_socket_thread(url: &str, size: usize, plan: Plan) -> Sample {
        let socket = unisock::Socket::connect(url, unisock_options()).unwrap();
        let open = socket.recv_timeout(Duration::from_secs(5));
        assert!(
            matches!(open, Ok(Some(unisock::Event::Open { .. }))),
            "{open:?}"
        );
        let message = unisock::Message::binary(vec![7u8; size]);
        let sample = measure_blocking(
            plan,
            // Never waits: queued for the connection's thread.
            || socket.send(message.clone()).unwrap(),
            || {
                let event = socket.recv_timeout(Duration::from_secs(10));
                assert!(
                    matches!(event, Ok(Some(unisock::Event::Message(_)))),
                    "{event:?}"
                );
            },
        );
        let _ = socket.close(1000, "");
        let deadline = Instant::now() + Duration::from_secs(1);
        while let Ok(Some(event)) =
            socket.recv_timeout(deadline.saturating_duration_since(Instant::now()))
        {
            if matches!(event, unisock::Event::Close(_)) {
                break;
            }
        }
        sample
    }

    /// tokio-tungstenite behind a plain thread, as a user would write it without unisock: a
    /// thread running a current-thread runtime with the connection's task, which writes what
    /// arrives on an unbounded channel (every message already there, then one flush) and
    /// hands every received message to a blocking std channel.
    fn bench_tungstenite_thread(url: &str, size: usize, plan: Plan) -> Sample {
        let (out_tx, mut out_rx) = tokio::sync::mpsc::unbounded_channel::<tungstenite::Message>();
        let (in_tx, in_rx) = std::sync::mpsc::channel::<tungstenite::Message>();
        let url = url.to_owned();
        let io = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async move {
                let addr = url.trim_start_matches("ws://").split('/').next().unwrap();
                let stream = TcpStream::connect(addr).await.unwrap();
                stream.set_nodelay(true).unwrap();
                let config = tungstenite::protocol::WebSocketConfig::default()
                    .max_message_size(Some(64 << 20));
                let (mut ws, _) =
                    tokio_tungstenite::client_async_with_config(&url, stream, Some(config))
                        .await
                        .unwrap();
                loop {
                    tokio::select! {
                        outgoing = out_rx.recv() => {
                            let Some(message) = outgoing else { break };
                            ws.feed(message).await.unwrap();
                            while let Ok(message) = out_rx.try_recv() {
                                ws.feed(message).await.unwrap();
                            }
                            ws.flush().await.unwrap();
                        }
                        incoming = ws.next() => match incoming {
                            Some(Ok(message)) if message.is_binary() => {
                                if in_tx.send(message).is_err() {
                                    break;
                                }
                            }
                            Some(Ok(_)) => {}
                            _ => break,
                        },
                    }
                }
                // Close cleanly now, so that no teardown overlaps the next measurement.
                let _ = ws.close(None).await;
                let _ = tokio::time::timeout(Duration::from_secs(1), async {
                    while let Some(Ok(_)) = ws.next().await {}
                })
                .await;
            });
        });
        let payload = tungstenite::Bytes::from(vec![7u8; size]);
        let sample = measure_blocking(
            plan,
            || {
                out_tx
                    .send(tungstenite::Message::Binary(payload.clone()))
                    .unwrap()
            },
            || {
                in_rx.recv_timeout(Duration::from_secs(10)).unwrap();
            },
        );
        drop(out_tx);
        io.join().unwrap();
        sample
    }

    /// ewebsock as its users use it: `connect_with_wakeup` (the variant that wakes a UI
    /// thread; here it unparks this thread) and `try_recv` on the receiver. Its wake-up runs
    /// just before the event is queued, so a wait re-checks at least every millisecond.
    fn bench_ewebsock(url: &str, size: usize, plan: Plan) -> Sample {
        let me = std::thread::current();
        let (mut sender, receiver) =
            ewebsock::connect_with_wakeup(url, ewebsock::Options::default(), move || me.unpark())
                .unwrap();
        let next_event = || {
            let deadline = Instant::now() + Duration::from_secs(10);
            loop {
                if let Some(event) = receiver.try_recv() {
                    return event;
                }
                assert!(Instant::now() < deadline, "ewebsock: no event in 10 s");
                std::thread::park_timeout(Duration::from_millis(1));
            }
        };
        let open = next_event();
        assert!(matches!(open, ewebsock::WsEvent::Opened), "{open:?}");
        let payload = vec![7u8; size];
        let sample = measure_blocking(
            plan,
            || sender.send(ewebsock::WsMessage::Binary(payload.clone())),
            || loop {
                match next_event() {
                    ewebsock::WsEvent::Message(ewebsock::WsMessage::Binary(_)) => return,
                    ewebsock::WsEvent::Message(_) => {}
                    other => panic!("ewebsock: {other:?}"),
                }
            },
        );
        // Dropping the sender closes the connection (its thread notices within its 10 ms read
        // timeout).
        drop(sender);
        sample
    }

    // ---------------------------------------------------------------------------------------
    // Reporting.

    struct Row {
        p50: f64,
        p99: f64,
        idle_p50: f64,
        messages_per_sec: f64,
        mb_per_sec: f64,
        rtt_ratio: f64,
        throughput_ratio: f64,
        /// Middle half (25th to 75th percentile) of the per-round ratios behind the medians
        /// above: how far one round's ratio wanders on this machine.
        rtt_spread: (f64, f64),
        throughput_spread: (f64, f64),
    }

    struct SizeResult {
        size: usize,
        plan: Plan,
        rows: Vec<Row>,
        /// The session pair, when both ran (the `server` feature, not filtered out).
        session: Option<SessionPair>,
    }

    /// Sessions on vs off against the same `unisock serve` echo: medians of per-round ratios.
    struct SessionPair {
        /// RTT p50 on / off (lower is better; 1.0 means sessions cost nothing).
        rtt_ratio: f64,
        /// RTT p50 off / on: the round trip's speed with sessions, relative (higher is better).
        rtt_speed: f64,
        /// Messages/s on / off (higher is better).
        throughput_ratio: f64,
        /// Middle halves of the per-round values of `rtt_speed` and `throughput_ratio`.
        rtt_speed_spread: (f64, f64),
        throughput_spread: (f64, f64),
    }

    /// The `q` quantile of `sorted`, linear between neighbours (0.5: the median); NaN for no
    /// values.
    fn quantile(sorted: &[f64], q: f64) -> f64 {
        if sorted.is_empty() {
            return f64::NAN;
        }
        let pos = q * (sorted.len() - 1) as f64;
        let (lo, hi) = (pos.floor() as usize, pos.ceil() as usize);
        sorted[lo] + (sorted[hi] - sorted[lo]) * (pos - lo as f64)
    }

    fn sorted(values: impl Iterator<Item = f64>) -> Vec<f64> {
        let mut v: Vec<f64> = values.collect();
        v.sort_by(|a, b| a.total_cmp(b));
        v
    }

    fn median(values: impl Iterator<Item = f64>) -> f64 {
        quantile(&sorted(values), 0.5)
    }

    /// The median of `values` and their middle half (25th to 75th percentile).
    fn median_and_spread(values: impl Iterator<Item = f64>) -> (f64, (f64, f64)) {
        let v = sorted(values);
        (quantile(&v, 0.5), (quantile(&v, 0.25), quantile(&v, 0.75)))
    }

    fn summarize(size: usize, plan: Plan, samples: &[[Sample; CONTENDERS.len()]]) -> SizeResult {
        let rows = (0..CONTENDERS.len())
            .map(|i| {
                let rate = median(samples.iter().map(|s| s[i].messages_per_sec));
                let (rtt_ratio, rtt_spread) =
                    median_and_spread(samples.iter().map(|s| s[i].p50 / s[TUNGSTENITE].p50));
                let (throughput_ratio, throughput_spread) = median_and_spread(
                    samples
                        .iter()
                        .map(|s| s[i].messages_per_sec / s[TUNGSTENITE].messages_per_sec),
                );
                Row {
                    p50: median(samples.iter().map(|s| s[i].p50)),
                    p99: median(samples.iter().map(|s| s[i].p99)),
                    idle_p50: median(samples.iter().map(|s| s[i].idle_p50)),
                    messages_per_sec: rate,
                    mb_per_sec: rate * size as f64 / 1e6,
                    rtt_ratio,
                    throughput_ratio,
                    rtt_spread,
                    throughput_spread,
                }
            })
            .collect();
        let ran = |c: usize| {
            samples
                .iter()
                .all(|s| s[c].p50 > 0.0 && s[c].messages_per_sec > 0.0)
        };
        let session = (ran(SESSION_OFF) && ran(SESSION_ON)).then(|| {
            let (rtt_speed, rtt_speed_spread) = median_and_spread(
                samples
                    .iter()
                    .map(|s| s[SESSION_OFF].p50 / s[SESSION_ON].p50),
            );
            let (throughput_ratio, throughput_spread) = median_and_spread(
                samples
                    .iter()
                    .map(|s| s[SESSION_ON].messages_per_sec / s[SESSION_OFF].messages_per_sec),
            );
            SessionPair {
                rtt_ratio: median(
                    samples
                        .iter()
                        .map(|s| s[SESSION_ON].p50 / s[SESSION_OFF].p50),
                ),
                rtt_speed,
                throughput_ratio,
                rtt_speed_spread,
                throughput_spread,
            }
        });
        SizeResult {
            size,
            plan,
            rows,
            session,
        }
    }

    fn human(size: usize) -> String {
        match size {
            s if s >= 1 << 20 => format!("{} MiB", s >> 20),
            s if s >= 1 << 10 => format!("{} KiB", s >> 10),
            s => format!("{s} B"),
        }
    }

    fn print_markdown(results: &[SizeResult], rounds: usize, elapsed: Duration) {
        println!(
            "# Native client benchmark ({rounds} round(s), interleaved, {:.0} s)\n",
            elapsed.as_secs_f64()
        );
        println!("Ratios: median of per-round ratios to tokio-tungstenite in the same round.\n");
        for result in results {
            println!(
                "## {} (up to {} round trips, {} pipelined messages, window {})\n",
                human(result.size),
                result.plan.round_trips,
                result.plan.pipelined,
                result.plan.window
            );
            println!(
                "| contender | RTT p50 | RTT p99 | msg/s | MB/s | RTT ratio | throughput ratio | \
                 RTT p50 after {} ms idle |",
                IDLE_GAP.as_millis()
            );
            println!("|---|---|---|---|---|---|---|---|");
            for c in MAIN {
                let (name, row) = (CONTENDERS[c], &result.rows[c]);
                println!(
                    "| {name} | {:.1} µs | {:.1} µs | {:.0} | {:.1} | {:.3} | {:.3} | {} |",
                    row.p50,
                    row.p99,
                    row.messages_per_sec,
                    row.mb_per_sec,
                    row.rtt_ratio,
                    row.throughput_ratio,
                    if row.idle_p50.is_nan() {
                        "—".to_owned()
                    } else {
                        format!("{:.1} µs", row.idle_p50)
                    }
                );
            }
            println!();
            if let Some(pair) = &result.session {
                println!("Acknowledged sessions, same `unisock serve` echo:\n");
                println!("| contender | RTT p50 | RTT p99 | msg/s | MB/s |");
                println!("|---|---|---|---|---|");
                for c in [SESSION_OFF, SESSION_ON] {
                    let row = &result.rows[c];
                    println!(
                        "| {} | {:.1} µs | {:.1} µs | {:.0} | {:.1} |",
                        CONTENDERS[c], row.p50, row.p99, row.messages_per_sec, row.mb_per_sec
                    );
                }
                println!(
                    "\nSessions on/off: RTT p50 {:.3}, throughput {:.3}\n",
                    pair.rtt_ratio, pair.throughput_ratio
                );
            }
        }
    }

    /// A JSON value, enough for the results file (no serde in this crate's dev-dependencies).
    enum Json {
        Num(f64),
        Str(String),
        Bool(bool),
        Arr(Vec<Json>),
        Obj(Vec<(&'static str, Json)>),
    }

    impl Json {
        fn str(s: impl Into<String>) -> Json {
            Json::Str(s.into())
        }

        /// Rounded to `digits` significant decimals (enough for the report, short to read).
        fn num(value: f64, decimals: i32) -> Json {
            let scale = 10f64.powi(decimals);
            Json::Num((value * scale).round() / scale)
        }

        fn write(&self, out: &mut String) {
            match self {
                Json::Num(n) if n.is_finite() => write!(out, "{n}").unwrap(),
                Json::Num(_) => out.push_str("null"),
                Json::Bool(b) => write!(out, "{b}").unwrap(),
                Json::Str(s) => {
                    out.push('"');
                    for c in s.chars() {
                        match c {
                            '"' => out.push_str("\\\""),
                            '\\' => out.push_str("\\\\"),
                            '\n' => out.push_str("\\n"),
                            c if (c as u32) < 0x20 => write!(out, "\\u{:04x}", c as u32).unwrap(),
                            c => out.push(c),
                        }
                    }
                    out.push('"');
                }
                Json::Arr(items) => {
                    out.push('[');
                    for (i, item) in items.iter().enumerate() {
                        if i > 0 {
                            out.push_str(", ");
                        }
                        item.write(out);
                    }
                    out.push(']');
                }
                Json::Obj(fields) => {
                    out.push_str("{\n");
                    for (i, (key, value)) in fields.iter().enumerate() {
                        if i > 0 {
                            out.push_str(",\n");
                        }
                        Json::str(*key).write(out);
                        out.push_str(": ");
                        value.write(out);
                    }
                    out.push_str("\n}");
                }
            }
        }
    }

    /// An object whose keys are data (series names, crate names), not field names.
    fn object(fields: Vec<(String, Json)>) -> Json {
        // Leaked: a handful of short strings, once per run.
        Json::Obj(
            fields
                .into_iter()
                .map(|(k, v)| (&*Box::leak(k.into_boxed_str()), v))
                .collect(),
        )
    }

    /// Versions of what was compared, read from Cargo.lock (so they never go stale).
    fn versions() -> Vec<(String, Json)> {
        let lock = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/Cargo.lock"))
            .unwrap_or_default();
        // (name, version, dependencies) per [[package]].
        let mut packages: Vec<(String, String, Vec<String>)> = Vec::new();
        let mut in_deps = false;
        for line in lock.lines() {
            let line = line.trim();
            if line == "[[package]]" {
                packages.push(Default::default());
                in_deps = false;
            } else if let Some(package) = packages.last_mut() {
                if let Some(name) = line.strip_prefix("name = ") {
                    package.0 = name.trim_matches('"').to_owned();
                } else if let Some(version) = line.strip_prefix("version = ") {
                    package.1 = version.trim_matches('"').to_owned();
                } else if line.starts_with("dependencies = [") {
                    in_deps = true;
                } else if in_deps && line.starts_with(']') {
                    in_deps = false;
                } else if in_deps {
                    package
                        .2
                        .push(line.trim_matches(|c| c == '"' || c == ',').to_owned());
                }
            }
        }
        let version_of = |name: &str| {
            packages
                .iter()
                .filter(|p| p.0 == name)
                .map(|p| p.1.clone())
                .collect::<Vec<_>>()
        };
        // The version `parent` depends on (Cargo.lock names it only when several exist).
        let dependency_of = |parent: &str, name: &str| {
            let parent = packages.iter().find(|p| p.0 == parent)?;
            let dep = parent
                .2
                .iter()
                .find(|d| d.as_str() == name || d.starts_with(&format!("{name} ")))?;
            match dep.split(' ').nth(1) {
                Some(version) => Some(version.to_owned()),
                None => version_of(name).into_iter().next(),
            }
        };
        let mut out = Vec::new();
        for name in ["unisock", "tokio-tungstenite", "tokio", "ewebsock"] {
            if let Some(version) = version_of(name).into_iter().next() {
                out.push((name.to_owned(), Json::str(version)));
            }
        }
        if let Some(version) = dependency_of("tokio-tungstenite", "tungstenite") {
            out.push((
                "tungstenite (tokio-tungstenite, unisock)".into(),
                Json::str(version),
            ));
        }
        if let Some(version) = dependency_of("ewebsock", "tungstenite") {
            out.push(("tungstenite (ewebsock)".into(), Json::str(version)));
        }
        if let Ok(output) = std::process::Command::new("rustc")
            .arg("--version")
            .output()
        {
            let version = String::from_utf8_lossy(&output.stdout).trim().to_owned();
            if !version.is_empty() {
                out.push(("rustc".into(), Json::str(version)));
            }
        }
        out
    }

    fn to_json(results: &[SizeResult], rounds: usize, quick: bool) -> String {
        let sizes: Vec<String> = results.iter().map(|r| human(r.size)).collect();
        let categories = || Json::Arr(sizes.iter().map(Json::str).collect());
        let series = |contenders: &[usize], value: &dyn Fn(&Row) -> f64, decimals: i32| {
            object(
                contenders
                    .iter()
                    .map(|&c| {
                        let values = results
                            .iter()
                            .map(|r| Json::num(value(&r.rows[c]), decimals))
                            .collect();
                        (CONTENDERS[c].to_owned(), Json::Arr(values))
                    })
                    .collect(),
            )
        };
        let chart = |file: &str,
                     title: &str,
                     y_label: &str,
                     series: Json,
                     reference: Option<f64>,
                     log_y: bool| {
            let mut fields = vec![
                ("file", Json::str(file)),
                ("title", Json::str(title)),
                ("y_label", Json::str(y_label)),
                ("categories", categories()),
                ("series", series),
            ];
            if let Some(reference) = reference {
                fields.push(("reference", Json::Num(reference)));
            }
            fields.push(("log_y", Json::Bool(log_y)));
            Json::Obj(fields)
        };
        let not_ewebsock = [RAW_TCP, UNISOCK_ASYNC, UNISOCK_SOCKET, TUNGSTENITE_THREAD];
        let all = MAIN;
        let mut charts = vec![
            chart(
                "native_rtt_ratio",
                "Round trip p50, ratio to raw tokio-tungstenite (lower is better)",
                "ratio",
                series(&not_ewebsock, &|r| r.rtt_ratio, 3),
                Some(1.0),
                false,
            ),
            chart(
                "native_throughput_ratio",
                "Pipelined messages/s, ratio to raw tokio-tungstenite (higher is better)",
                "ratio",
                series(&not_ewebsock, &|r| r.throughput_ratio, 3),
                Some(1.0),
                false,
            ),
            chart(
                "native_rtt_p50",
                "Round trip p50 in µs, every contender (log scale, lower is better)",
                "µs",
                series(&all, &|r| r.p50, 1),
                None,
                true,
            ),
            chart(
                "native_throughput_mbps",
                "Pipelined throughput in MB/s, every contender (log scale, higher is better)",
                "MB/s",
                series(&all, &|r| r.mb_per_sec, 2),
                None,
                true,
            ),
        ];
        let with_sessions = results.iter().any(|r| r.session.is_some());
        if with_sessions {
            let pair_series = |value: &dyn Fn(&SessionPair) -> f64| {
                Json::Arr(
                    results
                        .iter()
                        .map(|r| {
                            r.session
                                .as_ref()
                                .map_or(Json::Num(f64::NAN), |p| Json::num(value(p), 3))
                        })
                        .collect(),
                )
            };
            charts.push(chart(
                "native_session_overhead",
                "Acknowledged sessions on / off, same unisock serve echo (1.0: no cost)",
                "ratio",
                object(vec![
                    ("RTT p50 on/off".to_owned(), pair_series(&|p| p.rtt_ratio)),
                    (
                        "throughput on/off".to_owned(),
                        pair_series(&|p| p.throughput_ratio),
                    ),
                ]),
                Some(1.0),
                false,
            ));
        }

        let mut rtt_rows = Vec::new();
        let mut rate_rows = Vec::new();
        let mut idle_rows = Vec::new();
        for result in results {
            for c in MAIN {
                let row = &result.rows[c];
                let name = || Json::str(CONTENDERS[c]);
                rtt_rows.push(Json::Arr(vec![
                    Json::str(human(result.size)),
                    name(),
                    Json::num(row.p50, 1),
                    Json::num(row.p99, 1),
                    Json::num(row.rtt_ratio, 3),
                ]));
                if !row.idle_p50.is_nan() {
                    idle_rows.push(Json::Arr(vec![
                        Json::str(human(result.size)),
                        name(),
                        Json::num(row.idle_p50, 1),
                    ]));
                }
                rate_rows.push(Json::Arr(vec![
                    Json::str(human(result.size)),
                    name(),
                    Json::num(row.messages_per_sec, 0),
                    Json::num(row.mb_per_sec, 2),
                    Json::num(row.throughput_ratio, 3),
                ]));
            }
        }
        let table = |title: &str, columns: &[&str], rows: Vec<Json>, note: &str| {
            Json::Obj(vec![
                ("title", Json::str(title)),
                (
                    "columns",
                    Json::Arr(columns.iter().map(|c| Json::str(*c)).collect()),
                ),
                ("rows", Json::Arr(rows)),
                ("note", Json::str(note)),
            ])
        };
        let mut tables = vec![
            table(
                "Round trip (sequential ping-pong)",
                &[
                    "size",
                    "contender",
                    "p50 µs",
                    "p99 µs",
                    "p50 ratio to tokio-tungstenite",
                ],
                rtt_rows,
                "p50 and p99 are medians over rounds; the ratio is the median of per-round ratios.",
            ),
            table(
                "Pipelined throughput",
                &[
                    "size",
                    "contender",
                    "messages/s",
                    "MB/s",
                    "ratio to tokio-tungstenite",
                ],
                rate_rows,
                "Medians over rounds; the ratio is the median of per-round ratios (higher is better).",
            ),
            table(
                &format!(
                    "Round trip after {} ms of silence (plain-thread APIs)",
                    IDLE_GAP.as_millis()
                ),
                &["size", "contender", "p50 µs"],
                idle_rows,
                "Each round trip starts after a pause, as when a UI or game loop sends at an \
                 arbitrary moment; this is where a client that polls on a timer pays.",
            ),
        ];
        if with_sessions {
            let rows = results
                .iter()
                .filter_map(|r| {
                    let pair = r.session.as_ref()?;
                    let (off, on) = (&r.rows[SESSION_OFF], &r.rows[SESSION_ON]);
                    Some(Json::Arr(vec![
                        Json::str(human(r.size)),
                        Json::num(off.p50, 1),
                        Json::num(on.p50, 1),
                        Json::num(pair.rtt_ratio, 3),
                        Json::num(off.messages_per_sec, 0),
                        Json::num(on.messages_per_sec, 0),
                        Json::num(pair.throughput_ratio, 3),
                    ]))
                })
                .collect();
            tables.push(table(
                "Acknowledged sessions: on vs off (same unisock serve echo)",
                &[
                    "size",
                    "RTT p50 µs, off",
                    "RTT p50 µs, on",
                    "RTT p50 on/off",
                    "messages/s, off",
                    "messages/s, on",
                    "throughput on/off",
                ],
                rows,
                "unisock's async API with default options against an in-process unisock serve \
                 /echo, without and with Options::session (unisock.v1); both run in every round, \
                 interleaved with the other contenders. Values are medians over rounds; ratios \
                 are medians of the per-round on/off ratios (RTT: lower is better; throughput: \
                 higher is better).",
            ));
        }

        let mut targets = Vec::new();
        let mut missed = Vec::new();
        // `spread`: the middle half of the per-round values behind `value`, where it is a
        // median of per-round ratios.
        let mut target =
            |what: String, value: f64, goal: &str, met: bool, spread: Option<(f64, f64)>| {
                if !met {
                    missed.push(format!("{what}: {value:.3} (target {goal})"));
                }
                let mut fields = vec![
                    ("what", Json::str(what)),
                    ("value", Json::num(value, 3)),
                    ("target", Json::str(goal)),
                    ("met", Json::Bool(met)),
                ];
                if let Some((low, high)) = spread {
                    fields.push((
                        "spread",
                        Json::Arr(vec![Json::num(low, 3), Json::num(high, 3)]),
                    ));
                }
                targets.push(Json::Obj(fields));
            };
        for (label, c) in [
            ("unisock async", UNISOCK_ASYNC),
            (
                "unisock Socket (plain thread; vs in-task tokio-tungstenite)",
                UNISOCK_SOCKET,
            ),
        ] {
            for result in results {
                let row = &result.rows[c];
                let size = human(result.size);
                target(
                    format!("{label} RTT p50 / tokio-tungstenite, {size}"),
                    row.rtt_ratio,
                    "<= 1.05",
                    row.rtt_ratio <= 1.05,
                    Some(row.rtt_spread),
                );
                target(
                    format!("{label} throughput / tokio-tungstenite, {size}"),
                    row.throughput_ratio,
                    ">= 0.95",
                    row.throughput_ratio >= 0.95,
                    Some(row.throughput_spread),
                );
            }
        }
        for result in results {
            let (socket, ewebsock) = (&result.rows[UNISOCK_SOCKET], &result.rows[EWEBSOCK]);
            let ratio = socket.p50 / ewebsock.p50;
            target(
                format!(
                    "unisock Socket thread RTT p50 / ewebsock RTT p50 (back-to-back ping-pong), {}",
                    human(result.size)
                ),
                ratio,
                "< 0.5",
                ratio < 0.5,
                None,
            );
            let ratio = socket.idle_p50 / ewebsock.idle_p50;
            target(
                format!(
                    "unisock Socket thread RTT p50 / ewebsock RTT p50 (after {} ms idle), {}",
                    IDLE_GAP.as_millis(),
                    human(result.size)
                ),
                ratio,
                "< 0.5",
                ratio < 0.5,
                None,
            );
        }

        for result in results {
            let Some(pair) = &result.session else {
                continue;
            };
            let size = human(result.size);
            target(
                format!("sessions on/off throughput, {size}"),
                pair.throughput_ratio,
                ">= 0.9",
                pair.throughput_ratio >= 0.9,
                Some(pair.throughput_spread),
            );
            target(
                format!("sessions on/off RTT speed (off/on), {size}"),
                pair.rtt_speed,
                ">= 0.9",
                pair.rtt_speed >= 0.9,
                Some(pair.rtt_speed_spread),
            );
        }

        let plan_text = results
            .iter()
            .map(|r| {
                format!(
                    "{}: up to {} round trips and {} pipelined messages, window {}",
                    human(r.size),
                    r.plan.round_trips,
                    r.plan.pipelined,
                    r.plan.window
                )
            })
            .collect::<Vec<_>>()
            .join("; ");
        let cap = results[0].plan.phase_cap.as_millis();
        let idle = IDLE_GAP.as_millis();
        let sessions = if with_sessions {
            "Two more contenders, in the same rounds, measure acknowledged sessions: unisock's \
             async API against an in-process unisock serve /echo (on the servers' runtime), \
             without and with Options::session; their ratio on/off isolates what sessions cost. "
        } else {
            ""
        };
        let method = format!(
            "Release build, loopback, TCP_NODELAY on every socket we open. One in-process echo \
             server (tokio-tungstenite, on its own one-worker runtime) serves every WebSocket \
             contender; a length-prefixed raw TCP echo on the same runtime is the physical \
             floor. The async contenders (raw TCP, tokio-tungstenite, unisock's async API) run \
             on one current-thread tokio runtime; unisock's Socket, ewebsock and a hand-rolled \
             tokio-tungstenite thread run from a plain thread (their own I/O threads behind \
             them). Each measurement opens a fresh \
             connection, warms up, measures sequential round trips (send, flush, wait for the \
             echo), then pipelined throughput: a writer and a reader run concurrently, the \
             writer keeping at most a window of messages in flight and flushing once per \
             burst. The plain-thread contenders then also measure round trips that each start \
             after {idle} ms of silence. unisock runs with its default options (heartbeat on). \
             {sessions}{plan_text}; every phase also stops after {cap} ms. {rounds} round(s); \
             each round runs every contender once, in an order shuffled anew every round \
             (fixed seeds: every run uses the same orders), so that no contender always follows \
             the same one (on this virtual machine how fast a thread wakes depends on how busy \
             the CPU just was: a round trip right after the polling ewebsock measured 42 µs, \
             after an idle contender 145 µs). Values \
             are medians over rounds; ratios are medians of the per-round ratios to raw \
             tokio-tungstenite (RTT: lower is better; throughput: higher is better).{}",
            if quick {
                " SMOKE RUN (UNISOCK_BENCH_QUICK): too short to mean anything."
            } else {
                ""
            }
        );

        let mut notes = vec![
            Json::str(
                "ewebsock (native, tungstenite backend, default options) is used as its users \
                 use it: ewebsock::connect_with_wakeup, its wake-up callback unparking the \
                 measuring thread, which then calls try_recv (re-checking at least every \
                 millisecond, because ewebsock calls the wake-up just before it queues the \
                 event). Its I/O thread blocks in a read with a 10 ms timeout and only looks at \
                 outgoing messages between reads, one message per read: that polling, not the \
                 wake-up, sets its pipelined rate and its round trip after a pause. In \
                 back-to-back ping-pong its I/O thread, which yields between iterations, often \
                 picks up the next message before it blocks in its next read, so its p50 there \
                 is close to the others' while its p99 shows the 10 ms timeout. It opens its TCP \
                 socket itself and offers no TCP_NODELAY option, so its socket keeps Nagle on.",
            ),
            Json::str(
                "unisock Socket (thread) is measured from a plain thread with no runtime: \
                 send() queues for unisock's background I/O thread (natively a direct write \
                 from the sending thread made a stream of sends slower, see Socket::send) and \
                 recv() parks until that thread delivers, so every round trip includes two \
                 cross-thread wake-ups. A stream is handed over in batches: the I/O thread \
                 wakes a parked reader once it has read all the socket holds, not per message \
                 (src/transport/wake_batch.rs; pipelined 16 B - 64 KiB about 1.6 - 1.9x the \
                 messages/s of waking per message, round trips unchanged). Its \
                 ratios are against tokio-tungstenite used in-task on a runtime, which has no \
                 such hop; the like-for-like comparisons for the thread API are ewebsock and \
                 tokio-tungstenite (thread, hand-rolled): what a user writes without unisock \
                 (the connection's task on a current-thread runtime of its own thread, an \
                 unbounded channel in, every queued message written before one flush, a std \
                 channel out), with the same two wake-ups per round trip. \
                 Measured and not kept: writing each send directly from the sending thread \
                 (round trips no faster, 64 KiB throughput lower), doing so only while the \
                 I/O thread is idle (16 B round trip about 0.1 lower, pipelined 16 B - 1 KiB \
                 throughput 0.1 - 0.15 lower) and spinning briefly in \
                 recv() before parking (everything slower: on two cores the spinning thread \
                 takes the CPU that the I/O thread and the server need). Also measured and \
                 not kept: letting a thread blocked in recv() drive the connection itself \
                 (unisock's background runtime as a current-thread runtime handed over to \
                 it): 16 B / 1 KiB round trips about 0.3 lower, but a thread alternating \
                 send bursts and recv() then writes only while it waits, and pipelined 64 KiB \
                 / 1 MiB fell to 0.8.",
            ),
            Json::str(
                "unisock's async API writes a message straight into the connection when \
                 nothing is queued (src/session/direct.rs): its Sink writes in start_send and \
                 flushes in poll_flush, from the measuring task, as tokio-tungstenite does. \
                 Reading stays with the connection's own task (the driver), which also runs \
                 the heartbeat and reconnects, so a round trip still includes one task \
                 wake-up that tokio-tungstenite, read directly in the measuring task, does \
                 not have. The async contenders run in a spawned task.",
            ),
            Json::str(
                "Instructions per 16 B message on the client (callgrind, pipelined echo with \
                 256 in flight against unisock serve, 21 000 messages): raw tokio-tungstenite \
                 16 100, of which 12 100 are tungstenite zero-filling its 128 KiB read buffer \
                 before every read; unisock's async API 12 700, of which 5 500 are that fill \
                 at the 64 KiB unisock sets (src/transport/native.rs, READ_CHUNK). Without the \
                 fill unisock does about 3 300 more per message than tokio-tungstenite (the \
                 connection task's poll, the event and command channels, the direct-write \
                 lock and accounting, the heartbeat timer), spread over some 40 functions of \
                 30 - 350 each; with it, 3 400 fewer.",
            ),
        ];
        if with_sessions {
            notes.push(Json::str(
                "The session pair measures sessions end to end, client and unisock serve \
                 together: unisock serve batches its writes the same way with and without \
                 sessions (one writer, up to 64 messages per flush, src/server/batch.rs), and \
                 both sides of the pair use the same server, runtime and client options; the \
                 only difference is Options::session. Session messages are written \
                 directly by the sender, as plain ones are; each carries a trailer (sequence \
                 number and ack), appended in place when the payload's buffer is not shared. \
                 This benchmark sends clones of one Message, so every session send copies \
                 the payload once (at 1 MiB about 8% of the CPU samples); a freshly built \
                 payload per send is not copied.",
            ));
            notes.push(Json::str(
                "What sessions cost per 16 B round trip (callgrind, ping-pong against unisock \
                 serve in its own process, not counting tungstenite's read-buffer fill): the \
                 client runs 13 340 instructions with sessions and 11 860 without, unisock \
                 serve 10 310 and 8 310. The 3 500 are spread thin: framing a message with its \
                 trailer (about 350 per side), parsing the trailer (about 265 per side), the \
                 replay buffer and acks (about 150 per side), and unisock serve's session loop, \
                 which waits on one more source of wake-ups per round (about 700). At 1 MiB, \
                 copying a shared payload takes about 15 µs here (once on each side), a small \
                 part of the on/off difference, which moves from run to run (the pair alone, \
                 three runs: RTT on/off 0.97 - 1.17, throughput 0.81 - 0.89).",
            ));
        }
        if !missed.is_empty() {
            notes.push(Json::str(format!("Missed: {}.", missed.join("; "))));
        }

        let doc = Json::Obj(vec![
            ("benchmark", Json::str("native_client")),
            (
                "title",
                Json::str("Native client: unisock vs raw tokio-tungstenite, raw TCP and ewebsock"),
            ),
            ("method", Json::Str(method)),
            ("versions", object(versions())),
            ("tables", Json::Arr(tables)),
            ("charts", Json::Arr(charts)),
            ("targets", Json::Arr(targets)),
            ("notes", Json::Arr(notes)),
        ]);
        let mut out = String::new();
        doc.write(&mut out);
        out.push('\n');
        out
    }
}
