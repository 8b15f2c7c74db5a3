//! Interim flavor and key pair look-ups for server create, until the flavors and
//! key pairs modules land (they replace this file; same names and shapes).

use std::collections::BTreeMap;

use ferrostack_core::RequestContext;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::service::Compute;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Flavor {
    pub id: String,
    pub name: String,
    pub vcpus: i64,
    pub memory_mb: i64,
    pub root_gb: i64,
    pub ephemeral_gb: i64,
    pub swap_mb: i64,
    pub rxtx_factor: f64,
    pub extra_specs: BTreeMap<String, String>,
    pub is_public: bool,
    pub disabled: bool,
    pub description: Option<String>,
}

impl Compute {
    pub async fn flavor_for_server(
        &self,
        _ctx: &RequestContext,
        flavor_ref: &str,
    ) -> Result<Flavor> {
        let (name, mem, vcpus, disk) = match flavor_ref {
            "1" => ("m1.tiny", 512, 1, 1),
            "2" => ("m1.small", 2048, 1, 20),
            "42" => ("m1.nano", 64, 1, 1),
            "84" => ("m1.micro", 128, 1, 1),
            _ => {
                return Err(Error::NotFound(format!(
                    "Flavor {flavor_ref} could not be found."
                )));
            }
        };
        Ok(Flavor {
            id: flavor_ref.into(),
            name: name.into(),
            vcpus,
            memory_mb: mem,
            root_gb: disk,
            ephemeral_gb: 0,
            swap_mb: 0,
            rxtx_factor: 1.0,
            extra_specs: BTreeMap::new(),
            is_public: true,
            disabled: false,
            description: None,
        })
    }

    pub async fn keypair_public_key(
        &self,
        _user_id: &str,
        _name: &str,
    ) -> Result<Option<(String, String)>> {
        Ok(None)
    }
}
