//! The `Compute` service object: the database, the services it calls (images,
//! networks), settings, and the wake-up signal that tells the scheduler and host
//! agents that desired state changed.

use std::sync::Arc;

use tokio::sync::{Mutex, watch};

use ferrostack_core::Db;
use ferrostack_image::Images;
use ferrostack_network::Networks;

/// The compute migrations, numbered in compute's range (3_000_000+).
pub const MIGRATIONS: &[(i64, &str, &str)] = &[
    (
        3_000_001,
        "compute",
        include_str!("../migrations/3000001_compute.sql"),
    ),
    (
        3_000_002,
        "catalog",
        include_str!("../migrations/3000002_catalog.sql"),
    ),
    (
        3_000_003,
        "server pages",
        include_str!("../migrations/3000003_server_pages.sql"),
    ),
    (
        3_000_004,
        "console tokens",
        include_str!("../migrations/3000004_console_tokens.sql"),
    ),
];

/// Settings from `[compute]` and `[quota]`.
#[derive(Debug, Clone, Default)]
pub struct Settings {
    /// Where the agent keeps its work files (snapshots in flight, fake guests).
    pub state_dir: std::path::PathBuf,
    pub compute: ferrostack_core::config::ComputeConfig,
    pub quota: ferrostack_core::config::QuotaConfig,
    /// Which consoles exist and the URLs users get for them.
    pub consoles: crate::consoles::ConsoleSettings,
}

pub struct Compute {
    pub(crate) db: Db,
    pub(crate) images: Arc<Images>,
    pub(crate) networks: Arc<Networks>,
    pub(crate) settings: Settings,
    /// Bumped whenever desired state changes (new server, action, delete); the
    /// scheduler and agents each hold a receiver, so no change is missed.
    pub(crate) wake: watch::Sender<u64>,
    /// The agents this controller can reach, by host name.
    pub(crate) links:
        std::sync::RwLock<std::collections::HashMap<String, Arc<dyn crate::hosts::HostLink>>>,
    /// Serialises quota check + write of creates and resizes in this process.
    pub(crate) quota_lock: Mutex<()>,
    /// Bumped whenever console tokens are revoked: open console sessions of this
    /// process look at their token again at once (others within a few seconds).
    pub(crate) console_revoked: watch::Sender<u64>,
}

impl Compute {
    /// The image service as a host's image cache reads it.
    pub fn image_source(&self) -> Arc<dyn ferrostack_virt::disk::ImageSource> {
        Arc::new(crate::agent::image_source::ImageServiceSource::new(
            self.images.clone(),
        ))
    }

    /// Applies migrations and returns the service.
    pub async fn open(
        db: Db,
        images: Arc<Images>,
        networks: Arc<Networks>,
        settings: Settings,
    ) -> crate::Result<Compute> {
        db.migrate(MIGRATIONS)
            .await
            .map_err(|e| crate::Error::Internal(Box::new(e)))?;
        Ok(Compute {
            db,
            images,
            networks,
            settings,
            wake: watch::channel(0).0,
            quota_lock: Mutex::new(()),
            links: Default::default(),
            console_revoked: watch::channel(0).0,
        })
    }

    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    pub fn db(&self) -> &Db {
        &self.db
    }

    pub fn images(&self) -> &Arc<Images> {
        &self.images
    }

    pub fn networks(&self) -> &Arc<Networks> {
        &self.networks
    }

    /// A receiver that changes whenever desired state does.
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.wake.subscribe()
    }

    /// Tells the scheduler and agents to look again.
    pub fn poke(&self) {
        self.wake.send_modify(|n| *n = n.wrapping_add(1));
    }
}
