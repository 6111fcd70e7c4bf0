//! The session: one background task per connection that connects, reconnects with backoff,
//! keeps the outgoing queue across reconnects and delivers events — written once, against the
//! [`Transport`] trait, for every target.
//!
//! Handles ([`crate::Sender`], [`crate::Socket`]) talk to the task through a command channel
//! (which is also the outgoing queue) and read its progress from [`Shared`]; while nothing is
//! queued and the connection is open they may write into it themselves ([`direct`]), one
//! task wake-up less per message. Events go out
//! through an [`Outlet`]. Reading from the socket pauses while the outlet is full, so a slow
//! consumer slows the peer down (TCP flow control) instead of growing memory without bound.

pub(crate) mod ack;
mod backoff;
mod direct;
mod driver;
mod outlet;
mod shared;
#[cfg(all(test, not(target_arch = "wasm32")))]
mod tests;

use std::sync::Arc;
use std::task::Poll;

use futures::channel::mpsc;
use futures::future::{self, Either};

pub(crate) use outlet::{EventChannel, EventQueue, Gone, Outlet};
pub(crate) use shared::{Handle, Shared};

use backoff::Backoff;
use driver::{Driver, DriverParts, End};
use outlet::deliver;
use shared::Command;

use crate::transport::{Connection, Incoming, Transport};
use crate::url::WsUrl;
use crate::{
    CloseEvent, Direction, Disconnect, Error, Event, Gap, GapReason, Message, Options, ReadyState,
};
use ack::{ClientSession, Frame, Limits, Status};

/// Starts a connection in the background and returns the handle to it.
///
/// `retry_first_connect`: whether a failed first attempt is retried (the callback API) or
/// final (the async `connect`, which reports it as its error).
pub(crate) fn spawn<T: Transport>(
    url: WsUrl,
    options: Options,
    make_outlet: impl FnOnce(&Arc<Shared>) -> Box<dyn Outlet>,
    retry_first_connect: bool,
) -> Result<Handle, Error> {
    T::check_options(&options)?;
    let mut options = options;
    if options.session.is_some() && !options.protocols.iter().any(|p| p == ack::PROTOCOL) {
        // Offered first: a server that speaks it selects it over the application's own.
        options.protocols.insert(0, ack::PROTOCOL.to_owned());
    }
    let client_session = options.session.as_ref().map(|session| {
        ClientSession::new(Limits {
            max_messages: session.max_unacked_messages.max(1),
            max_bytes: session.max_unacked_bytes,
        })
    });
    let (commands, command_rx) = mpsc::unbounded();
    // In the browser `Shared` holds a JS object and is `!Send`; everything runs on one thread
    // there, and one `Arc` keeps one code path for both targets.
    #[cfg_attr(target_arch = "wasm32", allow(clippy::arc_with_non_send_sync))]
    let shared = Arc::new(Shared::new(url.clone(), &options));
    let seed = T::now().as_nanos() as u64 ^ (Arc::as_ptr(&shared) as usize as u64).rotate_left(32);
    let session = Session::<T> {
        url,
        backoff: Backoff::new(options.reconnect.clone(), seed),
        options,
        shared: shared.clone(),
        commands: command_rx,
        commands_done: false,
        outlet: make_outlet(&shared),
        outlet_gone: false,
        retry_first_connect,
        ever_opened: false,
        client_session,
        _transport: std::marker::PhantomData,
    };
    T::spawn(session.run())?;
    Ok(Handle::new(shared, commands))
}

struct Session<T: Transport> {
    url: WsUrl,
    options: Options,
    shared: Arc<Shared>,
    commands: mpsc::UnboundedReceiver<Command>,
    commands_done: bool,
    outlet: Box<dyn Outlet>,
    outlet_gone: bool,
    backoff: Backoff,
    retry_first_connect: bool,
    ever_opened: bool,
    /// The acknowledged session across connections, when asked for.
    client_session: Option<ClientSession>,
    _transport: std::marker::PhantomData<fn() -> T>,
}

