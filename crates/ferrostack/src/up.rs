//! `ferrostack up`: open the state directory and database, start the services,
//! bind the listeners, bootstrap, write the client files, serve until a signal,
//! then shut down gracefully (in-flight requests finish, the database is closed).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use tokio::net::TcpListener;
use tokio::sync::watch;

use ferrostack_api::{AppState, ServiceUrls, all_services, single_service, with_common_layers};
use ferrostack_core::Db;
use ferrostack_core::config::Config;
use ferrostack_core::fsutil::{ensure_private_dir, write_private_atomic};
use ferrostack_identity::bootstrap::{BootstrapSpec, CatalogService};
use ferrostack_identity::{Identity, Settings};
use ferrostack_image::Images;
use ferrostack_image::store::FilesystemStore;

use crate::files::{ClientFiles, previous_password};

/// Everything `up` starts, for `up` itself and for the benchmark.
pub struct Running {
    pub base_url: String,
    pub db: Db,
    servers: Vec<tokio::task::JoinHandle<std::io::Result<()>>>,
    stop: watch::Sender<bool>,
}

fn advertised(addr: SocketAddr) -> String {
    if addr.ip().is_unspecified() {
        tracing::warn!(
            "listening on {addr}; advertising 127.0.0.1 in the catalog: set [server] public_url \
             to the address clients should use"
        );
        format!("http://127.0.0.1:{}", addr.port())
    } else {
        format!("http://{addr}")
    }
}

async fn bind(addr: &str) -> anyhow::Result<TcpListener> {
    TcpListener::bind(addr)
        .await
        .with_context(|| format!("cannot listen on {addr}"))
}

