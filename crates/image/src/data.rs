//! The bytes' journey: upload (`PUT /file`) streams the request body through a size
//! cap and the format inspector, tees it to the md5/sha512 threads, and into the
//! store; only when the bytes are durable does one transaction flip the record to
//! `active`. Download streams back from the store, with ranges. Start-up recovery
//! puts interrupted uploads back to `queued` and removes bytes nothing refers to.

use std::collections::HashSet;
use std::io;
use std::ops::Range;
use std::sync::{Arc, Mutex};

use futures::StreamExt;
use serde_json::Value;

use ferrostack_core::RequestContext;

use crate::error::{Error, Result};
use crate::hash;
use crate::inspect::{self, Inspector};
use crate::policy;
use crate::records;
use crate::service::{Images, now_us};
use crate::status::Status;
use crate::store::{ByteStream, ImageStore, StoreError};

/// A byte range as a client asks for it (`Range: bytes=...`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RangeRequest {
    /// `bytes=first-` or `bytes=first-last` (inclusive).
    From { first: u64, last: Option<u64> },
    /// `bytes=-n`: the last n bytes.
    Suffix(u64),
}

impl RangeRequest {
    /// The half-open byte range within `size`, or 416.
    pub fn resolve(self, size: u64) -> Result<Range<u64>> {
        let unsatisfiable = Error::RangeNotSatisfiable { size };
        match self {
            RangeRequest::From { first, last } => {
                if first >= size || last.is_some_and(|l| l < first) {
                    return Err(unsatisfiable);
                }
                let end = last.map_or(size, |l| l.saturating_add(1).min(size));
                Ok(first..end)
            }
            RangeRequest::Suffix(0) => Err(unsatisfiable),
            RangeRequest::Suffix(n) => Ok(size.saturating_sub(n)..size),
        }
    }
}

/// Image data on its way out.
pub struct Download {
    pub stream: ByteStream,
    /// The whole image's size.
    pub size: u64,
    /// Present for a range request: what is being sent.
    pub range: Option<Range<u64>>,
    pub checksum: Option<String>,
}

/// Who reads a download's bytes: process code, or only the kernel's copy into a
/// socket.
#[derive(Debug, Clone, Copy)]
enum Reader {
    Process,
    Kernel,
}

/// Why the upload stream was cut by us (as opposed to the client going away).
#[derive(Debug)]
struct TooLarge(u64);

impl std::fmt::Display for TooLarge {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "image larger than {} bytes", self.0)
    }
}

impl std::error::Error for TooLarge {}

impl Images {
    /// Streams an upload (`PUT /file`) into the store. `body` is the request body;
    /// `declared` its Content-Length when the client sent one.
    pub async fn upload(
        &self,
        ctx: &RequestContext,
        id: &str,
        body: ByteStream,
        declared: Option<u64>,
    ) -> Result<()> {
        let (im, limit) = self
            .begin_data(ctx, id, declared, Status::Saving, "upload_image")
            .await?;
        let guard = RestoreOnDrop::new(&self.db, id, Status::Saving);
        self.ingest(im, body, limit, Status::Saving, guard).await
    }

    /// Interactive import, step 1 (`PUT /stage`): the bytes go to the staging area
    /// and the image becomes `uploading`.
    pub async fn stage(
        &self,
        ctx: &RequestContext,
        id: &str,
        body: ByteStream,
        declared: Option<u64>,
    ) -> Result<()> {
        let (_, limit) = self
            .begin_data(ctx, id, declared, Status::Uploading, "stage_image")
            .await?;
        let mut guard = RestoreOnDrop::new(&self.db, id, Status::Uploading);
        let result = self.staging.put(id, capped(body, limit, None)).await;
        guard.disarm();
        if let Err(e) = result {
            self.set_status(id, Status::Uploading, Status::Queued)
                .await?;
            return Err(self.store_error(e, limit));
        }
        Ok(())
    }

