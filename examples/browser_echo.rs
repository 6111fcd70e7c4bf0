//! The same code in the browser: built for wasm32, `main` starts the task on the page's event
//! loop (the async API needs no runtime there). Build it with
//! `cargo build --example browser_echo --target wasm32-unknown-unknown` and load it with
//! `wasm-bindgen --target web`; the result goes to the page's `document.title`.

#[cfg(target_arch = "wasm32")]
fn main() {
    wasm_bindgen_futures::spawn_local(async {
        let outcome = match echo_once("ws://127.0.0.1:9001/echo").await {
            Ok(reply) => format!("echo: {reply}"),
            Err(error) => format!("failed: {error}"),
        };
        show(&outcome);
    });
}

/// Exactly what a native program would write.
#[cfg(target_arch = "wasm32")]
async fn echo_once(url: &str) -> Result<String, unisock::Error> {
    use futures::{SinkExt, StreamExt};
    use unisock::{Event, Message, Options};

    let (mut sender, mut receiver) = unisock::connect(url, Options::default()).await?;
    sender.send(Message::text("hello from the browser")).await?;
    while let Some(event) = receiver.next().await {
        if let Event::Message(Message::Text(reply)) = event {
            sender.close(1000, "done")?;
            return Ok(reply.into());
        }
    }
    Err(unisock::Error::Closed)
}

#[cfg(target_arch = "wasm32")]
fn show(text: &str) {
    // `document.title = text`, through js-sys to keep the example free of extra web-sys features.
    let global = js_sys::global();
    if let Ok(document) = js_sys::Reflect::get(&global, &"document".into()) {
        let _ = js_sys::Reflect::set(&document, &"title".into(), &text.into());
    }
}

#[cfg(not(target_arch = "wasm32"))]
fn main() {
    eprintln!("browser_echo is a wasm32 example: cargo build --example browser_echo --target wasm32-unknown-unknown");
}
