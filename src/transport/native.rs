//! Native backend: tokio-tungstenite over a `TcpStream` we open ourselves (to set
//! `TCP_NODELAY`) and rustls with an explicitly chosen crypto provider (ring).

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll};
use std::time::Duration;

use futures::{Sink, Stream};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::CertificateDer;
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::{HeaderName, HeaderValue};
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::{CloseFrame, WebSocketConfig};
use tokio_tungstenite::tungstenite::{self, error::CapacityError, error::ProtocolError};
use tokio_tungstenite::{Connector, MaybeTlsStream, WebSocketStream};

use super::{BufferedProbe, Connection, Incoming, MaybeSend, Transport};
use crate::url::WsUrl;
use crate::{CloseEvent, Error, Message, Options, Utf8Bytes};

/// How much tungstenite reads per system call. It zero-fills that much of its buffer before
/// every read, whatever arrives: at its default of 128 KiB that fill cost more than the rest
/// of a small message's round trip on our side. 64 KiB measured best overall (benches/
/// native_client.rs, against the default in the same runs: 16 B round trip 1.05 instead of
/// 1.18 x tokio-tungstenite, 64 KiB throughput 1.0 instead of 0.9; 32 KiB made 1 MiB
/// messages slower, with 32 reads each).
///
/// The chunk also holds a frame header beyond its 64 KiB, so that a 64 KiB message (a common
/// chunk size for applications too) arrives in one read instead of two: with exactly 64 KiB
/// its last 10 bytes took a second read, with a second 64 KiB zero-fill (callgrind, 64 KiB
/// ping-pong, client side: 358 000 -> 292 000 instructions per round trip; wall-clock
/// differences stayed within the benchmark's noise).
const READ_CHUNK: usize = CHUNK_PAYLOAD + MAX_FRAME_HEADER;

/// The payload one read chunk holds with its header.
const CHUNK_PAYLOAD: usize = 64 << 10;

/// The longest WebSocket frame header: 2 bytes, 8 of extended length, 4 of mask.
const MAX_FRAME_HEADER: usize = 14;

/// tokio-tungstenite on the caller's tokio runtime, or on a background one.
pub(crate) struct Native;

impl Transport for Native {
    type Connection = NativeConnection;
    type Sleep = tokio::time::Sleep;

    fn connect(
        url: &WsUrl,
        options: &Options,
    ) -> impl Future<Output = Result<NativeConnection, Error>> + MaybeSend + 'static {
        let (url, options) = (url.clone(), options.clone());
        async move { open(&url, &options).await }
    }

    fn check_options(options: &Options) -> Result<(), Error> {
        header_pairs(options)?;
        if options.tls.extra_ca_pem.is_some() {
            tls_config(options)?;
        }
        Ok(())
    }

    fn sleep(duration: Duration) -> tokio::time::Sleep {
        tokio::time::sleep(duration)
    }

    fn restart(sleep: Pin<&mut tokio::time::Sleep>, duration: Duration) {
        // No allocation, and while the timer is still registered a later deadline does not
        // wake the runtime's timer driver (a new timer that is the earliest one does: an
        // eventfd write and a spurious epoll wake-up, measured once per 64 KiB message).
        sleep.reset(tokio::time::Instant::now() + duration);
    }

    fn now() -> Duration {
        static START: OnceLock<std::time::Instant> = OnceLock::new();
        START.get_or_init(std::time::Instant::now).elapsed()
    }

    fn spawn(task: impl Future<Output = ()> + MaybeSend + 'static) -> Result<(), Error> {
        // On the caller's runtime when there is one (no cross-runtime wake-ups); otherwise on
        // unisock's own background runtime, so that plain threads need no runtime at all.
        let task = super::wake_batch::Batched(Box::pin(task));
        match tokio::runtime::Handle::try_current() {
            Ok(handle) => drop(handle.spawn(task)),
            Err(_) => drop(background_runtime()?.spawn(task)),
        }
        Ok(())
    }
}

/// One lazily started single-worker runtime for connections opened outside any runtime.
fn background_runtime() -> Result<&'static tokio::runtime::Runtime, Error> {
    static RUNTIME: OnceLock<Result<tokio::runtime::Runtime, String>> = OnceLock::new();
    RUNTIME
        .get_or_init(|| {
            tokio::runtime::Builder::new_multi_thread()
                .worker_threads(1)
                .thread_name("unisock-io")
                .enable_all()
                .build()
                .map_err(|e| e.to_string())
        })
        .as_ref()
        .map_err(|reason| Error::Runtime {
            reason: reason.clone(),
        })
}

