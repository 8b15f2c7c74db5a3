//! The network service domain (a Neutron v2.0 subset): networks, subnets, ports,
//! security groups and rules, IP and MAC allocation without duplicates, quotas, and
//! the bootstrap `private` network. [`server_ports`] is what compute uses to give a
//! server its ports and take them back. No HTTP here: the Neutron API in
//! `ferrostack-api` calls [`Networks`].

mod attrs;
pub mod error;
mod groups;
pub mod ip;
pub mod model;
mod networks;
mod ports;
pub mod query;
mod records;
pub mod server_ports;
pub mod service;
mod subnets;
mod tags;

pub use error::{Error, Result};
pub use model::Resource;
pub use query::{ListQuery, Page};
pub use server_ports::{Allocation, FixedIp, NetworkRequest, RequestedNetwork, Vif};
pub use service::{Kind, Networks, QUOTA_RESOURCES, Settings};
