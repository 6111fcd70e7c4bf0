//! The HTTP/1.1 → WebSocket upgrade (RFC 6455 §4.2): checks the request, answers
//! `101 Switching Protocols` and hands the upgraded connection to a tokio-tungstenite
//! [`WebSocketStream`] configured with our limits.

use std::future::Future;

use axum::body::Body;
use axum::http::{header, HeaderMap, HeaderName, HeaderValue, Request, StatusCode};
use axum::response::{IntoResponse, Response};
use hyper::upgrade::{OnUpgrade, Upgraded};
use hyper_util::rt::TokioIo;
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;
use tokio_tungstenite::tungstenite::protocol::{Role, WebSocketConfig};
use tokio_tungstenite::WebSocketStream;

/// The subprotocols the server speaks. When a client offers one or more of them in
/// `Sec-WebSocket-Protocol`, the first one it offers is selected; otherwise none is.
/// (`chat` and `unisock.test` behave like the plain route; they exist so that subprotocol
/// negotiation can be tested against this server. `unisock.v1` runs an acknowledged session,
/// see docs/session-protocol.md; it is not selected when [`ServerConfig::sessions`] is off.)
///
/// [`ServerConfig::sessions`]: super::ServerConfig::sessions
pub const SUBPROTOCOLS: [&str; 3] = ["chat", "unisock.test", crate::session::ack::PROTOCOL];

/// An upgraded WebSocket connection, server side.
pub(crate) type Socket = WebSocketStream<TokioIo<Upgraded>>;

/// A valid WebSocket upgrade request, not answered yet.
#[derive(Debug)]
pub(crate) struct UpgradeRequest {
    key: HeaderValue,
    on_upgrade: OnUpgrade,
    protocol: Option<&'static str>,
}

/// Why a request is not a WebSocket upgrade we can accept.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Rejection {
    /// No `Connection: upgrade` + `Upgrade: websocket` (a plain HTTP request): 426.
    NotAnUpgrade,
    /// `Sec-WebSocket-Version` is not 13: 426 naming the version we speak.
    UnsupportedVersion,
    /// No `Sec-WebSocket-Key`: 400.
    MissingKey,
    /// The connection cannot be upgraded (e.g. HTTP/1.0): 400.
    NotUpgradable,
}

impl UpgradeRequest {
    /// Checks the handshake headers of `request` and takes its upgrade handle.
    pub(crate) fn from_request(
        request: &mut Request<Body>,
        sessions: bool,
    ) -> Result<Self, Rejection> {
        let headers = request.headers();
        if !has_token(headers, &header::CONNECTION, "upgrade")
            || !has_token(headers, &header::UPGRADE, "websocket")
        {
            return Err(Rejection::NotAnUpgrade);
        }
        if headers
            .get(header::SEC_WEBSOCKET_VERSION)
            .is_none_or(|version| version.as_bytes() != b"13")
        {
            return Err(Rejection::UnsupportedVersion);
        }
        let key = headers
            .get(header::SEC_WEBSOCKET_KEY)
            .filter(|key| !key.is_empty())
            .cloned()
            .ok_or(Rejection::MissingKey)?;
        let protocol = select_protocol(headers)
            .filter(|&protocol| sessions || protocol != crate::session::ack::PROTOCOL)
            .or_else(|| select_protocol_without_sessions(headers));
        let on_upgrade = request
            .extensions_mut()
            .remove::<OnUpgrade>()
            .ok_or(Rejection::NotUpgradable)?;
        Ok(UpgradeRequest {
            key,
            on_upgrade,
            protocol,
        })
    }

    /// The subprotocol that will be selected, if any.
    pub(crate) fn protocol(&self) -> Option<&'static str> {
        self.protocol
    }

    /// Answers `101 Switching Protocols` and spawns a task that runs `on_socket` with the
    /// upgraded connection once hyper hands it over. If the client goes away before that,
    /// `on_socket` is dropped without being called (releasing whatever it owns).
    pub(crate) fn accept<F, Fut>(self, config: WebSocketConfig, on_socket: F) -> Response
    where
        F: FnOnce(Socket) -> Fut + Send + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let UpgradeRequest {
            key,
            on_upgrade,
            protocol,
        } = self;
        tokio::spawn(async move {
            match on_upgrade.await {
                Ok(upgraded) => {
                    let socket = WebSocketStream::from_raw_socket(
                        TokioIo::new(upgraded),
                        Role::Server,
                        Some(config),
                    )
                    .await;
                    on_socket(socket).await;
                }
                Err(error) => tracing::debug!(%error, "WebSocket upgrade failed"),
            }
        });
        let mut response = Response::new(Body::empty());
        *response.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
        let headers = response.headers_mut();
        headers.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
        headers.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
        let accept = derive_accept_key(key.as_bytes());
        // Base64 output is always a valid header value.
        if let Ok(accept) = HeaderValue::from_str(&accept) {
            headers.insert(header::SEC_WEBSOCKET_ACCEPT, accept);
        }
        if let Some(protocol) = protocol {
            headers.insert(
                header::SEC_WEBSOCKET_PROTOCOL,
                HeaderValue::from_static(protocol),
            );
        }
        response
    }
}

