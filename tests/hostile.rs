//! Hostile peers, all on 127.0.0.1, every wait bounded. Each case must end in a clear, typed
//! error (never a panic, never a hang) and disturb nothing else: a "sentinel" connection open
//! beside it keeps working.
//!
//! - The unisock client against a raw TCP "server" that answers the handshake with garbage,
//!   with a wrong `Sec-WebSocket-Accept`, with a 101 lacking the upgrade headers; then, after
//!   a correct handshake, sends a masked frame, a reserved opcode, invalid UTF-8 in a text
//!   frame, a frame header claiming 2^63 - 1 (and 2^63) bytes, a ping over 125 bytes.
//! - `unisock serve` against slow-loris clients (cut after the header-read timeout while
//!   other clients keep working), 1 000 connections opened and dropped abruptly (no task left
//!   behind: `ServerStats` returns to its baseline), and clients sending oversized messages
//!   (closed with 1009).
//!
//! Run with `cargo test --features server --test hostile`.
#![cfg(all(feature = "server", not(target_arch = "wasm32")))]

mod common;
#[path = "support/test_server.rs"]
mod test_server;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use common::{next_event, STEP};
use futures::SinkExt;
use test_server::TestServer;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;
use unisock::server::ServerConfig;
use unisock::{Error, Event, Message, Options};

// ---------------------------------------------------------------------------------------------
// Helpers.

/// Reads an HTTP head (up to the blank line), at most 16 KiB.
async fn read_head(stream: &mut TcpStream) -> String {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        assert!(head.len() < 16 << 10, "HTTP head too long");
        match tokio::time::timeout(STEP, stream.read(&mut byte)).await {
            Ok(Ok(1)) => head.push(byte[0]),
            other => panic!("reading an HTTP head: {other:?} after {head:?}"),
        }
    }
    String::from_utf8(head).expect("an ASCII head")
}

/// The `Sec-WebSocket-Key` of a request head.
fn websocket_key(head: &str) -> String {
    head.lines()
        .find_map(|line| {
            let (name, value) = line.split_once(':')?;
            name.eq_ignore_ascii_case("sec-websocket-key")
                .then(|| value.trim().to_owned())
        })
        .expect("the request has a Sec-WebSocket-Key")
}

/// A valid 101 answer to a request with `key`.
fn switching_protocols(key: &str) -> String {
    format!(
        "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\
         Sec-WebSocket-Accept: {}\r\n\r\n",
        derive_accept_key(key.as_bytes())
    )
}

/// A one-connection raw TCP "server": reads the client's handshake request, writes what
/// `answer` makes of its key, then reads whatever the client sends until it closes (at most
/// STEP) and returns those bytes.
async fn raw_server(
    answer: impl FnOnce(&str) -> Vec<u8> + Send + 'static,
) -> (String, JoinHandle<Vec<u8>>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("ws://{}/hostile", listener.local_addr().unwrap());
    let task = tokio::spawn(async move {
        let (mut stream, _) = tokio::time::timeout(STEP, listener.accept())
            .await
            .expect("the client connects")
            .unwrap();
        let head = read_head(&mut stream).await;
        stream
            .write_all(&answer(&websocket_key(&head)))
            .await
            .unwrap();
        let mut rest = Vec::new();
        let _ = tokio::time::timeout(STEP, stream.read_to_end(&mut rest)).await;
        rest
    });
    (url, task)
}

/// The close code of the first frame in `bytes` if it is a (masked, client) close frame.
fn client_close_code(bytes: &[u8]) -> Option<u16> {
    let [first, second, rest @ ..] = bytes else {
        return None;
    };
    if first & 0x0f != 0x8 || second & 0x80 == 0 || (second & 0x7f) < 2 || rest.len() < 6 {
        return None;
    }
    let mask = &rest[..4];
    Some(u16::from_be_bytes([rest[4] ^ mask[0], rest[5] ^ mask[1]]))
}

/// A connection to an echo server that must keep working while hostile peers do their worst.
struct Sentinel {
    _peer: common::Peer,
    tx: unisock::Sender,
    rx: unisock::Receiver,
    round: usize,
}

