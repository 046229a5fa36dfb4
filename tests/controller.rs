//! End to end: `git-controller run` against the tests' cluster and real Git servers.
//! Each test has its own namespace, its own repository and its own controller process.

mod common;

use std::time::Duration;

use common::{
    ControllerProcess, apply_yaml, condition, crd, install_volume_snapshot_crds, repo_status,
    repository, rule, setup, wait_for, wait_for_current_spec_observed, wait_for_sync_of,
};
use git_controller::api::{GitRepository, SyncRule};
use gitcontroller_testkit::cluster::apply_crds;
use gitcontroller_testkit::git_server::GitDaemon;
use gitcontroller_testkit::git_server::GitHttpServer;
use kube::api::{Api, DeleteParams, DynamicObject, Patch, PatchParams, PostParams};
use kube::discovery::ApiResource;
use serde_json::{Value, json};

const WAIT: Duration = Duration::from_secs(60);

/// A ConfigMap manifest with one entry.
fn configmap(ns: &str, name: &str) -> String {
    format!(
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {name}\n  namespace: {ns}\ndata:\n  a: b\n"
    )
}

fn snapshot_resource() -> ApiResource {
    ApiResource {
        group: "snapshot.storage.k8s.io".into(),
        version: "v1".into(),
        api_version: "snapshot.storage.k8s.io/v1".into(),
        kind: "VolumeSnapshot".into(),
        plural: "volumesnapshots".into(),
    }
}

fn deployment_resource() -> ApiResource {
    ApiResource {
        group: "apps".into(),
        version: "v1".into(),
        api_version: "apps/v1".into(),
        kind: "Deployment".into(),
        plural: "deployments".into(),
    }
}

async fn get_json(api: &Api<DynamicObject>, name: &str) -> Option<Value> {
    api.get_opt(name)
        .await
        .unwrap()
        .map(|o| serde_json::to_value(o).unwrap())
}

#[tokio::test]
async fn volume_snapshots_from_git_are_created_then_updated_on_push() {
    let (client, ns) = setup("vs-in").await;
    install_volume_snapshot_crds(&client).await;
    let ns = ns.name().to_string();
    let git = GitDaemon::start();
    let snapshot = |pvc: &str| {
        format!(
            "# nightly snapshot of the database volume\napiVersion: snapshot.storage.k8s.io/v1\nkind: VolumeSnapshot\nmetadata:\n  name: db\n  namespace: {ns}\nspec:\n  volumeSnapshotClassName: csi-fast\n  source:\n    persistentVolumeClaimName: {pvc}\n"
        )
    };
    git.seed(
        &[("snapshots/db.yaml", &snapshot("db-data"))],
        "add db snapshot",
    );
    let yaml = repository(&git.url(), "")
        + &rule(
            "snapshots",
            &ns,
            "  apiGroups: [snapshot.storage.k8s.io]\n  syncTo: kubernetes\n",
        );
    apply_yaml(&client, &ns, &yaml).await;
    let _controller = ControllerProcess::start(&ns);

    let snapshots: Api<DynamicObject> =
        Api::namespaced_with(client.clone(), &ns, &snapshot_resource());
    wait_for(
        "the VolumeSnapshot from Git to be created",
        WAIT,
        || async {
            let live = get_json(&snapshots, "db").await?;
            (live["spec"]["source"]["persistentVolumeClaimName"] == "db-data").then_some(())
        },
    )
    .await;

    git.change(
        &[("snapshots/db.yaml", &snapshot("db-data-v2"))],
        &[],
        "point at the new volume",
    );
    wait_for("the pushed change to be applied", WAIT, || async {
        let live = get_json(&snapshots, "db").await?;
        (live["spec"]["source"]["persistentVolumeClaimName"] == "db-data-v2").then_some(())
    })
    .await;
    let live = get_json(&snapshots, "db").await.unwrap();
    let managers: Vec<&str> = live["metadata"]["managedFields"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|m| m["manager"].as_str())
        .collect();
    assert!(
        managers.contains(&"git-controller"),
        "applied with our field manager: {managers:?}"
    );

    let status = wait_for("Ready=True with the synced commit", WAIT, || async {
        let status = repo_status(&client, &ns).await?;
        (condition(&status, "Ready")?["status"] == "True"
            && status["lastSyncedCommit"] == git.head().as_str())
        .then_some(status)
    })
    .await;
    assert_eq!(status["inventory"][0]["kind"], "VolumeSnapshot");
    assert_eq!(status["objects"]["toKubernetes"], 1);
}

