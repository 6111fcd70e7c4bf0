//! [`Driver`]: the open phase of one connection. Moves queued messages out, events in,
//! answers the heartbeat and watches the close timer, all from one poll function, so that a
//! single task serves a connection on every target.

use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use futures::channel::mpsc;
use futures::StreamExt;

use super::ack::{AckState, Frame, Received, Violation};
use super::direct::{Locked, SessionSend, SharedConnection};
use super::outlet::{Gone, Outlet};
use super::shared::{Command, Shared};
use crate::transport::{Connection, Incoming, Transport};
use crate::{CloseEvent, Error, Event, Heartbeat, Message};

/// Most rounds of work in one poll before the driver yields to other tasks.
const POLL_BUDGET: usize = 128;

/// How often to look at the browser's `bufferedAmount` while a sender waits for it to drain
/// (the browser has no event for that).
const DRAIN_CHECK: Duration = Duration::from_millis(5);

/// After delivering a large message (see `Connection::large_message`), how long the driver
/// waits for the consumer to take it before reading on. Long enough for a consumer that keeps
/// up, so that the connection reuses the message's read buffer for the next one; short enough
/// that a consumer busy elsewhere delays neither pongs, nor heartbeats, nor a close.
pub(super) const LARGE_MESSAGE_READ_PAUSE: Duration = Duration::from_millis(10);

/// In an acknowledged session, a standalone ack goes out once this many received messages
/// are unacknowledged (or after `SessionOptions::ack_delay`), whichever comes first.
const ACK_EVERY: u64 = 64;

/// How the open phase ended.
pub(crate) enum End {
    /// Closed; `by_user` when this side asked for it (`close()`, or every handle dropped).
    Closed {
        close: CloseEvent,
        by_user: bool,
    },
    Failed(Error),
}

pub(crate) struct Driver<'a, T: Transport> {
    connection: SharedConnection<T::Connection>,
    commands: &'a mut mpsc::UnboundedReceiver<Command>,
    commands_done: &'a mut bool,
    outlet: &'a mut dyn Outlet,
    outlet_gone: &'a mut bool,
    shared: &'a Shared,
    close_timeout: Duration,
    close_deadline: Option<Pin<Box<T::Sleep>>>,
    by_user: bool,
    /// User messages handed to the connection since the last completed flush.
    unflushed_messages: u64,
    unflushed_bytes: u64,
    needs_flush: bool,
    /// An event waiting for room in the outlet.
    pending_event: Option<Event>,
    /// Received messages from this size on pause reading (see `Connection::large_message`).
    large_message: usize,
    /// Reading paused after a large message, until the consumer has taken it or
    /// `read_pause` fires.
    reading_paused: bool,
    /// The pause's timer, kept between pauses and restarted for each large message.
    read_pause: Option<Pin<Box<T::Sleep>>>,
    heartbeat: Option<HeartbeatState<T>>,
    drain_check: Option<Pin<Box<T::Sleep>>>,
    /// Whether the platform keeps a send buffer of its own (the browser's `bufferedAmount`).
    has_platform_buffer: bool,
    /// A failure read from the connection, held back (bounded by the close timeout) until the
    /// consumer has seen every earlier message and its replies are written, as a synchronous
    /// read-reply loop would have done.
    failure: Option<(Error, Pin<Box<T::Sleep>>)>,
    /// Deadline of a close deferred until the last acknowledgements arrive.
    deferred_deadline: Option<Pin<Box<T::Sleep>>>,
    /// Events to deliver first (`Open`, `Session`, gaps), in order.
    preamble: VecDeque<Event>,
    /// The acknowledged session, when this connection runs one.
    session: Option<SessionDriver<'a, T>>,
}

impl<T: Transport> Drop for Driver<'_, T> {
    fn drop(&mut self) {
        // Also when the task is dropped midway: handles must not keep the connection alive.
        self.shared.end_direct();
        // No handle writes any more: the session's state goes back to outlive the connection.
        if let Some(session) = &mut self.session {
            if let Some(send) = self.connection.get().session.take() {
                *session.home = send.state;
            }
        }
    }
}

