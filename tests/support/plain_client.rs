//! A plain WebSocket client (tokio-tungstenite, no unisock) of an in-process server, for the
//! server's tests. Uses the including test's own `STEP` (the bound for each step), at its
//! crate root.

#![allow(dead_code)]

use futures::SinkExt;
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use super::STEP;

/// A plain WebSocket client.
pub type Client = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// Connects to `url` (the handshake bounded by `STEP`, and it must succeed).
pub async fn connect(url: &str) -> Client {
    let (client, _response) = tokio::time::timeout(STEP, tokio_tungstenite::connect_async(url))
        .await
        .expect("handshake in time")
        .expect("WebSocket handshake");
    client
}

/// Sends `text` (bounded by `STEP`).
pub async fn send_text(client: &mut Client, text: &str) {
    tokio::time::timeout(STEP, client.send(Message::text(text)))
        .await
        .expect("send in time")
        .expect("send");
}