/// Starts the cloud described by `cfg`; returns once it serves.
pub async fn start(cfg: &Config) -> anyhow::Result<Running> {
    let state = &cfg.state_dir;
    ensure_private_dir(state)
        .with_context(|| format!("cannot create state directory {}", state.display()))?;
    let keys = state.join("keys");
    ensure_private_dir(&keys)?;

    let url = cfg.database_url();
    let db = Db::connect(&url, cfg.database.max_connections).await?;
    tracing::info!(database = %ferrostack_core::db::redact_url(&url), "database open");
    let identity = Identity::open(db.clone(), Settings::from_config(cfg), &keys).await?;

    let main = bind(&cfg.server.listen).await?;
    let main_addr = main.local_addr()?;
    let base_url = if cfg.server.public_url.is_empty() {
        advertised(main_addr)
    } else {
        cfg.server.public_url.trim_end_matches('/').to_string()
    };

    // Services on their own classic ports as well (identity and image, in this release).
    let svc_url = |name: &str, default: String| {
        cfg.services
            .get(name)
            .filter(|s| !s.public_url.is_empty())
            .map(|s| s.public_url.trim_end_matches('/').to_string())
            .unwrap_or(default)
    };
    let mut own_port: std::collections::HashMap<&'static str, String> = Default::default();
    let mut extra_listeners = Vec::new();
    for name in ["identity", "image", "compute", "network", "ec2"] {
        if let Some(svc) = cfg.services.get(name)
            && !svc.listen.is_empty()
        {
            let l = bind(&svc.listen).await?;
            own_port.insert(name, advertised(l.local_addr()?));
            extra_listeners.push((name, l));
        }
    }
    let url_of = |name: &'static str| {
        svc_url(
            name,
            own_port
                .get(name)
                .cloned()
                .unwrap_or_else(|| format!("{base_url}/{name}")),
        )
    };
    let identity_url = url_of("identity");
    let image_url = url_of("image");
    let compute_url = format!("{}/v2.1", url_of("compute"));
    let network_url = url_of("network");
    // The classic EC2 port serves the API at `/services/Cloud`.
    let ec2_url = svc_url(
        "ec2",
        own_port
            .get("ec2")
            .map(|u| format!("{u}/services/Cloud"))
            .unwrap_or_else(|| format!("{base_url}/ec2")),
    );
    let spec = BootstrapSpec {
        admin_password: (!cfg.bootstrap.admin_password.is_empty())
            .then(|| cfg.bootstrap.admin_password.clone()),
        region: cfg.bootstrap.region.clone(),
        services: vec![
            service(
                "identity",
                "keystone",
                "Identity (Keystone v3)",
                identity_url.clone(),
            ),
            service("image", "glance", "Image (Glance v2)", image_url.clone()),
            service("compute", "nova", "Compute (Nova v2.1)", compute_url),
            service("network", "neutron", "Network (Neutron v2.0)", network_url),
            service("ec2", "ec2", "EC2 Query API", ec2_url.clone()),
        ],
    };
    let outcome = identity
        .bootstrap(&spec)
        .await
        .context("bootstrap failed")?;
    let password = outcome
        .admin_password
        .clone()
        .or_else(|| previous_password(state));
    let auth_url = format!("{identity_url}/v3");
    ClientFiles {
        cloud_name: &cfg.bootstrap.cloud_name,
        auth_url: &auth_url,
        region: &cfg.bootstrap.region,
        admin_password: password.as_deref(),
        ec2: &outcome.ec2,
        ec2_url: &ec2_url,
    }
    .write(state)?;
    if password.is_none() {
        tracing::warn!(
            "the admin password is not known any more; set [bootstrap] admin_password to reset it"
        );
    }

    let store = Arc::new(
        FilesystemStore::new(state.join("images")).context("cannot open the image store")?,
    );
    let image = Arc::new(
        Images::open(
            db.clone(),
            store,
            FilesystemStore::new(state.join("staging"))
                .context("cannot open the image staging area")?,
            ferrostack_image::Settings::from_config(&cfg.image),
        )
        .await
        .context("cannot open the image service")?,
    );
    let network = Arc::new(
        ferrostack_network::Networks::open(
            db.clone(),
            ferrostack_network::Settings {
                network: cfg.network.clone(),
                quota: cfg.quota.clone(),
            },
        )
        .await
        .context("cannot open the network service")?,
    );
    network
        .bootstrap(&outcome.admin_project_id)
        .await
        .context("cannot create the bootstrap network")?;
    // The console proxy's listener first: the console URLs name its address.
    let console_listener = if cfg.console.listen.is_empty() {
        None
    } else {
        Some(bind(&cfg.console.listen).await?)
    };
    let console_base = match &console_listener {
        Some(l) => advertised(l.local_addr()?),
        None => String::new(),
    };
    let consoles = console_settings(cfg, &console_base);
    let compute = Arc::new(
        ferrostack_compute::Compute::open(
            db.clone(),
            image.clone(),
            network.clone(),
            ferrostack_compute::Settings {
                state_dir: state.clone(),
                compute: cfg.compute.clone(),
                quota: cfg.quota.clone(),
                consoles,
            },
        )
        .await
        .context("cannot open the compute service")?,
    );
    let ec2 = Arc::new(
        ferrostack_ec2::Ec2::open(
            db.clone(),
            identity.clone(),
            compute.clone(),
            image.clone(),
            network.clone(),
            ferrostack_ec2::Settings {
                region: cfg.bootstrap.region.clone(),
                endpoint: ec2_url.clone(),
                terminated_visible_secs: 3600,
            },
        )
        .await
        .context("cannot open the EC2 API")?,
    );
    let app_state = AppState {
        identity: identity.clone(),
        image,
        compute: compute.clone(),
        network,
        ec2: ec2.clone(),
    };
    let (stop, stop_rx) = watch::channel(false);
    let driver = crate::agent::start_controller(cfg, &compute, stop_rx.clone()).await?;
    let public_of = |name: &str| {
        cfg.services
            .get(name)
            .filter(|s| !s.public_url.is_empty())
            .map(|s| s.public_url.clone())
    };
    let urls = ServiceUrls {
        identity: public_of("identity"),
        image: public_of("image"),
        compute: public_of("compute"),
        network: public_of("network"),
    };
    let mut servers = Vec::new();
    let router = with_common_layers(all_services(app_state.clone(), &urls));
    servers.push(serve(main, router, stop_rx.clone()));
    for (name, l) in extra_listeners {
        let public = match name {
            "image" => urls.image.clone(),
            "compute" => urls.compute.clone(),
            "network" => urls.network.clone(),
            "ec2" => None,
            _ => urls.identity.clone(),
        };
        if let Some(r) = single_service(app_state.clone(), name, public) {
            servers.push(serve(l, with_common_layers(r), stop_rx.clone()));
        }
    }

    if let Some((l, uid)) = metadata_listener(cfg, driver).await? {
        let service = ferrostack_api::metadata::MetadataService::new(
            compute.clone(),
            ec2.clone(),
            Arc::new(move |peer| ferrostack_virt::metadata_route::guest_of_connection(peer, uid)),
            Some(cfg.host.dhcp_domain.clone()).filter(|d| !d.is_empty()),
            cfg.metadata.max_token_ttl,
        );
        servers.push(serve_with_peers(
            l,
            ferrostack_api::metadata::router(service),
            stop_rx.clone(),
        ));
    }

    if let Some(l) = console_listener {
        let proxy = ferrostack_api::console::ConsoleProxy::new(
            compute.clone(),
            vec![
                cfg.console.novnc_dir.clone(),
                cfg.console.spice_html5_dir.clone(),
            ],
            cfg.console.allowed_origins.clone(),
        );
        tracing::info!(url = %console_base, "console proxy listening");
        servers.push(serve_with_peers(
            l,
            ferrostack_api::console::router(proxy),
            stop_rx.clone(),
        ));
    }

    // Another process (`ferrostack admin rotate-token-keys`) may rotate the keys.
    let refresher = identity.clone();
    let mut refresh_stop = stop_rx.clone();
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(10));
        loop {
            tokio::select! {
                _ = tick.tick() => {
                    match refresher.refresh_keys() {
                        Ok(true) => tracing::info!("token keys changed on disk; reloaded"),
                        Ok(false) => {}
                        Err(e) => tracing::error!(error = %e, "cannot reload token keys"),
                    }
                }
                _ = refresh_stop.changed() => break,
            }
        }
    });

    Ok(Running {
        base_url,
        db,
        servers,
        stop,
    })
}

