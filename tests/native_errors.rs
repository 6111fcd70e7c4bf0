//! Bad input and failures, natively: each ends in its typed error, never a panic or a hang.

#![cfg(not(target_arch = "wasm32"))]

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use common::next_event;
use futures::{SinkExt, StreamExt};
use tokio::net::TcpListener;
use tokio_tungstenite::tungstenite::protocol::frame::coding::{CloseCode, Data, OpCode};
use tokio_tungstenite::tungstenite::protocol::frame::Frame;
use tokio_tungstenite::tungstenite::Message as WsMessage;
use unisock::{CloseEvent, Error, Event, Message, Options, Socket};

#[tokio::test]
async fn unparsable_url_and_unsupported_scheme() {
    assert!(matches!(
        unisock::connect("not a url", Options::default()).await,
        Err(Error::InvalidUrl { .. })
    ));
    assert!(matches!(
        unisock::connect("ftp://127.0.0.1/", Options::default()).await,
        Err(Error::UnsupportedScheme { scheme }) if scheme == "ftp"
    ));
    // The callback API reports them at once too.
    assert!(matches!(
        Socket::connect("ws://", Options::default()),
        Err(Error::InvalidUrl { .. })
    ));
}

#[tokio::test]
async fn secrets_in_the_url_never_reach_the_error() {
    let port = free_port().await;
    let url = format!("ws://user:hunter2@127.0.0.1:{port}/path?token=s3cret");
    let error = unisock::connect(&url, Options::default())
        .await
        .unwrap_err();
    let shown = format!("{error} {error:?}");
    assert!(matches!(error, Error::ConnectionRefused { .. }), "{shown}");
    assert!(
        !shown.contains("hunter2") && !shown.contains("s3cret"),
        "{shown}"
    );
    assert!(
        shown.contains(&format!("ws://127.0.0.1:{port}/path")),
        "{shown}"
    );
}

/// A port nothing listens on.
async fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    listener.local_addr().unwrap().port()
}

#[tokio::test]
async fn connection_refused() {
    let url = format!("ws://127.0.0.1:{}/", free_port().await);
    assert!(matches!(
        unisock::connect(&url, Options::default()).await,
        Err(Error::ConnectionRefused { .. })
    ));
}

#[tokio::test]
async fn connect_timeout_when_the_server_never_answers() {
    // The kernel completes the TCP handshake into the backlog, but nobody ever answers the
    // WebSocket handshake.
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("ws://{}/", listener.local_addr().unwrap());
    let timeout = Duration::from_millis(300);
    let started = Instant::now();
    let result = unisock::connect(&url, Options::default().connect_timeout(timeout)).await;
    assert!(
        matches!(result, Err(Error::ConnectTimeout { timeout: t, .. }) if t == timeout),
        "{result:?}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "took {:?}",
        started.elapsed()
    );
    drop(listener);
}

#[tokio::test]
async fn invalid_options_are_typed_errors() {
    let peer = common::rust_peer().await;
    let bad_header = Options::default().header("bad header", "x");
    assert!(matches!(
        unisock::connect(&peer.base_url, bad_header).await,
        Err(Error::InvalidOption {
            option: "headers",
            ..
        })
    ));
    let bad_ca = Options::default().extra_ca_pem("not a certificate");
    assert!(matches!(
        unisock::connect(&peer.base_url, bad_ca).await,
        Err(Error::InvalidOption {
            option: "tls.extra_ca_pem",
            ..
        })
    ));
}

#[tokio::test]
#[allow(clippy::result_large_err)] // the handshake callback's signature is tungstenite's
async fn custom_headers_reach_the_server() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("ws://{}/", listener.local_addr().unwrap());
    let server = tokio::spawn(async move {
        let (stream, _) = listener.accept().await.unwrap();
        let mut seen = None;
        let callback = |request: &tokio_tungstenite::tungstenite::handshake::server::Request,
                        response| {
            seen = request
                .headers()
                .get("authorization")
                .map(|v| v.to_str().unwrap().to_owned());
            Ok(response)
        };
        let ws = tokio_tungstenite::accept_hdr_async(stream, callback)
            .await
            .unwrap();
        drop(ws);
        seen
    });
    let options = Options::default().header("Authorization", "Bearer t0ken");
    let _ = unisock::connect(&url, options).await.expect("connect");
    assert_eq!(server.await.unwrap().as_deref(), Some("Bearer t0ken"));
}

#[tokio::test]
async fn close_code_and_reason_are_validated_like_the_browser() {
    let peer = common::rust_peer().await;
    let (tx, _rx) = unisock::connect(&peer.base_url, Options::default())
        .await
        .unwrap();
    assert_eq!(
        tx.close(1001, ""),
        Err(Error::InvalidCloseCode { code: 1001 })
    );
    assert_eq!(
        tx.close(5000, ""),
        Err(Error::InvalidCloseCode { code: 5000 })
    );
    assert_eq!(
        tx.close(1000, &"x".repeat(124)),
        Err(Error::CloseReasonTooLong { len: 124 })
    );
    assert_eq!(
        tx.ready_state(),
        unisock::ReadyState::Open,
        "a rejected close changes nothing"
    );
}

