//! [`Outlet`]: where the driver delivers events (a bounded channel, or the user's callbacks).

use std::task::{Context, Poll};

use futures::channel::mpsc;

use crate::transport::MaybeSend;
use crate::Event;

/// Where the driver delivers events.
pub(crate) trait Outlet: MaybeSend + 'static {
    /// Ready for one more event; `Err(Gone)` once nobody listens any more.
    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Gone>>;
    /// Delivers one event; only called after `poll_ready` returned `Ready(Ok(()))`.
    fn emit(&mut self, event: Event);
}

/// The receiving side of an [`Outlet`] has gone away.
#[derive(Debug)]
pub(crate) struct Gone;

impl Outlet for mpsc::Sender<Event> {
    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Gone>> {
        mpsc::Sender::poll_ready(self, cx).map_err(|_| Gone)
    }

    fn emit(&mut self, event: Event) {
        // Cannot fail after poll_ready, unless the receiver was dropped in between: then
        // nobody wants the event.
        let _ = self.try_send(event);
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
