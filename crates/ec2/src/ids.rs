//! EC2 ids. Each is derived from the OpenStack id it names
//! (`prefix-` + 17 hex digits of SHA-256 over kind and id, the length of AWS's
//! current ids), so the same object always has the same EC2 id, and stored with
//! its OpenStack id so either finds the other ([`crate::records`]).

use sha2::{Digest, Sha256};

use crate::error::{Error, Result};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Kind {
    Instance,
    Image,
    SecurityGroup,
    Vpc,
    Subnet,
    KeyPair,
    Volume,
    NetworkInterface,
}

impl Kind {
    pub fn prefix(self) -> &'static str {
        match self {
            Kind::Instance => "i",
            Kind::Image => "ami",
            Kind::SecurityGroup => "sg",
            Kind::Vpc => "vpc",
            Kind::Subnet => "subnet",
            Kind::KeyPair => "key",
            Kind::Volume => "vol",
            Kind::NetworkInterface => "eni",
        }
    }

    /// The stored name of the kind.
    pub fn as_str(self) -> &'static str {
        self.prefix()
    }

    /// The error code for an id of this kind that names nothing.
    pub fn not_found_code(self) -> &'static str {
        match self {
            Kind::Instance => "InvalidInstanceID.NotFound",
            Kind::Image => "InvalidAMIID.NotFound",
            Kind::SecurityGroup => "InvalidGroup.NotFound",
            Kind::Vpc => "InvalidVpcID.NotFound",
            Kind::Subnet => "InvalidSubnetID.NotFound",
            Kind::KeyPair => "InvalidKeyPair.NotFound",
            Kind::Volume => "InvalidVolume.NotFound",
            Kind::NetworkInterface => "InvalidNetworkInterfaceID.NotFound",
        }
    }

    fn malformed_code(self) -> &'static str {
        match self {
            Kind::Instance => "InvalidInstanceID.Malformed",
            Kind::Image => "InvalidAMIID.Malformed",
            Kind::SecurityGroup => "InvalidGroupId.Malformed",
            Kind::Vpc => "InvalidVpcID.Malformed",
            Kind::Subnet => "InvalidSubnetID.Malformed",
            Kind::KeyPair => "InvalidKeyPair.Format",
            Kind::Volume => "InvalidVolumeID.Malformed",
            Kind::NetworkInterface => "InvalidNetworkInterfaceID.Malformed",
        }
    }

    fn noun(self) -> &'static str {
        match self {
            Kind::Instance => "instance ID",
            Kind::Image => "image id",
            Kind::SecurityGroup => "security group",
            Kind::Vpc => "vpc ID",
            Kind::Subnet => "subnet ID",
            Kind::KeyPair => "key pair",
            Kind::Volume => "volume",
            Kind::NetworkInterface => "networkInterface ID",
        }
    }

    pub fn not_found(self, id: &str) -> Error {
        Error::not_found(self.not_found_code(), self.noun(), id)
    }

    /// Checks that `id` looks like an id of this kind (`i-` + hex).
    pub fn check(self, id: &str) -> Result<()> {
        let ok = id
            .strip_prefix(self.prefix())
            .and_then(|r| r.strip_prefix('-'))
            .is_some_and(|h| {
                !h.is_empty() && h.len() <= 17 && h.bytes().all(|b| b.is_ascii_hexdigit())
            });
        if ok {
            Ok(())
        } else {
            Err(Error::malformed(self.malformed_code(), self.prefix(), id))
        }
    }
}

/// The EC2 id of an OpenStack object.
/// (The derivation lives in the guest crate, so the metadata service and the
/// config drive give the guest the same ids.)
pub fn ec2_id(kind: Kind, os_id: &str) -> String {
    ferrostack_guest::metadata::ec2_id(kind.prefix(), os_id)
}

/// A project's 12-digit account id.
pub fn account_id(project_id: &str) -> String {
    let digest = Sha256::digest(format!("account:{project_id}").as_bytes());
    let n = u64::from_be_bytes(digest[..8].try_into().unwrap_or_default()) % 1_000_000_000_000;
    format!("{n:012}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_stable_and_shaped_like_aws() {
        let a = ec2_id(Kind::Instance, "5f0c2c4e-0000-4000-8000-000000000001");
        // Pinned: ids are stored and handed to guests; the derivation must not drift.
        assert_eq!(a, "i-f41853b433c535340");
        assert_eq!(
            a,
            ec2_id(Kind::Instance, "5f0c2c4e-0000-4000-8000-000000000001")
        );
        assert!(a.starts_with("i-") && a.len() == 19, "{a}");
        assert_ne!(
            a[2..],
            ec2_id(Kind::Image, "5f0c2c4e-0000-4000-8000-000000000001")[4..]
        );
        assert!(Kind::Instance.check(&a).is_ok());
        assert_eq!(
            Kind::Instance.check("ami-0123").unwrap_err().code,
            "InvalidInstanceID.Malformed"
        );
        let acct = account_id("p1");
        assert_eq!(acct.len(), 12);
        assert!(acct.bytes().all(|b| b.is_ascii_digit()));
        assert_ne!(acct, account_id("p2"));
    }
}
