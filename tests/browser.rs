//! The same behaviour as the native tests, in a real browser (headless Chromium and Firefox
//! through wasm-bindgen-test), against the echo server that scripts/test.sh starts on
//! 127.0.0.1 and passes in `UNISOCK_TEST_ECHO_URL` at build time.

#![cfg(target_arch = "wasm32")]

use std::cell::RefCell;
use std::rc::Rc;
use std::time::Duration;

use futures::{SinkExt, StreamExt};
use unisock::{CloseEvent, Error, Event, Message, Options, ReadyState, Socket};
use wasm_bindgen_test::*;

wasm_bindgen_test_configure!(run_in_browser);

#[path = "support/browser.rs"]
mod support;
use support::{echo_url, next_event, within};

async fn open(path: &str, options: Options) -> (unisock::Sender, unisock::Receiver) {
    let (tx, mut rx) = within("connect", unisock::connect(&echo_url(path), options))
        .await
        .expect("connect");
    assert!(matches!(next_event(&mut rx).await, Event::Open { .. }));
    (tx, rx)
}

#[wasm_bindgen_test]
async fn text_and_binary_including_empty_and_1_mib() {
    let (mut tx, mut rx) = open("/echo", Options::default()).await;
    let mib: Vec<u8> = (0..1u32 << 20).map(|i| (i * 7 % 251) as u8).collect();
    let sent = [
        Message::text("hello ✓"),
        Message::text(""),
        Message::binary(Vec::new()),
        Message::binary(vec![0u8, 255, 1, 254]),
        Message::binary(mib),
    ];
    for message in &sent {
        tx.send(message.clone()).await.unwrap();
    }
    for message in &sent {
        assert_eq!(&next_event(&mut rx).await, &Event::Message(message.clone()));
    }
}

#[wasm_bindgen_test]
async fn keeps_the_order_of_10_000_messages() {
    const COUNT: usize = 10_000;
    let (mut tx, mut rx) = open("/echo", Options::default()).await;
    for i in 0..COUNT {
        let message = if i % 2 == 0 {
            Message::text(i.to_string())
        } else {
            Message::binary((i as u32).to_be_bytes().to_vec())
        };
        tx.feed(message).await.unwrap();
    }
    tx.flush().await.unwrap();
    for i in 0..COUNT {
        let n = match next_event(&mut rx).await {
            Event::Message(Message::Text(text)) => text.parse::<usize>().unwrap(),
            Event::Message(Message::Binary(bytes)) => {
                u32::from_be_bytes(bytes[..].try_into().unwrap()) as usize
            }
            other => panic!("expected message {i}, got {other:?}"),
        };
        assert_eq!(n, i, "out of order");
    }
}

#[wasm_bindgen_test]
async fn client_close_code_and_reason_reach_the_server() {
    let (tx, mut rx) = open("/echo", Options::default()).await;
    tx.close(4001, "bye ✓").unwrap();
    assert_eq!(tx.ready_state(), ReadyState::Closing);
    assert_eq!(
        next_event(&mut rx).await,
        Event::Close(CloseEvent::new(4001, "bye ✓", true))
    );
    assert!(rx.next().await.is_none());
    assert_eq!(tx.ready_state(), ReadyState::Closed);
}

#[wasm_bindgen_test]
async fn server_close_code_and_reason_reach_the_client() {
    let (mut tx, mut rx) = open("/echo", Options::default().without_reconnect()).await;
    tx.send(Message::text("!close 4002 server says bye"))
        .await
        .unwrap();
    assert_eq!(
        next_event(&mut rx).await,
        Event::Close(CloseEvent::new(4002, "server says bye", true))
    );
    assert_eq!(tx.send(Message::text("late")).await, Err(Error::Closed));
}

#[wasm_bindgen_test]
async fn subprotocol_is_negotiated() {
    let options = Options::default()
        .protocol("nope")
        .protocol("superchat")
        .protocol("chat");
    let (tx, mut rx) = within("connect", unisock::connect(&echo_url("/echo"), options))
        .await
        .unwrap();
    assert_eq!(
        next_event(&mut rx).await,
        Event::Open {
            protocol: "superchat".into()
        }
    );
    assert_eq!(tx.protocol(), "superchat");
}

