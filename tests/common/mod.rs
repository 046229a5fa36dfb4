//! Shared by the end-to-end tests: the controller binary as a child process (run as the Helm
//! chart's ServiceAccount, bound by the chart's RBAC), waiting helpers, CRD fixtures, and the
//! `helm`/`kubectl` tools.
#![allow(dead_code)]

use std::collections::HashMap;
use std::future::Future;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use git_controller::api::GitRepository;
use gitcontroller_testkit::cluster::{apply_crds, use_test_cluster};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::Client;
use kube::api::Api;

pub mod hooks;

/// How long the end-to-end helpers wait for the controller.
const WAIT: Duration = Duration::from_secs(60);

/// A client for the tests' cluster with our CRDs installed, and a fresh namespace.
pub async fn setup(prefix: &str) -> (Client, gitcontroller_testkit::cluster::TestNamespace) {
    let client = gitcontroller_testkit::cluster::client().await;
    apply_crds(&client, &git_controller::api::crds()).await;
    let ns = gitcontroller_testkit::cluster::TestNamespace::new(&client, prefix).await;
    (client, ns)
}

/// The one switch: every end-to-end test runs the controller as the ServiceAccount the Helm
/// chart creates, bound by exactly the RBAC the chart renders (`helm template` with
/// [`SUITE_CHART_VALUES`]), so the whole suite proves the chart's permissions are enough. False
/// runs it with the tests' admin kubeconfig.
pub const RUN_AS_CHART_SERVICE_ACCOUNT: bool = true;

/// Chart values of every test's controller (a test may add its own on top): the types the suite
/// syncs, RBAC bound in the test's namespace only.
pub const SUITE_CHART_VALUES: &str = r#"
sync:
  resources:
    - apiGroups: [""]
      resources: [configmaps, secrets]
      write: true
    - apiGroups: [apps]
      resources: [deployments]
      write: true
    - apiGroups: [snapshot.storage.k8s.io]
      resources: [volumesnapshots]
      write: true
"#;

/// `git-controller run` as a child process against the tests' cluster, limited to one
/// namespace; killed on drop.
pub struct ControllerProcess {
    child: Child,
    log: PathBuf,
    _dir: tempfile::TempDir,
    _identity: Option<ChartIdentity>,
    pub metrics_port: u16,
}

impl ControllerProcess {
    pub fn start(namespace: &str) -> Self {
        Self::start_with(namespace, &[])
    }

    pub fn start_with(namespace: &str, extra: &[&str]) -> Self {
        Self::start_with_env(namespace, extra, &[])
    }

    pub fn start_with_env(namespace: &str, extra: &[&str], env: &[(&str, &str)]) -> Self {
        Self::start_with_chart(namespace, extra, env, "")
    }

    /// Runs `binary` (another build of git-controller, e.g. a baseline in a benchmark).
    pub fn start_binary(
        binary: &str,
        namespace: &str,
        extra: &[&str],
        env: &[(&str, &str)],
    ) -> Self {
        Self::start_binary_with_chart(binary, namespace, extra, env, Some(""))
    }

    /// Runs the controller with the tests' admin kubeconfig instead of the chart's
    /// ServiceAccount, and `--cluster-scope-namespaces <namespace>`: for suites about other
    /// properties than RBAC whose upstream manifests need rights no chart grants (cluster
    /// roles that grant access to nodes, which RBAC lets only a holder of those rights create).
    pub fn start_as_admin(namespace: &str, extra: &[&str]) -> Self {
        let mut args = vec!["--cluster-scope-namespaces", namespace];
        args.extend_from_slice(extra);
        Self::start_binary_with_chart(
            env!("CARGO_BIN_EXE_git-controller"),
            namespace,
            &args,
            &[],
            None,
        )
    }

    /// Like [`start_with_env`](Self::start_with_env), with `chart_values` (YAML) on top of
    /// [`SUITE_CHART_VALUES`] for the RBAC the controller runs with (a list such as
    /// `sync.resources` replaces the suite's).
    pub fn start_with_chart(
        namespace: &str,
        extra: &[&str],
        env: &[(&str, &str)],
        chart_values: &str,
    ) -> Self {
        Self::start_binary_with_chart(
            env!("CARGO_BIN_EXE_git-controller"),
            namespace,
            extra,
            env,
            Some(chart_values),
        )
    }

