//! Integration tests of `unisock serve` (`unisock::server` and the `unisock` binary), over
//! 127.0.0.1 only, with tokio-tungstenite as the client. Every wait is bounded.
//!
//! Run with `cargo test --features server --test server`.
#![cfg(all(feature = "server", not(target_arch = "wasm32")))]

#[path = "support/http.rs"]
mod http;
#[path = "support/plain_client.rs"]
mod plain_client;
#[path = "support/test_server.rs"]
mod test_server;

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use futures::{SinkExt, StreamExt};
use http::http;
use plain_client::{connect, send_text, Client};
use test_server::TestServer;
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::error::{ProtocolError, SubProtocolError};
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::protocol::frame::coding::{CloseCode, Data, OpCode};
use tokio_tungstenite::tungstenite::protocol::frame::Frame;
use tokio_tungstenite::tungstenite::{Error as WsError, Message};
use unisock::server::ServerConfig;

/// Upper bound for any single wait: a failing test fails, it never hangs.
const STEP: Duration = Duration::from_secs(10);

impl TestServer {
    async fn default() -> Self {
        Self::start(ServerConfig::default()).await
    }
}

async fn try_connect(url: &str) -> Result<Client, WsError> {
    let request = url.into_client_request()?;
    try_connect_request(request).await
}

async fn try_connect_request(
    request: tokio_tungstenite::tungstenite::handshake::client::Request,
) -> Result<Client, WsError> {
    let (client, _response) = tokio::time::timeout(STEP, tokio_tungstenite::connect_async(request))
        .await
        .expect("handshake in time")?;
    Ok(client)
}

/// The HTTP status a failed handshake got.
fn rejected_status(result: Result<Client, WsError>) -> u16 {
    match result {
        Err(WsError::Http(response)) => response.status().as_u16(),
        Err(other) => panic!("expected an HTTP rejection, got {other}"),
        Ok(_) => panic!("expected an HTTP rejection, the handshake succeeded"),
    }
}

/// The next data or close message (pings and pongs skipped), bounded by [`STEP`].
async fn next_message(client: &mut Client) -> Message {
    loop {
        let item = tokio::time::timeout(STEP, client.next())
            .await
            .expect("a message in time")
            .expect("the stream is still open")
            .expect("no read error");
        if !matches!(item, Message::Ping(_) | Message::Pong(_)) {
            return item;
        }
    }
}

/// Expects a close frame with `code` as the next message.
async fn expect_close(client: &mut Client, code: u16) {
    match next_message(client).await {
        Message::Close(Some(frame)) => assert_eq!(u16::from(frame.code), code, "close code"),
        other => panic!("expected close {code}, got {}", describe(&other)),
    }
}

async fn expect_text(client: &mut Client, text: &str) {
    let message = next_message(client).await;
    assert!(
        message == Message::text(text),
        "expected text {text:?}, got {}",
        describe(&message)
    );
}

/// A short description of a message, for assertion failures (payloads can be large).
fn describe(message: &Message) -> String {
    let text = format!("{message:?}");
    match text.char_indices().nth(120) {
        Some((cut, _)) => format!("{}… ({} bytes)", &text[..cut], message.len()),
        None => text,
    }
}

