//! Acknowledged sessions (`unisock.v1`) in a real browser: the same scenarios as
//! tests/native_sessions.rs through the browser's own WebSocket. The echo server's
//! `/session-proxy` control connection (it runs with the `server` feature, see
//! scripts/test.sh) starts `unisock serve` behind a fault proxy and cuts, blackholes, refuses
//! or restarts on command.

#![cfg(target_arch = "wasm32")]

use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::time::Duration;

use futures::{SinkExt, StreamExt};
use unisock::{Direction, Event, Gap, GapReason, Message, Options};
use wasm_bindgen_test::*;

wasm_bindgen_test_configure!(run_in_browser);

#[path = "support/session_cuts.rs"]
mod session_cuts;
#[path = "support/session_events.rs"]
mod session_events;
#[path = "support/browser.rs"]
mod support;
use session_cuts::{Seen, COUNT, CUTS, CUT_KINDS};
use session_events::{expect_open, next_interesting, session_options};
use support::{echo_url, next_event, sleep_ms};

fn now() -> Duration {
    Duration::from_secs_f64(js_sys::Date::now() / 1000.0)
}

/// The control connection of a fresh `unisock serve` + proxy, and the proxy's base URL.
struct Proxy {
    control: (unisock::Sender, unisock::Receiver),
    base: String,
}

impl Proxy {
    async fn start() -> Proxy {
        let options = Options::default().without_reconnect();
        let (tx, mut rx) = unisock::connect(&echo_url("/session-proxy"), options)
            .await
            .unwrap();
        assert!(matches!(next_event(&mut rx).await, Event::Open { .. }));
        let Event::Message(Message::Text(port)) = next_event(&mut rx).await else {
            panic!("no PORT line: is the echo server built with --features server?");
        };
        let port = port.strip_prefix("PORT ").expect("PORT <port>").to_owned();
        Proxy {
            control: (tx, rx),
            base: format!("ws://127.0.0.1:{port}"),
        }
    }

    /// The URL base of the server itself, not through the proxy.
    async fn server_base(&mut self) -> String {
        self.control.0.try_send("server").unwrap();
        let Event::Message(Message::Text(port)) = next_event(&mut self.control.1).await else {
            panic!("no SERVER line");
        };
        let port = port
            .strip_prefix("SERVER ")
            .expect("SERVER <port>")
            .to_owned();
        format!("ws://127.0.0.1:{port}")
    }

    async fn command(&mut self, command: &str) {
        self.control.0.try_send(command).unwrap();
        assert_eq!(
            next_event(&mut self.control.1).await,
            Event::Message(Message::text("ok"))
        );
    }
}

/// The session clients' heartbeat timeout (as in tests/native_sessions.rs).
const HEARTBEAT_TIMEOUT: Duration = Duration::from_millis(200);

