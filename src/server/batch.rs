//! One batching writer for every server connection (plain echo, rooms, acknowledged
//! sessions): messages go into the socket's write buffer and are flushed once per batch, so a
//! burst of messages costs one write system call instead of one each.

use futures::{FutureExt, SinkExt, StreamExt};
use tokio_tungstenite::tungstenite::{Error as WsError, Message};

use super::upgrade::Socket;

/// Most messages written between two flushes, and most messages read before the answers to
/// them are flushed.
pub(crate) const BATCH: usize = 64;

/// Counts what waits in the socket's write buffer and flushes once per batch. tungstenite
/// writes its buffer out whenever it passes `write_buffer_size`, so a batch of large
/// messages is not held back either; the flush only ends the batch.
#[derive(Debug, Default)]
pub(crate) struct BatchWriter {
    unflushed: usize,
}

impl BatchWriter {
    /// Queues `message`; flushes once [`BATCH`] messages are queued.
    pub(crate) async fn feed(
        &mut self,
        socket: &mut Socket,
        message: Message,
    ) -> Result<(), WsError> {
        socket.feed(message).await?;
        self.unflushed += 1;
        if self.unflushed >= BATCH {
            self.flush(socket).await?;
        }
        Ok(())
    }

    /// Whether queued messages wait for a flush.
    pub(crate) fn is_pending(&self) -> bool {
        self.unflushed > 0
    }

    /// Writes out what is queued; nothing to do if nothing is.
    pub(crate) async fn flush(&mut self, socket: &mut Socket) -> Result<(), WsError> {
        if self.unflushed == 0 {
            return Ok(());
        }
        self.unflushed = 0;
        socket.flush().await
    }
}

/// The socket's next item if it has already arrived; `None` (without waiting) if not. Read
/// before flushing, it lets one write carry the answers to a whole burst of messages.
pub(crate) fn already_arrived(socket: &mut Socket) -> Option<Option<Result<Message, WsError>>> {
    socket.next().now_or_never()
}