#[tokio::test]
async fn volume_snapshots_made_in_the_cluster_are_backed_up_then_removed() {
    let (client, ns) = setup("vs-out").await;
    install_volume_snapshot_crds(&client).await;
    let ns = ns.name().to_string();
    let git = GitDaemon::start();
    git.seed(&[("README.md", "cluster backups\n")], "init");
    let yaml = repository(&git.url(), "")
        + &rule(
            "backup",
            &ns,
            "  apiGroups: [snapshot.storage.k8s.io]\n  kinds: [VolumeSnapshot]\n  syncTo: git\n",
        );
    apply_yaml(&client, &ns, &yaml).await;
    let _controller = ControllerProcess::start(&ns);

    let snapshots: Api<DynamicObject> =
        Api::namespaced_with(client.clone(), &ns, &snapshot_resource());
    let object: DynamicObject = serde_json::from_value(json!({
        "apiVersion": "snapshot.storage.k8s.io/v1", "kind": "VolumeSnapshot",
        "metadata": {"name": "nightly-1", "labels": {"app": "db"}},
        "spec": {"source": {"persistentVolumeClaimName": "db-data"}}
    }))
    .unwrap();
    snapshots
        .create(&PostParams::default(), &object)
        .await
        .unwrap();
    let status_patch = json!({"status": {"readyToUse": true, "restoreSize": "10Gi"}});
    snapshots
        .patch_status(
            "nightly-1",
            &PatchParams::default(),
            &Patch::Merge(&status_patch),
        )
        .await
        .unwrap();

    let path = format!("{ns}/volumesnapshots.snapshot.storage.k8s.io/nightly-1.yaml");
    let text = wait_for("the backup file in the remote", WAIT, || async {
        git.read_file(&path)
    })
    .await;
    let exported: Value = serde_saphyr::from_str(&text).unwrap();
    assert_eq!(
        exported["spec"]["source"]["persistentVolumeClaimName"],
        "db-data"
    );
    assert_eq!(exported["metadata"]["labels"]["app"], "db");
    assert!(exported.get("status").is_none(), "status exported:\n{text}");
    for noise in [
        "uid",
        "resourceVersion",
        "generation",
        "creationTimestamp",
        "managedFields",
    ] {
        assert!(
            exported["metadata"].get(noise).is_none(),
            "metadata.{noise} exported:\n{text}"
        );
    }

    snapshots
        .delete("nightly-1", &DeleteParams::default())
        .await
        .unwrap();
    wait_for("the backup file to be removed", WAIT, || async {
        git.read_file(&path).is_none().then_some(())
    })
    .await;
    assert_eq!(
        git.read_file("README.md").as_deref(),
        Some("cluster backups\n")
    );
    assert!(
        git.non_fast_forward_updates().is_empty(),
        "never a force-push"
    );
}

#[tokio::test]
async fn image_bumps_go_to_git_while_replicas_come_from_git() {
    let (client, ns) = setup("images").await;
    let ns = ns.name().to_string();
    let git = GitDaemon::start();
    let manifest = format!(
        "# The web frontend.\napiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\n  namespace: {ns}\n  labels:\n    app: web\nspec:\n  replicas: 2 # scaled by Git only\n  selector:\n    matchLabels:\n      app: web\n  template:\n    metadata:\n      labels:\n        app: web\n    spec:\n      containers:\n        - name: web\n          image: nginx:1.25 # bumped in the cluster\n          ports:\n            - containerPort: 80\n"
    );
    git.seed(&[("apps/web.yaml", &manifest)], "add web");
    let yaml = repository(&git.url(), "")
        + &rule(
            "deployments",
            &ns,
            "  apiGroups: [apps]\n  resources: [deployments]\n  syncTo: kubernetes\n",
        )
        + &rule(
            "images",
            &ns,
            "  apiGroups: [apps]\n  kinds: [Deployment]\n  filters: [/spec/template/spec/containers]\n  syncTo: git\n  priority: 10\n",
        );
    apply_yaml(&client, &ns, &yaml).await;
    let _controller = ControllerProcess::start(&ns);

    let deployments: Api<DynamicObject> =
        Api::namespaced_with(client.clone(), &ns, &deployment_resource());
    wait_for("the Deployment from Git", WAIT, || async {
        let live = get_json(&deployments, "web").await?;
        (live["spec"]["replicas"] == 2).then_some(())
    })
    .await;

    // `kubectl set image` and `kubectl scale`, as another field manager would.
    let set_image = json!({"spec": {"template": {"spec": {"containers": [{"name": "web", "image": "nginx:1.27"}]}}}});
    deployments
        .patch(
            "web",
            &PatchParams {
                field_manager: Some("kubectl-set".into()),
                ..Default::default()
            },
            &Patch::Strategic(&set_image),
        )
        .await
        .unwrap();
    let text = wait_for("the image bump in Git", WAIT, || async {
        git.read_file("apps/web.yaml")
            .filter(|t| t.contains("nginx:1.27"))
    })
    .await;
    let changed: Vec<(&str, &str)> = manifest
        .lines()
        .zip(text.lines())
        .filter(|(a, b)| a != b)
        .collect();
    assert_eq!(
        manifest.lines().count(),
        text.lines().count(),
        "line count kept:\n{text}"
    );
    assert_eq!(changed.len(), 1, "exactly the image line changed:\n{text}");
    assert!(changed[0].1.contains("image: nginx:1.27"), "{changed:?}");

    let scale = json!({"spec": {"replicas": 5}});
    deployments
        .patch(
            "web",
            &PatchParams {
                field_manager: Some("kubectl-scale".into()),
                ..Default::default()
            },
            &Patch::Merge(&scale),
        )
        .await
        .unwrap();
    wait_for("replicas restored from Git", WAIT, || async {
        let live = get_json(&deployments, "web").await?;
        (live["spec"]["replicas"] == 2).then_some(())
    })
    .await;
    let live = get_json(&deployments, "web").await.unwrap();
    assert_eq!(
        live["spec"]["template"]["spec"]["containers"][0]["image"], "nginx:1.27",
        "the cluster's image stays"
    );
    assert!(
        git.read_file("apps/web.yaml")
            .unwrap()
            .contains("replicas: 2 # scaled by Git only")
    );
}

