//! The same client behaviour against three real servers over loopback: our tokio-tungstenite
//! echo server, Python `websockets` and Node `ws`.

#![cfg(not(target_arch = "wasm32"))]

mod common;

use common::{next_event, next_non_message, Peer};
use futures::{SinkExt, StreamExt};
use std::time::Duration;

use unisock::{CloseEvent, Error, Event, Message, Options, ReadyState};

async fn open(peer: &Peer, path: &str, options: Options) -> (unisock::Sender, unisock::Receiver) {
    let url = format!("{}{path}", peer.base_url);
    let (sender, mut receiver) =
        tokio::time::timeout(common::STEP, unisock::connect(&url, options))
            .await
            .expect("connect within the time limit")
            .unwrap_or_else(|e| panic!("connect to {} failed: {e}", peer.name));
    assert!(matches!(
        next_event(&mut receiver).await,
        Event::Open { .. }
    ));
    (sender, receiver)
}

async fn expect_message(receiver: &mut unisock::Receiver) -> Message {
    match next_event(receiver).await {
        Event::Message(message) => message,
        other => panic!("expected a message, got {other:?}"),
    }
}

async fn text_and_binary(peer: Peer) {
    let (mut tx, mut rx) = open(&peer, "/echo", Options::default()).await;
    let mib: Vec<u8> = (0..1 << 20).map(|i: u32| (i * 7 % 251) as u8).collect();
    let sent = [
        Message::text("hello ✓"),
        Message::text(""),
        Message::binary(Vec::new()),
        Message::binary(vec![0u8, 255, 1, 254]),
        Message::binary(mib),
        Message::text("x".repeat(1 << 20)),
    ];
    for message in &sent {
        tx.send(message.clone()).await.expect("send");
    }
    for message in &sent {
        assert_eq!(
            &expect_message(&mut rx).await,
            message,
            "echo from {}",
            peer.name
        );
    }
    assert_eq!(tx.buffered_amount(), 0, "everything was written");
}

async fn order_of_10_000(peer: Peer) {
    const COUNT: usize = 10_000;
    let (mut tx, mut rx) = open(&peer, "/echo", Options::default()).await;
    let writer = tokio::spawn(async move {
        for i in 0..COUNT {
            let message = if i % 2 == 0 {
                Message::text(i.to_string())
            } else {
                Message::binary((i as u32).to_be_bytes().to_vec())
            };
            tx.feed(message).await.expect("feed");
        }
        tx.flush().await.expect("flush");
        tx
    });
    for i in 0..COUNT {
        let got = expect_message(&mut rx).await;
        let n = match &got {
            Message::Text(text) => text.parse::<usize>().expect("a number"),
            Message::Binary(bytes) => u32::from_be_bytes(bytes[..].try_into().unwrap()) as usize,
        };
        assert_eq!(n, i, "message {i} from {} out of order: {got:?}", peer.name);
        assert_eq!(got.is_text(), i % 2 == 0);
    }
    writer.await.unwrap();
}

/// After a large message the client pauses reading, briefly, for its consumer (so that the
/// read buffer is reused): a consumer that is slower than that, even slower than the whole
/// heartbeat budget, still gets every message intact and in order, and the heartbeat still
/// sees the peer's pongs meanwhile.
async fn large_messages_to_a_slow_consumer(peer: Peer) {
    let options = common::tight_heartbeat();
    let (mut tx, mut rx) = open(&peer, "/echo", options).await;
    let messages = common::large_and_small_messages(12);
    for message in &messages {
        tx.feed(message.clone()).await.expect("send");
    }
    tx.flush().await.expect("flush");
    for (i, message) in messages.iter().enumerate() {
        if i == 1 {
            // Longer than heartbeat interval + timeout.
            tokio::time::sleep(Duration::from_millis(400)).await;
        } else if i % 4 == 0 {
            // Longer than the client's read pause.
            tokio::time::sleep(Duration::from_millis(15)).await;
        }
        assert_eq!(
            &expect_message(&mut rx).await,
            message,
            "message {i} from {}",
            peer.name
        );
    }
    // No heartbeat timeout, no reconnect: nothing else arrives, the connection stays open.
    let more = tokio::time::timeout(Duration::from_millis(300), rx.next()).await;
    assert!(more.is_err(), "unexpected {more:?}");
    assert_eq!(tx.ready_state(), ReadyState::Open);
}

