//! Per-disk LUKS keys, kept wrapped by a key-encryption key (KEK). Each encrypted
//! disk gets a fresh passphrase (base64 of 64 random bytes, as upstream makes for
//! Barbican) and a secret UUID (for a libvirt secret). The passphrase is stored only
//! sealed with AES-256-GCM under the current KEK, in `instances/<uuid>/disk.keys`
//! (0600), with the KEK's id so a rotation can rewrap them. KEKs live in
//! `STATE/keys/disk-kek/<n>` (0600, 32 random bytes, base64); the highest is current.

use std::collections::BTreeMap;
use std::path::PathBuf;

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use base64::Engine;
use rand::RngCore;
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use super::{DiskError, Result};

const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD;
const FILE: &str = "disk.keys";

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Wrapped {
    secret_uuid: String,
    kek: u32,
    nonce: String,
    sealed: String,
}

pub struct DiskKeys {
    kek_dir: PathBuf,
    instances_dir: PathBuf,
}

fn key_err(e: impl std::fmt::Display) -> DiskError {
    DiskError::Key(e.to_string())
}

impl DiskKeys {
    /// Opens (creating the first KEK when there is none).
    pub fn open(kek_dir: PathBuf, instances_dir: PathBuf) -> Result<DiskKeys> {
        ferrostack_core::fsutil::ensure_private_dir(&kek_dir)
            .map_err(DiskError::io("creating", &kek_dir))?;
        let k = DiskKeys {
            kek_dir,
            instances_dir,
        };
        if k.keks()?.is_empty() {
            k.new_kek(1)?;
        }
        Ok(k)
    }

    fn keks(&self) -> Result<BTreeMap<u32, PathBuf>> {
        let mut out = BTreeMap::new();
        let rd =
            std::fs::read_dir(&self.kek_dir).map_err(DiskError::io("reading", &self.kek_dir))?;
        for e in rd.flatten() {
            if let Some(n) = e.file_name().to_str().and_then(|n| n.parse::<u32>().ok()) {
                out.insert(n, e.path());
            }
        }
        Ok(out)
    }

    fn new_kek(&self, id: u32) -> Result<()> {
        let mut k = Zeroizing::new([0u8; 32]);
        rand::thread_rng().fill_bytes(k.as_mut());
        let path = self.kek_dir.join(id.to_string());
        ferrostack_core::fsutil::write_private_atomic(&path, B64.encode(k.as_ref()).as_bytes())
            .map_err(DiskError::io("writing", &path))
    }

    fn kek(&self, id: u32) -> Result<Aes256Gcm> {
        let path = self.kek_dir.join(id.to_string());
        let text = Zeroizing::new(
            std::fs::read_to_string(&path).map_err(DiskError::io("reading", &path))?,
        );
        let bytes = Zeroizing::new(B64.decode(text.trim()).map_err(key_err)?);
        Aes256Gcm::new_from_slice(&bytes).map_err(key_err)
    }

    fn current(&self) -> Result<u32> {
        self.keks()?
            .keys()
            .next_back()
            .copied()
            .ok_or_else(|| DiskError::Key("no key-encryption key".into()))
    }

    fn file(&self, instance: &str) -> PathBuf {
        self.instances_dir.join(instance).join(FILE)
    }

    fn read(&self, instance: &str) -> Result<BTreeMap<String, Wrapped>> {
        let path = self.file(instance);
        match std::fs::read(&path) {
            Ok(b) => serde_json::from_slice(&b).map_err(key_err),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(BTreeMap::new()),
            Err(e) => Err(DiskError::Io {
                what: "reading",
                path,
                source: e,
            }),
        }
    }

