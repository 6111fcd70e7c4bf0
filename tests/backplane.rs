//! Rooms that span servers on a Redis backplane (`unisock serve --redis`), and `/metrics`.
//!
//! Each test starts its own `redis-server` (Debian's package; the test fails, saying how to
//! install it, when it is missing) on a free 127.0.0.1 port without persistence, and several
//! in-process servers sharing it. Traffic goes to 127.0.0.1 only; every wait is bounded.
//!
//! Run with `cargo test --features server --test backplane`.
#![cfg(all(feature = "server", not(target_arch = "wasm32")))]

#[path = "support/http.rs"]
mod http;
#[path = "support/metrics.rs"]
mod metrics;
#[path = "support/plain_client.rs"]
mod plain_client;
#[path = "support/redis_server.rs"]
mod redis_server;
#[path = "support/test_server.rs"]
mod test_server;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::Duration;

use futures::{SinkExt, StreamExt};
use metrics::{http_get, metric_value};
use plain_client::{connect, send_text, Client};
use redis_server::RedisServer;
use test_server::TestServer;
use tokio_tungstenite::tungstenite::Message;
use unisock::server::{RedisConfig, Server, ServerConfig};

/// Upper bound for any single wait.
const STEP: Duration = Duration::from_secs(10);

/// Upper bound for the backplane to (re)connect to Redis.
const RECONNECT: Duration = Duration::from_secs(20);

/// How long to keep listening for messages that must not come (duplicates).
const QUIET: Duration = Duration::from_millis(400);

/// A server on a free port of 127.0.0.1, on the backplane of `redis` if given.
async fn start_server(redis: Option<&RedisServer>) -> TestServer {
    TestServer::start(ServerConfig {
        redis: redis.map(|redis| RedisConfig {
            // Quick retries, so that the restart test does not wait long.
            retry_min: Duration::from_millis(50),
            retry_max: Duration::from_millis(500),
            timeout: Duration::from_secs(2),
            ..RedisConfig::new(redis.url())
        }),
        ..ServerConfig::default()
    })
    .await
}

impl TestServer {
    /// Panics if the server task has ended (crashed) while it should be serving.
    fn assert_running(&self) {
        assert!(!self.task.is_finished(), "server {} stopped", self.addr);
    }

    /// Waits until this server's backplane is connected to Redis (publish and subscribe).
    async fn wait_backplane_up(&self) {
        self.wait_metric("unisock_backplane_up", RECONNECT, |up| up == 1)
            .await;
    }
}

/// The next text message within `limit`, or `None` if none came.
async fn next_text_within(client: &mut Client, limit: Duration) -> Option<String> {
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        let item = tokio::time::timeout_at(deadline, client.next())
            .await
            .ok()?;
        match item.expect("stream open").expect("no read error") {
            Message::Text(text) => return Some(text.to_string()),
            Message::Ping(_) | Message::Pong(_) => {}
            other => panic!("unexpected {other:?}"),
        }
    }
}

async fn expect_text(client: &mut Client, expected: &str) {
    let got = next_text_within(client, STEP).await;
    assert_eq!(got.as_deref(), Some(expected));
}

async fn expect_nothing(client: &mut Client) {
    if let Some(text) = next_text_within(client, QUIET).await {
        panic!("unexpected message {text:?}");
    }
}

/// Reads exactly `count` text messages (bounded), then checks that no more come.
async fn collect(client: &mut Client, count: usize) -> Vec<String> {
    let mut got = Vec::with_capacity(count);
    while got.len() < count {
        match next_text_within(client, STEP).await {
            Some(text) => got.push(text),
            None => panic!("got {} of {count} messages: {got:?}", got.len()),
        }
    }
    expect_nothing(client).await;
    got
}