/// How one connect attempt ended.
enum Attempt<C> {
    Open(C),
    Failed(Error),
    /// `close()` was called while connecting.
    Abandoned,
}

impl<T: Transport> Session<T> {
    async fn run(mut self) {
        let close = self.connect_and_reconnect().await;
        self.finish(close).await;
    }

    /// Connects, and reconnects as the policy says; returns how the session ended for good.
    async fn connect_and_reconnect(&mut self) -> CloseEvent {
        loop {
            self.shared.enter(ReadyState::Connecting);
            let connection = match self.attempt().await {
                Attempt::Abandoned => return CloseEvent::abnormal(),
                Attempt::Failed(error) => {
                    tracing::debug!(url = self.shared.url(), %error, "connect failed");
                    let retry = (self.ever_opened || self.retry_first_connect)
                        && self.backoff.should_retry(&Disconnect::Error(&error));
                    self.emit(Event::Error(error)).await;
                    if retry && self.wait_before_retry(CloseEvent::abnormal()).await {
                        continue;
                    }
                    return CloseEvent::abnormal();
                }
                Attempt::Open(connection) => connection,
            };
            let (connection, preamble, acknowledged) = match self
                .session_handshake(connection)
                .await
            {
                Ok(opened) => opened,
                Err(error) => {
                    tracing::debug!(url = self.shared.url(), %error, "session handshake failed");
                    let retry = (self.ever_opened || self.retry_first_connect)
                        && self.backoff.should_retry(&Disconnect::Error(&error));
                    self.emit(Event::Error(error)).await;
                    if retry && self.wait_before_retry(CloseEvent::abnormal()).await {
                        continue;
                    }
                    return CloseEvent::abnormal();
                }
            };

            self.ever_opened = true;
            let opened_at = T::now();
            self.shared
                .set_connection(connection.protocol(), connection.buffered_probe());
            self.shared.enter(ReadyState::Open);
            tracing::debug!(url = self.shared.url(), "open");
            let ack_delay = self
                .options
                .session
                .as_ref()
                .map(|s| s.ack_delay)
                .unwrap_or_default();
            let session = match &mut self.client_session {
                Some(client) if acknowledged => Some((&mut client.state, ack_delay)),
                _ => None,
            };
            let driver = Driver::<T>::new(
                connection,
                DriverParts {
                    commands: &mut self.commands,
                    commands_done: &mut self.commands_done,
                    outlet: &mut *self.outlet,
                    outlet_gone: &mut self.outlet_gone,
                    shared: &self.shared,
                    close_timeout: self.options.close_timeout,
                    // In the browser, a connection without a session cannot ping without an
                    // application ping: no heartbeat then (the server declined the session).
                    heartbeat: self.options.heartbeat.clone().filter(|heartbeat| {
                        acknowledged
                            || heartbeat.app_ping.is_some()
                            || !cfg!(target_arch = "wasm32")
                    }),
                    preamble,
                    session,
                },
            );
            let end = driver.run().await;
            self.backoff
                .connection_ended(T::now().saturating_sub(opened_at));

            let close = match end {
                End::Closed { close, by_user } => {
                    tracing::debug!(
                        url = self.shared.url(),
                        code = close.code,
                        by_user,
                        "closed"
                    );
                    if by_user || !self.backoff.should_retry(&Disconnect::Closed(&close)) {
                        return close;
                    }
                    close
                }
                End::Failed(error) => {
                    tracing::debug!(url = self.shared.url(), %error, "connection failed");
                    let retry = self.backoff.should_retry(&Disconnect::Error(&error));
                    self.emit(Event::Error(error)).await;
                    if !retry {
                        return CloseEvent::abnormal();
                    }
                    CloseEvent::abnormal()
                }
            };
            if !self.wait_before_retry(close.clone()).await {
                return close;
            }
        }
    }