impl IntoResponse for Rejection {
    fn into_response(self) -> Response {
        let (status, message) = match self {
            Rejection::NotAnUpgrade => (
                StatusCode::UPGRADE_REQUIRED,
                "this endpoint speaks WebSocket only\n",
            ),
            Rejection::UnsupportedVersion => (
                StatusCode::UPGRADE_REQUIRED,
                "unsupported Sec-WebSocket-Version (13 is supported)\n",
            ),
            Rejection::MissingKey => (StatusCode::BAD_REQUEST, "missing Sec-WebSocket-Key\n"),
            Rejection::NotUpgradable => (
                StatusCode::BAD_REQUEST,
                "this connection cannot be upgraded (HTTP/1.1 is required)\n",
            ),
        };
        let mut response = (status, message).into_response();
        if status == StatusCode::UPGRADE_REQUIRED {
            let headers = response.headers_mut();
            headers.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
            headers.insert(
                header::SEC_WEBSOCKET_VERSION,
                HeaderValue::from_static("13"),
            );
        }
        response
    }
}

/// Whether any `name` header holds `token` in its comma-separated list (case-insensitive).
fn has_token(headers: &HeaderMap, name: &HeaderName, token: &str) -> bool {
    headers
        .get_all(name)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .any(|item| item.trim().eq_ignore_ascii_case(token))
}

/// Like [`select_protocol`], never picking `unisock.v1`.
fn select_protocol_without_sessions(headers: &HeaderMap) -> Option<&'static str> {
    headers
        .get_all(header::SEC_WEBSOCKET_PROTOCOL)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .find_map(|offered| {
            let offered = offered.trim();
            SUBPROTOCOLS[..2]
                .iter()
                .copied()
                .find(|&known| known == offered)
        })
}

/// The first subprotocol the client offers that is one of [`SUBPROTOCOLS`].
pub(crate) fn select_protocol(headers: &HeaderMap) -> Option<&'static str> {
    headers
        .get_all(header::SEC_WEBSOCKET_PROTOCOL)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .find_map(|offered| {
            let offered = offered.trim();
            SUBPROTOCOLS.into_iter().find(|&known| known == offered)
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(extra: &[(&'static str, &'static str)]) -> Request<Body> {
        let mut builder = Request::get("/echo")
            .header("connection", "keep-alive, Upgrade")
            .header("upgrade", "websocket")
            .header("sec-websocket-version", "13");
        for (name, value) in extra {
            builder = builder.header(*name, *value);
        }
        builder.body(Body::empty()).unwrap()
    }

    #[test]
    fn checks_handshake_headers() {
        let mut plain = Request::get("/echo").body(Body::empty()).unwrap();
        assert_eq!(
            UpgradeRequest::from_request(&mut plain, true).unwrap_err(),
            Rejection::NotAnUpgrade
        );
        assert_eq!(
            UpgradeRequest::from_request(&mut request(&[]), true).unwrap_err(),
            Rejection::MissingKey
        );
        // Everything right, but not served by hyper: no upgrade handle.
        assert_eq!(
            UpgradeRequest::from_request(
                &mut request(&[("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ==")]),
                true
            )
            .unwrap_err(),
            Rejection::NotUpgradable
        );
    }

    #[test]
    fn selects_first_offered_known_protocol() {
        let pick = |offer: &'static str| {
            let request = request(&[("sec-websocket-protocol", offer)]);
            select_protocol(request.headers())
        };
        assert_eq!(pick("unisock.test, chat"), Some("unisock.test"));
        assert_eq!(pick("graphql-ws,chat"), Some("chat"));
        assert_eq!(pick("graphql-ws"), None);
        assert_eq!(select_protocol(&HeaderMap::new()), None);
    }
}
