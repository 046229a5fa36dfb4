//! `git-controller run`: connect, serve health and metrics, run the controller until a signal.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use kube::Client;
use kube::config::{KubeConfigOptions, Kubeconfig};

use crate::access::Tenancy;
use crate::controller;
use crate::error::{Error, Result};
use crate::http::{Health, LeaderState};
use crate::leader::{self, LeaderGate, LeaseConfig};
use crate::metrics::Metrics;

/// Options of `git-controller run` (see `--help`).
#[derive(Clone, Debug)]
pub struct RunOptions {
    /// A kubeconfig file; otherwise `KUBECONFIG`, `~/.kube/config` or the in-cluster config.
    pub kubeconfig: Option<PathBuf>,
    /// Only GitRepositories and SyncRules in this namespace.
    pub namespace: Option<String>,
    /// Where Git caches live.
    pub cache_dir: PathBuf,
    /// Address of `/metrics`, `/healthz`, `/readyz`.
    pub metrics_addr: SocketAddr,
    /// How many GitRepositories reconcile at once.
    pub concurrency: u16,
    /// How triggers are batched into syncs (`--batch-window-ms`, `--batch-max-delay`).
    pub batching: controller::Batching,
    /// A status that only records progress is written at most once per this
    /// (`--status-interval`).
    pub status_interval: std::time::Duration,
    /// The push webhook receiver (`/hooks/<namespace>/<name>`): address and limits; off when
    /// None.
    pub webhook: Option<crate::webhook::Options>,
    /// Leader election; every replica writes when None.
    pub leader_election: Option<LeaderOptions>,
    /// Tenant confinement: trusted namespaces, lockdown, plain-text Secrets, local URLs.
    pub tenancy: Tenancy,
}

/// Where the leader-election Lease lives.
#[derive(Clone, Debug)]
pub struct LeaderOptions {
    /// Namespace of the Lease.
    pub namespace: String,
    /// Name of the Lease.
    pub name: String,
}

/// Builds a client from an explicit kubeconfig path, or the usual inference.
pub async fn client(kubeconfig: Option<&PathBuf>) -> Result<Client> {
    Client::try_from(config(kubeconfig).await?).map_err(Error::Kube)
}

/// The client configuration from an explicit kubeconfig path, or the usual inference (the base
/// of the impersonating clients, too).
pub async fn config(kubeconfig: Option<&PathBuf>) -> Result<kube::Config> {
    Ok(match kubeconfig {
        Some(path) => {
            let file = Kubeconfig::read_from(path)
                .map_err(|e| Error::InvalidSpec(format!("kubeconfig {}: {e}", path.display())))?;
            kube::Config::from_custom_kubeconfig(file, &KubeConfigOptions::default())
                .await
                .map_err(|e| Error::InvalidSpec(format!("kubeconfig {}: {e}", path.display())))?
        }
        None => kube::Config::infer()
            .await
            .map_err(|e| Error::InvalidSpec(format!("no cluster configuration found: {e}")))?,
    })
}