/// An open tokio-tungstenite connection.
pub(crate) struct NativeConnection {
    ws: WebSocketStream<MaybeTlsStream<TcpStream>>,
    protocol: String,
    /// The peer's close frame, once received: we still flush our reply before reporting it.
    peer_close: Option<CloseEvent>,
    /// tungstenite's last read ended in `WouldBlock`: it holds no complete frame, so until the
    /// socket is readable again another read can only fail the same way (see `poll_next`).
    read_idle: bool,
}

async fn open(url: &WsUrl, options: &Options) -> Result<NativeConnection, Error> {
    let mut request = url
        .as_str()
        .into_client_request()
        .map_err(|e| handshake_error(url, e))?;
    let headers = request.headers_mut();
    for (name, value) in header_pairs(options)? {
        headers.append(name, value);
    }
    if !options.protocols.is_empty() {
        let offered = options.protocols.join(", ");
        let value = HeaderValue::from_str(&offered).map_err(|_| Error::InvalidOption {
            option: "protocols",
            reason: "a subprotocol contains characters not allowed in a header".into(),
        })?;
        headers.insert("sec-websocket-protocol", value);
    }
    let connector = if url.is_secure() {
        Some(Connector::Rustls(tls_config(options)?))
    } else {
        Some(Connector::Plain)
    };
    let stream = connect_tcp(url).await?;
    let config = WebSocketConfig::default()
        .read_buffer_size(READ_CHUNK)
        .max_message_size(Some(options.max_message_size))
        .max_frame_size(Some(options.max_frame_size));
    let (ws, response) =
        tokio_tungstenite::client_async_tls_with_config(request, stream, Some(config), connector)
            .await
            .map_err(|e| handshake_error(url, e))?;
    let protocol = response
        .headers()
        .get("sec-websocket-protocol")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    tracing::debug!(url = url.redacted(), protocol, "WebSocket open");
    Ok(NativeConnection {
        ws,
        protocol,
        peer_close: None,
        read_idle: false,
    })
}

/// Validates the user's headers (names and values are never logged).
fn header_pairs(options: &Options) -> Result<Vec<(HeaderName, HeaderValue)>, Error> {
    options
        .headers
        .iter()
        .map(|(name, value)| {
            let name =
                HeaderName::from_bytes(name.as_bytes()).map_err(|_| Error::InvalidOption {
                    option: "headers",
                    reason: format!("{name:?} is not a valid header name"),
                })?;
            let value = HeaderValue::from_str(value).map_err(|_| Error::InvalidOption {
                option: "headers",
                reason: format!("the value of header {name} contains invalid characters"),
            })?;
            Ok((name, value))
        })
        .collect()
}

/// Resolves the host and connects to the first address that answers, with `TCP_NODELAY`.
async fn connect_tcp(url: &WsUrl) -> Result<TcpStream, Error> {
    let host = url.host();
    let addrs = tokio::net::lookup_host((host, url.port()))
        .await
        .map_err(|e| Error::Resolve {
            host: host.to_owned(),
            reason: e.to_string(),
        })?;
    let mut last_error = None;
    for addr in addrs {
        match TcpStream::connect(addr).await {
            Ok(stream) => {
                // Nagle would hold back small messages for up to 40 ms waiting for an ACK.
                stream.set_nodelay(true).map_err(io_error)?;
                return Ok(stream);
            }
            Err(e) => last_error = Some(e),
        }
    }
    Err(match last_error {
        Some(e) if e.kind() == io::ErrorKind::ConnectionRefused => Error::ConnectionRefused {
            url: url.redacted().to_owned(),
        },
        Some(e) => io_error(e),
        None => Error::Resolve {
            host: host.to_owned(),
            reason: "no addresses found".into(),
        },
    })
}

/// The rustls client configuration: ring as the crypto provider, chosen explicitly (relying on
/// a process-wide default panics when several providers are compiled in), and the roots the
/// options ask for. The default configuration is built once.
fn tls_config(options: &Options) -> Result<Arc<rustls::ClientConfig>, Error> {
    static DEFAULT: OnceLock<Arc<rustls::ClientConfig>> = OnceLock::new();
    let tls = &options.tls;
    if tls.webpki_roots && tls.extra_ca_pem.is_none() {
        if let Some(config) = DEFAULT.get() {
            return Ok(config.clone());
        }
    }
    let mut roots = rustls::RootCertStore::empty();
    if tls.webpki_roots {
        roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    }
    if let Some(pem) = &tls.extra_ca_pem {
        let invalid = |reason: String| Error::InvalidOption {
            option: "tls.extra_ca_pem",
            reason,
        };
        let mut added = 0;
        for cert in CertificateDer::pem_slice_iter(pem.as_bytes()) {
            let cert = cert.map_err(|e| invalid(format!("unreadable PEM: {e}")))?;
            roots
                .add(cert)
                .map_err(|e| invalid(format!("not a usable CA certificate: {e}")))?;
            added += 1;
        }
        if added == 0 {
            return Err(invalid("no CERTIFICATE block found in the PEM".into()));
        }
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| Error::InvalidOption {
            option: "tls",
            reason: e.to_string(),
        })?
        .with_root_certificates(roots)
        .with_no_client_auth();
    let config = Arc::new(config);
    if tls.webpki_roots && tls.extra_ca_pem.is_none() {
        let _ = DEFAULT.set(config.clone());
    }
    Ok(config)
}