    /// After the WebSocket opened: when a session was asked for and the server selected
    /// `unisock.v1`, sends Hello and waits (within the connect timeout) for Welcome. Returns
    /// the connection, the events that follow `Open` (`Session`, gaps) and whether the
    /// connection runs an acknowledged session.
    async fn session_handshake(
        &mut self,
        mut connection: T::Connection,
    ) -> Result<(T::Connection, Vec<Event>, bool), Error> {
        let Some(client) = &mut self.client_session else {
            return Ok((connection, Vec::new(), false));
        };
        if connection.protocol() != ack::PROTOCOL {
            // Plain WebSocket: a session we had is gone.
            let mut events = vec![Event::Session {
                acknowledged: false,
                resumed: false,
            }];
            if client.token.is_some() {
                let received = client.state.received();
                let (first, messages) = client.state.take_unacked();
                client.token = None;
                push_gaps(
                    &mut events,
                    GapReason::NoSession,
                    Some((received + 1, None)),
                    (!messages.is_empty()).then_some((first, messages)),
                );
            }
            return Ok((connection, events, false));
        }
        let hello = client.hello();
        let exchange = async {
            std::future::poll_fn(|cx| connection.poll_ready(cx)).await?;
            connection.start_send(hello)?;
            std::future::poll_fn(|cx| connection.poll_flush(cx)).await?;
            loop {
                return match std::future::poll_fn(|cx| connection.poll_next(cx)).await {
                    Incoming::Message(message) => Ok(Frame::decode(message)?),
                    Incoming::Alive => continue,
                    Incoming::Failed(error) => Err(error),
                    Incoming::Closed(_) => Err(Error::Protocol {
                        reason: "the connection ended during the session handshake".into(),
                    }),
                };
            }
        };
        let timeout = self
            .options
            .connect_timeout
            .unwrap_or(self.options.close_timeout);
        let frame = match future::select(Box::pin(exchange), Box::pin(T::sleep(timeout))).await {
            Either::Left((frame, _)) => frame?,
            Either::Right(_) => {
                return Err(Error::ConnectTimeout {
                    url: self.shared.url().to_owned(),
                    timeout,
                })
            }
        };
        let Frame::Welcome {
            token,
            status,
            acked,
            next,
        } = frame
        else {
            return Err(ack::Violation("expected a welcome frame").into());
        };
        let resumption = client.welcome(token, status, acked, next)?;
        let mut events = vec![Event::Session {
            acknowledged: true,
            resumed: resumption.resumed,
        }];
        let reason = match resumption.status {
            Status::Resumed => GapReason::Overflow,
            Status::Expired => GapReason::SessionExpired,
            Status::New | Status::Unknown => GapReason::SessionUnknown,
        };
        push_gaps(
            &mut events,
            reason,
            resumption.incoming_gap,
            resumption.outgoing_gap,
        );
        Ok((connection, events, true))
    }

    /// One connect attempt with the connect timeout, abandoned if `close()` is called.
    async fn attempt(&mut self) -> Attempt<T::Connection> {
        let (url, options) = match self.endpoint() {
            Ok(endpoint) => endpoint,
            Err(error) => return Attempt::Failed(error),
        };
        let connect = Box::pin(T::connect(&url, &options));
        let timeout = match options.connect_timeout {
            Some(timeout) => Either::Left(T::sleep(timeout)),
            None => Either::Right(future::pending()),
        };
        let abandon = Box::pin(Self::close_requested(&self.shared));
        match future::select(connect, future::select(Box::pin(timeout), abandon)).await {
            Either::Left((Ok(connection), _)) => Attempt::Open(connection),
            Either::Left((Err(error), _)) => Attempt::Failed(error),
            Either::Right((Either::Left(_), _)) => Attempt::Failed(Error::ConnectTimeout {
                url: url.redacted().to_owned(),
                timeout: options.connect_timeout.unwrap_or_default(),
            }),
            Either::Right((Either::Right(_), _)) => Attempt::Abandoned,
        }
    }

