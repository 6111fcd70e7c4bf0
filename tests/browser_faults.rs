//! Fault injection in a real browser: the echo server's `/proxy` control connection starts a
//! proxy in front of it and cuts (RST, FIN), blackholes or refuses connections on command.
//! The same scenarios as tests/native_faults.rs, through the browser's own WebSocket.

#![cfg(target_arch = "wasm32")]

use std::time::Duration;

use futures::StreamExt;
use unisock::{AppPing, Error, Event, Heartbeat, Message, Options, ReadyState, Reconnect};
use wasm_bindgen_test::*;

wasm_bindgen_test_configure!(run_in_browser);

#[path = "support/cut_outcome.rs"]
mod cut_outcome;
#[path = "support/browser.rs"]
mod support;
use cut_outcome::fast_reconnect;
use support::{echo_url, next_event, sleep_ms};

fn now() -> Duration {
    Duration::from_secs_f64(js_sys::Date::now() / 1000.0)
}

/// The control connection of a fresh proxy, and the proxy's URL to the echo endpoint.
struct Proxy {
    control: (unisock::Sender, unisock::Receiver),
    url: String,
}

impl Proxy {
    async fn start() -> Proxy {
        let options = Options::default().without_reconnect();
        let (tx, mut rx) = unisock::connect(&echo_url("/proxy"), options)
            .await
            .unwrap();
        assert!(matches!(next_event(&mut rx).await, Event::Open { .. }));
        let Event::Message(Message::Text(port)) = next_event(&mut rx).await else {
            panic!("no PORT line");
        };
        let port = port.strip_prefix("PORT ").expect("PORT <port>").to_owned();
        Proxy {
            control: (tx, rx),
            url: format!("ws://127.0.0.1:{port}/echo"),
        }
    }

    async fn command(&mut self, command: &str) {
        self.control.0.try_send(command).unwrap();
        assert_eq!(
            next_event(&mut self.control.1).await,
            Event::Message(Message::text("ok"))
        );
    }
}

#[wasm_bindgen_test]
async fn numbered_messages_survive_five_cuts_in_order() {
    const COUNT: u32 = 1000;
    let mut proxy = Proxy::start().await;
    let options = Options::default().reconnect(fast_reconnect());
    let (mut tx, mut rx) = unisock::connect(&proxy.url, options).await.unwrap();

    // Everything runs on one thread here: collect events in a spawned task.
    let collected = std::rc::Rc::new(std::cell::RefCell::new((Vec::new(), 0u32, 0u32, None)));
    {
        let collected = collected.clone();
        wasm_bindgen_futures::spawn_local(async move {
            while let Some(event) = rx.next().await {
                let mut c = collected.borrow_mut();
                match event {
                    Event::Message(Message::Text(n)) => c.0.push(n.parse::<u32>().unwrap()),
                    Event::Open { .. } => c.1 += 1,
                    Event::Reconnecting { .. } => c.2 += 1,
                    Event::Close(close) => c.3 = Some(close),
                    _ => {}
                }
            }
        });
    }

    let mut sent_while_down = Vec::new();
    for i in 0..COUNT {
        if i > 0 && i % 150 == 0 && i <= 750 {
            proxy
                .command(if i % 300 == 0 { "fin" } else { "rst" })
                .await;
        }
        if tx.ready_state() != ReadyState::Open {
            sent_while_down.push(i);
        }
        tx.try_send(i.to_string()).unwrap();
        sleep_ms(2).await;
    }
    let deadline = now() + Duration::from_secs(20);
    while (tx.buffered_amount() > 0 || tx.ready_state() != ReadyState::Open) && now() < deadline {
        sleep_ms(10).await;
    }
    sleep_ms(300).await;
    proxy.command("refuse 20000").await;
    while tx.ready_state() == ReadyState::Open && now() < deadline {
        sleep_ms(5).await;
    }
    for i in COUNT..COUNT + 3 {
        tx.try_send(i.to_string()).unwrap();
    }
    tx.close(1000, "done").unwrap();
    while collected.borrow().3.is_none() && now() < deadline {
        sleep_ms(10).await;
    }

    let (received, opens, reconnects, close) = collected.borrow().clone();
    let close = close.expect("the final close");
    let outcome = cut_outcome::CutOutcome {
        received,
        sent_while_down,
        opens,
        reconnects,
        close,
    };
    web_sys_log(&cut_outcome::check(COUNT, &outcome));
}

