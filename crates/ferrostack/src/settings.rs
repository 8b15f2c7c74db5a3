//! Loading the configuration: built-in defaults, then a TOML file (`--config`, or
//! `STATE_DIR/ferrostack.toml` when present), then `FERROSTACK_<SECTION>__<KEY>`
//! environment variables, then command-line flags: later sources win.

use std::path::PathBuf;

use anyhow::Context;
use figment::Figment;
use figment::providers::{Env, Format, Serialized, Toml};

use ferrostack_core::config::Config;

use crate::cli::Common;

/// Flag values that override the configuration.
#[derive(Debug, Default)]
pub struct Overrides {
    pub common: Common,
    pub listen: Option<String>,
    pub log_format: Option<String>,
    pub driver: Option<String>,
}

/// Top-level keys an environment variable may set (others, like
/// `FERROSTACK_TEST_POSTGRES`, belong to other tools and are ignored).
const SECTIONS: &[&str] = &[
    "state_dir",
    "server",
    "database",
    "token",
    "credential",
    "security_compliance",
    "identity",
    "image",
    "compute",
    "host",
    "network",
    "quota",
    "bootstrap",
    "vnc",
    "spice",
    "serial_console",
    "consoleauth",
    "console",
    "metadata",
    "services",
];

fn default_state_dir() -> PathBuf {
    if let Some(x) = std::env::var_os("XDG_DATA_HOME").filter(|v| !v.is_empty()) {
        return PathBuf::from(x).join("ferrostack");
    }
    if let Some(h) = std::env::var_os("HOME").filter(|v| !v.is_empty()) {
        return PathBuf::from(h).join(".local/share/ferrostack");
    }
    PathBuf::from("ferrostack-state")
}

pub fn load(o: &Overrides) -> anyhow::Result<Config> {
    let defaults = Config {
        state_dir: default_state_dir(),
        ..Config::default()
    };
    let mut fig = Figment::from(Serialized::defaults(defaults));

    // Where to look for a config file: the flag, else the state dir's own file.
    let env_state_dir = std::env::var_os("FERROSTACK_STATE_DIR").map(PathBuf::from);
    let state_dir_hint = o.common.state_dir.clone().or(env_state_dir);
    match &o.common.config {
        Some(path) => {
            if !path.exists() {
                anyhow::bail!("configuration file {} does not exist", path.display());
            }
            fig = fig.merge(Toml::file_exact(path));
        }
        None => {
            let dir = state_dir_hint.unwrap_or_else(default_state_dir);
            let candidate = dir.join("ferrostack.toml");
            if candidate.exists() {
                fig = fig.merge(Toml::file_exact(candidate));
            }
        }
    }
    // Keys reach the filter upper-case (TOKEN.EXPIRATION); compare lower-cased.
    fig = fig.merge(Env::prefixed("FERROSTACK_").split("__").filter(|k| {
        let k = k.as_str().to_ascii_lowercase();
        SECTIONS
            .iter()
            .any(|s| k == *s || k.starts_with(&format!("{s}.")))
    }));
    if let Some(d) = &o.common.state_dir {
        fig = fig.merge(Serialized::default("state_dir", d));
    }
    if let Some(db) = &o.common.database {
        fig = fig.merge(Serialized::default("database.url", db));
    }
    if let Some(l) = &o.listen {
        fig = fig.merge(Serialized::default("server.listen", l));
    }
    if let Some(f) = &o.log_format {
        fig = fig.merge(Serialized::default("server.log_format", f));
    }
    if let Some(d) = &o.driver {
        fig = fig.merge(Serialized::default("compute.driver", d));
    }
    let cfg: Config = fig.extract().context("invalid configuration")?;
    validate(&cfg)?;
    Ok(cfg)
}

