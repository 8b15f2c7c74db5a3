//! The network service domain (a Neutron v2.0 subset): networks, subnets, ports,
//! security groups and rules, IP and MAC allocation without duplicates, quotas, and
//! the bootstrap `private` network. [`server_ports`] is what compute uses to give a
//! server its ports and take them back. No HTTP here: the Neutron API in
//! `ferrostack-api` calls [`Networks`].

pub mod error;
pub mod server_ports;
pub mod service;

pub use error::{Error, Result};
pub use server_ports::{Allocation, FixedIp, NetworkRequest, RequestedNetwork, Vif};
pub use service::{Networks, Settings};