#[wasm_bindgen_test]
async fn a_server_that_selects_none_of_the_offered_subprotocols_is_refused() {
    // Browsers fail such a handshake (WHATWG WebSockets), and so does unisock natively
    // (tests/interop.rs): the same on every target.
    let options = Options::default().protocol("nope").without_reconnect();
    let result = within("connect", unisock::connect(&echo_url("/echo"), options)).await;
    assert!(
        matches!(result, Err(Error::ConnectFailed { .. })),
        "{result:?}"
    );
}

#[wasm_bindgen_test]
async fn bad_urls_are_typed_errors() {
    assert!(matches!(
        unisock::connect("not a url", Options::default()).await,
        Err(Error::InvalidUrl { .. })
    ));
    assert!(matches!(
        unisock::connect("ftp://127.0.0.1/", Options::default()).await,
        Err(Error::UnsupportedScheme { .. })
    ));
}

#[wasm_bindgen_test]
async fn refused_and_rejected_connects_fail_with_a_typed_error() {
    // Browsers hide why a connect failed (refused, HTTP 404 and TLS errors look the same to a
    // page, on purpose), so all of them are ConnectFailed here.
    for url in [
        "ws://127.0.0.1:9/".to_owned(),
        echo_url("/status/404"),
        echo_url("/status/401"),
    ] {
        let result = within(
            "a failed connect",
            unisock::connect(&url, Options::default()),
        )
        .await;
        assert!(
            matches!(result, Err(Error::ConnectFailed { .. })),
            "{url}: {result:?}"
        );
    }
}

#[wasm_bindgen_test]
async fn connect_timeout_when_the_server_never_answers() {
    let options = Options::default().connect_timeout(Duration::from_millis(300));
    let result = within("the timeout", unisock::connect(&echo_url("/hang"), options)).await;
    assert!(
        matches!(result, Err(Error::ConnectTimeout { .. })),
        "{result:?}"
    );
}

#[wasm_bindgen_test]
async fn options_the_browser_cannot_honour_are_refused() {
    let options = Options::default().header("Authorization", "Bearer x");
    assert!(matches!(
        unisock::connect(&echo_url("/echo"), options).await,
        Err(Error::Unsupported {
            option: "custom headers",
            ..
        })
    ));
}

#[wasm_bindgen_test]
async fn size_limit_and_send_after_close() {
    let (mut tx, mut rx) = open("/echo", Options::default().max_message_size(1000)).await;
    assert_eq!(
        tx.try_send(vec![0u8; 1001]),
        Err(Error::MessageTooLarge {
            size: 1001,
            max: 1000
        })
    );
    tx.send(Message::binary(vec![7u8; 1000])).await.unwrap();
    assert_eq!(
        next_event(&mut rx).await,
        Event::Message(Message::binary(vec![7u8; 1000]))
    );
    tx.close(1000, "").unwrap();
    assert_eq!(tx.try_send("late"), Err(Error::Closed));
}

#[wasm_bindgen_test]
async fn receiving_over_the_size_limit_is_an_error_then_close() {
    let (mut tx, mut rx) = open(
        "/echo",
        Options::default().max_message_size(10).without_reconnect(),
    )
    .await;
    // `!big <n>` makes our echo server send n bytes back.
    tx.send(Message::text("!big 100")).await.unwrap();
    assert_eq!(
        next_event(&mut rx).await,
        Event::Error(Error::MessageTooLarge { size: 100, max: 10 })
    );
    assert_eq!(
        next_event(&mut rx).await,
        Event::Close(CloseEvent::abnormal())
    );
}

#[wasm_bindgen_test]
async fn callback_socket_in_the_browser() {
    let log = Rc::new(RefCell::new(Vec::<Event>::new()));
    let (done_tx, done_rx) = futures::channel::oneshot::channel::<()>();
    let done_tx = Rc::new(RefCell::new(Some(done_tx)));
    let socket = {
        let (open_log, message_log, close_log) = (log.clone(), log.clone(), log.clone());
        Socket::builder(&echo_url("/echo"))
            .options(Options::default().without_reconnect())
            .on_open(move |protocol| open_log.borrow_mut().push(Event::Open { protocol }))
            .on_message(move |message| message_log.borrow_mut().push(Event::Message(message)))
            .on_close(move |close| {
                close_log.borrow_mut().push(Event::Close(close));
                if let Some(done) = done_tx.borrow_mut().take() {
                    let _ = done.send(());
                }
            })
            .connect()
            .unwrap()
    };
    socket.send("queued while connecting").unwrap();
    socket.send(vec![9u8, 8, 7]).unwrap();
    socket.send("!close 4000 done").unwrap();
    within("the close callback", done_rx).await.unwrap();
    assert_eq!(
        *log.borrow(),
        [
            Event::Open {
                protocol: String::new()
            },
            Event::Message(Message::text("queued while connecting")),
            Event::Message(Message::binary(vec![9u8, 8, 7])),
            Event::Close(CloseEvent::new(4000, "done", true)),
        ]
    );
    assert_eq!(socket.ready_state(), ReadyState::Closed);
    assert_eq!(socket.try_recv(), None);
}