fn validate(c: &Config) -> anyhow::Result<()> {
    if !matches!(c.server.log_format.as_str(), "human" | "json") {
        anyhow::bail!(
            "server.log_format must be \"human\" or \"json\", not {:?}",
            c.server.log_format
        );
    }
    if !matches!(
        c.compute.driver.as_str(),
        "auto" | "qemu" | "libvirt" | "fake" | "prepare"
    ) {
        anyhow::bail!(
            "compute.driver must be \"auto\", \"qemu\", \"libvirt\", \"fake\" or \"prepare\", not {:?}",
            c.compute.driver
        );
    }
    if !matches!(c.host.config_drive_format.as_str(), "iso9660" | "vfat") {
        anyhow::bail!(
            "host.config_drive_format must be \"iso9660\" or \"vfat\", not {:?}",
            c.host.config_drive_format
        );
    }
    if c.host.inject_partition < -2 {
        anyhow::bail!("host.inject_partition must be -2, -1, 0 or a partition number");
    }
    if !matches!(c.host.virt_type.as_str(), "auto" | "kvm" | "qemu") {
        anyhow::bail!(
            "host.virt_type must be \"auto\", \"kvm\" or \"qemu\", not {:?}",
            c.host.virt_type
        );
    }
    if c.token.expiration <= 0 {
        anyhow::bail!("token.expiration must be positive");
    }
    if c.token.max_active_keys < 2 {
        anyhow::bail!("token.max_active_keys must be at least 2");
    }
    if c.credential.auth_ttl <= 0 {
        anyhow::bail!("credential.auth_ttl must be positive");
    }
    if !matches!(c.metadata.intercept.as_str(), "auto" | "on" | "off") {
        anyhow::bail!("metadata.intercept must be auto, on or off");
    }
    for (name, svc) in &c.services {
        if !matches!(
            name.as_str(),
            "identity" | "image" | "compute" | "network" | "ec2"
        ) {
            anyhow::bail!("unknown service [services.{name}]");
        }
        if !svc.listen.is_empty() && !matches!(name.as_str(), "identity" | "image" | "ec2") {
            anyhow::bail!(
                "[services.{name}] listen: only identity, image and ec2 can have their own port in this release"
            );
        }
    }
    Ok(())
}

#[cfg(test)]
#[allow(clippy::result_large_err)] // figment's Jail closures return figment::Error
mod tests {
    use super::*;

    #[test]
    fn precedence_is_file_then_env_then_flags() {
        figment::Jail::expect_with(|jail| {
            let dir = jail.directory().to_path_buf();
            jail.create_file(
                "c.toml",
                "[token]\nexpiration = 100\n[credential]\nauth_ttl = 5\n[server]\nlisten = \"127.0.0.1:1\"\n",
            )?;
            jail.set_env("FERROSTACK_TOKEN__EXPIRATION", "200");
            jail.set_env("FERROSTACK_TEST_SOMETHING_ELSE", "ignored");
            let o = Overrides {
                common: Common {
                    config: Some(dir.join("c.toml")),
                    state_dir: Some(dir.clone()),
                    database: None,
                },
                listen: Some("127.0.0.1:2".into()),
                log_format: None,
                driver: Some("prepare".into()),
            };
            let c = load(&o).map_err(|e| e.to_string())?;
            assert_eq!(c.token.expiration, 200, "env beats file");
            assert_eq!(c.credential.auth_ttl, 5, "file beats default");
            assert_eq!(c.server.listen, "127.0.0.1:2", "flag beats file");
            assert_eq!(c.state_dir, dir);
            assert_eq!(
                c.compute.driver, "prepare",
                "--driver sets [compute] driver"
            );
            Ok(())
        });
    }

    #[test]
    fn unknown_keys_and_bad_values_are_refused() {
        figment::Jail::expect_with(|jail| {
            let dir = jail.directory().to_path_buf();
            jail.create_file("c.toml", "[token]\nexpirationn = 100\n")?;
            let o = Overrides {
                common: Common {
                    config: Some(dir.join("c.toml")),
                    ..Default::default()
                },
                ..Default::default()
            };
            assert!(load(&o).is_err());
            jail.create_file("c.toml", "[server]\nlog_format = \"xml\"\n")?;
            assert!(load(&o).is_err());
            jail.create_file("c.toml", "[compute]\ndriver = \"xen\"\n")?;
            assert!(load(&o).is_err());
            jail.create_file("c.toml", "[host]\nconfig_drive_format = \"udf\"\n")?;
            assert!(load(&o).is_err());
            Ok(())
        });
    }
}
