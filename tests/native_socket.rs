//! The callback / polling API from plain threads: no async runtime in the caller.

#![cfg(not(target_arch = "wasm32"))]

mod common;

use std::sync::mpsc;
use std::time::Duration;

use unisock::{CloseEvent, Error, Event, Message, Options, ReadyState, Socket};

const STEP: Duration = common::STEP;

/// Starts the echo server on a runtime of its own thread and returns its base URL, so that
/// the test thread itself has no runtime.
fn echo_server() -> String {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Runtime::new().unwrap();
        runtime.block_on(async {
            let addr = common::echo_server::spawn(0).await.unwrap();
            tx.send(format!("ws://{addr}")).unwrap();
            std::future::pending::<()>().await
        })
    });
    let url = rx.recv_timeout(STEP).expect("echo server started");
    assert!(
        tokio::runtime::Handle::try_current().is_err(),
        "the test thread must have no runtime"
    );
    url
}

#[test]
fn callbacks_mirror_the_browser() {
    let url = echo_server();
    let (events_tx, events) = mpsc::channel::<String>();
    let (on_open, on_message, on_close) = (events_tx.clone(), events_tx.clone(), events_tx);
    let socket = Socket::builder(&format!("{url}/echo"))
        .options(Options::default().protocol("chat"))
        .on_open(move |protocol| on_open.send(format!("open {protocol}")).unwrap())
        .on_message(move |message| on_message.send(format!("message {message:?}")).unwrap())
        .on_error(|error| panic!("unexpected error {error}"))
        .on_close(move |close| {
            on_close
                .send(format!(
                    "close {} {} {}",
                    close.code, close.reason, close.was_clean
                ))
                .unwrap()
        })
        .connect()
        .expect("start");
    // Sent while still connecting: queued, then written once open.
    socket.send("first").unwrap();
    assert_eq!(events.recv_timeout(STEP).unwrap(), "open chat");
    assert_eq!(socket.ready_state(), ReadyState::Open);
    assert_eq!(socket.protocol(), "chat");
    socket.send(vec![1u8, 2, 3]).unwrap();
    assert_eq!(
        events.recv_timeout(STEP).unwrap(),
        format!("message {:?}", Message::text("first"))
    );
    assert_eq!(
        events.recv_timeout(STEP).unwrap(),
        format!("message {:?}", Message::binary(vec![1u8, 2, 3]))
    );
    socket.close(1000, "done").unwrap();
    assert_eq!(events.recv_timeout(STEP).unwrap(), "close 1000 done true");
    assert_eq!(socket.ready_state(), ReadyState::Closed);
    assert_eq!(socket.send("late"), Err(Error::Closed));
    // Everything went to callbacks: nothing is queued.
    assert_eq!(socket.try_recv(), None);
}

#[test]
fn try_recv_with_a_wake_up_callback_keeps_order() {
    const COUNT: usize = 1000;
    let url = echo_server();
    let (wake_tx, wakes) = mpsc::channel::<()>();
    let socket = Socket::builder(&format!("{url}/echo"))
        .on_wake(move || {
            let _ = wake_tx.send(());
        })
        .connect()
        .unwrap();
    for i in 0..COUNT {
        socket.send(i.to_string()).unwrap();
    }
    // A UI-style loop: sleep until woken, then drain everything that is there.
    let mut received = Vec::new();
    let mut opened = false;
    while received.len() < COUNT {
        wakes.recv_timeout(STEP).expect("woken up for new events");
        while let Some(event) = socket.try_recv() {
            match event {
                Event::Open { .. } => opened = true,
                Event::Message(message) => received.push(message),
                other => panic!("unexpected {other:?}"),
            }
        }
    }
    assert!(opened);
    let expected: Vec<Message> = (0..COUNT).map(|i| Message::text(i.to_string())).collect();
    assert_eq!(received, expected);
}

