//! Direct writes in acknowledged sessions under real contention: several senders (the `Sink`
//! from a task, `try_send` from a plain thread) write into the same session while the driver
//! reads echoes and acks, and the connection is cut now and then. Each sender's messages
//! must come back exactly once and in its order, with no gap.
//!
//! Run with `cargo test --features server --test native_session_direct`.
#![cfg(all(feature = "server", not(target_arch = "wasm32")))]

mod common;
#[path = "support/session_events.rs"]
mod session_events;
#[path = "support/test_server.rs"]
mod test_server;

use std::collections::HashMap;
use std::time::{Duration, Instant};

use common::fault_proxy::{Cut, FaultProxy};
use common::{next_event, STEP};
use futures::SinkExt;
use session_events::session_options;
use test_server::TestServer;
use unisock::server::ServerConfig;
use unisock::{Error, Event, Message};

/// Messages per sender.
const PER_SENDER: u32 = 3000;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_direct_senders_keep_order_and_exactly_once_across_cuts() {
    let server = TestServer::start(ServerConfig::default()).await;
    let proxy = FaultProxy::start(server.addr).await.unwrap();
    let url = format!("ws://{}/echo", proxy.addr());
    let (tx, mut rx) = unisock::connect(&url, session_options(Duration::from_millis(200)))
        .await
        .unwrap();

    // Sender "s": the Sink (feed + flush), from a task.
    let mut sink = tx.clone();
    let sink_task = tokio::spawn(async move {
        for i in 0..PER_SENDER {
            tokio::time::timeout(STEP, sink.send(Message::text(format!("s{i}"))))
                .await
                .expect("send within the time limit")
                .unwrap();
            if i % 64 == 0 {
                tokio::task::yield_now().await;
            }
        }
    });
    // Sender "t": `try_send` from a plain thread, retrying while the queue is full.
    let mut plain = tx.clone();
    let thread = std::thread::spawn(move || {
        for i in 0..PER_SENDER {
            let deadline = Instant::now() + STEP;
            loop {
                match plain.try_send(Message::text(format!("t{i}"))) {
                    Ok(()) => break,
                    Err(Error::QueueFull { .. }) => {
                        assert!(Instant::now() < deadline, "queue stayed full");
                        std::thread::sleep(Duration::from_micros(200));
                    }
                    Err(e) => panic!("try_send: {e}"),
                }
            }
        }
    });
    // Reader: the next number expected from each sender. It cuts the connection when a
    // quarter, half and three quarters of the echoes are in, while both still send.
    let mut next: HashMap<char, u32> = HashMap::new();
    let mut cuts = vec![Cut::Rst, Cut::Fin, Cut::Rst];
    let mut opens = 0;
    let deadline = Instant::now() + 3 * STEP;
    loop {
        let received = next.values().sum::<u32>();
        if received == 2 * PER_SENDER {
            break;
        }
        if received >= (4 - cuts.len() as u32) * PER_SENDER / 2 && !cuts.is_empty() {
            proxy.cut(cuts.remove(0));
        }
        assert!(
            Instant::now() < deadline,
            "echoes did not all arrive: {next:?}"
        );
        match next_event(&mut rx).await {
            Event::Message(Message::Text(text)) => {
                let (sender, n) = text.split_at(1);
                let sender = sender.chars().next().unwrap();
                let n: u32 = n.parse().unwrap();
                let expected = next.entry(sender).or_default();
                assert_eq!(n, *expected, "sender {sender}: out of order or twice");
                *expected += 1;
            }
            Event::Gap(gap) => panic!("lost: {gap:?}"),
            Event::Session { acknowledged, .. } => assert!(acknowledged),
            Event::Open { .. } => opens += 1,
            _ => {}
        }
    }
    sink_task.await.unwrap();
    thread.join().unwrap();
    println!("{opens} opens");
    assert!(opens >= 2, "the cuts made it reconnect ({opens} opens)");
    assert_eq!(next.get(&'s'), Some(&PER_SENDER));
    assert_eq!(next.get(&'t'), Some(&PER_SENDER));
    tx.close(1000, "done").unwrap();
}
