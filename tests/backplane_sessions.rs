//! Acknowledged sessions that move between servers on a Redis backplane (docs/session-protocol.md
//! §8): a client cut from server A resumes on server B from the session's record and the
//! room's history in Redis, without loss or duplicate; or, when the history no longer reaches
//! back, with the explicit gap. A real `redis-server` on a free 127.0.0.1 port, in-process
//! servers, and a TCP proxy that sends the reconnect to the other server. Every wait is
//! bounded.
//!
//! Run with `cargo test --features server --test backplane_sessions`.
#![cfg(all(feature = "server", not(target_arch = "wasm32")))]

#[path = "support/fault_proxy.rs"]
mod fault_proxy;
#[path = "support/http.rs"]
mod http;
#[path = "support/metrics.rs"]
mod metrics;
#[path = "support/plain_client.rs"]
mod plain_client;
#[path = "support/redis_server.rs"]
mod redis_server;
#[path = "support/session_events.rs"]
mod session_events;
#[path = "support/test_server.rs"]
mod test_server;

use std::net::SocketAddr;
use std::time::Duration;

use fault_proxy::{Cut, FaultProxy};
use futures::stream::SplitSink;
use futures::{SinkExt, StreamExt};
use metrics::metric_at;
use redis_server::RedisServer;
use session_events::{expect_open, next_interesting, session_options};
use test_server::TestServer;
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::Message as WsMessage;
use unisock::server::{RedisConfig, ServerConfig};
use unisock::{Direction, Event, Gap, GapReason, Message};

/// Upper bound for any single wait.
const STEP: Duration = Duration::from_secs(10);

/// The next event, within [`STEP`] (for `session_events`).
async fn next_event(rx: &mut unisock::Receiver) -> Event {
    tokio::time::timeout(STEP, rx.next())
        .await
        .expect("an event in time")
        .expect("an event")
}

/// A server on the backplane of `redis`, keeping about `history` messages per room.
async fn start_server(redis: &RedisServer, history: usize) -> TestServer {
    let server = TestServer::start(ServerConfig {
        redis: Some(RedisConfig {
            retry_min: Duration::from_millis(50),
            retry_max: Duration::from_millis(500),
            timeout: Duration::from_secs(2),
            history_max_len: history,
            ..RedisConfig::new(redis.url())
        }),
        ..ServerConfig::default()
    })
    .await;
    server
        .wait_metric("unisock_backplane_up", STEP * 2, |up| up == 1)
        .await;
    server
}

/// The session clients' heartbeat timeout (200 ms in tests/native_sessions.rs).
const HEARTBEAT_TIMEOUT: Duration = Duration::from_millis(500);

/// A plain WebSocket client (of a room).
type Member = plain_client::Client;

/// A plain WebSocket client of the room on server `addr`.
async fn plain_member(addr: SocketAddr, room: &str) -> Member {
    plain_client::connect(&format!("ws://{addr}/rooms/{room}")).await
}

/// What a session that is about to move between servers needs (see [`moving_session`]).
struct Moving {
    redis: RedisServer,
    a: TestServer,
    b: TestServer,
    /// In front of `a`; the session client connects through it.
    proxy: FaultProxy,
    tx: unisock::Sender,
    rx: unisock::Receiver,
    /// A plain member of the room on `b`.
    member: Member,
}

/// Redis, servers A and B on it keeping about `history` messages per room, the fault proxy in
/// front of A, a session client of `room` (with `query` appended to its URL) through the
/// proxy, its session open, and a plain member of `room` on B.
async fn moving_session(history: usize, room: &str, query: &str) -> Moving {
    let redis = RedisServer::start();
    let a = start_server(&redis, history).await;
    let b = start_server(&redis, history).await;
    let proxy = FaultProxy::start(a.addr).await.unwrap();
    let url = format!("ws://{}/rooms/{room}{query}", proxy.addr());
    let (tx, mut rx) = unisock::connect(&url, session_options(HEARTBEAT_TIMEOUT))
        .await
        .unwrap();
    expect_open(&mut rx, false).await;
    let member = plain_member(b.addr, room).await;
    Moving {
        redis,
        a,
        b,
        proxy,
        tx,
        rx,
        member,
    }
}