#[tokio::test]
async fn a_crd_installed_after_start_is_picked_up_by_an_existing_rule() {
    let (client, ns) = setup("late-crd").await;
    let ns = ns.name().to_string();
    let group = format!("{ns}.example.com");
    let git = GitDaemon::start();
    git.seed(&[("README.md", "x\n")], "init");
    let yaml = repository(&git.url(), "")
        + &rule(
            "widgets",
            &ns,
            &format!("  apiGroups: [{group}]\n  syncTo: git\n"),
        );
    apply_yaml(&client, &ns, &yaml).await;
    // The chart's RBAC names the new group ahead of its CRD, as an admin would.
    let _controller = ControllerProcess::start_with_chart(
        &ns,
        &[],
        &[],
        &format!("sync:\n  resources:\n    - apiGroups: [{group}]\n      resources: [widgets]\n"),
    );

    let rules: Api<SyncRule> = Api::namespaced(client.clone(), &ns);
    wait_for("the rule to report no matching types yet", WAIT, || async {
        let status = serde_json::to_value(rules.get("widgets").await.ok()?.status?).ok()?;
        (condition(&status, "Ready")?["reason"] == "NoMatchingResources").then_some(())
    })
    .await;

    apply_crds(&client, &[crd(&group, "Widget", "widgets", "Namespaced")]).await;
    let resource = ApiResource {
        group: group.clone(),
        version: "v1".into(),
        api_version: format!("{group}/v1"),
        kind: "Widget".into(),
        plural: "widgets".into(),
    };
    let widgets: Api<DynamicObject> = Api::namespaced_with(client.clone(), &ns, &resource);
    let widget: DynamicObject = serde_json::from_value(json!({
        "apiVersion": format!("{group}/v1"), "kind": "Widget",
        "metadata": {"name": "gear"}, "spec": {"teeth": 12}
    }))
    .unwrap();
    widgets
        .create(&PostParams::default(), &widget)
        .await
        .unwrap();

    let path = format!("{ns}/widgets.{group}/gear.yaml");
    let text = wait_for("the new kind's object in Git", WAIT, || async {
        git.read_file(&path)
    })
    .await;
    assert!(text.contains("teeth: 12"), "{text}");
    let status = serde_json::to_value(rules.get("widgets").await.unwrap().status.unwrap()).unwrap();
    assert_eq!(
        status["matchedResources"],
        json!([format!("widgets.{group}")])
    );
}

