//! `unisock connect`: a wscat / websocat-like client on top of [`unisock::connect`].
//!
//! Every line read from stdin is sent as one message (text, or binary with `--binary`);
//! every message received is printed to stdout, one per line (text as is, binary as hex or
//! base64); what happens to the connection (open, reconnecting, errors, close) goes to stderr,
//! so that stdout stays a clean stream of messages for the next program in a pipe. With
//! `--json`, stdout carries one JSON object per line for every event instead.
//!
//! When stdin ends, the connection is closed with 1000 after the lines already sent, and the
//! program exits once the server has answered the close (so the replies to those lines are
//! printed first). The exit code tells how the connection ended (see [`Ended`]).

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use clap::{Args, ValueEnum};
use futures::{SinkExt, StreamExt};
use serde_json::json;
use tokio::io::{AsyncBufReadExt, BufReader};
use unisock::{CloseEvent, Error, Event, Message, Options, Receiver, Sender};

/// Arguments of `unisock connect`.
#[derive(Debug, Args)]
pub struct ConnectArgs {
    /// The server, ws://… or wss://…
    url: String,
    /// Extra handshake header `NAME:VALUE`, e.g. `Authorization: Bearer …` (repeatable).
    /// Never logged.
    #[arg(long = "header", short = 'H', value_name = "NAME:VALUE", value_parser = parse_header)]
    headers: Vec<(String, String)>,
    /// Subprotocol to offer (repeatable, in order of preference).
    #[arg(long = "protocol", short = 'p', value_name = "PROTOCOL")]
    protocols: Vec<String>,
    /// Reconnect with backoff when the connection drops; lines typed meanwhile are queued.
    #[arg(long)]
    reconnect: bool,
    /// Send each stdin line as a binary message (its UTF-8 bytes) instead of text.
    #[arg(long)]
    binary: bool,
    /// How to print received binary messages.
    #[arg(long, value_enum, default_value_t = BinaryFormat::Hex)]
    binary_format: BinaryFormat,
    /// Print every event as one JSON object per line on stdout (type, data, code, …).
    #[arg(long)]
    json: bool,
    /// Seconds the connect (TCP + TLS + handshake) may take.
    #[arg(long, value_name = "SECONDS", default_value_t = 10.0)]
    connect_timeout: f64,
    /// Extra CA certificate(s) to trust for wss://, a PEM file.
    #[arg(long, value_name = "PEM_FILE")]
    ca: Option<PathBuf>,
}

/// How received binary messages are printed.
#[derive(Debug, Clone, Copy, ValueEnum)]
enum BinaryFormat {
    /// Lower-case hexadecimal.
    Hex,
    /// Standard base64 with padding.
    Base64,
}

/// How the connection ended, as the process exit code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Ended {
    /// 0: closed cleanly with 1000 (normal) or 1001 (going away).
    Normally = 0,
    /// 1: no connection: invalid URL, refused, timed out, TLS or handshake failure.
    NotConnected = 1,
    /// 3: closed with another code, or dropped without a closing handshake.
    Abnormally = 3,
    /// 130: interrupted (Ctrl-C); the connection was closed with 1000 first.
    Interrupted = 130,
}

fn parse_header(text: &str) -> Result<(String, String), String> {
    let (name, value) = text
        .split_once(':')
        .ok_or_else(|| "expected NAME:VALUE".to_string())?;
    let name = name.trim();
    if name.is_empty() {
        return Err("the header name is empty".into());
    }
    Ok((name.to_string(), value.trim().to_string()))
}

