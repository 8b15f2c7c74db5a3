//! The `Identity` service object: owns the database handle, the key rings, the
//! in-memory revocation index, the validated-token cache and a per-change snapshot
//! of the small, hot tables (roles, role implications, catalog). Every write goes
//! through [`Identity::commit`], which persists revocation events with the change
//! and then bumps the *epoch* so that cached tokens and snapshots are rebuilt.

use std::collections::{BTreeSet, HashMap};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

use ferrostack_core::Db;
use ferrostack_core::config::Config;
use ferrostack_core::keyrepo::{KeyRepository, KeyRing};

use crate::auth::ValidToken;
use crate::error::{Error, Result};
use crate::model::{Endpoint, Role, Service};
use crate::password::{self, HashCost};
use crate::records::{self, Tx};
use crate::revoke::{RevocationEvent, RevocationIndex};

/// The identity migrations, numbered in identity's range (1_000_000+).
pub const MIGRATIONS: &[(i64, &str, &str)] = &[
    (
        1_000_001,
        "identity",
        include_str!("../migrations/1000001_identity.sql"),
    ),
    (
        1_000_002,
        "identity: application credential expiry in microseconds",
        include_str!("../migrations/1000002_appcred_expires_us.sql"),
    ),
];

/// The settings the identity service reads.
#[derive(Debug, Clone)]
pub struct Settings {
    pub token: ferrostack_core::config::TokenConfig,
    pub credential: ferrostack_core::config::CredentialConfig,
    pub security: ferrostack_core::config::SecurityComplianceConfig,
    pub identity: ferrostack_core::config::IdentityConfig,
}

impl Settings {
    pub fn from_config(c: &Config) -> Self {
        Settings {
            token: c.token.clone(),
            credential: c.credential.clone(),
            security: c.security_compliance.clone(),
            identity: c.identity.clone(),
        }
    }

    pub(crate) fn hash_cost(&self) -> HashCost {
        HashCost {
            memory_kib: self.identity.password_hash_memory_kib,
            iterations: self.identity.password_hash_iterations,
        }
    }
}

/// Roles, implications and the catalog as of one epoch.
pub(crate) struct Snapshot {
    pub epoch: u64,
    pub roles: HashMap<String, Role>,
    /// prior role id → directly implied role ids.
    pub implies: HashMap<String, Vec<String>>,
    pub services: Vec<Service>,
    pub endpoints: Vec<Endpoint>,
}

impl Snapshot {
    /// The role ids `direct` grants, implied roles included, sorted and unique.
    pub fn expand_roles<'a>(&self, direct: impl IntoIterator<Item = &'a String>) -> Vec<String> {
        let mut seen: BTreeSet<String> = BTreeSet::new();
        let mut stack: Vec<String> = direct.into_iter().cloned().collect();
        while let Some(r) = stack.pop() {
            if seen.insert(r.clone())
                && let Some(next) = self.implies.get(&r)
            {
                stack.extend(next.iter().cloned());
            }
        }
        seen.into_iter()
            .filter(|r| self.roles.contains_key(r))
            .collect()
    }
}

pub struct Identity {
    pub(crate) db: Db,
    pub(crate) settings: Settings,
    pub(crate) token_keys: KeyRing,
    pub(crate) credential_keys: KeyRing,
    pub(crate) revocations: RwLock<RevocationIndex>,
    epoch: AtomicU64,
    pub(crate) cache: quick_cache::sync::Cache<String, Arc<ValidToken>>,
    snapshot: RwLock<Option<Arc<Snapshot>>>,
    pub(crate) dummy_hash: String,
}