#[tokio::test]
async fn bad_input_is_reported_and_the_rest_still_syncs() {
    let (client, ns) = setup("bad").await;
    let ns = ns.name().to_string();
    let git = GitDaemon::start();
    git.seed(
        &[
            ("good.yaml", &format!("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: good\n  namespace: {ns}\ndata:\n  a: b\n")),
            ("broken.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: [unclosed\n"),
        ],
        "one good, one broken",
    );
    let yaml = repository(&git.url(), "")
        + &rule(
            "configmaps",
            &ns,
            "  apiGroups: [\"\"]\n  kinds: [ConfigMap]\n  syncTo: kubernetes\n",
        )
        // Invalid rules fail closed: this one holds back every Service (its scope), not the
        // ConfigMaps.
        + &rule(
            "bad-selector",
            &ns,
            "  kinds: [Service]\n  labelSelector: \"app in (web\"\n  syncTo: git\n",
        )
        + &rule(
            "secrets",
            &ns,
            "  apiGroups: [\"\"]\n  kinds: [Secret]\n  syncTo: git\n",
        );
    apply_yaml(&client, &ns, &yaml).await;
    apply_yaml(
        &client,
        &ns,
        "apiVersion: v1\nkind: Secret\nmetadata:\n  name: db-password\nstringData:\n  password: hunter2\n",
    )
    .await;
    let mut controller = ControllerProcess::start(&ns);

    let configmaps: Api<k8s_openapi::api::core::v1::ConfigMap> =
        Api::namespaced(client.clone(), &ns);
    wait_for(
        "the good ConfigMap despite the broken file",
        WAIT,
        || async { configmaps.get_opt("good").await.unwrap().map(|_| ()) },
    )
    .await;

    let status = wait_for("Ready=False naming the file and the rule", WAIT, || async {
        let status = repo_status(&client, &ns).await?;
        let ready = condition(&status, "Ready")?;
        let message = ready["message"].as_str()?;
        (ready["status"] == "False"
            && message.contains("broken.yaml:4")
            && message.contains("bad-selector"))
        .then_some(status)
    })
    .await;
    let message = condition(&status, "Ready").unwrap()["message"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        message.contains("line 4"),
        "the parse error names a line: {message}"
    );

    // While a file is unparsable nothing new is written to Git (the missing manifests may be
    // in it). Once it is fixed, the Secret export is refused, and said so.
    git.change(
        &[(
            "broken.yaml",
            &format!(
                "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: fixed\n  namespace: {ns}\n"
            ),
        )],
        &[],
        "fix the broken file",
    );
    let status = wait_for(
        "Ready=False naming the refused Secret export",
        WAIT,
        || async {
            let status = repo_status(&client, &ns).await?;
            let ready = condition(&status, "Ready")?;
            let message = ready["message"].as_str()?;
            (message.contains("Secret") && !message.contains("broken.yaml")).then_some(status)
        },
    )
    .await;
    let message = condition(&status, "Ready").unwrap()["message"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        message.contains("db-password") && message.contains("allowPlaintextSecrets"),
        "{message}"
    );
    assert!(!message.contains("hunter2"));
    wait_for("the fixed file's ConfigMap", WAIT, || async {
        configmaps.get_opt("fixed").await.unwrap().map(|_| ())
    })
    .await;

    let rules: Api<SyncRule> = Api::namespaced(client.clone(), &ns);
    let rule_status =
        serde_json::to_value(rules.get("bad-selector").await.unwrap().status.unwrap()).unwrap();
    assert_eq!(
        condition(&rule_status, "Ready").unwrap()["reason"],
        "InvalidSelector"
    );

    assert!(
        git.list_files().iter().all(|f| !f.contains("secrets")),
        "no Secret in Git: {:?}",
        git.list_files()
    );
    let events: Api<k8s_openapi::api::events::v1::Event> = Api::namespaced(client.clone(), &ns);
    let reasons = wait_for("Warning events", WAIT, || async {
        let list = events.list(&Default::default()).await.ok()?;
        let reasons: Vec<String> = list.items.iter().filter_map(|e| e.reason.clone()).collect();
        (reasons.iter().any(|r| r == "InvalidRule")
            && reasons.iter().any(|r| r == "SecretExportRefused"))
        .then_some(reasons)
    })
    .await;
    assert!(reasons.iter().any(|r| r == "Created"), "{reasons:?}");
    assert!(controller.is_running(), "no crash loop");
}

#[tokio::test]
async fn wrong_credentials_are_a_clear_stalled_condition() {
    let (client, ns) = setup("creds").await;
    let ns = ns.name().to_string();
    let git = GitHttpServer::with_basic_auth("alice", "right-password");
    git.seed(
        &[(
            "a.yaml",
            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: a\n",
        )],
        "init",
    );
    let yaml = format!(
        "apiVersion: v1\nkind: Secret\nmetadata:\n  name: creds\nstringData:\n  username: alice\n  password: wrong-password\n---\n{}",
        repository(&git.url(), "  secretRef:\n    name: creds\n")
    ) + &rule("all", &ns, "  kinds: [ConfigMap]\n  syncTo: kubernetes\n");
    apply_yaml(&client, &ns, &yaml).await;
    let mut controller = ControllerProcess::start(&ns);

    let status = wait_for("Stalled with an authentication reason", WAIT, || async {
        let status = repo_status(&client, &ns).await?;
        (condition(&status, "Stalled")?["status"] == "True").then_some(status)
    })
    .await;
    let ready = condition(&status, "Ready").unwrap();
    assert_eq!(ready["status"], "False");
    assert_eq!(ready["reason"], "AuthenticationFailed", "{ready}");
    assert!(
        !ready["message"]
            .as_str()
            .unwrap()
            .contains("wrong-password")
    );
    assert!(controller.is_running(), "no crash loop");
}