#[test]
fn blocking_recv_from_another_thread() {
    let url = echo_server();
    let options = Options::default().without_reconnect();
    let socket = std::sync::Arc::new(Socket::connect(&format!("{url}/echo"), options).unwrap());
    // A watchdog: if the close never comes, close() ends the session so the test fails
    // instead of hanging in recv().
    {
        let socket = std::sync::Arc::downgrade(&socket);
        std::thread::spawn(move || {
            std::thread::sleep(STEP);
            if let Some(socket) = socket.upgrade() {
                let _ = socket.close(1000, "watchdog");
            }
        });
    }
    let reader = {
        let socket = socket.clone();
        std::thread::spawn(move || {
            let mut events = Vec::new();
            while let Some(event) = socket.recv() {
                events.push(event);
            }
            events
        })
    };
    socket.send("ping").unwrap();
    socket.send("!close 4003 server closes").unwrap();
    let events = reader.join().unwrap();
    assert_eq!(
        events,
        [
            Event::Open {
                protocol: String::new()
            },
            Event::Message(Message::text("ping")),
            Event::Close(CloseEvent::new(4003, "server closes", true)),
        ]
    );
}

#[test]
fn failed_connect_arrives_as_error_then_close() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let (tx, events) = mpsc::channel();
    let on_close = tx.clone();
    let _socket = Socket::builder(&format!("ws://127.0.0.1:{port}/"))
        .options(Options::default().without_reconnect())
        .on_error(move |error| tx.send(Event::Error(error)).unwrap())
        .on_close(move |close| on_close.send(Event::Close(close)).unwrap())
        .connect()
        .unwrap();
    assert!(matches!(
        events.recv_timeout(STEP).unwrap(),
        Event::Error(Error::ConnectionRefused { .. })
    ));
    assert_eq!(
        events.recv_timeout(STEP).unwrap(),
        Event::Close(CloseEvent::abnormal())
    );
}

#[test]
fn close_while_connecting_abandons_the_connect() {
    // A listener that never answers the handshake: the connect would wait for its timeout.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("ws://{}/", listener.local_addr().unwrap());
    let socket = Socket::connect(&url, Options::default()).unwrap();
    assert_eq!(socket.ready_state(), ReadyState::Connecting);
    socket.close(1000, "").unwrap();
    let event = socket.recv();
    assert_eq!(event, Some(Event::Close(CloseEvent::abnormal())));
    assert_eq!(socket.ready_state(), ReadyState::Closed);
}

/// A one-connection server that echoes text and reports the close code it received (`None`
/// when the connection ended without a close frame) and whether a second connection came.
fn close_reporting_server() -> (String, std::thread::JoinHandle<(Option<u16>, bool)>) {
    use tokio_tungstenite::tungstenite;
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("ws://{}/", listener.local_addr().unwrap());
    let server = std::thread::spawn(move || {
        let (stream, _) = listener.accept().unwrap();
        stream.set_read_timeout(Some(STEP)).unwrap();
        let mut ws = tungstenite::accept(stream).unwrap();
        let close = loop {
            match ws.read() {
                Ok(tungstenite::Message::Close(frame)) => break frame.map(|f| u16::from(f.code)),
                Ok(message) if message.is_text() => ws.send(message).unwrap(),
                Ok(_) => continue,
                Err(_) => break None,
            }
        };
        listener.set_nonblocking(true).unwrap();
        let another = listener.accept().is_ok();
        (close, another)
    });
    (url, server)
}

#[test]
fn dropping_the_socket_closes_the_connection() {
    let (url, server) = close_reporting_server();
    let (opened_tx, opened) = mpsc::channel();
    let socket = Socket::builder(&url)
        .on_open(move |_| opened_tx.send(()).unwrap())
        .connect()
        .unwrap();
    opened.recv_timeout(STEP).unwrap();
    drop(socket);
    assert_eq!(server.join().unwrap().0, Some(1000));
}

#[test]
fn dropping_the_receiver_long_after_the_sender_closes_the_connection() {
    // The connection task goes idle once the sender is gone; the receiver's drop alone must
    // wake it (a channel's receiver going away wakes nobody by itself).
    let (url, server) = close_reporting_server();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let receiver = runtime.block_on(async {
        let (sender, receiver) = unisock::connect(&url, Options::default()).await.unwrap();
        drop(sender);
        tokio::time::sleep(Duration::from_millis(200)).await;
        receiver
    });
    drop(receiver);
    assert_eq!(server.join().unwrap().0, Some(1000));
}

#[test]
fn handles_are_send_and_sync() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<Socket>();
    assert_send_sync::<unisock::Sender>();
    assert_send_sync::<unisock::Receiver>();
    assert_send_sync::<Event>();
}

