//! Key repositories on disk, Keystone's Fernet layout: a directory of files named by
//! integers, each holding one base64url Fernet key. `0` is the *staged* key (known to
//! every process before it becomes primary, so a rotation never invalidates tokens
//! another process just issued), the highest number is the *primary* key (encrypts),
//! the others are *secondary* (decrypt only). Rotation promotes the staged key to
//! primary, stages a fresh key and prunes the oldest secondaries beyond
//! `max_active_keys`. Used for token keys and for the keys that encrypt secrets at rest.

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::SystemTime;

use fernet::{Fernet, MultiFernet};

use crate::fsutil::{ensure_private_dir, sync_dir, write_private_atomic};

#[derive(Debug, thiserror::Error)]
pub enum KeyRepoError {
    #[error("key repository {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("key repository {path}: key file {file} is not a valid Fernet key")]
    BadKey { path: PathBuf, file: String },
    #[error("key repository {path} holds no primary key; run the key setup first")]
    Empty { path: PathBuf },
    #[error("max_active_keys must be at least 2 (staged + primary), got {0}")]
    TooFewKeys(usize),
}

/// What a rotation did, for the operator.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rotation {
    pub new_primary: u32,
    pub removed: Vec<u32>,
}

/// The keys loaded from a repository at one moment.
pub struct KeySet {
    primary: Fernet,
    all: MultiFernet,
    /// Key indexes, primary first.
    pub indexes: Vec<u32>,
}

impl KeySet {
    /// Encrypts with the primary key.
    pub fn encrypt(&self, plaintext: &[u8]) -> String {
        self.primary.encrypt(plaintext)
    }

    /// Decrypts with whichever key (primary, secondary or staged) matches.
    pub fn decrypt(&self, token: &str) -> Option<Vec<u8>> {
        self.all.decrypt(token).ok()
    }
}

/// A key repository directory.
#[derive(Debug, Clone)]
pub struct KeyRepository {
    dir: PathBuf,
    max_active_keys: usize,
}

impl KeyRepository {
    /// Opens `dir`, creating it with a staged (`0`) and a primary (`1`) key when it
    /// holds no keys yet (what `keystone-manage fernet_setup` does).
    pub fn open_or_init(dir: &Path, max_active_keys: usize) -> Result<Self, KeyRepoError> {
        if max_active_keys < 2 {
            return Err(KeyRepoError::TooFewKeys(max_active_keys));
        }
        let repo = KeyRepository {
            dir: dir.to_path_buf(),
            max_active_keys,
        };
        ensure_private_dir(dir).map_err(|e| repo.io(e))?;
        if repo.key_indexes()?.is_empty() {
            repo.write_key(0)?;
            repo.write_key(1)?;
        }
        Ok(repo)
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Loads every key; the highest index encrypts.
    pub fn load(&self) -> Result<KeySet, KeyRepoError> {
        let mut indexes = self.key_indexes()?;
        indexes.sort_unstable_by(|a, b| b.cmp(a));
        if indexes.len() < 2 && indexes.first().is_none_or(|i| *i == 0) {
            return Err(KeyRepoError::Empty {
                path: self.dir.clone(),
            });
        }
        let mut keys = Vec::with_capacity(indexes.len());
        for i in &indexes {
            let path = self.dir.join(i.to_string());
            let text = fs::read_to_string(&path).map_err(|e| self.io(e))?;
            let key = Fernet::new(text.trim()).ok_or_else(|| KeyRepoError::BadKey {
                path: self.dir.clone(),
                file: i.to_string(),
            })?;
            keys.push(key);
        }
        let primary = keys[0].clone();
        Ok(KeySet {
            primary,
            all: MultiFernet::new(keys),
            indexes,
        })
    }

    /// Promotes the staged key, stages a new one, prunes old secondaries.
    pub fn rotate(&self) -> Result<Rotation, KeyRepoError> {
        let mut indexes = self.key_indexes()?;
        indexes.sort_unstable();
        let highest = indexes.last().copied().unwrap_or(0);
        let new_primary = highest + 1;
        let staged = self.dir.join("0");
        if staged.exists() {
            fs::rename(&staged, self.dir.join(new_primary.to_string())).map_err(|e| self.io(e))?;
        } else {
            self.write_key(new_primary)?;
        }
        self.write_key(0)?;
        // Active keys now: 0 (staged), the secondaries and new_primary.
        let mut secondaries: Vec<u32> = indexes
            .into_iter()
            .filter(|i| *i != 0 && *i != new_primary)
            .collect();
        secondaries.sort_unstable();
        let keep_secondaries = self.max_active_keys.saturating_sub(2);
        let mut removed = Vec::new();
        while secondaries.len() > keep_secondaries {
            let oldest = secondaries.remove(0);
            fs::remove_file(self.dir.join(oldest.to_string())).map_err(|e| self.io(e))?;
            removed.push(oldest);
        }
        sync_dir(&self.dir).map_err(|e| self.io(e))?;
        Ok(Rotation {
            new_primary,
            removed,
        })
    }

    /// A cheap fingerprint of the directory (its listing and modification time), to
    /// notice a rotation made by another process.
    pub fn fingerprint(&self) -> Option<Fingerprint> {
        let mtime = fs::metadata(&self.dir).and_then(|m| m.modified()).ok()?;
        let mut idx = self.key_indexes().ok()?;
        idx.sort_unstable();
        Some((mtime, idx))
    }

    fn key_indexes(&self) -> Result<Vec<u32>, KeyRepoError> {
        let mut out = Vec::new();
        for entry in fs::read_dir(&self.dir).map_err(|e| self.io(e))? {
            let entry = entry.map_err(|e| self.io(e))?;
            if let Some(i) = entry
                .file_name()
                .to_str()
                .and_then(|n| n.parse::<u32>().ok())
            {
                out.push(i);
            }
        }
        Ok(out)
    }

    fn write_key(&self, index: u32) -> Result<(), KeyRepoError> {
        let key = Fernet::generate_key();
        write_private_atomic(&self.dir.join(index.to_string()), key.as_bytes())
            .map_err(|e| self.io(e))
    }

    fn io(&self, source: std::io::Error) -> KeyRepoError {
        KeyRepoError::Io {
            path: self.dir.clone(),
            source,
        }
    }
}

/// A repository plus its loaded keys, reloaded when another process rotates them.
pub struct KeyRing {
    repo: KeyRepository,
    state: RwLock<(Option<Fingerprint>, Arc<KeySet>)>,
}

/// The directory's modification time and key indexes when last loaded.
type Fingerprint = (SystemTime, Vec<u32>);

impl KeyRing {
    pub fn new(repo: KeyRepository) -> Result<Self, KeyRepoError> {
        let fp = repo.fingerprint();
        let keys = Arc::new(repo.load()?);
        Ok(KeyRing {
            repo,
            state: RwLock::new((fp, keys)),
        })
    }

