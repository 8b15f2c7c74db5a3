//! [`FilesystemStore`]: image data as files in one directory (Glance's `file` store).
//!
//! Layout: `dir/<id>` complete objects, `dir/.partial/<id>.<random>` uploads in
//! progress. Both directories are 0700 and files 0600.
//!
//! Upload: the async side only moves `Bytes` into a byte-budgeted pipe
//! ([`WRITE_BUDGET`] in flight bounds memory); one blocking thread owns the file,
//! coalesces chunks into [`WRITE_CHUNK`] writes, then fsyncs, hard-links the partial
//! file to `dir/<id>` (link fails if the name exists, so stored data is never
//! replaced), unlinks the partial name and fsyncs `dir`. The writer removes the
//! partial file on every other exit: stream error, writer error, or the put future
//! dropped (the sender vanishes without `finish`, or a drop guard raises a cancel
//! flag the writer checks before publishing). A crash leaves only `.partial` files,
//! which [`ImageStore::recover`] removes.
//!
//! Download: one blocking thread reads [`READ_CHUNK`]-sized sequential reads of the
//! requested range into a short bounded queue ([`READ_AHEAD`] chunks); dropping the
//! stream (client gone) stops the thread at its next send. For a socket
//! ([`ImageStore::get_for_socket`], the HTTP download) the range is instead mapped
//! [`MAP_WINDOW`] bytes at a time and yielded as [`SEND_CHUNK`] slices of the
//! mappings: no read copy and no thread.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::ops::Range;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use async_trait::async_trait;
use bytes::Bytes;
use futures::StreamExt;
use tokio::sync::mpsc;

use super::{ByteStream, ImageStore, RecoveryReport, StoreError, StoredImage, validate_id};
use crate::pipe::{self, PipeReceiver, Recv};

/// Name of the in-progress upload directory inside the store directory.
pub const PARTIAL_DIR: &str = ".partial";
/// Size of the coalesced writes issued by the writer thread.
pub const WRITE_CHUNK: usize = 1 << 20;
/// Bytes allowed in flight between the request stream and the writer thread.
pub const WRITE_BUDGET: usize = 16 << 20;
/// Size of the chunks a download stream yields.
pub const READ_CHUNK: usize = 1 << 20;
/// Chunks read ahead of the consumer of a download stream.
pub const READ_AHEAD: usize = 4;
/// Size of the slices of a mapped file that [`ImageStore::get_for_socket`] yields.
pub const SEND_CHUNK: usize = 1 << 20;
/// Bytes of a file mapped at a time by [`ImageStore::get_for_socket`].
pub const MAP_WINDOW: usize = 8 << 20;

/// Image store on a local (or network-mounted) file system.
#[derive(Debug, Clone)]
pub struct FilesystemStore {
    dir: PathBuf,
    partial: PathBuf,
    /// `file://` + `dir` + `/`: every location of this store starts with it.
    prefix: String,
}

impl FilesystemStore {
    /// Opens the store in `dir`, creating `dir` and `dir/.partial` (both 0700).
    /// `dir` is canonicalized so locations are absolute; it must be valid UTF-8.
    pub fn new(dir: impl AsRef<Path>) -> Result<Self, StoreError> {
        let dir = dir.as_ref();
        ensure_private_dir(dir).map_err(|e| StoreError::io("create store dir", dir, e))?;
        let dir = fs::canonicalize(dir).map_err(|e| StoreError::io("canonicalize", dir, e))?;
        let partial = dir.join(PARTIAL_DIR);
        ensure_private_dir(&partial).map_err(|e| StoreError::io("create dir", &partial, e))?;
        let Some(dir_str) = dir.to_str() else {
            return Err(StoreError::io(
                "open store",
                &dir,
                io::Error::new(io::ErrorKind::InvalidInput, "store path is not UTF-8"),
            ));
        };
        let prefix = format!("file://{}/", dir_str.trim_end_matches('/'));
        Ok(Self {
            dir,
            partial,
            prefix,
        })
    }

    /// The (canonical) store directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The location an object with this id has (or would have) in this store.
    pub fn location_of(&self, id: &str) -> Result<String, StoreError> {
        validate_id(id)?;
        Ok(format!("{}{id}", self.prefix))
    }

