//! Key pairs onto Nova's (per user): KeyPairId from Nova's row id, KeyType read
//! from the key itself, fingerprints Nova's (a function of the public key only,
//! so an import of the same key always gives the same fingerprint).

use serde_json::json;

use ferrostack_compute::ApiVersion;
use ferrostack_compute::keypairs::{KeyPair, KeyPairQuery};
use ferrostack_core::RequestContext;

use crate::error::{Error, Result};
use crate::ids::{Kind, ec2_id};
use crate::instances::iso_us;
use crate::model::*;
use crate::params::{Filter, all_match};
use crate::reply::*;
use crate::{Ec2, Reply};

const NOVA: ApiVersion = ApiVersion::new(2, 10);

/// A new RSA 2048 key: (PKCS#1 PEM private key, OpenSSH public key).
fn generate_rsa() -> Result<(String, String)> {
    use rsa::pkcs1::EncodeRsaPrivateKey;
    use rsa::traits::PublicKeyParts;
    let key = rsa::RsaPrivateKey::new(&mut rand::rngs::OsRng, 2048).map_err(Error::internal)?;
    let pem = key
        .to_pkcs1_pem(rsa::pkcs1::LineEnding::LF)
        .map_err(Error::internal)?
        .to_string();
    let mpint = |b: Vec<u8>| ssh_key::Mpint::from_positive_bytes(&b).map_err(Error::internal);
    let public = ssh_key::public::RsaPublicKey {
        e: mpint(key.e().to_bytes_be())?,
        n: mpint(key.n().to_bytes_be())?,
    };
    let openssh = ssh_key::PublicKey::new(
        ssh_key::public::KeyData::Rsa(public),
        "Generated-by-ferrostack-EC2",
    )
    .to_openssh()
    .map_err(Error::internal)?;
    Ok((pem, openssh))
}

fn key_type(public_key: &str) -> &'static str {
    if public_key.starts_with("ssh-ed25519") {
        "ed25519"
    } else {
        "rsa"
    }
}

fn map_err(name: &str) -> impl Fn(ferrostack_compute::Error) -> Error + '_ {
    move |e| match e {
        ferrostack_compute::Error::Conflict(_) => Error::duplicate(
            "InvalidKeyPair.Duplicate",
            format!("The keypair '{name}' already exists."),
        ),
        ferrostack_compute::Error::NotFound(_) => {
            Error::not_found("InvalidKeyPair.NotFound", "key pair", name)
        }
        ferrostack_compute::Error::BadRequest(m) => Error::new(400, "InvalidKeyPair.Format", m),
        other => other.into(),
    }
}

impl Ec2 {
    /// The EC2 ids of the caller's key pairs.
    pub(crate) async fn key_pair_ids(&self, ctx: &RequestContext) -> Result<Vec<String>> {
        Ok(self
            .key_pairs(ctx)
            .await?
            .iter()
            .map(|k| ec2_id(Kind::KeyPair, &k.id.to_string()))
            .collect())
    }

    async fn key_pairs(&self, ctx: &RequestContext) -> Result<Vec<KeyPair>> {
        let mut out = Vec::new();
        let mut marker = None;
        loop {
            let q = KeyPairQuery {
                user_id: None,
                limit: Some("1000".into()),
                marker: marker.clone(),
            };
            let (page, more) = self.compute.list_keypairs(ctx, NOVA, &q).await?;
            marker = page.last().map(|k| k.name.clone());
            let n = page.len();
            out.extend(page);
            if !more || n == 0 {
                break;
            }
        }
        let ids: Vec<String> = out.iter().map(|k| k.id.to_string()).collect();
        let pairs: Vec<(&str, &str)> = ids
            .iter()
            .map(|i| (i.as_str(), ctx.project_id().unwrap_or("")))
            .collect();
        self.remember(Kind::KeyPair, &pairs).await?;
        Ok(out)
    }