/// The driver's part of an acknowledged session (the state itself is with the connection,
/// see [`Locked::session`]).
struct SessionDriver<'a, T: Transport> {
    /// Where the state lives between connections; it is moved back when the driver ends.
    home: &'a mut AckState,
    ack_delay: Duration,
    /// A standalone ack goes out when `ack_timer` fires.
    ack_armed: bool,
    /// Kept between acks and restarted (see `Transport::restart`).
    ack_timer: Option<Pin<Box<T::Sleep>>>,
    /// `close()` waits until everything sent is acknowledged (bounded by the close timeout).
    deferred_close: Option<(u16, String)>,
}

struct HeartbeatState<T: Transport> {
    config: Heartbeat,
    timer: Pin<Box<T::Sleep>>,
    /// When the unanswered ping went out.
    ping_sent_at: Option<Duration>,
    last_seen: Duration,
}

pub(crate) struct DriverParts<'a> {
    pub(crate) commands: &'a mut mpsc::UnboundedReceiver<Command>,
    pub(crate) commands_done: &'a mut bool,
    pub(crate) outlet: &'a mut dyn Outlet,
    pub(crate) outlet_gone: &'a mut bool,
    pub(crate) shared: &'a Shared,
    pub(crate) close_timeout: Duration,
    pub(crate) heartbeat: Option<Heartbeat>,
    /// Events delivered before anything else (after `Open`).
    pub(crate) preamble: Vec<Event>,
    /// The acknowledged session's state and ack delay, when this connection runs one.
    pub(crate) session: Option<(&'a mut AckState, Duration)>,
}

impl<'a, T: Transport> Driver<'a, T> {
    pub(crate) fn new(connection: T::Connection, parts: DriverParts<'a>) -> Self {
        let heartbeat = parts.heartbeat.map(|config| HeartbeatState {
            timer: Box::pin(T::sleep(config.interval)),
            config,
            ping_sent_at: None,
            last_seen: T::now(),
        });
        let protocol = connection.protocol().to_owned();
        let has_platform_buffer = connection.buffered_probe().is_some();
        let large_message = connection.large_message();
        let (session, send) = match parts.session {
            Some((home, ack_delay)) => {
                let state = home.take();
                let send = SessionSend {
                    // Everything unacknowledged is resent on this connection first.
                    send_next: state.first_unacked(),
                    state,
                };
                let session = SessionDriver {
                    home,
                    ack_delay,
                    ack_armed: false,
                    ack_timer: None,
                    deferred_close: None,
                };
                (Some(session), Some(send))
            }
            None => (None, None),
        };
        let connection = SharedConnection::new(connection, send);
        parts.shared.allow_direct(connection.writer());
        Driver {
            connection,
            commands: parts.commands,
            commands_done: parts.commands_done,
            outlet: parts.outlet,
            outlet_gone: parts.outlet_gone,
            shared: parts.shared,
            close_timeout: parts.close_timeout,
            close_deadline: None,
            by_user: false,
            unflushed_messages: 0,
            unflushed_bytes: 0,
            needs_flush: false,
            pending_event: Some(Event::Open { protocol }),
            large_message,
            reading_paused: false,
            read_pause: None,
            heartbeat,
            drain_check: None,
            has_platform_buffer,
            failure: None,
            deferred_deadline: None,
            preamble: parts.preamble.into(),
            session,
        }
    }