impl Sentinel {
    async fn open() -> Sentinel {
        let peer = common::rust_peer().await;
        let (tx, rx) = unisock::connect(&format!("{}/echo", peer.base_url), Options::default())
            .await
            .expect("the sentinel connects");
        let mut sentinel = Sentinel {
            _peer: peer,
            tx,
            rx,
            round: 0,
        };
        assert!(matches!(
            next_event(&mut sentinel.rx).await,
            Event::Open { .. }
        ));
        sentinel.check().await;
        sentinel
    }

    /// One echo round trip.
    async fn check(&mut self) {
        self.round += 1;
        let text = format!("sentinel {}", self.round);
        self.tx.send(Message::text(text.clone())).await.unwrap();
        assert_eq!(
            next_event(&mut self.rx).await,
            Event::Message(Message::text(text)),
            "the sentinel connection was disturbed"
        );
    }
}

fn options() -> Options {
    Options::default()
        .without_reconnect()
        .heartbeat(None)
        .connect_timeout(STEP / 2)
}

// ---------------------------------------------------------------------------------------------
// The unisock client against a hostile server: bad handshakes.

/// Connects to a raw server answering with `answer` and returns the connect error.
async fn bad_handshake(answer: impl FnOnce(&str) -> Vec<u8> + Send + 'static) -> Error {
    let mut sentinel = Sentinel::open().await;
    let (url, server) = raw_server(answer).await;
    let result = tokio::time::timeout(STEP, unisock::connect(&url, options()))
        .await
        .expect("connect ends in time");
    let error = match result {
        Ok(_) => panic!("a bad handshake was accepted"),
        Err(error) => error,
    };
    // The error's text must be readable and must name the URL without secrets.
    assert!(!error.to_string().is_empty());
    drop(server);
    sentinel.check().await;
    error
}

#[tokio::test]
async fn handshake_answered_with_garbage() {
    let error = bad_handshake(|_| b"SSH-2.0-OpenSSH_9.2\r\nnot http at all\r\n\r\n".to_vec()).await;
    assert!(
        matches!(&error, Error::Handshake { url, .. } if url.ends_with("/hostile")),
        "{error:?}"
    );
}

#[tokio::test]
async fn handshake_with_a_wrong_accept_key() {
    let error = bad_handshake(|_| {
        // The accept key of another request (RFC 6455's example).
        switching_protocols("dGhlIHNhbXBsZSBub25jZQ==").into_bytes()
    })
    .await;
    let Error::Handshake { reason, .. } = &error else {
        panic!("expected Error::Handshake, got {error:?}");
    };
    assert!(reason.contains("Sec-WebSocket-Accept"), "{reason}");
    assert!(
        !reason.contains("protocol error"),
        "no repeated prefix: {reason}"
    );
}

#[tokio::test]
async fn handshake_101_without_upgrade_headers() {
    let error = bad_handshake(|key| {
        format!(
            "HTTP/1.1 101 Switching Protocols\r\nSec-WebSocket-Accept: {}\r\n\r\n",
            derive_accept_key(key.as_bytes())
        )
        .into_bytes()
    })
    .await;
    let Error::Handshake { reason, .. } = &error else {
        panic!("expected Error::Handshake, got {error:?}");
    };
    assert!(
        reason.contains("Connection") || reason.contains("Upgrade"),
        "{reason}"
    );
}

// ---------------------------------------------------------------------------------------------
// The unisock client against a hostile server: bad frames after a correct handshake.

/// Opens a connection to a raw server that completes the handshake and then sends `frames`.
/// Returns the error event, and the close code the client sent back (if any).
async fn bad_frames(frames: Vec<u8>) -> (Error, Option<u16>) {
    let mut sentinel = Sentinel::open().await;
    let (url, server) = raw_server(move |key| {
        let mut answer = switching_protocols(key).into_bytes();
        answer.extend_from_slice(&frames);
        answer
    })
    .await;
    let (_tx, mut rx) = tokio::time::timeout(STEP, unisock::connect(&url, options()))
        .await
        .expect("connect ends in time")
        .expect("the handshake is valid");
    assert!(matches!(next_event(&mut rx).await, Event::Open { .. }));
    let error = match next_event(&mut rx).await {
        Event::Error(error) => error,
        other => panic!("expected an error event, got {other:?}"),
    };
    match next_event(&mut rx).await {
        Event::Close(close) => assert_eq!(close.code, 1006, "{close:?}"),
        other => panic!("expected the close event, got {other:?}"),
    }
    let sent = tokio::time::timeout(STEP, server)
        .await
        .expect("the client closes its end")
        .expect("no panic in the raw server");
    sentinel.check().await;
    (error, client_close_code(&sent))
}

