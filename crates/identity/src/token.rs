//! The token format: a Fernet token (AES-128-CBC + HMAC-SHA256, keys from the token
//! key repository) around a compact postcard payload. Nothing is stored per token;
//! everything a validator needs beyond the payload (names, roles, enabled flags) is
//! looked up and cached. Keystone's Fernet provider works the same way.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::RngCore;
use serde::{Deserialize, Serialize};

use ferrostack_core::keyrepo::KeyRing;

/// How the user authenticated, as in the token's `methods`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Method {
    Password,
    Token,
    ApplicationCredential,
    Ec2Credential,
}

impl Method {
    pub fn name(self) -> &'static str {
        match self {
            Method::Password => "password",
            Method::Token => "token",
            Method::ApplicationCredential => "application_credential",
            Method::Ec2Credential => "ec2credential",
        }
    }
}

/// What the token is scoped to, by id.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum ScopeRef {
    Unscoped,
    Project(String),
    Domain(String),
    System,
}

/// Everything a token carries.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Payload {
    pub user_id: String,
    pub methods: Vec<Method>,
    pub scope: ScopeRef,
    /// Unix seconds.
    pub expires_at: i64,
    /// Unix microseconds (revocation compares at this precision).
    pub issued_at_us: i64,
    /// The token's own audit id, then its parent's when rescoped.
    pub audit_ids: Vec<String>,
    pub application_credential_id: Option<String>,
}

const FORMAT_VERSION: u8 = 1;

/// A new audit id: 16 random bytes, URL-safe base64 without padding (22 chars).
pub fn new_audit_id() -> String {
    let mut b = [0u8; 16];
    rand::rngs::OsRng.fill_bytes(&mut b);
    URL_SAFE_NO_PAD.encode(b)
}

/// Encrypts a payload into a token string with the primary key.
pub fn seal(keys: &KeyRing, payload: &Payload) -> Result<String, postcard::Error> {
    let mut bytes = vec![FORMAT_VERSION];
    bytes.extend(postcard::to_stdvec(payload)?);
    Ok(keys.keys().encrypt(&bytes))
}

/// Decrypts and decodes a token; `None` when no key opens it or it is not ours.
/// When no current key opens it, the key repository is re-read once in case
/// another process rotated the keys.
pub fn open(keys: &KeyRing, token: &str) -> Option<Payload> {
    if token.len() > 8192 {
        return None;
    }
    let bytes = match keys.keys().decrypt(token) {
        Some(b) => b,
        None => {
            if matches!(keys.refresh(), Ok(true)) {
                keys.keys().decrypt(token)?
            } else {
                return None;
            }
        }
    };
    let (version, rest) = bytes.split_first()?;
    if *version != FORMAT_VERSION {
        return None;
    }
    postcard::from_bytes(rest).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use ferrostack_core::keyrepo::KeyRepository;

    fn payload() -> Payload {
        Payload {
            user_id: "0123456789abcdef0123456789abcdef".into(),
            methods: vec![Method::Password],
            scope: ScopeRef::Project("fedcba9876543210fedcba9876543210".into()),
            expires_at: 1_900_000_000,
            issued_at_us: 1_800_000_000_000_000,
            audit_ids: vec![new_audit_id()],
            application_credential_id: None,
        }
    }

    #[test]
    fn tokens_round_trip_and_survive_one_rotation() {
        let dir = tempfile::tempdir().unwrap();
        let repo = KeyRepository::open_or_init(dir.path(), 3).unwrap();
        let ring = KeyRing::new(repo.clone()).unwrap();
        let p = payload();
        let t = seal(&ring, &p).unwrap();
        assert!(t.len() < 300, "token is compact: {}", t.len());
        assert_eq!(open(&ring, &t), Some(p.clone()));
        repo.rotate().unwrap();
        // The ring notices the rotation lazily; the old token still opens.
        assert_eq!(open(&ring, &t), Some(p));
    }

    #[test]
    fn garbled_and_foreign_tokens_do_not_open() {
        let dir = tempfile::tempdir().unwrap();
        let ring = KeyRing::new(KeyRepository::open_or_init(dir.path(), 3).unwrap()).unwrap();
        let t = seal(&ring, &payload()).unwrap();
        let mut garbled = t.clone().into_bytes();
        let mid = garbled.len() / 2;
        garbled[mid] = if garbled[mid] == b'A' { b'B' } else { b'A' };
        assert_eq!(open(&ring, &String::from_utf8(garbled).unwrap()), None);
        assert_eq!(open(&ring, "gAAAAAnonsense"), None);
        let other = tempfile::tempdir().unwrap();
        let other_ring =
            KeyRing::new(KeyRepository::open_or_init(other.path(), 3).unwrap()).unwrap();
        assert_eq!(open(&other_ring, &t), None);
    }

    #[test]
    fn audit_ids_look_like_keystones() {
        let a = new_audit_id();
        assert_eq!(a.len(), 22);
        assert_ne!(a, new_audit_id());
    }
}
