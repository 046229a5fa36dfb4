//! What the rows are made of: ConfigMap manifests, GitRepositories with their rules, the
//! baselines' tools (`kubectl`, a raw server-side apply client) and waiting helpers.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use futures::StreamExt;
use git_controller::api::GitRepository;
use gitcontroller_testkit::cluster::use_test_cluster;
use gitcontroller_testkit::git_server::GitDaemon;

use crate::common::apply_yaml;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::Client;
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams};

/// Seeds `git` with `n` ConfigMap manifests for `ns` (`cms/cm-<i>.yaml`, origin `git`), in one
/// commit.
pub fn seed_configmaps(git: &GitDaemon, ns: &str, n: usize, message: &str) {
    let files: Vec<(String, String)> = (0..n)
        .map(|i| {
            let name = name("cm", i);
            (
                format!("cms/{name}.yaml"),
                configmap_yaml(ns, &name, "git", None),
            )
        })
        .collect();
    let refs: Vec<(&str, &str)> = files
        .iter()
        .map(|(p, c)| (p.as_str(), c.as_str()))
        .collect();
    git.seed(&refs, message);
}

/// The name of the i-th ConfigMap of a row.
pub fn name(prefix: &str, i: usize) -> String {
    format!("{prefix}-{i:05}")
}

/// A ConfigMap as a person would write it, labelled with where it comes from (and, when
/// given, the repository it belongs to).
pub fn configmap_yaml(ns: &str, name: &str, origin: &str, shard: Option<&str>) -> String {
    let shard = shard.map_or(String::new(), |s| format!("    shard: {s}\n"));
    format!(
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {name}\n  namespace: {ns}\n  labels:\n    origin: {origin}\n{shard}data:\n  value: \"{name}\"\n"
    )
}

/// The same ConfigMap as an apply body.
pub fn configmap_json(ns: &str, name: &str, origin: &str) -> serde_json::Value {
    serde_json::json!({
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": name, "namespace": ns, "labels": {"origin": origin}},
        "data": {"value": name},
    })
}

/// Which way a repository's rules sync.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Directions {
    /// `origin=git` ConfigMaps from Git to the cluster.
    FromGit,
    /// `origin=cluster` ConfigMaps from the cluster to Git.
    ToGit,
    /// Both.
    Both,
}

/// GitRepository `name` on `url`, its manifests under `path`.
pub fn repository(name: &str, url: &str, path: &str) -> String {
    format!(
        "---\napiVersion: gitcontroller.io/v1alpha1\nkind: GitRepository\nmetadata:\n  name: {name}\nspec:\n  url: {url}\n  path: \"{path}\"\n  interval: 1h\n"
    )
}

/// The SyncRules of repository `name` for ConfigMaps in `ns`: `origin=git` ones from Git,
/// `origin=cluster` ones to Git, narrowed by `extra_selector` (`,shard=...`).
pub fn rules(name: &str, ns: &str, directions: Directions, extra_selector: &str) -> String {
    let rule = |suffix: &str, origin: &str, sync_to: &str| {
        format!(
            "---\napiVersion: gitcontroller.io/v1alpha1\nkind: SyncRule\nmetadata:\n  name: {name}-{suffix}\nspec:\n  repositoryRef: {{name: {name}}}\n  namespaces: [{ns}]\n  kinds: [ConfigMap]\n  labelSelector: origin={origin}{extra_selector}\n  syncTo: {sync_to}\n"
        )
    };
    let mut yaml = String::new();
    if directions != Directions::ToGit {
        yaml.push_str(&rule("from-git", "git", "kubernetes"));
    }
    if directions != Directions::FromGit {
        yaml.push_str(&rule("to-git", "cluster", "git"));
    }
    yaml
}

/// `kubectl` from the usual places.
pub fn kubectl() -> Command {
    let path = [
        "/opt/helm/bin/kubectl",
        "/usr/local/bin/kubectl",
        "/usr/bin/kubectl",
    ]
    .into_iter()
    .find(|p| std::path::Path::new(p).exists())
    .unwrap_or("kubectl");
    let mut command = Command::new(path);
    use_test_cluster(&mut command);
    command
}

/// `kubectl apply --server-side -f <path>`; how long it took.
pub fn kubectl_apply(path: &std::path::Path) -> Duration {
    let started = Instant::now();
    let status = kubectl()
        .args(["apply", "--server-side", "-f"])
        .arg(path)
        .stdout(Stdio::null())
        .status()
        .expect("kubectl");
    assert!(status.success(), "kubectl apply failed");
    started.elapsed()
}

/// The API server's ceiling for creating `bodies`: raw server-side applies, `in_flight` at a
/// time over one client (its connection pool); how long until every one succeeded.
pub async fn flood(
    client: &Client,
    ns: &str,
    bodies: Vec<serde_json::Value>,
    in_flight: usize,
) -> Duration {
    let api: Api<ConfigMap> = Api::namespaced(client.clone(), ns);
    let params = PatchParams::apply("flood").force();
    let started = Instant::now();
    futures::stream::iter(bodies)
        .map(|body| {
            let (api, params) = (api.clone(), params.clone());
            async move {
                let name = body["metadata"]["name"].as_str().unwrap().to_string();
                api.patch(&name, &params, &Patch::Apply(&body))
                    .await
                    .unwrap_or_else(|e| panic!("applying {name}: {e}"));
            }
        })
        .buffer_unordered(in_flight)
        .collect::<Vec<()>>()
        .await;
    started.elapsed()
}

/// How many ConfigMaps in `ns` carry `label`.
pub async fn count(client: &Client, ns: &str, label: &str) -> usize {
    let api: Api<ConfigMap> = Api::namespaced(client.clone(), ns);
    api.list_metadata(&ListParams::default().labels(label))
        .await
        .map(|l| l.items.len())
        .unwrap_or(0)
}

/// Deletes every ConfigMap of `ns` (the test cluster has no namespace controller to do it).
pub async fn clear(client: &Client, ns: &str) {
    let api: Api<ConfigMap> = Api::namespaced(client.clone(), ns);
    let _ = api
        .delete_collection(&DeleteParams::background(), &ListParams::default())
        .await;
}

/// Polls `check` every `every` until it is true; panics after `limit` naming `what`.
pub async fn until<F, Fut>(what: &str, every: Duration, limit: Duration, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let started = Instant::now();
    while !check().await {
        assert!(
            started.elapsed() < limit,
            "timed out after {limit:?} waiting for {what}"
        );
        tokio::time::sleep(every).await;
    }
}

/// The rules (all directions as `directions` says) and the GitRepository `repo` reading the
/// root of `git`: the one-repository setup of most rows.
pub async fn apply_one_repository(
    client: &Client,
    ns: &str,
    git: &GitDaemon,
    directions: Directions,
) {
    apply_yaml(client, ns, &rules("repo", ns, directions, "")).await;
    apply_repositories(client, ns, &repository("repo", &git.url(), "")).await;
}

/// Applies the GitRepositories of `yaml` (from [`repository`]) with a typed client: no
/// discovery inside a timed section.
pub async fn apply_repositories(client: &Client, ns: &str, yaml: &str) {
    let api: Api<GitRepository> = Api::namespaced(client.clone(), ns);
    let docs: Vec<serde_json::Value> = serde_saphyr::from_multiple(yaml).unwrap();
    for doc in docs {
        let name = doc["metadata"]["name"].as_str().unwrap().to_string();
        api.patch(
            &name,
            &PatchParams::apply("bench").force(),
            &Patch::Apply(&doc),
        )
        .await
        .unwrap_or_else(|e| panic!("applying GitRepository {name}: {e}"));
    }
}
