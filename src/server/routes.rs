//! The HTTP surface (routes listed in the [`server`](super) module docs): the router, its
//! handlers, and the checks an upgrade passes in order — query (400), `Origin` (403),
//! handshake headers (426/400), shutdown and connection limit (503).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Path, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;

use super::clients::ClientRegistry;
use super::config::ServerConfig;
use super::connection::{Connection, Mode};
use super::limits::ConnectionLimiter;
use super::metrics::{Metrics, ServerCounters};
use super::origin::AllowedOrigins;
use super::params::{self, SocketParams};
use super::rooms::Rooms;
use super::sessions::{Route, SessionCounters, SessionLimits, SessionStore};
use super::shutdown::{Phase, PhaseWatch};
use super::static_files;
use super::upgrade::UpgradeRequest;

/// State shared by every handler.
#[derive(Clone, Debug)]
pub(crate) struct AppState {
    inner: Arc<Shared>,
}

#[derive(Debug)]
struct Shared {
    limiter: ConnectionLimiter,
    rooms: Rooms,
    sessions: Option<SessionStore>,
    clients: ClientRegistry,
    origins: AllowedOrigins,
    ws_config: WebSocketConfig,
    phase: PhaseWatch,
    shutdown_timeout: Duration,
    ping_interval: Option<Duration>,
    next_id: AtomicU64,
    /// The server's counters and its `/metrics` registry.
    counters: ServerCounters,
}

/// Where an accepted WebSocket goes.
enum Target {
    Echo,
    Room(String),
}

impl AppState {
    /// State for a server with `config`, counting connections in `limiter` and following the
    /// shutdown `phase`, with its values in `metrics`.
    pub(crate) fn new(
        config: &ServerConfig,
        limiter: ConnectionLimiter,
        phase: PhaseWatch,
        metrics: &Metrics,
    ) -> Self {
        let mut ws_config = WebSocketConfig::default();
        ws_config.read_buffer_size = config.read_buffer_size;
        ws_config.write_buffer_size = config.write_buffer_size;
        // One frame may be as large as a whole message; both limits are the same number, so a
        // single oversized frame is refused from its header, before its payload is buffered.
        ws_config.max_message_size = Some(config.max_message_size);
        ws_config.max_frame_size = Some(config.max_message_size);
        // Room for two messages of the largest size (at least 1 MiB) per member.
        let rooms = Rooms::new(config.max_message_size.saturating_mul(2).max(1 << 20));
        let counters = ServerCounters::register(metrics, &limiter, &rooms);
        let rooms = attach_backplane(rooms, config, metrics, &phase);
        let sessions = config.sessions.then(|| {
            let limits = SessionLimits {
                grace: config.session_grace,
                buffer: crate::session::ack::Limits {
                    max_messages: config.session_buffer_messages,
                    max_bytes: config.session_buffer_bytes,
                },
                max_sessions: config.max_sessions,
            };
            SessionStore::new(limits, rooms.clone(), SessionCounters::register(metrics))
        });
        AppState {
            inner: Arc::new(Shared {
                limiter,
                rooms,
                sessions,
                clients: ClientRegistry::default(),
                origins: AllowedOrigins::new(&config.allowed_origins),
                ws_config,
                phase,
                shutdown_timeout: config.shutdown_timeout,
                ping_interval: config.ping_interval,
                next_id: AtomicU64::new(1),
                counters,
            }),
        }
    }