#[tokio::test]
async fn sending_over_the_size_limit_fails_and_the_connection_lives_on() {
    let peer = common::rust_peer().await;
    let options = Options::default().max_message_size(1000);
    let (mut tx, mut rx) = unisock::connect(&peer.base_url, options).await.unwrap();
    assert_eq!(
        tx.try_send(vec![0u8; 1001]),
        Err(Error::MessageTooLarge {
            size: 1001,
            max: 1000
        })
    );
    tx.send(Message::binary(vec![7u8; 1000])).await.unwrap();
    assert!(matches!(next_event(&mut rx).await, Event::Open { .. }));
    assert_eq!(
        next_event(&mut rx).await,
        Event::Message(Message::binary(vec![7u8; 1000]))
    );
}

/// A server that sends `frame` right after the handshake and reports the close code it gets.
async fn server_sending(frame: WsMessage) -> (String, tokio::task::JoinHandle<Option<u16>>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("ws://{}/", listener.local_addr().unwrap());
    let server = tokio::spawn(async move {
        let (stream, _) = listener.accept().await.unwrap();
        let mut ws = tokio_tungstenite::accept_async(stream).await.unwrap();
        ws.send(frame).await.unwrap();
        while let Some(message) = ws.next().await {
            if let Ok(WsMessage::Close(frame)) = message {
                return frame.map(|f| u16::from(f.code));
            }
        }
        None
    });
    (url, server)
}

#[tokio::test]
async fn receiving_over_the_size_limit_closes_with_1009() {
    let (url, server) = server_sending(WsMessage::binary(vec![1u8; 2000])).await;
    let options = Options::default()
        .max_message_size(1000)
        .without_reconnect();
    let (_tx, mut rx) = unisock::connect(&url, options).await.unwrap();
    assert!(matches!(next_event(&mut rx).await, Event::Open { .. }));
    assert!(matches!(
        next_event(&mut rx).await,
        Event::Error(Error::MessageTooLarge { max: 1000, .. })
    ));
    assert_eq!(
        next_event(&mut rx).await,
        Event::Close(CloseEvent::abnormal())
    );
    assert_eq!(server.await.unwrap(), Some(1009), "the peer is told why");
}

#[tokio::test]
async fn invalid_utf8_text_closes_with_1007() {
    let frame = Frame::message(vec![0xff, 0xfe, b'a'], OpCode::Data(Data::Text), true);
    let (url, server) = server_sending(WsMessage::Frame(frame)).await;
    let options = Options::default().without_reconnect();
    let (_tx, mut rx) = unisock::connect(&url, options).await.unwrap();
    assert!(matches!(next_event(&mut rx).await, Event::Open { .. }));
    assert_eq!(next_event(&mut rx).await, Event::Error(Error::InvalidUtf8));
    assert_eq!(
        next_event(&mut rx).await,
        Event::Close(CloseEvent::abnormal())
    );
    assert_eq!(server.await.unwrap(), Some(u16::from(CloseCode::Invalid)));
}

#[tokio::test]
async fn dropped_connection_reports_1006() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("ws://{}/", listener.local_addr().unwrap());
    tokio::spawn(async move {
        let (stream, _) = listener.accept().await.unwrap();
        let ws = tokio_tungstenite::accept_async(stream).await.unwrap();
        drop(ws); // no close frame: the TCP connection just ends
    });
    let options = Options::default().without_reconnect();
    let (mut tx, mut rx) = unisock::connect(&url, options).await.unwrap();
    assert!(matches!(next_event(&mut rx).await, Event::Open { .. }));
    assert_eq!(
        next_event(&mut rx).await,
        Event::Close(CloseEvent::abnormal())
    );
    assert!(rx.next().await.is_none());
    assert_eq!(tx.send(Message::text("late")).await, Err(Error::Closed));
}

