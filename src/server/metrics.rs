//! [`Metrics`]: the server's named counters and gauges, served at `GET /metrics` in the
//! Prometheus text format (version 0.0.4).
//!
//! A registry of named values, each an atomic that any task updates without locking. The
//! server registers its own ([`Metrics`] lists them); other parts of the server, and programs
//! that embed it, add theirs with [`Metrics::counter`], [`Metrics::gauge`] and
//! [`Metrics::gauge_fn`], and they appear on `/metrics` from then on.

use std::fmt::{self, Write as _};
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use axum::http::{header, HeaderValue};
use axum::response::IntoResponse;
use axum::routing::{get, MethodRouter};

/// The `Content-Type` of `/metrics`: Prometheus text exposition format 0.0.4.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// The metrics of one server: a registry of named counters and gauges, rendered by
/// [`render`](Self::render) (and served at `GET /metrics`) in the Prometheus text format.
///
/// Cheap to clone (clones share the registry) and safe to use from any thread. Updating a
/// value is one atomic operation; only registering and rendering take a lock.
///
/// Every server registers these (get them with
/// [`Server::metrics`](super::Server::metrics)):
///
/// | name | type | what |
/// |---|---|---|
/// | `unisock_connections` | gauge | WebSocket connections open now |
/// | `unisock_connections_total` | counter | WebSocket connections accepted since start |
/// | `unisock_rooms` | gauge | rooms with at least one member on this server |
/// | `unisock_messages_in_total` | counter | text and binary messages received from clients (echo and rooms) |
/// | `unisock_messages_out_total` | counter | text and binary messages sent to clients (echo and rooms) |
///
/// and, with a Redis backplane ([`ServerConfig::redis`](super::ServerConfig::redis)):
///
/// | name | type | what |
/// |---|---|---|
/// | `unisock_backplane_up` | gauge | 1 while both Redis connections (publish, subscribe) are up, else 0 |
/// | `unisock_backplane_published_total` | counter | room messages published to Redis |
/// | `unisock_backplane_publish_errors_total` | counter | room messages that could not be published (Redis down or failing, or the publish queue full): their room's members on other servers did not get them |
/// | `unisock_backplane_received_total` | counter | room messages from other servers delivered to this server's rooms |
/// | `unisock_backplane_missed_total` | counter | messages other servers published that this server knows it did not receive (gaps in their sequence numbers, e.g. while its subscription was down) |
/// | `unisock_backplane_invalid_total` | counter | malformed messages on the backplane's channels, ignored |
/// | `unisock_backplane_reconnects_total` | counter | connections to Redis re-established after a loss |
///
/// and, with acknowledged sessions ([`ServerConfig::sessions`](super::ServerConfig::sessions)):
///
/// | name | type | what |
/// |---|---|---|
/// | `unisock_session_resumes_total` | counter | sessions resumed on this server (from memory, or rebuilt from Redis) |
/// | `unisock_session_remote_resumes_total` | counter | sessions rebuilt from their record and room history in Redis (resumed on another server than the last one) |
/// | `unisock_session_gaps_total` | counter | resumes that end in a gap the client reports: a new session instead (unknown, expired, history trimmed, Redis unavailable), or messages dropped on overflow |
///
/// Adding a value of your own (a name registered twice gives back the same value):
///
/// ```
/// use unisock::server::Metrics;
///
/// let metrics = Metrics::new();
/// let resumes = metrics.counter("unisock_session_resumes_total", "Sessions resumed.");
/// resumes.inc();
/// assert_eq!(metrics.counter("unisock_session_resumes_total", "Sessions resumed.").get(), 1);
/// assert!(metrics.render().contains("\nunisock_session_resumes_total 1\n"));
/// ```
#[derive(Clone, Default)]
pub struct Metrics {
    families: Arc<Mutex<Vec<Family>>>,
}

/// One named value with its help text.
struct Family {
    name: String,
    help: String,
    value: Value,
}

/// Where a family's number comes from.
enum Value {
    Counter(Counter),
    Gauge(Gauge),
    Computed(Arc<dyn Fn() -> i64 + Send + Sync>),
}

/// A number that only goes up (Prometheus `counter`), such as messages sent. Cheap to clone;
/// clones share the value.
#[derive(Clone, Debug, Default)]
pub struct Counter(Arc<AtomicU64>);

/// A number that goes up and down (Prometheus `gauge`), such as connections open. Cheap to
/// clone; clones share the value.
#[derive(Clone, Debug, Default)]
pub struct Gauge(Arc<AtomicI64>);

impl Counter {
    /// Adds one.
    pub fn inc(&self) {
        self.add(1);
    }