fn service(kind: &str, name: &str, description: &str, url: String) -> CatalogService {
    CatalogService {
        kind: kind.into(),
        name: name.into(),
        description: description.into(),
        url,
    }
}

/// `[vnc]`, `[spice]`, `[serial_console]`, `[consoleauth]` for compute: empty base
/// URLs point at the console proxy (`proxy` = its advertised `http://host:port`).
fn console_settings(cfg: &Config, proxy: &str) -> ferrostack_compute::consoles::ConsoleSettings {
    let or = |set: &str, default: String| {
        if set.is_empty() {
            default
        } else {
            set.to_string()
        }
    };
    let ws = proxy.replacen("http://", "ws://", 1);
    ferrostack_compute::consoles::ConsoleSettings {
        vnc_enabled: cfg.vnc.enabled,
        spice_enabled: cfg.spice.enabled,
        serial_enabled: cfg.serial_console.enabled,
        novnc_base_url: or(
            &cfg.vnc.novncproxy_base_url,
            format!("{proxy}/vnc_auto.html"),
        ),
        spice_html5_base_url: or(
            &cfg.spice.html5proxy_base_url,
            format!("{proxy}/spice_auto.html"),
        ),
        spice_direct_base_url: cfg.spice.spice_direct_proxy_base_url.clone(),
        serial_base_url: or(&cfg.serial_console.base_url, format!("{ws}/")),
        token_ttl: cfg.consoleauth.token_ttl,
    }
}

/// A listener whose handlers see the peer address (the console proxy logs it
/// with each attach; the metadata service tells guests apart by it).
fn serve_with_peers(
    listener: TcpListener,
    router: axum::Router,
    mut stop: watch::Receiver<bool>,
) -> tokio::task::JoinHandle<std::io::Result<()>> {
    tokio::spawn(async move {
        axum::serve(
            listener,
            router.into_make_service_with_connect_info::<std::net::SocketAddr>(),
        )
        .with_graceful_shutdown(async move {
            let _ = stop.wait_for(|s| *s).await;
        })
        .await
    })
}