#[test]
fn clones_share_one_connection_that_outlives_its_creator_and_closes_with_the_last() {
    let (url, server) = close_reporting_server();
    // Created on a thread that ends at once: the connection lives on.
    let socket = std::thread::spawn(move || Socket::connect(&url, Options::default()).unwrap())
        .join()
        .unwrap();
    let sender = socket.clone();
    let reader = socket.clone();
    drop(socket);
    let sending = std::thread::spawn(move || {
        for i in 0..3 {
            sender.send(format!("from a clone {i}")).unwrap();
        }
        // `sender` is dropped here: `reader` alone keeps the connection.
    });
    sending.join().unwrap();
    let mut received = Vec::new();
    while received.len() < 3 {
        match reader.recv_timeout(STEP).expect("echoes in time") {
            Some(Event::Message(Message::Text(text))) => received.push(text),
            Some(Event::Open { .. }) => {}
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(
        received,
        ["from a clone 0", "from a clone 1", "from a clone 2"]
    );
    assert_eq!(reader.ready_state(), ReadyState::Open);
    drop(reader);
    let (close, another) = server.join().unwrap();
    assert_eq!(close, Some(1000), "the last clone's drop closes with 1000");
    assert!(!another, "clones share one connection");
}

#[test]
fn async_senders_clone_into_the_same_connection() {
    let url = echo_server();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        use futures::{SinkExt, StreamExt};
        let (mut first, mut receiver) =
            unisock::connect(&format!("{url}/echo"), Options::default())
                .await
                .unwrap();
        let mut second = first.clone();
        first.send(Message::text("one")).await.unwrap();
        second.send(Message::text("two")).await.unwrap();
        drop(second);
        let mut texts = Vec::new();
        while texts.len() < 2 {
            match tokio::time::timeout(STEP, receiver.next()).await.unwrap() {
                Some(Event::Message(Message::Text(text))) => texts.push(text),
                Some(Event::Open { .. }) => {}
                other => panic!("unexpected {other:?}"),
            }
        }
        assert_eq!(texts, ["one", "two"]);
    });
}

/// Senders write straight into an idle connection and queue behind anything already queued
/// (src/session/direct.rs). Several plain threads sending at once through clones of the async
/// `Sender` (its `try_send` writes directly from the calling thread), with large messages that
/// make the socket push back now and then, must still see each thread's messages echoed
/// whole, in its order, none lost.
#[test]
fn clones_sending_from_several_threads_keep_each_threads_order() {
    use futures::StreamExt;
    const THREADS: u32 = 4;
    const PER_THREAD: u32 = 400;
    // Every 40th message is large enough to fill the socket's buffers for a moment.
    const LARGE: usize = 512 * 1024;
    let url = format!("{}/echo", echo_server());
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let (sender, mut receiver) = runtime
        .block_on(unisock::connect(&url, Options::default()))
        .unwrap();
    let payload = |thread: u32, i: u32| {
        let mut payload = [thread.to_be_bytes(), i.to_be_bytes()].concat();
        if i % 40 == 39 {
            payload.resize(LARGE, 0x5a);
        }
        Message::binary(payload)
    };
    let senders: Vec<_> = (0..THREADS)
        .map(|thread| {
            let mut sender = sender.clone();
            std::thread::spawn(move || {
                for i in 0..PER_THREAD {
                    let mut message = payload(thread, i);
                    // Bounded: the queue drains at loopback speed.
                    for _ in 0..5000 {
                        match sender.try_send(message.clone()) {
                            Err(Error::QueueFull { .. }) => {
                                std::thread::sleep(Duration::from_millis(1));
                            }
                            sent => {
                                sent.unwrap();
                                message = Message::binary(Vec::new());
                                break;
                            }
                        }
                    }
                    assert!(message.is_empty(), "sent within 5 s");
                    // Pauses let the queue drain, so that senders find it empty (and write
                    // directly) as often as they find it busy.
                    if i % 4 == 3 {
                        std::thread::sleep(Duration::from_micros(300));
                    }
                }
            })
        })
        .collect();
    let mut next = vec![0u32; THREADS as usize];
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while next.iter().any(|&n| n < PER_THREAD) {
        assert!(
            std::time::Instant::now() < deadline,
            "echoes so far: {next:?}"
        );
        let event = runtime
            .block_on(async { tokio::time::timeout(STEP, receiver.next()).await })
            .expect("echoes in time");
        match event {
            Some(Event::Message(Message::Binary(bytes))) => {
                let thread = u32::from_be_bytes(bytes[..4].try_into().unwrap());
                let i = u32::from_be_bytes(bytes[4..8].try_into().unwrap());
                assert_eq!(
                    i, next[thread as usize],
                    "thread {thread}: out of order or lost"
                );
                assert_eq!(Message::Binary(bytes), payload(thread, i), "payload intact");
                next[thread as usize] += 1;
            }
            Some(Event::Open { .. }) => {}
            other => panic!("unexpected {other:?}"),
        }
    }
    for sender in senders {
        sender.join().unwrap();
    }
    assert_eq!(sender.buffered_amount(), 0, "everything went out");
}

