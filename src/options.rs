//! [`Options`]: how to open a connection and keep it alive, with documented defaults.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use crate::{CloseEvent, Error, Message};

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
    /// fails there with [`Error::Unsupported`] instead of being
    /// silently dropped. Header values are never logged. Default: none.
    pub headers: Vec<(String, String)>,
    /// How long opening a connection may take, TCP + TLS + handshake together, before it
    /// fails with [`Error::ConnectTimeout`]. `None` waits as long
    /// as the platform does (minutes). Default: 10 s.
    pub connect_timeout: Option<Duration>,
    /// Largest message accepted, sent or received, in bytes. Sending a larger one fails with
    /// [`Error::MessageTooLarge`]; receiving one closes the
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
    /// Reconnect automatically, with exponential backoff and full jitter, after the connection
    /// drops. `None` turns it off. Default: [`Reconnect::default`].
    ///
    /// [`connect`](crate::connect) reports a failure of its *first* attempt as its error (the
    /// caller decides); once open, the connection reconnects by itself. A
    /// [`Socket`](crate::Socket) retries from the first attempt, reporting each failure as an
    /// [`Event::Error`](crate::Event::Error) and [`Event::Reconnecting`](crate::Event::Reconnecting).
    pub reconnect: Option<Reconnect>,
    /// Bounds on the outgoing queue: messages accepted by `send` and not yet written, which
    /// includes everything sent while the connection is down. Default: [`QueueLimits::default`].
    pub queue: QueueLimits,
    /// The `Sink`'s `poll_ready` waits while more than this many bytes are buffered (in
    /// unisock's queue and, in the browser, in `WebSocket.bufferedAmount`). Default: 1 MiB.
    pub high_water_mark: usize,
    /// Detects a dead peer (a half-open or blackholed connection that would otherwise look
    /// open for minutes): natively WebSocket pings, in the browser an application-level ping
    /// you opt into. In an acknowledged session ([`Options::session`]) the session's own ping
    /// frame is used on every target, so the browser needs no application ping then. Default: pings every 30 s with a 10 s timeout natively, off in the browser.
    pub heartbeat: Option<Heartbeat>,
    /// Called before every connection attempt, reconnects included, for the URL and headers
    /// to use, e.g. with a fresh auth token. `None` uses the URL given to `connect` and
    /// [`Options::headers`]. Default: `None`.
    pub endpoint: Option<EndpointProvider>,
    /// Acknowledged sessions: exactly-once, in-order delivery across reconnects with a server
    /// that speaks the `unisock.v1` subprotocol (`unisock serve`). `None` (the default) is
    /// plain WebSocket. See [`SessionOptions`] and docs/session-protocol.md. (`unisock.v1` is
    /// then the selected subprotocol: an application subprotocol cannot be negotiated too.)
    pub session: Option<SessionOptions>,
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
            reconnect: Some(Reconnect::default()),
            queue: QueueLimits::default(),
            high_water_mark: 1 << 20,
            heartbeat: if cfg!(target_arch = "wasm32") {
                None
            } else {
                Some(Heartbeat::default())
            },
            endpoint: None,
            session: None,
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

    /// Turns automatic reconnection off: the first close or failure is final.
    pub fn without_reconnect(mut self) -> Self {
        self.reconnect = None;
        self
    }

    /// Sets the reconnect policy (see [`Options::reconnect`]).
    pub fn reconnect(mut self, reconnect: Reconnect) -> Self {
        self.reconnect = Some(reconnect);
        self
    }

    /// Sets the heartbeat (see [`Options::heartbeat`]); `None` turns it off.
    pub fn heartbeat(mut self, heartbeat: Option<Heartbeat>) -> Self {
        self.heartbeat = heartbeat;
        self
    }

    /// Sets a provider of the URL and headers for every attempt (see [`Options::endpoint`]).
    ///
    /// ```
    /// use unisock::{Endpoint, Options};
    ///
    /// let options = Options::default().endpoint(|| Endpoint {
    ///     url: format!("wss://example.com/live?token={}", "fresh-token"),
    ///     headers: Vec::new(),
    /// });
    /// ```
    pub fn endpoint(
        mut self,
        provider: impl Fn() -> Endpoint + crate::MaybeSend + crate::MaybeSync + 'static,
    ) -> Self {
        self.endpoint = Some(EndpointProvider(Arc::new(provider)));
        self
    }

    /// Asks for an acknowledged session (see [`Options::session`]).
    ///
    /// ```
    /// use unisock::{Options, SessionOptions};
    ///
    /// let options = Options::default().session(SessionOptions::default());
    /// assert!(options.session.is_some());
    /// ```
    pub fn session(mut self, session: SessionOptions) -> Self {
        self.session = Some(session);
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
    /// [`Error::InvalidOption`]. Default: none.
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

/// When and how fast to reconnect after the connection drops.
///
/// The delay before attempt `n` (1, 2, …) is drawn uniformly from
/// `[0, min(max_delay, min_delay × factor^(n-1))]` ("full jitter"), so that many clients
/// dropped at once do not come back in lockstep. The attempt count, and with it the delay,
/// resets only once a connection has stayed up for `min_uptime`: a server that accepts and
/// drops at once is not hammered.
///
/// ```
/// use std::time::Duration;
/// use unisock::{Disconnect, Reconnect};
///
/// let reconnect = Reconnect {
///     max_retries: Some(10),
///     ..Reconnect::default()
/// }
/// // Also give up when the server says it is shutting down for good (4000).
/// .should_reconnect(|why| match why {
///     Disconnect::Closed(close) if close.code == 4000 => false,
///     other => Reconnect::default_should_reconnect(other),
/// });
/// ```
#[derive(Clone)]
pub struct Reconnect {
    /// Ceiling of the first delay. Default: 500 ms.
    pub min_delay: Duration,
    /// Largest ceiling of any delay. Default: 30 s.
    pub max_delay: Duration,
    /// How much the ceiling grows per attempt. Default: 2.
    pub factor: f64,
    /// Attempts in a row after which to give up (`None`: never). Default: `None`.
    pub max_retries: Option<u32>,
    /// How long a connection must stay up for the attempt count to reset. Default: 5 s.
    pub min_uptime: Duration,
    /// Decides whether a disconnect is worth retrying. A close the user asked for never is.
    /// Default: [`Reconnect::default_should_reconnect`].
    pub should_reconnect: ShouldReconnect,
}

impl Default for Reconnect {
    fn default() -> Self {
        Reconnect {
            min_delay: Duration::from_millis(500),
            max_delay: Duration::from_secs(30),
            factor: 2.0,
            max_retries: None,
            min_uptime: Duration::from_secs(5),
            should_reconnect: ShouldReconnect(Arc::new(Reconnect::default_should_reconnect)),
        }
    }
}

impl Reconnect {
    /// The default predicate: a close with 1008 (policy violation) and a handshake rejected
    /// with 401 or 403 are final, as are errors in the URL or options, which no retry can fix;
    /// everything else is retried.
    pub fn default_should_reconnect(why: &Disconnect<'_>) -> bool {
        match why {
            Disconnect::Closed(close) => close.code != 1008,
            Disconnect::Error(error) => !matches!(
                error,
                Error::HandshakeRejected {
                    status: 401 | 403,
                    ..
                } | Error::InvalidUrl { .. }
                    | Error::UnsupportedScheme { .. }
                    | Error::InvalidOption { .. }
                    | Error::Unsupported { .. }
            ),
        }
    }

    /// Replaces the predicate that decides whether to retry.
    pub fn should_reconnect(
        mut self,
        predicate: impl Fn(&Disconnect<'_>) -> bool + crate::MaybeSend + crate::MaybeSync + 'static,
    ) -> Self {
        self.should_reconnect = ShouldReconnect(Arc::new(predicate));
        self
    }

    /// The ceiling of the delay before attempt `attempt` (1-based), before jitter.
    pub fn ceiling(&self, attempt: u32) -> Duration {
        let growth = self
            .factor
            .max(1.0)
            .powi(attempt.saturating_sub(1).min(1000) as i32);
        let ceiling = self.min_delay.as_secs_f64() * growth;
        Duration::from_secs_f64(ceiling.min(self.max_delay.as_secs_f64()).max(0.0))
    }
}

impl fmt::Debug for Reconnect {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Reconnect")
            .field("min_delay", &self.min_delay)
            .field("max_delay", &self.max_delay)
            .field("factor", &self.factor)
            .field("max_retries", &self.max_retries)
            .field("min_uptime", &self.min_uptime)
            .finish_non_exhaustive()
    }
}

/// Why a connection ended, as seen by [`Reconnect::should_reconnect`].
#[derive(Debug, Clone, Copy)]
pub enum Disconnect<'a> {
    /// The connection closed (the peer's close frame, or 1006 when it just dropped).
    Closed(&'a CloseEvent),
    /// A connect attempt or the connection failed with this error.
    Error(&'a Error),
}

cfg_if::cfg_if! {
    if #[cfg(target_arch = "wasm32")] {
        type Predicate = dyn Fn(&Disconnect<'_>) -> bool;
        type ProviderFn = dyn Fn() -> Endpoint;
    } else {
        type Predicate = dyn Fn(&Disconnect<'_>) -> bool + Send + Sync;
        type ProviderFn = dyn Fn() -> Endpoint + Send + Sync;
    }
}

/// The predicate of [`Reconnect::should_reconnect`]; build it with that method.
#[derive(Clone)]
pub struct ShouldReconnect(Arc<Predicate>);

impl ShouldReconnect {
    /// Asks the predicate.
    pub fn check(&self, why: &Disconnect<'_>) -> bool {
        (self.0)(why)
    }
}

impl fmt::Debug for ShouldReconnect {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ShouldReconnect(..)")
    }
}

/// Where to connect, as returned by an [`Options::endpoint`] provider.
#[derive(Clone, Debug, Default)]
pub struct Endpoint {
    /// The WebSocket URL for this attempt.
    pub url: String,
    /// Handshake headers for this attempt (native only), replacing [`Options::headers`].
    pub headers: Vec<(String, String)>,
}

/// A provider of [`Endpoint`]s; build it with [`Options::endpoint`].
#[derive(Clone)]
pub struct EndpointProvider(Arc<ProviderFn>);

impl EndpointProvider {
    /// Asks the provider for the endpoint of the next attempt.
    pub fn get(&self) -> Endpoint {
        (self.0)()
    }
}

impl fmt::Debug for EndpointProvider {
    // Never print what it returns: URLs and headers may carry secrets.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("EndpointProvider(..)")
    }
}

/// Bounds on the outgoing queue (see [`Options::queue`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct QueueLimits {
    /// Most messages waiting. Default: 10 000.
    pub max_messages: usize,
    /// Most bytes waiting (one message larger than this is still accepted into an empty
    /// queue). Default: 16 MiB.
    pub max_bytes: usize,
    /// What the `Sink` does when the queue is full. `try_send` and `Socket::send` always fail
    /// with [`Error::QueueFull`] then. Default: [`WhenFull::Wait`].
    pub when_full: WhenFull,
}