    /// Runs until the connection ends. Messages handed to the connection but not confirmed
    /// written when it ends are lost in flight; they leave the queue's accounting.
    pub(crate) async fn run(mut self) -> End {
        let end = std::future::poll_fn(|cx| self.poll(cx)).await;
        self.take_direct_writes(true);
        self.shared.end_failure();
        self.shared
            .dequeue(self.unflushed_messages, self.unflushed_bytes);
        if let End::Failed(error) = &end {
            // Tell the peer why (1002, 1007, 1009), best effort and bounded in time.
            let code = error.close_code();
            let started = code != 1006
                && self
                    .connection
                    .get()
                    .connection
                    .start_close(code, "")
                    .is_ok();
            if started {
                let flush =
                    std::future::poll_fn(|cx| self.connection.get().connection.poll_flush(cx));
                let timeout = T::sleep(self.close_timeout);
                let _ = futures::future::select(Box::pin(flush), Box::pin(timeout)).await;
            }
        }
        // Deliver a message read just before the end (e.g. a last message before close).
        let pending = self.pending_event.take();
        for event in pending.into_iter().chain(self.preamble.drain(..)) {
            if !*self.outlet_gone {
                super::outlet::deliver(self.outlet, event).await;
            }
        }
        end
    }

    /// Makes the next flush cover what direct writes left unflushed; with `end`, first stops
    /// handles from writing directly (what they left unflushed is then this driver's).
    fn take_direct_writes(&mut self, end: bool) {
        if end {
            let (messages, bytes) = self.shared.end_direct();
            self.unflushed_messages += messages;
            self.unflushed_bytes += bytes;
        } else if self.shared.has_direct_unflushed() {
            self.needs_flush = true;
        }
    }

    fn closing(&self) -> bool {
        self.close_deadline.is_some()
    }

    /// Whether a `close()` waits for the last acknowledgements.
    fn close_deferred(&self) -> bool {
        self.session
            .as_ref()
            .is_some_and(|s| s.deferred_close.is_some())
    }

    /// Acknowledged session: writes what the replay buffer holds beyond what this connection
    /// has written (resends after a reconnect, then new messages). `Ok(true)` on progress.
    fn poll_session_send(&mut self, cx: &mut Context<'_>) -> Result<bool, Error> {
        let mut locked = self.connection.get();
        let Locked {
            connection,
            session: Some(session),
        } = &mut *locked
        else {
            return Ok(false);
        };
        let mut progress = false;
        // Under one lock: direct writes wait for the resends (they would be declined anyway).
        while session.send_next < session.state.next_seq() {
            match connection.poll_ready(cx) {
                Poll::Pending => break,
                Poll::Ready(result) => result?,
            }
            let seq = session.send_next;
            session.send_next += 1;
            // Anything below the buffer was acknowledged meanwhile: nothing to send.
            let Some(frame) = session.state.data_frame(seq) else {
                continue;
            };
            connection.start_send(frame)?;
            self.needs_flush = true;
            progress = true;
        }
        Ok(progress)
    }

    /// Acknowledged session: sends a standalone ack when enough is unacknowledged or the ack
    /// delay has passed; starts a deferred close once everything is acknowledged.
    ///
    /// The ack timer is looked at in the first round of a poll only (and when new): once
    /// polled it holds this task's waker and wakes it when it fires, so polling it again in
    /// every round (one per incoming message) would only cost time.
    fn poll_session_ack(&mut self, cx: &mut Context<'_>, first_round: bool) -> Result<bool, Error> {
        let Some(session) = &mut self.session else {
            return Ok(false);
        };
        let mut progress = false;
        let (due, unacked) = match &self.connection.get().session {
            Some(send) => (send.state.ack_due(), send.state.unacked_len()),
            None => (0, 0),
        };
        // The timer is kept while acks ride on data (no timer per message): when it fires with
        // nothing due, it is just disarmed.
        if due == 0 {
            if first_round
                && session.ack_armed
                && session
                    .ack_timer
                    .as_mut()
                    .is_some_and(|timer| timer.as_mut().poll(cx).is_ready())
            {
                session.ack_armed = false;
            }
        } else if self.close_deadline.is_none() {
            let delay = session.ack_delay;
            let new = !session.ack_armed;
            let timer = match &mut session.ack_timer {
                Some(timer) if new => {
                    T::restart(timer.as_mut(), delay);
                    timer
                }
                Some(timer) => timer,
                None => session.ack_timer.insert(Box::pin(T::sleep(delay))),
            };
            session.ack_armed = true;
            let timer_fired = (new || first_round) && timer.as_mut().poll(cx).is_ready();
            if due >= ACK_EVERY || timer_fired {
                let mut locked = self.connection.get();
                let Locked {
                    connection,
                    session: send,
                } = &mut *locked;
                if let (Poll::Ready(result), Some(send)) = (connection.poll_ready(cx), send) {
                    result?;
                    // Whatever was received by now (a direct write may have carried the ack
                    // meanwhile: then this one only repeats it).
                    connection.start_send(send.state.ack_frame())?;
                    self.needs_flush = true;
                    session.ack_armed = false;
                    progress = true;
                }
            }
        }
        if unacked == 0 && self.close_deadline.is_none() {
            if let Some((code, reason)) = session.deferred_close.take() {
                self.deferred_deadline = None;
                self.start_close(code, &reason, true)?;
                progress = true;
            }
        }
        Ok(progress)
    }

