//! The `Networks` service object and its migrations.

use ferrostack_core::Db;

/// The network migrations, numbered in network's range (4_000_000+).
pub const MIGRATIONS: &[(i64, &str, &str)] = &[];

/// Settings from `[network]` and the network part of `[quota]`.
#[derive(Debug, Clone, Default)]
pub struct Settings {
    pub network: ferrostack_core::config::NetworkConfig,
    pub quota: ferrostack_core::config::QuotaConfig,
}

pub struct Networks {
    pub(crate) db: Db,
    pub(crate) settings: Settings,
}

impl Networks {
    /// Applies migrations and returns the service.
    pub async fn open(db: Db, settings: Settings) -> crate::Result<Networks> {
        db.migrate(MIGRATIONS)
            .await
            .map_err(|e| crate::Error::Internal(Box::new(e)))?;
        Ok(Networks { db, settings })
    }

    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    pub fn db(&self) -> &Db {
        &self.db
    }
}