impl Default for QueueLimits {
    fn default() -> Self {
        QueueLimits {
            max_messages: 10_000,
            max_bytes: 16 << 20,
            when_full: WhenFull::Wait,
        }
    }
}

/// What the `Sink` does when the outgoing queue is full.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WhenFull {
    /// `poll_ready` waits until there is room.
    Wait,
    /// `poll_ready` fails with [`Error::QueueFull`].
    Error,
}

/// Dead-peer detection (see [`Options::heartbeat`]).
///
/// A ping goes out when nothing was received for `interval`; if nothing at all (pong or any
/// message) arrives within `timeout` after it, the connection is declared dead, dropped and,
/// as configured, reconnected: a silent peer is noticed within `interval + timeout`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Heartbeat {
    /// Silence after which to ping. Default: 30 s.
    pub interval: Duration,
    /// How long to wait for any sign of life after a ping. Default: 10 s.
    pub timeout: Duration,
    /// Ping with an application message instead of a WebSocket ping frame. Required in the
    /// browser, whose `WebSocket` cannot send pings; the server must answer it. Default: `None`.
    pub app_ping: Option<AppPing>,
}

impl Default for Heartbeat {
    fn default() -> Self {
        Heartbeat {
            interval: Duration::from_secs(30),
            timeout: Duration::from_secs(10),
            app_ping: None,
        }
    }
}