/// A fresh directory under Cargo's temporary directory for integration tests.
fn temp_dir(name: &str) -> PathBuf {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!(
        "server-{name}-{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("create temp dir");
    dir
}

#[tokio::test]
async fn echo_returns_text_and_binary_as_is() {
    let server = TestServer::default().await;
    let mut client = connect(&server.url("/echo")).await;
    send_text(&mut client, "hello").await;
    expect_text(&mut client, "hello").await;
    let bytes = vec![0u8, 1, 2, 254, 255];
    client
        .send(Message::binary(bytes.clone()))
        .await
        .expect("send binary");
    assert_eq!(next_message(&mut client).await, Message::binary(bytes));
    // A clean close from the client is answered.
    client.close(None).await.expect("close");
    assert!(matches!(next_message(&mut client).await, Message::Close(_)));
    server.shutdown().await.expect("clean shutdown");
}

#[tokio::test]
async fn echo_answers_a_burst_in_order_then_the_close_behind_it() {
    let server = TestServer::default().await;
    let client = connect(&server.url("/echo")).await;
    let (mut tx, mut rx) = client.split();
    // Small and large messages, written with one flush and followed by a close frame, so the
    // server reads many before answering (its batching) and the close arrives while echoes
    // may still wait in its write buffer.
    let burst: Vec<Message> = (0..300u32)
        .map(|i| match i % 30 {
            29 => Message::binary(vec![(i % 251) as u8; 256 << 10]),
            _ => Message::text(i.to_string()),
        })
        .collect();
    let writer = tokio::spawn({
        let burst = burst.clone();
        async move {
            for message in burst {
                tx.feed(message).await.expect("feed");
            }
            tx.send(Message::Close(None)).await.expect("send close");
        }
    });
    for (i, sent) in burst.iter().enumerate() {
        let item = tokio::time::timeout(STEP, rx.next())
            .await
            .expect("an echo in time")
            .expect("the stream is still open")
            .expect("no read error");
        assert!(&item == sent, "echo {i}: got {}", describe(&item));
    }
    let close = tokio::time::timeout(STEP, rx.next())
        .await
        .expect("close in time");
    assert!(
        matches!(close, Some(Ok(Message::Close(_)))),
        "expected the close answer, got {close:?}"
    );
    writer.await.expect("writer task");
    server.shutdown().await.expect("clean shutdown");
}

#[tokio::test]
async fn selects_the_first_offered_known_subprotocol() {
    let server = TestServer::default().await;
    for (offer, expected) in [
        ("graphql-ws, unisock.test, chat", "unisock.test"),
        ("chat", "chat"),
        ("graphql-ws,chat", "chat"),
    ] {
        let (mut client, response) = tokio::time::timeout(
            STEP,
            tokio_tungstenite::connect_async(offering(&server, offer)),
        )
        .await
        .expect("in time")
        .expect("handshake");
        let selected = response.headers().get("sec-websocket-protocol");
        assert_eq!(
            selected.map(|v| v.to_str().unwrap()),
            Some(expected),
            "offer {offer:?}"
        );
        send_text(&mut client, offer).await;
        expect_text(&mut client, offer).await;
    }
    // Nothing known offered: the server selects none (which tungstenite's client, having
    // offered one, refuses).
    match try_connect_request(offering(&server, "graphql-ws")).await {
        Err(WsError::Protocol(ProtocolError::SecWebSocketSubProtocolError(
            SubProtocolError::NoSubProtocol,
        ))) => {}
        Err(other) => panic!("unexpected error {other}"),
        Ok(_) => panic!("expected no subprotocol to be selected"),
    }
}

fn offering(
    server: &TestServer,
    protocols: &'static str,
) -> tokio_tungstenite::tungstenite::handshake::client::Request {
    let mut request = server.url("/echo").into_client_request().unwrap();
    request.headers_mut().insert(
        "sec-websocket-protocol",
        HeaderValue::from_static(protocols),
    );
    request
}

#[tokio::test]
async fn room_broadcasts_to_others_but_not_the_sender_by_default() {
    let server = TestServer::default().await;
    let mut a = connect(&server.url("/rooms/lobby")).await;
    let mut b = connect(&server.url("/rooms/lobby?notify_self=false")).await;
    let mut c = connect(&server.url("/rooms/lobby")).await;

    send_text(&mut a, "from a").await;
    expect_text(&mut b, "from a").await;
    expect_text(&mut c, "from a").await;
    // b speaks after it got a's message: had a received its own, it would come first.
    send_text(&mut b, "from b").await;
    expect_text(&mut a, "from b").await;
    expect_text(&mut c, "from b").await;

    a.send(Message::binary(vec![7u8; 3])).await.expect("send");
    assert_eq!(next_message(&mut b).await, Message::binary(vec![7u8; 3]));
    assert_eq!(next_message(&mut c).await, Message::binary(vec![7u8; 3]));
}

#[tokio::test]
async fn room_with_notify_self_returns_the_senders_own_messages() {
    let server = TestServer::default().await;
    let mut a = connect(&server.url("/rooms/echoing?notify_self=true")).await;
    let mut b = connect(&server.url("/rooms/echoing")).await;
    let mut c = connect(&server.url("/rooms/echoing")).await;
    send_text(&mut a, "mine").await;
    expect_text(&mut a, "mine").await;
    expect_text(&mut b, "mine").await;
    expect_text(&mut c, "mine").await;
}

#[tokio::test]
async fn rooms_are_isolated() {
    let server = TestServer::default().await;
    let mut red_1 = connect(&server.url("/rooms/red")).await;
    let mut red_2 = connect(&server.url("/rooms/red")).await;
    let mut blue_1 = connect(&server.url("/rooms/blue")).await;
    let mut blue_2 = connect(&server.url("/rooms/blue")).await;

    send_text(&mut red_1, "red only").await;
    expect_text(&mut red_2, "red only").await;
    send_text(&mut blue_1, "blue only").await;
    // Had "red only" leaked into blue, it would arrive before this.
    expect_text(&mut blue_2, "blue only").await;
    send_text(&mut red_2, "red again").await;
    expect_text(&mut red_1, "red again").await;
}

#[tokio::test]
async fn upgrades_beyond_max_connections_get_503() {
    let server = TestServer::start(ServerConfig {
        max_connections: 2,
        ..ServerConfig::default()
    })
    .await;
    let mut first = connect(&server.url("/echo")).await;
    let mut second = connect(&server.url("/rooms/full")).await;
    assert_eq!(
        rejected_status(try_connect(&server.url("/echo")).await),
        503
    );
    assert_eq!(
        rejected_status(try_connect(&server.url("/rooms/full")).await),
        503
    );
    // Plain HTTP still works, and so do the open connections.
    assert_eq!(http(server.addr, "GET", "/missing.txt").await.0, 404);
    send_text(&mut first, "still here").await;
    expect_text(&mut first, "still here").await;

    // A freed slot can be used again (the server frees it once the close handshake is done).
    second.close(None).await.expect("close");
    assert!(matches!(next_message(&mut second).await, Message::Close(_)));
    let mut third = tokio::time::timeout(STEP, async {
        loop {
            match try_connect(&server.url("/echo")).await {
                Ok(client) => break client,
                Err(WsError::Http(response)) if response.status() == 503 => {
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
                Err(other) => panic!("unexpected error {other}"),
            }
        }
    })
    .await
    .expect("the slot is freed in time");
    send_text(&mut third, "third").await;
    expect_text(&mut third, "third").await;
}

#[tokio::test]
async fn oversized_message_closes_that_client_with_1009_only() {
    let server = TestServer::start(ServerConfig {
        max_message_size: 1024,
        ..ServerConfig::default()
    })
    .await;
    let mut big_sender = connect(&server.url("/echo")).await;
    let mut bystander = connect(&server.url("/echo")).await;
    let mut room_a = connect(&server.url("/rooms/limits")).await;
    let mut room_b = connect(&server.url("/rooms/limits")).await;

    // Exactly at the limit is fine.
    big_sender
        .send(Message::binary(vec![1u8; 1024]))
        .await
        .expect("send");
    let echoed = next_message(&mut big_sender).await;
    assert!(
        echoed == Message::binary(vec![1u8; 1024]),
        "got {}",
        describe(&echoed)
    );
    // One byte over is not.
    big_sender
        .send(Message::binary(vec![2u8; 1025]))
        .await
        .expect("send");
    match next_message(&mut big_sender).await {
        Message::Close(Some(frame)) => assert_eq!(frame.code, CloseCode::Size),
        other => panic!("expected close 1009, got {}", describe(&other)),
    }

    // The same in a room, with a message over the limit made of frames under it.
    for (opcode, is_final) in [
        (Data::Text, false),
        (Data::Continue, false),
        (Data::Continue, true),
    ] {
        let frame = Frame::message(vec![b'x'; 600], OpCode::Data(opcode), is_final);
        room_a
            .send(Message::Frame(frame))
            .await
            .expect("send a frame");
    }
    expect_close(&mut room_a, 1009).await;
    // And one far over the limit in a single frame.
    big_sender = connect(&server.url("/echo")).await;
    big_sender
        .send(Message::text("y".repeat(4 << 20)))
        .await
        .expect("send");
    expect_close(&mut big_sender, 1009).await;

    // Everyone else is unaffected.
    send_text(&mut bystander, "still fine").await;
    expect_text(&mut bystander, "still fine").await;
    let mut room_c = connect(&server.url("/rooms/limits")).await;
    send_text(&mut room_c, "room still fine").await;
    expect_text(&mut room_b, "room still fine").await;
}

#[tokio::test]
async fn room_member_that_does_not_read_is_closed_with_1013() {
    let server = TestServer::start(ServerConfig {
        max_message_size: 64 << 10,
        ..ServerConfig::default()
    })
    .await;
    let mut talker = connect(&server.url("/rooms/firehose")).await;
    let mut sleeper = connect(&server.url("/rooms/firehose")).await;
    // Far more than the socket buffers plus the member's inbox can hold.
    let sent = 400;
    for i in 0..sent {
        talker
            .send(Message::binary(vec![i as u8; 64 << 10]))
            .await
            .expect("send");
    }
    let mut received = 0;
    loop {
        match next_message(&mut sleeper).await {
            Message::Binary(_) => received += 1,
            Message::Close(Some(frame)) => {
                assert_eq!(u16::from(frame.code), 1013);
                break;
            }
            other => panic!("unexpected {}", describe(&other)),
        }
    }
    assert!(received < sent, "evicted before getting everything");
    // The room and the talker carry on. (The newcomer may first get the end of the
    // firehose, which the server may still be relaying.)
    let mut listener = connect(&server.url("/rooms/firehose")).await;
    send_text(&mut talker, "still talking").await;
    loop {
        match next_message(&mut listener).await {
            Message::Binary(_) => continue,
            message => {
                assert!(
                    message == Message::text("still talking"),
                    "got {}",
                    describe(&message)
                );
                break;
            }
        }
    }
}

#[tokio::test]
async fn shutdown_sends_1001_to_every_client_and_returns() {
    let server = TestServer::start(ServerConfig {
        shutdown_timeout: Duration::from_secs(5),
        ..ServerConfig::default()
    })
    .await;
    let mut clients = vec![
        connect(&server.url("/echo")).await,
        connect(&server.url("/echo?client_id=named")).await,
        connect(&server.url("/rooms/bye")).await,
        connect(&server.url("/rooms/bye?notify_self=true")).await,
    ];
    // Make sure every connection is fully set up server-side.
    for client in &mut clients[..2] {
        send_text(client, "ping").await;
        expect_text(client, "ping").await;
    }
    let addr = server.addr;
    let started = std::time::Instant::now();
    let stopping = tokio::spawn(server.shutdown());
    for client in &mut clients {
        match next_message(client).await {
            Message::Close(Some(frame)) => {
                assert_eq!(frame.code, CloseCode::Away);
                assert_eq!(frame.reason.as_str(), "server shutting down");
            }
            other => panic!("expected close 1001, got {}", describe(&other)),
        }
    }
    // Reading on sends tungstenite's answering close frame; then the stream ends.
    for client in &mut clients {
        let end = tokio::time::timeout(STEP, client.next())
            .await
            .expect("ends in time");
        assert!(
            end.is_none(),
            "clean end after the close handshake: {end:?}"
        );
    }
    // Our clients answered the close frames (tungstenite does on read), so `run` returns
    // without waiting for the whole shutdown timeout.
    tokio::time::timeout(STEP, stopping)
        .await
        .expect("in time")
        .expect("no panic")
        .expect("run returns Ok");
    assert!(started.elapsed() < Duration::from_secs(5));
    // Nothing listens any more.
    assert!(TcpStream::connect(addr).await.is_err());
}

#[tokio::test]
async fn shutdown_gives_up_on_clients_that_never_answer() {
    let server = TestServer::start(ServerConfig {
        shutdown_timeout: Duration::from_millis(300),
        ..ServerConfig::default()
    })
    .await;
    // A client that never reads: it never answers the close frame.
    let _silent = connect(&server.url("/echo")).await;
    tokio::time::timeout(STEP, server.shutdown())
        .await
        .expect("bounded by the shutdown timeout")
        .expect("run returns Ok");
}

#[tokio::test]
async fn drop_ends_the_named_connection_without_a_close_frame() {
    let server = TestServer::default().await;
    let mut victim = connect(&server.url("/rooms/net?client_id=tab-1")).await;
    let mut survivor = connect(&server.url("/rooms/net?client_id=tab-2")).await;
    let mut anonymous = connect(&server.url("/echo")).await;

    let (status, _, _) = http(server.addr, "POST", "/drop?client_id=tab-1").await;
    assert_eq!(status, 204);
    let ending = tokio::time::timeout(STEP, victim.next())
        .await
        .expect("the connection ends in time");
    match ending {
        None | Some(Err(_)) => {}
        Some(Ok(message)) => panic!("expected no close frame, got {message:?}"),
    }
    // Already gone, and never existed.
    assert_eq!(
        http(server.addr, "POST", "/drop?client_id=tab-1").await.0,
        404
    );
    assert_eq!(
        http(server.addr, "POST", "/drop?client_id=nobody").await.0,
        404
    );
    assert_eq!(http(server.addr, "POST", "/drop").await.0, 400);
    assert_eq!(
        http(server.addr, "POST", "/drop?client_id=bad%20id")
            .await
            .0,
        400
    );
    assert_eq!(
        http(server.addr, "GET", "/drop?client_id=tab-2").await.0,
        405
    );

    // The others are untouched, and the name can be used again (a reconnect).
    send_text(&mut anonymous, "ok").await;
    expect_text(&mut anonymous, "ok").await;
    let mut reconnected = connect(&server.url("/rooms/net?client_id=tab-1")).await;
    send_text(&mut reconnected, "back").await;
    expect_text(&mut survivor, "back").await;
}

#[tokio::test]
async fn bad_room_names_and_queries_get_400() {
    let server = TestServer::default().await;
    let long = "x".repeat(65);
    for path in [
        "/rooms/bad%20name".to_owned(),
        "/rooms/sl%2Fash".to_owned(),
        "/rooms/%C3%A9t%C3%A9".to_owned(),
        format!("/rooms/{long}"),
        "/rooms/ok?notify_self=maybe".to_owned(),
        "/rooms/ok?client_id=has%20space".to_owned(),
        format!("/echo?client_id={long}"),
    ] {
        assert_eq!(
            rejected_status(try_connect(&server.url(&path)).await),
            400,
            "{path}"
        );
    }
    // The longest valid name works.
    let mut client = connect(&server.url(&format!("/rooms/{}", "y".repeat(64)))).await;
    client.close(None).await.expect("close");
    // A plain GET of a WebSocket route says what is needed.
    assert_eq!(http(server.addr, "GET", "/echo").await.0, 426);
}

#[tokio::test]
async fn disallowed_origin_gets_403() {
    let server = TestServer::start(ServerConfig {
        allowed_origins: vec!["http://good.example:8080".into()],
        ..ServerConfig::default()
    })
    .await;
    let with_origin = |origin: &'static str, path: &str| {
        let mut request = server.url(path).into_client_request().unwrap();
        request
            .headers_mut()
            .insert("origin", HeaderValue::from_static(origin));
        request
    };
    for path in ["/echo", "/rooms/guarded"] {
        assert_eq!(
            rejected_status(try_connect_request(with_origin("http://evil.example", path)).await),
            403
        );
        let mut ok = try_connect_request(with_origin("http://good.example:8080", path))
            .await
            .expect("allowed origin");
        ok.close(None).await.expect("close");
    }
    // Non-browser clients send no Origin: allowed.
    let mut native = connect(&server.url("/echo")).await;
    send_text(&mut native, "no origin").await;
    expect_text(&mut native, "no origin").await;
}

#[tokio::test]
async fn serves_static_files_from_root_and_pkg() {
    let dir = temp_dir("static");
    let root = dir.join("www");
    std::fs::create_dir_all(root.join("css")).unwrap();
    std::fs::write(root.join("index.html"), "<h1>unisock demo</h1>").unwrap();
    std::fs::write(root.join("css/style.css"), "body {}").unwrap();
    let pkg = dir.join("pkg");
    std::fs::create_dir_all(&pkg).unwrap();
    std::fs::write(pkg.join("unisock_bg.wasm"), b"\0asm").unwrap();

    // pkg defaults to the directory next to root.
    let server = TestServer::start(ServerConfig {
        root: root.clone(),
        ..ServerConfig::default()
    })
    .await;
    let (status, _, body) = http(server.addr, "GET", "/").await;
    assert_eq!(
        (status, body.as_slice()),
        (200, &b"<h1>unisock demo</h1>"[..])
    );
    let (status, _, body) = http(server.addr, "GET", "/css/style.css").await;
    assert_eq!((status, body.as_slice()), (200, &b"body {}"[..]));
    let (status, _, body) = http(server.addr, "GET", "/pkg/unisock_bg.wasm").await;
    assert_eq!((status, body.as_slice()), (200, &b"\0asm"[..]));
    assert_eq!(http(server.addr, "GET", "/nope.html").await.0, 404);
    assert_eq!(http(server.addr, "GET", "/../Cargo.toml").await.0, 404);
    server.shutdown().await.expect("clean shutdown");
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn clients_that_never_answer_pings_are_dropped_and_live_ones_kept() {
    let server = TestServer::start(ServerConfig {
        ping_interval: Some(Duration::from_millis(250)),
        ..ServerConfig::default()
    })
    .await;
    // Never polled after the handshake: like a peer whose machine died, it answers nothing.
    let dead_echo = connect(&server.url("/echo")).await;
    let dead_member = connect(&server.url("/rooms/liveness")).await;
    // A unisock client without a heartbeat of its own: it answers the server's pings.
    let (mut tx, mut rx) = unisock::connect(&server.url("/echo"), unisock::Options::default())
        .await
        .expect("connect");
    assert!(matches!(
        next_event(&mut rx).await,
        unisock::Event::Open { .. }
    ));
    server.settles_at(0, 3, STEP).await;

    // Gone after a ping and a silent interval (500-750 ms); the live client stays.
    server.settles_at(0, 1, STEP).await;
    tokio::time::sleep(Duration::from_millis(1000)).await;
    assert_eq!(
        server.stats.websocket_connections(),
        1,
        "the live client stays"
    );
    tx.send(unisock::Message::text("still here")).await.unwrap();
    match next_event(&mut rx).await {
        unisock::Event::Message(message) => assert_eq!(message.as_text(), Some("still here")),
        other => panic!("expected the echo, got {other:?}"),
    }

    // What the dead clients find when they look again: a ping, then the end of the stream.
    for mut dead in [dead_echo, dead_member] {
        let mut pinged = false;
        let ended = tokio::time::timeout(STEP, async {
            loop {
                match dead.next().await {
                    Some(Ok(Message::Ping(_))) => pinged = true,
                    Some(Ok(other)) => panic!("unexpected {other:?}"),
                    Some(Err(_)) | None => return,
                }
            }
        })
        .await;
        assert!(ended.is_ok() && pinged, "pinged, then dropped");
    }
}

#[tokio::test]
async fn unisock_client_talks_to_the_server() {
    let server = TestServer::default().await;
    let options = unisock::Options {
        protocols: vec!["unisock.test".into()],
        ..unisock::Options::default()
    };
    let (mut tx, mut rx) =
        tokio::time::timeout(STEP, unisock::connect(&server.url("/echo"), options))
            .await
            .expect("connect in time")
            .expect("connect");
    match next_event(&mut rx).await {
        unisock::Event::Open { protocol } => assert_eq!(protocol, "unisock.test"),
        other => panic!("expected Open, got {other:?}"),
    }
    tx.send(unisock::Message::text("from unisock"))
        .await
        .expect("send");
    match next_event(&mut rx).await {
        unisock::Event::Message(message) => assert_eq!(message.as_text(), Some("from unisock")),
        other => panic!("expected the echo, got {other:?}"),
    }
}

#[tokio::test]
async fn unisock_client_reconnects_after_a_drop() {
    let server = TestServer::default().await;
    let options = unisock::Options {
        reconnect: Some(unisock::Reconnect {
            min_delay: Duration::from_millis(50),
            ..unisock::Reconnect::default()
        }),
        ..unisock::Options::default()
    };
    let url = server.url("/rooms/demo?client_id=page-1&notify_self=true");
    let (mut tx, mut rx) = tokio::time::timeout(STEP, unisock::connect(&url, options))
        .await
        .expect("connect in time")
        .expect("connect");
    assert!(matches!(
        next_event(&mut rx).await,
        unisock::Event::Open { .. }
    ));
    assert_eq!(
        http(server.addr, "POST", "/drop?client_id=page-1").await.0,
        204
    );
    // The drop is seen as a lost connection (no clean close) and the client comes back.
    let mut reconnecting = false;
    loop {
        match next_event(&mut rx).await {
            unisock::Event::Reconnecting { .. } => reconnecting = true,
            unisock::Event::Open { .. } => break,
            unisock::Event::Close(close) => panic!("unexpected final close {close:?}"),
            _ => {}
        }
    }
    assert!(reconnecting, "a Reconnecting event before the new Open");
    tx.send(unisock::Message::text("back")).await.expect("send");
    loop {
        if let unisock::Event::Message(message) = next_event(&mut rx).await {
            assert_eq!(message.as_text(), Some("back"));
            break;
        }
    }
}

async fn next_event(rx: &mut unisock::Receiver) -> unisock::Event {
    tokio::time::timeout(STEP, rx.next())
        .await
        .expect("an event in time")
        .expect("an event")
}

#[test]
fn binary_prints_its_address_serves_and_exits_0_on_sigterm() {
    let dir = temp_dir("bin");
    std::fs::write(dir.join("index.html"), "bin demo").unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_unisock"))
        .args(["serve", "--port", "0", "--root"])
        .arg(&dir)
        .env("RUST_LOG", "info")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start the binary");
    // Kill the child if anything below panics.
    struct Reap(std::process::Child);
    impl Drop for Reap {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let stdout = child.stdout.take().unwrap();
    let mut child = Reap(child);

    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut line = String::new();
        let _ = BufReader::new(stdout).read_line(&mut line);
        let _ = tx.send(line);
    });
    let line = rx.recv_timeout(STEP).expect("the binary prints a line");
    let line = line.trim_end();
    let addr = line
        .strip_prefix("unisock serve listening on http://")
        .and_then(|rest| rest.split_once('/'))
        .map(|(addr, _)| addr.to_owned())
        .unwrap_or_else(|| panic!("unexpected first line {line:?}"));
    let addr: SocketAddr = addr.parse().expect("an address");
    assert!(addr.ip().is_loopback(), "binds 127.0.0.1 by default");
    assert_ne!(addr.port(), 0, "prints the real port");
    assert_eq!(
        line,
        format!("unisock serve listening on http://{addr}/ (demo: http://{addr}/, echo: ws://{addr}/echo)")
    );

    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let mut client = runtime.block_on(async {
        let mut client = connect(&format!("ws://{addr}/echo")).await;
        send_text(&mut client, "through the binary").await;
        expect_text(&mut client, "through the binary").await;
        let (status, _, body) = http(addr, "GET", "/").await;
        assert_eq!((status, body.as_slice()), (200, &b"bin demo"[..]));
        client
    });

    let killed = Command::new("kill")
        .args(["-TERM", &child.0.id().to_string()])
        .status()
        .expect("run kill");
    assert!(killed.success());
    runtime.block_on(expect_close(&mut client, 1001));
    drop(client);

    let deadline = std::time::Instant::now() + STEP;
    let status = loop {
        if let Some(status) = child.0.try_wait().expect("wait") {
            break status;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the binary exits in time"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    assert_eq!(status.code(), Some(0), "exit code after SIGTERM");
    let _ = std::fs::remove_dir_all(&dir);
}