    /// Interactive import, step 2 (`POST /import`, method `glance-direct`): moves the
    /// staged bytes into the store (hashing and inspecting them) in the background;
    /// the image is `importing`, then `active` (or back to `queued` on failure).
    pub async fn import(
        self: &Arc<Self>,
        ctx: &RequestContext,
        id: &str,
        body: &Value,
        request_id: Option<&str>,
    ) -> Result<()> {
        let method = body
            .pointer("/method/name")
            .and_then(Value::as_str)
            .ok_or_else(|| Error::Invalid("Import request requires a 'method' field.".into()))?;
        if method != "glance-direct" {
            return Err(Error::Invalid(format!(
                "Import method {method} is not supported: use glance-direct."
            )));
        }
        let seen = self.visible(ctx, id).await?;
        policy::modify(ctx, &seen, "import_image")?;
        let limit = self.upload_limit(seen.owner.as_deref()).await?;
        let mut tx = self.db.begin_write().await?;
        let mut im = records::load(&mut tx, id)
            .await?
            .ok_or_else(|| Error::no_image(id))?;
        if im.status != Status::Uploading {
            return Err(Error::Conflict(format!(
                "Image {id} is not ready for glance-direct import: its status is {} (stage its data first)",
                im.status
            )));
        }
        im.status = Status::Importing;
        im.updated_at_us = now_us();
        records::save(&mut tx, &im).await?;
        let task =
            crate::tasks::begin_import(&mut tx, ctx, id, im.owner.as_deref(), request_id, body)
                .await?;
        tx.commit().await?;

        let this = self.clone();
        let id = id.to_string();
        tokio::spawn(async move {
            let staged = this.staging.location_of(&id).map_err(Error::internal);
            let source = match staged {
                Ok(loc) => this.staging.get(&loc, None).await.map_err(Error::internal),
                Err(e) => Err(e),
            };
            let result = match source {
                Ok(stream) => {
                    let guard = RestoreOnDrop::new(&this.db, &id, Status::Importing);
                    this.ingest(im, stream, limit, Status::Importing, guard)
                        .await
                }
                Err(e) => {
                    let _ = this
                        .set_status(&id, Status::Importing, Status::Queued)
                        .await;
                    Err(e)
                }
            };
            if let Ok(loc) = this.staging.location_of(&id) {
                let _ = this.staging.delete(&loc).await;
            }
            match &result {
                Ok(()) => tracing::info!(image_id = %id, "glance-direct import finished"),
                Err(e) => tracing::warn!(image_id = %id, error = %e, "glance-direct import failed"),
            }
            this.finish_task(&task, result.map_err(|e| e.to_string()))
                .await;
        });
        Ok(())
    }

    /// Policy, limits and the first status change of an upload or a stage.
    async fn begin_data(
        &self,
        ctx: &RequestContext,
        id: &str,
        declared: Option<u64>,
        next: Status,
        action: &str,
    ) -> Result<(crate::model::Image, u64)> {
        let seen = self.visible(ctx, id).await?;
        policy::modify(ctx, &seen, action)?;
        let limit = self.upload_limit(seen.owner.as_deref()).await?;
        if declared.is_some_and(|n| n > limit) {
            return Err(self.too_large(limit));
        }
        let mut tx = self.db.begin_write().await?;
        let mut im = records::load(&mut tx, id)
            .await?
            .ok_or_else(|| Error::no_image(id))?;
        if im.disk_format.is_none() || im.container_format.is_none() {
            return Err(Error::Invalid(
                "Properties disk_format, container_format must be set prior to saving data.".into(),
            ));
        }
        if im.status != Status::Queued {
            return Err(Error::Conflict(im.status.transition_error(next)));
        }
        im.status = next;
        im.updated_at_us = now_us();
        records::save(&mut tx, &im).await?;
        tx.commit().await?;
        Ok((im, limit))
    }

    fn store_error(&self, e: StoreError, limit: u64) -> Error {
        match e {
            StoreError::Source(io) if io.get_ref().is_some_and(|i| i.is::<TooLarge>()) => {
                self.too_large(limit)
            }
            StoreError::Source(io) => Error::Invalid(format!("Error receiving image data: {io}")),
            other => Error::internal(other),
        }
    }

