//! Upload digests: md5 (Glance `checksum`) and sha512 (`os_hash_value`), computed in
//! parallel off the async reactor.
//!
//! [`Digests`] owns two blocking threads, one per algorithm, each fed the same `Bytes`
//! (a reference-counted clone, no copy) through a byte-budgeted pipe, so the reactor
//! only moves pointers and memory stays bounded ([`HASH_BUDGET`] per thread).
//! [`tee`] wraps an upload stream so that every chunk passing through it is also
//! hashed: in `body -> (size cap, inspector) -> tee -> store.put`, the md5 thread,
//! the sha512 thread and the store's writer thread all work concurrently.

use std::io;

use bytes::Bytes;
use futures::{Stream, StreamExt};
use md5::Md5;
use sha2::{Digest, Sha512};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::pipe::{self, PipeReceiver, PipeSender, Recv};
use crate::store::ByteStream;

/// Bytes allowed in flight between the stream and each hashing thread.
pub const HASH_BUDGET: usize = 8 << 20;

/// The digests of a complete upload, lowercase hex.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hashes {
    /// md5, Glance's `checksum`.
    pub md5: String,
    /// sha512, Glance's `os_hash_value` with `os_hash_algo = "sha512"`.
    pub sha512: String,
}

/// One hashing thread and the pipe feeding it.
struct Worker {
    tx: PipeSender,
    handle: JoinHandle<String>,
}

impl Worker {
    fn spawn<D: Digest + Send + 'static>() -> Self {
        let (tx, rx) = pipe::pipe(HASH_BUDGET);
        let handle = tokio::task::spawn_blocking(move || hash_all::<D>(rx));
        Self { tx, handle }
    }

    async fn finish(self) -> io::Result<String> {
        self.tx
            .finish()
            .map_err(|_| io::Error::other("hashing thread stopped early"))?;
        self.handle
            .await
            .map_err(|e| io::Error::other(format!("hashing thread failed: {e}")))
    }
}

fn hash_all<D: Digest>(mut rx: PipeReceiver) -> String {
    let mut digest = D::new();
    while let Recv::Data(chunk) = rx.blocking_recv() {
        digest.update(&chunk.data);
    }
    hex::encode(digest.finalize())
}

/// md5 and sha512 of a byte sequence, each on its own blocking thread.
///
/// Must be created inside a Tokio runtime (it spawns onto the blocking pool).
/// Dropping it without [`Digests::finish`] stops both threads.
pub struct Digests {
    md5: Worker,
    sha512: Worker,
}

impl Default for Digests {
    fn default() -> Self {
        Self::new()
    }
}

impl Digests {
    pub fn new() -> Self {
        Self {
            md5: Worker::spawn::<Md5>(),
            sha512: Worker::spawn::<Sha512>(),
        }
    }

    /// Feeds `chunk` to both threads; waits only while a thread is more than
    /// [`HASH_BUDGET`] bytes behind. A failed thread is reported by `finish`.
    pub async fn update(&mut self, chunk: Bytes) {
        if chunk.is_empty() {
            return;
        }
        let _ = self.md5.tx.send(chunk.clone()).await;
        let _ = self.sha512.tx.send(chunk).await;
    }

    /// Waits for both threads to hash everything fed so far.
    pub async fn finish(self) -> io::Result<Hashes> {
        let md5 = self.md5.finish().await?;
        let sha512 = self.sha512.finish().await?;
        Ok(Hashes { md5, sha512 })
    }
}

/// The digests of a [`tee`]d stream, available once it was consumed to its end.
pub struct PendingHashes(oneshot::Receiver<Hashes>);

impl PendingHashes {
    /// The hashes, or `None` if the stream failed or was not read to its end.
    pub async fn wait(self) -> Option<Hashes> {
        self.0.await.ok()
    }
}

enum Tee<S> {
    Running {
        inner: S,
        digests: Digests,
        done: oneshot::Sender<Hashes>,
    },
    Done,
}

/// Passes `stream` through unchanged while hashing it on two threads. When the
/// stream ends, the hashes are finished before the end is passed on, so once the
/// consumer (e.g. `ImageStore::put`) returned, [`PendingHashes::wait`] is immediate.
/// A hashing failure becomes a final `Err` item of the stream.
pub fn tee<S>(stream: S) -> (ByteStream, PendingHashes)
where
    S: Stream<Item = Result<Bytes, io::Error>> + Send + Unpin + 'static,
{
    let (done, rx) = oneshot::channel();
    let state = Tee::Running {
        inner: stream,
        digests: Digests::new(),
        done,
    };
    let out = futures::stream::unfold(state, |state| async move {
        let Tee::Running {
            mut inner,
            mut digests,
            done,
        } = state
        else {
            return None;
        };
        match inner.next().await {
            Some(Ok(chunk)) => {
                digests.update(chunk.clone()).await;
                Some((
                    Ok(chunk),
                    Tee::Running {
                        inner,
                        digests,
                        done,
                    },
                ))
            }
            Some(Err(e)) => Some((Err(e), Tee::Done)),
            None => match digests.finish().await {
                Ok(hashes) => {
                    let _ = done.send(hashes);
                    None
                }
                Err(e) => Some((Err(e), Tee::Done)),
            },
        }
    });
    (out.boxed(), PendingHashes(rx))
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::stream;

    const ABC_MD5: &str = "900150983cd24fb0d6963f7d28e17f72";
    const ABC_SHA512: &str = "ddaf35a193617abacc417349ae20413112e6fa4e89a97ea20a9eeee64b55d39a\
                              2192992a274fc1a836ba3c23a3feebbd454d4423643ce80e2a9ac94fa54ca49f";

    #[tokio::test]
    async fn digests_of_known_input() {
        let mut d = Digests::new();
        d.update(Bytes::from_static(b"a")).await;
        d.update(Bytes::new()).await;
        d.update(Bytes::from_static(b"bc")).await;
        let h = d.finish().await.unwrap();
        assert_eq!(h.md5, ABC_MD5);
        assert_eq!(h.sha512, ABC_SHA512);
        let empty = Digests::default().finish().await.unwrap();
        assert_eq!(empty.md5, "d41d8cd98f00b204e9800998ecf8427e");
    }

    #[tokio::test]
    async fn tee_passes_data_through_and_hashes_it() {
        let input = stream::iter([b"a".as_slice(), b"", b"bc"].map(|c| Ok(Bytes::from(c))));
        let (out, pending) = tee(input);
        let got: Vec<Bytes> = out.map(|c| c.unwrap()).collect().await;
        assert_eq!(got.concat(), b"abc");
        let h = pending.wait().await.unwrap();
        assert_eq!((h.md5.as_str(), h.sha512.as_str()), (ABC_MD5, ABC_SHA512));
    }

    #[tokio::test]
    async fn tee_not_read_to_end_has_no_hashes() {
        let input = stream::iter([Ok(Bytes::from_static(b"a")), Ok(Bytes::from_static(b"b"))]);
        let (mut out, pending) = tee(input);
        out.next().await.unwrap().unwrap();
        drop(out);
        assert!(pending.wait().await.is_none());
    }
}