    /// An incoming message of an acknowledged session: `Some` data to deliver.
    fn on_session_message(&mut self, message: Message) -> Result<Option<Message>, Error> {
        let mut locked = self.connection.get();
        let Locked {
            connection,
            session: Some(session),
        } = &mut *locked
        else {
            return Ok(Some(message));
        };
        match Frame::decode(message)? {
            Frame::Data { seq, ack, message } => {
                session.state.on_ack(ack)?;
                match session.state.on_data(seq)? {
                    Received::New => Ok(Some(message)),
                    Received::Duplicate => Ok(None),
                }
            }
            Frame::Ack { ack } => {
                session.state.on_ack(ack)?;
                Ok(None)
            }
            Frame::Ping { ack } => {
                session.state.on_ack(ack)?;
                // Answered at once, with whatever is acknowledged by now.
                connection.start_send(session.state.ack_frame())?;
                self.needs_flush = true;
                Ok(None)
            }
            Frame::Hello { .. } | Frame::Welcome { .. } => {
                Err(Violation("handshake frame after the handshake").into())
            }
        }
    }

    fn start_close(&mut self, code: u16, reason: &str, by_user: bool) -> Result<(), Error> {
        self.connection.get().connection.start_close(code, reason)?;
        self.needs_flush = true;
        self.by_user = by_user;
        self.shared.enter_closing();
        self.close_deadline = Some(Box::pin(T::sleep(self.close_timeout)));
        Ok(())
    }

