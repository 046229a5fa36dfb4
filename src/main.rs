#![forbid(unsafe_code)]
//! The `git-controller` binary: parses flags and calls the library.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};
use git_controller::access::Tenancy;
use git_controller::access::identity::own_namespace;

#[derive(Parser)]
#[command(
    name = "git-controller",
    version,
    about = "Two-way sync between Kubernetes and Git"
)]
struct Cli {
    /// Log format.
    #[arg(
        long,
        global = true,
        value_enum,
        default_value = "text",
        env = "GIT_CONTROLLER_LOG_FORMAT"
    )]
    log_format: LogFormat,
    #[command(subcommand)]
    command: Command,
}

#[derive(Clone, Copy, ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

#[derive(Subcommand)]
enum Command {
    /// Print the CustomResourceDefinitions as multi-document YAML.
    Crds,
    /// Print what a sync would do now, in each direction, without writing anything, then
    /// what keeps the repository from being Ready (skipped inputs, invalid rules, the prune
    /// guard, ...) and the actions held back because of it. Exits 0 when in sync, 1 when
    /// something would change or is held back or wrong, 2 on error (a missing branch or
    /// path, an unreachable remote).
    Diff {
        /// Namespace of the GitRepository.
        #[arg(long, short = 'n', default_value = "default")]
        namespace: String,
        /// Name of the GitRepository.
        repository: String,
        /// Kubeconfig file (default: KUBECONFIG, ~/.kube/config, then in-cluster).
        #[arg(long)]
        kubeconfig: Option<PathBuf>,
        /// Directory for the Git cache (default: a temporary directory).
        #[arg(long)]
        cache_dir: Option<PathBuf>,
        #[command(flatten)]
        tenancy: TenancyFlags,
    },
    /// Run the controller against the cluster in --kubeconfig, KUBECONFIG or in-cluster.
    Run {
        /// Kubeconfig file (default: KUBECONFIG, ~/.kube/config, then in-cluster).
        #[arg(long)]
        kubeconfig: Option<PathBuf>,
        /// Only reconcile GitRepositories and SyncRules in this namespace.
        #[arg(long, short = 'n', env = "GIT_CONTROLLER_NAMESPACE")]
        namespace: Option<String>,
        /// Directory for the Git caches (kept between reconciles).
        #[arg(
            long,
            default_value = "/var/cache/git-controller",
            env = "GIT_CONTROLLER_CACHE_DIR"
        )]
        cache_dir: PathBuf,
        /// Address for /metrics, /healthz and /readyz.
        #[arg(long, default_value = "127.0.0.1:8080")]
        metrics_addr: SocketAddr,
        /// How many GitRepositories reconcile at once.
        #[arg(long, default_value_t = 4)]
        concurrency: u16,
        /// Changes are synced together (one commit) until none arrived for this many
        /// milliseconds; the first change after a quiet period syncs within 50 ms.
        #[arg(long, default_value_t = 1000)]
        batch_window_ms: u64,
        /// Changes that keep arriving never delay a sync longer than this after the first of
        /// them (e.g. `5s`, `1500ms`).
        #[arg(long, default_value = "5s", value_parser = git_controller::webhook::parse_duration)]
        batch_max_delay: std::time::Duration,
        /// A repository's status is written at most once per this while it only records
        /// progress (a newer synced commit, its time, the counts): a status carries the
        /// inventory, and every write of it costs the API server in proportion. A change of
        /// a condition, of the inventory or of the spec, and the first sync after a quiet
        /// period, are written at once. `0s` writes every sync's status.
        #[arg(long, default_value = "5s", value_parser = git_controller::webhook::parse_duration)]
        status_interval: Duration,
        /// Address for push webhooks (POST /hooks/<namespace>/<name>); off when not given.
        #[arg(long)]
        webhook_addr: Option<SocketAddr>,
        /// Webhook connections open at once (at most half the file descriptor limit); when
        /// all are taken, the oldest is closed.
        #[arg(long, default_value_t = 1024)]
        webhook_max_connections: usize,
        /// Webhook requests per second one source (an IPv4 address or an IPv6 /64) may send
        /// on average; more get 429. 0 turns per-source limits off (e.g. behind a proxy that
        /// limits, since every request then comes from the proxy).
        #[arg(long, default_value = "10", value_parser = git_controller::webhook::parse_rate)]
        webhook_rate_limit: f64,
        /// Webhook requests one source may send at once after a quiet period; also the
        /// connections it may hold open.
        #[arg(long, default_value_t = 20)]
        webhook_rate_burst: u32,
        /// Time a webhook sender has to send its request headers (e.g. 5s, 500ms).
        #[arg(long, default_value = "5s", value_parser = git_controller::webhook::parse_duration)]
        webhook_header_timeout: Duration,
        /// Time a webhook sender has to send its request body.
        #[arg(long, default_value = "10s", value_parser = git_controller::webhook::parse_duration)]
        webhook_body_timeout: Duration,
        /// How long a webhook token read from its Secret is used before the Secret is read
        /// again (one GET per repository per period; a rotated token works after at most this).
        #[arg(long, default_value = "2m", value_parser = git_controller::webhook::parse_duration)]
        webhook_secret_ttl: Duration,
        /// Elect one leader among replicas through a coordination.k8s.io Lease; only the
        /// leader writes.
        #[arg(long)]
        leader_elect: bool,
        /// Namespace of the leader-election Lease (default: POD_NAMESPACE, else `default`).
        #[arg(long, env = "POD_NAMESPACE")]
        lease_namespace: Option<String>,
        /// Name of the leader-election Lease.
        #[arg(long, default_value = "git-controller")]
        lease_name: String,
        #[command(flatten)]
        tenancy: TenancyFlags,
    },
}