#[tokio::test]
async fn masked_frame_from_the_server() {
    // "Hello", masked with 37 fa 21 3d (RFC 6455's example): only clients may mask.
    let frame = vec![
        0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58,
    ];
    let (error, code) = bad_frames(frame).await;
    let Error::Protocol { reason } = &error else {
        panic!("expected Error::Protocol, got {error:?}");
    };
    assert!(reason.to_lowercase().contains("mask"), "{reason}");
    assert_eq!(
        error.to_string(),
        "WebSocket protocol error: Received a masked frame from server",
        "one readable sentence, not a repeated prefix"
    );
    assert_eq!(code, Some(1002));
}

#[tokio::test]
async fn reserved_opcode() {
    for opcode in [0x3u8, 0xb] {
        let (error, code) = bad_frames(vec![0x80 | opcode, 0x00]).await;
        let Error::Protocol { reason } = &error else {
            panic!("opcode {opcode}: expected Error::Protocol, got {error:?}");
        };
        assert!(reason.to_lowercase().contains("opcode"), "{reason}");
        assert_eq!(code, Some(1002));
    }
}

#[tokio::test]
async fn invalid_utf8_in_a_text_frame() {
    let (error, code) = bad_frames(vec![0x81, 0x04, b'o', b'k', 0xc3, 0x28]).await;
    assert_eq!(error, Error::InvalidUtf8);
    assert_eq!(code, Some(1007));
}

#[tokio::test]
async fn frame_header_of_2_pow_63_bytes() {
    for length in [u64::MAX >> 1, 1 << 63] {
        let mut frame = vec![0x82, 0x7f];
        frame.extend_from_slice(&length.to_be_bytes());
        let (error, code) = bad_frames(frame).await;
        match &error {
            // Refused from the header, before anything is allocated.
            Error::MessageTooLarge { max, .. } => {
                assert_eq!(*max, Options::default().max_frame_size, "{error:?}");
                assert_eq!(code, Some(1009));
            }
            other => panic!("length {length}: expected MessageTooLarge, got {other:?}"),
        }
    }
}

#[tokio::test]
async fn ping_over_125_bytes() {
    let mut frame = vec![0x89, 0x7e, 0x00, 126];
    frame.extend_from_slice(&[b'p'; 126]);
    let (error, code) = bad_frames(frame).await;
    let Error::Protocol { reason } = &error else {
        panic!("expected Error::Protocol, got {error:?}");
    };
    assert!(reason.to_lowercase().contains("control frame"), "{reason}");
    assert_eq!(code, Some(1002));
}

// ---------------------------------------------------------------------------------------------
// `unisock serve` against hostile clients.

/// `unisock serve` in this process on a free port, with no static files.
async fn start_server(config: ServerConfig) -> TestServer {
    TestServer::start(ServerConfig {
        root: "/nonexistent-unisock-test-root".into(),
        ..config
    })
    .await
}

/// A unisock client of the server's echo endpoint, checked with one round trip.
async fn echo_client(server: &TestServer) -> (unisock::Sender, unisock::Receiver) {
    let (mut tx, mut rx) = unisock::connect(&server.url("/echo"), options())
        .await
        .expect("connect");
    assert!(matches!(next_event(&mut rx).await, Event::Open { .. }));
    tx.send(Message::text("ping")).await.unwrap();
    assert_eq!(
        next_event(&mut rx).await,
        Event::Message(Message::text("ping"))
    );
    (tx, rx)
}

/// A request head that never ends: a header line that goes on and on.
fn endless_request() -> Vec<u8> {
    let mut request = b"GET /echo HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ".to_vec();
    request.resize(1000, b'a');
    request
}