    fn poll(&mut self, cx: &mut Context<'_>) -> Poll<End> {
        // Lets a sender waiting on the browser's buffer wake us to start the drain checks.
        self.shared.set_driver_waker(cx.waker());
        for round in 0..POLL_BUDGET {
            let mut progress = false;
            // Read before the writes below: replies the consumer queued before going idle
            // are then surely written before the failure is reported.
            let consumer_caught_up = self.failure.is_some() && self.shared.consumer_caught_up();
            // After that look: a reply the consumer wrote directly is flushed before a held-back
            // failure is reported.
            self.take_direct_writes(false);

            // Deliver what waits for the outlet (also tells whether we may read).
            let may_read =
                self.poll_outlet(cx).is_ready() && self.failure.is_none() && !self.read_paused(cx);

            // Acknowledged session: resends and new messages from the replay buffer.
            match self.poll_session_send(cx) {
                Ok(true) => progress = true,
                Ok(false) => {}
                Err(e) => return Poll::Ready(self.fail(e)),
            }
            // Outgoing: commands into the connection until it pushes back.
            while !*self.commands_done && !self.closing() && !self.close_deferred() {
                let ready = {
                    let mut locked = self.connection.get();
                    if let Some(session) = &locked.session {
                        // Resends first; while the replay buffer is full, messages wait in the
                        // queue for acknowledgements.
                        if session.send_next < session.state.next_seq()
                            || !session.state.has_room(1)
                        {
                            break;
                        }
                    }
                    locked.connection.poll_ready(cx)
                };
                match ready {
                    Poll::Pending => break,
                    Poll::Ready(Err(e)) => return Poll::Ready(self.fail(e)),
                    Poll::Ready(Ok(())) => {}
                }
                match self.commands.poll_next_unpin(cx) {
                    Poll::Pending => break,
                    Poll::Ready(None) => *self.commands_done = true,
                    Poll::Ready(Some(Command::Send(message))) => {
                        let size = message.len() as u64;
                        // Counted before the attempt: a failed write loses it in flight.
                        self.unflushed_messages += 1;
                        self.unflushed_bytes += size;
                        let sent = {
                            let mut locked = self.connection.get();
                            let Locked {
                                connection,
                                session,
                            } = &mut *locked;
                            match session {
                                // Numbered and kept for resending until acknowledged, in the
                                // same step as written: a direct write cannot come between.
                                Some(session) => connection.start_send(session.number(message)),
                                None => connection.start_send(message),
                            }
                        };
                        // Only now: until here direct writes wait (they must not overtake).
                        self.shared.left_channel();
                        if let Err(e) = sent {
                            return Poll::Ready(self.fail(e));
                        }
                        self.needs_flush = true;
                        progress = true;
                    }
                    Poll::Ready(Some(Command::Close { code, reason })) => {
                        let unacked = self
                            .connection
                            .get()
                            .session
                            .as_ref()
                            .map_or(0, |send| send.state.unacked_len());
                        if let Some(session) = &mut self.session {
                            if unacked > 0 {
                                // Close once the last messages are acknowledged.
                                session.deferred_close = Some((code, reason));
                                self.by_user = true;
                                self.shared.enter_closing();
                                self.deferred_deadline =
                                    Some(Box::pin(T::sleep(self.close_timeout)));
                                progress = true;
                                continue;
                            }
                        }
                        if let Err(e) = self.start_close(code, &reason, true) {
                            return Poll::Ready(End::Failed(e));
                        }
                        progress = true;
                    }
                }
            }
            if self.needs_flush {
                let flushed = {
                    let mut locked = self.connection.get();
                    let flushed = locked.connection.poll_flush(cx);
                    if let Poll::Ready(Ok(())) = flushed {
                        // Under the lock: exactly the direct writes this flush covered.
                        self.shared.direct_flushed();
                    }
                    flushed
                };
                self.shared.set_driver_flushing(flushed.is_pending());
                match flushed {
                    Poll::Pending => {}
                    Poll::Ready(Err(e)) => return Poll::Ready(self.fail(e)),
                    Poll::Ready(Ok(())) => {
                        self.needs_flush = false;
                        self.shared
                            .dequeue(self.unflushed_messages, self.unflushed_bytes);
                        self.unflushed_messages = 0;
                        self.unflushed_bytes = 0;
                    }
                }
            }

            // Incoming, only while the outlet has room (or nobody listens at all).
            if may_read {
                let incoming = self.connection.get().connection.poll_next(cx);
                match incoming {
                    Poll::Pending => {}
                    Poll::Ready(incoming) => {
                        progress = true;
                        if let Some(heartbeat) = &mut self.heartbeat {
                            heartbeat.last_seen = T::now();
                        }
                        match incoming {
                            Incoming::Message(message) => {
                                let message = match self.on_session_message(message) {
                                    Ok(Some(message)) => message,
                                    Ok(None) => continue,
                                    Err(e) => return Poll::Ready(self.fail(e)),
                                };
                                if !*self.outlet_gone && !self.is_app_pong(&message) {
                                    if message.len() >= self.large_message
                                        && self.outlet.handled_later()
                                    {
                                        match &mut self.read_pause {
                                            Some(timer) => {
                                                T::restart(timer.as_mut(), LARGE_MESSAGE_READ_PAUSE)
                                            }
                                            None => {
                                                self.read_pause = Some(Box::pin(T::sleep(
                                                    LARGE_MESSAGE_READ_PAUSE,
                                                )))
                                            }
                                        }
                                        self.reading_paused = true;
                                    }
                                    self.pending_event = Some(Event::Message(message));
                                }
                            }
                            Incoming::Alive => {}
                            Incoming::Closed(close) => {
                                let by_user = self.by_user;
                                return Poll::Ready(End::Closed { close, by_user });
                            }
                            Incoming::Failed(e)
                                if self.outlet.handled_later() && !*self.outlet_gone =>
                            {
                                self.shared.begin_failure();
                                let deadline = Box::pin(T::sleep(self.close_timeout));
                                self.failure = Some((e, deadline));
                            }
                            Incoming::Failed(e) => return Poll::Ready(End::Failed(e)),
                        }
                    }
                }
            }

            if let Some((_, deadline)) = &mut self.failure {
                let waited_enough = deadline.as_mut().poll(cx).is_ready();
                let replies_written =
                    consumer_caught_up && self.pending_event.is_none() && !self.needs_flush;
                if replies_written || waited_enough || *self.outlet_gone {
                    return Poll::Ready(self.fail_now());
                }
            }

            match self.poll_session_ack(cx, round == 0) {
                Ok(true) => progress = true,
                Ok(false) => {}
                Err(e) => return Poll::Ready(self.fail(e)),
            }
            if let Some(deadline) = &mut self.deferred_deadline {
                if deadline.as_mut().poll(cx).is_ready() {
                    // The last acknowledgements did not come: close anyway; what is still
                    // unacknowledged is reported as a gap at the end.
                    self.deferred_deadline = None;
                    if let Some((code, reason)) =
                        self.session.as_mut().and_then(|s| s.deferred_close.take())
                    {
                        if let Err(e) = self.start_close(code, &reason, true) {
                            return Poll::Ready(End::Failed(e));
                        }
                        progress = true;
                    }
                }
            }

            // Every handle is gone: nobody can send or listen any more, so say goodbye.
            if *self.commands_done && *self.outlet_gone && !self.closing() && !self.close_deferred()
            {
                if let Err(e) = self.start_close(1000, "", true) {
                    return Poll::Ready(End::Failed(e));
                }
                progress = true;
            }

            if let Some(deadline) = &mut self.close_deadline {
                if deadline.as_mut().poll(cx).is_ready() {
                    tracing::debug!(
                        url = self.shared.url(),
                        "peer did not answer our close frame"
                    );
                    let by_user = self.by_user;
                    return Poll::Ready(End::Closed {
                        close: CloseEvent::abnormal(),
                        by_user,
                    });
                }
            }

            match self.poll_heartbeat(cx) {
                Poll::Ready(Err(e)) => return Poll::Ready(End::Failed(e)),
                Poll::Ready(Ok(())) => progress = true,
                Poll::Pending => {}
            }
            self.poll_drain_check(cx);

            if !progress {
                return Poll::Pending;
            }
        }
        // Budget spent: let other tasks run, then continue.
        cx.waker().wake_by_ref();
        Poll::Pending
    }

