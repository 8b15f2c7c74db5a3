//! Key pairs (`os-keypairs`): per-user public keys that servers get in their
//! metadata. Imported keys are checked and fingerprinted as Nova does (MD5 of the
//! OpenSSH key blob; SHA-1 of the DER certificate for x509). Generated keys are
//! Ed25519: an OpenSSH private key for `ssh`, a PKCS#8 key and a self-signed
//! certificate for `x509`; the private key is returned once and never stored.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use md5::Digest as _;
use serde_json::Value;

use ferrostack_core::RequestContext;

use crate::error::{Error, Result};
use crate::quotas;
use crate::records::keypairs::{self as records, load};
use crate::records::{self as db};
use crate::rules::{self, invalid_input, show_value};
use crate::service::Compute;
use crate::version::ApiVersion;

/// A stored key pair.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyPair {
    pub id: i64,
    pub user_id: String,
    pub name: String,
    /// `ssh` or `x509`.
    pub key_type: String,
    pub public_key: String,
    pub fingerprint: String,
    pub created_at_us: i64,
}

/// A key pair just created, with its private key when the server generated it.
#[derive(Debug, Clone)]
pub struct CreatedKeyPair {
    pub keypair: KeyPair,
    pub private_key: Option<String>,
}

/// Query of `GET /os-keypairs`.
#[derive(Debug, Clone, Default)]
pub struct KeyPairQuery {
    pub user_id: Option<String>,
    pub limit: Option<String>,
    pub marker: Option<String>,
}

fn invalid(reason: &str) -> Error {
    Error::BadRequest(format!("Keypair data is invalid: {reason}"))
}

fn not_found(user_id: &str, name: &str) -> Error {
    Error::NotFound(format!("Keypair {name} not found for user {user_id}"))
}

/// Colon-separated lowercase hex, Nova's fingerprint format.
fn colon_hex(bytes: &[u8]) -> String {
    bytes
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

/// Checks an OpenSSH public key line (`ssh-rsa AAAA... comment`) and returns its
/// fingerprint: MD5 of the decoded key blob (`nova.crypto.generate_fingerprint`).
pub fn ssh_fingerprint(public_key: &str) -> Result<String> {
    let fail = || invalid("failed to generate fingerprint");
    let line = public_key.trim();
    let key = ssh_key::PublicKey::from_openssh(line).map_err(|_| fail())?;
    let blob = key.to_bytes().map_err(|_| fail())?;
    Ok(colon_hex(&md5::Md5::digest(&blob)))
}

/// Checks a PEM x509 certificate and returns its fingerprint: SHA-1 of the DER
/// (`nova.crypto.generate_x509_fingerprint`).
pub fn x509_fingerprint(pem: &str) -> Result<String> {
    let fail = |why: &str| {
        invalid(&format!(
            "failed to generate X509 fingerprint. Error message: {why}"
        ))
    };
    let body = pem
        .trim()
        .strip_prefix("-----BEGIN CERTIFICATE-----")
        .and_then(|r| r.trim_end().strip_suffix("-----END CERTIFICATE-----"))
        .ok_or_else(|| fail("Unable to load PEM file. No CERTIFICATE block found."))?;
    let b64: String = body.chars().filter(|c| !c.is_whitespace()).collect();
    let der = B64
        .decode(b64)
        .map_err(|_| fail("Unable to load PEM file. Invalid base64."))?;
    if !looks_like_certificate(&der) {
        return Err(fail("Unable to load certificate: malformed DER."));
    }
    Ok(colon_hex(&sha1::Sha1::digest(&der)))
}

/// One DER TLV at the start of `b`: (tag, content, rest).
fn tlv(b: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, b) = b.split_first()?;
    let (&first, mut b) = b.split_first()?;
    let len = if first < 0x80 {
        usize::from(first)
    } else {
        let n = usize::from(first & 0x7f);
        if n == 0 || n > 4 || b.len() < n {
            return None;
        }
        let mut len = 0usize;
        for &x in &b[..n] {
            len = (len << 8) | usize::from(x);
        }
        b = &b[n..];
        len
    };
    if b.len() < len {
        return None;
    }
    Some((tag, &b[..len], &b[len..]))
}

/// `Certificate ::= SEQUENCE { tbsCertificate SEQUENCE, signatureAlgorithm SEQUENCE,
/// signatureValue BIT STRING }`, and nothing after it.
fn looks_like_certificate(der: &[u8]) -> bool {
    let Some((0x30, content, rest)) = tlv(der) else {
        return false;
    };
    if !rest.is_empty() {
        return false;
    }
    let Some((0x30, tbs, c)) = tlv(content) else {
        return false;
    };
    let Some((0x30, _, c)) = tlv(c) else {
        return false;
    };
    let Some((0x03, _, c)) = tlv(c) else {
        return false;
    };
    c.is_empty() && tlv(tbs).is_some()
}