mod tls {
    use super::*;
    use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair};
    use tokio_rustls::rustls;

    /// A `wss://` echo server on 127.0.0.1 whose certificate (for "localhost") is signed by a
    /// private CA; returns its URL and the CA in PEM.
    async fn private_ca_server() -> (String, String) {
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let ca = CertifiedIssuer::self_signed(ca_params, KeyPair::generate().unwrap()).unwrap();
        let key = KeyPair::generate().unwrap();
        let cert = CertificateParams::new(vec!["localhost".to_owned()])
            .unwrap()
            .signed_by(&key, &ca)
            .unwrap();
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(
                vec![cert.der().clone()],
                rustls::pki_types::PrivateKeyDer::try_from(key.serialize_der()).unwrap(),
            )
            .unwrap();
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let acceptor = acceptor.clone();
                tokio::spawn(async move {
                    let Ok(tls) = acceptor.accept(stream).await else {
                        return;
                    };
                    let Ok(mut ws) = tokio_tungstenite::accept_async(tls).await else {
                        return;
                    };
                    while let Some(Ok(message)) = ws.next().await {
                        if message.is_text() || message.is_binary() {
                            let _ = ws.send(message).await;
                        }
                    }
                });
            }
        });
        (format!("wss://localhost:{port}/"), ca.pem())
    }

    #[tokio::test]
    async fn untrusted_certificate_is_rejected_by_default() {
        let (url, _ca) = private_ca_server().await;
        match unisock::connect(&url, Options::default()).await {
            Err(Error::Tls { reason, .. }) => {
                assert!(reason.to_lowercase().contains("certificate"), "{reason}")
            }
            other => panic!("expected a TLS error, got {other:?}"),
        }
    }

    #[tokio::test]
    async fn private_ca_from_options_is_trusted() {
        let (url, ca) = private_ca_server().await;
        let options = Options::default().extra_ca_pem(ca);
        let (mut tx, mut rx) = unisock::connect(&url, options).await.expect("wss connect");
        tx.send(Message::text("over tls")).await.unwrap();
        assert!(matches!(next_event(&mut rx).await, Event::Open { .. }));
        assert_eq!(
            next_event(&mut rx).await,
            Event::Message(Message::text("over tls"))
        );
    }

    #[tokio::test]
    async fn host_name_must_match_even_with_the_ca() {
        let (url, ca) = private_ca_server().await;
        // Same server, reached as 127.0.0.1: the certificate is only for "localhost".
        let url = url.replace("localhost", "127.0.0.1");
        let options = Options::default().extra_ca_pem(ca);
        assert!(matches!(
            unisock::connect(&url, options).await,
            Err(Error::Tls { .. })
        ));
    }
}

mod backpressure {
    use super::*;
    use unisock::{QueueLimits, WhenFull};

    const CHUNK: usize = 64 << 10;
    const COUNT: u64 = 400; // 25 MiB: more than the loopback socket buffers hold

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn sink_waits_above_the_high_water_mark_while_the_peer_does_not_read() {
        let peer = common::rust_peer().await;
        let options = Options {
            high_water_mark: 256 << 10,
            ..Options::default().without_reconnect()
        };
        let (mut tx, mut rx) = unisock::connect(&format!("{}/stall", peer.base_url), options)
            .await
            .unwrap();
        let progress = Arc::new(std::sync::atomic::AtomicU64::new(0));
        let producer = {
            let progress = progress.clone();
            tokio::spawn(async move {
                let mut worst = 0;
                for _ in 0..COUNT {
                    tx.feed(Message::binary(vec![7u8; CHUNK])).await.unwrap();
                    // poll_ready let this one in: the buffer was at most the mark before it.
                    worst = worst.max(tx.buffered_amount());
                    progress.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                }
                tx.flush().await.unwrap();
                (tx, worst)
            })
        };
        tokio::time::sleep(Duration::from_millis(1000)).await;
        let during_stall = progress.load(std::sync::atomic::Ordering::SeqCst);
        assert!(
            during_stall < COUNT,
            "the producer was not held back at all"
        );
        let (mut tx, worst) = tokio::time::timeout(common::STEP, producer)
            .await
            .unwrap()
            .unwrap();
        assert!(
            worst <= (256 << 10) + CHUNK as u64,
            "buffered {worst} bytes"
        );
        tx.send(Message::text("!count")).await.unwrap();
        assert!(matches!(next_event(&mut rx).await, Event::Open { .. }));
        assert_eq!(
            next_event(&mut rx).await,
            Event::Message(Message::text(format!(
                "count {COUNT} {}",
                COUNT * CHUNK as u64
            )))
        );
        println!(
            "{during_stall} of {COUNT} messages accepted during the stall, worst buffer {worst}"
        );
    }

    #[tokio::test]
    async fn full_queue_fails_fast_when_asked_to() {
        let peer = common::rust_peer().await;
        let options = Options {
            queue: QueueLimits {
                max_messages: 4,
                max_bytes: 1 << 20,
                when_full: WhenFull::Error,
            },
            ..Options::default().without_reconnect()
        };
        let (mut tx, _rx) = unisock::connect(&format!("{}/stall", peer.base_url), options)
            .await
            .unwrap();
        // The connection writes to the kernel at once, so fill the queue faster than that by
        // sending past what the stalled peer's socket buffers take.
        let mut refused = None;
        for _ in 0..2000 {
            match tx.feed(Message::binary(vec![1u8; CHUNK])).await {
                Ok(()) => {}
                Err(error) => {
                    refused = Some(error);
                    break;
                }
            }
        }
        assert!(
            matches!(refused, Some(Error::QueueFull { messages: 4, .. })),
            "{refused:?}"
        );
    }
}