    /// Starts `binary`; as the chart's ServiceAccount with `chart_values` when the suite runs
    /// so, as the tests' admin when `chart_values` is None.
    fn start_binary_with_chart(
        binary: &str,
        namespace: &str,
        extra: &[&str],
        env: &[(&str, &str)],
        chart_values: Option<&str>,
    ) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("controller.log");
        let metrics_port = gitcontroller_testkit::git_server::free_port();
        let identity = chart_values
            .filter(|_| RUN_AS_CHART_SERVICE_ACCOUNT)
            .map(|values| {
                let leader_election = extra.contains(&"--leader-elect");
                ChartIdentity::install(namespace, leader_election, values)
            });
        let mut command = Command::new(binary);
        use_test_cluster(&mut command);
        if let Some(identity) = &identity {
            command.env("KUBECONFIG", &identity.kubeconfig);
        }
        let child = command
            .args(["run", "--namespace", namespace])
            // Tests batch for 300 ms unless they choose; the product default is 1 s.
            .args(if extra.contains(&"--batch-window-ms") {
                &[][..]
            } else {
                &["--batch-window-ms", "300"][..]
            })
            .arg("--cache-dir")
            .arg(dir.path().join("cache"))
            .arg("--metrics-addr")
            .arg(format!("127.0.0.1:{metrics_port}"))
            .args(extra)
            .env("RUST_LOG", "info,git_controller=debug,kube=warn")
            .envs(env.iter().copied())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .expect("starting git-controller");
        Self {
            child,
            log,
            _dir: dir,
            _identity: identity,
            metrics_port,
        }
    }

    /// The process id (to read `/proc/<pid>/...`).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// The controller's /metrics, as text. A scrape that fails is retried a few times (the
    /// machine may be busy); the last error fails the test.
    pub async fn metrics(&self) -> String {
        let mut last = None;
        for _ in 0..5 {
            match self.scrape().await {
                Ok(text) => return text,
                Err(error) => {
                    eprintln!("scraping the controller's /metrics failed, retrying: {error}");
                    last = Some(error);
                }
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        panic!("the metrics endpoint does not answer: {last:?}")
    }

    /// The controller's /metrics, or None while it does not answer (yet).
    pub async fn try_metrics(&self) -> Option<String> {
        self.scrape().await.ok()
    }

    async fn scrape(&self) -> std::io::Result<String> {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", self.metrics_port)).await?;
        stream
            .write_all(b"GET /metrics HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
            .await?;
        let mut body = String::new();
        stream.read_to_string(&mut body).await?;
        if !body.starts_with("HTTP/1.1 200") {
            return Err(std::io::Error::other(format!(
                "answered: {}",
                body.lines().next().unwrap_or_default()
            )));
        }
        Ok(body)
    }

    /// The sum of the samples of `series` (a metric name with a label filter as written in
    /// the exposition, e.g. `name{operation="fetch"`) on the controller's /metrics.
    pub async fn metric_sum(&self, series: &str) -> f64 {
        metric_sum(&self.metrics().await, series)
    }

    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// Sends SIGTERM (a pod's normal stop) with the `kill` command, and waits up to 30 s
    /// for the process to exit; returns whether it exited successfully.
    pub fn terminate(&mut self) -> bool {
        let sent = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .expect("running kill");
        assert!(sent.success(), "kill -TERM {}", self.child.id());
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(status) = self.child.try_wait().expect("waiting for the controller") {
                return status.success();
            }
            assert!(
                Instant::now() < deadline,
                "still running 30 s after SIGTERM"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for ControllerProcess {
    fn drop(&mut self) {
        self.kill();
        if std::thread::panicking() {
            let log = self.log();
            let tail: Vec<&str> = log.lines().rev().take(60).collect();
            eprintln!("--- controller log (last 60 lines) ---");
            for line in tail.iter().rev() {
                eprintln!("{line}");
            }
        }
    }
}

/// Polls `check` every 100 ms until it returns Some, or panics after `timeout` with `what`.
pub async fn wait_for<T, F, Fut>(what: &str, timeout: Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let start = Instant::now();
    loop {
        if let Some(value) = check().await {
            return value;
        }
        if start.elapsed() > timeout {
            panic!("timed out after {timeout:?} waiting for {what}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Waits until the controller has written a status for the GitRepository's current spec
/// (`status.observedGeneration` is `metadata.generation`): a reconcile has seen its last change.
pub async fn wait_for_current_spec_observed(client: &Client, ns: &str, name: &str) {
    let api: Api<GitRepository> = Api::namespaced(client.clone(), ns);
    wait_for(
        &format!("a reconcile of the current spec of {name}"),
        WAIT,
        || async {
            let repo = api.get_opt(name).await.ok()??;
            (repo.status?.observed_generation == repo.metadata.generation).then_some(())
        },
    )
    .await;
}

/// Waits until a sync of GitRepository `name` based on `commit` has finished
/// (`status.lastSyncedCommit`); returns the status it wrote, as JSON.
pub async fn wait_for_sync_of(
    client: &Client,
    ns: &str,
    name: &str,
    commit: &str,
) -> serde_json::Value {
    let api: Api<GitRepository> = Api::namespaced(client.clone(), ns);
    wait_for(&format!("a sync of commit {commit}"), WAIT, || async {
        let status = serde_json::to_value(api.get_opt(name).await.ok()??.status?).ok()?;
        (status["lastSyncedCommit"] == commit).then_some(status)
    })
    .await
}

/// A GitRepository named `repo` for `url`, fetched every 2 s, with `extra` spec lines.
pub fn repository(url: &str, extra: &str) -> String {
    named_repository("repo", url, extra)
}

/// A GitRepository named `name` for `url`, fetched every 2 s, with `extra` spec lines (for
/// tests with more than one repository).
pub fn named_repository(name: &str, url: &str, extra: &str) -> String {
    format!(
        "apiVersion: gitcontroller.io/v1alpha1\nkind: GitRepository\nmetadata:\n  name: {name}\nspec:\n  url: {url}\n  interval: 2s\n{extra}"
    )
}

/// A SyncRule of `repo` limited to namespace `ns`, with `body` spec lines.
pub fn rule(name: &str, ns: &str, body: &str) -> String {
    rule_of("repo", name, ns, body)
}

/// A SyncRule of GitRepository `repository` limited to namespace `ns`, with `body` spec lines.
pub fn rule_of(repository: &str, name: &str, ns: &str, body: &str) -> String {
    format!(
        "---\napiVersion: gitcontroller.io/v1alpha1\nkind: SyncRule\nmetadata:\n  name: {name}\nspec:\n  repositoryRef:\n    name: {repository}\n  namespaces: [{ns}]\n{body}"
    )
}

/// The status of GitRepository `repo`, as JSON.
pub async fn repo_status(client: &Client, ns: &str) -> Option<serde_json::Value> {
    status_of(client, ns, "repo").await
}

/// The status of GitRepository `name`, as JSON.
pub async fn status_of(client: &Client, ns: &str, name: &str) -> Option<serde_json::Value> {
    let api: Api<GitRepository> = Api::namespaced(client.clone(), ns);
    let repo = api.get_opt(name).await.unwrap()?;
    serde_json::to_value(repo.status?).ok()
}

/// `git-controller diff -n <ns> repo`: its exit code, and its standard output followed by its
/// standard error.
pub fn run_diff(ns: &str) -> (i32, String) {
    let output = use_test_cluster(&mut Command::new(env!("CARGO_BIN_EXE_git-controller")))
        .args(["diff", "-n", ns, "repo"])
        .output()
        .unwrap();
    let stdout = String::from_utf8(output.stdout).unwrap();
    (
        output.status.code().unwrap_or(-1),
        stdout + &String::from_utf8_lossy(&output.stderr),
    )
}

/// The condition of type `type_` in a status (as JSON).
pub fn condition<'a>(status: &'a serde_json::Value, type_: &str) -> Option<&'a serde_json::Value> {
    status["conditions"]
        .as_array()?
        .iter()
        .find(|c| c["type"] == type_)
}

/// The VolumeSnapshot CRDs (snapshot.storage.k8s.io), as the CSI external-snapshotter ships
/// them, reduced to what the API server needs.
pub async fn install_volume_snapshot_crds(client: &Client) {
    let crds: Vec<CustomResourceDefinition> = ["volumesnapshots", "volumesnapshotcontents"]
        .iter()
        .map(|plural| {
            let (kind, scope) = if *plural == "volumesnapshots" {
                ("VolumeSnapshot", "Namespaced")
            } else {
                ("VolumeSnapshotContent", "Cluster")
            };
            crd("snapshot.storage.k8s.io", kind, plural, scope)
        })
        .collect();
    apply_crds(client, &crds).await;
}

/// A CRD whose spec and status take any fields.
pub fn crd(group: &str, kind: &str, plural: &str, scope: &str) -> CustomResourceDefinition {
    serde_json::from_value(serde_json::json!({
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {
            "name": format!("{plural}.{group}"),
            // Groups under k8s.io are protected; the external-snapshotter's CRDs carry this.
            "annotations": { "api-approved.kubernetes.io": "https://github.com/kubernetes-csi/external-snapshotter/pull/814" }
        },
        "spec": {
            "group": group,
            "names": { "kind": kind, "plural": plural, "singular": kind.to_lowercase(), "listKind": format!("{kind}List") },
            "scope": scope,
            "versions": [{
                "name": "v1",
                "served": true,
                "storage": true,
                "subresources": { "status": {} },
                "schema": { "openAPIV3Schema": {
                    "type": "object",
                    "properties": {
                        "spec": { "type": "object", "x-kubernetes-preserve-unknown-fields": true },
                        "status": { "type": "object", "x-kubernetes-preserve-unknown-fields": true }
                    }
                }}
            }]
        }
    }))
    .unwrap()
}

/// Applies YAML documents (SyncRules, GitRepositories, anything) with server-side apply.
pub async fn apply_yaml(client: &Client, namespace: &str, yaml: &str) {
    let discovery = kube::Discovery::new(client.clone())
        .run_aggregated()
        .await
        .unwrap();
    let docs: Vec<serde_json::Value> = serde_saphyr::from_multiple(yaml).unwrap();
    for doc in docs {
        let object: kube::api::DynamicObject = serde_json::from_value(doc.clone()).unwrap();
        let types = object.types.clone().expect("apiVersion and kind");
        let gvk = kube::api::GroupVersionKind::try_from(&types).unwrap();
        let (resource, caps) = discovery.resolve_gvk(&gvk).expect("a served type");
        let api: kube::Api<kube::api::DynamicObject> =
            if caps.scope == kube::discovery::Scope::Namespaced {
                kube::Api::namespaced_with(client.clone(), namespace, &resource)
            } else {
                kube::Api::all_with(client.clone(), &resource)
            };
        let name = object.metadata.name.clone().unwrap();
        api.patch(
            &name,
            &kube::api::PatchParams::apply("e2e-test").force(),
            &kube::api::Patch::Apply(&doc),
        )
        .await
        .unwrap_or_else(|e| panic!("applying {name}: {e}"));
    }
}

/// The sum of the samples of `series` (a metric name, optionally with a label filter as
/// written in the exposition: `name{operation="fetch"`) in a Prometheus text exposition.
pub fn metric_sum(exposition: &str, series: &str) -> f64 {
    let (name, labels) = series.split_once('{').unwrap_or((series, ""));
    exposition
        .lines()
        .filter(|l| l.starts_with(&format!("{name}{{")) && l.contains(labels))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

/// `helm` and `kubectl` from `$GITCONTROLLER_HELM_DIR/bin` (default `/opt/helm/bin`), fetched
/// with `../shared/kubelite/helm-fetch.sh` when missing.
pub struct Tools {
    pub helm: PathBuf,
    pub kubectl: PathBuf,
}

pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

pub fn chart_dir() -> PathBuf {
    repo_root().join("charts/git-controller")
}

pub fn tools() -> &'static Tools {
    static TOOLS: OnceLock<Tools> = OnceLock::new();
    TOOLS.get_or_init(|| {
        let dir = std::env::var_os("GITCONTROLLER_HELM_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from("/opt/helm"));
        let helm = dir.join("bin/helm");
        if !helm.exists() {
            let script = gitcontroller_testkit::run_cluster::shared_dir()
                .unwrap_or_else(|| repo_root().join("../shared"))
                .join("kubelite/helm-fetch.sh");
            let status = Command::new("bash")
                .arg(&script)
                .arg(&dir)
                .arg("v35")
                .status()
                .unwrap_or_else(|e| panic!("running {}: {e}", script.display()));
            assert!(
                status.success() && helm.exists(),
                "{} {} v35 did not install helm ({status})",
                script.display(),
                dir.display()
            );
        }
        Tools {
            kubectl: dir.join("bin/kubectl"),
            helm,
        }
    })
}

/// Whether a tool talks to a cluster.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Cluster {
    /// Offline (`helm template`, `helm lint`, `openssl`), or a cluster named in the arguments.
    None,
    /// The tests' cluster.
    Test,
}

/// Runs a tool; `Cluster::Test` points it at the tests' cluster (`KUBECONFIG`).
pub fn run(program: &Path, args: &[&str], stdin: Option<&str>, cluster: Cluster) -> Output {
    let mut cmd = Command::new(program);
    if cluster == Cluster::Test {
        use_test_cluster(&mut cmd);
    }
    cmd.args(args)
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd
        .spawn()
        .unwrap_or_else(|e| panic!("running {}: {e}", program.display()));
    if let Some(input) = stdin {
        let mut pipe = child.stdin.take().expect("stdin is piped");
        let input = input.to_owned();
        // Write from a thread: the child may fill its stdout pipe before reading all of stdin.
        std::thread::spawn(move || {
            let _ = pipe.write_all(input.as_bytes());
        });
    }
    child.wait_with_output().expect("waiting for the command")
}

/// Runs a tool and returns its stdout; fails the test with the full output otherwise.
pub fn run_ok(program: &Path, args: &[&str], stdin: Option<&str>, cluster: Cluster) -> String {
    let out = run(program, args, stdin, cluster);
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "{} {args:?} failed ({}):\n{stdout}\n{stderr}",
        program.display(),
        out.status
    );
    stdout
}

/// The client configuration of the tests' admin (the base of impersonating clients).
pub async fn admin_config() -> kube::Config {
    let file =
        kube::config::Kubeconfig::read_from(admin_kubeconfig()).expect("the tests' kubeconfig");
    kube::Config::from_custom_kubeconfig(file, &Default::default())
        .await
        .expect("a client configuration from the tests' kubeconfig")
}

/// The kubeconfig file the tests' admin client uses (the first of the tests' `KUBECONFIG`).
fn admin_kubeconfig() -> PathBuf {
    std::env::split_paths(gitcontroller_testkit::cluster::kubeconfig())
        .next()
        .expect("KUBECONFIG names a file")
}

/// The name of the controller's ServiceAccount in each test's namespace.
const SERVICE_ACCOUNT: &str = "gc";

/// The cluster-scoped objects of one chart release and how many controllers use them: deleted
/// when the last one stops.
#[derive(Default)]
struct Release {
    users: usize,
    cluster_scoped: Vec<String>,
}

/// The chart releases of this process, by namespace.
fn releases() -> &'static Mutex<HashMap<String, Release>> {
    static RELEASES: OnceLock<Mutex<HashMap<String, Release>>> = OnceLock::new();
    RELEASES.get_or_init(Mutex::default)
}

/// The controller's identity in a test: the chart's ServiceAccount in the test's namespace,
/// its ServiceAccount and RBAC applied from `helm template`, and a kubeconfig that
/// authenticates as it — with a client certificate signed by the cluster's CA when the CA key
/// is at hand (kubelite's `pki/` beside its kubeconfig), so the controller's own impersonation
/// of tenants' ServiceAccounts is authorized by the chart's RBAC too; otherwise through the
/// admin's impersonation (`as:`), which a nested impersonation replaces.
pub struct ChartIdentity {
    pub namespace: String,
    pub service_account: String,
    pub kubeconfig: PathBuf,
    _dir: tempfile::TempDir,
}

impl ChartIdentity {
    /// Renders the chart as release `gc-<namespace>` in `namespace` (the release namespace
    /// and, unless `values` says otherwise, the watched one) and applies what binds its
    /// ServiceAccount.
    pub fn install(namespace: &str, leader_election: bool, values: &str) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let release = format!("gc-{namespace}");
        // A short ServiceAccount name: a certificate's common name holds 64 characters.
        let base = format!(
            "fullnameOverride: {release}\nserviceAccount: {{name: {SERVICE_ACCOUNT}}}\nwatchNamespace: {namespace}\nleaderElection: {{enabled: {leader_election}}}\n{SUITE_CHART_VALUES}"
        );
        let base_file = dir.path().join("suite-values.yaml");
        let test_file = dir.path().join("test-values.yaml");
        std::fs::write(&base_file, base).unwrap();
        std::fs::write(&test_file, values).unwrap();
        let chart = chart_dir();
        let rendered = run_ok(
            &tools().helm,
            &[
                "template",
                &release,
                chart.to_str().unwrap(),
                "--namespace",
                namespace,
                "--values",
                base_file.to_str().unwrap(),
                "--values",
                test_file.to_str().unwrap(),
                "--show-only",
                "templates/serviceaccount.yaml",
                "--show-only",
                "templates/rbac.yaml",
            ],
            None,
            Cluster::None,
        );
        let docs: Vec<serde_json::Value> = serde_saphyr::from_multiple(&rendered).unwrap();
        let cluster_scoped: Vec<String> = docs
            .iter()
            .filter(|d| d["kind"] == "ClusterRole" || d["kind"] == "ClusterRoleBinding")
            .map(|d| {
                format!(
                    "{}/{}",
                    d["kind"].as_str().unwrap().to_lowercase(),
                    d["metadata"]["name"].as_str().unwrap()
                )
            })
            .collect();
        let admin = admin_kubeconfig();
        run_ok(
            &tools().kubectl,
            &[
                "apply",
                "--server-side",
                "--force-conflicts",
                "--field-manager=e2e-test",
                "-f",
                "-",
            ],
            Some(&rendered),
            Cluster::Test,
        );
        {
            let mut releases = releases().lock().unwrap();
            let entry = releases.entry(namespace.to_string()).or_default();
            entry.users += 1;
            entry.cluster_scoped = cluster_scoped;
        }
        let service_account = format!("system:serviceaccount:{namespace}:{SERVICE_ACCOUNT}");
        let kubeconfig = dir.path().join("kubeconfig");
        write_kubeconfig(&admin, &kubeconfig, namespace, SERVICE_ACCOUNT, dir.path());
        let whoami = run_ok(
            &tools().kubectl,
            &[
                &format!("--kubeconfig={}", kubeconfig.display()),
                "auth",
                "whoami",
                "-o",
                "jsonpath={.status.userInfo.username}",
            ],
            None,
            Cluster::None,
        );
        assert_eq!(
            whoami, service_account,
            "the controller's kubeconfig authenticates as the chart's ServiceAccount"
        );
        Self {
            namespace: namespace.to_string(),
            service_account,
            kubeconfig,
            _dir: dir,
        }
    }
}

impl Drop for ChartIdentity {
    fn drop(&mut self) {
        let objects = {
            let mut releases = releases().lock().unwrap();
            let Some(entry) = releases.get_mut(&self.namespace) else {
                return;
            };
            entry.users -= 1;
            if entry.users > 0 {
                return;
            }
            releases
                .remove(&self.namespace)
                .map(|e| e.cluster_scoped)
                .unwrap_or_default()
        };
        let mut args = vec!["delete", "--ignore-not-found", "--wait=false"];
        args.extend(objects.iter().map(String::as_str));
        if !objects.is_empty() {
            let _ = run(&tools().kubectl, &args, None, Cluster::Test);
        }
    }
}

/// A kubeconfig for the ServiceAccount `account` of `namespace` on the cluster of `admin`.
fn write_kubeconfig(admin: &Path, out: &Path, namespace: &str, account: &str, dir: &Path) {
    let config: serde_json::Value =
        serde_saphyr::from_str(&std::fs::read_to_string(admin).unwrap()).unwrap();
    let current = config["current-context"].as_str().unwrap_or_default();
    let context = config["contexts"]
        .as_array()
        .and_then(|all| all.iter().find(|c| c["name"] == current))
        .map(|c| c["context"].clone())
        .expect("the admin kubeconfig's current context");
    let cluster = config["clusters"]
        .as_array()
        .and_then(|all| all.iter().find(|c| c["name"] == context["cluster"]))
        .map(|c| c["cluster"].clone())
        .expect("the admin kubeconfig's cluster");
    let username = format!("system:serviceaccount:{namespace}:{account}");
    let ca_key = admin
        .parent()
        .map(|d| d.join("pki/ca.key"))
        .filter(|k| k.exists());
    let user = match ca_key {
        Some(ca_key) => {
            let (cert, key) = client_certificate(&ca_key, &username, namespace, dir);
            serde_json::json!({
                "client-certificate": cert,
                "client-key": key,
            })
        }
        None => {
            let admin_user = config["users"]
                .as_array()
                .and_then(|all| all.iter().find(|u| u["name"] == context["user"]))
                .map(|u| u["user"].clone())
                .expect("the admin kubeconfig's user");
            let mut user = admin_user;
            user["as"] = serde_json::Value::String(username);
            user
        }
    };
    let kubeconfig = serde_json::json!({
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "test", "cluster": cluster}],
        "users": [{"name": "controller", "user": user}],
        "contexts": [{"name": "controller", "context": {"cluster": "test", "user": "controller", "namespace": namespace}}],
        "current-context": "controller",
    });
    std::fs::write(out, serde_json::to_string(&kubeconfig).unwrap()).unwrap();
}

/// A client certificate for `username` in the ServiceAccount groups of `namespace`, signed by
/// the CA whose key is `ca_key` (with `ca.crt` beside it); returns (certificate, key) paths.
fn client_certificate(
    ca_key: &Path,
    username: &str,
    namespace: &str,
    dir: &Path,
) -> (String, String) {
    let openssl = Path::new("openssl");
    let ca_cert = ca_key.with_file_name("ca.crt");
    let key = dir.join("controller.key");
    let csr = dir.join("controller.csr");
    let cert = dir.join("controller.crt");
    let extensions = dir.join("client.ext");
    std::fs::write(&extensions, "extendedKeyUsage=clientAuth\n").unwrap();
    let subject =
        format!("/CN={username}/O=system:serviceaccounts/O=system:serviceaccounts:{namespace}");
    run_ok(
        openssl,
        &[
            "req",
            "-new",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-keyout",
            key.to_str().unwrap(),
            "-subj",
            &subject,
            "-out",
            csr.to_str().unwrap(),
        ],
        None,
        Cluster::None,
    );
    // A random serial, so parallel tests never write the CA's serial file.
    let serial = format!("0x{:016x}", random_u64());
    run_ok(
        openssl,
        &[
            "x509",
            "-req",
            "-in",
            csr.to_str().unwrap(),
            "-CA",
            ca_cert.to_str().unwrap(),
            "-CAkey",
            ca_key.to_str().unwrap(),
            "-set_serial",
            &serial,
            "-days",
            "1",
            "-extfile",
            extensions.to_str().unwrap(),
            "-out",
            cert.to_str().unwrap(),
        ],
        None,
        Cluster::None,
    );
    (
        cert.to_str().unwrap().to_string(),
        key.to_str().unwrap().to_string(),
    )
}

/// A random number from the standard library's randomly keyed hasher.
fn random_u64() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u64(u64::from(std::process::id()));
    hasher.finish()
}

/// (reason, regarded kind/name, note, count) of every Event git-controller published in `ns`.
pub async fn events_in(client: &Client, ns: &str) -> Vec<(String, String, String, i32)> {
    let events: Api<k8s_openapi::api::events::v1::Event> = Api::namespaced(client.clone(), ns);
    let mut found: Vec<_> = events
        .list(&Default::default())
        .await
        .unwrap()
        .items
        .into_iter()
        .filter(|e| e.reporting_controller.as_deref() == Some("git-controller"))
        .map(|e| {
            let regarding = e.regarding.clone().unwrap_or_default();
            (
                e.reason.clone().unwrap_or_default(),
                format!(
                    "{}/{}",
                    regarding.kind.unwrap_or_default(),
                    regarding.name.unwrap_or_default()
                ),
                e.note.clone().unwrap_or_default(),
                e.series.as_ref().map_or(1, |s| s.count),
            )
        })
        .collect();
    found.sort();
    found
}
