//! `GET /metrics` of an in-process server (tests/support/test_server.rs) in tests: the
//! exposition, one metric's value, and a bounded wait for a value. Uses the including test's
//! own `STEP` (the bound for one HTTP exchange) and its `test_server` module, at its crate
//! root.

#![allow(dead_code)]

use std::net::SocketAddr;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::test_server::TestServer;
use super::STEP;

/// A bare `GET path` over HTTP/1.1: status, head, body.
pub async fn http_get(addr: SocketAddr, path: &str) -> (u16, String, String) {
    let exchange = async {
        let mut stream = TcpStream::connect(addr).await.expect("connect");
        let request = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
        stream.write_all(request.as_bytes()).await.expect("write");
        let mut response = Vec::new();
        stream.read_to_end(&mut response).await.expect("read");
        response
    };
    let response = tokio::time::timeout(STEP, exchange)
        .await
        .expect("HTTP in time");
    let response = String::from_utf8(response).expect("UTF-8 response");
    let (head, body) = response.split_once("\r\n\r\n").expect("complete head");
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .expect("status code");
    (status, head.to_owned(), body.to_owned())
}

/// The value of metric `name` in the exposition `body`, if it is there.
pub fn metric_value(body: &str, name: &str) -> Option<i64> {
    body.lines().find_map(|line| {
        let (metric, value) = line.split_once(' ')?;
        (metric == name).then(|| value.parse().ok())?
    })
}

/// `GET /metrics` of the server at `addr` (which must answer 200): the content type and the
/// body.
pub async fn metrics_at(addr: SocketAddr) -> (String, String) {
    let (status, head, body) = http_get(addr, "/metrics").await;
    assert_eq!(status, 200, "GET /metrics");
    let content_type = head
        .lines()
        .find_map(|line| {
            let (name, value) = line.split_once(':')?;
            name.eq_ignore_ascii_case("content-type")
                .then(|| value.trim().to_owned())
        })
        .expect("a content type");
    (content_type, body)
}

/// The value of metric `name` of the server at `addr` (which must be there).
pub async fn metric_at(addr: SocketAddr, name: &str) -> i64 {
    let (_, body) = metrics_at(addr).await;
    metric_value(&body, name).unwrap_or_else(|| panic!("metric {name} missing:\n{body}"))
}

impl TestServer {
    /// `GET /metrics`: the content type and the body.
    pub async fn metrics(&self) -> (String, String) {
        metrics_at(self.addr).await
    }

    /// The value of the metric `name` (which must be there).
    pub async fn metric(&self, name: &str) -> i64 {
        metric_at(self.addr, name).await
    }

    /// Waits (at most `limit`) until metric `name` satisfies `ok`; returns its value.
    pub async fn wait_metric(&self, name: &str, limit: Duration, ok: impl Fn(i64) -> bool) -> i64 {
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            let value = self.metric(name).await;
            if ok(value) {
                return value;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "metric {name} of {} still {value} after {limit:?}",
                self.addr
            );
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }
}
