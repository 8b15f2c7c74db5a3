//! The compute service domain (Nova v2.1), done as desired state plus
//! reconciliation. The API side records what should be ([`servers`]: one
//! transaction that validates, checks quotas, resolves the key pair and writes the
//! server); [`scheduler`] places it on a host; each host's [`agent`] compares what
//! should be with what its [`Driver`](ferrostack_virt::Driver) reports and converges,
//! recording progress after every step so a restart resumes. Also flavors, key
//! pairs, quotas, hosts (hypervisors and services) and instance actions. No HTTP
//! here: the Nova API in `ferrostack-api` calls [`Compute`].

pub mod agent;
pub mod consoles;
pub mod error;
pub mod flavors;
pub mod hosts;
pub mod hypervisors;
pub mod instance_actions;
pub mod keypairs;
pub mod quota_sets;
pub mod quotas;
mod records;
mod rules;
pub mod scheduler;
pub mod server_groups;
pub mod servers;
pub mod service;
pub mod version;
pub mod zones;

pub use error::{Error, Result};
pub use flavors::Flavor;
pub use rules::nova_time;
pub use servers::model::{Server, TaskState, VmState};
pub use service::{Compute, Settings};
pub use version::ApiVersion;