    /// CreateKeyPair (`public_key` None: an RSA key made here (PEM, as AWS answers)
    /// for KeyType rsa, Nova's Ed25519 key (OpenSSH) for ed25519; the private key
    /// is answered once and never stored) and ImportKeyPair.
    pub(crate) async fn add_key_pair(
        &self,
        ctx: &RequestContext,
        name: &str,
        public_key: Option<&str>,
        key_type: &str,
        tags: Vec<(String, String)>,
    ) -> Result<Reply> {
        let mut body = json!({"keypair": {"name": name, "type": "ssh"}});
        let mut private_pem = None;
        match public_key {
            Some(pk) => body["keypair"]["public_key"] = json!(pk),
            None if key_type == "rsa" => {
                let (private, public) = tokio::task::spawn_blocking(generate_rsa)
                    .await
                    .map_err(Error::internal)??;
                body["keypair"]["public_key"] = json!(public);
                private_pem = Some(private);
            }
            None => {}
        }
        let created = self
            .compute
            .create_keypair(ctx, NOVA, &body)
            .await
            .map_err(map_err(name))?;
        let id = created.keypair.id.to_string();
        crate::records::put_tags(
            &self.db,
            ctx.project_id().unwrap_or_default(),
            &ec2_id(Kind::KeyPair, &id),
            &tags,
        )
        .await?;
        self.remember(
            Kind::KeyPair,
            &[(id.as_str(), ctx.project_id().unwrap_or(""))],
        )
        .await?;
        Ok(Reply::KeyPair(KeyPairReply {
            key_pair_id: ec2_id(Kind::KeyPair, &id),
            key_name: created.keypair.name,
            key_fingerprint: created.keypair.fingerprint,
            key_material: private_pem.or(created.private_key),
            tag_set: tag_items(tags),
        }))
    }

    pub(crate) async fn describe_key_pairs(
        &self,
        ctx: &RequestContext,
        names: &[String],
        ids: &[String],
        filters: &[Filter],
        include_public_key: bool,
    ) -> Result<Reply> {
        let keys = self.key_pairs(ctx).await?;
        let stored = crate::records::tags(&self.db, ctx.project_id().unwrap_or_default()).await?;
        for n in names {
            if !keys.iter().any(|k| &k.name == n) {
                return Err(Error::not_found("InvalidKeyPair.NotFound", "key pair", n));
            }
        }
        for i in ids {
            if !keys
                .iter()
                .any(|k| ec2_id(Kind::KeyPair, &k.id.to_string()) == *i)
            {
                return Err(Error::not_found("InvalidKeyPair.NotFound", "key pair", i));
            }
        }
        let mut out = Vec::new();
        for k in keys {
            let id = ec2_id(Kind::KeyPair, &k.id.to_string());
            if (!names.is_empty() && !names.contains(&k.name))
                || (!ids.is_empty() && !ids.contains(&id))
            {
                continue;
            }
            let kt = key_type(&k.public_key);
            let keep = all_match(filters, |f| {
                Some(match f.name.as_str() {
                    "key-name" => f.matches(&k.name),
                    "fingerprint" => f.matches(&k.fingerprint),
                    "key-pair-id" => f.matches(&id),
                    "key-type" => f.matches(kt),
                    _ => return None,
                })
            })?;
            if !keep {
                continue;
            }
            let tags = stored.get(&id).cloned().unwrap_or_default();
            out.push(KeyPairInfo {
                key_pair_id: id,
                key_name: k.name,
                key_fingerprint: k.fingerprint,
                key_type: kt.to_string(),
                create_time: iso_us(k.created_at_us),
                tag_set: tag_items(tags),
                public_key: include_public_key.then_some(k.public_key),
            });
        }
        Ok(Reply::KeyPairs(KeyPairsReply {
            key_set: out.into(),
        }))
    }

    pub(crate) async fn delete_key_pair(
        &self,
        ctx: &RequestContext,
        name: Option<String>,
        id: Option<String>,
    ) -> Result<Reply> {
        let name = match (name, id) {
            (Some(n), _) => n,
            (None, Some(i)) => {
                let keys = self.key_pairs(ctx).await?;
                match keys
                    .into_iter()
                    .find(|k| ec2_id(Kind::KeyPair, &k.id.to_string()) == i)
                {
                    Some(k) => k.name,
                    None => {
                        return Err(Error::not_found("InvalidKeyPair.NotFound", "key pair", &i));
                    }
                }
            }
            (None, None) => return Err(Error::missing("KeyName")),
        };
        let key_id = self
            .compute
            .get_keypair(ctx, NOVA, &name, None)
            .await
            .ok()
            .map(|k| ec2_id(Kind::KeyPair, &k.id.to_string()));
        // AWS answers true for a key that does not exist.
        match self.compute.delete_keypair(ctx, NOVA, &name, None).await {
            Ok(()) | Err(ferrostack_compute::Error::NotFound(_)) => {}
            Err(e) => return Err(map_err(&name)(e)),
        }
        Ok(Reply::DeletedKeyPair(DeletedKeyPairReply {
            ret: true,
            key_pair_id: key_id,
        }))
    }
}