/// Runs until SIGINT/SIGTERM.
pub async fn run(options: RunOptions) -> Result<()> {
    let fd_limit = raise_fd_limit();
    let kube_config = config(options.kubeconfig.as_ref()).await?;
    let client = Client::try_from(kube_config.clone()).map_err(Error::Kube)?;
    // Impersonating clients for GitRepositories' ServiceAccounts derive from the same config.
    let clients = Arc::new(crate::access::Clients::new(kube_config, client.clone()));
    let version = client.apiserver_version().await?;
    tracing::info!(version = %version.git_version, "connected to the API server");

    let metrics = Arc::new(Metrics::new());
    let health = Health::default();
    health.set_api_reachable(true);
    spawn_api_probe(client.clone(), health.clone());
    let router = crate::http::router(metrics.clone(), health.clone());
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let mut http_stop = stop_rx.clone();
    let http = tokio::spawn(crate::http::serve(
        options.metrics_addr,
        router,
        async move {
            let _ = http_stop.wait_for(|stop| *stop).await;
        },
    ));

    let (trigger, triggers) = controller::Trigger::channel();
    // Made before the election, so the webhook receiver, serving from the start, knows whether
    // this replica leads.
    let gate = match &options.leader_election {
        None => LeaderGate::always_open(),
        Some(_) => LeaderGate::closed(),
    };
    if let Some(mut webhook) = options.webhook.clone() {
        // Webhook connections may use at most half the descriptors: the rest is for the
        // controller's own connections, Git, and the operational endpoints.
        let cap = usize::try_from(fd_limit / 2).unwrap_or(usize::MAX).max(1);
        if webhook.max_connections > cap {
            tracing::warn!(
                requested = webhook.max_connections,
                cap,
                fd_limit,
                "--webhook-max-connections lowered to half the file descriptor limit"
            );
            webhook.max_connections = cap;
        }
        // A push webhook asks for a fetch, not only a re-plan: here if this replica leads,
        // else from the leader, through an annotation of the GitRepository.
        let on_push = crate::webhook::on_push(trigger.clone(), gate.clone(), client.clone());
        let client = client.clone();
        let namespace = options.namespace.clone();
        let metrics = metrics.clone();
        let mut hooks_stop = stop_rx.clone();
        tokio::spawn(async move {
            let stopped = async move {
                let _ = hooks_stop.wait_for(|stop| *stop).await;
            };
            let served = crate::webhook::run(
                client,
                namespace.as_deref(),
                &webhook,
                metrics.registry(),
                on_push,
                stopped,
            )
            .await;
            if let Err(error) = served {
                tracing::error!(%error, addr = %webhook.addr, "webhook receiver failed");
            }
        });
    }

    let instance = std::env::var("POD_NAME")
        .unwrap_or_else(|_| gethostname::gethostname().to_string_lossy().into_owned());
    let mut leadership = None;
    if let Some(election) = &options.leader_election {
        health.set_leader_state(LeaderState::Standby);
        // Unique per process, so a restarted pod does not inherit a stale term.
        let identity = format!("{instance}-{}", std::process::id());
        let lease = LeaseConfig::new(&election.namespace, &election.name, identity);
        tracing::info!(lease = %lease.name, identity = %lease.identity, "waiting to become the leader");
        let won = leader::acquire_with_gate(client.clone(), lease, gate.clone()).await?;
        health.set_leader_state(LeaderState::Leading);
        leadership = Some(won);
    }
    let lost = match &leadership {
        Some(leadership) => futures::future::Either::Left(leadership.lost()),
        None => futures::future::Either::Right(futures::future::pending()),
    };
    let config = controller::Config {
        namespace: options.namespace.clone(),
        cache_dir: options.cache_dir.clone(),
        concurrency: options.concurrency,
        batching: options.batching,
        status_interval: options.status_interval,
        instance,
        tenancy: options.tenancy.clone(),
    };
    let mut controller_stop = stop_rx.clone();
    let shutdown = async move {
        let _ = controller_stop.wait_for(|stop| *stop).await;
    };
    let lost_health = health.clone();
    let stopping_gate = gate.clone();
    tokio::spawn(async move {
        tokio::select! {
            _ = shutdown_signal() => tracing::info!("shutting down"),
            _ = lost => {
                lost_health.set_leader_state(LeaderState::Lost);
                tracing::error!("lost the leader Lease; shutting down");
            }
        }
        // No write starts from here on; those under way finish before the Lease is released.
        stopping_gate.close();
        let _ = stop_tx.send(true);
    });
    let result = controller::run(
        clients,
        config,
        metrics,
        gate.clone(),
        trigger,
        triggers,
        shutdown,
    )
    .await;
    if let Some(leadership) = leadership {
        match leadership.release().await {
            Ok(true) => tracing::info!("released the leader Lease"),
            Ok(false) => {}
            Err(error) => tracing::warn!(%error, "could not release the leader Lease"),
        }
    }
    result?;
    let _ = http.await;
    Ok(())
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .expect("installing a SIGTERM handler");
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
}

/// Raises the soft limit of open file descriptors to the hard limit (many connections are
/// sockets) and returns it.
fn raise_fd_limit() -> u64 {
    match rlimit::increase_nofile_limit(u64::MAX) {
        Ok(limit) => {
            tracing::debug!(limit, "file descriptor limit");
            limit
        }
        Err(error) => {
            tracing::warn!(%error, "could not raise the file descriptor limit");
            rlimit::Resource::NOFILE
                .get()
                .map_or(1024, |(soft, _)| soft)
        }
    }
}

/// Keeps `/readyz` honest: the API server is probed every 10 s.
fn spawn_api_probe(client: Client, health: Health) {
    tokio::spawn(async move {
        loop {
            tokio::time::sleep(Duration::from_secs(10)).await;
            let probe = tokio::time::timeout(Duration::from_secs(5), client.apiserver_version());
            health.set_api_reachable(matches!(probe.await, Ok(Ok(_))));
        }
    });
}
