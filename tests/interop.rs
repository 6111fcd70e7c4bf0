//! Interoperability matrix, all over 127.0.0.1, every wait bounded:
//!
//! | client \ server      | Python `websockets` | Node `ws` | `unisock serve` |
//! |----------------------|---------------------|-----------|-----------------|
//! | unisock (native)     | yes                 | yes       | yes             |
//! | Python `websockets`  |                     |           | yes             |
//! | Node `ws`            |                     |           | yes             |
//!
//! With each pairing: messages both ways, subprotocol negotiation (a known one offered, none
//! offered, only unknown ones offered) and close codes and reasons in both directions
//! (client-initiated and server-initiated). `unisock serve` runs in this process
//! (`unisock::server::Server`); the Python and Node peers are child processes:
//! tests/peers/echo_server.{py,mjs} as servers, tests/peers/client.{py,mjs} as clients, driven
//! line by line over stdin/stdout (protocol in tests/peers/README.md).
//!
//! Run with `cargo test --features server --test interop` after scripts/install.sh (which
//! creates .venv and tests/peers/node_modules).
#![cfg(all(feature = "server", not(target_arch = "wasm32")))]

mod common;

use std::io::{BufRead, BufReader, Write};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc;
use std::thread::JoinHandle;

use common::{next_event, next_non_message, Peer, STEP};
use futures::SinkExt;
use unisock::server::{Server, ServerConfig};
use unisock::{CloseEvent, Error, Event, Message, Options};

// ---------------------------------------------------------------------------------------------
// `unisock serve`, in this process, on its own runtime thread (so that blocking tests can use
// it as well as async ones).

/// The largest message the test server accepts: small, so that 1009 is cheap to provoke.
const SERVER_MAX_MESSAGE: usize = 1024;

struct Serve {
    addr: SocketAddr,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<JoinHandle<std::io::Result<()>>>,
}

impl Serve {
    fn start() -> Serve {
        let config = ServerConfig {
            addr: "127.0.0.1:0".parse().unwrap(),
            root: PathBuf::from("/nonexistent-unisock-test-root"),
            max_message_size: SERVER_MAX_MESSAGE,
            shutdown_timeout: std::time::Duration::from_secs(3),
            ..ServerConfig::default()
        };
        let (ready_tx, ready_rx) = mpsc::channel();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(1)
                .enable_all()
                .build()?;
            runtime.block_on(async move {
                let server = Server::bind(config).await?;
                let _ = ready_tx.send(server.local_addr());
                server
                    .run(async move {
                        let _ = stopped.await;
                    })
                    .await
            })
        });
        let addr = ready_rx
            .recv_timeout(STEP)
            .expect("unisock serve did not start in time");
        Serve {
            addr,
            stop: Some(stop),
            thread: Some(thread),
        }
    }

    fn url(&self, path: &str) -> String {
        format!("ws://{}{path}", self.addr)
    }

    /// Starts the graceful shutdown (every client gets 1001) without waiting for it.
    fn begin_shutdown(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }

    /// Waits (bounded) for the server to have stopped.
    fn join(mut self) {
        self.begin_shutdown();
        let thread = self.thread.take().expect("joined once");
        let deadline = std::time::Instant::now() + STEP;
        while !thread.is_finished() {
            assert!(
                std::time::Instant::now() < deadline,
                "unisock serve did not stop in time"
            );
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        thread
            .join()
            .expect("no panic")
            .expect("the server ran without error");
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        // The thread ends with the shutdown; it is not waited for here (a failing test must
        // not hang on it).
        self.begin_shutdown();
    }
}

// ---------------------------------------------------------------------------------------------
// Scripted Python / Node clients.

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// A client peer process, driven one command a line (tests/peers/client.{py,mjs}).
struct ScriptClient {
    name: &'static str,
    child: Child,
    stdin: ChildStdin,
    lines: mpsc::Receiver<String>,
}

impl ScriptClient {
    fn python() -> ScriptClient {
        let python = root().join(".venv/bin/python");
        assert!(
            python.exists(),
            "{} is missing: run scripts/install.sh",
            python.display()
        );
        Self::spawn("python websockets", &python, "tests/peers/client.py")
    }