impl ConnectArgs {
    fn options(&self) -> Result<Options, String> {
        let mut options = Options {
            protocols: self.protocols.clone(),
            headers: self.headers.clone(),
            ..Options::default()
        };
        if !(self.connect_timeout.is_finite() && self.connect_timeout > 0.0) {
            return Err(format!(
                "--connect-timeout must be a positive number of seconds, got {}",
                self.connect_timeout
            ));
        }
        options.connect_timeout = Some(Duration::from_secs_f64(self.connect_timeout));
        if let Some(path) = &self.ca {
            let pem = std::fs::read_to_string(path)
                .map_err(|error| format!("cannot read --ca {}: {error}", path.display()))?;
            options = options.extra_ca_pem(pem);
        }
        if !self.reconnect {
            options = options.without_reconnect();
        }
        Ok(options)
    }
}

/// Runs `unisock connect` to the end; the exit code says how it ended.
pub async fn run(args: ConnectArgs) -> ExitCode {
    let options = match args.options() {
        Ok(options) => options,
        Err(message) => {
            eprintln!("unisock connect: {message}");
            return ExitCode::from(2);
        }
    };
    let printer = Arc::new(Printer {
        json: args.json,
        binary_format: args.binary_format,
    });
    let (sender, receiver) = match unisock::connect(&args.url, options).await {
        Ok(halves) => halves,
        Err(error) => {
            printer.connect_failed(&error);
            return ExitCode::from(Ended::NotConnected as u8);
        }
    };
    let ended = pump(sender, receiver, args.binary, printer).await;
    ExitCode::from(ended as u8)
}

/// Prints events until the connection closes for good, while [`send_stdin`] feeds it.
async fn pump(
    sender: Sender,
    mut receiver: Receiver,
    binary: bool,
    printer: Arc<Printer>,
) -> Ended {
    let interrupted = Arc::new(AtomicBool::new(false));
    // Sending runs apart from receiving: a send waiting for the outgoing buffer to drain
    // must never stop us from reading, or an echo server and we would wait on each other.
    let feeder = tokio::spawn(send_stdin(
        sender,
        binary,
        printer.clone(),
        interrupted.clone(),
    ));
    let ended = loop {
        match receiver.next().await {
            Some(Event::Close(close)) => {
                printer.event(&Event::Close(close.clone()));
                break ending(&close);
            }
            Some(event) => printer.event(&event),
            // The stream ends only after its Close; be safe if it ever does not.
            None => break Ended::Abnormally,
        }
    };
    feeder.abort();
    if interrupted.load(Ordering::SeqCst) {
        Ended::Interrupted
    } else {
        ended
    }
}

/// Sends each stdin line; at its end (or on Ctrl-C) closes with 1000 after what was sent.
async fn send_stdin(
    mut sender: Sender,
    binary: bool,
    printer: Arc<Printer>,
    interrupted: Arc<AtomicBool>,
) {
    let mut lines = BufReader::new(tokio::io::stdin()).lines();
    let ctrl_c = tokio::signal::ctrl_c();
    tokio::pin!(ctrl_c);
    loop {
        tokio::select! {
            line = lines.next_line() => match line {
                Ok(Some(line)) => {
                    let message = if binary {
                        Message::binary(line.into_bytes())
                    } else {
                        Message::text(line)
                    };
                    // Waits while the outgoing buffer is above the high-water mark, so a
                    // large piped file does not fill memory.
                    if let Err(error) = sender.send(message).await {
                        printer.error(&error);
                    }
                }
                Ok(None) => break,
                Err(error) => {
                    eprintln!("unisock connect: cannot read stdin ({error}); closing");
                    break;
                }
            },
            _ = &mut ctrl_c => {
                interrupted.store(true, Ordering::SeqCst);
                break;
            }
        }
    }
    if let Err(error) = sender.close(1000, "") {
        printer.error(&error);
    }
    // Keep the sender alive until the receiving side has seen the close and aborts us:
    // dropping both halves is itself a close, which would race the one above.
    std::future::pending::<()>().await;
}

fn ending(close: &CloseEvent) -> Ended {
    if close.was_clean && matches!(close.code, 1000 | 1001) {
        Ended::Normally
    } else {
        Ended::Abnormally
    }
}