impl NativeConnection {
    /// Whether a read would surely find nothing, checked without reading. tungstenite zero-fills
    /// its whole free read buffer (128 KiB by default) before every read, even one that ends
    /// in `WouldBlock`; the driver polls for input after every write and in every round of its
    /// loop, so most of those reads would find nothing, at several µs apiece.
    ///
    /// Only for plain TCP: a TLS layer may hold decrypted bytes while the socket is not
    /// readable. Registers the waker for readability; also flushes what tungstenite queued on
    /// its own (a pong, a close reply), which a read would otherwise have written.
    fn poll_still_idle(&mut self, cx: &mut Context<'_>) -> bool {
        let MaybeTlsStream::Plain(tcp) = self.ws.get_ref() else {
            return false;
        };
        if tcp.poll_read_ready(cx).is_ready() {
            return false;
        }
        // Nothing to write is the usual case, and costs no system call. An error here is left
        // for the read to report.
        !matches!(Pin::new(&mut self.ws).poll_flush(cx), Poll::Ready(Err(_)))
    }
}

impl Connection for NativeConnection {
    fn protocol(&self) -> &str {
        &self.protocol
    }

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        Pin::new(&mut self.ws).poll_ready(cx).map_err(stream_error)
    }

    fn start_send(&mut self, message: Message) -> Result<(), Error> {
        let message = match message {
            // Both share the payload's buffer: no copy on the way to the socket.
            Message::Text(text) => tungstenite::Message::Text(text.into_tungstenite()),
            Message::Binary(bytes) => tungstenite::Message::Binary(bytes),
        };
        Pin::new(&mut self.ws)
            .start_send(message)
            .map_err(stream_error)
    }

    fn poll_flush(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        Pin::new(&mut self.ws).poll_flush(cx).map_err(stream_error)
    }

    fn start_close(&mut self, code: u16, reason: &str) -> Result<(), Error> {
        let frame = CloseFrame {
            code: CloseCode::from(code),
            reason: reason.into(),
        };
        match Pin::new(&mut self.ws).start_send(tungstenite::Message::Close(Some(frame))) {
            // Closing an already closed connection is not an error worth reporting.
            Ok(())
            | Err(tungstenite::Error::ConnectionClosed | tungstenite::Error::AlreadyClosed) => {
                Ok(())
            }
            Err(e) => Err(stream_error(e)),
        }
    }

    fn start_ping(&mut self) -> Result<(), Error> {
        Pin::new(&mut self.ws)
            .start_send(tungstenite::Message::Ping(tungstenite::Bytes::new()))
            .map_err(stream_error)
    }

    fn poll_next(&mut self, cx: &mut Context<'_>) -> Poll<Incoming> {
        loop {
            if let Some(close) = &self.peer_close {
                // Send our reply to the peer's close frame, then report the close: whether the
                // reply made it or not, the connection is over.
                let close = close.clone();
                return match Pin::new(&mut self.ws).poll_flush(cx) {
                    Poll::Pending => Poll::Pending,
                    Poll::Ready(_) => Poll::Ready(Incoming::Closed(close)),
                };
            }
            if self.read_idle && self.poll_still_idle(cx) {
                return Poll::Pending;
            }
            let item = match Pin::new(&mut self.ws).poll_next(cx) {
                Poll::Pending => {
                    self.read_idle = true;
                    return Poll::Pending;
                }
                Poll::Ready(item) => item,
            };
            self.read_idle = false;
            return Poll::Ready(match item {
                // tungstenite has checked the UTF-8 already (invalid text fails the read with
                // `Utf8`); both keep tungstenite's buffer: no copy, no second pass.
                Some(Ok(tungstenite::Message::Text(text))) => {
                    Incoming::Message(Message::Text(Utf8Bytes::from_tungstenite(text)))
                }
                Some(Ok(tungstenite::Message::Binary(bytes))) => {
                    Incoming::Message(Message::Binary(bytes))
                }
                // Pings are answered by tungstenite; like pongs they only prove the peer alive.
                Some(Ok(tungstenite::Message::Ping(_) | tungstenite::Message::Pong(_))) => {
                    Incoming::Alive
                }
                Some(Ok(tungstenite::Message::Frame(_))) => continue,
                Some(Ok(tungstenite::Message::Close(frame))) => {
                    self.peer_close = Some(match frame {
                        Some(frame) => {
                            CloseEvent::new(frame.code.into(), frame.reason.as_str(), true)
                        }
                        None => CloseEvent::new(1005, "", true),
                    });
                    continue;
                }
                // The connection ended without a close frame: like a browser, report a close
                // with 1006 and no error.
                None
                | Some(Err(
                    tungstenite::Error::ConnectionClosed
                    | tungstenite::Error::AlreadyClosed
                    | tungstenite::Error::Protocol(ProtocolError::ResetWithoutClosingHandshake),
                )) => Incoming::Closed(CloseEvent::abnormal()),
                Some(Err(e)) => Incoming::Failed(stream_error(e)),
            });
        }
    }

    fn buffered_probe(&self) -> Option<BufferedProbe> {
        // Bytes sit in tungstenite's write buffer only until the next flush; the session
        // accounts for them itself.
        None
    }

    fn large_message(&self) -> usize {
        // A frame larger than the read chunk is read into a buffer reserved for it; while its
        // message lives, tungstenite cannot reuse that memory for the next one. Waiting for
        // the consumer pays off only where it could not run meanwhile anyway: on a
        // current-thread runtime (measured: 1 MiB throughput 0.84 -> 0.97 x tokio-tungstenite).
        // Where the driver's thread can read ahead while another consumes, that parallelism
        // is worth more (the plain-thread Socket lost 10-20% at 64 KiB / 1 MiB with the pause).
        match tokio::runtime::Handle::try_current().map(|h| h.runtime_flavor()) {
            Ok(tokio::runtime::RuntimeFlavor::CurrentThread) => CHUNK_PAYLOAD,
            _ => usize::MAX,
        }
    }
}

