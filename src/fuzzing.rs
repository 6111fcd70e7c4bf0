//! Entry points for the cargo-fuzz targets in `fuzz/`: unisock's own parsers of outside input,
//! reachable from outside the crate. Hidden from the docs and not a stable API: they exist
//! only so that the fuzz targets can call crate-private code.

use crate::url::WsUrl;
use crate::Error;

/// What [`connect`](crate::connect) makes of a URL before it opens anything.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParsedUrl {
    /// The URL that would be connected to (`http`/`https` mapped to `ws`/`wss`, no fragment),
    /// secrets included.
    pub full: String,
    /// The same URL as logged and shown in errors: no userinfo, query or fragment.
    pub redacted: String,
    /// Host name or address, IPv6 without brackets.
    pub host: String,
    /// Port, explicit or the scheme's default.
    pub port: u16,
    /// Whether the scheme is `wss`.
    pub secure: bool,
}

/// Validates `input` as [`connect`](crate::connect) does (the same code, on every target).
///
/// # Errors
///
/// The error `connect` would return for this URL.
pub fn parse_ws_url(input: &str) -> Result<ParsedUrl, Error> {
    let url = WsUrl::parse(input)?;
    Ok(ParsedUrl {
        full: url.as_str().to_owned(),
        redacted: url.redacted().to_owned(),
        host: url.host().to_owned(),
        port: url.port(),
        secure: url.is_secure(),
    })
}

/// Decodes `data` as a frame of an acknowledged session (`unisock.v1`), as a binary message
/// and, if it is UTF-8, as a text message. For each that decodes, returns the message and the
/// decoded frame encoded again (the encoding is canonical: the two must be equal). Malformed
/// input must give a protocol violation, never a panic.
pub fn session_frame_roundtrip(data: &[u8]) -> Vec<(crate::Message, crate::Message)> {
    use crate::session::ack::Frame;
    let mut messages = vec![crate::Message::binary(data.to_vec())];
    if let Ok(text) = std::str::from_utf8(data) {
        messages.push(crate::Message::text(text));
    }
    messages
        .into_iter()
        .filter_map(|message| {
            let frame = Frame::decode(message.clone()).ok()?;
            Some((message, frame.encode()))
        })
        .collect()
}