/// Writes events: messages to stdout, the rest to stderr (or everything as JSON to stdout).
struct Printer {
    json: bool,
    binary_format: BinaryFormat,
}

impl Printer {
    fn binary(&self, bytes: &[u8]) -> String {
        match self.binary_format {
            BinaryFormat::Hex => bytes.iter().map(|b| format!("{b:02x}")).collect(),
            BinaryFormat::Base64 => base64::engine::general_purpose::STANDARD.encode(bytes),
        }
    }

    fn connect_failed(&self, error: &Error) {
        if self.json {
            self.stdout(json!({"type": "error", "error": error.to_string(), "connected": false}));
        }
        // Error messages show the URL without userinfo or query (unisock redacts them).
        eprintln!("unisock connect: cannot connect: {error}");
    }

    fn error(&self, error: &Error) {
        if self.json {
            self.stdout(json!({"type": "error", "error": error.to_string()}));
        } else {
            eprintln!("error: {error}");
        }
    }

    fn event(&self, event: &Event) {
        if self.json {
            self.stdout(self.event_json(event));
            return;
        }
        match event {
            Event::Message(Message::Text(text)) => self.stdout_line(text),
            Event::Message(Message::Binary(bytes)) => self.stdout_line(&self.binary(bytes)),
            Event::Open { protocol } if protocol.is_empty() => eprintln!("open"),
            Event::Open { protocol } => eprintln!("open (subprotocol {protocol})"),
            Event::Error(error) => eprintln!("error: {error}"),
            Event::Reconnecting {
                attempt,
                delay,
                close,
            } => eprintln!(
                "connection lost ({}); reconnecting, attempt {attempt} in {:.1} s",
                describe_close(close),
                delay.as_secs_f64()
            ),
            Event::Close(close) => {
                eprintln!("closed: {}", describe_close(close));
                if !close.unsent.is_empty() {
                    eprintln!("{} message(s) were never sent", close.unsent.len());
                }
            }
            other => eprintln!("{other:?}"),
        }
    }

    fn event_json(&self, event: &Event) -> serde_json::Value {
        match event {
            Event::Open { protocol } => json!({"type": "open", "protocol": protocol}),
            Event::Message(Message::Text(text)) => {
                json!({"type": "message", "text": text.as_str()})
            }
            Event::Message(Message::Binary(bytes)) => json!({
                "type": "message",
                "binary": self.binary(bytes),
                "encoding": match self.binary_format { BinaryFormat::Hex => "hex", BinaryFormat::Base64 => "base64" },
            }),
            Event::Error(error) => json!({"type": "error", "error": error.to_string()}),
            Event::Reconnecting {
                attempt,
                delay,
                close,
            } => json!({
                "type": "reconnecting",
                "attempt": attempt,
                "delay_ms": delay.as_millis() as u64,
                "code": close.code,
                "reason": close.reason,
            }),
            Event::Close(close) => json!({
                "type": "close",
                "code": close.code,
                "reason": close.reason,
                "was_clean": close.was_clean,
                "unsent": close.unsent.len(),
            }),
            other => json!({"type": "other", "debug": format!("{other:?}")}),
        }
    }

    fn stdout(&self, value: serde_json::Value) {
        self.stdout_line(&value.to_string());
    }

    fn stdout_line(&self, line: &str) {
        let mut stdout = std::io::stdout().lock();
        // A closed stdout (e.g. `| head`) is not worth a panic; the close ends the run.
        let _ = writeln!(stdout, "{line}").and_then(|()| stdout.flush());
    }
}

fn describe_close(close: &CloseEvent) -> String {
    let clean = if close.was_clean {
        "clean"
    } else {
        "not clean"
    };
    if close.reason.is_empty() {
        format!("code {}, {clean}", close.code)
    } else {
        format!("code {} {:?}, {clean}", close.code, close.reason)
    }
}
