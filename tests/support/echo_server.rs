//! The test echo server, on tokio-tungstenite: the Rust member of the three test peers. It
//! follows the contract in tests/peers/README.md (echo, `/status/<code>` rejections,
//! subprotocol selection, `!close <code> <reason>`), like the Python and Node peers.
//!
//! Used in-process by the native tests and as `cargo run --example echo_server` by the browser
//! tests. For the browser's fault-injection tests, which cannot start a proxy themselves, the
//! WebSocket path `/proxy` starts a [`FaultProxy`] in front of this server, answers
//! `PORT <port>`, then takes the commands `rst`, `fin`, `blackhole` and `refuse <ms>` (each
//! answered `ok`); the proxy lives as long as that control connection.
//!
//! The path `/stall` reads nothing for 1.5 s (so that the client's buffers fill up), then
//! reads and discards every message, answering `!count` with `count <messages> <bytes>`.
//!
//! Includers must also include `fault_proxy.rs` as a sibling module named `fault_proxy`.

#![allow(dead_code)]

use std::net::SocketAddr;
use std::time::Duration;

use futures::{SinkExt, StreamExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_tungstenite::tungstenite::handshake::server::{ErrorResponse, Request, Response};
use tokio_tungstenite::tungstenite::http::{HeaderValue, StatusCode};
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::{CloseFrame, WebSocketConfig};
use tokio_tungstenite::tungstenite::Message;

use super::fault_proxy::{Cut, FaultProxy};

/// Subprotocols the server accepts; it picks the first one the client offers.
pub const PROTOCOLS: [&str; 3] = ["chat", "superchat", "unisock.test"];

/// Binds 127.0.0.1:`port` (0 for any) and serves connections in the background.
pub async fn spawn(port: u16) -> std::io::Result<SocketAddr> {
    let listener = TcpListener::bind(("127.0.0.1", port)).await?;
    let addr = listener.local_addr()?;
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            tokio::spawn(serve(stream, addr));
        }
    });
    Ok(addr)
}

#[allow(clippy::result_large_err)] // the callback signature is tungstenite's
fn handshake(request: &Request, mut response: Response) -> Result<Response, ErrorResponse> {
    if let Some(code) = request.uri().path().strip_prefix("/status/") {
        let status = code
            .parse::<u16>()
            .ok()
            .and_then(|code| StatusCode::from_u16(code).ok())
            .unwrap_or(StatusCode::BAD_REQUEST);
        let mut rejection = ErrorResponse::new(Some(format!("rejected with {status}")));
        *rejection.status_mut() = status;
        return Err(rejection);
    }
    let offered = request
        .headers()
        .get_all("sec-websocket-protocol")
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .map(str::trim);
    let mut offered = offered;
    if let Some(chosen) = offered.find(|p| PROTOCOLS.contains(p)) {
        response.headers_mut().insert(
            "sec-websocket-protocol",
            HeaderValue::from_str(chosen).expect("a listed protocol is a valid header value"),
        );
    }
    Ok(response)
}

#[allow(clippy::result_large_err)] // the handshake callback's signature is tungstenite's
async fn serve(stream: TcpStream, own_addr: SocketAddr) {
    let _ = stream.set_nodelay(true);
    // `GET /hang`: accept the TCP connection but never answer the handshake (bounded), for
    // connect-timeout tests that cannot open a raw listener themselves (the browser's).
    let mut start = [0u8; 10];
    if let Ok(Ok(n)) = tokio::time::timeout(Duration::from_secs(5), stream.peek(&mut start)).await {
        if start[..n].starts_with(b"GET /hang") {
            tokio::time::sleep(Duration::from_secs(60)).await;
            return;
        }
    }
    let mut path = String::new();
    let callback = |request: &Request, response: Response| {
        path = request.uri().path().to_owned();
        handshake(request, response)
    };
    let config = WebSocketConfig::default().max_message_size(Some(64 << 20));
    let Ok(mut ws) =
        tokio_tungstenite::accept_hdr_async_with_config(stream, callback, Some(config)).await
    else {
        return;
    };
    if path == "/proxy" {
        return control_proxy(ws, own_addr).await;
    }
    #[cfg(feature = "server")]
    if path == "/session-proxy" {
        return control_session_proxy(ws).await;
    }
    if path == "/stall" {
        return stall_then_count(ws).await;
    }
    while let Some(Ok(message)) = ws.next().await {
        let reply = match message {
            // `!big <n>` (this server only): reply with n bytes, for receive-limit tests.
            Message::Text(text) if text.as_str().starts_with("!big ") => {
                let size = text.as_str()[5..].trim().parse::<usize>().unwrap_or(0);
                Message::binary(vec![b'x'; size.min(64 << 20)])
            }
            Message::Text(text) => match text.as_str().strip_prefix("!close ") {
                Some(command) => {
                    let (code, reason) = command.split_once(' ').unwrap_or((command, ""));
                    let frame = CloseFrame {
                        code: CloseCode::from(code.parse::<u16>().unwrap_or(1000)),
                        reason: reason.to_owned().into(),
                    };
                    let _ = ws.close(Some(frame)).await;
                    // Read until the client's answer ends the connection.
                    while let Some(Ok(_)) = ws.next().await {}
                    return;
                }
                None => Message::Text(text),
            },
            Message::Binary(bytes) => Message::Binary(bytes),
            // Pings are answered by tungstenite; a close is answered on the next read.
            _ => continue,
        };
        if ws.send(reply).await.is_err() {
            return;
        }
    }
}

