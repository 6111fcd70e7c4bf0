//! Acknowledged sessions (`unisock.v1`) end to end: the native client against `unisock serve`
//! in this process, through the fault-injecting proxy over loopback. Every wait is bounded.
//!
//! Run with `cargo test --features server --test native_sessions`.
#![cfg(all(feature = "server", not(target_arch = "wasm32")))]

mod common;
#[path = "support/session_cuts.rs"]
mod session_cuts;
#[path = "support/session_events.rs"]
mod session_events;
#[path = "support/test_server.rs"]
mod test_server;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::fault_proxy::{Cut, FaultProxy};
use common::{next_event, STEP};
use futures::{SinkExt, StreamExt};
use session_cuts::{Seen, COUNT, CUTS, CUT_KINDS};
use session_events::{expect_open, next_interesting, session_options};
use test_server::TestServer;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::Message as WsMessage;
use unisock::server::ServerConfig;
use unisock::{Direction, Error, Event, Gap, GapReason, Message, Options, SessionOptions};

/// The session clients' heartbeat timeout: a blackhole is found in < 0.5 s.
const HEARTBEAT_TIMEOUT: Duration = Duration::from_millis(200);

async fn proxied(config: ServerConfig) -> (TestServer, FaultProxy) {
    let server = TestServer::start(config).await;
    let proxy = FaultProxy::start(server.addr).await.unwrap();
    (server, proxy)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_thousand_messages_each_way_survive_twenty_cuts_exactly_once() {
    let started = Instant::now();
    let (_server, proxy) = proxied(ServerConfig::default()).await;
    let url = format!("ws://{}/echo", proxy.addr());
    let (mut tx, mut rx) = unisock::connect(&url, session_options(HEARTBEAT_TIMEOUT))
        .await
        .unwrap();
    let opens = Arc::new(AtomicU32::new(0));

    // Reader: records what arrives until the close.
    let reader = {
        let opens = opens.clone();
        tokio::spawn(async move {
            let (mut seen, mut errors) = (Seen::default(), 0u32);
            loop {
                let event = tokio::time::timeout(STEP, rx.next())
                    .await
                    .expect("an event within the time limit")
                    .expect("events until the close");
                match event {
                    Event::Message(Message::Text(n)) => seen.message(&n),
                    Event::Open { .. } => {
                        seen.opens += 1;
                        opens.fetch_add(1, Ordering::SeqCst);
                    }
                    Event::Session {
                        acknowledged,
                        resumed,
                    } => {
                        if !acknowledged {
                            seen.problem("the session was not acknowledged".into());
                        }
                        seen.resumed += u32::from(resumed);
                    }
                    Event::Gap(gap) => seen.problem(format!("lost: {gap:?}")),
                    Event::Error(_) => errors += 1,
                    Event::Reconnecting { .. } => {}
                    Event::Close(close) => {
                        seen.close = Some(close);
                        return (seen, errors);
                    }
                    other => seen.problem(format!("unexpected {other:?}")),
                }
            }
        })
    };

    // Cutter: cuts at pseudo-random moments (RST, FIN, blackhole in turn), each once the
    // client is back and traffic flows again.
    let cuts_done = Arc::new(AtomicU32::new(0));
    let cutter = {
        let cuts_done = cuts_done.clone();
        let opens = opens.clone();
        tokio::spawn(async move {
            for (cut, delay) in (0..CUTS).zip(session_cuts::cut_delays_ms()) {
                tokio::time::sleep(Duration::from_millis(delay.into())).await;
                let before = opens.load(Ordering::SeqCst);
                match CUT_KINDS[cut as usize % 3] {
                    "rst" => proxy.cut(Cut::Rst),
                    "fin" => proxy.cut(Cut::Fin),
                    _ => proxy.blackhole(),
                }
                cuts_done.fetch_add(1, Ordering::SeqCst);
                println!(
                    "cut {cut} ({}) at {:?}",
                    CUT_KINDS[cut as usize % 3],
                    started.elapsed()
                );
                let deadline = Instant::now() + STEP;
                while opens.load(Ordering::SeqCst) == before {
                    assert!(Instant::now() < deadline, "no reconnect after cut {cut}");
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
            }
            proxy
        })
    };

    // Sender: through the Sink (it waits while the replay buffer and queue are full).
    for i in 0..COUNT {
        let deadline = Instant::now() + STEP;
        while !session_cuts::may_send(i, cuts_done.load(Ordering::SeqCst)) {
            assert!(Instant::now() < deadline, "cutter stalled");
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        tokio::time::timeout(STEP, tx.send(Message::text(i.to_string())))
            .await
            .expect("send within the time limit")
            .unwrap();
        if i % 16 == 0 {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    }
    let _proxy = cutter.await.unwrap();
    // Everything sent? Then close (which waits for the last acknowledgements).
    let deadline = Instant::now() + 3 * STEP;
    let (seen, errors) = loop {
        assert!(
            Instant::now() < deadline,
            "echoes did not all arrive in time"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
        if reader.is_finished() {
            panic!("reader ended early: {:?}", reader.await);
        }
        if tx.buffered_amount() == 0 {
            tx.close(1000, "done").unwrap();
            break tokio::time::timeout(STEP, reader).await.unwrap().unwrap();
        }
    };
    let elapsed = started.elapsed();
    println!("{}, {errors} errors, in {elapsed:?}", seen.check());
    assert!(elapsed < Duration::from_secs(90), "took {elapsed:?}");
}

#[tokio::test]
async fn restarted_server_cannot_resume_and_the_app_gets_both_gaps() {
    let (server, proxy) = proxied(ServerConfig::default()).await;
    let url = format!("ws://{}/echo", proxy.addr());
    let (mut tx, mut rx) = unisock::connect(&url, session_options(HEARTBEAT_TIMEOUT))
        .await
        .unwrap();
    expect_open(&mut rx, false).await;
    for text in ["a", "b"] {
        tx.send(Message::text(text)).await.unwrap();
        assert_eq!(
            next_interesting(&mut rx).await,
            Event::Message(Message::text(text))
        );
    }
    // The network goes silent: these two are written but never acknowledged.
    proxy.blackhole();
    tx.send(Message::text("c")).await.unwrap();
    tx.send(Message::text("d")).await.unwrap();
    server.kill().await;
    let restarted = TestServer::start(ServerConfig::default()).await;
    proxy.set_upstream(restarted.addr);

    expect_open(&mut rx, false).await;
    assert_eq!(
        next_interesting(&mut rx).await,
        Event::Gap(Gap {
            direction: Direction::Incoming,
            first: 3,
            last: None,
            reason: GapReason::SessionUnknown,
            messages: Vec::new(),
        })
    );
    assert_eq!(
        next_interesting(&mut rx).await,
        Event::Gap(Gap {
            direction: Direction::Outgoing,
            first: 3,
            last: Some(4),
            reason: GapReason::SessionUnknown,
            messages: vec![Message::text("c"), Message::text("d")],
        })
    );
    // The new session works, numbered from 1 again.
    tx.send(Message::text("e")).await.unwrap();
    assert_eq!(
        next_interesting(&mut rx).await,
        Event::Message(Message::text("e"))
    );
    tx.close(1000, "").unwrap();
    assert!(matches!(next_interesting(&mut rx).await, Event::Close(c) if c.code == 1000));
}

#[tokio::test]
async fn session_expires_after_the_grace_period() {
    let config = ServerConfig {
        session_grace: Duration::from_millis(500),
        ..ServerConfig::default()
    };
    let (_server, proxy) = proxied(config).await;
    let url = format!("ws://{}/echo", proxy.addr());
    let (mut tx, mut rx) = unisock::connect(&url, session_options(HEARTBEAT_TIMEOUT))
        .await
        .unwrap();
    expect_open(&mut rx, false).await;
    tx.send(Message::text("a")).await.unwrap();
    assert_eq!(
        next_interesting(&mut rx).await,
        Event::Message(Message::text("a"))
    );

    // Away for longer than the grace period.
    proxy.refuse_for(Duration::from_millis(1500));
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
    // Away for less: resumed, nothing lost.
    tx.send(Message::text("b")).await.unwrap();
    assert_eq!(
        next_interesting(&mut rx).await,
        Event::Message(Message::text("b"))
    );
    proxy.cut(Cut::Rst);
    expect_open(&mut rx, true).await;
    tx.send(Message::text("c")).await.unwrap();
    assert_eq!(
        next_interesting(&mut rx).await,
        Event::Message(Message::text("c"))
    );
}

/// A room member that is away gets what was said meanwhile on resume, within the server's
/// buffer; beyond it, an explicit gap with the exact numbers and then the newest messages.
#[tokio::test]
async fn room_broadcasts_while_away_are_replayed_and_overflow_is_a_gap() {
    let config = ServerConfig {
        session_buffer_messages: 10,
        ..ServerConfig::default()
    };
    let (server, proxy) = proxied(config).await;
    let away_url = format!("ws://{}/rooms/lobby", proxy.addr());
    let (_away_tx, mut away) = unisock::connect(&away_url, session_options(HEARTBEAT_TIMEOUT))
        .await
        .unwrap();
    expect_open(&mut away, false).await;
    let speaker_url = format!("ws://{}/rooms/lobby", server.addr);
    let (mut speaker, _speaker_rx) = unisock::connect(&speaker_url, Options::default())
        .await
        .unwrap();

    speaker.send(Message::text("hello")).await.unwrap();
    assert_eq!(
        next_interesting(&mut away).await,
        Event::Message(Message::text("hello"))
    );

    // Away while 5 messages are said (within the buffer of 10): all of them on resume.
    proxy.refuse_for(Duration::from_millis(500));
    tokio::time::sleep(Duration::from_millis(100)).await;
    for i in 0..5 {
        speaker.send(Message::text(format!("a{i}"))).await.unwrap();
    }
    expect_open(&mut away, true).await;
    for i in 0..5 {
        assert_eq!(
            next_interesting(&mut away).await,
            Event::Message(Message::text(format!("a{i}")))
        );
    }

    // Away while 30 are said: the first 20 did not fit.
    proxy.refuse_for(Duration::from_millis(500));
    tokio::time::sleep(Duration::from_millis(100)).await;
    for i in 0..30 {
        speaker.send(Message::text(format!("b{i}"))).await.unwrap();
    }
    expect_open(&mut away, true).await;
    assert_eq!(
        next_interesting(&mut away).await,
        Event::Gap(Gap {
            direction: Direction::Incoming,
            first: 7,
            last: Some(26),
            reason: GapReason::Overflow,
            messages: Vec::new(),
        })
    );
    for i in 20..30 {
        assert_eq!(
            next_interesting(&mut away).await,
            Event::Message(Message::text(format!("b{i}")))
        );
    }
}

#[tokio::test]
async fn a_server_that_selects_no_subprotocol_is_refused_as_in_the_browser() {
    // Only `unisock.v1` offered and the server selects nothing: browsers fail the handshake,
    // so unisock does on every target. (With an application subprotocol the server knows,
    // plain mode follows: the next test.)
    let config = ServerConfig {
        sessions: false,
        ..ServerConfig::default()
    };
    let server = TestServer::start(config).await;
    let url = format!("ws://{}/echo", server.addr);
    let options = session_options(HEARTBEAT_TIMEOUT).without_reconnect();
    match unisock::connect(&url, options).await {
        Err(Error::Handshake { reason, .. }) => {
            assert!(reason.to_lowercase().contains("subprotocol"), "{reason}")
        }
        other => panic!("expected a Handshake error, got {other:?}"),
    }
}

#[tokio::test]
async fn a_server_without_sessions_gives_plain_websocket_and_says_so() {
    let config = ServerConfig {
        sessions: false,
        ..ServerConfig::default()
    };
    let server = TestServer::start(config).await;
    let url = format!("ws://{}/echo", server.addr);
    let options = session_options(HEARTBEAT_TIMEOUT).protocol("chat");
    let (mut tx, mut rx) = unisock::connect(&url, options).await.unwrap();
    assert_eq!(
        next_interesting(&mut rx).await,
        Event::Open {
            protocol: "chat".into()
        }
    );
    assert_eq!(
        next_interesting(&mut rx).await,
        Event::Session {
            acknowledged: false,
            resumed: false
        }
    );
    tx.send(Message::text("plain")).await.unwrap();
    assert_eq!(
        next_interesting(&mut rx).await,
        Event::Message(Message::text("plain"))
    );
}

#[tokio::test]
async fn a_session_client_that_never_answers_pings_is_dropped_and_its_session_kept() {
    let server = TestServer::start(ServerConfig {
        ping_interval: Some(Duration::from_millis(250)),
        ..ServerConfig::default()
    })
    .await;
    let mut dead = raw_session_client(server.addr).await;
    dead.send(frame("0123456789abcdef0123456789abcdef", 'H', "0"))
        .await
        .unwrap();
    let welcome = raw_next(&mut dead).await.unwrap().into_text().unwrap();
    let token = welcome.trim_end_matches("W2.0.1'").to_owned();
    // From now on it answers nothing, like a peer whose machine died.
    server.settles_at(0, 1, STEP).await;
    server.settles_at(0, 0, STEP).await;
    // Its session waits for the client's next connection, within the grace period.
    let mut back = raw_session_client(server.addr).await;
    back.send(frame(&token, 'H', "0")).await.unwrap();
    let welcome = raw_next(&mut back).await.unwrap().into_text().unwrap();
    assert!(welcome.ends_with("W1.0.1'"), "resumed: {welcome}");
    drop(dead);
}

type Raw =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// A raw client that speaks `unisock.v1` by hand.
async fn raw_session_client(addr: SocketAddr) -> Raw {
    let mut request = format!("ws://{addr}/echo").into_client_request().unwrap();
    request.headers_mut().insert(
        "sec-websocket-protocol",
        HeaderValue::from_static("unisock.v1"),
    );
    let (ws, response) = tokio_tungstenite::connect_async(request).await.unwrap();
    assert_eq!(response.headers()["sec-websocket-protocol"], "unisock.v1");
    ws
}

async fn raw_next(ws: &mut Raw) -> Option<WsMessage> {
    tokio::time::timeout(STEP, ws.next())
        .await
        .expect("an answer in time")
        .and_then(Result::ok)
}

/// The trailer of a frame: `tag fields len` (see docs/session-protocol.md).
fn frame(payload: &str, tag: char, fields: &str) -> WsMessage {
    let len = 1 + fields.len() + 1;
    WsMessage::text(format!(
        "{payload}{tag}{fields}{}",
        (0x20 + len as u8) as char
    ))
}

fn close_code(message: Option<WsMessage>) -> Option<u16> {
    match message {
        Some(WsMessage::Close(Some(frame))) => Some(frame.code.into()),
        _ => None,
    }
}

#[tokio::test]
async fn forged_stale_and_hostile_input_get_explicit_answers() {
    let config = ServerConfig {
        session_grace: Duration::from_millis(100),
        ..ServerConfig::default()
    };
    let server = TestServer::start(config).await;

    // A forged token: a new session, status 2 (unknown), never someone else's session.
    let mut ws = raw_session_client(server.addr).await;
    ws.send(frame("0123456789abcdef0123456789abcdef", 'H', "0"))
        .await
        .unwrap();
    let welcome = raw_next(&mut ws).await.unwrap().into_text().unwrap();
    assert!(welcome.ends_with("W2.0.1'"), "{welcome}");
    let token = welcome.trim_end_matches("W2.0.1'").to_owned();
    assert_eq!(token.len(), 32);
    assert_ne!(token, "0123456789abcdef0123456789abcdef");
    // Data with the next number is echoed with its own number and our ack.
    ws.send(frame("hi", 'D', "1.0")).await.unwrap();
    assert_eq!(raw_next(&mut ws).await.unwrap(), frame("hi", 'D', "1.1"));
    drop(ws);

    // The same token once its grace period is over: status 3 (expired).
    tokio::time::sleep(Duration::from_millis(400)).await;
    let mut ws = raw_session_client(server.addr).await;
    ws.send(frame(&token, 'H', "1")).await.unwrap();
    let welcome = raw_next(&mut ws).await.unwrap().into_text().unwrap();
    assert!(welcome.ends_with("W3.0.1'"), "{welcome}");

    // Hostile frames: each closes with 1002.
    let hostile = [
        WsMessage::binary(vec![0xff, 0x00]), // not a frame
        frame("", 'D', "2.0"),               // skips sequence number 1
        frame("", 'A', "5"),                 // acks something never sent
        frame("", 'H', "0"),                 // a second hello
    ];
    for bad in hostile {
        let mut ws = raw_session_client(server.addr).await;
        ws.send(frame("", 'H', "0")).await.unwrap();
        assert!(raw_next(&mut ws).await.is_some(), "welcome");
        ws.send(bad.clone()).await.unwrap();
        assert_eq!(close_code(raw_next(&mut ws).await), Some(1002), "{bad:?}");
    }
    // A malformed hello and a resume claiming unsent messages: 1002 too.
    for bad in [
        frame("no spaces allowed", 'H', "0"),
        frame(&token, 'D', "1.0"),
    ] {
        let mut ws = raw_session_client(server.addr).await;
        ws.send(bad.clone()).await.unwrap();
        assert_eq!(close_code(raw_next(&mut ws).await), Some(1002), "{bad:?}");
    }
}

/// A hostile server under `unisock.v1`: the client fails with a typed protocol error.
#[tokio::test]
#[allow(clippy::result_large_err)] // the handshake callback's signature is tungstenite's
async fn a_forged_welcome_is_a_typed_error_not_a_panic() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            tokio::spawn(async move {
                let callback = |_: &tokio_tungstenite::tungstenite::handshake::server::Request,
                                mut response: tokio_tungstenite::tungstenite::handshake::server::Response| {
                    response
                        .headers_mut()
                        .insert("sec-websocket-protocol", HeaderValue::from_static("unisock.v1"));
                    Ok(response)
                };
                let Ok(mut ws) = tokio_tungstenite::accept_hdr_async(stream, callback).await else {
                    return;
                };
                let _hello = ws.next().await;
                // "Resumed" a session the client never had.
                let _ = ws.send(frame("abc", 'W', "1.0.1")).await;
                while let Some(Ok(_)) = ws.next().await {}
            });
        }
    });
    let url = format!("ws://{addr}/");
    let error = unisock::connect(&url, session_options(HEARTBEAT_TIMEOUT))
        .await
        .unwrap_err();
    assert!(
        matches!(&error, unisock::Error::Protocol { reason } if reason.contains("unisock.v1")),
        "{error:?}"
    );
}

/// Steady-state cost of sessions: the same pipelined echo of small messages with sessions on
/// and off against the same server, in one run (compare only the ratio). A measurement, not a
/// check: `cargo test --release --features server --test native_sessions -- --ignored
/// --nocapture overhead`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a measurement: run in release with --ignored --nocapture"]
async fn overhead_of_sessions_on_a_pipelined_echo() {
    const COUNT: usize = 50_000;
    let server = TestServer::start(ServerConfig::default()).await;
    let url = format!("ws://{}/echo", server.addr);
    let payload = "x".repeat(64);
    let mut results = Vec::new();
    for round in 0..3 {
        for session in [false, true] {
            let mut options = Options::default().heartbeat(None);
            if session {
                options = options.session(SessionOptions::default());
            }
            let (mut tx, mut rx) = unisock::connect(&url, options).await.unwrap();
            let started = Instant::now();
            let reader = tokio::spawn(async move {
                let mut n = 0;
                while n < COUNT {
                    match rx.next().await {
                        Some(Event::Message(_)) => n += 1,
                        Some(_) => {}
                        None => panic!("ended early"),
                    }
                }
                rx
            });
            for _ in 0..COUNT {
                tx.feed(Message::text(payload.clone())).await.unwrap();
            }
            tx.flush().await.unwrap();
            let _rx = tokio::time::timeout(3 * STEP, reader)
                .await
                .unwrap()
                .unwrap();
            let rate = COUNT as f64 / started.elapsed().as_secs_f64();
            let mut rx = _rx;
            // One at a time: the round trip, without any batching.
            let started = Instant::now();
            for _ in 0..2000 {
                tx.send(Message::text(payload.clone())).await.unwrap();
                while !matches!(next_event(&mut rx).await, Event::Message(_)) {}
            }
            let rtt = started.elapsed() / 2000;
            println!("round {round}, session {session}: {rate:.0} echoes/s pipelined, round trip {rtt:?}");
            if round > 0 {
                results.push((session, rate, rtt.as_secs_f64()));
            }
            tx.close(1000, "").unwrap();
        }
    }
    let mean = |on: bool, pick: fn(&(bool, f64, f64)) -> f64| {
        let values: Vec<f64> = results.iter().filter(|r| r.0 == on).map(pick).collect();
        values.iter().sum::<f64>() / values.len() as f64
    };
    let (rate_on, rate_off) = (mean(true, |r| r.1), mean(false, |r| r.1));
    let (rtt_on, rtt_off) = (mean(true, |r| r.2), mean(false, |r| r.2));
    println!(
        "sessions on / off: pipelined throughput {:.2} ({rate_on:.0} vs {rate_off:.0} echoes/s), \
         round trip {:.2} ({:.1} vs {:.1} µs)",
        rate_on / rate_off,
        rtt_on / rtt_off,
        rtt_on * 1e6,
        rtt_off * 1e6
    );
}

#[tokio::test]
async fn a_live_member_that_reads_too_slowly_gets_a_gap_not_a_protocol_error() {
    // The session's buffer holds 8 messages of 64 KiB; the client's app reads nothing while
    // 400 are said (25 MiB, far beyond what the sockets buffer), then reads everything.
    const SIZE: usize = 64 << 10;
    let config = ServerConfig {
        session_buffer_messages: 8,
        ..ServerConfig::default()
    };
    let server = TestServer::start(config).await;
    let url = format!("ws://{}/rooms/slow", server.addr);
    let options = Options {
        receive_buffer: 1,
        ..session_options(HEARTBEAT_TIMEOUT)
    };
    let (_tx, mut slow) = unisock::connect(&url, options).await.unwrap();
    expect_open(&mut slow, false).await;
    let (mut speaker, _speaker_rx) = unisock::connect(&url, Options::default()).await.unwrap();
    for i in 0..400u32 {
        let mut payload = vec![0u8; SIZE];
        payload[..4].copy_from_slice(&i.to_be_bytes());
        tokio::time::timeout(STEP, speaker.send(Message::binary(payload)))
            .await
            .expect("the speaker is not held back")
            .unwrap();
    }
    let (mut last, mut errors, mut gaps) = (None::<u32>, Vec::new(), Vec::new());
    while last != Some(399) {
        match next_event(&mut slow).await {
            Event::Message(message) => {
                let n = u32::from_be_bytes(message.as_bytes()[..4].try_into().unwrap());
                assert!(
                    last.is_none_or(|last| n > last),
                    "in order: {n} after {last:?}"
                );
                last = Some(n);
            }
            Event::Gap(gap) => gaps.push(gap),
            Event::Error(error) => errors.push(error.to_string()),
            Event::Open { .. } | Event::Session { .. } | Event::Reconnecting { .. } => {}
            other => panic!("unexpected {other:?}"),
        }
    }
    println!("gaps {gaps:?}");
    assert!(!gaps.is_empty(), "the overflow is reported");
    assert!(errors.is_empty(), "no error, only the gap: {errors:?}");
}