#[wasm_bindgen_test]
async fn ten_thousand_messages_each_way_survive_twenty_cuts_exactly_once() {
    let started = now();
    let mut proxy = Proxy::start().await;
    let url = format!("{}/echo", proxy.base);
    let (mut tx, mut rx) = unisock::connect(&url, session_options(HEARTBEAT_TIMEOUT))
        .await
        .unwrap();

    let seen = Rc::new(RefCell::new(Seen::default()));
    {
        let seen = seen.clone();
        wasm_bindgen_futures::spawn_local(async move {
            while let Some(event) = rx.next().await {
                let mut s = seen.borrow_mut();
                match event {
                    Event::Message(Message::Text(n)) => s.message(&n),
                    Event::Open { .. } => s.opens += 1,
                    Event::Session {
                        acknowledged,
                        resumed,
                    } => {
                        if !acknowledged {
                            s.problem("the session was not acknowledged".into());
                        }
                        s.resumed += u32::from(resumed);
                    }
                    Event::Gap(gap) => s.problem(format!("lost: {gap:?}")),
                    Event::Close(close) => s.close = Some(close),
                    Event::Message(other) => s.problem(format!("unexpected {other:?}")),
                    _ => {}
                }
            }
        });
    }

    // Cuts at pseudo-random moments, each while traffic flows and once the client is back.
    let cuts = Rc::new(Cell::new(0u32));
    {
        let cuts = cuts.clone();
        let seen = seen.clone();
        wasm_bindgen_futures::spawn_local(async move {
            for (cut, delay) in (0..CUTS).zip(session_cuts::cut_delays_ms()) {
                sleep_ms(delay).await;
                let before = seen.borrow().opens;
                proxy.command(CUT_KINDS[cut as usize % 3]).await;
                cuts.set(cut + 1);
                let deadline = now() + Duration::from_secs(20);
                while seen.borrow().opens == before && now() < deadline {
                    sleep_ms(5).await;
                }
            }
            // Keep the proxy (and its server) alive until the test ends.
            sleep_ms(60_000).await;
            drop(proxy);
        });
    }

    for i in 0..COUNT {
        let deadline = now() + Duration::from_secs(20);
        while !session_cuts::may_send(i, cuts.get()) {
            assert!(now() < deadline, "cutter stalled at cut {}", cuts.get());
            sleep_ms(2).await;
        }
        support::within("a send", tx.send(Message::text(i.to_string())))
            .await
            .unwrap();
        if i % 32 == 0 {
            sleep_ms(0).await;
        }
    }
    let deadline = now() + Duration::from_secs(60);
    while seen.borrow().next < COUNT && seen.borrow().problem.is_none() && now() < deadline {
        sleep_ms(20).await;
    }
    tx.close(1000, "done").unwrap();
    while seen.borrow().close.is_none() && now() < deadline {
        sleep_ms(20).await;
    }
    let summary = seen.borrow().check();
    let elapsed = now() - started;
    wasm_bindgen_test::console_log!("{summary}, in {elapsed:?}");
}

#[wasm_bindgen_test]
async fn restarted_server_cannot_resume_and_the_app_gets_both_gaps() {
    let mut proxy = Proxy::start().await;
    let url = format!("{}/echo", proxy.base);
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
    proxy.command("blackhole").await;
    tx.send(Message::text("c")).await.unwrap();
    tx.send(Message::text("d")).await.unwrap();
    proxy.command("restart").await;

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
    tx.send(Message::text("e")).await.unwrap();
    assert_eq!(
        next_interesting(&mut rx).await,
        Event::Message(Message::text("e"))
    );
}

#[wasm_bindgen_test]
async fn session_expires_after_the_grace_period() {
    let mut proxy = Proxy::start().await;
    // 1.5 s: Firefox delays reconnects after a failure by up to about a second.
    proxy.command("restart 1500 1024").await;
    let url = format!("{}/echo", proxy.base);
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
    proxy.command("refuse 3000").await;
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
    proxy.command("rst").await;
    expect_open(&mut rx, true).await;
    tx.send(Message::text("c")).await.unwrap();
    assert_eq!(
        next_interesting(&mut rx).await,
        Event::Message(Message::text("c"))
    );
}

/// Room broadcasts while away come on resume within the server's buffer; beyond it, a gap.
#[wasm_bindgen_test]
async fn room_broadcasts_while_away_are_replayed_and_overflow_is_a_gap() {
    let mut proxy = Proxy::start().await;
    proxy.command("restart 30000 10").await;
    let (_away_tx, mut away) = unisock::connect(
        &format!("{}/rooms/lobby", proxy.base),
        session_options(HEARTBEAT_TIMEOUT),
    )
    .await
    .unwrap();
    expect_open(&mut away, false).await;
    let direct = format!("{}/rooms/lobby", proxy.server_base().await);
    let (mut speaker, _speaker_rx) = unisock::connect(&direct, Options::default()).await.unwrap();
    speaker.send(Message::text("hello")).await.unwrap();
    assert_eq!(
        next_interesting(&mut away).await,
        Event::Message(Message::text("hello"))
    );

    proxy.command("refuse 500").await;
    sleep_ms(100).await;
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

    proxy.command("refuse 500").await;
    sleep_ms(100).await;
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