/// The fingerprint of a public key of this type, or Nova's 400.
pub fn fingerprint(key_type: &str, public_key: &str) -> Result<String> {
    match key_type {
        "x509" => x509_fingerprint(public_key),
        _ => ssh_fingerprint(public_key),
    }
}

/// A new Ed25519 key: (OpenSSH private key, `ssh-ed25519 AAAA... Generated-by-Nova`).
pub fn generate_ssh() -> Result<(String, String)> {
    let mut key = ssh_key::PrivateKey::random(&mut rand::rngs::OsRng, ssh_key::Algorithm::Ed25519)
        .map_err(|e| Error::internal(format!("key generation: {e}")))?;
    key.set_comment("Generated-by-Nova");
    let private = key
        .to_openssh(ssh_key::LineEnding::LF)
        .map_err(|e| Error::internal(format!("key encoding: {e}")))?;
    let public = key
        .public_key()
        .to_openssh()
        .map_err(|e| Error::internal(format!("key encoding: {e}")))?;
    Ok((private.to_string(), public))
}

// --- a self-signed Ed25519 certificate, DER by hand -----------------------------------

fn der(tag: u8, content: &[u8]) -> Vec<u8> {
    let mut out = vec![tag];
    let n = content.len();
    if n < 0x80 {
        out.push(u8::try_from(n).unwrap_or(0));
    } else {
        let bytes: Vec<u8> = n
            .to_be_bytes()
            .iter()
            .copied()
            .skip_while(|&b| b == 0)
            .collect();
        out.push(0x80 | u8::try_from(bytes.len()).unwrap_or(0));
        out.extend(bytes);
    }
    out.extend_from_slice(content);
    out
}

fn seq(parts: &[Vec<u8>]) -> Vec<u8> {
    der(0x30, &parts.concat())
}

const OID_ED25519: &[u8] = &[0x06, 0x03, 0x2b, 0x65, 0x70];

fn der_time(t: time::OffsetDateTime) -> Vec<u8> {
    let body = |y: String| {
        format!(
            "{y}{:02}{:02}{:02}{:02}{:02}Z",
            u8::from(t.month()),
            t.day(),
            t.hour(),
            t.minute(),
            t.second()
        )
    };
    if (1950..2050).contains(&t.year()) {
        der(0x17, body(format!("{:02}", t.year() % 100)).as_bytes())
    } else {
        der(0x18, body(format!("{:04}", t.year())).as_bytes())
    }
}

fn pem(label: &str, der: &[u8]) -> String {
    let b = B64.encode(der);
    let mut out = format!("-----BEGIN {label}-----\n");
    for chunk in b.as_bytes().chunks(64) {
        out.push_str(&String::from_utf8_lossy(chunk));
        out.push('\n');
    }
    out.push_str(&format!("-----END {label}-----\n"));
    out
}

/// A new key and a self-signed certificate valid for ten years (Nova's
/// `generate_x509_cert`): (PKCS#8 private key PEM, certificate PEM).
pub fn generate_x509(common_name: &str) -> Result<(String, String)> {
    use ed25519_dalek::Signer as _;
    let signing = ed25519_dalek::SigningKey::generate(&mut rand::rngs::OsRng);
    let public = signing.verifying_key().to_bytes();
    let alg = seq(&[OID_ED25519.to_vec()]);
    let name = seq(&[der(
        0x31,
        &seq(&[
            vec![0x06, 0x03, 0x55, 0x04, 0x03],
            der(0x0c, common_name.as_bytes()),
        ]),
    )]);
    let mut serial: [u8; 16] = rand::random();
    serial[0] = (serial[0] & 0x7f) | 0x40;
    let now = ferrostack_core::time::now();
    let tbs = seq(&[
        der(0xa0, &der(0x02, &[2])),
        der(0x02, &serial),
        alg.clone(),
        name.clone(),
        seq(&[der_time(now), der_time(now + time::Duration::days(3650))]),
        name,
        seq(&[alg.clone(), der(0x03, &[&[0u8][..], &public[..]].concat())]),
    ]);
    let sig = signing.sign(&tbs).to_bytes();
    let cert = seq(&[tbs, alg, der(0x03, &[&[0u8][..], &sig[..]].concat())]);
    let pkcs8 = seq(&[
        der(0x02, &[0]),
        seq(&[OID_ED25519.to_vec()]),
        der(0x04, &der(0x04, signing.as_bytes())),
    ]);
    Ok((pem("PRIVATE KEY", &pkcs8), pem("CERTIFICATE", &cert)))
}

