//! `unisock connect` as a user runs it: the real binary, stdin piped in, stdout / stderr and
//! the exit code read back, against echo servers on 127.0.0.1. Every run is bounded in time.
//!
//! Run with `cargo test --features server --test cli_connect`.
#![cfg(all(feature = "server", not(target_arch = "wasm32")))]

#[path = "support/echo_server.rs"]
mod echo_server;
#[path = "support/fault_proxy.rs"]
mod fault_proxy;

use std::io::{Read, Write};
use std::net::SocketAddr;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use futures::{SinkExt, StreamExt};
use tokio::net::TcpListener;
use tokio_tungstenite::tungstenite::handshake::server::{Request, Response};
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::Message;

/// Longest a single `unisock connect` run may take before the test fails.
const RUN_LIMIT: Duration = Duration::from_secs(20);

struct Run {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

/// Runs `unisock connect ARGS…` with `stdin` piped in and waits (bounded) for it to exit.
fn connect(args: &[&str], stdin: &str) -> Run {
    let mut child = Command::new(env!("CARGO_BIN_EXE_unisock"))
        .arg("connect")
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start unisock connect");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap(); // dropped here: stdin ends
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if started.elapsed() > RUN_LIMIT {
            let _ = child.kill();
            let _ = child.wait();
            panic!("unisock connect {args:?} did not exit within {RUN_LIMIT:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let mut stdout = String::new();
    let mut stderr = String::new();
    child.stdout.unwrap().read_to_string(&mut stdout).unwrap();
    child.stderr.unwrap().read_to_string(&mut stderr).unwrap();
    Run {
        code: status.code(),
        stdout,
        stderr,
    }
}

/// The echo server on a runtime of its own thread, so the test body can block on the child.
fn echo() -> (tokio::runtime::Runtime, SocketAddr) {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let addr = runtime.block_on(echo_server::spawn(0)).unwrap();
    (runtime, addr)
}

#[test]
fn piped_lines_come_back_on_stdout_in_order_and_exit_0() {
    let (_rt, addr) = echo();
    let run = connect(&[&format!("ws://{addr}/echo")], "a\nb\n");
    assert_eq!(run.stdout, "a\nb\n", "stderr: {}", run.stderr);
    assert_eq!(run.code, Some(0), "stderr: {}", run.stderr);
    assert!(run.stderr.contains("open"), "stderr: {}", run.stderr);
    assert!(
        run.stderr.contains("closed: code 1000, clean"),
        "stderr: {}",
        run.stderr
    );
}

#[test]
fn many_lines_arrive_complete_and_in_order() {
    let (_rt, addr) = echo();
    let input: String = (0..2000).map(|i| format!("line {i}\n")).collect();
    let run = connect(&[&format!("ws://{addr}/echo")], &input);
    assert_eq!(run.code, Some(0), "stderr: {}", run.stderr);
    assert_eq!(run.stdout, input);
}

#[test]
fn binary_messages_print_as_hex_or_base64() {
    let (_rt, addr) = echo();
    let url = format!("ws://{addr}/echo");
    let hex = connect(&["--binary", &url], "hi\n");
    assert_eq!(hex.stdout, "6869\n", "stderr: {}", hex.stderr);
    let b64 = connect(&["--binary", "--binary-format", "base64", &url], "hi\n");
    assert_eq!(b64.stdout, "aGk=\n", "stderr: {}", b64.stderr);
}

#[test]
fn json_mode_prints_every_event_as_one_object_per_line() {
    let (_rt, addr) = echo();
    let run = connect(
        &["--json", "--protocol", "chat", &format!("ws://{addr}/echo")],
        "x\n",
    );
    let lines: Vec<serde_json::Value> = run
        .stdout
        .lines()
        .map(|line| serde_json::from_str(line).expect("each line is JSON"))
        .collect();
    assert_eq!(lines.len(), 3, "stdout: {}", run.stdout);
    assert_eq!(lines[0]["type"], "open");
    assert_eq!(lines[0]["protocol"], "chat");
    assert_eq!(lines[1]["type"], "message");
    assert_eq!(lines[1]["text"], "x");
    assert_eq!(lines[2]["type"], "close");
    assert_eq!(lines[2]["code"], 1000);
    assert_eq!(lines[2]["was_clean"], true);
}

#[test]
fn headers_and_subprotocols_reach_the_server() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    // A server that answers each connection with what it saw of the handshake.
    let addr = runtime.block_on(async {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                tokio::spawn(async move {
                    let mut seen = String::new();
                    #[allow(clippy::result_large_err)] // the callback signature is tungstenite's
                    let callback = |request: &Request, mut response: Response| {
                        let header = |name: &str| {
                            request
                                .headers()
                                .get(name)
                                .and_then(|v| v.to_str().ok())
                                .unwrap_or("-")
                                .to_string()
                        };
                        seen = format!(
                            "x-api-key={} protocols={}",
                            header("x-api-key"),
                            header("sec-websocket-protocol")
                        );
                        response
                            .headers_mut()
                            .insert("sec-websocket-protocol", HeaderValue::from_static("v2"));
                        Ok(response)
                    };
                    let Ok(mut ws) = tokio_tungstenite::accept_hdr_async(stream, callback).await
                    else {
                        return;
                    };
                    let _ = ws.send(Message::text(seen)).await;
                    while let Some(Ok(_)) = ws.next().await {}
                });
            }
        });
        addr
    });
    let run = connect(
        &[
            "--header",
            "X-Api-Key: k123",
            "--protocol",
            "v1",
            "--protocol",
            "v2",
            &format!("ws://{addr}/"),
        ],
        "",
    );
    assert_eq!(
        run.stdout, "x-api-key=k123 protocols=v1, v2\n",
        "stderr: {}",
        run.stderr
    );
    assert!(
        run.stderr.contains("open (subprotocol v2)"),
        "stderr: {}",
        run.stderr
    );
    assert_eq!(run.code, Some(0));
    // Headers are secrets (tokens, cookies): never echoed to the terminal.
    assert!(!run.stderr.contains("k123"), "stderr: {}", run.stderr);
}