    fn write(&self, instance: &str, keys: &BTreeMap<String, Wrapped>) -> Result<()> {
        let path = self.file(instance);
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(DiskError::io("creating", dir))?;
        }
        let bytes = serde_json::to_vec(keys).map_err(key_err)?;
        ferrostack_core::fsutil::write_private_atomic(&path, &bytes)
            .map_err(DiskError::io("writing", &path))
    }

    fn seal(&self, kek: u32, aad: &str, plain: &[u8]) -> Result<(String, String)> {
        let mut nonce = [0u8; 12];
        rand::thread_rng().fill_bytes(&mut nonce);
        let sealed = self
            .kek(kek)?
            .encrypt(
                Nonce::from_slice(&nonce),
                Payload {
                    msg: plain,
                    aad: aad.as_bytes(),
                },
            )
            .map_err(|_| DiskError::Key("sealing failed".into()))?;
        Ok((B64.encode(nonce), B64.encode(sealed)))
    }

    fn unseal(&self, w: &Wrapped, aad: &str) -> Result<Zeroizing<String>> {
        let nonce = B64.decode(&w.nonce).map_err(key_err)?;
        let sealed = B64.decode(&w.sealed).map_err(key_err)?;
        if nonce.len() != 12 {
            return Err(DiskError::Key("bad nonce".into()));
        }
        let plain = self
            .kek(w.kek)?
            .decrypt(
                Nonce::from_slice(&nonce),
                Payload {
                    msg: &sealed,
                    aad: aad.as_bytes(),
                },
            )
            .map_err(|_| DiskError::Key(format!("cannot unseal the key of {aad}")))?;
        String::from_utf8(plain)
            .map(Zeroizing::new)
            .map_err(|_| DiskError::Key("key is not text".into()))
    }

    /// A new key for `disk` of `instance`: (secret uuid, passphrase).
    pub fn create(&self, instance: &str, disk: &str) -> Result<(String, Zeroizing<String>)> {
        let mut raw = Zeroizing::new([0u8; 64]);
        rand::thread_rng().fill_bytes(raw.as_mut());
        let pass = Zeroizing::new(B64.encode(raw.as_ref()));
        let kek = self.current()?;
        let aad = format!("{instance}/{disk}");
        let (nonce, sealed) = self.seal(kek, &aad, pass.as_bytes())?;
        let secret_uuid = uuid::Uuid::new_v4().to_string();
        let mut keys = self.read(instance)?;
        keys.insert(
            disk.to_string(),
            Wrapped {
                secret_uuid: secret_uuid.clone(),
                kek,
                nonce,
                sealed,
            },
        );
        self.write(instance, &keys)?;
        Ok((secret_uuid, pass))
    }

    /// The key of `disk`; an error when there is none.
    pub fn load(&self, instance: &str, disk: &str) -> Result<(String, Zeroizing<String>)> {
        let keys = self.read(instance)?;
        let w = keys
            .get(disk)
            .ok_or_else(|| DiskError::Key(format!("no key for {instance}/{disk}")))?;
        Ok((
            w.secret_uuid.clone(),
            self.unseal(w, &format!("{instance}/{disk}"))?,
        ))
    }

    /// Forgets an instance's keys (its disks become unreadable). Missing = done.
    pub fn delete_instance(&self, instance: &str) -> Result<()> {
        let path = self.file(instance);
        match std::fs::remove_file(&path) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(DiskError::Io {
                what: "removing",
                path,
                source: e,
            }),
        }
    }

    /// Makes a new current KEK and rewraps every stored disk key with it; returns
    /// how many keys were rewrapped. Old KEKs stay (a crash mid-rotation leaves every
    /// key readable); [`DiskKeys::prune`] removes the unused ones.
    pub fn rotate(&self) -> Result<usize> {
        let next = self.current()? + 1;
        self.new_kek(next)?;
        let mut n = 0;
        let rd = match std::fs::read_dir(&self.instances_dir) {
            Ok(rd) => rd,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(0),
            Err(e) => {
                return Err(DiskError::Io {
                    what: "reading",
                    path: self.instances_dir.clone(),
                    source: e,
                });
            }
        };
        for e in rd.flatten() {
            let Some(instance) = e.file_name().to_str().map(str::to_string) else {
                continue;
            };
            if !e.path().join(FILE).exists() {
                continue;
            }
            let mut keys = self.read(&instance)?;
            for (disk, w) in keys.iter_mut() {
                let aad = format!("{instance}/{disk}");
                let pass = self.unseal(w, &aad)?;
                let (nonce, sealed) = self.seal(next, &aad, pass.as_bytes())?;
                *w = Wrapped {
                    secret_uuid: w.secret_uuid.clone(),
                    kek: next,
                    nonce,
                    sealed,
                };
                n += 1;
            }
            self.write(&instance, &keys)?;
        }
        Ok(n)
    }

    /// Removes KEKs older than the current one (after a completed rotation).
    pub fn prune(&self) -> Result<usize> {
        let cur = self.current()?;
        let mut n = 0;
        for (id, path) in self.keks()? {
            if id < cur {
                std::fs::remove_file(&path).map_err(DiskError::io("removing", &path))?;
                n += 1;
            }
        }
        Ok(n)
    }

    #[cfg(test)]
    pub(crate) fn kek_dir(&self) -> &std::path::Path {
        &self.kek_dir
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn keys_are_sealed_survive_rotation_and_are_forgotten_with_the_instance() {
        use std::os::unix::fs::PermissionsExt;
        let t = tempfile::tempdir().unwrap();
        let keys = DiskKeys::open(t.path().join("kek"), t.path().join("instances")).unwrap();
        let (uuid, pass) = keys.create("vm1", "disk").unwrap();
        assert_eq!(B64.decode(pass.as_bytes()).unwrap().len(), 64);
        let file = t.path().join("instances/vm1/disk.keys");
        let stored = std::fs::read_to_string(&file).unwrap();
        assert!(
            !stored.contains(pass.as_str()),
            "the passphrase is stored sealed"
        );
        assert_eq!(
            std::fs::metadata(&file).unwrap().permissions().mode() & 0o777,
            0o600
        );
        let (u2, p2) = keys.load("vm1", "disk").unwrap();
        assert_eq!((u2.as_str(), p2.as_str()), (uuid.as_str(), pass.as_str()));

        assert_eq!(keys.rotate().unwrap(), 1);
        assert_eq!(keys.prune().unwrap(), 1);
        assert_eq!(std::fs::read_dir(keys.kek_dir()).unwrap().count(), 1);
        assert_eq!(keys.load("vm1", "disk").unwrap().1.as_str(), pass.as_str());

        // A sealed key moved to another instance does not open (bound to its name).
        let other = t.path().join("instances/vm2");
        std::fs::create_dir_all(&other).unwrap();
        std::fs::copy(&file, other.join("disk.keys")).unwrap();
        assert!(keys.load("vm2", "disk").is_err());

        keys.delete_instance("vm1").unwrap();
        keys.delete_instance("vm1").unwrap();
        assert!(keys.load("vm1", "disk").is_err());
    }
}