/// Nova's key pair name rule: 1-255 of `[a-zA-Z0-9 _-]` (2.92 adds `@` and `.`),
/// no leading or trailing space.
pub fn check_name(name: &Value, v: ApiVersion) -> Result<String> {
    let Value::String(s) = name else {
        return Err(invalid_input(
            "name",
            name,
            &format!("{} is not of type 'string'", show_value(name)),
        ));
    };
    let extra: &[u8] = if v.at_least(2, 92) { b" _-@." } else { b" _-" };
    let pattern = if v.at_least(2, 92) {
        "^[a-zA-Z0-9 _@.-]+$"
    } else {
        "^[a-zA-Z0-9 _-]+$"
    };
    if s.is_empty() {
        return Err(invalid_input("name", name, "'' is too short"));
    }
    if s.chars().count() > 255 {
        return Err(invalid_input("name", name, &format!("'{s}' is too long")));
    }
    if !s
        .bytes()
        .all(|c| c.is_ascii_alphanumeric() || extra.contains(&c))
    {
        return Err(invalid_input(
            "name",
            name,
            &format!("'{s}' does not match '{pattern}'"),
        ));
    }
    if s.trim() != s {
        return Err(Error::BadRequest(
            "An invalid 'name' value was provided. The name must be: printable characters. \
             Can not start or end with whitespace."
                .into(),
        ));
    }
    Ok(s.clone())
}

/// The validated body of `POST /os-keypairs`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct NewKeyPair {
    pub name: String,
    pub public_key: Option<String>,
    pub key_type: String,
    pub user_id: Option<String>,
}

pub(crate) fn parse_new(body: &Value, v: ApiVersion) -> Result<NewKeyPair> {
    let k = rules::envelope(body, "keypair")?;
    let mut allowed = vec!["name", "public_key"];
    if v.at_least(2, 2) {
        allowed.push("type");
    }
    if v.at_least(2, 10) {
        allowed.push("user_id");
    }
    rules::only("keypair", k, &allowed)?;
    let Some(name) = k.get("name") else {
        return Err(invalid_input(
            "keypair",
            &Value::Object(k.clone()),
            "'name' is a required property",
        ));
    };
    let name = check_name(name, v)?;
    let public_key = match k.get("public_key") {
        None if v.at_least(2, 92) => {
            return Err(invalid_input(
                "keypair",
                &Value::Object(k.clone()),
                "'public_key' is a required property",
            ));
        }
        None => None,
        Some(Value::String(s)) => Some(s.clone()),
        Some(other) => {
            return Err(invalid_input(
                "public_key",
                other,
                &format!("{} is not of type 'string'", show_value(other)),
            ));
        }
    };
    let key_type = match k.get("type") {
        None => "ssh".to_string(),
        Some(Value::String(s)) if s == "ssh" || s == "x509" => s.clone(),
        Some(other) => {
            return Err(invalid_input(
                "type",
                other,
                &format!("{} is not one of ['ssh', 'x509']", show_value(other)),
            ));
        }
    };
    let user_id = match k.get("user_id") {
        None => None,
        Some(Value::String(s)) if !s.is_empty() && s.len() <= 255 => Some(s.clone()),
        Some(other) => {
            return Err(invalid_input(
                "user_id",
                other,
                &format!("{} is not of type 'string'", show_value(other)),
            ));
        }
    };
    Ok(NewKeyPair {
        name,
        public_key,
        key_type,
        user_id,
    })
}

impl Compute {
    /// The user a request about key pairs is for: the caller, or (2.10, admin)
    /// `?user_id=`.
    fn keypair_user(
        ctx: &RequestContext,
        v: ApiVersion,
        asked: Option<&str>,
        action: &str,
    ) -> Result<String> {
        match asked {
            Some(u) if v.at_least(2, 10) => {
                rules::user_or_admin(ctx, u, &format!("os_compute_api:os-keypairs:{action}"))?;
                Ok(u.to_string())
            }
            _ => Ok(ctx.user_id.clone()),
        }
    }