impl Identity {
    /// Opens the identity service: migrates the database, opens (or creates) the
    /// key repositories under `keys_dir`, and loads the revocation events.
    pub async fn open(db: Db, settings: Settings, keys_dir: &Path) -> Result<Arc<Identity>> {
        db.migrate(MIGRATIONS).await.map_err(Error::internal)?;
        let token_repo = KeyRepository::open_or_init(
            &keys_dir.join("fernet-keys"),
            settings.token.max_active_keys,
        )?;
        let cred_repo = KeyRepository::open_or_init(&keys_dir.join("credential-keys"), 3)?;
        let cost = settings.hash_cost();
        let dummy_hash = tokio::task::spawn_blocking(move || password::dummy_hash(cost))
            .await
            .map_err(Error::internal)?;
        let identity = Identity {
            cache: quick_cache::sync::Cache::new(settings.token.cache_size.max(16)),
            db,
            settings,
            token_keys: KeyRing::new(token_repo)?,
            credential_keys: KeyRing::new(cred_repo)?,
            revocations: RwLock::new(RevocationIndex::default()),
            epoch: AtomicU64::new(1),
            snapshot: RwLock::new(None),
            dummy_hash,
        };
        identity.load_revocations().await?;
        Ok(Arc::new(identity))
    }

    pub fn db(&self) -> &Db {
        &self.db
    }

    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    /// Re-reads the token key repository if another process rotated it.
    pub fn refresh_keys(&self) -> Result<bool> {
        let a = self.token_keys.refresh()?;
        let b = self.credential_keys.refresh()?;
        Ok(a || b)
    }

    pub(crate) fn epoch(&self) -> u64 {
        self.epoch.load(Ordering::Acquire)
    }

    /// Commits a write and makes it visible to validation: revocation events (already
    /// inserted in `tx` with [`Identity::record_revocation`]) join the in-memory
    /// index, and the epoch moves on so cached tokens are re-checked.
    pub(crate) async fn commit(&self, tx: Tx, events: Vec<RevocationEvent>) -> Result<()> {
        tx.commit().await?;
        if !events.is_empty() {
            let mut idx = self.revocations.write().unwrap_or_else(|p| p.into_inner());
            for e in &events {
                idx.add(e);
            }
        }
        self.epoch.fetch_add(1, Ordering::AcqRel);
        Ok(())
    }

    /// Inserts a revocation event into the transaction; pass it to `commit` too.
    pub(crate) async fn record_revocation(&self, tx: &mut Tx, e: &RevocationEvent) -> Result<()> {
        records::revocations::insert(tx, e).await?;
        Ok(())
    }

    async fn load_revocations(&self) -> Result<()> {
        // Events older than any token that could still validate are dropped.
        let horizon = ferrostack_core::time::unix_now()
            - self.settings.token.expiration
            - self.settings.token.allow_expired_window
            - 60;
        records::revocations::purge_before(&self.db, horizon).await?;
        let mut idx = RevocationIndex::default();
        for e in records::revocations::all(&self.db).await? {
            idx.add(&e);
        }
        *self.revocations.write().unwrap_or_else(|p| p.into_inner()) = idx;
        Ok(())
    }

    /// The roles/implications/catalog snapshot for the current epoch.
    pub(crate) async fn snapshot(&self) -> Result<Arc<Snapshot>> {
        let epoch = self.epoch();
        if let Some(s) = self
            .snapshot
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .as_ref()
            && s.epoch == epoch
        {
            return Ok(s.clone());
        }
        let mut roles = HashMap::new();
        for role in records::roles::all(&self.db).await? {
            roles.insert(role.id.clone(), role);
        }
        let mut implies: HashMap<String, Vec<String>> = HashMap::new();
        for (prior, implied) in records::roles::implications(&self.db).await? {
            implies.entry(prior).or_default().push(implied);
        }
        let services = records::catalog::services(&self.db).await?;
        let endpoints = records::catalog::endpoints(&self.db).await?;
        let snap = Arc::new(Snapshot {
            epoch,
            roles,
            implies,
            services,
            endpoints,
        });
        *self.snapshot.write().unwrap_or_else(|p| p.into_inner()) = Some(snap.clone());
        Ok(snap)
    }
}

/// Merges PATCH extras into stored extras (null removes a key), as Keystone does.
pub(crate) fn merge_extra(
    stored: &mut serde_json::Map<String, serde_json::Value>,
    patch: serde_json::Map<String, serde_json::Value>,
) {
    for (k, v) in patch {
        if v.is_null() {
            stored.remove(&k);
        } else {
            stored.insert(k, v);
        }
    }
}
