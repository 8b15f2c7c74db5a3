//! Password (and application credential secret) hashing: Argon2id with a random
//! salt, stored as a PHC string; verification is constant-time inside argon2.
//! Hashing is slow on purpose, so callers run it off the async reactor.

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use rand::rngs::OsRng;

use crate::error::{Error, Result};

/// The cost parameters, from `[identity]`.
#[derive(Debug, Clone, Copy)]
pub struct HashCost {
    pub memory_kib: u32,
    pub iterations: u32,
}

fn hasher(cost: HashCost) -> Result<Argon2<'static>> {
    let params = Params::new(cost.memory_kib, cost.iterations, 1, None)
        .map_err(|e| Error::Internal(format!("argon2 parameters: {e}").into()))?;
    Ok(Argon2::new(Algorithm::Argon2id, Version::V0x13, params))
}

/// Hashes a password into a PHC string.
pub fn hash(password: &str, cost: HashCost) -> Result<String> {
    let salt = SaltString::generate(&mut OsRng);
    hasher(cost)?
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| Error::Internal(format!("password hashing failed: {e}").into()))
}

/// Checks a password against a stored PHC string. The cost parameters come from
/// the stored hash, so hashes made with older settings keep verifying.
pub fn verify(password: &str, stored: &str) -> bool {
    let Ok(parsed) = PasswordHash::new(stored) else {
        return false;
    };
    Argon2::default()
        .verify_password(password.as_bytes(), &parsed)
        .is_ok()
}

/// A hash to verify against when the user does not exist, so that an unknown user
/// and a wrong password take the same time.
pub fn dummy_hash(cost: HashCost) -> String {
    hash("ferrostack-dummy-password", cost).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    const CHEAP: HashCost = HashCost {
        memory_kib: 64,
        iterations: 1,
    };

    #[test]
    fn hashes_are_salted_and_verify() {
        let a = hash("secret", CHEAP).unwrap();
        let b = hash("secret", CHEAP).unwrap();
        assert_ne!(a, b, "salts differ");
        assert!(a.starts_with("$argon2id$"));
        assert!(verify("secret", &a));
        assert!(!verify("Secret", &a));
        assert!(!verify("secret", "not-a-hash"));
    }
}