/// Large messages to a `Socket` drained by `recv` / `try_recv`: a consumer slower than the
/// whole heartbeat budget still gets everything intact and in order, with no heartbeat
/// timeout meanwhile, whichever of the two it uses.
#[test]
fn large_messages_to_a_slow_polling_consumer_arrive_whole_and_in_order() {
    let url = echo_server();
    let options = common::tight_heartbeat();
    let socket = Socket::connect(&format!("{url}/echo"), options).unwrap();
    assert!(matches!(
        socket.recv_timeout(STEP),
        Ok(Some(Event::Open { .. }))
    ));
    let messages = common::large_and_small_messages(10);
    for message in &messages {
        socket.send(message.clone()).unwrap();
    }
    for (i, message) in messages.iter().enumerate() {
        if i == 1 {
            // Longer than heartbeat interval + timeout.
            std::thread::sleep(Duration::from_millis(400));
        } else if i % 4 == 0 {
            // Longer than the client's read pause.
            std::thread::sleep(Duration::from_millis(15));
        }
        let event = if i % 2 == 0 {
            socket.recv_timeout(STEP)
        } else {
            // Polling, as a UI loop would.
            let deadline = std::time::Instant::now() + STEP;
            loop {
                if let Some(event) = socket.try_recv() {
                    break Ok(Some(event));
                }
                assert!(std::time::Instant::now() < deadline, "message {i} in time");
                std::thread::sleep(Duration::from_millis(1));
            }
        };
        match event {
            Ok(Some(Event::Message(got))) => assert_eq!(&got, message, "message {i}"),
            other => panic!("message {i}: got {other:?}"),
        }
    }
    // No heartbeat timeout, no reconnect: nothing else arrives, the connection stays open.
    let more = socket.recv_timeout(Duration::from_millis(300));
    assert!(more.is_err(), "unexpected {more:?}");
    assert_eq!(socket.ready_state(), ReadyState::Open);
}

/// A reader parked in `recv` while a stream of small messages and, now and then, a large one
/// arrives: the connection's thread wakes it once per batch (see `wake_batch`), and nothing is
/// lost, reordered or left waiting.
#[test]
fn a_stream_to_a_parked_reader_arrives_whole_and_in_order() {
    let url = echo_server();
    let socket = Socket::connect(&format!("{url}/echo"), Options::default()).unwrap();
    assert!(matches!(
        socket.recv_timeout(STEP),
        Ok(Some(Event::Open { .. }))
    ));
    let messages: Vec<Message> = (0..3000u32)
        .map(|i| match i % 500 {
            // Larger than a batch is held for.
            499 => Message::binary(vec![(i % 251) as u8; 300 << 10]),
            _ => Message::text(format!("message {i}")),
        })
        .collect();
    let reader = {
        let socket = socket.clone();
        let expected = messages.clone();
        std::thread::spawn(move || {
            for (i, message) in expected.iter().enumerate() {
                match socket.recv_timeout(STEP) {
                    Ok(Some(Event::Message(got))) => assert_eq!(&got, message, "message {i}"),
                    other => panic!("message {i}: got {other:?}"),
                }
            }
        })
    };
    // In windows, as a pipelined client would: the reader is parked most of the time.
    for window in messages.chunks(16) {
        for message in window {
            socket.send(message.clone()).unwrap();
        }
        std::thread::sleep(Duration::from_micros(200));
    }
    reader.join().unwrap();
    let more = socket.recv_timeout(Duration::from_millis(100));
    assert!(more.is_err(), "unexpected {more:?}");
}
