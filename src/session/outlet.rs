//! [`Outlet`]: where the driver delivers events (a bounded channel, or the user's callbacks).

use std::task::{Context, Poll};

use std::sync::Arc;

use futures::channel::mpsc;

use super::shared::Shared;

use crate::transport::MaybeSend;
use crate::Event;

/// Where the driver delivers events.
pub(crate) trait Outlet: MaybeSend + 'static {
    /// Ready for one more event; `Err(Gone)` once nobody listens any more.
    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Gone>>;
    /// Delivers one event; only called after `poll_ready` returned `Ready(Ok(()))`.
    fn emit(&mut self, event: Event);
    /// Whether events are handled later by another task (a channel) rather than during
    /// `emit` (callbacks). Then, before failing a connection, the driver waits until the
    /// consumer has caught up, so that its replies to earlier messages still go out.
    fn handled_later(&self) -> bool {
        false
    }
}

/// The receiving side of an [`Outlet`] has gone away.
#[derive(Debug)]
pub(crate) struct Gone;

/// The channel behind a [`crate::Receiver`], counting what goes in (the receiver counts what
/// comes out, so that the driver can tell when the consumer has caught up).
pub(crate) struct EventChannel {
    pub(crate) sender: mpsc::Sender<Event>,
    pub(crate) shared: Arc<Shared>,
}

impl Outlet for EventChannel {
    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Gone>> {
        self.sender.poll_ready(cx).map_err(|_| Gone)
    }

    fn emit(&mut self, event: Event) {
        // Cannot fail after poll_ready, unless the receiver was dropped in between: then
        // nobody wants the event.
        if self.sender.try_send(event).is_ok() {
            self.shared.event_emitted();
        }
    }

    fn handled_later(&self) -> bool {
        true
    }
}

/// The receiving end of an event channel, as held by a `Receiver` or a `Socket`. Dropping it
/// wakes the driver: a channel's receiver going away wakes only senders parked on a full
/// channel, so without this a connection whose handles were all dropped could stay open.
pub(crate) struct EventQueue {
    events: mpsc::Receiver<Event>,
    shared: Arc<Shared>,
}

impl EventQueue {
    pub(crate) fn new(events: mpsc::Receiver<Event>, shared: Arc<Shared>) -> Self {
        EventQueue { events, shared }
    }
}

impl std::ops::Deref for EventQueue {
    type Target = mpsc::Receiver<Event>;
    fn deref(&self) -> &Self::Target {
        &self.events
    }
}

impl std::ops::DerefMut for EventQueue {
    fn deref_mut(&mut self) -> &mut Self::Target {
        &mut self.events
    }
}

impl Drop for EventQueue {
    fn drop(&mut self) {
        // Closed first, so that the woken driver sees `Gone`.
        self.events.close();
        self.shared.wake_driver();
    }
}

/// Waits for room in the outlet, then delivers (or drops the event if nobody listens).
pub(crate) async fn deliver(outlet: &mut dyn Outlet, event: Event) {
    if std::future::poll_fn(|cx| outlet.poll_ready(cx))
        .await
        .is_ok()
    {
        outlet.emit(event);
    }
}
