//! The image service as a host's image cache sees it ([`ImageSource`]): image
//! records and bytes read with the agent's own admin context, in process today
//! (a remote `ferrostack agent` will read them over HTTP through the same trait).

use std::io;
use std::sync::Arc;

use async_trait::async_trait;
use ferrostack_core::RequestContext;
use ferrostack_core::context::Scope;
use ferrostack_image::Images;
use ferrostack_virt::disk::{ByteStream, ImageSource, SourceImage};

pub struct ImageServiceSource {
    images: Arc<Images>,
}

impl ImageServiceSource {
    pub fn new(images: Arc<Images>) -> ImageServiceSource {
        ImageServiceSource { images }
    }

    fn context() -> RequestContext {
        RequestContext {
            user_id: "ferrostack-agent".into(),
            user_name: "ferrostack-agent".into(),
            user_domain_id: "default".into(),
            user_domain_name: "Default".into(),
            scope: Scope::System,
            roles: vec!["admin".into(), "member".into(), "reader".into()],
            application_credential_id: None,
            unrestricted: false,
            audit_id: String::new(),
        }
    }
}

fn io_err(e: ferrostack_image::Error) -> io::Error {
    match e {
        ferrostack_image::Error::NotFound(m) => io::Error::new(io::ErrorKind::NotFound, m),
        other => io::Error::other(other.to_string()),
    }
}

#[async_trait]
impl ImageSource for ImageServiceSource {
    async fn describe(&self, image_id: &str) -> io::Result<SourceImage> {
        let im = self
            .images
            .get(&Self::context(), image_id)
            .await
            .map_err(io_err)?;
        Ok(SourceImage {
            id: im.id,
            status: im.status.as_str().to_string(),
            disk_format: im.disk_format,
            size: im.size.and_then(|s| u64::try_from(s).ok()),
            checksum: im.checksum,
            os_hash_algo: im.os_hash_algo,
            os_hash_value: im.os_hash_value,
        })
    }

    async fn local_file(&self, image_id: &str) -> io::Result<Option<std::path::PathBuf>> {
        self.images
            .local_file(&Self::context(), image_id)
            .await
            .map_err(io_err)
    }

    async fn open(&self, image_id: &str) -> io::Result<ByteStream> {
        match self
            .images
            .download(&Self::context(), image_id, None)
            .await
            .map_err(io_err)?
        {
            Some(d) => Ok(d.stream),
            None => Err(io::Error::new(
                io::ErrorKind::NotFound,
                format!("image {image_id} has no data"),
            )),
        }
    }
}