    /// Opens the object at `location` (on a blocking thread) and checks `range`
    /// (default: all of it) against its size.
    async fn open_range(
        &self,
        location: &str,
        range: Option<Range<u64>>,
    ) -> Result<(File, Range<u64>), StoreError> {
        let path = self.path_of(location)?;
        let location = location.to_owned();
        let opened = tokio::task::spawn_blocking(move || -> Result<_, StoreError> {
            let file = File::open(&path).map_err(|e| match e.kind() {
                io::ErrorKind::NotFound => StoreError::NotFound(location),
                _ => StoreError::io("open", &path, e),
            })?;
            let size = file
                .metadata()
                .map_err(|e| StoreError::io("stat", &path, e))?
                .len();
            Ok((file, size))
        })
        .await
        .map_err(|e| StoreError::io("open thread", &self.dir, io::Error::other(e.to_string())))?;
        let (file, size) = opened?;
        let range = range.unwrap_or(0..size);
        if range.start > range.end || range.end > size {
            return Err(StoreError::InvalidRange {
                start: range.start,
                end: range.end,
                size,
            });
        }
        Ok((file, range))
    }

    /// Maps a location back to its file; refuses anything but `file://<dir>/<id>`.
    fn path_of(&self, location: &str) -> Result<PathBuf, StoreError> {
        let id = location
            .strip_prefix(&self.prefix)
            .ok_or_else(|| StoreError::InvalidLocation(location.to_owned()))?;
        validate_id(id).map_err(|_| StoreError::InvalidLocation(location.to_owned()))?;
        Ok(self.dir.join(id))
    }
}

#[async_trait]
impl ImageStore for FilesystemStore {
    fn scheme(&self) -> &'static str {
        "file"
    }

    async fn put(&self, id: &str, mut data: ByteStream) -> Result<StoredImage, StoreError> {
        validate_id(id)?;
        let location = self.location_of(id)?;
        let job = WriteJob {
            id: id.to_owned(),
            partial: self
                .partial
                .join(format!("{id}.{}", uuid::Uuid::new_v4().simple())),
            target: self.dir.join(id),
            dir: self.dir.clone(),
            cancelled: Arc::new(AtomicBool::new(false)),
        };
        // Raised if this future is dropped before the writer published the object.
        let cancel = CancelOnDrop(Some(job.cancelled.clone()));
        let (tx, rx) = pipe::pipe(WRITE_BUDGET);
        let writer = tokio::task::spawn_blocking(move || job.run(rx));

        let mut source_error = None;
        while let Some(item) = data.next().await {
            match item {
                Ok(chunk) if chunk.is_empty() => {}
                Ok(chunk) => {
                    if tx.send(chunk).await.is_err() {
                        break; // the writer failed; its result says why
                    }
                }
                Err(e) => {
                    source_error = Some(e);
                    break;
                }
            }
        }
        if source_error.is_none() {
            // If the writer is already gone, its result below carries the error.
            let _ = tx.finish();
        } else {
            drop(tx); // abandoned: the writer removes the partial file
        }
        let result = writer.await;
        cancel.disarm();
        if let Some(e) = source_error {
            return Err(StoreError::Source(e));
        }
        let size = result.map_err(|e| {
            StoreError::io(
                "write thread",
                &self.partial,
                io::Error::other(e.to_string()),
            )
        })??;
        Ok(StoredImage { location, size })
    }

    async fn get(
        &self,
        location: &str,
        range: Option<Range<u64>>,
    ) -> Result<ByteStream, StoreError> {
        let (file, range) = self.open_range(location, range).await?;
        Ok(read_stream(file, range))
    }

    async fn get_for_socket(
        &self,
        location: &str,
        range: Option<Range<u64>>,
    ) -> Result<ByteStream, StoreError> {
        let (file, range) = self.open_range(location, range).await?;
        Ok(mapped_stream(file, range))
    }

    fn local_path(&self, location: &str) -> Option<PathBuf> {
        self.path_of(location).ok()
    }

    async fn delete(&self, location: &str) -> Result<(), StoreError> {
        let path = self.path_of(location)?;
        match tokio::fs::remove_file(&path).await {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(StoreError::io("remove", path, e)),
        }
    }

    async fn recover(
        &self,
        keep: &(dyn for<'k> Fn(&'k str) -> bool + Send + Sync),
    ) -> Result<RecoveryReport, StoreError> {
        let mut report = RecoveryReport::default();
        for (name, _) in list_dir(&self.partial).await? {
            let path = self.partial.join(&name);
            remove_entry(&path).await?;
            tracing::info!(path = %path.display(), "removed partial upload");
            report.partial_removed += 1;
        }
        for (name, is_file) in list_dir(&self.dir).await? {
            if name == PARTIAL_DIR {
                continue;
            }
            let Some(id) = name.to_str().filter(|n| is_file && validate_id(n).is_ok()) else {
                tracing::warn!(entry = ?name, dir = %self.dir.display(), "unexpected entry in image store, left alone");
                continue;
            };
            if keep(id) {
                report.kept += 1;
            } else {
                let path = self.dir.join(id);
                remove_entry(&path).await?;
                tracing::info!(path = %path.display(), "removed unreferenced image data");
                report.unreferenced_removed += 1;
            }
        }
        Ok(report)
    }
}

