//! [`Error`]: everything that can go wrong, as a typed enum.
//!
//! URLs inside errors are always redacted (no userinfo, no query string, no fragment), so an
//! error can be logged or shown to a user without leaking a token.

use std::time::Duration;

/// Everything that can go wrong with a connection, on every target.
///
/// Each variant's message says what happened in words a person understands. The enum is
/// `#[non_exhaustive]`: match the variants you handle and keep a catch-all arm.
///
/// ```
/// use unisock::Error;
///
/// let err = Error::HandshakeRejected { url: "ws://example.com/chat".into(), status: 401 };
/// assert_eq!(err.to_string(), "ws://example.com/chat rejected the WebSocket handshake with HTTP status 401");
/// assert_eq!(err.http_status(), Some(401));
/// ```
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The URL could not be parsed, or is not a valid WebSocket URL.
    #[error("invalid WebSocket URL {url:?}: {reason}")]
    InvalidUrl {
        /// The URL as given, redacted.
        url: String,
        /// Why it was rejected.
        reason: String,
    },
    /// The URL scheme is not `ws`, `wss`, `http` or `https`.
    #[error("unsupported URL scheme {scheme:?}: use ws:// or wss://")]
    UnsupportedScheme {
        /// The scheme that was given.
        scheme: String,
    },
    /// An option is invalid (a bad header name, an unparsable CA certificate, …).
    #[error("invalid option {option}: {reason}")]
    InvalidOption {
        /// Which option.
        option: &'static str,
        /// What is wrong with it.
        reason: String,
    },
    /// The option is not available on this target (for example custom headers in a browser,
    /// which the browser's `WebSocket` cannot send).
    #[error("{option} is not supported {target}")]
    Unsupported {
        /// Which option.
        option: &'static str,
        /// Where it is unsupported, e.g. "in the browser".
        target: &'static str,
    },
    /// The host name could not be resolved.
    #[error("could not resolve host {host:?}: {reason}")]
    Resolve {
        /// The host name.
        host: String,
        /// What the resolver said.
        reason: String,
    },
    /// The server actively refused the TCP connection (nothing listens on that port).
    #[error("connection to {url} refused")]
    ConnectionRefused {
        /// The URL, redacted.
        url: String,
    },
    /// Opening the connection (TCP, TLS and WebSocket handshake) took longer than
    /// [`Options::connect_timeout`](crate::Options::connect_timeout).
    #[error("connecting to {url} timed out after {timeout:?}")]
    ConnectTimeout {
        /// The URL, redacted.
        url: String,
        /// The timeout that expired.
        timeout: Duration,
    },
    /// The connection could not be opened and the platform gives no reason. Browsers report
    /// every failed connect this way (refused, rejected handshake and TLS failures look the
    /// same to a page, on purpose).
    #[error("could not connect to {url}")]
    ConnectFailed {
        /// The URL, redacted.
        url: String,
    },
    /// The browser reported an error on an open connection (its `error` event, which carries
    /// no details by design).
    #[error("the browser reported an error on the connection to {url}")]
    BrowserError {
        /// The URL, redacted.
        url: String,
    },
    /// The TLS handshake failed (untrusted certificate, wrong host name, …).
    #[error("TLS error with {url}: {reason}")]
    Tls {
        /// The URL, redacted.
        url: String,
        /// What the TLS library said.
        reason: String,
    },
    /// The server answered the WebSocket handshake with an HTTP error status.
    #[error("{url} rejected the WebSocket handshake with HTTP status {status}")]
    HandshakeRejected {
        /// The URL, redacted.
        url: String,
        /// The HTTP status code, e.g. 401 or 404.
        status: u16,
    },
    /// The server's handshake response is not a valid WebSocket upgrade (wrong
    /// `Sec-WebSocket-Accept`, missing upgrade headers, garbage, an unrequested subprotocol).
    #[error("invalid WebSocket handshake from {url}: {reason}")]
    Handshake {
        /// The URL, redacted.
        url: String,
        /// What was wrong.
        reason: String,
    },
    /// A network I/O error on an open connection (reset by peer, broken pipe, …).
    #[error("I/O error: {reason}")]
    Io {
        /// The kind of I/O error.
        kind: std::io::ErrorKind,
        /// What the operating system said.
        reason: String,
    },
    /// A message is larger than [`Options::max_message_size`](crate::Options::max_message_size).
    /// Sending one fails at once; receiving one closes the connection with code 1009.
    #[error("message of {size} bytes exceeds the limit of {max} bytes")]
    MessageTooLarge {
        /// Size of the message in bytes (for a received message: as far as it was read).
        size: usize,
        /// The configured limit.
        max: usize,
    },
    /// A text message from the peer was not valid UTF-8 (the connection is closed with 1007).
    #[error("received a text message that is not valid UTF-8")]
    InvalidUtf8,
    /// The peer broke the WebSocket protocol (bad framing, reserved bits, …).
    #[error("WebSocket protocol error: {reason}")]
    Protocol {
        /// What was wrong.
        reason: String,
    },
    /// A close code that an application may not send: use 1000 or 3000–4999 (the browser's rule,
    /// applied on every target).
    #[error("close code {code} is not allowed: use 1000 or 3000-4999")]
    InvalidCloseCode {
        /// The rejected code.
        code: u16,
    },
    /// A close reason longer than 123 bytes of UTF-8 (the limit of a close frame).
    #[error("close reason is {len} bytes long; at most 123 bytes fit in a close frame")]
    CloseReasonTooLong {
        /// Its length in bytes.
        len: usize,
    },
    /// The outgoing queue is full ([`Options::queue`](crate::Options::queue)): the message was
    /// not accepted, nothing was dropped.
    #[error("the outgoing queue is full ({messages} messages, {bytes} bytes waiting)")]
    QueueFull {
        /// Messages waiting.
        messages: usize,
        /// Bytes waiting.
        bytes: usize,
    },
    /// A reader that keeps what it has not consumed yet (the npm package's `for await` loop
    /// over a socket) fell more than `max` messages behind
    /// ([`Options::receive_buffer`](crate::Options::receive_buffer)): it stopped taking new
    /// ones and ends with this error after the messages it holds. Nothing is dropped
    /// silently, and memory stays bounded.
    #[error("a reader fell more than {max} messages behind and stopped")]
    ReaderLagged {
        /// The most messages it could hold.
        max: usize,
    },
    /// No sign of life from the peer within the heartbeat timeout after a ping: the connection
    /// is dead (half-open or blackholed) and was dropped.
    #[error("no answer from the peer within {timeout:?} after a ping")]
    HeartbeatTimeout {
        /// The heartbeat timeout that expired.
        timeout: Duration,
    },
    /// The connection is closing or closed: nothing more can be sent.
    #[error("the connection is closed")]
    Closed,
    /// The background runtime that drives connections for callers without one could not start.
    #[error("could not start the background runtime: {reason}")]
    Runtime {
        /// What failed.
        reason: String,
    },
}

impl Error {
    /// The HTTP status of a rejected handshake, if that is what this error is.
    pub fn http_status(&self) -> Option<u16> {
        match self {
            Error::HandshakeRejected { status, .. } => Some(*status),
            _ => None,
        }
    }

    /// The close code this side sends when the error ends an open connection.
    pub(crate) fn close_code(&self) -> u16 {
        match self {
            Error::MessageTooLarge { .. } => 1009,
            Error::InvalidUtf8 => 1007,
            Error::Protocol { .. } => 1002,
            _ => 1006,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_are_readable() {
        let err = Error::ConnectTimeout {
            url: "ws://127.0.0.1:1/".into(),
            timeout: Duration::from_millis(250),
        };
        assert_eq!(
            err.to_string(),
            "connecting to ws://127.0.0.1:1/ timed out after 250ms"
        );
        assert_eq!(
            Error::InvalidCloseCode { code: 1001 }.to_string(),
            "close code 1001 is not allowed: use 1000 or 3000-4999"
        );
    }
}