#[tokio::test]
async fn prune_deletes_only_what_this_repository_applied_and_only_when_asked() {
    let (client, ns) = setup("prune").await;
    let ns = ns.name().to_string();
    let git = GitDaemon::start();
    let cm = |name: &str| configmap(&ns, name);
    git.seed(
        &[
            ("keep.yaml", &cm("keep")),
            ("drop.yaml", &cm("drop")),
            ("stay.yaml", &cm("stay")),
        ],
        "three",
    );
    // A ConfigMap someone else made: selected by the rule, never in Git, never ours to delete.
    apply_yaml(
        &client,
        &ns,
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: not-ours\ndata:\n  owner: someone-else\n",
    )
    .await;
    let yaml = repository(&git.url(), "  prune: true\n")
        + &rule(
            "configmaps",
            &ns,
            "  kinds: [ConfigMap]\n  syncTo: kubernetes\n",
        );
    apply_yaml(&client, &ns, &yaml).await;
    let mut controller = ControllerProcess::start(&ns);

    let configmaps: Api<k8s_openapi::api::core::v1::ConfigMap> =
        Api::namespaced(client.clone(), &ns);
    let exists = |name: &'static str| {
        let configmaps = configmaps.clone();
        async move { configmaps.get_opt(name).await.unwrap().is_some() }
    };
    wait_for("the three ConfigMaps", WAIT, || async {
        (exists("keep").await && exists("drop").await && exists("stay").await).then_some(())
    })
    .await;

    git.change(&[], &["drop.yaml"], "drop one");
    wait_for(
        "the removed manifest's object to be pruned",
        WAIT,
        || async { (!exists("drop").await).then_some(()) },
    )
    .await;
    assert!(
        exists("keep").await && exists("not-ours").await,
        "nothing else is deleted"
    );

    // With prune off, removing a manifest leaves the object alone: checked once a sync of the
    // commit that removed it has finished (a prune would have happened within that sync).
    apply_yaml(&client, &ns, &repository(&git.url(), "  prune: false\n")).await;
    wait_for_current_spec_observed(&client, &ns, "repo").await;
    let removed = git.change(&[], &["stay.yaml"], "stop managing stay");
    let status = wait_for_sync_of(&client, &ns, "repo", &removed).await;
    assert_eq!(
        condition(&status, "Ready").unwrap()["reason"],
        "Synced",
        "{status}"
    );
    assert!(exists("stay").await, "not pruned without spec.prune");

    // Deleting the GitRepository with prune on deletes what it applied (and only that); the
    // finalizer lets it go afterwards; Git is left as it is.
    apply_yaml(&client, &ns, &repository(&git.url(), "  prune: true\n")).await;
    wait_for_current_spec_observed(&client, &ns, "repo").await;
    let head = git.head();
    let repos: Api<GitRepository> = Api::namespaced(client.clone(), &ns);
    repos
        .delete("repo", &DeleteParams::default())
        .await
        .unwrap();
    wait_for("the GitRepository to be gone", WAIT, || async {
        repos.get_opt("repo").await.unwrap().is_none().then_some(())
    })
    .await;
    assert!(
        !exists("keep").await,
        "applied by this repository: pruned on deletion"
    );
    assert!(exists("not-ours").await, "never applied by it: kept");
    assert_eq!(git.head(), head, "Git is not rewritten on deletion");
    assert!(controller.is_running());
}