/// Raises the writer's cancel flag when the put future is dropped early.
struct CancelOnDrop(Option<Arc<AtomicBool>>);

impl CancelOnDrop {
    fn disarm(mut self) {
        self.0 = None;
    }
}

impl Drop for CancelOnDrop {
    fn drop(&mut self) {
        if let Some(flag) = self.0.take() {
            flag.store(true, Ordering::Release);
        }
    }
}

/// Removes a path when dropped, whatever happened (the published object is a
/// separate hard link, so this never removes stored data).
struct RemoveOnDrop<'a>(&'a Path);

impl Drop for RemoveOnDrop<'_> {
    fn drop(&mut self) {
        if let Err(e) = fs::remove_file(self.0)
            && e.kind() != io::ErrorKind::NotFound
        {
            tracing::warn!(path = %self.0.display(), error = %e, "could not remove partial upload");
        }
    }
}

/// Everything the writer thread needs to stream one upload to disk.
struct WriteJob {
    id: String,
    partial: PathBuf,
    target: PathBuf,
    dir: PathBuf,
    cancelled: Arc<AtomicBool>,
}

impl WriteJob {
    fn run(self, mut rx: PipeReceiver) -> Result<u64, StoreError> {
        let partial = &self.partial;
        let io_err = |op: &'static str| move |e: io::Error| StoreError::io(op, partial, e);
        let mut file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(partial)
            .map_err(io_err("create"))?;
        let _cleanup = RemoveOnDrop(partial);
        let mut buf: Vec<u8> = Vec::with_capacity(WRITE_CHUNK);
        let mut size = 0u64;
        loop {
            match rx.blocking_recv() {
                Recv::Data(chunk) => {
                    let data = &chunk.data;
                    size += data.len() as u64;
                    if buf.len() + data.len() > WRITE_CHUNK && !buf.is_empty() {
                        file.write_all(&buf).map_err(io_err("write"))?;
                        buf.clear();
                    }
                    if data.len() >= WRITE_CHUNK {
                        file.write_all(data).map_err(io_err("write"))?;
                    } else {
                        buf.extend_from_slice(data);
                    }
                    // `chunk` dropped here: its bytes go back to the budget.
                }
                Recv::End => break,
                Recv::Abandoned => {
                    return Err(StoreError::Source(io::Error::new(
                        io::ErrorKind::Interrupted,
                        "upload abandoned",
                    )));
                }
            }
        }
        drop(rx);
        file.write_all(&buf).map_err(io_err("write"))?;
        drop(buf);
        file.sync_all().map_err(io_err("fsync"))?;
        drop(file);
        if self.cancelled.load(Ordering::Acquire) {
            return Err(StoreError::Source(io::Error::new(
                io::ErrorKind::Interrupted,
                "upload abandoned",
            )));
        }
        fs::hard_link(partial, &self.target).map_err(|e| match e.kind() {
            io::ErrorKind::AlreadyExists => StoreError::AlreadyExists(self.id.clone()),
            _ => StoreError::io("link", &self.target, e),
        })?;
        if let Err(e) = sync_dir(&self.dir) {
            let _ = fs::remove_file(&self.target);
            return Err(StoreError::io("fsync dir", &self.dir, e));
        }
        Ok(size)
        // `_cleanup` unlinks the partial name; the object lives on under `target`.
    }
}

