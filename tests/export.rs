//! End to end: what a `syncTo: git` rule exports from a namespace. `git-controller run`
//! against the cluster in KUBECONFIG and a Git daemon.

mod common;

use std::time::Duration;

use common::{ControllerProcess, apply_yaml, setup, wait_for};
use git_controller::api::GitRepository;
use gitcontroller_testkit::git_server::GitDaemon;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, PostParams};
use serde_json::{Value, json};

const WAIT: Duration = Duration::from_secs(60);

async fn create_configmap(api: &Api<ConfigMap>, object: Value) {
    let cm: ConfigMap = serde_json::from_value(object).unwrap();
    api.create(&PostParams::default(), &cm).await.unwrap();
}

#[tokio::test]
async fn exclude_names_and_system_objects_keep_configmaps_out_of_git() {
    let (client, ns) = setup("export").await;
    let ns = ns.name().to_string();
    let git = GitDaemon::start();
    git.seed(&[("README.md", "cluster backups\n")], "init");

    // What the root-CA publisher puts in every namespace (kubelite runs no controllers, so the
    // test plays it), a ConfigMap the rule excludes by name, and one it exports.
    let configmaps: Api<ConfigMap> = Api::namespaced(client.clone(), &ns);
    create_configmap(
        &configmaps,
        json!({
            "metadata": {
                "name": "kube-root-ca.crt",
                "annotations": {"kubernetes.io/description": "Contains a CA bundle that can be used to verify the kube-apiserver when using internal endpoints such as the internal service IP or kubernetes.default.svc. No other usage is guaranteed across distributions of Kubernetes clusters."}
            },
            "data": {"ca.crt": "-----BEGIN CERTIFICATE-----\nMIIC\n-----END CERTIFICATE-----\n"}
        }),
    )
    .await;
    create_configmap(
        &configmaps,
        json!({"metadata": {"name": "scratch-1"}, "data": {"tmp": "x"}}),
    )
    .await;
    create_configmap(
        &configmaps,
        json!({"metadata": {"name": "settings", "labels": {"app": "web"}}, "data": {"level": "info"}}),
    )
    .await;

    apply_yaml(
        &client,
        &ns,
        &format!(
            "apiVersion: gitcontroller.io/v1alpha1\nkind: GitRepository\nmetadata:\n  name: repo\nspec:\n  url: {}\n  interval: 2s\n---\napiVersion: gitcontroller.io/v1alpha1\nkind: SyncRule\nmetadata:\n  name: backup\nspec:\n  repositoryRef:\n    name: repo\n  namespaces: [{ns}]\n  resources: [configmaps]\n  excludeNames: [\"scratch-*\"]\n  syncTo: git\n",
            git.url()
        ),
    )
    .await;
    let _controller = ControllerProcess::start(&ns);

    let settings = format!("{ns}/configmaps/settings.yaml");
    let text = wait_for("settings exported", WAIT, || async {
        git.read_file(&settings)
    })
    .await;
    let exported: Value = serde_saphyr::from_str(&text).unwrap();
    assert_eq!(
        exported,
        json!({
            "apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": "settings", "namespace": ns, "labels": {"app": "web"}},
            "data": {"level": "info"}
        }),
        "a clean export:\n{text}"
    );

    // A ConfigMap made later is exported by a later sync: by then every sync has seen the
    // excluded ones.
    create_configmap(
        &configmaps,
        json!({"metadata": {"name": "later"}, "data": {"k": "v"}}),
    )
    .await;
    let later = format!("{ns}/configmaps/later.yaml");
    wait_for("the later ConfigMap exported", WAIT, || async {
        git.read_file(&later)
    })
    .await;
    let mut files = git.list_files();
    files.sort();
    assert_eq!(files, ["README.md".to_string(), later, settings]);

    let repos: Api<GitRepository> = Api::namespaced(client.clone(), &ns);
    let status = wait_for("status counting two objects to Git", WAIT, || async {
        let status = serde_json::to_value(repos.get("repo").await.ok()?.status?).ok()?;
        (status["objects"]["toGit"] == 2).then_some(status)
    })
    .await;
    assert_eq!(status["objects"]["toKubernetes"], 0, "{status}");
}