    /// Whether reading waits for the consumer to take a large message (see
    /// [`LARGE_MESSAGE_READ_PAUSE`]). Called after the outlet got the message.
    fn read_paused(&mut self, cx: &mut Context<'_>) -> bool {
        let (true, Some(pause)) = (self.reading_paused, &mut self.read_pause) else {
            return false;
        };
        if *self.outlet_gone
            || self.shared.caught_up_or_notify()
            || pause.as_mut().poll(cx).is_ready()
        {
            // The timer stays (restarted by the next pause).
            self.reading_paused = false;
            return false;
        }
        true
    }

    /// A failure while writing: the held-back failure, if any, is the one to report.
    fn fail(&mut self, error: Error) -> End {
        match self.failure.take() {
            Some((original, _)) => End::Failed(original),
            None => End::Failed(error),
        }
    }

    fn fail_now(&mut self) -> End {
        let (error, _) = self.failure.take().expect("a held-back failure");
        End::Failed(error)
    }

    fn is_app_pong(&self, message: &Message) -> bool {
        self.heartbeat
            .as_ref()
            .and_then(|h| h.config.app_ping.as_ref())
            .is_some_and(|app| &app.pong == message)
    }

    /// Pings after `interval` of silence; declares the peer dead when nothing at all arrives
    /// within `timeout` after the ping. `Ready(Ok)` when it sent a ping.
    fn poll_heartbeat(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        let Some(heartbeat) = &mut self.heartbeat else {
            return Poll::Pending;
        };
        if self.close_deadline.is_some() || heartbeat.timer.as_mut().poll(cx).is_pending() {
            return Poll::Pending;
        }
        let now = T::now();
        if let Some(sent) = heartbeat.ping_sent_at {
            if heartbeat.last_seen < sent {
                return Poll::Ready(Err(Error::HeartbeatTimeout {
                    timeout: heartbeat.config.timeout,
                }));
            }
            heartbeat.ping_sent_at = None;
        }
        let idle = now.saturating_sub(heartbeat.last_seen);
        if idle < heartbeat.config.interval {
            // Traffic proved the peer alive recently: no ping needed yet.
            heartbeat.timer = Box::pin(T::sleep(heartbeat.config.interval - idle));
            // Poll the new timer once so that it registers its waker.
            let _ = heartbeat.timer.as_mut().poll(cx);
            return Poll::Pending;
        }
        let mut locked = self.connection.get();
        let Locked {
            connection,
            session,
        } = &mut *locked;
        let sent = match (session, &heartbeat.config.app_ping) {
            // The session's own ping, answered with an ack (on every target).
            (Some(session), _) => connection.start_send(session.state.ping_frame()),
            (None, Some(app)) => connection.start_send(app.ping.clone()),
            (None, None) => connection.start_ping(),
        };
        drop(locked);
        sent?;
        self.needs_flush = true;
        heartbeat.ping_sent_at = Some(now);
        heartbeat.timer = Box::pin(T::sleep(heartbeat.config.timeout));
        let _ = heartbeat.timer.as_mut().poll(cx);
        Poll::Ready(Ok(()))
    }