/// Messages sent while connecting wait in the queue; sent while it still holds some (from
/// the open callback) they queue behind them; sent once it is empty they go straight to the
/// browser's `WebSocket`. Whichever way each took, the peer gets them in the order sent.
#[wasm_bindgen_test]
async fn order_holds_across_the_queue_and_direct_sends() {
    const EACH: usize = 100;
    let received = Rc::new(RefCell::new(Vec::<String>::new()));
    let (done_tx, done_rx) = futures::channel::oneshot::channel::<u16>();
    let done_tx = Rc::new(RefCell::new(Some(done_tx)));
    let handle = Rc::new(RefCell::new(None::<Socket>));
    let socket = {
        let (open_handle, message_handle) = (handle.clone(), handle.clone());
        let received = received.clone();
        Socket::builder(&echo_url("/echo"))
            .options(Options::default().without_reconnect())
            .on_open(move |_| {
                let socket = open_handle.borrow();
                let socket = socket
                    .as_ref()
                    .expect("the socket is stored before it opens");
                for i in 0..EACH {
                    socket.send(format!("in open {i}")).unwrap();
                }
            })
            .on_message(move |message| {
                let Message::Text(text) = message else {
                    panic!("expected text, got {message:?}");
                };
                received.borrow_mut().push(text.to_string());
                if received.borrow().len() == 1 {
                    let socket = message_handle.borrow();
                    let socket = socket.as_ref().unwrap();
                    for i in 0..EACH {
                        socket.send(format!("after {i}")).unwrap();
                    }
                    socket.send("!close 4000 done").unwrap();
                }
            })
            .on_close(move |close| {
                if let Some(done) = done_tx.borrow_mut().take() {
                    let _ = done.send(close.code);
                }
            })
            .connect()
            .unwrap()
    };
    for i in 0..EACH {
        socket.send(format!("before {i}")).unwrap();
    }
    *handle.borrow_mut() = Some(socket.clone());
    assert_eq!(within("the close", done_rx).await.unwrap(), 4000);
    handle.borrow_mut().take();
    let expected: Vec<String> = (0..EACH)
        .map(|i| format!("before {i}"))
        .chain((0..EACH).map(|i| format!("in open {i}")))
        .chain((0..EACH).map(|i| format!("after {i}")))
        .collect();
    assert_eq!(*received.borrow(), expected);
    assert_eq!(socket.buffered_amount(), 0);
}

#[wasm_bindgen_test]
async fn sink_waits_above_the_high_water_mark_while_the_peer_does_not_read() {
    const CHUNK: usize = 64 << 10;
    const COUNT: u32 = 400; // 25 MiB
    let options = Options {
        high_water_mark: 256 << 10,
        ..Options::default().without_reconnect()
    };
    let (tx, mut rx) = open("/stall", options).await;
    let state = Rc::new(RefCell::new((0u32, 0u64, None::<unisock::Sender>)));
    {
        let state = state.clone();
        let mut tx = tx;
        wasm_bindgen_futures::spawn_local(async move {
            for _ in 0..COUNT {
                tx.feed(Message::binary(vec![7u8; CHUNK])).await.unwrap();
                let mut s = state.borrow_mut();
                s.0 += 1;
                s.1 = s.1.max(tx.buffered_amount());
            }
            tx.flush().await.unwrap();
            state.borrow_mut().2 = Some(tx);
        });
    }
    gloo_timers::future::TimeoutFuture::new(1000).await;
    let during_stall = state.borrow().0;
    assert!(during_stall < COUNT, "the producer was not held back");
    within("the producer", async {
        while state.borrow().2.is_none() {
            gloo_timers::future::TimeoutFuture::new(20).await;
        }
    })
    .await;
    let (_, worst, tx) = std::mem::take(&mut *state.borrow_mut());
    // The browser's own buffer counts too: at most the mark plus the message let in.
    assert!(
        worst <= (256 << 10) + CHUNK as u64,
        "buffered {worst} bytes"
    );
    let mut tx = tx.unwrap();
    tx.send(Message::text("!count")).await.unwrap();
    assert_eq!(
        next_event(&mut rx).await,
        Event::Message(Message::text(format!(
            "count {COUNT} {}",
            u64::from(COUNT) * CHUNK as u64
        )))
    );
}

