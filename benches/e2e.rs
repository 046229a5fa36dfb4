//! End-to-end figures against the tests' cluster (`KUBECONFIG`, or a kubelite started for the
//! run) and a real git daemon, side by side with the tools a person would use (`kubectl`, the
//! `git` CLI):
//!
//! 1. Git → cluster: N ConfigMaps in the repository until all exist, vs
//!    `kubectl apply --server-side -f dir/`.
//! 2. Cluster → Git: N live ConfigMaps until all are files in the remote, vs
//!    `kubectl get -o json` + splitting into files + `git add/commit/push`.
//! 3. Latency: one live change until its commit is in the remote, p50/p90 over 20 changes.
//!
//! `cargo bench --bench e2e` (N defaults to 500; `E2E_OBJECTS=2000` for the larger figure).
//! Prints figures and ratios; asserts nothing about time.

#[path = "../tests/common/mod.rs"]
mod common;

use std::process::Command;
use std::time::{Duration, Instant};

use common::{ControllerProcess, apply_yaml, wait_for};
use git_controller::api::crds;
use gitcontroller_testkit::cluster::{TestNamespace, apply_crds, client, use_test_cluster};
use gitcontroller_testkit::git_server::{GitDaemon, git_command};
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, ListParams, Patch, PatchParams};

fn kubectl() -> String {
    for candidate in [
        "/opt/helm/bin/kubectl",
        "/usr/local/bin/kubectl",
        "/usr/bin/kubectl",
    ] {
        if std::path::Path::new(candidate).exists() {
            return candidate.into();
        }
    }
    "kubectl".into()
}

fn configmap_yaml(ns: &str, name: &str, origin: &str) -> String {
    format!(
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {name}\n  namespace: {ns}\n  labels:\n    origin: {origin}\ndata:\n  value: \"{name}\"\n"
    )
}

fn rules(url: &str, ns: &str) -> String {
    format!(
        "apiVersion: gitcontroller.io/v1alpha1\nkind: GitRepository\nmetadata:\n  name: repo\nspec:\n  url: {url}\n  interval: 1h\n---\napiVersion: gitcontroller.io/v1alpha1\nkind: SyncRule\nmetadata:\n  name: from-git\nspec:\n  repositoryRef: {{name: repo}}\n  namespaces: [{ns}]\n  kinds: [ConfigMap]\n  labelSelector: origin=git\n  syncTo: kubernetes\n---\napiVersion: gitcontroller.io/v1alpha1\nkind: SyncRule\nmetadata:\n  name: to-git\nspec:\n  repositoryRef: {{name: repo}}\n  namespaces: [{ns}]\n  kinds: [ConfigMap]\n  labelSelector: origin=cluster\n  syncTo: git\n"
    )
}

async fn count(api: &Api<ConfigMap>, label: &str) -> usize {
    api.list_metadata(&ListParams::default().labels(label))
        .await
        .map(|l| l.items.len())
        .unwrap_or(0)
}