#[test]
fn refused_connect_exits_1_with_a_clear_message() {
    // Bind then drop: the port is free and nobody listens on it.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let run = connect(
        &[&format!("ws://user:secret@127.0.0.1:{port}/echo?token=t0k")],
        "",
    );
    assert_eq!(run.code, Some(1), "stderr: {}", run.stderr);
    assert!(run.stderr.contains("refused"), "stderr: {}", run.stderr);
    assert!(
        !run.stderr.contains("secret") && !run.stderr.contains("t0k"),
        "userinfo and query stay out of messages: {}",
        run.stderr
    );
    assert_eq!(run.stdout, "");
}

#[test]
fn rejected_handshake_exits_1_naming_the_status() {
    let (_rt, addr) = echo();
    let run = connect(&[&format!("ws://{addr}/status/403")], "");
    assert_eq!(run.code, Some(1), "stderr: {}", run.stderr);
    assert!(run.stderr.contains("403"), "stderr: {}", run.stderr);
}

#[test]
fn invalid_url_and_bad_arguments_exit_non_zero() {
    let run = connect(&["not a url"], "");
    assert_eq!(run.code, Some(1), "stderr: {}", run.stderr);
    assert!(run.stderr.contains("invalid"), "stderr: {}", run.stderr);
    let run = connect(&["--header", "no-colon", "ws://127.0.0.1:1/"], "");
    assert_eq!(run.code, Some(2), "stderr: {}", run.stderr);
    let run = connect(&["--connect-timeout", "-1", "ws://127.0.0.1:1/"], "");
    assert_eq!(run.code, Some(2), "stderr: {}", run.stderr);
}

#[test]
fn server_close_with_an_application_code_exits_3_and_reports_it() {
    let (_rt, addr) = echo();
    let run = connect(&[&format!("ws://{addr}/echo")], "!close 4001 go away\n");
    assert_eq!(run.code, Some(3), "stderr: {}", run.stderr);
    assert!(
        run.stderr.contains("code 4001 \"go away\""),
        "stderr: {}",
        run.stderr
    );
}

/// Lines of a child's pipe, read on a thread of their own so that waits can be bounded.
fn line_reader(pipe: impl Read + Send + 'static) -> std::sync::mpsc::Receiver<String> {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        use std::io::BufRead;
        for line in std::io::BufReader::new(pipe).lines() {
            let Ok(line) = line else { return };
            if tx.send(line).is_err() {
                return;
            }
        }
    });
    rx
}

/// Waits (bounded) for a line containing `needle`, skipping others.
fn wait_for(lines: &std::sync::mpsc::Receiver<String>, needle: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match lines.recv_timeout(left) {
            Ok(line) if line.contains(needle) => return line,
            Ok(_) => continue,
            Err(_) => panic!("no line containing {needle:?} within 10 s"),
        }
    }
}

#[test]
fn reconnect_flag_survives_a_dropped_connection() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let server = runtime.block_on(async {
        let config = unisock::server::ServerConfig {
            addr: "127.0.0.1:0".parse().unwrap(),
            ..Default::default()
        };
        unisock::server::Server::bind(config).await.unwrap()
    });
    let addr = server.local_addr();
    runtime.spawn(server.run(std::future::pending::<()>()));

    let mut child = Command::new(env!("CARGO_BIN_EXE_unisock"))
        .args(["connect", "--reconnect"])
        .arg(format!("ws://{addr}/echo?client_id=cli"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start unisock connect");
    struct Reap(std::process::Child);
    impl Drop for Reap {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let mut stdin = child.stdin.take().unwrap();
    let stdout = line_reader(child.stdout.take().unwrap());
    let stderr = line_reader(child.stderr.take().unwrap());
    let mut child = Reap(child);

    wait_for(&stderr, "open");
    writeln!(stdin, "one").unwrap();
    assert_eq!(wait_for(&stdout, "one"), "one");

    // The server drops the connection without a close frame (as a dead network would).
    let dropped = std::net::TcpStream::connect(addr).and_then(|mut http| {
        write!(
            http,
            "POST /drop?client_id=cli HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n"
        )?;
        let mut response = String::new();
        http.read_to_string(&mut response)?;
        Ok(response)
    });
    let response = dropped.unwrap();
    assert!(response.starts_with("HTTP/1.1 204"), "{response}");
    let notice = wait_for(&stderr, "reconnecting");
    assert!(notice.contains("code 1006"), "{notice}");
    wait_for(&stderr, "open");

    writeln!(stdin, "two").unwrap();
    assert_eq!(wait_for(&stdout, "two"), "two");
    drop(stdin);
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.0.try_wait().unwrap() {
            break status;
        }
        assert!(started.elapsed() < RUN_LIMIT, "no exit after stdin ended");
        std::thread::sleep(Duration::from_millis(20));
    };
    assert_eq!(status.code(), Some(0));
}