/// Streams `range` of `file`, read on a blocking thread in [`READ_CHUNK`] pieces.
/// Each piece is read into fresh uninitialised capacity (`read_to_end` on a
/// `take` of the file: no zeroing of a buffer the read overwrites anyway) and
/// handed to hyper as `Bytes` without a copy.
fn read_stream(file: File, range: Range<u64>) -> ByteStream {
    let (tx, rx) = mpsc::channel::<io::Result<Bytes>>(READ_AHEAD);
    if range.is_empty() {
        return futures::stream::empty().boxed();
    }
    tokio::task::spawn_blocking(move || {
        use std::io::{Read, Seek, SeekFrom};
        let mut file = file;
        if let Err(e) = file.seek(SeekFrom::Start(range.start)) {
            tx.blocking_send(Err(e)).ok();
            return;
        }
        let mut pos = range.start;
        while pos < range.end {
            let want = (range.end - pos).min(READ_CHUNK as u64);
            let mut buf = Vec::with_capacity(want as usize);
            let item = match (&mut file).take(want).read_to_end(&mut buf) {
                Ok(n) if n as u64 == want => {
                    pos += want;
                    Ok(Bytes::from(buf))
                }
                Ok(_) => Err(io::Error::from(io::ErrorKind::UnexpectedEof)),
                Err(e) => Err(e),
            };
            let failed = item.is_err();
            if tx.blocking_send(item).is_err() || failed {
                return; // the reader went away, or the error is reported
            }
        }
    });
    futures::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|item| (item, rx))
    })
    .boxed()
}

/// Maps `range` (not empty) of `file` read-only, advised sequential.
#[allow(unsafe_code)]
fn map_range(file: &File, range: &Range<u64>) -> io::Result<memmap2::Mmap> {
    let len = usize::try_from(range.end - range.start)
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "range too large to map"))?;
    // SAFETY: `Mmap` hands out `&[u8]` over the file, which Rust assumes does not
    // change while borrowed. Store objects are written under `.partial/`, fsynced
    // and only then linked to their name; nothing in ferrostack writes, truncates
    // or replaces a published object (data is immutable; delete unlinks, and the
    // mapping keeps the inode alive), and the directory is 0700. If something
    // outside ferrostack cuts the file short anyway, touching the lost pages from
    // process code would raise SIGBUS; this mapping only reaches the kernel's copy
    // in a socket write (see `ImageStore::get_for_socket`), which fails with EFAULT
    // instead (`truncated_mapping_fails_the_socket_write` checks it).
    let map = unsafe {
        memmap2::MmapOptions::new()
            .offset(range.start)
            .len(len)
            .map(file)?
    };
    // One pass front to back. Measured on loopback with curl (1 GiB from the page
    // cache, the whole file mapped at once): p50 1.9 GB/s advised vs 1.65 not;
    // MAP_POPULATE was slower (1.5: it walks the range before the first byte goes
    // out). Not measured per window since.
    map.advise(memmap2::Advice::Sequential)?;
    Ok(map)
}

/// Streams `range` of `file` as [`SEND_CHUNK`] slices of [`MAP_WINDOW`]-sized
/// mappings, each window mapped when the consumer reaches it and unmapped when
/// its last slice is dropped (mapped file pages count in the server's RSS: whole
/// range mapped, a 1 GiB download showed as 1 GiB). hyper queues the slices and
/// `writev`s them: the bytes go from the page cache to the socket in one kernel
/// copy. Mapping without populating is a quick syscall, done inline.
fn mapped_stream(file: File, range: Range<u64>) -> ByteStream {
    let end = range.end;
    let windows = range
        .step_by(MAP_WINDOW)
        .map(move |at| at..(at + MAP_WINDOW as u64).min(end));
    futures::stream::iter(windows)
        .flat_map(move |window| {
            let slices: Vec<io::Result<Bytes>> = match map_range(&file, &window) {
                Ok(map) => {
                    let len = map.len();
                    let bytes = Bytes::from_owner(map);
                    (0..len)
                        .step_by(SEND_CHUNK)
                        .map(|at| Ok(bytes.slice(at..(at + SEND_CHUNK).min(len))))
                        .collect()
                }
                Err(e) => vec![Err(e)],
            };
            futures::stream::iter(slices)
        })
        .boxed()
}

/// Creates `dir` (and parents) if missing and makes it 0700.
fn ensure_private_dir(dir: &Path) -> io::Result<()> {
    fs::create_dir_all(dir)?;
    fs::set_permissions(dir, fs::Permissions::from_mode(0o700))
}

/// fsyncs a directory so that a link or unlink inside it is durable.
fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