#[tokio::test]
async fn suspend_pauses_writes_in_both_directions() {
    let (client, ns) = setup("suspend").await;
    let ns = ns.name().to_string();
    let git = GitDaemon::start();
    let cm = |value: &str| {
        format!(
            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: from-git\n  namespace: {ns}\n  labels:\n    origin: git\ndata:\n  value: {value}\n"
        )
    };
    git.seed(&[("cm.yaml", &cm("one"))], "init");
    let rules = rule(
        "from-git",
        &ns,
        "  kinds: [ConfigMap]\n  labelSelector: origin=git\n  syncTo: kubernetes\n",
    ) + &rule(
        "to-git",
        &ns,
        "  kinds: [ConfigMap]\n  labelSelector: origin=cluster\n  syncTo: git\n",
    );
    apply_yaml(&client, &ns, &(repository(&git.url(), "") + &rules)).await;
    let _controller = ControllerProcess::start(&ns);
    let configmaps: Api<k8s_openapi::api::core::v1::ConfigMap> =
        Api::namespaced(client.clone(), &ns);
    let value = |name: &'static str| {
        let configmaps = configmaps.clone();
        async move {
            configmaps
                .get_opt(name)
                .await
                .unwrap()?
                .data?
                .get("value")
                .cloned()
        }
    };
    wait_for("the first sync", WAIT, || async {
        value("from-git").await.filter(|v| v == "one")
    })
    .await;

    apply_yaml(&client, &ns, &repository(&git.url(), "  suspend: true\n")).await;
    wait_for("Ready=Unknown, Suspended", WAIT, || async {
        let status = repo_status(&client, &ns).await?;
        (condition(&status, "Ready")?["reason"] == "Suspended").then_some(())
    })
    .await;
    apply_yaml(&client, &ns, "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: made-live\n  labels:\n    origin: cluster\ndata:\n  value: x\n").await;
    let changed = git.change(&[("cm.yaml", &cm("two"))], &[], "change while suspended");
    // A suspended sync that saw both changes (the new commit's apply and the live ConfigMap's
    // export are pending), and only then: nothing was written. A suspended sync is no sync:
    // lastSyncedCommit stays.
    wait_for("a suspended sync that saw both changes", WAIT, || async {
        let status = repo_status(&client, &ns).await?;
        let ready = condition(&status, "Ready")?;
        (status["objects"]["toGit"] == 1
            && ready["reason"] == "Suspended"
            && ready["message"].as_str()?.ends_with("; 2 changes pending"))
        .then_some(())
    })
    .await;
    let status = repo_status(&client, &ns).await.unwrap();
    assert_ne!(status["lastSyncedCommit"], changed.as_str());
    assert_eq!(
        value("from-git").await.as_deref(),
        Some("one"),
        "nothing applied while suspended"
    );
    let files = git.list_files();
    assert!(
        files.iter().all(|f| !f.contains("made-live")),
        "nothing written to Git: {files:?}"
    );
    assert_eq!(
        git.commit_messages().first().map(String::as_str),
        Some("change while suspended"),
        "no commit of ours while suspended"
    );

    apply_yaml(&client, &ns, &repository(&git.url(), "  suspend: false\n")).await;
    wait_for(
        "both directions to catch up after resuming",
        WAIT,
        || async {
            let exported = git.list_files().iter().any(|f| f.contains("made-live"));
            (exported && value("from-git").await.as_deref() == Some("two")).then_some(())
        },
    )
    .await;
}

#[tokio::test]
async fn a_rule_without_its_repository_says_so_until_the_repository_exists() {
    let (client, ns) = setup("orphan").await;
    let ns = ns.name().to_string();
    let git = GitDaemon::start();
    git.seed(&[("README.md", "x\n")], "init");
    apply_yaml(
        &client,
        &ns,
        &rule("lonely", &ns, "  kinds: [ConfigMap]\n  syncTo: git\n"),
    )
    .await;
    let _controller = ControllerProcess::start(&ns);

    let rules: Api<SyncRule> = Api::namespaced(client.clone(), &ns);
    let reason = |expected: &'static str| {
        let rules = rules.clone();
        async move {
            let status = serde_json::to_value(rules.get("lonely").await.ok()?.status?).ok()?;
            (condition(&status, "Ready")?["reason"] == expected).then_some(status)
        }
    };
    let status = wait_for("RepositoryNotFound", WAIT, || reason("RepositoryNotFound")).await;
    let message = condition(&status, "Ready").unwrap()["message"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(message.contains("\"repo\""), "{message}");

    apply_yaml(&client, &ns, &repository(&git.url(), "")).await;
    wait_for(
        "the rule to resolve once its repository exists",
        WAIT,
        || reason("Resolved"),
    )
    .await;
}

/// Series of `/metrics` that name the GitRepository `name` in `ns`.
fn series_of(exposition: &str, ns: &str, name: &str) -> Vec<String> {
    exposition
        .lines()
        .filter(|l| l.starts_with("gitcontroller_"))
        .filter(|l| {
            l.contains(&format!("namespace=\"{ns}\"")) && l.contains(&format!("name=\"{name}\""))
        })
        .map(str::to_string)
        .collect()
}