    /// Streams `body` through the size cap, the format inspector and the hashers
    /// into the store, then flips the image from `from` to `active`. On failure the
    /// bytes are removed and the image goes back to `queued` (also when the content
    /// is not its `disk_format`, as Glance restores it; `killed` when the content was
    /// refused as unsafe).
    async fn ingest(
        &self,
        im: crate::model::Image,
        body: ByteStream,
        limit: u64,
        from: Status,
        mut guard: RestoreOnDrop,
    ) -> Result<()> {
        let id = im.id.as_str();
        // Glance's machine: saving may become killed, importing only goes back to queued
        let refused = if from == Status::Saving {
            Status::Killed
        } else {
            Status::Queued
        };
        let inspector = Arc::new(Mutex::new(Inspector::new()));
        let (teed, hashes) = hash::tee(capped(body, limit, Some(inspector.clone())));
        let stored = match self.store.put(id, teed).await {
            Ok(s) => s,
            Err(e) => {
                guard.disarm();
                self.set_status(id, from, Status::Queued).await?;
                return Err(self.store_error(e, limit));
            }
        };
        guard.disarm();
        let hashes = hashes.wait().await;
        let inspection = match Arc::try_unwrap(inspector) {
            Ok(m) => m.into_inner().ok().map(Inspector::finish),
            Err(_) => None,
        };
        let (Some(hashes), Some(inspection)) = (hashes, inspection) else {
            self.discard(id, &stored.location, from, refused).await;
            return Err(Error::Internal("upload pipeline lost its digests".into()));
        };
        let disk_format = im.disk_format.clone().unwrap_or_default();
        let container_format = im.container_format.clone().unwrap_or_default();
        match inspect::verify(
            &inspection,
            &disk_format,
            &container_format,
            !self.settings.require_format_match,
        ) {
            Ok(()) => {}
            // Glance: InvalidImageData -> 415, and the image is restored to queued
            Err(e @ inspect::InspectError::FormatMismatch { .. }) => {
                self.discard(id, &stored.location, from, Status::Queued)
                    .await;
                return Err(Error::InvalidImageData(e.to_string()));
            }
            Err(e) => {
                self.discard(id, &stored.location, from, refused).await;
                return Err(Error::Invalid(format!(
                    "Image failed format inspection: {e}"
                )));
            }
        }

        // -> active, in one transaction; the bytes are already durable
        let mut tx = self.db.begin_write().await?;
        let Some(mut im) = records::load(&mut tx, id).await? else {
            drop(tx);
            let _ = self.store.delete(&stored.location).await;
            return Err(Error::Gone(format!(
                "Image {id} was deleted during the upload."
            )));
        };
        if im.status != from {
            drop(tx);
            let _ = self.store.delete(&stored.location).await;
            return Err(Error::Conflict(im.status.transition_error(Status::Active)));
        }
        if let Some(owner) = &im.owner
            && self.settings.user_storage_quota > 0
        {
            let (_, used) = records::usage(&mut tx, owner).await?;
            let used = u64::try_from(used).unwrap_or(0);
            if used.saturating_add(stored.size) > self.settings.user_storage_quota {
                drop(tx);
                self.discard(id, &stored.location, from, Status::Queued)
                    .await;
                return Err(self.too_large(self.settings.user_storage_quota.saturating_sub(used)));
            }
        }
        im.status = Status::Active;
        im.size = i64::try_from(stored.size).ok();
        im.virtual_size = i64::try_from(inspection.virtual_size).ok();
        im.checksum = Some(hashes.md5);
        im.os_hash_algo = Some("sha512".into());
        im.os_hash_value = Some(hashes.sha512);
        im.location = Some(stored.location.clone());
        im.updated_at_us = now_us();
        records::save(&mut tx, &im).await?;
        tx.commit().await?;
        Ok(())
    }