/// Lists a directory's entries as (name, is regular file).
async fn list_dir(dir: &Path) -> Result<Vec<(std::ffi::OsString, bool)>, StoreError> {
    let err = |e| StoreError::io("list", dir, e);
    let mut rd = tokio::fs::read_dir(dir).await.map_err(err)?;
    let mut out = Vec::new();
    while let Some(entry) = rd.next_entry().await.map_err(err)? {
        let is_file = entry.file_type().await.map_err(err)?.is_file();
        out.push((entry.file_name(), is_file));
    }
    Ok(out)
}

/// Removes a file (or a stray directory tree) during recovery.
async fn remove_entry(path: &Path) -> Result<(), StoreError> {
    let meta = match tokio::fs::symlink_metadata(path).await {
        Ok(m) => m,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(StoreError::io("stat", path, e)),
    };
    let res = if meta.is_dir() {
        tokio::fs::remove_dir_all(path).await
    } else {
        tokio::fs::remove_file(path).await
    };
    match res {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(StoreError::io("remove", path, e)),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use futures::stream;
    use md5::Md5;
    use sha2::{Digest, Sha512};

    use super::*;
    use crate::hash::tee;

    /// Incompressible test bytes (xorshift), the same for the same seed.
    fn fill_pseudo_random(buf: &mut [u8], seed: u64) {
        let mut x = seed | 1;
        for chunk in buf.chunks_mut(8) {
            x ^= x >> 12;
            x ^= x << 25;
            x ^= x >> 27;
            let v = x.wrapping_mul(0x2545_f491_4f6c_dd1d).to_le_bytes();
            chunk.copy_from_slice(&v[..chunk.len()]);
        }
    }

    fn data(len: usize, seed: u64) -> Vec<u8> {
        let mut v = vec![0u8; len];
        fill_pseudo_random(&mut v, seed);
        v
    }

    /// `data` cut into `chunk`-sized pieces, as a stream.
    fn chunked(data: &[u8], chunk: usize) -> ByteStream {
        let pieces: Vec<io::Result<Bytes>> = data
            .chunks(chunk.max(1))
            .map(|c| Ok(Bytes::copy_from_slice(c)))
            .collect();
        stream::iter(pieces).boxed()
    }

    async fn collect(s: ByteStream) -> Vec<u8> {
        let mut out = Vec::new();
        let mut s = s;
        while let Some(c) = s.next().await {
            out.extend_from_slice(&c.unwrap());
        }
        out
    }

    fn names(dir: &Path) -> Vec<String> {
        let mut v: Vec<String> = fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    }

    fn mode(p: &Path) -> u32 {
        fs::metadata(p).unwrap().permissions().mode() & 0o777
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn round_trip_with_digests() {
        let tmp = tempfile::tempdir().unwrap();
        let store = FilesystemStore::new(tmp.path().join("images")).unwrap();
        let cases = [
            (0usize, 65536usize),
            (1, 65536),
            ((1 << 20) + 3, 65536),
            ((1 << 20) + 3, 7777),
            (20 << 20, 65536),
            (20 << 20, 20 << 20), // one chunk larger than every budget
        ];
        for (i, (len, chunk)) in cases.into_iter().enumerate() {
            let bytes = data(len, i as u64 + 1);
            let id = format!("img-{i}");
            let (s, pending) = tee(chunked(&bytes, chunk));
            let stored = store.put(&id, s).await.unwrap();
            assert_eq!(stored.size, len as u64);
            assert_eq!(stored.location, store.location_of(&id).unwrap());
            assert!(stored.location.starts_with("file:///"));
            let hashes = pending.wait().await.unwrap();
            assert_eq!(hashes.md5, hex::encode(Md5::digest(&bytes)));
            assert_eq!(hashes.sha512, hex::encode(Sha512::digest(&bytes)));
            let back = collect(store.get(&stored.location, None).await.unwrap()).await;
            assert!(back == bytes, "case {i}: data differs");
            assert_eq!(mode(&store.dir().join(&id)), 0o600);
        }
        assert_eq!(mode(store.dir()), 0o700);
        assert_eq!(mode(&store.dir().join(PARTIAL_DIR)), 0o700);
        assert!(names(&store.dir().join(PARTIAL_DIR)).is_empty());
    }

    #[tokio::test]
    async fn range_reads() {
        let tmp = tempfile::tempdir().unwrap();
        let store = FilesystemStore::new(tmp.path()).unwrap();
        let len = 2 * MAP_WINDOW + 11;
        let bytes = data(len, 9);
        let loc = store
            .put("r", chunked(&bytes, 65536))
            .await
            .unwrap()
            .location;
        let l = len as u64;
        for r in [
            0..10,
            0..l,
            5..(READ_CHUNK as u64 + 7),
            l / 2..l / 2 + 3 * READ_CHUNK as u64 / 2,
            l - 10..l,
            l - 1..l,
            MAP_WINDOW as u64 - 5..MAP_WINDOW as u64 + 5,
            MAP_WINDOW as u64..2 * MAP_WINDOW as u64 + 1,
            0..1,
            1234..1235,
            7..7,
        ] {
            let want = &bytes[r.start as usize..r.end as usize];
            let got = collect(store.get(&loc, Some(r.clone())).await.unwrap()).await;
            assert!(got == want, "{r:?}");
            let sent = store.get_for_socket(&loc, Some(r.clone())).await.unwrap();
            assert!(collect(sent).await == want, "mapped {r:?}");
        }
        assert!(collect(store.get_for_socket(&loc, None).await.unwrap()).await == bytes);
        for bad in [0..l + 1, l + 1..l + 2] {
            assert!(matches!(
                store.get(&loc, Some(bad.clone())).await,
                Err(StoreError::InvalidRange { .. })
            ));
            assert!(matches!(
                store.get_for_socket(&loc, Some(bad)).await,
                Err(StoreError::InvalidRange { .. })
            ));
        }
        store.delete(&loc).await.unwrap();
        assert!(matches!(
            store.get_for_socket(&loc, None).await,
            Err(StoreError::NotFound(_))
        ));
    }

    /// The safety argument of `map_range`: a store file cut short under a mapped
    /// download fails the socket write (EFAULT), it does not kill the process. The
    /// test never touches the mapped bytes itself.
    #[tokio::test]
    async fn truncated_mapping_fails_the_socket_write() {
        use std::os::unix::net::UnixStream;
        let tmp = tempfile::tempdir().unwrap();
        let store = FilesystemStore::new(tmp.path()).unwrap();
        let loc = store
            .put("t", chunked(&data(2 * SEND_CHUNK, 5), 65536))
            .await
            .unwrap()
            .location;
        let mut sent = store.get_for_socket(&loc, None).await.unwrap();
        let first = sent.next().await.unwrap().unwrap();
        assert_eq!(first.len(), SEND_CHUNK);
        let path = store.local_path(&loc).unwrap();
        OpenOptions::new()
            .write(true)
            .open(&path)
            .unwrap()
            .set_len(0)
            .unwrap();
        let (mut a, _b) = UnixStream::pair().unwrap();
        let err = a.write(&first[..4096]).unwrap_err();
        assert_eq!(err.raw_os_error(), Some(14), "EFAULT expected: {err}");
    }

    #[tokio::test]
    async fn failing_stream_leaves_nothing() {
        let tmp = tempfile::tempdir().unwrap();
        let store = FilesystemStore::new(tmp.path()).unwrap();
        let good = chunked(&data(3 << 20, 3), 65536);
        let bad = stream::iter([Err(io::Error::other("client went away"))]);
        let err = store.put("x", good.chain(bad).boxed()).await.unwrap_err();
        assert!(matches!(err, StoreError::Source(_)), "{err:?}");
        assert_eq!(names(store.dir()), [PARTIAL_DIR]);
        assert!(names(&store.dir().join(PARTIAL_DIR)).is_empty());
        // the failure also reaches the digests
        let (s, pending) = tee(chunked(b"abc", 1)
            .chain(stream::iter([Err(io::Error::other("cap"))]))
            .boxed());
        assert!(store.put("y", s).await.is_err());
        assert!(pending.wait().await.is_none());
        assert_eq!(names(store.dir()), [PARTIAL_DIR]);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn dropped_put_removes_partial_file() {
        let tmp = tempfile::tempdir().unwrap();
        let store = Arc::new(FilesystemStore::new(tmp.path()).unwrap());
        let partial = store.dir().join(PARTIAL_DIR);
        let endless = chunked(&data(5 << 20, 4), 65536)
            .chain(stream::pending())
            .boxed();
        let task = tokio::spawn({
            let store = store.clone();
            async move { store.put("z", endless).await }
        });
        // wait until the upload is on disk, then disconnect
        for _ in 0..200 {
            if !names(&partial).is_empty() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert_eq!(names(&partial).len(), 1);
        task.abort();
        assert!(task.await.unwrap_err().is_cancelled());
        for _ in 0..200 {
            if names(&partial).is_empty() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert!(names(&partial).is_empty());
        assert_eq!(names(store.dir()), [PARTIAL_DIR]);
    }

    #[tokio::test]
    async fn recover_removes_partials_and_unreferenced() {
        let tmp = tempfile::tempdir().unwrap();
        let store = FilesystemStore::new(tmp.path()).unwrap();
        for id in ["keep-me", "drop-me"] {
            store.put(id, chunked(b"hello", 2)).await.unwrap();
        }
        let partial = store.dir().join(PARTIAL_DIR);
        fs::write(partial.join("crashed.0123"), b"torn").unwrap();
        fs::write(partial.join("other.4567"), b"torn").unwrap();
        fs::write(store.dir().join("not an id.txt"), b"?").unwrap();
        let report = store.recover(&|id: &str| id == "keep-me").await.unwrap();
        assert_eq!(
            report,
            RecoveryReport {
                partial_removed: 2,
                unreferenced_removed: 1,
                kept: 1
            }
        );
        assert!(names(&partial).is_empty());
        assert_eq!(
            names(store.dir()),
            [PARTIAL_DIR, "keep-me", "not an id.txt"]
        );
        // a fresh store over the same directory still works
        let again = FilesystemStore::new(tmp.path()).unwrap();
        let loc = again.location_of("keep-me").unwrap();
        assert_eq!(
            collect(again.get(&loc, None).await.unwrap()).await,
            b"hello"
        );
    }

    #[tokio::test]
    async fn bad_ids_and_locations_refused() {
        let tmp = tempfile::tempdir().unwrap();
        let store = FilesystemStore::new(tmp.path().join("images")).unwrap();
        fs::write(tmp.path().join("secret"), b"s").unwrap();
        for id in [
            "../x",
            "a/b",
            ".partial",
            "",
            "..",
            ".",
            "a\0b",
            "/etc/passwd",
        ] {
            let err = store.put(id, chunked(b"x", 1)).await.unwrap_err();
            assert!(matches!(err, StoreError::InvalidId(_)), "{id:?}: {err:?}");
        }
        assert!(names(&tmp.path().join("images").join(PARTIAL_DIR)).is_empty());
        let prefix = store.location_of("a").unwrap();
        let prefix = prefix.trim_end_matches('a');
        let dir = store.dir().display().to_string();
        for loc in [
            format!("{prefix}../secret"),
            format!("{prefix}a/b"),
            format!("{prefix}.partial"),
            prefix.to_string(),
            format!("{prefix}x/../../secret"),
            format!("file://{dir}/../secret"),
            format!("file://{dir}"),
            format!("file://{dir}a"),
            "file:///etc/passwd".to_owned(),
            format!("s3://{dir}/a"),
            format!("{dir}/a"),
        ] {
            let err = store.get(&loc, None).await.err();
            assert!(matches!(err, Some(StoreError::InvalidLocation(_))), "{loc}");
            let err = store.delete(&loc).await.unwrap_err();
            assert!(matches!(err, StoreError::InvalidLocation(_)), "{loc}");
        }
        assert!(tmp.path().join("secret").exists());
    }

    #[tokio::test]
    async fn immutable_missing_and_idempotent_delete() {
        let tmp = tempfile::tempdir().unwrap();
        let store = FilesystemStore::new(tmp.path()).unwrap();
        assert_eq!(store.scheme(), "file");
        let loc = store.put("a", chunked(b"one", 1)).await.unwrap().location;
        let err = store.put("a", chunked(b"two", 1)).await.unwrap_err();
        assert!(matches!(err, StoreError::AlreadyExists(_)), "{err:?}");
        assert_eq!(collect(store.get(&loc, None).await.unwrap()).await, b"one");
        assert!(names(&store.dir().join(PARTIAL_DIR)).is_empty());
        store.delete(&loc).await.unwrap();
        store.delete(&loc).await.unwrap();
        assert!(matches!(
            store.get(&loc, None).await,
            Err(StoreError::NotFound(_))
        ));
    }
}
