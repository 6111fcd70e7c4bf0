//! Shared helpers for the native integration tests: the three echo peers (our tokio-tungstenite
//! server in-process, Python `websockets` and Node `ws` as child processes), all on 127.0.0.1.

#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use futures::StreamExt;
use unisock::{Event, Heartbeat, Message, Options, Receiver};

#[path = "../support/echo_server.rs"]
pub mod echo_server;
#[path = "../support/fault_proxy.rs"]
pub mod fault_proxy;

/// Upper bound for anything a test waits for: a failing test ends, it never hangs.
pub const STEP: Duration = Duration::from_secs(20);

/// A running echo peer; child processes are killed on drop.
pub struct Peer {
    pub name: &'static str,
    pub base_url: String,
    child: Option<Child>,
}

impl Drop for Peer {
    fn drop(&mut self) {
        if let Some(child) = &mut self.child {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Our tokio-tungstenite echo server, in this process (needs a tokio runtime).
pub async fn rust_peer() -> Peer {
    let addr = echo_server::spawn(0).await.expect("bind the echo server");
    Peer {
        name: "tokio-tungstenite",
        base_url: format!("ws://{addr}"),
        child: None,
    }
}

/// The Python `websockets` echo server (tests/peers/echo_server.py in .venv).
pub fn python_peer() -> Peer {
    let python = root().join(".venv/bin/python");
    assert!(
        python.exists(),
        "{} is missing: run scripts/install.sh",
        python.display()
    );
    spawn_child(
        "python websockets",
        &python,
        &["tests/peers/echo_server.py"],
    )
}

/// The Node `ws` echo server (tests/peers/echo_server.mjs).
pub fn node_peer() -> Peer {
    assert!(
        root().join("tests/peers/node_modules/ws").exists(),
        "tests/peers/node_modules/ws is missing: run scripts/install.sh"
    );
    spawn_child(
        "node ws",
        Path::new("node"),
        &["tests/peers/echo_server.mjs"],
    )
}

fn spawn_child(name: &'static str, program: &Path, args: &[&str]) -> Peer {
    let mut child = Command::new(program)
        .args(args)
        .current_dir(root())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap_or_else(|e| panic!("start {name}: {e}"));
    let stdout = child.stdout.take().expect("piped stdout");
    // Read the LISTENING line on a thread so that a peer that never answers fails the test
    // after STEP instead of hanging it.
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut line = String::new();
        let _ = BufReader::new(stdout).read_line(&mut line);
        let _ = tx.send(line);
    });
    let mut peer = Peer {
        name,
        base_url: String::new(),
        child: Some(child),
    };
    let line = rx
        .recv_timeout(STEP)
        .unwrap_or_else(|_| panic!("{name} did not print LISTENING within {STEP:?}"));
    let port = line
        .trim()
        .strip_prefix("LISTENING ")
        .unwrap_or_else(|| panic!("{name} printed {line:?} instead of LISTENING <port>"));
    peer.base_url = format!("ws://127.0.0.1:{port}");
    peer
}

/// The next event, failing the test after STEP.
pub async fn next_event(receiver: &mut Receiver) -> Event {
    tokio::time::timeout(STEP, receiver.next())
        .await
        .expect("no event within the time limit")
        .expect("the event stream ended early")
}

/// The next event that is not a message (skipping at most `limit` messages).
pub async fn next_non_message(receiver: &mut Receiver) -> Event {
    loop {
        match next_event(receiver).await {
            Event::Message(_) => continue,
            other => return other,
        }
    }
}

/// Default options with a heartbeat whose whole budget (interval + timeout) is 120 ms, for
/// tests whose consumer stalls longer than that.
pub fn tight_heartbeat() -> Options {
    Options::default().heartbeat(Some(Heartbeat {
        interval: Duration::from_millis(40),
        timeout: Duration::from_millis(80),
        app_ping: None,
    }))
}

/// `count` binary messages, mostly of 256 KiB and more (larger than a native read chunk),
/// every third one 16 B, each with its own content.
pub fn large_and_small_messages(count: u32) -> Vec<Message> {
    (0..count)
        .map(|i| {
            let size = if i % 3 == 2 {
                16
            } else {
                (256 << 10) + i * 4099
            };
            Message::binary((0..size).map(|b| (b ^ i) as u8).collect::<Vec<u8>>())
        })
        .collect()
}
