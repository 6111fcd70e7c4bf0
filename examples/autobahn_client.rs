//! Drives unisock's public client API through the Autobahn TestSuite cases, served by a
//! fuzzing server (`kosoku -m fuzzingserver`, which speaks Autobahn's `/getCaseCount`,
//! `/runCase` and `/updateReports`): every message of a case is echoed back, as the suite
//! expects. See scripts/autobahn.sh, which runs it and checks the results.
//!
//! `cargo run --release --example autobahn_client -- ws://127.0.0.1:9001 [agent]`

#[cfg(not(target_arch = "wasm32"))]
#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    use futures::{SinkExt, StreamExt};
    use unisock::{Event, Message, Options};

    let mut args = std::env::args().skip(1);
    let base = args
        .next()
        .unwrap_or_else(|| "ws://127.0.0.1:9001".to_owned());
    let agent = args.next().unwrap_or_else(|| "unisock".to_owned());
    // The suite closes connections on purpose: no reconnects, no pings of our own, and room
    // for its largest messages (16 MiB).
    let options = Options {
        max_message_size: 64 << 20,
        ..Options::default().without_reconnect().heartbeat(None)
    };

    let (_tx, mut rx) = unisock::connect(&format!("{base}/getCaseCount"), options.clone()).await?;
    let mut count = 0u32;
    while let Some(event) = rx.next().await {
        if let Event::Message(Message::Text(text)) = event {
            count = text.trim().parse()?;
        }
    }
    println!("{count} cases");

    for case in 1..=count {
        let url = format!("{base}/runCase?case={case}&agent={agent}");
        if case % 50 == 1 {
            println!("case {case} …");
        }
        let (mut tx, mut rx) = match unisock::connect(&url, options.clone()).await {
            Ok(halves) => halves,
            Err(error) => {
                eprintln!("case {case}: connect failed: {error}");
                continue;
            }
        };
        while let Some(event) = rx.next().await {
            let echoed = match event {
                // The peer may close while we echo: that is part of some cases.
                Event::Message(message) => tx.send(message).await.is_ok(),
                Event::Close(_) => false,
                _ => true,
            };
            if !echoed {
                break;
            }
        }
    }

    let url = format!("{base}/updateReports?agent={agent}");
    let (_tx, mut rx) = unisock::connect(&url, options).await?;
    while rx.next().await.is_some() {}
    println!("reports updated");
    Ok(())
}

#[cfg(target_arch = "wasm32")]
fn main() {}