    /// Adds `n`.
    pub fn add(&self, n: u64) {
        self.0.fetch_add(n, Ordering::Relaxed);
    }

    /// The value now.
    pub fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

impl Gauge {
    /// Sets the value.
    pub fn set(&self, value: i64) {
        self.0.store(value, Ordering::Relaxed);
    }

    /// Adds one.
    pub fn inc(&self) {
        self.0.fetch_add(1, Ordering::Relaxed);
    }

    /// Subtracts one.
    pub fn dec(&self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }

    /// The value now.
    pub fn get(&self) -> i64 {
        self.0.load(Ordering::Relaxed)
    }
}

impl Metrics {
    /// An empty registry.
    pub fn new() -> Self {
        Metrics::default()
    }

    /// The counter named `name`, registered with `help` if it is new.
    ///
    /// `name` should match `[a-zA-Z_:][a-zA-Z0-9_:]*` and, by Prometheus convention, end in
    /// `_total`. A name that is not valid, or already registered as another type, gets a
    /// counter that works but is not rendered (and a warning in the log): a typo never
    /// breaks the server or the `/metrics` output.
    pub fn counter(&self, name: &str, help: &str) -> Counter {
        self.register(
            name,
            help,
            || Value::Counter(Counter::default()),
            |value| match value {
                Value::Counter(counter) => Some(counter.clone()),
                _ => None,
            },
        )
        .unwrap_or_default()
    }

    /// The gauge named `name`, registered with `help` if it is new. Names as for
    /// [`counter`](Self::counter).
    pub fn gauge(&self, name: &str, help: &str) -> Gauge {
        self.register(
            name,
            help,
            || Value::Gauge(Gauge::default()),
            |value| match value {
                Value::Gauge(gauge) => Some(gauge.clone()),
                _ => None,
            },
        )
        .unwrap_or_default()
    }

    /// Registers a gauge whose value `read` computes at each rendering, for numbers that
    /// something else keeps already (the length of a table, a pool's size). `read` must be
    /// quick and must not use this registry. Ignored (with a warning) if `name` is not valid
    /// or already registered.
    pub fn gauge_fn(&self, name: &str, help: &str, read: impl Fn() -> i64 + Send + Sync + 'static) {
        let read: Arc<dyn Fn() -> i64 + Send + Sync> = Arc::new(read);
        let _ = self.register(name, help, || Value::Computed(read), |_| None::<()>);
    }

    /// Finds `name` (returning what `existing` makes of it) or adds it with `make`'s value
    /// (returning what `existing` makes of the new value).
    fn register<T>(
        &self,
        name: &str,
        help: &str,
        make: impl FnOnce() -> Value,
        existing: impl Fn(&Value) -> Option<T>,
    ) -> Option<T> {
        if !is_valid_name(name) {
            tracing::warn!(
                name = name.escape_debug().to_string(),
                "invalid metric name: not exported"
            );
            return None;
        }
        let mut families = self.families.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(family) = families.iter().find(|family| family.name == name) {
            let found = existing(&family.value);
            if found.is_none() {
                tracing::warn!(name, "metric registered twice with different types");
            }
            return found;
        }
        let value = make();
        let found = existing(&value);
        families.push(Family {
            name: name.to_owned(),
            help: help.to_owned(),
            value,
        });
        found
    }

    /// Every registered value in the Prometheus text format, in registration order:
    /// `# HELP`, `# TYPE` and one sample line each.
    pub fn render(&self) -> String {
        let families = self.families.lock().unwrap_or_else(PoisonError::into_inner);
        let mut out = String::with_capacity(families.len() * 96);
        for family in families.iter() {
            let (kind, value) = match &family.value {
                Value::Counter(counter) => ("counter", Sample::Unsigned(counter.get())),
                Value::Gauge(gauge) => ("gauge", Sample::Signed(gauge.get())),
                Value::Computed(read) => ("gauge", Sample::Signed(read())),
            };
            // Writing to a String cannot fail.
            let _ = writeln!(out, "# HELP {} {}", family.name, EscapeHelp(&family.help));
            let _ = writeln!(out, "# TYPE {} {kind}", family.name);
            let _ = writeln!(out, "{} {value}", family.name);
        }
        out
    }

    /// `GET /metrics`: [`render`](Self::render) with the Prometheus content type.
    pub(crate) fn route<S: Clone + Send + Sync + 'static>(&self) -> MethodRouter<S> {
        let metrics = self.clone();
        get(move || {
            let body = metrics.render();
            async move {
                let mut response = body.into_response();
                response
                    .headers_mut()
                    .insert(header::CONTENT_TYPE, HeaderValue::from_static(CONTENT_TYPE));
                response
            }
        })
    }
}