/// Three servers on one Redis, three clients on each, all in one room: each client sends
/// `PER_CLIENT` numbered messages; every client gets every other client's messages exactly
/// once and in each sender's order, and its own only with `notify_self`.
async fn fan_out_exactly_once(notify_self: bool) {
    const PER_CLIENT: usize = 20;
    let redis = RedisServer::start();
    let mut servers = Vec::new();
    for _ in 0..3 {
        servers.push(start_server(Some(&redis)).await);
    }
    for server in &servers {
        server.wait_backplane_up().await;
    }
    let path = format!("/rooms/everyone?notify_self={notify_self}");
    let mut clients = Vec::new();
    for server in &servers {
        for _ in 0..3 {
            clients.push(connect(&server.url(&path)).await);
        }
    }
    let names: Vec<String> = (0..clients.len()).map(|i| format!("c{i}")).collect();
    // Everyone sends at once, interleaved.
    for k in 0..PER_CLIENT {
        for (client, name) in clients.iter_mut().zip(&names) {
            send_text(client, &format!("{name}-{k}")).await;
        }
    }
    let others = clients.len() - 1 + usize::from(notify_self);
    let readers = clients.into_iter().map(|mut client| {
        tokio::spawn(async move { collect(&mut client, others * PER_CLIENT).await })
    });
    let received = futures::future::join_all(readers).await;
    for (receiver, got) in names.iter().zip(received) {
        let got = got.expect("reader does not panic");
        let mut next: HashMap<&str, usize> = HashMap::new();
        for text in &got {
            let (sender, k) = text.split_once('-').expect("name-k");
            let k: usize = k.parse().expect("k");
            assert!(
                notify_self || sender != receiver,
                "{receiver} got its own {text}"
            );
            let expected = next.entry(sender).or_default();
            assert_eq!(
                k, *expected,
                "{receiver}: {sender}'s messages in order, once each"
            );
            *expected += 1;
        }
        assert_eq!(next.len(), others, "{receiver} heard from every sender");
        assert!(next.values().all(|&n| n == PER_CLIENT));
    }
    for server in &servers {
        assert_eq!(
            server
                .metric("unisock_backplane_publish_errors_total")
                .await,
            0
        );
        assert_eq!(server.metric("unisock_backplane_missed_total").await, 0);
        assert_eq!(server.metric("unisock_backplane_invalid_total").await, 0);
    }
    // 3 clients × PER_CLIENT published per server; each receives the 6 others' from Redis.
    for server in &servers {
        assert_eq!(
            server.metric("unisock_backplane_published_total").await,
            3 * PER_CLIENT as i64
        );
        assert_eq!(
            server.metric("unisock_backplane_received_total").await,
            6 * PER_CLIENT as i64
        );
    }
    for server in servers {
        server.shutdown().await.expect("server run ok");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_servers_every_client_gets_every_broadcast_once() {
    fan_out_exactly_once(false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_servers_every_client_gets_every_broadcast_once_with_notify_self() {
    fan_out_exactly_once(true).await;
}

/// Redis killed and restarted (same port) while clients talk: no server stops, local delivery
/// goes on, what could not be published is counted, and cross-server delivery comes back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_restart_keeps_local_rooms_and_resumes_cross_server_delivery() {
    let mut redis = RedisServer::start();
    let a = start_server(Some(&redis)).await;
    let b = start_server(Some(&redis)).await;
    // C publishes nothing while Redis is down: its publisher finds out only afterwards.
    let c = start_server(Some(&redis)).await;
    for server in [&a, &b, &c] {
        server.wait_backplane_up().await;
    }
    let path = "/rooms/restart";
    let mut a1 = connect(&a.url(path)).await;
    let mut a2 = connect(&a.url(path)).await;
    let mut b1 = connect(&b.url(path)).await;
    let mut c1 = connect(&c.url(path)).await;

    send_text(&mut a1, "before").await;
    expect_text(&mut a2, "before").await;
    expect_text(&mut b1, "before").await;
    expect_text(&mut c1, "before").await;

    redis.kill();
    // Local delivery goes on; nothing reaches the other server.
    for k in 0..5 {
        send_text(&mut a1, &format!("down-{k}")).await;
    }
    for k in 0..5 {
        expect_text(&mut a2, &format!("down-{k}")).await;
    }
    expect_nothing(&mut b1).await;
    expect_nothing(&mut c1).await;
    send_text(&mut b1, "b-down").await;
    expect_nothing(&mut a1).await;
    expect_nothing(&mut c1).await;
    // Counted, not silently dropped: exactly what could not be published.
    a.wait_metric("unisock_backplane_publish_errors_total", STEP, |n| n >= 5)
        .await;
    assert_eq!(a.metric("unisock_backplane_publish_errors_total").await, 5);
    b.wait_metric("unisock_backplane_publish_errors_total", STEP, |n| n == 1)
        .await;
    a.wait_metric("unisock_backplane_up", STEP, |up| up == 0)
        .await;
    a.assert_running();
    b.assert_running();

    redis.restart();
    for server in [&a, &b, &c] {
        server.wait_backplane_up().await;
    }
    assert!(a.metric("unisock_backplane_reconnects_total").await >= 2);
    assert!(b.metric("unisock_backplane_reconnects_total").await >= 2);

    // Both ways again, exactly once.
    send_text(&mut a1, "after").await;
    expect_text(&mut a2, "after").await;
    expect_text(&mut b1, "after").await;
    send_text(&mut b1, "b-after").await;
    expect_text(&mut a1, "b-after").await;
    expect_text(&mut a2, "b-after").await;
    expect_text(&mut c1, "after").await;
    expect_text(&mut c1, "b-after").await;
    // C's first message after the restart goes out on a fresh connection, not lost.
    send_text(&mut c1, "c-after").await;
    for client in [&mut a1, &mut a2, &mut b1] {
        expect_text(client, "c-after").await;
    }
    for client in [&mut a1, &mut a2, &mut b1, &mut c1] {
        expect_nothing(client).await;
    }
    assert_eq!(c.metric("unisock_backplane_publish_errors_total").await, 0);
    for server in [&a, &b, &c] {
        server.assert_running();
    }
    a.shutdown().await.expect("server run ok");
    b.shutdown().await.expect("server run ok");
    c.shutdown().await.expect("server run ok");
}

/// An acknowledged-session client (`unisock.v1`) in a room spanning servers gets the other
/// servers' messages, and they get its. (Resuming such a session on another server: see
/// tests/backplane_sessions.rs.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn session_clients_take_part_in_rooms_across_servers() {
    use unisock::{Event, Options, SessionOptions};

    async fn next_message(rx: &mut unisock::Receiver) -> unisock::Message {
        loop {
            let event = tokio::time::timeout(STEP, rx.next())
                .await
                .expect("an event in time")
                .expect("an event");
            match event {
                Event::Message(message) => return message,
                Event::Close(close) => panic!("closed: {close:?}"),
                _ => {}
            }
        }
    }

    let redis = RedisServer::start();
    let a = start_server(Some(&redis)).await;
    let b = start_server(Some(&redis)).await;
    a.wait_backplane_up().await;
    b.wait_backplane_up().await;
    let options = Options::default().session(SessionOptions::default());
    let (mut session_tx, mut session_rx) = unisock::connect(&a.url("/rooms/mixed"), options)
        .await
        .expect("session client connects");
    let mut plain = connect(&b.url("/rooms/mixed")).await;
    // The session is set up once its first message has gone through.
    session_tx
        .send(unisock::Message::text("from the session"))
        .await
        .expect("send");
    expect_text(&mut plain, "from the session").await;
    send_text(&mut plain, "from the other server").await;
    assert_eq!(
        next_message(&mut session_rx).await,
        unisock::Message::text("from the other server")
    );
    expect_nothing(&mut plain).await;
    a.shutdown().await.expect("server run ok");
    b.shutdown().await.expect("server run ok");
}

/// `/metrics` is valid Prometheus text: a `# HELP` and `# TYPE` for every sample, integer
/// values, the documented names; connections, rooms and messages in/out are counted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_are_prometheus_text() {
    let redis = RedisServer::start();
    let server = start_server(Some(&redis)).await;
    server.wait_backplane_up().await;
    let mut echo = connect(&server.url("/echo")).await;
    send_text(&mut echo, "one").await;
    expect_text(&mut echo, "one").await;
    let mut member = connect(&server.url("/rooms/metrics?notify_self=true")).await;
    send_text(&mut member, "two").await;
    expect_text(&mut member, "two").await;

    // Counted once Redis has answered.
    server
        .wait_metric("unisock_backplane_published_total", STEP, |n| n == 1)
        .await;
    let (content_type, body) = server.metrics().await;
    assert_eq!(content_type, "text/plain; version=0.0.4; charset=utf-8");
    check_exposition_format(&body);
    for (name, value) in [
        ("unisock_connections", 2),
        ("unisock_connections_total", 2),
        ("unisock_rooms", 1),
        ("unisock_messages_in_total", 2),
        ("unisock_messages_out_total", 2),
        ("unisock_backplane_up", 1),
        ("unisock_backplane_published_total", 1),
        ("unisock_backplane_publish_errors_total", 0),
        ("unisock_backplane_received_total", 0),
        ("unisock_backplane_missed_total", 0),
        ("unisock_backplane_invalid_total", 0),
        ("unisock_backplane_reconnects_total", 0),
    ] {
        assert_eq!(metric_value(&body, name), Some(value), "{name} in\n{body}");
    }
    drop(echo);
    drop(member);
    server
        .wait_metric("unisock_connections", STEP, |open| open == 0)
        .await;
    server
        .wait_metric("unisock_rooms", STEP, |rooms| rooms == 0)
        .await;
    server.shutdown().await.expect("server run ok");
}

/// Without `redis`, nothing about Redis: no backplane metrics, rooms work as before.
#[tokio::test]
async fn without_redis_there_is_no_backplane() {
    let server = start_server(None).await;
    let mut a = connect(&server.url("/rooms/local")).await;
    let mut b = connect(&server.url("/rooms/local")).await;
    send_text(&mut a, "hi").await;
    expect_text(&mut b, "hi").await;
    let (_, body) = server.metrics().await;
    check_exposition_format(&body);
    assert!(!body.contains("backplane"), "{body}");
    assert_eq!(metric_value(&body, "unisock_messages_in_total"), Some(1));
    server.shutdown().await.expect("server run ok");
}

/// A bad Redis URL is refused at bind, without showing its password; a password is never
/// logged or shown in `Debug`.
#[tokio::test]
async fn bad_redis_url_is_refused_without_its_password() {
    for url in ["http://:hunter2@127.0.0.1:6379", "redis//:hunter2@", ""] {
        let config = ServerConfig {
            addr: "127.0.0.1:0".parse().unwrap(),
            redis: Some(RedisConfig::new(url)),
            ..ServerConfig::default()
        };
        assert!(!format!("{config:?}").contains("hunter2"));
        let error = Server::bind(config).await.expect_err("refused");
        assert_eq!(error.kind(), std::io::ErrorKind::InvalidInput);
        assert!(!error.to_string().contains("hunter2"), "{error}");
    }
}

/// The binary: `unisock serve --redis URL` with a password in the URL; two processes share a
/// room, and the password appears nowhere in their logs.
#[test]
fn binary_serve_with_redis_spans_processes_and_never_logs_the_password() {
    use std::io::{BufRead, BufReader, Read};
    use std::process::{Child, Command, Stdio};

    /// Kills the child if anything panics.
    struct Reap(Child);
    impl Drop for Reap {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    fn serve(url: &str) -> (Reap, SocketAddr) {
        let mut child = Command::new(env!("CARGO_BIN_EXE_unisock"))
            .args(["serve", "--port", "0", "--redis", url])
            .env("RUST_LOG", "debug")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start the binary");
        let stdout = child.stdout.take().unwrap();
        let child = Reap(child);
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut line = String::new();
            let _ = BufReader::new(stdout).read_line(&mut line);
            let _ = tx.send(line);
        });
        let line = rx.recv_timeout(STEP).expect("the binary prints a line");
        let addr = line
            .strip_prefix("unisock serve listening on http://")
            .and_then(|rest| rest.split_once('/'))
            .and_then(|(addr, _)| addr.parse().ok())
            .unwrap_or_else(|| panic!("unexpected first line {line:?}"));
        (child, addr)
    }

    let redis = RedisServer::start_with(&["--requirepass", "hunter2"]);
    let url = redis.url().replace("redis://", "redis://:hunter2@");
    let (mut a, a_addr) = serve(&url);
    let (mut b, b_addr) = serve(&url);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        for addr in [a_addr, b_addr] {
            let deadline = tokio::time::Instant::now() + RECONNECT;
            loop {
                let (_, _, body) = http_get(addr, "/metrics").await;
                if metric_value(&body, "unisock_backplane_up") == Some(1) {
                    break;
                }
                assert!(
                    tokio::time::Instant::now() < deadline,
                    "backplane of {addr} up"
                );
                tokio::time::sleep(Duration::from_millis(25)).await;
            }
        }
        let mut on_a = connect(&format!("ws://{a_addr}/rooms/cli")).await;
        let mut on_b = connect(&format!("ws://{b_addr}/rooms/cli")).await;
        send_text(&mut on_a, "across processes").await;
        expect_text(&mut on_b, "across processes").await;
    });
    let mut logs = String::new();
    for child in [&mut a, &mut b] {
        let killed = Command::new("kill")
            .args(["-TERM", &child.0.id().to_string()])
            .status()
            .expect("run kill");
        assert!(killed.success());
        let mut stderr = child.0.stderr.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut text = String::new();
            let _ = stderr.read_to_string(&mut text);
            let _ = tx.send(text);
        });
        logs += &rx.recv_timeout(STEP).expect("the binary exits");
    }
    assert!(logs.contains("Redis backplane"), "{logs}");
    assert!(logs.contains(&redis.url()), "the redacted URL is logged");
    assert!(!logs.contains("hunter2"), "the password is logged:\n{logs}");
}