fn io_error(e: io::Error) -> Error {
    Error::Io {
        kind: e.kind(),
        reason: e.to_string(),
    }
}

/// Whether an I/O error is really a TLS failure reported through the stream.
fn tls_reason(e: &io::Error) -> Option<String> {
    let inner = e.get_ref()?;
    inner
        .downcast_ref::<rustls::Error>()
        .map(|tls| tls.to_string())
}

/// Maps an error of the opening handshake (TLS + HTTP upgrade).
fn handshake_error(url: &WsUrl, e: tungstenite::Error) -> Error {
    let url = url.redacted().to_owned();
    match e {
        tungstenite::Error::Http(response) => Error::HandshakeRejected {
            url,
            status: response.status().as_u16(),
        },
        tungstenite::Error::Tls(e) => Error::Tls {
            url,
            reason: e.to_string(),
        },
        tungstenite::Error::Io(e) => match tls_reason(&e) {
            Some(reason) => Error::Tls { url, reason },
            None => io_error(e),
        },
        tungstenite::Error::Url(e) => Error::InvalidUrl {
            url,
            reason: e.to_string(),
        },
        // The protocol error itself: its `Display` in `tungstenite::Error` repeats the
        // "WebSocket protocol error" that our own message already says.
        tungstenite::Error::Protocol(e) => Error::Handshake {
            url,
            reason: e.to_string(),
        },
        other => Error::Handshake {
            url,
            reason: other.to_string(),
        },
    }
}

/// Maps an error on an open connection.
fn stream_error(e: tungstenite::Error) -> Error {
    match e {
        tungstenite::Error::ConnectionClosed | tungstenite::Error::AlreadyClosed => Error::Closed,
        tungstenite::Error::Io(e) => io_error(e),
        tungstenite::Error::Capacity(CapacityError::MessageTooLong { size, max_size }) => {
            Error::MessageTooLarge {
                size,
                max: max_size,
            }
        }
        tungstenite::Error::Utf8(_) => Error::InvalidUtf8,
        tungstenite::Error::Protocol(ProtocolError::InvalidCloseSequence) => Error::Protocol {
            reason: "invalid close sequence".into(),
        },
        // Not `other.to_string()`: that would say "WebSocket protocol error: " twice.
        tungstenite::Error::Protocol(e) => Error::Protocol {
            reason: e.to_string(),
        },
        other => Error::Protocol {
            reason: other.to_string(),
        },
    }
}