/// Logs to stderr; `RUST_LOG` overrides `default_filter`.
/// Tenant confinement (docs/security.md), for `run` and for `diff` (which plans as `run` would).
#[derive(Args)]
struct TenancyFlags {
    /// Trusted namespaces, comma-separated: their GitRepositories without
    /// serviceAccountName act with the controller's own rights across the cluster. Every
    /// other GitRepository without one is confined to its own namespace. Default: the
    /// controller's own namespace (POD_NAMESPACE, else the in-cluster namespace file); an
    /// empty value trusts none.
    #[arg(long, value_delimiter = ',', value_name = "NAMESPACES")]
    cluster_scope_namespaces: Option<Vec<String>>,
    /// Lockdown: GitRepositories without spec.serviceAccountName impersonate this
    /// ServiceAccount of their own namespace, and watchers of synced types read as the
    /// impersonated accounts (the controller's own rights may then shrink to its CRDs,
    /// Events, Leases, impersonation, access reviews and credentials).
    #[arg(long, value_name = "NAME")]
    default_service_account: Option<String>,
    /// Let GitRepositories with allowPlaintextSecrets write Secrets to Git in plain text;
    /// without this flag the field is refused.
    #[arg(long)]
    allow_plaintext_secrets: bool,
    /// Allow file:// URLs and local paths as remotes (repositories on the controller's own
    /// disk; for local demos and tests).
    #[arg(long)]
    allow_local_urls: bool,
}

impl TenancyFlags {
    fn into_tenancy(self) -> Tenancy {
        Tenancy {
            cluster_scope_namespaces: self
                .cluster_scope_namespaces
                .unwrap_or_else(|| own_namespace().into_iter().collect())
                .into_iter()
                .map(|ns| ns.trim().to_string())
                .filter(|ns| !ns.is_empty())
                .collect(),
            default_service_account: self.default_service_account.filter(|name| !name.is_empty()),
            allow_plaintext_secrets: self.allow_plaintext_secrets,
            allow_local_urls: self.allow_local_urls,
        }
    }
}

fn init_logging(format: LogFormat, default_filter: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default_filter));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Json => builder.json().init(),
        LogFormat::Text => builder.init(),
    }
}

