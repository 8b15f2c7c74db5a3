//! The command line: `up`, `config show`, `admin ...`, `bench ...`.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use crate::settings::{Overrides, load};

#[derive(Parser, Debug)]
#[command(
    name = "ferrostack",
    version,
    about = "An OpenStack-compatible private cloud in one binary"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

/// Flags shared by the commands that read the configuration.
#[derive(Args, Debug, Clone, Default)]
pub struct Common {
    /// Where the database, keys and generated client files live.
    #[arg(long, value_name = "DIR")]
    pub state_dir: Option<PathBuf>,
    /// A TOML configuration file.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Database URL: sqlite://PATH (default: STATE_DIR/ferrostack.db) or postgres://...
    #[arg(long, value_name = "URL")]
    pub database: Option<String>,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Start the all-in-one cloud (bootstraps on first start).
    Up {
        #[command(flatten)]
        common: Common,
        /// The address of the one listener, e.g. 127.0.0.1:8080 (port 0 = any free port).
        #[arg(long, value_name = "ADDR:PORT")]
        listen: Option<String>,
        /// Log as JSON lines instead of human-readable text.
        #[arg(long, value_name = "human|json")]
        log_format: Option<String>,
        /// The hypervisor driver of the in-process host agent (`[compute] driver`):
        /// `auto` (qemu when QEMU is installed and works, else fake), `qemu` (real
        /// guests), `fake` (in memory), or `prepare` (disks, config drive, injection
        /// and domain XML for real, no hypervisor started).
        #[arg(long, value_name = "auto|qemu|fake|prepare")]
        driver: Option<String>,
    },
    /// Log into a server's guest with ssh, found through the API with your own
    /// credentials (clouds.yaml by --os-cloud/OS_CLOUD, or OS_* variables).
    /// `ferrostack ssh vm1 uptime`, `ferrostack ssh debian@vm1 -i key`.
    Ssh {
        /// The cloud in clouds.yaml (default: $OS_CLOUD, else the OS_* variables).
        #[arg(long, value_name = "NAME")]
        os_cloud: Option<String>,
        /// The server's name or id, optionally `user@` (default user root).
        #[arg(value_name = "[USER@]SERVER")]
        target: String,
        /// ssh options, then the command to run.
        #[arg(
            trailing_var_arg = true,
            allow_hyphen_values = true,
            value_name = "SSH ARGS"
        )]
        args: Vec<String>,
    },
    /// Show configuration.
    Config {
        #[command(subcommand)]
        what: ConfigCommand,
    },
    /// Operator tasks.
    Admin {
        #[command(subcommand)]
        what: AdminCommand,
    },
    /// Measure this machine and this build.
    Bench {
        #[command(subcommand)]
        what: BenchCommand,
    },
}

#[derive(Subcommand, Debug)]
pub enum ConfigCommand {
    /// Print the effective configuration (secrets redacted) as TOML.
    Show {
        #[command(flatten)]
        common: Common,
        #[arg(long, value_name = "ADDR:PORT")]
        listen: Option<String>,
    },
}

#[derive(Subcommand, Debug)]
pub enum AdminCommand {
    /// Rotate the token keys: the staged key becomes primary, a new key is staged,
    /// keys beyond [token] max_active_keys are removed. Running servers pick the
    /// new keys up on their own.
    RotateTokenKeys {
        #[command(flatten)]
        common: Common,
    },
}

#[derive(Subcommand, Debug)]
pub enum BenchCommand {
    /// Token validation latency/throughput, token issue rates and server RSS.
    Identity(crate::bench::IdentityBench),
    /// Image upload/download MB/s through the API beside this machine's disk and
    /// hashing limits, and the server's peak RSS.
    Image(crate::bench::image::ImageBench),
    /// Servers through the Nova API with the fake driver: create → ACTIVE latency,
    /// creates per second with concurrent clients, list latency with 10,000 servers, RSS.
    Compute(crate::bench::compute::ComputeBench),
    /// The host-side spawn pipeline (image cache, overlay, config drive, domain XML)
    /// with a cold and a warm cache, beside `cp` of the same image.
    Disk(crate::bench::disk::DiskBench),
    /// Real guests on the qemu driver: the tiny test image booted by bare QEMU with the
    /// same options against `POST /servers` → SSH through ferrostack, N servers at once,
    /// and ferrostack's RSS with N guests running.
    Boot(crate::bench::boot::BootBench),
    /// The EC2 Query API beside moto's server mode in the same run: DescribeInstances
    /// with 1,000 instances, RunInstances latency, the DescribeRegions floor, RSS.
    /// moto (PyPI `moto[server]`) comes from `scripts/bench-venv`; without it only
    /// ferrostack is measured.
    Ec2(crate::bench::ec2::Ec2Bench),
}

pub async fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Up {
            common,
            listen,
            log_format,
            driver,
        } => {
            let cfg = load(&Overrides {
                common,
                listen,
                log_format,
                driver,
            })?;
            crate::logging::init(&cfg.server.log_format)?;
            crate::up::up(cfg).await
        }
        Command::Ssh {
            os_cloud,
            target,
            args,
        } => crate::ssh::run(os_cloud, target, args).await,
        Command::Config {
            what: ConfigCommand::Show { common, listen },
        } => {
            let cfg = load(&Overrides {
                common,
                listen,
                log_format: None,
                driver: None,
            })?;
            print!("{}", toml::to_string_pretty(&cfg.redacted())?);
            Ok(())
        }
        Command::Admin {
            what: AdminCommand::RotateTokenKeys { common },
        } => {
            let cfg = load(&Overrides {
                common,
                ..Default::default()
            })?;
            let dir = cfg.state_dir.join("keys").join("fernet-keys");
            let repo = ferrostack_core::keyrepo::KeyRepository::open_or_init(
                &dir,
                cfg.token.max_active_keys,
            )?;
            let r = repo.rotate()?;
            println!(
                "rotated token keys in {}: key {} is now primary{}",
                dir.display(),
                r.new_primary,
                if r.removed.is_empty() {
                    String::new()
                } else {
                    format!(", removed {:?}", r.removed)
                }
            );
            Ok(())
        }
        Command::Bench {
            what: BenchCommand::Identity(b),
        } => crate::bench::identity(b).await,
        Command::Bench {
            what: BenchCommand::Image(b),
        } => crate::bench::image::run(b).await,
        Command::Bench {
            what: BenchCommand::Compute(b),
        } => crate::bench::compute::run(b).await,
        Command::Bench {
            what: BenchCommand::Disk(b),
        } => crate::bench::disk::run(b).await,
        Command::Bench {
            what: BenchCommand::Boot(b),
        } => crate::bench::boot::run(b).await,
        Command::Bench {
            what: BenchCommand::Ec2(b),
        } => crate::bench::ec2::run(b).await,
    }
}
