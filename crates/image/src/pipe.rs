//! Byte-budgeted hand-off from async code to one blocking consumer thread.
//!
//! The async side [`PipeSender::send`]s `Bytes` and waits only when the bytes still
//! queued or being processed by the consumer exceed the budget; the consumer thread
//! ([`PipeReceiver::blocking_recv`]) gives the budget back by dropping each [`Chunk`].
//! Bounding by bytes rather than by chunk count keeps memory bounded whatever the
//! chunk sizes the HTTP stack delivers. The sender says "this was the whole input"
//! with [`PipeSender::finish`]; a sender dropped without it is reported as
//! [`Recv::Abandoned`], so the consumer can tell a complete input from a cut one.

use std::sync::Arc;

use bytes::Bytes;
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc};

/// One piece of input; dropping it returns its bytes to the budget.
pub(crate) struct Chunk {
    pub(crate) data: Bytes,
    _permit: Option<OwnedSemaphorePermit>,
}

enum Msg {
    Data(Chunk),
    End,
}

/// What the consumer thread received.
pub(crate) enum Recv {
    Data(Chunk),
    /// The sender called [`PipeSender::finish`]: the input is complete.
    End,
    /// The sender was dropped without `finish`: the input is incomplete.
    Abandoned,
}

/// The input was not delivered: the consumer is gone.
#[derive(Debug)]
pub(crate) struct Closed;

pub(crate) struct PipeSender {
    tx: mpsc::UnboundedSender<Msg>,
    budget: Arc<Semaphore>,
    max: u32,
}

pub(crate) struct PipeReceiver {
    rx: mpsc::UnboundedReceiver<Msg>,
    budget: Arc<Semaphore>,
}

/// A pipe that lets at most `budget` bytes (or one larger chunk) be in flight.
pub(crate) fn pipe(budget: usize) -> (PipeSender, PipeReceiver) {
    let max = u32::try_from(budget.max(1)).unwrap_or(u32::MAX);
    let sem = Arc::new(Semaphore::new(max as usize));
    let (tx, rx) = mpsc::unbounded_channel();
    (
        PipeSender {
            tx,
            budget: sem.clone(),
            max,
        },
        PipeReceiver { rx, budget: sem },
    )
}

impl PipeSender {
    /// Queues `data`, waiting while the budget is used up.
    pub(crate) async fn send(&self, data: Bytes) -> Result<(), Closed> {
        let want = u32::try_from(data.len()).unwrap_or(u32::MAX).min(self.max);
        let permit = if want == 0 {
            None
        } else {
            Some(
                self.budget
                    .clone()
                    .acquire_many_owned(want)
                    .await
                    .map_err(|_| Closed)?,
            )
        };
        self.tx
            .send(Msg::Data(Chunk {
                data,
                _permit: permit,
            }))
            .map_err(|_| Closed)
    }

    /// Marks the input as complete.
    pub(crate) fn finish(self) -> Result<(), Closed> {
        self.tx.send(Msg::End).map_err(|_| Closed)
    }
}

impl PipeReceiver {
    /// Blocks the calling (non-async) thread until the next message.
    pub(crate) fn blocking_recv(&mut self) -> Recv {
        match self.rx.blocking_recv() {
            Some(Msg::Data(c)) => Recv::Data(c),
            Some(Msg::End) => Recv::End,
            None => Recv::Abandoned,
        }
    }
}

impl Drop for PipeReceiver {
    fn drop(&mut self) {
        // A sender waiting for budget must learn that nobody will consume it.
        self.budget.close();
    }
}
