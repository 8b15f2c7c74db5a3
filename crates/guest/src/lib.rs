//! What a guest receives, built on the host side and free of any database or HTTP:
//! the metadata documents ([`metadata`]: one source of truth for the config drive
//! and the future metadata service), the guest network configuration ([`netconf`]:
//! `network_data.json` and the Debian `interfaces` template), the config drive
//! writer ([`configdrive`]: ISO 9660 or vfat labelled `config-2`) and file injection
//! into a guest filesystem ([`inject`]). [`model::GuestData`] is the input of all of
//! them, resolved by the compute side.

pub mod configdrive;
pub mod inject;
pub mod metadata;
pub mod model;
pub mod netconf;

pub use model::{GuestData, GuestIp, GuestKey, GuestNic, GuestRoute, GuestSubnet};