/// Every line is a `# HELP`, a `# TYPE` or a sample `name integer` whose name has both.
fn check_exposition_format(body: &str) {
    assert!(body.ends_with('\n'), "ends with a line feed");
    let mut helped = Vec::new();
    let mut typed = Vec::new();
    let is_name = |name: &str| {
        let mut chars = name.chars();
        chars
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic() || c == '_' || c == ':')
            && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
    };
    for line in body.lines() {
        if let Some(rest) = line.strip_prefix("# HELP ") {
            let (name, help) = rest.split_once(' ').expect("HELP name text");
            assert!(is_name(name) && !help.is_empty(), "{line}");
            helped.push(name.to_owned());
        } else if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest.split_once(' ').expect("TYPE name kind");
            assert!(
                is_name(name) && ["counter", "gauge"].contains(&kind),
                "{line}"
            );
            assert!(kind != "counter" || name.ends_with("_total"), "{line}");
            typed.push(name.to_owned());
        } else {
            let (name, value) = line.split_once(' ').expect("name value");
            assert!(is_name(name), "{line}");
            value.parse::<i64>().expect("integer value");
            assert!(helped.iter().any(|n| n == name), "HELP before {name}");
            assert!(typed.iter().any(|n| n == name), "TYPE before {name}");
        }
    }
}
