//! A bare HTTP/1.1 request to an in-process server, for the endpoints that are not
//! WebSocket (`/metrics`, `/drop`, static files). Uses the including test's own `STEP` (the
//! bound for the whole exchange), at its crate root.

#![allow(dead_code)]

use std::net::SocketAddr;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::STEP;

/// `method path` over HTTP/1.1 with an empty body and `Connection: close`: the status, the
/// head (status line and headers) and the body.
pub async fn http(addr: SocketAddr, method: &str, path: &str) -> (u16, String, Vec<u8>) {
    let exchange = async {
        let mut stream = TcpStream::connect(addr).await.expect("connect");
        let request =
            format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n");
        stream.write_all(request.as_bytes()).await.expect("write");
        let mut response = Vec::new();
        stream.read_to_end(&mut response).await.expect("read");
        response
    };
    let response = tokio::time::timeout(STEP, exchange)
        .await
        .expect("HTTP in time");
    let head_end = response
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("complete head");
    let head = String::from_utf8_lossy(&response[..head_end]).into_owned();
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .expect("status code");
    (status, head, response[head_end + 4..].to_vec())
}