/// A received message is handed to the session at once, from the browser's own event
/// callback (not a task woken later), so callbacks run there: two sockets at once each play
/// ping-pong from inside `on_message` (text and binary), sending and finally closing from the
/// callback. Each gets exactly its own echoes, in order, and no callback ever runs from inside
/// a `send` or `close` call.
#[wasm_bindgen_test]
async fn callbacks_send_and_close_from_inside_on_message_on_two_sockets_at_once() {
    use std::cell::Cell;
    const ROUNDS: usize = 200;
    struct Player {
        socket: Rc<RefCell<Option<Socket>>>,
        received: Rc<RefCell<Vec<Message>>>,
        done: futures::channel::oneshot::Receiver<u16>,
    }
    // Set around every call into a socket: a callback that finds it set ran from inside it.
    let in_call = Rc::new(Cell::new(false));
    let nested = Rc::new(Cell::new(0u32));
    let message = |id: usize, n: usize| {
        if n % 2 == 0 {
            Message::text(format!("socket {id} round {n}"))
        } else {
            Message::binary(vec![id as u8, n as u8, (n >> 8) as u8])
        }
    };
    let mut players = Vec::new();
    for id in 0..2 {
        let handle = Rc::new(RefCell::new(None::<Socket>));
        let received = Rc::new(RefCell::new(Vec::new()));
        let (done_tx, done_rx) = futures::channel::oneshot::channel::<u16>();
        let done_tx = Rc::new(RefCell::new(Some(done_tx)));
        let (on_message, on_close) = {
            let (handle, received, in_call, nested) = (
                handle.clone(),
                received.clone(),
                in_call.clone(),
                nested.clone(),
            );
            let close_nested = nested.clone();
            let close_in_call = in_call.clone();
            (
                move |m: Message| {
                    if in_call.get() {
                        nested.set(nested.get() + 1);
                    }
                    received.borrow_mut().push(m);
                    let n = received.borrow().len();
                    let socket = handle.borrow();
                    let socket = socket.as_ref().expect("stored before the first echo");
                    in_call.set(true);
                    if n < ROUNDS {
                        socket.send(message(id, n)).unwrap();
                    } else {
                        socket.close(4000 + id as u16, "done").unwrap();
                    }
                    in_call.set(false);
                },
                move |close: CloseEvent| {
                    if close_in_call.get() {
                        close_nested.set(close_nested.get() + 1);
                    }
                    if let Some(done) = done_tx.borrow_mut().take() {
                        let _ = done.send(close.code);
                    }
                },
            )
        };
        let socket = Socket::builder(&echo_url("/echo"))
            .options(Options::default().without_reconnect())
            .on_message(on_message)
            .on_close(on_close)
            .connect()
            .unwrap();
        *handle.borrow_mut() = Some(socket);
        players.push(Player {
            socket: handle,
            received,
            done: done_rx,
        });
    }
    for (id, player) in players.iter().enumerate() {
        in_call.set(true);
        player
            .socket
            .borrow()
            .as_ref()
            .unwrap()
            .send(message(id, 0))
            .unwrap();
        in_call.set(false);
    }
    for (id, player) in players.into_iter().enumerate() {
        let code = within("the close", player.done).await.unwrap();
        assert_eq!(code, 4000 + id as u16);
        let expected: Vec<Message> = (0..ROUNDS).map(|n| message(id, n)).collect();
        assert_eq!(*player.received.borrow(), expected, "socket {id}");
        player.socket.borrow_mut().take();
    }
    assert_eq!(nested.get(), 0, "a callback ran from inside send or close");
}