/// See `docs/performance.md`: resident memory stays close to the live heap. The
/// `system-allocator` feature leaves it out, for heap profilers that only see `malloc`.
#[cfg(not(feature = "system-allocator"))]
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Crds => {
            print!("{}", git_controller::api::crds_yaml());
            ExitCode::SUCCESS
        }
        Command::Diff {
            namespace,
            repository,
            kubeconfig,
            cache_dir,
            tenancy,
        } => {
            // diff's output is the diff: only warnings and errors are logged by default.
            init_logging(cli.log_format, "warn");
            diff(
                namespace,
                repository,
                kubeconfig,
                cache_dir,
                tenancy.into_tenancy(),
            )
            .await
        }
        Command::Run {
            kubeconfig,
            namespace,
            cache_dir,
            metrics_addr,
            concurrency,
            batch_window_ms,
            batch_max_delay,
            status_interval,
            webhook_addr,
            webhook_max_connections,
            webhook_rate_limit,
            webhook_rate_burst,
            webhook_header_timeout,
            webhook_body_timeout,
            webhook_secret_ttl,
            leader_elect,
            lease_namespace,
            lease_name,
            tenancy,
        } => {
            init_logging(cli.log_format, "info,kube=warn");
            let options = git_controller::app::RunOptions {
                kubeconfig,
                namespace,
                cache_dir,
                metrics_addr,
                concurrency,
                batching: git_controller::controller::Batching {
                    window: std::time::Duration::from_millis(batch_window_ms),
                    max_delay: batch_max_delay,
                },
                status_interval,
                webhook: webhook_addr.map(|addr| git_controller::webhook::Options {
                    max_connections: webhook_max_connections,
                    rate_limit: webhook_rate_limit,
                    rate_burst: webhook_rate_burst,
                    header_timeout: webhook_header_timeout,
                    body_timeout: webhook_body_timeout,
                    secret_ttl: webhook_secret_ttl,
                    ..git_controller::webhook::Options::new(addr)
                }),
                leader_election: leader_elect.then(|| git_controller::app::LeaderOptions {
                    namespace: lease_namespace.unwrap_or_else(|| "default".into()),
                    name: lease_name,
                }),
                tenancy: tenancy.into_tenancy(),
            };
            match git_controller::app::run(options).await {
                Ok(()) => ExitCode::SUCCESS,
                Err(error) => {
                    tracing::error!(category = %error.category(), %error, "git-controller stopped");
                    eprintln!("error: {error}");
                    ExitCode::FAILURE
                }
            }
        }
    }
}

async fn diff(
    namespace: String,
    repository: String,
    kubeconfig: Option<PathBuf>,
    cache_dir: Option<PathBuf>,
    tenancy: Tenancy,
) -> ExitCode {
    let temp = std::env::temp_dir().join(format!("git-controller-diff-{}", std::process::id()));
    let cache = cache_dir.unwrap_or_else(|| temp.clone());
    let result = async {
        let config = git_controller::app::config(kubeconfig.as_ref()).await?;
        git_controller::diff::diff(config, tenancy, &namespace, &repository, &cache).await
    }
    .await;
    let _ = std::fs::remove_dir_all(&temp);
    match result {
        Ok(report) => {
            print!("{}", report.text);
            if report.in_sync {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            }
        }
        Err(error) => {
            eprintln!("error: {error}");
            ExitCode::from(2)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_batching_flags_default_to_the_documented_values() {
        let cli = Cli::parse_from(["git-controller", "run"]);
        let Command::Run {
            batch_window_ms,
            batch_max_delay,
            ..
        } = cli.command
        else {
            unreachable!("parsed `run`");
        };
        assert_eq!(
            git_controller::controller::Batching {
                window: std::time::Duration::from_millis(batch_window_ms),
                max_delay: batch_max_delay,
            },
            git_controller::controller::Batching::default()
        );
        assert!(Cli::try_parse_from(["git-controller", "run", "--batch-max-delay", "5"]).is_err());
    }

    #[test]
    fn the_status_interval_defaults_to_the_documented_value() {
        let cli = Cli::parse_from(["git-controller", "run"]);
        let Command::Run {
            status_interval, ..
        } = cli.command
        else {
            unreachable!("parsed `run`");
        };
        // README, the chart's values.yaml and docs/operations.md say 5s.
        assert_eq!(status_interval, Duration::from_secs(5));
    }
}
