//! The connection as a service apart from the UI, natively: a "service" thread owns the
//! reading side of a [`unisock::Socket`] and turns its events into app messages sent over a
//! channel; the UI loop (an egui-style loop here, without a GUI) sleeps until woken, drains
//! that channel, and sends through its own clone of the socket. No thread polls on a timer.
//!
//! ```text
//! cargo run --example service_thread --features server               # starts its own server
//! cargo run --example service_thread --features server -- ws://127.0.0.1:9001/rooms/lobby
//! ```

#[cfg(not(target_arch = "wasm32"))]
fn main() -> Result<(), Box<dyn std::error::Error>> {
    service::main()
}

#[cfg(target_arch = "wasm32")]
fn main() {}

#[cfg(not(target_arch = "wasm32"))]
mod service {
    use std::sync::mpsc;
    use std::time::Duration;

    use unisock::{Event, Message, Options, Socket};

    /// What the service tells the UI: app-level news, not socket details.
    enum ToUi {
        Status(String),
        Chat(String),
        Closed { code: u16, reason: String },
    }

    pub fn main() -> Result<(), Box<dyn std::error::Error>> {
        // With no URL given, run our own echo server in this process (127.0.0.1, free port).
        let (url, _server) = match std::env::args().nth(1) {
            Some(url) => (url, None),
            None => {
                let (url, runtime) = local_server()?;
                (url, Some(runtime))
            }
        };

        let (to_ui, from_service) = mpsc::channel::<ToUi>();
        // The UI loop's "request repaint": one token per wake-up, coalesced by the UI.
        let (wake_ui, ui_woken) = mpsc::sync_channel::<()>(1);

        // The service thread opens the connection and reads it; the connection itself runs in
        // the background and outlives whichever thread created it.
        let socket = {
            let wake_ui = wake_ui.clone();
            Socket::builder(&url)
                .options(Options::default())
                .on_wake(move || {
                    let _ = wake_ui.try_send(()); // full: a wake-up is already pending
                })
                .connect()?
        };
        let reader = socket.clone();
        let service = std::thread::spawn(move || {
            let forward = |news: ToUi| {
                let _ = to_ui.send(news);
                let _ = wake_ui.try_send(());
            };
            while let Some(event) = reader.recv() {
                match event {
                    Event::Open { .. } => forward(ToUi::Status("connected".into())),
                    Event::Message(Message::Text(text)) => forward(ToUi::Chat(text.into())),
                    Event::Message(Message::Binary(bytes)) => {
                        forward(ToUi::Chat(format!("<{} bytes>", bytes.len())))
                    }
                    Event::Reconnecting { attempt, delay, .. } => forward(ToUi::Status(format!(
                        "reconnecting (attempt {attempt} in {delay:?})"
                    ))),
                    Event::Error(error) => forward(ToUi::Status(format!("error: {error}"))),
                    Event::Close(close) => {
                        forward(ToUi::Closed {
                            code: close.code,
                            reason: close.reason,
                        });
                        break;
                    }
                    _ => {}
                }
            }
        });

        // The UI loop: sends through its own clone, wakes only when there is news.
        let sender = socket;
        let mut said = 0;
        const LINES: usize = 5;
        loop {
            // Bounded: a UI would block until the next wake-up; we give up after 10 s.
            if ui_woken.recv_timeout(Duration::from_secs(10)).is_err() {
                return Err("no news from the service within 10 s".into());
            }
            for news in from_service.try_iter() {
                match news {
                    ToUi::Status(status) => println!("[status] {status}"),
                    ToUi::Chat(text) => println!("[chat]   {text}"),
                    ToUi::Closed { code, reason } => {
                        println!("[status] closed ({code} {reason:?})");
                        service.join().map_err(|_| "service thread panicked")?;
                        return Ok(());
                    }
                }
            }
            // "User input": a few lines, then leave.
            if said < LINES {
                said += 1;
                sender.send(format!("line {said} from the UI thread"))?;
            } else if said == LINES {
                said += 1;
                sender.close(1000, "UI closed")?;
            }
        }
    }

    /// `unisock serve`'s echo endpoint in this process, on a runtime of its own.
    #[cfg(feature = "server")]
    fn local_server() -> Result<(String, tokio::runtime::Runtime), Box<dyn std::error::Error>> {
        use unisock::server::{Server, ServerConfig};
        let runtime = tokio::runtime::Runtime::new()?;
        let server = runtime.block_on(Server::bind(ServerConfig {
            addr: "127.0.0.1:0".parse()?,
            ..ServerConfig::default()
        }))?;
        let url = format!("ws://{}/echo", server.local_addr());
        runtime.spawn(server.run(std::future::pending::<()>()));
        Ok((url, runtime))
    }

    #[cfg(not(feature = "server"))]
    fn local_server() -> Result<(String, tokio::runtime::Runtime), Box<dyn std::error::Error>> {
        Err(
            "no URL given: pass one, or build with --features server to start a local server"
                .into(),
        )
    }
}
