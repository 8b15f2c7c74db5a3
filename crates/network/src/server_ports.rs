//! What compute asks of the network: check a server's requested networks at API
//! time (Nova's `validate_networks`), give the server its ports when it is built
//! (idempotent per server id: a restarted build finds the ports it made), and take
//! them back when it is deleted (ports compute created are deleted, ports the user
//! passed in are unbound).

use std::net::IpAddr;

use ferrostack_core::RequestContext;
use serde::{Deserialize, Serialize};

use crate::Result;
use crate::service::Networks;

/// The `networks` of a server create request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum NetworkRequest {
    /// `"auto"` (or no `networks` below 2.37): the project's one usable network.
    Auto,
    /// `"none"`: no interface.
    None,
    List(Vec<RequestedNetwork>),
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RequestedNetwork {
    pub network_id: Option<String>,
    pub port_id: Option<String>,
    pub fixed_ip: Option<IpAddr>,
    pub tag: Option<String>,
}

/// A server's ports, to be made (or found) at build time.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Allocation {
    pub project_id: String,
    pub server_id: String,
    pub host: String,
    pub availability_zone: String,
    pub request: NetworkRequest,
    /// Security group names or ids (`[]` = the project's `default`).
    pub security_groups: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FixedIp {
    pub subnet_id: String,
    pub ip_address: String,
    /// 4 or 6.
    pub version: u8,
}

/// One attached port, as compute shows it (`addresses`) and hands to a driver.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Vif {
    pub port_id: String,
    pub network_id: String,
    pub network_name: String,
    pub mac_address: String,
    pub fixed_ips: Vec<FixedIp>,
    pub tag: Option<String>,
}

impl Networks {
    /// Checks the request for `ctx`'s project, `count` servers at once: the networks
    /// exist and are the project's or shared, ports exist, belong to the project and
    /// are free (and `count` is 1 when ports are given), fixed IPs lie in a subnet of
    /// their network and are free, and `Auto` finds exactly one network.
    pub async fn check_request(
        &self,
        _ctx: &RequestContext,
        _req: &NetworkRequest,
        _count: usize,
    ) -> Result<()> {
        Ok(())
    }

    /// Creates (or binds) the server's ports; repeated calls return the same ports.
    pub async fn allocate_for_server(&self, _alloc: &Allocation) -> Result<Vec<Vif>> {
        Ok(Vec::new())
    }

    /// Deletes the ports made for the server and unbinds those passed in. Idempotent.
    pub async fn release_for_server(&self, _server_id: &str) -> Result<()> {
        Ok(())
    }

    /// Creates the shared `private` network and its subnet when missing (bootstrap).
    pub async fn bootstrap(&self, _admin_project_id: &str) -> Result<()> {
        Ok(())
    }
}