    /// The most bytes this upload may bring: the size cap, and what is left of the
    /// owner's storage quota.
    async fn upload_limit(&self, owner: Option<&str>) -> Result<u64> {
        let mut limit = self.settings.image_size_cap;
        if let Some(owner) = owner
            && self.settings.user_storage_quota > 0
        {
            let mut conn = records::conn(&self.db).await?;
            let (_, used) = records::usage(&mut conn, owner).await?;
            let left = self
                .settings
                .user_storage_quota
                .saturating_sub(u64::try_from(used).unwrap_or(0));
            limit = limit.min(left);
        }
        Ok(limit)
    }

    fn too_large(&self, limit: u64) -> Error {
        Error::TooLarge(format!(
            "Image exceeds the storage quota or the image size cap: at most {limit} bytes can be stored."
        ))
    }

    /// `from` -> `to` if the image is still in `from` (queued also forgets the size).
    async fn set_status(&self, id: &str, from: Status, to: Status) -> Result<()> {
        let mut tx = self.db.begin_write().await?;
        if let Some(mut im) = records::load(&mut tx, id).await?
            && im.status == from
        {
            im.status = to;
            if to == Status::Queued {
                im.size = None;
            }
            im.updated_at_us = now_us();
            records::save(&mut tx, &im).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Removes stored bytes that will not become an active image, and sets the
    /// record's status (killed: the data was refused; queued: try again).
    async fn discard(&self, id: &str, location: &str, from: Status, status: Status) {
        if let Err(e) = self.store.delete(location).await {
            tracing::warn!(image_id = %id, error = %e, "refused image bytes not removed; recovery will");
        }
        if let Err(e) = self.set_status(id, from, status).await {
            tracing::warn!(image_id = %id, error = %e, "could not record upload failure; recovery will");
        }
    }

    /// Streams an image's data for the process to read (hash, copy to a file).
    /// `None` when the image has no data (204).
    pub async fn download(
        &self,
        ctx: &RequestContext,
        id: &str,
        range: Option<RangeRequest>,
    ) -> Result<Option<Download>> {
        self.open_data(ctx, id, range, Reader::Process).await
    }

    /// [`Self::download`] for a body that goes straight into a socket write
    /// (`GET /file`): the store may hand out mapped memory (see
    /// [`ImageStore::get_for_socket`]).
    pub async fn download_to_socket(
        &self,
        ctx: &RequestContext,
        id: &str,
        range: Option<RangeRequest>,
    ) -> Result<Option<Download>> {
        self.open_data(ctx, id, range, Reader::Kernel).await
    }

    async fn open_data(
        &self,
        ctx: &RequestContext,
        id: &str,
        range: Option<RangeRequest>,
        reader: Reader,
    ) -> Result<Option<Download>> {
        policy::reader(ctx, "download_image")?;
        let im = self.visible(ctx, id).await?;
        if im.status == Status::Deactivated && !ctx.is_admin() {
            return Err(Error::Forbidden(
                "The requested image has been deactivated. Image data download is forbidden."
                    .into(),
            ));
        }
        let (Some(location), Some(size), true) = (&im.location, im.size, im.status.has_data())
        else {
            return Ok(None);
        };
        let size = u64::try_from(size).unwrap_or(0);
        let range = range.map(|r| r.resolve(size)).transpose()?;
        let stream = match reader {
            Reader::Process => self.store.get(location, range.clone()).await,
            Reader::Kernel => self.store.get_for_socket(location, range.clone()).await,
        }
        .map_err(|e| match e {
            StoreError::NotFound(_) => {
                Error::NotFound(format!("Image data for {id} is missing from the store."))
            }
            other => Error::internal(other),
        })?;
        Ok(Some(Download {
            stream,
            size,
            range,
            checksum: im.checksum.clone(),
        }))
    }

    /// The file holding an active image's bytes on this host, when the store keeps
    /// it as one (the filesystem store): for the host's image cache, which links
    /// it. The caller must be allowed to download the image.
    pub async fn local_file(
        &self,
        ctx: &RequestContext,
        id: &str,
    ) -> Result<Option<std::path::PathBuf>> {
        policy::reader(ctx, "download_image")?;
        let im = self.visible(ctx, id).await?;
        if im.status != Status::Active {
            return Ok(None);
        }
        Ok(im
            .location
            .as_deref()
            .and_then(|l| self.store.local_path(l)))
    }

    /// Start-up: uploads cut by a crash go back to `queued`; bytes that no active
    /// or deactivated image refers to are removed.
    pub(crate) async fn recover(&self) -> Result<()> {
        let mut tx = self.db.begin_write().await?;
        let stuck = records::requeue_interrupted(&mut tx).await?;
        // and the import tasks that were running
        records::tasks::fail_interrupted(&mut tx).await?;
        tx.commit().await?;
        let live: HashSet<String> = records::ids_with_data(&self.db).await?;
        let report = self
            .store
            .recover(&move |id: &str| live.contains(id))
            .await
            .map_err(Error::internal)?;
        // staged data is only kept for an image still waiting for its import; after
        // a crash every image is back to queued, so nothing staged is kept
        self.staging
            .recover(&|_: &str| false)
            .await
            .map_err(Error::internal)?;
        if stuck > 0 || report.partial_removed > 0 || report.unreferenced_removed > 0 {
            tracing::info!(
                interrupted_uploads = stuck,
                partial_removed = report.partial_removed,
                unreferenced_removed = report.unreferenced_removed,
                "image store recovered"
            );
        }
        Ok(())
    }
}

/// Puts an image back to `queued` when the future moving its data is dropped (the
/// client went away mid-stream); the store removes its partial bytes itself.
struct RestoreOnDrop {
    pending: Option<(ferrostack_core::Db, String, Status)>,
}

impl RestoreOnDrop {
    fn new(db: &ferrostack_core::Db, id: &str, from: Status) -> Self {
        RestoreOnDrop {
            pending: Some((db.clone(), id.to_string(), from)),
        }
    }

    fn disarm(&mut self) {
        self.pending = None;
    }
}

impl Drop for RestoreOnDrop {
    fn drop(&mut self) {
        if let Some((db, id, from)) = self.pending.take()
            && let Ok(handle) = tokio::runtime::Handle::try_current()
        {
            handle.spawn(async move {
                let r: Result<()> = async {
                    let mut tx = db.begin_write().await?;
                    records::requeue_if(&mut tx, &id, from.as_str()).await?;
                    tx.commit().await?;
                    Ok(())
                }
                .await;
                if let Err(e) = r {
                    tracing::warn!(image_id = %id, error = %e, "interrupted upload not reset; restart recovery will");
                }
            });
        }
    }
}

/// The request body with the size cap applied and, when given, fed to the inspector.
fn capped(body: ByteStream, limit: u64, inspector: Option<Arc<Mutex<Inspector>>>) -> ByteStream {
    let mut seen: u64 = 0;
    Box::pin(body.map(move |chunk| {
        let chunk = chunk?;
        seen = seen.saturating_add(chunk.len() as u64);
        if seen > limit {
            return Err(io::Error::other(TooLarge(limit)));
        }
        if let Some(i) = &inspector
            && let Ok(mut i) = i.lock()
        {
            i.feed(&chunk);
        }
        Ok(chunk)
    }))
}

#[cfg(test)]
mod tests {
    use super::RangeRequest::{self, *};
    use crate::error::Error;

    #[test]
    fn ranges_resolve_like_http() {
        let r = |x: RangeRequest| {
            x.resolve(100)
                .map_err(|e| matches!(e, Error::RangeNotSatisfiable { size: 100 }))
        };
        assert_eq!(
            r(From {
                first: 0,
                last: Some(9)
            }),
            Ok(0..10)
        );
        assert_eq!(
            r(From {
                first: 90,
                last: None
            }),
            Ok(90..100)
        );
        assert_eq!(
            r(From {
                first: 90,
                last: Some(1000)
            }),
            Ok(90..100)
        );
        assert_eq!(r(Suffix(10)), Ok(90..100));
        assert_eq!(r(Suffix(1000)), Ok(0..100));
        assert_eq!(
            r(From {
                first: 100,
                last: None
            }),
            Err(true)
        );
        assert_eq!(
            r(From {
                first: 5,
                last: Some(4)
            }),
            Err(true)
        );
        assert_eq!(r(Suffix(0)), Err(true));
    }
}
