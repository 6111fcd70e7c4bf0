//! Entry points for the cargo-fuzz targets in `fuzz/`: the server's parsers of what clients
//! send (query strings, room names, handshake and `Origin` headers). Hidden from the docs and
//! not a stable API: they exist only so that the fuzz targets can call crate-private code.

use axum::http::{header, HeaderMap, HeaderName, HeaderValue};

use super::origin::AllowedOrigins;
use super::params::{self, SocketParams};
use super::upgrade;

/// The query of a WebSocket route (`notify_self`, `client_id`): `Ok((notify_self,
/// client_id))`, or the message of the HTTP 400 answer.
///
/// # Errors
///
/// The message of the 400 answer.
pub fn socket_query(query: &str) -> Result<(bool, Option<String>), &'static str> {
    SocketParams::parse(Some(query)).map(|params| (params.notify_self, params.client_id))
}

/// The `client_id` of `POST /drop?client_id=…`.
///
/// # Errors
///
/// The message of the 400 answer.
pub fn drop_query(query: &str) -> Result<String, &'static str> {
    params::drop_target(Some(query))
}

/// Whether `name` is accepted as a room name or client id.
pub fn is_valid_name(name: &str) -> bool {
    params::is_valid_name(name)
}

/// Headers from raw values, as hyper would hand them over (values it could not accept are
/// skipped).
fn headers(name: HeaderName, values: &[&[u8]]) -> HeaderMap {
    let mut map = HeaderMap::new();
    for value in values {
        if let Ok(value) = HeaderValue::from_bytes(value) {
            map.append(name.clone(), value);
        }
    }
    map
}

/// The subprotocol the server selects for these `Sec-WebSocket-Protocol` header values.
pub fn select_subprotocol(values: &[&[u8]]) -> Option<&'static str> {
    upgrade::select_protocol(&headers(header::SEC_WEBSOCKET_PROTOCOL, values))
}

/// Whether a request with these `Origin` header values passes an allow-list of `allowed`.
pub fn origin_allowed(allowed: &[String], values: &[&[u8]]) -> bool {
    AllowedOrigins::new(allowed).allows(&headers(header::ORIGIN, values))
}

/// Whether `origin` is accepted in [`ServerConfig::allowed_origins`](super::ServerConfig).
pub fn is_well_formed_origin(origin: &str) -> bool {
    super::origin::is_well_formed(origin)
}
