//! In sync means quiet, on manifests as their projects publish them (`tests/fixtures/upstream`,
//! sources and licences in its README): once a repository has converged, a minute of
//! reconciling on its interval costs at most 2 API writes (Events and Leases aside), no
//! commit, no fetch but the interval's, no dry run, and `git-controller diff` says in sync.
//!
//! The suites run side by side in one test (tests of one binary share two threads here), each
//! in its own namespace with its own Git server and controller, and share one 60 s window.
//! Writes are counted per suite from the resourceVersions of every object in its namespace;
//! the API server's own request counters (all suites together) are printed alongside.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use common::{ControllerProcess, apply_yaml, setup, wait_for};
use git_controller::api::GitRepository;
use gitcontroller_testkit::cluster::{TestNamespace, apply_crds};
use gitcontroller_testkit::git_server::GitDaemon;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, DynamicObject, Patch, PatchParams, PostParams};
use kube::discovery::{Discovery, Scope, verbs};
use kube::{Client, ResourceExt};
use serde_json::Value;

/// The interval of every suite's GitRepository: the window expects about 60 s / 10 s fetches.
const INTERVAL_SECONDS: u64 = 10;
const WINDOW: Duration = Duration::from_secs(60);
const CONVERGE: Duration = Duration::from_secs(240);
const FETCHES: &str = r#"gitcontroller_git_operation_duration_seconds_count{operation="fetch""#;
const RECONCILES: &str = "gitcontroller_reconcile_duration_seconds_count";
const CLUSTER_WRITES: &str = r#"gitcontroller_sync_operations_total{direction="kubernetes""#;
const DRY_RUN_VERDICTS: [&str; 3] = ["unchanged", "changed", "failed"];

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/upstream")
}

/// Every file under `dir` (relative to the fixtures), as (path relative to `dir`, text).
fn fixture_files(dir: &str) -> Vec<(String, String)> {
    fn walk(root: &Path, at: &Path, out: &mut Vec<(String, String)>) {
        for entry in std::fs::read_dir(at).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                walk(root, &path, out);
            } else {
                let relative = path
                    .strip_prefix(root)
                    .unwrap()
                    .to_string_lossy()
                    .into_owned();
                out.push((relative, std::fs::read_to_string(&path).unwrap()));
            }
        }
    }
    let root = fixtures().join(dir);
    let mut out = Vec::new();
    walk(&root, &root, &mut out);
    out.sort();
    out
}

/// kube-prometheus names its namespace; the test's takes its place.
fn into_namespace(text: &str, from: &str, ns: &str) -> String {
    text.replace(
        &format!("namespace: {from}\n"),
        &format!("namespace: {ns}\n"),
    )
}

/// A namespace under every top-level `metadata:` (what a kustomization's `namespace:` does).
fn with_namespace(text: &str, ns: &str) -> String {
    let mut out = String::new();
    for line in text.lines() {
        out.push_str(line);
        out.push('\n');
        if line == "metadata:" {
            out.push_str(&format!("  namespace: {ns}\n"));
        }
    }
    out
}

/// Whether every Kubernetes object in `text` is of a kind the API server serves. Documents
/// that are no objects (a kustomization, a List, anything without a name) do not count: the
/// planner skips them.
fn served(discovery: &Discovery, text: &str) -> bool {
    let docs: Vec<Value> = serde_saphyr::from_multiple(text).unwrap_or_default();
    docs.iter().all(|doc| {
        let (Some(api_version), Some(kind)) = (doc["apiVersion"].as_str(), doc["kind"].as_str())
        else {
            return true;
        };
        if doc.pointer("/metadata/name").is_none() {
            return true;
        }
        let (group, version) = api_version.rsplit_once('/').unwrap_or(("", api_version));
        discovery
            .resolve_gvk(&kube::api::GroupVersionKind::gvk(group, version, kind))
            .is_some()
    })
}

/// (kind, name) → resourceVersion of every object in `ns` of every namespaced type the API
/// server lists, Events and Leases aside.
async fn resource_versions(
    client: &Client,
    discovery: &Discovery,
    ns: &str,
) -> BTreeMap<String, String> {
    let mut versions = BTreeMap::new();
    for group in discovery.groups() {
        for (resource, caps) in group.recommended_resources() {
            if caps.scope != Scope::Namespaced
                || !caps.supports_operation(verbs::LIST)
                || ["events", "leases"].contains(&resource.plural.as_str())
            {
                continue;
            }
            let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), ns, &resource);
            let Ok(list) = api.list(&Default::default()).await else {
                continue;
            };
            for object in list.items {
                versions.insert(
                    format!(
                        "{}.{}/{}",
                        resource.plural,
                        resource.group,
                        object.name_any()
                    ),
                    object.resource_version().unwrap_or_default(),
                );
            }
        }
    }
    versions
}