#[tokio::main]
async fn main() {
    let n: usize = std::env::var("E2E_OBJECTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(500);
    let client = client().await;
    apply_crds(&client, &crds()).await;
    let limit = Duration::from_secs(600);

    // 1. Git → cluster.
    let baseline_ns = TestNamespace::new(&client, "bench-kubectl").await;
    let dir = tempfile::tempdir().unwrap();
    for i in 0..n {
        let name = format!("cm-{i:05}");
        std::fs::write(
            dir.path().join(format!("{name}.yaml")),
            configmap_yaml(baseline_ns.name(), &name, "git"),
        )
        .unwrap();
    }
    let started = Instant::now();
    let status = use_test_cluster(&mut Command::new(kubectl()))
        .args(["apply", "--server-side", "-f"])
        .arg(dir.path())
        .stdout(std::process::Stdio::null())
        .status()
        .expect("kubectl");
    assert!(status.success());
    let kubectl_apply = started.elapsed();

    let ns = TestNamespace::new(&client, "bench-in").await;
    let ns_name = ns.name().to_string();
    let git = GitDaemon::start();
    let files: Vec<(String, String)> = (0..n)
        .map(|i| {
            let name = format!("cm-{i:05}");
            (
                format!("cms/{name}.yaml"),
                configmap_yaml(&ns_name, &name, "git"),
            )
        })
        .collect();
    let refs: Vec<(&str, &str)> = files
        .iter()
        .map(|(p, c)| (p.as_str(), c.as_str()))
        .collect();
    git.seed(&refs, "many ConfigMaps");
    apply_yaml(&client, &ns_name, &rules(&git.url(), &ns_name)).await;
    let configmaps: Api<ConfigMap> = Api::namespaced(client.clone(), &ns_name);
    let started = Instant::now();
    let controller = ControllerProcess::start(&ns_name);
    wait_for("all ConfigMaps applied", limit, || async {
        (count(&configmaps, "origin=git").await >= n).then_some(())
    })
    .await;
    let ours_apply = started.elapsed();
    drop(controller);
    println!(
        "git → cluster, {n} ConfigMaps: git-controller {:.2} s, kubectl apply --server-side {:.2} s, ratio {:.2}x faster",
        ours_apply.as_secs_f64(),
        kubectl_apply.as_secs_f64(),
        kubectl_apply.as_secs_f64() / ours_apply.as_secs_f64()
    );

    // 2. Cluster → Git. The same live objects for both: baseline first, then ours.
    let out_ns = TestNamespace::new(&client, "bench-out").await;
    let out_name = out_ns.name().to_string();
    let manifests: String = (0..n)
        .map(|i| {
            format!(
                "---\n{}",
                configmap_yaml(&out_name, &format!("live-{i:05}"), "cluster")
            )
        })
        .collect();
    let manifest_file = dir.path().join("live.yaml");
    std::fs::write(&manifest_file, manifests).unwrap();
    let status = use_test_cluster(&mut Command::new(kubectl()))
        .args(["apply", "--server-side", "-f"])
        .arg(&manifest_file)
        .stdout(std::process::Stdio::null())
        .status()
        .unwrap();
    assert!(status.success());

    let baseline_git = GitDaemon::start();
    baseline_git.seed(&[("README.md", "x\n")], "init");
    let clone = tempfile::tempdir().unwrap();
    assert!(
        git_command()
            .args(["clone", "-q", &baseline_git.url()])
            .arg(clone.path().join("c"))
            .status()
            .unwrap()
            .success()
    );
    let work = clone.path().join("c");
    let started = Instant::now();
    let output = use_test_cluster(&mut Command::new(kubectl()))
        .args([
            "get",
            "configmaps",
            "-n",
            &out_name,
            "-l",
            "origin=cluster",
            "-o",
            "json",
        ])
        .output()
        .unwrap();
    let list: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    std::fs::create_dir_all(work.join("configmaps")).unwrap();
    for item in list["items"].as_array().unwrap() {
        let name = item["metadata"]["name"].as_str().unwrap();
        std::fs::write(
            work.join(format!("configmaps/{name}.json")),
            serde_json::to_vec_pretty(item).unwrap(),
        )
        .unwrap();
    }
    for args in [
        &["add", "-A"][..],
        &[
            "-c",
            "user.name=b",
            "-c",
            "user.email=b@b",
            "commit",
            "-qm",
            "export",
        ],
        &["push", "-q", "origin", "main"],
    ] {
        assert!(
            git_command()
                .current_dir(&work)
                .args(args)
                .status()
                .unwrap()
                .success()
        );
    }
    let cli_export = started.elapsed();

    let out_git = GitDaemon::start();
    out_git.seed(&[("README.md", "x\n")], "init");
    apply_yaml(&client, &out_name, &rules(&out_git.url(), &out_name)).await;
    let started = Instant::now();
    let controller = ControllerProcess::start(&out_name);
    wait_for("all ConfigMaps exported", limit, || async {
        let files = out_git
            .list_files()
            .iter()
            .filter(|f| f.contains("live-"))
            .count();
        (files >= n).then_some(())
    })
    .await;
    let ours_export = started.elapsed();
    println!(
        "cluster → git, {n} ConfigMaps: git-controller {:.2} s, kubectl get + split + git add/commit/push {:.2} s, ratio {:.2}x",
        ours_export.as_secs_f64(),
        cli_export.as_secs_f64(),
        cli_export.as_secs_f64() / ours_export.as_secs_f64()
    );

    // 3. Latency of one live change to a commit in the remote, with the default batch window.
    drop(controller);
    let controller = ControllerProcess::start_with(&out_name, &["--batch-window-ms", "1000"]);
    let live: Api<ConfigMap> = Api::namespaced(client.clone(), &out_name);
    let mut latencies = Vec::new();
    tokio::time::sleep(Duration::from_secs(3)).await;
    for round in 0..20 {
        let name = format!("live-{:05}", round % n);
        let path = format!("{out_name}/configmaps/{name}.yaml");
        let marker = format!("round-{round}");
        let patch = serde_json::json!({"data": {"value": marker}});
        let started = Instant::now();
        live.patch(&name, &PatchParams::default(), &Patch::Merge(&patch))
            .await
            .unwrap();
        wait_for(
            "the change in the remote",
            Duration::from_secs(60),
            || async { out_git.read_file(&path).filter(|t| t.contains(&marker)) },
        )
        .await;
        latencies.push(started.elapsed());
    }
    drop(controller);
    latencies.sort();
    println!(
        "latency live change → remote commit over 20 changes: p50 {:.2} s, p90 {:.2} s, max {:.2} s (target p50 < 3 s; default batch window 1 s)",
        latencies[10].as_secs_f64(),
        latencies[18].as_secs_f64(),
        latencies[19].as_secs_f64()
    );
}
