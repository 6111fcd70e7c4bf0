//! `GET /metrics` of an in-process server (tests/support/test_server.rs) in tests: the
//! exposition, one metric's value, and a bounded wait for a value. Uses the including test's
//! own `http` (tests/support/http.rs) and `test_server` modules, at its crate root.

#![allow(dead_code)]

use std::net::SocketAddr;
use std::time::Duration;

use super::http::http;
use super::test_server::TestServer;

/// `GET path`: the status, the head and the body (which must be UTF-8).
pub async fn http_get(addr: SocketAddr, path: &str) -> (u16, String, String) {
    let (status, head, body) = http(addr, "GET", path).await;
    (status, head, String::from_utf8(body).expect("UTF-8 body"))
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