/// The member publishes `p0`, `p1`, … and the session client `c0`, `c1`, …, `count` each,
/// interleaved, a little apart so that a cut falls mid-stream.
async fn publish_both(
    member_tx: &mut SplitSink<Member, WsMessage>,
    tx: &mut unisock::Sender,
    count: usize,
) {
    for i in 0..count {
        tokio::time::timeout(STEP, member_tx.send(WsMessage::text(format!("p{i}"))))
            .await
            .expect("send in time")
            .expect("send");
        tokio::time::timeout(STEP, tx.send(Message::text(format!("c{i}"))))
            .await
            .expect("send in time")
            .expect("send");
        tokio::time::sleep(Duration::from_millis(3)).await;
    }
}

/// The member says "first" and the session client gets it.
async fn first_message(member: &mut Member, rx: &mut unisock::Receiver) {
    member.send(WsMessage::text("first")).await.expect("send");
    assert_eq!(
        next_interesting(rx).await,
        Event::Message(Message::text("first"))
    );
}

/// A session client in a room on server A, with a plain member on server B that publishes
/// numbered messages all along; the session client publishes too. After a third the client
/// is cut and its reconnect goes to B; after two thirds, cut again, back to A (which still
/// has its old, now out-of-date copy of the session and must not use it). Both directions:
/// every message exactly once, in order; the client resumes twice (no gap); each server
/// counts one resume from Redis.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_cut_from_one_server_resumes_on_another_without_loss() {
    const COUNT: usize = 300;
    let started = Instant::now();
    let Moving {
        redis: _redis,
        a,
        b,
        proxy,
        mut tx,
        mut rx,
        member,
    } = moving_session(10_000, "move", "").await;
    let (mut member_tx, mut member_rx) = member.split();
    let (a_addr, b_addr) = (a.addr, b.addr);

    // The client's side: the member's messages p0.. in order, exactly once, no gap; the
    // cut after a third of them, with the reconnect going to B.
    let reader = tokio::spawn(async move {
        let (mut next, mut resumed) = (0usize, 0usize);
        while next < COUNT {
            match next_interesting(&mut rx).await {
                Event::Message(Message::Text(text)) => {
                    assert_eq!(text, format!("p{next}"), "out of order or duplicated");
                    next += 1;
                    if next == COUNT / 3 {
                        proxy.set_upstream(b_addr);
                        proxy.cut(Cut::Rst);
                    }
                    if next == 2 * COUNT / 3 {
                        proxy.set_upstream(a_addr);
                        proxy.cut(Cut::Rst);
                    }
                }
                Event::Session {
                    acknowledged,
                    resumed: r,
                } => {
                    assert!(acknowledged);
                    assert!(r, "the session resumes on the other server");
                    resumed += 1;
                }
                Event::Open { .. } => {}
                Event::Gap(gap) => panic!("no message may be lost: {gap:?}"),
                other => panic!("unexpected {other:?}"),
            }
        }
        // Nothing more (no duplicates) for a while.
        let extra = tokio::time::timeout(Duration::from_millis(400), async {
            loop {
                match rx.next().await {
                    Some(Event::Message(message)) => return Some(message),
                    Some(_) => {}
                    None => return None,
                }
            }
        })
        .await;
        assert!(
            matches!(extra, Err(_) | Ok(None)),
            "a message too many: {extra:?}"
        );
        (resumed, proxy, rx)
    });

    // The member's side: the client's messages c0.. in order, exactly once.
    let member_reader = tokio::spawn(async move {
        let mut next = 0usize;
        while next < COUNT {
            let message = tokio::time::timeout(STEP, member_rx.next())
                .await
                .expect("a message in time")
                .expect("open")
                .expect("no error");
            if let WsMessage::Text(text) = message {
                assert_eq!(
                    text.as_str(),
                    format!("c{next}"),
                    "out of order or duplicated"
                );
                next += 1;
            }
        }
        let extra = tokio::time::timeout(Duration::from_millis(400), member_rx.next()).await;
        assert!(extra.is_err(), "a message too many: {extra:?}");
    });

    publish_both(&mut member_tx, &mut tx, COUNT).await;
    let (resumed, _proxy, _rx) = tokio::time::timeout(STEP * 3, reader)
        .await
        .expect("the client gets everything in time")
        .expect("client side correct");
    tokio::time::timeout(STEP * 3, member_reader)
        .await
        .expect("the member gets everything in time")
        .expect("member side correct");
    assert_eq!(resumed, 2, "two resumes");
    for server in [&a, &b] {
        assert_eq!(server.metric("unisock_session_resumes_total").await, 1);
        assert_eq!(
            server.metric("unisock_session_remote_resumes_total").await,
            1
        );
        assert_eq!(server.metric("unisock_session_gaps_total").await, 0);
    }
    assert!(started.elapsed() < Duration::from_secs(60));
}

