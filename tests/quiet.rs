//! In sync means quiet: with nothing changing, the controller makes no commit and no write
//! request to the API server, though it keeps reconciling on its interval. Its own test binary,
//! so no other test writes to the API server while it counts.

mod common;

use std::time::Duration;

use common::{ControllerProcess, apply_yaml, metric_sum, wait_for};
use git_controller::api::{GitRepository, crds};
use gitcontroller_testkit::cluster::{TestNamespace, apply_crds, client};
use gitcontroller_testkit::git_server::GitDaemon;
use kube::Client;
use kube::api::{Api, PostParams};

/// Every reconcile of the controller's repositories.
const RECONCILES: &str = "gitcontroller_reconcile_duration_seconds_count";

/// Sum of `apiserver_request_total` over the verbs that write.
async fn api_writes(client: &Client) -> f64 {
    let request = http::Request::get("/metrics").body(Vec::new()).unwrap();
    let text = client
        .request_text(request)
        .await
        .expect("reading the API server's /metrics");
    text.lines()
        .filter(|l| l.starts_with("apiserver_request_total{"))
        // A full cluster's own components renew leases; those are not ours.
        .filter(|l| !l.contains("resource=\"leases\""))
        .filter(|l| {
            [
                "\"POST\"",
                "\"PUT\"",
                "\"PATCH\"",
                "\"DELETE\"",
                "\"DELETECOLLECTION\"",
                "\"APPLY\"",
                "\"CREATE\"",
                "\"UPDATE\"",
            ]
            .iter()
            .any(|verb| l.contains(&format!("verb={verb}")))
        })
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

#[tokio::test]
async fn eight_reconciles_in_sync_cost_no_commit_and_no_api_write() {
    let client = client().await;
    apply_crds(&client, &crds()).await;
    let ns = TestNamespace::new(&client, "quiet").await;
    let ns = ns.name().to_string();
    let git = GitDaemon::start();
    let files: Vec<(String, String)> = (0..20)
        .map(|i| {
            (
                format!("config/cm-{i}.yaml"),
                format!("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: from-git-{i}\n  namespace: {ns}\n  labels:\n    origin: git\ndata:\n  index: \"{i}\"\n"),
            )
        })
        .collect();
    let refs: Vec<(&str, &str)> = files
        .iter()
        .map(|(p, c)| (p.as_str(), c.as_str()))
        .collect();
    git.seed(&refs, "twenty ConfigMaps");
    apply_yaml(
        &client,
        &ns,
        &format!(
            "apiVersion: gitcontroller.io/v1alpha1\nkind: GitRepository\nmetadata:\n  name: repo\nspec:\n  url: {}\n  interval: 3s\n---\napiVersion: gitcontroller.io/v1alpha1\nkind: SyncRule\nmetadata:\n  name: from-git\nspec:\n  repositoryRef: {{name: repo}}\n  namespaces: [{ns}]\n  kinds: [ConfigMap]\n  labelSelector: origin=git\n  syncTo: kubernetes\n---\napiVersion: gitcontroller.io/v1alpha1\nkind: SyncRule\nmetadata:\n  name: to-git\nspec:\n  repositoryRef: {{name: repo}}\n  namespaces: [{ns}]\n  kinds: [ConfigMap]\n  labelSelector: origin=cluster\n  syncTo: git\n",
            git.url()
        ),
    )
    .await;
    let configmaps: Api<k8s_openapi::api::core::v1::ConfigMap> =
        Api::namespaced(client.clone(), &ns);
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
    let mut controller = ControllerProcess::start(&ns);

    let repos: Api<GitRepository> = Api::namespaced(client.clone(), &ns);
    wait_for(
        "both directions in sync",
        Duration::from_secs(90),
        || async {
            let exported = git
                .list_files()
                .iter()
                .filter(|f| f.contains("from-cluster-"))
                .count();
            let created = configmaps.list(&Default::default()).await.ok()?.items.len();
            let status = repos.get("repo").await.ok()?.status?;
            let ready = status
                .conditions
                .iter()
                .any(|c| c.type_ == "Ready" && c.reason == "Synced");
            (exported == 5
                && created >= 25
                && ready
                && status.last_synced_commit.as_deref() == Some(git.head().as_str()))
            .then_some(())
        },
    )
    .await;
    // The reconciles triggered by our own last writes run at once (one batch window): two
    // more finished reconciles mean they are over.
    wait_for_reconciles(&controller, 2.0).await;

    let commits_before = git.commits().len();
    let writes_before = api_writes(&client).await;
    // Eight more reconciles on the 3 s interval: about half a minute in sync.
    let (reconciles_before, reconciles_after) = wait_for_reconciles(&controller, 8.0).await;
    let writes_after = api_writes(&client).await;

    assert!(controller.is_running());
    assert!(
        reconciles_after >= reconciles_before + 8.0,
        "it kept reconciling on its 3 s interval: {reconciles_before} → {reconciles_after}"
    );
    assert_eq!(
        git.commits().len(),
        commits_before,
        "no new commit while in sync"
    );
    assert_eq!(
        writes_after, writes_before,
        "no write request to the API server while in sync"
    );
}

/// Waits until `more` reconciles have finished since the call; returns the counts before and
/// after.
async fn wait_for_reconciles(controller: &ControllerProcess, more: f64) -> (f64, f64) {
    let before = metric_sum(controller, RECONCILES).await;
    let after = wait_for(
        &format!("{more} more reconciles"),
        Duration::from_secs(90),
        || async {
            let now = metric_sum(controller, RECONCILES).await;
            (now >= before + more).then_some(now)
        },
    )
    .await;
    (before, after)
}