/// The metadata service's listener, when guests can reach it: ferrostack runs
/// as root with a real driver (QEMU runs as another user, so its connections
/// can be told from ferrostack's own) and the NAT rules for QEMU's user are in
/// place. Returns the listener and QEMU's uid. `[metadata] intercept = on`
/// makes any of that missing an error; `auto` a warning (the config drive
/// still carries the guest's data).
async fn metadata_listener(
    cfg: &Config,
    driver: Option<&str>,
) -> anyhow::Result<Option<(TcpListener, u32)>> {
    use ferrostack_virt::metadata_route as route;
    let want = cfg.metadata.intercept.as_str();
    if want == "off" {
        return Ok(None);
    }
    let strict = want == "on";
    let give_up = |why: String| -> anyhow::Result<Option<(TcpListener, u32)>> {
        if strict {
            anyhow::bail!("[metadata] intercept = on, but {why}");
        }
        tracing::info!("no metadata service at 169.254.169.254: {why}");
        Ok(None)
    };
    let user = match driver {
        Some("qemu") => {
            if route::uid_of(&cfg.host.qemu_user).is_some() {
                cfg.host.qemu_user.clone()
            } else {
                "nobody".to_string()
            }
        }
        Some("libvirt") => "libvirt-qemu".to_string(),
        _ => {
            return give_up(
                "no guest runs on a user-mode network here (fake or prepare driver)".into(),
            );
        }
    };
    if !tokio::task::spawn_blocking(route::available)
        .await
        .unwrap_or(false)
    {
        return give_up("it needs root and iptables".into());
    }
    let Some(uid) = route::uid_of(&user).filter(|u| *u != 0) else {
        return give_up(format!("QEMU's user {user} has no uid other than root's"));
    };
    let listener = match bind(&cfg.metadata.listen).await {
        Ok(l) => l,
        Err(e) => return give_up(format!("cannot listen on {}: {e:#}", cfg.metadata.listen)),
    };
    let port = listener.local_addr()?.port();
    match tokio::task::spawn_blocking(move || route::install(uid, port)).await? {
        Ok(()) => {
            tracing::info!(port, qemu_user = %user, "metadata service at 169.254.169.254 for guests");
            Ok(Some((listener, uid)))
        }
        Err(e) => give_up(format!("the NAT rules could not be installed: {e}")),
    }
}

fn serve(
    listener: TcpListener,
    router: axum::Router,
    mut stop: watch::Receiver<bool>,
) -> tokio::task::JoinHandle<std::io::Result<()>> {
    let app = tower::ServiceExt::<axum::extract::Request>::map_request(
        router,
        ferrostack_api::trim_service_root_slash,
    );
    tokio::spawn(async move {
        axum::serve(
            listener,
            axum::ServiceExt::<axum::extract::Request>::into_make_service(app),
        )
        .with_graceful_shutdown(async move {
            let _ = stop.wait_for(|s| *s).await;
        })
        .await
    })
}

impl Running {
    /// Stops accepting, lets in-flight requests finish (up to `grace`), closes the
    /// database.
    pub async fn shutdown(self, grace: Duration) {
        let _ = self.stop.send(true);
        let all = futures_join(self.servers);
        if tokio::time::timeout(grace, all).await.is_err() {
            tracing::warn!("requests still running after {grace:?}; closing anyway");
        }
        self.db.close().await;
    }
}

async fn futures_join(handles: Vec<tokio::task::JoinHandle<std::io::Result<()>>>) {
    for h in handles {
        match h.await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => tracing::error!(error = %e, "listener failed"),
            Err(e) => tracing::error!(error = %e, "listener task failed"),
        }
    }
}

async fn shutdown_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = match signal(SignalKind::terminate()) {
        Ok(s) => s,
        Err(e) => {
            tracing::error!(error = %e, "cannot watch SIGTERM");
            let _ = tokio::signal::ctrl_c().await;
            return;
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {},
        _ = term.recv() => {},
    }
}

fn print_banner(cfg: &Config, base_url: &str) {
    let clouds = cfg.state_dir.join("clouds.yaml");
    let rc = cfg.state_dir.join("adminrc");
    let ec2 = cfg.state_dir.join("ec2rc.sh");
    println!(
        "ferrostack is up at {base_url}\n\
         \n  export OS_CLIENT_CONFIG_FILE={}\n  openstack --os-cloud {} token issue\n\
         \n  or: source {}  (OS_* variables)\n  EC2/AWS credentials: source {}\n",
        clouds.display(),
        cfg.bootstrap.cloud_name,
        rc.display(),
        ec2.display()
    );
}

/// Runs until SIGINT/SIGTERM.
pub async fn up(cfg: Config) -> anyhow::Result<()> {
    let running = start(&cfg).await?;
    let url_file = cfg.state_dir.join("ferrostack.url");
    write_private_atomic(&url_file, running.base_url.as_bytes())?;
    print_banner(&cfg, &running.base_url);
    tracing::info!(url = %running.base_url, "serving");
    shutdown_signal().await;
    tracing::info!("shutting down");
    let _ = std::fs::remove_file(&url_file);
    running
        .shutdown(Duration::from_secs(cfg.server.shutdown_grace))
        .await;
    tracing::info!("stopped");
    Ok(())
}