    fn node() -> ScriptClient {
        assert!(
            root().join("tests/peers/node_modules/ws").exists(),
            "tests/peers/node_modules/ws is missing: run scripts/install.sh"
        );
        Self::spawn("node ws", Path::new("node"), "tests/peers/client.mjs")
    }

    fn spawn(name: &'static str, program: &Path, script: &str) -> ScriptClient {
        let mut child = Command::new(program)
            .arg(script)
            .current_dir(root())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap_or_else(|e| panic!("start {name}: {e}"));
        let stdin = child.stdin.take().expect("piped stdin");
        let stdout = child.stdout.take().expect("piped stdout");
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        ScriptClient {
            name,
            child,
            stdin,
            lines,
        }
    }

    /// Sends one command and returns the answer line (failing the test after STEP).
    fn call(&mut self, command: &str) -> String {
        writeln!(self.stdin, "{command}")
            .and_then(|()| self.stdin.flush())
            .unwrap_or_else(|e| panic!("{}: write {command:?}: {e}", self.name));
        self.lines
            .recv_timeout(STEP)
            .unwrap_or_else(|_| panic!("{}: no answer to {command:?} within {STEP:?}", self.name))
    }

    fn expect(&mut self, command: &str, answer: &str) {
        assert_eq!(self.call(command), answer, "{}: {command}", self.name);
    }
}