/// A session away while its room's history is trimmed past it resumes on another server as
/// a new session, with the explicit gap (the same as an expired session on one server), and
/// the gap is counted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_whose_history_was_trimmed_gets_the_gap() {
    const AWAY: usize = 400;
    // About 10 messages kept (Redis trims in blocks of 100).
    let Moving {
        redis: _redis,
        a,
        b,
        proxy,
        tx: _tx,
        mut rx,
        mut member,
    } = moving_session(10, "trim", "").await;
    first_message(&mut member, &mut rx).await;
    // Acknowledged and checkpointed.
    tokio::time::sleep(Duration::from_millis(300)).await;

    // Away (reconnects refused) while the room goes on, then back, to B.
    proxy.set_upstream(b.addr);
    proxy.refuse_for(Duration::from_millis(1500));
    for i in 0..AWAY {
        member
            .send(WsMessage::text(format!("away{i}")))
            .await
            .expect("send");
    }
    expect_open(&mut rx, false).await;
    assert_eq!(
        next_interesting(&mut rx).await,
        Event::Gap(Gap {
            direction: Direction::Incoming,
            first: 2,
            last: None,
            reason: GapReason::SessionExpired,
            messages: Vec::new(),
        })
    );
    // The new session works.
    member.send(WsMessage::text("after")).await.expect("send");
    assert_eq!(
        next_interesting(&mut rx).await,
        Event::Message(Message::text("after"))
    );
    assert_eq!(b.metric("unisock_session_gaps_total").await, 1);
    assert_eq!(b.metric("unisock_session_resumes_total").await, 0);
    drop(a);
}

/// Redis gone when the client comes back to another server: that server cannot know the
/// session, so the client gets a new one with the explicit gap, promptly (no hang).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_down_during_a_resume_gives_the_gap_not_a_hang() {
    let Moving {
        mut redis,
        a,
        b,
        proxy,
        tx: _tx,
        mut rx,
        mut member,
    } = moving_session(10_000, "down", "").await;
    first_message(&mut member, &mut rx).await;
    redis.kill();
    let cut = Instant::now();
    proxy.set_upstream(b.addr);
    proxy.cut(Cut::Rst);
    expect_open(&mut rx, false).await;
    assert_eq!(
        next_interesting(&mut rx).await,
        Event::Gap(Gap {
            direction: Direction::Incoming,
            first: 2,
            last: None,
            reason: GapReason::SessionUnknown,
            messages: Vec::new(),
        })
    );
    assert!(
        cut.elapsed() < Duration::from_secs(5),
        "gap after {:?}",
        cut.elapsed()
    );
    assert_eq!(b.metric("unisock_session_gaps_total").await, 1);
    drop(a);
}