/// Holds a connection open while sending `request` one byte every `pace` (nothing, for an
/// empty one); returns how long the server took to cut it.
async fn slow_loris(addr: SocketAddr, request: Vec<u8>, pace: Duration) -> Duration {
    let start = Instant::now();
    let stream = TcpStream::connect(addr).await.unwrap();
    let (mut read, mut write) = stream.into_split();
    let cut = async move {
        let mut buf = [0u8; 1024];
        // EOF or a reset: the server hung up (whether or not it said anything first).
        while let Ok(1..) = read.read(&mut buf).await {}
    };
    let feed = async move {
        for byte in request {
            tokio::time::sleep(pace).await;
            if write.write_all(&[byte]).await.is_err() {
                break;
            }
        }
        // Keep our end open: only the server may end this.
        std::future::pending::<()>().await
    };
    tokio::time::timeout(STEP, async {
        tokio::select! {
            () = cut => {}
            () = feed => {}
        }
    })
    .await
    .expect("the server cuts a slow-loris connection");
    start.elapsed()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_loris_handshakes_are_cut_after_the_header_read_timeout() {
    const TIMEOUT: Duration = Duration::from_secs(1);
    let server = start_server(ServerConfig {
        header_read_timeout: TIMEOUT,
        ..ServerConfig::default()
    })
    .await;
    let (mut tx, mut rx) = echo_client(&server).await;
    server.settles_at(0, 1, STEP).await;

    // 20 slow clients: 15 trickle an endless request head a byte every 50 ms, 5 send nothing.
    let lorises: Vec<_> = (0..20)
        .map(|i| {
            let request = if i % 4 == 0 {
                Vec::new()
            } else {
                endless_request()
            };
            tokio::spawn(slow_loris(server.addr, request, Duration::from_millis(50)))
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(
        server.stats.http_connections() >= 15,
        "the slow clients are connected"
    );

    // Meanwhile the open client keeps talking and a new one connects.
    for round in 0..10 {
        let text = format!("round {round}");
        tx.send(Message::text(text.clone())).await.unwrap();
        assert_eq!(
            next_event(&mut rx).await,
            Event::Message(Message::text(text))
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let (_tx2, _rx2) = echo_client(&server).await;

    for loris in lorises {
        let took = loris.await.expect("no panic");
        assert!(
            took >= TIMEOUT - Duration::from_millis(100) && took < TIMEOUT * 4,
            "a slow-loris connection was cut after {took:?} (timeout {TIMEOUT:?})"
        );
    }
    server.settles_at(0, 2, STEP).await;
    server.shutdown().await.expect("no error");
}

/// Opens a connection and drops it abruptly (with a reset), at one of four stages.
async fn abrupt(addr: SocketAddr, stage: usize) {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    // Dropped with a reset (RST), not a FIN: as a crashing client or a lost network would.
    stream.set_zero_linger().unwrap();
    let upgrade = format!(
        "GET /echo HTTP/1.1\r\nHost: {addr}\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\
         Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n"
    );
    match stage {
        // Connected, nothing sent.
        0 => {}
        // Half a request head.
        1 => stream.write_all(&upgrade.as_bytes()[..40]).await.unwrap(),
        // A whole upgrade request, gone before the answer.
        2 => stream.write_all(upgrade.as_bytes()).await.unwrap(),
        // Upgraded, then half a frame header.
        _ => {
            stream.write_all(upgrade.as_bytes()).await.unwrap();
            assert!(read_head(&mut stream).await.starts_with("HTTP/1.1 101"));
            stream.write_all(&[0x81]).await.unwrap();
        }
    }
    drop(stream);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_connections_dropped_abruptly_leave_no_task_behind() {
    // A long header timeout: what frees the connections here must be their end, not a timer.
    let server = start_server(ServerConfig {
        header_read_timeout: Duration::from_secs(60),
        ..ServerConfig::default()
    })
    .await;
    let (mut tx, mut rx) = echo_client(&server).await;
    server.settles_at(0, 1, STEP).await;
    let baseline = server.stats.connection_tasks();

    // 20 batches of 50 at once: 1 000 connections, 250 dropped at each stage.
    for batch in 0..20 {
        let drops: Vec<_> = (0..50)
            .map(|i| tokio::spawn(abrupt(server.addr, (batch * 50 + i) % 4)))
            .collect();
        for drop in drops {
            tokio::time::timeout(STEP, drop)
                .await
                .expect("bounded")
                .expect("no panic");
        }
    }
    server.settles_at(0, 1, Duration::from_secs(5)).await;
    assert_eq!(server.stats.connection_tasks(), baseline);

    tx.send(Message::text("still here")).await.unwrap();
    assert_eq!(
        next_event(&mut rx).await,
        Event::Message(Message::text("still here"))
    );
    let (_tx2, _rx2) = echo_client(&server).await;
    server.shutdown().await.expect("no error");
}

/// A raw WebSocket connection to the server, upgraded by hand.
async fn raw_websocket(server: &TestServer, path: &str) -> TcpStream {
    let mut stream = TcpStream::connect(server.addr).await.unwrap();
    let request = format!(
        "GET {path} HTTP/1.1\r\nHost: {}\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\
         Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n",
        server.addr
    );
    stream.write_all(request.as_bytes()).await.unwrap();
    let head = read_head(&mut stream).await;
    assert!(head.starts_with("HTTP/1.1 101"), "{head}");
    stream
}

/// A client frame header (masked, with a zero mask: the payload goes as is) for `length`
/// bytes.
fn client_frame_header(first: u8, length: u64) -> Vec<u8> {
    let mut header = vec![first];
    match length {
        0..=125 => header.push(0x80 | length as u8),
        126..=0xffff => {
            header.push(0x80 | 126);
            header.extend_from_slice(&(length as u16).to_be_bytes());
        }
        _ => {
            header.push(0x80 | 127);
            header.extend_from_slice(&length.to_be_bytes());
        }
    }
    header.extend_from_slice(&[0, 0, 0, 0]);
    header
}

/// Reads server frames until a close frame; returns its code and reason.
async fn server_close(stream: &mut TcpStream) -> (u16, String) {
    let read = async {
        loop {
            let mut head = [0u8; 2];
            stream.read_exact(&mut head).await?;
            assert_eq!(head[1] & 0x80, 0, "a server never masks");
            let length = match head[1] & 0x7f {
                126 => u64::from(stream.read_u16().await?),
                127 => stream.read_u64().await?,
                n => u64::from(n),
            };
            let mut payload = vec![0u8; usize::try_from(length).unwrap()];
            stream.read_exact(&mut payload).await?;
            if head[0] & 0x0f == 0x8 {
                let code = u16::from_be_bytes([payload[0], payload[1]]);
                let reason = String::from_utf8(payload[2..].to_vec()).unwrap();
                return Ok::<_, std::io::Error>((code, reason));
            }
        }
    };
    tokio::time::timeout(STEP, read)
        .await
        .expect("a close frame in time")
        .expect("a close frame before the end")
}

#[tokio::test]
async fn oversized_messages_are_closed_with_1009() {
    const MAX: usize = 1024;
    let server = start_server(ServerConfig {
        max_message_size: MAX,
        ..ServerConfig::default()
    })
    .await;
    let (mut tx, mut rx) = echo_client(&server).await;

    // One frame that claims 2^62 bytes: refused from its header, nothing allocated.
    let mut raw = raw_websocket(&server, "/echo").await;
    raw.write_all(&client_frame_header(0x82, 1 << 62))
        .await
        .unwrap();
    assert_eq!(
        server_close(&mut raw).await,
        (1009, "message too big".into())
    );

    // A message over the limit in small fragments, each one under it.
    let mut raw = raw_websocket(&server, "/rooms/big").await;
    let mut fragments = Vec::new();
    for i in 0..4 {
        let first = match i {
            0 => 0x02,
            3 => 0x80,
            _ => 0x00,
        };
        fragments.extend(client_frame_header(first, 400));
        fragments.extend([b'x'; 400]);
    }
    let _ = raw.write_all(&fragments).await; // the server may close before reading it all
    assert_eq!(
        server_close(&mut raw).await,
        (1009, "message too big".into())
    );

    // The unisock client, over the server's limit but within its own.
    let (mut big_tx, mut big_rx) = unisock::connect(&server.url("/echo"), options())
        .await
        .unwrap();
    assert!(matches!(next_event(&mut big_rx).await, Event::Open { .. }));
    big_tx
        .send(Message::binary(vec![0u8; MAX + 1]))
        .await
        .unwrap();
    match next_event(&mut big_rx).await {
        Event::Close(close) => {
            assert_eq!(
                (close.code, close.reason.as_str()),
                (1009, "message too big")
            )
        }
        other => panic!("expected Close(1009), got {other:?}"),
    }

    // The others are unaffected.
    tx.send(Message::text("fine")).await.unwrap();
    assert_eq!(
        next_event(&mut rx).await,
        Event::Message(Message::text("fine"))
    );
    drop(raw);
    server.settles_at(0, 1, STEP).await;
    server.shutdown().await.expect("no error");
}