#[tokio::test]
async fn a_deleted_repository_leaves_its_rules_not_ready_and_no_metric_series() {
    let (client, ns) = setup("deleted").await;
    let ns = ns.name().to_string();
    let git = GitDaemon::start();
    let cm = |name: &str| configmap(&ns, name);
    git.seed(
        &[("a.yaml", &cm("from-a")), ("b.yaml", &cm("from-b"))],
        "two",
    );
    // Two repositories on the same remote, each with its own rule; `doomed` carries a second
    // finalizer, so it stays, being deleted, after git-controller has finalized it: every
    // later reconcile of it is a chance to bring its series back.
    let repos = |name: &str, extra: &str| {
        format!(
            "---\napiVersion: gitcontroller.io/v1alpha1\nkind: GitRepository\nmetadata:\n  name: {name}\n{extra}spec:\n  url: {}\n  interval: 2s\n---\napiVersion: gitcontroller.io/v1alpha1\nkind: SyncRule\nmetadata:\n  name: {name}\nspec:\n  repositoryRef:\n    name: {name}\n  namespaces: [{ns}]\n  kinds: [ConfigMap]\n  names: [from-{}]\n  syncTo: kubernetes\n",
            git.url(),
            if name == "doomed" { "a" } else { "b" }
        )
    };
    apply_yaml(
        &client,
        &ns,
        &(repos("doomed", "  finalizers: [test.gitcontroller.io/hold]\n") + &repos("kept", "")),
    )
    .await;
    let controller = ControllerProcess::start(&ns);
    let rules: Api<SyncRule> = Api::namespaced(client.clone(), &ns);
    let rule_reason = |name: &'static str| {
        let rules = rules.clone();
        async move {
            let status = serde_json::to_value(rules.get(name).await.ok()?.status?).ok()?;
            Some(condition(&status, "Ready")?.clone())
        }
    };
    wait_for("both repositories synced, with metrics", WAIT, || async {
        let text = controller.try_metrics().await?;
        let ready = |name| {
            text.contains(&format!(
                "gitcontroller_ready{{name=\"{name}\",namespace=\"{ns}\"}} 1"
            ))
        };
        (ready("doomed") && ready("kept")).then_some(())
    })
    .await;
    assert_eq!(rule_reason("doomed").await.unwrap()["reason"], "Resolved");

    let repositories: Api<GitRepository> = Api::namespaced(client.clone(), &ns);
    repositories
        .delete("doomed", &DeleteParams::default())
        .await
        .unwrap();
    wait_for("git-controller's finalizer removed", WAIT, || async {
        let repo = repositories.get("doomed").await.ok()?;
        (repo.metadata.finalizers.as_deref()
            == Some(&["test.gitcontroller.io/hold".to_string()][..]))
        .then_some(())
    })
    .await;
    let ready = wait_for(
        "the rule of the repository being deleted to say so",
        WAIT,
        || async {
            let ready = rule_reason("doomed").await?;
            (ready["reason"] == "RepositoryNotFound").then_some(ready)
        },
    )
    .await;
    assert_eq!(ready["status"], "False");
    assert!(
        ready["message"].as_str().unwrap().contains("being deleted"),
        "{ready}"
    );
    assert_eq!(rule_reason("kept").await.unwrap()["reason"], "Resolved");

    // A reconcile of the finalized repository, asked for as a webhook on a standby or
    // `kubectl annotate` would: it finds nothing left to finalize (logged at debug), and must
    // not bring the repository's series back.
    let finalized_again = || {
        controller
            .log()
            .lines()
            .filter(|l| l.contains("finalized already") && l.contains("doomed"))
            .count()
    };
    let before = finalized_again();
    repositories
        .patch(
            "doomed",
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"annotations": {
                git_controller::api::REQUESTED_AT_ANNOTATION: "2026-01-01T00:00:00Z"
            }}})),
        )
        .await
        .unwrap();
    wait_for("a reconcile of the finalized repository", WAIT, || async {
        (finalized_again() > before).then_some(())
    })
    .await;
    let text = controller.metrics().await;
    assert_eq!(
        series_of(&text, &ns, "doomed"),
        Vec::<String>::new(),
        "no series of the deleted repository"
    );
    assert!(
        !series_of(&text, &ns, "kept").is_empty(),
        "the other repository keeps its series"
    );

    // Gone for good: the rule says its repository does not exist.
    repositories
        .patch(
            "doomed",
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"finalizers": null}})),
        )
        .await
        .unwrap();
    wait_for(
        "the rule to say its repository does not exist",
        WAIT,
        || async {
            let ready = rule_reason("doomed").await?;
            ready["message"]
                .as_str()?
                .contains("does not exist")
                .then_some(())
        },
    )
    .await;
    let text = controller.metrics().await;
    assert_eq!(series_of(&text, &ns, "doomed"), Vec::<String>::new());
}