    pub async fn create_keypair(
        &self,
        ctx: &RequestContext,
        v: ApiVersion,
        body: &Value,
    ) -> Result<CreatedKeyPair> {
        let new = parse_new(body, v)?;
        let user_id = Self::keypair_user(ctx, v, new.user_id.as_deref(), "create")?;
        let project = ctx.project_id().unwrap_or_default().to_string();
        let limits = quotas::limits(
            &mut *db::acquire(&self.db).await?,
            &self.settings.quota,
            &project,
        )
        .await?;
        let (public_key, private_key) = match new.public_key {
            Some(pk) => (pk, None),
            None if new.key_type == "x509" => {
                let (private, cert) = generate_x509(&user_id)?;
                (cert, Some(private))
            }
            None => {
                let (private, public) = generate_ssh()?;
                (public, Some(private))
            }
        };
        let fingerprint = fingerprint(&new.key_type, &public_key)?;
        let mut tx = self.db.begin_write().await?;
        if limits.key_pairs >= 0 && records::count(&mut tx, &user_id).await? >= limits.key_pairs {
            return Err(Error::Forbidden(
                "Quota exceeded, too many key pairs.".into(),
            ));
        }
        let key_name = new.name.clone();
        let exists = || Error::Conflict(format!("Key pair '{key_name}' already exists."));
        if load(&mut tx, &user_id, &new.name).await?.is_some() {
            return Err(exists());
        }
        let id = records::max_id(&mut tx).await? + 1;
        let kp = KeyPair {
            id,
            user_id,
            name: new.name,
            key_type: new.key_type,
            public_key,
            fingerprint,
            created_at_us: rules::now_us(),
        };
        if !records::insert(&mut tx, &kp).await? {
            return Err(exists());
        }
        tx.commit().await?;
        Ok(CreatedKeyPair {
            keypair: kp,
            private_key,
        })
    }

    /// A page of a user's key pairs (by creation) and whether the page is full.
    pub async fn list_keypairs(
        &self,
        ctx: &RequestContext,
        v: ApiVersion,
        q: &KeyPairQuery,
    ) -> Result<(Vec<KeyPair>, bool)> {
        let user_id = Self::keypair_user(ctx, v, q.user_id.as_deref(), "index")?;
        let (limit, marker) = if v.at_least(2, 35) {
            rules::limit_and_marker(
                q.limit.as_deref(),
                q.marker.as_deref(),
                self.settings.compute.max_limit,
            )?
        } else {
            (usize::MAX, None)
        };
        let mut conn = db::acquire(&self.db).await?;
        let after = match &marker {
            None => 0,
            Some(m) => {
                load(&mut conn, &user_id, m)
                    .await?
                    .ok_or_else(|| Error::BadRequest(format!("Marker {m} could not be found.")))?
                    .id
            }
        };
        let list = records::list_after(&mut conn, &user_id, after, limit).await?;
        let full = limit != usize::MAX && list.len() == limit;
        Ok((list, full))
    }

    pub async fn get_keypair(
        &self,
        ctx: &RequestContext,
        v: ApiVersion,
        name: &str,
        user_id: Option<&str>,
    ) -> Result<KeyPair> {
        let user_id = Self::keypair_user(ctx, v, user_id, "show")?;
        load(&mut *db::acquire(&self.db).await?, &user_id, name)
            .await?
            .ok_or_else(|| not_found(&user_id, name))
    }

    pub async fn delete_keypair(
        &self,
        ctx: &RequestContext,
        v: ApiVersion,
        name: &str,
        user_id: Option<&str>,
    ) -> Result<()> {
        let user_id = Self::keypair_user(ctx, v, user_id, "delete")?;
        let mut tx = self.db.begin_write().await?;
        let n = records::delete(&mut tx, &user_id, name).await?;
        if n == 0 {
            return Err(not_found(&user_id, name));
        }
        tx.commit().await?;
        Ok(())
    }

