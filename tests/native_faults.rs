//! Fault injection over loopback: a proxy between the client and a real echo server cuts
//! connections (RST, FIN), blackholes them and refuses new ones; the session must reconnect
//! by itself, keep order, deliver what was queued while down, and hand back what never left.

#![cfg(not(target_arch = "wasm32"))]

mod common;
#[path = "support/cut_outcome.rs"]
mod cut_outcome;

use std::time::{Duration, Instant};

use common::fault_proxy::{Cut, FaultProxy};
use common::{next_event, STEP};
use cut_outcome::{fast_reconnect, CutOutcome};
use unisock::{Event, Heartbeat, Message, Options, ReadyState, Reconnect};

async fn proxied_echo() -> (common::Peer, FaultProxy) {
    let echo = common::rust_peer().await;
    let upstream = echo.base_url.trim_start_matches("ws://").parse().unwrap();
    let proxy = FaultProxy::start(upstream).await.unwrap();
    (echo, proxy)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn numbered_messages_survive_five_cuts_in_order() {
    const COUNT: u32 = 1000;
    let (_echo, proxy) = proxied_echo().await;
    let url = format!("ws://{}/echo", proxy.addr());
    let options = Options::default().reconnect(fast_reconnect());
    let (mut tx, mut rx) = unisock::connect(&url, options).await.unwrap();

    let reader = tokio::spawn(async move {
        let (mut received, mut opens, mut reconnects) = (Vec::new(), 0, 0);
        loop {
            match tokio::time::timeout(STEP, futures::StreamExt::next(&mut rx)).await {
                Ok(Some(Event::Message(Message::Text(n)))) => {
                    received.push(n.parse::<u32>().unwrap())
                }
                Ok(Some(Event::Open { .. })) => opens += 1,
                Ok(Some(Event::Reconnecting { .. })) => reconnects += 1,
                Ok(Some(Event::Close(close))) => return (received, opens, reconnects, close),
                Ok(Some(other)) => println!("event: {other:?}"),
                Ok(None) | Err(_) => panic!("no close within the time limit"),
            }
        }
    });

    // A steady pace of 2 ms per message; a cut every 150 messages, RST and FIN in turn.
    let mut sent_while_down = Vec::new();
    for i in 0..COUNT {
        if i > 0 && i % 150 == 0 && i <= 750 {
            proxy.cut(if i % 300 == 0 { Cut::Fin } else { Cut::Rst });
        }
        if tx.ready_state() != ReadyState::Open {
            sent_while_down.push(i);
        }
        tx.try_send(i.to_string()).unwrap();
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    // Let the last echoes arrive, then go offline for good with a few messages queued.
    let deadline = Instant::now() + STEP;
    while (tx.buffered_amount() > 0 || tx.ready_state() != ReadyState::Open)
        && Instant::now() < deadline
    {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    proxy.refuse_for(STEP);
    let deadline = Instant::now() + STEP;
    while tx.ready_state() == ReadyState::Open && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    for i in COUNT..COUNT + 3 {
        tx.try_send(i.to_string()).unwrap();
    }
    tx.close(1000, "done").unwrap();
    let (received, opens, reconnects, close) = reader.await.unwrap();

    let outcome = CutOutcome {
        received,
        sent_while_down,
        opens,
        reconnects,
        close,
    };
    println!("{}", cut_outcome::check(COUNT, &outcome));
}

#[tokio::test]
async fn refused_connects_are_retried_on_the_promised_schedule() {
    let (_echo, proxy) = proxied_echo().await;
    let url = format!("ws://{}/echo", proxy.addr());
    let policy = Reconnect {
        min_delay: Duration::from_millis(100),
        max_delay: Duration::from_secs(1),
        factor: 2.0,
        ..Reconnect::default()
    };
    let options = Options::default().reconnect(policy.clone());
    let (_tx, mut rx) = unisock::connect(&url, options).await.unwrap();
    assert!(matches!(next_event(&mut rx).await, Event::Open { .. }));

    let refused_at = Instant::now();
    proxy.refuse_for(Duration::from_secs(3));
    let mut schedule = Vec::new();
    loop {
        match next_event(&mut rx).await {
            Event::Reconnecting { attempt, delay, .. } => {
                schedule.push((attempt, delay, refused_at.elapsed()))
            }
            Event::Error(error) => println!("attempt failed: {error}"),
            Event::Open { .. } => break,
            other => panic!("unexpected {other:?}"),
        }
    }
    let back_after = refused_at.elapsed();
    println!("schedule: {schedule:?}, open again after {back_after:?}");
    for (i, (attempt, delay, _)) in schedule.iter().enumerate() {
        assert_eq!(*attempt, i as u32 + 1);
        assert!(
            *delay <= policy.ceiling(*attempt),
            "attempt {attempt}: {delay:?}"
        );
    }
    // Each attempt waited at least its announced delay before the next announcement. Events
    // can only be seen late, never early: so each announcement is seen no sooner than the
    // sum of the delays announced before it (spacing between two sightings would shrink when
    // the first one is seen late on a busy machine).
    let mut waited = Duration::ZERO;
    for pair in schedule.windows(2) {
        waited += pair[0].1;
        assert!(pair[1].2 >= waited, "{pair:?} seen before {waited:?}");
    }
    assert!(
        back_after >= Duration::from_secs(3),
        "back before the port reopened?"
    );
    // Back within one maximal delay of the port reopening (plus scheduling slack).
    assert!(back_after < Duration::from_secs(3) + policy.max_delay + Duration::from_secs(2));
}

#[tokio::test]
async fn blackholed_connection_is_detected_by_the_heartbeat_and_replaced() {
    let (_echo, proxy) = proxied_echo().await;
    let url = format!("ws://{}/echo", proxy.addr());
    let heartbeat = Heartbeat {
        interval: Duration::from_millis(300),
        timeout: Duration::from_millis(300),
        app_ping: None,
    };
    let options = Options::default()
        .reconnect(fast_reconnect())
        .heartbeat(Some(heartbeat.clone()));
    let (mut tx, mut rx) = unisock::connect(&url, options).await.unwrap();
    assert!(matches!(next_event(&mut rx).await, Event::Open { .. }));
    tx.try_send("before").unwrap();
    assert_eq!(
        next_event(&mut rx).await,
        Event::Message(Message::text("before"))
    );

    let silenced_at = Instant::now();
    proxy.blackhole();
    let error = next_event(&mut rx).await;
    let detected_after = silenced_at.elapsed();
    assert!(
        matches!(
            error,
            unisock::Event::Error(unisock::Error::HeartbeatTimeout { .. })
        ),
        "{error:?}"
    );
    println!("blackhole detected after {detected_after:?}");
    let bound = heartbeat.interval + heartbeat.timeout;
    assert!(
        detected_after <= bound + Duration::from_millis(500),
        "detected after {detected_after:?}, promised within {bound:?}"
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
    assert_eq!(proxy.accepted(), 2);
}