#[tokio::test]
async fn events_regard_their_objects_and_each_acting_sync_is_summarized_truthfully() {
    let (client, ns) = setup("events").await;
    let ns = ns.name().to_string();
    let git = GitDaemon::start();
    let cm = |name: &str, value: &str| {
        format!(
            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {name}\n  namespace: {ns}\n  labels:\n    origin: git\ndata:\n  value: {value}\n"
        )
    };
    git.seed(
        &[("a.yaml", &cm("a", "one")), ("b.yaml", &cm("b", "one"))],
        "two",
    );
    apply_yaml(
        &client,
        &ns,
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: live\n  labels:\n    origin: cluster\ndata:\n  value: x\n",
    )
    .await;
    let yaml = repository(&git.url(), "")
        + &rule(
            "from-git",
            &ns,
            "  kinds: [ConfigMap]\n  labelSelector: origin=git\n  syncTo: kubernetes\n",
        )
        + &rule(
            "to-git",
            &ns,
            "  kinds: [ConfigMap]\n  labelSelector: origin=cluster\n  syncTo: git\n",
        );
    apply_yaml(&client, &ns, &yaml).await;
    let _controller = ControllerProcess::start(&ns);
    let repo = format!("{ns}/repo");
    let first = wait_for("the exported ConfigMap's commit", WAIT, || async {
        git.list_files()
            .iter()
            .any(|f| f.contains("live"))
            .then(|| git.head())
    })
    .await;
    let short = |commit: &str| commit[..8].to_string();
    // The summary is published last, after every per-object Event of the sync.
    let events = wait_for("the Events of the first sync", WAIT, || async {
        let events = common::events_in(&client, &ns).await;
        events
            .iter()
            .any(|e| e.0 == "Synced" && e.2.contains("committed"))
            .then_some(events)
    })
    .await;
    let seeded = git.commits().last().unwrap().clone();
    let expected = |reason: &str, regarding: &str, note: String| {
        (reason.to_string(), regarding.to_string(), note, 1)
    };
    for name in ["a", "b"] {
        assert!(
            events.contains(&expected(
                "Created",
                &format!("ConfigMap/{name}"),
                format!(
                    "created from Git: GitRepository {repo} at {}",
                    short(&seeded)
                )
            )),
            "{events:#?}"
        );
    }
    assert!(
        events.contains(&expected(
            "Committed",
            "ConfigMap/live",
            format!("written to Git: GitRepository {repo} in {}", short(&first))
        )),
        "{events:#?}"
    );
    // The ConfigMap made in the cluster was there before: the first sync did all of it.
    assert!(
        events.contains(&expected(
            "Synced",
            "GitRepository/repo",
            format!("created 2, committed 1 in {}", short(&first))
        )),
        "{events:#?}"
    );

    // The same drift twice at the same commit: one series, counted twice, whose note is true.
    let configmaps: Api<k8s_openapi::api::core::v1::ConfigMap> =
        Api::namespaced(client.clone(), &ns);
    for round in 1..=2 {
        configmaps
            .patch(
                "a",
                &PatchParams::default(),
                &Patch::Merge(json!({"data": {"value": "drifted"}})),
            )
            .await
            .unwrap();
        wait_for("the drift undone and its Events counted", WAIT, || async {
            let value = configmaps.get("a").await.ok()?.data?.get("value")?.clone();
            let events = common::events_in(&client, &ns).await;
            // The sync's summary, published after its per-object Event.
            let summarized = events.iter().any(|e| {
                e.0 == "Synced" && e.2 == format!("applied 1 in {}", short(&first)) && e.3 == round
            });
            let counted = events.iter().any(|e| {
                e.0 == "Applied"
                    && e.1 == "ConfigMap/a"
                    && e.2
                        == format!(
                            "applied from Git: GitRepository {repo} at {}",
                            short(&first)
                        )
                    && e.3 == round
            });
            (value == "one" && counted && summarized).then_some(())
        })
        .await;
    }
    let events = common::events_in(&client, &ns).await;
    assert!(
        !events
            .iter()
            .any(|e| e.0 == "Applied" && e.1 != "ConfigMap/a"),
        "only a was applied: {events:#?}"
    );
    assert!(
        events.iter().any(|e| e.0 == "Synced"
            && e.2 == format!("applied 1 in {}", short(&first))
            && e.3 == 2),
        "two syncs applied one object each: {events:#?}"
    );
}