    /// The URL and options of the next attempt, from the endpoint provider if there is one.
    fn endpoint(&self) -> Result<(WsUrl, Options), Error> {
        let Some(provider) = &self.options.endpoint else {
            return Ok((self.url.clone(), self.options.clone()));
        };
        let endpoint = provider.get();
        let url = WsUrl::parse(&endpoint.url)?;
        let options = Options {
            headers: endpoint.headers,
            ..self.options.clone()
        };
        T::check_options(&options)?;
        Ok((url, options))
    }

    /// Resolves once `close()` has been called.
    fn close_requested(shared: &Shared) -> impl std::future::Future<Output = ()> + '_ {
        std::future::poll_fn(move |cx| {
            shared.set_driver_waker(cx.waker());
            if shared.close_requested() {
                Poll::Ready(())
            } else {
                Poll::Pending
            }
        })
    }

    /// Announces and waits out the delay before the next attempt; `false` when there is none
    /// (retries used up, or `close()` called).
    async fn wait_before_retry(&mut self, close: CloseEvent) -> bool {
        if self.shared.close_requested() {
            return false;
        }
        let Some((attempt, delay)) = self.backoff.next_attempt() else {
            tracing::debug!(url = self.shared.url(), "giving up reconnecting");
            return false;
        };
        self.shared.set_retry_count(attempt);
        self.shared.enter(ReadyState::Connecting);
        tracing::debug!(url = self.shared.url(), attempt, ?delay, "reconnecting");
        self.emit(Event::Reconnecting {
            attempt,
            delay,
            close,
        })
        .await;
        let sleep = Box::pin(T::sleep(delay));
        let abandon = Box::pin(Self::close_requested(&self.shared));
        matches!(future::select(sleep, abandon).await, Either::Left(_))
    }

    async fn emit(&mut self, event: Event) {
        if !self.outlet_gone {
            deliver(&mut *self.outlet, event).await;
        }
    }

    /// Ends the session: hands back what was never sent, in order, with the final close.
    async fn finish(&mut self, mut close: CloseEvent) {
        self.shared.finish();
        self.commands.close();
        let (mut messages, mut bytes) = (0, 0);
        while let Ok(command) = self.commands.try_recv() {
            if let Command::Send(message) = command {
                messages += 1;
                bytes += message.len() as u64;
                close.unsent.push(message);
            }
        }
        self.shared.hand_back(messages, bytes);
        // Sent in an acknowledged session but never acknowledged: may or may not have arrived.
        if let Some(client) = &mut self.client_session {
            let (first, unacked) = client.state.take_unacked();
            if !unacked.is_empty() {
                let mut events = Vec::new();
                push_gaps(&mut events, GapReason::Ended, None, Some((first, unacked)));
                for event in events {
                    self.emit(event).await;
                }
            }
        }
        tracing::debug!(
            url = self.shared.url(),
            code = close.code,
            clean = close.was_clean,
            unsent = close.unsent.len(),
            "session over"
        );
        self.emit(Event::Close(close)).await;
    }
}

/// Adds the gap events of a lost or partly lost session.
fn push_gaps(
    events: &mut Vec<Event>,
    reason: GapReason,
    incoming: Option<(u64, Option<u64>)>,
    outgoing: Option<(u64, Vec<Message>)>,
) {
    if let Some((first, last)) = incoming {
        events.push(Event::Gap(Gap {
            direction: Direction::Incoming,
            first,
            last,
            reason,
            messages: Vec::new(),
        }));
    }
    if let Some((first, messages)) = outgoing {
        events.push(Event::Gap(Gap {
            direction: Direction::Outgoing,
            first,
            last: Some(first + messages.len() as u64 - 1),
            reason,
            messages,
        }));
    }
}