impl Drop for ScriptClient {
    fn drop(&mut self) {
        let _ = writeln!(self.stdin, "quit");
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

// ---------------------------------------------------------------------------------------------
// The unisock client against each server.

/// A server for the unisock client: a peer process or `unisock serve`.
enum Target {
    Peer(Peer),
    Serve(Serve),
}

impl Target {
    fn name(&self) -> &'static str {
        match self {
            Target::Peer(peer) => peer.name,
            Target::Serve(_) => "unisock serve",
        }
    }

    fn url(&self, path: &str) -> String {
        match self {
            Target::Peer(peer) => format!("{}{path}", peer.base_url),
            Target::Serve(serve) => serve.url(path),
        }
    }
}

async fn open(url: &str, options: Options) -> (unisock::Sender, unisock::Receiver, String) {
    let (tx, mut rx) = tokio::time::timeout(STEP, unisock::connect(url, options))
        .await
        .expect("connect within the time limit")
        .unwrap_or_else(|e| panic!("connect to {url}: {e}"));
    let Event::Open { protocol } = next_event(&mut rx).await else {
        panic!("expected Open first");
    };
    (tx, rx, protocol)
}

async fn unisock_client_subprotocols(target: Target) {
    let name = target.name();
    let url = target.url("/echo");
    // All three servers know `unisock.test` and `chat`, and pick the first offered one they
    // know.
    let offered = Options::default()
        .protocol("nope")
        .protocol("unisock.test")
        .protocol("chat");
    let (tx, _rx, protocol) = open(&url, offered).await;
    assert_eq!(protocol, "unisock.test", "{name}");
    assert_eq!(tx.protocol(), "unisock.test", "{name}");

    let (_tx, _rx, protocol) = open(&url, Options::default()).await;
    assert_eq!(protocol, "", "{name}: none offered, none selected");

    // Only unknown ones offered: every server accepts without a subprotocol, and the native
    // client (tungstenite) refuses such an answer, as RFC 6455 allows.
    let unknown = Options::default().protocol("nope").without_reconnect();
    match tokio::time::timeout(STEP, unisock::connect(&url, unknown)).await {
        Ok(Err(Error::Handshake { reason, .. })) => {
            assert!(
                reason.to_lowercase().contains("subprotocol"),
                "{name}: {reason}"
            )
        }
        other => panic!("{name}: expected a Handshake error, got {other:?}"),
    }
}

async fn unisock_client_closes(target: Target) {
    let name = target.name();
    for (code, reason) in [
        (4001, "bye ✓"),
        (1000, ""),
        (3000, "x".repeat(123).as_str()),
    ] {
        let (mut tx, mut rx, _) = open(&target.url("/echo"), Options::default()).await;
        tx.send(Message::text("before close")).await.unwrap();
        assert_eq!(
            next_event(&mut rx).await,
            Event::Message(Message::text("before close"))
        );
        tx.close(code, reason).expect("close");
        // Every server answers with the code and reason it received.
        assert_eq!(
            next_non_message(&mut rx).await,
            Event::Close(CloseEvent::new(code, reason, true)),
            "{name}: answer to close {code}"
        );
    }
}

/// Server-initiated closes the peer echo servers make on request (`!close CODE REASON`).
async fn peer_closes(peer: Peer) {
    for (code, reason) in [(4002, "server says bye ✓"), (1000, ""), (1011, "oops")] {
        let url = format!("{}/echo", peer.base_url);
        let (mut tx, mut rx, _) = open(&url, Options::default().without_reconnect()).await;
        tx.send(Message::text(format!("!close {code} {reason}")))
            .await
            .unwrap();
        assert_eq!(
            next_non_message(&mut rx).await,
            Event::Close(CloseEvent::new(code, reason, true)),
            "{}",
            peer.name
        );
    }
}

#[tokio::test]
async fn unisock_client_with_python_subprotocols() {
    unisock_client_subprotocols(Target::Peer(common::python_peer())).await;
}

#[tokio::test]
async fn unisock_client_with_node_subprotocols() {
    unisock_client_subprotocols(Target::Peer(common::node_peer())).await;
}

#[tokio::test]
async fn unisock_client_with_unisock_serve_subprotocols() {
    unisock_client_subprotocols(Target::Serve(Serve::start())).await;
}

#[tokio::test]
async fn unisock_client_with_python_close_codes_both_ways() {
    unisock_client_closes(Target::Peer(common::python_peer())).await;
    peer_closes(common::python_peer()).await;
}

#[tokio::test]
async fn unisock_client_with_node_close_codes_both_ways() {
    unisock_client_closes(Target::Peer(common::node_peer())).await;
    peer_closes(common::node_peer()).await;
}

#[tokio::test]
async fn unisock_client_with_unisock_serve_close_codes_both_ways() {
    unisock_client_closes(Target::Serve(Serve::start())).await;

    // Server-initiated: 1009 for a message over the server's limit...
    let mut serve = Serve::start();
    let options = Options::default().without_reconnect();
    let (mut tx, mut rx, _) = open(&serve.url("/echo"), options.clone()).await;
    tx.send(Message::binary(vec![7u8; SERVER_MAX_MESSAGE + 1]))
        .await
        .unwrap();
    match next_non_message(&mut rx).await {
        Event::Close(close) => {
            assert_eq!(
                (close.code, close.reason.as_str()),
                (1009, "message too big")
            )
        }
        other => panic!("expected Close(1009), got {other:?}"),
    }
    // ... and 1001 at shutdown.
    let (_tx, mut rx, _) = open(&serve.url("/echo"), options).await;
    serve.begin_shutdown();
    assert_eq!(
        next_non_message(&mut rx).await,
        Event::Close(CloseEvent::new(1001, "server shutting down", true))
    );
    tokio::task::spawn_blocking(move || serve.join())
        .await
        .unwrap();
}

// ---------------------------------------------------------------------------------------------
// Python and Node clients against `unisock serve`.

fn script_echo(mut client: ScriptClient) {
    let serve = Serve::start();
    client.expect(&format!("connect {}", serve.url("/echo")), "open -");
    client.expect("send hello ✓ with spaces", "sent");
    client.expect("recv", "text hello ✓ with spaces");
    client.expect("sendbin -", "sent");
    client.expect("recv", "binary -");
    client.expect("sendbin 00ff10", "sent");
    client.expect("recv", "binary 00ff10");
    client.expect("send ", "sent");
    client.expect("recv", "text ");
    client.expect("close 1000", "closed 1000 ");
}

fn script_subprotocols(new_client: fn() -> ScriptClient, strict_unknown: bool) {
    let serve = Serve::start();
    let url = serve.url("/echo");
    let mut client = new_client();
    client.expect(
        &format!("connect {url} nope,unisock.test,chat"),
        "open unisock.test",
    );
    client.expect(&format!("connect {url} chat"), "open chat");
    client.expect(&format!("connect {url}"), "open -");
    let answer = client.call(&format!("connect {url} nope"));
    if strict_unknown {
        // `ws` refuses a handshake without one of the subprotocols it offered.
        assert_eq!(
            answer, "error Server sent no subprotocol",
            "{}",
            client.name
        );
    } else {
        // `websockets` accepts it, with no subprotocol.
        assert_eq!(answer, "open -", "{}", client.name);
    }
}

fn script_closes(new_client: fn() -> ScriptClient) {
    let mut serve = Serve::start();
    let url = serve.url("/echo");
    // Client-initiated: the server answers with the code and reason it received.
    for (code, reason) in [(4001, "bye ✓"), (1000, ""), (3999, "a b c")] {
        let mut client = new_client();
        client.expect(&format!("connect {url}"), "open -");
        client.expect(
            &format!("close {code} {reason}"),
            &format!("closed {code} {reason}"),
        );
    }
    // Server-initiated: 1009 for an oversized message, 1001 at shutdown.
    let mut client = new_client();
    client.expect(&format!("connect {url}"), "open -");
    client.expect(&format!("sendsize {}", SERVER_MAX_MESSAGE + 1), "sent");
    client.expect("recv", "close 1009 message too big");

    let mut client = new_client();
    client.expect(&format!("connect {url}"), "open -");
    serve.begin_shutdown();
    client.expect("recv", "close 1001 server shutting down");
    serve.join();
}

#[test]
fn python_client_with_unisock_serve_echo() {
    script_echo(ScriptClient::python());
}

#[test]
fn node_client_with_unisock_serve_echo() {
    script_echo(ScriptClient::node());
}

#[test]
fn python_client_with_unisock_serve_subprotocols() {
    script_subprotocols(ScriptClient::python, false);
}

#[test]
fn node_client_with_unisock_serve_subprotocols() {
    script_subprotocols(ScriptClient::node, true);
}

#[test]
fn python_client_with_unisock_serve_close_codes_both_ways() {
    script_closes(ScriptClient::python);
}

#[test]
fn node_client_with_unisock_serve_close_codes_both_ways() {
    script_closes(ScriptClient::node);
}

/// One room, three kinds of client: Python, Node and unisock. Each one's message reaches the
/// two others and not itself; a second unisock client with `notify_self` gets its own too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_node_and_unisock_clients_share_a_room() {
    let serve = Serve::start();
    let url = serve.url("/rooms/interop");
    let (mut tx, mut rx, _) = open(&url, Options::default()).await;
    let (python_url, node_url) = (url.clone(), url.clone());
    let (mut python, mut node) = tokio::task::spawn_blocking(move || {
        let (mut python, mut node) = (ScriptClient::python(), ScriptClient::node());
        python.expect(&format!("connect {python_url}"), "open -");
        node.expect(&format!("connect {node_url}"), "open -");
        python.expect("send from python ✓", "sent");
        node.expect("recv", "text from python ✓");
        node.expect("sendbin 0102", "sent");
        python.expect("recv", "binary 0102");
        (python, node)
    })
    .await
    .unwrap();
    assert_eq!(
        next_event(&mut rx).await,
        Event::Message(Message::text("from python ✓"))
    );
    assert_eq!(
        next_event(&mut rx).await,
        Event::Message(Message::binary(vec![1, 2]))
    );