/// The objects created, changed or deleted between two snapshots.
fn writes_between(
    before: &BTreeMap<String, String>,
    after: &BTreeMap<String, String>,
) -> Vec<String> {
    let mut keys: Vec<&String> = before.keys().chain(after.keys()).collect();
    keys.sort();
    keys.dedup();
    keys.into_iter()
        .filter(|k| before.get(*k) != after.get(*k))
        .cloned()
        .collect()
}

/// Sum of the API server's `apiserver_request_total` over the requests that write (`dry_run`
/// false) or dry-run (true), Events and Leases aside; all suites together.
async fn api_server_requests(client: &Client, dry_run: bool) -> f64 {
    let request = http::Request::get("/metrics").body(Vec::new()).unwrap();
    let text = client.request_text(request).await.unwrap_or_default();
    const WRITES: [&str; 6] = [
        "POST",
        "PUT",
        "PATCH",
        "DELETE",
        "DELETECOLLECTION",
        "APPLY",
    ];
    text.lines()
        .filter(|l| l.starts_with("apiserver_request_total{"))
        .filter(|l| !l.contains("resource=\"leases\"") && !l.contains("resource=\"events\""))
        .filter(|l| l.contains(&format!("dry_run=\"{}\"", if dry_run { "All" } else { "" })))
        .filter(|l| {
            WRITES
                .iter()
                .any(|verb| l.contains(&format!("verb=\"{verb}\"")))
        })
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

fn repository_yaml(url: &str) -> String {
    format!(
        "apiVersion: gitcontroller.io/v1alpha1\nkind: GitRepository\nmetadata:\n  name: repo\nspec:\n  url: {url}\n  interval: {INTERVAL_SECONDS}s\n"
    )
}

fn rule_yaml(name: &str, ns: &str, body: &str) -> String {
    format!(
        "---\napiVersion: gitcontroller.io/v1alpha1\nkind: SyncRule\nmetadata:\n  name: {name}\nspec:\n  repositoryRef: {{name: repo}}\n  namespaces: [{ns}]\n{body}"
    )
}

/// One repository with its own namespace, Git server and controller.
struct Suite {
    name: &'static str,
    client: Client,
    ns: TestNamespace,
    git: GitDaemon,
    controller: ControllerProcess,
}

/// What a suite did in the window.
#[derive(Debug)]
struct Quiet {
    /// Objects the repository syncs (`gitcontroller_objects`, both directions).
    objects: f64,
    writes: Vec<String>,
    commits: usize,
    fetches: f64,
    reconciles: f64,
    dry_runs: f64,
    remembered: f64,
    diff_exit: i32,
    diff: String,
}

impl Suite {
    fn ns(&self) -> &str {
        self.ns.name()
    }

    async fn dry_runs(&self) -> f64 {
        let text = self.controller.metrics().await;
        DRY_RUN_VERDICTS
            .iter()
            .map(|v| {
                common::metric_sum(
                    &text,
                    &format!("gitcontroller_apply_confirmations_total{{verdict=\"{v}\""),
                )
            })
            .sum()
    }

    /// Waits until the repository is Ready at the head of its branch and two more reconciles
    /// wrote nothing to the cluster and committed nothing.
    async fn converge(&self) {
        let repos: Api<GitRepository> = Api::namespaced(self.client.clone(), self.ns());
        let started = Instant::now();
        loop {
            wait_for(
                &format!("{}: Ready at the head of the branch", self.name),
                CONVERGE,
                || async {
                    let status = repos.get("repo").await.ok()?.status?;
                    let ready = status.conditions.iter().any(|c| {
                        c.type_ == "Ready" && c.status == git_controller::api::ConditionStatus::True
                    });
                    (ready
                        && status.last_synced_commit.as_deref() == Some(self.git.head().as_str()))
                    .then_some(())
                },
            )
            .await;
            let writes = self.controller.metric_sum(CLUSTER_WRITES).await;
            let head = self.git.head();
            let reconciles = self.controller.metric_sum(RECONCILES).await;
            wait_for(
                &format!("{}: two more reconciles", self.name),
                CONVERGE,
                || async {
                    (self.controller.metric_sum(RECONCILES).await >= reconciles + 2.0).then_some(())
                },
            )
            .await;
            if self.controller.metric_sum(CLUSTER_WRITES).await == writes && self.git.head() == head
            {
                return;
            }
            assert!(
                started.elapsed() < CONVERGE,
                "{}: still writing after {CONVERGE:?}",
                self.name
            );
        }
    }

    /// Counts what the suite does while `window` runs (the same window for every suite).
    async fn measure(
        &self,
        discovery: &Discovery,
        window: impl std::future::Future<Output = ()>,
    ) -> Quiet {
        let versions = resource_versions(&self.client, discovery, self.ns()).await;
        let commits = self.git.commits().len();
        let fetches = self.controller.metric_sum(FETCHES).await;
        let reconciles = self.controller.metric_sum(RECONCILES).await;
        let dry_runs = self.dry_runs().await;
        let remembered = self
            .controller
            .metric_sum(r#"gitcontroller_apply_confirmations_total{verdict="remembered""#)
            .await;
        window.await;
        // The window is a minute of reconciling: at least one per interval (a positive signal
        // that the controller ran all along, not only that time passed).
        let at_least = reconciles + (WINDOW.as_secs() / INTERVAL_SECONDS - 1) as f64;
        wait_for(
            &format!("{}: a reconcile per interval", self.name),
            CONVERGE,
            || async { (self.controller.metric_sum(RECONCILES).await >= at_least).then_some(()) },
        )
        .await;
        let after = resource_versions(&self.client, discovery, self.ns()).await;
        let quiet = Quiet {
            objects: self
                .controller
                .metric_sum(r#"gitcontroller_objects{direction="kubernetes""#)
                .await
                + self
                    .controller
                    .metric_sum(r#"gitcontroller_objects{direction="git""#)
                    .await,
            writes: writes_between(&versions, &after),
            commits: self.git.commits().len() - commits,
            fetches: self.controller.metric_sum(FETCHES).await - fetches,
            reconciles: self.controller.metric_sum(RECONCILES).await - reconciles,
            dry_runs: self.dry_runs().await - dry_runs,
            remembered: self
                .controller
                .metric_sum(r#"gitcontroller_apply_confirmations_total{verdict="remembered""#)
                .await
                - remembered,
            diff_exit: -1,
            diff: String::new(),
        };
        let output = tokio::process::Command::new(env!("CARGO_BIN_EXE_git-controller"))
            .env("KUBECONFIG", gitcontroller_testkit::cluster::kubeconfig())
            // With the controller's tenancy flags (see `Suite::start`).
            .args([
                "diff",
                "-n",
                self.ns(),
                "repo",
                "--cluster-scope-namespaces",
                self.ns(),
            ])
            .output()
            .await
            .unwrap();
        Quiet {
            diff_exit: output.status.code().unwrap_or(-1),
            diff: String::from_utf8_lossy(&output.stdout)
                .chars()
                .take(4000)
                .collect(),
            ..quiet
        }
    }

    /// What is wrong with a window, if anything.
    fn problems(&self, q: &Quiet) -> Vec<String> {
        let mut problems = Vec::new();
        let max_fetches = (WINDOW.as_secs() / INTERVAL_SECONDS + 1) as f64;
        if q.writes.len() > 2 {
            problems.push(format!("{} API writes: {:?}", q.writes.len(), q.writes));
        }
        if q.commits > 0 {
            problems.push(format!(
                "{} commits: {:?}",
                q.commits,
                self.git.commit_messages()
            ));
        }
        if q.fetches > max_fetches {
            problems.push(format!(
                "{} fetches, the interval allows {max_fetches}",
                q.fetches
            ));
        }
        if q.dry_runs > 0.0 {
            problems.push(format!("{} dry runs", q.dry_runs));
        }
        if q.diff_exit != 0 {
            problems.push(format!("diff exited {}:\n{}", q.diff_exit, q.diff));
        }
        problems
    }
}

/// A client with our CRDs installed, and what the API server serves.
async fn cluster() -> (Client, Discovery) {
    let client = gitcontroller_testkit::cluster::client().await;
    apply_crds(&client, &git_controller::api::crds()).await;
    let discovery = Discovery::new(client.clone())
        .run_aggregated()
        .await
        .unwrap();
    (client, discovery)
}

/// kube-prometheus as released (the subset in the fixtures' README): the CRDs applied first,
/// the rest synced by one rule that applies the repository to the namespace.
async fn kube_prometheus(discovery: &Discovery) -> Suite {
    let client = gitcontroller_testkit::cluster::client().await;
    let crds: Vec<CustomResourceDefinition> = fixture_files("kube-prometheus/setup")
        .iter()
        .filter(|(_, text)| text.contains("kind: CustomResourceDefinition"))
        .map(|(_, text)| serde_saphyr::from_str(text).unwrap())
        .collect();
    apply_crds(&client, &crds).await;
    let files = |ns: &str| -> Vec<(String, String)> {
        fixture_files("kube-prometheus/manifests")
            .into_iter()
            .map(|(path, text)| {
                (
                    format!("manifests/{path}"),
                    into_namespace(&text, "monitoring", ns),
                )
            })
            .collect()
    };
    Suite::start("kube-prometheus", discovery, files, |ns| {
        rule_yaml("apply-all", ns, "  syncTo: kubernetes\n")
    })
    .await
}

impl Suite {
    /// Makes a namespace, seeds a Git server with `files` (path, text) for it — leaving out
    /// files of kinds the API server does not serve —, applies the repository and `rules` and
    /// starts a controller for the namespace.
    async fn start(
        name: &'static str,
        discovery: &Discovery,
        files: impl FnOnce(&str) -> Vec<(String, String)>,
        rules: impl FnOnce(&str) -> String,
    ) -> Self {
        let (client, ns) = setup(name).await;
        let files: Vec<(String, String)> = files(ns.name())
            .into_iter()
            .filter(|(_, text)| served(discovery, text))
            .collect();
        let git = GitDaemon::start();
        let refs: Vec<(&str, &str)> = files
            .iter()
            .map(|(p, c)| (p.as_str(), c.as_str()))
            .collect();
        git.seed(&refs, "as published upstream");
        let yaml = repository_yaml(&git.url()) + &rules(ns.name());
        apply_yaml(&client, ns.name(), &yaml).await;
        // kube-prometheus brings cluster roles that grant access to nodes: only a holder of
        // those rights may create them, which no chart grants its controller.
        let controller = ControllerProcess::start_as_admin(ns.name(), &[]);
        Self {
            name,
            client,
            ns,
            git,
            controller,
        }
    }
}

/// podinfo's kustomize/ manifests: the whole object from Git (the root pointer `""`), the
/// containers written back to Git.
async fn podinfo(discovery: &Discovery, name: &'static str) -> Suite {
    Suite::start(
        name,
        discovery,
        |ns| {
            fixture_files("podinfo/kustomize")
                .into_iter()
                .map(|(path, text)| (format!("kustomize/{path}"), with_namespace(&text, ns)))
                .collect()
        },
        |ns| {
            rule_yaml("from-git", ns, "  filters: [\"\"]\n  syncTo: kubernetes\n")
                + &rule_yaml(
                    "containers-to-git",
                    ns,
                    "  kinds: [Deployment]\n  filters: [/spec/template/spec/containers]\n  syncTo: git\n",
                )
        },
    )
    .await
}

/// Argo CD's plain-manifest example apps, applied by one rule.
async fn argocd_example_apps(discovery: &Discovery) -> Suite {
    Suite::start(
        "argocd-apps",
        discovery,
        |ns| {
            fixture_files("argocd-example-apps")
                .into_iter()
                .map(|(path, text)| (path, with_namespace(&text, ns)))
                .collect()
        },
        |ns| rule_yaml("apply-all", ns, "  syncTo: kubernetes\n"),
    )
    .await
}

/// Twenty ConfigMaps from Git and five made in the cluster, exported to Git: both directions.
async fn configmaps_both_ways(discovery: &Discovery) -> Suite {
    let suite = Suite::start(
        "cm-both-ways",
        discovery,
        |ns| {
            (0..20)
                .map(|i| {
                    (
                        format!("config/cm-{i}.yaml"),
                        format!("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: from-git-{i}\n  namespace: {ns}\n  labels:\n    origin: git\ndata:\n  index: \"{i}\"\n"),
                    )
                })
                .collect()
        },
        |ns| {
            rule_yaml(
                "from-git",
                ns,
                "  kinds: [ConfigMap]\n  labelSelector: origin=git\n  syncTo: kubernetes\n",
            ) + &rule_yaml(
                "to-git",
                ns,
                "  kinds: [ConfigMap]\n  labelSelector: origin=cluster\n  syncTo: git\n",
            )
        },
    )
    .await;
    let configmaps: Api<k8s_openapi::api::core::v1::ConfigMap> =
        Api::namespaced(suite.client.clone(), suite.ns());
    for i in 0..5 {
        let cm = serde_json::from_value(serde_json::json!({
            "apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": format!("from-cluster-{i}"), "labels": {"origin": "cluster"}},
            "data": {"index": i.to_string()}
        }))
        .unwrap();
        configmaps
            .create(&PostParams::default(), &cm)
            .await
            .unwrap();
    }
    suite
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn upstream_manifests_go_quiet_once_converged() {
    let (client, discovery) = cluster().await;
    let kube_prometheus = kube_prometheus(&discovery).await;
    // kube-prometheus' CRDs are served now.
    let discovery = Discovery::new(client.clone())
        .run_aggregated()
        .await
        .unwrap();
    let suites = [
        kube_prometheus,
        podinfo(&discovery, "podinfo").await,
        argocd_example_apps(&discovery).await,
        configmaps_both_ways(&discovery).await,
    ];
    futures::future::join_all(suites.iter().map(Suite::converge)).await;

    let writes_before = api_server_requests(&client, false).await;
    let dry_runs_before = api_server_requests(&client, true).await;
    let window = futures::future::FutureExt::shared(Box::pin(tokio::time::sleep(WINDOW)));
    let measured =
        futures::future::join_all(suites.iter().map(|s| s.measure(&discovery, window.clone())))
            .await;
    let writes = api_server_requests(&client, false).await - writes_before;
    let dry_runs = api_server_requests(&client, true).await - dry_runs_before;
    eprintln!(
        "API server, all suites, {WINDOW:?} and the diffs after it: {writes} write requests, {dry_runs} dry runs (Events and Leases aside)"
    );
    let mut failures = Vec::new();
    for (suite, quiet) in suites.iter().zip(&measured) {
        eprintln!(
            "{} ({} objects): {} writes, {} commits, {} fetches, {} reconciles, {} dry runs, {} remembered, diff exit {}",
            suite.name,
            quiet.objects,
            quiet.writes.len(),
            quiet.commits,
            quiet.fetches,
            quiet.reconciles,
            quiet.dry_runs,
            quiet.remembered,
            quiet.diff_exit
        );
        for problem in suite.problems(quiet) {
            failures.push(format!("{}: {problem}", suite.name));
        }
    }
    assert!(failures.is_empty(), "not quiet:\n{}", failures.join("\n"));
}

/// The lines that differ between two texts of the same length in lines.
fn changed_lines(before: &str, after: &str) -> Vec<(String, String)> {
    before
        .lines()
        .zip(after.lines())
        .filter(|(a, b)| a != b)
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect()
}

#[tokio::test]
async fn podinfo_write_back_commits_nothing_until_an_image_changes_then_one_line() {
    let (client, discovery) = cluster().await;
    let suite = podinfo(&discovery, "podinfo-set-image").await;
    let seeded = suite.git.read_file("kustomize/deployment.yaml").unwrap();
    suite.converge().await;
    assert_eq!(
        suite.git.commits().len(),
        1,
        "no commit on the first sync: {:?}\n{}",
        suite.git.commit_messages(),
        suite.git.read_file("kustomize/deployment.yaml").unwrap()
    );

    // `kubectl set image deployment/podinfo podinfod=…:6.14.2`: a strategic merge patch by
    // the field manager kubectl-set.
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), suite.ns());
    deployments
        .patch(
            "podinfo",
            &PatchParams {
                field_manager: Some("kubectl-set".into()),
                ..PatchParams::default()
            },
            &Patch::Strategic(
                serde_json::json!({"spec": {"template": {"spec": {"containers": [
                    {"name": "podinfod", "image": "ghcr.io/stefanprodan/podinfo:6.14.2"}
                ]}}}}),
            ),
        )
        .await
        .unwrap();
    let written = wait_for("the new image in Git", CONVERGE, || async {
        let text = suite.git.read_file("kustomize/deployment.yaml")?;
        text.contains("podinfo:6.14.2").then_some(text)
    })
    .await;
    assert_eq!(
        suite.git.commits().len(),
        2,
        "{:?}",
        suite.git.commit_messages()
    );
    assert_eq!(written.lines().count(), seeded.lines().count(), "{written}");
    assert_eq!(
        changed_lines(&seeded, &written),
        [(
            "        image: ghcr.io/stefanprodan/podinfo:6.14.1".to_string(),
            "        image: ghcr.io/stefanprodan/podinfo:6.14.2".to_string()
        )],
        "{written}"
    );
}

/// A custom resource type whose `spec.config` is an atomic struct with a published default.
fn widget_crd() -> CustomResourceDefinition {
    serde_json::from_value(serde_json::json!({
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": "widgets.quiet.gitcontroller.io"},
        "spec": {
            "group": "quiet.gitcontroller.io",
            "names": {"kind": "Widget", "plural": "widgets", "singular": "widget", "listKind": "WidgetList"},
            "scope": "Namespaced",
            "versions": [{
                "name": "v1", "served": true, "storage": true,
                "schema": {"openAPIV3Schema": {
                    "type": "object",
                    "properties": {"spec": {"type": "object", "properties": {
                        "size": {"type": "integer"},
                        "config": {
                            "type": "object",
                            "x-kubernetes-map-type": "atomic",
                            "properties": {
                                "mode": {"type": "string"},
                                "level": {"type": "string", "default": "info"}
                            }
                        }
                    }}}
                }}
            }]
        }
    }))
    .unwrap()
}

#[tokio::test]
async fn an_apply_the_planner_is_unsure_of_is_settled_by_a_dry_run() {
    let (client, _) = cluster().await;
    apply_crds(&client, &[widget_crd()]).await;
    let discovery = Discovery::new(client.clone())
        .run_aggregated()
        .await
        .unwrap();
    let widget = |ns: &str, config: &str| {
        format!(
            "apiVersion: quiet.gitcontroller.io/v1\nkind: Widget\nmetadata:\n  name: w\n  namespace: {ns}\nspec:\n  size: 2\n  config:\n{config}"
        )
    };
    let suite = Suite::start(
        "confirm",
        &discovery,
        |ns| {
            vec![(
                "widget.yaml".to_string(),
                widget(ns, "    mode: fast\n    level: debug\n"),
            )]
        },
        |ns| rule_yaml("widgets", ns, "  kinds: [Widget]\n  syncTo: kubernetes\n"),
    )
    .await;
    suite.converge().await;
    let widgets: Api<DynamicObject> = Api::namespaced_with(
        client.clone(),
        suite.ns(),
        &discovery
            .resolve_gvk(&kube::api::GroupVersionKind::gvk(
                "quiet.gitcontroller.io",
                "v1",
                "Widget",
            ))
            .unwrap()
            .0,
    );
    const CHANGED: &str = r#"gitcontroller_apply_confirmations_total{verdict="changed""#;
    assert_eq!(suite.controller.metric_sum(CHANGED).await, 0.0);

    // `level` leaves Git. Inside an atomic value we applied, a member only the live object has
    // may be a server default: only the server can tell. It is not: the apply resets it to
    // the published default.
    suite.git.change(
        &[("widget.yaml", &widget(suite.ns(), "    mode: fast\n"))],
        &[],
        "level: the default",
    );
    let diff = wait_for("diff to see the change", CONVERGE, || async {
        let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_git-controller"))
            .env("KUBECONFIG", gitcontroller_testkit::cluster::kubeconfig())
            .args([
                "diff",
                "-n",
                suite.ns(),
                "repo",
                "--cluster-scope-namespaces",
                suite.ns(),
            ])
            .output()
            .await
            .unwrap();
        (out.status.code() == Some(1)).then(|| String::from_utf8_lossy(&out.stdout).into_owned())
    })
    .await;
    assert!(diff.contains("level: debug"), "{diff}");
    suite.converge().await;
    let config = widgets.get("w").await.unwrap().data["spec"]["config"].clone();
    assert_eq!(config, serde_json::json!({"mode": "fast", "level": "info"}));
    assert_eq!(
        suite.controller.metric_sum(CHANGED).await,
        1.0,
        "confirmed by a dry run, then applied"
    );
}

#[test]
fn namespaces_are_put_where_a_kustomization_would() {
    let text = "---\napiVersion: v1\nkind: Service\nmetadata:\n  name: a\n  labels:\n    metadata: x\nspec:\n  selector:\n    app: a\n";
    assert_eq!(
        with_namespace(text, "t"),
        "---\napiVersion: v1\nkind: Service\nmetadata:\n  namespace: t\n  name: a\n  labels:\n    metadata: x\nspec:\n  selector:\n    app: a\n"
    );
    assert_eq!(
        into_namespace(
            "  namespace: monitoring\n  name: monitoring-x\n",
            "monitoring",
            "t"
        ),
        "  namespace: t\n  name: monitoring-x\n"
    );
}