    /// While a sender waits for the browser's `bufferedAmount` to drain, look again every few
    /// milliseconds and wake it (natively the session's own accounting wakes it on flush).
    fn poll_drain_check(&mut self, cx: &mut Context<'_>) {
        if !self.has_platform_buffer || !self.shared.has_waiters() {
            self.drain_check = None;
            return;
        }
        if self.shared.platform_within(0) {
            // Drained: let the waiting senders look at once.
            self.drain_check = None;
            self.shared.wake_waiters();
            return;
        }
        let timer = self
            .drain_check
            .get_or_insert_with(|| Box::pin(T::sleep(DRAIN_CHECK)));
        if timer.as_mut().poll(cx).is_ready() {
            self.shared.wake_waiters();
            let timer = self.drain_check.insert(Box::pin(T::sleep(DRAIN_CHECK)));
            let _ = timer.as_mut().poll(cx);
        }
    }

    /// Delivers the pending event if there is room; `Ready` when nothing is pending any more.
    fn poll_outlet(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        loop {
            if *self.outlet_gone {
                self.pending_event = None;
                return Poll::Ready(());
            }
            match self.outlet.poll_ready(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Err(Gone)) => *self.outlet_gone = true,
                Poll::Ready(Ok(())) => match self.pending_event.take() {
                    // Delivered; check for room for the next one.
                    Some(event) => self.outlet.emit(event),
                    None => match self.preamble.pop_front() {
                        Some(event) => self.outlet.emit(event),
                        None => return Poll::Ready(()),
                    },
                },
            }
        }
    }
}
