//! The async API natively: connect, send, read the echo, close.
//!
//! Start a server first (`bash scripts/demo.sh`, or `cargo run --example echo_server 9001`),
//! then: `cargo run --example native_echo -- ws://127.0.0.1:9001/echo`

#[cfg(not(target_arch = "wasm32"))]
#[tokio::main]
async fn main() -> Result<(), unisock::Error> {
    use futures::{SinkExt, StreamExt};
    use unisock::{Event, Message, Options};

    let url = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "ws://127.0.0.1:9001/echo".to_owned());
    let (mut sender, mut receiver) = unisock::connect(&url, Options::default()).await?;
    sender.send(Message::text("hello from native Rust")).await?;
    while let Some(event) = receiver.next().await {
        match event {
            Event::Open { protocol } => println!("open (subprotocol {protocol:?})"),
            Event::Message(message) => {
                println!("echo: {message:?}");
                sender.close(1000, "done")?;
            }
            Event::Close(close) => println!("closed: {} {:?}", close.code, close.reason),
            other => println!("{other:?}"),
        }
    }
    Ok(())
}

#[cfg(target_arch = "wasm32")]
fn main() {}
