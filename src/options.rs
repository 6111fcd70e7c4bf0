//! [`Options`]: how to open a connection, with documented defaults.

use std::time::Duration;

/// How to open a connection. Every field has a sensible default; change what you need.
///
/// ```
/// use std::time::Duration;
/// use unisock::Options;
///
/// let options = Options {
///     connect_timeout: Some(Duration::from_secs(5)),
///     ..Options::default()
/// }
/// .protocol("chat")
/// .header("Authorization", "Bearer secret");
/// assert_eq!(options.protocols, ["chat"]);
/// ```
#[derive(Clone, Debug)]
pub struct Options {
    /// Subprotocols to offer, in order of preference (`Sec-WebSocket-Protocol`). The one the
    /// server picked is in [`Event::Open`](crate::Event::Open). Default: none.
    pub protocols: Vec<String>,
    /// Extra HTTP headers for the handshake, e.g. `Authorization` or `Cookie`.
    ///
    /// **Native only**: a browser's `WebSocket` cannot send custom headers, so a non-empty list
    /// fails there with [`Error::Unsupported`](crate::Error::Unsupported) instead of being
    /// silently dropped. Header values are never logged. Default: none.
    pub headers: Vec<(String, String)>,
    /// How long opening a connection may take, TCP + TLS + handshake together, before it
    /// fails with [`Error::ConnectTimeout`](crate::Error::ConnectTimeout). `None` waits as long
    /// as the platform does (minutes). Default: 10 s.
    pub connect_timeout: Option<Duration>,
    /// Largest message accepted, sent or received, in bytes. Sending a larger one fails with
    /// [`Error::MessageTooLarge`](crate::Error::MessageTooLarge); receiving one closes the
    /// connection with 1009. Lower it to bound the memory a hostile peer can make you allocate.
    /// Default: 64 MiB.
    pub max_message_size: usize,
    /// Largest single frame accepted from the peer, in bytes (native only: browsers reassemble
    /// frames themselves). Default: 16 MiB.
    pub max_frame_size: usize,
    /// How long to wait for the peer's answer to our close frame before dropping the
    /// connection (the close then reports code 1006, not clean). Default: 5 s.
    pub close_timeout: Duration,
    /// How many received events may wait unread before unisock stops reading from the socket
    /// (the peer then slows down through TCP flow control instead of filling your memory).
    /// Default: 1024.
    pub receive_buffer: usize,
    /// Which certificates `wss://` trusts (native only; browsers use their own trust store).
    pub tls: TlsOptions,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            protocols: Vec::new(),
            headers: Vec::new(),
            connect_timeout: Some(Duration::from_secs(10)),
            max_message_size: 64 << 20,
            max_frame_size: 16 << 20,
            close_timeout: Duration::from_secs(5),
            receive_buffer: 1024,
            tls: TlsOptions::default(),
        }
    }
}

impl Options {
    /// Adds a subprotocol to offer.
    pub fn protocol(mut self, protocol: impl Into<String>) -> Self {
        self.protocols.push(protocol.into());
        self
    }

    /// Adds a handshake header (native only, see [`Options::headers`]).
    pub fn header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }

    /// Sets the connect timeout (see [`Options::connect_timeout`]).
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = Some(timeout);
        self
    }

    /// Sets the message size limit (see [`Options::max_message_size`]).
    pub fn max_message_size(mut self, bytes: usize) -> Self {
        self.max_message_size = bytes;
        self
    }

    /// Trusts an extra certificate authority, given in PEM, on top of the default roots
    /// (see [`TlsOptions::extra_ca_pem`]).
    pub fn extra_ca_pem(mut self, pem: impl Into<String>) -> Self {
        self.tls.extra_ca_pem = Some(pem.into());
        self
    }
}

/// Which certificate authorities `wss://` connections trust (native only).
///
/// Certificates are always verified, host name included; there is no switch to turn
/// verification off. To talk to a server with a private or self-signed certificate, pass its
/// CA here.
#[derive(Clone, Debug)]
pub struct TlsOptions {
    /// Trust the Mozilla root store bundled through `webpki-roots`. Default: `true`.
    pub webpki_roots: bool,
    /// One or more extra CA certificates in PEM (`-----BEGIN CERTIFICATE-----`), trusted in
    /// addition to the roots above. An unparsable PEM fails the connect with
    /// [`Error::InvalidOption`](crate::Error::InvalidOption). Default: none.
    pub extra_ca_pem: Option<String>,
}

impl Default for TlsOptions {
    fn default() -> Self {
        TlsOptions {
            webpki_roots: true,
            extra_ca_pem: None,
        }
    }
}