#[wasm_bindgen_test]
async fn refused_connects_are_retried_on_the_promised_schedule() {
    let mut proxy = Proxy::start().await;
    let policy = Reconnect {
        min_delay: Duration::from_millis(100),
        max_delay: Duration::from_secs(1),
        factor: 2.0,
        ..Reconnect::default()
    };
    let options = Options::default().reconnect(policy.clone());
    let (_tx, mut rx) = unisock::connect(&proxy.url, options).await.unwrap();
    assert!(matches!(next_event(&mut rx).await, Event::Open { .. }));

    let refused_at = now();
    proxy.command("refuse 3000").await;
    let mut schedule = Vec::new();
    loop {
        match next_event(&mut rx).await {
            Event::Reconnecting { attempt, delay, .. } => {
                schedule.push((attempt, delay, now() - refused_at))
            }
            Event::Error(_) => {}
            Event::Open { .. } => break,
            other => panic!("unexpected {other:?}"),
        }
    }
    let back_after = now() - refused_at;
    web_sys_log(&format!("schedule {schedule:?}, back after {back_after:?}"));
    for (i, (attempt, delay, _)) in schedule.iter().enumerate() {
        assert_eq!(*attempt, i as u32 + 1);
        assert!(*delay <= policy.ceiling(*attempt));
    }
    assert!(back_after >= Duration::from_millis(2900));
    assert!(back_after < Duration::from_secs(3) + policy.max_delay + Duration::from_secs(2));
}

#[wasm_bindgen_test]
async fn blackholed_connection_is_detected_by_the_app_heartbeat_and_replaced() {
    let mut proxy = Proxy::start().await;
    // The browser cannot send ping frames: an application ping the echo server answers.
    let heartbeat = Heartbeat {
        interval: Duration::from_millis(300),
        timeout: Duration::from_millis(300),
        app_ping: Some(AppPing {
            ping: Message::text("__ping"),
            pong: Message::text("__ping"),
        }),
    };
    let options = Options::default()
        .reconnect(fast_reconnect())
        .heartbeat(Some(heartbeat.clone()));
    let (mut tx, mut rx) = unisock::connect(&proxy.url, options).await.unwrap();
    assert!(matches!(next_event(&mut rx).await, Event::Open { .. }));
    // Heartbeats while idle do not show up as messages.
    sleep_ms(1000).await;
    tx.try_send("before").unwrap();
    assert_eq!(
        next_event(&mut rx).await,
        Event::Message(Message::text("before"))
    );

    let silenced_at = now();
    proxy.command("blackhole").await;
    let event = next_event(&mut rx).await;
    let detected_after = now() - silenced_at;
    assert!(
        matches!(event, Event::Error(Error::HeartbeatTimeout { .. })),
        "{event:?}"
    );
    let bound = heartbeat.interval + heartbeat.timeout;
    assert!(
        detected_after <= bound + Duration::from_millis(500),
        "after {detected_after:?}"
    );
    assert!(matches!(
        next_event(&mut rx).await,
        Event::Reconnecting { attempt: 1, .. }
    ));
    assert!(matches!(next_event(&mut rx).await, Event::Open { .. }));
    tx.try_send("after").unwrap();
    assert_eq!(
        next_event(&mut rx).await,
        Event::Message(Message::text("after"))
    );
}

fn web_sys_log(line: &str) {
    wasm_bindgen_test::console_log!("{line}");
}
