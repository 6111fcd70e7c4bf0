//! Native client benchmark: unisock beside what a user would otherwise pick, in one run,
//! against the same loopback echo servers, reported as ratios.
//!
//! Contenders: raw TCP with a length prefix (the physical floor), raw tokio-tungstenite,
//! unisock's async API, and unisock's `Socket` from a plain thread. Rounds interleave the
//! contenders (A B C D A B C D …); the tables give medians over rounds and the median of the
//! per-round ratios to raw tokio-tungstenite.
//!
//! `cargo bench --bench native_client` (full) or `UNISOCK_BENCH_QUICK=1 cargo bench …` (smoke).

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

/// Everything runs on one current-thread runtime with strictly sequential send / receive
/// closures, so a `RefCell` borrow held across an await never meets another borrow.
#[cfg(not(target_arch = "wasm32"))]
#[allow(clippy::await_holding_refcell_ref)]
mod native {
    use std::net::SocketAddr;
    use std::time::{Duration, Instant};

    use super::echo_server;
    use futures::{SinkExt, StreamExt};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::{TcpListener, TcpStream};
    use tokio_tungstenite::tungstenite;

    const SIZES: [usize; 4] = [16, 1 << 10, 64 << 10, 1 << 20];
    const CONTENDERS: [&str; 4] = [
        "raw TCP",
        "tokio-tungstenite",
        "unisock async",
        "unisock Socket (thread)",
    ];

    /// Work per measurement, scaled so that each takes a similar time.
    fn round_trips(size: usize, quick: bool) -> usize {
        let base = if quick { 200 } else { 2000 };
        (base * 1024 / size.max(1024)).clamp(20, base)
    }

    #[derive(Clone, Copy, Default)]
    struct Sample {
        p50: Duration,
        p99: Duration,
        messages_per_sec: f64,
    }

    pub fn main() {
        let quick = std::env::var_os("UNISOCK_BENCH_QUICK").is_some();
        let rounds = if quick { 2 } else { 5 };
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

        println!(
            "# Native client benchmark ({} rounds, interleaved)\n",
            rounds
        );
        for size in SIZES {
            let n = round_trips(size, quick);
            let mut samples: Vec<[Sample; 4]> = Vec::new();
            for _ in 0..rounds {
                let raw_tcp = client_rt.block_on(bench_tcp(tcp_addr, size, n));
                let tungstenite = client_rt.block_on(bench_tungstenite(&url, size, n));
                let unisock_async = client_rt.block_on(bench_unisock(&url, size, n));
                let unisock_thread = bench_socket_thread(&url, size, n);
                samples.push([raw_tcp, tungstenite, unisock_async, unisock_thread]);
            }
            report(size, n, &samples);
        }
    }

    fn report(size: usize, n: usize, samples: &[[Sample; 4]]) {
        println!(
            "## {} (round trips and pipelined throughput, {n} messages)\n",
            human(size)
        );
        println!("| contender | RTT p50 | RTT p99 | msg/s | MB/s | RTT ratio | throughput ratio |");
        println!("|---|---|---|---|---|---|---|");
        for (i, name) in CONTENDERS.iter().enumerate() {
            let p50 = median(samples.iter().map(|s| s[i].p50.as_secs_f64()));
            let p99 = median(samples.iter().map(|s| s[i].p99.as_secs_f64()));
            let rate = median(samples.iter().map(|s| s[i].messages_per_sec));
            let rtt_ratio = median(
                samples
                    .iter()
                    .map(|s| s[i].p50.as_secs_f64() / s[1].p50.as_secs_f64()),
            );
            let rate_ratio = median(
                samples
                    .iter()
                    .map(|s| s[i].messages_per_sec / s[1].messages_per_sec),
            );
            println!(
            "| {name} | {:.1} µs | {:.1} µs | {:.0} | {:.1} | {rtt_ratio:.2} | {rate_ratio:.2} |",
            p50 * 1e6,
            p99 * 1e6,
            rate,
            rate * size as f64 / 1e6,
        );
        }
        println!();
    }

    fn median(values: impl Iterator<Item = f64>) -> f64 {
        let mut v: Vec<f64> = values.collect();
        v.sort_by(|a, b| a.total_cmp(b));
        v[v.len() / 2]
    }

    fn human(size: usize) -> String {
        match size {
            s if s >= 1 << 20 => format!("{} MiB", s >> 20),
            s if s >= 1 << 10 => format!("{} KiB", s >> 10),
            s => format!("{s} B"),
        }
    }

    fn percentiles(mut rtts: Vec<Duration>) -> (Duration, Duration) {
        rtts.sort();
        (
            rtts[rtts.len() / 2],
            rtts[(rtts.len() * 99 / 100).min(rtts.len() - 1)],
        )
    }