/// The `/proxy` control connection: runs a fault proxy in front of this server.
async fn control_proxy(
    mut ws: tokio_tungstenite::WebSocketStream<TcpStream>,
    own_addr: SocketAddr,
) {
    let Ok(proxy) = FaultProxy::start(own_addr).await else {
        return;
    };
    let port = format!("PORT {}", proxy.addr().port());
    if ws.send(Message::text(port)).await.is_err() {
        return;
    }
    while let Some(Ok(Message::Text(command))) = ws.next().await {
        let command = command.as_str();
        let (name, arg) = command.split_once(' ').unwrap_or((command, ""));
        if !fault_command(&proxy, name, arg) {
            let _ = ws
                .send(Message::text(format!("unknown command {command:?}")))
                .await;
            continue;
        }
        if ws.send(Message::text("ok")).await.is_err() {
            return;
        }
    }
}

/// Runs the `/proxy` command `name` with its argument `arg` on `proxy`: `rst`, `fin`,
/// `blackhole` or `refuse <ms>`. False if `name` is none of them.
fn fault_command(proxy: &FaultProxy, name: &str, arg: &str) -> bool {
    match name {
        "rst" => proxy.cut(Cut::Rst),
        "fin" => proxy.cut(Cut::Fin),
        "blackhole" => proxy.blackhole(),
        "refuse" => proxy.refuse_for(Duration::from_millis(arg.parse().unwrap_or(0))),
        _ => return false,
    }
    true
}

/// `unisock serve` in this process on a free port of 127.0.0.1, until the task is aborted.
#[cfg(feature = "server")]
async fn start_unisock_serve(
    grace_ms: Option<u64>,
    buffer_messages: Option<usize>,
) -> Option<(SocketAddr, tokio::task::JoinHandle<std::io::Result<()>>)> {
    let defaults = unisock::server::ServerConfig::default();
    let config = unisock::server::ServerConfig {
        addr: "127.0.0.1:0".parse().ok()?,
        session_grace: grace_ms.map_or(defaults.session_grace, Duration::from_millis),
        session_buffer_messages: buffer_messages.unwrap_or(defaults.session_buffer_messages),
        ..defaults
    };
    let server = unisock::server::Server::bind(config).await.ok()?;
    let addr = server.local_addr();
    Some((addr, tokio::spawn(server.run(std::future::pending()))))
}

/// The `/session-proxy` control connection (built with the `server` feature): a fresh
/// `unisock serve` (acknowledged sessions on) behind a fault proxy, for the browser's session
/// tests. Answers `PORT <port>` (the proxy's), then takes the `/proxy` commands, `restart
/// [<grace ms> <session buffer messages>]` (the server is killed, every session lost, and a
/// new one takes its place) and `server` (answered `SERVER <port>`: the server itself, not
/// through the proxy). Both live as long as the control connection.
#[cfg(feature = "server")]
async fn control_session_proxy(mut ws: tokio_tungstenite::WebSocketStream<TcpStream>) {
    let Some((mut addr, mut server)) = start_unisock_serve(None, None).await else {
        return;
    };
    let Ok(proxy) = FaultProxy::start(addr).await else {
        return;
    };
    let port = format!("PORT {}", proxy.addr().port());
    if ws.send(Message::text(port)).await.is_ok() {
        while let Some(Ok(Message::Text(command))) = ws.next().await {
            let command = command.as_str();
            let (name, arg) = command.split_once(' ').unwrap_or((command, ""));
            match (name, arg) {
                _ if fault_command(&proxy, name, arg) => {}
                ("restart", settings) => {
                    server.abort();
                    let _ = (&mut server).await;
                    let mut settings = settings.split_whitespace();
                    let grace = settings.next().and_then(|ms| ms.parse().ok());
                    let buffer = settings.next().and_then(|n| n.parse().ok());
                    let Some((restarted_at, restarted)) = start_unisock_serve(grace, buffer).await
                    else {
                        return;
                    };
                    (addr, server) = (restarted_at, restarted);
                    proxy.set_upstream(addr);
                }
                ("server", _) => {
                    let reply = format!("SERVER {}", addr.port());
                    if ws.send(Message::text(reply)).await.is_err() {
                        break;
                    }
                    continue;
                }
                _ => {
                    let _ = ws
                        .send(Message::text(format!("unknown command {command:?}")))
                        .await;
                    continue;
                }
            }
            if ws.send(Message::text("ok")).await.is_err() {
                break;
            }
        }
    }
    server.abort();
}

/// The `/stall` endpoint, for backpressure tests.
async fn stall_then_count(mut ws: tokio_tungstenite::WebSocketStream<TcpStream>) {
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let (mut messages, mut bytes) = (0u64, 0u64);
    while let Some(Ok(message)) = ws.next().await {
        match message {
            Message::Text(text) if text.as_str() == "!count" => {
                let reply = format!("count {messages} {bytes}");
                if ws.send(Message::text(reply)).await.is_err() {
                    return;
                }
            }
            Message::Text(_) | Message::Binary(_) => {
                messages += 1;
                bytes += message.len() as u64;
            }
            _ => {}
        }
    }
}