/// The subscriptions to Redis are killed (repeatedly) while a room is busy: the session
/// member on A still gets every message, in order, with no gap — what its server missed on
/// the subscription it gets from the room's history when it resubscribes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_member_catches_up_after_its_server_lost_the_subscription() {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;
    /// Most messages published (the publisher stops earlier once A has missed some).
    const LIMIT: usize = 50_000;
    let redis = RedisServer::start();
    let a = start_server(&redis, 100_000).await;
    let b = start_server(&redis, 100_000).await;
    let url = format!("ws://{}/rooms/busy", a.addr);
    let (_tx, mut rx) = unisock::connect(&url, session_options(HEARTBEAT_TIMEOUT))
        .await
        .unwrap();
    expect_open(&mut rx, false).await;
    let member = plain_member(b.addr, "busy").await;
    let (mut member_tx, _member_rx) = member.split();
    let missed = Arc::new(AtomicBool::new(false));
    // Publishes until A has missed messages, and 200 more; returns how many.
    let publisher = {
        let missed = Arc::clone(&missed);
        tokio::spawn(async move {
            let mut extra = 200;
            for i in 0..LIMIT {
                member_tx
                    .send(WsMessage::text(format!("p{i}")))
                    .await
                    .expect("send");
                if i % 50 == 0 {
                    tokio::time::sleep(Duration::from_millis(1)).await;
                }
                if missed.load(Ordering::SeqCst) {
                    extra -= 1;
                    if extra == 0 {
                        return i + 1;
                    }
                }
            }
            LIMIT
        })
    };
    // Kills the subscriptions until server A has really missed messages from B.
    let killer = {
        let url = redis.url();
        let a_addr = a.addr;
        let missed = Arc::clone(&missed);
        tokio::spawn(async move {
            let client = redis::Client::open(url.as_str()).expect("redis URL");
            let mut connection = client
                .get_multiplexed_async_connection()
                .await
                .expect("redis connection");
            for _ in 0..500 {
                let _: redis::RedisResult<i64> = redis::cmd("CLIENT")
                    .arg("KILL")
                    .arg("TYPE")
                    .arg("pubsub")
                    .query_async(&mut connection)
                    .await;
                tokio::time::sleep(Duration::from_millis(5)).await;
                if metric_at(a_addr, "unisock_backplane_missed_total").await > 0 {
                    missed.store(true, Ordering::SeqCst);
                    return;
                }
            }
        })
    };
    let mut next = 0usize;
    let mut total = None;
    let mut publisher = Some(publisher);
    while total.is_none_or(|total| next < total) {
        if let Some(done) = publisher.take_if(|p| p.is_finished()) {
            total = Some(done.await.expect("publisher"));
            continue;
        }
        match next_interesting(&mut rx).await {
            Event::Message(Message::Text(text)) => {
                assert_eq!(text, format!("p{next}"), "out of order, lost or duplicated");
                next += 1;
            }
            Event::Gap(gap) => panic!("no message may be lost: {gap:?}"),
            other => panic!("unexpected {other:?}"),
        }
    }
    killer.await.expect("killer");
    assert!(
        missed.load(Ordering::SeqCst),
        "server A never missed a message: the test proved nothing"
    );
}

/// With `notify_self`, the session's own messages come back to it through the room's
/// history too, and are renumbered the same way on the other server: after a move from A to
/// B, the client has every message of the member and every one of its own, each exactly
/// once and in order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_with_notify_self_moves_with_its_own_messages() {
    const COUNT: usize = 200;
    let Moving {
        redis: _redis,
        a,
        b,
        proxy,
        mut tx,
        mut rx,
        member,
    } = moving_session(10_000, "echoing", "?notify_self=true").await;
    let (mut member_tx, _member_rx) = member.split();
    let b_addr = b.addr;
    let reader = tokio::spawn(async move {
        let (mut next_p, mut next_c, mut resumed) = (0usize, 0usize, 0usize);
        while next_p < COUNT || next_c < COUNT {
            match next_interesting(&mut rx).await {
                Event::Message(Message::Text(text)) => {
                    if let Some(n) = text.strip_prefix('p') {
                        assert_eq!(n, next_p.to_string(), "member's: out of order or twice");
                        next_p += 1;
                    } else if let Some(n) = text.strip_prefix('c') {
                        assert_eq!(n, next_c.to_string(), "own: out of order or twice");
                        next_c += 1;
                    } else {
                        panic!("unexpected {text}");
                    }
                    if next_p + next_c == COUNT {
                        proxy.set_upstream(b_addr);
                        proxy.cut(Cut::Rst);
                    }
                }
                Event::Session { resumed: r, .. } => {
                    assert!(r, "resumed");
                    resumed += 1;
                }
                Event::Open { .. } => {}
                Event::Gap(gap) => panic!("no message may be lost: {gap:?}"),
                other => panic!("unexpected {other:?}"),
            }
        }
        (resumed, proxy)
    });
    publish_both(&mut member_tx, &mut tx, COUNT).await;
    let (resumed, _proxy) = tokio::time::timeout(STEP * 3, reader)
        .await
        .expect("everything in time")
        .expect("client side correct");
    assert_eq!(resumed, 1);
    assert_eq!(b.metric("unisock_session_remote_resumes_total").await, 1);
    drop(a);
}