    /// Sequential ping-pong for latency, then pipelined for throughput (bounded by a window so
    /// that neither side's buffers grow without bound). `send(flush)`: pipelined messages are
    /// queued (`feed`) and flushed once per burst, as a pipelining user would write it.
    async fn measure<S, R, FS, FR>(n: usize, mut send: FS, mut recv: FR) -> Sample
    where
        FS: FnMut(bool) -> S,
        FR: FnMut() -> R,
        S: std::future::Future<Output = ()>,
        R: std::future::Future<Output = ()>,
    {
        let mut rtts = Vec::with_capacity(n);
        for _ in 0..n {
            let start = Instant::now();
            send(true).await;
            recv().await;
            rtts.push(start.elapsed());
        }
        let (p50, p99) = percentiles(rtts);
        const WINDOW: usize = 16;
        let start = Instant::now();
        let (mut sent, mut received) = (0, 0);
        while received < n {
            while sent < n && sent - received < WINDOW {
                sent += 1;
                let last_of_burst = sent == n || sent - received == WINDOW;
                send(last_of_burst).await;
            }
            recv().await;
            received += 1;
        }
        Sample {
            p50,
            p99,
            messages_per_sec: n as f64 / start.elapsed().as_secs_f64(),
        }
    }

    async fn tcp_echo() -> SocketAddr {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            while let Ok((mut stream, _)) = listener.accept().await {
                stream.set_nodelay(true).unwrap();
                tokio::spawn(async move {
                    let mut buf = Vec::new();
                    loop {
                        let Ok(len) = stream.read_u32().await else {
                            return;
                        };
                        buf.resize(len as usize, 0);
                        if stream.read_exact(&mut buf).await.is_err() {
                            return;
                        }
                        stream.write_u32(len).await.unwrap();
                        stream.write_all(&buf).await.unwrap();
                    }
                });
            }
        });
        addr
    }

    async fn bench_tcp(addr: SocketAddr, size: usize, n: usize) -> Sample {
        let stream = TcpStream::connect(addr).await.unwrap();
        stream.set_nodelay(true).unwrap();
        let (read, write) = stream.into_split();
        let read = std::cell::RefCell::new((read, vec![0u8; size]));
        let write = std::cell::RefCell::new(write);
        let payload = vec![7u8; size];
        let mut frame = (size as u32).to_be_bytes().to_vec();
        frame.extend_from_slice(&payload);
        measure(
            n,
            |_flush| {
                let frame = frame.clone();
                let write = &write;
                async move { write.borrow_mut().write_all(&frame).await.unwrap() }
            },
            || async {
                let mut guard = read.borrow_mut();
                let (read, buf) = &mut *guard;
                let len = read.read_u32().await.unwrap() as usize;
                read.read_exact(&mut buf[..len]).await.unwrap();
            },
        )
        .await
    }

    async fn bench_tungstenite(url: &str, size: usize, n: usize) -> Sample {
        let addr = url.trim_start_matches("ws://").split('/').next().unwrap();
        let stream = TcpStream::connect(addr).await.unwrap();
        stream.set_nodelay(true).unwrap();
        let (ws, _) = tokio_tungstenite::client_async(url, stream).await.unwrap();
        let (sink, stream) = ws.split();
        let (sink, stream) = (
            std::cell::RefCell::new(sink),
            std::cell::RefCell::new(stream),
        );
        let payload = tungstenite::Bytes::from(vec![7u8; size]);
        measure(
            n,
            |flush| {
                let message = tungstenite::Message::Binary(payload.clone());
                let sink = &sink;
                async move {
                    let mut sink = sink.borrow_mut();
                    sink.feed(message).await.unwrap();
                    if flush {
                        sink.flush().await.unwrap();
                    }
                }
            },
            || async {
                while !stream
                    .borrow_mut()
                    .next()
                    .await
                    .unwrap()
                    .unwrap()
                    .is_binary()
                {}
            },
        )
        .await
    }

    async fn bench_unisock(url: &str, size: usize, n: usize) -> Sample {
        let options = unisock::Options::default()
            .heartbeat(None)
            .max_message_size(64 << 20);
        let (tx, mut rx) = unisock::connect(url, options).await.unwrap();
        rx.next().await; // Open
        let (tx, rx) = (std::cell::RefCell::new(tx), std::cell::RefCell::new(rx));
        let payload = vec![7u8; size];
        measure(
            n,
            |flush| {
                let message = unisock::Message::binary(payload.clone());
                let tx = &tx;
                async move {
                    let mut tx = tx.borrow_mut();
                    tx.feed(message).await.unwrap();
                    if flush {
                        tx.flush().await.unwrap();
                    }
                }
            },
            || async {
                rx.borrow_mut().next().await.unwrap();
            },
        )
        .await
    }

    /// The callback/polling API from a plain thread, no runtime: blocking `recv`.
    fn bench_socket_thread(url: &str, size: usize, n: usize) -> Sample {
        let url = url.to_owned();
        std::thread::spawn(move || {
            let options = unisock::Options::default()
                .heartbeat(None)
                .max_message_size(64 << 20);
            let socket = unisock::Socket::connect(&url, options).unwrap();
            socket.recv(); // Open
            let payload = vec![7u8; size];
            futures::executor::block_on(measure(
                n,
                |_flush| {
                    // Never waits: queued for the connection's thread.
                    socket
                        .send(unisock::Message::binary(payload.clone()))
                        .unwrap();
                    async {}
                },
                || {
                    socket.recv().unwrap();
                    async {}
                },
            ))
        })
        .join()
        .unwrap()
    }
}