async fn client_closes_with_code_and_reason(peer: Peer) {
    let (mut tx, mut rx) = open(&peer, "/echo", Options::default()).await;
    tx.close(4001, "bye ✓").expect("close");
    assert_eq!(tx.ready_state(), unisock::ReadyState::Closing);
    // The peer answers with the code and reason it received: both crossed the wire.
    let close = next_non_message(&mut rx).await;
    assert_eq!(
        close,
        Event::Close(CloseEvent::new(4001, "bye ✓", true)),
        "close from {}",
        peer.name
    );
    assert!(rx.next().await.is_none(), "the stream ends after Close");
    assert_eq!(tx.ready_state(), unisock::ReadyState::Closed);
    assert!(matches!(tx.try_send("late"), Err(Error::Closed)));
}

async fn server_closes_with_code_and_reason(peer: Peer) {
    let (mut tx, mut rx) = open(&peer, "/echo", Options::default().without_reconnect()).await;
    tx.send(Message::text("!close 4002 server says bye"))
        .await
        .unwrap();
    let close = next_non_message(&mut rx).await;
    assert_eq!(
        close,
        Event::Close(CloseEvent::new(4002, "server says bye", true)),
        "close from {}",
        peer.name
    );
    assert!(matches!(
        tx.send(Message::text("late")).await,
        Err(Error::Closed)
    ));
}

async fn subprotocol_is_negotiated(peer: Peer) {
    let options = Options::default()
        .protocol("nope")
        .protocol("superchat")
        .protocol("chat");
    let url = format!("{}/echo", peer.base_url);
    let (tx, mut rx) = unisock::connect(&url, options).await.expect("connect");
    assert_eq!(
        next_event(&mut rx).await,
        Event::Open {
            protocol: "superchat".into()
        },
        "subprotocol from {}",
        peer.name
    );
    assert_eq!(tx.protocol(), "superchat");
}

async fn rejected_handshake_reports_status(peer: Peer) {
    for status in [404, 401] {
        let url = format!("{}/status/{status}", peer.base_url);
        match unisock::connect(&url, Options::default()).await {
            Err(Error::HandshakeRejected { status: got, url }) => {
                assert_eq!(got, status, "status from {}", peer.name);
                assert!(url.ends_with(&format!("/status/{status}")));
            }
            other => panic!(
                "{}: expected HandshakeRejected({status}), got {other:?}",
                peer.name
            ),
        }
    }
}

macro_rules! against_peer {
    ($module:ident, $peer:expr) => {
        mod $module {
            use super::*;

            #[tokio::test]
            async fn text_and_binary_including_empty_and_1_mib() {
                super::text_and_binary($peer).await;
            }

            #[tokio::test]
            async fn keeps_the_order_of_10_000_messages() {
                super::order_of_10_000($peer).await;
            }

            #[tokio::test]
            async fn large_messages_reach_a_slow_consumer_in_order_with_the_heartbeat_on() {
                super::large_messages_to_a_slow_consumer($peer).await;
            }

            #[tokio::test]
            async fn client_close_code_and_reason_reach_the_server() {
                super::client_closes_with_code_and_reason($peer).await;
            }

            #[tokio::test]
            async fn server_close_code_and_reason_reach_the_client() {
                super::server_closes_with_code_and_reason($peer).await;
            }

            #[tokio::test]
            async fn subprotocol_is_negotiated() {
                super::subprotocol_is_negotiated($peer).await;
            }

            #[tokio::test]
            async fn rejected_handshake_reports_http_status() {
                super::rejected_handshake_reports_status($peer).await;
            }
        }
    };
}

against_peer!(tokio_tungstenite, common::rust_peer().await);
against_peer!(python_websockets, common::python_peer());
against_peer!(node_ws, common::node_peer());
