//! Shared by the end-to-end tests: the controller binary as a child process, waiting helpers,
//! and CRD fixtures.
#![allow(dead_code)]

use std::future::Future;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
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

/// `git-controller run` as a child process against the tests' cluster, limited to one
/// namespace; killed on drop.
pub struct ControllerProcess {
    child: Child,
    log: PathBuf,
    _dir: tempfile::TempDir,
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
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("controller.log");
        let metrics_port = gitcontroller_testkit::git_server::free_port();
        let child = use_test_cluster(&mut Command::new(env!("CARGO_BIN_EXE_git-controller")))
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
    format!(
        "apiVersion: gitcontroller.io/v1alpha1\nkind: GitRepository\nmetadata:\n  name: repo\nspec:\n  url: {url}\n  interval: 2s\n{extra}"
    )
}

/// A SyncRule of `repo` limited to namespace `ns`, with `body` spec lines.
pub fn rule(name: &str, ns: &str, body: &str) -> String {
    format!(
        "---\napiVersion: gitcontroller.io/v1alpha1\nkind: SyncRule\nmetadata:\n  name: {name}\nspec:\n  repositoryRef:\n    name: repo\n  namespaces: [{ns}]\n{body}"
    )
}

/// The status of GitRepository `repo`, as JSON.
pub async fn repo_status(client: &Client, ns: &str) -> Option<serde_json::Value> {
    let api: Api<GitRepository> = Api::namespaced(client.clone(), ns);
    let repo = api.get_opt("repo").await.unwrap()?;
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
