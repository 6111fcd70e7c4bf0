//! Benchmark: room fan-out through the Redis backplane with 1, 2 and 3 servers on one Redis.
//!
//! ```text
//! cargo run --release --features server --example backplane_fanout          # ~30 s
//! UNISOCK_BENCH_QUICK=1 cargo run --release --features server --example backplane_fanout
//! ```
//!
//! Starts its own `redis-server` (Debian's package) on a free 127.0.0.1 port, then for each
//! setup runs N in-process `unisock serve` servers sharing it (and, as the reference, one
//! server without Redis). One room: a publisher on the first server, receivers spread
//! round-robin over the servers. The publisher sends small binary messages as fast as the
//! room takes them, with at most two windows of messages not yet delivered to everyone (so
//! no receiver falls far enough behind to be evicted); the run measures, from the first send
//! to the last delivery, messages published per second and deliveries (messages × receivers)
//! per second, and each delivery's latency. Writes `$UNISOCK_BENCH_OUT/backplane.json`
//! (default `target/bench/`; format: benches/RESULTS.md) and a summary on stdout.

#[cfg(all(feature = "server", not(target_arch = "wasm32")))]
#[path = "../tests/support/redis_server.rs"]
mod redis_server;

#[cfg(all(feature = "server", not(target_arch = "wasm32")))]
fn main() {
    bench::main();
}

#[cfg(not(all(feature = "server", not(target_arch = "wasm32"))))]
fn main() {
    eprintln!("backplane_fanout needs the `server` feature: cargo run --release --features server --example backplane_fanout");
}

#[cfg(all(feature = "server", not(target_arch = "wasm32")))]
mod bench {
    use std::path::PathBuf;
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::sync::Arc;
    use std::time::{Duration, Instant};

    use futures::{SinkExt, StreamExt};
    use serde_json::{json, Value};
    use tokio::sync::{oneshot, Notify};
    use tokio_tungstenite::tungstenite::Message;
    use unisock::server::{Metrics, RedisConfig, Server, ServerConfig};

    use crate::redis_server::RedisServer;

    /// Payload bytes per message (the first 16 carry a sequence number and a timestamp).
    const MESSAGE_SIZE: usize = 64;
    /// Messages the publisher may send beyond what every receiver has got.
    const WINDOW: u64 = 100;
    /// Longest any single wait may take.
    const STEP: Duration = Duration::from_secs(30);

    struct Params {
        messages: u64,
        receivers: usize,
        rounds: usize,
        quick: bool,
    }

    /// One measured run.
    struct Sample {
        secs: f64,
        delivered: u64,
        expected: u64,
        p50_us: f64,
        p99_us: f64,
    }