/// An application-level ping: the message to send and the answer to expect. The answer is
/// consumed by unisock, not delivered as a message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AppPing {
    /// What to send.
    pub ping: Message,
    /// What the server answers.
    pub pong: Message,
}

/// Acknowledged sessions (see [`Options::session`]).
///
/// The client offers the `unisock.v1` subprotocol first, before [`Options::protocols`]. If the
/// server selects it, every message carries a sequence number, both sides acknowledge what
/// they received (piggybacked on data, or batched), and what was sent but not acknowledged is
/// kept and sent again after a reconnect; duplicates are dropped, so each message is
/// delivered exactly once and in order, per direction, as long as the server still holds the
/// session (its grace period and buffer bounds). When it cannot resume, the application gets
/// an [`Event::Gap`](crate::Event::Gap), never a silent loss. A server that selects another
/// of the offered subprotocols instead of `unisock.v1` gives plain WebSocket behaviour (one that
/// selects none fails the handshake, on every target, as Chromium requires). Either way an
/// [`Event::Session`](crate::Event::Session) right after each [`Event::Open`](crate::Event::Open)
/// says which mode is active.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SessionOptions {
    /// Most messages sent and not yet acknowledged (kept for resending). When reached, further
    /// messages wait in the outgoing queue ([`Options::queue`]). Default: 1024.
    pub max_unacked_messages: usize,
    /// Most bytes sent and not yet acknowledged (one message of any size is always allowed).
    /// Default: 8 MiB.
    pub max_unacked_bytes: usize,
    /// How long received messages may wait before a standalone acknowledgement is sent when
    /// nothing flows back to carry it (acks also go out after every 64 messages). Default:
    /// 20 ms.
    pub ack_delay: Duration,
}

impl Default for SessionOptions {
    fn default() -> Self {
        SessionOptions {
            max_unacked_messages: 1024,
            max_unacked_bytes: 8 << 20,
            ack_delay: Duration::from_millis(20),
        }
    }
}
