//! A page of a server list as it is read: batches of rows handed over while the
//! next rows are still being read and decoded, so the caller renders one batch on
//! its thread while the database thread produces the next (two cores, one
//! request). [`Batches::collect`] turns it into a whole [`Page`].

use std::ops::ControlFlow;

use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::error::{Error, Result};

/// Rows per batch: small enough that rendering starts early, large enough that
/// the hand-over (one wake-up per batch) costs nothing next to the rows.
const BATCH: usize = 100;

/// A page of servers and whether more may follow.
pub struct Page<T> {
    pub servers: Vec<T>,
    pub more: bool,
    pub limit: usize,
}

/// The rows of one page in reading order, at most `limit` of them; the reader
/// reads one row past the page to know whether more follow.
pub struct Batches<T> {
    limit: usize,
    seen: usize,
    more: bool,
    rx: Option<mpsc::UnboundedReceiver<Result<Vec<T>>>>,
    reader: Option<JoinHandle<()>>,
}

/// The reader's end: sends batches; a send fails once the page's consumer is gone.
pub(crate) struct BatchSender<T> {
    tx: mpsc::UnboundedSender<Result<Vec<T>>>,
}

impl<T> Clone for BatchSender<T> {
    fn clone(&self) -> Self {
        BatchSender {
            tx: self.tx.clone(),
        }
    }
}

/// Rows gathered on the reading thread until a batch is full.
pub(crate) struct Batch<T> {
    rows: Vec<T>,
    tx: BatchSender<T>,
}

impl<T> Batch<T> {
    pub(crate) fn new(tx: BatchSender<T>) -> Batch<T> {
        Batch {
            rows: Vec::with_capacity(BATCH),
            tx,
        }
    }

    pub(crate) fn push(&mut self, row: T) {
        self.rows.push(row);
    }

    /// Sends a full batch; `Break` once nobody reads any more.
    pub(crate) fn hand_over(&mut self) -> ControlFlow<()> {
        if self.rows.len() < BATCH {
            return ControlFlow::Continue(());
        }
        let full = std::mem::replace(&mut self.rows, Vec::with_capacity(BATCH));
        if self.tx.send(full) {
            ControlFlow::Continue(())
        } else {
            ControlFlow::Break(())
        }
    }

    /// Sends what is left.
    pub(crate) fn flush(self) {
        if !self.rows.is_empty() {
            self.tx.send(self.rows);
        }
    }
}

impl<T> BatchSender<T> {
    /// Hands `batch` over; false when nobody reads any more.
    fn send(&self, batch: Vec<T>) -> bool {
        self.tx.send(Ok(batch)).is_ok()
    }

    pub(crate) fn fail(&self, e: Error) {
        let _ignored_when_consumer_gone = self.tx.send(Err(e));
    }
}

impl<T: Send + 'static> Batches<T> {
    /// A page with no rows.
    pub(crate) fn empty(limit: usize) -> Batches<T> {
        Batches {
            limit,
            seen: 0,
            more: false,
            rx: None,
            reader: None,
        }
    }

    /// Starts `read` on its own task; it sends the page's rows (up to `limit + 1`).
    pub(crate) fn spawn<F, Fut>(limit: usize, read: F) -> Batches<T>
    where
        F: FnOnce(BatchSender<T>) -> Fut,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let (tx, rx) = mpsc::unbounded_channel();
        let reader = tokio::spawn(read(BatchSender { tx }));
        Batches {
            limit,
            seen: 0,
            more: false,
            rx: Some(rx),
            reader: Some(reader),
        }
    }

    /// The page size asked for (after the maximum applied).
    pub fn limit(&self) -> usize {
        self.limit
    }

    /// Whether rows follow the page; final once [`Batches::next`] returned `None`.
    pub fn more(&self) -> bool {
        self.more
    }

    /// The next rows of the page, or `None` at its end.
    pub async fn next(&mut self) -> Option<Result<Vec<T>>> {
        loop {
            let rx = self.rx.as_mut()?;
            match rx.recv().await {
                Some(Ok(mut batch)) => {
                    let room = self.limit - self.seen;
                    if batch.len() > room {
                        batch.truncate(room);
                        self.more = true;
                        self.finish_early();
                    }
                    self.seen += batch.len();
                    if batch.is_empty() {
                        continue;
                    }
                    return Some(Ok(batch));
                }
                Some(Err(e)) => {
                    self.finish_early();
                    return Some(Err(e));
                }
                // The reader is done: it ended normally or it panicked, which
                // must not pass for a complete page.
                None => {
                    self.rx = None;
                    let reader = self.reader.take()?;
                    return match reader.await {
                        Ok(()) => None,
                        Err(e) => Some(Err(Error::internal(format!(
                            "server list reader failed: {e}"
                        )))),
                    };
                }
            }
        }
    }

    /// Stops reading: the page is full (or failed).
    fn finish_early(&mut self) {
        self.rx = None;
        if let Some(r) = self.reader.take() {
            r.abort();
        }
    }

    /// The whole page in memory.
    pub async fn collect(mut self) -> Result<Page<T>> {
        let mut servers = Vec::new();
        while let Some(batch) = self.next().await {
            servers.extend(batch?);
        }
        Ok(Page {
            servers,
            more: self.more,
            limit: self.limit,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reader(rows: Vec<u32>) -> impl FnOnce(BatchSender<u32>) -> std::future::Ready<()> {
        move |tx| {
            let mut b = Batch::new(tx);
            for r in rows {
                b.push(r);
                if b.hand_over().is_break() {
                    return std::future::ready(());
                }
            }
            b.flush();
            std::future::ready(())
        }
    }

    #[tokio::test]
    async fn a_page_stops_at_its_limit_and_knows_more_follow() {
        // 250 rows read for a page of 200: batches of 100, the extra row means "more".
        let mut page = Batches::spawn(200, reader((0..250).collect()));
        let mut sizes = Vec::new();
        while let Some(b) = page.next().await {
            sizes.push(b.expect("batch").len());
        }
        assert_eq!(sizes, [100, 100]);
        assert!(page.more());

        let page = Batches::spawn(200, reader((0..200).collect()))
            .collect()
            .await;
        let page = page.expect("page");
        assert_eq!(page.servers, (0..200).collect::<Vec<_>>());
        assert!(!page.more);

        let page = Batches::spawn(0, reader(vec![7]))
            .collect()
            .await
            .expect("page");
        assert!(page.servers.is_empty() && page.more);
        let page = Batches::<u32>::empty(0).collect().await.expect("page");
        assert!(page.servers.is_empty() && !page.more);
    }

    #[tokio::test]
    async fn a_reader_error_or_panic_is_not_a_complete_page() {
        let failing = Batches::spawn(10, |tx: BatchSender<u32>| {
            let mut b = Batch::new(tx.clone());
            b.push(1);
            b.flush();
            tx.fail(Error::internal("disk on fire"));
            std::future::ready(())
        });
        let err = failing.collect().await.err().expect("an error");
        assert!(err.to_string().contains("disk on fire"), "{err}");

        let panicking = Batches::spawn(10, |tx: BatchSender<u32>| async move {
            let mut b = Batch::new(tx);
            b.push(1);
            b.flush();
            panic!("reader bug");
        });
        let err = panicking.collect().await.err().expect("an error");
        assert!(err.to_string().contains("reader failed"), "{err}");
    }
}