    let (mut tx_self, mut rx_self, _) =
        open(&format!("{url}?notify_self=true"), Options::default()).await;
    tx.send(Message::text("from unisock")).await.unwrap();
    assert_eq!(
        next_event(&mut rx_self).await,
        Event::Message(Message::text("from unisock"))
    );
    tx_self.send(Message::text("to all")).await.unwrap();
    assert_eq!(
        next_event(&mut rx_self).await,
        Event::Message(Message::text("to all")),
        "notify_self: its own message comes back"
    );
    assert_eq!(
        next_event(&mut rx).await,
        Event::Message(Message::text("to all"))
    );
    tokio::task::spawn_blocking(move || {
        for client in [&mut python, &mut node] {
            client.expect("recv", "text from unisock");
            client.expect("recv", "text to all");
            client.expect("close 4000 done", "closed 4000 done");
        }
    })
    .await
    .unwrap();
    // The unisock sender never got its own "from unisock" back: the next thing is the close.
    tx.close(1000, "").unwrap();
    assert_eq!(
        next_non_message_strict(&mut rx).await,
        Event::Close(CloseEvent::new(1000, "", true))
    );
}

/// The next event, which must not be a message.
async fn next_non_message_strict(rx: &mut unisock::Receiver) -> Event {
    let event = next_event(rx).await;
    assert!(
        !matches!(event, Event::Message(_)),
        "unexpected message {event:?}"
    );
    event
}