    /// The current keys.
    pub fn keys(&self) -> Arc<KeySet> {
        match self.state.read() {
            Ok(s) => s.1.clone(),
            Err(poisoned) => poisoned.into_inner().1.clone(),
        }
    }

    /// Reloads the keys if the directory changed since the last load. Returns whether
    /// anything changed.
    pub fn refresh(&self) -> Result<bool, KeyRepoError> {
        let fp = self.repo.fingerprint();
        {
            let s = match self.state.read() {
                Ok(s) => s,
                Err(p) => p.into_inner(),
            };
            if s.0 == fp {
                return Ok(false);
            }
        }
        let keys = Arc::new(self.repo.load()?);
        let mut s = match self.state.write() {
            Ok(s) => s,
            Err(p) => p.into_inner(),
        };
        *s = (fp, keys);
        Ok(true)
    }

    pub fn repo(&self) -> &KeyRepository {
        &self.repo
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn init_creates_staged_and_primary_keys_with_private_permissions() {
        let dir = tempfile::tempdir().unwrap();
        let repo = KeyRepository::open_or_init(&dir.path().join("k"), 3).unwrap();
        let keys = repo.load().unwrap();
        assert_eq!(keys.indexes, vec![1, 0]);
        let mode = fs::metadata(repo.dir().join("1"))
            .unwrap()
            .permissions()
            .mode()
            & 0o777;
        assert_eq!(mode, 0o600);
        let dmode = fs::metadata(repo.dir()).unwrap().permissions().mode() & 0o777;
        assert_eq!(dmode, 0o700);
    }

    #[test]
    fn rotation_keeps_recent_tokens_decryptable_and_prunes_old_keys() {
        let dir = tempfile::tempdir().unwrap();
        let repo = KeyRepository::open_or_init(dir.path(), 3).unwrap();
        let before = repo.load().unwrap().encrypt(b"hello");
        let r = repo.rotate().unwrap();
        assert_eq!(r.new_primary, 2);
        assert!(r.removed.is_empty());
        let keys = repo.load().unwrap();
        assert_eq!(keys.indexes, vec![2, 1, 0]);
        assert_eq!(keys.decrypt(&before).unwrap(), b"hello");
        // A token made with the staged key before rotation decrypts after it: the
        // staged key became primary.
        let r2 = repo.rotate().unwrap();
        assert_eq!(r2.removed, vec![1]);
        let keys = repo.load().unwrap();
        assert_eq!(keys.indexes, vec![3, 2, 0]);
        assert!(keys.decrypt(&before).is_none(), "key 1 was pruned");
    }

    #[test]
    fn keyring_notices_rotation_by_another_process() {
        let dir = tempfile::tempdir().unwrap();
        let repo = KeyRepository::open_or_init(dir.path(), 3).unwrap();
        let ring = KeyRing::new(repo.clone()).unwrap();
        assert!(!ring.refresh().unwrap());
        repo.rotate().unwrap();
        assert!(ring.refresh().unwrap());
        assert_eq!(ring.keys().indexes, vec![2, 1, 0]);
    }

    #[test]
    fn garbage_key_file_is_reported() {
        let dir = tempfile::tempdir().unwrap();
        let repo = KeyRepository::open_or_init(dir.path(), 3).unwrap();
        fs::write(dir.path().join("1"), "not a key").unwrap();
        assert!(matches!(repo.load(), Err(KeyRepoError::BadKey { .. })));
    }
}