    pub fn main() {
        let quick = std::env::var_os("UNISOCK_BENCH_QUICK").is_some();
        let params = Params {
            messages: if quick { 1_000 } else { 30_000 },
            receivers: 12,
            rounds: if quick { 1 } else { 5 },
            quick,
        };
        let started = Instant::now();
        let redis = RedisServer::start();
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("tokio runtime");
        // (label, servers, with Redis)
        let setups = [
            ("1 server, no Redis", 1, false),
            ("1 server + Redis", 1, true),
            ("2 servers + Redis", 2, true),
            ("3 servers + Redis", 3, true),
        ];
        let mut results = Vec::new();
        for (label, servers, with_redis) in setups {
            let mut samples = Vec::new();
            for round in 0..params.rounds {
                let url = with_redis.then(|| redis.url());
                let sample = runtime.block_on(run(servers, url, &params, round));
                eprintln!(
                    "{label} round {round}: {:.0} published/s, {:.0} deliveries/s, p50 {:.0} µs, p99 {:.0} µs, {}/{} delivered",
                    sample.delivered as f64 / params.receivers as f64 / sample.secs,
                    sample.delivered as f64 / sample.secs,
                    sample.p50_us,
                    sample.p99_us,
                    sample.delivered,
                    sample.expected,
                );
                samples.push(sample);
            }
            results.push((label, servers, median_sample(samples)));
        }
        runtime.shutdown_timeout(Duration::from_secs(2));
        drop(redis);

        let report = report(&params, &results, redis_version());
        println!("{}", summary(&results, &params));
        let out = std::env::var_os("UNISOCK_BENCH_OUT")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from("target/bench"));
        std::fs::create_dir_all(&out).expect("create the results directory");
        let path = out.join("backplane.json");
        std::fs::write(&path, report.to_string()).expect("write backplane.json");
        eprintln!(
            "wrote {} in {:.1} s",
            path.display(),
            started.elapsed().as_secs_f64()
        );
    }

    /// The sample with the median deliveries/s.
    fn median_sample(mut samples: Vec<Sample>) -> Sample {
        samples.sort_by(|a, b| rate(a).total_cmp(&rate(b)));
        let middle = samples.len() / 2;
        samples.swap_remove(middle)
    }

    fn rate(sample: &Sample) -> f64 {
        sample.delivered as f64 / sample.secs.max(1e-9)
    }

    /// A running in-process server.
    struct Running {
        addr: std::net::SocketAddr,
        metrics: Metrics,
        stop: oneshot::Sender<()>,
        task: tokio::task::JoinHandle<std::io::Result<()>>,
    }

    async fn start(redis: Option<&str>) -> Running {
        let config = ServerConfig {
            addr: "127.0.0.1:0".parse().unwrap(),
            redis: redis.map(RedisConfig::new),
            ..ServerConfig::default()
        };
        let server = Server::bind(config).await.expect("bind");
        let addr = server.local_addr();
        let metrics = server.metrics();
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(server.run(async move {
            let _ = stopped.await;
        }));
        Running {
            addr,
            metrics,
            stop,
            task,
        }
    }

    fn metric(metrics: &Metrics, name: &str) -> Option<i64> {
        metrics.render().lines().find_map(|line| {
            let (metric, value) = line.split_once(' ')?;
            (metric == name).then(|| value.parse().ok())?
        })
    }

    fn now_ns(base: Instant) -> u64 {
        u64::try_from(base.elapsed().as_nanos()).unwrap_or(u64::MAX)
    }

    fn frame(seq: u64, base: Instant) -> Message {
        let mut payload = vec![0u8; MESSAGE_SIZE];
        payload[..8].copy_from_slice(&seq.to_le_bytes());
        payload[8..16].copy_from_slice(&now_ns(base).to_le_bytes());
        Message::binary(payload)
    }

    /// One run: `servers` servers (on Redis at `redis`, if any), the publisher on the first.
    async fn run(servers: usize, redis: Option<String>, params: &Params, round: usize) -> Sample {
        let mut running = Vec::new();
        for _ in 0..servers {
            running.push(start(redis.as_deref()).await);
        }
        if redis.is_some() {
            let deadline = Instant::now() + STEP;
            for server in &running {
                while metric(&server.metrics, "unisock_backplane_up") != Some(1) {
                    assert!(Instant::now() < deadline, "backplane up in time");
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
            }
        }
        let room = format!("/rooms/bench{round}");
        let base = Instant::now();
        // Messages each receiver has got; the publisher waits for the slowest.
        let counts: Arc<Vec<AtomicU64>> =
            Arc::new((0..params.receivers).map(|_| AtomicU64::new(0)).collect());
        let target = Arc::new(AtomicU64::new(u64::MAX));
        let progress = Arc::new(Notify::new());
        let mut receivers = Vec::new();
        for i in 0..params.receivers {
            let addr = running[i % servers].addr;
            let (ws, _) = tokio::time::timeout(
                STEP,
                tokio_tungstenite::connect_async_with_config(
                    format!("ws://{addr}{room}"),
                    None,
                    true,
                ),
            )
            .await
            .expect("connect in time")
            .expect("receiver connects");
            let (counts, target, progress) = (counts.clone(), target.clone(), progress.clone());
            let expected = params.messages + 1; // + the warm-up message
            receivers.push(tokio::spawn(async move {
                let mut ws = ws;
                let mut latencies = Vec::with_capacity(expected as usize);
                let mut got = 0;
                while got < expected {
                    let Ok(Some(Ok(message))) = tokio::time::timeout(STEP, ws.next()).await else {
                        break;
                    };
                    let Message::Binary(data) = message else {
                        continue;
                    };
                    if data.len() < 16 {
                        continue;
                    }
                    got += 1;
                    let sent = u64::from_le_bytes(data[8..16].try_into().unwrap_or([0; 8]));
                    let us = now_ns(base).saturating_sub(sent) / 1000;
                    latencies.push(u32::try_from(us).unwrap_or(u32::MAX));
                    counts[i].store(got, Ordering::Release);
                    if got >= target.load(Ordering::Acquire) {
                        progress.notify_one();
                    }
                }
                // The warm-up message's latency is not part of the run.
                if !latencies.is_empty() {
                    latencies.remove(0);
                }
                (latencies, ws)
            }));
        }
        let (mut publisher, _) = tokio::time::timeout(
            STEP,
            tokio_tungstenite::connect_async_with_config(
                format!("ws://{}{room}", running[0].addr),
                None,
                true,
            ),
        )
        .await
        .expect("connect in time")
        .expect("publisher connects");
        let receivers_n = params.receivers as u64;
        let slowest = |counts: &[AtomicU64]| {
            counts
                .iter()
                .map(|count| count.load(Ordering::Acquire))
                .min()
                .unwrap_or(0)
        };
        // Waits until every receiver has got `count` messages.
        let wait_for = |count: u64| {
            let (counts, target, progress) = (&counts, &target, &progress);
            async move {
                target.store(count, Ordering::Release);
                let waited = tokio::time::timeout(STEP, async {
                    while slowest(counts) < count {
                        progress.notified().await;
                    }
                })
                .await;
                waited.is_ok()
            }
        };
        // Warm-up: everyone is in the room and connected through Redis.
        publisher.send(frame(0, base)).await.expect("send");
        assert!(wait_for(1).await, "warm-up message reaches every receiver");

        let start = Instant::now();
        let mut complete = true;
        for seq in 1..=params.messages {
            publisher.feed(frame(seq, base)).await.expect("send");
            if seq % WINDOW == 0 {
                publisher.flush().await.expect("flush");
                let behind = seq.saturating_sub(WINDOW);
                if !wait_for(1 + behind).await {
                    complete = false;
                    break;
                }
            }
        }
        publisher.flush().await.expect("flush");
        let expected_total = (1 + params.messages) * receivers_n;
        complete &= wait_for(1 + params.messages).await;
        let secs = start.elapsed().as_secs_f64();
        let total: u64 = counts
            .iter()
            .map(|count| count.load(Ordering::Acquire))
            .sum();
        if !complete {
            eprintln!("incomplete run: {total} of {expected_total} deliveries");
        }
        let mut latencies = Vec::new();
        for receiver in receivers {
            if let Ok(Ok((mut own, _ws))) = tokio::time::timeout(STEP, receiver).await {
                latencies.append(&mut own);
            }
        }
        latencies.sort_unstable();
        let percentile = |p: f64| -> f64 {
            if latencies.is_empty() {
                return f64::NAN;
            }
            let index = ((latencies.len() - 1) as f64 * p).round() as usize;
            f64::from(latencies[index])
        };
        let sample = Sample {
            secs,
            delivered: total.saturating_sub(receivers_n),
            expected: params.messages * receivers_n,
            p50_us: percentile(0.50),
            p99_us: percentile(0.99),
        };
        drop(publisher);
        for server in running {
            let _ = server.stop.send(());
            let _ = tokio::time::timeout(STEP, server.task).await;
        }
        sample
    }

    fn redis_version() -> String {
        std::process::Command::new("redis-server")
            .arg("--version")
            .output()
            .ok()
            .and_then(|out| String::from_utf8(out.stdout).ok())
            .and_then(|text| {
                text.split_whitespace()
                    .find_map(|word| word.strip_prefix("v=").map(str::to_owned))
            })
            .unwrap_or_else(|| "unknown".to_owned())
    }

    fn round1(x: f64) -> f64 {
        (x * 10.0).round() / 10.0
    }

    fn summary(results: &[(&str, usize, Sample)], params: &Params) -> String {
        let mut out = String::from(
            "| setup | receivers | published/s | deliveries/s | p50 µs | p99 µs |\n|---|---|---|---|---|---|\n",
        );
        for (label, _, sample) in results {
            out += &format!(
                "| {label} | {} | {:.0} | {:.0} | {:.0} | {:.0} |\n",
                params.receivers,
                rate(sample) / params.receivers as f64,
                rate(sample),
                sample.p50_us,
                sample.p99_us
            );
        }
        out
    }

    fn report(params: &Params, results: &[(&str, usize, Sample)], redis: String) -> Value {
        let baseline = results
            .first()
            .map_or(f64::NAN, |(_, _, sample)| rate(sample));
        let rows: Vec<Value> = results
            .iter()
            .map(|(label, servers, sample)| {
                json!([
                    label,
                    servers,
                    params.receivers,
                    round1(rate(sample) / params.receivers as f64),
                    round1(rate(sample)),
                    round1(sample.p50_us),
                    round1(sample.p99_us),
                    (rate(sample) / baseline * 100.0).round() / 100.0,
                    format!("{}/{}", sample.delivered, sample.expected),
                ])
            })
            .collect();
        let labels: Vec<&str> = results.iter().map(|(label, _, _)| *label).collect();
        let deliveries: Vec<f64> = results.iter().map(|(_, _, s)| round1(rate(s))).collect();
        let lost: u64 = results
            .iter()
            .map(|(_, _, s)| s.expected.saturating_sub(s.delivered))
            .sum();
        let mut notes = vec![
            "All servers, the clients and redis-server share the same 2-core machine: with more servers each one gets less CPU, so this measures the backplane's cost, not horizontal scaling (which needs a machine per server).".to_owned(),
            "Messages from other servers arrive through Redis pub/sub; the publisher's own server delivers to its local receivers directly.".to_owned(),
        ];
        if lost > 0 {
            notes.push(format!(
                "{lost} deliveries missing in total (runs cut at a 30 s wait)."
            ));
        }
        if params.quick {
            notes.push(
                "UNISOCK_BENCH_QUICK: smoke-sized run; the numbers say it works, not how fast."
                    .to_owned(),
            );
        }
        json!({
            "benchmark": "backplane",
            "title": "Rooms across servers: fan-out through the Redis backplane",
            "method": format!(
                "One room; {} receivers spread round-robin over N in-process `unisock serve` servers sharing one redis-server on 127.0.0.1 (plus one server without Redis as the reference); one publisher on the first server sends {} binary messages of {} B, with at most {} not yet delivered to everyone. Rates are from the first send to the last delivery; latency is per delivery, send to receipt. Median of {} round(s) by deliveries/s. Release build, one tokio runtime with 2 worker threads for servers and clients; TCP_NODELAY on every client.",
                params.receivers, params.messages, MESSAGE_SIZE, 2 * WINDOW, params.rounds
            ),
            "versions": {"redis-server": redis, "unisock": env!("CARGO_PKG_VERSION")},
            "tables": [{
                "title": "Room fan-out with 1, 2 and 3 servers on one Redis",
                "columns": ["setup", "servers", "receivers", "published msg/s", "deliveries/s", "p50 µs", "p99 µs", "deliveries/s ratio to no Redis", "delivered"],
                "rows": rows,
                "note": "deliveries/s = published messages/s × receivers; the last column counts deliveries against those expected (every message to every receiver; exactly-once is checked by tests/backplane.rs)."
            }],
            "charts": [{
                "file": "backplane_fanout",
                "title": "Room fan-out: deliveries/s (higher is better)",
                "y_label": "deliveries/s",
                "categories": labels,
                "series": {"unisock serve": deliveries},
            }],
            "targets": [],
            "notes": notes,
        })
    }
}