impl fmt::Debug for Metrics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let families = self.families.lock().unwrap_or_else(PoisonError::into_inner);
        f.debug_struct("Metrics")
            .field(
                "names",
                &families
                    .iter()
                    .map(|family| family.name.as_str())
                    .collect::<Vec<_>>(),
            )
            .finish()
    }
}

/// A sample's number.
enum Sample {
    Unsigned(u64),
    Signed(i64),
}

impl fmt::Display for Sample {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Sample::Unsigned(n) => write!(f, "{n}"),
            Sample::Signed(n) => write!(f, "{n}"),
        }
    }
}

/// Help text escaped for the text format: `\` as `\\`, line feeds as `\n`.
struct EscapeHelp<'a>(&'a str);

impl fmt::Display for EscapeHelp<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for c in self.0.chars() {
            match c {
                '\\' => f.write_str("\\\\")?,
                '\n' => f.write_str("\\n")?,
                '\r' => {}
                c => f.write_char(c)?,
            }
        }
        Ok(())
    }
}

/// Whether `name` is a valid Prometheus metric name: `[a-zA-Z_:][a-zA-Z0-9_:]*`.
fn is_valid_name(name: &str) -> bool {
    let mut bytes = name.bytes();
    bytes
        .next()
        .is_some_and(|b| b.is_ascii_alphabetic() || b == b'_' || b == b':')
        && bytes.all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b':')
}

/// The counters the server updates itself, registered in its [`Metrics`].
#[derive(Clone, Debug)]
pub(crate) struct ServerCounters {
    /// The registry they are in (served at `/metrics`).
    pub(crate) metrics: Metrics,
    /// `unisock_connections_total`.
    pub(crate) connections: Counter,
    /// `unisock_messages_in_total`.
    pub(crate) messages_in: Counter,
    /// `unisock_messages_out_total`.
    pub(crate) messages_out: Counter,
}

impl ServerCounters {
    /// Registers the server's own values in `metrics`: its counters, and gauges reading
    /// `limiter` and `rooms`.
    pub(crate) fn register(
        metrics: &Metrics,
        limiter: &super::limits::ConnectionLimiter,
        rooms: &super::rooms::Rooms,
    ) -> Self {
        let limiter = limiter.clone();
        metrics.gauge_fn(
            "unisock_connections",
            "WebSocket connections open.",
            move || i64::try_from(limiter.open()).unwrap_or(i64::MAX),
        );
        let rooms = rooms.clone();
        metrics.gauge_fn(
            "unisock_rooms",
            "Rooms with at least one member on this server.",
            move || i64::try_from(rooms.len()).unwrap_or(i64::MAX),
        );
        ServerCounters {
            metrics: metrics.clone(),
            connections: metrics.counter(
                "unisock_connections_total",
                "WebSocket connections accepted since the server started.",
            ),
            messages_in: metrics.counter(
                "unisock_messages_in_total",
                "Text and binary messages received from clients (echo and rooms).",
            ),
            messages_out: metrics.counter(
                "unisock_messages_out_total",
                "Text and binary messages sent to clients (echo and rooms).",
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_the_text_format() {
        let metrics = Metrics::new();
        let sent = metrics.counter("a_total", "Things\nsent \\ here.");
        sent.add(3);
        let open = metrics.gauge("b", "Open.");
        open.inc();
        open.inc();
        open.dec();
        metrics.gauge_fn("c", "Computed.", || -5);
        assert_eq!(
            metrics.render(),
            "# HELP a_total Things\\nsent \\\\ here.\n# TYPE a_total counter\na_total 3\n\
             # HELP b Open.\n# TYPE b gauge\nb 1\n\
             # HELP c Computed.\n# TYPE c gauge\nc -5\n"
        );
    }

    #[test]
    fn same_name_same_value_and_bad_names_are_not_exported() {
        let metrics = Metrics::new();
        metrics.counter("x_total", "X.").inc();
        metrics.counter("x_total", "X again.").inc();
        assert_eq!(metrics.counter("x_total", "").get(), 2);
        // Another type under a taken name, or an invalid name: usable, not rendered.
        metrics.gauge("x_total", "").set(7);
        metrics.counter("9bad", "").inc();
        metrics.counter("", "").inc();
        metrics.counter("bad name", "").inc();
        metrics.gauge_fn("x_total", "", || 1);
        assert_eq!(
            metrics.render(),
            "# HELP x_total X.\n# TYPE x_total counter\nx_total 2\n"
        );
        assert!(is_valid_name("a:b_c9") && is_valid_name("_x") && !is_valid_name("é"));
    }
}