    /// For server create (`key_name`): the public key and its type (`ssh`/`x509`),
    /// `None` when the user has no key pair of that name.
    pub async fn keypair_public_key(
        &self,
        user_id: &str,
        name: &str,
    ) -> Result<Option<(String, String)>> {
        Ok(load(&mut *db::acquire(&self.db).await?, user_id, name)
            .await?
            .map(|k| (k.public_key, k.key_type)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    // keys from `ssh-keygen`, fingerprints from `ssh-keygen -l -E md5`
    const RSA: &str = "ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAAAgQDc238WsrBW2wnbiNN56NsMiLgjaYmvBs6V4R2R7nPLlY1fz5YTqMxuUXRC16hBIbIt175idfi7IXNZVUIF31+IISax+lc69kAUljce3BbtTKbRgp8J6prlv0he17JHh+z66f3V/vGDISkhSoDecUcCEu8DrmFFUq7V/gQ3hDRYEw== test@host";
    const RSA_FP: &str = "cb:e8:30:d7:45:8f:ca:05:e3:0e:4e:ee:90:97:60:de";
    const ECDSA: &str = "ecdsa-sha2-nistp256 AAAAE2VjZHNhLXNoYTItbmlzdHAyNTYAAAAIbmlzdHAyNTYAAABBBIy5e0obWyf0gPNnb/j+nO1LK0Jt/grSr00nIT+xiTdulKTXdzeM1UYPny5d0hMSFMluUDAA3X6m9BEXQ+0xLPo= e";
    const ECDSA_FP: &str = "10:5c:8c:03:60:b1:7c:6e:b4:e0:42:23:56:7e:47:4c";

    #[test]
    fn ssh_fingerprints_are_md5_of_the_blob() {
        assert_eq!(ssh_fingerprint(RSA).unwrap(), RSA_FP);
        assert_eq!(ssh_fingerprint(&format!("  {RSA}\n")).unwrap(), RSA_FP);
        assert_eq!(ssh_fingerprint(ECDSA).unwrap(), ECDSA_FP);
    }

    #[test]
    fn broken_keys_are_refused_with_nova_message() {
        let long = format!("ssh-rsa {} openstack@ubuntu", "A".repeat(2048));
        for k in ["", "ssh-rsa", "not a key", long.as_str()] {
            assert_eq!(
                ssh_fingerprint(k).unwrap_err().to_string(),
                "Keypair data is invalid: failed to generate fingerprint",
                "{k}"
            );
        }
    }

    #[test]
    fn generated_keys_parse_and_fingerprint() {
        let (private, public) = generate_ssh().unwrap();
        assert!(private.starts_with("-----BEGIN OPENSSH PRIVATE KEY-----"));
        assert!(public.starts_with("ssh-ed25519 "));
        assert!(public.ends_with(" Generated-by-Nova"));
        let fp = ssh_fingerprint(&public).unwrap();
        assert_eq!(fp.len(), 47);
        let parsed = ssh_key::PrivateKey::from_openssh(&private).unwrap();
        assert_eq!(parsed.public_key().to_openssh().unwrap(), public);
    }

    #[test]
    fn generated_certificates_are_well_formed() {
        let (private, cert) = generate_x509("u1").unwrap();
        assert!(private.starts_with("-----BEGIN PRIVATE KEY-----\n"));
        assert!(cert.starts_with("-----BEGIN CERTIFICATE-----\n"));
        let fp = x509_fingerprint(&cert).unwrap();
        assert_eq!(fp.len(), 59); // 20 bytes
        assert!(
            x509_fingerprint("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----")
                .is_err()
        );
        assert!(x509_fingerprint(RSA).is_err());
    }

    #[test]
    fn names_follow_the_version_pattern() {
        let v1 = ApiVersion::new(2, 1);
        let v92 = ApiVersion::new(2, 92);
        assert!(check_name(&json!("my key_1-a"), v1).is_ok());
        assert!(check_name(&json!("a@b.c"), v1).is_err());
        assert!(check_name(&json!("a@b.c"), v92).is_ok());
        assert!(check_name(&json!("key_/.\\@:"), v92).is_err());
        assert!(check_name(&json!(""), v1).is_err());
        assert!(check_name(&json!("a".repeat(256)), v1).is_err());
        assert!(check_name(&json!("a".repeat(255)), v1).is_ok());
        assert!(check_name(&json!(" a"), v1).is_err());
        assert!(check_name(&json!(5), v1).is_err());
    }

    #[test]
    fn create_bodies_switch_with_microversions() {
        let b = json!({"keypair": {"name": "k", "type": "x509"}});
        assert!(parse_new(&b, ApiVersion::new(2, 1)).is_err());
        assert_eq!(
            parse_new(&b, ApiVersion::new(2, 2)).unwrap().key_type,
            "x509"
        );
        let b = json!({"keypair": {"name": "k"}});
        assert_eq!(
            parse_new(&b, ApiVersion::new(2, 91)).unwrap().public_key,
            None
        );
        assert!(
            parse_new(&b, ApiVersion::new(2, 92))
                .unwrap_err()
                .to_string()
                .contains("'public_key' is a required property")
        );
        let b = json!({"keypair": {"name": "k", "user_id": "u"}});
        assert!(parse_new(&b, ApiVersion::new(2, 9)).is_err());
        assert_eq!(
            parse_new(&b, ApiVersion::new(2, 10))
                .unwrap()
                .user_id
                .as_deref(),
            Some("u")
        );
        let b = json!({"keypair": {"name": "k", "type": "rsa"}});
        assert!(parse_new(&b, ApiVersion::new(2, 2)).is_err());
    }
}