    /// Checks and accepts a WebSocket upgrade for `target`, or answers why not.
    fn open(&self, mut request: Request, target: Target) -> Response {
        let state = &self.inner;
        // Only the path is logged: the query string may carry secrets.
        let path = request.uri().path().to_owned();
        let params = match SocketParams::parse(request.uri().query()) {
            Ok(params) => params,
            Err(message) => return (StatusCode::BAD_REQUEST, message).into_response(),
        };
        if !state.origins.allows(request.headers()) {
            tracing::info!(%path, "refused a WebSocket: origin not allowed");
            return (StatusCode::FORBIDDEN, "origin not allowed\n").into_response();
        }
        let upgrade = match UpgradeRequest::from_request(&mut request, state.sessions.is_some()) {
            Ok(upgrade) => upgrade,
            Err(rejection) => return rejection.into_response(),
        };
        if state.phase.current() != Phase::Running {
            return unavailable("server shutting down\n");
        }
        let Some(permit) = state.limiter.try_acquire() else {
            tracing::warn!(%path, open = state.limiter.open(), "refused a WebSocket: too many connections");
            return unavailable("too many connections\n");
        };
        let id = state.next_id.fetch_add(1, Ordering::Relaxed);
        state.counters.connections.inc();
        let session_store = state
            .sessions
            .as_ref()
            .filter(|_| upgrade.protocol() == Some(crate::session::ack::PROTOCOL));
        let mode = match (target, session_store) {
            (Target::Echo, Some(store)) => Mode::Session {
                store: store.clone(),
                route: Route::Echo,
            },
            (Target::Room(name), Some(store)) => Mode::Session {
                store: store.clone(),
                route: Route::Room {
                    name,
                    notify_self: params.notify_self,
                },
            },
            (Target::Echo, None) => Mode::Echo,
            (Target::Room(room), None) => {
                // Joined before the handshake ends: nothing the room says from now on is
                // missed.
                let (membership, inbox) = state.rooms.join(&room, id);
                Mode::Room {
                    membership,
                    inbox,
                    notify_self: params.notify_self,
                }
            }
        };
        let connection = Connection {
            id,
            path,
            protocol: upgrade.protocol(),
            mode,
            named: params
                .client_id
                .map(|client_id| state.clients.register(&client_id, id)),
            phase: state.phase.clone(),
            shutdown_timeout: state.shutdown_timeout,
            ping_interval: state.ping_interval,
            permit,
            counters: state.counters.clone(),
        };
        upgrade.accept(state.ws_config, move |socket| connection.run(socket))
    }
}

/// The application: WebSocket routes, `/drop`, and the static files.
pub(crate) fn router(state: AppState, config: &ServerConfig) -> Router {
    Router::new()
        .route("/echo", get(echo))
        .route("/rooms/{room}", get(room))
        .route("/drop", post(drop_client))
        .route("/metrics", state.inner.counters.metrics.route())
        .with_state(state)
        .nest_service("/pkg", static_files::serve_dir(&config.pkg_dir(), "/pkg"))
        .fallback_service(static_files::serve_dir(&config.root, ""))
}

/// `GET /echo`.
async fn echo(State(state): State<AppState>, request: Request) -> Response {
    state.open(request, Target::Echo)
}

/// `GET /rooms/{room}`.
async fn room(
    State(state): State<AppState>,
    Path(room): Path<String>,
    request: Request,
) -> Response {
    if !params::is_valid_name(&room) {
        return (
            StatusCode::BAD_REQUEST,
            "room names are 1-64 characters of A-Z a-z 0-9 _ . -\n",
        )
            .into_response();
    }
    state.open(request, Target::Room(room))
}

/// `POST /drop?client_id=ID`.
async fn drop_client(State(state): State<AppState>, headers: HeaderMap, uri: Uri) -> Response {
    let state = &state.inner;
    if !state.origins.allows(&headers) {
        return (StatusCode::FORBIDDEN, "origin not allowed\n").into_response();
    }
    let client_id = match params::drop_target(uri.query()) {
        Ok(client_id) => client_id,
        Err(message) => return (StatusCode::BAD_REQUEST, message).into_response(),
    };
    match state.clients.kill(&client_id) {
        0 => (StatusCode::NOT_FOUND, "no connection with that client_id\n").into_response(),
        dropped => {
            tracing::info!(dropped, "dropped connections on request");
            StatusCode::NO_CONTENT.into_response()
        }
    }
}

/// `rooms`, with the Redis backplane of `config` if it has one (rooms as they are otherwise:
/// no Redis code runs).
fn attach_backplane(
    rooms: Rooms,
    config: &ServerConfig,
    metrics: &Metrics,
    phase: &PhaseWatch,
) -> Rooms {
    match &config.redis {
        Some(redis) => super::backplane::attach(rooms, redis, metrics, phase, config.session_grace),
        None => rooms,
    }
}

/// 503 with a hint to retry a little later.
fn unavailable(message: &'static str) -> Response {
    let mut response = (StatusCode::SERVICE_UNAVAILABLE, message).into_response();
    response
        .headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
    response
}
